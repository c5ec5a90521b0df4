/**
 * Results waiting for clients that read nothing are held in memory up to 8 MiB each, and no more
 * than ROOST_RESULT_MEMORY_TOTAL_BYTES all together; past it they go to spool files. Without the
 * cap 100 such clients of one tenant pinned 826 MiB of the server (the isolation round of the
 * twenty-third session). Real server over raw sockets that stop reading after the first bytes.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

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
    const port = Number(new URL(srv.url).port);
    const clients = Array.from({ length: 8 }, () => {
      const sock = net.connect(port, '127.0.0.1');
      const parts: Buffer[] = [];
      let got = 0;
      let reading = false;
      const done = new Promise<void>((resolve) => sock.on('end', () => resolve()));
      sock.on('data', (d) => { parts.push(d); got += d.length; if (!reading && got > 64 * 1024) sock.pause(); });
      sock.on('error', () => {});
      sock.write(`POST /v0/sql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(q)}\r\n\r\n${q}`);
      return { sock, parts, done, got: () => got, read: () => { reading = true; sock.resume(); } };
    });
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
