/**
 * Names in SQL (`/v0/sql`, pipes read as tables, `pipeline=`, row-delete conditions) answer a
 * credential that could not read a name even if it existed the same audited 403 whether the name
 * is a data source, a pipe or nothing: it got 422 'unknown table' for a missing name and 403 for
 * an existing one it may not read, and so learned which data sources and pipes exist. A
 * credential that could read the name (ADMIN, `DATASOURCES:READ` or `PIPES:READ` on it) still
 * gets 'unknown table' with the position; a data source or pipe it may not read is then unknown
 * to it too. CTE names and aliases are not tables.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, workspaceApi, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin = '';
/** Reads data source `open` and pipe `open_pipe` only. */
let narrow = '';
let dsStar = '';
let pipeStar = '';
/** Reads `open` and a name `later` that is nothing yet. */
let scopedMissing = '';
/** Deletes rows of `open`. */
let dropper = '';
/** A JWT reading `open_pipe` with `v` fixed to 2. */
let jwt = '';
const api = workspaceApi(() => srv, () => admin);

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.admin_token;
  await api.createDataSource('open', 'a Int32', '1\n2\n');
  await api.createDataSource('secret', 'a Int32', '7\n');
  const mkPipe = async (name: string, sql: string) => {
    const r = await call(`${srv.url}/v0/pipes?name=${name}&type=endpoint&sql=${encodeURIComponent(sql)}`, { method: 'POST', token: admin });
    expect(r.status, r.text).toBe(200);
  };
  await mkPipe('secret_pipe', 'SELECT a FROM secret');
  await mkPipe('open_pipe', '%\nSELECT a FROM open WHERE a = {{Int32(v, 1)}}');
  narrow = await api.createToken('narrow', ['DATASOURCES:READ:open', 'PIPES:READ:open_pipe']);
  dsStar = await api.createToken('ds_star', ['DATASOURCES:READ:*']);
  pipeStar = await api.createToken('pipe_star', ['PIPES:READ:*']);
  scopedMissing = await api.createToken('scoped_missing', ['DATASOURCES:READ:open', 'DATASOURCES:READ:later']);
  // (READ too: a dry run counts rows, which DATASOURCES:DROP alone may not; condition-leaks.e2e.)
  dropper = await api.createToken('dropper', ['DATASOURCES:DROP:open', 'DATASOURCES:READ:open']);
  const j = await call(`${srv.url}/v0/tokens?name=fixed&expiration_time=${Math.floor(Date.now() / 1000) + 3600}`, {
    method: 'POST', token: admin, headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ scopes: [{ type: 'PIPES:READ', resource: 'open_pipe', fixed_params: { v: 2 } }] }),
  });
  expect(j.status, j.text).toBe(200);
  jwt = j.body.token as string;
}, 120_000);
afterAll(async () => { await srv?.stop(); });

let seq = 0;
const sql = (q: string, token: string, extra = '') => {
  const id = `oracle-${process.pid}-${++seq}`;
  return call(`${srv.url}/v0/sql?q=${encodeURIComponent(q)}${extra}`, { token, headers: { 'X-Request-Id': id } }).then((r) => ({ ...r, id }));
};
const audited = async (id: string) => {
  for (let i = 0; i < 50; i++) {
    const got = srv.logs.filter((l) => l.msg === 'audit' && l.requestId === id);
    if (got.length) return got.map((l) => [l.event, l.credential]);
    await new Promise((res) => setTimeout(res, 20));
  }
  return [];
};

/** The answers for an existing name and a missing one are the same but for the name itself. */
function same(existing: { status: number; body: any; text: string }, missing: { status: number; body: any; text: string }, name: string, other: string): void {
  expect(missing.status, `${existing.text} | ${missing.text}`).toBe(existing.status);
  const shape = (b: any, n: string) => JSON.parse(JSON.stringify(b).replaceAll(n, 'N'));
  expect(shape(missing.body, other)).toEqual(shape(existing.body, name));
}

const shapes = [
  'SELECT * FROM @',
  'SELECT * FROM open JOIN @ USING a',
  'SELECT a FROM open WHERE a IN @',
  'SELECT a FROM open WHERE a IN (SELECT a FROM @)',
  "SELECT dictGet('@', 'a', toUInt64(1))",
];

