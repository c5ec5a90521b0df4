/**
 * Names of a workspace's pipes and data sources, and what a rename does to what refers to them:
 * - names are one namespace for both kinds (a pipe's SQL reads either by it), unique ignoring case;
 * - service-token scopes name resources (`PIPES:READ:<pipe>`, `DATASOURCES:APPEND:<ds>`): a rename
 *   rewrites them in the same state change, so a token keeps its access and never reaches a
 *   resource that later takes the old name;
 * - Tinybird JWTs name resources in signed claims that cannot be rewritten: the rename is kept in
 *   `renames/<tenant>/<workspace>/<old name>` (who held the name, until when), and a JWT issued
 *   before the rename that names the old name is read as naming the renamed resource (see
 *   `jwtResourceName`).
 */
import type { State } from './state.js';
import type { Op } from './store.js';
import { RoostError } from '../errors.js';

export type ResourceKind = 'pipe' | 'datasource';

/** One rename away from a name: resource `id` of `kind` held it until `at` (ms since the epoch). */
export interface FormerHolder { kind: ResourceKind; id: string; at: number }

interface Named { id: string; name: string }

/** Scope types that name a resource of each kind. */
const SCOPE_TYPES: Record<ResourceKind, readonly string[]> = {
  pipe: ['PIPES:READ', 'PIPES:DROP'],
  datasource: ['DATASOURCES:APPEND', 'DATASOURCES:READ', 'DATASOURCES:DROP'],
};

const KIND_ROOT: Record<ResourceKind, string> = { pipe: 'pipes', datasource: 'datasources' };

/**
 * The pipe or data source of the workspace whose name equals `name` ignoring case (other than the
 * resource `exceptId`), or undefined.
 */
export function nameHolder(state: State, tenant: string, workspace: string, name: string, exceptId?: string): { kind: ResourceKind; name: string } | undefined {
  const lower = name.toLowerCase();
  for (const kind of ['datasource', 'pipe'] as const) {
    for (const r of state.list<Named>(KIND_ROOT[kind], tenant, workspace)) {
      if (r.id !== exceptId && r.name.toLowerCase() === lower) return { kind, name: r.name };
    }
  }
  return undefined;
}

/**
 * Why `name` may not be given to a resource of `kind` because of a data source's quarantine
 * (`<ds>_quarantine`, which SQL reads by that name): a pipe named like the quarantine of a data
 * source, or a data source whose quarantine would be named like a pipe. Undefined when it may.
 */
export function quarantineClash(state: State, tenant: string, workspace: string, name: string, kind: ResourceKind): string | undefined {
  const lower = name.toLowerCase();
  if (kind === 'pipe') {
    if (!lower.endsWith('_quarantine')) return undefined;
    const base = lower.slice(0, -'_quarantine'.length);
    const ds = state.list<Named>('datasources', tenant, workspace).find((d) => d.name.toLowerCase() === base);
    return ds ? `"${name}" names the quarantine of data source "${ds.name}" (${ds.name}_quarantine in SQL): pick another name` : undefined;
  }
  const pipe = state.list<Named>('pipes', tenant, workspace).find((p) => p.name.toLowerCase() === `${lower}_quarantine`);
  return pipe ? `pipe "${pipe.name}" is named like the quarantine of a data source "${name}" (${name}_quarantine in SQL): pick another name` : undefined;
}

/**
 * Refuses (409) giving `name` to resource `exceptId` of `kind` by a rename: a quarantine's name
 * (see quarantineClash), or one any other pipe or data source holds ignoring case.
 */
export function refuseTakenName(state: State, tenant: string, workspace: string, name: string, kind: ResourceKind, exceptId: string): void {
  const clash = quarantineClash(state, tenant, workspace, name, kind);
  if (clash) throw new RoostError('CONFLICT', clash);
  const taken = nameHolder(state, tenant, workspace, name, exceptId);
  if (taken) {
    throw new RoostError('CONFLICT', `${taken.kind === 'pipe' ? 'a pipe' : 'a data source'} is named "${taken.name}"; pipes and data sources of a workspace need names that differ (ignoring case): pick another name`, { details: { name: taken.name, kind: taken.kind } });
  }
}

/** The current name of resource `id` of `kind` in the workspace, or undefined when it is gone. */
export function currentName(state: State, tenant: string, workspace: string, kind: ResourceKind, id: string): string | undefined {
  return state.list<Named>(KIND_ROOT[kind], tenant, workspace).find((r) => r.id === id)?.name;
}

/** A scope string with its resource renamed when it names `from` for this kind; else unchanged. */
export function renamedScope(scope: string, kind: ResourceKind, from: string, to: string): string {
  const parts = scope.split(':');
  if (parts.length < 3) return scope;
  if (!SCOPE_TYPES[kind].includes(`${parts[0]}:${parts[1]}`) || parts[2] !== from) return scope;
  return [parts[0], parts[1], to, ...parts.slice(3)].join(':');
}

/**
 * The ops that go with renaming resource `id` of `kind` from `from` to `to`: every service token
 * of the workspace whose scopes name `from` for this kind names `to` instead (its updatedAt moves,
 * so a token update that read it before is refused as concurrent), and the rename is recorded
 * for JWTs issued before it.
 */
