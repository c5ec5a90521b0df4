/**
 * One import into a data source: CSV bytes → native validator → RowBinary into
 * the engine; rejected rows → quarantine. Stored + quarantined == rows received.
 *
 * Staged imports (CSV uploads, replace) write into a fresh stage table and then
 * move it in with one statement (`ATTACH PARTITION ... FROM` to append,
 * `EXCHANGE TABLES` to replace): readers see the old data or the new, never a
 * mix, and a failed import leaves the data source as it was.
 */
import { isUtf8 } from 'node:buffer';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { App } from '../app.js';
import type { Workspace } from '../../tenants/registry.js';
import { getTenant } from '../../tenants/registry.js';
import type { DataSource } from '../datasources/registry.js';
import { checkDefaultsSupported, createQuarantine, qualified, QUARANTINE_OWN } from '../datasources/registry.js';
import { CsvValidator, CsvError, dialectProblem, sniffCsv, type CsvDialect, type RejectedRow } from '../native/csv.js';
import { QuarantineSpool, quarantineRecord, splitCsvRow, type QuarantineRow } from './quarantine.js';
import { columnPaths, isBlankLine, valuesAt } from './ndjson.js';
import { chTime } from '../service/time.js';
import { InsertOutcomeUnknown, mayHaveRun, QueryFailed, RoostError } from '../errors.js';
import { peekBody } from './peek.js';
import { ClickHouseEngine } from '../cells/clickhouse.js';
import { quoteIdent, quoteString, type Engine } from '../cells/engine.js';
import type { Metrics } from '../log/metrics.js';
import { checkStorage, storageChanged } from '../../tenants/limits.js';
import { clearReplaceMark, newStageSuffix, replaceMark, stageDone } from './stage.js';
import { attachSql, finishAttach } from './attach-repair.js';

export interface ImportSource {
  /** CSV bytes (for NDJSON: the converted rows). */
  chunks: AsyncIterable<Buffer>;
  /**
   * Maps rejected rows of one validator batch to quarantine rows (NDJSON keeps its raw
   * lines). `processed` is how many rows the batch covered (stored + rejected), in order.
   */
  mapRejected?: (rejected: RejectedRow[], processed: number) => QuarantineRow[] | Promise<QuarantineRow[]>;
  /** Rows rejected before the validator (e.g. invalid JSON lines), drained after each chunk. */
  takeEarlyRejects?: () => QuarantineRow[];
  /** Called once the import is over, whatever its outcome (NDJSON: the worker lets go of the body's state). */
  done?: () => void;
  /**
   * Every line of `chunks` is a row, an empty one included (NDJSON: a one-column row whose value
   * is empty — a missing path in a Nullable or DEFAULT column — was a blank line, which CSV skips:
   * the event was neither stored nor quarantined).
   */
  rowPerLine?: boolean;
}

export interface ImportOptions {
  ws: Workspace;
  ds: DataSource;
  mode: 'append' | 'replace';
  source: ImportSource;
  dialect?: Partial<CsvDialect>;
  /** true/false, or undefined to sniff from the first bytes. */
  hasHeader?: boolean;
  requestId: string;
  signal?: AbortSignal;
  /** Stage and swap (atomic). Without it rows go straight into the table in one INSERT. */
  staged: boolean;
  maxRowBytes?: number;
  /** Same token, same rows: the engine stores them once (retried flushes). Embedded engine only. */
  dedupToken?: string;
  /** Rows already accepted before (buffered events): the storage limit was checked then. */
  skipStorageLimit?: boolean;
  /** A flush of the events buffer (see admitImport). */
  bufferFlush?: boolean;
  /**
   * Partial replace (mode=replace, replace_condition): the rows of the data source that match
   * this (analyzer-checked) WHERE are replaced by the rows of the body that match it.
   */
  replaceWhere?: string;
  /** The data source is being created by this request (not in the state yet). */
  creating?: boolean;
  /**
   * Group commit (`/v0/events` with wait=true): the request's rows may go into the data source
   * in one INSERT with those of other requests into it at the same time (see insertGrouped).
   * Only for an unstaged append without a deduplication token.
   */
  group?: boolean;
  /**
   * Asked right before the rows become visible (the commit point): throws to abandon the import
   * with nothing of it stored (a credential revoked during the upload: `stillAuthorized`).
   * Synchronous, so nothing runs between it and the commit but the statement itself. Staged:
   * before the swap or attach; unstaged: once the body is read whole, before the insert's end
   * (the insert is one block: cancelled, it stores nothing), and again when a grouped request
   * joins its INSERT.
   */
  beforeCommit?: () => void;
}

export interface ImportResult {
  importId: string;
  rows: number;
  quarantined: number;
  bytes: number;
  elapsedMs: number;
  /** Partial replace: valid rows of the body outside the condition, not stored. */
  outsideCondition?: number;
}

/** Settings that make an INSERT one block, so one part (all of it or none) under one deduplication token. */
const ONE_BLOCK = { min_insert_block_size_rows: 1_000_000_000, min_insert_block_size_bytes: 1_000_000_000_000, max_insert_block_size: 1_000_000_000 } as const;

interface LockState { exclusive: Promise<unknown>; shared: Set<Promise<unknown>>; pending: number }
const locks = new Map<string, LockState>();

/**
 * Imports of one data source: appends run side by side (shared), a replace runs
 * alone (exclusive) — an append landing in the table a replace is swapping out
 * would be lost with it. A replace waits for the appends before it; appends that
 * arrive while a replace waits go after it.
 */
function withLock<T>(key: string, exclusive: boolean, fn: () => Promise<T>): Promise<T> {
  // (Truncate, rows delete and drop take the exclusive side too: see withDataSourceLock.)
  let st = locks.get(key);
  if (!st) locks.set(key, (st = { exclusive: Promise.resolve(), shared: new Set(), pending: 0 }));
  const state = st;
  const prior = exclusive ? Promise.allSettled([state.exclusive, ...state.shared]) : state.exclusive;
  const run = prior.then(fn, fn);
  const settled = run.catch(() => {});
  state.pending++;
  if (exclusive) state.exclusive = settled;
  else state.shared.add(settled);
  void settled.then(() => {
    state.shared.delete(settled);
    if (--state.pending === 0 && locks.get(key) === state) locks.delete(key);
  });
  return run;
}

/**
 * Groups the small pieces of a stream into groups of at least `min` bytes (the
 * last may be smaller). Not joined: the validator takes a group as it is.
 */
async function* groups(first: Buffer[], rest: AsyncIterable<Buffer>, min: number): AsyncGenerator<{ parts: Buffer[]; bytes: number }> {
  let parts: Buffer[] = [...first];
  let n = first.reduce((a, b) => a + b.length, 0);
  for await (const c of rest) {
    parts.push(c);
    n += c.length;
    if (n >= min) {
      yield { parts, bytes: n };
      parts = [];
      n = 0;
    }
  }
  if (n > 0) yield { parts, bytes: n };
}

/**
 * Runs `fn` under the import lock of a data source: exclusive for what must not overlap an
 * import (replace, truncate, rows delete, drop). Inside, the data source is checked to be
 * still the one the request found (same id): a request that waited behind a drop (and maybe
 * a create of the same name) answers 404 instead of writing into tables that are gone or,
 * worse, are now another data source's (another schema).
 */
