/**
 * This session's state changes when something fails or the server is killed (SIGKILL): a
 * restore's switch with events still buffered, renames and drops, the restore's database
 * sweep. Real server, real engine; each must leave the old or the new state, never a mix,
 * and lose nothing acknowledged.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { call, childProcesses, waitJob, startServer, tempDir, type RunningServer } from './helpers/server.js';

const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const servers: RunningServer[] = [];
afterAll(async () => { for (const s of servers) await s.stop('SIGKILL').catch(() => undefined); });

/** Every directory under `dir` holding `.ndjson` segments. */
function segmentDirs(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.endsWith('.ndjson')) out.push(d);
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return [...new Set(out)];
}

describe('a restore while acknowledged events cannot be written', () => {
  it('is refused (nothing restored); the events then go into the data they were sent to, and a restore after them succeeds', async () => {
    const dataDir = tempDir('roost-crash8-');
    // Flushes every 10 min: only the ones the test and the restore ask for run.
    const srv = await startServer({ dataDir, dev: false, args: ['--events-flush', '600000'] });
    servers.push(srv);
    const op = srv.operatorToken;
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'delta' }) })).status).toBe(201);
    const tok = (await call(`${srv.url}/v0/tenants/delta/workspaces`, { method: 'POST', token: op, ...json({ name: 'w' }) })).body.token;
    const sql = async (q: string) => (await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`, { token: tok })).body.data;
    expect((await call(`${srv.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: tok })).status).toBe(200);
    expect((await call(`${srv.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token: tok, body: '1\n2\n3\n' })).status).toBe(200);
    const b = await call(`${srv.url}/v0/tenants/delta/backups`, { method: 'POST', token: op });
    expect((await waitJob(srv, op, b.body.id)).status).toBe('done');

    const ev = await call(`${srv.url}/v0/events?name=ev`, { method: 'POST', token: tok, body: Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: 100 + i })).join('\n') });
    expect(ev.status, ev.text).toBe(202);
    // The buffer cannot write them (a flush's record of its batch cannot be read: as a disk
    // error would do); they stay buffered, to be retried.
    const [dir] = segmentDirs(path.join(dataDir, 'events'));
    expect(dir).toBeDefined();
    const blocker = path.join(dir!, 'flushing.json');
    fs.mkdirSync(blocker);

    const r = await call(`${srv.url}/v0/tenants/delta/backups/${b.body.backup_id}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
    const job = await waitJob(srv, op, r.body.id);
    // Switched with them still buffered, they were flushed into the restored data later.
    expect(job.status, JSON.stringify(job)).toBe('error');
    expect(JSON.stringify(job)).toMatch(/events acknowledged before the restore could not be written yet/);
    expect(await sql('SELECT count() AS n FROM ev')).toEqual([{ n: 3 }]);

    // The disk mends: the events go into the data they were sent to, once.
    fs.rmdirSync(blocker);
    for (let i = 0; i < 100 && segmentDirs(path.join(dataDir, 'events')).length; i++) {
      // A rows delete flushes the data source's events first.
      await call(`${srv.url}/v0/datasources/ev/delete`, { method: 'POST', token: tok, body: new URLSearchParams({ delete_condition: 'id = 0', dry_run: 'true' }).toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
      if (segmentDirs(path.join(dataDir, 'events')).length) await new Promise((res) => setTimeout(res, 300));
    }
    expect(await sql('SELECT count() AS n FROM ev')).toEqual([{ n: 53 }]);
    const again = await call(`${srv.url}/v0/tenants/delta/backups/${b.body.backup_id}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
    expect((await waitJob(srv, op, again.body.id)).status).toBe('done');
    expect(await sql('SELECT count() AS n FROM ev')).toEqual([{ n: 3 }]);
  }, 120_000);
});

describe('a data source drop killed between its state change and its tables\' drop', () => {
  it('leaves tables no data source names: later backups still succeed, a new data source of the name starts empty', async () => {
    const dataDir = tempDir('roost-crash8-drop-');
    let srv = await startServer({ dev: false, dataDir });
    servers.push(srv);
    const op = srv.operatorToken;
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'eps' }) })).status).toBe(201);
    const ws = await call(`${srv.url}/v0/tenants/eps/workspaces`, { method: 'POST', token: op, ...json({ name: 'w' }) });
    expect(ws.status).toBe(201);
    const tok = ws.body.token;
    expect((await call(`${srv.url}/v0/datasources?name=kept&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: tok })).status).toBe(200);
    expect((await call(`${srv.url}/v0/datasources?name=kept&mode=append`, { method: 'POST', token: tok, body: '1\n2\n' })).status).toBe(200);
    await srv.stop();
    // The drop's state change is durable; its DROP TABLE never ran.
    const { Session } = await import('chdb');
    const s = new Session(path.join(dataDir, 'cells', 'eps', 'db'));
    for (const t of ['gone', 'gone_quarantine']) {
      s.query(`CREATE TABLE ${ws.body.database}.${t} (id UInt32) ENGINE = MergeTree ORDER BY id`);
      s.query(`INSERT INTO ${ws.body.database}.${t} SELECT number FROM numbers(5)`);
    }
    s.close();
    srv = await startServer({ dev: false, dataDir, args: ['--operator-token', op] });
    servers.push(srv);
    const b = await call(`${srv.url}/v0/tenants/eps/backups`, { method: 'POST', token: op });
    expect(b.status, b.text).toBe(202);
    const job = await waitJob(srv, op, b.body.id);
    expect(job.status, JSON.stringify(job)).toBe('done');
    expect((await call(`${srv.url}/v0/datasources?name=gone&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: tok })).status).toBe(200);
    const n = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM gone FORMAT JSON')}`, { token: tok });
    expect(n.body.data).toEqual([{ n: 0 }]);
    const r = await call(`${srv.url}/v0/tenants/eps/backups/${b.body.backup_id}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
    expect((await waitJob(srv, op, r.body.id)).status).toBe('done');
    const k = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM kept FORMAT JSON')}`, { token: tok });
    expect(k.body.data).toEqual([{ n: 2 }]);
  }, 120_000);
});

