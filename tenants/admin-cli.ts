/**
 * The operator's commands (`roost tenant ...`, `roost workspace ...`,
 * `roost backup`, `roost restore`): an HTTP client of the running server,
 * authenticated with the operator token. Progress goes to stderr, results to stdout.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';

export const ADMIN_USAGE = `  roost tenant create <slug> [--name <name>] [--domain <d>]... [--limit <k>=<n>]...
                     [--placement-url <url> [--user <u>] [--password-file <f>] [--cluster <c>] [--allow-plain-http]]
  roost tenant list [--json] | get <slug> | delete <slug> --yes
  roost tenant update <slug> [--name <name>] [--domain <d>]... [--limit <k>=<n|none>]...
  roost workspace create <tenant> <name> | list <tenant> [--json] | get <tenant> <name>
  roost workspace rename <tenant> <name> <new name> | delete <tenant> <name> --yes
  roost backup <tenant> [--out <dir>|<file.tar>]    back a tenant up (and download it)
  roost restore <dir|file.tar> [--replace]         restore a backup (uploaded first)

client options: --server <url> (ROOST_SERVER, default http://127.0.0.1:7181),
  --token <t> (ROOST_OPERATOR_TOKEN, else read from <data>/operator-token),
  --data <dir> (ROOST_DATA, default ./data; only to find the operator token)`;

export class CliError extends Error {}

/** As tenants/backup.ts's (not imported: the CLI does not load the server's modules). */
const BACKUP_ID = /^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$/;

const REQUEST_TIMEOUT_MS = Number(process.env.ROOST_CLI_TIMEOUT_MS) > 0 ? Number(process.env.ROOST_CLI_TIMEOUT_MS) : 60_000;

/** `value` when it is what `what` should be, else a clear error (never a TypeError further on). */
function expectShape<T>(ok: boolean, value: T, what: string): T {
  if (!ok) throw new CliError(`the server's answer has no ${what}: is --server / ROOST_SERVER a Roost server?`);
  return value;
}

interface Parsed { positional: string[]; flags: Map<string, string[]> }

const BOOL_FLAGS = new Set(['--yes', '--replace', '--json', '--help', '--allow-plain-http']);
const VALUE_FLAGS = new Set(['--server', '--token', '--data', '--name', '--domain', '--limit', '--placement-url', '--user', '--password-file', '--cluster', '--out']);

export function parseArgs(argv: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h') { flags.set('--help', ['true']); continue; }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const k = eq > 0 ? a.slice(0, eq) : a;
      let v: string | undefined;
      if (BOOL_FLAGS.has(k)) {
        // `--yes=no` read as yes (and `--replace=false` as replace): a switch takes no value.
        if (eq > 0) throw new CliError(`${k} takes no value (leave it out for no)`);
        v = 'true';
      } else if (VALUE_FLAGS.has(k)) {
        v = eq > 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined || (eq < 0 && v.startsWith('--'))) throw new CliError(`${k} needs a value`);
        // `--name ''` was dropped as if left out (the tenant kept its name, and the command said done).
        if (v.trim() === '') throw new CliError(`${k} needs a value (it is empty)`);
      } else throw new CliError(`unknown option ${k}`);
      flags.set(k, [...(flags.get(k) ?? []), v]);
    } else positional.push(a);
  }
  return { positional, flags };
}

function one(p: Parsed, flag: string): string | undefined {
  return p.flags.get(flag)?.at(-1);
}

function checkFlags(p: Parsed, allowed: string[], maxPositional?: number): void {
  const common = ['--server', '--token', '--data', '--json'];
  for (const k of p.flags.keys()) if (!allowed.includes(k) && !common.includes(k)) throw new CliError(`unknown option ${k}`);
  // `roost tenant delete acme globex --yes` deleted acme alone, saying nothing of globex.
  if (maxPositional !== undefined && p.positional.length > maxPositional) throw new CliError(`unexpected argument "${p.positional[maxPositional]}" (one command at a time; see roost --help)`);
}

class Client {
  constructor(readonly server: string, readonly token: string) {}

