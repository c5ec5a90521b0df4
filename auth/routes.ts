/**
 * Registers the identity routes (`/auth/*`, `/.well-known/jwks.json`), the
 * service-token routes and the identity administration of tenants; starts the
 * development IdP after the server listens (development mode only).
 */
import type { App } from '../src/app.js';
import { registerIdentityRoutes } from '../src/api/auth.js';
import { registerIdentityAdminRoutes } from '../src/api/auth-admin.js';
import { registerTokenRoutes } from '../src/api/tokens.js';
import { runtimeOf } from './runtime.js';
import { startDevIdentity } from './oidc/dev-identity.js';
import { registerSamlRoutes } from './saml/index.js';
import { startLoginSweeper } from './login-limits.js';
import type { StoredConnection } from './oidc/connections.js';

export async function registerAuthRoutes(app: App): Promise<void> {
  registerIdentityRoutes(app);
  registerIdentityAdminRoutes(app);
  registerSamlRoutes(app);
  registerTokenRoutes(app);
  await runtimeOf(app).keys.ensure();
  const rotation = setInterval(() => { runtimeOf(app).keys.ensure().catch((e) => app.log.error('session key rotation failed', { err: e })); }, 3600_000);
  rotation.unref();
  startLoginSweeper(app);
}

/** Runs once the server listens (its address is known): the development IdP in --dev. */
export async function authListening(app: App): Promise<void> {
  if (app.config.dev) await startDevIdentity(app);
  logIdpHosts(app);
}

/**
 * Says at start what the server's requests to IdPs may reach: a warning when any https host may
 * be named by a tenant admin (outside --dev), and the stored OIDC connections the operator's list
 * now refuses (their logins fail until it allows them or they change).
 */
function logIdpHosts(app: App): void {
  const hosts = app.config.idpHosts;
  if (!hosts) {
    if (!app.config.dev) {
      app.log.warn('IdP hosts are not limited: a tenant admin may name any https host (and plain http on this machine\'s loopback, any port) as an OIDC issuer, and this server then fetches its discovery document, keys, tokens and UserInfo from inside your network', { fix: 'set --idp-hosts / ROOST_IDP_HOSTS to the hosts of the IdPs your tenants use (or * to allow any on purpose)' });
    }
    return;
  }
  app.log.info('IdP hosts allowed', { idp_hosts: hosts.spec });
  const refused: string[] = [];
  for (const byId of Object.values(app.state.get<Record<string, Record<string, StoredConnection>>>('connections') ?? {})) {
    for (const c of Object.values(byId)) {
      if (c.type !== 'oidc') continue;
      let why: string | undefined;
      try { why = runtimeOf(app).oidc.refusal(new URL(c.issuer)); } catch { why = 'not a URL'; }
      if (why) refused.push(`${c.tenant}/${c.id} (${c.issuer})`);
    }
  }
  if (refused.length) app.log.warn('OIDC connections whose issuer --idp-hosts does not allow: their logins are refused until the list allows them or a tenant admin changes them', { connections: refused.slice(0, 100), count: refused.length });
}
