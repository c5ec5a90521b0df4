/**
 * The events buffer behind `POST /v0/events` without `wait=true`: each request
 * body is appended to a segment file of its data source and fsynced before the
 * request is answered 202, so an acknowledged event survives `kill -9`. A
 * flusher moves segments into the engine in batches sized for it (up to
 * `batchBytes` per insert), then deletes them. Segments left by a crash are
 * flushed at the next start.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { isUtf8 } from 'node:buffer';
import crypto from 'node:crypto';
import type { Logger } from '../log/logger.js';
import { QueryFailed, RoostError } from '../errors.js';

/**
 * Whose segments: by name (the directories), and the workspace by id where known. The id is
 * kept in the workspace directory's `.workspace.json`, so segments whose workspace was renamed
 * before they were moved (a flush pass running across the rename, or a kill -9 between the
 * two) still find it.
 */
export interface SegmentOwner { tenant: string; workspace: string; datasource: string; workspaceId?: string; datasourceId?: string }

/** Imports the given NDJSON files into a data source; throws to retry later. */
export type FlushFn = (owner: SegmentOwner, files: string[]) => Promise<void>;

interface Target { dir: string; owner: SegmentOwner; pendingBytes: number; pendingSegments: number; rejectedBytes: number; seq: number; writing: Promise<void> }

/**
 * Most segments one flush inserts together. The flush's dedup token is made of their names
 * (~28 bytes each): 20 000 tiny segments left by an outage made a token over the engine's
 * max_query_size, so that flush failed, forever, and held back every later event of its data source.
 */
const MAX_BATCH_SEGMENTS = 1000;
/**
 * Backlog of one data source past which new events are refused (503, retryable) rather than
 * buffered: the engine is not keeping up (or is away), and the buffer must not fill the disk.
 */
const MAX_PENDING_BYTES = 1024 * 1024 * 1024;
/**
 * Bytes of segments the engine refused (`<segment>.rejected`, kept for a person to look at) that
 * one data source may hold; past it, its buffered events are refused at the door (507) instead of
 * set aside without end: the next ones would most likely be refused alike, and each is only a
 * small gzipped request for a caller (a body of 7 MiB lines compresses a thousandfold).
 */
const MAX_REJECTED_BYTES = 256 * 1024 * 1024;
const MAX_PENDING_SEGMENTS = 100_000;

/**
 * A segment is `<12-digit sequence>-<boot tag>.ndjson` (older versions wrote
 * `<12 digits>.ndjson`, still read). The sequence starts again after the last
 * segment on disk, i.e. at 1 once everything was flushed, so the boot tag (random
 * per process) keeps a name, and the flush's dedup token made of the names, from
 * ever being used twice: the engine would take a new batch with an old token for
 * a retry of the old one and drop it.
 */
const SEGMENT = /^(\d{12})(?:-[0-9a-f]{8})?\.ndjson$/;
/**
 * The batch being flushed, written (durably) before its insert and removed once its
 * segments are gone: after a crash between the insert and the end of the removal,
 * the same batch (same names, so the same dedup token) is sent again first, so the
 * engine recognises it instead of storing part of it twice.
 */
const MANIFEST = 'flushing.json';
const OWNER = '.workspace.json';
/**
 * The id of the data source whose segments a data source directory holds: a data source renamed
 * since they were written (a kill -9 between the rename and their flush) is found by it, and a
 * data source created later under the old name does not get them.
 */
const DS_OWNER = '.datasource.json';

export class EventBuffer {
  #root: string;
  #log: Logger;
  #flushFn: FlushFn;
  #targets = new Map<string, Target>();
  #timer: NodeJS.Timeout;
  #flushing: Promise<void> | undefined;
  #batchBytes: number;
  /** Per data source: failed flushes in a row and when to try again (monotonic clock: a wall-clock step back must not stall it). */
  #failures = new Map<string, { count: number; until: number }>();
  #bootTag = crypto.randomBytes(4).toString('hex');
  /** The next segment number of a folder made from now on (see #target): numbers never repeat in a process. */
  #seqFloor = 1;

  /**
   * A segment number for `t`: above its folder's, and above every number this process gave.
   * Segment names make the flush's deduplication token, per data source id: a data source renamed
   * (its folder new) or renamed back (its old target, still held) repeated names already flushed,
   * and the engine dropped those inserts as repeats (events answered 202, then lost).
   */
  #nextSeq(t: Target): number {
    const seq = Math.max(t.seq, this.#seqFloor);
    t.seq = seq + 1;
    this.#seqFloor = seq + 1;
    return seq;
  }
  /** A flush of every data source queued behind the running one: later requests for one share it. */
  #queuedAll: Promise<void> | undefined;
  #maxPendingBytes: number;
  #maxPendingSegments: number;
  #maxRejectedBytes: number;

  #onRejected: ((owner: SegmentOwner, file: string, err: unknown) => void) | undefined;
  #quarantine: ((owner: SegmentOwner, file: string, err: unknown) => Promise<number>) | undefined;

