/**
 * The per-connection OIDC redirect URI. The login attempt is looked up by
 * `state` (single-use, bound to this tenant and connection); openid-client
 * then checks the RFC 9207 `iss` parameter, the code exchange with the PKCE
 * verifier, the ID token's `iss`, `aud`/`azp`, `exp` and `nonce`, and the
 * UserInfo `sub`; the ID token's signature is checked here against the IdP's
 * JWKS with an asymmetric algorithm allowlist (never `none`, never HMAC). The identity is
 * (connection, issuer, subject); the mapping rules decide the grants.
 */
import * as oidc from 'openid-client';
import * as jose from 'jose';
import type { App } from '../../src/app.js';
import type { Ctx } from '../../src/http/context.js';
import { RoostError } from '../../src/errors.js';
import { callbackUrl, getConnection } from './connections.js';
import { IDP_ALGS, IDP_CLOCK_TOLERANCE_S, oidcError, requestRefusal } from './client.js';
import { runtimeOf } from '../runtime.js';
import { evaluateRules, getRules, noAccessMessage, noAccessReason, referencedClaims, rulesFor, type MappingRule } from '../mapping/rules.js';
import { hasAnyGrant, type Grants } from '../roles.js';
import type { Identity } from '../authorize.js';
import { endSubjectSessions, issueSession } from '../sessions/sessions.js';
import { PENDING_TTL_MS } from './pending.js';
import crypto from 'node:crypto';
import { LOGIN_COOKIE, cookieName, loginKeyHash, readCookie } from '../sessions/cookies.js';


export interface LoginResult { jwt: string; returnTo: string; identity: Identity; grants: Grants; tenant: string; connection: string; sessionExp: number }

export class LoginFailed extends RoostError {
  readonly tenant: string | undefined;
  readonly connection: string | undefined;
  /** The audit record's reason when it says more than the person is told (`message`). */
  auditReason: string | undefined;
  /** Who the IdP said logged in, when the login failed after it did (no role): the record's actor. */
  actor: string | undefined;
  constructor(code: 'LOGIN_FAILED' | 'NO_ACCESS' | 'IDP_UNAVAILABLE', message: string, where: { tenant?: string; connection?: string }, cause?: unknown) {
    super(code, message, { cause });
    this.tenant = where.tenant;
    this.connection = where.connection;
  }
}

/**
 * The refusal of a login no rule gives a role: the person is told only that (and to ask the
 * tenant's administrator); the audit record says which rules matched for other connections.
 */
export function noAccess<E extends LoginFailed>(err: E, rules: readonly MappingRule[], claims: Record<string, unknown>, tenant: string, connection: string, who: string): E {
  err.auditReason = noAccessReason(rules, claims, tenant, connection, who);
  err.actor = who;
  return err;
}

/**
 * What a login's claims earn at a tenant (OIDC and SAML alike): the grants of the connection's
 * own rules (another IdP of the tenant asserting the same claim earns nothing here), and the
 * claims the session keeps: only what the rules read plus `keepAlso`, protocol claims included
 * when a rule reads them (acr, amr, azp...), since the rules run again on these claims at every
 * request and a claim granted at login but left out lost its grant at the next one. No grant:
 * the sessions an earlier login of this person gave them end too (they went on for up to their
 * lifetime, able to mint tokens, after the person was removed), and `refusal` is thrown.
 */
export async function grantsOfLogin<E extends LoginFailed>(
  app: App, tenant: string, connId: string, identity: Identity, all: Record<string, unknown>,
  refusal: (message: string) => E, keepAlso: readonly string[] = [],
): Promise<{ grants: Grants; claims: Record<string, unknown> }> {
  const rules = getRules(app.state, tenant);
  const grants = evaluateRules(rules, all, connId);
  if (!hasAnyGrant(grants)) {
    const who = identity.email ?? identity.subject;
    await endSubjectSessions(app, tenant, connId, identity);
    throw noAccess(refusal(noAccessMessage(tenant, connId, who)), rules, all, tenant, connId, who);
  }
  const keep = referencedClaims(rulesFor(rules, connId));
  for (const k of keepAlso) keep.add(k);
  const claims: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(all)) if (keep.has(k)) claims[k] = v;
  return { grants, claims };
}

