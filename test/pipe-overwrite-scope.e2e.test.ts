/**
 * Overwriting a pipe that exists takes what deleting it takes: `POST /v0/pipes?force=true` over
 * an existing pipe, and the node routes (add, change, delete, publish, unpublish), need
 * `PIPES:DROP:<pipe>` (or ADMIN) besides `PIPES:CREATE`, as `PUT /v0/pipes/<pipe>` does. With
 * `PIPES:CREATE` alone a token meant to create pipes rewrote or emptied every endpoint of the
 * workspace, also ones it could neither read nor drop. (The service token that created a pipe
 * goes on changing it with `PIPES:CREATE`, as API.md's node routes and Tinybird's publish flow
 * have it.) The refusal is one audited 403 that tells a
 * caller no more than the 409 of a create without force (that the name is taken). Data sources:
 * no create overwrites one (`force` is not a data source parameter), and `mode=replace` needs
 * `DATASOURCES:APPEND:<name>`, not `DATASOURCES:CREATE`.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, workspaceApi, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin = '';
const api = workspaceApi(() => srv, () => admin);
const enc = encodeURIComponent;
/** PIPES:CREATE only. */
let creator = '';
/** PIPES:CREATE and PIPES:READ:victim: may read it, still may not overwrite it. */
let creatorReader = '';
/** PIPES:CREATE and PIPES:DROP:editable. */
let creatorDropper = '';
/** PIPES:DROP:editable only. */
let dropperOnly = '';
/** DATASOURCES:CREATE only. */
let dsCreator = '';

