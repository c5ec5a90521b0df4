/**
 * The identity layer's per-server parts: Roost's own issuer URL, the session
 * signing keys, the rate limiter, the OIDC client cache and the auth counters.
 * Kept beside the App (not in it) so the App interface stays small.
 */
import client from 'prom-client';
import type { App } from '../src/app.js';
import type { AuditEntry } from '../src/service/audit.js';
import { RateLimiter } from './rate-limit.js';
import { SessionKeys } from './sessions/keys.js';
import { OidcClients } from './oidc/client.js';
import { StateLoginStore, type LoginStore } from './oidc/pending.js';
import { isLoopbackHost } from './loopback.js';

export interface AuthRuntime {
  /** Roost's public base URL and the `iss` of its sessions. */
  readonly issuer: string;
  /** True when cookies may be sent over plain HTTP (loopback without TLS). */
  readonly insecureCookies: boolean;
  limiter: RateLimiter;
  keys: SessionKeys;
  oidc: OidcClients;
  /** Logins in progress (single-use state, nonce, PKCE verifier). */
  logins: LoginStore;
  events: client.Counter<'event' | 'outcome'>;
}

const runtimes = new WeakMap<App, AuthRuntime>();

/** `ROOST_PUBLIC_URL` (config.publicUrl) or the bound address. */
function publicUrl(app: App): string {
  if (app.config.publicUrl) return app.config.publicUrl;
  const h = app.address.host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${app.address.port}`;
}

export function runtimeOf(app: App): AuthRuntime {
  let rt = runtimes.get(app);
  if (!rt) {
    const events = new client.Counter({ name: 'roost_auth_events_total', help: 'Audited identity events (logins, denials, token and mapping changes) by event and outcome', labelNames: ['event', 'outcome'] as const, registers: [app.metrics.registry] });
    new client.Gauge({
      name: 'roost_auth_logins_in_progress', help: 'Logins started and not finished nor expired, by protocol (at most ROOST_LOGINS_PENDING each)', labelNames: ['protocol'] as const, registers: [app.metrics.registry],
      collect() {
        const now = Date.now();
        for (const [protocol, root] of [['oidc', 'oidcPending'], ['saml', 'samlPending']] as const) {
          let n = 0;
          for (const v of Object.values(app.state.get<Record<string, { expiresAt: number }>>(root) ?? {})) if (v.expiresAt >= now) n++;
          this.set({ protocol }, n);
        }
      },
    });
    const created: AuthRuntime = {
      get issuer() { return publicUrl(app); },
      get insecureCookies() { const u = publicUrl(app); return u.startsWith('http:') && isLoopbackHost(new URL(u).hostname); },
      limiter: new RateLimiter(),
      keys: new SessionKeys(app),
      oidc: new OidcClients(app),
      logins: new StateLoginStore(app),
      events,
    };
    runtimes.set(app, created);
    rt = created;
  }
  return rt;
}

/** Writes an audit record and counts it in `/metrics`. */
export function auditAuth(app: App, e: AuditEntry): void {
  runtimeOf(app).events.inc({ event: e.event, outcome: e.outcome });
  app.audit(e);
}