export function withDataSourceLock<T>(app: App, ws: Workspace, ds: DataSource, exclusive: boolean, fn: () => Promise<T>, creating = false): Promise<T> {
  return withLock(`${ws.tenant}/${ws.name}/${ds.name}`, exclusive, async () => {
    const now = app.state.get<DataSource>('datasources', ws.tenant, ws.name, ds.name);
    if (creating ? now !== undefined : now?.id !== ds.id) {
      const renamed = creating ? undefined : app.state.list<DataSource>('datasources', ws.tenant, ws.name).find((d) => d.id === ds.id);
      if (renamed) throw new RoostError('UNKNOWN_DATASOURCE', `data source "${ds.name}" was renamed to "${renamed.name}" while this request waited for it (nothing was stored); send it again to "${renamed.name}"`, { details: { renamed_to: renamed.name } });
      throw new RoostError('UNKNOWN_DATASOURCE', `data source "${ds.name}" was dropped while this request waited for it (nothing was stored)`);
    }
    return fn();
  });
}

/**
 * Imports running per tenant, and whether a restore holds them off: a restore switches the
 * tenant to other databases, and an import spanning the switch would be acknowledged after
 * it with its rows in a database the restore drops (see quiesceImports).
 */
const tenantImports = new Map<string, { running: number; held: number; idle: Array<() => void> }>();
function importsOf(tenant: string) {
  let g = tenantImports.get(tenant);
  if (!g) tenantImports.set(tenant, g = { running: 0, held: 0, idle: [] });
  return g;
}

/**
 * Refuses new imports into `tenant` (409, retryable) and waits for the running ones to end;
 * the function answered lets them in again.
 */
export async function quiesceImports(tenant: string): Promise<() => void> {
  const g = importsOf(tenant);
  g.held++;
  while (g.running > 0) await new Promise<void>((r) => g.idle.push(r));
  let done = false;
  return () => { if (!done) { done = true; g.held--; } };
}

/**
 * Runs `fn`, something that stores rows into `tenant` (an import, or an events request
 * buffering its body), unless a restore holds the tenant's imports off (409, retryable); a
 * restore's quiesceImports waits for it. `bufferFlush`: a flush of the events buffer, let
 * through: the restore flushes the buffer itself before its switch (what was acknowledged
 * before it goes into the databases it replaces), and the switch waits for flushes.
 */
export async function admitImport<T>(tenant: string, fn: () => Promise<T>, bufferFlush = false): Promise<T> {
  const g = importsOf(tenant);
  if (g.held && !bufferFlush) throw new RoostError('CONFLICT', `tenant "${tenant}" is being restored from a backup: nothing was stored; retry in a moment`, { retryable: true, headers: { 'Retry-After': '1' } });
  g.running++;
  try {
    return await fn();
  } finally {
    if (--g.running === 0) for (const w of g.idle.splice(0)) w();
  }
}

export async function importRows(app: App, o: ImportOptions): Promise<ImportResult> {
  try {
    return await admitImport(o.ws.tenant, async () => {
      try {
        if (!o.skipStorageLimit) await checkStorage(app, getTenant(app.state, o.ws.tenant), false, leavingAt(o));
        await checkDefaultsSupported(app.cells.engineFor(getTenant(app.state, o.ws.tenant)), o.ds.columns);
        return await withDataSourceLock(app, o.ws, o.ds, o.mode === 'replace', async () => {
          // This process's stage tables while it runs: never swept (see CellManager's sweep).
          const suffix = newStageSuffix();
          try {
            return await importLocked(app, o, suffix);
          } finally {
            stageDone(suffix);
          }
        }, o.creating);
      } finally {
        storageChanged(o.ws.tenant);
      }
    }, o.bufferFlush);
  } finally {
    o.source.done?.();
  }
}

