/**
 * Ingestion correctness as a demanding client meets it: row counts, quarantine
 * contents, headers, and the events buffer. Real server, real engine, real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { call, startServer, type RunningServer, workspaceApi } from './helpers/server.js';

let srv: RunningServer;
let token: string;

const { sql, rows, post } = workspaceApi(() => srv, () => token);
const ndjson = { 'Content-Type': 'application/x-ndjson' };
const enc = encodeURIComponent;

/** Polls `q` (one row, column c) until it gives `want` or 10 s pass; returns the last value. */
async function eventually(q: string, want: unknown): Promise<unknown> {
  const deadline = Date.now() + 10_000;
  let got: unknown;
  for (;;) {
    got = (await rows(q))[0]?.c;
    if (JSON.stringify(got) === JSON.stringify(want) || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 150));
  }
}

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => { await srv?.stop(); });

describe('NDJSON quarantine rows point at the lines that failed', () => {
  it('a string holding CR or CRLF does not shift the line and raw text of later rejected lines', async () => {
    const schema = enc('`i` Int32 `json:$.i`, `s` String `json:$.s`');
    expect((await post(`/v0/datasources?name=crlines&format=ndjson&schema=${schema}`)).status).toBe(200);
    const lines = [
      '{"i":1,"s":"a\\rb"}',
      '{"i":"bad2","s":"x"}',
      '{"i":3,"s":"c\\r\\nd\\re"}',
      '{"i":"bad4","s":"y"}',
      '{"i":5,"s":"ok"}',
      '{"i":"bad6","s":"z"}',
      '{"i":7,"s":"f\\u000ag\\u000Dh"}',
      '{"i":"bad8","s":"w"}',
    ];
    const r = await post('/v0/datasources?name=crlines&mode=append&format=ndjson', lines.join('\n') + '\n', ndjson);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ rows: 4, quarantine_rows: 4 });
    expect(await rows('SELECT i, s FROM crlines ORDER BY i')).toEqual([{ i: 1, s: 'a\rb' }, { i: 3, s: 'c\r\nd\re' }, { i: 5, s: 'ok' }, { i: 7, s: 'f\ng\rh' }]);
    const q = await rows('SELECT c__line, c__error_column, c__raw, i FROM crlines_quarantine ORDER BY c__line');
    expect(q).toEqual([
      { c__line: 2, c__error_column: ['i'], c__raw: lines[1], i: 'bad2' },
      { c__line: 4, c__error_column: ['i'], c__raw: lines[3], i: 'bad4' },
      { c__line: 6, c__error_column: ['i'], c__raw: lines[5], i: 'bad6' },
      { c__line: 8, c__error_column: ['i'], c__raw: lines[7], i: 'bad8' },
    ]);
  });
});

