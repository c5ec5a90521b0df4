/**
 * A kill between the engine's deduplication record of an insert and the insert's commit (the
 * part's rename from tmp_insert_*) leaves a record of a part that is not there. Roost sends a
 * group commit or an events-buffer flush whose answer was lost again with the same token, and
 * the engine dropped it as a duplicate: acknowledged rows lost (seen once in CI, "a cell killed
 * under grouped inserts"). The cell now repairs the log before its engine opens it
 * (src/cells/dedup-repair.ts). Real engine (chdb) on real directories; the kill's moment is made
 * by renaming the part back to the temporary name the engine gives it before its commit.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repairDeduplicationLogs } from '../src/cells/dedup-repair.js';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { engineRun } from './helpers/disk.js';
import { checkExactlyOnce, drained, eventsBody, segmentDir, storedIds } from './helpers/events.js';

const TABLE = 'CREATE TABLE IF NOT EXISTS d.t (id UInt64) ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 1000';

const engine = engineRun;
const insert = (token: string, from: number) =>
  `INSERT INTO d.t SETTINGS insert_deduplication_token = '${token}' VALUES (${from}), (${from + 1})`;

function tableDir(dir: string): string {
  const store = path.join(dir, 'store');
  for (const a of fs.readdirSync(store)) {
    for (const b of fs.readdirSync(path.join(store, a))) {
      const d = path.join(store, a, b);
      if (fs.existsSync(path.join(d, 'deduplication_logs'))) return d;
    }
  }
  throw new Error('no table with a deduplication log');
}
/** The state a kill leaves between the record and the commit: the part under its temporary name. */
function uncommit(dir: string, part: string): void {
  const t = tableDir(dir);
  fs.renameSync(path.join(t, part), path.join(t, `tmp_insert_${part}`));
}

