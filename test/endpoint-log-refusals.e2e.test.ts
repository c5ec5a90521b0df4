/**
 * Refusals of an endpoint call are rows of tinybird.pipe_stats_rt and tinybird.endpoint_errors
 * whatever part of the request they come from: a query string that is not UTF-8 (400
 * INVALID_UTF8, answered by the server before routing, was in neither) as a form body that is
 * not; a call refused for the token's rate (429) under the pipe's id with the query string's
 * parameters, as other failed calls. Read back through /v0/sql. Real server, real engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token = '';
let pipeId = '';
const enc = encodeURIComponent;
const form = { 'Content-Type': 'application/x-www-form-urlencoded' };

const sqlRows = async (q: string): Promise<Array<Record<string, any>>> => {
  const r = await call(`${srv.url}/v0/sql?q=${enc(`${q} FORMAT JSONEachRow`)}`, { token });
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
};
/** Polls until `q` gives `n` rows (service rows are flushed about once a second). */
async function rowsEventually(q: string, n: number): Promise<Array<Record<string, any>>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const got = await sqlRows(q);
    if (got.length >= n || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 150));
  }
}
const send = (id: string, path: string, init: { token?: string; method?: string; body?: string; headers?: Record<string, string> } = {}) =>
  call(`${srv.url}${path}`, { token: init.token ?? token, method: init.method, body: init.body, headers: { ...init.headers, 'X-Request-Id': id } });
const statsOf = (ids: string[]) => rowsEventually(`SELECT request_id, pipe_id, pipe_name, status_code, error, error_message, parameters, method FROM tinybird.pipe_stats_rt WHERE request_id IN (${ids.map((i) => `'${i}'`).join(', ')}) ORDER BY request_id`, ids.length);
const errorsOf = (ids: string[]) => rowsEventually(`SELECT request_id, pipe_id, pipe_name, status_code, error FROM tinybird.endpoint_errors WHERE request_id IN (${ids.map((i) => `'${i}'`).join(', ')}) ORDER BY request_id`, ids.length);

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const p = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'logged', nodes: [{ name: 'n', type: 'endpoint', sql: "%\nSELECT {{String(x, 'a')}} AS x" }] }) });
  expect(p.status, p.text).toBeLessThan(300);
  pipeId = p.body.id;
}, 90_000);
afterAll(async () => { await srv?.stop(); });

describe('a query string that is not UTF-8', () => {
  it('on an endpoint: the same 400, and the same rows, as a form body that is not', async () => {
    const q = await send('utf8-ep-query', '/v0/pipes/logged.json?x=%FF');
    const b = await send('utf8-ep-form', '/v0/pipes/logged.json', { method: 'POST', body: 'x=%FF', headers: form });
    for (const r of [q, b]) {
      expect(r.status, r.text).toBe(400);
      expect(r.body.code).toBe('INVALID_UTF8');
    }
    const stats = await statsOf(['utf8-ep-form', 'utf8-ep-query']);
    expect(stats.map((r) => r.request_id)).toEqual(['utf8-ep-form', 'utf8-ep-query']);
    for (const r of stats) {
      expect(r).toMatchObject({ pipe_id: pipeId, pipe_name: 'logged', status_code: 400, error: 1, parameters: {} });
      expect(r.error_message).toContain('is not UTF-8');
    }
    expect(await errorsOf(['utf8-ep-form', 'utf8-ep-query'])).toEqual([
      { request_id: 'utf8-ep-form', pipe_id: pipeId, pipe_name: 'logged', status_code: 400, error: expect.stringContaining('form field "x" is not UTF-8') },
      { request_id: 'utf8-ep-query', pipe_id: pipeId, pipe_name: 'logged', status_code: 400, error: expect.stringContaining('query parameter "x" is not UTF-8') },
    ]);
  });

  it('on /v0/sql: a row of query_api too', async () => {
    const r = await send('utf8-sql-query', `/v0/sql?q=${enc('SELECT 1')}&x=%FF`);
    expect(r.status, r.text).toBe(400);
    expect(r.body.code).toBe('INVALID_UTF8');
    expect(await statsOf(['utf8-sql-query'])).toEqual([expect.objectContaining({ pipe_name: 'query_api', status_code: 400, error: 1, parameters: {} })]);
    expect(await errorsOf(['utf8-sql-query'])).toEqual([expect.objectContaining({ pipe_name: 'query_api', status_code: 400 })]);
  });

  it('elsewhere still the server\'s 400 before anything else (no credential needed to be told)', async () => {
    for (const path of ['/v0/datasources?x=%FF', '/v0/pipes/logged?x=%FF', '/v0/pipes?x=%FF']) {
      const r = await call(`${srv.url}${path}`);
      expect(r.status, `${path} ${r.text}`).toBe(400);
      expect(r.body.code).toBe('INVALID_UTF8');
    }
    // An endpoint call without a credential: the 401 (there is no workspace to log it in).
    expect((await call(`${srv.url}/v0/pipes/logged.json?x=%FF`)).status).toBe(401);
    // Unless it is in what names the caller: a token or workspace that is not UTF-8 is said as such
    // (decoded, it was another credential: a 401 that did not say what to fix).
    for (const path of ['/v0/pipes/logged.json?token=%FF', `/v0/sql?q=${enc('SELECT 1')}&token=a%FFb`, '/v0/pipes/logged.json?workspace=%FF']) {
      const r = await call(`${srv.url}${path}`);
      expect(r.status, `${path} ${r.text}`).toBe(400);
      expect(r.body.code).toBe('INVALID_UTF8');
    }
  });
});

describe('a call refused for the token\'s rate (429)', () => {
  it('is a row under the pipe\'s id with the query string\'s parameters, from a query string as from a form body', async () => {
    const slow = (await call(`${srv.url}/v0/tokens?name=slow_ep&scope=${enc('PIPES:READ:logged')}&rps=1`, { method: 'POST', token })).body.token as string;
    const statuses: Record<string, number> = {};
    for (let i = 0; i < 3; i++) {
      statuses[`rl-q-${i}`] = (await send(`rl-q-${i}`, '/v0/pipes/logged.json?x=b', { token: slow })).status;
      statuses[`rl-f-${i}`] = (await send(`rl-f-${i}`, '/v0/pipes/logged.json', { token: slow, method: 'POST', body: 'x=c', headers: form })).status;
    }
    const limited = Object.keys(statuses).filter((id) => statuses[id] === 429).sort();
    expect(limited.some((id) => id.startsWith('rl-q')) && limited.some((id) => id.startsWith('rl-f')), JSON.stringify(statuses)).toBe(true);
    const stats = await statsOf(limited);
    expect(stats.map((r) => r.request_id)).toEqual(limited);
    for (const r of stats) {
      expect(r).toMatchObject({ pipe_id: pipeId, pipe_name: 'logged', status_code: 429, error: 1 });
      // The body of a refused call is not read: a form's fields are not there.
      expect(r.parameters).toEqual(String(r.request_id).startsWith('rl-q') ? { x: 'b' } : {});
    }
    expect((await errorsOf(limited)).map((r) => [r.request_id, r.pipe_id, r.status_code])).toEqual(limited.map((id) => [id, pipeId, 429]));
  });
});
