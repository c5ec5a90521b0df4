/**
 * Backups, restores and the `roost` admin CLI as an operator meets them (audit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { call, childProcesses, waitJob as pollJob, startServer, tempDir, type RunningServer } from './helpers/server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
let a: RunningServer;
let token = '';
let backupId = '';

const waitJob = (id: string) => pollJob(a, a.operatorToken, id);
const sql = (q: string, t = token) => call(`${a.url}/v0/sql?q=${encodeURIComponent(q)}`, { token: t });
const backupsRoot = () => path.join(a.dataDir, 'backups', 'acme');

function roost(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(root, 'bin/roost.js'), ...args], { env: { ...process.env, ROOST_OPERATOR_TOKEN: '', ROOST_SERVER: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (x: Buffer) => { stdout += x; });
    p.stderr.on('data', (x: Buffer) => { stderr += x; });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
const opEnv = () => ({ ROOST_SERVER: a.url, ROOST_OPERATOR_TOKEN: a.operatorToken });

/** A tar of a copy of the good backup under `id`, manifest merged with `manifest`, after `tweak`. */
function archive(id: string, tweak: (dir: string) => void = () => {}, manifest: Record<string, unknown> = {}): Buffer {
  const work = tempDir('roost-audit-arch-');
  const dir = path.join(work, id);
  fs.cpSync(path.join(backupsRoot(), backupId), dir, { recursive: true });
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...m, id, ...manifest }));
  tweak(dir);
  return execFileSync('tar', ['-c', '-f', '-', '-C', work, id], { maxBuffer: 1 << 28 });
}
const put = (id: string, body: Buffer | string) => call(`${a.url}/v0/tenants/acme/backups/${id}`, { method: 'POST' === 'x' ? 'POST' : 'PUT', token: a.operatorToken, body });

beforeAll(async () => {
  a = await startServer({ dev: false });
  expect((await call(`${a.url}/v0/tenants`, { method: 'POST', token: a.operatorToken, ...json({ slug: 'acme' }) })).status).toBe(201);
  const ws = await call(`${a.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: a.operatorToken, ...json({ name: 'main' }) });
  token = ws.body.token;
  expect((await call(`${a.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token })).status).toBe(200);
  expect((await call(`${a.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: '1\n2\n3\n' })).status).toBe(200);
  const b = await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: a.operatorToken });
  expect((await waitJob(b.body.id)).status).toBe('done');
  backupId = b.body.backup_id;
}, 120_000);

afterAll(async () => { await a?.stop(); });

describe('uploaded archives that lie', () => {
  it('a manifest whose fields have the wrong shape is a 400, leaves nothing, and the list still answers', async () => {
    const bad: Array<Record<string, unknown>> = [
      { workspaces: [null] }, { workspaces: [{ name: 1, database: 'x' }] }, { workspaces: [{ name: 'main' }] },
      { data_bytes: 'lots' }, { key_check: 5 }, { created_at: { x: 1 } }, { engine_version: null },
    ];
    let i = 0;
    for (const m of bad) {
      const id = `20250101T120000Z-e0e0${(i++).toString(16).padStart(2, '0')}`;
      const r = await put(id, archive(id, () => {}, m));
      expect(r.status, `${JSON.stringify(m)} ${r.text}`).toBe(400);
      expect(r.body.code).toBe('BAD_REQUEST');
      expect(fs.existsSync(path.join(backupsRoot(), id))).toBe(false);
    }
    const list = await call(`${a.url}/v0/tenants/acme/backups`, { token: a.operatorToken });
    expect(list.status, list.text).toBe(200);
  });

  it('truncated, empty, gzip and non-tar bodies are a 400 and leave no staging folder', async () => {
    const id = '20250101T120000Z-e1e1e1';
    const good = archive(id);
    for (const body of [good.subarray(0, 700), good.subarray(0, Math.floor(good.length / 2)), Buffer.alloc(0), execFileSync('gzip', ['-c'], { input: good }), 'hello']) {
      const r = await put(id, body);
      expect(r.status, r.text).toBe(400);
      expect(r.body.code).toMatch(/BAD_REQUEST/);
    }
    expect(fs.readdirSync(backupsRoot()).filter((n) => n !== backupId)).toEqual([]);
  });
});
