/**
 * The seam to `openid-client`: discovery per connection (cached), the IdP's
 * JWKS for access and logout tokens, and the one place where the library's
 * errors become `RoostError`s with a reason fit for the audit log. Every request
 * the server sends for a connection goes through `#guardedFetch`: only to hosts
 * the operator allows (`--idp-hosts`, auth/oidc/idp-hosts.ts), never following a
 * redirect; a refusal is audited (`idp.request`, denied) where it is decided.
 */
import * as oidc from 'openid-client';
import * as jose from 'jose';
import type { App } from '../../src/app.js';
import { RoostError } from '../../src/errors.js';
import type { ConnectionRecord } from './connections.js';
import { hostLabel, idpUrlRefusal, type IdpHostEntry, type IdpHosts } from './idp-hosts.js';
import { auditAuth } from '../runtime.js';
import { markAudited } from '../authorize.js';
import { isLoopbackHost } from '../loopback.js';

/** Signature algorithms accepted from IdPs: asymmetric only (never `none`, never HMAC). */
export const IDP_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const DISCOVERY_TTL_MS = 10 * 60_000;
/**
 * Seconds of clock difference allowed on `exp`/`nbf`/`iat` of IdP-signed JWTs (ID tokens,
 * access tokens, logout tokens): openid-client's own 30 s, so Roost's second check of an
 * ID token does not refuse what the library accepted (an IdP a second ahead, whose ID tokens
 * carry `nbf`, failed logins at random).
 */
export const IDP_CLOCK_TOLERANCE_S = 30;

/**
 * A request the server would not send for a connection (a host the operator does not allow, a
 * redirect): a login failure (401 `LOGIN_FAILED`) saying why, audited where it was decided.
 */
export class IdpRequestRefused extends RoostError {
  constructor(message: string, details: Record<string, unknown>) {
    super('LOGIN_FAILED', message, { details });
    this.name = 'IdpRequestRefused';
  }
}

/** The refusal inside an error the libraries wrapped (openid-client wraps what its fetch throws). */
export function requestRefusal(e: unknown): IdpRequestRefused | undefined {
  for (let c: unknown = e, i = 0; c && typeof c === 'object' && i < 5; c = (c as { cause?: unknown }).cause, i++) {
    if (c instanceof IdpRequestRefused) return c;
  }
  return undefined;
}

/** A request's URL as messages name it: the discovery document whole, an endpoint by its host. */
function describe(u: URL, what: string): string {
  return what === 'discovery document' ? `discovery document ${u.origin}${u.pathname}` : `${what} on ${u.protocol}//${hostLabel(u)}`;
}

/** The server metadata an IdP's documents are fetched from, by what Roost fetches them for. */
const FETCHED_ENDPOINTS = ['jwks_uri', 'token_endpoint', 'userinfo_endpoint'] as const;

/** Turns an openid-client / oauth4webapi / jose error into a RoostError; keeps `cause`. */
export function oidcError(e: unknown, what: string): RoostError {
  if (e instanceof RoostError) return e;
  const refused = requestRefusal(e);
  if (refused) return refused;
  const err = e as { code?: string; message?: string; error?: string; error_description?: string; cause?: unknown };
  if (err.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || err.code === 'ECONNREFUSED' || (err as Error).name === 'TypeError' && /fetch failed/.test(String(err.message))) {
    return new RoostError('IDP_UNAVAILABLE', `${what}: the identity provider did not answer properly (${err.message ?? 'unreachable'})`, { cause: e });
  }
  // A refused ID token claim (nonce, iss, aud, ...) is named, so the audit record says which check failed.
  let claim: unknown;
  for (let c: unknown = err.cause, i = 0; c && typeof c === 'object' && i < 4 && claim === undefined; c = (c as { cause?: unknown }).cause, i++) {
    claim = (c as { claim?: unknown }).claim;
  }
  const reason = (err.error ? `${err.error}${err.error_description ? `: ${err.error_description}` : ''}` : (err.message ?? String(e)))
    + (typeof claim === 'string' ? ` (claim "${claim}")` : '');
  return new RoostError('LOGIN_FAILED', `${what}: ${reason}`, { cause: e, details: err.code ? { reason_code: err.code } : undefined });
}

export class OidcClients {
  #app: App;
  #configs = new Map<string, { at: number; config: Promise<oidc.Configuration> }>();
  #jwks = new Map<string, ReturnType<typeof jose.createRemoteJWKSet>>();
  /** The operator's list (a copy: the development IdP may be added); undefined: any https host. */
  #hosts: IdpHosts | undefined;

  constructor(app: App) {
    this.#app = app;
    const h = app.config.idpHosts;
    this.#hosts = h && { any: h.any, entries: [...h.entries], spec: h.spec };
  }

