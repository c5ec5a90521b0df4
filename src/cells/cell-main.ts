/**
 * A cell process: one tenant's embedded ClickHouse (chdb) on its own data
 * directory, serving the parent over the socket pair on fd 3. chdb runs one
 * session's calls one after another; sessions on the same directory share the
 * engine and run in parallel. The cell has one session (lane 0, `main`) for
 * everything, and opens more (lanes) for small reads as the tenant's
 * query_parallelism asks. Jobs start in arrival order. Small read queries go to
 * the least loaded lane, up to QUERY_DEPTH per session, so the next one is
 * already waiting inside the engine when the current one ends (no round trip
 * through this event loop between them). An insert spools its body as it arrives
 * and only its INSERT statements take turns in the main session, so a slow upload
 * does not hold up the tenant's queries. Statements run alone (every lane empty);
 * a stream (a result over the buffered cap) runs in a read lane of its own when
 * the tenant has one, else alone.
 *
 * Engine hazard guarded here: after a failed query chdb may hand the rows the
 * failed query had produced to the *next* query of the same session. Every failure
 * is therefore followed by a fence query in that session whose exact answer is
 * checked; the session is reopened if the fence does not come back clean. A query
 * that was inside the session when a failure was seen may have been that next
 * query: its answer is thrown away and it runs again after the fence. chdb's
 * completions arrive out of the order it ran the calls, so an answer is only sent
 * once every call that was in its session beside it has come back (`held`). See
 * docs/decisions.md.
 */
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Session, version as chdbVersion, type ChdbResult } from 'chdb';
import { Frame, FrameReader, WINDOW, encodeFrame, encodeU32, writeFrame } from './protocol.js';
import { quoteString, settingsClause } from './engine.js';
import { repairDeduplicationLogs } from './dedup-repair.js';
import { repairEmptyMetadata } from './metadata-repair.js';
import { DEFAULT_MAX_FILE_RESULT_BYTES, StreamAssembler, WHOLE_FILE_FORMATS } from './stream-assembly.js';

const dataDir = process.argv[2];
if (!dataDir) {
  process.stderr.write('usage: cell-main <data dir>\n');
  process.exit(2);
}

/** Optional: the only directory BACKUP/RESTORE ... File(...) may use (the tenant's `<data>/backups/<tenant>`). */
const backupsDir = process.argv[3];
const sessionOpts = backupsDir ? { connectionArgs: [`--backups.allowed_path=${backupsDir}`] } : undefined;

/**
 * The session's current database: an empty one. chdb's `default` is an overlay that includes a
 * Filesystem database, where any unqualified table name is a path the cell's process can read
 * (`/etc/passwd`, the server's operator token). The analyzer qualifies or refuses every table
 * name; this is the second wall, for a name it ever lets through bare (a WITH RECURSIVE body's
 * own name did, and an import's INSERT ... SELECT runs without readonly).
 */
const NO_DATABASE = '_roost_no_tables';
/**
 * How long a starting cell waits for another live process that still holds the engine's
 * directory (ClickHouse locks `<db>/status`, which names the holder's PID): the cell of a
 * server that was killed, still inside a statement. Such a cell ends itself at once when its
 * server goes (see shutdown), so the wait is short; without it the new cell failed to start
 * and the tenant answered 503 until the old statement ended.
 */
const ENGINE_LOCK_WAIT_MS = 30_000;

/**
 * A live process other than this one named by the engine directory's status file, that is a cell
 * of this directory. A PID is reused (a reboot, a container restart, wrapped PIDs: minutes on a
 * busy host), and a zombie answers signal 0: taken for the holder, such a process made the cell
 * skip the repairs below, and the engine dropped a retried flush of acknowledged events (a
 * review of this session). Where /proc can be read the process must have the status file open
 * (the engine's lock is on it); elsewhere a live PID is taken for the holder, as before.
 */