describe('/v0/events without wait: what is acknowledged is what is stored', () => {
  const schema = enc('`i` Int32 `json:$.i`');

  it('blank lines are not counted as events, and a body of blank lines is refused like with wait=true', async () => {
    expect((await post(`/v0/datasources?name=evblank&format=ndjson&schema=${schema}`)).status).toBe(200);
    const r = await post('/v0/events?name=evblank', '{"i":1}\n\n\r\n   \n{"i":2}\n\n', ndjson);
    expect(r).toMatchObject({ status: 202, body: { successful_rows: 2, quarantined_rows: 0 } });
    const blank = await post('/v0/events?name=evblank', '\n  \n\r\n', ndjson);
    expect(blank).toMatchObject({ status: 400, body: { code: 'EMPTY_BODY' } });
    const waited = await post('/v0/events?name=evblank&wait=true', '\n  \n\r\n', ndjson);
    expect(waited).toMatchObject({ status: 400, body: { code: 'EMPTY_BODY' } });
    expect(await eventually('SELECT count() AS c FROM evblank', 2)).toBe(2);
    // Nothing is left in the buffer to fail its flush over and over (the data source's id file
    // stays). The rows are visible a moment before the flush has removed its segment: polled.
    const dir = path.join(srv.dataDir, 'events', 'local', 'default', 'evblank');
    const left = () => (fs.existsSync(dir) ? fs.readdirSync(dir) : []).filter((f) => f !== '.datasource.json');
    for (let i = 0; i < 100 && left().length; i++) await new Promise((res) => setTimeout(res, 100));
    expect(left()).toEqual([]);
  });

  it('a body that is not UTF-8 is refused before it is acknowledged, and events after it are stored', async () => {
    expect((await post(`/v0/datasources?name=evutf&format=ndjson&schema=${schema}`)).status).toBe(200);
    const bad = Buffer.concat([Buffer.from('{"i":1}\n{"i":"'), Buffer.from([0xff]), Buffer.from('"}\n')]);
    const r = await post('/v0/events?name=evutf', bad, ndjson);
    expect(r).toMatchObject({ status: 400, body: { code: 'INVALID_UTF8', line: 2 } });
    // A character cut between two network reads is not an error.
    const cut = Buffer.from('{"i":2}\n{"i":3,"x":"ü€😀"}\n');
    const stream = new ReadableStream({
      start(c) {
        for (let k = 0; k < cut.length; k++) c.enqueue(cut.subarray(k, k + 1));
        c.close();
      },
    });
    const ok = await call(`${srv.url}/v0/events?name=evutf`, { method: 'POST', token, body: stream, headers: ndjson, duplex: 'half' } as RequestInit);
    expect(ok).toMatchObject({ status: 202, body: { successful_rows: 2 } });
    expect(await eventually('SELECT groupArray(i) AS c FROM (SELECT i FROM evutf ORDER BY i)', [2, 3])).toEqual([2, 3]);
  });

  it('a line over the row limit is refused before it is acknowledged', async () => {
    expect((await post(`/v0/datasources?name=evbig&format=ndjson&schema=${schema}`)).status).toBe(200);
    const big = `{"i":1,"pad":"${'x'.repeat(9 << 20)}"}\n`;
    const r = await post('/v0/events?name=evbig', big, ndjson);
    expect(r).toMatchObject({ status: 400, body: { code: 'ROW_TOO_LARGE', line: 1 } });
    // No limit to raise: the answers say to split the row (a CSV append said "or raise the limit").
    expect(r.body.error).not.toMatch(/raise/);
    const csv = await post('/v0/datasources?name=evbig&mode=append', `1,${'x'.repeat(9 << 20)}\n`, { 'Content-Type': 'text/csv' });
    expect(csv).toMatchObject({ status: 400, body: { code: 'ROW_TOO_LARGE' } });
    expect(csv.body.error).toMatch(/a row may be at most 8 MiB: split it/);
    expect(csv.body.error).not.toMatch(/raise/);
    expect((await post('/v0/events?name=evbig', '{"i":7}\n', ndjson)).status).toBe(202);
    expect(await eventually('SELECT groupArray(i) AS c FROM evbig', [7])).toEqual([7]);
  });

  it('a byte order mark on a buffered body is not part of its first event', async () => {
    expect((await post(`/v0/datasources?name=evbom&format=ndjson&schema=${schema}`)).status).toBe(200);
    // Two bodies in a row are flushed together: the second one's BOM is mid-stream.
    expect((await post('/v0/events?name=evbom', '{"i":1}\n', ndjson)).status).toBe(202);
    expect((await post('/v0/events?name=evbom', '\ufeff{"i":2}\n', ndjson)).status).toBe(202);
    expect(await eventually('SELECT groupArray(i) AS c FROM (SELECT i FROM evbom ORDER BY i)', [1, 2])).toEqual([1, 2]);
    expect(await rows('SELECT count() AS c FROM evbom_quarantine')).toEqual([{ c: 0 }]);
  });
});

