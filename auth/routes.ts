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
}
