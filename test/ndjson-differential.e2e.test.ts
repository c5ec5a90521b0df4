/**
 * Differential test of NDJSON ingestion (POST /v0/events and POST /v0/datasources?format=ndjson)
 * against ClickHouse's own JSON reading (chdb in this process, default settings).
 *
 * For every column type, many values (hand-picked edge cases plus a seeded random sample) are
 * sent as NDJSON lines over real HTTP to a real server, once through `/v0/events?wait=true` and
 * once through `/v0/datasources?mode=append&format=ndjson`; what is stored is read back through
 * `/v0/sql` (`toString(c)`). The same lines, with the column's JSON path flattened to a top-level
 * key, are inserted by ClickHouse into a MergeTree table of the same column (`INSERT ... FORMAT
 * JSONEachRow`). Each difference is classified as in native-csv-differential.test.ts:
 *
 *   (a) both store the line, different value   -> allowed only by a rule, with a reason
 *   (b) Roost quarantines what ClickHouse stores -> allowed only by a rule, with a reason
 *   (c) Roost stores what ClickHouse refuses     -> allowed only by a rule, with a reason
 *
 * Both endpoints must agree with each other, and the counts they answer must add up to the
 * lines sent (stored + quarantined), with one quarantine row per refused line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { rng } from './helpers/rng.js';

let srv: RunningServer;
let token: string;
let dir: string;
let session: Session;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'roost-ndjson-diff-'));
  session = new Session(path.join(dir, 'chdb'));
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => {
  await srv?.stop();
  session?.cleanup?.();
  rmSync(dir, { recursive: true, force: true });
});

const enc = encodeURIComponent;
const ndjsonHeaders = { 'Content-Type': 'application/x-ndjson' };
const post = (p: string, body: string | Buffer) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers: ndjsonHeaders });
async function sqlRows(q: string): Promise<any[]> {
  const r = await call(`${srv.url}/v0/sql?q=${enc(`${q} FORMAT JSONEachRow`)}`, { token });
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}
async function ch(sql: string): Promise<unknown[][]> {
  const text = (await session.queryAsync(sql, { format: 'JSONCompactEachRow' })).text();
  return text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as unknown[]);
}
const chError = (e: unknown) => {
  const m = String((e as Error).message);
  return (/Code: \d+\. DB::Exception: ([^:(]*)/.exec(m)?.[1] ?? m).trim().slice(0, 80);
};

const R = rng(0x6e_d150);
const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(R() * xs.length)];
const int = (lo: number, hi: number) => lo + Math.floor(R() * (hi - lo + 1));
const digits = (n: number) => Array.from({ length: n }, () => String(int(0, 9))).join('');
const pad = (n: number, w: number) => String(n).padStart(w, '0');
const js = (s: string) => JSON.stringify(s);

/** A cell is the raw JSON text of the value; MISSING leaves the key out of the line. */
const MISSING = '<missing>';

/** A value's outcome: the stored value as toString() prints it (null for NULL), or a refusal. */
type Outcome = { ok: true; value: string | null } | { ok: false; why: string };
interface Diff { type: string; cell: string; roost: Outcome; ch: Outcome; cls: 'a' | 'b' | 'c' }
const show = (o: Outcome) => (o.ok ? (o.value === null ? 'NULL' : JSON.stringify(o.value)) : `refused (${o.why})`);

// ---------------------------------------------------------------------------
// Values.

const ANY_SHAPE = ['null', MISSING, '""', '" "', '"abc"', 'true', 'false', '[]', '{}', '{"x":1}', '[1]', '["a"]'];

const INT_RANGES: Record<string, [bigint, bigint]> = {
  Int8: [-128n, 127n], Int16: [-32768n, 32767n], Int32: [-2147483648n, 2147483647n], Int64: [-9223372036854775808n, 9223372036854775807n],
  UInt8: [0n, 255n], UInt16: [0n, 65535n], UInt32: [0n, 4294967295n], UInt64: [0n, 18446744073709551615n],
};

function intCells(type: string): string[] {
  const [lo, hi] = INT_RANGES[type];
  const edges = [lo, lo + 1n, lo - 1n, hi, hi - 1n, hi + 1n, 0n, 1n, -1n, 2n ** 53n + 1n, -(2n ** 53n + 1n), 2n ** 64n, -(2n ** 63n) - 1n, 10n ** 30n];
  const out = [...edges.map(String), ...edges.map((e) => js(String(e)))];
  out.push(
    '-0', '"-0"', '0.0', '1.0', '1.5', '-1.5', '1e2', '1E2', '1e-2', '1.0e1', '100e-2', '1e308', '-1e308', '1e309', '1e400',
    '1.0000000000000001', '0.99999999999999999', '2.9999999999999999', '"1.0"', '"1e2"', '" 5"', '"5 "', '"+5"', '"05"', '"0x10"', '"5a"', '"NaN"', '"inf"', '9007199254740993.0', '12345678901234567890123e-10',
    ...ANY_SHAPE,
  );
  for (let i = 0; i < 40; i++) {
    let s = digits(int(1, String(hi).length + 1)).replace(/^0+(?=\d)/, '');
    if (lo < 0n && R() < 0.5) s = `-${s}`;
    out.push(R() < 0.25 ? js(s) : s);
  }
  return out;
}

function floatCells(): string[] {
  const out = [
    '0', '-0', '0.0', '-0.0', '1', '-1', '1.5', '0.1', '0.30000000000000004', '1e0', '1E5', '1e+5', '1e-5', '-1e-5',
    '1e308', '-1e308', '1e309', '-1e309', '1.7976931348623157e308', '1.7976931348623159e308', '4.9e-324', '2e-324', '1e-400',
    '3.4028234663852886e38', '3.5e38', '1e39', '1.4e-45', '7e-46', '9007199254740993', '18446744073709551616',
    '123456789012345678901234567890', '0.1000000000000000055511151231257827', '16777217',
    '"1.5"', '" 1.5 "', '"1e5"', '"-0"', '"NaN"', '"nan"', '"-nan"', '"inf"', '"-inf"', '"Inf"', '"Infinity"', '"-Infinity"',
    '"infinity"', '"1,5"', '"0x10"', '"1.5x"', ...ANY_SHAPE,
  ];
  for (let i = 0; i < 40; i++) {
    const k = R();
    let s = k < 0.4 ? `${int(0, 99999)}.${digits(int(1, 12))}` : k < 0.8 ? `${int(1, 9)}.${digits(int(1, 17))}e${pick(['', '+', '-'])}${int(0, 330)}` : `${int(0, 2 ** 31)}`;
    if (R() < 0.4) s = `-${s}`;
    out.push(R() < 0.2 ? js(s) : s);
  }
  return out;
}

