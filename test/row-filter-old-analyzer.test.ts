/**
 * Row filters and the service views' workspace condition against ClickHouse's old query analyzer
 * (a tenant's own server of 20.x to 24.2, or a later one with it turned off). That analyzer carries
 * an enclosing query's `WITH 'acme' AS org` into the subquery a filter stands in and replaces a
 * bare `org` there: `WHERE (org = 'acme')` held for every row. The views Roost builds name the
 * columns qualified; here they run on chdb with `allow_experimental_analyzer = 0`, the old
 * analyzer, after the user's query went through the analyzer as on a real call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import { analyzeSql, qualifyColumns } from '../src/native/sql.js';
import { rowFilterView } from '../src/datasources/name-map.js';
import { SERVICE_TABLES, serviceDb, serviceViewDefs } from '../src/service/service-log.js';

let dir: string;
let s: Session;
const OLD = ' SETTINGS allow_experimental_analyzer = 0';
const TABLE = '`ws_1`.`orders`';
const COLUMNS = ['id', 'org', 'n.x', 't', 'date'];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-old-analyzer-'));
  s = new Session(dir);
  s.query('CREATE DATABASE ws_1');
  s.query('CREATE TABLE ws_1.orders (id Int32, org String, n Nested(x String), t Tuple(a String), `date` Date) ENGINE = MergeTree ORDER BY id');
  s.query("INSERT INTO ws_1.orders VALUES (1, 'acme', ['a'], ('a'), '2024-01-01'), (2, 'globex', ['b'], ('b'), '2024-01-02'), (3, 'initech', [], ('c'), '2024-01-03')");
});
afterAll(() => {
  s?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The ids `query` returns when `orders` is the data source as the filtered token sees it. */
function idsThrough(filter: string, query: string, settings = OLD): string {
  const a = analyzeSql(query, { orders: { kind: 'query', sql: rowFilterView(TABLE, filter, COLUMNS) } });
  return s.query(`${a.sql}${settings}`, 'CSV').trim().split('\n').join(',');
}

describe('row filters under the old query analyzer', () => {
  it('the hole itself: a bare filter column is replaced by an enclosing WITH alias there (why the view qualifies)', () => {
    const bare = `WITH 'acme' AS org SELECT id FROM (SELECT * FROM ${TABLE} WHERE (org = 'acme')) ORDER BY id`;
    expect(s.query(`${bare}${OLD}`, 'CSV').trim()).toBe('1\n2\n3');
  });

  const cases: Array<[string, string, string]> = [
    ["org = 'acme'", "WITH 'acme' AS org SELECT id FROM orders ORDER BY id", '1'],
    ["org = 'acme'", "WITH 'acme' AS org SELECT id FROM (SELECT * FROM orders) ORDER BY id", '1'],
    ["org = 'acme'", "SELECT 0 AS id WHERE 0 UNION ALL SELECT id FROM (WITH 'acme' AS org SELECT id FROM orders) ORDER BY id", '1'],
    ["org IN ('acme')", "WITH (SELECT 'acme') AS org SELECT id FROM orders ORDER BY id", '1'],
    ["has(n.x, 'a')", "WITH ['a'] AS `n.x` SELECT id FROM orders ORDER BY id", '1'],
    ["t.a = 'a'", "WITH 'a' AS `t.a` SELECT id FROM orders ORDER BY id", '1'],
    ["`org` = 'acme'", "WITH 'acme' AS org SELECT id FROM orders ORDER BY id", '1'],
    ['"org" = \'acme\'', "WITH 'acme' AS org SELECT id FROM orders ORDER BY id", '1'],
    ["date = '2024-01-01'", "WITH toDate('2024-01-01') AS date SELECT id FROM orders ORDER BY id", '1'],
    ["arrayExists(x -> x = org, ['acme'])", "WITH 'acme' AS org SELECT id FROM orders ORDER BY id", '1'],
    ["org = 'acme' AND date >= toDate('2024-01-02') - INTERVAL 1 day", "WITH 'acme' AS org SELECT id FROM orders ORDER BY id", '1'],
    ["CASE org WHEN 'acme' THEN 1 ELSE 0 END = 1", "WITH 'acme' AS org SELECT id FROM orders ORDER BY id", '1'],
    ["extract(org, '^(acme)$') = 'acme'", "WITH 'acme' AS org SELECT id FROM orders ORDER BY id", '1'],
    ['100 DIV id = 100', 'WITH 1 AS id SELECT id FROM orders ORDER BY id', '1'],
    ["(org = 'acme') AND (arrayExists(org -> org != '', ['x']))", "WITH 'acme' AS org SELECT id FROM orders ORDER BY id", '1'],
    ["date_diff(day, date, toDate('2024-01-03')) = 2", "WITH toDate('2024-01-03') AS date SELECT id FROM orders ORDER BY id", '1'],
  ];
  it.each(cases)('filter %s, query %s', (filter, query, want) => {
    expect(idsThrough(filter, query)).toBe(want);
    expect(idsThrough(filter, query, '')).toBe(want);  // the new analyzer (chdb's default) agrees
  });
});

