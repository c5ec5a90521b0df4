/**
 * Metadata both ways: reading an IdP's `EntityDescriptor` (entity id, the
 * HTTP-Redirect single sign-on URL, signing certificates) and writing Roost's
 * SP metadata for one connection (node-saml's generator).
 */
import { nodeSaml } from './library.js';
import { children, COMMENT_NODE, descendants, NS, parseXml, text, XmlRefused } from './xml.js';

const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';

export interface IdpMetadata { entityId: string; ssoUrl: string; certificates: string[] }

/** Reads an IdP's metadata; the certificates still go through `normalizeCertificate`. */
export function parseIdpMetadata(xml: string): IdpMetadata {
  const doc = parseXml(xml, 'metadata');
  const root = doc.documentElement!;
  if (root.namespaceURI !== NS.metadata || root.localName !== 'EntityDescriptor') throw new XmlRefused('metadata', 'the root element must be one md:EntityDescriptor (one IdP)');
  const entityId = root.getAttribute('entityID') ?? '';
  if (!entityId) throw new XmlRefused('metadata', 'EntityDescriptor has no entityID');
  const idps = children(root, NS.metadata, 'IDPSSODescriptor');
  if (idps.length !== 1) throw new XmlRefused('metadata', `expected one IDPSSODescriptor, found ${idps.length}`);
  const idp = idps[0]!;
  const sso = children(idp, NS.metadata, 'SingleSignOnService').find((s) => s.getAttribute('Binding') === REDIRECT);
  if (!sso || !sso.getAttribute('Location')) throw new XmlRefused('metadata', 'the IdP has no SingleSignOnService with the HTTP-Redirect binding (Roost sends AuthnRequests by redirect)');
  const certificates: string[] = [];
  for (const kd of children(idp, NS.metadata, 'KeyDescriptor')) {
    const use = kd.getAttribute('use');
    if (use && use !== 'signing') continue;
    for (const ki of children(kd, NS.dsig, 'KeyInfo')) {
      for (const xd of children(ki, NS.dsig, 'X509Data')) {
        for (const c of children(xd, NS.dsig, 'X509Certificate')) {
          // A comment inside a certificate would be read by textContent as nothing: refuse the oddity.
          if ([...descendants(c)].some((n) => n.nodeType === COMMENT_NODE)) throw new XmlRefused('metadata', 'a comment inside X509Certificate');
          const t = text(c);
          if (t) certificates.push(t);
        }
      }
    }
  }
  if (certificates.length === 0) throw new XmlRefused('metadata', 'the IdP metadata has no signing certificate (KeyDescriptor use="signing")');
  return { entityId, ssoUrl: sso.getAttribute('Location')!, certificates };
}

/** Roost's SP metadata for one connection: entity id, ACS (HTTP-POST), wanted NameID format, signed assertions wanted. */
export async function spMetadataXml(input: { entityId: string; acsUrl: string; nameIdFormat: string }): Promise<string> {
  const { generateServiceProviderMetadata } = await nodeSaml();
  return generateServiceProviderMetadata({
    issuer: input.entityId,
    callbackUrl: input.acsUrl,
    identifierFormat: input.nameIdFormat,
    wantAssertionsSigned: true,
  });
}
