/**
 * "A crash (kill -9) never loses what was acknowledged" for POST /v0/events without
 * wait: a 202 means the body is fsynced in the events buffer. Real server, real
 * engine, real SIGKILL; every acknowledged event must be stored exactly once.
 */
import { describe, expect, it } from 'vitest';
import { call, childProcesses, startServer, type RunningServer } from './helpers/server.js';
import { checkExactlyOnce, drained as drainedWithin, eventsBody as body, storedIds as ids } from './helpers/events.js';

const drained = (s: RunningServer, ds: string, ms = 20_000) => drainedWithin(s, ds, ms);

const schema = encodeURIComponent('`id` UInt32 `json:$.id`');

async function setup(s: RunningServer, ds: string): Promise<string> {
  const tok = (await call(`${s.url}/tokens`)).body.workspace_admin_token as string;
  const r = await call(`${s.url}/v0/datasources?name=${ds}&format=ndjson&schema=${schema}`, { method: 'POST', token: tok });
  expect(r.status, r.text).toBe(200);
  return tok;
}

async function count(s: RunningServer, tok: string, ds: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const r = await call(`${s.url}/v0/sql?q=${encodeURIComponent(`SELECT count() AS c FROM ${ds} FORMAT JSONEachRow`)}`, { token: tok });
    // A query the killed cell was running answers 503, retryable (as documented): asked again.
    if (r.status === 503 && r.body?.retryable && attempt < 20) continue;
    if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
    return Number(JSON.parse(r.text).c);
  }
}

/**
 * Eight clients posting 5 events each to `ds` (202 without wait) until stopped; the ids of
 * every acknowledged event go into `acked`. A refused or cut request is not acknowledged.
 */
function sendEvents(s: RunningServer, tok: string, ds: string, acked: Set<number>): { stop: () => Promise<void> } {
  let stopped = false;
  let next = 0;
  const sender = async () => {
    while (!stopped) {
      const from = next;
      next += 5;
      const r = await call(`${s.url}/v0/events?name=${ds}`, { method: 'POST', token: tok, body: body(from, 5) }).catch(() => undefined);
      if (r?.status === 202) for (let i = 0; i < 5; i++) acked.add(from + i);
    }
  };
  const senders = Array.from({ length: 8 }, sender);
  return { stop: async () => { stopped = true; await Promise.all(senders); } };
}

describe('events acknowledged with 202 survive kill -9 exactly once', () => {
  it('events sent after a restart are stored (their flush is not taken for an earlier one)', async () => {
    const s1 = await startServer();
    let s2: RunningServer | undefined;
    try {
      const tok = await setup(s1, 'ev_restart');
      expect((await call(`${s1.url}/v0/events?name=ev_restart`, { method: 'POST', token: tok, body: body(0, 100) })).status).toBe(202);
      await drained(s1, 'ev_restart');
      expect(await count(s1, tok, 'ev_restart')).toBe(100);
      process.kill(s1.proc.pid!, 'SIGKILL');
      await s1.exited;
      s2 = await startServer({ dataDir: s1.dataDir });
      // The first body after the restart: acknowledged, so it must be stored.
      expect((await call(`${s2.url}/v0/events?name=ev_restart`, { method: 'POST', token: tok, body: body(100, 100) })).status).toBe(202);
      await drained(s2, 'ev_restart');
      const acked = new Set(Array.from({ length: 200 }, (_, i) => i));
      checkExactlyOnce(await ids(s2, tok, 'ev_restart'), acked);
    } finally {
      await s1.stop('SIGKILL');
      await s2?.stop();
    }
  });

  it('a server killed in the middle of flushing while 202s keep coming: every acknowledged event once', async () => {
    // The kill comes as soon as a flush's rows are visible, i.e. (most often) while the
    // flush is still removing its segments and new segments keep arriving.
    const s1 = await startServer();
    let s2: RunningServer | undefined;
    const acked = new Set<number>();
    try {
      const tok = await setup(s1, 'ev_flush');
      const senders = sendEvents(s1, tok, 'ev_flush', acked);
      const deadline = Date.now() + 20_000;
      while ((await count(s1, tok, 'ev_flush')) === 0) {
        if (Date.now() > deadline) throw new Error('no flush in 20 s');
      }
      process.kill(s1.proc.pid!, 'SIGKILL');
      await senders.stop();
      await s1.exited;
      expect(acked.size).toBeGreaterThan(0);
      s2 = await startServer({ dataDir: s1.dataDir });
      await drained(s2, 'ev_flush');
      checkExactlyOnce(await ids(s2, tok, 'ev_flush'), acked);
    } finally {
      await s1.stop('SIGKILL');
      await s2?.stop();
    }
  });

  it('a cell killed alone during flushes: the server restarts it and every acknowledged event is stored once', async () => {
    const s = await startServer();
    const acked = new Set<number>();
    try {
      const tok = await setup(s, 'ev_cell');
      const senders = sendEvents(s, tok, 'ev_cell', acked);
      for (let k = 0; k < 3; k++) {
        const before = await count(s, tok, 'ev_cell');
        const deadline = Date.now() + 20_000;
        while ((await count(s, tok, 'ev_cell')) === before) {
          if (Date.now() > deadline) throw new Error('no flush in 20 s');
        }
        const cells = childProcesses(s.proc.pid!, 'cell');
        expect(cells.length).toBeGreaterThan(0);
        for (const pid of cells) process.kill(pid, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 300));
      }
      await senders.stop();
      await drained(s, 'ev_cell', 40_000);
      checkExactlyOnce(await ids(s, tok, 'ev_cell'), acked);
    } finally {
      await s.stop();
    }
  });
});

