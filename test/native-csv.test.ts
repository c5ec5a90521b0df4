import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import { rng } from './helpers/rng.js';
import {
  CsvError,
  CsvValidator,
  checkCsvHeader,
  csvStructure,
  inferCsvSchema,
  parseSchema,
  sniffCsv,
  type Batch,
} from '../src/native/csv.js';

let dir: string;
let session: Session;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'roost-csv-'));
  session = new Session(path.join(dir, 'chdb'));
});
afterAll(() => {
  session?.cleanup?.();
  rmSync(dir, { recursive: true, force: true });
});

async function q(sql: string): Promise<string> {
  return (await session.queryAsync(sql, { format: 'TSV' })).text();
}

/** Feeds `csv` in pieces cut at the given offsets, then finishes. */
async function validateAll(v: CsvValidator, csv: Buffer, cuts: number[] = []): Promise<Batch> {
  const batches: Batch[] = [];
  let prev = 0;
  for (const c of [...cuts, csv.length]) {
    batches.push(await v.push(csv.subarray(prev, c)));
    prev = c;
  }
  batches.push(await v.finish());
  return {
    rows: Buffer.concat(batches.map((b) => b.rows)),
    parts: batches.flatMap((b) => b.parts),
    rowCount: batches.reduce((n, b) => n + b.rowCount, 0),
    rejected: batches.flatMap((b) => b.rejected),
    bytesConsumed: batches[batches.length - 1].bytesConsumed,
  };
}


describe('sniffCsv', () => {
  it('finds the delimiter, quote, header and newline', () => {
    expect(sniffCsv(Buffer.from('id;name\r\n1;"a;b"\r\n2;c\r\n'))).toEqual({
      delimiter: ';', quote: '"', escape: '', hasHeader: true, newline: '\r\n',
    });
    expect(sniffCsv(Buffer.from('1\tx\t2.5\n2\ty\t3\n')).delimiter).toBe('\t');
    expect(sniffCsv(Buffer.from('1\tx\t2.5\n2\ty\t3\n')).hasHeader).toBe(false);
    expect(sniffCsv(Buffer.from('a|b|c\n1|2|3\n')).delimiter).toBe('|');
    expect(sniffCsv(Buffer.from("'x,y',1\n'z',2\n")).quote).toBe("'");
  });
});

describe('parseSchema', () => {
  it('reads Tinybird schema syntax', () => {
    const cols = parseSchema('`id` Int32 `json:$.id`, name LowCardinality(Nullable(String)), `ts` DateTime64(3) DEFAULT now64(3), tags Array(String)');
    expect(cols.map((c) => [c.name, c.type, c.nullable, c.jsonPath, c.defaultExpr])).toEqual([
      ['id', 'Int32', false, '$.id', null],
      ['name', 'LowCardinality(Nullable(String))', true, null, null],
      ['ts', 'DateTime64(3)', false, null, 'now64(3)'],
      ['tags', 'Array(String)', false, null, null],
    ]);
  });
  it('reports syntax errors with their offset', () => {
    expect(() => parseSchema('a Int32, b Strin')).toThrow(expect.objectContaining({ code: 'SCHEMA_SYNTAX', offset: 11 }));
    expect(() => parseSchema('a Int32 b String')).toThrow(expect.objectContaining({ code: 'SCHEMA_SYNTAX', offset: 8 }));
    expect(() => parseSchema('a Decimal(10')).toThrow(expect.objectContaining({ code: 'SCHEMA_SYNTAX' }));
    expect(() => parseSchema('a Map(String, Int32)')).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_TYPE', offset: 2 }));
    try {
      parseSchema('x Int32,, y');
    } catch (e) {
      expect(e).toBeInstanceOf(CsvError);
    }
  });
});