let seq = 0;
const send = (method: string, path: string, token: string, body?: string, headers: Record<string, string> = {}) => {
  const id = `overwrite-${process.pid}-${++seq}`;
  return call(`${srv.url}${path}`, { method, token, body, headers: { ...headers, 'X-Request-Id': id } }).then((r) => ({ ...r, id }));
};
const audited = async (id: string, n = 1) => {
  for (let i = 0; i < 100; i++) {
    const got = srv.logs.filter((l) => l.msg === 'audit' && l.requestId === id);
    if (got.length >= n) return got;
    await new Promise((res) => setTimeout(res, 20));
  }
  return srv.logs.filter((l) => l.msg === 'audit' && l.requestId === id);
};
const JSON_TYPE = { 'Content-Type': 'application/json' };
const FORM_TYPE = { 'Content-Type': 'application/x-www-form-urlencoded' };
const jsonPipe = (name: string, sql: string) => JSON.stringify({ name, nodes: [{ name: `${name}_0`, sql, type: 'endpoint' }] });
/** The pipe as the admin sees it, without the times that a no-op would leave alone anyway. */
const snapshot = async (name: string) => {
  const r = await call(`${srv.url}/v0/pipes/${name}`, { token: admin });
  expect(r.status, r.text).toBe(200);
  return r.body;
};

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.admin_token;
  await api.createDataSource('ev', 'a Int32, secret String', '1,s3cr3t-value\n2,other\n');
  for (const name of ['victim', 'editable']) {
    const r = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: admin, body: jsonPipe(name, 'SELECT a, secret FROM ev'), headers: JSON_TYPE });
    expect(r.status, r.text).toBe(200);
  }
  // Another pipe reads victim's endpoint: a replacement without an endpoint would be refused
  // naming it (409 with dependents), which the caller must not get to see.
  const reader = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: admin, body: jsonPipe('victim_reader', 'SELECT a FROM victim'), headers: JSON_TYPE });
  expect(reader.status, reader.text).toBe(200);
  creator = await api.createToken('creator', ['PIPES:CREATE']);
  creatorReader = await api.createToken('creator_reader', ['PIPES:CREATE', 'PIPES:READ:victim']);
  creatorDropper = await api.createToken('creator_dropper', ['PIPES:CREATE', 'PIPES:DROP:editable']);
  dropperOnly = await api.createToken('dropper_only', ['PIPES:DROP:editable']);
  dsCreator = await api.createToken('ds_creator', ['DATASOURCES:CREATE']);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('POST /v0/pipes?force=true over an existing pipe', () => {
  it('PIPES:CREATE alone: one audited 403, the pipe and its endpoint untouched (JSON and form bodies)', async () => {
    const before = await snapshot('victim');
    const attempts = [
      () => send('POST', '/v0/pipes?force=true', creator, jsonPipe('victim', 'SELECT 666 AS a'), JSON_TYPE),
      // Without an endpoint: would be the 409 naming victim_reader if it got that far.
      () => send('POST', '/v0/pipes?force=true', creator, JSON.stringify({ name: 'victim', nodes: [{ name: 'x', sql: 'SELECT 1 AS a' }] }), JSON_TYPE),
      () => send('POST', '/v0/pipes?force=1&ignore_sql_errors=true', creator, `name=victim&sql=${enc('SELECT 666 AS a')}`, FORM_TYPE),
      () => send('POST', '/v0/pipes?force=true', creatorReader, jsonPipe('victim', 'SELECT 666 AS a'), JSON_TYPE),
    ];
    for (const attempt of attempts) {
      const r = await attempt();
      expect(r.status, r.text).toBe(403);
      expect(r.body.code).toBe('FORBIDDEN');
      expect(Object.keys(r.body).sort()).toEqual(['code', 'error']);
      expect(r.body.error).toContain('PIPES:DROP:victim');
      // Nothing of the pipe: not its SQL, nodes, readers or data.
      expect(r.text).not.toMatch(/victim_reader|victim_0|secret|SELECT/);
      const a = await audited(r.id);
      expect(a.map((x) => [x.event, x.outcome]), r.text).toEqual([['authz.denied', 'denied']]);
      expect(String(a[0]!.resource)).toContain('PIPES:DROP:victim');
    }
    expect(await snapshot('victim')).toEqual(before);
    const ep = await call(`${srv.url}/v0/pipes/victim.json`, { token: admin });
    expect(ep.status, ep.text).toBe(200);
    expect(ep.body.data).toEqual([{ a: 1, secret: 's3cr3t-value' }, { a: 2, secret: 'other' }]);
    expect(srv.logs.some((l) => l.msg === 'audit' && l.event === 'pipe.create' && l.resource === 'victim' && String(l.credential).startsWith('token:creator'))).toBe(false);
  });

  it('tells no more than a create without force: the name is taken (409 there, 403 here); a free name is created', async () => {
    const plain = await send('POST', '/v0/pipes', creator, jsonPipe('victim', 'SELECT 666 AS a'), JSON_TYPE);
    expect(plain.status, plain.text).toBe(409);
    expect(plain.body.code).toBe('ALREADY_EXISTS');
    const fresh = await send('POST', '/v0/pipes?force=true', creator, jsonPipe('creator_new', 'SELECT 1 AS a'), JSON_TYPE);
    expect(fresh.status, fresh.text).toBe(200);
    // Its own pipe it may replace (it created it); a pipe made by someone else it may not.
    const again = await send('POST', '/v0/pipes?force=true', creator, jsonPipe('creator_new', 'SELECT 2 AS a'), JSON_TYPE);
    expect(again.status, again.text).toBe(200);
    const others = await send('POST', '/v0/pipes?force=true', creatorReader, jsonPipe('creator_new', 'SELECT 3 AS a'), JSON_TYPE);
    expect(others.status, others.text).toBe(403);
    expect((await audited(others.id)).map((x) => x.event)).toEqual(['authz.denied']);
  });

  it('PIPES:CREATE with PIPES:DROP:<pipe> replaces it (audited as replaced); PIPES:DROP alone may not create', async () => {
    const only = await send('POST', '/v0/pipes?force=true', dropperOnly, jsonPipe('editable', 'SELECT 7 AS a'), JSON_TYPE);
    expect(only.status, only.text).toBe(403);
    expect(only.body.error).toContain('PIPES:CREATE');
    expect((await audited(only.id)).map((x) => x.event)).toEqual(['authz.denied']);
    const id = (await snapshot('editable')).id;
    const r = await send('POST', '/v0/pipes?force=true', creatorDropper, jsonPipe('editable', 'SELECT 7 AS a'), JSON_TYPE);
    expect(r.status, r.text).toBe(200);
    expect(r.body.id).toBe(id);
    expect(r.body.nodes.map((n: { sql: string }) => n.sql)).toEqual(['SELECT 7 AS a']);
    const a = await audited(r.id);
    expect(a.map((x) => [x.event, x.credential, x.details])).toEqual([['pipe.create', 'token:creator_dropper', { replaced: true, id }]]);
  });
});

