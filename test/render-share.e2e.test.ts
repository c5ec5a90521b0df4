/**
 * Templates render on the server's event loop, shared by every tenant: a tenant whose
 * endpoint calls keep rendering heavy templates gets 429 once it has used its share of
 * rendering time, while another tenant's calls are served. Real server, real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
const tokens: Record<string, string> = {};
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

// A loop of 100k iterations over a big expression: as much work as one render may do (it
// stops at the step limit with a 422, having used the loop for a while).
const items = Array.from({ length: 100_000 }, () => '1').join(',');
const expr = Array.from({ length: 60 }, (_, i) => `(1 + ${i} * 2 - 1)`).join(' + ');
const HEAVY = `%\n{% for i in split_to_array(String(xs, '${items}')) %}{% set a = ${expr} %}{% end %}SELECT 1 AS x`;

beforeAll(async () => {
  srv = await startServer({ dev: false });
  const op = srv.operatorToken;
  for (const t of ['heavy', 'light']) {
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: t }) })).status).toBe(201);
    const ws = await call(`${srv.url}/v0/tenants/${t}/workspaces`, { method: 'POST', token: op, ...json({ name: 'main' }) });
    tokens[t] = ws.body.token;
  }
  const mk = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: tokens.heavy, ...json({ name: 'busy', nodes: [{ name: 'n', sql: 'SELECT 1 AS x', type: 'endpoint' }] }) });
  expect(mk.status, mk.text).toBeLessThan(300);
  // The heavy node is set after creation as well as an endpoint of its own (pipe checks render it too).
  const light = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: tokens.light, ...json({ name: 'small', nodes: [{ name: 'n', sql: "%\nSELECT {{ Int32(v, 7) }} AS v", type: 'endpoint' }] }) });
  expect(light.status, light.text).toBeLessThan(300);
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe("a tenant's share of template rendering", () => {
  it('answers 429 with Retry-After once the share is used, and serves the other tenant meanwhile', async () => {
    let limited: Awaited<ReturnType<typeof call>> | undefined;
    const statuses: number[] = [];
    for (let i = 0; i < 60 && !limited; i++) {
      // Each call renders the heavy template (as a pipe check of a new pipe) until the step limit.
      const r = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: tokens.heavy, ...json({ name: `heavy_${i}`, nodes: [{ name: 'n', sql: HEAVY, type: 'endpoint' }] }) });
      statuses.push(r.status);
      if (r.status === 429) limited = r;
    }
    expect(limited, `statuses: ${statuses.join(',')}`).toBeDefined();
    // Before the limit every call ran its template to the step limit (422), none was stored.
    expect(statuses.slice(0, -1).every((s) => s === 422)).toBe(true);
    expect(statuses.length).toBeGreaterThan(1);
    expect(limited!.body).toMatchObject({ code: 'RATE_LIMITED' });
    expect(limited!.body.error).toMatch(/share of the server's rendering time/);
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // The other tenant's templates are rendered and answered as usual.
    const other = await call(`${srv.url}/v0/pipes/small.json?v=41`, { token: tokens.light });
    expect(other.status, other.text).toBe(200);
    expect(other.body.data).toEqual([{ v: 41 }]);
    // The limited tenant's plain (non-template) endpoints are not held back: nothing to render.
    expect((await call(`${srv.url}/v0/pipes/busy.json`, { token: tokens.heavy })).status).toBe(200);
    // Its share comes back with time.
    const wait = Number(limited!.headers.get('retry-after'));
    await new Promise((r) => setTimeout(r, wait * 1000 + 200));
    const again = await call(`${srv.url}/v0/pipes`, { method: 'POST', token: tokens.heavy, ...json({ name: 'heavy_again', nodes: [{ name: 'n', sql: HEAVY, type: 'endpoint' }] }) });
    expect(again.status).toBe(422);
  }, 120_000);
});
