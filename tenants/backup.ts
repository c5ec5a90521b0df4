/**
 * Backup and restore of one tenant. A backup is a directory
 * `<data>/backups/<tenant>/<id>/` holding
 * - `data/`: every workspace database of the tenant, written by ClickHouse's
 *   own `BACKUP DATABASE a, DATABASE b, ... TO File('<id>/data')` in one statement
 *   (one consistent snapshot of all the tenant's tables), run inside the tenant's cell;
 * - `state.json`: the tenant's slice of the control-plane state, taken inside the
 *   state's writer chain (no half-applied change). Secrets in it stay sealed with
 *   the server's secret key, and token secrets are only hashes;
 * - `manifest.json`, written last: a backup without it is incomplete. It names the tenant
 *   by slug and creation time: a backup is that tenant's, and a tenant created later under
 *   the same slug (after a delete) is another one, which never sees or restores it (the
 *   operator does: a tenant deleted by mistake comes back from its backups).
 *
 * Restore puts the databases back first (`RESTORE DATABASE ... FROM File(...)`)
 * and then the state slice, so no credential of the tenant works before its data
 * is there. The server restoring must have the same secret key
 * (`ROOST_SECRET_KEY` or `<data>/secret-key`): the manifest carries a value sealed
 * with the key, checked before anything is changed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { App } from '../src/app.js';
import { RoostError } from '../src/errors.js';
import { quoteIdent, quoteString, type Engine } from '../src/cells/engine.js';
import type { Tenant, Workspace } from './registry.js';
import { SLUG, WORKSPACE_NAME } from './registry.js';
import { dropWorkspaceDatabase, sweepUnnamedDatabases } from './provisioning.js';
import { checkAudienceFree, checkDomainsFree } from './claims.js';
import type { StoredConnection } from '../auth/oidc/connections.js';
import { stageTables } from '../src/ingest/stage.js';
import { quiesceImports } from '../src/ingest/import.js';
import { deleteSliceOps, restoreSliceOps, tenantSlice, NOT_TENANT_KEYED, TENANT_KEYED_REVOCATIONS, type SliceEntry } from './state-slice.js';
import type { JobProgress } from './jobs.js';

export const BACKUP_FORMAT = 'roost-backup/1';
const CANARY = 'roost backup key check';
export const BACKUP_ID = /^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$/;

export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  id: string;
  tenant: string;
  created_at: string;
  workspaces: Array<{ name: string; database: string }>;
  /** Bytes of the tenant's tables when the backup started. */
  data_bytes: number;
  /** A value sealed with the server's secret key: restore checks it opens. */
  key_check: string;
  engine_version: string;
  /**
   * The creation time of the tenant backed up: with the slug, the tenant's identity (as
   * `sameTenant` and sessions use it). A tenant deleted and created again under its slug is
   * another tenant, and its administrators never see nor restore the first one's backups.
   * Missing in backups made before it was written: their state.json's tenant record says it.
   */
  tenant_created_at?: string;
}

export function newBackupId(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z') + '-' + crypto.randomBytes(3).toString('hex');
}

export function checkBackupId(id: string): string {
  if (!BACKUP_ID.test(id)) throw new RoostError('INVALID_PARAMETER', `"${id}" is not a backup id (like 20250101T120000Z-a1b2c3)`);
  return id;
}

export function backupDir(app: App, tenant: string, id: string): string {
  return path.join(app.cells.backupsDir(tenant), checkBackupId(id));
}

function embeddedOnly(tenant: Tenant): void {
  if (tenant.placement.type !== 'embedded') {
    throw new RoostError('NOT_AVAILABLE', `tenant "${tenant.slug}" is placed on its own ClickHouse server: back its databases up with that server's BACKUP to its own storage; Roost backs up embedded cells only`);
  }
}

function dirBytes(dir: string): number {
  let n = 0;
  let entries: fs.Dirent[];
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return 0; }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else if (e.isFile()) { try { n += fs.statSync(p).size; } catch { /* racing the writer */ } }
  }
  return n;
}

