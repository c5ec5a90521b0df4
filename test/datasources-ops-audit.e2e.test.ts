/**
 * Data source operations as a demanding Tinybird user meets them: replace with
 * replace_condition, rows delete, truncate, drop, quarantine and datasources_ops_log, over
 * real HTTP against a real server with the embedded engine. (Value conversion, CSV
 * validation and plain ingest have audits of their own: ndjson-differential, native-csv-
 * differential, ingest*.)
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer, workspaceApi } from './helpers/server.js';

let srv: RunningServer;
let token: string;

const { sql, rows, post } = workspaceApi(() => srv, () => token);
const form = (p: string, f: Record<string, string>) => call(`${srv.url}${p}`, { method: 'POST', token, body: new URLSearchParams(f) });
const enc = encodeURIComponent;
const schema = enc('d Date, c String, v Int32');
const seed = '2026-01-01,ES,1\n2026-01-02,FR,2\n2026-01-03,ES,3\n';
const all = async (name: string) => (await rows(`SELECT toString(d) AS d, c, v FROM ${name} ORDER BY d, c`)).map((r) => `${r.d} ${r.c} ${r.v}`);

async function fresh(name: string): Promise<void> {
  const r = await post(`/v0/datasources?name=${name}&schema=${schema}`);
  expect(r.status, r.text).toBe(200);
  const a = await post(`/v0/datasources?name=${name}&mode=append`, seed);
  expect(a.status, a.text).toBe(200);
}

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => { await srv?.stop(); });

describe('conditions stay one condition', () => {
  const escapes = [
    '1) OR (1',
    'v = 2) GROUP BY c HAVING (1',
    '1) UNION ALL SELECT count() FROM esc WHERE (1',
    'v = 2) ORDER BY (1',
    "v = 2 # ')'",
  ];

  it('a delete_condition that closes the parentheses it is put in is a 400, and nothing is deleted', async () => {
    await fresh('esc');
    for (const cond of escapes) {
      for (const dry of ['false', 'true']) {
        const r = await form('/v0/datasources/esc/delete', { delete_condition: cond, dry_run: dry });
        expect(r.status, `${cond}: ${r.text}`).toBe(400);
        expect(r.body.code).toBe('INVALID_PARAMETER');
        expect(r.body.error).toMatch(/delete_condition must be one SQL condition/);
      }
    }
    expect(await all('esc')).toEqual(['2026-01-01 ES 1', '2026-01-02 FR 2', '2026-01-03 ES 3']);
  });

  it('a replace_condition that closes its parentheses is a 400, and the data source is as it was', async () => {
    for (const cond of escapes) {
      const r = await post(`/v0/datasources?name=esc&mode=replace&replace_condition=${enc(cond)}`, '2026-01-02,DE,20\n');
      expect(r.status, `${cond}: ${r.text}`).toBe(400);
      expect(r.body.code).toBe('INVALID_PARAMETER');
    }
    expect(await all('esc')).toEqual(['2026-01-01 ES 1', '2026-01-02 FR 2', '2026-01-03 ES 3']);
  });

  it("a ';' (pasted SQL) or a value that is no condition (a String column alone) is a 400 saying so, not the engine's text of Roost's rewrite; nothing changes", async () => {
    await fresh('esc2');
    for (const [cond, what] of [["c = 'ES';", /without ';' \(at offset 8 of the condition\): remove the ';'$/], ["c = 'ES'; DROP TABLE esc", /remove the ';' and what follows it/]] as const) {
      const d = await form('/v0/datasources/esc2/delete', { delete_condition: cond });
      expect(d.status, d.text).toBe(400);
      expect(d.body).toMatchObject({ code: 'SQL_SYNTAX', parameter: 'delete_condition', offset: 8 });
      expect(d.body.error).toMatch(what);
      const r = await post(`/v0/datasources?name=esc2&mode=replace&replace_condition=${enc(cond)}`, '2026-01-02,DE,20\n');
      expect(r.status, r.text).toBe(400);
      expect(r.body.error).toMatch(/^replace_condition must be one SQL condition, without ';'/);
    }
    const d = await form('/v0/datasources/esc2/delete', { delete_condition: 'c' });
    expect(d.status, d.text).toBe(400);
    expect(d.body).toMatchObject({ code: 'INVALID_PARAMETER', type: 'String' });
    expect(d.body.error).toMatch(/^delete_condition must be a condition, true or false for each row; it is a value of type String/);
    const r = await post(`/v0/datasources?name=esc2&mode=replace&replace_condition=${enc('c')}`, '2026-01-02,DE,20\n');
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatch(/^replace_condition must be a condition, true or false for each row; it is a value of type String/);
    expect(r.text).not.toMatch(/coalesce|notEquals/);
    // One rule for a dry run and the delete (the dry run counted now() as true, then the delete
    // failed with the engine's isZeroOrNull); the type is said as the engine writes it.
    for (const [cond, type] of [['now()', 'DateTime'], ['toDecimal32(v, 2)', 'Decimal(9, 2)'], ["CAST(c, 'Enum8(\\'ES\\' = 1, \\'FR\\' = 2)')", "Enum8('ES' = 1, 'FR' = 2)"]]) {
      for (const dry of ['true', 'false']) {
        const x = await form('/v0/datasources/esc2/delete', { delete_condition: cond, dry_run: dry });
        expect(x.status, `${cond}: ${x.text}`).toBe(400);
        expect(x.body.type, cond).toBe(type);
        expect(x.body.error).toContain(`it is a value of type ${type}:`);
      }
    }
    for (const cond of ['v', 'v - 1', 'toFloat64(v) / 2', 'v > 1 AND c = \'ES\'', 'NULL']) {
      const ok = await form('/v0/datasources/esc2/delete', { delete_condition: cond, dry_run: 'true' });
      expect(ok.status, `${cond}: ${ok.text}`).toBe(200);
    }
    expect(await all('esc2')).toEqual(['2026-01-01 ES 1', '2026-01-02 FR 2', '2026-01-03 ES 3']);
  });

  it('brackets, quotes and comments inside a condition are its own: those conditions work', async () => {
    const ok: Array<[string, number]> = [
      ['(v = 2)', 1], ["c = ')' OR v = 2", 1], ["c = 'it''s)' OR v = 2", 1], ["c = 'a\\')' OR v = 2", 1],
      ['v = 2 -- a comment )', 1], ['v = 2 /* ) */', 1], ['v IN [2, 3]', 2], ['`v` = 3', 1],
    ];
    for (const [cond, n] of ok) {
      const r = await form('/v0/datasources/esc/delete', { delete_condition: cond, dry_run: 'true' });
      expect(r.status, `${cond}: ${r.text}`).toBe(200);
      expect(r.body.rows_affected, cond).toBe(n);
    }
  });
});

