import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { analyzeSql, compilePipe, createNameMap, roostCodeOf, SqlError, toRoostError, type SqlErrorCode } from '../src/native/sql.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
// chdb's synchronous query() is fine in a test: EXPLAIN AST touches no data.
const chdb = require('chdb') as { query(sql: string, format: string): string };

const TABLES = ['events', 'users', 'sessions', 'tinybird.pipe_stats_rt', 'tinybird.datasources_ops_log', 'roost.audit_log',
  'my table', 'Events2', 'dict_countries', 'join_users'];
const qualified = (name: string) => '`ws_default`.`' + name.replace(/\./g, '_') + '`';
const MAP = Object.fromEntries(TABLES.map((t) => [t, qualified(t)]));
const nameMap = createNameMap(MAP);

function refused(sql: string, map: Parameters<typeof analyzeSql>[1] = nameMap): SqlError {
  try {
    analyzeSql(sql, map);
  } catch (e) {
    if (e instanceof SqlError) return e;
    throw e;
  }
  throw new Error(`accepted: ${sql}`);
}

/** Byte offset of the n-th occurrence of marker (the queries here are ASCII). */
function at(sql: string, marker: string, nth = 0): number {
  let i = -1;
  for (let k = 0; k <= nth; k++) i = sql.indexOf(marker, i + 1);
  if (i < 0) throw new Error(`marker ${marker} not in ${sql}`);
  return i;
}

