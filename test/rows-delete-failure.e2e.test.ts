/**
 * A rows delete whose condition fails on some rows (a black-box round): its count read only the
 * granules the index left and passed, the mutation then failed on other rows and stayed queued
 * in the engine — every later delete of the data source failed (and ran once it was let go),
 * across restarts, and the 422 carried the engine's stack trace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
const enc = encodeURIComponent;
const post = (p: string, body?: string, type = 'text/csv') => call(`${srv.url}${p}`, { method: 'POST', token, body, headers: { 'Content-Type': type } });
const del = (cond: string, dry = false) => post('/v0/datasources/pz/delete', new URLSearchParams({ delete_condition: cond, ...(dry ? { dry_run: 'true' } : {}) }).toString(), 'application/x-www-form-urlencoded');
const ids = async () => {
  const r = await call(`${srv.url}/v0/sql?q=${enc('SELECT count() AS n, countIf(id = 5) AS five, countIf(id = 7) AS seven FROM pz FORMAT JSON')}`, { token });
  expect(r.status, r.text).toBe(200);
  return r.body.data[0];
};

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await post(`/v0/datasources?name=pz&schema=${enc('id Int64, s String')}`)).status).toBe(200);
  const rows = Array.from({ length: 20_000 }, (_, i) => `${i + 1},${i + 1}`).concat(Array.from({ length: 10 }, (_, i) => `${20_001 + i},abc`));
  expect((await post('/v0/datasources?name=pz&mode=append', rows.join('\n') + '\n')).body).toMatchObject({ rows: 20_010 });
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('a rows delete whose condition fails on some rows', () => {
  it('is refused before anything is deleted (dry run too), says why without a stack trace, and later deletes work', async () => {
    for (const dry of [true, false]) {
      const r = await del('toInt32(s) = 5 AND id = 5', dry);
      expect(r.status, r.text).toBe(422);
      expect(r.body.error).toMatch(/Cannot parse string 'abc' as Int32/);
      expect(r.text).not.toMatch(/Stack trace|\/home\/|\.cpp/);
    }
    expect(await ids()).toEqual({ n: 20_010, five: 1, seven: 1 });
    const ok = await del('id = 7');
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body).toMatchObject({ rows_affected: 1, status: 'done' });
    expect(await ids()).toEqual({ n: 20_009, five: 1, seven: 0 });
    // A condition that holds for every row deletes.
    expect((await del('toInt32OrZero(s) = 5')).body).toMatchObject({ rows_affected: 1 });
    expect(await ids()).toEqual({ n: 20_008, five: 0, seven: 0 });
  });

  it('a condition of any number type deletes (and counts) as WHERE reads it: non-zero is true, NULL is not', async () => {
    expect((await post(`/v0/datasources?name=nc&schema=${enc('a Int32, n Nullable(Int32), f Float64')}`)).status).toBe(200);
    expect((await post('/v0/datasources?name=nc&mode=append', '1,1,0.5\n2,\\N,0\n3,0,1.5\n4,2,0\n')).status).toBe(200);
    const d = (cond: string, dry: boolean) => post('/v0/datasources/nc/delete', new URLSearchParams({ delete_condition: cond, dry_run: String(dry) }).toString(), 'application/x-www-form-urlencoded');
    for (const [cond, n] of [['a % 2', 2], ['n', 2], ['f', 2], ['bitAnd(a, 2)', 2]] as const) {
      const r = await d(cond, true);
      expect(r.status, `${cond}: ${r.text}`).toBe(200);
      expect(r.body.rows_affected, cond).toBe(n);
    }
    const r = await d('a % 2', false);
    expect(r.body).toMatchObject({ rows_affected: 2 });
    const left = await call(`${srv.url}/v0/sql?q=${enc('SELECT groupArray(a) AS a FROM (SELECT a FROM nc ORDER BY a) FORMAT JSON')}`, { token });
    expect(left.body.data[0].a).toEqual([2, 4]);
  });
});