/** Waits for an ASYNC BACKUP/RESTORE in the cell, reporting progress. */
async function waitOperation(app: App, engine: Engine, opId: string, done: string, progress: () => void): Promise<{ num_files: number; total_size: number }> {
  for (let missing = 0; ;) {
    const row = JSON.parse((await engine.exec(`SELECT status, error, num_files, total_size FROM system.backups WHERE id = ${quoteString(opId)} FORMAT JSONEachRow`, { format: 'JSONEachRow' })).toString('utf8').trim() || '{}') as { status?: string; error?: string; num_files?: number; total_size?: number };
    if (row.status === done) return { num_files: Number(row.num_files ?? 0), total_size: Number(row.total_size ?? 0) };
    if (row.status && /FAILED|CANCELLED/.test(row.status)) {
      const text = row.error ?? row.status;
      app.log.warn('engine backup operation failed', { operation: done === 'RESTORED' ? 'RESTORE' : 'BACKUP', error: text });
      throw new RoostError('QUERY_FAILED', `the engine's ${done === 'RESTORED' ? 'RESTORE' : 'BACKUP'} failed: ${operationError(text, app.config.dataDir)}${done === 'RESTORED' && /No such file or directory|unexpected size|Code: (?:32|33|40|228|246)\b|CORRUPTED|CHECKSUM_DOESNT_MATCH|CANNOT_READ_ALL_DATA|UNEXPECTED_END_OF_FILE/i.test(text) ? ' (the backup is damaged or incomplete: take the archive again from where it was kept)' : ''}`);
    }
    // A cell that died and restarted has forgotten the operation: its job waited for ever.
    if (!row.status && ++missing >= 5) throw new RoostError('CELL_UNAVAILABLE', `the engine's ${done === 'RESTORED' ? 'RESTORE' : 'BACKUP'} was lost (the tenant's cell restarted while it ran): nothing was kept; retry`, { retryable: true });
    progress();
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The engine's error of a BACKUP or RESTORE as the job shows it (tenant admins read jobs): its
 * stack trace and build line left out (the server's log has the whole text), and paths under the
 * server's data directory shown from there (`backups/<tenant>/<id>/data/...`), not as the
 * server's file system has them.
 */
export function operationError(text: string, dataDir: string): string {
  let t = text.replace(/[,.]?\s*Stack trace \(when copying[\s\S]*$/, '').replace(/\s*\(version [0-9.]+[^)]*\)\s*$/, '');
  // As given and as the file system resolves it (a data directory behind a symbolic link).
  let real = dataDir;
  try { real = fs.realpathSync(dataDir); } catch { /* as given */ }
  for (const d of new Set([dataDir, real])) t = t.split(d.endsWith(path.sep) ? d : d + path.sep).join('');
  return t.replace(/\bstd::__1::/g, 'std::').replace(/\s+/g, ' ').trim();
}

function asyncId(out: Buffer): string {
  const id = out.toString('utf8').split('\t')[0]?.trim();
  if (!id) throw new RoostError('INTERNAL', 'the engine did not answer with an operation id');
  return id;
}

/**
 * Writes a backup of `tenant` and returns its manifest. Progress is the bytes the
 * engine has written so far against the bytes of the tenant's tables.
 */
export async function backupTenant(app: App, tenant: Tenant, id: string, report: (p: JobProgress) => void): Promise<BackupManifest> {
  embeddedOnly(tenant);
  const dir = backupDir(app, tenant.slug, id);
  sweepIncomplete(app, tenant.slug);
  await sweepDatabases(app, tenant.slug, app.cells.engineFor(tenant));
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    return await writeBackup(app, tenant, id, dir, report);
  } catch (e) {
    // A failed backup leaves nothing: a half-written directory is not a backup, and it kept its disk space.
    // (The engine may still be writing into it — a tenant deleted mid-backup: ENOTEMPTY. Retried,
    // and a removal that fails all the same is logged and swept later, never the job's error: it
    // hid why the backup failed.)
    try {
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (rm) {
      app.log.warn('a failed backup\'s directory could not be removed yet (swept at the next backup)', { tenant: tenant.slug, backup: id, err: rm });
    }
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG' || /No space left|Disk quota exceeded|File too large|Cannot write|CANNOT_WRITE/i.test((e as Error).message ?? '')) {
      throw new RoostError('INSUFFICIENT_STORAGE', `the backup could not be written to the server's disk (full, or a file size limit): nothing was kept; free space and retry (${(e as Error).message})`, { retryable: true });
    }
    throw e;
  }
}

/**
 * Removes backup directories of the tenant without a manifest: a server killed (or a cell
 * lost) mid-backup left them. Called with the tenant claimed (no backup or restore of it
 * runs), and an upload puts a directory in place only once it holds its manifest.
 */
export function sweepIncomplete(app: App, tenant: string): void {
  const root = app.cells.backupsDir(tenant);
  let names: string[];
  try { names = fs.readdirSync(root); } catch { return; }
  for (const n of names) {
    if (BACKUP_ID.test(n) && !fs.existsSync(path.join(root, n, 'manifest.json'))) fs.rmSync(path.join(root, n), { recursive: true, force: true });
  }
}

async function writeBackup(app: App, tenant: Tenant, id: string, dir: string, report: (p: JobProgress) => void): Promise<BackupManifest> {
  const engine = app.cells.engineFor(tenant);
  report({ phase: 'state' });
  // Events acknowledged (202) before the backup started go in it: they were only in the
  // buffer, so a backup right after them held none, and its restore lost them.
  const mark = app.events?.mark() ?? 0;
  await app.events?.flush();
  // A flush of everything skips a data source waiting to retry a failed flush (a cell restarted
  // a moment ago): each is tried once more, and a backup without them is no backup — it said done
  // and its restore lost those events.
  for (const o of app.events?.pendingBefore(tenant.slug, mark) ?? []) await app.events!.flush(o);
  const left = app.events?.pendingBefore(tenant.slug, mark) ?? [];
  if (left.length) {
    throw new RoostError('ENGINE_UNAVAILABLE', `events acknowledged before the backup could not be written into the engine yet (data sources ${left.map((o) => `${o.workspace}.${o.datasource}`).join(', ')}); no backup was made: retry once they are (see the server log)`, { retryable: true });
  }
  // The state slice (read inside the writer chain, one consistent version) and the engine's
  // BACKUP are two moments: a data source created or dropped between them gave a backup whose
  // tables were not its state's (a restored table no data source names, or a data source
  // without its table). The backup's tables are compared with the state before and after it,
  // and it is taken again (up to 6 times) when neither matches.
  const readSlice = () => app.state.transact((s) => ({ ops: [], result: structuredClone(tenantSlice(s, tenant.slug)) }));
  // The engine's tables before the slice is read: a table no data source names that was there
  // before and is still there after the backup is a leftover, not a change during it.
  const tablesNow = () => engineTables(engine, app.state.list<Workspace>('workspaces', tenant.slug));
  let tablesBefore = await tablesNow();
  let slice = await readSlice();
  let workspaces = workspacesOf(slice);
  let dataBytes = 0;
  for (let attempt = 1; workspaces.length; attempt++) {
    dataBytes = await backupDatabases(app, engine, id, dir, workspaces, report);
    if (tablesMatch(dir, slice, workspaces)) break;
    const after = await readSlice();
    if (sameDatabases(workspaces, workspacesOf(after))) {
      const tablesAfter = await tablesNow();
      const stale = new Set([...tablesBefore].filter((t) => tablesAfter.has(t)));
      if (tablesMatch(dir, after, workspaces, { before: slice, stale })) { slice = after; break; }
    }
    fs.rmSync(path.join(dir, 'data'), { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    if (attempt >= 6) throw new RoostError('CONFLICT', `data sources or workspaces of tenant "${tenant.slug}" kept being created or dropped during the backup: nothing was kept; retry when they settle`, { retryable: true, headers: { 'Retry-After': '5' } });
    app.log.info('backup taken again: data sources changed while it ran', { tenant: tenant.slug, backup: id, attempt });
    await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 200)));
    tablesBefore = await tablesNow();
    slice = await readSlice();
    workspaces = workspacesOf(slice);
  }
  // The backup is of the tenant the request was authorized for: one deleted (and maybe created
  // again under the slug) since holds another tenant's state, which must not be filed as its.
  const saved = slice.find((e) => e.path[0] === 'tenants' && e.path[1] === tenant.slug)?.value as Tenant | undefined;
  if (saved?.createdAt !== tenant.createdAt) throw new RoostError('UNKNOWN_TENANT', `tenant "${tenant.slug}" was deleted during the backup: nothing was kept`);
  writeSynced(path.join(dir, 'state.json'), JSON.stringify({ entries: slice }, null, 1));
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT, id, tenant: tenant.slug, created_at: new Date().toISOString(), workspaces, data_bytes: dataBytes,
    key_check: app.secrets.seal(CANARY), engine_version: await engine.version().catch(() => ''), tenant_created_at: tenant.createdAt,
  };
  const tmp = path.join(dir, 'manifest.json.tmp');
  fs.writeFileSync(tmp, JSON.stringify(manifest, null, 1), { mode: 0o600 });
  const fd = fs.openSync(tmp, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, path.join(dir, 'manifest.json'));
  report({ phase: 'done', bytes_done: dataBytes, bytes_total: dataBytes, percent: 100 });
  return manifest;
}

