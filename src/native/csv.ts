/**
 * CSV ingest over the native core (native/core/csv): dialect sniffing, schema
 * inference, Tinybird schema parsing and streaming validation into RowBinary.
 *
 * Valid rows cross the N-API boundary as a few buffers per batch (never one JS
 * object per row): a ClickHouse Native block by default (the engine ingests it
 * ~2x faster than RowBinary, see bench/RESULTS.md), RowBinary on request, and
 * RowBinaryWithDefaults whenever a column has a DEFAULT. A Native block comes
 * as `parts`, the block's own column buffers (not copied into one); writers
 * take them one after another. Only rejected rows become objects.
 *
 * @example
 * const v = new CsvValidator({ columns: parseSchema('`id` Int32, `name` String'), hasHeader: true });
 * const a = await v.push(chunk1);
 * const b = await v.finish();
 * // INSERT INTO t SELECT * FROM file('<file holding a.rows + b.rows>', v.format, v.structure)
 */
import { native } from './addon.js';

export type CsvErrorCode =
  | 'ROW_TOO_LARGE'
  | 'INVALID_UTF8'
  | 'SCHEMA_SYNTAX'
  | 'HEADER_MISMATCH'
  | 'UNSUPPORTED_TYPE'
  | 'INVALID_ARGUMENT'
  | 'BUSY';

/** Every error of this module; switch on `code`, never on the message. */
export class CsvError extends Error {
  override readonly name = 'CsvError';
  readonly code: CsvErrorCode;
  /** 1-based physical line (ROW_TOO_LARGE, HEADER_MISMATCH, INVALID_UTF8). */
  readonly line?: number;
  /** 0-based character offset into the schema text (SCHEMA_SYNTAX, UNSUPPORTED_TYPE). */
  readonly offset?: number;
  /** HEADER_MISMATCH: the schema's column names and the header's. */
  readonly expected?: string[];
  readonly found?: string[];
  constructor(
    code: CsvErrorCode,
    message: string,
    data: { line?: number; offset?: number; expected?: string[]; found?: string[]; cause?: unknown } = {},
  ) {
    super(message, data.cause === undefined ? undefined : { cause: data.cause });
    this.code = code;
    this.line = data.line;
    this.offset = data.offset;
    this.expected = data.expected;
    this.found = data.found;
  }
}

export interface CsvDialect {
  /** One of `,` `;` `\t` `|` (any single byte is accepted). */
  delimiter: string;
  /** `"` or `'`. */
  quote: string;
  /** Escape character inside fields, `''` for none (RFC 4180 doubling only). */
  escape: string;
}

export interface SniffedDialect extends CsvDialect {
  hasHeader: boolean;
  newline: '\n' | '\r\n' | '\r';
}

export interface SchemaColumn {
  name: string;
  /** Canonical ClickHouse type, e.g. `Nullable(DateTime64(3))`. */
  type: string;
  nullable: boolean;
  jsonPath: string | null;
  defaultExpr: string | null;
}

export interface InferredColumn {
  name: string;
  type: string;
  nullable: boolean;
  /** Sampled rows with a value in this column (not empty, not missing). */
  present: number;
  /** Sampled rows that reach this column (a short row does not). */
  seen: number;
}

export interface RejectedRow {
  /** 1-based physical line where the row starts. */
  line: number;
  /** The offending column, or null when the whole row is wrong (column count, unterminated quote). */
  column: string | null;
  /** Stable short text, e.g. `not an integer`, `wrong column count`, `invalid UTF-8`. */
  reason: string;
  /** The row as written (without its line end). */
  raw: string;
  /** The row's other failing columns after `column`, each with its reason (the quarantine names them all). */
  more?: Array<{ column: string | null; reason: string }>;
}

/** ClickHouse input format of `Batch.rows`. */
export type RowsFormat = 'Native' | 'RowBinary' | 'RowBinaryWithDefaults';

export interface Batch {
  /**
   * Valid rows encoded in `CsvValidator.format`, as pieces to be written one after another
   * (a Native block's column buffers; one buffer for RowBinary; none for no rows).
   */
  parts: Buffer[];
  /** `parts` in one buffer (copied on first use when there are several); batches concatenate into one valid stream. */
  readonly rows: Buffer;
  rowCount: number;
  rejected: RejectedRow[];
  /** Input bytes fully processed so far (a partial last row is held back). */
  bytesConsumed: number;
  /**
   * Set when the header named the schema's columns in another order: for each schema column,
   * the index of its field in the file's rows (a rejected row's `raw` is in the file's order).
   */
  columnOrder?: number[];
}

