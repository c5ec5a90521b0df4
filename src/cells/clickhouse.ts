/**
 * The remote engine: a tenant's own ClickHouse server or cluster over HTTP,
 * through `@clickhouse/client`. Results and inserts stream; nothing is held whole.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import type { ClickHouseClient } from '@clickhouse/client';
import { EngineUnavailable, InsertOutcomeUnknown, mayHaveRun, QueryFailed, RoostError } from '../errors.js';
import type { Engine, InsertBody, InsertOptions, InsertSummary, QueryOptions, QueryStats, QueryStream } from './engine.js';
import { quoteIdent, versionAtLeast } from './engine.js';

// The client library is loaded when the first remote engine is made, not at server start:
// a server whose cells are all embedded never loads it (it costs ~20 ms of CPU per start).
type ClientLibrary = typeof import('@clickhouse/client');
let library: ClientLibrary | undefined;
function clientLibrary(): ClientLibrary {
  return (library ??= createRequire(import.meta.url)('@clickhouse/client') as ClientLibrary);
}

export interface ClickHouseEngineOptions {
  url: string;
  user?: string;
  password?: string;
  /** Cluster name: DDL from Roost runs `ON CLUSTER` it. */
  cluster?: string;
  requestTimeoutMs?: number;
}

/** UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, IP_ADDRESS_NOT_ALLOWED, AUTHENTICATION_FAILED, ACCESS_DENIED. */
const AUTH_CODES = new Set([192, 193, 194, 195, 497, 516]);
/**
 * NETWORK_ERROR, SOCKET_TIMEOUT, TOO_MANY_SIMULTANEOUS_QUERIES, TABLE_IS_READ_ONLY, TOO_MANY_PARTS,
 * NO_ZOOKEEPER, ALL_CONNECTION_TRIES_FAILED, UNKNOWN_STATUS_OF_INSERT, ALL_REPLICAS_ARE_STALE,
 * KEEPER_EXCEPTION: the server's state, not the request.
 */
/** The end of an engine failure whose text stays in the server's log (logged with the request id). */
const TELL_OPERATOR = "retry later, and tell the operator if it lasts (the details are in the server's log)";
const RETRYABLE_NAMES: Record<number, string> = {
  209: 'SOCKET_TIMEOUT', 210: 'NETWORK_ERROR', 202: 'TOO_MANY_SIMULTANEOUS_QUERIES', 242: 'TABLE_IS_READ_ONLY', 252: 'TOO_MANY_PARTS',
  225: 'NO_ZOOKEEPER', 279: 'ALL_CONNECTION_TRIES_FAILED', 319: 'UNKNOWN_STATUS_OF_INSERT', 369: 'ALL_REPLICAS_ARE_STALE', 999: 'KEEPER_EXCEPTION',
};
const RETRYABLE_CODES = new Set(Object.keys(RETRYABLE_NAMES).map(Number));

/**
 * User settings that only say how to compute a result, never what it is: a server that does not
 * know one (18.16: join_algorithm, optimize_read_in_order, optimize_aggregation_in_order)
 * computes the same result without it.
 */
const SETTING_HINTS = new Set(['max_threads', 'join_algorithm', 'optimize_read_in_order', 'optimize_aggregation_in_order']);

