/**
 * ClickHouse literals and identifiers built from untrusted values, and the
 * checks that turn a request value into a typed value. Every byte a request
 * can put into SQL passes through one of the `quote*`/`escape*` functions
 * here; nothing else writes values into SQL.
 */

import { Fragment, Missing, Param, WholeFloat } from './values.js';
import { ExactNumber, exactJson, stringifyExact } from '../../ingest/json-exact.js';

/** One code point as `\xHH` bytes of its UTF-8 encoding. */
function hexEscape(ch: string): string {
  return [...Buffer.from(ch, 'utf8')].map((b) => '\\x' + b.toString(16).padStart(2, '0').toUpperCase()).join('');
}

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\0': '\\0', '\b': '\\b', '\f': '\\f' };

/**
 * Escapes `s` for the inside of a ClickHouse quoted token closed by `quote`
 * (`'` string, `` ` `` or `"` identifier): backslash and the quote are
 * backslash-escaped, control characters become `\xHH`, lone UTF-16
 * surrogates become U+FFFD (they cannot be encoded as UTF-8).
 */
export function escapeQuoted(s: string, quote: "'" | '`' | '"'): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += '\\' + quote;
    else if (ch in NAMED) out += NAMED[ch];
    else if (cp < 0x20 || cp === 0x7f) out += hexEscape(ch);
    else if (cp >= 0xd800 && cp <= 0xdfff) out += '\uFFFD';
    else out += ch;
  }
  return out;
}

/** A single-quoted ClickHouse string literal whose value is exactly `s`. */
export function quoteString(s: string): string {
  return `'${escapeQuoted(s, "'")}'`;
}

/** Why `name` cannot be an identifier, or null when it can. */
export function identifierProblem(name: string): string | null {
  if (name.length === 0) return 'an identifier cannot be empty';
  if (name.length > 512) return 'an identifier is at most 512 characters';
  // Control characters are never part of a real column name; refusing them
  // keeps the rendered SQL readable in logs.
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'an identifier cannot contain control characters';
  return null;
}

/** A backquoted ClickHouse identifier naming exactly `name` (callers check `identifierProblem` first). */
export function quoteIdentifier(name: string): string {
  return '`' + escapeQuoted(name, '`') + '`';
}

export type ScalarType =
  | 'String' | 'Boolean' | 'Date' | 'DateTime' | 'DateTime64' | 'Float32' | 'Float64' | 'JSON'
  | 'Int8' | 'Int16' | 'Int32' | 'Int64' | 'Int128' | 'Int256'
  | 'UInt8' | 'UInt16' | 'UInt32' | 'UInt64' | 'UInt128' | 'UInt256'
  | 'Int' | 'Integer';

const INT_BITS: Record<string, [bits: number, signed: boolean]> = {
  Int8: [8, true], Int16: [16, true], Int32: [32, true], Int64: [64, true], Int128: [128, true], Int256: [256, true],
  UInt8: [8, false], UInt16: [16, false], UInt32: [32, false], UInt64: [64, false], UInt128: [128, false], UInt256: [256, false],
  // Tinybird's unsized integers: validated as 64-bit signed.
  Int: [64, true], Integer: [64, true],
};

/**
 * The values an integer parameter type takes (`Int32`, `UInt64`, Tinybird's unsized `Int`), or
 * undefined for a type that is not an integer: what checkScalar enforces, and what the OpenAPI
 * document of the endpoints (api/openapi.ts) states as minimum and maximum.
 */
export function integerRange(type: string): { bits: number; min: bigint; max: bigint } | undefined {
  if (!Object.hasOwn(INT_BITS, type)) return undefined;
  const [bits, signed] = INT_BITS[type]!;
  return {
    bits,
    min: signed ? -(1n << BigInt(bits - 1)) : 0n,
    max: signed ? (1n << BigInt(bits - 1)) - 1n : (1n << BigInt(bits)) - 1n,
  };
}

