/**
 * Conformance of response shapes and parameters with API.md (Tinybird's v0 API), against the
 * real server and embedded engine over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;

const post = (path: string, body?: BodyInit, headers: Record<string, string> = {}) =>
  call(`${srv.url}${path}`, { method: 'POST', token, body, headers });
const get = (path: string) => call(`${srv.url}${path}`, { token });

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => { await srv?.stop(); });

describe('data source columns', () => {
  it('every column has jsonpath and default_value, null when unset (CSV data source)', async () => {
    const r = await post(`/v0/datasources?name=shape_csv&schema=${encodeURIComponent('id Int32, s String')}`);
    expect(r.status, r.text).toBe(200);
    for (const body of [r.body.datasource, (await get('/v0/datasources/shape_csv')).body, (await get('/v0/datasources')).body.datasources.find((d: { name: string }) => d.name === 'shape_csv')]) {
      expect(body.type).toBe('csv');
      for (const c of body.schema.columns) {
        expect(Object.keys(c).sort()).toEqual(['default_value', 'jsonpath', 'name', 'nullable', 'type']);
        expect(c.jsonpath).toBeNull();
        expect(c.default_value).toBeNull();
      }
    }
  });

  it('an NDJSON data source says type ndjson and gives its JSON paths', async () => {
    const r = await post('/v0/datasources?name=shape_nd&format=ndjson', '{"a":1,"b":"x"}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(r.status, r.text).toBe(200);
    const one = (await get('/v0/datasources/shape_nd')).body;
    expect(one.type).toBe('ndjson');
    expect(one.schema.columns.map((c: { jsonpath: string }) => c.jsonpath)).toEqual(['$.a', '$.b']);
  });
});

describe('type_guessing=false (API.md: POST /v0/datasources)', () => {
  it('CSV: every inferred column is a String, values kept as written', async () => {
    const r = await post('/v0/datasources?name=tg_csv&type_guessing=false', 'id,amount,day\n007,2.50,2026-11-28\n8,,2026-11-29\n', { 'Content-Type': 'text/csv' });
    expect(r.status, r.text).toBe(200);
    const cols = (await get('/v0/datasources/tg_csv')).body.schema.columns;
    expect(cols.map((c: { name: string; type: string }) => [c.name, c.type.replace(/^Nullable\((.*)\)$/, '$1')])).toEqual([['id', 'String'], ['amount', 'String'], ['day', 'String']]);
    const rows = (await get(`/v0/sql?q=${encodeURIComponent('SELECT id, amount FROM tg_csv ORDER BY day FORMAT JSONEachRow')}`)).text.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows[0]).toEqual({ id: '007', amount: '2.50' });
  });

  it('NDJSON: every inferred column is a String', async () => {
    const r = await post('/v0/datasources?name=tg_nd&format=ndjson&type_guessing=false', '{"n":1,"f":1.5,"s":"x"}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(r.status, r.text).toBe(200);
    const cols = (await get('/v0/datasources/tg_nd')).body.schema.columns;
    expect(cols.map((c: { type: string }) => c.type)).toEqual(['String', 'String', 'String']);
  });

  it('/v0/analyze takes it too; a value that is neither true nor false (type_guessing, header) is a 400 naming it', async () => {
    const a = await post('/v0/analyze?type_guessing=false', 'id,amount\n1,2.5\n', { 'Content-Type': 'text/csv' });
    expect(a.status, a.text).toBe(200);
    expect(a.body.analysis.columns.map((c: { recommended_type: string }) => c.recommended_type)).toEqual(['String', 'String']);
    const n = await post('/v0/analyze?format=ndjson&type_guessing=false', '{"n":1}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(n.body.analysis.columns.map((c: { recommended_type: string }) => c.recommended_type)).toEqual(['String']);
    const g = await post('/v0/analyze', 'id,amount\n1,2.5\n', { 'Content-Type': 'text/csv' });
    expect(g.body.analysis.columns.map((c: { recommended_type: string }) => c.recommended_type)).toEqual(['Int64', 'Float64']);
    for (const q of ['type_guessing=maybe', 'header=maybe', 'dialect_header=2']) {
      const r = await post(`/v0/datasources?name=tg_on2&mode=create&${q}`, 'id,amount\n1,2.5\n', { 'Content-Type': 'text/csv' });
      expect(r.status, r.text).toBe(400);
      expect(r.body.error).toMatch(/is neither true nor false/);
    }
    expect((await get('/v0/datasources/tg_on2')).status).toBe(404);
  });

  it('type_guessing=true (the default) still infers types', async () => {
    const r = await post('/v0/datasources?name=tg_on&type_guessing=true', 'id,amount\n1,2.5\n', { 'Content-Type': 'text/csv' });
    expect(r.status, r.text).toBe(200);
    const cols = (await get('/v0/datasources/tg_on')).body.schema.columns;
    expect(cols.every((c: { type: string }) => c.type !== 'String')).toBe(true);
  });
});

describe('unknown form fields are ignored, not taken for data (API.md: ignore unknown parameters)', () => {
  it('POST /v0/pipes with form fields name, sql and a client field creates the pipe', async () => {
    const form = new URLSearchParams({ name: 'form_pipe', sql: 'SELECT 1 AS x', description: 'd', from: 'cli', cli_version: '5.0.0' });
    const r = await post('/v0/pipes', form.toString(), { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.name).toBe('form_pipe');
    expect(r.body.description).toBe('d');
    expect(r.body.nodes[0].sql).toBe('SELECT 1 AS x');
  });

  it('POST /v0/pipes/<pipe>/nodes with form fields and a client field adds the node', async () => {
    const form = new URLSearchParams({ name: 'second', sql: 'SELECT x + 1 AS y FROM form_pipe_0', __tb__trace: '1' });
    const r = await post('/v0/pipes/form_pipe/nodes', form.toString(), { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.name).toBe('second');
    expect(r.body.sql).toBe('SELECT x + 1 AS y FROM form_pipe_0');
    expect(r.body.dependencies).toEqual(['form_pipe_0']);
  });

  it('raw SQL sent with curl -d (form content type) is still SQL', async () => {
    const r = await post('/v0/pipes/form_pipe/nodes?name=third', 'SELECT y, y=2 AS two FROM second', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.sql).toBe('SELECT y, y=2 AS two FROM second');
  });

  it('POST /v0/datasources with a form body and a client field creates the data source from the schema', async () => {
    const form = new URLSearchParams({ name: 'form_ds', schema: 'a Int32, b String', from: 'cli' });
    const r = await post('/v0/datasources', form.toString(), { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.datasource.schema.columns.map((c: { name: string; type: string }) => `${c.name} ${c.type}`)).toEqual(['a Int32', 'b String']);
    expect(r.body.rows).toBe(0);
  });

  it('CSV rows sent with a form content type are still data', async () => {
    const r = await post('/v0/datasources?name=form_rows', 'k,v\nx,1\ny,2\n', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows).toBe(2);
  });
});
