/**
 * A credential revoked while its upload arrives: the upload was authorized when it came in, and
 * is authorized again at its commit point (docs/decisions.md, "A credential is checked again when
 * an upload commits"). Real server, real engine, bodies sent piece by piece over real HTTP: the
 * token is deleted, refreshed or narrowed (or the session logged out) between two pieces.
 *
 * Ordering without timing: the body is sent with `Expect: 100-continue`. The server answers 100
 * and dispatches the request in the same turn, and a service token is checked and the scope
 * authorized before anything is awaited, so once the client sees 100 the upload is authorized and
 * the revocation (another request, a later turn) comes after it. A session is verified
 * asynchronously: there the revocation waits until the server converts the NDJSON body in a
 * worker (`roost_ndjson_worker_bodies_total` went up), which it does only once authorized.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, workspaceApi, type RunningServer } from './helpers/server.js';
import { Browser } from './helpers/oidc-browser.js';
import { drained, eventsBody, segmentDir } from './helpers/events.js';
import { requireClickHouse, startClickHouse, type RunningClickHouse } from './helpers/clickhouse-server.js';
import { startUpload, type Answer } from './helpers/upload.js';

let srv: RunningServer;
let admin: string;
const { rows, post, createToken, createDataSource } = workspaceApi(() => srv, () => admin);
const enc = encodeURIComponent;

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

const csvRows = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${from + i},r${from + i}`).join('\n') + '\n';
const count = async (table: string): Promise<number> => Number((await rows(`SELECT count() AS c FROM ${table}`))[0].c);

/** Polls a service data source (written asynchronously) until `pred` holds of its rows, for at most 10 s. */
async function until<T>(q: string, pred: (r: T[]) => boolean): Promise<T[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const got = await rows(q) as T[];
    if (pred(got) || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 150));
  }
}
const opsOf = (ds: string, n: number) =>
  until<{ event_type: string; result: string; error: string; rows: number }>(`SELECT event_type, result, error, rows FROM tinybird.datasources_ops_log WHERE datasource_name = '${ds}' ORDER BY timestamp`, (r) => r.length >= n);

function expectRevoked(r: Answer, scope: string): void {
  expect(r.status, r.text).toBe(403);
  expect(r.body.code).toBe('CREDENTIAL_REVOKED');
  expect(r.body.error).toMatch(/revoked during the upload/);
  expect(r.body.error).toContain(scope);
}

