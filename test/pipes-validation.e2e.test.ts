/**
 * Pipes are checked against the tenant's engine when they are saved (Tinybird's behaviour, and
 * its `ignore_sql_errors=true` to skip it): new and changed nodes, the nodes reading them, and
 * other pipes reading the pipe's endpoint are analysed with `DESCRIBE TABLE (<compiled SQL>)`.
 * End to end over HTTP against the real server: the embedded engine, and Debian's
 * clickhouse-server 18.16 for a remote tenant (skipped loudly when it is not installed).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTenant, startServer, workspaceApi, type RunningServer } from './helpers/server.js';
import { requireClickHouse, startClickHouse, type RunningClickHouse } from './helpers/clickhouse-server.js';

let srv: RunningServer;
let admin: string;
const api = workspaceApi(() => srv, () => admin);

const json = (path: string, body: unknown) => call(`${srv.url}${path}`, { method: 'POST', token: admin, body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
const form = (path: string, fields: Record<string, string>) => call(`${srv.url}${path}`, { method: 'POST', token: admin, body: new URLSearchParams(fields).toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
const raw = (method: string, path: string, body?: string) => call(`${srv.url}${path}`, { method, token: admin, body });
const get = (path: string) => call(`${srv.url}${path}`, { token: admin });

/** The error body of a refused save: names the node, carries the engine's reason, never Roost's settings. */
function expectNodeError(r: { status: number; body: any; text: string }, node: string, word: string): void {
  expect(r.status, r.text).toBe(400);
  expect(r.body.code).toBe('NODE_SQL_ERROR');
  expect(r.body.node).toBe(node);
  expect(r.body.error).toContain(`node "${node}"`);
  expect(r.body.error).toContain(word);
  expect(r.body.error).toContain('ignore_sql_errors=true');
  expect(r.body.error).not.toMatch(/SETTINGS|readonly|max_execution_time|ws_[a-z0-9_]*_[0-9a-f]{8}|DESCRIBE/);
}

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const c = await api.post(`/v0/datasources?name=ev&schema=${encodeURIComponent('id UInt32, s String')}`);
  expect(c.status, c.text).toBe(200);
  expect((await api.post('/v0/datasources?name=ev&mode=append', '1,a\n2,b\n')).status).toBe(200);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('a node the engine refuses is not saved', () => {
  it('POST /v0/pipes (form): 400 naming the node and the engine\'s reason; nothing saved', async () => {
    const r = await form('/v0/pipes', { name: 'bad_col', sql: 'SELECT idd FROM ev' });
    expectNodeError(r, 'bad_col_0', 'idd');
    expect(r.body.pipe).toBe('bad_col');
    expect(r.body.clickhouse_code).toBe(47);
    expect(r.body.clickhouse_error).toBe('UNKNOWN_IDENTIFIER');
    expect((await get('/v0/pipes/bad_col')).status).toBe(404);
  });

  it('POST /v0/pipes (JSON): the failing node is named; a valid pipe saves with ignore_sql_errors false', async () => {
    const bad = await json('/v0/pipes', { name: 'two', nodes: [{ name: 'a', sql: 'SELECT id, s FROM ev' }, { name: 'b', sql: 'SELECT toDate(s) + 1 AS d, nope FROM a' }] });
    expectNodeError(bad, 'b', 'nope');
    const ok = await json('/v0/pipes', { name: 'two', nodes: [{ name: 'a', sql: 'SELECT id, s FROM ev' }, { name: 'b', sql: 'SELECT s FROM a', type: 'endpoint' }] });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.nodes.map((n: any) => n.ignore_sql_errors)).toEqual([false, false]);
    // A pipe's JSON as GET answers it (node_type), sent back: the endpoint is kept.
    const got = (await call(`${srv.url}/v0/pipes/two`, { token: admin })).body;
    const again = await json('/v0/pipes', { name: 'two_again', nodes: got.nodes.map((n: any) => ({ name: n.name, sql: n.sql, node_type: n.node_type })) });
    expect(again.status, again.text).toBe(200);
    expect(again.body.type).toBe('endpoint');
    expect(again.body.nodes.map((n: any) => n.node_type)).toEqual(got.nodes.map((n: any) => n.node_type));
    // A query-string description counts beside a JSON body (it was dropped; the name was not).
    const described = await call(`${srv.url}/v0/pipes?description=${encodeURIComponent('from the url')}`, { method: 'POST', token: admin, body: JSON.stringify({ name: 'described', nodes: [{ name: 'n', sql: 'SELECT 1 AS x' }] }), headers: { 'Content-Type': 'application/json' } });
    expect(described.status, described.text).toBe(200);
    expect(described.body.description).toBe('from the url');
    // Two endpoint nodes: the last one was published silently.
    const twoEndpoints = await json('/v0/pipes', { name: 'two_eps', nodes: [{ name: 'a', sql: 'SELECT id FROM ev', type: 'endpoint' }, { name: 'b', sql: 'SELECT id FROM a', type: 'endpoint' }] });
    expect(twoEndpoints.status, twoEndpoints.text).toBe(400);
    expect(twoEndpoints.body.error).toMatch(/nodes "a" and "b" are both of type endpoint/);
  });

  it('a syntax error the engine finds names no position of the check\'s own wrapping', async () => {
    const r = await form('/v0/pipes?name=pos1', { sql: 'SELECT id FROM ev WHERE id =' });
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatch(/the query ends before it is complete/);
    const t = await form('/v0/pipes?name=pos2', { sql: "SELECT 1 AS a\n'x'" });
    expect(t.status, t.text).toBe(400);
    expect(t.body.error).not.toMatch(/position \d+|line \d+, col/);
    expect(t.body.error).toMatch(/failed at \('x'\)|failed at/);
  });

  it('valid SQL in any spelling the analyzer takes saves (comment, trailing semicolon, own SETTINGS)', async () => {
    for (const [i, sql] of ['SELECT id FROM ev -- the ids', 'SELECT id FROM ev;', 'SELECT id FROM ev SETTINGS max_threads = 1', 'WITH 2 AS k SELECT id * k AS x FROM ev'].entries()) {
      const r = await form('/v0/pipes', { name: `spelled_${i}`, sql });
      expect(r.status, `${sql}: ${r.text}`).toBe(200);
    }
  });

  it('a type error the analyzer cannot see is refused too', async () => {
    const r = await form('/v0/pipes', { name: 'bad_type', sql: "SELECT id + 'x' AS y FROM ev" });
    expect(r.status, r.text).toBe(400);
    expect(r.body.code).toBe('NODE_SQL_ERROR');
    expect(r.body.node).toBe('bad_type_0');
  });

  it('POST /v0/pipes/<pipe>/nodes and PUT .../nodes/<node>: the node, and the nodes reading it', async () => {
    const added = await raw('POST', '/v0/pipes/two/nodes?name=c', 'SELECT idd FROM a');
    expectNodeError(added, 'c', 'idd');
    expect((await get('/v0/pipes/two')).body.nodes.map((n: any) => n.name)).toEqual(['a', 'b']);

    // Node a stops selecting s, which node b (not changed here) reads: b is named.
    const changed = await raw('PUT', '/v0/pipes/two/nodes/a', 'SELECT id FROM ev');
    expectNodeError(changed, 'b', 's');
    expect((await get('/v0/pipes/two')).body.nodes[0].sql).toBe('SELECT id, s FROM ev');

    const ok = await raw('POST', '/v0/pipes/two/nodes?name=c', 'SELECT count() AS n FROM a');
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.ignore_sql_errors).toBe(false);
  });

  it('publishing checks the published node', async () => {
    expect((await raw('POST', '/v0/pipes/two/nodes?name=d&ignore_sql_errors=true', 'SELECT nope FROM ev')).status).toBe(200);
    const r = await raw('POST', '/v0/pipes/two/nodes/d/endpoint');
    expectNodeError(r, 'd', 'nope');
    expect((await get('/v0/pipes/two')).body.endpoint).toBe((await get('/v0/pipes/two')).body.nodes[1].id);
  });
});

