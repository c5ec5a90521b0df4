/**
 * Sessions: short-lived JWTs signed by Roost (ES256, `typ: roost-session+jwt`).
 * A session carries the identity (connection, issuer, subject), the claims the
 * mapping rules need, and a CSRF token; the rules are evaluated again at every
 * use, so a changed rule applies at once. Nothing about a person is stored,
 * only revocations (`revocations/...`), which survive restarts:
 * one session (logout), all of a tenant (admin), all of an IdP subject or IdP
 * session (back-channel logout).
 */
import crypto from 'node:crypto';
import * as jose from 'jose';
import type { App } from '../../src/app.js';
import type { Op } from '../../src/state/store.js';
import { RoostError } from '../../src/errors.js';
import { runtimeOf } from '../runtime.js';
import { SESSION_ALG, SESSION_TTL_S } from './keys.js';
import { evaluateRules, getRules, ruleMatches, type MappingRule } from '../mapping/rules.js';
import type { Grants } from '../roles.js';
import type { Identity } from '../authorize.js';
import { sameIssuer, type StoredConnection } from '../oidc/connections.js';

const TYP = 'roost-session+jwt';
const AUDIENCE = 'roost';

export interface SessionClaims {
  sid: string;
  tenant: string;
  conn: string;
  idp_iss: string;
  idp_sub: string;
  /** The IdP's session id (`sid` of the ID token), for back-channel logout. */
  idp_sid?: string;
  /** Claims the mapping rules may read. */
  claims: Record<string, unknown>;
  csrf: string;
  /** Issue time in ms (finer than `iat`, for "revoke everything before now"). */
  t: number;
  exp: number;
}

export function subjectKey(issuer: string, subject: string): string {
  return crypto.createHash('sha256').update(`${issuer}\n${subject}`).digest('base64url');
}

/** Browsers keep a cookie of up to 4096 bytes (name, value and attributes): a longer one is dropped. */
export const MAX_SESSION_JWT = 3900;

/**
 * The claims with their lists cut to the elements some rule reads (`groups` of an IdP that
 * sends hundreds). Rules only grant, so what no rule matches now grants nothing; a rule added
 * later sees the full lists at the next login.
 */
export function trimClaims(rules: readonly MappingRule[], claims: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(claims)) {
    if (!Array.isArray(v) || rules.some((r) => r.claim !== k && r.claim.startsWith(`${k}.`))) { out[k] = v; continue; }
    const mine = rules.filter((r) => r.claim === k);
    out[k] = v.filter((x) => mine.some((r) => ruleMatches(r, { ...claims, [k]: x })));
  }
  return out;
}

/**
 * Signs a session. One that would not fit in a cookie (an IdP sending hundreds of groups) is
 * signed again with its lists cut to what the rules read; if it still does not fit the login
 * is refused with the reason, rather than setting a cookie the browser silently drops (a loop
 * back to the IdP).
 */
export async function issueSession(app: App, input: { tenant: string; identity: Identity; idpSid?: string; claims: Record<string, unknown>; since: number }): Promise<{ jwt: string; session: SessionClaims }> {
  // The state may have changed during the IdP round trip (the login's awaits): the session is
  // for the connection the login started at, so one deleted, re-created (same id, or its tenant
  // deleted and re-created under the same slug) or moved to another IdP since `since` (the login
  // start) refuses the login. The session's issue time `t` is the login start too, so a
  // revocation (tenant-wide, back-channel by subject) made during the round trip covers it, and
  // verifySession refuses a connection replaced after this check.
  const conn = app.state.get<StoredConnection>('connections', input.tenant, input.identity.connection);
  if (!app.state.get('tenants', input.tenant) || !conn) throw new RoostError('LOGIN_FAILED', 'the connection (or its tenant) was deleted during the login; start the login again');
  const created = Date.parse(conn.createdAt);
  if (Number.isFinite(created) && created > input.since) throw new RoostError('LOGIN_FAILED', 'the connection was replaced during the login; start the login again');
  if (!sameIdp(conn, input.identity.issuer)) throw new RoostError('LOGIN_FAILED', 'the connection was moved to another identity provider during the login; start the login again');
  const first = await signSession(app, input);
  const revoked = revocationOf(app, first.session);
  if (revoked) throw new RoostError('LOGIN_FAILED', `the sessions of this login were ended during the login (${revoked}); start the login again`);
  if (first.jwt.length <= MAX_SESSION_JWT) return first;
  const trimmed = await signSession(app, { ...input, claims: trimClaims(getRules(app.state, input.tenant), input.claims) });
  if (trimmed.jwt.length <= MAX_SESSION_JWT) return trimmed;
  throw new RoostError('LOGIN_FAILED', `the identity provider sent more claims than a session cookie holds (${trimmed.jwt.length} bytes after keeping only what the mapping rules read); map by fewer or shorter claim values`);
}

