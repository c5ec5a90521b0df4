/**
 * A tenant's cell that cannot start (its engine refuses its directory): the reason was only raw
 * stderr lines, every request started the cell again (a dozen starts in 10 s), and
 * roost_cells_running went negative (found by the disk round of the twenty-third session). Now the
 * log says why, starts back off, and the gauge counts only cells that ran. Real server; the
 * engine's directory holds a definition that is not SQL.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { call, startServer } from './helpers/server.js';

describe('a cell that cannot start', () => {
  it('is tried again after a growing pause, the log says why, and the cells gauge stays true', async () => {
    let srv = await startServer();
    const dataDir = srv.dataDir;
    try {
      const token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token as string;
      const sql = () => call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT 1 FORMAT TSV')}`, { token });
      expect((await sql()).status).toBe(200);
      await srv.stop();
      const broken = path.join(dataDir, 'cells', 'local', 'db', 'metadata', 'broken.sql');
      fs.writeFileSync(broken, 'this is not a database definition\n');
      srv = await startServer({ dataDir });

      const first = await sql();
      expect(first.status, first.text).toBe(503);
      const failed = () => srv.logs.filter((l) => l.msg === 'cell failed to start');
      expect(failed()).toHaveLength(1);
      expect(String(failed()[0]!.reason)).toMatch(/Code: 62\. DB::Exception: Syntax error \(in file metadata\/broken\.sql\)/);
      // Within the pause: answered at once, no new start.
      const again = await sql();
      expect(again.status).toBe(503);
      expect(again.body.error).toMatch(/failed to start 1 time in a row; it is tried again in \d+ s/);
      expect(Number(again.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(failed()).toHaveLength(1);
      const metrics = (await call(`${srv.url}/metrics`, { token: srv.operatorToken })).text;
      expect(Number(/^roost_cells_running (-?\d+)/m.exec(metrics)?.[1])).toBe(0);

      // Mended: the next try after the pause starts it.
      fs.rmSync(broken);
      let ok = 0;
      for (let i = 0; i < 50 && ok !== 200; i++) { await new Promise((r) => setTimeout(r, 200)); ok = (await sql()).status; }
      expect(ok).toBe(200);
      // The gauge says what runs. The cell just answered, so it is 1, unless the cell stopped
      // since (a loaded CI machine once read 0 there with no log kept): then the log must say
      // so, and the gauge must agree with the cells the server has running.
      const gauge = async () => Number(/^roost_cells_running (-?\d+)/m.exec((await call(`${srv.url}/metrics`, { token: srv.operatorToken })).text)?.[1]);
      const cellLog = () => srv.logs.filter((l) => /cell/.test(String(l.msg))).map((l) => `${l.msg} ${JSON.stringify({ pid: l.pid, code: l.code, signal: l.signal })}`);
      const after = await gauge();
      const ended = srv.logs.slice(srv.logs.findLastIndex((l) => l.msg === 'cell started')).filter((l) => /died|restarted|stopped|health/.test(String(l.msg)));
      if (ended.length === 0) expect(after, cellLog().join('\n')).toBe(1);
      const running = (await call(`${srv.url}/v0/ready`)).body.cells_running as number;
      expect(await gauge(), cellLog().join('\n')).toBe(running);
    } finally {
      await srv.stop();
    }
  }, 60_000);
});
