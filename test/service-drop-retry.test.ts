/**
 * A tenant dropped while its service tables' upgrade is being tried again
 * (src/service/service-log.ts): the drop waits for the try, so the try cannot create the tenant's
 * service database again after the DROP (on a remote server it would outlive the tenant). And a
 * try that finds the tenant without an engine does not log that the tables were upgraded.
 * A real embedded engine (chdb in its cell); the service log's engine is that engine with two
 * statements intercepted: the upgrade's first look at a table fails once (so a retry is
 * pending), and the retry's CREATE DATABASE is held until the test lets it go.
 */
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedCell } from '../src/cells/embedded.js';
import type { Engine } from '../src/cells/engine.js';
import { createLogger } from '../src/log/logger.js';
import { ServiceLog, UPGRADE_RETRY_FIRST_MS, serviceDb } from '../src/service/service-log.js';
import { tempDir } from './helpers/server.js';

const dirs: string[] = [];
const cells: EmbeddedCell[] = [];
afterAll(async () => {
  await Promise.all(cells.map((c) => c.close()));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** The engine, with `hook` seeing each exec statement first. */
function intercepted(engine: Engine, hook: (sql: string) => Promise<void>): Engine {
  return new Proxy(engine, {
    get(target, key) {
      if (key === 'exec') return async (sql: string, opts?: object) => { await hook(sql); return target.exec(sql, opts as never); };
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Engine;
}

function logged() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('debug', {}, (line) => { lines.push(JSON.parse(line)); });
  return { log, lines };
}

describe('dropping a tenant while its service upgrade is tried again', () => {
  it('the database is gone after the drop: the retry finished before it, not after', async () => {
    const dir = tempDir('roost-svc-drop-');
    dirs.push(dir);
    const engine = new EmbeddedCell({ tenant: 'dr', dir, idleMs: 60_000, healthMs: 1_000, log: createLogger('silent') });
    cells.push(engine);
    let mode: 'fail' | 'hold' | 'pass' = 'fail';
    let release!: () => void;
    const released = new Promise<void>((r) => { release = r; });
    let reached!: () => void;
    const held = new Promise<void>((r) => { reached = r; });
    const faulty = intercepted(engine, async (sql) => {
      if (mode === 'fail' && sql.startsWith('SELECT name, type FROM system.columns')) throw new Error('injected: the server did not answer');
      if (mode === 'hold' && sql.startsWith('CREATE DATABASE')) { mode = 'pass'; reached(); await released; }
    });
    const { log, lines } = logged();
    const services = new ServiceLog(() => faulty, log, 60_000);
    try {
      await services.ensure('dr');
      expect(lines.filter((l) => l.msg === 'service table upgrade failed; tried again at the tenant\'s next service write or query after the wait').length).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, UPGRADE_RETRY_FIRST_MS + 100));
      mode = 'hold';
      const retry = services.ensure('dr');  // the wait is over: the retry starts, and is held
      await held;
      const drop = services.drop('dr', engine);
      await new Promise((r) => setTimeout(r, 200));  // a drop that does not wait has dropped by now
      release();
      await drop;
      await retry;
      const dbs = (await engine.exec(`SELECT count() FROM system.databases WHERE name = '${serviceDb('dr')}'`)).toString().trim();
      expect(dbs).toBe('0');
    } finally {
      release();
      await services.close();
    }
  }, 60_000);

  it('a retry that finds no engine for the tenant clears its wait without saying the tables were upgraded', async () => {
    const dir = tempDir('roost-svc-gone-');
    dirs.push(dir);
    const engine = new EmbeddedCell({ tenant: 'gn', dir, idleMs: 60_000, healthMs: 1_000, log: createLogger('silent') });
    cells.push(engine);
    let present = true;
    const faulty = intercepted(engine, async (sql) => {
      if (sql.startsWith('SELECT name, type FROM system.columns')) throw new Error('injected: the server did not answer');
    });
    const { log, lines } = logged();
    const services = new ServiceLog(() => (present ? faulty : undefined), log, 60_000);
    try {
      await services.ensure('gn');
      expect(lines.some((l) => String(l.msg).startsWith('service table upgrade failed'))).toBe(true);
      present = false;
      await new Promise((r) => setTimeout(r, UPGRADE_RETRY_FIRST_MS + 100));
      await services.ensure('gn');
      expect(lines.some((l) => l.msg === 'service tables upgraded after an earlier failure')).toBe(false);
    } finally {
      await services.close();
    }
  }, 60_000);
});
