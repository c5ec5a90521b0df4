/**
 * Templates render on the server's event loop, which every tenant shares. One render is
 * bounded (MAX_WORK steps, a few hundred ms at the very worst), but one tenant calling heavy
 * templates in a loop, or many at once, would still hold the loop and so every other
 * tenant's requests. Each tenant has a share of rendering time: a bucket of BURST_MS that
 * refills at SHARE_MS_PER_S; a render starts only while the bucket holds time, and what it
 * took is charged after it. An empty bucket answers 429 `RATE_LIMITED` with `Retry-After`.
 * Ordinary templates take tens of microseconds: thousands of calls a second stay far below.
 *
 * What a render took is its wall-clock time or the process's CPU time over it, whichever is
 * less: a machine busy with other processes (or a server descheduled) stretched renders'
 * wall-clock time, and tenants whose templates did no more work were refused (the template
 * tests failed that way under load). The CPU time counts every thread of the process, so it is
 * no less than the render's own; the wall-clock time bounds it when other threads are busy.
 */
import { RoostError } from '../errors.js';

export const BURST_MS = 3000;
export const SHARE_MS_PER_S = 250;

const buckets = new Map<string, { ms: number; at: number }>();

export function renderShared<T>(tenant: string, render: () => T): T {
  const now = performance.now();
  let b = buckets.get(tenant);
  if (!b) {
    b = { ms: BURST_MS, at: now };
    buckets.set(tenant, b);
  }
  b.ms = Math.min(BURST_MS, b.ms + ((now - b.at) * SHARE_MS_PER_S) / 1000);
  b.at = now;
  if (b.ms <= 0) {
    const waitS = Math.max(1, Math.ceil(-b.ms / SHARE_MS_PER_S));
    throw new RoostError('RATE_LIMITED', `this tenant's templates used their share of the server's rendering time (${SHARE_MS_PER_S} ms a second, bursts of ${BURST_MS} ms); retry in ${waitS} s, or make the templates lighter (fewer loop iterations, smaller strings and lists)`, {
      retryable: true, headers: { 'Retry-After': String(waitS) },
    });
  }
  const cpu = process.cpuUsage();
  try {
    return render();
  } finally {
    const end = performance.now();
    const used = process.cpuUsage(cpu);
    b.ms -= Math.min(end - now, (used.user + used.system) / 1000);
    b.at = end;
  }
}

/** Forgets a tenant's bucket (a deleted tenant). */
export function forgetRenderShare(tenant: string): void {
  buckets.delete(tenant);
}
