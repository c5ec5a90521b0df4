/**
 * Restore is all or nothing: a restore whose engine RESTORE fails (a damaged
 * backup) leaves the tenant as it was, with the job in `error` and a reason; a
 * good restore over an existing tenant brings back data (quarantine, IPv4/IPv6,
 * Nullable, Array), pipes and tokens; one backup or restore runs at a time per
 * tenant; a server killed (-9) mid-restore comes back with the tenant either as
 * before or fully restored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { call, waitJob as pollJob, startServer, type RunningServer } from './helpers/server.js';

const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
let a: RunningServer;
let token = '';
let backupId = '';
const schema = 'id UInt32, ip4 IPv4, ip6 IPv6, note Nullable(String), tags Array(String)';

const sql = (q: string) => call(`${a.url}/v0/sql?q=${encodeURIComponent(q)}`, { token });
const count = async () => {
  const r = await sql('SELECT count() AS n FROM ev');
  if (r.status !== 200) throw new Error(`count: ${r.status} ${r.text}; server stderr: ${a.stderr().slice(-3000)}`);
  return r.body.data[0].n;
};

const waitJob = (id: string) => pollJob(a, a.operatorToken, id);

function rows(from: number, n: number): string {
  return Array.from({ length: n }, (_, i) => `${from + i},10.0.0.${(from + i) % 250},::ffff:1.2.3.${(from + i) % 250},${i % 2 ? 'x' : '\\N'},"['a','b${i}']"`).join('\n') + '\n';
}

/** A copy of the backup under another id, its data files truncated: the engine's RESTORE fails on it. */
function damagedCopy(): string {
  const root = path.join(a.dataDir, 'backups', 'acme');
  const id = backupId.slice(0, -6) + 'dddddd';
  fs.cpSync(path.join(root, backupId), path.join(root, id), { recursive: true });
  let damaged = 0;
  for (const f of fs.readdirSync(path.join(root, id, 'data'), { recursive: true }).map(String)) {
    const p = path.join(root, id, 'data', f);
    if (f.endsWith('.bin') && fs.statSync(p).isFile()) { fs.truncateSync(p, 1); damaged++; }
  }
  expect(damaged).toBeGreaterThan(0);
  return id;
}

