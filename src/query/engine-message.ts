/**
 * The embedded engine sends the settings Roost enforces on a query (time limit, threads,
 * readonly) as a `SETTINGS` clause at its end, and ClickHouse quotes that query in some errors:
 * "Unknown expression identifier `idd` in scope SELECT idd FROM ev AS ev SETTINGS
 * max_execution_time = 30, max_threads = 1, readonly = 1". That clause is Roost's, not the
 * user's: it is taken out of messages users see. Only a clause made wholly of the settings
 * sent with the query (`keys`) is removed, so text of the user's own is never touched.
 */
import { RoostError } from '../errors.js';

const VALUE = String.raw`(?:'(?:[^'\\]|\\.)*'|[^\s,'()]+)`;
const ASSIGN = String.raw`([A-Za-z_][A-Za-z0-9_]*)\s*=\s*${VALUE}`;
/**
 * A clause and the whitespace before it. `(?<!\s)` starts a match only where a run of
 * whitespace starts: without it each of a run's n positions read the rest of the run
 * (`\s*`) before failing, n² steps (40,000 spaces quoted from a query: 1.4 s of the event
 * loop). Same matches: the leftmost start of a match was always the start of its run.
 */
const CLAUSE = new RegExp(String.raw`(?<!\s)\s*\bSETTINGS\s+${ASSIGN}(?:\s*,\s*${ASSIGN})*`, 'g');
const KEY = new RegExp(ASSIGN, 'g');

/** Settings the engines add to every query on their own (src/cells/embedded.ts, src/cells/cell-main.ts). */
export const ENGINE_SETTINGS = ['max_execution_time', 'max_result_bytes', 'max_result_rows', 'output_format_parallel_formatting'];

const SYNTAX_HEAD = 'Syntax error: failed at position ';

/**
 * "Syntax error: failed at position N (token): <rest of the query>. Expected one of: ...": where
 * the first such text that is whole starts, and the rest of the query it quotes. What
 * `/Syntax error: failed at position \d+ \([^)]*\): ([^]*?)\. Expected [^]*$/` matches, read in
 * one pass: that regex read the whole message again from each of its heads (quoted from a
 * query, 5,000 of them took 1.5 s).
 */