describe('the deduplication log after a kill between record and commit', () => {
  it('a retried insert is stored once the cell repaired the log (the engine alone drops it), and duplicates are still dropped', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-dedup-'));
    try {
      const a = path.join(root, 'a');
      engine(a, 'CREATE DATABASE d', TABLE, insert('one', 1), insert('two', 3));
      uncommit(a, 'all_2_2_0');
      const b = path.join(root, 'b');
      fs.cpSync(a, b, { recursive: true });

      // The engine alone: the retry of "two" is taken for a duplicate of rows it does not have.
      expect(engine(a, insert('two', 3), 'SELECT count() FROM d.t')).toBe('2');

      // Repaired first: the retry is stored; sent again (and "one" again), it is a duplicate.
      const r = repairDeduplicationLogs(b);
      expect(r.tables).toBe(1);
      expect(r.skipped).toEqual([]);
      expect(r.forgotten.map((f) => f.part)).toEqual(['all_2_2_0']);
      expect(engine(b, insert('two', 3), insert('two', 3), insert('one', 1), 'SELECT groupArray(id) FROM (SELECT id FROM d.t ORDER BY id)')).toBe('[1,2,3,4]');
      // Nothing more to forget: the new part covers it, and the repair changes nothing.
      const before = fs.readdirSync(path.join(tableDir(b), 'deduplication_logs')).map((f) => fs.readFileSync(path.join(tableDir(b), 'deduplication_logs', f), 'utf8')).join('');
      expect(repairDeduplicationLogs(b).forgotten).toEqual([]);
      const after = fs.readdirSync(path.join(tableDir(b), 'deduplication_logs')).map((f) => fs.readFileSync(path.join(tableDir(b), 'deduplication_logs', f), 'utf8')).join('');
      expect(after).toBe(before);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('keeps the records of parts merged or mutated into others, and cuts a record a kill left half written', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-dedup-'));
    try {
      const dir = path.join(root, 'c');
      engine(dir, 'CREATE DATABASE d', TABLE, insert('one', 1), insert('two', 3), insert('three', 5),
        'OPTIMIZE TABLE d.t FINAL', 'ALTER TABLE d.t DELETE WHERE id = 6 SETTINGS mutations_sync = 2');
      const logs = path.join(tableDir(dir), 'deduplication_logs');
      const [log] = fs.readdirSync(logs);
      fs.appendFileSync(path.join(logs, log!), '1\tall_4_4_0\tall_1234');
      const r = repairDeduplicationLogs(dir);
      expect(r.forgotten).toEqual([]);
      expect(r.skipped).toEqual([]);
      expect(fs.readFileSync(path.join(logs, log!), 'utf8').endsWith('\n')).toBe(true);
      // All three still deduplicate (their rows are in the merged, mutated part), and the table loads.
      expect(engine(dir, insert('one', 1), insert('two', 3), insert('three', 5), 'SELECT groupArray(id) FROM (SELECT id FROM d.t ORDER BY id)')).toBe('[1,2,3,4,5]');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('a log of another shape is left alone and said so', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-dedup-'));
    try {
      const dir = path.join(root, 'e');
      engine(dir, 'CREATE DATABASE d', TABLE, insert('one', 1), insert('two', 3));
      uncommit(dir, 'all_2_2_0');
      const logs = path.join(tableDir(dir), 'deduplication_logs');
      const [log] = fs.readdirSync(logs);
      fs.appendFileSync(path.join(logs, log!), '7\tall_9_9_0\tall_1\n');
      const text = fs.readFileSync(path.join(logs, log!), 'utf8');
      const r = repairDeduplicationLogs(dir);
      expect(r.forgotten).toEqual([]);
      expect(r.skipped).toHaveLength(1);
      expect(r.skipped[0]!.reason).toMatch(/another shape/);
      expect(fs.readFileSync(path.join(logs, log!), 'utf8')).toBe(text);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('events acknowledged with 202 whose flush a kill cut between record and commit', () => {
  it('are stored when the flush is sent again after the restart (the engine dropped them as a duplicate)', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-dedup-srv-'));
    let srv: RunningServer | undefined;
    try {
      // Buffered, not flushed (the flush timer an hour away), then a kill -9: 100 events on disk.
      srv = await startServer({ dataDir, env: { ROOST_EVENTS_FLUSH_MS: '3600000' } });
      const token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token as string;
      const schema = encodeURIComponent('`id` UInt32 `json:$.id`');
      expect((await call(`${srv.url}/v0/datasources?name=ev&format=ndjson&schema=${schema}`, { method: 'POST', token })).status).toBe(200);
      expect((await call(`${srv.url}/v0/events?name=ev`, { method: 'POST', token, body: eventsBody(0, 100) })).status).toBe(202);
      await srv.stop('SIGKILL');
      const segments = segmentDir(srv, 'ev');
      const kept = fs.readdirSync(segments).filter((f) => f.endsWith('.ndjson'));
      expect(kept).toHaveLength(1);
      const copy = fs.readFileSync(path.join(segments, kept[0]!));

      // The next server flushes them (their insert's token made of the segment's name).
      srv = await startServer({ dataDir });
      await drained(srv, 'ev', 20_000);
      checkExactlyOnce(await storedIds(srv, token, 'ev'), Array.from({ length: 100 }, (_, i) => i));
      await srv.stop();

      // What a kill inside that insert's commit leaves: the engine's record of the block, the
      // part still under its temporary name, the segment not yet removed.
      const cellDb = path.join(dataDir, 'cells', 'local', 'db');
      const meta = fs.readdirSync(path.join(cellDb, 'metadata')).map((d) => path.join(cellDb, 'metadata', d, 'ev.sql')).filter((f) => fs.existsSync(f));
      expect(meta).toHaveLength(1);
      const uuid = /UUID '([0-9a-f-]{36})'/.exec(fs.readFileSync(meta[0]!, 'utf8'))![1]!;
      const table = path.join(cellDb, 'store', uuid.slice(0, 3), uuid);
      const parts = fs.readdirSync(table).filter((f) => /^all_\d+_\d+_\d+$/.test(f));
      expect(parts).toEqual(['all_1_1_0']);
      fs.renameSync(path.join(table, 'all_1_1_0'), path.join(table, 'tmp_insert_all_1_1_0'));
      fs.writeFileSync(path.join(segments, kept[0]!), copy);
      // The engine's status file a killed cell leaves, naming its PID, now another live process's
      // (PIDs are reused): it holds nothing, and must not stop the repair.
      fs.writeFileSync(path.join(cellDb, 'status'), `PID: ${process.pid}\nStarted at: 2026-11-30 00:00:00\n`);

      // Sent again with the same token: stored, once.
      srv = await startServer({ dataDir });
      await drained(srv, 'ev', 20_000);
      checkExactlyOnce(await storedIds(srv, token, 'ev'), Array.from({ length: 100 }, (_, i) => i));
      expect(srv.stderr()).toMatch(new RegExp(`cell: forgot the deduplication record of part all_1_1_0 of table ${uuid}: the part is not on disk`));
    } finally {
      await srv?.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