  /** Why the server may not send requests to `u` for a connection (undefined: it may). */
  refusal(u: URL): string | undefined {
    return idpUrlRefusal(this.#hosts, u);
  }

  /** `--dev`: the in-process development IdP, which the server started itself, is allowed too. */
  allowDevIssuer(issuer: string): void {
    const u = new URL(issuer);
    if (this.#hosts && !this.#hosts.any && this.refusal(u)) {
      (this.#hosts.entries as IdpHostEntry[]).push({ host: u.hostname, wildcard: false, port: u.port || undefined });
    }
  }

  /** The discovered client configuration of a connection (re-discovered every 10 minutes or on change). */
  async config(conn: ConnectionRecord): Promise<oidc.Configuration> {
    const key = `${conn.tenant}/${conn.id}/${conn.updatedAt}`;
    const hit = this.#configs.get(key);
    if (hit && Date.now() - hit.at < DISCOVERY_TTL_MS) return hit.config;
    const p = this.#discover(conn);
    this.#configs.set(key, { at: Date.now(), config: p });
    p.catch(() => this.#configs.delete(key));
    try {
      return await p;
    } catch (e) {
      throw oidcError(e, `discovery of ${conn.issuer} failed`);
    }
  }

  async #discover(conn: ConnectionRecord): Promise<oidc.Configuration> {
    const issuer = new URL(conn.issuer);
    let auth: oidc.ClientAuth;
    const metadata: Partial<oidc.ClientMetadata> = {};
    if (conn.private_key_sealed) {
      const jwk = JSON.parse(this.#app.secrets.open(conn.private_key_sealed)) as jose.JWK;
      const key = await jose.importJWK(jwk, jwk.alg ?? 'RS256') as CryptoKey;
      auth = oidc.PrivateKeyJwt({ key, kid: jwk.kid } as oidc.PrivateKey);
    } else if (conn.client_secret_sealed) {
      const secret = this.#app.secrets.open(conn.client_secret_sealed);
      metadata.client_secret = secret;
      auth = oidc.ClientSecretBasic(secret);
    } else {
      auth = oidc.None();
    }
    // ID token signatures are verified in the callback with the same JWKS cache as access
    // tokens (refetched on an unknown kid after 1 s, where openid-client waits 60 s).
    const execute: Array<(c: oidc.Configuration) => void> = [];
    if (issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname)) execute.push(oidc.allowInsecureRequests);
    // The discovery request and every later one of this configuration (token, UserInfo) go
    // through the guard; which endpoint a URL is, once the metadata is known, names it in refusals.
    let known: oidc.ServerMetadata | undefined;
    const purpose = (u: URL): string => {
      if (!known) return 'discovery document';
      const at = u.origin + u.pathname;
      for (const [k, v] of Object.entries(known)) {
        if (typeof v !== 'string') continue;
        try { const m = new URL(v); if (m.origin + m.pathname === at) return k; } catch { /* not a URL */ }
      }
      return 'endpoint';
    };
    const config = await oidc.discovery(issuer, conn.client_id, metadata, auth, { execute, timeout: 10, [oidc.customFetch]: this.#guardedFetch(conn, purpose) });
    const m = config.serverMetadata();
    known = m;
    // The endpoints Roost will fetch are checked now, so a login is refused before the browser
    // goes to the IdP rather than after; the guard checks each request again when it is sent.
    for (const k of FETCHED_ENDPOINTS) {
      const v = m[k];
      if (typeof v !== 'string') continue;
      let u: URL;
      try { u = new URL(v); } catch { continue; /* the library refuses it when it is used */ }
      const why = this.refusal(u);
      if (why) throw this.#refuse(conn, u, k, `the server does not contact the identity provider's ${describe(u, k)}: ${why}`);
    }
    const algs = m.id_token_signing_alg_values_supported;
    if (algs && !algs.some((a) => IDP_ALGS.includes(a))) throw new RoostError('LOGIN_FAILED', `the IdP signs ID tokens only with ${algs.join(', ')}; Roost accepts ${IDP_ALGS.join(', ')}`);
    return config;
  }

  /**
   * The IdP's key set (refetched on an unknown key id, at most once a second). One per connection
   * and URL: its requests are the connection's, refused and audited as such.
   */
  jwks(conn: ConnectionRecord, jwksUri: string): ReturnType<typeof jose.createRemoteJWKSet> {
    const key = `${conn.tenant}/${conn.id}\n${jwksUri}`;
    let j = this.#jwks.get(key);
    if (!j) {
      j = jose.createRemoteJWKSet(new URL(jwksUri), { cooldownDuration: 1000, cacheMaxAge: 10 * 60_000, timeoutDuration: 10_000, [jose.customFetch]: this.#guardedFetch(conn, () => 'jwks_uri') });
      this.#jwks.set(key, j);
    }
    return j;
  }

  /**
   * fetch for one connection's requests: a URL the operator's list does not allow is never
   * contacted, and a redirect is never followed (openid-client and jose ask for `manual`; this
   * insists, and refuses a 3xx answer with a reason rather than a bare status error).
   */
  #guardedFetch(conn: ConnectionRecord, purpose: (u: URL) => string): (url: string, init: object) => Promise<Response> {
    return async (url, init) => {
      const u = new URL(url);
      const what = purpose(u);
      const why = this.refusal(u);
      if (why) throw this.#refuse(conn, u, what, `the server does not contact the identity provider's ${describe(u, what)}: ${why}`);
      const res = await fetch(url, { ...(init as RequestInit), redirect: 'manual' });
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel().catch(() => {});
        const location = res.headers.get('location');
        let to: URL | undefined;
        try { to = location ? new URL(location, u) : undefined; } catch { /* named as sent */ }
        throw this.#refuse(conn, u, what, `the identity provider's ${describe(u, what)} answered with a redirect (${res.status}${to ? ` to ${to.protocol}//${hostLabel(to)}` : ''}), which the server does not follow: the IdP must answer at the URL itself`, { redirect_to: to?.href ?? location });
      }
      return res;
    };
  }

  /** Audits a refused request of a connection and answers the error to throw. */
  #refuse(conn: ConnectionRecord, u: URL, what: string, message: string, extra: Record<string, unknown> = {}): IdpRequestRefused {
    const err = new IdpRequestRefused(message, { idp_request: what, host: hostLabel(u) });
    auditAuth(this.#app, {
      event: 'idp.request', outcome: 'denied', tenant: conn.tenant, connection: conn.id, resource: `connection:${conn.id}`,
      reason: err.message, details: { url: u.href, host: hostLabel(u), request: what, issuer: conn.issuer, ...extra },
    });
    markAudited(err);
    return err;
  }
}