describe('inferCsvSchema', () => {
  it('infers ClickHouse types, Nullable and names', async () => {
    const csv = [
      'Id,Full Name,score,day,at,at_ms,ok,zip,big,note,1st',
      '1,Ann,1.5,2024-01-02,2024-01-02 03:04:05,2024-01-02T03:04:05.123Z,true,007,18446744073709551615,,x',
      '-40000,Bob,2,2024-02-29,2024-01-02T03:04:05Z,2024-01-02 03:04:05.5,false,010,1,n,y',
      '',
    ].join('\n');
    const r = await inferCsvSchema(Buffer.from(csv), { complete: true });
    expect(r.dialect.hasHeader).toBe(true);
    expect(r.columns.map((c) => `${c.name} ${c.type}`)).toEqual([
      'Id Int64',
      'Full_Name String',
      'score Float64',
      'day Date',
      'at DateTime',
      'at_ms DateTime64(3)',
      'ok Bool',
      'zip String',
      'big UInt64',
      'note Nullable(String)',
      'c_1st String',
    ]);
  });
  it('names columns column_00.. without a header; integers are Int64 whatever the sample\'s range', async () => {
    const r = await inferCsvSchema(Buffer.from('1,100000,5000000000,2024-01-01 00:00:00.123456\n2,3,4,\n'), { complete: true });
    expect(r.dialect.hasHeader).toBe(false);
    expect(r.columns.map((c) => `${c.name} ${c.type}`)).toEqual([
      'column_00 Int64', 'column_01 Int64', 'column_02 Int64', 'column_03 Nullable(DateTime64(6))',
    ]);
  });
  it('rejects invalid UTF-8 in the sample', async () => {
    await expect(inferCsvSchema(Buffer.from('a,b\n1,\xff\n', 'latin1'), { complete: true })).rejects.toMatchObject({
      code: 'INVALID_UTF8', line: 2,
    });
  });
});

const ROUND_TRIP_SCHEMA = [
  '`id` UInt32', '`i8` Int8', '`u8` UInt8', '`i16` Int16', '`u16` UInt16', '`i32` Int32', '`u32` UInt32',
  '`i64` Int64', '`u64` UInt64', '`f32` Float32', '`f64` Float64', '`dec` Decimal(10, 2)', '`d` Date',
  '`dt` DateTime', '`dt3` DateTime64(3)', '`dt6` DateTime64(6)', '`b` Bool', '`s` String',
  '`ni` Nullable(Int32)', '`ns` Nullable(String)', '`lc` LowCardinality(String)',
  '`lcn` LowCardinality(Nullable(String))', '`e` Enum8(\'red\' = 1, \'green\' = 2)', '`ai` Array(Int32)',
  '`as` Array(String)', '`u` UUID', '`fs` FixedString(4)', '`d32` Decimal64(4)',
].join(', ');

