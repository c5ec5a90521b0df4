/**
 * Who is calling, and may they do this. `authenticate` turns the request's
 * credential into a `Credential`; `authorize` is the single decision function:
 * default deny, every handler asks it, none decides on its own. Denials are
 * audited here.
 *
 * @example A data route
 * ```ts
 * const cred = await authenticate(app, ctx);
 * const { tenant, workspace } = workspaceOf(app, ctx, cred);
 * authorize(app, ctx, cred, { op: 'workspace', tenant, workspace, scope: 'PIPES:READ', resource: pipe });
 * const forced = fixedParams(cred, pipe); // override request parameters with these
 * ```
 */
import * as jose from 'jose';
import type { App } from '../src/app.js';
import type { Ctx } from '../src/http/context.js';
import { clientIp } from '../src/http/client-ip.js';
import { RoostError } from '../src/errors.js';
import { findToken, hashToken, type TokenOwner, type TokenRecord } from './tokens/service-tokens.js';
import { jwtScopesNow, looksLikeTinybirdJwt, verifyTinybirdJwt, workspaceById, type JwtScope, type JwtToken } from './tokens/jwt-tokens.js';
import { roleAllows, roleOn, type Grants, type Role } from './roles.js';
import { rowFilterProblem } from './tokens/scopes.js';
import { rateHeaders, rateLimited } from './rate-limit.js';
import { auditAuth, runtimeOf } from './runtime.js';
import { SESSION_COOKIE, cookieName, readCookie, csrfMatches } from './sessions/cookies.js';
import { sessionStanding, verifySession, type SessionClaims } from './sessions/sessions.js';
import { verifyIdpAccessToken } from './oidc/idp-tokens.js';
import { limitLoginFailure } from './login-limits.js';
import { sameIssuer, type StoredConnection } from './oidc/connections.js';
import { evaluateRules, getRules } from './mapping/rules.js';

/** What the IdP asserted about a person; keyed by (connection, issuer, subject). */
export interface Identity {
  connection: string;
  issuer: string;
  subject: string;
  email?: string;
  name?: string;
}

export type Credential =
  | { kind: 'operator' }
  /** A service token (`p.rst_...`) of one workspace. */
  | { kind: 'token'; token: TokenRecord }
  /** A Tinybird JWT token signed with the workspace admin token. */
  | { kind: 'jwt'; jwt: JwtToken }
  /** A Roost session (cookie or bearer); its grants come from the mapping rules now. */
  | { kind: 'session'; tenant: string; identity: Identity; grants: Grants; session: SessionClaims; via: 'cookie' | 'bearer' }
  /**
   * An access token from the tenant's own IdP, through the same mapping rules. `claims`: the
   * token's (verified) claims, to map again when an upload commits (`stillAuthorized`).
   */
  | { kind: 'idp'; tenant: string; identity: Identity; grants: Grants; claims?: Record<string, unknown> };

export type Action =
  /** Operator-only administration. */
  | { op: 'operator' }
  /** Administration of one tenant (connections, mappings, sessions): operator or `tenant:admin`. */
  | { op: 'tenant'; tenant: string }
  /** Something inside one workspace, needing `scope` (optionally on a named resource). */
  | { op: 'workspace'; tenant: string; workspace: string; scope: string; resource?: string };

/** The workspace a request acts on. */
export interface WorkspaceRef { tenant: string; workspace: string }

export function bearer(ctx: Ctx): string | undefined {
  const h = ctx.req.headers.authorization;
  if (typeof h === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (m) return m[1];
  }
  return ctx.query.get('token') ?? undefined;
}

/** A short name of the credential for logs, audit records and `token_name` columns. */
export function credentialName(cred: Credential): string {
  switch (cred.kind) {
    case 'operator': return 'operator';
    case 'token': return `token:${cred.token.name}`;
    case 'jwt': return `jwt:${cred.jwt.name}`;
    case 'session': return `session:${cred.identity.connection}:${cred.identity.subject}`;
    case 'idp': return `idp:${cred.identity.connection}:${cred.identity.subject}`;
  }
}

/** A key naming exactly one credential (token names repeat across workspaces; ids do not). */
export function ownerKey(cred: Credential): string {
  switch (cred.kind) {
    case 'operator': return 'operator';
    case 'token': return `token:${cred.token.id}`;
    case 'jwt': return `jwt:${cred.jwt.workspaceId}:${cred.jwt.name}`;
    default: return `${cred.kind}:${cred.tenant}:${cred.identity.connection}:${cred.identity.issuer}:${cred.identity.subject}`;
  }
}

export function tenantOfCred(cred: Credential): string | undefined {
  switch (cred.kind) {
    case 'operator': return undefined;
    case 'token': return cred.token.tenant;
    case 'jwt': return cred.jwt.tenant;
    default: return cred.tenant;
  }
}

/**
 * The id of the workspace a token or JWT belongs to, for its audit records: a JWT carries it; a
 * service token's is that of the workspace holding the token now (found by its hash: a workspace
 * rename moves its tokens), so a record written after a rename, with another workspace given the
 * old name, still lands in the token's own. Undefined otherwise (the record's workspace name is
 * resolved when it is written).
 */
