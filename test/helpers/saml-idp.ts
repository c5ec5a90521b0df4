/**
 * A SAML identity provider for end-to-end tests: its own RSA key (openssl), responses shaped as
 * samlify's with an AttributeStatement, signed with samlify's signer, and an SP-initiated login
 * driven over real HTTP (`/auth/login` → Roost's AuthnRequest → a signed response posted to the
 * ACS from the browser that started the login). test/auth-saml.test.ts does the same by hand,
 * with its attacks on top.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import * as samlify from 'samlify';
import { tempDir } from './server.js';

const PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

export interface SamlIdp { entityId: string; key: string; cert: string; certBody: string }

/** An IdP of this entity id with a fresh RSA-2048 key and self-signed certificate. */
export function makeSamlIdp(entityId: string): SamlIdp {
  const dir = tempDir('roost-saml-idp-');
  const key = path.join(dir, 'idp.key');
  const cert = path.join(dir, 'idp.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=test-idp'], { stdio: 'ignore' });
  const pem = fs.readFileSync(cert, 'utf8');
  return { entityId, key: fs.readFileSync(key, 'utf8'), cert: pem, certBody: pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '') };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const iso = (ms: number) => new Date(ms).toISOString();

/** The IdP's signed response (assertion signed, RSA-SHA256) for one request, base64 as posted. */
export function signedResponse(idp: SamlIdp, f: { audience: string; acs: string; inResponseTo: string; nameId: string; attributes: Record<string, string[]> }): string {
  const now = Date.now();
  const noa = iso(now + 5 * 60_000);
  const irt = ` InResponseTo="${esc(f.inResponseTo)}"`;
  const attrs = Object.entries(f.attributes).map(([n, vs]) => `<saml:Attribute Name="${esc(n)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${vs.map((v) => `<saml:AttributeValue xsi:type="xs:string">${esc(v)}</saml:AttributeValue>`).join('')}</saml:Attribute>`).join('');
  const xml = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r${crypto.randomBytes(12).toString('hex')}" Version="2.0" IssueInstant="${iso(now)}" Destination="${esc(f.acs)}"${irt}>`
    + `<saml:Issuer>${esc(idp.entityId)}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>`
    + `<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="_a${crypto.randomBytes(12).toString('hex')}" Version="2.0" IssueInstant="${iso(now)}">`
    + `<saml:Issuer>${esc(idp.entityId)}</saml:Issuer>`
    + `<saml:Subject><saml:NameID Format="${PERSISTENT}">${esc(f.nameId)}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${noa}" Recipient="${esc(f.acs)}"${irt}/></saml:SubjectConfirmation></saml:Subject>`
    + `<saml:Conditions NotBefore="${iso(now - 1000)}" NotOnOrAfter="${noa}"><saml:AudienceRestriction><saml:Audience>${esc(f.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>`
    + `<saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="_s${crypto.randomBytes(6).toString('hex')}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`
    + `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>`
    + `</saml:Assertion></samlp:Response>`;
  const signed = samlify.SamlLib.constructSAMLSignature({
    privateKey: idp.key, signingCert: idp.certBody, signatureAlgorithm: SHA256, isBase64Output: false, rawSamlMessage: xml,
    referenceTagXPath: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']",
    signatureConfig: { prefix: 'ds', location: { reference: "/*[local-name(.)='Response']/*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: 'after' } },
  } as any) as string;
  return Buffer.from(signed, 'utf8').toString('base64');
}

export interface SamlLoginResult { status: number; requestId: string; session?: string; body: any; text: string }

/**
 * An SP-initiated login at `tenant`/`connection`: the IdP answers Roost's AuthnRequest with
 * `nameId` and `attributes`. Answers the ACS's response (the session JWT when one was set).
 */
export async function samlLogin(roost: string, tenant: string, connection: string, idp: SamlIdp, nameId: string, attributes: Record<string, string[]>, accept = 'application/json'): Promise<SamlLoginResult> {
  let r = await fetch(`${roost}/auth/login?tenant=${tenant}&connection=${connection}`, { redirect: 'manual' });
  let cookie = '';
  for (let hops = 0; new URL(r.headers.get('location') ?? '', roost).origin === new URL(roost).origin; hops++) {
    if (r.status !== 302 || hops > 3) throw new Error(`the SAML login start answered ${r.status}: ${await r.text()}`);
    const set = r.headers.getSetCookie().find((c) => c.startsWith('roost_saml_login='));
    if (set) cookie = set.split(';')[0]!;
    r = await fetch(new URL(r.headers.get('location')!, roost).href, { redirect: 'manual', headers: cookie ? { Cookie: cookie } : {} });
  }
  const set = r.headers.getSetCookie().find((c) => c.startsWith('roost_saml_login='));
  if (set) cookie = set.split(';')[0]!;
  const to = new URL(r.headers.get('location')!);
  if (to.origin + to.pathname !== `${idp.entityId}/sso`) throw new Error(`the SAML login went to ${to.href}`);
  // HTTP-Redirect binding: the AuthnRequest is raw-deflated, then base64.
  const request = zlib.inflateRawSync(Buffer.from(to.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  const id = /<(?:\w+:)?AuthnRequest\b[^>]*\sID="([^"]+)"/.exec(request)![1]!;
  const sp = `${roost}/auth/saml/${tenant}/${connection}`;
  const form = new URLSearchParams({ SAMLResponse: signedResponse(idp, { audience: `${sp}/metadata`, acs: `${sp}/acs`, inResponseTo: id, nameId, attributes }), RelayState: to.searchParams.get('RelayState')! });
  const res = await fetch(`${sp}/acs`, { method: 'POST', redirect: 'manual', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: accept, Cookie: cookie }, body: form.toString() });
  const text = await res.text();
  const sc = res.headers.getSetCookie().find((c) => c.startsWith('roost_session='));
  let body: any = text;
  try { body = JSON.parse(text); } catch { /* empty (a redirect) */ }
  return { status: res.status, requestId: res.headers.get('x-request-id')!, session: sc ? decodeURIComponent(sc.split(';')[0]!.split('=')[1]!) : undefined, body, text };
}
