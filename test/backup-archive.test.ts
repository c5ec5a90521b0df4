/**
 * Uploaded backup archives: anything but directories and regular files is refused
 * (a FIFO or device node would be read by the engine's RESTORE), entries outside the
 * backup's directory are refused, and a refused upload leaves nothing behind; an
 * archive of another tenant or backup id is refused with a clear 400.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { call, waitJob as pollJob, startServer, tempDir, type RunningServer } from './helpers/server.js';

const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
let a: RunningServer;
let backupId = '';
let wsToken = '';

const waitJob = (id: string) => pollJob(a, a.operatorToken, id);

/** A tar of a copy of the backup under `id` (manifest rewritten to match), after `tweak` ran on the copy. */
function archive(id: string, tweak: (dir: string) => void, manifest: Record<string, unknown> = {}): Buffer {
  const work = tempDir('roost-backup-arch-');
  const dir = path.join(work, id);
  fs.cpSync(path.join(a.dataDir, 'backups', 'acme', backupId), dir, { recursive: true });
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...m, id, ...manifest }));
  tweak(dir);
  return execFileSync('tar', ['-c', '-f', '-', '-C', work, id], { maxBuffer: 1 << 28 });
}

const put = (id: string, body: Buffer) => call(`${a.url}/v0/tenants/acme/backups/${id}`, { method: 'PUT', token: a.operatorToken, body });
const leftovers = () => fs.readdirSync(path.join(a.dataDir, 'backups', 'acme')).filter((n) => n !== backupId && !n.endsWith('.tar'));

beforeAll(async () => {
  a = await startServer({ dev: false });
  await call(`${a.url}/v0/tenants`, { method: 'POST', token: a.operatorToken, ...json({ slug: 'acme' }) });
  const ws = await call(`${a.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: a.operatorToken, ...json({ name: 'main' }) });
  wsToken = ws.body.token;
  await call(`${a.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: ws.body.token });
  await call(`${a.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token: ws.body.token, body: '1\n2\n' });
  const b = await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: a.operatorToken });
  expect((await waitJob(b.body.id)).status).toBe('done');
  backupId = b.body.backup_id;
}, 120_000);

afterAll(async () => { await a?.stop(); });

describe('backup archive uploads', () => {
  it('refuses an archive holding a FIFO and leaves nothing behind', async () => {
    const id = '20250101T120000Z-f1f0f0';
    const body = archive(id, (dir) => execFileSync('mkfifo', [path.join(dir, 'data', 'pipe')]));
    const r = await put(id, body);
    expect(r).toMatchObject({ status: 400, body: { code: 'BAD_REQUEST' } });
    expect(r.body.error).toMatch(/special file/);
    expect(leftovers()).toEqual([]);
  });

  it('refuses a backup directory holding a FIFO at restore time', async () => {
    const root = path.join(a.dataDir, 'backups', 'acme');
    const id = backupId.slice(0, -6) + 'f2f0f0';
    fs.cpSync(path.join(root, backupId), path.join(root, id), { recursive: true });
    execFileSync('mkfifo', [path.join(root, id, 'data', 'pipe')]);
    try {
      const r = await call(`${a.url}/v0/tenants/acme/backups/${id}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
      const j = r.status === 202 ? await waitJob(r.body.id) : r.body;
      expect(j.error ?? j.code).toMatch(/special file|BAD_REQUEST/);
    } finally {
      fs.rmSync(path.join(root, id), { recursive: true, force: true });
    }
  }, 30_000);

  it('refuses an archive of another tenant or id, with nothing left behind', async () => {
    const id = '20250101T120000Z-a0a0a0';
    const other = await put(id, archive(id, () => {}, { tenant: 'globex' }));
    expect(other).toMatchObject({ status: 400, body: { code: 'BAD_REQUEST' } });
    expect(other.body.error).toMatch(/globex/);
    const wrongId = await put(id, archive(id, () => {}, { id: '20250101T120000Z-b0b0b0' }));
    expect(wrongId.status).toBe(400);
    expect(leftovers()).toEqual([]);
  });

  it('a backup whose data bytes changed (its files all there) is refused at restore: nothing restored, the data as it was', async () => {
    const root = path.join(a.dataDir, 'backups', 'acme');
    const id = backupId.slice(0, -6) + 'd4d0d0';
    fs.cpSync(path.join(root, backupId), path.join(root, id), { recursive: true });
    try {
      // Two bytes flipped in a part's column data: the tar, the manifest and the file list are fine.
      const bins: string[] = [];
      const walk = (d: string) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (/\.bin$/.test(e.name) && /data\/data\//.test(p)) bins.push(p); } };
      walk(path.join(root, id));
      const bin = bins.find((b) => /id\.bin$|data\.bin$/.test(b)) ?? bins[0]!;
      const bytes = fs.readFileSync(bin);
      const at = bytes.length - 4;
      bytes[at] ^= 0xff; bytes[at + 1] ^= 0xff;
      fs.writeFileSync(bin, bytes);
      const r = await call(`${a.url}/v0/tenants/acme/backups/${id}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
      const j = r.status === 202 ? await waitJob(r.body.id) : r.body;
      expect(j.status ?? 'error', JSON.stringify(j)).toBe('error');
      expect(JSON.stringify(j)).toMatch(/damaged|checksum/i);
      // The tenant's data is what it was, readable.
      const q = await call(`${a.url}/v0/sql?q=${encodeURIComponent('SELECT sum(id) AS s FROM ev FORMAT JSON')}`, { token: wsToken });
      expect(q.status, q.text).toBe(200);
      expect(q.body.data).toEqual([{ s: 3 }]);
    } finally {
      fs.rmSync(path.join(root, id), { recursive: true, force: true });
    }
  }, 60_000);

  it('a good archive uploads and restores', async () => {
    const id = '20250101T120000Z-c0c0c0';
    expect((await put(id, archive(id, () => {}))).status).toBe(201);
    const r = await call(`${a.url}/v0/tenants/acme/backups/${id}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
    expect((await waitJob(r.body.id)).status).toBe('done');
  }, 30_000);
});
