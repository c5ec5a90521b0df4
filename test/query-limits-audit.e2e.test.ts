/**
 * Query limits, cancellation and result statistics of /v0/sql and pipe endpoints, end to end
 * over HTTP against the real server and embedded engine: clients that go away mid-result,
 * failures mid-stream, time limits, concurrent clients of one tenant, read-only enforcement.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;

interface Raw { status: number; body: Buffer; complete: boolean }

/**
 * GET over a raw socket. With `stopAfter`, the client reads that many bytes and goes away;
 * `complete` tells whether the response ended as a whole HTTP message (a cut stream does not).
 */
function rawGet(url: string, stopAfter?: number, headers: Record<string, string> = {}): Promise<Raw> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    let status = 0;
    let settled = false;
    const done = (complete: boolean) => { if (!settled) { settled = true; resolve({ status, body: Buffer.concat(parts), complete }); } };
    const req = http.get(url, { headers: { Authorization: `Bearer ${token}`, ...headers } }, (res) => {
      status = res.statusCode!;
      res.on('data', (b: Buffer) => {
        parts.push(b);
        got += b.length;
        if (stopAfter !== undefined && got >= stopAfter) { req.destroy(); done(false); }
      });
      res.on('end', () => done(res.complete));
      res.on('aborted', () => done(false));
      res.on('error', () => done(false));
    });
    req.on('error', () => done(false));
  });
}

const sqlUrl = (sql: string, extra = '') => `${srv.url}/v0/sql?q=${encodeURIComponent(sql)}${extra}`;
const q = (sql: string) => call(sqlUrl(sql), { token });
const sqlRows = async (sql: string): Promise<Array<Record<string, unknown>>> => {
  const r = await q(`${sql} FORMAT JSONEachRow`);
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
};
const setLimits = async (limits: Record<string, number | null>) => {
  const r = await call(`${srv.url}/v0/tenants/local`, { method: 'PATCH', token: srv.operatorToken, body: JSON.stringify({ limits }), headers: { 'Content-Type': 'application/json' } });
  expect(r.status, r.text).toBe(200);
};
/** A query of the same tenant right after: its own answer, exactly (no leftovers of another query). */
const expectCleanNext = async (tag: string) => {
  const r = await q(`SELECT '${tag}' AS x, count() AS c FROM numbers(7) FORMAT CSV`);
  expect(r.status, r.text).toBe(200);
  expect(r.text).toBe(`"${tag}",7\n`);
};
/** The call log rows of one request (written within about a second). */
const logged = async (requestId: string, table: 'pipe_stats_rt' | 'endpoint_errors', cols: string) => {
  let rows: Array<Record<string, unknown>> = [];
  await expect.poll(async () => {
    rows = await sqlRows(`SELECT ${cols} FROM tinybird.${table} WHERE request_id = '${requestId}'`);
    return rows.length;
  }, { timeout: 20_000, interval: 250 }).toBe(1);
  return rows[0]!;
};

const BIG = 'SELECT number, toString(number) AS s FROM numbers(5000000)';

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const created = await call(`${srv.url}/v0/pipes`, {
    method: 'POST', token, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'big_ep', nodes: [{ name: 'n', sql: BIG, type: 'endpoint' }] }),
  });
  expect(created.status, created.text).toBe(200);
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('a client that goes away mid-result', () => {
  const cases: Array<[string, string]> = [];
  for (const ext of ['csv', 'ndjson', 'json', 'parquet']) cases.push(['endpoint', ext]);
  for (const fmt of ['CSV', 'JSONEachRow', 'JSON', 'Parquet']) cases.push(['sql', fmt]);

  it.each(cases)('%s %s: the query stops, the next answer is its own, the call is logged as 499', async (kind, fmt) => {
    const id = `gone-${kind}-${fmt}-${Date.now()}`;
    const url = kind === 'endpoint' ? `${srv.url}/v0/pipes/big_ep.${fmt}` : sqlUrl(`${BIG} FORMAT ${fmt}`);
    const r = await rawGet(url, 64 * 1024, { 'X-Request-Id': id });
    expect(r.status).toBe(200);
    expect(r.complete).toBe(false);
    await expectCleanNext(`after-${id}`);
    const stats = await logged(id, 'pipe_stats_rt', 'status_code, error');
    // The client did not get the result: not a 200 in the call log.
    expect(stats).toEqual({ status_code: 499, error: 1 });
    expect(await logged(id, 'endpoint_errors', 'status_code')).toEqual({ status_code: 499 });
    // The request log (and so roost_http_requests_total) says 499 too, not the head's 200.
    await expect.poll(() => srv.logs.find((l) => l.msg === 'request' && l.request_id === id)?.status, { timeout: 10_000 }).toBe(499);
    expect(srv.logs.some((l) => l.msg === 'cell process died')).toBe(false);
  }, 60_000);
});

