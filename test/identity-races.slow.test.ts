/**
 * Races between a login's IdP round trip and changes of the state it depends on, against the
 * real server over HTTP and a real in-process OpenID provider. The test drives the browser up
 * to the callback URL (the IdP has answered), changes the state, and only then requests the
 * callback: what the login checked when it started must hold when the session is issued.
 * Also: sessions after a revocation made during the round trip, and tokens minted by a person.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as samlify from 'samlify';
import { call, startServer, tempDir, type RunningServer } from './helpers/server.js';
import { Browser } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
/** When set, the IdP's token endpoint waits for it before answering (the code exchange is held). */
let held: (() => Promise<void>) | undefined;

/**
 * Requests the callback with the IdP's answer to the code exchange held; runs `during` while it
 * is held (Roost has taken the login in progress and is waiting for the IdP), then lets it go.
 */
async function finishHeld(b: Browser, callback: string, during: () => Promise<void>): Promise<{ status: number; session: number | undefined }> {
  let reached!: () => void;
  let release!: () => void;
  const atIdp = new Promise<void>((r) => { reached = r; });
  const go = new Promise<void>((r) => { release = r; });
  held = () => { held = undefined; reached(); return go; };
  const result = finish(b, callback);
  try {
    await atIdp;
    await during();
  } finally {
    release();
  }
  return result;
}
let idp: DevProvider;
let other: DevProvider;
const op = () => srv.operatorToken;
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const TENANTS = ['race-a', 'race-b', 'race-c', 'race-d', 'race-e', 'race-f', 'race-h', 'race-i', 'race-j'];
const ADMIN_RULE = { claim: 'groups', match: { equals: 'admins' }, grant: { role: 'tenant:admin' } };
const conn = (issuer: string, client = 'roost') => ({ id: 'main', type: 'oidc', issuer, client_id: client, client_secret: `${client}-secret-0123456789abcdef`, scopes: ['openid', 'email', 'profile', 'groups'] });

async function setupTenant(slug: string, rules: unknown[] = [ADMIN_RULE]) {
  const t = await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op(), ...json({ slug }) });
  expect(t.status, t.text).toBe(201);
  const c = await call(`${srv.url}/v0/tenants/${slug}/connections`, { method: 'POST', token: op(), ...json(conn(idp.issuer)) });
  expect(c.status, c.text).toBe(201);
  const m = await call(`${srv.url}/v0/tenants/${slug}/mappings`, { method: 'PUT', token: op(), ...json({ rules }) });
  expect(m.status, m.text).toBe(200);
}

/** Starts a login and goes through the IdP; answers the browser and the callback URL, not yet requested. */
async function startLogin(tenant: string, account = 'root'): Promise<{ b: Browser; callback: string }> {
  const b = new Browser();
  const start = await b.fetch(`${srv.url}/auth/login?tenant=${tenant}&connection=main`);
  expect(start.status, start.text).toBe(302);
  const callback = await b.toCallback(start.headers.get('location')!, account, new URL(srv.url).origin);
  return { b, callback };
}

/** The callback, then what the browser's session (if any) is worth. */
async function finish(b: Browser, callback: string): Promise<{ status: number; session: number | undefined }> {
  const r = await b.fetch(callback);
  const cookie = b.cookie(srv.url, 'roost_session');
  const session = cookie ? (await call(`${srv.url}/auth/session`, { token: cookie })).status : undefined;
  return { status: r.status, session };
}

beforeAll(async () => {
  srv = await startServer({ dev: false });
  const accounts = [
    { id: 'root', claims: { name: 'root', email: 'root@race.test', email_verified: true, groups: ['admins'] } },
    { id: 'ana', claims: { name: 'ana', email: 'ana@race.test', email_verified: true, groups: ['eng'] } },
  ];
  const redirects = TENANTS.map((t) => `${srv.url}/auth/oidc/${t}/main/callback`);
  idp = await startDevProvider({ accounts, clients: [{ client_id: 'roost', client_secret: 'roost-secret-0123456789abcdef', redirect_uris: redirects }], hold: (p) => (p === '/token' && held ? held() : undefined) });
  other = await startDevProvider({ accounts, clients: [{ client_id: 'roost', client_secret: 'roost-secret-0123456789abcdef', redirect_uris: redirects }] });
  for (const t of TENANTS) await setupTenant(t);
}, 120_000);

