/**
 * Data sources: a table with a schema in a workspace's database, plus its
 * `<name>_quarantine` table for rejected rows. State path
 * `datasources/<tenant>/<workspace>/<name>`.
 */
import crypto from 'node:crypto';
import type { State } from '../state/state.js';
import type { Op } from '../state/store.js';
import { mayHaveRun, QueryFailed, RoostError } from '../errors.js';
import type { Engine } from '../cells/engine.js';
import { quoteIdent, quoteString, unfinishedMutations } from '../cells/engine.js';
import { refuseIdShaped } from '../pipes/pipe.js';
import { compatColumns } from '../cells/compat.js';
import { ClickHouseEngine } from '../cells/clickhouse.js';
import type { Workspace } from '../../tenants/registry.js';

export interface DataSourceColumn {
  name: string;
  type: string;
  nullable: boolean;
  jsonPath: string | null;
  defaultExpr: string | null;
}

export interface DataSource {
  id: string;
  name: string;
  tenant: string;
  workspace: string;
  columns: DataSourceColumn[];
  engine: string;
  sortingKey: string;
  createdAt: string;
  /**
   * The table's name inside the workspace database (stable): the name the data source was
   * created with, unless a data source renamed away from that name still uses it. A rename
   * changes only `name`.
   */
  table: string;
  /** Set with PUT /v0/datasources/<name>; absent until then. */
  description?: string;
  updatedAt?: string;
  /**
   * The header cells, as written, of the file a CSV create inferred the columns from, where they
   * differ from the names (`Revenue %`, `Revenue #` → Revenue, Revenue_2): a later file's header
   * is matched against them, so cells that read as the same name are told apart by their text.
   */
  headerAs?: string[];
}

export const DATASOURCE_NAME = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_]{0,127}$/;  // (not __proto__: JavaScript's own)
const RESERVED = /(_quarantine|__stage_[0-9a-f]+)$/;

export function checkDataSourceName(name: string | null | undefined): string {
  if (!name) throw new RoostError('INVALID_PARAMETER', 'name is required: the data source name (letters, digits, _; starting with a letter or _)');
  if (!DATASOURCE_NAME.test(name)) throw new RoostError('INVALID_PARAMETER', `"${name}" is not a valid data source name: use letters, digits and _ (at most 128), starting with a letter or _`);
  if (RESERVED.test(name)) throw new RoostError('INVALID_PARAMETER', `"${name}" ends with a reserved suffix (_quarantine)`);
  // An endpoint's q= reads its result as `_`: a data source of that name could not be read there
  // (a pipe may not take it either).
  if (name === '_') throw new RoostError('INVALID_PARAMETER', '"_" is a reserved name (q= reads an endpoint\'s result as _); choose another name');
  refuseIdShaped(name);
  return name;
}

export function getDataSource(state: State, tenant: string, workspace: string, name: string): DataSource {
  const ds = state.get<DataSource>('datasources', tenant, workspace, name);
  if (!ds) throw new RoostError('UNKNOWN_DATASOURCE', `there is no data source "${name}" in this workspace`);
  return ds;
}

export function listDataSources(state: State, tenant: string, workspace: string): DataSource[] {
  return state.list<DataSource>('datasources', tenant, workspace);
}

/**
 * The engine table of a new data source `name`: its name, unless a data source of the workspace
 * uses that table (or its quarantine) already, which happens after a rename (the renamed one
 * keeps its table); then the name with the data source's id after it.
 */
export function tableFor(state: State, tenant: string, workspace: string, name: string, id: string): string {
  const used = new Set<string>();
  for (const d of listDataSources(state, tenant, workspace)) { used.add(d.table); used.add(`${d.table}_quarantine`); }
  const free = (t: string) => !used.has(t) && !used.has(`${t}_quarantine`);
  if (free(name)) return name;
  for (let n = 0; ; n++) {
    const t = `${name}_${id.slice(2)}${n ? `_${n}` : ''}`;
    if (free(t)) return t;
  }
}

