/**
 * Tinybird conformance of the service data sources (`tinybird.pipe_stats_rt`,
 * `tinybird.endpoint_errors`, `tinybird.datasources_ops_log`): Tinybird's documented
 * columns, what the writers put in them, monitoring queries ported from Tinybird, and the
 * upgrade of the tables of a cell created by an earlier version. Real server, real engine.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, tempDir, workspaceApi, type RunningServer } from './helpers/server.js';

const enc = encodeURIComponent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let srv: RunningServer;
let token: string;
const api = workspaceApi(() => srv, () => token);

/** Polls until `q` answers at least `n` rows (service rows are written about once a second). */
async function eventually(q: string, n = 1, s: () => RunningServer = () => srv, tok: () => string = () => token): Promise<any[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = await call(`${s().url}/v0/sql?q=${enc(`${q} FORMAT JSONEachRow`)}`, { token: tok() });
    if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
    const got = r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    if (got.length >= n || Date.now() > deadline) return got;
    await sleep(200);
  }
}

/** Column name → type of a service data source, as the workspace's SQL sees it. */
async function columnsOf(table: string): Promise<Record<string, string>> {
  const r = await call(`${srv.url}/v0/sql?q=${enc(`SELECT * FROM ${table} LIMIT 0 FORMAT JSON`)}`, { token });
  expect(r.status, r.text).toBe(200);
  return Object.fromEntries(r.body.meta.map((m: { name: string; type: string }) => [m.name, m.type]));
}

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => { await srv?.stop(); });

describe("Tinybird's documented columns", () => {
  // Tinybird's column names, with the type Roost stores (same type, or a wider one of the
  // same kind: DateTime64(3) for DateTime, Float64 for Float/Float32, UInt64 for UInt32,
  // String for Nullable(String) where Roost always has a value; docs/decisions.md).
  const documented: Record<string, Record<string, string>> = {
    'tinybird.pipe_stats_rt': {
      start_datetime: "DateTime64(3, 'UTC')", pipe_id: 'String', pipe_name: 'String', duration: 'Float64', read_bytes: 'UInt64',
      read_rows: 'UInt64', result_rows: 'UInt64', url: 'String', error: 'UInt8', request_id: 'String', token: 'String',
      token_name: 'String', status_code: 'Int32', method: 'LowCardinality(String)', parameters: 'Map(String, String)',
      release: 'String', user_agent: 'Nullable(String)', resource_tags: 'Array(String)', cpu_time: 'Float64',
    },
    'tinybird.endpoint_errors': {
      start_datetime: "DateTime64(3, 'UTC')", request_id: 'String', pipe_id: 'String', pipe_name: 'String',
      params: 'Nullable(String)', url: 'Nullable(String)', status_code: 'Int32', error: 'String', resource_tags: 'Array(String)',
    },
    'tinybird.datasources_ops_log': {
      timestamp: "DateTime64(3, 'UTC')", event_type: 'LowCardinality(String)', datasource_id: 'String', datasource_name: 'String',
      result: 'LowCardinality(String)', elapsed_time: 'Float64', error: 'String', import_id: 'String', job_id: 'String',
      request_id: 'String', rows: 'UInt64', rows_quarantine: 'UInt64', blocks_ids: 'Array(String)',
      'Options.Names': 'Array(String)', 'Options.Values': 'Array(String)', pipe_id: 'String', pipe_name: 'String',
      read_rows: 'UInt64', read_bytes: 'UInt64', written_rows: 'UInt64', written_bytes: 'UInt64',
      written_rows_quarantine: 'UInt64', written_bytes_quarantine: 'UInt64', operation_id: 'String', release: 'String',
      resource_tags: 'Array(String)', cpu_time: 'Float64',
    },
  };
  for (const [table, cols] of Object.entries(documented)) {
    it(`${table} has every documented column`, async () => {
      const got = await columnsOf(table);
      for (const [name, type] of Object.entries(cols)) expect([name, got[name]], table).toEqual([name, type]);
      // The workspace filter is how the view is built, not a column the workspace sees.
      expect(got.workspace).toBeUndefined();
    });
  }
});

