/**
 * Saved dependencies of template nodes: every node or pipe a template can read, whichever
 * branch a call takes, not only the one the save-time render (defined() true) took. They are
 * what GET /v0/pipes/<pipe> shows and what the delete-node / delete-pipe / unpublish checks
 * (409) see. Plain SQL nodes keep the analyzer's dependencies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;

const post = (path: string, body?: BodyInit, headers: Record<string, string> = {}) =>
  call(`${srv.url}${path}`, { method: 'POST', token: admin, body, headers });
const get = (path: string) => call(`${srv.url}${path}`, { token: admin });
const del = (path: string) => call(`${srv.url}${path}`, { method: 'DELETE', token: admin });
const put = (path: string, body: string) => call(`${srv.url}${path}`, { method: 'PUT', token: admin, body });
const createPipe = async (name: string, nodes: Array<{ name: string; sql: string }>, endpoint: string | null = nodes[nodes.length - 1]!.name) => {
  const r = await post('/v0/pipes', JSON.stringify({ name, nodes: nodes.map((n) => ({ ...n, type: n.name === endpoint ? 'endpoint' : undefined })) }), { 'Content-Type': 'application/json' });
  if (r.status !== 200) throw new Error(`create ${name}: ${r.status} ${r.text}`);
  return r.body;
};
const depsOf = async (pipe: string) => {
  const r = await get(`/v0/pipes/${pipe}`);
  expect(r.status, r.text).toBe(200);
  return Object.fromEntries((r.body.nodes as Array<{ name: string; dependencies: string[] }>).map((n) => [n.name, n.dependencies]));
};
const rows = async (path: string) => {
  const r = await get(path);
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.text}`);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
};

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await post(`/v0/datasources?name=events&schema=${encodeURIComponent('id Int32, country String')}`)).status).toBe(200);
  expect((await post('/v0/datasources?name=events&mode=append', '1,ES\n2,FR\n3,ES\n', { 'Content-Type': 'text/csv' })).body.rows).toBe(3);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('nodes a template reads only in some branches', () => {
  it('are saved as dependencies, and the node cannot be deleted while a branch reads it', async () => {
    const p = await createPipe('choose_node', [
      { name: 'fr', sql: "SELECT id FROM events WHERE country = 'FR'" },
      { name: 'es', sql: "SELECT id FROM events WHERE country = 'ES'" },
      { name: 'out', sql: '%\nSELECT id FROM {% if defined(x) %}fr{% else %}es{% end %} ORDER BY id' },
    ]);
    // The save-time render (defined() true) reads `fr`; the else branch reads `es`.
    expect(p.nodes[2].dependencies).toEqual(['fr', 'es']);
    expect((await depsOf('choose_node')).out).toEqual(['fr', 'es']);

    const d = await del('/v0/pipes/choose_node/nodes/es');
    expect(d.status, d.text).toBe(409);
    expect(d.body.dependents).toEqual(['out']);
    // Still there: a call without x reads it.
    expect(await rows('/v0/pipes/choose_node.ndjson')).toEqual([{ id: 1 }, { id: 3 }]);
    expect(await rows('/v0/pipes/choose_node.ndjson?x=1')).toEqual([{ id: 2 }]);
  });

  it('names in string literals inside tags count too; {# comments #} do not', async () => {
    const p = await createPipe('by_symbol', [
      { name: 'fr', sql: "SELECT id FROM events WHERE country = 'FR'" },
      { name: 'es', sql: "SELECT id FROM events WHERE country = 'ES'" },
      { name: 'unused', sql: 'SELECT 1 AS id' },
      { name: 'out', sql: "%\n{# unused #}SELECT id FROM {{ symbol('fr' if defined(x) else 'es') }} ORDER BY id" },
    ]);
    expect(p.nodes[3].dependencies).toEqual(['fr', 'es']);
    expect((await del('/v0/pipes/by_symbol/nodes/es')).status).toBe(409);
    expect((await del('/v0/pipes/by_symbol/nodes/unused')).status).toBe(204);
    expect(await rows('/v0/pipes/by_symbol.ndjson')).toEqual([{ id: 1 }, { id: 3 }]);
  });

  it('once no branch names the node, it can be deleted', async () => {
    await createPipe('edit_then_delete', [
      { name: 'a', sql: 'SELECT 1 AS id' },
      { name: 'b', sql: 'SELECT 2 AS id' },
      { name: 'out', sql: '%\nSELECT id FROM {% if defined(x) %}a{% else %}b{% end %}' },
    ]);
    expect((await del('/v0/pipes/edit_then_delete/nodes/b')).status).toBe(409);
    const e = await put('/v0/pipes/edit_then_delete/nodes/out', '%\nSELECT id FROM a {% if defined(x) %}WHERE id = 1{% end %}');
    expect(e.status, e.text).toBe(200);
    expect(e.body.dependencies).toEqual(['a']);
    expect((await del('/v0/pipes/edit_then_delete/nodes/b')).status).toBe(204);
  });

  it('plain SQL nodes keep the analyzer\'s dependencies (a column named like a node is no dependency)', async () => {
    const p = await createPipe('plain_deps', [
      { name: 'a', sql: 'SELECT 1 AS id' },
      { name: 'b', sql: 'SELECT 2 AS id' },
      { name: 'out', sql: 'SELECT id AS b FROM a' },
    ]);
    expect(p.nodes[2].dependencies).toEqual(['a']);
    expect((await del('/v0/pipes/plain_deps/nodes/b')).status).toBe(204);
  });
});

describe('pipes a template reads only in some branches', () => {
  it('are saved as dependencies: deleting or unpublishing them is refused', async () => {
    await createPipe('ep_fr', [{ name: 'n', sql: "SELECT id FROM events WHERE country = 'FR'" }]);
    await createPipe('ep_es', [{ name: 'n', sql: "SELECT id FROM events WHERE country = 'ES'" }]);
    const p = await createPipe('choose_pipe', [{ name: 'n', sql: '%\nSELECT count() AS c FROM {% if defined(x) %}ep_fr{% else %}ep_es{% end %}' }]);
    expect(p.nodes[0].dependencies).toEqual(['ep_fr', 'ep_es']);

    const d = await del('/v0/pipes/ep_es');
    expect(d.status, d.text).toBe(409);
    expect(d.body.dependents).toEqual(['choose_pipe']);
    const u = await del('/v0/pipes/ep_es/nodes/n/endpoint');
    expect(u.status, u.text).toBe(409);
    expect(await rows('/v0/pipes/choose_pipe.ndjson')).toEqual([{ c: 2 }]);
    expect(await rows('/v0/pipes/choose_pipe.ndjson?x=1')).toEqual([{ c: 1 }]);

    // Once the reader is gone, so is the refusal.
    expect((await del('/v0/pipes/choose_pipe')).status).toBe(204);
    expect((await del('/v0/pipes/ep_es')).status).toBe(204);
  });
});

describe('data sources a template reads only in some branches', () => {
  it('are saved as dependencies: dropping or renaming them (or a quarantine a branch reads) is refused', async () => {
    expect((await post(`/v0/datasources?name=events_eu&schema=${encodeURIComponent('id Int32, country String')}`)).status).toBe(200);
    expect((await post('/v0/datasources?name=events_eu&mode=append', '7,DE\n', { 'Content-Type': 'text/csv' })).body.rows).toBe(1);
    expect((await post(`/v0/datasources?name=events_us&schema=${encodeURIComponent('id Int32, country String')}`)).status).toBe(200);
    // The save-time render (defined() true) reads `events`; only a call without x reads events_eu,
    // and only a call with y=1 the quarantine of events_us.
    const p = await createPipe('choose_ds', [{ name: 'n', sql: "%\nSELECT count() AS c FROM {% if defined(x) %}events{% elif y == '1' %}events_us_quarantine{% else %}events_eu{% end %}" }]);
    expect(p.nodes[0].dependencies).toEqual(['events', 'events_us_quarantine', 'events_eu']);

    const d = await del('/v0/datasources/events_eu');
    expect(d.status, d.text).toBe(409);
    expect(d.body.dependents).toEqual(['choose_ds']);
    const r = await put('/v0/datasources/events_eu?name=events_eu2', '');
    expect(r.status, r.text).toBe(409);
    const q = await del('/v0/datasources/events_us');
    expect(q.status, q.text).toBe(409);
    // Still there: each branch answers from its table.
    expect(await rows('/v0/pipes/choose_ds.ndjson')).toEqual([{ c: 1 }]);
    expect(await rows('/v0/pipes/choose_ds.ndjson?x=1')).toEqual([{ c: 3 }]);
    expect(await rows('/v0/pipes/choose_ds.ndjson?y=1')).toEqual([{ c: 0 }]);

    // Once no branch names them, they can go.
    const e = await put('/v0/pipes/choose_ds/nodes/n', '%\nSELECT count() AS c FROM events');
    expect(e.status, e.text).toBe(200);
    expect(e.body.dependencies).toEqual(['events']);
    expect((await del('/v0/datasources/events_eu')).body.deleted).toBe(true);
    expect((await del('/v0/datasources/events_us')).body.deleted).toBe(true);
  });
});

describe('templateNames', () => {
  it('reads names in a table\'s place in every branch and name literals in tags, not comments, strings, functions, aliases or qualified words', async () => {
    const { templateNames } = await import('../src/pipes/template/index.js');
    const names = (sql: string) => templateNames(`%\n${sql}`);
    expect(names('SELECT * FROM {% if defined(x) %}a{% elif defined(y) %}`b`{% else %}c{% end %}')).toEqual(['a', 'b', 'c']);
    expect(names("{# d #}{% set t = 'e' %}{% set m = 'not a name' %}SELECT t.g FROM {{ symbol(t) }} {% for v in ['h'] %}{% end %}")).toEqual(['e', 'h']);
    expect(templateNames('SELECT * FROM a')).toEqual([]);
    // Tables after FROM, JOIN, IN and commas of a FROM list, through aliases and FINAL.
    expect(names('SELECT val FROM t1 AS a, t2 b, t3 FINAL JOIN t4 ON x ARRAY JOIN arr WHERE z IN t5 AND w IN (1, 2) AND q IN (SELECT 1 FROM t6)')).toEqual(['t1', 't2', 't3', 't4', 't5', 't6']);
    // Not: a database's tables, SQL comments and strings, functions, aliases, keys and messages in tags.
    expect(names("SELECT count() AS pageviews, {{Int32(a, 1)}} AS y FROM db.t7, numbers(10), `t8` -- FROM t9\n/* FROM t10 */ WHERE s = 'FROM t11 {{String(p)}}' {{ custom_error({'error': 'pageviews missing'}) }}")).toEqual(['t8']);
    // A branch or a tag before a name: read as in the table's place when it may be.
    expect(names("SELECT * FROM {% for x in [1] %}{% end %}t12, {{ symbol(String(t, 'tbl')) }}, `a{{x}}b`, t13")).toEqual(['t12', 'tbl', 't13']);
    // `#` comments and heredocs are not strings; a FROM list goes on after a subquery, a table
    // function and SAMPLE; TRIM's and position's FROM and IN name no table.
    expect(names("SELECT 1 {% if defined(x) %}{% else %}# don't\nSELECT * FROM (SELECT 1) s, b1, numbers(3) n, b2 SAMPLE 0.1, b3{% end %}")).toEqual(['b1', 'b2', 'b3']);
    expect(names("SELECT $$it's$$ AS h, TRIM(BOTH ' ' FROM s), position(s IN s2), extract(day FROM d) FROM b4")).toEqual(['b4']);
    // Values in tags outside a table's place (defaults, enums, descriptions, conditions) are no names.
    expect(names("SELECT {{String(c, 'red')}}, {{String(x, 'a', description='tt')}}, {{Array(y, 'String', default='a,tt', enum=['a', 'tt'])}} {% if String(x, 'a') == 'tt2' %}1{% end %} FROM ev")).toEqual(['ev']);
    // A line comment goes on past a tag in it; a name alone in IN's brackets is a table.
    expect(names("SELECT 1 -- AND d = {{Date(d, '2020-01-01')}} don't\nFROM {% if defined(q) %}events{% else %}secret{% end %}")).toEqual(['events', 'secret']);
    expect(names('SELECT * FROM events WHERE {% if defined(q) %}1{% else %}id IN (secret2){% end %} AND y IN (SELECT 1 FROM s3) AND z IN (1, 2)')).toEqual(['events', 'secret2', 's3']);
    // A comment in one branch does not hide what follows the branch; IN (FROM t SELECT ...) reads
    // t; brackets that branches leave uneven, or past the tracked depth, read as a FROM's; tag
    // values in IN's brackets are values.
    expect(names('SELECT * FROM a {% if defined(x) %}-- filtered{% end %} JOIN s1 USING id')).toEqual(['a', 's1']);
    expect(names('SELECT 1 WHERE x IN (FROM s2 SELECT id)')).toEqual(['s2']);
    expect(names('SELECT * FROM (SELECT 1 {% if defined(x) %}({% end %}) AS x, s3')).toEqual(['s3']);
    expect(names(`SELECT * FROM {% if defined(x) %}${'('.repeat(1000)}{% end %}(SELECT 1) AS x, s4`)).toEqual(['s4']);
    expect(names("SELECT * FROM t WHERE s IN ({{Array(st, 'String', default='active,pending')}})")).toEqual(['t']);
    // Linear in time and memory: a 1 MiB template of unbalanced table functions in a branch (it was
    // quadratic: minutes), deep brackets copied into 60,000 branches (gigabytes, then out of memory).
    const t0 = Date.now();
    names(`SELECT 1 {% if defined(x) %}{% else %}${' FROM a('.repeat(130_000)}{% end %}`);
    names(`SELECT 1 {% if 1 == 2 %}${'('.repeat(10_000)}{% end %}{% if x %}${'{% elif x %}'.repeat(60_000)}{% end %}`);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe('words of a template that only look like pipe or node names', () => {
  it('a table function, a column alias or a lowercase keyword named like a pipe is no dependency: saves, edits, unpublish and delete go through', async () => {
    await createPipe('numbers', [{ name: 'n', sql: 'SELECT 1 AS z' }], null);
    await createPipe('select', [{ name: 'n', sql: 'SELECT 1 AS z' }], null);
    const t = await createPipe('tpl_numbers', [{ name: 'n', sql: '%\nselect number from numbers(10) where number > {{Int32(x, 5)}}' }]);
    expect(t.nodes[0].dependencies).toEqual([]);
    expect(await rows('/v0/pipes/tpl_numbers.ndjson?x=8')).toEqual([{ number: 9 }]);

    // Two endpoints whose column aliases are each other's names: no cycle.
    await createPipe('sessions', [{ name: 'n', sql: '%\nSELECT count() AS pageviews, {{Int32(a, 1)}} AS y FROM events' }]);
    const pv = await createPipe('pageviews', [{ name: 'n', sql: "%\nSELECT uniq(id) AS sessions, {{Int32(a, 1)}} AS y, {{String(s, 'sessions')}} AS d FROM events" }]);
    expect(pv.nodes[0].dependencies).toEqual(['events']);
    const e = await put('/v0/pipes/sessions/nodes/n', '%\nSELECT count() AS pageviews, {{Int32(a, 2)}} AS y FROM events');
    expect(e.status, e.text).toBe(200);
    expect(await rows('/v0/pipes/sessions.ndjson')).toEqual([{ pageviews: 3, y: 2 }]);
    // A default value equal to a pipe's name is no dependency either.
    expect(await depsOf('pageviews')).toEqual({ n: ['events'] });
    // Unpublishing `pageviews` is not refused for a column alias in `sessions`.
    expect((await del('/v0/pipes/pageviews/nodes/n/endpoint')).status).toBe(200);
    expect((await del('/v0/pipes/sessions')).status).toBe(204);
    expect((await del('/v0/pipes/pageviews')).status).toBe(204);
    expect((await del('/v0/pipes/numbers')).status).toBe(204);
  });
});

