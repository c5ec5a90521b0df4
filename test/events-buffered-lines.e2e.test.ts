/**
 * Buffered events (`/v0/events` answered 202) are flushed into the engine with other requests'
 * events, many segments read as one body. A quarantined event's `c__line` is the line of its own
 * request, as for `wait=true` and `/v0/datasources`: it counted the lines of the whole flush,
 * which named no line the client had sent. Real server, real cell, over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
beforeAll(async () => {
  // No timed flush during the test: the flush comes with the rows delete below, all segments at once.
  srv = await startServer({ args: ['--events-flush', '3600000'] });
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 120_000);
afterAll(async () => { await srv?.stop(); });

const enc = encodeURIComponent;
const sql = async (q: string) => {
  const r = await call(`${srv.url}/v0/sql?q=${enc(`${q} FORMAT JSONEachRow`)}`, { token });
  expect(r.status, r.text).toBe(200);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
};

describe('quarantined buffered events', () => {
  it('name the line of their own request, whichever requests were flushed with them', async () => {
    const r0 = await call(`${srv.url}/v0/datasources?name=bl&format=ndjson&schema=${enc('`id` Int32 `json:$.id`, `req` String `json:$.req`')}`, { method: 'POST', token });
    expect(r0.status, r0.text).toBe(200);
    const bodies = [
      // a: bad at its line 3
      ['{"id":1,"req":"a"}', '{"id":2,"req":"a"}', '{"id":"x3","req":"a"}'].join('\n') + '\n',
      // b: bad at its line 1, no line end at the end of the body
      ['{"id":"x1","req":"b"}', '{"id":4,"req":"b"}'].join('\n'),
      // c: a blank line (a line, not an event), then not JSON at its line 3, bad at line 5 (CRLF)
      ['{"id":5,"req":"c"}', '', 'not json', '{"id":6,"req":"c"}', '{"id":"x5","req":"c"}'].join('\r\n') + '\r\n',
    ];
    for (const b of bodies) {
      const r = await call(`${srv.url}/v0/events?name=bl`, { method: 'POST', token, body: b });
      expect(r.status, r.text).toBe(202);
    }
    // A rows delete flushes the data source's buffered events first (every segment, one flush).
    const d = await call(`${srv.url}/v0/datasources/bl/delete`, { method: 'POST', token, body: new URLSearchParams({ delete_condition: 'id = -1' }) });
    expect(d.status, d.text).toBe(200);
    expect(await sql('SELECT id, req FROM bl ORDER BY id')).toEqual([
      { id: 1, req: 'a' }, { id: 2, req: 'a' }, { id: 4, req: 'b' }, { id: 5, req: 'c' }, { id: 6, req: 'c' },
    ]);
    const q = await sql('SELECT c__line, trimRight(c__raw) AS raw, c__import_id FROM bl_quarantine ORDER BY raw');
    expect(q.map((x) => [Number(x.c__line), x.raw])).toEqual([
      [3, 'not json'],
      [1, '{"id":"x1","req":"b"}'],
      [3, '{"id":"x3","req":"a"}'],
      [5, '{"id":"x5","req":"c"}'],
    ]);
    // One flush took them all (the lines above are not each a body's of its own).
    expect(new Set(q.map((x) => x.c__import_id)).size).toBe(1);
  });
});
