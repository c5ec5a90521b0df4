// POST /v0/datasources with `Content-Type: application/x-www-form-urlencoded` (curl's default for
// --data-binary): a body is the parameters when it reads as a form, else the rows. Found by a
// black-box test: a form past the first 64 KiB was taken for rows, and rows reading like a form
// (`name=hello`) for parameters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token = '';
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const post = (p: string, body?: string) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers: FORM });
const sql = async (q: string) => (await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`, { token })).body.data;

beforeAll(async () => {
  srv = await startServer({ args: ['--max-body', String(256 * 1024)] });
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('POST /v0/datasources with a form-typed body', () => {
  it('rows appended to a data source the URL names are rows, even when a line reads like a form', async () => {
    expect((await post('/v0/datasources', new URLSearchParams({ name: 's1', schema: 's String' }).toString())).status).toBe(200);
    const r = await post('/v0/datasources?name=s1&mode=append', 'name=hello\nformat=csv\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows).toBe(2);
    expect(await sql('SELECT s FROM s1 ORDER BY s')).toEqual([{ s: 'format=csv' }, { s: 'name=hello' }]);
  });

  it('a form longer than 64 KiB (a schema of 5,000 columns) is read as the form', async () => {
    const schema = Array.from({ length: 5000 }, (_, i) => `c${i} Int32`).join(', ');
    const body = new URLSearchParams({ name: 'wide', schema }).toString();
    expect(body.length).toBeGreaterThan(64 * 1024);
    const r = await post('/v0/datasources', body);
    expect(r.status, r.text.slice(0, 300)).toBe(200);
    expect(r.body.datasource.name).toBe('wide');
    expect(r.body.datasource.schema.columns).toHaveLength(5000);
    // The body's name and schema, not the query string's absence of them (it said "name is required").
    const named = await post('/v0/datasources', `schema=${encodeURIComponent(schema.replace(/c(\d+)/g, 'd$1'))}&name=wide2`);
    expect(named.status, named.text.slice(0, 300)).toBe(200);
    expect(named.body.datasource.schema.columns[0].name).toBe('d0');
  });

  it('a form over --max-body is a 413 that says what to do, and nothing is created', async () => {
    const schema = Array.from({ length: 20000 }, (_, i) => `c${i} Int32`).join(', ');
    const r = await post('/v0/datasources', new URLSearchParams({ name: 'huge', schema }).toString());
    expect(r.status, r.text.slice(0, 300)).toBe(413);
    expect(r.body.error).toMatch(/form body .* is over 262144 bytes \(--max-body\)/);
    expect((await call(`${srv.url}/v0/datasources/huge`, { token })).status).toBe(404);
  });

  it('an import-from-URL form is that form whatever the order of its fields: refused with its reason, no row stored', async () => {
    for (const body of ['url=https%3A%2F%2Fexample.com%2Fa.csv', 'format=csv&url=https%3A%2F%2Fexample.com%2Fa.csv']) {
      const r = await post('/v0/datasources?name=s1&mode=append', body);
      expect(r.status, `${body}: ${r.text}`).toBe(400);
      expect(r.body.error).toMatch(/importing from a URL is not supported/);
    }
    expect(await sql("SELECT count() AS n FROM s1 WHERE s LIKE '%url=%'")).toEqual([{ n: 0 }]);
  });

  it('rows that do not read as a form are rows, as before', async () => {
    expect((await post('/v0/datasources?name=s2', 'a,b\n1,x\n')).status).toBe(200);
    expect(await sql('SELECT count() AS n FROM s2')).toEqual([{ n: 1 }]);
  });
});
