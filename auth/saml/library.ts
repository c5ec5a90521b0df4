/**
 * The seam to `@node-saml/node-saml`: one configured `SAML` per use, and the
 * one place where its errors (plain `Error`s with messages, no codes) become
 * named checks for the audit log. The library verifies the XML signature with
 * the connection's pinned certificates only (never a KeyInfo certificate),
 * reads only the signed bytes, and checks timestamps, audience and
 * InResponseTo through a cache view bound to this login.
 *
 * The library (with xml-crypto, xml2js and xmlbuilder) is loaded on first use,
 * not at server start: a server without SAML logins never pays the ~0.1 s of
 * CPU that loading it costs.
 */
import type { SAML, CacheProvider } from '@node-saml/node-saml';
import type { SamlConnectionRecord } from './connections.js';
import { SAML_PENDING_TTL_MS } from './pending.js';

type NodeSaml = typeof import('@node-saml/node-saml');
let loaded: NodeSaml | undefined;

/** The library, loaded once on first use. */
export async function nodeSaml(): Promise<NodeSaml> {
  return (loaded ??= await import('@node-saml/node-saml'));
}

/** Clock skew accepted on NotBefore / NotOnOrAfter. */
export const CLOCK_SKEW_MS = 60_000;

export interface SamlSetup {
  conn: SamlConnectionRecord;
  spEntityId: string;
  acsUrl: string;
  /** The request this response must answer (its id and when it was issued), or none for IdP-initiated. */
  expected?: { id: string; createdAt: number };
  /** The AuthnRequest id to use when building a request. */
  requestId?: string;
}

/**
 * node-saml's request-id cache, reduced to one entry: the id of the request
 * Roost issued for this login of this connection (from `samlPending`). Any
 * other id is unknown. Saving is a no-op: Roost stores the request itself.
 */
function boundCache(expected: SamlSetup['expected']): CacheProvider {
  return {
    async saveAsync(key, value) { return { value, createdAt: Date.now() }; },
    async getAsync(key) { return expected && key === expected.id ? new Date(expected.createdAt).toISOString() : null; },
    async removeAsync() { return null; },
  };
}

export async function samlFor(s: SamlSetup): Promise<SAML> {
  const { SAML, ValidateInResponseTo } = await nodeSaml();
  return new SAML({
    idpCert: s.conn.certificates,
    issuer: s.spEntityId,
    callbackUrl: s.acsUrl,
    entryPoint: s.conn.sso_url,
    audience: s.spEntityId,
    idpIssuer: s.conn.idp_entity_id,
    identifierFormat: s.conn.name_id_format,
    allowCreate: true,
    disableRequestedAuthnContext: true,
    // Either the response or its assertion must be signed (the rule); unsigned is refused either way.
    wantAssertionsSigned: false,
    wantAuthnResponseSigned: false,
    acceptedClockSkewMs: CLOCK_SKEW_MS,
    validateInResponseTo: s.expected ? ValidateInResponseTo.always : ValidateInResponseTo.never,
    requestIdExpirationPeriodMs: SAML_PENDING_TTL_MS,
    cacheProvider: boundCache(s.expected),
    generateUniqueId: () => s.requestId ?? '_unused',
    signatureAlgorithm: 'sha256',
  });
}

/** A library refusal as (check, message). */
export function libraryRefusal(e: unknown): { check: string; message: string } {
  const m = e instanceof Error ? e.message : String(e);
  // An error of the library means the library is loaded.
  if (loaded && e instanceof loaded.SamlStatusError) return { check: 'idp_status', message: m };
  const rules: Array<[RegExp, string]> = [
    [/multiple assertions|more than one element/i, 'assertion_count'],
    [/signature|signed/i, 'signature'],
    [/not yet valid/i, 'not_yet_valid'],
    [/expired|too old/i, 'expired'],
    [/audience/i, 'audience'],
    [/InResponseTo/i, 'in_response_to'],
    [/subject confirmation/i, 'bearer'],
  ];
  for (const [re, check] of rules) if (re.test(m)) return { check, message: `node-saml: ${m}` };
  return { check: 'library', message: `node-saml: ${m}` };
}