describe('datasources_ops_log: what each operation writes', () => {
  it('Options.Names/Options.Values say what was asked (create, append, replace, delete, events); read and written rows', async () => {
    const schema = enc('`d` Date, `n` Int32');
    const h = { 'Content-Type': 'text/csv' };
    expect((await api.post(`/v0/datasources?name=optsds&mode=create&schema=${schema}`, undefined, { ...h, 'X-Request-Id': 'opts-create' })).status).toBe(200);
    const app = await api.post('/v0/datasources?name=optsds&mode=append&format=csv', '2026-01-01,1\n2026-01-02,2\nnot-a-date,x\n', { ...h, 'X-Request-Id': 'opts-append' });
    expect(app.status, app.text).toBe(200);
    const rep = await api.post(`/v0/datasources?name=optsds&mode=replace&format=csv&replace_condition=${enc("d = '2026-01-01'")}`, '2026-01-01,10\n', { ...h, 'X-Request-Id': 'opts-replace' });
    expect(rep.status, rep.text).toBe(200);
    const del = await call(`${srv.url}/v0/datasources/optsds/delete`, { method: 'POST', token, body: new URLSearchParams({ delete_condition: 'n = 2', dry_run: 'false' }), headers: { 'X-Request-Id': 'opts-delete' } });
    expect(del.status, del.text).toBe(200);
    const ev = await call(`${srv.url}/v0/events?name=optsds&wait=true`, { method: 'POST', token, body: '{"d":"2026-02-01","n":5}\n', headers: { 'X-Request-Id': 'opts-events' } });
    expect(ev.status, ev.text).toBe(200);

    const rows = await eventually("SELECT request_id, event_type, result, Options.Names AS names, Options.Values AS vals, Options.Values[indexOf(Options.Names, 'mode')] AS mode, rows, rows_quarantine, read_rows, written_rows, written_rows_quarantine, elapsed_time, operation_id, pipe_id, pipe_name, cpu_time FROM tinybird.datasources_ops_log WHERE request_id LIKE 'opts-%' ORDER BY timestamp", 5);
    const by = Object.fromEntries(rows.map((r) => [r.request_id, r]));
    expect(by['opts-create']).toMatchObject({ event_type: 'create', result: 'ok', mode: 'create', pipe_id: '', pipe_name: '', cpu_time: 0 });
    expect(by['opts-append']).toMatchObject({ event_type: 'append', result: 'ok', names: ['mode', 'format'], vals: ['append', 'csv'], rows: 2, rows_quarantine: 1, read_rows: 3, written_rows: 2, written_rows_quarantine: 1 });
    expect(by['opts-append'].elapsed_time).toBeGreaterThan(0);
    expect(by['opts-replace']).toMatchObject({ event_type: 'replace', mode: 'replace' });
    expect(Object.fromEntries(by['opts-replace'].names.map((n: string, i: number) => [n, by['opts-replace'].vals[i]]))).toEqual({ mode: 'replace', format: 'csv', replace_condition: "d = '2026-01-01'" });
    expect(by['opts-delete']).toMatchObject({ event_type: 'delete_data', names: ['delete_condition', 'dry_run'], vals: ['n = 2', 'false'] });
    // The operation is named (its job, import or request).
    expect(by['opts-delete'].operation_id).not.toBe('');
    // Events appends used to leave Options empty (only Roost's own `options` map was set).
    expect(by['opts-events']).toMatchObject({ event_type: 'append', names: ['source'], vals: ['events'], rows: 1, read_rows: 1 });

    // Tinybird's usual ways of reading the options work: ARRAY JOIN over the Nested column.
    const joined = await eventually("SELECT request_id, Options.Names AS k, Options.Values AS v FROM tinybird.datasources_ops_log ARRAY JOIN Options WHERE request_id = 'opts-append' ORDER BY k", 2);
    expect(joined).toEqual([{ request_id: 'opts-append', k: 'format', v: 'csv' }, { request_id: 'opts-append', k: 'mode', v: 'append' }]);
  });

  it('a refused append is an error row with its options', async () => {
    const r = await api.post('/v0/datasources?name=optsds&mode=append&format=csv', '', { 'X-Request-Id': 'opts-refused' });
    expect(r.status).toBe(400);
    const [row] = await eventually("SELECT result, error, Options.Names AS names FROM tinybird.datasources_ops_log WHERE request_id = 'opts-refused'");
    expect(row).toMatchObject({ result: 'error', names: ['mode', 'format'] });
    expect(row.error).not.toBe('');
  });
});

