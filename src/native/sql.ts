/**
 * The native ClickHouse SQL analyzer: the security boundary every tenant query passes.
 *
 * Exported API (all synchronous; analysis of one query takes microseconds):
 *
 * - `analyzeSql(sql, nameMap, options?) => SqlAnalysis`
 *   Checks one SELECT against the read-only policy and rewrites every table reference
 *   to the qualified SQL of its name map entry. Returns `{ sql, tables, format?, formatOffset? }`.
 * - `compilePipe(nodes, nameMap, targetNode?, options?) => CompiledPipe`
 *   Builds the dependency graph of a pipe's nodes, refuses cycles and unknown names, and
 *   compiles the target node (default: the last) into one query where node references are
 *   inlined subqueries. Returns `{ sql, order, dependencies }`.
 * - `createNameMap(entries) => SqlNameMap`
 *   Converts a name map once; pass the result to many calls. Plain objects passed to the
 *   functions above are converted and cached per object (a `WeakMap`), so do not mutate them.
 * - `SqlError` (`code`, `offset`, `node?`) and `toRoostError(err)` for the HTTP layer.
 *
 * Name map: user-visible name → entry. A string is shorthand for `{ kind: 'table', sql }`.
 * ```ts
 * const map = {
 *   events: '`ws_default`.`events`',
 *   'tinybird.pipe_stats_rt': '`ws_default`.`_tinybird_pipe_stats_rt`',
 *   top_pages: { kind: 'query', sql: 'SELECT page, count() AS c FROM `ws_default`.`events` GROUP BY page' },
 * };
 * analyzeSql('SELECT count() FROM events FORMAT CSV', map);
 * // => { sql: 'SELECT count() FROM `ws_default`.`events` AS events', format: 'CSV', formatOffset: 35,
 * //      tables: [{ name: 'events', kind: 'table', offset: 21, length: 6, via: 'from' }] }
 * compilePipe([{ name: 'a', sql: 'SELECT * FROM events' }, { name: 'b', sql: 'SELECT count() FROM a' }], map, 'b');
 * // => { sql: 'SELECT count() FROM (SELECT * FROM `ws_default`.`events` AS events) AS a', order: ['a', 'b'],
 * //      dependencies: { a: ['events'], b: ['a'] } }
 * ```
 *
 * Offsets are byte offsets into the UTF-8 encoding of the SQL text (equal to string
 * indexes for ASCII queries); for pipe errors, into the SQL of `node`.
 *
 * Policy (see native/core/sql/policy.cc and scripts/gen-sql-functions.mjs):
 * only SELECT (also `WITH ... SELECT`, `FROM ... SELECT`, bracketed SELECT, UNION/INTERSECT/EXCEPT);
 * one statement (a trailing `;` is fine); tables only from the name map, never `system` or
 * `information_schema`; table functions `numbers`, `numbers_mt`, `zeros`, `zeros_mt`,
 * `generateRandom`, `values`, `generateSeries`/`generate_series`, `primes`; functions from the
 * generated allowlist (`dictGet*`/`joinGet*` only with a string literal naming a map table);
 * SETTINGS keys `max_threads`, `join_use_nulls`, `join_algorithm`, `optimize_read_in_order`,
 * `optimize_aggregation_in_order`, `aggregate_functions_null_for_empty`,
 * `output_format_json_quote_64bit_integers` with literal values; FORMAT `CSV`, `CSVWithNames`,
 * `TSV`, `TSVWithNames`, `JSONEachRow`, `Parquet`, `JSON` at the end of `analyzeSql` queries only; no
 * `INTO OUTFILE`, no `{param:Type}` query parameters.
 */
import { native } from './addon.js';
import { RoostError } from '../errors.js';

/** Stable codes of analyzer errors; tests and callers switch on these. */
export type SqlErrorCode =
  | 'SYNTAX_ERROR'
  | 'QUERY_TOO_LARGE'
  | 'NESTING_TOO_DEEP'
  | 'MULTIPLE_STATEMENTS'
  | 'NOT_A_SELECT'
  | 'UNKNOWN_TABLE'
  | 'FORBIDDEN_DATABASE'
  | 'FORBIDDEN_TABLE_FUNCTION'
  | 'FORBIDDEN_FUNCTION'
  | 'UNKNOWN_FUNCTION'
  | 'FORBIDDEN_SETTING'
  | 'FORBIDDEN_CLAUSE'
  | 'UNSUPPORTED_FORMAT'
  | 'FORMAT_NOT_ALLOWED'
  | 'PIPE_CYCLE'
  | 'UNKNOWN_NODE'
  | 'DUPLICATE_NODE'
  | 'INVALID_NAME_MAP';

