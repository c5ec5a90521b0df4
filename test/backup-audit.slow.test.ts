/**
 * Backups, restores and the `roost` admin CLI as an operator meets them (audit).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { call, childProcesses, waitJob as pollJob, startServer, tempDir, type CallInit, type RunningServer } from './helpers/server.js';

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
const put = (id: string, body: Buffer | string) => call(`${a.url}/v0/tenants/acme/backups/${id}`, { method: 'PUT', token: a.operatorToken, body });

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

describe('roost CLI: usage, wrong arguments, odd servers', () => {
  it('--help of every command prints its usage on stdout, exit 0', async () => {
    for (const cmd of ['tenant', 'workspace', 'backup', 'restore']) {
      for (const h of ['--help', '-h']) {
        const r = await roost([cmd, h]);
        expect(r.code, `${cmd} ${h}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toContain(`roost ${cmd} `);
        expect(r.stderr).toBe('');
      }
    }
  });

  it('roost without a command: usage on stderr, exit 1; roost --help: on stdout, exit 0', async () => {
    const none = await roost([]);
    expect(none).toMatchObject({ code: 1, stdout: '' });
    expect(none.stderr).toMatch(/usage:/);
    const help = await roost(['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/roost backup <tenant>/);
  });

  it('wrong arguments are one clear line on stderr, exit 1, nothing sent', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['tenant', 'list', '--bogus'], /unknown option --bogus/],
      [['tenant', 'delete', 'acme', '--yes=no'], /--yes takes no value/],
      [['restore', '/nonexistent', '--replace=false'], /--replace takes no value/],
      [['tenant', 'delete', 'acme', 'globex', '--yes'], /unexpected argument "globex"/],
      [['workspace', 'delete', 'acme', 'main', 'extra', '--yes'], /unexpected argument "extra"/],
      [['tenant', 'get', '--server'], /--server needs a value/],
      [['backup', 'acme', '--out', '--server', a.url], /--out needs a value/],
      [['tenant', 'update', 'acme', '--name', ''], /--name needs a value \(it is empty\)/],
      [['tenant', 'create', 'other-co', '--name='], /--name needs a value \(it is empty\)/],
      [['backup', 'acme', '--out', '/etc/hostname'], /is a file, not a directory/],
      [['backup', 'acme', '--out', '/nonexistent-dir/x.tar'], /does not exist/],
      [['restore', '/etc/hostname'], /not a readable tar archive/],
      [['restore', '/dev/null'], /neither a backup directory nor a \.tar file/],
      [['tenant', 'list', '--server', 'http://root:hunter2@127.0.0.1:1'], /must not hold a user or password/],
      [['tenant', 'list', '--server', 'ftp://x'], /must be an http\(s\) URL/],
    ];
    for (const [args, msg] of cases) {
      const r = await roost(args, opEnv());
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toContain('hunter2');
    }
    // Nothing of that reached the server: acme is still there.
    expect((await call(`${a.url}/v0/tenants/acme`, { token: a.operatorToken })).status).toBe(200);
  });

  it('a server that is not Roost (HTML, other JSON, 5xx, silent) is a clear error, never a stack trace or a loop', async () => {
    const http = await import('node:http');
    const modes: Record<string, (res: import('node:http').ServerResponse) => void> = {
      html: (res) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end('<html>proxy</html>'); },
      other: (res) => { res.writeHead(200, { 'Content-Type': 'application/json' }); res.end('{"x":1}'); },
      bad: (res) => { res.writeHead(502, { 'Content-Type': 'text/html' }); res.end('<html>bad gateway</html>'); },
      silent: () => {},
    };
    for (const [mode, answer] of Object.entries(modes)) {
      const srv = http.createServer((_req, res) => answer(res));
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
      const url = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
      try {
        for (const args of [['tenant', 'list'], ['workspace', 'list', 'acme'], ['backup', 'acme']]) {
          const r = await roost(args, { ROOST_SERVER: url, ROOST_OPERATOR_TOKEN: 'op-token-that-must-not-be-printed-0123456789', ROOST_CLI_TIMEOUT_MS: '1000' });
          expect(r.code, `${mode} ${args.join(' ')}`).toBe(1);
          expect(r.stderr, mode).toMatch(/did not answer|HTTP 502|has no/);
          expect(r.stderr).not.toMatch(/\n\s+at /);
          expect(r.stderr + r.stdout).not.toContain('op-token-that-must-not-be-printed');
        }
      } finally {
        srv.closeAllConnections();
        srv.close();
      }
    }
  // Many CLI runs (each a node start): 11-16 s in CI, over 30 s once with other suites beside it.
  }, 60_000);

  it('secrets are not printed: a wrong token is not echoed, a token file is read', async () => {
    const wrong = await roost(['tenant', 'list'], { ROOST_SERVER: a.url, ROOST_OPERATOR_TOKEN: 'wrong-token-wrong-token-wrong-token-0001' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/operator token/);
    expect(wrong.stderr + wrong.stdout).not.toContain('wrong-token-wrong-token');
    const fromFile = await roost(['tenant', 'list', '--data', a.dataDir], { ROOST_SERVER: a.url });
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stdout + fromFile.stderr).not.toContain(a.operatorToken);
    const none = await roost(['tenant', 'list', '--data', '/nonexistent'], { ROOST_SERVER: a.url });
    expect(none).toMatchObject({ code: 1, stdout: '' });
    expect(none.stderr).toMatch(/no operator token/);
  });

  it('restore: a manifest id with path characters is refused before anything is copied or sent', async () => {
    const work = tempDir('roost-audit-evil-');
    const dir = path.join(work, 'copy');
    fs.cpSync(path.join(backupsRoot(), backupId), dir, { recursive: true });
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const escape = `evil-${process.pid}`;
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ ...m, id: `../../${escape}` }));
    const r = await roost(['restore', dir, '--replace'], opEnv());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no valid backup id/);
    expect(fs.existsSync(path.join('/tmp', '..', escape))).toBe(false);
    expect(fs.existsSync(path.join(path.dirname(path.dirname(fs.mkdtempSync(path.join(tempDir(), 'x')))), escape))).toBe(false);
  });
});

describe('backups taken while the tenant is busy', () => {
  let bt = '';
  const bsql = async (q: string) => { const r = await sql(q, bt); if (r.status !== 200) throw new Error(`${r.status} ${r.text}`); return r.body.data; };
  const backupBeta = async () => {
    const b = await call(`${a.url}/v0/tenants/beta/backups`, { method: 'POST', token: a.operatorToken });
    expect(b.status, b.text).toBe(202);
    const j = await waitJob(b.body.id);
    expect(j.status, JSON.stringify(j)).toBe('done');
    return b.body.backup_id as string;
  };
  const restoreBeta = async (id: string) => {
    const r = await call(`${a.url}/v0/tenants/beta/backups/${id}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
    expect(r.status, r.text).toBe(202);
    return waitJob(r.body.id);
  };

  beforeAll(async () => {
    expect((await call(`${a.url}/v0/tenants`, { method: 'POST', token: a.operatorToken, ...json({ slug: 'beta' }) })).status).toBe(201);
    bt = (await call(`${a.url}/v0/tenants/beta/workspaces`, { method: 'POST', token: a.operatorToken, ...json({ name: 'w' }) })).body.token;
    expect((await call(`${a.url}/v0/datasources?name=base&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: bt })).status).toBe(200);
  }, 60_000);

  it('events acknowledged (202) before the backup started are in it', async () => {
    const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ id: i })).join('\n');
    const ev = await call(`${a.url}/v0/events?name=base`, { method: 'POST', token: bt, body: lines });
    expect(ev.status, ev.text).toBe(202);
    const id = await backupBeta();
    const j = await restoreBeta(id);
    expect(j.status, JSON.stringify(j)).toBe('done');
    expect((await bsql('SELECT count() AS n FROM base'))[0].n).toBe(200);
  }, 60_000);

  it('a rows delete running during a backup: its restore holds the rows before or after the delete, nothing between', async () => {
    expect((await call(`${a.url}/v0/datasources?name=rd&mode=create&schema=${encodeURIComponent('id UInt32, v String')}`, { method: 'POST', token: bt })).status).toBe(200);
    for (let round = 0; round < 3; round++) {
      expect((await call(`${a.url}/v0/datasources/rd/truncate`, { method: 'POST', token: bt })).status).toBeLessThan(300);
      const rows = Array.from({ length: 20000 }, (_, i) => `${i},v${i}`).join('\n') + '\n';
      for (let p = 0; p < 4; p++) expect((await call(`${a.url}/v0/datasources?name=rd&mode=append`, { method: 'POST', token: bt, body: rows })).status).toBe(200);
      const del = call(`${a.url}/v0/datasources/rd/delete`, { method: 'POST', token: bt, body: new URLSearchParams({ delete_condition: 'id % 2 = 0' }) });
      await new Promise((r) => setTimeout(r, round * 30));
      const id = await backupBeta();
      const d = await del;
      expect(d.status, d.text).toBeLessThan(300);
      expect((await restoreBeta(id)).status).toBe('done');
      expect([80000, 40000]).toContain((await bsql('SELECT count() AS n FROM rd'))[0].n);
    }
  }, 60_000);

  it('data sources created and dropped during a backup: what it holds matches its state', async () => {
    let stop = false;
    let k = 0;
    const churn = (async () => {
      while (!stop) {
        const n = `ds${k++}`;
        await call(`${a.url}/v0/datasources?name=${n}&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: bt });
        if (k % 2 === 0) await call(`${a.url}/v0/datasources/${n}`, { method: 'DELETE', token: bt });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const ids: string[] = [];
    try {
      for (let i = 0; i < 4; i++) ids.push(await backupBeta());
    } finally {
      stop = true;
      await churn;
    }
    for (const id of ids) {
      const dir = path.join(a.dataDir, 'backups', 'beta', id);
      const st = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')).entries as Array<{ path: string[]; value: any }>;
      const ws = Object.values(st.find((e) => e.path[0] === 'workspaces')!.value as Record<string, any>)[0];
      const dsEntry = st.find((e) => e.path[0] === 'datasources');
      const inState = new Set<string>();
      const walk = (v: any) => { if (v && typeof v === 'object') { if (typeof v.table === 'string') inState.add(v.table); else Object.values(v).forEach(walk); } };
      walk(dsEntry?.value);
      const tables = fs.readdirSync(path.join(dir, 'data', 'metadata', ws.database)).map((f) => decodeURIComponent(f.replace(/\.sql$/, ''))).filter((t) => !t.endsWith('_quarantine') && !t.includes('__stage_'));
      expect(new Set(tables), id).toEqual(inState);
    }
  }, 60_000);
});

describe('restores and failures around them', () => {
  it('queries and endpoint calls running through a restore get answers, not 5xx', async () => {
    expect((await call(`${a.url}/v0/pipes`, { method: 'POST', token, ...json({ name: 'cnt', nodes: [{ name: 'n', sql: 'SELECT count() AS n FROM ev' }] }) })).status).toBeLessThan(300);
    expect((await call(`${a.url}/v0/pipes/cnt/nodes/n/endpoint`, { method: 'POST', token })).status).toBeLessThan(300);
    const b = await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: a.operatorToken });
    expect((await waitJob(b.body.id)).status).toBe('done');
    let stop = false;
    const statuses: number[] = [];
    const bad: string[] = [];
    const hammer = async (u: string) => {
      while (!stop) {
        const r = await call(u, { token });
        statuses.push(r.status);
        if (r.status !== 200 && !(r.status === 503 && r.body?.retryable)) bad.push(`${r.status} ${r.text.slice(0, 200)}`);
      }
    };
    const loops = [hammer(`${a.url}/v0/pipes/cnt.json`), hammer(`${a.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM ev')}`)];
    try {
      for (let i = 0; i < 3; i++) {
        const r = await call(`${a.url}/v0/tenants/acme/backups/${b.body.backup_id}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
        expect((await waitJob(r.body.id)).status).toBe('done');
      }
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    expect(statuses.length).toBeGreaterThan(10);
    expect(bad).toEqual([]);
  }, 60_000);

  it('a backup whose cell dies under it fails with a reason and leaves no directory', async () => {
    const before = fs.readdirSync(backupsRoot()).sort();
    const b = await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: a.operatorToken });
    expect(b.status).toBe(202);
    for (const pid of childProcesses(a.proc.pid!, 'cell-main')) process.kill(pid, 'SIGKILL');
    const j = await waitJob(b.body.id);
    if (j.status === 'error') {
      expect(j.error).toBeTruthy();
      expect(fs.readdirSync(backupsRoot()).sort()).toEqual(before);
    } else {
      // The backup won the race: it is whole.
      expect(fs.existsSync(path.join(backupsRoot(), b.body.backup_id, 'manifest.json'))).toBe(true);
    }
  }, 60_000);

  it('kill -9 during a backup and an upload: after the restart, the next backup and upload sweep what was left', async () => {
    // What a server killed mid-backup and mid-upload leaves: a backup directory without its manifest, a staging folder.
    const half = path.join(backupsRoot(), '20250101T120000Z-deadbe');
    fs.mkdirSync(path.join(half, 'data'), { recursive: true });
    fs.writeFileSync(path.join(half, 'data', 'x.bin'), 'x'.repeat(1000));
    const stagingDir = path.join(backupsRoot(), '.upload-0123456789ab');
    fs.mkdirSync(stagingDir);
    await a.stop('SIGKILL');
    a = await startServer({ dev: false, dataDir: a.dataDir });
    const list = await call(`${a.url}/v0/tenants/acme/backups`, { token: a.operatorToken });
    expect(list.body.backups.map((x: any) => x.id)).not.toContain('20250101T120000Z-deadbe');
    const b = await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: a.operatorToken });
    expect((await waitJob(b.body.id)).status).toBe('done');
    expect(fs.existsSync(half)).toBe(false);
    const id = '20250101T120000Z-5eee01';
    expect((await put(id, archive(id))).status).toBe(201);
    expect(fs.existsSync(stagingDir)).toBe(false);
    expect(fs.readdirSync(backupsRoot()).filter((n) => n.startsWith('.'))).toEqual([]);
  }, 90_000);
});

describe('an upload over --max-upload', () => {
  it('is a 413 and leaves no staging folder', async () => {
    const s = await startServer({ dev: false, args: ['--max-upload', '8192'] });
    try {
      const id = '20250101T120000Z-413413';
      const r = await call(`${s.url}/v0/tenants/acme/backups/${id}`, { method: 'PUT', token: s.operatorToken, body: archive(id) });
      expect(r.status, r.text).toBe(413);
      expect(fs.readdirSync(path.join(s.dataDir, 'backups', 'acme'))).toEqual([]);
    } finally {
      await s.stop();
    }
  }, 30_000);
});

describe('disk full', () => {
  let s: RunningServer | undefined;
  afterAll(async () => { await s?.stop(); });

  it('an upload larger than the disk allows is a 507, leaves nothing, and the server goes on', async () => {
    // 1 MiB per file: the server's own files stay small; the upload holds a 2 MiB file.
    s = await startServer({ dev: false, fileSizeLimitKiB: 1024 });
    const id = '20250101T120000Z-f00f00';
    const body = archive(id, (dir) => fs.writeFileSync(path.join(dir, 'data', 'big.bin'), Buffer.alloc(2 << 20, 7)));
    const r = await call(`${s.url}/v0/tenants/acme/backups/${id}`, { method: 'PUT', token: s.operatorToken, body });
    expect(r.status, r.text).toBe(507);
    expect(r.body).toMatchObject({ code: 'INSUFFICIENT_STORAGE', retryable: true });
    expect(fs.readdirSync(path.join(s.dataDir, 'backups', 'acme'))).toEqual([]);
    expect((await call(`${s.url}/v0/health`)).status).toBe(200);
  }, 60_000);

  it('a backup archive the disk cannot hold fails with INSUFFICIENT_STORAGE and leaves no partial .tar', async () => {
    const op = s!.operatorToken;
    expect((await call(`${s!.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'big' }) })).status).toBe(201);
    const t = (await call(`${s!.url}/v0/tenants/big/workspaces`, { method: 'POST', token: op, ...json({ name: 'w' }) })).body.token;
    const crypto = await import('node:crypto');
    for (const n of ['a', 'b', 'c']) {
      expect((await call(`${s!.url}/v0/datasources?name=${n}&mode=create&schema=${encodeURIComponent('v String')}`, { method: 'POST', token: t })).status).toBe(200);
      const rows = Array.from({ length: 12000 }, () => crypto.randomBytes(24).toString('base64')).join('\n') + '\n';
      const r = await call(`${s!.url}/v0/datasources?name=${n}&mode=append`, { method: 'POST', token: t, body: rows });
      expect(r.status, r.text).toBe(200);
    }
    const b = await call(`${s!.url}/v0/tenants/big/backups`, { method: 'POST', token: op, ...json({ archive: true }) });
    expect(b.status, b.text).toBe(202);
    const j = await pollJob(s!, op, b.body.id);
    expect(j, JSON.stringify(j)).toMatchObject({ status: 'error', code: 'INSUFFICIENT_STORAGE' });
    expect(fs.readdirSync(path.join(s!.dataDir, 'backups', 'big')).filter((n) => n.endsWith('.tar'))).toEqual([]);
    // Each file of the backup fits under the limit, its one-file archive does not: the backup is
    // complete, kept and listed, and the error says so (and where to get the archive).
    expect(j.error).toMatch(new RegExp(`backup ${b.body.backup_id} is complete and kept \\(GET /v0/tenants/big/backups/${b.body.backup_id}/archive`));
    const list = await call(`${s!.url}/v0/tenants/big/backups`, { token: op });
    expect(JSON.stringify(list.body)).toContain(b.body.backup_id);
  }, 60_000);
});

describe('archives built to harm, and state that lies', () => {
  /** A tar built by python's tarfile from a list of entries (paths, links, devices, sparse). */
  function crafted(id: string, extra: string): Buffer {
    const work = tempDir('roost-audit-craft-');
    const good = path.join(work, 'good.tar');
    fs.writeFileSync(good, archive(id));
    const py = `
import tarfile, io, sys
src = tarfile.open(${JSON.stringify(good)})
out = tarfile.open(fileobj=sys.stdout.buffer, mode='w|', format=tarfile.GNU_FORMAT)
def add(name, data=b'', **kw):
    ti = tarfile.TarInfo(name); ti.size = len(data)
    for k, v in kw.items(): setattr(ti, k, v)
    out.addfile(ti, io.BytesIO(data) if data else None)
${extra}
for m in src.getmembers():
    out.addfile(m, src.extractfile(m) if m.isfile() else None)
out.close()
`;
    return execFileSync('python3', ['-c', py], { maxBuffer: 1 << 28 });
  }

  it('absolute paths, .., links out, devices, another top directory: 400, nothing written anywhere', async () => {
    const id = '20250101T120000Z-ba0ba0';
    const marker = `roost-audit-${process.pid}`;
    const cases: Record<string, string> = {
      absolute: `add('/tmp/${marker}-abs', b'x')`,
      dotdot: `add('${id}/../../${marker}-dotdot', b'x')`,
      symlink_out: `add('${id}/data/evil', type=tarfile.SYMTYPE, linkname='/tmp')\nadd('${id}/data/evil/${marker}-sym', b'x')`,
      hardlink_out: `add('${id}/data/pw', type=tarfile.LNKTYPE, linkname='/etc/hostname')`,
      chardev: `add('${id}/data/null', type=tarfile.CHRTYPE, devmajor=1, devminor=3)`,
      fifo: `add('${id}/data/f', type=tarfile.FIFOTYPE)`,
      other_top: `add('other/x', b'x')`,
    };
    for (const [name, extra] of Object.entries(cases)) {
      const r = await put(id, crafted(id, extra));
      expect(r.status, `${name}: ${r.text}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${name}: ${r.text}`).toBeLessThan(500);
      expect(fs.existsSync(path.join(backupsRoot(), id)), name).toBe(false);
    }
    for (const p of [`/tmp/${marker}-abs`, `/${marker}-dotdot`, path.join(a.dataDir, 'backups', marker + '-dotdot'), `/tmp/${marker}-sym`]) expect(fs.existsSync(p), p).toBe(false);
    expect(fs.readdirSync(backupsRoot()).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('duplicate entries: the last manifest wins and must still be this backup', async () => {
    const id = '20250101T120000Z-dd0dd0';
    const m = fs.readFileSync(path.join(backupsRoot(), backupId, 'manifest.json'), 'utf8');
    const other = JSON.stringify({ ...JSON.parse(m), tenant: 'globex', id });
    // The crafted entries go first, then the good copy's: the good manifest comes last and wins.
    const ok = await put(id, crafted(id, `add('${id}/manifest.json', ${JSON.stringify(other)}.encode())`));
    expect(ok.status, ok.text).toBe(201);
    expect(ok.body.tenant).toBe('acme');
  });

  it('a state.json with a secret sealed by another key is refused before anything changes', async () => {
    const id = '20250101T120000Z-5ea1ed';
    const crypto = await import('node:crypto');
    const key = crypto.randomBytes(32);
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', key, iv);
    const ct = Buffer.concat([c.update('p.rst_forged', 'utf8'), c.final()]);
    const foreign = ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
    const body = archive(id, (dir) => {
      const f = path.join(dir, 'state.json');
      fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace(/"sealed": "v1\.[^"]+"/, `"sealed": "${foreign}"`));
    });
    expect((await put(id, body)).status).toBe(201);
    const before = await sql('SELECT count() AS n FROM ev');
    const r = await call(`${a.url}/v0/tenants/acme/backups/${id}/restore`, { method: 'POST', token: a.operatorToken, ...json({ replace: true }) });
    const j = r.status === 202 ? await waitJob(r.body.id) : r.body;
    expect(j.code, JSON.stringify(j)).toBe('CONFLICT');
    expect(j.error).toMatch(/another key/);
    expect((await sql('SELECT count() AS n FROM ev')).body.data).toEqual(before.body.data);
  }, 30_000);

  it('restoring a backup taken before workspaces were renamed and added gives exactly the backup\'s workspaces and tokens', async () => {
    const op = a.operatorToken;
    expect((await call(`${a.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'gamma' }) })).status).toBe(201);
    const t1 = (await call(`${a.url}/v0/tenants/gamma/workspaces`, { method: 'POST', token: op, ...json({ name: 'one' }) })).body.token;
    expect((await call(`${a.url}/v0/datasources?name=d&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: t1 })).status).toBe(200);
    expect((await call(`${a.url}/v0/datasources?name=d&mode=append`, { method: 'POST', token: t1, body: '1\n2\n' })).status).toBe(200);
    const b = await call(`${a.url}/v0/tenants/gamma/backups`, { method: 'POST', token: op });
    expect((await waitJob(b.body.id)).status).toBe('done');
    // Since: one renamed to uno, with a new data source; a workspace two added.
    expect((await call(`${a.url}/v0/tenants/gamma/workspaces/one`, { method: 'PATCH', token: op, ...json({ name: 'uno' }) })).status).toBe(200);
    expect((await call(`${a.url}/v0/datasources?name=e&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: t1 })).status).toBe(200);
    const t2 = (await call(`${a.url}/v0/tenants/gamma/workspaces`, { method: 'POST', token: op, ...json({ name: 'two' }) })).body.token;
    const r = await call(`${a.url}/v0/tenants/gamma/backups/${b.body.backup_id}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
    expect((await waitJob(r.body.id)).status).toBe('done');
    const ws = await call(`${a.url}/v0/tenants/gamma/workspaces`, { token: op });
    expect(ws.body.workspaces.map((w: any) => w.name)).toEqual(['one']);
    expect((await sql('SELECT count() AS n FROM d', t1)).body.data[0].n).toBe(2);
    expect((await sql('SELECT count() AS n FROM e', t1)).status).toBeGreaterThanOrEqual(400);
    expect((await sql('SELECT 1', t2)).status).toBe(401);
    // The data source added after the backup can be created again (no table left behind).
    expect((await call(`${a.url}/v0/datasources?name=e&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: t1 })).status).toBe(200);
  }, 60_000);
});

describe('backup ids and slugs with path characters', () => {
  it('every route answers a 4xx JSON error, never 5xx, and touches nothing', async () => {
    const ids = ['20250101T120000Z-a1b2c3%2F..', '20250101T120000Z-a1b2c3.tar', `${backupId}%00`, `..%2F..%2Facme%2F${backupId}`, '%2Fetc%2Fpasswd', `${backupId}%20`];
    for (const id of ids) {
      for (const [method, suffix] of [['GET', ''], ['GET', '/archive'], ['POST', '/restore'], ['PUT', '']] as const) {
        const r = await call(`${a.url}/v0/tenants/acme/backups/${id}${suffix}`, { method, token: a.operatorToken, ...(method === 'GET' ? {} : { body: method === 'PUT' ? archive(backupId.slice(0, -6) + '0a0a0a') : '{"replace":true}' }) });
        expect(r.status, `${method} ${id}${suffix}: ${r.text}`).toBeGreaterThanOrEqual(400);
        expect(r.status, `${method} ${id}${suffix}: ${r.text}`).toBeLessThan(500);
        expect(typeof r.body === 'object' && r.body.code, `${method} ${id}${suffix}`).toBeTruthy();
      }
    }
    for (const slug of ['acme%2F..%2Fbeta', 'ACME', 'acme%00']) {
      for (const [method, suffix] of [['GET', ''], ['POST', `/${backupId}/restore`], ['PUT', `/${backupId}`]] as const) {
        const r = await call(`${a.url}/v0/tenants/${slug}/backups${suffix}`, { method, token: a.operatorToken, ...(method === 'GET' ? {} : { body: '{}' }) });
        expect(r.status, `${method} ${slug}${suffix}: ${r.text}`).toBeGreaterThanOrEqual(400);
        expect(r.status, `${method} ${slug}${suffix}: ${r.text}`).toBeLessThan(500);
      }
    }
    expect(fs.readdirSync(path.join(a.dataDir, 'backups')).sort()).toEqual(fs.readdirSync(path.join(a.dataDir, 'backups')).filter((n) => /^[a-z0-9-]+$/.test(n)).sort());
  });
});

describe('roost backup: a download cut short', () => {
  it('is an error, exit 1, and leaves no file at --out', async () => {
    const http = await import('node:http');
    const good = archive(backupId);
    const srv = http.createServer((req, res) => {
      const send = (s: number, b: unknown) => { res.writeHead(s, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(b)); };
      if (req.method === 'POST') return send(202, { id: 'job-1', backup_id: backupId, status: 'waiting' });
      if (req.url?.startsWith('/v0/jobs/')) return send(200, { id: 'job-1', status: 'done', progress: { phase: 'done', percent: 100 }, result: { backup_id: backupId } });
      res.writeHead(200, { 'Content-Type': 'application/x-tar' });
      res.end(good.subarray(0, 4096));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      const out = path.join(tempDir('roost-audit-dl-'), 'x.tar');
      const r = await roost(['backup', 'acme', '--out', out], { ROOST_SERVER: `http://127.0.0.1:${(srv.address() as { port: number }).port}`, ROOST_OPERATOR_TOKEN: 'x'.repeat(40) });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/download failed: the archive arrived cut short/);
      expect(fs.existsSync(out)).toBe(false);
    } finally {
      srv.close();
    }
  });
});

describe('a tenant deleted while its backup is restored', () => {
  it('ends either restored and working, or deleted: never a tenant whose databases are gone', async () => {
    const op = a.operatorToken;
    for (let round = 0; round < 4; round++) {
      const slug = `del${round}`;
      expect((await call(`${a.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug }) })).status).toBe(201);
      const t = (await call(`${a.url}/v0/tenants/${slug}/workspaces`, { method: 'POST', token: op, ...json({ name: 'w' }) })).body.token;
      expect((await call(`${a.url}/v0/datasources?name=d&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: t })).status).toBe(200);
      expect((await call(`${a.url}/v0/datasources?name=d&mode=append`, { method: 'POST', token: t, body: '1\n2\n3\n' })).status).toBe(200);
      const b = await call(`${a.url}/v0/tenants/${slug}/backups`, { method: 'POST', token: op });
      expect((await waitJob(b.body.id)).status).toBe('done');
      const r = await call(`${a.url}/v0/tenants/${slug}/backups/${b.body.backup_id}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
      expect(r.status).toBe(202);
      await new Promise((res) => setTimeout(res, round * 60));
      expect((await call(`${a.url}/v0/tenants/${slug}`, { method: 'DELETE', token: op })).status).toBe(200);
      const j = await waitJob(r.body.id);
      const now = await call(`${a.url}/v0/tenants/${slug}`, { token: op });
      expect(['done', 'error']).toContain(j.status);
      if (now.status !== 404) {
        expect(now.status).toBe(200);
        const q = await sql('SELECT count() AS n FROM d', t);
        expect(q.status, q.text).toBe(200);
        expect(q.body.data[0].n).toBe(3);
      }
    }
  }, 60_000);
});

describe('another tenant\'s admin', () => {
  it('reaches none of a tenant\'s backups, archives, restores or jobs', async () => {
    const { startDevProvider } = await import('../auth/oidc/dev-provider.js');
    const { clientCredentialsToken } = await import('./helpers/oidc-browser.js');
    const AUD = 'https://roost.test/rival';
    const idp = await startDevProvider({ accounts: [], clients: [{ client_id: 'rival-admin', client_secret: 'rival-admin-secret-0123456789', token_claims: { groups: ['rival-admins'] } }], audience: AUD });
    try {
      const op = a.operatorToken;
      expect((await call(`${a.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'rival' }) })).status).toBe(201);
      expect((await call(`${a.url}/v0/tenants/rival/connections`, { method: 'POST', token: op, ...json({ id: 'idp', type: 'oidc', issuer: idp.issuer, client_id: 'x', accept_idp_access_tokens: true, audience: AUD }) })).status).toBe(201);
      expect((await call(`${a.url}/v0/tenants/rival/mappings`, { method: 'PUT', token: op, ...json({ rules: [{ claim: 'groups', match: { equals: 'rival-admins' }, grant: { role: 'tenant:admin' } }] }) })).status).toBeLessThan(300);
      const admin = await clientCredentialsToken(idp.issuer, 'rival-admin', 'rival-admin-secret-0123456789', AUD);
      // The admin works on its own tenant...
      expect((await call(`${a.url}/v0/tenants/rival/backups`, { token: admin })).status).toBe(200);
      // ...and reaches nothing of acme's.
      const b = await call(`${a.url}/v0/tenants/acme/backups`, { method: 'POST', token: op });
      expect(b.status).toBe(202);
      const tries: Array<[string, string, CallInit['body']]> = [
        ['GET', `/v0/tenants/acme/backups`, undefined],
        ['POST', `/v0/tenants/acme/backups`, '{}'],
        ['GET', `/v0/tenants/acme/backups/${backupId}`, undefined],
        ['GET', `/v0/tenants/acme/backups/${backupId}/archive`, undefined],
        ['POST', `/v0/tenants/acme/backups/${backupId}/restore`, '{"replace":true}'],
        ['PUT', `/v0/tenants/acme/backups/20250101T120000Z-0b0b0b`, archive('20250101T120000Z-0b0b0b')],
        ['PUT', `/v0/tenants/rival/backups/20250101T120000Z-0c0c0c`, archive('20250101T120000Z-0c0c0c')],
        ['GET', `/v0/jobs/${b.body.id}`, undefined],
      ];
      for (const [method, p, body] of tries) {
        const r = await call(`${a.url}${p}`, { method, token: admin, body });
        expect([403, 404], `${method} ${p}: ${r.status} ${r.text}`).toContain(r.status);
        expect(r.text).not.toContain(backupId.slice(-6) + '"');
      }
      // The job is no job to it (404), as a made-up id is; the denial is audited (it was in the
      // request log only) in the job's tenant, not in the asker's, where the record named the
      // job's tenant and told a real id from a made-up one (a black-box round).
      expect((await call(`${a.url}/v0/jobs/${b.body.id}`, { token: admin })).status).toBe(404);
      expect((await call(`${a.url}/v0/jobs/00000000-0000-4000-8000-000000000000`, { token: admin })).status).toBe(404);
      let denied: Array<Record<string, any>> = [];
      for (let i = 0; i < 40 && denied.length === 0; i++) {
        denied = a.logs.filter((l) => l.msg === 'audit' && l.event === 'authz.denied' && /\/v0\/jobs\//.test(String(l.resource)));
        if (denied.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(denied.map((d) => d.tenant)).toContain('acme');
      expect(denied.filter((d) => d.tenant === 'acme').every((d) => d.credential === 'another tenant')).toBe(true);
      expect(a.logs.filter((l) => l.msg === 'audit' && l.tenant === 'rival' && /\/v0\/jobs\//.test(String(l.resource)))).toEqual([]);
      expect((await waitJob(b.body.id)).status).toBe('done');
      // A backup of acme copied under rival's folder is not restorable into rival (its manifest says acme).
      const root = path.join(a.dataDir, 'backups');
      fs.cpSync(path.join(root, 'acme', backupId), path.join(root, 'rival', backupId), { recursive: true });
      const r = await call(`${a.url}/v0/tenants/rival/backups/${backupId}/restore`, { method: 'POST', token: admin, ...json({ replace: true }) });
      expect(r.status, r.text).toBe(400);
      expect((await call(`${a.url}/v0/tenants/rival/backups`, { token: admin })).body.backups).toEqual([]);
    } finally {
      await idp.close();
    }
  }, 60_000);
});

describe('events buffered when a restore starts', () => {
  it('go into the databases the restore replaces (flushed before its switch), not into the restored data', async () => {
    // Flushes every 10 min: only the ones a backup or restore asks for run during the test.
    const srv = await startServer({ dev: false, args: ['--events-flush', '600000'] });
    try {
      const op = srv.operatorToken;
      expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'gamma' }) })).status).toBe(201);
      const gt = (await call(`${srv.url}/v0/tenants/gamma/workspaces`, { method: 'POST', token: op, ...json({ name: 'w' }) })).body.token;
      expect((await call(`${srv.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: gt })).status).toBe(200);
      expect((await call(`${srv.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token: gt, body: '1\n2\n3\n' })).status).toBe(200);
      const b = await call(`${srv.url}/v0/tenants/gamma/backups`, { method: 'POST', token: op });
      expect((await pollJob(srv, op, b.body.id)).status).toBe('done');
      const pending = async () => Number(/^roost_events_buffer_pending_bytes (\d+)/m.exec((await call(`${srv.url}/metrics`, { token: op })).text)?.[1]);
      const ev = await call(`${srv.url}/v0/events?name=ev`, { method: 'POST', token: gt, body: Array.from({ length: 200 }, (_, i) => JSON.stringify({ id: 100 + i })).join('\n') });
      expect(ev.status, ev.text).toBe(202);
      expect(await pending()).toBeGreaterThan(0);
      const r = await call(`${srv.url}/v0/tenants/gamma/backups/${b.body.backup_id}/restore`, { method: 'POST', token: op, ...json({ replace: true }) });
      expect((await pollJob(srv, op, r.body.id)).status).toBe('done');
      // The restore's own flush stored them before the switch (it was refused by the restore's
      // hold on imports, and they stayed buffered, to land in the restored data later).
      expect(await pending()).toBe(0);
      const count = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM ev FORMAT JSON')}`, { token: gt });
      expect(count.body.data[0].n).toBe(3);
      const errors = await call(`${srv.url}/v0/sql?q=${encodeURIComponent("SELECT count() AS n FROM tinybird.datasources_ops_log WHERE result = 'error' FORMAT JSON")}`, { token: gt });
      expect(errors.body.data[0].n).toBe(0);
    } finally {
      await srv.stop();
    }
  }, 90_000);
});