function credWorkspaceId(app: App, cred: Credential | undefined): string | undefined {
  if (cred?.kind === 'jwt') return cred.jwt.workspaceId;
  if (cred?.kind !== 'token') return undefined;
  const at = app.state.get<{ tenant: string; workspace: string; name: string }>('tokenHashes', cred.token.hash);
  if (!at || app.state.get<TokenRecord>('tokens', at.tenant, at.workspace, at.name)?.id !== cred.token.id) return undefined;
  return app.state.get<{ id: string }>('workspaces', at.tenant, at.workspace)?.id;
}

function actorOf(cred: Credential): string | undefined {
  return cred.kind === 'session' || cred.kind === 'idp' ? cred.identity.email ?? cred.identity.subject : undefined;
}

function authFailure(app: App, ctx: Ctx, e: RoostError, tenant?: string): never {
  auditAuth(app, { event: 'auth.credential', outcome: 'failure', reason: e.message, requestId: ctx.id, resource: ctx.route, tenant, ip: clientIp(ctx) });
  AUDITED.add(e);
  throw e;
}

/** Refusals already written to the audit log (by `deny` and the credential checks). */
const AUDITED = new WeakSet<object>();
/** Marks an error whose refusal was audited where it was decided (so it is not written twice). */
export function markAudited(e: unknown): void {
  if (e !== null && typeof e === 'object') AUDITED.add(e);
}

/**
 * Audits a 401/403 refusal that no decision function wrote yet (the SQL analyzer's
 * FORBIDDEN_* answers, an unusable row filter), so every denial leaves a record once.
 */
export function auditRefusal(app: App, ctx: Ctx, cred: Credential | undefined, e: unknown, resource?: string): void {
  if (!(e instanceof RoostError) || (e.status !== 401 && e.status !== 403) || AUDITED.has(e)) return;
  // A template's own error() or custom_error() may choose 401 or 403: no auth decision, and any
  // caller could fill the audit log with records of its own text.
  if (e.code === 'TEMPLATE_ERROR') return;
  AUDITED.add(e);
  auditAuth(app, {
    event: e.code === 'SQL_FORBIDDEN' ? 'sql.denied' : e.status === 401 ? 'auth.credential' : 'authz.denied',
    outcome: e.status === 401 ? 'failure' : 'denied', reason: e.message, requestId: ctx.id,
    tenant: cred && tenantOfCred(cred),
    workspace: cred?.kind === 'token' ? cred.token.workspace : cred?.kind === 'jwt' ? cred.jwt.workspace : undefined,
    workspaceId: credWorkspaceId(app, cred),
    credential: cred && credentialName(cred), actor: cred && actorOf(cred),
    connection: cred?.kind === 'session' || cred?.kind === 'idp' ? cred.identity.connection : undefined,
    resource: resource ?? ctx.route, ip: clientIp(ctx), details: { code: e.code },
  });
  if (e.status === 403 && cred) auditForTarget(app, ctx, cred, ctx.params.slug, resource ?? ctx.route);
}

/**
 * A denial on another tenant's routes is that tenant's to see too: it was in the actor's
 * tenant's log only, and the tenant tried never knew. Without who tried (a tenant learns nothing
 * of another's people or names; the operator reads the full record in the actor's tenant's log).
 */
/**
 * A refusal of something of another tenant that is answered as if it did not exist (a job by its
 * id): recorded in that tenant's audit log only. A record in the asker's own log named the tenant
 * the thing belongs to, and told an existing id from a made-up one, which leaves none (a
 * black-box round).
 */
export function auditOtherTenantProbe(app: App, ctx: Ctx, cred: Credential, target: string, resource: string): void {
  auditForTarget(app, ctx, cred, target, resource);
}

function auditForTarget(app: App, ctx: Ctx, cred: Credential, target: string | undefined, resource: string): void {
  const own = tenantOfCred(cred);
  if (!target || !own || target === own || !app.state.get('tenants', target)) return;
  // At most one a second (bursts of 10) per tenant of the actor and tenant tried: any token of one tenant
  // could otherwise fill another's audit log (kept 400 days) and keep its cell busy — 500 records
  // in 6 s in the isolation round. The actor's own tenant's log keeps every one.
  // (Per tenant of the actor, not per credential: JWTs name themselves, and a new name each was a new budget.)
  if (runtimeOf(app).limiter.take(`cross-tenant-audit:${target}:${own}`, 1, 10).retryAfter) return;
  auditAuth(app, {
    event: 'authz.denied', outcome: 'denied', reason: 'a credential of another tenant was refused (at most one a second per tenant is recorded here; the full record is in its own tenant\'s log)', requestId: ctx.id, tenant: target,
    credential: 'another tenant', resource, ip: clientIp(ctx),
  });
}

