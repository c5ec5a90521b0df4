/**
 * OIDC back-channel logout: the IdP posts a signed logout token; every
 * session of the IdP session (`sid`) or, without one, of the subject ends.
 * Each logout token is accepted once (`jti`).
 */
import * as jose from 'jose';
import type { App } from '../../src/app.js';
import { RoostError } from '../../src/errors.js';
import { runtimeOf } from '../runtime.js';
import { IDP_ALGS, IDP_CLOCK_TOLERANCE_S, requestRefusal } from './client.js';
import { getConnection } from './connections.js';
import { revokeIdpSessions } from '../sessions/sessions.js';

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';
const seenJti = new Map<string, number>();

export async function backchannelLogout(app: App, tenant: string, connId: string, logoutToken: string): Promise<{ sub?: string; sid?: string }> {
  const conn = getConnection(app, tenant, connId);
  const rt = runtimeOf(app);
  let config;
  try {
    config = await rt.oidc.config(conn);
  } catch (e) {
    const refused = requestRefusal(e);
    if (refused) throw new RoostError('BAD_REQUEST', `the logout token cannot be checked: ${refused.message}`);
    throw e;
  }
  const m = config.serverMetadata();
  if (!m.jwks_uri) throw new RoostError('LOGIN_FAILED', 'the IdP publishes no JWKS');
  let p: jose.JWTPayload;
  try {
    ({ payload: p } = await jose.jwtVerify(logoutToken, rt.oidc.jwks(conn, m.jwks_uri), { issuer: m.issuer, audience: conn.client_id, algorithms: IDP_ALGS, requiredClaims: ['iat', 'jti'], maxTokenAge: '5m', clockTolerance: IDP_CLOCK_TOLERANCE_S }));
  } catch (e) {
    const refused = requestRefusal(e);
    if (refused) throw new RoostError('BAD_REQUEST', `the logout token cannot be checked: ${refused.message}`);
    throw new RoostError('BAD_REQUEST', `the logout token was refused (${(e as { code?: string }).code ?? 'invalid'})`);
  }
  const events = p.events as Record<string, unknown> | undefined;
  if (!events || typeof events !== 'object' || !(EVENT in events)) throw new RoostError('BAD_REQUEST', 'the logout token has no back-channel logout event');
  if ('nonce' in p) throw new RoostError('BAD_REQUEST', 'a logout token must not carry a nonce');
  const sub = typeof p.sub === 'string' ? p.sub : undefined;
  const sid = typeof p.sid === 'string' ? p.sid : undefined;
  if (!sub && !sid) throw new RoostError('BAD_REQUEST', 'the logout token names neither sub nor sid');
  const now = Date.now();
  for (const [k, exp] of seenJti) if (exp < now) seenJti.delete(k);
  const jtiKey = `${m.issuer}\n${p.jti}`;
  if (seenJti.has(jtiKey)) throw new RoostError('BAD_REQUEST', 'this logout token was already used');
  seenJti.set(jtiKey, now + 10 * 60_000);
  await revokeIdpSessions(app, tenant, connId, String(p.iss), { sub, sid });
  return { sub, sid };
}