/** The quarantine table's own columns: a data source column may not take these names. */
export const QUARANTINE_OWN: ReadonlySet<string> = new Set(['c__import_id', 'c__error_column', 'c__error', 'c__line', 'c__raw', 'insertion_date']);

export function newDataSource(ws: Workspace, name: string, columns: DataSourceColumn[], sortingKey?: string, state?: State): DataSource {
  // Said before any table is made (it was the engine's "column with this name already exists",
  // a 422 QUERY_FAILED, from the quarantine table's CREATE).
  const clash = columns.find((c) => QUARANTINE_OWN.has(c.name));
  if (clash) {
    throw new RoostError('SCHEMA_SYNTAX', `column name "${clash.name}" is reserved: ${name}_quarantine, where rows that fail validation go, has a column of that name (${[...QUARANTINE_OWN].join(', ')} are taken); rename the column in the schema or the file's header`, { details: { column: clash.name } });
  }
  const id = `t_${crypto.randomBytes(8).toString('hex')}`;
  return {
    id,
    name,
    tenant: ws.tenant,
    workspace: ws.name,
    columns,
    engine: 'MergeTree',
    sortingKey: sortingKey ?? defaultSortingKey(columns),
    createdAt: new Date().toISOString(),
    table: state ? tableFor(state, ws.tenant, ws.name, name, id) : name,
  };
}

/** Tinybird's default: the first columns that are not Nullable, else tuple(). */
function defaultSortingKey(columns: DataSourceColumn[]): string {
  const keyable = columns.filter((c) => !c.nullable && !/^(Array|Map|Tuple|JSON|Object)/.test(c.type)).slice(0, 1);
  return keyable.length ? keyable.map((c) => quoteIdent(c.name)).join(', ') : 'tuple()';
}

export function putDataSourceOps(ds: DataSource): Op[] {
  return [{ op: 'put', path: ['datasources', ds.tenant, ds.workspace, ds.name], value: ds }];
}

export function deleteDataSourceOps(ds: DataSource): Op[] {
  return [{ op: 'del', path: ['datasources', ds.tenant, ds.workspace, ds.name] }];
}

export function qualified(ws: Workspace, table: string): string {
  return `${quoteIdent(ws.database)}.${quoteIdent(table)}`;
}

export function columnsDDL(columns: DataSourceColumn[]): string {
  // A DEFAULT and the sorting key (checkTableExpression, api/datasources.ts) each stand in
  // brackets of their own, closed on a line of their own: a comment at their end cannot take
  // the rest of the statement, nor can a bracket they close take them out of their place.
  return columns.map((c) => `${quoteIdent(c.name)} ${c.type}${c.defaultExpr ? ` DEFAULT (${c.defaultExpr}\n)` : ''}`).join(', ');
}

export const QUARANTINE_COLUMNS = '`c__import_id` String, `c__error_column` Array(String), `c__error` Array(String), `c__line` UInt64, `c__raw` String, `insertion_date` DateTime64(3, \'UTC\')';

/**
 * The settings of a data source's tables on a cell: the deduplication window lets a retried insert
 * (a buffer flush after a crash between the insert and the removal of its segments, a group
 * commit, its quarantine rows) be recognised and skipped by the engine.
 */
function dedupWindow(engine: Engine): string {
  return engine.kind === 'embedded' ? ' SETTINGS non_replicated_deduplication_window = 1000' : '';
}

/** A data source table's definition after its name: columns, engine, sorting key, settings. */
function tableDefinition(engine: Engine, ds: DataSource): string {
  return `(${columnsDDL(ds.columns)}) ENGINE = MergeTree ORDER BY (${ds.sortingKey}\n)${dedupWindow(engine)}`;
}

/** A quarantine table's definition after its name. */
async function quarantineDefinition(engine: Engine, ds: DataSource): Promise<string> {
  const original = ds.columns.map((c) => `${quoteIdent(c.name)} Nullable(String)`).join(', ');
  return `(${original}, ${await compatColumns(engine, QUARANTINE_COLUMNS)}) ENGINE = MergeTree ORDER BY insertion_date${dedupWindow(engine)}`;
}

