/**
 * Malformed-input sweep over every route (tenth session): odd path segments, query values that
 * are not UTF-8, broken or wrong-shaped JSON bodies, fields of the wrong type, unknown enum
 * values and bad numbers must each get a 4xx JSON `{error, code}`: never a 5xx, a non-JSON
 * body, a hang or a crash. Table-driven; the two defects the sweep found have their own tests
 * below (a template chain that overflowed the stack, a lone surrogate that stopped the tenant's
 * service log). Everything over real HTTP against the real server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

type Who = 'ws' | 'op' | 'none';
interface Case { label: string; method: string; path: string; who: Who; body?: string; type?: string; code?: string | RegExp }

/** Every route as registered (src/api/*.ts, auth/saml/routes.ts), with its path parameters filled by `:x`. */
const ROUTES: Array<[method: string, path: string, who: Who]> = [
  ['POST', '/v0/datasources', 'ws'], ['GET', '/v0/datasources', 'ws'], ['GET', '/v0/datasources/:x', 'ws'], ['PUT', '/v0/datasources/:x', 'ws'],
  ['POST', '/v0/datasources/:x/truncate', 'ws'], ['POST', '/v0/datasources/:x/delete', 'ws'], ['DELETE', '/v0/datasources/:x', 'ws'],
  ['POST', '/v0/analyze', 'ws'], ['POST', '/v0/events', 'ws'], ['GET', '/v0/jobs/:x', 'ws'],
  ['POST', '/v0/pipes', 'ws'], ['GET', '/v0/pipes', 'ws'], ['GET', '/v0/pipes/:x', 'ws'], ['PUT', '/v0/pipes/:x', 'ws'], ['DELETE', '/v0/pipes/:x', 'ws'],
  ['POST', '/v0/pipes/:x/nodes', 'ws'], ['PUT', '/v0/pipes/p1/nodes/:x', 'ws'], ['DELETE', '/v0/pipes/p1/nodes/:x', 'ws'],
  ['POST', '/v0/pipes/p1/nodes/:x/endpoint', 'ws'], ['DELETE', '/v0/pipes/p1/nodes/:x/endpoint', 'ws'], ['GET', '/v0/pipes/:x.json', 'ws'], ['POST', '/v0/pipes/:x.csv', 'ws'], ['GET', '/v0/pipes/openapi.json', 'ws'],
  ['GET', '/v0/sql', 'ws'], ['POST', '/v0/sql', 'ws'],
  ['POST', '/v0/tokens', 'ws'], ['GET', '/v0/tokens', 'ws'], ['GET', '/v0/tokens/:x', 'ws'], ['PUT', '/v0/tokens/:x', 'ws'], ['DELETE', '/v0/tokens/:x', 'ws'], ['POST', '/v0/tokens/:x/refresh', 'ws'],
  ['POST', '/v0/tenants', 'op'], ['GET', '/v0/tenants', 'op'], ['GET', '/v0/tenants/:x', 'op'], ['PATCH', '/v0/tenants/:x', 'op'], ['DELETE', '/v0/tenants/:x', 'op'],
  ['POST', '/v0/tenants/:x/workspaces', 'op'], ['GET', '/v0/tenants/:x/workspaces', 'op'], ['GET', '/v0/tenants/t1/workspaces/:x', 'op'], ['PATCH', '/v0/tenants/t1/workspaces/:x', 'op'], ['DELETE', '/v0/tenants/t1/workspaces/:x', 'op'],
  ['POST', '/v0/tenants/:x/backups', 'op'], ['GET', '/v0/tenants/:x/backups', 'op'], ['GET', '/v0/tenants/t1/backups/:x', 'op'], ['GET', '/v0/tenants/t1/backups/:x/archive', 'op'],
  ['PUT', '/v0/tenants/t1/backups/:x', 'op'], ['POST', '/v0/tenants/t1/backups/:x/restore', 'op'],
  ['GET', '/v0/tenants/:x/connections', 'op'], ['POST', '/v0/tenants/:x/connections', 'op'], ['GET', '/v0/tenants/t1/connections/:x', 'op'], ['PATCH', '/v0/tenants/t1/connections/:x', 'op'], ['DELETE', '/v0/tenants/t1/connections/:x', 'op'],
  ['GET', '/v0/tenants/:x/mappings', 'op'], ['PUT', '/v0/tenants/:x/mappings', 'op'], ['POST', '/v0/tenants/:x/mappings/test', 'op'], ['DELETE', '/v0/tenants/:x/sessions', 'op'],
  ['GET', '/auth/oidc/:x/c1/callback', 'none'], ['POST', '/auth/oidc/:x/c1/backchannel-logout', 'none'],
  ['GET', '/auth/saml/:x/c1/metadata', 'none'], ['GET', '/auth/saml/:x/c1/login', 'none'], ['POST', '/auth/saml/:x/c1/acs', 'none'],
];

