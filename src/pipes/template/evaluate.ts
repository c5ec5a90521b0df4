/**
 * Walks a parsed template and writes the SQL. Expressions are interpreted
 * here over plain data only: there is no access to JavaScript objects,
 * prototypes or globals, and only the functions in `FUNCTIONS` can be called.
 */
import { RoostError } from '../../errors.js';
import { TemplateInvalidError, TemplateParameterError } from './errors.js';
import { FUNCTIONS, type CallApi, type Resolved } from './functions.js';
import { floatText, literalOf, placeholder, isScalarType, ValueProblem } from './literals.js';
import type { Expr, TemplateNode } from './parser.js';
import { SqlOutput } from './sql-output.js';
import { asFloat, dict, equal, Fragment, isDict, isFloat, JsonList, Missing, Param, plain, truthy, typeName, weight, nesting, WholeFloat } from './values.js';

/** Request parameters as they arrive: one string, or several for a repeated name. */
export type RequestParams = Record<string, string | string[]>;

export interface EvaluateOptions {
  fixedParams?: Record<string, unknown>;
  defaults?: boolean;
  /** The call's work so far, across its templates (see RenderOptions.budget). */
  budget?: { spent: number };
}

export interface Evaluation {
  sql: string;
  maxThreads?: number;
  usedParams: string[];
}

/** Loop iterations allowed in one render, all loops together. */
const MAX_ITERATIONS = 100_000;
const MAX_STRING = 1 << 20;
const MAX_LIST = 100_000;
/**
 * Work allowed in one render, in steps: one per expression evaluated, per parameter looked
 * up and per loop iteration, plus the size of every string, list or dict an operation builds
 * or walks (see `weight`) and of every piece of SQL written. Renders run on the server's
 * event loop, so without it a short template could keep every tenant waiting for minutes (a
 * loop copying a long list or indexing a long string, comparing a list nested into itself 40
 * times, reading a parameter repeated 50,000 times in every iteration).
 */
export const MAX_WORK = 20_000_000;
/** Largest value (`weight`) a list or dict expression may build: nesting shared lists cannot grow past it. */
const MAX_VALUE = 16 << 20;
/** Lists in lists (comparisons and literals walk them recursively). */
const MAX_NESTING = 32;
/** Integers beyond ±2^4096 are refused: repeated squaring would otherwise grow them to gigabytes. */
const MAX_BIG = 1n << 4096n;

type Signal = 'break' | 'continue' | undefined;

/**
 * A parameter used without a value: `GET /v0/pipes` shows it `required: false` (nothing declares
 * it required), so the message says why this call needs it (its value is written or computed
 * with, and it has no default) and what to do.
 */
function missingMessage(v: Missing): string {
  return `parameter "${v.name}" is required (expected ${v.type}): this call uses its value and it has no default; pass ${v.name}=…, or give it a default in the template`;
}

class Evaluator implements CallApi {
  readonly defaults: boolean;
  readonly #source: string;
  readonly #params: RequestParams;
  readonly #fixed: Record<string, unknown>;
  readonly #locals = new Map<string, unknown>();
  readonly #used = new Set<string>();
  /** Request parameters as templates see them, made once per name (see `#requestValue`). */
  readonly #requestValues = new Map<string, { present: boolean; value: unknown }>();
  readonly #out = new SqlOutput();
  #maxThreads: number | undefined;
  #iterations = 0;
  #work = 0;
  readonly #budget: { spent: number } | undefined;

  constructor(source: string, params: RequestParams, opts: EvaluateOptions) {
    this.#budget = opts.budget;
    this.#source = source;
    this.#params = params;
    this.#fixed = opts.fixedParams ?? {};
    this.defaults = opts.defaults ?? false;
  }

