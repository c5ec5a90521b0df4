/**
 * Published pipes as tables of `/v0/sql`, as in Tinybird's Query API
 * (`curl --data "SELECT * FROM <pipe> FORMAT JSON" .../v0/sql`): a pipe with an endpoint that
 * the query names is its endpoint, compiled with the request's parameters, as a subquery.
 */
import type { App } from '../app.js';
import type { Ctx } from '../http/context.js';
import { authorize, fixedParams, type Credential } from '../../auth/authorize.js';
import { compileEndpoint, listPipes } from '../pipes/index.js';
import type { NameMapEntry, SqlAnalysis } from '../native/sql.js';
import { RoostError } from '../errors.js';
import { isServiceName } from '../service/service-log.js';

export interface PipeTablesInput {
  tenant: string;
  workspace: string;
  sql: string;
  /** The query's names so far (data sources, service data sources); completed in place. */
  map: Record<string, NameMapEntry>;
  /** Names that shadow a pipe (the nodes of `pipeline=`). */
  shadowing: Iterable<string>;
  params: Record<string, string | string[]>;
  rowFilters: Record<string, string> | undefined;
  analyze: (m: Record<string, NameMapEntry>) => SqlAnalysis;
  /**
   * Pipes the caller may read (`PIPES:READ:<pipe>`); the others are left out of the names, so the
   * query meets them as names that are nothing (one answer whether or not such a pipe exists).
   */
  mayRead?: (pipe: string) => boolean;
  /** Told when a pipe read reads service data sources (`tinybird.*`, `roost.*`): they must exist first. */
  onServiceRead?: () => void;
}

/**
 * Adds to `map` each published pipe the query reads (a pipe without an endpoint is a 422) (a data source, service data source or
 * `pipeline=` node of the same name wins), after checking `PIPES:READ:<pipe>`; answers their
 * names. A JWT's `fixed_params` for a pipe override the request's parameters, as on the
 * endpoint itself.
 */
export function addPipeTables(app: App, ctx: Ctx, cred: Credential, i: PipeTablesInput): Set<string> {
  const used = new Set<string>();
  const shadow = new Set(i.shadowing);
  const pipes = listPipes(app.state, i.tenant, i.workspace).filter((p) => !(p.name in i.map) && !shadow.has(p.name) && i.sql.includes(p.name) && (i.mayRead?.(p.name) ?? true));
  if (pipes.length === 0) return used;
  // First find which pipes the query names, then compile only those.
  const probe = { ...i.map };
  for (const n of shadow) probe[n] ??= { kind: 'query', sql: 'SELECT 1' };
  for (const p of pipes) probe[p.name] = { kind: 'query', sql: 'SELECT 1' };
  const named = new Set(i.analyze(probe).tables.map((t) => t.name));
  for (const p of pipes) {
    if (!named.has(p.name)) continue;
    authorize(app, ctx, cred, { op: 'workspace', tenant: i.tenant, workspace: i.workspace, scope: 'PIPES:READ', resource: p.name });
    // Without an endpoint there is no result to read: said, rather than "unknown table".
    if (!p.endpoint) throw new RoostError('SQL_INVALID', `pipe "${p.name}" has no endpoint to read: publish a node (POST /v0/pipes/${p.name}/nodes/<node>/endpoint), or read its nodes with pipeline=${p.name}`, { details: { sql_code: 'UNKNOWN_TABLE' } });
    const c = compileEndpoint(app.state, p, { params: i.params, fixedParams: fixedParams(cred, p.name), fixedFor: (name) => fixedParams(cred, name), rowFilters: i.rowFilters });
    if (c.reads.some(isServiceName)) i.onServiceRead?.();
    i.map[p.name] = { kind: 'query', sql: c.sql };
    used.add(p.name);
  }
  return used;
}
