/** The SAML parts kept per server beside the App: the state-backed request and replay stores. */
import type { App } from '../../src/app.js';
import { SamlStateStore } from './pending.js';

const runtimes = new WeakMap<App, { store: SamlStateStore }>();

export function samlRuntime(app: App): { store: SamlStateStore } {
  let rt = runtimes.get(app);
  if (!rt) { rt = { store: new SamlStateStore(app) }; runtimes.set(app, rt); }
  return rt;
}