function decimalCells(p: number, s: number): string[] {
  const nines = (n: number) => '9'.repeat(n);
  const dot = (f: string) => (f ? `.${f}` : '');
  const ip = p - s;
  const out = [
    '0', '-0', '0.0', '1', '-1', '1.5', '0.1', '1.005', '0.125', '1e2', '1.5e1', '1e-2', '-1e-2', '1E2', '"1.5"', '" 1.5"', '"1e2"', '"-0"',
    `${nines(ip)}`, `-${nines(ip)}`, `${nines(ip)}${dot(nines(s))}`, `1${'0'.repeat(ip)}`, `0.${'1'.repeat(s + 5)}`, `0.${'0'.repeat(s)}9`,
    `${nines(ip)}.${nines(s + 3)}`, `"${nines(ip)}${dot(nines(s))}"`, '0.1000000000000000055511151231257827', '12345678901234567.5',
    '9007199254740993', '1e308', '1e309', '"NaN"', '"inf"', '0.00000009', '-0.0000001', '1e-7', '1.5e-7', '100000000000000000000000', '1e21', '1.25e3', ...ANY_SHAPE,
  ];
  for (let i = 0; i < 30; i++) {
    let v = `${digits(int(1, Math.max(1, ip)))}`.replace(/^0+(?=\d)/, '') + (s && R() < 0.8 ? `.${digits(int(1, s + 2))}` : '');
    if (R() < 0.4) v = `-${v}`;
    out.push(R() < 0.2 ? js(v) : v);
  }
  return out;
}

const BOOL_CELLS = ['true', 'false', '0', '1', '2', '-1', '1.0', '0.5', '"true"', '"false"', '"TRUE"', '"True"', '"1"', '"0"', '"yes"', '"no"', '"t"', '"f"', '"on"', '" true"', ...ANY_SHAPE];

const STRING_CELLS = [
  '"abc"', '""', '" a "', '"a,b"', '"a\\"b"', '"a\\nb"', '"a\\r\\nb"', '"a\\tb"', '"\\\\"', '"\\\\N"', '"NULL"', '"null"',
  '"\\u0000"', '"a\\u0000b"', '"\\u0001\\u001f"', '"\\ud83d\\ude00"', '"😀"', '"ünïcödé"', '"日本語"', '"\\ud800"', '"\\udc00x"', '"\\ud83d"',
  '"\\u00e9"', '"\\/"', '"\\b\\f"', '"\\u2028\\u2029"', '"\'"', '"[1,2]"', '"{\\"a\\":1}"',
  '1', '-0', '1.50', '1e21', '1E+2', '0.1000000000000000055511151231257827', '18446744073709551616', '9007199254740993', '-1.5e-7',
  'true', 'false', 'null', MISSING, '[]', '[1,"a",null]', '[1.50,2]', '{"x":1}', '{"x":[1,{"y":"z"}],"w":1.50}', '{}',
  js('x'.repeat(100_000)), js('é'.repeat(50_000)),
];
for (let i = 0; i < 30; i++) {
  const alphabet = ['a', 'Z', ' ', '"', ',', '\n', '\r', '\t', '\\', "'", 'é', '😀', '\u0000', '\u007f', '\u2028', '\\N', '[', '{'];
  STRING_CELLS.push(js(Array.from({ length: int(1, 10) }, () => pick(alphabet)).join('')));
}

const DATE_CELLS = [
  '"2020-01-02"', '"1970-01-01"', '"1969-12-31"', '"2149-06-06"', '"2149-06-07"', '"2299-12-31"', '"2300-01-01"', '"1900-01-01"', '"1899-12-31"',
  '"2024-02-29"', '"2023-02-29"', '"2020-13-01"', '"2020-1-2"', '"20200102"', '"2020/01/02"', '"02/01/2020"', '"2020-01-02 03:04:05"',
  '"2020-01-02T03:04:05Z"', '"2020-01-02T23:04:05-05:00"', '" 2020-01-02"', '"2020-01-02x"', '"18263"', '"0"',
  '18263', '0', '-1', '65535', '65536', '120529', '1577923200', '18263.5', '1e4', ...ANY_SHAPE,
];
for (let i = 0; i < 30; i++) DATE_CELLS.push(js(`${pad(pick([int(1890, 2310), int(1969, 1971), int(2148, 2150)]), 4)}-${pad(int(1, 12), 2)}-${pad(int(1, 28), 2)}`));

function dateTimeCells(frac: boolean): string[] {
  const out = [
    '"2020-01-02 03:04:05"', '"1970-01-01 00:00:00"', '"1969-12-31 23:59:59"', '"2106-02-07 06:28:15"', '"2106-02-07 06:28:16"',
    '"2299-12-31 23:59:59"', '"2300-01-01 00:00:00"', '"1900-01-01 00:00:00"', '"2262-04-11 23:47:16"', '"2262-04-12 00:00:00"',
    '"2020-01-02T03:04:05"', '"2020-01-02T03:04:05Z"', '"2020-01-02T03:04:05.123Z"', '"2020-01-02T03:04:05+01:00"', '"2020-01-02 03:04:05.123456789"',
    '"2020-01-02 03:04:05.1234567891"', '"2020-01-02"', '"2020-01-02 03:04"', '"2020/01/02 03:04:05"', '"2020-01-02 03:04:05 UTC"',
    '"Thu, 02 Jan 2020 03:04:05 GMT"', '"1577934245"', '"1577934245.5"', '" 2020-01-02 03:04:05"', '"2023-02-29 00:00:00"',
    '1577934245', '1577934245.5', '1577934245.123456789', '1577934245.1234567891', '0', '-1', '-1.5', '1.7e9', '1.5e9', '4294967295', '4294967296',
    '9223372036', '9223372037', '10413792000', '10413791999', '-2208988800', '-2208988801', '1e12', '1e20', '-0', '0.5', '1e-3',
    '"2020-01-02 03:04:05.5"', '"1969-12-31 23:59:59.999"', '1.5771234567891e9', '1.5771234567891234e9', '15779342451234e-4', '1577934245.999999999999', '-1577934245.0000000001', '1e-7', ...ANY_SHAPE,
  ];
  for (let i = 0; i < 30; i++) {
    if (R() < 0.5) {
      let s = `${pad(pick([int(1890, 2310), 2020, int(2261, 2263)]), 4)}-${pad(int(1, 12), 2)}-${pad(int(1, 28), 2)}${pick([' ', 'T'])}${pad(int(0, 23), 2)}:${pad(int(0, 59), 2)}:${pad(int(0, 59), 2)}`;
      if (frac && R() < 0.6) s += `.${digits(int(1, 9))}`;
      if (R() < 0.2) s += 'Z';
      out.push(js(s));
    } else {
      out.push(`${int(-2_000_000_000, 9_000_000_000)}${frac && R() < 0.5 ? `.${digits(int(1, 9))}` : ''}`);
    }
  }
  return out;
}

