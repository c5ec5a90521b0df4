/**
 * What a restore puts back of the control-plane state, and what it must not roll
 * back: session revocations made after the backup stay (a revoked session does not
 * come back to life), and a tenant administrator's restore does not undo the
 * operator's settings of the tenant (limits, domains).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, waitJob as pollJob, startServer, type RunningServer } from './helpers/server.js';
import { Browser, clientCredentialsToken } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
let idp: DevProvider;
const AUD = 'https://roost.test/acme';
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
let backupId = '';

const waitJob = (token: string, id: string) => pollJob(srv, token, id);

beforeAll(async () => {
  srv = await startServer({ dev: false });
  const op = srv.operatorToken;
  const cb = `${srv.url}/auth/oidc/acme/main`;
  idp = await startDevProvider({
    accounts: [{ id: 'ana', claims: { email: 'ana@acme.test', email_verified: true, name: 'ana', groups: ['data-eng'] } }],
    clients: [
      { client_id: 'roost-acme', client_secret: 'secret-acme-0123456789', redirect_uris: [`${cb}/callback`], backchannel_logout_uri: `${cb}/backchannel-logout`, post_logout_redirect_uris: [`${srv.url}/`] },
      { client_id: 'svc-admin', client_secret: 'svc-admin-secret-0123456789', token_claims: { groups: ['acme-admins'] } },
    ],
    audience: AUD,
  });
  expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'acme', domains: ['acme.test'], limits: { concurrent_queries: 8 } }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: op, ...json({ name: 'main' }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/acme/connections`, { method: 'POST', token: op, ...json({ id: 'main', type: 'oidc', issuer: idp.issuer, client_id: 'roost-acme', client_secret: 'secret-acme-0123456789', scopes: ['openid', 'email', 'profile', 'groups'], accept_idp_access_tokens: true, audience: AUD }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/acme/mappings`, { method: 'PUT', token: op, ...json({ rules: [
    { claim: 'groups', match: { equals: 'data-eng' }, grant: { role: 'editor', workspace: 'main' } },
    { claim: 'groups', match: { equals: 'acme-admins' }, grant: { role: 'tenant:admin' } },
  ] }) })).status).toBeLessThan(300);
  const b = await call(`${srv.url}/v0/tenants/acme/backups`, { method: 'POST', token: op });
  expect((await waitJob(op, b.body.id)).status).toBe('done');
  backupId = b.body.backup_id;
}, 120_000);

afterAll(async () => { await srv?.stop(); await idp?.close(); });

describe('restore and the state it must not roll back', () => {
  it('sessions revoked after the backup stay revoked after a restore', async () => {
    const b = new Browser();
    expect((await b.login(srv.url, 'tenant=acme', 'ana')).status).toBe(303);
    const ana = b.cookie(srv.url, 'roost_session')!;
    expect((await call(`${srv.url}/auth/session`, { token: ana })).status).toBe(200);
    expect((await call(`${srv.url}/v0/tenants/acme/sessions`, { method: 'DELETE', token: srv.operatorToken })).status).toBe(200);
    expect((await call(`${srv.url}/auth/session`, { token: ana })).status).toBe(401);
    const r = await call(`${srv.url}/v0/tenants/acme/backups/${backupId}/restore`, { method: 'POST', token: srv.operatorToken, ...json({ replace: true }) });
    expect((await waitJob(srv.operatorToken, r.body.id)).status).toBe('done');
    expect((await call(`${srv.url}/auth/session`, { token: ana })).status).toBe(401);
    // New logins work.
    expect((await new Browser().login(srv.url, 'tenant=acme', 'ana')).status).toBe(303);
  }, 60_000);

  it('a tenant admin\'s restore keeps the operator\'s limits and domains', async () => {
    expect((await call(`${srv.url}/v0/tenants/acme`, { method: 'PATCH', token: srv.operatorToken, ...json({ limits: { concurrent_queries: 2 }, domains: ['acme.example'] }) })).status).toBe(200);
    const admin = await clientCredentialsToken(idp.issuer, 'svc-admin', 'svc-admin-secret-0123456789', AUD);
    const r = await call(`${srv.url}/v0/tenants/acme/backups/${backupId}/restore`, { method: 'POST', token: admin, ...json({ replace: true }) });
    expect(r.status, r.text).toBe(202);
    expect((await waitJob(admin, r.body.id)).status).toBe('done');
    expect((await call(`${srv.url}/v0/tenants/acme`, { token: srv.operatorToken })).body).toMatchObject({ limits: { concurrent_queries: 2 }, domains: ['acme.example'] });
    // The operator's restore puts the tenant record back as it was.
    const o = await call(`${srv.url}/v0/tenants/acme/backups/${backupId}/restore`, { method: 'POST', token: srv.operatorToken, ...json({ replace: true }) });
    expect((await waitJob(srv.operatorToken, o.body.id)).status).toBe('done');
    expect((await call(`${srv.url}/v0/tenants/acme`, { token: srv.operatorToken })).body).toMatchObject({ limits: { concurrent_queries: 8 }, domains: ['acme.test'] });
  }, 60_000);

  it('a restore that would give back what another tenant holds now (a domain, an issuer + audience) is refused and changes nothing', async () => {
    const op = srv.operatorToken;
    // Since the backup, acme gave up its domain and its connection's audience, and rival took both.
    expect((await call(`${srv.url}/v0/tenants/acme`, { method: 'PATCH', token: op, ...json({ domains: ['acme.example'] }) })).status).toBe(200);
    expect((await call(`${srv.url}/v0/tenants/acme/connections/main`, { method: 'PATCH', token: op, ...json({ audience: `${AUD}/moved` }) })).status).toBe(200);
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'rival', domains: ['acme.test'] }) })).status).toBe(201);
    const restoreFails = async (code: string, what: RegExp) => {
      const r = await call(`${srv.url}/v0/tenants/acme/backups/${backupId}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
      expect(r.status, r.text).toBe(202);
      const job = await waitJob(op, r.body.id);
      expect(job).toMatchObject({ status: 'error', code });
      expect(job.error).toMatch(what);
      expect((await call(`${srv.url}/v0/tenants/acme`, { token: op })).body.domains).toEqual(['acme.example']);
      expect((await call(`${srv.url}/v0/tenants/acme/connections/main`, { token: op })).body.audience).toBe(`${AUD}/moved`);
    };
    await restoreFails('ALREADY_EXISTS', /domain acme\.test belongs to tenant "rival"/);
    expect((await call(`${srv.url}/v0/tenants/rival`, { method: 'PATCH', token: op, ...json({ domains: ['rival.test'] }) })).status).toBe(200);
    expect((await call(`${srv.url}/v0/tenants/rival/connections`, { method: 'POST', token: op, ...json({ id: 'idp', type: 'oidc', issuer: idp.issuer, client_id: 'rival', accept_idp_access_tokens: true, audience: AUD }) })).status).toBe(201);
    await restoreFails('ALREADY_EXISTS', /already accepts IdP access tokens of this issuer for this audience/);
    // Once rival lets go, the restore goes through.
    expect((await call(`${srv.url}/v0/tenants/rival/connections/idp`, { method: 'DELETE', token: op })).status).toBeLessThan(300);
    const r = await call(`${srv.url}/v0/tenants/acme/backups/${backupId}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
    expect((await waitJob(op, r.body.id)).status).toBe('done');
    expect((await call(`${srv.url}/v0/tenants/acme`, { token: op })).body.domains).toEqual(['acme.test']);
  }, 90_000);
});
