/**
 * What a workspace's SQL may name: its data sources, their quarantine tables,
 * and the service data sources filtered to the workspace. Token scopes with a
 * row filter (`DATASOURCES:READ:<name>:<filter>`) narrow any of them to a view;
 * a data source's filter narrows its quarantine table too.
 */
import type { State } from '../state/state.js';
import { qualifyColumns, type NameMapEntry } from '../native/sql.js';
import { listDataSources, qualified, QUARANTINE_OWN } from './registry.js';
import { getWorkspace } from '../../tenants/registry.js';
import { SERVICE_VIEW_NAMES, serviceViewDefs } from '../service/service-log.js';
import { readFilter, type Credential } from '../../auth/authorize.js';

/**
 * The LIMIT that ends a row filter's view: it keeps the query's own conditions from being moved
 * below the filter. ClickHouse reports the rows before the innermost LIMIT when the query has
 * none of its own, so the result tail knows this text (pipes/result-tail.ts).
 */
export const ROW_FILTER_LIMIT = 'LIMIT 18446744073709551615';

/**
 * The data source as a credential with a row filter sees it. The LIMIT (of every row) is a fence
 * for the engine's optimizer: without it, expressions of the query around the view could be
 * evaluated on rows the filter drops, before it drops them, and an engine error quoting the value
 * told what those rows held (`... JOIN ... ON toUInt8(if(e.org IN ('acme'), '1', e.org)) = ...`
 * answered "Cannot parse string 'globex'", one hidden value per query). Filters and expressions
 * are not moved across a LIMIT; the filter itself still uses the table's index.
 *
 * The filter's columns are written qualified by the table (`` `ws`.`t`.org = 'acme' ``): a tenant's
 * own server running ClickHouse's old query analyzer (20.x to 24.2, or later with it turned off)
 * replaced a bare `org` in the view by an enclosing query's `WITH 'acme' AS org`, and the filter
 * held for every row. A qualified name is never replaced (shown with chdb's old analyzer).
 */
export function rowFilterView(table: string, filter: string, columns: readonly string[]): string {
  return `SELECT * FROM ${table} WHERE (${qualifyColumns(filter, columns, table)}) ${ROW_FILTER_LIMIT}`;
}

/** A view's SQL (a query, not a table) as a credential with a row filter sees it: as rowFilterView, over the view as a subquery. */
function filteredQuery(sql: string, filter: string, columns: readonly string[]): string {
  return `SELECT * FROM (${sql}) AS \`_roost_rows\` WHERE (${qualifyColumns(filter, columns, '`_roost_rows`')}) ${ROW_FILTER_LIMIT}`;
}

export function workspaceNameMap(state: State, tenant: string, workspace: string, rowFilters: Record<string, string> = {}): Record<string, NameMapEntry> {
  const ws = getWorkspace(state, tenant, workspace);
  const map: Record<string, NameMapEntry> = {};
  for (const ds of listDataSources(state, tenant, workspace)) {
    const filter = rowFilters[ds.name];
    const columns = ds.columns.map((c) => c.name);
    map[ds.name] = filter ? { kind: 'query', sql: rowFilterView(qualified(ws, ds.table), filter, columns) } : qualified(ws, ds.table);
    // The quarantine table holds the data source's columns (as the text sent) and its own.
    const qname = `${ds.name}_quarantine`;
    const qfilter = rowFilters[qname];
    const qtable = qualified(ws, `${ds.table}_quarantine`);
    map[qname] = qfilter ? { kind: 'query', sql: rowFilterView(qtable, qfilter, [...columns, ...QUARANTINE_OWN]) } : qtable;
  }
  for (const [name, v] of Object.entries(serviceViewDefs(tenant, ws.id))) {
    const filter = rowFilters[name];
    map[name] = { kind: 'query', sql: filter ? filteredQuery(v.sql, filter, v.columns) : v.sql };
  }
  return map;
}

/**
 * Row filters of a credential per name its SQL may read (`DATASOURCES:READ:<name>:<filter>`
 * scopes, JWT filters): data sources, their quarantine tables and the service data sources. A
 * data source's filter applies to its quarantine table too (the rows refused from it: a reader
 * of one customer's rows saw every customer's refused ones), with the quarantine's own filter if
 * any; the quarantine holds the values as text, so a filter comparing a column to a number
 * fails there rather than widening. A filter was kept on quarantine and service names and
 * applied nowhere: their readers read every row.
 */
export function rowFiltersOf(state: State, tenant: string, workspace: string, cred: Credential): Record<string, string> {
  const out: Record<string, string> = {};
  // Most credentials have no filter at all: nothing to look up per name.
  if (!hasRowFilters(cred)) return out;
  for (const ds of listDataSources(state, tenant, workspace)) {
    const f = readFilter(cred, ds.name);
    if (f) out[ds.name] = f;
    const qname = `${ds.name}_quarantine`;
    const own = readFilter(cred, qname);
    const both = [f, own].filter((x): x is string => x !== undefined);
    if (both.length) out[qname] = both.length === 1 ? both[0]! : both.map((x) => `(${x})`).join(' AND ');
  }
  for (const name of SERVICE_VIEW_NAMES) {
    const f = readFilter(cred, name);
    if (f) out[name] = f;
  }
  return out;
}

/** Does the credential carry any row filter (a `DATASOURCES:READ:<name>:<filter>` scope, a JWT scope's filter)? */
function hasRowFilters(cred: Credential): boolean {
  if (cred.kind === 'token') return cred.token.scopes.some((s) => /^DATASOURCES:READ:[^:]+:/.test(s));
  if (cred.kind === 'jwt') return cred.jwt.scopes.some((s) => s.type === 'DATASOURCES:READ' && !!s.filter);
  return false;
}
