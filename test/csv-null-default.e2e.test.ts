/**
 * `\N` (CSV's NULL, unquoted) in a column that is not Nullable but has a DEFAULT is the DEFAULT,
 * as an empty cell is, as ClickHouse reads it (input_format_null_as_default) and as Roost reads an
 * NDJSON null (found by a black-box test: `s String DEFAULT concat(...)` stored the text "\N", a
 * LowCardinality(String) DEFAULT 'dflt' too, and a DateTime DEFAULT now() quarantined the row).
 * Quoted, "\N" is text. Without a DEFAULT, as documented: the text in a String, quarantined in
 * other types. Real server, real engine, real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let token: string;

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('\\N in a column that is not Nullable', () => {
  it('is the column\'s DEFAULT where it has one; quoted "\\N" is text; without a DEFAULT, as before', async () => {
    const schema = "a Int32, s String DEFAULT concat(toString(a), 'x'), l LowCardinality(String) DEFAULT 'dflt', t DateTime DEFAULT toDateTime('2020-01-01 00:00:00'), n Int32 DEFAULT 7, plain String, m Nullable(String) DEFAULT 'md'";
    const c = await call(`${srv.url}/v0/datasources?name=withdef&schema=${encodeURIComponent(schema)}`, { method: 'POST', token });
    expect(c.status, c.text).toBe(200);
    const body = 'a,s,l,t,n,plain,m\n5,\\N,\\N,\\N,\\N,\\N,\\N\n6,"\\N",q,2021-02-03 04:05:06,1,"\\N",z\n';
    const a = await call(`${srv.url}/v0/datasources?name=withdef&mode=append`, { method: 'POST', token, body });
    expect(a.status, a.text).toBe(200);
    expect(a.body).toMatchObject({ rows: 2, quarantine_rows: 0 });
    const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT * FROM withdef ORDER BY a FORMAT JSON')}`, { token });
    expect(r.body.data).toEqual([
      // The DEFAULTs; a String without one keeps the text (documented); a Nullable one is NULL.
      { a: 5, s: '5x', l: 'dflt', t: '2020-01-01 00:00:00', n: 7, plain: '\\N', m: null },
      { a: 6, s: '\\N', l: 'q', t: '2021-02-03 04:05:06', n: 1, plain: '\\N', m: 'z' },
    ]);
    // Without a DEFAULT, a non-string column still quarantines it, with the reason.
    const c2 = await call(`${srv.url}/v0/datasources?name=nodef&schema=${encodeURIComponent('a Int32, k Int32 DEFAULT 3')}`, { method: 'POST', token });
    expect(c2.status, c2.text).toBe(200);
    const b = await call(`${srv.url}/v0/datasources?name=nodef&mode=append`, { method: 'POST', token, body: '\\N,\\N\n1,\\N\n' });
    expect(b.body).toMatchObject({ rows: 1, quarantine_rows: 1 });
    const q = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT c__error, c__raw FROM nodef_quarantine FORMAT JSON')}`, { token });
    expect(q.body.data).toEqual([{ c__error: ['NULL in a non-Nullable column'], c__raw: '\\N,\\N' }]);
    const kept = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT * FROM nodef FORMAT JSON')}`, { token });
    expect(kept.body.data).toEqual([{ a: 1, k: 3 }]);
  });
});
