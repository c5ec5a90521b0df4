/**
 * Service data sources: what Roost did for a tenant, stored in the tenant's own
 * cell (database `roost_svc_<tenant>`) and readable by its workspaces' SQL through the
 * names `tinybird.pipe_stats_rt`, `tinybird.datasources_ops_log`,
 * `tinybird.endpoint_errors` and `roost.audit_log` (each filtered to the
 * workspace). Rows are buffered and written in batches; `flush()` forces it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Engine } from '../cells/engine.js';
import { QueryFailed, RoostError } from '../errors.js';
import { quoteIdent, quoteString, unfinishedMutations, versionAtLeast } from '../cells/engine.js';
import { compatColumns, mapsAsText } from '../cells/compat.js';
import { ClickHouseEngine } from '../cells/clickhouse.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../log/metrics.js';

/**
 * The service database of a tenant. Named after the tenant so that tenants an
 * operator places on the same remote server never share service tables.
 */
/** Whether a name a query reads is a service data source (`tinybird.*`, `roost.*`): their tables must exist first (ServiceLog.ensure). */
export function isServiceName(name: string): boolean {
  return name.startsWith('tinybird.') || name.startsWith('roost.');
}

export function serviceDb(tenant: string): string {
  return `roost_svc_${tenant.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

/**
 * Table definitions; every table carries `workspace` so views can filter it. The columns
 * are Tinybird's documented ones for its service data sources (names, meaning, and types
 * where Roost's differ only by width or precision: DateTime64(3) for DateTime, Float64 for
 * Float, UInt64 for UInt32, String for Nullable(String): see docs/decisions.md), plus a few
 * of Roost's own (`token_name`/`error_message`/`parameters` in endpoint_errors, `options`).
 * Columns added here are added to the tables of older cells at start (`ensure`).
 */
export const SERVICE_TABLES: Record<string, { columns: string; order: string; publicName: string; time: string }> = {
  audit_log: {
    publicName: 'roost.audit_log',
    time: 'timestamp',
    columns: `timestamp DateTime64(3, 'UTC'), tenant String, workspace String, workspace_id String, event LowCardinality(String), outcome LowCardinality(String), reason String, actor String, credential LowCardinality(String), connection String, resource String, request_id String, ip String, details String`,
    order: '(tenant, timestamp)',
  },
  pipe_stats_rt: {
    publicName: 'tinybird.pipe_stats_rt',
    time: 'start_datetime',
    columns: `start_datetime DateTime64(3, 'UTC'), workspace String, workspace_id String, pipe_id String, pipe_name String, token_name String, duration Float64, read_rows UInt64, read_bytes UInt64, result_rows UInt64, status_code Int32, error UInt8, error_message String, parameters Map(String, String), request_id String, url String, method LowCardinality(String), token String, release String, user_agent Nullable(String), resource_tags Array(String), cpu_time Float64`,
    order: '(workspace, start_datetime)',
  },
  endpoint_errors: {
    publicName: 'tinybird.endpoint_errors',
    time: 'start_datetime',
    columns: `start_datetime DateTime64(3, 'UTC'), workspace String, workspace_id String, pipe_id String, pipe_name String, parameters Map(String, String), error String, status_code Int32, request_id String, token_name String, params Nullable(String), url Nullable(String), resource_tags Array(String)`,
    order: '(workspace, start_datetime)',
  },
  datasources_ops_log: {
    publicName: 'tinybird.datasources_ops_log',
    time: 'timestamp',
    columns: `timestamp DateTime64(3, 'UTC'), workspace String, workspace_id String, event_type LowCardinality(String), datasource_id String, datasource_name String, result LowCardinality(String), elapsed_time Float64, error String, request_id String, import_id String, job_id String, rows UInt64, rows_quarantine UInt64, blocks_ids Array(String), options Map(String, String), Options Nested(Names String, Values String), read_rows UInt64, read_bytes UInt64, written_rows UInt64, written_bytes UInt64, written_rows_quarantine UInt64, written_bytes_quarantine UInt64, operation_id String, release String, resource_tags Array(String), pipe_id String, pipe_name String, cpu_time Float64`,
    order: '(workspace, timestamp)',
  },
};

/** `name type` pairs of a column list (commas inside a type's parentheses are not separators). */
function columnList(columns: string): Array<[string, string]> {
  return columns.split(/,\s*(?![^()]*\))/).map((c) => {
    const t = c.trim();
    const sp = t.indexOf(' ');
    return [t.slice(0, sp), t.slice(sp + 1).trim()] as [string, string];
  });
}

/**
 * The columns as stored: a `Nested(a T, b U)` column is the arrays `name.a Array(T)` and
 * `name.b Array(U)` (how ClickHouse keeps it, and how Tinybird's users query it: `Options.Names`).
 */
function storedColumns(columns: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, type] of columnList(columns)) {
    const nested = /^Nested\((.*)\)$/.exec(type);
    if (!nested) { out.push([name, type]); continue; }
    for (const [sub, subType] of columnList(nested[1]!)) out.push([`${name}.${sub}`, `Array(${subType})`]);
  }
  return out;
}

/** The Map(String, String) columns of each service table. */
const MAP_COLUMNS: Record<string, string[]> = Object.fromEntries(Object.entries(SERVICE_TABLES).map(([t, d]) => [t,
  columnList(d.columns).filter(([, type]) => /^Map\(/.test(type)).map(([name]) => name)]));

export type ServiceTable = keyof typeof SERVICE_TABLES;

/** The names of the service data sources (serviceViewDefs' keys). */
export const SERVICE_VIEW_NAMES: readonly string[] = [...Object.values(SERVICE_TABLES).map((d) => d.publicName), 'tinybird.pipe_stats'];

/**
 * The SQL a workspace sees for each public service name (a query of its own rows: those
 * written under its id, so a workspace renamed keeps them and a later one of the same name
 * never sees them; without brackets) and the columns each shows (what a row filter may name).
 */
export function serviceViewDefs(tenant: string, workspaceId: string): Record<string, { sql: string; columns: string[] }> {
  const out: Record<string, { sql: string; columns: string[] }> = {};
  // The workspace condition names its column qualified: a tenant's own server with ClickHouse's
  // old query analyzer replaced a bare `workspace_id` by an enclosing query's `WITH '<id>' AS
  // workspace_id` (every workspace's rows of the tenant; qualifyColumns in src/native/sql.ts).
  for (const [table, def] of Object.entries(SERVICE_TABLES)) {
    // Nested columns as their arrays (`Options.Names`, `Options.Values`), as Tinybird's users read them.
    const cols = storedColumns(def.columns).map(([c]) => c).filter((c) => c !== 'workspace' && c !== 'workspace_id' && c !== 'tenant');
    out[def.publicName] = { sql: `SELECT ${cols.map((c) => '`' + c + '`').join(', ')} FROM ${serviceDb(tenant)}.${table} WHERE ${serviceDb(tenant)}.${table}.workspace_id = ${quoteString(workspaceId)}`, columns: cols };
  }
  // Tinybird's daily aggregate of pipe_stats_rt, with its columns (the states merge with
  // avgMerge and quantilesTimingMerge(0.9, 0.95, 0.99), milliseconds), computed when read.
  out['tinybird.pipe_stats'] = {
    sql: `SELECT toDate(start_datetime) AS date, pipe_id, pipe_name, count() AS view_count, countIf(error = 1) AS error_count, avgState(duration) AS avg_duration_state, quantilesTimingState(0.9, 0.95, 0.99)(duration * 1000) AS quantile_timing_state, sum(read_bytes) AS read_bytes_sum, sum(read_rows) AS read_rows_sum, emptyArrayString() AS resource_tags FROM ${serviceDb(tenant)}.pipe_stats_rt WHERE ${serviceDb(tenant)}.pipe_stats_rt.workspace_id = ${quoteString(workspaceId)} GROUP BY date, pipe_id, pipe_name`,
    columns: ['date', 'pipe_id', 'pipe_name', 'view_count', 'error_count', 'avg_duration_state', 'quantile_timing_state', 'read_bytes_sum', 'read_rows_sum', 'resource_tags'],
  };
  return out;
}

