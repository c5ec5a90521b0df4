/**
 * The allowlist of functions a template may call: Tinybird's typed parameter
 * functions and helpers. Nothing outside this table is callable.
 */
import { stringifyExact } from '../../ingest/json-exact.js';
import { TemplateParameterError, TemplateRaisedError } from './errors.js';
import {
  checkScalar, identifierProblem, isScalarType, literalOf, numberText, placeholder, quoteIdentifier, quoteString,
  ValueProblem, type ScalarType,
} from './literals.js';
import type { Expr } from './parser.js';
import { Fragment, fromJson, isDict, JsonList, Missing, Param, plain, truthy, typeName, weight, WholeFloat } from './values.js';

export type CallExpr = Extract<Expr, { kind: 'call' }>;

/** A parameter name and its value, looked up through locals, fixed and request parameters. */
export interface Resolved {
  /** The name the value was looked up by, or a description of the expression. */
  name: string;
  present: boolean;
  value: unknown;
  /** True when the value came from the request or the fixed parameters. */
  external: boolean;
}

/** What a function may ask of the evaluator. */
export interface CallApi {
  /** Rendering without request values: missing parameters take placeholder values. */
  readonly defaults: boolean;
  eval(e: Expr): unknown;
  /** A bare name is looked up as a parameter; anything else is evaluated. */
  resolve(e: Expr): Resolved;
  fail(message: string, offset: number): never;
  /** Counts work against the render's budget (fails past it): a string's length, a list's items. */
  spend(steps: number, offset: number): void;
  /** A parameter not given: refused as required, or (rendering without values) its neutral value. Anything else as it is. */
  given(v: unknown): unknown;
  setMaxThreads(n: number): void;
}

export type TemplateFunction = (api: CallApi, call: CallExpr) => unknown;

/** Matches a call's arguments to parameter names, Python style. */
function bind(api: CallApi, call: CallExpr, names: string[]): Record<string, Expr | undefined> {
  const out: Record<string, Expr | undefined> = Object.create(null);
  if (call.args.length > names.length) api.fail(`${call.name}() takes at most ${names.length} argument${names.length === 1 ? '' : 's'}`, call.offset);
  call.args.forEach((a, i) => (out[names[i]] = a));
  for (const [k, v] of call.kwargs) {
    if (!names.includes(k)) api.fail(`${call.name}() has no argument \`${k}\``, v.offset);
    if (out[k]) api.fail(`${call.name}() got \`${k}\` twice`, v.offset);
    out[k] = v;
  }
  return out;
}

function evalOpt(api: CallApi, e: Expr | undefined): unknown {
  return e === undefined ? undefined : plain(api.eval(e));
}

function paramError(name: string, expected: string, problem: string): TemplateParameterError {
  // (`parameter "x" is required`, as everywhere else; a problem with its value after a colon.)
  return new TemplateParameterError(name, expected, `parameter "${name}"${problem === 'is required' ? ' ' : ': '}${problem} (expected ${expected})`);
}

const TYPED_ARGS = ['name', 'default', 'description', 'required', 'example', 'format', 'defined', 'enum'];

function paramText(type: string, raw: unknown, value: unknown): string {
  if (type === 'JSON') return typeof raw === 'string' ? raw : stringifyExact(raw);
  if (typeof value === 'boolean') return value ? '1' : '0';
  return typeof value === 'number' ? numberText(value) : String(value);
}

/**
 * Where a parameter's raw value comes from: the request or fixed parameters,
 * else the default, else (rendering without values) the example or a
 * placeholder. Undefined when there is none.
 */
/**
 * A JSON body's empty list (`{"n": []}`) is a given value for lists (Array(), sql_and's `in`,
 * defined()); where one value is read (a scalar, a column name, a symbol) it is no value, as
 * before: the default applies.
 */
function oneValue(r: Resolved): Resolved {
  return r.present && r.value instanceof JsonList && r.value.length === 0 ? { ...r, present: false, value: undefined } : r;
}

