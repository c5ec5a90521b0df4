/**
 * Tinybird JWT tokens: HS256 JWTs signed with the workspace admin token's
 * secret, claims `workspace_id`, `name`, `exp`, `scopes: [{type, resource,
 * fixed_params?, filter?}]`, `limits: {rps}`. Roost keeps only a hash of the
 * admin token, plus the secret sealed with the server key (see
 * docs/decisions.md) so it can verify them; refreshing or deleting the
 * workspace admin token invalidates every JWT of the workspace.
 */
import { ExactNumber, exactJson } from '../../src/ingest/json-exact.js';
import * as jose from 'jose';
import type { State } from '../../src/state/state.js';
import type { SecretBox } from '../secrets.js';
import { RoostError } from '../../src/errors.js';
import type { Workspace } from '../../tenants/registry.js';
import { WORKSPACE_ADMIN_TOKEN, type TokenRecord } from './service-tokens.js';
import { isScopeResource, rowFilterProblem } from './scopes.js';
import { jwtResourceName } from '../../src/state/resource-names.js';

export interface JwtScope { type: 'PIPES:READ' | 'DATASOURCES:READ'; resource: string; fixed_params?: Record<string, string | number | boolean>; filter?: string }

export interface JwtToken {
  tenant: string;
  workspace: string;
  workspaceId: string;
  name: string;
  exp: number;
  scopes: JwtScope[];
  rps?: number;
  /** The scopes as signed (names at issue) and when: `scopes` read again later (`jwtScopesNow`). */
  signed?: { scopes: JwtScope[]; issuedAtMs?: number };
}

const JWT_TYPES = new Set(['PIPES:READ', 'DATASOURCES:READ']);

let byIdCache: { seq: number; map: Map<string, Workspace> } | undefined;

/** Finds a workspace by id (an index rebuilt when the state changes). */
export function workspaceById(state: State, id: string): Workspace | undefined {
  if (!byIdCache || byIdCache.seq !== state.seq) {
    const map = new Map<string, Workspace>();
    const all = state.get<Record<string, Record<string, Workspace>>>('workspaces') ?? {};
    for (const ws of Object.values(all)) for (const w of Object.values(ws)) map.set(w.id, w);
    byIdCache = { seq: state.seq, map };
  }
  return byIdCache.map.get(id);
}

const keyCache = new Map<string, Uint8Array>();

/** The HS256 key of a workspace's JWTs: its admin token's secret, when sealed. */
export function workspaceJwtKey(state: State, secrets: SecretBox, w: Workspace): Uint8Array | undefined {
  const rec = state.get<TokenRecord>('tokens', w.tenant, w.name, WORKSPACE_ADMIN_TOKEN);
  if (!rec?.sealed) return undefined;
  let key = keyCache.get(rec.hash);
  if (!key) {
    key = new TextEncoder().encode(secrets.open(rec.sealed));
    if (keyCache.size > 10_000) keyCache.clear();
    keyCache.set(rec.hash, key);
  }
  return key;
}

/** Does a presented credential look like a Tinybird JWT (claims, unverified)? */
export function looksLikeTinybirdJwt(claims: jose.JWTPayload): boolean {
  return typeof claims.workspace_id === 'string' && claims.iss === undefined;
}

/** Verifies a Tinybird JWT; throws UNAUTHENTICATED / TOKEN_EXPIRED with the reason. */
export async function verifyTinybirdJwt(state: State, secrets: SecretBox, jwt: string, claims: jose.JWTPayload): Promise<JwtToken> {
  const w = workspaceById(state, String(claims.workspace_id));
  if (!w) throw new RoostError('UNAUTHENTICATED', 'the JWT names a workspace that does not exist');
  const key = workspaceJwtKey(state, secrets, w);
  if (!key) throw new RoostError('UNAUTHENTICATED', 'this workspace cannot verify JWT tokens: refresh its workspace admin token once to enable them');
  let payload: jose.JWTPayload;
  try {
    ({ payload } = await jose.jwtVerify(jwt, key, { algorithms: ['HS256'], requiredClaims: ['exp'] }));
  } catch (e) {
    if (e instanceof jose.errors.JWTExpired) throw new RoostError('TOKEN_EXPIRED', 'the JWT token has expired; ask for a new one');
    throw new RoostError('UNAUTHENTICATED', `the JWT token is not valid (${(e as { code?: string }).code ?? 'invalid'})`);
  }
  // The payload's numbers as signed: JSON.parse made a fixed_params integer past 2^53 (a UInt64
  // id) another id, and the caller read another tenant's rows.
  const signedText = Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8');
  const body = parseJwtBody(exactJson(signedText, payload) as jose.JWTPayload);
  // Scopes name resources; one renamed since the JWT was issued is named by its current name
  // (and a resource that took the old name since is not the one the JWT was issued for).
  const issuedAt = typeof payload.iat === 'number' ? payload.iat * 1000 : undefined;
  const scopes = scopesNow(state, w, body.scopes, issuedAt);
  return { tenant: w.tenant, workspace: w.name, workspaceId: w.id, ...body, scopes, signed: { scopes: body.scopes, issuedAtMs: issuedAt } };
}