export async function completeLogin(app: App, ctx: Ctx, tenant: string, connId: string): Promise<LoginResult> {
  const where = { tenant, connection: connId };
  const fail = (msg: string, cause?: unknown): never => { throw new LoginFailed('LOGIN_FAILED', msg, where, cause); };
  const rt = runtimeOf(app);
  const state = ctx.query.get('state');
  if (!state) fail('the callback has no state parameter');
  const pending = await rt.logins.take(state!);
  if (!pending) fail('unknown, expired or already used state (start the login again)');
  if (pending!.tenant !== tenant || pending!.connection !== connId) fail('the state was issued for another connection (mix-up)');
  if (pending!.browser !== undefined) {
    const got = Buffer.from(loginKeyHash(readCookie(ctx, cookieName(LOGIN_COOKIE, !rt.insecureCookies)) ?? ''));
    const want = Buffer.from(pending!.browser);
    if (got.length !== want.length || !crypto.timingSafeEqual(got, want)) fail('this login was started in another browser (or this browser blocked its cookie): start the login again here');
  }
  const idpError = ctx.query.get('error');
  if (idpError) fail(`the identity provider refused: ${idpError}${ctx.query.get('error_description') ? ` (${ctx.query.get('error_description')})` : ''}`);
  let conn;
  try { conn = getConnection(app, tenant, connId); } catch { fail('the connection no longer exists'); }
  let config: oidc.Configuration;
  // A request the server refused to send (a host the operator does not allow) is the login's
  // failure, not an IdP that is down.
  try { config = await rt.oidc.config(conn!); } catch (e) { throw new LoginFailed(requestRefusal(e) ? 'LOGIN_FAILED' : 'IDP_UNAVAILABLE', (e as Error).message, where, e); }
  if (config!.serverMetadata().issuer !== pending!.issuer) fail('the identity provider\'s issuer changed during the login');
  const redirectUri = callbackUrl(app, tenant, connId);
  const current = new URL(redirectUri + ctx.url.search);
  let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
  try {
    tokens = await oidc.authorizationCodeGrant(config!, current, {
      pkceCodeVerifier: pending!.codeVerifier, expectedState: state!, expectedNonce: pending!.nonce, idTokenExpected: true,
    }, { redirect_uri: redirectUri });
  } catch (e) {
    const err = oidcError(e, 'the authorization response or ID token was refused');
    throw new LoginFailed(err.code === 'IDP_UNAVAILABLE' ? 'IDP_UNAVAILABLE' : 'LOGIN_FAILED', err.message, where, e);
  }
  const idClaims = tokens!.claims();
  if (!idClaims) fail('the identity provider sent no ID token');
  const meta = config!.serverMetadata();
  if (!meta.jwks_uri) fail('the identity provider publishes no JWKS');
  try {
    await jose.jwtVerify(tokens!.id_token!, rt.oidc.jwks(conn!, meta.jwks_uri!), { issuer: meta.issuer, audience: conn!.client_id, algorithms: IDP_ALGS, clockTolerance: IDP_CLOCK_TOLERANCE_S });
  } catch (e) {
    const refused = requestRefusal(e);
    if (refused) fail(refused.message, e);
    fail(`the ID token signature was refused (${(e as { code?: string }).code ?? 'invalid'})`, e);
  }
  let userinfo: Record<string, unknown> = {};
  if (config!.serverMetadata().userinfo_endpoint && tokens!.access_token) {
    try {
      userinfo = await oidc.fetchUserInfo(config!, tokens!.access_token, idClaims!.sub) as Record<string, unknown>;
    } catch (e) {
      fail(oidcError(e, 'UserInfo was refused').message, e);
    }
  }
  // The signed ID token wins over UserInfo for every claim both carry.
  const all: Record<string, unknown> = { ...userinfo, ...idClaims };
  const identity: Identity = {
    connection: connId, issuer: String(idClaims!.iss), subject: String(idClaims!.sub),
    email: typeof all.email === 'string' ? all.email : undefined, name: typeof all.name === 'string' ? all.name : undefined,
  };
  const { grants, claims } = await grantsOfLogin(app, tenant, connId, identity, all, (message) => new LoginFailed('NO_ACCESS', message, where));
  let issued: Awaited<ReturnType<typeof issueSession>>;
  try {
    issued = await issueSession(app, { tenant, identity, idpSid: typeof idClaims!.sid === 'string' ? idClaims!.sid : undefined, claims, since: pending!.expiresAt - PENDING_TTL_MS });
  } catch (e) {
    if (e instanceof RoostError && e.code === 'LOGIN_FAILED') fail(e.message, e);
    throw e;
  }
  const { jwt, session } = issued!;
  return { jwt, returnTo: pending!.returnTo, identity, grants, tenant, connection: connId, sessionExp: session.exp };
}
