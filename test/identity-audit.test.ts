/**
 * Adversarial audit of identity and authorization, end to end: the real server
 * (not --dev) over HTTP, two tenants each with its own in-process OpenID
 * provider. Covers what test/auth-*.test.ts and test/security-*.test.ts do not:
 * sessions after their connection is deleted, re-created or moved to another
 * issuer, mapping rules fed hostile input, unverified and look-alike addresses,
 * CSRF on every cookie-authenticated change, Tinybird JWT edges, fixed_params
 * against every way a request can carry a parameter, one audit record per
 * refusal, and no secret in any log line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { Browser, clientCredentialsToken } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
const idps: Record<string, DevProvider> = {};
const op = () => srv.operatorToken;
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const audits = (pred: (a: Record<string, any>) => boolean) => srv.logs.filter((l) => l.msg === 'audit' && pred(l as Record<string, any>)) as Array<Record<string, any>>;
async function waitAudit(pred: (a: Record<string, any>) => boolean, n = 1) {
  for (let i = 0; i < 100 && audits(pred).length < n; i++) await new Promise((r) => setTimeout(r, 20));
  return audits(pred);
}
/** Secrets seen by the test: none may appear in any log line of the server. */
const secrets = new Set<string>();
let wsToken: string;
let globexWsId: string;
const rid = () => `ida-${crypto.randomBytes(6).toString('hex')}`;

const ACCOUNTS: Record<string, Record<string, unknown>> = {
  ana: { email: 'ana@acme.test', email_verified: true, groups: ['data-eng'] },
  root: { email: 'root@acme.test', email_verified: true, groups: ['acme-admins'] },
  // The IdP says it did not verify this address: an email_domain rule must not trust it.
  unv: { email: 'unv@acme.test', email_verified: false, groups: [] },
  // KELVIN SIGN (U+212A) lower-cases to an ASCII "k": not the domain kilo.test.
  kel: { email: 'kel@\u212Ailo.test', email_verified: true, groups: [] },
  real: { email: 'real@kilo.test', email_verified: true, groups: [] },
  // An IdP sending hundreds of groups (Azure AD sends up to 200 ids of 36 characters).
  many: { email: 'many@acme.test', email_verified: true, groups: [...Array.from({ length: 200 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`), 'data-eng'] },
  toomany: { email: 'toomany@acme.test', email_verified: true, groups: Array.from({ length: 200 }, (_, i) => `acme-admin-${String(i).padStart(30, '0')}`) },
};

beforeAll(async () => {
  srv = await startServer({ dev: false });
  secrets.add(srv.operatorToken);
  for (const tenant of ['acme', 'globex']) {
    const cb = (c: string) => `${srv.url}/auth/oidc/${tenant}/${c}`;
    idps[tenant] = await startDevProvider({
      accounts: Object.entries(ACCOUNTS).map(([id, claims]) => ({ id, claims: { name: id, ...claims } })),
      clients: [
        { client_id: `roost-${tenant}`, client_secret: `secret-${tenant}-0123456789abcdef`, redirect_uris: [`${cb('main')}/callback`, `${cb('second')}/callback`], backchannel_logout_uri: `${cb('main')}/backchannel-logout`, post_logout_redirect_uris: [`${srv.url}/`] },
        { client_id: `svc-${tenant}`, client_secret: `svc-secret-${tenant}-0123456789abcdef`, token_claims: { groups: ['services'] } },
      ],
      audience: `https://roost.test/${tenant}`,
    });
    secrets.add(`secret-${tenant}-0123456789abcdef`).add(`svc-secret-${tenant}-0123456789abcdef`);
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op(), ...json({ slug: tenant, domains: [`${tenant}.test`] }) })).status).toBe(201);
    const ws = await call(`${srv.url}/v0/tenants/${tenant}/workspaces`, { method: 'POST', token: op(), ...json({ name: tenant === 'acme' ? 'main' : 'reports' }) });
    expect(ws.status).toBe(201);
    secrets.add(ws.body.token);
    if (tenant === 'acme') wsToken = ws.body.token;
    else globexWsId = ws.body.id;
    for (const id of ['main', 'second']) {
      const c = await call(`${srv.url}/v0/tenants/${tenant}/connections`, {
        method: 'POST', token: op(),
        ...json({ id, type: 'oidc', issuer: idps[tenant]!.issuer, client_id: `roost-${tenant}`, client_secret: `secret-${tenant}-0123456789abcdef`, scopes: ['openid', 'email', 'profile', 'groups'], ...(id === 'main' ? { accept_idp_access_tokens: true, audience: `https://roost.test/${tenant}` } : {}) }),
      });
      expect(c.status, c.text).toBe(201);
    }
  }
  const rules = [
    { claim: 'groups', match: { equals: 'data-eng' }, grant: { role: 'editor', workspace: 'main' } },
    { claim: 'groups', match: { glob: 'acme-admin*' }, grant: { role: 'tenant:admin' } },
    { claim: 'groups', match: { in: ['services'] }, grant: { role: 'viewer', workspace: '*' } },
    { claim: 'email', match: { email_domain: 'acme.test' }, grant: { role: 'viewer', workspace: 'main' } },
    { claim: 'email', match: { email_domain: 'kilo.test' }, grant: { role: 'viewer', workspace: 'main' } },
  ];
  expect((await call(`${srv.url}/v0/tenants/acme/mappings`, { method: 'PUT', token: op(), ...json({ rules }) })).status).toBe(200);
  expect((await call(`${srv.url}/v0/tenants/globex/mappings`, { method: 'PUT', token: op(), ...json({ rules: [{ claim: 'groups', match: { equals: 'services' }, grant: { role: 'viewer', workspace: '*' } }] }) })).status).toBe(200);
  const pipe = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: wsToken, ...json({ name: 'orgs', nodes: [{ name: 'n', sql: "%\nSELECT {{String(org, 'none')}} AS org, {{Int32(lim, 1)}} AS lim", type: 'endpoint' }] }) });
  expect(pipe.status, pipe.text).toBe(200);
}, 120_000);

afterAll(async () => {
  await srv?.stop();
  for (const i of Object.values(idps)) await i.close();
});

async function login(account: string, query = 'tenant=acme&connection=main'): Promise<{ b: Browser; status: number; text: string }> {
  const b = new Browser();
  const r = await b.login(srv.url, query, account);
  const s = b.cookie(srv.url, 'roost_session');
  if (s) secrets.add(s);
  return { b, status: r.status, text: r.text };
}