/** The one seam where @clickhouse/client errors become Roost errors. */
export function translateClickHouseError(e: unknown): RoostError {
  if (e instanceof RoostError) return e;
  const err = e as { code?: string | number; message?: string; type?: string; name?: string };
  const msg = String(err.message ?? e);
  if (err.name === 'AbortError' || /aborted/i.test(msg)) return new RoostError('CLIENT_CLOSED', 'query cancelled', { cause: e });
  if (typeof err.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ECONNABORTED|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|UND_ERR_SOCKET)$/.test(err.code)) {
    return new EngineUnavailable(`the tenant's ClickHouse server is not reachable (${err.code}); retry later`, { cause: e });
  }
  if (/Timeout error/i.test(msg)) return new RoostError('QUERY_TIMEOUT', 'the ClickHouse server did not answer in time', { cause: e });
  // ClickHouse's own error text (`Code: 62. DB::Exception: …`, or `Code: 62, e.displayText() =
  // DB::Exception: …` before 20.x), not any text holding "Code: " (a proxy's "Status Code: 502").
  const m = /\bCode: (\d+)[.,] (?:e\.displayText\(\) = )?DB::Exception/.exec(msg);
  const code = m ? Number(m[1]) : typeof err.code === 'string' && /^\d+$/.test(err.code) ? Number(err.code) : undefined;
  // Not ClickHouse's answer (a proxy's error page, a TLS failure naming certificates and hosts,
  // another server on that port): its text is the operator's to read, in the server's log, not
  // the tenant's users' (it can describe the network between the servers).
  if (code === undefined && !m) {
    return new EngineUnavailable(`the tenant's ClickHouse server could not be reached or did not answer as ClickHouse does (a network, TLS or proxy failure${typeof err.code === 'string' && /^[A-Z_]+$/.test(err.code) ? `: ${err.code}` : ''}); ${TELL_OPERATOR}`, { cause: e });
  }
  // The server refused Roost's own credentials: the placement (user/password) is wrong, which
  // no client can fix by changing its request. Not retryable until the operator fixes it.
  if (code !== undefined && AUTH_CODES.has(code)) {
    return new EngineUnavailable(`the tenant's ClickHouse server refused Roost's credentials (ClickHouse code ${code}); the operator must correct the tenant's placement user/password`, { cause: e, retryable: false, headers: {} });
  }
  // The server is busy, between replicas or cut off from its peers: worth retrying shortly. The
  // text is not passed on: these name the cluster's hosts and addresses ("All connection tries
  // failed … (10.20.30.41:9000)"); it is in the server's log under the request id.
  if (code !== undefined && RETRYABLE_CODES.has(code)) {
    return new EngineUnavailable(`the tenant's ClickHouse server cannot serve this now (ClickHouse code ${code}, ${RETRYABLE_NAMES[code]}); ${TELL_OPERATOR}`, { cause: e });
  }
  // Servers before 20.x wrap their text (`Code: 47, e.displayText() = DB::Exception: …, e.what() =
  // DB::Exception`): said as newer servers and the embedded engine say it.
  return new QueryFailed(oldServerText(msg), code, { cause: e });
}

/** `Code: N, e.displayText() = DB::Exception: X, e.what() = DB::Exception` → `Code: N. DB::Exception: X`. */
export function oldServerText(msg: string): string {
  if (!msg.includes('e.displayText() = ')) return msg;
  return msg.replace(/\bCode: (\d+), e\.displayText\(\) = /g, 'Code: $1. ').replace(/, e\.what\(\) = [A-Za-z_:]+\s*$/, '').trimEnd();
}

const EMPTY = Buffer.alloc(0);
/** Bytes of a result held back to read an error ClickHouse appends after 200 OK. */
const TAIL_HOLD = 64 * 1024;
/**
 * An error ClickHouse appended to a 200 result: `Code: N, e.displayText() = DB::Exception: ...,
 * e.what() = DB::Exception` (before 21.x) or `Code: N. DB::Exception: ... (version V)`, that
 * ends the body. It follows the last row (TSV, CSV and JSONEachRow end their rows with a newline;
 * JSON with } or [), never a tab or a quote: data that merely holds such text (an
 * error_message column of pipe_stats_rt) is a quoted string or follows a tab, and is not it.
 */