/**
 * Attaches again, with its data source's definition, a table of a cell whose definition file was
 * moved aside at the cell's start (written empty on a full disk, see cells/metadata-repair.ts):
 * its parts, still in its directory (`uuid`), are the table's again.
 */
export async function reattachTable(engine: Engine, ws: Workspace, ds: DataSource, table: string, uuid: string): Promise<void> {
  const definition = table === ds.table ? tableDefinition(engine, ds) : await quarantineDefinition(engine, ds);
  await engine.exec(`ATTACH TABLE ${qualified(ws, table)} UUID ${quoteString(uuid)} ${definition}`);
}

export async function createTables(engine: Engine, ws: Workspace, ds: DataSource, table = ds.table): Promise<void> {
  try {
    await engine.exec(`CREATE TABLE IF NOT EXISTS ${qualified(ws, table)} ${tableDefinition(engine, ds)}`);
  } catch (e) {
    throw await unknownType(engine, e) ?? schemaRefusal(e, ws);
  }
}

/**
 * Rows with a column's DEFAULT go to the engine in RowBinaryWithDefaults, which servers before
 * 23.3 do not read: every append of such a data source failed there, and buffered events were
 * acknowledged (202) and never stored. Refused (400) before anything is created or accepted.
 */
export async function checkDefaultsSupported(engine: Engine, columns: DataSourceColumn[], opts: { unknownPasses?: boolean } = {}): Promise<void> {
  const col = columns.find((c) => c.defaultExpr);
  if (!col || !(engine instanceof ClickHouseEngine)) return;
  // `unknownPasses`: the server's version unknown (it is away) is no refusal — /v0/events keeps
  // events while the engine is away, and its flush refuses them (quarantined) if it must.
  // (Not known within 2 s, a server that takes connections and does not answer, counts as unknown.)
  const f = opts.unknownPasses
    ? await Promise.race([engine.features().catch(() => undefined), new Promise<undefined>((r) => { setTimeout(r, 2_000); })])
    : await engine.features();
  if (!f) return;
  if (f.rowBinaryWithDefaults) return;
  throw new RoostError('SCHEMA_UNSUPPORTED', `column ${col.name} has a DEFAULT: this tenant's ClickHouse server (version ${f.version}) cannot take rows that leave a value to its DEFAULT (that needs 23.3 or later); leave the DEFAULT out, or move the tenant to a newer server`, { details: { column: col.name, server_version: f.version } });
}

/**
 * A type of the schema that the tenant's own (older) ClickHouse server does not have (IPv4 and
 * IPv6 before 19.x, Bool, Date32, ...): the schema's fault on that server, said as such.
 */
async function unknownType(engine: Engine, e: unknown): Promise<RoostError | undefined> {
  if (!(engine instanceof ClickHouseEngine) || !(e instanceof QueryFailed) || e.clickhouseCode !== 50) return undefined;
  const type = /Unknown data type family: ([A-Za-z0-9_]+)/.exec(e.message)?.[1];
  if (!type) return undefined;
  const version = await engine.version().catch(() => 'unknown');
  return new RoostError('SCHEMA_SYNTAX', `type ${type} is not available on this tenant's ClickHouse server (version ${version}); use another type (e.g. String)`, { details: { clickhouse_code: 50, type } });
}

/**
 * ClickHouse codes of a CREATE refused for what the schema says: a DEFAULT expression or a
 * sorting key that does not parse, names nothing, or does not fit its column's type.
 */
const SCHEMA_REFUSALS = new Set([6, 27, 36, 42, 43, 44, 46, 47, 48, 50, 53, 62, 70, 116, 169, 179, 455, 549]);