describe('analyzeSql: rewrite', () => {
  it('qualifies a table and keeps its name usable as a qualifier', () => {
    const r = analyzeSql('SELECT events.id FROM events', MAP);
    expect(r.sql).toBe('SELECT events.id FROM `ws_default`.`events` AS events');
    expect(r.tables).toEqual([{ name: 'events', kind: 'table', offset: 22, length: 6, via: 'from' }]);
  });
  it('a UNION member with a WITH of its own: an earlier member\'s CTE name is the data source; without its own WITH, the CTE', () => {
    expect(analyzeSql('WITH events AS (SELECT 1 AS id) SELECT id FROM events UNION ALL WITH 1 AS k SELECT id FROM events', MAP).sql)
      .toBe('WITH events AS (SELECT 1 AS id) SELECT id FROM events UNION ALL WITH 1 AS k SELECT id FROM `ws_default`.`events` AS events');
    expect(analyzeSql('WITH c AS (SELECT 1 AS id) SELECT id FROM c UNION ALL SELECT id FROM c', MAP).sql).toBe('WITH c AS (SELECT 1 AS id) SELECT id FROM c UNION ALL SELECT id FROM c');
    // Scalar aliases of the first member stay in scope there (ClickHouse merges them in): after IN
    // such an alias is refused as in any later member (18.16 read it as a table), not looked up as a data source.
    expect(() => analyzeSql('WITH [1] AS v SELECT 1 WHERE 1 IN v UNION ALL WITH 2 AS k SELECT 2 WHERE 1 IN v', { ...MAP, v: '`ws_default`.`v`' })).toThrow(/'v' after IN is a WITH alias/);
    // A subquery inside a later member sees the member's names, with a WITH of its own or not.
    expect(analyzeSql("WITH c AS (SELECT 'cte' AS x) SELECT 'a' AS x UNION ALL SELECT x FROM (WITH 1 AS k SELECT x FROM c)", MAP).sql)
      .toBe("WITH c AS (SELECT 'cte' AS x) SELECT 'a' AS x UNION ALL SELECT x FROM (WITH 1 AS k SELECT x FROM c)");
    // A query inside the first member with its own WITH still sees the CTEs.
    expect(analyzeSql('WITH c AS (SELECT 1 AS id) SELECT id FROM (WITH 2 AS k SELECT id FROM c) UNION ALL SELECT 3', MAP).sql).toBe('WITH c AS (SELECT 1 AS id) SELECT id FROM (WITH 2 AS k SELECT id FROM c) UNION ALL SELECT 3');
  });
  it('keeps user aliases, with or without AS', () => {
    expect(analyzeSql('SELECT e.a FROM events e', MAP).sql).toBe('SELECT e.a FROM `ws_default`.`events` e');
    expect(analyzeSql('SELECT e.a FROM events AS e', MAP).sql).toBe('SELECT e.a FROM `ws_default`.`events` AS e');
  });
  it('rewrites dotted service data sources', () => {
    const r = analyzeSql('SELECT * FROM tinybird . /* x */ pipe_stats_rt', MAP);
    expect(r.sql).toBe('SELECT * FROM `ws_default`.`tinybird_pipe_stats_rt` AS pipe_stats_rt');
    expect(r.tables[0].name).toBe('tinybird.pipe_stats_rt');
  });
  it('rewrites IN tables and dictGet literals', () => {
    const r = analyzeSql("SELECT dictGet('dict_countries', 'n', 1) FROM events WHERE a IN users AND b NOT IN (sessions)", MAP);
    expect(r.sql).toBe("SELECT dictGet('ws_default.dict_countries', 'n', 1) FROM `ws_default`.`events` AS events " +
      'WHERE a IN `ws_default`.`users` AND b NOT IN (`ws_default`.`sessions`)');
    expect(r.tables.map((t) => [t.name, t.via])).toEqual([['dict_countries', 'literal'], ['events', 'from'], ['users', 'in'], ['sessions', 'in']]);
  });
  it('leaves CTE names alone and resolves the tables inside them', () => {
    const r = analyzeSql('WITH c AS (SELECT * FROM events) SELECT * FROM c JOIN users USING id', MAP);
    expect(r.sql).toBe('WITH c AS (SELECT * FROM `ws_default`.`events` AS events) SELECT * FROM c JOIN `ws_default`.`users` AS users USING id');
  });
  it('a CTE shadows a table of the same name', () => {
    const r = analyzeSql('WITH events AS (SELECT 1 AS x) SELECT * FROM events', MAP);
    expect(r.tables).toEqual([]);
  });
  it('a non-recursive CTE body referring to its own name reads the table', () => {
    const r = analyzeSql('WITH events AS (SELECT * FROM events) SELECT * FROM events', MAP);
    expect(r.tables.map((t) => t.offset)).toEqual([30]);
  });
  it('returns and strips FORMAT and a trailing semicolon', () => {
    const sql = 'SELECT 1 FROM events FORMAT CSVWithNames ;';
    const r = analyzeSql(sql, MAP);
    expect(r.format).toBe('CSVWithNames');
    expect(r.formatOffset).toBe(at(sql, 'CSVWithNames'));
    expect(r.sql).toBe('SELECT 1 FROM `ws_default`.`events` AS events');
  });
  it('inlines query entries as subqueries', () => {
    const r = analyzeSql('SELECT * FROM _ WHERE x IN _', { _: { kind: 'query', sql: 'SELECT 1 AS x' } });
    expect(r.sql).toBe('SELECT * FROM (SELECT 1 AS x) AS _ WHERE x IN (SELECT 1 AS x)');
  });
  it('accepts lambdas, combinators, parametric aggregates, window functions', () => {
    const sql = 'SELECT arrayMap(x -> x + 1, a), sumIf(b, c), uniqMergeState(s), countOrNull(), quantileIf(0.9)(b, c), ' +
      'row_number() OVER (PARTITION BY a ORDER BY b) FROM events';
    expect(() => analyzeSql(sql, MAP)).not.toThrow();
    // An allowed function by its bare name in a lambda's place, and a column of a refused function's name elsewhere.
    expect(() => analyzeSql('SELECT arrayMap(toString, [1, 2]), arraySort(`negate`, [3, 1]), length(user) FROM events', MAP)).not.toThrow();
    // As a higher-order function's first argument a bare name is a function: a column must be qualified there.
    expect(refused('SELECT arrayConcat(user, [1]) FROM events').message).toBe("function 'user' is not allowed (as the function arrayConcat applies); a column of that name: qualify it (t.user)");
    expect(() => analyzeSql('SELECT arrayConcat(events.user, [1]) FROM events', MAP)).not.toThrow();
  });
  it('function names are case-insensitive only where ClickHouse says so', () => {
    expect(() => analyzeSql('SELECT COUNT(), Sum(a), SUBSTRING(s, 1, 2), CAST(a AS String) FROM events', MAP)).not.toThrow();
    const e = refused('SELECT TOSTRING(a) FROM events');
    expect(e.code).toBe('UNKNOWN_FUNCTION');
    expect(e.message).toBe("unknown function 'TOSTRING'; did you mean 'toString'?");
  });
  it('a function ClickHouse does not have is unknown (with the nearest allowed name), one it has and refuses is not allowed', () => {
    const cases: Array<[string, string]> = [
      ['SELECT toStartOfDya(now())', "unknown function 'toStartOfDya'; did you mean 'toStartOfDay'?"],
      ['SELECT COUNTIF(a > 1) FROM events', "unknown function 'COUNTIF'; did you mean 'countIf'?"],
      ['SELECT SUMIF(a, a > 1) FROM events', "unknown function 'SUMIF'; did you mean 'sumIf'?"],
      ['SELECT uniqexactmerge(s) FROM events', "unknown function 'uniqexactmerge'; did you mean 'uniqExactMerge'?"],
      ['SELECT qwertyuiop(1)', "unknown function 'qwertyuiop'"],
    ];
    for (const [sql, message] of cases) {
      const e = refused(sql);
      expect(e.code, sql).toBe('UNKNOWN_FUNCTION');
      expect(e.message, sql).toBe(message);
      expect(roostCodeOf(e.code)).toBe('SQL_INVALID');
    }
    // Refused functions keep their answer, whatever the case they are written in.
    for (const sql of ['SELECT hostname()', 'SELECT HOSTNAME()', 'SELECT _shardNum()', 'SELECT Sleep(1)']) expect(refused(sql).code, sql).toBe('FORBIDDEN_FUNCTION');
  });
});

