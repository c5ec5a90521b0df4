/** /v0/sql over HTTP: the analyzer's policy, name resolution, formats, limits and cancellation. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;

const q = (sql: string, t = token) => call(`${srv.url}/v0/sql?q=${encodeURIComponent(sql)}`, { token: t });
const rows = async (sql: string, t = token) => {
  const r = await q(`${sql} FORMAT JSONEachRow`, t);
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
};

beforeAll(async () => {
  // 5 s: the 1,000,000-row Parquet result below took over 2 s on a slow CI machine (408).
  srv = await startServer({ args: ['--query-timeout', '5000'] });
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const post = (p: string, body?: string) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers: { 'Content-Type': 'text/csv' } });
  await post(`/v0/datasources?name=events&schema=${encodeURIComponent('id UInt32, country String, amount Float64')}`);
  await post('/v0/datasources?name=events&mode=append', '1,ES,10\n2,FR,20\n3,ES,30\n4,DE,40\n');
  await post(`/v0/datasources?name=countries&schema=${encodeURIComponent('code String, label String')}`);
  await post('/v0/datasources?name=countries&mode=append', 'ES,Spain\nFR,France\n');
  // A second workspace in the same tenant (same cell): its database must stay out of reach.
  await call(`${srv.url}/v0/tenants/local/workspaces`, { method: 'POST', token: srv.operatorToken, body: JSON.stringify({ name: 'other' }) });
});
afterAll(async () => { await srv?.stop(); });

describe('policy: refused with a code and the offset of the offending token', () => {
  const refused: Array<[string, string, number]> = [
    ['SELECT * FROM system.tables', 'FORBIDDEN_DATABASE', 14],
    ['SELECT * FROM SYSTEM.tables', 'FORBIDDEN_DATABASE', 14],
    ['SELECT * FROM `system`.`tables`', 'FORBIDDEN_DATABASE', 14],
    ['SELECT * FROM "system"."tables"', 'FORBIDDEN_DATABASE', 14],
    ['SELECT * FROM system /* c */ . -- x\n tables', 'FORBIDDEN_DATABASE', 14],
    ['SELECT * FROM information_schema.tables', 'FORBIDDEN_DATABASE', 14],
    ["SELECT * FROM file('/etc/passwd', 'LineAsString')", 'FORBIDDEN_TABLE_FUNCTION', 14],
    ["SELECT * FROM url('http://127.0.0.1/', 'CSV', 'a String')", 'FORBIDDEN_TABLE_FUNCTION', 14],
    ["SELECT * FROM remote('127.0.0.1', system.one)", 'FORBIDDEN_TABLE_FUNCTION', 14],
    ["SELECT * FROM s3('http://x/y.csv')", 'FORBIDDEN_TABLE_FUNCTION', 14],
    ["SELECT * FROM executable('id', 'TSV', 'a String')", 'FORBIDDEN_TABLE_FUNCTION', 14],
    ['SELECT * FROM input(\'a String\')', 'FORBIDDEN_TABLE_FUNCTION', 14],
    ["SELECT * FROM merge(currentDatabase(), '.*')", 'FORBIDDEN_TABLE_FUNCTION', 14],
    ['SELECT 1; SELECT 2', 'MULTIPLE_STATEMENTS', 10],
    ['INSERT INTO events VALUES (1, \'x\', 1)', 'NOT_A_SELECT', 0],
    ['DROP TABLE events', 'NOT_A_SELECT', 0],
    ["SELECT * FROM events INTO OUTFILE '/tmp/x'", 'FORBIDDEN_CLAUSE', 21],
    ['SELECT 1 SETTINGS max_memory_usage = 0', 'FORBIDDEN_SETTING', 18],
    ["SELECT file('/etc/passwd')", 'FORBIDDEN_FUNCTION', 7],
    ['SELECT * FROM nope', 'UNKNOWN_TABLE', 14],
  ];
  for (const [sql, code, offset] of refused) {
    it(sql.replace(/\n/g, ' '), async () => {
      const r = await q(sql);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.body.sql_code).toBe(code);
      expect(r.body.offset).toBe(offset);
    });
  }

  it("another workspace's database cannot be named", async () => {
    const ws = (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces.find((w: { name: string }) => w.name === 'other');
    const r = await q(`SELECT * FROM ${ws.database}.events`);
    expect(r.status).toBe(403);
    expect(r.body.sql_code).toBe('FORBIDDEN_DATABASE');
  });
});