function workspacesOf(slice: SliceEntry[]): Array<{ name: string; database: string }> {
  return slice.filter((e) => e.path[0] === 'workspaces').flatMap((e) => Object.values(e.value as Record<string, Workspace>)).map((w) => ({ name: w.name, database: w.database })).sort((x, y) => x.name.localeCompare(y.name));
}

function sameDatabases(a: Array<{ name: string; database: string }>, b: Array<{ name: string; database: string }>): boolean {
  return a.length === b.length && a.every((w, i) => w.name === b[i]!.name && w.database === b[i]!.database);
}

/** Writes a file and fsyncs it (a manifest must not name a state.json a power cut left empty). */
function writeSynced(file: string, text: string): void {
  const fd = fs.openSync(file, 'w', 0o600);
  try { fs.writeSync(fd, text); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

/** Runs the engine's BACKUP of the workspaces' databases into `<dir>/data`; the bytes of their tables. */
async function backupDatabases(app: App, engine: Engine, id: string, dir: string, workspaces: Array<{ name: string; database: string }>, report: (p: JobProgress) => void): Promise<number> {
  const dbs = workspaces.map((w) => quoteString(w.database)).join(', ');
  const dataBytes = Number((await engine.exec(`SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database IN (${dbs})`)).toString('utf8').trim()) || 0;
  report({ phase: 'databases', bytes_done: 0, bytes_total: dataBytes, percent: 0 });
  // Stage tables of imports in progress are scratch and are left out. ClickHouse's grammar
  // lets only the last DATABASE of a BACKUP carry EXCEPT TABLES, so the database with the
  // most of them goes last; others (imports running in several workspaces at once) stay in,
  // and the cell's stage sweep drops them a day after a restore.
  const scratch = await stageTables(engine, { databases: workspaces.map((w) => w.database) });
  const count = (db: string) => scratch.filter((t) => t.database === db).length;
  const ordered = [...workspaces].sort((x, y) => count(x.database) - count(y.database));
  const last = ordered[ordered.length - 1]!;
  const skip = scratch.filter((t) => t.database === last.database).map((t) => `${quoteIdent(t.database)}.${quoteIdent(t.name)}`);
  const what = ordered.map((w) => `DATABASE ${quoteIdent(w.database)}`).join(', ') + (skip.length ? ` EXCEPT TABLES ${skip.join(', ')}` : '');
  const op = asyncId(await engine.exec(`BACKUP ${what} TO File(${quoteString(`${id}/data`)}) ASYNC`));
  await waitOperation(app, engine, op, 'BACKUP_CREATED', () => {
    // The parts' files written so far (the backup's metadata beside them is not in the total),
    // never more than the total: a progress past 100% reads as a fault.
    const done = Math.min(dirBytes(path.join(dir, 'data', 'data')), dataBytes);
    report({ phase: 'databases', bytes_done: done, bytes_total: dataBytes, percent: dataBytes ? Math.min(99, Math.floor((done / dataBytes) * 100)) : 0 });
  });
  return dataBytes;
}

/** The tables of the workspaces' databases, as `<database>\0<table>`. */
async function engineTables(engine: Engine, workspaces: Array<{ database: string }>): Promise<Set<string>> {
  if (!workspaces.length) return new Set();
  const dbs = workspaces.map((w) => quoteString(w.database)).join(', ');
  const out = (await engine.exec(`SELECT database, name FROM system.tables WHERE database IN (${dbs})`, { format: 'JSONCompactEachRow' })).toString('utf8');
  return new Set(out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as [string, string]).join('\0')));
}

