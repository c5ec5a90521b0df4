/**
 * The per-credential rate limiter, on its own clock: bursts of `rps`, refilled at `rps` a
 * second; a limit under one request a second lets one through every 1/rps seconds (a JWT
 * signed outside Roost may carry `limits.rps: 0.5`), never none at all.
 */
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../auth/rate-limit.js';

describe('RateLimiter', () => {
  it('passes a burst of rps, then one per 1/rps seconds', () => {
    let t = 0;
    const r = new RateLimiter(() => t);
    const passed = () => r.take('k', 3).retryAfter === 0;
    expect([passed(), passed(), passed(), passed()]).toEqual([true, true, true, false]);
    t += 334;
    expect([passed(), passed()]).toEqual([true, false]);
  });

  it('a limit under one request a second passes one, then the next after 1/rps seconds', () => {
    let t = 0;
    const r = new RateLimiter(() => t);
    const first = r.take('half', 0.5);
    expect(first.retryAfter).toBe(0);
    const second = r.take('half', 0.5);
    expect(second.retryAfter).toBe(2);
    t += 1000;
    expect(r.take('half', 0.5).retryAfter).toBeGreaterThan(0);
    t += 1001;
    expect(r.take('half', 0.5).retryAfter).toBe(0);
    expect(r.take('half', 0.5).retryAfter).toBeGreaterThan(0);
  });

  it('another limit for the same key carries what is left over (alternating two JWTs of one name with rps 1 and 2 passed every request)', () => {
    let t = 0;
    const r = new RateLimiter(() => t);
    const passed = Array.from({ length: 40 }, (_, i) => r.take('j:ws:same', i % 2 ? 2 : 1).retryAfter === 0).filter(Boolean).length;
    expect(passed).toBeLessThanOrEqual(2);
    // Refilled at the rate in force: one second later, one or two more, not a fresh bucket each.
    t += 1000;
    const later = Array.from({ length: 40 }, (_, i) => r.take('j:ws:same', i % 2 ? 2 : 1).retryAfter === 0).filter(Boolean).length;
    expect(later).toBeGreaterThanOrEqual(1);
    expect(later).toBeLessThanOrEqual(2);
    // A raised limit takes effect (a token whose rps went from 1 to 5: the bucket grows as it refills).
    t += 1000;
    expect(r.take('j:ws:same', 5).retryAfter).toBe(0);
  });

  it('a burst larger than the rate: that many at once, then refilled at the rate', () => {
    let t = 0;
    const r = new RateLimiter(() => t);
    const passed = () => r.take('b', 2, 5).retryAfter === 0;
    expect(Array.from({ length: 6 }, passed)).toEqual([true, true, true, true, true, false]);
    t += 500;
    expect([passed(), passed()]).toEqual([true, false]);
    t += 10_000;
    expect(Array.from({ length: 6 }, passed)).toEqual([true, true, true, true, true, false]);
  });
});