describe('WITH aliases and inlined pipes (a JWT\'s fixed parameters) under the old query analyzer', () => {
  const pipe = "SELECT * FROM `ws_1`.`orders` WHERE org = 'acme'";
  const query = "WITH 'acme' AS org SELECT id FROM org_orders ORDER BY id";
  it('the hole: the alias replaces the pipe\'s column, and its condition holds for every row', () => {
    const a = analyzeSql(query, { org_orders: { kind: 'query', sql: pipe } });
    expect(s.query(`${a.sql}${OLD}`, 'CSV').trim()).toBe('1\n2\n3');
  });
  it('guardAliases refuses any WITH alias where a pipe is read: plain, nested, dotted, in a UNION member or subquery', () => {
    const map = { org_orders: { kind: 'query' as const, sql: pipe }, nested: { kind: 'query' as const, sql: "SELECT * FROM `ws_1`.`orders` WHERE has(n.x, 'a')" } };
    const hole = ["WITH tuple('acme' AS org) AS z SELECT id FROM org_orders ORDER BY id", "WITH [('acme' AS org)] AS z SELECT id FROM org_orders ORDER BY id"];
    for (const q of hole) expect(s.query(`${analyzeSql(q, map).sql}${OLD}`, 'CSV').trim(), q).toBe('1\n2\n3');
    for (const q of [query, ...hole, 'WITH tuple([1] AS `n.x`) AS z SELECT id FROM nested', "SELECT 1 FROM (WITH 'acme' AS org SELECT * FROM (SELECT id FROM org_orders))",
      "SELECT 1 AS id WHERE 0 UNION ALL WITH concat('acme' AS org) AS z SELECT id FROM org_orders", 'WITH 1 AS k SELECT id, k FROM org_orders']) {
      expect(() => analyzeSql(q, map, { guardAliases: true }), q).toThrow(/may not define aliases in WITH/);
    }
    // Aliases elsewhere (the SELECT list, a CTE's own SELECT) stay in their query; CTEs are tables.
    for (const q of ['SELECT id, 1 AS k FROM org_orders', "WITH c AS (SELECT id, 'acme' AS org FROM org_orders) SELECT id FROM c", "WITH 'acme' AS org SELECT org"]) {
      expect(analyzeSql(q, map, { guardAliases: true }).sql, q).toBeTruthy();
    }
  });
});

