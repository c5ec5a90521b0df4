/**
 * JSON numbers kept exact. `JSON.parse` turns every number into a double, so
 * 9007199254740993 becomes 9007199254740992 and 0.100000000000000000001 becomes
 * 0.1: an Int64, UInt64 or Decimal column would store another value than the one
 * sent, silently. Lines that may hold such a number are parsed again here, and
 * numbers a double cannot hold exactly keep their source text as an ExactNumber;
 * everything else is what `JSON.parse` gives. Which lines: see `ndjson.ts`.
 */

/** The index of the first character at or after `i` that is not JSON whitespace. */
function afterWhitespace(text: string, i: number): number {
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    i++;
  }
  return i;
}

/** A JSON number whose value a double cannot hold exactly: its text as sent. */
export class ExactNumber {
  constructor(readonly text: string) {}
  valueOf(): number {
    return Number(this.text);
  }
  toString(): string {
    return this.text;
  }
}

/** 16 or more digits and dots in a row: the only places a number a double cannot hold can be. */
const MAYBE_INEXACT = /[\d.]{16}/;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** True when `text` may hold a number with more digits than a double keeps (a cheap scan, false positives allowed). */
export function mayBeInexact(text: string): boolean {
  return MAYBE_INEXACT.test(text);
}

/** True when a parsed value is or holds (in an array or object, at any depth) a number passing `test`. */
function holdsNumberWhere(v: unknown, test: (n: number) => boolean): boolean {
  if (typeof v === 'number') return test(v);
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) {
    for (const x of v) if (holdsNumberWhere(x, test)) return true;
    return false;
  }
  for (const k in v) if (holdsNumberWhere((v as Record<string, unknown>)[k], test)) return true;
  return false;
}
const unsafe = (n: number) => (n > MAX_SAFE || n < -MAX_SAFE) && Number.isFinite(n);
const any = () => true;

/**
 * True when a parsed value is or holds an integer beyond 2^53 in magnitude: only
 * such values can have lost digits of an integer on the way through a double.
 */
export function holdsUnsafeInteger(v: unknown): boolean {
  return holdsNumberWhere(v, unsafe);
}
/** True when `v` is or holds (in an array or object, at any depth) a number. */
export function holdsNumber(v: unknown): boolean {
  return holdsNumberWhere(v, any);
}
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** True when a double holds the number `text` (a JSON number) exactly, as far as its digits go. */
function fitsDouble(text: string): boolean {
  const plain = !/[.eE]/.test(text);
  if (plain) return Number.isSafeInteger(Number(text));
  // Up to 15 significant digits survive a round trip through a double.
  const mantissa = text.replace(/^-/, '').replace(/[eE].*$/, '').replace('.', '').replace(/^0+/, '');
  return mantissa.replace(/0+$/, '').length <= 15;
}

/**
 * Parses one JSON text like `JSON.parse`, numbers a double cannot hold exactly
 * becoming ExactNumber. The text must be valid JSON: callers parse it with
 * `JSON.parse` first (which also gives the error for bad input) and pass that
 * result, which is returned as it is when `text` holds no long number.
 * `everyNumber` keeps the text of every number (for text columns: 1.50 stays "1.50").
 */