afterAll(async () => {
  await srv?.stop();
  await idp?.close();
  await other?.close();
});

describe('a login whose IdP round trip spans a change of the state', () => {
  it('the sanity case: an undisturbed login gives a working session', async () => {
    const { b, callback } = await startLogin('race-a');
    expect(await finish(b, callback)).toEqual({ status: 303, session: 200 });
  });

  it('its connection deleted and re-created under the same id: the login is refused (it started at another connection)', async () => {
    const { b, callback } = await startLogin('race-b');
    expect((await call(`${srv.url}/v0/tenants/race-b/connections/main`, { method: 'DELETE', token: op() })).status).toBe(204);
    expect((await call(`${srv.url}/v0/tenants/race-b/connections`, { method: 'POST', token: op(), ...json(conn(idp.issuer)) })).status).toBe(201);
    const r = await finish(b, callback);
    expect(r.status).not.toBe(303);
    expect(r.session).toBeUndefined();
    // A login started now works.
    const again = await startLogin('race-b');
    expect(await finish(again.b, again.callback)).toEqual({ status: 303, session: 200 });
  });

  it('its tenant deleted and re-created under the same slug (same connection id, same rules): no session on the new tenant', async () => {
    const { b, callback } = await startLogin('race-c');
    const d = await call(`${srv.url}/v0/tenants/race-c`, { method: 'DELETE', token: op() });
    expect(d.status, d.text).toBeLessThan(300);
    await setupTenant('race-c');
    const r = await finish(b, callback);
    expect(r.status).not.toBe(303);
    expect(r.session).toBeUndefined();
    const again = await startLogin('race-c');
    expect(await finish(again.b, again.callback)).toEqual({ status: 303, session: 200 });
  });

  it('its tenant deleted (not re-created): refused', async () => {
    const { b, callback } = await startLogin('race-f');
    expect((await call(`${srv.url}/v0/tenants/race-f`, { method: 'DELETE', token: op() })).status).toBeLessThan(300);
    const r = await finish(b, callback);
    expect(r.status).not.toBe(303);
    expect(r.session).toBeUndefined();
    await setupTenant('race-f');
  });

  it('all sessions of the tenant revoked by the operator: the login in flight gives no working session', async () => {
    const { b, callback } = await startLogin('race-d');
    expect((await call(`${srv.url}/v0/tenants/race-d/sessions`, { method: 'DELETE', token: op() })).status).toBe(200);
    const r = await finish(b, callback);
    expect(r.session).not.toBe(200);
    expect(r.status).not.toBe(303);
    // A login started after the revocation works.
    const again = await startLogin('race-d');
    expect(await finish(again.b, again.callback)).toEqual({ status: 303, session: 200 });
  });

  it('its connection moved to another issuer: refused (sound before this audit: the issuer is compared at the callback)', async () => {
    const { b, callback } = await startLogin('race-e');
    expect((await call(`${srv.url}/v0/tenants/race-e/connections/main`, { method: 'PATCH', token: op(), ...json({ issuer: other.issuer }) })).status).toBe(200);
    const r = await finish(b, callback);
    expect(r.status).not.toBe(303);
    expect(r.session).toBeUndefined();
    expect((await call(`${srv.url}/v0/tenants/race-e/connections/main`, { method: 'PATCH', token: op(), ...json({ issuer: idp.issuer }) })).status).toBe(200);
  });

  it('the mapping rules changed to grant nothing to this person: refused (sound: the rules are read after the IdP answers)', async () => {
    const { b, callback } = await startLogin('race-e');
    expect((await call(`${srv.url}/v0/tenants/race-e/mappings`, { method: 'PUT', token: op(), ...json({ rules: [{ claim: 'groups', match: { equals: 'nobody' }, grant: { role: 'tenant:admin' } }] }) })).status).toBe(200);
    const r = await finish(b, callback);
    expect(r.status).not.toBe(303);
    expect(r.session).toBeUndefined();
    expect((await call(`${srv.url}/v0/tenants/race-e/mappings`, { method: 'PUT', token: op(), ...json({ rules: [ADMIN_RULE] }) })).status).toBe(200);
  });
});

