/**
 * SP-initiated login, in two steps so that it is bound to the browser that starts it:
 * - `/auth/login` picks the connection and sends the browser to Roost's own
 *   `/auth/saml/<tenant>/<connection>/login?return_to=...` (samlAuthorizationUrl);
 * - that route (startSamlLogin) makes the AuthnRequest, stores its id with the tenant, the
 *   connection, the `return_to` and the hash of the browser's SAML login cookie under a fresh
 *   random state id that travels as RelayState (the only thing the IdP sends back with the
 *   response), sets the cookie and redirects to the IdP (HTTP-Redirect).
 * The ACS accepts the response for that RelayState only with that cookie: an attacker cannot
 * post the response of their own login into someone else's browser (login CSRF). OIDC binds
 * its logins the same way (`roost_login`).
 *
 * The cookie is `SameSite=None; Secure`: the HTTP-POST binding brings the response back as a
 * cross-site top-level POST from the IdP, which carries no `SameSite=Lax` (nor Strict) cookie.
 * `Secure` is set on plain-HTTP loopback too (browsers require it with `SameSite=None`, and
 * accept it from http://localhost and 127.0.0.1). Its path is `/auth/saml` and it holds
 * nothing but a random key, so the wider SameSite gives a cross-site request nothing to use.
 */
import crypto from 'node:crypto';
import type { App } from '../../src/app.js';
import type { Ctx } from '../../src/http/context.js';
import { cookieName, loginKeyHash, readCookie } from '../sessions/cookies.js';
import { runtimeOf } from '../runtime.js';
import { acsUrl, getSamlConnection, loginStartUrl, spEntityId } from './connections.js';
import { samlFor } from './library.js';
import { SAML_PENDING_TTL_MS } from './pending.js';
import { samlRuntime } from './runtime.js';
import { clientTag } from '../login-limits.js';

export const SAML_LOGIN_COOKIE = 'roost_saml_login';
const KEY = /^[A-Za-z0-9_-]{43}$/;

/** Where `/auth/login` sends the browser for a SAML connection: Roost's own start of the login. */
export async function samlAuthorizationUrl(app: App, tenant: string, connId: string, returnTo: string): Promise<URL> {
  const conn = getSamlConnection(app, tenant, connId);
  const url = new URL(loginStartUrl(app, tenant, conn.id));
  url.searchParams.set('return_to', returnTo);
  return url;
}

/** The browser's SAML login key (from its cookie), if it sent a well-formed one. */
export function samlLoginKey(app: App, ctx: Ctx): string | undefined {
  const k = readCookie(ctx, cookieName(SAML_LOGIN_COOKIE, !runtimeOf(app).insecureCookies));
  return k && KEY.test(k) ? k : undefined;
}

/** Always Secure (SameSite=None needs it); `__Host-` and Path=/ when Roost is served over HTTPS (sessions/cookies.ts, cookieName). */
export function samlLoginCookie(app: App, key: string): string {
  const secure = !runtimeOf(app).insecureCookies;
  return `${cookieName(SAML_LOGIN_COOKIE, secure)}=${key}; Path=${secure ? '/' : '/auth/saml'}; Max-Age=${Math.floor(SAML_PENDING_TTL_MS / 1000)}; HttpOnly; Secure; SameSite=None`;
}

/**
 * Starts a login in this browser: the IdP URL (AuthnRequest by HTTP-Redirect) and the
 * cookie to set. The browser's key is kept when it has one (several logins in tabs), its
 * Max-Age renewed to cover this login.
 */
export async function startSamlLogin(app: App, ctx: Ctx, tenant: string, connId: string, returnTo: string): Promise<{ url: URL; cookie: string }> {
  const conn = getSamlConnection(app, tenant, connId);
  const key = samlLoginKey(app, ctx) ?? crypto.randomBytes(32).toString('base64url');
  // An xs:ID must not start with a digit.
  const requestId = `_${crypto.randomBytes(20).toString('hex')}`;
  const relayState = crypto.randomBytes(32).toString('base64url');
  const now = Date.now();
  await samlRuntime(app).store.putLogin(relayState, { tenant, connection: conn.id, requestId, returnTo, createdAt: now, expiresAt: now + SAML_PENDING_TTL_MS, browser: loginKeyHash(key), client: clientTag(ctx) });
  const saml = await samlFor({ conn, spEntityId: spEntityId(app, tenant, conn.id), acsUrl: acsUrl(app, tenant, conn.id), requestId });
  return { url: new URL(await saml.getAuthorizeUrlAsync(relayState, undefined, {})), cookie: samlLoginCookie(app, key) };
}