describe('sessions follow their connection', () => {
  it('a deleted connection ends its sessions, and re-creating it (same id) does not bring them back', async () => {
    const { b, status } = await login('root', 'tenant=acme&connection=second');
    expect(status).toBe(303);
    const session = b.cookie(srv.url, 'roost_session')!;
    expect((await call(`${srv.url}/v0/tenants/acme/connections`, { token: session })).status).toBe(200);
    expect((await call(`${srv.url}/v0/tenants/acme/connections/second`, { method: 'DELETE', token: op() })).status).toBe(204);
    expect((await call(`${srv.url}/auth/session`, { token: session })).status).toBe(401);
    const again = await call(`${srv.url}/v0/tenants/acme/connections`, { method: 'POST', token: op(), ...json({ id: 'second', type: 'oidc', issuer: idps.acme!.issuer, client_id: 'roost-acme', client_secret: 'secret-acme-0123456789abcdef', scopes: ['openid', 'email', 'profile', 'groups'] }) });
    expect(again.status).toBe(201);
    const id = rid();
    const r = await call(`${srv.url}/v0/tenants/acme/connections`, { token: session, headers: { 'X-Request-Id': id } });
    expect(r.status).toBe(401);
    expect(await waitAudit((a) => a.requestId === id)).toHaveLength(1);
    // A new login through the new connection works.
    const fresh = await login('root', 'tenant=acme&connection=second');
    expect(fresh.status).toBe(303);
    expect((await fresh.b.fetch(`${srv.url}/auth/session`)).status).toBe(200);
  });

  it('a connection moved to another issuer ends the sessions of the old one', async () => {
    const { b } = await login('root', 'tenant=acme&connection=second');
    const session = b.cookie(srv.url, 'roost_session')!;
    expect((await call(`${srv.url}/auth/session`, { token: session })).status).toBe(200);
    const p = await call(`${srv.url}/v0/tenants/acme/connections/second`, { method: 'PATCH', token: op(), ...json({ issuer: idps.globex!.issuer, client_id: 'roost-globex', client_secret: 'secret-globex-0123456789abcdef' }) });
    expect(p.status, p.text).toBe(200);
    // "root" at globex's IdP is another person than "root" at acme's.
    expect((await call(`${srv.url}/auth/session`, { token: session })).status).toBe(401);
    const back = await call(`${srv.url}/v0/tenants/acme/connections/second`, { method: 'PATCH', token: op(), ...json({ issuer: idps.acme!.issuer, client_id: 'roost-acme', client_secret: 'secret-acme-0123456789abcdef' }) });
    expect(back.status).toBe(200);
  });

  it('a changed rule applies to live sessions at once (a removed tenant:admin grant is gone)', async () => {
    const { b } = await login('root');
    expect((await b.fetch(`${srv.url}/v0/tenants/acme/connections`)).status).toBe(200);
    const cur = (await call(`${srv.url}/v0/tenants/acme/mappings`, { token: op() })).body.rules as unknown[];
    expect((await call(`${srv.url}/v0/tenants/acme/mappings`, { method: 'PUT', token: op(), ...json({ rules: cur.filter((r: any) => r.grant.role !== 'tenant:admin') }) })).status).toBe(200);
    try {
      expect((await b.fetch(`${srv.url}/v0/tenants/acme/connections`)).status).toBe(403);
    } finally {
      expect((await call(`${srv.url}/v0/tenants/acme/mappings`, { method: 'PUT', token: op(), ...json({ rules: cur }) })).status).toBe(200);
    }
  });
});

describe('rules on protocol claims', () => {
  it('a rule on a protocol claim of the ID token (sid, nonce; acr, amr, azp likewise) keeps its grant after the login', async () => {
    const cur = (await call(`${srv.url}/v0/tenants/acme/mappings`, { token: op() })).body.rules as unknown[];
    try {
      for (const claim of ['sid', 'nonce']) {
        expect((await call(`${srv.url}/v0/tenants/acme/mappings`, { method: 'PUT', token: op(), ...json({ rules: [{ claim, match: { glob: '*' }, grant: { role: 'viewer', workspace: 'main' } }] }) })).status).toBe(200);
        const probe = await call(`${srv.url}/v0/tenants/acme/mappings/test`, { method: 'POST', token: op(), ...json({ claims: { [claim]: 'x' } }) });
        expect(probe.body.access).toBe(true);
        const { b, status } = await login('ana');
        expect(status, claim).toBe(303);
        const me = await b.fetch(`${srv.url}/auth/session`);
        expect(me.status, `${claim}: ${me.text}`).toBe(200);
        expect(JSON.parse(me.text).roles.workspaces, claim).toEqual({ main: 'viewer' });
      }
    } finally {
      expect((await call(`${srv.url}/v0/tenants/acme/mappings`, { method: 'PUT', token: op(), ...json({ rules: cur }) })).status).toBe(200);
    }
  });
});

describe('session size', () => {
  it('a session fits in a cookie: hundreds of groups are cut to what the rules read, and a login that cannot fit is refused with the reason', async () => {
    const { b, status } = await login('many');
    expect(status).toBe(303);
    const cookie = b.cookie(srv.url, 'roost_session')!;
    expect(`roost_session=${cookie}`.length).toBeLessThan(4000);
    const me = JSON.parse((await b.fetch(`${srv.url}/auth/session`)).text);
    expect(me.roles.workspaces).toEqual({ main: 'editor' });
    expect(me.claims.groups).toEqual(['data-eng']);
    // 200 groups that all match a rule (acme-admin*) cannot be cut: refused, audited, no cookie.
    const t = await login('toomany');
    expect(t.status).toBe(401);
    expect(t.b.cookie(srv.url, 'roost_session')).toBeUndefined();
    expect(t.text).toMatch(/more claims than a session cookie holds/);
    expect(await waitAudit((a) => a.event === 'login' && a.outcome === 'failure' && a.tenant === 'acme' && /session cookie/.test(a.reason))).toHaveLength(1);
  });
});