type Rule = [sql: string, code: SqlErrorCode, marker: string, nth?: number];

describe('analyzeSql: policy', () => {
  const rules: Rule[] = [
    ['SELECT * FROM system.tables', 'FORBIDDEN_DATABASE', 'system'],
    ['SELECT * FROM `system`.`tables`', 'FORBIDDEN_DATABASE', '`system`'],
    ['SELECT * FROM "system" . "tables"', 'FORBIDDEN_DATABASE', '"system"'],
    ['SELECT * FROM system/* hidden */./**/tables', 'FORBIDDEN_DATABASE', 'system'],
    ['SELECT * FROM system\n-- c\n.\ttables', 'FORBIDDEN_DATABASE', 'system'],
    ['SELECT * FROM INFORMATION_SCHEMA.TABLES', 'FORBIDDEN_DATABASE', 'INFORMATION_SCHEMA'],
    ['SELECT * FROM information_schema.tables', 'FORBIDDEN_DATABASE', 'information_schema'],
    ['SELECT * FROM events WHERE x IN system.one', 'FORBIDDEN_DATABASE', 'system'],
    ['SELECT * FROM events WHERE x IN (SELECT dummy FROM system.one)', 'FORBIDDEN_DATABASE', 'system'],
    ['SELECT * FROM events JOIN system.one ON 1', 'FORBIDDEN_DATABASE', 'system'],
    ['SELECT * FROM events, `system`.one', 'FORBIDDEN_DATABASE', '`system`'],
    ['WITH c AS (SELECT * FROM system.one) SELECT * FROM c', 'FORBIDDEN_DATABASE', 'system'],
    ['SELECT system.one.dummy FROM events', 'FORBIDDEN_DATABASE', 'system'],
    ['SELECT * FROM other_db.events', 'FORBIDDEN_DATABASE', 'other_db'],
    ['SELECT * FROM tinybird.secret', 'UNKNOWN_TABLE', 'tinybird'],
    ['SELECT * FROM nope', 'UNKNOWN_TABLE', 'nope'],
    // A later UNION member with a WITH of its own does not see the first member's CTEs (ClickHouse
    // read the name as a table of the session's current database: `default.secret`).
    ["WITH secret AS (SELECT 'cte' AS v) SELECT 'x' AS v WHERE 0 UNION ALL WITH 1 AS k SELECT v FROM secret", 'UNKNOWN_TABLE', 'secret', 1],
    ["WITH secret AS (SELECT 1 AS v) SELECT v FROM secret UNION ALL WITH 1 AS k SELECT v FROM (SELECT * FROM secret)", 'UNKNOWN_TABLE', 'secret', 2],
    // Bracketed members, and queries inside a later member, with a WITH of their own, too.
    ['WITH cte AS (SELECT 1 AS x) SELECT x FROM cte UNION ALL (WITH 2 AS k SELECT x FROM cte)', 'UNKNOWN_TABLE', 'cte', 2],
    ['WITH cte AS (SELECT 1 AS x) SELECT x FROM cte UNION ALL ((WITH 2 AS k SELECT x FROM cte))', 'UNKNOWN_TABLE', 'cte', 2],
    ['WITH cte AS (SELECT 1 AS x) SELECT x FROM cte EXCEPT (WITH 2 AS k SELECT x FROM cte)', 'UNKNOWN_TABLE', 'cte', 2],
    ['WITH cte AS (SELECT 1 AS x) SELECT x FROM cte UNION ALL (SELECT 5 UNION ALL WITH 2 AS k SELECT x FROM cte)', 'UNKNOWN_TABLE', 'cte', 2],
    // An enclosing UNION's first member's WITH is given to the inner members: they lose the bracket's own CTEs.
    ["WITH 1 AS k SELECT 'a' AS x UNION ALL (WITH d AS (SELECT 'd' AS x) SELECT x FROM d UNION ALL SELECT x FROM d)", 'UNKNOWN_TABLE', 'd)'],
    // The first member's WITH inside its brackets counts too.
    ["(WITH e AS (SELECT 1) SELECT 'x') UNION ALL (WITH d AS (SELECT 1 AS v) SELECT 'z' UNION ALL SELECT v FROM d)", 'UNKNOWN_TABLE', 'd)'],
    ["((WITH 1 AS e SELECT 'x')) UNION ALL (WITH d AS (SELECT 1 AS v) SELECT 'z' UNION ALL SELECT v FROM d)", 'UNKNOWN_TABLE', 'd)'],
    ["WITH 1 AS k SELECT 'a' AS x UNION ALL (WITH d AS (SELECT 'd' AS x) SELECT x FROM d UNION DISTINCT SELECT x FROM (SELECT x FROM d))", 'UNKNOWN_TABLE', 'd))'],
    ['SELECT * FROM EVENTS', 'UNKNOWN_TABLE', 'EVENTS'],
    ['SELECT * FROM events WHERE a IN nope', 'UNKNOWN_TABLE', 'nope'],
    ['SELECT * FROM events WHERE a IN (nope)', 'UNKNOWN_TABLE', 'nope'],
    ["SELECT dictGet('nope', 'x', 1)", 'UNKNOWN_TABLE', "'nope'"],
    ["SELECT dictGet('system.dicts', 'x', 1)", 'FORBIDDEN_DATABASE', "'system.dicts'"],
    ['SELECT dictGet(name, \'x\', 1) FROM events', 'FORBIDDEN_FUNCTION', 'name'],
    ["SELECT joinGet('other.t', 'x', 1)", 'FORBIDDEN_DATABASE', "'other.t'"],
    ["SELECT * FROM file('/etc/passwd')", 'FORBIDDEN_TABLE_FUNCTION', 'file'],
    ["SELECT * FROM FILE('/etc/passwd', 'CSV')", 'FORBIDDEN_TABLE_FUNCTION', 'FILE'],
    ["SELECT * FROM url('http://x')", 'FORBIDDEN_TABLE_FUNCTION', 'url'],
    ["SELECT * FROM remote('h', system.one)", 'FORBIDDEN_TABLE_FUNCTION', 'remote'],
    ["SELECT * FROM remoteSecure('h', db.t)", 'FORBIDDEN_TABLE_FUNCTION', 'remoteSecure'],
    ["SELECT * FROM cluster('c', db.t)", 'FORBIDDEN_TABLE_FUNCTION', 'cluster'],
    ["SELECT * FROM s3('x')", 'FORBIDDEN_TABLE_FUNCTION', 's3'],
    ["SELECT * FROM mysql('h', 'd', 't', 'u', 'p')", 'FORBIDDEN_TABLE_FUNCTION', 'mysql'],
    ["SELECT * FROM executable('x', 'CSV', 'a Int')", 'FORBIDDEN_TABLE_FUNCTION', 'executable'],
    ['SELECT * FROM merge(currentDatabase(), \'.*\')', 'FORBIDDEN_TABLE_FUNCTION', 'merge'],
    ['SELECT * FROM view(SELECT 1)', 'FORBIDDEN_TABLE_FUNCTION', 'view'],
    ["SELECT * FROM dictionary('d')", 'FORBIDDEN_TABLE_FUNCTION', 'dictionary'],
    ["SELECT * FROM input('a Int')", 'FORBIDDEN_TABLE_FUNCTION', 'input'],
    ['SELECT * FROM loop(events)', 'FORBIDDEN_TABLE_FUNCTION', 'loop'],
    ['SELECT * FROM events JOIN url(\'x\') ON 1', 'FORBIDDEN_TABLE_FUNCTION', 'url'],
    ["SELECT * FROM events WHERE a IN (SELECT * FROM file('x'))", 'FORBIDDEN_TABLE_FUNCTION', 'file'],
    ["SELECT file('/etc/passwd')", 'FORBIDDEN_FUNCTION', 'file'],
    ['SELECT hostName()', 'FORBIDDEN_FUNCTION', 'hostName'],
    ['SELECT currentDatabase()', 'FORBIDDEN_FUNCTION', 'currentDatabase'],
    ['SELECT DATABASE()', 'FORBIDDEN_FUNCTION', 'DATABASE'],
    ['SELECT sleep(3)', 'FORBIDDEN_FUNCTION', 'sleep'],
    ["SELECT getSetting('max_memory_usage')", 'FORBIDDEN_FUNCTION', 'getSetting'],
    ["SELECT hasColumnInTable('system', 'one', 'dummy')", 'FORBIDDEN_FUNCTION', 'hasColumnInTable'],
    ['SELECT in(1, events)', 'FORBIDDEN_FUNCTION', 'in'],
    ['SELECT globalIn(1, events)', 'FORBIDDEN_FUNCTION', 'globalIn'],
    ['SELECT __getScalar(\'x\')', 'FORBIDDEN_FUNCTION', '__getScalar'],
    ['SELECT no_such_function(1)', 'UNKNOWN_FUNCTION', 'no_such_function'],
    ['SELECT `file`(\'x\')', 'FORBIDDEN_FUNCTION', '`file`'],
    ['SELECT * APPLY(file) FROM events', 'FORBIDDEN_FUNCTION', 'file'],
    ['SELECT * APPLY file FROM events', 'FORBIDDEN_FUNCTION', 'file'],
    ["SELECT * REPLACE (file('x') AS a) FROM events", 'FORBIDDEN_FUNCTION', 'file'],
    ["SELECT arrayMap(x -> file(x), ['a'])", 'FORBIDDEN_FUNCTION', 'file'],
    // A function by its bare name where a higher-order function takes a lambda.
    ["SELECT arrayMap(file, ['/etc/hostname'])", 'FORBIDDEN_FUNCTION', 'file'],
    ["SELECT arrayMap(`file`, ['x'])", 'FORBIDDEN_FUNCTION', '`file`'],
    ['SELECT arrayFilter(getSetting, [\'max_threads\'])', 'FORBIDDEN_FUNCTION', 'getSetting'],
    ['SELECT mapApply(getMacro, m) FROM events', 'FORBIDDEN_FUNCTION', 'getMacro'],
    ['SELECT arrayFold(filesystemAvailable, [1], 0)', 'FORBIDDEN_FUNCTION', 'filesystemAvailable'],
    ['SELECT arrayMap(hostName, [1])', 'FORBIDDEN_FUNCTION', 'hostName'],
    // In brackets or under an alias it is the same function.
    ["SELECT arrayMap((file), ['x'])", 'FORBIDDEN_FUNCTION', 'file'],
    ["SELECT arrayMap(((getSetting)), ['max_threads'])", 'FORBIDDEN_FUNCTION', 'getSetting'],
    ["SELECT arrayMap(`file` AS f, ['x'])", 'FORBIDDEN_FUNCTION', '`file`'],
    ["SELECT arrayMap(((file AS f) AS g), ['x'])", 'FORBIDDEN_FUNCTION', 'file'],
    ['SELECT mapApply((getMacro), m) FROM events', 'FORBIDDEN_FUNCTION', 'getMacro'],
    // ALL and unary plus in front of it, and empty parameters before the arguments.
    ["SELECT arrayMap(ALL file, ['x'])", 'FORBIDDEN_FUNCTION', 'file'],
    ["SELECT arrayMap(+ + file, ['x'])", 'FORBIDDEN_FUNCTION', 'file'],
    ["SELECT arrayMap((+file AS f), ['x'])", 'FORBIDDEN_FUNCTION', 'file'],
    ["SELECT arrayMap()(file, ['x'])", 'FORBIDDEN_FUNCTION', ')'],
    ["SELECT aiGenerate('hi')", 'FORBIDDEN_FUNCTION', 'aiGenerate'],
    ['SELECT sumIfFile(a) FROM events', 'UNKNOWN_FUNCTION', 'sumIfFile'],
    ['SELECT 1; SELECT 2', 'MULTIPLE_STATEMENTS', 'SELECT', 1],
    ['SELECT 1;;', 'MULTIPLE_STATEMENTS', ';', 1],
    ['INSERT INTO events VALUES (1)', 'NOT_A_SELECT', 'INSERT'],
    ['  /* x */ alter TABLE events DELETE WHERE 1', 'NOT_A_SELECT', 'alter'],
    ['DROP TABLE events', 'NOT_A_SELECT', 'DROP'],
    ['SHOW TABLES', 'NOT_A_SELECT', 'SHOW'],
    ['DESCRIBE events', 'NOT_A_SELECT', 'DESCRIBE'],
    ['EXPLAIN SELECT 1', 'NOT_A_SELECT', 'EXPLAIN'],
    ['SYSTEM FLUSH LOGS', 'NOT_A_SELECT', 'SYSTEM'],
    ['SET readonly = 0', 'NOT_A_SELECT', 'SET'],
    ['USE system', 'NOT_A_SELECT', 'USE'],
    ['KILL QUERY WHERE 1', 'NOT_A_SELECT', 'KILL'],
    ["SELECT 1 INTO OUTFILE '/tmp/x'", 'FORBIDDEN_CLAUSE', 'INTO'],
    ['SELECT {p:String}', 'FORBIDDEN_CLAUSE', '{'],
    ['SELECT * FROM events SETTINGS readonly = 0', 'FORBIDDEN_SETTING', 'readonly'],
    ['SELECT * FROM events SETTINGS max_threads = 1, max_memory_usage = 0', 'FORBIDDEN_SETTING', 'max_memory_usage'],
    ['SELECT * FROM (SELECT * FROM events SETTINGS allow_ddl = 1)', 'FORBIDDEN_SETTING', 'allow_ddl'],
    ['SELECT 1 FORMAT JSON SETTINGS readonly = 0', 'FORBIDDEN_SETTING', 'readonly'],
    ['SELECT * FROM events SETTINGS max_threads = (SELECT 1)', 'FORBIDDEN_SETTING', '('],
    ['SELECT 1 FORMAT Native', 'UNSUPPORTED_FORMAT', 'Native'],
    ['SELECT 1 FORMAT json', 'UNSUPPORTED_FORMAT', 'json'],
    ['SELECT * FROM (SELECT 1 FORMAT JSON)', 'FORMAT_NOT_ALLOWED', 'FORMAT'],
    ['SELECT * FROM , events', 'SYNTAX_ERROR', ','],
    ["SELECT 'unterminated", 'SYNTAX_ERROR', "'"],
    ['SELECT #x', 'SYNTAX_ERROR', '#'],
    ['SELECT (1', 'SYNTAX_ERROR', '('],
    ['SELECT 1)', 'SYNTAX_ERROR', ')'],
    ['SELECT `sys\\tem`.x FROM events', 'SYNTAX_ERROR', '`sys'],
  ];
  for (const [sql, code, marker, nth] of rules) {
    it(`${code}: ${sql.replace(/\s+/g, ' ')}`, () => {
      const e = refused(sql);
      expect({ code: e.code, offset: e.offset }).toEqual({ code, offset: at(sql, marker, nth ?? 0) });
    });
  }
  it('the offset points past a trailing statement separator', () => {
    expect(refused('SELECT 1 FROM events; DROP TABLE events').offset).toBe(22);
  });
  it('maximum query size', () => {
    const e = (() => { try { analyzeSql('SELECT ' + '1 + '.repeat(100) + '1', MAP, { maxQuerySize: 64 }); } catch (err) { return err as SqlError; } })();
    expect(e?.code).toBe('QUERY_TOO_LARGE');
  });
  it('nesting depth', () => {
    expect(refused('SELECT ' + '('.repeat(500) + '1' + ')'.repeat(500)).code).toBe('NESTING_TOO_DEEP');
  });
  it('maps to the server error type at one seam', () => {
    const r = toRoostError(refused('SELECT * FROM system.one'));
    expect(r.code).toBe('SQL_FORBIDDEN');
    expect(r.details).toMatchObject({ sql_code: 'FORBIDDEN_DATABASE', offset: 14 });
  });
  it('refuses a name map entry whose SQL is not a qualified name', () => {
    expect(() => createNameMap({ x: 'db.t; DROP TABLE y' })).toThrow(SqlError);
  });
});

