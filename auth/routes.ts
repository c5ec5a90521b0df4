/**
 * Registers the identity routes (`/auth/*`, `/.well-known/jwks.json`) and the
 * token and identity-administration routes. Filled in by the OIDC/sessions work.
 */
import type { App } from '../src/app.js';

export async function registerAuthRoutes(_app: App): Promise<void> {
  // No identity routes yet.
}