/**
 * Resolves the request's credential: `Authorization: Bearer` (or `?token=`)
 * first, else the session cookie. Failures are audited and answer 401/403.
 * Rate limits of the credential are enforced here (429 with headers).
 * Cookie sessions must show their CSRF token on changes (`X-CSRF-Token`, or
 * `opts.csrfField` when a route read it from a form).
 */
export async function authenticate(app: App, ctx: Ctx, opts: { csrfField?: string } = {}): Promise<Credential> {
  if (ctx.auth) return ctx.auth as Credential;
  const secret = bearer(ctx);
  let cred: Credential;
  if (secret) {
    cred = await fromBearer(app, ctx, secret);
  } else {
    const cookie = readCookie(ctx, cookieName(SESSION_COOKIE, !runtimeOf(app).insecureCookies));
    if (!cookie) authFailure(app, ctx, new RoostError('UNAUTHENTICATED', 'no credential: send "Authorization: Bearer <token>", ?token=<token>, or log in at /auth/login'));
    cred = await fromSession(app, ctx, cookie, 'cookie');
    const method = ctx.req.method ?? 'GET';
    if (!['GET', 'HEAD', 'OPTIONS'].includes(method) && !csrfMatches(ctx, (cred as { session: SessionClaims }).session.csrf, opts.csrfField)) {
      const e = new RoostError('CSRF_FAILED', 'a cookie-authenticated change needs the X-CSRF-Token header with the csrf_token from GET /auth/session');
      auditAuth(app, { event: 'auth.csrf', outcome: 'denied', reason: e.message, requestId: ctx.id, resource: ctx.route, tenant: tenantOfCred(cred), credential: credentialName(cred), actor: actorOf(cred), ip: clientIp(ctx) });
      AUDITED.add(e);
      throw e;
    }
  }
  try {
    limitRate(app, ctx, cred);
  } catch (e) {
    // Known, and refused for its rate: the call logs (pipe_stats_rt) name whose call it was.
    ctx.auth = cred;
    throw e;
  }
  ctx.auth = cred;
  return cred;
}

async function fromBearer(app: App, ctx: Ctx, secret: string): Promise<Credential> {
  // One SHA-256 of the secret serves both lookups.
  const hash = hashToken(secret);
  if (app.operator.matchesHash(hash)) return { kind: 'operator' };
  const token = findToken(app.state, secret, hash);
  if (token) return { kind: 'token', token };
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(secret)) {
    authFailure(app, ctx, new RoostError('UNAUTHENTICATED', 'the credential is not valid (unknown, deleted or refreshed token)'));
  }
  // Which verifier applies is chosen from unverified claims; each verifier then
  // enforces its own key and algorithm allowlist, so a forged hint gains nothing.
  let claims: jose.JWTPayload;
  try {
    claims = jose.decodeJwt(secret);
  } catch {
    authFailure(app, ctx, new RoostError('UNAUTHENTICATED', 'the credential is not a valid JWT'));
  }
  const rt = runtimeOf(app);
  if (claims.iss === rt.issuer) return fromSession(app, ctx, secret, 'bearer');
  if (looksLikeTinybirdJwt(claims)) {
    try {
      return { kind: 'jwt', jwt: await verifyTinybirdJwt(app.state, app.secrets, secret, claims) };
    } catch (e) {
      if (e instanceof RoostError) authFailure(app, ctx, e);
      throw e;
    }
  }
  const r = await verifyIdpAccessToken(app, secret, claims);
  if ('error' in r) {
    // Anyone can send a token naming a tenant's issuer, and each failure is a record in that
    // tenant's audit log: failures take from the client address's failed-login budget, past
    // which the answer is a 429 without a record of its own (as failed logins are).
    const limited = limitLoginFailure(app, ctx, r.tenant ?? r.ambiguous?.[0]?.tenant, r.connection);
    if (limited) throw limited;
    // A token several tenants' connections accept is refused in each of their logs: a tenant
    // whose users were refused so sees why.
    for (const at of r.ambiguous ?? [{ tenant: r.tenant, connection: r.connection }]) {
      auditAuth(app, { event: 'auth.idp_token', outcome: 'failure', reason: r.error.message, requestId: ctx.id, resource: ctx.route, tenant: at.tenant, connection: at.connection, ip: clientIp(ctx) });
    }
    AUDITED.add(r.error);
    throw r.error;
  }
  // The claims decoded above are those just verified (the same token).
  return { ...r.credential, claims: claims as Record<string, unknown> };
}

async function fromSession(app: App, ctx: Ctx, jwt: string, via: 'cookie' | 'bearer'): Promise<Credential> {
  const r = await verifySession(app, jwt);
  if ('error' in r) {
    auditAuth(app, { event: 'auth.session', outcome: 'failure', reason: r.error.message, requestId: ctx.id, resource: ctx.route, tenant: r.tenant, ip: clientIp(ctx) });
    AUDITED.add(r.error);
    throw r.error;
  }
  return { kind: 'session', tenant: r.session.tenant, identity: r.identity, grants: r.grants, session: r.session, via };
}