describe('pipe_stats_rt and endpoint_errors: what each call writes', () => {
  it('token is the id of the token used, user_agent the client; endpoint_errors has params and url', async () => {
    const toks = await call(`${srv.url}/v0/tokens`, { token });
    expect(toks.status, toks.text).toBe(200);
    const mine = (toks.body.tokens as Array<{ id: string; token?: string; name: string }>).find((t) => t.name === 'workspace admin token');
    expect(mine?.id).toBeTruthy();
    const ok = await call(`${srv.url}/v0/sql?q=${enc('SELECT 1 FORMAT JSON')}`, { token, headers: { 'User-Agent': 'tb-monitor/1.0', 'X-Request-Id': 'ua-ok' } });
    expect(ok.status).toBe(200);
    const bad = await call(`${srv.url}/v0/sql?q=${enc('SELECT nosuch')}&from=audit`, { token, headers: { 'X-Request-Id': 'ua-bad' } });
    expect(bad.status).toBe(422);
    const stats = await eventually("SELECT request_id, token, token_name, user_agent, release, resource_tags, cpu_time FROM tinybird.pipe_stats_rt WHERE request_id IN ('ua-ok', 'ua-bad') ORDER BY request_id DESC", 2);
    expect(stats[0]).toEqual({ request_id: 'ua-ok', token: mine!.id, token_name: 'workspace admin token', user_agent: 'tb-monitor/1.0', release: '', resource_tags: [], cpu_time: 0 });
    expect(stats[1].token).toBe(mine!.id);
    const [err] = await eventually("SELECT pipe_name, params, url, status_code, error, resource_tags FROM tinybird.endpoint_errors WHERE request_id = 'ua-bad'");
    expect(err).toMatchObject({ pipe_name: 'query_api', status_code: 422, resource_tags: [] });
    expect(JSON.parse(err.params)).toEqual({ q: 'SELECT nosuch', from: 'audit' });
    expect(err.url).toContain('/v0/sql?q=');
    expect(err.url).not.toContain(token);
  });

  it('result_rows of WITH TOTALS results count the rows, not the separator and totals line (CSV, TSV)', async () => {
    const q = 'SELECT number % 3 AS k, count() AS c FROM numbers(100) GROUP BY k WITH TOTALS ORDER BY k';
    const formats = ['JSON', 'CSV', 'CSVWithNames', 'TSV', 'JSONEachRow'];
    for (const f of formats) {
      const r = await call(`${srv.url}/v0/sql?q=${enc(`${q} FORMAT ${f}`)}`, { token, headers: { 'X-Request-Id': `totals-${f}` } });
      expect(r.status, r.text).toBe(200);
    }
    // A TSV row of one empty string is an empty line: a row, when there are no totals.
    const empty = await call(`${srv.url}/v0/sql?q=${enc("SELECT '' AS s FROM numbers(3) FORMAT TSV")}`, { token, headers: { 'X-Request-Id': 'totals-none-tsv' } });
    expect(empty.text).toBe('\n\n\n');
    const got = await eventually("SELECT request_id, result_rows FROM tinybird.pipe_stats_rt WHERE request_id LIKE 'totals-%' ORDER BY request_id", formats.length + 1);
    expect(Object.fromEntries(got.map((r) => [r.request_id, r.result_rows]))).toEqual({
      'totals-JSON': 3, 'totals-CSV': 3, 'totals-CSVWithNames': 3, 'totals-TSV': 3, 'totals-JSONEachRow': 3, 'totals-none-tsv': 3,
    });
  });

  it('result_rows of Parquet results is the file\'s row count (from its footer), also for an endpoint', async () => {
    for (const [id, q] of [['parquet-small', 'SELECT number FROM numbers(10)'], ['parquet-big', 'SELECT number, toString(number) AS s FROM numbers(300000)'], ['parquet-empty', 'SELECT number FROM numbers(10) WHERE number > 100']]) {
      const r = await fetch(`${srv.url}/v0/sql?q=${enc(`${q} FORMAT Parquet`)}`, { headers: { Authorization: `Bearer ${token}`, 'X-Request-Id': id } });
      expect(r.status).toBe(200);
      const body = Buffer.from(await r.arrayBuffer());
      expect(body.subarray(body.length - 4).toString()).toBe('PAR1');
    }
    const p = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, body: new URLSearchParams({ name: 'pq_pipe', sql: 'SELECT number FROM numbers(7)' }) });
    expect(p.status, p.text).toBe(200);
    expect((await call(`${srv.url}/v0/pipes/pq_pipe/nodes/${p.body.nodes[0].name}/endpoint`, { method: 'POST', token })).status).toBe(200);
    const e = await fetch(`${srv.url}/v0/pipes/pq_pipe.parquet`, { headers: { Authorization: `Bearer ${token}`, 'X-Request-Id': 'parquet-pipe' } });
    expect(e.status).toBe(200);
    await e.arrayBuffer();
    const got = await eventually("SELECT request_id, result_rows FROM tinybird.pipe_stats_rt WHERE request_id LIKE 'parquet-%' ORDER BY request_id", 4);
    expect(Object.fromEntries(got.map((r) => [r.request_id, r.result_rows]))).toEqual({ 'parquet-small': 10, 'parquet-big': 300000, 'parquet-empty': 0, 'parquet-pipe': 7 });
  });

  it('an endpoint call through a pipe logs the token id and user agent too', async () => {
    const p = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, body: new URLSearchParams({ name: 'ua_pipe', sql: 'SELECT number FROM numbers(5)' }) });
    expect(p.status, p.text).toBe(200);
    const node = p.body.nodes[0].name;
    expect((await call(`${srv.url}/v0/pipes/ua_pipe/nodes/${node}/endpoint`, { method: 'POST', token })).status).toBe(200);
    const r = await call(`${srv.url}/v0/pipes/ua_pipe.csv`, { token, headers: { 'User-Agent': 'tb-pipe-client', 'X-Request-Id': 'ua-pipe' } });
    expect(r.status, r.text).toBe(200);
    const [row] = await eventually("SELECT pipe_name, token, user_agent, result_rows FROM tinybird.pipe_stats_rt WHERE request_id = 'ua-pipe'");
    expect(row.pipe_name).toBe('ua_pipe');
    expect(row.token).not.toBe('');
    expect(row.user_agent).toBe('tb-pipe-client');
    expect(row.result_rows).toBe(5);
  });
});

