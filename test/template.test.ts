import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import { RoostError } from '../src/errors.js';
import { isTemplate, renderTemplate, templateParameters, type RequestParams } from '../src/pipes/template/index.js';
import { caught } from './helpers/errors.js';

const T = (body: string): string => `%\n${body}`;
const render = (body: string, params: RequestParams = {}, opts = {}): string => renderTemplate(T(body), params, opts).sql;


describe('isTemplate', () => {
  it('recognises a % first line only', () => {
    expect(isTemplate('%\nSELECT 1')).toBe(true);
    expect(isTemplate('  %  \r\nSELECT 1')).toBe(true);
    expect(isTemplate('\n%\nSELECT 1')).toBe(true);
    expect(isTemplate('%')).toBe(true);
    expect(isTemplate('SELECT 5 % 2')).toBe(false);
    expect(isTemplate('%SELECT 1')).toBe(false);
    expect(isTemplate('SELECT 1\n%\n')).toBe(false);
  });

  it('leaves non-template SQL alone, braces included', () => {
    const sql = "SELECT '{{ x }}' AS a";
    expect(renderTemplate(sql, { x: '1' })).toEqual({ sql, usedParams: [] });
  });
});

describe('constructs', () => {
  it('{{ }} with literals and operators', () => {
    expect(render('SELECT {{ 1 + 2 * 3 }}, {{ 7 // 2 }}, {{ -7 % 3 }}, {{ 1 / 4 }}')).toBe('SELECT 7, 3, 2, 0.25');
    expect(render("SELECT {{ 'a' + 'b' }}, {{ \"it's\" }}, {{ True }}, {{ None }}")).toBe("SELECT 'ab', 'it\\'s', 1, NULL");
    expect(render('SELECT {{ [1, 2] + [3] }}, {{ (1, 2) }}, {{ [] }}')).toBe('SELECT [1, 2, 3], [1, 2], []');
    expect(render("SELECT {{ 'a' if 1 > 2 else 'b' }}")).toBe("SELECT 'b'");
    expect(render('SELECT {{ 1 < 2 < 3 }}, {{ 3 > 2 > 2 }}, {{ not 0 }}, {{ 0 or 5 }}, {{ 1 and 0 }}')).toBe('SELECT 1, 0, 1, 5, 0');
    expect(render("SELECT {{ 'b' in ['a', 'b'] }}, {{ 'x' not in 'abc' }}, {{ 'k' in {'k': 1} }}, {{ None is None }}")).toBe('SELECT 1, 1, 1, 1');
    expect(render("SELECT {{ {'a': [10, 20]}['a'][-1] }}, {{ 'abc'[1] }}")).toBe("SELECT 20, 'b'");
    expect(render('SELECT {{ 12345678901234567890 + 1 }}')).toBe('SELECT 12345678901234567891');
    // Python's string escapes: \x, \u, \U (past the BMP), octal, a backslash-newline continuing the string; unknown ones kept.
    expect(render("SELECT {{ '\\x41\\u00e9\\U0001F600\\101\\0\\q' }}")).toBe("SELECT 'Aé😀A\\0\\\\q'");
    expect(render("SELECT {{ 'ab\\\ncd' }}")).toBe("SELECT 'abcd'");
    expect(() => render("SELECT {{ '\\U00110000' }}")).toThrow(/bad \\U escape/);
    expect(() => render("SELECT {{ '\\N{DASH}' }}")).toThrow(/\\N\{name\} escapes are not supported/);
  });

  it('if / elif / else / end', () => {
    const tpl = "SELECT {% if Int32(n, 0) > 10 %}'big'{% elif Int32(n, 0) > 5 %}'mid'{% else %}'small'{% end %}";
    expect(render(tpl, { n: '20' })).toBe("SELECT 'big'");
    expect(render(tpl, { n: '7' })).toBe("SELECT 'mid'");
    expect(render(tpl, {})).toBe("SELECT 'small'");
    expect(render('SELECT 1{% if defined(x) %} WHERE a = {{String(x)}}{% end %}', { x: 'v' })).toBe("SELECT 1 WHERE a = 'v'");
    expect(render('SELECT 1{% if defined(x) %} WHERE a = {{String(x)}}{% end %}')).toBe('SELECT 1');
    expect(render('SELECT {% if not defined(x) %}0{% end %}')).toBe('SELECT 0');
  });

  it('for, tuple unpacking, break and continue', () => {
    expect(render('SELECT {% for c in split_to_array(String(cols, "a,b,c")) %}{{column(c)}}{% if c != "c" %}, {% end %}{% end %}')).toBe('SELECT `a`, `b`, `c`');
    expect(render('SELECT {% for last, c in enumerate_with_last(split_to_array(cols, "x,y")) %}{{symbol(c)}}{% if not last %},{% end %}{% end %}')).toBe('SELECT `x`,`y`');
    expect(render('{% for i in [1, 2, 3, 4] %}{% if i == 2 %}{% continue %}{% end %}{% if i == 4 %}{% break %}{% end %}{{i}} {% end %}')).toBe('1 3 ');
    expect(render("{% for k in {'a': 1, 'b': 2} %}{{k}}{% end %}")).toBe("'a''b'".replace("''", "' '"));
  });

  it('set, comments and literal braces', () => {
    expect(render("{% set c = 'name' %}SELECT {{column(c)}} FROM t")).toBe('SELECT `name` FROM t');
    expect(render('SELECT 1{# a comment {{ with braces }} #} + 1')).toBe('SELECT 1 + 1');
    expect(render('SELECT {{! not an expression }}, {%! nor this %}')).toBe('SELECT {{ not an expression }}, {% nor this %}');
    expect(render("{% set d = {'x': {'y': 'deep'}} %}SELECT {{ d.x.y }}")).toBe("SELECT 'deep'");
  });

  it('closers inside strings and brackets do not end a tag', () => {
    expect(render("SELECT {{ '}}' }}, {{ {'a': {'b': 1}}['a']['b'] }}{% set p = '%}' %}{{p}}")).toBe("SELECT '}}', 1'%}'");
  });

  it('keyword arguments', () => {
    expect(render('SELECT {{Int32(n, default=5, description="d", required=False)}}')).toBe('SELECT 5');
  });
});

