/** What other areas may import from the SAML service provider. */
export { registerSamlRoutes } from './routes.js';
export { samlAuthorizationUrl } from './login.js';
export { isSamlConnection, parseSamlConnection, samlConnectionView, type SamlConnectionRecord } from './connections.js';
