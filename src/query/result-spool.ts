/**
 * A streamed result, taken from the engine as fast as it comes and handed to the client at the
 * client's pace. The tenant's embedded engine runs one statement at a time, and a result it
 * streams is produced only as it is taken: a client reading slowly (or not at all) held every
 * other request of the tenant until the query's time limit. Here what the client has not taken
 * yet waits in memory (up to MEMORY_BYTES), then in an unnamed file under `<data>/tmp` (deleted
 * as it is opened: nothing is left by a crash), up to `maxSpoolBytes`; only past that does the
 * engine wait for the client again, and a client that then takes nothing for `stallMs` is let go
 * (its query cancelled). Order and bytes are the engine's.
 */
import { RoostError } from '../errors.js';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Ctx } from '../http/context.js';
import { writeChunk } from '../http/context.js';

/** Bytes of result held in memory before the rest goes to the spool file. */
const MEMORY_BYTES = 8 << 20;
/**
 * Bytes of all results held in memory at once (this server); past it a result's next bytes go to
 * its spool file. 8 MiB each without a cap let one tenant's clients that read nothing pin the
 * server's memory (100 of them held 826 MiB, found by the isolation round).
 */
const MEMORY_TOTAL_BYTES = wholeAtLeast(process.env.ROOST_RESULT_MEMORY_TOTAL_BYTES, 1 << 20, 256 << 20);
let memoryTotal = 0;

/** Bytes of results held in memory now (all results of this server): `roost_result_memory_bytes`. */
export function resultMemoryBytes(): number {
  return memoryTotal;
}

/** A spool file the disk refuses (full, read-only, not permitted): the engine waits for the client instead. */
// (ENOENT: Node 20's recursive mkdir says so on a read-only disk; or the directory went.)
const SPOOL_REFUSALS: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EROFS', 'EACCES', 'EPERM', 'EIO', 'ENOENT']);

/** Chunks larger than this are taken in pieces of this size. */
const PIECE_BYTES = 1 << 20;

/** Bytes in every result's spool file together (this server), and their cap: past it, results wait for their clients. */
let spooledTotal = 0;
const SPOOL_TOTAL_BYTES = wholeAtLeast(process.env.ROOST_RESULT_SPOOL_TOTAL_BYTES, 1 << 20, 8 * 1024 ** 3);

export interface SpoolOptions {
  /** Directory of the spool file (`<data>/tmp`). */
  dir: string;
  /** Largest spool file; past it the engine waits for the client. */
  maxSpoolBytes: number;
  /** Past the spool's size: a client taking nothing for this long is let go. */
  stallMs: number;
  /** Each chunk as the client gets it (a JSON result's trailer is rewritten). */
  transform?: (chunk: Buffer) => Buffer;
  /** Stops the engine's stream at once (the client left), not at its next chunk. */
  cancel?: () => void;
}