export function trailingError(tail: Buffer): { at: number; error: QueryFailed } | undefined {
  if (!tail.includes('DB::Exception')) return undefined;
  const text = tail.toString('latin1');
  const re = /Code: (\d+)(?:, e\.displayText\(\) = |\. )DB::Exception/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const before = m.index === 0 ? '' : text[m.index - 1]!;
    if (before !== '' && !'\n}],[{'.includes(before)) continue;
    const rest = text.slice(m.index);
    if (!/(, e\.what\(\) = DB::Exception|\(version [^)\n]*\))\n?$/.test(rest)) continue;
    const message = Buffer.from(rest, 'latin1').toString('utf8').trim();
    return { at: Buffer.byteLength(text.slice(0, m.index), 'latin1'), error: new QueryFailed(oldServerText(message), Number(m[1])) };
  }
  return undefined;
}

/** What a remote server can do, from its version (older servers are supported with less). */
export interface ServerFeatures {
  version: string;
  /** `EXCHANGE TABLES` (20.x+); else a two-table RENAME swaps. */
  exchangeTables: boolean;
  /** DateTime64 (20.1+); else service and quarantine times are DateTime. */
  dateTime64: boolean;
  /** The RowBinaryWithDefaults input format (23.3+): rows of data sources with a DEFAULT column go in it. */
  rowBinaryWithDefaults: boolean;
  /** Map(K, V) (21.1+); else such columns hold JSON text. */
  mapType: boolean;
  /** The `mutations_sync` setting (20.1 here, to be sure; it arrived in 19.x); else deletes poll system.mutations. */
  mutationsSync: boolean;
  /**
   * `ALTER TABLE ... RENAME COLUMN` and `ADD COLUMN IF NOT EXISTS` (both there by 20.4; 18.16 has
   * neither): else a service table's column is copied aside and dropped instead of renamed.
   */
  renameColumn: boolean;
  /** Settings every request needs on this server (e.g. LowCardinality before 19.x). */
  settings: Record<string, string | number>;
  /** The server's own time zone (`timezone()`): a DateTime without one is shown in it. */
  timezone: string;
}

/** Longest wait for the server's version (features()), asked before the first query. */
const FEATURES_TIMEOUT_MS = 30_000;

/** Time zone names that are UTC. */
const UTC_ZONES = new Set(['UTC', 'Etc/UTC', 'Etc/UCT', 'UCT', 'Universal', 'Etc/Universal', 'Zulu', 'Etc/Zulu', 'GMT', 'Etc/GMT', 'Etc/GMT0', 'Etc/GMT+0', 'Etc/GMT-0', 'GMT0', 'Greenwich', 'Etc/Greenwich']);

export class ClickHouseEngine implements Engine {
  readonly kind = 'clickhouse' as const;
  readonly cluster: string | undefined;
  #client: ClickHouseClient;
  #features: Promise<ServerFeatures> | undefined;

  /** Setting hints this server refused as unknown: left out of later queries. */
  #unknownHints = new Set<string>();
  /** A placement this engine refuses to use, said on every call (see the constructor). */
  #invalid: RoostError | undefined;

