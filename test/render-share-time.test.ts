/**
 * A render is charged the time it used the processor, not the time the machine took to give it
 * the processor: under load from other processes every tenant's renders took longer by the clock,
 * and tenants doing no more work than before were refused 429 (the template tests failed so on a
 * loaded machine). A thread held still (Atomics.wait) stands for a render descheduled; a busy
 * loop for one that works.
 */
import { describe, expect, it } from 'vitest';
import { BURST_MS, renderShared } from '../src/pipes/render-share.js';

const still = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
/** Works until the process has used `ms` of processor time (by the clock that took longer under load, and was charged less). */
const busy = (ms: number) => {
  const start = process.cpuUsage();
  let x = 0;
  for (;;) {
    for (let i = 0; i < 10_000; i++) x++;
    const used = process.cpuUsage(start);
    if ((used.user + used.system) / 1000 >= ms) return x;
  }
};

describe("a tenant's share of rendering time", () => {
  it('is not used by time a render spent waiting for the processor', () => {
    // Twice the burst by the clock, all of it held still: never refused.
    for (let i = 0; i < Math.ceil((2 * BURST_MS) / 200); i++) renderShared('waits', () => still(200));
    expect(() => renderShared('waits', () => 1)).not.toThrow();
  }, 30_000);

  it('is used by time a render works, and then refused with 429 and Retry-After', () => {
    // Each render works 200 ms of processor time, and the share gives back a quarter of the
    // clock's time: refused after about 20 renders on a quiet machine, later on a loaded one
    // (where the clock runs ahead of the processor time).
    let refused: unknown;
    const t0 = performance.now();
    while (!refused && performance.now() - t0 < 60_000) {
      try { renderShared('works', () => busy(200)); } catch (e) { refused = e; }
    }
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    expect((refused as { headers: Record<string, string> }).headers['Retry-After']).toMatch(/^\d+$/);
  }, 90_000);
});