/** ClickHouse's file names escape every byte but [A-Za-z0-9_] as %XX. */
function unescapeFileName(n: string): string {
  return Buffer.from(n.replace(/%([0-9A-Fa-f]{2})|([^%]+)/g, (m, hex: string | undefined) => (hex ? String.fromCharCode(parseInt(hex, 16)) : m)), 'latin1').toString('utf8');
}

/**
 * Whether the tables the BACKUP wrote (`data/metadata/<db>/<table>.sql`) are those the
 * slice's data sources name: each data source's table there, and nothing but data source
 * tables, their quarantines and import stage tables.
 */
function tablesMatch(dir: string, slice: SliceEntry[], workspaces: Array<{ name: string; database: string }>, leftovers?: { before: SliceEntry[]; stale: Set<string> }): boolean {
  const tablesOf = (sl: SliceEntry[], ws: string) => new Set(Object.values(((sl.find((e) => e.path[0] === 'datasources')?.value ?? {}) as Record<string, Record<string, { table?: string }>>)[ws] ?? {})
    .map((d) => d.table).filter((t): t is string => typeof t === 'string'));
  for (const w of workspaces) {
    const expected = tablesOf(slice, w.name);
    // Tables no data source named before the backup nor after it, which the engine had before
    // the backup and still has after it (left by a drop killed between its state change and its
    // DROP TABLE; a create of the name drops them first), are no sign of a change during the
    // backup: taken again, it failed the same way every time. A data source created and dropped
    // while the backup ran is named by neither state either, but its table came and went: that
    // backup holds a table its state does not name, and is taken again.
    const named = leftovers ? new Set([...expected, ...tablesOf(leftovers.before, w.name)]) : undefined;
    let files: string[] = [];
    try { files = fs.readdirSync(path.join(dir, 'data', 'metadata', w.database)); } catch { /* a database without tables */ }
    const found = new Set(files.filter((f) => f.endsWith('.sql')).map((f) => unescapeFileName(f.slice(0, -4))).filter((t) => !t.includes('__stage_')));
    for (const t of expected) if (!found.has(t)) return false;
    const base = (t: string) => (t.endsWith('_quarantine') ? t.slice(0, -'_quarantine'.length) : t);
    for (const t of found) {
      if (expected.has(t) || (t.endsWith('_quarantine') && expected.has(base(t)))) continue;
      if (named && !named.has(t) && !named.has(base(t)) && leftovers!.stale.has(`${w.database}\0${t}`)) continue;
      return false;
    }
  }
  return true;
}

/**
 * Refuses (400) a backup directory holding anything but directories and regular files:
 * an uploaded archive (tar as root creates them) could carry device nodes, FIFOs or
 * sockets, which the engine's RESTORE would then read (a disk's raw bytes, or a FIFO
 * that blocks the restore for ever). Backups never hold them.
 */
export function checkBackupFiles(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) checkBackupFiles(p);
    else if (!e.isFile()) throw new RoostError('BAD_REQUEST', `the backup holds ${e.isSymbolicLink() ? 'a symbolic link' : 'a special file (device, FIFO or socket)'} (${e.name}); backups hold only directories and regular files`);
  }
}

