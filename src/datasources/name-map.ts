/**
 * What a workspace's SQL may name: its data sources, their quarantine tables,
 * and the service data sources filtered to the workspace. Token scopes with a
 * row filter (`DATASOURCES:READ:<ds>:<filter>`) narrow a data source to a view.
 */
import type { State } from '../state/state.js';
import { qualifyColumns, type NameMapEntry } from '../native/sql.js';
import { listDataSources, qualified } from './registry.js';
import { getWorkspace } from '../../tenants/registry.js';
import { serviceViews } from '../service/service-log.js';
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

export function workspaceNameMap(state: State, tenant: string, workspace: string, rowFilters: Record<string, string> = {}): Record<string, NameMapEntry> {
  const ws = getWorkspace(state, tenant, workspace);
  const map: Record<string, NameMapEntry> = {};
  for (const ds of listDataSources(state, tenant, workspace)) {
    const filter = rowFilters[ds.name];
    map[ds.name] = filter ? { kind: 'query', sql: rowFilterView(qualified(ws, ds.table), filter, ds.columns.map((c) => c.name)) } : qualified(ws, ds.table);
    map[`${ds.name}_quarantine`] = qualified(ws, `${ds.table}_quarantine`);
  }
  for (const [name, sql] of Object.entries(serviceViews(tenant, ws.id))) {
    map[name] = { kind: 'query', sql: sql.replace(/^\(|\)$/g, '') };
  }
  return map;
}

/** Row filters of a credential per data source (`DATASOURCES:READ:<ds>:<filter>` scopes, JWT filters). */
export function rowFiltersOf(state: State, tenant: string, workspace: string, cred: Credential): Record<string, string> {
  const out: Record<string, string> = {};
  for (const ds of listDataSources(state, tenant, workspace)) {
    const f = readFilter(cred, ds.name);
    if (f) out[ds.name] = f;
  }
  return out;
}
