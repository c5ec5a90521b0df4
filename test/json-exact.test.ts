/** exactJson: the same values as JSON.parse, except numbers a double cannot hold exactly. */
import { describe, expect, it } from 'vitest';
import { ExactNumber, exactJson, stringifyExact } from '../src/ingest/json-exact.js';

const parse = (t: string) => exactJson(t, JSON.parse(t));

describe('exactJson', () => {
  it('keeps the text of integers beyond 2^53 and of decimals with more than 15 significant digits', () => {
    const v = parse('{"a": 9007199254740993, "b": -9223372036854775808, "c": 0.1234567890123456789, "d": 12345678901234567.89}') as Record<string, unknown>;
    expect(v.a).toEqual(new ExactNumber('9007199254740993'));
    expect(v.b).toEqual(new ExactNumber('-9223372036854775808'));
    expect(v.c).toEqual(new ExactNumber('0.1234567890123456789'));
    expect(v.d).toEqual(new ExactNumber('12345678901234567.89'));
  });

  it('gives plain numbers where a double is exact, beside long numbers', () => {
    const v = parse('[1234567890123456, 9007199254740991, 1.5, -0.25e3, 1e400, 0.000000000000000001234, 9007199254740993]') as unknown[];
    expect(v.slice(0, 6)).toEqual([1234567890123456, 9007199254740991, 1.5, -250, Infinity, 1.234e-18]);
    expect(v[6]).toBeInstanceOf(ExactNumber);
  });

  it('is JSON.parse for everything else, on texts that take the exact path', () => {
    const texts = [
      '{"s": "a \\"quoted\\" \\\\ \\u00e9 \\n 12345678901234567890", "n": null, "t": true, "f": false, "e": [], "o": {}}',
      ' { "nested" : [ [ 1 , { "x" : [ "1234567890123456789" ] } ] , -0 ] } ',
      '{"__proto__": {"polluted": 1}, "k": 2, "k": 3, "digits": "00000000000000000000"}',
      '[1.0000000000000000000, 1e20, 1234567890123450000e-4]',
    ];
    for (const t of texts) expect(parse(t), t).toStrictEqual(JSON.parse(t));
    const proto = parse(texts[2]!) as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(proto, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('returns what JSON.parse gave when no 16-digit run appears (the common case costs one regex test)', () => {
    const parsed = JSON.parse('{"a": 1}');
    expect(exactJson('{"a": 1}', parsed)).toBe(parsed);
  });

  it('stringifyExact writes exact numbers as numbers', () => {
    const v = parse('{"a": [18446744073709551615, "x", null], "b": {"c": 1.5}}');
    expect(stringifyExact(v)).toBe('{"a":[18446744073709551615,"x",null],"b":{"c":1.5}}');
  });
});
