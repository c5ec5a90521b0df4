/**
 * The names a template could read as tables, from the template alone: the words of its SQL text
 * in a table's place (after `FROM`, `JOIN` or `IN`; after a comma of a `FROM` list, through
 * aliases, `FINAL`, `SAMPLE`, subqueries and table functions) in every `{% if %}` / `{% else %}` /
 * `{% for %}` body, whichever a call takes, and the string literals that are names or
 * comma-separated lists of names in tags written in a table's place (`FROM {{ symbol('b') }}`)
 * and in `{% set %}` and `{% for %}` (their values may be written there later). Not read: `{# #}`,
 * SQL comments (`--`, `#`, block comments), strings and heredocs, words right after a `.` (`t.b`,
 * `db.t`), function and table-function names (`numbers(10)`), aliases and columns
 * (`count() AS pageviews`), FROM and IN inside TRIM/EXTRACT/SUBSTRING/position, and tag values
 * elsewhere (a default, an enum, a description, a condition, a message). Over-inclusive where a
 * branch or a tag hides what comes before a word; linear in the text. Callers keep the words that
 * name something (a node, a pipe).
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
 * Where the SQL text scan stands: inside a string, quoted name, heredoc or block comment that a
 * tag interrupted (`'{{x}}'`), the brackets open, and whether the next word is in a table's place.
 */
interface Scan {
  /** What closes the quoted text or comment we are in (`'`, `"`, `` ` ``, `*\/`, `$tag$`), if any. */
  open: string | undefined;
  /** Text of a quoted name interrupted by a tag (`` `a{{x}}` ``): not a whole name. */
  broken: boolean;
  /** `table`: the next name is read as a table; `list`: a table was just named (a comma continues the list); `none`. */
  place: 'table' | 'list' | 'none';
  /** The word before, upper-cased (`ARRAY` before `JOIN`); `\u0000table` right after a table. */
  last: string;
  /** A word waiting to know whether `(` follows it (a function, not a table). */
  pending: string | undefined;
  /**
   * Open brackets, innermost first: what each holds (`syntax`: TRIM(... FROM ...), whose FROM and
   * IN name no table) and the place after it. A list sharing its tail, so that a branch's copy of
   * the scan is a pointer (copies of a deep stack per `{% elif %}` took gigabytes).
   */
  brackets: Bracket | undefined;
  /** Brackets opened past MAX_BRACKETS (closed first, before the tracked ones). */
  overflow: number;
  /** Branches left the brackets at different depths: a `)` may close a FROM's, so it leaves a table named. */
  loose: boolean;
  /** The table's place was opened by IN (a value list or a table): tag values there are values. */
  viaIn: boolean;
}

interface Bracket { syntax: boolean; after: 'list' | 'none'; parent: Bracket | undefined; depth: number }

/** Deeper than any query the engine parses: brackets past it are not tracked. */
const MAX_BRACKETS = 1000;

const TABLE_BEFORE = new Set(['FROM', 'JOIN', 'IN']);
/** Words that may stand between a table and a comma continuing a `FROM` list. */
const AFTER_TABLE = new Set(['AS', 'FINAL', 'SAMPLE', 'OFFSET']);
/** Words that end a `FROM` list's item (any other bare word right after a table is its alias). */
const CLAUSE = new Set([
  'WHERE', 'PREWHERE', 'GROUP', 'ORDER', 'LIMIT', 'HAVING', 'JOIN', 'LEFT', 'RIGHT', 'INNER', 'OUTER', 'FULL', 'CROSS',
  'ANY', 'ALL', 'ASOF', 'SEMI', 'ANTI', 'GLOBAL', 'ARRAY', 'ON', 'USING', 'SAMPLE', 'UNION', 'SETTINGS', 'FORMAT',
  'WINDOW', 'QUALIFY', 'INTERSECT', 'EXCEPT', 'OFFSET', 'INTO', 'WITH', 'PASTE', 'SELECT', 'AND', 'OR', 'NOT', 'IN',
]);
/** Functions whose brackets hold FROM or IN of their own syntax (TRIM(BOTH ' ' FROM s), position(a IN b)). */
const SYNTAX_CALLS = new Set(['TRIM', 'LTRIM', 'RTRIM', 'EXTRACT', 'SUBSTRING', 'POSITION', 'OVERLAY']);

