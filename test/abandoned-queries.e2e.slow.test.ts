/**
 * A query left by its client while still computing runs on while nothing waits for the engine
 * behind it; once something does, it is stopped by restarting the tenant's cell, and a credential
 * whose left queries cost restarts is refused with 429 past its budget; other credentials of the
 * tenant go on. Real server, real embedded engine, a real client that goes away.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { AbandonBudget } from '../auth/abandoned-queries.js';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { serverAudit } from './helpers/audit.js';

/** A query that runs for hours unless stopped (the engine cannot interrupt it). */
const heavy = encodeURIComponent('SELECT count() FROM numbers(100000000000) WHERE NOT ignore(sipHash64(number))');
/** The cell restarts made to stop a cancelled query, and their charges, in a server's log. */
const restartsOf = (srv: RunningServer) => srv.logs.filter((l) => l.msg === 'cell restarted: a cancelled query did not stop in time').length;
const chargesOf = (srv: RunningServer) => srv.logs.filter((l) => l.msg === 'audit' && l.event === 'query.abandoned');

describe('AbandonBudget', () => {
  it('refuses a key past its restarts until the oldest leaves the window, other keys untouched', () => {
    let now = 1_000_000;
    const b = new AbandonBudget(2, 60_000, () => now);
    expect(b.blockedFor('a')).toBe(0);
    expect(b.record('a')).toBe(1);
    now += 10_000;
    expect(b.blockedFor('a')).toBe(0);
    expect(b.record('a')).toBe(2);
    // Two within the minute: blocked until the first is a minute old (50 s from now).
    expect(b.blockedFor('a')).toBe(50);
    expect(b.blockedFor('b')).toBe(0);
    now += 49_500;
    expect(b.blockedFor('a')).toBe(1);
    now += 501;
    expect(b.blockedFor('a')).toBe(0);
    expect(b.record('a')).toBe(2);
    expect(b.blockedFor('a')).toBe(10);
  });

  it('a limit of 0 never refuses', () => {
    const b = new AbandonBudget(0, 60_000);
    for (let i = 0; i < 5; i++) b.record('a');
    expect(b.blockedFor('a')).toBe(0);
  });
});