describe('node routes of an existing pipe', () => {
  /** Each change of a pipe's nodes or endpoint, for pipe `p`. */
  const routes: Array<[string, (p: string) => { method: string; path: string; body?: string; headers?: Record<string, string> }]> = [
    ['add node', (p) => ({ method: 'POST', path: `/v0/pipes/${p}/nodes?name=added`, body: 'SELECT 666 AS a' })],
    ['change node', (p) => ({ method: 'PUT', path: `/v0/pipes/${p}/nodes/${p}_0`, body: 'SELECT 666 AS a' })],
    ['delete node', (p) => ({ method: 'DELETE', path: `/v0/pipes/${p}/nodes/${p}_0` })],
    ['unpublish', (p) => ({ method: 'DELETE', path: `/v0/pipes/${p}/nodes/${p}_0/endpoint` })],
    ['publish', (p) => ({ method: 'POST', path: `/v0/pipes/${p}/nodes/${p}_0/endpoint` })],
  ];

  for (const [what, route] of routes) {
    it(`${what}: PIPES:CREATE alone gets the same audited 403 for an existing and a missing pipe`, async () => {
      const before = await snapshot('victim');
      const existing = route('victim');
      const missing = route('no_such_pipe');
      const a = await send(existing.method, existing.path, creator, existing.body, existing.headers);
      const b = await send(missing.method, missing.path, creator, missing.body, missing.headers);
      expect([a.status, b.status], `${a.text} ${b.text}`).toEqual([403, 403]);
      expect(b.body.code).toBe(a.body.code);
      expect(b.body.error.replaceAll('no_such_pipe', 'N')).toBe(a.body.error.replaceAll('victim', 'N'));
      for (const r of [a, b]) {
        const got = await audited(r.id);
        expect(got.map((x) => [x.event, x.credential]), r.text).toEqual([['authz.denied', 'token:creator']]);
        expect(String(got[0]!.resource)).toContain('PIPES:DROP:');
      }
      expect(await snapshot('victim')).toEqual(before);
    });
  }

  it('with PIPES:DROP:<pipe> besides PIPES:CREATE each of them works', async () => {
    const add = await send('POST', '/v0/pipes/editable/nodes?name=extra', creatorDropper, 'SELECT 8 AS a');
    expect(add.status, add.text).toBe(200);
    const change = await send('PUT', '/v0/pipes/editable/nodes/extra', creatorDropper, 'SELECT 9 AS a');
    expect(change.status, change.text).toBe(200);
    const publish = await send('POST', '/v0/pipes/editable/nodes/extra/endpoint', creatorDropper);
    expect(publish.status, publish.text).toBe(200);
    const unpublish = await send('DELETE', '/v0/pipes/editable/nodes/extra/endpoint', creatorDropper);
    expect(unpublish.status, unpublish.text).toBe(200);
    const del = await send('DELETE', '/v0/pipes/editable/nodes/extra', creatorDropper);
    expect(del.status, del.text).toBe(204);
    // PIPES:DROP without PIPES:CREATE still may not edit nodes.
    const only = await send('POST', '/v0/pipes/editable/nodes?name=extra2', dropperOnly, 'SELECT 8 AS a');
    expect(only.status, only.text).toBe(403);
  });

  it("the token that created a pipe goes on changing it with PIPES:CREATE alone (API.md's node routes, Tinybird's publish flow); another PIPES:CREATE token may not", async () => {
    const own = await send('POST', '/v0/pipes', creator, jsonPipe('mine', 'SELECT 1 AS a'), JSON_TYPE);
    expect(own.status, own.text).toBe(200);
    const add = await send('POST', '/v0/pipes/mine/nodes?name=daily', creator, 'SELECT a + 1 AS b FROM mine_0');
    expect(add.status, add.text).toBe(200);
    const change = await send('PUT', '/v0/pipes/mine/nodes/daily', creator, 'SELECT a + 2 AS b FROM mine_0');
    expect(change.status, change.text).toBe(200);
    const publish = await send('POST', '/v0/pipes/mine/nodes/daily/endpoint', creator);
    expect(publish.status, publish.text).toBe(200);
    const called = await call(`${srv.url}/v0/pipes/mine.json`, { token: admin });
    expect(called.body.data, called.text).toEqual([{ b: 3 }]);
    const replaced = await send('POST', '/v0/pipes?force=true', creator, jsonPipe('mine', 'SELECT 5 AS a'), JSON_TYPE);
    expect(replaced.status, replaced.text).toBe(200);
    // Another token with the same scope does not hold it (a refresh is the next test's).
    const other = await api.createToken('creator_two', ['PIPES:CREATE']);
    const before = await snapshot('mine');
    const a = await send('PUT', '/v0/pipes/mine/nodes/mine_0', other, 'SELECT 666 AS a');
    const b = await send('POST', '/v0/pipes?force=true', other, jsonPipe('mine', 'SELECT 666 AS a'), JSON_TYPE);
    expect([a.status, b.status], `${a.text} ${b.text}`).toEqual([403, 403]);
    expect(await snapshot('mine')).toEqual(before);
    // Pipes made by an admin token are nobody's: the first describe's refusals stand for them.
  });

  it("a creating token's hold ends when someone else replaces or renames the pipe; a refresh keeps it", async () => {
    const holder = await api.createToken('holder', ['PIPES:CREATE']);
    const made = await send('POST', '/v0/pipes', holder, jsonPipe('held', 'SELECT 1 AS a'), JSON_TYPE);
    expect(made.status, made.text).toBe(200);
    // A refresh keeps the token's id, and so its hold.
    const refreshed = await call(`${srv.url}/v0/tokens/holder/refresh`, { method: 'POST', token: admin });
    expect(refreshed.status, refreshed.text).toBe(200);
    const fresh = refreshed.body.token as string;
    expect(fresh).not.toBe(holder);
    const byFresh = await send('PUT', '/v0/pipes/held/nodes/held_0', fresh, 'SELECT 2 AS a');
    expect(byFresh.status, byFresh.text).toBe(200);
    // The admin replaces it: the token no longer holds it.
    const replaced = await send('POST', '/v0/pipes?force=true', admin, jsonPipe('held', 'SELECT 3 AS a'), JSON_TYPE);
    expect(replaced.status, replaced.text).toBe(200);
    const before = await snapshot('held');
    for (const [method, path, body] of [
      ['PUT', '/v0/pipes/held/nodes/held_0', 'SELECT 666 AS a'],
      ['POST', '/v0/pipes/held/nodes?name=x', 'SELECT 666 AS a'],
      ['DELETE', '/v0/pipes/held/nodes/held_0/endpoint', undefined],
    ] as const) {
      const r = await send(method, path, fresh, body);
      expect(r.status, `${method} ${path}: ${r.text}`).toBe(403);
    }
    const force = await send('POST', '/v0/pipes?force=true', fresh, jsonPipe('held', 'SELECT 666 AS a'), JSON_TYPE);
    expect(force.status, force.text).toBe(403);
    expect(await snapshot('held')).toEqual(before);
    // A rename by someone else ends it too.
    const mine = await send('POST', '/v0/pipes', fresh, jsonPipe('scratch', 'SELECT 1 AS a'), JSON_TYPE);
    expect(mine.status, mine.text).toBe(200);
    const renamed = await send('PUT', '/v0/pipes/scratch?name=prod_endpoint', admin);
    expect(renamed.status, renamed.text).toBe(200);
    const after = await send('POST', '/v0/pipes/prod_endpoint/nodes?name=x', fresh, 'SELECT 666 AS a');
    expect(after.status, after.text).toBe(403);
  });

  it('the hold is checked on the pipe the change lands on: a pipe re-created under the name while the body arrives is not changed', async () => {
    const racer = await api.createToken('racer', ['PIPES:CREATE']);
    const made = await send('POST', '/v0/pipes', racer, jsonPipe('raced', 'SELECT 1 AS a'), JSON_TYPE);
    expect(made.status, made.text).toBe(200);
    const url = new URL(`${srv.url}/v0/pipes/raced/nodes?name=injected`);
    const body = 'SELECT 666 AS a';
    let release!: () => void;
    const answered = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(url, { method: 'POST', headers: { Authorization: `Bearer ${racer}`, 'Content-Length': String(Buffer.byteLength(body)) } }, (res) => {
        let text = '';
        res.on('data', (c) => { text += c; });
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.write(body.slice(0, 3));
      release = () => req.end(body.slice(3));
    });
    // Meanwhile the admin deletes the pipe and makes another under the name.
    await new Promise((r) => setTimeout(r, 200));
    const del = await call(`${srv.url}/v0/pipes/raced`, { method: 'DELETE', token: admin });
    expect(del.status, del.text).toBe(204);
    const again = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: admin, body: jsonPipe('raced', 'SELECT 2 AS a'), headers: JSON_TYPE });
    expect(again.status, again.text).toBe(200);
    release();
    const r = await answered;
    expect(r.status, r.text).toBe(403);
    const now = await snapshot('raced');
    expect(now.nodes.map((n: { name: string }) => n.name)).toEqual(['raced_0']);
  });

  it('there is no datafile push: POST of a .pipe is 405', async () => {
    const r = await send('POST', '/v0/pipes/victim.pipe', creator, 'NODE x\nSQL >\n    SELECT 666 AS a\n');
    expect(r.status, r.text).toBe(405);
  });
});

