/**
 * Check-then-act races between concurrent API operations (session 8), end to end against the
 * real server: a request checks the state, awaits (the engine, its body, the writer queue), then
 * writes; another request's state change in between must be seen where it writes. Each test
 * staggers the two requests so the second lands at every point of the first, and checks what
 * the state says afterwards (no timing is asserted).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, childProcesses, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
const enc = encodeURIComponent;
const json = { 'Content-Type': 'application/json' };
const later = <T>(ms: number, f: () => Promise<T>) => new Promise((r) => setTimeout(r, ms)).then(f);
const op = (method: string, p: string, body?: unknown) =>
  call(`${srv.url}${p}`, { method, token: srv.operatorToken, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: json }) });
const as = (token: string, method: string, p: string, body?: BodyInit, headers: Record<string, string> = {}) =>
  call(`${srv.url}${p}`, { method, token, body, headers });
/** Creates workspace `name` of tenant local; answers its admin token. */
const mkWorkspace = async (name: string): Promise<string> => {
  const r = await op('POST', '/v0/tenants/local/workspaces', { name });
  expect(r.status, r.text).toBe(201);
  return r.body.token as string;
};
const deleteWorkspace = (name: string) => op('DELETE', `/v0/tenants/local/workspaces/${name}`);
const renameWorkspace = (from: string, to: string) => op('PATCH', `/v0/tenants/local/workspaces/${from}`, { name: to });
const createDataSource = (token: string, name: string) => as(token, 'POST', `/v0/datasources?name=${name}&schema=${enc('id Int32')}`);
const createPipe = (token: string, name: string) =>
  as(token, 'POST', '/v0/pipes', JSON.stringify({ name, nodes: [{ name: `${name}_0`, sql: 'SELECT number AS n FROM numbers(3)', type: 'endpoint' }] }), json);
const names = async (token: string, what: 'datasources' | 'pipes' | 'tokens') => {
  const r = await as(token, 'GET', `/v0/${what}`);
  expect(r.status, r.text).toBe(200);
  return (r.body[what] as Array<{ name: string }>).map((x) => x.name).sort();
};

/**
 * A request whose head goes first (it is authenticated on it) and whose body is sent once
 * `between` is done: what `between` changes lands after the request's checks of the head and
 * before those made once its body is read.
 */