export function readManifest(dir: string, opts: { placed?: boolean } = {}): BackupManifest {
  let m: BackupManifest;
  try {
    m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as BackupManifest;
  } catch {
    throw noBackup(path.basename(dir));
  }
  if (typeof m !== 'object' || m === null || m.format !== BACKUP_FORMAT) {
    // A later format says so and what to do (it read "not a roost-backup/1 backup", no more).
    const format = typeof m === 'object' && m !== null && typeof (m as { format?: unknown }).format === 'string' ? (m as { format: string }).format : undefined;
    const later = format !== undefined && /^roost-backup\/(\d+)$/.exec(format);
    if (later && Number(later[1]) > Number(BACKUP_FORMAT.split('/')[1])) {
      throw new RoostError('BAD_REQUEST', `this backup is in format ${format}, written by a later version of Roost; this server reads ${BACKUP_FORMAT}: restore it on a server of that version or later`);
    }
    throw new RoostError('BAD_REQUEST', `not a ${BACKUP_FORMAT} backup${format !== undefined ? ` (its manifest.json says format ${JSON.stringify(format.slice(0, 60))})` : ''}`);
  }
  const bad = manifestProblem(m);
  if (bad) throw new RoostError('BAD_REQUEST', `the backup's manifest.json is damaged: ${bad}`);
  // In place (`<backups>/<tenant>/<id>`), a backup belongs to the tenant its folder names: a
  // copy of tenant A's backup put under tenant B's folder was listed to B's admins. (The id
  // is the folder's: the engine reads `<id>/data`.)
  if (opts.placed !== false && path.basename(path.dirname(dir)) !== m.tenant) {
    throw new RoostError('BAD_REQUEST', `the folder of tenant "${path.basename(path.dirname(dir))}" holds a backup of tenant "${m.tenant}": a backup is only used from its own tenant's folder`);
  }
  return m;
}

/**
 * What is wrong with a manifest's fields, if anything. Every field is read by the list,
 * the restore and the CLI: one of the wrong type (an uploaded archive's manifest is
 * input) answered 500 at upload and then broke the listing of every backup of the tenant.
 */
function manifestProblem(m: BackupManifest): string | undefined {
  if (typeof m.id !== 'string' || !BACKUP_ID.test(m.id)) return 'id is not a backup id';
  if (typeof m.tenant !== 'string' || !SLUG.test(m.tenant)) return 'tenant is not a tenant slug';
  if (typeof m.created_at !== 'string' || Number.isNaN(Date.parse(m.created_at))) return 'created_at is not a date';
  if (typeof m.data_bytes !== 'number' || !Number.isSafeInteger(m.data_bytes) || m.data_bytes < 0) return 'data_bytes is not a byte count';
  if (typeof m.key_check !== 'string') return 'key_check is missing';
  if (typeof m.engine_version !== 'string') return 'engine_version is not a string';
  if (m.tenant_created_at !== undefined && (typeof m.tenant_created_at !== 'string' || Number.isNaN(Date.parse(m.tenant_created_at)))) return 'tenant_created_at is not a date';
  if (!Array.isArray(m.workspaces)) return 'workspaces is not a list';
  const names = new Set<string>();
  const dbs = new Set<string>();
  for (const w of m.workspaces as unknown[]) {
    const x = w as { name?: unknown; database?: unknown } | null;
    if (typeof x !== 'object' || x === null || typeof x.name !== 'string' || typeof x.database !== 'string' || !WORKSPACE_NAME.test(x.name) || !/^ws_[a-z0-9_]{1,200}$/.test(x.database)) return 'a workspace is not {name, database} with a workspace name and a workspace database (ws_...)';
    if (names.has(x.name) || dbs.has(x.database)) return `workspace ${JSON.stringify(x.name)} is listed twice`;
    names.add(x.name);
    dbs.add(x.database);
  }
  return undefined;
}

/** The answer for a backup that is not there, or not the asker's: the two are not told apart. */
export function noBackup(id: string): RoostError {
  return new RoostError('NOT_FOUND', `no complete backup at ${id} (manifest.json missing or unreadable)`);
}

/**
 * The creation time of the tenant a backup is of (its identity beside the slug): the
 * manifest's, or for a backup made before manifests carried it, its state.json's tenant
 * record's. Undefined when neither says: such a backup is the operator's alone.
 */
