/**
 * NDJSON paths and inference as ClickHouse reads JSON, over real HTTP (found by the twentieth
 * session's black-box round): a path reaching a JavaScript built-in (`$.constructor`,
 * `$.tags.length`), a column without a path (the key of its name, as written), whole-number floats
 * and mixed big integers in inference, arrays of booleans.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 120_000);
afterAll(async () => { await srv?.stop(); });

const enc = encodeURIComponent;
const post = (p: string, body?: string) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers: { 'Content-Type': 'application/x-ndjson' } });
const create = async (name: string, schema: string) => {
  const r = await post(`/v0/datasources?name=${name}&format=ndjson&mode=create&schema=${enc(schema)}`);
  expect(r.status, r.text).toBe(200);
};
const rows = async (q: string) => {
  const r = await call(`${srv.url}/v0/sql?q=${enc(`${q} FORMAT JSONEachRow`)}`, { token });
  expect(r.status, r.text).toBe(200);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
};

describe('JSON paths read own keys and array elements only', () => {
  it('a key named like a JavaScript member is a key: present, absent, in every route', async () => {
    await create('f1', '`driver` String `json:$.driver`, `constructor` Nullable(String) `json:$.constructor`, `ts` String `json:$.toString`, `proto` Nullable(String) `json:$.__proto__`');
    const body = '{"driver":"a","constructor":"x","toString":"t","__proto__":"p"}\n{"driver":"b"}\n';
    expect((await post('/v0/events?name=f1&wait=true', body)).body).toEqual({ successful_rows: 2, quarantined_rows: 0 });
    expect((await post('/v0/datasources?name=f1&mode=append&format=ndjson', body)).body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(await rows('SELECT driver, constructor, ts, proto FROM f1 ORDER BY driver')).toEqual([
      { driver: 'a', constructor: 'x', ts: 't', proto: 'p' }, { driver: 'a', constructor: 'x', ts: 't', proto: 'p' },
      { driver: 'b', constructor: null, ts: '', proto: null }, { driver: 'b', constructor: null, ts: '', proto: null },
    ]);
  });

  it('buffered events (202) with such a path are stored, not retried for ever', async () => {
    await create('jb1', '`id` UInt32 `json:$.id`, `c` String `json:$.hasOwnProperty`');
    expect((await post('/v0/events?name=jb1', '{"id":1}\n')).status).toBe(202);
    expect((await post('/v0/events?name=jb1', '{"id":2,"hasOwnProperty":"ok"}\n')).status).toBe(202);
    let got: any[] = [];
    for (let i = 0; i < 100 && got.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      got = await rows('SELECT id, c FROM jb1 ORDER BY id');
    }
    expect(got).toEqual([{ id: 1, c: '' }, { id: 2, c: 'ok' }]);
  });

  it('an array\'s members and an object\'s number-like keys are not path steps', async () => {
    await create('am2', '`id` UInt32 `json:$.id`, `n` Int32 `json:$.video.length`, `h` String `json:$.o[1].b`, `m` Nullable(String) `json:$.tags.map`');
    const r = await post('/v0/events?name=am2&wait=true', '{"id":2,"video":[1,2,3],"o":{"1":{"b":"objkey"}},"tags":["x"]}\n{"id":3,"o":[{"b":"no"},{"b":"yes"}]}\n');
    expect(r.body).toEqual({ successful_rows: 2, quarantined_rows: 0 });
    expect(await rows('SELECT id, n, h, m FROM am2 ORDER BY id')).toEqual([{ id: 2, n: 0, h: '', m: null }, { id: 3, n: 0, h: 'yes', m: null }]);
  });

  it('a column without a path takes the key of its name as written (JSONEachRow), not a path of it', async () => {
    await create('np1', '`id` UInt32, `my col` String, `a.b` String');
    const r = await post('/v0/events?name=np1&wait=true', '{"id":1,"my col":"v","a.b":"flat","a":{"b":"nested"}}\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ successful_rows: 1, quarantined_rows: 0 });
    expect(await rows('SELECT id, `my col` AS c, `a.b` AS ab FROM np1')).toEqual([{ id: 1, c: 'v', ab: 'flat' }]);
  });
});

describe('objects and arrays in a text column', () => {
  it('are stored as their JSON text as sent, as ClickHouse stores them (key order, repeated keys, spaces, escapes)', async () => {
    await create('ob', '`id` UInt32 `json:$.id`, `x` String `json:$.x`, `y` Nullable(String) `json:$.o.y`');
    const lines = [
      '{"id":1,"x":{"b":1,"10":2,"a":3}}',
      '{"id":2,"x":{"d":1,"d":2}}',
      '{"id":3,"x":{"x": 1}, "o": {"y": [ {"k" : null} ], "y": {"last": true}}}',
      '{"id":4,"x":[ 1 , 2 ]}',
      '{"id":5,"x":{"e":"\\u00e9","s":"a\\/b"}}',
    ];
    for (const route of ['/v0/events?name=ob&wait=true', '/v0/datasources?name=ob&mode=append&format=ndjson']) {
      const r = await post(route, lines.join('\n') + '\n');
      expect(r.status, r.text).toBe(200);
    }
    const got = await rows('SELECT id, x, y FROM ob ORDER BY id');
    const want = [
      { id: 1, x: '{"b":1,"10":2,"a":3}', y: null },
      { id: 2, x: '{"d":1,"d":2}', y: null },
      { id: 3, x: '{"x": 1}', y: '{"last": true}' },
      { id: 4, x: '[ 1 , 2 ]', y: null },
      { id: 5, x: '{"e":"\\u00e9","s":"a\\/b"}', y: null },
    ];
    expect(got).toEqual(want.flatMap((w) => [w, w]));
  });
});

describe('NDJSON inference as ClickHouse infers', () => {
  const typesOf = async (name: string, body: string) => {
    const r = await post(`/v0/datasources?name=${name}&format=ndjson&mode=create`, body);
    expect(r.status, r.text).toBe(200);
    const d = await call(`${srv.url}/v0/datasources/${name}`, { token });
    return { answer: r.body, types: Object.fromEntries(d.body.schema.columns.map((c: any) => [c.name, c.type])) };
  };
  it('whole-number floats are Float64; negatives beside integers past Int64 are text, stored exactly', async () => {
    const { answer, types } = await typesOf('inf5', '{"p":10.0,"q":1e2,"o":-1}\n{"p":10.5,"q":3,"o":18446744073709551615}\n');
    expect(types).toMatchObject({ p: 'Float64', q: 'Float64', o: 'String' });
    expect(answer).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(await rows('SELECT p, q, o FROM inf5 ORDER BY p')).toEqual([{ p: 10, q: 100, o: '-1' }, { p: 10.5, q: 3, o: '18446744073709551615' }]);
  });
  it('arrays of booleans are Array(Bool), and the sample\'s own rows are stored', async () => {
    const { answer, types } = await typesOf('inf10', '{"flags":[true,false],"nb":[true,null]}\n');
    expect(types).toMatchObject({ flags: 'Array(Bool)', nb: 'Array(Nullable(Bool))' });
    expect(answer).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT flags, nb FROM inf10')).toEqual([{ flags: [true, false], nb: [true, null] }]);
  });
});

describe('schema types and encodings', () => {
  it('DateTime64 without a precision is DateTime64(3), as ClickHouse reads it', async () => {
    await create('dt64', '`t` DateTime64 `json:$.t`');
    expect((await post('/v0/events?name=dt64&wait=true', '{"t":"2024-01-02 03:04:05.678"}\n')).body).toEqual({ successful_rows: 1, quarantined_rows: 0 });
    const d = await call(`${srv.url}/v0/datasources/dt64`, { token });
    expect(d.body.schema.columns[0].type).toBe('DateTime64(3)');
    expect(await rows('SELECT toString(t) AS t FROM dt64')).toEqual([{ t: '2024-01-02 03:04:05.678' }]);
  });

  it('LowCardinality of a number is a 400 saying what to write, not the engine\'s 422', async () => {
    const r = await post(`/v0/datasources?name=lcn&format=ndjson&mode=create&schema=${enc('`x` LowCardinality(UInt32) `json:$.x`')}`);
    expect(r.status, r.text).toBe(400);
    expect(r.body).toMatchObject({ code: 'SCHEMA_SYNTAX' });
    expect(r.body.error).toMatch(/LowCardinality\(UInt32\) is refused by the engine: LowCardinality is for strings/);
    expect((await call(`${srv.url}/v0/datasources/lcn`, { token })).status).toBe(404);
  });

  it('Content-Encoding: x-gzip is gzip', async () => {
    const { gzipSync } = await import('node:zlib');
    await create('xg', '`id` UInt32 `json:$.id`');
    const r = await call(`${srv.url}/v0/events?name=xg&wait=true`, { method: 'POST', token, body: gzipSync('{"id":1}\n{"id":2}\n'), headers: { 'Content-Encoding': 'x-gzip' } });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ successful_rows: 2, quarantined_rows: 0 });
  });
});