/** Writes `source` to the client; resolves once all of it was handed to the socket. */
export async function pumpResult(ctx: Ctx, source: AsyncIterable<Buffer>, o: SpoolOptions): Promise<void> {
  const memory: Buffer[] = [];
  let memoryBytes = 0;
  let fd: fsp.FileHandle | undefined;
  let fileWritten = 0;
  let fileRead = 0;
  let ended = false;
  let failure: unknown;
  let stopped = false;
  let wakeConsumer: (() => void) | undefined;
  let wakeProducer: (() => void) | undefined;
  const signalConsumer = () => { const w = wakeConsumer; wakeConsumer = undefined; w?.(); };
  const signalProducer = () => { const w = wakeProducer; wakeProducer = undefined; w?.(); };

  const openSpool = async (): Promise<fsp.FileHandle> => {
    fs.mkdirSync(o.dir, { recursive: true });
    const file = path.join(o.dir, `result-spool-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
    const f = await fsp.open(file, 'w+', 0o600);
    await fsp.unlink(file);
    return f;
  };

  const producer = (async () => {
    const it = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        if (stopped) return;
        const r = await it.next();
        if (r.done) break;
        const whole = o.transform ? o.transform(r.value) : r.value;
        // A chunk larger than a piece (a big block, or a result the cell had whole) is taken a piece
        // at a time, each a copy: handed whole to a socket the client does not read, it stayed in
        // memory however large it was; the pieces past what the client takes go to the file, and
        // the chunk is let go.
        for (let at = 0; at < whole.length; at += PIECE_BYTES) {
          const chunk = whole.length <= PIECE_BYTES ? whole : Buffer.from(whole.subarray(at, at + PIECE_BYTES));
          // Straight on while the client keeps up (the writer waits for data); held once it lags.
          if (fd === undefined && (wakeConsumer !== undefined || (memoryBytes + chunk.length <= MEMORY_BYTES && memoryTotal + chunk.length <= MEMORY_TOTAL_BYTES))) {
            memory.push(chunk);
            memoryBytes += chunk.length;
            memoryTotal += chunk.length;
          } else {
            // The file is at its size (per result, and all results' together): the engine waits until
            // the client has read all of it, and the file starts over (its size is what is on disk:
            // bytes read stay in it until then).
            const full = () => fileWritten > 0 && (fileWritten + chunk.length > o.maxSpoolBytes || spooledTotal + chunk.length > SPOOL_TOTAL_BYTES);
            while (!stopped && full() && fileRead < fileWritten) {
              await new Promise<void>((res) => { wakeProducer = res; });
            }
            if (stopped) return;
            if (fd !== undefined && full() && fileRead === fileWritten) {
              await fd.truncate(0);
              spooledTotal -= fileWritten;
              fileWritten = 0;
              fileRead = 0;
            }
            try {
              fd ??= await openSpool();
              let off = 0;
              while (off < chunk.length) off += (await fd.write(chunk, off, chunk.length - off, fileWritten + off)).bytesWritten;
              fileWritten += chunk.length;
              spooledTotal += chunk.length;
            } catch (e) {
              if (!SPOOL_REFUSALS.has(String((e as NodeJS.ErrnoException).code))) throw e;
              // The disk refused the spool (full, read-only): the engine waits for this client
              // instead, as past the spool's size — the result was cut, and logged as a 200. What
              // the file holds goes first; then each chunk waits in memory until it is taken.
              while (!stopped && fd !== undefined && fileRead < fileWritten) await new Promise<void>((res) => { wakeProducer = res; });
              if (stopped) return;
              if (fd !== undefined) {
                await fd.close().catch(() => {});
                spooledTotal -= fileWritten;
                fd = undefined;
                fileWritten = 0;
                fileRead = 0;
              }
              memory.push(chunk);
              memoryBytes += chunk.length;
              memoryTotal += chunk.length;
              signalConsumer();
              while (!stopped && memory.length > 0) await new Promise<void>((res) => { wakeProducer = res; });
              if (stopped) return;
            }
          }
          signalConsumer();
          // Between the pieces of a large chunk the writer gets its turn: a fast reader takes them
          // from memory (without it, all past 8 MiB went through the file, found by review).
          if (whole.length > PIECE_BYTES) await new Promise<void>((r) => setImmediate(r));
        }
      }
    } catch (e) {
      failure = e;
    } finally {
      ended = true;
      signalConsumer();
      // Stopped early (the client left or was let go): the engine's stream is let go, its query cancelled.
      if (stopped) await it.return?.(undefined)?.catch(() => undefined);
    }
  })();

  try {
    for (;;) {
      // Ended by the request's deadline (or the client's going): what is spooled is not sent, so
      // that an HTTP/1.0 client gets the marker saying the result is incomplete right after what
      // its connection holds (it came after the whole spool, at a slow reader's pace, or never).
      if (ctx.signal.aborted) throw failure ?? ctx.deadline ?? new RoostError('CLIENT_CLOSED', 'the client went away; query cancelled');
      if (memory.length) {
        const b = memory.shift()!;
        memoryBytes -= b.length;
        memoryTotal -= b.length;
        signalProducer();
        await writeChunk(ctx, b, o.stallMs, spoolFull);
        continue;
      }
      if (fd !== undefined && fileRead < fileWritten) {
        const n = Math.min(1 << 20, fileWritten - fileRead);
        const b = Buffer.allocUnsafe(n);
        let got = 0;
        while (got < n) got += (await fd.read(b, got, n - got, fileRead + got)).bytesRead;
        fileRead += n;
        signalProducer();
        await writeChunk(ctx, b, o.stallMs, spoolFull);
        continue;
      }
      if (ended) break;
      await new Promise<void>((res) => { wakeConsumer = res; });
    }
    if (failure) throw failure;
  } catch (e) {
    stopped = true;
    o.cancel?.();
    signalProducer();
    throw e;
  } finally {
    await producer;
    spooledTotal -= fileWritten;
    memoryTotal -= memoryBytes;
    memory.length = 0;
    await fd?.close();
  }

  /** The engine is waiting on this client: the spool is at its size. */
  function spoolFull(): boolean {
    return wakeProducer !== undefined;
  }
}

/** A setting's value: a whole number of at least `min`, else `def`. */
function wholeAtLeast(raw: string | undefined, min: number, def: number): number {
  return raw !== undefined && /^\d+$/.test(raw.trim()) && Number(raw) >= min ? Number(raw) : def;
}

/** ROOST_RESULT_SPOOL_BYTES: the largest spool file per result (default 1 GiB, at least 1 MiB). */
export function spoolLimit(raw: string | undefined): number {
  return wholeAtLeast(raw, 1 << 20, 1 << 30);
}

/**
 * ROOST_CLIENT_STALL_MS: whole milliseconds, at least 100; anything else is the default (60 s).
 * Progress is seen only as the kernel takes more of the socket's data, in steps of about a third
 * of its send buffer (megabytes), so a reader of a few tens of KB/s can look stalled for seconds:
 * the default leaves such readers a minute (the query's time limit ends a held engine sooner).
 */
export function stallLimit(raw: string | undefined): number {
  return wholeAtLeast(raw, 100, 60_000);
}