async function importLocked(app: App, o: ImportOptions, suffix: string): Promise<ImportResult> {
  const t0 = performance.now();
  const tenant = getTenant(app.state, o.ws.tenant);
  const engine = app.cells.engineFor(tenant);
  const importId = crypto.randomUUID();
  const target = qualified(o.ws, o.ds.table);
  const qTable = qualified(o.ws, `${o.ds.table}_quarantine`);
  const stage = qualified(o.ws, `${o.ds.table}${suffix}`);
  const into = o.staged ? stage : target;

  const peeked = await peekBody(o.source.chunks, 64 * 1024);
  let head = peeked.head;
  const rest = peeked.rest;
  // An NDJSON body of lines that are none of them JSON objects converts to no rows at all, but
  // it is not empty: its lines are quarantined (a 400 'the body is empty' stored nothing, and a
  // buffered /v0/events segment of them was dropped as empty after its 202).
  const earlyRejects = head.length === 0 ? (o.source.takeEarlyRejects?.() ?? []) : [];
  if (head.length === 0 && earlyRejects.length === 0) throw new RoostError('EMPTY_BODY', 'the body is empty: send the rows to import');
  // Sniffed only for what the caller did not say (NDJSON sources say everything).
  const known = o.dialect?.delimiter !== undefined && o.dialect.quote !== undefined && o.dialect.escape !== undefined && o.hasHeader !== undefined;
  const sniffed = known ? undefined : sniffCsv(head, o.ds.columns.length);
  const dialect: CsvDialect = { delimiter: o.dialect?.delimiter ?? sniffed!.delimiter, quote: o.dialect?.quote ?? sniffed!.quote, escape: o.dialect?.escape ?? sniffed!.escape };
  // The caller's characters with the sniffed ones (a delimiter given as the quote that was
  // detected): a 400 saying which, before anything reads the body with them (it was a 500).
  const problem = dialectProblem(dialect);
  if (problem) throw new RoostError('INVALID_PARAMETER', problem);
  // A first row that spells the column names is the header, also when it spells them as
  // written before they were made identifiers (`user id` for user_id: the names a schema
  // inferred from this file has); it is then given to the validator as the names themselves.
  const first = o.hasHeader === false ? undefined : firstRecord(head, dialect, peeked.complete);
  // A trailing delimiter on the header line (`a,b,`) names no column (the validator drops it too).
  const cells = first ? withoutTrailingBlanks(first.fields, o.ds.columns.length) : [];
  const spelled = first ? headerSpells(cells, o.ds.columns, o.ds.headerAs) : false;
  const hasHeader = o.hasHeader ?? (spelled !== false || (sniffed!.hasHeader && !(await firstRowIsData(head, o.ds, dialect))));
  if (hasHeader && (spelled === 'as written' || Array.isArray(spelled)) && first) {
    // The names in the file's order (the validator takes columns by name).
    const names = Array.isArray(spelled) ? spelled : inferredColumnNames(cells);
    head = Buffer.concat([Buffer.from(names.map((n) => csvField(n, dialect)).join(dialect.delimiter)), head.subarray(first.end)]);
  }
  let validator: CsvValidator;
  try {
    // Native blocks are the embedded engine's fastest input; remote servers (possibly old) get RowBinary.
    // A quote sniffed as ' (from the file's first 64 KiB) may be wrong further on: a value opening
    // with an apostrophe there would join the rows up to the next one into one value, silently.
    // Such a row is quarantined instead (a black-box test lost a row so past the sample).
    const quotesOnOneLine = o.dialect?.quote === undefined && dialect.quote === "'";
    validator = new CsvValidator({ columns: o.ds.columns, dialect, hasHeader, maxRowBytes: o.maxRowBytes ?? 8 << 20, format: engine.kind === 'embedded' ? undefined : 'RowBinary', quotesOnOneLine, blankLinesAreRows: o.source.rowPerLine === true });
  } catch (e) {
    throw csvToRoost(e);
  }
  const spool = new QuarantineSpool(path.join(app.config.dataDir, 'tmp'), o.ds.columns, importId);
  // The first rejected rows, to say why when a replace has no valid row at all.
  const firstRejected: QuarantineRow[] = [];
  const quarantine = (q: QuarantineRow[]) => {
    for (const r of q) { if (firstRejected.length < 3) firstRejected.push(r); else break; }
    spool.add(q);
  };
  quarantine(earlyRejects);
  let rows = 0;
  let bytes = 0;
  let outsideCondition: number | undefined;
  const toQuarantine = async (rejected: RejectedRow[], processed: number, order?: number[]): Promise<QuarantineRow[]> => {
    // Text that is not UTF-8 is refused as a whole: the body is in the wrong encoding.
    const bad = rejected.find((r) => r.reason === 'invalid UTF-8');
    if (bad) throw new RoostError('INVALID_UTF8', `line ${bad.line} is not valid UTF-8; send the file as UTF-8 (nothing was stored)`, { details: { line: bad.line } });
    if (o.source.mapRejected) return o.source.mapRejected(rejected, processed);
    // A header in another order than the schema's: each column's value is taken by name.
    // (A column the header left out, ABSENT, has no value.)
    const named = order ? order.filter((i) => i !== ABSENT).length : 0;
    // (A row of another field count: its values by the header's places as far as they go.)
    const byName = (v: string[]): Array<string | null> => (order && (v.length === named || named !== order.length) ? order.map((i) => (i === ABSENT ? null : v[i] ?? null)) : v);
    return rejected.map((r) => ({ ...r, values: byName(splitCsvRow(r.raw, dialect.delimiter, dialect.quote)) }));
  };

  // Each batch is one piece of the insert (a splittable insert is cut only between batches),
  // in parts: a Native block's column buffers go to the engine as the validator wrote them.
  const grouped = !!o.group && !o.staged && o.mode === 'append' && !o.dedupToken;
  async function* encoded(): AsyncGenerator<Buffer[]> {
    const handle = async (b: Awaited<ReturnType<CsvValidator['push']>>) => {
      rows += b.rowCount;
      quarantine(await toQuarantine(b.rejected, b.rowCount + b.rejected.length, b.columnOrder));
      if (o.source.takeEarlyRejects) quarantine(o.source.takeEarlyRejects());
      return b.parts;
    };
    // HTTP bodies arrive in 64 KiB pieces; the validator and the engine work best on
    // a few MiB at a time (one worker hop and one frame per batch). The pieces go to
    // the validator as a group, never copied into one buffer. The next batch is
    // validated (off the JS thread) while the previous one travels to the engine.
    const pieces = groups([head], rest, 2 * 1024 * 1024)[Symbol.asyncIterator]();
    const validateNext = async (): Promise<Awaited<ReturnType<CsvValidator['push']>> | undefined> => {
      const r = await pieces.next();
      if (r.done) return undefined;
      bytes += r.value.bytes;
      return validator.push(r.value.parts).catch((e) => { throw csvToRoost(e); });
    };
    let ahead = validateNext();
    // The storage limit, checked again as the body arrives (appends): checked only when an import
    // was admitted, one 40 MB upload ended at 38 MB over a 1 MB limit, and eight admitted together
    // at 77 MB. The engine's usage counts the stage tables being filled, this import's and the
    // tenant's others, so the limit is passed by at most about a check's worth per import. A
    // replace counts as the usage after it (its old table leaves at the commit).
    const limitBytes = !o.skipStorageLimit ? getTenant(app.state, o.ws.tenant).limits.storage_bytes : undefined;
    let checkedAt = 0;
    try {
      for (;;) {
        const batch = await ahead;
        if (!batch) break;
        ahead = validateNext();
        ahead.catch(() => {}); // seen when awaited; the insert may stop first
        if (limitBytes && bytes - checkedAt >= STORAGE_RECHECK_BYTES) {
          checkedAt = bytes;
          await checkStorage(app, getTenant(app.state, o.ws.tenant), true, leavingAt(o));
        }
        const out = await handle(batch);
        if (out.length) yield out;
      }
    } finally {
      // Stopped early (the insert failed or the client left): let go of the body without
      // waiting for a batch that may never arrive.
      void pieces.return?.(undefined)?.catch(() => {});
    }
    const out = await handle(await validator.finish().catch((e) => { throw csvToRoost(e); }));
    // An insert straight into the data source commits when its input ends: the last word first.
    // (A grouped insert says it where its group commits, or where it ends its own streamed insert:
    // said here, a request only queued for its group was past its deadline's reach.)
    if (!o.staged && !grouped) o.beforeCommit?.();
    if (out.length) yield out;
  }

  const staged: string[] = [];
  let marked = false;  // a replace's switch carried its mark (cleared at the end)
  try {
    if (o.staged) {
      await engine.exec(`CREATE TABLE ${stage} AS ${target}`);
      staged.push(stage);
      // An append's stage is attached part by part as it is (merged in the data source later):
      // merging it is work thrown away, and gives its parts new files, which the repair of a cut
      // commit tells apart by (attach-repair.ts). Its merges are off in its definition, so that a
      // restarted cell does not merge it before the repair looks (a stop is forgotten by a
      // restart: a review saw a cut append stored 1.17 times). Not a replace's: that stage
      // becomes the data source's table.
      if (engine.kind === 'embedded' && o.mode !== 'replace') await engine.exec(`ALTER TABLE ${stage} MODIFY SETTING ${NO_MERGES}`);
    }
    const embedded = engine.kind === 'embedded';
    const dedup: Record<string, string> = o.dedupToken && embedded ? { insert_deduplication_token: o.dedupToken } : {};
    // Staged imports may reach the engine in pieces while they arrive: the stage swap is the atomic step.
    // An insert straight into the data source (events) is one block, so one part: a kill -9 during
    // it leaves all of it or none (by default the engine writes a part per ~1M rows as it goes).
    // Remote servers too (the settings are old); they cannot skip a retried flush, though (no tokens).
    const oneBlock: Record<string, number> = !o.staged ? ONE_BLOCK : {};
    const settings = { input_format_skip_unknown_fields: 0, ...dedup, ...oneBlock };
    // A commit whose outcome cannot be known (the engine went, or its answer never came) still
    // takes the request's rejected rows into the quarantine before it is answered: they are
    // rejected whatever happened to the others (they were lost with the 502: "each row stored or
    // quarantined"). The 502 is thrown once they are in.
    let unknown: InsertOutcomeUnknown | undefined;
    /**
     * Runs a staged import's commit statement (ATTACH, RENAME, EXCHANGE): lost in flight (the
     * engine went, or its answer never came), the rows may be in — `unknown`, not "retry it" (a
     * replace sent again does the same thing again; an append does not).
     */
    const commit = async (statement: string): Promise<void> => {
      try {
        await engine.exec(statement);
      } catch (e) {
        if (!mayHaveRun(e)) throw e;
        unknown = new InsertOutcomeUnknown(e);
      }
    };
    try {
      if (grouped) await insertGrouped(app.metrics, engine, into, validator.format, encoded(), settings, o.ws.tenant, o.signal, o.beforeCommit);
      else await engine.insert(into, validator.format, encoded(), { signal: o.signal, settings, splittable: o.staged, commits: !o.staged });
    } catch (e) {
      if (!(e instanceof InsertOutcomeUnknown)) throw e;
      unknown = e;
    }
    if (rows + spool.count === 0) throw unknown ?? new RoostError('EMPTY_BODY', 'the body holds no rows (only a header or blank lines)');
    if (o.mode === 'replace' && rows === 0) {
      // Every row failed: replacing would empty the data source (or the part the condition
      // names) for a file that is most likely the wrong one. Nothing is replaced or quarantined.
      const why = firstRejected.map((r) => `line ${r.line}${r.column ? `, column ${r.column}` : ''}: ${r.reason}`).join('; ');
      throw new RoostError('NO_VALID_ROWS', `none of the ${spool.count} rows is valid for the data source's schema, so it was not replaced (${why}${spool.count > firstRejected.length ? '; …' : ''}); fix the file, or truncate the data source to empty it`, {
        details: { rows_received: spool.count, first_rejected: firstRejected.map((r) => ({ line: r.line, column: r.column, reason: r.reason })) },
      });
    }
    if (spool.count > 0 && !o.staged) {
      // The rows are stored already (an insert straight into the data source): their rejected
      // lines must follow, not be lost with a 503 that says to send the stored rows again (a
      // cell killed between the two inserts did that). The quarantine insert is retried while the
      // tenant's cell comes back, under a token so that one that landed is not landed twice.
      // A retried events-buffer flush must not quarantine its rows twice either: its own token.
      const qDedup: Record<string, string> = embedded ? { insert_deduplication_token: `${o.dedupToken ?? importId}:quarantine` } : {};
      try {
        await afterStored(app, o, rows, spool.count, async () => {
          await createQuarantine(engine, o.ws, o.ds);
          await engine.insert(qTable, 'JSONEachRow', spool.read(), { settings: { date_time_input_format: 'best_effort', ...qDedup, ...oneBlock } });
        }, () => quarantineLanded(engine, qTable, importId));
      } catch (e) {
        throw unknown ?? e;
      }
    } else if (spool.count > 0) {
      await createQuarantine(engine, o.ws, o.ds);
      const qStage = qualified(o.ws, `${o.ds.table}_quarantine${suffix}`);
      await engine.exec(`CREATE TABLE ${qStage} AS ${qTable}`);
      staged.push(qStage);
      // Attached part by part too, whatever the mode: its merges off as an append stage's.
      if (engine.kind === 'embedded') await engine.exec(`ALTER TABLE ${qStage} MODIFY SETTING ${NO_MERGES}`);
      await engine.insert(qStage, 'JSONEachRow', spool.read(), { settings: { date_time_input_format: 'best_effort' } });
    }
    if (o.staged) {
      const cluster = engine instanceof ClickHouseEngine && engine.cluster;
      if (cluster) throw new RoostError('CONFLICT', 'staged imports on a cluster are not supported yet');
      if (o.mode === 'replace') {
        let incoming = stage;
        if (o.replaceWhere !== undefined) {
          // Partial replace: the new table holds the current rows outside the condition and
          // the uploaded rows inside it (a condition that is NULL counts as false), then takes
          // the data source's place in the same atomic step as a full replace.
          const inside = `coalesce((${o.replaceWhere}), 0)`;
          incoming = qualified(o.ws, `${o.ds.table}__merge${suffix}`);
          await engine.exec(`CREATE TABLE ${incoming} AS ${target}`);
          staged.push(incoming);
          // (No block-hash deduplication: see the cell's inserts. Only the embedded engine's tables have the window.)
          const noDedup = engine.kind === 'embedded' ? ' SETTINGS insert_deduplicate = 0' : '';
          // The stage is read under the data source's name: a condition may name its columns
          // as `<data source>.column` (the rows delete takes that), which the stage's own name
          // would not resolve (a 422 quoting a query over "the data source" that was the stage).
          const as = ` AS ${quoteIdent(o.ds.table)}`;
          // Counted first, read-only: the condition is the caller's, and the INSERTs below run
          // without readonly (a condition reading anything but the data source, were the analyzer
          // ever to let one through, fails here before any write).
          outsideCondition = Number((await engine.exec(`SELECT count() FROM ${stage}${as} WHERE NOT ${inside}`, { settings: { readonly: 1 } })).toString().trim());
          if (rows - outsideCondition <= 0) {
            // No valid row inside the condition: the replace would only delete the rows the
            // condition names (a condition with a typo, or the wrong file), as one whose rows all
            // failed would. Refused the same way; nothing is replaced or quarantined.
            throw new RoostError('NO_VALID_ROWS', `none of the ${rows} valid rows is inside the replace condition, so nothing was replaced (a replace with no row to put in would only delete the rows the condition names${spool.count ? `; ${spool.count} more rows were not valid` : ''}); check the condition and the file, or delete the rows with POST /v0/datasources/<name>/delete`, {
              details: { rows_received: rows + spool.count, rows_outside_condition: outsideCondition, rows_invalid: spool.count },
            });
          }
          await engine.exec(`INSERT INTO ${incoming} SELECT * FROM ${target}${as} WHERE NOT ${inside}${noDedup}`);
          await engine.exec(`INSERT INTO ${incoming} SELECT * FROM ${stage}${as} WHERE ${inside}${noDedup}`);
          rows -= outsideCondition;
        }
        // At the commit, as an append's: the usage after the switch (the old table, and a partial
        // replace's stage, leave) within the limit, else nothing changes.
        if (!o.skipStorageLimit) {
          const leaving = [{ database: o.ws.database, table: o.ds.table }, ...(o.replaceWhere !== undefined ? [{ database: o.ws.database, table: `${o.ds.table}${suffix}` }] : [])];
          await checkStorage(app, getTenant(app.state, o.ws.tenant), true, leaving);
        }
        if (engine instanceof ClickHouseEngine && !(await engine.features()).exchangeTables) {
          // Servers before EXCHANGE TABLES: one RENAME statement moves both names at once.
          const old = qualified(o.ws, `${o.ds.table}__old${suffix}`);
          o.beforeCommit?.();
          // Dropped afterwards whether or not the answer comes (a lost answer left the old data
          // behind for good, counted in storage_bytes); it exists only if the rename ran.
          staged.push(old);
          await commit(`RENAME TABLE ${target} TO ${old}, ${incoming} TO ${target}`);
        } else {
          // Marked, so that a kill after the switch and before the quarantine's attach is
          // finished by the stage sweep (the mark moves with the table; see stage.ts).
          if (embedded) await engine.exec(`ALTER TABLE ${incoming} MODIFY COMMENT ${quoteString(replaceMark(suffix))}`);
          o.beforeCommit?.();
          await commit(`EXCHANGE TABLES ${target} AND ${incoming}`);
          marked = embedded;
        }
      } else {
        // At the commit, once more: appends admitted together (each under the recheck's step)
        // all passed; their stages count now, this one's included, and the one that would take the
        // tenant past its limit stores nothing.
        if (!o.skipStorageLimit) await checkStorage(app, getTenant(app.state, o.ws.tenant), true);
        o.beforeCommit?.();
        const attach = attachSql(o.ws.database, o.ds.table, `${o.ds.table}${suffix}`);
        await commit(attach);
        // Cut in flight on a cell: finished (or made) once the cell is back, so the answer is a
        // definite 200 rather than a 502 over part of the rows (see attach-repair.ts). Not settled
        // in time, the stage is left for the sweep at the cell's next start, which finishes it.
        if (unknown && embedded) {
          if (await settleAttach(app, engine, o.ws.database, o.ds.table, `${o.ds.table}${suffix}`, attach)) unknown = undefined;
          else staged.splice(staged.indexOf(stage), 1);
        }
      }
      // The rows are in (the step above is the commit): their rejected lines follow, retried while
      // the cell comes back (a kill between the two left the rows without them and said "retry",
      // which would store the rows twice). The stage tables outlive a cell restart.
      if (spool.count > 0) {
        try {
          await afterStored(app, o, rows, spool.count, async () => {
            await engine.exec(attachSql(o.ws.database, `${o.ds.table}_quarantine`, `${o.ds.table}_quarantine${suffix}`));
          }, embedded
            // A cut attach: any of its rows in is not "landed" (a 200 counted rows that were not
            // all there): finished first.
            ? async () => (await finishAttach(engine, o.ws.database, `${o.ds.table}_quarantine`, `${o.ds.table}_quarantine${suffix}`)) !== 'none'
            : () => quarantineLanded(engine, qTable, importId));
        } catch (e) {
          throw unknown ?? e;
        }
      }
    }
    // The quarantine is in (or there was none): the switch's mark has done its work.
    if (marked) await clearReplaceMark(engine, o.ws.database, o.ds.table);
    if (unknown) throw unknown;
  } finally {
    spool.dispose();
    // A stage the engine could not drop now (a remote server down) is dropped later: it held the
    // tenant's disk and storage_bytes until the day-old sweep (which remote servers never had).
    for (const t of staged) await app.dropLater.drop(o.ws.tenant, t);
  }
  return { importId, rows, quarantined: spool.count, bytes, elapsedMs: performance.now() - t0, ...(outsideCondition !== undefined ? { outsideCondition } : {}) };
}