describe('syntax errors name a position', () => {
  const cases: Array<[string, string, number, number]> = [
    ['SELECT {{ 1 +', 'never closed', 2, 8],
    ['SELECT\n  {% if x %} 1', 'never closed', 3, 3],
    ['SELECT {% end %}', 'without an open block', 2, 8],
    ['SELECT {% else %}', 'outside', 2, 8],
    ['SELECT {{ 1 + }}', 'expression ends too early', 2, 15],
    ['SELECT {{ ) }}', 'unexpected', 2, 11],
    ['SELECT {% while 1 %}{% end %}', 'unsupported template statement', 2, 8],
    ['SELECT {{ }}', 'empty expression', 2, 11],
    // A quote or bracket left open before the closer is said where it opens (it was "`{{` is never closed").
    ['SELECT {{ "abc }}', 'string literal is never closed before `}}`', 2, 11],
    ['SELECT {{ Int32(a, 1 }}', '`(` is never closed before `}}`', 2, 16],
    ['SELECT {{ [1, 2 }}', '`[` is never closed before `}}`', 2, 11],
    ['SELECT {% if defined(a %}1{% end %}', '`(` is never closed before `%}`', 2, 21],
    ['SELECT {{ Int32(a, 1)', '`{{` is never closed with `}}`', 2, 8],
    ['SELECT {{ a.b( ) }}', 'only template functions can be called', 2, 14],
    ['SELECT {{ x[1:2] }}', 'slices', 2, 14],
    ['SELECT {# never closed', 'comment', 2, 8],
    ['{% if 1 %}{% else %}{% elif 2 %}{% end %}', 'after', 2, 21],
    ['{% for x %}{% end %}', 'for name in', 2, 7],
    ['{% set = 1 %}', 'set name', 2, 7],
    ['{{ $ }}', 'unexpected character', 2, 4],
    ['{% break %}', 'outside', 2, 1],
  ];
  it.each(cases)('%j', (body, message, line, column) => {
    const e = caught(() => render(body));
    expect(e.code).toBe('TEMPLATE_SYNTAX');
    expect(e.status).toBe(400);
    expect(e.message).toContain(message);
    expect(e.details).toMatchObject({ line, column });
  });
});

describe('invalid templates (422)', () => {
  const cases: Array<[string, string]> = [
    ['{{ eval("1") }}', 'unknown function'],
    ['{{ __import__("os") }}', 'unknown function'],
    ['{{ String }}', 'is a function'],
    ['{{ "a".upper }}', 'no attribute'],
    ["{{ {'a': 1}.__proto__ }}", 'no attribute'],
    ["{{ {'a': 1}['constructor'] }}", 'not found'],
    ['{{ [1][5] }}', 'out of range'],
    ['{{ 1 + "a" }}', 'unsupported operand'],
    ['{{ 1 / 0 }}', 'division by zero'],
    ['{{ 1 < "a" }}', 'cannot compare'],
    ['{% for x in 5 %}{% end %}', 'cannot loop'],
    ['{{ String(x, nope=1) }}', 'no argument'],
    ['{{ max_threads(0) }}', 'max_threads'],
    ['{% for a, b in [1] %}{% end %}', 'unpack'],
  ];
  it.each(cases)('%s', (body, message) => {
    const e = caught(() => render(body, { x: 'v' }));
    expect(e.code).toBe('TEMPLATE_INVALID');
    expect(e.status).toBe(422);
    expect(e.message).toContain(message);
  });

  it('refuses to write a value into a heredoc or after a backslash in a string', () => {
    expect(caught(() => render('SELECT $$ {{String(x)}} $$', { x: 'a' })).code).toBe('TEMPLATE_INVALID');
    expect(caught(() => render('SELECT $tag$ {{String(x)}} $tag$', { x: 'a' })).code).toBe('TEMPLATE_INVALID');
    expect(caught(() => render("SELECT 'a\\{{String(x)}}'", { x: 'a' })).code).toBe('TEMPLATE_INVALID');
  });

  it('caps list growth and block nesting', () => {
    expect(caught(() => render('{% set l = [1] %}{% for i in split_to_array(x) %}{% set l = l + l %}{% end %}', { x: Array.from({ length: 40 }, () => 'a').join(',') })).message).toContain('list is longer');
    expect(caught(() => render('{% if 1 %}'.repeat(200) + '{% end %}'.repeat(200))).code).toBe('TEMPLATE_SYNTAX');
  });

  it('caps loops', () => {
    const e = caught(() => render('{% for a in split_to_array(x) %}{% for b in split_to_array(x) %}{% for c in split_to_array(x) %}{% end %}{% end %}{% end %}', { x: Array.from({ length: 100 }, (_, i) => String(i)).join(',') }));
    expect(e.code).toBe('TEMPLATE_INVALID');
    expect(e.message).toContain('loops ran more than');
  });
});