export function backupOwner(app: App, slug: string, m: BackupManifest): string | undefined {
  if (m.tenant_created_at !== undefined) return m.tenant_created_at;
  try {
    const { entries } = JSON.parse(fs.readFileSync(path.join(backupDir(app, slug, m.id), 'state.json'), 'utf8')) as { entries: SliceEntry[] };
    const t = entries.find((e) => e.path[0] === 'tenants' && e.path[1] === slug)?.value as Tenant | undefined;
    return typeof t?.createdAt === 'string' ? t.createdAt : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether backup `m` is of `tenant` itself, not of an earlier tenant of the same slug
 * (deleted, then the slug reused): only then may its administrators see, download or restore it.
 */
export function isBackupOf(app: App, tenant: Tenant, m: BackupManifest): boolean {
  return m.tenant === tenant.slug && backupOwner(app, tenant.slug, m) === tenant.createdAt;
}

/** Complete backups of a tenant on disk, newest first. */
export function listBackups(app: App, tenant: string): BackupManifest[] {
  const root = app.cells.backupsDir(tenant);
  let names: string[];
  try { names = fs.readdirSync(root); } catch { return []; }
  const out: BackupManifest[] = [];
  for (const n of names) {
    if (!BACKUP_ID.test(n)) continue;
    try { out.push(readManifest(path.join(root, n))); } catch { /* incomplete */ }
  }
  return out.sort((a, b) => b.id.localeCompare(a.id));
}

/** Refuses (409) a backup sealed with another secret key than this server's. */
export function checkBackupKey(app: App, m: BackupManifest): void {
  try {
    if (app.secrets.open(m.key_check) !== CANARY) throw new Error('mismatch');
  } catch {
    throw new RoostError('CONFLICT', 'this backup was made by a server with another secret key: start this server with the same ROOST_SECRET_KEY (or <data>/secret-key) as the one that made it');
  }
}

/**
 * Roots whose keys are hashes, not tenant slugs: their entries say their tenant in the
 * value. Everywhere else the key is the slug, and only the tenant's own may be restored
 * (a value saying `tenant: <slug>` at `mappings/<other>` must not replace another
 * tenant's rules, connections or tenant record).
 */
const HASH_KEYED_ROOTS = new Set(['tokenHashes', 'oidcPending', 'samlPending', 'samlReplay']);

/** Checks that every entry of a saved slice belongs to `tenant` (a backup cannot write another tenant's state). */
export function checkSlice(entries: SliceEntry[], tenant: string): void {
  for (const e of entries) {
    const p = e.path;
    const ok = Array.isArray(p) && p.every((x) => typeof x === 'string') && (
      (p.length === 2 && p[0] !== 'revocations' && ((p[1] === tenant && !NOT_TENANT_KEYED.has(p[0]!)) || (HASH_KEYED_ROOTS.has(p[0]!) && typeof e.value === 'object' && e.value !== null && (e.value as { tenant?: unknown }).tenant === tenant)))
      || (p.length === 3 && p[0] === 'revocations' && TENANT_KEYED_REVOCATIONS.has(p[1]!) && p[2] === tenant));
    if (!ok) throw new RoostError('BAD_REQUEST', `the backup's state holds an entry outside tenant "${tenant}" (${JSON.stringify(p)}); refusing it`);
  }
}

/** A value in `v1.<iv>.<tag>.<ciphertext>` form, as auth/secrets.ts seals them. */
const SEALED = /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]*$/;

/**
 * Refuses (409) a saved slice holding a sealed value this server's key does not open. The
 * manifest's key check proves only the manifest: a state.json from another server (or
 * edited) beside a copied manifest restored connections and tokens whose secrets nothing
 * could open any more.
 */
export function checkSealed(app: App, entries: SliceEntry[]): void {
  const walk = (v: unknown, at: string): void => {
    if (typeof v === 'string') {
      if (!SEALED.test(v)) return;
      try { app.secrets.open(v); } catch {
        throw new RoostError('CONFLICT', `the backup's state holds a secret sealed with another key (${at}): it was not made by a server with this secret key, or it was changed; nothing was restored`);
      }
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}[${i}]`));
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`);
  };
  for (const e of entries) walk(e.value, e.path.join('/'));
}

/**
 * Tenants with a backup or restore running: one at a time per tenant (two restores
 * would drop each other's databases; a backup during a restore would mix both).
 */
const busy = new Map<string, string>();

/** Claims the tenant for a backup or restore, or refuses (409) while another runs; returns the release. */
export function claimTenant(slug: string, kind: string): () => void {
  const other = busy.get(slug);
  if (other) throw new RoostError('CONFLICT', `a ${other} of tenant "${slug}" is running: wait for its job to finish`);
  busy.set(slug, kind);
  let released = false;
  return () => { if (!released) { released = true; busy.delete(slug); } };
}

/** Suffix of the databases a restore writes (`<workspace database>_r<6 hex>`); workspace creation never ends a name so. */
const RESTORED_SUFFIX = /_r[0-9a-f]{6}$/;

/** sweepUnnamedDatabases for `slug`, logged. */
async function sweepDatabases(app: App, slug: string, engine: Engine): Promise<void> {
  const named = () => new Set(app.state.list<Workspace>('workspaces', slug).map((w) => w.database));
  const dropped = await sweepUnnamedDatabases(engine, named);
  if (dropped.length) app.log.warn('dropped workspace databases no workspace names (left by a killed delete or restore)', { tenant: slug, databases: dropped });
}

/**
 * Restores backup `id` of `tenant`. When the tenant exists, `replace` must be
 * set: its current workspace databases and state are replaced.
 *
 * All or nothing, even if the server is killed midway: the backup's databases are
 * restored under new names (`<database>_r<6 hex>`) beside the tenant's current
 * ones, and one state change then switches the tenant to them (its workspaces name
 * the new databases). Until that change the tenant is as it was; after it, fully
 * restored. The old databases are dropped last; a restore killed before the switch
 * leaves `_r` databases no workspace names, which the next restore drops.
 *
 * `owner` (a tenant administrator's restore): the creation time of the administrator's
 * tenant. The backup must be of that very tenant, not of an earlier one of the slug, and the
 * tenant must still be that one when the restore switches.
 */
