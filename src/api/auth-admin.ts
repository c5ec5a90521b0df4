/**
 * Identity administration of a tenant (API section 3): connections, mapping
 * rules (and their dry run), revoking every session. The operator or a
 * `tenant:admin` of the tenant. Every change is audited.
 */
import type { App } from '../app.js';
import type { Ctx } from '../http/context.js';
import { readJson, sendJson } from '../http/context.js';
import { RoostError } from '../errors.js';
import { authenticate, authorize, credentialName, markAudited, type Credential } from '../../auth/authorize.js';
import { auditAuth } from '../../auth/runtime.js';
import { getTenant, sameTenant } from '../../tenants/registry.js';
import { checkAudienceFree } from '../../tenants/claims.js';
import { connectionIdp, connectionView, sameIssuer, listConnections, parseConnection, type ConnectionRecord, type StoredConnection } from '../../auth/oidc/connections.js';
import { isSamlConnection, parseSamlConnection, samlConnectionView } from '../../auth/saml/index.js';
import { checkRuleConnections, evaluateRules, getRules, grantsView, matchedRules, rulesElsewhere, rulesNaming, unscopedRules, unscopedWarnings, validateRules, type MappingDoc, type MappingRule } from '../../auth/mapping/rules.js';
import { revokeTenantSessions } from '../../auth/sessions/sessions.js';

