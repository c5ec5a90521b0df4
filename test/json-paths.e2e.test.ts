/**
 * A data source's JSON paths are checked when it is created, by the reader ingestion uses: a path
 * that reader refuses (`$.items[:].name`, `$.a[*]`, `$..a`, `$.a[-1]`) is a 400 naming the column,
 * not a data source whose every append fails and whose buffered events (answered 202) are never
 * stored (found by a black-box test). Keys in any script read with a dot (`$.ñ`); inferred paths
 * of keys with quotes or backslashes read back the same key. Real server, engine, HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { drained } from './helpers/events.js';

let srv: RunningServer;
let token: string;
const create = (name: string, schema: string) => call(`${srv.url}/v0/datasources?name=${name}&format=ndjson&schema=${encodeURIComponent(schema)}`, { method: 'POST', token });
const sql = async (q: string) => (await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`, { token })).body.data;

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('JSON paths', () => {
  it('that ingestion cannot read are refused at create, naming the column', async () => {
    for (const path of ['$.items[:].name', '$.a[*]', '$..a', '$.a[-1]', '$.a.*', '$.', '$.a b']) {
      const r = await create('jp', `a Int32 \`json:$.a\`, n String \`json:${path}\``);
      expect(r.status, `${path}: ${r.text}`).toBe(400);
      expect(r.body.code).toBe('SCHEMA_SYNTAX');
      expect(r.body.error).toContain('column n');
    }
    expect((await call(`${srv.url}/v0/datasources/jp`, { token })).status).toBe(404);
  });

  it('name keys of any script with a dot; events are stored with and without wait', async () => {
    expect((await create('intl', 'a String `json:$.ñ`, b String `json:$.日本`')).status).toBe(200);
    const w = await call(`${srv.url}/v0/events?name=intl&wait=true`, { method: 'POST', token, body: '{"ñ":"x","日本":"y"}\n' });
    expect(w.status, w.text).toBe(200);
    expect((await call(`${srv.url}/v0/events?name=intl`, { method: 'POST', token, body: '{"ñ":"z"}\n' })).status).toBe(202);
    await drained(srv, 'intl', 20_000);
    expect(await sql('SELECT a, b FROM intl ORDER BY a')).toEqual([{ a: 'x', b: 'y' }, { a: 'z', b: '' }]);
  });

  it('inferred from keys with quotes and backslashes read those keys back', async () => {
    const body = '{"it\'s":"q","back\\\\slash":"b","ok":1}\n';
    const r = await call(`${srv.url}/v0/datasources?name=odd&format=ndjson`, { method: 'POST', token, body });
    expect(r.status, r.text).toBe(200);
    const got = await sql('SELECT * FROM odd');
    expect(got).toHaveLength(1);
    expect(Object.values(got[0])).toEqual(expect.arrayContaining(['q', 'b']));
  });
});