const DEFAULT_DIALECT: CsvDialect = { delimiter: ',', quote: '"', escape: '' };
const DELIMITERS = new Set([',', ';', '\t', '|']);

function checkDialect<T extends CsvDialect>(d: T): T {
  const problem = dialectProblem(d);
  if (problem) throw new CsvError('INVALID_ARGUMENT', problem);
  return d;
}

/**
 * What is wrong with a dialect, in words naming the upload's parameters, else undefined. The
 * parser reads bytes: a character outside ASCII (`¦`, `é`: two UTF-8 bytes) was cut to its first
 * byte, which split fields inside other characters and stored text that is not UTF-8.
 */
export function dialectProblem(d: Partial<CsvDialect>): string | undefined {
  const show = (v: string) => (v === '\t' ? '\\t' : v === '\n' ? '\\n' : v === '\r' ? '\\r' : v);
  const names = { delimiter: 'dialect_delimiter', quote: 'dialect_quotechar', escape: 'dialect_escapechar' } as const;
  for (const k of ['delimiter', 'quote', 'escape'] as const) {
    const v = d[k];
    if (v === undefined || (k === 'escape' && v === '')) continue;
    if (typeof v !== 'string' || v.length !== 1 || v.charCodeAt(0) > 0x7f) {
      return `${names[k]} must be one ASCII character${k === 'delimiter' ? ' (\\t for tab)' : ''}; got "${typeof v === 'string' ? v : String(v)}"${typeof v === 'string' && [...v].length === 1 ? ' (outside ASCII: the parser reads bytes; convert the file to use an ASCII character)' : ''}`;
    }
    if (v === '\n' || v === '\r') return `${names[k]} cannot be a line end (rows end at line ends; got "${show(v)}")`;
    if (k === 'escape' && /[A-Za-z0-9\s]/.test(v)) return `dialect_escapechar must be a punctuation character such as \\ (it escapes the quote and itself inside quoted values); got "${show(v)}"`;
  }
  if (d.delimiter !== undefined && d.delimiter === d.quote) return `the delimiter and the quote character are both '${show(d.delimiter)}': give dialect_delimiter and dialect_quotechar different characters (one of them may have been detected from the file)`;
  if (d.escape && d.escape === d.delimiter) return `dialect_escapechar '${show(d.escape)}' is also the delimiter: choose another escape character`;
  return undefined;
}

/**
 * Guesses the dialect of a CSV sample (its first rows; 64 KiB is plenty). With `expectedColumns`
 * (a data source's column count) the delimiter is the one giving that many fields in most rows.
 *
 * @example sniffCsv(Buffer.from('a;b\n1;2\n')) // { delimiter: ';', quote: '"', escape: '', hasHeader: true, newline: '\n' }
 */
export function sniffCsv(sample: Buffer, expectedColumns?: number): SniffedDialect {
  const s = native().csvSniff(sample.subarray(0, 1 << 16), expectedColumns);
  if (!DELIMITERS.has(s.delimiter)) s.delimiter = ',';
  return s as SniffedDialect;
}

/**
 * Suggests a schema from a sample: names from the header (sanitised to
 * identifiers) or `column_00`, ClickHouse types, Nullable when cells are empty.
 * Runs off the JS thread. `complete: false` (the default) ignores a trailing
 * partial row, for samples cut from a larger body.
 */
export async function inferCsvSchema(
  sample: Buffer,
  opts: { dialect?: Partial<CsvDialect>; hasHeader?: boolean; complete?: boolean; maxRows?: number } = {},
): Promise<{ columns: InferredColumn[]; dialect: SniffedDialect; rowsSampled: number }> {
  const sniffed = sniffCsv(sample);
  const dialect: SniffedDialect = { ...sniffed, ...opts.dialect };
  if (opts.hasHeader !== undefined) dialect.hasHeader = opts.hasHeader;
  checkDialect(dialect);
  const r = await native().csvInfer(sample, {
    ...dialect,
    complete: opts.complete ?? false,
    maxRows: opts.maxRows ?? 10_000,
  });
  if (r.invalidUtf8Line !== null) {
    throw new CsvError('INVALID_UTF8', `invalid UTF-8 in the CSV sample at line ${r.invalidUtf8Line}`, {
      line: r.invalidUtf8Line,
    });
  }
  return { columns: r.columns, dialect, rowsSampled: r.rowsSampled };
}

/**
 * Parses Tinybird's schema syntax: `` `name` Type [`json:$.path`] [DEFAULT expr], ... ``.
 * Types are checked against what the validator supports.
 *
 * @throws CsvError SCHEMA_SYNTAX or UNSUPPORTED_TYPE, with `offset`.
 */
