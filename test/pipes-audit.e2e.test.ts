/**
 * Audit of the pipes API as a Tinybird user meets it: node rename sequences against the saved
 * dependencies, node types Roost does not run, the .pipe datafile round-tripping through create,
 * endpoint changes while other pipes read the endpoint, and parameter errors over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;

const post = (path: string, body?: BodyInit, headers: Record<string, string> = {}) =>
  call(`${srv.url}${path}`, { method: 'POST', token: admin, body, headers });
const get = (path: string) => call(`${srv.url}${path}`, { token: admin });
const del = (path: string) => call(`${srv.url}${path}`, { method: 'DELETE', token: admin });
const put = (path: string, body?: string) => call(`${srv.url}${path}`, { method: 'PUT', token: admin, body });
const json = { 'Content-Type': 'application/json' };
const create = (body: unknown) => post('/v0/pipes', JSON.stringify(body), json);

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await post(`/v0/datasources?name=events&schema=${encodeURIComponent('id Int32, country String')}`)).status).toBe(200);
  expect((await post('/v0/datasources?name=events&mode=append', '1,ES\n2,FR\n3,ES\n', { 'Content-Type': 'text/csv' })).body.rows).toBe(3);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('renaming a node', () => {
  it('is refused (409) while another node reads it only in a template branch, as deleting it is', async () => {
    const r = await create({ name: 'ren_branch', nodes: [
      { name: 'a', sql: 'SELECT id FROM events' },
      { name: 'c', sql: '%\nSELECT * FROM {% if not defined(x) %}a{% else %}events{% end %}', type: 'endpoint' },
    ] });
    expect(r.status, r.text).toBe(200);
    // The save-time render (defined() true) reads events; calls without x read a.
    const ren = await put('/v0/pipes/ren_branch/nodes/a?name=b');
    expect(ren.status, ren.text).toBe(409);
    expect(ren.body.dependents).toEqual(['c']);
    const rows = await get('/v0/pipes/ren_branch.json');
    expect(rows.status, rows.text).toBe(200);
    expect(rows.body.rows).toBe(3);
    // Editing a's SQL without renaming it is fine.
    expect((await put('/v0/pipes/ren_branch/nodes/a', 'SELECT id FROM events WHERE id > 1')).status).toBe(200);
    expect((await get('/v0/pipes/ren_branch.json')).body.rows).toBe(2);
  });

  it('is refused (409) while a plain node reads it; an unread node renames and GET shows the new name', async () => {
    expect((await create({ name: 'ren_plain', nodes: [
      { name: 'a', sql: 'SELECT id FROM events' },
      { name: 'b', sql: 'SELECT count() AS n FROM a', type: 'endpoint' },
      { name: 'spare', sql: 'SELECT 1 AS one' },
    ] })).status).toBe(200);
    const ren = await put('/v0/pipes/ren_plain/nodes/a?name=a2');
    expect(ren.status, ren.text).toBe(409);
    expect(ren.body).toMatchObject({ code: 'CONFLICT', dependents: ['b'] });
    const ok = await put('/v0/pipes/ren_plain/nodes/spare?name=spare2');
    expect(ok.status, ok.text).toBe(200);
    const p = (await get('/v0/pipes/ren_plain')).body;
    expect(p.nodes.map((n: { name: string }) => n.name)).toEqual(['a', 'b', 'spare2']);
    // Renaming the endpoint node keeps it the endpoint.
    expect((await put('/v0/pipes/ren_plain/nodes/b?name=b2')).status).toBe(200);
    const q = (await get('/v0/pipes/ren_plain')).body;
    expect(q.nodes.find((n: { name: string }) => n.name === 'b2').node_type).toBe('endpoint');
    expect((await get('/v0/pipes/ren_plain.json')).body.data).toEqual([{ n: 3 }]);
  });
});

describe('a node named like what other nodes read', () => {
  it('renaming or adding a node to a data source\'s or pipe\'s name that other nodes read is refused (409): they would read the node instead', async () => {
    expect((await create({ name: 'shadow_src', nodes: [{ name: 'a', sql: 'SELECT toUInt64(9) AS n', type: 'endpoint' }] })).status).toBe(200);
    expect((await create({ name: 'shadow', nodes: [
      { name: 'a', sql: 'SELECT toUInt64(5) AS n' },
      { name: 'b', sql: 'SELECT count() AS n FROM events' },
      { name: 'c', sql: 'SELECT n FROM shadow_src' },
      { name: 'd', sql: 'SELECT (SELECT n FROM b) + (SELECT n FROM c) + (SELECT n FROM a) AS total', type: 'endpoint' },
      { name: 'e', sql: 'SELECT toUInt64(1) AS n' },
    ] })).status).toBe(200);
    expect((await get('/v0/pipes/shadow.json')).body.data).toEqual([{ total: 17 }]);
    for (const target of ['events', 'shadow_src']) {
      const ren = await put(`/v0/pipes/shadow/nodes/e?name=${target}`);
      expect(ren.status, ren.text).toBe(409);
      expect(ren.body.dependents).toEqual([target === 'events' ? 'b' : 'c']);
      const add = await post(`/v0/pipes/shadow/nodes?name=${target}`, 'SELECT toUInt64(1) AS n');
      expect(add.status, add.text).toBe(409);
    }
    expect((await get('/v0/pipes/shadow.json')).body.data).toEqual([{ total: 17 }]);
    const deps = (await get('/v0/pipes/shadow')).body.nodes.map((n: { name: string; dependencies: string[] }) => [n.name, n.dependencies]);
    expect(deps).toEqual([['a', []], ['b', ['events']], ['c', ['shadow_src']], ['d', ['b', 'c', 'a']], ['e', []]]);
    // A name nothing reads is fine.
    expect((await post('/v0/pipes/shadow/nodes?name=other', 'SELECT 1 AS one')).status).toBe(200);
    expect((await put('/v0/pipes/shadow/nodes/e?name=e2')).status).toBe(200);
  });
});

describe('node types', () => {
  it('materialized, copy and sink nodes are refused (501), not saved as standard nodes', async () => {
    for (const type of ['materialized', 'copy', 'sink']) {
      const r = await create({ name: `nt_${type}`, nodes: [{ name: 'a', sql: 'SELECT id FROM events', type }] });
      expect(r.status, r.text).toBe(501);
      expect(r.body).toMatchObject({ code: 'NOT_AVAILABLE', node: 'a' });
      expect((await get(`/v0/pipes/nt_${type}`)).status).toBe(404);
    }
    const form = await post('/v0/pipes', new URLSearchParams({ name: 'nt_form', sql: 'SELECT 1', type: 'materialized' }));
    expect(form.status, form.text).toBe(501);
  });

  it('an unknown type is a 400; standard (and Tinybird\'s "default") are plain nodes', async () => {
    const bad = await create({ name: 'nt_bad', nodes: [{ name: 'a', sql: 'SELECT 1', type: 'endpont' }] });
    expect(bad.status, bad.text).toBe(400);
    expect(bad.body.code).toBe('INVALID_PARAMETER');
    const ok = await create({ name: 'nt_ok', nodes: [{ name: 'a', sql: 'SELECT 1 AS x', type: 'standard' }, { name: 'b', sql: 'SELECT x FROM a', type: 'ENDPOINT' }, { name: 'c', sql: 'SELECT 2', type: 'default' }] });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.nodes.map((n: { node_type: string }) => n.node_type)).toEqual(['standard', 'endpoint', 'standard']);
  });
});

/** A minimal reader of the .pipe text Roost writes (DESCRIPTION, NODE, SQL, TYPE blocks). */
function parseDatafile(text: string): { description: string | null; nodes: Array<{ name: string; sql: string; description?: string; type?: string }> } {
  const lines = text.split('\n');
  let description: string | null = null;
  const nodes: Array<{ name: string; sql: string; description?: string; type?: string }> = [];
  const block = (i: number): [string, number] => {
    const out: string[] = [];
    for (; i < lines.length && (lines[i]!.startsWith('    ') || (lines[i] === '' && lines.slice(i).find((l) => l !== '')?.startsWith('    '))); i++) out.push(lines[i]!.slice(4));
    return [out.join('\n').replace(/\n+$/, ''), i];
  };
  for (let i = 0; i < lines.length;) {
    const l = lines[i]!;
    if (l === 'DESCRIPTION >') {
      const [t, j] = block(i + 1);
      if (nodes.length) nodes[nodes.length - 1]!.description = t; else description = t;
      i = j;
    } else if (l.startsWith('NODE ')) { nodes.push({ name: l.slice(5).trim(), sql: '' }); i++; }
    else if (l === 'SQL >') { const [t, j] = block(i + 1); nodes[nodes.length - 1]!.sql = t; i = j; }
    else if (l.startsWith('TYPE ')) { nodes[nodes.length - 1]!.type = l.slice(5).trim(); i++; }
    else i++;
  }
  return { description, nodes };
}

