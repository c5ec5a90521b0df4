/**
 * Renaming and describing pipes and data sources (Tinybird's `PUT /v0/pipes/<pipe>` and
 * `PUT /v0/datasources/<name>`), end to end against the real server: what the new name reads,
 * what the old one no longer answers, tokens (service tokens and JWTs) across the rename,
 * dependents, buffered events, restarts.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, workspaceApi, type RunningServer } from './helpers/server.js';
import { drained, eventsBody, segmentDir, storedIds } from './helpers/events.js';

let srv: RunningServer;
let admin: string;
const enc = encodeURIComponent;
const api = workspaceApi(() => srv, () => admin);
const req = (method: string, p: string, token = admin, body?: BodyInit, headers: Record<string, string> = {}) =>
  call(`${srv.url}${p}`, { method, token, body, headers });
const get = (p: string, token = admin) => req('GET', p, token);
const put = (p: string, token = admin, body?: BodyInit, headers: Record<string, string> = {}) => req('PUT', p, token, body, headers);
const sqlAs = (q: string, token: string) => get(`/v0/sql?q=${enc(q)}`, token);
const audits = (pred: (a: Record<string, unknown>) => boolean) => srv.logs.filter((l) => l.msg === 'audit' && pred(l));
const waitAudit = async (pred: (a: Record<string, unknown>) => boolean) => {
  for (let i = 0; i < 100 && audits(pred).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  return audits(pred);
};
const mkToken = api.createToken;
const mkDataSource = api.createDataSource;
const mkPipe = async (name: string, sql: string, description?: string) => {
  const r = await req('POST', '/v0/pipes', admin, JSON.stringify({ name, description, nodes: [{ name: `${name}_0`, sql, type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
  expect(r.status, r.text).toBe(200);
  return r.body;
};
const future = () => Math.floor(Date.now() / 1000) + 3600;
const workspaceId = async () => (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces.find((w: { name: string }) => w.name === 'default').id as string;
/** A JWT of the workspace signed as Tinybird's clients sign them (HS256 with the workspace admin token). */
const jwtFor = async (name: string, scopes: Array<Record<string, unknown>>, withIat = true) => {
  const claims = { workspace_id: await workspaceId(), name, scopes };
  const t = new jose.SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(future());
  return (withIat ? t.setIssuedAt() : t).sign(new TextEncoder().encode(admin));
};

