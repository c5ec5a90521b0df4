/**
 * A client that stops reading a streamed result: the tenant's engine runs one statement at a
 * time, so the query it holds held every other request of the tenant until its time limit
 * (found by a black-box test: a `SELECT 1` waited 29 s, 92 s with three such clients). A client
 * that takes nothing for ROOST_CLIENT_STALL_MS is let go and its query cancelled.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token = '';
beforeAll(async () => {
  srv = await startServer({ env: { ROOST_CLIENT_STALL_MS: '1500' } });
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  // A time limit far beyond the test's: only the stall limit can free the engine in time.
  expect((await call(`${srv.url}/v0/tenants/local`, { method: 'PATCH', token: srv.operatorToken, body: JSON.stringify({ limits: { query_timeout_ms: 300_000 } }), headers: { 'Content-Type': 'application/json' } })).status).toBe(200);
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('a client that stops reading its streamed result', () => {
  it('is dropped after the stall limit, and the tenant\'s other requests go on', async () => {
    const q = 'SELECT number, toString(number) AS s FROM numbers(2000000000) FORMAT CSV';
    const port = Number(new URL(srv.url).port);
    const sock = net.connect(port, '127.0.0.1');
    let got = 0;
    sock.on('data', (d) => { got += d.length; if (got > 1e6) sock.pause(); });
    sock.on('error', () => {});
    sock.write(`POST /v0/sql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(q)}\r\n\r\n${q}`);
    try {
      for (let i = 0; i < 100 && got <= 1e6; i++) await new Promise((r) => setTimeout(r, 50));
      expect(got).toBeGreaterThan(1e6);
      // The stalled client holds the engine; this query waits for it to be let go (not for the
      // query's 300 s limit, nor for the client to leave: it never does here).
      const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT 1 AS x FORMAT JSON')}`, { token, signal: AbortSignal.timeout(30_000) });
      expect(r.status, r.text).toBe(200);
      expect(r.body.data).toEqual([{ x: 1 }]);
      expect(srv.logs.some((l) => l.msg === 'client read nothing of its result for too long; dropped' && l.stall_ms === 1500)).toBe(true);
    } finally {
      sock.destroy();
    }
  }, 60_000);
});
