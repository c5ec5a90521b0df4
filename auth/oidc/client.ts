/**
 * The seam to `openid-client`: discovery per connection (cached), the IdP's
 * JWKS for access and logout tokens, and the one place where the library's
 * errors become `RoostError`s with a reason fit for the audit log.
 */
import * as oidc from 'openid-client';
import * as jose from 'jose';
import type { App } from '../../src/app.js';
import { RoostError } from '../../src/errors.js';
import type { ConnectionRecord } from './connections.js';

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

function isLoopback(u: URL): boolean {
  const h = u.hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || h.startsWith('127.');
}

/** Turns an openid-client / oauth4webapi / jose error into a RoostError; keeps `cause`. */
export function oidcError(e: unknown, what: string): RoostError {
  if (e instanceof RoostError) return e;
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

  constructor(app: App) {
    this.#app = app;
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
    if (issuer.protocol === 'http:' && isLoopback(issuer)) execute.push(oidc.allowInsecureRequests);
    const config = await oidc.discovery(issuer, conn.client_id, metadata, auth, { execute, timeout: 10 });
    const m = config.serverMetadata();
    const algs = m.id_token_signing_alg_values_supported;
    if (algs && !algs.some((a) => IDP_ALGS.includes(a))) throw new RoostError('LOGIN_FAILED', `the IdP signs ID tokens only with ${algs.join(', ')}; Roost accepts ${IDP_ALGS.join(', ')}`);
    return config;
  }

  /** The IdP's key set (refetched on an unknown key id, at most once a second). */
  jwks(jwksUri: string): ReturnType<typeof jose.createRemoteJWKSet> {
    let j = this.#jwks.get(jwksUri);
    if (!j) {
      j = jose.createRemoteJWKSet(new URL(jwksUri), { cooldownDuration: 1000, cacheMaxAge: 10 * 60_000, timeoutDuration: 10_000 });
      this.#jwks.set(jwksUri, j);
    }
    return j;
  }
}
