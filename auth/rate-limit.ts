/**
 * Rate limits: a token bucket per key, in this process's memory. Per credential (`limits.rps`
 * of a JWT token, `rps` of a service token) and per client address for logins started
 * (auth/login-limits.ts). With several servers behind a balancer the same interface moves to
 * Redis; until then each server enforces the limit on its own share of the traffic.
 */
import { RoostError } from '../src/errors.js';

interface Bucket { tokens: number; at: number; rps: number; cap: number }

export interface RateDecision {
  limit: number;
  remaining: number;
  /** Seconds until the bucket is full again. */
  reset: number;
  /** Seconds to wait before a request may pass (0 when this one passed). */
  retryAfter: number;
}

export class RateLimiter {
  #buckets = new Map<string, Bucket>();
  #now: () => number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /**
   * Takes one request from `key`'s bucket of `rps` requests per second (burst `rps`, and at
   * least one: a limit under one request a second, as a JWT signed elsewhere may carry, lets one
   * through every 1/rps seconds instead of none ever). `burst` sets a larger bucket: that many
   * requests at once, refilled at `rps` a second.
   */
  take(key: string, rps: number, burst = rps): RateDecision {
    const now = this.#now();
    const cap = Math.max(1, burst);
    let b = this.#buckets.get(key);
    if (!b) {
      b = { tokens: cap, at: now, rps, cap };
      this.#buckets.set(key, b);
      if (this.#buckets.size > 100_000) this.#sweep(now);
    } else if (b.rps !== rps || b.cap !== cap) {
      // Another limit for the same key (two JWTs of one name with other `limits.rps`, a token
      // whose rps was changed): what is left carries over, refilled at the old rate until now and
      // capped at the new burst. A fresh full bucket at each change let alternating two such JWTs
      // pass every request.
      b.tokens = Math.min(cap, b.tokens + ((now - b.at) / 1000) * b.rps);
      b.at = now;
      b.rps = rps;
      b.cap = cap;
    }
    b.tokens = Math.min(cap, b.tokens + ((now - b.at) / 1000) * rps);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { limit: rps, remaining: Math.floor(b.tokens), reset: Math.ceil((cap - b.tokens) / rps), retryAfter: 0 };
    }
    const wait = (1 - b.tokens) / rps;
    return { limit: rps, remaining: 0, reset: Math.ceil((cap - b.tokens) / rps), retryAfter: Math.max(1, Math.ceil(wait)) };
  }

  /** Drops full buckets, which carry no information. */
  #sweep(now: number): void {
    for (const [k, b] of this.#buckets) if (b.tokens + ((now - b.at) / 1000) * b.rps >= b.cap) this.#buckets.delete(k);
  }
}

export function rateHeaders(d: RateDecision): Record<string, string> {
  const h: Record<string, string> = { 'X-RateLimit-Limit': String(d.limit), 'X-RateLimit-Remaining': String(d.remaining), 'X-RateLimit-Reset': String(d.reset) };
  if (d.retryAfter) h['Retry-After'] = String(d.retryAfter);
  return h;
}

export function rateLimited(d: RateDecision): RoostError {
  return new RoostError('RATE_LIMITED', `this credential is limited to ${d.limit} requests per second; retry after ${d.retryAfter} s`, { headers: rateHeaders(d), retryable: true });
}
