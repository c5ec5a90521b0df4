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
import type { Logger } from '../log/logger.js';

export interface SegmentOwner { tenant: string; workspace: string; datasource: string }

/** Imports the given NDJSON files into a data source; throws to retry later. */
export type FlushFn = (owner: SegmentOwner, files: string[]) => Promise<void>;

interface Target { dir: string; owner: SegmentOwner; pendingBytes: number; seq: number; writing: Promise<void> }

const SEGMENT = /^(\d{12})\.ndjson$/;

export class EventBuffer {
  #root: string;
  #log: Logger;
  #flushFn: FlushFn;
  #targets = new Map<string, Target>();
  #timer: NodeJS.Timeout;
  #flushing: Promise<void> | undefined;
  #batchBytes: number;
  #failures = new Map<string, { count: number; until: number }>();

  constructor(opts: { root: string; log: Logger; flush: FlushFn; intervalMs?: number; batchBytes?: number }) {
    this.#root = opts.root;
    this.#log = opts.log;
    this.#flushFn = opts.flush;
    this.#batchBytes = opts.batchBytes ?? 32 * 1024 * 1024;
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
      t = { dir, owner: o, pendingBytes: 0, seq: last + 1, writing: Promise.resolve() };
      this.#targets.set(key, t);
    }
    return t;
  }

  /** Finds segments left by an earlier process. */
  #recover(): void {
    if (!fs.existsSync(this.#root)) return;
    for (const tenant of fs.readdirSync(this.#root)) {
      for (const workspace of safeList(path.join(this.#root, tenant))) {
        for (const datasource of safeList(path.join(this.#root, tenant, workspace))) {
          const t = this.#target({ tenant, workspace, datasource });
          for (const f of fs.readdirSync(t.dir)) {
            if (SEGMENT.test(f)) t.pendingBytes += fs.statSync(path.join(t.dir, f)).size;
            // A body that was still arriving at the crash was never acknowledged.
            else if (f.endsWith('.part')) fs.rmSync(path.join(t.dir, f), { force: true });
          }
          if (t.pendingBytes) this.#log.info('events buffer recovered', { tenant, workspace, datasource, bytes: t.pendingBytes });
        }
      }
    }
  }

  /**
   * Writes one request body as its own segment file and fsyncs it (and the
   * directory) before resolving. A body that fails to arrive leaves nothing.
   */
  async append(o: SegmentOwner, body: AsyncIterable<Buffer>): Promise<{ bytes: number; lines: number }> {
    const t = this.#target(o);
    const name = String(t.seq++).padStart(12, '0') + '.ndjson';
    const tmp = path.join(t.dir, `.${name}.part`);
    const fh = await fsp.open(tmp, 'w', 0o600);
    let bytes = 0;
    let lines = 0;
    let last = 10;
    try {
      for await (const chunk of body) {
        await fh.write(chunk);
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
        last = chunk[chunk.length - 1] ?? last;
      }
      if (bytes > 0 && last !== 10) { await fh.write('\n'); lines++; bytes++; }
      await fh.sync();
    } catch (e) {
      await fh.close();
      await fsp.rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    if (bytes === 0) { await fsp.rm(tmp, { force: true }); return { bytes, lines }; }
    await fsp.rename(tmp, path.join(t.dir, name));
    const d = await fsp.open(t.dir, 'r');
    try { await d.sync(); } finally { await d.close(); }
    t.pendingBytes += bytes;
    if (t.pendingBytes >= this.#batchBytes) void this.flush();
    return { bytes, lines };
  }

  /** Moves every buffered segment into the engine; resolves when done (or failed, to retry). */
  flush(): Promise<void> {
    const run = async () => {
      for (const [key, t] of this.#targets) {
        if (t.pendingBytes === 0) continue;
        const f = this.#failures.get(key);
        if (f && Date.now() < f.until) continue;
        const segments = (await fsp.readdir(t.dir)).filter((n) => SEGMENT.test(n)).sort();
        let batch: string[] = [];
        let size = 0;
        const sendBatch = async () => {
          if (!batch.length) return;
          await this.#flushFn(t.owner, batch.map((n) => path.join(t.dir, n)));
          for (const n of batch) await fsp.rm(path.join(t.dir, n), { force: true });
          t.pendingBytes = Math.max(0, t.pendingBytes - size);
          batch = [];
          size = 0;
        };
        try {
          for (const n of segments) {
            const s = (await fsp.stat(path.join(t.dir, n))).size;
            if (size > 0 && size + s > this.#batchBytes) await sendBatch();
            batch.push(n);
            size += s;
          }
          await sendBatch();
          this.#failures.delete(key);
        } catch (e) {
          const count = (f?.count ?? 0) + 1;
          const wait = Math.min(30_000, 500 * 2 ** count);
          this.#failures.set(key, { count, until: Date.now() + wait });
          this.#log.error('events flush failed; the segments stay and are retried', { target: key, retry_in_ms: wait, err: e });
        }
      }
    };
    const p = (this.#flushing ?? Promise.resolve()).then(run, run);
    this.#flushing = p.finally(() => { if (this.#flushing === p) this.#flushing = undefined; });
    return p;
  }

  /** Bytes not yet in the engine (all data sources). */
  get pendingBytes(): number {
    let n = 0;
    for (const t of this.#targets.values()) n += t.pendingBytes;
    return n;
  }

  /** Drops every buffered segment of a deleted tenant. */
  async discardTenant(tenant: string): Promise<void> {
    for (const [key, t] of this.#targets) if (t.owner.tenant === tenant) this.#targets.delete(key);
    await fsp.rm(path.join(this.#root, tenant), { recursive: true, force: true });
  }

  /** Drops the buffered segments of a deleted data source. */
  async discard(o: SegmentOwner): Promise<void> {
    const t = this.#targets.get(this.#key(o));
    if (!t) return;
    this.#targets.delete(this.#key(o));
    await fsp.rm(t.dir, { recursive: true, force: true });
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).isDirectory());
  } catch {
    return [];
  }
}
