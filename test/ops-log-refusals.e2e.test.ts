/**
 * Refused operations on a known data source leave their row in tinybird.datasources_ops_log, as
 * the docs say: an append refused for its declared Content-Length with a form's media type (the
 * body is looked at before the data source is known; the same body sent chunked had its row and
 * this one none), and a create refused because the name is taken (409). Real server, engine, HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
const enc = encodeURIComponent;

beforeAll(async () => {
  srv = await startServer({ args: ['--max-upload', '100000'] });
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await call(`${srv.url}/v0/datasources?name=lim&schema=${enc('id Int32, s String')}`, { method: 'POST', token })).status).toBe(200);
}, 60_000);
afterAll(async () => { await srv?.stop(); });

/** POST with a declared length, its answer read even when it comes before the body is all sent. */
function postSized(path: string, body: Buffer, type: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${srv.url}${path}`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': type, 'Content-Length': body.length } }, (res) => {
      let text = '';
      res.on('data', (b) => { text += b; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', (e) => { if (!req.writableEnded) reject(e); });
    req.end(body);
  });
}

async function opsRows(event: string): Promise<Array<{ result: string; error: string }>> {
  for (let i = 0; i < 100; i++) {
    const r = await call(`${srv.url}/v0/sql?q=${enc(`SELECT result, error FROM tinybird.datasources_ops_log WHERE datasource_name = 'lim' AND event_type = '${event}' AND result = 'error' FORMAT JSON`)}`, { token });
    if (r.status === 200 && r.body.data.length) return r.body.data;
    await new Promise((res) => setTimeout(res, 200));
  }
  return [];
}

describe('refusals in the operations log', () => {
  it('an append over --max-upload by its Content-Length, sent as a form (curl --data-binary), has its error row', async () => {
    const body = Buffer.from('1,x\n'.repeat(50_000));
    const r = await postSized('/v0/datasources?name=lim&mode=append', body, 'application/x-www-form-urlencoded');
    expect(r.status).toBe(413);
    const logged = await opsRows('append');
    expect(logged).toHaveLength(1);
    expect(logged[0]!.error).toMatch(/100000|max-upload|too large/i);
  });

  it('a create of a name already taken (409) has its error row', async () => {
    const r = await call(`${srv.url}/v0/datasources?name=lim&schema=${enc('id Int32')}`, { method: 'POST', token });
    expect(r.status).toBe(409);
    const logged = await opsRows('create');
    expect(logged).toHaveLength(1);
    expect(logged[0]!.error).toMatch(/already exists/);
  });
});