/**
 * A datasources_ops_log row as stored: the operation's options (`Options` or `options`, an
 * object) become Tinybird's `Options.Names`/`Options.Values` arrays (and Roost's `options` map);
 * `operation_id` names the operation (its job, else its import, else its request).
 */
function opsLogRow(row: Record<string, unknown>): Record<string, unknown> {
  const given = row.Options ?? row.options;
  const o: Record<string, string> = {};
  if (given && typeof given === 'object' && !Array.isArray(given)) for (const [k, v] of Object.entries(given)) o[k] = String(v);
  const out: Record<string, unknown> = { ...row, options: o, 'Options.Names': Object.keys(o), 'Options.Values': Object.values(o) };
  delete out.Options;
  if (!out.operation_id) out.operation_id = out.job_id || out.import_id || out.request_id || '';
  return out;
}

/** The tenant's service database, if it is not there yet. */
function createDatabase(engine: Engine, tenant: string): Promise<unknown> {
  return engine.exec(`CREATE DATABASE IF NOT EXISTS ${serviceDb(tenant)}`, { timeoutMs: SERVICE_WRITE_TIMEOUT_MS, background: true });
}

/** One service table, if it is not there yet (in the columns the engine's version can hold). */
async function createTable(engine: Engine, tenant: string, name: string): Promise<void> {
  const def = SERVICE_TABLES[name]!;
  await engine.exec(`CREATE TABLE IF NOT EXISTS ${serviceDb(tenant)}.${name} (${await compatColumns(engine, def.columns)}) ENGINE = MergeTree ORDER BY ${def.order}`, { timeoutMs: SERVICE_WRITE_TIMEOUT_MS, background: true });
}

/**
 * Brings a service table created by an earlier version to the current columns, keeping its
 * rows: columns it lacks are added (older rows take the type's default: 0, '', [], NULL),
 * and a column that is now `Nested(Names String, Values String)` but was a map (or the JSON
 * text of one, on servers before 21.1) is renamed aside, copied into the arrays, then dropped;
 * rows written before `workspace_id` existed get the id of the workspace of their name.
 * Each step is checked against the table first, so an upgrade cut short resumes where it stopped
 * (ServiceLog tries a failed one again, after a while, at a later service write or query).
 */
async function upgradeTable(engine: Engine, db: string, table: string, columns: string, workspaces: ServiceWorkspace[]): Promise<void> {
  const opts = { timeoutMs: SERVICE_WRITE_TIMEOUT_MS, background: true };
  const t = `${db}.${table}`;
  const read = async (): Promise<Map<string, string>> => {
    const text = (await engine.exec(`SELECT name, type FROM system.columns WHERE database = ${quoteString(db)} AND table = ${quoteString(table)}`, { ...opts, format: 'JSONEachRow' })).toString('utf8');
    const have = new Map<string, string>();
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      const c = JSON.parse(line) as { name: string; type: string };
      have.set(c.name, c.type);
    }
    return have;
  };
  let have = await read();
  const compat = await compatColumns(engine, columns);
  const nested = columnList(compat).filter(([, type]) => /^Nested\(/.test(type)).map(([name]) => name);
  // Servers before 20.4 (18.16) know neither RENAME COLUMN nor ADD COLUMN IF NOT EXISTS.
  const oldAlter = engine instanceof ClickHouseEngine && !(await engine.features()).renameColumn;
  for (const name of nested) {
    if (!have.has(name)) continue;
    if (!oldAlter) {
      await engine.exec(`ALTER TABLE ${t} RENAME COLUMN \`${name}\` TO \`${asideName(name)}\``, opts);
      continue;
    }
    // No RENAME COLUMN: the column is copied aside (every row; again when a start was cut
    // short), and dropped only once the copy is done. It must go before the Nested arrays are
    // added: there DROP COLUMN `name` drops `name.*` with it.
    if ([...have.keys()].some((c) => c.startsWith(`${name}.`))) {
      throw new Error(`${t} has both a column ${name} and Nested ${name}.* columns; left as it is (dropping ${name} would drop them too)`);
    }
    const aside = asideName(name);
    if (!have.has(aside)) await engine.exec(`ALTER TABLE ${t} ADD COLUMN \`${aside}\` ${have.get(name)}`, opts);
    await mutate(engine, db, table, `ALTER TABLE ${t} UPDATE \`${aside}\` = \`${name}\` WHERE 1`);
    await engine.exec(`ALTER TABLE ${t} DROP COLUMN \`${name}\``, opts);
  }
  if (nested.length) have = await read();
  const missing = storedColumns(compat).filter(([name]) => !have.has(name));
  if (missing.length) {
    await engine.exec(`ALTER TABLE ${t} ${missing.map(([name, type]) => `ADD COLUMN ${oldAlter ? '' : 'IF NOT EXISTS '}\`${name}\` ${type}`).join(', ')}`, opts);
  }
  for (const name of nested) {
    const aside = asideName(name);
    const type = have.get(aside);
    if (type === undefined) continue;
    const sub = columnList(/^Nested\((.*)\)$/.exec(columnList(compat).find(([n]) => n === name)![1])![1]!).map(([n]) => n);
    // A map, or (servers before 21.1) its JSON text. Rows that left it empty but filled
    // Roost's `options` map (events appends did) take that one.
    const fallback = have.get('options') === type ? 'options' : undefined;
    const isText = !/^Map\(/.test(type);
    const empty = (c: string) => (isText ? `${c} IN ('', '{}')` : `empty(${c})`);
    const src = fallback ? `if(${empty(`\`${aside}\``)}, ${fallback}, \`${aside}\`)` : `\`${aside}\``;
    // The text is what Roost wrote: JSON.stringify of an object of strings. Read with
    // functions every server has (18.16 has no JSONExtract*): each "key":"value" pair, each
    // side unescaped as a JSON string.
    const pairs = `extractAll(${src}, ${quoteString(`${JSON_STRING}:${JSON_STRING}`)})`;
    const side = (re: string) => `arrayMap(p -> visitParamExtractString(concat('{"k":', extract(p, ${quoteString(re)}), '}'), 'k'), ${pairs})`;
    const keys = isText ? side(`^(${JSON_STRING}):`) : `mapKeys(${src})`;
    const values = isText ? side(`:(${JSON_STRING})$`) : `mapValues(${src})`;
    await mutate(engine, db, table, `ALTER TABLE ${t} UPDATE \`${name}.${sub[0]}\` = ${keys}, \`${name}.${sub[1]}\` = ${values} WHERE empty(\`${name}.${sub[0]}\`)`);
    await engine.exec(`ALTER TABLE ${t} DROP COLUMN \`${aside}\``, opts);
  }
  // Rows of earlier versions know their workspace by name only: they go to the workspace of
  // that name now (rows of workspaces deleted since go to none).
  const named = workspaces.filter((w) => w.name && w.id);
  if (named.length) {
    const list = named.map((w) => quoteString(w.name)).join(', ');
    const left = Number((await engine.exec(`SELECT count() FROM ${t} WHERE workspace_id = '' AND workspace IN (${list})`, opts)).toString().trim());
    if (left > 0) {
      await mutate(engine, db, table, `ALTER TABLE ${t} UPDATE workspace_id = transform(workspace, [${list}], [${named.map((w) => quoteString(w.id)).join(', ')}], '') WHERE workspace_id = '' AND workspace IN (${list})`);
    }
  }
}