/**
 * Settles an append's commit cut in flight on a cell (its outcome unknown): once the cell answers,
 * the attach is finished where it was cut, or made when it had not started. True when the rows
 * are all in; false when the cell did not come back in time or the repair failed (logged).
 */
async function settleAttach(app: App, engine: Engine, database: string, table: string, stage: string, attach: string): Promise<boolean> {
  const deadline = Date.now() + AFTER_STORED_RETRY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      if ((await finishAttach(engine, database, table, stage)) === 'none') await engine.exec(attach);
      app.log.info('an append cut in its commit was finished', { database, table, attempt });
      return true;
    } catch (e) {
      const unavailable = e instanceof RoostError && (e.code === 'CELL_UNAVAILABLE' || e.code === 'ENGINE_UNAVAILABLE');
      if (!unavailable || Date.now() > deadline) {
        app.log.warn('an append cut in its commit could not be finished now; the next start of the cell finishes it', { database, table, stage, err: e });
        return false;
      }
      await new Promise((r) => setTimeout(r, Math.min(1_000, 100 * attempt)));
    }
  }
}

/** MergeTree settings under which no merge is ever chosen (no range of parts is 1 byte or less). */
const NO_MERGES = 'max_bytes_to_merge_at_max_space_in_pool = 1, max_bytes_to_merge_at_min_space_in_pool = 1';