  run(nodes: TemplateNode[]): Evaluation {
    this.#block(nodes);
    const result: Evaluation = { sql: this.#out.toString(), usedParams: [...this.#used].sort() };
    if (this.#maxThreads !== undefined) result.maxThreads = this.#maxThreads;
    return result;
  }

  fail(message: string, offset: number): never {
    throw new TemplateInvalidError(message, this.#source, offset);
  }

  spend(steps: number, offset: number): void {
    this.#work += steps;
    if (this.#work > MAX_WORK) this.fail(`the template did more than ${MAX_WORK} steps of work (loops, parameters read, strings or lists built or walked, SQL written); simplify it`, offset);
    if (this.#budget && (this.#budget.spent += steps) > MAX_WORK) this.fail(`this call's templates (every template node the endpoint renders) did more than ${MAX_WORK} steps of work in all (loops, parameters read, strings or lists built or walked, SQL written); simplify them`, offset);
  }

  /** Truthiness, paying for the keys a dict is counted by. */
  #truthy(v: unknown, offset: number): boolean {
    if (isDict(plain(v))) this.spend(weight(plain(v)), offset);
    return truthy(v);
  }

  /** A list or dict just built: refused past MAX_VALUE. */
  #built<T>(v: T, offset: number): T {
    const w = weight(v);
    this.spend(w, offset);
    if (w > MAX_VALUE) this.fail(`a list or dict larger than ${MAX_VALUE} (items and characters at every depth)`, offset);
    if (nesting(v) > MAX_NESTING) this.fail(`lists and dicts nested more than ${MAX_NESTING} deep`, offset);
    return v;
  }

  /** A computed integer: refused past ±MAX_BIG. */
  #bounded(v: bigint, offset: number): bigint {
    if (v > MAX_BIG || v < -MAX_BIG) this.fail('integer is too large (beyond ±2^4096)', offset);
    return v;
  }

  setMaxThreads(n: number): void {
    this.#maxThreads = n;
  }

  #lookup(name: string, offset: number): Resolved {
    this.spend(1, offset);
    if (this.#locals.has(name)) {
      const v = this.#locals.get(name);
      return { name, present: !(v instanceof Missing), value: v instanceof Missing ? undefined : v, external: false };
    }
    if (Object.hasOwn(this.#fixed, name) && this.#fixed[name] !== undefined && this.#fixed[name] !== null) {
      this.#used.add(name);
      return { name, present: true, value: this.#fixed[name], external: true };
    }
    if (Object.hasOwn(this.#params, name)) {
      const r = this.#requestValue(name, offset);
      if (r.present) {
        this.#used.add(name);
        return { name, present: true, value: r.value, external: true };
      }
    }
    return { name, present: false, value: undefined, external: false };
  }

  /**
   * A request parameter as templates see it: an empty value counts as not given (so that
   * defaults apply), and a repeated one is its list of non-empty values. Made once per name
   * and paid for once (the list's length): a loop reading a parameter repeated 50,000 times
   * used to copy the list on every read, unpaid (10,000 iterations: 20 s of the event loop).
   * The copy is shared by every read: template values are never changed once made.
   */
  #requestValue(name: string, offset: number): { present: boolean; value: unknown } {
    const known = this.#requestValues.get(name);
    if (known) return known;
    const v = this.#params[name];
    let r: { present: boolean; value: unknown };
    if (Array.isArray(v)) {
      this.spend(v.length, offset);
      const given = v.filter((x) => x !== '');
      // A JSON body's list is given even when empty (`{"ids": []}`): an allow-list computed
      // empty must filter everything out, not drop the filter (sql_and skipped it as missing).
      r = { present: given.length > 0 || v instanceof JsonList, value: given };
    } else {
      r = { present: typeof v === 'string' && v !== '', value: v };
    }
    this.#requestValues.set(name, r);
    return r;
  }

  resolve(e: Expr): Resolved {
    if (e.kind === 'name') return this.#lookup(e.name, e.offset);
    const value = this.eval(e);
    if (value instanceof Missing) return { name: value.name, present: false, value: undefined, external: false };
    return { name: describe(e), present: plain(value) !== null, value, external: false };
  }

  #block(nodes: TemplateNode[]): Signal {
    for (const node of nodes) {
      const signal = this.#node(node);
      if (signal) return signal;
    }
    return undefined;
  }

  #node(node: TemplateNode): Signal {
    switch (node.kind) {
      case 'text':
        this.#write(() => this.#out.text(node.text), node.offset);
        return undefined;
      case 'output':
        this.#emit(this.eval(node.expr), node.offset);
        return undefined;
      case 'set':
        this.#locals.set(node.name, this.eval(node.expr));
        return undefined;
      case 'loopctl':
        return node.op;
      case 'if':
        for (const b of node.branches) {
          if (this.#truthy(this.eval(b.cond), b.cond.offset)) return this.#block(b.body);
        }
        return node.otherwise ? this.#block(node.otherwise) : undefined;
      case 'for': {
        const items = this.#iterate(this.eval(node.iterable), node.iterable.offset);
        for (const item of items) {
          if (++this.#iterations > MAX_ITERATIONS) this.fail(`loops ran more than ${MAX_ITERATIONS} times`, node.offset);
          this.spend(1, node.offset);
          if (node.targets.length === 1) {
            this.#locals.set(node.targets[0], item);
          } else {
            const parts = plain(item);
            if (!Array.isArray(parts) || parts.length !== node.targets.length) {
              this.fail(`cannot unpack ${typeName(item)} into ${node.targets.length} names`, node.offset);
            }
            node.targets.forEach((t, i) => this.#locals.set(t, parts[i]));
          }
          if (this.#block(node.body) === 'break') break;
        }
        return undefined;
      }
    }
  }

  /** Writes to the SQL, paying for what was written (each character is read as it goes in). */
  #write(f: () => void, offset: number): void {
    const before = this.#out.length;
    try {
      f();
    } catch (e) {
      if (e instanceof RangeError) throw new RoostError('LIMIT_EXCEEDED', 'rendered SQL is too large');
      throw e;
    }
    this.spend(this.#out.length - before, offset);
  }

  #iterate(v: unknown, offset: number): unknown[] {
    const p = plain(v);
    if (Array.isArray(p)) return p;
    if (typeof p === 'string' || isDict(p)) this.spend(weight(p), offset);
    if (typeof p === 'string') return [...p];
    if (isDict(p)) return Object.keys(p);
    if (p === null) return [];
    return this.fail(`cannot loop over ${typeName(v)}`, offset);
  }

  given(v: unknown): unknown {
    return this.#given(v);
  }

  /**
   * A parameter that was not given cannot be computed with (Tinybird refuses it as soon as
   * its typed function runs): the caller hears which parameter is missing (400), not that
   * None cannot be added or compared (422).
   */
  #given(v: unknown): unknown {
    if (!(v instanceof Missing)) return v;
    if (!this.defaults) throw new TemplateParameterError(v.name, v.type, missingMessage(v));
    // Rendering without values (saving a node): computes with the neutral value of its type,
    // as Tinybird's placeholders do, so `{% if defined(p) %}{{ p + '%' }}{% end %}` can be saved.
    const t = v.type.startsWith('Array(') ? v.type.slice(6, -1) : v.type;
    const ph = isScalarType(t) ? placeholder(t) : '';
    return v.type.startsWith('Array(') ? [ph] : ph;
  }

  /** Writes a value where the SQL text currently ends. */
  #emit(v: unknown, offset: number): void {
    let sql: string;
    let text: string;
    if (v instanceof Missing) {
      if (!this.defaults) throw new TemplateParameterError(v.name, v.type, missingMessage(v));
      const t = v.type.startsWith('Array(') ? v.type.slice(6, -1) : v.type;
      const ph = isScalarType(t) ? placeholder(t) : '';
      sql = literalOf(v.type.startsWith('Array(') ? [ph] : ph);
      text = String(ph);
    } else if (v instanceof Param || v instanceof Fragment) {
      sql = v.sql;
      text = v.text;
    } else {
      this.spend(weight(v), offset);
      try {
        // A parameter not given inside a list or dict: required, or its neutral value (saving a node).
        sql = literalOf(v, 0, (m) => this.#given(m));
      } catch (e) {
        if (e instanceof ValueProblem) this.fail(e.message, offset);
        throw e;
      }
      text = typeof v === 'string' ? v : typeof v === 'boolean' ? (v ? '1' : '0') : v instanceof WholeFloat ? floatText(v.value) : Array.isArray(v) || isDict(v) ? sql : String(v);
    }
    let ok = false;
    this.#write(() => (ok = this.#out.value(sql, text)), offset);
    if (!ok) this.fail('a value cannot be written here: inside a $$ heredoc string or right after a backslash', offset);
  }

  eval(e: Expr): unknown {
    this.spend(1, e.offset);
    switch (e.kind) {
      case 'literal':
        return e.float && typeof e.value === 'number' ? asFloat(e.value) : e.value;
      case 'name': {
        if (e.name in FUNCTIONS) this.fail(`\`${e.name}\` is a function; call it`, e.offset);
        const r = this.#lookup(e.name, e.offset);
        return r.present ? r.value : new Missing(e.name, 'String');
      }
      case 'list':
        return this.#built(e.items.map((x) => this.eval(x)), e.offset);
      case 'dict': {
        const d = dict();
        for (const [k, v] of e.entries) {
          const key = plain(this.eval(k));
          if (typeof key !== 'string' && typeof key !== 'number') this.fail('dict keys must be strings or numbers', k.offset);
          d[String(key)] = this.eval(v);
        }
        return this.#built(d, e.offset);
      }
      case 'unary': {
        const v = this.eval(e.operand);
        if (e.op === 'not') return !this.#truthy(v, e.offset);
        const g = this.#given(v);
        const p = plain(g);
        if (typeof p === 'number') return isFloat(g) ? asFloat(e.op === '-' ? -p : p) : e.op === '-' ? -p : p;
        if (typeof p === 'bigint') return e.op === '-' ? -p : p;
        if (typeof p === 'boolean') return e.op === '-' ? -Number(p) : Number(p);
        return this.fail(`bad operand for unary ${e.op}: ${typeName(v)}`, e.offset);
      }
      case 'bool': {
        const left = this.eval(e.left);
        if (e.op === 'and') return this.#truthy(left, e.offset) ? this.eval(e.right) : left;
        return this.#truthy(left, e.offset) ? left : this.eval(e.right);
      }
      case 'ternary':
        return this.#truthy(this.eval(e.cond), e.offset) ? this.eval(e.then) : this.eval(e.otherwise);
      case 'binary':
        return this.#binary(e.op, this.eval(e.left), this.eval(e.right), e.offset);
      case 'compare': {
        let left = this.eval(e.first);
        for (let i = 0; i < e.ops.length; i++) {
          const right = this.eval(e.rest[i]);
          if (!this.#compare(e.ops[i], left, right, e.rest[i].offset)) return false;
          left = right;
        }
        return true;
      }
      case 'index': {
        const rawTarget = this.eval(e.target);
        if (rawTarget instanceof Missing && this.defaults) return rawTarget;
        const target = plain(this.#given(rawTarget));
        const index = plain(this.#given(this.eval(e.index)));
        if (Array.isArray(target) || typeof target === 'string') {
          if (typeof target === 'string') this.spend(target.length, e.offset);
          const items = typeof target === 'string' ? [...target] : target;
          const n = typeof index === 'bigint' ? Number(index) : index;
          if (typeof n !== 'number' || !Number.isInteger(n)) this.fail(`list index must be an integer, not ${typeName(index)}`, e.offset);
          const i = n < 0 ? items.length + n : n;
          if (i < 0 || i >= items.length) {
            // Saving a node renders with neutral values (`split_to_array(s)` is [], `String(s)` is
            // ''): an index real calls fill is a neutral string then, not a refused save.
            if (this.defaults) return new Missing(`[${n}]`, 'String');
            this.fail(`index ${n} out of range`, e.offset);
          }
          return items[i];
        }
        if (isDict(target)) {
          const key = String(index);
          if (!Object.hasOwn(target, key)) {
            if (this.defaults) return new Missing(key, 'String');
            this.fail(`key ${JSON.stringify(key)} not found`, e.offset);
          }
          return target[key];
        }
        return this.fail(`${typeName(target)} cannot be indexed`, e.offset);
      }
      case 'attr': {
        const rawTarget = this.eval(e.target);
        if (rawTarget instanceof Missing && this.defaults) return rawTarget;
        const target = plain(this.#given(rawTarget));
        if (isDict(target) && Object.hasOwn(target, e.name)) return target[e.name];
        return this.fail(`${typeName(target)} has no attribute \`${e.name}\` (attributes are only read from dicts)`, e.offset);
      }
      case 'call': {
        const f = FUNCTIONS[e.name];
        if (!f) this.fail(`unknown function \`${e.name}\``, e.offset);
        return f(this, e);
      }
    }
  }

  /** Division by zero: refused in a call; 0 when saving a node (its divisor's neutral value is 0). */
  #byZero(offset: number): number {
    if (this.defaults) return 0;
    return this.fail('division by zero', offset);
  }

  #binary(op: string, l: unknown, r: unknown, offset: number): unknown {
    l = this.#given(l);
    r = this.#given(r);
    const v = this.#arithmetic(op, l, r, offset);
    // Python: a float operand makes a float, and `/` always does (see WholeFloat).
    return typeof v === 'number' && (op === '/' || isFloat(l) || isFloat(r)) ? asFloat(v) : v;
  }

  #arithmetic(op: string, l: unknown, r: unknown, offset: number): unknown {
    const a = plain(l);
    const b = plain(r);
    const bad = (): never => this.fail(`unsupported operand types for ${op}: ${typeName(l)} and ${typeName(r)}`, offset);
    if (op === '+') {
      if (typeof a === 'string' && typeof b === 'string') {
        if (a.length + b.length > MAX_STRING) this.fail('string is too long', offset);
        // Joining strings is cheap (V8 links them); walking the result later pays for its length.
        this.spend(Math.min(a.length, b.length) + 1, offset);
        return a + b;
      }
      if (Array.isArray(a) && Array.isArray(b)) {
        if (a.length + b.length > MAX_LIST) this.fail(`list is longer than ${MAX_LIST} items`, offset);
        return this.#built([...a, ...b], offset);
      }
    }
    const na = numeric(a);
    const nb = numeric(b);
    if (na === null || nb === null) return bad();
    if (typeof na === 'bigint' || typeof nb === 'bigint') {
      const x = toBig(na);
      const y = toBig(nb);
      if (x === null || y === null) return bad();
      switch (op) {
        case '+': return this.#bounded(x + y, offset);
        case '-': return this.#bounded(x - y, offset);
        case '*': return this.#bounded(x * y, offset);
        case '/': return Number(x) / Number(y);
        case '//':
        case '%': {
          if (y === 0n) return this.#byZero(offset);
          const q = x / y - ((x % y !== 0n) && ((x < 0n) !== (y < 0n)) ? 1n : 0n);
          return op === '//' ? q : x - q * y;
        }
      }
      return bad();
    }
    switch (op) {
      case '+': return na + nb;
      case '-': return na - nb;
      case '*': return na * nb;
      case '/':
        if (nb === 0) return this.#byZero(offset);
        return na / nb;
      case '//':
        if (nb === 0) return this.#byZero(offset);
        return Math.floor(na / nb);
      case '%':
        if (nb === 0) return this.#byZero(offset);
        return na - Math.floor(na / nb) * nb;
    }
    return bad();
  }

  #compare(op: string, l: unknown, r: unknown, offset: number): boolean {
    this.spend(weight(l) + weight(r), offset);
    switch (op) {
      case '==': return equal(l, r);
      case '!=': return !equal(l, r);
      case 'is': return plain(l) === null || plain(r) === null ? plain(l) === plain(r) : equal(l, r);
      case 'is not': return !this.#compare('is', l, r, offset);
      case 'in':
      case 'not in': {
        const hay = plain(r);
        const needle = plain(l);
        let found: boolean;
        if (Array.isArray(hay)) found = hay.some((x) => equal(x, needle));
        else if (typeof hay === 'string') {
          if (typeof needle !== 'string') this.fail(`'in <string>' needs a string on the left, not ${typeName(l)}`, offset);
          found = hay.includes(needle);
        } else if (isDict(hay)) found = Object.hasOwn(hay, String(needle));
        else if (hay === null) found = false;
        else return this.fail(`argument of type ${typeName(r)} is not a container`, offset);
        return op === 'in' ? found : !found;
      }
    }
    l = this.#given(l);
    r = this.#given(r);
    const a = plain(l);
    const b = plain(r);
    const na = numeric(a);
    const nb = numeric(b);
    let x: number | bigint | string;
    let y: number | bigint | string;
    if (na !== null && nb !== null) [x, y] = [na, nb];
    else if (typeof a === 'string' && typeof b === 'string') [x, y] = [a, b];
    else return this.fail(`cannot compare ${typeName(l)} and ${typeName(r)} with ${op}`, offset);
    switch (op) {
      case '<': return x < y;
      case '<=': return x <= y;
      case '>': return x > y;
      case '>=': return x >= y;
    }
    return this.fail(`unknown comparison ${op}`, offset);
  }
}

function numeric(v: unknown): number | bigint | null {
  if (typeof v === 'number' || typeof v === 'bigint') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return null;
}

function toBig(v: number | bigint): bigint | null {
  if (typeof v === 'bigint') return v;
  return Number.isInteger(v) ? BigInt(v) : null;
}

function describe(e: Expr): string {
  switch (e.kind) {
    case 'name': return e.name;
    case 'call': return `${e.name}(...)`;
    case 'literal': return 'a literal';
    default: return 'an expression';
  }
}

/** Renders parsed template nodes with the given parameters. */
export function evaluate(source: string, nodes: TemplateNode[], params: RequestParams, opts: EvaluateOptions = {}): Evaluation {
  return new Evaluator(source, params, opts).run(nodes);
}