/** Path segments no route has a resource for: NUL, bytes that are not UTF-8, an encoded slash, quotes, a bad escape, a newline, 10 KB. */
const ODD_SEGMENTS = ['%00', '%FF%FE', 'a%2Fb', "'", '%60', '%22', '%ZZ', '%0A', 'x'.repeat(10_000)];

/** Bodies that are no JSON object: truncated, other JSON values, nested 100 000 deep, a lone surrogate. */
const BAD_JSON = ['{', '{"name":', '[]', 'null', '1', '"s"', '['.repeat(100_000), '{"name":"\\ud800"}'];

const JSON_BODY_ROUTES: Array<[method: string, path: string, who: Who]> = [
  ['POST', '/v0/tenants', 'op'], ['PATCH', '/v0/tenants/t1', 'op'], ['POST', '/v0/tenants/t1/workspaces', 'op'], ['PATCH', '/v0/tenants/t1/workspaces/main', 'op'],
  ['POST', '/v0/tenants/t1/connections', 'op'], ['PUT', '/v0/tenants/t1/mappings', 'op'], ['POST', '/v0/tenants/t1/mappings/test', 'op'],
  ['POST', '/v0/pipes', 'ws'], ['PUT', '/v0/pipes/p1', 'ws'], ['PUT', '/v0/datasources/ds1', 'ws'], ['POST', '/v0/datasources/ds1/delete', 'ws'],
  ['POST', '/v0/tokens?name=tj', 'ws'], ['PUT', '/v0/tokens/tk1', 'ws'],
];

