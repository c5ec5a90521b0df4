/**
 * NDJSON → rows: each line is one event; every column takes the value at its
 * JSON path (`json:$.a.b`, default the key of the column's name). Values are written as CSV
 * fields so the native validator checks and encodes them exactly as it does
 * for CSV uploads. Invalid JSON lines go straight to quarantine.
 */
import type { DataSourceColumn } from '../datasources/registry.js';
import type { RejectedRow } from '../native/csv.js';
import type { QuarantineRow } from './quarantine.js';
import type { ImportSource } from './import.js';
import { RoostError } from '../errors.js';
import { ExactNumber, RawJson, exactJson, holdsNumber, holdsUnsafeInteger, mayBeInexact, rawJsonAt, stringifyExact } from './json-exact.js';
import { native } from '../native/addon.js';
import { AHEAD, INLINE_MAX_BYTES, ndjsonWorkerCount, openRemoteConverter, type RemoteConverter, type RemoteResult } from './ndjson-pool.js';

/** `[:]`: every element of an array (Tinybird's syntax for an array of objects' fields). */
const EACH: unique symbol = Symbol('[:]');
type PathStep = string | number | typeof EACH;

/**
 * Parses `$.a.b[0]['c d']` into steps; `$.items[:].id` takes `id` of every element of `items`
 * (an array, for an Array column: see checkJsonPath).
 */
