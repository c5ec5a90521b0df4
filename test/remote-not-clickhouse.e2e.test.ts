/**
 * A tenant's remote placement that answers, but not as ClickHouse does (a proxy's error page
 * naming internal hosts): the tenant's users get a 503 that says what kind of failure it is and
 * carries the request id, not the page's text; the operator finds the text in the server's log
 * under that request id. Real server, real HTTP, a real HTTP listener in front of nothing.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

const PAGE = '<html><body><h1>502 Bad Gateway</h1>upstream ch-7.db.corp.internal:8123 (10.20.30.40) refused; lb internal-lb-7</body></html>';
let srv: RunningServer;
let proxy: http.Server;
let token = '';

beforeAll(async () => {
  proxy = http.createServer((req, res) => {
    req.resume();
    res.writeHead(502, { 'Content-Type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const port = (proxy.address() as import('node:net').AddressInfo).port;
  srv = await startServer();
  const op = srv.operatorToken;
  expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, body: JSON.stringify({ slug: 'px' }) })).status).toBe(201);
  const ws = await call(`${srv.url}/v0/tenants/px/workspaces`, { method: 'POST', token: op, body: JSON.stringify({ name: 'main' }) });
  expect(ws.status, ws.text).toBe(201);
  token = ws.body.token;
  const p = await call(`${srv.url}/v0/tenants/px`, { method: 'PATCH', token: op, body: JSON.stringify({ placement: { type: 'clickhouse', url: `http://127.0.0.1:${port}` } }) });
  expect(p.status, p.text).toBe(200);
}, 120_000);
afterAll(async () => {
  await srv?.stop();
  await new Promise((r) => proxy?.close(r));
});

describe('a remote placement that does not answer as ClickHouse', () => {
  it('is a 503 without the answer\'s text for the tenant, and the text in the server\'s log by request id', async () => {
    const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT 1 FORMAT JSON')}`, { token });
    expect(r.status, r.text).toBe(503);
    expect(r.body.code).toBe('CELL_UNAVAILABLE');
    expect(r.body.retryable).toBe(true);
    expect(r.body.error).toContain('did not answer as ClickHouse does');
    for (const secret of ['internal-lb-7', 'ch-7.db.corp.internal', '10.20.30.40', '<html>']) expect(r.text).not.toContain(secret);
    expect(typeof r.body.request_id).toBe('string');
    const logged = srv.logs.find((l) => l.msg === 'engine unavailable' && l.request_id === r.body.request_id);
    expect(logged, JSON.stringify(srv.logs.filter((l) => l.level !== 'info').slice(-5))).toBeDefined();
    expect(JSON.stringify((logged!.err as { cause?: unknown }).cause)).toContain('internal-lb-7');
  });
});
