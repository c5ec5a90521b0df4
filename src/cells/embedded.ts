/**
 * The embedded engine: one child process per tenant running chdb on
 * `<data>/cells/<tenant>/`. Started on first use, health-checked, restarted
 * after a crash (requests in flight fail with a retryable 503, never hang),
 * stopped when idle.
 */
import { unnestEngineMessage } from '../query/engine-message.js';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EngineUnavailable, InsertOutcomeUnknown, QueryFailed, RoostError } from '../errors.js';
import type { Engine, InsertBody, InsertOptions, InsertSummary, QueryOptions, QueryStats, QueryStream } from './engine.js';
import { Frame, FrameReader, INSERT_WINDOW, MAX_INSERT_FRAME, WINDOW, encodeFrame, encodeU32, writeFrame } from './protocol.js';
import type { Logger } from '../log/logger.js';

const here = path.dirname(fileURLToPath(import.meta.url));


/**
 * Errors of the cell's own file work (an insert's spool) that are the server's disk refusing it,
 * not the engine's answer: a 503 to retry, said as such (a full disk is a 507, see QueryFailed).
 */
const CELL_FILE_REFUSALS: ReadonlySet<string> = new Set(['EROFS', 'EACCES', 'EPERM', 'EMFILE', 'ENFILE', 'EIO', 'ENOTDIR']);
/** How long a cancelled query may take to stop before its cell is restarted. */
const CANCEL_GRACE_MS = Number(process.env.ROOST_CELL_CANCEL_GRACE_MS || 1_000);
/** How often a cancelled query left running (nothing waiting for the engine) is looked at again. */
const CANCEL_RECHECK_MS = 200;
/**
 * The engine enforces the time limit itself (max_execution_time) and reports
 * QUERY_TIMEOUT; the server's own timer is the backstop, a little later.
 */
const TIMEOUT_SLACK_MS = 1_000;

/** The compiled cell program: beside this file in dist/, or dist/ seen from src/ (tests). */
function cellEntry(): string {
  const beside = path.join(here, 'cell-main.js');
  if (fs.existsSync(beside)) return beside;
  const fromSrc = path.resolve(here, '../../dist/src/cells/cell-main.js');
  if (fs.existsSync(fromSrc)) return fromSrc;
  throw new Error(`cell program not built (looked for ${beside} and ${fromSrc}): run "npm run build:ts"`);
}


export interface EmbeddedCellOptions {
  tenant: string;
  /** The cell's directory, `<data>/cells/<tenant>`. */
  dir: string;
  /** Where the cell's BACKUP/RESTORE may read and write (`<data>/backups/<tenant>`); none: backups refused. */
  backupsDir?: string;
  idleMs: number;
  healthMs: number;
  log: Logger;
  onStart?: () => void;
  onCrash?: () => void;
  onStop?: () => void;
}

interface Pending {
  onData(b: Buffer): void;
  onEnd(stats: QueryStats): void;
  onError(e: Error): void;
  onInsertCredit?(n: number): void;
  /**
   * The query runs in the engine now (Frame.Started); `shared`: it is the oldest of an engine
   * session's small reads, and the session may hold a second one that runs first.
   */
  onStarted?(shared: boolean): void;
}

/** One running cell process and its socket. */
class CellProcess {
  readonly child: ChildProcess;
  readonly sock: net.Socket;
  readonly ready: Promise<string>;
  readonly pending = new Map<number, Pending>();
  #reader = new FrameReader();
  #nextId = 1;
  #pongWaiters: Array<(info: { version: string; waiting?: number }) => void> = [];
  exited = false;
  /** It answered its first ping (onStart ran for it): only then does its stop count in cells_running. */
  started = false;
  version = '';
  /** Its health checks (each process its own: a replaced one's outlived it and logged failures). */
  healthTimer: NodeJS.Timeout | undefined;
  /** The end of what it wrote to stderr (passed on to the server's stderr as it comes): why a start failed. */
  stderrTail = '';
  /** Engine sessions the cell had open at its last health check (see query_parallelism). */
  sessions = 1;

