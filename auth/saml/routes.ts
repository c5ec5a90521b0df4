/**
 * SAML routes (API section 2): `GET /auth/saml/<tenant>/<connection>/metadata`
 * (SP metadata XML), `GET /auth/saml/<tenant>/<connection>/login` (the start of an
 * SP-initiated login in the browser, where `/auth/login` sends it: sets the browser's
 * SAML login cookie and redirects to the IdP; see login.ts) and
 * `POST /auth/saml/<tenant>/<connection>/acs`. Every ACS refusal is audited as
 * `login.saml` with the check that refused it, and sets no cookie; past the client address's
 * rate of failures (auth/login-limits.ts `limitLoginFailure`) the refusal is a 429 instead,
 * recorded once per ten seconds. A connection the tenant does not have is recorded marked and cut.
 */
import type { App } from '../../src/app.js';
import type { Ctx } from '../../src/http/context.js';
import { clientIp } from '../../src/http/client-ip.js';
import { RoostError } from '../../src/errors.js';
import { auditAuth, runtimeOf } from '../runtime.js';
import { markAudited } from '../authorize.js';
import { auditLoginFailure, escapeHtml, page, safeReturnTo } from '../oidc/login.js';
import { startSamlLogin } from './login.js';
import { limitLoginFailure, limitLoginStart, recordedConnection } from '../login-limits.js';
import { grantsView } from '../mapping/rules.js';
import { sessionCookies } from '../sessions/cookies.js';
import { SESSION_TTL_S } from '../sessions/keys.js';
import { acsUrl, getSamlConnection, spEntityId } from './connections.js';
import { spMetadataXml } from './metadata.js';
import { completeSamlLogin } from './acs.js';
import { SamlLoginFailed } from './errors.js';

function wantsHtml(ctx: Ctx): boolean {
  const a = String(ctx.req.headers.accept ?? '');
  return a.includes('text/html') && !a.startsWith('application/json');
}

export function registerSamlRoutes(app: App): void {
  const { router } = app;

  router.get('/auth/saml/:tenant/:connection/metadata', async (ctx) => {
    const { tenant, connection } = ctx.params as { tenant: string; connection: string };
    const conn = getSamlConnection(app, tenant, connection);
    const xml = await spMetadataXml({ entityId: spEntityId(app, tenant, conn.id), acsUrl: acsUrl(app, tenant, conn.id), nameIdFormat: conn.name_id_format });
    ctx.res.writeHead(200, { 'Content-Type': 'application/samlmetadata+xml; charset=utf-8', 'Content-Length': Buffer.byteLength(xml), 'Cache-Control': 'public, max-age=300' });
    ctx.res.end(xml);
  });

  router.get('/auth/saml/:tenant/:connection/login', async (ctx) => {
    const { tenant, connection } = ctx.params as { tenant: string; connection: string };
    let returnTo: string;
    try {
      returnTo = safeReturnTo(ctx.query.get('return_to'));
    } catch (e) {
      auditLoginFailure(app, ctx, `refused return_to ${JSON.stringify(ctx.query.get('return_to'))}`, app.state.get('tenants', tenant) ? tenant : undefined, connection);
      throw e;
    }
    getSamlConnection(app, tenant, connection);
    limitLoginStart(app, ctx, tenant, connection);
    const { url, cookie } = await startSamlLogin(app, ctx, tenant, connection, returnTo);
    ctx.res.writeHead(302, { Location: url.href, 'Cache-Control': 'no-store', 'Content-Length': 0, 'Set-Cookie': cookie });
    ctx.res.end();
  });

  router.post('/auth/saml/:tenant/:connection/acs', async (ctx) => {
    const { tenant, connection } = ctx.params as { tenant: string; connection: string };
    const ip = clientIp(ctx);
    try {
      const r = await completeSamlLogin(app, ctx, tenant, connection);
      auditAuth(app, {
        event: 'login.saml', outcome: 'success', tenant, connection, actor: r.identity.email ?? r.identity.subject,
        credential: `session:${connection}:${r.identity.subject}`, requestId: ctx.id, ip,
        details: { issuer: r.identity.issuer, subject: r.identity.subject, name_id_format: r.nameIdFormat ?? null, assertion_id: r.assertionId, idp_initiated: r.idpInitiated, grants: grantsView(r.grants) },
      });
      const maxAge = Math.min(Math.max(0, r.sessionExp - Math.floor(Date.now() / 1000)), SESSION_TTL_S);
      const csrf = JSON.parse(Buffer.from(r.jwt.split('.')[1]!, 'base64url').toString('utf8')).csrf as string;
      ctx.res.writeHead(303, { Location: r.returnTo, 'Cache-Control': 'no-store', 'Content-Length': 0, 'Set-Cookie': sessionCookies(r.jwt, csrf, maxAge, !runtimeOf(app).insecureCookies) });
      ctx.res.end();
    } catch (e) {
      const err = e instanceof RoostError ? e : new RoostError('LOGIN_FAILED', 'the SAML login could not be completed', { cause: e });
      if (!(e instanceof RoostError)) ctx.log.warn('SAML login failed unexpectedly', { request_id: ctx.id, err: e });
      const check = e instanceof SamlLoginFailed ? e.check : err.code === 'BODY_TOO_LARGE' ? 'size' : 'internal';
      const known = app.state.get('tenants', tenant) ? tenant : undefined;
      const recorded = recordedConnection(app, known, connection);
      // Past the address's rate of failures: a 429 instead, not recorded one by one.
      const limited = limitLoginFailure(app, ctx, known, recorded);
      if (limited) throw limited;
      auditAuth(app, {
        event: 'login.saml', outcome: 'failure', reason: `${check}: ${e instanceof SamlLoginFailed ? e.auditReason ?? err.message : err.message}`, tenant: known, connection: recorded, requestId: ctx.id, ip,
        actor: e instanceof SamlLoginFailed ? e.actor : undefined,
        details: { check, code: err.code },
      });
      // That record is the refusal's one record: the HTTP layer must not write another for it.
      markAudited(err);
      if (wantsHtml(ctx)) {
        const title = err.code === 'NO_ACCESS' ? 'No access' : 'Login failed';
        const html = page(title, `<p>${escapeHtml(err.message)}</p><p>Request id: <code>${escapeHtml(ctx.id)}</code></p>`);
        ctx.res.writeHead(err.status, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(html), 'Cache-Control': 'no-store', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'" });
        ctx.res.end(html);
        return;
      }
      throw err;
    }
  });
}
