/** Service tokens, Tinybird JWT tokens and rate limits, over HTTP against the real server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as jose from 'jose';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
const audits = (pred: (a: Record<string, unknown>) => boolean) => srv.logs.filter((l) => l.msg === 'audit' && pred(l));
const waitAudit = async (pred: (a: Record<string, unknown>) => boolean) => {
  for (let i = 0; i < 50 && audits(pred).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  return audits(pred);
};

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => { await srv?.stop(); });

describe('service tokens API', () => {
  it('creates a token with repeated scope= params and shows its secret once', async () => {
    const r = await call(`${srv.url}/v0/tokens?name=ingest&scope=DATASOURCES:APPEND:events&scope=PIPES:READ:top`, { method: 'POST', token: admin });
    expect(r.status).toBe(200);
    expect(r.body.token).toMatch(/^p\.rst_[A-Za-z0-9_-]{43}$/);
    expect(r.body.scopes).toEqual([{ type: 'DATASOURCES:APPEND', resource: 'events', filter: '' }, { type: 'PIPES:READ', resource: 'top', filter: '' }]);
    const one = await call(`${srv.url}/v0/tokens/ingest`, { token: admin });
    expect(one.status).toBe(200);
    expect(one.body.token).toBeUndefined();
    const list = await call(`${srv.url}/v0/tokens`, { token: admin });
    expect(list.body.tokens.map((t: { name: string }) => t.name)).toContain('ingest');
    expect(JSON.stringify(list.body)).not.toContain(r.body.token);
    expect(await waitAudit((a) => a.event === 'token.created' && a.resource === 'token:ingest')).toHaveLength(1);
  });

  it('refuses unknown scopes and duplicate names with 4xx JSON', async () => {
    expect(await call(`${srv.url}/v0/tokens?name=bad&scope=EVERYTHING`, { method: 'POST', token: admin })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(await call(`${srv.url}/v0/tokens?name=ingest&scope=ADMIN`, { method: 'POST', token: admin })).toMatchObject({ status: 409, body: { code: 'ALREADY_EXISTS' } });
    expect(await call(`${srv.url}/v0/tokens?scope=ADMIN`, { method: 'POST', token: admin })).toMatchObject({ status: 400 });
  });

  it('PUT replaces scopes, refresh rotates the secret, DELETE ends it', async () => {
    const made = await call(`${srv.url}/v0/tokens?name=rot&scope=TOKENS`, { method: 'POST', token: admin });
    const first = made.body.token as string;
    expect((await call(`${srv.url}/v0/tokens`, { token: first })).status).toBe(200);
    const put = await call(`${srv.url}/v0/tokens/rot?scope=PIPES:READ:top`, { method: 'PUT', token: admin });
    expect(put.body.scopes).toEqual([{ type: 'PIPES:READ', resource: 'top', filter: '' }]);
    expect(await call(`${srv.url}/v0/tokens`, { token: first })).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    const ref = await call(`${srv.url}/v0/tokens/rot/refresh`, { method: 'POST', token: admin });
    expect(ref.body.token).toMatch(/^p\.rst_/);
    expect((await call(`${srv.url}/auth/session`, { token: first })).status).toBe(401);
    expect((await call(`${srv.url}/auth/session`, { token: ref.body.token })).status).toBe(200);
    expect((await call(`${srv.url}/v0/tokens/rot`, { method: 'DELETE', token: admin })).status).toBe(204);
    expect((await call(`${srv.url}/auth/session`, { token: ref.body.token })).status).toBe(401);
  });

  it('a TOKENS token cannot mint, see or refresh ADMIN tokens (audited)', async () => {
    const t = (await call(`${srv.url}/v0/tokens?name=manager&scope=TOKENS`, { method: 'POST', token: admin })).body.token;
    expect(await call(`${srv.url}/v0/tokens?name=escalate&scope=ADMIN`, { method: 'POST', token: t })).toMatchObject({ status: 403 });
    expect(await call(`${srv.url}/v0/tokens/workspace%20admin%20token/refresh`, { method: 'POST', token: t })).toMatchObject({ status: 403 });
    const list = await call(`${srv.url}/v0/tokens`, { token: t });
    expect(list.body.tokens.every((x: { scopes: Array<{ type: string }> }) => x.scopes.every((s) => s.type !== 'ADMIN'))).toBe(true);
    expect((await call(`${srv.url}/v0/tokens?name=ok&scope=PIPES:READ:top`, { method: 'POST', token: t })).status).toBe(200);
    expect((await waitAudit((a) => a.event === 'authz.denied' && a.credential === 'token:manager')).length).toBeGreaterThanOrEqual(2);
  });

  it('a token with PIPES:READ:x cannot manage tokens, and the denial is audited', async () => {
    const t = (await call(`${srv.url}/v0/tokens?name=reader&scope=PIPES:READ:x`, { method: 'POST', token: admin })).body.token;
    expect(await call(`${srv.url}/v0/tokens`, { token: t })).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    expect(await waitAudit((a) => a.event === 'authz.denied' && a.credential === 'token:reader' && a.tenant === 'local')).toHaveLength(1);
  });

  it('a token of workspace A cannot administer tenant B (audited)', async () => {
    await call(`${srv.url}/v0/tenants`, { method: 'POST', token: srv.operatorToken, body: JSON.stringify({ slug: 'other' }) });
    expect(await call(`${srv.url}/v0/tenants/other/connections`, { token: admin })).toMatchObject({ status: 403 });
    const recs = await waitAudit((a) => a.event === 'authz.denied' && String(a.resource).includes('tenant other'));
    // In the token's tenant, naming the token; and in the tenant tried, naming no one.
    expect(recs.filter((a) => a.tenant !== 'other')).toHaveLength(1);
    expect(recs.filter((a) => a.tenant === 'other')).toMatchObject([{ credential: 'another tenant', outcome: 'denied' }]);
  });
});

describe('rate limits', () => {
  it('answers 429 with Retry-After and X-RateLimit-* over the token\'s rps', async () => {
    const t = (await call(`${srv.url}/v0/tokens?name=slow&scope=PIPES:READ:top&rps=2`, { method: 'POST', token: admin })).body.token;
    const a = await call(`${srv.url}/auth/session`, { token: t });
    expect(a.status).toBe(200);
    expect(a.headers.get('x-ratelimit-limit')).toBe('2');
    await call(`${srv.url}/auth/session`, { token: t });
    const c = await call(`${srv.url}/auth/session`, { token: t });
    expect(c).toMatchObject({ status: 429, body: { code: 'RATE_LIMITED' } });
    expect(Number(c.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(c.headers.get('x-ratelimit-remaining')).toBe('0');
    // The denial is the token's workspace's record (it was filed as the tenant's only).
    const [denied] = await waitAudit((x) => x.event === 'auth.rate_limited' && x.requestId === c.headers.get('x-request-id'));
    expect(denied).toMatchObject({ outcome: 'denied', tenant: 'local', workspace: 'default', credential: 'token:slow' });
    expect(typeof denied!.workspaceId).toBe('string');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await call(`${srv.url}/auth/session`, { token: t })).status).toBe(200);
  });
});

describe('Tinybird JWT tokens', () => {
  const future = () => Math.floor(Date.now() / 1000) + 600;

  it('creates a JWT with fixed_params and limits, and accepts it with its scopes only', async () => {
    const r = await call(`${srv.url}/v0/tokens?name=embed&expiration_time=${future()}`, {
      method: 'POST', token: admin, headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ scopes: [{ type: 'PIPES:READ', resource: 'top', fixed_params: { org: 'acme' } }], limits: { rps: 1 } }),
    });
    expect(r.status).toBe(200);
    const jwt = r.body.token as string;
    expect(jose.decodeProtectedHeader(jwt).alg).toBe('HS256');
    const me = await call(`${srv.url}/auth/session`, { token: jwt });
    expect(me).toMatchObject({ status: 200, body: { kind: 'jwt', credential: 'jwt:embed' } });
    const limited = await call(`${srv.url}/auth/session`, { token: jwt });
    expect(limited.status).toBe(429);
    await new Promise((res) => setTimeout(res, 1100));
    expect(await call(`${srv.url}/v0/tokens`, { token: jwt })).toMatchObject({ status: 403 });
  });

  it('verifies with the workspace admin token: wrong key, alg none and expiry are refused', async () => {
    const ws = (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces[0];
    const claims = { workspace_id: ws.id, name: 'x', scopes: [{ type: 'PIPES:READ', resource: 'top' }] };
    const good = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(future()).sign(new TextEncoder().encode(admin));
    expect((await call(`${srv.url}/auth/session`, { token: good })).status).toBe(200);
    const wrong = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(future()).sign(new TextEncoder().encode('p.rst_not-the-admin-token-secret-000000000000000'));
    expect((await call(`${srv.url}/auth/session`, { token: wrong })).status).toBe(401);
    const none = new jose.UnsecuredJWT({ ...claims, exp: future() }).encode();
    expect((await call(`${srv.url}/auth/session`, { token: none })).status).toBe(401);
    const expired = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) - 10).sign(new TextEncoder().encode(admin));
    expect(await call(`${srv.url}/auth/session`, { token: expired })).toMatchObject({ status: 403, body: { code: 'TOKEN_EXPIRED' } });
    expect((await waitAudit((a) => a.event === 'auth.credential' && String(a.reason).includes('expired'))).length).toBeGreaterThanOrEqual(1);
  });

  it('a JSON body sent as a form (curl -d, as Tinybird\'s examples do) is read as JSON', async () => {
    const r = await call(`${srv.url}/v0/tokens?name=formjson&expiration_time=${future()}`, {
      method: 'POST', token: admin, headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: JSON.stringify({ scopes: [{ type: 'PIPES:READ', resource: 'top' }] }),
    });
    expect(r.status, r.text).toBe(200);
    expect((await call(`${srv.url}/auth/session`, { token: r.body.token })).status).toBe(200);
  });

  it('refreshing the workspace admin token invalidates its JWTs', async () => {
    const mk = await call(`${srv.url}/v0/tokens?name=short&expiration_time=${future()}`, { method: 'POST', token: admin, body: JSON.stringify({ scopes: [{ type: 'PIPES:READ', resource: 'top' }] }) });
    expect((await call(`${srv.url}/auth/session`, { token: mk.body.token })).status).toBe(200);
    const ref = await call(`${srv.url}/v0/tokens/workspace%20admin%20token/refresh`, { method: 'POST', token: admin });
    expect(ref.status).toBe(200);
    admin = ref.body.token;
    expect((await call(`${srv.url}/auth/session`, { token: mk.body.token })).status).toBe(401);
  });
});
