/**
 * `/v0/tokens`: a workspace's service tokens (Tinybird's API). Needs `ADMIN`
 * or `TOKENS`; a credential without `ADMIN` cannot see, mint or change tokens
 * holding `ADMIN` or a scope on the audit log (no escalation through `TOKENS`). Secrets are answered once,
 * at creation or refresh. With `expiration_time`, creation answers a signed
 * JWT token instead (scopes and limits from the JSON body).
 */
import { exactJson } from '../ingest/json-exact.js';
import type { App } from '../app.js';
import type { Ctx } from '../http/context.js';
import { formOf, noLoneSurrogates, readBody, sendJson, textOf } from '../http/context.js';
import { RoostError } from '../errors.js';
import { authenticate, authorize, credentialName, isNamedOnly, scopeAllows, workspaceOf, type Credential, type WorkspaceRef } from '../../auth/authorize.js';
import { auditAuth } from '../../auth/runtime.js';
import { parseScope, scopeView } from '../../auth/tokens/scopes.js';
import {
  checkTokenName, createTokenOps, deleteTokenOps, getToken, listTokens, refreshTokenOps, replaceTokenOps, WORKSPACE_ADMIN_TOKEN, type TokenRecord,
} from '../../auth/tokens/service-tokens.js';
import { parseJwtBody, signTinybirdJwt, workspaceById, workspaceJwtKey } from '../../auth/tokens/jwt-tokens.js';
import { getTenant, getWorkspace, sameWorkspace } from '../../tenants/registry.js';
import { QueryFailed } from '../errors.js';
import { workspaceNameMap } from '../datasources/name-map.js';
import { withoutQuotedQuery } from '../query/engine-message.js';
import { devTokenOps } from './dev.js';

function tokenView(t: TokenRecord, secret?: string): Record<string, unknown> {
  return {
    id: t.id, name: t.name, description: t.description ?? '', scopes: t.scopes.map(scopeView),
    ...(t.rps ? { limits: { rps: t.rps } } : {}),
    created_at: t.createdAt, updated_at: t.updatedAt ?? t.createdAt,
    ...(t.createdBy ? { created_by: { credential: t.createdBy.credential, ...(t.createdBy.email ? { email: t.createdBy.email } : {}) } } : {}),
    ...(secret ? { token: secret } : {}),
  };
}

function isAdmin(cred: Credential, ws: WorkspaceRef): boolean {
  if (cred.kind === 'token') return scopeAllows(cred.token.scopes, 'ADMIN');
  if (cred.kind === 'session' || cred.kind === 'idp') return true; // authorize() already required the admin role for TOKENS
  return false;
}

/**
 * The credential and its workspace, by name and by id as authorized (`wsId`: what its audit
 * records belong to, and what a JWT is signed for, also when the workspace is renamed while the
 * request's body arrives).
 */
async function tokenAdmin(app: App, ctx: Ctx): Promise<{ cred: Credential; ws: WorkspaceRef; wsId: string }> {
  const cred = await authenticate(app, ctx);
  const ws = workspaceOf(app, ctx, cred);
  authorize(app, ctx, cred, { op: 'workspace', ...ws, scope: 'TOKENS' });
  return { cred, ws, wsId: getWorkspace(app.state, ws.tenant, ws.workspace).id };
}

/**
 * Scopes only an ADMIN credential may grant, see or touch on a token: ADMIN, and a scope naming
 * the audit log (`DATASOURCES:READ:roost.audit_log`, which `*` never reaches). A TOKENS credential
 * minted itself such a token and read the audit log, and in it the ADMIN tokens its own list hides
 * (a black-box round).
 */
function adminOnly(scopes: readonly string[]): boolean {
  return scopes.some((s) => s === 'ADMIN' || isNamedOnly(s.split(':')[2] ?? ''));
}

function guardAdminScope(app: App, ctx: Ctx, cred: Credential, ws: WorkspaceRef, scopes: readonly string[]): void {
  if (adminOnly(scopes) && !isAdmin(cred, ws)) {
    // Route through authorize() so the refusal is audited like every other denial.
    authorize(app, ctx, cred, { op: 'workspace', ...ws, scope: 'ADMIN', resource: 'tokens' });
  }
}