describe('CSV headers', () => {
  it('a schema inferred from a header that is not made of identifiers takes that file, and the same header again', async () => {
    const r = await post('/v0/datasources?name=hdrnames', 'user id,Score (pts)\n1,10\n2,20\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body.datasource.schema.columns.map((c: { name: string }) => c.name)).toEqual(['user_id', 'Score_pts']);
    expect(r.body.rows).toBe(2);
    const again = await post('/v0/datasources?name=hdrnames&mode=append', '\ufeff"user id", Score (pts)\r\n3,30\r\n');
    expect(again.status, again.text).toBe(200);
    expect(again.body).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT user_id AS u, Score_pts AS s FROM hdrnames ORDER BY u')).toEqual([{ u: 1, s: 10 }, { u: 2, s: 20 }, { u: 3, s: 30 }]);
    // A header that names other columns is still refused.
    expect(await post('/v0/datasources?name=hdrnames&mode=append', 'uid,score\n4,40\n')).toMatchObject({ status: 400, body: { code: 'HEADER_MISMATCH' } });
  });

  it('the header of a file of text columns is not stored as a row', async () => {
    const r = await post('/v0/datasources?name=hdrtext', 'first name,last-name\nann,lee\nbob,ray\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows).toBe(2);
    expect(await rows('SELECT first_name AS f FROM hdrtext ORDER BY f')).toEqual([{ f: 'ann' }, { f: 'bob' }]);
    const again = await post('/v0/datasources?name=hdrtext&mode=append', 'first name,last-name\ncy,doe\n');
    expect(again.body).toMatchObject({ rows: 1, quarantine_rows: 0 });
    expect(await rows('SELECT count() AS c FROM hdrtext')).toEqual([{ c: 3 }]);
  });
});

describe('creating one name from several requests at once', () => {
  it('one create wins, the others answer 409, and the winner keeps its table and rows', async () => {
    const body = 'a,b\n1,x\n2,y\n';
    const all = await Promise.all(Array.from({ length: 4 }, () => post('/v0/datasources?name=racing', body)));
    const statuses = all.map((r) => r.status).sort();
    expect(statuses, all.map((r) => r.text).join('\n')).toEqual([200, 409, 409, 409]);
    for (const r of all) if (r.status === 409) expect(r.body.code).toBe('ALREADY_EXISTS');
    expect(await rows('SELECT count() AS c FROM racing')).toEqual([{ c: 2 }]);
    const info = await call(`${srv.url}/v0/datasources/racing`, { token });
    expect(info.body.statistics.row_count).toBe(2);
  });
});

describe('gzip files sent as they are (no Content-Encoding)', () => {
  const gz = (s: string) => zlib.gzipSync(Buffer.from(s));
  const csv = Array.from({ length: 50 }, (_, i) => `${i},v${i}`).join('\n') + '\n';

  it('are read uncompressed: raw body, multipart field, create with inference, events', async () => {
    expect((await post(`/v0/datasources?name=gzraw&schema=${enc('a Int32, b String')}`)).status).toBe(200);
    const raw = await post('/v0/datasources?name=gzraw&mode=append', gz(csv));
    expect(raw.status, raw.text).toBe(200);
    expect(raw.body).toMatchObject({ rows: 50, quarantine_rows: 0 });
    const fd = new FormData();
    fd.set('csv', new Blob([gz(csv)]), 'rows.csv.gz');
    const multi = await call(`${srv.url}/v0/datasources?name=gzraw&mode=append`, { method: 'POST', token, body: fd });
    expect(multi.body).toMatchObject({ rows: 50, quarantine_rows: 0 });
    expect(await rows('SELECT count() AS c, sum(a) AS s FROM gzraw')).toEqual([{ c: 100, s: 2 * 1225 }]);
    const created = await post('/v0/datasources?name=gzinfer', gz('id,name\n1,x\n2,y\n'));
    expect(created.status, created.text).toBe(200);
    expect(created.body.datasource.schema.columns.map((c: { name: string }) => c.name)).toEqual(['id', 'name']);
    expect(created.body.rows).toBe(2);
    expect((await post(`/v0/datasources?name=gzev&format=ndjson&schema=${enc('`i` Int32 `json:$.i`')}`)).status).toBe(200);
    expect(await post('/v0/events?name=gzev&wait=true', gz('{"i":1}\n{"i":2}\n'), ndjson)).toMatchObject({ status: 200, body: { successful_rows: 2, quarantined_rows: 0 } });
    expect(await post('/v0/events?name=gzev', gz('{"i":3}\n'), ndjson)).toMatchObject({ status: 202, body: { successful_rows: 1 } });
    expect(await eventually('SELECT groupArray(i) AS c FROM (SELECT i FROM gzev ORDER BY i)', [1, 2, 3])).toEqual([1, 2, 3]);
  });

  it('a cut gzip file is refused with a 400 that says so, and nothing is stored', async () => {
    expect((await post(`/v0/datasources?name=gzcut&schema=${enc('a Int32, b String')}`)).status).toBe(200);
    const r = await post('/v0/datasources?name=gzcut&mode=append', gz(csv).subarray(0, 60));
    expect(r).toMatchObject({ status: 400, body: { code: 'BAD_REQUEST' } });
    expect(r.body.error).toMatch(/gzip/);
    expect(await rows('SELECT count() AS c FROM gzcut')).toEqual([{ c: 0 }]);
    expect(await rows('SELECT count() AS c FROM gzcut_quarantine')).toEqual([{ c: 0 }]);
  });
});

describe('multipart fields after the file', () => {
  it('a replace_condition sent after the file fails the request instead of turning it into a full replace', async () => {
    expect((await post(`/v0/datasources?name=mplate&schema=${enc('a Int32, c String')}`)).status).toBe(200);
    expect((await post('/v0/datasources?name=mplate&mode=append', '1,es\n2,fr\n')).status).toBe(200);
    const late = new FormData();
    late.append('csv', new Blob(['9,es\n']), 'r.csv');
    late.append('replace_condition', "c = 'es'");
    const r = await call(`${srv.url}/v0/datasources?name=mplate&mode=replace`, { method: 'POST', token, body: late });
    expect(r).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(r.body.error).toMatch(/replace_condition/);
    expect(await rows('SELECT a, c FROM mplate ORDER BY a')).toEqual([{ a: 1, c: 'es' }, { a: 2, c: 'fr' }]);
    // Before the file it is used; fields a client adds for itself after the file are ignored.
    const early = new FormData();
    early.append('replace_condition', "c = 'es'");
    early.append('csv', new Blob(['9,es\n']), 'r.csv');
    early.append('from', 'cli');
    const ok = await call(`${srv.url}/v0/datasources?name=mplate&mode=replace`, { method: 'POST', token, body: early });
    expect(ok.status, ok.text).toBe(200);
    expect(await rows('SELECT a, c FROM mplate ORDER BY a')).toEqual([{ a: 2, c: 'fr' }, { a: 9, c: 'es' }]);
  });

  it('a name sent after the file is a 400 saying where it goes (it said only "name is required")', async () => {
    const late = new FormData();
    late.append('csv', new Blob(['1,x\n']), 'r.csv');
    late.append('name', 'mplate_late');
    const r = await call(`${srv.url}/v0/datasources`, { method: 'POST', token, body: late });
    expect(r).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(r.body.error).toMatch(/name is required: give it in the URL \(\?name=\.\.\.\) or as a multipart field before the file/);
    expect((await call(`${srv.url}/v0/datasources/mplate_late`, { token })).status).toBe(404);
  });
});

describe('tinybird.datasources_ops_log', () => {
  it('a refused /v0/events?wait=true append is logged as an error, like a refused /v0/datasources append', async () => {
    expect((await post(`/v0/datasources?name=evops&format=ndjson&schema=${enc('`i` Int32 `json:$.i`')}`)).status).toBe(200);
    const bad = Buffer.concat([Buffer.from('{"i":1}\n{"i":"'), Buffer.from([0xfe]), Buffer.from('"}\n')]);
    expect(await post('/v0/events?name=evops&wait=true', bad, ndjson)).toMatchObject({ status: 400, body: { code: 'INVALID_UTF8' } });
    expect(await post('/v0/events?name=evops&wait=true', '{"i":2}\n{"i":"x"}\n', ndjson)).toMatchObject({ status: 200, body: { successful_rows: 1, quarantined_rows: 1 } });
    const q = "SELECT groupArray((result, rows, rows_quarantine)) AS c FROM (SELECT * FROM tinybird.datasources_ops_log WHERE datasource_name = 'evops' AND event_type = 'append' ORDER BY timestamp)";
    expect(await eventually(q, [['error', 0, 0], ['ok', 1, 1]])).toEqual([['error', 0, 0], ['ok', 1, 1]]);
    expect((await rows("SELECT error FROM tinybird.datasources_ops_log WHERE datasource_name = 'evops' AND result = 'error'"))[0].error).toMatch(/UTF-8/);
  });
});

describe('NDJSON numbers into text columns', () => {
  it('keep the text they were sent with (1.50, 1e21, -0), in scalars, arrays and JSON kept as text', async () => {
    const schema = enc('`i` Int32 `json:$.i`, `s` String `json:$.s`, `l` LowCardinality(Nullable(String)) `json:$.l`, `a` Array(String) `json:$.a`');
    expect((await post(`/v0/datasources?name=numtext&format=ndjson&schema=${schema}`)).status).toBe(200);
    const body = [
      '{"i":1,"s":1.50,"l":{"x":1.0,"y":[2e3]},"a":[1.50,"x"]}',
      '{"i":2,"s":1e21,"l":-0,"a":[]}',
      '{"i":1e1,"s":true,"l":null,"a":[]}',
      '{"i":"x","s":0.10,"l":null,"a":[]}',
    ].join('\n') + '\n';
    const r = await post('/v0/datasources?name=numtext&mode=append&format=ndjson', body, ndjson);
    expect(r.body).toMatchObject({ rows: 3, quarantine_rows: 1 });
    expect(await rows('SELECT i, s, l, a FROM numtext ORDER BY i')).toEqual([
      { i: 1, s: '1.50', l: '{"x":1.0,"y":[2e3]}', a: ['1.50', 'x'] },
      { i: 2, s: '1e21', l: '-0', a: [] },
      { i: 10, s: 'true', l: null, a: [] },
    ]);
    // The quarantine keeps the values as sent too.
    expect(await rows('SELECT i, s FROM numtext_quarantine')).toEqual([{ i: 'x', s: '0.10' }]);
  });
});

describe('NDJSON null and missing values', () => {
  it('an explicit null is NULL in a Nullable column with a DEFAULT; a missing path is the DEFAULT', async () => {
    const schema = enc('`id` Int32 `json:$.id`, `n` Nullable(Int32) DEFAULT 9 `json:$.n`, `s` LowCardinality(Nullable(String)) DEFAULT \'d\' `json:$.s`, `z` Int32 DEFAULT 7 `json:$.z`');
    const created = await post(`/v0/datasources?name=nulls&format=ndjson&schema=${schema}`);
    expect(created.status, created.text).toBe(200);
    const body = ['{"id":1,"n":null,"s":null,"z":null}', '{"id":2}', '{"id":3,"n":5,"s":"x","z":1}'].join('\n') + '\n';
    const r = await post('/v0/datasources?name=nulls&mode=append&format=ndjson', body, ndjson);
    expect(r.body).toMatchObject({ rows: 3, quarantine_rows: 0 });
    expect(await rows('SELECT id, n, s, z FROM nulls ORDER BY id')).toEqual([
      { id: 1, n: null, s: null, z: 7 }, // z cannot hold NULL: its DEFAULT
      { id: 2, n: 9, s: 'd', z: 7 },
      { id: 3, n: 5, s: 'x', z: 1 },
    ]);
  });
});

describe('schemas the engine refuses', () => {
  it('a DEFAULT expression or sorting key the engine cannot take is a 400 that names it, without Roost\'s own statement', async () => {
    for (const [schema, key, words] of [
      ['a Int32 DEFAULT nosuchfunction(1)', '', /nosuchfunction/i],
      ['a Int32 DEFAULT 9 garbage', '', /syntax/i],
      ['a Int32, s String', '&engine_sorting_key=nosuchcol', /nosuchcol/],
    ] as const) {
      const r = await post(`/v0/datasources?name=refused_schema&schema=${enc(schema)}${key}`);
      expect(r.status, r.text).toBe(400);
      expect(r.body.code).toBe('SCHEMA_SYNTAX');
      expect(r.body.error).toMatch(words);
      expect(r.body.error).not.toMatch(/ENGINE|non_replicated|ws_[a-z]+_[0-9a-f]{8}/);
      // Nothing stays behind: the name is free.
      expect((await call(`${srv.url}/v0/datasources/refused_schema`, { token })).status).toBe(404);
    }
  });
});

describe('NDJSON numbers into DateTime columns', () => {
  it('are seconds since the epoch, as ClickHouse reads them (fractions for DateTime64)', async () => {
    const schema = enc("`id` Int32 `json:$.id`, `t` DateTime `json:$.t`, `m` DateTime('UTC') `json:$.t`, `t3` DateTime64(3) `json:$.t3`");
    const created = await post(`/v0/datasources?name=epochs&format=ndjson&schema=${schema}`);
    expect(created.status, created.text).toBe(200);
    const body = [
      '{"id":1,"t":1700000000,"t3":1700000000.123}',
      '{"id":2,"t":0,"t3":-1.5}',
      '{"id":3,"t":1.7e9,"t3":"2023-11-14 22:13:20.5"}',
      '{"id":4,"t":-1,"t3":0}', // before 1970: not a DateTime
      '{"id":5,"t":99999999999,"t3":0}', // after 2106
    ].join('\n') + '\n';
    const r = await post('/v0/datasources?name=epochs&mode=append&format=ndjson', body, ndjson);
    expect(r.body).toMatchObject({ rows: 3, quarantine_rows: 2 });
    expect(await rows("SELECT id, toString(t) AS t, toUnixTimestamp(m) AS m, toString(t3) AS t3 FROM epochs ORDER BY id")).toEqual([
      { id: 1, t: '2023-11-14 22:13:20', m: 1700000000, t3: '2023-11-14 22:13:20.123' },
      { id: 2, t: '1970-01-01 00:00:00', m: 0, t3: '1969-12-31 23:59:58.500' },
      { id: 3, t: '2023-11-14 22:13:20', m: 1700000000, t3: '2023-11-14 22:13:20.500' },
    ]);
    // The quarantine keeps the numbers as sent.
    expect(await rows('SELECT t FROM epochs_quarantine ORDER BY t')).toEqual([{ t: '-1' }, { t: '99999999999' }]);
  });
});

describe('IPv4 and IPv6 columns', () => {
  it('CSV and NDJSON addresses are stored as the engine reads them; bad ones are quarantined; a missing path is the zero address', async () => {
    const schema = enc('`id` Int32 `json:$.id`, `v4` IPv4 `json:$.v4`, `v6` IPv6 `json:$.v6`, `n6` Nullable(IPv6) `json:$.n6`');
    const created = await post(`/v0/datasources?name=ips&schema=${schema}`);
    expect(created.status, created.text).toBe(200);
    const csv = '1,10.0.0.1,2001:db8::1,\n2,255.255.255.255,1.2.3.4,::1\n3,256.0.0.1,::,\n4,1.2.3.4,1::2::3,\n';
    expect((await post('/v0/datasources?name=ips&mode=append', csv)).body).toMatchObject({ rows: 2, quarantine_rows: 2 });
    const nd = '{"id":5,"v4":"192.168.1.1","v6":"::ffff:10.1.2.3","n6":null}\n{"id":6}\n';
    expect((await post('/v0/datasources?name=ips&mode=append&format=ndjson', nd, { 'Content-Type': 'application/x-ndjson' })).body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    expect(await rows('SELECT id, toString(v4) AS v4, toString(v6) AS v6, toString(n6) AS n6 FROM ips ORDER BY id')).toEqual([
      { id: 1, v4: '10.0.0.1', v6: '2001:db8::1', n6: null },
      { id: 2, v4: '255.255.255.255', v6: '::ffff:1.2.3.4', n6: '::1' },
      { id: 5, v4: '192.168.1.1', v6: '::ffff:10.1.2.3', n6: null },
      { id: 6, v4: '0.0.0.0', v6: '::', n6: null },
    ]);
    expect(await rows('SELECT c__error FROM ips_quarantine ORDER BY c__line')).toEqual([{ c__error: ['not an IP address'] }, { c__error: ['not an IP address'] }]);
  });
});

describe('engine errors of data source operations', () => {
  it('are told in the workspace\'s names, in the answer and in datasources_ops_log', async () => {
    expect((await post(`/v0/datasources?name=named_err&schema=${enc('a Int32')}`)).status).toBe(200);
    const r = await call(`${srv.url}/v0/datasources/named_err/delete`, { method: 'POST', token, body: new URLSearchParams({ delete_condition: 'nosuchcol = 1' }) });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.body.error).toMatch(/nosuchcol/);
    expect(r.body.error).not.toMatch(/ws_[a-z0-9]+_[0-9a-f]{8}/);
    let logged: Array<{ error: string }> = [];
    for (let i = 0; i < 50 && !logged.length; i++) {
      await new Promise((res) => setTimeout(res, 100));
      logged = await rows("SELECT error FROM tinybird.datasources_ops_log WHERE datasource_name = 'named_err' AND result = 'error'");
    }
    expect(logged.length).toBe(1);
    expect(logged[0]!.error).toMatch(/nosuchcol/);
    expect(logged[0]!.error).not.toMatch(/ws_[a-z0-9]+_[0-9a-f]{8}/);
  });
});