describe('a credential that could not read the name gets one audited 403 whether or not it exists', () => {
  for (const [name, other] of [['secret', 'no_such'], ['secret_pipe', 'no_such'], ['secret_quarantine', 'no_such_quarantine']] as const) {
    for (const shape of shapes) {
      it(`${shape} with ${name} / ${other}`, async () => {
        const existing = await sql(shape.replace('@', name), narrow);
        const missing = await sql(shape.replace('@', other), narrow);
        expect(existing.status, existing.text).toBe(403);
        expect(existing.body.code).toBe('FORBIDDEN');
        same(existing, missing, name, other);
        expect(missing.body.error).toContain(other);
        for (const r of [existing, missing]) expect(await audited(r.id), r.text).toEqual([['authz.denied', 'token:narrow']]);
      });
    }
  }

  it('the first name of the query it may not read is the one refused, whatever exists after it', async () => {
    const a = await sql('SELECT * FROM secret, no_such_b', narrow);
    const b = await sql('SELECT * FROM no_such_a, no_such_b', narrow);
    same(a, b, 'secret', 'no_such_a');
    expect(a.body.error).not.toContain('no_such_b');
    const c = await sql('SELECT * FROM no_such_a, secret', narrow);
    const d = await sql('SELECT * FROM no_such_a, no_such_b', narrow);
    same(c, d, 'secret', 'no_such_b');
  });

  it('service data sources: tinybird.* it may not read is refused as a missing tinybird.* is', async () => {
    const existing = await sql('SELECT * FROM tinybird.datasources_ops_log', narrow);
    const missing = await sql('SELECT * FROM tinybird.no_such', narrow);
    expect(existing.status, existing.text).toBe(403);
    same(existing, missing, 'tinybird.datasources_ops_log', 'tinybird.no_such');
  });

  it('pipeline=: names beside the nodes', async () => {
    const q = (n: string) => `SELECT * FROM open_pipe_0 JOIN ${n} USING a`;
    const existing = await sql(q('secret'), narrow, '&pipeline=open_pipe');
    const missing = await sql(q('no_such'), narrow, '&pipeline=open_pipe');
    expect(existing.status, existing.text).toBe(403);
    same(existing, missing, 'secret', 'no_such');
    expect((await sql('SELECT a FROM open_pipe_0 FORMAT JSON', narrow, '&pipeline=open_pipe')).body.data).toEqual([{ a: 1 }]);
  });

  it('a JWT with fixed params: its pipe reads with them; other names are refused alike', async () => {
    expect((await sql('SELECT a FROM open_pipe FORMAT JSON', jwt, '&v=1')).body.data).toEqual([{ a: 2 }]);
    for (const name of ['secret', 'secret_pipe', 'open']) {
      const existing = await sql(`SELECT * FROM ${name}`, jwt);
      const missing = await sql('SELECT * FROM no_such', jwt);
      expect(existing.status, existing.text).toBe(403);
      same(existing, missing, name, 'no_such');
      for (const r of [existing, missing]) expect(await audited(r.id)).toEqual([['authz.denied', 'jwt:fixed']]);
    }
  });

  it('row deletes: a condition naming another table is refused alike, existing or not', async () => {
    const del = (cond: string) => call(`${srv.url}/v0/datasources/open/delete`, {
      method: 'POST', token: dropper, headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ delete_condition: cond, dry_run: 'true' }).toString(),
    });
    for (const name of ['secret', 'secret_pipe', 'open_quarantine']) {
      const existing = await del(`a IN (SELECT a FROM ${name})`);
      const missing = await del('a IN (SELECT a FROM no_such)');
      expect(existing.status, existing.text).toBe(403);
      expect(existing.body.code).toBe('SQL_FORBIDDEN');
      same(existing, missing, name, 'no_such');
    }
    expect((await del('a = 1')).body.rows_to_be_deleted).toBe(1);
  });

  it("q= over an endpoint's result: every other name is unknown alike (unchanged)", async () => {
    const q = (n: string) => call(`${srv.url}/v0/pipes/open_pipe.json?q=${encodeURIComponent(`SELECT * FROM ${n}`)}`, { token: narrow });
    const existing = await q('secret');
    expect(existing.status).toBe(422);
    same(existing, await q('no_such'), 'secret', 'no_such');
  });
});