/** A JSON string literal, as a regular expression. */
const JSON_STRING = String.raw`"(?:[^"\\]|\\.)*"`;

/** Where a column that becomes Nested waits while its values are copied. */
const asideName = (name: string): string => `__${name}_before_nested`;

/** Runs a mutation and waits for it (polling where the server does not know `mutations_sync`). */
async function mutate(engine: Engine, db: string, table: string, sql: string): Promise<void> {
  try {
    await engine.exec(sql, { timeoutMs: SERVICE_WRITE_TIMEOUT_MS, background: true, settings: { mutations_sync: 2 } });
    return;
  } catch (e) {
    if (!/mutations_sync|Unknown setting/i.test(String((e as Error).message))) throw e;
  }
  await engine.exec(sql, { timeoutMs: SERVICE_WRITE_TIMEOUT_MS, background: true });
  for (const deadline = Date.now() + 5 * 60_000; Date.now() < deadline;) {
    if (!(await unfinishedMutations(engine, db, table, { timeoutMs: SERVICE_WRITE_TIMEOUT_MS, background: true }))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`mutation of ${db}.${table} did not finish in 5 minutes`);
}

interface Buffered { rows: string[]; bytes: number }
/**
 * Every statement the service log runs (the CREATE and ALTER of ensure(), the server's version
 * it asks first, each INSERT) that takes longer is given up (rows kept) so the next can try
 * (`ROOST_SERVICE_WRITE_TIMEOUT_MS`).
 */
const SERVICE_WRITE_TIMEOUT_MS = Number(process.env.ROOST_SERVICE_WRITE_TIMEOUT_MS || 30_000);
/**
 * Bytes of rows waiting per tenant and table (`ROOST_SERVICE_LOG_MAX_PENDING_BYTES`), enforced
 * as rows are added: past it the oldest go first (counted in roost_service_log_dropped_rows_total).
 * A write in flight holds at most as much again. A tenant whose server hangs or is down cannot
 * grow this process without end.
 */
const MAX_KEPT_BYTES = Number(process.env.ROOST_SERVICE_LOG_MAX_PENDING_BYTES || 32 * 1024 * 1024);

/** Rejects after `ms` (QUERY_TIMEOUT) if `p` has not settled by then. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RoostError('QUERY_TIMEOUT', `${what} exceeded its time limit of ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** First wait before a failed service table upgrade is tried again; doubled after each failure. */
export const UPGRADE_RETRY_FIRST_MS = 1000;
/** Longest wait between two tries of a failed upgrade (a server down for hours is asked this often). */
export const UPGRADE_RETRY_MAX_MS = 5 * 60_000;

/** A tenant's service tables whose upgrade failed: tried again from `nextAt`, by the next ensure(). */
interface PendingUpgrade { tables: Set<string>; failures: number; nextAt: number; retrying: boolean }

/**
 * Largest value written to a service table: each string (and each key and value of a map, each
 * element of an array) is cut to this many UTF-8 bytes, on a character boundary, and ends with
 * `…[truncated, N bytes]` (N: its size before) — the marker included. Values come from callers
 * (a /v0/sql text, endpoint parameters, the URL, the User-Agent, a connection name taken from
 * the URL path, audit reasons): unbounded, one request could add megabytes to the tenant's
 * service database.
 */
export const MAX_SERVICE_VALUE_BYTES = 8 * 1024;
/**
 * Tables whose rows are journaled on disk until they are in the engine (kill -9 safe): the
 * operations log and the audit log. Endpoint call statistics are not (one row per call, the
 * hot path): a kill -9 loses their last second.
 */
const JOURNALED = new Set(['datasources_ops_log', 'audit_log']);
/** Largest total of a row's values (UTF-8 bytes of its strings, map keys included): longer values are cut shorter. */
export const MAX_SERVICE_ROW_BYTES = 64 * 1024;
/** The shortest a value is cut to when a row is over MAX_SERVICE_ROW_BYTES; beyond that, maps and arrays lose entries. */
const MIN_SERVICE_VALUE_BYTES = 256;

/** `s` cut to at most `max` UTF-8 bytes (the marker included), on a character boundary. */
export function truncateUtf8(s: string, max: number): string {
  if (s.length * 3 <= max) return s;
  const bytes = Buffer.byteLength(s);
  if (bytes <= max) return s;
  const marker = `…[truncated, ${bytes} bytes]`;
  const room = Math.max(0, max - Buffer.byteLength(marker));
  let head = s.slice(0, room);
  // Not half of a surrogate pair.
  const last = head.charCodeAt(head.length - 1);
  if (last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1);
  const buf = Buffer.from(head);
  let cut = Math.min(room, buf.length);
  // Back to the first byte of the character the cut falls in.
  while (cut > 0 && cut < buf.length && (buf[cut]! & 0xc0) === 0x80) cut--;
  return buf.subarray(0, cut).toString('utf8') + marker;
}

/**
 * A String column holding an object as JSON text (`endpoint_errors.params`): bounded by cutting
 * the object's values and entries and serializing it again, so the stored text stays valid JSON
 * (a cut text did not parse).
 */
export class JsonText {
  constructor(readonly value: Record<string, unknown>) {}
}

/**
 * Entries a map, array or JSON object keeps in a service row at most, before any other cut: a row
 * holds 64 KiB, so a call with 60,000 parameters kept a few thousand anyway — and the cuts below,
 * each a pass over every entry, took seconds of the server's thread (every tenant waited).
 */
export const MAX_SERVICE_ENTRIES = 2048;

/** `v` as JSON text of at most `max` UTF-8 bytes: its values cut shorter, then its entries fewer. */
function jsonWithin(v: Record<string, unknown>, max: number): string {
  let perValue = max;
  let entries = MAX_SERVICE_ENTRIES;
  for (let tries = 0; ; tries++) {
    const text = JSON.stringify(boundValues({ v }, perValue, entries).row.v, wellFormed);
    const over = Buffer.byteLength(text) - max;
    if (over <= 0) return text;
    // First by what is over (one long value: its quotes and key), then by halves.
    if (tries === 0 && perValue - over - 32 > max / 2) perValue -= over + 32;
    else if (perValue > 64) perValue >>= 1;
    else if (entries === MAX_SERVICE_ENTRIES) entries = Math.min(entries, Object.keys(v).length) >> 1;
    else if (entries > 0) entries >>= 1;
    else return '{}';
  }
}

/** The keys of an object being bounded, listed once for all the passes over it. */
const keysOf = new WeakMap<object, string[]>();

/** A row with its values cut to `perValue` bytes and its maps and arrays to `entries` entries; `bytes` the total kept. */
function boundValues(row: Record<string, unknown>, perValue: number, entries: number): { row: Record<string, unknown>; bytes: number } {
  let bytes = 0;
  const str = (s: string): string => {
    const t = truncateUtf8(s, perValue);
    bytes += Buffer.byteLength(t);
    return t;
  };
  const val = (v: unknown): unknown => {
    if (typeof v === 'string') return str(v);
    if (v instanceof JsonText) {
      const t = jsonWithin(v.value, perValue);
      bytes += Buffer.byteLength(t);
      return t;
    }
    if (Array.isArray(v)) {
      const out = (v.length > entries ? v.slice(0, entries) : v).map(val);
      if (v.length > entries) out.push(str(`…[truncated, ${v.length - entries} more entries]`));
      return out;
    }
    if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      let keys = keysOf.get(o);
      if (!keys) keysOf.set(o, (keys = Object.keys(o)));
      const out: Record<string, unknown> = {};
      const n = Math.min(keys.length, entries);
      for (let i = 0; i < n; i++) out[str(keys[i]!)] = val(o[keys[i]!]);
      if (keys.length > entries) out[str('…[truncated]')] = str(`${keys.length - entries} more entries`);
      return out;
    }
    return v;
  };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = val(v);
  return { row: out, bytes };
}