describe('qualifyColumns', () => {
  const q = (expr: string) => qualifyColumns(expr, COLUMNS, 'T');
  it('qualifies column references and chains that start at a column', () => {
    expect(q("org = 'acme'")).toBe("T.org = 'acme'");
    expect(q("has(n.x, 'a') AND t.1 = 'a' AND `org` != \"id\"")).toBe("has(T.n.x, 'a') AND T.t.1 = 'a' AND T.`org` != T.\"id\"");
    expect(q("org IN (id, 'x') OR NOT (id BETWEEN 1 AND 2)")).toBe("T.org IN (T.id, 'x') OR NOT (T.id BETWEEN 1 AND 2)");
    expect(q('id/**/>/* x */1')).toBe('T.id/**/>/* x */1');
  });
  it('leaves functions, lambda parameters, types, aliases, keywords and units bare', () => {
    expect(q('date(id) = today()')).toBe('date(T.id) = today()');
    expect(q('arrayExists((id, org) -> id = 1, [1], [2])')).toBe('arrayExists((id, org) -> id = 1, [1], [2])');
    expect(q('CAST(id AS date) = id::date')).toBe('CAST(T.id AS date) = T.id::date');
    expect(q('id = 1 AND date > now() - INTERVAL 1 date')).toBe('T.id = 1 AND T.date > now() - INTERVAL 1 date');
    expect(q("date = DATE '2024-01-01' AND extract(date FROM date) = 1")).toBe("T.date = DATE '2024-01-01' AND extract(date FROM T.date) = 1");
    expect(q('other = 1 AND x.org = 2')).toBe('other = 1 AND x.org = 2');
    expect(q("id IS NOT NULL AND org != ''")).toBe("T.id IS NOT NULL AND T.org != ''");
    expect(q('date_diff(day, date, today()) < 7 AND dateDiff(d, date, today()) > 1')).toBe('date_diff(day, T.date, today()) < 7 AND dateDiff(d, T.date, today()) > 1');
  });
  it('columns named like keywords where they stand as operands; literals stay literals', () => {
    const k = (expr: string) => qualifyColumns(expr, ['global', 'like', 'in', 'and', 'between', 'limit', 'from', 'interval', 'not', 'inf', 'org', 'x'], 'T');
    expect(k("global = 'acme'")).toBe("T.global = 'acme'");
    expect(k('like = 1 AND in = 2 OR and = 3')).toBe('T.like = 1 AND T.in = 2 OR T.and = 3');
    expect(k('between > 1 AND limit + 0 = 1 AND from - 1 = 0 AND limit * 2 = 2')).toBe('T.between > 1 AND T.limit + 0 = 1 AND T.from - 1 = 0 AND T.limit * 2 = 2');
    expect(k("x NOT IN (1) AND x LIKE 'a' AND x BETWEEN 1 AND 2 AND NOT -x < 0")).toBe("T.x NOT IN (1) AND T.x LIKE 'a' AND T.x BETWEEN 1 AND 2 AND NOT -T.x < 0");
    expect(k('x > now() - INTERVAL -1 day')).toBe('T.x > now() - INTERVAL -1 day');
    expect(k("overlay('xxxx' PLACING org FROM 1) = 'acme' AND inf > 1e300")).toBe("overlay('xxxx' PLACING T.org FROM 1) = 'acme' AND inf > 1e300");
    expect(k("CASE limit WHEN 'acme' THEN 1 ELSE 0 END = 1 AND CAST(from AS String) = 'a'")).toBe("CASE T.limit WHEN 'acme' THEN 1 ELSE 0 END = 1 AND CAST(T.from AS String) = 'a'");
    expect(k("substring(from from 1 for 4) = 'acme' AND CASE WHEN 1 THEN from ELSE 'z' END = 'acme'")).toBe("substring(T.from from 1 for 4) = 'acme' AND CASE WHEN 1 THEN T.from ELSE 'z' END = 'acme'");
    expect(k('in - 1 = 0 AND and + 0 = 1 AND (not) = 1 AND NOT not')).toBe('T.in - 1 = 0 AND T.and + 0 = 1 AND (T.not) = 1 AND NOT T.not');
  });
  it('the fourth review: NOT after a keyword-named column, (select) as a column, signs, lowercase not in', () => {
    const k = (expr: string) => qualifyColumns(expr, ['distinct', 'case', 'all', 'select', 'with', 'in', 'between', 'like', 'id', 'x'], 'T');
    expect(k('distinct NOT IN (0,1,2) AND case NOT BETWEEN 0 AND 2')).toBe('T.distinct NOT IN (0,1,2) AND T.case NOT BETWEEN 0 AND 2');
    expect(k('(select) = 3 AND (with) > 2 AND (select = 3)')).toBe('(T.select) = 3 AND (T.with) > 2 AND (T.select = 3)');
    expect(k('case + 1 = 4 AND all - 1 = 2')).toBe('T.case + 1 = 4 AND T.all - 1 = 2');
    expect(k("id not in [1,2] AND id global not in [1] AND id not between -1 and 1 AND toString(id) not like '1'"))
      .toBe("T.id not in [1,2] AND T.id global not in [1] AND T.id not between -1 and 1 AND toString(T.id) not like '1'");
    expect(k('CASE x WHEN -1 THEN 1 ELSE 0 END = 1')).toBe('CASE T.x WHEN -1 THEN 1 ELSE 0 END = 1');
  });
  it('leaves a subquery in the filter its own names', () => {
    expect(qualifyColumns("org IN (SELECT org FROM (SELECT 'ES' AS org)) AND x = 1", ['org', 'x'], 'T')).toBe("T.org IN (SELECT org FROM (SELECT 'ES' AS org)) AND T.x = 1");
  });
  it('EXTRACT the regular expression function, DIV and MOD, lambdas in their own extent', () => {
    const k = (expr: string) => qualifyColumns(expr, ['limit', 'offset', 'case', 'org', 'id', 'arr'], 'T');
    expect(k('limit = 1 AND (offset) > 2 AND case != 0')).toBe('T.limit = 1 AND (T.offset) > 2 AND T.case != 0');
    expect(k("CASE org WHEN 'a' THEN 1 ELSE 0 END = 1")).toBe("CASE T.org WHEN 'a' THEN 1 ELSE 0 END = 1");
    expect(k("extract(org, '^(acme)$') = 'acme'")).toBe("extract(T.org, '^(acme)$') = 'acme'");
    expect(k('100 DIV id = 100 AND id MOD 2 = 0')).toBe('100 DIV T.id = 100 AND T.id MOD 2 = 0');
    expect(k("(org = 'acme') AND (arrayExists(org -> org != '', arr))")).toBe("(T.org = 'acme') AND (arrayExists(org -> org != '', T.arr))");
    expect(k("arrayExists((id, x) -> id = x, arr, arr) AND id = 1")).toBe('arrayExists((id, x) -> id = x, T.arr, T.arr) AND T.id = 1');
  });
  it('refuses what does not lex', () => {
    expect(() => q("org = 'acme")).toThrow(/not closed/);
  });
});

describe('service views under the old query analyzer', () => {
  it('an enclosing WITH alias named workspace_id does not open other workspaces\' rows', () => {
    const db = serviceDb('t1');
    s.query(`CREATE DATABASE ${db}`);
    const def = SERVICE_TABLES.pipe_stats_rt!;
    s.query(`CREATE TABLE ${db}.pipe_stats_rt (${def.columns}) ENGINE = MergeTree ORDER BY ${def.order}`);
    s.query(`INSERT INTO ${db}.pipe_stats_rt (workspace_id, pipe_name) VALUES ('w-mine', 'mine'), ('w-other', 'theirs')`);
    const views = serviceViewDefs('t1', 'w-mine');
    for (const name of ['tinybird.pipe_stats_rt', 'tinybird.pipe_stats']) {
      const a = analyzeSql(`WITH 'w-mine' AS workspace_id SELECT pipe_name FROM ${name} ORDER BY pipe_name`, { [name]: { kind: 'query', sql: views[name]!.sql } });
      expect(s.query(`${a.sql}${OLD}`, 'CSV').trim(), name).toBe('"mine"');
    }
  });
});
