/**
 * The service journal's bound on disk when the rows are dropped while a write hangs. A tenant's
 * remote ClickHouse accepts connections and never answers; a write of one journaled row (an
 * audit row) is in flight; meanwhile far more audit rows than the bound arrive, and the oldest
 * are dropped from memory as they come. When that write fails, what it merges back is within the
 * bound, so it drops nothing more: the journal was then not compacted, and kept every row of the
 * outage on disk while memory kept the bound's worth (seen in CI: 1.2 MB against 256 KiB).
 * Real server, real HTTP, a real TCP listener that never answers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type RunningServer } from './helpers/server.js';
import { metricSum } from './helpers/metrics.js';
import { startWithHangingTenant, type HangingTenant } from './helpers/hanging-remote.js';

// The smallest bound the server takes, so a few hundred audit rows are past it.
const CAP = 64 * 1024;
// Long enough for the rows below to arrive while the first write hangs, on a slow machine too
// (they took 7.8 s once in CI, against 6 s then).
const WRITE_TIMEOUT_MS = 10_000;
let hanging: HangingTenant;
let srv: RunningServer;
let hangToken = '';

beforeAll(async () => {
  hanging = await startWithHangingTenant({ ROOST_SERVICE_LOG_MAX_PENDING_BYTES: String(CAP), ROOST_SERVICE_WRITE_TIMEOUT_MS: String(WRITE_TIMEOUT_MS) });
  ({ srv, token: hangToken } = hanging);
}, 120_000);
afterAll(async () => {
  await hanging?.stop();
});

describe('rows dropped from memory while a write of the table hangs', () => {
  it('leave the journal on disk too, though the failed write merges back no more than the bound', async () => {
    const journal = path.join(srv.dataDir, 'service-journal', 'hang');
    const onDisk = () => fs.existsSync(journal)
      ? fs.readdirSync(journal).filter((f) => f.startsWith('audit_log.')).reduce((a, f) => a + fs.statSync(path.join(journal, f)).size, 0)
      : 0;
    const failed = () => srv.logs.filter((l) => l.msg === 'service log write failed; rows kept for the next flush' && l.tenant === 'hang').length;
    // One audit row (the token's creation), taken by the next flush (every second) into a write
    // that hangs for WRITE_TIMEOUT_MS.
    const narrow = await call(`${srv.url}/v0/tokens?name=narrow&scope=${encodeURIComponent('DATASOURCES:READ:nothing')}`, { method: 'POST', token: hangToken });
    expect(narrow.status, narrow.text).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    const n0 = failed();
    // Meanwhile each refusal is audited: 800 rows, several times the bound.
    const refuse = () => call(`${srv.url}/v0/datasources?name=refused&schema=${encodeURIComponent('a Int32')}`, { method: 'POST', token: narrow.body.token, signal: AbortSignal.timeout(10_000) });
    const dropped = () => metricSum(srv, 'roost_service_log_dropped_rows_total', { tenant: 'hang', table: 'audit_log' });
    const t0 = performance.now();
    for (let round = 0; round < 40; round++) {
      const answers = await Promise.all(Array.from({ length: 20 }, refuse));
      for (const a of answers) expect(a.status, a.text.slice(0, 200)).toBe(403);
    }
    // Then one at a time until the oldest are dropped again: the rows kept are then 7/8 of the
    // bound, so the hanging write's row merged back stays within it and drops nothing more.
    const d0 = await dropped();
    for (let i = 0; i < 200 && (await dropped()) === d0; i++) expect((await refuse()).status).toBe(403);
    expect(await dropped()).toBeGreaterThan(d0);
    const pushedMs = performance.now() - t0;
    // The scenario held: the rows arrived before the hanging write gave up (else this test
    // proves nothing), and the oldest were dropped from memory.
    expect(failed(), `the write gave up while the rows were still arriving (${Math.round(pushedMs)} ms)`).toBe(n0);
    expect(onDisk()).toBeGreaterThan(3 * CAP);
    // The hanging write fails and merges its row back; the next one (the kept rows, nothing new
    // behind them) fails too. The journal then holds what memory keeps, not the 800 rows.
    await expect.poll(failed, { timeout: 4 * WRITE_TIMEOUT_MS }).toBeGreaterThanOrEqual(n0 + 2);
    const after = onDisk();
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThanOrEqual(2 * CAP);
  }, 120_000);
});
