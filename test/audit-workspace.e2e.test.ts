/**
 * A workspace action's record in `roost.audit_log` belongs to the workspace the request was for,
 * by id: a workspace renamed while the request's body arrives, and a new workspace given its old
 * name, must not receive it (the record named the workspace and the name was resolved when the
 * record was written: the new workspace read the other's JWT names and scopes, its denials).
 * Real server, real engine, real HTTP; each request is held open (test/helpers/upload.ts) while
 * the operator renames its workspace and creates another under the old name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { startUpload } from './helpers/upload.js';

let srv: RunningServer;
const op = () => srv.operatorToken;
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => { srv = await startServer(); }, 60_000);
afterAll(async () => { await srv?.stop(); });

type Row = { event: string; outcome: string; resource: string; credential: string };

async function auditRows(token: string): Promise<Row[]> {
  const q = 'SELECT event, outcome, resource, credential FROM roost.audit_log ORDER BY timestamp FORMAT JSON';
  const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(q)}`, { token });
  expect(r.status, r.text).toBe(200);
  return r.body.data;
}

/** Waits (the service log is written about once a second) for a row of `token`'s workspace that `pred` accepts. */
async function waitRow(token: string, pred: (r: Row) => boolean): Promise<Row[]> {
  let rows: Row[] = [];
  for (let i = 0; i < 75 && !rows.some(pred); i++) {
    await new Promise((res) => setTimeout(res, 200));
    rows = await auditRows(token);
  }
  return rows;
}

async function createWorkspace(name: string): Promise<{ id: string; token: string }> {
  const r = await call(`${srv.url}/v0/tenants/local/workspaces`, { method: 'POST', token: op(), ...json({ name }) });
  expect(r.status, r.text).toBe(201);
  return { id: r.body.id, token: r.body.token };
}

/** The operator renames workspace `name` and creates a new one under that name: the new one. */
async function renameAndReplace(name: string): Promise<{ id: string; token: string }> {
  const renamed = await call(`${srv.url}/v0/tenants/local/workspaces/${name}`, { method: 'PATCH', token: op(), ...json({ name: `${name}_old` }) });
  expect(renamed.status, renamed.text).toBe(200);
  return createWorkspace(name);
}

describe('audit records across a workspace rename', () => {
  it('a JWT created while its workspace is renamed and the name taken: signed for, and recorded in, the workspace of the request', async () => {
    const old = await createWorkspace('aw_jwt');
    const exp = Math.floor(Date.now() / 1000) + 3600;
    const up = await startUpload(srv.url, '/v0/tokens', old.token, 'application/json', `{"name":"jwt_payroll","expiration_time":${exp},`);
    const fresh = await renameAndReplace('aw_jwt');
    const r = await up.finish('"scopes":[{"type":"PIPES:READ","resource":"payroll_report"}]}');
    expect(r.status, r.text).toBe(200);
    // Signed for the workspace the request was for (it was the new one's, with the new one's key).
    const claims = JSON.parse(Buffer.from(String(r.body.token).split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims.workspace_id).toBe(old.id);

    const mine = await waitRow(old.token, (x) => x.event === 'token.jwt_created');
    expect(mine.filter((x) => x.event === 'token.jwt_created').map((x) => x.resource)).toEqual(['token:jwt_payroll']);
    expect((await auditRows(fresh.token)).filter((x) => x.resource.includes('payroll'))).toEqual([]);
  });

  it('a denial decided after the rename (the body asks for ADMIN from a TOKENS token): recorded in the token\'s workspace', async () => {
    const old = await createWorkspace('aw_deny');
    const t = await call(`${srv.url}/v0/tokens?name=tokens_only&scope=TOKENS`, { method: 'POST', token: old.token });
    expect(t.status, t.text).toBe(200);
    const up = await startUpload(srv.url, '/v0/tokens', t.body.token, 'application/x-www-form-urlencoded', 'name=escalated');
    const fresh = await renameAndReplace('aw_deny');
    const r = await up.finish('&scope=ADMIN');
    expect(r.status, r.text).toBe(403);

    const mine = await waitRow(old.token, (x) => x.event === 'authz.denied');
    expect(mine.filter((x) => x.event === 'authz.denied').map((x) => `${x.outcome} ${x.credential}`)).toEqual(['denied token:tokens_only']);
    expect((await auditRows(fresh.token)).filter((x) => x.event === 'authz.denied' || x.credential === 'token:tokens_only')).toEqual([]);
  });

  it('a pipe created while its workspace is renamed and the name taken: refused, nothing in the new workspace', async () => {
    const old = await createWorkspace('aw_pipe');
    const up = await startUpload(srv.url, '/v0/pipes', old.token, 'application/json', '{"name":"payroll_pipe",');
    const fresh = await renameAndReplace('aw_pipe');
    const r = await up.finish('"nodes":[{"name":"n0","sql":"SELECT 1 AS x"}]}');
    // It went into the new workspace (and its record too); now the workspace changed under it.
    expect(r.status, r.text).toBe(404);
    expect(r.body.code).toBe('UNKNOWN_WORKSPACE');
    expect((await call(`${srv.url}/v0/pipes/payroll_pipe`, { token: fresh.token })).status).toBe(404);
    expect((await call(`${srv.url}/v0/pipes/payroll_pipe`, { token: old.token })).status).toBe(404);

    // A pipe created afterwards is recorded in its own workspace (the records were written meanwhile).
    const ok = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: old.token, ...json({ name: 'later_pipe', nodes: [{ name: 'n0', sql: 'SELECT 1 AS x' }] }) });
    expect(ok.status, ok.text).toBe(200);
    const mine = await waitRow(old.token, (x) => x.event === 'pipe.create');
    expect(mine.filter((x) => x.event === 'pipe.create').map((x) => x.resource)).toEqual(['later_pipe']);
    expect((await auditRows(fresh.token)).filter((x) => x.event === 'pipe.create')).toEqual([]);
  });
});
