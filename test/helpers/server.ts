/**
 * Starts the real server (`node bin/roost.js serve`) on a free loopback port in
 * its own data directory, and stops it. Tests talk to it over real HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface RunningServer {
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  logs: Array<Record<string, unknown>>;
  operatorToken: string;
  /** What the server (and its cells, which share it) wrote to stderr so far. */
  stderr(): string;
  /** Sends a signal and waits for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export function tempDir(prefix = 'roost-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * `fileSizeLimitKiB` runs the server (and so its cells) under bash's `ulimit -f` (KiB): a write past
 * that size is cut short and the next one fails with EFBIG, as on a full disk.
 */
export async function startServer(opts: { dataDir?: string; args?: string[]; env?: Record<string, string>; dev?: boolean; configFromEnv?: boolean; fileSizeLimitKiB?: number } = {}): Promise<RunningServer> {
  const dataDir = opts.dataDir ?? opts.env?.ROOST_DATA ?? tempDir();
  const where = opts.configFromEnv ? [] : ['--port', '0', '--data', dataDir];
  const args = [path.join(root, 'bin/roost.js'), 'serve', ...where, ...(opts.dev === false ? [] : ['--dev']), ...(opts.args ?? [])];
  const limited = opts.fileSizeLimitKiB !== undefined;
  // `exec` keeps one process, so `proc.pid` is the server's own pid.
  const proc = spawn(limited ? '/bin/bash' : process.execPath, limited ? ['-c', `ulimit -f ${Math.floor(opts.fileSizeLimitKiB!)} && exec "$0" "$@"`, process.execPath, ...args] : args, {
    cwd: root,
    env: { ...process.env, ROOST_LOG_LEVEL: 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  proc.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`server did not start in 60 s; stderr: ${stderr}`)), 60_000);
    proc.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          logs.push(rec);
          if (rec.msg === 'listening') { clearTimeout(t); resolve(String(rec.url)); }
        } catch { /* not a log line */ }
      }
    });
    void exited.then((code) => { clearTimeout(t); reject(new Error(`server exited with ${code} before listening; stderr: ${stderr}`)); });
  });
  const tokenFile = path.join(dataDir, 'operator-token');
  const operatorToken = opts.env?.ROOST_OPERATOR_TOKEN ?? fs.readFileSync(tokenFile, 'utf8').trim();
  return {
    url, port: Number(new URL(url).port), dataDir, proc, logs, operatorToken, exited, stderr: () => stderr,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill(signal);
      return exited;
    },
  };
}

/** What call() takes: fetch's options, a bearer token, and a Buffer body (which fetch sends as bytes). */
export type CallInit = Omit<RequestInit, 'body'> & { token?: string; body?: RequestInit['body'] | Buffer };

/** fetch() returning status, headers and parsed JSON (or text). */
export async function call(url: string, init: CallInit = {}): Promise<{ status: number; headers: Headers; body: any; text: string }> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set('Authorization', `Bearer ${init.token}`);
  const res = await fetch(url, { ...init, headers } as RequestInit);
  const text = await res.text();
  let body: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json')) {
    try { body = JSON.parse(text); } catch { /* keep text */ }
  }
  return { status: res.status, headers: res.headers, body, text };
}

/**
 * SQL and uploads with one workspace token: `sql` answers the text (throws unless 200), `rows`
 * the JSONEachRow rows, `post` a POST (CSV unless the headers say otherwise), `createToken` a
 * service token with these scopes (its secret), `createDataSource` a data source with this schema
 * and these CSV rows (both throw unless 200). The server and token are read when called (tests
 * set them in beforeAll).
 */
/**
 * Requests as each tenant's token (`tokens[slug]`, filled as tenants are made): `api(slug)` has
 * `req`, `post` (CSV by default) and `sql`; `both(step)` runs a step on the embedded tenant `emb`
 * and the remote one `rem` at once (the remote-engine differential suites).
 */