describe('abandoned queries over HTTP', () => {
  let srv: RunningServer;
  let admin: string;
  let other: string;
  const { waitAudit } = serverAudit(() => srv);

  beforeAll(async () => {
    // A time limit long enough that a left heavy query still runs when the tests look (it is
    // stopped by a restart once something waits behind it), and one restart allowed per hour for
    // each credential.
    srv = await startServer({ args: ['--query-timeout', '15000'], env: { ROOST_ABANDONED_RESTARTS: '1', ROOST_ABANDONED_RESTARTS_WINDOW_S: '3600' } });
    admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
    expect((await call(`${srv.url}/v0/datasources?name=t&schema=${encodeURIComponent('x Int32')}`, { method: 'POST', token: admin })).status).toBeLessThan(300);
    const created = await call(`${srv.url}/v0/tokens?name=reader&scope=DATASOURCES:READ:t`, { method: 'POST', token: admin });
    expect(created.status, created.text).toBeLessThan(300);
    other = created.body.token;
    const pipe = await call(`${srv.url}/v0/pipes`, {
      method: 'POST', token: admin, headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'one', nodes: [{ name: 'n', sql: 'SELECT 1 AS x', type: 'endpoint' }] }),
    });
    expect(pipe.status, pipe.text).toBeLessThan(300);
  }, 120_000);

  afterAll(async () => { await srv?.stop(); });

  /** Starts the heavy query as `token` and leaves it 300 ms later. */
  const abandon = (token: string) => new Promise<void>((resolve) => {
    const req = http.get(`${srv.url}/v0/sql?q=${heavy}`, { headers: { Authorization: `Bearer ${token}` } });
    req.on('error', () => resolve());
    setTimeout(() => { req.destroy(); resolve(); }, 300);
  });
  const restarts = () => restartsOf(srv);
  const waitRestarts = async (n: number) => {
    for (let i = 0; i < 200 && restarts() < n; i++) await new Promise((r) => setTimeout(r, 50));
    expect(restarts()).toBe(n);
  };

  /** A statement (a data source created): it needs the engine to itself, so it waits behind a query left running. */
  let ddl = 0;
  const statement = (token: string) => call(`${srv.url}/v0/datasources?name=ddl_${++ddl}&schema=${encodeURIComponent('x Int32')}`, { method: 'POST', token });

  it('a left query is let run while nothing waits for the engine: no restart, no charge, the tenant\'s other queries answer beside it', async () => {
    // The service tables made (with the tenant's first service rows: statements that would wait).
    for (let i = 0; i < 100; i++) {
      const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM tinybird.pipe_stats_rt FORMAT JSON')}`, { token: admin });
      if (r.status === 200 && Number(r.body.data[0].n) > 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    await abandon(admin);
    // Past the grace a kill would have come (1 s), and past several looks at the cell.
    for (let i = 0; i < 5; i++) {
      const ok = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM t FORMAT CSV')}`, { token: other });
      expect(ok.status, ok.text).toBe(200);
      await new Promise((r) => setTimeout(r, 400));
    }
    expect(restarts()).toBe(0);
    expect(chargesOf(srv)).toEqual([]);
    // Something that must wait for it (a statement): now it costs a restart, charged to its credential.
    const made = await statement(admin);
    expect(made.status, made.text).toBe(200);
    await waitRestarts(1);
    const charged = await waitAudit((a) => a.event === 'query.abandoned');
    expect(charged).toMatchObject({ outcome: 'failure', tenant: 'local', resource: '/v0/sql' });
    expect(String(charged.credential)).toContain('admin');
  }, 60_000);

  it('the restart a left query costs is charged to its credential: past the budget its queries get 429, others run', async () => {
    // (The restart and its charge: the test above.) The credential is refused now, on /v0/sql
    // and on endpoints alike, with a reason and a time.
    const refused = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT 1 AS x FORMAT CSV')}`, { token: admin });
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('RATE_LIMITED');
    expect(refused.body.error).toMatch(/left by their client while still running/);
    const wait = Number(refused.headers.get('retry-after'));
    expect(wait).toBeGreaterThan(3500);
    expect(wait).toBeLessThanOrEqual(3600);
    const denial = await waitAudit((a) => a.event === 'query.abandoned_limit' && a.requestId === refused.headers.get('x-request-id'));
    expect(denial).toMatchObject({ outcome: 'denied', tenant: 'local' });
    const endpoint = await call(`${srv.url}/v0/pipes/one.json`, { token: admin });
    expect(endpoint.status).toBe(429);
    expect(endpoint.body.code).toBe('RATE_LIMITED');

    // Another credential of the same tenant is not touched, and its own left query is its own charge.
    const ok = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM t FORMAT CSV')}`, { token: other });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.text).toBe('0\n');
    await abandon(other);
    await new Promise((r) => setTimeout(r, 300));
    expect((await statement(admin)).status).toBe(200);
    await waitRestarts(2);
    expect((await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM t FORMAT CSV')}`, { token: other })).status).toBe(429);
  }, 60_000);

  it("a query cut by the server's own deadline is not charged to its credential", async () => {
    // The request deadline (1 s) passes long before the query's time limit (10 s): the server ends
    // the request and the query runs on until something waits for the engine (a statement, here),
    // and then the cell is restarted to stop it, as when a client leaves. (A grace of 300 ms. The
    // statement is under the same 1 s deadline: on a loaded machine it can be cut before the cell
    // is looked at, and nothing waits any more; another is sent each 0.7 s until the restart.)
    const short = await startServer({ args: ['--query-timeout', '10000', '--request-timeout', '1000'], env: { ROOST_ABANDONED_RESTARTS: '1', ROOST_CELL_CANCEL_GRACE_MS: '300' } });
    try {
      const tok = (await call(`${short.url}/tokens`)).body.workspace_admin_token;
      const cut = () => short.logs.filter((l) => l.msg === 'cell restarted: a cancelled query did not stop in time').length;
      let made = 0;
      const ready = async () => {
        // (Its 1 s request deadline can pass while the restarted cell starts on a loaded machine: asked again then.)
        let r = await call(`${short.url}/v0/sql?q=${encodeURIComponent('SELECT 1 AS x FORMAT CSV')}`, { token: tok });
        for (let i = 0; i < 10 && r.status === 408; i++) r = await call(`${short.url}/v0/sql?q=${encodeURIComponent('SELECT 1 AS x FORMAT CSV')}`, { token: tok });
        return r;
      };
      for (let i = 1; i <= 2; i++) {
        // (With the first restart charged, the budget of 1 would refuse this one with 429.)
        const before = cut();
        const r = await call(`${short.url}/v0/sql?q=${heavy}`, { token: tok });
        expect(r.status, r.text).toBe(408);
        const statements: Array<Promise<unknown>> = [];
        for (let k = 0; k < 300 && cut() === before; k++) {
          if (k % 14 === 0) statements.push(call(`${short.url}/v0/datasources?name=short_${++made}&schema=${encodeURIComponent('x Int32')}`, { method: 'POST', token: tok }));
          await new Promise((res) => setTimeout(res, 50));
        }
        expect(cut(), `restarts after query ${i}; the server's log: ${JSON.stringify(short.logs.filter((l) => l.level !== 'debug').slice(-40))}`).toBeGreaterThan(before);
        // The next query starts on a cell that is up, with nothing queued: a query cut by its
        // deadline while it waits for a restarted cell (or behind a statement still on its way)
        // never ran, and nothing is left to stop.
        await Promise.all(statements);
        const up = await ready();
        expect(up.status, up.text).toBe(200);
      }
      expect(short.logs.some((l) => l.msg === 'audit' && l.event === 'query.abandoned')).toBe(false);
    } finally {
      await short.stop();
    }
  }, 60_000);
});

describe('who is charged', () => {
  let srv: RunningServer;
  let heavyTok: string;
  let victim: string;
  const restarts = () => restartsOf(srv);
  const charges = () => chargesOf(srv);

  beforeAll(async () => {
    // Queries stop at 3 s by their time limit, so the tests do not wait long behind heavy ones.
    srv = await startServer({ args: ['--query-timeout', '3000'], env: { ROOST_ABANDONED_RESTARTS: '3' } });
    heavyTok = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
    expect((await call(`${srv.url}/v0/datasources?name=t&schema=${encodeURIComponent('x Int32')}`, { method: 'POST', token: heavyTok })).status).toBeLessThan(300);
    victim = (await call(`${srv.url}/v0/tokens?name=victim&scope=DATASOURCES:READ:t`, { method: 'POST', token: heavyTok })).body.token;
  }, 120_000);
  afterAll(async () => { await srv?.stop(); });

  /** Starts `sql` as `token`; the returned function leaves it. */
  const start = (token: string, sql: string) => {
    const req = http.get(`${srv.url}/v0/sql?q=${sql}`, { headers: { Authorization: `Bearer ${token}` } });
    req.on('error', () => {});
    req.on('response', (res) => res.resume());
    return () => req.destroy();
  };

  it("a query waiting behind another credential's heavy ones, left by its client, restarts nothing and is charged to nobody", async () => {
    const leaveHeavy = [start(heavyTok, heavy), start(heavyTok, heavy)];
    await new Promise((r) => setTimeout(r, 400));
    const leaveWaiting = start(victim, encodeURIComponent('SELECT count() FROM t'));
    await new Promise((r) => setTimeout(r, 300));
    leaveWaiting();
    // Past the grace a kill would have come; the heavy queries run on to their time limit.
    await new Promise((r) => setTimeout(r, 2000));
    expect(restarts()).toBe(0);
    expect(charges()).toEqual([]);
    const after = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n FROM t FORMAT CSV')}`, { token: victim });
    expect(after.status, after.text).toBe(200);
    for (const leave of leaveHeavy) leave();
  }, 60_000);

  it('several queries of one credential left at once cost one restart and one charge', async () => {
    const before = restarts();
    const leave = [start(heavyTok, heavy), start(heavyTok, heavy), start(heavyTok, heavy)];
    await new Promise((r) => setTimeout(r, 500));
    for (const l of leave) l();
    // They are let run while nothing waits (the cell may hold each in its own read session); a
    // statement behind them must wait, and then one restart stops all three.
    const made = call(`${srv.url}/v0/datasources?name=after_left&schema=${encodeURIComponent('x Int32')}`, { method: 'POST', token: heavyTok });
    for (let i = 0; i < 100 && restarts() === before; i++) await new Promise((r) => setTimeout(r, 50));
    expect(restarts()).toBe(before + 1);
    expect((await made).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    expect(charges()).toHaveLength(1);
    expect(String(charges()[0]!.reason)).toContain('(1 of 3');
    const next = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT 1 AS x FORMAT CSV')}`, { token: heavyTok });
    expect(next.status, next.text).toBe(200);
  }, 60_000);
});

describe('a client that leaves at once', () => {
  let srv: RunningServer;
  let admin: string;
  const restarts = () => restartsOf(srv);
  const charges = () => chargesOf(srv).length;

  beforeAll(async () => {
    // A budget no trial reaches: every restart is charged, none refused.
    srv = await startServer({ args: ['--query-timeout', '10000'], env: { ROOST_ABANDONED_RESTARTS: '100' } });
    admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  }, 120_000);
  afterAll(async () => { await srv?.stop(); });

  it('is charged for the restart its query costs, however soon it left', async () => {
    // The request is sent and its connection closed in one go: the server sends the query and
    // cancels it at once, and the cell's word that the engine runs it comes after the cancel.
    // That word used to be dropped, and about half of these restarts were charged to nobody.
    // A close the server sees before the engine call is made costs nothing (the query is not
    // sent): such a trial restarts nothing and charges nothing. Every restart must be charged.
    const first = restarts();
    for (let trial = 0; trial < 8; trial++) {
      const before = restarts();
      await new Promise<void>((resolve) => {
        const req = http.get(`${srv.url}/v0/sql?q=${heavy}`, { headers: { Authorization: `Bearer ${admin}` } });
        req.on('error', () => resolve());
        req.on('finish', () => { req.destroy(); resolve(); });
      });
      // A statement right behind it waits for the engine: a left query the engine runs is then
      // stopped by a restart (without anything waiting it would be let run to its time limit).
      const made = call(`${srv.url}/v0/datasources?name=at_once_${trial}&schema=${encodeURIComponent('x Int32')}`, { method: 'POST', token: admin });
      // The cancel's grace is 1 s: a restart due comes within 2.5 s.
      for (let i = 0; i < 50 && restarts() === before; i++) await new Promise((r) => setTimeout(r, 50));
      expect(restarts() - before, `trial ${trial}: one restart at most`).toBeLessThanOrEqual(1);
      for (let i = 0; i < 60 && charges() < restarts(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(charges(), `trial ${trial}: every restart charged`).toBe(restarts());
      expect((await made).status, `trial ${trial}`).toBe(200);
      const next = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT 1 AS x FORMAT CSV')}`, { token: admin });
      expect(next.status, next.text).toBe(200);
    }
    // Most trials did reach the engine (8 of 8 and 7 of 8 in two runs here): the test saw the race.
    expect(restarts() - first).toBeGreaterThanOrEqual(3);
  }, 120_000);
});
