/**
 * A body that is JSON but not NDJSON — an array of objects, a pretty-printed object — or a
 * multipart form sent to /v0/events is a 400 saying what to send, with nothing stored: each was
 * answered as a success (202 "1 row", 200) and then all of it quarantined as invalid JSON lines
 * (black-box round). A later line that is not an object is still quarantined alone. Real server,
 * engine, HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import zlib from 'node:zlib';
import { call, postReadingAnswer, startServer, type RunningServer } from './helpers/server.js';
import { drained } from './helpers/events.js';

let srv: RunningServer;
let token: string;
const post = (p: string, body: BodyInit, headers: Record<string, string> = {}) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers });
const count = async (table: string) => Number((await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`SELECT count() AS c FROM ${table} FORMAT JSON`)}`, { token })).body.data[0].c);

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  const made = await post(`/v0/datasources?name=sh&format=ndjson&schema=${encodeURIComponent('id Int32 `json:$.id`')}`, '');
  expect(made.status, made.text).toBe(200);
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('a JSON body that is not NDJSON', () => {
  const array = '[{"id":7},{"id":8},{"id":9}]';
  const pretty = '{\n  "id": 10\n}\n';
  const nested = '{"id": 11, "more": {\n "a": 1}}\n';
  const bigArray = `[${Array.from({ length: 20_000 }, (_, i) => `{"id":${i}}`).join(',')}]`;  // one line past 64 KiB

  it('is a 400 on /v0/events, buffered or with wait=true, and on an NDJSON append; nothing stored or quarantined', async () => {
    for (const path of ['/v0/events?name=sh', '/v0/events?name=sh&wait=true', '/v0/datasources?name=sh&mode=append&format=ndjson']) {
      for (const [what, body, message] of [
        ['array', array, /the body is a JSON array: send NDJSON/],
        ['array past 64 KiB', bigArray, /the body is a JSON array/],
        ['array after a BOM and blank lines', `\uFEFF\n\n  ${array}\n`, /the body is a JSON array/],
        ['pretty-printed', pretty, /pretty-printed JSON/],
        ['pretty-printed, nested', '{"id": {\n "x": 1 }\n}\n', /pretty-printed JSON/],
      ] as const) {
        const r = body === bigArray ? await postReadingAnswer(`${srv.url}${path}`, token, body) : await post(path, body).catch((e: Error) => { throw new Error(`${path} ${what}: ${e.message} (${String((e as { cause?: unknown }).cause)})`); });
        expect(r.status, `${path} ${what}: ${r.text}`).toBe(400);
        expect(r.body.code).toBe('UNSUPPORTED_FORMAT');
        expect(r.body.error).toMatch(message);
      }
      // gzip-compressed the same.
      const gz = await post(path, zlib.gzipSync(array), { 'Content-Encoding': 'gzip' }).catch((e: Error) => { throw new Error(`${path} gzip: ${e.message} (${String((e as { cause?: unknown }).cause)})`); });
      expect(gz.status, gz.text).toBe(400);
    }
    const form = new FormData();
    form.append('ndjson', new Blob(['{"id":3}\n']), 'e.ndjson');
    const multipart = await post('/v0/events?name=sh', form);
    expect(multipart.status, multipart.text).toBe(400);
    expect(multipart.body.error).toMatch(/not as a multipart\/form-data upload/);
    await drained(srv, 'sh', 20_000);
    expect(await count('sh')).toBe(0);
    expect(await count('sh_quarantine')).toBe(0);
  });

  it('past the first line is NDJSON with bad lines: stored and quarantined line by line', async () => {
    const body = `{"id":1}\n[1,2]\n${nested}{"id":2}\n`;
    const w = await post('/v0/events?name=sh&wait=true', body);
    expect(w.status, w.text).toBe(200);
    expect(w.body).toEqual({ successful_rows: 2, quarantined_rows: 3 });
    const b = await post('/v0/events?name=sh', '{"id":5}\n[6]\n');
    expect(b.status, b.text).toBe(202);
    await drained(srv, 'sh', 20_000);
    expect(await count('sh')).toBe(3);
    expect(await count('sh_quarantine')).toBe(4);
  });
});

describe('messages that say what to do', () => {
  it('events to a tinybird.* log, and /v0/analyze?url=, say why not (not "create it", not "empty body")', async () => {
    const svc = await post('/v0/events?name=tinybird.datasources_ops_log', '{"a":1}\n');
    expect(svc.status, svc.text).toBe(404);
    expect(svc.body.error).toMatch(/the tinybird\.\* data sources are logs Roost writes/);
    expect(svc.body.error).not.toMatch(/create it/);
    const url = await call(`${srv.url}/v0/analyze?url=${encodeURIComponent('https://example.com/x.csv')}`, { method: 'POST', token });
    expect(url.status, url.text).toBe(400);
    expect(url.body.error).toMatch(/at a URL is not supported/);
  });
});
