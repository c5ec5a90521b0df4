/**
 * Access tokens issued by a tenant's own IdP (JWTs), accepted as bearer
 * credentials by connections with `accept_idp_access_tokens`. The connection
 * is found by issuer and audience; the token is verified against the IdP's
 * JWKS with an asymmetric algorithm allowlist, `iss`, `aud` and `exp` checked;
 * then the tenant's mapping rules for that connection give the grants, as for a login.
 */
import * as jose from 'jose';
import type { App } from '../../src/app.js';
import { RoostError } from '../../src/errors.js';
import { runtimeOf } from '../runtime.js';
import { IDP_ALGS, IDP_CLOCK_TOLERANCE_S, requestRefusal } from './client.js';
import { sameIssuer, type ConnectionRecord } from './connections.js';
import { evaluateRules, getRules } from '../mapping/rules.js';
import type { Credential } from '../authorize.js';

export type IdpTokenCheck =
  | { credential: Extract<Credential, { kind: 'idp' }> }
  /** `ambiguous`: the connections (of several tenants, the operator's setup) that all fit the token. */
  | { error: RoostError; tenant?: string; connection?: string; ambiguous?: Array<{ tenant: string; connection: string }> };

let index: { seq: number; conns: ConnectionRecord[] } | undefined;

function accepting(app: App): ConnectionRecord[] {
  if (!index || index.seq !== app.state.seq) {
    const all = app.state.get<Record<string, Record<string, ConnectionRecord>>>('connections') ?? {};
    index = { seq: app.state.seq, conns: Object.values(all).flatMap((m) => Object.values(m)).filter((c) => c.accept_idp_access_tokens && c.audience) };
  }
  return index.conns;
}

export async function verifyIdpAccessToken(app: App, jwt: string, claims: jose.JWTPayload): Promise<IdpTokenCheck> {
  const unknown = () => ({ error: new RoostError('UNAUTHENTICATED', 'the credential is not valid (unknown, deleted or refreshed token)') });
  if (typeof claims.iss !== 'string') return unknown();
  const byIssuer = accepting(app).filter((c) => sameIssuer(c.issuer, claims.iss!));
  if (byIssuer.length === 0) return unknown();
  const aud = Array.isArray(claims.aud) ? claims.aud : claims.aud !== undefined ? [claims.aud] : [];
  const fits = byIssuer.filter((c) => aud.includes(c.audience!));
  if (fits.length === 0) {
    // The failure is the tenant's only when the issuer is only its own: it was recorded in the
    // first tenant found, another tenant's log when two tenants take tokens of one IdP.
    const one = byIssuer.every((c) => c.tenant === byIssuer[0]!.tenant) ? byIssuer[0]! : undefined;
    return { error: new RoostError('UNAUTHENTICATED', 'the IdP access token is not issued for Roost (wrong audience)'), ...(one ? { tenant: one.tenant, connection: one.id } : {}) };
  }
  if (fits.length > 1) {
    return {
      error: new RoostError('UNAUTHENTICATED', 'several connections accept this issuer and audience; give each tenant its own audience'),
      ambiguous: fits.map((c) => ({ tenant: c.tenant, connection: c.id })),
    };
  }
  const conn = fits[0]!;
  const where = { tenant: conn.tenant, connection: conn.id };
  const rt = runtimeOf(app);
  let payload: jose.JWTPayload;
  try {
    const config = await rt.oidc.config(conn);
    const m = config.serverMetadata();
    if (!m.jwks_uri) return { error: new RoostError('UNAUTHENTICATED', 'the IdP publishes no JWKS'), ...where };
    ({ payload } = await jose.jwtVerify(jwt, rt.oidc.jwks(conn, m.jwks_uri), { issuer: m.issuer, audience: conn.audience, algorithms: IDP_ALGS, requiredClaims: ['exp', 'sub'], clockTolerance: IDP_CLOCK_TOLERANCE_S }));
    // The tolerance is for a token minted by an IdP whose clock is a little ahead (nbf, iat);
    // an expired bearer token is expired: no grace past its exp.
    if (typeof payload.exp === 'number' && payload.exp <= Math.floor(Date.now() / 1000)) throw new jose.errors.JWTExpired('"exp" claim timestamp check failed', payload, 'exp', 'check_failed');
    if (conn.audience === conn.client_id && !accessTokenShaped(jwt, payload)) {
      return { error: new RoostError('UNAUTHENTICATED', 'the IdP access token was refused: it looks like an ID token (this connection\'s audience is its own client_id, which ID tokens carry too); send an access token (typ at+jwt, or with a scope claim and no nonce)'), ...where };
    }
  } catch (e) {
    // A request the server would not send (a host the operator does not allow): the token cannot be verified.
    const refused = requestRefusal(e);
    if (refused) return { error: new RoostError('UNAUTHENTICATED', `the IdP access token cannot be verified: ${refused.message}`), ...where };
    if (e instanceof RoostError) return { error: e, ...where };
    const code = (e as { code?: string }).code ?? 'invalid';
    const why = e instanceof jose.errors.JWTExpired ? 'expired'
      : code === 'ERR_JOSE_ALG_NOT_ALLOWED' ? `algorithm not allowed (${safeAlg(jwt)})`
      : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' ? 'bad signature'
      : code === 'ERR_JWKS_NO_MATCHING_KEY' ? 'signed with a key the IdP does not publish'
      : code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' ? `claim ${(e as { claim?: string }).claim} refused`
      : code;
    return { error: new RoostError('UNAUTHENTICATED', `the IdP access token was refused: ${why}`), ...where };
  }
  const identity = { connection: conn.id, issuer: String(payload.iss), subject: String(payload.sub), email: typeof payload.email === 'string' ? payload.email : undefined, name: typeof payload.name === 'string' ? payload.name : undefined };
  return { credential: { kind: 'idp', tenant: conn.tenant, identity, grants: evaluateRules(getRules(app.state, conn.tenant), payload as Record<string, unknown>, conn.id) } };
}

/**
 * Whether a verified token shows it is an access token rather than an ID token. Only asked when
 * the connection's audience is its client_id: an ID token is issued to the client, so it has
 * that audience too, and it would otherwise be taken as a bearer credential. An access token says
 * so in its header (RFC 9068's `typ: at+jwt`) or carries a scope (`scope`, Azure's `scp`, or
 * `roles` with the client it was issued to) and none of the ID token's own claims (`nonce`,
 * `at_hash`, `c_hash`).
 */
function accessTokenShaped(jwt: string, p: jose.JWTPayload): boolean {
  let typ = '';
  try { typ = String(jose.decodeProtectedHeader(jwt).typ ?? '').toLowerCase(); } catch { /* verified already */ }
  if (p.nonce !== undefined || p.at_hash !== undefined || p.c_hash !== undefined) return false;
  if (typ === 'at+jwt' || typ === 'application/at+jwt') return true;
  if (p.scope !== undefined || p.scp !== undefined) return true;
  // Roles alone do not tell: Azure puts the user's app roles in ID tokens too (and a nonce only
  // when the client sent one). An access token carrying only roles (client credentials) names
  // the client it was issued to: `azp` (v2.0), `appid` (v1.0) or RFC 9068's `client_id`.
  return p.roles !== undefined && (p.azp !== undefined || p.appid !== undefined || p.client_id !== undefined);
}

function safeAlg(jwt: string): string {
  try { return String(jose.decodeProtectedHeader(jwt).alg); } catch { return '?'; }
}
