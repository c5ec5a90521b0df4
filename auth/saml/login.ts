/**
 * SP-initiated login: an AuthnRequest by HTTP-Redirect, its id stored with
 * the tenant, the connection and the `return_to` under a fresh random state id
 * that travels as RelayState (the only thing the IdP sends back with it).
 */
import crypto from 'node:crypto';
import type { App } from '../../src/app.js';
import { acsUrl, getSamlConnection, spEntityId } from './connections.js';
import { samlFor } from './library.js';
import { SAML_PENDING_TTL_MS } from './pending.js';
import { samlRuntime } from './runtime.js';

export async function samlAuthorizationUrl(app: App, tenant: string, connId: string, returnTo: string): Promise<URL> {
  const conn = getSamlConnection(app, tenant, connId);
  // An xs:ID must not start with a digit.
  const requestId = `_${crypto.randomBytes(20).toString('hex')}`;
  const relayState = crypto.randomBytes(32).toString('base64url');
  const now = Date.now();
  await samlRuntime(app).store.putLogin(relayState, { tenant, connection: conn.id, requestId, returnTo, createdAt: now, expiresAt: now + SAML_PENDING_TTL_MS });
  const saml = samlFor({ conn, spEntityId: spEntityId(app, tenant, conn.id), acsUrl: acsUrl(app, tenant, conn.id), requestId });
  return new URL(await saml.getAuthorizeUrlAsync(relayState, undefined, {}));
}