function rawValue(api: CallApi, r: Resolved, a: Record<string, Expr | undefined>, expected: string, fallback: () => unknown): { raw: unknown; found: boolean } {
  if (r.present) return { raw: r.value, found: true };
  const def = evalOpt(api, a.default);
  if (def !== undefined && def !== null) return { raw: def, found: true };
  // `required=True` with a default takes the default, as in Tinybird (where `required` only
  // documents the parameter); without one a call fails at once.
  const required = truthy(evalOpt(api, a.required));
  if (required && !api.defaults) throw paramError(r.name, expected, 'is required');
  if (api.defaults) {
    const ex = evalOpt(api, a.example);
    return { raw: ex !== undefined && ex !== null ? ex : fallback(), found: true };
  }
  return { raw: undefined, found: false };
}

function checkEnum(api: CallApi, a: Record<string, Expr | undefined>, name: string, type: string, values: unknown[]): void {
  const allowed = evalOpt(api, a.enum);
  if (allowed === undefined || allowed === null) return;
  if (!Array.isArray(allowed)) api.fail('`enum` must be a list', a.enum!.offset);
  api.spend(values.length * allowed.length, a.enum!.offset);
  for (const v of values) {
    if (!allowed.some((x) => String(x) === String(v))) throw paramError(name, `${type} in [${allowed.join(', ')}]`, `value ${JSON.stringify(String(v))} is not allowed`);
  }
}

/** Rendering without values, a parameter limited by `enum=` takes its first allowed value. */
function firstEnum(api: CallApi, a: Record<string, Expr | undefined>): unknown {
  const allowed = evalOpt(api, a.enum);
  return Array.isArray(allowed) && allowed.length ? allowed[0] : undefined;
}

/** `String(name, default, description=, required=, example=, format=)` and the other scalar types. */
function typed(type: ScalarType): TemplateFunction {
  return (api: CallApi, call: CallExpr): unknown => {
    const a = bind(api, call, TYPED_ARGS);
    if (!a.name) api.fail(`${call.name}() needs a parameter`, call.offset);
    const r = oneValue(api.resolve(a.name));
    const { raw: given, found } = rawValue(api, r, a, type, () => firstEnum(api, a) ?? placeholder(type));
    if (!found) return new Missing(r.name, type);
    // A repeated request parameter used as a scalar: the first value counts.
    let raw = Array.isArray(given) && r.external && r.present ? given[0] : plain(given);
    if (raw instanceof Param) raw = raw.value;
    api.spend(weight(raw), call.offset);
    try {
      const c = checkScalar(type, raw);
      checkEnum(api, a, r.name, type, [c.value]);
      return new Param(r.name, type, c.value, c.sql, paramText(type, raw, c.value));
    } catch (e) {
      if (e instanceof ValueProblem) throw paramError(r.name, type, e.message);
      throw e;
    }
  };
}

/**
 * The items of an Array parameter's value (a default, or repeated request values): a list as it
 * is, a string comma-separated, anything else one item. api/openapi.ts shows defaults by it.
 */
export function arrayItems(raw: unknown): unknown[] {
  if (Array.isArray(raw)) return [...raw].map(plain);
  if (typeof raw === 'string') return raw === '' ? [] : raw.split(',');
  return [raw];
}

/** An Array item as its element type's check takes it: trimmed, but for String elements. */
export function elementInput(type: string, item: unknown): unknown {
  return typeof item === 'string' && type !== 'String' ? item.trim() : item;
}