describe('create with JSON', () => {
  it('a node name or description that is not a string is a 400, not dropped', async () => {
    for (const body of [
      { name: 'js_bad', nodes: [{ name: 5, sql: 'SELECT 1' }] },
      { name: 'js_bad', nodes: [{ name: 'a', sql: 'SELECT 1', description: ['x'] }] },
      { name: 'js_bad', description: { t: 1 }, nodes: [{ name: 'a', sql: 'SELECT 1' }] },
    ]) {
      const r = await create(body);
      expect(r.status, r.text).toBe(400);
      expect(r.body.code).toBe('INVALID_PARAMETER');
    }
    expect((await get('/v0/pipes/js_bad')).status).toBe(404);
    const ok = await create({ name: 'js_ok', description: null, nodes: [{ sql: 'SELECT 1 AS one' }] });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.nodes[0].name).toBe('js_ok_0');
  });
});

describe('a pipe named by its id', () => {
  it('GET, .pipe, endpoint calls and DELETE accept the pipe id as Tinybird does; scopes still go by name', async () => {
    const made = await create({ name: 'by_id', nodes: [{ name: 'a', sql: 'SELECT count() AS n FROM events', type: 'endpoint' }] });
    expect(made.status, made.text).toBe(200);
    const id = made.body.id as string;
    const g = await get(`/v0/pipes/${id}`);
    expect(g.status, g.text).toBe(200);
    expect(g.body.name).toBe('by_id');
    expect((await get(`/v0/pipes/${id}.pipe`)).text).toBe((await get('/v0/pipes/by_id.pipe')).text);
    expect((await get(`/v0/pipes/${id}.json`)).body.data).toEqual([{ n: 3 }]);
    const tok = await post(`/v0/tokens?name=by_id_other&scope=PIPES:READ:ren_plain`);
    expect(tok.status, tok.text).toBe(200);
    const denied = await call(`${srv.url}/v0/pipes/${id}.json`, { token: tok.body.token });
    expect(denied.status, denied.text).toBe(403);
    expect((await get('/v0/pipes/t_0000000000000000')).status).toBe(404);
    expect((await del(`/v0/pipes/${id}`)).status).toBe(204);
    expect((await get('/v0/pipes/by_id')).status).toBe(404);
  });
});

