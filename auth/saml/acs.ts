/**
 * The assertion consumer service (HTTP-POST binding). Order of checks:
 * body size and form → RelayState → the login in progress (single-use, bound
 * to this tenant and connection, and to the browser that started it by its
 * SAML login cookie) or, only where enabled, an unsolicited response → no
 * DOCTYPE, well-formed → document shape, signatures and algorithms, Destination (response-shape.ts) → the posted assertion
 * (assertion.ts) → node-saml: signature with the pinned certificates,
 * timestamps, audience, InResponseTo → the verified assertion again, which
 * is the only thing read → replay cache → mapping rules → session.
 */
import crypto from 'node:crypto';
import type { App } from '../../src/app.js';
import type { Ctx } from '../../src/http/context.js';
import { readBody } from '../../src/http/context.js';
import { RoostError } from '../../src/errors.js';
import { safeReturnTo } from '../oidc/login.js';
import { grantsOfLogin, type LoginResult } from '../oidc/callback.js';
import type { Identity } from '../authorize.js';
import { issueSession } from '../sessions/sessions.js';
import { loginKeyHash } from '../sessions/cookies.js';
import { samlLoginKey } from './login.js';
import { acsUrl, getSamlConnection, NAMEID_FORMATS, spEntityId, type SamlConnectionRecord } from './connections.js';
import { checkAssertion, type AssertedIdentity } from './assertion.js';
import { checkResponseShape } from './response-shape.js';
import { CLOCK_SKEW_MS, libraryRefusal, samlFor } from './library.js';
import { samlRuntime } from './runtime.js';
import { parseXml, XmlRefused } from './xml.js';
import { SamlLoginFailed } from './errors.js';
import { boundedName } from '../login-limits.js';

/** Largest ACS body accepted (the form with the base64 response): generous for many group attributes. */
export const MAX_ACS_BODY_BYTES = 256 * 1024;