/** `Array(name, 'Type', default, ...)`: repeated parameters, or one comma-separated value. */
const arrayParam = (api: CallApi, call: CallExpr): unknown => {
  const a = bind(api, call, ['name', 'type', ...TYPED_ARGS.slice(1)]);
  if (!a.name) api.fail('Array() needs a parameter', call.offset);
  const t = a.type ? plain(api.eval(a.type)) : 'String';
  if (typeof t !== 'string' || !isScalarType(t) || t === 'JSON') {
    api.fail(`Array() element type must be one of the scalar types, not ${JSON.stringify(t)}`, (a.type ?? call).offset);
  }
  const expected = `Array(${t})`;
  const r = api.resolve(a.name);
  const { raw: given, found } = rawValue(api, r, a, expected, () => {
    const first = firstEnum(api, a);
    return [first !== undefined ? first : placeholder(t)];
  });
  if (!found) return new Missing(r.name, expected);
  let raw = plain(given);
  api.spend(weight(raw), call.offset);
  // One request value is comma-separated; repeated values are taken as they are.
  const items = Array.isArray(raw) && r.external && r.present && raw.length === 1 && typeof raw[0] === 'string' && !(raw instanceof JsonList) ? raw[0].split(',') : arrayItems(raw);
  if (items.length > 10_000) throw paramError(r.name, expected, 'more than 10000 values');
  api.spend(items.length, call.offset);
  const values: unknown[] = [];
  const sqls: string[] = [];
  items.forEach((item, i) => {
    try {
      const c = checkScalar(t, elementInput(t, item));
      values.push(c.value);
      sqls.push(c.sql);
    } catch (e) {
      // The element's place and its text ("value 3: out of range" read as the value 3).
      if (e instanceof ValueProblem) {
        const text = typeof item === 'string' ? item : stringifyExact(item);
        throw paramError(r.name, expected, `element ${i + 1} of ${items.length} (${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}): ${e.message}`);
      }
      throw e;
    }
  });
  checkEnum(api, a, r.name, expected, values);
  return new Param(r.name, expected, values, `[${sqls.join(', ')}]`, values.map((v) => paramText(t, v, v)).join(','));
};

function identifier(api: CallApi, name: string, v: unknown, offset: number): string {
  const s = plain(v);
  if (typeof s !== 'string') api.fail(`a column name must be a string, not ${typeName(s)}`, offset);
  const problem = identifierProblem(s);
  if (problem) throw paramError(name, 'column name', problem);
  return quoteIdentifier(s);
}

/** Value of a name-or-expression argument with a fallback default, for column()/columns(). */
function nameOrDefault(api: CallApi, call: CallExpr): { name: string; value: unknown } {
  const a = bind(api, call, ['name', 'default']);
  if (!a.name) api.fail(`${call.name}() needs a value`, call.offset);
  const r = oneValue(api.resolve(a.name));
  const present = r.present && plain(r.value) !== null && plain(r.value) !== '';
  if (present) {
    const v = Array.isArray(r.value) && r.external ? r.value[0] : r.value;
    return { name: r.name, value: v };
  }
  const def = evalOpt(api, a.default);
  if (def !== undefined && def !== null) return { name: r.name, value: def };
  if (api.defaults) return { name: r.name, value: 'placeholder' };
  throw paramError(r.name, 'column name', 'is required');
}

const column = (api: CallApi, call: CallExpr): unknown => {
  const { name, value } = nameOrDefault(api, call);
  const sql = identifier(api, name, value, call.offset);
  return new Fragment(sql, String(plain(value)));
};

const columns = (api: CallApi, call: CallExpr): unknown => {
  const { name, value } = nameOrDefault(api, call);
  const v = plain(value);
  api.spend(weight(v), call.offset);
  const list = Array.isArray(v) ? v.map(plain) : typeof v === 'string' ? v.split(',') : [v];
  const names = list.map((x) => (typeof x === 'string' ? x.trim() : x)).filter((x) => x !== '');
  if (!names.length) {
    // Saving a node: `columns(split_to_array(s))` has no names with neutral values.
    if (api.defaults) return new Fragment(quoteIdentifier('placeholder'), 'placeholder');
    throw paramError(name, 'column names', 'no column given');
  }
  if (names.length > 1000) throw paramError(name, 'column names', 'more than 1000 columns');
  const sql = names.map((n) => identifier(api, name, n, call.offset)).join(', ');
  return new Fragment(sql, names.join(','));
};

