/**
 * Identity routes (API section 2): login, the per-connection OIDC callback and
 * back-channel logout, who-am-I, logout, and Roost's session JWKS.
 */
import * as oidc from 'openid-client';
import type { App } from '../app.js';
import type { Ctx } from '../http/context.js';
import { formOf, readBody, sendJson, textOf } from '../http/context.js';
import { clientIp } from '../http/client-ip.js';
import { RoostError } from '../errors.js';
import { authenticate, credentialName, markAudited, type Credential } from '../../auth/authorize.js';
import { auditAuth, runtimeOf } from '../../auth/runtime.js';
import { authorizationUrl, auditLoginFailure, chooseConnections, chooserPage, escapeHtml, page, safeReturnTo } from '../../auth/oidc/login.js';
import { completeLogin, LoginFailed } from '../../auth/oidc/callback.js';
import { backchannelLogout } from '../../auth/oidc/backchannel.js';
import { connectionIdp, getConnection } from '../../auth/oidc/connections.js';
import { isSamlConnection, samlAuthorizationUrl } from '../../auth/saml/index.js';
import { clearedCookies, loginCookie, loginKey, loginKeyHash, sessionCookies } from '../../auth/sessions/cookies.js';
import { PENDING_TTL_MS } from '../../auth/oidc/pending.js';
import { clientTag, limitLoginFailure, limitLoginStart, recordedConnection } from '../../auth/login-limits.js';
import { revokeSession } from '../../auth/sessions/sessions.js';
import { grantsView } from '../../auth/mapping/rules.js';
import { SESSION_TTL_S } from '../../auth/sessions/keys.js';
import type { Workspace } from '../../tenants/registry.js';
import { roleOn } from '../../auth/roles.js';

/** `localhost`, `127.x.y.z` or `[::1]`, with an optional port. */
const LOOPBACK_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i;

function wantsHtml(ctx: Ctx): boolean {
  const a = String(ctx.req.headers.accept ?? '');
  return a.includes('text/html') && !a.startsWith('application/json');
}

function sendHtml(ctx: Ctx, status: number, html: string, headers: Record<string, string | string[]> = {}): void {
  ctx.res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html), 'Cache-Control': 'no-store', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'", ...headers });
  ctx.res.end(html);
}

function redirect(ctx: Ctx, location: string, headers: Record<string, string | string[]> = {}): void {
  ctx.res.writeHead(303, { Location: location, 'Cache-Control': 'no-store', 'Content-Length': 0, ...headers });
  ctx.res.end();
}

/** The who-am-I answer for a person credential. */
function sessionView(app: App, cred: Extract<Credential, { kind: 'session' | 'idp' }>): Record<string, unknown> {
  const workspaces = app.state.list<Workspace>('workspaces', cred.tenant)
    .map((w) => ({ name: w.name, role: roleOn(cred.grants, w.name) }))
    .filter((w) => w.role);
  return {
    kind: cred.kind,
    tenant: cred.tenant,
    identity: { connection: cred.identity.connection, issuer: cred.identity.issuer, subject: cred.identity.subject, email: cred.identity.email, name: cred.identity.name },
    claims: cred.kind === 'session' ? cred.session.claims : undefined,
    roles: grantsView(cred.grants),
    workspaces,
    ...(cred.kind === 'session' ? { expires_at: new Date(cred.session.exp * 1000).toISOString(), csrf_token: cred.session.csrf } : {}),
  };
}

