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
      const after = (await call(`${srv.url}/metrics`, { token: srv.operatorToken })).text;
      expect(Number(/^roost_cells_running (-?\d+)/m.exec(after)?.[1])).toBe(1);
    } finally {
      await srv.stop();
    }
  }, 60_000);
});