describe('mapping rules against hostile input', () => {
  it('a glob with many stars against a long claim answers at once (no exponential backtracking)', async () => {
    const glob = `${'*a'.repeat(16)}*b`;
    const t0 = Date.now();
    const r = await call(`${srv.url}/v0/tenants/acme/mappings/test`, {
      method: 'POST', token: op(), signal: AbortSignal.timeout(20_000),
      ...json({ rules: [{ claim: 'groups', match: { glob }, grant: { role: 'viewer', workspace: 'main' } }], claims: { groups: ['a'.repeat(5000)] } }),
    });
    expect(r.status).toBe(200);
    expect(r.body.access).toBe(false);
    expect(Date.now() - t0).toBeLessThan(2000);
    // Globs still mean what they say.
    const m = async (g: string, v: unknown) => (await call(`${srv.url}/v0/tenants/acme/mappings/test`, { method: 'POST', token: op(), ...json({ rules: [{ claim: 'g', match: { glob: g }, grant: { role: 'viewer', workspace: 'main' } }], claims: { g: v } }) })).body.access;
    expect(await m('acme-*', 'acme-admins')).toBe(true);
    expect(await m('acme-*', 'xacme-admins')).toBe(false);
    expect(await m('a?c*', 'abc')).toBe(true);
    expect(await m('a?c*', 'ac')).toBe(false);
    expect(await m('*.eng', 'data.eng')).toBe(true);
    expect(await m('*.eng', 'dataxeng')).toBe(false);
    expect(await m('team*-*', 'team-x-y')).toBe(true);
    expect(await m('x*', 'x\ny')).toBe(true);
    expect(await m('*', '')).toBe(true);
    expect(await m('a*', 5)).toBe(false);
    expect(await m('*a*b*a', 'xxaxxbxxbxa')).toBe(true);
    expect(await m('*a*b*a', 'xxaxxaxxa')).toBe(false);
    expect(await m('ab*ba', 'aba')).toBe(false);
    expect(await m('ab*ba', 'abba')).toBe(true);
    expect(await m('*x?z*', 'axyzb')).toBe(true);
    expect(await m('*x?z*', 'axyb')).toBe(false);
    expect(await m('a**b', 'ab')).toBe(true);
    // Bounded: a glob over 256 characters is refused; a claim value over 1 KiB matches no glob.
    const long = await call(`${srv.url}/v0/tenants/acme/mappings/test`, { method: 'POST', token: op(), ...json({ rules: [{ claim: 'g', match: { glob: '*'.repeat(257) }, grant: { role: 'viewer', workspace: 'main' } }], claims: {} }) });
    expect(long.status).toBe(400);
    expect(await m('*', 'x'.repeat(1025))).toBe(false);
    // The worst case left (a long literal after a star, a long value) stays quick.
    const t1 = Date.now();
    const rules = Array.from({ length: 500 }, () => ({ claim: 'g', match: { glob: `*${'a'.repeat(254)}b` }, grant: { role: 'viewer', workspace: 'main' } }));
    const slow = await call(`${srv.url}/v0/tenants/acme/mappings/test`, { method: 'POST', token: op(), ...json({ rules, claims: { g: Array.from({ length: 16 }, () => 'a'.repeat(1024)) } }) });
    expect(slow.body.access).toBe(false);
    const q = Array.from({ length: 500 }, () => ({ claim: 'g', match: { glob: `*${'a?'.repeat(100)}b*` }, grant: { role: 'viewer', workspace: 'main' } }));
    const slowQ = await call(`${srv.url}/v0/tenants/acme/mappings/test`, { method: 'POST', token: op(), ...json({ rules: q, claims: { g: Array.from({ length: 16 }, () => 'a'.repeat(1024)) } }) });
    expect(slowQ.body.access).toBe(false);
    expect(Date.now() - t1).toBeLessThan(5000);
    console.log('500 rules x 16 values of 1 KiB, worst-case globs:', Date.now() - t1, 'ms');
  });

  it('claims of unexpected types never match by accident', async () => {
    const test = async (claims: Record<string, unknown>, rules?: unknown[]) => (await call(`${srv.url}/v0/tenants/acme/mappings/test`, { method: 'POST', token: op(), ...json({ claims, ...(rules ? { rules } : {}) }) })).body;
    expect((await test({ groups: 'data-eng' })).workspaces).toEqual({ main: 'editor' }); // a single group as a string
    expect((await test({ groups: { 'data-eng': true } })).access).toBe(false); // an object
    expect((await test({ groups: [['data-eng']] })).access).toBe(false); // nested list
    expect((await test({ groups: ['Data-Eng'] })).access).toBe(false); // case
    expect((await test({ groups: ['data\u2010eng'] })).access).toBe(false); // a hyphen look-alike
    expect((await test({ groups: ['data-eng '] })).access).toBe(false);
    expect((await test({ groups: null })).access).toBe(false);
    expect((await test({ __proto__: { groups: ['data-eng'] } } as Record<string, unknown>)).access).toBe(false);
    expect((await test({ n: 1 }, [{ claim: 'n', match: { equals: '1' }, grant: { role: 'viewer', workspace: 'main' } }])).access).toBe(false);
    expect((await test({ 'a.b': 'x' }, [{ claim: 'a.b', match: { equals: 'x' }, grant: { role: 'viewer', workspace: 'main' } }])).access).toBe(true);
    expect((await test({ constructor: 'x' }, [{ claim: 'constructor.name', match: { equals: 'Object' }, grant: { role: 'viewer', workspace: 'main' } }])).access).toBe(false);
  });

  it('an address the IdP did not verify, in any spelling of "false", grants nothing by domain', async () => {
    for (const v of [false, 'false', 'False', 'FALSE', 0, '0', ['false'], [true, 'false']]) {
      const r = await call(`${srv.url}/v0/tenants/acme/mappings/test`, { method: 'POST', token: op(), ...json({ claims: { email: 'x@acme.test', email_verified: v } }) });
      expect(r.body.access, String(v)).toBe(false);
    }
    const ok = await call(`${srv.url}/v0/tenants/acme/mappings/test`, { method: 'POST', token: op(), ...json({ claims: { email: 'x@ACME.test', email_verified: true } }) });
    expect(ok.body.workspaces).toEqual({ main: 'viewer' });
    // A real login with email_verified: false is no entry (403 NO_ACCESS, audited).
    const { status, text } = await login('unv');
    expect(status).toBe(403);
    expect(text).toContain('NO_ACCESS');
    expect(await waitAudit((a) => a.event === 'login' && a.outcome === 'failure' && a.tenant === 'acme' && /unv@acme\.test/.test(a.reason))).toHaveLength(1);
  });

  it('a domain spelled with a character that lower-cases to ASCII (KELVIN SIGN) is not the ASCII domain', async () => {
    const { status } = await login('kel');
    expect(status).toBe(403);
    const r = await call(`${srv.url}/v0/tenants/acme/mappings/test`, { method: 'POST', token: op(), ...json({ claims: { email: 'kel@\u212Ailo.test' } }) });
    expect(r.body.access).toBe(false);
    expect((await login('real')).status).toBe(303);
  });
});

