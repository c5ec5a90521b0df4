/**
 * Checks on the whole posted `samlp:Response`, before and beside the
 * library's signature check: one Response, exactly one Assertion anywhere in
 * the document (this alone defeats every XSW variant, each of which smuggles
 * a second Assertion or Response into the tree), unique IDs, no comments or
 * processing instructions, every signature enveloped on the Response or the
 * Assertion with one reference to its parent, allowed algorithms only, and
 * `Destination` equal to the ACS URL. Refusing here never grants anything;
 * what is accepted is read later from the signed bytes only.
 */
import { byLocalName, children, COMMENT_NODE, descendants, ELEMENT_NODE, NS, PROCESSING_INSTRUCTION_NODE, XmlRefused } from './xml.js';

/** Canonicalization without comments only. */
export const C14N_ALGORITHMS = new Set(['http://www.w3.org/2001/10/xml-exc-c14n#', 'http://www.w3.org/TR/2001/REC-xml-c14n-20010315']);
export const TRANSFORM_ALGORITHMS = new Set(['http://www.w3.org/2000/09/xmldsig#enveloped-signature', ...C14N_ALGORITHMS]);
/** RSA with SHA-256 or SHA-512: no SHA-1, no HMAC. */
export const SIGNATURE_ALGORITHMS = new Set(['http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512']);
export const DIGEST_ALGORITHMS = new Set(['http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2001/04/xmlenc#sha512']);

const SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

export interface ResponseShape {
  response: Element;
  assertion: Element;
  responseSigned: boolean;
  assertionSigned: boolean;
  /** `InResponseTo` of the Response element (unsigned unless the Response is signed). */
  inResponseTo: string | null;
}

function algorithmOf(parent: Element, local: string, what: string): string {
  const els = children(parent, NS.dsig, local);
  if (els.length !== 1) throw new XmlRefused('signature_shape', `${what}: expected one ${local}, found ${els.length}`);
  return els[0]!.getAttribute('Algorithm') ?? '';
}

/** One signature: enveloped in `parent`, one reference to it, allowed algorithms and transforms. */
function checkSignature(sig: Element, parent: Element): void {
  const where = `the signature of ${parent.localName}`;
  const signedInfo = children(sig, NS.dsig, 'SignedInfo');
  if (signedInfo.length !== 1) throw new XmlRefused('signature_shape', `${where} has ${signedInfo.length} SignedInfo elements`);
  const si = signedInfo[0]!;
  if (children(sig, NS.dsig, 'Object').length > 0) throw new XmlRefused('signature_shape', `${where} carries ds:Object content (refused: wrapped content is never read)`);
  const c14n = algorithmOf(si, 'CanonicalizationMethod', where);
  if (!C14N_ALGORITHMS.has(c14n)) throw new XmlRefused('algorithm', `${where} uses canonicalization ${c14n || '(none)'}; allowed: exclusive or inclusive C14N without comments`);
  const alg = algorithmOf(si, 'SignatureMethod', where);
  if (!SIGNATURE_ALGORITHMS.has(alg)) throw new XmlRefused('algorithm', `${where} uses signature algorithm ${alg || '(none)'}; allowed: RSA-SHA256, RSA-SHA512 (no SHA-1, no HMAC)`);
  const refs = children(si, NS.dsig, 'Reference');
  if (refs.length !== 1) throw new XmlRefused('signature_shape', `${where} has ${refs.length} references (exactly one allowed)`);
  const ref = refs[0]!;
  const id = parent.getAttribute('ID');
  if (!id || ref.getAttribute('URI') !== `#${id}`) throw new XmlRefused('signature_reference', `${where} references ${JSON.stringify(ref.getAttribute('URI'))}, not its own element (#${id ?? ''})`);
  const transforms = children(ref, NS.dsig, 'Transforms').flatMap((t) => children(t, NS.dsig, 'Transform'));
  if (transforms.length > 2) throw new XmlRefused('signature_shape', `${where} has ${transforms.length} transforms (at most 2)`);
  for (const t of transforms) {
    const a = t.getAttribute('Algorithm') ?? '';
    if (!TRANSFORM_ALGORITHMS.has(a)) throw new XmlRefused('algorithm', `${where} uses transform ${a || '(none)'}; allowed: enveloped signature and C14N without comments`);
  }
  const digest = algorithmOf(ref, 'DigestMethod', where);
  if (!DIGEST_ALGORITHMS.has(digest)) throw new XmlRefused('algorithm', `${where} uses digest ${digest || '(none)'}; allowed: SHA-256, SHA-512 (no SHA-1)`);
}