export function syntaxTail(text: string): { index: number; rest: string } | undefined {
  let paren = -1;
  for (let at = text.indexOf(SYNTAX_HEAD); at >= 0; at = text.indexOf(SYNTAX_HEAD, at + 1)) {
    let i = at + SYNTAX_HEAD.length;
    const digits = i;
    while (i < text.length && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
    if (i === digits || !text.startsWith(' (', i)) continue;
    // The first `)` after the `(` (heads come in order, so the last one found serves until passed).
    if (paren < i + 2) paren = text.indexOf(')', i + 2);
    if (paren < 0) return undefined;
    if (!text.startsWith(': ', paren + 1)) continue;
    const end = text.indexOf('. Expected ', paren + 3);
    // No later head has one after it either.
    if (end < 0) return undefined;
    return { index: at, rest: text.slice(paren + 3, end) };
  }
  return undefined;
}

// States of the automaton `onlySettings` runs, one bit each.
const AT_KEY = 1; // where a `key = value` may start (and the text may end)
const IN_KEY = 2;
const BEFORE_EQ = 4; // spaces between a key and its `=`
const AFTER_EQ = 8; // spaces between `=` and the value
const IN_QUOTED = 16;
const QUOTED_ESCAPE = 32;
const IN_BARE = 64; // a bare value: anything but spaces, commas, quotes and brackets
const AFTER_VALUE = 128; // spaces before an optional comma
const AFTER_COMMA = 256; // spaces after it
const AT_EQ = 512; // only at the start: `= value` without its key

const SPACE = /\s/;
const LINE_END = /[\n\r\u2028\u2029]/;
const KEY_START = /[A-Za-z_]/;
const KEY_CHAR = /[A-Za-z0-9_]/;
const BARE = /[^\s,'()]/;

/** The states reachable from `set` without reading a character. */
function closure(set: number): number {
  if (set & IN_KEY) set |= BEFORE_EQ;
  if (set & IN_BARE) set |= AFTER_VALUE;
  if (set & AFTER_VALUE) set |= AFTER_COMMA;
  if (set & AFTER_COMMA) set |= AT_KEY;
  return set;
}

/** Whether `text` from `from` is `(?:=\s*VALUE\s*,?\s*)?(?:ASSIGN\s*,?\s*)*$`, reading each character once. */
function settingsFrom(text: string, from: number): boolean {
  let set = closure(AT_EQ | AT_KEY);
  for (let i = from; i < text.length && set !== 0; i++) {
    const c = text[i]!;
    const space = SPACE.test(c);
    let next = 0;
    if (set & AT_KEY && KEY_START.test(c)) next |= IN_KEY;
    if (set & IN_KEY && KEY_CHAR.test(c)) next |= IN_KEY;
    if (set & BEFORE_EQ && space) next |= BEFORE_EQ;
    if (set & (BEFORE_EQ | AT_EQ) && c === '=') next |= AFTER_EQ;
    if (set & AFTER_EQ) {
      if (space) next |= AFTER_EQ;
      else if (c === "'") next |= IN_QUOTED;
      else if (BARE.test(c)) next |= IN_BARE;
    }
    if (set & IN_QUOTED) next |= c === '\\' ? QUOTED_ESCAPE : c === "'" ? AFTER_VALUE : IN_QUOTED;
    if (set & QUOTED_ESCAPE && !LINE_END.test(c)) next |= IN_QUOTED;
    if (set & IN_BARE && BARE.test(c)) next |= IN_BARE;
    if (set & AFTER_VALUE) {
      if (space) next |= AFTER_VALUE;
      else if (c === ',') next |= AFTER_COMMA;
    }
    if (set & AFTER_COMMA && space) next |= AFTER_COMMA;
    set = closure(next);
  }
  return (set & AT_KEY) !== 0;
}

/**
 * Whether `text` is only settings, as a clause or the end of one: what
 * `^(?:SETTINGS\s+)?(?:=\s*VALUE\s*,?\s*)?(?:ASSIGN\s*,?\s*)*$` matches. Read as an automaton,
 * every state at once: the regex tried each way of cutting `b=c=c=...` into values and keys
 * (2^n: 34 of them, from a 46-byte query, held the event loop 15 s).
 */
export function onlySettings(text: string): boolean {
  if (settingsFrom(text, 0)) return true;
  if (!text.startsWith('SETTINGS')) return false;
  // `\s+` takes the whole run of spaces: what follows can start with none.
  let i = 8;
  while (i < text.length && SPACE.test(text[i]!)) i++;
  return i > 8 && settingsFrom(text, i);
}

/**
 * A query that ends unfinished (`SELECT`, `SELECT 1,`, `SELECT 1 AS`) fails in ClickHouse's
 * parser inside the clause appended to it, and the error quotes that clause as "the rest of the
 * query": the message then says where the user's query stopped instead.
 */
function unfinished(text: string, known: Set<string>): string | undefined {
  const m = syntaxTail(text);
  if (!m || !onlySettings(m.rest.trim())) return undefined;
  // Every name in it is a setting sent with the query (the clause is Roost's, not the user's).
  const idents = [...m.rest.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)].map((x) => x[0]).filter((w) => w !== 'SETTINGS');
  if (idents.some((w) => !known.has(w))) return undefined;
  // (ClickHouse's "Expected one of" is about its position inside that clause, not the query's end.)
  return `${text.slice(0, m.index)}Syntax error: the query ends before it is complete; finish the expression or clause it ends with.`;
}

export function withoutSettingsClause(text: string, keys: readonly string[]): string {
  if (keys.length === 0) return text;
  const known = new Set(keys);
  if (/Syntax error: failed at position/.test(text)) {
    const u = unfinished(text, known);
    if (u !== undefined) return u;
  }
  if (!text.includes('SETTINGS')) return text;
  return text.replace(CLAUSE, (clause) => {
    const body = clause.replace(/^\s*SETTINGS\s+/, '');
    for (const m of body.matchAll(KEY)) if (!known.has(m[1]!)) return clause;
    return '';
  });
}

/** `withoutSettingsClause` on a `RoostError`'s message, in place (as logs see it too); answers `e`. */
export function withoutSettings<E>(e: E, keys: readonly string[]): E {
  if (e instanceof RoostError) {
    const m = withoutSettingsClause(e.message, keys);
    if (m !== e.message) e.message = m;
  }
  return e;
}

/**
 * An embedded engine's error as one message: chdb rethrows an exception with its own text inside,
 * so a user read "Code: 691. DB::Exception: Code: 691. DB::Exception: Code: 691. DB::Exception:
 * Unexpected value 0 in enum. (UNKNOWN_ELEMENT_OF_ENUM) (version 26.7.2.1). (UNKNOWN_ELEMENT_OF_ENUM)
 * (version …)": the repeated code prefix and the repeated name-and-version suffix are said once.
 */
export function unnestEngineMessage(text: string): string {
  const t = text.replace(/^(Code: (\d+)\. DB::Exception: )(?:Code: \2\. DB::Exception: )+/, '$1');
  // The suffix looked for in the message's last characters only: the messages quote queries, and
  // run over a whole one the pattern took quadratic time (" (A)" 20,000 times: 1 s of the event
  // loop). Three name-and-version suffixes are far shorter than this.
  const cut = Math.max(0, t.length - SUFFIX_TAIL);
  return t.slice(0, cut) + t.slice(cut).replace(NESTED_SUFFIX, '$1');
}
const SUFFIX_TAIL = 1024;
const NESTED_SUFFIX = /( \(([A-Z_]+)\)(?: \(version [^)]+\))?)(?:\.? \(\2\)(?: \(version [^)]+\))?)+\.?$/;

