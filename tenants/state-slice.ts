/**
 * A tenant's slice of the control-plane state: every entry that belongs to it,
 * wherever another module keeps it. Used to delete a tenant without leftovers
 * and to back it up and restore it.
 *
 * What counts as the tenant's (the state is one JSON document):
 * - `<root>/<slug>` under any top-level key (tenants, workspaces, tokens,
 *   datasources, pipes, connections, mappings, and whatever keys are added later
 *   in the same `<root>/<tenant>/...` layout);
 * - `revocations/<kind>/<slug>` (revocations of the tenant, for the kinds keyed by tenant:
 *   not `revocations/sessions`, keyed by session id). Under `revocations` the second level is a
 *   kind, never a tenant: a tenant called `sessions`, `tenants` or `subjects` took the whole
 *   kind with it when deleted (every tenant's logouts undone) and could carry it in a backup;
 * - `<root>/<key>` whose value says `tenant: <slug>` (tokenHashes, logins in progress); under
 *   the roots keyed by something else (NOT_TENANT_KEYED) only such entries.
 * Workspace names are never matched as slugs: only the second level (and the
 * third under `revocations`) is compared with the slug.
 */
import type { State } from '../src/state/state.js';
import type { Op } from '../src/state/store.js';

export interface SliceEntry { path: string[]; value: unknown }

/** The kinds of `revocations/<kind>/...` whose next level is a tenant slug (auth/sessions). */
export const TENANT_KEYED_REVOCATIONS: ReadonlySet<string> = new Set(['tenants', 'subjects', 'idpSessions']);

/**
 * Top-level keys whose next level is not a tenant (an id, a hash, a fixed name): only an entry
 * saying `tenant: <slug>` is a tenant's there. A tenant called `tokens` took `dev/tokens` (the
 * development tokens) with it when deleted, and carried them in its backups.
 */
export const NOT_TENANT_KEYED: ReadonlySet<string> = new Set(['dev', 'sessionKeys', 'tokenHashes', 'oidcPending', 'samlPending', 'samlReplay']);

/** Entries of `state` that belong to tenant `slug`, as full paths with their values. */
export function tenantSlice(state: State, slug: string): SliceEntry[] {
  const doc = state.get<Record<string, unknown>>() ?? {};
  const out: SliceEntry[] = [];
  for (const [root, node] of Object.entries(doc)) {
    if (!isMap(node)) continue;
    for (const [key, value] of Object.entries(node)) {
      if (root === 'revocations') {
        if (TENANT_KEYED_REVOCATIONS.has(key) && isMap(value) && Object.hasOwn(value, slug)) out.push({ path: [root, key, slug], value: value[slug] });
        continue;
      }
      if (key === slug && !NOT_TENANT_KEYED.has(root)) out.push({ path: [root, key], value });
      else if (isMap(value) && value.tenant === slug) out.push({ path: [root, key], value });
    }
  }
  return out;
}

/** The ops that remove every entry of the tenant. */
export function deleteSliceOps(state: State, slug: string): Op[] {
  return tenantSlice(state, slug).map((e) => ({ op: 'del' as const, path: e.path }));
}

/** The ops that put a saved slice back (entries of another tenant are refused by the caller). */
export function restoreSliceOps(entries: SliceEntry[]): Op[] {
  return entries.map((e) => ({ op: 'put' as const, path: e.path, value: e.value }));
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
