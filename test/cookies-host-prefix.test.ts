/**
 * Cookies of a server reached over HTTPS are `__Host-` cookies (a black-box round of the
 * twenty-first session): a sibling subdomain could plant `roost_session` or `roost_login`
 * (the first cookie of a name was read), swapping a person's session or fixing their login key.
 * Browsers refuse a `__Host-` cookie with a Domain, without Secure or off Path=/: nobody else can
 * set one. Plain HTTP on loopback keeps the bare names. Real server, real OIDC provider.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { Browser } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';
import { sessionCookies } from '../auth/sessions/cookies.js';

const PUBLIC = 'https://roost.example.com';
let srv: RunningServer;
let idp: DevProvider;
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  srv = await startServer({ dev: false, env: { ROOST_PUBLIC_URL: PUBLIC } });
  idp = await startDevProvider({
    accounts: [{ id: 'ana', claims: { email: 'ana@acme.test', email_verified: true, groups: ['staff'] } }],
    clients: [{ client_id: 'roost', client_secret: 'secret-0123456789abcdef', redirect_uris: [`${PUBLIC}/auth/oidc/acme/okta/callback`] }],
  });
  const op = srv.operatorToken;
  expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'acme' }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: op, ...json({ name: 'main' }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/acme/connections`, { method: 'POST', token: op, ...json({ id: 'okta', issuer: idp.issuer, client_id: 'roost', client_secret: 'secret-0123456789abcdef' }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/acme/mappings`, { method: 'PUT', token: op, ...json({ rules: [{ claim: 'email', match: { email_domain: 'acme.test' }, grant: { role: 'viewer', workspace: 'main' } }] }) })).status).toBe(200);
}, 120_000);
afterAll(async () => { await srv?.stop(); await idp?.close(); });

describe('__Host- cookies over HTTPS', () => {
  it('are what sessionCookies writes when Secure, with Path=/; the bare names on plain HTTP', () => {
    const secure = sessionCookies('jwt', 'csrf', 60, true);
    expect(secure[0]).toMatch(/^__Host-roost_session=jwt; Path=\/; .*HttpOnly; Secure$/);
    expect(secure[1]).toMatch(/^__Host-roost_csrf=csrf; Path=\/; .*Secure$/);
    expect(sessionCookies('jwt', 'csrf', 60, false)[0]).toMatch(/^roost_session=jwt; Path=\/; /);
  });

  it('a login sets and reads only __Host- cookies; a planted bare roost_session or roost_login counts for nothing', async () => {
    const b = new Browser();
    const start = await b.fetch(`${srv.url}/auth/login?tenant=acme&connection=okta`);
    expect(start.status, start.text).toBe(302);
    const set = start.headers.getSetCookie();
    expect(set.some((c) => /^__Host-roost_login=[A-Za-z0-9_-]{43}; Path=\/; .*Secure/.test(c)), set.join(' | ')).toBe(true);
    expect(set.some((c) => /^roost_login=/.test(c))).toBe(false);
    // The IdP sends the browser to the public URL; the proxy would pass it on to this server.
    const cb = await b.toCallback(start.headers.get('location')!, 'ana', PUBLIC);
    const done = await b.fetch(cb.replace(PUBLIC, srv.url));
    expect(done.status, done.text).toBe(303);
    const session = b.cookie(srv.url, '__Host-roost_session');
    expect(session).toBeTruthy();
    expect(done.headers.getSetCookie().some((c) => /^__Host-roost_session=.*; Path=\/; .*HttpOnly; Secure/.test(c))).toBe(true);
    const who = (cookie: string) => call(`${srv.url}/auth/session`, { headers: { Cookie: cookie } });
    expect((await who(`__Host-roost_session=${session}`)).status).toBe(200);
    // The same token under the bare name (what a sibling subdomain can set) is no session here.
    expect((await who(`roost_session=${session}`)).status).toBe(401);
    // Nor under a name that only looks like it once trimmed (U+00A0 is no space to a cookie name).
    expect((await who(`\u00A0__Host-roost_session=${session}`)).status).toBe(401);
    // A callback whose browser sent its login key only under the bare name is refused (login fixation).
    const b2 = new Browser();
    const start2 = await b2.fetch(`${srv.url}/auth/login?tenant=acme&connection=okta`);
    const key = /__Host-roost_login=([^;]+)/.exec(start2.headers.getSetCookie().join(' '))![1]!;
    const cb2 = await b2.toCallback(start2.headers.get('location')!, 'ana', PUBLIC);
    const fixated = await call(cb2.replace(PUBLIC, srv.url), { headers: { Cookie: `roost_login=${key}` }, redirect: 'manual' });
    expect(fixated.status).not.toBe(303);
  });
});
