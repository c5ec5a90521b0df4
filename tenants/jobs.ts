/**
 * Long operations (backups, restores) as jobs: `GET /v0/jobs/<id>` shows
 * `waiting | working | done | error` with progress. Jobs live in this server's
 * memory: a restart forgets them (the backups they made stay on disk and are
 * listed from there).
 */
import crypto from 'node:crypto';
import type { App } from '../src/app.js';

export type JobStatus = 'waiting' | 'working' | 'done' | 'error' | 'cancelled';

export interface JobProgress {
  phase: string;
  /** Work done and expected, in bytes, when known. */
  bytes_done?: number;
  bytes_total?: number;
  /** 0..100, when it can be estimated. */
  percent?: number;
}

export interface Job {
  id: string;
  kind: string;
  tenant: string;
  /** `ownerKey` of the credential that started it. */
  startedBy: string;
  /**
   * When the tenant it is of was created (unset: none was, as for a restore of a deleted one): its
   * admins see it only while that tenant is the one under the slug (a tenant deleted and created
   * again under its slug got the old one's jobs listed, backup paths and delete conditions included).
   */
  tenantCreatedAt?: string;
  status: JobStatus;
  progress: JobProgress;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  result?: Record<string, unknown>;
  error?: { error: string; code: string };
}

/** Finished jobs kept per tenant: one tenant's burst of jobs (rows deletes) cannot push another tenant's out. */
const MAX_KEPT_PER_TENANT = 500;

export class JobRegistry {
  #jobs = new Map<string, Job>();
  #perTenant = new Map<string, number>();

  /** Creates a job and runs `work` in the background; `work` reports progress through `update`. */
  start(input: { kind: string; tenant: string; startedBy: string; tenantCreatedAt?: string }, work: (update: (p: JobProgress) => void) => Promise<Record<string, unknown>>, log: App['log']): Job {
    const job: Job = { id: crypto.randomUUID(), ...input, status: 'waiting', progress: { phase: 'waiting' }, createdAt: new Date().toISOString() };
    this.#keep(job);
    setImmediate(() => {
      job.status = 'working';
      job.startedAt = new Date().toISOString();
      work((p) => { job.progress = p; }).then((result) => {
        job.status = 'done';
        job.result = result;
        job.progress = { ...job.progress, phase: 'done', percent: 100 };
      }, (e: unknown) => {
        job.status = 'error';
        const code = (e as { code?: unknown }).code;
        job.error = { error: e instanceof Error ? e.message : String(e), code: typeof code === 'string' && /^[A-Z_]+$/.test(code) ? code : 'INTERNAL' };
        log.error('job failed', { job: job.id, kind: job.kind, tenant: job.tenant, err: e });
      }).finally(() => { job.finishedAt = new Date().toISOString(); });
    });
    return job;
  }

  /**
   * Records work already done before its request was answered as a finished job, for
   * clients that poll a job (Tinybird answers a rows delete with one).
   */
  done(input: { kind: string; tenant: string; startedBy: string; tenantCreatedAt?: string }, result: Record<string, unknown>): Job {
    const now = new Date().toISOString();
    const job: Job = { id: crypto.randomUUID(), ...input, status: 'done', progress: { phase: 'done', percent: 100 }, createdAt: now, startedAt: now, finishedAt: now, result };
    this.#keep(job);
    return job;
  }

  /** Registers a job; past MAX_KEPT_PER_TENANT of its tenant's, that tenant's oldest finished one is forgotten. */
  #keep(job: Job): void {
    this.#jobs.set(job.id, job);
    const n = (this.#perTenant.get(job.tenant) ?? 0) + 1;
    this.#perTenant.set(job.tenant, n);
    if (n > MAX_KEPT_PER_TENANT) {
      for (const [id, j] of this.#jobs) {
        if (j.tenant === job.tenant && (j.status === 'done' || j.status === 'error' || j.status === 'cancelled')) {
          this.#jobs.delete(id);
          this.#perTenant.set(job.tenant, n - 1);
          break;
        }
      }
    }
  }

  get(id: string): Job | undefined {
    return this.#jobs.get(id);
  }

  /** Every job kept, newest first. */
  list(): Job[] {
    return [...this.#jobs.values()].reverse();
  }
}

// (A key naming exactly one credential: auth/authorize.ts, beside credentialName.)
export { ownerKey } from '../auth/authorize.js';

const registries = new WeakMap<App, JobRegistry>();

export function jobsOf(app: App): JobRegistry {
  let r = registries.get(app);
  if (!r) { r = new JobRegistry(); registries.set(app, r); }
  return r;
}

/** The JSON shape of a job (Tinybird's clients read `id`/`job_id`, `kind`, `status`). */
export function jobView(j: Job): Record<string, unknown> {
  return {
    id: j.id, job_id: j.id, kind: j.kind, status: j.status, tenant: j.tenant, progress: j.progress,
    created_at: j.createdAt, started_at: j.startedAt ?? null, finished_at: j.finishedAt ?? null,
    updated_at: j.finishedAt ?? j.startedAt ?? j.createdAt, job_url: `/v0/jobs/${j.id}`,
    ...(j.result ? { result: j.result } : {}), ...(j.error ? { error: j.error.error, code: j.error.code } : {}),
  };
}
