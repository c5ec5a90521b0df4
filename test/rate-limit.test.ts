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