/** Fields of the wrong type or value, route by route. */
const WRONG_FIELDS: Array<[method: string, path: string, who: Who, body: unknown, code: string | RegExp]> = [
  ['POST', '/v0/tenants', 'op', { slug: 1 }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants', 'op', { slug: 'tx', name: 1 }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants', 'op', { slug: 'tx', domains: 1 }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants', 'op', { slug: 'tx', domains: [1] }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants', 'op', { slug: 'tx', placement: 1 }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants', 'op', { slug: 'tx', placement: { type: 'nope' } }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants', 'op', { slug: 'tx', limits: [] }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants', 'op', { slug: 'tx', limits: { query_threads: -1 } }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants', 'op', { slug: 'tx', limits: { query_threads: 1.5 } }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants', 'op', { slug: 'tx', limits: { query_threads: 1e300 } }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants', 'op', { slug: 'tx', limits: { nope: 1 } }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants', 'op', { slug: '../x' }, 'INVALID_PARAMETER'],
  ['PATCH', '/v0/tenants/t1', 'op', { limits: { concurrent_queries: 'x' } }, 'INVALID_PARAMETER'],
  ['PATCH', '/v0/tenants/t1', 'op', { slug: 't2' }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants/t1/workspaces', 'op', { name: 1 }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants/t1/workspaces', 'op', { name: '' }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants/t1/connections', 'op', { issuer: 1 }, 'INVALID_PARAMETER'],
  ['PUT', '/v0/tenants/t1/mappings', 'op', { rules: 1 }, 'INVALID_PARAMETER'],
  ['PUT', '/v0/tenants/t1/mappings', 'op', { rules: [null] }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants/t1/mappings/test', 'op', { claims: 1 }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tenants/t1/mappings/test', 'op', { claims: {}, rules: [1] }, 'INVALID_PARAMETER'],
  ['POST', '/v0/pipes', 'ws', { name: 1 }, 'INVALID_PARAMETER'],
  ['POST', '/v0/pipes', 'ws', { name: 'px', nodes: 1 }, /^INVALID_/],
  ['POST', '/v0/pipes', 'ws', { name: 'px', nodes: [1] }, /^INVALID_/],
  ['POST', '/v0/pipes', 'ws', { name: 'px', nodes: [{ name: 1, sql: 2 }] }, 'INVALID_PARAMETER'],
  ['POST', '/v0/pipes', 'ws', { name: 'px', nodes: [{ name: 'n', sql: 'SELECT 1', type: 'nope' }] }, 'INVALID_PARAMETER'],
  ['PUT', '/v0/pipes/p1', 'ws', { name: 1 }, 'INVALID_PARAMETER'],
  ['PUT', '/v0/datasources/ds1', 'ws', { name: [] }, 'INVALID_PARAMETER'],
  ['POST', '/v0/datasources/ds1/delete', 'ws', { delete_condition: 1 }, /^INVALID_/],
  ['POST', '/v0/datasources/ds1/delete', 'ws', { delete_condition: 'a = 1', dry_run: 'maybe' }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tokens?name=tj', 'ws', { scopes: 1 }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tokens?name=tj', 'ws', { scopes: [1] }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tokens?name=tj', 'ws', { scopes: ['NOPE:READ'] }, 'INVALID_PARAMETER'],
  ['POST', '/v0/tokens?name=tj', 'ws', { scopes: ['DATASOURCES:READ:ds1'], limits: { rps: 'x' } }, 'INVALID_PARAMETER'],
  ['PUT', '/v0/tokens/tk1', 'ws', { description: 1 }, 'INVALID_PARAMETER'],
];

/** Query parameters with an unknown enum value or a bad number. */
const BAD_QUERY: Array<[method: string, path: string, code: string | RegExp]> = [
  ['POST', '/v0/datasources?name=dq&mode=nope', /^UNSUPPORTED_MODE|INVALID_PARAMETER$/],
  ['POST', '/v0/datasources?name=ds1&mode=append&format=nope', /^UNSUPPORTED_FORMAT|INVALID_PARAMETER$/],
  ['POST', `/v0/datasources?name=dq&schema=${encodeURIComponent('a Int32')}&engine=Nope`, 'INVALID_PARAMETER'],
  ['POST', `/v0/datasources?name=dq&schema=${encodeURIComponent('a Nope')}`, /^SCHEMA_SYNTAX|INVALID_PARAMETER$/],
  ['POST', `/v0/datasources?name=dq&schema=${encodeURIComponent('a Int32,')}`, /^SCHEMA_SYNTAX|INVALID_PARAMETER$/],
  ['POST', `/v0/datasources?name=dq&schema=${encodeURIComponent('a Int32, a Int32')}`, /^SCHEMA_SYNTAX|INVALID_PARAMETER$/],
  ['POST', '/v0/datasources?name=', 'INVALID_PARAMETER'],
  ['POST', `/v0/datasources?name=${'a'.repeat(10_240)}`, 'INVALID_PARAMETER'],
  ['POST', '/v0/datasources?name=%60x%60', 'INVALID_PARAMETER'],
  ['POST', '/v0/datasources/ds1/delete?delete_condition=a%3D1&dry_run=NaN', 'INVALID_PARAMETER'],
  ['POST', '/v0/datasources/ds1/delete?delete_condition=', 'INVALID_PARAMETER'],
  ['POST', '/v0/tokens?name=tq&scope=DATASOURCES:READ:ds1&rps=-1', 'INVALID_PARAMETER'],
  ['POST', '/v0/tokens?name=tq&scope=DATASOURCES:READ:ds1&rps=NaN', 'INVALID_PARAMETER'],
  ['POST', '/v0/tokens?name=tq&scope=DATASOURCES:READ:ds1&rps=1e309', 'INVALID_PARAMETER'],
  ['POST', '/v0/tokens?name=tq&scope=DATASOURCES:READ:ds1&expiration_time=nope', /^INVALID_PARAMETER|BAD_REQUEST$/],
  ['POST', '/v0/tokens?name=tq&scope=NOPE', 'INVALID_PARAMETER'],
  ['PUT', '/v0/tokens/tk1?rps=0', 'INVALID_PARAMETER'],
  ['GET', '/v0/sql?q=', 'INVALID_PARAMETER'],
  ['GET', `/v0/sql?q=${encodeURIComponent('SELECT 1 FORMAT Nope')}`, /^UNSUPPORTED_FORMAT|SQL_|QUERY_FAILED$/],
  ['GET', `/v0/sql?q=${encodeURIComponent("SELECT '")}`, 'SQL_SYNTAX'],
  ['GET', `/v0/sql?q=${encodeURIComponent('SELECT 1')}&pipeline=nope`, /^UNKNOWN_PIPE|NOT_FOUND$/],
  ['GET', '/v0/pipes/p1.nope', 'UNSUPPORTED_FORMAT'],
  ['GET', `/v0/pipes/p1.json?q=${encodeURIComponent('SELECT * FROM ds1')}`, /^SQL_|QUERY_FAILED|FORBIDDEN$/],
  ['POST', '/v0/pipes?name=&sql=SELECT%201', 'INVALID_PARAMETER'],
  ['POST', '/v0/pipes/p1/nodes?name=%00&sql=SELECT%201', 'INVALID_PARAMETER'],
  ['PUT', '/v0/pipes/p1?name=..%2Fx', 'INVALID_PARAMETER'],
  ['POST', '/v0/events?name=', /^INVALID_PARAMETER|UNKNOWN_DATASOURCE$/],
  ['POST', '/v0/events?name=%60', /^INVALID_PARAMETER|UNKNOWN_DATASOURCE$/],
];

function cases(): Case[] {
  const out: Case[] = [];
  for (const [method, path, who] of ROUTES) {
    if (path.includes(':x')) {
      for (const seg of ODD_SEGMENTS) out.push({ label: `segment ${seg.slice(0, 12)}`, method, path: path.replace(':x', seg), who });
    }
    // Destructive routes get a name that is not there: the check is before any lookup.
    out.push({ label: 'query value not UTF-8', method, path: `${path.replace(':x', 'nothere')}?name=%FF%FE`, who, code: 'INVALID_UTF8' });
  }
  for (const [method, path, who] of JSON_BODY_ROUTES) {
    for (const body of BAD_JSON) out.push({ label: `JSON ${body.slice(0, 16)}`, method, path, who, body, type: 'application/json' });
  }
  for (const [method, path, who, body, code] of WRONG_FIELDS) out.push({ label: `field ${JSON.stringify(body).slice(0, 60)}`, method, path, who, body: JSON.stringify(body), type: 'application/json', code });
  for (const [method, path, code] of BAD_QUERY) out.push({ label: 'query', method, path, who: 'ws', code, body: method === 'POST' && path.startsWith('/v0/events') ? '{"a":1}' : undefined });
  return out;
}

describe('malformed-input sweep', () => {
  let srv: RunningServer;
  let ws: string;
  const token = (who: Who) => (who === 'ws' ? ws : who === 'op' ? srv.operatorToken : undefined);
  const ok = (r: { status: number; text: string }, what: string) => { if (r.status >= 300) throw new Error(`${what}: ${r.status} ${r.text}`); };

  beforeAll(async () => {
    srv = await startServer();
    ws = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
    const post = (p: string, body: string | undefined, who: Who, type = 'application/json') => call(`${srv.url}${p}`, { method: 'POST', token: token(who), body, headers: body ? { 'Content-Type': type } : {} });
    ok(await post(`/v0/datasources?name=ds1&schema=${encodeURIComponent('a Int32, b String')}`, undefined, 'ws'), 'ds1');
    ok(await post('/v0/datasources?name=ds1&mode=append', '1,x\n2,y\n', 'ws', 'text/csv'), 'rows');
    ok(await post('/v0/pipes', JSON.stringify({ name: 'p1', nodes: [{ name: 'n1', sql: 'SELECT * FROM ds1', type: 'endpoint' }] }), 'ws'), 'p1');
    ok(await post('/v0/tokens?name=tk1&scope=DATASOURCES:READ:ds1', undefined, 'ws'), 'tk1');
    ok(await post('/v0/tenants', JSON.stringify({ slug: 't1' }), 'op'), 't1');
    ok(await post('/v0/tenants/t1/workspaces', JSON.stringify({ name: 'main' }), 'op'), 'workspace');
  });
  afterAll(async () => { await srv?.stop(); });

  it('every case gets a 4xx JSON {error, code} (the code where the table names one), within 10 s, and the server stays up', async () => {
    const all = cases();
    const wrong: string[] = [];
    // A few at a time: the sweep is about answers, not load.
    for (let i = 0; i < all.length; i += 8) {
      await Promise.all(all.slice(i, i + 8).map(async (c) => {
        const where = `${c.method} ${c.path.slice(0, 90)} [${c.label}]`;
        let r;
        try {
          r = await call(`${srv.url}${c.path}`, { method: c.method, token: token(c.who), body: c.body, headers: c.type ? { 'Content-Type': c.type } : {}, signal: AbortSignal.timeout(10_000) });
        } catch (e) {
          wrong.push(`${where}: no answer (${String(e)})`);
          return;
        }
        const codeOk = c.code === undefined || (typeof c.code === 'string' ? r.body?.code === c.code : c.code.test(String(r.body?.code)));
        if (r.status < 400 || r.status >= 500 || !(r.headers.get('content-type') ?? '').startsWith('application/json')
          || typeof r.body?.error !== 'string' || !r.body.error || typeof r.body?.code !== 'string' || !codeOk) {
          wrong.push(`${where}: ${r.status} ${r.text.slice(0, 200)}`);
        }
      }));
    }
    expect(wrong).toEqual([]);
    expect(all.length).toBeGreaterThan(600);
    expect((await call(`${srv.url}/v0/health`)).status).toBe(200);
    expect(srv.proc.exitCode).toBeNull();
  });

  it('a template expression that chains operators, attributes or indexes thousands deep is a 400 TEMPLATE_SYNTAX, not a stack overflow (500)', async () => {
    const chains = {
      plus: `{{ 1${' + 1'.repeat(20_000)} }}`,
      attr: `{{ x${'.y'.repeat(5_000)} }}`,
      index: `{{ x${'[0]'.repeat(5_000)} }}`,
      and: `{% if 1${' and 1'.repeat(5_000)} %}1{% end %}`,
    };
    for (const [name, expr] of Object.entries(chains)) {
      const r = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: ws, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: `chain_${name}`, nodes: [{ name: 'n', sql: `%\nSELECT ${expr} AS v`, type: 'endpoint' }] }) });
      expect(r.status, `${name}: ${r.text.slice(0, 300)}`).toBe(400);
      expect(r.body.code).toBe('TEMPLATE_SYNTAX');
      expect(r.body.error).toMatch(/nested too deeply .*split it with \{% set %\}/);
      expect(r.body.node).toBe('n');
    }
    // A chain of a realistic length still works, at save and at call.
    const r = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: ws, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'chain_ok', nodes: [{ name: 'n', sql: `%\nSELECT {{ Int32(a, 1)${' + 1'.repeat(200)} }} AS v`, type: 'endpoint' }] }) });
    expect(r.status, r.text).toBe(200);
    const got = await call(`${srv.url}/v0/pipes/chain_ok.json?a=2`, { token: ws });
    expect(got.status, got.text).toBe(200);
    expect(got.body.data).toEqual([{ v: 202 }]);
  });

  it('a rows delete whose JSON delete_condition is a number or boolean is a 400 and deletes nothing (it was taken as the condition `1`/`true`: every row)', async () => {
    await call(`${srv.url}/v0/datasources?name=del1&schema=${encodeURIComponent('a Int32')}`, { method: 'POST', token: ws });
    expect((await call(`${srv.url}/v0/datasources?name=del1&mode=append`, { method: 'POST', token: ws, body: '1\n2\n3\n', headers: { 'Content-Type': 'text/csv' } })).status).toBe(200);
    for (const cond of [1, true, null, ['a = 1'], { a: 1 }]) {
      const r = await call(`${srv.url}/v0/datasources/del1/delete`, { method: 'POST', token: ws, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ delete_condition: cond }) });
      expect(r.status, `${JSON.stringify(cond)}: ${r.text}`).toBe(400);
      expect(r.body.code).toBe('INVALID_PARAMETER');
      expect(r.body.error).toMatch(/^delete_condition must be a string/);
    }
    const count = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS c FROM del1 FORMAT JSONEachRow')}`, { token: ws });
    expect(JSON.parse(count.text)).toEqual({ c: 3 });
    // The string form works, and dry_run may still be a JSON boolean.
    const dry = await call(`${srv.url}/v0/datasources/del1/delete`, { method: 'POST', token: ws, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ delete_condition: 'a = 1', dry_run: true }) });
    expect(dry.status, dry.text).toBe(200);
    expect(dry.body.rows_to_be_deleted).toBe(1);
  });

  it('a tenant created with limits as a JSON array is a 400, not a tenant without limits', async () => {
    const r = await call(`${srv.url}/v0/tenants`, { method: 'POST', token: srv.operatorToken, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ slug: 'arrlimits', limits: [] }) });
    expect(r.status, r.text).toBe(400);
    expect(r.body.code).toBe('INVALID_PARAMETER');
    expect(r.body.error).toMatch(/^limits must be an object/);
    expect((await call(`${srv.url}/v0/tenants/arrlimits`, { token: srv.operatorToken })).status).toBe(404);
  });

  it('a JSON body holding a lone surrogate escape is a 400 INVALID_UTF8 (it used to be logged as sent, and the engine then refused every later write of the tenant\'s service log)', async () => {
    const lone = [
      ['/v0/sql', '{"q":"SELECT 1","x":"\\ud800"}'],
      ['/v0/sql', '{"q":"SELECT \'\\udc00\'"}'],
      ['/v0/pipes/p1.json', '{"x":"a\\ud800b"}'],
      ['/v0/pipes/p1.json', '{"\\ud800":"x"}'],
    ] as const;
    for (const [p, body] of lone) {
      const r = await call(`${srv.url}${p}`, { method: 'POST', token: ws, headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'sweep-lone' }, body });
      expect(r.status, `${p} ${body}: ${r.text}`).toBe(400);
      expect(r.body.code).toBe('INVALID_UTF8');
      expect(r.body.error).toMatch(/lone surrogate/);
    }
    // A pair (an emoji written as escapes) is text: still accepted.
    const pair = await call(`${srv.url}/v0/sql`, { method: 'POST', token: ws, headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'sweep-after' }, body: '{"q":"SELECT \'\\ud83d\\ude00\' AS e FORMAT JSONEachRow"}' });
    expect(pair.status, pair.text).toBe(200);
    expect(JSON.parse(pair.text)).toEqual({ e: '😀' });
    // And the service log goes on: the call after them is in pipe_stats_rt (flushed every second).
    let rows: string[] = [];
    for (let i = 0; i < 40 && !rows.length; i++) {
      await new Promise((r) => setTimeout(r, 250));
      const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent("SELECT request_id FROM tinybird.pipe_stats_rt WHERE request_id = 'sweep-after' FORMAT JSONEachRow")}`, { token: ws });
      expect(r.status, r.text).toBe(200);
      rows = r.text.split('\n').filter(Boolean);
    }
    expect(rows.map((l) => JSON.parse(l))).toEqual([{ request_id: 'sweep-after' }]);
  });
});