/** Are an import's quarantined rows in the quarantine table (its rows carry the import's id)? */
async function quarantineLanded(engine: Engine, qTable: string, importId: string): Promise<boolean> {
  return Number((await engine.exec(`SELECT count() FROM ${qTable} WHERE c__import_id = ${quoteString(importId)}`)).toString().trim()) > 0;
}

/** An append into a tenant with a storage limit checks the limit again every this many bytes of body. */
const STORAGE_RECHECK_BYTES = 4 << 20;

/**
 * The table a full replace takes the place of: its bytes leave at the commit. Not for a partial
 * replace (`replace_condition`) before its commit: it copies the rows outside the condition first,
 * so a tenant over its limit would double its largest table on disk before being refused (found by
 * review); its commit check counts what leaves then.
 */
function leavingAt(o: ImportOptions): Array<{ database: string; table: string }> {
  return o.mode === 'replace' && o.replaceWhere === undefined ? [{ database: o.ws.database, table: o.ds.table }] : [];
}

/** How long the quarantine of rows stored already is retried while the tenant's cell comes back. */
const AFTER_STORED_RETRY_MS = 15_000;

/**
 * Runs `step` (the quarantine insert of an import whose rows are stored), retried on the engine's
 * unavailability for up to AFTER_STORED_RETRY_MS. Failing still, the error says the rows are
 * stored and is not retryable: a client that sent them again would store them twice.
 */
async function afterStored(app: App, o: ImportOptions, rows: number, rejected: number, step: () => Promise<void>, landed?: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + AFTER_STORED_RETRY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      // A try whose answer was lost may have landed (a kill after its commit): not twice.
      if (attempt > 1 && landed && await landed()) return;
      await step();
      if (attempt > 1) app.log.info('quarantine written after a retry', { tenant: o.ws.tenant, datasource: o.ds.name, attempt });
      return;
    } catch (e) {
      // The tenant or workspace deleted meanwhile: said as such (the request's answer translates it).
      if (e instanceof RoostError && (e.code === 'UNKNOWN_TENANT' || e.code === 'UNKNOWN_WORKSPACE')) throw e;
      const unavailable = e instanceof RoostError && (e.code === 'CELL_UNAVAILABLE' || e.code === 'ENGINE_UNAVAILABLE');
      if (!unavailable || Date.now() > deadline) {
        app.log.error('rows stored, their rejected lines not quarantined', { tenant: o.ws.tenant, datasource: o.ds.name, rows, rejected, err: e });
        throw new RoostError('INTERNAL', `the ${rows} valid rows were stored, but the ${rejected} rejected rows could not be put in the quarantine (${(e as Error).message}); do not send the valid rows again`, { cause: e, details: { successful_rows: rows, quarantined_rows: 0, rejected_rows: rejected } });
      }
      await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * attempt)));
    }
  }
}

/** A request's encoded rows above this size are not held for a group: they go in alone, streamed. */
export const GROUP_MEMBER_MAX_BYTES = 4 << 20;
/** Most bytes and requests in one grouped INSERT. */
const GROUP_MAX_BYTES = 64 << 20;
const GROUP_MAX_MEMBERS = 1000;
/**
 * A group up to this many bytes is one block in the engine, whatever its rows (under
 * min_insert_block_size_rows, 1,048,449, since a row is at least a byte; and far under its bytes
 * threshold): refused, nothing of it was stored, so its requests may go in one by one.
 */