const symbol = (api: CallApi, call: CallExpr): unknown => {
  const a = bind(api, call, ['value']);
  if (!a.value) api.fail('symbol() needs a value', call.offset);
  const r = oneValue(api.resolve(a.value));
  if (!r.present) {
    if (api.defaults) return new Fragment(quoteIdentifier('placeholder'), 'placeholder');
    throw paramError(r.name, 'identifier', 'is required');
  }
  const v = Array.isArray(r.value) && r.external ? r.value[0] : r.value;
  // Saving a node: `symbol(String(t))` computes with String's neutral value, ''.
  if (api.defaults && plain(v) === '') return new Fragment(quoteIdentifier('placeholder'), 'placeholder');
  return new Fragment(identifier(api, r.name, v, call.offset), String(plain(v)));
};

const defined = (api: CallApi, call: CallExpr): unknown => {
  const a = bind(api, call, ['name']);
  if (!a.name) api.fail('defined() needs a parameter name', call.offset);
  if (a.name.kind !== 'name') return plain(api.eval(a.name)) !== null;
  const r = api.resolve(a.name);
  return r.present || (api.defaults && !RESERVED.has(a.name.name));
};

const SQL_AND_OPS: Record<string, string> = {
  eq: '=', neq: '!=', gt: '>', gte: '>=', lt: '<', lte: '<=', in: 'IN', not_in: 'NOT IN',
};

const sqlAnd = (api: CallApi, call: CallExpr): unknown => {
  if (call.args.length) api.fail('sql_and() takes only keyword arguments: column__operator=value', call.offset);
  const parts: string[] = [];
  for (const [key, expr] of call.kwargs) {
    const m = /^(.+?)(?:__(eq|neq|gt|gte|lt|lte|in|not_in))?$/.exec(key)!;
    // `col__like=` is no column named `col__like`: an operator Roost does not know is refused, as in
    // Tinybird ("operand like not supported"), instead of filtering on a column of that name.
    if (m[2] === undefined && key.includes('__')) {
      api.fail(`sql_and(): operator "${key.slice(key.lastIndexOf('__') + 2)}" in ${key} is not supported; use ${Object.keys(SQL_AND_OPS).join(', ')}`, expr.offset);
    }
    const v = api.eval(expr);
    if (v instanceof Missing || plain(v) === null || plain(v) === undefined) continue;
    const col = quoteIdentifier(m[1]);
    const op = SQL_AND_OPS[m[2] ?? 'eq'];
    let sql: string;
    try {
      if (op === 'IN' || op === 'NOT IN') {
        const p = plain(v);
        const list = v instanceof Param && Array.isArray(v.value) ? v : Array.isArray(p) ? p : [p];
        const empty = list instanceof Param ? (list.value as unknown[]).length === 0 : list.length === 0;
        if (empty) {
          parts.push(op === 'IN' ? '0' : '1');
          continue;
        }
        sql = list instanceof Param ? list.sql : literalOf(list, 0, (m) => api.given(m));
      } else {
        sql = v instanceof Param || v instanceof Fragment ? v.sql : literalOf(v instanceof WholeFloat ? v : plain(v), 0, (m) => api.given(m));
      }
    } catch (e) {
      if (e instanceof ValueProblem) api.fail(`sql_and(): ${key}: ${e.message}`, expr.offset);
      throw e;
    }
    parts.push(`${col} ${op} ${sql}`);
  }
  const sql = parts.length ? parts.join(' AND ') : '1';
  return new Fragment(sql, sql);
};

const splitToArray = (api: CallApi, call: CallExpr): unknown => {
  const a = bind(api, call, ['value', 'default', 'separator']);
  if (!a.value) api.fail('split_to_array() needs a value', call.offset);
  const r = api.resolve(a.value);
  const sep = a.separator ? plain(api.eval(a.separator)) : ',';
  if (typeof sep !== 'string' || sep === '') api.fail('split_to_array() separator must be a non-empty string', (a.separator ?? call).offset);
  let v = r.present ? plain(r.value) : null;
  if (v === null || v === '' || (Array.isArray(v) && v.length === 0)) v = evalOpt(api, a.default) ?? '';
  api.spend(weight(v), call.offset);
  if (Array.isArray(v)) {
    const flat = r.external && v.length === 1 && typeof v[0] === 'string' && !(v instanceof JsonList) ? v[0].split(sep) : [...v].map((x) => String(plain(x)));
    return flat.map((s) => s.trim()).filter((s) => s !== '');
  }
  return String(v).split(sep).map((s) => s.trim()).filter((s) => s !== '');
};