beforeAll(async () => {
  a = await startServer({ dev: false });
  expect((await call(`${a.url}/v0/tenants`, { method: 'POST', token: a.operatorToken, ...json({ slug: 'acme', name: 'Acme' }) })).status).toBeLessThan(300);
  const ws = await call(`${a.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: a.operatorToken, ...json({ name: 'main' }) });
  token = ws.body.token;
  expect((await call(`${a.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent(schema)}`, { method: 'POST', token })).status).toBe(200);
  const r = await call(`${a.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: rows(0, 3000) + 'bad,not-an-ip,x,y,z\n' });
  expect(r.body).toMatchObject({ rows: 3000, quarantine_rows: 1 });
  expect((await call(`${a.url}/v0/pipes`, { method: 'POST', token, ...json({ name: 'top', nodes: [{ name: 'n', sql: 'SELECT count() AS n FROM ev' }] }) })).status).toBeLessThan(300);
  const b = await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: a.operatorToken });
  const done = await waitJob(b.body.id);
  expect(done.status).toBe('done');
  // Progress never passes its total (the backup's metadata files are not in it).
  expect(done.progress.bytes_done, JSON.stringify(done.progress)).toBe(done.progress.bytes_total);
  backupId = b.body.backup_id;
  // After the backup: more rows, so "as before" and "restored" differ.
  expect((await call(`${a.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: rows(3000, 500) })).status).toBe(200);
  expect(await count()).toBe(3500);
}, 120_000);

afterAll(async () => { await a?.stop(); });

describe('restore is all or nothing', () => {
  it('a damaged backup fails the job with a reason and leaves the tenant as it was', async () => {
    const id = damagedCopy();
    const r = await call(`${a.url}/v0/tenants/acme/backups/${id}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
    expect(r.status).toBe(202);
    const j = await waitJob(r.body.id);
    expect(j.status).toBe('error');
    expect(j.error).toMatch(/RESTORE failed/);
    // What a tenant admin reads: no stack trace, no path of the server's file system.
    expect(j.error).not.toMatch(/Stack trace|@ 0x|std::__1/);
    expect(j.error).not.toContain(a.dataDir);
    expect(j.error, j.error).toMatch(/damaged or incomplete/);
    expect(await count()).toBe(3500);
    expect(await call(`${a.url}/v0/pipes/top`, { token })).toMatchObject({ status: 200, body: { name: 'top' } });
  }, 120_000);

  it('restores over the existing tenant: types, quarantine, pipes, tokens', async () => {
    const r = await call(`${a.url}/v0/tenants/acme/backups/${backupId}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
    expect(r.status).toBe(202);
    // A second restore (or backup) while this one runs is refused.
    const again = await call(`${a.url}/v0/tenants/acme/backups/${backupId}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
    const backup = await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: a.operatorToken });
    const j = await waitJob(r.body.id);
    expect(j.status, JSON.stringify(j)).toBe('done');
    expect(again).toMatchObject({ status: 409, body: { code: 'CONFLICT' } });
    expect(backup).toMatchObject({ status: 409, body: { code: 'CONFLICT' } });
    expect(await count()).toBe(3000);
    expect(await sql('SELECT toString(ip4) AS a, toString(ip6) AS b, note, tags FROM ev WHERE id = 1')).toMatchObject({ status: 200, body: { data: [{ a: '10.0.0.1', b: '::ffff:1.2.3.1', note: 'x', tags: ['a', 'b1'] }] } });
    expect((await sql('SELECT count() AS n FROM ev WHERE note IS NULL')).body.data[0].n).toBe(1500);
    expect((await sql('SELECT count() AS n FROM ev_quarantine')).body.data[0].n).toBe(1);
    expect(await call(`${a.url}/v0/pipes/top`, { token })).toMatchObject({ status: 200, body: { name: 'top' } });
    // The tenant can be backed up again once the restore is over.
    const b = await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: a.operatorToken });
    expect((await waitJob(b.body.id)).status).toBe('done');
  }, 120_000);

  it('a server killed (-9) mid-restore comes back with the tenant as before or fully restored', async () => {
    expect((await call(`${a.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: rows(3000, 700) })).status).toBe(200);
    expect(await count()).toBe(3700);
    const r = await call(`${a.url}/v0/tenants/acme/backups/${backupId}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
    expect(r.status).toBe(202);
    for (let i = 0; i < 200; i++) {
      const j = await call(`${a.url}/v0/jobs/${r.body.id}`, { token: a.operatorToken });
      if (j.body.status === 'working' && j.body.progress?.phase === 'databases') break;
      await new Promise((res) => setTimeout(res, 5));
    }
    await a.stop('SIGKILL');
    await new Promise((res) => setTimeout(res, 500));
    a = await startServer({ dev: false, dataDir: a.dataDir });
    const n = await count();
    expect([3000, 3700]).toContain(n);
    // Whichever it is, a restore afterwards works.
    const again = await call(`${a.url}/v0/tenants/acme/backups/${backupId}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
    expect((await waitJob(again.body.id)).status).toBe('done');
    expect(await count()).toBe(3000);
  }, 180_000);
});

describe('imports during a restore', () => {
  it('the switch waits for a running import, imports meanwhile get a retryable 409, and later ones land in the restored data', async () => {
    // An append whose body is held open: it runs until released.
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    let step = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (step === 0) { step++; c.enqueue(new TextEncoder().encode(rows(100_000, 500))); return; }
        if (step === 1) { step++; await gate; c.enqueue(new TextEncoder().encode(rows(100_500, 500))); return; }
        c.close();
      },
    });
    const running = call(`${a.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body, duplex: 'half' } as RequestInit & { token: string });
    await new Promise((r) => setTimeout(r, 300));
    const r = await call(`${a.url}/v0/tenants/acme/backups/${backupId}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
    expect(r.status, r.text).toBe(202);
    // The restore reaches its switch and waits there for the running append.
    let phase = '';
    for (let i = 0; i < 300 && phase !== 'state'; i++) {
      phase = (await call(`${a.url}/v0/jobs/${r.body.id}`, { token: a.operatorToken })).body.progress?.phase;
      if (phase !== 'state') await new Promise((res) => setTimeout(res, 50));
    }
    expect(phase).toBe('state');
    const refused = await call(`${a.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: rows(200_000, 10) });
    expect(refused.status, refused.text).toBe(409);
    expect(refused.body).toMatchObject({ code: 'CONFLICT', retryable: true });
    release();
    expect((await running).status).toBe(200);
    expect((await waitJob(r.body.id)).status).toBe('done');
    // The restore gave the backup's rows; an append now goes into the restored databases and stays.
    expect(await count()).toBe(3000);
    expect((await call(`${a.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: rows(300_000, 10) })).body.rows).toBe(10);
    expect(await count()).toBe(3010);
  }, 120_000);
});