const UUID_CELLS = ['"123e4567-e89b-12d3-a456-426614174000"', '"123E4567-E89B-12D3-A456-426614174000"', '"00000000-0000-0000-0000-000000000000"',
  '"123e4567e89b12d3a456426614174000"', '"{123e4567-e89b-12d3-a456-426614174000}"', '"123e4567-e89b-12d3-a456-42661417400"', '"zz3e4567-e89b-12d3-a456-426614174000"',
  '" 123e4567-e89b-12d3-a456-426614174000"', '0', '1', ...ANY_SHAPE];
const IPV4_CELLS = ['"1.2.3.4"', '"0.0.0.0"', '"255.255.255.255"', '"256.1.1.1"', '"1.2.3"', '"01.2.3.4"', '" 1.2.3.4"', '"::1"', '"1.2.3.4/8"',
  '16909060', '0', '4294967295', '4294967296', '-1', '"16909060"', '1.5', ...ANY_SHAPE];
const IPV6_CELLS = ['"::"', '"::1"', '"2001:db8::1"', '"2001:DB8::1"', '"::ffff:1.2.3.4"', '"1.2.3.4"', '"1::2::3"', '"g::1"', '" ::1"', '"[::1]"',
  '"1:2:3:4:5:6:7:8"', '"1:2:3:4:5:6:7:8:9"', '1', '0', ...ANY_SHAPE];
const ENUM_TYPE = "Enum8('a' = 1, 'b' = 2, 'neg' = -128, 'c d' = 127, '' = 0)";
const ENUM_CELLS = ['"a"', '"b"', '"neg"', '"c d"', '"A"', '"x"', '" a"', '1', '2', '-128', '127', '0', '3', '1.0', '"1"', '"2"', '"-128"', '128', ...ANY_SHAPE];

const ARRAY_INT_CELLS = ['[]', '[1,2,3]', '[-2147483648,2147483647]', '[2147483648]', '["1","2"]', '[1.0]', '[1.5]', '[1e2]', '[true,false]', '[null]',
  '[[1]]', '[{"a":1}]', '"[1,2]"', '"[]"', '"1,2"', '1', '"abc"', '[9007199254740993]', '[-0]', '[" 1"]', '[""]', 'null', MISSING, '{}', 'true'];
const ARRAY_STR_CELLS = ['[]', '["a","b"]', '[""]', '["a,b"]', '["a\'b"]', '["a\\\\b"]', '["a\\nb"]', '["\\u0000"]', '["😀"]', '[1,2]', '[1.50,1e21]',
  '[true]', '[null]', '[["a"]]', '[{"a":1}]', '["NULL"]', '["\\\\N"]', '"[\'a\']"', '"a"', '1', 'null', MISSING, '{}', '[9007199254740993]'];
const ARRAY_NULLABLE_CELLS = ['[]', '[1,null,3]', '[null]', '["1",null]', '[1.5]', '["x"]', '[true]', 'null', MISSING, '"[1,NULL]"', '[[1]]'];
const ARRAY_ARRAY_CELLS = ['[]', '[[]]', '[[1,2],[3]]', '[[1],[]]', '[[null]]', '[1,2]', '[["1"]]', '[[1.5]]', '"[[1]]"', 'null', MISSING, '[[[1]]]', '[[1],2]'];
const ARRAY_FLOAT_CELLS = ['[]', '[-0.0]', '[1.5,-0,1e308]', '[1e309]', '["NaN","inf"]', '["1.5"]', '[null]', '[true]', 'null', '[9007199254740993]', '[0.1]'];
const ARRAY_DT_CELLS = ['[]', '["2020-01-02 03:04:05"]', '[1577934245]', '[1577934245.5]', '["2020-01-02T03:04:05Z"]', '["1577934245"]', '[null]', 'null'];
const ARRAY_LC_CELLS = ['[]', '["a","a","b"]', '[1]', '[null]', 'null'];

const DEFAULT_CELLS = ['null', MISSING, '""', '" "', '5', '"5"', '"x"', '[2]', '{}', 'true'];

