/**
 * Values stored as sent (or as ClickHouse reads the same text), found by a black-box differential
 * test against the engine's own CSV and JSON input:
 * - a value starting with an apostrophe made `'` the sniffed quote: rows up to the next apostrophe
 *   became one value (a row lost, nothing quarantined);
 * - a note holding `;` made `;` the delimiter of a two-column file, whose rows were then refused;
 * - enum labels lost their escapes (`'a\tb'` became `atb`);
 * - NDJSON Float32 values of many digits were rounded twice (through a double);
 * - NDJSON inference suggested Date for a 1960 date and Array(String) for an array holding null,
 *   and the suggested schema quarantined rows of the file it came from.
 */
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token = '';
const post = (p: string, body: string, type = 'text/csv') => call(`${srv.url}${p}`, { method: 'POST', token, body, headers: { 'Content-Type': type } });
const create = async (name: string, schema: string) => {
  const r = await call(`${srv.url}/v0/datasources?name=${name}&mode=create&schema=${encodeURIComponent(schema)}`, { method: 'POST', token });
  expect(r.status, r.text).toBe(200);
  return r;
};
/** A create from `csv` (its schema inferred) makes `schema` and stores `rows`, quarantining `quarantined`. */
const createFrom = async (name: string, csv: string, schema: string, rows: number, quarantined = 0) => {
  const c = await post(`/v0/datasources?name=${name}&mode=create`, csv);
  expect(c.status, c.text).toBe(200);
  expect(c.body).toMatchObject({ rows, quarantine_rows: quarantined });
  expect(c.body.datasource.schema.sql_schema).toBe(schema);
  return c;
};
/** `/v0/analyze` of `csv` suggests `schema`; a create from the same file makes it and stores its `stored` rows, none quarantined. */
const analyzeAndCreate = async (name: string, csv: string, schema: string, stored: number) => {
  const an = await post('/v0/analyze', csv);
  expect(an.status, an.text).toBe(200);
  expect(an.body.analysis.schema).toBe(schema);
  await createFrom(name, csv, schema, stored);
};
const rows = async (q: string) => {
  const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`, { token });
  expect(r.status, r.text).toBe(200);
  return r.body.data;
};

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('CSV dialect sniffing keeps values as sent', () => {
  it('a value that starts with an apostrophe is a value: every row stored, the apostrophe kept', async () => {
    await create('apos', 'id UInt32, v String');
    const r = await post('/v0/datasources?name=apos&mode=append', "1,'t Hooft\n2,'s-Hertogenbosch\n3,ok\n");
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 3, quarantine_rows: 0 });
    expect(await rows('SELECT id, v FROM apos ORDER BY id')).toEqual([{ id: 1, v: "'t Hooft" }, { id: 2, v: "'s-Hertogenbosch" }, { id: 3, v: 'ok' }]);
  });

  it('a note holding ; or | does not change the delimiter of a file with the schema\'s column count', async () => {
    await create('notes', 'name String, note String');
    const a = await post('/v0/datasources?name=notes&mode=append', 'alice,a;b;c\nbob,d;e;f\ncarol,g;h;i\n');
    expect(a.status, a.text).toBe(200);
    expect(a.body).toMatchObject({ rows: 3, quarantine_rows: 0 });
    await create('piped', 'id UInt32, note String');
    const b = await post('/v0/datasources?name=piped&mode=append', '1,a|b|c\n2,d|e|f\n');
    expect(b.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(await rows('SELECT name, note FROM notes ORDER BY name')).toEqual([{ name: 'alice', note: 'a;b;c' }, { name: 'bob', note: 'd;e;f' }, { name: 'carol', note: 'g;h;i' }]);
    expect(await rows('SELECT id, note FROM piped ORDER BY id')).toEqual([{ id: 1, note: 'a|b|c' }, { id: 2, note: 'd|e|f' }]);
  });

  it('past the sample the quote was sniffed from, a value opening with an apostrophe does not join rows: quarantined, or read with dialect_quotechar', async () => {
    await create('late', 'id Int32, name String');
    // 6,000 plainly single-quoted rows (past the sniffer's 64 KiB), then one value starting with an apostrophe.
    const body = Array.from({ length: 6000 }, (_, i) => `${i},'v${i}'`).join('\n') + "\n6001,'t Hooft\n6002,'a'\n6003,'b'\n";
    const r = await post('/v0/datasources?name=late&mode=append', body);
    expect(r.status, r.text).toBe(200);
    // Every line stored or quarantined: the joined lines are one quarantined row, its raw text whole.
    expect(r.body.rows + r.body.quarantine_rows, r.text).toBe(6002);
    const q = await rows("SELECT c__raw AS raw, c__error AS err FROM late_quarantine");
    expect(q).toEqual([{ raw: "6001,'t Hooft\n6002,'a'", err: [expect.stringMatching(/spans lines/)] }]);
    expect(await rows("SELECT count() AS n FROM late WHERE position(name, '\n') > 0")).toEqual([{ n: 0 }]);
    // Told the quote, the same file is read as it is meant.
    await create('late2', 'id Int32, name String');
    const told = await post(`/v0/datasources?name=late2&mode=append&dialect_quotechar=${encodeURIComponent('"')}`, "1,'t Hooft\n2,'a'\n");
    expect(told.body, told.text).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(await rows('SELECT name FROM late2 ORDER BY id')).toEqual([{ name: "'t Hooft" }, { name: "'a'" }]);
  });

  it("a '-quoted file with a value spanning lines in the sample stays '-quoted: that row quarantined, the others without their quotes", async () => {
    await create('apos_multi', 'id Int32, name String');
    const r = await post('/v0/datasources?name=apos_multi&mode=append', "1,'multi\nline'\n2,'x'\n3,'y'\n");
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 2, quarantine_rows: 1 });
    expect(await rows('SELECT id, name FROM apos_multi ORDER BY id')).toEqual([{ id: 2, name: 'x' }, { id: 3, name: 'y' }]);
    expect(await rows('SELECT c__raw AS raw FROM apos_multi_quarantine')).toEqual([{ raw: "1,'multi\nline'" }]);
  });

  it('/v0/analyze says which quote character it found', async () => {
    const r = await post('/v0/analyze', "id,v\n1,'t Hooft\n2,x\n");
    expect(r.status, r.text).toBe(200);
    expect(r.body.dialect).toMatchObject({ delimiter: ',', quotechar: '"' });
    const single = await post('/v0/analyze', "id,v\n1,'a, b'\n2,'it''s'\n");
    expect(single.body.dialect).toMatchObject({ delimiter: ',', quotechar: "'" });
  });
});

describe('enum labels keep their escapes', () => {
  it("'a\\tb' is a tab between a and b, in the schema shown and in what is stored", async () => {
    const r = await create('en', "id UInt32, v Enum8('a\\tb' = 1, 'q' = 2)");
    expect(JSON.stringify(r.body)).toContain('a\\\\x09b');
    const up = await post('/v0/datasources?name=en&mode=append', '1,1\n2,"a\tb"\n3,atb\n');
    expect(up.body).toMatchObject({ rows: 2, quarantine_rows: 1 });
    expect(await rows('SELECT id, v FROM en ORDER BY id')).toEqual([{ id: 1, v: 'a\tb' }, { id: 2, v: 'a\tb' }]);
  });
});

describe('enum labels that look like numbers', () => {
  it("' 1' is neither label '1' nor the value 1 of label '2' (CSV, NDJSON, arrays): quarantined, the rest stored as written", async () => {
    await create('ennum', "id UInt32, v Enum8('1' = 2, '2' = 1)");
    const up = await post('/v0/datasources?name=ennum&mode=append', '1,1\n2, 1\n3,1 \n4," 1"\n5,2\n6, 2\n');
    expect(up.body).toMatchObject({ rows: 2, quarantine_rows: 4 });
    expect(await rows('SELECT id, v, CAST(v AS Int8) AS n FROM ennum ORDER BY id')).toEqual([{ id: 1, v: '1', n: 2 }, { id: 5, v: '2', n: 1 }]);
    const ev = await post('/v0/events?name=ennum&wait=true', '{"id":7,"v":" 1"}\n{"id":8,"v":"1"}\n', 'application/x-ndjson');
    expect(ev.body).toMatchObject({ successful_rows: 1, quarantined_rows: 1 });
    expect(await rows('SELECT id, v FROM ennum WHERE id > 6')).toEqual([{ id: 8, v: '1' }]);
    await create('ennuma', "id UInt32, v Array(Enum8('1' = 2, '2' = 1))");
    const arr = await post('/v0/datasources?name=ennuma&mode=append', `1,"['1']"\n2,"[' 1']"\n`);
    expect(arr.body).toMatchObject({ rows: 1, quarantine_rows: 1 });
    expect(await rows('SELECT id, v FROM ennuma')).toEqual([{ id: 1, v: ['1'] }]);
    // A JSON number is the value, as ClickHouse reads JSON: 2 is label '1', 1 is label '2'; 3 has no label.
    const num = await post('/v0/events?name=ennum&wait=true', '{"id":20,"v":2}\n{"id":21,"v":1}\n{"id":22,"v":3}\n', 'application/x-ndjson');
    expect(num.body).toMatchObject({ successful_rows: 2, quarantined_rows: 1 });
    expect(await rows('SELECT id, v FROM ennum WHERE id >= 20 ORDER BY id')).toEqual([{ id: 20, v: '1' }, { id: 21, v: '2' }]);
    const arrn = await post('/v0/events?name=ennuma&wait=true', '{"id":30,"v":[2,1]}\n', 'application/x-ndjson');
    expect(arrn.body).toMatchObject({ successful_rows: 1 });
    expect(await rows('SELECT v FROM ennuma WHERE id = 30')).toEqual([{ v: ['1', '2'] }]);
  });
});

describe('CSV inference takes the file, not only its sample', () => {
  it('a growing id past the sample\'s range is stored, not quarantined (integers are Int64)', async () => {
    const lines = ['id,score'];
    for (let i = 0; i < 40_000; i++) lines.push(`${i},${i % 7}`);
    const r = await post('/v0/datasources?name=growing&mode=create&format=csv', lines.join('\n') + '\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 40_000, quarantine_rows: 0 });
    expect(await rows('SELECT max(id) AS m, toTypeName(id) AS t FROM growing')).toEqual([{ m: 39_999, t: 'Int64' }]);
  });
});

describe('the quarantine table\'s own column names', () => {
  it('a schema naming insertion_date is a 400 saying so, and nothing is created', async () => {
    const a = await call(`${srv.url}/v0/datasources?name=clash1&mode=create&schema=${encodeURIComponent('id Int32, insertion_date DateTime')}`, { method: 'POST', token });
    expect(a.status, a.text).toBe(400);
    expect(a.body).toMatchObject({ code: 'SCHEMA_SYNTAX' });
    expect(a.body.error).toMatch(/column name "insertion_date" is reserved: clash1_quarantine/);
    expect((await call(`${srv.url}/v0/datasources/clash1`, { token })).status).toBe(404);
  });

  it('a header naming them is inferred as insertion_date_2, c__raw_2 (as NDJSON keys are): analyze suggests it, a create from the file and a create from the suggestion both take the file', async () => {
    const csv = 'id,insertion_date,c__raw\n1,2026-01-01 10:00:00,x\n2,2026-01-02 11:00:00,y\n';
    const schema = '`id` Int64, `insertion_date_2` DateTime, `c__raw_2` String';
    await analyzeAndCreate('clash2', csv, schema, 2);
    await create('clash3', schema);
    const c = await post('/v0/datasources?name=clash3&mode=append', csv);
    expect(c.body, c.text).toMatchObject({ rows: 2, quarantine_rows: 0 });
    for (const n of ['clash2', 'clash3']) {
      expect(await rows(`SELECT id, toString(insertion_date_2) AS d, c__raw_2 FROM ${n} ORDER BY id`)).toEqual([
        { id: 1, d: '2026-01-01 10:00:00', c__raw_2: 'x' }, { id: 2, d: '2026-01-02 11:00:00', c__raw_2: 'y' },
      ]);
    }
  });
});

describe('a header with a repeated name (a join\'s export)', () => {
  it('over typed columns it is the header, the repeat named _2 (over text only it stays a row: native/test/csv_infer_test.cc)', async () => {
    const r = await post('/v0/datasources?name=dupcols&mode=create', 'id,name,id\n1,x,3\n4,y,6\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(r.body.datasource.schema.columns.map((c: { name: string; type: string }) => `${c.name} ${c.type}`)).toEqual(['id Int64', 'name String', 'id_2 Int64']);
    // Appended again with the same header: the header is skipped, not a row.
    const a = await post('/v0/datasources?name=dupcols&mode=append', 'id,name,id\n7,z,9\n');
    expect(a.body, a.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT id, name, id_2 FROM dupcols ORDER BY id')).toEqual([{ id: 1, name: 'x', id_2: 3 }, { id: 4, name: 'y', id_2: 6 }, { id: 7, name: 'z', id_2: 9 }]);
  });
});

describe('a pandas file (an unnamed index column)', () => {
  it('its header is a header, not a row: inferred names and types, every data row stored; appended to a schema, skipped', async () => {
    const csv = ',user_id,score\n0,123,4.5\n1,124,3.5\n';
    const r = await post('/v0/datasources?name=pandas&mode=create&format=csv', csv);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(r.body.datasource.schema.columns.map((c: { name: string; type: string }) => `${c.name} ${c.type}`)).toEqual(['column_00 Int64', 'user_id Int64', 'score Float64']);
    await create('pandas2', 'idx Int32, user_id Int32, score Float64');
    const a = await post('/v0/datasources?name=pandas2&mode=append', csv);
    expect(a.body, a.text).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(await rows('SELECT idx, user_id, score FROM pandas2 ORDER BY idx')).toEqual([{ idx: 0, user_id: 123, score: 4.5 }, { idx: 1, user_id: 124, score: 3.5 }]);
  });
});

describe('the quarantine names every failing column of a row', () => {
  it('CSV and NDJSON: each failing column with its reason, in the schema\'s order; good rows stored', async () => {
    await create('multi', 'a Int32, b Date, c UUID, d String');
    const up = await post('/v0/datasources?name=multi&mode=append', '1,2024-01-02,61f0c404-5cb3-11e7-907b-a6006ad3dba0,ok\nx,y,z,w\n2,nope,61f0c404-5cb3-11e7-907b-a6006ad3dba0,v\n');
    expect(up.body).toMatchObject({ rows: 1, quarantine_rows: 2 });
    const q = await rows('SELECT c__error_column AS cols, c__error AS why, c__line AS line FROM multi_quarantine ORDER BY c__line');
    expect(q).toEqual([
      { cols: ['a', 'b', 'c'], why: ['not an integer', expect.stringMatching(/date/), expect.stringMatching(/UUID/)], line: 2 },
      { cols: ['b'], why: [expect.stringMatching(/date/)], line: 3 },
    ]);
    const ev = await post('/v0/events?name=multi&wait=true', '{"a":"x","b":"y","c":"61f0c404-5cb3-11e7-907b-a6006ad3dba0","d":"n"}\n', 'application/x-ndjson');
    expect(ev.body).toMatchObject({ successful_rows: 0, quarantined_rows: 1 });
    const e = await rows("SELECT c__error_column AS cols FROM multi_quarantine WHERE d = 'n'");
    expect(e).toEqual([{ cols: ['a', 'b'] }]);
  });
});

describe('a header that names some of the columns', () => {
  it('the others take their DEFAULT or NULL, in any order; a left-out column with neither is a 400 naming the header', async () => {
    await create('subset', "id Int32, name String, country String DEFAULT 'xx', score Nullable(Float64)");
    const up = await post('/v0/datasources?name=subset&mode=append', 'name,id\nann,1\nbob,2\nbad,x\n');
    expect(up.body, up.text).toMatchObject({ rows: 2, quarantine_rows: 1 });
    expect(await rows('SELECT id, name, country, score FROM subset ORDER BY id')).toEqual([
      { id: 1, name: 'ann', country: 'xx', score: null }, { id: 2, name: 'bob', country: 'xx', score: null },
    ]);
    const q = await rows('SELECT id, name, country, c__error_column AS cols FROM subset_quarantine');
    expect(q).toEqual([{ id: 'x', name: 'bad', country: null, cols: ['id'] }]);
    // A row of the schema's field count under a header naming fewer columns: refused (wrong count), not stored by position.
    const wide = await post('/v0/datasources?name=subset&mode=append', 'name,id\ncarl,9,x,1.5\n');
    expect(wide.body, wide.text).toMatchObject({ rows: 0, quarantine_rows: 1 });
    const missing = await post('/v0/datasources?name=subset&mode=append', 'id,country\n3,es\n');
    expect(missing.status, missing.text).toBe(400);
    expect(missing.body.code).toBe('HEADER_MISMATCH');
    expect(await rows('SELECT count() AS n FROM subset')).toEqual([{ n: 2 }]);
  });
});

describe('headers that only look alike, and first rows that only look like headers', () => {
  it('names that read alike are not swapped by another order; an all-empty first row, placeholders and a repeated cell are data', async () => {
    const made = await post('/v0/datasources?name=alike&mode=create&format=csv', 'region,Revenue %,Revenue #\nnorth,25,100\n');
    expect(made.body.datasource.schema.columns.map((c: { name: string }) => c.name)).toEqual(['region', 'Revenue', 'Revenue_2']);
    // The create kept the header as written: later files are matched by each cell's text.
    const swapped = await post('/v0/datasources?name=alike&mode=append', 'Revenue #,region,Revenue %\n200,south,50\n');
    expect(swapped.body, swapped.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    const traded = await post('/v0/datasources?name=alike&mode=append', 'region,Revenue #,Revenue %\n300,west,60\n'.replace('300,west,60', 'west,300,60'));
    expect(traded.body, traded.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    const same = await post('/v0/datasources?name=alike&mode=append', 'region,Revenue %,Revenue #\neast,70,400\n');
    expect(same.body).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT region, Revenue, Revenue_2 FROM alike ORDER BY region')).toEqual([
      { region: 'east', Revenue: 70, Revenue_2: 400 }, { region: 'north', Revenue: 25, Revenue_2: 100 },
      { region: 'south', Revenue: 50, Revenue_2: 200 }, { region: 'west', Revenue: 60, Revenue_2: 300 },
    ]);
    // A schema given (no header kept): cells that read alike are not guessed.
    await create('alike2', 'region String, Revenue Int32, Revenue_2 Int32');
    const guessed = await post('/v0/datasources?name=alike2&mode=append', 'region,Revenue #,Revenue %\nwest,300,60\n');
    expect(guessed.status, guessed.text).toBe(400);
    const blank = await post('/v0/datasources?name=blankrow&mode=create&format=csv', ',,\n1,x,2020-01-01\n3,y,2020-01-02\n');
    expect(blank.body).toMatchObject({ rows: 3, quarantine_rows: 0 });
    const again = await post('/v0/datasources?name=blankrow&mode=append', ',,\n5,z,2020-01-05\n');
    expect(again.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    for (const [name, csv] of [['ph1', 'alice,null,null\nbob,3,2020-01-02\ncarol,4,2020-01-03\n'], ['ph2', 'alice,,TBD\nbob,3,2020-01-02\ncarol,4,2020-01-03\n']] as const) {
      const r = await post(`/v0/datasources?name=${name}&mode=create&format=csv`, csv);
      expect(r.status, r.text).toBe(200);
      expect(r.body.rows + r.body.quarantine_rows, name).toBe(3);
    }
    // header= decides for the inference too.
    const nohdr = await post('/v0/datasources?name=nohdr&mode=create&format=csv&header=false', 'alice,paris\nbob,rome\n');
    expect(nohdr.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(nohdr.body.datasource.schema.columns.map((c: { name: string }) => c.name)).toEqual(['column_00', 'column_01']);
    const hdr = await post('/v0/datasources?name=yeshdr&mode=create&format=csv&header=true', '2019,2020\n1,2\n');
    expect(hdr.body, hdr.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(hdr.body.datasource.schema.columns.map((c: { name: string }) => c.name)).toEqual(['c_2019', 'c_2020']);
    const an = await post('/v0/analyze?header=false', 'alice,paris\nbob,rome\n');
    expect(an.body.dialect.has_header).toBe(false);
    // Repeated header text (a join's export) is taken in order; data rows with a trailing
    // delimiter only, and a blank line before the header, are read as before.
    const dup = await post('/v0/datasources?name=dupnames&mode=create&format=csv&header=true', 'id,name,name\n1,x,y\n');
    expect(dup.body, dup.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    const dup2 = await post('/v0/datasources?name=dupnames&mode=append', 'id,name,name\n2,u,v\n');
    expect(dup2.body, dup2.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT id, name, name_2 FROM dupnames ORDER BY id')).toEqual([{ id: 1, name: 'x', name_2: 'y' }, { id: 2, name: 'u', name_2: 'v' }]);
    const trailRows = await post('/v0/datasources?name=trailrows&mode=create&format=csv', 'a,b\n1,2,\n3,4,\n');
    expect(trailRows.body, trailRows.text).toMatchObject({ rows: 2, quarantine_rows: 0 });
    const blankFirst = await post('/v0/datasources?name=blankfirst&mode=create&format=csv', '\na,b\n1,2\n');
    expect(blankFirst.body, blankFirst.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    // A title line above the header says so; Excel's trailing delimiter keeps the header a header.
    const title = await post('/v0/datasources?name=titled&mode=create&format=csv', 'Sales report 2024\nregion,amount\nnorth,10\nsouth,20\n');
    expect(title.status, title.text).toBe(400);
    expect(title.body.error).toMatch(/line 1 has 1 field and the lines after it 2: is it a title above the header/);
    const trail = await post('/v0/datasources?name=trailing&mode=create&format=csv', 'a,b,\n1,2,\n3,4,\n');
    expect(trail.body, trail.text).toMatchObject({ rows: 2, quarantine_rows: 0 });
    // (Its empty last header cell over a column every row leaves empty is no column.)
    expect(trail.body.datasource.schema.columns.map((c: { name: string }) => c.name)).toEqual(['a', 'b']);
    // A pandas header alone is a header, not a row.
    const only = await post('/v0/datasources?name=pandasonly&mode=create&format=csv', ',user_id,score\n');
    expect(only.status, only.text).toBe(400);
    expect(only.body.code).toBe('EMPTY_BODY');
  });
});

describe('a UTF-16 file', () => {
  it('is refused with a 400 that says to convert it, with or without its byte-order mark, CSV or NDJSON, gzipped or not; nothing stored', async () => {
    await create('u16', 'name String, city String');
    const text = 'alice,paris\nbob,rome\n';
    const le = Buffer.from(text, 'utf16le');
    const send = (body: Buffer, path = '/v0/datasources?name=u16&mode=append', type = 'text/csv') =>
      call(`${srv.url}${path}`, { method: 'POST', token, body, headers: { 'Content-Type': type } });
    for (const body of [le, Buffer.concat([Buffer.from([0xff, 0xfe]), le]), zlib.gzipSync(le)]) {
      const r = await send(body);
      expect(r.status, r.text).toBe(400);
      expect(r.body.code).toBe('INVALID_UTF8');
      expect(r.body.error).toMatch(/UTF-16 .*convert the file/);
      expect(r.text).not.toContain('\\u0000');
    }
    const ev = await send(Buffer.from('{"name":"carol","city":"oslo"}\n', 'utf16le'), '/v0/events?name=u16', 'application/x-ndjson');
    expect(ev.status, ev.text).toBe(400);
    const inferred = await send(le, '/v0/datasources?name=u16b&mode=create&format=csv');
    expect(inferred.status, inferred.text).toBe(400);
    expect(await rows('SELECT count() AS n FROM u16')).toEqual([{ n: 0 }]);
    // Cyrillic in UTF-16 without its mark (valid UTF-8, bytes 0x04 between the letters) too.
    const ru = await send(Buffer.from('Пушкин,Москва\n'.repeat(20), 'utf16le'));
    expect(ru.status, ru.text).toBe(400);
    expect(ru.body.error).toMatch(/UTF-16/);
    // A UTF-8 file whose values are padded with NULs (a FixedString export) is read, not refused.
    const padded = await send(Buffer.from(('ann,"ab' + '\0'.repeat(30) + '"\n').repeat(10)));
    expect(padded.status, padded.text).toBe(200);
    expect(padded.body).toMatchObject({ rows: 10 });
    // Hive's ^A delimiter, named by the request, is the file's own control byte.
    await create('hive', 'a Int32, b Int32, c Int32');
    const hive = await call(`${srv.url}/v0/datasources?name=hive&mode=append&dialect_delimiter=%01`, { method: 'POST', token, body: Buffer.from(Array.from({ length: 200 }, (_, i) => `${i % 10}\x01${(i + 1) % 10}\x01${(i + 2) % 10}\n`).join('')), headers: { 'Content-Type': 'text/csv' } });
    expect(hive.body, hive.text).toMatchObject({ rows: 200, quarantine_rows: 0 });
    // Plain UTF-8 with a BOM is still read.
    const ok = await send(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]));
    expect(ok.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
  });
});

describe('NDJSON values and inference', () => {
  it("an Enum column without DEFAULT: a missing key is the lowest value's label, null the label of 0 (as ClickHouse's JSONEachRow reads them); null without a label of 0 is quarantined", async () => {
    await create('enum_gaps', "k Int32 `json:$.k`, e Enum8('b' = 2, 'none' = 0, 'neg' = -3) `json:$.e`, f Enum8('x' = 1, 'y' = 2) `json:$.f`");
    const r = await post('/v0/events?name=enum_gaps&wait=true', '{"k":1,"f":"x"}\n{"k":2,"e":null,"f":"y"}\n{"k":3,"e":"b","f":null}\n{"k":4,"e":"b"}\n', 'application/x-ndjson');
    expect(r.body, r.text).toEqual({ successful_rows: 3, quarantined_rows: 1 });
    expect(await rows('SELECT k, e, f FROM enum_gaps ORDER BY k')).toEqual([
      { k: 1, e: 'neg', f: 'x' }, { k: 2, e: 'none', f: 'y' }, { k: 4, e: 'b', f: 'x' },
    ]);
  });

  it('a Float32 of many digits is the Float32 nearest its text (not rounded through a double first)', async () => {
    await create('f32', 'id UInt32 `json:$.id`, v Float32 `json:$.v`');
    const r = await post('/v0/datasources?name=f32&mode=append&format=ndjson', '{"id":1,"v":1.0000000596046447753906249}\n{"id":2,"v":1.000000059604644775390625}\n', 'application/x-ndjson');
    expect(r.body, r.text).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(await rows('SELECT id, toString(v) AS v FROM f32 ORDER BY id')).toEqual([{ id: 1, v: '1' }, { id: 2, v: '1' }]);
  });

  it('the schema suggested for a file takes every row of it: dates before 1970, arrays holding null', async () => {
    const body = '{"d":"2020-01-01","b":["x"],"t":"2020-01-01 10:00:00","u":"2000-01-01 00:00:00"}\n{"d":"1960-01-01","b":["y",null],"t":"1960-01-01 10:00:00","u":"2299-12-31T23:59:59-05:00"}\n';
    const r = await call(`${srv.url}/v0/datasources?name=inf&mode=create&format=ndjson`, { method: 'POST', token, body, headers: { 'Content-Type': 'application/x-ndjson' } });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(await rows('SELECT toString(d) AS d, b, toString(t) AS t FROM inf ORDER BY d')).toEqual([
      { d: '1960-01-01', b: ['y', null], t: '1960-01-01 10:00:00.000' },
      { d: '2020-01-01', b: ['x'], t: '2020-01-01 10:00:00.000' },
    ]);
  });
});

describe('values ClickHouse\'s text input takes', () => {
  it("a quoted empty cell is the Enum's label '' where it has one (Nullable or not, in batches of rows and alone); unquoted it is an empty cell", async () => {
    await create('enum_blank', "k UInt32, e Enum8('' = 0, 'a' = 1), n Nullable(Enum8('' = 1, 'b' = 2)), x Enum8('a' = 1)");
    // 200 rows (the validator's column batches) and then rows refused one by one.
    const many = Array.from({ length: 200 }, (_, i) => `${i},${i % 2 ? '""' : 'a'},${i % 3 ? '""' : ''},a`);
    const csv = [...many, '1000,"","",""', '1001,,b,a', '1002,a,"b",a'].join('\n') + '\n';
    const r = await post('/v0/datasources?name=enum_blank&mode=append', csv);
    expect(r.body, r.text).toMatchObject({ rows: 201, quarantine_rows: 2 });
    expect(await rows("SELECT countIf(e = '') AS e0, countIf(n = '') AS n0, countIf(n IS NULL) AS nn FROM enum_blank WHERE k < 200")).toEqual([{ e0: 100, n0: 133, nn: 67 }]);
    expect(await rows('SELECT k, e, n FROM enum_blank WHERE k >= 200 ORDER BY k')).toEqual([{ k: 1002, e: 'a', n: 'b' }]);
    const q = await rows('SELECT c__line, c__error_column, c__error FROM enum_blank_quarantine ORDER BY c__line');
    expect(q).toEqual([
      { c__line: 201, c__error_column: ['x'], c__error: ['empty value in a non-Nullable column'] },
      { c__line: 202, c__error_column: ['e'], c__error: ['empty value in a non-Nullable column'] },
    ]);
  });

  it('Bool as yes/no, y/n, t/f, on/off, enable/disable; DateTime as Unix seconds or with a space before the offset: stored as the engine reads them', async () => {
    await create('chtext', 'k String, b Bool, d DateTime, d3 DateTime64(3)');
    const csv = [
      'a,yes,1773309600,1773309600.123', 'b,N,2026-03-12 10:00:00 +0200,2026-03-12 10:00:00.5 -01:00', 'c,on,123456789,123456789',
      'd,Disable,2026-03-12T10:00:00Z,2026-03-12 10:00:00', 'e,maybe,12345,x',
    ].join('\n') + '\n';
    const r = await post('/v0/datasources?name=chtext&mode=append', csv);
    expect(r.body, r.text).toMatchObject({ rows: 4, quarantine_rows: 1 });
    expect(await rows('SELECT k, b, toString(d) AS d, toString(d3) AS d3 FROM chtext ORDER BY k')).toEqual([
      { k: 'a', b: true, d: '2026-03-12 10:00:00', d3: '2026-03-12 10:00:00.123' },
      { k: 'b', b: false, d: '2026-03-12 08:00:00', d3: '2026-03-12 11:00:00.500' },
      { k: 'c', b: true, d: '1973-11-29 21:33:09', d3: '1973-11-29 21:33:09.000' },
      { k: 'd', b: false, d: '2026-03-12 10:00:00', d3: '2026-03-12 10:00:00.000' },
    ]);
    const q = await rows('SELECT k, c__error_column AS cols FROM chtext_quarantine');
    expect(q).toEqual([{ k: 'e', cols: ['b', 'd', 'd3'] }]);
  });
});

describe('a body in another text encoding, declared by its charset', () => {
  it('Latin-1 / windows-1252 and UTF-16 are decoded into UTF-8 (raw, gzipped, multipart); an unknown charset or bytes invalid in it are a 400 storing nothing', async () => {
    await create('latin', 'id Int32, name String');
    const latin1 = Buffer.from('1,Jos\xe9\n2,Se\xf1or \x80\n', 'latin1');
    const a = await post('/v0/datasources?name=latin&mode=append', latin1 as unknown as string, 'text/csv; charset=ISO-8859-1');
    expect(a.body, a.text).toMatchObject({ rows: 2, quarantine_rows: 0 });
    const gz = await post('/v0/datasources?name=latin&mode=append', zlib.gzipSync(Buffer.from('3,Zoë\n', 'latin1')) as unknown as string, 'text/csv; charset="windows-1252"');
    expect(gz.body, gz.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    const f = new FormData();
    f.append('csv', new Blob([Buffer.from('4,Gr\xf6\xdfe\n', 'latin1')], { type: 'text/csv; charset=latin1' }), 'rows.csv');
    const m = await call(`${srv.url}/v0/datasources?name=latin&mode=append`, { method: 'POST', token, body: f });
    expect(m.body, m.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    const u16 = await post('/v0/datasources?name=latin&mode=append', Buffer.from('5,Ünïcode\n', 'utf16le') as unknown as string, 'text/csv; charset=utf-16le');
    expect(u16.body, u16.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    // UTF-8 declared as ASCII is read as UTF-8, not as windows-1252 (the WHATWG reading of the label).
    const ascii = await post('/v0/datasources?name=latin&mode=append', '6,Łódź\n', 'text/csv; charset=us-ascii');
    expect(ascii.body, ascii.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    // A UTF-8 byte-order mark wins over a declared single-byte charset (as browsers decode).
    const bomU8 = await post('/v0/datasources?name=latin&mode=append', Buffer.from('\ufeffid,name\n7,Año\n') as unknown as string, 'text/csv; charset=windows-1252');
    expect(bomU8.body, bomU8.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT name FROM latin WHERE id = 7')).toEqual([{ name: 'Año' }]);
    expect(await rows('SELECT id, name FROM latin WHERE id < 7 ORDER BY id')).toEqual([
      { id: 1, name: 'José' }, { id: 2, name: 'Señor €' }, { id: 3, name: 'Zoë' }, { id: 4, name: 'Größe' }, { id: 5, name: 'Ünïcode' }, { id: 6, name: 'Łódź' },
    ]);
    const unknown = await post('/v0/datasources?name=latin&mode=append', '7,x\n', 'text/csv; charset=klingon');
    expect(unknown.status, unknown.text).toBe(400);
    expect(unknown.body.error).toMatch(/charset=klingon, which this server does not know/);
    const bad = await post('/v0/datasources?name=latin&mode=append', Buffer.from([0x37, 0x00, 0x2c]) as unknown as string, 'text/csv; charset=utf-16le');
    expect(bad.status, bad.text).toBe(400);
    expect(bad.body).toMatchObject({ code: 'INVALID_UTF8' });
    expect(bad.body.error).toMatch(/not valid utf-16le text/);
    expect(await rows('SELECT count() AS n FROM latin')).toEqual([{ n: 7 }]);
  });
  it('/v0/events decodes it too, with and without wait (it refused the body as invalid UTF-8); an unknown charset is a 400', async () => {
    await create('latin_events', 'name String `json:$.name`');
    const latin1 = Buffer.from('{"name":"Jos\u00e9"}\n', 'latin1');
    for (const wait of ['true', 'false']) {
      const r = await post(`/v0/events?name=latin_events&wait=${wait}`, latin1 as unknown as string, 'application/x-ndjson; charset=iso-8859-1');
      expect(r.body, r.text).toEqual({ successful_rows: 1, quarantined_rows: 0 });
    }
    // Gzipped windows-1252 (ñ is 0xF1, € 0x80 there): decoded after the gunzip.
    const cp1252 = Buffer.concat([Buffer.from('{"name":"Se'), Buffer.from([0xf1]), Buffer.from('or '), Buffer.from([0x80]), Buffer.from('"}\n')]);
    const gz = await post('/v0/events?name=latin_events&wait=true', zlib.gzipSync(cp1252) as unknown as string, 'application/x-ndjson; charset=windows-1252');
    expect(gz.body, gz.text).toEqual({ successful_rows: 1, quarantined_rows: 0 });
    const unknown = await post('/v0/events?name=latin_events&wait=true', '{"name":"x"}\n', 'application/x-ndjson; charset=klingon');
    expect(unknown.status, unknown.text).toBe(400);
    expect(unknown.body.error).toMatch(/charset=klingon, which this server does not know/);
    // The 202's rows reach the table with the next flush.
    for (let i = 0; i < 50 && (await rows('SELECT count() AS n FROM latin_events'))[0].n < 3; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await rows('SELECT name FROM latin_events ORDER BY name')).toEqual([{ name: 'José' }, { name: 'José' }, { name: 'Señor €' }]);
  });
});

describe('Excel\'s sep= first line', () => {
  it('names the delimiter and is no row: analyze, create from the file and append take the header after it', async () => {
    const csv = '\ufeffsep=;\r\nid;name\r\n1;Ana\r\n2;Bo\r\n';
    const an = await post('/v0/analyze', csv);
    expect(an.status, an.text).toBe(200);
    expect(an.body.analysis.schema).toBe('`id` Int64, `name` String');
    expect(an.body.dialect).toMatchObject({ delimiter: ';', has_header: true });
    const c = await post('/v0/datasources?name=excelsep&mode=create', csv);
    expect(c.status, c.text).toBe(200);
    expect(c.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    const a = await post('/v0/datasources?name=excelsep&mode=append', 'sep=;\n3;Cy\n');
    expect(a.body, a.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT id, name FROM excelsep ORDER BY id')).toEqual([{ id: 1, name: 'Ana' }, { id: 2, name: 'Bo' }, { id: 3, name: 'Cy' }]);
    // A first value that only starts like it is data as before.
    const d = await post('/v0/datasources?name=excelsep&mode=append', '4;sep=x\n');
    expect(d.body, d.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
  });
  it('after blank lines, or with spaces after its character, it is the same line', async () => {
    await createFrom('excelsep2', '\r\n\nsep=; \r\nid;name\r\n1;Ana\r\n', '`id` Int64, `name` String', 1);
    const a = await post('/v0/datasources?name=excelsep2&mode=append', '\nsep=;\t\n2;Bo\n');
    expect(a.body, a.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT id, name FROM excelsep2 ORDER BY id')).toEqual([{ id: 1, name: 'Ana' }, { id: 2, name: 'Bo' }]);
  });
});

describe('lines in front of the first row', () => {
  it('a sep= line keeps its place: a quarantined row is numbered by its line in the file sent', async () => {
    await createFrom('seplines', 'id;name\n1;a\n', '`id` Int64, `name` String', 1);
    const a = await post('/v0/datasources?name=seplines&mode=append', '\r\nsep=;\r\nid;name\r\n2;b\r\nx;c\r\n');
    expect(a.body, a.text).toMatchObject({ rows: 1, quarantine_rows: 1 });
    // Line 5 of the body (it was numbered 4: the sep= line had been taken out).
    expect(await rows('SELECT c__line, c__raw FROM seplines_quarantine')).toEqual([{ c__line: 5, c__raw: 'x;c' }]);
  });
  it('lines of spaces before the header are blank lines: analyze, create and append find the header', async () => {
    const csv = '  \t \r\n   \r\nid,name\r\n1,Ana\r\n2,Bo\r\n';
    const an = await post('/v0/analyze', csv);
    expect(an.status, an.text).toBe(200);
    expect(an.body.analysis.schema).toBe('`id` Int64, `name` String');
    expect(an.body.dialect).toMatchObject({ delimiter: ',', has_header: true });
    // (It was `column_00` Nullable(String), `column_01` String, with the header stored as a row.)
    await createFrom('spacelead', csv, '`id` Int64, `name` String', 2);
    const a = await post('/v0/datasources?name=spacelead&mode=append', '   \nid,name\n3,Cy\nx,Di\n');
    expect(a.body, a.text).toMatchObject({ rows: 1, quarantine_rows: 1 });
    expect(await rows('SELECT id, name FROM spacelead ORDER BY id')).toEqual([{ id: 1, name: 'Ana' }, { id: 2, name: 'Bo' }, { id: 3, name: 'Cy' }]);
    expect(await rows('SELECT c__line, c__raw FROM spacelead_quarantine')).toEqual([{ c__line: 4, c__raw: 'x,Di' }]);
  });
  it('in a one-column file a line of spaces is a value, and is stored', async () => {
    await createFrom('spacevalue', 'word\nhello\n', '`word` String', 1);
    const a = await post('/v0/datasources?name=spacevalue&mode=append', '   \nworld\n');
    expect(a.body, a.text).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(await rows('SELECT word FROM spacevalue ORDER BY word')).toEqual([{ word: '   ' }, { word: 'hello' }, { word: 'world' }]);
  });
  it('a byte-order mark alone on the first line is no header; a title line after blank lines is named by its own line', async () => {
    // (The BOM's line was taken for a one-field header: "line 1 … is it a title above the header?")
    await createFrom('bomblank', '\ufeff\r\nid,name\r\n1,Ana\r\n', '`id` Int64, `name` String', 1);
    const title = await post('/v0/datasources?name=titled3&mode=create&format=csv', '\n\r\nSales report 2024\nregion,amount\nnorth,10\nsouth,20\n');
    expect(title.status, title.text).toBe(400);
    expect(title.body.error).toMatch(/^line 3 has 1 field and the lines after it 2: is it a title above the header/);
  });
});

describe('text after a closing quote', () => {
  it('is quarantined, as ClickHouse refuses it: a stray opening quote no longer joins the rows after it silently', async () => {
    await createFrom('afterquote', 'a,b\n0,x\n', '`a` Int64, `b` String', 1);
    const r = await post('/v0/datasources?name=afterquote&mode=append', 'a,b\n1,"x"z\n2,"oops\n3,v3\n4,"q"\n5,"y" \n6,w\n');
    // (It was 3 rows and none quarantined: `xz`, and `oops\n3,v3\n4,q"` as one value.)
    expect(r.body, r.text).toMatchObject({ rows: 2, quarantine_rows: 2 });
    expect(await rows('SELECT a, b FROM afterquote ORDER BY a')).toEqual([{ a: 0, b: 'x' }, { a: 5, b: 'y' }, { a: 6, b: 'w' }]);
    const q = await rows('SELECT c__line AS line, c__error_column AS col, c__raw AS raw FROM afterquote_quarantine ORDER BY line');
    expect(q).toEqual([
      { line: 2, col: ['b'], raw: '1,"x"z' },
      { line: 3, col: ['b'], raw: '2,"oops\n3,v3\n4,"q"' },
    ]);
    const why = await rows('SELECT DISTINCT c__error AS e FROM afterquote_quarantine');
    expect(why).toEqual([{ e: [expect.stringMatching(/^text after the closing quote/)] }]);
  });
});

