/**
 * HTTP-level robustness of the real server: malformed request lines, paths, query strings,
 * headers and bodies sent over raw sockets (where fetch cannot send them) must get a 4xx JSON
 * `{error, code}`, leave nothing behind and leave the server healthy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { call, startServer, type RunningServer } from './helpers/server.js';

interface RawResponse { status: number; headers: Record<string, string>; body: string }

/**
 * Writes `request` (bytes as given) on a fresh connection and reads until the server closes it
 * or `waitMs` passes; answers every response found, in order.
 */
function rawHttp(port: number, request: string | Buffer, waitMs = 3000): Promise<RawResponse[]> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    const chunks: Buffer[] = [];
    const done = () => { clearTimeout(t); s.destroy(); resolve(parseResponses(Buffer.concat(chunks).toString('latin1'))); };
    const t = setTimeout(done, waitMs);
    s.on('data', (d) => chunks.push(d));
    s.on('close', done);
    s.on('error', (e) => { if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e); });
  });
}

function parseResponses(text: string): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines) { const i = l.indexOf(':'); headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
    rest = rest.slice(end + 4);
    let body = '';
    if (headers['content-length'] !== undefined) {
      body = rest.slice(0, Number(headers['content-length']));
      rest = rest.slice(body.length);
    } else if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const nl = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, nl), 16);
        rest = rest.slice(nl + 2);
        if (!size) { rest = rest.slice(2); break; }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    }
    out.push({ status: Number(statusLine!.split(' ')[1]), headers, body });
  }
  return out;
}

function json(r: RawResponse): Record<string, unknown> {
  expect(r.headers['content-type']).toMatch(/^application\/json/);
  return JSON.parse(r.body) as Record<string, unknown>;
}

