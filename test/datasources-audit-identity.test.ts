/**
 * Audit records of data source changes name the person, as those of pipes do: a change made
 * with an IdP access token (or a session) was recorded as just "idp" ("session"), which says
 * nobody in particular.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { clientCredentialsToken } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
let idp: DevProvider;
let editor = '';
const AUD = 'https://roost.test/ds-audit';
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  srv = await startServer({ dev: false });
  idp = await startDevProvider({
    accounts: [],
    clients: [{ client_id: 'svc-editor', client_secret: 'svc-editor-secret-0123456789', token_claims: { groups: ['g-editor'] } }],
    audience: AUD,
  });
  const op = srv.operatorToken;
  expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'dsa' }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/dsa/workspaces`, { method: 'POST', token: op, ...json({ name: 'main' }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/dsa/connections`, { method: 'POST', token: op, ...json({ id: 'corp', issuer: idp.issuer, client_id: 'roost', accept_idp_access_tokens: true, audience: AUD }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/dsa/mappings`, { method: 'PUT', token: op, ...json({ rules: [{ claim: 'groups', match: { equals: 'g-editor' }, grant: { role: 'editor', workspace: 'main' } }] }) })).status).toBeLessThan(300);
  editor = await clientCredentialsToken(idp.issuer, 'svc-editor', 'svc-editor-secret-0123456789', AUD);
}, 120_000);
afterAll(async () => { await srv?.stop(); await idp?.close(); });

const audits = (event: string) => srv.logs.filter((l) => l.msg === 'audit' && l.event === event);
const waitAudit = async (event: string) => {
  for (let i = 0; i < 50 && audits(event).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  return audits(event);
};

describe('data source audit records name the identity', () => {
  it('create, rename, describe and drop by an IdP access token are recorded as idp:<connection>:<subject>, as pipe changes are', async () => {
    const ws = 'workspace=main';
    const send = (method: string, path: string) => call(`${srv.url}${path}${path.includes('?') ? '&' : '?'}${ws}`, { method, token: editor });
    expect((await send('POST', `/v0/datasources?name=people&schema=${encodeURIComponent('a Int32')}`)).status).toBe(200);
    expect((await send('PUT', '/v0/datasources/people?name=persons&description=renamed')).status).toBe(200);
    expect((await send('DELETE', '/v0/datasources/persons')).status).toBe(200);
    // A pipe change by the same credential, for comparison.
    const pipe = await call(`${srv.url}/v0/pipes?${ws}&name=p&sql=${encodeURIComponent('SELECT 1 AS x')}`, { method: 'POST', token: editor });
    expect(pipe.status, pipe.text).toBe(200);
    const [pipeCreate] = await waitAudit('pipe.create');
    expect(pipeCreate!.credential).toBe('idp:corp:svc-editor');
    for (const event of ['datasource.create', 'datasource.rename', 'datasource.update', 'datasource.drop']) {
      const got = await waitAudit(event);
      expect(got.map((a) => a.credential), event).toEqual(['idp:corp:svc-editor']);
    }
  });
});
