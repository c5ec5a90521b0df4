/**
 * CSV dialect parameters (`dialect_delimiter`, `dialect_quotechar`, `dialect_escapechar`) are
 * checked before the body is read, with a 400 naming the parameter: a character outside ASCII
 * was cut to its first UTF-8 byte (fields split inside other characters, text stored that is not
 * UTF-8: black-box round, HIGH), and a delimiter equal to the quote the file was sniffed with was
 * a 500 on an append. Real server, engine, HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, postReadingAnswer, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;
const post = (p: string, body?: string) => call(`${srv.url}${p}`, { method: 'POST', token, body, headers: { 'Content-Type': 'text/csv' } });
const rows = async (q: string) => (await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`, { token })).body.data;

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  expect((await post(`/v0/datasources?name=dp&schema=${encodeURIComponent('id Int32, s String')}`)).status).toBe(200);
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('CSV dialect parameters', () => {
  it('outside ASCII are refused (400 naming the parameter) on append, create and analyze; nothing is stored', async () => {
    for (const [param, ch] of [['dialect_delimiter', '¦'], ['dialect_quotechar', '§'], ['dialect_escapechar', 'é']] as const) {
      const body = param === 'dialect_delimiter' ? '1¦Zurich\n2¦£5\n' : '1,café\n';
      const append = await post(`/v0/datasources?name=dp&mode=append&${param}=${encodeURIComponent(ch)}`, body);
      expect(append.status, append.text).toBe(400);
      expect(append.body.code).toBe('INVALID_PARAMETER');
      expect(append.body.error).toContain(`${param} must be one ASCII character`);
      const create = await post(`/v0/datasources?name=dp_new&${param}=${encodeURIComponent(ch)}`, body);
      expect(create.status, create.text).toBe(400);
      const analyze = await post(`/v0/analyze?${param}=${encodeURIComponent(ch)}`, body);
      expect(analyze.status, analyze.text).toBe(400);
    }
    expect(await rows('SELECT count() AS c FROM dp')).toEqual([{ c: 0 }]);
    expect((await call(`${srv.url}/v0/datasources/dp_new`, { token })).status).toBe(404);
  });

  it('that cannot work together are a 400 saying why, given or detected (an append was a 500)', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['dialect_delimiter=%22', '7"x\n', /the delimiter and the quote character are both '"'/],
      ['dialect_quotechar=%3B', '1;x\n2;y\n', /the delimiter and the quote character are both ';'.*may have been detected/],
      ['dialect_delimiter=%0A', '1,x\n', /dialect_delimiter cannot be a line end/],
      ['dialect_escapechar=a', '1,x\n', /dialect_escapechar must be a punctuation character/],
      ['dialect_delimiter=%7C&dialect_escapechar=%7C', '1|x\n', /dialect_escapechar '\|' is also the delimiter/],
    ];
    for (const [q, body, message] of cases) {
      const r = await post(`/v0/datasources?name=dp&mode=append&${q}`, body);
      expect(r.status, `${q}: ${r.text}`).toBe(400);
      expect(r.body.code).toBe('INVALID_PARAMETER');
      expect(r.body.error).toMatch(message);
    }
    expect(await rows('SELECT count() AS c FROM dp')).toEqual([{ c: 0 }]);
  });

  it('in ASCII are read as given (a pipe delimiter, a backslash escape, tab)', async () => {
    expect((await post('/v0/datasources?name=dp&mode=append&dialect_delimiter=%7C', '1|a,b\n')).body.successful_rows).toBe(1);
    expect((await post('/v0/datasources?name=dp&mode=append&dialect_escapechar=%5C', '2,"say \\"hi\\""\n')).body.successful_rows).toBe(1);
    expect((await post('/v0/datasources?name=dp&mode=append&dialect_delimiter=%5Ct', '3\tt\n')).body.successful_rows).toBe(1);
    expect(await rows('SELECT id, s FROM dp ORDER BY id')).toEqual([{ id: 1, s: 'a,b' }, { id: 2, s: 'say "hi"' }, { id: 3, s: 't' }]);
  });

  it('with a backslash escape, \\N alone in a field is NULL (or the DEFAULT), as without one: a MySQL-style export loads', async () => {
    const schema = encodeURIComponent('id Int32, s Nullable(String), n Nullable(Int32), d Int32 DEFAULT 7, t String');
    expect((await post(`/v0/datasources?name=dp_null&schema=${schema}`)).status).toBe(200);
    const r = await post('/v0/datasources?name=dp_null&mode=append&dialect_escapechar=%5C', '1,\\N,\\N,\\N,it\\,s\n2,x\\N,5,8,\\N\n');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ successful_rows: 2, quarantined_rows: 0 });
    expect(await rows('SELECT id, s, n, d, t FROM dp_null ORDER BY id')).toEqual([
      { id: 1, s: null, n: null, d: 7, t: 'it,s' },
      // Inside a value the escape makes N a letter; a String column neither Nullable nor with a
      // DEFAULT keeps the text \\N, as it does without an escape character.
      { id: 2, s: 'xN', n: 5, d: 8, t: '\\N' },
    ]);
  });
});

describe('a parameter given twice with different values', () => {
  it('is a 400 naming it (mode=append&mode=replace appended; the other order replaced), nothing changed', async () => {
    const before = await rows('SELECT count() AS c FROM dp');
    for (const q of ['mode=append&mode=replace', 'mode=replace&mode=append', 'mode=append&format=csv&format=ndjson']) {
      const r = await post(`/v0/datasources?name=dp&${q}`, '9,z\n');
      expect(r.status, `${q}: ${r.text}`).toBe(400);
      expect(r.body).toMatchObject({ code: 'INVALID_PARAMETER' });
      expect(r.body.error).toMatch(/given 2 times with different values/);
    }
    const del = await call(`${srv.url}/v0/datasources/dp/delete`, { method: 'POST', token, body: new URLSearchParams([['delete_condition', 'id = 1'], ['delete_condition', 'id = 2']]) });
    expect(del.status, del.text).toBe(400);
    expect(del.body.parameter).toBe('delete_condition');
    expect(await rows('SELECT count() AS c FROM dp')).toEqual(before);
    // The same value twice is that value.
    expect((await post('/v0/datasources?name=dp&mode=append&mode=append', '9,z\n')).status).toBe(200);
  });
});

describe('the URL and the form disagreeing', () => {
  it('on mode (multipart or urlencoded) or on dry_run of a rows delete is a 400, nothing changed', async () => {
    const before = await rows('SELECT count() AS c FROM dp');
    const form = new FormData();
    form.append('mode', 'replace');
    form.append('csv', new Blob(['7,q\n']), 'f.csv');
    // (Refused as soon as the field is read, its connection closed: the answer is read while the
    // rest of the body may still be on its way, which fetch() reported as "fetch failed" in CI.)
    const refusedPost = async (url: string, body: FormData | URLSearchParams) => {
      const encoded = new Response(body);
      return postReadingAnswer(url, token, Buffer.from(await encoded.arrayBuffer()), { 'Content-Type': encoded.headers.get('content-type')! });
    };
    const mp = await refusedPost(`${srv.url}/v0/datasources?name=dp&mode=append`, form);
    expect(mp.status, mp.text).toBe(400);
    expect(mp.body.parameter).toBe('mode');
    const twice = new FormData();
    twice.append('mode', 'replace');
    twice.append('mode', 'append');
    twice.append('csv', new Blob(['7,q\n']), 'f.csv');
    const tw = await refusedPost(`${srv.url}/v0/datasources?name=dp`, twice);
    expect(tw.status, tw.text).toBe(400);
    // (?dry_run=true with a form's dry_run=false deleted for real.)
    const del = await refusedPost(`${srv.url}/v0/datasources/dp/delete?dry_run=true&delete_condition=${encodeURIComponent('id = 1')}`, new URLSearchParams({ delete_condition: 'id > 0', dry_run: 'false' }));
    expect(del.status, del.text).toBe(400);
    expect(await rows('SELECT count() AS c FROM dp')).toEqual(before);
    // Agreeing, or the form alone: as before.
    const same = new FormData();
    same.append('mode', 'append');
    same.append('csv', new Blob(['8,r\n']), 'f.csv');
    expect((await call(`${srv.url}/v0/datasources?name=dp&mode=append`, { method: 'POST', token, body: same })).status).toBe(200);
  });
});