describe('templates in the Query API', () => {
  it('a query starting with a % line is rendered with the request\'s parameters, typed and checked', async () => {
    const t = '%\nSELECT {{Int32(n, 5)}} * 2 AS x, {{String(s, \'d\')}} AS s';
    expect(await rows(t)).toEqual([{ x: 10, s: 'd' }]);
    const withParams = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${t} FORMAT JSON`)}&n=21&s=${encodeURIComponent("o'k")}`, { token });
    expect(withParams.body.data, withParams.text).toEqual([{ x: 42, s: "o'k" }]);
    const bad = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${t} FORMAT JSON`)}&n=abc`, { token });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'TEMPLATE_PARAMETER', parameter: 'n' });
    // The caller's token is no parameter of it.
    const tok = await call(`${srv.url}/v0/sql?q=${encodeURIComponent("%\nSELECT {{String(token, 'none')}} AS t FORMAT JSON")}&token=${token}`);
    expect(tok.body.data).toEqual([{ t: 'none' }]);
    // % on the query's own line: said so (it was "a query starts with SELECT").
    const sameLine = await q('% SELECT 1');
    expect(sameLine.status).toBe(400);
    expect(sameLine.body.error).toMatch(/a template starts with a line holding % alone/);
  });
});

describe('a JSON body of parameters', () => {
  it('takes lists as lists (a pipe read with them, and a % query), the body over the query string, and -0 with its sign', async () => {
    const pipe = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'by_codes', nodes: [{ name: 'e', sql: "%\nSELECT code FROM countries WHERE code IN {{Array(c, 'String', 'ES')}} ORDER BY code", type: 'endpoint' }] }) });
    expect(pipe.status, pipe.text).toBe(200);
    const json = (path: string, body: unknown) => call(`${srv.url}${path}`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    // A list (it was dropped: the pipe ran with its default, ES).
    const list = await json('/v0/sql', { q: 'SELECT * FROM by_codes FORMAT JSON', c: ['FR', "O'X", 'a,b'] });
    expect(list.status, list.text).toBe(200);
    expect(list.body.data).toEqual([{ code: 'FR' }]);
    // The body's value over the query string's of the same name.
    const both = await json('/v0/sql?c=ES', { q: 'SELECT * FROM by_codes FORMAT JSON', c: ['FR'] });
    expect(both.body.data).toEqual([{ code: 'FR' }]);
    // A template query with a list, a number, and -0 as sent.
    // (As text: JSON.stringify writes -0 as 0.)
    const t = await json('/v0/sql', `{"q": ${JSON.stringify("%\nSELECT {{Array(xs, 'Int32')}} AS xs, toString({{Float64(f)}}) AS f, {{Int32(n)}} AS n FORMAT JSON")}, "xs": [1, 2, 3], "f": -0.0, "n": 7}`);
    expect(t.status, t.text).toBe(200);
    expect(t.body.data).toEqual([{ xs: [1, 2, 3], f: '-0', n: 7 }]);
    // An endpoint's JSON body the same.
    expect((await json('/v0/pipes', { name: 'negz', nodes: [{ name: 'e', sql: '%\nSELECT toString({{Float64(f, 1)}}) AS f', type: 'endpoint' }] })).status).toBe(200);
    const e = await json('/v0/pipes/negz.json', '{"f": -0.0}');
    expect(e.body.data, e.text).toEqual([{ f: '-0' }]);
  });
});

