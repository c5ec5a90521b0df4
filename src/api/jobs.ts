/** `GET /v0/jobs/<id>`: the state of a long operation (backups, restores). */
import type { App } from '../app.js';
import { sendJson } from '../http/context.js';
import { RoostError } from '../errors.js';
import type { Ctx } from '../http/context.js';
import { auditOtherTenantProbe, authenticate, authorize, decide, tenantOfCred, type Credential } from '../../auth/authorize.js';
import { jobsOf, jobView, ownerKey, type Job } from '../../tenants/jobs.js';

export function registerJobRoutes(app: App): void {
  /** The job, when the credential may see it: who started it, the operator, or an admin of its tenant. */
  const visible = async (ctx: Ctx) => {
    const cred = await authenticate(app, ctx);
    const job = jobsOf(app).get(ctx.params.id!);
    const none = () => new RoostError('NOT_FOUND', `there is no job "${ctx.params.id}"`);
    if (!job) throw none();
    // Anyone else sees no such job — a denial all the same, audited as one: in the asker's tenant
    // when it is the job's (it was only in the request log), else in the job's tenant only (in
    // the asker's, the record named the job's tenant, and an unknown id leaves none).
    if (ownerKey(cred) !== job.startedBy) {
      const own = tenantOfCred(cred);
      if (own !== undefined && own !== job.tenant) {
        auditOtherTenantProbe(app, ctx, cred, job.tenant, `job ${job.id} (${ctx.route})`);
        throw none();
      }
      try {
        authorize(app, ctx, cred, { op: 'tenant', tenant: job.tenant });
      } catch (e) {
        if (e instanceof RoostError && e.status === 403) throw none();
        throw e;
      }
      if (!ofTenantNow(cred, job)) throw none();
    }
    return job;
  };
  /** The operator sees every job; a tenant's admin only those of the tenant under the slug now. */
  const ofTenantNow = (cred: Credential, job: Job) => cred.kind === 'operator'
    || (job.tenantCreatedAt !== undefined && app.state.get<{ createdAt: string }>('tenants', job.tenant)?.createdAt === job.tenantCreatedAt);

  app.router.get('/v0/jobs/:id', async (ctx) => {
    sendJson(ctx, 200, jobView(await visible(ctx)));
  });

  // Tinybird's job list (`tb job ls`): the jobs this server keeps that the credential may see (as
  // above: its own, or all of a tenant it administers), newest first, at most 100.
  app.router.get('/v0/jobs', async (ctx) => {
    const cred = await authenticate(app, ctx);
    const mine = ownerKey(cred);
    const admin = new Map<string, boolean>();
    const administers = (tenant: string) => {
      let may = admin.get(tenant);
      if (may === undefined) {
        may = decide(cred, { op: 'tenant', tenant }) === undefined;
        admin.set(tenant, may);
      }
      return may;
    };
    const jobs = jobsOf(app).list().filter((j) => j.startedBy === mine || (administers(j.tenant) && ofTenantNow(cred, j))).slice(0, 100);
    sendJson(ctx, 200, { jobs: jobs.map(jobView) });
  });

  // Tinybird cancels jobs still waiting; Roost starts every job at once, so none is left to cancel.
  app.router.post('/v0/jobs/:id/cancel', async (ctx) => {
    const job = await visible(ctx);
    throw new RoostError('CONFLICT', `job ${job.id} is ${job.status}: only a job still waiting can be cancelled, and Roost starts its jobs at once (nothing was changed)`);
  });
}