describe('monitoring queries ported from Tinybird', () => {
  it("the Tinybird SDK's logs query (formatRowNoNewline over *, parseDateTimeBestEffort, UNION ALL) answers", async () => {
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 60_000).toISOString();
    const part = (src: string, ts: string) => `SELECT '${src}' AS source, ${ts} AS timestamp, formatRowNoNewline('JSONEachRow', *) AS data FROM ${src} WHERE ${ts} >= parseDateTimeBestEffort('${from}') AND ${ts} < parseDateTimeBestEffort('${to}')`;
    const q = `SELECT * FROM (${part('tinybird.pipe_stats_rt', 'start_datetime')} UNION ALL ${part('tinybird.datasources_ops_log', 'timestamp')} UNION ALL ${part('tinybird.endpoint_errors', 'start_datetime')}) ORDER BY timestamp DESC LIMIT 100 FORMAT JSON`;
    const r = await call(`${srv.url}/v0/sql?q=${enc(q)}`, { token });
    expect(r.status, r.text).toBe(200);
    const ops = r.body.data.filter((d: any) => d.source === 'tinybird.datasources_ops_log');
    expect(ops.length).toBeGreaterThan(0);
    expect(Object.keys(JSON.parse(ops[0].data))).toEqual(expect.arrayContaining(['Options.Names', 'Options.Values', 'pipe_id', 'cpu_time']));
  });

  it("tinybird.pipe_stats, the daily aggregate, answers Tinybird's own example (avgMerge, quantilesTimingMerge)", async () => {
    const cols = await columnsOf('tinybird.pipe_stats');
    expect(Object.keys(cols)).toEqual(['date', 'pipe_id', 'pipe_name', 'view_count', 'error_count', 'avg_duration_state', 'quantile_timing_state', 'read_bytes_sum', 'read_rows_sum', 'resource_tags']);
    expect(cols.quantile_timing_state).toBe('AggregateFunction(quantilesTiming(0.9, 0.95, 0.99), Float64)');
    expect((await call(`${srv.url}/v0/sql?q=${enc('SELECT 1')}`, { token, headers: { 'X-Request-Id': 'daily-ok' } })).status).toBe(200);
    expect((await call(`${srv.url}/v0/sql?q=${enc('SELECT nosuch')}`, { token, headers: { 'X-Request-Id': 'daily-bad' } })).status).toBe(422);
    await eventually("SELECT 1 FROM tinybird.pipe_stats_rt WHERE request_id IN ('daily-ok', 'daily-bad')", 2);
    const q = "SELECT date, sum(view_count) AS view_count, sum(error_count) AS error_count, avgMerge(avg_duration_state) AS avg_time, quantilesTimingMerge(0.9, 0.95, 0.99)(quantile_timing_state) AS quantiles FROM tinybird.pipe_stats WHERE pipe_id = 'query_api' GROUP BY date FORMAT JSON";
    const r = await call(`${srv.url}/v0/sql?q=${enc(q)}`, { token });
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toHaveLength(1);
    const [day] = r.body.data;
    const [rt] = await eventually("SELECT count() AS n, countIf(error = 1) AS e FROM tinybird.pipe_stats_rt WHERE pipe_id = 'query_api' AND toDate(start_datetime) = today()");
    expect(Number(day.view_count)).toBe(Number(rt.n));
    expect(Number(day.error_count)).toBe(Number(rt.e));
    expect(day.quantiles).toHaveLength(3);
    // An engine error over it names it as the workspace wrote it, not Roost's tables.
    const bad = await call(`${srv.url}/v0/sql?q=${enc('SELECT nosuch FROM tinybird.pipe_stats')}`, { token });
    expect(bad.status).toBe(422);
    expect(bad.text).toContain('tinybird.pipe_stats');
    expect(bad.text).not.toContain('roost_svc_');
    expect(bad.text).not.toContain('workspace_id');
  });

  it('error rate and latency per pipe (pipe_stats_rt) and ingestion errors per data source (ops log)', async () => {
    const a = await call(`${srv.url}/v0/sql?q=${enc("SELECT pipe_name, count() AS calls, countIf(error = 1) AS errors, avg(duration) AS avg_s, quantile(0.9)(duration) AS p90, sum(read_bytes) AS bytes FROM tinybird.pipe_stats_rt WHERE start_datetime > now() - INTERVAL 1 DAY GROUP BY pipe_name ORDER BY calls DESC FORMAT JSON")}`, { token });
    expect(a.status, a.text).toBe(200);
    expect(a.body.data.find((d: any) => d.pipe_name === 'query_api')?.errors).toBeGreaterThan(0);
    const b = await call(`${srv.url}/v0/sql?q=${enc("SELECT datasource_name, event_type, countIf(result = 'error') AS errs, sum(rows) AS rows, sum(rows_quarantine) AS q FROM tinybird.datasources_ops_log WHERE timestamp > now() - INTERVAL 1 HOUR AND has(Options.Names, 'mode') GROUP BY datasource_name, event_type ORDER BY datasource_name, event_type FORMAT JSON")}`, { token });
    expect(b.status, b.text).toBe(200);
    expect(b.body.data.find((d: any) => d.datasource_name === 'optsds' && d.event_type === 'append')).toMatchObject({ errs: 1 });
  });
});