const headFirst = (token: string, method: string, p: string, type: string, body: string, between: () => Promise<void>) =>
  new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(`${srv.url}${p}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)) },
    }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => { text += b.toString(); });
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.flushHeaders();
    void between().then(() => req.end(body), reject);
  });

beforeAll(async () => {
  srv = await startServer();
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('writes into a workspace deleted (or renamed) meanwhile', () => {
  it('a data source created while its workspace is deleted is not left for the next workspace of that name', async () => {
    for (let i = 0; i < 24; i++) {
      const ws = `dsdel_${i}`;
      const token = await mkWorkspace(ws);
      const [c, d] = await Promise.all(i % 2 ? [createDataSource(token, 'events'), later(i, () => deleteWorkspace(ws))] : [later(i, () => createDataSource(token, 'events')), deleteWorkspace(ws)]);
      expect(d.status, `${ws}: ${d.text}`).toBe(200);
      expect([200, 401, 403, 404, 409, 422, 500, 503], `${ws}: ${c.text}`).toContain(c.status);
      // The workspace is gone; one created under its name starts empty.
      const again = await mkWorkspace(ws);
      expect(await names(again, 'datasources'), `${ws}: create answered ${c.status} ${c.text}`).toEqual([]);
      const mk = await createDataSource(again, 'events');
      expect(mk.status, `${ws}: ${mk.text}`).toBe(200);
    }
  });

  it('a data source created while its workspace is renamed is where the answer says, and nowhere else', async () => {
    for (let i = 0; i < 24; i++) {
      const from = `dsren_${i}`;
      const to = `dsren_${i}_b`;
      const token = await mkWorkspace(from);
      const [c, rn] = await Promise.all(i % 2 ? [createDataSource(token, 'events'), later(i, () => renameWorkspace(from, to))] : [later(i, () => createDataSource(token, 'events')), renameWorkspace(from, to)]);
      expect(rn.status, `${from}: ${rn.text}`).toBe(200);
      // The token followed the workspace: the renamed one has the data source exactly when the create said so.
      expect(await names(token, 'datasources'), `${from}: create answered ${c.status} ${c.text}`).toEqual(c.status === 200 ? ['events'] : []);
      const again = await mkWorkspace(from);
      expect(await names(again, 'datasources'), `${from}: create answered ${c.status} ${c.text}`).toEqual([]);
    }
  });

  it('a data source dropped while its workspace is renamed: either it is gone, or it is whole under the new name', async () => {
    for (let i = 0; i < 24; i++) {
      const from = `dropren_${i}`;
      const to = `dropren_${i}_b`;
      const token = await mkWorkspace(from);
      expect((await createDataSource(token, 'events')).status).toBe(200);
      const drop = () => as(token, 'DELETE', '/v0/datasources/events');
      const [d, rn] = await Promise.all(i % 2 ? [drop(), later(i % 12, () => renameWorkspace(from, to))] : [later(i % 12, drop), renameWorkspace(from, to)]);
      expect(rn.status, `${from}: ${rn.text}`).toBe(200);
      const listed = await names(token, 'datasources');
      expect(listed, `${from}: drop answered ${d.status} ${d.text}`).toEqual(d.status === 200 ? [] : ['events']);
      if (listed.length) {
        // Its table is there too: the drop that was refused dropped nothing.
        const q = await as(token, 'GET', `/v0/sql?q=${enc('SELECT count() AS c FROM events FORMAT JSON')}`);
        expect(q.status, `${from}: drop answered ${d.status} ${d.text}; ${q.text}`).toBe(200);
      }
      // Nothing of the drop stays under the old name for the next workspace of that name.
      const again = await mkWorkspace(from);
      expect(await names(again, 'datasources')).toEqual([]);
    }
  });

  it('a pipe created while its workspace is deleted is not left for the next workspace of that name', async () => {
    for (let i = 0; i < 24; i++) {
      const ws = `pipedel_${i}`;
      const token = await mkWorkspace(ws);
      const [c, d] = await Promise.all(i % 2 ? [createPipe(token, 'top'), later(i, () => deleteWorkspace(ws))] : [later(i, () => createPipe(token, 'top')), deleteWorkspace(ws)]);
      expect(d.status, `${ws}: ${d.text}`).toBe(200);
      const again = await mkWorkspace(ws);
      expect(await names(again, 'pipes'), `${ws}: create answered ${c.status} ${c.text}`).toEqual([]);
    }
  });

  it('a pipe whose body arrives after its workspace is deleted is not left for the next workspace of that name', async () => {
    for (let i = 0; i < 4; i++) {
      const ws = `pipebody_${i}`;
      const token = await mkWorkspace(ws);
      const body = JSON.stringify({ name: 'top', nodes: [{ name: 'top_0', sql: 'SELECT number AS n FROM numbers(3)', type: 'endpoint' }] });
      const c = await headFirst(token, 'POST', '/v0/pipes', 'application/json', body, () => later(50 + 25 * i, async () => {
        const d = await deleteWorkspace(ws);
        expect(d.status, `${ws}: ${d.text}`).toBe(200);
      }));
      const again = await mkWorkspace(ws);
      expect(await names(again, 'pipes'), `${ws}: create answered ${c.status} ${c.text}`).toEqual([]);
    }
  });

  it('a token created while its workspace is deleted does not reach the next workspace of that name', async () => {
    // The token create is authenticated on its head; its body (the scopes) comes after the
    // workspace is deleted, so the create writes after the delete.
    for (let i = 0; i < 4; i++) {
      const ws = `tokdel_${i}`;
      const token = await mkWorkspace(ws);
      const c = await headFirst(token, 'POST', '/v0/tokens', 'application/x-www-form-urlencoded', 'name=sneaky&scope=ADMIN', () => later(50 + 25 * i, async () => {
        const d = await deleteWorkspace(ws);
        expect(d.status, `${ws}: ${d.text}`).toBe(200);
      }));
      const again = await mkWorkspace(ws);
      expect(await names(again, 'tokens'), `${ws}: create answered ${c.status} ${c.text}`).toEqual(['workspace admin token']);
      if (c.status === 200) {
        const secret = JSON.parse(c.text).token as string;
        const r = await as(secret, 'GET', '/v0/datasources');
        expect(r.status, `${ws}: the token of the deleted workspace reads the new one: ${r.text}`).not.toBe(200);
      }
    }
  });
});

describe('tenant settings written while the tenant is deleted or changed', () => {
  const mkTenant = async (slug: string) => {
    const r = await op('POST', '/v0/tenants', { slug });
    expect(r.status, r.text).toBe(201);
  };
  const deleteTenant = async (slug: string) => {
    const d = await op('DELETE', `/v0/tenants/${slug}`);
    expect(d.status, `${slug}: ${d.text}`).toBe(200);
  };
  /** A request of the operator whose body comes once the tenant is deleted. */
  const bodyAfterDelete = (slug: string, method: string, p: string, body: unknown, i: number) =>
    headFirst(srv.operatorToken, method, p, 'application/json', JSON.stringify(body), () => later(50 + 25 * i, () => deleteTenant(slug)));

  it('a workspace created while its tenant is deleted leaves no cell (nor its directory) of the deleted tenant behind', async () => {
    for (let i = 0; i < 12; i++) {
      const slug = `wscell-del-${i}`;
      await mkTenant(slug);
      // The tenant's first workspace starts its cell: the delete lands before, during or after that.
      const [c, d] = await Promise.all([op('POST', `/v0/tenants/${slug}/workspaces`, { name: 'main' }), later(i * 15, () => op('DELETE', `/v0/tenants/${slug}`))]);
      expect(d.status, `${slug}: ${d.text}`).toBe(200);
      expect(fs.existsSync(path.join(srv.dataDir, 'cells', slug)), `${slug}: workspace create answered ${c.status} ${c.text}`).toBe(false);
      expect(childProcesses(srv.proc.pid!, slug), `${slug}: workspace create answered ${c.status} ${c.text}`).toEqual([]);
    }
  });

  it('a data source created while its tenant is deleted leaves no cell (nor its directory) of the deleted tenant behind', async () => {
    for (let i = 0; i < 12; i++) {
      const slug = `dscell-del-${i}`;
      await mkTenant(slug);
      const w = await op('POST', `/v0/tenants/${slug}/workspaces`, { name: 'main' });
      expect(w.status, w.text).toBe(201);
      const rows = Array.from({ length: 20_000 }, (_, n) => `${n}`).join('\n');
      const create = () => as(w.body.token, 'POST', `/v0/datasources?name=events&schema=${enc('id Int32')}`, rows, { 'Content-Type': 'text/csv' });
      const [c, d] = await Promise.all([create(), later(i * 4, () => op('DELETE', `/v0/tenants/${slug}`))]);
      expect(d.status, `${slug}: ${d.text}`).toBe(200);
      // Whatever the create ran into, nothing of the tenant runs or stays on disk once both are answered.
      await new Promise((r) => setTimeout(r, 100));
      expect(fs.existsSync(path.join(srv.dataDir, 'cells', slug)), `${slug}: create answered ${c.status} ${c.text}`).toBe(false);
      expect(childProcesses(srv.proc.pid!, slug), `${slug}: create answered ${c.status} ${c.text}`).toEqual([]);
    }
  });

  it('two creates of one workspace name at once: one workspace, and the loser\'s database is not left behind', async () => {
    const metadata = path.join(srv.dataDir, 'cells', 'local', 'db', 'metadata');
    for (let i = 0; i < 12; i++) {
      const name = `dup_${i}`;
      const mk = () => op('POST', '/v0/tenants/local/workspaces', { name });
      const [a, b] = await Promise.all(i % 2 ? [mk(), later(i % 6, mk)] : [later(i % 6, mk), mk()]);
      expect([a.status, b.status].sort(), `${a.text} ${b.text}`).toEqual([201, 409]);
      const databases = fs.readdirSync(metadata).filter((f) => f.startsWith(`ws_${name}_`));
      expect(databases, name).toEqual([`${(a.status === 201 ? a : b).body.database}.sql`]);
    }
  });

  it('two limit changes of one tenant at once both stay (each merges into the limits as they are when it is written)', async () => {
    await mkTenant('limits-race');
    for (let i = 0; i < 24; i++) {
      const a = () => op('PATCH', '/v0/tenants/limits-race', { limits: { concurrent_queries: 10 + i } });
      const b = () => op('PATCH', '/v0/tenants/limits-race', { limits: { query_timeout_ms: 10_000 + i } });
      const [ra, rb] = await Promise.all(i % 2 ? [a(), later(i % 12, b)] : [later(i % 12, a), b()]);
      expect([ra.status, rb.status], `${ra.text} ${rb.text}`).toEqual([200, 200]);
      const got = await op('GET', '/v0/tenants/limits-race');
      expect(got.body.limits, `round ${i}`).toMatchObject({ concurrent_queries: 10 + i, query_timeout_ms: 10_000 + i });
    }
  });

  it('a single sign-on connection created while its tenant is deleted is not the next tenant of that slug\'s', async () => {
    for (let i = 0; i < 3; i++) {
      const slug = `conn-del-${i}`;
      await mkTenant(slug);
      const c = await bodyAfterDelete(slug, 'POST', `/v0/tenants/${slug}/connections`, { id: 'main', type: 'oidc', issuer: 'http://127.0.0.1:9/old-idp', client_id: 'old', client_secret: 'secret-old-0123456789', audience: `https://roost.test/${slug}` }, i);
      await mkTenant(slug);
      const got = await op('GET', `/v0/tenants/${slug}/connections`);
      expect(got.status, got.text).toBe(200);
      expect(got.body.connections, `${slug}: create answered ${c.status} ${c.text}`).toEqual([]);
    }
  });

  it('mapping rules written while their tenant is deleted are not the next tenant of that slug\'s', async () => {
    for (let i = 0; i < 3; i++) {
      const slug = `map-del-${i}`;
      await mkTenant(slug);
      const c = await bodyAfterDelete(slug, 'PUT', `/v0/tenants/${slug}/mappings`, { rules: [{ claim: 'email', match: { email_domain: 'old.test' }, grant: { role: 'tenant:admin' } }] }, i);
      await mkTenant(slug);
      const got = await op('GET', `/v0/tenants/${slug}/mappings`);
      expect(got.status, got.text).toBe(200);
      expect(got.body.rules, `${slug}: put answered ${c.status} ${c.text}`).toEqual([]);
    }
  });
});