describe('typed parameter functions', () => {
  const valid: Array<[string, string, string]> = [
    ['String', "it's \\ fine", "'it\\'s \\\\ fine'"],
    ['String', 'line\nnext\ttab\0nul\x01', "'line\\nnext\\ttab\\0nul\\x01'"],
    ['String', 'ünïcödé 🙂', "'ünïcödé 🙂'"],
    ['Int8', '-128', '-128'],
    ['Int8', '127', '127'],
    ['Int16', '-32768', '-32768'],
    ['Int32', '+2147483647', '2147483647'],
    ['Int64', '-9223372036854775808', '-9223372036854775808'],
    ['Int128', '-170141183460469231731687303715884105728', "toInt128('-170141183460469231731687303715884105728')"],
    ['Int256', '57896044618658097711785492504343953926634992332820282019728792003956564819967', "toInt256('57896044618658097711785492504343953926634992332820282019728792003956564819967')"],
    ['UInt8', '255', '255'],
    ['UInt16', '65535', '65535'],
    ['UInt32', '4294967295', '4294967295'],
    ['UInt64', '18446744073709551615', '18446744073709551615'],
    ['UInt128', '340282366920938463463374607431768211455', "toUInt128('340282366920938463463374607431768211455')"],
    ['UInt256', '0', "toUInt256('0')"],
    ['Int', '42', '42'],
    ['Integer', '-42', '-42'],
    ['Float32', '1.5', "toFloat32('1.5')"],
    ['Float32', '3.4028235e38', "toFloat32('3.4028235e+38')"],
    ['Float64', '-2.5e-3', '-0.0025'],
    ['Float64', '.5', '0.5'],
    ['Float64', '-0', '-0.0'],
    ['Boolean', 'true', '1'],
    ['Boolean', 'FALSE', '0'],
    ['Boolean', '1', '1'],
    ['Date', '2024-02-29', "'2024-02-29'"],
    ['DateTime', '2024-01-15 10:30:00', "'2024-01-15 10:30:00'"],
    ['DateTime', '2024-01-15T10:30:00', "'2024-01-15 10:30:00'"],
    ['DateTime', '2024-01-15', "'2024-01-15 00:00:00'"],
    ['DateTime64', '2024-01-15 10:30:00.123456', "'2024-01-15 10:30:00.123456'"],
    // ISO 8601 as JavaScript's toISOString() writes it, and with offsets: the UTC time it names.
    ['DateTime', '2024-01-05T10:00:00.000Z', "'2024-01-05 10:00:00'"],
    ['DateTime64', '2024-01-05t10:00:00.5z', "'2024-01-05 10:00:00.5'"],
    ['DateTime', '2024-01-05T10:00:00Z', "'2024-01-05 10:00:00'"],
    ['DateTime', '2024-01-01 10:00:00.5', "'2024-01-01 10:00:00'"],
    ['DateTime64', '2024-01-05T10:00:00.123Z', "'2024-01-05 10:00:00.123'"],
    ['DateTime', '2024-01-05T10:00:00+02:00', "'2024-01-05 08:00:00'"],
    ['DateTime', '2024-01-05T00:30:00-0100', "'2024-01-05 01:30:00'"],
    ['DateTime64', '2024-01-01T01:00:00.25+02:00', "'2023-12-31 23:00:00.25'"],
    ['DateTime', '1900-01-01T01:30:00+01:00', "'1900-01-01 00:30:00'"],
    ['JSON', '{"a": [1, "x\'"]}', "'{\"a\": [1, \"x\\'\"]}'"],
  ];
  it.each(valid)('%s(%j) → %s', (type, value, sql) => {
    expect(render(`SELECT {{${type}(p)}}`, { p: value })).toBe(`SELECT ${sql}`);
  });

  const invalid: Array<[string, string]> = [
    ['Int8', '128'], ['Int8', '-129'], ['Int8', '1.0'], ['Int8', '1e2'], ['Int8', '0x10'], ['Int8', ' 1'], ['Int8', '1; DROP'],
    ['Int16', '32768'], ['Int32', '2147483648'], ['Int64', '9223372036854775808'], ['Int128', '170141183460469231731687303715884105728'],
    ['Int256', '1' + '0'.repeat(77)], ['UInt8', '-1'], ['UInt8', '256'], ['UInt16', '65536'], ['UInt32', '4294967296'],
    ['UInt64', '18446744073709551616'], ['UInt128', '-1'], ['UInt256', 'abc'], ['Int', '9223372036854775808'], ['Integer', '1.5'],
    ['Float32', '1e39'], ['Float32', '3.4028236e38'], ['Float64', '1e309'], ['Float64', 'NaN'], ['Float64', 'inf'], ['Float64', '1.2.3'], ['Float64', '1 OR 1=1'],
    ['Boolean', 'yes'], ['Boolean', "1'"], ['Date', '2023-02-29'], ['Date', '2024-13-01'], ['Date', '2024-1-1'], ['Date', "2024-01-01' OR 1=1"],
    ['DateTime', '2024-01-01 25:00:00'], ['DateTime', '2024-01-01 10:00:00+15:00'], ['DateTime', '2024-01-01 10:00:00 Z'], ['DateTime', '2024-01-01Z'], ['DateTime', 'now()'], ['DateTime64', '2024-01-01 10:00:00.1234567890'],
    ['JSON', '{bad'], ['JSON', "{'a': 1}"],
  ];
  it.each(invalid)('%s rejects %j', (type, value) => {
    const e = caught(() => render(`SELECT {{${type}(p)}}`, { p: value }));
    expect(e.code).toBe('TEMPLATE_PARAMETER');
    expect(e.status).toBe(400);
    expect(e.details).toMatchObject({ parameter: 'p', expected: type });
    expect(e.message).toContain('"p"');
    expect(e.message).toContain(type);
  });

  it('a date or time outside 1900..2299 says so, not that it is malformed', () => {
    // (Also where a zone offset moves the UTC time written past either end.)
    for (const [type, v] of [['Date', '1899-12-31'], ['Date', '2300-01-01'], ['DateTime', '1899-12-31 23:59:59'], ['DateTime64', '2300-01-01 00:00:00.5'],
      ['DateTime', '1900-01-01T00:30:00+01:00'], ['DateTime64', '2299-12-31T23:30:00.5-01:00']]) {
      expect(caught(() => render(`SELECT {{${type}(p)}}`, { p: v! })).message, v).toMatch(/out of range: from 1900-01-01 to 2299-12-31/);
    }
  });

  it('defaults, required, missing and empty values', () => {
    expect(render('SELECT {{Int32(n, 10)}}')).toBe('SELECT 10');
    expect(render('SELECT {{Int32(n, 10)}}', { n: '' })).toBe('SELECT 10');
    expect(render('SELECT {{String(s, "US")}}', { s: 'ES' })).toBe("SELECT 'ES'");
    const missing = caught(() => render('SELECT {{Int32(n)}}'));
    expect(missing.code).toBe('TEMPLATE_PARAMETER');
    expect(missing.details).toMatchObject({ parameter: 'n', expected: 'Int32' });
    const required = caught(() => render('SELECT 1{% if 0 %}{% end %} {% set v = String(s, required=True) %}'));
    expect(required.code).toBe('TEMPLATE_PARAMETER');
    expect(required.message).toContain('required');
    expect(caught(() => render('SELECT {{Int8(n, 1000)}}')).code).toBe('TEMPLATE_PARAMETER');
    expect(render('SELECT {{UInt8(n, 5, enum=[5, 6])}}', { n: '6' })).toBe('SELECT 6');
    expect(caught(() => render('SELECT {{UInt8(n, 5, enum=[5, 6])}}', { n: '7' })).code).toBe('TEMPLATE_PARAMETER');
  });

  it('a repeated parameter used as a scalar takes the first value', () => {
    expect(render('SELECT {{String(s)}}', { s: ['a', 'b'] })).toBe("SELECT 'a'");
  });

  it('typed values compare and compute natively', () => {
    expect(render('{% if Int32(n) >= 10 and Boolean(f, False) %}yes{% else %}no{% end %}', { n: '12', f: 'true' })).toBe('yes');
    expect(render('SELECT {{ Int32(n) * 2 }}, {{ String(s) + "!" }}', { n: '21', s: "a'" })).toBe("SELECT 42, 'a\\'!'");
    expect(render("{% set j = JSON(q) %}SELECT {{ j['k'][0] }}", { q: '{"k": ["v\'"]}' })).toBe("SELECT 'v\\''");
    // Integers past 2^53 stay exact, in lists and nested objects.
    expect(render("{% set j = JSON(q) %}SELECT {{ j['ids'] }}, {{ j['a']['b'] }}", { q: '{"ids": [9007199254740993, 1], "a": {"b": 18446744073709551615}}' }))
      .toBe('SELECT [9007199254740993, 1], 18446744073709551615');
    // A value from JSON() given to JSON() again is written back exactly (a bigint was a TypeError, a 500).
    expect(render("{% set j = JSON(q) %}SELECT {{ JSON(j['ids']) }}", { q: '{"ids": [9007199254740993]}' })).toBe("SELECT '[9007199254740993]'");
  });

  it('Array from repeated or comma-separated values, with defaults', () => {
    expect(render("SELECT {{Array(ids, 'Int32')}}", { ids: '1,2,3' })).toBe('SELECT [1, 2, 3]');
    expect(render("SELECT {{Array(ids, 'Int32')}}", { ids: ['1', '2'] })).toBe('SELECT [1, 2]');
    expect(render("SELECT {{Array(s, 'String')}}", { s: ['a,b', "c'"] })).toBe("SELECT ['a,b', 'c\\'']");
    expect(render("SELECT {{Array(s, 'String', default='x,y')}}")).toBe("SELECT ['x', 'y']");
    expect(render("SELECT {{Array(s, 'String', default=['x'])}}")).toBe("SELECT ['x']");
    expect(render("SELECT {{Array(d, 'Date', '2024-01-01')}}")).toBe("SELECT ['2024-01-01']");
    expect(render('SELECT {{Array(s)}}', { s: 'a' })).toBe("SELECT ['a']");
    const e = caught(() => render("SELECT {{Array(ids, 'UInt8')}}", { ids: '1,300' }));
    expect(e.code).toBe('TEMPLATE_PARAMETER');
    expect(e.details).toMatchObject({ parameter: 'ids', expected: 'Array(UInt8)' });
    // The element's place and text: "value 2" read as the value 2.
    expect(e.message).toBe('parameter "ids": element 2 of 2 ("300"): out of range 0..255 (expected Array(UInt8))');
    expect(caught(() => render("SELECT {{Array(ids, 'Int32')}}", { ids: '1,,2' })).message).toMatch(/^parameter "ids": element 2 of 3 \(""\): /);
    expect(caught(() => render("SELECT {{Array(ids, 'Nope')}}", { ids: '1' })).code).toBe('TEMPLATE_INVALID');
  });

  it('fixed parameters override request parameters', () => {
    const r = renderTemplate(T('SELECT {{String(tenant)}}, {{Int32(n, 1)}}'), { tenant: 'evil' }, { fixedParams: { tenant: 'acme', n: 7 } });
    expect(r.sql).toBe("SELECT 'acme', 7");
    expect(r.usedParams).toEqual(['n', 'tenant']);
    expect(caught(() => renderTemplate(T('SELECT {{Int8(n)}}'), {}, { fixedParams: { n: 1000 } })).code).toBe('TEMPLATE_PARAMETER');
  });

  it('usedParams lists request parameters read', () => {
    const r = renderTemplate(T('SELECT {{Int32(a, 1)}}{% if defined(b) %}{{String(c)}}{% end %}'), { a: '2', b: 'x', c: 'y', unused: 'z' });
    expect(r.usedParams).toEqual(['a', 'b', 'c']);
  });

  it('defaults mode renders without values', () => {
    const tpl = "SELECT {{String(s)}}, {{Int8(i)}}, {{Date(d)}}, {{DateTime(t, example='2020-01-02 03:04:05')}}, {{Array(a, 'Int32')}}, {{column(c)}}{% if defined(z) %} WHERE 1{% end %}";
    expect(renderTemplate(T(tpl), {}, { defaults: true }).sql).toBe("SELECT '', 0, '2019-01-01', '2020-01-02 03:04:05', [0], `placeholder` WHERE 1");
    expect(renderTemplate(T('SELECT {{String(s, required=True)}}'), {}, { defaults: true }).sql).toBe("SELECT ''");
    // Limited by `enum=` and without a default: the first allowed value (an Array's too).
    expect(renderTemplate(T("SELECT {{String(s, enum=['a', 'b'])}}, {{Array(tags, 'String', enum=['x', 'y'])}}, {{Array(ids, 'Int32', enum=[3, 4])}}"), {}, { defaults: true }).sql).toBe("SELECT 'a', ['x'], [3]");
  });
});

