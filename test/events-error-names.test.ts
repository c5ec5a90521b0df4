/**
 * Engine errors of /v0/events are told in the workspace's own names, in the answer and in
 * tinybird.datasources_ops_log (which the workspace reads), as those of /v0/datasources are.
 * A real engine refusal that quotes Roost's layout: a tenant on its own ClickHouse server
 * (Debian's clickhouse-server on loopback) whose administrator dropped a data source's table
 * there; the engine answers "Table ws_main_<id>.<table> doesn't exist".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTenant, startServer, type RunningServer } from './helpers/server.js';
import { requireClickHouse, startClickHouse, type RunningClickHouse } from './helpers/clickhouse-server.js';

let srv: RunningServer | undefined;
let ch: RunningClickHouse | undefined;
let token = '';
let database = '';
const INTERNAL = /ws_[a-z0-9_]*_[0-9a-f]{8}/;

beforeAll(async () => {
  if (!requireClickHouse()) return;
  ch = await startClickHouse();
  srv = await startServer({ env: { ROOST_EVENTS_FLUSH_MS: '100' } });
  token = await createTenant(srv, 'far', { type: 'clickhouse', url: ch.url, user: ch.user, password: ch.password });
  const ws = await call(`${srv.url}/v0/tenants/far/workspaces`, { token: srv.operatorToken });
  database = ws.body.workspaces.find((w: { name: string }) => w.name === 'main').database;
  expect(database).toMatch(INTERNAL);
  for (const name of ['gone_wait', 'gone_buffered']) {
    const r = await call(`${srv.url}/v0/datasources?name=${name}&schema=${encodeURIComponent('a Int32 `json:$.a`')}`, { method: 'POST', token });
    expect(r.status, r.text).toBe(200);
    // The server's administrator drops the table behind Roost's back.
    const d = await fetch(`${ch.url}/?user=${ch.user}&password=${ch.password}`, { method: 'POST', body: `DROP TABLE ${database}.${name}` });
    expect(d.status, await d.text()).toBe(200);
  }
}, 120_000);
afterAll(async () => {
  await srv?.stop();
  await ch?.stop();
});

const opsErrors = async (name: string, want: RegExp): Promise<string[]> => {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
    const r = await call(`${srv!.url}/v0/sql?q=${encodeURIComponent(`SELECT error FROM tinybird.datasources_ops_log WHERE datasource_name = '${name}' AND result = 'error' FORMAT JSONEachRow`)}`, { token });
    expect(r.status, r.text).toBe(200);
    const errors = r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l).error as string);
    if (errors.some((e) => want.test(e))) return errors;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`no error logged for ${name}`);
};

describe('engine errors of /v0/events name the workspace\'s data sources, not the engine\'s tables', () => {
  it('wait=true: the answer and the operations log', async (t) => {
    if (!ch) return t.skip();
    const r = await call(`${srv!.url}/v0/events?name=gone_wait&wait=true`, { method: 'POST', token, body: '{"a":1}\n' });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.body.error).toMatch(/gone_wait/);
    expect(r.body.error).not.toMatch(INTERNAL);
    const logged = await opsErrors('gone_wait', /gone_wait/);
    for (const e of logged) expect(e).not.toMatch(INTERNAL);
    expect(logged.join('\n')).not.toContain(database);
  });

  it('buffered: a flush the engine refuses is logged in the workspace\'s names', async (t) => {
    if (!ch) return t.skip();
    const r = await call(`${srv!.url}/v0/events?name=gone_buffered`, { method: 'POST', token, body: '{"a":1}\n' });
    expect(r.status, r.text).toBe(202);
    const logged = await opsErrors('gone_buffered', /buffered events .*gone_buffered/);
    for (const e of logged) expect(e).not.toMatch(INTERNAL);
  });

  it('(as /v0/datasources appends, through the same rewrite)', async (t) => {
    if (!ch) return t.skip();
    const r = await call(`${srv!.url}/v0/datasources?name=gone_wait&mode=append&format=ndjson`, { method: 'POST', token, body: '{"a":2}\n', headers: { 'Content-Type': 'application/x-ndjson' } });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.body.error).not.toMatch(INTERNAL);
    for (const e of await opsErrors('gone_wait', /gone_wait/)) expect(e).not.toMatch(INTERNAL);
  });
});
