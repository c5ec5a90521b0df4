/**
 * Checks on one `saml:Assertion` and what it says about the person. Run twice:
 * on the assertion as posted (early, precise refusals) and on the bytes the
 * library verified (the only ones read for the identity). Issuer, one NameID,
 * a bearer subject confirmation whose Recipient is the ACS URL and whose
 * InResponseTo is the request Roost issued (none when unsolicited),
 * NotBefore/NotOnOrAfter on it and on the Conditions with a small skew, and
 * the audience.
 */
import { children, NS, onlyChild, text, XmlRefused } from './xml.js';

const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const MAX_ATTRIBUTES = 200;
const MAX_VALUES = 1000;

export interface AssertionExpectations {
  idpEntityId: string;
  spEntityId: string;
  acsUrl: string;
  /** The AuthnRequest id this response must answer, or null for an unsolicited one. */
  inResponseTo: string | null;
  now: number;
  skewMs: number;
}

export interface AssertedIdentity {
  assertionId: string;
  nameId: string;
  nameIdFormat: string | undefined;
  sessionIndex: string | undefined;
  /** Attribute values by Name (and FriendlyName): one string, or a list when several. */
  attributes: Record<string, string | string[]>;
  /** Until when this assertion could be accepted (for the replay cache). */
  acceptableUntil: number;
}

function instant(e: Element, attr: string, check: string): number | undefined {
  const v = e.getAttribute(attr);
  if (!v) return undefined;
  const t = Date.parse(v);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v) || Number.isNaN(t)) throw new XmlRefused(check, `${e.localName}@${attr} is not a UTC xs:dateTime`);
  return t;
}

function checkWindow(e: Element, x: AssertionExpectations, requireEnd: boolean): number {
  const nb = instant(e, 'NotBefore', 'time');
  const noa = instant(e, 'NotOnOrAfter', 'time');
  if (nb !== undefined && x.now + x.skewMs < nb) throw new XmlRefused('not_yet_valid', `${e.localName} is not valid before ${new Date(nb).toISOString()}`);
  if (noa === undefined) {
    if (requireEnd) throw new XmlRefused('time', `${e.localName} has no NotOnOrAfter`);
    return Infinity;
  }
  if (x.now - x.skewMs >= noa) throw new XmlRefused('expired', `${e.localName} expired at ${new Date(noa).toISOString()}`);
  return noa;
}

export function checkAssertion(a: Element, x: AssertionExpectations): AssertedIdentity {
  if (a.namespaceURI !== NS.assertion || a.localName !== 'Assertion' || a.getAttribute('Version') !== '2.0') throw new XmlRefused('shape', 'not a SAML 2.0 assertion');
  const assertionId = a.getAttribute('ID');
  if (!assertionId) throw new XmlRefused('shape', 'the assertion has no ID');
  const issuer = text(onlyChild(a, NS.assertion, 'Issuer', 'issuer'));
  if (issuer !== x.idpEntityId) throw new XmlRefused('issuer', `the assertion's Issuer ${JSON.stringify(issuer ?? null)} is not this connection's IdP`);

  const subject = onlyChild(a, NS.assertion, 'Subject', 'subject');
  if (!subject) throw new XmlRefused('subject', 'the assertion has no Subject');
  if (children(subject, NS.assertion, 'EncryptedID').length || children(subject, NS.assertion, 'BaseID').length) throw new XmlRefused('subject', 'only a plain NameID is supported as the subject');
  const nameIdEl = onlyChild(subject, NS.assertion, 'NameID', 'subject');
  const nameId = text(nameIdEl);
  if (!nameIdEl || !nameId || nameId.length > 1024) throw new XmlRefused('subject', 'the assertion has no NameID (or one longer than 1024 characters)');

  const confirmations = children(subject, NS.assertion, 'SubjectConfirmation').filter((c) => c.getAttribute('Method') === BEARER);
  if (confirmations.length === 0) throw new XmlRefused('bearer', 'no SubjectConfirmation with Method bearer');
  let until = Infinity;
  for (const sc of confirmations) {
    const data = onlyChild(sc, NS.assertion, 'SubjectConfirmationData', 'bearer');
    if (!data) throw new XmlRefused('bearer', 'a bearer SubjectConfirmation has no SubjectConfirmationData');
    const recipient = data.getAttribute('Recipient');
    if (recipient !== x.acsUrl) throw new XmlRefused('recipient', `Recipient ${JSON.stringify(recipient)} is not this connection's ACS URL`);
    until = Math.min(until, checkWindow(data, x, true));
    const irt = data.getAttribute('InResponseTo') || null;
    if (x.inResponseTo === null && irt !== null) throw new XmlRefused('in_response_to', 'the assertion answers a request, but no login of this connection is in progress for it');
    if (x.inResponseTo !== null && irt !== x.inResponseTo) throw new XmlRefused('in_response_to', `the assertion answers ${JSON.stringify(irt)}, not the request Roost issued for this login`);
  }

  const conditions = onlyChild(a, NS.assertion, 'Conditions', 'conditions');
  if (!conditions) throw new XmlRefused('audience', 'the assertion has no Conditions (and so no audience)');
  until = Math.min(until, checkWindow(conditions, x, false));
  const restrictions = children(conditions, NS.assertion, 'AudienceRestriction');
  if (restrictions.length === 0) throw new XmlRefused('audience', 'the assertion has no AudienceRestriction');
  for (const r of restrictions) {
    const audiences = children(r, NS.assertion, 'Audience').map((e) => text(e));
    if (!audiences.includes(x.spEntityId)) throw new XmlRefused('audience', `the assertion is for ${JSON.stringify(audiences.join(', '))}, not for this connection (${x.spEntityId})`);
  }

  const authn = children(a, NS.assertion, 'AuthnStatement')[0];
  const attributes = new Map<string, string | string[]>();
  let count = 0;
  for (const st of children(a, NS.assertion, 'AttributeStatement')) {
    for (const attr of children(st, NS.assertion, 'Attribute')) {
      if (++count > MAX_ATTRIBUTES) throw new XmlRefused('attributes', `more than ${MAX_ATTRIBUTES} attributes`);
      const name = attr.getAttribute('Name');
      if (!name || name.length > 256) continue;
      const values = children(attr, NS.assertion, 'AttributeValue')
        .filter((v) => v.getAttributeNS('http://www.w3.org/2001/XMLSchema-instance', 'nil') !== 'true')
        .map((v) => text(v) ?? '');
      if (values.length > MAX_VALUES) throw new XmlRefused('attributes', `attribute ${name} has more than ${MAX_VALUES} values`);
      const v = values.length === 1 ? values[0]! : values;
      attributes.set(name, v);
      const friendly = attr.getAttribute('FriendlyName');
      if (friendly && friendly.length <= 256 && !attributes.has(friendly)) attributes.set(friendly, v);
    }
  }
  return {
    assertionId, nameId, nameIdFormat: nameIdEl.getAttribute('Format') || undefined,
    sessionIndex: authn?.getAttribute('SessionIndex') || undefined,
    // fromEntries defines own properties: an attribute named "__proto__" stays data.
    attributes: Object.fromEntries(attributes),
    acceptableUntil: until + x.skewMs,
  };
}
