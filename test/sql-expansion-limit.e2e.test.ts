/**
 * Inlining pipes, nodes and an endpoint's result (`_`) is bounded while the query is rewritten.
 *
 * Audit: the analyzer copied a referenced query in whole at every reference and checked the size
 * only afterwards (16 MB, per compiled node), so a small request made gigabytes: a 200 KB pipe of
 * three nodes took the server from ~100 MB to 3.3 GB before "too large"; with only PIPES:READ, a
 * /v0/sql query naming a 200 KB pipe 20 000 times (80 KB) reached 8 GB and a 500; `q=` naming `_`
 * 10 000 times on that endpoint, a 500. Each is now a 413 (sql_code QUERY_TOO_LARGE) at the first
 * reference past the maximum query size (256 KiB, the engine's own max_query_size, which refuses
 * a longer query anyway), and the server's peak RSS stays far below 1 GB.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
let reader: string;
const GB = 1 << 30;

/** The server's peak resident memory so far (bytes). */
const peakRss = () => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${srv.proc.pid}/status`, 'utf8'))![1]) * 1024;
const post = (path: string, body?: BodyInit, headers: Record<string, string> = {}, token = admin) =>
  call(`${srv.url}${path}`, { method: 'POST', token, body, headers });
const createPipe = (name: string, nodes: Array<{ name: string; sql: string }>) =>
  post('/v0/pipes', JSON.stringify({ name, nodes: nodes.map((n, i) => ({ ...n, type: i === nodes.length - 1 ? 'endpoint' : undefined })) }), { 'Content-Type': 'application/json' });
/** A node of `n` + 14 bytes: one string literal. */
const literal = (n: number) => `SELECT '${'x'.repeat(n)}' AS s`;
const list = (item: string, n: number, sep: string) => Array(n).fill(item).join(sep);

/** The request answers a 413 QUERY_TOO_LARGE naming the size limit, and the peak RSS stays under 1 GB. */
function expectTooLarge(r: { status: number; body: any; text: string }) {
  expect(r.status, r.text.slice(0, 500)).toBe(413);
  expect(r.body.code).toBe('BODY_TOO_LARGE');
  expect(r.body.sql_code).toBe('QUERY_TOO_LARGE');
  expect(r.body.error).toMatch(/larger than the maximum query size \(262144 bytes\)/);
  expect(peakRss()).toBeLessThan(GB);
}

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const p1 = await createPipe('p1', [{ name: 'big', sql: literal(200_000) }]);
  expect(p1.status, p1.text.slice(0, 500)).toBe(200);
  const t = await post('/v0/tokens?name=p1_reader&scope=PIPES:READ:p1');
  expect(t.status, t.text).toBe(200);
  reader = t.body.token;
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('a small request cannot make the server build gigabytes of SQL', () => {
  it('a pipe whose nodes read each other many times (200 KB request) is refused at the node past the limit', async () => {
    const before = peakRss();
    const r = await createPipe('deep', [
      { name: 'n1', sql: literal(200_000) },
      { name: 'n2', sql: list('SELECT s FROM n1', 80, ' UNION ALL ') },
      { name: 'n3', sql: list('SELECT s FROM n2', 100, ' UNION ALL ') },
    ]);
    expectTooLarge(r);
    expect(r.body.node).toBe('n2');
    expect(r.body.error).toMatch(/'n1' is copied in whole at each reference to it/);
    expect(peakRss() - before).toBeLessThan(GB / 2);
    expect((await call(`${srv.url}/v0/pipes/deep`, { token: admin })).status).toBe(404);
  }, 60_000);

  it('/v0/sql naming a pipe 20 000 times, with only PIPES:READ on it, is a 413, not a 500', async () => {
    const r = await post('/v0/sql', new URLSearchParams({ q: `SELECT count() FROM ${list('p1', 20_000, ', ')}` }), {}, reader);
    expectTooLarge(r);
    expect(r.body.error).toMatch(/'p1'/);
  }, 60_000);

  it('q= naming the endpoint\'s result _ 10 000 times is a 413', async () => {
    const r = await post('/v0/pipes/p1.json', new URLSearchParams({ q: `SELECT count() FROM ${list('_', 10_000, ', ')}` }), {}, reader);
    expectTooLarge(r);
    // Also as a GET (a shorter list: the URL has a size limit of its own).
    const g = await call(`${srv.url}/v0/pipes/p1.json?q=${encodeURIComponent(`SELECT count() FROM ${list('_', 1000, ',')}`)}`, { token: reader });
    expectTooLarge(g);
  }, 60_000);
});

describe('what stays within the limit still works', () => {
  it('the large endpoint, q= over it, /v0/sql over it, and a CTE reading it many times', async () => {
    const e = await call(`${srv.url}/v0/pipes/p1.json?q=${encodeURIComponent('SELECT length(s) AS l FROM _')}`, { token: reader });
    expect(e.status, e.text.slice(0, 500)).toBe(200);
    expect(e.body.data).toEqual([{ l: 200_000 }]);
    const s = await post('/v0/sql', new URLSearchParams({ q: 'SELECT length(s) AS l FROM p1 FORMAT JSON' }), {}, reader);
    expect(s.status, s.text.slice(0, 500)).toBe(200);
    expect(s.body.data).toEqual([{ l: 200_000 }]);
    // As the error suggests: named once in a CTE, read many times.
    const cte = await post('/v0/sql', new URLSearchParams({ q: `WITH t AS (SELECT * FROM p1) SELECT count() AS c FROM t AS a, t AS b, t AS c FORMAT JSON` }), {}, reader);
    expect(cte.status, cte.text.slice(0, 500)).toBe(200);
    expect(cte.body.data).toEqual([{ c: 1 }]);
  }, 60_000);

  it('a deep pipe whose nodes read each other several times', async () => {
    const nodes = [{ name: 'd0', sql: 'SELECT number AS x FROM numbers(3)' }];
    for (let i = 1; i <= 20; i++) nodes.push({ name: `d${i}`, sql: `SELECT x FROM d${i - 1} UNION ALL SELECT x FROM d0` });
    nodes.push({ name: 'top', sql: 'SELECT count() AS c, sum(x) AS t FROM d20' });
    const r = await createPipe('deep_ok', nodes);
    expect(r.status, r.text.slice(0, 500)).toBe(200);
    const e = await call(`${srv.url}/v0/pipes/deep_ok.json`, { token: admin });
    expect(e.status, e.text.slice(0, 500)).toBe(200);
    expect(e.body.data).toEqual([{ c: 63, t: 63 }]);
    expect(peakRss()).toBeLessThan(GB);
  }, 60_000);
});