const GROUP_SPLIT_MAX_BYTES = 1_000_000;

interface GroupMember { parts: Buffer[][]; bytes: number; signal?: AbortSignal; check?: () => void; resolve: () => void; reject: (e: unknown) => void }

/**
 * Group commit of the inserts into one table (one engine, one format, the same settings). The
 * first request into an idle table is inserted at once, alone; requests that arrive while an
 * insert runs wait for it and then go in together, as one INSERT: one part instead of one per
 * request (each INSERT costs the engine ~5 ms of fixed work and leaves a part to merge: at a few
 * hundred small requests a second the parts outrun the merges). No timer: nothing waits longer
 * than the insert before it. The INSERT is one block, so one part: all its requests' rows are
 * stored or none; when it fails, each of its requests fails with its error (nothing of theirs
 * was stored, their quarantine rows and operations log say so as for a failure of their own).
 */
class InsertGroup {
  private readonly queue: GroupMember[] = [];
  private running = false;

  constructor(private readonly metrics: Metrics, private readonly engine: Engine, private readonly table: string, private readonly format: string,
    private readonly settings: Record<string, string | number>, private readonly tenant: string, private readonly onIdle: () => void) {}

  submit(parts: Buffer[][], bytes: number, signal?: AbortSignal, check?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ parts, bytes, signal, check, resolve, reject });
      if (!this.running) void this.run();
    });
  }

  /**
   * One INSERT of the batch's rows. On a cell it carries a token of its own (the data source's
   * deduplication window, see createTables): a cell lost before it answered may have stored the
   * rows or not, and the same INSERT, sent again with the same token to the cell that comes
   * back, is stored once either way. The requests get a definite answer (200, no duplicates)
   * instead of "retry it" for rows that were stored. A remote server keeps the unknown outcome.
   */
  async #insert(batch: GroupMember[]): Promise<void> {
    const body = () => (function* () { for (const m of batch) yield* m.parts; })();
    if (this.engine.kind !== 'embedded') return void await this.engine.insert(this.table, this.format, body(), { settings: this.settings, commits: true });
    const settings = { ...this.settings, insert_deduplication_token: `group:${crypto.randomUUID()}` };
    const deadline = Date.now() + GROUP_RETRY_MS;
    // An attempt that may have stored the rows: a later failure must not say "nothing stored".
    let unknown: RoostError | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.engine.insert(this.table, this.format, body(), { settings, commits: true });
        return;
      } catch (e) {
        if (e instanceof RoostError && e.code === 'INSERT_OUTCOME_UNKNOWN') unknown = e;
        const lost = e instanceof RoostError && (e.code === 'INSERT_OUTCOME_UNKNOWN' || e.code === 'CELL_UNAVAILABLE');
        if (!lost || Date.now() > deadline) throw unknown ?? e;
        await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * attempt)));
      }
    }
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const batch: GroupMember[] = [];
        let bytes = 0;
        while (this.queue.length && (batch.length === 0 || (bytes + this.queue[0]!.bytes <= GROUP_MAX_BYTES && batch.length < GROUP_MAX_MEMBERS))) {
          const m = this.queue.shift()!;
          // A client gone while it waited: its rows are not inserted (as an insert cancelled alone).
          if (m.signal?.aborted) { m.reject(new RoostError('CLIENT_CLOSED', 'insert cancelled')); continue; }
          // Its last word (the credential still stands) as it joins the INSERT: it may have waited a whole insert.
          try { m.check?.(); } catch (e) { m.reject(e); continue; }
          batch.push(m);
          bytes += m.bytes;
        }
        if (batch.length === 0) continue;
        try {
          await this.#insert(batch);
          this.metrics.groupedInserts.inc({ tenant: this.tenant });
          this.metrics.groupedInsertRequests.inc({ tenant: this.tenant }, batch.length);
          for (const m of batch) m.resolve();
        } catch (e) {
          // The engine refused the INSERT for what one request holds (a DEFAULT expression that
          // throws on its values: validation cannot know): every other request in it was failed
          // with a 422 about rows it never sent. A group below the engine's squashing thresholds
          // is one block, so nothing of it was stored: each request goes in alone, and only the
          // one at fault fails. (Larger groups may span blocks, some stored: they fail together.)
          if (e instanceof QueryFailed && e.code !== 'INSUFFICIENT_STORAGE' && batch.length > 1 && bytes <= GROUP_SPLIT_MAX_BYTES) {
            for (const m of batch) {
              try {
                await this.#insert([m]);
                m.resolve();
              } catch (alone) {
                m.reject(alone);
              }
            }
          } else {
            for (const m of batch) m.reject(e);
          }
        }
      }
    } finally {
      this.running = false;
      this.onIdle();
    }
  }
}

const insertGroups = new WeakMap<Engine, Map<string, InsertGroup>>();
/** How long a group's INSERT is sent again while the tenant's cell comes back (see InsertGroup). */
const GROUP_RETRY_MS = 15_000;

/**
 * Inserts an import's rows through the table's InsertGroup: the rows are encoded (validated)
 * first, whole, then given to the group. A request whose rows pass GROUP_MEMBER_MAX_BYTES is
 * not held in memory for that: it is inserted alone, streamed, as an ungrouped import is.
 */
async function insertGrouped(metrics: Metrics, engine: Engine, table: string, format: string, body: AsyncIterable<Buffer[]>,
  settings: Record<string, string | number>, tenant: string, signal?: AbortSignal, check?: () => void): Promise<void> {
  const held: Buffer[][] = [];
  let bytes = 0;
  const it = body[Symbol.asyncIterator]();
  // Streaming a large body relies on a cancelled insert storing nothing: true of a cell (the
  // insert is one block, dropped with its Cancel frame), not of a remote server, which keeps
  // what it had received when the request is cut. There the body (at most an events body,
  // 64 MiB) is held whole and sent once it has passed `check`.
  const streams = engine.kind === 'embedded';
  for (let r = await it.next(); !r.done; r = await it.next()) {
    held.push(r.value);
    for (const b of r.value) bytes += b.length;
    if (bytes > GROUP_MEMBER_MAX_BYTES && streams) {
      const rest = async function* () {
        yield* held;
        for (let x = await it.next(); !x.done; x = await it.next()) yield x.value;
        check?.();  // the insert commits when its input ends: the last word first
      };
      await engine.insert(table, format, rest(), { signal, settings, commits: true });
      return;
    }
  }
  // No valid row: nothing to insert; the quarantine has them, and its insert is this request's
  // change (the last word, and the deadline's end, first).
  if (held.length === 0) { check?.(); return; }
  if (signal?.aborted) throw new RoostError('CLIENT_CLOSED', 'insert cancelled');
  if (bytes > GROUP_MEMBER_MAX_BYTES) {
    // (remote) The last word, then the commit, with nothing awaited between. Not cancelled when
    // the client goes away from here on: a cut request could store part of it.
    check?.();
    await engine.insert(table, format, held, { settings, commits: true });
    return;
  }
  let byKey = insertGroups.get(engine);
  if (!byKey) insertGroups.set(engine, byKey = new Map());
  const key = `${table}\0${format}\0${JSON.stringify(settings)}`;
  let group = byKey.get(key);
  if (!group) {
    const g: InsertGroup = new InsertGroup(metrics, engine, table, format, settings, tenant, () => { if (byKey!.get(key) === g) byKey!.delete(key); });
    byKey.set(key, group = g);
  }
  await group.submit(held, bytes, signal, check);
}

