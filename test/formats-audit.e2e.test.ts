/**
 * Output formats audit: pipe endpoints (`.json`, `.csv`, `.ndjson`, `.parquet`, with and without
 * `q=`) and `/v0/sql` (`FORMAT ...`) against what the same engine (chdb, in this process) writes
 * for the same SQL, byte for byte where it can be, and against Tinybird's documented requests.
 *
 * Differences allowed, each with its reason:
 * - JSON: `rows_before_limit_at_least` is added when ClickHouse leaves it out (no LIMIT), with the
 *   rows sent, a true lower bound (README "Pipes and endpoints"; Tinybird always answers it).
 * - JSON: `statistics.elapsed` is a time; `rows_read`/`bytes_read` of a result over the cell's
 *   2 MiB buffered cap may be 0 (chdb's streaming call does not always report them;
 *   docs/decisions.md "rows_before_limit_at_least on the streaming path").
 * - An endpoint's `.csv` is ClickHouse's CSVWithNames, `.ndjson` JSONEachRow, `.json` JSON.
 * - NDJSON is JSONEachRow with `output_format_json_validate_utf8 = 1`: bytes of a String that are
 *   not UTF-8 are U+FFFD (as in JSON), so every line parses as JSON.
 * - Parquet files are compared by what chdb reads back from them (row groups may differ).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { Session } from 'chdb';
import { call, createTenant, startServer, tempDir, type RunningServer } from './helpers/server.js';
import { requireClickHouse, startClickHouse, type RunningClickHouse } from './helpers/clickhouse-server.js';

let srv: RunningServer;
let token: string;
let chdb: Session;
let dir: string;

/** Every type a column can have, with the values that are hard to write. */
const TYPES_SQL = `SELECT number AS n,
 toInt8(-128) AS i8, toUInt8(255) AS u8, toInt16(-32768) AS i16, toUInt16(65535) AS u16, toInt32(-2147483648) AS i32, toUInt32(4294967295) AS u32,
 toInt64(-9223372036854775808) AS i64, toUInt64(18446744073709551615) AS u64, toInt64(9007199254740993) AS big53,
 toInt128('-170141183460469231731687303715884105728') AS i128, toUInt128('340282366920938463463374607431768211455') AS u128,
 toInt256('-57896044618658097711785492504343953926634992332820282019728792003956564819968') AS i256,
 toUInt256('115792089237316195423570985008687907853269984665640564039457584007913129639935') AS u256,
 toFloat32(1.1) AS f32, toFloat64(0.1) AS f64, nan AS fnan, inf AS finf, -inf AS fninf, -0. AS fneg0, 1e308 AS fbig, 5e-324 AS fsub,
 toDecimal32('-9.9999', 4) AS d32, toDecimal64('123456789012.345678', 6) AS d64,
 toDecimal128('-12345678901234567890123456.789012345678', 12) AS d128, toDecimal256('1234567890123456789012345678901234567890.1234567890', 10) AS d256,
 number % 2 = 0 AS b, concat('q"u''o\\\\te\\nnl\\ttab\\rcr\\0nul\\x01ctl\\x7f é 😀 \\xff\\xfe ', toString(number)) AS s, toFixedString('ab', 5) AS fs,
 toDate('2026-11-29') AS d, toDate32('1900-01-01') AS d32x, toDateTime('2026-11-29 01:02:03', 'UTC') AS dt, toDateTime('2026-11-29 01:02:03', 'Asia/Kolkata') AS dtz,
 toDateTime64('2026-11-29 01:02:03.123', 3, 'UTC') AS dt3, toDateTime64('2026-11-29 01:02:03.123456', 6, 'America/New_York') AS dt6,
 toDateTime64('1925-11-29 01:02:03.123456789', 9, 'UTC') AS dt9,
 toUUID('61f0c404-5cb3-11e7-907b-a6006ad3dba0') AS uuid, toIPv4('1.2.3.4') AS ip4, toIPv6('2001:db8::1') AS ip6,
 CAST('b', 'Enum8(''a'' = 1, ''b'' = -2)') AS e8, CAST('y', 'Enum16(''x'' = 1000, ''y'' = -1000)') AS e16, toLowCardinality('lc') AS lc,
 if(number = 1, NULL, number) AS nn, if(number = 1, NULL, 'x') AS ns, CAST(NULL AS Nullable(String)) AS allnull,
 [1, 2, 3] AS arr, [[1], [], [2, 3]] AS arr2, [NULL, 'a', 'b"c'] AS arrn, ['\\n', '\\t'] AS arrs, [toInt64(9007199254740993)] AS arr64,
 map('k', 1, 'k"2', 2) AS m, CAST((1, 'x'), 'Tuple(a UInt8, b String)') AS nt, (1, 'a') AS t, [toDecimal64('1.50', 2)] AS arrd
FROM numbers(3)`;