describe('multipart uploads', () => {
  const boundary = '------------------------940a5e1dc492061c';
  const multipart = (field: string, text: string) => Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="rows"\r\nContent-Type: application/octet-stream\r\n\r\n${text}\r\n--${boundary}--\r\n`);
  const headers = { 'Content-Type': `multipart/form-data; boundary=${boundary}` };

  it('a body sent in one piece of over 16 KiB (as curl -F sends it) is read: append, create, analyze', async () => {
    const csv = Array.from({ length: 2000 }, (_, i) => `2026-01-01,${'x'.repeat(20)},${i}`).join('\n') + '\n';
    expect(csv.length).toBeGreaterThan(64 * 1024);
    expect((await post(`/v0/datasources?name=mp&schema=${schema}`)).status).toBe(200);
    const a = await post('/v0/datasources?name=mp&mode=append', multipart('csv', csv), headers);
    expect(a.status, a.text).toBe(200);
    expect(a.body).toMatchObject({ rows: 2000, quarantine_rows: 0 });
    const nd = Array.from({ length: 500 }, (_, i) => JSON.stringify({ i, s: 'y'.repeat(100) })).join('\n') + '\n';
    const c = await post('/v0/datasources?name=mp_nd&format=ndjson', multipart('ndjson', nd), headers);
    expect(c.status, c.text).toBe(200);
    expect(c.body.rows).toBe(500);
    const z = await post('/v0/analyze', multipart('ndjson', nd), headers);
    expect(z.status, z.text).toBe(200);
    expect(z.body.analysis.columns.map((col: { name: string }) => col.name)).toEqual(['i', 's']);
  });
});

describe('tinybird.datasources_ops_log', () => {
  const log = async (name: string, n: number) => {
    const q = `SELECT event_type, result, error, job_id, rows FROM tinybird.datasources_ops_log WHERE datasource_name = '${name}' ORDER BY timestamp`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      const got = await rows(q);
      if (got.length >= n || Date.now() > deadline) return got;
      await new Promise((r) => setTimeout(r, 150));
    }
  };

  it('an append or replace refused before its rows are read is logged as an error with the text answered', async () => {
    await fresh('oplog');
    const refused = [
      await post('/v0/datasources?name=oplog&mode=append', 'not gzip at all', { 'Content-Encoding': 'gzip' }),
      await post('/v0/datasources?name=oplog&mode=append', undefined),
      await post(`/v0/datasources?name=oplog&mode=replace&replace_condition=${enc("c = 'ES') OR (1")}`, '2026-01-02,DE,20\n'),
      await post(`/v0/datasources?name=oplog&mode=append&replace_condition=${enc("c = 'ES'")}`, '2026-01-02,DE,20\n'),
    ];
    for (const r of refused) {
      expect(r.status, r.text).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
    }
    const ops = await log('oplog', 6);
    expect(ops.map((o) => `${o.event_type} ${o.result}`)).toEqual(['create ok', 'append ok', 'append error', 'append error', 'replace error', 'append error']);
    expect(ops.slice(2).map((o) => o.error)).toEqual(refused.map((r) => r.body.error));
    expect(await all('oplog')).toEqual(['2026-01-01 ES 1', '2026-01-02 FR 2', '2026-01-03 ES 3']);
  });

  it('the conditions of deletes and replaces are in its Options, also when refused', async () => {
    await fresh('oplog_opts');
    await form('/v0/datasources/oplog_opts/delete', { delete_condition: "c = 'FR'", dry_run: 'true' });
    await form('/v0/datasources/oplog_opts/delete', { delete_condition: '1) OR (1' });
    await post(`/v0/datasources?name=oplog_opts&mode=replace&replace_condition=${enc("c = 'ES'")}`, '2026-01-01,ES,10\n');
    const q = "SELECT event_type, result, mapFromArrays(Options.Names, Options.Values) AS Options FROM tinybird.datasources_ops_log WHERE datasource_name = 'oplog_opts' AND event_type != 'append' AND event_type != 'create' ORDER BY timestamp";
    const deadline = Date.now() + 10_000;
    let got: any[] = [];
    while (Date.now() < deadline && got.length < 3) {
      got = await rows(q);
      await new Promise((res) => setTimeout(res, 150));
    }
    expect(got).toEqual([
      { event_type: 'delete_data', result: 'ok', Options: { delete_condition: "c = 'FR'", dry_run: 'true' } },
      { event_type: 'delete_data', result: 'error', Options: { delete_condition: '1) OR (1', dry_run: 'false' } },
      { event_type: 'replace', result: 'ok', Options: { mode: 'replace', format: 'csv', replace_condition: "c = 'ES'" } },
    ]);
  });

  it("a create without a body logs the format its schema is fed: NDJSON for JSON paths (it said csv)", async () => {
    // A format= given is logged as given.
    for (const [name, schema, format, given] of [['oplog_nd', 'a Int32 `json:$.a`', 'ndjson', ''], ['oplog_csv', 'a Int32', 'csv', ''], ['oplog_given', 'a Int32', 'ndjson', '&format=ndjson']]) {
      const r = await post(`/v0/datasources?name=${name}&schema=${enc(schema)}${given}`);
      expect(r.status, r.text).toBe(200);
      const q = `SELECT mapFromArrays(Options.Names, Options.Values) AS Options FROM tinybird.datasources_ops_log WHERE datasource_name = '${name}' AND event_type = 'create'`;
      let got: any[] = [];
      for (const deadline = Date.now() + 10_000; Date.now() < deadline && got.length < 1;) {
        got = await rows(q);
        await new Promise((res) => setTimeout(res, 150));
      }
      expect(got, name).toEqual([{ Options: { mode: 'create', format } }]);
    }
  });

  it('a drop or rename refused at once (a pipe reads it, the name is taken) is logged as an error', async () => {
    await fresh('oplog_ref');
    await fresh('oplog_taken');
    const pipe = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, body: JSON.stringify({ name: 'oplog_reader', nodes: [{ name: 'n', sql: 'SELECT * FROM oplog_ref' }] }), headers: { 'Content-Type': 'application/json' } });
    expect(pipe.status, pipe.text).toBe(200);
    const refused = [
      await call(`${srv.url}/v0/datasources/oplog_ref`, { method: 'DELETE', token }),
      await call(`${srv.url}/v0/datasources/oplog_ref?name=oplog_ref2`, { method: 'PUT', token }),
    ];
    for (const r of refused) expect(r.status, r.text).toBe(409);
    const ops = (await log('oplog_ref', 4)).filter((o) => o.event_type === 'delete' || o.event_type === 'rename');
    expect(ops.map((o) => `${o.event_type} ${o.result}`)).toEqual(['delete error', 'rename error']);
    expect(ops.map((o) => o.error)).toEqual(refused.map((r) => r.body.error));
  });

  it('a rows delete is logged with the job id it answered', async () => {
    await fresh('oplog_del');
    const r = await form('/v0/datasources/oplog_del/delete', { delete_condition: "c = 'ES'" });
    expect(r.status, r.text).toBe(200);
    const job = await call(`${srv.url}/v0/jobs/${r.body.job_id}`, { token });
    expect(job.body).toMatchObject({ status: 'done', result: { rows_affected: 2 } });
    const ops = await log('oplog_del', 3);
    expect(ops[2]).toMatchObject({ event_type: 'delete_data', result: 'ok', rows: 2, job_id: r.body.job_id });
  });
});

describe('a replace whose rows are all invalid', () => {
  it('is a 422 NO_VALID_ROWS saying why, replaces and quarantines nothing, and is logged as an error', async () => {
    await fresh('allbad');
    const before = await all('allbad');
    // The wrong file: columns in another order, so no row fits the schema.
    const r = await post('/v0/datasources?name=allbad&mode=replace', 'ES,2026-02-01,x\nFR,2026-02-02,y\n');
    expect(r.status, r.text).toBe(422);
    expect(r.body.code).toBe('NO_VALID_ROWS');
    expect(r.body.error).toMatch(/none of the 2 rows is valid.*not replaced \(line 1, column d: not a date; line 2/);
    expect(r.body).toMatchObject({ rows_received: 2, first_rejected: [{ line: 1, column: 'd', reason: 'not a date' }, { line: 2, column: 'd', reason: 'not a date' }] });
    expect(await all('allbad')).toEqual(before);
    // Nothing went to the quarantine for a refused request (its table may not even exist).
    const q = await call(`${srv.url}/v0/sql?q=${enc('SELECT count() AS n FROM allbad_quarantine FORMAT JSONEachRow')}`, { token });
    if (q.status === 200) expect(JSON.parse(q.text).n).toBe(0);
    // A partial replace too: the rows inside the condition stay.
    const p = await post(`/v0/datasources?name=allbad&mode=replace&replace_condition=${enc("c = 'ES'")}`, 'x,ES,1\nbad,ES,2\n');
    expect(p.status, p.text).toBe(422);
    expect(await all('allbad')).toEqual(before);
    // One valid row is enough for a replace to go through (the rest quarantined).
    const ok = await post('/v0/datasources?name=allbad&mode=replace', '2026-03-01,PT,7\nbad,row,x\n');
    expect(ok.status, ok.text).toBe(200);
    expect(await all('allbad')).toEqual(['2026-03-01 PT 7']);
    let ops: Array<{ event_type: string; result: string; error: string }> = [];
    for (let i = 0; i < 50 && ops.length < 3; i++) {
      await new Promise((res) => setTimeout(res, 200));
      ops = await rows("SELECT event_type, result, error FROM tinybird.datasources_ops_log WHERE datasource_name = 'allbad' AND event_type = 'replace' ORDER BY timestamp");
    }
    expect(ops.map((o) => o.result)).toEqual(['error', 'error', 'ok']);
    expect(ops[0]!.error).toMatch(/none of the 2 rows is valid/);
  });
});

describe('partial replace', () => {
  it('a condition naming columns as <data source>.column works in a replace as it does in a rows delete', async () => {
    await fresh('qual');
    const dry = await form('/v0/datasources/qual/delete', { delete_condition: 'qual.v = 2', dry_run: 'true' });
    expect(dry.body.rows_affected, dry.text).toBe(1);
    const r = await post(`/v0/datasources?name=qual&mode=replace&replace_condition=${enc('qual.v = 2')}`, '2026-01-02,DE,2\n2026-01-05,PT,5\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 1, quarantine_rows: 0, rows_outside_condition: 1 });
    expect(await all('qual')).toEqual(['2026-01-01 ES 1', '2026-01-02 DE 2', '2026-01-03 ES 3']);
  });
});

describe('/v0/analyze and inferred schemas', () => {
  const long = 'x'.repeat(2 * 1024 * 1024);

  it('a first row over 1 MiB is sampled whole: analyze and create infer its columns', async () => {
    const nd = `${JSON.stringify({ s: long, n: 1 })}\n${JSON.stringify({ s: 'y', n: 2 })}\n`;
    const a = await post('/v0/analyze?format=ndjson', nd, { 'Content-Type': 'application/x-ndjson' });
    expect(a.status, a.text.slice(0, 300)).toBe(200);
    expect(a.body.analysis.columns.map((c: { name: string }) => c.name)).toEqual(['s', 'n']);
    const c = await post('/v0/datasources?name=inf_nd&format=ndjson', nd, { 'Content-Type': 'application/x-ndjson' });
    expect(c.status, c.text.slice(0, 300)).toBe(200);
    expect(c.body.rows).toBe(2);
    expect(c.body.datasource.schema.columns.map((col: { name: string }) => col.name)).toEqual(['s', 'n']);
    const csv = `n,s\n1,${long}\n2,y\n`;
    const z = await post('/v0/analyze', csv);
    expect(z.status).toBe(200);
    expect(z.body.analysis.columns[0].recommended_type).toMatch(/Int/);
    expect(z.body.rows_sampled).toBeGreaterThan(0);
  });

  it('a sample with no JSON object is a 400, not an analysis of no columns', async () => {
    const r = await post('/v0/analyze?format=ndjson', '[1,2]\n"text"\n', { 'Content-Type': 'application/x-ndjson' });
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatch(/no JSON objects/);
    const e = await post('/v0/analyze', '');
    expect(e.status).toBe(400);
    expect(e.body.code).toBe('EMPTY_BODY');
  });

  it('a JSON array of objects is a 400 that says to send NDJSON, not columns named after its values', async () => {
    for (const body of ['[{"a":1,"b":"x"},{"a":2,"b":"y"}]', '[\n  {"a": 1}\n]\n']) {
      const a = await post('/v0/analyze', body, { 'Content-Type': 'application/json' });
      expect(a.status, a.text).toBe(400);
      expect(a.body).toMatchObject({ code: 'UNSUPPORTED_FORMAT' });
      expect(a.body.error).toMatch(/JSON array.*NDJSON/);
    }
    const c = await post('/v0/datasources?name=jsonarray', '[{"a":1,"b":"x"}]');
    expect(c.status, c.text).toBe(400);
    expect((await call(`${srv.url}/v0/datasources/jsonarray`, { token })).status).toBe(404);
  });
});

describe('quarantine', () => {
  it('truncate leaves the quarantine; POST /v0/datasources/<name>_quarantine/truncate empties it (as in Tinybird) and nothing else', async () => {
    expect((await post(`/v0/datasources?name=quar&schema=${schema}`)).status).toBe(200);
    const a = await post('/v0/datasources?name=quar&mode=append', '2026-01-01,ES,1\nnot a date,FR,2\n2026-01-03,ES,x\n');
    expect(a.body).toMatchObject({ rows: 1, quarantine_rows: 2 });
    expect((await call(`${srv.url}/v0/datasources/quar`, { token })).body).toMatchObject({ statistics: { row_count: 1 }, quarantine_rows: 2 });
    expect((await post('/v0/datasources/quar/truncate')).status).toBe(200);
    expect((await call(`${srv.url}/v0/datasources/quar`, { token })).body).toMatchObject({ statistics: { row_count: 0 }, quarantine_rows: 2 });
    expect((await post('/v0/datasources?name=quar&mode=append', '2026-01-04,PT,4\n')).status).toBe(200);
    const t = await post('/v0/datasources/quar_quarantine/truncate');
    expect(t.status, t.text).toBe(200);
    expect(t.body).toMatchObject({ name: 'quar_quarantine', datasource: { name: 'quar' }, truncated: true });
    expect((await call(`${srv.url}/v0/datasources/quar`, { token })).body).toMatchObject({ statistics: { row_count: 1 }, quarantine_rows: 0 });
    expect(await sql('SELECT count() FROM quar_quarantine FORMAT CSV')).toBe('0\n');
    const missing = await post('/v0/datasources/nothere_quarantine/truncate');
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ code: 'UNKNOWN_DATASOURCE' });
  });
});

describe('NDJSON bodies whose lines are none of them JSON', () => {
  const nd = { 'Content-Type': 'application/x-ndjson' };
  const ndSchema = enc('`d` Date `json:$.d`, `c` String `json:$.c`');
  const quarantined = async (name: string, like: string) => (await rows(`SELECT c__raw AS r, c__error AS e FROM ${name}_quarantine WHERE c__raw LIKE '${like}%' ORDER BY c__line`)).map((x) => `${x.r}: ${x.e.join(',')}`);

  it('are quarantined and counted (append, replace, events with wait), not refused as an empty body', async () => {
    expect((await post(`/v0/datasources?name=nojson&format=ndjson&schema=${ndSchema}`)).status).toBe(200);
    const a = await post('/v0/datasources?name=nojson&mode=append&format=ndjson', 'a1,x\na2,y\n', nd);
    expect(a.status, a.text).toBe(200);
    expect(a.body).toMatchObject({ rows: 0, quarantine_rows: 2 });
    const e = await post('/v0/events?name=nojson&wait=true', 'e1 not json\ne2 not json\n', nd);
    expect(e.status, e.text).toBe(200);
    expect(e.body).toEqual({ successful_rows: 0, quarantined_rows: 2 });
    expect(await quarantined('nojson', 'a')).toEqual(['a1,x: invalid JSON', 'a2,y: invalid JSON']);
    expect(await quarantined('nojson', 'e')).toEqual(['e1 not json: invalid JSON', 'e2 not json: invalid JSON']);
    // Blank lines only are still an empty body.
    expect((await post('/v0/datasources?name=nojson&mode=append&format=ndjson', '\n\n', nd)).body.code).toBe('EMPTY_BODY');
  });

  it('acknowledged with 202 by /v0/events, they reach the quarantine instead of being dropped as empty', async () => {
    const r = await post('/v0/events?name=nojson', 'b1 not json\nb2 not json\n', nd);
    expect(r.status, r.text).toBe(202);
    // Lines that are plainly no JSON object are counted as quarantined in the 202 already (they were
    // successful rows, and the tb CLI said all was appended); a BOM and spaces around an object are fine.
    expect(r.body).toEqual({ successful_rows: 0, quarantined_rows: 2 });
    const mixed = await post('/v0/events?name=nojson', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('  {"s":"c1"} \r\n[1]\nc3 not json\n\n{"s":"c4"}')]), nd);
    expect(mixed.status, mixed.text).toBe(202);
    expect(mixed.body).toEqual({ successful_rows: 2, quarantined_rows: 2 });
    // A BOM before a later line's object is read as the object by the flush: not counted as quarantined.
    const bom = await post('/v0/events?name=nojson', Buffer.from('{"c":"d1"}\n\ufeff{"c":"d2"}\n'), nd);
    expect(bom.body).toEqual({ successful_rows: 2, quarantined_rows: 0 });
    const deadline = Date.now() + 10_000;
    let got: string[] = [];
    while (Date.now() < deadline && got.length < 2) {
      got = await quarantined('nojson', 'b');
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(got).toEqual(['b1 not json: invalid JSON', 'b2 not json: invalid JSON']);
  });
});

describe('answers under the names Tinybird clients read', () => {
  it('an append answers successful_rows and quarantined_rows; a rows delete delete_id, and rows_to_be_deleted when dry', async () => {
    await fresh('names');
    const a = await post('/v0/datasources?name=names&mode=append', '2026-01-04,PT,4\nbad,XX,1\n');
    expect(a.body).toMatchObject({ rows: 1, quarantine_rows: 1, successful_rows: 1, quarantined_rows: 1, import_id: a.body.id });
    const dry = await form('/v0/datasources/names/delete', { delete_condition: "c = 'ES'", dry_run: 'true' });
    expect(dry.body).toMatchObject({ rows_to_be_deleted: 2, rows_affected: 2, dry_run: true, delete_id: dry.body.job_id });
    const done = await form('/v0/datasources/names/delete', { delete_condition: "c = 'ES'" });
    expect(done.body).toMatchObject({ rows_affected: 2, delete_id: done.body.job_id, status: 'done' });
    expect(done.body.rows_to_be_deleted).toBeUndefined();
  });
});

describe('Content-Type', () => {
  it('without format=, a body sent as application/json is NDJSON (it was read as CSV and all quarantined)', async () => {
    const s = enc('`d` Date `json:$.d`, `c` String `json:$.c`');
    expect((await post(`/v0/datasources?name=ctype&format=ndjson&schema=${s}`)).status).toBe(200);
    const body = '{"d":"2026-01-01","c":"A"}\n{"d":"2026-01-02","c":"B"}\n';
    for (const type of ['application/json', 'application/x-ndjson', 'application/jsonl; charset=utf-8']) {
      const r = await post('/v0/datasources?name=ctype&mode=append', body, { 'Content-Type': type });
      expect(r.body, type).toMatchObject({ rows: 2, quarantine_rows: 0 });
    }
    // format= wins over the media type.
    const csv = await post('/v0/datasources?name=ctype&mode=append&format=csv', '2026-01-03,C\n', { 'Content-Type': 'application/json' });
    expect(csv.body).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await sql('SELECT count() FROM ctype_quarantine FORMAT CSV')).toBe('0\n');
  });

  it('without format= or a media type, an NDJSON body is NDJSON: raw, gzipped, or a file named .ndjson in a field named csv (as Tinybird\'s SDK sends it)', async () => {
    // As curl --data-binary and Tinybird's SDK send them: no text/csv (the helper's post sends one).
    const send = (p: string, body: BodyInit, headers: Record<string, string> = {}) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers });
    const s = enc('`d` Date `json:$.d`, `c` String `json:$.c`');
    expect((await post(`/v0/datasources?name=sniffed&format=ndjson&schema=${s}`)).status).toBe(200);
    const body = '\n{"d":"2026-01-01","c":"A"}\n{"d":"2026-01-02","c":"B"}\n';
    // A string body goes as text/plain: no format named, the body's first character decides.
    const form = await send('/v0/datasources?name=sniffed&mode=append', body, { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(form.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    const raw = await send('/v0/datasources?name=sniffed&mode=append', body);
    expect(raw.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    const gz = await send('/v0/datasources?name=sniffed&mode=append', gzipSync(body), { 'Content-Type': 'application/octet-stream' });
    expect(gz.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    for (const file of ['rows.ndjson.gz', 'rows.jsonl', 'rows.json']) {
      const f = new FormData();
      f.append('csv', new Blob([file.endsWith('.gz') ? gzipSync(body) : body]), file);
      const r = await send('/v0/datasources?name=sniffed&mode=append', f);
      expect(r.body, file).toMatchObject({ rows: 2, quarantine_rows: 0 });
    }
    // A CSV body is still CSV, and a file named .csv in a field named ndjson too.
    const csv = await send('/v0/datasources?name=sniffed&mode=append', '2026-01-03,C\n');
    expect(csv.body).toMatchObject({ rows: 1, quarantine_rows: 0 });
    const f = new FormData();
    f.append('ndjson', new Blob(['2026-01-04,D\n']), 'rows.csv');
    expect((await send('/v0/datasources?name=sniffed&mode=append', f)).body).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await sql('SELECT count() FROM sniffed_quarantine FORMAT CSV')).toBe('0\n');
    expect(await sql('SELECT count() FROM sniffed FORMAT CSV')).toBe('14\n');

    // An append without a format named reads what the data source holds: a CSV row whose first cell
    // opens with `{` is CSV in a CSV data source (it was sniffed as NDJSON and quarantined).
    expect((await post(`/v0/datasources?name=sniffed_csv&schema=${enc('a String, n Int32')}`)).status).toBe(200);
    const brace = await send('/v0/datasources?name=sniffed_csv&mode=append', '{z},3\n');
    expect(brace.body, brace.text).toMatchObject({ rows: 1, quarantine_rows: 0 });
    // A create from an NDJSON body without format= infers its JSON paths (it made column_00... Strings).
    const c = await send('/v0/datasources?name=sniffed_new', '{"id":1,"user":{"name":"Ana"}}\n{"id":2,"user":{"name":"Bob"}}\n');
    expect(c.status, c.text).toBe(200);
    expect(c.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(await sql('SELECT id, user_name FROM sniffed_new ORDER BY id FORMAT CSV')).toBe('1,"Ana"\n2,"Bob"\n');
  });
});

describe('data sources named like SQL keywords', () => {
  it('WHERE, FROM and AS take rows deletes and partial replaces like any other name', async () => {
    for (const name of ['WHERE', 'FROM', 'AS']) {
      expect((await post(`/v0/datasources?name=${name}&schema=${enc('a Int32')}`)).status).toBe(200);
      expect((await post(`/v0/datasources?name=${name}&mode=append`, '1\n2\n3\n')).status).toBe(200);
      const d = await form(`/v0/datasources/${name}/delete`, { delete_condition: 'a = 1' });
      expect(d.status, `${name}: ${d.text}`).toBe(200);
      expect(d.body.rows_affected).toBe(1);
      const q = await form(`/v0/datasources/${name}/delete`, { delete_condition: `\`${name}\`.a = 3 AND a IN (SELECT a FROM \`${name}\`)`, dry_run: 'true' });
      expect(q.body.rows_to_be_deleted, `${name}: ${q.text}`).toBe(1);
      const r = await post(`/v0/datasources?name=${name}&mode=replace&replace_condition=${enc(`\`${name}\`.a = 2`)}`, '2\n5\n');
      expect(r.status, `${name}: ${r.text}`).toBe(200);
      expect(r.body).toMatchObject({ rows: 1, rows_outside_condition: 1 });
      expect((await rows(`SELECT a FROM \`${name}\` ORDER BY a`)).map((x) => x.a)).toEqual([2, 3]);
    }
  });
});