  constructor(opts: ClickHouseEngineOptions) {
    this.cluster = opts.cluster;
    // A password belongs in placement.password, where it is sealed and never shown: one in the
    // URL (http://user:pass@host, ?password=) would be kept and returned as the URL is. Such a
    // URL, or any parameters (which the client library refuses with an unhandled error), is
    // refused on every call without saying the URL, and no connection is made with it.
    let url = opts.url;
    try {
      const u = new URL(opts.url);
      if (u.username || u.password || u.search || u.hash) {
        this.#invalid = new EngineUnavailable(`the tenant's placement.url carries ${u.username || u.password ? 'credentials' : 'parameters'}; the operator must set it to scheme://host:port only, with the user and password in placement.user and placement.password (sealed, never shown)`, { retryable: false, headers: {} });
        url = u.origin;
      }
    } catch {
      this.#invalid = new EngineUnavailable("the tenant's placement.url is not a valid URL; the operator must correct it", { retryable: false, headers: {} });
      url = 'http://127.0.0.1:1';
    }
    const { createClient, ClickHouseLogLevel } = clientLibrary();
    this.#client = createClient({
      url,
      username: opts.user ?? 'default',
      password: opts.password ?? '',
      request_timeout: opts.requestTimeoutMs ?? 300_000,
      compression: { request: false, response: false },
      // Old servers (18.x) refuse settings they do not know; send none by default.
      clickhouse_settings: {},
      log: { level: ClickHouseLogLevel.OFF },
    });
  }

  async query(sql: string, opts: QueryOptions): Promise<QueryStream> {
    return this.#run(sql, opts, true);
  }

  /** The server's version and what follows from it (asked once). */
  features(): Promise<ServerFeatures> {
    if (this.#features) return this.#features;
    const p = (async (): Promise<ServerFeatures> => {
      // With a time limit: every query waits for this one, and a server that accepts and never
      // answers would hold them (and the service log's writes) for the client's request timeout.
      const s = await this.#run('SELECT version(), timezone()', { format: 'TSV', timeoutMs: FEATURES_TIMEOUT_MS }, true, false);
      const parts: Buffer[] = [];
      for await (const b of s) parts.push(b);
      const answer = Buffer.concat(parts).toString('utf8').trim();
      const [version = '', timezone = 'UTC'] = answer.split('\t');
      // Something else on that address (an SSO page a proxy answers 200 with): not echoed to tenants.
      if (!/^\d+(\.\d+)+$/.test(version) || !/^[A-Za-z0-9_/+-]{1,64}$/.test(timezone)) {
        throw new EngineUnavailable(`the tenant's ClickHouse server did not answer as ClickHouse does (a proxy or another service on its address?); ${TELL_OPERATOR}`, { cause: new Error(`SELECT version(), timezone() answered: ${answer.slice(0, 2048)}`) });
      }
      // Roost's times are UTC (the embedded engine's): a DateTime without a zone, a time literal
      // ('2024-01-01 00:00:00', toDateTime('...')), toDate() and today() are read in the
      // server's zone. A server in another zone gets session_timezone = 'UTC' (23.6+); an older
      // one would answer other instants and days than the embedded engine without a word, so
      // it is refused, saying how to fix it.
      const utc = UTC_ZONES.has(timezone);
      if (!utc && !versionAtLeast(version, 23, 6)) {
        throw new EngineUnavailable(`the tenant's ClickHouse server (version ${version}) runs in time zone ${timezone}; Roost reads and writes times in UTC and this server cannot be told to per query (session_timezone arrived in 23.6): set <timezone>UTC</timezone> in its config.xml`, { retryable: false, headers: {} });
      }
      return {
        version,
        exchangeTables: versionAtLeast(version, 20, 1),
        dateTime64: versionAtLeast(version, 20, 1),
        rowBinaryWithDefaults: versionAtLeast(version, 23, 3),
        mapType: versionAtLeast(version, 21, 1),
        mutationsSync: versionAtLeast(version, 20, 1),
        renameColumn: versionAtLeast(version, 20, 4),
        settings: {
          ...(versionAtLeast(version, 19, 0) ? {} : { allow_experimental_low_cardinality_type: 1 }),
          ...(utc ? {} : { session_timezone: 'UTC' }),
        } as Record<string, string | number>,
        timezone,
      };
    })();
    this.#features = p;
    p.catch(() => { if (this.#features === p) this.#features = undefined; });
    return p;
  }

  async #run(sql: string, opts: QueryOptions, withFormat: boolean, compat = true): Promise<QueryStream> {
    if (this.#invalid) throw this.#invalid;
    // Hints this server does not know are left out (it refuses any setting it does not know).
    if (opts.settings && Object.keys(opts.settings).some((k) => this.#unknownHints.has(k))) {
      opts = { ...opts, settings: Object.fromEntries(Object.entries(opts.settings).filter(([k]) => !this.#unknownHints.has(k))) };
    }
    const extra = compat ? (await this.features()).settings : {};
    const ac = new AbortController();
    // A server closes an HTTP query whose client left only from 19.x on (and then only with
    // cancel_http_readonly_queries_on_client_close): a cancelled or timed-out query is killed
    // by its id, so it stops using the tenant's server as it does on the embedded engine.
    const queryId = randomUUID();
    let settled = false;
    const stop = () => {
      if (ac.signal.aborted) return;
      ac.abort();
      if (!settled) this.#kill(queryId);
    };
    const onAbort = () => stop();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer = opts.timeoutMs ? setTimeout(() => { timedOut = true; stop(); }, opts.timeoutMs) : undefined;
    const t0 = performance.now();
    const cleanup = () => { settled = true; clearTimeout(timer); opts.signal?.removeEventListener('abort', onAbort); };
    let stream: Readable;
    try {
      const r = await this.#client.exec({
        query: withFormat ? `${sql}\nFORMAT ${opts.format}` : sql,
        query_id: queryId,
        abort_signal: ac.signal,
        clickhouse_settings: {
          ...extra,
          ...(opts.timeoutMs ? { max_execution_time: Math.max(1, Math.ceil(opts.timeoutMs / 1000)) } : {}),
          ...(opts.settings as Record<string, string | number>),
        } as never,
      });
      stream = r.stream as Readable;
    } catch (e) {
      cleanup();
      if (timedOut) throw new RoostError('QUERY_TIMEOUT', `query exceeded its time limit of ${opts.timeoutMs} ms`);
      const unknown = /Code: 115\b.*Unknown setting (\w+)/.exec(String((e as Error)?.message ?? ''))?.[1];
      if (unknown && opts.settings && unknown in opts.settings) {
        // A hint (how to compute, not what) is dropped and the query sent again: nothing was
        // answered yet. One that changes the result is the client's to leave out.
        if (SETTING_HINTS.has(unknown)) {
          this.#unknownHints.add(unknown);
          return this.#run(sql, opts, withFormat, compat);
        }
        const version = await this.features().then((f) => f.version, () => 'unknown');
        throw new RoostError('SQL_INVALID', `setting ${unknown} is not available on this tenant's ClickHouse server (version ${version}); leave it out`, { details: { setting: unknown, clickhouse_code: 115 } });
      }
      // A function the embedded engine (and so the analyzer's list) has but this older server
      // does not: said as such, with the server's version, not as a failed query.
      const fn = /Code: 46\b.*Unknown function (\w+)/.exec(String((e as Error)?.message ?? ''))?.[1];
      if (fn && compat) {
        const version = await this.features().then((f) => f.version, () => 'unknown');
        throw new RoostError('SQL_INVALID', `function ${fn} is not available on this tenant's ClickHouse server (version ${version})`, { details: { function: fn, clickhouse_code: 46 } });
      }
      throw translateClickHouseError(e);
    }
    let bytes = 0;
    let chunks = 0;
    let resolveDone!: (s: QueryStats) => void;
    let rejectDone!: (e: Error) => void;
    const done = new Promise<QueryStats>((res, rej) => { resolveDone = res; rejectDone = rej; });
    done.catch(() => {});
    const iterator = async function* (): AsyncGenerator<Buffer> {
      // ClickHouse reports an error after 200 OK by appending it to the body: the last bytes
      // are held back until the end, where such an error is told from data (see trailingError).
      let held: Buffer = EMPTY;
      try {
        for await (const chunk of stream) {
          const b = chunk as Buffer;
          bytes += b.length;
          chunks++;
          if (held.length + b.length <= TAIL_HOLD) {
            held = held.length ? Buffer.concat([held, b]) : b;
            continue;
          }
          if (b.length >= TAIL_HOLD) {
            if (held.length) yield held;
            if (b.length > TAIL_HOLD) yield b.subarray(0, b.length - TAIL_HOLD);
            held = b.subarray(b.length - TAIL_HOLD);
          } else {
            const all = Buffer.concat([held, b]);
            yield all.subarray(0, all.length - TAIL_HOLD);
            held = all.subarray(all.length - TAIL_HOLD);
          }
        }
        const failed = trailingError(held);
        if (failed) {
          if (failed.at > 0) yield held.subarray(0, failed.at);
          throw failed.error;
        }
        if (held.length) yield held;
        if (ac.signal.aborted) throw new RoostError('CLIENT_CLOSED', 'query cancelled');
        resolveDone({ elapsedMs: performance.now() - t0, bytes, chunks });
      } catch (e) {
        const err = timedOut ? new RoostError('QUERY_TIMEOUT', `query exceeded its time limit of ${opts.timeoutMs} ms`)
          : ac.signal.aborted ? new RoostError('CLIENT_CLOSED', 'query cancelled') : translateClickHouseError(e);
        rejectDone(err);
        throw err;
      } finally {
        cleanup();
        stream.destroy();
      }
    };
    return { [Symbol.asyncIterator]: iterator, done, cancel: stop };
  }

  /** Ends a query on the server (best effort: the server's max_execution_time is the backstop). */
  #kill(queryId: string): void {
    const on = this.cluster ? ` ON CLUSTER ${quoteIdent(this.cluster)}` : '';
    this.#client.command({ query: `KILL QUERY${on} WHERE query_id = '${queryId}' ASYNC`, clickhouse_settings: {}, abort_signal: AbortSignal.timeout(10_000) })
      .catch(() => { /* the server is gone or the query ended: nothing to stop */ });
  }

  async exec(sql: string, opts: Partial<QueryOptions> = {}): Promise<Buffer> {
    // Only statements that produce a result take a FORMAT clause (INSERT ... VALUES would not parse).
    const reads = /^(\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS)\b/i.test(sql);
    const s = await this.#run(sql, { format: opts.format ?? 'TSV', settings: opts.settings, timeoutMs: opts.timeoutMs, signal: opts.signal }, reads);
    const parts: Buffer[] = [];
    for await (const b of s) parts.push(b);
    return Buffer.concat(parts);
  }

  async insert(table: string, format: string, body: InsertBody, opts: InsertOptions = {}): Promise<InsertSummary> {
    if (this.#invalid) throw this.#invalid;
    const t0 = performance.now();
    let bytes = 0;
    let allSent = false;
    const counted = Readable.from((async function* () {
      for await (const piece of body) {
        for (const b of Array.isArray(piece) ? piece : [piece as Buffer | Uint8Array]) {
          bytes += b.length;
          opts.onProgress?.(bytes);
          yield b;
        }
      }
      allSent = true;
    })(), { objectMode: false });
    try {
      await this.#client.exec({
        query: `INSERT INTO ${table} FORMAT ${format}`,
        values: counted,
        abort_signal: opts.signal,
        clickhouse_settings: { ...(await this.features()).settings, ...opts.settings } as never,
      }).then((r) => { r.stream.resume(); return new Promise((res, rej) => { r.stream.on('end', res); r.stream.on('error', rej); }); });
    } catch (e) {
      const t = translateClickHouseError(e);
      // An insert that commits (no stage behind it), sent whole and then no answer: the server
      // may have stored it (as the embedded engine says when its cell goes after it had the rows).
      // Cut before its end, the server stores nothing of a body under one block (max_insert_block_size).
      if (opts.commits && allSent && mayHaveRun(t)) throw new InsertOutcomeUnknown(t);
      throw t;
    }
    return { bytes, elapsedMs: performance.now() - t0 };
  }

  async version(): Promise<string> {
    return (await this.features()).version;
  }

  async ping(): Promise<void> {
    if (this.#invalid) throw this.#invalid;
    const r = await this.#client.ping();
    if (!r.success) throw translateClickHouseError((r as { error: unknown }).error);
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}
