/**
 * Runs an analyzed, read-only query in a tenant's engine and streams the result
 * to the HTTP response in the format asked for. Shared by `/v0/sql` and pipe
 * endpoints: the same limits, cancellation and error mapping.
 */
import os from 'node:os';
import type { Ctx } from '../http/context.js';
import { writeChunk } from '../http/context.js';
import path from 'node:path';
import { pumpResult, spoolLimit, stallLimit } from './result-spool.js';
import type { Engine, QueryStats } from '../cells/engine.js';
import type { Tenant } from '../../tenants/registry.js';
import type { Config } from '../config.js';
import type { Metrics } from '../log/metrics.js';
import { QueryFailed, RoostError } from '../errors.js';
import { acquireQuerySlot } from '../../tenants/limits.js';
import { namesInternalDatabase, withPublicNames, type PublicNames } from './public-names.js';
import { ENGINE_SETTINGS, withoutQuotedQuery, withoutSettings } from './engine-message.js';

export const OUTPUT_FORMATS: Record<string, string> = {
  JSON: 'application/json; charset=utf-8',
  CSV: 'text/csv; charset=utf-8',
  CSVWithNames: 'text/csv; charset=utf-8',
  TSV: 'text/tab-separated-values; charset=utf-8',
  TSVWithNames: 'text/tab-separated-values; charset=utf-8',
  JSONEachRow: 'application/x-ndjson; charset=utf-8',
  Parquet: 'application/vnd.apache.parquet',
  // Prometheus' text exposition format (columns name, value; help, type, labels, timestamp optional).
  Prometheus: 'text/plain; version=0.0.4; charset=utf-8',
};

/** Maps endpoint extensions (`.json`, `.csv`, ...) to ClickHouse formats. */
export const EXTENSION_FORMATS: Record<string, string> = {
  json: 'JSON', csv: 'CSVWithNames', csvwithnames: 'CSVWithNames', ndjson: 'JSONEachRow', parquet: 'Parquet', tsv: 'TSVWithNames',
  prometheus: 'Prometheus',
};

export interface RunOptions {
  engine: Engine;
  tenant: Tenant;
  config: Config;
  metrics: Metrics;
  sql: string;
  format: string;
  /** Settings the user's query asked for (already allowlisted by the analyzer). */
  userSettings?: Record<string, string | number>;
  /** Watches (and may complete) a 200 result on its way out: `ResultTail`. */
  tail?: ResultFilter;
  /**
   * The workspace's names: engine errors quote the query as sent (internal database and
   * table names), and are rewritten with these before anyone sees or logs them.
   */
  names: PublicNames;
  /** Called once the response is complete (or failed) with what was sent. */
  onDone?: (r: { status: number; bytes: number; error?: RoostError | Error }) => void;
  /**
   * The query inlines what the caller may not read (other pipes' nodes): engine errors lose the
   * query they quote (`... in scope SELECT ...`), keeping the name they are about.
   */
  hideQuery?: boolean;
  /**
   * The credential's budget of abandoned queries (auth/abandoned-queries.ts): checked before the
   * query runs, charged when its client left it running and its cell was restarted to stop it.
   */
  abandon?: { check(): void; restarted(): void };
}

/** Sees every chunk of a 200 result before it is written, and adds what is left at the end. */
export interface ResultFilter {
  /** Whether this result format is watched at all (else chunks are written as they come). */
  readonly useful: boolean;
  /** What to write now for this chunk (possibly nothing yet). */
  pass(chunk: Buffer): Buffer;
  /** What to write after the last chunk. */
  finish(): Buffer;
  /** The engine's statistics of a result sent whole (any format, watched or not). */
  stats?(s: QueryStats): void;
}