function limitRate(app: App, ctx: Ctx, cred: Credential): void {
  let key: string | undefined;
  let rps: number | undefined;
  if (cred.kind === 'token' && cred.token.rps) { key = `t:${cred.token.id}`; rps = cred.token.rps; }
  else if (cred.kind === 'jwt' && cred.jwt.rps) { key = `j:${cred.jwt.workspaceId}:${cred.jwt.name}`; rps = cred.jwt.rps; }
  if (!key || !rps) return;
  const d = runtimeOf(app).limiter.take(key, rps);
  if (d.retryAfter) {
    // In the credential's workspace (its audit log, roost.audit_log): it was filed as the tenant's only.
    const workspaceId = credWorkspaceId(app, cred);
    auditAuth(app, { event: 'auth.rate_limited', outcome: 'denied', reason: `over ${rps} requests per second`, requestId: ctx.id, resource: ctx.route, tenant: tenantOfCred(cred), workspace: workspaceId && app.state.list<{ id: string; name: string }>('workspaces', tenantOfCred(cred)!).find((w) => w.id === workspaceId)?.name, workspaceId, credential: credentialName(cred), ip: clientIp(ctx) });
    throw rateLimited(d);
  }
  for (const [k, v] of Object.entries(rateHeaders(d))) ctx.res.setHeader(k, v);
}

/**
 * The credential as the state has it now: a request that awaited something after `authenticate`
 * (a body still arriving) decides with the token's current scopes, not those it had when it came
 * in. A token scope on a data source or pipe dropped or renamed meanwhile no longer reaches
 * another one created under the name. A service token deleted or refreshed meanwhile, or a JWT
 * whose workspace was deleted or renamed, is refused (401, audited). Other credentials are
 * unchanged (their grants are roles, not names).
 */
export function currentCredential(app: App, ctx: Ctx, cred: Credential): Credential {
  if (cred.kind === 'token') {
    const t = cred.token;
    const now = app.state.get<TokenRecord>('tokens', t.tenant, t.workspace, t.name);
    if (!now || now.id !== t.id || now.hash !== t.hash) authFailure(app, ctx, new RoostError('UNAUTHENTICATED', 'the token was deleted, refreshed or moved while this request was read; send it again'), t.tenant);
    return now === t ? cred : { kind: 'token', token: now };
  }
  if (cred.kind === 'jwt') {
    const now = jwtScopesNow(app.state, cred.jwt);
    if (!now) authFailure(app, ctx, new RoostError('UNAUTHENTICATED', 'the JWT\'s workspace was deleted or renamed while this request was read'), cred.jwt.tenant);
    return { kind: 'jwt', jwt: now };
  }
  return cred;
}

/** What an upload was authorized for: asked again when it commits (`stillAuthorized`). */
export interface UploadGrant {
  tenant: string;
  /** The workspace by id: a rename during the upload is the same workspace. */
  workspaceId: string;
  workspace: string;
  scope: string;
  /** The data source, by name as authorized and by id (a rename follows it) once it exists. */
  resource?: string;
  datasourceId?: string;
}

/**
 * The credential as the state has it now, or why it no longer stands: a service token deleted or
 * refreshed (looked up by its hash, so a rename is the same token), a JWT whose workspace went,
 * a session ended or whose connection went (its grants mapped again from its claims), an IdP
 * access token whose connection no longer accepts it (its grants mapped again). Expiry is not
 * asked: it was known when the request was authorized, and nobody took the credential back.
 * State lookups only, O(1) but for the mapping rules of a person.
 */
function standingNow(app: App, cred: Credential): Credential | string {
  const st = app.state;
  switch (cred.kind) {
    case 'operator': return cred;
    case 'token': {
      const t = cred.token;
      const owner = st.get<TokenOwner>('tokenHashes', t.hash);
      const now = owner && st.get<TokenRecord>('tokens', owner.tenant, owner.workspace, owner.name);
      if (!now || now.id !== t.id) return `token "${t.name}" was deleted or refreshed`;
      return now === t ? cred : { kind: 'token', token: now };
    }
    case 'jwt': {
      // (JWTs carry read scopes only: they never upload. Their workspace and scopes are read again.)
      const now = jwtScopesNow(st, cred.jwt);
      return now ? { kind: 'jwt', jwt: now } : `the workspace of JWT "${cred.jwt.name}" was deleted or renamed`;
    }
    case 'session': {
      const r = sessionStanding(app, cred.session);
      return 'error' in r ? r.error.message : { ...cred, grants: r.grants };
    }
    case 'idp': {
      const conn = st.get<StoredConnection>('connections', cred.tenant, cred.identity.connection);
      if (!conn || conn.type !== 'oidc' || !conn.accept_idp_access_tokens || !sameIssuer(conn.issuer, cred.identity.issuer)) {
        return `connection "${cred.identity.connection}" no longer accepts this IdP's access tokens`;
      }
      return cred.claims ? { ...cred, grants: evaluateRules(getRules(st, cred.tenant), cred.claims, cred.identity.connection) } : cred;
    }
  }
}