  constructor(opts: {
    root: string; log: Logger; flush: FlushFn; intervalMs?: number; batchBytes?: number; maxPendingBytes?: number; maxPendingSegments?: number; maxRejectedBytes?: number;
    /**
     * Takes the events of a segment the engine refused on its own into the data source's
     * quarantine; resolves with how many. The segment is then removed. Without it, or when it
     * fails, the segment is set aside (`<segment>.rejected`).
     */
    quarantine?: (owner: SegmentOwner, file: string, err: unknown) => Promise<number>;
    /** Told of a segment set aside (`<segment>.rejected`): its content cannot be imported. */
    onRejected?: (owner: SegmentOwner, file: string, err: unknown) => void;
  }) {
    this.#root = opts.root;
    this.#onRejected = opts.onRejected;
    this.#quarantine = opts.quarantine;
    this.#log = opts.log;
    this.#flushFn = opts.flush;
    this.#batchBytes = opts.batchBytes ?? 32 * 1024 * 1024;
    this.#maxPendingBytes = opts.maxPendingBytes ?? MAX_PENDING_BYTES;
    this.#maxPendingSegments = opts.maxPendingSegments ?? MAX_PENDING_SEGMENTS;
    this.#maxRejectedBytes = opts.maxRejectedBytes ?? MAX_REJECTED_BYTES;
    fs.mkdirSync(this.#root, { recursive: true, mode: 0o700 });
    this.#timer = setInterval(() => { void this.flush(); }, opts.intervalMs ?? 500);
    this.#timer.unref();
    this.#recover();
  }

  #key(o: SegmentOwner): string {
    return `${o.tenant}/${o.workspace}/${o.datasource}`;
  }