/** `scope=` values from the query string and an urlencoded body, plus the other form fields. */
async function formParams(ctx: Ctx): Promise<{ q: URLSearchParams; json: Record<string, unknown> | undefined }> {
  const q = new URLSearchParams(ctx.query);
  let json: Record<string, unknown> | undefined;
  if (ctx.req.method !== 'GET' && ctx.req.method !== 'DELETE') {
    const body = textOf(await readBody(ctx));
    // After the read: a multipart body is read as the urlencoded form it holds (readBody).
    const type = String(ctx.req.headers['content-type'] ?? '');
    if (body.trim()) {
      // A JSON object sent as a form (`curl -d '{"scopes": [...]}'`, as Tinybird's JWT examples
      // do: curl labels it form-urlencoded) is the JSON it is; no form field starts with `{`.
      if (type.startsWith('application/x-www-form-urlencoded') && !/^\s*\{/.test(body)) {
        // The body's fields win over the query string's (as on every route), except scopes,
        // which add up: `?name=a` with a body `name=b` created token a.
        const form = formOf(body);
        for (const k of new Set(form.keys())) if (k !== 'scope') q.delete(k);
        for (const [k, v] of form) q.append(k, v);
      }
      else if (type.startsWith('application/json') || /^\s*[{[]/.test(body)) {
        // Numbers as sent (a JWT's fixed_params may be a UInt64 id past 2^53).
        try { json = exactJson(body, JSON.parse(body)) as Record<string, unknown>; } catch { throw new RoostError('INVALID_JSON', 'the request body is not valid JSON'); }
        if (!json || typeof json !== 'object' || Array.isArray(json)) throw new RoostError('INVALID_JSON', 'the JSON body must be an object');
        noLoneSurrogates(body, json);
      }
    }
  }
  return { q, json };
}

/** A field of the JSON body that must be a string when given. */
function jsonString(json: Record<string, unknown> | undefined, key: string): string | undefined {
  const v = json?.[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new RoostError('INVALID_PARAMETER', `${key} must be a string`);
  return v;
}

/**
 * The JSON body's scopes of a service token: `scopes` (a list of scope strings) and `scope` (one
 * scope string or a list, as `@tinybirdco/sdk`'s `createToken({ name, scope })` sends them; it
 * was ignored, and the token was created with no scope at all).
 */
function jsonScopes(json: Record<string, unknown> | undefined): string[] {
  const out: string[] = [];
  for (const key of ['scopes', 'scope'] as const) {
    const v = json?.[key];
    if (v === undefined || v === null) continue;
    if (typeof v === 'string' && key === 'scope') { out.push(v); continue; }
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new RoostError('INVALID_PARAMETER', `${key} must be a list of scope strings, like ["DATASOURCES:READ:sales"]`);
    out.push(...(v as string[]));
  }
  return out;
}

function parseRps(raw: unknown): number | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const n = Number(raw);
  // Under 1: the limiter's bucket (burst = rps) never holds a whole request, so every request was refused.
  if (!Number.isFinite(n) || n < 1 || n > 1e6) throw new RoostError('INVALID_PARAMETER', 'rps must be a number of requests per second from 1 to 1000000');
  return n;
}

/**
 * The token checked by `one()`, as it is inside the transaction: the same token (by id), and
 * not given ADMIN meanwhile (a credential without ADMIN was only allowed to act on it without).
 */
function sameToken(s: Parameters<typeof getToken>[0], ws: WorkspaceRef, t: TokenRecord): TokenRecord {
  const cur = getToken(s, ws.tenant, ws.workspace, t.name);
  if (cur.id !== t.id || (adminOnly(cur.scopes) && !adminOnly(t.scopes))) throw new RoostError('CONFLICT', 'the token changed meanwhile; retry');
  return cur;
}

export function registerTokenRoutes(app: App): void {
  const { router, state } = app;
  const audit = (ctx: Ctx, cred: Credential, ws: WorkspaceRef, wsId: string, event: string, name: string, details?: Record<string, unknown>) =>
    auditAuth(app, { event, outcome: 'success', tenant: ws.tenant, workspace: ws.workspace, workspaceId: wsId, credential: credentialName(cred), actor: cred.kind === 'session' || cred.kind === 'idp' ? cred.identity.email ?? cred.identity.subject : undefined, resource: `token:${name}`, requestId: ctx.id, details });

  router.post('/v0/tokens', async (ctx) => {
    // The workspace as authenticated (wsId): its body read, the token is written into it only if
    // it is still that workspace (see the transaction below).
    const { cred, ws, wsId } = await tokenAdmin(app, ctx);
    const { q, json } = await formParams(ctx);
    const name = q.get('name') ?? jsonString(json, 'name');
    if (!name) throw new RoostError('INVALID_PARAMETER', 'name is required');
    const expiration = q.get('expiration_time') ?? json?.expiration_time;
    if (expiration !== undefined && expiration !== null) {
      const exp = Number(expiration);
      if (!Number.isSafeInteger(exp) || exp * 1000 <= Date.now()) throw new RoostError('INVALID_PARAMETER', 'expiration_time must be a future Unix time in seconds');
      // Signed for the workspace as authorized, by id: by name, a workspace renamed while the body
      // arrived, and a new one given its name, had the new one's key sign a JWT for the new one.
      const w = workspaceById(state, wsId);
      if (!w || w.tenant !== ws.tenant) throw new RoostError('UNKNOWN_WORKSPACE', `workspace "${ws.workspace}" was deleted meanwhile (no token was created)`);
      const key = workspaceJwtKey(state, app.secrets, w);
      if (!key) throw new RoostError('CONFLICT', 'this workspace cannot sign JWT tokens until its workspace admin token is refreshed once');
      // The same names as service tokens: a JWT's name is its credential name in logs and audit records.
      checkTokenName(name);
      const limits = json?.limits as { rps?: unknown } | undefined;
      if (limits && typeof limits === 'object' && limits.rps !== undefined) parseRps(limits.rps);
      let body;
      try { body = parseJwtBody({ name, exp, scopes: json?.scopes, limits: json?.limits }); } catch (e) { throw new RoostError('INVALID_PARAMETER', (e as Error).message); }
      guardAdminScope(app, ctx, cred, ws, body.scopes.map((s) => `${s.type}:${s.resource}`));
      const jwt = await signTinybirdJwt(key, w.id, body);
      audit(ctx, cred, ws, wsId, 'token.jwt_created', name, { exp, scopes: body.scopes.map((s) => `${s.type}:${s.resource}`) });
      sendJson(ctx, 200, { name, token: jwt, scopes: body.scopes, ...(body.rps ? { limits: { rps: body.rps } } : {}), exp });
      return;
    }
    const rawScopes = [...q.getAll('scope'), ...jsonScopes(json)];
    const scopes = [...new Set(rawScopes.map(parseScope))];
    await filtersRun(app, ws.tenant, ws.workspace, scopes);
    // The name whose secret signs the workspace's JWTs (after a delete, the next token of that
    // name takes that role): only an ADMIN token, as the original, and sealed at once.
    const isWat = name === WORKSPACE_ADMIN_TOKEN;
    if (isWat && !(scopes.length === 1 && scopes[0] === 'ADMIN')) throw new RoostError('INVALID_PARAMETER', 'a token named "workspace admin token" has exactly the ADMIN scope');
    guardAdminScope(app, ctx, cred, ws, scopes);
    const rps = parseRps(q.get('rps') ?? (json?.limits as { rps?: unknown } | undefined)?.rps);
    const description = q.get('description') ?? jsonString(json, 'description');
    const r = await state.transact((s) => {
      sameWorkspace(s, ws.tenant, ws.workspace, wsId);
      const t = createTokenOps(s, ws.tenant, ws.workspace, name, scopes, { description: description ?? undefined, rps, ...(cred.kind === 'session' || cred.kind === 'idp' ? { createdBy: { credential: credentialName(cred), ...(cred.identity.email ? { email: cred.identity.email } : {}) } } : {}), ...(isWat ? { seal: (v: string) => app.secrets.seal(v) } : {}) });
      return { ops: t.ops, result: t };
    });
    audit(ctx, cred, ws, wsId, 'token.created', name, { scopes });
    sendJson(ctx, 200, tokenView(r.record, r.secret));
  });

  router.get('/v0/tokens', async (ctx) => {
    const { cred, ws } = await tokenAdmin(app, ctx);
    const admin = isAdmin(cred, ws);
    sendJson(ctx, 200, { tokens: listTokens(state, ws.tenant, ws.workspace).filter((t) => admin || !adminOnly(t.scopes)).map((t) => tokenView(t)) });
  });

  const one = async (ctx: Ctx) => {
    const { cred, ws, wsId } = await tokenAdmin(app, ctx);
    const t = getToken(state, ws.tenant, ws.workspace, ctx.params.token!);
    guardAdminScope(app, ctx, cred, ws, t.scopes);
    return { cred, ws, wsId, t };
  };

  router.get('/v0/tokens/:token', async (ctx) => {
    const { t } = await one(ctx);
    sendJson(ctx, 200, tokenView(t));
  });

  router.put('/v0/tokens/:token', async (ctx) => {
    const { cred, ws, wsId, t } = await one(ctx);
    const { q, json } = await formParams(ctx);
    const rawScopes = [...q.getAll('scope'), ...jsonScopes(json)];
    const next: TokenRecord = { ...t, updatedAt: new Date().toISOString() };
    if (rawScopes.length) {
      next.scopes = [...new Set(rawScopes.map(parseScope))];
      await filtersRun(app, ws.tenant, ws.workspace, next.scopes);
    }
    const newName = q.get('name') ?? jsonString(json, 'name');
    if (newName && newName !== t.name) {
      if (t.name === WORKSPACE_ADMIN_TOKEN) throw new RoostError('INVALID_PARAMETER', 'the workspace admin token cannot be renamed');
      if (newName === WORKSPACE_ADMIN_TOKEN) throw new RoostError('INVALID_PARAMETER', 'no token can be renamed to "workspace admin token" (its secret would sign the workspace\'s JWTs)');
      next.name = newName;
    }
    if (t.name === WORKSPACE_ADMIN_TOKEN && rawScopes.length && !(next.scopes.length === 1 && next.scopes[0] === 'ADMIN')) throw new RoostError('INVALID_PARAMETER', 'the workspace admin token keeps the ADMIN scope');
    const rps = q.get('rps') ?? (json?.limits as { rps?: unknown } | undefined)?.rps;
    if (rps !== undefined && rps !== null) next.rps = parseRps(rps);
    const description = q.get('description') ?? jsonString(json, 'description');
    if (description !== null && description !== undefined) next.description = description;
    guardAdminScope(app, ctx, cred, ws, next.scopes);
    await state.transact((s) => {
      // The token as checked: a concurrent change (scopes, name, secret) is a 409, not overwritten
      // with this request's copy (which could take ADMIN away from a token a TOKENS credential may not touch).
      const cur = sameToken(s, ws, t);
      if (cur.hash !== t.hash || (cur.updatedAt ?? cur.createdAt) !== (t.updatedAt ?? t.createdAt)) throw new RoostError('CONFLICT', 'the token changed meanwhile; retry');
      return { ops: replaceTokenOps(s, cur, next), result: undefined };
    });
    audit(ctx, cred, ws, wsId, 'token.updated', next.name, { scopes: next.scopes, renamed_from: next.name !== t.name ? t.name : undefined });
    sendJson(ctx, 200, tokenView(next));
  });

  router.delete('/v0/tokens/:token', async (ctx) => {
    const { cred, ws, wsId, t } = await one(ctx);
    // The record as it is now: a refresh that committed since it was read changed its hash,
    // and deleting the old one would leave the refreshed secret's hash entry behind (pointing
    // at the name, so at the next token created with that name).
    await state.transact((s) => {
      const cur = sameToken(s, ws, t);
      return { ops: [...deleteTokenOps(cur), ...devTokenOps(app, s, cur, undefined)], result: undefined };
    });
    audit(ctx, cred, ws, wsId, 'token.deleted', t.name);
    ctx.res.writeHead(204).end();
  });

  router.post('/v0/tokens/:token/refresh', async (ctx) => {
    const { cred, ws, wsId, t } = await one(ctx);
    const r = await state.transact((s) => {
      const cur = sameToken(s, ws, t);
      const x = refreshTokenOps(s, cur, { seal: (v) => app.secrets.seal(v) });
      // (GET /tokens in development mode answers the new secret.)
      return { ops: [...x.ops, ...devTokenOps(app, s, cur, x.secret)], result: x };
    });
    audit(ctx, cred, ws, wsId, 'token.refreshed', t.name);
    sendJson(ctx, 200, tokenView(r.record, r.secret));
  });
}

/**
 * Each row filter of `scopes` run once on what it names (a data source, its quarantine table, a
 * service data source), as its view will run it (no row read): a filter that is valid SQL but not
 * a condition the engine takes there (`org`, a String; a column it does not have) was minted and
 * then failed every use of the token. The engine unreachable, the filter is minted as it was (the
 * check is the client's help, not a guard: filters are checked again as text at every use, and a
 * view that fails answers nothing).
 */
async function filtersRun(app: App, tenant: string, workspace: string, scopes: readonly string[]): Promise<void> {
  for (const s of scopes) {
    const m = /^DATASOURCES:READ:([^:]+):(.+)$/s.exec(s);
    if (!m) continue;
    const view = workspaceNameMap(app.state, tenant, workspace, { [m[1]!]: m[2]! })[m[1]!];
    if (!view || typeof view === 'string' || view.kind !== 'query') continue;
    const ws = getWorkspace(app.state, tenant, workspace);
    try {
      await app.cells.engineFor(getTenant(app.state, tenant)).exec(`SELECT count() FROM (${view.sql}) WHERE 0`);
    } catch (e) {
      if (!(e instanceof QueryFailed)) continue;
      // A quarantine table of an early version's data source, or service tables no row has been
      // written to yet, do not exist: nothing to run it on.
      if ((e.clickhouseCode === 60 || e.clickhouseCode === 81) && !app.state.get('datasources', tenant, workspace, m[1]!)) continue;
      const why = withoutQuotedQuery(e.message).split(`${ws.database}.`).join('');
      throw new RoostError('INVALID_PARAMETER', `scope "${s}": the row filter does not run on data source "${m[1]}": ${why}`, { details: { clickhouse_code: e.clickhouseCode } });
    }
  }
}
