/**
 * Buffered events (202) of a data source renamed between them: every acknowledged event is
 * stored. Those sent under the new name were dropped by the engine's insert deduplication (their
 * segments were named as the first ones under the old name, and the flush's token is made of
 * those names). Real server, real engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sql = async (q: string) => {
  const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(q)}`, { token });
  expect(r.status, r.text).toBe(200);
  return r.text;
};
const send = async (name: string, id: number, k: string) => {
  const r = await call(`${srv.url}/v0/events?name=${name}`, { method: 'POST', token, body: `{"id":${id},"k":"${k}"}\n` });
  expect(r.status, r.text).toBe(202);
};
/** Waits for `n` rows in `name` (buffered events are flushed within a few seconds). */
const rows = async (name: string, n: number) => {
  let got = '';
  for (let i = 0; i < 100; i++) {
    got = await sql(`SELECT k, count() AS c FROM ${name} GROUP BY k ORDER BY k FORMAT CSV`);
    const total = got.trim().split('\n').filter(Boolean).reduce((s, l) => s + Number(l.split(',')[1]), 0);
    if (total >= n) break;
    await sleep(200);
  }
  return got;
};

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('a data source renamed between buffered events', () => {
  it('stores the events sent under its new name (and again under the old one, renamed back)', async () => {
    const schema = encodeURIComponent('id Int64 `json:$.id`, k String `json:$.k`');
    expect((await call(`${srv.url}/v0/datasources?name=ren&schema=${schema}`, { method: 'POST', token })).status).toBe(200);
    for (const id of [1, 2, 3]) { await send('ren', id, 'before'); await sleep(700); }
    expect(await rows('ren', 3)).toBe('"before",3\n');
    expect((await call(`${srv.url}/v0/datasources/ren?name=ren_b`, { method: 'PUT', token })).status).toBe(200);
    for (const id of [11, 12, 13, 14]) { await send('ren_b', id, 'after'); await sleep(700); }
    expect(await rows('ren_b', 7)).toBe('"after",4\n"before",3\n');
    expect((await call(`${srv.url}/v0/datasources/ren_b?name=ren`, { method: 'PUT', token })).status).toBe(200);
    for (const id of [21, 22, 23]) { await send('ren', id, 'back'); await sleep(700); }
    expect(await rows('ren', 10)).toBe('"after",4\n"back",3\n"before",3\n');
  }, 60_000);
});

describe('wait=', () => {
  it('is a yes or a no: anything else is a 400 that stores nothing (wait=maybe was a 202)', async () => {
    const schema = encodeURIComponent('id Int64 `json:$.id`');
    expect((await call(`${srv.url}/v0/datasources?name=waits&schema=${schema}`, { method: 'POST', token })).status).toBe(200);
    const bad = await call(`${srv.url}/v0/events?name=waits&wait=maybe`, { method: 'POST', token, body: '{"id":1}\n' });
    expect(bad.status, bad.text).toBe(400);
    expect(bad.body.code).toBe('INVALID_PARAMETER');
    expect((await call(`${srv.url}/v0/events?name=waits&wait=false`, { method: 'POST', token, body: '{"id":2}\n' })).status).toBe(202);
    expect((await call(`${srv.url}/v0/events?name=waits&wait=true`, { method: 'POST', token, body: '{"id":3}\n' })).status).toBe(200);
    await sleep(1500);
    expect(await sql('SELECT groupArray(id) FROM (SELECT id FROM waits ORDER BY id) FORMAT CSV')).toBe('"[2,3]"\n');
  }, 30_000);
});
