/**
 * Backup and restore end to end: the API (jobs with progress), the CLI
 * (`roost backup`, `roost restore`) against the running server, restore on the
 * same server after deletion and on a fresh server with the same secret key,
 * tokens still valid; a server with another key refuses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { call, waitJob as pollJob, startServer, tempDir, type RunningServer } from './helpers/server.js';
import { freePort } from './helpers/clickhouse-server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
let a: RunningServer;
let b: RunningServer | undefined;
let c: RunningServer | undefined;
const tokens: Record<string, string> = {};
let secretKey = '';

function roost(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(root, 'bin/roost.js'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (x: Buffer) => { stdout += x; });
    p.stderr.on('data', (x: Buffer) => { stderr += x; });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const sql = (srv: RunningServer, token: string, q: string) => call(`${srv.url}/v0/sql?q=${encodeURIComponent(q)}`, { token });

const waitJob = (s: RunningServer, token: string, id: string) => pollJob(s, token, id, 300);

beforeAll(async () => {
  a = await startServer({ dev: false });
  secretKey = fs.readFileSync(path.join(a.dataDir, 'secret-key'), 'utf8').trim();
  const env = { ROOST_SERVER: a.url, ROOST_OPERATOR_TOKEN: a.operatorToken };
  const created = await roost(['tenant', 'create', 'acme', '--name', 'Acme', '--domain', 'acme.com', '--limit', 'concurrent_queries=8'], env);
  expect(created.code, created.stderr).toBe(0);
  expect(JSON.parse(created.stdout)).toMatchObject({ slug: 'acme', name: 'Acme', domains: ['acme.com'], limits: { concurrent_queries: 8 } });
  for (const ws of ['sales', 'ops']) {
    const r = await roost(['workspace', 'create', 'acme', ws], env);
    expect(r.code, r.stderr).toBe(0);
    tokens[ws] = JSON.parse(r.stdout).token;
    expect((await call(`${a.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent('id UInt32, v String')}`, { method: 'POST', token: tokens[ws] })).status).toBe(200);
    const rows = Array.from({ length: 5000 }, (_, i) => `${i},${ws}-${i}`).join('\n') + '\n';
    expect((await call(`${a.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token: tokens[ws], body: rows })).status).toBe(200);
  }
  expect((await call(`${a.url}/v0/pipes`, { method: 'POST', token: tokens.sales, ...json({ name: 'top', nodes: [{ name: 'n', sql: 'SELECT count() AS n FROM ev' }] }) })).status).toBeLessThan(300);
  const t = await call(`${a.url}/v0/tokens?name=reader&scope=DATASOURCES:READ:ev`, { method: 'POST', token: tokens.sales });
  tokens.reader = t.body.token;
}, 120_000);

afterAll(async () => { await a?.stop(); await b?.stop(); await c?.stop(); });

describe('backup and restore', () => {
  let backupId = '';
  let outDir = '';

  it('CLI: tenant list/get, and errors are clear', async () => {
    const env = { ROOST_SERVER: a.url, ROOST_OPERATOR_TOKEN: a.operatorToken };
    const list = await roost(['tenant', 'list'], env);
    expect(list.stdout).toMatch(/^acme\tAcme\tembedded\tacme\.com$/m);
    expect(JSON.parse((await roost(['tenant', 'get', 'acme'], env)).stdout).slug).toBe('acme');
    const ws = await roost(['workspace', 'list', 'acme'], env);
    expect(ws.stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0])).toEqual(['ops', 'sales']);
    const bad = await roost(['tenant', 'get', 'nope'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/no tenant "nope".*UNKNOWN_TENANT/);
    expect((await roost(['tenant', 'list'], { ROOST_SERVER: a.url, ROOST_OPERATOR_TOKEN: 'wrong' })).stderr).toMatch(/operator token/);
    // A free port nothing listens on (port 1 is one fetch() refuses outright, which the CLI now says as such).
    expect((await roost(['tenant', 'list'], { ROOST_SERVER: `http://127.0.0.1:${await freePort()}`, ROOST_OPERATOR_TOKEN: 'x' })).stderr).toMatch(/cannot reach the server/);
    expect((await roost(['tenant', 'delete', 'acme'], env)).stderr).toMatch(/--yes/);
    // The token file of the data directory works too.
    expect((await roost(['tenant', 'list', '--data', a.dataDir, '--server', a.url], { ROOST_OPERATOR_TOKEN: '' })).code).toBe(0);
  });

  it('API: a backup runs as a job with progress and is listed', async () => {
    const r = await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: a.operatorToken });
    expect(r).toMatchObject({ status: 202, body: { kind: 'backup' } });
    expect(['waiting', 'working']).toContain(r.body.status);
    const j = await waitJob(a, a.operatorToken, r.body.id);
    expect(j).toMatchObject({ status: 'done', progress: { percent: 100 }, result: { backup_id: r.body.backup_id, workspaces: ['ops', 'sales'] } });
    expect(j.result.data_bytes).toBeGreaterThan(0);
    const dir = path.join(a.dataDir, 'backups', 'acme', r.body.backup_id);
    expect(fs.existsSync(path.join(dir, 'manifest.json'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'data', '.backup'))).toBe(true);
    const state = fs.readFileSync(path.join(dir, 'state.json'), 'utf8');
    for (const t of Object.values(tokens)) expect(state).not.toContain(t);
    const list = await call(`${a.url}/v0/tenants/acme/backups`, { token: a.operatorToken });
    expect(list.body.backups.map((x: any) => x.id)).toContain(r.body.backup_id);
    // A workspace token does not see the job nor the backups.
    expect((await call(`${a.url}/v0/jobs/${r.body.id}`, { token: tokens.sales })).status).toBe(404);
    expect((await call(`${a.url}/v0/tenants/acme/backups`, { token: tokens.sales })).status).toBe(403);
    expect((await call(`${a.url}/v0/jobs/nope`, { token: a.operatorToken })).status).toBe(404);
    expect(await call(`${a.url}/v0/tenants/acme/backups/nope/restore`, { method: 'POST', token: a.operatorToken })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: a.operatorToken, headers: { 'Content-Type': 'application/json' }, body: '{x' })).toMatchObject({ status: 400, body: { code: 'INVALID_JSON' } });
  });

  it('a backup taken while an upload is still arriving leaves the upload\'s stage table out', async () => {
    // A replace of ops.ev (5000 rows again), paused half-way, past the 64 KiB the import
    // reads before it starts: its stage table exists.
    const lines = Array.from({ length: 5000 }, (_, i) => `${i},ops-${i}-${'x'.repeat(40)}\n`);
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    const body = new ReadableStream({
      async start(c) {
        c.enqueue(Buffer.from(lines.slice(0, 2500).join('')));
        await released;
        c.enqueue(Buffer.from(lines.slice(2500).join('')));
        c.close();
      },
    });
    const upload = call(`${a.url}/v0/datasources?name=ev&mode=replace`, { method: 'POST', token: tokens.ops, body, headers: { 'Content-Type': 'text/csv' }, duplex: 'half' } as RequestInit);
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      const r = await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: a.operatorToken });
      expect(r.status).toBe(202);
      const job = await waitJob(a, a.operatorToken, r.body.id);
      expect(job.status, JSON.stringify(job)).toBe('done');
      const dir = path.join(a.dataDir, 'backups', 'acme', r.body.backup_id, 'data');
      const files = (fs.readdirSync(dir, { recursive: true }) as string[]).map(String);
      expect(files.some((f) => f.includes('ev'))).toBe(true);
      expect(files.filter((f) => f.includes('__stage_'))).toEqual([]);
    } finally {
      release();
    }
    const done = await upload;
    expect(done.status, done.text).toBe(200);
    expect(done.body.rows).toBe(5000);
  });

  it('CLI: roost backup downloads it into a directory, with progress', async () => {
    outDir = tempDir('roost-backup-out-');
    const r = await roost(['backup', 'acme', '--out', outDir], { ROOST_SERVER: a.url, ROOST_OPERATOR_TOKEN: a.operatorToken });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/backup .* started/);
    expect(r.stderr).toMatch(/: done/);
    const res = JSON.parse(r.stdout);
    backupId = res.backup_id;
    expect(fs.existsSync(path.join(outDir, backupId, 'manifest.json'))).toBe(true);
  });

  it('after the tenant is deleted, restore on the same server brings data and tokens back', async () => {
    const env = { ROOST_SERVER: a.url, ROOST_OPERATOR_TOKEN: a.operatorToken };
    expect((await roost(['tenant', 'delete', 'acme', '--yes'], env)).code).toBe(0);
    expect((await sql(a, tokens.sales!, 'SELECT count() AS n FROM ev')).status).toBe(401);
    const r = await roost(['restore', path.join(outDir, backupId)], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/already has backup .* \(the same manifest\); using its copy/);
    expect(JSON.parse(r.stdout)).toMatchObject({ tenant: 'acme', workspaces: 2 });
    expect(await sql(a, tokens.sales!, 'SELECT count() AS n, min(v) AS v FROM ev')).toMatchObject({ status: 200, body: { data: [{ n: 5000, v: 'sales-0' }] } });
    expect(await sql(a, tokens.ops!, 'SELECT count() AS n FROM ev')).toMatchObject({ status: 200, body: { data: [{ n: 5000 }] } });
    expect(await sql(a, tokens.reader!, 'SELECT count() AS n FROM ev')).toMatchObject({ status: 200, body: { data: [{ n: 5000 }] } });
    expect(await call(`${a.url}/v0/pipes/top`, { token: tokens.sales })).toMatchObject({ status: 200, body: { name: 'top' } });
    // Restoring over the existing tenant needs --replace.
    const again = await roost(['restore', path.join(outDir, backupId)], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/replace/);
  });

  it('CLI: a different backup under an id the server has is refused, not swapped for the server\'s copy', async () => {
    const env = { ROOST_SERVER: a.url, ROOST_OPERATOR_TOKEN: a.operatorToken };
    const copy = path.join(tempDir('roost-backup-other-'), backupId);
    fs.cpSync(path.join(outDir, backupId), copy, { recursive: true });
    const mf = JSON.parse(fs.readFileSync(path.join(copy, 'manifest.json'), 'utf8'));
    mf.created_at = '2020-01-01T00:00:00.000Z';
    fs.writeFileSync(path.join(copy, 'manifest.json'), JSON.stringify(mf));
    const r = await roost(['restore', copy, '--replace'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`already has a different backup ${backupId} of tenant acme \\(created .* there, 2020-01-01T00:00:00.000Z here\\); nothing was restored`));
    expect(r.stderr).not.toMatch(/restore .*: done/);
  });

  it('a fresh server with the same secret key restores from an archive; tokens still valid', async () => {
    const tar = path.join(tempDir('roost-backup-tar-'), 'acme.tar');
    const dl = await roost(['backup', 'acme', '--out', tar], { ROOST_SERVER: a.url, ROOST_OPERATOR_TOKEN: a.operatorToken });
    expect(dl.code, dl.stderr).toBe(0);
    b = await startServer({ dev: false, env: { ROOST_SECRET_KEY: secretKey } });
    const r = await roost(['restore', tar], { ROOST_SERVER: b.url, ROOST_OPERATOR_TOKEN: b.operatorToken });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/uploaded/);
    expect(await sql(b, tokens.sales!, 'SELECT count() AS n FROM ev')).toMatchObject({ status: 200, body: { data: [{ n: 5000 }] } });
    expect(await sql(b, tokens.reader!, 'SELECT count() AS n FROM ev')).toMatchObject({ status: 200, body: { data: [{ n: 5000 }] } });
    expect((await call(`${b.url}/v0/tenants/acme`, { token: b.operatorToken })).body).toMatchObject({ name: 'Acme', domains: ['acme.com'], limits: { concurrent_queries: 8 } });
    // Another key: refused before anything changes.
    c = await startServer({ dev: false });
    const bad = await roost(['restore', tar], { ROOST_SERVER: c.url, ROOST_OPERATOR_TOKEN: c.operatorToken });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/secret key/);
    expect((await call(`${c.url}/v0/tenants/acme`, { token: c.operatorToken })).status).toBe(404);
    // Uploads are operator-only and must be tar archives of that backup.
    expect((await call(`${c.url}/v0/tenants/acme/backups/${backupId}`, { method: 'PUT', token: c.operatorToken, body: 'not a tar' })).body.code).toMatch(/BAD_REQUEST|ALREADY_EXISTS/);
  });
});
