/**
 * Development mode: tenant `local` with workspace `default` and its tokens,
 * and `GET /tokens` in the shape Tinybird Local answers. The token secrets are
 * kept sealed with the server key so `/tokens` can show them again; a refresh
 * seals the new secret in their place, a delete removes it (`devTokenOps`).
 */
import type { App } from '../app.js';
import { sendJson } from '../http/context.js';
import { RoostError } from '../errors.js';
import { createTenantOps, createWorkspaceOps, getTenant, type Workspace } from '../../tenants/registry.js';
import { createWorkspaceDatabase } from '../../tenants/provisioning.js';
import { createTokenOps, findToken, hashToken, type TokenRecord } from '../../auth/tokens/service-tokens.js';
import type { Op } from '../state/store.js';
import type { State } from '../state/state.js';

const DEV_TENANT = 'local';
const DEV_WORKSPACE = 'default';
const DEV_TOKENS = { workspace_admin_token: 'workspace admin token', admin_token: 'admin token', user_token: 'user token' } as const;

export async function seedDevelopment(app: App): Promise<void> {
  const { state } = app;
  if (!state.get('tenants', DEV_TENANT)) {
    await state.transact((s) => ({ ...createTenantOps(s, { slug: DEV_TENANT, name: 'Local development' }), result: undefined }));
    app.log.info('seeded tenant', { tenant: DEV_TENANT });
  }
  if (!state.get('workspaces', DEV_TENANT, DEV_WORKSPACE)) {
    const { workspace } = createWorkspaceOps(state, DEV_TENANT, DEV_WORKSPACE);
    await createWorkspaceDatabase(app.cells.engineFor(getTenant(state, DEV_TENANT)), workspace.database);
    await state.transact((s) => {
      if (s.get('workspaces', DEV_TENANT, DEV_WORKSPACE)) return { ops: [], result: undefined };
      const ops: Op[] = [{ op: 'put', path: ['workspaces', DEV_TENANT, DEV_WORKSPACE], value: workspace }];
      const sealed: Record<string, string> = {};
      for (const [key, name] of Object.entries(DEV_TOKENS)) {
        const t = createTokenOps(s, DEV_TENANT, DEV_WORKSPACE, name, ['ADMIN'], { seal: (x) => app.secrets.seal(x) });
        ops.push(...t.ops);
        sealed[key] = app.secrets.seal(t.secret);
      }
      ops.push({ op: 'put', path: ['dev', 'tokens'], value: sealed });
      return { ops, result: undefined };
    });
    app.log.info('seeded workspace', { tenant: DEV_TENANT, workspace: DEV_WORKSPACE, database: (workspace as Workspace).database });
  }
}

/** A sealed secret opened; undefined when it cannot be (sealed with another server key). */
function opened(app: App, sealed: string): string | undefined {
  try { return app.secrets.open(sealed); } catch { return undefined; }
}

/**
 * Ops that keep `/tokens` current, in the state change that refreshes (`secret`: the new one) or
 * deletes (`secret` undefined) token `before`: its entry, told by the hash of its secret, gets the
 * new secret sealed, or goes. None when it is no development token. `/tokens` handed out the
 * secret sealed at seeding, dead after either.
 */
export function devTokenOps(app: App, s: State, before: TokenRecord, secret: string | undefined): Op[] {
  const sealed = s.get<Record<string, string>>('dev', 'tokens');
  if (!sealed) return [];
  const next: Record<string, string> = {};
  let changed = false;
  for (const [k, v] of Object.entries(sealed)) {
    const plain = opened(app, v);
    if (plain === undefined || hashToken(plain) !== before.hash) { next[k] = v; continue; }
    changed = true;
    if (secret !== undefined) next[k] = app.secrets.seal(secret);
  }
  return changed ? [{ op: 'put', path: ['dev', 'tokens'], value: next }] : [];
}

export function registerDevRoutes(app: App): void {
  app.router.get('/tokens', (ctx) => {
    const sealed = app.state.get<Record<string, string>>('dev', 'tokens') ?? {};
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(sealed)) {
      // Only secrets that work (a data directory written before refreshes were followed, or a
      // workspace deleted, may hold dead ones): a dead one is left out, not handed out.
      const secret = opened(app, v);
      if (secret !== undefined && findToken(app.state, secret)) out[k] = secret;
    }
    if (!Object.keys(out).length) {
      throw new RoostError('NOT_FOUND', `none of the development tokens of workspace "${DEV_WORKSPACE}" works any more (deleted, or their workspace was); create a token with POST /v0/tokens, or start with an empty --data directory`);
    }
    sendJson(ctx, 200, out);
  });
}
