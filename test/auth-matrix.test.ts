/**
 * Role × route matrix: each role (from mapping rules, carried by IdP access
 * tokens of an in-process oidc-provider) and each token kind against routes
 * with the permission each one needs. 2xx where allowed, 403 where not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { clientCredentialsToken } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
let idp: DevProvider;
const creds: Record<string, string> = {};
const AUD = 'https://roost.test/matrix';
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const ROLES = ['viewer', 'editor', 'admin', 'tenant_admin'] as const;

const cc = (client: string) => clientCredentialsToken(idp.issuer, client, `${client}-secret-0123456789`, AUD);

beforeAll(async () => {
  srv = await startServer({ dev: false });
  idp = await startDevProvider({
    accounts: [],
    clients: ROLES.map((r) => ({ client_id: `svc-${r}`, client_secret: `svc-${r}-secret-0123456789`, token_claims: { groups: [`g-${r}`] } })),
    audience: AUD,
  });
  const op = srv.operatorToken;
  await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'mx' }) });
  const ws = await call(`${srv.url}/v0/tenants/mx/workspaces`, { method: 'POST', token: op, ...json({ name: 'main' }) });
  creds.ws_admin_token = ws.body.token;
  await call(`${srv.url}/v0/tenants/mx/connections`, { method: 'POST', token: op, ...json({ id: 'idp', issuer: idp.issuer, client_id: 'roost', accept_idp_access_tokens: true, audience: AUD }) });
  await call(`${srv.url}/v0/tenants/mx/mappings`, { method: 'PUT', token: op, ...json({ rules: [
    { claim: 'groups', match: { equals: 'g-viewer' }, grant: { role: 'viewer', workspace: 'main' } },
    { claim: 'groups', match: { equals: 'g-editor' }, grant: { role: 'editor', workspace: 'main' } },
    { claim: 'groups', match: { equals: 'g-admin' }, grant: { role: 'admin', workspace: '*' } },
    { claim: 'groups', match: { equals: 'g-tenant_admin' }, grant: { role: 'tenant:admin' } },
  ] }) });
  for (const r of ROLES) creds[r] = await cc(`svc-${r}`);
  const mk = async (name: string, scope: string) => (await call(`${srv.url}/v0/tokens?name=${name}&${scope}`, { method: 'POST', token: creds.ws_admin_token })).body.token;
  creds.read_token = await mk('read', 'scope=DATASOURCES:READ:m');
  creds.append_token = await mk('append', 'scope=DATASOURCES:APPEND:m');
}, 120_000);

afterAll(async () => { await srv?.stop(); await idp?.close(); });

type Cell = { route: string; run: (token: string) => Promise<number>; allowed: string[] };

const ws = 'workspace=main';
const cells: Cell[] = [
  { route: 'GET /v0/tenants (operator)', allowed: [], run: async (t) => (await call(`${srv.url}/v0/tenants`, { token: t })).status },
  { route: 'POST /v0/tenants/mx/mappings/test (tenant admin)', allowed: ['tenant_admin'], run: async (t) => (await call(`${srv.url}/v0/tenants/mx/mappings/test`, { method: 'POST', token: t, ...json({ claims: {} }) })).status },
  { route: 'GET /v0/tenants/mx/connections (tenant admin)', allowed: ['tenant_admin'], run: async (t) => (await call(`${srv.url}/v0/tenants/mx/connections`, { token: t })).status },
  { route: 'GET /v0/tokens (TOKENS)', allowed: ['admin', 'tenant_admin', 'ws_admin_token'], run: async (t) => (await call(`${srv.url}/v0/tokens?${ws}`, { token: t })).status },
  { route: 'POST /v0/datasources create (DATASOURCES:CREATE)', allowed: ['editor', 'admin', 'tenant_admin', 'ws_admin_token'], run: async (t) => {
    const r = await call(`${srv.url}/v0/datasources?${ws}&name=m&mode=create&schema=${encodeURIComponent('a Int32')}`, { method: 'POST', token: t });
    if (r.status < 300) await call(`${srv.url}/v0/datasources/m?${ws}`, { method: 'DELETE', token: creds.ws_admin_token });
    return r.status === 409 ? 200 : r.status;
  } },
  { route: 'GET /v0/sql SELECT 1 (DATASOURCES:READ)', allowed: ['viewer', 'editor', 'admin', 'tenant_admin', 'ws_admin_token'], run: async (t) => (await call(`${srv.url}/v0/sql?${ws}&q=${encodeURIComponent('SELECT 1 AS x')}`, { token: t })).status },
];

describe('role × route', () => {
  for (const c of cells) {
    it(c.route, async () => {
      const got: Record<string, string> = {};
      const want: Record<string, string> = {};
      for (const who of [...ROLES, 'ws_admin_token', 'read_token', 'append_token']) {
        if (c.route.includes('sql') && (who === 'read_token' || who === 'append_token')) continue;
        const status = await c.run(creds[who]!);
        got[who] = status < 300 ? 'allow' : status === 403 ? 'deny' : `status ${status}`;
        want[who] = c.allowed.includes(who) ? 'allow' : 'deny';
      }
      expect(got).toEqual(want);
    });
  }

  it('every denial left an audit record naming the credential', () => {
    const denied = srv.logs.filter((l) => l.msg === 'audit' && l.event === 'authz.denied');
    expect(denied.some((d) => String(d.credential).startsWith('idp:idp:svc-viewer'))).toBe(true);
    expect(denied.some((d) => d.credential === 'token:read')).toBe(true);
  });

  it('a person\'s denial in a workspace is that workspace\'s record, read by its admins in roost.audit_log', async () => {
    const id = `deny-${Date.now()}`;
    const r = await call(`${srv.url}/v0/tokens?${ws}`, { token: creds.viewer!, headers: { 'X-Request-Id': id } });
    expect(r.status).toBe(403);
    const q = `${srv.url}/v0/sql?${ws}&q=${encodeURIComponent(`SELECT event, outcome, credential, resource FROM roost.audit_log WHERE request_id = '${id}' FORMAT JSON`)}`;
    let rows: Array<Record<string, string>> = [];
    for (let i = 0; i < 50 && rows.length === 0; i++) {
      rows = (await call(q, { token: creds.ws_admin_token! })).body.data ?? [];
      if (!rows.length) await new Promise((res) => setTimeout(res, 200));
    }
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ event: 'authz.denied', outcome: 'denied', resource: 'TOKENS @ mx/main' });
    expect(rows[0]!.credential).toMatch(/^idp:idp:svc-viewer/);
  });
});
