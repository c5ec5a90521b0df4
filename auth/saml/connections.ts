/**
 * SAML identity connections of a tenant (`connections/<tenant>/<id>`, beside
 * the OIDC ones, `type: "saml"`): the IdP's entity id, its HTTP-Redirect
 * single sign-on URL and its signing certificates, pinned (several at once for
 * rotation). Configured from the IdP's metadata XML or field by field. The
 * certificates are public, so nothing here is sealed.
 */
import crypto from 'node:crypto';
import type { App } from '../../src/app.js';
import { RoostError } from '../../src/errors.js';
import { onlyFields } from '../../src/http/fields.js';
import { runtimeOf } from '../runtime.js';
import { parseIdpMetadata } from './metadata.js';
import { XmlRefused } from './xml.js';
import { isLoopbackHost } from '../loopback.js';

export const NAMEID_FORMATS = {
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
  transient: 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient',
} as const;

export interface SamlConnectionRecord {
  id: string;
  tenant: string;
  type: 'saml';
  /** The IdP's entity id: the `Issuer` its assertions must carry. */
  idp_entity_id: string;
  /** Where AuthnRequests go (HTTP-Redirect binding). */
  sso_url: string;
  /** PEM certificates whose keys may sign responses; nothing else is trusted. */
  certificates: string[];
  allow_idp_initiated: boolean;
  /** The NameID format asked for in AuthnRequests (persistent unless the IdP cannot). */
  name_id_format: string;
  createdAt: string;
  updatedAt: string;
}

const ID = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
const MAX_CERTS = 5;
const MAX_METADATA_BYTES = 512 * 1024;

export function isSamlConnection(c: unknown): c is SamlConnectionRecord {
  return !!c && typeof c === 'object' && (c as { type?: unknown }).type === 'saml';
}

export function getSamlConnection(app: App, tenant: string, id: string): SamlConnectionRecord {
  const c = app.state.get<unknown>('connections', tenant, id);
  if (!isSamlConnection(c)) throw new RoostError('NOT_FOUND', `tenant "${tenant}" has no SAML connection "${id}"`);
  return c;
}

function base(app: App, tenant: string, id: string): string {
  return `${runtimeOf(app).issuer}/auth/saml/${encodeURIComponent(tenant)}/${encodeURIComponent(id)}`;
}

/** Roost's entity id for this connection (the audience its assertions must name). */
export function spEntityId(app: App, tenant: string, id: string): string {
  return `${base(app, tenant, id)}/metadata`;
}

export function acsUrl(app: App, tenant: string, id: string): string {
  return `${base(app, tenant, id)}/acs`;
}

/** Where an SP-initiated login starts in the browser (sets the browser's login cookie, then goes to the IdP). */
export function loginStartUrl(app: App, tenant: string, id: string): string {
  return `${base(app, tenant, id)}/login`;
}

function certInfo(pem: string): { subject: string; issuer: string; not_before: string; not_after: string; fingerprint_sha256: string } {
  const x = new crypto.X509Certificate(pem);
  return { subject: x.subject, issuer: x.issuer, not_before: new Date(x.validFrom).toISOString(), not_after: new Date(x.validTo).toISOString(), fingerprint_sha256: x.fingerprint256 };
}

export function samlConnectionView(app: App, c: SamlConnectionRecord): Record<string, unknown> {
  return {
    id: c.id, type: c.type, entity_id: c.idp_entity_id, sso_url: c.sso_url,
    certificates: c.certificates.map(certInfo),
    allow_idp_initiated: c.allow_idp_initiated, name_id_format: c.name_id_format,
    sp_entity_id: spEntityId(app, c.tenant, c.id), acs_url: acsUrl(app, c.tenant, c.id), metadata_url: spEntityId(app, c.tenant, c.id),
    login_url: `${runtimeOf(app).issuer}/auth/login?tenant=${encodeURIComponent(c.tenant)}&connection=${encodeURIComponent(c.id)}`,
    created_at: c.createdAt, updated_at: c.updatedAt,
  };
}

/**
 * A certificate given as PEM or as the bare base64 of metadata, as PEM. Only
 * RSA keys of 2048 bits or more: the signature algorithms Roost accepts are RSA.
 */
export function normalizeCertificate(raw: string, where: string): string {
  const body = raw.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new RoostError('INVALID_PARAMETER', `${where} is not a PEM or base64 X.509 certificate`);
  const pem = `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  let x: crypto.X509Certificate;
  try { x = new crypto.X509Certificate(pem); } catch { throw new RoostError('INVALID_PARAMETER', `${where} is not a valid X.509 certificate`); }
  const key = x.publicKey;
  if (key.asymmetricKeyType !== 'rsa' || (key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
    throw new RoostError('INVALID_PARAMETER', `${where} must hold an RSA key of at least 2048 bits (the XML signature algorithms Roost accepts are RSA-SHA256/512)`);
  }
  return pem;
}

function checkUrl(raw: unknown, field: string): string {
  if (typeof raw !== 'string' || raw.length > 2000) throw new RoostError('INVALID_PARAMETER', `${field} must be the IdP's single sign-on URL`);
  let u: URL;
  try { u = new URL(raw); } catch { throw new RoostError('INVALID_PARAMETER', `${field} must be a URL`); }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname))) throw new RoostError('INVALID_PARAMETER', `${field} must be an https URL (plain http only on loopback)`);
  if (u.hash) throw new RoostError('INVALID_PARAMETER', `${field} must not have a fragment`);
  // It is stored, audited, shown, and sent to every browser in the login redirect's Location.
  if (u.username || u.password) throw new RoostError('INVALID_PARAMETER', `${field} must not hold a user or password (a browser is sent to it, credentials and all)`);
  return u.href;
}