describe('the .pipe datafile', () => {
  it('round-trips through create: same nodes, SQL, descriptions, params, dependencies and endpoint', async () => {
    const src = {
      name: 'df_src', description: 'top countries\nby views',
      nodes: [
        { name: 'base', description: 'filtered rows', sql: "%\nSELECT id, country\nFROM events\n\nWHERE id >= {{Int32(min_id, 0, description=\"lowest id\", example=\"1\", required=False)}}\n  {% if defined(c) %}AND country = {{String(c)}}{% end %}" },
        { name: 'agg', sql: "%\nSELECT country, count() AS n FROM base\nGROUP BY country ORDER BY {{column(order, 'country')}}", type: 'endpoint' },
      ],
    };
    expect((await create(src)).status).toBe(200);
    const text = (await get('/v0/pipes/df_src.pipe')).text;
    expect((await get('/v0/pipes/df_src?format=pipe')).text).toBe(text);
    const parsed = parseDatafile(text);
    const again = await create({ name: 'df_copy', description: parsed.description, nodes: parsed.nodes });
    expect(again.status, again.text).toBe(200);
    const a = (await get('/v0/pipes/df_src')).body;
    const b = (await get('/v0/pipes/df_copy')).body;
    const shape = (p: any) => ({ description: p.description, type: p.type, nodes: p.nodes.map((n: any) => ({ name: n.name, sql: n.sql, description: n.description, params: n.params, dependencies: n.dependencies, node_type: n.node_type })) });
    expect(shape(b)).toEqual(shape(a));
    expect((await get('/v0/pipes/df_copy.pipe')).text).toBe(text);
    expect((await get('/v0/pipes/df_copy.json?min_id=2&order=n')).body.data).toEqual((await get('/v0/pipes/df_src.json?min_id=2&order=n')).body.data);
    const params = a.nodes[0].params;
    expect(params.find((p: any) => p.name === 'min_id')).toEqual({ name: 'min_id', type: 'Int32', required: false, default: 0, description: 'lowest id', example: '1' });
  });
});