describe('pipes reading pipes more than 16 levels deep', () => {
  it('save with a warning saying calls fail; a call is a 422 naming the chain and the limit', async () => {
    await createPipe('deep0', [{ name: 'n', sql: '%\nSELECT {{Int32(v, 0)}} AS v' }]);
    let last: any;
    for (let i = 1; i <= 17; i++) last = await createPipe(`deep${i}`, [{ name: 'n', sql: `SELECT v + 1 AS v FROM deep${i - 1}` }]);
    expect(JSON.stringify(last.warnings)).toMatch(/it reads pipe \\"deep16\\", through which pipes nest more than 16 levels deep \(or read each other\): calls that read that far fail/);
    expect(await rows('/v0/pipes/deep16.ndjson?v=100')).toEqual([{ v: 116 }]);
    const r = await get('/v0/pipes/deep17.json?v=100');
    expect(r.status, r.text).toBe(422);
    expect(r.body).toMatchObject({ code: 'SQL_INVALID', sql_code: 'PIPES_TOO_DEEP' });
    expect(r.body.error).toMatch(/^pipes nest deeper than 16 levels: .*deep1 -> deep0; a pipe may read pipes at most 16 deep/);
  });
});

describe('an error in a pipe the endpoint reads', () => {
  it("names the pipe the endpoint reads, and nothing further in (pipes and nodes the caller may not read); the template's own error() text stays as written", async () => {
    await createPipe('inner_req', [{ name: 'hidden_n', sql: "%\nSELECT {{String(s, required=True)}} AS s, {{Date(d, '2026-01-01')}} AS d" }]);
    await createPipe('mid_req', [{ name: 'm', sql: 'SELECT * FROM inner_req' }]);
    await createPipe('outer_req', [{ name: 'o', sql: 'SELECT * FROM mid_req' }]);
    const direct = await get('/v0/pipes/mid_req.json');
    expect(direct.status, direct.text).toBe(400);
    expect(direct.body).toMatchObject({ code: 'TEMPLATE_PARAMETER', parameter: 's', pipe: 'inner_req' });
    expect(direct.body.node).toBeUndefined();
    expect(direct.body.error).toMatch(/^parameter "s" is required.* \(in pipe "inner_req", which the endpoint "mid_req" reads\)$/);
    // Two levels in, a token that may read only the outer endpoint: the pipe it names, nothing deeper.
    const t = await post('/v0/tokens?name=outer_only&scope=PIPES:READ:outer_req');
    expect(t.status, t.text).toBe(200);
    const through = await call(`${srv.url}/v0/pipes/outer_req.json?s=x&d=2026-13-45`, { token: t.body.token });
    expect(through.status, through.text).toBe(400);
    expect(through.body).toMatchObject({ parameter: 'd', pipe: 'mid_req' });
    expect(through.body.error).toMatch(/\(in pipe "mid_req", which the endpoint "outer_req" reads, or in a pipe that one reads\)$/);
    expect(through.text).not.toMatch(/inner_req|hidden_n/);
    // Called itself, it is the endpoint's own error, as before.
    const own = await get('/v0/pipes/inner_req.json');
    expect(own.body).toMatchObject({ node: 'hidden_n' });
    expect(own.body.pipe).toBeUndefined();
    await createPipe('inner_raise', [{ name: 'n', sql: "%\n{% if not defined(k) %}{{ error('k is needed', 403) }}{% end %}SELECT 1 AS one" }]);
    await createPipe('outer_raise', [{ name: 'o', sql: 'SELECT * FROM inner_raise' }]);
    const raised = await get('/v0/pipes/outer_raise.json');
    expect(raised.status, raised.text).toBe(403);
    expect(raised.body).toMatchObject({ error: 'k is needed', pipe: 'inner_raise' });
  });
});