describe('a credential revoked while its upload arrives', () => {
  it('append, token deleted: 403, nothing of the upload stored (rows nor quarantine), an error in the operations log, a denial in the audit log', async () => {
    await createDataSource('rv_append', 'id Int32, s String', csvRows(0, 2));
    const tok = await createToken('rv_append_tok', ['DATASOURCES:APPEND:rv_append']);
    const up = await startUpload(srv.url, '/v0/datasources?name=rv_append&mode=append', tok, 'text/csv', csvRows(2, 500));
    expect((await call(`${srv.url}/v0/tokens/rv_append_tok`, { method: 'DELETE', token: admin })).status).toBe(204);
    // (A row for the quarantine too: it must not appear either.)
    const r = await up.finish(`${csvRows(500, 1000)}not a number,x\n`);
    expectRevoked(r, 'DATASOURCES:APPEND:rv_append');
    expect(await count('rv_append')).toBe(2);
    expect(await count('rv_append_quarantine')).toBe(0);
    const ops = await opsOf('rv_append', 3);
    expect(ops.map((o) => `${o.event_type} ${o.result}`)).toEqual(['create ok', 'append ok', 'append error']);
    expect(ops[2]).toMatchObject({ error: r.body.error, rows: 0 });
    const denials = await until<{ event: string; outcome: string; reason: string; details: string }>(
      "SELECT event, outcome, reason, details FROM roost.audit_log WHERE credential = 'token:rv_append_tok' AND outcome = 'denied'", (d) => d.length > 0);
    expect(denials).toHaveLength(1);
    expect(denials[0]).toMatchObject({ event: 'authz.denied', reason: r.body.error });
    expect(JSON.parse(denials[0]!.details)).toMatchObject({ code: 'CREDENTIAL_REVOKED' });
  });

  it('replace, token refreshed (its secret replaced): 403, the data source keeps its rows', async () => {
    await createDataSource('rv_replace', 'id Int32, s String', csvRows(0, 3));
    const tok = await createToken('rv_replace_tok', ['DATASOURCES:APPEND:rv_replace']);
    const up = await startUpload(srv.url, '/v0/datasources?name=rv_replace&mode=replace', tok, 'text/csv', csvRows(100, 400));
    expect((await call(`${srv.url}/v0/tokens/rv_replace_tok/refresh`, { method: 'POST', token: admin })).status).toBe(200);
    const r = await up.finish(csvRows(400, 700));
    expectRevoked(r, 'DATASOURCES:APPEND:rv_replace');
    expect((await rows('SELECT id FROM rv_replace ORDER BY id')).map((x) => x.id)).toEqual([0, 1, 2]);
    expect((await opsOf('rv_replace', 3)).map((o) => `${o.event_type} ${o.result}`)).toEqual(['create ok', 'append ok', 'replace error']);
  });

  it('partial replace, the token\'s scopes narrowed to reading: 403, nothing replaced', async () => {
    await createDataSource('rv_partial', 'id Int32, s String', csvRows(0, 4));
    const tok = await createToken('rv_partial_tok', ['DATASOURCES:APPEND:rv_partial', 'DATASOURCES:READ:rv_partial']);
    const up = await startUpload(srv.url, `/v0/datasources?name=rv_partial&mode=replace&replace_condition=${enc('id < 2')}`, tok, 'text/csv', '0,new\n');
    expect((await call(`${srv.url}/v0/tokens/rv_partial_tok?scope=${enc('DATASOURCES:READ:rv_partial')}`, { method: 'PUT', token: admin })).status).toBe(200);
    const r = await up.finish('1,new\n');
    expectRevoked(r, 'DATASOURCES:APPEND:rv_partial');
    expect((await rows('SELECT s FROM rv_partial ORDER BY id')).map((x) => x.s)).toEqual(['r0', 'r1', 'r2', 'r3']);
  });

  it('create with a body, token deleted: 403, no data source of that name (nor its tables: the name can be created again)', async () => {
    const tok = await createToken('rv_create_tok', ['DATASOURCES:CREATE']);
    const up = await startUpload(srv.url, `/v0/datasources?name=rv_create&schema=${enc('id Int32, s String')}`, tok, 'text/csv', csvRows(0, 300));
    expect((await call(`${srv.url}/v0/tokens/rv_create_tok`, { method: 'DELETE', token: admin })).status).toBe(204);
    const r = await up.finish(csvRows(300, 600));
    expectRevoked(r, 'DATASOURCES:CREATE');
    expect((await call(`${srv.url}/v0/datasources/rv_create`, { token: admin })).status).toBe(404);
    expect((await opsOf('rv_create', 1)).map((o) => `${o.event_type} ${o.result}`)).toEqual(['create error']);
    const again = await post(`/v0/datasources?name=rv_create&schema=${enc('id Int32, s String')}`, csvRows(0, 1));
    expect(again.status, again.text).toBe(200);
    expect(await count('rv_create')).toBe(1);
  });

  it('/v0/events?wait=true, token deleted: 403, nothing stored', async () => {
    await createDataSource('rv_events', 'id Int32 `json:$.id`');
    const tok = await createToken('rv_events_tok', ['DATASOURCES:APPEND:rv_events']);
    const up = await startUpload(srv.url, '/v0/events?name=rv_events&wait=true', tok, 'application/x-ndjson', eventsBody(0, 200));
    expect((await call(`${srv.url}/v0/tokens/rv_events_tok`, { method: 'DELETE', token: admin })).status).toBe(204);
    const r = await up.finish(eventsBody(200, 200));
    expectRevoked(r, 'DATASOURCES:APPEND:rv_events');
    expect(await count('rv_events')).toBe(0);
    expect((await opsOf('rv_events', 2)).map((o) => `${o.event_type} ${o.result}`)).toEqual(['create ok', 'append error']);
  });

  it('/v0/events buffered (202 is its commit), token deleted before the body ends: 403, nothing buffered or flushed', async () => {
    await createDataSource('rv_buffered', 'id Int32 `json:$.id`');
    const tok = await createToken('rv_buffered_tok', ['DATASOURCES:APPEND:rv_buffered']);
    const up = await startUpload(srv.url, '/v0/events?name=rv_buffered', tok, 'application/x-ndjson', eventsBody(0, 200));
    expect((await call(`${srv.url}/v0/tokens/rv_buffered_tok`, { method: 'DELETE', token: admin })).status).toBe(204);
    const r = await up.finish(eventsBody(200, 200));
    expectRevoked(r, 'DATASOURCES:APPEND:rv_buffered');
    const dir = segmentDir(srv, 'rv_buffered');
    expect(fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.ndjson')) : []).toEqual([]);
    // An event acknowledged after it is flushed alone.
    expect((await post('/v0/events?name=rv_buffered', eventsBody(1000, 1), { 'Content-Type': 'application/x-ndjson' })).status).toBe(202);
    await drained(srv, 'rv_buffered', 10_000);
    expect((await rows('SELECT id FROM rv_buffered')).map((x) => x.id)).toEqual([1000]);
  });

  it('a session logged out during its upload: 403, nothing stored', async () => {
    await createDataSource('rv_session', 'id Int32 `json:$.id`');
    const b = new Browser();
    await b.login(srv.url, 'tenant=local', 'local-admin');
    const session = b.cookie(srv.url, 'roost_session')!;
    expect(session).toBeTruthy();
    const converted = async () => {
      const m = await call(`${srv.url}/metrics`, { token: srv.operatorToken });
      return Number(/^roost_ndjson_worker_bodies_total (\d+)$/m.exec(m.text)?.[1] ?? NaN);
    };
    const before = await converted();
    // Over 32 KiB: converted in a worker, which the server starts only once the upload is authorized.
    const up = await startUpload(srv.url, '/v0/datasources?name=rv_session&mode=append&format=ndjson&workspace=default', session, 'application/x-ndjson', eventsBody(0, 5000));
    while (await converted() === before) await new Promise((r) => setTimeout(r, 20));
    const out = await call(`${srv.url}/auth/logout`, { method: 'POST', token: session });
    expect(out.status, out.text).toBe(200);
    const r = await up.finish(eventsBody(5000, 100));
    expectRevoked(r, 'DATASOURCES:APPEND:rv_session');
    expect(r.body.error).toMatch(/logged out/);
    expect(await count('rv_session')).toBe(0);
  });
});

describe('a credential that still holds its scope at the commit', () => {
  it('a token renamed and given other scopes during its upload (still DATASOURCES:APPEND on the data source) stores it as before', async () => {
    await createDataSource('rv_kept', 'id Int32, s String', csvRows(0, 2));
    const tok = await createToken('rv_kept_tok', ['DATASOURCES:APPEND:rv_kept']);
    const up = await startUpload(srv.url, '/v0/datasources?name=rv_kept&mode=append', tok, 'text/csv', csvRows(2, 300));
    const changed = await call(`${srv.url}/v0/tokens/rv_kept_tok?name=rv_kept_renamed&scope=${enc('DATASOURCES:APPEND:rv_kept')}&scope=${enc('DATASOURCES:READ:rv_kept')}`, { method: 'PUT', token: admin });
    expect(changed.status, changed.text).toBe(200);
    // Another token deleted meanwhile is none of its business.
    await createToken('rv_other_tok', ['DATASOURCES:APPEND:rv_kept']);
    expect((await call(`${srv.url}/v0/tokens/rv_other_tok`, { method: 'DELETE', token: admin })).status).toBe(204);
    const r = await up.finish(`${csvRows(300, 600)}bad,row\n`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.rows + r.body.quarantine_rows).toBe(599);
    expect(r.body.quarantine_rows).toBe(1);
    expect(await count('rv_kept')).toBe(600);
    expect(await count('rv_kept_quarantine')).toBe(1);
  });

  it('/v0/events with wait=true and buffered, the token unchanged: stored as before', async () => {
    await createDataSource('rv_events_ok', 'id Int32 `json:$.id`');
    const tok = await createToken('rv_events_ok_tok', ['DATASOURCES:APPEND:rv_events_ok']);
    const waited = await startUpload(srv.url, '/v0/events?name=rv_events_ok&wait=true', tok, 'application/x-ndjson', eventsBody(0, 100));
    const w = await waited.finish(eventsBody(100, 100));
    expect(w.status, w.text).toBe(200);
    expect(w.body).toEqual({ successful_rows: 200, quarantined_rows: 0 });
    const buffered = await startUpload(srv.url, '/v0/events?name=rv_events_ok', tok, 'application/x-ndjson', eventsBody(200, 100));
    const b = await buffered.finish(eventsBody(300, 100));
    expect(b.status, b.text).toBe(202);
    await drained(srv, 'rv_events_ok', 10_000);
    expect(await count('rv_events_ok')).toBe(400);
  });
});

/**
 * A tenant on a remote ClickHouse (Debian's 18.16, started here on loopback). A remote server
 * keeps what it received of an insert whose request is cut, so a large events body (its rows past
 * the group limit, 4 MiB) must not be streamed before its commit check: it was, and a token
 * deleted mid-body got a 403 saying nothing was stored while every row was.
 */
describe('a credential revoked while its upload arrives, on a remote ClickHouse', () => {
  let ch: RunningClickHouse | undefined;
  let remoteAdmin = '';
  const remote = workspaceApi(() => srv, () => remoteAdmin);
  beforeAll(async () => {
    if (!requireClickHouse()) return;
    ch = await startClickHouse();
    const t = await call(`${srv.url}/v0/tenants`, {
      method: 'POST', token: srv.operatorToken,
      body: JSON.stringify({ slug: 'rv-remote', placement: { type: 'clickhouse', url: ch.url, user: ch.user, password: ch.password } }),
    });
    expect(t.status, t.text).toBe(201);
    const ws = await call(`${srv.url}/v0/tenants/rv-remote/workspaces`, { method: 'POST', token: srv.operatorToken, body: JSON.stringify({ name: 'main' }) });
    expect(ws.status, ws.text).toBe(201);
    remoteAdmin = ws.body.token;
  }, 120_000);
  afterAll(async () => { await ch?.stop(); });

  /** Events of ~120 bytes: 30,000 of them encode to more than the 4 MiB a grouped request may hold. */
  const wide = (from: number, n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ id: from + i, s: 'x'.repeat(100) })).join('\n') + '\n';

  it('/v0/events?wait=true over the group limit, token deleted: 403 and nothing stored; the same body with the token kept is stored whole', async (t) => {
    if (!ch) return t.skip();
    await remote.createDataSource('rv_big', 'id Int32 `json:$.id`, s String `json:$.s`');
    const tok = await remote.createToken('rv_big_tok', ['DATASOURCES:APPEND:rv_big']);
    const up = await startUpload(srv.url, '/v0/events?name=rv_big&wait=true', tok, 'application/x-ndjson', wide(0, 30_000));
    expect((await call(`${srv.url}/v0/tokens/rv_big_tok`, { method: 'DELETE', token: remoteAdmin })).status).toBe(204);
    const r = await up.finish(wide(30_000, 30_000));
    expectRevoked(r, 'DATASOURCES:APPEND:rv_big');
    const stored = async () => Number((await remote.rows('SELECT count() AS c FROM rv_big'))[0].c);
    expect(await stored()).toBe(0);

    const kept = await remote.createToken('rv_big_kept', ['DATASOURCES:APPEND:rv_big']);
    const ok = await startUpload(srv.url, '/v0/events?name=rv_big&wait=true', kept, 'application/x-ndjson', wide(0, 30_000));
    const w = await ok.finish(wide(30_000, 30_000));
    expect(w.status, w.text).toBe(200);
    expect(w.body).toEqual({ successful_rows: 60_000, quarantined_rows: 0 });
    expect(await stored()).toBe(60_000);
  });
});
