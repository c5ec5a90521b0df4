/**
 * A tenant whose remote ClickHouse accepts connections and never answers: the service rows
 * waiting for it stay within the bound (ROOST_SERVICE_LOG_MAX_PENDING_BYTES per tenant and
 * table, the oldest dropped and counted), each service-log statement gives up at its time limit
 * (ROOST_SERVICE_WRITE_TIMEOUT_MS, also the server version asked first), and the server keeps
 * answering other tenants. Real server, real HTTP, a real TCP listener that never answers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, type RunningServer } from './helpers/server.js';
import { metricSum } from './helpers/metrics.js';
import { startWithHangingTenant, type HangingTenant } from './helpers/hanging-remote.js';

const CAP = 256 * 1024;
let hanging: HangingTenant;
let srv: RunningServer;
let hangToken = '';
let localToken = '';

const metric = (name: string, labels: Record<string, string>): Promise<number> => metricSum(srv, name, labels);

beforeAll(async () => {
  hanging = await startWithHangingTenant({ ROOST_SERVICE_LOG_MAX_PENDING_BYTES: String(CAP), ROOST_SERVICE_WRITE_TIMEOUT_MS: '2000' });
  ({ srv, token: hangToken } = hanging);
  localToken = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 120_000);
afterAll(async () => {
  await hanging?.stop();
});

describe('a tenant on a remote server that never answers', () => {
  it('its waiting service rows stay within the bound, its writes give up at the time limit, other tenants are answered', async () => {
    // Refused before any engine is asked (a syntax error), logged with its 20 KB text: rows of
    // about 8 KiB in pipe_stats_rt and 16 KiB in endpoint_errors, 300 of each.
    const body = `SELECT '${'x'.repeat(20_000)}' FROM FROM`;
    let peak = 0;
    for (let round = 0; round < 15; round++) {
      const answers = await Promise.all(Array.from({ length: 20 }, () =>
        call(`${srv.url}/v0/sql`, { method: 'POST', token: hangToken, body, signal: AbortSignal.timeout(10_000) })));
      for (const a of answers) expect(a.status, a.text.slice(0, 200)).toBe(400);
      peak = Math.max(peak, await metric('roost_service_log_pending_bytes', { tenant: 'hang' }));
      // Another tenant is answered meanwhile.
      const other = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT 1 AS one FORMAT JSON')}`, { token: localToken });
      expect(other.status, other.text).toBe(200);
      expect(other.body.data).toEqual([{ one: 1 }]);
    }
    peak = Math.max(peak, await metric('roost_service_log_pending_bytes', { tenant: 'hang' }));
    // Waiting (at most CAP per table) plus a write in flight (as much again), over the service tables.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(2 * 4 * CAP);
    expect(await metric('roost_service_log_dropped_rows_total', { tenant: 'hang' })).toBeGreaterThan(0);
    const dropLogs = srv.logs.filter((l) => String(l.msg).startsWith('service log rows dropped') && l.tenant === 'hang');
    expect(dropLogs.length).toBeGreaterThanOrEqual(1);
    expect(dropLogs.length).toBeLessThanOrEqual(4);  // once per table, not once per row
    // The write (the tables check, which asks the server's version first) gave up at its time
    // limit, not the client's 300 s.
    await expect.poll(() => srv.logs.some((l) => l.msg === 'service log write failed; rows kept for the next flush' && l.tenant === 'hang'), { timeout: 15_000 }).toBe(true);
  }, 120_000);

  it('its journaled rows (audit) stay within the bound on disk too: the oldest dropped from memory leave the journal', async () => {
    const narrow = await call(`${srv.url}/v0/tokens?name=narrow&scope=${encodeURIComponent('DATASOURCES:READ:nothing')}`, { method: 'POST', token: hangToken });
    expect(narrow.status, narrow.text).toBe(200);
    const journal = path.join(srv.dataDir, 'service-journal', 'hang');
    const onDisk = () => fs.existsSync(journal)
      ? fs.readdirSync(journal).filter((f) => f.startsWith('audit_log.')).reduce((a, f) => a + fs.statSync(path.join(journal, f)).size, 0)
      : 0;
    // Each refusal is audited in the tenant's audit_log, which is journaled: 3,000 of them, far
    // over the bound, while every write of the tenant hangs and gives up.
    let peak = 0;
    for (let round = 0; round < 150; round++) {
      const answers = await Promise.all(Array.from({ length: 20 }, () =>
        call(`${srv.url}/v0/datasources?name=refused&schema=${encodeURIComponent('a Int32')}`, { method: 'POST', token: narrow.body.token, signal: AbortSignal.timeout(10_000) })));
      for (const a of answers) expect(a.status, a.text.slice(0, 200)).toBe(403);
      peak = Math.max(peak, onDisk());
    }
    expect(await metric('roost_service_log_dropped_rows_total', { tenant: 'hang', table: 'audit_log' })).toBeGreaterThan(0);
    // After the next failed write, the journal holds what memory keeps (the bound, a write's
    // worth in flight, the rows since): not the 3,000 rows.
    // Two more failed writes: the second began after the last row.
    const failed = () => srv.logs.filter((l) => l.msg === 'service log write failed; rows kept for the next flush' && l.tenant === 'hang').length;
    const n0 = failed();
    await expect.poll(failed, { timeout: 30_000 }).toBeGreaterThanOrEqual(n0 + 2);
    const after = onDisk();
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThanOrEqual(3 * CAP);
    expect(peak).toBeGreaterThan(0);
  }, 180_000);
});
