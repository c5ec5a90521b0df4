/**
 * Session 8's features on a tenant placed on Debian's ClickHouse 18.16, side by side with an
 * embedded tenant on one Roost server, and the upgrade of service tables an older Roost created
 * on such a server (18.16 has no Map type, no RENAME COLUMN, no ADD COLUMN IF NOT EXISTS, no
 * JSONExtract*). Skipped loudly without the binary; fails under CI=true.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, tempDir, type RunningServer } from './helpers/server.js';
import { requireClickHouse, startClickHouse, type RunningClickHouse } from './helpers/clickhouse-server.js';

let srv: RunningServer | undefined;
let ch: RunningClickHouse | undefined;
let dataDir = '';
const tokens: Record<string, string> = {};

async function tenant(slug: string, placement?: unknown) {
  const t = await call(`${srv!.url}/v0/tenants`, { method: 'POST', token: srv!.operatorToken, body: JSON.stringify({ slug, ...(placement ? { placement } : {}) }) });
  expect(t.status, t.text).toBe(201);
  const ws = await call(`${srv!.url}/v0/tenants/${slug}/workspaces`, { method: 'POST', token: srv!.operatorToken, body: JSON.stringify({ name: 'main' }) });
  expect(ws.status, ws.text).toBe(201);
  tokens[slug] = ws.body.token;
}

const direct = async (q: string) => {
  const r = await fetch(`${ch!.url}/?user=${encodeURIComponent(ch!.user)}&password=${encodeURIComponent(ch!.password)}&allow_experimental_low_cardinality_type=1`, { method: 'POST', body: q });
  const text = await r.text();
  if (!r.ok) throw new Error(`${q}: ${text}`);
  return text;
};

const api = (slug: string) => {
  const req = (p: string, init: RequestInit = {}) => call(`${srv!.url}${p}`, { ...init, token: tokens[slug] });
  const post = (p: string, body?: BodyInit, headers: Record<string, string> = { 'Content-Type': 'text/csv' }) => req(p, { method: 'POST', body, headers });
  const sql = (q: string) => req(`/v0/sql?q=${encodeURIComponent(q)}`);
  return { req, post, sql };
};
const both = async <T>(f: (a: ReturnType<typeof api>, slug: string) => Promise<T>): Promise<[T, T]> => Promise.all([f(api('emb'), 'emb'), f(api('rem'), 'rem')]);

/** Rows of a service query once `n` are there (service rows are written in batches). */
async function eventually(slug: string, q: string, n: number): Promise<any[]> {
  let last: any;
  for (let i = 0; i < 100; i++) {
    await call(`${srv!.url}/v0/tenants/${slug}`, { token: srv!.operatorToken });
    last = await api(slug).sql(`${q} FORMAT JSON`);
    if (last.status === 200 && last.body.data.length >= n) return last.body.data;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${slug}: ${q}: ${last?.status} ${last?.text}`);
}

beforeAll(async () => {
  if (!requireClickHouse()) return;
  dataDir = tempDir('roost-session8-');
  [ch, srv] = await Promise.all([startClickHouse(), startServer({ dataDir })]);
  await tenant('emb');
  await tenant('rem', { type: 'clickhouse', url: ch.url, user: ch.user, password: ch.password });
}, 120_000);
afterAll(async () => {
  await srv?.stop();
  await ch?.stop();
});

describe('service tables of an older Roost on ClickHouse 18.16', () => {
  it('are upgraded at start: rows kept, Options text → Options.Names/Values, workspace ids, no failure at the next start', async (t) => {
    if (!ch) return t.skip();
    // Make sure the current tables exist (and what the workspace is called), then stop Roost.
    await eventually('rem', 'SELECT count() FROM tinybird.datasources_ops_log', 1);
    expect(await srv!.stop()).toBe(0);
    // The tables as the version before this session's created them on 18.16 (Map → String
    // holding JSON text, DateTime64 → DateTime), with rows of it.
    const db = 'roost_svc_rem';
    for (const tb of ['pipe_stats_rt', 'endpoint_errors', 'datasources_ops_log', 'audit_log']) await direct(`DROP TABLE ${db}.${tb}`);
    await direct(`CREATE TABLE ${db}.datasources_ops_log (timestamp DateTime('UTC'), workspace String, event_type LowCardinality(String), datasource_id String, datasource_name String, result LowCardinality(String), elapsed_time Float64, error String, request_id String, import_id String, job_id String, rows UInt64, rows_quarantine UInt64, blocks_ids Array(String), options String, Options String, read_rows UInt64, read_bytes UInt64, written_rows UInt64, written_bytes UInt64, written_rows_quarantine UInt64, written_bytes_quarantine UInt64, operation_id String, release String, resource_tags Array(String)) ENGINE = MergeTree ORDER BY (workspace, timestamp)`);
    await direct(`CREATE TABLE ${db}.pipe_stats_rt (start_datetime DateTime('UTC'), workspace String, pipe_id String, pipe_name String, token_name String, duration Float64, read_rows UInt64, read_bytes UInt64, result_rows UInt64, status_code Int32, error UInt8, error_message String, parameters String, request_id String, url String, method LowCardinality(String)) ENGINE = MergeTree ORDER BY (workspace, start_datetime)`);
    await direct(`CREATE TABLE ${db}.endpoint_errors (start_datetime DateTime('UTC'), workspace String, pipe_id String, pipe_name String, parameters String, error String, status_code Int32, request_id String, token_name String) ENGINE = MergeTree ORDER BY (workspace, start_datetime)`);
    await direct(`CREATE TABLE ${db}.audit_log (timestamp DateTime('UTC'), tenant String, workspace String, event LowCardinality(String), outcome LowCardinality(String), reason String, actor String, credential LowCardinality(String), connection String, resource String, request_id String, ip String, details String) ENGINE = MergeTree ORDER BY (tenant, timestamp)`);
    await direct(`INSERT INTO ${db}.datasources_ops_log (timestamp, workspace, event_type, datasource_name, result, request_id, rows, options, Options) VALUES (now(), 'main', 'append', 'olds', 'ok', 'old-append', 3, '{"mode":"append","format":"csv"}', '{"mode":"append","format":"csv"}'), (now(), 'main', 'append', 'olds', 'ok', 'old-events', 4, '{"source":"events"}', ''), (now(), 'main', 'append', 'olds', 'ok', 'old-escaped', 5, '{"we\\\\"ird":"a,b:\\\\"c\\\\" \\\\u00e9"}', '{"we\\\\"ird":"a,b:\\\\"c\\\\" \\\\u00e9"}'), (now(), 'gone', 'truncate', 'theirs', 'ok', 'old-other-ws', 0, '', '')`);
    await direct(`INSERT INTO ${db}.pipe_stats_rt (start_datetime, workspace, pipe_id, pipe_name, duration, result_rows, status_code, parameters, request_id, url, method) VALUES (now(), 'main', 'query_api', 'query_api', 0.5, 7, 200, '{"q":"SELECT 7"}', 'old-call', '/v0/sql?q=x', 'GET')`);
    srv = await startServer({ dataDir });

    const ops = await eventually('rem', "SELECT request_id, rows, Options.Names AS names, Options.Values AS vals, pipe_id FROM tinybird.datasources_ops_log WHERE request_id LIKE 'old-%' ORDER BY request_id", 3);
    expect(ops.map((r) => ({ ...r, rows: Number(r.rows) }))).toEqual([
      { request_id: 'old-append', rows: 3, names: ['mode', 'format'], vals: ['append', 'csv'], pipe_id: '' },
      { request_id: 'old-escaped', rows: 5, names: ['we"ird'], vals: ['a,b:"c" é'], pipe_id: '' },
      { request_id: 'old-events', rows: 4, names: ['source'], vals: ['events'], pipe_id: '' },
    ]);
    const calls = await eventually('rem', "SELECT request_id, result_rows, token, resource_tags FROM tinybird.pipe_stats_rt WHERE request_id = 'old-call'", 1);
    expect(calls.map((c) => c.request_id)).toEqual(['old-call']);
    // New writes land with the new columns.
    const c = await api('rem').post('/v0/datasources?name=after_upgrade&mode=create&format=csv', 'a,b\n1,2\n', { 'Content-Type': 'text/csv', 'X-Request-Id': 'new-create' });
    expect(c.status, c.text).toBe(200);
    const created = await eventually('rem', "SELECT event_type, Options.Names AS names FROM tinybird.datasources_ops_log WHERE request_id = 'new-create'", 1);
    expect(created[0].event_type).toBe('create');
    expect(created[0].names.length).toBeGreaterThan(0);
    expect(srv!.logs.filter((l) => String(l.msg).includes('upgrade failed'))).toEqual([]);
    // Nothing left aside; a second start finds nothing to do and keeps every row.
    expect(await direct(`SELECT name FROM system.columns WHERE database = '${db}' AND name LIKE '%before_nested%'`)).toBe('');
    expect(await srv!.stop()).toBe(0);
    srv = await startServer({ dataDir });
    const again = await eventually('rem', "SELECT request_id, Options.Names AS names FROM tinybird.datasources_ops_log WHERE request_id IN ('old-append', 'old-events', 'new-create') ORDER BY request_id", 3);
    expect(again.map((r) => [r.request_id, r.names])).toEqual([['new-create', created[0].names], ['old-append', ['mode', 'format']], ['old-events', ['source']]]);
    expect(srv!.logs.filter((l) => String(l.msg).includes('upgrade failed'))).toEqual([]);
    expect(await direct(`SELECT count() FROM ${db}.datasources_ops_log WHERE request_id = 'old-other-ws'`)).toBe('1\n');
  }, 120_000);
});
