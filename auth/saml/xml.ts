/**
 * XML for the SAML service provider: one strict parse with the same parser
 * node-saml verifies with (`@xmldom/xmldom`, its own dependency), so Roost's
 * structural checks and the library's signature check see the same tree.
 * A document type declaration is refused before any parsing, whatever its case.
 */
import { DOMParser } from '@xmldom/xmldom';

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
} as const;

export const ELEMENT_NODE = 1;
export const PROCESSING_INSTRUCTION_NODE = 7;
export const COMMENT_NODE = 8;
export const DOCUMENT_TYPE_NODE = 10;

/** Why a document could not be read; `check` names the rule for the audit log. */
export class XmlRefused extends Error {
  readonly check: string;
  constructor(check: string, message: string) {
    super(message);
    this.check = check;
  }
}

/** True when the text declares a document type (DTDs carry XXE and entity expansion). */
export function hasDoctype(xml: string): boolean {
  return /<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml);
}

/** Deepest element nesting read: SAML responses and metadata nest a dozen or two levels. */
export const MAX_XML_DEPTH = 100;

/**
 * The deepest element nesting of `xml`, read from its text before any parsing (a rough look that
 * stops past `limit`): 60 KB of nested elements cost the parse and the tree walks seconds of the
 * one thread every tenant's requests share, unauthenticated, and deeper ones overflowed the stack.
 * One pass: comments, CDATA, processing instructions and declarations are skipped whole, and a
 * tag's end is found outside its quoted attribute values (`<a x="/>">` is an open element). The
 * parsed tree is measured again (`treeDepth`), so text this look misreads is still refused.
 */
export function xmlDepth(xml: string, limit = MAX_XML_DEPTH): number {
  let depth = 0;
  let deepest = 0;
  const n = xml.length;
  let i = xml.indexOf('<');
  while (i >= 0 && i < n) {
    if (xml.startsWith('<!--', i)) { const e = xml.indexOf('-->', i + 4); if (e < 0) break; i = xml.indexOf('<', e + 3); continue; }
    if (xml.startsWith('<![CDATA[', i)) { const e = xml.indexOf(']]>', i + 9); if (e < 0) break; i = xml.indexOf('<', e + 3); continue; }
    const c = xml.charCodeAt(i + 1);
    if (c === 0x3f /* ? */ || c === 0x21 /* ! */) { const e = xml.indexOf('>', i + 2); if (e < 0) break; i = xml.indexOf('<', e + 1); continue; }
    // The tag's end, outside quoted values.
    let j = i + 1;
    let quote = 0;
    for (; j < n; j++) {
      const ch = xml.charCodeAt(j);
      if (quote) { if (ch === quote) quote = 0; } else if (ch === 0x22 || ch === 0x27) quote = ch; else if (ch === 0x3e /* > */) break;
    }
    if (j >= n) break;
    if (c === 0x2f /* / */) depth--;
    else if (xml.charCodeAt(j - 1) !== 0x2f && ++depth > deepest && (deepest = depth) > limit) return deepest;
    i = xml.indexOf('<', j + 1);
  }
  return deepest;
}

/** The deepest element nesting of a parsed tree (iterative; stops past `limit`). */
export function treeDepth(root: Node, limit = MAX_XML_DEPTH): number {
  let deepest = 0;
  let depth = 0;
  let n: Node | null = root.firstChild;
  while (n) {
    if (n.nodeType === ELEMENT_NODE && depth + 1 > deepest && (deepest = depth + 1) > limit) return deepest;
    if (n.firstChild) { depth++; n = n.firstChild; continue; }
    while (n && n !== root && !n.nextSibling) { n = n.parentNode; depth--; }
    if (!n || n === root) break;
    n = n.nextSibling;
  }
  return deepest;
}

/** Parses a whole document; any parser error or warning refuses it. */
export function parseXml(xml: string, what: string): Document {
  if (hasDoctype(xml)) throw new XmlRefused('doctype', `the ${what} declares a DOCTYPE (refused: DTDs and entities are never processed)`);
  if (xmlDepth(xml) > MAX_XML_DEPTH) throw new XmlRefused('xml_depth', `the ${what} nests elements more than ${MAX_XML_DEPTH} levels deep (refused before reading it)`);
  const problems: string[] = [];
  const onProblem = (m: string) => { problems.push(String(m).split('\n')[0]!); };
  const doc = new DOMParser({ locator: {}, errorHandler: { warning: onProblem, error: onProblem, fatalError: onProblem } }).parseFromString(xml, 'text/xml') as unknown as Document;
  if (problems.length || !doc || !doc.documentElement) throw new XmlRefused('xml', `the ${what} is not well-formed XML${problems.length ? ` (${problems[0]})` : ''}`);
  for (let n = doc.firstChild; n; n = n.nextSibling) {
    if (n.nodeType === DOCUMENT_TYPE_NODE) throw new XmlRefused('doctype', `the ${what} declares a DOCTYPE`);
  }
  // Measured on the tree too (before any library walks it recursively: canonicalization for the
  // signature check, textContent): text the look above misreads is refused here.
  if (treeDepth(doc) > MAX_XML_DEPTH) throw new XmlRefused('xml_depth', `the ${what} nests elements more than ${MAX_XML_DEPTH} levels deep`);
  return doc;
}

/** Element children of `parent`, optionally only those with this namespace and local name. */
export function children(parent: Node, ns?: string, local?: string): Element[] {
  const out: Element[] = [];
  for (let n = parent.firstChild; n; n = n.nextSibling) {
    if (n.nodeType !== ELEMENT_NODE) continue;
    const e = n as Element;
    if (ns !== undefined && e.namespaceURI !== ns) continue;
    if (local !== undefined && e.localName !== local) continue;
    out.push(e);
  }
  return out;
}

/** Every node below `root` (document order), elements and others; iterative (no stack per level). */
export function* descendants(root: Node): Generator<Node> {
  let n: Node | null = root.firstChild;
  while (n) {
    yield n;
    if (n.firstChild) { n = n.firstChild; continue; }
    while (n && n !== root && !n.nextSibling) n = n.parentNode;
    if (!n || n === root) return;
    n = n.nextSibling;
  }
}

/** All elements below `root` with this local name, in any namespace. */
export function byLocalName(root: Node, local: string): Element[] {
  const out: Element[] = [];
  for (const n of descendants(root)) if (n.nodeType === ELEMENT_NODE && (n as Element).localName === local) out.push(n as Element);
  return out;
}

/** The one child element, or undefined when there is none; more than one refuses. */
export function onlyChild(parent: Element, ns: string, local: string, check: string): Element | undefined {
  const c = children(parent, ns, local);
  if (c.length > 1) throw new XmlRefused(check, `${c.length} ${local} elements in ${parent.localName} (at most one allowed)`);
  return c[0];
}

/** Text content of an element (every text node; comments are refused before this is read). */
export function text(e: Element | undefined): string | undefined {
  if (!e) return undefined;
  return (e.textContent ?? '').trim();
}