export function registerIdentityAdminRoutes(app: App): void {
  const { router, state } = app;

  const tenantAdmin = async (ctx: Ctx): Promise<{ cred: Credential; tenant: string; createdAt: string }> => {
    const cred = await authenticate(app, ctx);
    const tenant = ctx.params.slug!;
    // Authorize before looking the tenant up: an unknown tenant must not be told apart from a foreign one.
    authorize(app, ctx, cred, { op: 'tenant', tenant });
    // Which tenant of the slug: a write after an await checks it is still that one (sameTenant).
    return { cred, tenant, createdAt: getTenant(state, tenant).createdAt };
  };
  const view = (c: StoredConnection) => (isSamlConnection(c) ? samlConnectionView(app, c) : connectionView(app, c));
  /** OIDC or SAML by the body's `type` (or the stored record's, for a patch). */
  const parse = (tenant: string, body: unknown, existing?: StoredConnection): StoredConnection => {
    const type = (body as { type?: unknown } | null)?.type ?? existing?.type;
    if (existing && type !== existing.type) throw new RoostError('INVALID_PARAMETER', 'a connection\'s type cannot change; delete it and create another');
    if (type === 'saml') return parseSamlConnection(app, tenant, body, existing as Parameters<typeof parseSamlConnection>[3]);
    return parseConnection(app, tenant, body, existing as ConnectionRecord | undefined);
  };
  const anyConnection = (tenant: string, id: string): StoredConnection => {
    const c = state.get<StoredConnection>('connections', tenant, id);
    if (!c) throw new RoostError('NOT_FOUND', `tenant "${tenant}" has no connection "${id}"`);
    return c;
  };
  /** The tenant's connection ids, as the state `s` has them. */
  const connectionIds = (s: typeof state, tenant: string): string[] => Object.keys(s.get<Record<string, unknown>>('connections', tenant) ?? {}).sort();
  /** Rules answered with `warnings` (only when there are some) about rules every connection earns in a tenant of several. */
  const rulesView = (rules: MappingRule[], updatedAt: string | null, connections: string[]) => {
    const warnings = unscopedWarnings(rules, connections);
    return { rules, updated_at: updatedAt, ...(warnings.length ? { warnings } : {}) };
  };
  const audit = (ctx: Ctx, cred: Credential, tenant: string, event: string, resource: string, details?: Record<string, unknown>, denied?: string) =>
    auditAuth(app, { event, outcome: denied ? 'denied' : 'success', ...(denied ? { reason: denied } : {}), tenant, credential: credentialName(cred), actor: cred.kind === 'session' || cred.kind === 'idp' ? cred.identity.email ?? cred.identity.subject : undefined, resource, requestId: ctx.id, details });
  /**
   * An issuer + audience another connection (of any tenant) accepts access tokens for is refused
   * (409): audited as a denial of the change, with the issuer and audience (a tenant claiming
   * another's first is a thing to see in the log; it was not audited at all).
   */
  const audienceFree = (s: typeof state, rec: StoredConnection, ctx: Ctx, cred: Credential, tenant: string, event: string, was?: StoredConnection): void => {
    // A connection that took tokens of this issuer already keeps doing so through a tenant
    // admin's edits (the operator set up the sharing; an edit of its scopes is no new claim).
    // (The same audience too: a new audience on a shared issuer is a new claim on other tenants'
    // tokens — PATCH {"audience": "account"} was the create attack again.)
    const kept = was?.type === 'oidc' && was.accept_idp_access_tokens === true && rec.type === 'oidc' && sameIssuer(was.issuer, rec.issuer) && was.audience === rec.audience;
    try {
      checkAudienceFree(s, rec, { operator: cred.kind === 'operator' || kept });
    } catch (e) {
      if (e instanceof RoostError && (e.code === 'ALREADY_EXISTS' || e.code === 'CONFLICT') && rec.type === 'oidc') {
        audit(ctx, cred, tenant, event, `connection:${rec.id}`, { issuer: rec.issuer, audience: rec.audience ?? null }, e.message);
        markAudited(e);
      }
      throw e;
    }
  };
  /**
   * A connection write whose issuer host the operator's IdP hosts refuse (400 IDP_HOST_NOT_ALLOWED)
   * is a denial: audited as the change it would have been, outcome `denied`, with the host (the
   * HTTP layer audits only 401/403 answers).
   */
  const auditHostRefusal = (e: unknown, ctx: Ctx, cred: Credential, tenant: string, event: string, id: unknown, issuer: unknown): unknown => {
    if (e instanceof RoostError && e.code === 'IDP_HOST_NOT_ALLOWED') {
      audit(ctx, cred, tenant, event, `connection:${typeof id === 'string' ? id : '?'}`, { host: e.details.host, issuer: typeof issuer === 'string' ? issuer : null }, e.message);
      markAudited(e);
    }
    return e;
  };

  router.get('/v0/tenants/:slug/connections', async (ctx) => {
    const { tenant } = await tenantAdmin(ctx);
    sendJson(ctx, 200, { connections: listConnections(app, tenant).map(view) });
  });

  router.post('/v0/tenants/:slug/connections', async (ctx) => {
    const { cred, tenant, createdAt } = await tenantAdmin(ctx);
    const body = await readJson(ctx);
    const b = body as { id?: unknown; issuer?: unknown } | null;
    let rec: StoredConnection;
    try { rec = parse(tenant, body); } catch (e) { throw auditHostRefusal(e, ctx, cred, tenant, 'connection.created', b?.id, b?.issuer); }
    const warnings = await state.transact((s) => {
      sameTenant(s, tenant, createdAt);
      if (s.get('connections', tenant, rec.id)) throw new RoostError('ALREADY_EXISTS', `connection "${rec.id}" already exists`);
      audienceFree(s, rec, ctx, cred, tenant, 'connection.created');
      // The second connection of a tenant is when its rules for every connection start to be earned by another IdP.
      return { ops: [{ op: 'put', path: ['connections', tenant, rec.id], value: rec }], result: unscopedWarnings(getRules(s, tenant), [...connectionIds(s, tenant), rec.id].sort()) };
    });
    audit(ctx, cred, tenant, 'connection.created', `connection:${rec.id}`, isSamlConnection(rec)
      ? { type: 'saml', entity_id: rec.idp_entity_id, sso_url: rec.sso_url, certificates: rec.certificates.length, allow_idp_initiated: rec.allow_idp_initiated }
      : { issuer: rec.issuer, client_id: rec.client_id, accept_idp_access_tokens: rec.accept_idp_access_tokens });
    sendJson(ctx, 201, warnings.length ? { ...view(rec), warnings } : view(rec));
  });

  router.get('/v0/tenants/:slug/connections/:id', async (ctx) => {
    const { tenant } = await tenantAdmin(ctx);
    sendJson(ctx, 200, view(anyConnection(tenant, ctx.params.id!)));
  });

  router.patch('/v0/tenants/:slug/connections/:id', async (ctx) => {
    const { cred, tenant } = await tenantAdmin(ctx);
    const body = await readJson(ctx);
    const rec = await state.transact((s) => {
      const cur = s.get<StoredConnection>('connections', tenant, ctx.params.id!);
      if (!cur) throw new RoostError('NOT_FOUND', `tenant "${tenant}" has no connection "${ctx.params.id}"`);
      let next: StoredConnection;
      try { next = parse(tenant, body, cur); } catch (e) { throw auditHostRefusal(e, ctx, cred, tenant, 'connection.updated', cur.id, (body as { issuer?: unknown } | null)?.issuer ?? connectionIdp(cur)); }
      audienceFree(s, next, ctx, cred, tenant, 'connection.updated', cur);
      return { ops: [{ op: 'put', path: ['connections', tenant, next.id], value: next }], result: next };
    });
    audit(ctx, cred, tenant, 'connection.updated', `connection:${rec.id}`, { fields: Object.keys(body as object) });
    sendJson(ctx, 200, view(rec));
  });

  router.delete('/v0/tenants/:slug/connections/:id', async (ctx) => {
    const { cred, tenant } = await tenantAdmin(ctx);
    const c = anyConnection(tenant, ctx.params.id!);
    await state.transact((s) => {
      // A rule naming a deleted connection would apply again to a connection created later under
      // the same id (another IdP, perhaps): the rules are changed first, by whoever knows what they meant.
      const naming = rulesNaming(getRules(s, tenant), c.id);
      if (naming.length) {
        throw new RoostError('CONFLICT', `connection "${c.id}" is named by mapping ${naming.length === 1 ? `rule ${naming[0]}` : `rules ${naming.join(', ')}`}: take it out of their "connections" (PUT /v0/tenants/${tenant}/mappings), then delete it`, { details: { rules: naming } });
      }
      return { ops: s.get('connections', tenant, c.id) ? [{ op: 'del' as const, path: ['connections', tenant, c.id] }] : [], result: undefined };
    });
    audit(ctx, cred, tenant, 'connection.deleted', `connection:${c.id}`);
    ctx.res.writeHead(204).end();
  });

  router.get('/v0/tenants/:slug/mappings', async (ctx) => {
    const { tenant } = await tenantAdmin(ctx);
    const doc = state.get<MappingDoc>('mappings', tenant);
    sendJson(ctx, 200, rulesView(doc?.rules ?? [], doc?.updatedAt ?? null, connectionIds(state, tenant)));
  });

  router.put('/v0/tenants/:slug/mappings', async (ctx) => {
    const { cred, tenant, createdAt } = await tenantAdmin(ctx);
    const rules = validateRules(await readJson(ctx));
    const doc: MappingDoc = { rules, updatedAt: new Date().toISOString() };
    const { before, connections } = await state.transact((s) => {
      sameTenant(s, tenant, createdAt);
      // Checked where it is written: a connection deleted meanwhile is not named (its delete checks the rules the same way).
      const connections = connectionIds(s, tenant);
      checkRuleConnections(rules, new Set(connections), tenant);
      return { ops: [{ op: 'put' as const, path: ['mappings', tenant], value: doc }], result: { before: getRules(s, tenant), connections } };
    });
    // The rules as stored, each with its `connections` when limited; `unscoped_rules`: those every connection earns.
    audit(ctx, cred, tenant, 'mappings.updated', 'mappings', { rules_before: before.length, rules_after: rules.length, rules, unscoped_rules: unscopedRules(rules), tenant_connections: connections });
    sendJson(ctx, 200, rulesView(rules, doc.updatedAt, connections));
  });

  router.post('/v0/tenants/:slug/mappings/test', async (ctx) => {
    const { tenant } = await tenantAdmin(ctx);
    const body = await readJson<{ claims?: unknown; rules?: unknown; connection?: unknown }>(ctx);
    if (!body || typeof body.claims !== 'object' || body.claims === null || Array.isArray(body.claims)) throw new RoostError('INVALID_PARAMETER', 'send {"claims": {...}} (optionally "connection" to test a login through it, and "rules" to try rules before saving them)');
    const known = new Set(connectionIds(state, tenant));
    const rules = body.rules !== undefined ? validateRules({ rules: body.rules }) : getRules(state, tenant);
    if (body.rules !== undefined) checkRuleConnections(rules, known, tenant);
    // Without a connection, only the rules for every connection apply (as to no login in particular).
    const connection = body.connection ?? null;
    if (connection !== null && typeof connection !== 'string') throw new RoostError('INVALID_PARAMETER', 'connection must be the id of one of the tenant\'s connections');
    if (connection !== null && !known.has(connection)) {
      throw new RoostError('INVALID_PARAMETER', `tenant "${tenant}" has no connection ${JSON.stringify(connection)} (its connections: ${[...known].join(', ') || 'none'})`, { details: { connection } });
    }
    const claims = body.claims as Record<string, unknown>;
    const g = evaluateRules(rules, claims, connection);
    sendJson(ctx, 200, {
      ...grantsView(g), matched_rules: matchedRules(rules, claims, connection), access: g.tenantAdmin || g.all !== undefined || Object.keys(g.workspaces).length > 0,
      // Rules whose claim matches but that are limited to other connections: they grant nothing here.
      connection, rules_for_other_connections: rulesElsewhere(rules, claims, connection),
    });
  });

  router.delete('/v0/tenants/:slug/sessions', async (ctx) => {
    const { cred, tenant } = await tenantAdmin(ctx);
    const at = await revokeTenantSessions(app, tenant);
    audit(ctx, cred, tenant, 'sessions.revoked', 'sessions', { before: new Date(at).toISOString() });
    sendJson(ctx, 200, { revoked_before: new Date(at).toISOString() });
  });
}