describe('compilePipe', () => {
  const nodes = [
    { name: 'base', sql: 'SELECT * FROM events WHERE a > 0' },
    { name: 'by_user', sql: 'SELECT uid, count() AS c FROM base GROUP BY uid' },
    { name: 'named', sql: 'SELECT b.uid, u.name, b.c FROM by_user b JOIN users u ON u.id = b.uid' },
    { name: 'endpoint', sql: 'SELECT * FROM named WHERE uid IN (SELECT uid FROM base) ORDER BY c DESC' },
  ];
  it('compiles the target into one query with nodes as subqueries', () => {
    const r = compilePipe(nodes, MAP, 'endpoint');
    expect(r.order).toEqual(['base', 'by_user', 'named', 'endpoint']);
    expect(r.dependencies).toEqual({ base: ['events'], by_user: ['base'], named: ['by_user', 'users'], endpoint: ['named', 'base'] });
    expect(r.sql).toContain('FROM (SELECT b.uid, u.name, b.c FROM (SELECT uid, count() AS c FROM (SELECT * FROM `ws_default`.`events` AS events WHERE a > 0) AS base GROUP BY uid) b');
    expect(() => chdb.query('EXPLAIN AST ' + r.sql, 'TSVRaw')).not.toThrow();
  });
  it('defaults to the last node and compiles only what it needs', () => {
    const r = compilePipe(nodes.slice(0, 2), MAP);
    expect(r.order).toEqual(['base', 'by_user']);
  });
  it('reports cycles with the node and offset of the closing reference', () => {
    const e = (() => { try { compilePipe([{ name: 'a', sql: 'SELECT * FROM b' }, { name: 'b', sql: 'SELECT * FROM events JOIN a ON 1' }], MAP, 'a'); } catch (err) { return err as SqlError; } })();
    expect(e).toMatchObject({ code: 'PIPE_CYCLE', node: 'b', offset: 26 });
  });
  it('reports a cycle among nodes the target does not read (it was left to the engine, or saved)', () => {
    const e = (() => { try { compilePipe([{ name: 'a', sql: 'SELECT * FROM b' }, { name: 'b', sql: 'SELECT * FROM a' }, { name: 'c', sql: 'SELECT 1 AS x' }], MAP); } catch (err) { return err as SqlError; } })();
    expect(e).toMatchObject({ code: 'PIPE_CYCLE', node: 'b', offset: 14 });
    expect(e!.message).toContain('a -> b -> a');
    // Nodes outside the target's closure without a cycle are fine, and not compiled in.
    expect(compilePipe([{ name: 'a', sql: 'SELECT * FROM events' }, { name: 'b', sql: 'SELECT * FROM a' }, { name: 'c', sql: 'SELECT 1 AS x' }], MAP).order).toEqual(['c']);
  });
  it('reports a self reference as a cycle', () => {
    expect(() => compilePipe([{ name: 'a', sql: 'SELECT * FROM a' }], MAP)).toThrow(expect.objectContaining({ code: 'PIPE_CYCLE', node: 'a' }));
  });
  it('reports unknown names with node and offset', () => {
    expect(() => compilePipe([{ name: 'a', sql: 'SELECT 1' }, { name: 'b', sql: 'SELECT * FROM nope' }], MAP))
      .toThrow(expect.objectContaining({ code: 'UNKNOWN_TABLE', node: 'b', offset: 14 }));
  });
  it('refuses FORMAT in nodes, duplicates, unknown targets', () => {
    expect(() => compilePipe([{ name: 'a', sql: 'SELECT 1 FORMAT JSON' }], MAP)).toThrow(expect.objectContaining({ code: 'FORMAT_NOT_ALLOWED', node: 'a' }));
    expect(() => compilePipe([{ name: 'a', sql: 'SELECT 1' }, { name: 'a', sql: 'SELECT 2' }], MAP)).toThrow(expect.objectContaining({ code: 'DUPLICATE_NODE' }));
    expect(() => compilePipe([{ name: 'a', sql: 'SELECT 1' }], MAP, 'zz')).toThrow(expect.objectContaining({ code: 'UNKNOWN_NODE' }));
  });
  it('references another pipe through a query entry', () => {
    const map = { ...MAP, other_pipe: { kind: 'query' as const, sql: 'SELECT 1 AS x' } };
    const r = compilePipe([{ name: 'n', sql: 'SELECT x FROM other_pipe' }], map);
    expect(r.sql).toBe('SELECT x FROM (SELECT 1 AS x) AS other_pipe');
    expect(r.dependencies).toEqual({ n: ['other_pipe'] });
  });
  it('node names shadow data sources; a diamond compiles', () => {
    const r = compilePipe([
      { name: 'events', sql: 'SELECT 1 AS a' },
      { name: 'l', sql: 'SELECT a FROM events' },
      { name: 'r', sql: 'SELECT a FROM events' },
      { name: 'top', sql: 'SELECT * FROM l JOIN r USING a' },
    ], MAP);
    expect(r.sql).toBe('SELECT * FROM (SELECT a FROM (SELECT 1 AS a) AS events) AS l JOIN (SELECT a FROM (SELECT 1 AS a) AS events) AS r USING a');
  });
});