interface Case { type: string; cells: string[]; path?: string }
const CASES: Case[] = [
  ...Object.keys(INT_RANGES).map((t): Case => ({ type: t, cells: intCells(t) })),
  { type: 'Float32', cells: floatCells() },
  { type: 'Float64', cells: floatCells() },
  { type: 'Decimal(9, 2)', cells: decimalCells(9, 2) },
  { type: 'Decimal(18, 4)', cells: decimalCells(18, 4) },
  { type: 'Decimal(38, 10)', cells: decimalCells(38, 10) },
  { type: 'Decimal(9, 0)', cells: decimalCells(9, 0) },
  { type: 'Bool', cells: BOOL_CELLS },
  { type: 'String', cells: STRING_CELLS },
  { type: 'String', cells: STRING_CELLS.slice(0, 40), path: '$.a.b' },
  { type: 'String', cells: ['"x"', '1', 'null', MISSING], path: "$['k y'][0]" },
  { type: 'LowCardinality(String)', cells: STRING_CELLS.slice(0, 50) },
  { type: 'Nullable(String)', cells: STRING_CELLS.slice(0, 50) },
  { type: 'LowCardinality(Nullable(String))', cells: ['"a"', '""', 'null', MISSING, '1', '"\\\\N"'] },
  { type: 'Nullable(Int32)', cells: intCells('Int32').slice(0, 60) },
  { type: 'Nullable(Float64)', cells: floatCells().slice(0, 60) },
  { type: 'Nullable(Decimal(18, 4))', cells: decimalCells(18, 4).slice(0, 40) },
  { type: 'Nullable(Bool)', cells: BOOL_CELLS },
  { type: 'Nullable(DateTime)', cells: dateTimeCells(false).slice(0, 40) },
  { type: 'Nullable(UUID)', cells: UUID_CELLS },
  { type: 'Date', cells: DATE_CELLS },
  { type: 'Date32', cells: DATE_CELLS },
  { type: 'Nullable(Date)', cells: DATE_CELLS.slice(0, 20).concat(['null', MISSING, '18263']) },
  { type: 'DateTime', cells: dateTimeCells(false) },
  { type: "DateTime('UTC')", cells: dateTimeCells(false).slice(0, 60) },
  { type: 'DateTime64(3)', cells: dateTimeCells(true) },
  { type: 'DateTime64(6)', cells: dateTimeCells(true) },
  { type: 'DateTime64(9)', cells: dateTimeCells(true) },
  { type: 'DateTime64(3)', cells: ['1577934245', '"2020-01-02 03:04:05.123"', 'null', MISSING], path: '$.a.b' },
  { type: 'UUID', cells: UUID_CELLS },
  { type: 'IPv4', cells: IPV4_CELLS },
  { type: 'IPv6', cells: IPV6_CELLS },
  { type: ENUM_TYPE, cells: ENUM_CELLS },
  { type: 'Array(Int32)', cells: ARRAY_INT_CELLS },
  { type: 'Array(Int32)', cells: ARRAY_INT_CELLS.slice(0, 12), path: '$.a.b' },
  { type: 'Array(String)', cells: ARRAY_STR_CELLS },
  { type: 'Array(Nullable(Int32))', cells: ARRAY_NULLABLE_CELLS },
  { type: 'Array(Array(Int32))', cells: ARRAY_ARRAY_CELLS },
  { type: 'Array(Float64)', cells: ARRAY_FLOAT_CELLS },
  { type: 'Array(DateTime)', cells: ARRAY_DT_CELLS },
  { type: 'Array(LowCardinality(String))', cells: ARRAY_LC_CELLS },
  { type: 'Array(Decimal(18, 4))', cells: ['[]', '[1.5,-0,0.00001,0.0000001]', '[1e-7,1e2]', '["1.5"]', '[1.23456789]'] },
  { type: 'Array(Nullable(String))', cells: ['[]', '["a",null]', '[null]', '[1]', 'null'] },
  ...['Int32 DEFAULT 7', 'Nullable(Int32) DEFAULT 9', "String DEFAULT 'dflt'", "Nullable(String) DEFAULT 'dflt'",
    "DateTime DEFAULT '2020-01-01 00:00:00'", 'Array(Int32) DEFAULT [1]', "LowCardinality(Nullable(String)) DEFAULT 'lc'", 'UInt64 DEFAULT 18446744073709551615',
  ].map((t): Case => ({ type: t, cells: DEFAULT_CELLS })),
];

// ---------------------------------------------------------------------------
// Lines and the two readings.

/** The line Roost gets: the value at the column's JSON path. */
function roostLine(id: number, cell: string, p: string | undefined): string {
  if (cell === MISSING) return `{"id":${id}}`;
  if (!p || p === '$.v') return `{"id":${id},"v":${cell}}`;
  if (p === '$.a.b') return `{"id":${id},"a":{"b":${cell},"z":1}}`;
  if (p === "$['k y'][0]") return `{"id":${id},"k y":[${cell},2]}`;
  throw new Error(`no line shape for ${p}`);
}
/** The same value flattened to the top-level key `v`, for ClickHouse. */
const chLine = (id: number, cell: string) => (cell === MISSING ? `{"id":${id}}` : `{"id":${id},"v":${cell}}`);

let tableNo = 0;
/** ClickHouse's reading of each line (all at once, then alone where Roost disagrees). */
async function clickhouse(type: string, cells: string[]): Promise<Map<number, Outcome>> {
  const t = `t${tableNo++}`;
  await ch(`CREATE TABLE ${t} (id UInt32, v ${type}) ENGINE = MergeTree ORDER BY id`);
  const out = new Map<number, Outcome>();
  try {
    await ch(`INSERT INTO ${t} SETTINGS input_format_allow_errors_num = 1000000, input_format_allow_errors_ratio = 1 FORMAT JSONEachRow\n${cells.map((c, i) => chLine(i, c)).join('\n')}\n`);
    for (const [id, v] of await ch(`SELECT id, toString(v) FROM ${t} ORDER BY id`)) out.set(Number(id), { ok: true, value: v as string | null });
  } catch { /* some errors fail the whole insert: each line is then asked alone */ }
  return out;
}
async function clickhouseOne(type: string, cell: string): Promise<Outcome> {
  const t = `t${tableNo++}`;
  await ch(`CREATE TABLE ${t} (id UInt32, v ${type}) ENGINE = MergeTree ORDER BY id`);
  try {
    await ch(`INSERT INTO ${t} FORMAT JSONEachRow\n${chLine(0, cell)}\n`);
    const r = await ch(`SELECT toString(v) FROM ${t}`);
    if (r.length !== 1) return { ok: false, why: `${r.length} rows` };
    return { ok: true, value: r[0][0] as string | null };
  } catch (e) {
    return { ok: false, why: chError(e) };
  } finally {
    await ch(`DROP TABLE ${t}`);
  }
}