describe('CTE names, aliases and table functions are not tables to authorize', () => {
  it('a CTE or alias named like a data source, a pipe or nothing reads as itself', async () => {
    for (const q of [
      // (Reading `open` too: a query that reads no table needs the bare DATASOURCES:READ.)
      'WITH secret AS (SELECT 1 AS a) SELECT a FROM secret WHERE a IN (SELECT a FROM open) FORMAT JSON',
      'WITH secret_pipe AS (SELECT a FROM open) SELECT a FROM secret_pipe WHERE a = 1 FORMAT JSON',
      'WITH no_such AS (SELECT 1 AS a) SELECT a FROM open WHERE a IN no_such FORMAT JSON',
      'SELECT secret.a FROM open AS secret WHERE secret.a = 1 FORMAT JSON',
      'SELECT no_such.a FROM (SELECT a FROM open) AS no_such WHERE a = 1 FORMAT JSON',
    ]) {
      const r = await sql(q, narrow);
      expect(r.status, `${q}: ${r.text}`).toBe(200);
      expect(r.body.data, q).toEqual([{ a: 1 }]);
    }
  });

  it('a CTE name read out of the WITH\'s reach is an unknown table, whether a data source has the name or not', async () => {
    // (`nosuch`: as long as `secret`, so the offsets match.) ClickHouse applies only the first SELECT's WITH to a union: the last name is a table to it.
    const q = (n: string) => `SELECT 1 AS a UNION ALL WITH ${n} AS (SELECT 1 AS a) SELECT a FROM ${n} UNION ALL SELECT a FROM ${n}`;
    for (const token of [narrow, jwt]) {
      const existing = await sql(q('secret'), token);
      const missing = await sql(q('nosuch'), token);
      expect(existing.status, existing.text).toBe(422);
      expect(existing.body.sql_code).toBe('UNKNOWN_TABLE');
      same(existing, missing, 'secret', 'nosuch');
    }
    // An alias too (a table to ClickHouse after JOIN).
    const existing = await sql('SELECT * FROM open AS secret JOIN secret USING a', narrow);
    const missing = await sql('SELECT * FROM open AS nosuch JOIN nosuch USING a', narrow);
    expect(existing.status, existing.text).toBe(422);
    same(existing, missing, 'secret', 'nosuch');
  });

  it('table functions are refused as before, whatever the names', async () => {
    const r = await sql("SELECT * FROM file('secret', 'CSV')", narrow);
    expect([r.status, r.body.code, r.body.sql_code]).toEqual([403, 'SQL_FORBIDDEN', 'FORBIDDEN_TABLE_FUNCTION']);
  });
});

describe('a credential that could read the name gets the clear unknown table with its position', () => {
  it('ADMIN', async () => {
    const r = await sql('SELECT * FROM no_such', admin);
    expect(r.status, r.text).toBe(422);
    expect(r.body).toMatchObject({ code: 'SQL_INVALID', sql_code: 'UNKNOWN_TABLE', offset: 14, error: "unknown table 'no_such'" });
    const j = await sql('SELECT * FROM open JOIN no_such USING a', admin);
    expect(j.body).toMatchObject({ sql_code: 'UNKNOWN_TABLE', offset: 24 });
  });

  it('DATASOURCES:READ on the name (which is nothing yet)', async () => {
    const r = await sql('SELECT * FROM open JOIN later USING a', scopedMissing);
    expect(r.status, r.text).toBe(422);
    expect(r.body).toMatchObject({ code: 'SQL_INVALID', sql_code: 'UNKNOWN_TABLE', offset: 24 });
    expect(r.body.error).toContain("unknown table 'later'");
  });

  it('DATASOURCES:READ:*: a pipe it may not read is unknown to it as a missing name is', async () => {
    expect((await sql('SELECT count() AS c FROM secret FORMAT JSON', dsStar)).body.data).toEqual([{ c: 1 }]);
    const existing = await sql('SELECT * FROM secret_pipe', dsStar);
    const missing = await sql('SELECT * FROM no_such', dsStar);
    expect(existing.status, existing.text).toBe(422);
    expect(existing.body).toMatchObject({ sql_code: 'UNKNOWN_TABLE', offset: 14 });
    same(existing, missing, 'secret_pipe', 'no_such');
    expect(existing.body.error).toContain('PIPES:READ:secret_pipe');
  });

  it('PIPES:READ:*: a data source it may not read is unknown to it as a missing name is', async () => {
    expect((await sql('SELECT a FROM secret_pipe FORMAT JSON', pipeStar)).body.data).toEqual([{ a: 7 }]);
    for (const name of ['secret', 'secret_quarantine']) {
      const existing = await sql(`SELECT * FROM ${name}`, pipeStar);
      const missing = await sql('SELECT * FROM no_such', pipeStar);
      expect(existing.status, existing.text).toBe(422);
      same(existing, missing, name, 'no_such');
      expect(existing.body.error).toContain(`DATASOURCES:READ:${name}`);
    }
  });
});