function scopesNow(state: State, w: Workspace, signed: JwtScope[], issuedAt: number | undefined): JwtScope[] {
  const scopes: JwtScope[] = [];
  for (const s of signed) {
    const resource = jwtResourceName(state, w.tenant, w.name, s.type === 'PIPES:READ' ? 'pipe' : 'datasource', s.resource, issuedAt);
    if (resource !== undefined) scopes.push(resource === s.resource ? s : { ...s, resource });
  }
  return scopes;
}

/**
 * A verified JWT read again against the current state (renames and drops since it was verified,
 * as at verification); undefined when its workspace is gone or renamed meanwhile.
 */
export function jwtScopesNow(state: State, j: JwtToken): JwtToken | undefined {
  const w = workspaceById(state, j.workspaceId);
  if (!w || w.name !== j.workspace || w.tenant !== j.tenant) return undefined;
  return j.signed ? { ...j, scopes: scopesNow(state, w, j.signed.scopes, j.signed.issuedAtMs) } : j;
}

/** Checks the Tinybird-specific claims (used both to verify and to sign). */
export function parseJwtBody(p: Record<string, unknown>): { name: string; exp: number; scopes: JwtScope[]; rps?: number } {
  if (typeof p.name !== 'string' || !p.name) throw new RoostError('UNAUTHENTICATED', 'the JWT token has no name');
  if (typeof p.exp !== 'number') throw new RoostError('UNAUTHENTICATED', 'the JWT token has no exp');
  if (!Array.isArray(p.scopes) || p.scopes.length === 0) throw new RoostError('UNAUTHENTICATED', 'the JWT token has no scopes');
  const scopes: JwtScope[] = [];
  for (const s of p.scopes as Array<Record<string, unknown>>) {
    if (!s || typeof s !== 'object' || !JWT_TYPES.has(String(s.type)) || typeof s.resource !== 'string' || !s.resource) {
      throw new RoostError('UNAUTHENTICATED', 'JWT scopes must be {type: "PIPES:READ" | "DATASOURCES:READ", resource, fixed_params?, filter?}');
    }
    // A name, as in service-token scopes: "orders:org = 'acme'" (a service token's filter syntax)
    // was granted as DATASOURCES:READ:orders with no filter, and "top:x" as PIPES:READ:top
    // without its fixed_params (the scope check splits at ':', the filter and fixed_params
    // lookups compare the whole resource).
    if (!isScopeResource(s.resource)) throw new RoostError('UNAUTHENTICATED', `JWT scope ${String(s.type)}: "${s.resource}" is not a data source or pipe name (a row filter goes in "filter")`);
    const scope: JwtScope = { type: s.type as JwtScope['type'], resource: s.resource };
    if (s.fixed_params !== undefined) {
      if (typeof s.fixed_params !== 'object' || s.fixed_params === null || Array.isArray(s.fixed_params)) throw new RoostError('UNAUTHENTICATED', 'JWT fixed_params must be an object');
      const fp: Record<string, string | number | boolean> = {};
      for (const [k, v] of Object.entries(s.fixed_params)) {
        // A number a double cannot hold, read exactly (its text), is kept as that text.
        if (v instanceof ExactNumber) { fp[k] = v.text; continue; }
        if (!['string', 'number', 'boolean'].includes(typeof v)) throw new RoostError('UNAUTHENTICATED', `JWT fixed_params.${k} must be a string, number or boolean`);
        if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) throw new RoostError('UNAUTHENTICATED', `JWT fixed_params.${k} is an integer beyond 2^53, which would not be kept exactly: give it as a string`);
        fp[k] = v as string | number | boolean;
      }
      scope.fixed_params = fp;
    }
    if (typeof s.filter === 'string' && s.filter) {
      if (scope.type !== 'DATASOURCES:READ') throw new RoostError('UNAUTHENTICATED', 'only a DATASOURCES:READ scope of a JWT takes a filter');
      const why = rowFilterProblem(scope.resource, s.filter);
      if (why) throw new RoostError('UNAUTHENTICATED', `JWT scope DATASOURCES:READ:${scope.resource}: ${why}`);
      scope.filter = s.filter;
    }
    // Restrictions bind one named resource: a wildcard would grant every one without them.
    if (scope.resource === '*' && scope.fixed_params) throw new RoostError('UNAUTHENTICATED', 'JWT fixed_params apply to one named pipe, not to *');
    scopes.push(scope);
  }
  const limits = p.limits as { rps?: unknown } | undefined;
  let rps: number | undefined;
  if (limits && limits.rps !== undefined) {
    if (typeof limits.rps !== 'number' || !(limits.rps > 0)) throw new RoostError('UNAUTHENTICATED', 'JWT limits.rps must be a positive number');
    rps = limits.rps;
  }
  return { name: p.name, exp: p.exp, scopes, rps };
}

/** Signs a Tinybird JWT for a workspace (what `POST /v0/tokens?expiration_time=` answers). */
export async function signTinybirdJwt(key: Uint8Array, workspaceId: string, body: { name: string; exp: number; scopes: JwtScope[]; rps?: number }): Promise<string> {
  const claims: Record<string, unknown> = { workspace_id: workspaceId, name: body.name, scopes: body.scopes };
  if (body.rps !== undefined) claims.limits = { rps: body.rps };
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setExpirationTime(body.exp).setIssuedAt().sign(key);
}
