/**
 * The template work budget is per endpoint call, not per node: an endpoint whose template nodes
 * each stay inside the budget, but together do several times its work, is refused (422), so one
 * call holds the server's event loop for one budget at most (six nodes near the budget each held
 * it ~4 s, every tenant's requests and /v0/health waiting; found by a black-box round).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 120_000);
afterAll(async () => { await srv?.stop(); });

// Each node walks the parameter `s` (len() counts its characters) once per item of `l`, then
// reads the node before it: with s of 100,000 characters and 70 items, 7 million steps a node.
const node = (k: number) => `%\n{% for i in split_to_array(String(l, 'a')) %}{% set n = len(String(s, 'x')) %}{% end %}SELECT ${k === 0 ? '1 AS v' : `v FROM n${k - 1}`}`;

describe('the template work budget of one call', () => {
  it('is shared by the nodes it renders: three nodes of 7 million steps each are refused, one alone answers', async () => {
    const nodes = [0, 1, 2].map((k) => ({ name: `n${k}`, sql: node(k), ...(k === 2 ? { type: 'endpoint' } : {}) }));
    const made = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'heavy3', nodes }) });
    expect(made.status, made.text).toBe(200);
    const one = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'heavy1', nodes: [{ name: 'n0', sql: node(0), type: 'endpoint' }] }) });
    expect(one.status, one.text).toBe(200);
    const form = new URLSearchParams({ s: 'x'.repeat(100_000), l: Array(70).fill('a').join(',') });
    const post = (pipe: string) => call(`${srv.url}/v0/pipes/${pipe}.json`, { method: 'POST', token, headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form.toString() });
    // One node's 7 million steps are inside the budget (20 million).
    const alone = await post('heavy1');
    expect(alone.status, alone.text).toBe(200);
    expect(alone.body.data).toEqual([{ v: 1 }]);
    // Three of them in one call are not: refused with the call's budget named.
    const three = await post('heavy3');
    expect(three.status, three.text).toBe(422);
    expect(three.body.code).toBe('TEMPLATE_INVALID');
    expect(three.body.error).toMatch(/this call's templates .* in all/);
    // With little work each, the same pipe answers.
    const light = await call(`${srv.url}/v0/pipes/heavy3.json?s=x&l=a`, { token });
    expect(light.status, light.text).toBe(200);
    expect(light.body.data).toEqual([{ v: 1 }]);
  }, 120_000);
});
