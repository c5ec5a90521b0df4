/**
 * Watches an endpoint's streamed result on its way to the client: counts rows
 * (JSON trailer, or lines of NDJSON, CSV and TSV; not Parquet) and reads the
 * engine's statistics from the JSON trailer for the call log,
 * and completes the trailer to Tinybird's shape where the engine left out
 * `rows_before_limit_at_least` (the embedded cell's streaming path does).
 */
import type { QueryStats } from '../cells/engine.js';
import { ROW_FILTER_LIMIT } from '../datasources/name-map.js';

const HOLD = 512;
/** Nothing to write (zero-length, so never written into). */
const EMPTY = Buffer.alloc(0);
/**
 * The JSON format's trailer: its keys stand on lines of their own after one tab (the data's keys
 * after three, a map's on the line of its value). Without the line and tab, a result column named
 * `rows` with a `statistics` map beside it was read as the trailer — its row gained a key and the
 * call log took the caller's numbers. The last match in the held bytes is the trailer.
 */
const TRAILER = /\n\t"rows":\s*(\d+),(\s*)(?:("rows_before_limit_at_least")|"statistics":\s*\{\s*"elapsed":\s*[0-9.eE+-]+,\s*"rows_read":\s*(\d+),\s*"bytes_read":\s*(\d+))/g;
const TRAILER_STATS = /\n\t"statistics":\s*\{\s*"elapsed":\s*[0-9.eE+-]+,\s*"rows_read":\s*(\d+),\s*"bytes_read":\s*(\d+)/g;

/** The last match of a global pattern in `text`, or null. */
function lastMatch(re: RegExp, text: string): RegExpExecArray | null {
  re.lastIndex = 0;
  let last: RegExpExecArray | null = null;
  for (let m; (m = re.exec(text)); ) last = m;
  return last;
}

export class ResultTail {
  #format: string;
  #held: Buffer = EMPTY;
  #newlines = 0;
  #rows = 0;
  #readRows = 0;
  #readBytes = 0;

  /** Inside a `"` quoted CSV field, where a newline is part of the value. */
  #quoted = false;
  /** The last byte seen was a row-ending newline (or nothing was seen yet). */
  #atLineStart = true;
  /** Prometheus: the line being read is a sample (not a `#` comment, not empty). */
  #sampleLine = false;
  /** Line number (from 0) of the last empty line: before a WITH TOTALS row in CSV and TSV. */
  #lastBlank = -1;
  /** The query asks for totals (WITH TOTALS): a TSV line that is empty may be their separator. */
  #totals = false;
  /** The query's only LIMIT is a row filter's (see query()). */
  #filterLimitOnly = false;

  constructor(format: string) { this.#format = format; }

  /**
   * The SQL about to run. With `WITH TOTALS`, CSV and TSV results end with an empty line
   * and the totals row, which are not result rows (JSON keeps totals apart; JSONEachRow leaves
   * them out). In CSV an empty line is never a row (an empty value is `""`); in TSV it is one
   * when the only column is an empty string, so there it counts as the separator only when
   * the query asks for totals.
   */
  query(sql: string): void {
    this.#totals = /\bWITH\s+TOTALS\b/i.test(sql);
    // A row filter's LIMIT with no LIMIT of the query's own: ClickHouse's rows_before_limit_at_least
    // is then the rows the filter lets through (10,310 for a query answering 11), not the query's.
    this.#filterLimitOnly = sql.includes(ROW_FILTER_LIMIT) && !/\bLIMIT\b/i.test(sql.split(ROW_FILTER_LIMIT).join(''));
  }

  /** A row-ending newline at `at` of `chunk`: counted, and noted when its line is empty. */
  #newline(chunk: Buffer, at: number): void {
    if (at === 0 ? this.#atLineStart : chunk[at - 1] === 10) this.#lastBlank = this.#newlines;
    this.#newlines++;
  }

  /** JSON's trailer has the statistics; the line formats tell their row count; Parquet's footer too. */
  get useful(): boolean { return this.#format !== ''; }

  /** Parquet: the last chunks of the file, where its footer (with the row count) is. */
  #tailChunks: Buffer[] = [];
  #tailBytes = 0;

  /**
   * A chunk of a 200 result on its way out: what to write now (JSON holds its
   * last bytes back until `finish`, where the trailer is).
   */
  pass(chunk: Buffer): Buffer {
    if (this.#format === 'Parquet') {
      this.#tailChunks.push(chunk);
      this.#tailBytes += chunk.length;
      while (this.#tailChunks.length > 1 && this.#tailBytes - this.#tailChunks[0]!.length >= PARQUET_FOOTER_MAX) this.#tailBytes -= this.#tailChunks.shift()!.length;
      return chunk;
    }
    if (this.#format === 'Prometheus') {
      // One sample per line; `# HELP` / `# TYPE` lines and empty lines are not rows.
      for (let i = 0; i < chunk.length;) {
        if (this.#atLineStart) { this.#sampleLine = chunk[i] !== 35 && chunk[i] !== 10; this.#atLineStart = false; }
        const nl = chunk.indexOf(10, i);
        if (nl < 0) break;
        if (this.#sampleLine) this.#rows++;
        this.#atLineStart = true;
        i = nl + 1;
      }
      return chunk;
    }
    if (this.#format === 'JSONEachRow' || this.#format.startsWith('TSV')) {
      // JSON and TSV escape newlines inside values, so every newline ends one row.
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) this.#newline(chunk, i);
      if (chunk.length) this.#atLineStart = chunk[chunk.length - 1] === 10;
      return chunk;
    }
    if (this.#format.startsWith('CSV')) {
      // A quoted field may hold newlines; a `""` inside it toggles twice.
      let quoted = this.#quoted;
      // The next quote is looked for once and kept until passed: looked for again after each
      // newline, every row of a quote-free chunk scanned the rest of it (quadratic: a 450 KB
      // chunk of 65,536 rows took 200 ms, and CSV results streamed at 2 MB/s).
      let q = chunk.indexOf(34);
      for (let i = 0; i < chunk.length;) {
        if (q >= 0 && q < i) q = chunk.indexOf(34, i);
        const nl = quoted ? -1 : chunk.indexOf(10, i);
        if (nl >= 0 && (q < 0 || nl < q)) { this.#newline(chunk, nl); i = nl + 1; continue; }
        if (q < 0) break;
        quoted = !quoted;
        i = q + 1;
      }
      this.#quoted = quoted;
      if (chunk.length) this.#atLineStart = !quoted && chunk[chunk.length - 1] === 10;
      return chunk;
    }
    const all = this.#held.length ? Buffer.concat([this.#held, chunk]) : chunk;
    if (all.length <= HOLD) { this.#held = all; return EMPTY; }
    this.#held = Buffer.from(all.subarray(all.length - HOLD));
    return all.subarray(0, all.length - HOLD);
  }

  /** What is left to write at the end of a 200 result (the completed JSON trailer). */
  finish(): Buffer {
    if (this.#format === 'Parquet') {
      this.#rows = parquetRows(Buffer.concat(this.#tailChunks)) ?? 0;
      this.#tailChunks = [];
      return EMPTY;
    }
    if (this.#format !== 'JSON') return EMPTY;
    // latin1: one char per byte, so the held bytes (which may start inside a
    // multi-byte UTF-8 character) come back unchanged; the trailer is ASCII.
    let text = this.#held.toString('latin1');
    this.#held = EMPTY;
    const m = lastMatch(TRAILER, text);
    if (!m) return Buffer.from(text, 'latin1');
    this.#rows = Number(m[1]);
    if (!m[3]) {
      this.#readRows = Number(m[4]);
      this.#readBytes = Number(m[5]);
      // The rows sent are a true lower bound of the rows before LIMIT.
      const at = m.index + m[0].indexOf('"statistics"');
      text = `${text.slice(0, at)}"rows_before_limit_at_least": ${m[1]},${m[2]}${text.slice(at)}`;
    } else {
      // The rows sent, as for a query without a LIMIT, rather than the row filter's count.
      if (this.#filterLimitOnly) text = text.slice(0, m.index) + text.slice(m.index).replace(/"rows_before_limit_at_least":\s*\d+/, `"rows_before_limit_at_least": ${m[1]}`);
      const s = lastMatch(TRAILER_STATS, text.slice(m.index));
      if (s) { this.#readRows = Number(s[1]); this.#readBytes = Number(s[2]); }
    }
    return Buffer.from(text, 'latin1');
  }

  /** `{rows, readRows, readBytes}` as far as known (0 when not). */
  /**
   * The engine's own statistics, for the formats without a JSON trailer (a JSON
   * result's trailer already said, and is what the client saw).
   */
  stats(s: QueryStats): void {
    if (this.#format === 'JSON' || s.rowsRead === undefined) return;
    this.#readRows = s.rowsRead;
    this.#readBytes = s.bytesRead ?? 0;
  }

  result(): { rows: number; readRows: number; readBytes: number } {
    const lines = this.#format === 'JSONEachRow' || this.#format.startsWith('CSV') || this.#format.startsWith('TSV');
    if (!lines) return { rows: this.#rows, readRows: this.#readRows, readBytes: this.#readBytes };
    // The empty line and the totals row after it are not rows (CSV always; TSV when asked for).
    const totals = this.#format !== 'JSONEachRow' && this.#lastBlank >= 0 && this.#lastBlank === this.#newlines - 2 && (this.#format.startsWith('CSV') || this.#totals);
    // The header line is not a row either.
    const header = this.#format.endsWith('WithNames') ? 1 : 0;
    return { rows: Math.max(0, this.#newlines - header - (totals ? 2 : 0)), readRows: this.#readRows, readBytes: this.#readBytes };
  }
}

/** Footers are read up to this size (a result with a larger one logs 0 rows). */
const PARQUET_FOOTER_MAX = 4 * 1024 * 1024;

/**
 * The row count of a whole Parquet file from its end: `<FileMetaData><length: u32 LE>PAR1`,
 * FileMetaData in Thrift's compact protocol, whose field 3 is `num_rows` (i64). Undefined
 * when the bytes given do not hold the whole footer or it does not read as one.
 */
export function parquetRows(tail: Buffer): number | undefined {
  if (tail.length < 12 || tail.toString('latin1', tail.length - 4) !== 'PAR1') return undefined;
  const len = tail.readUInt32LE(tail.length - 8);
  const start = tail.length - 8 - len;
  if (len <= 0 || start < 0) return undefined;
  let pos = start;
  const end = tail.length - 8;
  const byte = (): number => {
    if (pos >= end) throw new Error('truncated');
    return tail[pos++]!;
  };
  const varint = (): bigint => {
    let out = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = byte();
      out |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return out;
    }
    throw new Error('varint too long');
  };
  const zigzag = (v: bigint): bigint => (v >> 1n) ^ -(v & 1n);
  const skip = (type: number, depth: number): void => {
    if (depth > 64) throw new Error('too deep');
    switch (type) {
      case 1: case 2: return; // booleans (in a struct field header)
      case 3: byte(); return;
      case 4: case 5: case 6: varint(); return;
      case 7: pos += 8; return;
      case 8: { const n = Number(varint()); pos += n; return; } // (the length first: `pos +=` would read pos before it)
      case 9: case 10: {
        const h = byte();
        const n = (h >> 4) === 15 ? Number(varint()) : h >> 4;
        const elem = h & 0x0f;
        for (let i = 0; i < n; i++) {
          if (elem === 1 || elem === 2) byte();
          else skip(elem, depth + 1);
        }
        return;
      }
      case 11: {
        const n = Number(varint());
        if (n === 0) return;
        const kv = byte();
        for (let i = 0; i < n; i++) { skip(kv >> 4, depth + 1); skip(kv & 0x0f, depth + 1); }
        return;
      }
      case 12: {
        let id = 0;
        for (;;) {
          const h = byte();
          if (h === 0) return;
          id = (h >> 4) ? id + (h >> 4) : Number(zigzag(varint()));
          skip(h & 0x0f, depth + 1);
        }
      }
      default: throw new Error(`unknown type ${type}`);
    }
  };
  try {
    let id = 0;
    for (;;) {
      const h = byte();
      if (h === 0) return undefined;
      id = (h >> 4) ? id + (h >> 4) : Number(zigzag(varint()));
      const type = h & 0x0f;
      if (id === 3 && type === 6) {
        const rows = zigzag(varint());
        return rows >= 0n && rows <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(rows) : undefined;
      }
      skip(type, 0);
      if (pos > end) return undefined;
    }
  } catch {
    return undefined;
  }
}