export function checkResponseShape(doc: Document, expect: { acsUrl: string }): ResponseShape {
  for (const n of descendants(doc)) {
    if (n.nodeType === COMMENT_NODE) throw new XmlRefused('comment', 'the response contains an XML comment (refused: comments can split signed text, e.g. admin@corp.com<!---->.evil.com)');
    if (n.nodeType === PROCESSING_INSTRUCTION_NODE && (n as ProcessingInstruction).target.toLowerCase() !== 'xml') throw new XmlRefused('xml', 'the response contains a processing instruction');
  }
  const response = doc.documentElement!;
  if (response.namespaceURI !== NS.protocol || response.localName !== 'Response') throw new XmlRefused('shape', `the document is a ${response.localName}, not a samlp:Response`);
  if (response.getAttribute('Version') !== '2.0') throw new XmlRefused('shape', 'the response is not SAML 2.0');
  const status = children(response, NS.protocol, 'Status')[0];
  const code = status ? children(status, NS.protocol, 'StatusCode')[0]?.getAttribute('Value') : undefined;
  if (code !== SUCCESS) throw new XmlRefused('idp_status', `the identity provider answered ${code ?? 'no status'}`);

  const responses = byLocalName(doc, 'Response');
  if (responses.length !== 1) throw new XmlRefused('assertion_count', `${responses.length} Response elements in the document (exactly one allowed)`);
  const encrypted = byLocalName(doc, 'EncryptedAssertion');
  if (encrypted.length) throw new XmlRefused('encrypted_assertion', 'encrypted assertions are not supported; configure the IdP to sign, not encrypt');
  const assertions = byLocalName(doc, 'Assertion');
  if (assertions.length !== 1) throw new XmlRefused('assertion_count', `${assertions.length} Assertion elements in the document (exactly one allowed)`);
  const assertion = assertions[0]!;
  if (assertion.namespaceURI !== NS.assertion || assertion.parentNode !== response) throw new XmlRefused('assertion_count', 'the Assertion is not a direct child of the Response');

  const ids = new Set<string>();
  for (const n of descendants(doc)) {
    if (n.nodeType !== ELEMENT_NODE) continue;
    for (const name of ['ID', 'Id', 'id']) {
      const v = (n as Element).getAttribute(name);
      if (!v) continue;
      if (ids.has(v)) throw new XmlRefused('duplicate_id', `the ID ${JSON.stringify(v)} appears more than once (signature wrapping)`);
      ids.add(v);
    }
  }

  let responseSigned = false;
  let assertionSigned = false;
  for (const sig of byLocalName(doc, 'Signature')) {
    if (sig.namespaceURI !== NS.dsig) continue;
    const parent = sig.parentNode as Element;
    if (parent === response) { if (responseSigned) throw new XmlRefused('signature_shape', 'two signatures on the Response'); responseSigned = true; }
    else if (parent === assertion) { if (assertionSigned) throw new XmlRefused('signature_shape', 'two signatures on the Assertion'); assertionSigned = true; }
    else throw new XmlRefused('signature_location', `a signature inside ${parent.localName} (only the Response or the Assertion may be signed)`);
    checkSignature(sig, parent);
  }
  if (!responseSigned && !assertionSigned) throw new XmlRefused('unsigned', 'neither the response nor its assertion is signed');

  const destination = response.getAttribute('Destination');
  if (destination !== expect.acsUrl) throw new XmlRefused('destination', `Destination ${JSON.stringify(destination)} is not this connection's ACS URL`);
  return { response, assertion, responseSigned, assertionSigned, inResponseTo: response.getAttribute('InResponseTo') || null };
}
