/**
 * A backup belongs to the tenant it was taken of, not to its slug. Tenant `acme` is backed
 * up, deleted, and `acme` is created again: the new tenant's administrator must not list,
 * read, download or restore the first tenant's backup (its data and state.json), while the
 * operator still can (a tenant deleted by mistake comes back from it). The new tenant's own
 * backups stay its administrator's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, waitJob as pollJob, startServer, type RunningServer } from './helpers/server.js';
import { clientCredentialsToken } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
let idp: DevProvider;
const AUD = 'https://roost.test/acme';
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const op = () => srv.operatorToken;
const waitJob = (token: string, id: string) => pollJob(srv, token, id);
const adminToken = () => clientCredentialsToken(idp.issuer, 'acme-admin', 'acme-admin-secret-0123456789', AUD);
const sql = (token: string, q: string) => call(`${srv.url}/v0/sql?q=${encodeURIComponent(q)}`, { token });

/** Creates tenant acme with a workspace holding `rows` rows, an IdP connection and a tenant:admin rule; the workspace token. */
async function createAcme(rows: number, marker: string): Promise<string> {
  expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op(), ...json({ slug: 'acme', name: marker }) })).status).toBe(201);
  const ws = await call(`${srv.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: op(), ...json({ name: 'main' }) });
  expect(ws.status).toBe(201);
  const token = ws.body.token as string;
  expect((await call(`${srv.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent('id UInt32, v String')}`, { method: 'POST', token })).status).toBe(200);
  const csv = Array.from({ length: rows }, (_, i) => `${i},${marker}`).join('\n') + '\n';
  expect((await call(`${srv.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: csv })).status).toBe(200);
  expect((await call(`${srv.url}/v0/tenants/acme/connections`, { method: 'POST', token: op(), ...json({ id: 'idp', type: 'oidc', issuer: idp.issuer, client_id: 'x', accept_idp_access_tokens: true, audience: AUD }) })).status).toBe(201);
  expect((await call(`${srv.url}/v0/tenants/acme/mappings`, { method: 'PUT', token: op(), ...json({ rules: [{ claim: 'groups', match: { equals: 'acme-admins' }, grant: { role: 'tenant:admin' } }] }) })).status).toBeLessThan(300);
  return token;
}

async function backup(token: string): Promise<string> {
  const b = await call(`${srv.url}/v0/tenants/acme/backups`, { method: 'POST', token });
  expect(b.status, b.text).toBe(202);
  expect((await waitJob(token, b.body.id)).status).toBe('done');
  return b.body.backup_id as string;
}

let oldBackup = '';
let oldWsToken = '';
let newWsToken = '';

beforeAll(async () => {
  srv = await startServer({ dev: false });
  idp = await startDevProvider({ accounts: [], clients: [{ client_id: 'acme-admin', client_secret: 'acme-admin-secret-0123456789', token_claims: { groups: ['acme-admins'] } }], audience: AUD });
  oldWsToken = await createAcme(3, 'old-acme');
  oldBackup = await backup(await adminToken());
  expect((await call(`${srv.url}/v0/tenants/acme`, { method: 'DELETE', token: op() })).status).toBe(200);
}, 120_000);

afterAll(async () => { await srv?.stop(); await idp?.close(); });

