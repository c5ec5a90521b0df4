/**
 * Results waiting for clients that read nothing are held in memory up to 8 MiB each, and no more
 * than ROOST_RESULT_MEMORY_TOTAL_BYTES all together; past it they go to spool files. Without the
 * cap 100 such clients of one tenant pinned 826 MiB of the server (the isolation round of the
 * twenty-third session). Real server over raw sockets that stop reading after the first bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { pausedSqlClient } from './helpers/disk.js';

let srv: RunningServer;
let token = '';
beforeAll(async () => {
  srv = await startServer({ env: { ROOST_RESULT_MEMORY_TOTAL_BYTES: String(4 << 20) } });
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

async function resultMemory(): Promise<number> {
  const text = (await call(`${srv.url}/metrics`, { token: srv.operatorToken })).text;
  return Number(/^roost_result_memory_bytes (\d+)/m.exec(text)?.[1] ?? NaN);
}

describe('results held for clients that read nothing', () => {
  it('stay under the memory cap all together (the rest spooled), and each is whole once read', async () => {
    const rows = 1_500_000;  // ~20 MB of CSV each
    const q = `SELECT number, toString(number * 7) AS s FROM numbers(${rows}) FORMAT CSV`;
    const clients = Array.from({ length: 8 }, () => pausedSqlClient(srv.url, token, q));
    // Every query has run to its end in the engine (the tenant runs them one at a time): all 8
    // results are held by the server now, 20 MB each, for clients paused after 64 KiB.
    let peak = 0;
    for (let i = 0; i < 300; i++) {
      peak = Math.max(peak, await resultMemory());
      const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT 1 FORMAT TSV')}`, { token });
      if (r.status === 200 && clients.every((c) => c.got() > 0)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    await new Promise((res) => setTimeout(res, 500));
    peak = Math.max(peak, await resultMemory());
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(4 << 20);
    for (const c of clients) c.read();
    await Promise.all(clients.map((c) => c.done));
    for (const c of clients) {
      const text = Buffer.concat(c.parts).toString('latin1');
      expect(text).toMatch(/^HTTP\/1\.1 200/);
      // Chunked body: the last row and the row count are there.
      expect(text).toContain(`\n${rows - 1},"${(rows - 1) * 7}"\n`);
      expect(text.endsWith('0\r\n\r\n')).toBe(true);
    }
    expect(await resultMemory()).toBe(0);
  }, 120_000);
});