/**
 * With a known schema the first row is data when it is valid for the schema
 * (the sniffer alone cannot tell `ES,Spain` from a header of two names).
 */
async function firstRowIsData(head: Buffer, ds: DataSource, dialect: CsvDialect): Promise<boolean> {
  const v = new CsvValidator({ columns: ds.columns, dialect, hasHeader: false, maxRowBytes: 8 << 20 });
  try {
    // Feed up to the first line end; finish() completes that one row.
    let end = head.indexOf(10);
    const cr = head.indexOf(13);
    if (cr >= 0 && (end < 0 || cr < end)) end = cr;
    const first = await v.push(head.subarray(0, end < 0 ? head.length : end + 1));
    const last = await v.finish();
    const rows = first.rowCount + last.rowCount;
    const names = splitCsvRow(head.subarray(0, end < 0 ? head.length : end).toString('utf8').replace(/^\uFEFF/, ''), dialect.delimiter, dialect.quote);
    // A first row that spells the column names is a header even when it would parse.
    if (names.length === ds.columns.length && names.every((n, i) => n.trim() === ds.columns[i]!.name)) return false;
    return rows === 1;
  } catch {
    return false;
  }
}

/**
 * The first record of a CSV head: its fields and the byte offset of its line end (quotes
 * may hold line ends). Undefined when the head does not hold a whole record. Read on bytes (the
 * delimiter, quote, escape and line ends are ASCII, never part of a UTF-8 character): a record
 * that is not UTF-8 is a 400 INVALID_UTF8 (decoded, its replacement characters moved the offset,
 * and a header with a byte-order mark cut short ran into the next row: "found [i, s1, a]").
 */
export function firstRecord(head: Buffer, dialect: CsvDialect, complete: boolean): { fields: string[]; end: number } | undefined {
  const h = head.subarray(0, 64 * 1024);
  const bom = h[0] === 0xef && h[1] === 0xbb && h[2] === 0xbf ? 3 : 0;
  const quote = dialect.quote.charCodeAt(0);
  const escape = dialect.escape && dialect.escape !== dialect.quote ? dialect.escape.charCodeAt(0) : -1;
  let quoted = false;
  let i = bom;
  for (; i < h.length; i++) {
    const c = h[i]!;
    if (quoted) {
      if (c === escape) i++;
      else if (c === quote) quoted = false;
    } else if (c === quote) quoted = true;
    else if (c === 10 || c === 13) break;
  }
  if (i >= h.length && !(complete && head.length <= 64 * 1024)) return undefined;
  const line = h.subarray(bom, Math.min(i, h.length));
  if (!isUtf8(line)) throw new RoostError('INVALID_UTF8', 'line 1 is not valid UTF-8; send the file as UTF-8 (nothing was stored)', { details: { line: 1 } });
  return { fields: splitCsvRow(line.toString('utf8'), dialect.delimiter, dialect.quote), end: bom + line.length };
}

/** Header cells without the empty ones past `columns` at their end (a trailing delimiter; the validator and infer.cc drop the same). */
function withoutTrailingBlanks(cells: string[], columns: number): string[] {
  let n = cells.length;
  while (n > columns && /^[ \t]*$/.test(cells[n - 1]!)) n--;
  return n === cells.length ? cells : cells.slice(0, n);
}

/** The validator's columnOrder mark of a column the header left out (kAbsent in validator.h). */
const ABSENT = 4294967295;

/**
 * Whether header names spell the columns: 'exactly', 'as written' (each name is what schema
 * inference makes of the header cell: see inferredColumnNames), the column names to read in the
 * file's order (matched by the create's header text, or standing for unnamed cells), or not at
 * all (false).
 */
export function headerSpells(names: string[], columns: ReadonlyArray<{ name: string; nullable?: boolean; defaultExpr?: string | null }>, headerAs?: readonly string[]): 'exactly' | 'as written' | string[] | false {
  if (headerAs && headerAs.length === columns.length && names.length === columns.length) {
    // The header the columns were inferred from: as it was (cells of the same text told apart by
    // their place), or in another order, each cell's column by its text.
    if (names.every((n, i) => n.trim() === headerAs[i])) return columns.map((c) => c.name);
    const byText = new Map(headerAs.map((h, i) => [h.trim(), columns[i]!.name] as const));
    const mapped = names.map((n) => byText.get(n.trim()));
    if (byText.size === headerAs.length && mapped.every((m) => m !== undefined) && new Set(mapped).size === mapped.length) return mapped as string[];
  }
  if (names.length < columns.length && names.length > 0) {
    // Some of the columns, by name: the others take their DEFAULT (or NULL), as a file that
    // leaves out a column with a default (the header must name which ones it has).
    const named = new Set(names);
    const ok = named.size === names.length && names.every((n) => columns.some((c) => c.name === n))
      && columns.every((c) => named.has(c.name) || c.nullable || (c.defaultExpr ?? null) !== null);
    return ok ? 'exactly' : false;
  }
  if (names.length !== columns.length) return false;
  // A row with no name in it (`,,`) is no header, whatever names an inference gave the columns.
  if (names.every((n) => n.trim() === '')) return false;
  // In any order: the columns are then taken by name (as Tinybird's appends do with a header).
  const all = (ns: string[]) => new Set(ns).size === ns.length && columns.every((c) => ns.includes(c.name));
  if (all(names)) return 'exactly';
  // Spelled in another case (`ID,Name` for id, name): the columns by name. (With every column a
  // String such a header was valid data, and stored as a row; found by a black-box round.)
  const lower = new Map(columns.map((c) => [c.name.toLowerCase(), c.name] as const));
  const byCase = (ns: string[]): string[] | undefined => {
    if (lower.size !== columns.length) return undefined;
    const m = ns.map((n) => lower.get(n.trim().toLowerCase()));
    return m.every((x) => x !== undefined) && new Set(m).size === m.length ? (m as string[]) : undefined;
  };
  const cased = byCase(names);
  if (cased) return cased;
  // As schema inference writes the cells, in the columns' case or another (`size (cm)` for the
  // Size_cm a create from `Size (cm)` made).
  const written = inferredColumnNames(names);
  const writtenCased = all(written) ? written : byCase(written);
  if (writtenCased) {
    // Cells of different text that read alike (`Revenue %`, `Revenue #`) cannot be told apart
    // without the create's header text (headerAs): refused. Cells of the same text (`name,name`,
    // a join's export) are told apart by their place, taken in the schema's order.
    const bases = inferredColumnNames(names, false);
    const textOf = new Map<string, string>();
    let alike = false;
    bases.forEach((b, i) => {
      const t = names[i]!.trim();
      if (textOf.has(b) && textOf.get(b) !== t) alike = true;
      textOf.set(b, t);
    });
    return alike ? false : writtenCased === written ? 'as written' : writtenCased;
  }
  // Unnamed cells (pandas writes its index column so: `,user_id,score`) stand for the schema's
  // column at their place, when every named cell is a column of the schema: the names to read.
  const blank = (n: string) => n.trim() === '';
  if (names.some(blank) && names.some((n) => !blank(n))) {
    const filled = names.map((n, i) => (blank(n) ? columns[i]!.name : n));
    if (all(filled)) return filled;
  }
  return false;
}

