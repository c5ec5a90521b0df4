/**
 * Token scopes against the real server: what a scoped credential reaches
 * through routes other than the one it was made for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as jose from 'jose';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
const post = (path: string, body?: BodyInit, headers: Record<string, string> = {}, token = admin) =>
  call(`${srv.url}${path}`, { method: 'POST', token, body, headers });
const get = (path: string, token = admin) => call(`${srv.url}${path}`, { token });
const audits = (pred: (a: Record<string, unknown>) => boolean) => srv.logs.filter((l) => l.msg === 'audit' && pred(l));
const waitAudit = async (pred: (a: Record<string, unknown>) => boolean) => {
  for (let i = 0; i < 50 && audits(pred).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  return audits(pred);
};

async function jwtFor(payload: Record<string, unknown>): Promise<string> {
  const ws = (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces[0];
  return new jose.SignJWT({ workspace_id: ws.id, ...payload })
    .setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(new TextEncoder().encode(admin));
}

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await post(`/v0/datasources?name=orders&schema=${encodeURIComponent('id Int32, org String')}`)).status).toBe(200);
  expect((await post('/v0/datasources?name=orders&mode=append', '1,acme\n2,acme\n3,globex\n', { 'Content-Type': 'text/csv' })).body.rows).toBe(3);
  const nodes = [
    { name: 'raw', sql: 'SELECT * FROM orders' },
    { name: 'by_org', sql: '%\nSELECT org, count() AS n FROM raw WHERE org = {{String(org, "acme")}} GROUP BY org', type: 'endpoint' },
  ];
  const r = await post('/v0/pipes', JSON.stringify({ name: 'org_orders', nodes }), { 'Content-Type': 'application/json' });
  expect(r.status, r.text).toBe(200);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('JWT fixed_params through /v0/sql?pipeline=', () => {
  it('the endpoint itself honours the fixed parameter (baseline)', async () => {
    const jwt = await jwtFor({ name: 'acme_only', scopes: [{ type: 'PIPES:READ', resource: 'org_orders', fixed_params: { org: 'acme' } }] });
    const r = await get('/v0/pipes/org_orders.json?org=globex', jwt);
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ org: 'acme', n: 2 }]);
  });

  it('pipeline= compiles the endpoint node with the fixed parameter, not the request\'s', async () => {
    const jwt = await jwtFor({ name: 'acme_only_sql', scopes: [{ type: 'PIPES:READ', resource: 'org_orders', fixed_params: { org: 'acme' } }] });
    const r = await get(`/v0/sql?pipeline=org_orders&org=globex&q=${encodeURIComponent('SELECT org, n FROM by_org FORMAT JSON')}`, jwt);
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ org: 'acme', n: 2 }]);
  });

  it('pipeline= does not open the nodes before the fixed filter to such a token (403, audited)', async () => {
    const jwt = await jwtFor({ name: 'acme_only_raw', scopes: [{ type: 'PIPES:READ', resource: 'org_orders', fixed_params: { org: 'acme' } }] });
    const r = await get(`/v0/sql?pipeline=org_orders&q=${encodeURIComponent('SELECT org FROM raw ORDER BY id FORMAT JSON')}`, jwt);
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toContain('globex');
    expect(await waitAudit((a) => a.event === 'authz.denied' && a.credential === 'jwt:acme_only_raw')).toHaveLength(1);
  });

  it('a pipe token without fixed parameters still reads the pipe\'s nodes, as documented', async () => {
    const t = (await post('/v0/tokens?name=org_reader&scope=PIPES:READ:org_orders')).body.token;
    const r = await get(`/v0/sql?pipeline=org_orders&q=${encodeURIComponent('SELECT count() AS c FROM raw FORMAT JSON')}`, t);
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ c: 3 }]);
  });
});
