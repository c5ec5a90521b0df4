/**
 * The native NDJSON fast path (native/core/ndjson/fast.h) against the JavaScript conversion
 * it stands in for (ROOST_NDJSON_FAST=0): on random lines of every kind, for a schema with
 * every kind of column, both must give the same CSV, byte for byte, the same rows out of the
 * native validator, and the same quarantine rows. The fast path converts only lines it is sure
 * of and leaves the rest to the JavaScript; a difference here is a line it got wrong.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { rng } from './helpers/rng.js';
import { ndjsonFastLines } from '../src/ingest/ndjson.js';
import { importNdjson, pieces } from './helpers/ndjson.js';
import type { DataSourceColumn } from '../src/datasources/registry.js';

const col = (name: string, type: string, jsonPath: string, extra: Partial<DataSourceColumn> = {}) =>
  ({ name, type, jsonPath, nullable: type.startsWith('Nullable'), ...extra }) as DataSourceColumn;
const SCHEMAS: Record<string, DataSourceColumn[]> = {
  wide: [
    col('i32', 'Int32', '$.i'), col('u8', 'UInt8', '$.u'), col('i64', 'Int64', '$.big'), col('f64', 'Float64', '$.f'), col('f32', 'Float32', '$.g'),
    col('dec', 'Decimal(18, 4)', '$.d'), col('dt', 'DateTime', '$.t'), col('dt64', 'DateTime64(3)', '$.t64'), col('day', 'Date', '$.day'),
    col('s', 'String', '$.s'), col('ns', 'Nullable(String)', '$.ns'), col('lc', 'LowCardinality(String)', '$.o.lc'), col('deep', 'String', '$.o.p.q'),
    col('as', 'Array(String)', '$.as'), col('ai', 'Array(Int32)', '$.ai'), col('aas', 'Array(Array(String))', '$.aas'), col('anf', 'Array(Nullable(Float64))', '$.anf'),
    col('b', 'Bool', '$.b'), col('uuid', 'UUID', '$.id'), col('ni', 'Nullable(Int32)', '$.ni'), col('def', 'Int32', '$.def', { defaultExpr: '7' } as Partial<DataSourceColumn>),
    col('fs', 'FixedString(3)', '$.fs'),
  ],
  narrow: [col('ts', 'DateTime64(3)', '$.ts'), col('user', 'String', '$.user.id'), col('kind', 'LowCardinality(String)', '$.kind'), col('value', 'Float64', '$.value'), col('tags', 'Array(String)', '$.tags')],
};

/**
 * Random NDJSON lines. `plain`: mostly what the fast path takes (it stops asking for a body
 * after enough lines it leaves, so a body of mostly unusual lines tests the JavaScript).
 */