// ---------------------------------------------------------------------------
// Differential test: the table references found by the analyzer against those
// in ClickHouse's own AST (EXPLAIN AST through chdb).

interface AstRefs { from: string[]; in: string[] }

function clickhouseRefs(sql: string): AstRefs {
  const ast = chdb.query('EXPLAIN AST ' + sql, 'TSVRaw');
  const lines = ast.split('\n').filter(Boolean).map((l) => ({ depth: l.length - l.trimStart().length, text: l.trim() }));
  const refs: AstRefs = { from: [], in: [] };
  const name = (t: string) => t.replace(/^(TableIdentifier|Identifier) /, '').replace(/ \(alias .*\)$/, '');
  lines.forEach((l, i) => {
    if (l.text.startsWith('TableIdentifier ')) refs.from.push(name(l.text));
    if (/^Function (in|notIn|globalIn|globalNotIn|nullIn|notNullIn|globalNullIn|globalNotNullIn) /.test(l.text)) {
      // Function in > ExpressionList > [left, right]: the right operand at depth + 2.
      const args = [];
      for (let j = i + 2; j < lines.length && lines[j].depth > l.depth + 1; j++) if (lines[j].depth === l.depth + 2) args.push(lines[j]);
      if (args[1]?.text.startsWith('Identifier ')) refs.in.push(name(args[1].text));
    }
  });
  // CTE names (the corpus spells them c_*) are not tables.
  refs.from = refs.from.filter((n) => !n.startsWith('c_'));
  refs.in = refs.in.filter((n) => !n.startsWith('c_'));
  return refs;
}

