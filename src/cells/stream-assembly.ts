/**
 * chdb's streaming call formats every block as a document of its own: a JSON
 * result arrives as one `{"meta", "data", "rows", "statistics"}` object per block
 * (65409 rows by default), a CSVWithNames result repeats its header line before
 * every block, and each Parquet chunk is a whole file. Sent as they come, a large
 * result is not one document. The cell puts the pieces back together as the
 * engine would have written one result: StreamAssembler for the text formats
 * (JSON: the first block's head, every block's rows, the last block's tail with
 * the whole result's `rows` and `elapsed`; *WithNames: the header once), and
 * formats that cannot be spliced (Parquet) are written to a file by the engine
 * and sent from there (`WHOLE_FILE_FORMATS`, see cell-main.ts). A Prometheus result repeats the
 * `# HELP`/`# TYPE` lines of the metric a chunk starts in (a scraper refuses a second HELP line
 * for a metric): a chunk's lines equal to the previous chunk's last ones go. WITH TOTALS: the
 * totals arrive as a chunk of their own, `\n<totals row>\n` then a header — kept without it. In
 * JSON the totals chunk is the last one: `\n\t],\n\n\t"totals": …` then a broken document (its
 * `"data": [` never closed) with the trailer; the totals go between the rows and the trailer.
 */

/** JSON formats with chdb's pretty layout: `"data": [` rows `],` then `"rows": N`. */
const JSON_FORMATS = new Set(['JSON', 'JSONStrings', 'JSONCompact', 'JSONCompactStrings']);
/** Text formats whose every chunk starts with the same header (names; names and types). */
const HEADER_LINES: Record<string, number> = {
  CSVWithNames: 1, TSVWithNames: 1, CSVWithNamesAndTypes: 2, TSVWithNamesAndTypes: 2,
};
/** Binary formats that are one file with a header and a footer: sent whole from a file. */
export const WHOLE_FILE_FORMATS = new Set(['Parquet', 'Arrow', 'ORC', 'Avro']);
/** Default cap on such a result's uncompressed bytes (`ROOST_MAX_FILE_RESULT_BYTES`): 1 GiB. */
export const DEFAULT_MAX_FILE_RESULT_BYTES = 1024 ** 3;

const DATA_OPEN = Buffer.from('\n\t"data":\n\t[\n');
const DATA_CLOSE = Buffer.from('\n\t],\n\n\t"rows": ');
const ROWS_AND_ELAPSED = /^\n\t\],\n\n\t"rows": \d+,\n\n(?:\t"rows_before_limit_at_least": (\d+),\n\n)?\t"statistics":\n\t\{\n\t\t"elapsed": [0-9.eE+-]+,/;
const ROW_SEP = Buffer.from(',\n');
/** How chdb's streamed JSON totals chunk starts: the data array's close, then the totals (or the extremes). */
const TOTALS_OPEN = Buffer.from('\n\t],\n\n\t"totals":');
const EXTREMES_OPEN = Buffer.from('\n\t],\n\n\t"extremes":');
const DATA_END = '\n\t],';
/** The start of the broken document after the totals (a raw newline is never inside a JSON string). */
const DOC_OPEN = Buffer.from('{\n\t"meta":\n');

export class StreamLayoutError extends Error {
  code = 'STREAM_LAYOUT';
}

const startsWith = (b: Buffer, head: Buffer): boolean => b.length >= head.length && b.subarray(0, head.length).equals(head);

/** Bytes that end the header of a CSV/TSV chunk: `lines` line ends outside quotes (CSV quotes with "). */
function headerEnd(b: Buffer, lines: number, csv: boolean): number {
  let quoted = false;
  let seen = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (csv && c === 0x22) quoted = !quoted;
    else if (c === 0x0a && !quoted && ++seen === lines) return i + 1;
  }
  return -1;
}

export class StreamAssembler {
  readonly #format: string;
  #header: Buffer | undefined;
  #wroteRows = false;

  constructor(format: string) {
    this.#format = format;
  }

  /** True when chunks need reassembly for this format (false: send them as they are). */
  static needed(format: string): boolean {
    return JSON_FORMATS.has(format) || format in HEADER_LINES || format === 'Prometheus';
  }

  /** The `# HELP`/`# TYPE` lines of the last metric the previous Prometheus chunk wrote. */
  #promHead: Buffer | undefined;