export async function restoreTenant(app: App, slug: string, id: string, opts: { replace: boolean; keepTenantRecord?: boolean; owner?: string }, report: (p: JobProgress) => void): Promise<{ tenant: string; workspaces: number; state_entries: number }> {
  const dir = backupDir(app, slug, id);
  const m = readManifest(dir);
  if (m.tenant !== slug) throw new RoostError('BAD_REQUEST', `backup ${id} is of tenant "${m.tenant}", not "${slug}"`);
  checkBackupKey(app, m);
  checkBackupFiles(dir);
  let entries: SliceEntry[];
  try {
    entries = (JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as { entries: SliceEntry[] }).entries;
    if (!Array.isArray(entries)) throw new Error('no entries');
  } catch {
    throw new RoostError('BAD_REQUEST', `backup ${id} has no readable state.json: the backup is incomplete or damaged`);
  }
  checkSlice(entries, slug);
  checkSealed(app, entries);
  const saved = entries.find((e) => e.path[0] === 'tenants' && e.path[1] === slug)?.value as Tenant | undefined;
  if (!saved) throw new RoostError('BAD_REQUEST', 'the backup\'s state has no tenant record');
  if (m.tenant_created_at !== undefined && saved.createdAt !== m.tenant_created_at) throw new RoostError('BAD_REQUEST', `backup ${id}'s manifest and state are of two different tenants "${slug}" (created ${m.tenant_created_at} and ${String(saved.createdAt)}): the backup is damaged`);
  // A tenant administrator restores backups of its own tenant only, never one of an earlier
  // tenant of the slug (the route checked it; checked again on the state the restore reads).
  if (opts.owner !== undefined && saved.createdAt !== opts.owner) throw noBackup(id);
  embeddedOnly(saved);
  const existing = app.state.get<Tenant>('tenants', slug);
  if (opts.owner !== undefined && existing?.createdAt !== opts.owner) throw new RoostError('CONFLICT', `tenant "${slug}" was deleted meanwhile: nothing was restored`);
  if (existing && !opts.replace) throw new RoostError('ALREADY_EXISTS', `tenant "${slug}" exists: restore with {"replace": true} to replace its data and state with the backup's`);
  if (existing) embeddedOnly(existing);
  const engine = app.cells.engineFor(existing ?? saved);
  // The saved workspaces must be the manifest's: the databases restored are the manifest's.
  const savedWs = entries.filter((e) => e.path[0] === 'workspaces').flatMap((e) => Object.values(e.value as Record<string, Workspace>));
  const inManifest = new Set(m.workspaces.map((w) => w.database));
  for (const w of savedWs) {
    if (!w || typeof w.database !== 'string' || !inManifest.has(w.database)) throw new RoostError('BAD_REQUEST', `the backup's state names a workspace database its manifest does not hold (${JSON.stringify(w?.database)})`);
  }
  report({ phase: 'databases', bytes_done: 0, bytes_total: m.data_bytes, percent: 0 });
  // Leftovers of restores killed before their switch or before their cleanup, and of killed
  // workspace deletes: workspace databases no workspace names.
  await sweepDatabases(app, slug, engine);
  const suffix = '_r' + crypto.randomBytes(3).toString('hex');
  const rename = new Map(m.workspaces.map((w) => [w.database, w.database.replace(RESTORED_SUFFIX, '') + suffix]));
  if (m.workspaces.length) {
    const what = m.workspaces.map((w) => `DATABASE ${quoteIdent(w.database)} AS ${quoteIdent(rename.get(w.database)!)}`).join(', ');
    try {
      const op = asyncId(await engine.exec(`RESTORE ${what} FROM File(${quoteString(`${id}/data`)}) ASYNC`));
      await waitOperation(app, engine, op, 'RESTORED', () => {
        report({ phase: 'databases', bytes_total: m.data_bytes });
      });
      // RESTORE copies the parts without reading them through: a part whose bytes changed in the
      // archive (its tar still valid) was restored, the job said done, and its data source then
      // answered CHECKSUM_DOESNT_MATCH. Every restored table is checked before the switch.
      report({ phase: 'check', percent: 90 });
      for (const db of rename.values()) {
        const tables = (await engine.exec(`SELECT name FROM system.tables WHERE database = ${quoteString(db)} AND engine LIKE '%MergeTree' ORDER BY name`, { format: 'TSV' })).toString('utf8').split('\n').filter(Boolean);
        for (const t of tables) {
          const ok = (await engine.exec(`CHECK TABLE ${quoteIdent(db)}.${quoteIdent(t)} SETTINGS check_query_single_value_result = 1`, { format: 'TSV' })).toString('utf8').trim();
          if (ok !== '1') throw new RoostError('BAD_REQUEST', `the backup's data is damaged: table ${t} of workspace database ${[...rename.entries()].find(([, v]) => v === db)?.[0] ?? db} fails its checksum check; nothing was restored. This server's copy of the backup is the damaged one: remove ${backupDir(app, slug, id)} and upload the archive again from where it was kept (an upload of the same backup reuses the copy the server has)`);
        }
      }
    } catch (e) {
      for (const db of rename.values()) await dropWorkspaceDatabase(engine, db).catch(() => {});
      throw e;
    }
  }
  report({ phase: 'state', percent: 95 });
  // No import may span the switch to the restored databases (it would be answered after it
  // with its rows in a database dropped below): new ones are refused until the end, and the
  // switch waits for the running ones.
  const reopen = await quiesceImports(slug);
  try {
    // Events acknowledged before the switch go into the databases it replaces, like imports
    // answered before it; flushed after it, they landed in the restored data, which then
    // held rows the backup never had. (New ones are refused from the quiesce on; this flush
    // is let through it, and the switch runs with no flush beside it.)
    await app.events?.flush();
    // A flush of everything skips a data source waiting to retry a failed flush: each left is tried once more.
    for (const o of app.events?.pendingOwnersOf(slug) ?? []) await app.events!.flush(o);
    const between = <T>(fn: () => Promise<T>): Promise<T> => (app.events ? app.events.betweenFlushes(fn) : fn());
    /** Events still buffered would be flushed after the switch, into the restored data: no switch then. */
    const refuseIfBuffered = (): void => {
      const left = app.events?.pendingOwnersOf(slug) ?? [];
      if (left.length) {
        throw new RoostError('ENGINE_UNAVAILABLE', `events acknowledged before the restore could not be written yet (data sources ${left.map((o) => `${o.workspace}.${o.datasource}`).join(', ')}); nothing was restored: retry the restore once they are (see the server log)`, { retryable: true, headers: { 'Retry-After': '5' } });
      }
    };
    const restored = entries.map((e) => (e.path[0] === 'workspaces'
      ? { path: e.path, value: Object.fromEntries(Object.entries(e.value as Record<string, Workspace>).map(([k, w]) => [k, { ...w, database: rename.get(w.database)! }])) }
      : e));
    let old: string[] = [];
    try {
      old = await between(() => { refuseIfBuffered(); return app.state.transact((s) => {
        const now = s.get<Tenant>('tenants', slug);
        // Deleted while its backup was restored: the delete removed the cell directory, the
        // databases just restored with it; putting the state back made a tenant whose
        // workspaces name databases that are gone.
        if (existing && !now) throw new RoostError('CONFLICT', `tenant "${slug}" was deleted while the backup was restored: nothing was restored; restore again to bring it back`);
        // Deleted and created again meanwhile: another tenant, which this restore was not asked to replace.
        if (existing && now && now.createdAt !== existing.createdAt) throw new RoostError('CONFLICT', `tenant "${slug}" was deleted and created again while the backup was restored: nothing was restored`);
        if (now && !opts.replace) throw new RoostError('ALREADY_EXISTS', `tenant "${slug}" was created while the backup was restored: restore with {"replace": true}`);
        const before = now ? s.list<Workspace>('workspaces', slug).map((w) => w.database) : [];
        const current = now ? tenantSlice(s, slug) : [];
        const currentAt = (p: string[]) => current.find((c) => c.path.length === p.length && c.path.every((x, i) => x === p[i]));
        // Revocations are never rolled back: a session revoked after the backup stays revoked.
        const revocations = current.filter((c) => c.path[0] === 'revocations' && !restored.some((e) => e.path.length === c.path.length && e.path.every((x, i) => x === c.path[i])));
        const put = [...restored.map((e) => {
          if (e.path[0] === 'revocations') { const c = currentAt(e.path); return c ? { path: e.path, value: laterCut(c.value, e.value) } : e; }
          // A tenant administrator restores the data and the tenant's own settings, not the operator's (limits, domains, placement).
          if (opts.keepTenantRecord && now && e.path[0] === 'tenants') return { path: e.path, value: now };
          return e;
        }), ...revocations];
        // What one tenant holds alone may have gone to another tenant since the backup: the
        // restore is refused (nothing changed) rather than bringing back a second claim.
        for (const e of put) {
          if (e.path[0] === 'tenants') checkDomainsFree(s, slug, (e.value as Tenant).domains);
          if (e.path[0] === 'connections') {
            const conns = (e.path.length === 2 ? Object.values(e.value as Record<string, StoredConnection>) : [e.value]) as StoredConnection[];
            for (const c of conns) checkAudienceFree(s, { ...c, tenant: slug }, { otherTenants: true, operator: !opts.keepTenantRecord });
          }
        }
        return { ops: [...(now ? deleteSliceOps(s, slug) : []), ...restoreSliceOps(put)], result: before };
      }); });
    } catch (e) {
      for (const db of rename.values()) await dropWorkspaceDatabase(engine, db).catch(() => {});
      throw e;
    }
    report({ phase: 'cleanup', percent: 98 });
    const kept = new Set(rename.values());
    for (const db of old) {
      if (!kept.has(db)) await dropWorkspaceDatabase(engine, db).catch((err) => app.log.warn('a database replaced by a restore was not dropped', { tenant: slug, database: db, err }));
    }
  } finally {
    reopen();
  }
  // The engine object may carry the old placement; the next request picks the restored one.
  return { tenant: slug, workspaces: m.workspaces.length, state_entries: entries.length };
}

/** The later of two revocation cut-offs (numbers, or maps of them), entry by entry. */
function laterCut(a: unknown, b: unknown): unknown {
  if (typeof a === 'number' && typeof b === 'number') return Math.max(a, b);
  const map = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (map(a) && map(b)) {
    const out: Record<string, unknown> = { ...b };
    for (const [k, v] of Object.entries(a)) out[k] = Object.hasOwn(b, k) ? laterCut(v, b[k]) : v;
    return out;
  }
  return a ?? b;
}
