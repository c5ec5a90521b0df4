/** Liveness, readiness and metrics. */
import type { App } from '../app.js';
import { sendJson, sendText } from '../http/context.js';
import { RoostError } from '../errors.js';

export function registerHealthRoutes(app: App): void {
  app.router.get('/v0/health', (ctx) => sendJson(ctx, 200, { status: 'ok' }));

  app.router.get('/v0/ready', async (ctx) => {
    // Running cells must answer a ping; cells that are not running start on demand.
    const checks = await Promise.all(app.cells.running().map(async ({ tenant }) => {
      try {
        const t = app.state.get<{ slug: string }>('tenants', tenant);
        if (t) await app.cells.engineFor(t as never).ping();
        return { tenant, ok: true };
      } catch (e) {
        return { tenant, ok: false, error: (e as Error).message };
      }
    }));
    const bad = checks.filter((c) => !c.ok);
    if (bad.length) {
      throw new RoostError('ENGINE_UNAVAILABLE', `engines not answering: ${bad.map((b) => b.tenant).join(', ')}`, { retryable: true, details: { checks } });
    }
    sendJson(ctx, 200, { status: 'ready', state_seq: app.state.seq, cells_running: checks.length });
  });

  app.router.get('/metrics', async (ctx) => {
    sendText(ctx, 200, await app.metrics.registry.metrics(), app.metrics.registry.contentType);
  });
}
