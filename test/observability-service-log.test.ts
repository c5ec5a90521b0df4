/**
 * "Everything measured": what the app does lands in the tenant's service data sources
 * (queryable with Roost itself) and in /metrics. Real server, real engine, real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { metricSum } from './helpers/metrics.js';

let srv: RunningServer;
let token: string;
const enc = encodeURIComponent;

const sqlRows = async (q: string): Promise<Array<Record<string, any>>> => {
  const r = await call(`${srv.url}/v0/sql?q=${enc(`${q} FORMAT JSONEachRow`)}`, { token });
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
};
/** Polls until `q` gives `n` rows (service rows are flushed about once a second). */
async function rowsEventually(q: string, n: number): Promise<Array<Record<string, any>>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const got = await sqlRows(q);
    if (got.length >= n || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 150));
  }
}
const post = (p: string, body?: BodyInit, headers: Record<string, string> = {}) =>
  call(`${srv.url}${p}`, { method: 'POST', token, body, headers });
const metric = (name: string, labels: Record<string, string>): Promise<number> => metricSum(srv, name, labels);

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => { await srv?.stop(); });

describe('/v0/sql calls are in tinybird.pipe_stats_rt (pipe_name query_api)', () => {
  it('a successful and a failed query each leave a row; the failure also one in endpoint_errors', async () => {
    const ok = await call(`${srv.url}/v0/sql?q=${enc('SELECT number FROM numbers(3) FORMAT JSON')}`, { token, headers: { 'X-Request-Id': 'obs-sql-ok' } });
    expect(ok.status, ok.text).toBe(200);
    const bad = await call(`${srv.url}/v0/sql`, { method: 'POST', token, body: 'SELECT nosuchcolumn', headers: { 'X-Request-Id': 'obs-sql-bad' } });
    expect(bad.status).toBe(422);
    const stats = await rowsEventually("SELECT request_id, pipe_id, pipe_name, token_name, status_code, error, error_message, result_rows, parameters, method, url FROM tinybird.pipe_stats_rt WHERE request_id IN ('obs-sql-ok', 'obs-sql-bad') ORDER BY request_id DESC", 2);
    expect(stats).toHaveLength(2);
    expect(stats[0]).toMatchObject({
      request_id: 'obs-sql-ok', pipe_id: 'query_api', pipe_name: 'query_api', token_name: 'workspace admin token',
      status_code: 200, error: 0, error_message: '', result_rows: 3, method: 'GET',
      parameters: { q: 'SELECT number FROM numbers(3) FORMAT JSON' },
    });
    expect(stats[0]!.url).toContain('/v0/sql?q=');
    expect(stats[1]).toMatchObject({ request_id: 'obs-sql-bad', pipe_name: 'query_api', status_code: 422, error: 1, method: 'POST', parameters: { q: 'SELECT nosuchcolumn' } });
    expect(stats[1]!.error_message).toContain('nosuchcolumn');
    const errors = await rowsEventually("SELECT pipe_name, status_code, error FROM tinybird.endpoint_errors WHERE request_id = 'obs-sql-bad'", 1);
    expect(errors).toEqual([{ pipe_name: 'query_api', status_code: 422, error: expect.stringContaining('nosuchcolumn') }]);
  });

  it('the template parameters of a form or JSON body are in the row too (the one a call failed on among them)', async () => {
    const q = "%\nSELECT {{Int8(i8, 1)}} AS a, {{Array(xs, 'Int32', default='1')}} AS b";
    const form = await call(`${srv.url}/v0/sql`, { method: 'POST', token, body: new URLSearchParams({ q, i8: '999', token }), headers: { 'X-Request-Id': 'obs-sql-form' } });
    expect(form.status, form.text).toBe(400);
    const json = await call(`${srv.url}/v0/sql?i8=5`, { method: 'POST', token, body: JSON.stringify({ q, i8: 3, xs: [4, 5] }), headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'obs-sql-json' } });
    expect(json.status, json.text).toBe(200);
    const got = await rowsEventually("SELECT request_id, parameters FROM tinybird.pipe_stats_rt WHERE request_id IN ('obs-sql-form', 'obs-sql-json') ORDER BY request_id", 2);
    expect(got).toEqual([
      { request_id: 'obs-sql-form', parameters: { q, i8: '999' } },
      { request_id: 'obs-sql-json', parameters: { q, i8: '3', xs: '4,5' } },
    ]);
    const errors = await rowsEventually("SELECT params FROM tinybird.endpoint_errors WHERE request_id = 'obs-sql-form'", 1);
    expect(errors).toHaveLength(1);
    expect(JSON.parse(errors[0].params)).toEqual({ q, i8: '999' });
  });

  it('a token passed in the query string is not stored; queries of the service data sources are not logged', async () => {
    const r = await call(`${srv.url}/v0/sql?q=${enc('SELECT 1')}&token=${enc(token)}`, { headers: { 'X-Request-Id': 'obs-sql-token' } });
    expect(r.status).toBe(200);
    const own = await call(`${srv.url}/v0/sql?q=${enc('SELECT count() FROM tinybird.pipe_stats_rt')}`, { token, headers: { 'X-Request-Id': 'obs-sql-self' } });
    expect(own.status).toBe(200);
    const got = await rowsEventually("SELECT url, parameters FROM tinybird.pipe_stats_rt WHERE request_id = 'obs-sql-token'", 1);
    expect(got).toHaveLength(1);
    expect(JSON.stringify(got)).not.toContain(token);
    expect(await sqlRows("SELECT 1 FROM tinybird.pipe_stats_rt WHERE request_id = 'obs-sql-self'")).toEqual([]);
    // A query of a data source that also names a service table (a dead subquery) is logged: the
    // exemption hid any query's reads from the logs.
    expect((await post(`/v0/datasources?name=obshid&schema=${enc('a Int32')}`)).status).toBe(200);
    const hid = await call(`${srv.url}/v0/sql?q=${enc('SELECT count() AS n FROM obshid WHERE 0 = (SELECT count() FROM tinybird.pipe_stats_rt WHERE 0)')}`, { token, headers: { 'X-Request-Id': 'obs-sql-hid' } });
    expect(hid.status, hid.text).toBe(200);
    expect(await rowsEventually("SELECT status_code FROM tinybird.pipe_stats_rt WHERE request_id = 'obs-sql-hid'", 1)).toEqual([{ status_code: 200 }]);
  });

  it('calls refused for the token\'s rate (429) are rows too, of /v0/sql and of endpoints', async () => {
    const pipe = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'obs_rl', nodes: [{ name: 'n', type: 'endpoint', sql: 'SELECT 1 AS one' }] }) });
    expect(pipe.status, pipe.text).toBeLessThan(300);
    const slow = (await post(`/v0/tokens?name=obs_slow&scope=${enc('PIPES:READ:obs_rl')}&scope=${enc('DATASOURCES:READ:obshid')}&rps=1`)).body.token as string;
    const statuses: Record<string, number> = {};
    for (let i = 0; i < 3; i++) {
      const s = await call(`${srv.url}/v0/sql?q=${enc('SELECT count() FROM obshid FORMAT JSON')}`, { token: slow, headers: { 'X-Request-Id': `obs-rl-sql-${i}` } });
      statuses[`obs-rl-sql-${i}`] = s.status;
      const e = await call(`${srv.url}/v0/pipes/obs_rl.json`, { token: slow, headers: { 'X-Request-Id': `obs-rl-ep-${i}` } });
      statuses[`obs-rl-ep-${i}`] = e.status;
    }
    const limited = Object.entries(statuses).filter(([, st]) => st === 429).map(([id]) => id);
    expect(limited.length, JSON.stringify(statuses)).toBeGreaterThan(1);
    const got = await rowsEventually(`SELECT request_id, status_code, pipe_name, token_name, parameters FROM tinybird.pipe_stats_rt WHERE request_id IN (${limited.map((id) => `'${id}'`).join(', ')}) ORDER BY request_id`, limited.length);
    expect(got.map((r: any) => r.status_code)).toEqual(limited.map(() => 429));
    for (const r of got) expect(r).toMatchObject({ token_name: 'obs_slow', pipe_name: String(r.request_id).startsWith('obs-rl-sql') ? 'query_api' : 'obs_rl' });
    // The query string's q is what was sent (a body is not read for a refused call).
    for (const r of got.filter((x: any) => String(x.request_id).startsWith('obs-rl-sql'))) expect(r.parameters).toEqual({ q: 'SELECT count() FROM obshid FORMAT JSON' });
  });
});