export function parseSchema(text: string): SchemaColumn[] {
  const r = native().csvParseSchema(text);
  if (r.error) {
    throw new CsvError(r.error.code, `${r.error.message} at offset ${r.error.offset}`, { offset: r.error.offset });
  }
  return r.columns;
}

/** A column's `` `json:<path>` `` clause, a backtick in the path written twice (as parseSchema reads it). */
export function jsonPathClause(path: string): string {
  return `\`json:${path.replace(/`/g, '``')}\``;
}

/** The schema text of columns (the inverse of parseSchema). */
export function formatSchema(columns: ReadonlyArray<Pick<SchemaColumn, 'name' | 'type'> & Partial<SchemaColumn>>): string {
  return columns
    .map((c) => {
      if (!c.name || c.name.includes('`')) throw new CsvError('INVALID_ARGUMENT', `invalid column name ${JSON.stringify(c.name)}`);
      let s = `\`${c.name}\` ${c.type}`;
      if (c.jsonPath) s += ` ${jsonPathClause(c.jsonPath)}`;
      if (c.defaultExpr) s += ` DEFAULT ${c.defaultExpr}`;
      return s;
    })
    .join(', ');
}

/**
 * Checks a CSV header against the schema's column names (exact, in order).
 * @throws CsvError HEADER_MISMATCH listing expected and found names.
 */
export function checkCsvHeader(header: readonly string[], columns: ReadonlyArray<{ name: string }>): void {
  const expected = columns.map((c) => c.name);
  if (expected.length === header.length && expected.every((n, i) => n === header[i])) return;
  throw headerMismatch(expected, [...header], 1);
}

function headerMismatch(expected: string[], found: string[], line: number): CsvError {
  return new CsvError(
    'HEADER_MISMATCH',
    `CSV header does not match the schema: expected [${expected.join(', ')}], found [${found.join(', ')}]`,
    { line, expected, found },
  );
}

/**
 * The format and `structure` argument for reading the validator's output with
 * ClickHouse: `INSERT INTO t SELECT * FROM file(path, <format>, '<structure>')`.
 * Columns with a DEFAULT force RowBinaryWithDefaults, and their DEFAULT
 * expressions travel in the structure so the engine evaluates them for cells
 * left empty (the same rule the validator applies).
 */
export function csvStructure(
  columns: ReadonlyArray<SchemaColumn>,
  preferred: 'Native' | 'RowBinary' = 'Native',
): { format: RowsFormat; structure: string } {
  const withDefaults = columns.some((c) => c.defaultExpr);
  const structure = columns
    .map((c) => `\`${c.name}\` ${c.type}${withDefaults && c.defaultExpr ? ` DEFAULT ${c.defaultExpr}` : ''}`)
    .join(', ');
  return { format: withDefaults ? 'RowBinaryWithDefaults' : preferred, structure };
}

export interface CsvValidatorOptions {
  /** Parsed columns, or schema text in Tinybird's syntax. */
  columns: ReadonlyArray<SchemaColumn> | string;
  dialect?: Partial<CsvDialect>;
  /** The first row is a header, checked against the column names. */
  hasHeader?: boolean;
  /** Largest row in bytes; a larger row fails the stream with ROW_TOO_LARGE. Default 8 MiB. */
  maxRowBytes?: number;
  /** Encoding of valid rows when no column has a DEFAULT. Default 'Native'. */
  format?: 'Native' | 'RowBinary';
  /** A row whose quoted value spans lines is rejected (a quote sniffed as `'`). */
  quotesOnOneLine?: boolean;
  /** Every line is a row, an empty one a row of one empty field (NDJSON converted to CSV: a one-column row may be empty). */
  blankLinesAreRows?: boolean;
}

/**
 * Streaming validator. push() chunks as they arrive (split anywhere); each
 * resolves with the rows completed so far; finish() flushes the last row.
 * Calls are queued, so awaiting each one is optional; parsing runs off the JS
 * thread. Stored + rejected rows == data rows received.
 */
export class CsvValidator {
  readonly columns: SchemaColumn[];
  readonly format: RowsFormat;
  /** The `structure` argument matching `format`. */
  readonly structure: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  #native: any;
  #tail: Promise<unknown> = Promise.resolve();
  #finished = false;