/**
 * Asks again, at the commit point of an upload (the stage swapped in or attached, the new data
 * source put in the state, the insert of `/v0/events?wait=true` sent, the buffered events segment
 * accepted), whether the credential that was authorized when the request came in still may do
 * what it was authorized for: it was not deleted, refreshed or logged out, its scopes or role still
 * grant `scope` on the data source (by id: a rename follows it), and the workspace is still there.
 * When not, the upload must be abandoned (nothing of it visible) and this refusal answered: 403
 * `CREDENTIAL_REVOKED`, audited as a denial. Synchronous, a few state lookups: called with no
 * await between it and the commit itself.
 */
export function stillAuthorized(app: App, ctx: Ctx, cred: Credential, g: UploadGrant): void {
  const st = app.state;
  const w = workspaceById(st, g.workspaceId);
  let why: string | undefined;
  let now: Credential | string = cred;
  let resource = g.resource;
  if (!w || w.tenant !== g.tenant) {
    why = `workspace "${g.workspace}" was deleted`;
  } else {
    now = standingNow(app, cred);
    if (typeof now === 'string') {
      why = now;
    } else {
      if (g.datasourceId !== undefined && resource !== undefined && st.get<{ id: string }>('datasources', w.tenant, w.name, resource)?.id !== g.datasourceId) {
        resource = st.list<{ id: string; name: string }>('datasources', w.tenant, w.name).find((d) => d.id === g.datasourceId)?.name ?? resource;
      }
      why = decide(now, { op: 'workspace', tenant: w.tenant, workspace: w.name, scope: g.scope, resource });
    }
  }
  if (why === undefined) return;
  const what = `${g.scope}${resource !== undefined ? `:${resource}` : ''}`;
  const e = new RoostError('CREDENTIAL_REVOKED', `the credential was revoked during the upload: ${why}. Nothing of the upload was stored; send it again with a credential that holds ${what}`);
  auditAuth(app, {
    event: 'authz.denied', outcome: 'denied', reason: e.message, requestId: ctx.id, tenant: g.tenant, workspace: w?.name ?? g.workspace, workspaceId: g.workspaceId,
    credential: credentialName(cred), actor: actorOf(cred),
    connection: cred.kind === 'session' || cred.kind === 'idp' ? cred.identity.connection : undefined,
    resource: `${what} @ ${g.tenant}/${w?.name ?? g.workspace}`, ip: clientIp(ctx), details: { code: e.code, at: 'commit' },
  });
  AUDITED.add(e);
  throw e;
}

/**
 * Which workspace a credential acts on for this request. Tokens carry theirs;
 * sessions and IdP tokens name it with `?workspace=` or `X-Roost-Workspace`,
 * inside their own tenant only, and need a role there.
 */
export function workspaceOf(app: App, ctx: Ctx, cred: Credential): WorkspaceRef {
  if (cred.kind === 'token') return noted(app, ctx, { tenant: cred.token.tenant, workspace: cred.token.workspace });
  if (cred.kind === 'jwt') return noted(app, ctx, { tenant: cred.jwt.tenant, workspace: cred.jwt.workspace });
  if (cred.kind === 'operator') deny(app, ctx, cred, { op: 'operator' }, 'the operator token administers tenants; use a workspace token for data');
  const header = ctx.req.headers['x-roost-workspace'];
  const name = ctx.query.get('workspace') ?? (typeof header === 'string' ? header : undefined);
  if (!name) throw new RoostError('INVALID_PARAMETER', 'name the workspace with ?workspace=<name> or the X-Roost-Workspace header');
  // An unknown name is refused like a foreign one: nothing tells whether another tenant has it.
  if (!roleOn(cred.grants, name) || !app.state.get('workspaces', cred.tenant, name)) {
    deny(app, ctx, cred, { op: 'workspace', tenant: cred.tenant, workspace: name, scope: 'any' }, `you have no role on a workspace "${name}" of tenant "${cred.tenant}"`);
  }
  return noted(app, ctx, { tenant: cred.tenant, workspace: name });
}

/** Notes on the request the workspace it acts on, as it is now (see Ctx.workspace). */
function noted(app: App, ctx: Ctx, ref: WorkspaceRef): WorkspaceRef {
  const w = app.state.get<{ id: string }>('workspaces', ref.tenant, ref.workspace);
  if (w) ctx.workspace = { tenant: ref.tenant, tenantCreatedAt: app.state.get<{ createdAt: string }>('tenants', ref.tenant)?.createdAt, name: ref.workspace, id: w.id };
  return ref;
}

/**
 * A request's failure after its workspace (or tenant) was deleted while it ran: the engine's
 * "database does not exist" (a 422 that read as the request's fault) or the tenant's cell
 * stopping (a 503 that said to retry, when no retry can succeed) is answered as what happened.
 * Any other failure, or one whose workspace is still there (renamed is still there), is kept.
 */
