/** Operator administration of tenants and their workspaces (API section 3). */
import type { App } from '../app.js';
import type { Ctx } from '../http/context.js';
import { beginCommit, noLoneSurrogates, readJson, sendJson } from '../http/context.js';
import { RoostError } from '../errors.js';
import { onlyFields } from '../http/fields.js';
import { authenticate, authorize } from '../../auth/authorize.js';
import { plainHttpHost } from '../../auth/loopback.js';
import fs from 'node:fs';
import { SLUG, createTenantOps, createWorkspaceOps, deleteWorkspaceOps, getTenant, getWorkspace, renameWorkspaceOps, updateTenantOps, type Placement, type Tenant, type TenantLimits, type Workspace } from '../../tenants/registry.js';
import { createWorkspaceDatabase, dropWorkspaceDatabase, holdNewDatabase } from '../../tenants/provisioning.js';
import { deleteSliceOps } from '../../tenants/state-slice.js';
import { checkDomainsFree } from '../../tenants/claims.js';
import { forgetRenderShare } from '../pipes/render-share.js';
import { auditOperator } from '../../tenants/operator-audit.js';
import path from 'node:path';
import type { Credential } from '../../auth/authorize.js';
import type { State } from '../state/state.js';
import { credentialName } from '../../auth/authorize.js';
import { readBody, textOf, writeChunk, bodyStream } from '../http/context.js';
import { backupDir, backupOwner, backupTenant, checkBackupFiles, checkBackupKey, checkBackupId, claimTenant, isBackupOf, listBackups, newBackupId, noBackup, readManifest, restoreTenant, type BackupManifest } from '../../tenants/backup.js';
import { tarStream, untarInto, writeTar } from '../../tenants/archive.js';
import { jobsOf, jobView, ownerKey } from '../../tenants/jobs.js';
import { auditAuth } from '../../auth/runtime.js';
import { createTokenOps } from '../../auth/tokens/service-tokens.js';

async function operatorOnly(app: App, ctx: Ctx): Promise<Credential> {
  const cred = await authenticate(app, ctx);
  authorize(app, ctx, cred, { op: 'operator' });
  return cred;
}

/**
 * The operator, or a `tenant:admin` session of this tenant. Authorized before the
 * tenant is looked up: an unknown tenant is not told apart from a foreign one.
 */
async function tenantAdmin(app: App, ctx: Ctx): Promise<{ cred: Credential; tenant: Tenant }> {
  const cred = await authenticate(app, ctx);
  authorize(app, ctx, cred, { op: 'tenant', tenant: ctx.params.slug! });
  return { cred, tenant: getTenant(app.state, ctx.params.slug!) };
}

/**
 * Who reads a slug's backups: a `tenant:admin` of the tenant holding the slug now, who sees
 * only that tenant's own backups (`mine`), or the operator, who sees every backup kept under
 * the slug, those of deleted tenants too (also when no tenant holds the slug).
 */
async function backupReader(app: App, ctx: Ctx): Promise<{ cred: Credential; slug: string; tenant: Tenant | undefined; mine: (m: BackupManifest) => boolean }> {
  const slug = ctx.params.slug!;
  const cred = await authenticate(app, ctx);
  const tenant = app.state.get<Tenant>('tenants', slug);
  authorize(app, ctx, cred, tenant ? { op: 'tenant', tenant: slug } : { op: 'operator' });
  if (!tenant && !SLUG.test(slug)) throw new RoostError('INVALID_PARAMETER', 'not a tenant slug');
  const operator = cred.kind === 'operator';
  return { cred, slug, tenant, mine: (m) => operator || (!!tenant && isBackupOf(app, tenant, m)) };
}

function auditTenantChange(app: App, ctx: Ctx, cred: Credential, tenant: string, event: string, resource: string, details?: Record<string, unknown>): void {
  auditAuth(app, { event, outcome: 'success', tenant, credential: credentialName(cred), actor: cred.kind === 'session' || cred.kind === 'idp' ? cred.identity.email ?? cred.identity.subject : undefined, resource, requestId: ctx.id, details });
}

function parseDomains(raw: unknown): string[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw) || raw.some((d) => typeof d !== 'string' || !/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(d))) {
    throw new RoostError('INVALID_PARAMETER', 'domains must be a list of domain names like "acme.com"');
  }
  return [...new Set((raw as string[]).map((d) => d.toLowerCase()))];
}

