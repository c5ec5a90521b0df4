/**
 * Routes of one data source (and `/v0/sql?pipeline=`) check the caller's scope on the name asked
 * for before looking it up: a credential without that scope gets the same 403 whether or not the
 * name exists (it learned which names exist from 404 against 403), and the denial is audited; a
 * credential with the scope still gets a 404 for a missing one. Pipe routes did so already.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, workspaceApi, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin = '';
/** Reads data source `visible` only. */
let narrow = '';
const api = workspaceApi(() => srv, () => admin);

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.admin_token;
  await api.createDataSource('visible', 'a Int32', '1\n');
  await api.createDataSource('hidden', 'a Int32', '1\n');
  const p = await call(`${srv.url}/v0/pipes?name=hidden_pipe&sql=${encodeURIComponent('SELECT 1 AS x')}`, { method: 'POST', token: admin });
  expect(p.status, p.text).toBe(200);
  narrow = await api.createToken('narrow', ['DATASOURCES:READ:visible']);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

/** Each route of one name: method, path and body for `n`. */
const routes: Array<[string, (n: string) => { method: string; path: string; body?: string; headers?: Record<string, string> }]> = [
  ['GET one', (n) => ({ method: 'GET', path: `/v0/datasources/${n}` })],
  ['GET datafile', (n) => ({ method: 'GET', path: `/v0/datasources/${n}.datasource` })],
  ['PUT', (n) => ({ method: 'PUT', path: `/v0/datasources/${n}?description=x` })],
  ['truncate', (n) => ({ method: 'POST', path: `/v0/datasources/${n}/truncate` })],
  ['GET quarantine', (n) => ({ method: 'GET', path: `/v0/datasources/${n}_quarantine` })],
  ['truncate quarantine', (n) => ({ method: 'POST', path: `/v0/datasources/${n}_quarantine/truncate` })],
  ['rows delete', (n) => ({ method: 'POST', path: `/v0/datasources/${n}/delete`, body: 'delete_condition=a%3D1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })],
  ['DELETE', (n) => ({ method: 'DELETE', path: `/v0/datasources/${n}` })],
  ['append', (n) => ({ method: 'POST', path: `/v0/datasources?name=${n}&mode=append`, body: '2\n', headers: { 'Content-Type': 'text/csv' } })],
  ['replace', (n) => ({ method: 'POST', path: `/v0/datasources?name=${n}&mode=replace`, body: '2\n', headers: { 'Content-Type': 'text/csv' } })],
  ['events', (n) => ({ method: 'POST', path: `/v0/events?name=${n}`, body: '{"a":2}\n' })],
  ['events wait', (n) => ({ method: 'POST', path: `/v0/events?name=${n}&wait=true`, body: '{"a":2}\n' })],
];

let seq = 0;
const send = (r: { method: string; path: string; body?: string; headers?: Record<string, string> }, token: string) => {
  const id = `lookup-${process.pid}-${++seq}`;
  return call(`${srv.url}${r.path}`, { method: r.method, token, body: r.body, headers: { ...r.headers, 'X-Request-Id': id } }).then((res) => ({ ...res, id }));
};
const audited = async (id: string) => {
  for (let i = 0; i < 50; i++) {
    const got = srv.logs.filter((l) => l.msg === 'audit' && l.requestId === id);
    if (got.length) return got;
    await new Promise((res) => setTimeout(res, 20));
  }
  return [];
};

describe('a credential without the scope learns nothing of whether the name exists', () => {
  for (const [what, route] of routes) {
    it(`${what}: the same audited 403 for an existing and a missing data source`, async () => {
      const existing = await send(route('hidden'), narrow);
      const missing = await send(route('no_such_ds'), narrow);
      expect(existing.status, existing.text).toBe(403);
      expect(missing.status, missing.text).toBe(403);
      expect(missing.body.code).toBe(existing.body.code);
      // The message names what was asked for, and differs by that name only.
      expect(missing.body.error.replaceAll('no_such_ds', 'N')).toBe(existing.body.error.replaceAll('hidden', 'N'));
      for (const r of [existing, missing]) {
        const a = await audited(r.id);
        expect(a.map((x) => [x.event, x.credential]), r.text).toEqual([['authz.denied', 'token:narrow']]);
      }
    });
  }

  it('/v0/sql?pipeline=: the same audited 403 for an existing and a missing pipe', async () => {
    const q = encodeURIComponent('SELECT 1');
    const existing = await send({ method: 'GET', path: `/v0/sql?q=${q}&pipeline=hidden_pipe` }, narrow);
    const missing = await send({ method: 'GET', path: `/v0/sql?q=${q}&pipeline=no_such_pipe` }, narrow);
    expect([existing.status, missing.status], `${existing.text} ${missing.text}`).toEqual([403, 403]);
    expect(missing.body.code).toBe(existing.body.code);
    expect(missing.body.error.replaceAll('no_such_pipe', 'N')).toBe(existing.body.error.replaceAll('hidden_pipe', 'N'));
    for (const r of [existing, missing]) expect((await audited(r.id)).map((x) => x.event)).toEqual(['authz.denied']);
  });

  it('as on pipe routes (unchanged): 403 for an existing and a missing pipe', async () => {
    const existing = await send({ method: 'GET', path: '/v0/pipes/hidden_pipe' }, narrow);
    const missing = await send({ method: 'GET', path: '/v0/pipes/no_such_pipe' }, narrow);
    expect([existing.status, missing.status]).toEqual([403, 403]);
  });
});

describe('a credential with the scope still gets a clear 404 for a missing name', () => {
  for (const [what, route] of routes) {
    it(what, async () => {
      const r = await send(route('no_such_ds'), admin);
      expect(r.status, r.text).toBe(404);
      expect(r.body.code).toBe('UNKNOWN_DATASOURCE');
      expect(r.body.error).toMatch(/no_such_ds/);
    });
  }

  it('a token scoped on the name (which does not exist) too; its own data source answers', async () => {
    const scoped = await api.createToken('scoped_missing', ['DATASOURCES:READ:later']);
    expect(await call(`${srv.url}/v0/datasources/later`, { token: scoped })).toMatchObject({ status: 404, body: { code: 'UNKNOWN_DATASOURCE' } });
    expect((await call(`${srv.url}/v0/datasources/visible`, { token: narrow })).status).toBe(200);
  });

  it('/v0/sql?pipeline=', async () => {
    const r = await send({ method: 'GET', path: `/v0/sql?q=${encodeURIComponent('SELECT 1')}&pipeline=no_such_pipe` }, admin);
    expect(r.status, r.text).toBe(404);
    expect(r.body.code).toBe('UNKNOWN_PIPE');
  });
});