export function tenantApis(srv: () => RunningServer, tokens: Record<string, string>) {
  const api = (slug: string) => {
    const req = (p: string, init: RequestInit = {}) => call(`${srv().url}${p}`, { ...init, token: tokens[slug] });
    const post = (p: string, body?: BodyInit, headers: Record<string, string> = { 'Content-Type': 'text/csv' }) => req(p, { method: 'POST', body, headers });
    const sql = (q: string) => req(`/v0/sql?q=${encodeURIComponent(q)}`);
    return { req, post, sql };
  };
  const both = async <T>(f: (a: ReturnType<typeof api>, slug: string) => Promise<T>): Promise<[T, T]> => Promise.all([f(api('emb'), 'emb'), f(api('rem'), 'rem')]);
  return { api, both };
}

export function workspaceApi(srv: () => RunningServer, token: () => string) {
  const sql = async (q: string): Promise<string> => {
    const r = await call(`${srv().url}/v0/sql?q=${encodeURIComponent(q)}`, { token: token() });
    if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
    return r.text;
  };
  const rows = async (q: string): Promise<any[]> => (await sql(`${q} FORMAT JSONEachRow`)).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const post = (p: string, body?: BodyInit, headers: Record<string, string> = {}) =>
    call(`${srv().url}${p}`, { method: 'POST', token: token(), body, headers: { 'Content-Type': 'text/csv', ...headers } });
  const ok = (what: string, r: { status: number; text: string }) => { if (r.status !== 200) throw new Error(`${what}: ${r.status} ${r.text}`); };
  const createToken = async (name: string, scopes: string[]): Promise<string> => {
    const r = await call(`${srv().url}/v0/tokens?name=${encodeURIComponent(name)}${scopes.map((s) => `&scope=${encodeURIComponent(s)}`).join('')}`, { method: 'POST', token: token() });
    ok(`token ${name}`, r);
    return r.body.token as string;
  };
  const createDataSource = async (name: string, schema: string, csv?: string): Promise<void> => {
    ok(`create ${name}`, await call(`${srv().url}/v0/datasources?name=${name}&schema=${encodeURIComponent(schema)}`, { method: 'POST', token: token() }));
    if (csv) ok(`append to ${name}`, await post(`/v0/datasources?name=${name}&mode=append`, csv));
  };
  return { sql, rows, post, createToken, createDataSource };
}

/**
 * Creates tenant `slug` (on `placement` when given) with a workspace `main` through the operator
 * API; answers the workspace's admin token (throws unless both are 201).
 */
export async function createTenant(srv: RunningServer, slug: string, placement?: unknown): Promise<string> {
  const t = await call(`${srv.url}/v0/tenants`, { method: 'POST', token: srv.operatorToken, body: JSON.stringify({ slug, ...(placement ? { placement } : {}) }) });
  if (t.status !== 201) throw new Error(`tenant ${slug}: ${t.status} ${t.text}`);
  const ws = await call(`${srv.url}/v0/tenants/${slug}/workspaces`, { method: 'POST', token: srv.operatorToken, body: JSON.stringify({ name: 'main' }) });
  if (ws.status !== 201) throw new Error(`workspace main of ${slug}: ${ws.status} ${ws.text}`);
  return ws.body.token as string;
}

/** Child processes of `pid` whose command line contains `needle`. */
export function childProcesses(pid: number, needle: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle)) out.push(Number(d));
    } catch { /* process gone */ }
  }
  return out;
}

/** Polls GET /v0/jobs/<id> every 100 ms until the job is done or failed; its record. */
export async function waitJob(srv: RunningServer, token: string, id: string, tries = 600): Promise<any> {
  for (let i = 0; i < tries; i++) {
    const j = await call(`${srv.url}/v0/jobs/${id}`, { token });
    if (j.body.status === 'done' || j.body.status === 'error') return j.body;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('job did not finish');
}

/**
 * POST with a declared length whose answer is read even when the server answers before the body
 * is all sent and closes the connection (an early 4xx: fetch() reports that as "fetch failed").
 */
export function postReadingAnswer(url: string, token: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: any; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = '';
      res.on('data', (b) => { text += b; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), text }));
    });
    req.on('error', (e) => { if (!req.writableEnded) reject(e); });
    req.end(body);
  });
}