function parseName(raw: unknown): string | undefined {
  if (raw === undefined) return undefined;
  // eslint-disable-next-line no-control-regex
  if (typeof raw !== 'string' || !raw.trim() || raw.length > 200 || /[\u0000-\u001f\u007f]/.test(raw)) throw new RoostError('INVALID_PARAMETER', 'name must be a non-empty string of at most 200 characters, without control characters');
  return raw;
}

/** An optional JSON object body: empty means `{}`. */
async function optionalJson(ctx: Ctx): Promise<Record<string, unknown>> {
  const text = textOf(await readBody(ctx));
  if (!text.trim()) return {};
  try {
    const body = jsonObject(JSON.parse(text));
    noLoneSurrogates(text, body);
    return body;
  } catch (e) {
    if (e instanceof RoostError) throw e;
    throw new RoostError('INVALID_JSON', `the request body is not valid JSON: ${(e as Error).message}`);
  }
}

function jsonObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new RoostError('INVALID_JSON', 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

/** The public view of a tenant: secrets never leave the server. */
export function tenantView(t: Tenant): Record<string, unknown> {
  const p = t.placement;
  const placement = p.type === 'clickhouse' ? { type: p.type, url: p.url, user: p.user, cluster: p.cluster, password_set: !!p.password_sealed, ...(p.allow_plain_http ? { allow_plain_http: true } : {}) } : p;
  return { slug: t.slug, name: t.name, domains: t.domains, placement, limits: t.limits, created_at: t.createdAt };
}

/**
 * `current`: the tenant's placement when this is a change (PATCH). A remote placement
 * sent without `password` keeps the current one (GET shows only `password_set`, so a
 * client that reads, edits and sends the placement back must not lose it) as long as the
 * server's origin and the user stay the same; else the password must be given again.
 * `password: null` removes it.
 */
function parsePlacement(app: App, raw: unknown, current?: Placement): Placement {
  if (raw === undefined) return { type: 'embedded' };
  const p = raw as Record<string, unknown>;
  if (p?.type === 'embedded') return { type: 'embedded' };
  if (p?.type === 'clickhouse') {
    if (typeof p.url !== 'string' || !/^https?:\/\/[^\s]+$/.test(p.url)) throw new RoostError('INVALID_PARAMETER', 'placement.url must be an http(s) URL of the tenant\'s ClickHouse server');
    let u: URL;
    try { u = new URL(p.url); } catch { throw new RoostError('INVALID_PARAMETER', 'placement.url must be an http(s) URL of the tenant\'s ClickHouse server'); }
    // Credentials go in placement.user/password (the password is sealed at rest and never shown);
    // in the URL they would be stored and shown as they are. (The URL is not repeated here.)
    if (u.username || u.password || u.search || u.hash) {
      throw new RoostError('INVALID_PARAMETER', 'placement.url must be the server\'s address only (scheme, host, port): no user, password, query or fragment; give the credentials as placement.user and placement.password');
    }
    // The ClickHouse client takes a path as the default database: another tenant's database
    // named there would be the default of every unqualified name.
    if (u.pathname !== '/' && u.pathname !== '') {
      throw new RoostError('INVALID_PARAMETER', 'placement.url must be the server\'s address only (scheme, host, port), without a path: the ClickHouse client would take the path as the default database');
    }
    if (p.allow_plain_http !== undefined && typeof p.allow_plain_http !== 'boolean') throw new RoostError('INVALID_PARAMETER', 'placement.allow_plain_http must be true or false');
    // Plain http across a network carries the password (Basic authentication on every request)
    // and the tenant's data in clear: only by the operator's explicit choice (docs/decisions.md).
    if (plainHttpHost(u) && p.allow_plain_http !== true) {
      throw new RoostError('INVALID_PARAMETER', `placement.url is plain http to ${u.hostname}: the password and the tenant's data would cross the network in clear. Use https (the server's https_port, e.g. https://${u.hostname}:8443), or set placement.allow_plain_http to true if the network between the two servers is trusted (roost tenant create --allow-plain-http)`, { details: { parameter: 'placement.url' } });
    }
    for (const k of ['user', 'password', 'cluster'] as const) {
      if (p[k] !== undefined && typeof p[k] !== 'string' && !(k === 'password' && p[k] === null && current)) {
        throw new RoostError('INVALID_PARAMETER', `placement.${k} must be a string${k === 'password' && current ? ' (or null to remove it)' : ''}`);
      }
    }
    let kept: string | undefined;
    if (p.password === undefined && current?.type === 'clickhouse' && current.password_sealed) {
      // The current password goes only to the server and user it was given for: to another
      // origin or user it would be sent to a host that may not be trusted with it (the shared
      // server's password to a tenant's own server, say).
      if (new URL(current.url).origin !== u.origin || (current.user ?? '') !== ((p.user as string | undefined) ?? '')) {
        throw new RoostError('INVALID_PARAMETER', `placement.password is required when the server (${new URL(current.url).origin} → ${u.origin}) or the user changes: the current password is not sent to another server or user; give the new one, or null for none`);
      }
      kept = current.password_sealed;
    }
    return {
      type: 'clickhouse', url: p.url, user: p.user as string | undefined, cluster: p.cluster as string | undefined,
      password_sealed: typeof p.password === 'string' && p.password ? app.secrets.seal(p.password) : kept,
      ...(p.allow_plain_http === true && u.protocol === 'http:' ? { allow_plain_http: true } : {}),
    };
  }
  throw new RoostError('INVALID_PARAMETER', 'placement.type must be "embedded" or "clickhouse"');
}

/** Engine sessions one tenant's cell may run queries in (the cell caps what it is asked at the same). */
const MAX_QUERY_PARALLELISM = 16;

function parseLimits(raw: unknown): TenantLimits {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new RoostError('INVALID_PARAMETER', 'limits must be an object, e.g. {"concurrent_queries": 4}');
  const out: TenantLimits = {};
  const allowed = ['concurrent_queries', 'query_timeout_ms', 'query_memory_bytes', 'storage_bytes', 'events_per_second', 'query_threads', 'query_parallelism'] as const;
  for (const [k, v] of Object.entries(raw)) {
    if (!(allowed as readonly string[]).includes(k)) throw new RoostError('INVALID_PARAMETER', `unknown limit "${k}"; known: ${allowed.join(', ')}`);
    if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new RoostError('INVALID_PARAMETER', `limits.${k} must be a positive whole number`);
    if (k === 'query_parallelism' && (v as number) > MAX_QUERY_PARALLELISM) throw new RoostError('INVALID_PARAMETER', `limits.query_parallelism is at most ${MAX_QUERY_PARALLELISM} (engine sessions of the tenant's cell)`);
    out[k as keyof TenantLimits] = v as number;
  }
  return out;
}

export function registerTenantRoutes(app: App): void {
  const { router, state } = app;

  router.post('/v0/tenants', async (ctx) => {
    const cred = await operatorOnly(app, ctx);
    const body = jsonObject(await readJson(ctx));
    onlyFields(body, ['slug', 'name', 'domains', 'placement', 'limits'], 'a tenant');
    if (typeof body.slug !== 'string') throw new RoostError('INVALID_PARAMETER', 'slug is required (a-z, 0-9, -)');
    const name = parseName(body.name);
    const domains = parseDomains(body.domains);
    const placement = parsePlacement(app, body.placement);
    const limits = parseLimits(body.limits);
    // Not while a restore of the slug runs (a restore of a tenant that does not exist creates it):
    // the create moved the restore's cell directory aside under its running cell, and the restore
    // then said done over data that was gone (or failed blaming the backup). Held until the
    // directory is settled, so a restore cannot start in between either.
    const release = claimTenant(body.slug, 'tenant creation');
    let tenant: Tenant;
    try {
      tenant = await state.transact((s) => {
        const r = createTenantOps(s, { slug: body.slug as string, name, domains, placement, limits });
        checkDomainsFree(s, r.tenant.slug, domains);
        return { ops: r.ops, result: r.tenant };
      });
      // A cell directory already under the slug (no tenant's: kept at start, see app.ts) is moved
      // aside, never started in: the new tenant begins with nothing of another's.
      const dir = app.cells.cellDir(tenant.slug);
      if (tenant.placement.type === 'embedded' && fs.existsSync(dir)) {
        const aside = path.join(path.dirname(dir), `.orphaned-${tenant.slug}-${Date.now()}`);
        fs.renameSync(dir, aside);
        app.log.warn('moved aside a cell directory of no tenant found under a new tenant\'s name', { tenant: tenant.slug, moved_to: aside });
      }
    } finally {
      release();
    }
    auditOperator(app, tenant.slug, { event: 'tenant.created', credential: credentialName(cred), requestId: ctx.id, details: { name: tenant.name, domains: tenant.domains, placement: tenant.placement.type, limits: tenant.limits } });
    sendJson(ctx, 201, tenantView(tenant));
  });

  router.get('/v0/tenants', async (ctx) => {
    await operatorOnly(app, ctx);
    sendJson(ctx, 200, { tenants: state.list<Tenant>('tenants').map(tenantView) });
  });

  router.get('/v0/tenants/:slug', async (ctx) => {
    const { tenant } = await tenantAdmin(app, ctx);
    sendJson(ctx, 200, tenantView(tenant));
  });

  router.patch('/v0/tenants/:slug', async (ctx) => {
    const cred = await operatorOnly(app, ctx);
    const body = jsonObject(await readJson(ctx));
    const known = ['name', 'domains', 'limits', 'placement'];
    const unknown = Object.keys(body).filter((k) => !known.includes(k));
    if (unknown.length) throw new RoostError('INVALID_PARAMETER', `cannot change ${unknown.join(', ')}; changeable: ${known.join(', ')}`);
    const name = parseName(body.name);
    const domains = parseDomains(body.domains);
    const slug = ctx.params.slug!;
    getTenant(state, slug);
    /**
     * Limits merge into the current ones (a limit set to null is removed), and a placement into
     * the current one: merged into the tenant as the transaction finds it. Merged into the tenant
     * as read before it, two changes at once each wrote its own copy and the last undid the other.
     */
    const merged = (before: Tenant) => {
      const placement = body.placement === undefined ? undefined : parsePlacement(app, body.placement, before.placement);
      let limits: TenantLimits | undefined;
      if (body.limits !== undefined) {
        if (typeof body.limits !== 'object' || body.limits === null || Array.isArray(body.limits)) throw new RoostError('INVALID_PARAMETER', 'limits must be an object');
        const raw = body.limits as Record<string, unknown>;
        const set = parseLimits(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== null)));
        limits = { ...before.limits, ...set };
        for (const [k, v] of Object.entries(raw)) if (v === null) delete limits[k as keyof TenantLimits];
      }
      return { placement, limits };
    };
    const { placement } = merged(getTenant(state, slug));
    const tenant = await state.transact((s) => {
      const { placement, limits } = merged(getTenant(s, slug));
      const r = updateTenantOps(s, slug, { name, domains, placement, limits });
      checkDomainsFree(s, slug, domains);
      return { ops: r.ops, result: r.tenant };
    });
    // A new placement takes effect on the next request: the old engine is let go. Data is not moved.
    if (placement) await app.cells.forget(slug, 'replaced');
    auditOperator(app, slug, { event: 'tenant.updated', credential: credentialName(cred), requestId: ctx.id, details: { fields: Object.keys(body), limits: tenant.limits, placement: tenant.placement.type } });
    sendJson(ctx, 200, tenantView(tenant));
  });

  router.delete('/v0/tenants/:slug', async (ctx) => {
    const cred = await operatorOnly(app, ctx);
    const tenant = getTenant(state, ctx.params.slug!);
    // From here the tenant is being deleted: the answer says what happened, not a 408 (see beginCommit).
    beginCommit(ctx);
    // Recorded before it starts too: a server killed during the delete left the tenant gone and
    // no record of who removed it (the record below is written once it is done).
    auditOperator(app, tenant.slug, { event: 'tenant.delete_started', credential: credentialName(cred), requestId: ctx.id });
    const summary = await deleteTenant(app, tenant);
    forgetRenderShare(tenant.slug);
    auditOperator(app, tenant.slug, { event: 'tenant.deleted', credential: credentialName(cred), requestId: ctx.id, details: summary });
    sendJson(ctx, 200, { deleted: tenant.slug, ...summary });
  });

  router.post('/v0/tenants/:slug/workspaces', async (ctx) => {
    const { cred, tenant } = await tenantAdmin(app, ctx);
    const body = jsonObject(await readJson(ctx));
    onlyFields(body, ['name'], 'a workspace');
    if (typeof body.name !== 'string') throw new RoostError('INVALID_PARAMETER', 'name is required');
    const { workspace } = createWorkspaceOps(state, tenant.slug, body.name);
    // The database first: a failure here leaves no state behind, and CREATE is idempotent.
    // (Until the state names it, a backup's sweep of unnamed databases leaves it alone.)
    const release = holdNewDatabase(workspace.database);
    let secret: string;
    try {
      await createWorkspaceDatabase(app.cells.engineFor(tenant), workspace.database);
      try {
        secret = await state.transact((s) => {
          const again = createWorkspaceOps(s, tenant.slug, body.name as string);
          const ws = { ...again.workspace, id: workspace.id, database: workspace.database };
          const t = createTokenOps(s, tenant.slug, ws.name, 'workspace admin token', ['ADMIN'], { seal: (x) => app.secrets.seal(x) });
          return { ops: [{ op: 'put' as const, path: ['workspaces', tenant.slug, ws.name], value: ws }, ...t.ops], result: t.secret };
        });
      } catch (e) {
        // Refused by the state (a workspace of that name created meanwhile): the database made for
        // it is nobody's, and stayed until a backup's sweep. Not when the tenant is gone (its cell
        // is being removed; using its engine would start it again).
        // Any failure that left the state without it (a refusal, or a state write the disk refused:
        // a 507 left the database, and on a full disk its empty definition kept the cell from
        // starting again, found by the disk round).
        const named = state.list<{ id: string }>('workspaces', tenant.slug).some((w) => w.id === workspace.id);
        if (!named && state.get<Tenant>('tenants', tenant.slug)?.createdAt === tenant.createdAt) {
          await dropWorkspaceDatabase(app.cells.engineFor(tenant), workspace.database).catch((err) => app.log.warn('database of a refused workspace create not dropped', { tenant: tenant.slug, database: workspace.database, err }));
        }
        throw e;
      }
    } finally {
      release();
    }
    auditTenantChange(app, ctx, cred, tenant.slug, 'workspace.created', `workspace:${workspace.name}`, { database: workspace.database });
    sendJson(ctx, 201, { ...workspaceView(state.get<Workspace>('workspaces', tenant.slug, workspace.name)!), token: secret });
  });

  router.get('/v0/tenants/:slug/workspaces', async (ctx) => {
    const { tenant } = await tenantAdmin(app, ctx);
    sendJson(ctx, 200, { workspaces: state.list<Workspace>('workspaces', tenant.slug).map(workspaceView) });
  });

  router.get('/v0/tenants/:slug/workspaces/:name', async (ctx) => {
    const { tenant } = await tenantAdmin(app, ctx);
    sendJson(ctx, 200, workspaceView(getWorkspace(state, tenant.slug, ctx.params.name!)));
  });

  router.patch('/v0/tenants/:slug/workspaces/:name', async (ctx) => {
    const { cred, tenant } = await tenantAdmin(app, ctx);
    const body = jsonObject(await readJson(ctx));
    const unknown = Object.keys(body).filter((k) => k !== 'name');
    if (unknown.length) throw new RoostError('INVALID_PARAMETER', `cannot change ${unknown.join(', ')}; changeable: name`);
    if (typeof body.name !== 'string') throw new RoostError('INVALID_PARAMETER', 'name is required: the new workspace name');
    const from = ctx.params.name!;
    const { ws, rulesMoved } = await state.transact((s) => {
      const r = renameWorkspaceOps(s, tenant.slug, from, body.name as string);
      return { ops: r.ops, result: { ws: r.workspace, rulesMoved: r.rulesMoved } };
    });
    // Events acknowledged but not flushed yet sit under the workspace's name: they follow it.
    if (ws.name !== from) await app.events?.renameWorkspace(tenant.slug, from, ws.name);
    auditTenantChange(app, ctx, cred, tenant.slug, 'workspace.renamed', `workspace:${ws.name}`, { from, to: ws.name, database: ws.database, ...(rulesMoved ? { mapping_rules_moved: rulesMoved } : {}) });
    sendJson(ctx, 200, workspaceView(ws));
  });

  router.delete('/v0/tenants/:slug/workspaces/:name', async (ctx) => {
    const { cred, tenant } = await tenantAdmin(app, ctx);
    const ws = getWorkspace(state, tenant.slug, ctx.params.name!);
    // State first: from here on no token or session reaches the workspace; then its database goes.
    // (Answered as it happened, not with a 408 sent while the database is dropped: see beginCommit.)
    beginCommit(ctx);
    const { workspace } = await state.transact((s) => {
      const r = deleteWorkspaceOps(s, tenant.slug, ws.name);
      return { ops: r.ops, result: r };
    });
    await app.events?.discardWorkspace(tenant.slug, workspace.name);
    // The workspace is gone once the state says so: a database the engine cannot drop now is
    // reported (and logged), not a failure after the fact that no retry could finish.
    let databaseDropped = true;
    try {
      await dropWorkspaceDatabase(app.cells.engineFor(tenant), workspace.database);
    } catch (err) {
      databaseDropped = false;
      app.log.warn('workspace database not dropped', { tenant: tenant.slug, database: workspace.database, err });
    }
    auditTenantChange(app, ctx, cred, tenant.slug, 'workspace.deleted', `workspace:${workspace.name}`, { database: workspace.database, database_dropped: databaseDropped });
    sendJson(ctx, 200, { deleted: workspace.name, database: workspace.database, database_dropped: databaseDropped });
  });

  router.post('/v0/tenants/:slug/backups', async (ctx) => {
    const { cred, tenant } = await tenantAdmin(app, ctx);
    const body = await optionalJson(ctx);
    // As on the tenant routes: a field it does not know (`{"Archive": true}`) is a 400, not ignored.
    onlyFields(body, ['archive'], 'a backup request');
    if (body.archive !== undefined && typeof body.archive !== 'boolean') throw new RoostError('INVALID_PARAMETER', 'archive must be true or false');
    if (tenant.placement.type !== 'embedded') throw new RoostError('NOT_AVAILABLE', `tenant "${tenant.slug}" is placed on its own ClickHouse server: back it up with that server's tools`);
    const id = newBackupId();
    const who = credentialName(cred);
    const release = claimTenant(tenant.slug, 'backup');
    const job = jobsOf(app).start({ kind: 'backup', tenant: tenant.slug, startedBy: ownerKey(cred), tenantCreatedAt: tenant.createdAt }, async (update) => {
      try {
        const m = await backupTenant(app, tenant, id, update);
        let archive: string | undefined;
        if (body.archive) {
          update({ phase: 'archive', percent: 99 });
          archive = path.join(app.cells.backupsDir(tenant.slug), `${id}.tar`);
          try {
            await writeTar(app.cells.backupsDir(tenant.slug), id, archive);
          } catch (e) {
            // The backup itself is complete and listed: say so, rather than a bare failure.
            auditOperator(app, tenant.slug, { event: 'tenant.backup', credential: who, requestId: ctx.id, details: { backup: id, workspaces: m.workspaces.length, data_bytes: m.data_bytes, archive_failed: true } });
            const code = (e as { code?: string }).code;
            const disk = code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG' || (e instanceof RoostError && e.code === 'INSUFFICIENT_STORAGE');
            throw new RoostError(disk ? 'INSUFFICIENT_STORAGE' : 'INTERNAL', `backup ${id} is complete and kept (GET /v0/tenants/${tenant.slug}/backups/${id}/archive streams it as a tar); only writing ${path.basename(archive)} failed: ${(e as Error).message}`, { details: { backup_id: id } });
          }
        }
        auditOperator(app, tenant.slug, { event: 'tenant.backup', credential: who, requestId: ctx.id, details: { backup: id, workspaces: m.workspaces.length, data_bytes: m.data_bytes } });
        return { backup_id: id, tenant: tenant.slug, workspaces: m.workspaces.map((w) => w.name), data_bytes: m.data_bytes, directory: backupDir(app, tenant.slug, id), ...(archive ? { archive } : {}) };
      } catch (e) {
        // A failed backup is an operator action too: it was only a "job failed" log line.
        if (!(e instanceof RoostError && e.details?.backup_id === id)) {
          auditOperator(app, tenant.slug, { event: 'tenant.backup', outcome: 'failure', reason: (e as Error).message, credential: who, requestId: ctx.id, details: { backup: id, code: (e as { code?: unknown }).code ?? 'INTERNAL' } });
        }
        throw e;
      } finally {
        release();
      }
    }, app.log);
    sendJson(ctx, 202, { ...jobView(job), backup_id: id, job_url: `/v0/jobs/${job.id}` });
  });

  // A backup belongs to the tenant it was taken of (slug and creation time), not to the slug:
  // the admins of a tenant created again under a deleted tenant's slug never see, download or
  // restore the deleted tenant's backups. Those stay for the operator (a tenant deleted by
  // mistake comes back by its backup), listed with `current: false`.
  router.get('/v0/tenants/:slug/backups', async (ctx) => {
    const { slug, tenant, mine } = await backupReader(app, ctx);
    sendJson(ctx, 200, { backups: listBackups(app, slug).filter(mine).map((m) => backupView(app, m, tenant)) });
  });

  router.get('/v0/tenants/:slug/backups/:id', async (ctx) => {
    const { slug, tenant, mine } = await backupReader(app, ctx);
    const id = checkBackupId(ctx.params.id!);
    const m = readManifest(backupDir(app, slug, id));
    if (!mine(m)) throw noBackup(id);
    sendJson(ctx, 200, backupView(app, m, tenant));
  });

  router.get('/v0/tenants/:slug/backups/:id/archive', async (ctx) => {
    const { slug, mine } = await backupReader(app, ctx);
    const id = checkBackupId(ctx.params.id!);
    if (!mine(readManifest(backupDir(app, slug, id)))) throw noBackup(id);
    // The whole of a tenant's data leaving the server: who took it is recorded (it was a request
    // log line without identity).
    auditOperator(app, slug, { event: 'tenant.backup_downloaded', credential: credentialName(ctx.auth as Credential), requestId: ctx.id, details: { backup: id } });
    const { stream, done } = tarStream(app.cells.backupsDir(slug), id);
    ctx.res.writeHead(200, { 'Content-Type': 'application/x-tar', 'Content-Disposition': `attachment; filename="roost-${slug}-${id}.tar"` });
    for await (const chunk of stream) await writeChunk(ctx, chunk as Buffer);
    await done;
    ctx.res.end();
  });

  // Upload of a backup archive (e.g. onto a fresh server): the tenant need not exist.
  router.put('/v0/tenants/:slug/backups/:id', async (ctx) => {
    const cred = await operatorOnly(app, ctx);
    const slug = ctx.params.slug!;
    if (!SLUG.test(slug)) throw new RoostError('INVALID_PARAMETER', 'not a tenant slug');
    const id = checkBackupId(ctx.params.id!);
    await untarInto(bodyStream(ctx, app.config.maxUploadBytes), app.cells.backupsDir(slug), id);
    let m;
    try {
      checkBackupFiles(backupDir(app, slug, id));
      m = readManifest(backupDir(app, slug, id));
      if (m.tenant !== slug || m.id !== id) throw new RoostError('BAD_REQUEST', `the archive is backup ${m.id} of tenant "${m.tenant}", not ${id} of "${slug}"`);
    } catch (e) {
      fs.rmSync(backupDir(app, slug, id), { recursive: true, force: true });
      throw e;
    }
    auditOperator(app, slug, { event: 'tenant.backup_uploaded', credential: credentialName(cred), requestId: ctx.id, details: { backup: id } });
    sendJson(ctx, 201, backupView(app, m, state.get<Tenant>('tenants', slug)));
  });

  router.post('/v0/tenants/:slug/backups/:id/restore', async (ctx) => {
    // A tenant that does not exist (fresh server, or deleted) is restored by the operator only;
    // a tenant administrator restores its own tenant's backups only.
    const { cred, slug, tenant, mine } = await backupReader(app, ctx);
    const id = checkBackupId(ctx.params.id!);
    const body = await optionalJson(ctx);
    // (`{"Replace": true}` was ignored: the restore then refused an existing tenant, or ran as a restore without replace.)
    onlyFields(body, ['replace'], 'a restore request');
    if (body.replace !== undefined && typeof body.replace !== 'boolean') throw new RoostError('INVALID_PARAMETER', 'replace must be true or false');
    const m = readManifest(backupDir(app, slug, id));
    if (!mine(m)) throw noBackup(id);
    if (m.tenant !== slug) throw new RoostError('BAD_REQUEST', `backup ${id} is of tenant "${m.tenant}"`);
    checkBackupKey(app, m);
    if (state.get('tenants', slug) && !body.replace) throw new RoostError('ALREADY_EXISTS', `tenant "${slug}" exists: send {"replace": true} to replace its data and state with the backup's`);
    const who = credentialName(cred);
    const release = claimTenant(slug, 'restore');
    const job = jobsOf(app).start({ kind: 'restore', tenant: slug, startedBy: ownerKey(cred), tenantCreatedAt: state.get<{ createdAt: string }>('tenants', slug)?.createdAt }, async (update) => {
      try {
        const r = await restoreTenant(app, slug, id, { replace: body.replace === true, keepTenantRecord: cred.kind !== 'operator', ...(cred.kind !== 'operator' ? { owner: tenant!.createdAt } : {}) }, update);
        auditOperator(app, slug, { event: 'tenant.restored', credential: who, requestId: ctx.id, details: { backup: id, ...r } });
        return { backup_id: id, ...r };
      } catch (e) {
        auditOperator(app, slug, { event: 'tenant.restored', outcome: 'failure', reason: (e as Error).message, credential: who, requestId: ctx.id, details: { backup: id, code: (e as { code?: unknown }).code ?? 'INTERNAL' } });
        throw e;
      } finally {
        release();
      }
    }, app.log);
    sendJson(ctx, 202, { ...jobView(job), backup_id: id, job_url: `/v0/jobs/${job.id}` });
  });
}