describe('a login whose code exchange (held at the IdP) spans a change of the state', () => {
  it('its tenant deleted and re-created under the same slug: no session on the new tenant', async () => {
    const { b, callback } = await startLogin('race-h');
    const r = await finishHeld(b, callback, async () => {
      expect((await call(`${srv.url}/v0/tenants/race-h`, { method: 'DELETE', token: op() })).status).toBeLessThan(300);
      await setupTenant('race-h');
    });
    expect(r.status).not.toBe(303);
    expect(r.session).toBeUndefined();
    const again = await startLogin('race-h');
    expect(await finishHeld(again.b, again.callback, async () => {})).toEqual({ status: 303, session: 200 });
  });

  it('its connection deleted and re-created under the same id: refused', async () => {
    const { b, callback } = await startLogin('race-i');
    const r = await finishHeld(b, callback, async () => {
      expect((await call(`${srv.url}/v0/tenants/race-i/connections/main`, { method: 'DELETE', token: op() })).status).toBe(204);
      expect((await call(`${srv.url}/v0/tenants/race-i/connections`, { method: 'POST', token: op(), ...json(conn(idp.issuer)) })).status).toBe(201);
    });
    expect(r.status).not.toBe(303);
    expect(r.session).toBeUndefined();
  });

  it('all sessions of the tenant revoked by the operator: no working session', async () => {
    const { b, callback } = await startLogin('race-j');
    const r = await finishHeld(b, callback, async () => {
      expect((await call(`${srv.url}/v0/tenants/race-j/sessions`, { method: 'DELETE', token: op() })).status).toBe(200);
    });
    expect(r.status).not.toBe(303);
    expect(r.session).not.toBe(200);
  });

  it('the mapping rules changed to grant nothing: refused (sound: the rules are read after the IdP answers)', async () => {
    const { b, callback } = await startLogin('race-j');
    const r = await finishHeld(b, callback, async () => {
      expect((await call(`${srv.url}/v0/tenants/race-j/mappings`, { method: 'PUT', token: op(), ...json({ rules: [] }) })).status).toBe(200);
    });
    expect(r.status).not.toBe(303);
    expect(r.session).toBeUndefined();
    expect((await call(`${srv.url}/v0/tenants/race-j/mappings`, { method: 'PUT', token: op(), ...json({ rules: [ADMIN_RULE] }) })).status).toBe(200);
  });
});

describe('tokens minted by a person through a session', () => {
  it('record who minted them (answered as created_by) and the audit record names the person; the token outlives the person\'s access', async () => {
    const ws = await call(`${srv.url}/v0/tenants/race-a/workspaces`, { method: 'POST', token: op(), ...json({ name: 'w' }) });
    expect(ws.status, ws.text).toBe(201);
    const { b, callback } = await startLogin('race-a');
    expect(await finish(b, callback)).toEqual({ status: 303, session: 200 });
    const csrf = b.cookie(srv.url, 'roost_csrf');
    const made = await b.fetch(`${srv.url}/v0/tokens?workspace=w&name=minted&scope=PIPES:READ:*`, { method: 'POST', headers: csrf ? { 'X-CSRF-Token': csrf } : {} });
    expect(made.status, made.text).toBe(200);
    const body = JSON.parse(made.text);
    expect(body.created_by).toMatchObject({ credential: expect.stringMatching(/^session:main:/), email: 'root@race.test' });
    const shown = await call(`${srv.url}/v0/tokens/minted`, { token: ws.body.token });
    expect(shown.status, shown.text).toBe(200);
    expect(shown.body.created_by).toMatchObject({ email: 'root@race.test' });
    let rec: Record<string, any> | undefined;
    for (let i = 0; i < 100 && !rec; i++) {
      rec = srv.logs.find((l: any) => l.msg === 'audit' && l.event === 'token.created' && l.resource === 'token:minted') as Record<string, any> | undefined;
      if (!rec) await new Promise((r) => setTimeout(r, 20));
    }
    expect(rec).toMatchObject({ actor: 'root@race.test', credential: expect.stringMatching(/^session:main:/) });
    // The person loses access (no rule grants them anything now): their session grants nothing
    // at once, and the token, which belongs to the workspace, still works until an admin deletes it.
    expect((await call(`${srv.url}/v0/tenants/race-a/mappings`, { method: 'PUT', token: op(), ...json({ rules: [] }) })).status).toBe(200);
    expect((await b.fetch(`${srv.url}/v0/tokens?workspace=w`)).status).toBeGreaterThanOrEqual(401);
    expect((await call(`${srv.url}/v0/pipes`, { token: body.token })).status).toBe(200);
    expect((await call(`${srv.url}/v0/tenants/race-a/mappings`, { method: 'PUT', token: op(), ...json({ rules: [ADMIN_RULE] }) })).status).toBe(200);
  });
});

