/**
 * Failed returns from the IdP are rate limited per client address (docs/decisions.md, "Failed
 * logins are rate limited per address"): an unauthenticated SAML ACS post or OIDC callback that
 * fails is an audit record, and 3,000 posts were 3,000 records. Real server over HTTP, a SAML IdP
 * signing with samlify (test/helpers/saml-idp.ts); attackers post from addresses of their own
 * (127.0.0.x: Linux answers the whole of 127/8 on loopback), people log in from 127.0.0.1. One
 * address may fail 2 times a second in bursts of 20 (`ROOST_LOGIN_RATE=2`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { json, serverAudit, type AuditRecord } from './helpers/audit.js';
import { makeSamlIdp, samlLogin, type SamlIdp } from './helpers/saml-idp.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

const RATE = 2;
const BURST = RATE * 10;

let srv: RunningServer;
let idp: SamlIdp;
let oidc: DevProvider;
const { op, audits } = serverAudit(() => srv);

beforeAll(async () => {
  srv = await startServer({ dev: false, env: { ROOST_LOGIN_RATE: String(RATE) } });
  expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op(), ...json({ slug: 'acme' }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: op(), ...json({ name: 'main' }) })).status).toBe(201);
  idp = makeSamlIdp('https://idp.acme.test/saml');
  const s = await call(`${srv.url}/v0/tenants/acme/connections`, { method: 'POST', token: op(), ...json({ id: 'saml', type: 'saml', entity_id: idp.entityId, sso_url: `${idp.entityId}/sso`, certificates: [idp.cert] }) });
  expect(s.status, s.text).toBe(201);
  // An OIDC connection, for its back-channel logout route (unauthenticated: the IdP posts to it).
  oidc = await startDevProvider({ accounts: [], clients: [{ client_id: 'roost-acme', client_secret: 'secret-acme-0123456789', redirect_uris: [`${srv.url}/auth/oidc/acme/okta/callback`] }] });
  const o = await call(`${srv.url}/v0/tenants/acme/connections`, { method: 'POST', token: op(), ...json({ id: 'okta', type: 'oidc', issuer: oidc.issuer, client_id: 'roost-acme', client_secret: 'secret-acme-0123456789' }) });
  expect(o.status, o.text).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/acme/mappings`, { method: 'PUT', token: op(), ...json({ rules: [{ claim: 'email', match: { email_domain: 'acme.test' }, grant: { role: 'viewer', workspace: 'main' } }] }) })).status).toBe(200);
}, 90_000);

afterAll(async () => { await srv?.stop(); await oidc?.close(); });

interface Answer { status: number; headers: http.IncomingHttpHeaders; body: string }

/** One request from `agent` (its local address), a body when given. */
function send(agent: http.Agent, method: string, url: string, body?: string): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body === undefined ? {} : { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** An attacker at `address` sends what `next(i)` says, one at a time, until `min` were sent and `done()`. */
async function flood(address: string, min: number, done: () => boolean, next: (i: number) => { method: string; url: string; body?: string }, onAnswer?: (a: Answer) => void) {
  const agent = new http.Agent({ keepAlive: true, localAddress: address } as http.AgentOptions);
  const statuses: Record<number, number> = {};
  let refused: Answer | undefined;
  const t0 = performance.now();
  try {
    for (let i = 0; i < min || !done(); i++) {
      const n = next(i);
      const a = await send(agent, n.method, n.url, n.body);
      statuses[a.status] = (statuses[a.status] ?? 0) + 1;
      if (a.status === 429) refused ??= a;
      onAnswer?.(a);
    }
  } finally {
    agent.destroy();
  }
  return { statuses, refused, seconds: (performance.now() - t0) / 1000 };
}

const from = (address: string) => (a: AuditRecord) => typeof a.ip === 'string' && a.ip.replace(/^::ffff:/, '') === address;

describe('a flood of failed SAML ACS posts from one address', () => {
  it('is answered 429 past the address\'s rate, writes a bounded number of records (an unknown connection cut and marked), and a person logs in meanwhile', async () => {
    const attacker = '127.0.0.50';
    const longConn = 'c'.repeat(12_000);
    const bad = new URLSearchParams({ SAMLResponse: Buffer.from('<not a response/>').toString('base64'), RelayState: 'x' }).toString();
    let answered = 0;
    let sawRefusal = false;
    let personDone = false;
    const attack = flood(attacker, 600, () => personDone, (i) => ({
      method: 'POST', url: `${srv.url}/auth/saml/acme/${i % 2 ? longConn : 'saml'}/acs`, body: bad,
    }), (a) => { answered++; sawRefusal ||= a.status === 429; });
    const person = (async () => {
      try {
        // (Without a limit no 429 comes: the person goes ahead after 200 answers, and the checks below fail.)
        while (!sawRefusal && answered < 200) await new Promise((r) => setTimeout(r, 10));
        // The attacker's address is over its rate now: a person at another address logs in...
        const r = await samlLogin(srv.url, 'acme', 'saml', idp, 'u-ana', { email: ['ana@acme.test'] });
        expect(r.status, r.text).toBe(303);
        expect((await call(`${srv.url}/auth/session`, { token: r.session })).body).toMatchObject({ tenant: 'acme', identity: { connection: 'saml', email: 'ana@acme.test' } });
        // ...and a failure of theirs is answered (and recorded) as a failure, not a 429.
        const own = await call(`${srv.url}/auth/saml/acme/saml/acs`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' }, body: bad });
        expect(own.status, own.text).toBe(401);
        await expect.poll(() => audits((a) => a.requestId === own.headers.get('x-request-id') && a.event === 'login.saml' && a.outcome === 'failure').length).toBe(1);
      } finally {
        personDone = true;
      }
    })();
    const [{ statuses, refused, seconds }] = await Promise.all([attack, person]);

    // The burst, then the rate; the rest refused. Nothing else was answered.
    expect(Object.keys(statuses).sort()).toEqual(['401', '429']);
    expect(statuses[401]).toBeGreaterThanOrEqual(BURST);
    expect(statuses[401]).toBeLessThanOrEqual(BURST + RATE * (seconds + 1));
    expect(statuses[429]).toBeGreaterThan(300);

    // The refusal: 429, JSON {error, code}, retryable, when to retry.
    expect(refused!.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(refused!.body)).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    expect(JSON.parse(refused!.body).error).toMatch(/too many failed logins from this address/);
    expect(Number(refused!.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    // What the flood wrote: one record per failure answered, one auth.rate_limited per ten seconds.
    await new Promise((r) => setTimeout(r, 300));
    const mine = audits(from(attacker));
    const failures = mine.filter((a) => a.event === 'login.saml');
    const limited = mine.filter((a) => a.event === 'auth.rate_limited');
    expect(failures.length).toBe(statuses[401]);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(limited.length).toBeLessThanOrEqual(Math.ceil(seconds / 10) + 1);
    expect(mine.length).toBe(failures.length + limited.length);
    expect(limited[0]).toMatchObject({ outcome: 'denied', tenant: 'acme', requestId: refused!.headers['x-request-id'], details: { code: 'RATE_LIMITED', limit: 'login_failure_rate', client: attacker } });

    // The connection that does not exist: recorded cut and marked, in the reason too.
    const unknown = failures.filter((a) => String(a.connection).startsWith('(unknown) '));
    expect(unknown.length).toBeGreaterThan(0);
    for (const a of unknown) {
      expect(a.connection).toBe(`(unknown) ${'c'.repeat(64)}…[truncated, 12000 chars]`);
      expect(a.details).toMatchObject({ check: 'connection' });
    }
    expect(failures.some((a) => a.connection === 'saml')).toBe(true);
    for (const a of mine) expect(JSON.stringify(a)).not.toContain('c'.repeat(100));
  }, 120_000);
});

describe('a flood of OIDC callbacks with made-up states from one address', () => {
  it('is answered 429 past the address\'s rate, one record per failure answered', async () => {
    const attacker = '127.0.0.51';
    const { statuses, refused, seconds } = await flood(attacker, 200, () => true, (i) => ({ method: 'GET', url: `${srv.url}/auth/oidc/acme/nosuch/callback?state=made-up-${i}&code=x` }));
    expect(Object.keys(statuses).sort()).toEqual(['401', '429']);
    expect(statuses[401]).toBeLessThanOrEqual(BURST + RATE * (seconds + 1));
    expect(JSON.parse(refused!.body)).toMatchObject({ code: 'RATE_LIMITED' });
    await new Promise((r) => setTimeout(r, 300));
    const mine = audits(from(attacker));
    const failures = mine.filter((a) => a.event === 'login');
    expect(failures.length).toBe(statuses[401]);
    expect(mine.filter((a) => a.event === 'auth.rate_limited').length).toBeLessThanOrEqual(Math.ceil(seconds / 10) + 1);
    expect(failures[0]).toMatchObject({ outcome: 'failure', tenant: 'acme', connection: '(unknown) nosuch' });
  }, 60_000);
});

describe('a flood of back-channel logout posts with bad tokens from one address', () => {
  it('is answered 429 past the address\'s rate, one record per failure answered', async () => {
    const attacker = '127.0.0.52';
    const bad = new URLSearchParams({ logout_token: 'not.a.token' }).toString();
    const { statuses, refused, seconds } = await flood(attacker, 200, () => true, () => ({ method: 'POST', url: `${srv.url}/auth/oidc/acme/okta/backchannel-logout`, body: bad }));
    const failed = Object.entries(statuses).filter(([s]) => s !== '429');
    expect(failed.length, JSON.stringify(statuses)).toBe(1);
    const [failStatus, answered] = failed[0]!;
    expect(Number(failStatus)).toBeGreaterThanOrEqual(400);
    expect(answered).toBeGreaterThanOrEqual(BURST);
    expect(answered).toBeLessThanOrEqual(BURST + RATE * (seconds + 1));
    expect(statuses[429]).toBeGreaterThan(100);
    expect(JSON.parse(refused!.body)).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    await new Promise((r) => setTimeout(r, 300));
    const mine = audits(from(attacker));
    const failures = mine.filter((a) => a.event === 'logout.backchannel');
    expect(failures.length).toBe(answered);
    expect(failures[0]).toMatchObject({ outcome: 'failure', tenant: 'acme', connection: 'okta' });
    expect(mine.filter((a) => a.event === 'auth.rate_limited').length).toBeLessThanOrEqual(Math.ceil(seconds / 10) + 1);
    expect(mine.length).toBe(failures.length + mine.filter((a) => a.event === 'auth.rate_limited').length);
  }, 60_000);
});