  async request(method: string, p: string, body?: unknown, opts: { raw?: boolean; stream?: Readable; okStatuses?: number[] } = {}): Promise<any> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}` };
    let payload: BodyInit | undefined;
    if (opts.stream) { payload = Readable.toWeb(opts.stream) as unknown as BodyInit; headers['Content-Type'] = 'application/x-tar'; }
    else if (body !== undefined) { payload = JSON.stringify(body); headers['Content-Type'] = 'application/json'; }
    let res: Response;
    let text: string;
    // A server that accepts the connection and never answers must not hold the CLI for ever;
    // uploads and downloads (streams) take as long as they take.
    const signal = opts.stream || opts.raw ? undefined : AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    try {
      res = await fetch(this.server + p, { method, headers, body: payload, signal, ...(opts.stream ? { duplex: 'half' } : {}) } as RequestInit);
      if (opts.raw && res.ok) return res;
      text = await res.text();
    } catch (e) {
      if ((e as Error).name === 'TimeoutError') throw new CliError(`the server at ${this.server} did not answer ${method} ${p} within ${REQUEST_TIMEOUT_MS / 1000} s`);
      const cause = (e as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
      // fetch() refuses the ports browsers block (6000, 6667, 10080, ...) without connecting:
      // "fetch failed" sent the operator looking for a server that was running.
      if (cause?.message === 'bad port') throw new CliError(`cannot call ${this.server}: fetch() refuses port ${new URL(this.server).port || '80'} (a port browsers block, so web pages could not call it either); run the server on another --port`);
      throw new CliError(`cannot reach the server at ${this.server} (${cause?.code ?? cause?.errors?.[0]?.code ?? (e as Error).message}); is "roost serve" running? (--server / ROOST_SERVER)`);
    }
    let json: any;
    try { json = text ? JSON.parse(text) : {}; } catch { json = undefined; }
    const isObject = typeof json === 'object' && json !== null && !Array.isArray(json);
    if (!res.ok && !opts.okStatuses?.includes(res.status)) {
      const msg = isObject && typeof json.error === 'string' ? `${json.error} [${json.code}]` : `the server answered HTTP ${res.status}${res.status >= 500 ? ' (a server error; see its log, and retry)' : ''}`;
      throw new CliError(res.status === 401 ? `${msg}: check the operator token (--token / ROOST_OPERATOR_TOKEN / <data>/operator-token)` : msg);
    }
    // A proxy's HTML page or another service's answer is not printed as if it were Roost's.
    if (!isObject) throw new CliError(`the server at ${this.server} did not answer as Roost does (HTTP ${res.status}, ${res.headers.get('content-type') ?? 'no content type'}): is --server / ROOST_SERVER right?`);
    return Object.assign(json, { __status: res.status });
  }
}

function clientFrom(p: Parsed): Client {
  const server = (one(p, '--server') ?? process.env.ROOST_SERVER ?? 'http://127.0.0.1:7181').replace(/\/+$/, '');
  let url: URL;
  try { url = new URL(server); } catch { url = undefined as unknown as URL; }
  if (!url || !/^https?:$/.test(url.protocol)) throw new CliError(`--server must be an http(s) URL, got "${server.replace(/\/\/[^/@]*@/, '//…@')}"`);
  // The URL is repeated in messages: a password in it would be printed (and fetch refuses it anyway).
  if (url.username || url.password) throw new CliError('--server must not hold a user or password; the operator token authenticates (--token / ROOST_OPERATOR_TOKEN)');
  let token = one(p, '--token') ?? process.env.ROOST_OPERATOR_TOKEN;
  if (!token) {
    const file = path.join(one(p, '--data') ?? process.env.ROOST_DATA ?? './data', 'operator-token');
    try { token = fs.readFileSync(file, 'utf8').trim(); } catch {
      throw new CliError(`no operator token: set ROOST_OPERATOR_TOKEN, pass --token, or point --data at the server's data directory (${file} not readable)`);
    }
  }
  return new Client(server, token);
}

function print(p: Parsed, value: unknown): void {
  const { __status, ...rest } = value as Record<string, unknown>;
  void __status;
  process.stdout.write(JSON.stringify(rest, null, 2) + '\n');
}

function progress(msg: string): void {
  process.stderr.write(msg + '\n');
}

function parseLimits(p: Parsed, allowNone: boolean): Record<string, number | null> | undefined {
  const raw = p.flags.get('--limit');
  if (!raw) return undefined;
  const out: Record<string, number | null> = {};
  for (const r of raw) {
    const m = /^([a-z_]+)=(\d+|none)$/.exec(r);
    if (!m || (m[2] === 'none' && !allowNone)) throw new CliError(`--limit takes <name>=<whole number>${allowNone ? ' or <name>=none' : ''}, got "${r}"`);
    out[m[1]!] = m[2] === 'none' ? null : Number(m[2]);
  }
  return out;
}