describe('an endpoint other pipes read', () => {
  it('cannot lose its endpoint by unpublishing or deleting the published node (409); publishing another node is allowed', async () => {
    expect((await create({ name: 'ep_src', nodes: [{ name: 's0', sql: 'SELECT id, country FROM events' }, { name: 's1', sql: 'SELECT count() AS n FROM s0', type: 'endpoint' }] })).status).toBe(200);
    expect((await create({ name: 'ep_reader', nodes: [{ name: 'r', sql: 'SELECT n FROM ep_src', type: 'endpoint' }] })).status).toBe(200);
    const un = await del('/v0/pipes/ep_src/nodes/s1/endpoint');
    expect(un.status, un.text).toBe(409);
    expect(un.body.dependents).toEqual(['ep_reader']);
    const dn = await del('/v0/pipes/ep_src/nodes/s1');
    expect(dn.status, dn.text).toBe(409);
    const dp = await del('/v0/pipes/ep_src');
    expect(dp.status, dp.text).toBe(409);
    expect((await get('/v0/pipes/ep_reader.json')).body.data).toEqual([{ n: 3 }]);
    // force=true without an endpoint is refused too.
    const forced = await post('/v0/pipes?force=true', JSON.stringify({ name: 'ep_src', nodes: [{ name: 'x', sql: 'SELECT 1' }] }), json);
    expect(forced.status, forced.text).toBe(409);
    expect((await get('/v0/pipes/ep_reader.json')).body.data).toEqual([{ n: 3 }]);
    // Once the reader is gone, all of it works.
    expect((await del('/v0/pipes/ep_reader')).status).toBe(204);
    expect((await del('/v0/pipes/ep_src/nodes/s1/endpoint')).status).toBe(200);
    expect((await del('/v0/pipes/ep_src')).status).toBe(204);
  });
});

describe('saving templates whose neutral values cannot compute', () => {
  it('indexing split_to_array()/String()/JSON(), dividing by a parameter and max_threads(param) save, and calls compute with the real values', async () => {
    const sql = "%\n{{ max_threads(Int32(t, 0)) }}SELECT {{ split_to_array(s)[0] }} AS first, {{ String(w)[-1] }} AS last_char, "
      + "{{ JSON(j)['k'] }} AS k, {{ Int32(a, 0) // Int32(b, 0) }} AS q";
    const r = await create({ name: 'neutral', nodes: [{ name: 'a', sql, type: 'endpoint' }] });
    expect(r.status, r.text).toBe(200);
    const ok = await get(`/v0/pipes/neutral.json?t=2&s=x,y&w=abc&j=${encodeURIComponent('{"k":"v"}')}&a=7&b=2`);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.data).toEqual([{ first: 'x', last_char: 'c', k: 'v', q: 3 }]);
    // Real calls are still checked.
    const zero = await get(`/v0/pipes/neutral.json?t=2&s=x&w=abc&j=${encodeURIComponent('{"k":"v"}')}&a=7&b=0`);
    expect(zero.status, zero.text).toBe(422);
    expect(zero.body.code).toBe('TEMPLATE_INVALID');
    const noKey = await get(`/v0/pipes/neutral.json?t=2&s=x&w=abc&j=${encodeURIComponent('{"z":1}')}&a=7&b=1`);
    expect(noKey.status, noKey.text).toBe(422);
    // A thread count out of 1..1024 from a request parameter: a 400 naming the parameter (it was a 422 naming max_threads()).
    const threads = await get(`/v0/pipes/neutral.json?t=0&s=x&w=abc&j=${encodeURIComponent('{"k":"v"}')}&a=7&b=1`);
    expect(threads.status, threads.text).toBe(400);
    expect(threads.body).toMatchObject({ code: 'TEMPLATE_PARAMETER', parameter: 't' });
    const empty = await get(`/v0/pipes/neutral.json?t=1&s=${encodeURIComponent(' , ')}&w=abc&j=${encodeURIComponent('{"k":"v"}')}&a=7&b=1`);
    expect(empty.status, empty.text).toBe(422);
    expect(empty.body.error).toContain('out of range');
  });

  it('columns(split_to_array(p)) and symbol(String(p)) save, and calls name the requested columns', async () => {
    const r = await create({ name: 'neutral_cols', nodes: [{ name: 'a', sql: '%\nSELECT {{ columns(split_to_array(cols)) }}, {{ symbol(String(one)) }} FROM events ORDER BY id', type: 'endpoint' }] });
    expect(r.status, r.text).toBe(200);
    const ok = await get('/v0/pipes/neutral_cols.json?cols=id,country&one=id');
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.meta.map((m: { name: string }) => m.name)).toEqual(['id', 'country', 'id']);
    const missing = await get('/v0/pipes/neutral_cols.json?one=id');
    expect(missing.status, missing.text).toBe(400);
    expect(missing.body.code).toBe('TEMPLATE_PARAMETER');
  });
});

