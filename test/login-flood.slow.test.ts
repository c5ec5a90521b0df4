/**
 * Logins in progress are bounded (docs/decisions.md, "Logins in progress are bounded"): anyone
 * can start logins, each one a state entry. The real server over HTTP with the in-process OIDC
 * IdP and a SAML IdP signing with samlify (test/helpers/saml-idp.ts); attackers flood the start of the login from addresses of their own
 * (127.0.0.x: Linux answers the whole of 127/8 on loopback), while people log in from 127.0.0.1.
 * The server keeps at most 40 logins in progress (`ROOST_LOGINS_PENDING`) and lets one address
 * start 2 a second in bursts of 20 (`ROOST_LOGIN_RATE`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import zlib from 'node:zlib';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { Browser } from './helpers/oidc-browser.js';
import { json, serverAudit } from './helpers/audit.js';
import { makeSamlIdp, signedResponse, type SamlIdp } from './helpers/saml-idp.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';
import { loginClient } from '../auth/login-limits.js';
import { makeRoom } from '../auth/oidc/pending.js';

const CAP = 40;
const RATE = 2;
const BURST = RATE * 10;
/**
 * Requests of each flood: more than a tenant could hold in the store before it was bounded this
 * way (2 000, its oldest given up: a flood pushed out the logins of the people of the tenant).
 */
const FLOOD = 2100;

let srv: RunningServer;
const idps: Record<string, DevProvider> = {};
let samlIdp: SamlIdp;
const { op, waitAudit } = serverAudit(() => srv);

/** Logins in progress the server holds now, as `/metrics` says. */
async function inProgress(protocol: 'oidc' | 'saml'): Promise<number> {
  const m = await call(`${srv.url}/metrics`, { token: op() });
  expect(m.status).toBe(200);
  const line = new RegExp(`^roost_auth_logins_in_progress\\{protocol="${protocol}"\\} (\\d+)$`, 'm').exec(m.text);
  expect(line, 'roost_auth_logins_in_progress in /metrics').not.toBeNull();
  return Number(line![1]);
}

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

/** Attackers at `addresses` (one request at a time each) GET `url` until `done()` and `min` requests were sent. */
async function flood(url: string, addresses: string[], min: number, done: () => boolean) {
  const statuses: Record<number, number> = {};
  let sent = 0;
  let refused: Answer | undefined;
  const agents = addresses.map((localAddress) => new http.Agent({ keepAlive: true, localAddress } as http.AgentOptions));
  await Promise.all(agents.map(async (agent) => {
    while (sent < min || !done()) {
      sent++;
      const a = await new Promise<Answer>((resolve, reject) => {
        http.get(url, { agent }, (res) => {
          let body = '';
          res.on('data', (c) => { body += c; });
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        }).on('error', reject);
      });
      statuses[a.status] = (statuses[a.status] ?? 0) + 1;
      if (a.status === 429) refused ??= a;
    }
  }));
  for (const a of agents) a.destroy();
  return { statuses, sent, refused };
}

const addresses = (from: number, n: number) => Array.from({ length: n }, (_, i) => `127.0.0.${from + i}`);

beforeAll(async () => {
  srv = await startServer({ dev: false, env: { ROOST_LOGINS_PENDING: String(CAP), ROOST_LOGIN_RATE: String(RATE) } });
  for (const [tenant, ws] of [['acme', 'main'], ['globex', 'reports']] as const) {
    const cb = `${srv.url}/auth/oidc/${tenant}/main`;
    idps[tenant] = await startDevProvider({
      accounts: [{ id: 'ana', claims: { email: `ana@${tenant}.test`, email_verified: true, name: 'Ana', groups: ['staff'] } }],
      clients: [{ client_id: `roost-${tenant}`, client_secret: `secret-${tenant}-0123456789`, redirect_uris: [`${cb}/callback`] }],
    });
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op(), ...json({ slug: tenant }) })).status).toBe(201);
    expect((await call(`${srv.url}/v0/tenants/${tenant}/workspaces`, { method: 'POST', token: op(), ...json({ name: ws }) })).status).toBe(201);
    const c = await call(`${srv.url}/v0/tenants/${tenant}/connections`, { method: 'POST', token: op(), ...json({ id: 'main', type: 'oidc', issuer: idps[tenant]!.issuer, client_id: `roost-${tenant}`, client_secret: `secret-${tenant}-0123456789`, scopes: ['openid', 'email', 'profile', 'groups'] }) });
    expect(c.status, c.text).toBe(201);
    expect((await call(`${srv.url}/v0/tenants/${tenant}/mappings`, { method: 'PUT', token: op(), ...json({ rules: [{ claim: 'email', match: { email_domain: `${tenant}.test` }, grant: { role: 'viewer', workspace: ws } }] }) })).status).toBe(200);
  }
  // A SAML connection of acme, its IdP signing with samlify.
  samlIdp = makeSamlIdp('https://idp.acme.test/saml');
  const s = await call(`${srv.url}/v0/tenants/acme/connections`, { method: 'POST', token: op(), ...json({ id: 'saml', type: 'saml', entity_id: samlIdp.entityId, sso_url: `${samlIdp.entityId}/sso`, certificates: [samlIdp.cert] }) });
  expect(s.status, s.text).toBe(201);
}, 90_000);