describe('pipe size', () => {
  it('a pipe has at most 200 nodes: one more is a 400 before any check (the checks grow with the square of the count), whichever way it is added', async () => {
    const nodes = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `n${i}`, sql: i % 10 ? `SELECT x + 1 AS x FROM n${i - 1}` : `SELECT ${i} AS x` }));
    const t0 = Date.now();
    const big = await json('/v0/pipes', { name: 'too_many', nodes: nodes(10_000) });
    expect(big.status, big.text.slice(0, 200)).toBe(400);
    expect(big.body.error).toBe('a pipe has at most 200 nodes (this one would have 10000): split it into pipes that read each other');
    expect(Date.now() - t0).toBeLessThan(5_000);
    const ok = await json('/v0/pipes', { name: 'many', nodes: nodes(200) });
    expect(ok.status, ok.text.slice(0, 200)).toBe(200);
    const more = await raw('POST', '/v0/pipes/many/nodes?name=n200', 'SELECT x FROM n199');
    expect(more.status, more.text).toBe(400);
    expect((await get('/v0/pipes/many')).body.nodes).toHaveLength(200);
  }, 60_000);
});

describe('ignore_sql_errors=true saves without the check, and the node records it', () => {
  it('query string, form field, JSON (top level and per node)', async () => {
    const q = await raw('POST', '/v0/pipes?name=ig_q&ignore_sql_errors=true', 'SELECT idd FROM ev');
    expect(q.status, q.text).toBe(200);
    expect(q.body.nodes[0].ignore_sql_errors).toBe(true);
    const f = await form('/v0/pipes', { name: 'ig_f', sql: 'SELECT idd FROM ev', ignore_sql_errors: 'true' });
    expect(f.status, f.text).toBe(200);
    const j = await json('/v0/pipes', { name: 'ig_j', ignore_sql_errors: true, nodes: [{ name: 'x', sql: 'SELECT idd FROM ev' }] });
    expect(j.status, j.text).toBe(200);
    const n = await json('/v0/pipes', { name: 'ig_n', nodes: [{ name: 'x', sql: 'SELECT idd FROM ev', ignore_sql_errors: true }, { name: 'y', sql: 'SELECT id FROM ev' }] });
    expect(n.status, n.text).toBe(200);
    expect(n.body.nodes.map((x: any) => x.ignore_sql_errors)).toEqual([true, false]);
    // Only that node is exempt: another bad node beside it is still refused.
    const m = await json('/v0/pipes', { name: 'ig_m', nodes: [{ name: 'x', sql: 'SELECT idd FROM ev', ignore_sql_errors: true }, { name: 'y', sql: 'SELECT nope FROM ev' }] });
    expectNodeError(m, 'y', 'nope');
    expect((await get('/v0/pipes/ig_f')).body.nodes[0].ignore_sql_errors).toBe(true);
  });

  it('a node changed without the flag is checked again and records false', async () => {
    const bad = await raw('PUT', '/v0/pipes/ig_q/nodes/ig_q_0', 'SELECT iddd FROM ev');
    expectNodeError(bad, 'ig_q_0', 'iddd');
    const ok = await raw('PUT', '/v0/pipes/ig_q/nodes/ig_q_0', 'SELECT id FROM ev');
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.ignore_sql_errors).toBe(false);
    const again = await raw('PUT', '/v0/pipes/ig_q/nodes/ig_q_0?ignore_sql_errors=true', 'SELECT iddd FROM ev');
    expect(again.status, again.text).toBe(200);
    expect(again.body.ignore_sql_errors).toBe(true);
  });

  it('a call of such a node fails with the engine\'s reason, without Roost\'s SETTINGS clause', async () => {
    const p = await raw('POST', '/v0/pipes/ig_f/nodes/ig_f_0/endpoint?ignore_sql_errors=true');
    expect(p.status, p.text).toBe(200);
    const r = await get('/v0/pipes/ig_f.json');
    expect(r.status, r.text).toBe(422);
    expect(r.body.code).toBe('QUERY_FAILED');
    expect(r.body.error).toContain('idd');
    expect(r.body.error).not.toMatch(/SETTINGS|readonly|max_execution_time/);
    const sql = await get(`/v0/sql?q=${encodeURIComponent('SELECT idd FROM ev')}`);
    expect(sql.status, sql.text).toBe(422);
    expect(sql.body.error).toContain('idd');
    expect(sql.body.error).not.toMatch(/SETTINGS|readonly|max_execution_time/);
  });
});

