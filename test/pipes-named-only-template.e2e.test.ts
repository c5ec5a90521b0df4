/**
 * `roost.audit_log` goes into a pipe only from a credential that may read it. The save-time check
 * reads the pipe's dependencies; a template can name the audit log with a call's values instead
 * (a branch the defaults do not take, a `symbol()` of a parameter), which that check cannot see:
 * such a call is refused unless the credential that saved the pipe may read it (found by a
 * black-box test: an editor published the audit log to a PIPES:READ token). Real server, engine,
 * HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
let editor: string;
let reader: string;

const tokenWith = async (name: string, scopes: string[]): Promise<string> => {
  const r = await call(`${srv.url}/v0/tokens?name=${name}&${scopes.map((s) => `scope=${encodeURIComponent(s)}`).join('&')}`, { method: 'POST', token: admin });
  expect(r.status, r.text).toBe(200);
  return r.body.token;
};
const save = (token: string, name: string, sql: string) => call(`${srv.url}/v0/pipes?force=true`, {
  method: 'POST', token, headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ name, nodes: [{ name: 'n', type: 'endpoint', sql }] }),
});

const BRANCH = '%\nSELECT * FROM {% if defined(x) %}events{% else %}roost.audit_log{% end %} LIMIT 2';
const SYMBOL = "%\nSELECT * FROM {{symbol(String(tbl, 'events'))}} LIMIT 3";

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await call(`${srv.url}/v0/datasources?name=events&schema=${encodeURIComponent('a Int32')}`, { method: 'POST', token: admin })).status).toBe(200);
  expect((await call(`${srv.url}/v0/datasources?name=events&mode=append`, { method: 'POST', token: admin, body: '1\n2\n' })).status).toBe(200);
  editor = await tokenWith('editor', ['PIPES:CREATE', 'DATASOURCES:READ:events']);
  // A plain pipe naming the audit log is refused at save, as before.
  const plain = await save(editor, 'plain', 'SELECT * FROM roost.audit_log LIMIT 1');
  expect(plain.status, plain.text).toBe(403);
  for (const [name, sql] of [['branch', BRANCH], ['sym', SYMBOL]]) {
    const r = await save(editor, name, sql);
    expect(r.status, r.text).toBe(200);
  }
  const r = await save(admin, 'admin_branch', BRANCH);
  expect(r.status, r.text).toBe(200);
  reader = await tokenWith('reader', ['PIPES:READ:branch', 'PIPES:READ:sym', 'PIPES:READ:admin_branch']);
}, 90_000);
afterAll(async () => { await srv?.stop(); });

describe('a template that names the audit log with a call\'s values', () => {
  it('saved by an editor: refused when a call reads it, served when it reads what the editor may', async () => {
    for (const url of ['/v0/pipes/branch.json', '/v0/pipes/sym.json?tbl=roost.audit_log']) {
      const r = await call(`${srv.url}${url}`, { token: reader });
      expect(r.status, `${url}: ${r.text}`).toBe(403);
      expect(r.body.code).toBe('FORBIDDEN');
      expect(r.body.error).toContain('roost.audit_log');
      expect(r.text).not.toContain('token.created');
    }
    // Through /v0/sql over the pipe, the same.
    const viaSql = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT * FROM branch FORMAT JSON')}`, { token: reader });
    expect(viaSql.status, viaSql.text).toBe(403);
    // The branches the editor may read are served.
    expect((await call(`${srv.url}/v0/pipes/branch.json?x=1`, { token: reader })).body.data).toEqual([{ a: 1 }, { a: 2 }]);
    expect((await call(`${srv.url}/v0/pipes/sym.json`, { token: reader })).status).toBe(200);
  });

  it('saved by an admin (who reads the audit log): published, as a plain pipe saved by an admin is', async () => {
    // (Audit records reach the table within about a second.)
    let r = await call(`${srv.url}/v0/pipes/admin_branch.json`, { token: reader });
    for (let i = 0; i < 50 && r.status === 200 && r.body.data.length === 0; i++) {
      await new Promise((res) => setTimeout(res, 200));
      r = await call(`${srv.url}/v0/pipes/admin_branch.json`, { token: reader });
    }
    expect(r.status, r.text).toBe(200);
    expect(r.body.data.length).toBeGreaterThan(0);
    expect(r.body.data[0]).toHaveProperty('event');
  });
});
