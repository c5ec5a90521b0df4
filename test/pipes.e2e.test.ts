/** Pipes and endpoints over HTTP against the real server and embedded engine. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as jose from 'jose';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
const SECRET = 'TOPSECRET_ROW_7f3a';

const post = (path: string, body?: BodyInit, headers: Record<string, string> = {}, token = admin) =>
  call(`${srv.url}${path}`, { method: 'POST', token, body, headers });
const get = (path: string, token = admin) => call(`${srv.url}${path}`, { token });
const del = (path: string, token = admin) => call(`${srv.url}${path}`, { method: 'DELETE', token });
const qs = (params: Record<string, string | string[]>) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of Array.isArray(v) ? v : [v]) u.append(k, x);
  return u.toString();
};
/** Creates a pipe from JSON nodes; the last node (or `endpoint`) is published. */
const createPipe = async (name: string, nodes: Array<{ name: string; sql: string }>, endpoint: string | null = nodes[nodes.length - 1]!.name) => {
  const r = await post('/v0/pipes', JSON.stringify({ name, nodes: nodes.map((n) => ({ ...n, type: n.name === endpoint ? 'endpoint' : undefined })) }), { 'Content-Type': 'application/json' });
  if (r.status !== 200) throw new Error(`create ${name}: ${r.status} ${r.text}`);
  return r.body;
};
const endpoint = (pipe: string, params: Record<string, string | string[]> = {}, ext = 'json', token = admin) =>
  get(`/v0/pipes/${pipe}.${ext}?${qs(params)}`, token);