/** The engine's virtual columns, which its messages list among a table's columns. */
const VIRTUAL = new Set(['_part', '_part_index', '_part_uuid', '_part_offset', '_part_data_version', '_part_starting_offset', '_part_granule_offset',
  '_partition_id', '_partition_value', '_block_number', '_block_offset', '_row_exists', '_database', '_table', '_distance', '_disk_name', '_sample_factor']);

/**
 * The engine's refusal of a data source's CREATE as the user's error (400): their DEFAULT
 * expressions and sorting key are only checked by the engine. The quoted statement is cut
 * before Roost's own part of it (engine, settings), which is not theirs to see.
 */
export function schemaRefusal(e: unknown, ws: Workspace): unknown {
  if (!(e instanceof QueryFailed) || e.clickhouseCode === undefined || !SCHEMA_REFUSALS.has(e.clickhouseCode)) return e;
  const text = e.message.replace(/^Code: \d+\.\s*/, '').replace(/^DB::Exception:\s*/, '').replace(/\)?\s*ENGINE = MergeTree[\s\S]*$/, '…').replace(/\s*\(version [^)]*\)\s*$/, '')
    .split(`${quoteIdent(ws.database)}.`).join('').split(`${ws.database}.`).join('');
  // A DEFAULT naming what is not a column: the engine checks it on a statement of its own, with a
  // temporary name for the column, and calls the types incompatible; said of the column.
  const tmp = /\) AS `?([^\s`,()]+?)_tmp_alter\d+/.exec(text);
  if (tmp && /UNKNOWN_IDENTIFIER/.test(text)) {
    // The expression is what the bracket closing before ` AS <column>_tmp_alter` opened.
    let depth = 0;
    let open = -1;
    for (let i = tmp.index; i >= 0; i--) {
      if (text[i] === ')') depth++;
      else if (text[i] === '(' && --depth === 0) { open = i; break; }
    }
    const expr = open >= 0 ? ` (${text.slice(open + 1, tmp.index)})` : '';
    return new RoostError('SCHEMA_SYNTAX', `the DEFAULT expression of column ${tmp[1]}${expr} names something that is neither a column of the schema nor a function`, { details: { clickhouse_code: e.clickhouseCode, column: tmp[1] } });
  }
  // The columns an expression may name, without the engine's virtual ones (_part, _block_number, ...).
  const shown = text.replace(/(available columns: )((?:'[^']*'\s*)+)/, (_m, head: string, list: string) => head + (list.match(/'[^']*'/g) ?? []).filter((c) => !VIRTUAL.has(c.slice(1, -1))).join(' ') + ' ');
  // LowCardinality of a number or a date (SUSPICIOUS_TYPE_FOR_LOW_CARDINALITY): a type, not an expression.
  if (e.clickhouseCode === 455) {
    const type = /Creating columns of type (\S+)/.exec(text)?.[1];
    return new RoostError('SCHEMA_SYNTAX', `${type ?? 'a LowCardinality type'} is refused by the engine: LowCardinality is for strings (LowCardinality(String), LowCardinality(Nullable(String))); write the column's type without it`, { details: { clickhouse_code: 455, ...(type ? { type } : {}) } });
  }
  // Code 62 with this text: the CREATE statement is over the engine's max_query_size (a schema of tens of thousands of columns).
  if (/Max query size exceeded/i.test(text)) return new RoostError('SCHEMA_SYNTAX', 'the schema is too large for the engine (its CREATE statement is over 256 KiB): use fewer columns, or shorter names and types', { details: { clickhouse_code: e.clickhouseCode } });
  return new RoostError('SCHEMA_SYNTAX', `the engine refused the schema (a DEFAULT expression or engine_sorting_key): ${shown}`, { details: { clickhouse_code: e.clickhouseCode } });
}

export async function createQuarantine(engine: Engine, ws: Workspace, ds: DataSource, table = `${ds.table}_quarantine`): Promise<void> {
  await engine.exec(`CREATE TABLE IF NOT EXISTS ${qualified(ws, table)} ${await quarantineDefinition(engine, ds)}`);
}