/**
 * Column names that schema inference gives header cells (native/core/csv/infer.cc
 * sanitizeName and its de-duplication, kept in step): spaces and tabs trimmed, runs of
 * other characters than ASCII letters, digits, _ and the letters of other scripts (nameCodePoint)
 * become one _, no trailing _, a leading
 * digit gets c_, an empty name is column_NN, a repeated name (or one of the quarantine's own
 * columns, QUARANTINE_OWN) gets _2, _3, ...
 */
/** A code point past ASCII that may stand in a column name: native/core/csv/infer.cc nameCodePoint, kept in step. */
function nameCodePoint(cp: number): boolean {
  return (cp >= 0xc0 && cp <= 0x1fff && cp !== 0xd7 && cp !== 0xf7) || (cp >= 0x3040 && cp <= 0xd7ff) || (cp >= 0xf900 && cp <= 0xfdff) || (cp >= 0x20000 && cp <= 0x3ffff);
}

export function inferredColumnNames(cells: string[], dedupe = true): string[] {
  // The quarantine's own column names are taken, as in the native inference.
  const used = new Set<string>(QUARANTINE_OWN);
  return cells.map((raw, index) => {
    let s = '';
    let lastUnderscore = false;
    for (const ch of raw.replace(/^[ \t]+|[ \t]+$/g, '')) {
      if (/^[A-Za-z0-9_]$/.test(ch) || nameCodePoint(ch.codePointAt(0)!)) { s += ch; lastUnderscore = ch === '_'; }
      else if (s !== '' && !lastUnderscore) { s += '_'; lastUnderscore = true; }
    }
    while (s.length > 1 && s.endsWith('_')) s = s.slice(0, -1);
    if (s === '' || s === '_') s = `column_${String(index).padStart(2, '0')}`;
    else if (/^[0-9]/.test(s)) s = `c_${s}`;
    if (!dedupe) return s;
    let name = s;
    for (let k = 2; used.has(name); k++) name = `${s}_${k}`;
    used.add(name);
    return name;
  });
}

function csvField(v: string, dialect: CsvDialect): string {
  if (!v.includes(dialect.delimiter) && !v.includes(dialect.quote) && !/[\r\n]/.test(v)) return v;
  return dialect.quote + v.split(dialect.quote).join(dialect.quote + dialect.quote) + dialect.quote;
}

export function csvToRoost(e: unknown): unknown {
  if (!(e instanceof CsvError)) return e;
  const details: Record<string, unknown> = {};
  if (e.line !== undefined) details.line = e.line;
  if (e.expected) details.expected = e.expected;
  if (e.found) details.found = e.found;
  switch (e.code) {
    case 'ROW_TOO_LARGE': return new RoostError('ROW_TOO_LARGE', `${e.message}; a row may be at most 8 MiB: split it (long text in several rows, or keep large values outside); or, if no row is that long, a quote opened in it is never closed (check the quoting, or set dialect_quotechar)`, { details });
    case 'INVALID_UTF8': return new RoostError('INVALID_UTF8', `${e.message}; send UTF-8 text`, { details });
    // The first row was read as a header (it does not read as data): say how to send it as data.
    case 'HEADER_MISMATCH': {
      // A header of thousands of names made an error of hundreds of KB: its start says enough.
      const message = e.message.length > 2000 ? `${e.message.slice(0, 2000)}… (${e.found?.length ?? 'many'} names found)` : e.message;
      if (e.found && e.found.length > 100) details.found = [...e.found.slice(0, 100), `… ${e.found.length - 100} more`];
      return new RoostError('HEADER_MISMATCH', `${message} (nothing was stored); name the columns as the schema does, or send header=false if the first row is data`, { details });
    }
    case 'SCHEMA_SYNTAX': return new RoostError('SCHEMA_SYNTAX', e.message, { details });
    // A dialect's characters (or another option) the parser cannot take: the parameter's fault, as on an append.
    case 'INVALID_ARGUMENT': return new RoostError('INVALID_PARAMETER', e.message, { details });
    case 'UNSUPPORTED_TYPE': return new RoostError('SCHEMA_SYNTAX', e.message, { details });
    default: return new RoostError('BAD_REQUEST', e.message, { details });
  }
}

/**
 * Every event of an NDJSON file (a buffered /v0/events request the engine refused as a whole:
 * see the events buffer) into the data source's `<name>_quarantine`, each with its line, its raw
 * text, its values by the columns' JSON paths and `reason`; the number of events, and whether
 * they were inserted now. Blank lines hold no event (as the buffer counts them). Under the data
 * source's lock, as an append. A retried call (a crash after the insert and before the file was
 * removed) finds the rows of `importId` and inserts nothing; the embedded engine would also skip
 * the insert by its `dedupToken`.
 */
export async function quarantineNdjsonFile(app: App, ws: Workspace, ds: DataSource, file: string, reason: string, importId: string, dedupToken: string): Promise<{ events: number; inserted: boolean }> {
  return withDataSourceLock(app, ws, ds, false, async () => {
    const engine = app.cells.engineFor(getTenant(app.state, ws.tenant));
    await createQuarantine(engine, ws, ds);
    // Done before (a crash between the insert and the segment's removal), under the same import
    // id: not again, on any engine (a remote server has no deduplication window).
    const before = Number((await engine.exec(`SELECT count() FROM ${qualified(ws, `${ds.table}_quarantine`)} WHERE c__import_id = ${quoteString(importId)}`, { format: 'TSV' })).toString().trim());
    if (before > 0) return { events: before, inserted: false };
    const paths = columnPaths(ds.columns);
    const now = chTime();
    let count = 0;
    let lineNo = 0;
    const record = (line: string): string => {
      count++;
      // As the request's lines were read: without a CRLF's CR, and the body's BOM.
      let raw = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (lineNo === 1 && raw.charCodeAt(0) === 0xfeff) raw = raw.slice(1);
      return quarantineRecord({ line: lineNo, column: null, reason, raw, values: valuesAt(raw, paths) }, ds.columns, importId, now) + '\n';
    };
    async function* rows(): AsyncGenerator<Buffer> {
      const decoder = new StringDecoder('utf8');
      let carry = '';
      for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
        const lines = (carry + decoder.write(chunk as Buffer)).split('\n');
        carry = lines.pop()!;
        let out = '';
        for (const l of lines) {
          lineNo++;
          if (!isBlankLine(l)) out += record(l);
        }
        if (out) yield Buffer.from(out);
      }
      carry += decoder.end();
      lineNo++;
      if (!isBlankLine(carry)) yield Buffer.from(record(carry));
    }
    const dedup: Record<string, string> = engine.kind === 'embedded' ? { insert_deduplication_token: dedupToken } : {};
    // One block (one part, one deduplication token), as an import's quarantine rows.
    await engine.insert(qualified(ws, `${ds.table}_quarantine`), 'JSONEachRow', rows(), {
      settings: { date_time_input_format: 'best_effort', ...ONE_BLOCK, ...dedup },
    });
    storageChanged(ws.tenant);
    return { events: count, inserted: true };
  });
}