export function deletedMeanwhile(app: App, ctx: Ctx, e: unknown): RoostError | undefined {
  const w = ctx.workspace;
  if (!w || !(e instanceof RoostError)) return undefined;
  const engineMissing = (e.code === 'QUERY_FAILED' || e.code === 'SQL_INVALID') && (e.details.clickhouse_code === 81 || e.details.clickhouse_code === 60);
  if (!engineMissing && e.code !== 'CELL_UNAVAILABLE' && e.code !== 'ENGINE_UNAVAILABLE' && e.code !== 'SHUTTING_DOWN') return undefined;
  const t = app.state.get<{ createdAt: string }>('tenants', w.tenant);
  if (!t || t.createdAt !== w.tenantCreatedAt) {
    return new RoostError('UNKNOWN_TENANT', `tenant "${w.tenant}" was deleted while this request ran, and its data with it; nothing of the request was kept`);
  }
  if (app.state.list<{ id: string }>('workspaces', w.tenant).some((x) => x.id === w.id)) return undefined;
  return new RoostError('UNKNOWN_WORKSPACE', `workspace "${w.name}" was deleted while this request ran, and its data with it; nothing of the request was kept`);
}

/** Does a token scope list grant `scope` on `resource`? `ADMIN` grants everything in its workspace. */
export function scopeAllows(scopes: readonly string[], scope: string, resource?: string): boolean {
  // The audit log (who did what, from which address, with which credential) is not one of the
  // data a token reads with a wildcard: ADMIN, or a scope naming it.
  const named = resource !== undefined && NAMED_ONLY.has(resource);
  for (const s of scopes) {
    if (s === 'ADMIN') return true;
    if (s === scope && !named) return true;
    if (resource !== undefined) {
      const parts = s.split(':');
      if (parts.length >= 3 && `${parts[0]}:${parts[1]}` === scope && (parts[2] === resource || (parts[2] === '*' && !named))) return true;
    }
  }
  return false;
}

/**
 * Resources a token reads only with ADMIN or a scope that names them (never `*`), and a person
 * only with the workspace's admin role (not viewer or editor).
 */
const NAMED_ONLY = new Set(['roost.audit_log']);
export function isNamedOnly(resource: string): boolean {
  return NAMED_ONLY.has(resource);
}
/** Every resource that is NAMED_ONLY. */
export function namedOnlyResources(): string[] {
  return [...NAMED_ONLY];
}

/** The role a person credential has on a workspace (undefined for tokens). */
export function roleOf(cred: Credential, workspace: string): Role | undefined {
  return cred.kind === 'session' || cred.kind === 'idp' ? roleOn(cred.grants, workspace) : undefined;
}

/**
 * Parameters a Tinybird JWT fixes for an endpoint call: they override whatever
 * the request sends. Empty for every other credential.
 */
export function fixedParams(cred: Credential, pipe: string): Record<string, string> {
  if (cred.kind !== 'jwt') return {};
  const out: Record<string, string> = {};
  for (const s of cred.jwt.scopes) {
    if (s.type === 'PIPES:READ' && (s.resource === pipe || s.resource === '*') && s.fixed_params) {
      for (const [k, v] of Object.entries(s.fixed_params)) out[k] = String(v);
    }
  }
  return out;
}

/**
 * Whether any of the credential's scopes fixes pipe parameters (a JWT's `fixed_params`): its
 * queries are analyzed with `guardAliases` (a WITH alias may not reach into the pipes they read).
 */
export function hasFixedParams(cred: Credential): boolean {
  return cred.kind === 'jwt' && cred.jwt.scopes.some((s) => s.type === 'PIPES:READ' && s.fixed_params !== undefined && Object.keys(s.fixed_params).length > 0);
}

/** The row filter a credential imposes on a data source (`DATASOURCES:READ:<ds>:<filter>`), if any. */
export function readFilter(cred: Credential, datasource: string): string | undefined {
  // Every filter that names this data source, or `*`, applies (all of them: a filter must
  // never be dropped because another scope also grants the read). Each is checked again
  // here, so a filter stored before the checks existed cannot smuggle SQL into the view.
  const filters: Array<{ on: string; filter: string }> = [];
  if (cred.kind === 'token') {
    for (const s of cred.token.scopes) {
      const m = /^DATASOURCES:READ:([^:]+):(.+)$/s.exec(s);
      if (m && (m[1] === datasource || m[1] === '*')) filters.push({ on: m[1]!, filter: m[2]! });
    }
  } else if (cred.kind === 'jwt') {
    for (const s of cred.jwt.scopes) {
      if (s.type === 'DATASOURCES:READ' && (s.resource === datasource || s.resource === '*') && s.filter) filters.push({ on: s.resource, filter: s.filter });
    }
  }
  if (filters.length === 0) return undefined;
  for (const f of filters) {
    // A `*` filter is checked against this data source: it applies to it.
    if (rowFilterProblem(datasource, f.filter)) {
      throw new RoostError('FORBIDDEN', `the row filter of this token for "${f.on}" cannot be used; replace the token's scopes`);
    }
  }
  return filters.length === 1 ? filters[0]!.filter : filters.map((f) => `(${f.filter})`).join(' AND ');
}