describe('floats are written as floats', () => {
  it('a float literal, true division, and arithmetic with a float or a Float parameter keep a float form when whole', () => {
    expect(render('SELECT {{ 3.0 }}, {{ 10 / 5 }}, {{ 1.5 // 1 }}, {{ 7 % 2.0 }}, {{ 1e3 }}, {{ -0.0 }}, {{ True + 1.0 }}')).toBe('SELECT 3.0, 2.0, 1.0, 1.0, 1000.0, -0.0, 2.0');
    expect(render('SELECT {{ Float64(f, 2.0) * 1 }}, {{ Float64(a, 0.5) * Int32(n, 4) }}', { a: '-0.5', n: '2' })).toBe('SELECT 2.0, -1.0');
    expect(render('SELECT {% set x = 2.0 %}{{ x * 3 }}, {{ [1.0, 2.5] }}, {{ sql_and(a=3.0) }}, \'{{ 3.0 }}\'')).toBe("SELECT 6.0, [1.0, 2.5], `a` = 3.0, '3.0'");
    // Integers stay integers, and a whole float equals its integer.
    expect(render('SELECT {{ 3 }}, {{ 7 // 2 }}, {{ Int32(n, 4) * 2 }}{% if 2.0 == 2 %}, 1{% end %}')).toBe('SELECT 3, 3, 8, 1');
  });
});

