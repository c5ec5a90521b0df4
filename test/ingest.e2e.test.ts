/** Ingestion over HTTP against the real server and embedded engine. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import zlib from 'node:zlib';
import { call, startServer, type RunningServer, workspaceApi } from './helpers/server.js';

let srv: RunningServer;
let token: string;

const { sql, rows, post } = workspaceApi(() => srv, () => token);

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => { await srv?.stop(); });

describe('CSV quirks', () => {
  const schema = encodeURIComponent('id Int32, txt String');
  const cases: Array<[string, string, Array<[number, string]>]> = [
    ['quoted delimiters, quotes and newlines', 'id,txt\n1,"a,b"\n2,"say ""hi"""\n3,"multi\nline"\n', [[1, 'a,b'], [2, 'say "hi"'], [3, 'multi\nline']]],
    ['CRLF line ends', 'id,txt\r\n1,x\r\n2,y\r\n', [[1, 'x'], [2, 'y']]],
    ['lone CR line ends', 'id,txt\r1,x\r2,y\r', [[1, 'x'], [2, 'y']]],
    ['UTF-8 BOM', '\ufeffid,txt\n1,ü\n', [[1, 'ü']]],
    ['blank lines', 'id,txt\n\n1,x\n\n\n2,y\n\n', [[1, 'x'], [2, 'y']]],
    ['no header, no trailing newline', '1,x\n2,y', [[1, 'x'], [2, 'y']]],
    ['semicolon delimiter', 'id;txt\n1;x\n2;"y;z"\n', [[1, 'x'], [2, 'y;z']]],
  ];
  for (const [i, [title, body, expected]] of cases.entries()) {
    it(title, async () => {
      const name = `quirk_${i}`;
      expect((await post(`/v0/datasources?name=${name}&schema=${schema}`)).status).toBe(200);
      const r = await post(`/v0/datasources?name=${name}&mode=append`, body);
      expect(r.status, r.text).toBe(200);
      expect(r.body.rows).toBe(expected.length);
      expect(r.body.quarantine_rows).toBe(0);
      const got = await rows(`SELECT id, txt FROM ${name} ORDER BY id`);
      expect(got.map((g) => [g.id, g.txt])).toEqual(expected);
    });
  }

  it('a row split across request chunks at any byte arrives whole', async () => {
    const body = 'id,txt\n' + Array.from({ length: 300 }, (_, i) => `${i},"v ""${i}"", with\nnewline"`).join('\r\n') + '\r\n';
    expect((await post(`/v0/datasources?name=chunked&schema=${schema}`)).status).toBe(200);
    const bytes = Buffer.from(body);
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < bytes.length; i += 7) c.enqueue(bytes.subarray(i, i + 7));
        c.close();
      },
    });
    const r = await call(`${srv.url}/v0/datasources?name=chunked&mode=append`, { method: 'POST', token, body: stream, headers: { 'Content-Type': 'text/csv' }, duplex: 'half' } as RequestInit);
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows).toBe(300);
    const got = await rows('SELECT id, txt FROM chunked WHERE id = 123');
    expect(got).toEqual([{ id: 123, txt: 'v "123", with\nnewline' }]);
  });
});

describe('inference and validation', () => {
  it('infers a realistic mixed file', async () => {
    const body = 'user_id,email,score,signup,active,ratio,note\n' +
      '1,a@x.io,10,2024-01-02,true,0.5,\n' +
      '2,b@x.io,-3,2024-02-03,false,1.25,hello\n' +
      '300000,c@x.io,7,2024-03-04,true,2,"with, comma"\n';
    const r = await post('/v0/datasources?name=people', body);
    expect(r.status, r.text).toBe(200);
    const cols = Object.fromEntries(r.body.datasource.schema.columns.map((c: { name: string; type: string }) => [c.name, c.type]));
    expect(cols.user_id).toMatch(/^U?Int(32|64)$/);
    expect(cols.email).toBe('String');
    expect(cols.score).toMatch(/^Int(8|16|32|64)$/);
    expect(cols.signup).toBe('Date');
    expect(cols.active).toMatch(/^Bool/);
    expect(cols.ratio).toBe('Float64');
    expect(cols.note).toBe('Nullable(String)');
    expect(r.body.rows).toBe(3);
    expect((await rows('SELECT count() AS c FROM people'))[0].c).toBe(3);
  });

  it('append with bad rows: counts add up and the quarantine holds the originals with reasons', async () => {
    const schema = encodeURIComponent('id UInt8, day Date, amount Decimal(10,2), kind Enum8(\'a\' = 1, \'b\' = 2), tags Array(String), u Nullable(UUID)');
    expect((await post(`/v0/datasources?name=strict&schema=${schema}`)).status).toBe(200);
    const body = [
      '1,2024-01-01,1.50,a,"[\'x\',\'y\']",',
      '300,2024-01-01,1.50,a,[],', // UInt8 overflow
      '2,2024-13-01,1.50,b,[],', // bad date
      '3,2024-01-02,abc,a,[],', // bad decimal
      '4,2024-01-02,2.00,c,[],', // bad enum
      '5,2024-01-02,2.00,b,[],not-a-uuid',
      '6,2024-01-02,2.00,b,[],5f0e3f4e-8a0e-4c3b-9d7e-1b2a3c4d5e6f',
      '7,2024-01-02', // wrong column count
    ].join('\n') + '\n';
    const r = await post('/v0/datasources?name=strict&mode=append', body);
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows + r.body.quarantine_rows).toBe(8);
    expect(r.body.rows).toBe(2);
    expect(r.body.quarantine_rows).toBe(6);
    const q = await rows('SELECT c__line, c__error_column, c__error, c__raw, id, c__import_id FROM strict_quarantine ORDER BY c__line');
    expect(q.map((x) => x.c__line)).toEqual([2, 3, 4, 5, 6, 8]);
    expect(q[0].c__error_column).toEqual(['id']);
    expect(q[0].c__raw).toBe('300,2024-01-01,1.50,a,[],');
    expect(q[0].id).toBe('300');
    expect(q[1].c__error_column).toEqual(['day']);
    expect(q[2].c__error_column).toEqual(['amount']);
    expect(q[3].c__error_column).toEqual(['kind']);
    expect(q[4].c__error_column).toEqual(['u']);
    expect(q[5].c__error_column).toEqual([]);
    expect(q[5].c__error).toEqual(['wrong column count: 2 fields, expected 6']);
    for (const x of q) expect(x.c__error[0].length).toBeGreaterThan(0);
    expect(new Set(q.map((x) => x.c__import_id))).toEqual(new Set([r.body.import_id]));
    const stored = await rows('SELECT id, tags FROM strict ORDER BY id');
    expect(stored).toEqual([{ id: 1, tags: ['x', 'y'] }, { id: 6, tags: [] }]);
    const info = await call(`${srv.url}/v0/datasources/strict`, { token });
    expect(info.body).toMatchObject({ statistics: { row_count: 2 }, quarantine_rows: 6 });
  });
});

describe('every row rejected', () => {
  it('an append whose rows are all bad stores none, quarantines all, and answers 200', async () => {
    expect((await post('/v0/datasources?name=allbad&schema=a+Int32,b+Date')).status).toBe(200);
    const r = await post('/v0/datasources?name=allbad&mode=append', 'x,2024-01-01\n1,notadate\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 0, quarantine_rows: 2 });
    expect((await rows('SELECT count() AS c FROM allbad_quarantine'))[0].c).toBe(2);
  });
});

describe('bad input gets a clear 4xx and changes nothing', () => {
  it('unknown data source, unsupported mode and format, schema syntax, empty body', async () => {
    expect(await post('/v0/datasources?name=nope&mode=append', '1\n')).toMatchObject({ status: 404, body: { code: 'UNKNOWN_DATASOURCE' } });
    expect(await post('/v0/datasources?name=x&mode=upsert', '1\n')).toMatchObject({ status: 400, body: { code: 'UNSUPPORTED_MODE' } });
    expect(await post('/v0/datasources?name=x&format=xml', '1\n')).toMatchObject({ status: 400, body: { code: 'UNSUPPORTED_FORMAT' } });
    expect(await post(`/v0/datasources?name=x&schema=${encodeURIComponent('a Int32, b Strin')}`)).toMatchObject({ status: 400, body: { code: 'SCHEMA_SYNTAX' } });
    expect(await post('/v0/datasources?name=x', '')).toMatchObject({ status: 400 });
    expect(await post('/v0/datasources?name=bad-name&schema=a+Int32')).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect((await call(`${srv.url}/v0/datasources/x`, { token })).status).toBe(404);
  });

  it('a header that does not match the schema is refused and nothing is stored', async () => {
    expect((await post('/v0/datasources?name=hdr&schema=a+Int32,b+String')).status).toBe(200);
    const r = await post('/v0/datasources?name=hdr&mode=append', 'a,c\n1,x\n', {});
    expect(r).toMatchObject({ status: 400, body: { code: 'HEADER_MISMATCH' } });
    expect(r.body.error).toMatch(/expected \[a, b\]/);
    expect(r.body.error).toMatch(/send header=false if the first row is data/);
    expect((await rows('SELECT count() AS c FROM hdr'))[0].c).toBe(0);
    // A first row of data with a placeholder over numbers (`unknown`) is data, quarantined for its
    // value; header=false says so too. A first row of text over numbers that is no placeholder is
    // taken for a header: header=false stores it as the row it is.
    expect((await post('/v0/datasources?name=hdr_data&schema=name+String,age+Int32')).status).toBe(200);
    const placeholder = await post('/v0/datasources?name=hdr_data&mode=append', 'bob,unknown\nalice,30\ncarol,41\n', {});
    expect(placeholder.body, placeholder.text).toMatchObject({ rows: 2, quarantine_rows: 1 });
    const guessed = await post('/v0/datasources?name=hdr_data&mode=append', 'bob,eleven\nalice,30\ncarol,41\n', {});
    expect(guessed).toMatchObject({ status: 400, body: { code: 'HEADER_MISMATCH' } });
    const asData = await post('/v0/datasources?name=hdr_data&mode=append&header=false', 'bob,eleven\nalice,30\ncarol,41\n', {});
    expect(asData.body, asData.text).toMatchObject({ rows: 2, quarantine_rows: 1 });
  });

  it('a header naming the columns in another order is taken by name (as Tinybird appends do)', async () => {
    expect((await post(`/v0/datasources?name=hdr2&schema=${encodeURIComponent('id Int32, name String, v Float64')}`)).status).toBe(200);
    const r = await post('/v0/datasources?name=hdr2&mode=append', 'name,v,id\nana,1.5,1\nbob,x,2\n"c, d",3,3\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ successful_rows: 2, quarantined_rows: 1 });
    expect(await rows('SELECT id, name, v FROM hdr2 ORDER BY id')).toEqual([{ id: 1, name: 'ana', v: 1.5 }, { id: 3, name: 'c, d', v: 3 }]);
    // The quarantined row's values under their columns, the failing column by name, the raw text as sent.
    expect(await rows('SELECT id, name, v, c__error_column, c__raw FROM hdr2_quarantine')).toEqual([{ id: '2', name: 'bob', v: 'x', c__error_column: ['v'], c__raw: 'bob,x,2' }]);
    // Names as written before they became identifiers (the schema inferred from such a file), in another order.
    const created = await post('/v0/datasources?name=hdr3', 'User Id,Full Name\n1,ana\n');
    expect(created.status, created.text).toBe(200);
    expect((await post('/v0/datasources?name=hdr3&mode=append', 'Full Name,User Id\nbob,2\n')).status).toBe(200);
    expect(await rows('SELECT User_Id, Full_Name FROM hdr3 ORDER BY User_Id')).toEqual([{ User_Id: 1, Full_Name: 'ana' }, { User_Id: 2, Full_Name: 'bob' }]);
    // Names in another case are the columns too: with every column a String such a header was
    // valid data, stored as a row.
    expect((await post(`/v0/datasources?name=hdr_case&schema=${encodeURIComponent('a String, b String')}`)).status).toBe(200);
    const upper = await post('/v0/datasources?name=hdr_case&mode=append', 'B,A\nx,y\n');
    expect(upper.body, upper.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT a, b FROM hdr_case')).toEqual([{ a: 'y', b: 'x' }]);
    const typed = await post('/v0/datasources?name=hdr2&mode=append', 'ID,Name,V\n4,dee,4.5\n');
    expect(typed.body, typed.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT id, name, v FROM hdr2 WHERE id = 4')).toEqual([{ id: 4, name: 'dee', v: 4.5 }]);
    // Every column once, or it is still a mismatch (nothing stored).
    const missing = await post('/v0/datasources?name=hdr2&mode=append', 'name,v\nzed,1\n');
    expect(missing).toMatchObject({ status: 400, body: { code: 'HEADER_MISMATCH' } });
    expect((await rows('SELECT count() AS c FROM hdr2'))[0].c).toBe(3);
  });

  it('invalid UTF-8 and an oversized row are refused and nothing is stored', async () => {
    expect((await post('/v0/datasources?name=utf&schema=a+Int32,b+String')).status).toBe(200);
    const bad = Buffer.concat([Buffer.from('1,ok\n2,'), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]);
    const r = await post('/v0/datasources?name=utf&mode=append', bad);
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('INVALID_UTF8');
    expect((await rows('SELECT count() AS c FROM utf'))[0].c).toBe(0);
  });

  it('a failed create leaves no data source behind', async () => {
    const r = await post('/v0/datasources?name=ghost', Buffer.from([0xff, 0xfe, 0x0a]));
    expect(r.status).toBe(400);
    expect((await call(`${srv.url}/v0/datasources/ghost`, { token })).status).toBe(404);
    const list = await call(`${srv.url}/v0/datasources`, { token });
    expect(list.body.datasources.map((d: { name: string }) => d.name)).not.toContain('ghost');
  });

  it('a token without the append scope is refused', async () => {
    expect((await post('/v0/datasources?name=guarded&schema=a+Int32')).status).toBe(200);
    const r = await call(`${srv.url}/v0/datasources?name=guarded&mode=append`, { method: 'POST', token: 'p.rst_unknown', body: '1\n' });
    expect(r.status).toBe(401);
  });
});

describe('replace is atomic', () => {
  it('readers see the old rows or the new, never a mix, and a failed replace keeps the old', async () => {
    expect((await post('/v0/datasources?name=swap&schema=gen+UInt32,n+UInt32')).status).toBe(200);
    const gen = (g: number, n: number) => Array.from({ length: n }, (_, i) => `${g},${i}`).join('\n') + '\n';
    expect((await post('/v0/datasources?name=swap&mode=append', gen(1, 20000))).body.rows).toBe(20000);
    let stop = false;
    const seen = new Set<string>();
    const reader = (async () => {
      while (!stop) {
        const r = await rows('SELECT gen, count() AS c FROM swap GROUP BY gen ORDER BY gen');
        seen.add(JSON.stringify(r));
      }
    })();
    for (let g = 2; g <= 4; g++) {
      const r = await post('/v0/datasources?name=swap&mode=replace', gen(g, 20000));
      expect(r.status, r.text).toBe(200);
    }
    stop = true;
    await reader;
    for (const s of seen) {
      const groups = JSON.parse(s);
      expect(groups).toHaveLength(1);
      expect(groups[0].c).toBe(20000);
    }
    // A replace that fails part-way (invalid UTF-8 after good rows) leaves generation 4 intact.
    const bad = Buffer.concat([Buffer.from(gen(5, 1000)), Buffer.from([0x35, 0x2c, 0xff, 0x0a])]);
    expect((await post('/v0/datasources?name=swap&mode=replace', bad)).status).toBe(400);
    expect(await rows('SELECT gen, count() AS c FROM swap GROUP BY gen')).toEqual([{ gen: 4, c: 20000 }]);
  });
});

describe('NDJSON', () => {
  it('maps nested JSON paths, applies defaults to missing fields, quarantines bad lines', async () => {
    const schema = encodeURIComponent("`ts` DateTime `json:$.meta.ts`, `user` String `json:$.user.name`, `n` Int32 `json:$.n`, `tag` String `json:$.tags[0]` DEFAULT 'none', `opt` Nullable(Int64) `json:$.opt`");
    expect((await post(`/v0/datasources?name=ev&format=ndjson&schema=${schema}`)).status).toBe(200);
    const body = [
      '{"meta":{"ts":"2024-05-01 10:00:00"},"user":{"name":"ann"},"n":1,"tags":["a","b"],"opt":5}',
      '{"meta":{"ts":"2024-05-01 10:00:01"},"user":{"name":"bo"},"n":2}',
      'this is not json',
      '{"meta":{"ts":"2024-05-01 10:00:02"},"user":{"name":"cy"},"n":"three"}',
    ].join('\n') + '\n';
    const r = await post('/v0/datasources?name=ev&mode=append&format=ndjson', body, { 'Content-Type': 'application/x-ndjson' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows).toBe(2);
    expect(r.body.quarantine_rows).toBe(2);
    expect(await rows('SELECT user, n, tag, opt FROM ev ORDER BY n')).toEqual([
      { user: 'ann', n: 1, tag: 'a', opt: 5 },
      { user: 'bo', n: 2, tag: 'none', opt: null },
    ]);
    const q = await rows('SELECT c__line, c__error_column, c__raw FROM ev_quarantine ORDER BY c__line');
    expect(q.map((x) => x.c__line)).toEqual([3, 4]);
    expect(q[0].c__raw).toBe('this is not json');
    expect(q[1].c__error_column).toEqual(['n']);
  });

  it('keeps big integers and long decimals exact (no trip through a double)', async () => {
    const schema = encodeURIComponent('`u` UInt64 `json:$.u`, `i` Int64 `json:$.i`, `d` Decimal(38, 10) `json:$.d`, `s` String `json:$.s`, `a` Array(UInt64) `json:$.a`');
    expect((await post(`/v0/datasources?name=bigjson&format=ndjson&schema=${schema}`)).status).toBe(200);
    const body = [
      '{"u": 9007199254740993, "i": -9223372036854775808, "d": 12345678901234567.8901234567, "s": {"n": 12345678901234567890}, "a": [18446744073709551615, 1]}',
      '{"u": 18446744073709551615, "i": 9223372036854775807, "d": 0.1234567890123456789, "s": 1.5, "a": []}',
      '{"u": 18446744073709551616, "i": 1, "d": 1, "s": "x", "a": []}',
    ].join('\n') + '\n';
    const r = await post('/v0/datasources?name=bigjson&mode=append&format=ndjson', body, { 'Content-Type': 'application/x-ndjson' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows).toBe(2);
    expect(r.body.quarantine_rows).toBe(1); // beyond UInt64: refused, not rounded
    expect(await rows('SELECT toString(u) AS u, toString(i) AS i, toString(d) AS d, s, arrayMap(x -> toString(x), a) AS a FROM bigjson ORDER BY i')).toEqual([
      { u: '9007199254740993', i: '-9223372036854775808', d: '12345678901234567.8901234567', s: '{"n": 12345678901234567890}', a: ['18446744073709551615', '1'] },
      { u: '18446744073709551615', i: '9223372036854775807', d: '0.123456789', s: '1.5', a: [] },
    ]);
    const q = await rows('SELECT c__error_column, u FROM bigjson_quarantine');
    expect(q).toEqual([{ c__error_column: ['u'], u: '18446744073709551616' }]);
    // The same through /v0/events, and schema inference picks UInt64 for what Int64 cannot hold.
    const e = await post('/v0/events?name=bigjson&wait=true', '{"u": 9007199254740995, "i": 3, "d": 2, "s": "", "a": []}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(e.status, e.text).toBe(200);
    expect(await rows('SELECT toString(u) AS u FROM bigjson WHERE i = 3')).toEqual([{ u: '9007199254740995' }]);
    // Inferred from a body: integers past 64 bits are a String of their text, as in CSV (they were
    // Float64, their digits lost).
    const huge = await post('/v0/datasources?name=hugeints&format=ndjson', '{"a":18446744073709551616,"b":-9223372036854775809}\n{"a":1,"b":2}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(huge.status, huge.text).toBe(200);
    expect(huge.body.datasource.schema.columns.map((c: { type: string }) => c.type)).toEqual(['String', 'String']);
    expect(await rows('SELECT a, b FROM hugeints ORDER BY length(a) DESC')).toEqual([{ a: '18446744073709551616', b: '-9223372036854775809' }, { a: '1', b: '2' }]);
    // Without a Decimal column only lines with an integer beyond 2^53 take the exact parse.
    const ints = encodeURIComponent('`u` UInt64 `json:$.u`, `arr` Array(Int64) `json:$.arr`, `meta` String `json:$.meta`');
    expect((await post(`/v0/datasources?name=bigints&format=ndjson&schema=${ints}`)).status).toBe(200);
    const b = await post('/v0/datasources?name=bigints&mode=append&format=ndjson',
      '{"u": 1, "arr": [-9007199254740993], "meta": {"x": 1}}\n{"u": 12345678901234567, "arr": [], "meta": {"y": [9007199254740993]}}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(b.status, b.text).toBe(200);
    expect(await rows('SELECT toString(u) AS u, arrayMap(x -> toString(x), arr) AS arr, meta FROM bigints ORDER BY u')).toEqual([
      // (An object in a text column is its JSON text as sent, as ClickHouse stores it.)
      { u: '1', arr: ['-9007199254740993'], meta: '{"x": 1}' },
      { u: '12345678901234567', arr: [], meta: '{"y": [9007199254740993]}' },
    ]);
    const a = await post('/v0/analyze', '{"big": 18446744073709551615, "small": 9007199254740993}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(a.status, a.text).toBe(200);
    expect(a.body.analysis.columns.map((c: { name: string; recommended_type: string }) => [c.name, c.recommended_type])).toEqual([['big', 'UInt64'], ['small', 'Int64']]);
  });

  it('accepts gzip bodies', async () => {
    expect((await post(`/v0/datasources?name=gz&format=ndjson&schema=${encodeURIComponent('a Int32 `json:$.a`')}`)).status).toBe(200);
    const body = zlib.gzipSync(Array.from({ length: 1000 }, (_, i) => JSON.stringify({ a: i })).join('\n'));
    const r = await post('/v0/datasources?name=gz&mode=append&format=ndjson', body, { 'Content-Encoding': 'gzip' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows).toBe(1000);
    expect((await rows('SELECT sum(a) AS s FROM gz'))[0].s).toBe(499500);
    // A gzip stream cut short, sent whole: a 400 saying so (it was 499, as if the client had left), nothing stored.
    const cut = body.subarray(0, body.length - 20);
    for (const path of ['/v0/datasources?name=gz&mode=append&format=ndjson', '/v0/events?name=gz&wait=true', '/v0/events?name=gz']) {
      const t = await post(path, cut, { 'Content-Encoding': 'gzip' });
      expect(t.status, `${path}: ${t.text}`).toBe(400);
      expect(t.body.error).toContain('truncated');
    }
    expect((await rows('SELECT count() AS c FROM gz'))[0].c).toBe(1000);
  });
});

describe('multipart, analyze, delete, truncate, drop, ops log', () => {
  it('multipart upload with the csv field', async () => {
    const fd = new FormData();
    fd.set('csv', new Blob(['a,b\n1,x\n2,y\n']), 'data.csv');
    const r = await call(`${srv.url}/v0/datasources?name=multi`, { method: 'POST', token, body: fd });
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows).toBe(2);
  });

  it('/v0/analyze suggests a schema without storing', async () => {
    const r = await post('/v0/analyze', 'a,b,c\n1,2024-01-01,x\n2,2024-01-02,\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body.analysis.columns.map((c: { recommended_type: string }) => c.recommended_type)).toEqual([expect.stringMatching(/Int/), 'Date', 'Nullable(String)']);
    const j = await post('/v0/analyze', '{"x":1,"y":{"z":"s"}}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(j.body.analysis.schema).toContain('json:$.y.z');
    // Whole seconds are a DateTime (as the CSV inference says); fractions a DateTime64(3); a date
    // among date-times widens to the date-time.
    const t = await post('/v0/analyze', '{"s":"2024-01-02 03:04:05","f":"2024-01-02T03:04:05.123Z","m":"2024-01-02"}\n{"s":"2024-01-03 00:00:00","f":"2024-01-02 03:04:05","m":"2024-01-02 10:00:00"}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(t.status, t.text).toBe(200);
    expect(Object.fromEntries(t.body.analysis.columns.map((c: { name: string; recommended_type: string }) => [c.name, c.recommended_type]))).toEqual({ s: 'DateTime', f: 'DateTime64(3)', m: 'DateTime' });
    // The precision is the sample's (3, 6 or 9 digits, as in CSV): DateTime64(3) cut the very
    // sample's micro- and nanoseconds at create.
    const fine = '{"a":1,"us":"2024-01-01 00:00:00.123456","ns":"2024-01-01 00:00:00.123456789","ms":"2024-01-01 00:00:00.5"}\n{"a":2,"us":"2024-01-01 00:00:01","ns":"2024-01-01 00:00:00.5","ms":"2024-01-01 00:00:00.25"}\n';
    const fa = await post('/v0/analyze', fine, { 'Content-Type': 'application/x-ndjson' });
    expect(Object.fromEntries(fa.body.analysis.columns.map((c: { name: string; recommended_type: string }) => [c.name, c.recommended_type]))).toEqual({ a: 'Int64', us: 'DateTime64(6)', ns: 'DateTime64(9)', ms: 'DateTime64(3)' });
    const fc = await post('/v0/datasources?name=fine_times&format=ndjson', fine, { 'Content-Type': 'application/x-ndjson' });
    expect(fc.status, fc.text).toBe(200);
    expect(fc.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(await rows('SELECT toString(us) AS us, toString(ns) AS ns FROM fine_times ORDER BY a')).toEqual([
      { us: '2024-01-01 00:00:00.123456', ns: '2024-01-01 00:00:00.123456789' },
      { us: '2024-01-01 00:00:01.000000', ns: '2024-01-01 00:00:00.500000000' },
    ]);
    // Nine digits after 2262-04-11 do not fit a DateTime64(9): the column stays a String, the text kept.
    const late = await post('/v0/analyze', '{"t":"2270-01-01 00:00:00.123456789"}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(late.body.analysis.columns[0].recommended_type).toBe('String');
    // Keys of letters beyond ASCII keep them, and names are unique (`ñ` and `é` were both `_`,
    // `a.b` and `a_b` both `a_b`: a schema create refused, "duplicate column").
    const u = await post('/v0/analyze', '{"ñ":1,"é":2,"a.b":3,"a_b":4,"!!":5}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(u.body.analysis.columns.map((c: { name: string }) => c.name)).toEqual(['ñ', 'é', 'a_b', 'a_b_2', 'column_04']);
    const made = await post('/v0/datasources?name=unicode_keys&format=ndjson', '{"ñ":1,"é":2,"a.b":3,"a_b":4,"!!":5}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(made.status, made.text).toBe(200);
    expect(await rows('SELECT * FROM unicode_keys')).toEqual([{ 'ñ': 1, 'é': 2, a_b: 3, a_b_2: 4, column_04: 5 }]);
    // A key holding a backtick: its path is written with the backtick doubled, and the schema
    // Roost suggests and shows is one it takes back (it was a 400 at an offset of a schema the
    // user never wrote).
    const tick = '{"id":1,"we`ird":"q"}\n';
    const ta = await post('/v0/analyze', tick, { 'Content-Type': 'application/x-ndjson' });
    expect(ta.body.analysis.schema).toContain("`json:$['we``ird']`");
    const tc = await post('/v0/datasources?name=tick_key&format=ndjson', tick, { 'Content-Type': 'application/x-ndjson' });
    expect(tc.status, tc.text).toBe(200);
    expect(await rows('SELECT * FROM tick_key')).toEqual([{ id: 1, we_ird: 'q' }]);
    const shown = (await call(`${srv.url}/v0/datasources/tick_key`, { token })).body.schema.sql_schema as string;
    const again = await post(`/v0/datasources?name=tick_key2&format=ndjson&schema=${encodeURIComponent(shown)}`, tick, { 'Content-Type': 'application/x-ndjson' });
    expect(again.status, again.text).toBe(200);
    expect(await rows('SELECT * FROM tick_key2')).toEqual([{ id: 1, we_ird: 'q' }]);
  });

  it('delete rows by condition (with dry run), truncate, drop', async () => {
    expect((await post('/v0/datasources?name=del&schema=a+Int32,c+String')).status).toBe(200);
    await post('/v0/datasources?name=del&mode=append', '1,es\n2,fr\n3,es\n');
    const form = (f: Record<string, string>) => ({ method: 'POST', token, body: new URLSearchParams(f) });
    const dry = await call(`${srv.url}/v0/datasources/del/delete`, form({ delete_condition: "c = 'es'", dry_run: 'true' }));
    expect(dry.body).toMatchObject({ rows_affected: 2, dry_run: true });
    expect((await rows('SELECT count() AS n FROM del'))[0].n).toBe(3);
    const bad = await call(`${srv.url}/v0/datasources/del/delete`, form({ delete_condition: "a IN (SELECT a FROM system.numbers)" }));
    expect(bad.status).toBe(403);
    // A name that is not a column: a 400 in the data source's terms (it was 422 with the engine's
    // text of the statement built around the condition), for deletes and partial replaces.
    const nosuch = await call(`${srv.url}/v0/datasources/del/delete`, form({ delete_condition: 'nosuch = 1' }));
    expect(nosuch.status, nosuch.text).toBe(400);
    expect(nosuch.body).toMatchObject({ code: 'INVALID_PARAMETER', column: 'nosuch' });
    expect(nosuch.body.error).toBe('delete_condition names "nosuch", which is not a column of "del"; its columns: a, c');
    const rep = await post(`/v0/datasources?name=del&mode=replace&replace_condition=${encodeURIComponent('nosuch = 1')}`, '4,de\n');
    expect(rep.status, rep.text).toBe(400);
    expect(rep.body.error).toContain('replace_condition names "nosuch"');
    expect((await rows('SELECT count() AS n FROM del'))[0].n).toBe(3);
    // Syntax errors are said of the condition: offsets into it, no statement Roost built around it.
    for (const [cond, msg, offset] of [['c = 1; select 1', /delete_condition must be one SQL condition, without ';' \(at offset 5 of the condition\): remove the ';' and what follows it/, 5], ["c = 'es", /delete_condition: a string is not closed.*\(at offset 4 of the condition\)/, 4], ['a IN (1,', /delete_condition: .*\(at offset 8 of the condition\)/, 8]] as const) {
      const r = await call(`${srv.url}/v0/datasources/del/delete`, form({ delete_condition: cond }));
      expect(r.status, r.text).toBe(400);
      expect(r.body).toMatchObject({ code: 'SQL_SYNTAX', offset });
      expect(r.body.error).toMatch(msg);
    }
    const eng = await call(`${srv.url}/v0/datasources/del/delete`, form({ delete_condition: 'a = = 1' }));
    expect(eng.status, eng.text).toBe(400);
    expect(eng.body.error).toMatch(/^delete_condition is not one SQL expression: the engine's parser stopped at "= 1"; expected one of: /);
    expect(eng.body.error).not.toMatch(/SETTINGS|readonly|\n\)/);
    const engRep = await post(`/v0/datasources?name=del&mode=replace&replace_condition=${encodeURIComponent('a = = 1')}`, '4,de\n');
    expect(engRep.status, engRep.text).toBe(400);
    expect(engRep.body.error).toMatch(/^replace_condition is not one SQL expression: the engine's parser stopped at "= 1"/);
    expect(engRep.body.error).not.toMatch(/insert_deduplicate|SETTINGS/);
    expect((await rows('SELECT count() AS n FROM del'))[0].n).toBe(3);
    const done = await call(`${srv.url}/v0/datasources/del/delete`, form({ delete_condition: "c = 'es'" }));
    expect(done.body).toMatchObject({ rows_affected: 2, status: 'done' });
    // Done before the answer, and also a finished job for clients that poll one (Tinybird's do).
    expect(done.body.job_url).toBe(`/v0/jobs/${done.body.job_id}`);
    expect((await call(`${srv.url}${done.body.job_url}`, { token })).body).toMatchObject({ job_id: done.body.job_id, kind: 'delete_data', status: 'done', result: { rows_affected: 2 } });
    expect(await rows('SELECT a FROM del')).toEqual([{ a: 2 }]);
    expect((await call(`${srv.url}/v0/datasources/del/truncate`, { method: 'POST', token })).status).toBe(200);
    expect((await rows('SELECT count() AS n FROM del'))[0].n).toBe(0);
    expect((await call(`${srv.url}/v0/datasources/del`, { method: 'DELETE', token })).status).toBe(200);
    expect((await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT * FROM del')}`, { token })).body.code).toBe('SQL_INVALID');
  });

  it('every operation lands in tinybird.datasources_ops_log', async () => {
    await new Promise((r) => setTimeout(r, 1500));
    const ops = await rows("SELECT event_type, result, rows, rows_quarantine FROM tinybird.datasources_ops_log WHERE datasource_name = 'strict' ORDER BY timestamp");
    expect(ops).toEqual([
      { event_type: 'create', result: 'ok', rows: 0, rows_quarantine: 0 },
      { event_type: 'append', result: 'ok', rows: 2, rows_quarantine: 6 },
    ]);
    const m = await call(`${srv.url}/metrics`);
    expect(m.text).toMatch(/roost_quarantined_rows_total\{tenant="local",format="csv"\} [1-9]/);
  });
});

describe('/v0/events', () => {
  const schema = encodeURIComponent('`id` UInt32 `json:$.id`, `v` String `json:$.payload.v`');
  const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ id: from + i, payload: { v: `v${from + i}` } })).join('\n') + '\n';

  it('wait=true answers 200 once the rows are stored, with the counts', async () => {
    expect((await post(`/v0/datasources?name=evw&format=ndjson&schema=${schema}`)).status).toBe(200);
    const r = await post('/v0/events?name=evw&wait=true', lines(0, 500) + '{"id":"x"}\n', { 'Content-Type': 'application/x-ndjson' });
    expect(r).toMatchObject({ status: 200, body: { successful_rows: 500, quarantined_rows: 1 } });
    expect((await rows('SELECT count() AS c, uniqExact(v) AS u FROM evw'))[0]).toEqual({ c: 500, u: 500 });
  });

  it('format= naming anything but NDJSON is a 400 saying where CSV goes, nothing buffered; format=ndjson is taken', async () => {
    expect((await post(`/v0/datasources?name=evf&format=ndjson&schema=${schema}`)).status).toBe(200);
    for (const wait of ['', '&wait=true']) {
      const r = await post(`/v0/events?name=evf&format=csv${wait}`, '1,x\n');
      expect(r.status, r.text).toBe(400);
      expect(r.body.code).toBe('UNSUPPORTED_FORMAT');
      expect(r.body.error).toContain('/v0/datasources?name=evf&mode=append');
    }
    const ok = await post('/v0/events?name=evf&format=ndjson&wait=true', lines(0, 2), { 'Content-Type': 'application/x-ndjson' });
    expect(ok).toMatchObject({ status: 200, body: { successful_rows: 2 } });
    expect((await rows('SELECT count() AS c FROM evf'))[0].c).toBe(2);
    expect((await rows('SELECT count() AS c FROM tinybird.datasources_ops_log WHERE datasource_name = \'evf_quarantine\' OR (datasource_name = \'evf\' AND rows_quarantine > 0)'))[0].c).toBe(0);
  });

  it('without wait answers 202 after buffering, and the rows arrive', async () => {
    expect((await post(`/v0/datasources?name=evb&format=ndjson&schema=${schema}`)).status).toBe(200);
    const r = await post('/v0/events?name=evb', lines(0, 300), { 'Content-Type': 'application/x-ndjson' });
    expect(r).toMatchObject({ status: 202, body: { successful_rows: 300 } });
    const deadline = Date.now() + 10_000;
    let c = 0;
    while (Date.now() < deadline && c < 300) {
      c = (await rows('SELECT count() AS c FROM evb'))[0].c;
      if (c < 300) await new Promise((res) => setTimeout(res, 100));
    }
    expect(c).toBe(300);
  });

  it('events to an unknown data source or with an empty body are refused', async () => {
    expect(await post('/v0/events?name=nope', '{}\n')).toMatchObject({ status: 404, body: { code: 'UNKNOWN_DATASOURCE' } });
    expect(await post('/v0/events', '{}\n')).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(await post('/v0/events?name=evb', '')).toMatchObject({ status: 400, body: { code: 'EMPTY_BODY' } });
  });
});

describe('acknowledged events survive kill -9', () => {
  it('202-acknowledged events buffered before a crash are stored after restart', async () => {
    const s1 = await startServer();
    const tok = (await call(`${s1.url}/tokens`)).body.workspace_admin_token;
    const schema = encodeURIComponent('`id` UInt32 `json:$.id`');
    expect((await call(`${s1.url}/v0/datasources?name=crash&format=ndjson&schema=${schema}`, { method: 'POST', token: tok })).status).toBe(200);
    const body = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ id: i })).join('\n');
    const acks = await Promise.all(Array.from({ length: 5 }, () => call(`${s1.url}/v0/events?name=crash`, { method: 'POST', token: tok, body })));
    for (const a of acks) expect(a.status).toBe(202);
    s1.proc.kill('SIGKILL');
    await s1.exited;
    const s2 = await startServer({ dataDir: s1.dataDir });
    try {
      const q = `${s2.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS c FROM crash FORMAT JSONEachRow')}`;
      const deadline = Date.now() + 15_000;
      let c = 0;
      while (Date.now() < deadline && c < 5000) {
        c = JSON.parse((await call(q, { token: tok })).text).c;
        if (c < 5000) await new Promise((res) => setTimeout(res, 200));
      }
      // Every acknowledged event is there exactly once (segments are removed only after the insert).
      expect(c).toBe(5000);
    } finally {
      await s2.stop();
    }
  });
});

describe('an upload in progress does not hold up the tenant', () => {
  it('queries and a second upload are answered while a slow upload is still arriving', async () => {
    const schema = encodeURIComponent('id Int32, txt String');
    expect((await post(`/v0/datasources?name=slow_up&schema=${schema}`)).status).toBe(200);
    expect((await post(`/v0/datasources?name=quick_up&schema=${schema}`)).status).toBe(200);
    // The slow upload sends 8 MiB (enough for the cell to insert a first piece), then
    // pauses until this test lets it finish.
    const line = (i: number) => `${i},${'x'.repeat(40)}\n`;
    const first: string[] = [];
    let n = 0;
    for (let size = 0; size < 8 << 20; size += 44) first.push(line(n++));
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    const stream = new ReadableStream({
      async start(c) {
        c.enqueue(Buffer.from(first.join('')));
        await released;
        c.enqueue(Buffer.from(line(n++)));
        c.close();
      },
    });
    const slow = call(`${srv.url}/v0/datasources?name=slow_up&mode=append`, { method: 'POST', token, body: stream, headers: { 'Content-Type': 'text/csv' }, duplex: 'half' } as RequestInit);
    await new Promise((r) => setTimeout(r, 1_000));
    try {
      const t0 = Date.now();
      expect(await sql('SELECT 40 + 2 FORMAT CSV')).toBe('42\n');
      const q = await post('/v0/datasources?name=quick_up&mode=append', '1,a\n2,b\n');
      expect(q.status, q.text).toBe(200);
      expect(await sql('SELECT count() FROM quick_up FORMAT CSV')).toBe('2\n');
      // Answered while the slow upload still waits for the rest of its body.
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      release();
    }
    const r = await slow;
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows).toBe(n);
    expect(await sql('SELECT count() FROM slow_up FORMAT CSV')).toBe(`${n}\n`);
  }, 60_000);
});

describe('replace_condition (partial replace)', () => {
  const schema = encodeURIComponent('day Date, country String, v Int32, note Nullable(String)');
  const all = async (name: string) => (await rows(`SELECT toString(day) AS d, country, v, note FROM ${name} ORDER BY d, country`)).map((r) => `${r.d} ${r.country} ${r.v} ${r.note}`);

  it('replaces only the rows that match; the counts say which body rows were stored, quarantined or outside', async () => {
    expect((await post(`/v0/datasources?name=partial&schema=${schema}`)).status).toBe(200);
    const first = '2026-11-01,ES,1,\n2026-11-02,ES,2,\n2026-11-02,FR,3,x\n2026-11-03,ES,4,\n';
    expect((await post('/v0/datasources?name=partial&mode=append', first)).status).toBe(200);
    const cond = encodeURIComponent("day = '2026-11-02'");
    const body = '2026-11-02,DE,20,\n2026-11-02,IT,not a number,\n2026-11-03,PT,30,\n';
    const r = await post(`/v0/datasources?name=partial&mode=replace&replace_condition=${cond}`, body);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 1, quarantine_rows: 1, rows_outside_condition: 1 });
    expect(await all('partial')).toEqual([
      '2026-11-01 ES 1 null',
      '2026-11-02 DE 20 null',
      '2026-11-03 ES 4 null',
    ]);
    expect(await sql("SELECT count() FROM partial_quarantine FORMAT CSV")).toBe('1\n');
  });

  it('rows where the condition is NULL are kept, not lost', async () => {
    expect((await post(`/v0/datasources?name=partial_null&schema=${schema}`)).status).toBe(200);
    expect((await post('/v0/datasources?name=partial_null&mode=append', '2026-11-01,ES,1,\n2026-11-01,FR,2,x\n')).status).toBe(200);
    const r = await post(`/v0/datasources?name=partial_null&mode=replace&replace_condition=${encodeURIComponent("note = 'x'")}`, '2026-11-05,FR,9,x\n');
    expect(r.status, r.text).toBe(200);
    expect(await all('partial_null')).toEqual(['2026-11-01 ES 1 null', '2026-11-05 FR 9 x']);
  });

  it('a body with no valid row inside the condition is refused (422 NO_VALID_ROWS): the rows the condition names stay, nothing is quarantined', async () => {
    expect((await post(`/v0/datasources?name=partial_none&schema=${schema}`)).status).toBe(200);
    expect((await post('/v0/datasources?name=partial_none&mode=append', '2026-11-01,ES,1,\n2026-11-02,ES,2,\n2026-11-02,FR,3,x\n')).status).toBe(200);
    const cond = encodeURIComponent("day = '2026-11-02'");
    // Every valid row outside the condition (a typo in it, or the wrong file); then the same with an invalid row beside.
    for (const body of ['2026-11-05,DE,20,\n', '2026-11-05,DE,20,\n2026-11-02,IT,not a number,\n']) {
      const r = await post(`/v0/datasources?name=partial_none&mode=replace&replace_condition=${cond}`, body);
      expect(r.status, r.text).toBe(422);
      expect(r.body.code).toBe('NO_VALID_ROWS');
      expect(r.body.error).toContain('inside the replace condition');
      expect(await all('partial_none')).toEqual(['2026-11-01 ES 1 null', '2026-11-02 ES 2 null', '2026-11-02 FR 3 x']);
    }
    // The data source's info counts no quarantined row.
    const info = await call(`${srv.url}/v0/datasources/partial_none`, { token });
    expect(info.body.quarantine_rows ?? 0).toBe(0);
  });

  it('refuses a condition with append, an empty one, one that reads another table, and bad SQL; nothing changes', async () => {
    expect((await post(`/v0/datasources?name=partial_bad&schema=${schema}`)).status).toBe(200);
    expect((await post('/v0/datasources?name=partial_bad&mode=append', '2026-11-01,ES,1,\n')).status).toBe(200);
    const tries: Array<[string, number, string]> = [
      [`mode=append&replace_condition=${encodeURIComponent("country = 'ES'")}`, 400, 'INVALID_PARAMETER'],
      ['mode=replace&replace_condition=%20', 400, 'INVALID_PARAMETER'],
      [`mode=replace&replace_condition=${encodeURIComponent('v IN (SELECT number FROM system.numbers)')}`, 403, ''],
      [`mode=replace&replace_condition=${encodeURIComponent("country = 'ES' AND (")}`, 400, ''],
    ];
    for (const [q, status, code] of tries) {
      const r = await post(`/v0/datasources?name=partial_bad&${q}`, '2026-11-09,PT,5,\n');
      expect(r.status, `${q}: ${r.text}`).toBe(status);
      if (code) expect(r.body.code).toBe(code);
      expect(typeof r.body.error).toBe('string');
    }
    expect(await all('partial_bad')).toEqual(['2026-11-01 ES 1 null']);
  });
});
