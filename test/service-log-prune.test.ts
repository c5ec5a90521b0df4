/**
 * ServiceLog's retention, on both engines a tenant can have: a real embedded cell (chdb) and
 * Debian's clickhouse-server 18.16 (no TTL there, DateTime for DateTime64: the deletion is an
 * ALTER TABLE ... DELETE mutation comparing with toDateTime). Rows are written with their own
 * timestamps, so what is past the retention is known exactly.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedCell } from '../src/cells/embedded.js';
import { ClickHouseEngine } from '../src/cells/clickhouse.js';
import type { Engine } from '../src/cells/engine.js';
import { createLogger } from '../src/log/logger.js';
import { ServiceLog, serviceDb } from '../src/service/service-log.js';
import { requireClickHouse, startClickHouse, type RunningClickHouse } from './helpers/clickhouse-server.js';
import { tempDir } from './helpers/server.js';

let ch: RunningClickHouse | undefined;
const dirs: string[] = [];
const closers: Array<() => Promise<unknown>> = [];
beforeAll(async () => {
  if (requireClickHouse()) ch = await startClickHouse();
}, 60_000);
afterAll(async () => {
  await Promise.all(closers.map((c) => c()));
  await ch?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const DAY = 86_400_000;
/** A timestamp `ms` ago, as the service log writes them (UTC, milliseconds). */
const ago = (ms: number) => new Date(Date.now() - ms).toISOString().replace('T', ' ').replace('Z', '');

async function check(engine: Engine, tenant: string) {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('debug', {}, (line) => { lines.push(JSON.parse(line)); });
  // Kept 7 days in pipe_stats_rt, forever in the audit log (0); everyMs 0: at every write.
  const services = new ServiceLog(() => engine, log, 60_000, undefined, { seconds: { pipe_stats_rt: 7 * 86_400, audit_log: 0 }, everyMs: 0 });
  const ids = async (table: string): Promise<string[]> =>
    (await engine.exec(`SELECT request_id FROM ${serviceDb(tenant)}.${table} ORDER BY request_id`, { format: 'TSV' })).toString().split('\n').filter(Boolean);
  for (const [id, age] of [['a-30d', 30 * DAY], ['b-8d', 8 * DAY], ['c-6d', 6 * DAY], ['d-now', 0]] as const) {
    services.write(tenant, 'pipe_stats_rt', { start_datetime: ago(age), workspace: 'main', pipe_name: 'p', request_id: id, parameters: {} });
    services.write(tenant, 'audit_log', { timestamp: ago(age), tenant, workspace: 'main', event: 'x', outcome: 'allowed', request_id: id });
  }
  await services.flush();
  await services.pruned(tenant);
  // The mutation is asynchronous on either engine: the rows go as the parts are rewritten.
  const end = Date.now() + 30_000;
  while ((await ids('pipe_stats_rt')).length !== 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  expect(await ids('pipe_stats_rt')).toEqual(['c-6d', 'd-now']);
  expect(await ids('audit_log')).toEqual(['a-30d', 'b-8d', 'c-6d', 'd-now']);
  const deleted = lines.filter((l) => l.msg === 'service rows past their retention deleted');
  expect(deleted).toHaveLength(1);
  expect(deleted[0]).toMatchObject({ tenant, table: `${serviceDb(tenant)}.pipe_stats_rt`, rows: 2, retention_s: 7 * 86_400 });

  // Nothing past the retention: the next write's prune only counts (no mutation, nothing said).
  services.write(tenant, 'pipe_stats_rt', { start_datetime: ago(0), workspace: 'main', pipe_name: 'p', request_id: 'e-now', parameters: {} });
  await services.flush();
  await services.pruned(tenant);
  expect(await ids('pipe_stats_rt')).toEqual(['c-6d', 'd-now', 'e-now']);
  expect(lines.filter((l) => l.msg === 'service rows past their retention deleted')).toHaveLength(1);
  expect(lines.filter((l) => l.level === 'error')).toEqual([]);
}

describe('service rows past their retention are deleted', () => {
  it('on an embedded cell', async () => {
    const dir = tempDir('roost-svc-prune-');
    dirs.push(dir);
    const engine = new EmbeddedCell({ tenant: 'pr', dir, idleMs: 60_000, healthMs: 1_000, log: createLogger('silent') });
    closers.push(() => engine.close());
    await check(engine, 'pr');
  }, 90_000);

  it('on a remote ClickHouse 18.16 (no TTL, DateTime columns)', async (t) => {
    if (!ch) return t.skip();
    const engine = new ClickHouseEngine({ url: ch.url, user: ch.user, password: ch.password });
    closers.push(() => engine.close());
    await check(engine, 'pr_remote');
  }, 90_000);

  it('not while a deletion of the table is still running (none stacked on it, its rows not counted twice)', async (t) => {
    if (!ch) return t.skip();
    const engine = new ClickHouseEngine({ url: ch.url, user: ch.user, password: ch.password });
    closers.push(() => engine.close());
    const tenant = 'pr_busy';
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger('debug', {}, (line) => { lines.push(JSON.parse(line)); });
    const services = new ServiceLog(() => engine, log, 60_000, undefined, { seconds: { pipe_stats_rt: 7 * 86_400 }, everyMs: 0 });
    const old = (id: string) => services.write(tenant, 'pipe_stats_rt', { start_datetime: ago(30 * DAY), workspace: 'main', pipe_name: 'p', request_id: id, parameters: {} });
    await services.ensure(tenant);
    const table = `${serviceDb(tenant)}.pipe_stats_rt`;
    // A mutation that cannot finish (its condition throws for every row): is_done stays 0.
    old('stuck');
    await services.flush();
    await services.pruned(tenant);
    const deleted = () => lines.filter((l) => l.msg === 'service rows past their retention deleted').length;
    expect(deleted()).toBe(1);
    // (A part for it to work on: a young row, which the prune leaves.)
    services.write(tenant, 'pipe_stats_rt', { start_datetime: ago(0), workspace: 'main', pipe_name: 'p', request_id: 'young', parameters: {} });
    await services.flush();
    await services.pruned(tenant);
    await ch.query(`ALTER TABLE ${table} DELETE WHERE throwIf(request_id != '') = 1`);
    await new Promise((r) => setTimeout(r, 300));
    expect((await ch.query(`SELECT count() FROM system.mutations WHERE database = '${serviceDb(tenant)}' AND is_done = 0`)).trim()).toBe('1');
    old('kept-while-busy');
    await services.flush();
    await services.pruned(tenant);
    expect(deleted()).toBe(1);  // nothing stacked on the running one
    expect((await ch.query(`SELECT request_id FROM ${table} WHERE request_id = 'kept-while-busy'`)).trim()).toBe('kept-while-busy');
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    // (18.16 has no KILL MUTATION: the stuck one stays with this throwaway server.)
  }, 90_000);
});