  /**
   * What to send for one chunk of the stream. `first`/`last`: its place (a result of
   * one chunk is sent as it is); `rows` and `elapsedMs`: the whole result's, used in
   * the last JSON chunk's tail.
   */
  piece(chunk: Buffer, first: boolean, last: boolean, rows: number, elapsedMs: number): Buffer {
    if (first && last) return chunk;
    if (JSON_FORMATS.has(this.#format)) return this.#json(chunk, first, last, rows, elapsedMs);
    if (this.#format === 'Prometheus') return this.#prometheus(chunk, first);
    const lines = HEADER_LINES[this.#format];
    if (lines === undefined) return chunk;
    if (first) {
      const end = headerEnd(chunk, lines, this.#format.startsWith('CSV'));
      if (end < 0) throw new StreamLayoutError(`${this.#format} stream: no header in the first chunk`);
      this.#header = Buffer.from(chunk.subarray(0, end));
      return chunk;
    }
    const h = this.#header!;
    // WITH TOTALS: an empty line and the totals row (then the header again, which goes).
    if (chunk[0] === 0x0a) return chunk.length >= h.length && chunk.subarray(chunk.length - h.length).equals(h) ? chunk.subarray(0, chunk.length - h.length) : chunk;
    if (chunk.length < h.length || !chunk.subarray(0, h.length).equals(h)) throw new StreamLayoutError(`${this.#format} stream: a chunk does not start with the header`);
    return chunk.subarray(h.length);
  }

  #prometheus(chunk: Buffer, first: boolean): Buffer {
    let out = chunk;
    const prev = this.#promHead;
    if (!first && prev && chunk.length >= prev.length && chunk.subarray(0, prev.length).equals(prev)) out = chunk.subarray(prev.length);
    // The last block of `#` lines in this chunk: the head of the metric the next chunk may go on with.
    let end = -1;
    let start = -1;
    for (let i = 0; i < chunk.length;) {
      const nl = chunk.indexOf(0x0a, i);
      const lineEnd = nl < 0 ? chunk.length : nl + 1;
      if (chunk[i] === 0x23) {
        if (end !== i) start = i;
        end = lineEnd;
      }
      i = lineEnd;
    }
    if (start >= 0) this.#promHead = Buffer.from(chunk.subarray(start, end));
    return out;
  }

  #json(chunk: Buffer, first: boolean, last: boolean, rows: number, elapsedMs: number): Buffer {
    if (!first && (startsWith(chunk, TOTALS_OPEN) || startsWith(chunk, EXTREMES_OPEN))) return this.#jsonTotals(chunk, last, rows, elapsedMs);
    const open = chunk.indexOf(DATA_OPEN);
    const close = chunk.lastIndexOf(DATA_CLOSE);
    const bodyStart = open + DATA_OPEN.length;
    // An empty data array is "[\n\n\t]": the close starts right at bodyStart, the body is empty.
    if (open < 0 || close < bodyStart) throw new StreamLayoutError(`${this.#format} stream: unexpected chunk layout`);
    const body = chunk.subarray(bodyStart, close);
    const out: Buffer[] = [];
    if (first) out.push(chunk.subarray(0, bodyStart));
    if (body.length) {
      if (this.#wroteRows) out.push(ROW_SEP);
      out.push(body);
      this.#wroteRows = true;
    }
    if (last) out.push(this.#tail(chunk.toString('latin1', close), '', rows, elapsedMs)); // ASCII; latin1 keeps the bytes as they are
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /**
   * The WITH TOTALS chunk: `\n\t],\n\n\t"totals": …` (the totals as the buffered output has
   * them; with `extremes = 1` the extremes after them, or alone), then a document whose data array never closes, `"data":\n\t[\n,\n\n\t"rows": 0, …`,
   * whose trailer (with rows_before_limit_at_least) ends the result.
   */
  #jsonTotals(chunk: Buffer, last: boolean, rows: number, elapsedMs: number): Buffer {
    if (!last) throw new StreamLayoutError(`${this.#format} stream: a chunk after the totals`);
    const doc = chunk.indexOf(DOC_OPEN, DATA_END.length);
    const open = doc < 0 ? -1 : chunk.indexOf(DATA_OPEN, doc);
    if (open < 0) throw new StreamLayoutError(`${this.#format} stream: unexpected totals chunk`);
    const totals = chunk.toString('latin1', DATA_END.length, doc);
    // The broken document's trailer, with the data array's close it lacks.
    return this.#tail(`\n\t]${chunk.toString('latin1', open + DATA_OPEN.length)}`, totals, rows, elapsedMs);
  }

  /** The last chunk's trailer (`\n\t],\n\n\t"rows": …`) with the whole result's rows and elapsed, the totals (if any) before the rows. */
  #tail(tail: string, totals: string, rows: number, elapsedMs: number): Buffer {
    const m = ROWS_AND_ELAPSED.exec(tail);
    if (!m) throw new StreamLayoutError(`${this.#format} stream: unexpected trailer`);
    // rows_before_limit_at_least (printed with a LIMIT) stays a lower bound: never below the rows sent.
    const rbl = m[1] === undefined ? '' : `\t"rows_before_limit_at_least": ${Math.max(Number(m[1]), rows)},\n\n`;
    const elapsed = (elapsedMs / 1000).toFixed(9);
    const totalsPart = totals ? `${totals},` : '';
    return Buffer.from(`${DATA_END}${totalsPart}\n\n\t"rows": ${rows},\n\n${rbl}\t"statistics":\n\t{\n\t\t"elapsed": ${elapsed},${tail.slice(m[0].length)}`, 'latin1');
  }
}
