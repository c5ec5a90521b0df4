/**
 * `GET /tokens` (development mode) answers the development tokens' current secrets: it handed
 * out the secrets sealed when workspace `default` was seeded, dead once a token was refreshed
 * or deleted. A refresh is followed (also across a restart); a deleted token is left out; when
 * none is left the answer says so (404) rather than handing out dead secrets.
 */
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
