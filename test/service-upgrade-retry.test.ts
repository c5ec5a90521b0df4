/**
 * A service table upgrade (src/service/service-log.ts) that fails is tried again while the server
 * runs, at the tenant's next service write or query after a wait that grows with each failure,
 * and the failure is visible (log, `/metrics`). On Debian's ClickHouse 18.16 (skipped loudly
 * without the binary; fails under CI=true): the upgrade of a table is made to fail at its first
 * step by a layout it refuses to touch, the table is then repaired on the server, and the next
 * query after the wait finds it upgraded, without a restart of Roost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, createTenant, startServer, tempDir, type RunningServer } from './helpers/server.js';
import { requireClickHouse, startClickHouse, type RunningClickHouse } from './helpers/clickhouse-server.js';

let srv: RunningServer | undefined;
let ch: RunningClickHouse | undefined;
let dataDir = '';
let token = '';
const db = 'roost_svc_up';

const direct = (q: string) => ch!.query(q, { allow_experimental_low_cardinality_type: 1 });
const sql = (q: string) => call(`${srv!.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`, { token });
const failures = () => srv!.logs.filter((l) => String(l.msg).startsWith('service table upgrade failed') && l.tenant === 'up');
/** A `/metrics` sample of tenant `up` (open in --dev). */
async function metric(name: string): Promise<number | undefined> {
  const text = (await call(`${srv!.url}/metrics`)).text;
  const m = new RegExp(`^${name}\\{tenant="up"\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}
const OPS = "SELECT request_id, Options.Names AS names, cpu_time FROM tinybird.datasources_ops_log WHERE request_id LIKE 'kept-%'";

beforeAll(async () => {
  if (!requireClickHouse()) return;
  dataDir = tempDir('roost-upgrade-retry-');
  [ch, srv] = await Promise.all([startClickHouse(), startServer({ dataDir })]);
  token = await createTenant(srv, 'up', { type: 'clickhouse', url: ch.url, user: ch.user, password: ch.password });
  // The service tables exist (a service query creates them).
  const r = await sql('SELECT count() AS n FROM tinybird.datasources_ops_log');
  expect(r.status, r.text).toBe(200);
  expect(await srv.stop()).toBe(0);
  // A table of an earlier layout the upgrade refuses to touch at its first step: a plain `Options`
  // beside `Options.*` columns (dropping one would drop the other on 18.16). It lacks cpu_time & co.
  await direct(`DROP TABLE ${db}.datasources_ops_log`);
  await direct(`CREATE TABLE ${db}.datasources_ops_log (timestamp DateTime('UTC'), workspace String, workspace_id String, event_type LowCardinality(String), datasource_name String, result LowCardinality(String), request_id String, rows UInt64, options String, Options String, \`Options.Names\` Array(String), \`Options.Values\` Array(String)) ENGINE = MergeTree ORDER BY (workspace, timestamp)`);
  await direct(`INSERT INTO ${db}.datasources_ops_log (timestamp, workspace, event_type, datasource_name, result, request_id, rows, options, Options) VALUES (now(), 'main', 'append', 'k', 'ok', 'kept-1', 1, '', '{"mode":"append"}')`);
  srv = await startServer({ dataDir });
}, 120_000);
afterAll(async () => {
  await srv?.stop();
  await ch?.stop();
});

describe('a service table upgrade that failed', () => {
  it('is visible, is not tried again before its wait, and is tried again without a restart once the server allows it', async (t) => {
    if (!ch) return t.skip();
    const pid = srv!.proc.pid;
    // The first service query after the start tries the upgrade, which fails: the query names
    // columns the table lacks.
    const first = await sql(OPS);
    expect(first.status, first.text).toBeGreaterThanOrEqual(400);
    expect(first.body.error).toMatch(/cpu_time|Options/);
    expect(failures().length).toBe(1);
    expect(failures()[0]).toMatchObject({ table: 'datasources_ops_log', failures: 1, retry_after_ms: 1000 });
    expect(await metric('roost_service_tables_upgrade_pending')).toBe(1);
    expect(await metric('roost_service_table_upgrade_failures_total')).toBe(1);

    // Within the wait, more queries (and service writes) do not ask the server again.
    for (let i = 0; i < 3; i++) expect((await sql(OPS)).status).toBeGreaterThanOrEqual(400);
    expect(failures().length).toBe(1);

    // After the wait the next query tries again (still failing: the wait doubles).
    await new Promise((r) => setTimeout(r, 1100));
    expect((await sql(OPS)).status).toBeGreaterThanOrEqual(400);
    expect(failures().length).toBe(2);
    expect(failures()[1]).toMatchObject({ failures: 2, retry_after_ms: 2000 });
    expect(await metric('roost_service_table_upgrade_failures_total')).toBe(2);

    // The operator repairs the table on the server; the next query after the wait finds the
    // table upgraded (its rows kept, Options text in Options.Names), with the same Roost process.
    await direct(`ALTER TABLE ${db}.datasources_ops_log DROP COLUMN \`Options.Names\`, DROP COLUMN \`Options.Values\``);
    let ok: Awaited<ReturnType<typeof sql>> | undefined;
    for (const until = Date.now() + 20_000; Date.now() < until;) {
      ok = await sql(OPS);
      if (ok.status === 200) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(ok!.status, ok!.text).toBe(200);
    expect(ok!.body.data.map((r: any) => [r.request_id, r.names, Number(r.cpu_time)])).toEqual([['kept-1', ['mode'], 0]]);
    expect(failures().length).toBe(2);
    expect(srv!.logs.some((l) => l.msg === 'service tables upgraded after an earlier failure' && l.tenant === 'up')).toBe(true);
    expect(await metric('roost_service_tables_upgrade_pending')).toBe(0);
    expect(srv!.proc.pid).toBe(pid);
    expect(srv!.proc.exitCode).toBeNull();

    // Service writes land with the new columns again.
    const c = await call(`${srv!.url}/v0/datasources?name=after_retry&mode=create&format=csv`, { method: 'POST', token, body: 'a,b\n1,2\n', headers: { 'Content-Type': 'text/csv', 'X-Request-Id': 'kept-after' } });
    expect(c.status, c.text).toBe(200);
    let rows: any[] = [];
    for (let i = 0; i < 50 && rows.length < 2; i++) {
      rows = (await sql(`${OPS} ORDER BY request_id`)).body.data ?? [];
      if (rows.length < 2) await new Promise((r) => setTimeout(r, 200));
    }
    expect(rows.map((r) => r.request_id)).toEqual(['kept-1', 'kept-after']);
  }, 90_000);
});
