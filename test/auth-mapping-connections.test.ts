/**
 * Mapping rules limited to connections, end to end: one tenant with its corporate OIDC IdP
 * (`okta`, the in-process oidc-provider) and a partner's SAML IdP (`partner`, samlify's signer),
 * the real server over HTTP. A rule limited to one connection is earned only by logins, sessions
 * and IdP access tokens that came through it: the partner's IdP asserting the corporate admins'
 * group earns nothing (it made the partner a tenant admin before).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { Browser, clientCredentialsToken } from './helpers/oidc-browser.js';
import { makeSamlIdp, samlLogin } from './helpers/saml-idp.js';
import { json, serverAudit } from './helpers/audit.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
let okta: DevProvider;
const partner = makeSamlIdp('https://idp.partner.test/saml');
const AUD = 'https://roost.test/acme';
const { op, audits, waitAudit } = serverAudit(() => srv);
const u = (p: string) => `${srv.url}${p}`;

const ADMINS = { claim: 'groups', match: { equals: 'admins' }, grant: { role: 'tenant:admin' } };
const STAFF = { claim: 'groups', match: { equals: 'staff' }, grant: { role: 'viewer', workspace: 'main' } };
const PARTNERS = { claim: 'groups', match: { equals: 'partners' }, grant: { role: 'editor', workspace: 'main' } };
const SERVICES = { claim: 'groups', match: { equals: 'services' }, grant: { role: 'viewer', workspace: 'main' } };
/** 0: admins (okta only), 1: staff (every connection), 2: partners (partner only), 3: services (partner only). */
const RULES = [{ ...ADMINS, connections: ['okta'] }, STAFF, { ...PARTNERS, connections: ['partner'] }, { ...SERVICES, connections: ['partner'] }];
const putRules = (rules: unknown[]) => call(u('/v0/tenants/acme/mappings'), { method: 'PUT', token: op(), ...json({ rules }) });
const oidcLogin = async (account: string) => {
  const b = new Browser();
  const r = await b.login(srv.url, 'tenant=acme&connection=okta', account);
  return { r, session: b.cookie(srv.url, 'roost_session') };
};
const partnerLogin = (who: string, groups: string[], accept?: string) => samlLogin(srv.url, 'acme', 'partner', partner, `p-${who}`, { email: [`${who}@partner.test`], groups }, accept);
/** The refusal the person sees says no role and whom to ask, nothing of the tenant's rules. */
const genericNoAccess = (text: string, connection: string) => {
  expect(text).toMatch(new RegExp(`grants \\S+ a role through connection &?(quot;|")?${connection}`));
  expect(text).toMatch(/ask the tenant(&#39;|')s administrator/);
  expect(text).not.toMatch(/\brules? \d|limited to other connections/);
};
const roles = async (session: string | undefined) => (await call(u('/auth/session'), { token: session })).body.roles;

beforeAll(async () => {
  srv = await startServer({ dev: false });
  okta = await startDevProvider({
    accounts: [
      { id: 'root', claims: { email: 'root@acme.test', email_verified: true, groups: ['admins'] } },
      { id: 'pat', claims: { email: 'pat@acme.test', email_verified: true, groups: ['partners'] } },
    ],
    clients: [
      { client_id: 'roost', client_secret: 'secret-0123456789abcdef', redirect_uris: [u('/auth/oidc/acme/okta/callback')] },
      { client_id: 'svc', client_secret: 'svc-secret-0123456789abcdef', token_claims: { groups: ['services'] } },
    ],
    audience: AUD,
  });
  expect((await call(u('/v0/tenants'), { method: 'POST', token: op(), ...json({ slug: 'acme' }) })).status).toBe(201);
  expect((await call(u('/v0/tenants/acme/workspaces'), { method: 'POST', token: op(), ...json({ name: 'main' }) })).status).toBe(201);
  const o = await call(u('/v0/tenants/acme/connections'), { method: 'POST', token: op(), ...json({ id: 'okta', type: 'oidc', issuer: okta.issuer, client_id: 'roost', client_secret: 'secret-0123456789abcdef', scopes: ['openid', 'email', 'groups'], accept_idp_access_tokens: true, audience: AUD }) });
  expect(o.status, o.text).toBe(201);
  // One connection: nothing to warn about yet.
  expect((await putRules([STAFF])).body.warnings).toBeUndefined();
  const p = await call(u('/v0/tenants/acme/connections'), { method: 'POST', token: op(), ...json({ id: 'partner', type: 'saml', entity_id: partner.entityId, sso_url: `${partner.entityId}/sso`, certificates: [partner.cert] }) });
  expect(p.status, p.text).toBe(201);
  // The second connection is when a rule for every connection becomes a rule either IdP earns.
  expect(p.body.warnings).toMatchObject([{ reason: 'rules_for_every_connection', rules: [0], connections: ['okta', 'partner'] }]);
}, 90_000);

afterAll(async () => {
  await srv?.stop();
  await okta?.close();
});

describe('rules limited to connections', () => {
  it('PUT refuses an unknown connection and malformed lists (400, nothing changed); the answer warns of rules for every connection', async () => {
    const before = (await call(u('/v0/tenants/acme/mappings'), { token: op() })).body.rules;
    const unknown = await putRules([STAFF, { ...ADMINS, connections: ['okta', 'octa'] }]);
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ code: 'INVALID_PARAMETER', rule: 1, connection: 'octa' });
    expect(unknown.body.error).toMatch(/no connection "octa"/);
    for (const connections of [[], 'okta', [1], ['Okta!']]) {
      const r = await putRules([{ ...ADMINS, connections }]);
      expect(r, JSON.stringify(connections)).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER', rule: 0 } });
    }
    // The singular is not a field of its own: an unknown field, refused like any other.
    expect((await putRules([{ ...ADMINS, connection: 'okta' }])).body).toMatchObject({ code: 'INVALID_PARAMETER', rule: 0 });
    expect((await call(u('/v0/tenants/acme/mappings'), { token: op() })).body.rules).toEqual(before);

    const ok = await putRules(RULES);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.rules).toEqual(RULES);
    expect(ok.body.warnings).toHaveLength(1);
    expect(ok.body.warnings[0]).toMatchObject({ reason: 'rules_for_every_connection', rules: [1], connections: ['okta', 'partner'] });
    expect(ok.body.warnings[0].message).toMatch(/rule 1 applies to logins through every connection/);
    const got = await call(u('/v0/tenants/acme/mappings'), { token: op() });
    expect(got.body).toMatchObject({ rules: RULES, warnings: [{ rules: [1] }] });
    // The audit record carries each rule's connections.
    const a = await waitAudit((x) => x.event === 'mappings.updated' && x.details?.rules_after === 4);
    expect(a.details).toMatchObject({ rules: RULES, unscoped_rules: [1], tenant_connections: ['okta', 'partner'] });
  });

  it('OIDC: the corporate IdP\'s admins get the rule limited to it; its people get nothing from a rule limited to the partner', async () => {
    const root = await oidcLogin('root');
    expect(root.r.status, root.r.text).toBe(303);
    expect(await roles(root.session)).toEqual({ tenant_admin: true, workspaces: {} });

    const pat = await oidcLogin('pat');
    expect(pat.r.status, pat.r.text).toBe(403);
    expect(pat.session).toBeUndefined();
    // The audit record says which rules matched for other connections; the person is not told.
    const a = await waitAudit((x) => x.event === 'login' && x.outcome === 'failure' && x.requestId === pat.r.headers.get('x-request-id'));
    expect(a.reason).toMatch(/grants pat@acme\.test a role through connection "okta"; rule 2 matches but is limited to other connections than "okta"/);
    expect(JSON.parse(pat.r.text)).toMatchObject({ code: 'NO_ACCESS' });
    genericNoAccess(JSON.parse(pat.r.text).error, 'okta');
    // The refusal page of a browser says no more.
    const b = new Browser();
    const start = await b.fetch(u('/auth/login?tenant=acme&connection=okta'));
    const page = await b.fetch(await b.toCallback(start.headers.get('location')!, 'pat', new URL(srv.url).origin), { headers: { Accept: 'text/html' } });
    expect(page.status).toBe(403);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.text).toMatch(/No access/);
    genericNoAccess(page.text, 'okta');
    expect((await waitAudit((x) => x.event === 'login' && x.requestId === page.headers.get('x-request-id'))).reason).toMatch(/rule 2 matches but is limited to other connections/);
  });

  it('SAML: the partner\'s IdP asserting the admins\' group is refused (no_access, audited with the reason), or gets only what its rules give', async () => {
    const only = await partnerLogin('eve', ['admins']);
    expect(only.status, only.text).toBe(403);
    expect(only.body.code).toBe('NO_ACCESS');
    expect(only.session).toBeUndefined();
    const a = await waitAudit((x) => x.event === 'login.saml' && x.requestId === only.requestId);
    expect(a).toMatchObject({ outcome: 'failure', tenant: 'acme', connection: 'partner', details: { check: 'no_access', code: 'NO_ACCESS' } });
    expect(a.reason).toMatch(/rule 0 matches but is limited to other connections than "partner"/);
    genericNoAccess(only.body.error, 'partner');
    const page = await partnerLogin('eve', ['admins'], 'text/html');
    expect(page.status).toBe(403);
    expect(page.text).toMatch(/No access/);
    genericNoAccess(page.text, 'partner');
    expect((await waitAudit((x) => x.event === 'login.saml' && x.requestId === page.requestId)).reason).toMatch(/^no_access: .*rule 0 matches but is limited to other connections than "partner"/);

    // With a group a rule for every connection reads: a viewer, not a tenant admin, now and at every request.
    const eve = await partnerLogin('eve', ['admins', 'staff']);
    expect(eve.status, eve.text).toBe(303);
    expect(await roles(eve.session)).toEqual({ tenant_admin: false, workspaces: { main: 'viewer' } });
    expect((await call(u('/v0/tenants/acme/connections'), { token: eve.session })).status).toBe(403);
    const ok = await waitAudit((x) => x.event === 'login.saml' && x.outcome === 'success' && x.actor === 'eve@partner.test');
    expect(ok.details.grants).toEqual({ tenant_admin: false, workspaces: { main: 'viewer' } });

    // The partner's own rule: its people edit main.
    const pia = await partnerLogin('pia', ['partners']);
    expect(pia.status, pia.text).toBe(303);
    expect(await roles(pia.session)).toEqual({ tenant_admin: false, workspaces: { main: 'editor' } });

    // Sessions are mapped again at every use, for the connection they came through: naming the
    // partner in rule 0 makes eve's session a tenant admin's at once, taking it out undoes it.
    expect((await putRules([{ ...ADMINS, connections: ['okta', 'partner'] }, ...RULES.slice(1)])).status).toBe(200);
    expect((await roles(eve.session)).tenant_admin).toBe(true);
    expect((await putRules(RULES)).status).toBe(200);
    expect((await roles(eve.session)).tenant_admin).toBe(false);
  });

  it('IdP access tokens: the corporate IdP\'s service token gets a rule limited to the partner only once the rule names its connection', async () => {
    const token = await clientCredentialsToken(okta.issuer, 'svc', 'svc-secret-0123456789abcdef', AUD);
    const read = () => call(u('/v0/datasources?workspace=main'), { token });
    expect((await read()).status).toBe(403);
    expect((await putRules([...RULES.slice(0, 3), { ...SERVICES, connections: ['okta'] }])).status).toBe(200);
    expect((await read()).status).toBe(200);
    expect((await putRules(RULES)).status).toBe(200);
    expect((await read()).status).toBe(403);
  });

  it('mappings/test takes the connection to test a login through', async () => {
    const test = (body: Record<string, unknown>) => call(u('/v0/tenants/acme/mappings/test'), { method: 'POST', token: op(), ...json(body) });
    const claims = { groups: ['admins', 'partners'] };
    expect((await test({ claims, connection: 'okta' })).body).toMatchObject({ tenant_admin: true, workspaces: {}, matched_rules: [0], rules_for_other_connections: [2], connection: 'okta', access: true });
    expect((await test({ claims, connection: 'partner' })).body).toMatchObject({ tenant_admin: false, workspaces: { main: 'editor' }, matched_rules: [2], rules_for_other_connections: [0], connection: 'partner', access: true });
    // No connection: only the rules for every connection apply.
    expect((await test({ claims })).body).toMatchObject({ tenant_admin: false, workspaces: {}, matched_rules: [], rules_for_other_connections: [0, 2], connection: null, access: false });
    expect((await test({ claims, connection: 'nope' })).body).toMatchObject({ code: 'INVALID_PARAMETER', connection: 'nope' });
    expect((await test({ claims, connection: 7 })).status).toBe(400);
    // Rules tried before saving are checked as PUT checks them.
    expect((await test({ claims, rules: [{ ...ADMINS, connections: ['nope'] }] })).body).toMatchObject({ code: 'INVALID_PARAMETER', rule: 0, connection: 'nope' });
    expect((await test({ claims, connection: 'partner', rules: [{ ...ADMINS, connections: ['partner'] }] })).body).toMatchObject({ tenant_admin: true, matched_rules: [0] });
  });

  it('a connection named by rules is not deleted (409) until the rules stop naming it', async () => {
    const del = await call(u('/v0/tenants/acme/connections/partner'), { method: 'DELETE', token: op() });
    expect(del.status).toBe(409);
    expect(del.body).toMatchObject({ code: 'CONFLICT', rules: [2, 3] });
    expect(del.body.error).toMatch(/connection "partner" is named by mapping rules 2, 3/);
    expect((await call(u('/v0/tenants/acme/connections/partner'), { token: op() })).status).toBe(200);
    expect(audits((x) => x.event === 'connection.deleted')).toHaveLength(0);

    expect((await putRules([RULES[0], STAFF])).status).toBe(200);
    expect((await call(u('/v0/tenants/acme/connections/partner'), { method: 'DELETE', token: op() })).status).toBe(204);
    await waitAudit((x) => x.event === 'connection.deleted' && x.resource === 'connection:partner');
    // One connection left: rules for every connection are no longer a warning.
    const got = await call(u('/v0/tenants/acme/mappings'), { token: op() });
    expect(got.body.rules).toEqual([RULES[0], STAFF]);
    expect(got.body.warnings).toBeUndefined();
    // A rule cannot name the connection that is gone.
    expect((await putRules([{ ...ADMINS, connections: ['partner'] }])).body).toMatchObject({ code: 'INVALID_PARAMETER', connection: 'partner' });
  });
});