describe('/metrics', () => {
  const count = async (labels: string) => {
    const m = (await call(`${srv.url}/metrics`)).text;
    const line = m.split('\n').find((l) => l.startsWith(`roost_datasource_operations_total{${labels}}`));
    return line ? Number(line.split(' ').pop()) : 0;
  };

  it('roost_datasource_operations_total counts refused appends and replaces as errors, and deletes and truncates as ok', async () => {
    await fresh('metr');
    const err = await count('tenant="local",event="replace",result="error"');
    const del = await count('tenant="local",event="delete_data",result="ok"');
    const trunc = await count('tenant="local",event="truncate",result="ok"');
    expect((await post(`/v0/datasources?name=metr&mode=replace&replace_condition=${enc('1) OR (1')}`, '2026-01-01,ES,1\n')).status).toBe(400);
    expect((await post('/v0/datasources?name=metr&mode=replace', undefined)).status).toBe(400);
    expect((await form('/v0/datasources/metr/delete', { delete_condition: "c = 'ES'" })).status).toBe(200);
    expect((await post('/v0/datasources/metr/truncate')).status).toBe(200);
    expect((await post('/v0/datasources/metr_quarantine/truncate')).status).toBe(200);
    expect(await count('tenant="local",event="replace",result="error"')).toBe(err + 2);
    expect(await count('tenant="local",event="delete_data",result="ok"')).toBe(del + 1);
    expect(await count('tenant="local",event="truncate",result="ok"')).toBe(trunc + 2);
  });

  it('a create refused before its data source exists (schema syntax, empty body, a pipe\'s name) is an operation too: in the log under the name asked for, and counted', async () => {
    const errs = await count('tenant="local",event="create",result="error"');
    const bad = await post(`/v0/datasources?name=badcreate1&schema=${enc('a Strin')}`);
    expect(bad.status, bad.text).toBe(400);
    const empty = await post('/v0/datasources?name=badcreate2', '');
    expect(empty.status, empty.text).toBe(400);
    expect(await count('tenant="local",event="create",result="error"')).toBe(errs + 2);
    let got: any[] = [];
    for (let i = 0; i < 50 && got.length < 2; i++) {
      got = await rows("SELECT datasource_id, datasource_name, event_type, result, error, request_id FROM tinybird.datasources_ops_log WHERE datasource_name IN ('badcreate1', 'badcreate2') ORDER BY datasource_name");
      if (got.length < 2) await new Promise((r) => setTimeout(r, 200));
    }
    expect(got).toEqual([
      { datasource_id: '', datasource_name: 'badcreate1', event_type: 'create', result: 'error', error: bad.body.error, request_id: bad.headers.get('x-request-id') },
      { datasource_id: '', datasource_name: 'badcreate2', event_type: 'create', result: 'error', error: empty.body.error, request_id: empty.headers.get('x-request-id') },
    ]);
  });
});