describe('workspace databases left by a killed delete or restore', () => {
  it('are dropped by the tenant\'s next backup; named ones and other databases are kept', async () => {
    const dataDir = tempDir('roost-audit-leftover-');
    let srv = await startServer({ dev: false, dataDir });
    const op = srv.operatorToken;
    let wsDb = '';
    try {
      expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'delta' }) })).status).toBe(201);
      const ws = await call(`${srv.url}/v0/tenants/delta/workspaces`, { method: 'POST', token: op, ...json({ name: 'w' }) });
      expect(ws.status).toBe(201);
      wsDb = ws.body.database;
      expect((await call(`${srv.url}/v0/datasources?name=t&mode=create&schema=${encodeURIComponent('id UInt32')}`, { method: 'POST', token: ws.body.token })).status).toBe(200);
    } finally {
      await srv.stop();
    }
    // What a kill -9 between a workspace's delete (state) and its database's drop leaves, and
    // what a restore killed after its switch leaves: databases no workspace names.
    const { Session } = await import('chdb');
    const dbDir = path.join(dataDir, 'cells', 'delta', 'db');
    const names = (s: InstanceType<typeof Session>) => s.query('SELECT name FROM system.databases ORDER BY name', 'CSV').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    let s = new Session(dbDir);
    for (const db of ['ws_gone_0123abcd', 'ws_w_89abcdef_r0a1b2c', 'keep_me', 'ws_not_a_workspace']) {
      s.query(`CREATE DATABASE ${db}`);
      s.query(`CREATE TABLE ${db}.big (x UInt64) ENGINE = MergeTree ORDER BY x`);
      s.query(`INSERT INTO ${db}.big SELECT number FROM numbers(1000)`);
    }
    s.close();
    srv = await startServer({ dev: false, dataDir, args: ['--operator-token', op] });
    try {
      const b = await call(`${srv.url}/v0/tenants/delta/backups`, { method: 'POST', token: op });
      expect(b.status, b.text).toBe(202);
      expect((await pollJob(srv, op, b.body.id)).status).toBe('done');
      const warned = srv.logs.find((l) => String(l.msg).startsWith('dropped workspace databases'));
      expect(warned?.databases).toEqual(['ws_gone_0123abcd', 'ws_w_89abcdef_r0a1b2c']);
      // The backup holds the tenant's workspace only.
      const m = JSON.parse(fs.readFileSync(path.join(dataDir, 'backups', 'delta', b.body.backup_id, 'manifest.json'), 'utf8'));
      expect(m.workspaces.map((w: { database: string }) => w.database)).toEqual([wsDb]);
    } finally {
      await srv.stop();
    }
    s = new Session(dbDir);
    const left = names(s);
    s.close();
    expect(left).toContain(wsDb);
    expect(left).toContain('keep_me');
    expect(left).toContain('ws_not_a_workspace');
    expect(left).not.toContain('ws_gone_0123abcd');
    expect(left).not.toContain('ws_w_89abcdef_r0a1b2c');
  }, 120_000);
});