describe('CSRF on every cookie-authenticated change', () => {
  it('each change without (or with another session\'s) X-CSRF-Token is refused (403 CSRF_FAILED), audited once, and changes nothing', async () => {
    const { b } = await login('root');
    const other = await login('root');
    const otherCsrf = other.b.cookie(srv.url, 'roost_csrf')!;
    const routes: Array<[string, string, string?, string?]> = [
      ['POST', '/v0/tenants/acme/workspaces', JSON.stringify({ name: 'csrf_ws' }), 'application/json'],
      ['PATCH', '/v0/tenants/acme/workspaces/main', JSON.stringify({ name: 'renamed' }), 'application/json'],
      ['DELETE', '/v0/tenants/acme/workspaces/main'],
      ['POST', '/v0/tenants/acme/backups'],
      ['POST', '/v0/tenants/acme/connections', JSON.stringify({ id: 'evil', type: 'oidc', issuer: 'https://evil.example', client_id: 'x' }), 'application/json'],
      ['PATCH', '/v0/tenants/acme/connections/main', JSON.stringify({ issuer: 'https://evil.example' }), 'application/json'],
      ['DELETE', '/v0/tenants/acme/connections/main'],
      ['PUT', '/v0/tenants/acme/mappings', JSON.stringify({ rules: [] }), 'application/json'],
      ['DELETE', '/v0/tenants/acme/sessions'],
      ['POST', '/v0/tokens?workspace=main&name=csrf&scope=ADMIN'],
      ['PUT', '/v0/tokens/workspace%20admin%20token?workspace=main&description=x'],
      ['POST', '/v0/tokens/workspace%20admin%20token/refresh?workspace=main'],
      ['DELETE', '/v0/tokens/workspace%20admin%20token?workspace=main'],
      ['POST', '/v0/pipes?workspace=main', JSON.stringify({ name: 'csrf_pipe', nodes: [{ sql: 'SELECT 1' }] }), 'application/json'],
      ['DELETE', '/v0/pipes/orgs?workspace=main'],
      ['POST', '/v0/pipes/orgs/nodes?workspace=main&name=x', 'SELECT 1', 'text/plain'],
      ['PUT', '/v0/pipes/orgs/nodes/n?workspace=main', 'SELECT 2', 'text/plain'],
      ['DELETE', '/v0/pipes/orgs/nodes/n/endpoint?workspace=main'],
      ['POST', `/v0/datasources?workspace=main&name=csrf_ds&schema=${encodeURIComponent('a Int32')}`],
      ['POST', '/v0/events?workspace=main&name=csrf_ds', '{"a":1}\n', 'application/x-ndjson'],
      ['POST', '/auth/logout'],
    ];
    for (const [method, path, body, type] of routes) {
      for (const csrf of [undefined, otherCsrf]) {
        const id = rid();
        const headers: Record<string, string> = { 'X-Request-Id': id };
        if (type) headers['Content-Type'] = type;
        if (csrf) headers['X-CSRF-Token'] = csrf;
        const r = await b.fetch(`${srv.url}${path}`, { method, headers, body });
        expect(r.status, `${method} ${path} ${csrf ? 'other csrf' : 'no csrf'}: ${r.text}`).toBe(403);
        expect(JSON.parse(r.text).code, `${method} ${path}`).toBe('CSRF_FAILED');
        const got = await waitAudit((a) => a.requestId === id);
        expect(got, `${method} ${path}`).toHaveLength(1);
        expect(got[0]).toMatchObject({ event: 'auth.csrf', tenant: 'acme', credential: 'session:main:root' });
      }
    }
    // Nothing changed: the workspace, the pipe, the connection and the session are all still there.
    expect((await call(`${srv.url}/v0/tenants/acme/workspaces/main`, { token: op() })).status).toBe(200);
    expect((await call(`${srv.url}/v0/tenants/acme/connections/main`, { token: op() })).body.issuer).toBe(idps.acme!.issuer);
    expect((await call(`${srv.url}/v0/pipes/orgs.json`, { token: wsToken })).status).toBe(200);
    expect((await b.fetch(`${srv.url}/auth/session`)).status).toBe(200);
    // Reads need no CSRF token.
    expect((await b.fetch(`${srv.url}/v0/pipes/orgs.json?workspace=main`)).status).toBe(200);
  });

  it('session cookies: HttpOnly, SameSite=Lax, Path=/, and the CSRF cookie readable; logout clears both', async () => {
    const b = new Browser();
    const start = await b.fetch(`${srv.url}/auth/login?tenant=acme&connection=main`);
    const lc = start.headers.getSetCookie().find((c) => c.startsWith('roost_login='))!;
    expect(lc).toMatch(/HttpOnly/);
    expect(lc).toMatch(/Path=\/auth/);
    const cb = await b.toCallback(start.headers.get('location')!, 'ana', srv.url);
    const r = await b.fetch(cb);
    const set = r.headers.getSetCookie();
    const s = set.find((c) => c.startsWith('roost_session='))!;
    const c = set.find((x) => x.startsWith('roost_csrf='))!;
    expect(s).toMatch(/HttpOnly/);
    expect(s).toMatch(/SameSite=Lax/);
    expect(s).toMatch(/Path=\/;/);
    expect(c).not.toMatch(/HttpOnly/);
    const session = b.cookie(srv.url, 'roost_session')!;
    secrets.add(session);
    const out = await b.fetch(`${srv.url}/auth/logout`, { method: 'POST', headers: { 'X-CSRF-Token': b.cookie(srv.url, 'roost_csrf')! } });
    expect(out.status).toBe(200);
    expect(out.headers.getSetCookie().filter((x) => /Max-Age=0/.test(x))).toHaveLength(2);
    // The JWT itself is revoked, not only the cookie: as a bearer it is refused too.
    expect((await call(`${srv.url}/auth/session`, { token: session })).status).toBe(401);
  });

  it('every login start renews the browser\'s login cookie for the 10 minutes of that login (same key)', async () => {
    const b = new Browser();
    const first = await b.fetch(`${srv.url}/auth/login?tenant=acme&connection=main`);
    const c1 = first.headers.getSetCookie().find((c) => c.startsWith('roost_login='))!;
    const second = await b.fetch(`${srv.url}/auth/login?tenant=acme&connection=main`);
    const c2 = second.headers.getSetCookie().find((c) => c.startsWith('roost_login='));
    expect(c2, 'a login started with the cookie present must renew it').toBeDefined();
    expect(c2!.split(';')[0]).toBe(c1.split(';')[0]);
    expect(c2).toMatch(/Max-Age=600/);
  });

  it('a session of tenant A as a bearer reaches nothing of tenant B', async () => {
    const { b } = await login('root');
    const s = b.cookie(srv.url, 'roost_session')!;
    for (const [path, method] of [['/v0/tenants/globex/workspaces', 'GET'], ['/v0/tenants/globex/mappings', 'GET'], ['/v0/pipes?workspace=reports', 'GET'], ['/v0/tenants/globex/sessions', 'DELETE'], ['/v0/tenants/globex', 'GET']] as const) {
      const id = rid();
      const r = await call(`${srv.url}${path}`, { method, token: s, headers: { 'X-Request-Id': id } });
      expect(r.status, path).toBe(403);
      const got = await waitAudit((a) => a.requestId === id);
      // One record in the actor's tenant; one in the tenant tried, naming no one (its routes only).
      const mine = got.filter((a) => a.tenant !== 'globex');
      expect(mine, path).toHaveLength(1);
      expect(mine[0]!.credential).toBe('session:main:root');
      const theirs = got.filter((a) => a.tenant === 'globex');
      expect(theirs, path).toHaveLength(path.startsWith('/v0/tenants/globex') ? 1 : 0);
      for (const t of theirs) expect(t).toMatchObject({ credential: 'another tenant', outcome: 'denied' });
      expect(JSON.stringify(theirs)).not.toMatch(/root|acme/);
    }
  });
});