describe('helpers', () => {
  it('column and columns quote identifiers and fall back to defaults', () => {
    expect(render("SELECT {{column(c, 'id')}}")).toBe('SELECT `id`');
    expect(render("SELECT {{column(c, 'id')}}", { c: 'we`ird\\name' })).toBe('SELECT `we\\`ird\\\\name`');
    expect(render("SELECT {{columns(cs, 'a, b')}}")).toBe('SELECT `a`, `b`');
    expect(render('SELECT {{columns(cs)}}', { cs: 'x,y,,z' })).toBe('SELECT `x`, `y`, `z`');
    const e = caught(() => render('SELECT {{column(c)}}', { c: 'a\nb' }));
    expect(e.code).toBe('TEMPLATE_PARAMETER');
    expect(e.details).toMatchObject({ parameter: 'c', expected: 'column name' });
    expect(caught(() => render('SELECT {{column(c)}}')).code).toBe('TEMPLATE_PARAMETER');
  });

  it('symbol', () => {
    expect(render("SELECT {{symbol(split_to_array(attr, 'amount')[0])}}")).toBe('SELECT `amount`');
    expect(render('SELECT {{symbol(x)}}', { x: 'a`b' })).toBe('SELECT `a\\`b`');
  });

  it('defined', () => {
    expect(render('{{defined(a)}} {{defined(b)}} {{defined(c)}}', { a: 'x', b: '' })).toBe('1 0 0');
    expect(render("{% set c = 1 %}{{defined(c)}}")).toBe('1');
  });

  it('sql_and builds filters from defined values only', () => {
    const tpl = "WHERE {{sql_and(country__in=Array(countries, 'String', defined=False), id__gte=Int32(min_id, defined=False), id__lt=Int32(max_id, defined=False), name=String(name, defined=False), kind__not_in=Array(k, 'Int8', defined=False), x__neq=Float64(x, defined=False))}}";
    expect(render(tpl)).toBe('WHERE 1');
    expect(render(tpl, { countries: 'ES,US', min_id: '3', name: "o'k" })).toBe("WHERE `country` IN ['ES', 'US'] AND `id` >= 3 AND `name` = 'o\\'k'");
    expect(render(tpl, { max_id: '9', k: ['1', '2'], x: '1.5' })).toBe('WHERE `id` < 9 AND `kind` NOT IN [1, 2] AND `x` != 1.5');
    expect(render("WHERE {{sql_and(a__in=['x'], b__gt=2, c__lte=None)}}")).toBe("WHERE `a` IN ['x'] AND `b` > 2");
    expect(caught(() => render('{{sql_and(1)}}')).code).toBe('TEMPLATE_INVALID');
  });

  it('split_to_array', () => {
    expect(render("{{split_to_array(x)}}", { x: 'a, b,,c' })).toBe("['a', 'b', 'c']");
    expect(render("{{split_to_array(x, 'd,e')}}")).toBe("['d', 'e']");
    expect(render("{{split_to_array(x, separator='|')}}", { x: '1|2' })).toBe("['1', '2']");
    expect(render("{{split_to_array(String(x, 'p,q'))}}")).toBe("['p', 'q']");
  });

  it('enumerate_with_last', () => {
    expect(render("{{enumerate_with_last(['a', 'b'])}}")).toBe("[[0, 'a'], [1, 'b']]");
  });

  it('day_diff and date_diff_in_*', () => {
    expect(render("{{day_diff('2024-01-01', '2024-03-01')}}")).toBe('60');
    expect(render("{{day_diff(Date(a), Date(b))}}", { a: '2024-03-01', b: '2024-01-01 23:00:00'.slice(0, 10) })).toBe('60');
    expect(render("{{day_diff('x', '2024-03-01', default=0)}}")).toBe('0');
    expect(render("{{date_diff_in_seconds('2022-12-19 18:42:22', '2022-12-19 18:42:20')}}")).toBe('2');
    expect(render("{{date_diff_in_minutes('2022-12-19 18:42:22', '2022-12-19 17:42:22')}}")).toBe('60');
    expect(render("{{date_diff_in_hours('2022-12-19', '2022-12-20 01:00:00', backup_date_format='%Y-%m-%d')}}")).toBe('25');
    expect(render("{{date_diff_in_days('2022-12-19 00:00:00', '2022-12-29 00:00:00', '%Y-%m-%d %H:%M:%S')}}")).toBe('10');
    expect(render("{{date_diff_in_seconds('2022-12-19T18:42:23.521Z', '2022-12-19T18:42:24.521Z', date_format='%Y-%m-%dT%H:%M:%S.%fz')}}")).toBe('1');
    expect(render("{{date_diff_in_hours('2022-12-19T10:00:00+02:00', '2022-12-19T10:00:00Z', date_format='%Y-%m-%dT%H:%M:%S%z')}}")).toBe('2');
    expect(render("{{date_diff_in_seconds('bad', '2022-12-19 18:42:20', none_if_error=True)}}")).toBe('NULL');
    expect(caught(() => render("{{date_diff_in_seconds('bad', '2022-12-19 18:42:20')}}")).code).toBe('TEMPLATE_PARAMETER');
    expect(caught(() => render("{{day_diff('2022-02-30', '2022-03-01')}}")).code).toBe('TEMPLATE_PARAMETER');
    // A date read from a request parameter that is missing or wrong: the error names the parameter.
    const missing = caught(() => render('{{day_diff(date_from, date_to)}}', { date_from: '2024-01-01' }));
    expect(missing.details.parameter).toBe('date_to');
    expect(missing.message).toMatch(/^parameter "date_to": day_diff\(\)/);
    const wrong = caught(() => render('{{date_diff_in_hours(a, b)}}', { a: 'soon', b: '2024-01-01 00:00:00' }));
    expect(wrong.details.parameter).toBe('a');
  });

  it('error and custom_error', () => {
    const e = caught(() => render("{% if not defined(x) %}{{ error('x is needed', 404) }}{% end %}"));
    expect(e.code).toBe('TEMPLATE_ERROR');
    expect(e.status).toBe(404);
    expect(e.message).toBe('x is needed');
    expect(caught(() => render("{{ error('m', 500) }}")).status).toBe(400);
    expect(caught(() => render("{{ error('m') }}")).status).toBe(400);
    const c = caught(() => render("{{ custom_error({'error': 'nope', 'code': 403, 'hint': 'ask'}) }}"));
    expect(c.status).toBe(403);
    expect(c.message).toBe('nope');
    expect(c.details).toEqual({ hint: 'ask' });
    // Parameters as values (Tinybird's `{% set m = String(x) %}` then `{'error': m}`): their values.
    const p = caught(() => render("{% set m = String(x) %}{{ custom_error({'error': m, 'code': Int32(c, 418), 'param': String(x), 'list': [Int64(n, 7)]}) }}", { x: 'bad', c: '404' }));
    expect(p.status).toBe(404);
    expect(p.message).toBe('bad');
    expect(p.details).toEqual({ param: 'bad', list: [7] });
    expect(caught(() => render("{{ custom_error({'error': String(x, 'dflt')}) }}")).message).toBe('dflt');
  });

  it('max_threads', () => {
    const r = renderTemplate(T('{{max_threads(4)}}SELECT 1'), {});
    expect(r).toEqual({ sql: 'SELECT 1', maxThreads: 4, usedParams: [] });
  });

  it('max_threads of a request parameter out of 1..1024 names the parameter (400 TEMPLATE_PARAMETER)', () => {
    for (const [tpl, v] of [['{{max_threads(Int32(t, 2))}}SELECT 1', '0'], ['{{max_threads(Int16(t))}}SELECT 1', '5000']] as const) {
      const e = caught(() => render(tpl, { t: v }));
      expect(e.code).toBe('TEMPLATE_PARAMETER');
      expect(e.status).toBe(400);
      expect(e.details).toMatchObject({ parameter: 't' });
      expect(e.message).toContain('"t"');
      expect(e.message).toContain('1 to 1024');
    }
    // A literal is the node's own mistake, said at its position as before.
    expect(caught(() => render('{{max_threads(0)}}SELECT 1')).code).toBe('TEMPLATE_INVALID');
    expect(renderTemplate(T('{{max_threads(Int32(t, 2))}}SELECT 1'), { t: '8' }).maxThreads).toBe(8);
  });

  it('a Float -0 keeps its sign as a default and in text', () => {
    expect(render('SELECT {{Float64(z, -0.0)}}, {{Float32(w, -0.0)}}')).toBe("SELECT -0.0, toFloat32('-0')");
    expect(render("SELECT '{{Float64(z)}}'", { z: '-0' })).toBe("SELECT '-0'");
  });

  it('sql_unescape and len', () => {
    expect(render("{{sql_unescape(String(x), '%')}}", { x: 'a\\%b\\_c' })).toBe("'a%b\\\\_c'");
    expect(render('{{len(split_to_array(x))}} {{len("héllo")}}', { x: 'a,b,c' })).toBe('3 5');
  });
});

describe('templateParameters', () => {
  it('reads types, defaults, descriptions, required, examples and formats', () => {
    const sql = T(`{% set local = 'x' %}
SELECT {{columns(cols, 'a')}} FROM t
WHERE d >= {{Date(start, '2024-01-01', description="first day", required=True, example='2024-02-01', format='date')}}
  AND n < {{Int32(lim, -5)}} AND c IN {{Array(countries, 'String', default='ES,US', description='codes')}}
  {% if defined(flag) %}AND {{column(local)}}{% end %}
  {% for i in split_to_array(items, '') %}{{i}}{% end %}
  AND {{Int32(lim, description='later description')}}`);
    expect(templateParameters(sql)).toEqual([
      { name: 'start', type: 'Date', default: '2024-01-01', description: 'first day', required: true, example: '2024-02-01', format: 'date' },
      { name: 'lim', type: 'Int32', default: -5, description: 'later description', required: false },
      { name: 'countries', type: 'Array(String)', default: 'ES,US', description: 'codes', required: false },
      { name: 'cols', type: 'String', default: 'a', required: false },
      { name: 'flag', type: 'String', required: false },
      { name: 'items', type: 'String', default: '', required: false },
    ]);
  });

  it('is empty for plain SQL and throws syntax errors for broken templates', () => {
    expect(templateParameters('SELECT 1')).toEqual([]);
    expect(caught(() => templateParameters(T('{{ Int32(x'))).code).toBe('TEMPLATE_SYNTAX');
  });
});

