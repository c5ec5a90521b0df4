/**
 * An operation's row in `tinybird.datasources_ops_log` belongs to the workspace the request was
 * for, by id: a workspace renamed while an upload arrives, and a new workspace given its old
 * name, must not receive it (it was resolved by name when written: the new workspace read the
 * other's data source name and row count). Real server, real engine, real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { startUpload } from './helpers/upload.js';

let srv: RunningServer;
const op = () => srv.operatorToken;
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => { srv = await startServer(); }, 60_000);
afterAll(async () => { await srv?.stop(); });

async function opsRows(token: string): Promise<Array<{ datasource_name: string; event_type: string; rows: number }>> {
  const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT datasource_name, event_type, rows FROM tinybird.datasources_ops_log ORDER BY timestamp FORMAT JSON')}`, { token });
  expect(r.status, r.text).toBe(200);
  return r.body.data;
}

describe('the operations log across a workspace rename', () => {
  it('an upload under way when its workspace is renamed, and a new workspace takes the old name: the row goes to the renamed one', async () => {
    const created = await call(`${srv.url}/v0/tenants/local/workspaces`, { method: 'POST', token: op(), ...json({ name: 'w2' }) });
    expect(created.status, created.text).toBe(201);
    const oldToken = created.body.token as string;
    const ds = await call(`${srv.url}/v0/datasources?name=payroll_secret&schema=${encodeURIComponent('id Int32, s String')}`, { method: 'POST', token: oldToken });
    expect(ds.status, ds.text).toBe(200);

    const up = await startUpload(srv.url, '/v0/datasources?name=payroll_secret&mode=append', oldToken, 'text/csv', '1,a\n');
    const renamed = await call(`${srv.url}/v0/tenants/local/workspaces/w2`, { method: 'PATCH', token: op(), ...json({ name: 'w2old' }) });
    expect(renamed.status, renamed.text).toBe(200);
    const again = await call(`${srv.url}/v0/tenants/local/workspaces`, { method: 'POST', token: op(), ...json({ name: 'w2' }) });
    expect(again.status, again.text).toBe(201);
    const newToken = again.body.token as string;
    const r = await up.finish('2,b\n3,c\n');
    expect(r.status, r.text).toBe(200);

    // The service log is written asynchronously (about once a second).
    let mine: Array<{ datasource_name: string; event_type: string; rows: number }> = [];
    for (let i = 0; i < 60 && !mine.some((x) => x.event_type === 'append'); i++) {
      await new Promise((res) => setTimeout(res, 200));
      mine = await opsRows(oldToken);
    }
    expect(mine.filter((x) => x.datasource_name === 'payroll_secret').map((x) => `${x.event_type} ${x.rows}`)).toEqual(['create 0', 'append 3']);
    expect(await opsRows(newToken)).toEqual([]);
  });
});
