/**
 * The names a template could read as tables, from the template alone: the words of its SQL text
 * in a table's place (after `FROM`, `JOIN` or `IN`, and after a comma in a `FROM` list) in every
 * `{% if %}` / `{% else %}` / `{% for %}` body, whichever a call takes, and the string literals
 * inside `{{ }}` and `{% %}` that are names or comma-separated lists of names
 * (`{{ symbol('b') }}`, `{% set t = 'b' %}`, `columns('a,b')`). Not read: `{# #}` comments, SQL
 * comments and string literals, words right after a `.` (`t.b`), function and table-function
 * names (`numbers(10)`), aliases and columns (`count() AS pageviews`), message texts inside tags
 * (`custom_error({'error': 'pageviews missing'})`). Over-inclusive where a branch or a tag hides
 * what comes before a word: callers keep the words that name something (a node, a pipe).
 */
import type { Expr, TemplateNode } from './parser.js';

const NAME_LIST = /^\s*[A-Za-z_][A-Za-z0-9_]*(\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*\s*$/;
const WORD = /[A-Za-z_][A-Za-z0-9_]*/g;

function literalNames(s: string, out: Set<string>): void {
  if (NAME_LIST.test(s)) for (const m of s.matchAll(WORD)) out.add(m[0]);
}

function fromExpr(e: Expr, out: Set<string>): void {
  switch (e.kind) {
    case 'literal':
      if (typeof e.value === 'string') literalNames(e.value, out);
      return;
    case 'name':
      return;
    case 'list':
      for (const x of e.items) fromExpr(x, out);
      return;
    case 'dict':
      // Keys are not written into the SQL (`{'error': ...}`); values may be.
      for (const [, v] of e.entries) fromExpr(v, out);
      return;
    case 'unary':
      fromExpr(e.operand, out);
      return;
    case 'binary':
    case 'bool':
      fromExpr(e.left, out);
      fromExpr(e.right, out);
      return;
    case 'compare':
      fromExpr(e.first, out);
      for (const x of e.rest) fromExpr(x, out);
      return;
    case 'ternary':
      fromExpr(e.cond, out);
      fromExpr(e.then, out);
      fromExpr(e.otherwise, out);
      return;
    case 'index':
      fromExpr(e.target, out);
      fromExpr(e.index, out);
      return;
    case 'attr':
      fromExpr(e.target, out);
      return;
    case 'call':
      for (const x of e.args) fromExpr(x, out);
      for (const [, v] of e.kwargs) fromExpr(v, out);
      return;
  }
}

/**
 * Where the SQL text scan stands: inside a string, quoted name or block comment that a tag
 * interrupted (`'{{x}}'`), and whether the next word is in a table's place.
 */
interface Scan {
  /** The closing quote (`'`, `"`, `` ` ``) or `*\/` awaited, if any. */
  open: string | undefined;
  /** Text of a quoted name interrupted by a tag (`` `a{{x}}` ``): not a whole name. */
  broken: boolean;
  /** `table`: the next name is read as a table; `list`: a table was just named (a comma continues the list); `none`. */
  place: 'table' | 'list' | 'none';
  /** The word before, upper-cased (`ARRAY` before `JOIN`). */
  last: string;
  /** A word waiting to know whether `(` follows it (a function, not a table). */
  pending: string | undefined;
}

const TABLE_BEFORE = new Set(['FROM', 'JOIN', 'IN']);
/** Words that may stand between a table and a comma continuing a `FROM` list. */
const AFTER_TABLE = new Set(['AS', 'FINAL']);
/** Words that end a `FROM` list's item (any other bare word right after a table is its alias). */
const CLAUSE = new Set([
  'WHERE', 'PREWHERE', 'GROUP', 'ORDER', 'LIMIT', 'HAVING', 'JOIN', 'LEFT', 'RIGHT', 'INNER', 'OUTER', 'FULL', 'CROSS',
  'ANY', 'ALL', 'ASOF', 'SEMI', 'ANTI', 'GLOBAL', 'ARRAY', 'ON', 'USING', 'SAMPLE', 'UNION', 'SETTINGS', 'FORMAT',
  'WINDOW', 'QUALIFY', 'INTERSECT', 'EXCEPT', 'OFFSET', 'INTO', 'WITH', 'PASTE', 'SELECT', 'AND', 'OR', 'NOT', 'IN',
]);

function flush(s: Scan, out: Set<string>, call: boolean): void {
  if (s.pending !== undefined && !call) out.add(s.pending);
  s.pending = undefined;
}

/** A name read: a candidate when in a table's place (and not a function, known at the next token). */
function name(s: Scan, word: string, quoted: boolean, out: Set<string>): void {
  flush(s, out, false);
  const upper = word.toUpperCase();
  if (s.place === 'table') {
    s.pending = word;
    s.place = 'list';
  } else if (!quoted && TABLE_BEFORE.has(upper) && !(upper === 'JOIN' && s.last === 'ARRAY')) {
    s.place = 'table';
  } else if (s.place === 'list') {
    // After a table: `AS` and `FINAL` keep its list going, so does one alias (`t AS a`, `t a`).
    const alias = (quoted || (!CLAUSE.has(upper) && !AFTER_TABLE.has(upper))) && (s.last === 'AS' || s.last === '\u0000table');
    if (!AFTER_TABLE.has(upper) && !alias) s.place = 'none';
    if (alias) { s.last = ''; return; }
  }
  s.last = s.place === 'list' && s.pending !== undefined ? '\u0000table' : quoted ? '' : upper;
}

/** Scans one piece of SQL text, continuing the state the text before it left. */
function scanText(text: string, s: Scan, out: Set<string>): void {
  let i = 0;
  const n = text.length;
  while (i < n) {
    if (s.open !== undefined) {
      const end = s.open === '*/' ? text.indexOf('*/', i) : closeQuote(text, i, s.open);
      if (s.open === '`' || s.open === '"') {
        const body = text.slice(i, end < 0 ? n : end);
        if (end >= 0 && !s.broken) name(s, body, true, out);
        else if (end >= 0 && s.place === 'table') s.place = 'list';  // a name built by a tag: a table's, unknown
        else s.broken = true;
      }
      if (end < 0) return;
      i = end + s.open.length;
      s.open = undefined;
      s.broken = false;
      continue;
    }
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') { i++; continue; }
    if (c === '-' && text[i + 1] === '-') {
      const eol = text.indexOf('\n', i);
      if (eol < 0) return;
      i = eol + 1;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') { s.open = '*/'; i += 2; continue; }
    if (c === "'" || c === '"' || c === '`') {
      flush(s, out, false);
      if (c === "'") { s.place = 'none'; s.last = ''; }
      s.open = c;
      s.broken = false;
      i++;
      continue;
    }
    const w = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i, i + 256));
    if (w) {
      // Right after a `.`: a column or a table of a database, not a name of the workspace.
      const qualified = i > 0 && text[i - 1] === '.';
      if (qualified) { s.place = s.place === 'list' ? 'list' : 'none'; s.last = ''; } else name(s, w[0], false, out);
      i += w[0].length;
      continue;
    }
    if (/[0-9]/.test(c)) {
      flush(s, out, false);
      s.place = 'none';
      s.last = '';
      while (i < n && /[0-9A-Za-z_.]/.test(text[i]!)) i++;
      continue;
    }
    // Punctuation: `(` after a word makes it a function, `.` a database's name; a comma
    // continues a FROM list.
    if (c === '.') { s.pending = undefined; i++; continue; }
    if (c === '(' && s.pending !== undefined && s.place === 'list') {
      // A table function (`numbers(10)`): its arguments are skipped, the FROM list goes on.
      const close = matchingParen(text, i);
      if (close >= 0) { s.pending = undefined; s.last = '\u0000table'; i = close + 1; continue; }
    }
    flush(s, out, c === '(');
    if (c === ',' && s.place === 'list') s.place = 'table';
    else if (c !== '.') s.place = 'none';
    s.last = c;
    i++;
  }
}

