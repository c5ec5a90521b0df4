/**
 * Requests whose text made the server's scans backtrack for seconds on its event loop, where
 * every other request (health checks included) waited: each is answered, and /v0/health
 * answers while it runs. Bounds are generous: the old code took 15 s to minutes on these.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, workspaceApi, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
const api = workspaceApi(() => srv, () => admin);

const post = (path: string, body: BodyInit, headers: Record<string, string>, token = admin) =>
  call(`${srv.url}${path}`, { method: 'POST', token, body, headers });

/**
 * Runs `request` and, once it is under way, a health check: both answers, and how long each
 * took in seconds (a health check the old code held until the request was done, or dropped).
 */
async function withHealth<T>(request: () => Promise<T>): Promise<{ result: T; seconds: number; health: number; healthSeconds: number }> {
  const t0 = performance.now();
  const pending = request().then((result) => ({ result, seconds: (performance.now() - t0) / 1000 }));
  await new Promise((r) => setTimeout(r, 300));
  const h0 = performance.now();
  const health = await call(`${srv.url}/v0/health`).then((r) => r.status, () => 0);
  const healthSeconds = (performance.now() - h0) / 1000;
  const { result, seconds } = await pending;
  return { result, seconds, health, healthSeconds };
}

/** The server kept answering meanwhile, and the request itself ended (generous bounds: it took 15–34 s before). */
function expectPrompt(r: { seconds: number; health: number; healthSeconds: number }): void {
  expect(r.health).toBe(200);
  expect(r.healthSeconds).toBeLessThan(5);
  expect(r.seconds).toBeLessThan(10);
}

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('queries with long runs of spaces', () => {
  it('/v0/sql: 200,000 spaces in the query (34 s before, /v0/health held 32 s)', async () => {
    const r = await withHealth(() => post('/v0/sql', `SELECT 1${' '.repeat(200_000)}+ 1 AS n FORMAT JSONEachRow`, { 'Content-Type': 'text/plain' }));
    expect(r.result.status, r.result.text.slice(0, 300)).toBe(200);
    expect(JSON.parse(r.result.text)).toEqual({ n: 2 });
    expectPrompt(r);
  });

  it('/v0/sql: an engine error quoting 100,000 spaces of the query', async () => {
    const r = await withHealth(() => post('/v0/sql', `SELECT nope, 'x${' '.repeat(100_000)}y'`, { 'Content-Type': 'text/plain' }));
    expect(r.result.status).toBe(422);
    expect(r.result.body.code).toBe('QUERY_FAILED');
    expect(r.result.body.error).toContain('Unknown expression identifier `nope`');
    expect(r.result.body.error).not.toMatch(/max_execution_time|readonly/);
    expectPrompt(r);
  });

  it('an endpoint: a String parameter of 200,000 spaces, called with a PIPES:READ token', async () => {
    const created = await post('/v0/pipes', JSON.stringify({ name: 'spaces', nodes: [{ name: 'e', sql: '%\nSELECT length({{String(x)}}) AS n', type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
    expect(created.status, created.text).toBe(200);
    const reader = await api.createToken('spaces_reader', ['PIPES:READ:spaces']);
    const form = new URLSearchParams({ x: ' '.repeat(200_000) }).toString();
    const r = await withHealth(() => post('/v0/pipes/spaces.json', form, { 'Content-Type': 'application/x-www-form-urlencoded' }, reader));
    expect(r.result.status, r.result.text.slice(0, 300)).toBe(200);
    expect(r.result.body.data).toEqual([{ n: 200_000 }]);
    expectPrompt(r);
  });
});

describe('a syntax error quoting b=c=c=...', () => {
  it('is answered at once (36 of them: tens of seconds before, doubling with each)', async () => {
    const r = await withHealth(() => post('/v0/sql', `SELECT 1 a b${'=c'.repeat(36)}`, { 'Content-Type': 'text/plain' }));
    expect(r.result.status).toBe(400);
    expect(r.result.body.error).toMatch(/Syntax error: failed at position 12 \(b\): b=c/);
    expect(r.result.body.error).not.toMatch(/max_execution_time|readonly/);
    expectPrompt(r);
    // An unfinished query is still told so.
    const unfinished = await post('/v0/sql', 'SELECT 1 +', { 'Content-Type': 'text/plain' });
    expect(unfinished.body.error).toMatch(/Syntax error: the query ends before it is complete/);
  });
});

describe('a template reading a repeated parameter in a loop', () => {
  it('renders at once with a PIPES:READ token (a 470 KB form: 20 s of the event loop before)', async () => {
    await api.createDataSource('rows', 'id String', 'x\n1\n');
    const sql = "%\nSELECT count() AS n FROM rows WHERE 1{% for f in split_to_array(fields,'a') %}{% if defined(filter) %} AND {{column(f)}} = {{String(filter)}}{% end %}{% end %}";
    const created = await post('/v0/pipes', JSON.stringify({ name: 'filters', nodes: [{ name: 'e', sql, type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
    expect(created.status, created.text).toBe(200);
    const reader = await api.createToken('filters_reader', ['PIPES:READ:filters']);
    const form = `fields=${Array(10_000).fill('id').join(',')}${'&filter=1'.repeat(50_000)}`;
    expect(form.length).toBeGreaterThan(470_000);
    const r = await withHealth(() => post('/v0/pipes/filters.json', form, { 'Content-Type': 'application/x-www-form-urlencoded' }, reader));
    expect(r.result.status, r.result.text.slice(0, 300)).toBe(200);
    expect(r.result.body.data).toEqual([{ n: 1 }]);
    expectPrompt(r);
  });
});