const auth = () => ({ Authorization: `Bearer ${token}` });
const get = (p: string) => fetch(`${srv.url}${p}`, { headers: auth() });
const bytesOf = async (r: Response) => Buffer.from(await r.arrayBuffer());
const enc = encodeURIComponent;

/** What chdb itself writes for `sql` in `format` (NDJSON with UTF-8 validated, as Roost asks it). */
async function engine(sql: string, format: string): Promise<Buffer> {
  const r = await chdb.queryAsync(format === 'JSONEachRow' ? `${sql} SETTINGS output_format_json_validate_utf8 = 1` : sql, { format });
  return Buffer.from(r.bytes());
}

/**
 * Roost's answer in `format` is the engine's own (JSON up to the allowed differences, see
 * jsonAsEngine; the other formats byte for byte). `big`: results too large to print on failure.
 */
function expectAsEngine(format: string, got: Buffer, want: Buffer, label: string, big = false): void {
  if (format === 'JSON') {
    const n = jsonAsEngine(got, want, big);
    if (big) expect(n.got === n.want, label).toBe(true);
    else expect(n.got, label).toBe(n.want);
  } else {
    expect(got.equals(want), label).toBe(true);
  }
}

/**
 * A JSON result as Roost sends it, with the allowed differences to chdb's taken out (see the top
 * of the file): the added `rows_before_limit_at_least`, elapsed, and on `streamed` results the
 * read counters. Checks the added line says the rows sent.
 */
function jsonAsEngine(got: Buffer, want: Buffer, streamed = false): { got: string; want: string } {
  let g = got.toString('latin1');
  let w = want.toString('latin1');
  if (!/"rows_before_limit_at_least"/.test(w)) {
    const rows = /\n\t"rows": (\d+),\n/.exec(g)?.[1];
    expect(g).toContain(`\t"rows_before_limit_at_least": ${rows},\n\n`);
    g = g.replace(/\t"rows_before_limit_at_least": \d+,\n\n/, '');
  }
  const el = (s: string) => s.replace(/"elapsed": [0-9.eE+-]+/, '"elapsed": 0');
  g = el(g);
  w = el(w);
  if (streamed) {
    const rb = (s: string) => s.replace(/"rows_read": \d+,\n\t\t"bytes_read": \d+/, '"rows_read": 0,\n\t\t"bytes_read": 0');
    g = rb(g);
    w = rb(w);
  }
  return { got: g, want: w };
}

/** A GET over HTTP/1.0 (no chunked framing; the response ends when the connection closes). */
function http10(p: string): Promise<{ head: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const u = new URL(srv.url);
    const sock = net.connect(Number(u.port), u.hostname, () => {
      sock.write(`GET ${p} HTTP/1.0\r\nHost: ${u.host}\r\nAuthorization: Bearer ${token}\r\n\r\n`);
    });
    const parts: Buffer[] = [];
    sock.on('data', (b: Buffer) => parts.push(b));
    sock.on('error', reject);
    sock.on('close', () => {
      const all = Buffer.concat(parts);
      const at = all.indexOf('\r\n\r\n');
      resolve({ head: all.subarray(0, at).toString('latin1'), body: all.subarray(at + 4) });
    });
  });
}