afterAll(async () => {
  await srv?.stop();
  for (const i of Object.values(idps)) await i.close();
});

/** A started OIDC login taken through the IdP: the callback URL, not requested yet. */
async function toCallback(b: Browser, tenant: string): Promise<string> {
  const start = await b.fetch(`${srv.url}/auth/login?tenant=${tenant}&connection=main`);
  expect(start.status, start.text).toBe(302);
  return b.toCallback(start.headers.get('location')!, 'ana', srv.url);
}

/** Finishes a login at its callback: 303 with a session that says who logged in. */
async function expectLoggedIn(b: Browser, callback: string, tenant: string) {
  const r = await b.fetch(callback);
  expect(r.status, r.text).toBe(303);
  const me = await b.fetch(`${srv.url}/auth/session`);
  expect(me.status).toBe(200);
  expect(JSON.parse(me.text)).toMatchObject({ tenant, identity: { email: `ana@${tenant}.test` } });
}

describe('a flood of login starts', () => {
  it('OIDC: the store stays at its bound, the flood gives up its own logins, people log in, the refusal is a 429 JSON error, audited', async () => {
    // People who started logging in before the flood, and finish after it.
    const early = new Browser();
    const earlyCb = await toCallback(early, 'acme');
    const other = new Browser();
    const otherCb = await toCallback(other, 'globex');

    // Six attackers hammer acme's login start until a person has logged in meanwhile and FLOOD
    // requests were sent.
    let during = false;
    const person = new Browser();
    const attack = flood(`${srv.url}/auth/login?tenant=acme&connection=main`, addresses(10, 6), FLOOD, () => during);
    const meanwhile = (async () => {
      await new Promise((r) => setTimeout(r, 50));
      try { await expectLoggedIn(person, await toCallback(person, 'acme'), 'acme'); } finally { during = true; }
    })();
    const [{ statuses, refused }] = await Promise.all([attack, meanwhile]);

    // The logins started before the flood still finish, in the flooded tenant and in another one.
    await expectLoggedIn(early, earlyCb, 'acme');
    await expectLoggedIn(other, otherCb, 'globex');

    // Each attacker had its burst; the rest was refused, and nothing else was answered.
    expect(Object.keys(statuses).sort()).toEqual(['302', '429']);
    expect(statuses[302]).toBeGreaterThanOrEqual(6 * BURST);
    expect(statuses[302]).toBeGreaterThan(CAP);
    // The store holds no more than its bound, though more than that were started.
    expect(await inProgress('oidc')).toBeLessThanOrEqual(CAP);

    // The refusal: 429, JSON {error, code}, retryable, when to retry.
    expect(refused!.headers['content-type']).toMatch(/^application\/json/);
    const body = JSON.parse(refused!.body);
    expect(body).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    expect(body.error).toMatch(/too many logins started from this address/);
    expect(Number(refused!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    const a = await waitAudit((x) => x.requestId === refused!.headers['x-request-id'], 'first');
    expect(a).toMatchObject({ event: 'auth.rate_limited', outcome: 'denied', tenant: 'acme', connection: 'main', resource: '/auth/login', details: { code: 'RATE_LIMITED', limit: 'login_rate' } });
    expect(a.ip).toMatch(/^(::ffff:)?127\.0\.0\.1[0-5]$/);

    // The people's address was never limited: another login starts and finishes.
    const after = new Browser();
    await expectLoggedIn(after, await toCallback(after, 'acme'), 'acme');
  }, 60_000);

  it('SAML: the same bound and the same 429; a SAML login started before the flood finishes', async () => {
    const spBase = `${srv.url}/auth/saml/acme/saml`;
    const person = new Browser();
    const start = await person.fetch(`${spBase}/login`);
    expect(start.status, start.text).toBe(302);
    const location = new URL(start.headers.get('location')!);
    // HTTP-Redirect binding: the AuthnRequest is raw-deflated, then base64.
    const request = zlib.inflateRawSync(Buffer.from(location.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    const requestId = /<(?:\w+:)?AuthnRequest\b[^>]*\sID="([^"]+)"/.exec(request)![1]!;

    const { statuses, refused } = await flood(`${spBase}/login`, addresses(30, 6), FLOOD, () => true);

    // The IdP answers the person's request; the ACS takes it from the person's browser.
    const response = signedResponse(samlIdp, { audience: `${spBase}/metadata`, acs: `${spBase}/acs`, inResponseTo: requestId, nameId: 'u-ana', attributes: { email: ['ana@acme.test'] } });
    const r = await person.fetch(`${spBase}/acs`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' }, body: new URLSearchParams({ SAMLResponse: response, RelayState: location.searchParams.get('RelayState')! }).toString() });
    expect(r.status, r.text).toBe(303);
    const me = await person.fetch(`${srv.url}/auth/session`);
    expect(JSON.parse(me.text)).toMatchObject({ tenant: 'acme', identity: { connection: 'saml', email: 'ana@acme.test' } });

    expect(Object.keys(statuses).sort()).toEqual(['302', '429']);
    expect(statuses[302]).toBeGreaterThan(CAP);
    expect(await inProgress('saml')).toBeLessThanOrEqual(CAP);
    expect(JSON.parse(refused!.body)).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    await waitAudit((x) => x.requestId === refused!.headers['x-request-id'] && x.event === 'auth.rate_limited' && x.resource === '/auth/saml/:tenant/:connection/login', 'first');
  }, 60_000);
});

describe('who gives up a login when the store is full', () => {
  const entry = (tenant: string, client: string, at: number) => ({ tenant, client, expiresAt: at });
  const evicted = (all: Record<string, ReturnType<typeof entry>>, max: number, now = 0) => makeRoom(all, 'oidcPending', max, now).map((o) => o.path[1]);

  it('the oldest login of the client holding the most in the tenant holding the most; expired ones go first', () => {
    const all = {
      person: entry('acme', 'p', 1), flood1: entry('acme', 'x', 2), flood2: entry('acme', 'x', 3),
      other1: entry('globex', 'q', 0), other2: entry('globex', 'r', 4), gone: entry('acme', 'p', -1),
    };
    // Room left: only the expired one goes.
    expect(evicted(all, 6)).toEqual(['gone']);
    // Full: acme holds the most, and in it x: x's oldest.
    expect(evicted(all, 5)).toEqual(['gone', 'flood1']);
    // Three over: after x's oldest, both tenants hold two: globex's oldest is older, then acme's
    // two clients hold one each: the person's is older.
    expect(evicted(all, 3)).toEqual(['gone', 'flood1', 'other1', 'person']);
    // Entries of before this rule (no client) are one client: it holds the most.
    expect(evicted({ a: { tenant: 't', expiresAt: 5 }, b: { tenant: 't', expiresAt: 6 }, c: entry('t', 'p', 1) } as never, 3)).toEqual(['a']);
  });
});

describe('client addresses', () => {
  it('an IPv4 address (also mapped into IPv6) is one client; an IPv6 address counts by its /48', () => {
    expect(loginClient('203.0.113.7')).toBe('203.0.113.7');
    expect(loginClient('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(loginClient('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1::/48');
    // Another /64 of the same /48 is the same client (a /48 is 65,536 of them).
    expect(loginClient('2001:db8:1:ffff::1')).toBe('2001:db8:1::/48');
    expect(loginClient('2001:0db8:0001:0002::ffff')).toBe('2001:db8:1::/48');
    expect(loginClient('2001:db8:2::1')).toBe('2001:db8:2::/48');
    expect(loginClient('2001:db8::1')).toBe('2001:db8:0::/48');
    expect(loginClient('::1')).toBe('0:0:0::/48');
    expect(loginClient('fe80::1%eth0')).toBe('fe80:0:0::/48');
    expect(loginClient('1:2:3::4:5:6.7.8.9')).toBe('1:2:3::/48');
    expect(loginClient(undefined)).toBe('unknown');
  });
});