function generator(seed: number, plain: boolean) {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const digits = (n: number) => Array.from({ length: n }, () => String(Math.floor(r() * 10))).join('');
  const number = () => pick([
    () => String(Math.floor(r() * 2000) - 1000), () => '0', () => '-0', () => '-0.0', () => '1.50', () => '1.5', () => '100', () => '1e2', () => '1E2', () => '2.5e-3',
    () => '0.000001', () => '0.0000001', () => '0.00001234', () => `${digits(1).replace('0', '1')}${digits(14)}`, () => `${digits(1).replace('0', '1')}${digits(15)}`,
    () => `${digits(1).replace('0', '1')}${digits(18)}`, () => `0.${digits(15)}1`, () => `${digits(3)}.${digits(12)}`.replace(/^0+(?=\d)/, ''), () => '1e21', () => '123456789012345678901',
    () => '9007199254740993', () => '-9007199254740993', () => '3.14159', () => '1577934245.9999999999', () => '1714557600', () => '1714557600.5', () => '255', () => '256', () => '-1',
  ])();
  const plainString = () => pick(['', 'a', 'abc def', "it's", 'comma, here', 'Zoë', '日本語', '2024-05-01', '2024-05-01 10:00:00', '2024-05-01 10:00:00.123', 'true', '1', '123e4567-e89b-12d3-a456-426614174000', 'abcd', 'ab', '[1,2]', 'NULL', '\\N']);
  const escString = () => pick(['a\\"b', 'line\\nbreak', 'tab\\there', 'back\\\\slash', 'slash\\/', '\\u00e9', '\\ud83d\\ude00', '\\ud800', 'cr\\r', "quote'\\n"]);
  const canonical = () => pick(['0', '-0', '7', '-12', '1.5', '100', '3.14159', '0.25', '255', '1714557600']);
  const plainText = () => { const t = plainString(); return plain && t.includes('\\') ? 'n' : t; };
  const str = () => JSON.stringify('x').replace('x', r() < (plain ? 0.99 : 0.8) ? plainText().replace(/\\/g, '\\\\').replace(/"/g, '\\"') : escString());
  const scalar = (): string => pick([plain && r() < 0.9 ? canonical : number, str, str, () => 'true', () => 'false', () => 'null'])();
  const value = (depth: number): string => {
    const k = r();
    if (depth > 3 || k < (plain ? 0.97 : 0.6)) return scalar();
    if (k < 0.85) return `[${Array.from({ length: Math.floor(r() * 4) }, () => value(depth + 1)).join(pick([',', ', ']))}]`;
    return `{${Array.from({ length: Math.floor(r() * 3) }, () => `${JSON.stringify(pick(['lc', 'p', 'q', 'x']))}:${value(depth + 1)}`).join(',')}}`;
  };
  const keys = ['i', 'u', 'big', 'f', 'g', 'd', 't', 't64', 'day', 's', 'ns', 'o', 'as', 'ai', 'aas', 'anf', 'b', 'id', 'ni', 'def', 'fs', 'ts', 'user', 'kind', 'value', 'tags', 'extra'];
  const member = (key: string): string => {
    let v: string;
    if (key === 'o') v = `{"lc":${pick([str, plain ? canonical : number, () => 'null'])()},"p":${pick([() => `{"q":${scalar()}}`, () => (plain ? '{}' : '[1]'), () => 'null', scalar])()}${r() < 0.1 ? ',"lc":"dup"' : ''}}`;
    else if (key === 'user') v = pick([() => `{"id":${scalar()}}`, () => `{"id":"u1","id":"u2"}`, () => '"flat"', () => (plain ? '{}' : '[{"id":1}]')])();
    else if (['as', 'ai', 'aas', 'anf', 'tags'].includes(key)) v = r() < 0.7 ? `[${Array.from({ length: Math.floor(r() * 4) }, () => (key === 'aas' ? `[${Array.from({ length: Math.floor(r() * 3) }, scalar).join(',')}]` : scalar())).join(',')}]` : value(0);
    // (A number for a DateTime column is epoch seconds: the JavaScript's.)
    else if (plain && ['t', 't64', 'ts'].includes(key)) v = str();
    else v = r() < 0.85 ? scalar() : value(0);
    return `${JSON.stringify(key)}${pick([':', ' : '])}${v}`;
  };
  return (): string => {
    const k = r();
    if (k < (plain ? 0.005 : 0.02)) return pick(['', '   ', '\t', 'not json', '[1,2]', '"s"', '42', '{"i":1,}', '{"i":01}', '{"i":.5}', '{"i":1} x', '\uFEFF{"i":3}', '{"i":"\u0001"}', '{"\\u0069":5}', '{"i":tru}']);
    const n = 1 + Math.floor(r() * 8);
    const members = Array.from({ length: n }, () => member(pick(keys)));
    return `{${members.join(pick([',', ', ']))}}${pick(['', ' ', '\r'])}`;
  };
}

const convert = (columns: DataSourceColumn[], b: Buffer, seed: number) => importNdjson(columns, pieces(b, seed, 5000));

afterEach(() => { delete process.env.ROOST_NDJSON_FAST; delete process.env.ROOST_NDJSON_WORKERS; });

describe('the native NDJSON fast path', () => {
  for (const [name, columns] of Object.entries(SCHEMAS)) {
    for (const plain of [true, false]) {
      it(`gives what the JavaScript conversion gives, line for line (${name} schema, ${plain ? 'mostly plain lines' : 'mixed lines'})`, async () => {
        process.env.ROOST_NDJSON_WORKERS = '0';
        for (const seed of [11, 12, 13, 14]) {
          const line = generator(seed, plain);
          const body = Buffer.from(Array.from({ length: 2500 }, line).join('\n') + (seed % 2 ? '\n' : ''));
          process.env.ROOST_NDJSON_FAST = '0';
          const js = await convert(columns, body, seed);
          delete process.env.ROOST_NDJSON_FAST;
          const before = ndjsonFastLines();
          const fast = await convert(columns, body, seed + 1);
          // With mostly plain lines the comparison is about the fast path: it must have taken
          // most lines itself (with mixed ones it gives up early, and it is about the fallback).
          if (plain) expect(ndjsonFastLines() - before).toBeGreaterThan(1250);
          const a = js.csv.split('\n');
          const b = fast.csv.split('\n');
          const first = a.findIndex((l, i) => l !== b[i]);
          expect(first === -1 ? null : { line: first, js: a[first], fast: b[first] }).toBeNull();
          expect(fast.csv).toBe(js.csv);
          expect(fast.rowBinary.equals(js.rowBinary)).toBe(true);
          expect(fast.quarantined).toEqual(js.quarantined);
          expect(fast.stored).toBe(js.stored);
          expect(fast.stored).toBeGreaterThan(100);
        }
      });
    }
  }

  it('converts plain events itself, as the JavaScript would', async () => {
    process.env.ROOST_NDJSON_WORKERS = '0';
    const body = Buffer.from([
      '{"ts":"2024-05-01 10:00:00.123","user":{"id":"u1"},"kind":"view","value":1.5,"tags":["a","b\'c"]}',
      '{"ts":"2024-05-01 10:00:00","user":{"id":"u2"},"kind":"buy","value":-0,"tags":[]}',
      '{"user":{"id":"u3"},"value":12345678901234}',
    ].join('\n') + '\n');
    const before = ndjsonFastLines();
    const r = await convert(SCHEMAS.narrow!, body, 1);
    expect(ndjsonFastLines() - before).toBe(3);
    expect(r.csv).toBe([
      '"2024-05-01 10:00:00.123","u1","view",1.5,"[\'a\',\'b\\\'c\']"',
      '"2024-05-01 10:00:00","u2","buy",-0,"[]"',
      '"1970-01-01 00:00:00","u3","",12345678901234,"[]"',
    ].join('\n') + '\n');
    expect(r.stored).toBe(3);
    process.env.ROOST_NDJSON_FAST = '0';
    const off = ndjsonFastLines();
    expect((await convert(SCHEMAS.narrow!, body, 2)).csv).toBe(r.csv);
    expect(ndjsonFastLines()).toBe(off);
  });
});
