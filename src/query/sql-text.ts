/**
 * Where a piece of SQL text written by a user (a delete or replace condition, a DEFAULT, a
 * sorting key, a row filter) could leave the brackets Roost puts it in. These pieces go into
 * statements the analyzer does not see whole, so their own structure is checked here, the way
 * ClickHouse's lexer (and the analyzer's, native/core/sql/lexer.cc) reads it: quotes, `--` and
 * `//` line comments, nested block comments, heredocs.
 */

export interface SqlTextRules {
  /**
   * Line comments (`--`, `//`) allowed: the text is followed by a line end where it is placed.
   * Otherwise one is refused (it would take what follows the text on its line).
   */
  lineComments: boolean;
}

/**
 * Where the quoted string, name or identifier opened at `open` ends (the index of its closing
 * quote), read as ClickHouse's lexer reads it: backslash escapes, the quote doubled inside;
 * `text.length` or more when it is not closed.
 */
function quoteEnd(text: string, open: number): number {
  const q = text[open];
  let j = open + 1;
  for (; j < text.length; j++) {
    if (text[j] === '\\') { j++; continue; }
    if (text[j] === q) {
      if (text[j + 1] === q) { j++; continue; }
      break;
    }
  }
  return j;
}

/**
 * Why `text` is not one self-contained piece (a quote or comment left open, a bracket closed
 * that it did not open or left open, a `;`, a `#` or `$` outside quotes), or undefined.
 */
export function sqlTextEscapes(text: string, rules: SqlTextRules): string | undefined {
  const closing: Record<string, string> = { '(': ')', '[': ']', '{': '}' };
  const open: string[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"' || ch === '`') {
      const j = quoteEnd(text, i);
      if (j >= text.length) return `a ${ch} quote is not closed`;
      i = j;
    } else if ((ch === '-' || ch === '/') && text[i + 1] === ch) {
      // `//` is a line comment too (ClickHouse): brackets and quotes after it do not count.
      if (!rules.lineComments) return `it holds a ${ch}${ch} comment`;
      const nl = text.indexOf('\n', i);
      if (nl < 0) break;
      i = nl;
    } else if (ch === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2);
      if (close < 0) return 'a /* comment is not closed';
      if (text.slice(i + 2, close).includes('/*')) return 'a /* comment holds another /*';
      i = close + 1;
    } else if (ch === '#' || ch === '$') {
      return `"${ch}" outside quotes`;
    } else if (ch === ';') {
      return 'it holds a ";" (one expression, not statements)';
    } else if (closing[ch]) {
      open.push(closing[ch]!);
    } else if (ch === ')' || ch === ']' || ch === '}') {
      if (open.pop() !== ch) return `"${ch}" closes a bracket it did not open`;
    }
  }
  if (open.length) return `a bracket is not closed (expected "${open[open.length - 1]}")`;
  return undefined;
}

/** Words that begin a query's clause (or a set operation) and never follow an operand in an expression. */
const CLAUSES = new Set(['SETTINGS', 'FORMAT', 'LIMIT', 'OFFSET', 'ORDER', 'GROUP', 'HAVING', 'WINDOW', 'QUALIFY',
  'UNION', 'EXCEPT', 'INTERSECT', 'INTO', 'FROM', 'WHERE', 'PREWHERE', 'SAMPLE', 'JOIN', 'ARRAY', 'FETCH']);
/** Words after which an operand is still to come: an expression's operators and keywords. */
const LEADS = new Set(['AND', 'OR', 'NOT', 'IS', 'IN', 'LIKE', 'ILIKE', 'BETWEEN', 'GLOBAL', 'AS', 'CASE', 'WHEN',
  'THEN', 'ELSE', 'INTERVAL', 'DISTINCT', 'ALL', 'ANY', 'EXISTS', 'MOD', 'DIV', 'REGEXP', 'AT', 'TIME', 'ZONE', 'SELECT', 'WITH']);

/**
 * The first clause keyword of a query (`SETTINGS`, `LIMIT`, `ORDER BY`, `UNION`, ...) that `text`
 * holds outside brackets right after an operand, or undefined. Such a word ends an expression:
 * `org = 'acme' SETTINGS max_threads = 1` is no expression, and put inside `WHERE (...)` it is a
 * syntax error there. A keyword where an operand is due is a column's name (`order = 1`) and
 * passes. `text` must have passed sqlTextEscapes (quotes closed, brackets balanced).
 */
export function clauseAfterOperand(text: string): string | undefined {
  let depth = 0;
  let operandEnded = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"' || ch === '`') {
      i = quoteEnd(text, i);
      operandEnded = true;
    } else if ((ch === '-' || ch === '/') && text[i + 1] === ch) {
      const nl = text.indexOf('\n', i);
      if (nl < 0) break;
      i = nl;
    } else if (ch === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2);
      if (close < 0) break;
      i = close + 1;
    } else if (ch === '(' || ch === '[' || ch === '{') {
      depth++;
      operandEnded = false;
    } else if (ch === ')' || ch === ']' || ch === '}') {
      depth--;
      operandEnded = true;
    } else if (/[A-Za-z_0-9]/.test(ch)) {
      let j = i;
      while (j < text.length && /[A-Za-z_0-9]/.test(text[j]!)) j++;
      const word = text.slice(i, j).toUpperCase();
      if (depth === 0 && operandEnded && CLAUSES.has(word)) return word;
      operandEnded = !LEADS.has(word);
      i = j - 1;
    } else if (!/\s/.test(ch)) {
      operandEnded = false;
    }
  }
  return undefined;
}

/**
 * Whether `text` calls the function `name` (compared without case), outside string literals and
 * comments: a bare or quoted (`` `name` ``, `"name"`) identifier followed, past spaces and
 * comments, by `(`. `text` must have passed sqlTextEscapes.
 */
export function callsFunction(text: string, name: string): boolean {
  const want = name.toLowerCase();
  /** Past spaces and comments from `i`. */
  const skip = (i: number): number => {
    for (;;) {
      while (i < text.length && /\s/.test(text[i]!)) i++;
      if ((text[i] === '-' || text[i] === '/') && text[i + 1] === text[i]) { const nl = text.indexOf('\n', i); i = nl < 0 ? text.length : nl; continue; }
      if (text[i] === '/' && text[i + 1] === '*') { const close = text.indexOf('*/', i + 2); i = close < 0 ? text.length : close + 2; continue; }
      return i;
    }
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    let word: string | undefined;
    let end = i;
    if (ch === "'") { i = quoteEnd(text, i); continue; }
    if (ch === '`' || ch === '"') {
      end = quoteEnd(text, i);
      word = text.slice(i + 1, end);
      end += 1;
    } else if ((ch === '-' || ch === '/') && text[i + 1] === ch) {
      const nl = text.indexOf('\n', i);
      if (nl < 0) break;
      i = nl;
      continue;
    } else if (ch === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2);
      if (close < 0) break;
      i = close + 1;
      continue;
    } else if (/[A-Za-z_]/.test(ch) && (i === 0 || !/[A-Za-z0-9_$]/.test(text[i - 1]!))) {
      while (end < text.length && /[A-Za-z0-9_$]/.test(text[end]!)) end++;
      word = text.slice(i, end);
    }
    if (word === undefined) continue;
    if (word.toLowerCase() === want && text[skip(end)] === '(') return true;
    i = end - 1;
  }
  return false;
}
