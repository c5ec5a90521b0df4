/**
 * Tinybird token scopes: parsing and validation of `TYPE[:resource[:filter]]`
 * strings, and the `{type, resource, filter}` shape Tinybird's API answers with.
 */
import { RoostError } from '../../src/errors.js';
import { analyzeSql } from '../../src/native/sql.js';
import { callsFunction, clauseAfterOperand, sqlTextEscapes } from '../../src/query/sql-text.js';

/** Scope types without a resource. */
const BARE = new Set(['ADMIN', 'TOKENS', 'DATASOURCES:CREATE', 'PIPES:CREATE']);
/** Scope types that name a resource (`*` means every one). */
const WITH_RESOURCE = new Set(['DATASOURCES:APPEND', 'DATASOURCES:READ', 'DATASOURCES:DROP', 'PIPES:READ', 'PIPES:DROP']);
const RESOURCE = /^(?:\*|[A-Za-z_][A-Za-z0-9_.]{0,127})$/;

/** Is `s` a data source or pipe name (or `*`) as a scope names it? */
export function isScopeResource(s: string): boolean {
  return RESOURCE.test(s);
}

export interface ScopeView { type: string; resource?: string; filter?: string }

/** Splits a scope string; the filter (only for `DATASOURCES:READ`) may hold colons. */
export function splitScope(s: string): ScopeView {
  const parts = s.split(':');
  if (parts.length === 1) return { type: s };
  const two = `${parts[0]}:${parts[1]}`;
  if (parts.length === 2) return BARE.has(two) ? { type: two } : { type: parts[0]!, resource: parts[1] };
  const filter = parts.slice(3).join(':');
  return filter ? { type: two, resource: parts[2], filter } : { type: two, resource: parts[2] };
}

/** Validates one scope string from a request; answers it normalised. */
export function parseScope(raw: string): string {
  const s = raw.trim();
  if (BARE.has(s)) return s;
  const v = splitScope(s);
  if (!WITH_RESOURCE.has(v.type) || !v.resource) {
    throw new RoostError('INVALID_PARAMETER', `unknown scope "${raw}"; known: ADMIN, TOKENS, DATASOURCES:CREATE, DATASOURCES:APPEND:<ds>, DATASOURCES:READ:<ds>[:<filter>], DATASOURCES:DROP:<ds>, PIPES:CREATE, PIPES:READ:<pipe>, PIPES:DROP:<pipe>`);
  }
  if (!RESOURCE.test(v.resource)) throw new RoostError('INVALID_PARAMETER', `scope "${raw}": "${v.resource}" is not a data source or pipe name`);
  if (v.filter !== undefined && v.type !== 'DATASOURCES:READ') throw new RoostError('INVALID_PARAMETER', `scope "${raw}": only DATASOURCES:READ takes a row filter`);
  if (v.filter !== undefined) {
    const why = rowFilterProblem(v.resource, v.filter);
    if (why) throw new RoostError('INVALID_PARAMETER', `scope "${raw}": ${why}`);
  }
  return v.filter ? `${v.type}:${v.resource}:${v.filter}` : `${v.type}:${v.resource}`;
}

export function scopeView(s: string): ScopeView {
  const v = splitScope(s);
  return { type: v.type, ...(v.resource !== undefined ? { resource: v.resource } : {}), filter: v.filter ?? '' };
}

/**
 * Why a row filter may not be used, or undefined when it may. A filter is SQL that
 * the data source's view puts verbatim after `WHERE (`, and the view is inlined as
 * trusted SQL: so it must pass the analyzer exactly as it will run (the same text,
 * followed by more query, so a trailing comment or an unbalanced parenthesis fails),
 * and read nothing but the row it filters: no table, no other data source.
 * A filter applies to one named data source, never to `*`.
 */
export function rowFilterProblem(datasource: string, filter: string): string | undefined {
  if (datasource === '*') return 'a row filter applies to one named data source, not to *';
  if (!filter.trim()) return 'the row filter is empty';
  // Parentheses must balance within the filter itself: `org = 'acme') OR (1` passes the
  // analyzer inside `WHERE (...)`, but beside another filter, `(f1) AND (f2)`, it became
  // `org = 'acme' OR (1 AND f2)` and undid the other filter.
  if (!parensBalanced(filter)) return 'the row filter\'s parentheses do not balance on their own';
  // The analyzer reads what stands in brackets loosely (it looks for tables there): a clause
  // after the expression (`org = 'acme' SETTINGS max_threads = 1`, `... LIMIT 1`) passed it and
  // failed at every use of the token, as a syntax error quoting the view Roost builds.
  const clause = clauseAfterOperand(filter);
  if (clause) return `a row filter is one expression over the data source's columns; "${clause}" after it begins a query clause (remove it)`;
  // arrayJoin makes several rows of one: the token's reader got rows twice over (review).
  if (callsFunction(filter, 'arrayJoin')) return 'a row filter may not call arrayJoin (it makes several rows of one); test an array\'s elements with has(), hasAny() or arrayExists() instead';
  const probe = `SELECT * FROM (SELECT * FROM \`${datasource.replace(/[`\\]/g, '')}\` WHERE (${filter})) AS _roost_row_filter WHERE 0`;
  let tables: number;
  let format: string | undefined;
  try {
    const a = analyzeSql(probe, { [datasource.replace(/[`\\]/g, '')]: '`_roost_check`.`_roost_check`' });
    tables = a.tables.length;
    format = a.format;
  } catch (e) {
    return `the row filter is not a valid expression for this data source (${(e as Error).message})`;
  }
  if (format !== undefined || tables !== 1) return 'a row filter is an expression over the data source\'s columns; it may not read tables';
  return undefined;
}

/**
 * Do the brackets of `sql` balance outside string literals, quoted identifiers and comments,
 * never closing one it did not open? No line comment (`--`, `//`: the filter is followed by more
 * query on its line), no unterminated quote or comment, no `#`, `$` or `;` (sql-text.ts).
 */
export function parensBalanced(sql: string): boolean {
  return sqlTextEscapes(sql, { lineComments: false }) === undefined;
}
