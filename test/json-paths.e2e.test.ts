/**
 * A data source's JSON paths are checked when it is created, by the reader ingestion uses: a path
 * that reader refuses (`$.a[*]`, `$..a`, `$.a[-1]`, `[:]` into a column that is no Array) is a 400 naming the column,
 * not a data source whose every append fails and whose buffered events (answered 202) are never
 * stored (found by a black-box test). Keys in any script read with a dot (`$.ñ`); inferred paths
 * of keys with quotes or backslashes read back the same key. Real server, engine, HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { drained } from './helpers/events.js';

let srv: RunningServer;
let token: string;
const create = (name: string, schema: string) => call(`${srv.url}/v0/datasources?name=${name}&format=ndjson&schema=${encodeURIComponent(schema)}`, { method: 'POST', token });
const sql = async (q: string) => (await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`, { token })).body.data;

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('JSON paths', () => {
  it('that ingestion cannot read are refused at create, naming the column', async () => {
    for (const path of ['$.items[:].name', '$.a[*]', '$..a', '$.a[-1]', '$.a.*', '$.', '$.a b']) {
      const r = await create('jp', `a Int32 \`json:$.a\`, n String \`json:${path}\``);
      expect(r.status, `${path}: ${r.text}`).toBe(400);
      expect(r.body.code).toBe('SCHEMA_SYNTAX');
      expect(r.body.error).toContain('column n');
    }
    expect((await call(`${srv.url}/v0/datasources/jp`, { token })).status).toBe(404);
  });

  it("with [:] take a field of every element of an array (Tinybird's syntax) into an Array column; a scalar column is refused", async () => {
    const schema = 'id Int32 `json:$.id`, names Array(String) `json:$.items[:].name`, qty Array(Nullable(Int32)) `json:$.items[:].qty`, '
      + 'tags Array(Array(String)) `json:$.items[:].tags`, firsts Array(String) `json:$.groups[:][0]`, each Array(Array(Int32)) `json:$.m[:].r[:].v`';
    const made = await create('arr', schema);
    expect(made.status, made.text).toBe(200);
    expect(made.body.datasource.schema.columns[1]).toMatchObject({ name: 'names', jsonpath: '$.items[:].name' });
    const lines = [
      { id: 1, items: [{ name: 'a', qty: 2, tags: ['x', 'y'] }, { name: 'b', qty: 3, tags: [] }], groups: [['g1', 'h'], ['g2']], m: [{ r: [{ v: 1 }, { v: 2 }] }, { r: [] }] },
      { id: 2, items: [{ name: 'c', tags: [] }, { name: 'd', qty: 5, tags: ['z'] }] },  // an element without qty: NULL in Array(Nullable(Int32))
      { id: 3 },  // no items: every path missing, the empty array
      { id: 4, items: [{ name: 'e', qty: 1 }] },  // an element without tags: NULL where Array(String) takes none, quarantined
    ].map((l) => JSON.stringify(l)).join('\n') + '\n';
    const w = await call(`${srv.url}/v0/events?name=arr&wait=true`, { method: 'POST', token, body: lines });
    expect(w.status, w.text).toBe(200);
    expect(w.body).toEqual({ successful_rows: 3, quarantined_rows: 1 });
    expect(await sql('SELECT id, names, qty, tags, firsts, each FROM arr ORDER BY id')).toEqual([
      { id: 1, names: ['a', 'b'], qty: [2, 3], tags: [['x', 'y'], []], firsts: ['g1', 'g2'], each: [[1, 2], []] },
      { id: 2, names: ['c', 'd'], qty: [null, 5], tags: [[], ['z']], firsts: [], each: [] },
      { id: 3, names: [], qty: [], tags: [], firsts: [], each: [] },
    ]);
    const q = await sql('SELECT c__line, c__error_column FROM arr_quarantine');
    expect(q).toEqual([{ c__line: 4, c__error_column: ['tags'] }]);
    // The same through an NDJSON upload (the conversion is shared).
    const up = await call(`${srv.url}/v0/datasources?name=arr&mode=append&format=ndjson`, { method: 'POST', token, body: '{"id":9,"items":[{"name":"u","tags":[]}]}\n' });
    expect(up.status, up.text).toBe(200);
    expect(await sql('SELECT names, qty FROM arr WHERE id = 9')).toEqual([{ names: ['u'], qty: [null] }]);

    // More [:] than the column has arrays: refused at create, saying what type it needs.
    for (const [type, path] of [['String', '$.items[:].name'], ['Array(Int32)', '$.m[:].r[:].v']]) {
      const r = await create('arr_bad', `n ${type} \`json:${path}\``);
      expect(r.status, r.text).toBe(400);
      expect(r.body).toMatchObject({ code: 'SCHEMA_SYNTAX' });
      expect(r.body.error).toMatch(/column n: .*\[:\].*must be .*Array/);
    }
  });

  it('a one-column data source stores a line whose value is missing or null (it converted to a blank line, which was skipped: neither stored nor quarantined)', async () => {
    expect((await create('one_col', 's Nullable(String) `json:$.s`')).status).toBe(200);
    const w = await call(`${srv.url}/v0/events?name=one_col&wait=true`, { method: 'POST', token, body: '{"s":"a"}\n{}\n\n{"t":1}\n{"s":null}\n' });
    expect(w.status, w.text).toBe(200);
    expect(w.body).toEqual({ successful_rows: 4, quarantined_rows: 0 });  // (the blank line is no event)
    const b = await call(`${srv.url}/v0/events?name=one_col`, { method: 'POST', token, body: '{"s":"b"}\n{}\n' });
    expect(b.body).toEqual({ successful_rows: 2, quarantined_rows: 0 });
    await drained(srv, 'one_col', 20_000);
    expect(await sql("SELECT countIf(s IS NULL) AS nulls, groupArray(s) AS values FROM one_col")).toEqual([{ nulls: 4, values: ['a', 'b'] }]);
    // A DEFAULT array column alone, read with [:]: missing takes the DEFAULT, a value that is no array is quarantined.
    expect((await create('one_arr', "x Array(String) DEFAULT ['z'] `json:$.a[:].b`")).status).toBe(200);
    const a = await call(`${srv.url}/v0/datasources?name=one_arr&mode=append&format=ndjson`, { method: 'POST', token, body: '{"a":[{"b":"q"}]}\n{}\n{"a":[]}\n{"a":{"b":"obj"}}\n{"a":"s"}\n' });
    expect(a.status, a.text).toBe(200);
    expect(a.body).toMatchObject({ successful_rows: 3, quarantined_rows: 2 });
    expect(await sql('SELECT x FROM one_arr ORDER BY length(x) DESC, x')).toEqual([{ x: ['q'] }, { x: ['z'] }, { x: [] }]);
    expect(await sql('SELECT c__error FROM one_arr_quarantine')).toEqual([{ c__error: ['not an array'] }, { c__error: ['not an array'] }]);
  });

  it('name keys of any script with a dot; events are stored with and without wait', async () => {
    expect((await create('intl', 'a String `json:$.ñ`, b String `json:$.日本`')).status).toBe(200);
    const w = await call(`${srv.url}/v0/events?name=intl&wait=true`, { method: 'POST', token, body: '{"ñ":"x","日本":"y"}\n' });
    expect(w.status, w.text).toBe(200);
    expect((await call(`${srv.url}/v0/events?name=intl`, { method: 'POST', token, body: '{"ñ":"z"}\n' })).status).toBe(202);
    await drained(srv, 'intl', 20_000);
    expect(await sql('SELECT a, b FROM intl ORDER BY a')).toEqual([{ a: 'x', b: 'y' }, { a: 'z', b: '' }]);
  });

  it("inferred where a key is an object in some lines and a value in others: one String column, every line of the sample stored", async () => {
    const body = '{"k":0.5,"id":1}\n{"k":{"x":1},"id":2}\n{"k":[1,2],"id":3}\n';
    const r = await call(`${srv.url}/v0/datasources?name=mixed&format=ndjson`, { method: 'POST', token, body });
    expect(r.status, r.text).toBe(200);
    expect(r.body.datasource.schema.columns.map((c: { name: string; type: string }) => `${c.name} ${c.type}`)).toEqual(['k String', 'id Int64']);
    expect(r.body).toMatchObject({ successful_rows: 3, quarantined_rows: 0 });
    expect(await sql('SELECT k FROM mixed ORDER BY id')).toEqual([{ k: '0.5' }, { k: '{"x":1}' }, { k: '[1,2]' }]);
  });

  it('inferred where a key is an object or null: its keys typed, Nullable, and no column of its own', async () => {
    const body = '{"k":{"x":1,"y":"a"}}\n{"k":null}\n{"k":{"x":2,"y":"b"}}\n';
    const a = await call(`${srv.url}/v0/analyze?format=ndjson`, { method: 'POST', token, body });
    expect(a.status, a.text).toBe(200);
    expect(a.body.analysis.schema).toBe('`k_x` Nullable(Int64) `json:$.k.x`, `k_y` Nullable(String) `json:$.k.y`');
  });

  it("inferred from keys named as the quarantine's own columns: suggested under another name, which a create takes", async () => {
    const body = '{"insertion_date":"2024-01-01","c__error":"e","v":1}\n';
    const a = await call(`${srv.url}/v0/analyze?format=ndjson`, { method: 'POST', token, body });
    expect(a.status, a.text).toBe(200);
    const names = a.body.analysis.columns.map((c: { name: string }) => c.name);
    expect(names).toEqual(['insertion_date_2', 'c__error_2', 'v']);
    const made = await call(`${srv.url}/v0/datasources?name=reserved_keys&format=ndjson`, { method: 'POST', token, body });
    expect(made.status, made.text).toBe(200);
    expect(await sql('SELECT insertion_date_2, c__error_2, v FROM reserved_keys')).toEqual([{ insertion_date_2: '2024-01-01', c__error_2: 'e', v: 1 }]);
  });

  it('inferred from keys with quotes and backslashes read those keys back', async () => {
    const body = '{"it\'s":"q","back\\\\slash":"b","ok":1}\n';
    const r = await call(`${srv.url}/v0/datasources?name=odd&format=ndjson`, { method: 'POST', token, body });
    expect(r.status, r.text).toBe(200);
    const got = await sql('SELECT * FROM odd');
    expect(got).toHaveLength(1);
    expect(Object.values(got[0])).toEqual(expect.arrayContaining(['q', 'b']));
  });
});
