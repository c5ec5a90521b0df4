/**
 * Adversarial audit of /v0/tokens and service-token authorization, against the real server:
 * what auth-tokens, security-scopes and concurrency-tokens do not cover.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
let mgr: string; // a token with only TOKENS
const post = (path: string, token = admin, body?: BodyInit, headers: Record<string, string> = {}) =>
  call(`${srv.url}${path}`, { method: 'POST', token, body, headers });
const get = (path: string, token = admin) => call(`${srv.url}${path}`, { token });
const put = (path: string, token = admin) => call(`${srv.url}${path}`, { method: 'PUT', token });
const del = (path: string, token = admin) => call(`${srv.url}${path}`, { method: 'DELETE', token });
const audits = (pred: (a: Record<string, unknown>) => boolean) => srv.logs.filter((l) => l.msg === 'audit' && pred(l));
const waitAudit = async (pred: (a: Record<string, unknown>) => boolean) => {
  for (let i = 0; i < 50 && audits(pred).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  return audits(pred);
};
const sql = (q: string, token: string) => get(`/v0/sql?q=${encodeURIComponent(q)}`, token);
const enc = encodeURIComponent;

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await post(`/v0/datasources?name=orders&schema=${enc('id Int32, org String')}`)).status).toBe(200);
  expect((await post('/v0/datasources?name=orders&mode=append', admin, '1,acme\n2,acme\n3,globex\n', { 'Content-Type': 'text/csv' })).body.rows).toBe(3);
  const m = await post('/v0/tokens?name=mgr&scope=TOKENS');
  expect(m.status, m.text).toBe(200);
  mgr = m.body.token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('scope spellings', () => {
  it('ADMIN spelled with spaces (form body) is still ADMIN and refused to a TOKENS token; odd cases are 400', async () => {
    const r = await post('/v0/tokens', mgr, `name=sp&scope=${enc(' ADMIN ')}`, { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(r.status, r.text).toBe(403);
    for (const s of ['admin', 'Admin', 'ADMIN:x', 'TOKENS:x', 'DATASOURCES:CREATE:x', 'DATASOURCES:READ', 'PIPES:READ:', 'DATASOURCES:READ: orders', 'DATASOURCES:WRITE:orders', 'DATASOURCES:READ:ws.other;x']) {
      const x = await post(`/v0/tokens?name=odd&scope=${enc(s)}`);
      expect(x.status, `${s}: ${x.text}`).toBe(400);
    }
  });

  it('duplicate scopes collapse to one', async () => {
    const r = await post(`/v0/tokens?name=dup&scope=PIPES:READ:a&scope=PIPES:READ:a&scope=${enc(' PIPES:READ:a')}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.scopes).toHaveLength(1);
  });

  it('a TOKENS token cannot PUT ADMIN onto itself or another token (403, audited)', async () => {
    expect((await put('/v0/tokens/mgr?scope=ADMIN', mgr)).status).toBe(403);
    expect((await put('/v0/tokens/dup?scope=ADMIN&scope=PIPES:READ:a', mgr)).status).toBe(403);
    expect((await get('/v0/tokens/mgr')).body.scopes).toEqual([{ type: 'TOKENS', filter: '' }]);
    expect((await waitAudit((a) => a.event === 'authz.denied' && a.credential === 'token:mgr')).length).toBeGreaterThanOrEqual(3);
  });

  it('a TOKENS token cannot grant the audit log (a token or a JWT), nor see, change or refresh a token that reads it (403, audited)', async () => {
    const h = { 'Content-Type': 'application/json' };
    for (const s of ['DATASOURCES:READ:roost.audit_log', "DATASOURCES:READ:roost.audit_log:event = 'token.created'"]) {
      const r = await post(`/v0/tokens?name=aud&scope=${enc(s)}`, mgr);
      expect(r.status, `${s}: ${r.text}`).toBe(403);
      expect(r.body).toMatchObject({ code: 'FORBIDDEN', error: expect.any(String) });
    }
    const jwt = await post(`/v0/tokens?name=audjwt&expiration_time=${Math.floor(Date.now() / 1000) + 600}`, mgr, JSON.stringify({ scopes: [{ type: 'DATASOURCES:READ', resource: 'roost.audit_log' }] }), h);
    expect(jwt.status, jwt.text).toBe(403);
    expect((await put(`/v0/tokens/dup?scope=${enc('DATASOURCES:READ:roost.audit_log')}`, mgr)).status).toBe(403);
    // One an ADMIN credential made: out of the TOKENS token's list and reach, like ADMIN tokens.
    expect((await post(`/v0/tokens?name=auditor&scope=${enc('DATASOURCES:READ:roost.audit_log')}`)).status).toBe(200);
    expect(((await get('/v0/tokens', mgr)).body.tokens as Array<{ name: string }>).map((t) => t.name)).not.toContain('auditor');
    expect((await get('/v0/tokens/auditor', mgr)).status).toBe(403);
    expect((await post('/v0/tokens/auditor/refresh', mgr)).status).toBe(403);
    expect((await waitAudit((a) => a.event === 'authz.denied' && a.credential === 'token:mgr' && String(a.resource).includes('ADMIN'))).length).toBeGreaterThanOrEqual(6);
  });

  it('a TOKENS token cannot reach the workspace admin token by its id either', async () => {
    const list = (await get('/v0/tokens')).body.tokens as Array<{ id: string; name: string }>;
    const wat = list.find((t) => t.name === 'workspace admin token')!;
    expect((await get(`/v0/tokens/${wat.id}`, mgr)).status).toBe(403);
    expect((await post(`/v0/tokens/${wat.id}/refresh`, mgr)).status).toBe(403);
    expect((await del(`/v0/tokens/${wat.id}`, mgr)).status).toBe(403);
    expect((await get('/v0/tokens', mgr)).body.tokens.map((t: { name: string }) => t.name)).not.toContain('workspace admin token');
  });
});

describe('row filters', () => {
  it('a filter that closes its own parenthesis cannot undo the token\'s other filters', async () => {
    const r = await post(`/v0/tokens?name=esc&scope=${enc("DATASOURCES:READ:orders:org = 'acme') OR (1")}&scope=${enc('DATASOURCES:READ:orders:id > 5')}`);
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatch(/parentheses/);
    // Balanced parentheses and quotes, a ')' inside a string: still fine.
    const ok = await post(`/v0/tokens?name=paren_ok&scope=${enc("DATASOURCES:READ:orders:(org = ')(') OR (id IN (1, 2))")}&scope=${enc('DATASOURCES:READ:orders:id > 1')}`);
    expect(ok.status, ok.text).toBe(200);
    expect((await sql('SELECT id FROM orders ORDER BY id FORMAT JSON', ok.body.token)).body.data).toEqual([{ id: 2 }]);
  });

  it('a filter with a colon in a string keeps it', async () => {
    const r = await post(`/v0/tokens?name=colon&scope=${enc("DATASOURCES:READ:orders:org != 'a:b'")}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.scopes[0]).toEqual({ type: 'DATASOURCES:READ', resource: 'orders', filter: "org != 'a:b'" });
    expect((await sql('SELECT count() AS n FROM orders FORMAT JSON', r.body.token)).body.data).toEqual([{ n: 3 }]);
  });
});

describe('names', () => {
  it('refuses control characters, unicode and over-long names; spaces work through the path', async () => {
    for (const n of ['a\nb', 'a\u0000b', 'ñame', 'x'.repeat(129), '']) expect((await post(`/v0/tokens?name=${enc(n)}&scope=PIPES:READ:a`)).status, JSON.stringify(n)).toBe(400);
    expect((await post(`/v0/tokens?name=${enc('my token')}&scope=PIPES:READ:a`)).status).toBe(200);
    expect((await get(`/v0/tokens/${enc('my token')}`)).body.name).toBe('my token');
  });

  it('names that only differ by surrounding spaces, or are dot segments, are refused', async () => {
    for (const n of [' lead', 'trail ', '.', '..']) expect((await post(`/v0/tokens?name=${enc(n)}&scope=PIPES:READ:a`)).status, JSON.stringify(n)).toBe(400);
  });

  it('a token name cannot shadow another token\'s id', async () => {
    const a = await post('/v0/tokens?name=victim&scope=PIPES:READ:a');
    const r = await post(`/v0/tokens?name=${a.body.id}&scope=PIPES:READ:b`);
    expect(r.status).toBe(400);
    expect((await get(`/v0/tokens/${a.body.id}`)).body.name).toBe('victim');
  });
});

describe('the workspace admin token and the requesting token', () => {
  it('a TOKENS token cannot take the workspace admin token\'s name (it would sign JWTs)', async () => {
    expect((await post(`/v0/tokens?name=${enc('workspace admin token')}&scope=PIPES:READ:a`, mgr)).status).toBe(400);
    expect((await post(`/v0/tokens?name=${enc('workspace admin token')}&scope=ADMIN`, mgr)).status).toBe(403);
    expect((await put(`/v0/tokens/dup?name=${enc('workspace admin token')}`, mgr)).status).toBeGreaterThanOrEqual(400);
  });

  it('refreshing the token making the request answers its new secret; the old one is gone', async () => {
    const t = await post('/v0/tokens?name=self&scope=TOKENS');
    const r = await post('/v0/tokens/self/refresh', t.body.token);
    expect(r.status).toBe(200);
    expect((await get('/v0/tokens', t.body.token)).status).toBe(401);
    expect((await get('/v0/tokens', r.body.token)).status).toBe(200);
    expect(await waitAudit((a) => a.event === 'token.refreshed' && a.resource === 'token:self')).toHaveLength(1);
    expect((await del('/v0/tokens/self', r.body.token)).status).toBe(204);
    expect((await get('/v0/tokens', r.body.token)).status).toBe(401);
    expect(await waitAudit((a) => a.event === 'token.deleted' && a.resource === 'token:self')).toHaveLength(1);
  });

  it('updates are audited with what changed', async () => {
    expect((await put('/v0/tokens/dup?description=x&rps=5')).status).toBe(200);
    expect(await waitAudit((a) => a.event === 'token.updated' && a.resource === 'token:dup')).toHaveLength(1);
  });
});

describe('rate limits', () => {
  it('a token limited to under one request per second still gets requests through', async () => {
    // Such a token was minted and then refused every request (429) forever: now refused at minting.
    expect((await post('/v0/tokens?name=slow&scope=DATASOURCES:READ:orders&rps=0.5')).status).toBe(400);
    expect((await put('/v0/tokens/dup?rps=0.5')).status).toBe(400);
    const r = await post('/v0/tokens?name=slow&scope=DATASOURCES:READ:orders&rps=1');
    expect((await sql('SELECT 1 FROM orders LIMIT 1 FORMAT JSON', r.body.token)).status).toBe(200);
  });

  it('a JWT limited to under one request per second still gets requests through', async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const r = await post('/v0/tokens?name=slowjwt&expiration_time=' + exp, admin, JSON.stringify({ scopes: [{ type: 'DATASOURCES:READ', resource: 'orders' }], limits: { rps: 0.5 } }), { 'Content-Type': 'application/json' });
    expect(r.status, r.text).toBe(400);
  });

  it('a JWT minted with a control character in its name is refused', async () => {
    const exp = Math.floor(Date.now() / 1000) + 600;
    const r = await post(`/v0/tokens?name=${enc('j\nx')}&expiration_time=${exp}`, admin, JSON.stringify({ scopes: [{ type: 'DATASOURCES:READ', resource: 'orders' }] }), { 'Content-Type': 'application/json' });
    expect(r.status).toBe(400);
  });
});

describe('other workspaces and the workspace admin token\'s name', () => {
  it('a scope naming another workspace\'s database reads nothing of it', async () => {
    const w = await call(`${srv.url}/v0/tenants/local/workspaces`, { method: 'POST', token: srv.operatorToken, body: JSON.stringify({ name: 'other' }), headers: { 'Content-Type': 'application/json' } });
    expect(w.status, w.text).toBe(201);
    const ot = w.body.token as string;
    expect((await post(`/v0/datasources?name=secret&schema=${enc('s String')}`, ot)).status).toBe(200);
    expect((await post('/v0/datasources?name=secret&mode=append', ot, 'VAULT\n', { 'Content-Type': 'text/csv' })).status).toBe(200);
    const db = String(w.body.database);
    for (const res of [`${db}.secret`, 'other.secret']) {
      const t = await post(`/v0/tokens?name=x_${res.replace(/\W/g, '_')}&scope=DATASOURCES:READ:${res}`);
      if (t.status !== 200) { expect(t.status).toBe(400); continue; }
      for (const q of [`SELECT * FROM ${res}`, `SELECT * FROM \`${res}\``]) {
        const r = await sql(q, t.body.token);
        expect(r.text, q).not.toContain('VAULT');
      }
    }
  });

  it('after the workspace admin token is deleted, a non-ADMIN token cannot take its name (its secret would sign JWTs)', async () => {
    const w = await call(`${srv.url}/v0/tenants/local/workspaces`, { method: 'POST', token: srv.operatorToken, body: JSON.stringify({ name: 'third' }), headers: { 'Content-Type': 'application/json' } });
    expect(w.status, w.text).toBe(201);
    const wat = w.body.token as string;
    const m3 = (await post('/v0/tokens?name=m3&scope=TOKENS', wat)).body.token as string;
    const plain = await post('/v0/tokens?name=plain&scope=PIPES:READ:a', wat);
    const adm2 = (await post('/v0/tokens?name=adm2&scope=ADMIN', wat)).body.token as string;
    const exp = Math.floor(Date.now() / 1000) + 600;
    const jwtBody = JSON.stringify({ scopes: [{ type: 'DATASOURCES:READ', resource: 'orders' }] });
    const jwt = (await post(`/v0/tokens?name=j1&expiration_time=${exp}`, wat, jwtBody, { 'Content-Type': 'application/json' })).body.token as string;
    expect((await get('/v0/datasources', jwt)).status).not.toBe(401);
    const mgrWs = await get('/v0/tokens', m3);
    expect(mgrWs.status).toBe(200);
    expect((await del(`/v0/tokens/${enc('workspace admin token')}`, wat)).status).toBe(204);
    expect((await get('/v0/datasources', jwt)).status).toBe(401);
    expect((await post(`/v0/tokens?name=${enc('workspace admin token')}&scope=PIPES:READ:a`, m3)).status).toBe(400);
    expect((await put(`/v0/tokens/plain?name=${enc('workspace admin token')}`, m3)).status).toBe(400);
    expect((await post(`/v0/tokens?name=${enc('workspace admin token')}&scope=ADMIN`, m3)).status).toBe(403);
    expect(plain.status).toBe(200);
    // An ADMIN token recreates it, sealed at once: JWTs work again (signed with the new secret only).
    const a2 = await post(`/v0/tokens?name=${enc('workspace admin token')}&scope=ADMIN`, adm2);
    expect(a2.status, a2.text).toBe(200);
    const j2 = await post(`/v0/tokens?name=j2&expiration_time=${exp}`, adm2, jwtBody, { 'Content-Type': 'application/json' });
    expect(j2.status, j2.text).toBe(200);
    expect((await get('/v0/datasources', j2.body.token)).status).not.toBe(401);
    expect((await get('/v0/datasources', jwt)).status).toBe(401);
    for (const ev of ['token.deleted', 'token.created']) expect(await waitAudit((a) => a.event === ev && a.resource === 'token:workspace admin token' && a.workspace === 'third'), ev).toHaveLength(1);
  });
});

describe('the audit log and wildcard read scopes', () => {
  it('DATASOURCES:READ:* reads the service data sources but not roost.audit_log; ADMIN reads it', async () => {
    const m = await post(`/v0/tokens?name=dash&scope=${enc('DATASOURCES:READ:*')}`);
    expect(m.status, m.text).toBeLessThan(300);
    const dash = m.body.token as string;
    expect((await sql('SELECT count() FROM tinybird.pipe_stats_rt', dash)).status).toBe(200);
    const refused = await sql('SELECT actor, ip FROM roost.audit_log', dash);
    expect(refused.status, refused.text).toBe(403);
    expect(refused.body.error).toMatch(/roost\.audit_log/);
    // Also inside a larger query.
    expect((await sql('SELECT count() FROM tinybird.pipe_stats_rt WHERE request_id IN (SELECT request_id FROM roost.audit_log)', dash)).status).toBe(403);
    expect((await sql('SELECT count() FROM roost.audit_log', admin)).status).toBe(200);
  });
});