/** Validates a create (all fields) or a patch (`existing` given) body into a record. */
export function parseSamlConnection(app: App, tenant: string, raw: unknown, existing?: SamlConnectionRecord): SamlConnectionRecord {
  const b = raw as Record<string, unknown>;
  if (!b || typeof b !== 'object' || Array.isArray(b)) throw new RoostError('INVALID_PARAMETER', 'send a JSON object');
  if (b.type !== undefined && b.type !== 'saml') throw new RoostError('INVALID_PARAMETER', 'a connection\'s type cannot change; delete it and create another');
  onlyFields(b, ['id', 'type', 'metadata_xml', 'entity_id', 'sso_url', 'certificates', 'allow_idp_initiated', 'name_id_format'], 'a SAML connection',
    ['sp_entity_id', 'acs_url', 'metadata_url', 'login_url', 'created_at', 'updated_at']);
  const id = existing?.id ?? b.id;
  if (typeof id !== 'string' || !ID.test(id)) throw new RoostError('INVALID_PARAMETER', 'id must be 1-40 characters of a-z, 0-9 and -');
  if (existing && b.id !== undefined && b.id !== existing.id) throw new RoostError('INVALID_PARAMETER', 'a connection\'s id cannot change');
  let entityId = existing?.idp_entity_id;
  let ssoUrl = existing?.sso_url;
  let certs = existing?.certificates;
  if (b.metadata_xml !== undefined) {
    if (typeof b.metadata_xml !== 'string' || !b.metadata_xml || Buffer.byteLength(b.metadata_xml) > MAX_METADATA_BYTES) throw new RoostError('INVALID_PARAMETER', `metadata_xml must be the IdP's metadata document (at most ${MAX_METADATA_BYTES} bytes)`);
    let m;
    try { m = parseIdpMetadata(b.metadata_xml); } catch (e) {
      if (e instanceof XmlRefused) throw new RoostError('INVALID_PARAMETER', `metadata_xml: ${e.message}`);
      throw e;
    }
    entityId = m.entityId;
    ssoUrl = m.ssoUrl;
    certs = m.certificates;
  }
  if (b.entity_id !== undefined) entityId = b.entity_id as string;
  if (b.sso_url !== undefined) ssoUrl = b.sso_url as string;
  if (b.certificates !== undefined) {
    if (!Array.isArray(b.certificates) || !b.certificates.every((c) => typeof c === 'string')) throw new RoostError('INVALID_PARAMETER', 'certificates must be a list of PEM certificates');
    certs = b.certificates as string[];
  }
  if (typeof entityId !== 'string' || !entityId || entityId.length > 1024 || /[\s<>"]/.test(entityId)) throw new RoostError('INVALID_PARAMETER', 'entity_id (the IdP\'s entity id) is required, or send metadata_xml');
  ssoUrl = checkUrl(ssoUrl, 'sso_url');
  if (!certs || certs.length === 0) throw new RoostError('INVALID_PARAMETER', 'certificates: at least one IdP signing certificate is required (they are pinned: a certificate inside a response is never trusted)');
  if (certs.length > MAX_CERTS) throw new RoostError('INVALID_PARAMETER', `certificates: at most ${MAX_CERTS}`);
  const pems = [...new Set(certs.map((c, i) => normalizeCertificate(c, `certificates[${i}]`)))];
  const allow = b.allow_idp_initiated ?? existing?.allow_idp_initiated ?? false;
  if (typeof allow !== 'boolean') throw new RoostError('INVALID_PARAMETER', 'allow_idp_initiated must be true or false');
  let format = (b.name_id_format ?? existing?.name_id_format ?? NAMEID_FORMATS.persistent) as string;
  if (typeof format !== 'string') throw new RoostError('INVALID_PARAMETER', 'name_id_format must be a string');
  if (Object.hasOwn(NAMEID_FORMATS, format)) format = NAMEID_FORMATS[format as keyof typeof NAMEID_FORMATS];
  if (!(Object.values(NAMEID_FORMATS) as string[]).includes(format)) throw new RoostError('INVALID_PARAMETER', `name_id_format must be one of ${Object.keys(NAMEID_FORMATS).join(', ')} (or its URN)`);
  const now = new Date().toISOString();
  return {
    id, tenant, type: 'saml', idp_entity_id: entityId, sso_url: ssoUrl, certificates: pems,
    allow_idp_initiated: allow, name_id_format: format,
    createdAt: existing?.createdAt ?? now, updatedAt: now,
  };
}