/**
 * The service tables of a cell made by an earlier version (the columns before this change),
 * with rows in them, written by the engine itself in a process of its own while the server
 * is stopped.
 */
const OLD_TABLES: Record<string, string> = {
  pipe_stats_rt: `start_datetime DateTime64(3, 'UTC'), workspace String, pipe_id String, pipe_name String, token_name String, duration Float64, read_rows UInt64, read_bytes UInt64, result_rows UInt64, status_code Int32, error UInt8, error_message String, parameters Map(String, String), request_id String, url String, method LowCardinality(String)`,
  endpoint_errors: `start_datetime DateTime64(3, 'UTC'), workspace String, pipe_id String, pipe_name String, parameters Map(String, String), error String, status_code Int32, request_id String, token_name String`,
  datasources_ops_log: `timestamp DateTime64(3, 'UTC'), workspace String, event_type LowCardinality(String), datasource_id String, datasource_name String, result LowCardinality(String), elapsed_time Float64, error String, request_id String, import_id String, job_id String, rows UInt64, rows_quarantine UInt64, blocks_ids Array(String), options Map(String, String), Options Map(String, String), read_rows UInt64, read_bytes UInt64, written_rows UInt64, written_bytes UInt64, written_rows_quarantine UInt64, written_bytes_quarantine UInt64, operation_id String, release String, resource_tags Array(String)`,
};

