/**
 * Adversarial audit of the /v0/events buffer and of the durability of acknowledged data
 * (beyond test/crash-events.e2e.slow.test.ts): many tiny segments left by an outage, a segment
 * that fails its flush beside healthy data sources, leftover temp files, torn manifests.
 * Real server, real engine, real SIGKILL.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { EventBuffer } from '../src/ingest/event-buffer.js';
import { QueryFailed } from '../src/errors.js';
import { JournalStore } from '../src/state/journal-store.js';
import { State } from '../src/state/state.js';
import { call, childProcesses, startServer, tempDir, type RunningServer } from './helpers/server.js';
import { checkExactlyOnce, drained as drainedWithin, eventsBody as body, segmentDir as segDir, storedIds as ids } from './helpers/events.js';

const drained = (s: RunningServer, ds: string, ms = 30_000, ws = 'default') => drainedWithin(s, ds, ms, ws);

const schema = encodeURIComponent('`id` UInt32 `json:$.id`');

async function create(s: RunningServer, tok: string, ds: string, sch = schema): Promise<void> {
  const r = await call(`${s.url}/v0/datasources?name=${ds}&format=ndjson&schema=${sch}`, { method: 'POST', token: tok });
  expect(r.status, r.text).toBe(200);
}

describe('events buffer audit', () => {
  it('tens of thousands of tiny segments left by an outage are all flushed, once', async () => {
    const s1 = await startServer();
    let s2: RunningServer | undefined;
    try {
      const tok = (await call(`${s1.url}/tokens`)).body.workspace_admin_token as string;
      await create(s1, tok, 'tiny');
      expect((await call(`${s1.url}/v0/events?name=tiny`, { method: 'POST', token: tok, body: body(0, 1) })).status).toBe(202);
      await drained(s1, 'tiny');
      await s1.stop('SIGKILL');
      // What 20 000 acknowledged one-event requests leave behind when the engine was away.
      const dir = segDir(s1, 'tiny');
      // 12 000 names (~28 bytes each) are over the engine's max_query_size (256 KiB) as one token.
      const N = 12_000;
      const names: string[] = [];
      for (let i = 1; i <= N; i++) { names.push(`${String(i).padStart(12, '0')}-0000abcd.ndjson`); fs.writeFileSync(path.join(dir, names[i - 1]!), body(i, 1)); }
      // Most of them as the batch an older version (no cap on segments per flush) was flushing
      // when it was killed: it is sent again first, as it was (its token, over 200 KiB of names,
      // now a hash of them); the rest go in batches of at most 1000.
      fs.writeFileSync(path.join(dir, 'flushing.json'), JSON.stringify({ segments: names.slice(0, 9_000) }));
      fs.writeFileSync(path.join(dir, 'flushing.json.tmp'), '{"segm');
      s2 = await startServer({ dataDir: s1.dataDir });
      await drained(s2, 'tiny', 60_000);
      // No segment, manifest or temp file left (the data source's id stays: .datasource.json).
      expect(fs.readdirSync(dir).filter((f) => f !== '.datasource.json')).toEqual([]);
      checkExactlyOnce(await ids(s2, tok, 'tiny'), Array.from({ length: N + 1 }, (_, i) => i));
    } finally {
      await s1.stop('SIGKILL');
      await s2?.stop();
    }
  }, 90_000);

  it.each([['while', true], ['before the first event of', false]])('a data source dropped and created again %s an events body arrives: no 202, nothing lands in the new one', async (_, early) => {
    const s = await startServer();
    try {
      const tok = (await call(`${s.url}/tokens`)).body.workspace_admin_token as string;
      await create(s, tok, 'reborn');
      let push!: (b: string | null) => void;
      const stream = new ReadableStream<Uint8Array>({ start(c) { push = (b) => (b === null ? c.close() : c.enqueue(new TextEncoder().encode(b))); } });
      const pending = call(`${s.url}/v0/events?name=reborn`, { method: 'POST', token: tok, body: stream, duplex: 'half' } as RequestInit);
      push(early ? body(0, 10) : '\n'); // (a blank line: the request is under way, no event yet)
      await new Promise((r) => setTimeout(r, 300)); // the request holds the old data source
      expect((await call(`${s.url}/v0/datasources/reborn`, { method: 'DELETE', token: tok })).status).toBe(200);
      await create(s, tok, 'reborn');
      push(body(10, 10));
      push(null);
      const r = await pending;
      expect(r.status, r.text).toBe(404);
      expect(r.body.code).toBe('UNKNOWN_DATASOURCE');
      // Events for the new data source still go in.
      expect((await call(`${s.url}/v0/events?name=reborn`, { method: 'POST', token: tok, body: body(100, 1) })).status).toBe(202);
      await drained(s, 'reborn');
      expect([...(await ids(s, tok, 'reborn')).keys()]).toEqual([100]);
    } finally {
      await s.stop();
    }
  });

  it('kill -9 after a flush inserted its rows and quarantine but before it removed its segments (none, some, all removed): stored once', async () => {
    const s1 = await startServer();
    const servers: RunningServer[] = [s1];
    try {
      const tok = (await call(`${s1.url}/tokens`)).body.workspace_admin_token as string;
      await create(s1, tok, 'redo');
      await s1.stop('SIGKILL');
      const dir = segDir(s1, 'redo');
      fs.mkdirSync(dir, { recursive: true });
      // Three segments, one holding rows the schema refuses (quarantined at flush).
      const segs: Record<string, string> = {
        '000000000001-0badc0de.ndjson': body(0, 50),
        '000000000002-0badc0de.ndjson': body(50, 50) + '{"id":"not a number"}\n{"id":-1}\n',
        '000000000003-0badc0de.ndjson': body(100, 50),
      };
      const names = Object.keys(segs);
      const lay = (which: string[]) => {
        for (const n of which) fs.writeFileSync(path.join(dir, n), segs[n]!);
        fs.writeFileSync(path.join(dir, 'flushing.json'), JSON.stringify({ segments: names }));
      };
      const run = async () => {
        const s = await startServer({ dataDir: s1.dataDir });
        servers.push(s);
        await drained(s, 'redo');
        const q = await call(`${s.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS c FROM redo_quarantine FORMAT JSONEachRow')}`, { token: tok });
        const got = await ids(s, tok, 'redo');
        await s.stop('SIGKILL');
        return { got, quarantined: Number(JSON.parse(q.text).c) };
      };
      // The crash came after the manifest, before the insert: sent as it was.
      lay(names);
      // Leftovers of requests and flushes cut by the crash: never acknowledged, never stored.
      fs.writeFileSync(path.join(dir, '.000000000004-0badc0de.ndjson.part'), body(1000, 5));
      fs.writeFileSync(path.join(dir, 'flushing.json.tmp'), '{"segments":["0000');
      let r = await run();
      checkExactlyOnce(r.got, Array.from({ length: 150 }, (_, i) => i));
      expect(r.got.size).toBe(150);
      expect(r.quarantined).toBe(2);
      expect(fs.readdirSync(dir)).toEqual([]);
      // After the insert (rows and quarantine), before any segment was removed; then after some were.
      for (const left of [names, names.slice(1), []]) {
        lay(left);
        r = await run();
        checkExactlyOnce(r.got, Array.from({ length: 150 }, (_, i) => i));
        expect(r.got.size).toBe(150);
        expect(r.quarantined).toBe(2);
        expect(fs.readdirSync(dir)).toEqual([]);
      }
    } finally {
      for (const s of servers) await s.stop('SIGKILL');
    }
  });

  it('events the engine refuses (a DEFAULT that throws) are quarantined, loudly; the events after them are stored', async () => {
    const s = await startServer();
    try {
      const tok = (await call(`${s.url}/tokens`)).body.workspace_admin_token as string;
      await create(s, tok, 'refused', encodeURIComponent("`id` UInt32 `json:$.id`, `d` UInt8 DEFAULT throwIf(id = 7, 'boom') `json:$.d`"));
      await create(s, tok, 'fine');
      // With wait=true the engine's refusal is the answer.
      expect((await call(`${s.url}/v0/events?name=refused&wait=true`, { method: 'POST', token: tok, body: body(7, 1) })).status).toBe(422);
      // Buffered: the refused body (ids 5..9, with a blank line among them) and good ones around it, and another data source.
      for (const from of [0, 5, 10]) {
        const events = from === 5 ? body(5, 2) + '\n' + body(7, 3) : body(from, 5);
        expect((await call(`${s.url}/v0/events?name=refused`, { method: 'POST', token: tok, body: events })).status).toBe(202);
      }
      expect((await call(`${s.url}/v0/events?name=fine`, { method: 'POST', token: tok, body: body(0, 5) })).status).toBe(202);
      await drained(s, 'refused');
      await drained(s, 'fine');
      expect([...(await ids(s, tok, 'refused')).keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 10, 11, 12, 13, 14]);
      expect((await ids(s, tok, 'fine')).size).toBe(5);
      // Not silent, not lost: the refused body's events are in the data source's quarantine,
      // each with its line in the request, its raw text, its value and the engine's reason.
      const q = await call(`${s.url}/v0/sql?q=${encodeURIComponent('SELECT id, c__line, c__raw, c__error, c__error_column FROM refused_quarantine ORDER BY c__line FORMAT JSON')}`, { token: tok });
      expect(q.status, q.text).toBe(200);
      const rows = q.body.data as Array<{ id: string; c__line: number | string; c__raw: string; c__error: string[]; c__error_column: string[] }>;
      expect(rows.map((r) => [r.id, Number(r.c__line), r.c__raw])).toEqual([
        ['5', 1, '{"id":5}'], ['6', 2, '{"id":6}'], ['7', 4, '{"id":7}'], ['8', 5, '{"id":8}'], ['9', 6, '{"id":9}'],
      ]);
      for (const r of rows) {
        expect(r.c__error).toHaveLength(1);
        expect(r.c__error[0]).toContain("the engine refused this request's events as a whole");
        expect(r.c__error[0]).toContain('boom');
        expect(r.c__error_column).toEqual([]);
      }
      // Nothing set aside on the server's disk; said in the server's log.
      expect(fs.readdirSync(segDir(s, 'refused')).filter((f) => f.includes('.ndjson'))).toEqual([]);
      expect(s.logs.some((l) => l.level === 'warn' && l.msg === 'buffered events the engine refused were quarantined' && l.events === 5)).toBe(true);
      expect(s.logs.some((l) => l.msg === 'buffered events set aside: their segment cannot be imported')).toBe(false);
      // And in the tenant's own operations log, where it looks, with the count.
      const oq = `${s.url}/v0/sql?q=${encodeURIComponent("SELECT count() AS c FROM tinybird.datasources_ops_log WHERE datasource_name = 'refused' AND result = 'error' AND rows_quarantine = 5 AND position(error, 'quarantined (5 events in refused_quarantine)') > 0 AND position(error, 'boom') > 0 FORMAT JSONEachRow")}`;
      let logged = 0;
      for (let i = 0; i < 50 && logged === 0; i++) {
        const r = await call(oq, { token: tok });
        logged = r.status === 200 ? Number(JSON.parse(r.text).c) : 0;
        if (!logged) await new Promise((res) => setTimeout(res, 200));
      }
      expect(logged).toBe(1);

      // kill -9 after the quarantine insert and before the segment was removed: the segment is
      // there again at start, refused again, and its events are not quarantined twice (the
      // insert's deduplication token is the segment's).
      const seg = String(s.logs.find((l) => l.msg === 'buffered events the engine refused were quarantined')!.segment);
      await s.stop('SIGKILL');
      fs.writeFileSync(path.join(segDir(s, 'refused'), seg), body(5, 2) + '\n' + body(7, 3));
      const s2 = await startServer({ dataDir: s.dataDir });
      try {
        await drained(s2, 'refused');
        const again = await call(`${s2.url}/v0/sql?q=${encodeURIComponent('SELECT id, count() AS c FROM refused_quarantine GROUP BY id ORDER BY id FORMAT JSONEachRow')}`, { token: tok });
        expect(again.status, again.text).toBe(200);
        expect(again.text.trim().split('\n').map((l) => JSON.parse(l))).toEqual(['5', '6', '7', '8', '9'].map((id) => ({ id, c: 1 })));
        expect(s2.logs.some((l) => l.msg === 'buffered events the engine refused were quarantined' && l.segment === seg)).toBe(true);
        // Counted once: the operations log has the one row written before the kill (service rows are written within a second).
        await new Promise((res) => setTimeout(res, 1500));
        const rowsNow = await call(oq.replace(s.url, s2.url), { token: tok });
        expect(rowsNow.status, rowsNow.text).toBe(200);
        expect(Number(JSON.parse(rowsNow.text).c)).toBe(1);
      } finally {
        await s2.stop();
      }
    } finally {
      await s.stop();
    }
  });

  it('kill -9 during flushes of nine data sources in three workspaces: every acknowledged event once, in its own data source', async () => {
    const s1 = await startServer();
    let s2: RunningServer | undefined;
    const targets: Array<{ ws: string; ds: string; tok: string; acked: Set<number> }> = [];
    let stopped = false;
    try {
      const op = s1.operatorToken;
      const admin = (await call(`${s1.url}/tokens`)).body.workspace_admin_token as string;
      for (const ws of ['default', 'w2', 'w3']) {
        let tok = admin;
        if (ws !== 'default') {
          const r = await call(`${s1.url}/v0/tenants/local/workspaces`, { method: 'POST', token: op, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: ws }) });
          expect(r.status, r.text).toBe(201);
          tok = r.body.token;
        }
        for (const ds of ['a', 'b', 'c']) { await create(s1, tok, ds); targets.push({ ws, ds, tok, acked: new Set() }); }
      }
      let next = 0;
      const sender = async (t: (typeof targets)[number]) => {
        while (!stopped) {
          const from = next; next += 3;
          const r = await call(`${s1.url}/v0/events?name=${t.ds}`, { method: 'POST', token: t.tok, body: body(from, 3) }).catch(() => undefined);
          if (r?.status === 202) for (let i = 0; i < 3; i++) t.acked.add(from + i);
        }
      };
      const senders = targets.map(sender);
      // Kill once some flushes have landed (rows visible in several data sources).
      const deadline = Date.now() + 20_000;
      for (;;) {
        let landed = 0;
        for (const t of targets) if ((await ids(s1, t.tok, t.ds)).size > 0) landed++;
        if (landed >= 3) break;
        if (Date.now() > deadline) throw new Error('no flush in 20 s');
      }
      process.kill(s1.proc.pid!, 'SIGKILL');
      stopped = true;
      await Promise.all(senders);
      await s1.exited;
      s2 = await startServer({ dataDir: s1.dataDir });
      for (const t of targets) {
        await drained(s2, t.ds, 30_000, t.ws);
        expect(t.acked.size).toBeGreaterThan(0);
        const got = await ids(s2, t.tok, t.ds);
        checkExactlyOnce(got, t.acked);
        // Ids are unique across all senders: an id stored here was sent here.
        for (const id of got.keys()) expect(t.acked.has(id) || !targets.some((o) => o !== t && o.acked.has(id)), `${t.ws}.${t.ds} holds id ${id} of another data source`).toBe(true);
      }
    } finally {
      stopped = true;
      await s1.stop('SIGKILL');
      await s2?.stop();
    }
  }, 60_000);

  it('kill -9 between a workspace rename and the move of its buffered events: they are stored in the renamed workspace', async () => {
    const s1 = await startServer();
    let s2: RunningServer | undefined;
    try {
      const op = s1.operatorToken;
      const r = await call(`${s1.url}/v0/tenants/local/workspaces`, { method: 'POST', token: op, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'before' }) });
      expect(r.status, r.text).toBe(201);
      const tok = r.body.token as string;
      await create(s1, tok, 'mv');
      expect((await call(`${s1.url}/v0/events?name=mv`, { method: 'POST', token: tok, body: body(0, 10) })).status).toBe(202);
      await drained(s1, 'mv', 20_000, 'before');
      const idFile = fs.readFileSync(path.join(segDir(s1, 'mv', 'before'), '..', '.workspace.json'));
      const ren = await call(`${s1.url}/v0/tenants/local/workspaces/before`, { method: 'PATCH', token: op, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'after' }) });
      expect(ren.status, ren.text).toBe(200);
      await s1.stop('SIGKILL');
      // The state says 'after'; the buffer still holds acknowledged events under 'before' (the
      // kill came between the rename's state change and the move of its directory).
      const from = segDir(s1, 'mv', 'after');
      const to = segDir(s1, 'mv', 'before');
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.renameSync(from, to);
      fs.writeFileSync(path.join(path.dirname(to), '.workspace.json'), idFile);
      fs.writeFileSync(path.join(to, '000000000001-0badbeef.ndjson'), body(10, 10));
      s2 = await startServer({ dataDir: s1.dataDir });
      await drained(s2, 'mv', 20_000, 'before');
      checkExactlyOnce(await ids(s2, tok, 'mv'), Array.from({ length: 20 }, (_, i) => i));
    } finally {
      await s1.stop('SIGKILL');
      await s2?.stop();
    }
  });

  it('cells killed during flushes that quarantine rows: every stored and every quarantined row once', async () => {
    const s = await startServer();
    const acked = new Set<number>();
    let stopped = false;
    try {
      const tok = (await call(`${s.url}/tokens`)).body.workspace_admin_token as string;
      await create(s, tok, 'cq');
      let next = 0;
      // Each body: 4 good events and one the schema refuses (quarantined at flush), its raw text unique.
      const sender = async () => {
        while (!stopped) {
          const from = next; next += 5;
          const b = body(from, 4) + JSON.stringify({ id: `bad-${from + 4}` }) + '\n';
          const r = await call(`${s.url}/v0/events?name=cq`, { method: 'POST', token: tok, body: b }).catch(() => undefined);
          if (r?.status === 202) for (let i = 0; i < 5; i++) acked.add(from + i);
        }
      };
      const senders = Array.from({ length: 6 }, sender);
      for (let k = 0; k < 2; k++) {
        const before = (await ids(s, tok, 'cq')).size;
        const deadline = Date.now() + 20_000;
        while ((await ids(s, tok, 'cq').catch(() => new Map())).size === before) {
          if (Date.now() > deadline) throw new Error('no flush in 20 s');
        }
        for (const pid of childProcesses(s.proc.pid!, 'cell')) process.kill(pid, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 300));
      }
      stopped = true;
      await Promise.all(senders);
      await drained(s, 'cq', 40_000);
      const good = [...acked].filter((i) => i % 5 !== 4);
      checkExactlyOnce(await ids(s, tok, 'cq'), good);
      const q = await call(`${s.url}/v0/sql?q=${encodeURIComponent('SELECT c__raw AS raw, count() AS c FROM cq_quarantine GROUP BY raw FORMAT JSONEachRow')}`, { token: tok });
      expect(q.status, q.text).toBe(200);
      const quarantined = new Map<number, number>();
      for (const l of q.text.split('\n').filter(Boolean)) { const o = JSON.parse(l); quarantined.set(Number(/bad-(\d+)/.exec(o.raw)![1]), Number(o.c)); }
      checkExactlyOnce(quarantined, [...acked].filter((i) => i % 5 === 4));
    } finally {
      stopped = true;
      await s.stop();
    }
  }, 60_000);
});

const quietLog = { info() {}, warn() {}, error() {}, debug() {} } as never;
async function* chunks(...b: string[]): AsyncGenerator<Buffer> { for (const x of b) yield Buffer.from(x); }

describe('events buffer under a slow or absent engine (unit, real files)', () => {
  it('a data source dropped and created again while events arrive: the new folder is not removed under them, the drop does not fail', async () => {
    const root = tempDir('roost-evbuf-');
    const stored: string[] = [];
    const buf = new EventBuffer({ root, log: quietLog, intervalMs: 3_600_000, flush: async (o, files) => { for (const f of files) stored.push(fs.readFileSync(f, 'utf8').trim()); } });
    const o = { tenant: 't', workspace: 'w', datasource: 'd' };
    for (let round = 0; round < 20; round++) {
      await buf.append(o, chunks(`{"old":${round}}\n`));
      // The drop and an append for the name created again, in the same turn (the server's
      // drop discards, a create follows, events arrive for it).
      const dropping = buf.discard(o);
      const during = buf.append(o, chunks(`{"during":${round}}\n`));
      await expect(dropping).resolves.toBeUndefined();
      await expect(during).resolves.toMatchObject({ lines: 1 });
      // Later events of the new data source are buffered, not refused (ENOENT) until a restart.
      await expect(buf.append(o, chunks(`{"after":${round}}\n`))).resolves.toMatchObject({ lines: 1 });
      await buf.flush();
      expect(stored.splice(0)).toEqual([`{"during":${round}}`, `{"after":${round}}`]);
    }
    // Nothing of the dropped folders is left in the tree (nor waits in the trash).
    expect(fs.readdirSync(path.join(root, 't', 'w'))).toEqual(['d']);
    expect(fs.existsSync(path.join(root, '.trash')) ? fs.readdirSync(path.join(root, '.trash')) : []).toEqual([]);
    await buf.close();
  });

  it('flush requests while one is running are coalesced: at most one waits behind it', async () => {
    let running = 0;
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const buf = new EventBuffer({ root: tempDir('roost-evbuf-'), log: quietLog, intervalMs: 3_600_000, flush: async () => { calls++; running++; await gate; running--; } });
    await buf.append({ tenant: 't', workspace: 'w', datasource: 'd' }, chunks('{"a":1}\n'));
    const first = buf.flush();
    await new Promise((r) => setTimeout(r, 20));
    // A slow engine: 1000 timer ticks / appends over the batch size while the flush runs.
    const more = Array.from({ length: 1000 }, () => buf.flush());
    expect(new Set(more).size).toBe(1);
    release();
    await Promise.all([first, ...more]);
    expect(calls).toBe(1);
    expect(running).toBe(0);
    await buf.close();
  });

  it('segments the engine refused are kept up to a bound per data source; past it, its events are refused at the door (507), others go on', async () => {
    const root = tempDir('roost-evbuf-');
    const refused = new QueryFailed('Code: 395. DB::Exception: Value passed to \'throwIf\' function is non-zero', 395);
    const stored: string[] = [];
    const buf = new EventBuffer({ root, log: quietLog, intervalMs: 3_600_000, maxRejectedBytes: 100, flush: async (o, files) => {
      if (o.datasource === 'bad') throw refused;
      for (const f of files) stored.push(`${o.datasource}:${fs.readFileSync(f, 'utf8').trim()}`);
    } });
    const bad = { tenant: 't', workspace: 'w', datasource: 'bad' };
    const good = { tenant: 't', workspace: 'w', datasource: 'good' };
    const event = (i: number) => `{"i":${i},"pad":"${'x'.repeat(40)}"}\n`; // 57 bytes
    const dir = path.join(root, 't', 'w', 'bad');
    const rejected = () => fs.readdirSync(dir).filter((f) => f.endsWith('.rejected'));
    await buf.append(bad, chunks(event(0)));
    await buf.flush();
    expect(rejected()).toHaveLength(1); // 57 bytes kept: under the bound
    await buf.append(bad, chunks(event(1)));
    await buf.flush();
    expect(rejected()).toHaveLength(2); // 114 bytes: past the bound from now on
    expect(buf.bytesOf('t')).toBe(114); // counted towards the tenant's storage_bytes
    const err = await buf.append(bad, chunks(event(2))).then(() => undefined, (e) => e);
    expect(err?.code).toBe('INSUFFICIENT_STORAGE');
    expect(err?.status).toBe(507);
    expect(err?.message).toContain('refused (set aside as .rejected files)');
    expect(err?.details).toEqual({ rejected_bytes: 114, limit: 100 });
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.ndjson'))).toEqual([]); // nothing buffered
    // Another data source goes on.
    await buf.append(good, chunks('{"g":1}\n'));
    await buf.flush();
    expect(stored).toEqual(['good:{"g":1}']);
    // Once a person has dealt with the files, events are taken again.
    for (const f of rejected()) fs.rmSync(path.join(dir, f));
    await buf.append(bad, chunks(event(3)));
    await buf.close();
  });

  it('a segment the engine refused goes to the quarantine hook and is removed; a hook failure that may pass leaves it for the next flush; one about its content sets it aside', async () => {
    const root = tempDir('roost-evbuf-');
    const refused = new QueryFailed('Code: 395. DB::Exception: Value passed to \'throwIf\' function is non-zero', 395);
    const taken: Array<{ ds: string; text: string; code?: number }> = [];
    let hookFails: Error | undefined;
    const buf = new EventBuffer({
      root, log: quietLog, intervalMs: 3_600_000,
      flush: async (o, files) => { if (files.some((f) => fs.readFileSync(f, 'utf8').includes('"bad"'))) throw refused; },
      quarantine: async (o, file, err) => {
        if (hookFails) throw hookFails;
        taken.push({ ds: o.datasource, text: fs.readFileSync(file, 'utf8'), code: (err as QueryFailed).clickhouseCode });
        return 1;
      },
    });
    const o = { tenant: 't', workspace: 'w', datasource: 'd' };
    const dir = path.join(root, 't', 'w', 'd');
    await buf.append(o, chunks('{"ok":1}\n'));
    await buf.append(o, chunks('{"bad":1}\n'));
    await buf.append(o, chunks('{"ok":2}\n'));
    await buf.flush();
    // The batch failed, each segment went alone: the refused one was taken by the hook, with the engine's error.
    expect(taken).toEqual([{ ds: 'd', text: '{"bad":1}\n', code: 395 }]);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.ndjson'))).toEqual([]);
    expect(buf.bytesOf('t')).toBe(0);
    // A hook failure that may pass (the engine away): the segment stays, and the next flush quarantines it.
    hookFails = new Error('the engine is away');
    await buf.append(o, chunks('{"bad":2}\n'));
    await buf.flush();
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.ndjson'))).toHaveLength(1);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.rejected'))).toEqual([]);
    hookFails = undefined;
    await buf.flush(o); // asked by an operation on the data source: not held back by the failure's backoff
    expect(taken.map((x) => x.text)).toEqual(['{"bad":1}\n', '{"bad":2}\n']);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.ndjson'))).toEqual([]);
    // A quarantine refused for what the segment holds: set aside, as without a hook (nothing lost).
    hookFails = refused;
    await buf.append(o, chunks('{"bad":3}\n'));
    await buf.flush();
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.rejected'))).toHaveLength(1);
    expect(buf.bytesOf('t')).toBe(10);
    await buf.close();
  });

  it('set-aside segments found at start count towards the bound', async () => {
    const root = tempDir('roost-evbuf-');
    const dir = path.join(root, 't', 'w', 'bad');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, '000000000001-0000abcd.ndjson.rejected'), 'x'.repeat(150));
    const buf = new EventBuffer({ root, log: quietLog, intervalMs: 3_600_000, maxRejectedBytes: 100, flush: async () => {} });
    const err = await buf.append({ tenant: 't', workspace: 'w', datasource: 'bad' }, chunks('{"a":1}\n')).then(() => undefined, (e) => e);
    expect(err?.code).toBe('INSUFFICIENT_STORAGE');
    await buf.close();
  });

  it('a data source whose backlog is over the bound refuses new events with a retryable 503, others go on', async () => {
    let fail = true;
    const stored: string[] = [];
    const root = tempDir('roost-evbuf-');
    const buf = new EventBuffer({ root, log: quietLog, intervalMs: 3_600_000, maxPendingSegments: 3, flush: async (o, files) => {
      if (fail && o.datasource === 'slow') throw new Error('engine away');
      for (const f of files) stored.push(`${o.datasource}:${fs.readFileSync(f, 'utf8').trim()}`);
    } });
    const slow = { tenant: 't', workspace: 'w', datasource: 'slow' };
    const other = { tenant: 't', workspace: 'w', datasource: 'other' };
    for (let i = 0; i < 3; i++) await buf.append(slow, chunks(`{"i":${i}}\n`));
    const err = await buf.append(slow, chunks('{"i":3}\n')).then(() => undefined, (e) => e);
    expect(err?.code).toBe('ENGINE_UNAVAILABLE');
    expect(err?.status).toBe(503);
    expect(err?.retryable).toBe(true);
    expect(err?.headers['Retry-After']).toBeTruthy();
    // Another data source is not held back by it.
    await buf.append(other, chunks('{"o":1}\n'));
    await buf.flush();
    expect(stored).toEqual(['other:{"o":1}']);
    fail = false;
    // Within its backoff the timer leaves it alone; a flush asked for it (a truncate first
    // flushes its data source) tries at once.
    await buf.flush();
    expect(stored).toHaveLength(1);
    await buf.flush(slow);
    expect(stored.slice(1).sort()).toEqual(['slow:{"i":0}', 'slow:{"i":1}', 'slow:{"i":2}']);
    // Drained: accepted again.
    await buf.append(slow, chunks('{"i":4}\n'));
    await buf.close();
    expect(stored).toContain('slow:{"i":4}');
  });

  it("one tenant's hanging engine does not hold back another tenant's flush; a vanished directory is no crash", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const stored: string[] = [];
    const root = tempDir('roost-evbuf-');
    const buf = new EventBuffer({ root, log: quietLog, intervalMs: 3_600_000, flush: async (o) => {
      if (o.tenant === 'hung') await gate; // a remote server that answers after minutes
      stored.push(o.tenant);
    } });
    await buf.append({ tenant: 'hung', workspace: 'w', datasource: 'd' }, chunks('{"a":1}\n'));
    await buf.append({ tenant: 'ok', workspace: 'w', datasource: 'd' }, chunks('{"a":1}\n'));
    await buf.append({ tenant: 'gone', workspace: 'w', datasource: 'd' }, chunks('{"a":1}\n'));
    fs.rmSync(path.join(root, 'gone'), { recursive: true }); // removed behind its back
    const all = buf.flush();
    for (let i = 0; i < 100 && !stored.includes('ok'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(stored).toEqual(['ok']);
    release();
    await all; // resolves (a failure is logged and retried, not thrown)
    expect(stored.sort()).toEqual(['hung', 'ok']);
    await buf.close();
  });

  it('a workspace renamed while a batch whose insert may have landed waits: the batch goes again under its own names', async () => {
    const sent: string[][] = [];
    let fail = true;
    const buf = new EventBuffer({ root: tempDir('roost-evbuf-'), log: quietLog, intervalMs: 3_600_000, flush: async (o, files) => {
      sent.push(files.map((f) => `${o.workspace}:${path.basename(f)}`));
      if (fail) throw new Error('the answer was lost (the insert landed)');
    } });
    const before = { tenant: 't', workspace: 'before', datasource: 'd' };
    await buf.append(before, chunks('{"a":1}\n'));
    await buf.append(before, chunks('{"a":2}\n'));
    await buf.flush();
    const names = sent[0]!.map((n) => n.split(':')[1]);
    fail = false;
    // Events arrive under the new name before the buffer moves the old ones.
    await buf.append({ ...before, workspace: 'after' }, chunks('{"a":3}\n'));
    await buf.renameWorkspace('t', 'before', 'after');
    // The interrupted batch went again, the same names (the same dedup token), before anything moved.
    expect(sent[1]).toEqual(names.map((n) => `after:${n}`));
    await buf.flush();
    expect(sent.slice(2).flat()).toHaveLength(1); // only the event sent under the new name
    await buf.close();
  });

  it("a renamed workspace's buffer directory keeps the workspace's id (for a second rename cut by a crash)", async () => {
    const root = tempDir('roost-evbuf-');
    const buf = new EventBuffer({ root, log: quietLog, intervalMs: 3_600_000, flush: async () => { throw new Error('engine away'); } });
    await buf.append({ tenant: 't', workspace: 'one', datasource: 'd', workspaceId: 'ws-id-1' }, chunks('{"a":1}\n'));
    expect(JSON.parse(fs.readFileSync(path.join(root, 't', 'one', '.workspace.json'), 'utf8'))).toEqual({ workspace_id: 'ws-id-1' });
    await buf.renameWorkspace('t', 'one', 'two');
    expect(JSON.parse(fs.readFileSync(path.join(root, 't', 'two', '.workspace.json'), 'utf8'))).toEqual({ workspace_id: 'ws-id-1' });
    expect(fs.existsSync(path.join(root, 't', 'one'))).toBe(false);
    expect(fs.readdirSync(path.join(root, 't', 'two', 'd')).filter((f) => f.endsWith('.ndjson'))).toHaveLength(1);
    await buf.close();
  });

  it('a wall clock stepped back after a failed flush does not hold the retry back', async () => {
    let fail = true;
    let calls = 0;
    const buf = new EventBuffer({ root: tempDir('roost-evbuf-'), log: quietLog, intervalMs: 3_600_000, flush: async () => { calls++; if (fail) throw new Error('engine away'); } });
    const o = { tenant: 't', workspace: 'w', datasource: 'd' };
    await buf.append(o, chunks('{"a":1}\n'));
    const now = Date.now;
    try {
      await buf.flush();
      expect(calls).toBe(1);
      Date.now = () => now() - 3_600_000; // the clock goes an hour back (NTP step, operator)
      fail = false;
      await new Promise((r) => setTimeout(r, 1100)); // past the first backoff (1 s)
      await buf.flush();
      expect(calls).toBe(2);
      expect(buf.pendingBytes).toBe(0);
    } finally {
      Date.now = now;
      await buf.close();
    }
  });
});

describe('state journal under kill -9 at every byte', () => {
  it('a journal cut at any byte of its last records loads every whole record and nothing of a cut one', async () => {
    const dir = tempDir('roost-journal-');
    const s = new State(new JournalStore(dir));
    await s.open();
    const sizes: number[] = [];
    const file = path.join(dir, 'journal.log');
    for (let i = 0; i < 4; i++) {
      await s.write([{ op: 'put', path: ['n', String(i)], value: { i, pad: 'é'.repeat(i * 7) } }, { op: 'del', path: ['n', String(i - 2)] }]);
      sizes.push(fs.statSync(file).size);
    }
    await s.close();
    const full = fs.readFileSync(file);
    const expected = (whole: number) => {
      const n: Record<string, unknown> = {};
      for (let i = 0; i < whole; i++) { n[String(i)] = { i, pad: 'é'.repeat(i * 7) }; delete n[String(i - 2)]; }
      return n;
    };
    for (let cut = sizes[1]!; cut <= full.length; cut++) {
      const d = tempDir('roost-journal-');
      fs.writeFileSync(path.join(d, 'journal.log'), full.subarray(0, cut));
      // A compaction cut before its rename, by an earlier crash.
      fs.writeFileSync(path.join(d, 'snapshot.json.tmp-12345'), '{"seq":99,"doc":{"n":{"bogus":');
      const st = new State(new JournalStore(d));
      const recovered = await st.open();
      const whole = sizes.filter((x) => x <= cut).length;
      expect(st.seq, `cut at ${cut}`).toBe(whole);
      expect(st.get('n') ?? {}, `cut at ${cut}`).toEqual(expected(whole));
      expect(recovered.some((r) => /cut \d+ bytes of a torn journal tail/.test(r)), `cut at ${cut}`).toBe(!sizes.includes(cut));
      // (A cut tail's bytes are kept beside the journal.)
      const torn = (f: string) => f.startsWith('journal.log.torn-');
      expect(fs.readdirSync(d).filter((f) => !torn(f)).sort()).toEqual(['journal.log']);
      expect(fs.readdirSync(d).some(torn), `cut at ${cut}`).toBe(!sizes.includes(cut));
      // The next write lands after the last whole record and survives the next start.
      await st.write([{ op: 'put', path: ['after'], value: cut }]);
      await st.close();
      const again = new State(new JournalStore(d));
      expect(await again.open()).toEqual([]);
      expect(again.get('after')).toBe(cut);
      expect(again.seq).toBe(whole + 1);
      await again.close();
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
