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
const busy = (ms: number) => { const end = performance.now() + ms; let x = 0; while (performance.now() < end) x++; return x; };

describe("a tenant's share of rendering time", () => {
  it('is not used by time a render spent waiting for the processor', () => {
    // Twice the burst by the clock, all of it held still: never refused.
    for (let i = 0; i < Math.ceil((2 * BURST_MS) / 200); i++) renderShared('waits', () => still(200));
    expect(() => renderShared('waits', () => 1)).not.toThrow();
  }, 30_000);

  it('is used by time a render works, and then refused with 429 and Retry-After', () => {
    let refused: unknown;
    for (let i = 0; i < 40 && !refused; i++) {
      try { renderShared('works', () => busy(200)); } catch (e) { refused = e; }
    }
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    expect((refused as { headers: Record<string, string> }).headers['Retry-After']).toMatch(/^\d+$/);
  }, 30_000);
});