describe('events acknowledged before an operation', () => {
  const nd = { 'Content-Type': 'application/x-ndjson' };
  const settle = () => new Promise((r) => setTimeout(r, 2500));

  it('are truncated, deleted and replaced by it, not flushed in after it', async () => {
    expect((await post(`/v0/datasources?name=evops&format=ndjson&schema=${enc('`v` Int32 `json:$.v`')}`)).status).toBe(200);
    expect((await post('/v0/events?name=evops', '{"v":1}\n{"v":2}\n', nd)).status).toBe(202);
    expect((await post('/v0/datasources/evops/truncate')).status).toBe(200);
    expect((await post('/v0/events?name=evops', '{"v":3}\n{"v":4}\n', nd)).status).toBe(202);
    const dry = await form('/v0/datasources/evops/delete', { delete_condition: 'v = 3', dry_run: 'true' });
    expect(dry.body.rows_to_be_deleted).toBe(1);
    expect((await post('/v0/events?name=evops', '{"v":5}\n', nd)).status).toBe(202);
    const del = await form('/v0/datasources/evops/delete', { delete_condition: 'v IN (3, 5)' });
    expect(del.body.rows_affected).toBe(2);
    expect((await post('/v0/events?name=evops', '{"v":6}\n', nd)).status).toBe(202);
    const r = await post(`/v0/datasources?name=evops&mode=replace&format=ndjson&replace_condition=${enc('v >= 6')}`, '{"v":60}\n', nd);
    expect(r.body).toMatchObject({ rows: 1 });
    await settle();
    expect((await rows('SELECT v FROM evops ORDER BY v')).map((x) => x.v)).toEqual([4, 60]);
  });
});

