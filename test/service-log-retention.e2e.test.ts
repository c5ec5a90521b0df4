/**
 * Retention of the service data sources: rows of tinybird.pipe_stats_rt (and endpoint_errors,
 * datasources_ops_log) older than --service-log-retention are deleted as the tenant is used,
 * younger ones stay, and roost.audit_log keeps its own retention (here 0: forever). Real server,
 * real embedded engine, real HTTP; the retention is seconds here so that the test can see it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, ConfigError } from '../src/config.js';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { metricSum } from './helpers/metrics.js';

const RETENTION_S = 10;
let srv: RunningServer;
let token: string;

const sql = async (q: string): Promise<Array<Record<string, unknown>>> => {
  const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`, { token });
  expect(r.status, r.text).toBe(200);
  return r.body.data as Array<Record<string, unknown>>;
};
const calls = async (tag: string): Promise<number> =>
  Number((await sql(`SELECT count() AS n FROM tinybird.pipe_stats_rt WHERE pipe_name = 'kept' AND parameters['tag'] = '${tag}'`))[0]!.n);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * The tenant in use: a call of the pipe (tagged `poll`) writes a service row, and a write of the
 * tenant's service rows is what prunes them (a /v0/sql query writes none).
 */
const use = async () => expect((await call(`${srv.url}/v0/pipes/kept.json?tag=poll`, { token })).status).toBe(200);
/** Polls `f`, using the tenant before each try, until it holds. */
async function until(f: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    await use();
    if (await f()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

beforeAll(async () => {
  srv = await startServer({ env: { ROOST_SERVICE_LOG_RETENTION: `${RETENTION_S}s`, ROOST_AUDIT_RETENTION: '0', ROOST_SERVICE_LOG_PRUNE_INTERVAL_MS: '200' } });
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const r = await call(`${srv.url}/v0/pipes`, {
    method: 'POST', token, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'kept', nodes: [{ name: 'n', type: 'endpoint', sql: "%\nSELECT {{ String(tag, 'none') }} AS tag" }] }),
  });
  expect(r.status, r.text).toBe(200);
}, 90_000);
afterAll(async () => { await srv?.stop(); });

describe('service rows past their retention', () => {
  it('are deleted as the tenant is used; younger rows and the audit log (retention 0) stay', async () => {
    for (let i = 0; i < 3; i++) expect((await call(`${srv.url}/v0/pipes/kept.json?tag=old`, { token })).status).toBe(200);
    const oldAt = Date.now();
    await until(async () => (await calls('old')) === 3, 10_000, 'the three calls in pipe_stats_rt');
    const auditBefore = Number((await sql(`SELECT count() AS n FROM roost.audit_log WHERE timestamp < toDateTime64(${oldAt / 1000}, 3, 'UTC')`))[0]!.n);
    expect(auditBefore).toBeGreaterThan(0);  // the pipe's creation at least

    // Not before the retention has passed: a prune runs every 200 ms of use, so rows would be gone early otherwise.
    while (Date.now() < oldAt + (RETENTION_S - 3) * 1000) {
      await use();
      expect(await calls('old')).toBe(3);
      await sleep(500);
    }
    await until(async () => (await calls('old')) === 0, 30_000, 'the old calls to be deleted');
    expect(Date.now() - oldAt).toBeGreaterThanOrEqual((RETENTION_S - 3) * 1000);

    // A row written now is younger than the retention: prunes after it leave it.
    expect((await call(`${srv.url}/v0/pipes/kept.json?tag=new`, { token })).status).toBe(200);
    const newAt = Date.now();
    await until(async () => (await calls('new')) === 1, 10_000, 'the new call in pipe_stats_rt');
    for (let i = 0; i < 5; i++) { await use(); await sleep(300); }
    // Only meaningful while the new row is younger than the retention (a very slow machine would delete it rightly).
    if (Date.now() - newAt < (RETENTION_S - 1) * 1000) expect(await calls('new')).toBe(1);

    // The audit log's retention is 0: its rows from before are all there.
    expect(Number((await sql(`SELECT count() AS n FROM roost.audit_log WHERE timestamp < toDateTime64(${oldAt / 1000}, 3, 'UTC')`))[0]!.n)).toBe(auditBefore);

    // Said in the log and counted in /metrics.
    const deleted = srv.logs.filter((l) => l.msg === 'service rows past their retention deleted');
    expect(deleted.some((l) => String(l.table).endsWith('.pipe_stats_rt') && Number(l.rows) >= 3 && l.retention_s === RETENTION_S)).toBe(true);
    expect(deleted.some((l) => String(l.table).endsWith('.audit_log'))).toBe(false);
    expect(await metricSum(srv, 'roost_service_log_pruned_rows_total', { table: 'pipe_stats_rt' })).toBeGreaterThanOrEqual(3);
    expect(await metricSum(srv, 'roost_service_log_pruned_rows_total', { table: 'audit_log' })).toBe(0);
    expect(srv.logs.some((l) => l.msg === 'service rows past their retention could not be deleted; tried again after the interval')).toBe(false);
  }, 90_000);
});

describe('the retention options', () => {
  const cfg = (env: Record<string, string>) => loadConfig([], { ROOST_DATA: '/tmp/x', ...env });
  it('take d, h, m and s, and 0 for forever; default 90 days and 400 days', () => {
    expect(cfg({}).serviceLogRetentionS).toBe(90 * 86_400);
    expect(cfg({}).auditRetentionS).toBe(400 * 86_400);
    expect(cfg({ ROOST_SERVICE_LOG_RETENTION: '12h' }).serviceLogRetentionS).toBe(43_200);
    expect(cfg({ ROOST_SERVICE_LOG_RETENTION: '30m' }).serviceLogRetentionS).toBe(1_800);
    expect(cfg({ ROOST_SERVICE_LOG_RETENTION: '45s' }).serviceLogRetentionS).toBe(45);
    expect(cfg({ ROOST_AUDIT_RETENTION: '0' }).auditRetentionS).toBe(0);
    expect(loadConfig(['--audit-retention', '7d'], { ROOST_DATA: '/tmp/x' }).auditRetentionS).toBe(7 * 86_400);
  });
  it('refuse a number without a unit, other units and absurd lengths, naming the option', () => {
    for (const bad of ['90', '1w', '-5d', '1.5d', 'forever', '40000d', '0d', '0s']) {
      let err: unknown;
      try { cfg({ ROOST_SERVICE_LOG_RETENTION: bad }); } catch (e) { err = e; }
      expect(err, bad).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).message).toContain('--service-log-retention / ROOST_SERVICE_LOG_RETENTION');
    }
    expect(() => cfg({ ROOST_SERVICE_LOG_PRUNE_INTERVAL_MS: '5' })).toThrow(/ROOST_SERVICE_LOG_PRUNE_INTERVAL_MS must be between/);
  });
});