function inEngine(cellDir: string, statements: string[]): void {
  const script = `
    const { Session } = await import(${JSON.stringify(path.resolve('node_modules/chdb/index.mjs'))});
    const s = new Session(${JSON.stringify(path.join(cellDir, 'db'))});
    for (const q of JSON.parse(process.argv[1])) await s.queryAsync(q, { format: 'TSV' });
    s.close?.();
  `;
  execFileSync(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(statements)], { stdio: 'pipe', timeout: 60_000 });
}

describe('upgrade: service tables of a cell created by an earlier version', () => {
  let old: RunningServer | undefined;
  afterAll(async () => { await old?.stop(); });

  it('keeps the old rows (Options map → Options.Names/Values), adds the new columns, and takes new writes', async () => {
    const dataDir = tempDir('roost-svc-upgrade-');
    old = await startServer({ dataDir });
    let tok = (await call(`${old.url}/tokens`)).body.workspace_admin_token;
    // The cell and its service tables exist once something was logged.
    expect((await call(`${old.url}/v0/sql?q=${enc('SELECT 1')}`, { token: tok })).status).toBe(200);
    await eventually('SELECT 1 FROM tinybird.pipe_stats_rt', 1, () => old!, () => tok);
    expect(await old.stop()).toBe(0);

    const db = 'roost_svc_local';
    inEngine(path.join(dataDir, 'cells', 'local'), [
      ...Object.entries(OLD_TABLES).flatMap(([t, cols]) => [
        `DROP TABLE IF EXISTS ${db}.${t}`,
        `CREATE TABLE ${db}.${t} (${cols}) ENGINE = MergeTree ORDER BY (workspace, ${t === 'datasources_ops_log' ? 'timestamp' : 'start_datetime'})`,
      ]),
      `INSERT INTO ${db}.pipe_stats_rt (start_datetime, workspace, pipe_id, pipe_name, token_name, duration, result_rows, status_code, parameters, request_id, url, method) VALUES (now64(3), 'default', 'query_api', 'query_api', 'old token', 0.5, 7, 200, {'q': 'SELECT 7'}, 'old-call', '/v0/sql?q=x', 'GET')`,
      `INSERT INTO ${db}.endpoint_errors (start_datetime, workspace, pipe_id, pipe_name, parameters, error, status_code, request_id, token_name) VALUES (now64(3), 'default', 'query_api', 'query_api', {'q': 'bad'}, 'old failure', 400, 'old-error', 'old token')`,
      `INSERT INTO ${db}.datasources_ops_log (timestamp, workspace, event_type, datasource_name, result, request_id, rows, options, Options) VALUES (now64(3), 'default', 'append', 'olds', 'ok', 'old-append', 3, {'mode': 'append', 'format': 'csv'}, {'mode': 'append', 'format': 'csv'})`,
      `INSERT INTO ${db}.datasources_ops_log (timestamp, workspace, event_type, datasource_name, result, request_id, rows, options) VALUES (now64(3), 'default', 'append', 'olds', 'ok', 'old-events', 4, {'source': 'events'})`,
      `INSERT INTO ${db}.datasources_ops_log (timestamp, workspace, event_type, datasource_name, result, request_id, rows) VALUES (now64(3), 'other', 'truncate', 'theirs', 'ok', 'old-other-ws', 0)`,
    ]);

    old = await startServer({ dataDir });
    tok = (await call(`${old.url}/tokens`)).body.workspace_admin_token;
    const s = () => old!;
    const t = () => tok;
    const ops = await eventually("SELECT request_id, rows, Options.Names AS names, Options.Values AS vals, pipe_id, cpu_time FROM tinybird.datasources_ops_log WHERE request_id LIKE 'old-%' ORDER BY request_id", 2, s, t);
    expect(ops).toEqual([
      { request_id: 'old-append', rows: 3, names: ['mode', 'format'], vals: ['append', 'csv'], pipe_id: '', cpu_time: 0 },
      { request_id: 'old-events', rows: 4, names: ['source'], vals: ['events'], pipe_id: '', cpu_time: 0 },
    ]);
    const calls = await eventually("SELECT request_id, result_rows, parameters, token, user_agent, resource_tags FROM tinybird.pipe_stats_rt WHERE request_id = 'old-call'", 1, s, t);
    expect(calls).toEqual([{ request_id: 'old-call', result_rows: 7, parameters: { q: 'SELECT 7' }, token: '', user_agent: null, resource_tags: [] }]);
    const errs = await eventually("SELECT request_id, error, params, url FROM tinybird.endpoint_errors WHERE request_id = 'old-error'", 1, s, t);
    expect(errs).toEqual([{ request_id: 'old-error', error: 'old failure', params: null, url: null }]);

    // New writes land in the upgraded tables, with the new columns.
    const up = await call(`${old.url}/v0/datasources?name=newds&mode=create&format=csv`, { method: 'POST', token: tok, body: 'a,b\n1,2\n', headers: { 'Content-Type': 'text/csv', 'X-Request-Id': 'new-create' } });
    expect(up.status, up.text).toBe(200);
    const q = await call(`${old.url}/v0/sql?q=${enc('SELECT 1 FORMAT CSV')}`, { token: tok, headers: { 'User-Agent': 'after-upgrade', 'X-Request-Id': 'new-call' } });
    expect(q.status).toBe(200);
    const [created] = await eventually("SELECT Options.Names AS names, rows FROM tinybird.datasources_ops_log WHERE request_id = 'new-create'", 1, s, t);
    expect(created).toEqual({ names: ['mode', 'format'], rows: 1 });
    const [logged] = await eventually("SELECT user_agent, result_rows FROM tinybird.pipe_stats_rt WHERE request_id = 'new-call'", 1, s, t);
    expect(logged).toEqual({ user_agent: 'after-upgrade', result_rows: 1 });
    // Still one workspace's rows only.
    expect(await eventually("SELECT 1 FROM tinybird.datasources_ops_log WHERE request_id = 'old-other-ws'", 0, s, t)).toEqual([]);

    // A second start finds nothing left to upgrade and keeps every row.
    expect(await old.stop()).toBe(0);
    old = await startServer({ dataDir });
    tok = (await call(`${old.url}/tokens`)).body.workspace_admin_token;
    const again = await eventually("SELECT request_id, Options.Names AS names FROM tinybird.datasources_ops_log WHERE request_id IN ('old-append', 'old-events', 'new-create') ORDER BY request_id", 3, s, t);
    expect(again.map((r) => [r.request_id, r.names])).toEqual([['new-create', ['mode', 'format']], ['old-append', ['mode', 'format']], ['old-events', ['source']]]);
    expect(old.logs.filter((l) => String(l.msg).includes('upgrade failed'))).toEqual([]);
  }, 180_000);
});

