/**
 * /metrics speaks Prometheus and counts what happened; service rows survive a graceful stop.
 * Real server, real engine, real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import client from 'prom-client';
import { createMetrics, exposition } from '../src/log/metrics.js';
import { call, childProcesses, startServer, tempDir, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
const enc = encodeURIComponent;

const metricsText = async () => (await call(`${srv.url}/metrics`)).text;
const sample = (text: string, name: string, labels: Record<string, string>): number => {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    // A family without labels prints `name value`.
    if (want.length === 0 && line.startsWith(`${name} `)) { sum += Number(line.slice(name.length + 1)); continue; }
    if (!line.startsWith(`${name}{`)) continue;
    const inner = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (want.every((w) => inner.split(',').includes(w))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
};

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => { await srv?.stop(); });

describe('/metrics', () => {
  it('shows the events acknowledged and not yet in the engine, until they are written', async () => {
    expect((await call(`${srv.url}/v0/datasources?name=mbuf&schema=${enc('`v` Int32 `json:$.v`')}`, { method: 'POST', token })).status).toBe(200);
    // The cell is held (SIGSTOP), so the buffer cannot flush: what was acknowledged waits.
    const cells = childProcesses(srv.proc.pid!, 'cell-main');
    expect(cells.length).toBeGreaterThan(0);
    const body = '{"v":1}\n{"v":2}\n';
    for (const pid of cells) process.kill(pid, 'SIGSTOP');
    try {
      for (let i = 0; i < 3; i++) expect((await call(`${srv.url}/v0/events?name=mbuf`, { method: 'POST', token, body })).status).toBe(202);
      const held = await metricsText();
      expect(sample(held, 'roost_events_buffer_pending_requests', {})).toBeGreaterThanOrEqual(3);
      expect(sample(held, 'roost_events_buffer_pending_bytes', {})).toBeGreaterThanOrEqual(3 * body.length);
    } finally {
      for (const pid of cells) process.kill(pid, 'SIGCONT');
    }
    let text = '';
    for (let i = 0; i < 100; i++) {
      text = await metricsText();
      if (sample(text, 'roost_events_buffer_pending_requests', {}) === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(sample(text, 'roost_events_buffer_pending_requests', {})).toBe(0);
    expect(sample(text, 'roost_events_buffer_pending_bytes', {})).toBe(0);
    expect((await call(`${srv.url}/v0/sql?q=${enc('SELECT count() AS n FROM mbuf FORMAT JSONEachRow')}`, { token })).body).toMatchObject({ n: 6 });
  }, 60_000);

  it('is valid text exposition: one HELP and TYPE per family, every sample under a declared family, no duplicate series', async () => {
    await call(`${srv.url}/v0/sql?q=${enc('SELECT 1')}`, { token });
    const text = await metricsText();
    const help = new Map<string, number>();
    const type = new Map<string, string>();
    const series = new Set<string>();
    for (const line of text.split('\n')) {
      if (!line) continue;
      let m;
      if ((m = /^# HELP (\S+) .+$/.exec(line))) { help.set(m[1]!, (help.get(m[1]!) ?? 0) + 1); continue; }
      if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
        expect(type.has(m[1]!), `duplicate TYPE ${m[1]}`).toBe(false);
        type.set(m[1]!, m[2]!);
        continue;
      }
      expect(line.startsWith('#'), `unexpected comment: ${line}`).toBe(false);
      m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
      expect(m, `malformed sample: ${line}`).not.toBeNull();
      const name = m![1]!;
      const family = type.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
      expect(type.has(family), `sample without TYPE: ${line}`).toBe(true);
      const key = line.slice(0, line.lastIndexOf(' '));
      expect(series.has(key), `duplicate series ${key}`).toBe(false);
      series.add(key);
    }
    for (const [name, n] of help) expect(n, `HELP ${name}`).toBe(1);
    expect(type.get('roost_http_requests_total')).toBe('counter');
    // The process's own metrics under roost_, once (not roost_process_process_...).
    expect(type.get('roost_process_cpu_seconds_total')).toBe('counter');
    expect(type.get('roost_process_resident_memory_bytes')).toBe('gauge');
    expect(type.get('roost_nodejs_heap_size_used_bytes')).toBe('gauge');
    expect([...type.keys()].filter((n) => n.includes('process_process') || n.includes('process_nodejs'))).toEqual([]);
  });

  it('spells a NaN sample NaN, as the text format does (prom-client writes Nan)', async () => {
    // The event loop lag gauges are NaN when no delay was sampled since the last scrape: CI
    // met `roost_nodejs_eventloop_lag_mean_seconds Nan` in the test above.
    const metrics = createMetrics();
    new client.Gauge({ name: 'roost_test_nan', help: 'a NaN gauge', registers: [metrics.registry] }).set(NaN);
    const text = await exposition(metrics.registry);
    expect(text).toMatch(/^roost_test_nan NaN$/m);
    expect(text).not.toMatch(/ Nan$/m);
  });

  it('route labels are route patterns, never raw paths, pipe names or tokens', async () => {
    const marker = `zz${Date.now()}q`;
    await call(`${srv.url}/v0/pipes/${marker}.json?token=${enc(token)}`);
    await call(`${srv.url}/v0/datasources/${marker}`, { token });
    await call(`${srv.url}/nowhere/${marker}/"quoted\\`);
    await call(`${srv.url}/v0/sql?q=${enc(`SELECT '${marker}'`)}&token=${enc(token)}`);
    const text = await metricsText();
    expect(text).not.toContain(marker);
    expect(text).not.toContain(token);
    expect(sample(text, 'roost_http_requests_total', { route: '/v0/pipes/:pipe', status: '404' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'roost_http_requests_total', { route: 'unmatched', status: '404' })).toBeGreaterThanOrEqual(1);
  });

  it('counts requests by route and status as they were answered', async () => {
    const before = await metricsText();
    for (let i = 0; i < 3; i++) expect((await call(`${srv.url}/v0/sql?q=${enc('SELECT 1')}`, { token })).status).toBe(200);
    expect((await call(`${srv.url}/v0/sql?q=${enc('SELECT 1')}`, { token: 'not-a-token' })).status).toBe(401);
    const after = await metricsText();
    const d = (labels: Record<string, string>) => sample(after, 'roost_http_requests_total', labels) - sample(before, 'roost_http_requests_total', labels);
    expect(d({ method: 'GET', route: '/v0/sql', status: '200' })).toBe(3);
    expect(d({ method: 'GET', route: '/v0/sql', status: '401' })).toBe(1);
    expect(sample(after, 'roost_http_request_duration_seconds_count', { method: 'GET', route: '/v0/sql', status: '200' })
      - sample(before, 'roost_http_request_duration_seconds_count', { method: 'GET', route: '/v0/sql', status: '200' })).toBe(3);
  });

  it('a request the client abandoned before any answer is counted as 499, not 200', async () => {
    const before = await metricsText();
    const ac = new AbortController();
    const slow = fetch(`${srv.url}/v0/sql?q=${enc('SELECT count() FROM numbers(1000000000000)')}`, { headers: { Authorization: `Bearer ${token}` }, signal: ac.signal });
    await new Promise((r) => setTimeout(r, 500));
    ac.abort();
    await slow.catch(() => {});
    let after = '';
    const d = (labels: Record<string, string>) => sample(after, 'roost_http_requests_total', labels) - sample(before, 'roost_http_requests_total', labels);
    for (let i = 0; i < 50; i++) {
      after = await metricsText();
      if (d({ route: '/v0/sql' }) >= 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(d({ method: 'GET', route: '/v0/sql', status: '499' })).toBe(1);
    expect(d({ method: 'GET', route: '/v0/sql', status: '200' })).toBe(0);
  });
});

describe('service rows and a graceful stop', () => {
  it('rows of the last requests before SIGTERM are there after a restart', async () => {
    const dataDir = tempDir();
    let s = await startServer({ dataDir });
    try {
      const tok = (await call(`${s.url}/tokens`)).body.workspace_admin_token as string;
      const schema = enc('a Int32');
      expect((await call(`${s.url}/v0/datasources?name=last&schema=${schema}`, { method: 'POST', token: tok, headers: { 'X-Request-Id': 'obs-last-create' } })).status).toBe(200);
      expect((await call(`${s.url}/v0/pipes`, { method: 'POST', token: tok, body: new URLSearchParams({ name: 'lastp', sql: 'SELECT count() AS c FROM last', type: 'endpoint' }) })).status).toBe(200);
      expect((await call(`${s.url}/v0/pipes/lastp.json`, { token: tok, headers: { 'X-Request-Id': 'obs-last-call' } })).status).toBe(200);
      expect((await call(`${s.url}/v0/sql?q=${enc('SELECT 42')}`, { token: tok, headers: { 'X-Request-Id': 'obs-last-sql' } })).status).toBe(200);
      expect((await call(`${s.url}/v0/datasources?name=last&mode=append`, { method: 'POST', token: tok, body: '1\n2\n', headers: { 'X-Request-Id': 'obs-last-append' } })).status).toBe(200);
      // At once: well inside the one-second flush interval.
      expect(await s.stop('SIGTERM')).toBe(0);
      s = await startServer({ dataDir });
      const rows = async (q: string) => {
        const r = await call(`${s.url}/v0/sql?q=${enc(`${q} FORMAT JSONEachRow`)}`, { token: tok });
        expect(r.status, r.text).toBe(200);
        return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      };
      expect(await rows("SELECT request_id FROM tinybird.pipe_stats_rt WHERE request_id IN ('obs-last-call', 'obs-last-sql') ORDER BY request_id"))
        .toEqual([{ request_id: 'obs-last-call' }, { request_id: 'obs-last-sql' }]);
      expect(await rows("SELECT request_id, event_type, rows FROM tinybird.datasources_ops_log WHERE request_id IN ('obs-last-create', 'obs-last-append') ORDER BY timestamp"))
        .toEqual([{ request_id: 'obs-last-create', event_type: 'create', rows: 0 }, { request_id: 'obs-last-append', event_type: 'append', rows: 2 }]);
      expect(await rows("SELECT event FROM roost.audit_log WHERE request_id = 'obs-last-create'")).toEqual([{ event: 'datasource.create' }]);
    } finally {
      await s.stop();
    }
  });
});
