/**
 * Parameter metadata read from a template without rendering it: every typed
 * parameter function whose first argument is a name, plus names that are
 * only tested with `defined()` or used as columns.
 */
import { TYPED_FUNCTIONS, RESERVED } from './functions.js';
import type { Expr, TemplateNode } from './parser.js';

/** One parameter as `GET /v0/pipes/<pipe>` shows it. */
export interface TemplateParameter {
  name: string;
  /** The type function used (`Int32`, `DateTime`, `Array(String)`, ...); `String` when none is. */
  type: string;
  default?: unknown;
  description?: string;
  required: boolean;
  example?: unknown;
  format?: string;
}

/** The value of an expression made only of literals, or undefined. */
function constant(e: Expr | undefined): unknown {
  if (!e) return undefined;
  switch (e.kind) {
    case 'literal':
      return typeof e.value === 'bigint' ? e.value.toString() : e.value;
    case 'list': {
      const items = e.items.map(constant);
      return items.some((x) => x === undefined) ? undefined : items;
    }
    case 'unary': {
      const v = constant(e.operand);
      if (e.op === '-' && typeof v === 'number') return -v;
      if (e.op === '-' && typeof v === 'string' && /^[0-9]+$/.test(v)) return '-' + v;
      return undefined;
    }
    default:
      return undefined;
  }
}

function argument(call: Extract<Expr, { kind: 'call' }>, names: string[], name: string): Expr | undefined {
  const kw = call.kwargs.find(([k]) => k === name);
  if (kw) return kw[1];
  const i = names.indexOf(name);
  return i >= 0 ? call.args[i] : undefined;
}

const TYPED_NAMES = ['name', 'default', 'description', 'required', 'example', 'format'];
const ARRAY_NAMES = ['name', 'type', 'default', 'description', 'required', 'example', 'format'];

/** Collects parameters from parsed template nodes: typed ones in order of appearance, then names only tested or used as columns. */
export function collectParameters(nodes: TemplateNode[]): TemplateParameter[] {
  const found = new Map<string, TemplateParameter>();
  const bound = new Set<string>();
  const loose: string[] = [];

  const note = (p: TemplateParameter): void => {
    // A name read before a `{% set %}` or `{% for %}` binds it is still the request's
    // (`{% set limit = Int32(limit, 10) %}` declares `limit`).
    if (bound.has(p.name)) return;
    const prev = found.get(p.name);
    if (!prev) {
      found.set(p.name, p);
      return;
    }
    if (prev.type === 'String' && p.type !== 'String' && prev.default === undefined) prev.type = p.type;
    prev.required ||= p.required;
    for (const k of ['default', 'description', 'example', 'format'] as const) {
      if (prev[k] === undefined && p[k] !== undefined) (prev as unknown as Record<string, unknown>)[k] = p[k];
    }
  };

  const looseDefaults = new Map<string, unknown>();
  const expr = (e: Expr): void => {
    switch (e.kind) {
      case 'call': {
        const first = e.args[0] ?? e.kwargs.find(([k]) => k === 'name' || k === 'value')?.[1];
        if (TYPED_FUNCTIONS.has(e.name) && first?.kind === 'name') {
          const isArray = e.name === 'Array';
          const names = isArray ? ARRAY_NAMES : TYPED_NAMES;
          const elementType = isArray ? constant(argument(e, names, 'type')) ?? 'String' : undefined;
          const p: TemplateParameter = {
            name: first.name,
            type: isArray ? `Array(${String(elementType)})` : e.name,
            required: constant(argument(e, names, 'required')) === true,
          };
          const def = constant(argument(e, names, 'default'));
          if (def !== undefined && def !== null) p.default = def;
          const description = constant(argument(e, names, 'description'));
          if (typeof description === 'string') p.description = description;
          const example = constant(argument(e, names, 'example'));
          if (example !== undefined && example !== null) p.example = example;
          const format = constant(argument(e, names, 'format'));
          if (typeof format === 'string') p.format = format;
          note(p);
        } else if (['defined', 'column', 'columns', 'symbol', 'split_to_array'].includes(e.name) && first?.kind === 'name') {
          if (!bound.has(first.name)) {
            loose.push(first.name);
            // `column(order_by, 'views')`: the second argument is what a call without it gets.
            const def = e.name === 'defined' ? undefined : constant(e.args[1] ?? e.kwargs.find(([k]) => k === 'default')?.[1]);
            if (def !== undefined && def !== null && !looseDefaults.has(first.name)) looseDefaults.set(first.name, def);
          }
        }
        for (const a of e.args) expr(a);
        for (const [, a] of e.kwargs) expr(a);
        return;
      }
      case 'name':
        if (!bound.has(e.name)) loose.push(e.name);
        return;
      case 'list':
        e.items.forEach(expr);
        return;
      case 'dict':
        for (const [k, v] of e.entries) {
          expr(k);
          expr(v);
        }
        return;
      case 'unary':
        expr(e.operand);
        return;
      case 'binary':
      case 'bool':
        expr(e.left);
        expr(e.right);
        return;
      case 'compare':
        expr(e.first);
        e.rest.forEach(expr);
        return;
      case 'ternary':
        expr(e.cond);
        expr(e.then);
        expr(e.otherwise);
        return;
      case 'index':
        expr(e.target);
        expr(e.index);
        return;
      case 'attr':
        expr(e.target);
        return;
      case 'literal':
        return;
    }
  };

  const walk = (list: TemplateNode[]): void => {
    for (const n of list) {
      switch (n.kind) {
        case 'output':
          expr(n.expr);
          break;
        case 'set':
          expr(n.expr);
          bound.add(n.name);
          break;
        case 'if':
          for (const b of n.branches) {
            expr(b.cond);
            walk(b.body);
          }
          if (n.otherwise) walk(n.otherwise);
          break;
        case 'for':
          expr(n.iterable);
          n.targets.forEach((t) => bound.add(t));
          walk(n.body);
          break;
        default:
          break;
      }
    }
  };
  walk(nodes);

  for (const name of loose) {
    if (found.has(name) || RESERVED.has(name)) continue;
    const def = looseDefaults.get(name);
    found.set(name, def === undefined ? { name, type: 'String', required: false } : { name, type: 'String', default: def, required: false });
  }
  return [...found.values()];
}
