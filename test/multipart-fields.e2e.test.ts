// Small-body routes read a multipart/form-data body (a browser's FormData, curl -F) as the form
// it is, and a body's fields win over the query string's. Found by a black-box test: multipart
// fields of endpoint calls were silently ignored (a filter not applied: wrong results), pipe and
// token creation said "name is required", /v0/sql ran the multipart text as SQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token = '';
const form = (fields: Record<string, string>) => { const f = new FormData(); for (const [k, v] of Object.entries(fields)) f.append(k, v); return f; };
const post = (p: string, body: BodyInit, headers: Record<string, string> = {}) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers });

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await post(`/v0/datasources?name=t&schema=${encodeURIComponent('id Int32, s String')}`, '')).status).toBe(200);
  expect((await post('/v0/datasources?name=t&mode=append', '1,a\n2,b\n3,c\n4,d\n', { 'Content-Type': 'text/csv' })).body.rows).toBe(4);
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('multipart/form-data bodies on small-body routes', () => {
  it('creates a pipe from multipart fields', async () => {
    const r = await post('/v0/pipes', form({ name: 'ep', sql: '%\nSELECT count() AS n FROM t WHERE id >= {{Int32(min_id, 0)}}' }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.name).toBe('ep');
    expect((await call(`${srv.url}/v0/pipes/ep/nodes/${r.body.nodes[0].name}/endpoint`, { method: 'POST', token })).status).toBe(200);
  });

  it('an endpoint call takes its parameters from multipart fields (the filter applies), and checks them', async () => {
    const r = await post('/v0/pipes/ep.json', form({ min_id: '3' }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ n: 2 }]);
    const bad = await post('/v0/pipes/ep.json', form({ min_id: 'abc' }));
    expect(bad.status, bad.text).toBe(400);
    const q = await post('/v0/pipes/ep.json', form({ min_id: '2', q: 'SELECT n * 10 AS m FROM _' }));
    expect(q.body.data, q.text).toEqual([{ m: 30 }]);
  });

  it('the body\'s parameters win over the query string\'s (form, multipart and JSON)', async () => {
    expect((await post('/v0/pipes/ep.json?min_id=1', 'min_id=4', { 'Content-Type': 'application/x-www-form-urlencoded' })).body.data).toEqual([{ n: 1 }]);
    expect((await post('/v0/pipes/ep.json?min_id=1', form({ min_id: '4' }))).body.data).toEqual([{ n: 1 }]);
    expect((await post('/v0/pipes/ep.json?min_id=1', JSON.stringify({ min_id: 4 }), { 'Content-Type': 'application/json' })).body.data).toEqual([{ n: 1 }]);
    const t = await post('/v0/tokens?name=from_query', 'name=from_body&scope=PIPES:READ:ep', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(t.status, t.text).toBe(200);
    expect(t.body.name).toBe('from_body');
  });

  it('creates a token from multipart fields, scopes adding up with the query string\'s', async () => {
    const r = await post('/v0/tokens?scope=DATASOURCES:READ:t', form({ name: 'mp_token', scope: 'PIPES:READ:ep' }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.name).toBe('mp_token');
    expect(r.body.scopes.map((s: { type: string; resource: string }) => `${s.type}:${s.resource}`).sort()).toEqual(['DATASOURCES:READ:t', 'PIPES:READ:ep']);
  });

  it('/v0/sql runs q from a multipart field', async () => {
    const r = await post('/v0/sql', form({ q: 'SELECT count() AS n FROM t FORMAT JSON' }));
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ n: 4 }]);
  });

  it('a rows delete takes its condition from multipart fields (dry run, then the delete); a file part is a 415', async () => {
    expect((await post(`/v0/datasources?name=md&schema=${encodeURIComponent('id Int32')}`, '')).status).toBe(200);
    expect((await post('/v0/datasources?name=md&mode=append', '1\n2\n3\n', { 'Content-Type': 'text/csv' })).body.rows).toBe(3);
    const dry = await post('/v0/datasources/md/delete', form({ delete_condition: 'id >= 2', dry_run: 'true' }));
    expect(dry.status, dry.text).toBe(200);
    expect(dry.body.rows_to_be_deleted).toBe(2);
    const f = new FormData();
    f.append('delete_condition', new Blob(['id = 1']), 'cond.txt');
    const file = await post('/v0/datasources/md/delete', f);
    expect(file.status, file.text).toBe(415);
    const del = await post('/v0/datasources/md/delete', form({ delete_condition: 'id >= 2' }));
    expect(del.status, del.text).toBeLessThan(300);
    for (let i = 0; i < 100; i++) {
      const n = (await post('/v0/sql', form({ q: 'SELECT count() AS n FROM md FORMAT JSON' }))).body.data[0].n;
      if (n === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await post('/v0/sql', form({ q: 'SELECT groupArray(id) AS ids FROM md FORMAT JSON' }))).body.data).toEqual([{ ids: [1] }]);
  });

  it('a file part on a route that takes fields is a 415 that says where files go', async () => {
    const f = new FormData();
    f.append('q', new Blob(['SELECT 1']), 'q.sql');
    const r = await post('/v0/sql', f);
    expect(r.status, r.text).toBe(415);
    expect(r.body.error).toMatch(/is a file; this route takes fields only/);
  });

  it('a field of any name is a field (a form from a page adds its own), and renames take multipart too', async () => {
    const p = await post('/v0/pipes', form({ name: 'mp_odd', sql: 'SELECT 1 AS x', 'from-ui': '1' }));
    expect(p.status, p.text).toBe(200);
    const q = await post('/v0/sql', form({ q: 'SELECT 2 AS y FORMAT JSON', 'a*b': '1' }));
    expect(q.status, q.text).toBe(200);
    expect(q.body.data).toEqual([{ y: 2 }]);
    const r = await call(`${srv.url}/v0/pipes/mp_odd`, { method: 'PUT', token, body: form({ name: 'mp_renamed' }) });
    expect(r.status, r.text).toBe(200);
    expect(r.body.name).toBe('mp_renamed');
  });
});
