/**
 * A tenant's `query_parallelism`: how many of its queries its cell's engine runs at once (engine
 * sessions on the tenant's directory; one session runs its queries one after another). Default
 * two; set per tenant, changed while the cell runs. Real server, real embedded engine, real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
const tokens: Record<string, string> = {};
const op = (p: string, method: string, body?: unknown) => call(`${srv.url}${p}`, { method, token: srv.operatorToken, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
const sql = (slug: string, q: string) => call(`${srv.url}/v0/sql?q=${encodeURIComponent(q)}`, { token: tokens[slug] });

async function tenant(slug: string, limits?: Record<string, number>): Promise<void> {
  const t = await op('/v0/tenants', 'POST', { slug, ...(limits ? { limits } : {}) });
  expect(t.status, t.text).toBe(201);
  const ws = await op(`/v0/tenants/${slug}/workspaces`, 'POST', { name: 'main' });
  expect(ws.status, ws.text).toBe(201);
  tokens[slug] = ws.body.token;
}

/** What /metrics says of the tenant's cell's engine sessions (undefined while it has no running cell). */
async function sessions(slug: string): Promise<number | undefined> {
  const m = await call(`${srv.url}/metrics`, { token: srv.operatorToken });
  const line = new RegExp(`^roost_cell_engine_sessions\\{tenant="${slug}"\\} (\\d+)$`, 'm').exec(m.text);
  return line ? Number(line[1]) : undefined;
}

/**
 * Reads in the tenant's cell until /metrics shows `want` engine sessions (the cell opens one more,
 * or closes one, as its queries ask; the count is read at its health checks, every 200 ms here).
 * Every answer must be right meanwhile: eight at once, two of them failing queries.
 */
async function sessionsBecome(slug: string, want: number, rounds = 40): Promise<number | undefined> {
  let seen: number | undefined;
  for (let round = 0; round < rounds; round++) {
    const answers = await Promise.all(Array.from({ length: 8 }, (_, k) => sql(slug, k < 2 ? 'SELECT throwIf(x = 3) FROM (SELECT arrayJoin([1, 2, 3, 4]) AS x) FORMAT CSV' : `SELECT ${round * 10 + k} AS k FORMAT CSV`)));
    answers.forEach((a, k) => {
      if (k < 2) expect(a.status, a.text).toBeGreaterThanOrEqual(400);
      else expect(a.text, `round ${round}, query ${k}`).toBe(`${round * 10 + k}\n`);
    });
    seen = await sessions(slug);
    if (seen === want) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return seen;
}

beforeAll(async () => {
  srv = await startServer({ env: { ROOST_CELL_HEALTH_MS: '200' } });
}, 120_000);
afterAll(async () => {
  await srv?.stop();
});

describe('query_parallelism', () => {
  it('is a positive whole number up to 16', async () => {
    for (const v of [0, -1, 1.5, 17, '2']) {
      const r = await op('/v0/tenants', 'POST', { slug: 'qp-bad', limits: { query_parallelism: v } });
      expect(r.status, String(v)).toBe(400);
      expect(r.body.code).toBe('INVALID_PARAMETER');
      expect(r.body.error).toMatch(/query_parallelism/);
    }
    expect((await op('/v0/tenants/qp-bad', 'GET')).status).toBe(404);
  });

  it("runs two of a tenant's queries at once by default", async () => {
    await tenant('qp-default');
    expect((await sql('qp-default', 'SELECT 1 FORMAT CSV')).text).toBe('1\n');
    expect(await sessionsBecome('qp-default', 2)).toBe(2);
  }, 60_000);

  it('one at a time with query_parallelism 1, and two after a PATCH, without a restart', async () => {
    await tenant('qp-one', { query_parallelism: 1 });
    expect((await sql('qp-one', 'SELECT 1 FORMAT CSV')).text).toBe('1\n');
    // (Eight rounds: the cell is asked for one session and keeps one.)
    expect(await sessionsBecome('qp-one', 2, 8)).toBe(1);
    const p = await op('/v0/tenants/qp-one', 'PATCH', { limits: { query_parallelism: 2 } });
    expect(p.status, p.text).toBe(200);
    expect(p.body.limits).toMatchObject({ query_parallelism: 2 });
    expect(await sessionsBecome('qp-one', 2)).toBe(2);
    // And back: the second session is no longer used.
    expect((await op('/v0/tenants/qp-one', 'PATCH', { limits: { query_parallelism: 1 } })).status).toBe(200);
    expect(await sessionsBecome('qp-one', 1)).toBe(1);
  }, 90_000);
});