describe('HTTP robustness', () => {
  let srv: RunningServer;
  let token: string;
  beforeAll(async () => {
    srv = await startServer();
    token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  });
  afterAll(async () => { await srv?.stop(); });

  it('a path starting with // is a path, not a host: //x/v0/health is not /v0/health', async () => {
    const [r] = await rawHttp(srv.port, 'GET //x/v0/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect(r!.status).toBe(404);
    expect(json(r!)).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
  });

  it('dot segments (also percent-encoded) are refused, not resolved to another route', async () => {
    for (const path of ['/v0/pipes/%2e%2e/tokens', '/v0/pipes/../tokens', '/v0/pipes/%2E./../../metrics', '/v0/./health']) {
      const [r] = await rawHttp(srv.port, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
      expect(r!.status, path).toBe(400);
      expect(json(r!), path).toMatchObject({ code: 'BAD_REQUEST' });
      expect(r!.body).not.toContain('workspace admin token');
    }
    // A name that merely contains dots is still a name.
    expect(await call(`${srv.url}/v0/datasources/a..b`, { token })).toMatchObject({ status: 404, body: { code: 'UNKNOWN_DATASOURCE' } });
  });

  it('requests pipelined behind a refused request without a body are still answered', async () => {
    const rs = await rawHttp(srv.port, 'GET /v0/nope HTTP/1.1\r\nHost: localhost\r\n\r\n'
      + 'DELETE /v0/health HTTP/1.1\r\nHost: localhost\r\n\r\n'
      + 'GET /v0/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect(rs.map((r) => r.status)).toEqual([404, 405, 200]);
    expect(rs[0]!.headers.connection).toBe('keep-alive');
    expect(json(rs[2]!)).toEqual({ status: 'ok' });
  });

  it('an idle keep-alive connection stays open past 5 s (node closed it at 5 s: a client busy that long sent its next request into a closing socket)', async () => {
    const answers = await new Promise<string[]>((resolve, reject) => {
      const s = net.connect(srv.port, '127.0.0.1');
      const seen: string[] = [];
      s.on('data', (d: Buffer) => {
        seen.push(d.toString('latin1'));
        if (seen.length === 1) setTimeout(() => s.write('GET /v0/health HTTP/1.1\r\nHost: localhost\r\n\r\n'), 6_000);
        else { s.destroy(); resolve(seen); }
      });
      s.on('close', () => resolve(seen));
      s.on('error', reject);
      s.write('GET /v0/health HTTP/1.1\r\nHost: localhost\r\n\r\n');
    });
    expect(answers).toHaveLength(2);
    expect(answers[0]).toMatch(/^HTTP\/1\.1 200 .*\r\nKeep-Alive: timeout=65\r\n/s);
    expect(answers[1]).toMatch(/^HTTP\/1\.1 200 /);
  }, 30_000);

  it('--keep-alive-timeout is checked at start and sets the idle limit', async () => {
    const { loadConfig } = await import('../src/config.js');
    expect(loadConfig([], {}).keepAliveMs).toBe(65_000);
    expect(loadConfig([], { ROOST_KEEP_ALIVE_MS: '120000' }).keepAliveMs).toBe(120_000);
    expect(() => loadConfig(['--keep-alive-timeout', '0'], {})).toThrow(/--keep-alive-timeout/);
    expect(() => loadConfig(['--keep-alive-timeout', 'soon'], {})).toThrow(/--keep-alive-timeout/);
  });

  it('a request refused before its body was read still closes its connection', async () => {
    const rs = await rawHttp(srv.port, 'POST /v0/nope HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello'
      + 'GET /v0/health HTTP/1.1\r\nHost: localhost\r\n\r\n');
    expect(rs[0]!.status).toBe(404);
    expect(rs[0]!.headers.connection).toBe('close');
  });

  it('requests that node\'s parser refuses get a JSON error too, and the server goes on', async () => {
    const cases: Array<[string, string | Buffer, number, string]> = [
      ['unknown method', 'FOO /v0/health HTTP/1.1\r\nHost: localhost\r\n\r\n', 400, 'BAD_REQUEST'],
      ['raw bytes above 0x7F in the path', Buffer.concat([Buffer.from('GET /v0/datasources/'), Buffer.from([0xff, 0xfe]), Buffer.from(' HTTP/1.1\r\nHost: localhost\r\n\r\n')]), 400, 'BAD_REQUEST'],
      ['a chunk size that is not hex', `POST /v0/tenants HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n`, 400, 'BAD_REQUEST'],
      ['Content-Length that is not a number', 'POST /v0/tenants HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n', 400, 'BAD_REQUEST'],
      ['both Content-Length and Transfer-Encoding', 'POST /v0/tenants HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'BAD_REQUEST'],
      ['a URL over the header limit', `GET /v0/sql?q=${'x'.repeat(20_000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
      ['a header over the limit', `GET /v0/health HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
    ];
    for (const [what, req, status, code] of cases) {
      const rs = await rawHttp(srv.port, req);
      expect(rs.map((r) => r.status), what).toEqual([status]);
      expect(json(rs[0]!), what).toMatchObject({ code, error: expect.any(String) });
      expect(rs[0]!.headers.connection, what).toBe('close');
    }
    expect(await call(`${srv.url}/v0/health`)).toMatchObject({ status: 200, body: { status: 'ok' } });
  });

  it('an Expect other than 100-continue gets a JSON 417; 100-continue gets 100 and then the answer', async () => {
    const [r] = await rawHttp(srv.port, 'POST /v0/tenants HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nExpect: teapot\r\n\r\n');
    expect(r!.status).toBe(417);
    expect(json(r!)).toMatchObject({ code: 'EXPECTATION_FAILED' });
    const rs = await rawHttp(srv.port, 'POST /v0/tenants HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n{}', 1500);
    expect(rs.map((x) => x.status)).toEqual([100, 401]);
  });

  it('a path parameter with a bad percent escape is a 400 that says so, not "no route"', async () => {
    for (const path of ['/v0/datasources/%ZZ', '/v0/datasources/%C3', '/v0/tokens/a%E2%82', '/v0/pipes/%FF.json']) {
      const r = await call(`${srv.url}${path}`, { token });
      expect(r.status, path).toBe(400);
      expect(r.body, path).toMatchObject({ code: 'BAD_REQUEST', error: expect.stringMatching(/percent-encoded UTF-8/) });
    }
    // Well-formed escapes still reach the route.
    expect(await call(`${srv.url}/v0/datasources/caf%C3%A9`, { token })).toMatchObject({ status: 404, body: { code: 'UNKNOWN_DATASOURCE', error: expect.stringContaining('café') } });
  });

  it('a query value that is not UTF-8 once decoded is refused (not turned into U+FFFD), and nothing is created', async () => {
    const r = await call(`${srv.url}/v0/sql?q=select%20'%FF'%20as%20x`, { token });
    expect(r).toMatchObject({ status: 400, body: { code: 'INVALID_UTF8' } });
    expect(r.body.error).toContain('"q"');
    const c = await call(`${srv.url}/v0/datasources?name=bad_utf8&schema=s%20String&description=caf%E9`, { method: 'POST', token });
    expect(c).toMatchObject({ status: 400, body: { code: 'INVALID_UTF8' } });
    expect(c.body.error).toContain('"description"');
    expect(await call(`${srv.url}/v0/datasources/bad_utf8`, { token })).toMatchObject({ status: 404 });
    // Valid UTF-8 escapes, and '%' not followed by two hex digits (kept as written, as Tinybird does), pass.
    const ok = await call(`${srv.url}/v0/sql?q=${encodeURIComponent("select 'é' as a, '")}%ZZ'%20as%20b%20FORMAT%20JSONEachRow`, { token });
    expect(ok).toMatchObject({ status: 200 });
    expect(JSON.parse(ok.text)).toEqual({ a: 'é', b: '%ZZ' });
  });

  it('a body that is not UTF-8 (raw bytes, or a form value once percent-decoded) is refused, not turned into U+FFFD, and nothing is created', async () => {
    const post = (url: string, type: string, body: Buffer | string) =>
      call(`${srv.url}${url}`, { method: 'POST', token, headers: { 'Content-Type': type }, body });
    const bad = (s: string) => Buffer.concat([Buffer.from(s.split('\xff')[0]!), Buffer.from([0xff]), Buffer.from(s.split('\xff')[1]!)]);
    const refused = { status: 400, body: { code: 'INVALID_UTF8' } };
    // /v0/sql: a raw SQL body, a form field, a JSON body.
    expect(await post('/v0/sql', 'text/plain', bad("select '\xff' as x"))).toMatchObject(refused);
    const form = await post('/v0/sql', 'application/x-www-form-urlencoded', "q=select+'%FF'+as+x");
    expect(form).toMatchObject(refused);
    expect(form.body.error).toContain('"q"');
    expect(await post('/v0/sql', 'application/json', bad('{"q": "select \'\xff\' as x"}'))).toMatchObject(refused);
    // A pipe created from JSON and from a form; an endpoint parameter in a form body.
    expect(await post('/v0/pipes', 'application/json', bad('{"name": "utf8_pipe", "nodes": [{"name": "n", "sql": "select \'\xff\' as x"}]}'))).toMatchObject(refused);
    expect(await post('/v0/pipes?name=utf8_pipe', 'application/x-www-form-urlencoded', "sql=select+'%FF'+as+x")).toMatchObject(refused);
    expect(await call(`${srv.url}/v0/pipes/utf8_pipe`, { token })).toMatchObject({ status: 404 });
    expect(await post('/v0/pipes', 'application/json', JSON.stringify({ name: 'utf8_ep', nodes: [{ name: 'n', sql: "%\nselect {{String(s, 'a')}} as s", type: 'endpoint' }] }))).toMatchObject({ status: 200 });
    expect(await post('/v0/pipes/utf8_ep.json', 'application/x-www-form-urlencoded', 's=%FF')).toMatchObject(refused);
    const good = await post('/v0/pipes/utf8_ep.json', 'application/x-www-form-urlencoded', 's=%C3%A9');
    expect(good).toMatchObject({ status: 200 });
    expect(good.body.data).toEqual([{ s: 'é' }]);
    // A data source created from a form body; a token from a form body.
    expect(await post('/v0/datasources', 'application/x-www-form-urlencoded', 'name=utf8_ds&schema=s+String&description=caf%E9')).toMatchObject(refused);
    expect(await call(`${srv.url}/v0/datasources/utf8_ds`, { token })).toMatchObject({ status: 404 });
    expect(await post('/v0/tokens?name=utf8_tok', 'application/x-www-form-urlencoded', 'scope=DATASOURCES:READ:%FF')).toMatchObject(refused);
    expect(await call(`${srv.url}/v0/tokens/utf8_tok`, { token })).toMatchObject({ status: 404 });
  });

  it('a form body is read whatever the case of its media type (Application/X-WWW-Form-Urlencoded)', async () => {
    const form = (type: string, body: string) => ({ method: 'POST', token, headers: { 'Content-Type': type }, body });
    const t = await call(`${srv.url}/v0/tokens?name=ct_case`, form('Application/X-WWW-Form-Urlencoded; Charset=UTF-8', 'scope=DATASOURCES:CREATE'));
    expect(t.status).toBe(200);
    expect(t.body.scopes).toMatchObject([{ type: 'DATASOURCES:CREATE' }]);
    const q = await call(`${srv.url}/v0/sql`, form('APPLICATION/X-WWW-FORM-URLENCODED', 'q=select+1+as+x+FORMAT+JSONEachRow'));
    expect(q).toMatchObject({ status: 200 });
    expect(JSON.parse(q.text)).toEqual({ x: 1 });
  });

  it('a token JSON body with fields of the wrong type is refused, not half applied', async () => {
    const post = (body: unknown) => call(`${srv.url}/v0/tokens`, { method: 'POST', token, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    expect(await post({ name: 'js_scopes', scopes: 'DATASOURCES:CREATE' })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER', error: expect.stringContaining('scopes') } });
    expect(await post({ name: 'js_scopes', scopes: [{ type: 'DATASOURCES:CREATE' }] })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect(await post({ name: 'js_scopes', description: 5 })).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER', error: expect.stringContaining('description') } });
    expect(await call(`${srv.url}/v0/tokens/js_scopes`, { token })).toMatchObject({ status: 404 });
    expect(await post({ name: 'js_scopes', scopes: ['DATASOURCES:CREATE'] })).toMatchObject({ status: 200 });
    const put = await call(`${srv.url}/v0/tokens/js_scopes`, { method: 'PUT', token, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 5, scopes: 'ADMIN' }) });
    expect(put).toMatchObject({ status: 400, body: { code: 'INVALID_PARAMETER' } });
    expect((await call(`${srv.url}/v0/tokens/js_scopes`, { token })).body.scopes).toMatchObject([{ type: 'DATASOURCES:CREATE' }]);
  });
});