  constructor(dir: string, backupsDir: string | undefined, onExit: (proc: CellProcess, code: number | null, signal: NodeJS.Signals | null) => void) {
    // Engine calls wait inside chdb on libuv's pool (queries queued behind one another,
    // INSERT statements) beside the spool's file writes: more than the default 4 threads.
    // Each engine session holds up to two calls (cell-main's QUERY_DEPTH) and a cell opens up to
    // 16 (query_parallelism): 8 + 2 × 16. With 8, at query_parallelism 5 and more a query told
    // to the server as started (its time limit counting) waited for a thread, timed out and
    // had its cell restarted (review).
    this.child = spawn(process.execPath, [cellEntry(), dir, ...(backupsDir ? [backupsDir] : [])], {
      stdio: ['ignore', 'inherit', 'pipe', 'pipe'], env: {
        ...process.env,
        UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '40',
        // The engine's time zone is UTC whatever the host's (as Tinybird's): the validator reads
        // zone-less date-times as UTC, and results must not change when the host's TZ does.
        TZ: 'UTC',
      },
    });
    this.sock = this.child.stdio[3] as net.Socket;
    this.child.stderr!.on('data', (b: Buffer) => {
      process.stderr.write(b);
      this.stderrTail = (this.stderrTail + b.toString('utf8')).slice(-2048);
    });
    let resolveReady!: (v: string) => void;
    let rejectReady!: (e: Error) => void;
    this.ready = new Promise((res, rej) => { resolveReady = res; rejectReady = rej; });
    this.ready.catch(() => {});
    this.#pongWaiters.push((info) => resolveReady(info.version));
    this.sock.on('data', (chunk: Buffer) => this.#reader.push(chunk, (t, id, p) => this.#onFrame(t, id, p)));
    this.sock.on('error', () => {});
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      rejectReady(new EngineUnavailable(`cell process exited during start (code ${code}, signal ${signal})`));
      // Exit code 75: the cell recycled itself because a cancelled query would not stop.
      // Requests queued behind it never started, so they may be sent again.
      for (const c of this.cancelling.values()) clearTimeout(c.timer);
      this.cancelling.clear();
      // Stopped because its tenant was deleted: the requests it was serving say so (a backup job of
      // the tenant said "retry it", for a tenant no longer there).
      const err = this.exitReason ?? new EngineUnavailable('the tenant\'s engine cell stopped while serving this request; retry it', { details: this.recycling ? { recycled: true } : {} });
      for (const p of this.pending.values()) p.onError(err);
      this.pending.clear();
      onExit(this, code, signal);
    });
  }

  #onFrame(type: Frame, id: number, payload: Buffer): void {
    if (type === Frame.Pong) {
      const info = JSON.parse(payload.toString('utf8')) as { version: string; sessions?: number; waiting?: number };
      this.version = info.version;
      if (info.sessions !== undefined) this.sessions = info.sessions;
      const w = this.#pongWaiters.shift();
      w?.(info);
      return;
    }
    const cancelled = this.cancelling.get(id);
    if (cancelled && (type === Frame.End || type === Frame.Error)) {
      clearTimeout(cancelled.timer);
      this.cancelling.delete(id);
    }
    if (cancelled && type === Frame.Started) cancelled.startedLate = true;
    const p = this.pending.get(id);
    if (!p) return;
    switch (type) {
      case Frame.Data: p.onData(payload); break;
      case Frame.End: this.pending.delete(id); p.onEnd(JSON.parse(payload.toString('utf8'))); break;
      case Frame.Error: {
        this.pending.delete(id);
        const e = JSON.parse(payload.toString('utf8')) as { message: string; code?: string; clickhouseCode?: number };
        p.onError(e.code === 'CANCELLED' || e.code === 'CHDB_ABORT'
          ? new RoostError('CLIENT_CLOSED', 'query cancelled')
          : e.code === 'ENGINE_DISK_FLOOR'
            ? new RoostError('INSUFFICIENT_STORAGE', `the tenant's engine has less free disk than its definitions need (ROOST_ENGINE_MIN_FREE_MB): this request was refused before it reached the engine, and nothing of it was done; retry once the operator has freed space`, { retryable: true, headers: { 'Retry-After': '30' } })
          : e.code === 'ENOSPC' || e.code === 'EDQUOT' || e.code === 'EFBIG'
            ? new RoostError('INSUFFICIENT_STORAGE', `the tenant's engine could not write its own files on the server (${e.code}: the disk is full): nothing of this request reached the engine; retry once the operator has freed space`, { retryable: true, headers: { 'Retry-After': '30' } })
          : e.code && CELL_FILE_REFUSALS.has(e.code)
            ? new RoostError('ENGINE_UNAVAILABLE', `the tenant's engine could not write its own files on the server (${e.code}: read-only, not permitted, or out of file descriptors), so this request did not reach the engine: nothing of it was stored or changed. Retry later; the operator must look at the server's data directory`, { retryable: true, headers: { 'Retry-After': '10' } })
            : new QueryFailed(unnestEngineMessage(e.message), e.clickhouseCode));
        break;
      }
      case Frame.InsertCredit: p.onInsertCredit?.(payload.readUInt32LE(0)); break;
      case Frame.Started: p.onStarted?.(payload.length > 0); break;
      default: break;
    }
  }

  id(): number {
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xfffffff0 ? 1 : this.#nextId + 1;
    return id;
  }

  /**
   * Sends a frame; false only when the cell is gone. (A full socket buffer is not
   * an error: data frames are bounded by credits, control frames are small.)
   */
  send(type: Frame, id: number, payload?: Buffer | readonly Buffer[] | string): boolean {
    if (this.exited || this.sock.destroyed) return false;
    // Data frames (up to 1 MiB of an insert) go out as header + payload, not copied into one buffer.
    if (Buffer.isBuffer(payload) || Array.isArray(payload)) writeFrame(this.sock, type, id, payload as Buffer | readonly Buffer[]);
    else this.sock.write(encodeFrame(type, id, payload as string | undefined));
    return true;
  }

  /**
   * Requests cancelled but not yet seen to end, with their kill timers, and whether the cell told
   * them running after they were cancelled (`startedLate`; their pending entry is gone by then). A
   * client that left at once (the query sent and cancelled in one go, when its connection closed
   * before the engine call was made) had its query started by the cell a moment later, and the
   * restart that stopped it was charged to nobody.
   */
  readonly cancelling = new Map<number, { timer: NodeJS.Timeout | undefined; startedLate: boolean }>();
  /** Set when the server killed the cell to stop a query that would not stop. */
  recycling = false;
  /** Why the process ends, when not a failure: the error its requests in flight get. */
  exitReason: Error | undefined;

  /**
   * Cancels a request. chdb stops a query only between result chunks (and a buffered call not
   * at all); if the cell has not reported the request's end within `graceMs`, the cell is killed
   * and the requests queued behind it are sent to a fresh cell. With `untilMs` (when the engine's
   * own time limit stops the query: a client that left, or the request's deadline), a query the
   * engine still runs is left running while nothing waits for the engine (the cell says so when
   * asked), and the cell is killed only once something does, or at `untilMs`: a restart fails the
   * tenant's calls running beside the query (503), and a dashboard that aborts stale fetches
   * restarted its tenant's engine and got its credential refused (the abandon budget).
   * `onKill`: called when the cell is killed for the query; `startedLate`: the cell told it was
   * running only after it was cancelled.
   */
  cancel(id: number, graceMs: number, onKill?: (startedLate: boolean) => void, untilMs?: number): void {
    if (!this.send(Frame.Cancel, id)) return;
    if (this.cancelling.has(id)) return;
    const c: { startedLate: boolean; timer: NodeJS.Timeout | undefined } = { startedLate: false, timer: undefined };
    /** `charged`: false at `untilMs` (the engine did not stop the query at its own limit, which the client's staying would not have changed). */
    const kill = (charged = true) => {
      this.cancelling.delete(id);
      // Killed already by another cancelled query's timer (due at the same moment, before the
      // exit event): one restart, charged once.
      if (this.exited || this.recycling) return;
      this.recycling = true;
      if (charged) { try { onKill?.(c.startedLate); } catch { /* the kill goes on */ } }
      this.child.kill('SIGKILL');
    };
    const arm = (ms: number) => { c.timer = setTimeout(check, ms); c.timer.unref(); };
    const check = () => {
      c.timer = undefined;
      // Its end seen meanwhile (End or Error), or the cell gone.
      if (this.cancelling.get(id) !== c || this.exited || this.recycling) return;
      if (untilMs === undefined) return kill();
      if (Date.now() >= untilMs) return kill(false);
      this.probe(Math.max(graceMs, 1_000)).then((info) => {
        if (this.cancelling.get(id) !== c || this.exited || this.recycling) return;
        if (info.waiting === undefined || info.waiting > 0) return kill();
        if (Date.now() >= untilMs) return kill(false);
        arm(Math.min(CANCEL_RECHECK_MS, Math.max(1, untilMs - Date.now())));
      }, () => {
        if (this.cancelling.get(id) === c) kill();
      });
    };
    this.cancelling.set(id, c);
    arm(graceMs);
  }

  ping(timeoutMs: number): Promise<string> {
    return this.probe(timeoutMs).then((info) => info.version);
  }

  /** A ping's whole answer: the engine's version, and how many calls wait for the engine. */
  probe(timeoutMs: number): Promise<{ version: string; waiting?: number }> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const i = this.#pongWaiters.indexOf(done);
        if (i >= 0) this.#pongWaiters.splice(i, 1);
        reject(new EngineUnavailable(`cell did not answer a health check within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (info: { version: string; waiting?: number }) => { clearTimeout(t); resolve(info); };
      this.#pongWaiters.push(done);
      if (!this.send(Frame.Ping, 0)) { clearTimeout(t); reject(new EngineUnavailable('cell is not running')); }
    });
  }
}

/** Why a cell did not start, from the end of its stderr: the engine's own error and the cell's line. */
function startFailure(tail: string): string {
  const lines = tail.split('\n').map((l) => l.trim()).filter(Boolean);
  const said = lines.filter((l) => /^Code: \d+\./.test(l) || l.startsWith('cell: '));
  return (said.length ? said : lines).slice(-4).join('\n');
}

export class EmbeddedCell implements Engine {
  readonly kind = 'embedded' as const;
  #opts: EmbeddedCellOptions;
  #proc: CellProcess | undefined;
  #starting: Promise<CellProcess> | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #inflight = 0;
  #closed: false | 'shutdown' | 'deleted' = false;
  /** Starts that failed in a row, and when the next may be tried (a cell that cannot start was started again for every request, a dozen times in 10 s). */
  #startFailures = 0;
  #nextStartAt = 0;

  constructor(opts: EmbeddedCellOptions) {
    this.#opts = opts;
  }

  get running(): boolean { return !!this.#proc && !this.#proc.exited; }
  get pid(): number | undefined { return this.#proc?.child.pid; }
  /** Engine sessions the running cell had open at its last health check (undefined when not running). */
  get engineSessions(): number | undefined { return this.running ? this.#proc!.sessions : undefined; }
  get dir(): string { return this.#opts.dir; }

  async #get(): Promise<CellProcess> {
    if (this.#closed === 'deleted') throw new RoostError('UNKNOWN_TENANT', `tenant "${this.#opts.tenant}" was deleted`);
    if (this.#closed) throw new RoostError('SHUTTING_DOWN', 'the server is shutting down', { retryable: true });
    if (this.#proc && !this.#proc.exited) return this.#proc;
    if (!this.#starting && Date.now() < this.#nextStartAt) {
      const wait = Math.max(1, Math.ceil((this.#nextStartAt - Date.now()) / 1000));
      throw new EngineUnavailable(`the tenant's engine failed to start ${this.#startFailures} time${this.#startFailures === 1 ? '' : 's'} in a row; it is tried again in ${wait} s (the server's log says why)`, { headers: { 'Retry-After': String(wait) } });
    }
    if (!this.#starting) {
      this.#starting = this.#start().finally(() => { this.#starting = undefined; });
    }
    return this.#starting;
  }

  async #start(): Promise<CellProcess> {
    fs.mkdirSync(this.#opts.dir, { recursive: true, mode: 0o700 });
    if (this.#opts.backupsDir) fs.mkdirSync(this.#opts.backupsDir, { recursive: true, mode: 0o700 });
    const proc = new CellProcess(this.#opts.dir, this.#opts.backupsDir, (p, code, signal) => this.#onExit(p, code, signal));
    this.#proc = proc;
    const t = setTimeout(() => proc.child.kill('SIGKILL'), 60_000);
    try {
      await proc.ready;
    } catch (e) {
      // A cell that ended by itself (its engine refused to start) is tried again after 1, 2, 4 …
      // 30 s, not at every request; the reason (the engine's own words, on the cell's stderr)
      // goes to the log. One killed while starting is not a cell that cannot start.
      if (proc.child.signalCode !== null) throw e;
      this.#startFailures++;
      const backoff = Math.min(30_000, 1000 * 2 ** (this.#startFailures - 1));
      this.#nextStartAt = Date.now() + backoff;
      this.#opts.log.error('cell failed to start', { tenant: this.#opts.tenant, pid: proc.child.pid, failures: this.#startFailures, next_try_ms: backoff, reason: startFailure(proc.stderrTail) });
      throw e;
    } finally {
      clearTimeout(t);
    }
    this.#startFailures = 0;
    this.#nextStartAt = 0;
    this.#opts.log.info('cell started', { tenant: this.#opts.tenant, pid: proc.child.pid, engine_version: proc.version });
    proc.started = true;
    this.#opts.onStart?.();
    proc.healthTimer = setInterval(() => this.#healthCheck(proc), this.#opts.healthMs);
    proc.healthTimer.unref();
    this.#touch();
    return proc;
  }

  #healthCheck(proc: CellProcess): void {
    if (proc.exited) return;
    proc.ping(Math.max(this.#opts.healthMs * 2, 10_000)).catch((e) => {
      if (proc.exited) return;  // ended meanwhile (and maybe replaced): nothing to restart
      this.#opts.log.error('cell failed its health check; restarting it', { tenant: this.#opts.tenant, err: e });
      proc.child.kill('SIGKILL');
    });
  }

  #onExit(proc: CellProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#proc === proc) this.#proc = undefined;
    clearInterval(proc.healthTimer);
    const expected = (proc as { stopping?: boolean }).stopping === true;
    if (proc.recycling) {
      this.#opts.log.warn('cell restarted: a cancelled query did not stop in time', { tenant: this.#opts.tenant, pid: proc.child.pid });
    } else if (!expected) {
      this.#opts.log.warn('cell process died', { tenant: this.#opts.tenant, pid: proc.child.pid, code, signal });
      this.#opts.onCrash?.();
    }
    if (proc.started) this.#opts.onStop?.();
  }

  #touch(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.#inflight === 0) void this.stop();
      else this.#touch();
    }, this.#opts.idleMs);
    this.#idleTimer.unref();
  }

  #begin(): void { this.#inflight++; clearTimeout(this.#idleTimer); }
  #finish(): void { this.#inflight--; if (this.#inflight === 0) this.#touch(); }

  async query(sql: string, opts: QueryOptions): Promise<QueryStream> {
    return this.#retryRecycled(() => this.#queryOnce(sql, opts));
  }

  /** Runs `fn` again (once) when the cell recycled itself before the request started. */
  async #retryRecycled<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof EngineUnavailable && e.details.recycled) return fn();
      throw e;
    }
  }

  async #queryOnce(sql: string, opts: QueryOptions): Promise<QueryStream> {
    const proc = await this.#get();
    this.#begin();
    const id = proc.id();
    const queue: Buffer[] = [];
    let ended = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    let resolveDone!: (s: QueryStats) => void;
    let rejectDone!: (e: Error) => void;
    const done = new Promise<QueryStats>((res, rej) => { resolveDone = res; rejectDone = rej; });
    done.catch(() => {});
    let firstResolve!: () => void;
    const first = new Promise<void>((r) => { firstResolve = r; });
    let finished = false;
    const finish = () => { if (!finished) { finished = true; this.#finish(); cleanup(); } };

    // The cell told this query started in the engine (Frame.Started): it is the one running.
    let running = false;
    /** When it started (its latest run), and whether as a small read sharing its session: when the engine's time limit stops it. */
    let startedAt: number | undefined;
    let startedShared = false;
    const cancel = (reason: Error) => {
      if (ended || failure) return;
      // Left by its client (or cut by the request's deadline), a query the engine runs stops at
      // its own time limit: it may run on till then while nothing waits behind it (cancel()). At
      // its limit (QUERY_TIMEOUT, the engine did not stop it), or without one, the grace only.
      const untilMs = opts.timeoutMs && !(reason instanceof RoostError && reason.code === 'QUERY_TIMEOUT')
        ? (startedAt ?? Date.now()) + (startedShared ? 2 : 1) * opts.timeoutMs + TIMEOUT_SLACK_MS
        : undefined;
      // A client that left is charged with the restart its query may cost, only when it is the
      // query the engine runs (a query waiting behind another's was charged for the running
      // one's restart: any credential keeping the engine busy got the others refused); a time
      // limit is not charged.
      const charge = reason instanceof RoostError && reason.code === 'CLIENT_CLOSED' && opts.onAbandonRestart;
      proc.cancel(id, CANCEL_GRACE_MS, charge ? (startedLate) => { if (running || startedLate) charge(); } : undefined, untilMs);
      failure = reason;
      proc.pending.delete(id);
      rejectDone(reason);
      firstResolve();
      wake?.();
      finish();
    };
    const onAbort = () => cancel(new RoostError('CLIENT_CLOSED', 'the client went away; query cancelled'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // The backstop counts from when the engine starts the query (Frame.Started, again for each
    // run of it), as max_execution_time does: waiting behind the tenant's other queries is not
    // running. A cell that never starts it is the health check's and the request timeout's.
    // A small read told as started (`shared`) gets twice the limit (and the slack): it is its
    // engine session's oldest, but the session may hold a second one that chdb takes first (it
    // does not always run a session's calls in the order they were handed in), so it can wait up
    // to that one's limit before it runs; at once the limit, such reads were cut and their cell
    // restarted (seen with 16 sessions of two 2 s reads under a 2.5 s limit). A stream or
    // statement is alone in its session: the limit. The engine's own max_execution_time stops a
    // query at its limit; this is for one that does not stop.
    let timer: NodeJS.Timeout | undefined;
    const started = (shared: boolean) => {
      running = true;
      startedAt = Date.now();
      startedShared = shared;
      if (!opts.timeoutMs || ended || failure) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        cancel(new RoostError('QUERY_TIMEOUT', `query exceeded its time limit of ${opts.timeoutMs} ms`));
      }, (shared ? 2 : 1) * opts.timeoutMs + TIMEOUT_SLACK_MS);
    };
    const cleanup = () => { clearTimeout(timer); opts.signal?.removeEventListener('abort', onAbort); };

    proc.pending.set(id, {
      onData: (b) => { queue.push(b); firstResolve(); wake?.(); },
      onEnd: (s) => { ended = true; resolveDone(s); firstResolve(); wake?.(); finish(); },
      onError: (e) => { failure = e; rejectDone(e); firstResolve(); wake?.(); finish(); },
      onStarted: started,
    });
    const settings: Record<string, string | number> = {};
    // In seconds, with their fraction: a limit of 300 ms stopped queries after a whole second.
    if (opts.timeoutMs) settings.max_execution_time = Math.max(0.001, opts.timeoutMs / 1000);
    if (opts.settings) for (const k of Object.keys(opts.settings)) settings[k] = opts.settings[k]!;
    if (!proc.send(Frame.Query, id, JSON.stringify({ sql, format: opts.format, settings, ...(opts.parallel ? { parallel: opts.parallel } : {}) }))) {
      proc.pending.delete(id);
      finish();
      throw new EngineUnavailable('the tenant\'s engine cell is not running; retry');
    }
    if (opts.signal?.aborted) onAbort();
    await first;
    if (failure && queue.length === 0) throw failure;

    let consumed = 0;
    const iterator = async function* (): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          if (queue.length) {
            const b = queue.shift()!;
            consumed++;
            // Grant credit as the consumer takes chunks, keeping WINDOW in flight.
            if (!ended && !failure) proc.send(Frame.Credit, id, encodeU32(1));
            yield b;
            continue;
          }
          if (failure) throw failure;
          if (ended) return;
          await new Promise<void>((r) => { wake = r; });
          wake = undefined;
        }
      } finally {
        if (!ended && !failure) cancel(new RoostError('CLIENT_CLOSED', 'result no longer read; query cancelled'));
      }
    };
    void WINDOW;
    return {
      [Symbol.asyncIterator]: iterator,
      done,
      cancel: () => cancel(new RoostError('CLIENT_CLOSED', 'query cancelled')),
      // A small result comes as its data and End frames in one read: no credit to grant, nothing to wait for.
      takeAll: () => {
        if (!ended || failure || consumed > 0) return undefined;
        consumed = queue.length;
        return queue.splice(0);
      },
    };
  }

  async exec(sql: string, opts: Partial<QueryOptions> = {}): Promise<Buffer> {
    return this.#retryRecycled(() => this.#execOnce(sql, opts));
  }

  async #execOnce(sql: string, opts: Partial<QueryOptions>): Promise<Buffer> {
    const proc = await this.#get();
    this.#begin();
    const id = proc.id();
    const parts: Buffer[] = [];
    try {
      return await new Promise<Buffer>((resolve, reject) => {
        const timer = opts.timeoutMs ? setTimeout(() => {
          proc.cancel(id, CANCEL_GRACE_MS);
          proc.pending.delete(id);
          reject(new RoostError('QUERY_TIMEOUT', `statement exceeded its time limit of ${opts.timeoutMs} ms`));
        }, opts.timeoutMs) : undefined;
        proc.pending.set(id, {
          onData: (b) => parts.push(b),
          onEnd: () => { clearTimeout(timer); resolve(Buffer.concat(parts)); },
          onError: (e) => { clearTimeout(timer); reject(e); },
        });
        if (!proc.send(Frame.Exec, id, JSON.stringify({ sql, format: opts.format ?? 'TSV', settings: opts.settings, ...(opts.background ? { background: true } : {}) }))) {
          proc.pending.delete(id);
          clearTimeout(timer);
          reject(new EngineUnavailable('the tenant\'s engine cell is not running; retry'));
        }
      });
    } finally {
      this.#finish();
    }
  }

  async insert(table: string, format: string, body: InsertBody, opts: InsertOptions = {}): Promise<InsertSummary> {
    const proc = await this.#get();
    this.#begin();
    const id = proc.id();
    const t0 = performance.now();
    let credit = INSERT_WINDOW;
    let creditWake: (() => void) | undefined;
    let failure: Error | undefined;
    let sent = 0;
    const result = new Promise<InsertSummary>((resolve, reject) => {
      proc.pending.set(id, {
        onData: () => {},
        onEnd: (s) => resolve({ bytes: s.bytes, elapsedMs: performance.now() - t0 }),
        onError: (e) => { failure = e; reject(e); creditWake?.(); },
        onInsertCredit: (n) => { credit += n; creditWake?.(); },
      });
    });
    result.catch(() => {});
    const onAbort = () => {
      failure ??= new RoostError('CLIENT_CLOSED', 'insert cancelled');
      proc.send(Frame.Cancel, id);
      creditWake?.();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (!proc.send(Frame.InsertBegin, id, JSON.stringify({ table, format, settings: opts.settings, split: opts.splittable === true }))) {
        throw new EngineUnavailable('the tenant\'s engine cell is not running; retry');
      }
      // Frames of up to MAX_INSERT_FRAME bytes; the parts of a piece (a Native block's
      // column buffers) share frames, so the credit window counts about as many bytes
      // as with one buffer per piece.
      let frame: Buffer[] = [];
      let frameBytes = 0;
      const flush = async () => {
        while (credit <= 0 && !failure) await new Promise<void>((r) => { creditWake = r; });
        creditWake = undefined;
        if (failure) throw failure;
        credit--;
        sent += frameBytes;
        proc.send(Frame.InsertData, id, frame.length === 1 ? frame[0]! : frame);
        opts.onProgress?.(sent);
        frame = [];
        frameBytes = 0;
      };
      for await (const piece of body) {
        for (const p of Array.isArray(piece) ? piece : [piece as Buffer | Uint8Array]) {
          let buf = Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
          while (buf.length > 0) {
            const n = Math.min(buf.length, MAX_INSERT_FRAME - frameBytes);
            frame.push(buf.subarray(0, n));
            frameBytes += n;
            buf = buf.subarray(n);
            if (frameBytes === MAX_INSERT_FRAME) await flush();
          }
        }
        if (frameBytes > 0) await flush();
        if (opts.splittable) proc.send(Frame.InsertMark, id);
      }
      if (failure) throw failure;
      proc.send(Frame.InsertEnd, id);
      try {
        return await result;
      } catch (e) {
        // The cell had the whole body and may have committed it before it stopped.
        if (opts.commits && e instanceof EngineUnavailable) throw new InsertOutcomeUnknown(e);
        throw e;
      }
    } catch (e) {
      if (!failure) proc.send(Frame.Cancel, id);
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      this.#finish();
    }
  }

  async version(): Promise<string> {
    const proc = await this.#get();
    return proc.version;
  }

  async ping(): Promise<void> {
    const proc = await this.#get();
    await proc.ping(10_000);
  }

  /** Stops the process (idle or shutdown); the next request starts it again. */
  async stop(): Promise<void> {
    clearTimeout(this.#idleTimer);
    const proc = this.#proc;
    clearInterval(proc?.healthTimer);
    if (!proc || proc.exited) return;
    (proc as { stopping?: boolean }).stopping = true;
    const exited = new Promise<void>((r) => proc.child.once('exit', () => r()));
    proc.child.kill('SIGTERM');
    const t = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
    this.#opts.log.info('cell stopped', { tenant: this.#opts.tenant });
  }

  /** Stops the cell for good: the server shuts down, or (`deleted`) its tenant was deleted. */
  async close(reason: 'shutdown' | 'deleted' = 'shutdown'): Promise<void> {
    this.#closed = reason;
    if (reason === 'deleted' && this.#proc) this.#proc.exitReason = new RoostError('UNKNOWN_TENANT', `tenant "${this.#opts.tenant}" was deleted`);
    await this.stop();
  }
}