beforeAll(async () => {
  // Buffered events stay buffered until something flushes them (the timer waits an hour).
  srv = await startServer({ env: { ROOST_EVENTS_FLUSH_MS: '3600000' } });
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('PUT /v0/pipes/<pipe>', () => {
  it('renames: the answer is the pipe as GET shows it; the endpoint and SQL answer under the new name only', async () => {
    await mkDataSource('sales', 'id Int32, amount Int32', '1,10\n2,20\n3,30\n');
    const created = await mkPipe('top_sales', 'SELECT id, amount FROM sales ORDER BY amount DESC');
    const r = await put('/v0/pipes/top_sales?name=best_sales&description=the%20best');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ id: created.id, name: 'best_sales', description: 'the best', type: 'endpoint', endpoint: created.endpoint });
    expect(r.body.nodes.map((n: { id: string }) => n.id)).toEqual(created.nodes.map((n: { id: string }) => n.id));
    const got = await get('/v0/pipes/best_sales');
    expect({ ...got.body, updated_at: undefined }).toEqual({ ...r.body, updated_at: undefined });

    expect((await get('/v0/pipes/best_sales.json')).body.data).toEqual([{ id: 3, amount: 30 }, { id: 2, amount: 20 }, { id: 1, amount: 10 }]);
    expect(await api.rows('SELECT sum(amount) AS s FROM best_sales')).toEqual([{ s: 60 }]);
    for (const p of ['/v0/pipes/top_sales', '/v0/pipes/top_sales.json', '/v0/pipes/top_sales.pipe']) {
      const old = await get(p);
      expect(old.status, `${p}: ${old.text}`).toBe(404);
      expect(old.body.code).toBe('UNKNOWN_PIPE');
    }
    expect((await sqlAs('SELECT * FROM top_sales', admin)).status).toBeGreaterThanOrEqual(400);
    // Also by id (as GET and DELETE accept it).
    const byId = await put(`/v0/pipes/${created.id}?description=by%20id`);
    expect(byId.status, byId.text).toBe(200);
    expect(byId.body).toMatchObject({ name: 'best_sales', description: 'by id' });
  });

  it('service tokens and JWTs keep reading the renamed pipe and never reach a new pipe of the old name', async () => {
    await mkPipe('report', 'SELECT count() AS n FROM sales');
    const reader = await mkToken('report_reader', ['PIPES:READ:report']);
    const jwt = await jwtFor('report_jwt', [{ type: 'PIPES:READ', resource: 'report' }]);
    const jwtNoIat = await jwtFor('report_jwt_noiat', [{ type: 'PIPES:READ', resource: 'report' }], false);
    for (const t of [reader, jwt, jwtNoIat]) expect((await get('/v0/pipes/report.json', t)).status).toBe(200);

    expect((await put('/v0/pipes/report?name=report_v2')).status).toBe(200);
    for (const t of [reader, jwt, jwtNoIat]) {
      const r = await get('/v0/pipes/report_v2.json', t);
      expect(r.status, r.text).toBe(200);
      expect(r.body.data).toEqual([{ n: 3 }]);
    }
    expect((await get('/v0/tokens/report_reader')).body.scopes).toEqual([{ type: 'PIPES:READ', resource: 'report_v2', filter: '' }]);

    // A new pipe under the old name is another resource: none of them reads it.
    await mkPipe('report', 'SELECT 42 AS secret');
    for (const t of [reader, jwt, jwtNoIat]) {
      const r = await get('/v0/pipes/report.json', t);
      expect(r.status, r.text).toBe(403);
    }
    // The JWTs' refusals say why (they carry the scope as signed): without `iat`, to sign with it.
    expect((await get('/v0/pipes/report.json', jwtNoIat)).body.error).toMatch(/renamed or dropped .* no `iat` claim.*sign JWTs with `iat`/);
    expect((await get('/v0/pipes/report.json', jwt)).body.error).toMatch(/renamed or dropped after the JWT was issued.*issue a new JWT/);
    // A JWT minted now without `iat` counts as issued before the rename too: refused, and told so.
    const nowNoIat = await jwtFor('report_jwt_noiat_now', [{ type: 'PIPES:READ', resource: 'report' }], false);
    const refused = await get('/v0/pipes/report.json', nowNoIat);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toContain('no `iat` claim');
    // A JWT issued after the rename for the name means the pipe that holds it now.
    await new Promise((res) => setTimeout(res, 1100));
    const later = await jwtFor('report_jwt_later', [{ type: 'PIPES:READ', resource: 'report' }]);
    expect((await get('/v0/pipes/report.json', later)).body.data).toEqual([{ secret: 42 }]);
    expect((await get('/v0/pipes/report_v2.json', later)).status).toBe(403);
  });

  it('is refused while another pipe reads it (409 naming it), and to a name a pipe reads', async () => {
    await mkPipe('base_pipe', 'SELECT id FROM sales');
    await mkPipe('reads_base', 'SELECT count() AS n FROM base_pipe');
    const r = await put('/v0/pipes/base_pipe?name=base2');
    expect(r.status, r.text).toBe(409);
    expect(r.body.dependents).toEqual(['reads_base']);
    expect(r.body.error).toContain('reads_base');
    expect((await get('/v0/pipes/base_pipe')).status).toBe(200);
    expect((await get('/v0/pipes/reads_base.json')).body.data).toEqual([{ n: 3 }]);
    // reads_base names base_pipe: no other pipe may take that name from it either (here: after a delete would be refused anyway).
    const d = await req('DELETE', '/v0/pipes/reads_base');
    expect(d.status).toBe(204);
    expect((await put('/v0/pipes/base_pipe?name=base2')).status).toBe(200);
  });

  it('refuses what a user must fix, with a 4xx that says so', async () => {
    await mkPipe('p_one', 'SELECT 1 AS x');
    await mkPipe('p_two', 'SELECT 2 AS x');
    const cases: Array<[string, number, string, RegExp]> = [
      ['/v0/pipes/nope?name=x', 404, 'UNKNOWN_PIPE', /nope/],
      ['/v0/pipes/p_one?name=p_two', 409, 'CONFLICT', /p_two/],
      ['/v0/pipes/p_one?name=P_TWO', 409, 'CONFLICT', /p_two/],
      ['/v0/pipes/p_one?name=sales', 409, 'CONFLICT', /data source is named "sales"/],
      ['/v0/pipes/p_one?name=SALES', 409, 'CONFLICT', /sales/],
      ['/v0/pipes/p_one?name=1bad', 400, 'INVALID_PARAMETER', /not a valid pipe name/],
      ['/v0/pipes/p_one?name=', 400, 'INVALID_PARAMETER', /name/],
      ['/v0/pipes/p_one?name=a.b', 400, 'INVALID_PARAMETER', /not a valid pipe name/],
      ['/v0/pipes/p_one?name=query_api', 400, 'INVALID_PARAMETER', /reserved pipe name .*pipe_stats_rt/],
      ['/v0/pipes/p_one?name=_', 400, 'INVALID_PARAMETER', /reserved pipe name/],
      ['/v0/pipes/p_one', 400, 'INVALID_PARAMETER', /nothing to change/],
      ['/v0/pipes/p_one?nmae=p_three', 400, 'INVALID_PARAMETER', /nmae/],
      ['/v0/pipes/p_one?name=a&name=b', 400, 'INVALID_PARAMETER', /once/],
    ];
    for (const [p, status, code, msg] of cases) {
      const r = await put(p);
      expect(r.status, `${p}: ${r.text}`).toBe(status);
      expect(r.body.code, p).toBe(code);
      expect(r.body.error, p).toMatch(msg);
    }
    const badJson = await put('/v0/pipes/p_one', admin, JSON.stringify({ name: 5 }), { 'Content-Type': 'application/json' });
    expect(badJson.status, badJson.text).toBe(400);
    // Another key nested 5,000 deep (10 KB) was serialised to be named as ignored: a 500.
    const deep = await put('/v0/pipes/p_one', admin, `{"foo":${'['.repeat(5000)}${']'.repeat(5000)}}`, { 'Content-Type': 'application/json' });
    expect(deep.status, deep.text).toBe(400);
    expect(deep.body.error).toMatch(/nothing to change.*foo/);
    // Only the case changes: allowed (its own name).
    const cased = await put('/v0/pipes/p_one', admin, JSON.stringify({ name: 'P_One' }), { 'Content-Type': 'application/json' });
    expect(cased.status, cased.text).toBe(200);
    expect(cased.body.name).toBe('P_One');
    // The same name again: nothing happens, the pipe is answered.
    expect((await put('/v0/pipes/P_One?name=P_One')).status).toBe(200);
    // A form body.
    const form = await put('/v0/pipes/P_One', admin, 'name=p_one&description=from%20a%20form&from=cli', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(form.status, form.text).toBe(200);
    expect(form.body).toMatchObject({ name: 'p_one', description: 'from a form' });
  });

  it("a node's misspelt form field or a vague ignore_sql_errors is a 400 naming it, nothing changed", async () => {
    await mkPipe('p_node', 'SELECT 1 AS x');
    const node = (await get('/v0/pipes/p_node')).body.nodes[0].name as string;
    const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
    // (It was stored as the SQL and refused as `unknown statement "sqll"`.)
    const misspelt = await put(`/v0/pipes/p_node/nodes/${node}`, admin, 'sqll=SELECT 3', form);
    expect(misspelt.status, misspelt.text).toBe(400);
    expect(misspelt.body).toMatchObject({ code: 'INVALID_PARAMETER', ignored: ['sqll'] });
    expect(misspelt.body.error).toMatch(/not parameters of this route: sqll/);
    for (const [body, headers, q] of [
      ['sql=SELECT 4', form, '?ignore_sql_errors=maybe'],
      ['sql=SELECT 4&ignore_sql_errors=sometimes', form, ''],
      [JSON.stringify({ sql: 'SELECT 4', ignore_sql_errors: 'perhaps' }), { 'Content-Type': 'application/json' }, ''],
    ] as const) {
      const r = await put(`/v0/pipes/p_node/nodes/${node}${q}`, admin, body, headers);
      expect(r.status, r.text).toBe(400);
      expect(r.body).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'ignore_sql_errors' });
    }
    const vague = await call(`${srv.url}/v0/pipes?name=p_vague&sql=${encodeURIComponent('SELECT 1')}&ignore_sql_errors=maybe`, { method: 'POST', token: admin });
    expect(vague.status, vague.text).toBe(400);
    expect((await get('/v0/pipes/p_node')).body.nodes[0].sql).toBe('SELECT 1 AS x');
    // Spelled as yes/no: taken ("yes" saved a node checked against the engine before).
    const yes = await put(`/v0/pipes/p_node/nodes/${node}`, admin, JSON.stringify({ sql: 'SELECT 5 AS x', ignore_sql_errors: 'yes' }), { 'Content-Type': 'application/json' });
    expect(yes.status, yes.text).toBe(200);
    expect(yes.body.ignore_sql_errors).toBe(true);
  });

  it('needs the permission a delete needs; every denial is audited', async () => {
    await mkPipe('guarded', 'SELECT 1 AS x');
    const readOnly = await mkToken('guarded_reader', ['PIPES:READ:guarded', 'PIPES:CREATE']);
    const r = await put('/v0/pipes/guarded?name=hijacked', readOnly);
    expect(r.status, r.text).toBe(403);
    expect((await waitAudit((a) => a.event === 'authz.denied' && a.credential === 'token:guarded_reader' && String(a.resource).includes('PIPES:DROP:guarded'))).length).toBe(1);
    expect((await get('/v0/pipes/guarded')).status).toBe(200);
    const dropper = await mkToken('guarded_dropper', ['PIPES:DROP:guarded']);
    const ok = await put('/v0/pipes/guarded?name=guarded2', dropper);
    expect(ok.status, ok.text).toBe(200);
    // A token that may change the pipe but not read it is told what it changed, not the nodes' SQL
    // (GET refuses it; a black-box round).
    expect((await get('/v0/pipes/guarded2', dropper)).status).toBe(403);
    expect(Object.keys(ok.body).sort()).toEqual(['description', 'id', 'name', 'updated_at']);
    expect(ok.body.name).toBe('guarded2');
    expect(ok.text).not.toContain('SELECT');
    const both = await mkToken('guarded_both', ['PIPES:DROP:guarded2', 'PIPES:READ:guarded2']);
    const full = await put('/v0/pipes/guarded2?description=seen', both);
    expect(full.status, full.text).toBe(200);
    expect(full.body.nodes[0].sql).toBe('SELECT 1 AS x');
    // The token's own scope followed the pipe.
    expect((await put('/v0/pipes/guarded2?description=still%20mine', dropper)).status).toBe(200);
    expect((await waitAudit((a) => a.event === 'pipe.rename' && a.resource === 'guarded2')).length).toBe(1);
  });

  it("a token that may change a pipe but not read it never reads its nodes' SQL, nor a pipe reading it, through node edits, publishing or a 409", async () => {
    // (A regression probe: PUT of the pipe answered only what it changed, the node routes
    // answered every node's SQL, and a change breaking a reader the token may not read named it
    // and quoted the engine's message, with a literal of its SQL.)
    const make = async (body: unknown) => {
      const r = await req('POST', '/v0/pipes', admin, JSON.stringify(body), { 'Content-Type': 'application/json' });
      expect(r.status, r.text).toBe(200);
    };
    await make({ name: 'veiled', nodes: [{ name: 'v0', sql: "SELECT 'SECRET_LITERAL_1' AS r" }, { name: 'v1', sql: 'SELECT r FROM v0', type: 'endpoint' }] });
    const editor = await mkToken('veiled_editor', ['PIPES:CREATE', 'PIPES:DROP:veiled']);
    expect((await get('/v0/pipes/veiled', editor)).status).toBe(403);
    const answers = [
      await put('/v0/pipes/veiled/nodes/v0?description=changed', editor),
      await req('DELETE', '/v0/pipes/veiled/nodes/v1/endpoint', editor),
      await req('POST', '/v0/pipes/veiled/nodes/v1/endpoint', editor),
      await req('POST', '/v0/pipes/veiled/nodes?name=v2', editor, "SELECT 'mine' AS m"),
    ];
    for (const a of answers) {
      expect(a.status, a.text).toBe(200);
      expect(a.text).not.toContain('SECRET_LITERAL_1');
      expect(a.body.nodes).toBeUndefined();
      expect(a.body.sql).toBeUndefined();
    }
    expect(answers[0]!.body).toMatchObject({ name: 'v0', description: 'changed', pipe: { name: 'veiled' } });
    expect(answers[1]!.body).toMatchObject({ name: 'veiled' });
    // A credential that may read it still gets the whole answer.
    const full = await put('/v0/pipes/veiled/nodes/v0?description=again');
    expect(full.body.sql).toContain('SECRET_LITERAL_1');
    expect((await req('POST', '/v0/pipes/veiled/nodes/v1/endpoint')).body.nodes).toHaveLength(3);

    // A pipe reading veiled that this change would break, which the token may not read.
    await make({ name: 'veiled_reader', nodes: [{ name: 'h0', sql: "SELECT r FROM veiled WHERE r = 'SECRET_LITERAL_2'", type: 'endpoint' }] });
    const both = await mkToken('veiled_both', ['PIPES:CREATE', 'PIPES:DROP:veiled', 'PIPES:READ:veiled']);
    expect((await get('/v0/pipes/veiled_reader', both)).status).toBe(403);
    const breaking = await put('/v0/pipes/veiled/nodes/v1', both, 'SELECT toUInt8(1) AS r');
    expect(breaking.status, breaking.text).toBe(409);
    expect(breaking.text).not.toContain('SECRET_LITERAL_2');
    expect(breaking.text).not.toContain('veiled_reader');
    expect(breaking.body.hidden_dependents).toBe(1);
    expect(breaking.body.dependents).toEqual([]);
    // The admin, who may read it, is told which pipe and why.
    const told = await put('/v0/pipes/veiled/nodes/v1', admin, 'SELECT toUInt8(1) AS r');
    expect(told.status, told.text).toBe(409);
    expect(told.body.dependents).toEqual(['veiled_reader']);
    expect(told.text).toContain('SECRET_LITERAL_2');
    // Nothing was changed by the refused edits.
    expect((await get('/v0/pipes/veiled.json')).body.data).toEqual([{ r: 'SECRET_LITERAL_1' }]);
    expect((await req('DELETE', '/v0/pipes/veiled_reader')).status).toBe(204);
    // The token that created a pipe (PIPES:CREATE, no READ) and holds it still is shown what it wrote.
    const creator = await mkToken('veiled_creator', ['PIPES:CREATE']);
    const made = await req('POST', '/v0/pipes?name=own_pipe', creator, "SELECT 'OWN_SQL' AS o");
    expect(made.status, made.text).toBe(200);
    const own = await put('/v0/pipes/own_pipe/nodes/own_pipe_0?description=mine', creator);
    expect(own.status, own.text).toBe(200);
    expect(own.body.sql).toContain('OWN_SQL');
  });

  it('nodes are addressed by id as well as by name', async () => {
    const p = await mkPipe('by_node_id', 'SELECT 1 AS x');
    const node = p.nodes[0];
    const r = await put(`/v0/pipes/by_node_id/nodes/${node.id}`, admin, 'SELECT 2 AS x');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ id: node.id, name: node.name, sql: 'SELECT 2 AS x' });
    expect((await get('/v0/pipes/by_node_id.json')).body.data).toEqual([{ x: 2 }]);
    expect((await req('DELETE', `/v0/pipes/by_node_id/nodes/${node.id}/endpoint`)).status).toBe(200);
    expect((await req('POST', `/v0/pipes/by_node_id/nodes/${node.id}/endpoint`)).status).toBe(200);
  });

  it("a pipe addressed by its id, refused, is named by that id: the 403 does not tell the name, and reads as a made-up id's (audited)", async () => {
    await mkPipe('secret_name_x', 'SELECT 1 AS x');
    const id = (await get('/v0/pipes/secret_name_x')).body.id as string;
    await mkPipe('visible_one', 'SELECT 1 AS x');
    const other = await mkToken('visible_reader', ['PIPES:READ:visible_one']);
    const fake = 't_0000000000000000';
    for (const [method, p] of [['GET', ''], ['GET', '.json'], ['PUT', '?description=x'], ['DELETE', ''], ['PUT', '/nodes/n']] as const) {
      const real = await req(method, `/v0/pipes/${id}${p}`, other);
      const made = await req(method, `/v0/pipes/${fake}${p}`, other);
      expect(real.status, `${method} ${p}: ${real.text}`).toBe(403);
      expect(real.text, `${method} ${p}`).not.toContain('secret_name_x');
      if (!p.startsWith('/nodes')) expect(real.body.error, `${method} ${p}`).toContain(id);
      expect(made.status, `${method} ${p}`).toBe(403);
      expect(real.body.error.split(id).join(fake), `${method} ${p}`).toBe(made.body.error);
    }
    // A node route, to a token that may create pipes (its check on the pipe comes second).
    const creator = await mkToken('visible_creator', ['PIPES:READ:visible_one', 'PIPES:CREATE']);
    const node = await req('PUT', `/v0/pipes/${id}/nodes/n`, creator, 'SELECT 2 AS x');
    expect(node.status, node.text).toBe(403);
    expect(node.body.error).toBe(`this token lacks the scope PIPES:DROP:${id}`);
    expect((await waitAudit((a) => a.event === 'authz.denied' && a.credential === 'token:visible_reader' && String(a.resource).includes(id))).length).toBeGreaterThanOrEqual(4);
    expect(audits((a) => a.credential === 'token:visible_reader' && JSON.stringify(a).includes('secret_name_x'))).toEqual([]);
    // Allowed, the id still works.
    expect((await get(`/v0/pipes/${id}`)).body.name).toBe('secret_name_x');
  });

  it('descriptions show in GET and in the list', async () => {
    await mkPipe('described', 'SELECT 1 AS x', 'first');
    expect((await put('/v0/pipes/described', admin, JSON.stringify({ description: 'second' }), { 'Content-Type': 'application/json' })).status).toBe(200);
    expect((await get('/v0/pipes/described')).body.description).toBe('second');
    const list = (await get('/v0/pipes')).body.pipes as Array<{ name: string; description: string }>;
    expect(list.find((p) => p.name === 'described')?.description).toBe('second');
    // An empty description clears it.
    expect((await put('/v0/pipes/described?description=')).body.description).toBe('');
  });
});