describe('rows delete parameters', () => {
  it('dry_run other than a clear yes or no is a 400 and deletes nothing; yes/on are dry runs', async () => {
    await fresh('dryrun');
    for (const v of ['yes', 'on', 'TRUE', '1']) {
      const r = await form('/v0/datasources/dryrun/delete', { delete_condition: "c = 'ES'", dry_run: v });
      expect(r.body, v).toMatchObject({ dry_run: true, rows_to_be_deleted: 2 });
    }
    const bad = await form('/v0/datasources/dryrun/delete', { delete_condition: "c = 'ES'", dry_run: 'maybe' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'INVALID_PARAMETER' });
    expect(bad.body.error).toMatch(/dry_run/);
    expect((await all('dryrun')).length).toBe(3);
  });

  it('are read from a JSON object or a multipart form as from an urlencoded one', async () => {
    const j = await call(`${srv.url}/v0/datasources/dryrun/delete`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ delete_condition: "c = 'ES'", dry_run: true }) });
    expect(j.status, j.text).toBe(200);
    expect(j.body).toMatchObject({ dry_run: true, rows_to_be_deleted: 2 });
    const fd = new FormData();
    fd.append('delete_condition', "c = 'FR'");
    const m = await call(`${srv.url}/v0/datasources/dryrun/delete`, { method: 'POST', token, body: fd });
    expect(m.status, m.text).toBe(200);
    expect(m.body).toMatchObject({ dry_run: false, rows_affected: 1 });
    const arr = await call(`${srv.url}/v0/datasources/dryrun/delete`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: '[1]' });
    expect(arr.status).toBe(400);
    expect(await all('dryrun')).toEqual(['2026-01-01 ES 1', '2026-01-03 ES 3']);
  });
});