// SAML: samlify as the IdP (as test/auth-saml.test.ts), its response signed with its own signer.
samlify.setSchemaValidator({ validate: async () => 'accepted without schema (test IdP only)' });
const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const iso = (ms: number) => new Date(ms).toISOString();
const SAML_ENTITY = 'https://idp.race.test/saml';

function samlKeys(): { key: string; cert: string; certBody: string } {
  const dir = tempDir('roost-race-saml-');
  const key = path.join(dir, 'idp.key');
  const cert = path.join(dir, 'idp.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=race'], { stdio: 'ignore' });
  const pem = fs.readFileSync(cert, 'utf8');
  return { key: fs.readFileSync(key, 'utf8'), cert: pem, certBody: pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '') };
}

describe('a SAML login whose IdP round trip spans a change of the state', () => {
  let k: ReturnType<typeof samlKeys>;
  let idpSaml: ReturnType<typeof samlify.IdentityProvider>;
  const base = (t: string) => `${srv.url}/auth/saml/${t}/main`;
  const samlConn = () => ({ id: 'main', type: 'saml', entity_id: SAML_ENTITY, sso_url: `${SAML_ENTITY}/sso`, certificates: [k.cert] });

  async function samlTenant(slug: string) {
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op(), ...json({ slug }) })).status).toBe(201);
    const c = await call(`${srv.url}/v0/tenants/${slug}/connections`, { method: 'POST', token: op(), ...json(samlConn()) });
    expect(c.status, c.text).toBe(201);
    expect((await call(`${srv.url}/v0/tenants/${slug}/mappings`, { method: 'PUT', token: op(), ...json({ rules: [ADMIN_RULE] }) })).status).toBe(200);
  }

  /** `/auth/login` → Roost's start of the SAML login (sets the browser's login cookie) → the IdP's AuthnRequest. */
  async function samlStart(tenant: string): Promise<{ requestId: string; relayState: string; browser: string }> {
    const r = await call(`${srv.url}/auth/login?tenant=${tenant}&connection=main`, { redirect: 'manual' });
    expect(r.status, r.text).toBe(302);
    const start = await call(r.headers.get('location')!, { redirect: 'manual' });
    expect(start.status, start.text).toBe(302);
    const browser = start.headers.getSetCookie().find((c) => c.startsWith('roost_saml_login='))!.split(';')[0]!;
    const location = new URL(start.headers.get('location')!);
    const sp = samlify.ServiceProvider({ metadata: (await call(`${base(tenant)}/metadata`)).text });
    const parsed = await idpSaml.parseLoginRequest(sp, 'redirect', { query: Object.fromEntries(location.searchParams) } as any);
    return { requestId: (parsed.extract as any).request.id as string, relayState: location.searchParams.get('RelayState')!, browser };
  }

  /** The IdP's signed answer to the login, posted to the ACS from the browser that started it; answers the status and the session's worth. */
  async function samlFinish(tenant: string, login: { requestId: string; relayState: string; browser: string }): Promise<{ status: number; session: number | undefined }> {
    const now = Date.now();
    const acs = `${base(tenant)}/acs`;
    const irt = ` InResponseTo="${login.requestId}"`;
    const xml = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r${crypto.randomBytes(12).toString('hex')}" Version="2.0" IssueInstant="${iso(now)}" Destination="${acs}"${irt}>`
      + `<saml:Issuer>${SAML_ENTITY}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>`
      + `<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="_a${crypto.randomBytes(12).toString('hex')}" Version="2.0" IssueInstant="${iso(now)}">`
      + `<saml:Issuer>${SAML_ENTITY}</saml:Issuer>`
      + `<saml:Subject><saml:NameID Format="${PERSISTENT}">u-root</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${iso(now + 300_000)}" Recipient="${acs}"${irt}/></saml:SubjectConfirmation></saml:Subject>`
      + `<saml:Conditions NotBefore="${iso(now - 1000)}" NotOnOrAfter="${iso(now + 300_000)}"><saml:AudienceRestriction><saml:Audience>${base(tenant)}/metadata</saml:Audience></saml:AudienceRestriction></saml:Conditions>`
      + `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="_s${crypto.randomBytes(6).toString('hex')}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`
      + `<saml:AttributeStatement><saml:Attribute Name="email" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic"><saml:AttributeValue xsi:type="xs:string">root@race.test</saml:AttributeValue></saml:Attribute><saml:Attribute Name="groups" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic"><saml:AttributeValue xsi:type="xs:string">admins</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>`
      + `</saml:Assertion></samlp:Response>`;
    const signed = samlify.SamlLib.constructSAMLSignature({ privateKey: k.key, signingCert: k.certBody, signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', isBase64Output: false, rawSamlMessage: xml,
      referenceTagXPath: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']",
      signatureConfig: { prefix: 'ds', location: { reference: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: 'after' } } } as any) as string;
    const form = new URLSearchParams({ SAMLResponse: Buffer.from(signed, 'utf8').toString('base64'), RelayState: login.relayState });
    const res = await fetch(acs, { method: 'POST', redirect: 'manual', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json', Cookie: login.browser }, body: form.toString() });
    await res.text();
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('roost_session='));
    const jwt = cookie ? decodeURIComponent(cookie.split(';')[0]!.split('=')[1]!) : undefined;
    return { status: res.status, session: jwt ? (await call(`${srv.url}/auth/session`, { token: jwt })).status : undefined };
  }

  beforeAll(async () => {
    k = samlKeys();
    idpSaml = samlify.IdentityProvider({ entityID: SAML_ENTITY, signingCert: k.certBody, privateKey: k.key, nameIDFormat: [PERSISTENT], wantAuthnRequestsSigned: false, singleSignOnService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: `${SAML_ENTITY}/sso` }] });
    for (const t of ['race-s1', 'race-s2', 'race-s3']) await samlTenant(t);
  }, 60_000);

  it('the sanity case: an undisturbed SAML login gives a working session', async () => {
    const r = await samlFinish('race-s1', await samlStart('race-s1'));
    expect(r.status).toBeLessThan(400);
    expect(r.session).toBe(200);
  });

  it('its connection deleted and re-created under the same id (same IdP, same certificate): refused', async () => {
    const login = await samlStart('race-s2');
    expect((await call(`${srv.url}/v0/tenants/race-s2/connections/main`, { method: 'DELETE', token: op() })).status).toBe(204);
    expect((await call(`${srv.url}/v0/tenants/race-s2/connections`, { method: 'POST', token: op(), ...json(samlConn()) })).status).toBe(201);
    const r = await samlFinish('race-s2', login);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.session).toBeUndefined();
    const again = await samlFinish('race-s2', await samlStart('race-s2'));
    expect(again.session).toBe(200);
  });

  it('all sessions of the tenant revoked by the operator: refused', async () => {
    const login = await samlStart('race-s3');
    expect((await call(`${srv.url}/v0/tenants/race-s3/sessions`, { method: 'DELETE', token: op() })).status).toBe(200);
    const r = await samlFinish('race-s3', login);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.session).not.toBe(200);
  });
});