describe('PUT /v0/datasources/<name>', () => {
  it('renames: rows, quarantine and statistics move with it; the old name is gone everywhere', async () => {
    await mkDataSource('orders', 'id Int32, org String');
    const a = await req('POST', '/v0/datasources?name=orders&mode=append', admin, '1,acme\n2,acme\n3,globex\nnot_a_number,x\n', { 'Content-Type': 'text/csv' });
    expect(a.body).toMatchObject({ rows: 3, quarantine_rows: 1 });
    const before = (await get('/v0/datasources/orders')).body;
    const r = await put('/v0/datasources/orders?name=purchases&description=what%20was%20bought');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ id: before.id, name: 'purchases', description: 'what was bought', statistics: { row_count: 3 }, quarantine_rows: 1, schema: before.schema, engine: before.engine });
    expect((await get('/v0/datasources/purchases')).body).toMatchObject({ id: before.id, name: 'purchases', description: 'what was bought', statistics: { row_count: 3 } });
    expect(await api.rows('SELECT id FROM purchases ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    expect(await api.rows('SELECT count() AS n FROM purchases_quarantine')).toEqual([{ n: 1 }]);
    expect((await get('/v0/datasources/orders')).status).toBe(404);
    expect((await sqlAs('SELECT count() FROM orders', admin)).status).toBeGreaterThanOrEqual(400);
    expect((await sqlAs('SELECT count() FROM orders_quarantine', admin)).status).toBeGreaterThanOrEqual(400);
    const names = ((await get('/v0/datasources')).body.datasources as Array<{ name: string }>).map((d) => d.name);
    expect(names).toContain('purchases');
    expect(names).not.toContain('orders');
    // Appends, truncate of the quarantine and rows deletes go by the new name.
    expect((await req('POST', '/v0/datasources?name=purchases&mode=append', admin, '4,initech\n', { 'Content-Type': 'text/csv' })).body.rows).toBe(1);
    expect((await req('POST', '/v0/datasources?name=orders&mode=append', admin, '5,x\n', { 'Content-Type': 'text/csv' })).status).toBe(404);
    expect((await req('POST', '/v0/datasources/purchases_quarantine/truncate')).status).toBe(200);
    expect(await api.rows('SELECT count() AS n FROM purchases_quarantine')).toEqual([{ n: 0 }]);
    // The rename is in the operations log, under the data source's id and its new name.
    const q = `SELECT datasource_id, datasource_name, result, Options.Values[indexOf(Options.Names, 'old_name')] AS old_name FROM tinybird.datasources_ops_log WHERE event_type = 'rename' AND datasource_id = '${before.id}'`;
    let logged: any[] = [];
    for (let i = 0; i < 100 && logged.length === 0; i++) {
      logged = await api.rows(q);
      if (!logged.length) await new Promise((res) => setTimeout(res, 100));
    }
    expect(logged).toEqual([{ datasource_id: before.id, datasource_name: 'purchases', result: 'ok', old_name: 'orders' }]);
  });

  it('a new data source under the old name is a new, empty one: the renamed one keeps its rows, tokens stay with it', async () => {
    await mkDataSource('clicks', 'id Int32, org String', '1,acme\n2,globex\n');
    const appender = await mkToken('clicks_appender', ['DATASOURCES:APPEND:clicks', 'DATASOURCES:READ:clicks:org = \'acme\'']);
    const jwt = await jwtFor('clicks_jwt', [{ type: 'DATASOURCES:READ', resource: 'clicks', filter: "org = 'globex'" }]);
    expect((await put('/v0/datasources/clicks?name=clicks_old')).status).toBe(200);
    expect((await get('/v0/tokens/clicks_appender')).body.scopes).toEqual([
      { type: 'DATASOURCES:APPEND', resource: 'clicks_old', filter: '' },
      { type: 'DATASOURCES:READ', resource: 'clicks_old', filter: "org = 'acme'" },
    ]);

    await mkDataSource('clicks', 'k String');
    expect(await api.rows('SELECT count() AS n FROM clicks')).toEqual([{ n: 0 }]);
    expect(await api.rows('SELECT id FROM clicks_old ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);

    // The service token appends to and reads (through its row filter) the renamed one only.
    const ap = await req('POST', '/v0/datasources?name=clicks_old&mode=append', appender, '3,acme\n', { 'Content-Type': 'text/csv' });
    expect(ap.status, ap.text).toBe(200);
    expect((await req('POST', '/v0/datasources?name=clicks&mode=append', appender, 'x\n', { 'Content-Type': 'text/csv' })).status).toBe(403);
    expect((await req('POST', '/v0/events?name=clicks&wait=true', appender, '{"k":"x"}\n')).status).toBe(403);
    const read = await sqlAs('SELECT id FROM clicks_old ORDER BY id FORMAT JSONEachRow', appender);
    expect(read.status, read.text).toBe(200);
    expect(read.text.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ id: 1 }, { id: 3 }]);
    expect((await sqlAs('SELECT count() FROM clicks', appender)).status).toBe(403);
    // The JWT too (its filter with it).
    const jr = await sqlAs('SELECT id FROM clicks_old FORMAT JSONEachRow', jwt);
    expect(jr.status, jr.text).toBe(200);
    expect(jr.text.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ id: 2 }]);
    expect((await sqlAs('SELECT count() FROM clicks', jwt)).status).toBe(403);
    // Dropping the new one leaves the renamed one's tables alone.
    expect((await req('DELETE', '/v0/datasources/clicks')).status).toBe(200);
    expect(await api.rows('SELECT count() AS n FROM clicks_old')).toEqual([{ n: 3 }]);
  });

  it('is refused while a pipe reads it or its quarantine (409 naming the pipes)', async () => {
    await mkDataSource('visits', 'id Int32', '1\n2\n');
    await mkPipe('visits_count', 'SELECT count() AS n FROM visits');
    const r = await put('/v0/datasources/visits?name=visits2');
    expect(r.status, r.text).toBe(409);
    expect(r.body.dependents).toEqual(['visits_count']);
    await mkDataSource('hits', 'id Int32', '1\nx\n');
    await mkPipe('hits_rejects', 'SELECT count() AS n FROM hits_quarantine');
    const q = await put('/v0/datasources/hits?name=hits2');
    expect(q.status, q.text).toBe(409);
    expect(q.body.dependents).toEqual(['hits_rejects']);
    expect((await get('/v0/pipes/visits_count.json')).body.data).toEqual([{ n: 2 }]);
    expect((await get('/v0/pipes/hits_rejects.json')).body.data).toEqual([{ n: 1 }]);
    // A description changes nothing the pipes read: allowed.
    expect((await put('/v0/datasources/visits?description=counted')).status).toBe(200);
    // Nor may the data source be dropped while a pipe reads its quarantine (the drop takes that too).
    const drop = await req('DELETE', '/v0/datasources/hits');
    expect(drop.status, drop.text).toBe(409);
    expect(drop.body.dependents).toEqual(['hits_rejects']);
    expect((await get('/v0/pipes/hits_rejects.json')).body.data).toEqual([{ n: 1 }]);
    // A token that may drop or rename it but not read the pipes is told how many, not their names
    // (a black-box round); the pipes it may read it is told by name.
    await mkPipe('hits_visible', 'SELECT count() AS n FROM hits');
    const dropper = await mkToken('hits_dropper', ['DATASOURCES:DROP:hits', 'PIPES:READ:hits_visible']);
    const dry = await req('DELETE', '/v0/datasources/hits?dry_run=true', dropper);
    expect(dry.status, dry.text).toBe(200);
    expect(dry.body).toMatchObject({ dependent_pipes: ['hits_visible'], hidden_dependent_pipes: 1 });
    for (const refused of [await req('DELETE', '/v0/datasources/hits', dropper), await put('/v0/datasources/hits?name=hits3', dropper)]) {
      expect(refused.status, refused.text).toBe(409);
      expect(refused.text).not.toContain('hits_rejects');
      expect(refused.body).toMatchObject({ dependents: ['hits_visible'], hidden_dependents: 1, error: expect.stringContaining('hits_visible, 1 pipe this credential may not read') });
    }
  });

  it('creates are refused under a name that differs from another only in case, as renames are', async () => {
    await mkDataSource('Cased', 'id Int32');
    const ds = await req('POST', `/v0/datasources?name=cased&schema=${enc('id Int32')}`);
    expect(ds.status, ds.text).toBe(409);
    expect(ds.body.error).toContain('"Cased"');
    const pipe = await req('POST', '/v0/pipes', admin, JSON.stringify({ name: 'CASED', nodes: [{ name: 'n', sql: 'SELECT 1 AS x' }] }), { 'Content-Type': 'application/json' });
    expect(pipe.status, pipe.text).toBe(409);
    expect(pipe.body.error).toContain('"Cased"');
    expect((await get('/v0/datasources/cased')).status).toBe(404);
    expect((await get('/v0/pipes/CASED')).status).toBe(404);
  });

  it('refuses what a user must fix, with a 4xx that says so', async () => {
    await mkDataSource('ds_one', 'id Int32');
    await mkDataSource('ds_two', 'id Int32');
    await mkPipe('a_pipe', 'SELECT 1 AS x');
    const underscore = await req('POST', `/v0/datasources?name=_&schema=${encodeURIComponent('id Int32')}`, admin);
    expect(underscore.status, underscore.text).toBe(400);
    expect(underscore.body.error).toMatch(/"_" is a reserved name/);
    const ev = await req('POST', '/v0/events?name=_', admin, '{"id":1}\n');
    expect(ev.status, ev.text).toBe(404);
    expect(ev.body.error).toMatch(/"_" is a reserved name .*no data source/);
    const cases: Array<[string, number, string, RegExp]> = [
      ['/v0/datasources/nope?name=x', 404, 'UNKNOWN_DATASOURCE', /nope/],
      ['/v0/datasources/ds_one?name=ds_two', 409, 'CONFLICT', /ds_two/],
      ['/v0/datasources/ds_one?name=DS_Two', 409, 'CONFLICT', /ds_two/],
      ['/v0/datasources/ds_one?name=a_pipe', 409, 'CONFLICT', /pipe is named "a_pipe"/],
      ['/v0/datasources/ds_one?name=A_PIPE', 409, 'CONFLICT', /a_pipe/],
      ['/v0/datasources/ds_one?name=x_quarantine', 400, 'INVALID_PARAMETER', /reserved/],
      ['/v0/datasources/ds_one?name=_', 400, 'INVALID_PARAMETER', /reserved name \(q= reads an endpoint's result as _\)/],
      ['/v0/datasources/ds_one?name=has-dash', 400, 'INVALID_PARAMETER', /not a valid data source name/],
      ['/v0/datasources/ds_one', 400, 'INVALID_PARAMETER', /nothing to change/],
      ['/v0/datasources/ds_one?mode=replace', 400, 'INVALID_PARAMETER', /mode/],
      ['/v0/datasources/ds_one?name=ds_uno&ttl=d%2BINTERVAL%201%20DAY', 400, 'INVALID_PARAMETER', /ttl: not supported.*nothing was changed/],
    ];
    for (const [p, status, code, msg] of cases) {
      const r = await put(p);
      expect(r.status, `${p}: ${r.text}`).toBe(status);
      expect(r.body.code, p).toBe(code);
      expect(r.body.error, p).toMatch(msg);
    }
    // A pipe cannot take a data source's name either (any case), nor its quarantine's.
    expect((await put('/v0/pipes/a_pipe?name=Ds_One')).status).toBe(409);
    const q = await put('/v0/pipes/a_pipe?name=ds_one_quarantine');
    expect(q.status, q.text).toBe(409);
    expect(q.body.error).toContain('quarantine of data source "ds_one"');
    const qc = await req('POST', '/v0/pipes', admin, JSON.stringify({ name: 'DS_ONE_quarantine', nodes: [{ name: 'n', sql: 'SELECT 1 AS x' }] }), { 'Content-Type': 'application/json' });
    expect(qc.status, qc.text).toBe(409);
    // Nor a data source a name whose quarantine a pipe has.
    await mkPipe('ds_three_quarantine', 'SELECT 1 AS x');
    expect((await put('/v0/datasources/ds_two?name=ds_three')).status).toBe(409);
    const dc = await req('POST', `/v0/datasources?name=ds_three&schema=${enc('id Int32')}`);
    expect(dc.status, dc.text).toBe(409);
    expect(dc.body.error).toContain('pipe "ds_three_quarantine"');
    const json = await put('/v0/datasources/ds_one', admin, JSON.stringify({ name: 'ds_uno', description: 'uno' }), { 'Content-Type': 'application/json' });
    expect(json.status, json.text).toBe(200);
    expect(json.body).toMatchObject({ name: 'ds_uno', description: 'uno' });
  });

  it('needs the permission a drop needs; every denial is audited', async () => {
    await mkDataSource('secured', 'id Int32', '1\n');
    const appender = await mkToken('secured_appender', ['DATASOURCES:APPEND:secured', 'DATASOURCES:READ:secured', 'DATASOURCES:CREATE']);
    const r = await put('/v0/datasources/secured?name=stolen', appender);
    expect(r.status, r.text).toBe(403);
    expect((await waitAudit((a) => a.event === 'authz.denied' && a.credential === 'token:secured_appender' && String(a.resource).includes('DATASOURCES:DROP:secured'))).length).toBe(1);
    expect((await get('/v0/datasources/secured')).status).toBe(200);
    const dropper = await mkToken('secured_dropper', ['DATASOURCES:DROP:secured']);
    const renamed = await put('/v0/datasources/secured?name=secured2', dropper);
    expect(renamed.status, renamed.text).toBe(200);
    // A token that may change the data source but not read it is told what it changed, not its
    // schema or the table's statistics (GET refuses it; a black-box round); a filtered reader gets
    // what its GET shows, without the whole table's statistics.
    expect((await get('/v0/datasources/secured2', dropper)).status).toBe(403);
    expect(Object.keys(renamed.body).sort()).toEqual(['description', 'id', 'name', 'updated_at']);
    const filtered = await mkToken('secured_filtered', ['DATASOURCES:DROP:secured2', 'DATASOURCES:READ:secured2:id = 1']);
    const seen = await put('/v0/datasources/secured2?description=filtered', filtered);
    expect(seen.status, seen.text).toBe(200);
    expect(seen.body.schema).toBeDefined();
    expect(seen.body.statistics).toBeUndefined();
    expect((await put('/v0/datasources/secured2?description=full')).body.statistics).toMatchObject({ row_count: 1 });
    expect((await req('POST', '/v0/datasources/secured2/truncate', dropper)).status).toBe(200);
    expect((await waitAudit((a) => a.event === 'datasource.rename' && a.resource === 'secured2')).length).toBe(1);
    // The answer goes by the scopes the credential held for the name it renamed: READ of the old
    // name opens it, a READ scope of the new name (stripped by the rename) does not.
    const both = await mkToken('secured_both', ['DATASOURCES:DROP:secured2', 'DATASOURCES:READ:secured2']);
    expect((await put('/v0/datasources/secured2?name=secured3', both)).body.schema).toBeDefined();
    const aiming = await mkToken('secured_aiming', ['DATASOURCES:DROP:secured3', 'DATASOURCES:READ:secured4']);
    const aimed = await put('/v0/datasources/secured3?name=secured4', aiming);
    expect(aimed.status, aimed.text).toBe(200);
    expect(Object.keys(aimed.body).sort()).toEqual(['description', 'id', 'name', 'updated_at']);
  });

  it('events acknowledged (202) before a rename land in the renamed data source', async () => {
    await mkDataSource('stream', 'id Int32 `json:$.id`');
    const ack = await req('POST', '/v0/events?name=stream', admin, eventsBody(1, 50));
    expect(ack.status, ack.text).toBe(202);
    // Still buffered (the flush timer waits an hour): the rename is what moves them.
    expect(fs.readdirSync(segmentDir(srv, 'stream')).filter((f) => f.endsWith('.ndjson')).length).toBe(1);
    expect((await put('/v0/datasources/stream?name=stream2')).status).toBe(200);
    await drained(srv, 'stream', 30_000);
    const ids = await storedIds(srv, admin, 'stream2');
    expect(ids.size).toBe(50);
    expect([...ids.values()].every((c) => c === 1)).toBe(true);
    // New events go by the new name; the old one is unknown.
    expect((await req('POST', '/v0/events?name=stream2&wait=true', admin, eventsBody(51, 5))).body.successful_rows).toBe(5);
    expect((await req('POST', '/v0/events?name=stream', admin, eventsBody(60, 1))).status).toBe(404);
  });

  it('events still arriving when the data source is renamed are refused (404 naming the new name), not stored under the old one', async () => {
    await mkDataSource('arriving', 'id Int32 `json:$.id`');
    const u = new URL(`${srv.url}/v0/events?name=arriving`);
    let pending: http.ClientRequest | undefined;
    const res = new Promise<{ status: number; body: any }>((resolve, reject) => {
      const r = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'POST', headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/x-ndjson' } }, (resp) => {
        let text = '';
        resp.on('data', (c: Buffer) => { text += c; });
        resp.on('end', () => resolve({ status: resp.statusCode!, body: JSON.parse(text) }));
      });
      r.on('error', reject);
      r.write(eventsBody(1, 5));
      pending = r;
    });
    // The body is being written to the buffer (its .part file exists) when the rename happens.
    const dir = segmentDir(srv, 'arriving');
    for (let i = 0; i < 300 && !(fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.endsWith('.part'))); i++) await new Promise((r) => setTimeout(r, 20));
    expect(fs.readdirSync(dir).some((f) => f.endsWith('.part'))).toBe(true);
    expect((await put('/v0/datasources/arriving?name=arrived')).status).toBe(200);
    pending!.end(eventsBody(6, 5));
    const got = await res;
    expect(got.status).toBe(404);
    expect(got.body.error).toContain('renamed to "arrived"');
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.ndjson'))).toEqual([]);
    expect((await storedIds(srv, admin, 'arrived')).size).toBe(0);
  });

  it('descriptions show in GET and in the list', async () => {
    await mkDataSource('noted', 'id Int32');
    expect((await get('/v0/datasources/noted')).body.description).toBe('');
    expect((await put('/v0/datasources/noted?description=a%20note')).status).toBe(200);
    expect((await get('/v0/datasources/noted')).body.description).toBe('a note');
    const list = (await get('/v0/datasources')).body.datasources as Array<{ name: string; description: string }>;
    expect(list.find((d) => d.name === 'noted')?.description).toBe('a note');
  });
});

