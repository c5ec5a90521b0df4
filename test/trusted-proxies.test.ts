/**
 * The client address behind reverse proxies (`--trusted-proxies`, src/http/client-ip.ts): the
 * audit records and the login rate limit see the client an operator's proxy names in
 * X-Forwarded-For, and only a trusted proxy is believed. Unit cases of the address rules, then
 * the real server over HTTP with the in-process OIDC IdP, with and without trusted proxies (the
 * test connects from 127.0.0.1, which plays the proxy when it is trusted).
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, tempDir, type RunningServer } from './helpers/server.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';
import { clientAddressOf, parseTrustedProxies } from '../src/http/client-ip.js';
import { loadConfig } from '../src/config.js';

describe('who the client is (clientAddressOf)', () => {
  const proxies = parseTrustedProxies('10.0.0.0/8, 192.0.2.1, fd00::/8').proxies!;
  const who = (peer: string, xff?: string | string[]) => clientAddressOf(peer, xff, proxies);

  it('a peer that is not a trusted proxy is the client, whatever it says it forwards', () => {
    expect(who('198.51.100.7', '203.0.113.1')).toBe('198.51.100.7');
    expect(clientAddressOf('192.0.2.1', '203.0.113.1', undefined)).toBe('192.0.2.1');
    expect(who('::ffff:198.51.100.7', '203.0.113.1')).toBe('198.51.100.7');
  });

  it('through trusted proxies, the rightmost address that is not one of them', () => {
    expect(who('192.0.2.1', '203.0.113.1')).toBe('203.0.113.1');
    expect(who('::ffff:192.0.2.1', '203.0.113.1')).toBe('203.0.113.1');
    // The client's own claim (leftmost) is not believed past an untrusted hop.
    expect(who('192.0.2.1', '1.1.1.1, 203.0.113.1, 10.2.3.4')).toBe('203.0.113.1');
    expect(who('10.9.9.9', ['1.1.1.1, 203.0.113.1', '10.2.3.4'])).toBe('203.0.113.1');
    expect(who('fd12::1', '2001:db8::5')).toBe('2001:db8::5');
    expect(who('192.0.2.1', '[2001:db8::5]:4711, 203.0.113.9:80')).toBe('203.0.113.9');
  });

  it('a hop that is not an address stops the walk at the last trusted proxy', () => {
    expect(who('192.0.2.1', 'unknown')).toBe('192.0.2.1');
    expect(who('192.0.2.1', '203.0.113.1, evil.example, 10.0.0.5')).toBe('10.0.0.5');
    expect(who('192.0.2.1', '')).toBe('192.0.2.1');
    expect(who('192.0.2.1')).toBe('192.0.2.1');
  });

  it('only proxies all the way: the leftmost of them', () => {
    expect(who('192.0.2.1', '10.0.0.1, 10.0.0.2')).toBe('10.0.0.1');
  });

  it('the setting is checked at start: addresses and subnets only', () => {
    expect(parseTrustedProxies('10.0.0.0/33').problems[0]).toContain('"10.0.0.0/33" is not an IP address or a subnet');
    expect(parseTrustedProxies('proxy.internal').problems).toHaveLength(1);
    expect(parseTrustedProxies(' , ').problems[0]).toContain('at least one address');
    expect(() => loadConfig(['--trusted-proxies', '10.0.0.1, nope'], {})).toThrow(/--trusted-proxies \/ ROOST_TRUSTED_PROXIES: "nope" is not an IP address/);
    expect(loadConfig(['--trusted-proxies', '10.0.0.1,::1'], {}).trustedProxies?.spec).toEqual(['10.0.0.1', '::1']);
  });
});

const RATE = 1;
const BURST = RATE * 10;

async function serverWithIdp(trusted: boolean): Promise<{ srv: RunningServer; idp: DevProvider }> {
  const dataDir = tempDir();
  const srv = await startServer({
    dataDir, dev: false,
    env: { ROOST_LOGIN_RATE: String(RATE), ...(trusted ? { ROOST_TRUSTED_PROXIES: '127.0.0.1, ::1' } : {}) },
  });
  const op = srv.operatorToken;
  const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const idp = await startDevProvider({
    accounts: [{ id: 'ana', claims: { email: 'ana@acme.test', email_verified: true } }],
    clients: [{ client_id: 'roost-acme', client_secret: 'secret-acme-0123456789', redirect_uris: [`${srv.url}/auth/oidc/acme/main/callback`] }],
  });
  expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'acme' }) })).status).toBe(201);
  const c = await call(`${srv.url}/v0/tenants/acme/connections`, { method: 'POST', token: op, ...json({ id: 'main', type: 'oidc', issuer: idp.issuer, client_id: 'roost-acme', client_secret: 'secret-acme-0123456789' }) });
  expect(c.status, c.text).toBe(201);
  return { srv, idp };
}

/** Starts a login (no redirects followed) as if forwarded for `xff`. */
function loginStart(srv: RunningServer, xff: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(`${srv.url}/auth/login?tenant=acme&connection=main`, { headers: { 'X-Forwarded-For': xff } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    }).on('error', reject);
  });
}

