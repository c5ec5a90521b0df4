/**
 * Tenants and workspaces as control-plane state: `tenants/<slug>` and
 * `workspaces/<tenant>/<name>`. Validation of names and placements lives here.
 */
import crypto from 'node:crypto';
import type { State } from '../src/state/state.js';
import type { Op } from '../src/state/store.js';
import { RoostError } from '../src/errors.js';

export type Placement =
  | { type: 'embedded' }
  | { type: 'clickhouse'; url: string; user?: string; password_sealed?: string; cluster?: string; allow_plain_http?: boolean };

export interface TenantLimits {
  concurrent_queries?: number;
  query_timeout_ms?: number;
  query_memory_bytes?: number;
  storage_bytes?: number;
  events_per_second?: number;
  /** Threads one query may use (default: half the cores). */
  query_threads?: number;
  /** Queries the tenant's embedded engine runs at once (default: two). */
  query_parallelism?: number;
}

export interface Tenant {
  slug: string;
  name: string;
  domains: string[];
  placement: Placement;
  limits: TenantLimits;
  createdAt: string;
}

export interface Workspace {
  id: string;
  tenant: string;
  name: string;
  /** The workspace's database in the tenant's cell; stable across renames. */
  database: string;
  createdAt: string;
}

export const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
export const WORKSPACE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

export function getTenant(state: State, slug: string): Tenant {
  const t = state.get<Tenant>('tenants', slug);
  if (!t) throw new RoostError('UNKNOWN_TENANT', `there is no tenant "${slug}"`);
  return t;
}

export function getWorkspace(state: State, tenant: string, name: string): Workspace {
  const w = state.get<Workspace>('workspaces', tenant, name);
  if (!w) throw new RoostError('UNKNOWN_WORKSPACE', `tenant "${tenant}" has no workspace "${name}"`);
  return w;
}

/**
 * For a state change that writes under workspace `name` after checks made against workspace
 * `id` (and an await since): refused when that name is no longer that workspace (deleted,
 * renamed, deleted and created again, or its tenant deleted). Call it inside the transaction:
 * what was written under a deleted workspace's name stayed in the state, and a workspace created
 * later under the name had it (an ADMIN token of the deleted workspace reached the new one).
 */
export function sameWorkspace(state: State, tenant: string, name: string, id: string): Workspace {
  const w = state.get<Workspace>('workspaces', tenant, name);
  if (w?.id !== id) throw new RoostError('UNKNOWN_WORKSPACE', `workspace "${name}" was deleted or renamed meanwhile (nothing was changed)`);
  return w;
}

/**
 * For a state change that writes under tenant `slug` after checks made against the tenant
 * created at `createdAt` (and an await since): refused when that tenant was deleted (or deleted
 * and created again). Call it inside the transaction: a connection or mapping rules written
 * after the delete stayed in the state, for the next tenant of that slug to have.
 */
export function sameTenant(state: State, slug: string, createdAt: string): Tenant {
  const t = state.get<Tenant>('tenants', slug);
  if (t?.createdAt !== createdAt) throw new RoostError('UNKNOWN_TENANT', `tenant "${slug}" was deleted meanwhile (nothing was changed)`);
  return t;
}

export function createTenantOps(state: State, input: { slug: string; name?: string; domains?: string[]; placement?: Placement; limits?: TenantLimits }): { ops: Op[]; tenant: Tenant } {
  if (!SLUG.test(input.slug)) throw new RoostError('INVALID_PARAMETER', 'tenant slug must be 1-40 characters of a-z, 0-9 and -, starting and ending with a letter or digit');
  if (state.get('tenants', input.slug)) throw new RoostError('ALREADY_EXISTS', `tenant "${input.slug}" already exists`);
  const tenant: Tenant = {
    slug: input.slug,
    name: input.name ?? input.slug,
    domains: (input.domains ?? []).map((d) => d.toLowerCase()),
    placement: input.placement ?? { type: 'embedded' },
    limits: input.limits ?? {},
    createdAt: new Date().toISOString(),
  };
  return { tenant, ops: [{ op: 'put', path: ['tenants', tenant.slug], value: tenant }] };
}

/**
 * Workspace names are unique ignoring case: `Finance` beside `finance` would be told apart
 * by case alone in tokens, logs and mapping rules, and their events-buffer folders would be
 * one folder on a case-insensitive file system. (`except`: the workspace being renamed, so
 * a change of case alone is allowed.)
 */
function checkWorkspaceNameFree(state: State, tenant: string, name: string, except?: string): void {
  const lower = name.toLowerCase();
  const clash = Object.keys(state.get<Record<string, unknown>>('workspaces', tenant) ?? {}).find((n) => n !== except && n.toLowerCase() === lower);
  if (clash === undefined) return;
  throw new RoostError('ALREADY_EXISTS', clash === name
    ? `workspace "${name}" already exists in tenant "${tenant}"`
    : `workspace "${clash}" already exists in tenant "${tenant}"; names differing only in case are not allowed`);
}

