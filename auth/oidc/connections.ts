/**
 * OIDC identity connections of a tenant (`connections/<tenant>/<id>`): issuer,
 * client id, a client secret or a private key (sealed with the server key,
 * never answered), scopes, and whether the IdP's own access tokens are
 * accepted as bearer credentials (then `audience` is required).
 */
import type { App } from '../../src/app.js';
import { RoostError } from '../../src/errors.js';
import { onlyFields } from '../../src/http/fields.js';
import { runtimeOf } from '../runtime.js';
import { hostLabel } from './idp-hosts.js';
import { isLoopbackHost } from '../loopback.js';
import type { SamlConnectionRecord } from '../saml/connections.js';

export interface ConnectionRecord {
  id: string;
  tenant: string;
  type: 'oidc';
  issuer: string;
  client_id: string;
  client_secret_sealed?: string;
  private_key_sealed?: string;
  scopes: string[];
  accept_idp_access_tokens: boolean;
  audience?: string;
  createdAt: string;
  updatedAt: string;
}

const ID = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

/** Any connection in `connections/<tenant>/<id>`: OIDC (this file) or SAML (auth/saml/connections.ts). */
export type StoredConnection = ConnectionRecord | SamlConnectionRecord;

/** An OIDC connection; a SAML one of that id answers NOT_FOUND here. */
export function getConnection(app: App, tenant: string, id: string): ConnectionRecord {
  const c = app.state.get<StoredConnection>('connections', tenant, id);
  if (!c || c.type !== 'oidc') throw new RoostError('NOT_FOUND', `tenant "${tenant}" has no ${c ? 'OIDC ' : ''}connection "${id}"`);
  return c;
}

/** Every connection of the tenant, OIDC and SAML. */
export function listConnections(app: App, tenant: string): StoredConnection[] {
  return app.state.list<StoredConnection>('connections', tenant);
}

/** Who authenticates through a connection: the OIDC issuer or the SAML IdP's entity id. */
export function connectionIdp(c: StoredConnection): string {
  return c.type === 'saml' ? c.idp_entity_id : c.issuer;
}

export function callbackUrl(app: App, tenant: string, id: string): string {
  return `${runtimeOf(app).issuer}/auth/oidc/${encodeURIComponent(tenant)}/${encodeURIComponent(id)}/callback`;
}

/** What an OIDC connection's body may set. */
const OIDC_FIELDS = ['id', 'type', 'issuer', 'client_id', 'client_secret', 'private_key_jwk', 'scopes', 'accept_idp_access_tokens', 'audience'];
/** What connectionView shows besides. */
const OIDC_VIEW_FIELDS = ['client_secret_set', 'private_key_jwk_set', 'callback_url', 'backchannel_logout_url', 'login_url', 'created_at', 'updated_at'];

export function connectionView(app: App, c: ConnectionRecord): Record<string, unknown> {
  const base = `${runtimeOf(app).issuer}/auth/oidc/${encodeURIComponent(c.tenant)}/${encodeURIComponent(c.id)}`;
  return {
    id: c.id, type: c.type, issuer: c.issuer, client_id: c.client_id, scopes: c.scopes,
    client_secret_set: !!c.client_secret_sealed, private_key_jwk_set: !!c.private_key_sealed,
    accept_idp_access_tokens: c.accept_idp_access_tokens, audience: c.audience ?? null,
    callback_url: `${base}/callback`, backchannel_logout_url: `${base}/backchannel-logout`,
    login_url: `${runtimeOf(app).issuer}/auth/login?tenant=${encodeURIComponent(c.tenant)}&connection=${encodeURIComponent(c.id)}`,
    created_at: c.createdAt, updated_at: c.updatedAt,
  };
}

/** Issuer identifiers compare as URLs (`https://idp` and `https://idp/` are the same). */
export function sameIssuer(a: string, b: string): boolean {
  try { return new URL(a).href === new URL(b).href; } catch { return false; }
}

