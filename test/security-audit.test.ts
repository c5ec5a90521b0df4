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

describe('every refusal on any route', () => {
  it('each 401/403 answered leaves exactly one audit record of its request', async () => {
    const post = (p: string, token?: string, body?: string) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers: body ? { 'Content-Type': 'application/json' } : {} });
    const onlyP = (await post('/v0/tokens?name=only_p2&scope=PIPES:READ:p', admin)).body.token as string;
    expect((await post(`/v0/datasources?name=ev2&schema=${encodeURIComponent('id Int32')}`, admin)).status).toBe(200);
    const user = (await call(`${srv.url}/tokens`)).body.user_token as string;
    const refusals = [
      await call(`${srv.url}/v0/sql?q=SELECT%201`),
      await call(`${srv.url}/v0/sql?q=SELECT%201`, { token: 'p.rst_nope' }),
      await call(`${srv.url}/v0/pipes/p.json`, { token: 'eyJhbGciOiJIUzI1NiJ9.e30.x' }),
      await call(`${srv.url}/v0/tokens`, { token: onlyP }),
      await post(`/v0/datasources?name=nope&schema=${encodeURIComponent('a Int32')}`, onlyP),
      await call(`${srv.url}/v0/pipes`, { token: srv.operatorToken }),
      await call(`${srv.url}/v0/tenants`, { token: admin }),
      await post('/v0/pipes', onlyP, JSON.stringify({ name: 'x', nodes: [{ name: 'n', sql: 'SELECT 1' }] })),
      await call(`${srv.url}/v0/datasources/ev`, { method: 'DELETE', token: onlyP }),
      await call(`${srv.url}/v0/tenants`, { token: user }),
      // The condition names another table (refused where the condition is checked, not by authorize()).
      await post(`/v0/datasources/ev/delete?delete_condition=${encodeURIComponent('id IN (SELECT id FROM ev2)')}`, admin),
      await post(`/v0/datasources/ev/delete?delete_condition=${encodeURIComponent('id IN (SELECT number FROM system.numbers)')}`, admin),
    ];
    for (const r of refusals) expect([401, 403], r.text).toContain(r.status);
    await new Promise((res) => setTimeout(res, 300));
    const ids = refusals.map((r) => r.headers.get('x-request-id'));
    const counts = ids.map((id) => audits((a) => a.requestId === id).length);
    expect(counts, JSON.stringify(refusals.map((r, i) => [r.status, r.body?.code, counts[i]]))).toEqual(ids.map(() => 1));
  });
});
