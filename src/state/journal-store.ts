/**
 * The local state store: `<data>/state/snapshot.json` plus an append-only
 * `journal.log`. Each journal record is `[u32 length][u32 crc32][JSON]`; a
 * write is acknowledged only after fsync. Concurrent appends share one fsync
 * (group commit). At load, a torn tail (a crash mid-write) is cut off at the last
 * whole record and never half-applied; damage with whole records after it is refused.
 */
import fs from 'node:fs/promises';
import { constants as fsc } from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { Doc, LoadedState, Op, StateStore } from './store.js';
import { applyOps } from './store.js';
import { RoostError, StartRefused } from '../errors.js';

const HEADER = 8;

/** The state on disk cannot be read as it is: the server does not start (one line, no repair that would lose changes). */
export class StateUnreadable extends StartRefused {}

/** The offset of the first whole, checksummed record of `data` at or after `from` (undefined: none). */
function nextRecord(data: Buffer, from: number): number | undefined {
  for (let q = from; q + HEADER <= data.length; q++) {
    const len = data.readUInt32LE(q);
    if (len < 2 || q + HEADER + len > data.length || data[q + HEADER] !== 0x7b) continue;  // a record is a JSON object
    const body = data.subarray(q + HEADER, q + HEADER + len);
    if (zlib.crc32(body) !== data.readUInt32LE(q + 4)) continue;
    try { JSON.parse(body.toString('utf8')); return q; } catch { /* not a record */ }
  }
  return undefined;
}
/** Compact when the journal grows past this many bytes. */
const COMPACT_BYTES = 4 * 1024 * 1024;

interface Pending { buf: Buffer; resolve: () => void; reject: (e: unknown) => void }