describe('a header that is not UTF-8', () => {
  it('is told as not UTF-8 (400 INVALID_UTF8), not as names that do not match, and nothing is stored', async () => {
    await createFrom('latinhead', '\u00e9t\u00e9,n\n1,2\n', '`été` Int64, `n` Int64', 1);
    // A Latin-1 file whose header spells the schema's names (it was told to rename them).
    const latin = await post('/v0/datasources?name=latinhead&mode=append', Buffer.from('\xe9t\xe9,n\n3,4\n', 'latin1') as unknown as string);
    expect(latin.status, latin.text).toBe(400);
    expect(latin.body).toMatchObject({ code: 'INVALID_UTF8', line: 1 });
    // A byte-order mark cut short (its header ran into the next row: "found [i, s1, a]").
    const broken = await post('/v0/datasources?name=latinhead&mode=append', Buffer.concat([Buffer.from([0xef, 0xbb]), Buffer.from('\u00e9t\u00e9,n\n5,6\n')]) as unknown as string);
    expect(broken.status, broken.text).toBe(400);
    expect(broken.body).toMatchObject({ code: 'INVALID_UTF8', line: 1 });
    expect(await rows('SELECT n FROM latinhead')).toEqual([{ n: 2 }]);
  });
});

describe('rows longer than the header', () => {
  it('a stray row with a value too many is quarantined, not a column: the create takes its own inferred schema', async () => {
    await createFrom('strayrow', 'id,name\n1,a\n2,b,extra\n3,c\n', '`id` Int64, `name` String', 2, 1);
    expect(await rows('SELECT c__line, c__raw FROM strayrow_quarantine')).toEqual([{ c__line: 3, c__raw: '2,b,extra' }]);
  });
  it('values past the header in most rows are an unnamed Nullable column, read by position under the header (rows not reaching it NULL)', async () => {
    await createFrom('widerows', 'id,name\n1,a\n2,b,x\n3,c,y\n', '`id` Int64, `name` String, `column_02` Nullable(String)', 3);
    const a = await post('/v0/datasources?name=widerows&mode=append', 'id,name\n4,d,z\n5,e\n6,f,,\n7,g,h,i\n');
    expect(a.body, a.text).toMatchObject({ rows: 3, quarantine_rows: 1 });
    expect(await rows('SELECT id, column_02 FROM widerows ORDER BY id')).toEqual([
      { id: 1, column_02: null }, { id: 2, column_02: 'x' }, { id: 3, column_02: 'y' }, { id: 4, column_02: 'z' }, { id: 5, column_02: null }, { id: 6, column_02: null },
    ]);
    expect(await rows('SELECT c__raw, c__error FROM widerows_quarantine')).toEqual([{ c__raw: '7,g,h,i', c__error: ['wrong column count: 4 fields, expected 2 to 3'] }]);
  });
  it("Excel's trailing delimiter is no column, and an append of the same file under its header stores every row", async () => {
    const csv = 'id,name\n1,a,\n2,b,\n';
    await createFrom('trailcols', csv, '`id` Int64, `name` String', 2);
    const a = await post('/v0/datasources?name=trailcols&mode=append', csv.replace(/1,a/, '3,c').replace(/2,b/, '4,d'));
    expect(a.body, a.text).toMatchObject({ rows: 2, quarantine_rows: 0 });
    // A value past the last column is still a row too long; a quoted empty one too.
    const b = await post('/v0/datasources?name=trailcols&mode=append', 'id,name\n5,e,x\n6,f,""\n7,g,,\n');
    expect(b.body, b.text).toMatchObject({ rows: 1, quarantine_rows: 2 });
    expect(await rows('SELECT id FROM trailcols ORDER BY id')).toEqual([1, 2, 3, 4, 7].map((id) => ({ id })));
    // Without a header too, and on the header line alone (`id,name,` over rows without it).
    const nh = await post('/v0/datasources?name=trailcols&mode=append&header=false', '8,h,\n9,i,,\n');
    expect(nh.body, nh.text).toMatchObject({ rows: 2, quarantine_rows: 0 });
    const hl = await post('/v0/datasources?name=trailcols&mode=append', 'id,name,\n10,j\n');
    expect(hl.body, hl.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    await createFrom('trailhead', 'a,b,\n1,2\n3,4\n', '`a` Int64, `b` Int64', 2);
    // A last header cell of spaces, or quoted empty, is no name either (inference cut it, and the
    // header check refused the file's own schema).
    await createFrom('trailspace', 'a,b, \n1,2\n3,4\n', '`a` Int64, `b` Int64', 2);
    await createFrom('trailquoted', 'a,b,""\n1,2\n3,4\n', '`a` Int64, `b` Int64', 2);
  });
});

describe('a header spelled as the create wrote it, in another letter case', () => {
  it('`size (cm)` and `SIZE (CM)` are the Size_cm a create from `Size (cm)` made, in any order', async () => {
    await createFrom('sizes', 'Size (cm),Name\n10,a\n', '`Size_cm` Int64, `Name` String', 1);
    const a = await post('/v0/datasources?name=sizes&mode=append', 'size (cm),name\n20,b\n');
    expect(a.body, a.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    const b = await post('/v0/datasources?name=sizes&mode=append', 'name,SIZE (CM)\nc,30\n');
    expect(b.body, b.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT Size_cm, Name FROM sizes ORDER BY Size_cm')).toEqual([{ Size_cm: 10, Name: 'a' }, { Size_cm: 20, Name: 'b' }, { Size_cm: 30, Name: 'c' }]);
  });
});

describe('header cells with letters past ASCII', () => {
  it('keep them in the inferred names (Año, Größe, Descripción), symbols become _; the file appends again by its header', async () => {
    const csv = 'Año,Größe (cm),Descripción,Revenue €\n2024,180,Señal,1.5\n2025,175,Ünï,2\n';
    await analyzeAndCreate('unicols', csv, '`Año` Int64, `Größe_cm` Int64, `Descripción` String, `Revenue` Float64', 2);
    const a = await post('/v0/datasources?name=unicols&mode=append', 'Año,Größe (cm),Descripción,Revenue €\n2026,170,x,3\n');
    expect(a.body, a.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT `Año`, `Größe_cm`, `Descripción` FROM unicols ORDER BY `Año`')).toEqual([
      { Año: 2024, Größe_cm: 180, Descripción: 'Señal' }, { Año: 2025, Größe_cm: 175, Descripción: 'Ünï' }, { Año: 2026, Größe_cm: 170, Descripción: 'x' },
    ]);
  });
});