describe("a workspace's service rows are its own, not its name's", () => {
  const op = (p: string, init: RequestInit = {}) => call(`${srv.url}${p}`, { ...init, token: srv.operatorToken, headers: { 'Content-Type': 'application/json', ...(init.headers ?? {}) } });
  const sqlAs = (tok: string, q: string, id: string) => call(`${srv.url}/v0/sql?q=${enc(q)}`, { token: tok, headers: { 'X-Request-Id': id } });

  it('a workspace created under a deleted one\'s name does not read its calls, errors and operations', async () => {
    const made = await op('/v0/tenants/local/workspaces', { method: 'POST', body: JSON.stringify({ name: 'reused' }) });
    expect(made.status, made.text).toBe(201);
    const first = made.body.token as string;
    expect((await sqlAs(first, "SELECT 'secret-param' AS s", 'reused-first-call')).status).toBe(200);
    expect((await sqlAs(first, 'SELECT nosuch', 'reused-first-error')).status).toBe(422);
    const up = await call(`${srv.url}/v0/datasources?name=first_ds&mode=create&format=csv`, { method: 'POST', token: first, body: 'a\n1\n', headers: { 'Content-Type': 'text/csv', 'X-Request-Id': 'reused-first-op' } });
    expect(up.status, up.text).toBe(200);
    await eventually("SELECT 1 FROM tinybird.datasources_ops_log WHERE request_id = 'reused-first-op'", 1, () => srv, () => first);
    await eventually("SELECT 1 FROM tinybird.endpoint_errors WHERE request_id = 'reused-first-error'", 1, () => srv, () => first);
    expect((await op('/v0/tenants/local/workspaces/reused', { method: 'DELETE' })).status).toBe(200);

    const again = await op('/v0/tenants/local/workspaces', { method: 'POST', body: JSON.stringify({ name: 'reused' }) });
    expect(again.status, again.text).toBe(201);
    const second = again.body.token as string;
    expect((await sqlAs(second, 'SELECT 1', 'reused-second-call')).status).toBe(200);
    await eventually("SELECT 1 FROM tinybird.pipe_stats_rt WHERE request_id = 'reused-second-call'", 1, () => srv, () => second);
    for (const t of ['tinybird.pipe_stats_rt', 'tinybird.endpoint_errors', 'tinybird.datasources_ops_log']) {
      const r = await sqlAs(second, `SELECT request_id FROM ${t} WHERE request_id LIKE 'reused-first-%' FORMAT JSON`, `reused-check-${t}`);
      expect(r.status, r.text).toBe(200);
      expect([t, r.body.data]).toEqual([t, []]);
    }
  });

  it('a renamed workspace keeps reading its own rows, and a new workspace under the old name does not', async () => {
    const made = await op('/v0/tenants/local/workspaces', { method: 'POST', body: JSON.stringify({ name: 'before_rename' }) });
    expect(made.status, made.text).toBe(201);
    const tok = made.body.token as string;
    expect((await sqlAs(tok, 'SELECT 1', 'renamed-call')).status).toBe(200);
    await eventually("SELECT 1 FROM tinybird.pipe_stats_rt WHERE request_id = 'renamed-call'", 1, () => srv, () => tok);
    const ren = await op('/v0/tenants/local/workspaces/before_rename', { method: 'PATCH', body: JSON.stringify({ name: 'after_rename' }) });
    expect(ren.status, ren.text).toBe(200);
    const mine = await eventually("SELECT request_id FROM tinybird.pipe_stats_rt WHERE request_id = 'renamed-call'", 1, () => srv, () => tok);
    expect(mine).toEqual([{ request_id: 'renamed-call' }]);
    const other = await op('/v0/tenants/local/workspaces', { method: 'POST', body: JSON.stringify({ name: 'before_rename' }) });
    expect(other.status, other.text).toBe(201);
    const r = await sqlAs(other.body.token, "SELECT request_id FROM tinybird.pipe_stats_rt WHERE request_id = 'renamed-call' FORMAT JSON", 'renamed-check');
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([]);
  });
});
