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

  it('wrong arguments are one clear line on stderr, exit 1, nothing sent', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['tenant', 'list', '--bogus'], /unknown option --bogus/],
      [['tenant', 'delete', 'acme', '--yes=no'], /--yes takes no value/],
      [['restore', '/nonexistent', '--replace=false'], /--replace takes no value/],
      [['tenant', 'delete', 'acme', 'globex', '--yes'], /unexpected argument "globex"/],
      [['workspace', 'delete', 'acme', 'main', 'extra', '--yes'], /unexpected argument "extra"/],
      [['tenant', 'get', '--server'], /--server needs a value/],
      [['backup', 'acme', '--out', '--server', a.url], /--out needs a value/],
      [['backup', 'acme', '--out', '/etc/hostname'], /is a file, not a directory/],
      [['backup', 'acme', '--out', '/nonexistent-dir/x.tar'], /does not exist/],
      [['restore', '/etc/hostname'], /not a readable tar archive/],
      [['restore', '/dev/null'], /neither a backup directory nor a \.tar file/],
    ];
    for (const [args, msg] of cases) {
      const r = await roost(args, opEnv());
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
      expect(r.stdout).toBe('');
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
  }, 30_000);

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
