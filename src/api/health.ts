/** Liveness, readiness and metrics. */
import crypto from 'node:crypto';
import type { App } from '../app.js';
import { sendJson, sendText, type Ctx } from '../http/context.js';
import { RoostError } from '../errors.js';
import { exposition } from '../log/metrics.js';
import { auditRefusal, authenticate, bearer } from '../../auth/authorize.js';

/**
 * Who may read /metrics (its labels name tenants): the metrics token (`--metrics-token`,
 * meant for the scraper: it opens nothing else), the operator token, or anyone in
 * development mode (loopback only). Refusals are audited like every other.
 */
async function checkMetricsAccess(app: App, ctx: Ctx, metricsDigest: Buffer | undefined): Promise<void> {
  if (app.config.dev) return;
  const secret = bearer(ctx);
  if (secret && metricsDigest) {
    const d = crypto.createHash('sha256').update(secret).digest();
    if (crypto.timingSafeEqual(d, metricsDigest)) return;
  }
  const cred = await authenticate(app, ctx);
  if (cred.kind === 'operator') return;
  const e = new RoostError('FORBIDDEN', '/metrics needs the metrics token (set with --metrics-token or ROOST_METRICS_TOKEN) or the operator token');
  auditRefusal(app, ctx, cred, e);
  throw e;
}

export function registerHealthRoutes(app: App): void {
  app.router.get('/v0/health', (ctx) => sendJson(ctx, 200, { status: 'ok' }));

  /** How long readiness waits for a running cell's ping. */
  const READY_PING_MS = Math.max(100, Math.min(2_000, Math.floor(app.config.requestTimeoutMs / 2)));
  app.router.get('/v0/ready', async (ctx) => {
    // Running cells must answer a ping; cells that are not running start on demand.
    const checks = await Promise.all(app.cells.running().map(async ({ tenant }) => {
      try {
        const t = app.state.get<{ slug: string }>('tenants', tenant);
        // Bounded: a hung cell held the answer 10 s (a load balancer's probe gives up sooner).
        if (t) {
          let timer: NodeJS.Timeout | undefined;
          try {
            await Promise.race([
              app.cells.engineFor(t as never).ping(),
              new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer in ${READY_PING_MS} ms`)), READY_PING_MS); }),
            ]);
          } finally {
            clearTimeout(timer);
          }
        }
        return { tenant, ok: true };
      } catch (e) {
        return { tenant, ok: false, error: (e as Error).message };
      }
    }));
    const bad = checks.filter((c) => !c.ok);
    if (bad.length) {
      // Unauthenticated (load balancers ask): how many, not which tenants; the log names them.
      app.log.warn('readiness: engines not answering', { checks: bad });
      throw new RoostError('ENGINE_UNAVAILABLE', `${bad.length} of ${checks.length} running engines are not answering (the server log names them)`, { retryable: true });
    }
    sendJson(ctx, 200, { status: 'ready', state_seq: app.state.seq, cells_running: checks.length });
  });

  const metricsDigest = app.config.metricsToken === undefined ? undefined : crypto.createHash('sha256').update(app.config.metricsToken).digest();
  app.router.get('/metrics', async (ctx) => {
    await checkMetricsAccess(app, ctx, metricsDigest);
    sendText(ctx, 200, await exposition(app.metrics.registry), app.metrics.registry.contentType);
  });
}