describe('SQL context: values stay values wherever the author put them', () => {
  it('writes string content, not a second literal, inside an author-quoted string', () => {
    expect(render("SELECT '%{{String(x)}}%'", { x: "a'b" })).toBe("SELECT '%a\\'b%'");
    expect(render('SELECT "{{String(x)}}"', { x: 'a"b`' })).toBe('SELECT "a\\"b`"');
    expect(render('SELECT `{{String(x)}}`', { x: 'a"b`' })).toBe('SELECT `a"b\\``');
    expect(render("SELECT 'it''s {{String(x)}}'", { x: "'" })).toBe("SELECT 'it''s \\''");
  });

  it('neutralises values inside comments', () => {
    expect(render('SELECT 1 -- {{String(x)}}\n, 2', { x: 'a\nb' })).toBe("SELECT 1 -- 'a\\nb'\n, 2");
    expect(render('SELECT 1 /* {{String(x)}} */, 2', { x: '*/ 3 /*' })).toBe("SELECT 1 /* '* / 3 / *' */, 2");
    // `//` comments out the rest of the line too (ClickHouse): a quote in it opens no string, so
    // the values after it are still quoted (they were written bare, as if inside a string).
    expect(render("SELECT 1 // it's {{String(x)}}\n, {{String(x)}}", { x: 'a b' })).toBe("SELECT 1 // it's 'a b'\n, 'a b'");
  });

  it('keeps adjacent tokens apart', () => {
    expect(render('SELECT 1 -{{Int32(x)}}', { x: '-5' })).toBe('SELECT 1 - -5');
    expect(render("SELECT {{String(x)}}'b'", { x: 'a' })).toBe("SELECT 'a' 'b'");
    expect(render('SELECT 1 /{{column(x)}}', { x: 'c' })).toBe('SELECT 1 /`c`');
    // Two values side by side are not one number (`12`); glued template text stays the author's.
    expect(render('SELECT {{Int32(n, 1)}}{{Int32(m, 2)}} AS d', {})).toBe('SELECT 1 2 AS d');
    expect(render('SELECT x{{Int32(n, 1)}} AS d', {})).toBe('SELECT x1 AS d');
    expect(render('SELECT v_{{Int32(n, 2)}}_b, {{Int32(n, 2)}}_{{Int32(n, 2)}} AS d', {})).toBe('SELECT v_2_b, 2_2 AS d');
    // A negative number after an operand is no subtraction (`LIMIT 1-9`): bracketed, it is the
    // engine's syntax error; after an operator, a bracket or a comma it is written as it is.
    expect(render('SELECT 1 LIMIT 1{{Int32(x, 0)}}', { x: '-9' })).toBe('SELECT 1 LIMIT 1(-9)');
    expect(render('SELECT n_{{Int32(k, 5)}}, `c`{{Float64(f, 1)}}, (1){{Int32(k, 5)}}', { k: '-1', f: '-1.5' })).toBe('SELECT n_(-1), `c`(-1.5), (1)(-1)');
    expect(render('SELECT {{Int32(a, 1)}}{{Int32(k, 5)}}', { k: '-1' })).toBe('SELECT 1(-1)');
    expect(render('SELECT x={{Int32(k, 5)}}, f({{Int32(k, 5)}}), [1,{{Int32(k, 5)}}]', { k: '-1' })).toBe('SELECT x=-1, f(-1), [1,-1]');
  });
});