export class JournalStore implements StateStore {
  readonly kind = 'journal';
  #dir: string;
  #fh: fs.FileHandle | undefined;
  #size = 0;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #compacting = false;
  /** Set when a failed write could not be taken back: appends are refused from then on. */
  #broken: Error | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  get journalPath() { return path.join(this.#dir, 'journal.log'); }
  get snapshotPath() { return path.join(this.#dir, 'snapshot.json'); }

  async load(): Promise<LoadedState> {
    await fs.mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const recovered: string[] = [];
    // A snapshot a crash cut before its rename: never in effect (the journal still holds its
    // changes), and each crashed process left one more (the name carries its pid).
    for (const f of await fs.readdir(this.#dir)) {
      if (f.startsWith('snapshot.json.tmp-')) {
        await fs.rm(path.join(this.#dir, f), { force: true });
        recovered.push(`removed ${f}, a snapshot not finished before a crash`);
      }
    }
    let doc: Doc = {};
    let seq = 0;
    try {
      const snap = JSON.parse(await fs.readFile(this.snapshotPath, 'utf8')) as { seq: number; doc: Doc };
      doc = snap.doc;
      seq = snap.seq;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new StateUnreadable(`the state snapshot ${this.snapshotPath} is unreadable (${(e as Error).message}); restore the state directory from a backup`);
    }
    let data: Buffer;
    try {
      data = await fs.readFile(this.journalPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      data = Buffer.alloc(0);
    }
    let pos = 0;
    while (pos < data.length) {
      if (data.length - pos < HEADER) break;
      const len = data.readUInt32LE(pos);
      const crc = data.readUInt32LE(pos + 4);
      if (pos + HEADER + len > data.length) break;
      const body = data.subarray(pos + HEADER, pos + HEADER + len);
      if (zlib.crc32(body) !== crc) break;
      let rec: { seq: number; ops: Op[] };
      try {
        rec = JSON.parse(body.toString('utf8'));
      } catch {
        break;
      }
      if (rec.seq > seq) {
        applyOps(doc, rec.ops);
        seq = rec.seq;
      }
      pos += HEADER + len;
    }
    if (pos < data.length) {
      // A crash can tear the last record only (each is written and synced before the next): a
      // record that does not read with whole records after it is damage, and cutting there
      // dropped every later change (a deleted tenant's token answered again). Not started then.
      const next = nextRecord(data, pos + 1);
      if (next !== undefined) {
        throw new StateUnreadable(`the state journal ${this.journalPath} is damaged at byte ${pos}, with ${data.length - pos} bytes of records after it (the next whole one at byte ${next}): it is left as it is, not cut there, which would lose every change after the damage; restore the state directory from a backup (or, to start from the changes before the damage only, keep a copy of the journal and truncate it to ${pos} bytes)`);
      }
      // The torn tail is kept beside the journal, for a look.
      const kept = path.join(this.#dir, `journal.log.torn-${Date.now()}`);
      await fs.writeFile(kept, data.subarray(pos), { mode: 0o600 });
      recovered.push(`cut ${data.length - pos} bytes of a torn journal tail at offset ${pos} (a record a crash left unfinished; kept as ${path.basename(kept)})`);
      await fs.truncate(this.journalPath, pos);
    }
    this.#fh = await fs.open(this.journalPath, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_APPEND, 0o600);
    await this.#fh.sync();
    await syncDir(this.#dir);
    this.#size = pos;
    return { doc, seq, recovered };
  }

  append(seq: number, ops: Op[]): Promise<void> {
    const body = Buffer.from(JSON.stringify({ seq, ops }), 'utf8');
    const buf = Buffer.allocUnsafe(HEADER + body.length);
    buf.writeUInt32LE(body.length, 0);
    buf.writeUInt32LE(zlib.crc32(body), 4);
    body.copy(buf, HEADER);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ buf, resolve, reject });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#flushing) return;
    this.#flushing = this.#flushLoop().finally(() => { this.#flushing = undefined; });
  }

  async #flushLoop(): Promise<void> {
    while (this.#queue.length) {
      const batch = this.#queue.splice(0);
      try {
        if (this.#broken) throw this.#broken;
        if (!this.#fh) throw new Error('state store is closed');
        const all = Buffer.concat(batch.map((p) => p.buf));
        // One write() may store only part of the buffer (a full disk, a file size
        // limit) and still succeed: what is missing is written again, and the call
        // after a short write reports the error.
        for (let off = 0; off < all.length;) {
          const { bytesWritten } = await this.#fh.write(all, off, all.length - off);
          if (bytesWritten <= 0) throw new Error('state journal write stored nothing');
          off += bytesWritten;
        }
        await this.#fh.datasync();
        this.#size += all.length;
        for (const p of batch) p.resolve();
      } catch (e) {
        // Whatever part of the failed batch reached the file goes: left there, a torn record
        // would be followed by the next acknowledged ones (which load would then cut off with
        // it), and a whole one would hold the sequence number the next write reuses (load
        // would apply the refused change and skip the acknowledged one).
        if (!this.#broken && this.#fh) {
          try {
            await this.#fh.truncate(this.#size);
            await this.#fh.datasync();
          } catch (e2) {
            // Said to clients as what it is (it was a 500 "report it"); the path and errno go to the log.
            this.#broken = new RoostError('STATE_UNAVAILABLE', "the server's state could not be restored after a write its disk refused: no change is accepted until the server is restarted (reads go on); tell the operator", { cause: e2 });
            process.stderr.write(`roost: the state journal ${this.journalPath} could not be restored after a failed write (${(e2 as Error).message}); changes are refused until the server is restarted\n`);
          }
        }
        const err = e instanceof RoostError ? e : new Error(`cannot write the state journal ${this.journalPath}: ${(e as Error).message}`, { cause: e });
        for (const p of batch) p.reject(err);
      }
    }
  }

  async maybeCompact(seq: number, doc: Doc): Promise<void> {
    if (this.#size < COMPACT_BYTES || this.#compacting) return;
    this.#compacting = true;
    try {
      const snapshot = JSON.stringify({ seq, doc });
      await this.#flushing;
      await writeFileDurable(this.snapshotPath, snapshot);
      // Records at or below `seq` are now in the snapshot and skipped at load,
      // so a crash between the two steps is harmless.
      await this.#fh!.truncate(0);
      await this.#fh!.sync();
      this.#size = 0;
    } finally {
      this.#compacting = false;
    }
  }

  async close(): Promise<void> {
    await this.#flushing;
    await this.#fh?.close();
    this.#fh = undefined;
  }
}

async function syncDir(dir: string): Promise<void> {
  const d = await fs.open(dir, 'r');
  try { await d.sync(); } finally { await d.close(); }
}

/** Writes a file so that after a crash it is either the old or the new content. */
export async function writeFileDurable(file: string, content: string | Buffer, mode = 0o600): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fs.open(tmp, 'w', mode);
  try {
    try {
      await fh.writeFile(content);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    // (A full disk left the half-written file behind, holding what space it had.)
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
  await fs.rename(tmp, file);
  await syncDir(path.dirname(file));
}