describe('data sources: DATASOURCES:CREATE overwrites nothing', () => {
  const count = async () => (await api.rows('SELECT count() AS n FROM ev'))[0].n;

  it('mode=replace (and append) needs DATASOURCES:APPEND:<name>: the same audited 403 for an existing and a missing data source, rows kept', async () => {
    const before = await count();
    for (const mode of ['replace', 'append']) {
      const a = await send('POST', `/v0/datasources?name=ev&mode=${mode}`, dsCreator, '9,x\n', { 'Content-Type': 'text/csv' });
      const b = await send('POST', `/v0/datasources?name=no_such_ds&mode=${mode}`, dsCreator, '9,x\n', { 'Content-Type': 'text/csv' });
      expect([a.status, b.status], `${a.text} ${b.text}`).toEqual([403, 403]);
      expect(b.body.error.replaceAll('no_such_ds', 'N')).toBe(a.body.error.replaceAll('ev', 'N'));
      for (const r of [a, b]) expect((await audited(r.id)).map((x) => [x.event, x.credential])).toEqual([['authz.denied', 'token:ds_creator']]);
    }
    expect(await count()).toBe(before);
  });

  it('mode=create over an existing name is 409 whatever else is asked (force, another schema), rows kept', async () => {
    const before = await count();
    for (const extra of ['&force=true', '&force=true&replace=true', `&schema=${enc('b String')}&force=1`]) {
      const r = await send('POST', `/v0/datasources?name=ev&mode=create${extra}`, dsCreator, 'z\n', { 'Content-Type': 'text/csv' });
      expect(r.status, r.text).toBe(409);
      expect(r.body.code).toBe('ALREADY_EXISTS');
    }
    expect(await count()).toBe(before);
    const ds = await call(`${srv.url}/v0/datasources/ev`, { token: admin });
    expect(ds.body.schema.columns.map((c: { name: string }) => c.name)).toEqual(['a', 'secret']);
  });
});