export function renameReferencesOps(state: State, tenant: string, workspace: string, kind: ResourceKind, id: string, from: string, to: string, at: number): Op[] {
  const ops: Op[] = [];
  const now = new Date(at).toISOString();
  for (const t of state.list<{ name: string; scopes: string[] }>('tokens', tenant, workspace)) {
    // A scope already naming the new name named no resource (names are unique): it was granted
    // for something else, and is not a grant of the renamed resource (DATASOURCES:DROP of one data
    // source and DATASOURCES:READ of a free name made a read of it by a rename). It goes.
    // A data source's quarantine (`<name>_quarantine`, read by that name) goes with it.
    const kept = t.scopes.filter((s) => !namesResource(s, kind, to) && !(kind === 'datasource' && namesResource(s, kind, to + QUARANTINE)));
    const scopes = kept.map((s) => {
      const r = renamedScope(s, kind, from, to);
      return r === s && kind === 'datasource' ? renamedScope(s, kind, from + QUARANTINE, to + QUARANTINE) : r;
    });
    if (kept.length !== t.scopes.length || scopes.some((s, i) => s !== kept[i])) {
      ops.push({ op: 'put', path: ['tokens', tenant, workspace, t.name], value: { ...t, scopes: [...new Set(scopes)], updatedAt: now } });
    }
  }
  const prior = state.get<{ holders: FormerHolder[] }>('renames', tenant, workspace, from)?.holders ?? [];
  ops.push({ op: 'put', path: ['renames', tenant, workspace, from], value: { tenant, workspace, holders: [...prior, { kind, id, at }] } });
  // JWTs issued before the rename that name the new name: recorded as held until now by no
  // resource (`NO_RESOURCE`), so they grant nothing under it (see jwtResourceName).
  const priorTo = state.get<{ holders: FormerHolder[] }>('renames', tenant, workspace, to)?.holders ?? [];
  ops.push({ op: 'put', path: ['renames', tenant, workspace, to], value: { tenant, workspace, holders: [...priorTo, { kind, id: NO_RESOURCE, at }] } });
  return ops;
}

/** Suffix of a data source's quarantine as SQL (and scopes) name it. */
const QUARANTINE = '_quarantine';

/** The id of "no resource" in a rename record: the name was free until a rename gave it. */
const NO_RESOURCE = '';

/** Does a scope name resource `name` of `kind` (`PIPES:READ:<name>`, `DATASOURCES:READ:<name>:<filter>`, ...)? */
function namesResource(scope: string, kind: ResourceKind, name: string): boolean {
  const parts = scope.split(':');
  return parts.length >= 3 && SCOPE_TYPES[kind].includes(`${parts[0]}:${parts[1]}`) && parts[2] === name;
}

/**
 * The ops that go with dropping resource `id` of `kind` named `name`: scopes of the workspace's
 * service tokens that name it are removed (a resource created later under the name is another
 * one: a token granted the dropped one must not reach it), and the drop is recorded like a
 * rename to nowhere, so a JWT issued before it grants nothing under the name (see
 * `jwtResourceName`). Wildcard scopes (`DATASOURCES:READ:*`) name no resource and stay.
 */
export function dropReferencesOps(state: State, tenant: string, workspace: string, kind: ResourceKind, id: string, name: string, at: number): Op[] {
  const ops: Op[] = [];
  const now = new Date(at).toISOString();
  for (const t of state.list<{ name: string; scopes: string[] }>('tokens', tenant, workspace)) {
    // (A data source's quarantine, `<name>_quarantine`, goes with it.)
    const scopes = t.scopes.filter((s) => !namesResource(s, kind, name) && !(kind === 'datasource' && namesResource(s, kind, name + QUARANTINE)));
    if (scopes.length !== t.scopes.length) ops.push({ op: 'put', path: ['tokens', tenant, workspace, t.name], value: { ...t, scopes, updatedAt: now } });
  }
  const prior = state.get<{ holders: FormerHolder[] }>('renames', tenant, workspace, name)?.holders ?? [];
  ops.push({ op: 'put', path: ['renames', tenant, workspace, name], value: { tenant, workspace, holders: [...prior, { kind, id, at }] } });
  return ops;
}

/**
 * The name a JWT's scope on `name` means now. The JWT was issued at `issuedAtMs` (its `iat`;
 * undefined when it has none: taken as issued before every rename). If a resource of `kind`
 * held `name` then and was renamed since, the scope follows it to its current name (none if it
 * was dropped since: the scope then grants nothing); otherwise it means what holds `name` now.
 * So a JWT keeps its access across a rename and never reaches a resource that took the old name
 * after it was issued.
 */
export function jwtResourceName(state: State, tenant: string, workspace: string, kind: ResourceKind, name: string, issuedAtMs: number | undefined): string | undefined {
  if (name === '*') return name;
  // A quarantine (`<ds>_quarantine`) follows its data source: renamed with it, gone with it.
  if (kind === 'datasource' && name.endsWith(QUARANTINE) && name.length > QUARANTINE.length) {
    const base = name.slice(0, -QUARANTINE.length);
    const was = heldSince(state, tenant, workspace, kind, base, issuedAtMs);
    if (was) {
      const now = currentName(state, tenant, workspace, kind, was.id);
      return now === undefined ? undefined : now + QUARANTINE;
    }
  }
  const first = heldSince(state, tenant, workspace, kind, name, issuedAtMs);
  return first ? currentName(state, tenant, workspace, kind, first.id) : name;
}

/** The first rename (or drop) away from `name` after the JWT was issued: its resource held the name then. */
function heldSince(state: State, tenant: string, workspace: string, kind: ResourceKind, name: string, issuedAtMs: number | undefined): FormerHolder | undefined {
  const holders = (state.get<{ holders: FormerHolder[] }>('renames', tenant, workspace, name)?.holders ?? [])
    .filter((h) => h.kind === kind && (issuedAtMs === undefined || h.at >= issuedAtMs));
  return holders.length === 0 ? undefined : holders.reduce((a, b) => (b.at < a.at ? b : a));
}
