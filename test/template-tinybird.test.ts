/**
 * Regressions where the template language differed from Tinybird's documented (and
 * implemented) behaviour, found by the pipes audit. Each test names what broke.
 */
import { describe, expect, it } from 'vitest';
import { renderTemplate, templateParameters, type RequestParams } from '../src/pipes/template/index.js';
import { caught } from './helpers/errors.js';

const T = (body: string): string => `%\n${body}`;
const render = (body: string, params: RequestParams = {}, opts = {}): string => renderTemplate(T(body), params, opts).sql;


describe('date_diff_in_* follow Tinybird\'s signature', () => {
  it('date_diff_in_days reads plain dates by default (its default format is %Y-%m-%d)', () => {
    expect(render("{{date_diff_in_days('2019-01-02', '2019-02-01')}}")).toBe('30');
    expect(render("{{date_diff_in_days(a, b)}}", { a: '2024-01-01', b: '2024-01-10' })).toBe('9');
    // As in Tinybird, a datetime does not match the default date format.
    expect(render("{{date_diff_in_days('2019-01-01 00:00:00', '2019-01-02 00:00:00', none_if_error=True) is None}}")).toBe('1');
  });

  it('the fourth positional argument is default, the fifth backup_date_format', () => {
    expect(render("{{date_diff_in_hours('2022-12-19', '2022-12-18', '%Y-%m-%dT%H:%M:%Sz', None, '%Y-%m-%d')}}")).toBe('24');
    expect(render("{{date_diff_in_seconds('2022-12-19', '2022-12-19 00:01:00', backup_date_format='%Y-%m-%d')}}")).toBe('60');
    // `default` is what rendering without values answers (saving a node).
    expect(render("{{date_diff_in_minutes(String(a), String(b), default=7)}}", {}, { defaults: true })).toBe('7');
  });
});

describe('Float parameters keep their ClickHouse type', () => {
  it('Float32 is written as toFloat32 so that it equals a Float32 column (a bare 0.1 is a Float64)', () => {
    expect(render('SELECT {{Float32(x)}}', { x: '0.1' })).toBe("SELECT toFloat32('0.1')");
    expect(render("SELECT {{Array(x, 'Float32')}}", { x: '0.1,2' })).toBe("SELECT [toFloat32('0.1'), toFloat32('2')]");
    // Inside a string the author opened, the value is its text.
    expect(render("SELECT '{{Float32(x)}}'", { x: '0.5' })).toBe("SELECT '0.5'");
  });

  it('an integral Float64 is written in a float form, not as an integer literal', () => {
    expect(render('SELECT {{Float64(x)}}', { x: '1' })).toBe('SELECT 1.0');
    expect(render('SELECT {{Float64(x, 0)}}')).toBe('SELECT 0.0');
    expect(render('SELECT {{Float64(x)}}', { x: '-2.5' })).toBe('SELECT -2.5');
    expect(render('SELECT {{Float64(x)}}', { x: '1e21' })).toBe('SELECT 1e+21');
  });
});

describe('a missing parameter used in an operation', () => {
  it('is refused as a missing parameter (400), not as an invalid template (422)', () => {
    for (const body of ['{% if Int32(n) > 5 %}x{% end %}', "{{ String(s) + '%' }}", '{{ -Int32(n) }}', '{{ x[0] }}', '{{ Int32(n) * 2 }}']) {
      const e = caught(() => render(body));
      expect(e.code, body).toBe('TEMPLATE_PARAMETER');
      expect(e.status, body).toBe(400);
    }
    expect(caught(() => render('{{ Int32(n) * 2 }}')).details).toMatchObject({ parameter: 'n', expected: 'Int32' });
  });

  it('still computes when the value is given, and can be saved (rendered without values)', () => {
    const body = "SELECT 1 {% if defined(p) %}WHERE s LIKE {{ p + '%' }} AND n > {{ Int32(n, 0) * 2 }} AND c = {{ p[0] }}{% end %}";
    expect(render(body, { p: 'ab' })).toBe("SELECT 1 WHERE s LIKE 'ab%' AND n > 0 AND c = 'a'");
    expect(() => renderTemplate(T(body), {}, { defaults: true })).not.toThrow();
  });
});

describe('templateParameters', () => {
  it('lists a parameter read by the {% set %} that binds its name', () => {
    expect(templateParameters(T("{% set limit = Int32(limit, 10, description='rows') %}SELECT 1 LIMIT {{limit}}")))
      .toEqual([{ name: 'limit', type: 'Int32', default: 10, description: 'rows', required: false }]);
    // A name read only after it is set is not a parameter.
    expect(templateParameters(T("{% set x = 5 %}SELECT {{x}} {% for y in split_to_array(ys, 'a') %}{{y}}{% end %}")).map((p) => p.name)).toEqual(['ys']);
  });

  it('shows the default of column(), columns() and symbol() (what a call without the parameter gets)', () => {
    expect(templateParameters(T("SELECT {{columns(cols, 'a,b')}} FROM t ORDER BY {{column(order_by, 'views')}} {% if defined(desc) %}DESC{% end %}")))
      .toEqual([
        { name: 'cols', type: 'String', default: 'a,b', required: false },
        { name: 'order_by', type: 'String', default: 'views', required: false },
        { name: 'desc', type: 'String', required: false },
      ]);
    expect(templateParameters(T("SELECT {{column(c)}} FROM t")))
      .toEqual([{ name: 'c', type: 'String', required: false }]);
  });
});