describe('concurrent changes', () => {
  it('renames of one pipe racing each other: one wins, the others answer 404, tokens follow the winner', async () => {
    await mkPipe('race', 'SELECT 1 AS x');
    await mkToken('race_reader', ['PIPES:READ:race']);
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => put(`/v0/pipes/race?name=race_${i}`)));
    const won = rs.filter((r) => r.status === 200);
    expect(won.length).toBe(1);
    for (const r of rs.filter((x) => x.status !== 200)) expect([r.status, r.body.code]).toEqual([404, 'UNKNOWN_PIPE']);
    const names = ((await get('/v0/pipes')).body.pipes as Array<{ name: string }>).map((p) => p.name).filter((n) => n.startsWith('race'));
    expect(names).toEqual([won[0]!.body.name]);
    expect((await get('/v0/tokens/race_reader')).body.scopes).toEqual([{ type: 'PIPES:READ', resource: won[0]!.body.name, filter: '' }]);
  });

  it('a rename racing a create of the new name: exactly one data source holds it, no rows lost', async () => {
    for (let round = 0; round < 4; round++) {
      await mkDataSource(`src_${round}`, 'id Int32', '1\n2\n3\n');
      const [ren, cre] = await Promise.all([
        put(`/v0/datasources/src_${round}?name=dst_${round}`),
        req('POST', `/v0/datasources?name=dst_${round}&schema=${enc('k String')}`),
      ]);
      expect([ren.status, cre.status].filter((x) => x === 200).length, `${ren.text} ${cre.text}`).toBe(1);
      expect([ren.status, cre.status].filter((x) => x === 409).length).toBe(1);
      const dst = (await get(`/v0/datasources/dst_${round}`)).body;
      if (ren.status === 200) {
        expect(dst.statistics.row_count).toBe(3);
        expect((await get(`/v0/datasources/src_${round}`)).status).toBe(404);
      } else {
        expect(dst.statistics.row_count).toBe(0);
        expect((await get(`/v0/datasources/src_${round}`)).body.statistics.row_count).toBe(3);
      }
    }
  });
});