export function parseJsonPath(p: string): PathStep[] {
  if (!p.startsWith('$')) throw new RoostError('SCHEMA_SYNTAX', `JSON path "${p}" must start with $`);
  const steps: PathStep[] = [];
  let i = 1;
  while (i < p.length) {
    if (p[i] === '.') {
      // Letters and digits of any script (a key "ñ" is $.ñ), _, @, $ and -; other keys in brackets.
      const m = /^[\p{L}\p{N}_@$-]+/u.exec(p.slice(i + 1));
      if (!m) throw new RoostError('SCHEMA_SYNTAX', `JSON path "${p}": expected a name after "." at ${i} (a key with other characters goes in brackets: $['a b'])`);
      steps.push(m[0]);
      i += 1 + m[0].length;
    } else if (p.startsWith('[:]', i)) {
      steps.push(EACH);
      i += 3;
    } else if (p[i] === '[') {
      const m = /^\[(?:(\d+)|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\]/.exec(p.slice(i));
      if (!m) throw new RoostError('SCHEMA_SYNTAX', `JSON path "${p}": bad [...] at ${i}: Roost reads [<index>], ['<key>'] and [:] (every element; not [*], negative indexes or ..)`);
      steps.push(m[1] !== undefined ? Number(m[1]) : (m[2] ?? m[3])!.replace(/\\(.)/g, '$1'));
      i += m[0].length;
    } else {
      throw new RoostError('SCHEMA_SYNTAX', `JSON path "${p}": unexpected "${p[i]}" at ${i}`);
    }
  }
  return steps;
}

/**
 * Checks a column's JSON path for its type: each `[:]` makes an array, so a path with n of them
 * needs a column of at least n nested Array types (a `[:]` into a scalar column could store
 * nothing but a quarantine).
 */
export function checkJsonPath(p: string, type: string): PathStep[] {
  const steps = parseJsonPath(p);
  const each = steps.filter((s) => s === EACH).length;
  let depth = 0;
  for (let el: string | null = type; (el = elementType(el)) !== null; ) depth++;
  if (each > depth) {
    throw new RoostError('SCHEMA_SYNTAX', `JSON path "${p}" takes every element of ${each === 1 ? 'an array' : `${each} nested arrays`} ([:]): the column's type must be ${each === 1 ? 'an Array' : `${each} nested Arrays`} (e.g. ${'Array('.repeat(each)}String${')'.repeat(each)}), not ${type}`);
  }
  return steps;
}

/**
 * The value at `steps`, as ClickHouse's JSON path reads it: a key step reads an object's own key
 * (never an inherited member: `$.constructor` of a line without that key was a function, the
 * request a 500, and `$.tags.length` an array's length), an index step an array's element (not
 * an object's key "1").
 */
function at(obj: unknown, steps: PathStep[], from = 0): unknown {
  let v = obj;
  for (let k = from; k < steps.length; k++) {
    const s = steps[k]!;
    // Every element: the rest of the path in each (an element without it is null). A value there
    // that is no array is given as it is, so that the Array column refuses it and the line is
    // quarantined, as a plain path's non-array is (it was taken for a missing path: the column's
    // default stored, the value lost); null is null.
    if (s === EACH) return Array.isArray(v) ? v.map((e) => at(e, steps, k + 1) ?? null) : v;
    if (v === null || typeof v !== 'object' || v instanceof ExactNumber) return undefined;
    if (Array.isArray(v)) {
      if (typeof s !== 'number') return undefined;
      v = v[s];
    } else {
      if (typeof s !== 'string' || !Object.hasOwn(v, s)) return undefined;
      v = (v as Record<string, unknown>)[s];
    }
  }
  return v;
}

/**
 * Each column's JSON path: its own, else the top-level key of its name, as written (ClickHouse's
 * JSONEachRow: a column `a.b` takes the key "a.b", a column `my col` the key "my col"; read as
 * the path `$.a.b` it took a nested value, and `$.my col` failed every append).
 */
export function columnPaths(columns: DataSourceColumn[]): PathStep[][] {
  return columns.map(columnPath);
}

function columnPath(c: DataSourceColumn): PathStep[] {
  return c.jsonPath != null ? checkJsonPath(c.jsonPath, c.type) : [c.name];
}

/**
 * What quarantine keeps of an NDJSON line: the value at each path as text (a string as it is,
 * anything else as its exact JSON; null when absent), or undefined when the line is not JSON.
 */
export function valuesAt(raw: string, paths: PathStep[][]): Array<string | null> | undefined {
  try {
    const obj = exactJson(raw, JSON.parse(raw), true);
    return paths.map((p) => { const v = at(obj, p); return v === undefined || v === null ? null : typeof v === 'string' ? v : stringifyExact(v); });
  } catch {
    return undefined;  // raw only
  }
}

// Most values hold nothing to escape: one test, then the plain concatenation.
const csvQuote = (s: string) => (s.includes('"') ? '"' + s.replace(/"/g, '""') + '"' : '"' + s + '"');
const CH_SPECIAL = /[\\'\n\r\t]/;
const chString = (s: string) => (CH_SPECIAL.test(s)
  ? "'" + s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t') + "'"
  : "'" + s + "'");

/**
 * Facts about a column or element type that every value of it asks for, worked out once per
 * type string (regular expressions per value cost ~10% of events throughput).
 */
interface TypeFacts { inner: string; decimal: boolean; text: boolean; time: boolean; element: string | null }
const typeFacts = new Map<string, TypeFacts>();
function factsOf(t: string): TypeFacts {
  let f = typeFacts.get(t);
  if (!f) {
    let x = t;
    for (let m; (m = /^(?:Nullable|LowCardinality)\((.*)\)$/.exec(x)); ) x = m[1]!;
    const el = /^Array\((.*)\)$/.exec(x);
    f = { inner: x, decimal: /^Decimal/.test(x), text: /^(?:String|FixedString\(\d+\))$/.test(x), time: /^DateTime/.test(x), element: el ? el[1]! : null };
    if (typeFacts.size < 10_000) typeFacts.set(t, f);
  }
  return f;
}

function innerType(t: string): string {
  return factsOf(t).inner;
}

/** The value a missing path takes when the column has no DEFAULT (Tinybird: the type's default). */
function zeroOf(type: string): string {
  const t = innerType(type);
  if (/^(U?Int\d+|Float\d+|Decimal)/.test(t)) return '0';
  if (t === 'Bool' || t === 'Boolean') return 'false';
  if (t === 'Date' || t === 'Date32') return '1970-01-01';
  if (/^DateTime/.test(t)) return '1970-01-01 00:00:00';
  if (t === 'UUID') return '00000000-0000-0000-0000-000000000000';
  if (t === 'IPv4') return '0.0.0.0';
  if (t === 'IPv6') return '::';
  if (/^Array/.test(t)) return '[]';
  if (/^Enum/.test(t)) return '';
  return '';
}

/**
 * An Enum type's labels by value (the type as the schema parser writes it: labels quoted, `\'`,
 * `\\` and `\xHH` escapes), else null. A JSON number in an enum column is the value, as
 * ClickHouse reads JSON: `2` in `Enum8('1' = 2, '2' = 1)` is label '1' — written as the label,
 * since the CSV the conversion writes reads a cell as a label first (it stored label '2').
 */
interface EnumLabels {
  /** Label by value (the value's decimal text). */
  byValue: Map<string, string>;
  /** Values whose decimal text is the label of another value. */
  swapped: Set<string>;
}
const enumMaps = new Map<string, EnumLabels | null>();
function enumLabels(type: string | null): EnumLabels | null {
  if (type === null) return null;
  let m = enumMaps.get(type);
  if (m !== undefined) return m;
  const inner = innerType(type);
  m = null;
  if (/^Enum(?:8|16)\(/.test(inner)) {
    const byValue = new Map<string, string>();
    for (const e of inner.matchAll(/'((?:[^'\\]|\\.)*)'\s*=\s*(-?\d+)/g)) {
      const bytes: number[] = [];
      const text = e[1]!;
      for (let i = 0; i < text.length; i++) {
        if (text[i] === '\\' && text[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) { bytes.push(parseInt(text.slice(i + 2, i + 4), 16)); i += 3; continue; }
        if (text[i] === '\\' && i + 1 < text.length) { i++; }
        bytes.push(...Buffer.from(text[i]!, 'utf8'));
      }
      byValue.set(String(Number(e[2])), Buffer.from(bytes).toString('utf8'));
    }
    const swapped = new Set<string>();
    for (const [value, label] of byValue) if (byValue.has(label) && label !== value) swapped.add(label);
    m = { byValue, swapped };
  }
  if (enumMaps.size < 10_000) enumMaps.set(type, m);
  return m;
}

/**
 * A JSON number in an enum column or element, as the cell the validator reads as that value: the
 * number itself unless it is the text of a label of another value (then the label); a value with
 * no label stays no label.
 */
function enumNumber(v: number | ExactNumber, labels: EnumLabels): string {
  const text = String(v);
  const label = labels.byValue.get(text);
  // (A NUL before the number: no label, nor a number the validator would take for one.)
  if (label === undefined) return `\u0000${text}`;
  return labels.swapped.has(text) ? label : text;
}

/**
 * A JSON number as text for a column (or array element) of type `type`. `String(-0)` is "0",
 * which would drop the sign of a Float's -0. A Decimal gets plain digits: JS prints numbers
 * below 1e-6 or from 1e21 with an exponent (0.00000009 → 9e-8), which is not decimal text.
 */
function numberText(v: number | ExactNumber, type: string | null): string {
  return numberAs(v, type !== null && factsOf(type).decimal);
}
function numberAs(v: number | ExactNumber, decimal: boolean): string {
  const s = Object.is(v, -0) ? '-0' : String(v);
  return decimal ? plainNumber(s) : s;
}

/** True for String/FixedString (through Nullable/LowCardinality): a column or element holding text. */
const isText = (t: string) => factsOf(t).text;

/** The element type of `Array(T)` (through Nullable/LowCardinality), else null. */
function elementType(t: string): string | null {
  return factsOf(t).element;
}

/**
 * Renders an element inside a ClickHouse array literal. `type` is the element's type: an
 * array or object in a text element is its JSON text, as in a String column (not an array literal).
 */
function arrayElement(v: unknown, type: string | null): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return chString(v);
  if (typeof v === 'number' || v instanceof ExactNumber) {
    const labels = enumLabels(type);
    return labels ? chString(enumNumber(v, labels)) : numberText(v, type);
  }
  if (typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && !(type && isText(type))) {
    const inner = type && elementType(type);
    return '[' + v.map((e) => arrayElement(e, inner)).join(',') + ']';
  }
  return chString(stringifyExact(v));
}

/**
 * A JSON number's text without its exponent (1.5e9 → 1500000000, 15e-1 → 1.5), digit for digit
 * (through a double, 1.5771234567891e9 came out as 1577123456.789099932). Text without an
 * exponent, or with one too large to matter (beyond 400: out of any range), is returned as it is.
 */
export function plainNumber(text: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?[eE]([+-]?\d+)$/.exec(text);
  if (!m) return text;
  const exp = Number(m[4]);
  if (Math.abs(exp) > 400) return text;
  const digits = m[2]! + (m[3] ?? '');
  const point = m[2]!.length + exp;
  let whole: string;
  let frac: string;
  if (point <= 0) { whole = '0'; frac = '0'.repeat(-point) + digits; }
  else if (point >= digits.length) { whole = digits + '0'.repeat(point - digits.length); frac = ''; }
  else { whole = digits.slice(0, point); frac = digits.slice(point); }
  whole = whole.replace(/^0+(?=\d)/, '');
  frac = frac.replace(/0+$/, '');
  return `${m[1]}${whole}${frac ? `.${frac}` : ''}`;
}

/**
 * A JSON number for a DateTime/DateTime64 column: seconds since the epoch (a fraction
 * for sub-second precision; ClickHouse reads an integer as ticks for DateTime64, see
 * docs/decisions.md). Written as UTC text with `Z`, so the
 * validator checks its range like any other time; text it cannot place stays as sent.
 */
function epochSeconds(text: string): string {
  // `text` is a JSON number's: an exponent form (1.7e9) is written out first, digit for digit.
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(plainNumber(text));
  if (!m) return text;
  let secs = Number(m[2]);
  let frac = (m[3] ?? '').replace(/0+$/, '');
  if (m[1]) {
    secs = -secs;
    if (frac) {
      // -1.25 s is 1.75 s before the epoch's second -1: floor the seconds, complement the fraction.
      secs -= 1;
      const scale = 10n ** BigInt(frac.length);
      frac = (scale - BigInt(frac)).toString().padStart(frac.length, '0').replace(/0+$/, '');
    }
  }
  const d = new Date(secs * 1000);
  if (!Number.isSafeInteger(secs) || Number.isNaN(d.getTime())) return text;
  const iso = d.toISOString(); // YYYY-MM-DDThh:mm:ss.000Z (years 0000–9999 here)
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? `.${frac}` : ''}Z`;
}

/** What writing a column's values needs, worked out once per import (not per value). */
interface ColumnPlan {
  /** A missing path: the DEFAULT (empty field), NULL for a Nullable, else the type's zero. */
  missing: string;
  /** An explicit null: NULL where the column can hold one (\N, so a DEFAULT does not apply), else as missing. */
  nul: string;
  time: boolean;
  decimal: boolean;
  /** A boolean is 1/0 (integer columns) rather than true/false. */
  intLike: boolean;
  /** An array is an array literal (not its JSON text, as in a text column). */
  arrayLiteral: boolean;
  element: string | null;
  /** An Enum column: its labels by value (a JSON number is the value). */
  enumLabels: EnumLabels | null;
}

function planColumn(col: DataSourceColumn): ColumnPlan {
  const f = factsOf(col.type);
  const zero = csvQuote(zeroOf(col.type));
  // A missing key of an Enum is its lowest value's label (ClickHouse's default of the type, which
  // its own JSON input gives an omitted field), and a null the label of 0 where there is one (as
  // ClickHouse reads it; else quarantined): both were quarantined as an empty value.
  const labels = enumLabels(col.type);
  const lowest = labels && labels.byValue.size ? [...labels.byValue].reduce((a, b) => (Number(b[0]) < Number(a[0]) ? b : a))[1] : undefined;
  const ofZero = labels?.byValue.get('0');
  return {
    missing: col.defaultExpr || col.nullable ? '' : lowest !== undefined ? csvQuote(lowest) : zero,
    nul: col.nullable ? '\\N' : col.defaultExpr ? '' : ofZero !== undefined ? csvQuote(ofZero) : zero,
    time: f.time,
    decimal: f.decimal,
    intLike: /^U?Int/.test(f.inner),
    arrayLiteral: !f.text,
    element: f.element,
    enumLabels: labels,
  };
}

function field(v: unknown, p: ColumnPlan): string {
  if (v === undefined) return p.missing;
  if (v === null) return p.nul;
  if (typeof v === 'string') return csvQuote(v);
  if (v instanceof RawJson) return csvQuote(v.text);
  if (typeof v === 'number' || v instanceof ExactNumber) {
    if (p.enumLabels) return csvQuote(enumNumber(v, p.enumLabels));
    return p.time ? epochSeconds(String(v)) : numberAs(v, p.decimal);
  }
  if (typeof v === 'boolean') return p.intLike ? (v ? '1' : '0') : String(v);
  // An array in a text column is its JSON text, like an object; elsewhere an array literal.
  if (Array.isArray(v) && p.arrayLiteral) {
    let lit = '[';
    for (let i = 0; i < v.length; i++) lit += (i ? ',' : '') + arrayElement(v[i], p.element);
    return csvQuote(lit + ']');
  }
  return csvQuote(stringifyExact(v));
}

const LONE_SURROGATE = /\p{Cs}/u;
/**
 * True when `v` is, or is an array holding, a string with a lone surrogate, where the column
 * (of type `type`) would store it as text. Objects, and arrays in text columns, are stored as
 * JSON text, which keeps such a character as its escape.
 */
function holdsLoneSurrogate(v: unknown, type: string | null): boolean {
  if (typeof v === 'string') return LONE_SURROGATE.test(v);
  if (!Array.isArray(v) || (type !== null && isText(type))) return false;
  const inner = type && elementType(type);
  return v.some((e) => holdsLoneSurrogate(e, inner));
}

/** Deepest nesting of arrays and objects an NDJSON line may have (deeper lines are quarantined). */
export const MAX_JSON_DEPTH = 1000;

/** True when the JSON text `s` nests arrays and objects more than `limit` deep. */
export function nestsDeeperThan(s: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) {
      // Skip a string, escapes included.
      for (i++; i < s.length && s.charCodeAt(i) !== 0x22; i++) if (s.charCodeAt(i) === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * A line with nothing but JSON whitespace (space, tab, CR) holds no event and is skipped.
 * Anything else is an event or, when it is not a JSON object, a quarantined line: never
 * dropped silently. The events buffer counts lines with the same rule (event-buffer.ts).
 */
export function isBlankLine(s: string): boolean {
  return /^[ \t\r]*$/.test(s);
}

/**
 * Line ends inside a CSV row as the native reader counts them (CRLF, CR or LF: one each),
 * so that the validator's line numbers map back to the NDJSON lines they came from.
 */
function lineBreaks(row: string): number {
  let n = 0;
  for (let k = row.search(/[\r\n]/); k >= 0 && k < row.length; k++) {
    const c = row.charCodeAt(k);
    if (c === 13) { n++; if (row.charCodeAt(k + 1) === 10) k++; }
    else if (c === 10) n++;
  }
  return n;
}

let fastLines = 0;
/** Lines the native fast path converted in this thread since it started (for tests). */
export function ndjsonFastLines(): number {
  return fastLines;
}

/**
 * The NDJSON → CSV conversion of one body, fed its bytes a piece at a time (state carries over:
 * a line may span pieces). Line numbers in the quarantine are the NDJSON lines; raw text is
 * the original line. Runs in an ndjson worker thread (ndjson-pool.ts) or, for small bodies,
 * on the server's own thread: the same code either way.
 */
export class NdjsonConverter {
  readonly counts = { lines: 0 };
  private readonly paths: PathStep[][];
  private readonly plans: ColumnPlan[];
  private readonly hasDecimal: boolean;
  private readonly timeCols: number[];
  private readonly textCols: number[];
  private early: QuarantineRow[] = [];
  /**
   * Rows handed to the validator and not yet reported back, in order: their CSV start line,
   * NDJSON line number and raw text. Each batch reports how many rows it covered, and those
   * leave the queue.
   */
  private readonly pending: Array<{ csvLine: number; line: number; raw: string | undefined; buf?: Buffer; start?: number; end?: number }> = [];
  private csvLine = 1;
  /** Text mode: the text of the line not ended yet, in the pieces it came in (joined once it ends). */
  private carryText: string[] = [];
  private carryTextLength = 0;
  private lineNo = 0;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  /**
   * The native fast path (native/core/ndjson/fast.h), unless a column's path takes an array
   * element or a name every object inherits (`$.a[0]`, `$.constructor`: JavaScript's rules), or
   * ROOST_NDJSON_FAST=0. With it the body is handled as bytes (byte mode); without, as text.
   */
  private readonly fast: { run(buf: Uint8Array, start: number, end: number): unknown } | undefined;
  /** The bytes of the line not ended yet, in the pieces they came in (joined once it ends). */
  private carryParts: Buffer[] = [];
  private carryLength = 0;
  /** Lines the fast path took and left in this body; past a share of lines left, it is not asked again. */
  private fastTaken = 0;
  private fastLeft = 0;
  private fastOff = false;
  private readonly lineDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(private readonly columns: DataSourceColumn[], private readonly maxLineBytes = 8 << 20) {
    this.paths = columnPaths(columns);
    this.plans = columns.map(planColumn);
    // Decimal columns, and Float32 ones: a number of more digits than a double keeps was rounded
    // to a double, then to a Float32 — twice, and not always to the Float32 nearest the text
    // (1.0000000596046447753906249 stored as 1.0000001, ClickHouse reads 1). Its text goes on.
    this.hasDecimal = columns.some((c) => /Decimal|Float32/.test(c.type));
    // DateTime/DateTime64 columns: a number is seconds since the epoch, whose fraction (up to 9
    // digits after 10 before the point) a double may not hold: see below.
    this.timeCols = columns.flatMap((c, i) => (/^DateTime/.test(innerType(c.type)) ? [i] : []));
    this.textCols = columns.flatMap((c, i) => (/^(?:Array\()*(?:(?:Nullable|LowCardinality)\()*(?:String|FixedString\(\d+\))\)*$/.test(innerType(c.type)) ? [i] : []));
    // (Enum columns, or arrays of enums, take the JavaScript conversion: a number there is a label to look up.)
    const plain = this.paths.every((p) => p.every((step) => typeof step === 'string' && !(step in Object.prototype))) && !columns.some((c) => /Enum(?:8|16)\(/.test(c.type));
    if (plain && process.env.ROOST_NDJSON_FAST !== '0') {
      this.fast = new (native().NdjsonFast)(columns.map((c, i) => {
        const f = factsOf(c.type);
        const elementText: boolean[] = [];
        for (let el = f.element; el !== null; el = elementType(el)) elementText.push(isText(el));
        return {
          path: this.paths[i], text: f.text, numbersVerbatim: this.textCols.includes(i), time: f.time, intLike: this.plans[i]!.intLike,
          elementText, missing: this.plans[i]!.missing, nul: this.plans[i]!.nul,
        };
      }));
    }
  }

  /** CSV rows for the whole lines of the body so far (a piece of a line waits for the rest). */
  push(chunk: Uint8Array): string | Buffer {
    if (this.fast) {
      const piece = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      const nl = piece.lastIndexOf(10);
      if (nl < 0) {
        // Still inside one line: kept as it is (a long line is not copied again for every piece).
        this.carryParts.push(piece);
        this.carryLength += piece.length;
        this.checkCarried(this.carryLength);
        return '';
      }
      const buf = this.carryLength ? Buffer.concat([...this.carryParts, piece]) : piece;
      const whole = this.carryLength + nl + 1;
      const rest = buf.subarray(whole);
      this.carryParts = rest.length ? [rest] : [];
      this.carryLength = rest.length;
      this.checkCarried(this.carryLength);
      return this.bytes(buf, 0, whole);
    }
    let text: string;
    try {
      text = this.decoder.decode(chunk, { stream: true });
    } catch {
      throw new RoostError('INVALID_UTF8', `the body is not valid UTF-8 (near line ${this.lineNo + 1}); send UTF-8 text`);
    }
    return this.convert(text, false);
  }

  /** CSV rows for what is left at the end of the body. */
  end(): string | Buffer {
    if (this.fast) {
      const last = this.carryParts.length === 1 ? this.carryParts[0]! : Buffer.concat(this.carryParts);
      this.carryParts = [];
      this.carryLength = 0;
      return this.bytes(last, 0, last.length);
    }
    return this.convert('', true);
  }

  /** Lines quarantined before the validator (invalid JSON, ...) since the last call. */
  takeEarly(): QuarantineRow[] {
    return this.early.splice(0);
  }

  /** The quarantine rows of one validator batch's rejected rows; `processed` rows leave the queue. */
  mapRejected(rejected: RejectedRow[], processed: number): QuarantineRow[] {
    const batch = this.pending.splice(0, processed);
    if (rejected.length === 0) return [];
    const byLine = new Map(batch.map((b) => [b.csvLine, b]));
    return rejected.map((r) => {
      const hit = byLine.get(r.line);
      if (hit && hit.raw === undefined) hit.raw = hit.buf!.toString('utf8', hit.start, hit.end);
      return { line: hit?.line ?? r.line, column: r.column, reason: r.reason, raw: hit?.raw ?? r.raw, values: valuesAt(hit?.raw ?? '', this.paths), ...(r.more ? { more: r.more } : {}) };
    });
  }

  /** The line not ended yet, `length` long so far, may not pass the longest line allowed. */
  private checkCarried(length: number): void {
    if (length > this.maxLineBytes) throw new RoostError('ROW_TOO_LARGE', `line ${this.lineNo + 1} is longer than ${this.maxLineBytes} bytes`);
  }

  private convert(text: string, final: boolean): string {
    if (!final && !text.includes('\n')) {
      // Still inside one line: kept, not joined and split again with every piece (a 6 MB line
      // in 64 KiB pieces took 774 ms that way, each piece copying all that came before).
      this.carryText.push(text);
      this.carryTextLength += text.length;
      this.checkCarried(this.carryTextLength);
      return '';
    }
    this.carryText.push(text);
    const all = this.carryText.length === 1 ? text : this.carryText.join('');
    const lines = all.split('\n');
    const rest = final ? '' : lines.pop()!;
    this.carryText = rest ? [rest] : [];
    this.carryTextLength = rest.length;
    this.checkCarried(rest.length);
    let out = '';
    for (const rawLine of lines) out += this.line(rawLine, ++this.lineNo);
    return out;
  }

  /**
   * Byte mode (the native fast path on): the whole lines of buf[s, e) (e is just past a line
   * end, or the end of the body). Lines the fast path converts are taken as they are; each one
   * it leaves (the first on which it stops) goes through line(), then the fast path goes on.
   */
  private bytes(buf: Buffer, s: number, e: number): Buffer {
    const fast = this.fast!;
    const out: Buffer[] = [];
    let rows = '';
    for (let pos = s; pos < e;) {
      if (this.fastOff) {
        // A body most of whose lines the fast path leaves (escapes everywhere, numbers in other
        // forms): asking it for each line costs more than it saves; the rest goes to line().
        let text: string;
        try {
          text = this.lineDecoder.decode(buf.subarray(pos, e));
        } catch {
          throw new RoostError('INVALID_UTF8', `the body is not valid UTF-8 (after line ${this.lineNo}); send UTF-8 text`);
        }
        const lines = text.split('\n');
        if (lines[lines.length - 1] === '') lines.pop();
        for (const l of lines) rows += this.line(l, ++this.lineNo);
        break;
      }
      const [consumed, csv, spans] = fast.run(buf, pos, e) as [number, Buffer, Uint32Array];
      if (spans.length) {
        if (rows) { out.push(Buffer.from(rows)); rows = ''; }
        out.push(csv);
        fastLines += spans.length / 2;
        this.fastTaken += spans.length / 2;
        for (let k = 0; k < spans.length; k += 2) {
          this.counts.lines++;
          this.pending.push({ csvLine: this.csvLine++, line: ++this.lineNo, raw: undefined, buf, start: pos + spans[k]!, end: pos + spans[k + 1]! });
        }
      }
      pos += consumed;
      if (pos >= e) break;
      let nl = buf.indexOf(10, pos);
      if (nl < 0 || nl >= e) nl = e;
      let text: string;
      try {
        text = this.lineDecoder.decode(buf.subarray(pos, nl));
      } catch {
        throw new RoostError('INVALID_UTF8', `the body is not valid UTF-8 (line ${this.lineNo + 1}); send UTF-8 text`);
      }
      rows += this.line(text, ++this.lineNo);
      pos = nl + 1;
      if (++this.fastLeft >= 32 && this.fastLeft * 4 > this.fastTaken) this.fastOff = true;
    }
    if (rows) out.push(Buffer.from(rows));
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** The CSV row of one line ('' for a blank line, or one quarantined before the validator). */
  private line(rawLine: string, lineNo: number): string {
    const { paths, plans, columns, hasDecimal, timeCols, textCols, early, pending } = this;
    let raw = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    // (An event's line starts with '{': only other lines need the blank test.)
    if (raw.charCodeAt(0) !== 0x7b && isBlankLine(raw)) return '';
    // A byte order mark may open any of the files a body is made of (buffered event
    // bodies are concatenated), so it is taken off every line, not only the first.
    if (raw.charCodeAt(0) === 0xfeff) raw = raw.slice(1);
    this.counts.lines++;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      early.push({ line: lineNo, column: null, reason: 'invalid JSON', raw });
      return '';
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      early.push({ line: lineNo, column: null, reason: 'not a JSON object', raw });
      return '';
    }
    // Values are walked recursively (numbers kept exact, JSON text of objects and
    // arrays): nesting past the limit would overflow the stack, fail the request with a
    // 500 and, for a buffered /v0/events body, every flush of its data source after it.
    if (raw.length > 2 * MAX_JSON_DEPTH && nestsDeeperThan(raw, MAX_JSON_DEPTH)) {
      early.push({ line: lineNo, column: null, reason: `JSON nested more than ${MAX_JSON_DEPTH} levels deep`, raw });
      return '';
    }
    let values = paths.map((p) => at(obj, p));
    // Numbers a double cannot hold keep their text (json-exact.ts): lines with
    // an integer beyond 2^53 in a value used, or, for a schema with Decimal columns or a
    // number given to a DateTime column, any run of 16 digits (a double keeps 15: a decimal,
    // or an epoch time's fraction of a second, may have lost some: 1577934245.9999999999
    // became 1577934246).
    if (hasDecimal || timeCols.some((i) => typeof values[i] === 'number') ? mayBeInexact(raw) : values.some(holdsUnsafeInteger)) {
      obj = exactJson(raw, obj);
      values = paths.map((p) => at(obj, p));
    }
    // A text column given a number (or an object or array, kept as JSON) stores the
    // number as it was written: 1.50 stays "1.50", 1e21 stays "1e21", not what a double
    // prints. Other columns keep the parsed value (1e2 is 100 for an Int32).
    // (Only when one holds a number: an array of strings has no text to keep, and parsing
    // the line again for it halved /v0/events throughput.)
    if (textCols.length && textCols.some((i) => holdsNumber(values[i]))) {
      const exact = exactJson(raw, obj, true);
      for (const i of textCols) values[i] = at(exact, paths[i]!);
    }
    // An object or array in a text column is stored as its JSON text as sent, as ClickHouse
    // stores it (written again it lost duplicate keys, spaces and escapes, and moved keys that
    // read as numbers first).
    for (const i of textCols) {
      const v = values[i];
      if (v !== null && typeof v === 'object' && !(v instanceof ExactNumber) && !plans[i]!.arrayLiteral) {
        const text = rawJsonAt(raw, paths[i] as Array<string | number>);  // (no [:] in a text column: checkJsonPath)
        if (text !== undefined) values[i] = new RawJson(text);
      }
    }
    // A lone surrogate (\ud800 without its pair) is valid JSON but no UTF-8 text holds it:
    // stored, it would become U+FFFD, another value than the one sent. Only an escape can
    // write one (the body is checked UTF-8), so lines without "\u" are not looked at.
    // JSON text holds no raw line end or lone surrogate: values get them only from escapes.
    const escaped = raw.includes('\\');
    if (escaped && raw.includes('\\u')) {
      const bad = values.findIndex((v, i) => holdsLoneSurrogate(v, columns[i]!.type));
      if (bad >= 0) {
        early.push({ line: lineNo, column: columns[bad]!.name, reason: 'lone surrogate (an unpaired \\uD800-\\uDFFF escape): not a character UTF-8 can store', raw });
        return '';
      }
    }
    let row = plans.length ? field(values[0], plans[0]!) : '';
    for (let i = 1; i < plans.length; i++) row += ',' + field(values[i], plans[i]!);
    pending.push({ csvLine: this.csvLine, line: lineNo, raw });
    if (escaped) this.csvLine += lineBreaks(row);
    this.csvLine++;
    return row + '\n';
  }
}

/**
 * Converts an NDJSON byte stream into an import source: the body's pieces are converted in an
 * ndjson worker thread (ndjson-pool.ts), off the server's thread (~3 ms of work per 100 KB),
 * except a small body (one piece under INLINE_MAX_BYTES), converted here without the hop.
 */
export function ndjsonSource(body: AsyncIterable<Buffer>, columns: DataSourceColumn[], maxLineBytes = 8 << 20): ImportSource & { counts: { lines: number } } {
  // A bad JSON path is said now, before anything is read (the converter takes them again).
  for (const c of columns) columnPath(c);
  const counts = { lines: 0 };
  let early: QuarantineRow[] = [];
  let inline: NdjsonConverter | undefined;
  let remote: RemoteConverter | undefined;

  async function* chunks(): AsyncGenerator<Buffer> {
    const it = body[Symbol.asyncIterator]();
    const first = await it.next();
    let second: IteratorResult<Buffer> | undefined;
    if (first.done || first.value.length < INLINE_MAX_BYTES) second = await it.next();
    if (first.done || (second?.done && first.value.length < INLINE_MAX_BYTES) || ndjsonWorkerCount() === 0) {
      // Small (or workers off): here, piece by piece (always something per piece, so that
      // rejections map to their batch).
      const conv = inline = new NdjsonConverter(columns, maxLineBytes);
      const step = (out: string | Buffer) => { counts.lines = conv.counts.lines; early.push(...conv.takeEarly()); return typeof out === 'string' ? Buffer.from(out) : out; };
      if (!first.done) yield step(conv.push(first.value));
      if (second && !second.done) yield step(conv.push(second.value));
      if (!second?.done) for (let r = await it.next(); !r.done; r = await it.next()) yield step(conv.push(r.value));
      yield step(conv.end());
      return;
    }
    const conv = remote = openRemoteConverter(columns, maxLineBytes);
    try {
      // Up to AHEAD pieces are in the worker at once: the next piece of the body is read while
      // the previous ones are converted. The answers come back in order.
      const inFlight: Array<Promise<RemoteResult>> = [];
      const take = async () => {
        const r = await inFlight.shift()!;
        counts.lines = r.lines;
        if (r.early.length) early.push(...r.early);
        return Buffer.from(r.csv.buffer, r.csv.byteOffset, r.csv.byteLength);
      };
      // (Each answer is awaited in turn; until then a failure must not count as unhandled.)
      const send = (p: Promise<RemoteResult>) => { p.catch(() => {}); inFlight.push(p); };
      send(conv.push(first.value));
      if (second && !second.done) send(conv.push(second.value));
      if (!second?.done) {
        for (let r = await it.next(); !r.done; r = await it.next()) {
          send(conv.push(r.value));
          while (inFlight.length >= AHEAD) yield await take();
        }
      }
      send(conv.end());
      while (inFlight.length) yield await take();
    } finally {
      // The converter's state stays in the worker until the last batch is mapped; a body that
      // stops early (an error, the client gone) lets go of it here.
      if (!conv.ended) conv.close();
    }
  }

  return {
    counts,
    rowPerLine: true,
    chunks: chunks(),
    takeEarlyRejects: () => { const e = early; early = []; return e; },
    mapRejected: (rejected: RejectedRow[], processed: number) => {
      if (inline) return inline.mapRejected(rejected, processed);
      return remote!.mapRejected(rejected, processed);
    },
    done: () => remote?.close(),
  };
}

/**
 * The body as it comes, once its start shows it is NDJSON: a JSON array (`[{...}, ...]`, a common
 * export) or a pretty-printed object (a first line holding `{` alone, or `{"key": {`) is a 400
 * before anything is taken. Either was answered as a success (202 "1 row", or 200) and then
 * every line of it quarantined as invalid JSON. Only the first line is looked at: a later line
 * that is not an object is quarantined as before.
 */
export async function* ndjsonShaped(body: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const head: Buffer[] = [];
  let size = 0;
  let decided = false;
  let refused: unknown;
  for await (const chunk of body) {
    if (refused !== undefined) {
      // The rest of a small body is read before the 400: answered before its end, a client still
      // sending (fetch) saw the connection closed under it ("fetch failed") instead of the answer.
      size += chunk.length;
      if (size > REFUSED_DRAIN_BYTES) throw refused;
      continue;
    }
    if (decided) { yield chunk; continue; }
    head.push(chunk);
    size += chunk.length;
    const first = firstLine(Buffer.concat(head).subarray(0, 64 * 1024));
    if (first === undefined && size < 64 * 1024) continue;  // (the first line not whole yet)
    decided = true;
    try {
      // (A first line past 64 KiB: its start tells an array.)
      refuseShape(first ?? Buffer.concat(head).subarray(0, 64 * 1024).toString('utf8').replace(/^\uFEFF/, '').trim());
    } catch (e) {
      refused = e;
      continue;
    }
    yield* head;
  }
  if (refused !== undefined) throw refused;
  if (!decided) {
    const text = Buffer.concat(head).toString('utf8').replace(/^\uFEFF/, '').trim();
    refuseShape(text.split(/[\r\n]/)[0]!.trim(), text.length);
    yield* head;
  }
}

/** How much of a refused body is read before its 400 (a larger one is answered at once, its connection closed). */
export const REFUSED_DRAIN_BYTES = 1 << 20;

/** The first line of `head` holding anything but spaces, trimmed; undefined until it has ended. */
function firstLine(head: Buffer): string | undefined {
  const text = head.toString('utf8').replace(/^\uFEFF/, '');
  const start = text.search(/\S/);
  if (start < 0) return undefined;
  const end = text.slice(start).search(/[\r\n]/);
  return end < 0 ? undefined : text.slice(start, start + end).trim();
}

/** A 400 for a first line that shows a JSON array or a pretty-printed object (`length`: the whole body's, when it is all there). */
function refuseShape(first: string, length = Infinity): void {
  if (first.startsWith('[')) throw new RoostError('UNSUPPORTED_FORMAT', "the body is a JSON array: send NDJSON, one JSON object a line with no enclosing [ ] (jq -c '.[]' converts an array); nothing was stored");
  if ((first === '{' && length > 1) || /^\{\s*"(?:[^"\\]|\\.)*"\s*:\s*[[{]?$/.test(first)) {
    throw new RoostError('UNSUPPORTED_FORMAT', 'the body is pretty-printed JSON (an object over several lines): send NDJSON, one whole JSON object a line (jq -c . compacts it); nothing was stored');
  }
}