const corpus = readFileSync(path.join(here, 'sql-corpus/queries.sql'), 'utf8').split('\n-- ----\n').map((q) => q.replace(/\n$/, '')).filter(Boolean);

describe('differential: analyzer vs ClickHouse EXPLAIN AST', () => {
  it('has at least 300 queries', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(300);
  });
  for (const [i, sql] of corpus.entries()) {
    it(`#${i}: ${sql.replace(/\s+/g, ' ').slice(0, 90)}`, () => {
      const ch = clickhouseRefs(sql);
      const ours = analyzeSql(sql, nameMap);
      const mine = (via: string) => ours.tables.filter((t) => t.via === via).map((t) => t.name).sort();
      expect({ from: mine('from'), in: mine('in') }).toEqual({ from: [...ch.from].sort(), in: [...ch.in].sort() });
      // The rewritten query still parses, and reads only the workspace database.
      const after = clickhouseRefs(ours.sql);
      for (const t of [...after.from, ...after.in]) expect(t.startsWith('ws_default.')).toBe(true);
      expect(after.from.length).toBe(ch.from.length);
    });
  }
});

describe('rewritten queries run on the engine', () => {
  it('aliases and bare table names used as qualifiers keep working', async () => {
    const { Session } = await import('chdb');
    const os = await import('node:os');
    const fs = await import('node:fs');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-sql-test-'));
    const s = new Session(dir);
    try {
      s.query('CREATE DATABASE ws_default');
      s.query('CREATE TABLE ws_default.events (id UInt64, uid UInt64, a Int64) ENGINE = MergeTree ORDER BY id');
      s.query('CREATE TABLE ws_default.users (id UInt64, name String) ENGINE = MergeTree ORDER BY id');
      s.query('CREATE TABLE ws_default.sessions (uid UInt64) ENGINE = MergeTree ORDER BY uid');
      s.query('INSERT INTO ws_default.sessions VALUES (10), (20)');
      s.query("INSERT INTO ws_default.events VALUES (1, 10, 5), (2, 20, 7)");
      s.query("INSERT INTO ws_default.users VALUES (10, 'ann'), (20, 'bob')");
      const r = analyzeSql('SELECT events.id, u.name FROM events JOIN users u ON u.id = events.uid ' +
        'WHERE events.uid IN sessions ORDER BY events.id FORMAT JSONEachRow', MAP);
      expect(r.format).toBe('JSONEachRow');
      const out = s.query(r.sql, r.format!).trim().split('\n').map((l) => JSON.parse(l));
      expect(out).toEqual([{ id: 1, name: 'ann' }, { id: 2, name: 'bob' }]);
      const p = compilePipe([
        { name: 'joined', sql: 'SELECT e.a, u.name FROM events e JOIN users u ON u.id = e.uid' },
        { name: 'top', sql: 'SELECT name, sum(a) AS total FROM joined GROUP BY name ORDER BY total DESC LIMIT 1' },
      ], MAP);
      expect(s.query(p.sql, 'CSV').trim()).toBe('"bob",7');
    } finally {
      s.close?.();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
