/**
 * Worker threads that convert NDJSON bodies (ndjson.ts, NdjsonConverter) off the server's
 * thread. JSON.parse and the CSV text of each event cost ~3 ms per 100 KB, all of it on the
 * one thread every request shares: under /v0/events load that thread was the bottleneck
 * (docs/decisions.md, "NDJSON is converted in worker threads").
 *
 * A body is one stream, kept by one worker (a line may span pieces); its pieces go in order
 * and their answers come back in order. The converter's state (the rows not yet reported by
 * the validator, to map rejections back to their lines) stays in the worker until the import
 * ends (`close`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { DataSourceColumn } from '../datasources/registry.js';
import type { RejectedRow } from '../native/csv.js';
import type { QuarantineRow } from './quarantine.js';
import { ERROR_STATUS, RoostError, type ErrorCode } from '../errors.js';

/** A body of one piece under this size is converted on the server's thread: the hop would cost more. */
export const INLINE_MAX_BYTES = 32 * 1024;
/** Pieces of one body in a worker at once (the next is read while the previous are converted). */
export const AHEAD = 4;
/** A worker with nothing to do for this long ends (a new one starts with the next body). */
const IDLE_MS = 30_000;

/**
 * How many workers: ROOST_NDJSON_WORKERS, else as many as cores, at least two and at most four
 * (measured on 2 cores: one worker was no faster than none, two were; bench/RESULTS.md).
 * 0 converts every body on the server's thread.
 */
export function ndjsonWorkerCount(): number {
  const env = process.env.ROOST_NDJSON_WORKERS;
  if (env !== undefined && env !== '' && /^\d+$/.test(env)) return Math.min(Number(env), 64);
  return Math.min(4, Math.max(2, os.availableParallelism()));
}

let bodies = 0;
/** Bodies converted in workers since the process started. */
export function ndjsonWorkerBodies(): number {
  return bodies;
}

/** Stops every worker (their bodies fail, retryable); the next body starts a new one. For tests. */
export async function terminateNdjsonWorkers(): Promise<void> {
  const all = slots.splice(0);
  for (const s of all) fail(s, new Error('worker terminated'));
  await Promise.all(all.map((s) => s.worker.terminate()));
}

export interface RemoteResult {
  /** CSV rows (UTF-8). */
  csv: Uint8Array;
  /** Lines quarantined before the validator, in this piece. */
  early: QuarantineRow[];
  /** Event lines so far. */
  lines: number;
}

export interface RemoteConverter {
  push(chunk: Uint8Array): Promise<RemoteResult>;
  end(): Promise<RemoteResult>;
  mapRejected(rejected: RejectedRow[], processed: number): QuarantineRow[] | Promise<QuarantineRow[]>;
  /** Lets go of the converter's state in the worker (idempotent). */
  close(): void;
  readonly ended: boolean;
}

interface Call { resolve: (v: unknown) => void; reject: (e: unknown) => void }
interface Slot { worker: Worker; streams: number; calls: Map<number, Call>; dead?: Error; idle?: NodeJS.Timeout }

const slots: Slot[] = [];
let nextId = 1;
let nextSeq = 1;

const here = path.dirname(fileURLToPath(import.meta.url));
/** The compiled worker: beside this file in dist/, or dist/ seen from src/ (tests). */
function workerEntry(): string {
  const beside = path.join(here, 'ndjson-worker.js');
  if (fs.existsSync(beside)) return beside;
  const fromSrc = path.resolve(here, '../../dist/src/ingest/ndjson-worker.js');
  if (fs.existsSync(fromSrc)) return fromSrc;
  throw new Error(`NDJSON worker not built (looked for ${beside} and ${fromSrc}): run "npm run build:ts"`);
}

function fail(slot: Slot, err: Error): void {
  if (slot.dead) return;
  slot.dead = err;
  const i = slots.indexOf(slot);
  if (i >= 0) slots.splice(i, 1);
  if (slot.idle) clearTimeout(slot.idle);
  for (const c of slot.calls.values()) c.reject(new RoostError('INTERNAL', `the NDJSON converter stopped (${err.message}); nothing was stored, send the events again`, { retryable: true }));
  slot.calls.clear();
}