const sqlRows = async (q: string) => {
  const r = await get(`/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSONEachRow`)}`);
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
};

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const schema = encodeURIComponent('id Int32, country String, v Float64, ts DateTime, tags Array(String)');
  expect((await post(`/v0/datasources?name=events&schema=${schema}`)).status).toBe(200);
  const rows = ['1,ES,1.5,2024-01-01 10:00:00,"[\'a\',\'b\']"', '2,FR,2,2024-01-02 11:00:00,"[\'b\']"', '3,ES,3,2024-01-03 12:00:00,[]', '4,DE,10,2024-01-04 13:00:00,"[\'c\']"'];
  expect((await post('/v0/datasources?name=events&mode=append', rows.join('\n') + '\n', { 'Content-Type': 'text/csv' })).body.rows).toBe(4);
  expect((await post(`/v0/datasources?name=secret&schema=${encodeURIComponent('s String, id Int32')}`)).status).toBe(200);
  expect((await post('/v0/datasources?name=secret&mode=append', `${SECRET},1\n`, { 'Content-Type': 'text/csv' })).body.rows).toBe(1);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('pipes API', () => {
  it('creates a multi-node templated pipe and shows nodes with dependencies and parameters', async () => {
    const p = await createPipe('by_country', [
      { name: 'filtered', sql: '%\nSELECT * FROM events WHERE v >= {{Float64(min_v, 0, description="lowest value")}}' },
      { name: 'agg', sql: '%\nSELECT country, count() AS n, sum(v) AS total FROM filtered\n{% if defined(country) %}WHERE country = {{String(country)}}{% end %}\nGROUP BY country ORDER BY country LIMIT {{Int32(limit, 10, required=False)}}' },
    ]);
    expect(p).toMatchObject({ name: 'by_country', type: 'endpoint' });
    const one = await get('/v0/pipes/by_country');
    expect(one.status).toBe(200);
    expect(one.body.endpoint).toBe(one.body.nodes[1].id);
    expect(one.body.nodes.map((n: { name: string; dependencies: string[]; node_type: string }) => [n.name, n.dependencies, n.node_type]))
      .toEqual([['filtered', ['events'], 'standard'], ['agg', ['filtered'], 'endpoint']]);
    expect(one.body.nodes[0].params).toEqual([{ name: 'min_v', type: 'Float64', default: 0, description: 'lowest value', required: false }]);
    expect(one.body.nodes[1].params.map((x: { name: string }) => x.name).sort()).toEqual(['country', 'limit']);

    const all = await endpoint('by_country');
    expect(all.status, all.text).toBe(200);
    expect(all.body.data).toEqual([{ country: 'DE', n: 1, total: 10 }, { country: 'ES', n: 2, total: 4.5 }, { country: 'FR', n: 1, total: 2 }]);
    const es = await endpoint('by_country', { country: 'ES', min_v: '2' });
    expect(es.body.data).toEqual([{ country: 'ES', n: 1, total: 3 }]);
    const lim = await endpoint('by_country', { limit: '1' });
    expect(lim.body.rows).toBe(1);
    const list = await get('/v0/pipes');
    expect(list.body.pipes.map((x: { name: string }) => x.name)).toContain('by_country');
  });

  it('creates from form name+sql, adds, edits, publishes, unpublishes and deletes nodes', async () => {
    const c = await post('/v0/pipes', new URLSearchParams({ name: 'edits', sql: 'SELECT id, country FROM events' }));
    expect(c.status, c.text).toBe(200);
    expect(c.body.nodes.map((n: { name: string }) => n.name)).toEqual(['edits_0']);
    expect(c.body.endpoint).toBeNull();
    expect(await endpoint('edits')).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
    expect(await post('/v0/pipes', new URLSearchParams({ name: 'edits', sql: 'SELECT 1' }))).toMatchObject({ status: 409, body: { code: 'ALREADY_EXISTS' } });

    const added = await post('/v0/pipes/edits/nodes?name=top', 'SELECT country, count() AS n FROM edits_0 GROUP BY country ORDER BY n DESC, country LIMIT 1', { 'Content-Type': 'text/plain' });
    expect(added.status, added.text).toBe(200);
    expect(added.body).toMatchObject({ name: 'top', dependencies: ['edits_0'] });
    expect(await post('/v0/pipes/edits/nodes?name=top', 'SELECT 1')).toMatchObject({ status: 409 });
    const pub = await post('/v0/pipes/edits/nodes/top/endpoint');
    expect(pub.status).toBe(200);
    expect(pub.body.endpoint).toBe(added.body.id);
    expect((await endpoint('edits')).body.data).toEqual([{ country: 'ES', n: 2 }]);

    const put = await call(`${srv.url}/v0/pipes/edits/nodes/top?description=most+frequent`, { method: 'PUT', token: admin, body: 'SELECT country, count() AS n FROM edits_0 GROUP BY country ORDER BY n, country LIMIT 1' });
    expect(put.status, put.text).toBe(200);
    expect(put.body.description).toBe('most frequent');
    expect((await endpoint('edits')).body.data).toEqual([{ country: 'DE', n: 1 }]);
    // A JSON object body is read as the node's fields (its text was stored as the SQL).
    const asJson = await call(`${srv.url}/v0/pipes/edits/nodes/top`, { method: 'PUT', token: admin, headers: { 'Content-Type': 'Application/JSON; charset=utf-8' }, body: JSON.stringify({ sql: 'SELECT country, count() AS n FROM edits_0 GROUP BY country ORDER BY n DESC, country LIMIT 1', description: 'top one' }) });
    expect(asJson.status, asJson.text).toBe(200);
    expect(asJson.body).toMatchObject({ name: 'top', description: 'top one' });
    expect((await endpoint('edits')).body.data).toEqual([{ country: 'ES', n: 2 }]);
    expect(await call(`${srv.url}/v0/pipes/edits/nodes/top`, { method: 'PUT', token: admin, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ sql: 42 }) })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER', parameter: 'sql' } });
    const jsonNode = await call(`${srv.url}/v0/pipes/edits/nodes`, { method: 'POST', token: admin, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'from_json', sql: 'SELECT 1 AS one' }) });
    expect(jsonNode.status, jsonNode.text).toBe(200);
    expect(jsonNode.body).toMatchObject({ name: 'from_json', sql: 'SELECT 1 AS one' });
    expect((await del('/v0/pipes/edits/nodes/from_json')).status).toBe(204);
    expect((await call(`${srv.url}/v0/pipes/edits/nodes/top`, { method: 'PUT', token: admin, body: 'SELECT country, count() AS n FROM edits_0 GROUP BY country ORDER BY n, country LIMIT 1' })).status).toBe(200);
    // A broken edit is refused and changes nothing.
    expect((await call(`${srv.url}/v0/pipes/edits/nodes/top`, { method: 'PUT', token: admin, body: 'SELECT * FROM nowhere' })).status).toBe(422);
    expect((await endpoint('edits')).body.data).toEqual([{ country: 'DE', n: 1 }]);

    expect(await del('/v0/pipes/edits/nodes/edits_0')).toMatchObject({ status: 409, body: { code: 'CONFLICT', dependents: ['top'] } });
    expect((await del('/v0/pipes/edits/nodes/top/endpoint')).body.endpoint).toBeNull();
    expect(await del('/v0/pipes/edits/nodes/top/endpoint')).toMatchObject({ status: 404 });
    expect((await del('/v0/pipes/edits/nodes/top')).status).toBe(204);
    expect((await get('/v0/pipes/edits')).body.nodes).toHaveLength(1);
    expect((await del('/v0/pipes/edits')).status).toBe(204);
    expect(await get('/v0/pipes/edits')).toMatchObject({ status: 404, body: { code: 'UNKNOWN_PIPE' } });
  });

  it('answers the .pipe datafile that Tinybird clients pull', async () => {
    const r = await get('/v0/pipes/by_country.pipe');
    expect(r.status).toBe(200);
    expect(r.text).toContain('NODE filtered\nSQL >\n    %\n    SELECT * FROM events');
    expect(r.text).toContain('TYPE ENDPOINT\n');
    expect(r.text.endsWith('\n') && !r.text.endsWith('\n\n')).toBe(true);
    // Posted back, it is said to be a datafile (it was read as SQL: "unknown statement NODE").
    const back = await post('/v0/pipes?name=from_datafile', r.text, { 'Content-Type': 'text/plain' });
    expect(back.status, back.text).toBe(400);
    expect(back.body.code).toBe('UNSUPPORTED_FORMAT');
    expect(back.body.error).toContain('.pipe datafile');
    expect((await get('/v0/pipes/from_datafile')).status).toBe(404);
  });

  it('refuses bad input with 4xx JSON', async () => {
    expect(await post('/v0/pipes', new URLSearchParams({ name: 'bad name', sql: 'SELECT 1' }))).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(await post('/v0/pipes', new URLSearchParams({ name: 'nosql' }))).toMatchObject({ status: 400 });
    expect(await post('/v0/pipes', '{"name": "x", "nodes": [', { 'Content-Type': 'application/json' })).toMatchObject({ status: 400, body: { code: 'INVALID_JSON' } });
    expect(await post('/v0/pipes', new URLSearchParams({ name: 'events', sql: 'SELECT 1' }))).toMatchObject({ status: 409 });
    expect(await post('/v0/pipes', new URLSearchParams({ name: 'w', sql: 'INSERT INTO events VALUES (1)' }))).toMatchObject({ status: 403, body: { code: 'SQL_FORBIDDEN' } });
    expect(await post('/v0/pipes', new URLSearchParams({ name: 'w', sql: 'SELECT * FROM system.tables' }))).toMatchObject({ status: 403, body: { code: 'SQL_FORBIDDEN' } });
    expect(await post('/v0/pipes', new URLSearchParams({ name: 'w', sql: '%\nSELECT {{ Int32(x, 1) ' }))).toMatchObject({ status: 400, body: { code: 'TEMPLATE_SYNTAX', node: 'w_0' } });
    expect(await post('/v0/pipes', new URLSearchParams({ name: 'w', sql: '%\nSELECT {{ Int32(x, "abc") }}' }))).toMatchObject({ status: 400, body: { code: 'TEMPLATE_PARAMETER', parameter: 'x' } });
    expect(await endpoint('by_country', {}, 'xml')).toMatchObject({ status: 400, body: { code: 'UNSUPPORTED_FORMAT' } });
    expect(await endpoint('no_such_pipe')).toMatchObject({ status: 404, body: { code: 'UNKNOWN_PIPE' } });
  });
});

describe('nodes appended without a name', () => {
  it('are named <pipe>_<n>, the first free one: after a delete the next one is no 409 for a name the client never chose', async () => {
    await createPipe('an_p', [{ name: 'an_p_0', sql: 'SELECT id FROM events' }]);
    const add = () => call(`${srv.url}/v0/pipes/an_p/nodes`, { method: 'POST', token: admin, body: 'SELECT id FROM events' });
    const first = await add();
    expect(first.status, first.text).toBe(200);
    expect(first.body.name).toBe('an_p_1');
    expect((await call(`${srv.url}/v0/pipes/an_p/nodes/an_p_0`, { method: 'DELETE', token: admin })).status).toBe(204);
    const second = await add();
    expect(second.status, second.text).toBe(200);
    expect(second.body.name).toBe('an_p_2');
    expect((await call(`${srv.url}/v0/pipes/an_p`, { token: admin })).body.nodes.map((n: any) => n.name)).toEqual(['an_p_1', 'an_p_2']);
  });

  it('may not be named like a node id (publishing by the other node\'s id published the node so named)', async () => {
    await createPipe('nid_p', [{ name: 'a', sql: 'SELECT id FROM events' }, { name: 'b', sql: 'SELECT id FROM events' }], 'a');
    const got = (await call(`${srv.url}/v0/pipes/nid_p`, { token: admin })).body;
    const bId = got.nodes.find((n: any) => n.name === 'b').id;
    const rename = await call(`${srv.url}/v0/pipes/nid_p/nodes/a?name=${bId}`, { method: 'PUT', token: admin, body: 'SELECT id FROM events' });
    expect(rename).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    const add = await call(`${srv.url}/v0/pipes/nid_p/nodes?name=n_0123456789abcdef`, { method: 'POST', token: admin, body: 'SELECT id FROM events' });
    expect(add).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect((await call(`${srv.url}/v0/pipes/nid_p/nodes/${bId}/endpoint`, { method: 'POST', token: admin })).status).toBe(200);
    expect((await call(`${srv.url}/v0/pipes/nid_p`, { token: admin })).body.endpoint).toBe(bId);
  });

  it('node routes take the pipe\'s id; a PUT that changes nothing is a 400 naming what it ignored; descriptions have one limit', async () => {
    const created = await createPipe('pid_p', [{ name: 'a', sql: 'SELECT id FROM events' }], null);
    const add = await call(`${srv.url}/v0/pipes/${created.id}/nodes?name=b`, { method: 'POST', token: admin, body: 'SELECT id FROM events' });
    expect(add.status, add.text).toBe(200);
    expect((await call(`${srv.url}/v0/pipes/${created.id}/nodes/b/endpoint`, { method: 'POST', token: admin })).status).toBe(200);
    const before = (await call(`${srv.url}/v0/pipes/pid_p`, { token: admin })).body;
    const typo = await call(`${srv.url}/v0/pipes/pid_p/nodes/a?descripton=x`, { method: 'PUT', token: admin });
    expect(typo).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(typo.body.error).toMatch(/descripton/);
    expect((await call(`${srv.url}/v0/pipes/pid_p`, { token: admin })).body.updated_at).toBe(before.updated_at);
    expect((await call(`${srv.url}/v0/pipes/pid_p/nodes/a?description=ok`, { method: 'PUT', token: admin })).status).toBe(200);
    const long = 'd'.repeat(10_001);
    const jsonCreate = await post('/v0/pipes', JSON.stringify({ name: 'pid_long', description: long, nodes: [{ name: 'n', sql: 'SELECT 1 AS x' }] }), { 'Content-Type': 'application/json' });
    expect(jsonCreate).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    const nodeLong = await post('/v0/pipes', JSON.stringify({ name: 'pid_long', nodes: [{ name: 'n', sql: 'SELECT 1 AS x', description: long }] }), { 'Content-Type': 'application/json' });
    expect(nodeLong).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect((await call(`${srv.url}/v0/pipes/pid_p/nodes/a`, { method: 'PUT', token: admin, body: new URLSearchParams({ description: long }).toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded' } })).status).toBe(400);
    expect((await call(`${srv.url}/v0/pipes/pid_long`, { token: admin })).status).toBe(404);
  });

  it('take type= as on create: endpoint publishes, materialized and copy are refused, anything else is a 400 (it was ignored)', async () => {
    await createPipe('ty_p', [{ name: 'ty_0', sql: 'SELECT id FROM events' }], null);
    const add = (q: string) => call(`${srv.url}/v0/pipes/ty_p/nodes?${q}`, { method: 'POST', token: admin, body: 'SELECT id FROM events' });
    for (const [q, status] of [['name=mv&type=materialized&datasource=events', 501], ['name=cp&type=copy', 501], ['name=bg&type=bogus', 400]] as const) {
      const r = await add(q);
      expect(r.status, `${q}: ${r.text}`).toBe(status);
    }
    expect((await call(`${srv.url}/v0/pipes/ty_p`, { token: admin })).body.nodes.map((n: any) => n.name)).toEqual(['ty_0']);
    const ep = await add('name=ep&type=endpoint');
    expect(ep.status, ep.text).toBe(200);
    expect(ep.body.node_type).toBe('endpoint');
    const got = (await call(`${srv.url}/v0/pipes/ty_p`, { token: admin })).body;
    expect(got.endpoint).toBe(got.nodes.find((n: any) => n.name === 'ep').id);
    expect((await endpoint('ty_p')).status).toBe(200);
  });
});

describe('cycles and unknown references', () => {
  it('reports a node cycle with the node and offset', async () => {
    const r = await post('/v0/pipes', JSON.stringify({ name: 'cyc', nodes: [{ name: 'a', sql: 'SELECT * FROM b' }, { name: 'b', sql: 'SELECT * FROM a' }] }), { 'Content-Type': 'application/json' });
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ code: 'SQL_INVALID', sql_code: 'PIPE_CYCLE', offset: 14 });
    expect(['a', 'b']).toContain(r.body.node);
  });

  it('reports a cycle among nodes the last node does not read, ignore_sql_errors or not (it was saved, and could be published)', async () => {
    const body = JSON.stringify({ name: 'cyc_side', nodes: [{ name: 'a', sql: 'SELECT * FROM b' }, { name: 'b', sql: 'SELECT * FROM a' }, { name: 'c', sql: 'SELECT 1 AS x', type: 'endpoint' }] });
    for (const q of ['', '?ignore_sql_errors=true']) {
      const r = await post(`/v0/pipes${q}`, body, { 'Content-Type': 'application/json' });
      expect(r.status, r.text).toBe(422);
      expect(r.body).toMatchObject({ code: 'SQL_INVALID', sql_code: 'PIPE_CYCLE', offset: 14 });
      expect((await call(`${srv.url}/v0/pipes/cyc_side`, { token: admin })).status).toBe(404);
    }
  });

  it('reports an unknown table with the node and offset', async () => {
    const r = await post('/v0/pipes', JSON.stringify({ name: 'unk', nodes: [{ name: 'a', sql: 'SELECT * FROM events' }, { name: 'b', sql: 'SELECT id FROM a JOIN missing_table USING id' }] }), { 'Content-Type': 'application/json' });
    expect(r).toMatchObject({ status: 422, body: { code: 'SQL_INVALID', sql_code: 'UNKNOWN_TABLE', node: 'b', offset: 22 } });
    const n = await post('/v0/pipes/by_country/nodes?name=extra', 'SELECT *\nFROM nope');
    expect(n).toMatchObject({ status: 422, body: { sql_code: 'UNKNOWN_TABLE', node: 'extra', offset: 14 } });
  });

  it('reports a cycle through other pipes\' endpoints', async () => {
    await createPipe('ring_a', [{ name: 'ra', sql: 'SELECT id FROM events' }]);
    await createPipe('ring_b', [{ name: 'rb', sql: 'SELECT id FROM ring_a' }]);
    const r = await call(`${srv.url}/v0/pipes/ring_a/nodes/ra`, { method: 'PUT', token: admin, body: 'SELECT id FROM ring_b' });
    expect(r).toMatchObject({ status: 422, body: { code: 'SQL_INVALID', sql_code: 'PIPE_CYCLE', node: 'ra', offset: 15 } });
    expect(r.body.error).toContain('ring_a -> ring_b -> ring_a');
  });
});

describe('pipes reading pipes, and what cannot be deleted', () => {
  it('compiles another pipe\'s endpoint in as a subquery, passing parameters on', async () => {
    await createPipe('base_ep', [{ name: 'b0', sql: '%\nSELECT id, country, v FROM events WHERE v >= {{Float64(min_v, 0)}}' }]);
    await createPipe('top_ep', [{ name: 't0', sql: 'SELECT country, sum(v) AS total FROM base_ep GROUP BY country ORDER BY total DESC LIMIT 2' }]);
    expect((await endpoint('top_ep')).body.data).toEqual([{ country: 'DE', total: 10 }, { country: 'ES', total: 4.5 }]);
    expect((await endpoint('top_ep', { min_v: '2' })).body.data).toEqual([{ country: 'DE', total: 10 }, { country: 'ES', total: 3 }]);
    expect((await get('/v0/pipes/top_ep')).body.nodes[0].dependencies).toEqual(['base_ep']);
  });

  it('a pipe still read by another pipe cannot be deleted or unpublished (409)', async () => {
    expect(await del('/v0/pipes/base_ep')).toMatchObject({ status: 409, body: { code: 'CONFLICT', dependents: ['top_ep'] } });
    expect(await del('/v0/pipes/base_ep/nodes/b0/endpoint')).toMatchObject({ status: 409 });
    expect((await endpoint('top_ep')).status).toBe(200);
  });

  it('a data source used by a pipe cannot be dropped (409)', async () => {
    const r = await del('/v0/datasources/events');
    expect(r).toMatchObject({ status: 409, body: { code: 'CONFLICT' } });
    expect(r.body.dependents).toEqual(expect.arrayContaining(['by_country', 'base_ep']));
    expect((await get('/v0/datasources/events')).status).toBe(200);
  });

  it('once the readers are gone, deletion works', async () => {
    await createPipe('tmp_ds_user', [{ name: 'n', sql: 'SELECT count() FROM tmp_ds' }]).catch(() => undefined);
    expect((await post(`/v0/datasources?name=tmp_ds&schema=${encodeURIComponent('x Int32')}`)).status).toBe(200);
    await createPipe('tmp_ds_user', [{ name: 'n', sql: 'SELECT count() AS c FROM tmp_ds' }]);
    expect((await del('/v0/datasources/tmp_ds')).status).toBe(409);
    expect((await del('/v0/pipes/tmp_ds_user')).status).toBe(204);
    expect((await del('/v0/datasources/tmp_ds')).status).toBe(200);
  });
});

describe('endpoint formats and q=', () => {
  it('.json has Tinybird\'s shape', async () => {
    const r = await endpoint('by_country', { limit: '2' });
    expect(r.headers.get('content-type')).toContain('application/json');
    expect(Object.keys(r.body)).toEqual(['meta', 'data', 'rows', 'rows_before_limit_at_least', 'statistics']);
    expect(r.body.meta).toEqual([{ name: 'country', type: 'String' }, { name: 'n', type: 'UInt64' }, { name: 'total', type: 'Float64' }]);
    expect(r.body.rows).toBe(2);
    expect(r.body.rows_before_limit_at_least).toBeGreaterThanOrEqual(2);
    expect(Object.keys(r.body.statistics)).toEqual(['elapsed', 'rows_read', 'bytes_read']);
  });

  it('.csv, .ndjson and .parquet', async () => {
    const csv = await endpoint('by_country', {}, 'csv');
    expect(csv.headers.get('content-type')).toContain('text/csv');
    expect(csv.text).toBe('"country","n","total"\n"DE",1,10\n"ES",2,4.5\n"FR",1,2\n');
    // Tinybird's newer docs name the header-carrying CSV .csvwithnames: the same answer.
    const named = await endpoint('by_country', {}, 'csvwithnames');
    expect(named.status).toBe(200);
    expect(named.headers.get('content-type')).toContain('text/csv');
    expect(named.text).toBe(csv.text);
    const nd = await endpoint('by_country', { country: 'FR' }, 'ndjson');
    expect(nd.text.split('\n').filter(Boolean).map((l) => JSON.parse(l))).toEqual([{ country: 'FR', n: 1, total: 2 }]);
    const res = await fetch(`${srv.url}/v0/pipes/by_country.parquet`, { headers: { Authorization: `Bearer ${admin}` } });
    expect(res.status).toBe(200);
    const buf = Buffer.from(await res.arrayBuffer());
    expect(buf.subarray(0, 4).toString()).toBe('PAR1');
    expect(buf.subarray(buf.length - 4).toString()).toBe('PAR1');
  });

  it('a large result (several engine blocks) is one document in .json and .csv, and pipe_stats_rt counts all its rows', async () => {
    await createPipe('big_result', [{ name: 'rows', sql: "SELECT number, concat('€', toString(number)) AS s FROM numbers(250000)" }]);
    const j = await endpoint('big_result');
    expect(j.status).toBe(200);
    expect(j.body.data).toHaveLength(250000);
    expect(j.body.rows).toBe(250000);
    expect(j.body.data[249999]).toEqual({ number: 249999, s: '€249999' });
    const csv = await endpoint('big_result', {}, 'csv');
    const lines = csv.text.split('\n');
    expect(lines.filter((l) => l === '"number","s"')).toHaveLength(1);
    expect(lines).toHaveLength(250002);
    await expect.poll(async () => (await sqlRows("SELECT result_rows FROM tinybird.pipe_stats_rt WHERE pipe_name = 'big_result' AND url LIKE '%.json%'")).map((r) => Number(r.result_rows)), { timeout: 15000 }).toEqual([250000]);
  });

  it('q= runs SQL over the result as _, and nothing else', async () => {
    const r = await endpoint('by_country', { q: 'SELECT sum(n) AS n FROM _' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ n: 4 }]);
    const withParams = await endpoint('by_country', { q: 'SELECT country FROM _', country: 'ES' }, 'ndjson');
    expect(withParams.text.trim()).toBe('{"country":"ES"}');
    expect(await endpoint('by_country', { q: 'SELECT * FROM secret' })).toMatchObject({ status: 422, body: { sql_code: 'UNKNOWN_TABLE' } });
    // The pipe's own name is the result too, as Tinybird's older CLI sends it (`tb pipe data`).
    const byName = await endpoint('by_country', { q: 'SELECT sum(n) AS n FROM by_country LIMIT 50' });
    expect(byName.status, byName.text).toBe(200);
    expect(byName.body.data).toEqual(r.body.data);
    expect(await endpoint('by_country', { q: 'SELECT * FROM _ UNION ALL SELECT s, 0, 0 FROM secret' })).toMatchObject({ status: 422 });
    expect(await endpoint('by_country', { q: 'DROP TABLE _' })).toMatchObject({ status: 403 });
    // A template is said to be one (it was "a query starts with SELECT").
    const templ = await endpoint('by_country', { q: '%\nSELECT * FROM _ WHERE n > {{Int32(m, 0)}}' });
    expect(templ.status, templ.text).toBe(400);
    expect(templ.body.error).toMatch(/^q= is plain SQL over this endpoint's result, not a template/);
    const braces = await endpoint('by_country', { q: 'SELECT {{x}} FROM _' });
    expect(braces.status, braces.text).toBe(400);
    expect(braces.body.error).toMatch(/^q= is plain SQL over this endpoint's result, not a template/);
    // Braces in a string are text.
    const inString = await endpoint('by_country', { q: "SELECT '{{x}}' AS t FROM _ LIMIT 1" });
    expect(inString.status, inString.text).toBe(200);
    expect(inString.body.data).toEqual([{ t: '{{x}}' }]);
  });

  it('POST with a form or JSON body carries the parameters', async () => {
    const form = await post('/v0/pipes/by_country.json', new URLSearchParams({ country: 'FR' }));
    expect(form.body.data).toEqual([{ country: 'FR', n: 1, total: 2 }]);
    const json = await post('/v0/pipes/by_country.json', JSON.stringify({ country: 'ES', min_v: 2, q: 'SELECT total FROM _' }), { 'Content-Type': 'application/json' });
    expect(json.body.data).toEqual([{ total: 3 }]);
  });

  it('ignores client parameters such as from= and __tb__*', async () => {
    expect((await endpoint('by_country', { from: 'ui', __tb__trace: '1', cli_version: '1.0' })).status).toBe(200);
  });
});

/** One pipe per template function; `valid`/`invalid` are values of parameter `p`. */
const FUNCTIONS: Array<{ name: string; expr: string; valid: Record<string, string | string[]>; expect: unknown; invalid?: Record<string, string>; status?: number }> = [
  { name: 'String', expr: '{{String(p)}}', valid: { p: 'héllo' }, expect: 'héllo' },
  ...(['Int8', 'Int16', 'Int32', 'Int64', 'UInt8', 'UInt16', 'UInt32', 'UInt64', 'Int', 'Integer'] as const).map((t) => ({ name: t, expr: `{{${t}(p)}}`, valid: { p: '42' }, expect: 42, invalid: { p: '4x2' } })),
  ...(['Int128', 'Int256', 'UInt128', 'UInt256'] as const).map((t) => ({ name: t, expr: `toString({{${t}(p)}})`, valid: { p: '170141183460469231731687303715884105727' }, expect: '170141183460469231731687303715884105727', invalid: { p: '1.5' } })),
  { name: 'UInt8 range', expr: '{{UInt8(p)}}', valid: { p: '255' }, expect: 255, invalid: { p: '256' } },
  { name: 'Float32', expr: '{{Float32(p)}}', valid: { p: '1.5' }, expect: 1.5, invalid: { p: 'nan' } },
  { name: 'Float64', expr: '{{Float64(p)}}', valid: { p: '-2.5e3' }, expect: -2500, invalid: { p: '1,5' } },
  { name: 'Boolean', expr: '{{Boolean(p)}}', valid: { p: 'true' }, expect: 1, invalid: { p: 'maybe' } },
  { name: 'Date', expr: 'toString(toDate({{Date(p)}}))', valid: { p: '2024-02-29' }, expect: '2024-02-29', invalid: { p: '2023-02-29' } },
  { name: 'DateTime', expr: 'toString(toDateTime({{DateTime(p)}}, \'UTC\'))', valid: { p: '2024-01-02 03:04:05' }, expect: '2024-01-02 03:04:05', invalid: { p: '2024-01-02 25:00:00' } },
  { name: 'DateTime64', expr: 'toString(toDateTime64({{DateTime64(p)}}, 3, \'UTC\'))', valid: { p: '2024-01-02 03:04:05.123' }, expect: '2024-01-02 03:04:05.123', invalid: { p: 'yesterday' } },
  { name: 'Array Int32', expr: '{{Array(p, \'Int32\')}}', valid: { p: '1,2,3' }, expect: [1, 2, 3], invalid: { p: '1,x' } },
  { name: 'Array String repeated', expr: '{{Array(p, \'String\')}}', valid: { p: ['a,b', 'c'] }, expect: ['a,b', 'c'] },
  { name: 'JSON', expr: '{{JSON(p)}}', valid: { p: '{"a":1}' }, expect: '{"a":1}', invalid: { p: '{bad' } },
  { name: 'enum', expr: '{{String(p, enum=[\'x\', \'y\'])}}', valid: { p: 'y' }, expect: 'y', invalid: { p: 'z' } },
  { name: 'required', expr: '{{String(p, required=True)}}', valid: { p: 'v' }, expect: 'v', invalid: {} },
  { name: 'defined', expr: '{% if defined(p) %}\'yes\'{% else %}\'no\'{% end %}', valid: { p: '1' }, expect: 'yes' },
  { name: 'column', expr: '(SELECT {{column(p, \'id\')}} FROM events ORDER BY id LIMIT 1)', valid: { p: 'country' }, expect: 'ES', invalid: { p: 'a\u0001b' } },
  { name: 'columns', expr: '(SELECT tuple({{columns(p, \'id\')}}) FROM events ORDER BY id LIMIT 1)', valid: { p: 'id,country' }, expect: [1, 'ES'] },
  { name: 'symbol', expr: '(SELECT {{symbol(split_to_array(p, \'id\')[0])}} FROM events ORDER BY id LIMIT 1)', valid: { p: 'country' }, expect: 'ES' },
  { name: 'sql_and', expr: '(SELECT count() FROM events WHERE {{sql_and(country__in=Array(p, \'String\', defined=False), v__gte=Float64(m, defined=False))}})', valid: { p: 'ES,FR', m: '2' }, expect: 2, invalid: { m: 'x' } },
  { name: 'split_to_array', expr: '{{split_to_array(p)}}', valid: { p: ' a, b ,,c' }, expect: ['a', 'b', 'c'] },
  { name: 'day_diff', expr: '{{day_diff(p, p2)}}', valid: { p: '2024-01-01', p2: '2024-01-31' }, expect: 30 },
  { name: 'date_diff_in_seconds', expr: '{{date_diff_in_seconds(p, p2)}}', valid: { p: '2024-01-01 00:00:00', p2: '2024-01-01 00:01:05' }, expect: 65 },
  { name: 'date_diff_in_minutes', expr: '{{date_diff_in_minutes(p, p2)}}', valid: { p: '2024-01-01 00:00:00', p2: '2024-01-01 02:00:00' }, expect: 120 },
  { name: 'date_diff_in_hours', expr: '{{date_diff_in_hours(p, p2)}}', valid: { p: '2024-01-01 00:00:00', p2: '2024-01-02 01:00:00' }, expect: 25 },
  { name: 'date_diff_in_days', expr: '{{date_diff_in_days(p, p2)}}', valid: { p: '2024-01-01', p2: '2024-01-03' }, expect: 2 },
  { name: 'error', expr: '{% if defined(p) %}{{error(\'p is not allowed\', 418)}}{% end %}1', valid: {}, expect: 1, invalid: { p: '1' }, status: 418 },
  { name: 'custom_error', expr: '{% if defined(p) %}{{custom_error({\'error\': \'nope\', \'code\': 409})}}{% end %}1', valid: {}, expect: 1, invalid: { p: '1' }, status: 409 },
  { name: 'max_threads', expr: '{{max_threads(2)}}1', valid: {}, expect: 1 },
];

describe('every template function through an endpoint', () => {
  for (const [i, f] of FUNCTIONS.entries()) {
    it(`${f.name}: valid value renders, invalid value is refused naming the parameter`, async () => {
      const name = `fn_${i}`;
      await createPipe(name, [{ name: 'n', sql: `%\nSELECT ${f.expr} AS v` }]);
      const ok = await endpoint(name, f.valid);
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body.data[0].v).toEqual(f.expect);
      if (f.invalid) {
        const bad = await endpoint(name, f.invalid);
        if (f.status) {
          expect(bad).toMatchObject({ status: f.status, body: { code: 'TEMPLATE_ERROR' } });
        } else {
          expect(bad.status, bad.text).toBe(400);
          expect(bad.body.code).toBe('TEMPLATE_PARAMETER');
          expect(bad.body.parameter).toBe(Object.keys(f.invalid)[0] ?? 'p');
          expect(bad.body.error).toContain(`"${bad.body.parameter}"`);
        }
      }
    });
  }
});

describe('a JSON body\'s array parameter is a list as sent', () => {
  it('one element holding a comma is one value (it was split as ?x=a,b is), in Array() and split_to_array()', async () => {
    await createPipe('jl_arr', [{ name: 'n', sql: "%\nSELECT {{Array(x, 'String')}} AS a, {{split_to_array(y)}} AS b" }]);
    const post = (body: unknown) => call(`${srv.url}/v0/pipes/jl_arr.json`, { method: 'POST', token: admin, body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
    for (const [x, y] of [[['a,b'], ['c,d']], [['a,b', 'c'], ['c,d', 'e']]] as const) {
      const r = await post({ x, y });
      expect(r.status, r.text).toBe(200);
      expect(r.body.data[0]).toEqual({ a: x, b: y });
    }
    // A plain string is comma-separated, as in a query string.
    const plainStr = await post({ x: 'a,b', y: 'c,d' });
    expect(plainStr.body.data[0]).toEqual({ a: ['a', 'b'], b: ['c', 'd'] });
    expect((await endpoint('jl_arr', { x: 'a,b', y: 'c,d' })).body.data[0]).toEqual({ a: ['a', 'b'], b: ['c', 'd'] });
  });

  it('an empty list is given: an allow-list computed empty filters every row out (sql_and, defined()); a scalar or a name still takes its default', async () => {
    await createPipe('jl_empty', [{ name: 'n', sql: "%\nSELECT count() AS c FROM events WHERE {{sql_and(country__in=Array(p, 'String', defined=False))}}{% if defined(ids) %} AND id IN {{Array(ids, 'Int32')}}{% end %}" }]);
    await createPipe('jl_scalar', [{ name: 'n', sql: "%\nSELECT {{Int32(n, 7)}} AS n, {{String(s, 'x')}} AS s, {{column(c, 'id')}} AS v FROM events ORDER BY id LIMIT 1" }]);
    const post = (pipe: string, body: unknown) => call(`${srv.url}/v0/pipes/${pipe}.json`, { method: 'POST', token: admin, body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
    const count = async (body: unknown) => { const r = await post('jl_empty', body); expect(r.status, r.text).toBe(200); return r.body.data[0].c; };
    expect(await count({})).toBe(4);
    expect(await count({ p: ['ES'] })).toBe(2);
    expect(await count({ p: [] })).toBe(0);
    expect(await count({ ids: [1, 2] })).toBe(2);
    expect(await count({ ids: [] })).toBe(0);
    const s = await post('jl_scalar', { n: [], s: [], c: [] });
    expect(s.status, s.text).toBe(200);
    expect(s.body.data[0]).toEqual({ n: 7, s: 'x', v: 1 });
  });
});

describe('injection through every parameter type', () => {
  const payloads = [
    `' UNION ALL SELECT s FROM secret --`,
    `\\' UNION ALL SELECT s FROM secret --`,
    `x'); SELECT s FROM secret; --`,
    `1 OR 1=1 UNION ALL SELECT id FROM secret`,
    `*/ UNION ALL SELECT s FROM secret /*`,
    `%' OR '1'='1`,
    `\u02bc UNION ALL SELECT s FROM secret --`,
    `\uff07 UNION ALL SELECT s FROM secret --`,
    `a\\`,
    `a\u0000b`,
    `line\n UNION ALL SELECT s FROM secret`,
    `$$ UNION ALL SELECT s FROM secret $$`,
    `{{String(s)}}`,
    `\` UNION ALL SELECT s FROM secret --`,
    `" UNION ALL SELECT s FROM secret --`,
    `\ud800 lone`,
  ];
  const templates: Array<[string, string]> = [
    ['String', 'SELECT country AS v FROM events WHERE country = {{String(p, \'ES\')}}'],
    ['String in author quotes', 'SELECT country AS v FROM events WHERE country LIKE \'%{{String(p, \'E\')}}%\''],
    ['String in comment', 'SELECT country AS v FROM events -- {{String(p, \'x\')}}\nWHERE 1'],
    ['Int32', 'SELECT id AS v FROM events WHERE id = {{Int32(p, 1)}}'],
    ['Float64', 'SELECT id AS v FROM events WHERE v > {{Float64(p, 1)}}'],
    ['Date', 'SELECT id AS v FROM events WHERE toDate(ts) >= {{Date(p, \'2024-01-01\')}}'],
    ['DateTime', 'SELECT id AS v FROM events WHERE ts >= {{DateTime(p, \'2024-01-01 00:00:00\')}}'],
    ['Boolean', 'SELECT id AS v FROM events WHERE {{Boolean(p, 1)}}'],
    ['Array String', 'SELECT country AS v FROM events WHERE country IN {{Array(p, \'String\', \'ES\')}}'],
    ['Array Int32', 'SELECT id AS v FROM events WHERE id IN {{Array(p, \'Int32\', \'1\')}}'],
    ['column', 'SELECT {{column(p, \'country\')}} AS v FROM events'],
    ['columns', 'SELECT {{columns(p, \'country\')}} FROM events'],
    ['symbol', 'SELECT {{symbol(String(p, \'country\'))}} AS v FROM events'],
    ['JSON', 'SELECT {{JSON(p, \'{}\')}} AS v FROM events'],
    ['sql_and', 'SELECT country AS v FROM events WHERE {{sql_and(country__in=Array(p, \'String\', defined=False))}}'],
    ['bare name', 'SELECT country AS v FROM events WHERE country = {{p}}'],
  ];
  for (const [i, [kind, sql]] of templates.entries()) {
    it(`${kind}: answers data or 4xx, never another table's rows`, async () => {
      const name = `inj_${i}`;
      await createPipe(name, [{ name: 'n', sql: `%\n${sql}` }]);
      const outcomes = new Set<number>();
      for (const p of payloads) {
        for (const params of [{ p }, { p: [p, p] }]) {
          for (const ext of ['json', 'csv']) {
            const r = await endpoint(name, params, ext);
            outcomes.add(r.status);
            expect(r.text, `${kind} ${JSON.stringify(p)}`).not.toContain(SECRET);
            expect(r.status === 200 || (r.status >= 400 && r.status < 500), `${r.status} ${r.text}`).toBe(true);
          }
        }
        const posted = await post(`/v0/pipes/${name}.json`, new URLSearchParams({ p }));
        expect(posted.text).not.toContain(SECRET);
      }
      expect(outcomes.has(200) || outcomes.has(400) || outcomes.has(422)).toBe(true);
    });
  }

  it('string values come back byte for byte', async () => {
    await createPipe('echo', [{ name: 'n', sql: '%\nSELECT {{String(p)}} AS v, \'[{{String(p)}}]\' AS w' }]);
    for (const p of payloads.filter((x) => !x.includes('\ud800'))) {
      const r = await endpoint('echo', { p });
      expect(r.status, r.text).toBe(200);
      expect(r.body.data[0]).toEqual({ v: p, w: `[${p}]` });
    }
  });
});