export function createWorkspaceOps(state: State, tenant: string, name: string): { ops: Op[]; workspace: Workspace } {
  getTenant(state, tenant);
  if (!WORKSPACE_NAME.test(name)) throw new RoostError('INVALID_PARAMETER', 'workspace name must start with a letter and hold at most 64 letters, digits and _');
  checkWorkspaceNameFree(state, tenant, name);
  const id = crypto.randomUUID();
  const workspace: Workspace = { id, tenant, name, database: `ws_${name.toLowerCase()}_${id.slice(0, 8)}`, createdAt: new Date().toISOString() };
  return { workspace, ops: [{ op: 'put', path: ['workspaces', tenant, name], value: workspace }] };
}

/** The ops that change a tenant's name, domains, placement or limits (slug and creation time stay). */
export function updateTenantOps(state: State, slug: string, patch: { name?: string; domains?: string[]; placement?: Placement; limits?: TenantLimits }): { ops: Op[]; tenant: Tenant } {
  const cur = getTenant(state, slug);
  const tenant: Tenant = {
    ...cur,
    ...(patch.name !== undefined ? { name: patch.name } : {}),
    ...(patch.domains !== undefined ? { domains: patch.domains.map((d) => d.toLowerCase()) } : {}),
    ...(patch.placement !== undefined ? { placement: patch.placement } : {}),
    ...(patch.limits !== undefined ? { limits: patch.limits } : {}),
  };
  return { tenant, ops: [{ op: 'put', path: ['tenants', slug], value: tenant }] };
}

interface OwnedRecord { tenant?: string; workspace?: string; name?: string }

/**
 * The ops that rename a workspace: its record, tokens (and their hash index),
 * data sources, pipes and the former names of pipes and data sources move to the new name; the
 * database stays, so no data moves.
 */
export function renameWorkspaceOps(state: State, tenant: string, from: string, to: string): { ops: Op[]; workspace: Workspace; rulesMoved: number } {
  const ws = getWorkspace(state, tenant, from);
  if (!WORKSPACE_NAME.test(to)) throw new RoostError('INVALID_PARAMETER', 'workspace name must start with a letter and hold at most 64 letters, digits and _');
  if (from === to) return { ops: [], workspace: ws, rulesMoved: 0 };
  checkWorkspaceNameFree(state, tenant, to, from);
  const workspace: Workspace = { ...ws, name: to };
  const ops: Op[] = [
    { op: 'del', path: ['workspaces', tenant, from] },
    { op: 'put', path: ['workspaces', tenant, to], value: workspace },
  ];
  for (const kind of ['tokens', 'datasources', 'pipes', 'renames'] as const) {
    const m = state.get<Record<string, OwnedRecord & { hash?: string }>>(kind, tenant, from) ?? {};
    ops.push({ op: 'del', path: [kind, tenant, from] });
    for (const [name, rec] of Object.entries(m)) {
      ops.push({ op: 'put', path: [kind, tenant, to, name], value: { ...rec, workspace: to } });
      if (kind === 'tokens' && rec.hash) ops.push({ op: 'put', path: ['tokenHashes', rec.hash], value: { tenant, workspace: to, name } });
    }
  }
  // Mapping rules granting a role in it follow it, as token scopes follow renamed data sources:
  // left naming the old name, they granted nothing here and everything to a workspace created
  // later under that name.
  const mappings = state.get<{ rules?: Array<{ grant?: { workspace?: string } }> }>('mappings', tenant);
  const rulesMoved = mappings?.rules?.filter((r) => r.grant?.workspace === from).length ?? 0;
  if (rulesMoved) {
    const rules = mappings!.rules!.map((r) => (r.grant?.workspace === from ? { ...r, grant: { ...r.grant, workspace: to } } : r));
    ops.push({ op: 'put', path: ['mappings', tenant], value: { ...mappings, rules, updatedAt: new Date().toISOString() } });
  }
  return { ops, workspace, rulesMoved };
}

/** The ops that remove a workspace's state: its record, tokens (and hashes), data sources, pipes and their former names. */
export function deleteWorkspaceOps(state: State, tenant: string, name: string): { ops: Op[]; workspace: Workspace } {
  const workspace = getWorkspace(state, tenant, name);
  const ops: Op[] = [];
  for (const t of Object.values(state.get<Record<string, { hash?: string }>>('tokens', tenant, name) ?? {})) {
    if (t.hash) ops.push({ op: 'del', path: ['tokenHashes', t.hash] });
  }
  for (const kind of ['tokens', 'datasources', 'pipes', 'renames'] as const) ops.push({ op: 'del', path: [kind, tenant, name] });
  ops.push({ op: 'del', path: ['workspaces', tenant, name] });
  return { ops, workspace };
}
