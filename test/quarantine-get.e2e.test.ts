/**
 * `GET /v0/datasources/<ds>_quarantine` shows the quarantine as a data source (its schema as the
 * engine has it, its row count and size, the data source it belongs to), as
 * `POST /v0/datasources/<ds>_quarantine/truncate` takes that name. It answered 404 before.
 * Real server, real engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, workspaceApi, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token = '';
const api = workspaceApi(() => srv, () => token);
const get = (path: string, t = token) => call(`${srv.url}${path}`, { token: t });

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  await api.createDataSource('quar', 'd Date, c String, v Int32');
  const a = await api.post('/v0/datasources?name=quar&mode=append', '2026-01-01,ES,1\nnot a date,FR,2\n2026-01-03,ES,x\n');
  expect(a.body).toMatchObject({ rows: 1, quarantine_rows: 2 });
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('GET /v0/datasources/<ds>_quarantine', () => {
  it('answers the quarantine: its schema, rows and size, and its data source', async () => {
    const ds = (await get('/v0/datasources/quar')).body;
    const r = await get('/v0/datasources/quar_quarantine');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ id: ds.id, name: 'quar_quarantine', datasource: { id: ds.id, name: 'quar' }, statistics: { row_count: 2 } });
    expect(r.body.statistics.bytes).toBeGreaterThan(0);
    expect(r.body.schema.columns.map((c: { name: string; type: string }) => `${c.name} ${c.type}`)).toEqual([
      'd Nullable(String)', 'c Nullable(String)', 'v Nullable(String)', 'c__import_id String', 'c__error_column Array(String)',
      'c__error Array(String)', 'c__line UInt64', 'c__raw String', "insertion_date DateTime64(3, 'UTC')",
    ]);
    expect(r.body.schema.sql_schema).toContain('`c__error` Array(String)');
    // The same rows /v0/sql reads by that name; truncating it by that name empties it.
    expect(await api.sql('SELECT count() FROM quar_quarantine FORMAT CSV')).toBe('2\n');
    expect((await api.post('/v0/datasources/quar_quarantine/truncate')).status).toBe(200);
    expect((await get('/v0/datasources/quar_quarantine')).body.statistics).toMatchObject({ row_count: 0, bytes: 0 });
  });

  it('with its own scope, as /v0/sql reads it; a missing one is a 404, its datafile a 400 that says where it is', async () => {
    const own = await api.createToken('q_own', ['DATASOURCES:READ:quar_quarantine']);
    expect((await get('/v0/datasources/quar_quarantine', own)).status).toBe(200);
    const dsOnly = await api.createToken('q_ds', ['DATASOURCES:READ:quar']);
    expect((await get('/v0/datasources/quar_quarantine', dsOnly)).status).toBe(403);
    expect((await get(`/v0/sql?q=${encodeURIComponent('SELECT count() FROM quar_quarantine')}`, dsOnly)).status).toBe(403);
    expect((await get(`/v0/sql?q=${encodeURIComponent('SELECT count() FROM quar_quarantine')}`, own)).status).toBe(200);
    const missing = await get('/v0/datasources/nothere_quarantine');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'UNKNOWN_DATASOURCE' });
    const datafile = await get('/v0/datasources/quar_quarantine.datasource');
    expect(datafile.status).toBe(400);
    expect(datafile.body.code).toBe('INVALID_PARAMETER');
    expect(datafile.body.error).toContain('quar.datasource');
  });
});