const enumerateWithLast = (api: CallApi, call: CallExpr): unknown => {
  const a = bind(api, call, ['iterable']);
  const v = a.iterable ? plain(api.eval(a.iterable)) : null;
  const list = Array.isArray(v) ? v : typeof v === 'string' ? [...v] : api.fail('enumerate_with_last() needs a list', call.offset);
  api.spend(weight(v), call.offset);
  return list.map((item, i) => [i === list.length - 1, item]);
};

/** Milliseconds since the epoch (UTC) of `s` read with a small strptime, or null. */
export function strptime(s: string, format: string): number | null {
  let i = 0;
  const f: Record<string, number> = { Y: 1970, m: 1, d: 1, H: 0, M: 0, S: 0, f: 0, z: 0 };
  for (let j = 0; j < format.length; j++) {
    const c = format[j];
    if (c !== '%') {
      if (s[i]?.toLowerCase() !== c.toLowerCase()) return null;
      i++;
      continue;
    }
    const d = format[++j];
    if (d === '%') {
      if (s[i++] !== '%') return null;
      continue;
    }
    if (d === 'z') {
      const m = /^(?:[zZ]|([+-])([0-9]{2}):?([0-9]{2}))/.exec(s.slice(i));
      if (!m) return null;
      if (m[1]) f.z = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
      i += m[0].length;
      continue;
    }
    const width = { Y: 4, m: 2, d: 2, H: 2, M: 2, S: 2, f: 6 }[d as 'Y'];
    if (!width) return null;
    const m = new RegExp(`^[0-9]{${d === 'Y' ? 4 : 1},${width}}`).exec(s.slice(i));
    if (!m) return null;
    f[d] = d === 'f' ? Number(m[0].padEnd(6, '0')) : Number(m[0]);
    i += m[0].length;
  }
  if (i !== s.length) return null;
  if (f.m < 1 || f.m > 12 || f.d < 1 || f.d > new Date(Date.UTC(f.Y, f.m, 0)).getUTCDate() || f.H > 23 || f.M > 59 || f.S > 59) return null;
  return Date.UTC(f.Y, f.m - 1, f.d, f.H, f.M, f.S) + Math.floor(f.f / 1000) - f.z * 60_000;
}

/**
 * `date_diff_in_*(date_1, date_2, date_format, default, backup_date_format, none_if_error)`,
 * Tinybird's signature and order (so a fourth positional argument is `default`, which only
 * rendering without values answers). `date_diff_in_days` reads dates (`%Y-%m-%d`) by default,
 * the others date and time.
 */
function dateDiff(unitMs: number, defaultFormat = '%Y-%m-%d %H:%M:%S'): TemplateFunction {
  return (api: CallApi, call: CallExpr): unknown => {
    const a = bind(api, call, ['date_1', 'date_2', 'date_format', 'default', 'backup_date_format', 'none_if_error']);
    if (!a.date_1 || !a.date_2) api.fail(`${call.name}() needs two dates`, call.offset);
    const fmt = String(evalOpt(api, a.date_format) ?? defaultFormat);
    const backup = evalOpt(api, a.backup_date_format);
    const noneIfError = truthy(evalOpt(api, a.none_if_error));
    const read = (e: Expr): number | null => {
      const v = plain(api.eval(e));
      if (typeof v !== 'string') return null;
      api.spend(v.length + fmt.length + (typeof backup === 'string' ? backup.length : 0), e.offset);
      return strptime(v, fmt) ?? (typeof backup === 'string' ? strptime(v, backup) : null);
    };
    const x = read(a.date_1);
    const y = read(a.date_2);
    if (x === null || y === null) {
      if (noneIfError) return null;
      // Placeholders are not dates: rendering without values only checks the SQL around.
      if (api.defaults) return evalOpt(api, a.default) ?? 0;
      const which = paramOf(x === null ? a.date_1 : a.date_2);
      throw new TemplateParameterError(which ?? call.name, fmt, `${which ? `parameter "${which}": ` : ''}${call.name}(): dates must match the format ${fmt}${typeof backup === 'string' ? ` or ${backup}` : ''} (missing or not such a date)`);
    }
    return Math.floor(Math.abs(x - y) / unitMs);
  };
}

