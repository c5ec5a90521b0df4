/**
 * Remote-tenant regressions (Debian clickhouse-server 18.16 on loopback): what the
 * embedded path guarantees, checked on a tenant placed on its own ClickHouse server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTenant, startServer, type RunningServer } from './helpers/server.js';
import { requireClickHouse, startClickHouse, type RunningClickHouse } from './helpers/clickhouse-server.js';
import { ClickHouseEngine } from '../src/cells/clickhouse.js';

let srv: RunningServer | undefined;
let ch: RunningClickHouse | undefined;
let token = '';

beforeAll(async () => {
  if (!requireClickHouse()) return;
  ch = await startClickHouse();
  srv = await startServer();
  token = await createTenant(srv, 'far', { type: 'clickhouse', url: ch.url, user: ch.user, password: ch.password });
  const created = await post(`/v0/datasources?name=s&schema=${encodeURIComponent('id UInt32, city String, amount Float64')}`);
  expect(created.status, created.text).toBe(200);
}, 120_000);
afterAll(async () => {
  await srv?.stop();
  await ch?.stop();
});

const post = (p: string, body?: string, headers: Record<string, string> = { 'Content-Type': 'text/csv' }) => call(`${srv!.url}${p}`, { method: 'POST', token, body, headers });
const get = (p: string) => call(`${srv!.url}${p}`, { token });
const sql = (q: string) => get(`/v0/sql?q=${encodeURIComponent(q)}`);

describe('remote tenant (ClickHouse 18.16)', () => {
  it('identical rows are stored as often as they are sent (appends and events)', async (t) => {
    if (!ch) return t.skip();
    for (let i = 0; i < 2; i++) expect((await post('/v0/datasources?name=s&mode=append', '1,a,1\n1,a,1\n')).body).toMatchObject({ rows: 2 });
    for (let i = 0; i < 2; i++) expect((await post('/v0/events?name=s&wait=true', '{"id":1,"city":"a","amount":1}\n', {})).body).toEqual({ successful_rows: 1, quarantined_rows: 0 });
    expect((await sql('SELECT count() FROM s WHERE id = 1 FORMAT TSV')).text).toBe('6\n');
  });

  it('rows delete works on a server without mutations_sync, and waits for the rows to be gone', async (t) => {
    if (!ch) return t.skip();
    expect((await post('/v0/datasources?name=s&mode=append', '2,b,2\n2,b,2\n3,c,3\n')).status).toBe(200);
    const r = await post('/v0/datasources/s/delete', new URLSearchParams({ delete_condition: 'id = 2' }).toString(), { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows_affected: 2, status: 'done' });
    // Gone once answered (no waiting for a background mutation).
    expect((await sql('SELECT id, count() FROM s WHERE id IN (2, 3) GROUP BY id ORDER BY id FORMAT CSV')).text).toBe('3,1\n');
  });

  it('results holding engine error text (service logs of failed calls) are read whole', async (t) => {
    if (!ch) return t.skip();
    // A failed call: its error text lands in pipe_stats_rt.error_message.
    const failed = await sql('SELECT nope FROM s');
    expect(failed.status).toBe(422);
    // Said as newer servers say it (18.16 wraps it: `Code: 47, e.displayText() = …, e.what() = DB::Exception`).
    expect(failed.body.error).toMatch(/^Code: 47\. DB::Exception: Unknown identifier: nope$/);
    let tsv = '';
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && !tsv.includes('DB::Exception');) {
      const r = await sql('SELECT status_code, error_message FROM tinybird.pipe_stats_rt WHERE status_code = 422 FORMAT TSV');
      expect(r.status, r.text).toBe(200);
      tsv = r.text;
      if (!tsv.includes('DB::Exception')) await new Promise((res) => setTimeout(res, 200));
    }
    expect(tsv).toMatch(/^422\tCode: 47\. DB::Exception: Unknown identifier: nope/);
    for (const fmt of ['JSON', 'JSONEachRow', 'CSV']) {
      const r = await sql(`SELECT error_message FROM tinybird.pipe_stats_rt WHERE status_code = 422 FORMAT ${fmt}`);
      expect(r.status, `${fmt}: ${r.text}`).toBe(200);
      expect(r.text).toContain('Unknown identifier: nope');
    }
    // Also as the last row alone (the text right after a newline, as an appended error would be).
    const alone = await sql("SELECT 'Code: 1, e.displayText() = DB::Exception: not an error, e.what() = DB::Exception' AS m FROM s LIMIT 1 FORMAT CSV");
    expect(alone.status).toBe(200);
    expect(alone.text).toBe('"Code: 1, e.displayText() = DB::Exception: not an error, e.what() = DB::Exception"\n');
  });

  it('an error the server appends after 200 OK still fails the result', async (t) => {
    if (!ch) return t.skip();
    const engine = new ClickHouseEngine({ url: ch.url, user: ch.user, password: ch.password });
    try {
      for (const format of ['TSV', 'JSON', 'CSV', 'JSONEachRow']) {
        const s = await engine.query('SELECT number, throwIf(number = 150000) FROM system.numbers LIMIT 200000', { format, settings: { max_block_size: 1000 } });
        let got = 0;
        const read = (async () => { for await (const b of s) got += b.length; })();
        await expect(read, format).rejects.toMatchObject({ code: 'QUERY_FAILED', clickhouseCode: 395 });
        await expect(s.done).rejects.toMatchObject({ clickhouseCode: 395 });
        expect(got).toBeGreaterThan(0);
      }
      // And a whole result is passed on unchanged.
      const s = await engine.query('SELECT number FROM system.numbers LIMIT 300000', { format: 'TSV' });
      const parts: Buffer[] = [];
      for await (const b of s) parts.push(b);
      const text = Buffer.concat(parts).toString();
      expect(text.length).toBe(Array.from({ length: 300000 }, (_, i) => `${i}\n`).join('').length);
      expect(text.endsWith('299999\n')).toBe(true);
    } finally {
      await engine.close();
    }
  });

  it('a row-filtered token reads its rows there too: the view names the filter\'s columns qualified', async (t) => {
    if (!ch) return t.skip();
    expect((await post('/v0/datasources?name=s&mode=append', '10,acme,1\n11,globex,2\n')).status).toBe(200);
    const minted = await post(`/v0/tokens?name=acme_rows&scope=${encodeURIComponent("DATASOURCES:READ:s:city = 'acme' AND s.amount >= 0")}`, undefined, {});
    expect(minted.status, minted.text).toBe(200);
    const r = await call(`${srv!.url}/v0/sql?q=${encodeURIComponent('SELECT id, city FROM s WHERE id >= 10 ORDER BY id FORMAT CSV')}`, { token: minted.body.token });
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe('10,"acme"\n');
  });

  it('Parquet, which this server does not know, is a clear 400', async (t) => {
    if (!ch) return t.skip();
    const r = await sql('SELECT id FROM s FORMAT Parquet');
    expect(r.status, r.text).toBe(400);
    expect(r.body).toMatchObject({ code: 'UNSUPPORTED_FORMAT' });
    expect(r.body.error).toMatch(/Parquet is not supported by this tenant's ClickHouse server/);
    expect((await post('/v0/pipes', JSON.stringify({ name: 'p', nodes: [{ name: 'n', sql: 'SELECT id FROM s', type: 'endpoint' }] }), { 'Content-Type': 'application/json' })).status).toBe(200);
    const e = await get('/v0/pipes/p.parquet');
    expect(e.status, e.text).toBe(400);
    expect(e.body).toMatchObject({ code: 'UNSUPPORTED_FORMAT' });
    expect((await get('/v0/pipes/p.csv')).status).toBe(200);
  });
});

describe('remote tenant: types the old server lacks', () => {
  it('IPv4/IPv6 (and Bool) columns: a clear 400 at create naming the type, nothing left behind', async (t) => {
    if (!ch) return t.skip();
    for (const [schema, type] of [['a IPv4, b IPv6', 'IPv4'], ['b IPv6', 'IPv6'], ['x Bool', 'Bool']] as const) {
      const r = await post(`/v0/datasources?name=ips&schema=${encodeURIComponent(schema)}`, '1.2.3.4,::1\n');
      expect(r.status, r.text).toBe(400);
      expect(r.body).toMatchObject({ code: 'SCHEMA_SYNTAX', type });
      expect(r.body.error).toMatch(new RegExp(`^type ${type} is not available on this tenant's ClickHouse server \\(version 18\\.`));
      expect((await get('/v0/datasources/ips')).status).toBe(404);
    }
    const direct = await fetch(`${ch.url}/?query=${encodeURIComponent("SELECT count() FROM system.tables WHERE name LIKE 'ips%'")}`, { headers: { 'X-ClickHouse-User': ch.user, 'X-ClickHouse-Key': ch.password } });
    expect((await direct.text()).trim()).toBe('0');
  });

  it('an events request of more than one engine block is one part (all or nothing on a crash)', async (t) => {
    if (!ch) return t.skip();
    const direct = (q: string) => ch!.query(q);
    expect((await post(`/v0/datasources?name=big_ev&format=ndjson&schema=${encodeURIComponent('`id` UInt32 `json:$.i`')}`)).status).toBe(200);
    const db = (await direct("SELECT database FROM system.tables WHERE name = 'big_ev' AND database LIKE 'ws_%' FORMAT TSV")).trim();
    expect(db).toMatch(/^ws_/);
    await direct(`SYSTEM STOP MERGES \`${db}\`.big_ev`);
    const n = 1_200_000; // over the server's default 1,048,576 rows per block
    let body = '';
    for (let i = 0; i < n; i++) body += `{"i":${i}}\n`;
    const r = await post('/v0/events?name=big_ev&wait=true', body, {});
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ successful_rows: n, quarantined_rows: 0 });
    expect((await direct(`SELECT count() FROM system.parts WHERE database = '${db}' AND table = 'big_ev' AND active FORMAT TSV`)).trim()).toBe('1');
    expect((await sql('SELECT count() FROM big_ev FORMAT TSV')).text).toBe(`${n}\n`);
  }, 120_000);
});

describe('tenant audit route on a remote tenant (ClickHouse 18.16)', () => {
  it('reads the tenant\'s records, filtered by time on a server that keeps whole seconds', async (t) => {
    if (!ch) return t.skip();
    const audit = (q: string) => call(`${srv!.url}/v0/tenants/far/audit${q}`, { token: srv!.operatorToken });
    const all = await audit('?limit=1000');
    expect(all.status, all.text).toBe(200);
    const recs = all.body.records as Array<{ timestamp: string; event: string }>;
    expect(recs.some((r) => r.event === 'workspace.created')).toBe(true);
    const first = recs[recs.length - 1]!.timestamp;
    // since= the oldest record's time finds it (rounded down to its second here), until= it does not.
    expect(((await audit(`?since=${encodeURIComponent(first)}&limit=1000`)).body.records as unknown[]).length).toBe(recs.length);
    const before = await audit(`?until=${encodeURIComponent(new Date(Date.parse(first) - 2000).toISOString())}`);
    expect(before.status, before.text).toBe(200);
    expect(before.body.records).toEqual([]);
    // Pages of one record through seconds holding several: each record once.
    const seen: unknown[] = [];
    let cursor = '';
    for (let i = 0; i < 500; i++) {
      const p = await audit(`?limit=1&since=${encodeURIComponent(first)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(p.status, p.text).toBe(200);
      seen.push(...p.body.records);
      if (!p.body.next_cursor) break;
      cursor = p.body.next_cursor;
    }
    const keys = recs.map((r) => JSON.stringify(r));
    expect(seen.map((r) => JSON.stringify(r)).filter((k) => keys.includes(k))).toEqual(keys);
  });
});