/**
 * A trailing `SETTINGS k = v, ...` and the whitespace before it. `(?<!\s)` starts a match only
 * where a run of whitespace starts: without it the search tried each of a run's n positions,
 * reading the rest of the run (`\s+`) each time, n² steps on the event loop (`SELECT 1`, 200,000
 * spaces, `+ 1`: 34 s). Same matches: the leftmost start of a match was always the start of its
 * run, and from there `\s+` reaches the same `SETTINGS`.
 */
const TRAILING_SETTINGS = /(?<!\s)\s+SETTINGS\s+((?:[A-Za-z_][A-Za-z0-9_]*\s*=\s*(?:'(?:[^'\\]|\\.)*'|-?[0-9.]+|true|false)\s*,\s*)*[A-Za-z_][A-Za-z0-9_]*\s*=\s*(?:'(?:[^'\\]|\\.)*'|-?[0-9.]+|true|false))\s*$/i;

/**
 * Takes the top-level `SETTINGS` clause off an analyzed query (the analyzer has
 * already limited its keys to an allowlist with literal values), so the engine
 * can send the user's settings together with the enforced ones in one clause.
 */
export function splitUserSettings(sql: string): { sql: string; settings: Record<string, string | number> } {
  const m = TRAILING_SETTINGS.exec(sql);
  if (!m) return { sql, settings: {} };
  const settings: Record<string, string | number> = {};
  for (const part of m[1]!.match(/[A-Za-z_][A-Za-z0-9_]*\s*=\s*(?:'(?:[^'\\]|\\.)*'|-?[0-9.]+|true|false)/gi) ?? []) {
    const eq = part.indexOf('=');
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    settings[k] = v.startsWith("'") ? v.slice(1, -1).replace(/\\(.)/g, '$1') : /^(true|false)$/i.test(v) ? (v.toLowerCase() === 'true' ? 1 : 0) : Number(v);
  }
  return { sql: sql.slice(0, m.index), settings };
}

/** Threads of one query unless the tenant's `query_threads` says otherwise: half the cores, at least one. */
export const DEFAULT_QUERY_THREADS = Math.max(1, Math.floor(os.availableParallelism() / 2));
/**
 * A tenant's queries its cell's engine runs at once unless its `query_parallelism` says
 * otherwise: two (one on a one-core machine). One engine session runs its queries one after
 * another, so with one a tenant's endpoints used one core however many there were; two, each
 * on half the cores (DEFAULT_QUERY_THREADS), can use the machine when it is otherwise idle.
 */
export const DEFAULT_QUERY_PARALLELISM = Math.min(2, os.availableParallelism());

/**
 * A streamed result is taken from the engine as it comes and waits for a slow client in memory,
 * then in a spool file of up to ROOST_RESULT_SPOOL_BYTES (1 GiB): the tenant's engine runs one
 * statement at a time, and a client reading slowly held all its other requests until the query's
 * time limit. Past the spool's size a client that takes nothing for ROOST_CLIENT_STALL_MS (60 s)
 * is let go, its query cancelled.
 */
const RESULT_SPOOL_BYTES = spoolLimit(process.env.ROOST_RESULT_SPOOL_BYTES);
const CLIENT_STALL_MS = stallLimit(process.env.ROOST_CLIENT_STALL_MS);
/** A result the cell had whole is written to the socket at once up to this size; a larger one goes through the spool. */
const WHOLE_WRITE_BYTES = 4 << 20;

/** The read-only limits a tenant's queries run under. */
/** A query's time limit for the tenant: its own, else the server's. */
export function queryTimeoutMs(tenant: Tenant, config: Config): number {
  return tenant.limits.query_timeout_ms ?? config.queryTimeoutMs;
}

export function querySettings(tenant: Tenant, config: Config, format: string): { settings: Record<string, string | number>; timeoutMs: number } {
  const l = tenant.limits;
  const settings: Record<string, string | number> = {};
  // The tenant's own limit, else the server's default (a quarter of the machine's memory).
  const memory = l.query_memory_bytes ?? config.queryMemoryBytes;
  if (memory) settings.max_memory_usage = memory;
  // A CPU share per query: one tenant's heavy query must leave cores to the others (and to this server).
  settings.max_threads = l.query_threads ?? DEFAULT_QUERY_THREADS;
  // 64-bit integers as JSON numbers, as Tinybird answers: the embedded engine's default
  // already; older servers quote them unless told (each setting costs per query).
  if (tenant.placement.type !== 'embedded' && (format === 'JSON' || format === 'JSONEachRow')) settings.output_format_json_quote_64bit_integers = 0;
  // NDJSON is JSON text: a String holding bytes that are not UTF-8 (a substring() cutting a
  // character) was written raw, and the line was no JSON a client could parse; replaced with
  // U+FFFD as in JSON (the embedded engine has the setting; servers before 20.x do not).
  if (tenant.placement.type === 'embedded' && format === 'JSONEachRow') settings.output_format_json_validate_utf8 = 1;
  settings.readonly = 1;
  return { settings, timeoutMs: queryTimeoutMs(tenant, config) };
}

export async function runQueryToResponse(ctx: Ctx, o: RunOptions): Promise<void> {
  const type = OUTPUT_FORMATS[o.format];
  if (!type) throw new RoostError('UNSUPPORTED_FORMAT', `format ${o.format} is not supported; use one of ${Object.keys(OUTPUT_FORMATS).join(', ')}`);
  const { settings, timeoutMs } = querySettings(o.tenant, o.config, o.format);
  o.abandon?.check();
  const release = acquireQuerySlot(o.tenant);
  try {
    await runWithSlot(ctx, o, type, settings, timeoutMs);
  } finally {
    release();
  }
}

async function runWithSlot(ctx: Ctx, o: RunOptions, type: string, settings: Record<string, string | number>, timeoutMs: number): Promise<void> {
  const t0 = performance.now();
  let bytes = 0;
  const observe = (outcome: string) => o.metrics.engineQuerySeconds.observe({ engine: o.engine.kind, outcome }, (performance.now() - t0) / 1000);
  let stream;
  /** Settings sent with the query: the embedded engine's errors quote them as a SETTINGS clause, taken out. */
  let sent: string[] = [];
  try {
    const split = splitUserSettings(o.sql);
    // The user's (allowlisted) settings first; the enforced ones win and readonly comes last.
    const asked = o.userSettings ? Object.assign(split.settings, o.userSettings) : split.settings;
    // A lower max_threads asked for (settings or the template's max_threads()) is kept; a higher one is not.
    const merged = Object.assign({}, asked, settings);
    if (Number(asked.max_threads) > 0 && Number(asked.max_threads) < Number(settings.max_threads)) merged.max_threads = Number(asked.max_threads);
    // Quoting 64-bit integers is only a default (Tinybird's); a query or request asking for it keeps its choice.
    if (asked.output_format_json_quote_64bit_integers !== undefined) merged.output_format_json_quote_64bit_integers = asked.output_format_json_quote_64bit_integers;
    sent = [...Object.keys(merged), ...ENGINE_SETTINGS];
    stream = await o.engine.query(split.sql, { format: o.format, settings: merged, timeoutMs, signal: ctx.signal, onAbandonRestart: o.abandon?.restarted, parallel: o.tenant.limits.query_parallelism ?? DEFAULT_QUERY_PARALLELISM });
  } catch (caught) {
    // Roost's own SETTINGS clause out first: an unfinished query fails at it, which reads as
    // "the query ends before it is complete" only while the clause is in the message.
    const failed = unsupportedFormat(caught, o);
    withoutSettings(failed, sent);
    const e = userSyntax(failed, o.hideQuery === true);
    withPublicNames(e, o.names);
    observe('error');
    o.onDone?.({ status: e instanceof RoostError ? e.status : 500, bytes: 0, error: e as Error });
    throw e;
  }
  ctx.res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  const tail = o.tail?.useful ? o.tail : undefined;
  try {
    // A result the cell had whole is written at once only when small: a large one (a few big
    // blocks end within the cell's window) takes the spool's road, so a slow client of a 140 MB
    // result does not hold 140 MB of the server's memory in the socket's buffer.
    const whole = stream.takeAll?.();
    if (whole && whole.reduce((n, c) => n + c.length, 0) <= WHOLE_WRITE_BYTES) {
      // Already in memory: written at once, without a trip through the stream's iterator.
      if (ctx.res.destroyed) throw new RoostError('CLIENT_CLOSED', 'client went away');
      for (const chunk of whole) {
        bytes += chunk.length;
        if (!tail) ctx.res.write(chunk);
        else {
          const out = tail.pass(chunk);
          if (out.length) ctx.res.write(out);
        }
      }
    } else {
      // Taken from the engine at its pace, given to the client at the client's (result-spool.ts).
      const s = stream;
      // The whole result's chunks are let go as they are taken (to the socket or the spool file).
      const source: Iterable<Buffer> | AsyncIterable<Buffer> = whole ? (function* () { while (whole.length) yield whole.shift()!; })() : s;
      const counted = (async function* () { for await (const chunk of source) { bytes += chunk.length; yield chunk; } })();
      await pumpResult(ctx, counted, {
        dir: path.join(o.config.dataDir, 'tmp'), maxSpoolBytes: RESULT_SPOOL_BYTES, stallMs: CLIENT_STALL_MS,
        ...(tail ? { transform: (c: Buffer) => tail.pass(c) } : {}),
        cancel: () => s.cancel?.(),
      });
    }
    // The last bytes go with end(): the same bytes on the wire as write() then end(), one call less.
    const rest = tail?.finish();
    if (rest?.length) ctx.res.end(rest);
    else ctx.res.end();
    // Settled already (the stream has ended): what the engine read, for the call log.
    if (o.tail?.stats) o.tail.stats(await stream.done);
    observe('ok');
    o.onDone?.({ status: 200, bytes });
  } catch (e) {
    withPublicNames(e, o.names);
    observe('error');
    o.onDone?.({ status: 200, bytes, error: e as Error });
    markIncomplete(ctx, e);
    throw e;
  }
}

/**
 * A result that fails after its 200 head is cut (no last chunk): the client sees a broken
 * transfer. HTTP/1.0 has no chunks (nginx speaks it to its upstreams by default): the close
 * that cuts the answer reads as its end, and rows ending on a line look complete. There the
 * error is written into the body, as ClickHouse's own HTTP interface does, so the text is not
 * a valid CSV, TSV or NDJSON ending (nor JSON: its trailer was held back), then it ends.
 */
/** ClickHouse's own code for a query over its time limit. */
const TIMEOUT_EXCEEDED = 159;

function markIncomplete(ctx: Ctx, e: unknown): void {
  const res = ctx.res;
  if (ctx.req.httpVersion !== '1.0' || !res.headersSent || res.destroyed || res.writableEnded) return;
  // The request deadline passed: whatever the abort made the query throw, that is the reason.
  if (ctx.deadline) e = ctx.deadline;
  else if (e instanceof RoostError && e.code === 'CLIENT_CLOSED') return;
  const msg = (e instanceof Error ? e.message : String(e)).replace(/[\r\n]+/g, ' ');
  const code = ctx.deadline ? TIMEOUT_EXCEEDED : e instanceof QueryFailed && e.clickhouseCode !== undefined ? e.clickhouseCode : 0;
  res.end(`\nCode: ${code}. Roost: the result above is incomplete: ${msg.replace(/^Code: \d+\.\s*/, '')}\n`);
}

/**
 * The engine's syntax error (code 62) in a query a user sent (here: /v0/sql and endpoint calls,
 * their SQL and templates): the text is not SQL, a 400 as the analyzer's own syntax errors are
 * (it was a 422, which API.md keeps for valid syntax the engine cannot run). Statements Roost
 * builds itself keep QUERY_FAILED: their syntax is not the caller's to fix.
 */
function userSyntax(e: unknown, hideQuery: boolean): unknown {
  // The engine's messages quote the query as compiled, with the nodes of the pipes it reads (a
  // `PIPES:READ` token's typo in `q=` showed another pipe's SQL and literals): unknown
  // identifiers, wrong argument types, GROUP BY mistakes, missing aliases, ...
  if (hideQuery && e instanceof QueryFailed) hideQuotedQuery(e);
  // PREWHERE over what is not a table the engine reads directly: a subquery, a pipe's node, or a
  // data source the credential reads through a row filter (a view of it). Said with what to
  // write instead (the hidden message said only the engine's name of the error).
  if (e instanceof QueryFailed && e.clickhouseCode === 182) {
    return new RoostError('SQL_INVALID', 'PREWHERE works only on a data source read directly; over a subquery, a pipe or node, or a data source this credential reads through a row filter (a filter in its token scope or JWT), the engine refuses it: write the condition in WHERE instead (the engine moves WHERE conditions to PREWHERE by itself where it can)', { cause: e, details: { clickhouse_code: 182, sql_code: 'ILLEGAL_PREWHERE' } });
  }
  if (!(e instanceof QueryFailed) || e.clickhouseCode !== 62) return e;
  return new RoostError('SQL_SYNTAX', e.message, { cause: e, details: { ...e.details } });
}

/**
 * An engine error without the query it quotes (withoutQuotedQuery), for queries that inline what
 * the reader may not see (other pipes' nodes, row filters' views). A shape not known there (FINAL
 * on a subquery, ARRAY JOIN type errors, ...) still names an internal database, which only a
 * compiled query does: then only the code is said. Before withPublicNames.
 */
export function hideQuotedQuery(e: RoostError): void {
  // (The engine's "Maybe you meant: ['s']" names columns of the hidden query: another pipe's.)
  let m = withoutQuotedQuery(e.message).replace(/ Maybe you meant: \[[^\]\n]*\]\.?/g, '');
  // (A `SELECT` left in the message is the query too: a hidden pipe over numbers() or literals
  // names no database — `… are not supported for subquery SELECT …`, `ARRAY JOIN (SELECT …)`.)
  // (Nor a compiled expression: the analyzer's `__table2.name`, a `FUNCTION f(…)` dump.)
  if (namesInternalDatabase(m) || /\bSELECT\b|\b__table\d|\bFUNCTION \w+\(|\) -> | :: \d/.test(m.replace(/\. Expected one of: [\s\S]*$/, ''))) {
    const code = e instanceof QueryFailed ? e.clickhouseCode : undefined;
    const name = /\(([A-Z_]+)\)(?: \(version [^)]+\))?\.?$/.exec(m.slice(-200))?.[1];
    m = `Code: ${code ?? 0}. DB::Exception: the engine refused the query${name ? ` (${name})` : ''}; its message quoted the query as compiled, with what this request may not read (other pipes' nodes, row filters), and is not shown: check the query against the columns and types it reads`;
  }
  if (m !== e.message) Object.defineProperty(e, 'message', { value: m, configurable: true, writable: true });
}

/**
 * A format the tenant's own (older) ClickHouse server does not know (Parquet before 19.x):
 * the client's request, said as such, rather than a failed query.
 */
function unsupportedFormat(e: unknown, o: RunOptions): unknown {
  if (o.engine.kind !== 'embedded' && e instanceof QueryFailed && e.clickhouseCode === 73 && /Unknown format/i.test(e.message)) {
    return new RoostError('UNSUPPORTED_FORMAT', `format ${o.format} is not supported by this tenant's ClickHouse server; ask for another format (.json, .csv, .ndjson)`, { details: { clickhouse_code: 73 } });
  }
  return e;
}