function deny(app: App, ctx: Ctx, cred: Credential, action: Action, message: string): never {
  // A person refused in a workspace of their own tenant: the record is that workspace's (its
  // admins read it in roost.audit_log; without a workspace id no workspace showed it).
  const person = cred.kind === 'session' || cred.kind === 'idp';
  const own = person && action.op === 'workspace' && action.tenant === tenantOfCred(cred)
    ? app.state.get<{ id: string; name: string }>('workspaces', action.tenant, action.workspace) : undefined;
  auditAuth(app, {
    event: 'authz.denied', outcome: 'denied', reason: message, requestId: ctx.id,
    tenant: tenantOfCred(cred) ?? (action.op !== 'operator' ? action.tenant : undefined),
    workspace: cred.kind === 'token' ? cred.token.workspace : cred.kind === 'jwt' ? cred.jwt.workspace : own?.name,
    workspaceId: own?.id ?? credWorkspaceId(app, cred),
    credential: credentialName(cred),
    actor: actorOf(cred),
    connection: cred.kind === 'session' || cred.kind === 'idp' ? cred.identity.connection : undefined,
    resource: action.op === 'workspace' ? `${action.scope}${action.resource ? `:${action.resource}` : ''} @ ${action.tenant}/${action.workspace}` : action.op === 'tenant' ? `tenant ${action.tenant} (${ctx.route})` : ctx.route,
    ip: clientIp(ctx),
  });
  if (action.op !== 'operator') auditForTarget(app, ctx, cred, action.tenant, action.op === 'tenant' ? `tenant ${action.tenant} (${ctx.route})` : ctx.route);
  const e = new RoostError('FORBIDDEN', message);
  AUDITED.add(e);
  throw e;
}

/**
 * The decision alone: undefined when allowed, else why not. Use it to filter
 * lists (what may this credential see?) without writing a denial per item;
 * use `authorize` to guard an operation.
 */
export function decide(cred: Credential, action: Action): string | undefined {
  if (cred.kind === 'operator') {
    return action.op === 'operator' || action.op === 'tenant' ? undefined : 'the operator token administers tenants; use a workspace token for data';
  }
  if (action.op === 'operator') return 'this route needs the operator token';
  if (action.op === 'tenant') {
    if ((cred.kind === 'session' || cred.kind === 'idp') && cred.tenant === action.tenant && cred.grants.tenantAdmin) return undefined;
    return `this route needs the operator token or a tenant:admin of "${action.tenant}"`;
  }
  const what = `${action.scope}${action.resource ? `:${action.resource}` : ''}`;
  switch (cred.kind) {
    case 'token': {
      const t = cred.token;
      if (t.tenant !== action.tenant || t.workspace !== action.workspace) return 'this token belongs to another workspace';
      return scopeAllows(t.scopes, action.scope, action.resource) ? undefined : `this token lacks the scope ${what}`;
    }
    case 'jwt': {
      const j = cred.jwt;
      if (j.tenant !== action.tenant || j.workspace !== action.workspace) return 'this token belongs to another workspace';
      const allows = (scopes: JwtScope[]) => scopeAllows(scopes.map((s) => `${s.type}:${s.resource}`), action.scope, action.resource);
      if (allows(j.scopes)) return undefined;
      // Signed for this name, and read so no longer: the name changed hands since the JWT was
      // issued (renamed away, or dropped and taken again). Without `iat` the JWT counts as issued
      // before every such change, so a JWT minted now for the name's new holder is refused too:
      // said, with what to do, rather than "lacks the scope" it plainly carries.
      if (j.signed && allows(j.signed.scopes)) {
        return j.signed.issuedAtMs === undefined
          ? `this JWT's scope ${what} names a resource that was renamed or dropped after the name was first used, and the JWT has no \`iat\` claim, so it counts as issued before that and does not reach what holds the name now: sign JWTs with \`iat\` (the time they are issued)`
          : `this JWT's scope ${what} names a resource that was renamed or dropped after the JWT was issued: it does not reach what holds the name now; issue a new JWT`;
      }
      return `this token lacks the scope ${what}`;
    }
    case 'session':
    case 'idp': {
      if (cred.tenant !== action.tenant) return `this identity belongs to tenant "${cred.tenant}", not "${action.tenant}"`;
      const role = roleOn(cred.grants, action.workspace);
      if (!role) return `you have no role on workspace "${action.workspace}"`;
      if (role !== 'admin' && action.resource !== undefined && NAMED_ONLY.has(action.resource)) return `${action.resource} is read by the workspace's admins; the ${role} role on workspace "${action.workspace}" does not read it`;
      return roleAllows(role, action.scope) ? undefined : `the ${role} role on workspace "${action.workspace}" does not allow ${action.scope}`;
    }
  }
}

/**
 * Refuses a name read in SQL (`FROM`/`JOIN`, `IN`, `dictGet`) that the credential may read
 * neither as a data source (`DATASOURCES:READ:<name>`) nor as a pipe (`PIPES:READ:<name>`): one
 * answer (403, audited) whether the name is a data source, a pipe or nothing, so a scoped token
 * cannot probe which names exist. Callers decide that both scopes are missing.
 */
