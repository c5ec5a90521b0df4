/**
 * Development mode: tenant `local` with workspace `default` and its tokens,
 * and `GET /tokens` in the shape Tinybird Local answers. The token secrets are
 * kept sealed with the server key so `/tokens` can show them again.
 */
import type { App } from '../app.js';
import { sendJson } from '../http/context.js';
import { createTenantOps, createWorkspaceOps, getTenant, type Workspace } from '../../tenants/registry.js';
import { createWorkspaceDatabase } from '../../tenants/provisioning.js';
import { createTokenOps } from '../../auth/tokens/service-tokens.js';
import type { Op } from '../state/store.js';

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

export function registerDevRoutes(app: App): void {
  app.router.get('/tokens', (ctx) => {
    const sealed = app.state.get<Record<string, string>>('dev', 'tokens') ?? {};
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(sealed)) out[k] = app.secrets.open(v);
    sendJson(ctx, 200, out);
  });
}