/** A query the analyzer refused. `offset` is the byte offset of the offending token. */
export class SqlError extends Error {
  readonly code: SqlErrorCode;
  readonly offset: number;
  /** For `compilePipe`: the node whose SQL holds the error. */
  readonly node: string | undefined;

  constructor(code: SqlErrorCode, message: string, offset: number, node?: string) {
    super(message);
    this.name = 'SqlError';
    this.code = code;
    this.offset = offset;
    this.node = node;
  }
}

/** Which of the server's codes (and so which HTTP status) a SqlError maps to. */
export function roostCodeOf(code: SqlErrorCode): 'SQL_SYNTAX' | 'SQL_FORBIDDEN' | 'SQL_INVALID' | 'BODY_TOO_LARGE' {
  switch (code) {
    case 'SYNTAX_ERROR':
    case 'NESTING_TOO_DEEP':
      return 'SQL_SYNTAX';
    case 'QUERY_TOO_LARGE':
      return 'BODY_TOO_LARGE';
    case 'FORBIDDEN_DATABASE':
    case 'FORBIDDEN_TABLE_FUNCTION':
    case 'FORBIDDEN_FUNCTION':
    case 'FORBIDDEN_SETTING':
    case 'FORBIDDEN_CLAUSE':
    case 'NOT_A_SELECT':
    case 'MULTIPLE_STATEMENTS':
      return 'SQL_FORBIDDEN';
    default:
      return 'SQL_INVALID';
  }
}

/** The seam to the server's error type: keeps the analyzer code, offset and node as details. */
export function toRoostError(err: SqlError): RoostError {
  const details: Record<string, unknown> = { sql_code: err.code, offset: err.offset };
  if (err.node !== undefined) details.node = err.node;
  return new RoostError(roostCodeOf(err.code), err.message, { cause: err, details });
}

export type NameMapEntry = string | { kind: 'table' | 'query'; sql: string };
export type NameMapInput = Readonly<Record<string, NameMapEntry>> | ReadonlyMap<string, NameMapEntry>;

/** A name map converted for the native side. Opaque. */
export interface SqlNameMap {
  readonly names: readonly string[];
  readonly kinds: readonly ('table' | 'query')[];
  /** @internal */
  readonly handle: unknown;
}

export interface SqlOptions {
  /** Maximum query size in bytes (default 256 KiB). */
  maxQuerySize?: number;
  /**
   * Refuse a WITH alias (`WITH 'acme' AS org`) in scope where an inlined pipe or node uses that
   * name: ClickHouse's old query analyzer (a tenant's own server) replaces it inside, and a pipe's
   * condition on a JWT's fixed parameter held for every row. For credentials with fixed parameters.
   */
  guardAliases?: boolean;
}

export interface TableReference {
  /** The name map key the reference resolved to. */
  name: string;
  kind: 'table' | 'query';
  offset: number;
  length: number;
  /** `from`: FROM/JOIN; `in`: `x IN name`; `literal`: dictGet/joinGet's first argument. */
  via: 'from' | 'in' | 'literal';
}

export interface SqlAnalysis {
  /** The rewritten query: qualified names, no FORMAT clause, no trailing `;`. */
  sql: string;
  tables: TableReference[];
  format?: string;
  formatOffset?: number;
}

export interface PipeNodeInput {
  name: string;
  sql: string;
}

export interface CompiledPipe {
  /** The target node as one query. */
  sql: string;
  /** Names of the nodes the target needs, dependencies first, the target last. */
  order: string[];
  /** For every node: the names it references (other nodes or name map entries), first use first. */
  dependencies: Record<string, string[]>;
}

interface NativeError {
  code: SqlErrorCode;
  offset: number;
  message: string;
  node?: string;
}

const converted = new WeakMap<object, SqlNameMap>();
const VIA = ['from', 'in', 'literal'] as const;

function isNativeError(v: unknown): v is NativeError {
  return typeof v === 'object' && v !== null && typeof (v as NativeError).code === 'string';
}

/** Converts a name map once for use by many `analyzeSql`/`compilePipe` calls. */
export function createNameMap(entries: NameMapInput): SqlNameMap {
  const names: string[] = [];
  const kinds: ('table' | 'query')[] = [];
  const sqls: string[] = [];
  const iter = entries instanceof Map ? entries.entries() : Object.entries(entries);
  for (const [name, entry] of iter as Iterable<[string, NameMapEntry]>) {
    names.push(name);
    if (typeof entry === 'string') {
      kinds.push('table');
      sqls.push(entry);
    } else {
      if (entry.kind !== 'table' && entry.kind !== 'query') throw new TypeError(`name map entry ${name}: kind must be 'table' or 'query'`);
      kinds.push(entry.kind);
      sqls.push(entry.sql);
    }
  }
  const kindBytes = Uint8Array.from(kinds, (k) => (k === 'query' ? 1 : 0));
  const handle: unknown = native().sqlCreateNameMap(names, kindBytes, sqls);
  if (isNativeError(handle)) throw new SqlError(handle.code, handle.message, handle.offset);
  return { names, kinds, handle };
}