/** The request parameter an argument reads, when it is one by name (the error then names it). */
function paramOf(e: Expr | undefined): string | undefined {
  return e?.kind === 'name' ? e.name : undefined;
}

const dayDiff = (api: CallApi, call: CallExpr): unknown => {
  const a = bind(api, call, ['date_1', 'date_2', 'default']);
  if (!a.date_1 || !a.date_2) api.fail('day_diff() needs two dates', call.offset);
  const read = (e: Expr): number | null => {
    const v = plain(api.eval(e));
    if (typeof v !== 'string') return null;
    api.spend(v.length, e.offset);
    return strptime(v, '%Y-%m-%d') ?? strptime(v, '%Y-%m-%d %H:%M:%S') ?? strptime(v, '%Y-%m-%dT%H:%M:%S');
  };
  const x = read(a.date_1);
  const y = read(a.date_2);
  if (x === null || y === null) {
    const def = evalOpt(api, a.default);
    if (def !== undefined) return def;
    if (api.defaults) return 0;
    const which = paramOf(x === null ? a.date_1 : a.date_2);
    throw new TemplateParameterError(which ?? 'day_diff', 'Date', `${which ? `parameter "${which}": ` : ''}day_diff(): expected dates YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (missing or not a date)`);
  }
  const day = (t: number): number => Math.floor(t / 86_400_000);
  return Math.abs(day(x) - day(y));
};

const error = (api: CallApi, call: CallExpr): unknown => {
  const a = bind(api, call, ['message', 'code']);
  const message = a.message ? plain(api.eval(a.message)) : 'error';
  const code = evalOpt(api, a.code) ?? 400;
  // Rendering without values checks the SQL; a refusal belongs to real requests.
  if (api.defaults) return new Fragment('', '');
  throw new TemplateRaisedError(String(message), Number(code));
};

const customError = (api: CallApi, call: CallExpr): unknown => {
  const a = bind(api, call, ['body', 'code']);
  const body = a.body ? plain(api.eval(a.body)) : null;
  if (!isDict(body)) api.fail('custom_error() takes a dict such as {"error": "...", "code": 400}', call.offset);
  // Values may be parameters (`{'error': String(x)}`) or hold them: the answer carries their values.
  const answer = (v: unknown): unknown => {
    const p = plain(v);
    if (typeof p === 'bigint') return p.toString();
    if (Array.isArray(p)) return p.map(answer);
    if (isDict(p)) return Object.fromEntries(Object.entries(p).map(([k, x]) => [k, answer(x)]));
    return p;
  };
  const details: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    // (`documentation`, Tinybird's link to the endpoint's docs, is answered as the other keys.)
    if (k !== 'error' && k !== 'code') details[k] = answer(v);
  }
  const code = plain(evalOpt(api, a.code) ?? body.code) ?? 400;
  if (api.defaults) return new Fragment('', '');
  const message = answer(body.error);
  throw new TemplateRaisedError(message === undefined || message === null ? 'error' : typeof message === 'string' ? message : JSON.stringify(message), Number(code), details);
};

const maxThreads = (api: CallApi, call: CallExpr): unknown => {
  const a = bind(api, call, ['value']);
  const n = Number(evalOpt(api, a.value));
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    // Saving a node: a parameter's neutral value (0) is no thread count; real calls are checked.
    if (api.defaults) return new Fragment('', '');
    // A request parameter's value (`max_threads(Int32(t, 2))` with t=0): the 400 names it, as
    // for any value out of its range (it named only max_threads(), at a position in the node).
    const v = a.value;
    const param = v?.kind === 'call' && TYPED_FUNCTIONS.has(v.name) && v.args[0]?.kind === 'name' ? v.args[0].name : undefined;
    if (param !== undefined) throw paramError(param, 'Int32 from 1 to 1024 (max_threads)', `value ${JSON.stringify(String(plain(evalOpt(api, a.value))))} is out of range`);
    api.fail('max_threads() takes an integer from 1 to 1024', call.offset);
  }
  api.setMaxThreads(n);
  return new Fragment('', '');
};

