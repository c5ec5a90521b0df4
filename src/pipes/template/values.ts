/**
 * What template expressions compute with: plain data (strings, numbers,
 * booleans, null, lists, dicts) plus three kinds the renderer knows how to
 * write safely.
 */

/** SQL built by a helper from escaped pieces (identifiers, `sql_and` filters). */
export class Fragment {
  constructor(
    readonly sql: string,
    /** What the fragment reads as inside a string or comment. */
    readonly text: string,
  ) {}
}

/** A checked parameter value: its native value for the template, its literal for SQL. */
export class Param {
  constructor(
    readonly name: string,
    readonly type: string,
    readonly value: unknown,
    readonly sql: string,
    readonly text: string,
  ) {}
}

/**
 * A parameter that was not given and has no default. It is falsy, `sql_and`
 * skips it, and writing it into the SQL fails naming the parameter.
 */
export class Missing {
  constructor(
    readonly name: string,
    readonly type: string,
  ) {}
}

/**
 * A float whose value is whole (`3.0`, `10 / 5`, `Float64(f) * 2`): computed with as its number
 * (plain() gives it), written as Python writes a float (`3.0`), so that ClickHouse reads a
 * Float64 and not a UInt8, as a Float64 parameter is written. (A float with a fraction is a plain
 * JavaScript number: its text is already a float's.) Without it a computed float's type in the
 * result followed the caller's values: `2.5` a Float64, `2` a UInt8.
 */
export class WholeFloat {
  constructor(readonly value: number) {}
}

/** Whether a value is a Python float: a whole one, a number with a fraction, or a Float parameter's value. */
export function isFloat(v: unknown): boolean {
  if (v instanceof WholeFloat) return true;
  if (v instanceof Param) return /^Float(32|64)$/.test(v.type) || (typeof v.value === 'number' && !Number.isInteger(v.value));
  return typeof v === 'number' && !Number.isInteger(v);
}

/** A number computed as a float: a whole one boxed (see WholeFloat). */
export function asFloat(n: number): number | WholeFloat {
  return Number.isInteger(n) ? new WholeFloat(n) : n;
}

/** A template's native view of any value: parameters become their value, fragments their text. */
/**
 * A parameter's values sent as a JSON array: a list as it is, whatever its length. (One request
 * value is comma-separated, `?x=a,b`; a JSON body's `["a,b"]` is one element, not two.)
 */
export class JsonList extends Array<string> {}

export function plain(v: unknown): unknown {
  if (v instanceof Param) return v.value;
  if (v instanceof Fragment) return v.text;
  if (v instanceof Missing) return null;
  if (v instanceof WholeFloat) return v.value;
  return v;
}

/** Python truthiness. */
export function truthy(v: unknown): boolean {
  const p = plain(v);
  if (p === null || p === undefined || p === false || p === 0 || p === 0n || p === '') return false;
  if (Array.isArray(p)) return p.length > 0;
  if (typeof p === 'object') return Object.keys(p as object).length > 0;
  return true;
}

export function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === null;
}

/** A dict with no prototype, so that no key can reach inherited properties. */
export function dict(entries: Iterable<[string, unknown]> = []): Record<string, unknown> {
  const d = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of entries) d[k] = v;
  return d;
}

/** Copies parsed JSON into prototype-less dicts and plain arrays. */
export function fromJson(v: unknown, depth = 0): unknown {
  if (depth > 64) return null;
  if (Array.isArray(v)) return v.map((x) => fromJson(x, depth + 1));
  if (v && typeof v === 'object') return dict(Object.entries(v).map(([k, x]) => [k, fromJson(x, depth + 1)]));
  return v;
}

const sizes = new WeakMap<object, { weight: number; depth: number }>();

/**
 * What walking a list or dict costs and how deep it nests, memoized: template values never
 * change once made, so a list built from others takes one step per item to size.
 */
function size(v: object): { weight: number; depth: number } {
  const known = sizes.get(v);
  if (known !== undefined) return known;
  let w = 1;
  let d = 0;
  const add = (x: unknown) => {
    w += weight(x);
    if (x !== null && typeof x === 'object' && !(x instanceof Param) && !(x instanceof Fragment)) d = Math.max(d, size(x).depth);
  };
  if (Array.isArray(v)) for (const x of v) add(x);
  else for (const [k, x] of Object.entries(v)) { w += k.length; add(x); }
  const s = { weight: w, depth: d + 1 };
  sizes.set(v, s);
  return s;
}

/**
 * What walking a value costs, in steps: a string its length, a list or dict its items (and
 * keys) at every depth, counted again where the same list is held twice (`[l, l]` walks `l`
 * twice).
 */
export function weight(v: unknown): number {
  if (typeof v === 'string') return v.length + 1;
  if (v instanceof Param) return weight(v.value) + v.sql.length;
  if (v instanceof Fragment) return v.sql.length + v.text.length + 1;
  if (v === null || typeof v !== 'object' || v instanceof WholeFloat) return 1;
  return size(v).weight;
}

/** How deep lists and dicts nest in a value (0 for anything else). */
export function nesting(v: unknown): number {
  if (v === null || typeof v !== 'object' || v instanceof Param || v instanceof Fragment || v instanceof WholeFloat) return 0;
  return size(v).depth;
}

/** Python-style equality on plain values. */
export function equal(a: unknown, b: unknown): boolean {
  const x = plain(a);
  const y = plain(b);
  if ((typeof x === 'number' || typeof x === 'bigint' || typeof x === 'boolean') && (typeof y === 'number' || typeof y === 'bigint' || typeof y === 'boolean')) {
    // eslint-disable-next-line eqeqeq
    return Number(x) == Number(y) && (typeof x !== 'bigint' || typeof y !== 'bigint' || x === y);
  }
  if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((e, i) => equal(e, y[i]));
  if (isDict(x) && isDict(y)) {
    const kx = Object.keys(x);
    return kx.length === Object.keys(y).length && kx.every((k) => k in y && equal(x[k], y[k]));
  }
  return x === y;
}

export function typeName(v: unknown): string {
  if (isFloat(v) && !(v instanceof Param)) return 'float';
  const p = plain(v);
  if (p === null || p === undefined) return 'None';
  if (Array.isArray(p)) return 'list';
  if (isDict(p)) return 'dict';
  if (typeof p === 'bigint') return 'int';
  if (typeof p === 'number') return Number.isInteger(p) ? 'int' : 'float';
  if (typeof p === 'string') return 'str';
  if (typeof p === 'boolean') return 'bool';
  return typeof p;
}