describe('injection through every parameter type, run on the embedded engine', () => {
  let dir: string;
  let session: Session;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'roost-template-'));
    session = new Session(path.join(dir, 'chdb'));
    session.query('CREATE DATABASE tpl');
    session.query('CREATE TABLE tpl.pub (id Int32, s String, d Date, t DateTime, f Float64, b Bool) ENGINE = MergeTree ORDER BY id');
    session.query("INSERT INTO tpl.pub VALUES (1, 'alpha', '2024-01-01', '2024-01-01 00:00:00', 1.5, true), (2, 'beta', '2024-01-02', '2024-01-02 00:00:00', 2.5, false), (3, 'gamma%', '2024-01-03', '2024-01-03 00:00:00', -1, true)");
    session.query('CREATE TABLE tpl.secret (id Int32, s String, d Date, t DateTime, f Float64, b Bool) ENGINE = MergeTree ORDER BY id');
    session.query("INSERT INTO tpl.secret VALUES (31337, 'SECRET-ROW', '2099-09-09', '2099-09-09 09:09:09', 31337, true)");
  });
  afterAll(() => {
    session?.cleanup?.();
    rmSync(dir, { recursive: true, force: true });
  });

  function run(sql: string): { ok: true; rows: Array<Record<string, unknown>>; text: string } | { ok: false; error: string } {
    try {
      const text = session.query(sql, 'JSONEachRow');
      const rows = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      return { ok: true, rows, text };
    } catch (e) {
      return { ok: false, error: String((e as Error).message) };
    }
  }

  const secretUnion = 'UNION ALL SELECT * FROM tpl.secret';
  const payloads: string[] = [
    "' OR 1=1 --",
    "alpha' OR '1'='1",
    `x' ${secretUnion} --`,
    `x\\' ${secretUnion} --`,
    `x\\\\' ${secretUnion} --`,
    `\\`,
    `x\\`,
    `'; SELECT * FROM tpl.secret; --`,
    `*/ ${secretUnion} /*`,
    `-- \n${secretUnion}`,
    `x\n${secretUnion}`,
    `x\r\n${secretUnion}`,
    `%' ${secretUnion} WHERE '%'='`,
    '%',
    '%%',
    '{{ 1 }}',
    "{% if 1 %}' OR 1=1 --{% end %}",
    `x\0' ${secretUnion} --`,
    `\u02bc OR 1=1 --`,
    `\uff07 OR 1=1 --`,
    `\u2028${secretUnion}`,
    `\ud800' ${secretUnion} --`,
    `\` ${secretUnion} --`,
    `" ${secretUnion} --`,
    `$$ ${secretUnion} $$`,
    `$x$' ${secretUnion} --`,
    '1; SELECT * FROM tpl.secret',
    `1 ${secretUnion}`,
    // Valid SQL with no quote in it (a column, then the union): what a value written bare, as
    // inside a string that is not there, would run.
    `s ${secretUnion}`,
    `1) ${secretUnion} --`,
    `1, 2) ${secretUnion} --`,
    '-1',
    '--1',
    '0x10',
    '1e5',
    '2024-01-01',
    "2024-01-01' OR '1'='1",
    '2024-01-01 00:00:00',
    `2024-01-01 00:00:00' ${secretUnion} --`,
    'true',
    '{"a": "\' OR 1=1 --"}',
    'alpha,beta',
    `alpha,x' ${secretUnion} --`,
    '#!',
    '# ',
  ];
  const arrays: string[][] = [
    ['alpha', `x' ${secretUnion} --`],
    ['1', `2) ${secretUnion} --`],
    ["'", '\\', '`'],
  ];

  const templates: string[] = [
    'SELECT * FROM tpl.pub WHERE s = {{String(x)}}',
    "SELECT * FROM tpl.pub WHERE s = '{{String(x)}}'",
    "SELECT * FROM tpl.pub WHERE s LIKE '%{{String(x)}}%'",
    'SELECT * FROM tpl.pub WHERE s = "{{String(x)}}"',
    'SELECT * FROM tpl.pub WHERE s = `{{String(x)}}`',
    'SELECT * FROM tpl.pub WHERE s = {{x}}',
    "SELECT * FROM tpl.pub WHERE s = {{String(x, 'alpha')}} -- trailing {{String(x)}}\n AND 1",
    'SELECT * FROM tpl.pub /* {{String(x)}} */ WHERE 1',
    "SELECT * FROM tpl.pub // the caller's own rows\nWHERE s = {{String(x, 'alpha')}}",
    "SELECT * FROM tpl.pub WHERE s = {{String(x, 'alpha')}} // it's {{String(x)}}\n AND 1",
    'SELECT * FROM tpl.pub WHERE s = {{sql_unescape(String(x), "%")}}',
    'SELECT * FROM tpl.pub WHERE id = -{{Int32(x)}}',
    'SELECT * FROM tpl.pub WHERE id = {{Int256(x)}}',
    'SELECT * FROM tpl.pub WHERE id = {{UInt64(x)}}',
    'SELECT * FROM tpl.pub WHERE f > {{Float64(x)}}',
    'SELECT * FROM tpl.pub WHERE b = {{Boolean(x)}}',
    'SELECT * FROM tpl.pub WHERE d = {{Date(x)}}',
    'SELECT * FROM tpl.pub WHERE t = {{DateTime(x)}}',
    'SELECT * FROM tpl.pub WHERE t >= {{DateTime64(x)}}',
    'SELECT * FROM tpl.pub WHERE JSONHas({{JSON(x)}}, s)',
    "SELECT * FROM tpl.pub WHERE s IN {{Array(x, 'String')}}",
    "SELECT * FROM tpl.pub WHERE id IN {{Array(x, 'Int32')}}",
    "SELECT * FROM tpl.pub WHERE d IN {{Array(x, 'Date')}}",
    "SELECT * FROM tpl.pub WHERE {{sql_and(s__in=Array(x, 'String', defined=False), s=String(x, defined=False))}}",
    "SELECT * FROM tpl.pub ORDER BY {{column(x, 'id')}}",
    "SELECT {{columns(x, 'id,s')}} FROM tpl.pub",
    'SELECT * FROM tpl.pub ORDER BY {{symbol(x)}}',
    "SELECT * FROM tpl.pub WHERE s IN {{split_to_array(x, 'alpha')}}",
    "{% for v in split_to_array(x, 'alpha') %}SELECT * FROM tpl.pub WHERE s = {{v}} UNION ALL {% end %}SELECT * FROM tpl.pub WHERE 0",
    "{% if String(x, '') == 'alpha' %}SELECT * FROM tpl.pub{% else %}SELECT * FROM tpl.pub WHERE s = {{String(x)}}{% end %}",
  ];

  it('never returns the secret table, and string values round-trip exactly', () => {
    let refused = 0;
    let ran = 0;
    let engineErrors = 0;
    for (const tpl of templates) {
      const inputs: Array<string | string[]> = [...payloads, ...arrays];
      for (const x of inputs) {
        let sql: string;
        try {
          sql = renderTemplate(T(tpl), { x }).sql;
        } catch (e) {
          expect(e, `${tpl} with ${JSON.stringify(x)}`).toBeInstanceOf(RoostError);
          expect(['TEMPLATE_PARAMETER', 'TEMPLATE_INVALID']).toContain((e as RoostError).code);
          refused++;
          continue;
        }
        const r = run(sql);
        if (!r.ok) {
          engineErrors++;
          continue;
        }
        ran++;
        expect(r.text, `${sql}`).not.toContain('SECRET');
        expect(r.text, `${sql}`).not.toContain('31337');
        expect(r.rows.every((row) => row.id === undefined || [1, 2, 3].includes(Number(row.id))), sql).toBe(true);
      }
    }
    if (process.env.TEMPLATE_STATS) console.info({ ran, refused, engineErrors });
    // The suite must really exercise the engine, not only refusals.
    expect(ran).toBeGreaterThan(200);
    expect(refused + ran + engineErrors).toBe(templates.length * (payloads.length + arrays.length));
  });

  it('a String value comes back from the engine exactly as sent', () => {
    const extra = ['', 'plain', '\u0000\u0001\u001f\u007f', 'tab\there', '🙂 ünï', '\\\\\\', "''", '\\x27', '\\u0027'];
    for (const x of [...payloads, ...extra]) {
      const expected = x.replace(/[\ud800-\udfff]/g, (c, i: number) => {
        const code = x.charCodeAt(i);
        const pairHigh = code <= 0xdbff && /[\udc00-\udfff]/.test(x[i + 1] ?? '');
        const pairLow = code >= 0xdc00 && /[\ud800-\udbff]/.test(x[i - 1] ?? '');
        return pairHigh || pairLow ? c : '\ufffd';
      });
      for (const tpl of ["SELECT {{String(x, '')}} AS v", "SELECT '{{String(x, '')}}' AS v", "SELECT concat('[', {{x}}, ']') AS v"]) {
        if (tpl.includes('{{x}}') && x === '') continue;
        const sql = render(tpl, { x });
        const r = run(sql);
        expect(r.ok, `${sql}: ${r.ok ? '' : r.error}`).toBe(true);
        if (!r.ok) continue;
        const want = tpl.includes('concat') ? `[${expected}]` : expected;
        expect(r.rows[0].v, sql).toBe(want);
      }
    }
  });

  it('an identifier from column() names exactly the requested column', () => {
    for (const x of ['plain', 'with space', 'back`tick', 'back\\slash', 'quo\'te', "x` FROM tpl.secret --", '🙂', '%', '{{ x }}']) {
      const sql = render('SELECT 1 AS {{column(x)}}', { x });
      const r = run(sql);
      expect(r.ok, `${sql}: ${r.ok ? '' : r.error}`).toBe(true);
      if (r.ok) expect(Object.keys(r.rows[0]), sql).toEqual([x]);
    }
  });

  it('typed values are read by the engine as the same values', () => {
    const cases: Array<[string, string, unknown]> = [
      ['Int8', '-128', -128],
      ['Int64', '-9223372036854775808', '-9223372036854775808'],
      ['UInt64', '18446744073709551615', '18446744073709551615'],
      ['Int128', '-170141183460469231731687303715884105728', '-170141183460469231731687303715884105728'],
      ['UInt256', '115792089237316195423570985008687907853269984665640564039457584007913129639935', '115792089237316195423570985008687907853269984665640564039457584007913129639935'],
      ['Float64', '-2.5e-3', -0.0025],
      // -0 keeps its sign (Tinybird's Python float does).
      ['Float64', '-0', '-0'],
      ['Float32', '-0', '-0'],
      ['Boolean', 'true', 1],
      ['Date', '2024-02-29', '2024-02-29'],
      ['DateTime', '2024-01-15T10:30:00', '2024-01-15 10:30:00'],
    ];
    for (const [type, value, want] of cases) {
      const sql = render(`SELECT toString({{${type}(x)}}) AS v`, { x: value });
      const r = run(sql);
      expect(r.ok, `${sql}: ${r.ok ? '' : r.error}`).toBe(true);
      if (r.ok) expect(r.rows[0].v, sql).toBe(String(want));
    }
    const a = run(render("SELECT {{Array(x, 'Int32')}} AS v", { x: '1,-2,3' }));
    expect(a.ok && a.rows[0].v).toEqual([1, -2, 3]);
    const inFilter = run(render("SELECT id FROM tpl.pub WHERE {{sql_and(s__in=Array(x, 'String'), id__gt=Int32(y))}} ORDER BY id", { x: 'alpha,beta,gamma%', y: '1' }));
    expect(inFilter.ok && inFilter.rows.map((r) => r.id)).toEqual([2, 3]);
  });

  it('a list of typed values is read by the engine as an array of those values', () => {
    const list = run(render("SELECT {{ [String(s), String(t)] }} AS v, {{ [Int32(n), Int32(m)] }} AS w, toString({{ [Int256(b)] }}[1]) AS x", { s: "it's", t: `x\\' ${secretUnion} --`, n: '7', m: '-1', b: '123456789012345678901234567890' }));
    expect(list.ok, list.ok ? '' : list.error).toBe(true);
    if (list.ok) expect(list.rows[0]).toEqual({ v: ["it's", `x\\' ${secretUnion} --`], w: [7, -1], x: '123456789012345678901234567890' });
    const filter = run(render('SELECT id FROM tpl.pub WHERE {{ sql_and(s__in=[String(a), String(b)]) }} ORDER BY id', { a: 'alpha', b: 'gamma%' }));
    expect(filter.ok && filter.rows.map((r) => r.id)).toEqual([1, 3]);
  });
});

