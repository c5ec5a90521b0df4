// An upload (or query) running while its workspace or tenant is deleted: the answer says what
// happened (404 UNKNOWN_WORKSPACE / UNKNOWN_TENANT), not the engine's "database does not exist"
// as the request's fault (422) nor "the cell stopped; retry" (503) when no retry can succeed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
beforeAll(async () => { srv = await startServer(); }, 120_000);
afterAll(async () => { await srv?.stop(); });

const op = (path: string, method = 'GET', body?: unknown) =>
  call(`${srv.url}${path}`, { method, token: srv.operatorToken, ...(body ? { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } } : {}) });

/** Starts an upload whose body is held open; answers a function that ends the body, and the response. */
function heldUpload(token: string): { finish: () => void; response: Promise<{ status: number; body: Record<string, unknown> }> } {
  let push!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start(c) { push = c; } });
  const rows = Array.from({ length: 2000 }, (_, i) => `${i},row${i}`).join('\n') + '\n';
  for (let i = 0; i < 10; i++) push.enqueue(new TextEncoder().encode(rows));
  const response = fetch(`${srv.url}/v0/datasources?name=d&mode=append`, {
    method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'text/csv' }, body, duplex: 'half',
  } as RequestInit).then(async (r) => ({ status: r.status, body: await r.json() as Record<string, unknown> }));
  return { finish: () => { push.enqueue(new TextEncoder().encode('1,last\n')); push.close(); }, response };
}

async function workspaceWithData(tenant: string, name: string): Promise<string> {
  const w = await op(`/v0/tenants/${tenant}/workspaces`, 'POST', { name });
  expect(w.status, w.text).toBe(201);
  const token = w.body.token as string;
  const d = await call(`${srv.url}/v0/datasources?name=d&schema=${encodeURIComponent('a Int32, b String')}`, { method: 'POST', token });
  expect(d.status, d.text).toBe(200);
  return token;
}

describe('a request whose workspace is deleted while it runs', () => {
  it('an upload answers 404 UNKNOWN_WORKSPACE, and a workspace created again under the name is empty', async () => {
    const token = await workspaceWithData('local', 'doomed');
    const up = heldUpload(token);
    await new Promise((r) => setTimeout(r, 400));
    expect((await op('/v0/tenants/local/workspaces/doomed', 'DELETE')).status).toBe(200);
    up.finish();
    const r = await up.response;
    expect(r.status, JSON.stringify(r.body)).toBe(404);
    expect(r.body.code).toBe('UNKNOWN_WORKSPACE');
    expect(String(r.body.error)).toMatch(/workspace "doomed" was deleted while this request ran/);
    const again = await workspaceWithData('local', 'doomed');
    const n = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM d FORMAT JSON')}`, { token: again });
    expect(n.body.data, n.text).toEqual([{ n: 0 }]);
  });

  it('an upload whose tenant is deleted answers 404 UNKNOWN_TENANT, not a 503 to retry', async () => {
    expect((await op('/v0/tenants', 'POST', { slug: 'doomed-co' })).status).toBe(201);
    const token = await workspaceWithData('doomed-co', 'w');
    const up = heldUpload(token);
    await new Promise((r) => setTimeout(r, 400));
    expect((await op('/v0/tenants/doomed-co', 'DELETE')).status).toBe(200);
    up.finish();
    const r = await up.response;
    expect(r.status, JSON.stringify(r.body)).toBe(404);
    expect(r.body.code).toBe('UNKNOWN_TENANT');
    expect(r.body.retryable).toBeUndefined();
  });
});
