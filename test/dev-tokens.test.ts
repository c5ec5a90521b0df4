/**
 * `GET /tokens` (development mode) answers the development tokens' current secrets: it handed
 * out the secrets sealed when workspace `default` was seeded, dead once a token was refreshed
 * or deleted. A refresh is followed (also across a restart); a deleted token is left out; when
 * none is left the answer says so (404) rather than handing out dead secrets.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
beforeAll(async () => { srv = await startServer(); }, 120_000);
afterAll(async () => { await srv?.stop(); });

const tokens = async () => (await call(`${srv.url}/tokens`)).body as Record<string, string>;
const works = async (secret: string) => (await call(`${srv.url}/v0/datasources`, { token: secret })).status;
const enc = encodeURIComponent;

describe('GET /tokens follows the development tokens', () => {
  it('a refreshed token is answered with its new secret, also after a restart', async () => {
    const before = await tokens();
    expect(Object.keys(before).sort()).toEqual(['admin_token', 'user_token', 'workspace_admin_token']);
    for (const s of Object.values(before)) expect(await works(s)).toBe(200);

    const r = await call(`${srv.url}/v0/tokens/${enc('admin token')}/refresh`, { method: 'POST', token: before.workspace_admin_token });
    expect(r.status, r.text).toBe(200);
    expect(await works(before.admin_token!)).toBe(401);
    const after = await tokens();
    expect(after.admin_token).toBe(r.body.token);
    expect(after).toMatchObject({ workspace_admin_token: before.workspace_admin_token, user_token: before.user_token });
    expect(await works(after.admin_token!)).toBe(200);

    // The workspace admin token refreshed by another one.
    const w = await call(`${srv.url}/v0/tokens/${enc('workspace admin token')}/refresh`, { method: 'POST', token: after.admin_token });
    expect(w.status, w.text).toBe(200);
    expect((await tokens()).workspace_admin_token).toBe(w.body.token);

    await srv.stop();
    srv = await startServer({ dataDir: srv.dataDir });
    const restarted = await tokens();
    expect(restarted).toEqual({ ...after, workspace_admin_token: w.body.token });
    for (const s of Object.values(restarted)) expect(await works(s)).toBe(200);
  });

  it('a renamed token keeps its place (its secret is unchanged)', async () => {
    const t = await tokens();
    const r = await call(`${srv.url}/v0/tokens/${enc('user token')}?name=${enc('my user token')}`, { method: 'PUT', token: t.admin_token });
    expect(r.status, r.text).toBe(200);
    expect((await tokens()).user_token).toBe(t.user_token);
  });

  it('a deleted token is left out; with none left the answer is a 404 saying so', async () => {
    const t = await tokens();
    expect((await call(`${srv.url}/v0/tokens/${enc('my user token')}`, { method: 'DELETE', token: t.admin_token })).status).toBe(204);
    const left = await tokens();
    expect(Object.keys(left).sort()).toEqual(['admin_token', 'workspace_admin_token']);
    expect((await call(`${srv.url}/v0/tokens/${enc('admin token')}`, { method: 'DELETE', token: t.workspace_admin_token })).status).toBe(204);
    expect((await call(`${srv.url}/v0/tokens/${enc('workspace admin token')}`, { method: 'DELETE', token: t.workspace_admin_token })).status).toBe(204);
    const none = await call(`${srv.url}/tokens`);
    expect(none.status, none.text).toBe(404);
    expect(none.body.code).toBe('NOT_FOUND');
    expect(none.body.error).toMatch(/development tokens/);
  });
});

describe('development mode answers only requests addressed to this machine', () => {
  // A web page whose host name an attacker's DNS points at 127.0.0.1 (DNS rebinding) is
  // same-origin with the server: it must not read /tokens (admin tokens) or /metrics.
  const withHost = (path: string, host: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port, path, headers: { Host: host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });

  it('a DNS name is refused with 403 HOST_NOT_ALLOWED, before any route', async () => {
    for (const path of ['/tokens', '/metrics', '/v0/health']) {
      const r = await withHost(path, `attacker.example:${srv.port}`);
      expect(r.status, `${path}: ${r.body}`).toBe(403);
      expect(JSON.parse(r.body).code).toBe('HOST_NOT_ALLOWED');
      expect(r.body).not.toMatch(/p\.[A-Za-z0-9_-]{20,}/);  // no token secret
    }
  });

  it('localhost, names under .localhost and IP literals are answered', async () => {
    for (const host of [`localhost:${srv.port}`, 'app.localhost', `127.0.0.1:${srv.port}`, `[::1]:${srv.port}`, '10.1.2.3']) {
      // (The tokens were deleted by the tests above: /metrics, open in development mode.)
      const r = await withHost('/metrics', host);
      expect(r.status, `${host}: ${r.body}`).toBe(200);
      expect(r.body).toContain('roost_http_requests_total');
    }
  });
});