function flush(s: Scan, out: Set<string>, call: boolean): void {
  if (s.pending !== undefined && !call) out.add(s.pending);
  s.pending = undefined;
}

/** Inside TRIM(... FROM ...) and the like: FROM and IN there name no table. */
function inSyntaxCall(s: Scan): boolean {
  return s.brackets?.syntax === true;
}

/** A name read: a candidate when in a table's place (and not a function, known at the next token). */
function name(s: Scan, word: string, quoted: boolean, out: Set<string>): void {
  flush(s, out, false);
  const upper = word.toUpperCase();
  // `IN (SELECT ...)`, `IN (WITH ...)`, `IN (FROM t SELECT ...)`: a subquery, not a table named SELECT.
  if (s.place === 'table' && !quoted && (upper === 'SELECT' || upper === 'WITH' || upper === 'FROM')) s.place = 'none';
  if (s.place === 'table') {
    s.pending = word;
    s.place = 'list';
  } else if (!quoted && TABLE_BEFORE.has(upper) && !(upper === 'JOIN' && s.last === 'ARRAY') && !inSyntaxCall(s)) {
    s.place = 'table';
    s.viaIn = upper === 'IN';
  } else if (s.place === 'list') {
    // After a table: `AS`, `FINAL`, `SAMPLE` and `OFFSET` keep its list going, so does one alias (`t AS a`, `t a`).
    const alias = (quoted || (!CLAUSE.has(upper) && !AFTER_TABLE.has(upper))) && (s.last === 'AS' || s.last === '\u0000table');
    if (!AFTER_TABLE.has(upper) && !alias) s.place = 'none';
    if (alias) { s.last = ''; return; }
  }
  s.last = s.place === 'list' && s.pending !== undefined ? '\u0000table' : quoted ? '' : upper;
}

/** The closing text of a heredoc opened at `i` (`$$`, `$tag$`), or undefined when `$` opens none here. */
function heredocTag(text: string, i: number): string | undefined {
  const m = /^\$[A-Za-z0-9_]*\$/.exec(text.slice(i, i + 66));
  return m ? m[0] : undefined;
}

