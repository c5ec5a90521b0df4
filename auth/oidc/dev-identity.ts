/**
 * Development mode's identity: the in-process IdP on loopback with two demo
 * identities, tenant `local`'s connection `dev` to it, and mapping rules
 * (group `local-admins` → tenant:admin, `local-viewers` → viewer of
 * `default`) when the tenant has none. Refuses to run outside development
 * mode or on a non-loopback server.
 */
import crypto from 'node:crypto';
import type { App } from '../../src/app.js';
import type { MappingDoc } from '../mapping/rules.js';
import { callbackUrl, type ConnectionRecord } from './connections.js';
import { startDevProvider } from './dev-provider.js';
import { runtimeOf } from '../runtime.js';

const TENANT = 'local';
const CONNECTION = 'dev';

export async function startDevIdentity(app: App): Promise<void> {
  if (!app.config.dev) throw new Error('the development IdP only runs in development mode');
  if (!/^http:\/\/(127\.|\[::1\]|localhost)/.test(runtimeOf(app).issuer)) throw new Error('the development IdP only runs on loopback');
  if (!app.state.get('tenants', TENANT)) return;
  const secret = crypto.randomBytes(32).toString('base64url');
  const base = `${runtimeOf(app).issuer}/auth/oidc/${TENANT}/${CONNECTION}`;
  // The port of the last start when it is free again: the issuer is then the same, and the
  // browser sessions of the connection outlive a restart (a session whose connection moved to
  // another issuer is refused). A port taken since: any free one.
  const before = app.state.get<ConnectionRecord>('connections', TENANT, CONNECTION);
  const lastPort = Number(/^http:\/\/127\.0\.0\.1:(\d+)$/.exec(before?.issuer ?? '')?.[1]) || undefined;
  const start = (port?: number) => startDevProvider({
      port,
      alg: 'ES256',
      accounts: [
        { id: 'local-admin', claims: { email: 'admin@local.test', email_verified: true, name: 'Local Admin', groups: ['local-admins'] } },
        { id: 'local-viewer', claims: { email: 'viewer@local.test', email_verified: true, name: 'Local Viewer', groups: ['local-viewers'] } },
      ],
      clients: [{
        client_id: 'roost-dev', client_secret: secret,
        redirect_uris: [callbackUrl(app, TENANT, CONNECTION)], backchannel_logout_uri: `${base}/backchannel-logout`,
        post_logout_redirect_uris: [`${runtimeOf(app).issuer}/auth/session`],
      }],
    });
  let idp;
  try {
    idp = await start(lastPort).catch((e: unknown) => {
      if (lastPort === undefined || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      return start();
    });
  } catch (e) {
    app.log.warn('development IdP not started (is the dev dependency oidc-provider installed?)', { err: e });
    return;
  }
  app.http.server.once('close', () => { void idp.close(); });
  // The server started this IdP itself: an operator's --idp-hosts need not name its port.
  runtimeOf(app).oidc.allowDevIssuer(idp.issuer);
  const now = new Date().toISOString();
  const conn: ConnectionRecord = {
    id: CONNECTION, tenant: TENANT, type: 'oidc', issuer: idp.issuer, client_id: 'roost-dev',
    client_secret_sealed: app.secrets.seal(secret), scopes: ['openid', 'email', 'profile', 'groups'],
    accept_idp_access_tokens: false, createdAt: app.state.get<ConnectionRecord>('connections', TENANT, CONNECTION)?.createdAt ?? now, updatedAt: now,
  };
  const ops = [{ op: 'put' as const, path: ['connections', TENANT, CONNECTION], value: conn }];
  if (!app.state.get('mappings', TENANT)) {
    const doc: MappingDoc = {
      rules: [
        { claim: 'groups', match: { equals: 'local-admins' }, grant: { role: 'tenant:admin' } },
        { claim: 'groups', match: { equals: 'local-viewers' }, grant: { role: 'viewer', workspace: 'default' } },
      ],
      updatedAt: now,
    };
    ops.push({ op: 'put' as const, path: ['mappings', TENANT], value: doc as never });
  }
  await app.state.write(ops);
  app.log.info('development IdP', { issuer: idp.issuer, login: `${runtimeOf(app).issuer}/auth/login?tenant=${TENANT}`, identities: ['admin@local.test (tenant:admin)', 'viewer@local.test (viewer of default)'] });
}
