/**
 * Audit of the operator and tenant-administration APIs over real HTTP: tenants,
 * workspaces, connections and mapping rules, the `roost tenant|workspace` CLI,
 * and what survives a kill -9. Each case is a bug that was found (see git log).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { clientCredentialsToken } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
let srv: RunningServer;
let op: string;
const idps: Record<string, DevProvider> = {};
const AUD = 'https://roost.test/audit';
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const u = (p: string) => `${srv.url}${p}`;
const cc = (slug: string, client: string) => clientCredentialsToken(idps[slug]!.issuer, client, `${client}-secret-0123456789`, `${AUD}/${slug}`);
const audits = (pred: (a: Record<string, any>) => boolean) => srv.logs.filter((l) => l.msg === 'audit' && pred(l));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const EV_SCHEMA = encodeURIComponent('`a` Int32 `json:$.a`');

async function count(token: string, ds: string): Promise<number> {
  const r = await call(u(`/v0/sql?q=${encodeURIComponent(`SELECT count() AS n FROM ${ds}`)}`), { token });
  expect(r.status, r.text).toBe(200);
  return Number(r.body.data[0].n);
}

beforeAll(async () => {
  srv = await startServer({ dev: false });
  op = srv.operatorToken;
  for (const slug of ['ta', 'tb']) {
    idps[slug] = await startDevProvider({
      accounts: [],
      clients: [`${slug}-admin`].map((c) => ({ client_id: c, client_secret: `${c}-secret-0123456789`, token_claims: { groups: [c] } })),
      audience: `${AUD}/${slug}`,
    });
    expect((await call(u('/v0/tenants'), { method: 'POST', token: op, ...json({ slug, domains: [`${slug}.example`] }) })).status).toBe(201);
    expect((await call(u(`/v0/tenants/${slug}/connections`), { method: 'POST', token: op, ...json({ id: 'idp', issuer: idps[slug]!.issuer, client_id: 'roost', accept_idp_access_tokens: true, audience: `${AUD}/${slug}` }) })).status).toBe(201);
    expect((await call(u(`/v0/tenants/${slug}/mappings`), { method: 'PUT', token: op, ...json({ rules: [{ claim: 'groups', match: { equals: `${slug}-admin` }, grant: { role: 'tenant:admin' } }] }) })).status).toBe(200);
  }
}, 120_000);

afterAll(async () => { await srv?.stop(); for (const i of Object.values(idps)) await i.close(); });

describe('tenants: validation changes nothing when it refuses', () => {
  it('a field POST /v0/tenants does not know is a 400 (a misspelt "limit" created a tenant without limits)', async () => {
    const r = await call(u('/v0/tenants'), { method: 'POST', token: op, ...json({ slug: 'typo', limit: { concurrent_queries: 1 } }) });
    expect(r).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(r.body.error).toMatch(/limit/);
    expect((await call(u('/v0/tenants/typo'), { token: op })).status).toBe(404);
  });

  it('an email domain belongs to one tenant: another tenant claiming it (any case) is a 409', async () => {
    // Before: both were "verified" owners and /auth/login?email= offered the other tenant's IdP too.
    let r = await call(u('/v0/tenants'), { method: 'POST', token: op, ...json({ slug: 'squat', domains: ['TA.example'] }) });
    expect(r).toMatchObject({ status: 409, body: { code: 'ALREADY_EXISTS' } });
    expect((await call(u('/v0/tenants/squat'), { token: op })).status).toBe(404);
    r = await call(u('/v0/tenants/tb'), { method: 'PATCH', token: op, ...json({ domains: ['tb.example', 'ta.example'], name: 'changed' }) });
    expect(r).toMatchObject({ status: 409, body: { code: 'ALREADY_EXISTS' } });
    expect((await call(u('/v0/tenants/tb'), { token: op })).body).toMatchObject({ name: 'tb', domains: ['tb.example'] });
    const login = await call(u('/auth/login?email=ana@ta.example'), { redirect: 'manual' });
    expect(login.text).not.toMatch(/tenant=tb|\/tb\//);
    // A tenant may list its own domain again, and duplicates collapse.
    r = await call(u('/v0/tenants/tb'), { method: 'PATCH', token: op, ...json({ domains: ['tb.example', 'TB.example', 'tb.test'] }) });
    expect(r).toMatchObject({ status: 200, body: { domains: ['tb.example', 'tb.test'] } });
  });

  it('a tenant name with control characters is a 400 (it broke `roost tenant list` lines)', async () => {
    const r = await call(u('/v0/tenants'), { method: 'POST', token: op, ...json({ slug: 'ctl', name: 'a\nb\tc' }) });
    expect(r).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect((await call(u('/v0/tenants/ctl'), { token: op })).status).toBe(404);
    expect((await call(u('/v0/tenants/ta'), { method: 'PATCH', token: op, ...json({ name: 'x\u0000y' }) })).status).toBe(400);
  });

  it('a field POST .../workspaces does not know is a 400 and creates nothing', async () => {
    const r = await call(u('/v0/tenants/ta/workspaces'), { method: 'POST', token: op, ...json({ name: 'w1', database: 'system' }) });
    expect(r).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect((await call(u('/v0/tenants/ta/workspaces/w1'), { token: op })).status).toBe(404);
  });
});

describe('workspaces: buffered events, rename and delete', () => {
  it('events acknowledged (202) before a rename are stored in the renamed workspace, not dropped', async () => {
    const ws = await call(u('/v0/tenants/ta/workspaces'), { method: 'POST', token: op, ...json({ name: 'ev_old' }) });
    expect(ws.status, ws.text).toBe(201);
    const token = ws.body.token as string;
    expect((await call(u(`/v0/datasources?name=e&format=ndjson&schema=${EV_SCHEMA}`), { method: 'POST', token })).status).toBe(200);
    // The flush runs every 500 ms: the rename right after the 202 comes before it.
    const ev = await call(u('/v0/events?name=e'), { method: 'POST', token, body: '{"a":1}\n{"a":2}\n' });
    expect(ev.status, ev.text).toBe(202);
    const r = await call(u('/v0/tenants/ta/workspaces/ev_old'), { method: 'PATCH', token: op, ...json({ name: 'ev_new' }) });
    expect(r.status, r.text).toBe(200);
    // And events sent after the rename, with the same token.
    expect((await call(u('/v0/events?name=e'), { method: 'POST', token, body: '{"a":3}\n' })).status).toBe(202);
    let n = 0;
    for (let i = 0; i < 50 && n < 3; i++) { await sleep(100); n = await count(token, 'e'); }
    expect(n).toBe(3);
    expect(srv.logs.some((l) => l.msg === 'buffered events dropped: their data source no longer exists' && l.workspace === 'ev_old')).toBe(false);
    expect(fs.existsSync(path.join(srv.dataDir, 'events', 'ta', 'ev_old'))).toBe(false);
  });

  it('deleting a workspace discards its buffered events: a new workspace of that name does not get them', async () => {
    const first = await call(u('/v0/tenants/ta/workspaces'), { method: 'POST', token: op, ...json({ name: 'ev_del' }) });
    let token = first.body.token as string;
    expect((await call(u(`/v0/datasources?name=e&format=ndjson&schema=${EV_SCHEMA}`), { method: 'POST', token })).status).toBe(200);
    expect((await call(u('/v0/events?name=e'), { method: 'POST', token, body: '{"a":1}\n' })).status).toBe(202);
    expect((await call(u('/v0/tenants/ta/workspaces/ev_del'), { method: 'DELETE', token: op })).status).toBe(200);
    expect(fs.existsSync(path.join(srv.dataDir, 'events', 'ta', 'ev_del'))).toBe(false);
    const again = await call(u('/v0/tenants/ta/workspaces'), { method: 'POST', token: op, ...json({ name: 'ev_del' }) });
    token = again.body.token as string;
    expect((await call(u(`/v0/datasources?name=e&format=ndjson&schema=${EV_SCHEMA}`), { method: 'POST', token })).status).toBe(200);
    await sleep(1500);
    expect(await count(token, 'e')).toBe(0);
    expect((await call(u('/v0/tenants/ta/workspaces/ev_del'), { method: 'DELETE', token: op })).status).toBe(200);
  });

  it('a delete whose database the engine cannot drop still answers 200, says so, and is audited', async () => {
    expect((await call(u('/v0/tenants'), { method: 'POST', token: op, ...json({ slug: 'gone' }) })).status).toBe(201);
    const ws = await call(u('/v0/tenants/gone/workspaces'), { method: 'POST', token: op, ...json({ name: 'w' }) });
    expect(ws.status).toBe(201);
    // Its engine becomes unreachable (a placement pointing nowhere).
    expect((await call(u('/v0/tenants/gone'), { method: 'PATCH', token: op, ...json({ placement: { type: 'clickhouse', url: 'http://127.0.0.1:9' } }) })).status).toBe(200);
    const r = await call(u('/v0/tenants/gone/workspaces/w'), { method: 'DELETE', token: op });
    // Before: 500 with the workspace already gone from the state and no audit record.
    expect(r).toMatchObject({ status: 200, body: { deleted: 'w', database: ws.body.database, database_dropped: false } });
    expect((await call(u('/v0/sql?q=SELECT+1'), { token: ws.body.token })).status).toBe(401);
    expect(audits((a) => a.event === 'workspace.deleted' && a.tenant === 'gone' && a.resource === 'workspace:w')).toHaveLength(1);
    expect(await call(u('/v0/tenants/gone/workspaces/w'), { method: 'DELETE', token: op })).toMatchObject({ status: 404, body: { code: 'UNKNOWN_WORKSPACE' } });
    expect((await call(u('/v0/tenants/gone'), { method: 'DELETE', token: op })).status).toBe(200);
  });
});

describe('identity administration', () => {
  it('mapping rules with fields Roost does not read are refused and the rules stay as they were', async () => {
    const before = (await call(u('/v0/tenants/ta/mappings'), { token: op })).body.rules;
    const bad = [
      { claim: 'groups', match: { equals: 'contractors' }, grant: { role: 'viewer', workspace: '*' }, deny: true },
      { claim: 'groups', match: { equals: 'x' }, grant: { role: 'tenant:admin', workspace: 'sales' } },
      { claim: 'groups', match: { equals: 'x' }, grant: { role: 'viewer', workspace: 'sales', tenant: 'tb' } },
      { claim: 'groups', match: { equals: 'x' }, grant: { role: 'viewer', workspace: 'sales' }, priority: 1 },
    ];
    for (const rule of bad) {
      const r = await call(u('/v0/tenants/ta/mappings'), { method: 'PUT', token: op, ...json({ rules: [before[0], rule] }) });
      expect(r, JSON.stringify(rule)).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER', rule: 1 } });
      expect((await call(u('/v0/tenants/ta/mappings/test'), { method: 'POST', token: op, ...json({ claims: { groups: ['contractors'] }, rules: [rule] }) })).status).toBe(400);
    }
    expect((await call(u('/v0/tenants/ta/mappings'), { token: op })).body.rules).toEqual(before);
  });

  it('a connection may not take another tenant\'s issuer and audience (it locked that tenant\'s IdP tokens out)', async () => {
    const taAdmin = await cc('ta', 'ta-admin');
    const tbAdmin = await cc('tb', 'tb-admin');
    expect((await call(u('/v0/tenants/ta/workspaces'), { token: taAdmin })).status).toBe(200);
    // tb's own tenant admin adds a connection with ta's issuer and audience.
    const r = await call(u('/v0/tenants/tb/connections'), { method: 'POST', token: tbAdmin, ...json({ id: 'copy', issuer: idps.ta!.issuer, client_id: 'x', accept_idp_access_tokens: true, audience: `${AUD}/ta` }) });
    expect(r).toMatchObject({ status: 409, body: { code: 'ALREADY_EXISTS' } });
    expect(r.text).not.toMatch(/"ta"/);
    expect((await call(u('/v0/tenants/tb/connections/copy'), { token: op })).status).toBe(404);
    // Nor by changing an existing one.
    const p = await call(u('/v0/tenants/tb/connections/idp'), { method: 'PATCH', token: op, ...json({ issuer: idps.ta!.issuer, audience: `${AUD}/ta` }) });
    expect(p).toMatchObject({ status: 409 });
    expect((await call(u('/v0/tenants/tb/connections/idp'), { token: op })).body.audience).toBe(`${AUD}/tb`);
    expect((await call(u('/v0/tenants/ta/workspaces'), { token: taAdmin })).status).toBe(200);
    expect((await call(u('/v0/tenants/tb/workspaces'), { token: tbAdmin })).status).toBe(200);
    // Without accepting tokens, the same issuer is fine (several tenants may share one IdP).
    expect((await call(u('/v0/tenants/tb/connections'), { method: 'POST', token: op, ...json({ id: 'shared', issuer: idps.ta!.issuer, client_id: 'x' }) })).status).toBe(201);
  });

  it('a tenant admin reaches nothing of another tenant by slug, and every refusal is audited', async () => {
    const taAdmin = await cc('ta', 'ta-admin');
    const paths: Array<[string, string, unknown?]> = [
      ['GET', '/v0/tenants/tb'], ['GET', '/v0/tenants/tb/connections'], ['GET', '/v0/tenants/tb/connections/idp'],
      ['GET', '/v0/tenants/tb/mappings'], ['PUT', '/v0/tenants/tb/mappings', { rules: [] }],
      ['POST', '/v0/tenants/tb/mappings/test', { claims: {} }], ['DELETE', '/v0/tenants/tb/connections/idp'],
      ['POST', '/v0/tenants/tb/workspaces', { name: 'x' }], ['DELETE', '/v0/tenants/tb/sessions'], ['GET', '/v0/tenants/nope/workspaces'],
    ];
    for (const [method, p, body] of paths) {
      const before = audits((a) => a.event === 'authz.denied' && a.tenant === 'ta').length;
      const r = await call(u(p), { method, token: taAdmin, ...(body ? json(body) : {}) });
      expect(r.status, `${method} ${p}`).toBe(403);
      expect(audits((a) => a.event === 'authz.denied' && a.tenant === 'ta').length, `${method} ${p}`).toBe(before + 1);
    }
    expect((await call(u('/v0/tenants/tb/connections/idp'), { token: op })).status).toBe(200);
  });
});

describe('the roost CLI against the running server', () => {
  // Asynchronous, not spawnSync: a blocked event loop keeps the client from seeing the server
  // close an idle keep-alive connection (after 5 s then; 65 s now), and the next request then goes out on it.
  const roost = (...args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [path.join(root, 'bin/roost.js'), ...args, '--server', srv.url, '--token', op]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    p.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });

  it('creates, updates, renames and deletes; refusals exit 1 and change nothing', async () => {
    let r = (await roost('tenant', 'create', 'clit', '--name', 'CLI T', '--domain', 'clit.example', '--limit', 'concurrent_queries=3'));
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ slug: 'clit', domains: ['clit.example'], limits: { concurrent_queries: 3 } });
    r = (await roost('tenant', 'create', 'clit2', '--domain', 'clit.example'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ALREADY_EXISTS/);
    r = (await roost('tenant', 'update', 'clit', '--limit', 'concurrent_queries=none', '--limit', 'storage_bytes=1000000'));
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).limits).toEqual({ storage_bytes: 1000000 });
    r = (await roost('workspace', 'create', 'clit', 'one'));
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).token).toMatch(/^p\.rst_/);
    expect((await roost('workspace', 'rename', 'clit', 'one', 'two')).status).toBe(0);
    r = (await roost('workspace', 'list', 'clit'));
    expect(r.stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0])).toEqual(['two']);
    expect((await roost('workspace', 'delete', 'clit', 'two')).status).toBe(1);
    expect((await roost('workspace', 'delete', 'clit', 'two', '--yes')).status).toBe(0);
    r = (await roost('tenant', 'list'));
    for (const line of r.stdout.split('\n').filter(Boolean)) expect(line.split('\t')).toHaveLength(4);
  });
});

describe('restart', () => {
  it('every acknowledged change is there after kill -9 and a restart', async () => {
    const dataDir = srv.dataDir;
    const before = {
      tenants: (await call(u('/v0/tenants'), { token: op })).body.tenants,
      ta: (await call(u('/v0/tenants/ta/workspaces'), { token: op })).body.workspaces,
      mappings: (await call(u('/v0/tenants/ta/mappings'), { token: op })).body.rules,
      conns: (await call(u('/v0/tenants/tb/connections'), { token: op })).body.connections.map((c: any) => c.id),
    };
    process.kill(srv.proc.pid!, 'SIGKILL');
    await srv.exited;
    srv = await startServer({ dev: false, dataDir });
    expect((await call(u('/v0/tenants'), { token: op })).body.tenants).toEqual(before.tenants);
    expect((await call(u('/v0/tenants/ta/workspaces'), { token: op })).body.workspaces).toEqual(before.ta);
    expect((await call(u('/v0/tenants/ta/mappings'), { token: op })).body.rules).toEqual(before.mappings);
    expect((await call(u('/v0/tenants/tb/connections'), { token: op })).body.connections.map((c: any) => c.id)).toEqual(before.conns);
    const ws = before.ta.find((w: any) => w.name === 'ev_new');
    expect(ws).toBeTruthy();
    const log = fs.readFileSync(path.join(dataDir, 'audit', 'operator.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log.some((e) => e.event === 'tenant.deleted' && e.subject_tenant === 'gone')).toBe(true);
    expect(log.some((e) => e.event === 'tenant.created' && e.subject_tenant === 'clit')).toBe(true);
  }, 60_000);
});
