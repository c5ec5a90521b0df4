/**
 * Endpoint regressions found by the pipes audit, against the real server and embedded
 * engine. Each test names what broke.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;

const post = (path: string, body?: BodyInit, headers: Record<string, string> = {}) =>
  call(`${srv.url}${path}`, { method: 'POST', token: admin, body, headers });
const get = (path: string) => call(`${srv.url}${path}`, { token: admin });
const createPipe = async (name: string, nodes: Array<{ name: string; sql: string }>) => {
  const last = nodes[nodes.length - 1]!.name;
  const r = await post('/v0/pipes', JSON.stringify({ name, nodes: nodes.map((n) => ({ ...n, type: n.name === last ? 'endpoint' : undefined })) }), { 'Content-Type': 'application/json' });
  if (r.status !== 200) throw new Error(`create ${name}: ${r.status} ${r.text}`);
  return r.body;
};
const rows = async (path: string) => {
  const r = await get(path);
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.text}`);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
};

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const schema = encodeURIComponent('id Int32, country String, f Float32, note String');
  expect((await post(`/v0/datasources?name=events&schema=${schema}`)).status).toBe(200);
  const csv = '1,ES,0.1,plain\n2,FR,0.2,"two\nlines"\n3,ES,0.3,"a ""quoted"" one"\n4,DE,1.5,x\n';
  expect((await post('/v0/datasources?name=events&mode=append', csv, { 'Content-Type': 'text/csv' })).body.rows).toBe(4);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('a template that reads a node or a pipe only in some branches', () => {
  it('reads the node its parameters choose, not only the one chosen with default values', async () => {
    const p = await createPipe('choose_node', [
      { name: 'es', sql: "SELECT id FROM events WHERE country = 'ES'" },
      { name: 'fr', sql: "SELECT id FROM events WHERE country = 'FR'" },
      { name: 'out', sql: '%\nSELECT id FROM {% if defined(fr) %}fr{% else %}es{% end %} ORDER BY id' },
    ]);
    // The render with default values (defined() true) reads `fr`; the else branch's `es` is saved too.
    expect(p.nodes[2].dependencies).toEqual(['fr', 'es']);
    expect(await rows('/v0/pipes/choose_node.ndjson?fr=1')).toEqual([{ id: 2 }]);
    expect(await rows('/v0/pipes/choose_node.ndjson')).toEqual([{ id: 1 }, { id: 3 }]);
  });

  it('reads the other pipe its parameters choose, with the call\'s parameters', async () => {
    await createPipe('ep_es', [{ name: 'n', sql: "%\nSELECT id FROM events WHERE country = 'ES' AND id >= {{Int32(min_id, 0)}}" }]);
    await createPipe('ep_all', [{ name: 'n', sql: 'SELECT id FROM events' }]);
    await createPipe('choose_pipe', [{ name: 'n', sql: '%\nSELECT count() AS c FROM {% if defined(es) %}ep_es{% else %}ep_all{% end %}' }]);
    expect(await rows('/v0/pipes/choose_pipe.ndjson?es=1&min_id=2')).toEqual([{ c: 1 }]);
    expect(await rows('/v0/pipes/choose_pipe.ndjson')).toEqual([{ c: 4 }]);
  });
});

describe('Float32 parameters', () => {
  it('match a Float32 column (0.1 written as a Float64 literal matched nothing)', async () => {
    await createPipe('by_f32', [{ name: 'n', sql: '%\nSELECT id FROM events WHERE f = {{Float32(f, 1.5)}} ORDER BY id' }]);
    expect(await rows('/v0/pipes/by_f32.ndjson?f=0.1')).toEqual([{ id: 1 }]);
    expect(await rows('/v0/pipes/by_f32.ndjson?f=0.3')).toEqual([{ id: 3 }]);
    expect(await rows('/v0/pipes/by_f32.ndjson')).toEqual([{ id: 4 }]);
  });

  it('a Float64 parameter is a Float64 in the result\'s meta', async () => {
    await createPipe('f64_meta', [{ name: 'n', sql: '%\nSELECT {{Float64(x, 1)}} AS x' }]);
    const r = await get('/v0/pipes/f64_meta.json?x=2');
    expect(r.body.meta).toEqual([{ name: 'x', type: 'Float64' }]);
    expect(r.body.data).toEqual([{ x: 2 }]);
  });
});

describe('pipe metadata', () => {
  it('GET /v0/pipes/<pipe> lists a parameter read by the {% set %} that binds its name', async () => {
    await createPipe('set_param', [{ name: 'n', sql: "%\n{% set limit = Int32(limit, 2, description='rows') %}SELECT id FROM events ORDER BY id LIMIT {{limit}}" }]);
    const r = await get('/v0/pipes/set_param');
    expect(r.body.nodes[0].params).toEqual([{ name: 'limit', type: 'Int32', default: 2, description: 'rows', required: false }]);
    expect(await rows('/v0/pipes/set_param.ndjson?limit=1')).toEqual([{ id: 1 }]);
  });
});

describe('a missing parameter used in an operation', () => {
  it('answers 400 naming the parameter, and the pipe can be saved', async () => {
    await createPipe('missing_op', [{ name: 'n', sql: "%\nSELECT id FROM events WHERE 1 {% if Int32(min_id) > 1 %}AND id > {{ Int32(min_id) }}{% end %} {% if defined(p) %}AND note LIKE {{ p + '%' }}{% end %} ORDER BY id" }]);
    expect(await rows('/v0/pipes/missing_op.ndjson?min_id=3')).toEqual([{ id: 4 }]);
    expect(await rows('/v0/pipes/missing_op.ndjson?min_id=0&p=tw')).toEqual([{ id: 2 }]);
    const r = await get('/v0/pipes/missing_op.json');
    expect(r).toMatchObject({ status: 400, body: { code: 'TEMPLATE_PARAMETER', parameter: 'min_id', expected: 'Int32' } });
  });
});

describe('pipe_stats_rt', () => {
  it('result_rows counts the rows of .csv and .ndjson calls (CSV fields with newlines and quotes included)', async () => {
    await createPipe('stats_rows', [{ name: 'n', sql: '%\nSELECT id, note FROM events ORDER BY id LIMIT {{Int32(l, 10)}}' }]);
    const csv = await get('/v0/pipes/stats_rows.csv?l=3');
    expect(csv.status).toBe(200);
    expect(csv.text.split('\n').length - 1).toBe(5); // header, three rows, one of them on two lines
    expect((await get('/v0/pipes/stats_rows.ndjson?l=2')).status).toBe(200);
    expect((await get('/v0/pipes/stats_rows.csv?l=0')).status).toBe(200);
    let got: Array<{ url: string; result_rows: number }> = [];
    for (let i = 0; i < 50 && got.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const q = encodeURIComponent("SELECT url, result_rows FROM tinybird.pipe_stats_rt WHERE pipe_name = 'stats_rows' ORDER BY start_datetime FORMAT JSONEachRow");
      got = (await get(`/v0/sql?q=${q}`)).text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    }
    expect(got.map((r) => [r.url.replace('/v0/pipes/stats_rows', ''), r.result_rows])).toEqual([['.csv?l=3', 3], ['.ndjson?l=2', 2], ['.csv?l=0', 0]]);
  });
});

describe('read_rows and read_bytes in pipe_stats_rt', () => {
  it('are what the query read when known (the .json trailer), and 0, not the result\'s size, when the engine does not say', async () => {
    // An aggregate: 1 result row from the 4 rows read. chdb's counters for a buffered result
    // count the result (1 row, 8 bytes), so for formats without a trailer they are not used.
    await createPipe('stats_read', [{ name: 'n', sql: "SELECT count() AS c FROM events WHERE country != 'XX'" }]);
    const json = await get('/v0/pipes/stats_read.json');
    expect(json.status).toBe(200);
    const { rows_read: rowsRead, bytes_read: bytesRead } = json.body.statistics;
    expect(json.body.rows).toBe(1);
    expect(rowsRead).toBe(4);
    expect(bytesRead).toBeGreaterThan(8);
    for (const ext of ['csv', 'ndjson', 'parquet']) expect((await get(`/v0/pipes/stats_read.${ext}`)).status).toBe(200);
    let got: Array<{ url: string; read_rows: number; read_bytes: number; result_rows: number }> = [];
    for (let i = 0; i < 50 && got.length < 4; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const q = encodeURIComponent("SELECT url, read_rows, read_bytes, result_rows FROM tinybird.pipe_stats_rt WHERE pipe_name = 'stats_read' ORDER BY start_datetime FORMAT JSONEachRow");
      got = (await get(`/v0/sql?q=${q}`)).text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    }
    expect(got.map((r) => [r.url.replace('/v0/pipes/stats_read', ''), Number(r.read_rows), Number(r.read_bytes)])).toEqual([
      ['.json', rowsRead, bytesRead],
      ['.csv', 0, 0],
      ['.ndjson', 0, 0],
      ['.parquet', 0, 0],
    ]);
    expect(got.slice(0, 3).map((r) => Number(r.result_rows))).toEqual([1, 1, 1]);
  });
});

describe('a float computed in a template', () => {
  it('is written as a float whatever its value: the column is a Float64 on every call (a whole result was a UInt8)', async () => {
    await createPipe('float_math', [{ name: 'n', sql: '%\nSELECT {{ Float64(a, 0.5) * Int32(n, 4) }} AS x, {{ 10 / 5 }} AS y, {{ 3.0 }} AS z, {{ 7 // 2 }} AS i' }]);
    for (const [q, x] of [['', 2], ['?a=1.25&n=2', 2.5], ['?a=-0.5&n=2', -1]] as const) {
      const r = await get(`/v0/pipes/float_math.json${q}`);
      expect(r.status, r.text).toBe(200);
      expect(r.body.meta, q).toEqual([{ name: 'x', type: 'Float64' }, { name: 'y', type: 'Float64' }, { name: 'z', type: 'Float64' }, { name: 'i', type: 'UInt8' }]);
      expect(r.body.data, q).toEqual([{ x, y: 2, z: 3, i: 3 }]);
    }
  });
});