  #target(o: SegmentOwner): Target {
    const key = this.#key(o);
    let t = this.#targets.get(key);
    if (!t) {
      const dir = path.join(this.#root, o.tenant, o.workspace, o.datasource);
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      const last = fs.readdirSync(dir).map((f) => SEGMENT.exec(f)?.[1]).filter(Boolean).map(Number).sort((a, b) => b - a)[0] ?? 0;
      const owner: SegmentOwner = { tenant: o.tenant, workspace: o.workspace, datasource: o.datasource };
      try {
        const ids = JSON.parse(fs.readFileSync(path.join(path.dirname(dir), OWNER), 'utf8')) as { workspace_id?: unknown };
        if (typeof ids.workspace_id === 'string') owner.workspaceId = ids.workspace_id;
      } catch { /* none yet (or written by a version without it) */ }
      try {
        const ids = JSON.parse(fs.readFileSync(path.join(dir, DS_OWNER), 'utf8')) as { datasource_id?: unknown };
        if (typeof ids.datasource_id === 'string') owner.datasourceId = ids.datasource_id;
      } catch { /* none yet (or written by a version without it) */ }
      // (Past every number this process gave: see #nextSeq.)
      t = { dir, owner, pendingBytes: 0, pendingSegments: 0, rejectedBytes: 0, seq: Math.max(last + 1, this.#seqFloor), writing: Promise.resolve() };
      this.#targets.set(key, t);
    }
    return t;
  }

  /** Finds segments left by an earlier process. */
  #recover(): void {
    if (!fs.existsSync(this.#root)) return;
    // Folders of dropped data sources, workspaces and tenants a crash left before removing them.
    fs.rmSync(path.join(this.#root, TRASH), { recursive: true, force: true });
    for (const tenant of fs.readdirSync(this.#root)) {
      if (tenant.startsWith('.')) continue;
      for (const workspace of safeList(path.join(this.#root, tenant))) {
        // (A workspace id file being written at the crash: written again by the next append.)
        for (const f of fs.readdirSync(path.join(this.#root, tenant, workspace))) {
          if (f.endsWith('.part')) fs.rmSync(path.join(this.#root, tenant, workspace, f), { force: true });
        }
        for (const datasource of safeList(path.join(this.#root, tenant, workspace))) {
          const t = this.#target({ tenant, workspace, datasource });
          for (const f of fs.readdirSync(t.dir)) {
            if (SEGMENT.test(f)) { t.pendingBytes += fs.statSync(path.join(t.dir, f)).size; t.pendingSegments++; }
            else if (f.endsWith(REJECTED)) t.rejectedBytes += fs.statSync(path.join(t.dir, f)).size;
            // A body that was still arriving at the crash was never acknowledged; a manifest
            // still being written was not in effect yet (the flush writes it again).
            else if (f.endsWith('.part') || f === `${MANIFEST}.tmp`) fs.rmSync(path.join(t.dir, f), { force: true });
          }
          // A flush cut after it removed every segment of its batch: the batch is stored.
          if (t.pendingSegments === 0) fs.rmSync(path.join(t.dir, MANIFEST), { force: true });
          if (t.pendingBytes) this.#log.info('events buffer recovered', { tenant, workspace, datasource, bytes: t.pendingBytes });
        }
      }
    }
  }

  /**
   * Writes one request body as its own segment file and fsyncs it (and the
   * directory) before resolving. A body that fails to arrive leaves nothing.
   *
   * What the flush would refuse as a whole is refused here, before the body is
   * acknowledged: text that is not UTF-8, a line over `maxLineBytes`, a body with
   * no event (only blank lines; `lines` is then 0 and nothing is kept). A segment
   * the flush cannot import would otherwise be retried forever, and every event
   * buffered after it for the same data source with it. `lines` counts the lines
   * that hold an event (blank lines, as the NDJSON reader skips them, do not).
   */
  async append(o: SegmentOwner, body: AsyncIterable<Buffer>, opts: { maxLineBytes?: number; accept?: () => void } = {}): Promise<{ bytes: number; lines: number; notObjects: number }> {
    const maxLine = opts.maxLineBytes ?? 8 << 20;
    const t = this.#target(o);
    if (t.pendingBytes >= this.#maxPendingBytes || t.pendingSegments >= this.#maxPendingSegments) {
      // Not buffered: the engine is behind (or away) on this data source. The client keeps the
      // events and sends them again; an unbounded buffer would end in a full disk instead.
      void this.flush(o);
      throw new RoostError('ENGINE_UNAVAILABLE', `the events buffer of data source "${o.datasource}" holds ${t.pendingSegments} requests (${t.pendingBytes} bytes) not yet written to the engine; nothing was stored: retry in a few seconds (or send with wait=true)`, {
        retryable: true, headers: { 'Retry-After': '5' }, details: { pending_bytes: t.pendingBytes, pending_requests: t.pendingSegments },
      });
    }
    // Segments of another data source that had this name (renamed since, their flush pending)
    // are not mixed with these: they go first, to the data source they belong to.
    const otherOwner = () => o.datasourceId !== undefined && t.owner.datasourceId !== undefined && o.datasourceId !== t.owner.datasourceId && t.pendingSegments > 0;
    const notYet = () => {
      void this.flush(o);
      return new RoostError('ENGINE_UNAVAILABLE', `events of an earlier data source named "${o.datasource}" (renamed since) are still being written; nothing was stored: retry in a few seconds`, { retryable: true, headers: { 'Retry-After': '1' } });
    };
    if (otherOwner()) throw notYet();
    if (t.rejectedBytes >= this.#maxRejectedBytes) {
      // Counted again from the folder: a person may have removed or moved the files since.
      t.rejectedBytes = rejectedBytesIn(t.dir);
      if (t.rejectedBytes >= this.#maxRejectedBytes) {
        throw new RoostError('INSUFFICIENT_STORAGE', `the server keeps ${t.rejectedBytes} bytes of buffered events of data source "${o.datasource}" that the engine refused (set aside as .rejected files), its limit: nothing was stored. Send with wait=true to see the engine's error, change the data source or the events, and have the operator remove or import the set-aside files`, {
          details: { rejected_bytes: t.rejectedBytes, limit: this.#maxRejectedBytes },
        });
      }
    }
    const name = `${String(this.#nextSeq(t)).padStart(12, '0')}-${this.#bootTag}.ndjson`;
    const tmp = path.join(t.dir, `.${name}.part`);
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(tmp, 'w', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      // Its folder was taken away (a drop, a workspace rename or delete): the caller says which,
      // from the state (events.ts). Else someone removed the folder: made again.
      if (this.#targets.get(this.#key(o)) !== t) throw e;
      fs.mkdirSync(t.dir, { recursive: true, mode: 0o700 });
      fh = await fsp.open(tmp, 'w', 0o600);
    }
    let bytes = 0;
    let lines = 0;
    let last = 10;
    let lineNo = 1;
    let lineBytes = 0;
    let lineHasEvent = false;
    /**
     * The line's first and last bytes other than spaces, to count a line that is plainly no JSON
     * object; a BOM before the first line is skipped (one cut across chunks leaves that line
     * uncounted: the 202's quarantined_rows is a lower bound either way).
     */
    let first = 0;
    let lastByte = 0;
    let notObjects = 0;
    /** The bytes of a UTF-8 character cut at the end of the previous chunk. */
    let cut: Buffer = Buffer.alloc(0);
    try {
      for await (const chunk of body) {
        if (!chunk.length) continue;
        const whole = cut.length ? Buffer.concat([cut, chunk]) : chunk;
        const keep = incompleteUtf8Tail(whole);
        if (!isUtf8(whole.subarray(0, whole.length - keep))) throw notUtf8(lineNo + linesBeforeBadUtf8(whole, whole.length - keep));
        cut = Buffer.from(whole.subarray(whole.length - keep));
        await writeAll(fh, chunk);
        bytes += chunk.length;
        let s = bytes === chunk.length && chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf ? 3 : 0;
        for (let i = chunk.indexOf(10, s); ; i = chunk.indexOf(10, s)) {
          const e = i < 0 ? chunk.length : i;
          if (!lineHasEvent) { const at = eventAt(chunk, s, e); if (at >= 0) { lineHasEvent = true; first = chunk[at]!; } }
          if (lineHasEvent) { const z = lastNonSpace(chunk, s, e); if (z >= 0) lastByte = chunk[z]!; }
          lineBytes += e - s;
          if (lineBytes > maxLine) throw new RoostError('ROW_TOO_LARGE', `line ${lineNo} is longer than ${maxLine} bytes; split the event or send it with a smaller payload (nothing was stored)`, { details: { line: lineNo } });
          if (i < 0) break;
          if (lineHasEvent) { lines++; if (plainlyNoObject(first, lastByte)) notObjects++; }
          lineNo++;
          lineBytes = 0;
          lineHasEvent = false;
          s = i + 1;
        }
        last = chunk[chunk.length - 1]!;
      }
      if (cut.length) throw notUtf8(lineNo);
      if (lineHasEvent) { lines++; if (plainlyNoObject(first, lastByte)) notObjects++; }
      if (bytes > 0 && last !== 10) { await writeAll(fh, Buffer.from('\n')); bytes++; }
      if (lines > 0) await fh.sync();
    } catch (e) {
      await fh.close();
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    // Nothing to store: no segment (the caller answers that the body is empty).
    if (lines === 0) { await fsp.rm(tmp, { force: true }); return { bytes, lines, notObjects }; }
    // Last word of the caller (e.g. is the data source still the one the request was for?),
    // before the segment can be seen by a flush.
    let awaited = false;
    try {
      opts.accept?.();
      if (o.workspaceId && o.workspaceId !== t.owner.workspaceId) {
        awaited = true;
        const wsDir = path.dirname(t.dir);
        await writeDurable(path.join(wsDir, OWNER), JSON.stringify({ workspace_id: o.workspaceId }), path.join(wsDir, `${OWNER}.${crypto.randomBytes(4).toString('hex')}.part`));
        t.owner.workspaceId = o.workspaceId;
      }
      if (o.datasourceId && o.datasourceId !== t.owner.datasourceId) {
        if (otherOwner()) throw notYet();
        awaited = true;
        await writeDurable(path.join(t.dir, DS_OWNER), JSON.stringify({ datasource_id: o.datasourceId }), path.join(t.dir, `.${DS_OWNER}.${crypto.randomBytes(4).toString('hex')}.part`));
        t.owner.datasourceId = o.datasourceId;
      }
      // The owner files were awaited: asked again, so that nothing is awaited between the last
      // word and the rename that lets a flush see the segment.
      if (awaited) opts.accept?.();
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    // (ENOENT: the folder went between the last word and here, with this segment; the caller
    // says why, from the state.)
    await fsp.rename(tmp, path.join(t.dir, name));
    const d = await fsp.open(t.dir, 'r');
    try { await d.sync(); } finally { await d.close(); }
    t.pendingBytes += bytes;
    t.pendingSegments++;
    if (t.pendingBytes >= this.#batchBytes || t.pendingSegments >= MAX_BATCH_SEGMENTS) void this.flush();
    return { bytes, lines, notObjects };
  }

  /**
   * Moves every buffered segment into the engine (or only those of `only`: what a truncate,
   * rows delete or replace of that data source must see first); resolves when done (or
   * failed, to retry).
   */
  flush(only?: SegmentOwner): Promise<void> {
    // A slow engine: the timer (every 500 ms) and appends over the batch size asked for a
    // flush of everything each time, and each was queued behind the running one, without end.
    if (!only && this.#queuedAll) return this.#queuedAll;
    const onlyKey = only && this.#key(only);
    /** One data source's segments, in order; a failure is logged and retried later, never thrown. */
    const flushTarget = async (key: string, t: Target) => {
      const f = this.#failures.get(key);
      // (A flush asked for by an operation on the data source, e.g. a truncate, tries now.)
      if (f && !only && performance.now() < f.until) return;
      let segments: string[] = [];
      let batch: string[] = [];
      let size = 0;
      const manifest = path.join(t.dir, MANIFEST);
      /** Sends `names` as one insert, its manifest durable first; removes them after. */
      const send = async (names: string[]) => {
        await writeDurable(manifest, JSON.stringify({ segments: names }));
        await this.#flushFn(t.owner, names.map((n) => path.join(t.dir, n)));
        await eachAtOnce(names, (n) => fsp.rm(path.join(t.dir, n), { force: true }));
        await fsp.rm(manifest, { force: true });
      };
      const sendBatch = async () => {
        if (!batch.length) return;
        try {
          await send(batch);
        } catch (e) {
          if (!isContentError(e)) throw e;
          // What the segments hold is refused (append() checks what it can; the engine may still
          // refuse rows, e.g. a DEFAULT expression that throws for them): retrying would never
          // succeed and would hold back every later segment. Each goes alone; one that fails by
          // itself is set aside as <segment>.rejected, loudly, and the others are stored.
          for (const n of batch) {
            const file = path.join(t.dir, n);
            try {
              if (batch.length > 1) await send([n]);
              else throw e;
            } catch (e1) {
              if (!isContentError(e1)) throw e1;
              if ((e1 as RoostError).code === 'EMPTY_BODY') { await fsp.rm(file, { force: true }); continue; }
              if (this.#quarantine) {
                // Where the tenant sees refused rows: its quarantine table; the segment is removed
                // only after. A failure that may pass (the engine away, a restart, a time limit, the
                // data source renamed or dropped meanwhile) leaves the segment and its manifest for
                // the next flush, which asks again (the quarantine insert's token makes that safe);
                // only a quarantine refused for what it holds sets the segment aside.
                let events: number | undefined;
                try {
                  events = await this.#quarantine(t.owner, file, e1);
                } catch (q) {
                  if (!isContentError(q)) throw q;
                  this.#log.error('buffered events the engine refused could not be quarantined either; set aside instead', { target: key, segment: n, err: q });
                }
                if (events !== undefined) {
                  await fsp.rm(file, { force: true });
                  await fsp.rm(manifest, { force: true });
                  this.#log.warn('buffered events the engine refused were quarantined', { target: key, segment: n, events, err: e1 });
                  continue;
                }
              }
              t.rejectedBytes += (await fsp.stat(file).catch(() => ({ size: 0 }))).size;
              await fsp.rename(file, `${file}${REJECTED}`);
              await fsp.rm(manifest, { force: true });
              this.#log.error('buffered events set aside: their segment cannot be imported', { target: key, file: `${file}.rejected`, err: e1 });
              try { this.#onRejected?.(t.owner, `${file}.rejected`, e1); } catch { /* told, as far as it goes */ }
            }
          }
        }
        t.pendingBytes = Math.max(0, t.pendingBytes - size);
        t.pendingSegments = Math.max(0, t.pendingSegments - batch.length);
        batch = [];
        size = 0;
      };
      try {
        // (A directory a drop removes meanwhile fails here: logged, and forgotten with its target.)
        segments = (await fsp.readdir(t.dir)).filter((n) => SEGMENT.test(n)).sort();
        // A batch whose flush a crash (or a failed insert) interrupted goes again first, as it was.
        const left = await readManifest(manifest);
        if (left) {
          const present = left.filter((n) => segments.includes(n));
          if (present.length === left.length) {
            batch = left;
            for (const s of await eachAtOnce(left, (n) => fsp.stat(path.join(t.dir, n)))) size += s.size;
            await sendBatch();
          } else {
            // Segments are removed only after the insert succeeded: the batch is stored.
            for (const n of present) await fsp.rm(path.join(t.dir, n), { force: true });
            await fsp.rm(manifest, { force: true });
          }
          segments = segments.filter((n) => !left.includes(n));
        }
        const sizes = await eachAtOnce(segments, async (n) => (await fsp.stat(path.join(t.dir, n))).size);
        for (const [i, n] of segments.entries()) {
          const s = sizes[i]!;
          if (batch.length > 0 && (size + s > this.#batchBytes || batch.length >= MAX_BATCH_SEGMENTS)) await sendBatch();
          batch.push(n);
          size += s;
        }
        await sendBatch();
        this.#failures.delete(key);
        // What is on disk is the truth (a count could drift, e.g. after a rename).
        t.pendingSegments = 0;
        t.pendingBytes = 0;
        const waiting = (await fsp.readdir(t.dir).catch(() => [] as string[])).filter((n) => SEGMENT.test(n));
        for (const st of await eachAtOnce(waiting, (n) => fsp.stat(path.join(t.dir, n)).catch(() => ({ size: 0 })))) {
          t.pendingSegments++;
          t.pendingBytes += st.size;
        }
      } catch (e) {
        const count = (f?.count ?? 0) + 1;
        const wait = Math.min(30_000, 500 * 2 ** count);
        this.#failures.set(key, { count, until: performance.now() + wait });
        this.#log.error('events flush failed; the segments stay and are retried', { target: key, retry_in_ms: wait, err: e });
      }
    };
    const run = async () => {
      if (!only && this.#queuedAll === p) this.#queuedAll = undefined;
      // Tenants side by side, each tenant's data sources one after another: one tenant's slow
      // or unreachable engine (a remote server answering after minutes) must not hold back
      // every other tenant's events.
      const byTenant = new Map<string, Array<[string, Target]>>();
      for (const [key, t] of this.#targets) {
        if (onlyKey !== undefined && key !== onlyKey) continue;
        if (t.pendingBytes === 0 && t.pendingSegments === 0) continue;
        let g = byTenant.get(t.owner.tenant);
        if (!g) byTenant.set(t.owner.tenant, g = []);
        g.push([key, t]);
      }
      await Promise.all([...byTenant.values()].map(async (g) => {
        for (const [key, t] of g) {
          // Discarded (drop, workspace or tenant delete) while earlier ones flushed.
          if (this.#targets.get(key) !== t) continue;
          try {
            await flushTarget(key, t);
          } catch (e) {
            this.#log.error('events flush failed', { target: key, err: e });
          }
        }
      }));
    };
    const p: Promise<void> = (this.#flushing ?? Promise.resolve()).then(run, run);
    if (!only) this.#queuedAll = p;
    this.#flushing = p.finally(() => { if (this.#flushing === p) this.#flushing = undefined; });
    return p;
  }

  /** Segments of one data source not yet in the engine, and the data source id its folder records (if any). */
  pendingOf(o: SegmentOwner): { segments: number; datasourceId?: string } {
    const t = this.#targets.get(this.#key(o));
    return t ? { segments: t.pendingSegments, datasourceId: t.owner.datasourceId } : { segments: 0 };
  }

  /** A mark of the events acknowledged until now, for pendingBefore. */
  mark(): number {
    return this.#seqFloor;
  }

  /**
   * The data sources of `tenant` holding events acknowledged before `mark` (this process's
   * segments numbered below it, and every segment an earlier process left) that are not in the
   * engine yet. Events acknowledged since are not counted.
   */
  pendingBefore(tenant: string, mark: number): SegmentOwner[] {
    const out: SegmentOwner[] = [];
    for (const t of this.#targets.values()) {
      if (t.owner.tenant !== tenant || (t.pendingSegments === 0 && t.pendingBytes === 0)) continue;
      let names: string[];
      try { names = fs.readdirSync(t.dir); } catch { continue; }
      const before = names.some((n) => {
        const m = SEGMENT.exec(n);
        if (!m) return false;
        return !n.includes(`-${this.#bootTag}.`) || Number(m[1]) < mark;
      });
      if (before) out.push(t.owner);
    }
    return out;
  }

  /** The data sources of a tenant that still have segments not in the engine. */
  pendingOwnersOf(tenant: string): SegmentOwner[] {
    return [...this.#targets.values()].filter((t) => t.owner.tenant === tenant && (t.pendingSegments > 0 || t.pendingBytes > 0)).map((t) => t.owner);
  }

  /**
   * Bytes a tenant's buffers hold on the server's disk: events acknowledged and not yet in the
   * engine, and segments the engine refused (set aside). Both count towards `storage_bytes`.
   */
  bytesOf(tenant: string): number {
    let n = 0;
    for (const t of this.#targets.values()) if (t.owner.tenant === tenant) n += t.pendingBytes + t.rejectedBytes;
    return n;
  }

  /** Bytes not yet in the engine (all data sources). */
  get pendingBytes(): number {
    let n = 0;
    for (const t of this.#targets.values()) n += t.pendingBytes;
    return n;
  }

  /** Requests (segments) not yet in the engine (all data sources). */
  get pendingRequests(): number {
    let n = 0;
    for (const t of this.#targets.values()) n += t.pendingSegments;
    return n;
  }

  /**
   * Takes a folder out of the buffer's tree at once (a rename into `.trash`, in the same step as
   * its targets leave the map: an append arriving after makes a new folder, never writes into
   * one being removed), then removes it. Removing it in place raced with appends: a data source
   * dropped and created again under load had its new folder removed under a cached target (every
   * later buffered event failed, ENOENT, until a restart), and the drop itself failed (ENOTEMPTY)
   * after it was done.
   */
  async #removeFolder(dir: string): Promise<void> {
    const trash = path.join(this.#root, TRASH);
    const away = path.join(trash, `${Date.now()}-${crypto.randomBytes(6).toString('hex')}`);
    try {
      fs.mkdirSync(trash, { recursive: true, mode: 0o700 });
      fs.renameSync(dir, away);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    try {
      await fsp.rm(away, { recursive: true, force: true });
    } catch (e) {
      // Out of the tree already: nothing reads it; the next start removes it.
      this.#log.warn('events buffer: could not remove a discarded folder (removed at the next start)', { dir: away, err: e });
    }
  }

  /** Drops every buffered segment of a deleted tenant. */
  async discardTenant(tenant: string): Promise<void> {
    for (const [key, t] of this.#targets) if (t.owner.tenant === tenant) this.#targets.delete(key);
    await this.#removeFolder(path.join(this.#root, tenant));
  }

  /**
   * Runs `fn` with no flush running (flushes wait for it): discards and renames of segments
   * run in it, and a restore switches the tenant's databases in it, so no flush spans the switch.
   */
  betweenFlushes<T>(fn: () => Promise<T>): Promise<T> {
    const p = (this.#flushing ?? Promise.resolve()).then(fn, fn);
    this.#flushing = p.then(() => {}, () => {}).finally(() => { if (this.#flushing === q) this.#flushing = undefined; });
    const q = this.#flushing;
    return p;
  }

  /** Drops every buffered segment of a deleted workspace. */
  discardWorkspace(tenant: string, workspace: string): Promise<void> {
    return this.betweenFlushes(async () => {
      for (const [key, t] of this.#targets) if (t.owner.tenant === tenant && t.owner.workspace === workspace) this.#targets.delete(key);
      await this.#removeFolder(path.join(this.#root, tenant, workspace));
    });
  }

  /**
   * Moves the buffered segments of a renamed workspace to its new name, between
   * flushes: the flush finds data sources by workspace name, and segments left
   * under the old one were dropped as belonging to no data source. An append
   * still writing under the old name when its directory moves fails (it was not
   * acknowledged yet).
   */
  renameWorkspace(tenant: string, from: string, to: string): Promise<void> {
    return this.betweenFlushes(async () => {
      for (const [key, t] of [...this.#targets]) {
        if (t.owner.tenant !== tenant || t.owner.workspace !== from) continue;
        this.#targets.delete(key);
        const owner = { ...t.owner, workspace: to };
        const dir = path.join(this.#root, tenant, to, owner.datasource);
        if (!fs.existsSync(dir) && !this.#targets.has(this.#key(owner))) {
          await fsp.mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
          await fsp.rename(t.dir, dir);
          // The workspace's id goes along (a second rename, cut by a crash, needs it there too).
          const idFile = path.join(path.dirname(dir), OWNER);
          if (owner.workspaceId && !fs.existsSync(idFile)) await writeDurable(idFile, JSON.stringify({ workspace_id: owner.workspaceId }), `${idFile}.${crypto.randomBytes(4).toString('hex')}.part`);
          this.#targets.set(this.#key(owner), { ...t, dir, owner });
          continue;
        }
        // Events already arrived under the new name: the old segments join them, renamed
        // in order after them. A batch whose insert was interrupted (its manifest is there) goes
        // first, here, under its own names (so its own dedup token: renamed, an insert that did
        // land would be stored again); and its manifest goes before any segment moves (a kill
        // -9 mid-move left a manifest naming moved segments, and the next start took the batch
        // for stored and deleted the segments still there).
        const manifest = path.join(t.dir, MANIFEST);
        const left = await readManifest(manifest);
        if (left) {
          const present = left.filter((n) => fs.existsSync(path.join(t.dir, n)));
          if (present.length === left.length) {
            try {
              await this.#flushFn(owner, left.map((n) => path.join(t.dir, n)));
              for (const n of left) await fsp.rm(path.join(t.dir, n), { force: true });
            } catch (e) {
              this.#log.warn('events flush before a workspace rename failed; its segments move under new names', { target: this.#key(t.owner), err: e });
            }
          } else {
            for (const n of present) await fsp.rm(path.join(t.dir, n), { force: true });
          }
          await fsp.rm(manifest, { force: true });
          const d = await fsp.open(t.dir, 'r');
          try { await d.sync(); } finally { await d.close(); }
        }
        const into = this.#target(owner);
        for (const n of (await fsp.readdir(t.dir)).filter((f) => SEGMENT.test(f)).sort()) {
          const size = (await fsp.stat(path.join(t.dir, n))).size;
          await fsp.rename(path.join(t.dir, n), path.join(into.dir, `${String(this.#nextSeq(into)).padStart(12, '0')}-${this.#bootTag}.ndjson`));
          into.pendingBytes += size;
          into.pendingSegments++;
        }
        await fsp.rm(t.dir, { recursive: true, force: true });
      }
      const old = path.join(this.#root, tenant, from);
      if (fs.existsSync(old) && safeList(old).length === 0) await fsp.rm(old, { recursive: true, force: true });
    });
  }

  /** Drops the buffered segments of a deleted data source. */
  async discard(o: SegmentOwner): Promise<void> {
    const t = this.#targets.get(this.#key(o));
    if (!t) return;
    this.#targets.delete(this.#key(o));
    await this.#removeFolder(t.dir);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}

/**
 * Writes all of `buf`: one write() may store only part of it (a full disk, a file size
 * limit) and still succeed; the write of the rest then reports the error.
 */
async function writeAll(fh: fsp.FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length;) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    if (bytesWritten <= 0) throw new Error('events buffer write stored nothing');
    off += bytesWritten;
  }
}

async function readManifest(file: string): Promise<string[] | undefined> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let m: { segments?: unknown };
  try {
    m = JSON.parse(text) as { segments?: unknown };
  } catch {
    return undefined; // written whole or not at all (tmp + rename); anything else is not ours
  }
  return Array.isArray(m?.segments) && m.segments.every((n) => typeof n === 'string' && SEGMENT.test(n)) ? m.segments as string[] : undefined;
}

/** Writes a small file so that after a crash it is either absent/old or whole (tmp, fsync, rename, fsync dir). */
async function writeDurable(file: string, content: string, tmp = `${file}.tmp`): Promise<void> {
  const fh = await fsp.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
  const d = await fsp.open(path.dirname(file), 'r');
  try { await d.sync(); } finally { await d.close(); }
}

/**
 * ClickHouse errors that say a value could not be evaluated or converted: the rows were valid
 * for the validator, but the engine refuses them (a DEFAULT expression that throws for some
 * rows, `throwIf`, a conversion out of range). The same rows fail every time. Errors of the
 * engine's state (a missing table during a restore, too many parts, no space, memory) are not
 * here: those are retried.
 */
const REFUSED_DATA_CODES = new Set([
  6, 25, 26, 27, 38, 41, 43, 53, 69, 70, 72, 117, 130, 131, 153, 190, 321, 349, 395, 407, 691,
]);

/** An error of the data itself (not of the engine): the same segments would fail again. */
const REJECTED = '.rejected';

/** Bytes of the set-aside segments in a data source's buffer folder. */
function rejectedBytesIn(dir: string): number {
  let n = 0;
  for (const f of safeReaddir(dir)) {
    if (f.endsWith(REJECTED)) { try { n += fs.statSync(path.join(dir, f)).size; } catch { /* gone meanwhile */ } }
  }
  return n;
}

function safeReaddir(dir: string): string[] {
  try { return fs.readdirSync(dir); } catch { return []; }
}

export function isContentError(e: unknown): boolean {
  if (e instanceof QueryFailed) return e.clickhouseCode !== undefined && REFUSED_DATA_CODES.has(e.clickhouseCode);
  // SCHEMA_UNSUPPORTED: a data source with a DEFAULT on a server before 23.3 (events buffered before
  // such data sources were refused): they can never be stored there; quarantined, not retried for ever.
  if (e instanceof RoostError) return e.code === 'INVALID_UTF8' || e.code === 'ROW_TOO_LARGE' || e.code === 'EMPTY_BODY' || e.code === 'SCHEMA_UNSUPPORTED';
  // A fault of the conversion itself (a TypeError: a bug met by what the segment holds) fails the
  // same way at every retry: it held back every later segment of the data source for ever (a JSON
  // path reaching `$.constructor`). The segment goes its own way (quarantined, else set aside).
  return e instanceof TypeError || e instanceof RangeError;
}

/**
 * Where the line's event starts in [from, to): its first byte that is not JSON whitespace (space,
 * tab, CR), or -1 when there is none (a blank line holds no event: see ndjson.ts isBlankLine).
 */
function eventAt(b: Buffer, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return i;
  }
  return -1;
}

/**
 * A line whose first and last bytes are not `{` and `}`. A line opening with 0xEF may open with a
 * BOM (the flush reads a BOM before any line's object): not counted, so the count stays a lower bound.
 */
function plainlyNoObject(first: number, last: number): boolean {
  return (first !== 0x7b || last !== 0x7d) && first !== 0xef;
}

/** The last byte in [from, to) other than a space, a tab or a CR, or -1. */
function lastNonSpace(b: Buffer, from: number, to: number): number {
  for (let i = to - 1; i >= from; i--) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return i;
  }
  return -1;
}

/** How many bytes at the end of `b` start a UTF-8 character that is not complete yet (0..3). */
function incompleteUtf8Tail(b: Buffer): number {
  for (let k = 1; k <= 3 && k <= b.length; k++) {
    const c = b[b.length - k]!;
    if ((c & 0xc0) === 0x80) continue; // a continuation byte: look further back
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return need > k ? k : 0;
  }
  return 0;
}

/** How many line ends come before the first line of `b[0, end)` that is not valid UTF-8. */
function linesBeforeBadUtf8(b: Buffer, end: number): number {
  let n = 0;
  for (let lo = 0; ;) {
    const i = b.indexOf(10, lo);
    const e = i < 0 || i >= end ? end : i;
    if (e === end || !isUtf8(b.subarray(lo, e))) return n;
    n++;
    lo = i + 1;
  }
}

/** Where folders of dropped data sources, workspaces and tenants go before they are removed. */
const TRASH = '.trash';

function notUtf8(line: number): RoostError {
  return new RoostError('INVALID_UTF8', `line ${line} is not valid UTF-8; send the events as UTF-8 text (nothing was stored)`, { details: { line } });
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).isDirectory());
  } catch {
    return [];
  }
}

/**
 * File operations a flush asks of many segments at once (a stat or a removal each): up to this
 * many run together. One after another, each waited for a turn of an event loop busy with the
 * requests still arriving: under 8 clients posting without pause, the stats and removals of a
 * 1,000-segment batch took seconds, and a backlog left by a restarted cell drained slowly.
 */
const FILE_OPS_AT_ONCE = 32;

/** `fn` of every item, FILE_OPS_AT_ONCE at a time; the results in the items' order. A failure rejects (after the running ones end). */
async function eachAtOnce<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed: { e: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try { out[i] = await fn(items[i]!); } catch (e) { failed ??= { e }; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(FILE_OPS_AT_ONCE, items.length) }, worker));
  if (failed) throw failed.e;
  return out;
}
