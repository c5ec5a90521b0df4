/** Operator administration of tenants and their workspaces (API section 3). */
import type { App } from '../app.js';
import type { Ctx } from '../http/context.js';
import { readJson, sendJson } from '../http/context.js';
import { RoostError } from '../errors.js';
import { authenticate, authorize } from '../../auth/authorize.js';
import { createTenantOps, createWorkspaceOps, getTenant, type Placement, type Tenant, type TenantLimits, type Workspace } from '../../tenants/registry.js';
import { createWorkspaceDatabase } from '../../tenants/provisioning.js';
import { createTokenOps } from '../../auth/tokens/service-tokens.js';

async function operatorOnly(app: App, ctx: Ctx): Promise<void> {
  authorize(app, ctx, await authenticate(app, ctx), { op: 'operator' });
}

/** The public view of a tenant: secrets never leave the server. */
export function tenantView(t: Tenant): Record<string, unknown> {
  const p = t.placement;
  const placement = p.type === 'clickhouse' ? { type: p.type, url: p.url, user: p.user, cluster: p.cluster, password_set: !!p.password_sealed } : p;
  return { slug: t.slug, name: t.name, domains: t.domains, placement, limits: t.limits, created_at: t.createdAt };
}

function parsePlacement(app: App, raw: unknown): Placement {
  if (raw === undefined) return { type: 'embedded' };
  const p = raw as Record<string, unknown>;
  if (p?.type === 'embedded') return { type: 'embedded' };
  if (p?.type === 'clickhouse') {
    if (typeof p.url !== 'string' || !/^https?:\/\/[^\s]+$/.test(p.url)) throw new RoostError('INVALID_PARAMETER', 'placement.url must be an http(s) URL of the tenant\'s ClickHouse server');
    for (const k of ['user', 'password', 'cluster'] as const) {
      if (p[k] !== undefined && typeof p[k] !== 'string') throw new RoostError('INVALID_PARAMETER', `placement.${k} must be a string`);
    }
    return {
      type: 'clickhouse', url: p.url, user: p.user as string | undefined, cluster: p.cluster as string | undefined,
      password_sealed: p.password ? app.secrets.seal(p.password as string) : undefined,
    };
  }
  throw new RoostError('INVALID_PARAMETER', 'placement.type must be "embedded" or "clickhouse"');
}

function parseLimits(raw: unknown): TenantLimits {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null) throw new RoostError('INVALID_PARAMETER', 'limits must be an object');
  const out: TenantLimits = {};
  const allowed = ['concurrent_queries', 'query_timeout_ms', 'query_memory_bytes', 'storage_bytes', 'events_per_second'] as const;
  for (const [k, v] of Object.entries(raw)) {
    if (!(allowed as readonly string[]).includes(k)) throw new RoostError('INVALID_PARAMETER', `unknown limit "${k}"; known: ${allowed.join(', ')}`);
    if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new RoostError('INVALID_PARAMETER', `limits.${k} must be a positive whole number`);
    out[k as keyof TenantLimits] = v as number;
  }
  return out;
}

export function registerTenantRoutes(app: App): void {
  const { router, state } = app;

  router.post('/v0/tenants', async (ctx) => {
    await operatorOnly(app, ctx);
    const body = await readJson<Record<string, unknown>>(ctx);
    if (typeof body.slug !== 'string') throw new RoostError('INVALID_PARAMETER', 'slug is required (a-z, 0-9, -)');
    if (body.name !== undefined && typeof body.name !== 'string') throw new RoostError('INVALID_PARAMETER', 'name must be a string');
    if (body.domains !== undefined && (!Array.isArray(body.domains) || body.domains.some((d) => typeof d !== 'string' || !/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(d)))) {
      throw new RoostError('INVALID_PARAMETER', 'domains must be a list of domain names like "acme.com"');
    }
    const placement = parsePlacement(app, body.placement);
    const limits = parseLimits(body.limits);
    const tenant = await state.transact((s) => {
      const r = createTenantOps(s, { slug: body.slug as string, name: body.name as string | undefined, domains: body.domains as string[] | undefined, placement, limits });
      return { ops: r.ops, result: r.tenant };
    });
    sendJson(ctx, 201, tenantView(tenant));
  });

  router.get('/v0/tenants', async (ctx) => {
    await operatorOnly(app, ctx);
    sendJson(ctx, 200, { tenants: state.list<Tenant>('tenants').map(tenantView) });
  });

  router.get('/v0/tenants/:slug', async (ctx) => {
    await operatorOnly(app, ctx);
    sendJson(ctx, 200, tenantView(getTenant(state, ctx.params.slug!)));
  });

  router.post('/v0/tenants/:slug/workspaces', async (ctx) => {
    await operatorOnly(app, ctx);
    const tenant = getTenant(state, ctx.params.slug!);
    const body = await readJson<Record<string, unknown>>(ctx);
    if (typeof body.name !== 'string') throw new RoostError('INVALID_PARAMETER', 'name is required');
    const { workspace } = createWorkspaceOps(state, tenant.slug, body.name);
    // The database first: a failure here leaves no state behind, and CREATE is idempotent.
    await createWorkspaceDatabase(app.cells.engineFor(tenant), workspace.database);
    const secret = await state.transact((s) => {
      const again = createWorkspaceOps(s, tenant.slug, body.name as string);
      const ws = { ...again.workspace, id: workspace.id, database: workspace.database };
      const t = createTokenOps(s, tenant.slug, ws.name, 'workspace admin token', ['ADMIN'], { seal: (x) => app.secrets.seal(x) });
      return { ops: [{ op: 'put' as const, path: ['workspaces', tenant.slug, ws.name], value: ws }, ...t.ops], result: t.secret };
    });
    sendJson(ctx, 201, { ...workspaceView(state.get<Workspace>('workspaces', tenant.slug, workspace.name)!), token: secret });
  });

  router.get('/v0/tenants/:slug/workspaces', async (ctx) => {
    await operatorOnly(app, ctx);
    const tenant = getTenant(state, ctx.params.slug!);
    sendJson(ctx, 200, { workspaces: state.list<Workspace>('workspaces', tenant.slug).map(workspaceView) });
  });
}

function workspaceView(w: Workspace): Record<string, unknown> {
  return { id: w.id, name: w.name, tenant: w.tenant, database: w.database, created_at: w.createdAt };
}
