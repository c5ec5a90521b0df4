/**
 * Shared by the events-durability tests: NDJSON bodies of numbered events, the ids a data
 * source holds (with how often), waiting for a data source's events buffer to drain, and the
 * exactly-once check of acknowledged ids.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { call, type RunningServer } from './server.js';

/** `n` events `{"id": from..from+n-1}`, one per line. */
export const eventsBody = (from: number, n: number): string => Array.from({ length: n }, (_, i) => JSON.stringify({ id: from + i })).join('\n') + '\n';

/** Each id stored in `ds` with how many times it is stored. */
export async function storedIds(s: RunningServer, tok: string, ds: string): Promise<Map<number, number>> {
  const r = await call(`${s.url}/v0/sql?q=${encodeURIComponent(`SELECT id, count() AS c FROM ${ds} GROUP BY id FORMAT JSONEachRow`)}`, { token: tok });
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  const m = new Map<number, number>();
  for (const l of r.text.split('\n').filter(Boolean)) { const o = JSON.parse(l); m.set(Number(o.id), Number(o.c)); }
  return m;
}

/** The events buffer folder of a data source. */
export const segmentDir = (s: RunningServer, ds: string, ws = 'default', tenant = 'local'): string => path.join(s.dataDir, 'events', tenant, ws, ds);

/** Waits until the events buffer of `ds` holds no segment (everything flushed), for at most `ms`. */
export async function drained(s: RunningServer, ds: string, ms: number, ws = 'default'): Promise<void> {
  const dir = segmentDir(s, ds, ws);
  const deadline = Date.now() + ms;
  for (;;) {
    // (The batch's manifest goes after its segments: drained once it is gone too.)
    const left = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.ndjson') || f === 'flushing.json') : [];
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`events buffer of ${ds} not drained: ${left.length} files left (${left.slice(0, 3).join(', ')})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every acknowledged id is stored exactly once; no id is stored twice. */
export function checkExactlyOnce(got: Map<number, number>, acked: Iterable<number>): void {
  const dup = [...got].filter(([, c]) => c > 1).map(([id]) => id);
  expect(dup.length, `ids stored more than once: ${dup.slice(0, 10).join(',')}`).toBe(0);
  const lost = [...acked].filter((id) => !got.has(id));
  expect(lost.length, `acknowledged ids lost: ${lost.slice(0, 10).join(',')}`).toBe(0);
}