/**
 * A rows delete the engine failed part of the way (its condition threw on rows the count before it
 * did not read): the mutation is killed — left queued, it failed every later delete of the data
 * source, survived restarts, and ran those deletes once it was let go — and the error says what
 * happened, without the engine's stack trace.
 */
async function failedMutation(engine: Engine, ws: Workspace, table: string, e: unknown): Promise<unknown> {
  if (!(e instanceof QueryFailed)) return e;
  try {
    await engine.exec(`KILL MUTATION WHERE database = ${quoteString(ws.database)} AND table = ${quoteString(table)} AND is_done = 0`);
  } catch { /* the engine away: the next delete's own failure says so */ }
  if (e.code === 'INSUFFICIENT_STORAGE') return new RoostError('INSUFFICIENT_STORAGE', "the rows delete failed: the tenant's engine could not write to its disk (full, or over a quota). Had it started deleting, it was stopped: rows of the parts it had finished may be gone, the others are not; retry once the operator has freed space", { retryable: true, headers: { 'Retry-After': '30' }, details: e.details });
  const reason = e.message.replace(/\s*Stack trace[\s\S]*$/i, '').replace(/\n\d+\.\s[\s\S]*$/, '').trim();
  return new RoostError('QUERY_FAILED', `the rows delete failed in the engine: ${reason} (had it started deleting, it was stopped: rows of the parts it had finished may be gone, the others are not); write the condition so that it holds for every row`, { details: { clickhouse_code: e.clickhouseCode } });
}

/**
 * Deletes the rows of a data source's table that match `where` and waits until they are gone.
 * Servers before `mutations_sync` (an unknown setting there, refused) get the mutation without
 * it, then system.mutations is polled until the table has none left to do.
 */
export async function deleteRowsWhere(engine: Engine, ws: Workspace, table: string, where: string, waitMs = 300_000): Promise<void> {
  const sync = !(engine instanceof ClickHouseEngine) || (await engine.features()).mutationsSync;
  if (sync) {
    try {
      await engine.exec(`ALTER TABLE ${qualified(ws, table)} DELETE WHERE ${where}`, { settings: { mutations_sync: 2 } });
    } catch (e) {
      // The engine stopped (or the answer was lost) with the statement in it: the engine keeps a
      // mutation it accepted and finishes it when it is back. Answered as "retry, nothing was
      // done" (503), the delete was applied all the same a moment later.
      if (mayHaveRun(e)) {
        throw new RoostError('DELETE_OUTCOME_UNKNOWN', "the tenant's engine stopped while this rows delete ran in it: the delete may have been applied, or may be applied when the engine is back (it keeps a delete it accepted), so rows matching the condition may be gone now or shortly. Check with a count before deciding; sending it again deletes nothing more", { cause: e });
      }
      throw await failedMutation(engine, ws, table, e);
    }
    return;
  }
  await engine.exec(`ALTER TABLE ${qualified(ws, table)} DELETE WHERE ${where}`);
  const deadline = Date.now() + waitMs;
  for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
    // (Servers before 19.x have no latest_fail_reason: their failed mutation waits out waitMs.)
    const failed = await engine.exec(`SELECT any(latest_fail_reason) FROM system.mutations WHERE database = ${quoteString(ws.database)} AND table = ${quoteString(table)} AND is_done = 0 AND latest_fail_reason != ''`)
      .then((b) => b.toString().trim(), () => '');
    if (failed) throw await failedMutation(engine, ws, table, new QueryFailed(failed, Number(/^Code: (\d+)/.exec(failed)?.[1] ?? 0) || undefined));
    if ((await unfinishedMutations(engine, ws.database, table)) === 0) return;
    if (Date.now() > deadline) throw new RoostError('QUERY_TIMEOUT', `the rows delete did not finish on the ClickHouse server within ${Math.round(waitMs / 1000)} s; it goes on there (see system.mutations)`);
    await new Promise((r) => setTimeout(r, delay));
  }
}
