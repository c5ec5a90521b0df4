/** `GET /v0/jobs/<id>`: the state of a long operation (backups, restores). */
import type { App } from '../app.js';
import { sendJson } from '../http/context.js';
import { RoostError } from '../errors.js';
import { authenticate, decide } from '../../auth/authorize.js';
import { jobsOf, jobView, ownerKey } from '../../tenants/jobs.js';

export function registerJobRoutes(app: App): void {
  app.router.get('/v0/jobs/:id', async (ctx) => {
    const cred = await authenticate(app, ctx);
    const job = jobsOf(app).get(ctx.params.id!);
    // Who started it, the operator, or an admin of its tenant; anyone else sees no such job.
    const visible = job && (ownerKey(cred) === job.startedBy || decide(cred, { op: 'tenant', tenant: job.tenant }) === undefined);
    if (!job || !visible) throw new RoostError('NOT_FOUND', `there is no job "${ctx.params.id}"`);
    sendJson(ctx, 200, jobView(job));
  });
}