function startSlot(): Slot {
  const worker = new Worker(workerEntry());
  const slot: Slot = { worker, streams: 0, calls: new Map() };
  worker.unref();
  worker.on('message', (m: { seq: number; ok: boolean; error?: { code?: string; message: string; details?: Record<string, unknown>; name?: string } }) => {
    const c = slot.calls.get(m.seq);
    if (!c) return;
    slot.calls.delete(m.seq);
    if (slot.calls.size === 0) worker.unref();
    if (m.ok) c.resolve(m);
    else {
      const e = m.error!;
      c.reject(e.code && e.code !== 'INTERNAL' && e.code in ERROR_STATUS ? new RoostError(e.code as ErrorCode, e.message, e.details ? { details: e.details } : {})
        : e.name === 'TypeError' ? new TypeError(e.message) : e.name === 'RangeError' ? new RangeError(e.message) : new Error(e.message));
    }
  });
  worker.on('error', (e) => fail(slot, e));
  worker.on('exit', (code) => fail(slot, new Error(`worker exited with code ${code}`)));
  slots.push(slot);
  return slot;
}

/** The worker for a new body: a new one while there are fewer than the count, else the least busy. */
function slotFor(): Slot {
  if (slots.length < ndjsonWorkerCount()) return startSlot();
  let best = slots[0]!;
  for (const s of slots) if (s.streams < best.streams) best = s;
  return best;
}

function post(slot: Slot, msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): void {
  if (!slot.dead) slot.worker.postMessage(msg, transfer);
}

function call<T>(slot: Slot, msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<T> {
  if (slot.dead) return Promise.reject(new RoostError('INTERNAL', `the NDJSON converter stopped (${slot.dead.message}); nothing was stored, send the events again`, { retryable: true }));
  const seq = nextSeq++;
  if (slot.calls.size === 0) slot.worker.ref();
  return new Promise<T>((resolve, reject) => {
    slot.calls.set(seq, { resolve: resolve as (v: unknown) => void, reject });
    slot.worker.postMessage({ ...msg, seq }, transfer);
  });
}

export function openRemoteConverter(columns: DataSourceColumn[], maxLineBytes: number): RemoteConverter {
  const slot = slotFor();
  const id = nextId++;
  bodies++;
  slot.streams++;
  if (slot.idle) { clearTimeout(slot.idle); slot.idle = undefined; }
  post(slot, { op: 'open', id, columns, maxLineBytes });
  let closed = false;
  const conv = {
    ended: false,
    push(chunk: Uint8Array): Promise<RemoteResult> {
      // A copy with a buffer of its own, moved (not cloned: a Buffer is often a view of a
      // larger pool, which a clone would copy whole).
      const own = new Uint8Array(chunk);
      return call<RemoteResult>(slot, { op: 'push', id, chunk: own }, [own.buffer]);
    },
    end(): Promise<RemoteResult> {
      conv.ended = true;
      return call<RemoteResult>(slot, { op: 'end', id });
    },
    mapRejected(rejected: RejectedRow[], processed: number): QuarantineRow[] | Promise<QuarantineRow[]> {
      // No rejection: the rows only leave the worker's queue (in order with the rest, no answer).
      if (rejected.length === 0) { post(slot, { op: 'drop', id, processed }); return []; }
      return call<{ rows: QuarantineRow[] }>(slot, { op: 'map', id, rejected, processed }).then((r) => r.rows);
    },
    close(): void {
      if (closed) return;
      closed = true;
      post(slot, { op: 'close', id });
      if (--slot.streams === 0 && !slot.dead) {
        slot.idle = setTimeout(() => { if (slot.streams === 0) void slot.worker.terminate(); }, IDLE_MS);
        slot.idle.unref();
      }
    },
  };
  return conv;
}