describe('lists and dicts holding typed values', () => {
  it('a list writes each typed value as it is written alone: an array of escaped literals', () => {
    expect(render('SELECT {{ [String(x)] }}', { x: "it's" })).toBe("SELECT ['it\\'s']");
    expect(render('SELECT {{ [String(x), Int32(n), Float32(f), Boolean(b), DateTime(d)] }}', { x: 'a', n: '5', f: '0.1', b: 'true', d: '2024-01-01 00:00:00' }))
      .toBe("SELECT ['a', 5, toFloat32('0.1'), 1, '2024-01-01 00:00:00']");
    expect(render("SELECT {{ [Array(a, 'Int32'), [UInt128(u)]] }}", { a: '1,2', u: '7' })).toBe("SELECT [[1, 2], [toUInt128('7')]]");
    expect(render('SELECT {{ [column(c), 1] }}', { c: 'col' })).toBe('SELECT [`col`, 1]');
    expect(render('SELECT {{ sql_and(c__in=[String(x), String(y)]) }}', { x: 'a', y: "b'" })).toBe("SELECT `c` IN ['a', 'b\\'']");
    // Inside a string the author opened: the array's text, escaped there.
    expect(render("SELECT '{{ [String(x)] }}'", { x: 'v' })).toBe("SELECT '[\\'v\\']'");
    // Nothing of the parameter's bookkeeping is written.
    expect(render('SELECT {{ [String(x), JSON(j)] }}', { x: 'v', j: '{"k":1}' })).not.toMatch(/"name"|"sql"|"type"/);
  });

  it('a parameter not given inside a list is required, as alone (a neutral value when saving a node)', () => {
    const e = caught(() => render('SELECT {{ [String(x)] }}'));
    expect(e.code).toBe('TEMPLATE_PARAMETER');
    expect(e.message).toMatch(/parameter "x" is required/);
    // Nothing declares it required (GET /v0/pipes says required: false): the message says why this call needs it.
    expect(caught(() => render('SELECT {{ Int32(a) }}')).message).toBe('parameter "a" is required (expected Int32): this call uses its value and it has no default; pass a=…, or give it a default in the template');
    expect(caught(() => render('SELECT {{ sql_and(c__in=[String(x)]) }}')).code).toBe('TEMPLATE_PARAMETER');
    expect(render('SELECT {{ [String(x), Int32(n)] }}', {}, { defaults: true })).toBe("SELECT ['', 0]");
  });

  it('a dict is JSON of the values, integers past 2^53 included (they were a 500)', () => {
    expect(render("SELECT {{ {'a': String(x), 'n': Int64(n), 'c': column(c)} }}", { x: 'v', n: '5', c: 'col' })).toBe('SELECT \'{"a":"v","n":5,"c":"col"}\'');
    expect(render("SELECT {{ {'a': 12345678901234567890, 'l': [Int256(b)]} }}", { b: '123456789012345678901234567890' }))
      .toBe('SELECT \'{"a":12345678901234567890,"l":[123456789012345678901234567890]}\'');
    expect(render('SELECT {{ [Int256(b)] }}', { b: '123456789012345678901234567890' })).toBe("SELECT [toInt256('123456789012345678901234567890')]");
    // Plain dicts as before.
    expect(render("SELECT {{ {'a': [1, 'x'], 'b': None, 'c': 1.5} }}")).toBe('SELECT \'{"a":[1,"x"],"b":null,"c":1.5}\'');
  });
});

describe('block nesting limit', () => {
  it('takes blocks nested 100 deep, as documented, and refuses 101', () => {
    const nested = (n: number) => `%\nSELECT 1${'{% if 1 %}'.repeat(n)} + 1${'{% end %}'.repeat(n)}`;
    expect(renderTemplate(nested(100), {}).sql).toBe('SELECT 1 + 1');
    expect(() => renderTemplate(nested(101), {})).toThrow(/blocks are nested more than 100 deep/);
  });
});

describe('template error positions', () => {
  it('are UTF-8 byte offsets, as the SQL analyzer\'s, with columns in characters', () => {
    const ascii = caught(() => renderTemplate("%\nSELECT 'ex' AS a, {{ Int32(x, 1) ", {}));
    const wide = caught(() => renderTemplate("%\nSELECT 'é😀' AS a, {{ Int32(x, 1) ", {}));
    expect(ascii.code).toBe('TEMPLATE_SYNTAX');
    expect(wide.code).toBe('TEMPLATE_SYNTAX');
    // é is 2 bytes (1 more than e), 😀 4 bytes (3 more than x, and 2 UTF-16 units).
    expect(wide.details!.offset).toBe((ascii.details!.offset as number) + 4);
    expect(wide.details!.line).toBe(ascii.details!.line);
    expect(wide.details!.column).toBe(ascii.details!.column);
  });
});