describe('functions the parser rewrites', () => {
  it('dateAdd, DATE_ADD, timestampAdd, dateSub, date_sub, TIMESTAMP_SUB work as in ClickHouse (they were refused: not in system.functions)', async () => {
    const got = await rows("SELECT timestampAdd(toDate('2024-01-10'), INTERVAL -7 DAY) AS a, DATE_ADD(DAY, 1, toDate('2024-01-10')) AS b, dateSub(day, 2, toDate('2024-01-10')) AS c, date_add(toDate('2024-01-10'), INTERVAL 3 DAY) AS d, TIMESTAMP_SUB(toDateTime('2024-01-10 00:00:00', 'UTC'), INTERVAL 1 HOUR) AS e, date_sub(toDate('2024-01-10'), INTERVAL 1 MONTH) AS f");
    expect(got).toEqual([{ a: '2024-01-03', b: '2024-01-11', c: '2024-01-08', d: '2024-01-13', e: '2024-01-09 23:00:00', f: '2023-12-10' }]);
  });
});

describe('names resolve inside every construct', () => {
  it('joins, CTEs, IN subqueries, unions, nested subqueries and aliases', async () => {
    expect(await rows('SELECT e.id, c.label FROM events AS e INNER JOIN countries c ON e.country = c.code ORDER BY e.id')).toEqual([
      { id: 1, label: 'Spain' }, { id: 2, label: 'France' }, { id: 3, label: 'Spain' },
    ]);
    expect(await rows('WITH es AS (SELECT * FROM events WHERE country = \'ES\') SELECT sum(amount) AS s FROM es')).toEqual([{ s: 40 }]);
    expect(await rows('SELECT count() AS c FROM events WHERE country IN (SELECT code FROM countries)')).toEqual([{ c: 3 }]);
    expect(await rows('SELECT id FROM events WHERE id < 2 UNION ALL SELECT id FROM (SELECT id FROM (SELECT id FROM events WHERE id = 4))')).toEqual([{ id: 1 }, { id: 4 }]);
    expect(await rows('SELECT events.id FROM events WHERE events.country = \'DE\'')).toEqual([{ id: 4 }]);
    expect(await rows('SELECT count() AS c FROM numbers(10)')).toEqual([{ c: 10 }]);
  });

  it('the service data sources resolve to the workspace\'s own tables', async () => {
    const r = await q('SELECT count() FROM tinybird.datasources_ops_log');
    expect(r.status).toBe(200);
  });
});

