/**
 * A tenant placed on its own ClickHouse server (Debian's clickhouse-server 18.16,
 * started here on loopback): workspaces, ingestion and SQL go to that server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { requireClickHouse, startClickHouse, type RunningClickHouse } from './helpers/clickhouse-server.js';

let srv: RunningServer | undefined;
let ch: RunningClickHouse | undefined;
let token = '';

beforeAll(async () => {
  if (!requireClickHouse()) return;
  ch = await startClickHouse();
  srv = await startServer();
  const t = await call(`${srv.url}/v0/tenants`, {
    method: 'POST', token: srv.operatorToken,
    body: JSON.stringify({ slug: 'remote', placement: { type: 'clickhouse', url: ch.url, user: ch.user, password: ch.password } }),
  });
  expect(t.status, t.text).toBe(201);
  expect(t.body.placement).toEqual({ type: 'clickhouse', url: ch.url, user: ch.user, password_set: true });
  const ws = await call(`${srv.url}/v0/tenants/remote/workspaces`, { method: 'POST', token: srv.operatorToken, body: JSON.stringify({ name: 'main' }) });
  expect(ws.status, ws.text).toBe(201);
  token = ws.body.token;
}, 120_000);
afterAll(async () => {
  await srv?.stop();
  await ch?.stop();
});

const sql = async (q: string) => {
  const r = await call(`${srv!.url}/v0/sql?q=${encodeURIComponent(q)}`, { token });
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return r.text;
};

describe('tenant on a remote ClickHouse', () => {
  it('ingests CSV with quarantine and answers SQL from that server', async (t) => {
    if (!ch) return t.skip();
    const post = (p: string, body?: string) => call(`${srv!.url}${p}`, { method: 'POST', token, body, headers: { 'Content-Type': 'text/csv' } });
    const created = await post(`/v0/datasources?name=sales&schema=${encodeURIComponent('id UInt32, city LowCardinality(String), amount Float64')}`);
    expect(created.status, created.text).toBe(200);
    const r = await post('/v0/datasources?name=sales&mode=append', '1,Paris,10\n2,Rome,20\nx,Oslo,1\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 2, quarantine_rows: 1 });
    expect(await sql('SELECT city, amount FROM sales ORDER BY id FORMAT CSV')).toBe('"Paris",10\n"Rome",20\n');
    // The data is on the remote server, not in a local cell.
    const direct = await fetch(`${ch.url}/?query=${encodeURIComponent('SELECT count() FROM system.tables WHERE name = \'sales\'')}`, { headers: { 'X-ClickHouse-User': ch.user, 'X-ClickHouse-Key': ch.password } });
    expect((await direct.text()).trim()).toBe('1');
  });

  it('replace swaps the whole data source', async (t) => {
    if (!ch) return t.skip();
    const r = await call(`${srv!.url}/v0/datasources?name=sales&mode=replace`, { method: 'POST', token, body: '7,Lima,70\n', headers: { 'Content-Type': 'text/csv' } });
    expect(r.status, r.text).toBe(200);
    expect(await sql('SELECT id, city FROM sales FORMAT CSV')).toBe('7,"Lima"\n');
  });

  it('replace_condition replaces only the matching rows (RENAME swap on old servers)', async (t) => {
    if (!ch) return t.skip();
    const up = (q: string, body: string) => call(`${srv!.url}/v0/datasources?name=sales&${q}`, { method: 'POST', token, body, headers: { 'Content-Type': 'text/csv' } });
    expect((await up('mode=append', '8,Quito,80\n')).status).toBe(200);
    const r = await up(`mode=replace&replace_condition=${encodeURIComponent("city = 'Lima'")}`, '9,Lima,90\n10,Cusco,100\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 1, rows_outside_condition: 1 });
    expect(await sql('SELECT id, city FROM sales ORDER BY id FORMAT CSV')).toBe('8,"Quito"\n9,"Lima"\n');
  });

  it('NDJSON events with wait=true', async (t) => {
    if (!ch) return t.skip();
    const schema = encodeURIComponent('`id` UInt32 `json:$.id`, `city` LowCardinality(String) `json:$.where.city`, `amount` Float64 `json:$.amount`');
    expect((await call(`${srv!.url}/v0/datasources?name=ev&format=ndjson&schema=${schema}`, { method: 'POST', token })).status).toBe(200);
    const r = await call(`${srv!.url}/v0/events?name=ev&wait=true`, { method: 'POST', token, body: '{"id":1,"where":{"city":"Kyiv"},"amount":1.5}\n{"id":2}\n' });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ successful_rows: 2, quarantined_rows: 0 });
    expect(await sql('SELECT id, city, amount FROM ev ORDER BY id FORMAT CSV')).toBe('1,"Kyiv",1.5\n2,"",0\n');
  });

  it('the service data sources live on that server too, in the tenant\'s own database', async (t) => {
    if (!ch) return t.skip();
    const deadline = Date.now() + 10_000;
    let n = 0;
    // create, append, replace, append, replace (partial)
    while (Date.now() < deadline && n < 5) {
      n = Number((await sql("SELECT count() FROM tinybird.datasources_ops_log WHERE datasource_name = 'sales' FORMAT TSV")).trim());
      if (n < 5) await new Promise((r) => setTimeout(r, 200));
    }
    expect(n).toBe(5);
    const direct = await fetch(`${ch.url}/?query=${encodeURIComponent("SELECT count() FROM system.databases WHERE name = 'roost_svc_remote'")}`, { headers: { 'X-ClickHouse-User': ch.user, 'X-ClickHouse-Key': ch.password } });
    expect((await direct.text()).trim()).toBe('1');
  });
});