describe('back-channel logout', () => {
  it('a logout token ends only its subject\'s sessions of that connection; foreign, replayed, nonce-carrying or stale ones are refused (400) and audited', async () => {
    const key = await jose.importJWK(idps.acme!.keys[0]!, 'RS256');
    const kid = idps.acme!.keys[0]!.kid!;
    const now = Math.floor(Date.now() / 1000);
    const lt = (p: Record<string, unknown>) => new jose.SignJWT({ iss: idps.acme!.issuer, aud: 'roost-acme', iat: now, jti: crypto.randomUUID(), events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, ...p }).setProtectedHeader({ alg: 'RS256', kid, typ: 'logout+jwt' }).sign(key);
    const post = (token: string, conn = 'main') => call(`${srv.url}/auth/oidc/acme/${conn}/backchannel-logout`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `logout_token=${token}` });
    const root = (await login('root')).b.cookie(srv.url, 'roost_session')!;
    const ana = (await login('ana')).b.cookie(srv.url, 'roost_session')!;
    const refused = {
      foreignAudience: await lt({ sub: 'root', aud: 'roost-globex' }),
      nonce: await lt({ sub: 'root', nonce: 'n' }),
      noEvent: await lt({ sub: 'root', events: {} }),
      stale: await lt({ sub: 'root', iat: now - 3600 }),
      neither: await lt({}),
    };
    for (const [name, t] of Object.entries(refused)) expect((await post(t)).status, name).toBe(400);
    expect((await call(`${srv.url}/auth/session`, { token: root })).status).toBe(200);
    const good = await lt({ sub: 'root' });
    expect((await post(good)).status).toBe(200);
    expect((await call(`${srv.url}/auth/session`, { token: root })).status).toBe(401);
    expect((await call(`${srv.url}/auth/session`, { token: ana })).status).toBe(200);
    expect((await post(good)).status).toBe(400); // replayed
    expect(await waitAudit((a) => a.event === 'logout.backchannel' && a.outcome === 'failure' && a.tenant === 'acme', 6)).toHaveLength(6);
    // A new login of the same person works again.
    expect((await login('root')).status).toBe(303);
  });
});

describe('IdP access tokens', () => {
  it('signed by the other tenant\'s IdP with this IdP\'s issuer and audience: refused', async () => {
    const at = await clientCredentialsToken(idps.globex!.issuer, 'svc-globex', 'svc-secret-globex-0123456789abcdef', 'https://roost.test/globex');
    secrets.add(at);
    expect((await call(`${srv.url}/auth/session`, { token: at })).body).toMatchObject({ kind: 'idp', tenant: 'globex' });
    const claims = jose.decodeJwt(at);
    const header = jose.decodeProtectedHeader(at);
    const globexKey = await jose.importJWK(idps.globex!.keys[0]!, 'RS256');
    const forged = await new jose.SignJWT({ ...claims, iss: idps.acme!.issuer, aud: 'https://roost.test/acme' }).setProtectedHeader({ alg: 'RS256', kid: header.kid }).sign(globexKey);
    const id = rid();
    expect((await call(`${srv.url}/auth/session`, { token: forged, headers: { 'X-Request-Id': id } })).status).toBe(401);
    const got = await waitAudit((a) => a.requestId === id);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ event: 'auth.idp_token', tenant: 'acme' });
  });

  it('not yet valid, no exp, clock skew, and an audience list naming both tenants', async () => {
    const acmeKey = await jose.importJWK(idps.acme!.keys[0]!, 'RS256');
    const kid = idps.acme!.keys[0]!.kid!;
    const base = { iss: idps.acme!.issuer, sub: 'svc', groups: ['services'] };
    const now = Math.floor(Date.now() / 1000);
    const sign = (p: Record<string, unknown>) => new jose.SignJWT(p).setProtectedHeader({ alg: 'RS256', kid }).sign(acmeKey);
    expect((await call(`${srv.url}/auth/session`, { token: await sign({ ...base, aud: 'https://roost.test/acme', exp: now + 600 }) })).status).toBe(200);
    expect((await call(`${srv.url}/auth/session`, { token: await sign({ ...base, aud: 'https://roost.test/acme', exp: now + 600, nbf: now + 300 }) })).status).toBe(401);
    expect((await call(`${srv.url}/auth/session`, { token: await sign({ ...base, aud: 'https://roost.test/acme' }) })).status).toBe(401);
    // Clocks differ by seconds: a token minted by an IdP a little ahead (iat, nbf) is accepted.
    expect((await call(`${srv.url}/auth/session`, { token: await sign({ ...base, aud: 'https://roost.test/acme', iat: now + 10, nbf: now + 10, exp: now + 600 }) })).status).toBe(200);
    // An expired bearer token gets no grace.
    expect((await call(`${srv.url}/auth/session`, { token: await sign({ ...base, aud: 'https://roost.test/acme', exp: now - 2 }) })).status).toBe(401);
    const both = await call(`${srv.url}/auth/session`, { token: await sign({ ...base, aud: ['https://roost.test/globex', 'https://roost.test/acme'], exp: now + 600 }) });
    expect(both.body).toMatchObject({ kind: 'idp', tenant: 'acme' });
  });

  it('a connection whose audience is its own client_id: ID tokens (which carry it too) are not bearer credentials', async () => {
    const patch = (audience: string) => call(`${srv.url}/v0/tenants/acme/connections/main`, { method: 'PATCH', token: op(), ...json({ audience }) });
    expect((await patch('roost-acme')).status).toBe(200);
    try {
      const acmeKey = await jose.importJWK(idps.acme!.keys[0]!, 'RS256');
      const kid = idps.acme!.keys[0]!.kid!;
      const now = Math.floor(Date.now() / 1000);
      const base = { iss: idps.acme!.issuer, sub: 'ana', aud: 'roost-acme', iat: now, exp: now + 600, email: 'ana@acme.test', email_verified: true, groups: ['data-eng'] };
      const sign = (p: Record<string, unknown>, typ?: string) => new jose.SignJWT(p).setProtectedHeader({ alg: 'RS256', kid, ...(typ ? { typ } : {}) }).sign(acmeKey);
      // What the IdP gave the client at login: signed by it, issued to Roost's client_id.
      for (const idToken of [await sign({ ...base, nonce: 'n-0123', at_hash: 'abc' }), await sign({ ...base, auth_time: now }), await sign({ ...base, nonce: 'n', scope: 'openid' }, 'at+jwt')]) {
        const id = rid();
        const r = await call(`${srv.url}/auth/session`, { token: idToken, headers: { 'X-Request-Id': id } });
        expect(r.status).toBe(401);
        expect(r.body.error).toMatch(/looks like an ID token/);
        expect((await waitAudit((a) => a.requestId === id))[0]).toMatchObject({ event: 'auth.idp_token', tenant: 'acme' });
      }
      // Access tokens for that audience say what they are: RFC 9068's typ, or a scope.
      expect((await call(`${srv.url}/auth/session`, { token: await sign(base, 'at+jwt') })).body).toMatchObject({ kind: 'idp', tenant: 'acme' });
      expect((await call(`${srv.url}/auth/session`, { token: await sign({ ...base, scp: 'api.read' }) })).body).toMatchObject({ kind: 'idp', tenant: 'acme' });
    } finally {
      expect((await patch('https://roost.test/acme')).status).toBe(200);
    }
    // Another audience than the client_id: unchanged (an ID token cannot carry it).
    const now = Math.floor(Date.now() / 1000);
    const plain = await new jose.SignJWT({ iss: idps.acme!.issuer, sub: 'svc', aud: 'https://roost.test/acme', exp: now + 600 }).setProtectedHeader({ alg: 'RS256', kid: idps.acme!.keys[0]!.kid! }).sign(await jose.importJWK(idps.acme!.keys[0]!, 'RS256'));
    expect((await call(`${srv.url}/auth/session`, { token: plain })).status).toBe(200);
  });

  it('a huge bearer token is refused cleanly (431 or 401), not a 500', async () => {
    const huge = `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify({ iss: idps.acme!.issuer, pad: 'x'.repeat(14_000) })).toString('base64url')}.x`;
    const r = await call(`${srv.url}/auth/session`, { token: huge });
    expect([401, 431]).toContain(r.status);
    const viaQuery = await call(`${srv.url}/auth/session?token=${huge}`);
    expect([401, 414, 431]).toContain(viaQuery.status);
  });
});