describe('connection and mapping bodies say what they do not take (a black-box round)', () => {
  it('an unknown or misspelt field of a connection is a 400 and changes nothing; a GET answer sent back is taken', async () => {
    const bad = await call(u('/v0/tenants/acme/connections'), { method: 'POST', token: op(), ...json({ id: 'typo', issuer: okta.issuer, client_id: 'roost', accept_idp_access_token: true, audience: `${AUD}/typo` }) });
    expect(bad).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(bad.body.error).toMatch(/unknown field accept_idp_access_token/);
    expect((await call(u('/v0/tenants/acme/connections/typo'), { token: op() })).status).toBe(404);
    const patch = await call(u('/v0/tenants/acme/connections/okta'), { method: 'PATCH', token: op(), ...json({ audiance: 'x' }) });
    expect(patch).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    const view = (await call(u('/v0/tenants/acme/connections/okta'), { token: op() })).body;
    expect(view.audience).toBe(AUD);
    const back = await call(u('/v0/tenants/acme/connections/okta'), { method: 'PATCH', token: op(), ...json(view) });
    expect(back.status, back.text).toBe(200);
    const samlBad = await call(u('/v0/tenants/acme/connections'), { method: 'POST', token: op(), ...json({ id: 'samltypo', type: 'saml', entity_id: 'https://idp.y.test/saml', sso_url: 'https://idp.y.test/sso', certificates: [partner.cert], allow_idp_initated: true }) });
    expect(samlBad).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(samlBad.body.error).toMatch(/allow_idp_initated/);
    expect((await call(u('/v0/tenants/acme/connections/samltypo'), { token: op() })).status).toBe(404);
  });

  it('an IdP URL holding a user or password is a 400 (it was stored, audited and shown to anyone in login errors and redirects)', async () => {
    const o = await call(u('/v0/tenants/acme/connections'), { method: 'POST', token: op(), ...json({ id: 'cred', issuer: 'https://svc:hunter2@idp.example', client_id: 'roost' }) });
    expect(o).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(o.body.error).toMatch(/user or password/);
    expect(o.text).not.toMatch(/hunter2/);
    const s = await call(u('/v0/tenants/acme/connections'), { method: 'POST', token: op(), ...json({ id: 'scred', type: 'saml', entity_id: 'https://idp.x.test/saml', sso_url: 'https://u:secretpw@idp.x.test/sso', certificates: [partner.cert] }) });
    expect(s).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(s.text).not.toMatch(/secretpw/);
    for (const id of ['cred', 'scred']) expect((await call(u(`/v0/tenants/acme/connections/${id}`), { token: op() })).status).toBe(404);
  });

  it('mapping rules: an unknown top-level field and an infinite number are 400s; a GET answer sent back is taken', async () => {
    const before = (await call(u('/v0/tenants/acme/mappings'), { token: op() })).body;
    const extra = await call(u('/v0/tenants/acme/mappings'), { method: 'PUT', token: op(), ...json({ rules: [], extra: 1 }) });
    expect(extra).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(extra.body.error).toMatch(/extra/);
    // 1e999 is Infinity to JSON.parse: it was stored as null, and the rules read back could not be sent again.
    const inf = await call(u('/v0/tenants/acme/mappings'), { method: 'PUT', token: op(), headers: { 'Content-Type': 'application/json' }, body: '{"rules":[{"claim":"level","match":{"equals":1e999},"grant":{"role":"viewer","workspace":"main"}}]}' });
    expect(inf).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    const now = (await call(u('/v0/tenants/acme/mappings'), { token: op() })).body;
    expect(now.rules).toEqual(before.rules);
    const back = await call(u('/v0/tenants/acme/mappings'), { method: 'PUT', token: op(), ...json(now) });
    expect(back.status, back.text).toBe(200);
    expect(back.body.rules).toEqual(before.rules);
  });
});