  constructor({ columns, dialect = {}, hasHeader = false, maxRowBytes = 8 << 20, format = 'Native', quotesOnOneLine = false, blankLinesAreRows = false }: CsvValidatorOptions) {
    this.columns = typeof columns === 'string' ? parseSchema(columns) : [...columns];
    if (this.columns.length === 0) throw new CsvError('INVALID_ARGUMENT', 'a schema needs at least one column');
    if (!Number.isInteger(maxRowBytes) || maxRowBytes < 1) throw new CsvError('INVALID_ARGUMENT', 'maxRowBytes must be a positive integer');
    if (format !== 'Native' && format !== 'RowBinary') throw new CsvError('INVALID_ARGUMENT', 'format must be Native or RowBinary');
    const d = checkDialect({ ...DEFAULT_DIALECT, ...dialect });
    try {
      this.#native = new (native().CsvValidator)(formatSchema(this.columns), { ...d, hasHeader, maxRowBytes, format, quotesOnOneLine, blankLinesAreRows });
    } catch (e) {
      throw translate(e);
    }
    this.format = this.#native.format;
    this.structure = this.#native.structure;
  }

  /**
   * One chunk, or several validated as if concatenated (one hop off the JS
   * thread, and no copy of small pieces into one buffer). The array is copied;
   * the buffers must not change until the promise settles.
   */
  push(chunk: Buffer | readonly Buffer[]): Promise<Batch> {
    const pieces = Buffer.isBuffer(chunk) ? chunk : Array.isArray(chunk) && chunk.every((c) => Buffer.isBuffer(c)) ? [...chunk] : null;
    if (!pieces) throw new CsvError('INVALID_ARGUMENT', 'push expects a Buffer or an array of Buffers');
    if (this.#finished) throw new CsvError('INVALID_ARGUMENT', 'push after finish');
    return this.#enqueue(() => this.#native.push(pieces));
  }

  finish(): Promise<Batch> {
    if (this.#finished) throw new CsvError('INVALID_ARGUMENT', 'finish called twice');
    this.#finished = true;
    return this.#enqueue(() => this.#native.finish());
  }

  #enqueue(run: () => Promise<NativeBatch>): Promise<Batch> {
    const next = this.#tail.then(run).then(
      (b: NativeBatch) => this.#decode(b),
      (e: unknown) => {
        throw translate(e, this.columns);
      },
    );
    this.#tail = next.catch(() => undefined);
    return next;
  }

  #decode(b: NativeBatch): Batch {
    const rejected: RejectedRow[] = [];
    const buf = b.rejected;
    let o = 0;
    for (let i = 0; i < b.rejectedCount; i++) {
      const line = Number(buf.readBigUInt64LE(o));
      const col = buf.readInt32LE(o + 8);
      const rlen = buf.readUInt8(o + 12);
      const reason = buf.toString('latin1', o + 13, o + 13 + rlen);
      o += 13 + rlen;
      const rawLen = buf.readUInt32LE(o);
      const raw = buf.toString('utf8', o + 4, o + 4 + rawLen);
      o += 4 + rawLen;
      const n = buf.readUInt8(o);
      o += 1;
      let more: RejectedRow['more'];
      for (let k = 0; k < n; k++) {
        const c = buf.readInt32LE(o);
        const l = buf.readUInt8(o + 4);
        (more ??= []).push({ column: this.columns[c]?.name ?? null, reason: buf.toString('latin1', o + 5, o + 5 + l) });
        o += 5 + l;
      }
      rejected.push({ line, column: col < 0 ? null : (this.columns[col]?.name ?? null), reason, raw, ...(more ? { more } : {}) });
    }
    const parts = b.parts;
    let whole: Buffer | undefined;
    return {
      parts,
      get rows() { return (whole ??= parts.length === 1 ? parts[0]! : Buffer.concat(parts)); },
      rowCount: b.rowCount,
      rejected,
      bytesConsumed: b.bytesConsumed,
      ...(b.columnOrder ? { columnOrder: b.columnOrder } : {}),
    };
  }
}

interface NativeBatch {
  columnOrder?: number[];
  parts: Buffer[];
  rowCount: number;
  rejected: Buffer;
  rejectedCount: number;
  bytesConsumed: number;
}

const CODES = new Set<string>(['ROW_TOO_LARGE', 'INVALID_UTF8', 'SCHEMA_SYNTAX', 'HEADER_MISMATCH', 'UNSUPPORTED_TYPE', 'BUSY']);

/** The one seam where native errors become CsvError. */
function translate(e: unknown, columns?: SchemaColumn[]): unknown {
  if (e instanceof CsvError) return e;
  const err = e as { code?: string; message?: string; line?: number; offset?: number; found?: string[] };
  if (!err || typeof err.code !== 'string' || !CODES.has(err.code)) return e;
  if (err.code === 'HEADER_MISMATCH' && columns) {
    return headerMismatch(columns.map((c) => c.name), err.found ?? [], err.line ?? 1);
  }
  return new CsvError(err.code as CsvErrorCode, err.message ?? err.code, { line: err.line, offset: err.offset, cause: e });
}
