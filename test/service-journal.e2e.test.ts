/**
 * The operations log and the audit log survive kill -9 (the service log writes rows to the
 * engine once a second: a kill lost the rows of the operations acknowledged just before it).
 * Their rows are journaled on disk before the request is answered, put back at the next start,
 * and the journal files go once the rows are in the engine. Real server, real engine, real SIGKILL.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

const journalFiles = (s: RunningServer): string[] => {
  const dir = path.join(s.dataDir, 'service-journal');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).flatMap((t) => fs.readdirSync(path.join(dir, t)).map((f) => `${t}/${f}`));
};

async function rowsEventually(s: RunningServer, tok: string, q: string, n: number): Promise<Array<Record<string, string>>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await call(`${s.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSONEachRow`)}`, { token: tok });
    const rows = r.status === 200 ? r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>) : [];
    if (rows.length >= n || Date.now() > deadline) return rows;
    await new Promise((res) => setTimeout(res, 200));
  }
}

describe('service log journal', () => {
  it('ops-log and audit rows of operations answered right before a kill -9 are in their tables after the restart (at least once: a kill inside a write may write its rows twice, as the README says)', async () => {
    const s1 = await startServer();
    let s2: RunningServer | undefined;
    try {
      const tok = (await call(`${s1.url}/tokens`)).body.workspace_admin_token as string;
      // Whatever the start wrote is in the engine first (so that only the rows below can wait).
      await rowsEventually(s1, tok, 'SELECT 1 FROM tinybird.datasources_ops_log', 0);
      const ids: string[] = [];
      const c = await call(`${s1.url}/v0/datasources?name=jr&schema=${encodeURIComponent('id Int32')}`, { method: 'POST', token: tok, headers: { 'X-Request-Id': 'jr-create' } });
      expect(c.status, c.text).toBe(200);
      ids.push('jr-create');
      for (let i = 0; i < 5; i++) {
        const a = await call(`${s1.url}/v0/datasources?name=jr&mode=append`, { method: 'POST', token: tok, body: `${i}\n`, headers: { 'Content-Type': 'text/csv', 'X-Request-Id': `jr-append-${i}` } });
        expect(a.status, a.text).toBe(200);
        ids.push(`jr-append-${i}`);
      }
      const t = await call(`${s1.url}/v0/tokens?name=jr_token&scope=DATASOURCES:READ:jr`, { method: 'POST', token: tok, headers: { 'X-Request-Id': 'jr-token' } });
      expect(t.status, t.text).toBe(200);
      // Killed at once: the rows since the last write (once a second) wait in memory and on disk.
      process.kill(s1.proc.pid!, 'SIGKILL');
      await s1.exited;
      expect(journalFiles(s1).length).toBeGreaterThan(0);

      s2 = await startServer({ dataDir: s1.dataDir });
      const ops = await rowsEventually(s2, tok, `SELECT request_id, event_type FROM tinybird.datasources_ops_log WHERE request_id LIKE 'jr-%' ORDER BY request_id`, ids.length);
      // Every one is there; one the kill caught inside its write (the journal not yet removed)
      // may be there twice (CI under load met it once), never more.
      expect([...new Set(ops.map((r) => r.request_id))].sort()).toEqual([...ids].sort());
      const times = new Map<string, number>();
      for (const r of ops) times.set(r.request_id!, (times.get(r.request_id!) ?? 0) + 1);
      expect(Math.max(...times.values())).toBeLessThanOrEqual(2);
      const audit = await rowsEventually(s2, tok, "SELECT event FROM roost.audit_log WHERE request_id = 'jr-token'", 1);
      expect(audit.map((r) => r.event)).toContain('token.created');
      // Written: the journal is gone (and nothing was written twice).
      await expect.poll(() => journalFiles(s2!), { timeout: 10_000 }).toEqual([]);
      await new Promise((r) => setTimeout(r, 1500));
      // Still each at most twice: a write the engine took but answered past the time limit (CI
      // under load met it) is written again, as at-least-once allows, and never a third time.
      const again = await rowsEventually(s2, tok, `SELECT request_id FROM tinybird.datasources_ops_log WHERE request_id LIKE 'jr-%'`, ops.length);
      const seen = new Map<string, number>();
      for (const r of again) seen.set(r.request_id!, (seen.get(r.request_id!) ?? 0) + 1);
      expect([...seen.keys()].sort()).toEqual([...ids].sort());
      expect(Math.max(...seen.values())).toBeLessThanOrEqual(2);
    } finally {
      await s1.stop('SIGKILL');
      await s2?.stop();
    }
  }, 120_000);
});