/**
 * `tenant_created_at`: the creation time of the tenant backed up (null when unknown);
 * `current`: whether that is the tenant holding the slug now (false: a deleted tenant's, for the operator).
 */
function backupView(app: App, m: BackupManifest, current: Tenant | undefined): Record<string, unknown> {
  const owner = backupOwner(app, m.tenant, m);
  return { id: m.id, tenant: m.tenant, created_at: m.created_at, workspaces: m.workspaces.map((w) => w.name), data_bytes: m.data_bytes, engine_version: m.engine_version, tenant_created_at: owner ?? null, current: !!current && owner === current.createdAt };
}

/**
 * Deletes a tenant: its state first (every credential of it stops working at
 * once), then its engine: a remote placement drops the workspace databases, an
 * embedded cell is stopped and its directory removed. Backups under
 * `<data>/backups/<slug>/` are kept on purpose: they are how a deleted tenant comes back.
 * They stay the deleted tenant's (their manifest names its creation time): a tenant created
 * later under the slug never sees them; the operator lists and restores them.
 */
export async function deleteTenant(app: App, tenant: Tenant): Promise<{ workspaces: number; state_entries: number; cell_dir_removed: boolean }> {
  const workspaces = app.state.list<Workspace>('workspaces', tenant.slug);
  // The cell's directory is marked before the state change: a server killed after it removes
  // the directory at its next start (app.ts), and only a marked one (see markCellDeleting).
  markCellDeleting(app.cells.cellDir(tenant.slug), tenant.createdAt);
  const removed = await app.state.transact((s) => {
    const ops = deleteSliceOps(s, tenant.slug);
    return { ops, result: ops.length };
  });
  if (tenant.placement.type === 'clickhouse') {
    const engine = app.cells.engineFor(tenant);
    for (const w of workspaces) {
      await dropWorkspaceDatabase(engine, w.database).catch((err) => app.log.warn('workspace database not dropped on the tenant\'s server', { tenant: tenant.slug, database: w.database, err }));
    }
    // Its service data sources (call logs with their parameters, audit records) go too.
    await app.service.drop(tenant.slug, engine).catch((err) => app.log.warn('service database not dropped on the tenant\'s server', { tenant: tenant.slug, err }));
  } else {
    // Its service writes and prunes end before its cell is stopped (the cell's directory goes).
    await app.service.forget(tenant.slug);
  }
  await app.cells.forget(tenant.slug);
  await app.events?.discardTenant(tenant.slug);
  const dir = app.cells.cellDir(tenant.slug);
  let cellDirRemoved = false;
  if (tenant.placement.type === 'embedded' || fs.existsSync(dir)) {
    // Moved out of the way at once (one rename), then removed: removed in place, a server killed
    // mid-way could take the marker first and leave the rest (tens of MB of the tenant's parts)
    // unmarked, which no start removes. A start removes what is left under the trash name.
    const removeDir = () => {
      if (!fs.existsSync(dir)) return;
      const trash = path.join(path.dirname(dir), `${CELL_TRASH}${tenant.slug}-${Date.now()}`);
      try { fs.renameSync(dir, trash); } catch { fs.rmSync(dir, { recursive: true, force: true }); return; }
      fs.rmSync(trash, { recursive: true, force: true });
    };
    removeDir();
    // A request that held the tenant before the state change may have started the cell again.
    await app.cells.forget(tenant.slug);
    removeDir();
    cellDirRemoved = !fs.existsSync(dir);
  }
  return { workspaces: workspaces.length, state_entries: removed, cell_dir_removed: cellDirRemoved };
}

function workspaceView(w: Workspace): Record<string, unknown> {
  return { id: w.id, name: w.name, tenant: w.tenant, database: w.database, created_at: w.createdAt };
}

/** The file in a tenant's cell directory that says its tenant is being deleted. */
export const CELL_DELETING = '.deleting';
/** The prefix of a deleted tenant's cell directory moved aside to be removed (removed at start). */
export const CELL_TRASH = '.deleted-';

/** Marks a cell directory as its tenant's being deleted (with the tenant's creation time). */
function markCellDeleting(dir: string, createdAt: string): void {
  if (!fs.existsSync(dir)) return;
  const f = path.join(dir, CELL_DELETING);
  const fd = fs.openSync(f, 'w', 0o600);
  try { fs.writeSync(fd, createdAt); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}