/**
 * A service row within the bounds: every value at most MAX_SERVICE_VALUE_BYTES, and all of them
 * together at most MAX_SERVICE_ROW_BYTES (the values are cut shorter, halving the bound down to
 * MIN_SERVICE_VALUE_BYTES, then maps and arrays keep fewer entries), each cut value marked.
 */
export function boundServiceRow(row: Record<string, unknown>): Record<string, unknown> {
  let perValue = MAX_SERVICE_VALUE_BYTES;
  let entries = MAX_SERVICE_ENTRIES;
  let r = boundValues(row, perValue, entries);
  while (r.bytes > MAX_SERVICE_ROW_BYTES && perValue > MIN_SERVICE_VALUE_BYTES) r = boundValues(row, (perValue >>= 1), entries);
  if (r.bytes > MAX_SERVICE_ROW_BYTES) {
    let most = 0;
    for (const v of Object.values(row)) most = Math.max(most, Array.isArray(v) ? v.length : v instanceof JsonText ? Object.keys(v.value).length : v !== null && typeof v === 'object' ? Object.keys(v).length : 0);
    entries = Math.min(most, MAX_SERVICE_ENTRIES);
    while (r.bytes > MAX_SERVICE_ROW_BYTES && entries > 0) r = boundValues(row, perValue, (entries >>= 1));
  }
  return r.row;
}

/** JSON.stringify replacer: a lone UTF-16 surrogate (which the engine's JSON input refuses) becomes U+FFFD. */
function wellFormed(_key: string, v: unknown): unknown {
  return typeof v === 'string' ? (v as unknown as { toWellFormed(): string }).toWellFormed() : v;
}

/**
 * Engine errors that say nothing about the rows sent (time limits, memory, load, the server
 * going away): a batch refused with one of them is kept whole for the next flush.
 */
const NOT_ABOUT_THE_ROWS = new Set([159, 160, 202, 209, 210, 241, 252, 394, 236]);

/**
 * Inserts the rows at `rows` (indices) with `insert`. When the engine refuses them, the refusal
 * is narrowed down by halves: while one half is stored and the other refused again, the refused
 * half is split further, and a single row refused on its own, beside a half that was stored, is
 * dropped. Anything else refused — both halves, a lone row with nothing to compare, an error that
 * is not about the rows — is left for the next flush, so a server that refuses everything (or is
 * down) loses nothing; rows that arrive meanwhile give a lone bad row its comparison next time.
 */
export async function insertIsolating(insert: (rows: number[]) => Promise<unknown>, rows: number[]): Promise<{ left: number[]; dropped: number[]; err?: unknown }> {
  try {
    await insert(rows);
    return { left: [], dropped: [] };
  } catch (e) {
    // (A full disk is not about the rows either: a half small enough to fit would "isolate" a row.)
    const refused = (x: unknown): boolean => x instanceof QueryFailed && x.clickhouseCode !== undefined && !NOT_ABOUT_THE_ROWS.has(x.clickhouseCode) && x.code !== 'INSUFFICIENT_STORAGE';
    let part = rows;
    let err: unknown = e;
    while (part.length > 1 && refused(err)) {
      const lo = part.slice(0, part.length >> 1);
      const hi = part.slice(part.length >> 1);
      const loErr = await insert(lo).then(() => undefined, (x: unknown) => x ?? new Error('refused'));
      const hiErr = await insert(hi).then(() => undefined, (x: unknown) => x ?? new Error('refused'));
      if (loErr && hiErr) return { left: part, dropped: [], err };  // not one row's doing (or rows in both halves)
      if (!loErr && !hiErr) return { left: [], dropped: [] };  // the first refusal did not happen again
      part = loErr ? lo : hi;
      err = loErr ?? hiErr;
      if (part.length === 1 && refused(err)) return { left: [], dropped: part, err };
    }
    return { left: part, dropped: [], err };
  }
}

/**
 * How long service rows are kept: seconds per table (0 or absent: kept forever), and the least
 * time between two prunes of one tenant's tables.
 */
export interface ServiceRetention {
  seconds: Partial<Record<ServiceTable, number>>;
  everyMs: number;
}

type ServiceMetrics = Pick<Metrics, 'serviceUpgradesPending' | 'serviceUpgradeFailures'> & Partial<Pick<Metrics, 'serviceLogDroppedRows' | 'serviceLogPrunedRows'>>;

