/**
 * Refused operations on a known data source leave their row in tinybird.datasources_ops_log, as
 * the docs say: an append refused for its declared Content-Length with a form's media type (the
 * body is looked at before the data source is known; the same body sent chunked had its row and
 * this one none), and a create refused because the name is taken (409). Real server, engine, HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, postReadingAnswer, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
const enc = encodeURIComponent;

beforeAll(async () => {
  srv = await startServer({ args: ['--max-upload', '100000'] });
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await call(`${srv.url}/v0/datasources?name=lim&schema=${enc('id Int32, s String')}`, { method: 'POST', token })).status).toBe(200);
}, 60_000);
afterAll(async () => { await srv?.stop(); });


async function opsRows(event: string): Promise<Array<{ result: string; error: string }>> {
  for (let i = 0; i < 100; i++) {
    const r = await call(`${srv.url}/v0/sql?q=${enc(`SELECT result, error FROM tinybird.datasources_ops_log WHERE datasource_name = 'lim' AND event_type = '${event}' AND result = 'error' FORMAT JSON`)}`, { token });
    if (r.status === 200 && r.body.data.length) return r.body.data;
    await new Promise((res) => setTimeout(res, 200));
  }
  return [];
}

describe('refusals in the operations log', () => {
  it('an append over --max-upload by its Content-Length, sent as a form (curl --data-binary), has its error row', async () => {
    const body = Buffer.from('1,x\n'.repeat(50_000));
    const r = await postReadingAnswer(`${srv.url}/v0/datasources?name=lim&mode=append`, token, body, { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(r.status).toBe(413);
    const logged = await opsRows('append');
    expect(logged).toHaveLength(1);
    expect(logged[0]!.error).toMatch(/100000|max-upload|too large/i);
  });

  it('a create of a name already taken (409) has its error row', async () => {
    const r = await call(`${srv.url}/v0/datasources?name=lim&schema=${enc('id Int32')}`, { method: 'POST', token });
    expect(r.status).toBe(409);
    const logged = await opsRows('create');
    expect(logged).toHaveLength(1);
    expect(logged[0]!.error).toMatch(/already exists/);
  });
});

describe('dry_run on a DELETE that has none', () => {
  it('is a 400 and deletes nothing (a tenant, workspace, pipe and token were deleted by requests asking for a dry run)', async () => {
    const op = srv.operatorToken;
    const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'dry' }) })).status).toBe(201);
    expect((await call(`${srv.url}/v0/tenants/dry/workspaces`, { method: 'POST', token: op, ...json({ name: 'w2' }) })).status).toBe(201);
    expect((await call(`${srv.url}/v0/pipes`, { method: 'POST', token, ...json({ name: 'dp_pipe', nodes: [{ name: 'n', sql: 'SELECT 1' }] }) })).status).toBe(200);
    const made = await call(`${srv.url}/v0/tokens?name=dry_tok&scope=DATASOURCES:READ:lim`, { method: 'POST', token });
    expect(made.status, made.text).toBe(200);
    for (const [p, t] of [['/v0/tenants/dry?dry_run=true', op], ['/v0/tenants/dry/workspaces/w2?dry_run=true', op], ['/v0/pipes/dp_pipe?dry_run=true', token], ['/v0/tokens/dry_tok?dry_run=true', token], ['/v0/pipes/dp_pipe/nodes/n?dry_run=false', token]] as const) {
      const r = await call(`${srv.url}${p}`, { method: 'DELETE', token: t });
      expect(r.status, `${p}: ${r.text}`).toBe(400);
      expect(r.body.error).toMatch(/dry_run is not taken by DELETE .*nothing was deleted/);
    }
    expect((await call(`${srv.url}/v0/tenants/dry`, { token: op })).status).toBe(200);
    expect((await call(`${srv.url}/v0/tenants/dry/workspaces`, { token: op })).body.workspaces.map((w: { name: string }) => w.name)).toContain('w2');
    expect((await call(`${srv.url}/v0/pipes/dp_pipe`, { token })).status).toBe(200);
    expect((await call(`${srv.url}/v0/sql?q=${enc('SELECT 1 FORMAT JSON')}`, { token: made.body.token })).status).not.toBe(401);
    // A data source's DELETE takes it, as Tinybird's does.
    const ds = await call(`${srv.url}/v0/datasources/lim?dry_run=true`, { method: 'DELETE', token });
    expect(ds.status, ds.text).toBe(200);
    expect(ds.body).toMatchObject({ deleted: false, dry_run: true });
  });
});