const auditsOf = (srv: RunningServer, requestId: string) => srv.logs.filter((l) => l.msg === 'audit' && l.requestId === requestId);
async function deniedFrom(srv: RunningServer, xff: string): Promise<string> {
  const id = `xff-${Math.random().toString(36).slice(2)}`;
  const r = await call(`${srv.url}/v0/datasources`, { token: 'p.not-a-token', headers: { 'X-Forwarded-For': xff, 'X-Request-Id': id } });
  expect(r.status).toBe(401);
  for (let i = 0; i < 50 && auditsOf(srv, id).length === 0; i++) await new Promise((res) => setTimeout(res, 20));
  const a = auditsOf(srv, id);
  expect(a.length, 'the denial is audited').toBeGreaterThan(0);
  return String(a[0]!.ip);
}

describe('behind a trusted proxy (ROOST_TRUSTED_PROXIES=127.0.0.1, ::1)', () => {
  let s: { srv: RunningServer; idp: DevProvider };
  beforeAll(async () => { s = await serverWithIdp(true); }, 90_000);
  afterAll(async () => { await s?.srv.stop(); await s?.idp.close(); });

  it('audit records name the client the proxy forwarded for, not the proxy nor what the client claimed', async () => {
    expect(await deniedFrom(s.srv, '203.0.113.9')).toBe('203.0.113.9');
    expect(await deniedFrom(s.srv, '6.6.6.6, 203.0.113.10')).toBe('203.0.113.10');
  });

  it('each forwarded client has its own login rate, so one client\'s flood does not stop the others behind the same proxy', async () => {
    const first: number[] = [];
    for (let i = 0; i < BURST + 3; i++) first.push(await loginStart(s.srv, '198.51.100.1'));
    expect(first.slice(0, BURST).every((c) => c === 302), String(first)).toBe(true);
    expect(first.slice(BURST)).toContain(429);
    expect(await loginStart(s.srv, '198.51.100.2')).toBe(302);
    // A client cannot escape its bucket by claiming another address to the proxy.
    expect(await loginStart(s.srv, '198.51.100.2, 198.51.100.1')).toBe(429);
  });
});

describe('without trusted proxies (the default)', () => {
  let s: { srv: RunningServer; idp: DevProvider };
  beforeAll(async () => { s = await serverWithIdp(false); }, 90_000);
  afterAll(async () => { await s?.srv.stop(); await s?.idp.close(); });

  it('X-Forwarded-For is not believed: the audit names the peer, and made-up addresses share its login rate', async () => {
    expect(await deniedFrom(s.srv, '203.0.113.9')).toBe('127.0.0.1');
    // Said once in the log, with the fix.
    const warned = s.srv.logs.filter((l) => l.level === 'warn' && String(l.msg).includes('X-Forwarded-For, which is ignored'));
    expect(warned).toHaveLength(1);
    expect(warned[0]!.fix).toContain('--trusted-proxies');
    const codes: number[] = [];
    for (let i = 0; i < BURST + 3; i++) codes.push(await loginStart(s.srv, `198.51.100.${i + 1}`));
    expect(codes.slice(BURST)).toContain(429);
    expect(s.srv.logs.filter((l) => String(l.msg).includes('X-Forwarded-For, which is ignored'))).toHaveLength(1);
  });

  it('ROOST_PUBLIC_URL is checked once at start (an http(s) URL without query or fragment) and read without its trailing slashes', async () => {
    const { loadConfig } = await import('../src/config.js');
    expect(loadConfig([], { ROOST_PUBLIC_URL: 'https://data.example.com/roost//' }).publicUrl).toBe('https://data.example.com/roost');
    expect(loadConfig([], {}).publicUrl).toBeUndefined();
    for (const bad of ['roost.example.com', 'https://x.example/?a=1', 'ftp://x.example'])
      expect(() => loadConfig([], { ROOST_PUBLIC_URL: bad }), bad).toThrow(/ROOST_PUBLIC_URL must be an http\(s\) URL/);
  });

  it('a server with ROOST_PUBLIC_URL and no trusted proxy says so at start', async () => {
    const srv = await startServer({ dev: false, env: { ROOST_PUBLIC_URL: 'https://roost.example.com' } });
    try {
      expect(srv.logs.some((l) => l.level === 'warn' && String(l.msg).startsWith('ROOST_PUBLIC_URL is set (a reverse proxy?) but no proxy is trusted'))).toBe(true);
    } finally {
      await srv.stop();
    }
    const trusted = await startServer({ dev: false, env: { ROOST_PUBLIC_URL: 'https://roost.example.com', ROOST_TRUSTED_PROXIES: '127.0.0.1' } });
    try {
      expect(trusted.logs.some((l) => String(l.msg).startsWith('ROOST_PUBLIC_URL is set'))).toBe(false);
    } finally {
      await trusted.stop();
    }
  });
});