describe('kill -9 while pipes and data sources are dropped', () => {
  it('each is either there with its token scopes, or gone with them; a later one of the name is not the token\'s', async () => {
    const dataDir = tempDir('roost-crash8-drops-');
    let srv = await startServer({ dataDir });
    servers.push(srv);
    const admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token as string;
    const q = (method: string, p: string, body?: BodyInit, headers: Record<string, string> = {}) => call(`${srv.url}${p}`, { method, token: admin, body, headers });
    const N = 6;
    const tokenSecrets: string[] = [];
    for (let i = 0; i < N; i++) {
      expect((await q('POST', `/v0/datasources?name=d${i}&schema=${encodeURIComponent('id UInt32')}`)).status).toBe(200);
      expect((await q('POST', `/v0/datasources?name=d${i}&mode=append`, '1\n', { 'Content-Type': 'text/csv' })).status).toBe(200);
      const p = await q('POST', '/v0/pipes', JSON.stringify({ name: `p${i}`, nodes: [{ name: 'n', sql: `SELECT ${i} AS x`, type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
      expect(p.status, p.text).toBe(200);
      const scopes = [`DATASOURCES:READ:d${i}`, `PIPES:READ:p${i}`, 'DATASOURCES:READ:*'].map((s) => `scope=${encodeURIComponent(s)}`).join('&');
      const t = await q('POST', `/v0/tokens?name=t${i}&${scopes}`);
      expect(t.status, t.text).toBe(200);
      tokenSecrets.push(t.body.token);
    }
    const inFlight = Array.from({ length: N }, (_, i) => [q('DELETE', `/v0/pipes/p${i}`), q('DELETE', `/v0/datasources/d${i}`)]).flat().map((p) => p.catch(() => undefined));
    await new Promise((r) => setTimeout(r, 5));
    await srv.stop('SIGKILL');
    await Promise.all(inFlight);
    srv = await startServer({ dataDir });
    servers.push(srv);
    let dropped = 0;
    for (let i = 0; i < N; i++) {
      const tok = await q('GET', `/v0/tokens/t${i}`);
      expect(tok.status, tok.text).toBe(200);
      const scopes: string[] = tok.body.scopes.map((s: any) => (typeof s === 'string' ? s : `${s.type}:${s.resource ?? ''}`.replace(/:$/, '')));
      const pipeThere = (await q('GET', `/v0/pipes/p${i}`)).status === 200;
      const dsThere = (await q('GET', `/v0/datasources/d${i}`)).status === 200;
      expect(scopes.some((s) => s.endsWith(`:p${i}`)), `t${i} ${JSON.stringify(tok.body.scopes)} pipe there: ${pipeThere}`).toBe(pipeThere);
      expect(scopes.some((s) => s.endsWith(`:d${i}`)), `t${i} ${JSON.stringify(tok.body.scopes)} ds there: ${dsThere}`).toBe(dsThere);
      expect(scopes.some((s) => s.endsWith(':*'))).toBe(true);
      if (pipeThere) {
        expect((await call(`${srv.url}/v0/pipes/p${i}.json`, { token: tokenSecrets[i] })).body.data).toEqual([{ x: i }]);
      } else {
        dropped++;
        const p = await q('POST', '/v0/pipes', JSON.stringify({ name: `p${i}`, nodes: [{ name: 'n', sql: 'SELECT 42 AS x', type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
        expect(p.status, p.text).toBe(200);
        expect((await call(`${srv.url}/v0/pipes/p${i}.json`, { token: tokenSecrets[i] })).status).toBe(403);
      }
      if (dsThere) {
        const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`SELECT count() AS n FROM d${i} FORMAT JSON`)}`, { token: tokenSecrets[i] });
        expect(r.body.data, r.text).toEqual([{ n: 1 }]);
      } else {
        dropped++;
        expect((await q('POST', `/v0/datasources?name=d${i}&schema=${encodeURIComponent('id UInt32')}`)).status).toBe(200);
        const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`SELECT count() AS n FROM d${i} FORMAT JSON`)}`, { token: admin });
        expect(r.body.data, r.text).toEqual([{ n: 0 }]);
      }
    }
    console.log(`kill -9 with ${2 * N} drops in flight: ${dropped} done before it`);
  }, 120_000);
});

describe('SIGKILL of the cell, and kill -9 of the server, during a restore with events buffered before it', () => {
  it('leave the old data or the restored data, whole; the next backup sweeps what they left', async () => {
    const dataDir = tempDir('roost-crash8-restore-');
    let srv = await startServer({ dataDir, dev: false, args: ['--events-flush', '600000'] });
    servers.push(srv);
    const op = srv.operatorToken;
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'zeta' }) })).status).toBe(201);
    const tok = (await call(`${srv.url}/v0/tenants/zeta/workspaces`, { method: 'POST', token: op, ...json({ name: 'w' }) })).body.token;
    const count = async () => (await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM ev FORMAT JSON')}`, { token: tok })).body.data?.[0]?.n;
    expect((await call(`${srv.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: tok })).status).toBe(200);
    expect((await call(`${srv.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token: tok, body: '1\n2\n3\n' })).status).toBe(200);
    const b = await call(`${srv.url}/v0/tenants/zeta/backups`, { method: 'POST', token: op });
    expect((await waitJob(srv, op, b.body.id)).status).toBe('done');
    /** The rows once the data source's buffered events are flushed (a rows delete flushes them first). */
    const flushed = async () => {
      await call(`${srv.url}/v0/datasources/ev/delete`, { method: 'POST', token: tok, body: new URLSearchParams({ delete_condition: 'id = 0', dry_run: 'true' }).toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
      return count();
    };
    const restoreWith = async (kill: () => Promise<void>) => {
      const ev = await call(`${srv.url}/v0/events?name=ev`, { method: 'POST', token: tok, body: '{"id":100}\n{"id":101}\n' });
      expect(ev.status, ev.text).toBe(202);
      const before = await count();
      const r = await call(`${srv.url}/v0/tenants/zeta/backups/${b.body.backup_id}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
      expect(r.status, r.text).toBe(202);
      await kill();
      return { before, job: r.body.id as string };
    };
    // The cell dies under the restore: the job fails (old data, events in it) or wins (restored data only).
    {
      const { before, job } = await restoreWith(async () => { for (const pid of childProcesses(srv.proc.pid!, 'cell-main')) process.kill(pid, 'SIGKILL'); });
      const j = await waitJob(srv, op, job);
      let n: number | undefined;
      for (let i = 0; i < 50 && n === undefined; i++) { n = await flushed(); if (n === undefined) await new Promise((res) => setTimeout(res, 200)); }
      console.log(`cell SIGKILL during a restore: ${j.status}${j.error ? ` (${j.error})` : ''}, ${n} rows`);
      if (j.status === 'done') expect(n).toBe(3);
      else expect(n, JSON.stringify(j)).toBe(before + 2);
    }
    // The server dies under the restore: after the restart, old data with the events, or the restored data only.
    {
      const { before } = await restoreWith(async () => { await srv.stop('SIGKILL'); });
      srv = await startServer({ dataDir, dev: false, args: ['--operator-token', op] });
      servers.push(srv);
      const n = await flushed();
      console.log(`kill -9 during a restore: ${n} rows after the restart (${before} before it, 2 events buffered)`);
      expect([3, before + 2], `rows after the restart: ${n} (before the restore: ${before})`).toContain(n);
    }
    // The next backup sweeps databases no workspace names and succeeds; it restores whole.
    const b2 = await call(`${srv.url}/v0/tenants/zeta/backups`, { method: 'POST', token: op });
    expect((await waitJob(srv, op, b2.body.id)).status).toBe('done');
    const m = JSON.parse(fs.readFileSync(path.join(dataDir, 'backups', 'zeta', b2.body.backup_id, 'manifest.json'), 'utf8'));
    expect(m.workspaces.length).toBe(1);
    const n2 = await count();
    const r2 = await call(`${srv.url}/v0/tenants/zeta/backups/${b2.body.backup_id}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
    expect((await waitJob(srv, op, r2.body.id)).status).toBe('done');
    expect(await count()).toBe(n2);
  }, 120_000);
});
