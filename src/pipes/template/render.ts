/**
 * The entry points: recognise a template, render it, list its parameters.
 */
import { evaluate, type RequestParams } from './evaluate.js';
import { collectParameters, type TemplateParameter } from './parameters.js';
import { parseTemplate, type TemplateNode } from './parser.js';
import { collectNames } from './names.js';

/** A first line holding only `%` (spaces around it allowed). */
const HEADER = /^[ \t]*(?:\r?\n[ \t]*)*%[ \t]*(?:\r?\n|$)/;

export interface RenderOptions {
  /** Values that override request parameters of the same name (a JWT's `fixed_params`). */
  fixedParams?: Record<string, unknown>;
  /**
   * Render without real values: a parameter that is not given takes its
   * default, else its `example=`, else a neutral value of its type, and
   * `defined()` answers true. For checking a node's SQL when it is saved.
   */
  defaults?: boolean;
  /**
   * Work shared by the renders of one call (every template node of a pipe, and of the pipes it
   * reads): one call may spend MAX_WORK in all, not MAX_WORK a node.
   */
  budget?: { spent: number };
}

export interface RenderResult {
  /** The SQL with every expression replaced by escaped literals and identifiers. */
  sql: string;
  /** Set by `max_threads(n)`. */
  maxThreads?: number;
  /** Request or fixed parameters the rendering read, sorted. */
  usedParams: string[];
}

/**
 * True when `sql` is a template: its first non-blank line is `%` alone.
 *
 * @example
 * isTemplate('%\nSELECT {{Int32(n, 1)}}') // true
 * isTemplate('SELECT 1 % 2')               // false
 */
export function isTemplate(sql: string): boolean {
  return HEADER.test(sql);
}

const cache = new Map<string, { nodes: TemplateNode[] }>();
const CACHE_LIMIT = 512;
const CACHE_MAX_SQL = 64 * 1024;

/** Parses (with a small cache: endpoints render the same node on every call). */
function parsed(sql: string): TemplateNode[] {
  const hit = cache.get(sql);
  if (hit) return hit.nodes;
  const m = HEADER.exec(sql);
  const nodes = parseTemplate(sql, m ? m[0].length : 0);
  // Only small templates are kept, so the cache stays small whatever is sent.
  if (sql.length <= CACHE_MAX_SQL) {
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(sql, { nodes });
  }
  return nodes;
}

/**
 * Renders a node's SQL. A template (see `isTemplate`) has its `%` line
 * removed and its expressions evaluated against `params`; any other SQL is
 * answered unchanged. Every value is validated against its declared type and
 * written as a ClickHouse literal or quoted identifier.
 *
 * Throws `RoostError`s: `TEMPLATE_SYNTAX` (400, with line and column),
 * `TEMPLATE_PARAMETER` (400, naming the parameter and expected type),
 * `TEMPLATE_INVALID` (422), `TEMPLATE_ERROR` (the template's own `error()`).
 *
 * @example
 * renderTemplate('%\nSELECT * FROM t WHERE c = {{String(c, "x")}}', { c: "it's" })
 * // { sql: "SELECT * FROM t WHERE c = 'it\\'s'", usedParams: ['c'] }
 */
export function renderTemplate(sql: string, params: RequestParams, opts: RenderOptions = {}): RenderResult {
  if (!isTemplate(sql)) return { sql, usedParams: [] };
  return evaluate(sql, parsed(sql), params, opts);
}

/**
 * The parameters a template declares, read from the template alone: name,
 * type, default, description, required, example, format. Names read only after a
 * `{% set %}` or `{% for %}` binds them are not parameters (`{% set n = Int32(n, 5) %}`
 * declares `n`). Non-templates have none.
 *
 * @example
 * templateParameters('%\nSELECT {{Int32(lim, 10, description="rows")}}')
 * // [{ name: 'lim', type: 'Int32', default: 10, description: 'rows', required: false }]
 */
export function templateParameters(sql: string): TemplateParameter[] {
  if (!isTemplate(sql)) return [];
  return collectParameters(parsed(sql));
}

/**
 * The names a template could read as tables whatever the call's values: the words in a table's
 * place of its SQL text in every branch, and the name literals of its tags there and in `set` and
 * `for` (see names.ts). Used to record which nodes and pipes a template node may read (see
 * docs/templates.md). Non-templates: none.
 *
 * @example
 * templateNames('%\nSELECT * FROM {% if defined(x) %}a{% else %}b{% end %}') // ['a', 'b']
 */
export function templateNames(sql: string): string[] {
  if (!isTemplate(sql)) return [];
  return [...collectNames(parsed(sql))];
}