describe('a failure in the middle of a streamed result', () => {
  // Over the 2 MiB buffered cap, so the result streams and fails after rows have been sent.
  const failing = 'SELECT number, toString(number) AS s, throwIf(number = 900000) AS t FROM numbers(1000000)';

  it.each(['CSV', 'CSVWithNames', 'JSONEachRow', 'JSON'])('%s: the response is cut (never a complete 200), logged as an error, the next answer is clean', async (fmt) => {
    const id = `midfail-${fmt}-${Date.now()}`;
    const r = await rawGet(sqlUrl(`${failing} FORMAT ${fmt}`), undefined, { 'X-Request-Id': id });
    if (r.status === 200) {
      // Rows went out before the failure: the only signal left is a message that does not end.
      expect(r.complete).toBe(false);
      expect(r.body.includes('899999')).toBe(false);
    } else {
      expect(r.status).toBe(422);
    }
    await expectCleanNext(`after-${id}`);
    const stats = await logged(id, 'pipe_stats_rt', 'error, error_message');
    expect(stats.error).toBe(1);
    expect(String(stats.error_message)).toContain('FUNCTION_THROW_IF_VALUE_IS_NON_ZERO');
    await logged(id, 'endpoint_errors', 'status_code');
  }, 60_000);

  it('Parquet: the whole file is written before the answer, so the failure is a clean 422', async () => {
    const r = await rawGet(sqlUrl(`${failing} FORMAT Parquet`));
    expect(r.status).toBe(422);
    expect(r.complete).toBe(true);
    expect(JSON.parse(r.body.toString())).toMatchObject({ code: 'QUERY_FAILED', clickhouse_code: 395 });
    await expectCleanNext('after-parquet-fail');
  }, 60_000);
});

describe('read-only', () => {
  it.each([
    'INSERT INTO x SELECT 1',
    'CREATE TABLE x (a Int8) ENGINE = Memory',
    'ALTER TABLE x DELETE WHERE 1',
    'SYSTEM DROP MARK CACHE',
    'SET readonly = 0',
    'SELECT 1 SETTINGS readonly = 0',
    'SELECT 1 SETTINGS max_execution_time = 100000',
    'SELECT 1 SETTINGS max_result_bytes = 0',
    'SELECT 1 SETTINGS max_memory_usage = 0',
    'SELECT * FROM (SELECT 1 SETTINGS readonly = 0)',
    "SELECT * FROM numbers(3) INTO OUTFILE '/tmp/roost-x.csv'",
    "INSERT INTO FUNCTION file('/tmp/roost-x.csv') SELECT 1",
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
    'SELECT 1; DROP DATABASE default',
  ])('%s is refused before it reaches the engine', async (sql) => {
    const r = await q(sql);
    expect(r.status, r.text).toBe(403);
    expect(r.body.code).toBe('SQL_FORBIDDEN');
  });
});