let dsNo = 0;
/** Roost's reading of each line, through both endpoints (which must agree). */
async function roost(c: Case): Promise<Map<number, Outcome>> {
  const name = `nd_${dsNo++}`;
  const schema = `\`id\` UInt32 \`json:$.id\`, \`c\` ${c.type} \`json:${c.path ?? '$.v'}\``;
  const made = await call(`${srv.url}/v0/datasources?name=${name}&format=ndjson&schema=${enc(schema)}`, { method: 'POST', token });
  if (made.status !== 200) throw new Error(`create ${schema}: ${made.status} ${made.text}`);
  const n = c.cells.length;
  const OFFSET = 100_000;
  const viaEvents = await post(`/v0/events?name=${name}&wait=true`, c.cells.map((cell, i) => roostLine(i, cell, c.path)).join('\n') + '\n');
  expect(viaEvents.status, viaEvents.text).toBe(200);
  const viaDs = await post(`/v0/datasources?name=${name}&mode=append&format=ndjson`, c.cells.map((cell, i) => roostLine(OFFSET + i, cell, c.path)).join('\n') + '\n');
  expect(viaDs.status, viaDs.text).toBe(200);

  const stored = await sqlRows(`SELECT id, toString(c) AS s FROM ${name} ORDER BY id`);
  const quarantined = await sqlRows(`SELECT c__import_id AS imp, c__line AS line, c__error AS err, c__raw AS raw FROM ${name}_quarantine ORDER BY imp, line`);
  const storedA = new Map<number, string | null>();
  const storedB = new Map<number, string | null>();
  for (const r of stored) (r.id >= OFFSET ? storedB : storedA).set(r.id % OFFSET, r.s);
  // Counts: what each endpoint answered adds up to the lines sent and matches what is stored.
  expect({ rows: viaEvents.body.successful_rows, q: viaEvents.body.quarantined_rows }).toEqual({ rows: storedA.size, q: n - storedA.size });
  expect({ rows: viaDs.body.rows, q: viaDs.body.quarantine_rows }).toEqual({ rows: storedB.size, q: n - storedB.size });
  expect(quarantined.length).toBe(2 * n - storedA.size - storedB.size);

  // Each quarantine row is one line that was not stored, with its raw text and a reason.
  const why = new Map<number, string>();
  for (const q of quarantined) {
    const id = Number(/^\{"id":(\d+)/.exec(q.raw)![1]);
    const i = id % OFFSET;
    expect(q.raw).toBe(roostLine(id, c.cells[i], c.path));
    expect(q.line).toBe(i + 1);
    expect(q.err.length).toBe(1);
    expect(q.err[0]).toMatch(/\S/);
    expect((id >= OFFSET ? storedB : storedA).has(i)).toBe(false);
    why.set(i, q.err[0]);
  }
  const out = new Map<number, Outcome>();
  for (let i = 0; i < n; i++) {
    const a: Outcome = storedA.has(i) ? { ok: true, value: storedA.get(i)! } : { ok: false, why: why.get(i) ?? '?' };
    const b: Outcome = storedB.has(i) ? { ok: true, value: storedB.get(i)! } : { ok: false, why: why.get(i) ?? '?' };
    expect(b, `${c.type} ${c.cells[i]}: /v0/events and /v0/datasources differ`).toEqual(a);
    out.set(i, a);
  }
  return out;
}

async function compare(c: Case): Promise<Diff[]> {
  const mine = await roost(c);
  const theirs = await clickhouse(c.type, c.cells);
  const diffs: Diff[] = [];
  for (let i = 0; i < c.cells.length; i++) {
    const r = mine.get(i)!;
    let h: Outcome = theirs.get(i) ?? { ok: false, why: 'skipped' };
    if (r.ok && h.ok && r.value === h.value) continue;
    if (!r.ok && !h.ok && theirs.size) continue;
    h = await clickhouseOne(c.type, c.cells[i]);
    if (r.ok && h.ok && r.value === h.value) continue;
    if (!r.ok && !h.ok) continue;
    diffs.push({ type: c.type + (c.path ? ` ${c.path}` : ''), cell: c.cells[i], roost: r, ch: h, cls: r.ok && h.ok ? 'a' : r.ok ? 'c' : 'b' });
  }
  return diffs;
}

// ---------------------------------------------------------------------------
// Accepted differences.

/**
 * A rule for a value Roost stores ((a) or (c)) names a `normalized` cell: what Roost read the
 * value as. ClickHouse must store exactly Roost's value from that cell (checked), so a rule can
 * allow a reading but never a wrong value.
 */
interface Rule { cls: Array<'a' | 'b' | 'c'>; why: string; match: (d: Diff) => boolean; normalized?: (d: Diff) => string | null }
const base = (t: string) => t.replace(/ \$.*$/, '').replace(/ DEFAULT .*$/, '').replace(/^LowCardinality\((.*)\)$/, '$1').replace(/^Nullable\((.*)\)$/, '$1').replace(/^LowCardinality\((.*)\)$/, '$1');
const reason = (d: Diff) => (d.roost.ok ? '' : d.roost.why);

const isJsonString = (cell: string) => cell.startsWith('"');
const unq = (cell: string): string => (isJsonString(cell) ? (JSON.parse(cell) as string) : cell);
const isNumberCell = (cell: string) => /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(cell);
/** True when a JSON number's text is exactly an integer (1.0, 1e2, 100e-2; not 1.0000000000000001). */
function integral(cell: string): boolean {
  const m = /^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(cell);
  if (!m) return false;
  const frac = (m[2] ?? '').replace(/0+$/, '');
  const exp = Number(m[3] ?? 0);
  const digits = (m[1] + frac).replace(/^0+/, '');
  return digits === '' || frac.length - exp <= 0 || /^0+$/.test(digits.slice(digits.length - (frac.length - exp)));
}
/** An epoch number (seconds, any JSON notation) as exact UTC text to the nanosecond (floored), or null out of Date's range. */
function epochText(cell: string): string | null {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(cell);
  if (!m) return null;
  const digits = m[2] + (m[3] ?? '');
  const scale = 9 + m[2].length + Number(m[4] ?? 0) - digits.length;
  const mag = scale >= 0 ? BigInt(digits) * 10n ** BigInt(scale) : BigInt(digits) / 10n ** BigInt(-scale);
  const exact = scale >= 0 || BigInt(digits) % 10n ** BigInt(-scale) === 0n;
  const ns = m[1] ? -mag - (exact ? 0n : 1n) : mag;
  const sec = ns >= 0n ? ns / 1_000_000_000n : -((-ns + 999_999_999n) / 1_000_000_000n);
  const frac = ns - sec * 1_000_000_000n;
  const d = new Date(Number(sec) * 1000);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() > 9999 || d.getUTCFullYear() < 1) return null;
  return `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 19)}.${String(frac).padStart(9, '0')}`;
}
const boolWord = (cell: string) => (/^(true|t|yes|y|on|enable|1(\.0*)?)$/i.test(unq(cell).trim()) ? 'true' : 'false');
/** The integer a JSON number's text is exactly (1.0, 1e2, 100e-2). */
function integerOf(cell: string): string {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(cell)!;
  const digits = m[2] + (m[3] ?? '');
  const scale = m[2].length + Number(m[4] ?? 0) - digits.length;
  const v = scale >= 0 ? BigInt(digits) * 10n ** BigInt(scale) : BigInt(digits) / 10n ** BigInt(-scale);
  return (m[1] && v !== 0n ? '-' : '') + String(v);
}
const isInt = (t: string) => /^U?Int\d+$/.test(base(t));
const isStringy = (t: string) => /^(String|FixedString)/.test(base(t));

