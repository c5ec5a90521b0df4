/**
 * The JSON result's trailer (rows, rows_before_limit_at_least, statistics) is read and completed
 * where the engine wrote it, never in the data: a column named `rows` with a `statistics` map
 * beside it was taken for the trailer (a black-box round) — the data row gained a key and the
 * call log stored the caller's numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
const enc = encodeURIComponent;

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const post = (p: string, body: string, type: string) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers: { 'Content-Type': type } });
  expect((await post(`/v0/datasources?name=t&schema=${enc('id Int32')}`, '', 'text/csv')).status).toBe(200);
  expect((await post('/v0/datasources?name=t&mode=append', '1\n2\n3\n', 'text/csv')).status).toBe(200);
  expect((await post('/v0/pipes', JSON.stringify({ name: 'p1', nodes: [{ name: 'n', sql: 'SELECT * FROM t', type: 'endpoint' }] }), 'application/json')).status).toBe(200);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

async function logged(requestId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100; i++) {
    const r = await call(`${srv.url}/v0/sql?q=${enc(`SELECT result_rows, read_rows, read_bytes FROM tinybird.pipe_stats_rt WHERE request_id = '${requestId}' FORMAT JSON`)}`, { token });
    if (r.body.data?.length) return r.body.data[0];
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('no pipe_stats_rt row');
}

describe('the JSON trailer', () => {
  it('data columns named rows, rows_before_limit_at_least and statistics are data', async () => {
    const q = "SELECT 123456 AS rows, map('elapsed', 1, 'rows_read', 999999, 'bytes_read', 888888) AS statistics FROM _ LIMIT 1";
    const r = await call(`${srv.url}/v0/pipes/p1.json?q=${enc(q)}`, { token, headers: { 'X-Request-Id': 'trailer-1' } });
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ rows: 123456, statistics: { elapsed: 1, rows_read: 999999, bytes_read: 888888 } }]);
    expect(r.body.rows).toBe(1);
    expect(r.body.rows_before_limit_at_least).toBeGreaterThanOrEqual(1);
    expect(r.body.statistics.rows_read).toBeLessThan(999999);
    const log = await logged('trailer-1');
    expect(log.result_rows).toBe(1);
    expect(log.read_rows).not.toBe(999999);
    expect(log.read_bytes).not.toBe(888888);
  });

  it('a column named rows beside one named rows_before_limit_at_least', async () => {
    const r = await call(`${srv.url}/v0/pipes/p1.json?q=${enc('SELECT 7 AS rows, 8 AS rows_before_limit_at_least FROM _')}`, { token, headers: { 'X-Request-Id': 'trailer-2' } });
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ rows: 7, rows_before_limit_at_least: 8 }, { rows: 7, rows_before_limit_at_least: 8 }, { rows: 7, rows_before_limit_at_least: 8 }]);
    expect(r.body.rows).toBe(3);
    expect(r.body.rows_before_limit_at_least).toBe(3);
    expect((await logged('trailer-2')).result_rows).toBe(3);
  });
});