describe('backups of a deleted tenant', () => {
  it('are listed to the operator while no tenant holds the slug, as not the current tenant\'s', async () => {
    const list = await call(`${srv.url}/v0/tenants/acme/backups`, { token: op() });
    expect(list.status, list.text).toBe(200);
    expect(list.body.backups).toEqual([expect.objectContaining({ id: oldBackup, tenant: 'acme', current: false })]);
    expect(list.body.backups[0].tenant_created_at).toEqual(expect.any(String));
  });

  it('are not the business of a tenant created again under the slug', async () => {
    newWsToken = await createAcme(5, 'new-acme');
    const admin = await adminToken();
    // The new tenant's administrator works on its own tenant...
    expect((await call(`${srv.url}/v0/tenants/acme`, { token: admin })).status).toBe(200);
    const list = await call(`${srv.url}/v0/tenants/acme/backups`, { token: admin });
    expect(list.status, list.text).toBe(200);
    // ...and sees nothing of the deleted tenant's backup: not listed, not readable, not downloadable.
    expect(list.body.backups).toEqual([]);
    for (const p of [`/v0/tenants/acme/backups/${oldBackup}`, `/v0/tenants/acme/backups/${oldBackup}/archive`]) {
      const r = await call(`${srv.url}${p}`, { token: admin });
      expect(r.status, `${p}: ${r.text.slice(0, 200)}`).toBe(404);
      expect(r.text).not.toContain('old-acme');
      expect(r.text).not.toContain('state.json');
    }
    // Not restorable: refused before any job starts, and nothing changed.
    const restore = await call(`${srv.url}/v0/tenants/acme/backups/${oldBackup}/restore`, { method: 'POST', token: admin, ...json({ replace: true }) });
    expect(restore.status, restore.text).toBe(404);
    expect(await sql(newWsToken, 'SELECT count() AS n, any(v) AS v FROM ev')).toMatchObject({ status: 200, body: { data: [{ n: 5, v: 'new-acme' }] } });
    expect((await call(`${srv.url}/v0/tenants/acme`, { token: op() })).body.name).toBe('new-acme');
    // The deleted tenant's tokens stay dead.
    expect((await sql(oldWsToken, 'SELECT 1')).status).toBe(401);
  }, 60_000);

  it('the new tenant\'s own backups are its administrator\'s', async () => {
    const admin = await adminToken();
    const mine = await backup(admin);
    const list = await call(`${srv.url}/v0/tenants/acme/backups`, { token: admin });
    expect(list.body.backups.map((b: { id: string }) => b.id)).toEqual([mine]);
    expect(list.body.backups[0].current).toBe(true);
    expect((await call(`${srv.url}/v0/tenants/acme/backups/${mine}`, { token: admin })).status).toBe(200);
    const tar = await fetch(`${srv.url}/v0/tenants/acme/backups/${mine}/archive`, { headers: { Authorization: `Bearer ${admin}` } });
    expect(tar.status).toBe(200);
    await tar.arrayBuffer();
    const r = await call(`${srv.url}/v0/tenants/acme/backups/${mine}/restore`, { method: 'POST', token: admin, ...json({ replace: true }) });
    expect(r.status, r.text).toBe(202);
    expect((await waitJob(admin, r.body.id)).status).toBe('done');
    expect(await sql(newWsToken, 'SELECT count() AS n FROM ev')).toMatchObject({ status: 200, body: { data: [{ n: 5 }] } });
  }, 60_000);

  it('the operator still sees both, downloads the old one and can bring the deleted tenant back', async () => {
    const list = await call(`${srv.url}/v0/tenants/acme/backups`, { token: op() });
    const byId = Object.fromEntries(list.body.backups.map((b: { id: string; current: boolean }) => [b.id, b.current]));
    expect(byId[oldBackup]).toBe(false);
    expect(Object.values(byId).filter((c) => c === true)).toHaveLength(1);
    const tar = await fetch(`${srv.url}/v0/tenants/acme/backups/${oldBackup}/archive`, { headers: { Authorization: `Bearer ${op()}` } });
    expect(tar.status).toBe(200);
    expect(Buffer.from(await tar.arrayBuffer()).toString('latin1')).toContain('old-acme');
    // The operator's restore replaces the new tenant by the deleted one (its record, data and tokens).
    const r = await call(`${srv.url}/v0/tenants/acme/backups/${oldBackup}/restore`, { method: 'POST', token: op(), ...json({ replace: true }) });
    expect(r.status, r.text).toBe(202);
    expect((await waitJob(op(), r.body.id)).status).toBe('done');
    expect((await call(`${srv.url}/v0/tenants/acme`, { token: op() })).body.name).toBe('old-acme');
    expect(await sql(oldWsToken, 'SELECT count() AS n, any(v) AS v FROM ev')).toMatchObject({ status: 200, body: { data: [{ n: 3, v: 'old-acme' }] } });
    const after = await call(`${srv.url}/v0/tenants/acme/backups`, { token: op() });
    expect(after.body.backups.find((b: { id: string }) => b.id === oldBackup).current).toBe(true);
  }, 60_000);
});

describe('backups made before manifests named their tenant', () => {
  it('belong to the tenant their state.json\'s record names', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const admin = await adminToken();
    // acme is the restored old tenant now: its old backup, with the manifest's owner field removed, is still its own.
    const file = path.join(srv.dataDir, 'backups', 'acme', oldBackup, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    delete m.tenant_created_at;
    fs.writeFileSync(file, JSON.stringify(m));
    const list = await call(`${srv.url}/v0/tenants/acme/backups`, { token: admin });
    expect(list.body.backups.map((b: { id: string }) => b.id)).toContain(oldBackup);
    // The new tenant's backup (taken before the operator's restore) is now a former tenant's: hidden from the admin.
    expect(list.body.backups.every((b: { current: boolean }) => b.current)).toBe(true);
    expect(list.body.backups).toHaveLength(1);
  });
});
