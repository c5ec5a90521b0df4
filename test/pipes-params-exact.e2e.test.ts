/**
 * Endpoint parameters arrive as they were sent: a JSON integer past 2^53 (a UInt64 id) in a POST
 * body, in /v0/sql's JSON body, or in a JWT's fixed_params is that integer, not the nearest double
 * (which is another id: the caller read another tenant's rows); a parameter named like a member
 * every JavaScript object inherits (`toString`, `constructor`, `__proto__`) is a parameter.
 * Real server, real engine, real HTTP; the JWT is signed here by hand, as a Tinybird client's
 * library may write it (the number as its digits).
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
let wsId: string;
const A = '9007199254740992';  // 2^53
const B = '9007199254740993';  // 2^53 + 1: the same double as A

const post = (path: string, body: string, token = admin) => call(`${srv.url}${path}`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body });
const pipe = (name: string, sql: string) => post('/v0/pipes', JSON.stringify({ name, nodes: [{ name: 'n', type: 'endpoint', sql }] }));

/** An HS256 JWT of `payload` (JSON text, numbers as written) signed with `key`. */
function jwt(payload: string, key: string): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  const head = `${b64('{"alg":"HS256","typ":"JWT"}')}.${b64(payload)}`;
  return `${head}.${crypto.createHmac('sha256', key).update(head).digest('base64url')}`;
}

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  wsId = (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces[0].id;
  const ds = await call(`${srv.url}/v0/datasources?name=accts&schema=${encodeURIComponent('uid UInt64, secret String')}`, { method: 'POST', token: admin });
  expect(ds.status, ds.text).toBe(200);
  const rows = await call(`${srv.url}/v0/datasources?name=accts&mode=append`, { method: 'POST', token: admin, body: `${A},tenant_A_data\n${B},tenant_B_data\n` });
  expect(rows.status, rows.text).toBe(200);
  for (const [name, sql] of [
    ['acct', '%\nSELECT uid, secret FROM accts WHERE uid = {{UInt64(uid)}}'],
    ['echo', "%\nSELECT toString({{UInt64(v, 0)}}) AS v, {{Int32(toString, 5)}} AS a, {{String(constructor, 'c')}} AS b"],
  ]) {
    const r = await pipe(name, sql);
    expect(r.status, r.text).toBe(200);
  }
}, 90_000);
afterAll(async () => { await srv?.stop(); });

describe('integers past 2^53', () => {
  it('in a POST body are the integers sent', async () => {
    const r = await post('/v0/pipes/acct.json', `{"uid": ${B}}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.data.map((x: { secret: string }) => x.secret)).toEqual(['tenant_B_data']);
    const max = await post('/v0/pipes/echo.json', '{"v": 18446744073709551615}');
    expect(max.status, max.text).toBe(200);
    expect(max.body.data[0].v).toBe('18446744073709551615');
    // An array of them, and the query string, as before.
    expect((await call(`${srv.url}/v0/pipes/acct.json?uid=${B}`, { token: admin })).body.data[0].secret).toBe('tenant_B_data');
  });

  it('in /v0/sql\'s JSON body are the integers sent', async () => {
    const r = await post('/v0/sql', `{"q": "SELECT secret FROM acct FORMAT JSON", "uid": ${B}}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ secret: 'tenant_B_data' }]);
  });

  it('in a JWT\'s fixed_params are the integers signed', async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const token = jwt(`{"workspace_id":"${wsId}","name":"embed_b","exp":${exp},"scopes":[{"type":"PIPES:READ","resource":"acct","fixed_params":{"uid":${B}}}]}`, admin);
    const r = await call(`${srv.url}/v0/pipes/acct.json`, { token });
    expect(r.status, r.text).toBe(200);
    expect(r.body.data.map((x: { secret: string }) => x.secret)).toEqual(['tenant_B_data']);
    // Minted by Roost from a JSON body with such a number: the same.
    const minted = await call(`${srv.url}/v0/tokens?name=embed_b2&expiration_time=${exp}`, {
      method: 'POST', token: admin, headers: { 'Content-Type': 'application/json' },
      body: `{"scopes": [{"type": "PIPES:READ", "resource": "acct", "fixed_params": {"uid": ${B}}}]}`,
    });
    expect(minted.status, minted.text).toBe(200);
    const r2 = await call(`${srv.url}/v0/pipes/acct.json`, { token: minted.body.token });
    expect(r2.status, r2.text).toBe(200);
    expect(r2.body.data.map((x: { secret: string }) => x.secret)).toEqual(['tenant_B_data']);
  });
});

describe('parameters named like what every object inherits', () => {
  it('are parameters (query string, form and JSON bodies), and __proto__ sets nothing', async () => {
    const q = await call(`${srv.url}/v0/pipes/echo.json?toString=7&constructor=x&__proto__=y`, { token: admin });
    expect(q.status, q.text).toBe(200);
    expect(q.body.data[0]).toMatchObject({ a: 7, b: 'x' });
    const form = await call(`${srv.url}/v0/pipes/echo.json`, { method: 'POST', token: admin, headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'toString=8' });
    expect(form.status, form.text).toBe(200);
    expect(form.body.data[0].a).toBe(8);
    const json = await post('/v0/pipes/echo.json', '{"toString": "9", "constructor": "j"}');
    expect(json.status, json.text).toBe(200);
    expect(json.body.data[0]).toMatchObject({ a: 9, b: 'j' });
    // Not given: the default, not the inherited function.
    const none = await call(`${srv.url}/v0/pipes/echo.json`, { token: admin });
    expect(none.body.data[0]).toMatchObject({ a: 5, b: 'c' });
  });
});

describe('names shaped like ids', () => {
  it('are refused for pipes and data sources; a path with an id reaches the pipe of that id', async () => {
    const acct = await call(`${srv.url}/v0/pipes/acct`, { token: admin });
    const id = acct.body.id as string;
    expect(id).toMatch(/^t_[0-9a-f]{16}$/);
    // A PIPES:CREATE token took over calls made by id by naming a new pipe after it.
    const creator = (await call(`${srv.url}/v0/tokens?name=creator&scope=PIPES:CREATE`, { method: 'POST', token: admin })).body.token;
    const r = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: creator, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: id, nodes: [{ name: 'n', type: 'endpoint', sql: "SELECT 'fake' AS secret" }] }) });
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toContain('shaped like a pipe or data source id');
    const ds = await call(`${srv.url}/v0/datasources?name=t_0123456789abcdef&schema=${encodeURIComponent('a Int32')}`, { method: 'POST', token: admin });
    expect(ds.status, ds.text).toBe(400);
    // By id, the pipe of that id.
    const byId = await call(`${srv.url}/v0/pipes/${id}.json?uid=${B}`, { token: admin });
    expect(byId.status, byId.text).toBe(200);
    expect(byId.body.data[0].secret).toBe('tenant_B_data');
  });
});
