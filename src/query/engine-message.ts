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
const CLAUSE = new RegExp(String.raw`\s*\bSETTINGS\s+${ASSIGN}(?:\s*,\s*${ASSIGN})*`, 'g');
const KEY = new RegExp(ASSIGN, 'g');

/** Settings the engines add to every query on their own (src/cells/embedded.ts, src/cells/cell-main.ts). */
export const ENGINE_SETTINGS = ['max_execution_time', 'max_result_bytes', 'max_result_rows', 'output_format_parallel_formatting'];

/** "Syntax error: failed at position N (token): <rest of the query>. Expected one of: ..." */
const SYNTAX_TAIL = /Syntax error: failed at position \d+ \([^)]*\): ([^]*?)\. Expected [^]*$/;
const TAIL = new RegExp(String.raw`^(?:SETTINGS\s+)?(?:=\s*${VALUE}\s*,?\s*)?(?:${ASSIGN}\s*,?\s*)*$`);

/**
 * A query that ends unfinished (`SELECT`, `SELECT 1,`, `SELECT 1 AS`) fails in ClickHouse's
 * parser inside the clause appended to it, and the error quotes that clause as "the rest of the
 * query": the message then says where the user's query stopped instead.
 */
function unfinished(text: string, known: Set<string>): string | undefined {
  const m = SYNTAX_TAIL.exec(text);
  if (!m || !TAIL.test(m[1]!.trim())) return undefined;
  // Every name in it is a setting sent with the query (the clause is Roost's, not the user's).
  const idents = [...m[1]!.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)].map((x) => x[0]).filter((w) => w !== 'SETTINGS');
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