export const SCALAR_TYPES: readonly ScalarType[] = [
  'String', 'Boolean', 'Date', 'DateTime', 'DateTime64', 'Float32', 'Float64', 'JSON',
  ...(Object.keys(INT_BITS) as ScalarType[]),
];

export function isScalarType(t: string): t is ScalarType {
  return (SCALAR_TYPES as readonly string[]).includes(t);
}

/** A validated value: what templates compute with, and the SQL that stands for it. */
export interface Checked {
  value: string | number | bigint | boolean | unknown;
  sql: string;
}

/** Thrown by `checkScalar`; the caller adds the parameter name. */
export class ValueProblem extends Error {}

const INT_RE = /^[+-]?[0-9]+$/;
const FLOAT_RE = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const DATE_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
/** A date, or a date and time (`T`, `t` or a space between), with a fraction and a zone (`Z`, `z`, `+02:00`, `-0500`) optional: ISO 8601 and RFC 3339 (either letter case), as JavaScript's toISOString() writes it, too. */
const DATETIME_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[ Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?([Zz]|[+-][0-9]{2}:?[0-9]{2})?)?$/;
const FLOAT32_MAX = 3.4028234663852886e38;

/** The years a date or time parameter may name (ClickHouse's Date32 and DateTime64 range). */
const RANGE = 'out of range: from 1900-01-01 to 2299-12-31';

function validDate(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return d <= days && y >= 1900 && y <= 2299;
}

/** A number as text, -0 with its sign (String() drops it; Tinybird's Python float keeps it: 1/x is -inf). */
export function numberText(n: number | bigint): string {
  return typeof n === 'number' && Object.is(n, -0) ? '-0' : String(n);
}