describe('service token scopes on every route family', () => {
  it('each scope reaches its routes only; every refusal is one audit record naming the token', async () => {
    // The data source may exist already (the JWT tests create it): create it if not.
    await call(`${srv.url}/v0/datasources?name=sales&schema=${encodeURIComponent('id Int32, org String')}`, { method: 'POST', token: wsToken });
    expect((await call(`${srv.url}/v0/datasources?name=sales&mode=append`, { method: 'POST', token: wsToken, headers: { 'Content-Type': 'text/csv' }, body: '1,acme\n2,globex\nx,bad\n' })).status).toBe(200);
    const mk = async (name: string, scopes: string[]) => {
      const r = await call(`${srv.url}/v0/tokens?name=${name}&${scopes.map((x) => `scope=${encodeURIComponent(x)}`).join('&')}`, { method: 'POST', token: wsToken });
      expect(r.status, r.text).toBe(200);
      secrets.add(r.body.token);
      return r.body.token as string;
    };
    const tok: Record<string, string> = {
      read: await mk('m_read', ['DATASOURCES:READ:sales']),
      filtered: await mk('m_filtered', ["DATASOURCES:READ:sales:org = 'acme'"]),
      append: await mk('m_append', ['DATASOURCES:APPEND:sales']),
      drop: await mk('m_drop', ['DATASOURCES:DROP:sales']),
      dropread: await mk('m_dropread', ['DATASOURCES:DROP:sales', 'DATASOURCES:READ:sales']),
      create: await mk('m_create', ['DATASOURCES:CREATE']),
      pread: await mk('m_pread', ['PIPES:READ:orgs']),
      pcreate: await mk('m_pcreate', ['PIPES:CREATE']),
      other: await mk('m_other', ['DATASOURCES:READ:orders', 'PIPES:READ:other']),
    };
    const q = (sql: string) => `/v0/sql?q=${encodeURIComponent(sql)}`;
    const routes: Array<{ name: string; method: string; path: string; body?: string; type?: string; ok: string[] }> = [
      { name: 'ds get', method: 'GET', path: '/v0/datasources/sales', ok: ['read', 'filtered', 'dropread'] },
      { name: 'append', method: 'POST', path: '/v0/datasources?name=sales&mode=append', body: '3,acme\n', type: 'text/csv', ok: ['append'] },
      { name: 'events', method: 'POST', path: '/v0/events?name=sales&wait=true', body: '{"id":4,"org":"acme"}\n', ok: ['append'] },
      // A condition reads the data source (whether it fails is one bit of any value; a dry run
      // counts): DATASOURCES:DROP and DATASOURCES:READ (condition-leaks.e2e).
      { name: 'delete', method: 'POST', path: '/v0/datasources/sales/delete', body: 'delete_condition=0', type: 'application/x-www-form-urlencoded', ok: ['dropread'] },
      { name: 'delete dry run', method: 'POST', path: '/v0/datasources/sales/delete', body: 'delete_condition=0&dry_run=true', type: 'application/x-www-form-urlencoded', ok: ['dropread'] },
      { name: 'create', method: 'POST', path: `/v0/datasources?name=scoped_new&schema=${encodeURIComponent('a Int32')}`, ok: ['create'] },
      { name: 'sql', method: 'GET', path: q('SELECT count() AS n FROM sales'), ok: ['read', 'filtered', 'dropread'] },
      { name: 'sql quarantine', method: 'GET', path: q('SELECT count() AS n FROM sales_quarantine'), ok: [] },
      { name: 'sql audit log', method: 'GET', path: q('SELECT count() AS n FROM roost.audit_log'), ok: [] },
      { name: 'endpoint', method: 'GET', path: '/v0/pipes/orgs.json', ok: ['pread'] },
      { name: 'pipe get', method: 'GET', path: '/v0/pipes/orgs', ok: ['pread'] },
      { name: 'pipe create', method: 'POST', path: '/v0/pipes', body: JSON.stringify({ name: 'scoped_pipe', nodes: [{ sql: 'SELECT 1 AS x' }] }), type: 'application/json', ok: ['pcreate'] },
      { name: 'pipe drop', method: 'DELETE', path: '/v0/pipes/orgs', ok: [] },
      { name: 'tokens', method: 'GET', path: '/v0/tokens', ok: [] },
      { name: 'token create', method: 'POST', path: '/v0/tokens?name=esc&scope=DATASOURCES:READ:sales', ok: [] },
    ];
    for (const r of routes) {
      for (const [who, t] of Object.entries(tok)) {
        const id = rid();
        const headers: Record<string, string> = { 'X-Request-Id': id };
        if (r.type) headers['Content-Type'] = r.type;
        const res = await call(`${srv.url}${r.path}`, { method: r.method, token: t, headers, body: r.body });
        if (r.ok.includes(who)) {
          expect(res.status, `${r.name} as ${who}: ${res.text}`).toBeLessThan(300);
        } else {
          expect(res.status, `${r.name} as ${who}: ${res.text}`).toBe(403);
          const got = await waitAudit((a) => a.requestId === id);
          expect(got, `${r.name} as ${who}`).toHaveLength(1);
          expect(got[0]!.credential, `${r.name} as ${who}`).toBe(`token:m_${who}`);
        }
        if (res.status < 300 && r.name === 'create') await call(`${srv.url}/v0/datasources/scoped_new`, { method: 'DELETE', token: wsToken });
        if (res.status < 300 && r.name === 'pipe create') await call(`${srv.url}/v0/pipes/scoped_pipe`, { method: 'DELETE', token: wsToken });
      }
    }
    // The row filter holds on every read path.
    const rows = await call(`${srv.url}${q('SELECT org FROM sales ORDER BY id FORMAT JSON')}`, { token: tok.filtered });
    expect(new Set(rows.body.data.map((x: { org: string }) => x.org))).toEqual(new Set(['acme']));
  });
});