export function denySqlName(app: App, ctx: Ctx, cred: Credential, ref: WorkspaceRef, name: string): never {
  const action: Action = { op: 'workspace', tenant: ref.tenant, workspace: ref.workspace, scope: 'DATASOURCES:READ', resource: name };
  const why = cred.kind === 'token' || cred.kind === 'jwt'
    ? `this token lacks the scope DATASOURCES:READ:${name} (or PIPES:READ:${name}, to read a pipe of that name)`
    : decide(cred, action) ?? `you may not read "${name}"`;
  deny(app, ctx, cred, action, why);
}

/**
 * Pipe names as `cred` may be told them (a refusal's list of the pipes that read something): those
 * it may read, then how many others there are. A token that may drop a data source, or create
 * one, was told the names of pipes it may not read (a black-box round).
 */
export function pipesSeenBy(cred: Credential, ref: { tenant: string; workspace: string }, names: readonly string[]): { text: string; details: Record<string, unknown> } {
  const shown = names.filter((n) => decide(cred, { op: 'workspace', tenant: ref.tenant, workspace: ref.workspace, scope: 'PIPES:READ', resource: n }) === undefined);
  const hidden = names.length - shown.length;
  return { text: pipesNamedAndCounted(shown, hidden), details: { dependents: shown, ...(hidden ? { hidden_dependents: hidden } : {}) } };
}

/** `a, b, 2 pipes this credential may not read`: the readable pipes by name, the others counted. */
export function pipesNamedAndCounted(shown: readonly string[], hidden: number): string {
  return [...shown, ...(hidden ? [`${hidden} ${hidden === 1 ? 'pipe' : 'pipes'} this credential may not read`] : [])].join(', ');
}

/** Guards an operation: default deny, every denial audited (403 FORBIDDEN). */
export function authorize(app: App, ctx: Ctx, cred: Credential, action: Action): void {
  const why = decide(cred, action);
  if (why !== undefined) deny(app, ctx, cred, action, why);
}

/**
 * As `authorize`, on a resource the request named as `asked` (a pipe by its id): the refusal (and
 * its audit record) names it as asked. Named by its resolved name, a 403 for an id told the name
 * of a pipe its caller may not read, and told ids of pipes from made-up ones (a black-box round).
 */
export function authorizeAsAsked(app: App, ctx: Ctx, cred: Credential, action: Action & { op: 'workspace' }, asked: string): void {
  const why = decide(cred, action);
  if (why === undefined) return;
  if (asked === action.resource) deny(app, ctx, cred, action, why);
  const shown = { ...action, resource: asked };
  deny(app, ctx, cred, shown, decide(cred, shown) ?? `this token lacks the scope ${action.scope}:${asked}`);
}

/**
 * A condition evaluated over every row of a data source (a rows delete's `delete_condition`, a
 * partial replace's `replace_condition`): it needs the read of that data source without a row
 * filter. A dry run's count, or whether the statement fails, tells of rows the filter hides
 * (a probe counted `secret = 'hunter2'` outside its filter); a read without one passes.
 */
export function authorizeConditionRead(app: App, ctx: Ctx, cred: Credential, ref: WorkspaceRef, datasource: string, param: string): void {
  const action: Action = { op: 'workspace', tenant: ref.tenant, workspace: ref.workspace, scope: 'DATASOURCES:READ', resource: datasource };
  authorize(app, ctx, cred, action);
  if (readFilter(cred, datasource) !== undefined) {
    deny(app, ctx, cred, action, `this token reads "${datasource}" through a row filter, and ${param} is evaluated over every row of it: it needs DATASOURCES:READ:${datasource} without a filter`);
  }
}

/**
 * A query that reads no data source (`SELECT 1`): any data source read right in the workspace
 * will do — a token's `DATASOURCES:READ:<any>` too (it needed the bare `DATASOURCES:READ`, a scope
 * no token can be given, so only ADMIN passed, and the 403 named it). `PIPES:READ` alone is not
 * enough: such tokens (JWTs handed to end users) call endpoints, not the Query API.
 */
export function authorizeAnyRead(app: App, ctx: Ctx, cred: Credential, ref: WorkspaceRef): void {
  const action: Action = { op: 'workspace', tenant: ref.tenant, workspace: ref.workspace, scope: 'DATASOURCES:READ' };
  const why = decide(cred, action);
  if (why === undefined) return;
  const own = cred.kind === 'token' ? cred.token.tenant === ref.tenant && cred.token.workspace === ref.workspace
    : cred.kind === 'jwt' ? cred.jwt.tenant === ref.tenant && cred.jwt.workspace === ref.workspace : false;
  const scopes = cred.kind === 'token' ? cred.token.scopes : cred.kind === 'jwt' ? cred.jwt.scopes.map((x) => `${x.type}:${x.resource}`) : [];
  if (own && scopes.some((x) => x.startsWith('DATASOURCES:READ:'))) return;
  deny(app, ctx, cred, action, own
    ? 'this token has no data source read scope: a query needs DATASOURCES:READ:<name> (of any data source) or ADMIN'
    : why);
}