const sqlUnescape = (api: CallApi, call: CallExpr): unknown => {
  const a = bind(api, call, ['value', 'chars']);
  if (!a.value) api.fail('sql_unescape() needs a value', call.offset);
  const v = api.eval(a.value);
  if (v instanceof Missing) return v;
  const s = plain(v);
  const chars = String(evalOpt(api, a.chars) ?? '%');
  if (typeof s !== 'string') return v;
  api.spend(s.length * Math.max(1, chars.length), call.offset);
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && i + 1 < s.length && chars.includes(s[i + 1])) continue;
    out += s[i];
  }
  return v instanceof Param ? new Param(v.name, v.type, out, quoteString(out), out) : out;
};

const len = (api: CallApi, call: CallExpr): unknown => {
  const a = bind(api, call, ['value']);
  const v = a.value ? plain(api.eval(a.value)) : null;
  api.spend(weight(v), call.offset);
  if (typeof v === 'string') return [...v].length;
  if (Array.isArray(v)) return v.length;
  if (isDict(v)) return Object.keys(v).length;
  return api.fail(`len() of ${typeName(v)}`, call.offset);
};

const jsonParam = typed('JSON');
const jsonFn = (api: CallApi, call: CallExpr): unknown => {
  const p = jsonParam(api, call);
  if (p instanceof Param) api.spend(p.text.length, call.offset);
  return p instanceof Param ? new Param(p.name, p.type, fromJson(p.value), p.sql, p.text) : p;
};

/** Every callable function, by name. */
export const FUNCTIONS: Readonly<Record<string, TemplateFunction>> = Object.freeze(Object.assign(Object.create(null), {
  String: typed('String'),
  Boolean: typed('Boolean'),
  Date: typed('Date'),
  DateTime: typed('DateTime'),
  DateTime64: typed('DateTime64'),
  Float32: typed('Float32'),
  Float64: typed('Float64'),
  Int: typed('Int'),
  Integer: typed('Integer'),
  Int8: typed('Int8'), Int16: typed('Int16'), Int32: typed('Int32'), Int64: typed('Int64'), Int128: typed('Int128'), Int256: typed('Int256'),
  UInt8: typed('UInt8'), UInt16: typed('UInt16'), UInt32: typed('UInt32'), UInt64: typed('UInt64'), UInt128: typed('UInt128'), UInt256: typed('UInt256'),
  JSON: jsonFn,
  Array: arrayParam,
  defined,
  column,
  columns,
  symbol,
  sql_and: sqlAnd,
  split_to_array: splitToArray,
  enumerate_with_last: enumerateWithLast,
  day_diff: dayDiff,
  date_diff_in_seconds: dateDiff(1000),
  date_diff_in_minutes: dateDiff(60_000),
  date_diff_in_hours: dateDiff(3_600_000),
  date_diff_in_days: dateDiff(86_400_000, '%Y-%m-%d'),
  error,
  custom_error: customError,
  max_threads: maxThreads,
  sql_unescape: sqlUnescape,
  len,
}) as Record<string, TemplateFunction>);

/** Functions whose first argument names a parameter (for metadata). */
export const TYPED_FUNCTIONS = new Set([
  'String', 'Boolean', 'Date', 'DateTime', 'DateTime64', 'Float32', 'Float64', 'Int', 'Integer',
  'Int8', 'Int16', 'Int32', 'Int64', 'Int128', 'Int256', 'UInt8', 'UInt16', 'UInt32', 'UInt64', 'UInt128', 'UInt256',
  'JSON', 'Array',
]);

/** Names that are never parameters. */
export const RESERVED = new Set(Object.keys(FUNCTIONS));