const RULES: Rule[] = [
  // (b): Roost quarantines what ClickHouse stores as something else.
  { cls: ['b'], why: 'integers that overflow the column are quarantined; ClickHouse wraps them (128 -> -128 in Int8, 2^64 -> 0, 9007199254740993 -> 1 in Int32)',
    match: (d) => reason(d) === 'integer out of range' },
  { cls: ['b'], why: 'an empty string in a non-string column without NULL or DEFAULT is an empty value, quarantined (as a quoted empty CSV cell, decisions.md); ClickHouse stores 0',
    match: (d) => reason(d) === 'empty value in a non-Nullable column' && (d.cell === '""' || d.cell === '[""]') },
  { cls: ['b'], why: 'dates out of the column range are quarantined; ClickHouse clamps Date/DateTime (1969-12-31 -> 1970-01-01, 2300 -> 2149-06-06 or 2106-02-07) and reads DateTime64 past its documented 1900..2299',
    match: (d) => /Date/.test(d.type) && reason(d) === 'date out of range' },
  { cls: ['b'], why: 'a date or time in a JSON string follows the CSV rules (YYYY-MM-DD[( |T)hh:mm:ss[.f]][ ][Z|+hh:mm], or 9 or 10 digits of Unix seconds for DateTime, values.h); ClickHouse (chdb: date_time_input_format=best_effort) also reads 2020/01/02, RFC 1123, trailing "UTC", other digits as a unix time or a date, 2023-02-29 as 03-01 and 2020-13-01 as 1970-01-01',
    match: (d) => /Date/.test(d.type) && ['not a date', 'not a datetime'].includes(reason(d)) && isJsonString(d.cell) },
  { cls: ['b'], why: 'a JSON number or boolean in a Date column is quarantined (days or seconds since the epoch: ambiguous); ClickHouse reads a number as days, true as 1970-01-02',
    match: (d) => /^(Date|Date32)$/.test(base(d.type)) && reason(d) === 'not a date' && !isJsonString(d.cell) },
  { cls: ['b'], why: 'a decimal in a JSON string follows the CSV rules: no exponent ("1e2"); a JSON number with an exponent is read exactly',
    match: (d) => /Decimal/.test(d.type) && reason(d) === 'not a decimal' && isJsonString(d.cell) },
  { cls: ['b'], why: 'true/false are 1/0 only for an integer column; in a Float column or an array element they are quarantined (ClickHouse reads 1/0)',
    match: (d) => ['not a number', 'not an integer'].includes(reason(d)) && /true|false/.test(d.cell) },
  { cls: ['b'], why: 'null in an array of a non-Nullable type is quarantined; ClickHouse stores the type default',
    match: (d) => /^Array/.test(d.type) && reason(d) === 'NULL in a non-Nullable column' && /null/.test(d.cell) },
  { cls: ['b'], why: 'UUIDs need their dashes (8-4-4-4-12), as in CSV',
    match: (d) => /UUID/.test(d.type) && reason(d) === 'not a UUID' && /^[0-9a-f]{32}$/i.test(unq(d.cell)) },
  { cls: ['b'], why: 'an Enum has no zero value: without a DEFAULT, null or "" with no label \'\' is quarantined (ClickHouse stores \'\'); a missing key is the lowest value\'s label, as in ClickHouse; 128 is not a value of Enum8 (ClickHouse wraps it to -128)',
    match: (d) => /^Enum/.test(base(d.type)) && ((reason(d) === 'empty value in a non-Nullable column' && ['null', '""'].includes(d.cell)) || (reason(d) === 'unknown enum value' && d.cell === '128')) },
  { cls: ['b'], why: 'a lone surrogate escape (\\udc00 without its pair) is quarantined: UTF-8 cannot hold it; ClickHouse stores its three bytes, which are not UTF-8',
    match: (d) => /lone surrogate/.test(reason(d)) && /\\ud[89a-f]/i.test(d.cell) },

  // (a)/(c): Roost stores what the value means; ClickHouse refuses it or reads it otherwise.
  { cls: ['a', 'c'], why: 'an empty string in a non-string Nullable or DEFAULT column is an empty value: NULL or the DEFAULT, as a quoted empty CSV cell (decisions.md); ClickHouse stores 0 or refuses',
    match: (d) => d.cell === '""' && !isStringy(d.type) && (d.roost.ok && (d.roost.value === null || / DEFAULT /.test(d.type))),
    normalized: (d) => (/ DEFAULT /.test(d.type) && !(d.roost.ok && d.roost.value === null) ? MISSING : 'null') },
  { cls: ['a'], why: 'a JSON integer for DateTime64 is seconds since the epoch, as for DateTime (decisions.md); ClickHouse reads it as ticks of the column precision (1577934245 -> 1970-01-19 in DateTime64(3)), so a value sent as seconds would be silently misread',
    match: (d) => /^DateTime64/.test(base(d.type)) && /^-?\d+$/.test(d.cell),
    normalized: (d) => epochText(d.cell) && js(epochText(d.cell)!) },
  { cls: ['c'], why: 'a JSON number with a fraction or an exponent for DateTime/DateTime64 is seconds since the epoch (the fraction cut to the precision, as for text); ClickHouse refuses it',
    match: (d) => /^DateTime/.test(base(d.type)) && isNumberCell(d.cell) && /[.eE]/.test(d.cell),
    normalized: (d) => epochText(d.cell) && js(epochText(d.cell)!) },
  { cls: ['c'], why: 'a JSON number with an integral value is that integer in an integer or Enum column (1.0, 1e2, 100e-2); ClickHouse reads only integer notation',
    match: (d) => (isInt(d.type) || /^Enum/.test(base(d.type)) || /^Array\(U?Int/.test(d.type)) && /[.eE]/.test(d.cell) && integral(d.cell.replace(/^\[(.*)\]$/, '$1')),
    normalized: (d) => (d.cell.startsWith('[') ? `[${integerOf(d.cell.slice(1, -1))}]` : integerOf(d.cell)) },
  { cls: ['c'], why: 'numbers, decimals, dates, UUIDs and IPs in a JSON string may have spaces around them, as inside a quoted CSV cell (values.h); ClickHouse refuses them',
    match: (d) => !isStringy(d.type) && /^\[?"\s|\s"\]?$/.test(d.cell),
    normalized: (d) => d.cell.replace(/"\s+/, '"').replace(/\s+"/, '"') },
  { cls: ['c'], why: '"-0" is zero in an unsigned column (as in CSV); ClickHouse refuses the sign',
    match: (d) => /UInt/.test(d.type) && /^"?-0"?$/.test(d.cell),
    normalized: () => '0' },
  { cls: ['c'], why: 'a Bool may be a JSON string of its CSV spellings (true/false, t/f, yes/no, y/n, on/off, enable/disable in any case, 1/0: what ClickHouse\'s CSV input takes) or the number 1.0; ClickHouse\'s JSONEachRow reads only the JSON literals and integers',
    match: (d) => /Bool/.test(d.type) && (isJsonString(d.cell) || d.cell === '1.0'),
    normalized: (d) => boolWord(d.cell) },
  { cls: ['c'], why: 'a JSON string in an Array column is read as an array text, as in a CSV cell ("[1,2]", "[\'a\']"); ClickHouse refuses it',
    match: (d) => /^Array/.test(base(d.type)) && isJsonString(d.cell),
    normalized: (d) => unq(d.cell).replace(/'/g, '"').replace(/NULL/g, 'null') },
];
/** Differences no rule allows yet, asserted as they are so that a change shows. */
const KNOWN: Array<[string, string, string]> = [
  // A number with more significant digits than a double holds, in an integer column, is rounded by
  // JSON.parse to an integer and stored as it (ClickHouse refuses it). Only Decimal and DateTime64
  // schemas pay for the exact re-parse of such lines (decisions.md, Ingestion); see the report.
  ...Object.keys(INT_RANGES).flatMap((t) => [
    [t, '1.0000000000000001', '(c) roost "1", clickhouse refused (Cannot parse input)'],
    [t, '0.99999999999999999', '(c) roost "1", clickhouse refused (Cannot parse input)'],
    [t, '2.9999999999999999', '(c) roost "3", clickhouse refused (Cannot parse input)'],
  ] as Array<[string, string, string]>),
  ['Nullable(Int32)', '1.0000000000000001', '(c) roost "1", clickhouse refused (Cannot parse input)'],
  ['Nullable(Int32)', '0.99999999999999999', '(c) roost "1", clickhouse refused (Cannot parse input)'],
  ['Nullable(Int32)', '2.9999999999999999', '(c) roost "3", clickhouse refused (Cannot parse input)'],
];

async function allowed(d: Diff): Promise<Rule | undefined> {
  const type = d.type.replace(/ \$.*$/, '');
  for (const r of RULES) {
    if (!r.cls.includes(d.cls) || !r.match(d)) continue;
    if (!r.normalized) return r;
    const cell = r.normalized(d);
    if (cell === null) continue;
    const c = await clickhouseOne(type, cell);
    if (c.ok && d.roost.ok && c.value === d.roost.value) return r;
  }
  return undefined;
}

describe('NDJSON values vs ClickHouse JSONEachRow', () => {
  const all: Array<Diff & { rule?: string }> = [];
  const known = new Map(KNOWN.map(([t, c, text]) => [`${t}\u0000${c}`, text]));
  for (const [i, c] of CASES.entries()) {
    it(`${c.type}${c.path ? ` at ${c.path}` : ''}: ${c.cells.length} values (#${i})`, async () => {
      const diffs = await compare(c);
      const bad: string[] = [];
      for (const d of diffs) {
        const rule = await allowed(d);
        all.push({ ...d, rule: rule?.why });
        const text = `(${d.cls}) roost ${show(d.roost)}, clickhouse ${show(d.ch)}`;
        const k = known.get(`${d.type}\u0000${d.cell}`);
        if (k !== undefined) expect(text).toBe(k);
        else if (!rule) bad.push(`${d.type} ${d.cell.length > 80 ? d.cell.slice(0, 80) + '…' : d.cell}: ${text}`);
      }
      if (process.env.NDJSON_DIFF_DUMP) appendFileSync(process.env.NDJSON_DIFF_DUMP, bad.map((b) => b + '\n').join(''));
      expect(bad).toEqual([]);
    });
  }
  it('every rule and known difference is still needed', () => {
    const used = new Set(all.map((d) => d.rule));
    expect(RULES.map((r) => r.why).filter((w) => !used.has(w))).toEqual([]);
    const seen = new Set(all.map((d) => `${d.type}\u0000${d.cell}`));
    expect(KNOWN.filter(([t, c]) => !seen.has(`${t}\u0000${c}`))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// Lines as a whole: BOM, line ends, blank lines, lines that are not JSON objects, duplicate
// keys, escapes. Every endpoint (events with wait, buffered events, data source append) must
// store the same rows, count every non-blank line once, and quarantine with a reason.

describe('NDJSON lines vs ClickHouse JSONEachRow', () => {
  const SCHEMA = '`id` UInt32 `json:$.id`, `s` Nullable(String) `json:$.s`, `n` Int32 DEFAULT 7 `json:$.n`, `f` Float64 `json:$.f`';
  const CH_COLUMNS = 'id UInt32, s Nullable(String), n Int32 DEFAULT 7, f Float64';
  // [line, what Roost does with it: stored (toString of s, n, f) or the quarantine reason]
  const LINES: Array<[string, string[] | string]> = [
    ['\ufeff{"id":1,"s":"bom","f":1}', ['bom', '7', '1']],
    ['{"id":2,"s":"crlf","f":2}\r', ['crlf', '7', '2']],
    ['', 'blank'],
    ['   \t\r', 'blank'],
    ['{"id":3,"s":"first","s":"last","f":3}', ['last', '7', '3']],
    ['not json', 'invalid JSON'],
    ['[1,2]', 'not a JSON object'],
    ['"str"', 'not a JSON object'],
    ['null', 'not a JSON object'],
    ['42', 'not a JSON object'],
    ['{"id":4,"f":NaN}', 'invalid JSON'],
    ['{"id":5,"f":Infinity}', 'invalid JSON'],
    ['{"id":6,"f":-Infinity}', 'invalid JSON'],
    ['{"id":7,"f":+1}', 'invalid JSON'],
    ['{"id":8,"f":.5}', 'invalid JSON'],
    ['{"id":9,"f":01}', 'invalid JSON'],
    ['{"id":10,"s":"x",}', 'invalid JSON'],
    ["{'id':11}", 'invalid JSON'],
    ['{"id":12}', [null as unknown as string, '7', '0']],
    ['{"id":13,"s":{"k":[1,"\\ud800",1.50]},"f":1e309}', ['{"k":[1,"\\ud800",1.50]}', '7', 'inf']],
    ['{"id":14,"n":"\\ud800"}', 'lone surrogate'],
    ['{"id":15,"s":"a\\u0000b","n":"-5"}', ['a\u0000b', '-5', '0']],
    ['{"id":16,"s":"\\ud83d\\ude00\\u00e9","n":null,"f":-1e309}', ['😀é', '7', '-inf']],
    ['{ "id" : 17 , "s" : "spaces" , "f" : 1 }', ['spaces', '7', '1']],
    ['{"id":18,"s":null,"n":5,"extra":{"deep":[1,2,{"x":null}]}}', [null as unknown as string, '5', '0']],
    ['{"id":19,"s":"' + 'y'.repeat(200_000) + '"}', ['y'.repeat(200_000), '7', '0']],
    ['{"id":20,"s":"no newline at the end"}', ['no newline at the end', '7', '0']],
  ];
  /** Differences from ClickHouse on these lines, each with its reason. */
  const NOT_JSON = 'NaN, Infinity, +1, .5 and 01 are not JSON: the line is quarantined; ClickHouse reads them';
  const LINE_RULES: Array<[string, string]> = [
    ['{"id":3,', 'duplicate keys: the last one wins, as JSON.parse and most JSON readers do; ClickHouse refuses the line'],
    ['{"id":4,', NOT_JSON], ['{"id":5,', NOT_JSON], ['{"id":6,', NOT_JSON], ['{"id":7,', NOT_JSON], ['{"id":8,', NOT_JSON], ['{"id":9,', NOT_JSON],
  ];

  const bodyOf = (lines: string[]) => lines.join('\n');
  const sent = LINES.filter(([, r]) => r !== 'blank');

  async function stored(name: string): Promise<Map<number, unknown[]>> {
    const rows = await sqlRows(`SELECT id, s, toString(n) AS n, toString(f) AS f FROM ${name} ORDER BY id`);
    return new Map(rows.map((r) => [r.id, [r.s, r.n, r.f]]));
  }
  function expectRoost(rows: Map<number, unknown[]>, quarantine: any[], tag: string) {
    for (const [line, want] of LINES) {
      if (want === 'blank') continue;
      const id = /"id"\s*:\s*(\d+)/.exec(line)?.[1];
      if (Array.isArray(want)) expect(rows.get(Number(id)), `${tag}: ${line.slice(0, 80)}`).toEqual(want);
      else {
        if (id) expect(rows.has(Number(id)), `${tag}: ${line.slice(0, 80)}`).toBe(false);
        const q = quarantine.find((r) => r.raw === line.replace(/^\ufeff/, '').replace(/\r$/, ''));
        expect(q?.err?.[0], `${tag}: quarantine reason of ${line}`).toMatch(want);
      }
    }
    expect(rows.size + quarantine.length, tag).toBe(sent.length);
  }

  it('every endpoint stores the same rows and counts every line', async () => {
    const body = bodyOf(LINES.map(([l]) => l));
    const quarantineOf = async (name: string) => sqlRows(`SELECT c__raw AS raw, c__error AS err, c__line AS line FROM ${name}_quarantine ORDER BY line`);
    for (const [i, how] of ['events', 'datasources', 'buffered'].entries()) {
      const name = `lines_${i}`;
      expect((await call(`${srv.url}/v0/datasources?name=${name}&format=ndjson&schema=${enc(SCHEMA)}`, { method: 'POST', token })).status).toBe(200);
      const nQuarantined = sent.filter(([, r]) => !Array.isArray(r)).length;
      if (how === 'events') {
        const r = await post(`/v0/events?name=${name}&wait=true`, body);
        expect(r.body).toEqual({ successful_rows: sent.length - nQuarantined, quarantined_rows: nQuarantined });
      } else if (how === 'datasources') {
        const r = await post(`/v0/datasources?name=${name}&mode=append&format=ndjson`, body);
        expect(r.body).toMatchObject({ rows: sent.length - nQuarantined, quarantine_rows: nQuarantined });
      } else {
        // Buffered: two bodies, neither ending in a newline, the second opening with a BOM.
        const half = Math.floor(LINES.length / 2);
        const a = await post(`/v0/events?name=${name}`, bodyOf(LINES.slice(0, half).map(([l]) => l)));
        const b = await post(`/v0/events?name=${name}`, '\ufeff' + bodyOf(LINES.slice(half).map(([l]) => l)));
        expect([a.status, b.status]).toEqual([202, 202]);
        // Every line counted; the 202 counts as quarantined only lines plainly no JSON object, a lower bound.
        expect(a.body.successful_rows + b.body.successful_rows + a.body.quarantined_rows + b.body.quarantined_rows).toBe(sent.length);
        expect(a.body.quarantined_rows + b.body.quarantined_rows).toBeLessThanOrEqual(nQuarantined);
        const deadline = Date.now() + 20_000;
        while (Date.now() < deadline) {
          const [{ c }] = await sqlRows(`SELECT (SELECT count() FROM ${name}) + (SELECT count() FROM ${name}_quarantine) AS c`);
          if (Number(c) >= sent.length) break;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      const quarantine = await quarantineOf(name);
      expectRoost(await stored(name), quarantine, how);
      if (how !== 'buffered') {
        // Line numbers are the body's lines (blank ones counted), one quarantine row per line.
        const lineNo = (raw: string) => LINES.findIndex(([l]) => l.replace(/^\ufeff/, '').replace(/\r$/, '') === raw) + 1;
        for (const q of quarantine) expect(q.line, q.raw).toBe(lineNo(q.raw));
      }
    }
  });

  it('ClickHouse reads the same lines alike except where a rule says why', async () => {
    const t = `lines_ch_${tableNo++}`;
    await ch(`CREATE TABLE ${t} (${CH_COLUMNS}) ENGINE = MergeTree ORDER BY id`);
    const roostRows = await stored('lines_0');
    const bad: string[] = [];
    for (const [line, want] of LINES) {
      const k = line.slice(0, 60);
      if (want === 'blank') continue;
      let theirs: unknown[] | string;
      try {
        await ch(`TRUNCATE TABLE ${t}`);
        await ch(`INSERT INTO ${t} FORMAT JSONEachRow\n${line}\n`);
        const r = await ch(`SELECT s, toString(n), toString(f) FROM ${t}`);
        theirs = r.length === 1 ? r[0] : `${r.length} rows`;
      } catch (e) {
        theirs = `refused (${chError(e)})`;
      }
      const id = Number(/"id"\s*:\s*(\d+)/.exec(line)?.[1]);
      const mine = Array.isArray(want) ? roostRows.get(id) : `refused`;
      const same = Array.isArray(mine) ? JSON.stringify(mine) === JSON.stringify(theirs) : typeof theirs === 'string';
      const rule = LINE_RULES.find(([p]) => line.startsWith(p));
      if (same && rule) bad.push(`line ${k}: rule no longer needed (${rule[1]})`);
      if (!same && !rule) bad.push(`line ${k}: roost ${JSON.stringify(mine)}, clickhouse ${JSON.stringify(theirs)}`);
    }
    expect(bad).toEqual([]);
  });
});
