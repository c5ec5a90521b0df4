/**
 * A tenant's remote placement that answers, but not as ClickHouse does (a proxy's error page
 * naming internal hosts, an SSO page answered 200), or with a ClickHouse network error naming the
 * cluster's hosts: the tenant's users get a 503 that says what kind of failure it is and carries
 * the request id, not the text; the operator finds the text in the server's log under that
 * request id. Real server, real HTTP, real HTTP listeners standing in for the remote server.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

const SECRETS = ['internal-lb-7', 'ch-7.db.corp.internal', '10.20.30.40', '10.20.30.41', '<html>'];
/** What each stand-in answers to every request. */
const ANSWERS: Record<string, { status: number; body: string }> = {
  // A proxy's error page (with "Status Code: 502" in it: not a ClickHouse error for all its "Code: ").
  proxy: { status: 502, body: '<html><body><h1>502 Bad Gateway</h1>Status Code: 502. upstream ch-7.db.corp.internal:8123 (10.20.30.40) refused; lb internal-lb-7</body></html>' },
  // A login page answered 200 to any request.
  sso: { status: 200, body: '<html><body>Sign in to internal-lb-7 (10.20.30.40)</body></html>' },
  // ClickHouse's own network error, naming a shard's address.
  shard: { status: 500, body: 'Code: 279. DB::Exception: All connection tries failed. Log: \n\nCode: 210. DB::NetException: Connection refused (10.20.30.41:9000). (ALL_CONNECTION_TRIES_FAILED) (version 23.8.1.1)\n' },
};
let srv: RunningServer;
const servers: http.Server[] = [];
const tokens: Record<string, string> = {};

beforeAll(async () => {
  srv = await startServer();
  const op = srv.operatorToken;
  for (const [slug, a] of Object.entries(ANSWERS)) {
    const stand = http.createServer((req, res) => { req.resume(); res.writeHead(a.status, { 'Content-Type': 'text/html' }).end(a.body); });
    servers.push(stand);
    await new Promise<void>((r) => stand.listen(0, '127.0.0.1', r));
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, body: JSON.stringify({ slug }) })).status).toBe(201);
    const ws = await call(`${srv.url}/v0/tenants/${slug}/workspaces`, { method: 'POST', token: op, body: JSON.stringify({ name: 'main' }) });
    expect(ws.status, ws.text).toBe(201);
    tokens[slug] = ws.body.token;
    const url = `http://127.0.0.1:${(stand.address() as AddressInfo).port}`;
    const p = await call(`${srv.url}/v0/tenants/${slug}`, { method: 'PATCH', token: op, body: JSON.stringify({ placement: { type: 'clickhouse', url } }) });
    expect(p.status, p.text).toBe(200);
  }
}, 120_000);
afterAll(async () => {
  await srv?.stop();
  for (const s of servers) await new Promise((r) => s.close(r));
});

describe('a remote placement that fails without saying so in ClickHouse\'s terms', () => {
  for (const [slug, kind] of [['proxy', 'did not answer as ClickHouse does'], ['sso', 'did not answer as ClickHouse does'], ['shard', 'ALL_CONNECTION_TRIES_FAILED']] as const) {
    it(`${slug}: a 503 without the answer's text for the tenant, and the text in the server's log by request id`, async () => {
      const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT 1 FORMAT JSON')}`, { token: tokens[slug] });
      expect(r.status, r.text).toBe(503);
      expect(r.body.code).toBe('CELL_UNAVAILABLE');
      expect(r.body.retryable).toBe(true);
      expect(r.body.error).toContain(kind);
      for (const secret of SECRETS) expect(r.text).not.toContain(secret);
      expect(typeof r.body.request_id).toBe('string');
      const logged = srv.logs.find((l) => l.msg === 'engine unavailable' && l.request_id === r.body.request_id);
      expect(logged, JSON.stringify(srv.logs.filter((l) => l.level !== 'info').slice(-5))).toBeDefined();
      expect(JSON.stringify((logged!.err as { cause?: unknown }).cause)).toMatch(/internal-lb-7|10\.20\.30\.41/);
    });
  }
});