describe('Tinybird JWT tokens', () => {
  const future = () => Math.floor(Date.now() / 1000) + 600;
  const mint = async (scopes: unknown[], token = wsToken) => {
    const r = await call(`${srv.url}/v0/tokens?name=jwt_${crypto.randomBytes(3).toString('hex')}&expiration_time=${future()}`, { method: 'POST', token, ...json({ scopes }) });
    expect(r.status, r.text).toBe(200);
    secrets.add(r.body.token);
    return r.body.token as string;
  };

  it('fixed_params win over the query string, repeated params, a form body and a JSON body', async () => {
    const jwt = await mint([{ type: 'PIPES:READ', resource: 'orgs', fixed_params: { org: 'acme', lim: 5 } }]);
    const cases: Array<[string, RequestInit]> = [
      ['/v0/pipes/orgs.json?org=evil&lim=9', {}],
      ['/v0/pipes/orgs.json?org=evil&org=evil2&lim=9&lim=10', {}],
      ['/v0/pipes/orgs.json', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'org=evil&lim=9' }],
      ['/v0/pipes/orgs.json?org=evil', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'org=evil2&org=evil3' }],
      ['/v0/pipes/orgs.json', { method: 'POST', ...json({ org: 'evil', lim: 9 }) }],
      ['/v0/pipes/orgs.json', { method: 'POST', ...json({ org: ['evil'], lim: [9] }) }],
      ['/v0/pipes/orgs.json', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"\\u006frg": "evil", "org": "evil2"}' }],
      ['/v0/pipes/orgs.json', { method: 'POST', body: (() => { const f = new FormData(); f.append('org', 'evil'); f.append('lim', '9'); return f; })() }],
      [`/v0/pipes/orgs.json?q=${encodeURIComponent("SELECT 'evil' AS org, 9 AS lim FROM _")}`, {}],
    ];
    for (const [path, init] of cases) {
      const r = await call(`${srv.url}${path}`, { ...init, token: jwt });
      expect(r.status, `${path}: ${r.text}`).toBe(200);
      if (!path.includes('q=')) expect(r.body.data, path).toEqual([{ org: 'acme', lim: 5 }]);
      else expect(r.body.data).toEqual([{ org: 'evil', lim: 9 }]); // q= only reshapes the fixed result `_`
    }
    // The token in the query string rather than the header: the same.
    const r = await call(`${srv.url}/v0/pipes/orgs.json?org=evil&token=${jwt}`);
    expect(r.body.data).toEqual([{ org: 'acme', lim: 5 }]);
  });

  it('a JWT reaches only what its scopes name, on every route family', async () => {
    const jwt = await mint([{ type: 'PIPES:READ', resource: 'orgs' }]);
    // Lists answer only what the credential may read.
    expect((await call(`${srv.url}/v0/datasources`, { token: jwt })).body.datasources).toEqual([]);
    const denied: Array<[string, string, RequestInit?]> = [
      ['POST', `/v0/datasources?name=jw&schema=${encodeURIComponent('a Int32')}`],
      ['POST', '/v0/events?name=jw', { body: '{"a":1}\n' }],
      ['GET', `/v0/sql?q=${encodeURIComponent('SELECT 1')}`],
      ['GET', '/v0/tokens'],
      ['POST', '/v0/tokens?name=x&scope=ADMIN'],
      ['POST', '/v0/pipes', json({ name: 'p2', nodes: [{ sql: 'SELECT 1' }] })],
      ['DELETE', '/v0/pipes/orgs'],
      ['GET', '/v0/tenants/acme'],
    ];
    for (const [method, path, init] of denied) {
      const id = rid();
      const r = await call(`${srv.url}${path}`, { method, ...init, token: jwt, headers: { ...(init?.headers as Record<string, string> ?? {}), 'X-Request-Id': id } });
      expect([403, 404], `${method} ${path}: ${r.status} ${r.text}`).toContain(r.status);
      if (r.status === 403) expect(await waitAudit((a) => a.requestId === id), path).toHaveLength(1);
    }
    expect((await call(`${srv.url}/v0/pipes/orgs.json`, { token: jwt })).status).toBe(200);
  });

  it('a JWT scope resource is a name: "orders:<filter>" or "orgs:x" is refused, never read as an unfiltered or unfixed grant', async () => {
    expect((await call(`${srv.url}/v0/datasources?name=orders&schema=${encodeURIComponent('id Int32, org String')}`, { method: 'POST', token: wsToken })).status).toBe(200);
    expect((await call(`${srv.url}/v0/datasources?name=orders&mode=append`, { method: 'POST', token: wsToken, headers: { 'Content-Type': 'text/csv' }, body: '1,acme\n2,globex\n' })).body.rows).toBe(2);
    const bad = [
      { type: 'DATASOURCES:READ', resource: "orders:org = 'acme'" },
      { type: 'PIPES:READ', resource: 'orgs:x', fixed_params: { org: 'acme' } },
      { type: 'PIPES:READ', resource: 'or gs' },
    ];
    for (const scope of bad) {
      const r = await call(`${srv.url}/v0/tokens?name=colon&expiration_time=${future()}`, { method: 'POST', token: wsToken, ...json({ scopes: [scope] }) });
      expect(r.status, JSON.stringify(scope)).toBe(400);
    }
    // Signed by hand with the workspace admin token: refused too, not read as DATASOURCES:READ:orders.
    const ws = (await call(`${srv.url}/v0/tenants/acme/workspaces/main`, { token: op() })).body;
    const key = new TextEncoder().encode(wsToken);
    const byHand = await new jose.SignJWT({ workspace_id: ws.id, name: 'x', scopes: [bad[0]] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(future()).sign(key);
    const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT org FROM orders ORDER BY id FORMAT JSON')}`, { token: byHand });
    expect(r.status, r.text).toBe(401);
    expect(r.text).not.toContain('globex');
    const fixed = await new jose.SignJWT({ workspace_id: ws.id, name: 'x', scopes: [bad[1]] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(future()).sign(key);
    const e = await call(`${srv.url}/v0/pipes/orgs.json?org=evil`, { token: fixed });
    expect(e.status, e.text).toBe(401);
    // The filter the minter meant is written as the scope's filter.
    const good = await mint([{ type: 'DATASOURCES:READ', resource: 'orders', filter: "org = 'acme'" }]);
    const ok = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT org FROM orders ORDER BY id FORMAT JSON')}`, { token: good });
    expect(ok.body.data).toEqual([{ org: 'acme' }]);
  });

  it('no exp, another workspace\'s id, a deleted signing token, nbf ahead: all refused (401/403) and audited', async () => {
    const key = new TextEncoder().encode(wsToken);
    const ws = (await call(`${srv.url}/v0/tenants/acme/workspaces/main`, { token: op() })).body;
    const scopes = [{ type: 'PIPES:READ', resource: 'orgs' }];
    const noExp = await new jose.SignJWT({ workspace_id: ws.id, name: 'x', scopes }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    const foreign = await new jose.SignJWT({ workspace_id: globexWsId, name: 'x', scopes }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(future()).sign(key);
    const later = await new jose.SignJWT({ workspace_id: ws.id, name: 'x', scopes }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(future()).setNotBefore(future()).sign(key);
    const expNotNumber = await new jose.SignJWT({ workspace_id: ws.id, name: 'x', scopes, exp: String(future()) as unknown as number }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    for (const [name, t] of Object.entries({ noExp, foreign, later, expNotNumber })) {
      const id = rid();
      const r = await call(`${srv.url}/v0/pipes/orgs.json`, { token: t, headers: { 'X-Request-Id': id } });
      expect(r.status, name).toBe(401);
      expect(await waitAudit((a) => a.requestId === id), name).toHaveLength(1);
    }
    // A workspace whose admin token is deleted verifies none of its JWTs any more.
    const w2 = await call(`${srv.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: op(), ...json({ name: 'jw' }) });
    secrets.add(w2.body.token);
    const jwt = await mint([{ type: 'PIPES:READ', resource: 'orgs' }], w2.body.token);
    expect((await call(`${srv.url}/auth/session`, { token: jwt })).status).toBe(200);
    expect((await call(`${srv.url}/v0/tokens/workspace%20admin%20token`, { method: 'DELETE', token: w2.body.token })).status).toBe(204);
    expect((await call(`${srv.url}/auth/session`, { token: jwt })).status).toBe(401);
  });
});

describe('audit records', () => {
  it('a refused OIDC callback (unknown state, NO_ACCESS) leaves exactly one record, JSON or HTML alike', async () => {
    for (const accept of ['application/json', 'text/html']) {
      const id = rid();
      const r = await call(`${srv.url}/auth/oidc/acme/main/callback?state=nope&code=x`, { headers: { 'X-Request-Id': id, Accept: accept } });
      expect(r.status).toBe(401);
      await waitAudit((a) => a.requestId === id);
      await new Promise((res) => setTimeout(res, 100));
      expect(audits((a) => a.requestId === id), accept).toHaveLength(1);
      expect(audits((a) => a.requestId === id)[0]).toMatchObject({ event: 'login', outcome: 'failure', tenant: 'acme', connection: 'main' });
    }
    // NO_ACCESS (403) after a real login at the IdP.
    const b = new Browser();
    const start = await b.fetch(`${srv.url}/auth/login?tenant=acme&connection=main`);
    const cb = await b.toCallback(start.headers.get('location')!, 'unv', srv.url);
    const id = rid();
    const r = await b.fetch(cb, { headers: { 'X-Request-Id': id } });
    expect(r.status).toBe(403);
    await waitAudit((a) => a.requestId === id);
    await new Promise((res) => setTimeout(res, 100));
    expect(audits((a) => a.requestId === id)).toHaveLength(1);
  });

  it('a refused SAML response leaves exactly one record too', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ida-saml-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'k'), '-out', path.join(dir, 'c'), '-days', '2', '-subj', '/CN=ida'], { stdio: 'ignore' });
    const c = await call(`${srv.url}/v0/tenants/acme/connections`, { method: 'POST', token: op(), ...json({ id: 'saml', type: 'saml', entity_id: 'https://idp.acme.test/saml', sso_url: 'https://idp.acme.test/sso', certificates: [fs.readFileSync(path.join(dir, 'c'), 'utf8')] }) });
    expect(c.status, c.text).toBe(201);
    fs.rmSync(dir, { recursive: true, force: true });
    const id = rid();
    const r = await call(`${srv.url}/auth/saml/acme/saml/acs`, { method: 'POST', headers: { 'X-Request-Id': id, 'Content-Type': 'application/x-www-form-urlencoded' }, body: `SAMLResponse=${encodeURIComponent(Buffer.from('<samlp:Response').toString('base64'))}` });
    expect(r.status).toBe(401);
    await waitAudit((a) => a.requestId === id);
    await new Promise((res) => setTimeout(res, 100));
    expect(audits((a) => a.requestId === id)).toHaveLength(1);
    expect(audits((a) => a.requestId === id)[0]).toMatchObject({ event: 'login.saml', outcome: 'failure', tenant: 'acme' });
    expect((await call(`${srv.url}/v0/tenants/acme/connections/saml`, { method: 'DELETE', token: op() })).status).toBe(204);
  });

  it('a successful login leaves exactly one record naming the session credential, with its grants and no secret', async () => {
    const b = new Browser();
    const start = await b.fetch(`${srv.url}/auth/login?tenant=acme&connection=main`);
    const cb = await b.toCallback(start.headers.get('location')!, 'ana', srv.url);
    const id = rid();
    expect((await b.fetch(cb, { headers: { 'X-Request-Id': id } })).status).toBe(303);
    secrets.add(b.cookie(srv.url, 'roost_session')!);
    const got = await waitAudit((a) => a.requestId === id);
    await new Promise((res) => setTimeout(res, 100));
    expect(audits((a) => a.requestId === id)).toHaveLength(1);
    expect(got[0]).toMatchObject({ event: 'login', outcome: 'success', tenant: 'acme', connection: 'main', credential: 'session:main:ana', actor: 'ana@acme.test' });
  });
});

describe('logs', () => {
  it('no secret (token, client secret, session, operator token) appears in any log line', async () => {
    // A refused client secret and a wrong token are not echoed either.
    await call(`${srv.url}/v0/tokens?workspace=main`, { token: 'p.rst_thisIsNotARealTokenButLooksLikeOne_0000000000' });
    await call(`${srv.url}/auth/oidc/acme/main/callback?state=zzz&code=secret-code-value-123456&error=access_denied&error_description=${encodeURIComponent('<b>x</b>')}`);
    secrets.add('p.rst_thisIsNotARealTokenButLooksLikeOne_0000000000');
    const lines = srv.logs.map((l) => JSON.stringify(l));
    for (const s of secrets) {
      const leaked = lines.filter((l) => l.includes(s));
      expect(leaked, `secret ${s.slice(0, 12)}… in logs`).toEqual([]);
    }
  });
});