describe('events with wait=true while the tenant\'s cell is killed', () => {
  it('a 200 is stored once; an answer that says nothing was stored stored nothing; no event is stored twice', async () => {
    const s = await startServer();
    try {
      const tok = await setup(s, 'ev_wait_kill');
      const acked = new Set<number>();
      const refusedIds = new Set<number>();
      const unknownIds = new Set<number>();
      const statuses = new Map<string, number>();
      let stopped = false;
      let next = 0;
      const sender = async () => {
        while (!stopped) {
          // Bodies of 20–400 events: the cell dies before, in and after their INSERTs.
          const n = 20 + (next % 19) * 20;
          const from = next;
          next += n;
          const r = await call(`${s.url}/v0/events?name=ev_wait_kill&wait=true`, { method: 'POST', token: tok, body: body(from, n) }).catch(() => undefined);
          const key = r ? `${r.status} ${r.body?.code ?? ''}` : 'cut';
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          const into = r?.status === 200 ? acked : r?.body?.code === 'INSERT_OUTCOME_UNKNOWN' || !r ? unknownIds : refusedIds;
          for (let i = 0; i < n; i++) into.add(from + i);
        }
      };
      const senders = Array.from({ length: 4 }, sender);
      let kills = 0;
      for (const t0 = Date.now(); Date.now() - t0 < 12_000;) {
        await new Promise((r) => setTimeout(r, 150 + Math.floor(Math.random() * 250)));
        const cell = childProcesses(s.proc.pid!, 'cell-main')[0];
        if (cell) { process.kill(cell, 'SIGKILL'); kills++; }
      }
      stopped = true;
      await Promise.all(senders);
      expect(kills).toBeGreaterThan(10);
      // The last kill's cell may still be starting: its 503 is asked again.
      await count(s, tok, 'ev_wait_kill');
      const got = await ids(s, tok, 'ev_wait_kill');
      // Every 200 stored exactly once, nothing stored twice.
      checkExactlyOnce(got, acked);
      // A refusal ("retry it", or any other error that is not INSERT_OUTCOME_UNKNOWN) stored none of its events.
      const storedAfterRefusal = [...refusedIds].filter((id) => got.has(id));
      expect(storedAfterRefusal.length, `events stored though their request was refused: ${storedAfterRefusal.slice(0, 10).join(',')}; answers ${JSON.stringify([...statuses])}`).toBe(0);
      expect(acked.size, JSON.stringify([...statuses])).toBeGreaterThan(0);
    } finally {
      await s.stop();
    }
  }, 120_000);
});