describe('NDJSON ingestion: datasources_ops_log and /metrics count what the client sent', () => {
  it('read_bytes is the body size for /v0/events (with and without wait) and /v0/datasources; every append is a counted operation', async () => {
    const schema = enc('`i` Int32 `json:$.i`, `s` String `json:$.s`');
    expect((await post(`/v0/datasources?name=obsev&format=ndjson&schema=${schema}`)).status).toBe(200);
    const ops0 = await metric('roost_datasource_operations_total', { tenant: 'local', event: 'append', result: 'ok' });
    const bytes0 = await metric('roost_ingest_bytes_total', { tenant: 'local', format: 'ndjson' });
    const waited = '{"i":1,"s":"a long enough string value"}\n{"i":"bad","s":"x"}\n';
    const w = await post('/v0/events?name=obsev&wait=true', waited, { 'Content-Type': 'application/x-ndjson', 'X-Request-Id': 'obs-ev-wait' });
    expect(w).toMatchObject({ status: 200, body: { successful_rows: 1, quarantined_rows: 1 } });
    const appended = '{"i":2,"s":"another string of some length"}\n';
    const a = await post('/v0/datasources?name=obsev&mode=append&format=ndjson', appended, { 'Content-Type': 'application/x-ndjson', 'X-Request-Id': 'obs-ds-append' });
    expect(a.status, a.text).toBe(200);
    const buffered = '{"i":3,"s":"buffered"}\n{"i":4,"s":"buffered too"}\n';
    expect((await post('/v0/events?name=obsev', buffered, { 'Content-Type': 'application/x-ndjson' })).status).toBe(202);

    const rows = await rowsEventually("SELECT request_id, rows, rows_quarantine, read_bytes, written_rows, written_rows_quarantine FROM tinybird.datasources_ops_log WHERE datasource_name = 'obsev' AND event_type = 'append' ORDER BY timestamp", 3);
    const byId = Object.fromEntries(rows.map((r) => [r.request_id, r]));
    expect(byId['obs-ev-wait']).toMatchObject({ rows: 1, rows_quarantine: 1, read_bytes: Buffer.byteLength(waited), written_rows: 1, written_rows_quarantine: 1 });
    expect(byId['obs-ds-append']).toMatchObject({ rows: 1, read_bytes: Buffer.byteLength(appended) });
    expect(byId['events-buffer']).toMatchObject({ rows: 2, rows_quarantine: 0, read_bytes: Buffer.byteLength(buffered), written_rows: 2 });

    expect(await metric('roost_datasource_operations_total', { tenant: 'local', event: 'append', result: 'ok' }) - ops0).toBe(3);
    expect(await metric('roost_ingest_bytes_total', { tenant: 'local', format: 'ndjson' }) - bytes0)
      .toBe(Buffer.byteLength(waited) + Buffer.byteLength(appended) + Buffer.byteLength(buffered));
  });
});

describe('refused data source operations are in datasources_ops_log with result error', () => {
  it('a delete with a forbidden or missing condition leaves a row saying why', async () => {
    expect((await post(`/v0/datasources?name=obsdel&schema=${enc('a Int32')}`)).status).toBe(200);
    const forbidden = await post('/v0/datasources/obsdel/delete', new URLSearchParams({ delete_condition: 'a IN (SELECT number FROM system.numbers)' }), { 'X-Request-Id': 'obs-del-forbidden' });
    expect(forbidden.status).toBeGreaterThanOrEqual(400);
    const missing = await post('/v0/datasources/obsdel/delete', new URLSearchParams({}), { 'X-Request-Id': 'obs-del-missing' });
    expect(missing.status).toBe(400);
    const got = await rowsEventually("SELECT request_id, event_type, result, error FROM tinybird.datasources_ops_log WHERE request_id IN ('obs-del-forbidden', 'obs-del-missing') ORDER BY request_id", 2);
    expect(got).toEqual([
      { request_id: 'obs-del-forbidden', event_type: 'delete_data', result: 'error', error: forbidden.body.error },
      { request_id: 'obs-del-missing', event_type: 'delete_data', result: 'error', error: missing.body.error },
    ]);
  });
});
