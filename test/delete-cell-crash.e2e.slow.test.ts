/**
 * A rows delete whose tenant cell dies (kill -9) while the delete runs: the engine keeps the
 * mutation it accepted and finishes it when the cell is back, so the answer must not be a 503
 * "retry, nothing was done". Real server, real engine, a real SIGKILL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, childProcesses, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const count = async (where = '1') => {
  for (let i = 0; ; i++) {
    const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`SELECT count() FROM big WHERE ${where} FORMAT CSV`)}`, { token });
    if (r.status === 200) return Number(r.text.trim());
    if (i > 100) throw new Error(`${r.status} ${r.text}`);
    await sleep(200);
  }
};

beforeAll(async () => {
  // Enough rows that the delete takes a while (parts are rewritten one after another). Built
  // before the first request: built between two requests, it took longer than the server then kept
  // an idle connection (5 s) on a loaded machine, and fetch sent the upload on the connection the
  // server had just closed (EPIPE, the server never saw the request).
  const lines: string[] = [];
  for (let i = 0; i < 4_000_000; i++) lines.push(`${i},row number ${i}`);
  const body = lines.join('\n') + '\n';
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await call(`${srv.url}/v0/datasources?name=big&schema=${encodeURIComponent('id UInt64, s String')}`, { method: 'POST', token })).status).toBe(200);
  const up = await call(`${srv.url}/v0/datasources?name=big&mode=append`, { method: 'POST', token, body, headers: { 'Content-Type': 'text/csv' } });
  expect(up.status, up.text).toBe(200);
}, 180_000);
afterAll(async () => { await srv?.stop(); });

describe('a rows delete cut by the death of its cell', () => {
  it('answers that the delete may have been applied (502, not retryable), and what it deleted is consistent with that', async () => {
    expect(await count()).toBe(4_000_000);
    const del = call(`${srv.url}/v0/datasources/big/delete`, { method: 'POST', token, body: new URLSearchParams({ delete_condition: 'id % 3 = 0' }) });
    await sleep(150);
    const [cell] = childProcesses(srv.proc.pid!, 'cell-main');
    expect(cell, 'the tenant cell process').toBeDefined();
    process.kill(cell!, 'SIGKILL');
    const r = await del;
    if (r.status === 200) {
      // The delete finished before the kill: nothing to check beyond its answer.
      expect(await count('id % 3 = 0')).toBe(0);
      return;
    }
    if (r.status === 503) {
      // The kill came before the delete reached the engine (its count of the rows first, on a
      // loaded machine): "retry" must then mean nothing was deleted, also once the cell is back.
      expect(r.body.code).toBe('CELL_UNAVAILABLE');
      await count();
      await sleep(3000);
      expect(await count('id % 3 = 0')).toBe(1_333_334);
      return;
    }
    expect(r.status, r.text).toBe(502);
    expect(r.body.code).toBe('DELETE_OUTCOME_UNKNOWN');
    expect(r.body.error).toMatch(/may have been applied/);
    expect(r.headers.get('retry-after')).toBeNull();
    // The engine keeps a delete it recorded and finishes it once the cell is back, so a 503
    // "retry" would be a lie; a kill in the moment between the statement's arrival and the
    // engine's record of it leaves nothing deleted (CI met that once). Either way the outcome is
    // whole: every row of the condition deleted or none, and nothing else.
    const all = 1_333_334;
    let left = -1;
    let sameSince = Date.now();
    for (let i = 0; i < 200; i++) {
      const now = await count('id % 3 = 0');
      if (now !== left) sameSince = Date.now();
      left = now;
      if (left === 0 || (left === all && Date.now() - sameSince > 8000)) break;
      await sleep(300);
    }
    expect([0, all]).toContain(left);
    expect(await count()).toBe(4_000_000 - (all - left));
    expect(await count('id % 3 != 0')).toBe(4_000_000 - all);
  }, 120_000);
});
