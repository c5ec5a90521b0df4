/**
 * OIDC end to end: two tenants, each with its own in-process oidc-provider on
 * loopback, the real Roost server over HTTP, logins driven with no browser.
 * Attack cases are refused and leave an audit record.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as jose from 'jose';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { Browser, clientCredentialsToken } from './helpers/oidc-browser.js';
import { signingKey, startDevProvider, type DevProvider, type DevProviderOptions } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
const idps: Record<string, DevProvider> = {};
const idpOpts: Record<string, DevProviderOptions> = {};
const op = () => srv.operatorToken;
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const audits = (pred: (a: Record<string, any>) => boolean) => srv.logs.filter((l) => l.msg === 'audit' && pred(l));
async function waitAudit(pred: (a: Record<string, any>) => boolean) {
  for (let i = 0; i < 100 && audits(pred).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  const got = audits(pred);
  expect(got.length).toBeGreaterThan(0);
  return got;
}

function idpOptions(tenant: string, groups: Record<string, string[]>): DevProviderOptions {
  const cb = `${srv.url}/auth/oidc/${tenant}/main`;
  return {
    accounts: Object.entries(groups).map(([id, g]) => ({ id, claims: { email: `${id}@${tenant}.test`, email_verified: true, name: id, groups: g } })),
    clients: [
      { client_id: `roost-${tenant}`, client_secret: `secret-${tenant}-0123456789`, redirect_uris: [`${cb}/callback`], backchannel_logout_uri: `${cb}/backchannel-logout`, post_logout_redirect_uris: [`${srv.url}/`] },
      { client_id: `svc-${tenant}`, client_secret: `svc-secret-${tenant}-0123456789`, token_claims: { groups: ['services'] } },
    ],
    audience: `https://roost.test/${tenant}`,
  };
}

const svcToken = (tenant: string) => clientCredentialsToken(idps[tenant]!.issuer, `svc-${tenant}`, `svc-secret-${tenant}-0123456789`, `https://roost.test/${tenant}`);

beforeAll(async () => {
  srv = await startServer({ dev: false });
  for (const [tenant, groups] of [['acme', { ana: ['data-eng'], root: ['acme-admins'], nobody: ['marketing'] }], ['globex', { gil: ['analysts'] }]] as const) {
    idpOpts[tenant] = idpOptions(tenant, groups as unknown as Record<string, string[]>);
    idps[tenant] = await startDevProvider(idpOpts[tenant]!);
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op(), ...json({ slug: tenant, domains: [`${tenant}.test`] }) })).status).toBe(201);
    expect((await call(`${srv.url}/v0/tenants/${tenant}/workspaces`, { method: 'POST', token: op(), ...json({ name: tenant === 'acme' ? 'main' : 'reports' }) })).status).toBe(201);
    const c = await call(`${srv.url}/v0/tenants/${tenant}/connections`, {
      method: 'POST', token: op(),
      ...json({ id: 'main', type: 'oidc', issuer: idps[tenant]!.issuer, client_id: `roost-${tenant}`, client_secret: `secret-${tenant}-0123456789`, scopes: ['openid', 'email', 'profile', 'groups'], accept_idp_access_tokens: true, audience: `https://roost.test/${tenant}` }),
    });
    expect(c.status).toBe(201);
    expect(JSON.stringify(c.body)).not.toContain('secret-');
  }
  await call(`${srv.url}/v0/tenants/acme/mappings`, { method: 'PUT', token: op(), ...json({ rules: [
    { claim: 'groups', match: { equals: 'data-eng' }, grant: { role: 'editor', workspace: 'main' } },
    { claim: 'groups', match: { glob: 'acme-admin*' }, grant: { role: 'tenant:admin' } },
    { claim: 'groups', match: { in: ['services'] }, grant: { role: 'viewer', workspace: '*' } },
  ] }) });
  await call(`${srv.url}/v0/tenants/globex/mappings`, { method: 'PUT', token: op(), ...json({ rules: [
    { claim: 'email', match: { email_domain: 'globex.test' }, grant: { role: 'admin', workspace: 'reports' } },
  ] }) });
}, 120_000);

afterAll(async () => {
  await srv?.stop();
  for (const i of Object.values(idps)) await i.close();
});

describe('a login that cannot start', () => {
  it('(the IdP unreachable) answers 502 and is an audited login failure', async () => {
    // A provider that answered once (the connection is created against it), then is gone.
    const gone = await startDevProvider(idpOptions('deadidp', { x: [] }));
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op(), ...json({ slug: 'deadidp' }) })).status).toBe(201);
    const c = await call(`${srv.url}/v0/tenants/deadidp/connections`, {
      method: 'POST', token: op(),
      ...json({ id: 'main', type: 'oidc', issuer: gone.issuer, client_id: 'roost-deadidp', client_secret: 'secret-deadidp-0123456789', scopes: ['openid', 'email'] }),
    });
    expect(c.status, c.text).toBe(201);
    await gone.close();
    const r = await call(`${srv.url}/auth/login?tenant=deadidp`, { redirect: 'manual' });
    expect(r.status, r.text).toBe(502);
    expect(r.body.code).toBe('IDP_UNAVAILABLE');
    const [a] = await waitAudit((x) => x.event === 'login' && x.requestId === r.headers.get('x-request-id'));
    expect(a).toMatchObject({ outcome: 'failure', tenant: 'deadidp', connection: 'main', details: { code: 'IDP_UNAVAILABLE' } });
    expect(String(a!.reason)).toMatch(/the login could not start/);
  });
});

describe('jobs of a tenant deleted and created again under its slug', () => {
  it("are the old tenant's: its admins saw them, the new tenant's admins do not (the operator does)", async () => {
    const idp = await startDevProvider(idpOptions('jobt', { boss: ['bosses'] }));
    try {
      const setUp = async () => {
        expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op(), ...json({ slug: 'jobt' }) })).status).toBe(201);
        const ws = await call(`${srv.url}/v0/tenants/jobt/workspaces`, { method: 'POST', token: op(), ...json({ name: 'w' }) });
        expect(ws.status, ws.text).toBe(201);
        const c = await call(`${srv.url}/v0/tenants/jobt/connections`, {
          method: 'POST', token: op(),
          ...json({ id: 'main', type: 'oidc', issuer: idp.issuer, client_id: 'roost-jobt', client_secret: 'secret-jobt-0123456789', scopes: ['openid', 'email', 'profile', 'groups'] }),
        });
        expect(c.status, c.text).toBe(201);
        expect((await call(`${srv.url}/v0/tenants/jobt/mappings`, { method: 'PUT', token: op(), ...json({ rules: [{ claim: 'groups', match: { equals: 'bosses' }, grant: { role: 'tenant:admin' } }] }) })).status).toBe(200);
        return ws.body.token as string;
      };
      const adminSession = async () => {
        const b = new Browser();
        await b.login(srv.url, 'tenant=jobt', 'boss');
        return b.cookie(srv.url, 'roost_session')!;
      };
      const token = await setUp();
      expect((await call(`${srv.url}/v0/datasources?name=d&schema=${encodeURIComponent('id Int32')}`, { method: 'POST', token })).status).toBe(200);
      const del = await call(`${srv.url}/v0/datasources/d/delete`, { method: 'POST', token, body: new URLSearchParams({ delete_condition: 'id = 7' }) });
      expect(del.status, del.text).toBe(200);
      const id = del.body.job_id as string;
      const boss = await adminSession();
      expect(((await call(`${srv.url}/v0/jobs`, { token: boss })).body.jobs as Array<{ id: string }>).map((j) => j.id)).toContain(id);
      expect((await call(`${srv.url}/v0/jobs/${id}`, { token: boss })).status).toBe(200);
      expect((await call(`${srv.url}/v0/tenants/jobt`, { method: 'DELETE', token: op() })).status).toBe(200);
      await setUp();
      const newBoss = await adminSession();
      expect(((await call(`${srv.url}/v0/jobs`, { token: newBoss })).body.jobs as Array<{ id: string }>).map((j) => j.id)).not.toContain(id);
      expect((await call(`${srv.url}/v0/jobs/${id}`, { token: newBoss })).status).toBe(404);
      expect((await call(`${srv.url}/v0/jobs/${id}`, { token: op() })).status).toBe(200);
    } finally {
      await idp.close();
    }
  }, 60_000);
});

describe('login', () => {
  it('full login with return_to; the session reports identity, roles and workspaces', async () => {
    const b = new Browser();
    const r = await b.login(srv.url, 'tenant=acme&return_to=%2Fapp%2Fdash%3Fx%3D1', 'ana');
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/app/dash?x=1');
    const sc = r.headers.getSetCookie().find((c) => c.startsWith('roost_session='))!;
    expect(sc).toMatch(/HttpOnly/);
    expect(sc).toMatch(/SameSite=Lax/);
    expect(sc).not.toMatch(/Secure/); // plain HTTP on loopback
    const me = await b.fetch(`${srv.url}/auth/session`);
    const body = JSON.parse(me.text);
    expect(body).toMatchObject({ kind: 'session', tenant: 'acme', identity: { connection: 'main', subject: 'ana', email: 'ana@acme.test' }, roles: { tenant_admin: false, workspaces: { main: 'editor' } }, workspaces: [{ name: 'main', role: 'editor' }] });
    expect(body.identity.issuer).toBe(idps.acme!.issuer);
    await waitAudit((a) => a.event === 'login' && a.outcome === 'success' && a.tenant === 'acme' && a.actor === 'ana@acme.test');
    // The session also works as a bearer token, with no CSRF token needed.
    const jwt = b.cookie(srv.url, 'roost_session')!;
    expect((await call(`${srv.url}/auth/session`, { token: jwt })).body.tenant).toBe('acme');
  });

  it('an editor reads the data but not the audit log, which is the workspace admins\' (as ADMIN for tokens)', async () => {
    const b = new Browser();
    await b.login(srv.url, 'tenant=acme', 'ana');  // editor of acme/main
    const jwt = b.cookie(srv.url, 'roost_session')!;
    const sql = (q: string) => call(`${srv.url}/v0/sql?workspace=main&q=${encodeURIComponent(q)}`, { token: jwt });
    expect((await sql('SELECT count() AS n FROM tinybird.datasources_ops_log FORMAT JSON')).status).toBe(200);
    const audit = await sql('SELECT count() AS n FROM roost.audit_log FORMAT JSON');
    expect(audit.status, audit.text).toBe(403);
    expect(audit.body.error).toMatch(/roost\.audit_log is read by the workspace's admins/);
  });

  it('signs sessions with keys published at /.well-known/jwks.json', async () => {
    const b = new Browser();
    await b.login(srv.url, 'tenant=acme', 'ana');
    const jwt = b.cookie(srv.url, 'roost_session')!;
    const jwks = jose.createLocalJWKSet((await call(`${srv.url}/.well-known/jwks.json`)).body);
    const { payload, protectedHeader } = await jose.jwtVerify(jwt, jwks, { issuer: srv.url });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.tenant).toBe('acme');
  });

  it('home-realm discovery by verified email domain', async () => {
    const r = await call(`${srv.url}/auth/login?email=gil@globex.test`, { redirect: 'manual' });
    expect(r.status).toBe(302);
    const loc = new URL(r.headers.get('location')!);
    expect(loc.origin).toBe(idps.globex!.issuer);
    expect(loc.searchParams.get('code_challenge_method')).toBe('S256');
    expect(loc.searchParams.get('login_hint')).toBe('gil@globex.test');
    expect(loc.searchParams.get('nonce')).toBeTruthy();
    expect(await call(`${srv.url}/auth/login?email=x@unknown.test`, { redirect: 'manual' })).toMatchObject({ status: 404 });
  });

  it('a tenant with several connections answers a chooser', async () => {
    await call(`${srv.url}/v0/tenants/globex/connections`, { method: 'POST', token: op(), ...json({ id: 'second', issuer: idps.acme!.issuer, client_id: 'x' }) });
    const r = await call(`${srv.url}/auth/login?tenant=globex`, { redirect: 'manual' });
    expect(r.status).toBe(300);
    expect(r.body.choose.map((c: { connection: string }) => c.connection).sort()).toEqual(['main', 'second']);
    const html = await call(`${srv.url}/auth/login?tenant=globex`, { redirect: 'manual', headers: { Accept: 'text/html' } });
    expect(html.text).toContain('connection=second');
    expect((await call(`${srv.url}/v0/tenants/globex/connections/second`, { method: 'DELETE', token: op() })).status).toBe(204);
  });

  it('groups mapping: no matching rule means no entry, with a clear page and an audit record', async () => {
    const b = new Browser();
    const start = await b.fetch(`${srv.url}/auth/login?tenant=acme`);
    const cb = await b.toCallback(start.headers.get('location')!, 'nobody', srv.url);
    const r = await b.fetch(cb, { headers: { Accept: 'text/html' } });
    expect(r.status).toBe(403);
    expect(r.text).toContain('No access');
    expect(b.cookie(srv.url, 'roost_session')).toBeUndefined();
    await waitAudit((a) => a.event === 'login' && a.outcome === 'failure' && a.tenant === 'acme' && /no mapping rule/.test(a.reason));
  });

  it('mappings/test answers the grants of sample claims', async () => {
    const r = await call(`${srv.url}/v0/tenants/acme/mappings/test`, { method: 'POST', token: op(), ...json({ claims: { groups: ['data-eng', 'acme-admins-eu'] } }) });
    expect(r.body).toMatchObject({ tenant_admin: true, workspaces: { main: 'editor' }, matched_rules: [0, 1], access: true });
  });

  it('an email_domain rule trusts an address only when email_verified is absent or plainly true ("no" and null counted as verified)', async () => {
    const grants = async (email_verified: unknown) => (await call(`${srv.url}/v0/tenants/globex/mappings/test`, { method: 'POST', token: op(), ...json({ claims: { email: 'x@globex.test', ...(email_verified === undefined ? {} : { email_verified }) } }) })).body;
    for (const v of [undefined, true, 'true', 'TRUE', 1, '1', [true]]) expect(await grants(v), JSON.stringify(v)).toMatchObject({ access: true, workspaces: { reports: 'admin' } });
    for (const v of [false, 'false', 0, '0', 'no', null, '', 'yes?', [true, 'no'], []]) expect(await grants(v), JSON.stringify(v)).toMatchObject({ access: false });
  });

  it('every rule on the email claim (equals, in, glob) trusts an address as email_domain does (equals granted tenant:admin to an unverified address)', async () => {
    const rules = [
      { claim: 'email', match: { equals: 'ceo@globex.test' }, grant: { role: 'tenant:admin' } },
      { claim: 'email', match: { in: ['ceo@globex.test'] }, grant: { role: 'admin', workspace: 'a' } },
      { claim: 'email', match: { glob: '*@globex.test' }, grant: { role: 'viewer', workspace: 'b' } },
      // Another claim is the IdP's to vouch for, as before.
      { claim: 'groups', match: { equals: 'g' }, grant: { role: 'viewer', workspace: 'c' } },
    ];
    const test = async (email_verified: unknown) => (await call(`${srv.url}/v0/tenants/globex/mappings/test`, { method: 'POST', token: op(), ...json({ rules, claims: { email: 'ceo@globex.test', groups: ['g'], ...(email_verified === undefined ? {} : { email_verified }) } }) })).body;
    for (const v of [undefined, true, '1']) expect(await test(v), JSON.stringify(v)).toMatchObject({ tenant_admin: true, workspaces: { a: 'admin', b: 'viewer', c: 'viewer' } });
    for (const v of [false, 'false', 'no', null]) {
      const g = await test(v);
      expect(g.tenant_admin, JSON.stringify(v)).toBe(false);
      expect(g.workspaces, JSON.stringify(v)).toEqual({ c: 'viewer' });
    }
  });
});

describe('attacks, each refused with an audit record', () => {
  it('return_to pointing off-site', async () => {
    for (const rt of ['//evil.test/x', '/\\evil.test', 'https://evil.test/', 'http:evil', '/\r\nSet-Cookie:x', 'javascript:alert(1)']) {
      const r = await call(`${srv.url}/auth/login?tenant=acme&return_to=${encodeURIComponent(rt)}`, { redirect: 'manual' });
      expect(r, rt).toMatchObject({ status: 400, body: { code: 'INVALID_RETURN_TO' } });
    }
    await waitAudit((a) => a.event === 'login' && a.tenant === 'acme' && /return_to/.test(a.reason));
  });

  it('replayed state (and with it the reused authorization code)', async () => {
    const b = new Browser();
    const start = await b.fetch(`${srv.url}/auth/login?tenant=acme`);
    const cb = await b.toCallback(start.headers.get('location')!, 'ana', srv.url);
    expect((await b.fetch(cb)).status).toBe(303);
    const again = await call(cb);
    expect(again).toMatchObject({ status: 401, body: { code: 'LOGIN_FAILED' } });
    await waitAudit((a) => a.event === 'login' && a.outcome === 'failure' && /already used state/.test(a.reason));
  });

  it('reused authorization code under a fresh state', async () => {
    const b = new Browser();
    const s1 = await b.fetch(`${srv.url}/auth/login?tenant=acme`);
    const cb1 = new URL(await b.toCallback(s1.headers.get('location')!, 'ana', srv.url));
    expect((await b.fetch(cb1.href)).status).toBe(303);
    const s2 = await b.fetch(`${srv.url}/auth/login?tenant=acme`);
    const state2 = new URL(s2.headers.get('location')!).searchParams.get('state')!;
    cb1.searchParams.set('state', state2);
    const r = await call(cb1.href);
    expect(r).toMatchObject({ status: 401, body: { code: 'LOGIN_FAILED' } });
    await waitAudit((a) => a.event === 'login' && a.outcome === 'failure' && a.tenant === 'acme' && /invalid_grant|refused/.test(a.reason));
  });

  it('wrong nonce: a code issued for another nonce is refused at the ID token check', async () => {
    // The attacker sends the victim's browser to the IdP with this login's state and PKCE
    // challenge but a nonce of their choosing: PKCE and state match, only the nonce does not.
    const b = new Browser();
    const start = await b.fetch(`${srv.url}/auth/login?tenant=acme`);
    const auth = new URL(start.headers.get('location')!);
    expect(auth.searchParams.get('nonce')).toBeTruthy();
    auth.searchParams.set('nonce', 'attacker-chosen-nonce');
    const cb = await b.toCallback(auth.href, 'ana', srv.url);
    const r = await b.fetch(cb);
    expect(r.status).toBe(401);
    expect(b.cookie(srv.url, 'roost_session')).toBeUndefined();
    await waitAudit((a) => a.event === 'login' && a.outcome === 'failure' && a.tenant === 'acme' && /nonce/i.test(a.reason));
  });

  it('wrong state', async () => {
    const r = await call(`${srv.url}/auth/oidc/acme/main/callback?code=x&state=forged&iss=${encodeURIComponent(idps.acme!.issuer)}`);
    expect(r).toMatchObject({ status: 401, body: { code: 'LOGIN_FAILED' } });
    await waitAudit((a) => a.event === 'login' && a.outcome === 'failure' && a.connection === 'main' && /unknown/.test(a.reason));
  });

  it('mix-up: a code and iss from the other tenant\'s IdP delivered with this login\'s state', async () => {
    const b = new Browser();
    const sa = await b.fetch(`${srv.url}/auth/login?tenant=acme`);
    const stateA = new URL(sa.headers.get('location')!).searchParams.get('state')!;
    const sb = await b.fetch(`${srv.url}/auth/login?tenant=globex`);
    const cbB = new URL(await b.toCallback(sb.headers.get('location')!, 'gil', srv.url));
    const forged = new URL(`${srv.url}/auth/oidc/acme/main/callback`);
    forged.searchParams.set('code', cbB.searchParams.get('code')!);
    forged.searchParams.set('iss', cbB.searchParams.get('iss')!);
    forged.searchParams.set('state', stateA);
    expect(await call(forged.href)).toMatchObject({ status: 401, body: { code: 'LOGIN_FAILED' } });
    // And globex's own state at acme's callback is bound to the other connection.
    const sb2 = await b.fetch(`${srv.url}/auth/login?tenant=globex`);
    const cbB2 = new URL(await b.toCallback(sb2.headers.get('location')!, 'gil', srv.url));
    const moved = new URL(`${srv.url}/auth/oidc/acme/main/callback${cbB2.search}`);
    expect(await call(moved.href)).toMatchObject({ status: 401 });
    await waitAudit((a) => a.event === 'login' && a.outcome === 'failure' && a.tenant === 'acme' && /iss|issuer/i.test(a.reason));
    await waitAudit((a) => a.event === 'login' && a.outcome === 'failure' && /another connection/.test(a.reason));
  });

  it('a session of tenant A on tenant B (admin routes and workspaces)', async () => {
    const b = new Browser();
    await b.login(srv.url, 'tenant=acme', 'root');
    expect((await b.fetch(`${srv.url}/v0/tenants/acme/connections`)).status).toBe(200);
    expect((await b.fetch(`${srv.url}/v0/tenants/globex/connections`)).status).toBe(403);
    expect((await b.fetch(`${srv.url}/v0/tokens?workspace=reports`)).status).toBe(403);
    await waitAudit((a) => a.event === 'authz.denied' && a.tenant === 'acme' && /tenant globex/.test(a.resource));
    await waitAudit((a) => a.event === 'authz.denied' && a.tenant === 'acme' && /reports/.test(a.resource));
  });

  it('cookie-authenticated changes need the CSRF token', async () => {
    const b = new Browser();
    await b.login(srv.url, 'tenant=acme', 'root');
    const noCsrf = await b.fetch(`${srv.url}/v0/tokens?workspace=main&name=viacookie&scope=PIPES:READ:p`, { method: 'POST' });
    expect(noCsrf.status).toBe(403);
    expect(JSON.parse(noCsrf.text).code).toBe('CSRF_FAILED');
    const csrf = b.cookie(srv.url, 'roost_csrf')!;
    const ok = await b.fetch(`${srv.url}/v0/tokens?workspace=main&name=viacookie&scope=PIPES:READ:p`, { method: 'POST', headers: { 'X-CSRF-Token': csrf } });
    expect(ok.status).toBe(200);
    await waitAudit((a) => a.event === 'auth.csrf' && a.tenant === 'acme');
  });
});

describe('IdP access tokens as bearer credentials', () => {
  it('a client-credentials JWT from the tenant\'s IdP maps through the rules', async () => {
    const at = await svcToken('acme');
    const me = await call(`${srv.url}/auth/session`, { token: at });
    expect(me.body).toMatchObject({ kind: 'idp', tenant: 'acme', roles: { workspaces: { '*': 'viewer' } } });
    expect(await call(`${srv.url}/v0/tokens?workspace=main`, { token: at })).toMatchObject({ status: 403 });
  });

  it('wrong audience (an ID token), alg none, HS256 with the IdP public key, unknown key and expiry are refused', async () => {
    const b = new Browser();
    const start = await b.fetch(`${srv.url}/auth/login?tenant=acme`);
    await b.toCallback(start.headers.get('location')!, 'ana', srv.url);
    const at = await svcToken('acme');
    const claims = jose.decodeJwt(at);
    const idpJwks = (await call(`${idps.acme!.issuer}/jwks`)).body;
    const publicPem = await jose.exportSPKI(await jose.importJWK(idpJwks.keys[0], 'RS256') as CryptoKey);
    const wrongAud = { ...claims, aud: 'someone-else' };
    const foreignKey = await jose.importJWK(await signingKey(), 'RS256');
    const cases: Record<string, string> = {
      audience: await new jose.SignJWT(wrongAud).setProtectedHeader({ alg: 'RS256', kid: 'nope' }).sign(foreignKey),
      none: new jose.UnsecuredJWT(claims).encode(),
      hs256: await new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: idpJwks.keys[0].kid }).sign(new TextEncoder().encode(publicPem)),
      unknownKey: await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: idpJwks.keys[0].kid }).sign(foreignKey),
      expired: await new jose.SignJWT({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 }).setProtectedHeader({ alg: 'RS256', kid: 'x' }).sign(foreignKey),
    };
    for (const [name, tok] of Object.entries(cases)) {
      expect((await call(`${srv.url}/auth/session`, { token: tok })).status, name).toBe(401);
    }
    await waitAudit((a) => a.event === 'auth.idp_token' && a.tenant === 'acme' && /audience/.test(a.reason));
    await waitAudit((a) => a.event === 'auth.idp_token' && a.tenant === 'acme' && /algorithm not allowed \(HS256\)/.test(a.reason));
    await waitAudit((a) => a.event === 'auth.idp_token' && a.tenant === 'acme' && /algorithm not allowed \(none\)/.test(a.reason));
    await waitAudit((a) => a.event === 'auth.idp_token' && a.tenant === 'acme' && /bad signature|key/.test(a.reason));
  });

  it('an expired IdP access token is refused', async () => {
    const port = idps.acme!.port;
    const keys = idps.acme!.keys;
    await idps.acme!.close();
    idps.acme = await startDevProvider({ ...idpOpts.acme!, port, keys, accessTokenTtl: 1 });
    const at = await svcToken('acme');
    await idps.acme.close();
    idps.acme = await startDevProvider({ ...idpOpts.acme!, port, keys });
    await new Promise((r) => setTimeout(r, 2100));
    expect(await call(`${srv.url}/auth/session`, { token: at })).toMatchObject({ status: 401 });
    await waitAudit((a) => a.event === 'auth.idp_token' && a.tenant === 'acme' && /expired/.test(a.reason));
  });

  it('key rotation at the IdP: tokens signed with the new key are accepted', async () => {
    const before = await svcToken('acme');
    expect((await call(`${srv.url}/auth/session`, { token: before })).status).toBe(200);
    const port = idps.acme!.port;
    await idps.acme!.close();
    idps.acme = await startDevProvider({ ...idpOpts.acme!, port, keys: [await signingKey()] });
    await new Promise((r) => setTimeout(r, 1100)); // JWKS refetch cooldown
    const after = await svcToken('acme');
    expect(jose.decodeProtectedHeader(after).kid).not.toBe(jose.decodeProtectedHeader(before).kid);
    expect((await call(`${srv.url}/auth/session`, { token: after })).status).toBe(200);
    // A login after the rotation verifies the new ID token key too.
    const b = new Browser();
    const r = await b.login(srv.url, 'tenant=acme', 'ana');
    expect(r.status).toBe(303);
  });
});

describe('logout and revocation', () => {
  it('logout ends the session and answers the IdP end-session URL', async () => {
    const b = new Browser();
    await b.login(srv.url, 'tenant=globex', 'gil');
    const jwt = b.cookie(srv.url, 'roost_session')!;
    const csrf = b.cookie(srv.url, 'roost_csrf')!;
    const r = await b.fetch(`${srv.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF-Token': csrf } });
    expect(r.status).toBe(200);
    expect(new URL(JSON.parse(r.text).end_session_url).origin).toBe(idps.globex!.issuer);
    expect((await call(`${srv.url}/auth/session`, { token: jwt })).status).toBe(401);
    await waitAudit((a) => a.event === 'logout' && a.tenant === 'globex');
  });

  it('a logout outlives the deletion of a tenant named like a kind of revocation (sessions, tenants, subjects)', async () => {
    const b = new Browser();
    await b.login(srv.url, 'tenant=globex', 'gil');
    const jwt = b.cookie(srv.url, 'roost_session')!;
    const csrf = b.cookie(srv.url, 'roost_csrf')!;
    expect((await b.fetch(`${srv.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF-Token': csrf } })).status).toBe(200);
    expect((await call(`${srv.url}/auth/session`, { token: jwt })).status).toBe(401);
    for (const slug of ['sessions', 'tenants', 'subjects']) {
      const made = await call(`${srv.url}/v0/tenants`, { method: 'POST', token: srv.operatorToken, body: JSON.stringify({ slug }) });
      expect(made.status, made.text).toBe(201);
      const gone = await call(`${srv.url}/v0/tenants/${slug}`, { method: 'DELETE', token: srv.operatorToken });
      expect(gone.status, gone.text).toBeLessThan(300);
      // Deleting the tenant `sessions` took revocations/sessions (every logout) with it.
      expect((await call(`${srv.url}/auth/session`, { token: jwt })).status, slug).toBe(401);
    }
  });

  it('back-channel logout from the IdP ends the matching session', async () => {
    const b = new Browser();
    await b.login(srv.url, 'tenant=globex', 'gil');
    const jwt = b.cookie(srv.url, 'roost_session')!;
    expect((await call(`${srv.url}/auth/session`, { token: jwt })).status).toBe(200);
    // Log out at the IdP (its end-session confirmation form), which calls Roost's back-channel endpoint.
    const end = await b.fetch(`${idps.globex!.issuer}/session/end?client_id=roost-globex`);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(end.text)?.[1];
    const action = /action="([^"]+)"/.exec(end.text)?.[1];
    expect(xsrf && action).toBeTruthy();
    const confirm = await b.fetch(new URL(action!, idps.globex!.issuer).href, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ xsrf: xsrf!, logout: 'yes' }).toString() });
    expect(confirm.status).toBeLessThan(400);
    await waitAudit((a) => a.event === 'logout.backchannel' && a.outcome === 'success' && a.tenant === 'globex');
    expect((await call(`${srv.url}/auth/session`, { token: jwt })).status).toBe(401);
    // A forged logout token is refused.
    const bad = await call(`${srv.url}/auth/oidc/globex/main/backchannel-logout`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'logout_token=e30.e30.' });
    expect(bad.status).toBe(400);
  });

  it('a tenant admin revokes every session of the tenant, and the revocation survives a restart', async () => {
    const b = new Browser();
    await b.login(srv.url, 'tenant=acme', 'ana');
    const ana = b.cookie(srv.url, 'roost_session')!;
    const adm = new Browser();
    await adm.login(srv.url, 'tenant=acme', 'root');
    const r = await adm.fetch(`${srv.url}/v0/tenants/acme/sessions`, { method: 'DELETE', headers: { 'X-CSRF-Token': adm.cookie(srv.url, 'roost_csrf')! } });
    expect(r.status).toBe(200);
    expect((await call(`${srv.url}/auth/session`, { token: ana })).status).toBe(401);
    await waitAudit((a) => a.event === 'sessions.revoked' && a.tenant === 'acme');
    await srv.stop();
    srv = await startServer({ dev: false, dataDir: srv.dataDir, args: ['--port', String(srv.port)] });
    expect((await call(`${srv.url}/auth/session`, { token: ana })).status).toBe(401);
    // New logins work after the revocation.
    const again = new Browser();
    expect((await again.login(srv.url, 'tenant=acme', 'ana')).status).toBe(303);
  });
});