describe('time limits', () => {
  const HEAVY = 'SELECT count() AS c FROM numbers(100000000000) WHERE NOT ignore(sipHash64(number))';

  it('a query over the limit answers 408 QUERY_TIMEOUT, is logged in endpoint_errors, and the cell goes on', async () => {
    await setLimits({ query_timeout_ms: 2000 });
    try {
      const id = `timeout-${Date.now()}`;
      const r = await call(sqlUrl(HEAVY), { token, headers: { 'X-Request-Id': id } });
      expect(r.status, r.text).toBe(408);
      expect(r.body).toMatchObject({ code: 'QUERY_TIMEOUT' });
      expect(await logged(id, 'endpoint_errors', 'status_code')).toEqual({ status_code: 408 });
      await expectCleanNext('after-timeout');
    } finally {
      await setLimits({ query_timeout_ms: null });
    }
  }, 60_000);

  it('the limit counts while the query runs, not while it waits behind the tenant\'s other queries', async () => {
    // The tenant's engine sessions (two by default) are all busy with three queries that each
    // run to the limit: the quick queries below wait behind them. Waiting is not running: they get their answers, and each heavy one is
    // stopped by the engine at its own limit (no cell restart for a query that would not stop).
    await setLimits({ query_timeout_ms: 3000 });
    try {
      await expectCleanNext('warm');
      const heavy = [0, 1, 2].map((i) => q(`${HEAVY} AND number != ${i}`));
      await new Promise((r) => setTimeout(r, 300));
      const quick = [0, 1, 2].map((i) => q(`SELECT ${i} AS i, count() AS c FROM numbers(${10 + i}) FORMAT CSV`));
      const quickAnswers = await Promise.all(quick);
      expect(quickAnswers.map((r) => [r.status, r.text])).toEqual([0, 1, 2].map((i) => [200, `${i},${10 + i}\n`]));
      for (const r of await Promise.all(heavy)) {
        expect(r.status, r.text).toBe(408);
        expect(r.body).toMatchObject({ code: 'QUERY_TIMEOUT', clickhouse_code: 159 });
      }
      await expectCleanNext('after-queued');
      expect(srv.logs.some((l) => l.msg === 'cell restarted: a cancelled query did not stop in time')).toBe(false);
    } finally {
      await setLimits({ query_timeout_ms: null });
    }
  }, 120_000);
});

describe('buffered and streamed results', () => {
  it.each([20_000, 400_000])('%i rows: the same document shape, rows and rows_before_limit_at_least either side of the 2 MiB cap', async (n) => {
    const r = await q(`SELECT number, toString(number) AS s FROM numbers(${n + 5}) WHERE number < ${n + 5} LIMIT ${n}`);
    expect(r.status).toBe(200);
    expect(r.body.rows).toBe(n);
    expect(r.body.data.length).toBe(n);
    expect(r.body.data[n - 1]).toEqual({ number: n - 1, s: String(n - 1) });
    // ClickHouse's own value on the buffered path, the rows sent on the streamed one: both at least n.
    expect(r.body.rows_before_limit_at_least).toBeGreaterThanOrEqual(n);
    expect(Object.keys(r.body.statistics)).toEqual(['elapsed', 'rows_read', 'bytes_read']);
    const csv = await q(`SELECT number, toString(number) AS s FROM numbers(${n}) FORMAT CSV`);
    expect(csv.text.length).toBe(Array.from({ length: n }, (_, i) => `${i},"${i}"\n`).join('').length);
  }, 60_000);
});

describe('concurrent clients of one tenant', () => {
  it('while some are cancelled and some fail, every other answer is its own', async () => {
    for (let round = 0; round < 2; round++) {
      const jobs: Array<Promise<string>> = [];
      for (let i = 0; i < 12; i++) {
        const kind = i % 4;
        if (kind === 0) jobs.push(rawGet(sqlUrl(`${BIG} FORMAT CSV`), 50_000).then((r) => (r.complete ? 'not cut' : 'cancelled')));
        // Over the 2 MiB buffered cap, so it streams: the failure is a 422 when it comes before
        // the head, a cut response when the head has gone (timing decides); never a whole 200.
        else if (kind === 1) jobs.push(rawGet(sqlUrl(`SELECT number, toString(number) AS s, throwIf(number = ${200_000 + i}) FROM numbers(300000) FORMAT CSV`)).then((r) => (r.status === 422 || (r.status === 200 && !r.complete) ? 'failed' : `not failed: ${r.status} ${r.complete}`)));
        else if (kind === 2) jobs.push(q(`SELECT ${i} AS id, ${round} AS round, count() AS c FROM numbers(${1000 + i}) FORMAT CSV`).then((r) => (r.text === `${i},${round},${1000 + i}\n` ? 'ok' : `wrong: ${r.status} ${r.text.slice(0, 200)}`)));
        else {
          jobs.push(q(`SELECT number + ${i} AS n FROM numbers(400000) FORMAT CSV`).then((r) => {
            const lines = r.text.split('\n');
            return lines.length === 400_001 && lines[0] === String(i) && lines[399_999] === String(399_999 + i) ? 'ok' : `wrong: ${r.status} ${lines.length} ${r.text.slice(0, 200)}`;
          }));
        }
      }
      expect(await Promise.all(jobs)).toEqual(Array.from({ length: 12 }, (_, i) => ['cancelled', 'failed', 'ok', 'ok'][i % 4]));
    }
    await expectCleanNext('after-concurrent');
  }, 180_000);
});