function engineHolder(dbDir: string): number | undefined {
  let text: string;
  try { text = fs.readFileSync(path.join(dbDir, 'status'), 'utf8'); } catch { return undefined; }
  const pid = Number(/^PID: (\d+)/m.exec(text)?.[1]);
  if (!pid || pid === process.pid) return undefined;
  if (fs.existsSync('/proc/self/fd')) {
    // The engine holds its directory by a lock on the status file, open for as long: a process
    // without it open holds nothing (a zombie has no open files).
    let fds: string[];
    try {
      // Another user's process is no cell of ours (they run as the server's user): a PID reused
      // by one made a cell skip its repairs where the server does not run as root (review).
      if (typeof process.getuid === 'function' && process.getuid() !== 0 && fs.statSync(`/proc/${pid}`).uid !== process.getuid()) return undefined;
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch (e) {
      // Not ours to read: taken for the holder, as before; gone: none.
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'EACCES' || code === 'EPERM' ? pid : undefined;
    }
    const status = path.join(dbDir, 'status');
    let real = status;
    try { real = fs.realpathSync(status); } catch { /* as named */ }
    for (const fd of fds) {
      try {
        const to = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (to === real || to === status) return pid;
      } catch { /* closed meanwhile */ }
    }
    return undefined;
  }
  try {
    process.kill(pid, 0);
    return pid;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

async function openEngine(): Promise<Session> {
  const dbDir = path.join(dataDir, 'db');
  const deadline = Date.now() + ENGINE_LOCK_WAIT_MS;
  let told = false;
  let repaired = false;
  let lockRetries = 0;
  for (;;) {
    // Once no other process holds the directory, and before the engine loads it: see dedup-repair.ts.
    if (!repaired && engineHolder(dbDir) === undefined) {
      repaired = true;
      try {
        const m = repairEmptyMetadata(dbDir, NO_DATABASE);
        for (const d of m.databases) process.stderr.write(`cell: the definition of database ${d.database} was empty (written on a full disk); written again as an Atomic database with ${d.linked ? 'the UUID of its directory' : 'a new UUID (nothing was made in it)'}\n`);
        for (const t of m.tables) process.stderr.write(`cell: the definition of table ${t.database}.${t.table} was empty (written on a full disk); moved aside as ${t.movedTo}: the table is gone for the engine${t.data ? `; its rows stay in ${t.data} (attach it again with the data source's definition: ATTACH TABLE … UUID '${path.basename(t.data)}' …)` : ''}\n`);
      } catch (e) {
        process.stderr.write(`cell: could not check the engine's definitions: ${String(e)}\n`);
      }
      try {
        const r = repairDeduplicationLogs(dbDir);
        for (const f of r.forgotten) process.stderr.write(`cell: forgot the deduplication record of part ${f.part} of table ${f.table}: the part is not on disk (a kill between the engine's record and its commit), so a retry of its insert is stored, not dropped as a duplicate\n`);
        for (const k of r.skipped) process.stderr.write(`cell: left the deduplication log of table ${k.table} as it is: ${k.reason}\n`);
      } catch (e) {
        process.stderr.write(`cell: could not check the deduplication logs: ${String(e)}\n`);
      }
    }
    try {
      return new Session(dbDir, sessionOpts);
    } catch (e) {
      const holder = engineHolder(dbDir);
      // Refused for the lock by a holder that has just let go (its status file closed between the
      // refusal and the look): tried again for up to 2 s, not given up (CI saw starts fail so).
      // Whatever the message: chdb's is only "Failed to create connection for path ...", the
      // engine's "Cannot lock file ... Another server instance" going to stderr, so a test of the
      // message let the refusal through (a 503 in CI with both lines in the server's stderr).
      if (holder === undefined && lockRetries++ < 20 && Date.now() <= deadline) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (holder === undefined || Date.now() > deadline) throw e;
      if (!told) {
        process.stderr.write(`cell: the engine directory ${dbDir} is still held by process ${holder}; waiting up to ${ENGINE_LOCK_WAIT_MS / 1000} s for it to exit\n`);
        told = true;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

let session: Session;
try {
  session = await openEngine();
} catch (e) {
  // One line for the server's log (it reads the engine's own "Code: …" line above this one).
  process.stderr.write(`cell: the engine could not open ${path.join(dataDir, 'db')}: ${(e as Error).message}\n`);
  process.exit(1);
}
// Only once the engine is ours: the spool's files are the engine holder's.
fs.mkdirSync(path.join(dataDir, 'spool'), { recursive: true, mode: 0o700 });
for (const f of fs.readdirSync(path.join(dataDir, 'spool'))) fs.rmSync(path.join(dataDir, 'spool', f), { force: true });
const sock = new net.Socket({ fd: 3, readable: true, writable: true });
const reader = new FrameReader();

/** A split point in an insert body (see Frame.InsertMark). */
const MARK = Buffer.alloc(0);

interface Job { id: number; type: Frame; body: Record<string, unknown> }
/** The body of a Query frame. */
type QueryBody = { sql: string; format: string; settings?: Record<string, string | number> };
interface Active {
  cancelled: boolean;
  abort: AbortController;
  credit: number;
  wake: (() => void) | undefined;
  /** The parent has its final answer (a cancelled query may still be inside the engine). */
  answered?: boolean;
  insert?: { fd: number; file: string; pending: Buffer[]; ended: boolean; bytes: number; wake: (() => void) | undefined };
}

const queue: Job[] = [];
const active = new Map<number, Active>();

/** Small read queries handed to one engine session at once (it runs them one after another). */
const QUERY_DEPTH = 2;

/**
 * One engine session (chdb connection) of the cell and what is inside it. chdb runs a
 * session's calls one after another; sessions on the same directory share the engine and
 * its data and run in parallel. Lane 0 (`main`) takes statements, inserts and small reads
 * (and streams when there is no other); the others, opened as the tenant's
 * `query_parallelism` asks (see laneTarget), take small reads and streams. The leftover hazard (see the head of this file)
 * is a session's own: measured with chdb 3.4, a session failing queries in a loop never
 * leaked into another session's answers (0 of 2,846), while its own next answers did
 * (487 of 572). So failures, fences and held answers are counted per lane.
 */
interface Lane {
  session: Session;
  /** Settings applied and current database set: it may take queries. */
  ready: boolean;
  /** Buffered queries inside this session now, oldest first. */
  inEngine: Map<number, Job>;
  /** Bumped whenever a call of this session fails: answers in it across a bump are not trusted. */
  failures: number;
  /** A failure was seen: nothing new starts in this session until it is empty and the fence has run. */
  fenceDue: boolean;
  fencing: boolean;
  /** A read lane running a stream (a result over the buffered cap): it takes nothing else meanwhile. */
  streaming: boolean;
  /** When the oldest read inside became the oldest (about when it started running). */
  headSince: number;
}
const newLane = (s: Session, ready: boolean): Lane => ({ session: s, ready, inEngine: new Map(), failures: 0, fenceDue: false, fencing: false, streaming: false, headSince: 0 });
/**
 * A read that has run this long is likely a long one: with other sessions to go to, no read is
 * queued behind it in its session (the next waits in the cell's queue for the first session
 * free). Chosen by count alone, every other short read went behind a long query (review).
 */
const LONG_HEAD_MS = 20;
const main = newLane(session, true);
const lanes: Lane[] = [main];
/**
 * Sessions the tenant's small reads may use at once: each Query frame says (`parallel`, the
 * tenant's query_parallelism); more are opened when reads wait, extra ones closed when idle.
 */
let laneTarget = 1;
/** Engine sessions a cell opens at most, whatever it is asked. */
const MAX_LANES = 16;
/** A lane being opened (one at a time). */
let opening = false;
/** When opening (or re-opening) a lane last failed: none is tried for LANE_RETRY_MS (the cell goes on with those it has). */
let laneOpenFailedAt = -Infinity;
const LANE_RETRY_MS = 30_000;
/** Whether another lane may be opened now. */
const mayOpenLane = (): boolean => lanes.length < laneTarget && !opening && !closing && performance.now() - laneOpenFailedAt >= LANE_RETRY_MS;
/** A statement, or a stream where there is no read lane, has the engine to itself (see pump). */
let exclusive = false;
/**
 * INSERT statements of inserts in progress, inside the engine now. An insert does not
 * hold the engine while its body arrives (a slow upload must not stop the tenant's
 * queries): only its INSERT statements take turns with the queries.
 */
const insertsInEngine = new Set<number>();
/** Those of insertsInEngine that write service rows (insertCall). */
const serviceInsertsInEngine = new Set<number>();
/** The tenant's service database (src/service/service-log.ts, serviceDb). */
const SERVICE_DB_PREFIX = 'roost_svc_';
let nextInsertCall = -1;
const insertWaiters: Array<() => void> = [];

/**
 * Buffered answers that came back clean but are not trusted yet. chdb's completions
 * do not arrive in the order it ran the calls: a failed call's error can come back
 * after the answer of the call that ran right after it (and so holds its leftover
 * output). An answer is therefore kept until the calls that were in the engine before
 * it went in have come back (they ran before it, so this costs only their late
 * completions), and sent only if no failure was seen since it went in; else it runs
 * again after the fence. Calls that went in after it normally run after it; one could
 * only have run first if the engine took it before this one, which was already waiting:
 * those are waited for at most SUCCESSOR_WAIT_MS, so a quick answer does not wait for
 * a slow query behind it.
 */
interface Held {
  job: Job; st: Active; seen: number; elapsedMs: number; out: Uint8Array;
  waitFor: Set<number>; timer?: NodeJS.Timeout; lane: Lane;
}
const held = new Map<number, Held>();
/** How long an answer waits for calls handed to the engine after it (see `held`). */
const SUCCESSOR_WAIT_MS = 20;
/** Calls in the engine when each buffered query went in (its predecessors). */
const before = new Map<number, Set<number>>();

/** Calls inside a lane's session: its buffered queries, and for the main lane the INSERT statements. */
function callsInEngine(lane: Lane): Set<number> {
  return lane === main ? new Set([...lane.inEngine.keys(), ...insertsInEngine]) : new Set(lane.inEngine.keys());
}
/** Nothing of any kind inside any session. */
/**
 * Calls that wait for the engine: jobs not started, inserts held back, and calls inside a session
 * behind its first (chdb runs a session's calls one after another). The parent asks before it lets
 * a cancelled query run on to its own time limit: while nothing waits, stopping it by restarting
 * the cell would only fail the calls running beside it. Inserts of service rows, and the service
 * tables' own statements, are not counted: every request writes some (the cancelled request's own
 * pipe_stats_rt row among them, and the tables' creation with a tenant's first rows), and the
 * server's journal holds them until they are in.
 */
function waitingCalls(): number {
  // (A statement of the server's own, `background`, is not counted itself; what queues behind it is.)
  let n = insertWaiters.length;
  for (const job of queue) if (job.body.background !== true) n++;
  for (const lane of lanes) n += Math.max(0, lane.inEngine.size + (lane === main ? insertsInEngine.size - serviceInsertsInEngine.size : 0) - 1);
  return n;
}
const engineEmpty = (): boolean => insertsInEngine.size === 0 && lanes.every((l) => l.inEngine.size === 0 && !l.fencing && !l.streaming);

/** Buffered queries told to the parent as running (Frame.Started) in their current engine call. */
const runningTold = new Set<number>();

/**
 * The engine runs one call at a time: the oldest buffered query in it runs once no INSERT
 * statement is ahead of it. The parent's time-limit backstop counts from this Started frame,
 * so time spent waiting behind the tenant's other queries is not counted as running.
 */
function tellHeadRunning(lane: Lane): void {
  if (lane === main && insertsInEngine.size) return;
  const head = lane.inEngine.keys().next().value;
  if (head === undefined || runningTold.has(head)) return;
  runningTold.add(head);
  // "shared": the session may hold a second call that chdb runs first (see the parent's backstop).
  send(Frame.Started, head, 'shared');
}


function send(type: Frame, id: number, payload?: Buffer | string): boolean {
  return sock.write(encodeFrame(type, id, payload));
}

function sendError(id: number, e: unknown): void {
  const err = e as { message?: string; code?: string; clickhouseCode?: number };
  const msg = String(err.message ?? e);
  const m = /Code: (\d+)\./.exec(msg);
  send(Frame.Error, id, JSON.stringify({ message: msg, code: err.code, clickhouseCode: err.clickhouseCode ?? (m ? Number(m[1]) : undefined) }));
}

/** After a failure in a lane: make sure no leftover output of the failed query can reach its next one. */
async function fence(lane: Lane): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const nonce = crypto.randomBytes(8).toString('hex');
    try {
      const r = await lane.session.queryAsync(`SELECT '${nonce}'`, { format: 'TSV' });
      if (r.text() === `${nonce}\n`) return;
    } catch { /* try again */ }
  }
  // Still not clean: a new session on the same directory. (The main session's reopen waits for
  // every engine call of the process to end, as it did when it was the only session; a read
  // lane's does not: a session on the same directory may open while another's close is deferred.)
  lane.ready = false;
  lane.session.close();
  if (lane === main) {
    const { drainPending } = await import('chdb');
    await drainPending();
  }
  try {
    lane.session = await setUpSession(openSession());
    lane.ready = true;
  } catch (e) {
    if (lane !== main) {
      // A read lane: dropped, the others go on.
      process.stderr.write(`cell: a read session could not be set up again, going on without it: ${String(e)}\n`);
      lanes.splice(lanes.indexOf(lane), 1);
      laneOpenFailedAt = performance.now();
      return;
    }
    // A session without its settings (the result cap, the empty current database) must take no
    // query: the cell ends, and the server starts it again.
    process.stderr.write(`cell: the engine session could not be set up again: ${String(e)}\n`);
    shutdown(1);
  }
}

/** Another session on the cell's engine directory (the engine is the process's already). */
const openSession = (): Session => new Session(path.join(dataDir!, 'db'), sessionOpts);

/** A session's settings (the result cap, parallel formatting off) and its empty current database. */
async function setUpSession(s: Session): Promise<Session> {
  try {
    await s.queryAsync(SESSION_SETTINGS);
    await useNoDatabase(s);
    return s;
  } catch (e) {
    try { s.close(); } catch { /* closed */ }
    throw e;
  }
}

/** Opens one more read lane (in the background; pump runs again once it is ready). */
function openLane(): void {
  opening = true;
  let s: Session;
  try {
    s = openSession();
  } catch (e) {
    opening = false;
    laneOpenFailedAt = performance.now();
    process.stderr.write(`cell: could not open another engine session, reads go on in ${lanes.length}: ${String(e)}\n`);
    return;
  }
  setUpSession(s).then((ready) => {
    if (closing) { try { ready.close(); } catch { /* closed */ } return; }
    lanes.push(newLane(ready, true));
  }, (e: unknown) => {
    laneOpenFailedAt = performance.now();
    process.stderr.write(`cell: could not set up another engine session, reads go on in ${lanes.length}: ${String(e)}\n`);
  }).finally(() => { opening = false; pump(); });
}

/**
 * Small results take chdb's buffered call, which is faster per query than its
 * streaming call and reports complete statistics; it is capped at SMALL_RESULT_BYTES
 * (the session's max_result_bytes, set once, so the common query carries no SETTINGS
 * clause of its own) so memory stays bounded. Buffered `exec` results are capped the
 * same way: they are small by contract (DDL, counts, metadata). A query whose result outgrows the cap is run again as a
 * stream, and its text is remembered so it streams straight away next time.
 * (Cancellation is the same on both paths: the server restarts a cell whose
 * cancelled query does not stop.)
 */
const SMALL_RESULT_BYTES = 2 * 1024 * 1024;
/**
 * Set once per session. Parallel formatting hands a result's blocks to formatter
 * threads: for the buffered path's small results that is only thread hand-offs
 * (measured in-process: `SELECT 1` as JSON 0.71 → 0.58 ms CPU per query without
 * it; the output is the same bytes). Streams, whose results are large, turn it
 * back on in their own SETTINGS clause.
 */
const SESSION_SETTINGS = `SET max_result_bytes = ${SMALL_RESULT_BYTES}, output_format_parallel_formatting = 0`;
async function useNoDatabase(s: Session): Promise<void> {
  await s.queryAsync(`CREATE DATABASE IF NOT EXISTS ${NO_DATABASE} ENGINE = Memory`);
  await s.queryAsync(`USE ${NO_DATABASE}`);
}
const streamOnly = new Set<string>();
const TOO_MANY_ROWS_OR_BYTES = 396;

function queryKey(job: Job): string {
  const { sql, format } = job.body as QueryBody;
  return `${format}\u0000${sql}`;
}

/** A query that takes the buffered call (and may share the engine's queue with others like it). */
function isBuffered(job: Job): boolean {
  if (job.type !== Frame.Query) return false;
  const { settings } = job.body as QueryBody;
  const ownLimits = settings && ('max_result_bytes' in settings || 'max_result_rows' in settings);
  return !ownLimits && !streamOnly.has(queryKey(job));
}

function clickhouseCode(e: unknown): number {
  return (e as { clickhouseCode?: number }).clickhouseCode ?? Number(/Code: (\d+)\./.exec(String((e as Error).message))?.[1]);
}

/** A call in a lane failed: nothing new starts in it until it is empty and its fence has run (see pump). */
function engineFailed(lane: Lane): void {
  lane.failures++;
  lane.fenceDue = true;
}

const cancelledError = (): Error => Object.assign(new Error('query cancelled'), { code: 'CANCELLED' });

/** Waits until the parent has granted credit for another Data frame (or the job is cancelled). */
async function awaitCredit(st: Active): Promise<void> {
  while (st.credit <= 0 && !st.cancelled) await new Promise<void>((r) => { st.wake = r; });
}

/** Hands a buffered query to the engine; its answer is sent when it comes back clean. */
function startBuffered(job: Job, st: Active, lane: Lane): void {
  const { sql, format, settings } = job.body as QueryBody;
  const t0 = performance.now();
  const seen = lane.failures;
  before.set(job.id, callsInEngine(lane));
  if (lane.inEngine.size === 0) lane.headSince = performance.now();
  lane.inEngine.set(job.id, job);
  tellHeadRunning(lane);
  // The session's max_result_bytes (set once at start) caps this buffered result.
  lane.session.queryAsync(sql + settingsClause(settings), { format }).then(
    (r) => bufferedDone(job, st, lane, seen, t0, r, undefined),
    (e: unknown) => bufferedDone(job, st, lane, seen, t0, undefined, e),
  );
}

function bufferedDone(job: Job, st: Active, lane: Lane, seen: number, t0: number, r: ChdbResult | undefined, err: unknown): void {
  lane.inEngine.delete(job.id);
  if (lane.inEngine.size) lane.headSince = performance.now();
  runningTold.delete(job.id);
  tellHeadRunning(lane);
  if (err !== undefined) {
    engineFailed(lane);
    if (clickhouseCode(err) === TOO_MANY_ROWS_OR_BYTES && !st.cancelled && !st.answered) {
      // Too big for the buffered call: run it again as a stream (after the fence).
      if (streamOnly.size > 10_000) streamOnly.clear();
      streamOnly.add(queryKey(job));
      queue.unshift(job);
    } else {
      finishJob(job.id, st, st.cancelled ? cancelledError() : err);
    }
  } else {
    const h: Held = {
      job, st, seen, elapsedMs: performance.now() - t0, out: r!.bytes(), waitFor: callsInEngine(lane), lane,
    };
    const predecessors = before.get(job.id)!;
    if ([...h.waitFor].some((c) => !predecessors.has(c))) {
      h.timer = setTimeout(() => {
        h.timer = undefined;
        if (held.get(job.id) !== h) return;
        for (const c of h.waitFor) if (!predecessors.has(c)) h.waitFor.delete(c);
        if (h.waitFor.size === 0) { settle(h); pump(); }
      }, SUCCESSOR_WAIT_MS);
    }
    held.set(job.id, h);
  }
  before.delete(job.id);
  callDone(job.id);
  pump();
}

/** An engine call (buffered query or INSERT statement) came back: settles the answers that waited for it. */
function callDone(call: number): void {
  for (const h of held.values()) {
    h.waitFor.delete(call);
    if (h.waitFor.size === 0) settle(h);
  }
}

function settle(h: Held): void {
  const { job, st, out } = h;
  held.delete(job.id);
  clearTimeout(h.timer);
  if (h.seen !== h.lane.failures) {
    // A call failed while this one was in the engine, maybe just before it:
    // this answer may be that call's leftovers. Run it again after the fence.
    if (st.cancelled) finishJob(job.id, st, cancelledError());
    else queue.unshift(job);
  } else if (st.cancelled) {
    finishJob(job.id, st, cancelledError());
  } else {
    active.delete(job.id);
    // (chdb's result counters, `rowsRead`/`bytesRead`, count the result's rows and bytes, not
    // what the query read: `SELECT count()` over 1000 rows says 1 row, 8 bytes. They are not
    // sent as read statistics; a JSON result's trailer carries the real ones.)
    const end = encodeFrame(Frame.End, job.id, JSON.stringify({ elapsedMs: h.elapsedMs, bytes: out.length, chunks: 1 }));
    if (out.length) {
      sock.cork();
      writeFrame(sock, Frame.Data, job.id, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
      sock.write(end);
      sock.uncork();
    } else {
      sock.write(end);
    }
  }
}

/** Ends a job with an error (once: a cancelled job waiting in the engine may have been answered already). */
/** A job taken out of the queue before it started (cancelled): its insert spool removed, answered as cancelled. */
function dropUnstarted(id: number, st: Active | undefined): void {
  if (st?.insert) { fs.closeSync(st.insert.fd); fs.rmSync(st.insert.file, { force: true }); }
  finishJob(id, st, { message: 'cancelled before start', code: 'CANCELLED' });
}

function finishJob(id: number, st: Active | undefined, e: unknown): void {
  active.delete(id);
  if (st?.answered) return;
  if (st) st.answered = true;
  sendError(id, e);
}

async function runStream(job: Job, st: Active, session: Session, sql: string, format: string, settings: Record<string, string | number> | undefined, t0: number): Promise<void> {
  if (WHOLE_FILE_FORMATS.has(format)) {
    filesBuilding++;
    try {
      return await runToFile(job, st, session, sql, format, settings, t0);
    } finally {
      filesBuilding--;
    }
  }
  let bytes = 0;
  let chunks = 0;
  let rows = 0;
  // chdb formats each block as a document of its own: put them back together (stream-assembly.ts).
  const assembler = StreamAssembler.needed(format) ? new StreamAssembler(format) : undefined;
  let first = true;
  const assemble = (b: Buffer, last: boolean): Buffer => {
    const out = assembler ? assembler.piece(b, first, last, rows, performance.now() - t0) : b;
    first = false;
    bytes += out.length;
    return out;
  };
  // Streams are not capped by the session's small-result limit, and format in parallel.
  const stream = session.queryStream(sql + settingsClause({ max_result_bytes: 0, output_format_parallel_formatting: 1, ...settings }), { format, signal: st.abort.signal });
  // One chunk of lookahead: the last chunk and the End frame leave in one write,
  // which keeps a one-chunk answer to a single socket write (and tells which chunk is last).
  let held: Buffer | undefined;
  try {
    for await (const chunk of stream) {
      if (st.cancelled) break;
      const raw = chunk.raw();
      if (raw.length === 0) continue;
      if (held) {
        const out = assemble(held, false);
        if (out.length) {
          writeFrame(sock, Frame.Data, job.id, out);
          st.credit--;
        }
        await awaitCredit(st);
        if (st.cancelled) break;
      }
      held = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      chunks++;
      rows += chunk.numRows;
    }
  } finally {
    stream.cancel();
  }
  if (st.cancelled) throw cancelledError();
  const last = held ? assemble(held, true) : undefined;
  const end = encodeFrame(Frame.End, job.id, JSON.stringify({ elapsedMs: performance.now() - t0, bytes, chunks }));
  if (last?.length) {
    sock.cork();
    writeFrame(sock, Frame.Data, job.id, last);
    sock.write(end);
    sock.uncork();
  } else {
    sock.write(end);
  }
}

/** Whole-file results being built in the spool now (one at a time: FILE_RESULT_BYTES bounds one). */
let filesBuilding = 0;

/** Size of the Data frames a file result is sent in. */
const FILE_PIECE_BYTES = 1024 * 1024;
/**
 * A whole-file result (Parquet, ...) is built on the spool's disk before its first byte
 * leaves, so it is capped: ClickHouse's max_result_bytes (the result's uncompressed bytes;
 * the file is smaller) stops the query once it passes. Without a cap one call could fill
 * the disk every tenant shares within its time limit (config.ts checks the value).
 */
const FILE_RESULT_BYTES = Number(process.env.ROOST_MAX_FILE_RESULT_BYTES || DEFAULT_MAX_FILE_RESULT_BYTES);

/**
 * A format that is one file with a header and a footer (Parquet): chdb's stream would
 * give a file per block, so the engine writes the whole result to a file in the spool
 * and the cell sends that file. The first byte leaves once the query has finished.
 */
async function runToFile(job: Job, st: Active, session: Session, sql: string, format: string, settings: Record<string, string | number> | undefined, t0: number): Promise<void> {
  const file = path.join(dataDir!, 'spool', `result-${process.pid}-${job.id}`);
  fs.rmSync(file, { force: true });
  let bytes = 0;
  let chunks = 0;
  try {
    try {
      await session.queryAsync(`${sql} INTO OUTFILE ${quoteString(file)} FORMAT ${format}${settingsClause({ ...settings, max_result_bytes: FILE_RESULT_BYTES })}`, { format: 'TSV' });
    } catch (e) {
      if (clickhouseCode(e) !== TOO_MANY_ROWS_OR_BYTES) throw e;
      throw Object.assign(new Error(
        `a ${format} result is built whole on the server's disk before it is sent, and this one passed the limit of ${FILE_RESULT_BYTES} bytes `
        + '(uncompressed; ROOST_MAX_FILE_RESULT_BYTES): ask for .csv or .ndjson, which stream without that limit, or narrow the query',
      ), { clickhouseCode: TOO_MANY_ROWS_OR_BYTES });
    }
    if (st.cancelled) throw cancelledError();
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      while (bytes < size) {
        const piece = Buffer.allocUnsafe(Math.min(FILE_PIECE_BYTES, size - bytes));
        const n = fs.readSync(fd, piece, 0, piece.length, bytes);
        if (n <= 0) break;
        writeFrame(sock, Frame.Data, job.id, n === piece.length ? piece : piece.subarray(0, n));
        bytes += n;
        chunks++;
        st.credit--;
        await awaitCredit(st);
        if (st.cancelled) throw cancelledError();
      }
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    fs.rmSync(file, { force: true });
  }
  send(Frame.End, job.id, JSON.stringify({ elapsedMs: performance.now() - t0, bytes, chunks }));
}

/**
 * Statements that write the engine's metadata files (a database's or table's definition, a
 * mutation): on a full disk ClickHouse answered some of them with success and left the file
 * empty, and the next start of the cell failed on it for good ("Empty query while loading
 * database"). They are refused while the disk has less than this free (see metadata-repair.ts
 * for what a race past the check can still leave). Not refused: moves of parts (an upload's
 * commit: refused after its rows took the space, the upload could never succeed), renames and
 * exchanges (files renamed, nothing written), and a `CREATE … IF NOT EXISTS` of something there
 * (the service tables' and the quarantine's check at every use).
 */
const DDL = /^\s*(CREATE|ATTACH|ALTER)\b/i;
/** ALTERs that move parts between tables or drop them: no definition is written (an upload's commit). */
const PARTS_ONLY = /^\s*ALTER\s+TABLE\s[\s\S]*?\s(ATTACH|DROP|DETACH|REPLACE|MOVE)\s+(PARTITION|PART)\b/i;
const IDENT = '(`(?:[^`\\\\]|\\\\.)+`|[A-Za-z_][A-Za-z0-9_]*)';
const IF_NOT_EXISTS = new RegExp(`^\\s*CREATE\\s+(TABLE|DATABASE)\\s+IF\\s+NOT\\s+EXISTS\\s+${IDENT}(?:\\s*\\.\\s*${IDENT})?`, 'i');
const DDL_MIN_FREE_BYTES = (Number(process.env.ROOST_ENGINE_MIN_FREE_MB) >= 0 && process.env.ROOST_ENGINE_MIN_FREE_MB ? Number(process.env.ROOST_ENGINE_MIN_FREE_MB) : 16) * 1024 * 1024;

const unquote = (id: string): string => (id.startsWith('`') ? id.slice(1, -1).replace(/\\(.)/g, '$1') : id);

/** Whether a `CREATE … IF NOT EXISTS` names something that exists (it then writes nothing). */
async function alreadyThere(sql: string): Promise<boolean> {
  const m = IF_NOT_EXISTS.exec(sql);
  if (!m) return false;
  const [db, table] = m[3] !== undefined ? [unquote(m[2]!), unquote(m[3])] : [unquote(m[2]!), undefined];
  const q = m[1]!.toUpperCase() === 'DATABASE'
    ? `SELECT count() FROM system.databases WHERE name = ${quoteString(db)}`
    : table !== undefined ? `SELECT count() FROM system.tables WHERE database = ${quoteString(db)} AND name = ${quoteString(table)}` : undefined;
  if (!q) return false;
  return (await main.session.queryAsync(q, { format: 'TSV' })).text().trim() !== '0';
}

async function refuseDdlOnFullDisk(sql: string): Promise<void> {
  if (!DDL.test(sql) || PARTS_ONLY.test(sql)) return;
  let free: number;
  try {
    const st = fs.statfsSync(path.join(dataDir, 'db'));
    free = st.bavail * st.bsize;
  } catch { return; }
  if (free >= DDL_MIN_FREE_BYTES || await alreadyThere(sql)) return;
  throw Object.assign(new Error(`${Math.floor(free / 1024)} KiB free on the engine's disk, under the ${Math.round(DDL_MIN_FREE_BYTES / 1048576)} MiB its definitions need (ROOST_ENGINE_MIN_FREE_MB)`), { code: 'ENGINE_DISK_FLOOR' });
}

async function runExec(job: Job): Promise<void> {
  const { sql, format, settings } = job.body as { sql: string; format?: string; settings?: Record<string, string | number> };
  await refuseDdlOnFullDisk(sql);
  const t0 = performance.now();
  const r = await main.session.queryAsync(sql + settingsClause(settings), { format: format ?? 'TSV' });
  const out = r.bytes();
  const end = encodeFrame(Frame.End, job.id, JSON.stringify({ elapsedMs: performance.now() - t0, bytes: out.length, chunks: 1 }));
  sock.write(out.length ? Buffer.concat([encodeFrame(Frame.Data, job.id, Buffer.from(out.buffer, out.byteOffset, out.byteLength)), end]) : end);
}

/** A splittable insert goes to the engine in pieces of about this size while it arrives. */
const SEGMENT_BYTES = 4 * 1024 * 1024;

/** Writes all of `bufs` (`n` bytes) at the file's position: writev may write less than asked. */
async function writeAll(fd: number, bufs: Buffer[], n: number): Promise<void> {
  let rest = bufs;
  let left = n;
  while (left > 0) {
    const w = await new Promise<number>((res, rej) => fs.writev(fd, rest, (e, k) => (e ? rej(e) : res(k))));
    if (w <= 0) throw new Error('the spool file took no bytes');
    left -= w;
    if (left === 0) break;
    let skip = w;
    let i = 0;
    while (skip >= rest[i]!.length) skip -= rest[i++]!.length;
    rest = [rest[i]!.subarray(skip), ...rest.slice(i + 1)];
  }
}

async function runInsert(job: Job, st: Active): Promise<void> {
  const { table, format, settings, split } = job.body as { table: string; format: string; settings?: Record<string, string | number>; split?: boolean };
  const ins = st.insert!;
  const t0 = performance.now();
  if (!/^[A-Za-z0-9_]+$/.test(format)) throw new Error(`invalid format ${format}`);
  // The body is spooled to disk as it arrives (bounded memory) and the engine reads
  // the file. A splittable body is cut at marks into segments, each inserted while
  // the next one is still arriving.
  const oneTimeToken = `once:${crypto.randomUUID()}`;
  const files: string[] = [ins.file];
  let fd = ins.fd;
  let seg = 0;
  let segBytes = 0;
  let running: Promise<void> | undefined;
  const insertFile = (file: string, n: number): Promise<void> => {
    // Data source tables keep a deduplication window so that a retried events-buffer flush
    // (which carries a token) is not stored twice. Without a token the engine compares block
    // hashes instead, and drops a block equal to one inserted before: identical rows in two
    // segments of one upload, or two requests sending the same events, were stored once while
    // the answers counted them all. An insert without a token of the caller's gets one of its
    // own, never used again (insert_deduplicate = 0 is not honoured by INSERT ... FROM INFILE).
    const token = settings?.insert_deduplication_token ?? oneTimeToken;
    const s = { ...settings, insert_deduplication_token: n > 0 ? `${token}:${n}` : token };
    return insertCall(`INSERT INTO ${table} FROM INFILE ${quoteString(file)}${settingsClause(s)} FORMAT ${format}`, table.startsWith(SERVICE_DB_PREFIX))
      .then(() => { fs.rmSync(file, { force: true }); });
  };
  try {
    for (;;) {
      while (ins.pending.length) {
        const b = ins.pending.shift()!;
        if (b === MARK) {
          if (split && segBytes >= SEGMENT_BYTES) {
            fs.closeSync(fd);
            if (running) await running;
            running = insertFile(files[seg]!, seg);
            running.catch(() => {});
            seg++;
            files.push(`${ins.file}.${seg}`);
            fd = fs.openSync(files[seg]!, 'w', 0o600);
            segBytes = 0;
          }
          continue;
        }
        // The data frames that arrived together (a batch comes as its block's column
        // buffers) in one write.
        const bufs = [b];
        while (ins.pending.length && ins.pending[0] !== MARK && bufs.length < 64) bufs.push(ins.pending.shift()!);
        const n = bufs.reduce((a, x) => a + x.length, 0);
        await writeAll(fd, bufs, n);
        ins.bytes += n;
        segBytes += n;
        send(Frame.InsertCredit, job.id, encodeU32(bufs.length));
      }
      if (ins.ended || st.cancelled) break;
      await new Promise<void>((r) => { ins.wake = r; });
    }
    fs.closeSync(fd);
    fd = -1;
    if (running) await running;
    if (st.cancelled) throw Object.assign(new Error('insert cancelled'), { code: 'CANCELLED' });
    if (segBytes > 0 || seg === 0) await insertFile(files[seg]!, seg);
    send(Frame.End, job.id, JSON.stringify({ elapsedMs: performance.now() - t0, bytes: ins.bytes, chunks: seg + 1 }));
  } finally {
    if (fd >= 0) { try { fs.closeSync(fd); } catch { /* closed */ } }
    if (running) await running.catch(() => {});
    for (const f of files) fs.rmSync(f, { force: true });
  }
}

/**
 * One INSERT statement of an insert in progress, when no statement, stream or fence has the engine.
 * `service`: rows of the service tables (`roost_svc_<tenant>`), which the server keeps in its
 * journal until they are in: they may wait (see waitingCalls).
 */
async function insertCall(sql: string, service = false): Promise<void> {
  while (exclusive || main.fenceDue || main.fencing) await new Promise<void>((r) => insertWaiters.push(r));
  const call = nextInsertCall--;
  insertsInEngine.add(call);
  if (service) serviceInsertsInEngine.add(call);
  try {
    await main.session.queryAsync(sql, { format: 'TSV' });
  } catch (e) {
    engineFailed(main);
    throw e;
  } finally {
    insertsInEngine.delete(call);
    serviceInsertsInEngine.delete(call);
    tellHeadRunning(main);
    callDone(call);
    pump();
  }
}

function startInsert(job: Job, st: Active): void {
  runInsert(job, st).then(
    () => { active.delete(job.id); },
    (e: unknown) => { finishJob(job.id, st, e); },
  ).finally(pump);
}

/**
 * Starts what can start: inserts, buffered queries up to QUERY_DEPTH per lane, streams in
 * idle read lanes, or one exclusive job (a statement, or a stream where there is no read lane)
 * once nothing else is inside the engine.
 */
function pump(): void {
  // A lane's fence, once nothing is inside its session (the main lane's: no insert, statement or stream either).
  for (const lane of lanes) {
    if (!lane.fenceDue || lane.fencing || lane.inEngine.size || lane.streaming || (lane === main && (exclusive || insertsInEngine.size))) continue;
    lane.fencing = true;
    void fence(lane).finally(() => { lane.fencing = false; lane.fenceDue = false; pump(); });
  }
  // Read lanes beyond what the tenant now asks for: closed once idle.
  for (let i = lanes.length - 1; i >= Math.max(1, laneTarget); i--) {
    const l = lanes[i]!;
    if (l.inEngine.size || l.fencing || l.fenceDue || l.streaming) continue;
    lanes.splice(i, 1);
    try { l.session.close(); } catch { /* closed */ }
  }
  // Jobs start in arrival order, except that small reads and inserts pass a stream waiting for a
  // read lane (they need none); nothing passes a statement, and a statement passes nothing.
  let k = 0;
  /** A stream before the job looked at waits for a read lane: reads keep to the main session meanwhile. */
  let streamWaits = false;
  while (k < queue.length && !exclusive) {
    const job = queue[k]!;
    const st = active.get(job.id);
    if (!st || st.cancelled) {
      queue.splice(k, 1);
      dropUnstarted(job.id, st);
      continue;
    }
    if (job.type === Frame.InsertBegin) {
      if (main.fenceDue || main.fencing) break;
      queue.splice(k, 1);
      startInsert(job, st);
      continue;
    }
    if (isBuffered(job)) {
      const lane = readLane(streamWaits);
      if (!lane) break;
      queue.splice(k, 1);
      startBuffered(job, st, lane);
      continue;
    }
    if (job.type === Frame.Query && streamsInReadLanes()) {
      // A stream, with read lanes allowed: in a read lane with nothing inside, so the tenant's
      // small reads and inserts go on in the main session meanwhile (a large export held them
      // all). None idle yet (one opening, or reads or another stream inside): it waits for one.
      // A whole-file result waits for another being built (FILE_RESULT_BYTES is per cell).
      const wholeFile = WHOLE_FILE_FORMATS.has((job.body as QueryBody).format);
      const lane = streamWaits || (wholeFile && filesBuilding > 0) ? undefined : streamLane();
      if (!lane) {
        streamWaits = true;
        k++;
        continue;
      }
      queue.splice(k, 1);
      lane.streaming = true;
      void runExclusive(job, st, lane).finally(() => { lane.streaming = false; pump(); });
      continue;
    }
    // A statement (or a stream where there are no read lanes): alone, after everything before it.
    if (k > 0 || !engineEmpty() || lanes.some((l) => l.fenceDue)) break;
    queue.shift();
    exclusive = true;
    void runExclusive(job, st).finally(() => { exclusive = false; pump(); });
    break;
  }
  if (!exclusive && !main.fenceDue && !main.fencing) for (const w of insertWaiters.splice(0)) w();
}

/**
 * The lane a small read goes to: the one with the fewest reads inside, among those that take
 * reads now (set up, no fence due, no stream, room for another, not behind a read running for
 * longer than LONG_HEAD_MS when there are other sessions). When none of them is idle and
 * the tenant allows more, one more lane is opened (a few milliseconds, in the background): the
 * sessions a cell has grow with the reads it is given at once, up to query_parallelism.
 */
function readLane(mainOnly = false): Lane | undefined {
  let best: Lane | undefined;
  const now = performance.now();
  for (let i = 0; i < lanes.length && i < (mainOnly ? 1 : laneTarget); i++) {
    const l = lanes[i]!;
    if (!l.ready || l.fenceDue || l.fencing || l.streaming || l.inEngine.size >= QUERY_DEPTH) continue;
    if (l.inEngine.size > 0 && laneTarget > 1 && now - l.headSince > LONG_HEAD_MS) continue;
    // The fewest inside; between equals, the one whose running read started last (the other's is
    // the likelier to be long).
    if (!best || l.inEngine.size < best.inEngine.size || (l.inEngine.size === best.inEngine.size && l.headSince > best.headSince)) best = l;
  }
  if ((!best || best.inEngine.size > 0) && mayOpenLane()) openLane();
  return best;
}

/**
 * Whether streams go to read lanes: the tenant allows two sessions or more and a read lane is
 * there or can be opened (else a stream runs alone in the main session, as with one session).
 */
function streamsInReadLanes(): boolean {
  return laneTarget >= 2 && (lanes.length >= 2 || opening || mayOpenLane());
}

/** A read lane (not the main session) that takes a stream now: set up, empty, no fence due. */
function streamLane(): Lane | undefined {
  for (let i = 1; i < lanes.length && i < laneTarget; i++) {
    const l = lanes[i]!;
    if (l.ready && !l.fenceDue && !l.fencing && !l.streaming && l.inEngine.size === 0) return l;
  }
  if (mayOpenLane()) openLane();
  return undefined;
}

/** A stream or statement, in the main session with every lane empty, or a stream in a read lane of its own. */
async function runExclusive(job: Job, st: Active, lane: Lane = main): Promise<void> {
  try {
    if (job.type === Frame.Query) {
      const { sql, format, settings } = job.body as QueryBody;
      send(Frame.Started, job.id);
      await runStream(job, st, lane.session, sql, format, settings, performance.now());
    } else await runExec(job);
    active.delete(job.id);
  } catch (e) {
    finishJob(job.id, st, e);
    engineFailed(lane); // the fence runs as soon as this job has let go of the session
  }
}

sock.on('data', (chunk: Buffer) => reader.push(chunk, (type, id, payload) => {
  switch (type) {
    case Frame.Ping:
      send(Frame.Pong, id, JSON.stringify({ version: engineVersion, queued: queue.length, sessions: lanes.length, waiting: waitingCalls() }));
      break;
    case Frame.Query:
    case Frame.Exec:
    case Frame.InsertBegin: {
      const body = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
      // The tenant's query_parallelism, sent with each query (it can change while the cell runs).
      if (type === Frame.Query && Number.isSafeInteger(body.parallel) && (body.parallel as number) >= 1) laneTarget = Math.min(body.parallel as number, MAX_LANES);
      const st: Active = { cancelled: false, abort: new AbortController(), credit: WINDOW, wake: undefined };
      if (type === Frame.InsertBegin) {
        const file = path.join(dataDir, 'spool', `insert-${process.pid}-${id}`);
        let fd: number;
        try {
          try {
            fd = fs.openSync(file, 'w', 0o600);
          } catch (e) {
            // The spool directory removed under the cell: made again.
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
            fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
            fd = fs.openSync(file, 'w', 0o600);
          }
        } catch (e) {
          // A disk full, read-only or out of file descriptors: this insert fails (its later frames
          // are dropped, the id being unknown), the cell goes on (it ended here, and every request
          // of the tenant failed with it, inserts as "may have been stored").
          const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
          sendError(id, { message: `${code}: the insert's spool file could not be made`, code });
          break;
        }
        st.insert = { fd, file, pending: [], ended: false, bytes: 0, wake: undefined };
      }
      active.set(id, st);
      queue.push({ id, type, body });
      void pump();
      break;
    }
    case Frame.InsertData: {
      const ins = active.get(id)?.insert;
      if (ins) { ins.pending.push(payload); ins.wake?.(); ins.wake = undefined; }
      break;
    }
    case Frame.InsertMark: {
      const ins = active.get(id)?.insert;
      if (ins) { ins.pending.push(MARK); ins.wake?.(); ins.wake = undefined; }
      break;
    }
    case Frame.InsertEnd: {
      const ins = active.get(id)?.insert;
      if (ins) { ins.ended = true; ins.wake?.(); ins.wake = undefined; }
      break;
    }
    case Frame.Credit: {
      const st = active.get(id);
      if (st) { st.credit += payload.readUInt32LE(0); st.wake?.(); st.wake = undefined; }
      break;
    }
    case Frame.Cancel: {
      const st = active.get(id);
      if (st) {
        st.cancelled = true;
        st.abort.abort();
        // Waiting inside the engine behind another query (not running), or its answer held
        // (see `held`): answer now, so the parent does not take it for a query that will
        // not stop; its result is dropped.
        const lane = lanes.find((l) => l.inEngine.has(id));
        if ((lane && lane.inEngine.keys().next().value !== id) || held.has(id)) finishJob(id, st, cancelledError());
        // Still waiting in the queue (the engine busy with others): answered now too, as pump
        // would when it got to it; waiting for that, the parent took it for a query that would
        // not stop and restarted the cell.
        const waiting = queue.findIndex((j) => j.id === id);
        if (waiting >= 0) {
          queue.splice(waiting, 1);
          dropUnstarted(id, st);
        }
        st.wake?.(); st.wake = undefined;
        if (st.insert) { st.insert.wake?.(); st.insert.wake = undefined; }
      }
      break;
    }
    default:
      break;
  }
}));

// The parent going away (crash or kill) closes the socket: the cell ends with it, at once.
// A plain exit would wait inside the engine for a running statement (a RESTORE, a long
// query) to finish, holding the engine's directory against the next server's cell; the
// parent is gone, so nothing it started can be answered anyway, and ending as a kill -9
// would is the crash Roost is built to survive (nothing acknowledged is lost).
sock.on('close', () => shutdown(0, true));
sock.on('error', () => shutdown(1, true));
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => {});

let closing = false;
function shutdown(code: number, parentGone = false): void {
  if (closing) return;
  closing = true;
  for (const l of lanes) try { l.session.close(); } catch { /* already closed */ }
  if (parentGone) process.kill(process.pid, 'SIGKILL');
  process.exit(code);
}

let engineVersion = chdbVersion().libchdb;
main.session.queryAsync('SELECT version()', { format: 'TSV' }).then(async (r) => {
  engineVersion = r.text().trim();
  // Every result is capped for the buffered path; statements that may return more
  // (streams) lift the cap in their own SETTINGS clause.
  await setUpSession(main.session);
  send(Frame.Pong, 0, JSON.stringify({ version: engineVersion, ready: true }));
}, (e) => {
  process.stderr.write(`cell: engine failed to start: ${String(e)}\n`);
  process.exit(1);
});