/** Index of the `)` closing the `(` at `open` in the same text (quotes skipped), or -1. */
function matchingParen(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"' || c === '`') {
      const end = closeQuote(text, i + 1, c);
      if (end < 0) return -1;
      i = end;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  return -1;
}

/** Index of the quote closing a quoted text that started before `from` (`''` and `\'` escape), or -1. */
function closeQuote(text: string, from: number, q: string): number {
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') { i++; continue; }
    if (c === q) {
      if (text[i + 1] === q) { i++; continue; }
      return i;
    }
  }
  return -1;
}

function copy(s: Scan): Scan {
  return { ...s };
}

/** After branches: the name in a table's place if any branch (or no branch) leaves it there. */
function merge(s: Scan, ends: Scan[]): void {
  const places = ends.map((e) => e.place);
  s.place = places.includes('table') ? 'table' : places.includes('list') ? 'list' : 'none';
  s.open = ends.find((e) => e.open !== undefined)?.open;
  s.broken = ends.some((e) => e.broken);
  s.last = ends.length === 1 ? ends[0]!.last : '';
  s.pending = undefined;
}

function walk(nodes: TemplateNode[], s: Scan, out: Set<string>): void {
  for (const n of nodes) {
    switch (n.kind) {
      case 'text':
        scanText(n.text, s, out);
        break;
      case 'output': {
        // A tag's output is a value or a name (`symbol()`): the words after it are read as
        // after a table when one was expected here.
        flush(s, out, false);
        fromExpr(n.expr, out);
        if (s.open === '`' || s.open === '"') s.broken = true;
        else if (s.open === undefined) { s.place = s.place === 'table' ? 'list' : 'none'; s.last = ''; }
        break;
      }
      case 'if': {
        flush(s, out, false);
        const ends: Scan[] = [];
        for (const b of n.branches) {
          fromExpr(b.cond, out);
          const t = copy(s);
          walk(b.body, t, out);
          flush(t, out, false);
          ends.push(t);
        }
        const t = copy(s);
        if (n.otherwise) walk(n.otherwise, t, out);
        flush(t, out, false);
        ends.push(t);
        merge(s, ends);
        break;
      }
      case 'for': {
        flush(s, out, false);
        fromExpr(n.iterable, out);
        const t = copy(s);
        walk(n.body, t, out);
        flush(t, out, false);
        // The body may run no time: what stood before stays possible.
        merge(s, [t, copy(s)]);
        break;
      }
      case 'set':
        fromExpr(n.expr, out);
        break;
      case 'loopctl':
        break;
    }
  }
}

/** The candidate names of parsed template nodes, first appearance first. */
export function collectNames(nodes: TemplateNode[], out = new Set<string>()): Set<string> {
  const s: Scan = { open: undefined, broken: false, place: 'none', last: '', pending: undefined };
  walk(nodes, s, out);
  flush(s, out, false);
  return out;
}
