/**
 * Session 8's features on a tenant placed on Debian's ClickHouse 18.16, side by side with an
 * embedded tenant on one Roost server, and the upgrade of service tables an older Roost created
 * on such a server (18.16 has no Map type, no RENAME COLUMN, no ADD COLUMN IF NOT EXISTS, no
 * JSONExtract*). Skipped loudly without the binary; fails under CI=true.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTenant, startServer, tenantApis, tempDir, type RunningServer } from './helpers/server.js';
import { requireClickHouse, startClickHouse, type RunningClickHouse } from './helpers/clickhouse-server.js';

let srv: RunningServer | undefined;
let ch: RunningClickHouse | undefined;
let dataDir = '';
const tokens: Record<string, string> = {};

async function tenant(slug: string, placement?: unknown) {
  tokens[slug] = await createTenant(srv!, slug, placement);
}

const direct = (q: string) => ch!.query(q, { allow_experimental_low_cardinality_type: 1 });

const { api, both } = tenantApis(() => srv!, tokens);

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

describe('an upgrade on 18.16 cut short (kill -9) resumes at the next start', () => {
  it('Options copied aside for some rows only, Options still there: every row ends in Options.Names/Values', async (t) => {
    if (!ch) return t.skip();
    await tenant('cut', { type: 'clickhouse', url: ch.url, user: ch.user, password: ch.password });
    await eventually('cut', 'SELECT count() FROM tinybird.datasources_ops_log', 1);
    expect(await srv!.stop()).toBe(0);
    const db = 'roost_svc_cut';
    await direct(`DROP TABLE ${db}.datasources_ops_log`);
    // Where a start killed between the copy aside and the drop of Options leaves it.
    await direct(`CREATE TABLE ${db}.datasources_ops_log (timestamp DateTime('UTC'), workspace String, workspace_id String, event_type LowCardinality(String), datasource_name String, result LowCardinality(String), request_id String, rows UInt64, options String, Options String, \`__Options_before_nested\` String) ENGINE = MergeTree ORDER BY (workspace, timestamp)`);
    await direct(`INSERT INTO ${db}.datasources_ops_log (timestamp, workspace, event_type, datasource_name, result, request_id, rows, options, Options, \`__Options_before_nested\`) VALUES (now(), 'main', 'append', 'c', 'ok', 'cut-copied', 1, '', '{"a":"1"}', '{"a":"1"}'), (now(), 'main', 'append', 'c', 'ok', 'cut-not-copied', 2, '', '{"b":"2"}', '')`);
    srv = await startServer({ dataDir });
    const rows = await eventually('cut', "SELECT request_id, Options.Names AS n, Options.Values AS v, cpu_time FROM tinybird.datasources_ops_log WHERE request_id LIKE 'cut-%' ORDER BY request_id", 2);
    expect(rows.map((r) => [r.request_id, r.n, r.v])).toEqual([['cut-copied', ['a'], ['1']], ['cut-not-copied', ['b'], ['2']]]);
    expect(await direct(`SELECT name FROM system.columns WHERE database = '${db}' AND name IN ('Options', '__Options_before_nested')`)).toBe('');
    expect(srv!.logs.filter((l) => String(l.msg).includes('upgrade failed'))).toEqual([]);
  }, 60_000);
});

describe("this session's features, embedded vs remote (18.16) on one Roost server", () => {
  const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
  const NDJSON = '{"id":1,"t":"2024-01-01 10:00:00","d":"2024-01-02","s":"a"}\n{"id":2,"t":"2024-01-01 11:00:00","d":"2024-01-03","s":"b"}\n';

  it('NDJSON inference: whole-second date-times are DateTime, and such a data source is created alike', async (t) => {
    if (!ch) return t.skip();
    const [a1, a2] = await both((a) => a.post('/v0/analyze?format=ndjson', NDJSON, {}));
    expect(a1.status, a1.text).toBe(200);
    expect(a2.body.analysis, a2.text).toEqual(a1.body.analysis);
    const [c1, c2] = await both((a) => a.post('/v0/datasources?name=nd&mode=create&format=ndjson', NDJSON, {}));
    expect(c1.status, c1.text).toBe(200);
    expect(c2.status, c2.text).toBe(200);
    const [g1, g2] = await both((a) => a.req('/v0/datasources/nd'));
    expect(g2.body.schema.columns).toEqual(g1.body.schema.columns);
    expect(g1.body.schema.columns.find((c: any) => c.name === 't').type).toBe('DateTime');
    const [r1, r2] = await both((a) => a.sql('SELECT * FROM nd ORDER BY id FORMAT JSON'));
    expect(r2.body.meta).toEqual(r1.body.meta);
    expect(r2.body.data).toEqual(r1.body.data);
    // A fraction makes it DateTime64(3), which 18.16 lacks: refused naming the type.
    const frac = '{"id":1,"t":"2024-01-01 10:00:00.123"}\n';
    const [f1, f2] = await both((a) => a.post('/v0/datasources?name=nd_frac&mode=create&format=ndjson', frac, {}));
    expect(f1.status, f1.text).toBe(200);
    expect(f2.status, f2.text).toBe(400);
    expect(f2.body.error).toMatch(/DateTime64 is not available on this tenant's ClickHouse server \(version 18\./);
  });

  it('a column with a DEFAULT: taken on the embedded engine, refused at create on 18.16 (its rows could never go in; buffered events were acknowledged and never stored)', async (t) => {
    if (!ch) return t.skip();
    const schema = encodeURIComponent("id UInt32, name String, k String DEFAULT concat(name, '_k')");
    const [c1, c2] = await both((a) => a.post(`/v0/datasources?name=dflt&mode=create&schema=${schema}`, '', {}));
    expect(c1.status, c1.text).toBe(200);
    expect(c2.status, c2.text).toBe(400);
    expect(c2.body).toMatchObject({ code: 'SCHEMA_UNSUPPORTED', column: 'k' });
    expect(c2.body.error).toMatch(/column k has a DEFAULT: this tenant's ClickHouse server \(version 18\.[^)]*\) cannot take rows/);
    const [b1, b2] = await both((a) => a.post(`/v0/datasources?name=dflt_body&mode=create&schema=${schema}`, '1,a,\n2,b,given\n', { 'Content-Type': 'text/csv' }));
    expect(b1.body).toMatchObject({ rows: 2 });
    expect(b2.status, b2.text).toBe(400);
    expect((await api('rem').req('/v0/datasources/dflt_body')).status).toBe(404);
    expect((await api('emb').sql('SELECT k FROM dflt_body ORDER BY id FORMAT JSON')).body.data).toEqual([{ k: 'a_k' }, { k: 'given' }]);
  });

  it('/v0/sql: SELECT * FROM <pipe> and FORMAT TSVWithNames', async (t) => {
    if (!ch) return t.skip();
    const [p1, p2] = await both((a) => a.post('/v0/pipes', new URLSearchParams({ name: 'np', sql: '%\nSELECT id, s, t FROM nd WHERE id >= {{Int32(min_id, 0)}} ORDER BY id' }).toString(), form));
    expect(p1.status, p1.text).toBe(200);
    expect(p2.status, p2.text).toBe(200);
    const [e1, e2] = await both((a) => a.post('/v0/pipes/np/nodes/np_0/endpoint'));
    expect(e1.status, e1.text).toBe(200);
    expect(e2.status, e2.text).toBe(200);
    for (const q of ['SELECT * FROM np FORMAT JSON', 'SELECT count() AS c, max(t) AS m FROM np FORMAT JSON', 'SELECT * FROM np FORMAT TSVWithNames', 'select s from nd order by id format tsvwithnames']) {
      const [r1, r2] = await both((a) => a.sql(q));
      expect(r1.status, `${q}: ${r1.text}`).toBe(200);
      expect(r2.status, `${q}: ${r2.text}`).toBe(200);
      if (q.includes('JSON')) {
        expect(r2.body.meta, q).toEqual(r1.body.meta);
        expect(r2.body.data, q).toEqual(r1.body.data);
      } else {
        expect(r2.text, q).toBe(r1.text);
      }
    }
    const [m1, m2] = await both((a) => a.req(`/v0/sql?q=${encodeURIComponent('SELECT id FROM np FORMAT JSON')}&min_id=2`));
    expect(m1.body.data).toEqual([{ id: 2 }]);
    expect(m2.body.data).toEqual(m1.body.data);
    const [tsv1, tsv2] = await both((a) => a.req('/v0/pipes/np.tsv'));
    expect(tsv2.text).toBe(tsv1.text);
  });

  it('pipes: the save-time engine check takes the same SQL on both (spellings, templates, pipes reading pipes) and refuses the same', async (t) => {
    if (!ch) return t.skip();
    const sqls = [
      'SELECT id FROM nd -- the ids', 'SELECT id FROM nd;', 'SELECT id FROM nd SETTINGS max_threads = 1', 'WITH 2 AS k SELECT id * k AS x FROM nd',
      '%\nSELECT id FROM nd WHERE s = {{String(s, "a")}}', '%\nSELECT id FROM nd {% if defined(x) %} WHERE id = {{Int32(x)}} {% end %}',
      'SELECT id, s FROM np', 'SELECT count() AS c, groupArray(s) AS g FROM nd GROUP BY id % 2 ORDER BY c', 'SELECT * FROM nd ARRAY JOIN [1, 2] AS k',
      'SELECT idd FROM nd', "SELECT id + 'x' FROM nd", 'SELECT nope FROM np',
    ];
    for (const [i, sql] of sqls.entries()) {
      const [r1, r2] = await both((a) => a.post('/v0/pipes', new URLSearchParams({ name: `chk_${i}`, sql }).toString(), form));
      expect(r2.status, `${sql}: ${r1.text} | ${r2.text}`).toBe(r1.status);
      if (r1.status !== 200) expect(r2.body.code, sql).toBe(r1.body.code);
    }
    // The saved ones, published and read by name through /v0/sql and as endpoints, answer alike.
    for (const i of sqls.keys()) {
      const [g1] = await both((a) => a.req(`/v0/pipes/chk_${i}`));
      if (g1.status !== 200) continue;
      const node = g1.body.nodes[0].name;
      await both((a) => a.post(`/v0/pipes/chk_${i}/nodes/${node}/endpoint`));
      const [r1, r2] = await both((a) => a.sql(`SELECT * FROM chk_${i} FORMAT JSON`));
      expect(r1.status, `${sqls[i]}: ${r1.text}`).toBe(200);
      expect(r2.status, `${sqls[i]}: ${r2.text}`).toBe(200);
      expect(r2.body.data, sqls[i]).toEqual(r1.body.data);
      const [e1, e2] = await both((a) => a.req(`/v0/pipes/chk_${i}.json`));
      expect(e2.status, `${sqls[i]}: ${e2.text}`).toBe(e1.status);
      expect(e2.body.data, sqls[i]).toEqual(e1.body.data);
    }
    for (const i of [...sqls.keys()].reverse()) await both((a) => a.req(`/v0/pipes/chk_${i}`, { method: 'DELETE' }));
  });

  it('tinybird.pipe_stats, datasources_ops_log Options.Names, and rows of one workspace only', async (t) => {
    if (!ch) return t.skip();
    for (let i = 0; i < 3; i++) await both((a) => a.req('/v0/pipes/np.json'));
    await both((a) => a.req('/v0/pipes/np.json?min_id=x'));
    const q = "SELECT pipe_name, sum(view_count) AS views, sum(error_count) AS errors, round(avgMerge(avg_duration_state) * 0) AS z, length(quantilesTimingMerge(0.9, 0.95, 0.99)(quantile_timing_state)) AS qs, resource_tags FROM tinybird.pipe_stats WHERE pipe_name = 'np' GROUP BY pipe_name, resource_tags";
    const wait = async (slug: string) => {
      for (let i = 0; i < 100; i++) {
        const r = await eventually(slug, q, 1);
        if (Number(r[0].views) >= 5) return r;
        await new Promise((res) => setTimeout(res, 200));
      }
      throw new Error(`${slug}: pipe_stats never reached 5 calls`);
    };
    const [s1, s2] = await Promise.all([wait('emb'), wait('rem')]);
    expect(s2).toEqual(s1);
    expect(Number(s1[0].views)).toBe(5); // and the .tsv call of the test before
    expect(Number(s1[0].errors)).toBe(1);
    const ops = "SELECT event_type, result, Options.Names AS names, Options.Values AS vals FROM tinybird.datasources_ops_log WHERE datasource_name = 'nd' ORDER BY timestamp, event_type";
    const [o1, o2] = await Promise.all([eventually('emb', ops, 1), eventually('rem', ops, 1)]);
    expect(o2).toEqual(o1);
    expect(o1[0].names.length).toBeGreaterThan(0);
    const arr = "SELECT Options.Names AS n, Options.Values AS v FROM tinybird.datasources_ops_log ARRAY JOIN Options WHERE datasource_name = 'nd' ORDER BY n, v";
    const [j1, j2] = await Promise.all([eventually('emb', arr, 1), eventually('rem', arr, 1)]);
    expect(j2).toEqual(j1);
    // Another workspace of the same tenant sees none of these rows.
    for (const slug of ['emb', 'rem']) {
      const ws = await call(`${srv!.url}/v0/tenants/${slug}/workspaces`, { method: 'POST', token: srv!.operatorToken, body: JSON.stringify({ name: 'other' }) });
      expect(ws.status, ws.text).toBe(201);
      const r = await call(`${srv!.url}/v0/sql?q=${encodeURIComponent('SELECT (SELECT count() FROM tinybird.pipe_stats_rt) + (SELECT count() FROM tinybird.datasources_ops_log) + (SELECT count() FROM tinybird.pipe_stats) AS n FORMAT JSON')}`, { token: ws.body.token });
      expect(r.status, r.text).toBe(200);
      expect(Number(r.body.data[0].n), slug).toBe(0);
    }
  }, 60_000);

  it('renames: PUT /v0/datasources and /v0/pipes; drops take the token scopes with them', async (t) => {
    if (!ch) return t.skip();
    const [d1, d2] = await both((a) => a.req('/v0/pipes/np', { method: 'DELETE' }));
    expect(d1.status, d1.text).toBe(204 === d1.status ? 204 : 200);
    expect(d2.status).toBe(d1.status);
    const [r1, r2] = await both((a) => a.req('/v0/datasources/nd?name=nd2', { method: 'PUT' }));
    expect(r1.status, r1.text).toBe(200);
    expect(r2.status, r2.text).toBe(200);
    const [s1, s2] = await both((a) => a.sql('SELECT * FROM nd2 ORDER BY id FORMAT JSON'));
    expect(s2.status, s2.text).toBe(200);
    expect(s2.body.data).toEqual(s1.body.data);
    expect(s1.body.data.length).toBe(2);
    const [q1, q2] = await both((a) => a.sql('SELECT count() AS c FROM nd2_quarantine FORMAT JSON'));
    expect(q2.status, q2.text).toBe(200);
    expect(q2.body.data).toEqual(q1.body.data);
    const [o1, o2] = await both((a) => a.sql('SELECT count() FROM nd'));
    expect(o1.status).not.toBe(200);
    expect(o2.status).toBe(o1.status);
    // Appends reach the renamed table.
    const [a1, a2] = await both((a) => a.post('/v0/events?name=nd2&wait=true', '{"id":3,"t":"2024-01-01 12:00:00","d":"2024-01-04","s":"c"}\n', {}));
    expect(a1.status, a1.text).toBe(200);
    expect(a2.body).toEqual(a1.body);
    // Pipe rename.
    await both((a) => a.post('/v0/pipes', new URLSearchParams({ name: 'rp', sql: 'SELECT count() AS c FROM nd2' }).toString(), form));
    await both((a) => a.post('/v0/pipes/rp/nodes/rp_0/endpoint'));
    const [n1, n2] = await both((a) => a.req('/v0/pipes/rp?name=rp2', { method: 'PUT' }));
    expect(n1.status, n1.text).toBe(200);
    expect(n2.status, n2.text).toBe(200);
    const [c1, c2] = await both((a) => a.req('/v0/pipes/rp2.json'));
    expect(c2.status, c2.text).toBe(200);
    expect(c2.body.data).toEqual(c1.body.data);
    expect(Number(c1.body.data[0].c)).toBe(3);
    // A token reading nd2 loses the scope when nd2 is dropped; a new nd2 is not its.
    const [k1, k2] = await both((a) => a.post(`/v0/tokens?name=reader&scope=${encodeURIComponent('DATASOURCES:READ:nd2')}`, undefined, {}));
    expect(k1.status, k1.text).toBe(200);
    expect(k2.status, k2.text).toBe(200);
    const [x1, x2] = await both((a) => a.req('/v0/pipes/rp2', { method: 'DELETE' }));
    expect(x2.status).toBe(x1.status);
    const [y1, y2] = await both((a) => a.req('/v0/datasources/nd2', { method: 'DELETE' }));
    expect(y1.status, y1.text).toBeLessThan(300);
    expect(y2.status, y2.text).toBe(y1.status);
    await both((a) => a.post('/v0/datasources?name=nd2&mode=create&format=ndjson', NDJSON, {}));
    const [v1, v2] = await Promise.all([k1, k2].map((k) => call(`${srv!.url}/v0/sql?q=${encodeURIComponent('SELECT count() FROM nd2 FORMAT JSON')}`, { token: k.body.token })));
    expect(v1.status, v1.text).toBe(403);
    expect(v2.status, v2.text).toBe(403);
    const [g1, g2] = await both((a) => a.req('/v0/tokens/reader'));
    expect(g2.body.scopes).toEqual(g1.body.scopes);
    // The rename and the drop in tinybird.datasources_ops_log, alike.
    const ops = "SELECT event_type, datasource_name, result, Options.Names AS n, Options.Values AS v FROM tinybird.datasources_ops_log WHERE event_type IN ('rename', 'delete') AND datasource_name IN ('nd', 'nd2') ORDER BY event_type";
    const [l1, l2] = await Promise.all([eventually('emb', ops, 2), eventually('rem', ops, 2)]);
    expect(l2).toEqual(l1);
    expect(l1.find((r) => r.event_type === 'rename')).toMatchObject({ datasource_name: 'nd2', n: ['old_name', 'new_name'], v: ['nd', 'nd2'] });
  }, 60_000);
});