const EMAIL_ATTRS = ['email', 'mail', 'emailaddress', 'urn:oid:0.9.2342.19200300.100.1.3', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress'];
const NAME_ATTRS = ['name', 'displayName', 'cn', 'urn:oid:2.16.840.1.113730.3.1.241', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name'];
const GROUP_ATTRS = ['groups', 'memberOf', 'urn:oid:1.3.6.1.4.1.5923.1.5.1.1', 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups', 'http://schemas.xmlsoap.org/claims/Group'];

function first(attrs: Record<string, string | string[]>, names: string[]): string | string[] | undefined {
  for (const n of names) if (Object.hasOwn(attrs, n)) return attrs[n];
  return undefined;
}

/** The claims the mapping rules see: every attribute by name, plus `nameid`, `email`, `name`, `groups`. */
export function samlClaims(who: AssertedIdentity): Record<string, unknown> {
  const email = first(who.attributes, EMAIL_ATTRS) ?? (who.nameIdFormat === NAMEID_FORMATS.emailAddress ? who.nameId : undefined);
  const name = first(who.attributes, NAME_ATTRS);
  const groups = first(who.attributes, GROUP_ATTRS);
  return {
    ...who.attributes,
    sub: who.nameId,
    nameid: who.nameId,
    ...(who.nameIdFormat ? { nameid_format: who.nameIdFormat } : {}),
    ...(email !== undefined ? { email: Array.isArray(email) ? email[0] : email } : {}),
    ...(name !== undefined ? { name: Array.isArray(name) ? name[0] : name } : {}),
    ...(groups !== undefined ? { groups: Array.isArray(groups) ? groups : [groups] } : {}),
  };
}

/** Whether `key` (the browser's login cookie) is the one whose hash the login in progress holds. */
function sameBrowser(expected: string | undefined, key: string | undefined): boolean {
  if (!expected || !key) return false;
  const got = Buffer.from(loginKeyHash(key));
  const want = Buffer.from(expected);
  return got.length === want.length && crypto.timingSafeEqual(got, want);
}

export interface SamlLoginResult extends LoginResult { nameIdFormat?: string; assertionId: string; idpInitiated: boolean }

export async function completeSamlLogin(app: App, ctx: Ctx, tenant: string, connId: string): Promise<SamlLoginResult> {
  const where = { tenant, connection: connId };
  const refuse = (check: string, message: string, cause?: unknown): never => { throw new SamlLoginFailed(check, message, where, { cause }); };
  const started = Date.now();
  let conn: SamlConnectionRecord;
  try { conn = getSamlConnection(app, tenant, connId); } catch { return refuse('connection', `tenant "${boundedName(tenant)}" has no SAML connection "${boundedName(connId)}"`); }

  // Too large answers 413 BODY_TOO_LARGE; the route audits it as check "size".
  // The type as sent (readBody answers a multipart body as a urlencoded form, and says so after).
  const sentType = String(ctx.req.headers['content-type'] ?? '');
  const body = await readBody(ctx, MAX_ACS_BODY_BYTES);
  if (!sentType.startsWith('application/x-www-form-urlencoded')) refuse('binding', 'the ACS takes the HTTP-POST binding: an application/x-www-form-urlencoded form');
  const form = new URLSearchParams(body.toString('utf8'));
  const b64 = form.get('SAMLResponse');
  const relayState = form.get('RelayState');
  if (!b64) return refuse('binding', 'the form has no SAMLResponse');
  if (!/^[A-Za-z0-9+/\r\n]+={0,2}[\r\n]*$/.test(b64)) refuse('binding', 'SAMLResponse is not base64');
  const xml = Buffer.from(b64, 'base64').toString('utf8');

  const store = samlRuntime(app).store;
  // The login in progress is consumed first: whatever follows, its RelayState is single-use.
  const pending = relayState && /^[A-Za-z0-9_-]{43}$/.test(relayState) ? await store.takeLogin(relayState) : undefined;
  let expected: { id: string; createdAt: number } | undefined;
  let returnTo = '/auth/session';
  if (pending) {
    if (pending.tenant !== tenant || pending.connection !== connId) refuse('in_response_to', `the RelayState belongs to a login at ${pending.tenant}/${pending.connection}, not at this connection (a response for another connection's request)`);
    // Only the browser that started the login may finish it: someone else's response (their
    // own login's, posted into this browser) would log this browser in as them (login CSRF).
    if (!sameBrowser(pending.browser, samlLoginKey(app, ctx))) refuse('browser', 'this login was started in another browser (or this browser did not send its login cookie back): start the login again here');
    expected = { id: pending.requestId, createdAt: pending.createdAt };
    returnTo = pending.returnTo;
  } else if (!conn.allow_idp_initiated) {
    refuse(relayState ? 'relay_state' : 'idp_initiated', relayState
      ? 'unknown, expired or already used RelayState (start the login again at /auth/login)'
      : 'an unsolicited response (IdP-initiated login is off for this connection)');
  } else if (relayState) {
    // Unsolicited: RelayState is only a hint of where to go, and only a path on this server.
    try { returnTo = safeReturnTo(relayState); } catch { returnTo = '/auth/session'; }
  }

  const sp = spEntityId(app, tenant, connId);
  const acs = acsUrl(app, tenant, connId);
  const expect = { idpEntityId: conn.idp_entity_id, spEntityId: sp, acsUrl: acs, inResponseTo: expected?.id ?? null, now: Date.now(), skewMs: CLOCK_SKEW_MS };
  let posted: AssertedIdentity;
  try {
    const doc = parseXml(xml, 'SAML response');
    const shape = checkResponseShape(doc, { acsUrl: acs });
    if (expected && shape.inResponseTo !== expected.id) refuse('in_response_to', `the response answers ${JSON.stringify(shape.inResponseTo)}, not the request Roost issued for this login`);
    if (!expected && shape.inResponseTo) refuse('in_response_to', 'the response answers a request, but no login of this connection is in progress for it');
    posted = checkAssertion(shape.assertion, expect);
  } catch (e) {
    if (e instanceof XmlRefused) refuse(e.check, e.message, e);
    throw e;
  }

  let verifiedXml: string;
  try {
    const { profile } = await (await samlFor({ conn, spEntityId: sp, acsUrl: acs, expected })).validatePostResponseAsync({ SAMLResponse: b64 });
    if (!profile?.getAssertionXml) return refuse('library', 'node-saml returned no assertion');
    verifiedXml = profile.getAssertionXml();
  } catch (e) {
    if (e instanceof SamlLoginFailed) throw e;
    const r = libraryRefusal(e);
    return refuse(r.check, r.message, e);
  }

  // From here on only the verified bytes are read.
  let who: AssertedIdentity;
  try {
    const verified = parseXml(verifiedXml, 'verified assertion').documentElement!;
    who = checkAssertion(verified, { ...expect, now: Date.now() });
  } catch (e) {
    if (e instanceof XmlRefused) refuse(e.check, `verified assertion: ${e.message}`, e);
    throw e;
  }
  if (who.assertionId !== posted.assertionId) refuse('signature_scope', 'the signed assertion is not the assertion in the response');
  if (!(await store.useAssertion(tenant, connId, who.assertionId, who.acceptableUntil))) refuse('replay', `assertion ${who.assertionId} was already used`);

  const all = samlClaims(who);
  const identity: Identity = {
    connection: connId, issuer: conn.idp_entity_id, subject: who.nameId,
    email: typeof all.email === 'string' ? all.email : undefined, name: typeof all.name === 'string' ? all.name : undefined,
  };
  const { grants, claims } = await grantsOfLogin(app, tenant, connId, identity, all,
    (message) => new SamlLoginFailed('no_access', message, where, { code: 'NO_ACCESS' }), ['nameid', 'nameid_format', 'groups']);
  let issued: Awaited<ReturnType<typeof issueSession>>;
  try {
    issued = await issueSession(app, { tenant, identity, idpSid: who.sessionIndex, claims, since: pending?.createdAt ?? started });
  } catch (e) {
    if (e instanceof RoostError && e.code === 'LOGIN_FAILED') refuse(/during the login/.test(e.message) ? 'connection' : 'session_size', e.message, e);
    throw e;
  }
  const { jwt, session } = issued!;
  return { jwt, returnTo, identity, grants, tenant, connection: connId, sessionExp: session.exp, nameIdFormat: who.nameIdFormat, assertionId: who.assertionId, idpInitiated: !expected };
}
