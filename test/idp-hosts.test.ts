/**
 * IdP hosts the operator allows (`--idp-hosts`, `ROOST_IDP_HOSTS`; auth/oidc/idp-hosts.ts and the
 * guarded fetch of auth/oidc/client.ts). The real server, the in-process oidc-provider on
 * 127.0.0.1, a small IdP of the test's own on 127.0.0.2 whose discovery documents name endpoints
 * elsewhere, and an "internal service" on 127.0.0.3 that must never be reached. The rules of the
 * list itself are checked directly, then at start (exit 2).
 */
import http from 'node:http';
import { spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, tempDir, type RunningServer } from './helpers/server.js';
import { Browser } from './helpers/oidc-browser.js';
import { json, serverAudit } from './helpers/audit.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';
import { idpUrlRefusal, parseIdpHosts } from '../auth/oidc/idp-hosts.js';
import { isLoopbackHost } from '../auth/loopback.js';
import { loadConfig } from '../src/config.js';

describe('the list (parseIdpHosts, idpUrlRefusal)', () => {
  const hosts = parseIdpHosts('idp.acme.com, *.okta.com, 10.0.0.5:8443, [fd00::5], 127.0.0.1:9000, IDP.Upper.COM').hosts!;
  const ok = (url: string) => idpUrlRefusal(hosts, new URL(url)) === undefined;

  it('host names exactly, ignoring case; wildcards for subdomains at any depth, not the domain itself', () => {
    expect(ok('https://idp.acme.com/realms/x')).toBe(true);
    expect(ok('https://IDP.ACME.COM/')).toBe(true);
    expect(ok('https://idp.upper.com/')).toBe(true);
    expect(ok('https://acme.com/')).toBe(false);
    expect(ok('https://x.idp.acme.com/')).toBe(false);
    expect(ok('https://idp.acme.com.evil.test/')).toBe(false);
    expect(ok('https://acme.okta.com/')).toBe(true);
    expect(ok('https://a.b.okta.com/')).toBe(true);
    expect(ok('https://okta.com/')).toBe(false);
    expect(ok('https://evilokta.com/')).toBe(false);
    // A trailing dot is another spelling of the name: it matches nothing.
    expect(ok('https://idp.acme.com./')).toBe(false);
    expect(ok('https://acme.okta.com./')).toBe(false);
  });

  it('no port in an entry means the default port only; a port means that one', () => {
    expect(ok('https://idp.acme.com:443/')).toBe(true);
    expect(ok('https://idp.acme.com:8443/')).toBe(false);
    expect(ok('https://acme.okta.com:444/')).toBe(false);
    expect(ok('https://10.0.0.5:8443/')).toBe(true);
    expect(ok('https://10.0.0.5/')).toBe(false);
    expect(ok('https://[fd00::5]/')).toBe(true);
    // IP literals compare as URLs write them: other spellings of an address are that address.
    expect(ok('https://0xa.0.0.5:8443/')).toBe(true);
    expect(ok('https://[fd00:0::5]/')).toBe(true);
  });

  it('plain http only on loopback, and with a list only on loopback hosts it names', () => {
    expect(ok('http://127.0.0.1:9000/')).toBe(true);
    expect(ok('http://127.0.0.1:9001/')).toBe(false);
    expect(ok('http://idp.acme.com/')).toBe(false);
    expect(idpUrlRefusal(undefined, new URL('http://127.0.0.7:1234/'))).toBeUndefined();
    expect(idpUrlRefusal(undefined, new URL('http://10.0.0.5/'))).toMatch(/plain http is accepted on loopback only/);
    expect(idpUrlRefusal(undefined, new URL('https://10.0.0.5/'))).toBeUndefined();
    expect(idpUrlRefusal(parseIdpHosts('*').hosts, new URL('https://anything.test:1/'))).toBeUndefined();
  });

  it('bad entries are refused, each with why', () => {
    const p = (raw: string) => parseIdpHosts(raw).problems;
    expect(p('*.10.0.0.5')[0]).toMatch(/a wildcard applies to domain names, not IP addresses/);
    expect(p('idp.acme.com.')[0]).toMatch(/without a trailing dot/);
    expect(p('bücher.example')[0]).toMatch(/xn-- form/);
    expect(p('010.0.0.1')[0]).toMatch(/as URLs write it \(a URL reads it as 8\.0\.0\.1\)/);
    expect(p('idp.acme.com:0')[0]).toMatch(/port must be 1-65535/);
    expect(p('idp.acme.com:65536')[0]).toMatch(/port must be 1-65535/);
    expect(p('https://idp.acme.com')[0]).toMatch(/is not a host name/);
    expect(p('idp_acme.com')[0]).toMatch(/is not a host name/);
    expect(p('a.*.com')[0]).toMatch(/is not a host name/);
    expect(p('*, idp.acme.com')[0]).toMatch(/"\*" allows any host: list nothing else with it/);
    expect(p(' , ')[0]).toMatch(/name at least one host/);
    expect(p('xn--bcher-kva.example, *.corp')).toEqual([]);
  });

  it('is a server option: --idp-hosts or ROOST_IDP_HOSTS', () => {
    expect(loadConfig(['--idp-hosts', 'idp.acme.com'], {}).idpHosts?.spec).toEqual(['idp.acme.com']);
    expect(loadConfig([], { ROOST_IDP_HOSTS: '*.acme.com' }).idpHosts?.entries).toEqual([{ host: 'acme.com', wildcard: true, port: undefined }]);
    expect(loadConfig([], {}).idpHosts).toBeUndefined();
    expect(() => loadConfig([], { ROOST_IDP_HOSTS: '' })).toThrow(/--idp-hosts \/ ROOST_IDP_HOSTS: name at least one host/);
  });
});