/** A float as text in a float form (`1.0`, not `1`, which ClickHouse reads as UInt8), as Python writes it. */
export function floatText(n: number): string {
  const text = numberText(n);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

function scalarText(raw: unknown): string {
  if (typeof raw === 'string') return raw;
  if (typeof raw === 'number' || typeof raw === 'bigint') return numberText(raw);
  if (typeof raw === 'boolean') return raw ? '1' : '0';
  throw new ValueProblem('expected a single value');
}

/**
 * Checks `raw` (a request string, or a value from a template default or a
 * fixed parameter) against `type` and answers its value and SQL literal.
 */
export function checkScalar(type: ScalarType, raw: unknown): Checked {
  if (type === 'String') {
    const s = scalarText(raw);
    return { value: s, sql: quoteString(s) };
  }
  if (type === 'JSON') {
    const text = typeof raw === 'string' ? raw : stringifyExact(raw);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ValueProblem('not valid JSON');
    }
    // Integers past 2^53 stay exact (as Python's json.loads keeps them): a 64-bit id in a JSON
    // filter was rounded (9007199254740993 → ...992) and filtered on another value, silently.
    const exact = exactJson(text, parsed);
    return { value: exact === parsed ? parsed : exactIntegers(exact), sql: quoteString(text) };
  }
  if (type === 'Boolean') {
    if (typeof raw === 'boolean') return { value: raw, sql: raw ? '1' : '0' };
    const s = scalarText(raw).toLowerCase();
    if (s === 'true' || s === '1') return { value: true, sql: '1' };
    if (s === 'false' || s === '0') return { value: false, sql: '0' };
    throw new ValueProblem('expected true, false, 1 or 0');
  }
  const range = integerRange(type);
  if (range) {
    const { bits, min, max } = range;
    if (typeof raw === 'number' && !Number.isInteger(raw)) throw new ValueProblem('not an integer');
    const s = scalarText(raw);
    if (!INT_RE.test(s)) throw new ValueProblem('not an integer');
    if (s.replace(/^[+-]?0*/, '').length > 80) throw new ValueProblem('out of range');
    const n = BigInt(s);
    if (n < min || n > max) throw new ValueProblem(`out of range ${min}..${max}`);
    const value = n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    // ClickHouse reads integer literals wider than 64 bits as Float64; say the type.
    const sql = bits > 64 ? `to${type}(${quoteString(n.toString())})` : n.toString();
    return { value, sql };
  }
  if (type === 'Float32' || type === 'Float64') {
    const s = scalarText(raw);
    if (!FLOAT_RE.test(s)) throw new ValueProblem('not a number');
    const n = Number(s);
    if (!Number.isFinite(n)) throw new ValueProblem('out of range');
    // Out of range when it rounds to infinity as a Float32 (3.4028235e38, how ClickHouse prints the largest, is in).
    if (type === 'Float32' && !Number.isFinite(Math.fround(n))) throw new ValueProblem(`out of range for Float32 (largest ${FLOAT32_MAX})`);
    const text = numberText(n);
    // A bare decimal is a Float64 literal: 0.1 would not equal a Float32 column's 0.1, so a
    // Float32 says its type (as Tinybird writes it). A Float64 keeps a float form, so that
    // `1` is not read as UInt8.
    return { value: n, sql: type === 'Float32' ? `toFloat32(${quoteString(text)})` : floatText(n) };
  }
  if (type === 'Date') {
    const s = scalarText(raw);
    const m = DATE_RE.exec(s);
    if (m && (+m[1] < 1900 || +m[1] > 2299)) throw new ValueProblem(RANGE);
    if (!m || !validDate(+m[1], +m[2], +m[3])) throw new ValueProblem('expected a date YYYY-MM-DD');
    return { value: s, sql: quoteString(s) };
  }
  // DateTime, DateTime64
  const s = scalarText(raw);
  const m = DATETIME_RE.exec(s);
  const bad = `expected ${type === 'DateTime' ? 'YYYY-MM-DD HH:MM:SS' : 'YYYY-MM-DD HH:MM:SS[.fraction]'}`;
  if (m && (+m[1] < 1900 || +m[1] > 2299)) throw new ValueProblem(RANGE);
  if (!m || !validDate(+m[1], +m[2], +m[3])) throw new ValueProblem(bad);
  let [y, mo, d, h, mi, se] = [m[1]!, m[2]!, m[3]!, m[4] ?? '00', m[5] ?? '00', m[6] ?? '00'];
  if (+h > 23 || +mi > 59 || +se > 59) throw new ValueProblem(bad);
  const zone = m[8];
  if (zone && zone !== 'Z' && zone !== 'z') {
    // Roost's times are UTC: a time with an offset is written as the UTC time it names.
    const z = /^([+-])([0-9]{2}):?([0-9]{2})$/.exec(zone)!;
    if (+z[2]! > 14 || +z[3]! > 59) throw new ValueProblem(`${bad} (a zone offset of at most ±14:00)`);
    const offsetMin = (z[1] === '-' ? -1 : 1) * (+z[2]! * 60 + +z[3]!);
    const t = new Date(Date.UTC(+y, +mo - 1, +d, +h, +mi, +se) - offsetMin * 60_000);
    const two = (n: number) => String(n).padStart(2, '0');
    [y, mo, d, h, mi, se] = [String(t.getUTCFullYear()).padStart(4, '0'), two(t.getUTCMonth() + 1), two(t.getUTCDate()), two(t.getUTCHours()), two(t.getUTCMinutes()), two(t.getUTCSeconds())];
    // The range holds for the UTC time written (1900-01-01T00:30+01:00 is 1899-12-31 23:30).
    if (+y < 1900 || +y > 2299) throw new ValueProblem(`${RANGE} (in UTC, after the zone offset)`);
  }
  // A DateTime holds whole seconds: a fraction sent (toISOString()'s milliseconds) is dropped.
  const fraction = type === 'DateTime64' && m[7] !== undefined ? '.' + m[7] : '';
  const text = `${y}-${mo}-${d} ${h}:${mi}:${se}${fraction}`;
  return { value: text, sql: quoteString(text) };
}