async function waitJob(c: Client, jobId: string, label: string): Promise<any> {
  let last = '';
  for (;;) {
    let j;
    try { j = await c.request('GET', `/v0/jobs/${encodeURIComponent(jobId)}`); } catch (e) {
      throw new CliError(`${(e as Error).message}\n(the ${label} may still be running on the server: GET /v0/jobs/${jobId} with the operator token shows it)`);
    }
    if (!['waiting', 'working', 'done', 'error', 'cancelled'].includes(j.status)) throw new CliError(`the server's answer has no job status: is --server / ROOST_SERVER a Roost server?`);
    const pr = typeof j.progress === 'object' && j.progress ? j.progress : {};
    const line = `${label}: ${j.status}${pr.phase ? ` (${pr.phase}${pr.percent !== undefined ? ` ${pr.percent}%` : ''}${pr.bytes_total ? `, ${pr.bytes_done ?? '?'} of ${pr.bytes_total} bytes` : ''})` : ''}`;
    if (line !== last) { progress(line); last = line; }
    if (j.status === 'done') return j;
    if (j.status === 'error' || j.status === 'cancelled') throw new CliError(`${label} failed: ${j.error ?? j.status}${j.code ? ` [${j.code}]` : ''}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

function runTar(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    child.on('error', (e) => reject(new CliError(`cannot run tar: ${e.message}`)));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new CliError(`tar failed: ${err.trim()}`))));
  });
}

async function tenantCmd(p: Parsed): Promise<number> {
  const [, sub, slug] = p.positional;
  const c = () => clientFrom(p);
  switch (sub) {
    case 'create': {
      checkFlags(p, ['--name', '--domain', '--limit', '--placement-url', '--user', '--password-file', '--cluster', '--allow-plain-http'], 3);
      if (!slug) throw new CliError('usage: roost tenant create <slug> [--name <name>] [--domain <d>]...');
      const body: Record<string, unknown> = { slug };
      if (one(p, '--name')) body.name = one(p, '--name');
      if (p.flags.get('--domain')) body.domains = p.flags.get('--domain');
      const limits = parseLimits(p, false);
      if (limits) body.limits = limits;
      const url = one(p, '--placement-url');
      if (url) {
        const placement: Record<string, unknown> = { type: 'clickhouse', url };
        if (one(p, '--user')) placement.user = one(p, '--user');
        if (one(p, '--cluster')) placement.cluster = one(p, '--cluster');
        if (p.flags.has('--allow-plain-http')) placement.allow_plain_http = true;
        const pf = one(p, '--password-file');
        if (pf) {
          try { placement.password = fs.readFileSync(pf, 'utf8').replace(/\r?\n$/, ''); } catch (e) { throw new CliError(`cannot read --password-file ${pf}: ${(e as Error).message}`); }
        }
        body.placement = placement;
      } else if (one(p, '--user') || one(p, '--password-file') || one(p, '--cluster') || p.flags.has('--allow-plain-http')) {
        throw new CliError('--user, --password-file, --cluster and --allow-plain-http need --placement-url');
      }
      print(p, await c().request('POST', '/v0/tenants', body));
      return 0;
    }
    case 'list': {
      checkFlags(p, [], 2);
      const r = await c().request('GET', '/v0/tenants');
      if (p.flags.has('--json')) { print(p, r); return 0; }
      for (const t of expectShape(Array.isArray(r.tenants), r.tenants as any[], 'list of tenants')) process.stdout.write(`${t.slug}\t${t.name}\t${t.placement.type}\t${(t.domains ?? []).join(',')}\n`);
      return 0;
    }
    case 'get': {
      checkFlags(p, [], 3);
      if (!slug) throw new CliError('usage: roost tenant get <slug>');
      print(p, await c().request('GET', `/v0/tenants/${encodeURIComponent(slug)}`));
      return 0;
    }
    case 'update': {
      checkFlags(p, ['--name', '--domain', '--limit'], 3);
      if (!slug) throw new CliError('usage: roost tenant update <slug> [--name ...] [--domain ...] [--limit k=n]');
      const body: Record<string, unknown> = {};
      if (one(p, '--name')) body.name = one(p, '--name');
      if (p.flags.get('--domain')) body.domains = p.flags.get('--domain');
      const limits = parseLimits(p, true);
      if (limits) body.limits = limits;
      if (!Object.keys(body).length) throw new CliError('nothing to change: give --name, --domain or --limit');
      print(p, await c().request('PATCH', `/v0/tenants/${encodeURIComponent(slug)}`, body));
      return 0;
    }
    case 'delete': {
      checkFlags(p, ['--yes'], 3);
      if (!slug) throw new CliError('usage: roost tenant delete <slug> --yes');
      if (!p.flags.has('--yes')) throw new CliError(`deleting tenant "${slug}" removes all its data and state (backups are kept); add --yes to confirm`);
      print(p, await c().request('DELETE', `/v0/tenants/${encodeURIComponent(slug)}`));
      return 0;
    }
    default:
      throw new CliError(`unknown tenant command "${sub ?? ''}"; try: create, list, get, update, delete`);
  }
}

async function workspaceCmd(p: Parsed): Promise<number> {
  const [, sub, tenant, name, newName] = p.positional;
  if (!tenant) throw new CliError(`usage: roost workspace ${sub ?? '<command>'} <tenant> ...`);
  const base = `/v0/tenants/${encodeURIComponent(tenant)}/workspaces`;
  switch (sub) {
    case 'create':
      checkFlags(p, [], 4);
      if (!name) throw new CliError('usage: roost workspace create <tenant> <name>');
      print(p, await clientFrom(p).request('POST', base, { name }));
      progress('the workspace admin token above is shown this once; keep it');
      return 0;
    case 'list': {
      checkFlags(p, [], 3);
      const r = await clientFrom(p).request('GET', base);
      if (p.flags.has('--json')) { print(p, r); return 0; }
      for (const w of expectShape(Array.isArray(r.workspaces), r.workspaces as any[], 'list of workspaces')) process.stdout.write(`${w.name}\t${w.database}\t${w.created_at}\n`);
      return 0;
    }
    case 'get':
      checkFlags(p, [], 4);
      if (!name) throw new CliError('usage: roost workspace get <tenant> <name>');
      print(p, await clientFrom(p).request('GET', `${base}/${encodeURIComponent(name)}`));
      return 0;
    case 'rename':
      checkFlags(p, [], 5);
      if (!name || !newName) throw new CliError('usage: roost workspace rename <tenant> <name> <new name>');
      print(p, await clientFrom(p).request('PATCH', `${base}/${encodeURIComponent(name)}`, { name: newName }));
      return 0;
    case 'delete':
      checkFlags(p, ['--yes'], 4);
      if (!name) throw new CliError('usage: roost workspace delete <tenant> <name> --yes');
      if (!p.flags.has('--yes')) throw new CliError(`deleting workspace "${name}" drops its database, tokens, data sources and pipes; add --yes to confirm`);
      print(p, await clientFrom(p).request('DELETE', `${base}/${encodeURIComponent(name)}`));
      return 0;
    default:
      throw new CliError(`unknown workspace command "${sub ?? ''}"; try: create, list, get, rename, delete`);
  }
}

async function backupCmd(p: Parsed): Promise<number> {
  checkFlags(p, ['--out'], 2);
  const tenant = p.positional[1];
  if (!tenant) throw new CliError('usage: roost backup <tenant> [--out <dir>|<file.tar>]');
  const out = one(p, '--out');
  const asTar = out?.endsWith('.tar') ?? false;
  // Where the download goes is checked before the backup runs, not after it.
  if (out && asTar) {
    const st = fs.statSync(out, { throwIfNoEntry: false });
    if (st) throw new CliError(`--out ${out} already exists; give a new file name (nothing was overwritten)`);
    if (!fs.statSync(path.dirname(path.resolve(out)), { throwIfNoEntry: false })?.isDirectory()) throw new CliError(`--out ${out}: the directory ${path.dirname(path.resolve(out))} does not exist`);
  } else if (out) {
    const st = fs.statSync(out, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) throw new CliError(`--out ${out} is a file, not a directory (a file name must end in .tar)`);
  }
  const c = clientFrom(p);
  const started = await c.request('POST', `/v0/tenants/${encodeURIComponent(tenant)}/backups`, {});
  expectShape(typeof started.id === 'string' && typeof started.backup_id === 'string' && BACKUP_ID.test(started.backup_id), started, 'job id and backup id');
  progress(`backup ${started.backup_id} of tenant ${tenant} started (job ${started.id})`);
  const job = await waitJob(c, started.id, `backup ${started.backup_id}`);
  const result: Record<string, unknown> = typeof job.result === 'object' && job.result ? job.result : {};
  if (out) {
    const res = await c.request('GET', `/v0/tenants/${encodeURIComponent(tenant)}/backups/${started.backup_id}/archive`, undefined, { raw: true }) as Response;
    const file = asTar ? path.resolve(out) : path.join(os.tmpdir(), `roost-backup-${process.pid}-${Date.now()}.tar`);
    try {
      if (!asTar) fs.mkdirSync(out, { recursive: true });
      await new Promise<void>((resolve, reject) => {
        const ws = fs.createWriteStream(file, { mode: 0o600, flags: 'wx' });
        let n = 0;
        const rs = Readable.fromWeb(res.body as never);
        rs.on('data', (b: Buffer) => { n += b.length; });
        const t = setInterval(() => progress(`downloading: ${n} bytes`), 1000);
        rs.pipe(ws);
        ws.on('finish', () => { clearInterval(t); progress(`downloaded ${n} bytes`); resolve(); });
        ws.on('error', (e) => { clearInterval(t); rs.destroy(); reject(e); });
        rs.on('error', (e) => { clearInterval(t); ws.destroy(); reject(e); });
      });
      // A download the server cut short after its 200 (its tar failed) does not end with tar's end-of-archive blocks.
      if (!endsLikeTar(file)) throw new Error('the archive arrived cut short');
      if (!asTar) {
        await runTar(['-x', '-f', file, '-C', out]).catch((e: Error) => {
          // Unpacked in part (a full disk): not left behind looking like a backup, and tar's
          // complaint about every file after the first shortened to its first lines.
          fs.rmSync(path.join(out, started.backup_id), { recursive: true, force: true });
          const lines = e.message.split('\n');
          throw new Error(lines.length > 3 ? `${lines.slice(0, 3).join('\n')}\n(and ${lines.length - 3} more lines)` : e.message);
        });
      }
    } catch (e) {
      // A download cut short is not left behind looking like a backup.
      fs.rmSync(file, { force: true });
      throw new CliError(`backup ${started.backup_id} was made on the server (${String(result.directory ?? '')}) but its download failed: ${(e as Error).message}; download it again with GET /v0/tenants/${tenant}/backups/${started.backup_id}/archive`);
    }
    if (!asTar) {
      fs.rmSync(file, { force: true });
      result.local = path.resolve(out, started.backup_id);
    } else result.local = file;
  }
  print(p, result);
  return 0;
}

function endsLikeTar(file: string): boolean {
  const size = fs.statSync(file).size;
  if (size < 1024 || size % 512 !== 0) return false;
  const fd = fs.openSync(file, 'r');
  try {
    const tail = Buffer.alloc(1024);
    fs.readSync(fd, tail, 0, 1024, size - 1024);
    return tail.every((b) => b === 0);
  } finally { fs.closeSync(fd); }
}

async function restoreCmd(p: Parsed): Promise<number> {
  checkFlags(p, ['--replace'], 2);
  const src = p.positional[1];
  if (!src) throw new CliError('usage: roost restore <dir|file.tar> [--replace]');
  const st = fs.statSync(src, { throwIfNoEntry: false });
  if (!st) throw new CliError(`${src} does not exist`);
  if (!st.isFile() && !st.isDirectory()) throw new CliError(`${src} is neither a backup directory nor a .tar file`);
  let dir = path.resolve(src);
  let cleanup: string | undefined;
  try {
    if (st.isFile()) {
      cleanup = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-restore-'));
      await runTar(['-x', '-f', src, '-C', cleanup]).catch((e: Error) => { throw new CliError(`${src} is not a readable tar archive (${e.message})`); });
      const top = fs.readdirSync(cleanup);
      if (top.length !== 1) throw new CliError(`${src} is not a Roost backup archive (expected one directory inside)`);
      dir = path.join(cleanup, top[0]!);
    }
    let m: { id: string; tenant: string; format: string };
    try { m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')); } catch {
      throw new CliError(`${src} is not a complete Roost backup (no manifest.json)`);
    }
    // The manifest is input: its id names a directory and a URL, its tenant a URL (an id of
    // "../../x" copied the backup outside the temporary folder).
    if (typeof m !== 'object' || m === null || typeof m.id !== 'string' || !BACKUP_ID.test(m.id) || typeof m.tenant !== 'string' || !/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/.test(m.tenant)) {
      throw new CliError(`${src} is not a Roost backup: its manifest.json has no valid backup id and tenant`);
    }
    if (path.basename(dir) !== m.id) {
      // The server names the directory by the backup id; a renamed copy is sent under its id.
      const fixed = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-restore-'));
      fs.cpSync(dir, path.join(fixed, m.id), { recursive: true });
      if (cleanup) fs.rmSync(cleanup, { recursive: true, force: true });
      cleanup = fixed;
      dir = path.join(fixed, m.id);
    }
    const c = clientFrom(p);
    progress(`uploading backup ${m.id} of tenant ${m.tenant}`);
    const tar = spawn('tar', ['-c', '-f', '-', '-C', path.dirname(dir), m.id], { stdio: ['ignore', 'pipe', 'inherit'] });
    const up = await c.request('PUT', `/v0/tenants/${encodeURIComponent(m.tenant)}/backups/${m.id}`, undefined, { stream: tar.stdout, okStatuses: [409] });
    if (up.__status === 409) {
      // A backup of the same id on the server is used instead of this one only when it is the
      // same backup: a copy made elsewhere, changed, or another backup given this id would have
      // restored what the server held, not what was named on the command line.
      const theirs = await c.request('GET', `/v0/tenants/${encodeURIComponent(m.tenant)}/backups/${m.id}`) as Record<string, unknown>;
      const mine = m as unknown as { created_at?: unknown; data_bytes?: unknown; engine_version?: unknown; workspaces?: Array<{ name?: unknown }> };
      const differs = [
        theirs.created_at !== mine.created_at ? `created ${String(theirs.created_at)} there, ${String(mine.created_at)} here` : '',
        theirs.data_bytes !== mine.data_bytes ? `${String(theirs.data_bytes)} data bytes there, ${String(mine.data_bytes)} here` : '',
        JSON.stringify(theirs.workspaces) !== JSON.stringify((mine.workspaces ?? []).map((w) => w?.name)) ? 'other workspaces' : '',
      ].filter(Boolean);
      if (differs.length) {
        throw new CliError(`the server already has a different backup ${m.id} of tenant ${m.tenant} (${differs.join('; ')}); nothing was restored. Remove the server's copy (<data>/backups/${m.tenant}/${m.id}) to restore this one, or restore the server's with POST /v0/tenants/${m.tenant}/backups/${m.id}/restore`);
      }
      progress(`the server already has backup ${m.id} (the same manifest); using its copy`);
    } else progress('uploaded');
    const started = await c.request('POST', `/v0/tenants/${encodeURIComponent(m.tenant)}/backups/${m.id}/restore`, p.flags.has('--replace') ? { replace: true } : {}).catch((e: Error) => {
      // The server's answer speaks of the HTTP body ({"replace": true}); the CLI's way is a flag.
      if (!p.flags.has('--replace') && / \[ALREADY_EXISTS\]$/.test(e.message)) throw new CliError(`tenant "${m.tenant}" exists: add --replace to replace its data and state with the backup's`);
      throw e;
    });
    const job = await waitJob(c, started.id, `restore ${m.id}`);
    print(p, job.result);
    return 0;
  } finally {
    if (cleanup) fs.rmSync(cleanup, { recursive: true, force: true });
  }
}

/** Runs an operator command; undefined when `cmd` is not one. */
export async function runAdminCommand(argv: string[]): Promise<number | undefined> {
  const cmd = argv[0];
  const handlers: Record<string, (p: Parsed) => Promise<number>> = { tenant: tenantCmd, workspace: workspaceCmd, backup: backupCmd, restore: restoreCmd };
  const h = cmd ? handlers[cmd] : undefined;
  if (!h) return undefined;
  try {
    const p = parseArgs(argv);
    if (p.flags.has('--help')) {
      process.stdout.write(`usage:\n${ADMIN_USAGE.split('\n').filter((l, i, all) => l.includes(`roost ${cmd} `) || (i > 0 && all[i - 1]!.includes(`roost ${cmd} `) && /^\s{6,}\[/.test(l)) || l.startsWith('client options') || (/^\s+--/.test(l) && !l.includes('roost '))).join('\n')}\n`);
      return 0;
    }
    return await h(p);
  } catch (e) {
    // Every failure is one line on stderr and exit 1, never a stack trace.
    const msg = e instanceof CliError ? e.message : `${(e as Error)?.message ?? String(e)}`;
    process.stderr.write(`roost ${cmd}: ${msg}\n`);
    return 1;
  }
}
