/**
 * Engine errors in the user's names: an error from /v0/sql or a pipe endpoint (and the rows
 * it leaves in tinybird.pipe_stats_rt / tinybird.endpoint_errors) names data sources, pipe
 * nodes and tinybird.* service data sources, never a workspace database (its own or
 * another's), the service database or a stage table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { publicNames } from '../src/query/public-names.js';
import type { State } from '../src/state/state.js';

let srv: RunningServer;
let token: string;
let ownDb: string;
let otherDb: string;

const get = (p: string, t = token) => call(`${srv.url}${p}`, { token: t });
const post = (p: string, body?: string, headers: Record<string, string> = { 'Content-Type': 'text/csv' }, t = token) =>
  call(`${srv.url}${p}`, { method: 'POST', token: t, body, headers });
const q = (sql: string, t = token) => get(`/v0/sql?q=${encodeURIComponent(sql)}`, t);
const sqlRows = async (sql: string) => {
  const r = await q(`${sql} FORMAT JSONEachRow`);
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
};

/** Nothing of Roost's layout in an error text. */
function expectNoInternalNames(text: string): void {
  expect(text).not.toContain(ownDb);
  expect(text).not.toContain(otherDb);
  expect(text).not.toMatch(/ws_[a-z0-9_]*_[0-9a-f]{8}/);
  expect(text).not.toContain('roost_svc_');
  expect(text).not.toContain('__stage_');
}

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await post(`/v0/datasources?name=events&schema=${encodeURIComponent('id UInt32, country String')}`)).status).toBe(200);
  expect((await post('/v0/datasources?name=events&mode=append', '1,ES\n2,FR\n')).status).toBe(200);
  expect((await call(`${srv.url}/v0/tenants/local/workspaces`, { method: 'POST', token: srv.operatorToken, body: JSON.stringify({ name: 'other' }) })).status).toBeLessThan(300);
  const wss = (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces as Array<{ name: string; database: string }>;
  ownDb = wss.find((w) => w.name === 'default')!.database;
  otherDb = wss.find((w) => w.name === 'other')!.database;
  expect(ownDb).toMatch(/^ws_/);
  // Saved unchecked (ignore_sql_errors): what is tested is the call's error.
  const pipe = await post('/v0/pipes', JSON.stringify({
    name: 'bad_col',
    ignore_sql_errors: true,
    nodes: [
      { name: 'base', sql: 'SELECT id, country FROM events' },
      { name: 'leaf', sql: 'SELECT nope FROM base', type: 'endpoint' },
    ],
  }), { 'Content-Type': 'application/json' });
  expect(pipe.status, pipe.text).toBe(200);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('/v0/sql engine errors', () => {
  it('an unknown column names the data source, not the workspace database', async () => {
    const r = await q('SELECT nope FROM events');
    expect(r.status).toBe(422);
    expect(r.body.code).toBe('QUERY_FAILED');
    expect(r.body.clickhouse_code).toBe(47);
    expectNoInternalNames(r.text);
    expect(r.body.error).toContain('FROM events');
  });

  it('quarantine tables and joins keep their data source names', async () => {
    const r = await q('SELECT * FROM events AS e INNER JOIN events_quarantine AS q USING (nope)');
    expect(r.status).toBe(422);
    expectNoInternalNames(r.text);
    expect(r.body.error).toContain('FROM events AS e');
    expect(r.body.error).toContain('events_quarantine AS q');
  });

  it('service data sources are named tinybird.*, without the service database or view', async () => {
    const r = await q('SELECT nope FROM tinybird.pipe_stats_rt');
    expect(r.status).toBe(422);
    expectNoInternalNames(r.text);
    expect(r.body.error).toContain('tinybird.pipe_stats_rt');
    expect(r.body.error).not.toContain("workspace = 'default'");
    // The view (its workspace condition names its column qualified) is not shown either.
    expect(r.body.error).not.toMatch(/workspace_id|WHERE|SELECT start_datetime/);
    const agg = await q('SELECT nope FROM tinybird.pipe_stats');
    expect(agg.status).toBe(422);
    expect(agg.body.error).not.toMatch(/workspace_id|WHERE|GROUP BY/);
  });

  it("a row-filtered token's error shows neither the database nor the filter", async () => {
    const t = (await post(`/v0/tokens?name=fr_only&scope=${encodeURIComponent("DATASOURCES:READ:events:country = 'FR'")}`)).body.token as string;
    expect(t).toBeTruthy();
    const r = await q('SELECT nope FROM events', t);
    expect(r.status).toBe(422);
    expectNoInternalNames(r.text);
    expect(r.body.error).not.toContain("'FR'");
    // The quoted query (the filter's view) is cut: what the error is about stays.
    expect(r.body.error).toContain('`nope`');
    expect(r.body.error).not.toMatch(/in scope/i);
  });

  it("PREWHERE over a row-filtered token's data source is a 422 saying to write WHERE; WHERE answers the filtered rows", async () => {
    const t = (await post(`/v0/tokens?name=fr_prewhere&scope=${encodeURIComponent("DATASOURCES:READ:events:country = 'FR'")}`)).body.token as string;
    expect(t).toBeTruthy();
    // The admin reads the table directly: PREWHERE works there.
    expect((await q('SELECT count() AS c FROM events PREWHERE id > 0 FORMAT JSON')).body.data).toEqual([{ c: 2 }]);
    const r = await q('SELECT count() AS c FROM events PREWHERE id > 0', t);
    expect(r.status, r.text).toBe(422);
    expect(r.body).toMatchObject({ code: 'SQL_INVALID', sql_code: 'ILLEGAL_PREWHERE' });
    expect(r.body.error).toContain('write the condition in WHERE');
    expectNoInternalNames(r.text);
    expect(r.body.error).not.toContain("'FR'");
    const w = await q('SELECT count() AS c FROM events WHERE id > 0 FORMAT JSON', t);
    expect(w.status, w.text).toBe(200);
    expect(w.body.data).toEqual([{ c: 1 }]);
  });

  it('pipeline=<pipe>: an error through a node names no database', async () => {
    const r = await get(`/v0/sql?pipeline=bad_col&q=${encodeURIComponent('SELECT missing FROM base')}`);
    expect(r.status).toBe(422);
    expectNoInternalNames(r.text);
  });
});

describe('pipe endpoint engine errors', () => {
  it('the answer, pipe_stats_rt.error_message and endpoint_errors.error name no database', async () => {
    const r = await get('/v0/pipes/bad_col.json');
    expect(r.status).toBe(422);
    expectNoInternalNames(r.text);
    // The unknown name, not the compiled query around it (its nodes are not the caller's to see).
    expect(r.body.error).toMatch(/Unknown expression identifier `/);
    expect(r.body.error).not.toMatch(/in scope/);
    const id = r.headers.get('x-request-id');
    let stats: Array<Record<string, unknown>> = [];
    let errors: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 60; i++) {
      stats = await sqlRows(`SELECT error_message FROM tinybird.pipe_stats_rt WHERE request_id = '${id}'`);
      errors = await sqlRows(`SELECT error FROM tinybird.endpoint_errors WHERE request_id = '${id}'`);
      if (stats.length === 1 && errors.length === 1) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    expect(stats).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(stats[0]!.error_message).toBe(r.body.error);
    expect(errors[0]!.error).toBe(r.body.error);
    expectNoInternalNames(String(stats[0]!.error_message));
    expectNoInternalNames(String(errors[0]!.error));
  });

  it('q= over an endpoint: the error names no database', async () => {
    const r = await get(`/v0/pipes/bad_col.json?q=${encodeURIComponent('SELECT count() FROM _')}`);
    expect(r.status).toBe(422);
    expectNoInternalNames(r.text);
  });
});

describe('publicNames (the rewrite itself)', () => {
  // A state with one workspace "default" (database ws_default_0123abcd) holding data source
  // "clicks" stored as table "t_clicks", and another workspace's database ws_other_89abcdef.
  const stateWith = (database: string) => ({
    get: (kind: string, ...path: string[]) => (kind === 'workspaces' && path[1] === 'default'
      ? { id: '0123abcd-0000', tenant: 'acme', name: 'default', database, createdAt: '' } : undefined),
    list: (kind: string) => (kind === 'datasources' ? [{ name: 'clicks', table: 't_clicks' }] : []),
  } as unknown as State);
  const m = publicNames(stateWith('ws_default_0123abcd'), 'acme', 'default').message;

  it('qualified names, quoted or not, become data source names', () => {
    expect(m('Unknown identifier in scope SELECT x FROM ws_default_0123abcd.t_clicks AS clicks')).toBe('Unknown identifier in scope SELECT x FROM clicks AS clicks');
    expect(m('Table `ws_default_0123abcd`.`t_clicks_quarantine` is empty')).toBe('Table clicks_quarantine is empty');
    expect(m("Table ws_default_0123abcd.unknown_t doesn't exist")).toBe("Table unknown_t doesn't exist");
  });

  it('stage, merge and old tables are their data source', () => {
    expect(m('Table ws_default_0123abcd.t_clicks__stage_0123456789ab is locked')).toBe('Table clicks is locked');
    expect(m('Table ws_default_0123abcd.t_clicks__old__stage_0123456789ab is locked')).toBe('Table clicks is locked');
    expect(m('Table ws_default_0123abcd.t_clicks_quarantine__stage_0123456789ab')).toBe('Table clicks_quarantine');
    expect(m('while inserting into t_clicks__merge__stage_0123456789ab')).toBe('while inserting into clicks');
  });

  it("databases: the workspace's own is its name; others and the service database are never named", () => {
    expect(m("Database ws_default_0123abcd doesn't exist")).toBe("Database default doesn't exist");
    expect(m("Database ws_other_89abcdef doesn't exist")).not.toContain('ws_other');
    expect(m('SELECT * FROM ws_other_89abcdef.events')).toBe('SELECT * FROM events');
    expect(m("FROM (SELECT a, b FROM roost_svc_acme.endpoint_errors WHERE workspace = 'default') AS x")).toBe('FROM tinybird.endpoint_errors AS x');
    expect(m('Database roost_svc_acme is busy')).toBe('Database tinybird is busy');
  });

  it('a row-filter view becomes its data source, filter and all', () => {
    expect(m("in scope SELECT nope FROM (SELECT * FROM ws_default_0123abcd.t_clicks WHERE (country = 'F)R')) AS clicks SETTINGS x = 1"))
      .toBe('in scope SELECT nope FROM clicks AS clicks SETTINGS x = 1');
  });

  it("a restored workspace's database (its _r<6 hex> suffix) is named like any other", () => {
    const r = publicNames(stateWith('ws_default_0123abcd_r4f0957'), 'acme', 'default').message;
    expect(r('Unknown identifier in scope SELECT nope FROM ws_default_0123abcd_r4f0957.t_clicks AS clicks')).toBe('Unknown identifier in scope SELECT nope FROM clicks AS clicks');
    expect(r("Database ws_default_0123abcd_r4f0957 doesn't exist")).toBe("Database default doesn't exist");
    expect(r('FROM ws_other_89abcdef_r0a0b0c.events')).toBe('FROM events');
  });

  it('text without internal names is unchanged', () => {
    expect(m('Code: 47. Unknown identifier `nope` in scope SELECT nope FROM events')).toBe('Code: 47. Unknown identifier `nope` in scope SELECT nope FROM events');
  });
});

describe('a query that ends unfinished', () => {
  it('is told so, not answered with a syntax error inside the settings Roost appends', async () => {
    for (const sql of ['SELECT', 'SELECT -- nothing yet', 'SELECT 1,', 'SELECT 1 +', 'SELECT id AS', 'SELECT id FROM events WHERE']) {
      const r = await q(sql);
      // A syntax error is the request's text: 400 SQL_SYNTAX (API.md keeps 422 for valid syntax).
      expect(r.status, sql).toBe(400);
      expect(r.body.code, sql).toBe('SQL_SYNTAX');
      expect(r.body.error, sql).toMatch(/Syntax error: the query ends before it is complete/);
      expect(r.body.error, sql).not.toMatch(/SETTINGS|readonly|max_execution_time|max_threads|position/);
    }
    // A syntax error inside the query keeps ClickHouse's words and position, without the clause.
    const mid = await q('SELECT 1 2 3 FROM events');
    expect(mid.status).toBe(400);
    expect(mid.body.error).toMatch(/Syntax error: failed at position/);
    expect(mid.body.error).not.toMatch(/the query ends before|readonly|max_execution_time/);
  });
});

describe('a failing function\'s expression dump', () => {
  it('is not shown to a caller of a pipe that reads another pipe it may not read (its literals are that pipe\'s)', async () => {
    for (const [name, sql] of [
      ['inner_secret', "SELECT id, cityHash64(concat('INNER_SECRET_XYZ', country)) AS h FROM events WHERE country != 'hidden_value'"],
      ['outer_open', 'SELECT id, h FROM inner_secret'],
    ]) {
      const r = await post('/v0/pipes', JSON.stringify({ name, nodes: [{ name: `${name}_n`, sql, type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
      expect(r.status, r.text).toBe(200);
    }
    const t = (await post('/v0/tokens?name=outer_only&scope=PIPES:READ:outer_open')).body.token as string;
    expect((await get('/v0/pipes/inner_secret.json', t)).status).toBe(403);
    for (const r of [
      await get(`/v0/pipes/outer_open.json?q=${encodeURIComponent('SELECT * FROM _ WHERE intDiv(h, id - id) = 1')}`, t),
      await q('SELECT * FROM outer_open WHERE intDiv(h, id - id) = 1', t),
      await q("SELECT * FROM outer_open WHERE throwIf(h > 0, 'stop') = 0", t),
    ]) {
      expect(r.status, r.text).toBe(422);
      expect(r.text).not.toMatch(/hidden_value|INNER_SECRET|__table|FUNCTION /);
      expect(r.body.error).toMatch(/\((ILLEGAL_DIVISION|FUNCTION_THROW_IF_VALUE_IS_NON_ZERO)\)/);
    }
  });
});