describe('formats', () => {
  it('JSON in Tinybird\'s shape', async () => {
    const r = await q('SELECT id, country FROM events ORDER BY id LIMIT 2');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    expect(r.body.meta).toEqual([{ name: 'id', type: 'UInt32' }, { name: 'country', type: 'String' }]);
    expect(r.body.data).toEqual([{ id: 1, country: 'ES' }, { id: 2, country: 'FR' }]);
    expect(r.body.rows).toBe(2);
    // chdb's streaming path does not report it; Roost completes it with the rows sent (a true lower bound).
    expect(r.body.rows_before_limit_at_least).toBeGreaterThanOrEqual(2);
    expect(r.body.statistics).toHaveProperty('elapsed');
  });

  it('CSV, CSVWithNames, TSV, TSVWithNames, JSONEachRow, Parquet', async () => {
    expect((await q('SELECT id, country FROM events ORDER BY id LIMIT 1 FORMAT CSV')).text).toBe('1,"ES"\n');
    // What an endpoint's .tsv answers, so /v0/sql takes it too (and in any case, as ClickHouse).
    expect((await q('SELECT id, country FROM events ORDER BY id LIMIT 1 FORMAT TSVWithNames')).text).toBe('id\tcountry\n1\tES\n');
    expect((await q('SELECT id FROM events ORDER BY id LIMIT 1 FORMAT tsvwithnames')).text).toBe('id\n1\n');
    expect((await q('SELECT id FROM events ORDER BY id LIMIT 1 FORMAT CSVWithNames')).text).toBe('"id"\n1\n');
    expect((await q('SELECT id, country FROM events ORDER BY id LIMIT 1 FORMAT TSV')).text).toBe('1\tES\n');
    expect((await q('SELECT id FROM events ORDER BY id LIMIT 1 FORMAT JSONEachRow')).text).toBe('{"id":1}\n');
    // ClickHouse's other names of the same formats.
    expect((await q('SELECT id, country FROM events ORDER BY id LIMIT 1 FORMAT TabSeparated')).text).toBe('1\tES\n');
    expect((await q('SELECT id FROM events ORDER BY id LIMIT 1 FORMAT TabSeparatedWithNames')).text).toBe('id\n1\n');
    expect((await q('SELECT id FROM events ORDER BY id LIMIT 1 FORMAT JSONLines')).text).toBe('{"id":1}\n');
    expect((await q('SELECT id FROM events ORDER BY id LIMIT 1 FORMAT ndjson')).text).toBe('{"id":1}\n');
    const res = await fetch(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT id FROM events FORMAT Parquet')}`, { headers: { Authorization: `Bearer ${token}` } });
    const buf = Buffer.from(await res.arrayBuffer());
    expect(buf.subarray(0, 4).toString()).toBe('PAR1');
    expect(buf.subarray(-4).toString()).toBe('PAR1');
  });

  it('a result larger than the buffered cap (several engine blocks) is one document in every format', async () => {
    // chdb streams each block as a document of its own; the cell puts them back together.
    const big = 'SELECT number, toString(number) AS s FROM numbers(300000)';
    const j = await q(big);
    expect(j.status).toBe(200);
    expect(j.body.data).toHaveLength(300000);
    expect(j.body.data[299999]).toEqual({ number: 299999, s: '299999' });
    expect(j.body.rows).toBe(300000);
    expect(j.body.rows_before_limit_at_least).toBe(300000);
    const csv = (await q(`${big} FORMAT CSVWithNames`)).text.split('\n');
    expect(csv[0]).toBe('"number","s"');
    expect(csv.filter((l) => l.startsWith('"number"'))).toHaveLength(1);
    expect(csv).toHaveLength(300002);
    expect(csv[300000]).toBe('299999,"299999"');
    // Parquet: one file (the engine writes it whole), read back by the engine.
    const res = await fetch(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT number, toString(number) AS s FROM numbers(1000000) FORMAT Parquet')}`, { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const file = path.join(os.tmpdir(), `roost-big-${process.pid}.parquet`);
    fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    expect(fs.statSync(file).size).toBeGreaterThan(2 * 1024 * 1024);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-parquet-check-'));
    const check = new Session(dir);
    try {
      expect(check.query(`SELECT count(), sum(number), countIf(s = toString(number)) FROM file('${file}', Parquet)`, 'CSV')).toBe('1000000,499999500000,1000000\n');
    } finally {
      check.close();
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(file, { force: true });
    }
  });

  it('multi-byte characters near the end of a JSON result come through intact', async () => {
    // The server holds the last bytes of a JSON result back to complete its trailer.
    const r = await q("SELECT number, repeat('€', number) AS s FROM numbers(16)");
    expect(r.status).toBe(200);
    expect(r.body.data.map((x: { s: string }) => x.s)).toEqual(Array.from({ length: 16 }, (_, i) => '€'.repeat(i)));
  });

  it('q from a form body and from a raw body', async () => {
    const form = await call(`${srv.url}/v0/sql`, { method: 'POST', token, body: new URLSearchParams({ q: 'SELECT 7 AS x FORMAT CSV' }) });
    expect(form.text).toBe('7\n');
    const raw = await call(`${srv.url}/v0/sql`, { method: 'POST', token, body: 'SELECT 8 AS x FORMAT CSV', headers: { 'Content-Type': 'text/plain' } });
    expect(raw.text).toBe('8\n');
    expect(await call(`${srv.url}/v0/sql`, { token })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
  });

  it('allowlisted settings in the query apply', async () => {
    expect((await q('SELECT count() FROM events SETTINGS max_threads = 1 FORMAT CSV')).text).toBe('4\n');
  });
});

describe('limits and cancellation', () => {
  it('a query over the time limit answers 408 QUERY_TIMEOUT', async () => {
    const r = await q('SELECT count() FROM numbers(100000000000) WHERE NOT ignore(sipHash64(number))');
    expect(r.status).toBe(408);
    expect(r.body.code).toBe('QUERY_TIMEOUT');
  });

  it('a client that goes away cancels its query', async () => {
    // A server with a long time limit: without cancellation the next query would wait ~20 s.
    const slow = await startServer({ args: ['--query-timeout', '20000'] });
    try {
      const tok = (await call(`${slow.url}/tokens`)).body.workspace_admin_token;
      // One engine session, so that the next query is quick only if the heavy one was stopped
      // (with two, it runs beside the heavy one: CI saw it answered before the cancel's restart).
      expect((await call(`${slow.url}/v0/tenants/local`, { method: 'PATCH', token: slow.operatorToken, body: JSON.stringify({ limits: { query_parallelism: 1 } }), headers: { 'Content-Type': 'application/json' } })).status).toBe(200);
      const heavy = encodeURIComponent('SELECT count() FROM numbers(100000000000) WHERE NOT ignore(sipHash64(number))');
      await new Promise<void>((resolve) => {
        const req = http.get(`${slow.url}/v0/sql?q=${heavy}`, { headers: { Authorization: `Bearer ${tok}` } });
        req.on('error', () => resolve());
        setTimeout(() => { req.destroy(); resolve(); }, 300);
      });
      // The tenant's cell runs one query at a time here: this one is quick only if the heavy one was stopped.
      const t0 = Date.now();
      const r = await call(`${slow.url}/v0/sql?q=${encodeURIComponent('SELECT 1 AS x FORMAT CSV')}`, { token: tok });
      expect(r.text).toBe('1\n');
      expect(Date.now() - t0).toBeLessThan(6000);
      for (let i = 0; i < 50 && !slow.logs.some((l) => l.msg === 'cell restarted: a cancelled query did not stop in time'); i++) await new Promise((res) => setTimeout(res, 100));
      expect(slow.logs.some((l) => l.msg === 'cell restarted: a cancelled query did not stop in time')).toBe(true);
    } finally {
      await slow.stop();
    }
  });
});

describe('token scopes', () => {
  it('a token that reads one data source cannot read another', async () => {
    const created = await call(`${srv.url}/v0/tokens?name=reader&scope=DATASOURCES:READ:countries`, { method: 'POST', token });
    expect(created.status, created.text).toBeLessThan(300);
    const reader = created.body.token as string;
    expect((await q('SELECT count() FROM countries FORMAT CSV', reader)).text).toBe('2\n');
    const denied = await q('SELECT count() FROM events', reader);
    expect(denied).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    const sneaky = await q('SELECT count() FROM countries WHERE code IN (SELECT country FROM events)', reader);
    expect(sneaky.status).toBe(403);
  });
});

describe('pipeline=<pipe>', () => {
  it("exposes the pipe's nodes as names, with the request's parameters", async () => {
    const body = JSON.stringify({
      name: 'by_country',
      nodes: [
        { name: 'filtered', sql: "%\nSELECT * FROM events WHERE amount >= {{ Float64(min_amount, 0) }}" },
        { name: 'agg', sql: 'SELECT country, sum(amount) AS total FROM filtered GROUP BY country' },
      ],
    });
    const created = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, body, headers: { 'Content-Type': 'application/json' } });
    expect(created.status, created.text).toBeLessThan(300);
    const r = await call(`${srv.url}/v0/sql?pipeline=by_country&min_amount=20&q=${encodeURIComponent('SELECT * FROM agg ORDER BY country FORMAT JSONEachRow')}`, { token });
    expect(r.status, r.text).toBe(200);
    expect(r.text.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ country: 'DE', total: 40 }, { country: 'ES', total: 30 }, { country: 'FR', total: 20 }]);
    // Without pipeline= the node names mean nothing.
    expect((await q('SELECT * FROM agg')).body.sql_code).toBe('UNKNOWN_TABLE');
  });
});
