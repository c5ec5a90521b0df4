/**
 * Service-log values are bounded (fourteenth session): a value a request puts into a service
 * table (the /v0/sql text, endpoint parameters, the URL, a SAML/OIDC connection name taken from
 * the URL path) is stored cut to 8 KiB, on a UTF-8 character boundary, ending with
 * `…[truncated, N bytes]`. Real server, real embedded engine, real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { EmbeddedCell } from '../src/cells/embedded.js';
import { createLogger } from '../src/log/logger.js';

let srv: RunningServer;
let token: string;
const enc = encodeURIComponent;
const BOUND = 8 * 1024;

const sqlRows = async (q: string): Promise<Array<Record<string, any>>> => {
  const r = await call(`${srv.url}/v0/sql?q=${enc(`${q} FORMAT JSONEachRow`)}`, { token });
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
};
/** Polls until `q` gives at least `n` rows (service rows are written about once a second). */
async function rowsEventually(q: string, n: number): Promise<Array<Record<string, any>>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const got = await sqlRows(q);
    if (got.length >= n || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 200));
  }
}
const bytes = (s: string) => Buffer.byteLength(s);
/** A value cut at the bound: at most BOUND bytes, ends with the marker naming the size before, begins with what was sent. */
function expectCut(stored: string, sent: string): void {
  expect(bytes(stored)).toBeLessThanOrEqual(BOUND);
  expect(bytes(stored)).toBeGreaterThan(BOUND - 64);
  const m = /…\[truncated, (\d+) bytes\]$/.exec(stored);
  expect(m, stored.slice(-80)).not.toBeNull();
  expect(Number(m![1])).toBe(bytes(sent));
  const head = stored.slice(0, m!.index);
  expect(head.includes('\uFFFD')).toBe(false);  // cut on a character boundary
  expect(sent.startsWith(head)).toBe(true);
}

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('service-log values are bounded', () => {
  it('a 1 MiB /v0/sql text is stored cut to 8 KiB, on a UTF-8 character boundary, in pipe_stats_rt and endpoint_errors', async () => {
    // 2-byte characters after an odd-length prefix: a cut at a fixed byte count would split one.
    const body = `SELECT 'x${'é'.repeat(500_000)}'`;
    expect(bytes(body)).toBeGreaterThan(1_000_000);
    const r = await call(`${srv.url}/v0/sql`, { method: 'POST', token, body, headers: { 'X-Request-Id': 'bound-sql-big' } });
    expect(r.status, r.text.slice(0, 200)).toBeGreaterThanOrEqual(400);
    const stats = await rowsEventually("SELECT parameters['q'] AS q, url, length(parameters['q']) AS qb FROM tinybird.pipe_stats_rt WHERE request_id = 'bound-sql-big'", 1);
    expect(stats).toHaveLength(1);
    expect(Number(stats[0]!.qb)).toBeLessThanOrEqual(BOUND);
    expectCut(stats[0]!.q, body);
    const errors = await rowsEventually("SELECT parameters['q'] AS q, params, length(params) AS pb FROM tinybird.endpoint_errors WHERE request_id = 'bound-sql-big'", 1);
    expect(errors).toHaveLength(1);
    expectCut(errors[0]!.q, body);
    expect(Number(errors[0]!.pb)).toBeLessThanOrEqual(BOUND);
    // params stays JSON: the value inside it is cut, not the text.
    const params = JSON.parse(errors[0]!.params) as { q: string };
    expect(Object.keys(params)).toEqual(['q']);
    expectCut(params.q, body);
  });

  it('a long endpoint parameter (and the URL carrying it) is stored cut to 8 KiB', async () => {
    const c = await call(`${srv.url}/v0/pipes`, {
      method: 'POST', token, headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'bounded_echo', nodes: [{ name: 'e', sql: "%\nSELECT length({{String(p, '')}}) AS n", type: 'endpoint' }] }),
    });
    expect(c.status, c.text).toBe(200);
    const p = 'p'.repeat(12_000);
    const r = await call(`${srv.url}/v0/pipes/bounded_echo.json?p=${p}`, { token, headers: { 'X-Request-Id': 'bound-param' } });
    expect(r.status, r.text.slice(0, 200)).toBe(200);
    expect(r.body.data).toEqual([{ n: 12_000 }]);
    const stats = await rowsEventually("SELECT parameters['p'] AS p, url FROM tinybird.pipe_stats_rt WHERE request_id = 'bound-param'", 1);
    expect(stats).toHaveLength(1);
    expectCut(stats[0]!.p, p);
    expect(bytes(stats[0]!.url)).toBeLessThanOrEqual(BOUND);
    expect(stats[0]!.url).toMatch(/^\/v0\/pipes\/bounded_echo\.json\?p=p+…\[truncated, \d+ bytes\]$/);
  });

  it('endpoint_errors.params stays JSON when many long parameters are cut: values first, then entries', async () => {
    const c = await call(`${srv.url}/v0/pipes`, {
      method: 'POST', token, headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'bounded_fail', nodes: [{ name: 'e', sql: "%\nSELECT {{Int32(n)}} AS n", type: 'endpoint' }] }),
    });
    expect(c.status, c.text).toBe(200);
    // 40 parameters of 3,000 characters with quotes and backslashes (JSON escapes them): 120 KB.
    const form = new URLSearchParams({ n: 'not a number' });
    for (let i = 0; i < 40; i++) form.set(`p${String(i).padStart(2, '0')}`, `"\\${'x'.repeat(3_000)}`);
    const r = await call(`${srv.url}/v0/pipes/bounded_fail.json`, { method: 'POST', token, body: form.toString(), headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Request-Id': 'bound-many' } });
    expect(r.status, r.text.slice(0, 200)).toBe(400);
    const errors = await rowsEventually("SELECT params FROM tinybird.endpoint_errors WHERE request_id = 'bound-many'", 1);
    expect(errors).toHaveLength(1);
    expect(bytes(errors[0]!.params)).toBeLessThanOrEqual(BOUND);
    const params = JSON.parse(errors[0]!.params) as Record<string, string>;
    expect(params.n).toBe('not a number');
    const cut = Object.entries(params).filter(([k]) => /^p\d\d$/.test(k));
    expect(cut.length).toBeGreaterThan(0);
    for (const [, v] of cut) expect(v).toMatch(/^"\\x+…\[truncated, 3002 bytes\]$/);
  });

  it('a failed call with 60,000 parameters is logged with the first of them and how many more, as JSON', async () => {
    // (Joined, not URLSearchParams.set 60,000 times: that takes the test's own thread for seconds.)
    const form = `n=not+a+number&${Array.from({ length: 60_000 }, (_, i) => `q${i}=x`).join('&')}`;
    const r = await call(`${srv.url}/v0/pipes/bounded_fail.json`, { method: 'POST', token, body: form, headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Request-Id': 'bound-wide' } });
    expect(r.status, r.text.slice(0, 200)).toBe(400);
    // The server answered other requests meanwhile and after (its thread was held for seconds).
    expect((await call(`${srv.url}/v0/health`)).status).toBe(200);
    const errors = await rowsEventually("SELECT params FROM tinybird.endpoint_errors WHERE request_id = 'bound-wide'", 1);
    expect(errors).toHaveLength(1);
    expect(bytes(errors[0]!.params)).toBeLessThanOrEqual(BOUND);
    const params = JSON.parse(errors[0]!.params) as Record<string, string>;
    expect(params.n).toBe('not a number');
    const kept = Object.keys(params).filter((k) => /^q\d+$/.test(k)).length;
    expect(kept).toBeGreaterThan(100);
    expect(params['…[truncated]']).toBe(`${60_001 - (kept + 1)} more entries`);
    const stats = await rowsEventually("SELECT length(mapKeys(parameters)) AS n FROM tinybird.pipe_stats_rt WHERE request_id = 'bound-wide'", 1);
    expect(stats[0]!.n).toBeLessThanOrEqual(2049);
  });

  it('an unauthenticated ACS post to a 12,000-character connection name does not log 12,000 characters', async () => {
    // Its audit record has no workspace (no workspace's SQL sees it): the tenant's service
    // database is read from its cell once the server has stopped (which writes what waits).
    const own = await startServer();
    try {
      const conn = 'c'.repeat(12_000);
      const r = await fetch(`${own.url}/auth/saml/local/${conn}/acs`, {
        method: 'POST', redirect: 'manual', headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Request-Id': 'bound-acs' },
        body: new URLSearchParams({ SAMLResponse: 'bm90IGEgcmVzcG9uc2U=' }).toString(),
      });
      expect(r.status).toBeGreaterThanOrEqual(400);
      await expect.poll(() => own.logs.some((l) => l.msg === 'audit' && l.requestId === 'bound-acs'), { timeout: 10_000 }).toBe(true);
    } finally {
      expect(await own.stop()).toBe(0);
    }
    const cell = new EmbeddedCell({ tenant: 'local', dir: path.join(own.dataDir, 'cells', 'local'), idleMs: 60_000, healthMs: 1_000, log: createLogger('silent') });
    try {
      const text = (await cell.exec("SELECT event, connection, reason, resource, details FROM roost_svc_local.audit_log WHERE request_id = 'bound-acs' FORMAT JSONEachRow")).toString('utf8');
      const rows = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);
      expect(rows.length).toBeGreaterThanOrEqual(1);
      for (const row of rows) {
        for (const col of ['connection', 'reason', 'resource', 'details']) expect(bytes(row[col]!)).toBeLessThanOrEqual(BOUND);
        expect(JSON.stringify(row)).not.toContain('c'.repeat(BOUND));
      }
      // A connection the tenant does not have is recorded marked and cut (auth/login-limits.ts recordedConnection).
      expect(rows.some((row) => /^\(unknown\) c{64}…\[truncated, 12000 chars\]$/.test(row.connection!))).toBe(true);
    } finally {
      await cell.close();
    }
  }, 60_000);
});