describe('backups', () => {
  it('a restore brings back the names, tables and former names of the backup', async () => {
    await mkDataSource('ledger', 'id Int32', '1\n2\n');
    const jwt = await jwtFor('ledger_jwt', [{ type: 'DATASOURCES:READ', resource: 'ledger' }]);
    expect((await put('/v0/datasources/ledger?name=ledger_v1')).status).toBe(200);
    await mkDataSource('ledger', 'id Int32', '10\n');
    const op = (method: string, p: string, body?: unknown) => call(`${srv.url}${p}`, { method, token: srv.operatorToken, ...(body ? { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) } : {}) });
    const waitJob = async (id: string) => {
      for (let i = 0; i < 600; i++) {
        const j = await op('GET', `/v0/jobs/${id}`);
        if (j.body.status === 'done' || j.body.status === 'error') return j.body;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('job did not finish');
    };
    const b = await op('POST', '/v0/tenants/local/backups');
    expect(b.status, b.text).toBe(202);
    expect((await waitJob(b.body.id)).status).toBe('done');

    expect((await req('DELETE', '/v0/datasources/ledger')).status).toBe(200);
    expect((await put('/v0/datasources/ledger_v1?name=ledger_v2')).status).toBe(200);
    const r = await op('POST', `/v0/tenants/local/backups/${b.body.backup_id}/restore`, { replace: true });
    expect(r.status, r.text).toBe(202);
    const j = await waitJob(r.body.id);
    expect(j.status, JSON.stringify(j)).toBe('done');

    expect(await api.rows('SELECT id FROM ledger_v1 ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
    expect(await api.rows('SELECT id FROM ledger ORDER BY id')).toEqual([{ id: 10 }]);
    expect((await get('/v0/datasources/ledger_v2')).status).toBe(404);
    // The JWT issued before the rename reads the renamed one, not the later one of its name.
    const mine = await sqlAs('SELECT count() AS n FROM ledger_v1 FORMAT JSONEachRow', jwt);
    expect(mine.status, mine.text).toBe(200);
    expect(JSON.parse(mine.text)).toEqual({ n: 2 });
    expect((await sqlAs('SELECT count() FROM ledger', jwt)).status).toBe(403);
  });
});

describe('across restarts', () => {
  let s2: RunningServer | undefined;
  afterAll(async () => { await s2?.stop(); });

  it('kill -9 while renames are being made leaves the data source under one name, its rows and its token with it', async () => {
    s2 = await startServer();
    const tok = (await call(`${s2.url}/tokens`)).body.workspace_admin_token as string;
    const q = (method: string, p: string, token = tok) => call(`${s2!.url}${p}`, { method, token });
    expect((await q('POST', `/v0/datasources?name=flip&schema=${enc('id Int32')}`)).status).toBe(200);
    expect((await call(`${s2.url}/v0/datasources?name=flip&mode=append`, { method: 'POST', token: tok, body: '1\n2\n', headers: { 'Content-Type': 'text/csv' } })).status).toBe(200);
    const reader = (await q('POST', `/v0/tokens?name=flip_reader&scope=${enc('DATASOURCES:READ:flip')}`)).body.token as string;
    const other = (n: string) => (n === 'flip' ? 'flop' : 'flip');
    let cur = 'flip';
    for (let i = 0; i < 5; i++) {
      expect((await q('PUT', `/v0/datasources/${cur}?name=${other(cur)}`)).status).toBe(200);
      cur = other(cur);
    }
    // Renames in flight when the process dies.
    const inFlight = Array.from({ length: 4 }, () => q('PUT', `/v0/datasources/${cur}?name=${other(cur)}`).catch(() => undefined));
    await s2.stop('SIGKILL');
    await Promise.all(inFlight);
    s2 = await startServer({ dataDir: s2.dataDir });
    const present = [];
    for (const n of ['flip', 'flop']) if ((await q('GET', `/v0/datasources/${n}`)).status === 200) present.push(n);
    expect(present.length).toBe(1);
    const r = await call(`${s2.url}/v0/sql?q=${enc(`SELECT count() AS n FROM ${present[0]} FORMAT JSONEachRow`)}`, { token: reader });
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ n: 2 });
    await s2.stop();
    s2 = undefined;
  });

  it('a rename survives kill -9; segments a crash left under the old name go to the renamed data source, not to a new one of that name', async () => {
    s2 = await startServer();
    const tok = (await call(`${s2.url}/tokens`)).body.workspace_admin_token as string;
    const q = (method: string, p: string, body?: BodyInit, headers: Record<string, string> = {}) => call(`${s2!.url}${p}`, { method, token: tok, body, headers });
    expect((await q('POST', `/v0/datasources?name=feed&schema=${enc('id Int32 `json:$.id`')}`)).status).toBe(200);
    expect((await q('POST', '/v0/events?name=feed&wait=true', eventsBody(1, 3))).status).toBe(200);
    // An event buffered under the old name writes the data source's id beside its segments.
    expect((await q('POST', '/v0/events?name=feed', eventsBody(4, 1))).status).toBe(202);
    await drained(s2, 'feed', 30_000);
    const dir = segmentDir(s2, 'feed');
    const idFile = fs.readFileSync(path.join(dir, '.datasource.json'), 'utf8');
    const reader = (await q('POST', `/v0/tokens?name=feed_reader&scope=${enc('DATASOURCES:READ:feed')}`)).body.token as string;
    const p = await q('POST', '/v0/pipes', JSON.stringify({ name: 'feed_pipe', nodes: [{ name: 'n', sql: 'SELECT 1 AS x', type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
    expect(p.status).toBe(200);
    expect((await q('PUT', '/v0/datasources/feed?name=feed_renamed&description=kept')).status).toBe(200);
    expect((await q('PUT', '/v0/pipes/feed_pipe?name=feed_pipe2')).status).toBe(200);
    await s2.stop('SIGKILL');

    // What a kill -9 between a rename and the flush of its events leaves: segments (and the id)
    // under the old name.
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, '.datasource.json'), idFile);
    fs.writeFileSync(path.join(dir, '000000000001-0badcafe.ndjson'), eventsBody(100, 10));
    s2 = await startServer({ dataDir: s2.dataDir });
    const tok2 = (await call(`${s2.url}/tokens`)).body.workspace_admin_token as string;
    await drained(s2, 'feed', 30_000);
    const ids = await storedIds(s2, tok2, 'feed_renamed');
    expect([...ids.keys()].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, ...Array.from({ length: 10 }, (_, i) => 100 + i)]);
    expect((await call(`${s2.url}/v0/datasources/feed_renamed`, { token: tok2 })).body).toMatchObject({ name: 'feed_renamed', description: 'kept' });
    expect((await call(`${s2.url}/v0/datasources/feed`, { token: tok2 })).status).toBe(404);
    expect((await call(`${s2.url}/v0/pipes/feed_pipe2.json`, { token: tok2 })).body.data).toEqual([{ x: 1 }]);
    expect((await call(`${s2.url}/v0/pipes/feed_pipe.json`, { token: tok2 })).status).toBe(404);
    const r = await call(`${s2.url}/v0/sql?q=${enc('SELECT count() AS n FROM feed_renamed FORMAT JSONEachRow')}`, { token: reader });
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ n: 14 });

    // A data source created under the old name, with segments of the renamed one still there, gets none of them.
    fs.writeFileSync(path.join(dir, '000000000002-0badcafe.ndjson'), eventsBody(200, 2));
    expect((await call(`${s2.url}/v0/datasources?name=feed&schema=${enc('id Int32 `json:$.id`')}`, { method: 'POST', token: tok2 })).status).toBe(200);
    await s2.stop('SIGKILL');
    s2 = await startServer({ dataDir: s2.dataDir });
    await drained(s2, 'feed', 30_000);
    expect([...(await storedIds(s2, tok2, 'feed')).keys()]).toEqual([]);
    expect((await storedIds(s2, tok2, 'feed_renamed')).has(200)).toBe(true);
    // New events for the new data source of that name go to it.
    expect((await call(`${s2.url}/v0/events?name=feed&wait=true`, { method: 'POST', token: tok2, body: eventsBody(300, 1) })).status).toBe(200);
    expect([...(await storedIds(s2, tok2, 'feed')).keys()]).toEqual([300]);
  });
});