async function createPipe(name: string, sql: string): Promise<void> {
  const r = await call(`${srv.url}/v0/pipes`, {
    method: 'POST', token, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name, nodes: [{ name: `${name}_0`, sql, type: 'endpoint' }] }),
  });
  if (r.status !== 200) throw new Error(`create ${name}: ${r.status} ${r.text}`);
}

/** Rows of a Parquet file as chdb reads them back, with its column types. */
async function parquetRows(file: Buffer): Promise<{ types: string; rows: string }> {
  const f = path.join(dir, `r${Math.random().toString(36).slice(2)}.parquet`);
  fs.writeFileSync(f, file);
  const types = (await engine(`DESCRIBE file('${f}', Parquet)`, 'TSV')).toString();
  const rows = (await engine(`SELECT * FROM file('${f}', Parquet)`, 'JSONEachRow')).toString();
  return { types, rows };
}

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  dir = tempDir('roost-formats-');
  chdb = new Session(path.join(dir, 'chdb'));
  await createPipe('types', TYPES_SQL);
}, 90_000);
afterAll(async () => {
  await srv?.stop();
  chdb?.cleanup?.();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('every column type, as the engine writes it', () => {
  for (const [ext, format] of [['json', 'JSON'], ['csv', 'CSVWithNames'], ['ndjson', 'JSONEachRow']] as const) {
    it(`.${ext} is the engine's ${format}, with and without q=`, async () => {
      const r = await get(`/v0/pipes/types.${ext}`);
      expect(r.status).toBe(200);
      const got = await bytesOf(r);
      const want = await engine(TYPES_SQL, format);
      expectAsEngine(format, got, want, got.toString('latin1'));
      const q = 'SELECT n, s, u64, i256, d256, fnan, dt6, arrn, m, nt FROM _ WHERE n != 1 ORDER BY n DESC';
      const rq = await get(`/v0/pipes/types.${ext}?q=${enc(q)}`);
      expect(rq.status).toBe(200);
      const gotQ = await bytesOf(rq);
      const wantQ = await engine(q.replace('FROM _', `FROM (${TYPES_SQL})`), format);
      expectAsEngine(format, gotQ, wantQ, gotQ.toString('latin1'));
    });
  }

  it('.parquet reads back as the engine\'s own Parquet does (types and values), with and without q=', async () => {
    const r = await get('/v0/pipes/types.parquet');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/vnd.apache.parquet');
    const got = await parquetRows(await bytesOf(r));
    const want = await parquetRows(await engine(TYPES_SQL, 'Parquet'));
    expect(got.types).toBe(want.types);
    expect(got.rows).toBe(want.rows);
    const q = 'SELECT n, s, u256, dt9 FROM _ ORDER BY n DESC LIMIT 2';
    const rq = await get(`/v0/pipes/types.parquet?q=${enc(q)}`);
    expect(rq.status).toBe(200);
    const gotQ = await parquetRows(await bytesOf(rq));
    expect(gotQ).toEqual(await parquetRows(await engine(q.replace('FROM _', `FROM (${TYPES_SQL})`), 'Parquet')));
  });

  it('/v0/sql in every FORMAT it allows is the engine\'s output', async () => {
    for (const format of ['JSON', 'CSV', 'CSVWithNames', 'TSV', 'JSONEachRow']) {
      const r = await get(`/v0/sql?q=${enc(`${TYPES_SQL} FORMAT ${format}`)}`);
      expect(r.status).toBe(200);
      const got = await bytesOf(r);
      const want = await engine(TYPES_SQL, format);
      expectAsEngine(format, got, want, `${format}: ${got.toString('latin1')}`);
    }
    // No FORMAT: JSON (API.md).
    const dflt = await bytesOf(await get(`/v0/sql?q=${enc(TYPES_SQL)}`));
    const n = jsonAsEngine(dflt, await engine(TYPES_SQL, 'JSON'));
    expect(n.got).toBe(n.want);
  });

  it('NDJSON of a String that is not UTF-8 is still JSON (U+FFFD, as in .json), not raw bytes', async () => {
    const r = await get(`/v0/sql?q=${enc("SELECT substring('héllo', 1, 2) AS s FORMAT JSONEachRow")}`);
    expect(r.status).toBe(200);
    const got = await bytesOf(r);
    expect(got.toString('utf8')).toBe('{"s":"h\uFFFD"}\n');
    expect(JSON.parse(got.toString('utf8'))).toEqual({ s: 'h\uFFFD' });
  });

  it('rows_before_limit_at_least is the engine\'s with a LIMIT, the rows sent without', async () => {
    for (const sql of [
      'SELECT number FROM numbers(1000) WHERE number % 3 = 0 LIMIT 5',
      'SELECT number FROM numbers(1000) ORDER BY number DESC LIMIT 3 OFFSET 2',
      'SELECT number FROM numbers(10) WHERE number > 100 LIMIT 5',
      'SELECT number FROM numbers(10) WHERE number > 100',
      'SELECT number FROM numbers(7)',
    ]) {
      const got = await bytesOf(await get(`/v0/sql?q=${enc(sql)}`));
      const n = jsonAsEngine(got, await engine(sql, 'JSON'));
      expect(n.got, sql).toBe(n.want);
    }
    // Over an endpoint's result: the LIMIT of q counts.
    const body = await (await get(`/v0/pipes/types.json?q=${enc('SELECT n FROM _ ORDER BY n LIMIT 1')}`)).json();
    expect(body).toMatchObject({ rows: 1, rows_before_limit_at_least: 3, data: [{ n: 0 }] });
    expect(Object.keys(body.statistics)).toEqual(['elapsed', 'rows_read', 'bytes_read']);
  });
});

describe('.prometheus (Tinybird\'s Prometheus endpoint format)', () => {
  it('is the engine\'s Prometheus text format, with its content type; the call log counts samples, not # lines', async () => {
    const sql = "SELECT 'http_requests_total' AS name, toFloat64(number + 1) AS value, 'Requests served' AS help, 'counter' AS type, map('code', toString(200 + number)) AS labels FROM numbers(3)";
    await createPipe('prom', sql);
    const r = await call(`${srv.url}/v0/pipes/prom.prometheus`, { token, headers: { 'X-Request-Id': 'prom-call' } });
    expect(r.status, r.text).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.text).toBe((await engine(sql, 'Prometheus')).toString('utf8'));
    expect(r.text).toContain('# TYPE http_requests_total counter');
    expect(r.text).toContain('http_requests_total{code="201"} 2');
    // A result without the columns the format needs: the engine's 4xx saying so, not a 5xx.
    await createPipe('notprom', 'SELECT 1 AS x');
    const bad = await call(`${srv.url}/v0/pipes/notprom.prometheus`, { token });
    expect(bad.status, bad.text).toBeGreaterThanOrEqual(400);
    expect(bad.status, bad.text).toBeLessThan(500);
    const logged = async () => (await call(`${srv.url}/v0/sql?q=${enc("SELECT result_rows FROM tinybird.pipe_stats_rt WHERE request_id = 'prom-call' FORMAT JSON")}`, { token })).body.data;
    await expect.poll(logged, { timeout: 10_000 }).toEqual([{ result_rows: 3 }]);
  });
});

describe('large results stream whole', () => {
  const BIG = "SELECT number, toString(number) AS s, if(number % 7 = 0, NULL, number) AS nn, [number, 1] AS a, 'x\"y\\nz' AS q FROM numbers(300000)";

  it('each text format is the engine\'s output byte for byte', async () => {
    for (const format of ['JSON', 'CSVWithNames', 'TSV', 'JSONEachRow', 'CSV']) {
      const got = await bytesOf(await get(`/v0/sql?q=${enc(`${BIG} FORMAT ${format}`)}`));
      const want = await engine(BIG, format);
      expect(want.length).toBeGreaterThan(2 * 1024 * 1024);
      expectAsEngine(format, got, want, format, true);
    }
  });

  it('a client that reads slowly gets the whole result', async () => {
    const sql = 'SELECT number, toString(number) AS s FROM numbers(300000)';
    const got = await new Promise<Buffer>((resolve, reject) => {
      const req = http.get(`${srv.url}/v0/sql?q=${enc(`${sql} FORMAT JSONEachRow`)}`, { headers: auth() }, (res) => {
        const parts: Buffer[] = [];
        let paused = 0;
        res.on('data', (b: Buffer) => {
          parts.push(b);
          // Stops reading three times for 400 ms: the server must wait, not drop or end early.
          if (paused < 3 && parts.length % 20 === 1) {
            paused++;
            res.pause();
            setTimeout(() => res.resume(), 400);
          }
        });
        res.on('end', () => resolve(Buffer.concat(parts)));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    expect(got.equals(await engine(sql, 'JSONEachRow'))).toBe(true);
  });

  it('a large Parquet result is one whole file', async () => {
    const sql = 'SELECT number, toString(number) AS s FROM numbers(400000)';
    const got = await bytesOf(await get(`/v0/sql?q=${enc(`${sql} FORMAT Parquet`)}`));
    const f = path.join(dir, 'big.parquet');
    fs.writeFileSync(f, got);
    expect((await engine(`SELECT count(), sum(number), countIf(s != toString(number)) FROM file('${f}', Parquet)`, 'CSV')).toString()).toBe('400000,79999800000,0\n');
  });

  it('an error on a late row cuts the response: never a complete-looking 200', async () => {
    const late = "SELECT number, throwIf(number = 450000, 'late boom') AS x, repeat('a', 20) AS s FROM numbers(500000)";
    for (const format of ['JSON', 'CSVWithNames', 'CSV', 'TSV', 'JSONEachRow']) {
      const r = await get(`/v0/sql?q=${enc(`${late} FORMAT ${format}`)}`);
      expect(r.status, format).toBe(200);
      await expect(r.arrayBuffer(), format).rejects.toThrow();
    }
    // HTTP/1.0 (nginx's default to its upstreams) has no chunks: a cut reads as the end, so the
    // error is written into the body, as ClickHouse's HTTP interface does.
    for (const format of ['CSV', 'TSV', 'JSONEachRow', 'JSON']) {
      const raw = await http10(`/v0/sql?q=${enc(`${late} FORMAT ${format}`)}`);
      expect(raw.head, format).toMatch(/^HTTP\/1\.1 200 /);
      expect(raw.body.toString('latin1'), format).toMatch(/\nCode: 395\. Roost: the result above is incomplete: [^\n]*late boom[^\n]*\n$/);
    }
    const whole = await http10(`/v0/sql?q=${enc('SELECT number FROM numbers(400000) FORMAT CSV')}`);
    expect(whole.body.equals(await engine('SELECT number FROM numbers(400000)', 'CSV'))).toBe(true);
    // Parquet is written whole before its first byte: the error is the answer.
    const p = await get(`/v0/sql?q=${enc(`${late} FORMAT Parquet`)}`);
    expect(p.status).toBe(422);
    expect((await p.json()).clickhouse_code).toBe(395);
  });
});

describe('requests as Tinybird documents them', () => {
  it('/v0/sql takes raw SQL sent as a form body (curl --data "SELECT ...")', async () => {
    // curl --data sends Content-Type application/x-www-form-urlencoded with the SQL as it is.
    const r = await call(`${srv.url}/v0/sql`, {
      method: 'POST', token, headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'SELECT count() AS c FROM numbers(10) WHERE number >= 5 AND number % 2 = 1 FORMAT CSV',
    });
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe('3\n');
    // A real form still works, and its other fields are not taken for SQL.
    const form = await call(`${srv.url}/v0/sql`, { method: 'POST', token, body: new URLSearchParams({ q: 'SELECT 7 AS x FORMAT CSV', from: 'ui', 'a b': '1' }) });
    expect(form.text).toBe('7\n');
  });

  it('an endpoint takes the SQL over its result as a raw body (curl --data "select count() from _")', async () => {
    const r = await call(`${srv.url}/v0/pipes/types.csv`, {
      method: 'POST', token, headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'select count() AS c from _ where n != 1',
    });
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe('"c"\n2\n');
    const plain = await call(`${srv.url}/v0/pipes/types.ndjson`, { method: 'POST', token, headers: { 'Content-Type': 'text/plain' }, body: 'SELECT max(n) AS m FROM _' });
    expect(plain.text).toBe('{"m":2}\n');
    // Form parameters still are parameters.
    const form = await call(`${srv.url}/v0/pipes/types.ndjson`, { method: 'POST', token, body: new URLSearchParams({ q: 'SELECT min(n) AS m FROM _' }) });
    expect(form.text).toBe('{"m":0}\n');
  });

  it('output_format_json_quote_64bit_integers and output_format_json_quote_denormals are honoured', async () => {
    const sql = 'SELECT toUInt64(18446744073709551615) AS u, toInt64(-5) AS i, toInt128(7) AS h, toUInt32(1) AS small, nan AS f, -inf AS g';
    const quoted = '{"u":"18446744073709551615","i":"-5","h":"7","small":1,"f":"nan","g":"-inf"}\n';
    expect((await engine(`${sql} SETTINGS output_format_json_quote_64bit_integers = 1, output_format_json_quote_denormals = 1`, 'JSONEachRow')).toString()).toBe(quoted);
    const both = 'output_format_json_quote_64bit_integers=1&output_format_json_quote_denormals=1';
    // Default: numbers, and null for NaN/Inf (Tinybird's defaults, 0).
    expect(await (await get(`/v0/sql?q=${enc(`${sql} FORMAT JSONEachRow`)}`)).text()).toBe('{"u":18446744073709551615,"i":-5,"h":7,"small":1,"f":null,"g":null}\n');
    expect(await (await get(`/v0/sql?${both}&q=${enc(`${sql} FORMAT JSONEachRow`)}`)).text()).toBe(quoted);
    const json = await (await get(`/v0/sql?${both}&q=${enc(sql)}`)).json();
    expect(json.data[0]).toEqual({ u: '18446744073709551615', i: '-5', h: '7', small: 1, f: 'nan', g: '-inf' });
    // In a form body with the SQL, and in a JSON body.
    const form = await call(`${srv.url}/v0/sql`, { method: 'POST', token, body: new URLSearchParams({ q: `${sql} FORMAT JSONEachRow`, output_format_json_quote_64bit_integers: '1', output_format_json_quote_denormals: '1' }) });
    expect(form.text).toBe(quoted);
    const jsonBody = await call(`${srv.url}/v0/sql`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ q: `${sql} FORMAT JSONEachRow`, output_format_json_quote_64bit_integers: 1, output_format_json_quote_denormals: 1 }) });
    expect(jsonBody.text).toBe(quoted);

    // Endpoints: query string, form and JSON bodies; they are not template parameters.
    await createPipe('wide', sql);
    expect(await (await get(`/v0/pipes/wide.ndjson?${both}`)).text()).toBe(quoted);
    const ep = await (await get(`/v0/pipes/wide.json?output_format_json_quote_64bit_integers=1&q=${enc('SELECT u, f FROM _')}`)).json();
    expect(ep.data).toEqual([{ u: '18446744073709551615', f: null }]);
    const epForm = await call(`${srv.url}/v0/pipes/wide.ndjson`, { method: 'POST', token, body: new URLSearchParams({ output_format_json_quote_64bit_integers: 'true' }) });
    expect(epForm.text).toBe('{"u":"18446744073709551615","i":"-5","h":"7","small":1,"f":null,"g":null}\n');
    const epJson = await call(`${srv.url}/v0/pipes/wide.ndjson`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ output_format_json_quote_denormals: 1 }) });
    expect(epJson.text).toBe('{"u":18446744073709551615,"i":-5,"h":7,"small":1,"f":"nan","g":"-inf"}\n');
    // A value other than 0/1 is the client's mistake.
    for (const p of ['/v0/sql?output_format_json_quote_64bit_integers=yes&q=SELECT%201', '/v0/pipes/wide.json?output_format_json_quote_denormals=2']) {
      const bad = await call(`${srv.url}${p}`, { token });
      expect(bad.status, p).toBe(400);
      expect(bad.body).toMatchObject({ code: 'INVALID_PARAMETER' });
    }
  });

  it('FORMAT names are read in any case, as ClickHouse reads them', async () => {
    expect((await engine('SELECT 1 AS x FORMAT csvwithnames', 'TSV')).toString()).toBe('"x"\n1\n');
    for (const [fmt, type, body] of [
      ['csv', 'text/csv; charset=utf-8', '1\n'], ['csvwithnames', 'text/csv; charset=utf-8', '"x"\n1\n'],
      ['jsonEachRow', 'application/x-ndjson; charset=utf-8', '{"x":1}\n'], ['tsv', 'text/tab-separated-values; charset=utf-8', '1\n'],
    ] as const) {
      const r = await get(`/v0/sql?q=${enc(`SELECT 1 AS x FORMAT ${fmt}`)}`);
      expect(r.status, fmt).toBe(200);
      expect(r.headers.get('content-type')).toBe(type);
      expect(await r.text()).toBe(body);
    }
    // The analyzer's offset is in bytes: text before the name may be multi-byte.
    expect(await (await get(`/v0/sql?q=${enc("SELECT 'é😀' AS x FORMAT jsoneachrow")}`)).text()).toBe('{"x":"é😀"}\n');
    const pq = await get(`/v0/sql?q=${enc('SELECT 1 AS x format parquet')}`);
    expect(pq.headers.get('content-type')).toBe('application/vnd.apache.parquet');
    // A format /v0/sql does not offer is still refused, with where it is.
    const pretty = await call(`${srv.url}/v0/sql?q=${enc('SELECT 1 FORMAT Pretty')}`, { token });
    expect(pretty.status).toBe(422);
    expect(pretty.body).toMatchObject({ sql_code: 'UNSUPPORTED_FORMAT', offset: 16 });
  });

  it('a FORMAT clause in an endpoint\'s q= is ignored whatever it names: the extension decides', async () => {
    for (const fmt of ['CSV', 'csv', 'Pretty', 'JSONCompact']) {
      const r = await get(`/v0/pipes/types.ndjson?q=${enc(`SELECT n FROM _ ORDER BY n LIMIT 1 FORMAT ${fmt}`)}`);
      expect(r.status, fmt).toBe(200);
      expect(await r.text()).toBe('{"n":0}\n');
    }
  });
});