function nameMapOf(input: SqlNameMap | NameMapInput): SqlNameMap {
  if (isSqlNameMap(input)) return input;
  let m = converted.get(input);
  if (!m) {
    m = createNameMap(input);
    converted.set(input, m);
  }
  return m;
}

function isSqlNameMap(v: unknown): v is SqlNameMap {
  return typeof v === 'object' && v !== null && 'handle' in v && 'kinds' in v && Array.isArray((v as SqlNameMap).names);
}

/**
 * Analyzes one tenant SELECT: enforces the policy and rewrites table references.
 * @throws SqlError with a stable `code` and the byte `offset` of the offending token.
 * @example
 * analyzeSql('SELECT e.id FROM events e', { events: '`ws`.`events`' }).sql
 * // 'SELECT e.id FROM `ws`.`events` e'
 */
export function analyzeSql(sql: string, nameMap: SqlNameMap | NameMapInput, options: SqlOptions = {}): SqlAnalysis {
  if (typeof sql !== 'string') throw new TypeError('sql must be a string');
  const map = nameMapOf(nameMap);
  const r = native().sqlAnalyze(sql, map.handle, options.maxQuerySize ?? 0, options.guardAliases ?? false) as
    | NativeError
    | { sql: string; refs: Uint32Array; format?: string; formatOffset?: number };
  if (isNativeError(r)) throw new SqlError(r.code, r.message, r.offset);
  const tables: TableReference[] = [];
  for (let i = 0; i < r.refs.length; i += 4) {
    const entry = r.refs[i + 2];
    tables.push({
      name: map.names[entry],
      kind: map.kinds[entry],
      offset: r.refs[i],
      length: r.refs[i + 1],
      via: VIA[r.refs[i + 3]] ?? 'from',
    });
  }
  const out: SqlAnalysis = { sql: r.sql, tables };
  if (r.format !== undefined) {
    out.format = r.format;
    out.formatOffset = r.formatOffset;
  }
  return out;
}

/**
 * `expr` (a row filter) with its references to `columns` qualified by `qualifier` (SQL, e.g.
 * `` `ws`.`events` ``): `org = 'a'` becomes `` `ws`.`events`.org = 'a' ``. A server with
 * ClickHouse's old query analyzer replaces a bare column of a subquery by an enclosing query's
 * WITH alias of that name; never a qualified one (native/core/sql/analyzer.h, qualifyColumns).
 * @throws SqlError when the expression does not lex.
 */
export function qualifyColumns(expr: string, columns: readonly string[], qualifier: string): string {
  const r = native().sqlQualifyColumns(expr, columns, qualifier) as string | NativeError;
  if (typeof r !== 'string') throw new SqlError(r.code, r.message, r.offset);
  return r;
}

/**
 * Compiles one node of a pipe into a single query. Node names shadow name map entries
 * of the same name. FORMAT is not allowed in nodes (the endpoint's extension decides).
 * @throws SqlError; `node` names the node whose SQL is at fault (for PIPE_CYCLE, the node
 * holding the reference that closes the cycle).
 */
export function compilePipe(
  nodes: readonly PipeNodeInput[],
  nameMap: SqlNameMap | NameMapInput,
  targetNode?: string,
  options: SqlOptions = {},
): CompiledPipe {
  if (!Array.isArray(nodes) || nodes.length === 0) throw new TypeError('a pipe needs at least one node');
  const map = nameMapOf(nameMap);
  const names = nodes.map((n) => n.name);
  const sqls = nodes.map((n) => n.sql);
  const target = targetNode ?? names[names.length - 1];
  const r = native().sqlCompilePipe(names, sqls, map.handle, target, options.maxQuerySize ?? 0) as
    | NativeError
    | { sql: string; order: Uint32Array; depends: string[][] };
  if (isNativeError(r)) throw new SqlError(r.code, r.message, r.offset, r.node);
  const dependencies: Record<string, string[]> = {};
  names.forEach((n, i) => {
    dependencies[n] = r.depends[i];
  });
  return { sql: r.sql, order: Array.from(r.order, (i) => names[i]), dependencies };
}
