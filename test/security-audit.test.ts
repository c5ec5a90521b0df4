/** Every 401/403 leaves an audit record: refusals decided outside authorize() included. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
const audits = (pred: (a: Record<string, any>) => boolean) => srv.logs.filter((l) => l.msg === 'audit' && pred(l));
async function waitAudit(pred: (a: Record<string, any>) => boolean) {
  for (let i = 0; i < 100 && audits(pred).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  return audits(pred);
}

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const post = (p: string, body?: string, headers: Record<string, string> = {}) => call(`${srv.url}${p}`, { method: 'POST', token: admin, body, headers });
  expect((await post(`/v0/datasources?name=ev&schema=${encodeURIComponent('id Int32')}`)).status).toBe(200);
  expect((await post('/v0/pipes', JSON.stringify({ name: 'p', nodes: [{ name: 'n', sql: 'SELECT count() AS c FROM ev', type: 'endpoint' }] }), { 'Content-Type': 'application/json' })).status).toBe(200);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('denials outside authorize()', () => {
  it('the analyzer refusing a query on /v0/sql (403) is audited', async () => {
    const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT * FROM system.tables')}`, { token: admin });
    expect(r.status, r.text).toBe(403);
    const got = await waitAudit((a) => a.outcome === 'denied' && a.credential === 'token:workspace admin token' && /system/.test(String(a.reason)));
    expect(got.length).toBe(1);
    expect(got[0]).toMatchObject({ tenant: 'local', event: 'sql.denied' });
  });

  it('the analyzer refusing q= over an endpoint (403) is audited', async () => {
    const r = await call(`${srv.url}/v0/pipes/p.json?q=${encodeURIComponent("SELECT file('/etc/passwd') FROM _")}`, { token: admin });
    expect(r.status, r.text).toBe(403);
    const got = await waitAudit((a) => a.outcome === 'denied' && /file/.test(String(a.reason)));
    expect(got.length).toBe(1);
    expect(got[0]).toMatchObject({ tenant: 'local' });
  });

  it('the operator token on a data route (403) is audited', async () => {
    const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT 1')}`, { token: srv.operatorToken });
    expect(r.status, r.text).toBe(403);
    const got = await waitAudit((a) => a.outcome === 'denied' && a.credential === 'operator' && /operator token administers tenants/.test(String(a.reason)));
    expect(got.length).toBe(1);
  });

  it('an authorize() denial is still written once, not twice', async () => {
    const t = (await call(`${srv.url}/v0/tokens?name=only_p&scope=PIPES:READ:p`, { method: 'POST', token: admin })).body.token;
    const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT * FROM ev')}`, { token: t });
    expect(r.status).toBe(403);
    await waitAudit((a) => a.credential === 'token:only_p');
    await new Promise((res) => setTimeout(res, 100));
    expect(audits((a) => a.credential === 'token:only_p' && a.outcome === 'denied').length).toBe(1);
  });
});