/** Validates a create (all fields) or a patch (`existing` given) body into a record. */
export function parseConnection(app: App, tenant: string, raw: unknown, existing?: ConnectionRecord): ConnectionRecord {
  const b = raw as Record<string, unknown>;
  if (!b || typeof b !== 'object' || Array.isArray(b)) throw new RoostError('INVALID_PARAMETER', 'send a JSON object');
  const type = b.type ?? existing?.type ?? 'oidc';
  if (type !== 'oidc') throw new RoostError('INVALID_PARAMETER', 'type must be "oidc" or "saml"');
  // A misspelt `accept_idp_access_token` or `audiance` left IdP tokens off without a word.
  onlyFields(b, OIDC_FIELDS, 'an OIDC connection', OIDC_VIEW_FIELDS);
  const id = existing?.id ?? b.id;
  if (typeof id !== 'string' || !ID.test(id)) throw new RoostError('INVALID_PARAMETER', 'id must be 1-40 characters of a-z, 0-9 and -');
  if (existing && b.id !== undefined && b.id !== existing.id) throw new RoostError('INVALID_PARAMETER', 'a connection\'s id cannot change');
  const issuer = b.issuer ?? existing?.issuer;
  if (typeof issuer !== 'string') throw new RoostError('INVALID_PARAMETER', 'issuer is required (the IdP\'s issuer URL)');
  let u: URL;
  try { u = new URL(issuer); } catch { throw new RoostError('INVALID_PARAMETER', 'issuer must be a URL'); }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname))) throw new RoostError('INVALID_PARAMETER', 'issuer must be an https URL (plain http only on loopback)');
  if (u.search || u.hash) throw new RoostError('INVALID_PARAMETER', 'issuer must not have a query or fragment');
  // A user or password in the URL would be stored, audited and shown as part of the issuer (to
  // anyone, in the login chooser's errors): an IdP is never reached with credentials in its URL.
  if (u.username || u.password) throw new RoostError('INVALID_PARAMETER', 'issuer must not hold a user or password (https://host/path only); the client_secret or private_key_jwk authenticates Roost to the IdP');
  // Checked at every write (a patch of another field too): what is stored is what the server may use.
  const refused = runtimeOf(app).oidc.refusal(u);
  if (refused) throw new RoostError('IDP_HOST_NOT_ALLOWED', `issuer ${issuer}: ${refused}; ask the server's operator to allow ${hostLabel(u)}`, { details: { host: hostLabel(u) } });
  const clientId = b.client_id ?? existing?.client_id;
  if (typeof clientId !== 'string' || !clientId || clientId.length > 256) throw new RoostError('INVALID_PARAMETER', 'client_id is required');
  const scopes = b.scopes ?? existing?.scopes ?? ['openid', 'email', 'profile'];
  if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))) throw new RoostError('INVALID_PARAMETER', 'scopes must be a list of scope names');
  if (!scopes.includes('openid')) scopes.unshift('openid');
  const accept = b.accept_idp_access_tokens ?? existing?.accept_idp_access_tokens ?? false;
  if (typeof accept !== 'boolean') throw new RoostError('INVALID_PARAMETER', 'accept_idp_access_tokens must be true or false');
  const audience = b.audience === null ? undefined : (b.audience ?? existing?.audience);
  if (audience !== undefined && (typeof audience !== 'string' || !audience)) throw new RoostError('INVALID_PARAMETER', 'audience must be a string');
  if (accept && !audience) throw new RoostError('INVALID_PARAMETER', 'accepting IdP access tokens needs the audience they are issued for (audience)');
  let secretSealed = existing?.client_secret_sealed;
  let keySealed = existing?.private_key_sealed;
  if (b.client_secret !== undefined) {
    if (b.client_secret !== null && (typeof b.client_secret !== 'string' || !b.client_secret)) throw new RoostError('INVALID_PARAMETER', 'client_secret must be a string');
    secretSealed = b.client_secret ? app.secrets.seal(b.client_secret as string) : undefined;
  }
  if (b.private_key_jwk !== undefined) {
    const k = b.private_key_jwk as Record<string, unknown> | null;
    if (k !== null && (typeof k !== 'object' || typeof k.kty !== 'string' || !('d' in k))) throw new RoostError('INVALID_PARAMETER', 'private_key_jwk must be a private JWK (with "d")');
    keySealed = k ? app.secrets.seal(JSON.stringify(k)) : undefined;
  }
  const now = new Date().toISOString();
  return {
    id, tenant, type: 'oidc', issuer, client_id: clientId,
    ...(secretSealed ? { client_secret_sealed: secretSealed } : {}),
    ...(keySealed ? { private_key_sealed: keySealed } : {}),
    scopes: scopes as string[], accept_idp_access_tokens: accept, ...(audience ? { audience } : {}),
    createdAt: existing?.createdAt ?? now, updatedAt: now,
  };
}
