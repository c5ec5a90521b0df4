/**
 * A backup taken while acknowledged events (202) wait to retry a failed flush (their cell was
 * killed during it): the backup holds them, or fails saying so. It said done without them, and
 * its restore lost them. Real server, real engine, a real SIGKILL; the backup restored to check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, childProcesses, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const count = async () => {
  for (let i = 0; ; i++) {
    const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() FROM ev FORMAT CSV')}`, { token });
    if (r.status === 200) return Number(r.text.trim());
    if (i > 100) throw new Error(`${r.status} ${r.text}`);
    await sleep(200);
  }
};
const job = async (id: string) => {
  for (let i = 0; i < 600; i++) {
    const j = await call(`${srv.url}/v0/jobs/${id}`, { token: srv.operatorToken });
    if (j.body.status === 'done' || j.body.status === 'error') return j.body;
    await sleep(100);
  }
  throw new Error(`job ${id} did not end`);
};

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const schema = encodeURIComponent('id UInt64 `json:$.id`, pad String `json:$.pad`');
  expect((await call(`${srv.url}/v0/datasources?name=ev&schema=${schema}`, { method: 'POST', token })).status).toBe(200);
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('a backup while events wait to retry their flush', () => {
  it('holds them (its restore has them all), or fails saying why', async () => {
    const n = 400_000;
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(`{"id":${i},"pad":"${'x'.repeat(40)}"}`);
    const sent = await call(`${srv.url}/v0/events?name=ev`, { method: 'POST', token, body: lines.join('\n') + '\n' });
    expect(sent.status, sent.text).toBe(202);
    // Killed while the flush of those events runs: the flush fails and waits before it retries.
    await sleep(600);
    const [cell] = childProcesses(srv.proc.pid!, 'cell-main');
    expect(cell).toBeDefined();
    process.kill(cell!, 'SIGKILL');
    await sleep(100);
    const started = await call(`${srv.url}/v0/tenants/local/backups`, { method: 'POST', token: srv.operatorToken, ...json({}) });
    expect(started.status, started.text).toBe(202);
    const b = await job(started.body.id);
    if (b.status === 'error') {
      // Failed, saying so (the events not written yet, or the killed cell met by the backup
      // itself; retryable either way): not a backup without them.
      expect(['ENGINE_UNAVAILABLE', 'CELL_UNAVAILABLE']).toContain(b.code);
      if (b.code === 'ENGINE_UNAVAILABLE') expect(b.error).toMatch(/events acknowledged before the backup/);
      return;
    }
    const backupId = b.result.backup_id as string;
    // Every acknowledged event is in the live data source, and in the backup: restored, it has them.
    for (let i = 0; i < 100 && (await count()) < n; i++) await sleep(200);
    expect(await count()).toBe(n);
    const restore = await call(`${srv.url}/v0/tenants/local/backups/${backupId}/restore`, { method: 'POST', token: srv.operatorToken, ...json({ replace: true }) });
    expect(restore.status, restore.text).toBe(202);
    expect((await job(restore.body.id)).status).toBe('done');
    expect(await count()).toBe(n);
  }, 120_000);
});

describe('a tenant created under the slug of one being restored', () => {
  it('is refused while the restore runs (it moved the restore\'s cell directory away, and the restore said done over data that was gone)', async () => {
    const op = srv.operatorToken;
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'rr' }) })).status).toBe(201);
    const ws = await call(`${srv.url}/v0/tenants/rr/workspaces`, { method: 'POST', token: op, ...json({ name: 'w' }) });
    const t = ws.body.token as string;
    expect((await call(`${srv.url}/v0/datasources?name=d&schema=${encodeURIComponent('id UInt32, s String')}`, { method: 'POST', token: t })).status).toBe(200);
    const body = Array.from({ length: 200_000 }, (_, i) => `${i},row ${i}`).join('\n') + '\n';
    expect((await call(`${srv.url}/v0/datasources?name=d&mode=append`, { method: 'POST', token: t, body, headers: { 'Content-Type': 'text/csv' } })).status).toBe(200);
    const b = await call(`${srv.url}/v0/tenants/rr/backups`, { method: 'POST', token: op, ...json({}) });
    const backupId = (await job(b.body.id)).result.backup_id as string;
    expect((await call(`${srv.url}/v0/tenants/rr`, { method: 'DELETE', token: op })).status).toBe(200);
    const restore = await call(`${srv.url}/v0/tenants/rr/backups/${backupId}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
    expect(restore.status, restore.text).toBe(202);
    const create = await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'rr', name: 'Intruder' }) });
    expect(create.status, create.text).toBe(409);
    expect(['CONFLICT', 'ALREADY_EXISTS']).toContain(create.body.code);
    expect((await job(restore.body.id)).status).toBe('done');
    const n = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() FROM d FORMAT CSV')}`, { token: t });
    expect(n.text, n.text).toBe('200000\n');
  }, 120_000);
});

describe('backup and restore audit records', () => {
  const audits = (event: string) => srv.logs.filter((l) => l.msg === 'audit' && l.event === event);
  it('a failed restore and an archive download are audited (only successful ones were)', async () => {
    const op = srv.operatorToken;
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'rd', domains: ['rd.test'] }) })).status).toBe(201);
    expect((await call(`${srv.url}/v0/tenants/rd/workspaces`, { method: 'POST', token: op, ...json({ name: 'w' }) })).status).toBe(201);
    const b = await call(`${srv.url}/v0/tenants/rd/backups`, { method: 'POST', token: op, ...json({}) });
    const backupId = (await job(b.body.id)).result.backup_id as string;
    const tar = await call(`${srv.url}/v0/tenants/rd/backups/${backupId}/archive`, { token: op });
    expect(tar.status).toBe(200);
    const dl = audits('tenant.backup_downloaded').find((a) => a.requestId === tar.headers.get('x-request-id'));
    expect(dl).toMatchObject({ outcome: 'success', credential: 'operator', details: { backup: backupId } });
    // Restored after its domain went to another tenant: the job fails, and says so in the audit trail.
    expect((await call(`${srv.url}/v0/tenants/rd`, { method: 'DELETE', token: op })).status).toBe(200);
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'rd2', domains: ['rd.test'] }) })).status).toBe(201);
    const r = await call(`${srv.url}/v0/tenants/rd/backups/${backupId}/restore`, { method: 'POST', token: op, ...json({}) });
    expect(r.status, r.text).toBe(202);
    expect((await job(r.body.id)).status).toBe('error');
    for (let i = 0; i < 50 && !audits('tenant.restored').some((a) => a.outcome === 'failure'); i++) await sleep(50);
    expect(audits('tenant.restored').find((a) => a.outcome === 'failure')).toMatchObject({ credential: 'operator', details: { backup: backupId } });
  }, 120_000);
});

describe('backup and restore request bodies', () => {
  it('refuse fields they do not know (they were ignored: {"Replace": true} did not replace)', async () => {
    const op = srv.operatorToken;
    const b = await call(`${srv.url}/v0/tenants/local/backups`, { method: 'POST', token: op, ...json({ Archive: true }) });
    expect(b.status, b.text).toBe(400);
    expect(b.body.error).toMatch(/unknown field Archive/);
    const ok = await call(`${srv.url}/v0/tenants/local/backups`, { method: 'POST', token: op, ...json({}) });
    const backupId = (await job(ok.body.id)).result.backup_id as string;
    const r = await call(`${srv.url}/v0/tenants/local/backups/${backupId}/restore`, { method: 'POST', token: op, ...json({ Replace: true }) });
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatch(/unknown field Replace/);
  }, 120_000);
});

describe('a backup in a later format', () => {
  it('is refused saying it was written by a later Roost and what to do (it said only "not a roost-backup/1 backup")', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const op = srv.operatorToken;
    const b = await call(`${srv.url}/v0/tenants/local/backups`, { method: 'POST', token: op, ...json({}) });
    const backupId = (await job(b.body.id)).result.backup_id as string;
    const file = path.join(srv.dataDir, 'backups', 'local', backupId, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, JSON.stringify({ ...m, format: 'roost-backup/2' }));
    const r = await call(`${srv.url}/v0/tenants/local/backups/${backupId}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatch(/format roost-backup\/2, written by a later version of Roost; this server reads roost-backup\/1/);
  }, 120_000);
});