export function registerIdentityRoutes(app: App): void {
  const { router } = app;

  router.get('/.well-known/jwks.json', async (ctx) => {
    await runtimeOf(app).keys.ensure();
    sendJson(ctx, 200, runtimeOf(app).keys.jwks(), { 'Cache-Control': 'public, max-age=300' });
  });

  router.get('/auth/login', async (ctx) => {
    // The IdP sends the browser back to the server's own address (the bound one, without
    // ROOST_PUBLIC_URL), and the login cookie belongs to the host it was set on: a login opened
    // at http://localhost:7181 (the README's curl examples' host) while the server is bound to
    // 127.0.0.1 came back without its cookie ("started in another browser"). Such a login starts
    // over at the server's own address first. Only between loopback names, and only without
    // ROOST_PUBLIC_URL (a proxy may rewrite Host; that would loop).
    const own = new URL(runtimeOf(app).issuer);
    const asked = String(ctx.req.headers.host ?? '');
    if (!app.config.publicUrl && asked && asked !== own.host && LOOPBACK_HOST.test(asked) && LOOPBACK_HOST.test(own.host)) {
      ctx.res.writeHead(302, { Location: `${own.origin}/auth/login${ctx.req.url?.includes('?') ? ctx.req.url.slice(ctx.req.url.indexOf('?')) : ''}`, 'Cache-Control': 'no-store', 'Content-Length': '0' });
      ctx.res.end();
      return;
    }
    let returnTo: string;
    try {
      returnTo = safeReturnTo(ctx.query.get('return_to'));
    } catch (e) {
      auditLoginFailure(app, ctx, `refused return_to ${JSON.stringify(ctx.query.get('return_to'))}`, ctx.query.get('tenant') && app.state.get('tenants', ctx.query.get('tenant')!) ? ctx.query.get('tenant')! : undefined);
      throw e;
    }
    const choices = chooseConnections(app, ctx.query);
    if (choices.length > 1) {
      if (wantsHtml(ctx)) return sendHtml(ctx, 200, chooserPage(choices, returnTo));
      sendJson(ctx, 300, { choose: choices.map((c) => ({ tenant: c.tenant, connection: c.connection.id, type: c.connection.type, issuer: connectionIdp(c.connection), login_url: `/auth/login?tenant=${encodeURIComponent(c.tenant)}&connection=${encodeURIComponent(c.connection.id)}&return_to=${encodeURIComponent(returnTo)}` })) });
      return;
    }
    const { tenant, connection } = choices[0]!;
    const headers: Record<string, string> = { 'Cache-Control': 'no-store', 'Content-Length': '0' };
    let url: URL;
    if (isSamlConnection(connection)) {
      url = await samlAuthorizationUrl(app, tenant, connection.id, returnTo);
    } else {
      limitLoginStart(app, ctx, tenant, connection.id);
      const browser = loginKey(ctx, !runtimeOf(app).insecureCookies);
      try {
        url = await authorizationUrl(app, tenant, connection.id, returnTo, ctx.query.get('email') ?? undefined, loginKeyHash(browser.key), clientTag(ctx));
      } catch (e) {
        // A login that cannot start (the IdP's discovery unreachable or invalid) is a failed login
        // too: it was in no audit record. Bounded by the login-start rate above.
        auditLoginFailure(app, ctx, `the login could not start: ${(e as Error).message}`, tenant, connection.id, { code: (e as RoostError).code });
        throw e;
      }
      // Set again when the browser has one: its Max-Age must cover this login's 10 minutes, not
      // end 10 minutes after an earlier login (which failed a login started near its end).
      headers['Set-Cookie'] = loginCookie(browser.key, Math.floor(PENDING_TTL_MS / 1000), !runtimeOf(app).insecureCookies);
    }
    ctx.res.writeHead(302, { ...headers, Location: url.href });
    ctx.res.end();
  });

  router.get('/auth/oidc/:tenant/:connection/callback', async (ctx) => {
    const { tenant, connection } = ctx.params as { tenant: string; connection: string };
    const rt = runtimeOf(app);
    try {
      const r = await completeLogin(app, ctx, tenant, connection);
      auditAuth(app, {
        event: 'login', outcome: 'success', tenant, connection, actor: r.identity.email ?? r.identity.subject,
        credential: `session:${connection}:${r.identity.subject}`, requestId: ctx.id, ip: clientIp(ctx),
        details: { issuer: r.identity.issuer, subject: r.identity.subject, grants: grantsView(r.grants) },
      });
      const maxAge = Math.max(0, r.sessionExp - Math.floor(Date.now() / 1000));
      const csrf = JSON.parse(Buffer.from(r.jwt.split('.')[1]!, 'base64url').toString('utf8')).csrf as string;
      redirect(ctx, r.returnTo, { 'Set-Cookie': sessionCookies(r.jwt, csrf, Math.min(maxAge, SESSION_TTL_S), !rt.insecureCookies) });
    } catch (e) {
      const known = e instanceof LoginFailed;
      const err = e instanceof RoostError ? e : new RoostError('LOGIN_FAILED', 'the login could not be completed', { cause: e });
      if (!(e instanceof RoostError)) ctx.log.warn('login failed unexpectedly', { request_id: ctx.id, err: e });
      const t = known ? (e as LoginFailed).tenant : undefined;
      const knownTenant = t && app.state.get('tenants', t) ? t : undefined;
      const recorded = recordedConnection(app, knownTenant, known ? (e as LoginFailed).connection : undefined);
      // Past the address's rate of failures (a flood of callbacks with made-up states): a 429
      // instead, not recorded one by one (auth/login-limits.ts).
      const limited = limitLoginFailure(app, ctx, knownTenant, recorded);
      if (limited) throw limited;
      auditLoginFailure(app, ctx, (known ? (e as LoginFailed).auditReason : undefined) ?? err.message, knownTenant, recorded, { code: err.code }, known ? (e as LoginFailed).actor : undefined);
      // That record is the refusal's one record: the HTTP layer must not write another for it.
      markAudited(err);
      if (wantsHtml(ctx)) {
        const title = err.code === 'NO_ACCESS' ? 'No access' : 'Login failed';
        return sendHtml(ctx, err.status, page(title, `<p>${escapeHtml(err.message)}</p><p>Request id: <code>${escapeHtml(ctx.id)}</code></p>`));
      }
      throw err;
    }
  });

  router.post('/auth/oidc/:tenant/:connection/backchannel-logout', async (ctx) => {
    const { tenant, connection } = ctx.params as { tenant: string; connection: string };
    getConnection(app, tenant, connection);
    const body = formOf(textOf(await readBody(ctx)));
    const token = body.get('logout_token');
    try {
      if (!token) throw new RoostError('BAD_REQUEST', 'logout_token is required');
      const r = await backchannelLogout(app, tenant, connection, token);
      auditAuth(app, { event: 'logout.backchannel', outcome: 'success', tenant, connection, requestId: ctx.id, ip: clientIp(ctx), details: { sub: r.sub, sid: r.sid } });
    } catch (e) {
      // Unauthenticated posts: past the address's rate of failures, a 429 instead, not recorded
      // one by one (as failed logins; auth/login-limits.ts). The IdP's own posts succeed; a
      // failure on Roost's side (5xx: the IdP's metadata unreachable, the sessions' store) is
      // not the client's and is answered as it is.
      const clientsFault = e instanceof RoostError && e.status < 500;
      const limited = clientsFault ? limitLoginFailure(app, ctx, tenant, connection) : undefined;
      if (limited) throw limited;
      auditAuth(app, { event: 'logout.backchannel', outcome: 'failure', tenant, connection, reason: (e as Error).message, requestId: ctx.id, ip: clientIp(ctx) });
      markAudited(e);
      throw e;
    }
    ctx.res.writeHead(200, { 'Cache-Control': 'no-store', 'Content-Length': 0 });
    ctx.res.end();
  });

  router.get('/auth/session', async (ctx) => {
    const cred = await authenticate(app, ctx);
    if (cred.kind !== 'session' && cred.kind !== 'idp') {
      sendJson(ctx, 200, { kind: cred.kind, credential: credentialName(cred) });
      return;
    }
    sendJson(ctx, 200, sessionView(app, cred), { 'Cache-Control': 'no-store' });
  });

  /**
   * Ends the session (cookie or bearer). Cookie sessions need the CSRF token
   * (header, or form field `csrf_token` for a plain HTML form). Answers the
   * IdP's end-session URL when it advertises one (303 to it for forms).
   */
  router.post('/auth/logout', async (ctx) => {
    const type = String(ctx.req.headers['content-type'] ?? '');
    const form = type.startsWith('application/x-www-form-urlencoded') ? formOf(textOf(await readBody(ctx))) : undefined;
    const cred = await authenticate(app, ctx, { csrfField: form?.get('csrf_token') ?? undefined });
    if (cred.kind !== 'session') throw new RoostError('INVALID_PARAMETER', 'only a session can log out; tokens are deleted with DELETE /v0/tokens/<name>');
    await revokeSession(app, cred.session);
    auditAuth(app, { event: 'logout', outcome: 'success', tenant: cred.tenant, connection: cred.identity.connection, actor: cred.identity.email ?? cred.identity.subject, credential: credentialName(cred), requestId: ctx.id });
    let endSession: string | undefined;
    try {
      const conn = getConnection(app, cred.tenant, cred.identity.connection);
      const config = await runtimeOf(app).oidc.config(conn);
      if (config.serverMetadata().end_session_endpoint) {
        endSession = oidc.buildEndSessionUrl(config, { client_id: conn.client_id, logout_hint: cred.identity.subject }).href;
      }
    } catch { /* the local session is over either way */ }
    const cookies = clearedCookies(!runtimeOf(app).insecureCookies);
    if (form && endSession) return redirect(ctx, endSession, { 'Set-Cookie': cookies });
    sendJson(ctx, 200, { logged_out: true, end_session_url: endSession ?? null }, { 'Set-Cookie': cookies as unknown as string, 'Cache-Control': 'no-store' });
  });
}
