/**
 * Quarantine rows: rejected input kept with its original values, the failing
 * column and reason, the import id and the time, in `<name>_quarantine`.
 * Rows are spooled to a temporary file as JSONEachRow while an import runs, so
 * any number of bad rows costs disk, not memory.
 */
import fs from 'node:fs';
import { chTime } from '../service/time.js';
import path from 'node:path';
import crypto from 'node:crypto';
import type { DataSourceColumn } from '../datasources/registry.js';

export interface QuarantineRow {
  line: number;
  column: string | null;
  reason: string;
  raw: string;
  /** Original values by column when they could be split out. */
  values?: Array<string | null>;
  /** The row's other failing columns, each with its reason. */
  more?: Array<{ column: string | null; reason: string }>;
}

/** Splits one CSV row (raw text) into fields; a lenient reader for quarantine only. */
export function splitCsvRow(raw: string, delimiter = ',', quote = '"'): string[] {
  const out: string[] = [];
  let i = 0;
  let field = '';
  let quoted = false;
  while (i < raw.length) {
    const ch = raw[i]!;
    if (quoted) {
      if (ch === quote) {
        if (raw[i + 1] === quote) { field += quote; i += 2; continue; }
        quoted = false; i++; continue;
      }
      field += ch; i++; continue;
    }
    if (ch === quote && field === '') { quoted = true; i++; continue; }
    if (ch === delimiter) { out.push(field); field = ''; i++; continue; }
    field += ch; i++;
  }
  out.push(field);
  return out;
}

/** Removes spool files left in `tmpDir` by imports a crash ended (called once at start). */
export function sweepQuarantineSpools(tmpDir: string): number {
  let n = 0;
  let names: string[] = [];
  try { names = fs.readdirSync(tmpDir); } catch { return 0; }
  for (const f of names) {
    if (!/^quarantine-[0-9a-f]{16}\.ndjson$/.test(f)) continue;
    fs.rmSync(path.join(tmpDir, f), { force: true });
    n++;
  }
  return n;
}

/** A row of `<name>_quarantine` as one JSONEachRow line (without its newline). */
export function quarantineRecord(r: QuarantineRow, columns: DataSourceColumn[], importId: string, now: string): string {
  const rec: Record<string, unknown> = {
    c__import_id: importId,
    // Every failing column, each with its reason at the same place (Tinybird's arrays).
    c__error_column: r.column ? [r.column, ...(r.more ?? []).map((m) => m.column ?? '')] : [],
    c__error: [r.reason, ...(r.column ? (r.more ?? []).map((m) => m.reason) : [])],
    c__line: r.line,
    c__raw: r.raw,
    insertion_date: now,
  };
  const vals = r.values ?? [];
  columns.forEach((c, i) => { rec[c.name] = vals[i] ?? null; });
  return JSON.stringify(rec);
}

export class QuarantineSpool {
  readonly file: string;
  #tmpDir: string;
  /** Opened with the first row: most imports quarantine nothing. */
  #fd: number | undefined;
  #columns: DataSourceColumn[];
  #importId: string;
  count = 0;

  constructor(tmpDir: string, columns: DataSourceColumn[], importId: string) {
    this.#tmpDir = tmpDir;
    this.file = path.join(tmpDir, `quarantine-${crypto.randomBytes(8).toString('hex')}.ndjson`);
    this.#columns = columns;
    this.#importId = importId;
  }

  #open(): number {
    if (this.#fd === undefined) {
      fs.mkdirSync(this.#tmpDir, { recursive: true, mode: 0o700 });
      this.#fd = fs.openSync(this.file, 'w', 0o600);
    }
    return this.#fd;
  }

  add(rows: QuarantineRow[]): void {
    if (!rows.length) return;
    const now = chTime();
    let out = '';
    for (const r of rows) out += quarantineRecord(r, this.#columns, this.#importId, now) + '\n';
    // All of it or an error: a short write (a nearly full disk) must not cut rows the count includes.
    const buf = Buffer.from(out);
    const fd = this.#open();
    for (let off = 0; off < buf.length;) {
      const n = fs.writeSync(fd, buf, off, buf.length - off);
      if (n <= 0) throw Object.assign(new Error('the quarantine spool file took no bytes (disk full?)'), { code: 'ENOSPC' });
      off += n;
    }
    this.count += rows.length;
  }

  /** The spooled rows as a stream of Buffers (call after the import has produced all rows). */
  async *read(): AsyncGenerator<Buffer> {
    fs.fsyncSync(this.#open());
    const s = fs.createReadStream(this.file, { highWaterMark: 1 << 20 });
    for await (const c of s) yield c as Buffer;
  }

  dispose(): void {
    if (this.#fd === undefined) return;
    try { fs.closeSync(this.#fd); } catch { /* closed */ }
    fs.rmSync(this.file, { force: true });
  }
}
