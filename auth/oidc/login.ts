/**
 * `GET /auth/login`: picks the connection (tenant slug, or the verified domain
 * of an email; a chooser page when several fit) and redirects to the IdP with
 * authorization code + PKCE (S256), `state` and `nonce`, kept server-side.
 */
import * as oidc from 'openid-client';
import type { App } from '../../src/app.js';
import type { Ctx } from '../../src/http/context.js';
import { clientIp } from '../../src/http/client-ip.js';
import { RoostError } from '../../src/errors.js';
import type { Tenant } from '../../tenants/registry.js';
import { callbackUrl, connectionIdp, getConnection, listConnections, type StoredConnection } from './connections.js';
import { PENDING_TTL_MS } from './pending.js';
import { runtimeOf, auditAuth } from '../runtime.js';

/**
 * A `return_to` must be a path on this server: starts with one `/`, no
 * backslash, no control characters, and resolves to the same origin.
 */
export function safeReturnTo(raw: string | null): string {
  if (raw === null || raw === '') return '/auth/session';
  const bad = () => new RoostError('INVALID_RETURN_TO', 'return_to must be a relative path on this server, like /app/dashboards');
  if (raw.length > 2000 || !raw.startsWith('/') || raw.startsWith('//') || /[\\\x00-\x1f\x7f]/.test(raw)) throw bad();
  const base = new URL('http://roost.invalid/');
  let u: URL;
  try { u = new URL(raw, base); } catch { throw bad(); }
  if (u.origin !== base.origin) throw bad();
  // Dot segments collapse on resolution: "/.//evil.com" resolves to the path "//evil.com",
  // which a browser reads as a scheme-relative URL to another host. The path sent back
  // must itself pass the checks above.
  const out = u.pathname + u.search + u.hash;
  if (!out.startsWith('/') || out.startsWith('//') || /[\\\x00-\x1f\x7f]/.test(out)) throw bad();
  return out;
}

export type LoginChoice = { tenant: string; connection: StoredConnection };

/** The connections a login request may use. */
export function chooseConnections(app: App, q: URLSearchParams): LoginChoice[] {
  const tenantSlug = q.get('tenant');
  const email = q.get('email');
  const wanted = q.get('connection');
  let tenants: string[];
  if (tenantSlug) {
    if (!app.state.get('tenants', tenantSlug)) throw new RoostError('UNKNOWN_TENANT', `there is no tenant "${tenantSlug}"`);
    tenants = [tenantSlug];
  } else if (email) {
    const at = email.lastIndexOf('@');
    const domain = at > 0 ? email.slice(at + 1).toLowerCase() : '';
    if (!/^[a-z0-9.-]+\.[a-z]{2,}$/.test(domain)) throw new RoostError('INVALID_PARAMETER', 'email must be an address like ana@acme.com');
    tenants = app.state.list<Tenant>('tenants').filter((t) => t.domains.includes(domain)).map((t) => t.slug);
    if (tenants.length === 0) throw new RoostError('UNKNOWN_TENANT', `no tenant has verified the domain ${domain}; log in with ?tenant=<slug>`);
  } else {
    throw new RoostError('INVALID_PARAMETER', 'say who you are: /auth/login?tenant=<slug> or /auth/login?email=<address>');
  }
  let out = tenants.flatMap((t) => listConnections(app, t).map((c) => ({ tenant: t, connection: c })));
  if (wanted) out = out.filter((c) => c.connection.id === wanted);
  if (out.length === 0) throw new RoostError('NOT_FOUND', wanted ? `no connection "${wanted}" for this login` : 'this tenant has no identity connection yet; ask its administrator');
  return out;
}

/** The IdP authorization URL for a fresh, stored login attempt. */
export async function authorizationUrl(app: App, tenant: string, connId: string, returnTo: string, loginHint?: string, browserKeyHash?: string, client?: string): Promise<URL> {
  const rt = runtimeOf(app);
  const conn = getConnection(app, tenant, connId);
  const config = await rt.oidc.config(conn);
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  await rt.logins.put(state, { tenant, connection: conn.id, issuer: config.serverMetadata().issuer, codeVerifier, nonce, returnTo, expiresAt: Date.now() + PENDING_TTL_MS, browser: browserKeyHash, client });
  const params: Record<string, string> = {
    redirect_uri: callbackUrl(app, tenant, conn.id),
    scope: conn.scopes.join(' '),
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  if (loginHint) params.login_hint = loginHint;
  return oidc.buildAuthorizationUrl(config, params);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));
}

export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><meta name="viewport" content="width=device-width"></head><body style="font-family:sans-serif;max-width:36em;margin:4em auto"><h1>${escapeHtml(title)}</h1>${body}</body></html>`;
}

function idpLabel(idp: string): string {
  try { return new URL(idp).host || idp; } catch { return idp; }
}

export function chooserPage(choices: LoginChoice[], returnTo: string): string {
  const items = choices.map((c) => {
    const href = `/auth/login?tenant=${encodeURIComponent(c.tenant)}&connection=${encodeURIComponent(c.connection.id)}&return_to=${encodeURIComponent(returnTo)}`;
    return `<li><a href="${escapeHtml(href)}">${escapeHtml(c.tenant)} — ${escapeHtml(c.connection.id)} (${escapeHtml(idpLabel(connectionIdp(c.connection)))})</a></li>`;
  }).join('');
  return page('Choose how to log in', `<ul>${items}</ul>`);
}

export { escapeHtml };

export function auditLoginFailure(app: App, ctx: Ctx, reason: string, tenant?: string, connection?: string, details?: Record<string, unknown>, actor?: string): void {
  auditAuth(app, { event: 'login', outcome: 'failure', reason, tenant, connection, actor, requestId: ctx.id, ip: clientIp(ctx), details });
}