describe('what held up', () => {
  it('a condition that fails while it runs is a 422 and changes nothing (replace and delete)', async () => {
    await fresh('failing');
    const r = await post(`/v0/datasources?name=failing&mode=replace&replace_condition=${enc('throwIf(v = 2) = 0')}`, '2026-01-02,DE,2\nbad,XX,1\n');
    expect(r.status, r.text).toBe(422);
    expect(typeof r.body.error).toBe('string');
    const d = await form('/v0/datasources/failing/delete', { delete_condition: 'throwIf(v = 2) = 0' });
    expect(d.status, d.text).toBe(422);
    expect(await all('failing')).toEqual(['2026-01-01 ES 1', '2026-01-02 FR 2', '2026-01-03 ES 3']);
    expect(await sql('SELECT count() FROM failing_quarantine FORMAT CSV')).toBe('0\n');
  });

  it('conditions reading another workspace, system tables or table functions are refused', async () => {
    for (const cond of ['v IN (SELECT v FROM system.numbers)', "v IN (SELECT number FROM file('x'))", 'v IN (SELECT v FROM other_ws.t)', "v IN (SELECT v FROM esc_quarantine)"]) {
      const r = await form('/v0/datasources/failing/delete', { delete_condition: cond });
      expect(r.status, `${cond}: ${r.text}`).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.body.code).toMatch(/^SQL_/);
    }
    expect((await all('failing')).length).toBe(3);
  });
});