describe('a dropped pipe or data source and a new one of its name', () => {
  it('tokens and JWTs granted the dropped one do not reach the new one', async () => {
    await mkDataSource('journal', 'id Int32, org String', '1,acme\n');
    await mkPipe('journal_report', 'SELECT count() AS n FROM journal');
    const tok = await mkToken('journal_tok', ['DATASOURCES:READ:journal', 'DATASOURCES:APPEND:journal', 'PIPES:READ:journal_report', 'DATASOURCES:READ:sales']);
    const wild = await mkToken('journal_wild', ['DATASOURCES:READ:*']);
    const jwt = await jwtFor('journal_jwt', [{ type: 'DATASOURCES:READ', resource: 'journal' }, { type: 'PIPES:READ', resource: 'journal_report' }]);
    for (const t of [tok, jwt]) {
      expect((await sqlAs('SELECT count() FROM journal', t)).status).toBe(200);
      expect((await get('/v0/pipes/journal_report.json', t)).status).toBe(200);
    }
    expect((await req('DELETE', '/v0/pipes/journal_report')).status).toBe(204);
    expect((await req('DELETE', '/v0/datasources/journal')).status).toBe(200);
    // The token's scopes on them are gone; its other scopes stay.
    expect((await get('/v0/tokens/journal_tok')).body.scopes).toEqual([{ type: 'DATASOURCES:READ', resource: 'sales', filter: '' }]);
    // Someone else creates a data source and a pipe under the same names, with other data.
    await mkDataSource('journal', 'secret String', 'payroll\n');
    await mkPipe('journal_report', 'SELECT secret FROM journal');
    for (const t of [tok, jwt]) {
      expect((await sqlAs('SELECT * FROM journal', t)).status).toBe(403);
      expect((await get('/v0/pipes/journal_report.json', t)).status).toBe(403);
    }
    expect((await req('POST', '/v0/datasources?name=journal&mode=append', tok, 'x\n', { 'Content-Type': 'text/csv' })).status).toBe(403);
    // A wildcard names no resource: it reads the new one, as it reads every data source.
    expect((await sqlAs('SELECT count() AS n FROM journal FORMAT JSON', wild)).body.data).toEqual([{ n: 1 }]);
    // A JWT issued after the new ones were made means them.
    await new Promise((res) => setTimeout(res, 1100));
    const later = await jwtFor('journal_jwt_later', [{ type: 'PIPES:READ', resource: 'journal_report' }]);
    expect((await get('/v0/pipes/journal_report.json', later)).body.data).toEqual([{ secret: 'payroll' }]);
  });
});