export function exactJson(text: string, parsed: unknown, everyNumber = false): unknown {
  if (!everyNumber && !MAYBE_INEXACT.test(text)) return parsed;
  let i = 0;
  const ws = (): void => { i = afterWhitespace(text, i); };
  const str = (): string => {
    const start = i++;
    while (text.charCodeAt(i) !== 0x22) i += text.charCodeAt(i) === 0x5c ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const o: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') { i++; return o; }
      for (;;) {
        ws();
        const k = str();
        ws();
        i++; // ':'
        // Like JSON.parse: an own property even for "__proto__", the last duplicate wins.
        Object.defineProperty(o, k, { value: value(), writable: true, enumerable: true, configurable: true });
        ws();
        if (text[i++] === ',') continue;
        return o;
      }
    }
    if (c === '[') {
      i++;
      const a: unknown[] = [];
      ws();
      if (text[i] === ']') { i++; return a; }
      for (;;) {
        a.push(value());
        ws();
        if (text[i++] === ',') continue;
        return a;
      }
    }
    if (c === '"') return str();
    if (c === 't') { i += 4; return true; }
    if (c === 'f') { i += 5; return false; }
    if (c === 'n') { i += 4; return null; }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) throw new SyntaxError(`exactJson: unexpected "${c}" at ${i}`);
    i += m[0].length;
    return !everyNumber && fitsDouble(m[0]) ? Number(m[0]) : new ExactNumber(m[0]);
  };
  try {
    return value();
  } catch {
    return parsed; // not reached for valid JSON; the double values are the fallback
  }
}

/** JSON.stringify that writes ExactNumbers as the numbers they are. */
export function stringifyExact(v: unknown): string {
  if (v instanceof ExactNumber) return v.text;
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return '[' + v.map((e) => (e === undefined ? 'null' : stringifyExact(e))).join(',') + ']';
  if (v !== null && typeof v === 'object') {
    const parts: string[] = [];
    for (const [k, e] of Object.entries(v)) if (e !== undefined) parts.push(JSON.stringify(k) + ':' + stringifyExact(e));
    return '{' + parts.join(',') + '}';
  }
  return JSON.stringify(v);
}

/** An object or array stored in a text column: its JSON text as sent (ClickHouse keeps it so). */
export class RawJson {
  constructor(readonly text: string) {}
}

/**
 * The source text of the value at `steps` in `text` (valid JSON: callers parsed it first), or
 * undefined when there is none. A key step reads an object's key (a repeated key: its last
 * value, as JSON.parse takes it), an index step an array's element.
 */
export function rawJsonAt(text: string, steps: readonly (string | number)[]): string | undefined {
  let i = 0;
  const n = text.length;
  const ws = (): void => { i = afterWhitespace(text, i); };
  const skipString = (): void => {
    for (i++; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x5c) i++;
      else if (c === 0x22) { i++; return; }
    }
  };
  const skipValue = (): void => {
    ws();
    const c = text[i];
    if (c === '"') return skipString();
    if (c === '{' || c === '[') {
      let depth = 0;
      while (i < n) {
        const d = text[i];
        if (d === '"') { skipString(); continue; }
        if (d === '{' || d === '[') depth++;
        else if ((d === '}' || d === ']') && --depth === 0) { i++; return; }
        i++;
      }
      return;
    }
    while (i < n && !/[,\]}\s]/.test(text[i]!)) i++;
  };
  let start = 0;
  let end = n;
  for (const s of steps) {
    i = start;
    ws();
    let found: [number, number] | undefined;
    if (typeof s === 'string') {
      if (text[i] !== '{') return undefined;
      i++;
      ws();
      if (text[i] === '}') return undefined;
      for (;;) {
        ws();
        const ks = i;
        skipString();
        const key = JSON.parse(text.slice(ks, i)) as string;
        ws();
        i++; // ':'
        ws();
        const vs = i;
        skipValue();
        if (key === s) found = [vs, i];
        ws();
        if (text[i] !== ',') break;
        i++;
      }
    } else {
      if (text[i] !== '[') return undefined;
      i++;
      ws();
      if (text[i] === ']') return undefined;
      for (let k = 0; ; k++) {
        ws();
        const vs = i;
        skipValue();
        if (k === s) { found = [vs, i]; break; }
        ws();
        if (text[i] !== ',') break;
        i++;
      }
    }
    if (!found) return undefined;
    [start, end] = found;
  }
  i = start;
  ws();
  // (The whole line, `json:$`: without the spaces after it.)
  let e = end;
  while (e > i && /[ \t\r\n]/.test(text[e - 1]!)) e--;
  return text.slice(i, e);
}
