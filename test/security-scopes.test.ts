/**
 * Token scopes against the real server: what a scoped credential reaches
 * through routes other than the one it was made for.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as jose from 'jose';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;
const post = (path: string, body?: BodyInit, headers: Record<string, string> = {}, token = admin) =>
  call(`${srv.url}${path}`, { method: 'POST', token, body, headers });
const get = (path: string, token = admin) => call(`${srv.url}${path}`, { token });
const audits = (pred: (a: Record<string, unknown>) => boolean) => srv.logs.filter((l) => l.msg === 'audit' && pred(l));
const waitAudit = async (pred: (a: Record<string, unknown>) => boolean) => {
  for (let i = 0; i < 50 && audits(pred).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  return audits(pred);
};

async function jwtFor(payload: Record<string, unknown>): Promise<string> {
  const ws = (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces[0];
  return new jose.SignJWT({ workspace_id: ws.id, ...payload })
    .setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(new TextEncoder().encode(admin));
}

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await post(`/v0/datasources?name=orders&schema=${encodeURIComponent('id Int32, org String')}`)).status).toBe(200);
  expect((await post('/v0/datasources?name=orders&mode=append', '1,acme\n2,acme\n3,globex\n', { 'Content-Type': 'text/csv' })).body.rows).toBe(3);
  const nodes = [
    { name: 'raw', sql: 'SELECT * FROM orders' },
    { name: 'by_org', sql: '%\nSELECT org, count() AS n FROM raw WHERE org = {{String(org, "acme")}} GROUP BY org', type: 'endpoint' },
  ];
  const r = await post('/v0/pipes', JSON.stringify({ name: 'org_orders', nodes }), { 'Content-Type': 'application/json' });
  expect(r.status, r.text).toBe(200);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('JWT fixed_params through /v0/sql?pipeline=', () => {
  it('the endpoint itself honours the fixed parameter (baseline)', async () => {
    const jwt = await jwtFor({ name: 'acme_only', scopes: [{ type: 'PIPES:READ', resource: 'org_orders', fixed_params: { org: 'acme' } }] });
    const r = await get('/v0/pipes/org_orders.json?org=globex', jwt);
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ org: 'acme', n: 2 }]);
  });

  it('a fixed parameter of a pipe also holds where another pipe reads it', async () => {
    const wrap = await post('/v0/pipes', JSON.stringify({ name: 'wrap_orders', nodes: [{ name: 'w', sql: 'SELECT * FROM org_orders', type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
    expect(wrap.status, wrap.text).toBe(200);
    const jwt = await jwtFor({ name: 'acme_wrapped', scopes: [
      { type: 'PIPES:READ', resource: 'org_orders', fixed_params: { org: 'acme' } },
      { type: 'PIPES:READ', resource: 'wrap_orders' },
    ] });
    const r = await get('/v0/pipes/wrap_orders.json?org=globex', jwt);
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ org: 'acme', n: 2 }]);
    const q = await get(`/v0/sql?org=globex&q=${encodeURIComponent('SELECT org, n FROM wrap_orders FORMAT JSON')}`, jwt);
    expect(q.status, q.text).toBe(200);
    expect(q.body.data).toEqual([{ org: 'acme', n: 2 }]);
    // A token without fixed parameters passes the request's on, as before.
    const plain = await jwtFor({ name: 'any_org', scopes: [{ type: 'PIPES:READ', resource: 'wrap_orders' }] });
    expect((await get('/v0/pipes/wrap_orders.json?org=globex', plain)).body.data).toEqual([{ org: 'globex', n: 1 }]);
  });

  it('pipeline= compiles the endpoint node with the fixed parameter, not the request\'s', async () => {
    const jwt = await jwtFor({ name: 'acme_only_sql', scopes: [{ type: 'PIPES:READ', resource: 'org_orders', fixed_params: { org: 'acme' } }] });
    const r = await get(`/v0/sql?pipeline=org_orders&org=globex&q=${encodeURIComponent('SELECT org, n FROM by_org FORMAT JSON')}`, jwt);
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ org: 'acme', n: 2 }]);
  });

  it('pipeline= does not open the nodes before the fixed filter to such a token (403, audited)', async () => {
    const jwt = await jwtFor({ name: 'acme_only_raw', scopes: [{ type: 'PIPES:READ', resource: 'org_orders', fixed_params: { org: 'acme' } }] });
    const r = await get(`/v0/sql?pipeline=org_orders&q=${encodeURIComponent('SELECT org FROM raw ORDER BY id FORMAT JSON')}`, jwt);
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toContain('globex');
    expect(await waitAudit((a) => a.event === 'authz.denied' && a.credential === 'jwt:acme_only_raw')).toHaveLength(1);
  });

  it('no WITH alias in a query reading a pipe, for such a token (the old analyzer carries it into the pipe)', async () => {
    const jwt = await jwtFor({ name: 'acme_alias', scopes: [{ type: 'PIPES:READ', resource: 'org_orders', fixed_params: { org: 'acme' } }] });
    for (const [pipeline, q] of [
      ['', "WITH 'acme' AS org SELECT org, n FROM org_orders FORMAT JSON"],
      ['', "WITH tuple('acme' AS org) AS z SELECT org, n FROM org_orders FORMAT JSON"],
      ['', "WITH [('acme' AS org)] AS z SELECT * FROM (SELECT org, n FROM org_orders) FORMAT JSON"],
      ['', "SELECT 1 AS n WHERE 0 UNION ALL WITH concat('acme' AS org) AS z SELECT n FROM org_orders FORMAT JSON"],
      ['', "WITH 7 AS k SELECT org, n, k FROM org_orders FORMAT JSON"],
      ['org_orders', "SELECT org, n FROM org_orders WHERE n IN (WITH 'acme' AS org SELECT n FROM by_org) FORMAT JSON"],
      ['org_orders', "WITH tuple('acme' AS org) AS z SELECT org, n FROM by_org FORMAT JSON"],
    ]) {
      const r = await get(`/v0/sql?pipeline=${pipeline}&q=${encodeURIComponent(q!)}`, jwt);
      expect(r.status, `${q}: ${r.text}`).toBe(403);
      expect(r.body).toMatchObject({ code: 'SQL_FORBIDDEN' });
      expect(r.body.error).toMatch(/may not define aliases in WITH with this credential \(it has fixed parameters\)/);
    }
    for (const q of ["WITH 'acme' AS org SELECT * FROM _", "WITH tuple('acme' AS org) AS z SELECT * FROM _"]) {
      const overResult = await get(`/v0/pipes/org_orders.json?q=${encodeURIComponent(q)}`, jwt);
      expect(overResult.status, overResult.text).toBe(403);
      expect(overResult.body.error).toMatch(/may not define aliases in WITH/);
    }
    // Without a WITH alias, as before (a CTE too); and a token without fixed parameters may alias.
    for (const q of ['SELECT org, n, 7 AS k FROM org_orders FORMAT JSON', 'WITH x AS (SELECT org, n FROM org_orders) SELECT org, n, 7 AS k FROM x FORMAT JSON']) {
      const ok = await get(`/v0/sql?q=${encodeURIComponent(q)}`, jwt);
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body.data).toEqual([{ org: 'acme', n: 2, k: 7 }]);
    }
    const plain = await jwtFor({ name: 'no_fixed', scopes: [{ type: 'PIPES:READ', resource: 'org_orders' }] });
    const open = await get(`/v0/sql?q=${encodeURIComponent("WITH 'x' AS org SELECT n FROM org_orders FORMAT JSON")}`, plain);
    expect(open.status, open.text).toBe(200);
  });

  it("a pipe token reads the pipe's endpoint node through pipeline=, and another node only with a read of what it reads (403, audited)", async () => {
    const t = (await post('/v0/tokens?name=org_reader&scope=PIPES:READ:org_orders')).body.token;
    // The endpoint node: the pipe's result, as its endpoint answers it.
    const ok = await get(`/v0/sql?pipeline=org_orders&q=${encodeURIComponent('SELECT org, n FROM by_org FORMAT JSON')}`, t);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.data).toEqual([{ org: 'acme', n: 2 }]);
    // The node before the endpoint's filter and aggregation holds every row of the data source.
    const r = await get(`/v0/sql?pipeline=org_orders&q=${encodeURIComponent('SELECT org FROM raw ORDER BY id FORMAT JSON')}`, t);
    expect(r.status, r.text).toBe(403);
    expect(r.text).not.toContain('globex');
    expect(r.body.error).toContain('DATASOURCES:READ:orders');
    expect(await waitAudit((a) => a.event === 'authz.denied' && a.credential === 'token:org_reader')).not.toHaveLength(0);
    // Through the endpoint node that reads it, still the endpoint's result.
    const via = await get(`/v0/sql?pipeline=org_orders&q=${encodeURIComponent('SELECT count() AS c FROM by_org FORMAT JSON')}`, t);
    expect(via.status, via.text).toBe(200);
    // With a read of the data source too, the node is open.
    const both = (await post('/v0/tokens?name=org_reader_ds&scope=PIPES:READ:org_orders&scope=DATASOURCES:READ:orders')).body.token;
    const open = await get(`/v0/sql?pipeline=org_orders&q=${encodeURIComponent('SELECT count() AS c FROM raw FORMAT JSON')}`, both);
    expect(open.status, open.text).toBe(200);
    expect(open.body.data).toEqual([{ c: 3 }]);
  });

  it('pipeline= in a POST form or JSON body is taken as in the query string, with the same scope checks', async () => {
    const t = (await post('/v0/tokens?name=org_reader_post&scope=PIPES:READ:org_orders')).body.token;
    const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const ok = await post('/v0/sql', `pipeline=org_orders&q=${encodeURIComponent('SELECT org, n FROM by_org FORMAT JSON')}`, form, t);
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.data).toEqual([{ org: 'acme', n: 2 }]);
    const json = await post('/v0/sql', JSON.stringify({ q: 'SELECT org, n FROM by_org FORMAT JSON', pipeline: 'org_orders' }), { 'Content-Type': 'application/json' }, t);
    expect(json.status, json.text).toBe(200);
    expect(json.body.data).toEqual([{ org: 'acme', n: 2 }]);
    // The body's wins over the query string's, and is checked: a pipe the token may not read is a 403.
    const other = await post('/v0/sql?pipeline=org_orders', `pipeline=wrap_orders&q=${encodeURIComponent('SELECT 1 FORMAT JSON')}`, form, t);
    expect(other.status, other.text).toBe(403);
    expect(other.body.error).toContain('PIPES:READ:wrap_orders');
    const raw = await post('/v0/sql', `pipeline=org_orders&q=${encodeURIComponent('SELECT org FROM raw FORMAT JSON')}`, form, t);
    expect(raw.status, raw.text).toBe(403);
    expect(raw.text).not.toContain('globex');
  });
});

describe('arrayJoin in a row filter', () => {
  it('is refused when a token is made and when a JWT is used (its reader got rows twice over)', async () => {
    const r = await post(`/v0/tokens?name=aj_filter&scope=${encodeURIComponent("DATASOURCES:READ:orders:arrayJoin([org, org]) != ''")}`);
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatch(/may not call arrayJoin/);
    const jwt = await jwtFor({ name: 'aj_jwt', scopes: [{ type: 'DATASOURCES:READ', resource: 'orders', filter: "arrayJoin([org, org]) != ''" }] });
    const q = await get(`/v0/sql?q=${encodeURIComponent('SELECT count() AS c FROM orders FORMAT JSON')}`, jwt);
    expect(q.status, q.text).toBeGreaterThanOrEqual(400);
    expect(q.status).toBeLessThan(500);
    expect(q.text).not.toMatch(/"c":\s*6/);
  });
});

describe('row filters are expressions, not SQL to splice', () => {
  const VAULT = 'VAULT_SECRET_41c9';
  let vaultDb = '';
  let tokensOnly = '';

  beforeAll(async () => {
    const r = await call(`${srv.url}/v0/tenants/local/workspaces`, { method: 'POST', token: srv.operatorToken, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'vault' }) });
    expect(r.status, r.text).toBe(201);
    const vt = r.body.token as string;
    expect((await post(`/v0/datasources?name=secrets&schema=${encodeURIComponent('id Int32, s String')}`, undefined, {}, vt)).status).toBe(200);
    expect((await post('/v0/datasources?name=secrets&mode=append', `7,${VAULT}\n`, { 'Content-Type': 'text/csv' }, vt)).body.rows).toBe(1);
    const ws = (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces as Array<{ name: string; database?: string; id: string }>;
    const v = ws.find((w) => w.name === 'vault')!;
    vaultDb = v.database ?? `ws_vault_${v.id.slice(0, 8)}`;
    // A token manager of the main workspace: may mint tokens there, may not read elsewhere.
    tokensOnly = (await post('/v0/tokens?name=manager_rf&scope=TOKENS')).body.token;
  });

  const injections = () => [
    `1) UNION ALL SELECT id, s FROM merge('${vaultDb}', '.*') WHERE (1`,
    `1) UNION ALL SELECT toInt32(0), name FROM system.databases WHERE (1`,
    '1) --',
    `org IN (SELECT s FROM merge('${vaultDb}', '.*'))`,
    "org = 'acme') OR (1",
    // Brackets inside what ClickHouse reads as a comment or a string and the checks did not
    // (`//` line comments, `#` comments, heredocs): balanced for them, not for the engine.
    "org = 'acme' // (\n) OR (1 // )",
    "org = 'acme' # (\n) OR (1 # )",
    "org = 'acme' AND $$($$ = '') OR (1 = 1 OR $$)$$ = ''",
  ];

  it('minting a token whose filter reads tables, closes the view or comments out the rest is refused (400)', async () => {
    for (const [i, f] of injections().entries()) {
      if (f === "org = 'acme') OR (1") continue; // balanced and table-free: harmless, allowed
      const r = await post(`/v0/tokens?name=inj_${i}&scope=${encodeURIComponent(`DATASOURCES:READ:orders:${f}`)}`, undefined, {}, tokensOnly);
      expect(r.status, `${f}: ${r.text}`).toBe(400);
      if (r.status === 200) {
        const q = await get(`/v0/sql?q=${encodeURIComponent("SELECT org FROM orders FORMAT JSON")}`, r.body.token);
        expect(q.text).not.toContain(VAULT);
      }
    }
  });

  it('a JWT whose filter reads another workspace is refused (401), and never answers its rows', async () => {
    const jwt = await jwtFor({ name: 'inj_jwt', scopes: [{ type: 'DATASOURCES:READ', resource: 'orders', filter: injections()[0] }] });
    const r = await get(`/v0/sql?q=${encodeURIComponent('SELECT org FROM orders FORMAT JSON')}`, jwt);
    expect(r.text).not.toContain(VAULT);
    expect(r.status).toBe(401);
  });

  it('a filter on * is refused, and a wildcard JWT filter is not silently dropped', async () => {
    const r = await post(`/v0/tokens?name=star_filter&scope=${encodeURIComponent("DATASOURCES:READ:*:org = 'acme'")}`);
    expect(r.status, r.text).toBe(400);
    const jwt = await jwtFor({ name: 'star_jwt', scopes: [{ type: 'DATASOURCES:READ', resource: '*', filter: "org = 'acme'" }] });
    const q = await get(`/v0/sql?q=${encodeURIComponent('SELECT DISTINCT org FROM orders FORMAT JSON')}`, jwt);
    expect(q.text).not.toContain('globex');
    const jwt2 = await jwtFor({ name: 'star_fixed', scopes: [{ type: 'PIPES:READ', resource: '*', fixed_params: { org: 'acme' } }] });
    const p = await get('/v0/pipes/org_orders.json?org=globex', jwt2);
    expect(p.text).not.toContain('globex');
  });

  it('a filter with a query clause after its expression is refused when minted, not at every use (400)', async () => {
    // These passed the analyzer (it reads bracketed text loosely) and every use of the token
    // then failed with a syntax error quoting the view Roost builds around the filter.
    for (const [i, f] of ["org = 'acme' SETTINGS max_threads = 1", "org = 'acme' LIMIT 1", "org = 'acme' ORDER BY id", "org = 'acme' FORMAT JSON",
      "org = 'acme' UNION ALL SELECT 1, 'x'", "(org = 'acme') GROUP BY org", "org = 'acme' INTO OUTFILE 'x'"].entries()) {
      const r = await post(`/v0/tokens?name=clause_${i}&scope=${encodeURIComponent(`DATASOURCES:READ:orders:${f}`)}`);
      expect(r.status, `${f}: ${r.text}`).toBe(400);
      expect(r.body.error, f).toMatch(/begins a query clause/);
    }
    const jwt = await jwtFor({ name: 'clause_jwt', scopes: [{ type: 'DATASOURCES:READ', resource: 'orders', filter: "org = 'acme' SETTINGS max_threads = 1" }] });
    expect((await get(`/v0/sql?q=${encodeURIComponent('SELECT id FROM orders FORMAT JSON')}`, jwt)).status).toBe(401);
  });

  it('a filter the engine does not take on its data source (not a condition, a column it lacks) is refused when minted', async () => {
    for (const [i, [f, msg]] of ([['org', /Invalid type for filter in WHERE: String/], ['nosuch = 1', /Unknown expression or function identifier `nosuch`/], ['[1, 2]', /Invalid type for filter/]] as const).entries()) {
      const r = await post(`/v0/tokens?name=engine_refused_${i}&scope=${encodeURIComponent(`DATASOURCES:READ:orders:${f}`)}`);
      expect(r.status, `${f}: ${r.text}`).toBe(400);
      expect(r.body.error).toMatch(/the row filter does not run on data source "orders"/);
      expect(r.body.error).toMatch(msg);
      // Not the view Roost builds around it.
      expect(r.body.error).not.toMatch(/LIMIT 18446744073709551615|In query/);
    }
    // A data source that does not exist yet: minted (nothing to run it on), as before.
    expect((await post(`/v0/tokens?name=future_ds&scope=${encodeURIComponent('DATASOURCES:READ:later:x = 1')}`)).status).toBe(200);
  });

  it('a column named like a clause keyword still filters (a keyword where an operand is due is a name)', async () => {
    expect((await post(`/v0/datasources?name=kw&schema=${encodeURIComponent('id Int32, `order` Int32, `format` String, `limit` Int32')}`)).status).toBe(200);
    expect((await post('/v0/datasources?name=kw&mode=append', '1,1,csv,5\n2,2,json,6\n', { 'Content-Type': 'text/csv' })).body.rows).toBe(2);
    const f = "order = 1 AND format IN ('csv') AND limit > 0 AND toString(limit) != format";
    const t = await post(`/v0/tokens?name=kw_rows&scope=${encodeURIComponent(`DATASOURCES:READ:kw:${f}`)}`);
    expect(t.status, t.text).toBe(200);
    const rows = await get(`/v0/sql?q=${encodeURIComponent('SELECT id FROM kw ORDER BY id FORMAT JSON')}`, t.body.token);
    expect(rows.body.data, rows.text).toEqual([{ id: 1 }]);
  });

  it('a query reading no data source needs any read scope, and says so when there is none', async () => {
    const reader = await post(`/v0/tokens?name=reads_orders&scope=${encodeURIComponent('DATASOURCES:READ:orders')}`);
    const r = await get(`/v0/sql?q=${encodeURIComponent('SELECT 1 AS x FORMAT JSON')}`, reader.body.token);
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ x: 1 }]);
    // A pipe reader (an end user's JWT, say) calls endpoints, not the Query API.
    const piper = await post('/v0/tokens?name=reads_pipe&scope=PIPES:READ:org_orders');
    expect((await get(`/v0/sql?q=${encodeURIComponent('SELECT 1 AS x FORMAT JSON')}`, piper.body.token)).status).toBe(403);
    // A token that reads no data source: the 403 names scopes a token can be given (it named the
    // bare DATASOURCES:READ, which no token can hold).
    const none = await get(`/v0/sql?q=${encodeURIComponent('SELECT 1 AS x FORMAT JSON')}`, tokensOnly);
    expect(none.status, none.text).toBe(403);
    expect(none.body.error).toMatch(/has no data source read scope: a query needs DATASOURCES:READ:<name> \(of any data source\) or ADMIN/);
  });

  it('an engine error from a call does not show the compiled SQL of the pipes behind it', async () => {
    const reader = await post('/v0/tokens?name=pipe_reader_q&scope=PIPES:READ:org_orders');
    const r = await get(`/v0/pipes/org_orders.json?q=${encodeURIComponent('SELECT zzz FROM _')}`, reader.body.token);
    expect(r.status, r.text).toBe(422);
    expect(r.body.error).toMatch(/Unknown expression identifier `zzz`/);
    // Not the node names, the data source, the filter or its literal ("in scope SELECT ...").
    expect(r.body.error).not.toMatch(/in scope|FROM orders|raw|'acme'/);
    // Every engine error, not only unknown names: wrong types, GROUP BY, a missing alias; also
    // through /v0/sql over the pipe. What each is about stays.
    for (const [path, about] of [
      [`/v0/pipes/org_orders.json?q=${encodeURIComponent("SELECT org + 'a' FROM _")}`, /Illegal types? .*of arguments? of function plus/],
      [`/v0/pipes/org_orders.json?q=${encodeURIComponent('SELECT * FROM _, numbers(2)')}`, /no alias for subquery or table function numbers\(2\)/],
      [`/v0/pipes/org_orders.json?q=${encodeURIComponent('SELECT n FROM _ GROUP BY org')}`, /not under aggregate function/],
      // A literal shaped like the engine's hint, and shapes without an "in scope" marker.
      [`/v0/pipes/org_orders.json?q=${encodeURIComponent("SELECT '. Maybe you meant', org + 'a' FROM _")}`, /Illegal types? /],
      [`/v0/pipes/org_orders.json?q=${encodeURIComponent('SELECT org FROM _ FINAL')}`, /./],
      [`/v0/pipes/org_orders.json?q=${encodeURIComponent('SELECT org FROM _ ARRAY JOIN org')}`, /./],
    ] as const) {
      const e = await get(path, reader.body.token);
      expect(e.status, e.text).toBeGreaterThanOrEqual(400);
      expect(e.body.error).toMatch(about);
      expect(e.body.error, path).not.toMatch(/in scope|in query|FROM orders|raw|'acme'/i);
    }
  });

  it('a hidden pipe that reads no data source stays hidden (FINAL, ARRAY JOIN); the save check of a pipe reading one the saver may not read asks nothing', async () => {
    const json = { 'Content-Type': 'application/json' };
    expect((await post('/v0/pipes', JSON.stringify({ name: 'prices', nodes: [{ name: 'p', sql: "SELECT arrayJoin([('gold', 0.42), ('std', 0.97)]) AS q, q.1 AS plan, q.2 AS margin", type: 'endpoint' }] }), json)).status).toBe(200);
    expect((await post('/v0/pipes', JSON.stringify({ name: 'plans', nodes: [{ name: 'p', sql: 'SELECT plan FROM prices', type: 'endpoint' }] }), json)).status).toBe(200);
    const reader = (await post('/v0/tokens?name=plans_only&scope=PIPES:READ:plans')).body.token as string;
    for (const q of ['SELECT * FROM _ FINAL', 'SELECT * FROM _ SAMPLE 0.5', 'SELECT * FROM _ AS x ARRAY JOIN x.plan']) {
      const r = await get(`/v0/pipes/plans.json?q=${encodeURIComponent(q)}`, reader);
      expect(r.status, r.text).toBeGreaterThanOrEqual(400);
      expect(r.text, q).not.toMatch(/0\.42|margin|arrayJoin/);
    }
    const creator = (await post('/v0/tokens?name=creator_only&scope=PIPES:CREATE')).body.token as string;
    const probe = await post('/v0/pipes', JSON.stringify({ name: 'probe', nodes: [{ name: 'n', sql: 'SELECT nope FROM prices' }] }), json, creator);
    expect(probe.text).not.toMatch(/0\.42|margin|arrayJoin/);
  });

  it('a filtered token\'s unfinished query says it ends too early, with no position in the compiled query', async () => {
    const t = (await post(`/v0/tokens?name=acme_unfinished&scope=${encodeURIComponent("DATASOURCES:READ:orders:org != 'zzSECRETzz'")}`)).body.token as string;
    const r = await get(`/v0/sql?q=${encodeURIComponent('SELECT * FROM orders WHERE')}`, t);
    expect(r.status, r.text).toBe(400);
    expect(r.body.error).toMatch(/ends before it is complete/);
    expect(r.body.error).not.toMatch(/position \d+|max_execution_time/);
  });

  it('a filtered token\'s engine errors (/v0/sql, a pipe\'s save check) do not show its filter', async () => {
    const t = (await post(`/v0/tokens?name=acme_hidden&scope=${encodeURIComponent("DATASOURCES:READ:orders:org != 'zzSECRETzz'")}&scope=PIPES:CREATE`)).body.token as string;
    for (const q of ['SELECT * FROM orders FINAL', 'SELECT * FROM orders SAMPLE 0.5', 'SELECT * FROM orders ARRAY JOIN org']) {
      const r = await get(`/v0/sql?q=${encodeURIComponent(q)}`, t);
      expect(r.status, r.text).toBeGreaterThanOrEqual(400);
      expect(r.text, q).not.toContain('zzSECRETzz');
    }
    const saved = await post('/v0/pipes', JSON.stringify({ name: 'hidden_check', nodes: [{ name: 'n', sql: 'SELECT * FROM orders FINAL' }] }), { 'Content-Type': 'application/json' }, t);
    expect(saved.status, saved.text).toBeGreaterThanOrEqual(400);
    expect(saved.text).not.toContain('zzSECRETzz');
  });

  it('a good filter still works, and several filters on one data source all apply', async () => {
    const a = await post(`/v0/tokens?name=acme_rows&scope=${encodeURIComponent("DATASOURCES:READ:orders:org = 'acme'")}`);
    expect(a.status, a.text).toBe(200);
    const rows = await get(`/v0/sql?q=${encodeURIComponent('SELECT id FROM orders ORDER BY id FORMAT JSON')}`, a.body.token);
    expect(rows.body.data).toEqual([{ id: 1 }, { id: 2 }]);
    const two = await post(`/v0/tokens?name=two_rows&scope=${encodeURIComponent("DATASOURCES:READ:orders:org = 'acme'")}&scope=${encodeURIComponent('DATASOURCES:READ:orders:id > 1')}`);
    expect(two.status, two.text).toBe(200);
    const r2 = await get(`/v0/sql?q=${encodeURIComponent('SELECT id FROM orders ORDER BY id FORMAT JSON')}`, two.body.token);
    expect(r2.body.data).toEqual([{ id: 2 }]);
  });

  it('a filtered token does not get the whole table\'s row count and size', async () => {
    const t = (await post(`/v0/tokens?name=acme_stats&scope=${encodeURIComponent("DATASOURCES:READ:orders:org = 'acme'")}`)).body.token as string;
    const r = await get('/v0/datasources/orders', t);
    expect(r.status, r.text).toBe(200);
    expect(r.body.statistics).toBeUndefined();
    expect(r.body.quarantine_rows).toBeUndefined();
    const full = await get('/v0/datasources/orders');
    expect(full.body.statistics.row_count).toBe(3);
  });

  it('the query around a filtered data source never computes on the rows the filter drops (no value in an engine error)', async () => {
    const t = (await post(`/v0/tokens?name=acme_only_rows&scope=${encodeURIComponent("DATASOURCES:READ:orders:org = 'acme'")}`)).body.token as string;
    // A JOIN key computed over the data source: the optimizer evaluated it on every row before
    // the filter, and the cast's error quoted the value of a hidden row ('globex').
    for (const q of [
      "SELECT * FROM orders e JOIN (SELECT 1 AS x) t ON toUInt8(if(e.org IN ('acme'), '1', e.org)) = t.x FORMAT JSON",
      "SELECT count() AS c FROM orders WHERE throwIf(org = 'globex') = 0 FORMAT JSON",
      "SELECT toUInt8(if(org = 'acme', '1', org)) AS v FROM orders FORMAT JSON",
    ]) {
      const r = await get(`/v0/sql?q=${encodeURIComponent(q)}`, t);
      expect(r.text, q).not.toContain('globex');
      expect(r.status, `${q}: ${r.text}`).toBe(200);
    }
  });
});

// A black-box round: a filter on a quarantine table or a service data source was minted (and
// shown by GET /v0/tokens) and applied nowhere: its reader read every row. And a data source's
// filter did not narrow its quarantine table.
describe('row filters on quarantine tables and service data sources', () => {
  const sql = (q: string, token: string) => get(`/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`, token);
  const mint = async (name: string, ...scopes: string[]) => {
    const r = await post(`/v0/tokens?name=${name}&${scopes.map((s) => `scope=${encodeURIComponent(s)}`).join('&')}`);
    expect(r.status, r.text).toBe(200);
    return r.body.token as string;
  };
  beforeAll(async () => {
    // Refused rows of both orgs (the id is not a number).
    const r = await post('/v0/datasources?name=orders&mode=append&header=false', 'x1,acme\nx2,globex\nx3,globex\n', { 'Content-Type': 'text/csv' });
    expect(r.body, r.text).toMatchObject({ quarantine_rows: 3 });
  });

  it("a quarantine table's own filter applies, through /v0/sql and through a pipe (a JWT's too)", async () => {
    const t = await mint('q_acme', "DATASOURCES:READ:orders_quarantine:org = 'acme'");
    const r = await sql('SELECT org, c__raw FROM orders_quarantine ORDER BY c__line', t);
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ org: 'acme', c__raw: 'x1,acme' }]);
    expect(r.text).not.toContain('globex');
    const p = await post('/v0/pipes', JSON.stringify({ name: 'refused_by_org', nodes: [{ name: 'n', sql: 'SELECT org, count() AS c FROM orders_quarantine GROUP BY org ORDER BY org', type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
    expect(p.status, p.text).toBe(200);
    const jwt = await jwtFor({ name: 'q_acme_jwt', scopes: [{ type: 'PIPES:READ', resource: 'refused_by_org' }, { type: 'DATASOURCES:READ', resource: 'orders_quarantine', filter: "org = 'acme'" }] });
    const e = await get('/v0/pipes/refused_by_org.json', jwt);
    expect(e.status, e.text).toBe(200);
    expect(e.body.data).toEqual([{ org: 'acme', c: 1 }]);
  });

  it("a data source's filter narrows its quarantine table too; a filter that cannot run there answers an error, never every row", async () => {
    const t = await mint('ds_acme_q', "DATASOURCES:READ:orders:org = 'acme'", 'DATASOURCES:READ:orders_quarantine');
    const r = await sql('SELECT org FROM orders_quarantine', t);
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ org: 'acme' }]);
    // id > 1 compares the quarantine's text with a number: the engine refuses it.
    const n = await mint('ds_id_q', 'DATASOURCES:READ:orders:id > 1', 'DATASOURCES:READ:orders_quarantine');
    const bad = await sql('SELECT org FROM orders_quarantine', n);
    expect(bad.status, bad.text).toBeGreaterThanOrEqual(400);
    expect(bad.body).toMatchObject({ error: expect.any(String), code: expect.any(String) });
    expect(bad.text).not.toContain('globex');
  });

  it('a service data source\'s filter applies (tinybird.* and roost.audit_log), and one naming a column it lacks is refused when minted', async () => {
    const t = await mint('svc_filtered', "DATASOURCES:READ:tinybird.datasources_ops_log:event_type = 'create'", "DATASOURCES:READ:roost.audit_log:event = 'token.created'");
    let ops: Array<{ event_type: string }> = [];
    for (let i = 0; i < 50; i++) {
      const all = await sql('SELECT DISTINCT event_type FROM tinybird.datasources_ops_log ORDER BY event_type', admin);
      if (all.body.data.length > 1) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    ops = (await sql('SELECT DISTINCT event_type FROM tinybird.datasources_ops_log ORDER BY event_type', t)).body.data;
    expect(ops).toEqual([{ event_type: 'create' }]);
    const events = await sql('SELECT DISTINCT event FROM roost.audit_log', t);
    expect(events.status, events.text).toBe(200);
    expect(events.body.data.every((e: { event: string }) => e.event === 'token.created')).toBe(true);
    expect(events.body.data.length).toBe(1);
    for (const s of ['DATASOURCES:READ:roost.audit_log:nosuch = 1', 'DATASOURCES:READ:orders_quarantine:nosuch = 1', 'DATASOURCES:READ:tinybird.pipe_stats:nosuch = 1']) {
      const r = await post(`/v0/tokens?name=bad_svc&scope=${encodeURIComponent(s)}`);
      expect(r.status, s).toBe(400);
      expect(r.body, s).toMatchObject({ code: 'INVALID_PARAMETER', error: expect.stringContaining('nosuch') });
    }
  });
});