describe('a pipe and a data source created under one name at once', () => {
  it('exactly one of them gets the name', async () => {
    // One request starts a little after the other, by turns, so the data source's state change
    // falls at every point of the pipe's save (its name checks, the engine check, its state change).
    for (let i = 0; i < 24; i++) {
      const name = `twin_${i}`;
      const pipe = () => req('POST', '/v0/pipes', admin, JSON.stringify({ name, nodes: [{ name: `${name}_0`, sql: 'SELECT number AS n FROM numbers(3)', type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
      const source = () => req('POST', `/v0/datasources?name=${name}&schema=${enc('id Int32')}`);
      const later = <T>(ms: number, f: () => Promise<T>) => new Promise((r) => setTimeout(r, ms)).then(f);
      const [p, d] = await Promise.all(i % 2 ? [pipe(), later(i, source)] : [later(i, pipe), source()]);
      expect([p.status, d.status].sort(), `${name}: ${p.text} ${d.text}`).toEqual([200, 409]);
      const pipes = (await get('/v0/pipes')).body.pipes.map((x: { name: string }) => x.name);
      const sources = (await get('/v0/datasources')).body.datasources.map((x: { name: string }) => x.name);
      expect(Number(pipes.includes(name)) + Number(sources.includes(name)), name).toBe(1);
    }
  });
});
