/**
 * Tenant and workspace administration over HTTP: the operator changes and
 * deletes tenants; tenant admins (IdP access tokens mapped to tenant:admin)
 * manage their own tenant's workspaces and nothing of another tenant.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { clientCredentialsToken } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
const idps: Record<string, DevProvider> = {};
let op: string;
const AUD = 'https://roost.test/tenants';
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const creds: Record<string, string> = {};

const cc = (slug: string, client: string) => clientCredentialsToken(idps[slug]!.issuer, client, `${client}-secret-0123456789`, `${AUD}/${slug}`);

beforeAll(async () => {
  srv = await startServer({ dev: false });
  op = srv.operatorToken;
  for (const slug of ['alpha', 'beta']) {
    idps[slug] = await startDevProvider({
      accounts: [],
      clients: [`${slug}-admin`, `${slug}-viewer`].map((c) => ({ client_id: c, client_secret: `${c}-secret-0123456789`, token_claims: { groups: [c] } })),
      audience: `${AUD}/${slug}`,
    });
    const idp = idps[slug]!;
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug, name: slug.toUpperCase(), domains: [`${slug}.example`] }) })).status).toBe(201);
    await call(`${srv.url}/v0/tenants/${slug}/connections`, { method: 'POST', token: op, ...json({ id: 'idp', issuer: idp.issuer, client_id: 'roost', accept_idp_access_tokens: true, audience: `${AUD}/${slug}` }) });
    await call(`${srv.url}/v0/tenants/${slug}/mappings`, { method: 'PUT', token: op, ...json({ rules: [
      { claim: 'groups', match: { equals: `${slug}-admin` }, grant: { role: 'tenant:admin' } },
      { claim: 'groups', match: { equals: `${slug}-viewer` }, grant: { role: 'viewer', workspace: '*' } },
    ] }) });
  }
  creds.alphaAdmin = await cc('alpha', 'alpha-admin');
  creds.betaAdmin = await cc('beta', 'beta-admin');
  creds.alphaViewer = await cc('alpha', 'alpha-viewer');
}, 120_000);

afterAll(async () => { await srv?.stop(); for (const i of Object.values(idps)) await i.close(); });

describe('operator: tenants', () => {
  it('changes name, domains and limits (merged; null removes one)', async () => {
    let r = await call(`${srv.url}/v0/tenants/alpha`, { method: 'PATCH', token: op, ...json({ name: 'Alpha Inc', domains: ['alpha.example', 'alpha.test'], limits: { concurrent_queries: 4, storage_bytes: 1e9 } }) });
    expect(r).toMatchObject({ status: 200, body: { slug: 'alpha', name: 'Alpha Inc', domains: ['alpha.example', 'alpha.test'], limits: { concurrent_queries: 4, storage_bytes: 1e9 } } });
    r = await call(`${srv.url}/v0/tenants/alpha`, { method: 'PATCH', token: op, ...json({ limits: { storage_bytes: null, query_timeout_ms: 5000 } }) });
    expect(r.body.limits).toEqual({ concurrent_queries: 4, query_timeout_ms: 5000 });
    expect((await call(`${srv.url}/v0/tenants/alpha`, { token: op })).body.name).toBe('Alpha Inc');
  });

  it('keeps a remote placement\'s password when a change of placement leaves it out, only for the same server and user; null removes it', async () => {
    // GET shows only password_set: a client that reads the placement, edits the URL and sends
    // it back must not lose the password it could not see.
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'placed' }) })).status).toBe(201);
    const patch = (placement: unknown) => call(`${srv.url}/v0/tenants/placed`, { method: 'PATCH', token: op, ...json({ placement }) });
    let r = await patch({ type: 'clickhouse', url: 'http://127.0.0.1:9', user: 'u', password: 'pw-1' });
    expect(r).toMatchObject({ status: 200, body: { placement: { type: 'clickhouse', url: 'http://127.0.0.1:9', user: 'u', password_set: true } } });
    const seen = (await call(`${srv.url}/v0/tenants/placed`, { token: op })).body.placement;
    expect(seen).not.toHaveProperty('password');
    r = await patch({ ...seen, cluster: 'c1' });
    expect(r).toMatchObject({ status: 200, body: { placement: { url: 'http://127.0.0.1:9', cluster: 'c1', password_set: true } } });
    // Another server or user: the password is not sent there unless given again.
    for (const moved of [{ ...seen, url: 'http://127.0.0.1:19' }, { ...seen, user: 'v' }, { ...seen, url: 'https://127.0.0.1:9' }]) {
      const refused = await patch(moved);
      expect(refused).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
      expect(refused.body.error).toContain('placement.password is required when the server');
    }
    expect((await call(`${srv.url}/v0/tenants/placed`, { token: op })).body.placement).toMatchObject({ url: 'http://127.0.0.1:9', user: 'u', password_set: true });
    r = await patch({ ...seen, url: 'http://127.0.0.1:19', password: 'pw-2' });
    expect(r).toMatchObject({ status: 200, body: { placement: { url: 'http://127.0.0.1:19', password_set: true } } });
    expect(await patch({ type: 'clickhouse', url: 'http://127.0.0.1:19', password: 5 })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect((await call(`${srv.url}/v0/tenants/placed`, { token: op })).body.placement.password_set).toBe(true);
    r = await patch({ type: 'clickhouse', url: 'http://127.0.0.1:19', password: null });
    expect(r).toMatchObject({ status: 200, body: { placement: { password_set: false } } });
    // A tenant created with password null is a 400 (nothing to remove).
    expect(await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'placed2', placement: { type: 'clickhouse', url: 'http://127.0.0.1:9', password: null } }) }))
      .toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect((await call(`${srv.url}/v0/tenants/placed`, { method: 'DELETE', token: op })).status).toBeLessThan(300);
  });

  it('takes plain http to a remote ClickHouse across the network only when the operator says so', async () => {
    const create = (slug: string, placement: unknown) => call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug, placement }) });
    // The password (Basic authentication on every request) and the data would cross the network in clear.
    for (const url of ['http://ch.acme.internal:8123', 'http://10.0.0.5:8123', 'http://[fd00::5]:8123', 'http://127.evil.com:8123']) {
      const r = await create('plain', { type: 'clickhouse', url, user: 'roost', password: 'pw' });
      expect(r, url).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
      expect(r.body.error).toContain('plain http');
      expect(r.body.error).toContain('placement.allow_plain_http');
    }
    expect((await call(`${srv.url}/v0/tenants/plain`, { token: op })).status).toBe(404);
    expect(await create('plain', { type: 'clickhouse', url: 'http://ch.acme.internal:8123', allow_plain_http: 'yes' })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    // https anywhere, plain http on loopback, or the explicit choice.
    for (const [slug, placement] of [
      ['tls', { type: 'clickhouse', url: 'https://ch.acme.internal:8443', user: 'roost', password: 'pw' }],
      ['local-http', { type: 'clickhouse', url: 'http://127.0.0.1:8123' }],
      ['chosen', { type: 'clickhouse', url: 'http://ch.acme.internal:8123', user: 'roost', password: 'pw', allow_plain_http: true }],
    ] as const) {
      const r = await create(slug, placement);
      expect(r.status, `${slug}: ${r.text}`).toBe(201);
      expect(r.body.placement.allow_plain_http).toBe(slug === 'chosen' ? true : undefined);
    }
    // The choice is kept with the placement only while it is plain http; sending the placement back without it is refused again.
    const seen = (await call(`${srv.url}/v0/tenants/chosen`, { token: op })).body.placement;
    expect(seen).toMatchObject({ url: 'http://ch.acme.internal:8123', allow_plain_http: true, password_set: true });
    const { allow_plain_http: _, ...without } = seen;
    const patch = (placement: unknown) => call(`${srv.url}/v0/tenants/chosen`, { method: 'PATCH', token: op, ...json({ placement }) });
    expect(await patch(without)).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(await patch({ ...seen, cluster: 'c1' })).toMatchObject({ status: 200, body: { placement: { allow_plain_http: true, cluster: 'c1' } } });
    for (const slug of ['tls', 'local-http', 'chosen']) expect((await call(`${srv.url}/v0/tenants/${slug}`, { method: 'DELETE', token: op })).status).toBeLessThan(300);
  });

  it('refuses workspace names that differ from another only in case; a rename may change case', async () => {
    const ws = (name: string) => call(`${srv.url}/v0/tenants/alpha/workspaces`, { method: 'POST', token: op, ...json({ name }) });
    expect((await ws('Finance')).status).toBe(201);
    const dup = await ws('finance');
    expect(dup).toMatchObject({ status: 409, body: { code: 'ALREADY_EXISTS' } });
    expect(dup.body.error).toContain('workspace "Finance" already exists');
    expect((await ws('Finance')).status).toBe(409);
    expect((await ws('sales')).status).toBe(201);
    const rename = (from: string, name: string) => call(`${srv.url}/v0/tenants/alpha/workspaces/${from}`, { method: 'PATCH', token: op, ...json({ name }) });
    expect(await rename('sales', 'FINANCE')).toMatchObject({ status: 409, body: { code: 'ALREADY_EXISTS' } });
    expect(await rename('Finance', 'finance')).toMatchObject({ status: 200, body: { name: 'finance' } });
    for (const n of ['finance', 'sales']) expect((await call(`${srv.url}/v0/tenants/alpha/workspaces/${n}`, { method: 'DELETE', token: op })).status).toBeLessThan(300);
  });

  it('answers bad input with 4xx JSON errors', async () => {
    const bad: Array<[string, unknown, number, string]> = [
      ['/v0/tenants/alpha', { slug: 'x' }, 400, 'INVALID_PARAMETER'],
      ['/v0/tenants/alpha', { limits: { nope: 1 } }, 400, 'INVALID_PARAMETER'],
      ['/v0/tenants/alpha', { limits: { concurrent_queries: -1 } }, 400, 'INVALID_PARAMETER'],
      ['/v0/tenants/alpha', { domains: 'alpha.example' }, 400, 'INVALID_PARAMETER'],
      ['/v0/tenants/alpha', { placement: { type: 'clickhouse', url: 'ftp://x' } }, 400, 'INVALID_PARAMETER'],
      ['/v0/tenants/alpha', { placement: { type: 'clickhouse', url: 'http://127.0.0.1:9/ws_other_db' } }, 400, 'INVALID_PARAMETER'],
      ['/v0/tenants/alpha', [1], 400, 'INVALID_JSON'],
      ['/v0/tenants/nope', { name: 'x' }, 404, 'UNKNOWN_TENANT'],
    ];
    for (const [p, body, status, code] of bad) {
      expect(await call(`${srv.url}${p}`, { method: 'PATCH', token: op, ...json(body) }), JSON.stringify(body)).toMatchObject({ status, body: { code } });
    }
    expect(await call(`${srv.url}/v0/tenants/alpha`, { method: 'PATCH', token: op, headers: { 'Content-Type': 'application/json' }, body: '{' })).toMatchObject({ status: 400, body: { code: 'INVALID_JSON' } });
    expect(await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'Bad Slug' }) })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'alpha' }) })).toMatchObject({ status: 409, body: { code: 'ALREADY_EXISTS' } });
  });

  it('tenant admins may not change or delete tenants, nor list them', async () => {
    expect((await call(`${srv.url}/v0/tenants/alpha`, { method: 'PATCH', token: creds.alphaAdmin, ...json({ name: 'x' }) })).status).toBe(403);
    expect((await call(`${srv.url}/v0/tenants/alpha`, { method: 'DELETE', token: creds.alphaAdmin })).status).toBe(403);
    expect((await call(`${srv.url}/v0/tenants`, { token: creds.alphaAdmin })).status).toBe(403);
    expect((await call(`${srv.url}/v0/tenants/beta`, { token: creds.alphaAdmin })).status).toBe(403);
  });
});

describe('workspaces: tenant admin and operator', () => {
  let token = '';
  it('a tenant admin creates, lists and reads workspaces of its own tenant only', async () => {
    const r = await call(`${srv.url}/v0/tenants/alpha/workspaces`, { method: 'POST', token: creds.alphaAdmin, ...json({ name: 'sales' }) });
    expect(r).toMatchObject({ status: 201, body: { name: 'sales', tenant: 'alpha' } });
    token = r.body.token;
    expect((await call(`${srv.url}/v0/tenants/alpha/workspaces`, { token: creds.alphaAdmin })).body.workspaces.map((w: any) => w.name)).toEqual(['sales']);
    expect(await call(`${srv.url}/v0/tenants/alpha/workspaces/sales`, { token: creds.alphaAdmin })).toMatchObject({ status: 200, body: { name: 'sales' } });
    expect(await call(`${srv.url}/v0/tenants/alpha/workspaces/nope`, { token: creds.alphaAdmin })).toMatchObject({ status: 404, body: { code: 'UNKNOWN_WORKSPACE' } });
    for (const [method, p] of [['POST', '/v0/tenants/alpha/workspaces'], ['GET', '/v0/tenants/alpha/workspaces'], ['GET', '/v0/tenants/alpha/workspaces/sales'], ['PATCH', '/v0/tenants/alpha/workspaces/sales'], ['DELETE', '/v0/tenants/alpha/workspaces/sales']]) {
      for (const who of [creds.betaAdmin, creds.alphaViewer, token]) {
        const res = await call(`${srv.url}${p}`, { method, token: who, ...(method === 'GET' ? {} : json({ name: 'zzz' })) });
        expect(res.status, `${method} ${p}`).toBe(403);
      }
    }
    expect((await call(`${srv.url}/v0/tenants/beta/workspaces`, { method: 'POST', token: creds.alphaAdmin, ...json({ name: 'x' }) })).status).toBe(403);
  });

  it('rename keeps the database, the data and the tokens', async () => {
    const ingest = await call(`${srv.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent('a Int32')}`, { method: 'POST', token });
    expect(ingest.status).toBe(200);
    expect((await call(`${srv.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: '1\n2\n3\n' })).status).toBe(200);
    const before = (await call(`${srv.url}/v0/tenants/alpha/workspaces/sales`, { token: op })).body;
    const r = await call(`${srv.url}/v0/tenants/alpha/workspaces/sales`, { method: 'PATCH', token: creds.alphaAdmin, ...json({ name: 'revenue' }) });
    expect(r).toMatchObject({ status: 200, body: { name: 'revenue', database: before.database, id: before.id } });
    expect((await call(`${srv.url}/v0/tenants/alpha/workspaces/sales`, { token: op })).status).toBe(404);
    const q = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM ev')}`, { token });
    expect(q).toMatchObject({ status: 200, body: { data: [{ n: 3 }] } });
    expect((await call(`${srv.url}/v0/tokens`, { token })).status).toBe(200);
    expect(await call(`${srv.url}/v0/tenants/alpha/workspaces/revenue`, { method: 'PATCH', token: op, ...json({ name: '1bad' }) })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(await call(`${srv.url}/v0/tenants/alpha/workspaces/revenue`, { method: 'PATCH', token: op, ...json({ database: 'x' }) })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
  });

  it('delete drops the database and its tokens, data sources and pipes', async () => {
    const ws = (await call(`${srv.url}/v0/tenants/alpha/workspaces/revenue`, { token: op })).body;
    const other = await call(`${srv.url}/v0/tenants/alpha/workspaces`, { method: 'POST', token: op, ...json({ name: 'other' }) });
    const r = await call(`${srv.url}/v0/tenants/alpha/workspaces/revenue`, { method: 'DELETE', token: creds.alphaAdmin });
    expect(r).toMatchObject({ status: 200, body: { deleted: 'revenue', database: ws.database } });
    expect((await call(`${srv.url}/v0/sql?q=SELECT+1`, { token })).status).toBe(401);
    // The database is gone from the cell: the other workspace's admin cannot see it (analyzer) so look at the disk.
    const meta = path.join(srv.dataDir, 'cells', 'alpha', 'db', 'metadata');
    expect(fs.readdirSync(meta).some((f) => f.startsWith(ws.database))).toBe(false);
    expect((await call(`${srv.url}/v0/sql?q=SELECT+1`, { token: other.body.token })).status).toBe(200);
    expect(await call(`${srv.url}/v0/tenants/alpha/workspaces/revenue`, { method: 'DELETE', token: op })).toMatchObject({ status: 404 });
  });
});

describe('operator: deleting a tenant', () => {
  it('stops the cell, removes its directory and state, and leaves an audit record', async () => {
    const ws = await call(`${srv.url}/v0/tenants/beta/workspaces`, { method: 'POST', token: op, ...json({ name: 'main' }) });
    const t = ws.body.token;
    expect((await call(`${srv.url}/v0/sql?q=SELECT+1`, { token: t })).status).toBe(200);
    expect(fs.existsSync(path.join(srv.dataDir, 'cells', 'beta'))).toBe(true);
    // Events acknowledged into the buffer belong to the tenant too.
    expect((await call(`${srv.url}/v0/datasources?name=ev&format=ndjson&schema=${encodeURIComponent('`a` Int32 `json:$.a`')}`, { method: 'POST', token: t })).status).toBe(200);
    expect((await call(`${srv.url}/v0/events?name=ev`, { method: 'POST', token: t, body: '{"a":1}\n' })).status).toBe(202);
    expect(fs.existsSync(path.join(srv.dataDir, 'events', 'beta'))).toBe(true);
    const r = await call(`${srv.url}/v0/tenants/beta`, { method: 'DELETE', token: op });
    expect(r).toMatchObject({ status: 200, body: { deleted: 'beta', workspaces: 1, cell_dir_removed: true } });
    expect(fs.existsSync(path.join(srv.dataDir, 'cells', 'beta'))).toBe(false);
    expect(fs.existsSync(path.join(srv.dataDir, 'events', 'beta'))).toBe(false);
    expect((await call(`${srv.url}/v0/sql?q=SELECT+1`, { token: t })).status).toBe(401);
    expect((await call(`${srv.url}/v0/tenants/beta/connections`, { token: op })).status).toBe(404);
    expect((await call(`${srv.url}/v0/tenants/beta`, { token: op })).status).toBe(404);
    // Nothing of beta is left in the state (the journal may still hold history; the live view must not).
    expect((await call(`${srv.url}/v0/tenants`, { token: op })).body.tenants.map((x: any) => x.slug)).toEqual(['alpha']);
    const audit = srv.logs.find((l) => l.msg === 'audit' && l.event === 'tenant.deleted' && l.resource === 'tenant:beta');
    expect(audit).toMatchObject({ credential: 'operator', resource: 'tenant:beta' });
    const file = fs.readFileSync(path.join(srv.dataDir, 'audit', 'operator.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(file.some((e) => e.event === 'tenant.deleted' && e.subject_tenant === 'beta')).toBe(true);
    // Its start is recorded before it runs (a server killed during it left no record of who removed it).
    const started = file.findIndex((e) => e.event === 'tenant.delete_started' && e.subject_tenant === 'beta');
    expect(started).toBeGreaterThanOrEqual(0);
    expect(started).toBeLessThan(file.findIndex((e) => e.event === 'tenant.deleted' && e.subject_tenant === 'beta'));
    expect(file.some((e) => e.event === 'tenant.created' && e.subject_tenant === 'beta')).toBe(true);
    // The slug can be used again, from scratch.
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'beta' }) })).status).toBe(201);
    expect((await call(`${srv.url}/v0/tenants/beta/workspaces`, { token: op })).body.workspaces).toEqual([]);
    expect((await call(`${srv.url}/v0/tenants/beta/connections`, { token: op })).body.connections).toEqual([]);
    expect((await call(`${srv.url}/v0/tenants/beta/mappings`, { token: op })).body.rules).toEqual([]);
  });
});

describe('limits', () => {
  let token = '';
  const sql = (q: string) => call(`${srv.url}/v0/sql?q=${encodeURIComponent(q)}`, { token });
  // A cross join of the data source with itself: far too much work for any limit here.
  const RUNAWAY = 'SELECT count() FROM ev AS a, ev AS b WHERE cityHash64(a.v, b.v) % 1000000007 = 1';

  beforeAll(async () => {
    await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'lim', limits: { query_timeout_ms: 1500, query_memory_bytes: 64 * 1024 * 1024 } }) });
    token = (await call(`${srv.url}/v0/tenants/lim/workspaces`, { method: 'POST', token: op, ...json({ name: 'w' }) })).body.token;
    await call(`${srv.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent('id UInt32, v String')}`, { method: 'POST', token });
    const rows = Array.from({ length: 200_000 }, (_, i) => `${i},value-${i}-${'x'.repeat(20)}`).join('\n') + '\n';
    expect((await call(`${srv.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: rows })).status).toBe(200);
  });

  it('query_timeout_ms stops a long query (408 QUERY_TIMEOUT)', async () => {
    const t0 = performance.now();
    const r = await sql(RUNAWAY);
    expect(r).toMatchObject({ status: 408, body: { code: 'QUERY_TIMEOUT' } });
    // The engine's limit is the tenant's, 1.5 s, not rounded up to whole seconds (it was 2 s).
    expect(r.body.error).toMatch(/maximum: 1500 ms|1500 ms/);
    expect(r.body.error).not.toMatch(/maximum: 2000 ms/);
    expect(performance.now() - t0).toBeLessThan(6000);
  });

  it('query_memory_bytes stops a query that needs more memory (422 LIMIT_EXCEEDED)', async () => {
    const r = await sql('SELECT length(groupArray(v)) AS n, length(groupArray(concat(v, v, v, v))) AS m FROM ev');
    expect(r).toMatchObject({ status: 422, body: { code: 'LIMIT_EXCEEDED', clickhouse_code: 241 } });
    expect((await sql('SELECT count() AS n FROM ev')).body.data).toEqual([{ n: 200000 }]);
  });

  it('concurrent_queries: one over the limit gets 429 with Retry-After and X-RateLimit headers', async () => {
    // The pipe is saved first: its save-time engine check takes a query slot too.
    expect((await call(`${srv.url}/v0/pipes`, { method: 'POST', token, ...json({ name: 'p', nodes: [{ name: 'n', sql: 'SELECT count() AS n FROM ev' }] }) })).status).toBe(200);
    expect((await call(`${srv.url}/v0/pipes/p/nodes/n/endpoint`, { method: 'POST', token })).status).toBe(200);
    await call(`${srv.url}/v0/tenants/lim`, { method: 'PATCH', token: op, ...json({ limits: { concurrent_queries: 1 } }) });
    const slow = sql(RUNAWAY);
    await new Promise((r) => setTimeout(r, 300));
    const r = await sql('SELECT 1 AS x');
    expect(r).toMatchObject({ status: 429, body: { code: 'RATE_LIMITED' } });
    expect(r.headers.get('retry-after')).toBe('1');
    expect(r.headers.get('x-ratelimit-limit')).toBe('1');
    expect(r.headers.get('x-ratelimit-remaining')).toBe('0');
    // Pipe endpoints share the same slots, and so does a pipe's save-time check.
    expect((await call(`${srv.url}/v0/pipes/p.json`, { token })).status).toBe(429);
    const save = await call(`${srv.url}/v0/pipes/p/nodes?name=m`, { method: 'POST', token, body: 'SELECT 1 AS one' });
    expect(save).toMatchObject({ status: 429, body: { code: 'RATE_LIMITED' } });
    await slow;
    expect(await sql('SELECT 1 AS x')).toMatchObject({ status: 200 });
    expect((await call(`${srv.url}/v0/pipes/p.json`, { token })).body.data).toEqual([{ n: 200000 }]);
    await call(`${srv.url}/v0/tenants/lim`, { method: 'PATCH', token: op, ...json({ limits: { concurrent_queries: null } }) });
  });

  it('storage_bytes: ingest refused (413 STORAGE_LIMIT) while reads keep working', async () => {
    await call(`${srv.url}/v0/tenants/lim`, { method: 'PATCH', token: op, ...json({ limits: { storage_bytes: 1000 } }) });
    const r = await call(`${srv.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: '1,a\n' });
    expect(r).toMatchObject({ status: 413, body: { code: 'STORAGE_LIMIT', limit: 'storage_bytes', value: 1000 } });
    expect(r.body.used).toBeGreaterThan(1000);
    expect(await call(`${srv.url}/v0/events?name=ev`, { method: 'POST', token, body: '{"id":1,"v":"a"}\n' })).toMatchObject({ status: 413, body: { code: 'STORAGE_LIMIT' } });
    expect(await call(`${srv.url}/v0/events?name=ev&wait=true`, { method: 'POST', token, body: '{"id":1,"v":"a"}\n' })).toMatchObject({ status: 413, body: { code: 'STORAGE_LIMIT' } });
    expect((await sql('SELECT count() AS n FROM ev')).body.data).toEqual([{ n: 200000 }]);
    // Each refusal is an append that failed in the operations log: the two events requests too.
    let logged = 0;
    for (let i = 0; i < 50 && logged < 3; i++) {
      const l = await sql("SELECT count() AS n FROM tinybird.datasources_ops_log WHERE datasource_name = 'ev' AND event_type = 'append' AND result = 'error' AND position(error, 'storage') > 0");
      logged = Number(l.body.data[0].n);
      if (logged < 3) await new Promise((res) => setTimeout(res, 200));
    }
    expect(logged).toBe(3);
    await call(`${srv.url}/v0/tenants/lim`, { method: 'PATCH', token: op, ...json({ limits: { storage_bytes: 1e12 } }) });
    expect((await call(`${srv.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: '1,a\n' })).status).toBe(200);
  });

  it('events_per_second: over the rate answers 429 with headers', async () => {
    await call(`${srv.url}/v0/tenants/lim`, { method: 'PATCH', token: op, ...json({ limits: { events_per_second: 10 } }) });
    const body = Array.from({ length: 30 }, (_, i) => JSON.stringify({ id: i, v: 'e' })).join('\n') + '\n';
    const first = await call(`${srv.url}/v0/events?name=ev`, { method: 'POST', token, body });
    expect(first.status).toBe(202);
    expect(first.headers.get('x-ratelimit-limit')).toBe('10');
    const second = await call(`${srv.url}/v0/events?name=ev`, { method: 'POST', token, body });
    expect(second).toMatchObject({ status: 429, body: { code: 'RATE_LIMITED', limit: 'events_per_second' } });
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThanOrEqual(2);
    expect(second.headers.get('x-ratelimit-remaining')).toBe('0');
    // The refusal is an append that failed in the operations log (it was in no service table).
    let logged = 0;
    for (let i = 0; i < 50 && logged < 1; i++) {
      const l = await sql(`SELECT count() AS n FROM tinybird.datasources_ops_log WHERE datasource_name = 'ev' AND event_type = 'append' AND result = 'error' AND request_id = '${second.headers.get('x-request-id')}' AND position(error, 'events per second') > 0`);
      logged = Number(l.body.data[0].n);
      if (logged < 1) await new Promise((res) => setTimeout(res, 200));
    }
    expect(logged).toBe(1);
  });
});

describe('a workspace rename', () => {
  it('takes the mapping rules that grant a role in it along (they granted everything to a workspace later created under the old name)', async () => {
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'wsren' }) })).status).toBe(201);
    expect((await call(`${srv.url}/v0/tenants/wsren/workspaces`, { method: 'POST', token: op, ...json({ name: 'old' }) })).status).toBe(201);
    const rules = [
      { claim: 'groups', match: { equals: 'analysts' }, grant: { role: 'viewer', workspace: 'old' } },
      { claim: 'groups', match: { equals: 'all' }, grant: { role: 'viewer', workspace: '*' } },
    ];
    expect((await call(`${srv.url}/v0/tenants/wsren/mappings`, { method: 'PUT', token: op, ...json({ rules }) })).status).toBe(200);
    const r = await call(`${srv.url}/v0/tenants/wsren/workspaces/old`, { method: 'PATCH', token: op, ...json({ name: 'renamed' }) });
    expect(r.status, r.text).toBe(200);
    const after = (await call(`${srv.url}/v0/tenants/wsren/mappings`, { token: op })).body.rules;
    expect(after.map((x: any) => x.grant.workspace)).toEqual(['renamed', '*']);
    expect((await call(`${srv.url}/v0/tenants/wsren/workspaces`, { method: 'POST', token: op, ...json({ name: 'old' }) })).status).toBe(201);
    const grants = (await call(`${srv.url}/v0/tenants/wsren/mappings/test`, { method: 'POST', token: op, ...json({ claims: { groups: ['analysts'] } }) })).body;
    expect(grants.workspaces).toEqual({ renamed: 'viewer' });
  });
});