/**
 * Where a syntax error failed: `failed at position N (token)` and, for queries of several lines,
 * ` (line L, col C)`. The token may be `)` itself (`())`) or a quoted literal holding brackets.
 * Groups: 1 the position, 2 the token in its brackets.
 */
/** The end of an engine message: its code name and, from some servers, their version (`. (ILLEGAL_DIVISION) (version 24.3.1)`). */
const CODE_TAIL = /\.? \([A-Z_]+\)(?: \(version [^)]+\))?\.?$/;

export const SYNTAX_POSITION = /failed at position (\d+) (\((?:\)|'(?:[^'\\]|\\.)*'|[^)]*)\))(?: \(line \d+, col \d+\))?/;

/**
 * An engine message without the query it quotes (`… in scope SELECT …`, `…: In scope SELECT …`,
 * `… In query SELECT …`, `… while processing query: '…'`, a syntax error's text after its
 * position): that is the query as compiled — other pipes' nodes, a row filter's view — which
 * the reader may not see. What the message is about stays, and so do its code suffix and a
 * "Maybe you meant: […]" hint in the engine's own shape at the end. Linear in the message's
 * length (the messages quote whole queries: 250,000 spaces were seconds of the event loop).
 */
export function withoutQuotedQuery(text: string): string {
  let t = withoutExecutingDump(withoutProcessingQuery(text));
  // A syntax error quotes the compiled query from the position it failed at (with a line and
  // column only for queries of several lines).
  t = t.replace(new RegExp(`(${SYNTAX_POSITION.source}): [\\s\\S]*?(?=\\. Expected |${CODE_TAIL.source}|$)`), '$1');
  const m = /\bin (?:scope|query)\s/i.exec(t);
  if (!m) return t;
  // Back over the whitespace before the marker and one ':' or '.' (by hand: a pattern starting
  // with \s+ read each run of spaces once per space).
  let start = m.index;
  while (start > 0 && /\s/.test(t[start - 1]!)) start--;
  if (start > 0 && (t[start - 1] === ':' || t[start - 1] === '.')) start--;
  // Where the quote ends: the message's last characters, in the engine's shape — a hint listing
  // quoted names, a setting hint, the code name, a version. Anything else up to there is the query.
  const rest = t.slice(start);
  const tailFrom = Math.max(0, rest.length - SUFFIX_TAIL);
  const tail = /(?:\. Maybe you meant: \[(?:'(?:[^'\\]|\\.)*'(?:, )?)*\])?(?: \(set [^)]*\))?\.? \([A-Z_]+\)(?: \(version [^)]+\))?\.?$/.exec(rest.slice(tailFrom));
  return t.slice(0, start) + (tail ? rest.slice(tailFrom + tail.index) : '');
}

/**
 * Without the expression dump of a function that failed while running, `: while executing
 * 'FUNCTION and(notEquals(__table2.name, 'hidden_value'_String) :: 4, …) -> … UInt8 : 3'`: the
 * compiled query's expressions with their literals — another pipe's conditions and constants.
 * Everything from the marker to the message's code tail goes (its end cannot be found from the
 * inside: a backquoted name in it is printed as written, `z : 1'.` faked one).
 */
function withoutExecutingDump(text: string): string {
  const at = text.indexOf(": while executing '");
  if (at < 0) return text;
  const tail = CODE_TAIL.exec(text);
  return text.slice(0, at) + (tail && tail.index > at ? text.slice(tail.index) : '');
}

/** Without ` while processing query: '…'` (to its closing quote before `,` `.` or the end), in one pass. */
function withoutProcessingQuery(text: string): string {
  const marker = " while processing query: '";
  const at = text.indexOf(marker);
  if (at < 0) return text;
  // The quote ends at the last `'` before the message's own tail, not at the first `',` — the
  // query's own literals hold those (`IN ('a', 'b')`). A "Missing columns" message has its tail
  // (`, required columns: …`, the last one: the query may spell it too); any other ends at the
  // last quote before `,`, `.`, ` (` or the end.
  if (/^[^']*Missing columns/.test(text)) {
    const last = text.lastIndexOf("', required columns");
    if (last > at) return text.slice(0, at) + text.slice(last + 1);
  }
  for (let q = text.lastIndexOf("'"); q > at + marker.length - 1; q = text.lastIndexOf("'", q - 1)) {
    const next = text[q + 1];
    if (next === undefined || next === ',' || next === '.' || (next === ' ' && text[q + 2] === '(')) return text.slice(0, at) + text.slice(q + 1);
  }
  return text;
}