describe('tinybird.datasources_ops_log for /v0/events', () => {
  it('a buffered (no wait) events body refused before it is buffered is logged as an error, as with wait=true', async () => {
    expect((await post(`/v0/datasources?name=evlog&format=ndjson&schema=${enc('`v` Int32 `json:$.v`')}`)).status).toBe(200);
    const nd = { 'Content-Type': 'application/x-ndjson' };
    const refused = [
      await post('/v0/events?name=evlog', 'not gzip', { ...nd, 'Content-Encoding': 'gzip' }),
      await post('/v0/events?name=evlog', '\n\n', nd),
    ];
    for (const r of refused) expect(r.status, r.text).toBe(400);
    const q = "SELECT event_type, result, error FROM tinybird.datasources_ops_log WHERE datasource_name = 'evlog' AND result = 'error' ORDER BY timestamp";
    const deadline = Date.now() + 10_000;
    let got: any[] = [];
    while (Date.now() < deadline && got.length < 2) {
      got = await rows(q);
      await new Promise((res) => setTimeout(res, 150));
    }
    expect(got).toEqual(refused.map((r) => ({ event_type: 'append', result: 'error', error: r.body.error })));
  });
});

describe('concurrent operations (what held up)', () => {
  it('two replaces at once, an append and a delete among them: the result is one replace whole, plus the append unless a replace came after it', async () => {
    await fresh('conc');
    const body = (tag: string) => Array.from({ length: 20_000 }, (_, i) => `2026-02-${String((i % 28) + 1).padStart(2, '0')},${tag},${i}`).join('\n') + '\n';
    const [a, b, app, del] = await Promise.all([
      post('/v0/datasources?name=conc&mode=replace', body('A')),
      post('/v0/datasources?name=conc&mode=replace', body('B')),
      post('/v0/datasources?name=conc&mode=append', '2026-03-01,APP,1\n'),
      form('/v0/datasources/conc/delete', { delete_condition: "c = 'none'" }),
    ]);
    for (const r of [a, b, app, del]) expect(r.status, r.text).toBe(200);
    const groups = Object.fromEntries((await rows('SELECT c, count() AS n FROM conc GROUP BY c')).map((g) => [g.c, Number(g.n)]));
    const replaced = Object.keys(groups).filter((c) => c === 'A' || c === 'B');
    expect(replaced.length).toBe(1);
    expect(groups[replaced[0]!]).toBe(20_000);
    expect(Object.keys(groups).every((c) => c === replaced[0] || c === 'APP')).toBe(true);
  });
});