async function signSession(app: App, input: { tenant: string; identity: Identity; idpSid?: string; claims: Record<string, unknown>; since: number }): Promise<{ jwt: string; session: SessionClaims }> {
  const rt = runtimeOf(app);
  const { kid, key } = await rt.keys.signing();
  const now = Date.now();
  const session: SessionClaims = {
    sid: crypto.randomBytes(16).toString('base64url'),
    tenant: input.tenant,
    conn: input.identity.connection,
    idp_iss: input.identity.issuer,
    idp_sub: input.identity.subject,
    ...(input.idpSid ? { idp_sid: input.idpSid } : {}),
    claims: input.claims,
    csrf: crypto.randomBytes(24).toString('base64url'),
    t: Math.min(now, input.since),
    exp: Math.floor(now / 1000) + SESSION_TTL_S,
  };
  const jwt = await new jose.SignJWT({ ...session })
    .setProtectedHeader({ alg: SESSION_ALG, kid, typ: TYP })
    .setIssuer(rt.issuer).setAudience(AUDIENCE).setSubject(`${input.identity.connection}|${input.identity.subject}`)
    .setIssuedAt(Math.floor(now / 1000)).setExpirationTime(session.exp)
    .sign(key);
  return { jwt, session };
}

export type SessionCheck =
  | { session: SessionClaims; identity: Identity; grants: Grants }
  | { error: RoostError; tenant?: string };

/** Verifies signature, issuer, audience, expiry and revocations, then maps the claims to grants. */
export async function verifySession(app: App, jwt: string): Promise<SessionCheck> {
  const rt = runtimeOf(app);
  let header: jose.ProtectedHeaderParameters;
  try { header = jose.decodeProtectedHeader(jwt); } catch { return { error: new RoostError('UNAUTHENTICATED', 'the session is not a valid JWT') }; }
  const key = await rt.keys.verifying(header.kid);
  if (!key) return { error: new RoostError('UNAUTHENTICATED', 'the session was signed with a key Roost does not hold (expired or forged); log in again') };
  let s: SessionClaims;
  try {
    const { payload } = await jose.jwtVerify(jwt, key, { issuer: rt.issuer, audience: AUDIENCE, algorithms: [SESSION_ALG], typ: TYP });
    s = payload as unknown as SessionClaims;
  } catch (e) {
    if (e instanceof jose.errors.JWTExpired) return { error: new RoostError('UNAUTHENTICATED', 'the session has expired; log in again') };
    return { error: new RoostError('UNAUTHENTICATED', `the session is not valid (${(e as { code?: string }).code ?? 'invalid'})`) };
  }
  return sessionStanding(app, s);
}

/**
 * What a verified session stands for in the state now: refused when it was ended (logout,
 * tenant-wide or back-channel revocation) or its connection is gone, replaced or moved to
 * another IdP; else its identity and the grants the mapping rules give it now. Synchronous
 * (state lookups only): also asked again when an upload commits (`stillAuthorized`).
 */
