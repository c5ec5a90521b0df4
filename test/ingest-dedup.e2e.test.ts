/**
 * Identical rows are rows: the engine's insert deduplication (kept on data source tables
 * for the events buffer's retried flushes) must never drop data that a request counted.
 * Real server, real engine, real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
const enc = encodeURIComponent;
const post = (p: string, body?: BodyInit, headers: Record<string, string> = {}) =>
  call(`${srv.url}${p}`, { method: 'POST', token, body, headers: { 'Content-Type': 'text/csv', ...headers } });
const count = async (table: string) => {
  const r = await call(`${srv.url}/v0/sql?q=${enc(`SELECT count() AS c FROM ${table} FORMAT JSONEachRow`)}`, { token });
  if (r.status !== 200) throw new Error(r.text);
  return Number(JSON.parse(r.text).c);
};

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => { await srv?.stop(); });

describe('identical data is stored as often as it is sent', () => {
  it('the same events posted three times with wait=true are stored three times', async () => {
    expect((await post(`/v0/datasources?name=same_ev&format=ndjson&schema=${enc('`a` Int32 `json:$.a`')}`)).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const r = await post('/v0/events?name=same_ev&wait=true', '{"a":1}\n{"a":2}\n', { 'Content-Type': 'application/x-ndjson' });
      expect(r.body).toMatchObject({ successful_rows: 2, quarantined_rows: 0 });
    }
    expect(await count('same_ev')).toBe(6);
  });

  it('a CSV upload of identical rows (several equal segments in the engine) stores every row', async () => {
    expect((await post(`/v0/datasources?name=same_csv&schema=${enc('a Int32, s String')}`)).status).toBe(200);
    const rows = 3 * 1024 * 1024; // 21 MiB: several 4 MiB segments with the same rows
    const r = await post('/v0/datasources?name=same_csv&mode=append', Buffer.from('1,aaaa\n'.repeat(rows)));
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows).toBe(rows);
    expect(await count('same_csv')).toBe(rows);
    // And the same small file twice.
    expect((await post('/v0/datasources?name=same_csv&mode=append', '1,aaaa\n')).body.rows).toBe(1);
    expect((await post('/v0/datasources?name=same_csv&mode=append', '1,aaaa\n')).body.rows).toBe(1);
    expect(await count('same_csv')).toBe(rows + 2);
  }, 120_000);
});

describe('concurrent /v0/events?wait=true (inserted together, answered each)', () => {
  it('every request gets its own counts and every row is stored once', async () => {
    expect((await post(`/v0/datasources?name=many_ev&format=ndjson&schema=${enc('`r` Int32 `json:$.r`, `i` Int32 `json:$.i`')}`)).status).toBe(200);
    const bodies = Array.from({ length: 12 }, (_, r) => {
      const lines = Array.from({ length: 200 + r * 50 }, (_, i) => JSON.stringify({ r: r % 4, i })); // some bodies identical
      if (r === 5) lines.push('{"r": 5, "i": "not a number"}');
      return lines.join('\n') + '\n';
    });
    const answers = await Promise.all(bodies.map((b) => post('/v0/events?name=many_ev&wait=true', b, { 'Content-Type': 'application/x-ndjson' })));
    answers.forEach((a, r) => {
      expect(a.status, a.text).toBe(200);
      expect(a.body).toEqual({ successful_rows: 200 + r * 50, quarantined_rows: r === 5 ? 1 : 0 });
    });
    const total = bodies.reduce((n, _, r) => n + 200 + r * 50, 0);
    expect(await count('many_ev')).toBe(total);
    expect(await count('many_ev_quarantine')).toBe(1);
  });
});
