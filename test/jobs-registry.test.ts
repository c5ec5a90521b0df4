/**
 * Finished jobs are forgotten per tenant: one tenant's burst of jobs (rows deletes answer
 * with one each) must not push another tenant's finished backup out before it is polled.
 */
import { describe, expect, it } from 'vitest';
import { JobRegistry } from '../tenants/jobs.js';

describe('JobRegistry', () => {
  it("keeps each tenant's latest 500 finished jobs, whatever other tenants do", () => {
    const r = new JobRegistry();
    const backup = r.done({ kind: 'backup', tenant: 'quiet', startedBy: 'operator' }, { ok: true });
    const burst = Array.from({ length: 2000 }, (_, i) => r.done({ kind: 'delete', tenant: 'busy', startedBy: 'token:t' }, { i }));
    expect(r.get(backup.id)).toMatchObject({ kind: 'backup', status: 'done' });
    // The busy tenant keeps its latest 500, in order.
    expect(burst.filter((j) => r.get(j.id)).map((j) => j.result!.i)).toEqual(Array.from({ length: 500 }, (_, i) => 1500 + i));
    // And the quiet tenant's own jobs are bounded the same way.
    const more = Array.from({ length: 600 }, () => r.done({ kind: 'delete', tenant: 'quiet', startedBy: 'operator' }, {}));
    expect(r.get(backup.id)).toBeUndefined();
    expect(more.filter((j) => r.get(j.id))).toHaveLength(500);
  });
});