function csvCell(s: string, quote: boolean): string {
  return quote || /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function genRows(n: number, seed: number): string[] {
  const r = rng(seed);
  const int = (lo: number, hi: number) => Math.floor(lo + r() * (hi - lo + 1));
  const pick = <T,>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const pad = (x: number, w = 2) => String(x).padStart(w, '0');
  const rows: string[] = [];
  for (let id = 1; id <= n; id++) {
    const day = `${int(1971, 2100)}-${pad(int(1, 12))}-${pad(int(1, 28))}`;
    const time = `${pad(int(0, 23))}:${pad(int(0, 59))}:${pad(int(0, 59))}`;
    const hex = () => Array.from({ length: 32 }, () => '0123456789abcdef'[int(0, 15)]).join('');
    const h = hex();
    const cells = [
      String(id),
      pick(['-128', '127', String(int(-128, 127))]),
      pick(['0', '255', String(int(0, 255))]),
      pick(['-32768', '32767', String(int(-32768, 32767))]),
      String(int(0, 65535)),
      pick(['-2147483648', '2147483647', String(int(-2e9, 2e9))]),
      pick(['4294967295', String(int(0, 4e9))]),
      pick(['-9223372036854775808', '9223372036854775807', String(int(-1e15, 1e15))]),
      pick(['18446744073709551615', String(int(0, 1e15))]),
      pick(['1.5', '-0.25', '3.4e38', '1e-3', 'inf', '-inf', String(r() * 1000)]),
      pick(['1.7976931348623157e308', '-2.5e-300', '0', 'nan', String(r() * 1e6 - 5e5)]),
      pick(['12345678.99', '-0.5', '1.999', String(int(-1e6, 1e6)), '0.07']),
      day,
      `${day} ${time}`,
      `${day} ${time}.${pad(int(0, 999), 3)}`,
      `${day} ${time}.${pad(int(0, 999999), 6)}`,
      pick(['true', 'false']),
      pick(['plain', 'with, comma', 'with "quotes"', 'multi\nline', 'multi\r\nline crlf', 'ünïcødé ✓', 'x']),
      pick(['', '42', '-7']),
      pick(['', 'text']),
      pick(['a', 'b', 'c']),
      pick(['', 'p', 'q']),
      pick(['red', 'green']),
      pick(['[]', '[1,2,3]', '[-5]']),
      pick(["[]", "['a','b']", "['it''s','x,y']"]),
      `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`,
      pick(['abcd', 'ab', '']),
      pick(['1.2345', '-99.5', '123456789.0001']),
    ];
    rows.push(cells.map((c, i) => csvCell(c, i === 17 && r() < 0.5)).join(','));
  }
  return rows;
}

describe('CsvValidator round trip through chdb', () => {
  it.each(['Native', 'RowBinary'] as const)('inserts exactly what ClickHouse reads from the same CSV (%s)', async (fmt) => {
    const valid = genRows(3000, 7);
    const bad = [
      '99001,1,1,1,1,1,1,1,1,1,1,1,2024-01-01,2024-01-01 00:00:00,2024-01-01 00:00:00,2024-01-01 00:00:00,true,s,,,a,,red,[],[],00000000-0000-0000-0000-000000000000,ab', // 27 columns
      '99002,128,1,1,1,1,1,1,1,1,1,1,2024-01-01,2024-01-01 00:00:00,2024-01-01 00:00:00,2024-01-01 00:00:00,true,s,,,a,,red,[],[],00000000-0000-0000-0000-000000000000,ab,1',
      '99003,1,1,1,1,1,1,1,1,1,1,1,2024-02-30,2024-01-01 00:00:00,2024-01-01 00:00:00,2024-01-01 00:00:00,true,s,,,a,,red,[],[],00000000-0000-0000-0000-000000000000,ab,1',
      '99004,1,1,1,1,1,1,1,1,1,1,1,2024-01-01,2024-01-01 00:00:00,2024-01-01 00:00:00,2024-01-01 00:00:00,true,s,,,a,,blue,[],[],00000000-0000-0000-0000-000000000000,ab,1',
      '99005,1,1,1,1,1,1,1,1,1,1,1,2024-01-01,2024-01-01 00:00:00,2024-01-01 00:00:00,2024-01-01 00:00:00,true,s,,,a,,red,"[1,x]",[],00000000-0000-0000-0000-000000000000,ab,1',
      '99006,1,1,1,1,1,1,1,1,1,1,1,2024-01-01,2024-01-01 00:00:00,2024-01-01 00:00:00,2024-01-01 00:00:00,true,\xff,,,a,,red,[],[],00000000-0000-0000-0000-000000000000,ab,1',
    ];
    const header = ROUND_TRIP_SCHEMA.split(/, (?=`)/).map((c) => c.slice(1, c.indexOf('`', 1)));
    // Bad rows interleaved: rows received = 3000 + 6.
    const all = [...valid.slice(0, 1000), ...bad.slice(0, 3), ...valid.slice(1000), ...bad.slice(3)];
    const csv = Buffer.from('\ufeff' + header.join(',') + '\r\n' + all.join('\r\n') + '\r\n', 'latin1');
    // latin1 would mangle the unicode cells: build the buffer from parts instead.
    const csvBuf = Buffer.concat([
      Buffer.from('\ufeff' + header.join(',') + '\r\n' + all.map((l) => (l.includes('\xff') ? '' : l)).join('\r\n'), 'utf8'),
    ]);
    void csv;
    const body = Buffer.concat([csvBuf, Buffer.from('\r\n'), Buffer.from(bad[5].replace('\xff', 'X'), 'utf8').subarray(0, 0)]);
    // Put the invalid-UTF-8 row in as raw bytes.
    const rowWithBadByte = Buffer.concat([Buffer.from(bad[5].split('\xff')[0]), Buffer.from([0xff]), Buffer.from(bad[5].split('\xff')[1] + '\r\n')]);
    const input = Buffer.concat([body.subarray(0, body.length - 2), Buffer.from('\r\n'), rowWithBadByte]);

    const cols = parseSchema(ROUND_TRIP_SCHEMA);
    const r = rng(99);
    const cuts = Array.from({ length: 40 }, () => Math.floor(r() * input.length)).sort((a, b) => a - b);
    const v = new CsvValidator({ columns: cols, hasHeader: true, format: fmt });
    const out = await validateAll(v, input, cuts);

    expect(out.rowCount).toBe(3000);
    expect(out.rejected.map((x) => [x.column, x.reason])).toEqual([
      [null, expect.stringMatching(/^wrong column count: \d+ fields?, expected \d+$/)],
      ['i8', 'integer out of range'],
      ['d', 'not a date'],
      ['e', 'unknown enum value'],
      ['ai', 'not an integer'],
      ['s', 'invalid UTF-8'],
    ]);
    expect(out.rejected[0].line).toBe(1 + 1 + valid.slice(0, 1000).reduce((n, l) => n + l.split(/\r\n|\n|\r/).length, 0));
    expect(out.rejected[1].raw).toBe(bad[1]);
    expect(out.rowCount + out.rejected.length).toBe(all.length);
    expect(out.bytesConsumed).toBe(input.length);

    const { format, structure } = csvStructure(cols, fmt);
    expect(format).toBe(fmt);
    expect(format).toBe(v.format);
    expect(structure).toBe(v.structure);
    const bin = path.join(dir, `rows.${fmt}`);
    writeFileSync(bin, out.rows);
    const ref = path.join(dir, 'valid.csv');
    writeFileSync(ref, valid.join('\n') + '\n');
    await q('DROP TABLE IF EXISTS default.mine');
    await q('DROP TABLE IF EXISTS default.theirs');
    await q(`CREATE TABLE default.mine (${structure}) ENGINE = MergeTree ORDER BY id`);
    await q(`CREATE TABLE default.theirs (${structure}) ENGINE = MergeTree ORDER BY id`);
    await q(`INSERT INTO default.mine SELECT * FROM file('${bin}', ${format}, '${structure.replace(/'/g, "\\'")}')`);
    await q(`INSERT INTO default.theirs SELECT * FROM file('${ref}', CSV, '${structure.replace(/'/g, "\\'")}')`);
    const mine = await q('SELECT * FROM default.mine ORDER BY id');
    const theirs = await q('SELECT * FROM default.theirs ORDER BY id');
    expect(mine.split('\n').length).toBe(3001);
    expect(mine).toBe(theirs);
  });

  it('leaves empty cells of DEFAULT columns to the engine (RowBinaryWithDefaults)', async () => {
    const cols = parseSchema("`id` Int32, `qty` Int32 DEFAULT id * 10, `label` String DEFAULT concat('n', toString(id)), `note` Nullable(String)");
    const v = new CsvValidator({ columns: cols });
    expect(v.format).toBe('RowBinaryWithDefaults');
    const out = await validateAll(v, Buffer.from('1,,,\n2,5,x,y\n3,,"",\n'));
    expect(out.rowCount).toBe(3);
    const bin = path.join(dir, 'defaults.bin');
    writeFileSync(bin, out.rows);
    await q(`CREATE TABLE default.defs (id Int32, qty Int32 DEFAULT id * 10, label String DEFAULT concat('n', toString(id)), note Nullable(String)) ENGINE = Memory`);
    await q(`INSERT INTO default.defs SELECT * FROM file('${bin}', ${v.format}, '${v.structure.replace(/'/g, "\\'")}')`);
    expect(await q('SELECT * FROM default.defs ORDER BY id')).toBe('1\t10\tn1\t\\N\n2\t5\tx\ty\n3\t30\t\t\\N\n');
  });

  it('rejects an empty cell of a non-Nullable column without DEFAULT', async () => {
    const v = new CsvValidator({ columns: '`a` Int32, `b` String, `c` Array(Int8)' });
    const out = await validateAll(v, Buffer.from('1,,\n,x,[1]\n'));
    expect(out.rowCount).toBe(1);
    expect(out.rejected).toEqual([{ line: 2, column: 'a', reason: 'empty value in a non-Nullable column', raw: ',x,[1]' }]);
  });
});

describe('CsvValidator Native batches in parts', () => {
  it('hands a big block over as its column buffers, which written one after another are the block', async () => {
    // 120k rows: the id and amount columns are ~1 MB each, far over the size at which a
    // column buffer becomes a part of its own; the Bool column stays small and is merged.
    const schema = '`id` UInt64, `name` String, `amount` Float64, `flag` Bool, `maybe` Nullable(Int32)';
    const lines = ['id,name,amount,flag,maybe'];
    for (let i = 0; i < 120_000; i++) lines.push(`${i},n${i % 97},${(i % 1000) / 8},${i % 2 ? 'true' : 'false'},${i % 5 ? i : ''}`);
    const input = Buffer.from(lines.join('\n') + '\n');
    const batches: Batch[] = [];
    for (const fmt of ['Native', 'RowBinary'] as const) {
      const v = new CsvValidator({ columns: schema, hasHeader: true, format: fmt });
      const b = await v.push(input);
      const f = await v.finish();
      expect(b.rowCount + f.rowCount).toBe(120_000);
      batches.push(b);
      if (fmt === 'RowBinary') expect(b.parts).toHaveLength(1);
      else expect(b.parts.length).toBeGreaterThan(3);
      expect(Buffer.concat(b.parts).equals(b.rows)).toBe(true);
      const file = path.join(dir, `parts.${fmt}`);
      const fd = openSync(file, 'w');
      for (const p of b.parts) writeSync(fd, p);
      closeSync(fd);
      const got = await q(`SELECT count(), sum(id), sum(amount), countIf(flag), count(maybe), sum(maybe), uniqExact(name) FROM file('${file}', ${fmt}, '${v.structure.replace(/'/g, "\\'")}')`);
      let ids = 0, amount = 0, flags = 0, some = 0, maybe = 0;
      for (let i = 0; i < 120_000; i++) { ids += i; amount += (i % 1000) / 8; flags += i % 2; if (i % 5) { some++; maybe += i; } }
      expect(got.trim().split('\t').map(Number)).toEqual([120_000, ids, amount, flags, some, maybe, 97]);
    }
  });
});

describe('CsvValidator push of several pieces', () => {
  // Quoted fields with delimiters, quotes and newlines, multi-byte characters, a bad
  // value and a row with invalid UTF-8: cut into pieces at every few bytes (through
  // characters, quotes and line ends), pushed as groups, it must give the same
  // batch bytes and rejections as the whole body pushed at once.
  const body = Buffer.concat([
    Buffer.from('id,name,amount\n1,"a, ""b""\nc",1.5\n2,\u00e9t\u00e9 \u20ac \u{1F600},2\n3,x,not-a-number\r\n4,'),
    Buffer.from([0xc3]), // a lone lead byte: invalid UTF-8
    Buffer.from(',4\n5,"last",5.25\n'),
  ]);
  const schema = '`id` Int32, `name` String, `amount` Float64';
  // RowBinary: batches concatenate to the same bytes however the rows were grouped
  // (Native would start a block per push).
  const all = async (push: (v: CsvValidator) => Promise<Batch[]>, format: 'Native' | 'RowBinary' = 'RowBinary') => {
    const v = new CsvValidator({ columns: schema, hasHeader: true, format });
    const batches = [...(await push(v)), await v.finish()];
    return {
      rows: Buffer.concat(batches.map((b) => b.rows)).toString('hex'),
      rowCount: batches.reduce((n, b) => n + b.rowCount, 0),
      rejected: batches.flatMap((b) => b.rejected),
    };
  };
  it('validates a group of pieces as if they were one buffer', async () => {
    const whole = await all(async (v) => [await v.push(body)]);
    const wholeNative = await all(async (v) => [await v.push(body)], 'Native');
    expect(wholeNative.rowCount).toBe(3);
    expect(whole.rowCount).toBe(3);
    expect(whole.rejected.map((r) => [r.line, r.reason])).toEqual([[5, 'not a number'], [6, 'invalid UTF-8']]);
    for (const step of [1, 2, 3, 7, 13]) {
      const pieces: Buffer[] = [];
      for (let o = 0; o < body.length; o += step) pieces.push(body.subarray(o, o + step));
      // All pieces in one push (also as one Native block), and in groups of 5 pieces per push.
      expect(await all(async (v) => [await v.push(pieces)])).toEqual(whole);
      expect(await all(async (v) => [await v.push(pieces)], 'Native')).toEqual(wholeNative);
      expect(
        await all(async (v) => {
          const out: Batch[] = [];
          for (let i = 0; i < pieces.length; i += 5) out.push(await v.push(pieces.slice(i, i + 5)));
          return out;
        }),
      ).toEqual(whole);
    }
  });
  it('refuses an array holding something other than Buffers, and an empty group is no rows', async () => {
    const v = new CsvValidator({ columns: schema });
    expect(() => v.push([Buffer.from('1,a,1\n'), 'x' as unknown as Buffer])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect((await v.push([])).rowCount).toBe(0);
    expect((await v.push([Buffer.from('1,a,'), Buffer.from('1\n')])).rowCount).toBe(1);
  });
});

describe('CsvValidator errors', () => {
  it('HEADER_MISMATCH lists expected and found', async () => {
    const v = new CsvValidator({ columns: '`a` Int32, `b` String', hasHeader: true });
    await expect(v.push(Buffer.from('a,"c, d"\n1,x\n'))).rejects.toMatchObject({
      code: 'HEADER_MISMATCH', expected: ['a', 'b'], found: ['a', 'c, d'], line: 1,
    });
    expect(() => checkCsvHeader(['b', 'a'], [{ name: 'a' }, { name: 'b' }])).toThrow(
      expect.objectContaining({ code: 'HEADER_MISMATCH', message: expect.stringContaining('expected [a, b], found [b, a]') }),
    );
    checkCsvHeader(['a', 'b'], [{ name: 'a' }, { name: 'b' }]);
  });
  it('ROW_TOO_LARGE with the line, also across chunks', async () => {
    const v = new CsvValidator({ columns: '`a` String', maxRowBytes: 100 });
    await v.push(Buffer.from('ok\n"' + 'x'.repeat(60)));
    await expect(v.push(Buffer.from('y'.repeat(60)))).rejects.toMatchObject({ code: 'ROW_TOO_LARGE', line: 2 });
  });
  it('refuses push after finish', async () => {
    const v = new CsvValidator({ columns: '`a` String' });
    await v.finish();
    expect(() => v.push(Buffer.from('x\n'))).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
  it('an unterminated quote at the end is a rejected row', async () => {
    const v = new CsvValidator({ columns: '`a` String, `b` Int8' });
    const out = await validateAll(v, Buffer.from('x,1\n"open,2\n'));
    expect(out.rowCount).toBe(1);
    expect(out.rejected).toEqual([{ line: 2, column: null, reason: 'unterminated quoted field', raw: '"open,2\n' }]);
  });
  it('text after a closing quote is a rejected row, named by its column; spaces after the quote are not text', async () => {
    const TEXT_AFTER = 'text after the closing quote (a quote inside a value is written ""; an opening quote without its closing one joins the lines after it)';
    for (const format of ['Native', 'RowBinary'] as const) {
      const v = new CsvValidator({ columns: '`a` Int32, `b` String', format });
      const out = await validateAll(v, Buffer.from('1,"x"z\n2,"y" \n3,"oops\n4,v4\n5,"q"\n6,w\n'));
      expect(out.rowCount, format).toBe(2);
      expect(out.rejected, format).toEqual([
        { line: 1, column: 'b', reason: TEXT_AFTER, raw: '1,"x"z' },
        { line: 3, column: 'b', reason: TEXT_AFTER, raw: '3,"oops\n4,v4\n5,"q"' },
      ]);
    }
  });
  it('a header that is not UTF-8 is a row rejected as invalid UTF-8, not a header mismatch', async () => {
    const v = new CsvValidator({ columns: '`été` Int32', hasHeader: true });
    const out = await validateAll(v, Buffer.from([0xe9, 0x74, 0xe9, 10, 0x31, 10]));
    expect(out.rejected).toEqual([{ line: 1, column: null, reason: 'invalid UTF-8', raw: '\ufffdt\ufffd' }]);
  });
  it('refuses unsupported types and bad dialects', () => {
    expect(() => new CsvValidator({ columns: '`a` Int128' })).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_TYPE' }));
    expect(() => new CsvValidator({ columns: '`a` Int8', dialect: { delimiter: '"' } })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('CSV splitter instruction sets (ROOST_CSV_SIMD)', () => {
  // Each level in its own process (the level is read once per process), over the same
  // rows: quoted fields with delimiters, "" pairs and line ends, UTF-8 and invalid bytes,
  // CRLF, so every path of the 64-byte block splitter is taken.
  const script = `
    const { CsvValidator } = await import(${JSON.stringify(path.resolve('dist/src/native/csv.js'))});
    const { native } = await import(${JSON.stringify(path.resolve('dist/src/native/addon.js'))});
    const { createHash } = await import('node:crypto');
    let s = 'id,name,note,n\\r\\n';
    for (let i = 0; i < 20000; i++) {
      const note = i % 7 === 0 ? '"a ""quoted"" word, and\\nmore"' : i % 5 === 0 ? 'caf\\u00e9 \\u20ac' : 'plain' + i;
      const bad = i % 997 === 0 ? 'x' : String(i % 250);
      s += i + ',"name ' + i + '",' + note + ',' + bad + (i % 3 ? '\\n' : '\\r\\n');
    }
    const buf = Buffer.concat([Buffer.from(s), Buffer.from([0x31, 0x2c, 0xff, 0x2c, 0x61, 0x2c, 0x31, 0x0a])]);
    const v = new CsvValidator({ columns: '\`id\` UInt32, \`name\` String, \`note\` String, \`n\` UInt8', hasHeader: true });
    const h = createHash('sha256');
    let rows = 0, rejected = [];
    for (let o = 0; o < buf.length; o += 65536) {
      const b = await v.push(buf.subarray(o, o + 65536));
      rows += b.rowCount; h.update(b.rows); rejected.push(...b.rejected.map((r) => [r.line, r.reason]));
    }
    const f = await v.finish();
    rows += f.rowCount; h.update(f.rows); rejected.push(...f.rejected.map((r) => [r.line, r.reason]));
    console.log(JSON.stringify({ simd: native().csvSimd(), rows, rejected, hash: h.digest('hex') }));
  `;
  const run = async (level?: string) => {
    const { execFileSync } = await import('node:child_process');
    const env = { ...process.env };
    delete env.ROOST_CSV_SIMD;
    if (level) env.ROOST_CSV_SIMD = level;
    return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' }));
  };

  it('gives the same stored and rejected rows at every level this CPU has, and reports the level in use', async () => {
    const best = await run();
    const avx2 = await run('avx2');
    const sse2 = await run('sse2');
    expect(['sse2', 'avx2', 'avx512']).toContain(best.simd);
    expect(sse2.simd).toBe('sse2');
    expect(avx2.simd).toBe(best.simd === 'sse2' ? 'sse2' : 'avx2');
    // 20000 data rows + the one with an invalid byte; 21 rows with 'x' in a UInt8, 1 invalid UTF-8.
    expect(best.rows + best.rejected.length).toBe(20001);
    expect(best.rejected.length).toBe(22);
    expect(best.rejected.some(([, reason]: [number, string]) => /UTF-8/i.test(reason))).toBe(true);
    for (const other of [avx2, sse2]) {
      expect(other.rows).toBe(best.rows);
      expect(other.rejected).toEqual(best.rejected);
      expect(other.hash).toBe(best.hash);
    }
  }, 60_000);
});