describe('a tenant on its own ClickHouse server', () => {
  let ch: RunningClickHouse | undefined;
  let remote = '';
  beforeAll(async () => {
    if (!requireClickHouse()) return;
    ch = await startClickHouse();
    remote = await createTenant(srv, 'remote', { type: 'clickhouse', url: ch.url, user: ch.user, password: ch.password });
  }, 120_000);
  afterAll(async () => { await ch?.stop(); });

  it('64-bit integers are numbers by default, and quoted when the request or the query asks', async (t) => {
    if (!ch) return t.skip();
    const sql = 'SELECT toUInt64(18446744073709551615) AS u FORMAT JSONEachRow';
    const ask = async (p: string) => (await call(`${srv.url}${p}`, { token: remote })).text;
    expect(await ask(`/v0/sql?q=${enc(sql)}`)).toBe('{"u":18446744073709551615}\n');
    // The server's own default (quoted) was forced back to numbers over what was asked.
    expect(await ask(`/v0/sql?output_format_json_quote_64bit_integers=1&q=${enc(sql)}`)).toBe('{"u":"18446744073709551615"}\n');
    expect(await ask(`/v0/sql?q=${enc(sql.replace(' FORMAT', ' SETTINGS output_format_json_quote_64bit_integers = 1 FORMAT'))}`)).toBe('{"u":"18446744073709551615"}\n');
  });
});
