/**
 * The README and docs/templates.md followed literally by a new user, and the everyday Tinybird
 * flows tried next (quick start, Events API, Query API, tokens): what did not work as written.
 * Each test here failed before its fix. End to end over HTTP against the real server, and the
 * real CLI as a child process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { call, startServer, tempDir, type RunningServer } from './helpers/server.js';
import { Browser } from './helpers/oidc-browser.js';
import { freePort } from './helpers/clickhouse-server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function roost(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Killed after 60 s: a server that starts when it should not must not outlive the test.
    const p = spawn(process.execPath, [path.join(root, 'bin/roost.js'), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (x: Buffer) => { stdout += x; });
    p.stderr.on('data', (x: Buffer) => { stderr += x; });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

let srv: RunningServer;
let T = '';
const post = (p: string, body?: BodyInit, headers: Record<string, string> = {}, token = T) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers });
const get = (p: string, token = T) => call(`${srv.url}${p}`, { token });

beforeAll(async () => {
  srv = await startServer();
  T = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  // README, "Data sources and ingestion".
  expect((await post(`/v0/datasources?name=sales&schema=${encodeURIComponent('id Int32, city String, amount Float64')}`)).status).toBe(200);
  expect((await post('/v0/datasources?name=sales&mode=append', 'id,city,amount\n1,Madrid,10.5\n2,Paris,20\n3,Rome,7.25\n')).body).toMatchObject({ rows: 3 });
  const sql = '%\nSELECT city, sum(amount) AS total FROM sales WHERE amount >= {{Float64(min_amount, 0)}} GROUP BY city ORDER BY total DESC LIMIT {{Int32(limit, 10)}}';
  const created = await post('/v0/pipes', new URLSearchParams({ name: 'top', sql, type: 'endpoint' }));
  expect(created.status, created.text).toBeLessThan(300);
}, 90_000);

afterAll(async () => { await srv?.stop(); });

describe('README: events', () => {
  it('an event for a data source that does not exist says how to create it, and the README flow then works', async () => {
    const events = '{"ts":"2024-01-01 00:00:00","user":"a","n":1}\n{"ts":"2024-01-01 00:00:01","user":"b","n":2}\n';
    const missing = await post('/v0/events?name=clicks&wait=true', events);
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('UNKNOWN_DATASOURCE');
    expect(missing.body.error).toContain('POST /v0/datasources?name=clicks&format=ndjson');
    // What the README now shows first.
    expect((await post('/v0/datasources?name=clicks&format=ndjson', events)).body).toMatchObject({ rows: 2 });
    expect((await post('/v0/events?name=clicks&wait=true', events)).body).toEqual({ successful_rows: 2, quarantined_rows: 0 });
    // Events sent to a quarantine table: told whose it is, not to create it (a name that is refused).
    const toQuarantine = await post('/v0/events?name=clicks_quarantine&wait=true', events);
    expect(toQuarantine.status).toBe(400);
    expect(toQuarantine.body.error).toMatch(/"clicks_quarantine" is the quarantine of data source "clicks".*send events to "clicks"/);
  });

  it("an append to a data source that does not exist (Tinybird's append would create it) says to create it", async () => {
    const r = await post('/v0/datasources?name=newsales&mode=append', 'id,city\n1,Oslo\n');
    expect(r.status).toBe(404);
    expect(r.body.code).toBe('UNKNOWN_DATASOURCE');
    expect(r.body.error).toContain('mode=create');
    expect((await get('/v0/datasources/newsales')).status).toBe(404);
  });
});

describe("Tinybird's Data Sources API: engine options", () => {
  it('an engine or TTL Roost would not apply is refused, not silently turned into a MergeTree keeping every row', async () => {
    const schema = encodeURIComponent('id Int32, d Date');
    const replacing = await post(`/v0/datasources?name=dedup&schema=${schema}&engine=ReplacingMergeTree&engine_sorting_key=id`);
    expect(replacing.status).toBe(400);
    expect(replacing.body).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'engine' });
    const ttl = await post(`/v0/datasources?name=short&schema=${schema}&engine_ttl=${encodeURIComponent('d + INTERVAL 1 DAY')}`);
    expect(ttl.body).toMatchObject({ code: 'INVALID_PARAMETER', parameter: 'engine_ttl' });
    // Nothing was created.
    expect((await get('/v0/datasources/dedup')).status).toBe(404);
    // What Roost creates anyway is accepted.
    expect((await post(`/v0/datasources?name=plain&schema=${schema}&engine=MergeTree`)).body.datasource).toMatchObject({ engine: { engine: 'MergeTree' } });
  });
});

describe('README: endpoint formats', () => {
  it('q= naming another table says q= reads the endpoint\'s result as _, not just "unknown table"', async () => {
    const r = await get(`/v0/pipes/top.json?q=${encodeURIComponent('SELECT count() FROM sales')}`);
    expect(r.body).toMatchObject({ code: 'SQL_INVALID', sql_code: 'UNKNOWN_TABLE' });
    expect(r.body.error).toContain('as table _');
  });

  it('.tsv answers with a header line as documented, and an unknown extension lists every format there is', async () => {
    const tsv = await get('/v0/pipes/top.tsv?limit=1');
    expect(tsv.text).toBe('city\ttotal\nParis\t20\n');
    const xml = await get('/v0/pipes/top.xml');
    expect(xml.status).toBe(400);
    for (const ext of ['.json', '.csv', '.csvwithnames', '.tsv', '.ndjson', '.parquet']) expect(xml.body.error).toContain(ext);
  });
});

describe("Tinybird's Query API: SELECT * FROM <pipe>", () => {
  it('reads a published pipe by name, with the request parameters, as the raw-body example sends it', async () => {
    const r = await post('/v0/sql', 'SELECT * FROM top FORMAT JSON', { 'Content-Type': 'application/x-www-form-urlencoded' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ city: 'Paris', total: 20 }, { city: 'Madrid', total: 10.5 }, { city: 'Rome', total: 7.25 }]);
    const p = await get(`/v0/sql?q=${encodeURIComponent('SELECT city FROM top FORMAT JSONEachRow')}&min_amount=10&limit=1`);
    expect(p.text).toBe('{"city":"Paris"}\n');
    // Parameters in a form body, as a long parameter list is sent.
    const f = await post('/v0/sql', new URLSearchParams({ q: 'SELECT count() AS c FROM top FORMAT JSONEachRow', min_amount: '8' }));
    expect(f.text).toBe('{"c":2}\n');
    // Bad values are the endpoint's errors.
    expect((await get(`/v0/sql?q=${encodeURIComponent('SELECT * FROM top')}&limit=x`)).body).toMatchObject({ code: 'TEMPLATE_PARAMETER', parameter: 'limit' });
  });

  it('needs PIPES:READ of the pipe (not DATASOURCES:READ of what it reads), and a JWT fixes its parameters', async () => {
    const reader = (await post('/v0/tokens?name=reader&scope=PIPES:READ:top')).body.token as string;
    expect((await get(`/v0/sql?q=${encodeURIComponent('SELECT count() AS c FROM top FORMAT JSONEachRow')}`, reader)).text).toBe('{"c":3}\n');
    // The pipe's data source itself stays closed to it.
    expect((await get(`/v0/sql?q=${encodeURIComponent('SELECT * FROM sales')}`, reader)).status).toBe(403);
    const other = (await post('/v0/tokens?name=other&scope=DATASOURCES:READ:sales')).body.token as string;
    expect((await get(`/v0/sql?q=${encodeURIComponent('SELECT * FROM top')}`, other)).body).toMatchObject({ code: 'FORBIDDEN' });
    const jwt = await post(`/v0/tokens?name=dash&expiration_time=${Math.floor(Date.now() / 1000) + 3600}`, JSON.stringify({ scopes: [{ type: 'PIPES:READ', resource: 'top', fixed_params: { limit: 1 } }] }), { 'Content-Type': 'application/json' });
    expect(jwt.status, jwt.text).toBe(200);
    expect((await get(`/v0/sql?q=${encodeURIComponent('SELECT city FROM top FORMAT JSONEachRow')}&limit=5`, jwt.body.token)).text).toBe('{"city":"Paris"}\n');
  });

  it('reads pipes beside the nodes of pipeline=, which shadow a pipe of the same name', async () => {
    const nodes = { name: 'daily', nodes: [{ name: 'base', sql: 'SELECT city FROM sales' }, { name: 'top', sql: 'SELECT 42 AS shadow' }, { name: 'out', sql: 'SELECT count() AS n FROM base', type: 'endpoint' }] };
    expect((await post('/v0/pipes', JSON.stringify(nodes), { 'Content-Type': 'application/json' })).status).toBeLessThan(300);
    const joined = await get(`/v0/sql?q=${encodeURIComponent('SELECT count() AS c FROM daily AS d, base AS b FORMAT JSONEachRow')}&pipeline=daily`);
    expect(joined.text, joined.text).toBe('{"c":3}\n');
    expect((await get(`/v0/sql?q=${encodeURIComponent('SELECT * FROM top FORMAT JSONEachRow')}&pipeline=daily`)).text).toBe('{"shadow":42}\n');
  });

  it('a template never reads ?token= (nor the other names an endpoint keeps) through /v0/sql, with or without pipeline=', async () => {
    const sql = "%\nSELECT {{String(token, 'none')}} AS t, {{String(from, 'none')}} AS f, {{String(pipeline, 'none')}} AS p";
    expect((await post('/v0/pipes', new URLSearchParams({ name: 'echo', sql, type: 'endpoint' }))).status).toBeLessThan(300);
    const none = '{"t":"none","f":"none","p":"none"}\n';
    const q = (text: string) => `/v0/sql?q=${encodeURIComponent(`${text} FORMAT JSONEachRow`)}&token=${T}&from=ui`;
    expect((await call(`${srv.url}${q('SELECT * FROM echo')}`)).text).toBe(none);
    expect((await call(`${srv.url}${q('SELECT * FROM echo_0')}&pipeline=echo`)).text).toBe(none);
  });

  it('a pipe without an endpoint is named as such, not an unknown table', async () => {
    expect((await post('/v0/pipes', new URLSearchParams({ name: 'draft', sql: 'SELECT 1 AS x' }))).status).toBeLessThan(300);
    const r = await get(`/v0/sql?q=${encodeURIComponent('SELECT * FROM draft')}`);
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ code: 'SQL_INVALID', sql_code: 'UNKNOWN_TABLE' });
    expect(r.body.error).toContain('pipe "draft" has no endpoint');
  });
});

describe('README: development IdP', () => {
  it('a login opened at localhost (the host of the curl examples) starts over at the bound address, whose callback has its cookie', async () => {
    const b = new Browser();
    const first = await b.fetch(`http://localhost:${srv.port}/auth/login?tenant=local&return_to=%2Fauth%2Fsession`);
    expect(first.status).toBe(302);
    expect(first.headers.get('location')).toBe(`${srv.url}/auth/login?tenant=local&return_to=%2Fauth%2Fsession`);
    const done = await b.login(srv.url, 'tenant=local&return_to=%2Fauth%2Fsession', 'local-admin');
    expect(done.status, done.text).toBe(303);
    const me = await b.fetch(`${srv.url}/auth/session`);
    expect(JSON.parse(me.text)).toMatchObject({ kind: 'session', tenant: 'local', identity: { email: 'admin@local.test' } });
  });
});

describe('configuration and CLI as documented', () => {
  it('a bad ROOST_PUBLIC_URL or ROOST_CELL_CANCEL_GRACE_MS stops the start with a message naming it (exit 2), and --help lists them', async () => {
    const data = tempDir('roost-walk-');
    const url = await roost(['serve', '--port', '0', '--data', data], { ROOST_PUBLIC_URL: 'roost.example.com' });
    expect(url.code).toBe(2);
    expect(url.stderr).toContain('ROOST_PUBLIC_URL must be an http(s) URL');
    expect(url.stderr).not.toContain('    at ');
    const grace = await roost(['serve', '--port', '0', '--data', data], { ROOST_CELL_CANCEL_GRACE_MS: 'soon' });
    expect(grace.code).toBe(2);
    expect(grace.stderr).toContain('ROOST_CELL_CANCEL_GRACE_MS must be a whole number');
    const simd = await roost(['serve', '--port', '0', '--data', data], { ROOST_CSV_SIMD: 'avx3' });
    expect(simd.code).toBe(2);
    expect(simd.stderr).toContain('ROOST_CSV_SIMD must be sse2, avx2 or avx512');
    const fileResult = await roost(['serve', '--port', '0', '--data', data], { ROOST_MAX_FILE_RESULT_BYTES: '1000' });
    expect(fileResult.code).toBe(2);
    expect(fileResult.stderr).toContain('ROOST_MAX_FILE_RESULT_BYTES must be between 1048576 and');
    // Each environment-only setting is checked at start (these fell back to their default silently).
    for (const [key, value, said] of [
      ['ROOST_CLIENT_STALL_MS', 'xyz', 'ROOST_CLIENT_STALL_MS must be a whole number'],
      ['ROOST_RESULT_SPOOL_BYTES', 'abc', 'ROOST_RESULT_SPOOL_BYTES must be a whole number'],
      ['ROOST_NDJSON_WORKERS', 'lots', 'ROOST_NDJSON_WORKERS must be a whole number'],
      ['ROOST_DROP_RETRY_MS', '-5', 'ROOST_DROP_RETRY_MS must be'],
      ['ROOST_NDJSON_FAST', 'yes', 'ROOST_NDJSON_FAST must be 0 or 1'],
      ['ROOST_ABANDONED_RESTARTS', 'many', 'ROOST_ABANDONED_RESTARTS must be a whole number'],
    ] as const) {
      const r = await roost(['serve', '--port', '0', '--data', data], { [key]: value });
      expect(r.code, key).toBe(2);
      expect(r.stderr, key).toContain(said);
    }
    const help = await roost(['--help']);
    for (const key of ['ROOST_CLIENT_STALL_MS', 'ROOST_RESULT_SPOOL_BYTES', 'ROOST_RESULT_SPOOL_TOTAL_BYTES', 'ROOST_NDJSON_WORKERS', 'ROOST_NDJSON_FAST', 'ROOST_DROP_RETRY_MS', 'ROOST_ABANDONED_RESTARTS', 'ROOST_ABANDONED_RESTARTS_WINDOW_S']) expect(help.stdout).toContain(key);
    expect(help.stdout).toContain('ROOST_MAX_FILE_RESULT_BYTES');
    expect(help.stdout).toContain('ROOST_PUBLIC_URL');
    expect(help.stdout).toContain('ROOST_CELL_CANCEL_GRACE_MS');
    expect(help.stdout).toContain('ROOST_CSV_SIMD');
  });

  it('an unknown command is one line on stderr and exit 1, like every other CLI failure', async () => {
    const r = await roost(['tenants', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('unknown command "tenants"');
  });

  it("a --server on a port fetch() refuses says so, not \"fetch failed\" as if no server ran", async () => {
    const r = await roost(['tenant', 'list', '--server', 'http://127.0.0.1:6000', '--token', 'x'.repeat(40)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('refuses port 6000');
    expect(r.stderr).not.toContain('fetch failed');
  });

  it('roost restore over an existing tenant says to add --replace (not an HTTP body)', async () => {
    const env = { ROOST_SERVER: srv.url, ROOST_OPERATOR_TOKEN: srv.operatorToken };
    const out = path.join(tempDir('roost-walk-'), 'local.tar');
    const b = await roost(['backup', 'local', '--out', out], env);
    expect(b.code, b.stderr).toBe(0);
    const r = await roost(['restore', out], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('add --replace');
    expect(r.stderr).not.toContain('{"replace"');
  }, 120_000);
});

describe("Tinybird's Query API: a pipe over service data sources, on a fresh server", () => {
  it('reads them although no service row was written yet', async () => {
    const s = await startServer();
    try {
      const tok = (await call(`${s.url}/tokens`)).body.workspace_admin_token as string;
      // Saved unchecked, so nothing has made the tenant's service tables yet.
      const p = await call(`${s.url}/v0/pipes?ignore_sql_errors=true`, { method: 'POST', token: tok, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'ops', nodes: [{ name: 'n', sql: 'SELECT count() AS c FROM tinybird.datasources_ops_log', type: 'endpoint' }] }) });
      expect(p.status, p.text).toBe(200);
      const r = await call(`${s.url}/v0/sql?q=${encodeURIComponent('SELECT c FROM ops FORMAT JSON')}`, { token: tok });
      expect(r.status, r.text).toBe(200);
      expect(r.body.data).toEqual([{ c: 0 }]);
    } finally {
      await s.stop();
    }
  });
});

describe('README: development IdP across a restart', () => {
  it('keeps its issuer (its port, when free again), so a browser session outlives `npm start` being restarted', async () => {
    const dataDir = tempDir('roost-walk-devidp-');
    // The same address, as `npm start` has (127.0.0.1:7181): sessions are issued for it.
    const port = String(await freePort());
    let s = await startServer({ dataDir, args: ['--port', port] });
    const b = new Browser();
    let issuer = '';
    try {
      const done = await b.login(s.url, 'tenant=local&return_to=%2Fauth%2Fsession', 'local-admin');
      expect(done.status, done.text).toBe(303);
      issuer = (await call(`${s.url}/v0/tenants/local/connections/dev`, { token: s.operatorToken })).body.issuer;
    } finally {
      await s.stop();
    }
    const cookie = [...b.cookies(new URL(s.url).origin)].map(([k, v]) => `${k}=${v}`).join('; ');
    expect(cookie).not.toBe('');
    s = await startServer({ dataDir, args: ['--port', port] });
    try {
      expect((await call(`${s.url}/v0/tenants/local/connections/dev`, { token: s.operatorToken })).body.issuer).toBe(issuer);
      const me = await call(`${s.url}/auth/session`, { headers: { Cookie: cookie } });
      expect(me.status, me.text).toBe(200);
      expect(me.body).toMatchObject({ kind: 'session', tenant: 'local', identity: { email: 'admin@local.test' } });
    } finally {
      await s.stop();
    }
  });
});