describe('loopback hosts (auth/loopback.ts: plain http for issuers, SAML URLs, the public URL\'s cookies)', () => {
  it('IPv4 literals in 127.0.0.0/8, ::1 and localhost; never a DNS name that looks like one', () => {
    for (const h of ['127.0.0.1', '127.255.255.254', '127.1.2.3', '::1', '[::1]', '[0:0:0:0:0:0:0:1]', 'localhost', 'LOCALHOST']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['127.evil.com', '127.0.0.1.nip.io', 'localhost.', 'localhost.evil.com', '128.0.0.1', '10.0.0.127', '[::2]', '::', '', 'evil.com']) expect(isLoopbackHost(h), h).toBe(false);
    // As URLs hand them over: other spellings of 127.0.0.1 are that address.
    expect(isLoopbackHost(new URL('http://0x7f.1/').hostname)).toBe(true);
    expect(idpUrlRefusal(undefined, new URL('http://127.evil.com/'))).toMatch(/plain http is accepted on loopback only/);
  });
});

describe('configuration errors at start', () => {
  it('a bad list stops the server with exit code 2, naming the option and the entry', () => {
    const r = spawnSync(process.execPath, ['bin/roost.js', 'serve', '--data', tempDir(), '--port', '0'], { encoding: 'utf8', env: { ...process.env, ROOST_IDP_HOSTS: 'idp.acme.com, *.10.0.0.5' }, timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--idp-hosts \/ ROOST_IDP_HOSTS: "\*\.10\.0\.0\.5": a wildcard applies to domain names, not IP addresses/);
  });

  it('roost --help lists it', () => {
    const r = spawnSync(process.execPath, ['bin/roost.js', '--help'], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toMatch(/--idp-hosts <v>\s+ROOST_IDP_HOSTS/);
  });
});

/** An HTTP server on a loopback address of its own; `hits` are the paths it was asked for. */
async function listen(host: string, handler: (req: http.IncomingMessage, res: http.ServerResponse, base: string) => void): Promise<{ base: string; port: number; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  let base = '';
  const server = http.createServer((req, res) => { hits.push(req.url ?? ''); handler(req, res, base); });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, host, () => resolve()); });
  const port = (server.address() as AddressInfo).port;
  base = `http://${host}:${port}`;
  return { base, port, hits, close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

describe('a server with --idp-hosts', () => {
  const dataDir = tempDir();
  let before: RunningServer | undefined;
  let srv: RunningServer;
  let idp: DevProvider;
  let fake: Awaited<ReturnType<typeof listen>>;
  let internal: Awaited<ReturnType<typeof listen>>;
  const { op, audits, waitAudits } = serverAudit(() => srv);
  const connect = (s: RunningServer, body: Record<string, unknown>) => call(`${s.url}/v0/tenants/acme/connections`, { method: 'POST', token: s.operatorToken, ...json({ type: 'oidc', client_id: 'roost', client_secret: 'secret-0123456789', ...body }) });

  beforeAll(async () => {
    // 127.0.0.3 plays a service inside the operator's network: whatever it is asked is a failure.
    internal = await listen('127.0.0.3', (_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}'));
    // The tenant admin's "IdP" on 127.0.0.2 (an allowed host): its documents point elsewhere.
    fake = await listen('127.0.0.2', (req, res, base) => {
      const m = /^\/([a-z-]+)\/\.well-known\/openid-configuration$/.exec(req.url ?? '');
      if (m?.[1] === 'redirect') return void res.writeHead(302, { Location: `${internal.base}/.well-known/openid-configuration` }).end();
      // Endpoints on the allowed host that answer with a redirect to the internal one: only the
      // check of each request when it is sent sees them (discovery found nothing to refuse).
      const moved = /^\/[a-z-]+-moved\/(keys|token)$/.exec(req.url ?? '');
      if (moved) return void res.writeHead(302, { Location: `${internal.base}/${moved[1]}` }).end();
      if (!m) return void res.writeHead(404).end();
      const issuer = `${base}/${m[1]}`;
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({
        issuer, authorization_endpoint: `${issuer}/auth`, response_types_supported: ['code'], subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint: m[1] === 'token-internal' ? `${internal.base}/token` : `${issuer}/token`,
        jwks_uri: m[1] === 'jwks-internal' ? `${internal.base}/keys` : `${issuer}/keys`,
      }));
    });
    // Before the setting: a connection to the internal host is accepted (http on loopback), as today.
    before = await startServer({ dataDir, dev: false });
    expect(before.logs.some((l) => l.level === 'warn' && /IdP hosts are not limited/.test(String(l.msg)))).toBe(true);
    expect((await call(`${before.url}/v0/tenants`, { method: 'POST', token: before.operatorToken, ...json({ slug: 'acme' }) })).status).toBe(201);
    expect((await connect(before, { id: 'old', issuer: internal.base })).status).toBe(201);
    await before.stop();
    before = undefined;

    idp = await startDevProvider({
      accounts: [{ id: 'ana', claims: { email: 'ana@acme.test', email_verified: true, groups: ['eng'] } }],
      clients: [{ client_id: 'roost', client_secret: 'secret-0123456789', redirect_uris: [] }],
    });
    srv = await startServer({ dataDir, dev: false, env: { ROOST_IDP_HOSTS: `127.0.0.1:${idp.port}, 127.0.0.2:${fake.port}, *.idp.test` } });
  }, 120_000);

  afterAll(async () => {
    await before?.stop();
    await srv?.stop();
    await idp?.close();
    await fake?.close();
    await internal?.close();
  });

  it('says at start which stored connections the list refuses, and no warning about an unlimited list', () => {
    const w = srv.logs.find((l) => /whose issuer --idp-hosts does not allow/.test(String(l.msg)));
    expect(w?.connections).toEqual([`acme/old (${internal.base})`]);
    expect(srv.logs.some((l) => /IdP hosts are not limited/.test(String(l.msg)))).toBe(false);
  });

  it('a login through an allowed IdP works', async () => {
    // The IdP needs Roost's callback, known once the server runs.
    await idp.close();
    idp = await startDevProvider({
      port: idp.port,
      accounts: [{ id: 'ana', claims: { email: 'ana@acme.test', email_verified: true, groups: ['eng'] } }],
      clients: [{ client_id: 'roost', client_secret: 'secret-0123456789', redirect_uris: [`${srv.url}/auth/oidc/acme/main/callback`] }],
    });
    const c = await connect(srv, { id: 'main', issuer: idp.issuer, scopes: ['openid', 'email', 'groups'] });
    expect(c.status, c.text).toBe(201);
    expect((await call(`${srv.url}/v0/tenants/acme/mappings`, { method: 'PUT', token: op(), ...json({ rules: [{ claim: 'groups', match: { equals: 'eng' }, grant: { role: 'tenant:admin' }, connections: ['main'] }] }) })).status).toBe(200);
    const r = await new Browser().login(srv.url, 'tenant=acme&connection=main', 'ana');
    expect(r.status, r.text).toBe(303);
    await waitAudits((a) => a.event === 'login' && a.outcome === 'success' && a.connection === 'main');
  });

  it('a connection to a host the list does not name is a 400 saying which setting allows it; allowed ones are created', async () => {
    for (const issuer of ['https://internal.example.com', `http://127.0.0.1:${idp.port + 1}`, 'https://127.0.0.1:444', 'https://idp.test', 'https://sso.idp.test.', internal.base]) {
      const r = await connect(srv, { id: 'bad', issuer });
      expect(r.status, `${issuer}: ${r.text}`).toBe(400);
      expect(r.body.code).toBe('IDP_HOST_NOT_ALLOWED');
      expect(r.body.error).toMatch(/not among the IdP hosts this server's operator allows \(--idp-hosts \/ ROOST_IDP_HOSTS\)/);
      expect(r.body.error).toContain(`ask the server's operator to allow ${new URL(issuer).port ? `${new URL(issuer).hostname}:${new URL(issuer).port}` : new URL(issuer).hostname}`);
    }
    expect((await connect(srv, { id: 'sso', issuer: 'https://sso.idp.test/realms/acme' })).status).toBe(201);
    // A patch is checked as a create: moving a connection to a host not allowed is refused, and stores nothing.
    const p = await call(`${srv.url}/v0/tenants/acme/connections/sso`, { method: 'PATCH', token: op(), ...json({ issuer: 'https://10.0.0.5' }) });
    expect(p.status, p.text).toBe(400);
    expect(p.body).toMatchObject({ code: 'IDP_HOST_NOT_ALLOWED', host: '10.0.0.5' });
    expect((await call(`${srv.url}/v0/tenants/acme/connections/sso`, { token: op() })).body.issuer).toBe('https://sso.idp.test/realms/acme');
  });

  it('plain http to a DNS name starting with 127. is not loopback: an OIDC issuer or a SAML sso_url there is refused', async () => {
    const o = await connect(srv, { id: 'dns127', issuer: 'http://127.evil.com' });
    expect(o.status).toBe(400);
    expect(o.body).toMatchObject({ code: 'INVALID_PARAMETER', error: 'issuer must be an https URL (plain http only on loopback)' });
    for (const sso of ['http://127.evil.com/sso', 'http://127.0.0.1.nip.io/sso', 'http://localhost./sso']) {
      const r = await call(`${srv.url}/v0/tenants/acme/connections`, { method: 'POST', token: op(), ...json({ id: 'dns127', type: 'saml', entity_id: 'https://idp.partner.test/saml', sso_url: sso }) });
      expect(r.status, sso).toBe(400);
      expect(r.body.error, sso).toBe('sso_url must be an https URL (plain http only on loopback)');
    }
  });

  it('each refused create and patch is audited as a denied connection change, with the host and the tenant', async () => {
    const r = await connect(srv, { id: 'denied', issuer: 'https://internal.example.com:8443/realm' });
    expect(r.status).toBe(400);
    const [c] = await waitAudits((a) => a.event === 'connection.created' && a.requestId === r.headers.get('x-request-id'));
    expect(c).toMatchObject({
      outcome: 'denied', tenant: 'acme', credential: 'operator', resource: 'connection:denied', reason: r.body.error,
      details: { host: 'internal.example.com:8443', issuer: 'https://internal.example.com:8443/realm' },
    });
    const p = await call(`${srv.url}/v0/tenants/acme/connections/sso`, { method: 'PATCH', token: op(), ...json({ issuer: 'https://10.0.0.5' }) });
    expect(p.status).toBe(400);
    const [u] = await waitAudits((a) => a.event === 'connection.updated' && a.requestId === p.headers.get('x-request-id'));
    expect(u).toMatchObject({ outcome: 'denied', tenant: 'acme', resource: 'connection:sso', reason: p.body.error, details: { host: '10.0.0.5', issuer: 'https://10.0.0.5' } });
    // A patch of another field of a connection the list refuses (stored before it) is refused and audited too.
    const old = await call(`${srv.url}/v0/tenants/acme/connections/old`, { method: 'PATCH', token: op(), ...json({ scopes: ['openid'] }) });
    expect(old.status).toBe(400);
    const [o] = await waitAudits((a) => a.event === 'connection.updated' && a.requestId === old.headers.get('x-request-id'));
    expect(o).toMatchObject({ outcome: 'denied', tenant: 'acme', resource: 'connection:old', details: { host: `127.0.0.3:${internal.port}`, issuer: internal.base } });
    // Nothing was recorded as a change.
    expect(audits((a) => a.outcome === 'success' && /^connection\.(created|updated)$/.test(a.event) && ['connection:denied', 'connection:old'].includes(a.resource))).toHaveLength(0);
  });

  /** Starts a login; answers the response and the `idp.request` refusal audited for the connection. */
  async function refusedLogin(connection: string) {
    const r = await call(`${srv.url}/auth/login?tenant=acme&connection=${connection}`, { redirect: 'manual' });
    const a = await waitAudits((x) => x.event === 'idp.request' && x.connection === connection);
    return { r, a };
  }

  it('a discovery document naming a jwks_uri on a host not allowed: the login is refused before the browser leaves, audited', async () => {
    expect((await connect(srv, { id: 'jwks', issuer: `${fake.base}/jwks-internal` })).status).toBe(201);
    const { r, a } = await refusedLogin('jwks');
    expect(r.status, r.text).toBe(401);
    expect(r.body.code).toBe('LOGIN_FAILED');
    expect(r.body.error).toBe(`the server does not contact the identity provider's jwks_uri on http://127.0.0.3:${internal.port}: host 127.0.0.3:${internal.port} is not among the IdP hosts this server's operator allows (--idp-hosts / ROOST_IDP_HOSTS)`);
    expect(a).toHaveLength(1);
    expect(a[0]).toMatchObject({ outcome: 'denied', tenant: 'acme', reason: r.body.error, details: { url: `${internal.base}/keys`, request: 'jwks_uri' } });
    // One record for the refusal: the HTTP layer does not add another for the 401.
    expect(audits((x) => x.event === 'auth.credential' && x.requestId === r.headers.get('x-request-id'))).toHaveLength(0);
  });

  it('a discovery document naming a token endpoint on a host not allowed is refused the same way', async () => {
    expect((await connect(srv, { id: 'token', issuer: `${fake.base}/token-internal` })).status).toBe(201);
    const { r, a } = await refusedLogin('token');
    expect(r.status).toBe(401);
    expect(r.body.error).toMatch(/identity provider's token_endpoint on http:\/\/127\.0\.0\.3:\d+: host 127\.0\.0\.3:\d+ is not among/);
    expect(a[0]).toMatchObject({ outcome: 'denied', tenant: 'acme', details: { request: 'token_endpoint' } });
  });

  it('a discovery answered with a redirect to another host is not followed', async () => {
    expect((await connect(srv, { id: 'redirect', issuer: `${fake.base}/redirect` })).status).toBe(201);
    const { r, a } = await refusedLogin('redirect');
    expect(r.status).toBe(401);
    expect(r.body.error).toMatch(/discovery document .*\/redirect\/\.well-known\/openid-configuration answered with a redirect \(302 to http:\/\/127\.0\.0\.3:\d+\), which the server does not follow/);
    expect(a[0]).toMatchObject({ outcome: 'denied', details: { redirect_to: `${internal.base}/.well-known/openid-configuration` } });
  });

  it('a connection stored before the list was set is refused when the server would fetch from it', async () => {
    const { r, a } = await refusedLogin('old');
    expect(r.status).toBe(401);
    expect(r.body.error).toContain(`the server does not contact the identity provider's discovery document ${internal.base}/.well-known/openid-configuration: host 127.0.0.3:${internal.port} is not among`);
    expect(a[0]).toMatchObject({ outcome: 'denied', tenant: 'acme', details: { request: 'discovery document' } });
  });

  it('an IdP access token of a connection whose keys are on a host not allowed is refused (401), audited', async () => {
    const p = await call(`${srv.url}/v0/tenants/acme/connections/jwks`, { method: 'PATCH', token: op(), ...json({ accept_idp_access_tokens: true, audience: 'https://roost.test/api' }) });
    expect(p.status, p.text).toBe(200);
    const { privateKey } = await jose.generateKeyPair('RS256');
    const jwt = await new jose.SignJWT({ scope: 'api' }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'k' })
      .setIssuer(`${fake.base}/jwks-internal`).setAudience('https://roost.test/api').setSubject('svc').setIssuedAt().setExpirationTime('5m').sign(privateKey);
    const r = await call(`${srv.url}/v0/tenants/acme/connections`, { token: jwt });
    expect(r.status, r.text).toBe(401);
    expect(r.body).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(r.body.error).toMatch(/^the IdP access token cannot be verified: the server does not contact the identity provider's jwks_uri/);
    await waitAudits((x) => x.event === 'auth.idp_token' && x.outcome === 'failure' && /cannot be verified/.test(x.reason));
  });

  it('an allowed jwks_uri answering with a redirect to a host not allowed: the IdP access token is refused, the redirect not followed, audited', async () => {
    const issuer = `${fake.base}/jwks-moved`;
    expect((await connect(srv, { id: 'jwks-moved', issuer, accept_idp_access_tokens: true, audience: 'https://roost.test/jwks-moved' })).status).toBe(201);
    const { privateKey } = await jose.generateKeyPair('RS256');
    const jwt = await new jose.SignJWT({ scope: 'api' }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'k' })
      .setIssuer(issuer).setAudience('https://roost.test/jwks-moved').setSubject('svc').setIssuedAt().setExpirationTime('5m').sign(privateKey);
    const r = await call(`${srv.url}/v0/tenants/acme/connections`, { token: jwt });
    expect(r.status, r.text).toBe(401);
    expect(r.body.error).toMatch(new RegExp(`^the IdP access token cannot be verified: the identity provider's jwks_uri on http://127\\.0\\.0\\.2:${fake.port} answered with a redirect \\(302 to http://127\\.0\\.0\\.3:${internal.port}\\), which the server does not follow`));
    const [a] = await waitAudits((x) => x.event === 'idp.request' && x.connection === 'jwks-moved');
    expect(a).toMatchObject({ outcome: 'denied', tenant: 'acme', details: { request: 'jwks_uri', url: `${issuer}/keys`, redirect_to: `${internal.base}/keys` } });
    expect(fake.hits).toContain('/jwks-moved/keys');
  });

  it('an allowed token endpoint answering with a redirect to a host not allowed: the login fails at the callback, the redirect not followed, audited', async () => {
    const issuer = `${fake.base}/token-moved`;
    expect((await connect(srv, { id: 'token-moved', issuer })).status).toBe(201);
    const b = new Browser();
    const start = await b.fetch(`${srv.url}/auth/login?tenant=acme&connection=token-moved`);
    expect(start.status, start.text).toBe(302);
    const to = new URL(start.headers.get('location')!);
    expect(to.origin + to.pathname).toBe(`${issuer}/auth`);
    const cb = await b.fetch(`${srv.url}/auth/oidc/acme/token-moved/callback?code=c0de&state=${encodeURIComponent(to.searchParams.get('state')!)}`);
    expect(cb.status, cb.text).toBe(401);
    expect(JSON.parse(cb.text).error).toMatch(new RegExp(`the identity provider's token_endpoint on http://127\\.0\\.0\\.2:${fake.port} answered with a redirect \\(302 to http://127\\.0\\.0\\.3:${internal.port}\\), which the server does not follow`));
    const [a] = await waitAudits((x) => x.event === 'idp.request' && x.connection === 'token-moved');
    expect(a).toMatchObject({ outcome: 'denied', tenant: 'acme', details: { request: 'token_endpoint', url: `${issuer}/token`, redirect_to: `${internal.base}/token` } });
    expect(fake.hits).toContain('/token-moved/token');
  });

  it('nothing ever reached the internal host', () => {
    expect(internal.hits).toEqual([]);
  });
});
