/**
 * Login flows against the real server and the in-process oidc-provider: what
 * an attacker controls in a login link must not send the person elsewhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { Browser } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';
import { safeReturnTo } from '../auth/oidc/login.js';

let srv: RunningServer;
let idp: DevProvider;
const op = () => srv.operatorToken;
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const audits = (pred: (a: Record<string, any>) => boolean) => srv.logs.filter((l) => l.msg === 'audit' && pred(l));
async function waitAudit(pred: (a: Record<string, any>) => boolean) {
  for (let i = 0; i < 100 && audits(pred).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  return audits(pred);
}

beforeAll(async () => {
  srv = await startServer({ dev: false });
  const cb = `${srv.url}/auth/oidc/sec/main`;
  idp = await startDevProvider({
    accounts: [{ id: 'ana', claims: { email: 'ana@sec.test', email_verified: true, name: 'ana', groups: ['eng'] } }],
    clients: [{ client_id: 'roost-sec', client_secret: 'secret-sec-0123456789', redirect_uris: [`${cb}/callback`] }],
  });
  expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op(), ...json({ slug: 'sec' }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/sec/workspaces`, { method: 'POST', token: op(), ...json({ name: 'main' }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/sec/connections`, {
    method: 'POST', token: op(),
    ...json({ id: 'main', type: 'oidc', issuer: idp.issuer, client_id: 'roost-sec', client_secret: 'secret-sec-0123456789', scopes: ['openid', 'email', 'profile', 'groups'] }),
  })).status).toBe(201);
  await call(`${srv.url}/v0/tenants/sec/mappings`, { method: 'PUT', token: op(), ...json({ rules: [{ claim: 'groups', match: { equals: 'eng' }, grant: { role: 'viewer', workspace: 'main' } }] }) });
}, 120_000);

afterAll(async () => {
  await srv?.stop();
  await idp?.close();
});

// Each resolves (dot segments removed) to a path starting with "//": a scheme-relative
// URL that a browser follows to another host.
const offsite = ['/.//evil.example', '/..//evil.example/x', '/%2e//evil.example', '/a/..//evil.example', '/./%2e//evil.example?x=1'];

describe('return_to with dot segments', () => {
  it('safeReturnTo never answers a scheme-relative path', () => {
    for (const rt of offsite) expect(() => safeReturnTo(rt), rt).toThrow(/return_to/);
    expect(safeReturnTo('/app/./dash?x=1')).toBe('/app/dash?x=1');
  });

  it('/auth/login refuses them (400, audited) instead of sending the person to the IdP', async () => {
    for (const rt of offsite) {
      const r = await call(`${srv.url}/auth/login?tenant=sec&return_to=${encodeURIComponent(rt)}`, { redirect: 'manual' });
      expect(r, rt).toMatchObject({ status: 400, body: { code: 'INVALID_RETURN_TO' } });
    }
    expect((await waitAudit((a) => a.event === 'login' && a.outcome === 'failure' && a.tenant === 'sec' && /evil\.example/.test(a.reason))).length).toBe(offsite.length);
  });

  it('a completed login never redirects off-site', async () => {
    const b = new Browser();
    const start = await b.fetch(`${srv.url}/auth/login?tenant=sec&return_to=${encodeURIComponent('/.//evil.example')}`);
    if (start.status === 302) {
      // Before the fix: the login went ahead, and the callback's Location was "//evil.example".
      const cb = await b.toCallback(start.headers.get('location')!, 'ana', new URL(srv.url).origin);
      const done = await b.fetch(cb);
      expect(new URL(done.headers.get('location') ?? '/', srv.url).origin).toBe(new URL(srv.url).origin);
    }
    expect(start.status).toBe(400);
  });
});

describe('login CSRF', () => {
  it('a callback opened in another browser than the one that started the login is refused, audited, and sets no session', async () => {
    // The attacker starts a login and signs in at the IdP as themselves, then makes the
    // victim's browser open the callback (with the attacker's code and state).
    const attacker = new Browser();
    const start = await attacker.fetch(`${srv.url}/auth/login?tenant=sec`);
    expect(start.status).toBe(302);
    expect(attacker.cookie(srv.url, 'roost_login')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const cb = await attacker.toCallback(start.headers.get('location')!, 'ana', new URL(srv.url).origin);
    const victim = new Browser();
    const done = await victim.fetch(cb);
    expect(done.status).toBeGreaterThanOrEqual(400);
    expect(victim.cookie(srv.url, 'roost_session')).toBeUndefined();
    expect((await waitAudit((a) => a.event === 'login' && a.outcome === 'failure' && /another browser/.test(String(a.reason)))).length).toBe(1);
  });

  it('the browser that started the login finishes it (and keeps its key for the next login)', async () => {
    const b = new Browser();
    const s1 = await b.fetch(`${srv.url}/auth/login?tenant=sec`);
    const key = b.cookie(srv.url, 'roost_login');
    const done = await b.fetch(await b.toCallback(s1.headers.get('location')!, 'ana', new URL(srv.url).origin));
    expect(done.status).toBe(303);
    expect(b.cookie(srv.url, 'roost_session')).toBeTruthy();
    const s2 = await b.fetch(`${srv.url}/auth/login?tenant=sec`);
    // Renewed (its Max-Age covers this login), with the same key.
    expect(s2.headers.get('set-cookie') ?? '').toContain(`roost_login=${key}`);
    expect(b.cookie(srv.url, 'roost_login')).toBe(key);
  });
});