/** Neutral value of each type, for rendering a template without request values. */
export function placeholder(type: ScalarType): unknown {
  switch (type) {
    case 'String': return '';
    case 'JSON': return '{}';
    case 'Boolean': return false;
    case 'Date': return '2019-01-01';
    case 'DateTime': return '2019-01-01 00:00:00';
    case 'DateTime64': return '2019-01-01 00:00:00.000';
    default: return 0;
  }
}

/**
 * What a parameter that was not given stands for inside a list or dict being written: its
 * neutral value, or a `TemplateParameterError` (the evaluator's `given`). Without one, a
 * `ValueProblem` naming the parameter.
 */
export type MissingValue = (m: Missing) => unknown;

function missingValue(m: Missing, missing: MissingValue | undefined): unknown {
  if (missing) return missing(m);
  throw new ValueProblem(`parameter "${m.name}" is required (expected ${m.type})`);
}

/**
 * SQL for a template value: strings quoted, lists as arrays, dicts as JSON strings. A typed
 * parameter (`String(x)`) or a helper's SQL (`column(c)`) inside a list is written as it is
 * written alone, its checked literal or quoted identifier (`[String(x)]` is `['v']`, an array
 * of the escaped values, as in Tinybird); inside a dict, by its value.
 */
export function literalOf(v: unknown, depth = 0, missing?: MissingValue): string {
  if (depth > 32) throw new ValueProblem('value is nested too deeply');
  if (v instanceof Param || v instanceof Fragment) return v.sql;
  if (v instanceof Missing) return literalOf(missingValue(v, missing), depth, missing);
  if (v instanceof WholeFloat) return floatText(v.value);
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return quoteString(v);
  if (typeof v === 'boolean') return v ? '1' : '0';
  if (typeof v === 'bigint') return v >= -(1n << 63n) && v < (1n << 64n) ? v.toString() : `toInt256(${quoteString(v.toString())})`;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new ValueProblem('not a finite number');
    return Object.is(v, -0) ? '0' : String(v);
  }
  if (Array.isArray(v)) return '[' + v.map((x) => literalOf(x, depth + 1, missing)).join(', ') + ']';
  if (typeof v === 'object') return quoteString(jsonOf(v, 0, missing));
  throw new ValueProblem('value cannot be written as SQL');
}

/**
 * JSON text of a dict (what `JSON.stringify` writes for plain data), with parameters as their
 * values, helpers' SQL as its text, and integers past 2^53 as their digits (`JSON.stringify`
 * throws on them: a 500).
 */
function jsonOf(v: unknown, depth: number, missing: MissingValue | undefined): string {
  if (depth > 256) throw new ValueProblem('value is nested too deeply');
  if (v instanceof Param) return jsonOf(v.value, depth, missing);
  if (v instanceof Fragment) return JSON.stringify(v.text);
  if (v instanceof Missing) return jsonOf(missingValue(v, missing), depth, missing);
  if (v instanceof WholeFloat) return Object.is(v.value, -0) ? '-0.0' : floatText(v.value);
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map((x) => jsonOf(x, depth + 1, missing)).join(',') + ']';
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return '{' + Object.keys(o).map((k) => `${JSON.stringify(k)}:${jsonOf(o[k], depth + 1, missing)}`).join(',') + '}';
  }
  throw new ValueProblem('value cannot be written as SQL');
}

/** ExactNumber integers (past a double's exact range) as bigints, the template's integers; other values as they are. */
function exactIntegers(v: unknown): unknown {
  if (v instanceof ExactNumber) return /^-?\d+$/.test(v.text) ? BigInt(v.text) : Number(v.text);
  if (Array.isArray(v)) return v.map(exactIntegers);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, exactIntegers(x)]));
  return v;
}
