/**
 * The engine contract shared by the embedded cell and a remote ClickHouse.
 * One conformance suite (test/engine-conformance.ts) runs against both.
 */

export interface QueryOptions {
  /** ClickHouse output format name (CSV, TSV, JSON, JSONEachRow, Parquet, ...). */
  format: string;
  /**
   * Settings for this query only. The engine appends them as a `SETTINGS`
   * clause (embedded) or sends them as request settings (remote): the SQL given
   * must not carry a SETTINGS clause of its own.
   */
  settings?: Record<string, string | number>;
  /** Hard deadline in ms; the query is cancelled when it passes. */
  timeoutMs?: number;
  /** Cancels the query (e.g. when the HTTP client goes away). */
  signal?: AbortSignal;
  /**
   * The tenant's query_parallelism: how many engine sessions of its cell may run its small reads
   * at once (embedded cells; a remote server runs queries in parallel on its own).
   */
  parallel?: number;
  /**
   * Called when the query, cancelled because its client went away (not by its time limit), did
   * not stop within the grace period and its cell was restarted to stop it (embedded cells).
   */
  onAbandonRestart?: () => void;
  /**
   * Work of the server's own (service tables: their definitions, upgrades and pruning) that may
   * wait behind a query the engine is finishing after its client left (embedded cells: such a
   * query is let run while nothing else waits for the engine; see CellProcess.cancel).
   */
  background?: boolean;
}

export interface QueryStats {
  elapsedMs: number;
  bytes: number;
  chunks: number;
  /**
   * Rows and bytes the engine read for the result, where it tells: the embedded
   * cell knows them for results it buffered (up to 2 MiB), not for streamed ones.
   */
  rowsRead?: number;
  bytesRead?: number;
}

/** A streamed result. Iterate it once; breaking out of the loop cancels the query. */
export interface QueryStream extends AsyncIterable<Buffer> {
  /** Settles when the stream ends (rejects if it failed part-way). */
  readonly done: Promise<QueryStats>;
  cancel(): void;
  /**
   * When the whole result has already arrived and none of it was read: all its chunks,
   * taken at once (the stream is then consumed). Otherwise undefined: iterate it.
   */
  takeAll?(): Buffer[] | undefined;
}

/**
 * One piece of an insert body: bytes, or bytes in parts to be written one after another
 * (a Native block's column buffers). A splittable insert is never split inside a piece.
 */
export type InsertPiece = Buffer | Uint8Array | readonly Buffer[];
export type InsertBody = AsyncIterable<InsertPiece> | Iterable<InsertPiece>;

export interface InsertOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  settings?: Record<string, string | number>;
  /**
   * Every item the body yields holds whole rows (or whole Native blocks), so the
   * engine may insert the body in several statements while it is still arriving.
   * Only for inserts whose atomicity is provided elsewhere (a stage table).
   */
  splittable?: boolean;
  /** Called as bytes are accepted by the engine side. */
  onProgress?: (bytes: number) => void;
  /**
   * The insert stores into the data source itself (not a stage): an engine lost after it had the
   * whole body, before answering, leaves its outcome unknown (INSERT_OUTCOME_UNKNOWN, not a 503
   * whose retry could store the rows twice).
   */
  commits?: boolean;
}

export interface InsertSummary {
  bytes: number;
  elapsedMs: number;
}

export interface Engine {
  readonly kind: 'embedded' | 'clickhouse';
  /**
   * Starts a query and resolves once its first bytes (or its end) are known,
   * so an early failure can still become a proper HTTP status.
   */
  query(sql: string, opts: QueryOptions): Promise<QueryStream>;
  /** Runs a statement and returns its whole (small) result: DDL, counts, metadata. */
  exec(sql: string, opts?: Partial<QueryOptions>): Promise<Buffer>;
  /** Streams `body` (already in `format`) into `table` with backpressure. */
  insert(table: string, format: string, body: InsertBody, opts?: InsertOptions): Promise<InsertSummary>;
  /** Server version string, e.g. "26.7.2.1" or "18.16.1". */
  version(): Promise<string>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Parses "18.16.1" into [18, 16, 1]. */
export function parseVersion(v: string): number[] {
  return v.split('.').map((x) => Number.parseInt(x, 10) || 0);
}

export function versionAtLeast(v: string, major: number, minor = 0): boolean {
  const [a = 0, b = 0] = parseVersion(v);
  return a > major || (a === major && b >= minor);
}

/** Renders a settings map as a ClickHouse `SETTINGS` clause (empty string for none). */
export function settingsClause(settings: Record<string, string | number> | undefined): string {
  if (!settings) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(settings)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`invalid setting name ${JSON.stringify(k)}`);
    parts.push(`${k} = ${typeof v === 'number' ? String(v) : `'${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`}`);
  }
  return parts.length ? ` SETTINGS ${parts.join(', ')}` : '';
}

/** Names an identifier safely for ClickHouse SQL: `name` in backquotes. */
export function quoteIdent(name: string): string {
  return '`' + name.replace(/\\/g, '\\\\').replace(/`/g, '\\`') + '`';
}

/**
 * `DROP TABLE IF EXISTS <qualified>`; on a cell with `SYNC`, so that the table's files go with
 * the statement: the engine otherwise kept a dropped table's data for minutes, and the disk a
 * failed upload filled stayed full (a smaller retry failed again). Remote servers as they are
 * (older ones lack SYNC).
 */
export function dropTableSql(engine: Pick<Engine, 'kind'>, qualified: string): string {
  return `DROP TABLE IF EXISTS ${qualified}${engine.kind === 'embedded' ? ' SYNC' : ''}`;
}

/** A ClickHouse string literal. */
export function quoteString(s: string): string {
  return "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}

/** How many mutations of `database`.`table` the server has not finished (system.mutations). */
export async function unfinishedMutations(engine: Engine, database: string, table: string, opts?: Partial<QueryOptions>): Promise<number> {
  return Number((await engine.exec(`SELECT count() FROM system.mutations WHERE database = ${quoteString(database)} AND table = ${quoteString(table)} AND is_done = 0`, opts)).toString().trim());
}