/** A workspace as the service log needs it. */
export interface ServiceWorkspace { name: string; id: string }

/** `workspace_id` of a row whose workspace is not known (any more) when it is written. */
const UNKNOWN_WORKSPACE = '(unknown)';

export class ServiceLog {
  /**
   * The workspace of a tenant by name (its id goes with every row), and all of a tenant's
   * workspaces (rows of earlier versions, written under names only, are given ids at upgrade).
   */
  workspace?: (tenant: string, name: string) => ServiceWorkspace | undefined;
  workspaces?: (tenant: string) => ServiceWorkspace[];
  #engineFor: (tenant: string) => Engine | undefined;
  #log: Logger;
  #buffers = new Map<string, Map<string, Buffered>>();
  #ready = new Map<string, Promise<void>>();
  #timer: NodeJS.Timeout;
  #flushing = new Map<string, { running: Promise<void>; queued: Promise<void> | undefined }>();
  #pending = new Map<string, PendingUpgrade>();
  #metrics?: ServiceMetrics;
  #retention?: ServiceRetention;
  /** When each tenant's tables were last pruned (ms), and the prune running now. */
  #prunedAt = new Map<string, number>();
  #pruning = new Map<string, Promise<void>>();
  /** Bytes of each tenant's rows in a write now (taken out of #buffers). */
  #inFlight = new Map<string, number>();
  /** `tenant\0table` whose dropping of rows was logged (again after a write of it succeeds). */
  #dropLogged = new Set<string>();
  /**
   * `tenant\0table` that dropped rows from memory (#trim) since its journal was last compacted:
   * those rows are still in its journal files. A drop while a write was in flight (write()'s
   * trim) was not followed by a compaction when that write's failure merged back no more than
   * the bound, and the journal kept every row of the outage (CI: 1.2 MB against a 256 KiB bound).
   */
  #droppedSinceCompaction = new Set<string>();
  /** Where rows of JOURNALED tables wait on disk until they are in the engine (see #journal). */
  #journalDir: string | undefined;
  /** The open journal file of each `tenant\0table`. */
  #journals = new Map<string, { fd: number; file: string }>();
  /** Journal files of each `tenant\0table` whose rows are not in the engine yet (closed: rows taken by a write, or recovered). */
  #sealed = new Map<string, string[]>();
  #journalSeq = 0;

  constructor(engineFor: (tenant: string) => Engine | undefined, log: Logger, intervalMs = 1000, metrics?: ServiceMetrics, retention?: ServiceRetention, journalDir?: string) {
    this.#engineFor = engineFor;
    this.#log = log;
    this.#metrics = metrics;
    this.#retention = retention;
    this.#journalDir = journalDir;
    if (journalDir) this.#recoverJournals(journalDir);
    this.#timer = setInterval(() => { void this.flush(); }, intervalMs);
    this.#timer.unref();
  }

  /**
   * Rows of the tables that record changes and auth decisions (JOURNALED) are also appended to
   * a file per tenant and table before write() returns, so the request's answer comes after
   * them: a kill -9 lost the rows of the last second before (the buffer is written once a
   * second). A file is closed when a write takes its rows and removed once they are in the
   * engine; a start puts the rows of the files it finds back in the buffer. A crash between an
   * engine write and the removal of its files writes those rows twice.
   */
  #journal(tenant: string, table: string, line: string): void {
    if (!this.#journalDir || !JOURNALED.has(table)) return;
    const key = `${tenant}\0${table}`;
    try {
      let j = this.#journals.get(key);
      if (!j) {
        const dir = path.join(this.#journalDir, tenant);
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const file = path.join(dir, `${table}.${Date.now()}-${process.pid}-${++this.#journalSeq}.ndjson`);
        j = { fd: fs.openSync(file, 'a', 0o600), file };
        this.#journals.set(key, j);
      }
      fs.writeSync(j.fd, line + '\n');
    } catch (e) {
      // The row stays in memory (written at the next flush); only its crash safety is lost.
      this.#log.error('service log journal write failed', { tenant, table, err: e });
    }
  }

  /** Closes the tenant's open journal files: their rows were taken by a write (kept until it succeeds). */
  #sealJournals(tenant: string, tables: Iterable<string>): Map<string, string[]> {
    const taken = new Map<string, string[]>();
    for (const table of tables) {
      const key = `${tenant}\0${table}`;
      const j = this.#journals.get(key);
      if (j) {
        this.#journals.delete(key);
        try { fs.closeSync(j.fd); } catch { /* closed */ }
        this.#sealed.set(key, [...(this.#sealed.get(key) ?? []), j.file]);
      }
      const files = this.#sealed.get(key);
      if (files?.length) taken.set(table, [...files]);
    }
    return taken;
  }

  /** The rows of `files` are in the engine: the files go. */
  #journaled(tenant: string, table: string, files: string[] | undefined): void {
    if (!files?.length) return;
    const key = `${tenant}\0${table}`;
    for (const f of files) fs.rmSync(f, { force: true });
    const gone = new Set(files);
    const left = (this.#sealed.get(key) ?? []).filter((f) => !gone.has(f));
    if (left.length) this.#sealed.set(key, left); else this.#sealed.delete(key);
  }

