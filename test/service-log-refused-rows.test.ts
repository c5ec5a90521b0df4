/**
 * Rows the engine refuses do not stop a tenant's service log (src/service/service-log.ts): a row
 * refused on its own is found by halves and dropped (logged, without its text), the rows beside
 * it are stored, and later writes go through; a batch the engine refuses as a whole (or a server
 * that is down) is kept for the next flush, as before. A string holding a lone UTF-16 surrogate
 * (the engine's JSON input refuses it) is stored with U+FFFD in its place. A real embedded engine
 * (chdb in its cell); for the refuse-everything case, its insert is made to fail with an engine
 * error.
 */
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedCell } from '../src/cells/embedded.js';
import type { Engine } from '../src/cells/engine.js';
import { QueryFailed } from '../src/errors.js';
import { createLogger } from '../src/log/logger.js';
import { ServiceLog, serviceDb } from '../src/service/service-log.js';
import { tempDir } from './helpers/server.js';

const dirs: string[] = [];
const cells: EmbeddedCell[] = [];
afterAll(async () => {
  await Promise.all(cells.map((c) => c.close()));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function setup(tenant: string, faults: { refuseAll: boolean } = { refuseAll: false }) {
  const dir = tempDir('roost-svc-refused-');
  dirs.push(dir);
  const engine = new EmbeddedCell({ tenant, dir, idleMs: 60_000, healthMs: 1_000, log: createLogger('silent') });
  cells.push(engine);
  const faulty = new Proxy(engine, {
    get(target, key) {
      if (key === 'insert') {
        return (...args: Parameters<Engine['insert']>) => (faults.refuseAll
          ? Promise.reject(new QueryFailed('Code: 81. DB::Exception: Database does not exist (injected)', 81))
          : target.insert(...args));
      }
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Engine;
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('debug', {}, (line) => { lines.push(JSON.parse(line)); });
  const services = new ServiceLog(() => faulty, log, 60_000);
  const stored = async (): Promise<string[]> => (await engine.exec(`SELECT request_id FROM ${serviceDb(tenant)}.pipe_stats_rt ORDER BY request_id`)).toString().split('\n').filter(Boolean);
  const row = (id: string, extra: Record<string, unknown> = {}) => ({ start_datetime: '2026-11-29 10:00:00.000', workspace: 'main', pipe_name: 'p', duration: 0.25, request_id: id, parameters: {}, ...extra });
  return { engine, services, lines, stored, row };
}

describe('service log rows the engine refuses', () => {
  it('a refused row among good ones is dropped and said so; the others are stored, and so are later rows', async () => {
    const { services, lines, stored, row } = setup('rf');
    try {
      for (let i = 0; i < 9; i++) services.write('rf', 'pipe_stats_rt', row(`r${i}`));
      services.write('rf', 'pipe_stats_rt', row('bad', { duration: 'not a number' }));
      for (let i = 9; i < 13; i++) services.write('rf', 'pipe_stats_rt', row(`r${i}`));
      await services.flush();
      expect(await stored()).toEqual(['r0', 'r1', 'r10', 'r11', 'r12', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'r8', 'r9']);
      const drop = lines.filter((l) => l.msg === 'service log rows refused by the engine were dropped');
      expect(drop).toHaveLength(1);
      expect(drop[0]).toMatchObject({ tenant: 'rf', dropped_rows: 1 });
      expect(JSON.stringify(drop[0])).not.toContain('not a number');  // the row's text is not logged
      services.write('rf', 'pipe_stats_rt', row('r13'));
      await services.flush();
      expect(await stored()).toContain('r13');
      expect(lines.some((l) => l.msg === 'service log write failed; rows kept for the next flush')).toBe(false);
    } finally {
      await services.close();
    }
  }, 60_000);

  it('a refused row alone is kept until rows beside it show it is the one refused', async () => {
    const { services, lines, stored, row } = setup('rl');
    try {
      await services.ensure('rl');
      services.write('rl', 'pipe_stats_rt', row('bad', { duration: 'not a number' }));
      await services.flush();
      expect(lines.filter((l) => l.msg === 'service log write failed; rows kept for the next flush')).toHaveLength(1);
      services.write('rl', 'pipe_stats_rt', row('later'));
      await services.flush();
      expect(await stored()).toEqual(['later']);
      expect(lines.filter((l) => l.msg === 'service log rows refused by the engine were dropped')).toHaveLength(1);
    } finally {
      await services.close();
    }
  }, 60_000);

  it('a batch the engine refuses as a whole is kept, every row, and stored once the engine takes it', async () => {
    const faults = { refuseAll: false };
    const { services, lines, stored, row } = setup('ra', faults);
    try {
      await services.ensure('ra');
      faults.refuseAll = true;
      for (let i = 0; i < 6; i++) services.write('ra', 'pipe_stats_rt', row(`k${i}`));
      await services.flush();
      expect(lines.some((l) => l.msg === 'service log rows refused by the engine were dropped')).toBe(false);
      expect(lines.filter((l) => l.msg === 'service log write failed; rows kept for the next flush')).toHaveLength(1);
      faults.refuseAll = false;
      await services.flush();
      expect(await stored()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    } finally {
      await services.close();
    }
  }, 60_000);

  it('a lone UTF-16 surrogate in a value is stored as U+FFFD instead of stopping the log', async () => {
    const { engine, services, lines, stored, row } = setup('su');
    try {
      services.write('su', 'pipe_stats_rt', row('s1', { parameters: { q: 'a\ud800b' }, error_message: '\udc00' }));
      services.write('su', 'pipe_stats_rt', row('s2', { parameters: { q: '\ud83d\ude00' } }));  // a whole pair stays
      await services.flush();
      expect(await stored()).toEqual(['s1', 's2']);
      const got = (await engine.exec(`SELECT parameters['q'] AS q, error_message AS e FROM ${serviceDb('su')}.pipe_stats_rt ORDER BY request_id FORMAT JSONEachRow`)).toString().trim().split('\n').map((l) => JSON.parse(l));
      expect(got).toEqual([{ q: 'a\ufffdb', e: '\ufffd' }, { q: '\ud83d\ude00', e: '' }]);
      expect(lines.some((l) => String(l.msg).startsWith('service log'))).toBe(false);
    } finally {
      await services.close();
    }
  }, 60_000);
});