describe('templates', () => {
  it('template syntax without the % line is a 400 saying to add it (create, add and edit a node)', async () => {
    for (const sql of ['SELECT {{Int32(x, 1)}} AS a', "SELECT * FROM ev WHERE s = {{String(s, 'a')}}", '% SELECT 1 AS a', 'SELECT 1 AS a {% if defined(x) %} WHERE 1 {% end %}']) {
      const r = await json('/v0/pipes', { name: 'nopct', nodes: [{ name: 'n', sql }] });
      expect(r.status, r.text).toBe(400);
      expect(r.body).toMatchObject({ code: 'SQL_SYNTAX', node: 'n' });
      expect(r.body.error).toMatch(/uses template syntax .* a template's first line is % alone/);
    }
    expect((await get('/v0/pipes/nopct')).status).toBe(404);
    expect((await json('/v0/pipes', { name: 'pct', nodes: [{ name: 'a', sql: 'SELECT 1 AS a' }] })).status).toBe(200);
    const added = await raw('POST', '/v0/pipes/pct/nodes?name=t1', 'SELECT {{Int32(x, 1)}} AS a');
    expect(added.status, added.text).toBe(400);
    expect(added.body.error).toMatch(/% alone/);
    const edited = await raw('PUT', '/v0/pipes/pct/nodes/a', 'SELECT {{Int32(x, 1)}} AS a');
    expect(edited.status, edited.text).toBe(400);
    expect(edited.body.error).toMatch(/% alone/);
  });

  it('FROM {{symbol(t)}} without a default saves (the table is the call\'s), and calls read the table named', async () => {
    const r = await json('/v0/pipes', { name: 'sym', nodes: [{ name: 'n', sql: '%\nSELECT count() AS c FROM {{symbol(t)}}', type: 'endpoint' }] });
    expect(r.status, r.text).toBe(200);
    expect((await get('/v0/pipes/sym.json?t=ev')).body.data).toEqual([{ c: expect.any(Number) }]);
    const missing = await get('/v0/pipes/sym.json?t=nosuch');
    expect(missing.status, missing.text).toBeGreaterThanOrEqual(400);
    expect(missing.status).toBeLessThan(500);
    expect((await get('/v0/pipes/sym.json?t=placeholder')).status).toBeGreaterThanOrEqual(400);
  });

  it('are checked as rendered with their parameters\' defaults', async () => {
    const r = await form('/v0/pipes', { name: 'tpl_bad', sql: "%\nSELECT idd FROM ev WHERE s = {{ String(x, 'a') }}" });
    expectNodeError(r, 'tpl_bad_0', 'idd');
    const ok = await form('/v0/pipes', { name: 'tpl_ok', sql: "%\nSELECT id FROM ev WHERE s = {{ String(x, 'a') }}" });
    expect(ok.status, ok.text).toBe(200);
  });

  it('a template with no parameter that fails to render is refused: it would fail on every call', async () => {
    const r = await form('/v0/pipes', { name: 'tpl_div0', sql: '%\nSELECT {{ 1/0 }} AS x' });
    expect(r.status, r.text).toBe(422);
    expect(r.body).toMatchObject({ code: 'TEMPLATE_INVALID', node: 'tpl_div0_0' });
    expect(r.body.error).toMatch(/division by zero .*the template has no parameter, so it fails on every call \(nothing was saved\)/);
    expect((await call(`${srv.url}/v0/pipes/tpl_div0`, { token: admin })).status).toBe(404);
    // With a parameter, the failure may be the default's only: saved, with the warning.
    const withParam = await form('/v0/pipes', { name: 'tpl_div_param', sql: '%\nSELECT {{ 10 / Int32(d, 0) }} AS x' });
    expect(withParam.status, withParam.text).toBe(200);
    expect(withParam.body.warnings?.[0]?.reason).toBe('template_needs_values');
  });

  it('a parameter without a default leaves the node (and nodes reading it) unchecked', async () => {
    const r = await json('/v0/pipes', { name: 'tpl_req', nodes: [
      { name: 'f', sql: '%\nSELECT idd FROM ev WHERE s = {{ String(x, required=True) }}' },
      { name: 'g', sql: 'SELECT * FROM f' },
    ] });
    expect(r.status, r.text).toBe(200);
  });
});

describe('the answer of a save names the nodes the engine did not check (`warnings`)', () => {
  /** The warnings of an answer as `node: reason`. */
  const unchecked = (r: { body: any }) => (r.body.warnings ?? []).map((w: any) => `${w.node}: ${w.reason}`);

  it('POST /v0/pipes: a template node without a default, and the node reading it; checked nodes are not named', async () => {
    const r = await json('/v0/pipes', { name: 'warn_tpl', nodes: [
      { name: 'h', sql: 'SELECT id, s FROM ev' },
      { name: 'f', sql: '%\nSELECT id FROM h WHERE s = {{ String(x, required=True) }}' },
      { name: 'g', sql: 'SELECT * FROM f', type: 'endpoint' },
    ] });
    expect(r.status, r.text).toBe(200);
    // The pipe as before (Tinybird's fields), with the warnings beside them.
    expect(r.body.name).toBe('warn_tpl');
    expect(r.body.nodes.map((n: any) => n.name)).toEqual(['h', 'f', 'g']);
    expect(unchecked(r)).toEqual(['f: template_needs_values', 'g: template_needs_values']);
    expect(r.body.warnings[0]).toMatchObject({ pipe: 'warn_tpl', node: 'f' });
    expect(r.body.warnings[0].message).toMatch(/node "f" was saved without the engine's check.*parameter values/);
    expect(r.body.warnings[1].message).toContain('it reads node "f"');
    // The same pipe as a form, checked entirely: no warnings field at all.
    const ok = await form('/v0/pipes', { name: 'warn_none', sql: 'SELECT id FROM ev' });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body).not.toHaveProperty('warnings');
    // GET shows the pipe without them (they belong to the save).
    expect((await get('/v0/pipes/warn_tpl')).body).not.toHaveProperty('warnings');
  });

  it('POST .../nodes, PUT .../nodes/<node> and publishing say it too', async () => {
    const added = await raw('POST', '/v0/pipes/warn_none/nodes?name=t', '%\nSELECT id FROM ev WHERE id = {{ UInt32(n, required=True) }}');
    expect(added.status, added.text).toBe(200);
    expect(added.body.name).toBe('t');
    expect(unchecked(added)).toEqual(['t: template_needs_values']);
    const edited = await raw('PUT', '/v0/pipes/warn_none/nodes/t', '%\nSELECT id, s FROM ev WHERE id = {{ UInt32(n, required=True) }}');
    expect(edited.status, edited.text).toBe(200);
    expect(unchecked(edited)).toEqual(['t: template_needs_values']);
    const published = await raw('POST', '/v0/pipes/warn_none/nodes/t/endpoint');
    expect(published.status, published.text).toBe(200);
    expect(unchecked(published)).toEqual(['t: template_needs_values']);
    // Checked changes answer without the field.
    const plain = await raw('PUT', '/v0/pipes/warn_none/nodes/warn_none_0', 'SELECT id, 1 AS one FROM ev');
    expect(plain.status, plain.text).toBe(200);
    expect(plain.body).not.toHaveProperty('warnings');
    // ignore_sql_errors=true asked for no check: nothing to warn about.
    const ignored = await raw('POST', '/v0/pipes/warn_none/nodes?name=u&ignore_sql_errors=true', '%\nSELECT {{ UInt32(m, required=True) }} AS m');
    expect(ignored.status, ignored.text).toBe(200);
    expect(ignored.body).not.toHaveProperty('warnings');
  });

  it('a node reading another pipe whose endpoint needs values: that pipe named, nothing of its SQL', async () => {
    const inner = await json('/v0/pipes', { name: 'warn_inner', nodes: [{ name: 'warn_inner_0', sql: '%\nSELECT id FROM ev WHERE id = {{ UInt32(inner_only_param, required=True) }}', type: 'endpoint' }] });
    expect(inner.status, inner.text).toBe(200);
    const outer = await form('/v0/pipes', { name: 'warn_outer', sql: 'SELECT id FROM warn_inner' });
    expect(outer.status, outer.text).toBe(200);
    expect(unchecked(outer)).toEqual(['warn_outer_0: template_needs_values']);
    expect(outer.body.warnings[0].message).toContain('it reads pipe "warn_inner", whose endpoint cannot be rendered without parameter values');
    expect(outer.body.warnings[0].message).not.toContain('inner_only_param');
  });

  it('a node reading what the saver may not read: said, naming only what its own SQL names', async () => {
    await api.createDataSource('warn_secret_ds', 'org String, secret String', 'a,alpha-secret\n');
    // A pipe the saver reads, whose endpoint reads a data source the saver may not read.
    const hidden = await json('/v0/pipes', { name: 'warn_hidden', nodes: [{ name: 'warn_hidden_0', sql: 'SELECT org, secret FROM warn_secret_ds', type: 'endpoint' }] });
    expect(hidden.status, hidden.text).toBe(200);
    const tok = await api.createToken('warn_creator', ['PIPES:CREATE', 'DATASOURCES:READ:ev']);
    const as = (method: string, path: string, body?: string) => call(`${srv.url}${path}`, { method, token: tok, body });

    // Directly: the data source its SQL names is named.
    const direct = await as('POST', '/v0/pipes?name=warn_direct', 'SELECT secret FROM warn_secret_ds');
    expect(direct.status, direct.text).toBe(200);
    expect(unchecked(direct)).toEqual(['warn_direct_0: reads_unreadable']);
    expect(direct.body.warnings[0].message).toContain('"warn_secret_ds", which the credential saving it may not read');
    expect(direct.text).not.toContain('alpha-secret');

    // Through another pipe: neither what that pipe reads nor which of the pipes it reads is named.
    const through = await as('POST', '/v0/pipes?name=warn_through', 'SELECT id FROM ev WHERE toString(id) IN (SELECT org FROM warn_hidden)');
    expect(through.status, through.text).toBe(200);
    expect(unchecked(through)).toEqual(['warn_through_0: reads_unreadable']);
    expect(through.body.warnings[0].message).toContain('through the pipes it reads, data that the credential saving it may not read');
    expect(JSON.stringify(through.body.warnings)).not.toMatch(/warn_secret_ds|warn_hidden|secret/);

    // What it may read is checked as before, and refused when wrong.
    const own = await as('POST', '/v0/pipes?name=warn_own', 'SELECT idd FROM ev');
    expectNodeError(own, 'warn_own_0', 'idd');
    const fine = await as('POST', '/v0/pipes?name=warn_fine', 'SELECT id FROM ev');
    expect(fine.status, fine.text).toBe(200);
    expect(fine.body).not.toHaveProperty('warnings');
  });
});

describe('the check cannot run long', () => {
  it('a scalar subquery computed during analysis stops at the time limit: 400, nothing saved', async () => {
    const r = await form('/v0/pipes', { name: 'slow', sql: 'SELECT id, (SELECT sum(number) FROM numbers(1000000000000)) AS total FROM ev' });
    expect(r.status, r.text).toBe(400);
    expect(r.body.code).toBe('NODE_SQL_ERROR');
    expect(r.body.clickhouse_error).toBe('TIMEOUT_EXCEEDED');
    expect(r.body.error).toContain('within');
    expect((await get('/v0/pipes/slow')).status).toBe(404);
    // Saved unchecked on request.
    expect((await form('/v0/pipes', { name: 'slow', sql: 'SELECT id, (SELECT sum(number) FROM numbers(1000000000000)) AS total FROM ev', ignore_sql_errors: 'true' })).status).toBe(200);
  }, 60_000);
});

describe('pipes reading this pipe\'s endpoint', () => {
  beforeAll(async () => {
    const up = await json('/v0/pipes', { name: 'up', nodes: [{ name: 'up_0', sql: 'SELECT id, s FROM ev', type: 'endpoint' }, { name: 'up_1', sql: 'SELECT id FROM ev' }] });
    expect(up.status, up.text).toBe(200);
    const down = await json('/v0/pipes', { name: 'down', nodes: [{ name: 'down_0', sql: 'SELECT s FROM up', type: 'endpoint' }] });
    expect(down.status, down.text).toBe(200);
    const further = await json('/v0/pipes', { name: 'further', nodes: [{ name: 'further_0', sql: 'SELECT s FROM down', type: 'endpoint' }] });
    expect(further.status, further.text).toBe(200);
  });

  it('changing the endpoint node so that a reader fails: 409 naming the readers and the reason', async () => {
    const r = await raw('PUT', '/v0/pipes/up/nodes/up_0', 'SELECT id FROM ev');
    expect(r.status, r.text).toBe(409);
    expect(r.body.code).toBe('CONFLICT');
    // `further` reads down's endpoint, which would fail with it.
    expect(r.body.dependents).toEqual(['down', 'further']);
    expect(r.body.errors[0]).toMatchObject({ pipe: 'down', node: 'down_0', clickhouse_code: 47 });
    expect(r.body.error).toContain('down');
    expect(r.body.error).toMatch(/\bs\b/);
    expect(r.body.error).not.toMatch(/SETTINGS|readonly/);
    expect((await get('/v0/pipes/up')).body.nodes[0].sql).toBe('SELECT id, s FROM ev');
    // A change its readers survive is saved.
    const ok = await raw('PUT', '/v0/pipes/up/nodes/up_0', 'SELECT id, s, 1 AS one FROM ev');
    expect(ok.status, ok.text).toBe(200);
  });

  it('publishing a node without the column: 409; the pipes reading the reader are checked too', async () => {
    const r = await raw('POST', '/v0/pipes/up/nodes/up_1/endpoint');
    expect(r.status, r.text).toBe(409);
    expect(r.body.dependents).toEqual(['down', 'further']);
    // down_0 = SELECT * keeps down's own node valid; `further` selects s from it.
    expect((await raw('PUT', '/v0/pipes/down/nodes/down_0', 'SELECT * FROM up')).status).toBe(200);
    const again = await raw('POST', '/v0/pipes/up/nodes/up_1/endpoint');
    expect(again.status, again.text).toBe(409);
    expect(again.body.dependents).toEqual(['further']);
    expect((await get('/v0/pipes/up')).body.endpoint).toBe((await get('/v0/pipes/up')).body.nodes[0].id);
  });

  it('unpublishing: 409 naming the readers; ignore_sql_errors=true does it anyway', async () => {
    const r = await raw('DELETE', '/v0/pipes/up/nodes/up_0/endpoint');
    expect(r.status, r.text).toBe(409);
    expect(r.body.dependents).toEqual(['down', 'further']);
    expect(r.body.error).toContain('no endpoint');
    const forced = await raw('DELETE', '/v0/pipes/up/nodes/up_0/endpoint?ignore_sql_errors=true');
    expect(forced.status, forced.text).toBe(200);
    expect(forced.body.endpoint).toBeNull();
    // `down` exists: not its 404; what it reads has no endpoint now, and the error says so.
    const call = await get('/v0/pipes/down.json');
    expect(call.status, call.text).toBe(422);
    expect(call.body.error).toMatch(/pipe "down" reads pipe "up", which has no endpoint now/);
    expect((await raw('POST', '/v0/pipes/up/nodes/up_0/endpoint')).status).toBe(200);
  });

  it('ignore_sql_errors=true saves a change that breaks a reader', async () => {
    const r = await raw('PUT', '/v0/pipes/up/nodes/up_0?ignore_sql_errors=true', 'SELECT id FROM ev');
    expect(r.status, r.text).toBe(200);
    expect((await get('/v0/pipes/further.json')).status).toBe(422);
  });

  it('a reader that already failed before the change does not refuse it', async () => {
    // `down`/`further` read s, which up's endpoint no longer has since the forced save above.
    const r = await raw('PUT', '/v0/pipes/up/nodes/up_0', 'SELECT id, 2 AS two FROM ev');
    expect(r.status, r.text).toBe(200);
    expect((await raw('PUT', '/v0/pipes/up/nodes/up_0', 'SELECT id, s FROM ev')).status).toBe(200);
    expect((await get('/v0/pipes/further.json')).status).toBe(200);
  });

  it('a pipe reading this one both directly and through a reader is named once', async () => {
    const both = await json('/v0/pipes', { name: 'both', nodes: [{ name: 'both_0', sql: 'SELECT s FROM up WHERE s IN (SELECT s FROM down)', type: 'endpoint' }] });
    expect(both.status, both.text).toBe(200);
    const r = await raw('PUT', '/v0/pipes/up/nodes/up_0', 'SELECT id FROM ev');
    expect(r.status, r.text).toBe(409);
    expect(r.body.dependents).toEqual(['both', 'further']);
    expect(r.body.errors.map((e: any) => `${e.pipe}/${e.node}`)).toEqual(['both/both_0', 'further/further_0']);
  });
});

describe('ignore_sql_errors and JSON bodies on the node routes (a black-box round)', () => {
  it('publish and unpublish take ignore_sql_errors from a form or JSON body too', async () => {
    expect((await json('/v0/pipes', { name: 'ib_src', nodes: [{ name: 'ib_0', sql: 'SELECT id, s FROM ev', type: 'endpoint' }] })).status).toBe(200);
    expect((await json('/v0/pipes', { name: 'ib_reader', nodes: [{ name: 'ibr_0', sql: 'SELECT s FROM ib_src', type: 'endpoint' }] })).status).toBe(200);
    const unpublish = (body: string, type: string) => call(`${srv.url}/v0/pipes/ib_src/nodes/ib_0/endpoint`, { method: 'DELETE', token: admin, body, headers: { 'Content-Type': type } });
    expect((await unpublish('', 'text/plain')).status).toBe(409);
    const viaJson = await unpublish('{"ignore_sql_errors": true}', 'application/json');
    expect(viaJson.status, viaJson.text).toBe(200);
    expect(viaJson.body.endpoint).toBeNull();
    const pub = await call(`${srv.url}/v0/pipes/ib_src/nodes/ib_0/endpoint`, { method: 'POST', token: admin, body: 'ignore_sql_errors=true', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(pub.status, pub.text).toBe(200);
    expect(pub.body.nodes[0].ignore_sql_errors).toBe(true);
    const viaForm = await unpublish('ignore_sql_errors=true', 'application/x-www-form-urlencoded');
    expect(viaForm.status, viaForm.text).toBe(200);
  });

  it('a JSON body that is not JSON is a 400 INVALID_JSON, not SQL the analyzer refuses', async () => {
    expect((await json('/v0/pipes', { name: 'ij', nodes: [{ name: 'ij_0', sql: 'SELECT 1 AS x' }] })).status).toBe(200);
    for (const [method, path] of [['PUT', '/v0/pipes/ij/nodes/ij_0'], ['POST', '/v0/pipes/ij/nodes']] as const) {
      const r = await call(`${srv.url}${path}`, { method, token: admin, body: '{"sql": "SELECT 11 AS x",}', headers: { 'Content-Type': 'application/json' } });
      expect(r, path).toMatchObject({ status: 400, body: { code: 'INVALID_JSON' } });
    }
    expect((await get('/v0/pipes/ij')).body.nodes.map((n: any) => n.sql)).toEqual(['SELECT 1 AS x']);
  });
});

describe('readers the saver may not read (a black-box round)', () => {
  const tokenWith = async (name: string, scopes: string[]) => {
    const r = await call(`${srv.url}/v0/tokens?name=${name}&${scopes.map((s) => `scope=${encodeURIComponent(s)}`).join('&')}`, { method: 'POST', token: admin });
    expect(r.status, r.text).toBe(200);
    return r.body.token as string;
  };
  it('a change that breaks them is a 409 that shows neither their SQL nor the engine\'s text about it', async () => {
    const c = await api.post(`/v0/datasources?name=ev2&schema=${encodeURIComponent('id UInt32, s String')}`);
    expect(c.status, c.text).toBe(200);
    expect((await api.post('/v0/datasources?name=ev2&mode=append', '1,abc\n')).status).toBe(200);
    expect((await json('/v0/pipes', { name: 'rs_src', nodes: [{ name: 'rs_src_0', sql: 'SELECT id AS c FROM ev', type: 'endpoint' }] })).status).toBe(200);
    const reader = await json('/v0/pipes', { name: 'rs_reader', nodes: [{ name: 'rs_reader_0', sql: "SELECT c, 'SECRET_acme_org_42' AS secret_alias FROM rs_src WHERE c != 987654", type: 'endpoint' }] });
    expect(reader.status, reader.text).toBe(200);
    // May change and read rs_src, may not read rs_reader: the 409 quoted rs_reader's SQL, literals and all.
    const editor = await tokenWith('rs_editor', ['PIPES:CREATE', 'PIPES:DROP:rs_src', 'PIPES:READ:rs_src', 'DATASOURCES:READ:ev']);
    expect((await call(`${srv.url}/v0/pipes/rs_reader`, { token: editor })).status).toBe(403);
    const a = await call(`${srv.url}/v0/pipes/rs_src/nodes/rs_src_0`, { method: 'PUT', token: editor, body: 'SELECT id AS other FROM ev' });
    expect(a.status, a.text).toBe(409);
    // Counted, not named (as a drop's 409 counts them: a regression probe found this one naming them).
    expect(a.body.dependents).toEqual([]);
    expect(a.body.hidden_dependents).toBe(1);
    expect(a.text).not.toMatch(/SECRET|987654|secret_alias|SELECT|rs_reader/);
    // May change and read rs_src (and ev) but read neither rs_reader nor what it reads besides: the
    // change was saved (200) and the reader broke without a word. Checked as ADMIN now, told without the engine's text.
    expect((await json('/v0/pipes', { name: 'rs_reader2', nodes: [{ name: 'rs_reader2_0', sql: "SELECT c FROM rs_src WHERE c IN (SELECT id FROM ev2)", type: 'endpoint' }] })).status).toBe(200);
    const narrow = await tokenWith('rs_narrow', ['PIPES:CREATE', 'PIPES:DROP:rs_src', 'PIPES:READ:rs_src', 'DATASOURCES:READ:ev']);
    const b = await call(`${srv.url}/v0/pipes/rs_src/nodes/rs_src_0`, { method: 'PUT', token: narrow, body: 'SELECT id AS other FROM ev' });
    expect(b.status, b.text).toBe(409);
    expect(b.body.dependents).toEqual([]);
    expect(b.body.hidden_dependents).toBe(2);
    expect(b.text).not.toMatch(/SECRET|987654|secret_alias|SELECT|ev2|rs_reader/);
    expect((await get('/v0/pipes/rs_src')).body.nodes[0].sql).toBe('SELECT id AS c FROM ev');
    expect((await get('/v0/pipes/rs_reader2.json')).status).toBe(200);
    // A saver who may not read what its own pipe reads: its SQL is never run with more rights than
    // it has (as ADMIN, a scalar subquery over a secret decided 409 or 200, one bit at a time); the
    // readers go unchecked and the answer names them.
    const blind = await tokenWith('rs_blind', ['PIPES:CREATE', 'PIPES:DROP:rs_src']);
    const probe = (guess: string) => call(`${srv.url}/v0/pipes/rs_src/nodes/rs_src_0`, { method: 'PUT', token: blind,
      body: `SELECT id AS c FROM ev WHERE 1 = (SELECT if(count() > 0, throwIf(1), 1) FROM ev2 WHERE startsWith(s, '${guess}'))` });
    const answers = [];
    for (const guess of ['a', 'z']) {
      const r = await probe(guess);
      answers.push(r.status);
      expect(r.status, r.text).toBe(200);
      // (It may not read rs_src either: it is told what it changed, and that there are warnings.)
      expect(r.body.warnings_hidden).toBeGreaterThan(0);
      expect(r.text).not.toMatch(/SECRET|987654|secret_alias|rs_reader/);
    }
    expect(answers).toEqual([200, 200]);
    // A change the readers survive is saved.
    expect((await call(`${srv.url}/v0/pipes/rs_src/nodes/rs_src_0`, { method: 'PUT', token: admin, body: 'SELECT id AS c, 1 AS one FROM ev' })).status).toBe(200);
  });
});

describe('tenant on a remote ClickHouse 18.16', () => {
  let ch: RunningClickHouse | undefined;
  let token = '';
  const remote = (method: string, path: string, body?: string) => call(`${srv.url}${path}`, { method, token, body });
  beforeAll(async () => {
    if (!requireClickHouse()) return;
    ch = await startClickHouse();
    token = await createTenant(srv, 'remote', { type: 'clickhouse', url: ch.url, user: ch.user, password: ch.password });
    const c = await call(`${srv.url}/v0/datasources?name=ev&schema=${encodeURIComponent('id UInt32, s String')}`, { method: 'POST', token });
    expect(c.status, c.text).toBe(200);
  }, 120_000);
  afterAll(async () => { await ch?.stop(); });

  it('DESCRIBE TABLE (...) on the server: a missing column is refused with its reason', async (t) => {
    if (!ch) return t.skip();
    const bad = await remote('POST', '/v0/pipes?name=r_bad', 'SELECT idd FROM ev');
    expectNodeError(bad, 'r_bad_0', 'idd');
    expect(bad.body.clickhouse_code).toBe(47);
    const ok = await remote('POST', '/v0/pipes?name=r_ok', 'SELECT id, s FROM ev');
    expect(ok.status, ok.text).toBe(200);
    expect((await remote('POST', '/v0/pipes/r_ok/nodes/r_ok_0/endpoint')).status).toBe(200);
    const reader = await remote('POST', '/v0/pipes?name=r_down', 'SELECT s FROM r_ok');
    expect(reader.status, reader.text).toBe(200);
    const conflict = await remote('PUT', '/v0/pipes/r_ok/nodes/r_ok_0', 'SELECT id FROM ev');
    expect(conflict.status, conflict.text).toBe(409);
    expect(conflict.body.dependents).toEqual(['r_down']);
  });

  it('what the server cannot run (a table function under readonly on 18.16) is found at save', async (t) => {
    if (!ch) return t.skip();
    const r = await remote('POST', '/v0/pipes?name=r_numbers', 'SELECT number FROM numbers(3)');
    expect(r.status, r.text).toBe(400);
    expect(r.body.code).toBe('NODE_SQL_ERROR');
    expect(r.body.error).toMatch(/readonly/i);
  });

  it('the server down: 503 (retryable), nothing saved; ignore_sql_errors=true saves', async (t) => {
    if (!ch) return t.skip();
    await ch.stop();
    ch = undefined;
    const r = await remote('POST', '/v0/pipes?name=r_down_srv', 'SELECT id FROM ev');
    expect(r.status, r.text).toBe(503);
    expect(r.headers.get('retry-after')).toBeTruthy();
    expect(r.body.error).toContain('ignore_sql_errors=true');
    expect((await remote('GET', '/v0/pipes/r_down_srv')).status).toBe(404);
    const saved = await remote('POST', '/v0/pipes?name=r_down_srv&ignore_sql_errors=true', 'SELECT id FROM ev');
    expect(saved.status, saved.text).toBe(200);
    expect(saved.body.nodes[0].ignore_sql_errors).toBe(true);
  }, 60_000);
});