/** Scans one piece of SQL text, continuing the state the text before it left. Linear in the text. */
function scanText(text: string, s: Scan, out: Set<string>): void {
  let i = 0;
  const n = text.length;
  while (i < n) {
    if (s.open !== undefined) {
      const end = s.open === "'" || s.open === '"' || s.open === '`' ? closeQuote(text, i, s.open) : text.indexOf(s.open, i);
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
    if ((c === '-' && text[i + 1] === '-') || (c === '#' && (text[i + 1] === ' ' || text[i + 1] === '!'))) {
      // A line comment: to the end of the line, also past a tag written in it.
      s.open = '\n';
      i += 2;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') { s.open = '*/'; i += 2; continue; }
    const tag = c === '$' ? heredocTag(text, i) : undefined;
    if (c === "'" || c === '"' || c === '`' || tag) {
      flush(s, out, false);
      if (c === "'" || tag) { s.place = s.place === 'list' ? 'list' : 'none'; s.last = ''; }
      s.open = tag ?? c;
      s.broken = false;
      i += tag ? tag.length : 1;
      continue;
    }
    const w = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(text.slice(i, i + 256));
    if (w) {
      // Right after a `.`: a column or a table of a database, not a name of the workspace.
      const qualified = i > 0 && text[i - 1] === '.';
      if (qualified) { s.place = s.place === 'list' ? 'list' : 'none'; s.last = ''; } else name(s, w[0], false, out);
      i += w[0].length;
      continue;
    }
    if (/[0-9]/.test(c)) {
      // A number right after a table (SAMPLE 0.1, OFFSET 5) keeps its FROM list going.
      flush(s, out, false);
      if (s.place !== 'list') s.place = 'none';
      s.last = '';
      while (i < n && /[0-9A-Za-z_.]/.test(text[i]!)) i++;
      continue;
    }
    // Punctuation: `(` after a word makes it a function, `.` a database's name; a comma continues
    // a FROM list; brackets in a table's place (a subquery, a table function) leave one named.
    if (c === '.') { s.pending = undefined; i++; continue; }
    const calledAsTable = c === '(' && s.pending !== undefined && s.place === 'list';
    // The word before a `(`: the function it calls (a pending table name, or the last word).
    const fn = c === '(' ? (s.pending !== undefined ? s.pending.toUpperCase() : s.last) : undefined;
    flush(s, out, c === '(');
    if (c === '(') {
      // A subquery or table function in FROM/JOIN leaves a table named; IN's (a list, a subquery)
      // does not, but a name alone in it is a table (`x IN (t)`, as the analyzer reads it).
      const inList = s.place === 'table' && s.last === 'IN';
      const depth = (s.brackets?.depth ?? 0) + 1;
      if (depth <= MAX_BRACKETS && s.overflow === 0) s.brackets = { syntax: fn !== undefined && SYNTAX_CALLS.has(fn), after: calledAsTable || (s.place === 'table' && !inList) ? 'list' : 'none', parent: s.brackets, depth };
      else s.overflow++;
      s.place = inList ? 'table' : 'none';
      if (inList) s.viaIn = true;
    } else if (c === ')') {
      if (s.overflow > 0) {
        // Not tracked past the bound: read as one that leaves a table named (more names, not fewer).
        s.overflow--;
        s.place = 'list';
        s.last = '\u0000table';
        i++;
        continue;
      } else {
        s.place = s.loose ? 'list' : s.brackets?.after ?? 'none';
        s.brackets = s.brackets?.parent;
      }
      s.last = s.place === 'list' ? '\u0000table' : ')';
      i++;
      continue;
    } else if (c === ',' && s.place === 'list') s.place = 'table';
    else if (!(s.place === 'list' && c === '/')) s.place = 'none';
    s.last = c;
    i++;
  }
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
  // Inside a quote or comment only when every branch ends there (else read as SQL: more names, not fewer).
  s.open = ends.every((e) => e.open === ends[0]!.open) ? ends[0]!.open : undefined;
  s.broken = ends.some((e) => e.broken);
  s.last = ends.length === 1 ? ends[0]!.last : '';
  s.pending = undefined;
  // Brackets opened or closed in a branch: the deepest account (a name in a syntax call's FROM is
  // then read as a table: the safe side).
  s.brackets = ends.reduce((a, e) => ((e.brackets?.depth ?? 0) > (a?.depth ?? 0) ? e.brackets : a), s.brackets);
  s.overflow = Math.max(...ends.map((e) => e.overflow));
  s.viaIn = ends.some((e) => e.viaIn);
  if (ends.some((e) => e.brackets !== ends[0]!.brackets || e.overflow !== ends[0]!.overflow)) s.loose = true;
  else s.loose = ends.some((e) => e.loose);
}

function walk(nodes: TemplateNode[], s: Scan, out: Set<string>): void {
  for (const n of nodes) {
    switch (n.kind) {
      case 'text':
        scanText(n.text, s, out);
        break;
      case 'output': {
        // A tag's output is a value or a name (`symbol()`): in a table's place its string
        // literals are the names it may write (not elsewhere: a default, an enum, a description
        // there is a value). The words after it are read as after a table when one was expected.
        flush(s, out, false);
        if (s.place === 'table' && !s.viaIn && s.open === undefined) fromExpr(n.expr, out);
        if (s.open === '`' || s.open === '"') s.broken = true;
        else if (s.open === undefined) { s.place = s.place === 'table' ? 'list' : 'none'; s.last = s.place === 'list' ? '\u0000table' : ''; }
        break;
      }
      case 'if': {
        flush(s, out, false);
        // (Conditions write nothing into the SQL.)
        const ends: Scan[] = [];
        for (const b of n.branches) {
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
        // A value set may be written in a table's place later (`{{ symbol(t) }}`).
        fromExpr(n.expr, out);
        break;
      case 'loopctl':
        break;
    }
  }
}

/** The candidate names of parsed template nodes, first appearance first. */
export function collectNames(nodes: TemplateNode[], out = new Set<string>()): Set<string> {
  const s: Scan = { open: undefined, broken: false, place: 'none', last: '', pending: undefined, brackets: undefined, overflow: 0, loose: false, viaIn: false };
  walk(nodes, s, out);
  flush(s, out, false);
  return out;
}