export function sessionStanding(app: App, s: SessionClaims): SessionCheck {
  const revoked = revocationOf(app, s);
  if (revoked) return { error: new RoostError('UNAUTHENTICATED', `the session was ended (${revoked}); log in again`), tenant: s.tenant };
  const conn = app.state.get<StoredConnection>('connections', s.tenant, s.conn);
  if (!conn) return { error: new RoostError('UNAUTHENTICATED', 'the identity connection of this session no longer exists'), tenant: s.tenant };
  // The connection must be the one the session logged in through: a connection deleted and
  // created again under the same id (or a tenant deleted and created again) is another
  // connection, and one moved to another IdP vouches for other people under the same subjects.
  const created = Date.parse(conn.createdAt);
  if (Number.isFinite(created) && created > s.t) return { error: new RoostError('UNAUTHENTICATED', 'the identity connection of this session was replaced since the login; log in again'), tenant: s.tenant };
  if (!sameIdp(conn, s.idp_iss)) return { error: new RoostError('UNAUTHENTICATED', 'the identity connection of this session now trusts another identity provider; log in again'), tenant: s.tenant };
  const identity: Identity = { connection: s.conn, issuer: s.idp_iss, subject: s.idp_sub, email: strOrUndef(s.claims.email), name: strOrUndef(s.claims.name) };
  // The rules for the connection the session logged in through (a rule limited to another IdP never applies).
  return { session: s, identity, grants: evaluateRules(getRules(app.state, s.tenant), s.claims, s.conn) };
}

function sameIdp(conn: StoredConnection, issuer: string): boolean {
  return conn.type === 'saml' ? conn.idp_entity_id === issuer : sameIssuer(conn.issuer, issuer);
}

function strOrUndef(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function revocationOf(app: App, s: SessionClaims): string | undefined {
  const st = app.state;
  if (st.get('revocations', 'sessions', s.sid)) return 'logged out';
  const tenantCut = st.get<number>('revocations', 'tenants', s.tenant);
  if (tenantCut !== undefined && s.t <= tenantCut) return 'all sessions of the tenant were revoked';
  const subCut = st.get<number>('revocations', 'subjects', s.tenant, s.conn, subjectKey(s.idp_iss, s.idp_sub));
  if (subCut !== undefined && s.t <= subCut) return 'logged out at the identity provider, or refused at a later login';
  if (s.idp_sid && st.get('revocations', 'idpSessions', s.tenant, s.conn, subjectKey(s.idp_iss, s.idp_sid))) return 'logged out at the identity provider';
  return undefined;
}

/** Revocation entries older than every session they could match are dropped. */
function pruneOps(app: App, now: number): Op[] {
  const ops: Op[] = [];
  const sessions = app.state.get<Record<string, number>>('revocations', 'sessions') ?? {};
  for (const [sid, exp] of Object.entries(sessions)) if (exp * 1000 < now) ops.push({ op: 'del', path: ['revocations', 'sessions', sid] });
  return ops.slice(0, 1000);
}

export async function revokeSession(app: App, s: SessionClaims): Promise<void> {
  const now = Date.now();
  await app.state.write([...pruneOps(app, now), { op: 'put', path: ['revocations', 'sessions', s.sid], value: s.exp }]);
}

export async function revokeTenantSessions(app: App, tenant: string): Promise<number> {
  const now = Date.now();
  await app.state.write([{ op: 'put', path: ['revocations', 'tenants', tenant], value: now }]);
  return now;
}

/**
 * A login the rules refused (the IdP's claims grant nothing now): every earlier session of that
 * person through that connection ends (a removed person's session went on until it expired).
 * Never fails the refusal itself: a state write that fails is logged.
 */
export async function endSubjectSessions(app: App, tenant: string, conn: string, identity: Identity): Promise<void> {
  // The back-channel logout's cut of every session of the subject.
  await revokeIdpSessions(app, tenant, conn, identity.issuer, { sub: identity.subject })
    .catch((err: unknown) => app.log.error('sessions of a refused login not ended', { tenant, connection: conn, err }));
}

/** Back-channel logout: by IdP session id when given, else every session of the subject. */
export async function revokeIdpSessions(app: App, tenant: string, conn: string, issuer: string, input: { sub?: string; sid?: string }): Promise<void> {
  const now = Date.now();
  const ops: Op[] = [];
  if (input.sid) ops.push({ op: 'put', path: ['revocations', 'idpSessions', tenant, conn, subjectKey(issuer, input.sid)], value: now });
  else if (input.sub) ops.push({ op: 'put', path: ['revocations', 'subjects', tenant, conn, subjectKey(issuer, input.sub)], value: now });
  if (ops.length) await app.state.write(ops);
}
