// A pipe publishes what it reads to whoever may read the pipe. The audit log, which a token reads
// only with ADMIN (never DATASOURCES:READ:*), went into a pipe saved by a PIPES:CREATE token and
// out through PIPES:READ on that pipe (found by this session's audit).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer, workspaceApi } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
const { post, createToken } = workspaceApi(() => srv, () => admin);

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  // Something in the audit log: a refused call.
  expect((await call(`${srv.url}/v0/datasources/nothing`, { token: 'p.not-a-token' })).status).toBe(401);
  expect((await post(`/v0/datasources?name=ev&schema=${encodeURIComponent('id UInt32')}`, 'id\n1\n')).status).toBe(200);
});
afterAll(async () => { await srv?.stop(); });

const createPipe = (token: string, name: string, sql: string) =>
  call(`${srv.url}/v0/pipes`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name, nodes: [{ name: 'n', sql, type: 'endpoint' }] }) });

describe('what a pipe may publish', () => {
  it('a PIPES:CREATE token cannot put the audit log into a pipe (403), directly or in a subquery', async () => {
    const t = await createToken('pipe_maker', ['PIPES:CREATE', 'PIPES:READ:auditpipe', 'PIPES:READ:auditpipe2']);
    const r = await createPipe(t, 'auditpipe', 'SELECT * FROM roost.audit_log');
    expect(r.status, r.text).toBe(403);
    expect(r.body.error).toMatch(/roost\.audit_log/);
    const sub = await createPipe(t, 'auditpipe2', 'SELECT count() AS n FROM ev WHERE id IN (SELECT toUInt32(length(event)) FROM roost.audit_log)');
    expect(sub.status, sub.text).toBe(403);
    for (const p of ['auditpipe', 'auditpipe2']) expect((await call(`${srv.url}/v0/pipes/${p}.json`, { token: t })).status).toBe(404);
  });

  it('the same token still publishes the workspace\'s data sources (Tinybird\'s model), and ADMIN may publish the audit log', async () => {
    const t = await createToken('pipe_maker2', ['PIPES:CREATE', 'PIPES:READ:evpipe']);
    const r = await createPipe(t, 'evpipe', 'SELECT count() AS n FROM ev');
    expect(r.status, r.text).toBe(200);
    expect((await call(`${srv.url}/v0/pipes/evpipe.json`, { token: t })).body.data).toEqual([{ n: 1 }]);
    const a = await createPipe(admin, 'admin_audit', 'SELECT count() AS n FROM roost.audit_log');
    expect(a.status, a.text).toBe(200);
  });
});