describe('parameter errors over HTTP', () => {
  const cases: Array<[string, string, string]> = [
    ['Int8(v)', '128', 'Int8'], ['UInt8(v)', '-1', 'UInt8'], ['Int32(v)', '5.0', 'Int32'], ['Int32(v)', ' 5', 'Int32'],
    ['Float64(v)', 'nan', 'Float64'], ['Boolean(v)', 'yes', 'Boolean'], ['Date(v)', '2024-02-30', 'Date'],
    ['Date(v)', '2024-2-3', 'Date'], ['DateTime(v)', '2024-02-03 24:00:00', 'DateTime'], ['DateTime64(v)', '2024-02-03 10:00:00.1234567891', 'DateTime64'],
    ["Array(v, 'Int32')", '1,,3', 'Array(Int32)'], ["Array(v, 'Date')", '2024-01-01,2024-13-01', 'Array(Date)'],
    ["String(v, enum=['a','b'])", 'c', 'String in [a, b]'], ['JSON(v)', '{bad', 'JSON'],
  ];
  beforeAll(async () => {
    const nodes = cases.map(([fn], i) => ({ name: `n${i}`, sql: `%\nSELECT {{${fn}}} AS v` }));
    for (const [i, n] of nodes.entries()) {
      const r = await create({ name: `perr_${i}`, nodes: [{ ...n, type: 'endpoint' }] });
      expect(r.status, r.text).toBe(200);
    }
  });
  it('each wrong value answers 400 TEMPLATE_PARAMETER naming the parameter and the expected type', async () => {
    for (const [i, [fn, value, expected]] of cases.entries()) {
      const r = await get(`/v0/pipes/perr_${i}.json?v=${encodeURIComponent(value)}`);
      expect(r.status, `${fn} ${value}: ${r.text}`).toBe(400);
      expect(r.body, `${fn} ${value}`).toMatchObject({ code: 'TEMPLATE_PARAMETER', parameter: 'v', expected });
      expect(r.body.error).toContain('"v"');
    }
  });
  it('a required parameter left out, or sent empty, is a 400 naming it', async () => {
    expect((await create({ name: 'perr_req', nodes: [{ name: 'a', sql: '%\nSELECT {{String(who, required=True)}} AS w', type: 'endpoint' }] })).status).toBe(200);
    for (const q of ['', '?who=']) {
      const r = await get(`/v0/pipes/perr_req.json${q}`);
      expect(r.status, r.text).toBe(400);
      expect(r.body).toMatchObject({ code: 'TEMPLATE_PARAMETER', parameter: 'who' });
    }
    expect((await get('/v0/pipes/perr_req.json?who=me')).body.data).toEqual([{ w: 'me' }]);
  });
  it('required=True with a default takes the default when the parameter is left out (Tinybird\'s behaviour)', async () => {
    expect((await create({ name: 'perr_reqdef', nodes: [{ name: 'a', sql: '%\nSELECT {{Int32(n, 3, required=True)}} AS n', type: 'endpoint' }] })).status).toBe(200);
    expect((await get('/v0/pipes/perr_reqdef.json')).body.data).toEqual([{ n: 3 }]);
    expect((await get('/v0/pipes/perr_reqdef.json?n=')).body.data).toEqual([{ n: 3 }]);
    expect((await get('/v0/pipes/perr_reqdef.json?n=4')).body.data).toEqual([{ n: 4 }]);
    const p = (await get('/v0/pipes/perr_reqdef')).body.nodes[0].params;
    expect(p).toEqual([{ name: 'n', type: 'Int32', required: true, default: 3 }]);
  });
  it('sql_and() with an operator it does not know is refused at save, not read as a column named col__op', async () => {
    const r = await create({ name: 'perr_sqland', nodes: [{ name: 'a', sql: '%\nSELECT id FROM events WHERE {{ sql_and(country__like=String(c, \'E%\')) }}', type: 'endpoint' }] });
    expect(r.status, r.text).toBe(422);
    expect(r.body).toMatchObject({ code: 'TEMPLATE_INVALID', node: 'a' });
    expect(r.body.error).toContain('"like"');
    const ok = await create({ name: 'perr_sqland', nodes: [{ name: 'a', sql: "%\nSELECT id FROM events WHERE {{ sql_and(id__gte=Int32(lo, 2), country__in=Array(cs, 'String', defined=False)) }} ORDER BY id", type: 'endpoint' }] });
    expect(ok.status, ok.text).toBe(200);
    expect((await get('/v0/pipes/perr_sqland.json')).body.data).toEqual([{ id: 2 }, { id: 3 }]);
    expect((await get('/v0/pipes/perr_sqland.json?cs=ES')).body.data).toEqual([{ id: 3 }]);
  });
  it('error() and custom_error() answer their 4xx status and fields', async () => {
    expect((await create({ name: 'perr_err', nodes: [{ name: 'a', sql: "%\n{% if not defined(k) %}{{ custom_error({'error': 'k is needed', 'code': 422, 'hint': 'pass k', 'documentation': 'https://example.com/k'}) }}{% end %}{% if k == 'x' %}{{ error('no x', 403) }}{% end %}SELECT 1 AS one", type: 'endpoint' }] })).status).toBe(200);
    const a = await get('/v0/pipes/perr_err.json');
    expect(a.status, a.text).toBe(422);
    expect(a.body).toMatchObject({ code: 'TEMPLATE_ERROR', error: 'k is needed', hint: 'pass k', documentation: 'https://example.com/k' });
    const b = await get('/v0/pipes/perr_err.json?k=x');
    expect(b.status, b.text).toBe(403);
    expect(b.body).toMatchObject({ code: 'TEMPLATE_ERROR', error: 'no x' });
    expect((await get('/v0/pipes/perr_err.json?k=y')).body.data).toEqual([{ one: 1 }]);
    // A malformed JSON body says it is not JSON, and where.
    const bad = await call(`${srv.url}/v0/pipes/perr_err.json`, { method: 'POST', token: admin, headers: json, body: '{"k":1,}' });
    expect(bad.status, bad.text).toBe(400);
    expect(bad.body).toMatchObject({ code: 'INVALID_JSON' });
    expect(bad.body.error).toMatch(/not valid JSON \(.*position/);
    // A template's own 401/403 is no auth decision: not audited (any caller could fill the audit
    // log with records of its own text). A real refusal is, as the control shows.
    const own = await call(`${srv.url}/v0/pipes/perr_err.json?k=x`, { token: admin, headers: { 'X-Request-Id': 'tpl-403' } });
    expect(own.status).toBe(403);
    const real = await call(`${srv.url}/v0/pipes/perr_err.json`, { token: 'p.not-a-token', headers: { 'X-Request-Id': 'real-401' } });
    expect(real.status).toBe(401);
    await expect.poll(() => srv.logs.some((l) => l.msg === 'audit' && l.requestId === 'real-401'), { timeout: 10_000 }).toBe(true);
    expect(srv.logs.filter((l) => l.msg === 'audit' && l.requestId === 'tpl-403')).toEqual([]);
  });
});

describe('pipes and data sources share names', () => {
  it('a data source cannot be created under a pipe\'s name (409), as a pipe cannot under a data source\'s', async () => {
    const p = await create({ name: 'shared_nm', nodes: [{ name: 'n', sql: 'SELECT 1 AS n', type: 'endpoint' }] });
    expect(p.status, p.text).toBe(200);
    const reader = await create({ name: 'reads_shared', nodes: [{ name: 'r', sql: 'SELECT n FROM shared_nm', type: 'endpoint' }] });
    expect(reader.status, reader.text).toBe(200);
    const ds = await post(`/v0/datasources?name=shared_nm&schema=${encodeURIComponent('n UInt8')}`);
    expect(ds.status, ds.text).toBe(409);
    expect(ds.body.error).toMatch(/a pipe is named "shared_nm"/);
    // The reader still reads the pipe.
    expect((await get('/v0/pipes/reads_shared.json')).body.data).toEqual([{ n: 1 }]);
    expect((await get('/v0/datasources/shared_nm')).status).toBe(404);
  });
});
