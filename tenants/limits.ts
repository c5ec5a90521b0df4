/**
 * Per-tenant limits enforced by this server process (set with `limits` on the
 * tenant): `concurrent_queries` (queries of /v0/sql and pipe endpoints running
 * at once), `storage_bytes` (bytes on disk of the workspace databases; ingest is
 * refused above it, reads go on), `events_per_second` (rows accepted by
 * /v0/events, a token bucket with one second of burst). `query_timeout_ms` and
 * `query_memory_bytes` are ClickHouse settings of every query (src/query/run.ts).
 * With several servers each enforces the limits on its own share of traffic.
 */
import type { App } from '../src/app.js';
import { RoostError } from '../src/errors.js';
import { quoteString } from '../src/cells/engine.js';
import type { Tenant, Workspace } from './registry.js';

const running = new Map<string, number>();

/**
 * Takes one of the tenant's query slots; the returned function gives it back
 * (call it exactly once). Over the limit: 429 RATE_LIMITED with Retry-After.
 */
export function acquireQuerySlot(tenant: Tenant): () => void {
  const limit = tenant.limits.concurrent_queries;
  const n = running.get(tenant.slug) ?? 0;
  if (limit && n >= limit) {
    throw new RoostError('RATE_LIMITED', `tenant "${tenant.slug}" already runs ${n} queries, its limit of concurrent queries; retry in a moment`, {
      retryable: true,
      headers: { 'Retry-After': '1', 'X-RateLimit-Limit': String(limit), 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '1' },
      details: { limit: 'concurrent_queries', value: limit },
    });
  }
  running.set(tenant.slug, n + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (running.get(tenant.slug) ?? 1) - 1;
    if (left <= 0) running.delete(tenant.slug); else running.set(tenant.slug, left);
  };
}

const usage = new Map<string, { bytes: number; at: number }>();
const USAGE_TTL_MS = 2_000;

/**
 * Bytes on disk of the tenant's workspace databases (cached for 2 s), plus what its events buffers
 * hold on the server's disk (acknowledged events not yet in the engine, and events the engine
 * refused, set aside): both are the tenant's data on this machine's disk.
 */
export async function storageUsed(app: App, tenant: Tenant, fresh = false): Promise<number> {
  const hit = usage.get(tenant.slug);
  if (!fresh && hit && performance.now() - hit.at < USAGE_TTL_MS) return hit.bytes;
  const dbs = app.state.list<Workspace>('workspaces', tenant.slug).map((w) => quoteString(w.database));
  let bytes = app.events?.bytesOf(tenant.slug) ?? 0;
  if (dbs.length) {
    const out = await app.cells.engineFor(tenant).exec(`SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database IN (${dbs.join(', ')})`);
    bytes += Number(out.toString('utf8').trim()) || 0;
  }
  usage.set(tenant.slug, { bytes, at: performance.now() });
  return bytes;
}

/** Forgets the cached usage (after an import, so the next check sees it). */
export function storageChanged(tenant: string): void {
  usage.delete(tenant);
}

/**
 * Refuses ingest when the tenant is at or over `storage_bytes`: 413
 * STORAGE_LIMIT. The check is made before an import; one import may end a
 * little over the limit, the next one is refused.
 */
export async function checkStorage(app: App, tenant: Tenant, fresh = false, leaving: Array<{ database: string; table: string }> = []): Promise<void> {
  const limit = tenant.limits.storage_bytes;
  if (!limit) return;
  let used = await storageUsed(app, tenant, fresh);
  // A replace's old table leaves at its commit: what counts is the usage after it (a tenant at its
  // limit may replace a large table with a smaller one; a replace larger than the room is refused).
  if (used >= limit && leaving.length) used -= await tablesBytes(app, tenant, leaving);
  if (used >= limit) {
    const what = leaving.length ? `would store ${used} bytes once the replace is done, at or over` : `stores ${used} bytes, at`;
    throw new RoostError('STORAGE_LIMIT', `tenant "${tenant.slug}" ${what} its storage limit of ${limit} bytes: nothing was stored. Reads keep working; delete or truncate data, or ask the operator to raise limits.storage_bytes`, {
      details: { limit: 'storage_bytes', value: limit, used },
    });
  }
}

/** Bytes on disk of these tables (0 for a table that is not there). */
async function tablesBytes(app: App, tenant: Tenant, tables: Array<{ database: string; table: string }>): Promise<number> {
  const which = tables.map((t) => `(database = ${quoteString(t.database)} AND table = ${quoteString(t.table)})`).join(' OR ');
  const out = await app.cells.engineFor(tenant).exec(`SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND (${which})`);
  return Number(out.toString('utf8').trim()) || 0;
}

interface Bucket { tokens: number; at: number; rate: number }
const buckets = new Map<string, Bucket>();

function bucketOf(tenant: string, rate: number): Bucket {
  const now = performance.now();
  let b = buckets.get(tenant);
  if (!b || b.rate !== rate) { b = { tokens: rate, at: now, rate }; buckets.set(tenant, b); }
  b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
  b.at = now;
  return b;
}

/**
 * Admits an events request when the tenant's bucket is not in debt (429
 * otherwise); `charge` then takes the rows it carried, which may put the bucket
 * in debt: a request is never cut in half, the next ones wait.
 */
export function admitEvents(tenant: Tenant): { charge(rows: number): Record<string, string> } {
  const rate = tenant.limits.events_per_second;
  if (!rate) return { charge: () => ({}) };
  const b = bucketOf(tenant.slug, rate);
  const headers = () => ({ 'X-RateLimit-Limit': String(rate), 'X-RateLimit-Remaining': String(Math.max(0, Math.floor(b.tokens))), 'X-RateLimit-Reset': String(Math.max(1, Math.ceil((rate - b.tokens) / rate))) });
  if (b.tokens < 1) {
    const wait = Math.max(1, Math.ceil((1 - b.tokens) / rate));
    throw new RoostError('RATE_LIMITED', `tenant "${tenant.slug}" is limited to ${rate} events per second; retry after ${wait} s`, { retryable: true, headers: { ...headers(), 'Retry-After': String(wait) }, details: { limit: 'events_per_second', value: rate } });
  }
  return { charge: (rows) => { b.tokens -= rows; return headers(); } };
}
