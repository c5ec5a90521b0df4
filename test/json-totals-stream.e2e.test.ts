/**
 * A JSON result WITH TOTALS over the buffered cap (streamed by the cell, several engine blocks)
 * is one valid document with its `totals`, through /v0/sql and a `.json` pipe endpoint.
 * It broke off mid-stream before (decisions: "WITH TOTALS in JSON"). Real server, real engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
// ~5 MB of JSON: over the 2 MiB buffered cap, three engine blocks and the totals chunk.
const SQL = 'SELECT number AS s, count() AS c FROM numbers(150000) GROUP BY s WITH TOTALS ORDER BY s';

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const r = await call(`${srv.url}/v0/pipes`, {
    method: 'POST', token, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'totals_big', nodes: [{ name: 'n', type: 'endpoint', sql: SQL }] }),
  });
  expect(r.status, r.text).toBe(200);
}, 90_000);
afterAll(async () => { await srv?.stop(); });

function check(r: { status: number; text: string }) {
  expect(r.status).toBe(200);
  expect(r.text.length).toBeGreaterThan(2 * 1024 * 1024);
  const j = JSON.parse(r.text);
  expect(j.rows).toBe(150000);
  expect(j.data).toHaveLength(150000);
  expect(j.data[149999]).toEqual({ s: 149999, c: 1 });
  expect(j.totals).toEqual({ s: 0, c: 150000 });
  // (The server adds rows_before_limit_at_least after rows, as on every JSON result.)
  expect(Object.keys(j).slice(0, 4)).toEqual(['meta', 'data', 'totals', 'rows']);
}

describe('WITH TOTALS in a streamed JSON result', () => {
  it('/v0/sql FORMAT JSON answers one document with the totals', async () => {
    check(await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${SQL} FORMAT JSON`)}`, { token }));
  }, 60_000);

  it('a .json pipe endpoint answers one document with the totals', async () => {
    check(await call(`${srv.url}/v0/pipes/totals_big.json`, { token }));
  }, 60_000);
});