describe('credentials', () => {
  it('PIPES:READ:x calls x, not y (403); lists only x; cannot edit', async () => {
    await createPipe('only_x', [{ name: 'n', sql: 'SELECT count() AS c FROM events' }]);
    const t = (await post('/v0/tokens?name=reader_x&scope=PIPES:READ:only_x')).body.token;
    expect((await endpoint('only_x', {}, 'json', t)).body.data).toEqual([{ c: 4 }]);
    expect(await endpoint('by_country', {}, 'json', t)).toMatchObject({ status: 403, body: { code: 'FORBIDDEN' } });
    expect(await endpoint('no_such_pipe', {}, 'json', t)).toMatchObject({ status: 403 });
    expect(await get('/v0/pipes/by_country', t)).toMatchObject({ status: 403 });
    expect((await get('/v0/pipes', t)).body.pipes.map((p: { name: string }) => p.name)).toEqual(['only_x']);
    expect(await post('/v0/pipes', new URLSearchParams({ name: 'nope', sql: 'SELECT 1' }), {}, t)).toMatchObject({ status: 403 });
    expect(await del('/v0/pipes/only_x', t)).toMatchObject({ status: 403 });
    expect(await get(`/v0/sql?q=${encodeURIComponent('SELECT * FROM secret')}`, t)).toMatchObject({ status: 403 });
  });

  it('JWT fixed_params override request parameters', async () => {
    const ws = (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces[0];
    const jwt = await new jose.SignJWT({ workspace_id: ws.id, name: 'fr_only', scopes: [{ type: 'PIPES:READ', resource: 'by_country', fixed_params: { country: 'FR' } }] })
      .setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(new TextEncoder().encode(admin));
    expect((await endpoint('by_country', { country: 'ES' }, 'json', jwt)).body.data).toEqual([{ country: 'FR', n: 1, total: 2 }]);
    expect((await endpoint('by_country', {}, 'json', jwt)).body.data).toEqual([{ country: 'FR', n: 1, total: 2 }]);
    expect(await endpoint('only_x', {}, 'json', jwt)).toMatchObject({ status: 403 });
  });

  // Plain pipes' compiled SQL is cached per state, pipe and row filters (src/pipes/compile.ts):
  // an edit, a re-created data source or another token's row filter must never see stale SQL.
  it('an edited plain pipe answers with its new SQL at once; row filters are not shared through the cache', async () => {
    await createPipe('cached_plain', [{ name: 'n', sql: "SELECT count() AS c FROM events WHERE country = 'ES'" }]);
    for (let i = 0; i < 3; i++) expect((await endpoint('cached_plain')).body.data).toEqual([{ c: 2 }]);
    const edit = await call(`${srv.url}/v0/pipes/cached_plain/nodes/n`, { method: 'PUT', token: admin, body: "SELECT count() AS c FROM events WHERE country = 'DE'" });
    expect(edit.status, edit.text).toBe(200);
    expect((await endpoint('cached_plain')).body.data).toEqual([{ c: 1 }]);
    const fr = (await post(`/v0/tokens?name=fr_rows_cache&scope=PIPES:READ:cached_plain&scope=${encodeURIComponent("DATASOURCES:READ:events:country = 'FR'")}`)).body.token;
    const de = (await post(`/v0/tokens?name=de_rows_cache&scope=PIPES:READ:cached_plain&scope=${encodeURIComponent("DATASOURCES:READ:events:country = 'DE'")}`)).body.token;
    await post('/v0/pipes?force=true', JSON.stringify({ name: 'cached_plain', nodes: [{ name: 'n', sql: 'SELECT count() AS c FROM events', type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
    for (let i = 0; i < 2; i++) {
      expect((await endpoint('cached_plain')).body.data).toEqual([{ c: 4 }]);
      expect((await endpoint('cached_plain', {}, 'json', fr)).body.data).toEqual([{ c: 1 }]);
      expect((await endpoint('cached_plain', {}, 'json', de)).body.data).toEqual([{ c: 1 }]);
    }
    const deOnly = await call(`${srv.url}/v0/pipes/cached_plain/nodes/n`, { method: 'PUT', token: admin, body: "SELECT count() AS c FROM events WHERE country = 'FR'" });
    expect(deOnly.status, deOnly.text).toBe(200);
    expect((await endpoint('cached_plain', {}, 'json', de)).body.data).toEqual([{ c: 0 }]);
    expect((await endpoint('cached_plain', {}, 'json', fr)).body.data).toEqual([{ c: 1 }]);
    expect((await endpoint('cached_plain')).body.data).toEqual([{ c: 1 }]);
  });

  it('a row-filtered token sees only its rows through a pipe', async () => {
    const t = (await post(`/v0/tokens?name=es_rows&scope=PIPES:READ:by_country&scope=${encodeURIComponent("DATASOURCES:READ:events:country = 'ES'")}`)).body.token;
    expect((await endpoint('by_country', {}, 'json', t)).body.data).toEqual([{ country: 'ES', n: 2, total: 4.5 }]);
  });

  it('rows_before_limit_at_least of a row-filtered token is the query\'s, not the count of rows its filter lets through', async () => {
    await createPipe('rbl_rows', [{ name: 'n', sql: '%\nSELECT id FROM events WHERE id >= {{Int32(min_id, 0)}} ORDER BY id' }]);
    await createPipe('rbl_limit', [{ name: 'n', sql: 'SELECT id FROM events WHERE id > 0 ORDER BY id LIMIT 1' }]);
    const t = (await post(`/v0/tokens?name=es_rbl&scope=PIPES:READ:rbl_rows&scope=PIPES:READ:rbl_limit&scope=${encodeURIComponent("DATASOURCES:READ:events:country = 'ES'")}`)).body.token;
    // The filter lets 2 rows through (ids 1 and 3).
    const one = (await endpoint('rbl_rows', { min_id: '2' }, 'json', t)).body;
    expect(one).toMatchObject({ data: [{ id: 3 }], rows: 1, rows_before_limit_at_least: 1 });
    const none = (await endpoint('rbl_rows', { min_id: '9' }, 'json', t)).body;
    expect(none).toMatchObject({ rows: 0, rows_before_limit_at_least: 0 });
    // With a LIMIT of its own, ClickHouse's figure for it.
    expect((await endpoint('rbl_limit', {}, 'json', t)).body).toMatchObject({ data: [{ id: 1 }], rows: 1, rows_before_limit_at_least: 2 });
    const sql = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT id FROM events WHERE id = 3 FORMAT JSON')}`, { token: t });
    expect(sql.status, sql.text).toBe(200);
    expect(sql.body).toMatchObject({ rows: 1, rows_before_limit_at_least: 1 });
  });
});

describe('service data sources', () => {
  it('every call lands in tinybird.pipe_stats_rt, errors also in tinybird.endpoint_errors', async () => {
    const ok = await endpoint('by_country', { country: 'ES', token_like: 'x' });
    const bad = await endpoint('fn_2', { p: 'nope' });
    expect(bad.status).toBe(400);
    const okId = ok.headers.get('x-request-id');
    const badId = bad.headers.get('x-request-id');
    let stats: Array<Record<string, unknown>> = [];
    let errors: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 60; i++) {
      stats = await sqlRows(`SELECT request_id, pipe_name, pipe_id, token_name, status_code, error, error_message, result_rows, parameters, method, url, duration FROM tinybird.pipe_stats_rt WHERE request_id IN ('${okId}', '${badId}') ORDER BY start_datetime`);
      errors = await sqlRows(`SELECT request_id, pipe_name, status_code, error, parameters FROM tinybird.endpoint_errors WHERE request_id = '${badId}'`);
      if (stats.length === 2 && errors.length === 1) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const okRow = stats.find((s) => s.request_id === okId)!;
    expect(okRow).toMatchObject({ pipe_name: 'by_country', token_name: 'workspace admin token', status_code: 200, error: 0, result_rows: 1, method: 'GET', parameters: { country: 'ES', token_like: 'x' } });
    expect(okRow.pipe_id).toMatch(/^t_/);
    expect(okRow.duration).toBeGreaterThan(0);
    expect(String(okRow.url)).toContain('/v0/pipes/by_country.json');
    const badRow = stats.find((s) => s.request_id === badId)!;
    expect(badRow).toMatchObject({ pipe_name: 'fn_2', status_code: 400, error: 1 });
    expect(String(badRow.error_message)).toContain('"p"');
    expect(errors).toEqual([{ request_id: badId, pipe_name: 'fn_2', status_code: 400, error: expect.stringContaining('"p"'), parameters: { p: 'nope' } }]);
    // The SQL over the result (q=) is one of the call's parameters too (it was left out).
    const withQ = await endpoint('by_country', { country: 'ES', q: 'SELECT count() AS n FROM _' });
    const qId = withQ.headers.get('x-request-id');
    await expect.poll(async () => (await sqlRows(`SELECT parameters FROM tinybird.pipe_stats_rt WHERE request_id = '${qId}'`)).map((r) => r.parameters), { timeout: 15000 })
      .toEqual([{ country: 'ES', q: 'SELECT count() AS n FROM _' }]);
  });

  it('a pipe can read its own workspace\'s pipe_stats_rt', async () => {
    await createPipe('stats_ep', [{ name: 'n', sql: 'SELECT pipe_name, count() AS calls FROM tinybird.pipe_stats_rt WHERE pipe_name = \'by_country\' GROUP BY pipe_name' }]);
    const r = await endpoint('stats_ep');
    expect(r.status, r.text).toBe(200);
    expect(r.body.data[0].calls).toBeGreaterThan(0);
  });

  it('the token given as ?token= is not written to the log', async () => {
    const r = await call(`${srv.url}/v0/pipes/only_x.json?token=${encodeURIComponent(admin)}`);
    expect(r.status).toBe(200);
    const id = r.headers.get('x-request-id');
    let rows: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 60 && rows.length === 0; i++) {
      rows = await sqlRows(`SELECT url FROM tinybird.pipe_stats_rt WHERE request_id = '${id}'`);
      if (!rows.length) await new Promise((res) => setTimeout(res, 250));
    }
    expect(rows).toHaveLength(1);
    expect(String(rows[0]!.url)).not.toContain(admin);
  });
});
