/** `GET /v0/jobs/<id>`: the state of a long operation (backups, restores). */
import type { App } from '../app.js';
import { sendJson } from '../http/context.js';
import { RoostError } from '../errors.js';
import { authenticate, authorize } from '../../auth/authorize.js';
import { jobsOf, jobView, ownerKey } from '../../tenants/jobs.js';

export function registerJobRoutes(app: App): void {
  app.router.get('/v0/jobs/:id', async (ctx) => {
    const cred = await authenticate(app, ctx);
    const job = jobsOf(app).get(ctx.params.id!);
    const none = () => new RoostError('NOT_FOUND', `there is no job "${ctx.params.id}"`);
    if (!job) throw none();
    // Who started it, the operator, or an admin of its tenant; anyone else sees no such job —
    // a denial all the same, audited as one (in the asker's tenant, and the job's): it was only
    // in the request log.
    if (ownerKey(cred) !== job.startedBy) {
      try {
        authorize(app, ctx, cred, { op: 'tenant', tenant: job.tenant });
      } catch (e) {
        if (e instanceof RoostError && e.status === 403) throw none();
        throw e;
      }
    }
    sendJson(ctx, 200, jobView(job));
  });
}