  /** The rows waiting for a tenant's table (made empty when there are none). */
  #buffer(tenant: string, table: string): Buffered {
    let t = this.#buffers.get(tenant);
    if (!t) this.#buffers.set(tenant, (t = new Map()));
    let b = t.get(table);
    if (!b) t.set(table, (b = { rows: [], bytes: 0 }));
    return b;
  }

  /**
   * Replaces the journal files of a tenant's table by one holding `rows`, the rows still kept
   * (after #trim dropped the oldest): called where no write of the tenant is in flight (the end
   * of a failed one), so every kept row is in `rows` and no other write owns a file. The new
   * file is whole before the old ones go (a crash between: rows twice, never none).
   */
  #compactJournal(tenant: string, table: string, rows: string[]): void {
    const key = `${tenant}\0${table}`;
    // Only where rows were dropped from memory since the last compaction (else the files hold
    // only rows still kept), and only once the files hold twice the bound: each compaction
    // rewrites the bound's worth (a rewrite per 4 MiB of new rows was 7 times the disk writes, on
    // the server's thread).
    if (!this.#journalDir || !this.#droppedSinceCompaction.has(key)) return;
    let onDisk = 0;
    for (const f of [...(this.#sealed.get(key) ?? []), ...(this.#journals.has(key) ? [this.#journals.get(key)!.file] : [])]) {
      try { onDisk += fs.statSync(f).size; } catch { /* gone */ }
    }
    if (onDisk <= 2 * MAX_KEPT_BYTES) return;
    const old = this.#sealJournals(tenant, [table]).get(table) ?? [];
    try {
      const file = path.join(this.#journalDir, tenant, `${table}.${Date.now()}-${process.pid}-${++this.#journalSeq}.ndjson`);
      fs.writeFileSync(file, rows.length ? rows.join('\n') + '\n' : '', { mode: 0o600 });
      this.#journaled(tenant, table, old);
      this.#sealed.set(key, [...(this.#sealed.get(key) ?? []), file]);
      this.#droppedSinceCompaction.delete(key);
    } catch (e) {
      // The old files stay (more on disk, nothing lost).
      this.#log.error('service log journal could not be compacted', { tenant, table, err: e });
    }
  }

  /** Removes the journal files of a tenant's tables (their rows are gone with the tenant). */
  #dropJournals(tenant: string, tables: Iterable<string>): void {
    for (const [table, files] of this.#sealJournals(tenant, tables)) {
      this.#journaled(tenant, table, files);
      this.#droppedSinceCompaction.delete(`${tenant}\0${table}`);
    }
  }

  /** Puts the rows of journal files an earlier process left back in the buffer. */
  #recoverJournals(dir: string): void {
    let tenants: string[];
    try { tenants = fs.readdirSync(dir); } catch { return; }
    for (const tenant of tenants) {
      let files: string[];
      try { files = fs.readdirSync(path.join(dir, tenant)).filter((f) => f.endsWith('.ndjson')).sort(); } catch { continue; }
      for (const f of files) {
        const table = f.slice(0, f.indexOf('.'));
        const file = path.join(dir, tenant, f);
        if (!JOURNALED.has(table)) { fs.rmSync(file, { force: true }); continue; }
        let text: string;
        try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
          // Not readable: left where it is (and said), the start goes on.
          this.#log.error('service log journal file not readable; its rows are not written', { file, err: e });
          continue;
        }
        const lines = text.split('\n').filter((l) => {
          if (!l) return false;
          try { JSON.parse(l); return true; } catch { return false; }
        });
        const b = this.#buffer(tenant, table);
        for (const l of lines) { b.rows.push(l); b.bytes += Buffer.byteLength(l); }
        this.#trim(tenant, table, b);
        const key = `${tenant}\0${table}`;
        this.#sealed.set(key, [...(this.#sealed.get(key) ?? []), file]);
        if (lines.length) this.#log.info('service log rows recovered from the journal', { tenant, table, rows: lines.length });
      }
    }
  }

  /**
   * Creates the service tables in a tenant's engine and brings them to the current columns
   * (idempotent). A table whose upgrade fails keeps its rows and takes new ones (columns it lacks
   * are skipped), and queries naming the missing columns fail: its upgrade is tried again by a
   * later call (the tenant's next service write or service query), not before a wait that doubles
   * with each failure (UPGRADE_RETRY_FIRST_MS up to UPGRADE_RETRY_MAX_MS), so a server that is down
   * is not asked at every write. Each failure is logged (`service table upgrade failed`) and
   * counted (`roost_service_table_upgrade_failures_total`); `roost_service_tables_upgrade_pending`
   * says how many of the tenant's tables wait for it; success after a failure is logged.
   */
  ensure(tenant: string): Promise<void> {
    let p = this.#ready.get(tenant);
    if (!p) {
      p = (async () => {
        const engine = this.#engineFor(tenant);
        if (!engine) return;
        await createDatabase(engine, tenant);
        const failed: Array<{ table: string; err: unknown }> = [];
        for (const name of Object.keys(SERVICE_TABLES)) {
          await createTable(engine, tenant, name);
          try {
            await this.#upgrade(engine, tenant, name);
          } catch (e) {
            failed.push({ table: name, err: e });
          }
        }
        this.#upgraded(tenant, failed);
      })();
      p.catch(() => { if (this.#ready.get(tenant) === p) this.#ready.delete(tenant); });
      this.#ready.set(tenant, p);
      return p;
    }
    // Set only once an ensure of the tenant has succeeded: `p` is settled, or is the retry running.
    const pending = this.#pending.get(tenant);
    if (pending && !pending.retrying && Date.now() >= pending.nextAt) {
      pending.retrying = true;
      p = this.#retryUpgrade(tenant, pending);
      this.#ready.set(tenant, p);
    }
    return p;
  }

  /** Tries the failed upgrades again; never rejects (a failure is recorded for the next try). */
  async #retryUpgrade(tenant: string, pending: PendingUpgrade): Promise<void> {
    const failed: Array<{ table: string; err: unknown }> = [];
    try {
      const engine = this.#engineFor(tenant);
      if (!engine) {
        // The tenant has no engine any more: nothing to upgrade, and nothing was upgraded.
        if (this.#pending.get(tenant) === pending) {
          this.#pending.delete(tenant);
          this.#metrics?.serviceUpgradesPending.set({ tenant }, 0);
        }
        return;
      }
      await createDatabase(engine, tenant);
      for (const name of pending.tables) {
        try {
          await createTable(engine, tenant, name);
          await this.#upgrade(engine, tenant, name);
        } catch (e) {
          failed.push({ table: name, err: e });
        }
      }
    } catch (e) {
      for (const table of pending.tables) if (!failed.some((f) => f.table === table)) failed.push({ table, err: e });
    }
    // A tenant deleted meanwhile (drop) is not recorded again.
    if (this.#pending.get(tenant) === pending) this.#upgraded(tenant, failed);
  }

  /** Brings one service table to the current columns (see upgradeTable). */
  #upgrade(engine: Engine, tenant: string, name: string): Promise<void> {
    return upgradeTable(engine, serviceDb(tenant), name, SERVICE_TABLES[name]!.columns, this.workspaces?.(tenant) ?? []);
  }

  /** Records how a tenant's upgrade went: the failed tables wait for their next try. */
  #upgraded(tenant: string, failed: Array<{ table: string; err: unknown }>): void {
    const before = this.#pending.get(tenant);
    if (!failed.length) {
      if (before) {
        this.#pending.delete(tenant);
        this.#log.info('service tables upgraded after an earlier failure', { tenant, tables: [...before.tables], failures: before.failures });
      }
      this.#metrics?.serviceUpgradesPending.set({ tenant }, 0);
      return;
    }
    const failures = (before?.failures ?? 0) + 1;
    const waitMs = Math.min(UPGRADE_RETRY_MAX_MS, UPGRADE_RETRY_FIRST_MS * 2 ** Math.min(failures - 1, 20));
    this.#pending.set(tenant, { tables: new Set(failed.map((f) => f.table)), failures, nextAt: Date.now() + waitMs, retrying: false });
    this.#metrics?.serviceUpgradesPending.set({ tenant }, failed.length);
    for (const f of failed) {
      this.#metrics?.serviceUpgradeFailures.inc({ tenant });
      // The table keeps its rows and takes new ones; queries naming its missing columns fail until then.
      this.#log.error('service table upgrade failed; tried again at the tenant\'s next service write or query after the wait', { tenant, table: f.table, err: f.err, failures, retry_after_ms: waitMs });
    }
  }

  /**
   * Queues one row for a tenant's service table, its values bounded (boundServiceRow). Rows
   * waiting past MAX_KEPT_BYTES for the table drop the oldest.
   */
  write(tenant: string, table: ServiceTable, row: Record<string, unknown>): void {
    if (table === 'datasources_ops_log') row = opsLogRow(row);
    if (typeof row.workspace === 'string' && row.workspace && row.workspace_id === undefined) {
      row.workspace_id = this.workspace?.(tenant, row.workspace)?.id ?? UNKNOWN_WORKSPACE;
    }
    row = boundServiceRow(row);
    const b = this.#buffer(tenant, table);
    const line = JSON.stringify(row, wellFormed);
    this.#journal(tenant, table, line);
    b.rows.push(line);
    b.bytes += Buffer.byteLength(line);
    if (b.bytes > MAX_KEPT_BYTES) this.#trim(tenant, table, b);
    if (b.bytes > 4 * 1024 * 1024) void this.#flushTenant(tenant);
  }

  /**
   * Drops the oldest rows of `b` until it is within MAX_KEPT_BYTES (down to 7/8 of it, so that a
   * stream of rows does not drop one at each write); counted, and logged once per tenant and
   * table until a write of the table succeeds again.
   */
  #trim(tenant: string, table: string, b: Buffered): number {
    if (b.bytes <= MAX_KEPT_BYTES) return 0;
    const target = MAX_KEPT_BYTES - (MAX_KEPT_BYTES >> 3);
    let n = 0;
    let bytes = b.bytes;
    while (n < b.rows.length && bytes > target) bytes -= Buffer.byteLength(b.rows[n++]!);
    b.rows.splice(0, n);
    b.bytes = bytes;
    this.#metrics?.serviceLogDroppedRows?.inc({ tenant, table }, n);
    const key = `${tenant}\0${table}`;
    if (n && JOURNALED.has(table)) this.#droppedSinceCompaction.add(key);
    if (!this.#dropLogged.has(key)) {
      this.#dropLogged.add(key);
      this.#log.error('service log rows dropped: more waiting than the bound (the tenant\'s engine is slow, down or hangs); the oldest go first, counted in roost_service_log_dropped_rows_total', { tenant, table: `${serviceDb(tenant)}.${table}`, dropped_rows: n, max_pending_bytes: MAX_KEPT_BYTES });
    }
    return n;
  }

  /** Bytes of service rows waiting per tenant (buffered, and in a write now): roost_service_log_pending_bytes. */
  pendingBytes(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [tenant, tables] of this.#buffers) {
      let n = 0;
      for (const b of tables.values()) n += b.bytes;
      out.set(tenant, n);
    }
    for (const [tenant, n] of this.#inFlight) out.set(tenant, (out.get(tenant) ?? 0) + n);
    return out;
  }

  /**
   * Writes everything buffered so far; resolves when it is in the engines (or failed and kept).
   * Each tenant is written on its own: a tenant whose remote server is down or hangs delays
   * only its own rows, never another tenant's (a flush of all tenants in turn waited up to the
   * request timeout behind one silent server).
   */
  flush(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const tenant of new Set([...this.#buffers.keys(), ...this.#flushing.keys()])) waits.push(this.#flushTenant(tenant));
    return Promise.all(waits).then(() => undefined);
  }

  /** Writes one tenant's rows now (its own only: another tenant's silent server does not hold it up). */
  flushTenant(tenant: string): Promise<void> {
    return this.#buffers.has(tenant) || this.#flushing.has(tenant) ? this.#flushTenant(tenant) : Promise.resolve();
  }

  /** One write of the tenant's rows after the one in progress; at most one waits behind it. */
  #flushTenant(tenant: string): Promise<void> {
    const st = this.#flushing.get(tenant);
    if (st?.queued) return st.queued;
    const write = () => this.#write(tenant);
    if (st) return (st.queued = st.running.then(write, write));
    const fresh = { running: write(), queued: undefined as Promise<void> | undefined };
    this.#flushing.set(tenant, fresh);
    const settle = (): void => {
      if (fresh.queued) {
        fresh.running = fresh.queued;
        fresh.queued = undefined;
        void fresh.running.finally(settle);
      } else if (this.#flushing.get(tenant) === fresh) {
        this.#flushing.delete(tenant);
      }
    };
    void fresh.running.finally(settle);
    return fresh.running;
  }

  async #write(tenant: string): Promise<void> {
    const tables = this.#buffers.get(tenant);
    this.#buffers.delete(tenant);
    if (!tables) return;
    const engine = this.#engineFor(tenant);
    if (!engine) {
      // The tenant is gone: so are the rows (and their journal).
      this.#dropJournals(tenant, tables.keys());
      return;
    }
    const journaled = this.#sealJournals(tenant, tables.keys());
    let inFlight = 0;
    for (const b of tables.values()) inFlight += b.bytes;
    this.#inFlight.set(tenant, (this.#inFlight.get(tenant) ?? 0) + inFlight);
    try {
      // A server that accepts and never answers holds these (and the version it is asked first,
      // features()) no longer than the time limit.
      await within(this.ensure(tenant), SERVICE_WRITE_TIMEOUT_MS, 'service tables check');
      for (const [table, b] of tables) {
        if (!b.rows.length) continue;
        // Older servers keep Map columns as JSON text.
        // A Map column left out takes an empty map ({}), as on the embedded engine, not ''.
        const maps = MAP_COLUMNS[table] ?? [];
        const lines = (await within(mapsAsText(engine), SERVICE_WRITE_TIMEOUT_MS, 'server version'))
          ? b.rows.map((l) => {
            const row = JSON.parse(l) as Record<string, unknown>;
            for (const m of maps) if (row[m] === undefined || row[m] === null) row[m] = {};
            return JSON.stringify(Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v !== null && typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : v])));
          })
          : b.rows;
        const insert = (rows: number[]) => within(engine.insert(`${serviceDb(tenant)}.${table}`, 'JSONEachRow', [Buffer.from(rows.map((i) => lines[i]).join('\n') + '\n')], {
          settings: { input_format_skip_unknown_fields: 1, date_time_input_format: 'best_effort' },
          signal: AbortSignal.timeout(SERVICE_WRITE_TIMEOUT_MS),
        }), SERVICE_WRITE_TIMEOUT_MS + 1000, 'service log insert');
        const all = b.rows.map((_, i) => i);
        const { left, dropped, err } = await insertIsolating(insert, all);
        if (dropped.length) {
          // A row the engine refuses on its own would keep every later write of this table
          // failing behind it: it is dropped, and said so (not its text: it may hold parameters).
          this.#log.error('service log rows refused by the engine were dropped', { tenant, table: `${serviceDb(tenant)}.${table}`, dropped_rows: dropped.length, err });
        }
        if (left.length) {
          const keep = new Set(left);
          b.rows = b.rows.filter((_, i) => keep.has(i));
          b.bytes = b.rows.reduce((a, l) => a + Buffer.byteLength(l), 0);
          throw err;
        }
        this.#inFlight.set(tenant, Math.max(0, (this.#inFlight.get(tenant) ?? 0) - b.bytes));
        inFlight -= b.bytes;
        this.#journaled(tenant, table, journaled.get(table));
        b.rows = [];
        b.bytes = 0;
        this.#dropLogged.delete(`${tenant}\0${table}`);
      }
      this.#pruneIfDue(tenant, engine);
    } catch (e) {
      // Keep the rows not written: put them back in front of anything written meanwhile, up to
      // a bound (a server down for hours must not grow this process without end).
      const now = this.#buffers.get(tenant) ?? new Map<string, Buffered>();
      let dropped = 0;
      for (const [table, b] of tables) {
        if (!b.rows.length) continue;
        const cur = now.get(table);
        const merged = cur ? { rows: [...b.rows, ...cur.rows], bytes: b.bytes + cur.bytes } : b;
        const trimmed = this.#trim(tenant, table, merged);
        dropped += trimmed;
        now.set(table, merged);
        // The rows dropped from memory leave the disk too: the journal kept every row of an
        // outage (hours of audit rows) while memory kept the bound's worth. Dropped now, or
        // earlier while this write was in flight (write()'s trim: then the merge may be within
        // the bound and drop nothing more); #compactJournal knows which tables dropped rows.
        this.#compactJournal(tenant, table, merged.rows);
      }
      if (now.size) this.#buffers.set(tenant, now);
      this.#log.error('service log write failed; rows kept for the next flush', { tenant, err: e, ...(dropped ? { dropped_rows: dropped } : {}) });
    } finally {
      const left = (this.#inFlight.get(tenant) ?? 0) - inFlight;
      if (left > 0) this.#inFlight.set(tenant, left); else this.#inFlight.delete(tenant);
    }
  }

  /**
   * Deletes the tenant's service rows older than their table's retention, at most once per
   * `retention.everyMs`, after a write of the tenant's rows succeeded: only tenants in use are
   * pruned (an idle tenant's cell is not started for it; its rows go at its next use). A table
   * with nothing past its retention is only read (a count), not touched, nor one whose deletion
   * of an earlier prune still runs. A lightweight `DELETE` (23.3+) or `ALTER TABLE ... DELETE` (a
   * mutation) rather than a TTL: servers before 19.6 have no TTL, and a TTL acts only when parts
   * merge. Runs beside the writes, not in their way; a failure is logged and tried again at the
   * next interval.
   */
  #pruneIfDue(tenant: string, engine: Engine): void {
    const r = this.#retention;
    if (!r || this.#pruning.has(tenant)) return;
    const now = Date.now();
    const last = this.#prunedAt.get(tenant);
    if (last !== undefined && now - last < r.everyMs) return;
    this.#prunedAt.set(tenant, now);
    const run = (async () => {
      for (const [table, seconds] of Object.entries(r.seconds)) {
        if (!seconds) continue;
        const t = `${serviceDb(tenant)}.${table}`;
        const cutoff = Math.floor(now / 1000) - seconds;
        const where = `${quoteIdent(SERVICE_TABLES[table]!.time)} < toDateTime(${cutoff})`;
        try {
          const opts = { timeoutMs: SERVICE_WRITE_TIMEOUT_MS, background: true, format: 'TSV' };
          // A deletion of an earlier prune still running (a large table): not another on top of
          // it, and its rows not counted twice.
          if (await unfinishedMutations(engine, serviceDb(tenant), table, opts)) continue;
          const rows = Number((await engine.exec(`SELECT count() FROM ${t} WHERE ${where}`, opts)).toString().trim());
          if (!rows) continue;
          // A lightweight DELETE (23.3+: rows masked now, removed as parts merge) where the engine
          // has it; else a mutation rewriting the parts that hold such rows.
          const lightweight = versionAtLeast(await engine.version(), 23, 3);
          await engine.exec(lightweight ? `DELETE FROM ${t} WHERE ${where}` : `ALTER TABLE ${t} DELETE WHERE ${where}`, { timeoutMs: SERVICE_WRITE_TIMEOUT_MS, background: true });
          this.#metrics?.serviceLogPrunedRows?.inc({ tenant, table }, rows);
          this.#log.info('service rows past their retention deleted', { tenant, table: t, rows, older_than: new Date(cutoff * 1000).toISOString(), retention_s: seconds });
        } catch (e) {
          this.#log.error('service rows past their retention could not be deleted; tried again after the interval', { tenant, table: t, err: e, retry_after_ms: r.everyMs });
        }
      }
    })().finally(() => this.#pruning.delete(tenant));
    this.#pruning.set(tenant, run);
  }

  /** Resolves once no prune of the tenant runs (tests; drop). */
  async pruned(tenant: string): Promise<void> {
    await this.#pruning.get(tenant);
  }

  /**
   * Forgets a deleted tenant: its rows waiting, its upgrade and prune state. Waits for its write,
   * upgrade and prune in progress, so that none of them runs against the tenant's engine after
   * this (an embedded cell is stopped next; a remote service database dropped).
   */
  async forget(tenant: string): Promise<void> {
    this.#buffers.delete(tenant);
    await this.#flushing.get(tenant)?.queued?.catch(() => undefined);
    await this.#flushing.get(tenant)?.running.catch(() => undefined);
    this.#buffers.delete(tenant);
    this.#dropJournals(tenant, Object.keys(SERVICE_TABLES));
    if (this.#journalDir) fs.rmSync(path.join(this.#journalDir, tenant), { recursive: true, force: true });
    // An ensure in progress (the first, or a retry of a failed upgrade) would create the
    // database again after a DROP: it ends first (each of its statements has a time limit, so
    // the wait is bounded). Ensures after this find no engine: the tenant's state is gone before
    // this is called (deleteTenant).
    const ready = this.#ready.get(tenant);
    this.#ready.delete(tenant);
    this.#pending.delete(tenant);
    await ready?.catch(() => undefined);
    this.#metrics?.serviceUpgradesPending.remove({ tenant });
    await this.#pruning.get(tenant);
    this.#prunedAt.delete(tenant);
  }

  /**
   * Forgets a deleted tenant's service rows and drops its service database from the engine (on a
   * remote server it outlives the tenant otherwise: its pipe parameters, audit records, ...).
   */
  async drop(tenant: string, engine: Engine): Promise<void> {
    await this.forget(tenant);
    const cluster = (engine as { cluster?: string }).cluster;
    await engine.exec(`DROP DATABASE IF EXISTS ${serviceDb(tenant)}${cluster ? ` ON CLUSTER ${quoteIdent(cluster)}` : ''}`, { timeoutMs: SERVICE_WRITE_TIMEOUT_MS });
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
    // Rows not written (an engine away) stay in their journal files for the next start.
    for (const j of this.#journals.values()) { try { fs.closeSync(j.fd); } catch { /* closed */ } }
    this.#journals.clear();
  }
}
