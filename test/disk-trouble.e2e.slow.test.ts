/**
 * The server's disk in trouble (a black-box round of the twenty-third session): full, read-only,
 * or a directory gone. What was answered must say what happened (507 for a full disk, 503 for a
 * disk that refuses writes, never 422 "your request is wrong" nor 500), and a tenant's cell must
 * start again once the trouble is over. Real engine (chdb), real server over HTTP; a directory
 * made immutable (chattr +i) stands for one that refuses writes.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repairEmptyMetadata } from '../src/cells/metadata-repair.js';
import { QueryFailed } from '../src/errors.js';
import { call, childProcesses, startServer, type RunningServer } from './helpers/server.js';
import { engineRun, needImmutable, pausedSqlClient } from './helpers/disk.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('definition files a full disk left empty', () => {
  it('stop the engine from starting; the cell writes databases again and moves tables aside, and the engine starts with the data kept', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-meta-'));
    try {
      const dir = path.join(root, 'db');
      engineRun(dir, 'CREATE DATABASE d', 'CREATE TABLE d.t (x UInt32) ENGINE = MergeTree ORDER BY x', 'INSERT INTO d.t VALUES (1), (2), (3)',
        'CREATE DATABASE e', 'CREATE DATABASE scratch ENGINE = Memory');
      // What CREATE DATABASE / CREATE TABLE left on a full disk: the definition, empty.
      fs.truncateSync(path.join(dir, 'metadata', 'd.sql'), 0);
      fs.truncateSync(path.join(dir, 'metadata', 'e.sql'), 0);
      fs.truncateSync(path.join(dir, 'metadata', 'scratch.sql'), 0);
      fs.writeFileSync(path.join(dir, 'metadata', 'd', 'u.sql'), '');
      fs.writeFileSync(path.join(dir, 'metadata', 'never.sql'), '\n');
      const copy = path.join(root, 'copy');
      fs.cpSync(dir, copy, { recursive: true, verbatimSymlinks: true });
      // (chdb says why only on stderr: "Empty query: while loading database".)
      expect(() => engineRun(copy, 'SELECT 1')).toThrow(/Failed to create connection/);

      const r = repairEmptyMetadata(dir, 'scratch');
      expect(r.databases.map((d) => [d.database, d.linked]).sort()).toEqual([['d', true], ['e', false], ['never', false]]);  // (a database gets its directory link with its first table)
      expect(r.removed).toEqual(['scratch']);
      expect(r.tables.map((t) => [t.database, t.table])).toEqual([['d', 'u']]);
      expect(fs.readdirSync(path.join(dir, 'metadata', 'd')).some((f) => /^u\.empty-\d+\.sql\.bak$/.test(f))).toBe(true);
      expect(engineRun(dir,
        'CREATE TABLE never.t (x UInt8) ENGINE = MergeTree ORDER BY x', 'INSERT INTO never.t VALUES (9)',
        "SELECT (SELECT groupArray(x) FROM (SELECT x FROM d.t ORDER BY x)), (SELECT count() FROM never.t), (SELECT count() FROM system.tables WHERE database = 'd' AND name = 'u'), (SELECT count() FROM system.databases WHERE name = 'e')")).toBe('[1,2,3]\t1\t0\t1');
      // Nothing left to repair; a second start is clean.
      expect(repairEmptyMetadata(dir, 'scratch')).toEqual({ databases: [], removed: [], tables: [] });
      expect(engineRun(dir, 'SELECT count() FROM d.t')).toBe('3');
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("a tenant whose workspace database's definition is empty starts, with its rows, and says what it mended", async () => {
    let srv = await startServer();
    const dataDir = srv.dataDir;
    try {
      const token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token as string;
      expect((await call(`${srv.url}/v0/datasources?name=kept&schema=${encodeURIComponent('x UInt32')}`, { method: 'POST', token })).status).toBe(200);
      expect((await call(`${srv.url}/v0/datasources?name=kept&mode=append`, { method: 'POST', token, body: '1\n2\n', headers: { 'Content-Type': 'text/csv' } })).status).toBe(200);
      await srv.stop();
      const meta = path.join(dataDir, 'cells', 'local', 'db', 'metadata');
      const ws = fs.readdirSync(meta).filter((f) => f.startsWith('ws_') && f.endsWith('.sql'));
      expect(ws).toHaveLength(1);
      fs.truncateSync(path.join(meta, ws[0]!), 0);
      srv = await startServer({ dataDir });
      const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT sum(x) FROM kept FORMAT TSV')}`, { token });
      expect(r.status, r.text).toBe(200);
      expect(r.text.trim()).toBe('3');
      expect(srv.stderr()).toMatch(new RegExp(`cell: the definition of database ${ws[0]!.slice(0, -4)} was empty \\(written on a full disk\\); written again as an Atomic database with the UUID of its directory`));
    } finally {
      await srv.stop();
    }
  }, 60_000);
});

describe('a data source table whose definition a full disk left empty', () => {
  it('is attached again at the cell\'s start with its data source\'s definition, its rows and quarantine back', async () => {
    let srv = await startServer();
    const dataDir = srv.dataDir;
    try {
      const token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token as string;
      expect((await call(`${srv.url}/v0/datasources?name=back&schema=${encodeURIComponent('x UInt32, s String')}`, { method: 'POST', token })).status).toBe(200);
      const a = await call(`${srv.url}/v0/datasources?name=back&mode=append`, { method: 'POST', token, body: '1,a\n2,b\nnope,c\n', headers: { 'Content-Type': 'text/csv' } });
      expect(a.body).toMatchObject({ successful_rows: 2, quarantined_rows: 1 });
      await srv.stop();
      const meta = path.join(dataDir, 'cells', 'local', 'db', 'metadata');
      const ws = fs.readdirSync(meta).find((f) => f.startsWith('ws_') && !f.endsWith('.sql'))!;
      for (const t of ['back', 'back_quarantine']) fs.truncateSync(path.join(meta, ws, `${t}.sql`), 0);
      srv = await startServer({ dataDir });
      const q = async (sql: string) => {
        for (let i = 0; i < 50; i++) {
          const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${sql} FORMAT TSV`)}`, { token });
          if (r.status === 200) return r.text.trim();
          await sleep(200);
        }
        throw new Error(`${sql}: never answered 200`);
      };
      expect(await q('SELECT sum(x) FROM back')).toBe('3');
      expect(await q('SELECT count() FROM back_quarantine')).toBe('1');
      expect(srv.logs.filter((l) => l.msg === 'a table whose definition was empty was attached again with its rows').map((l) => l.table).sort()).toEqual(['back', 'back_quarantine']);
      expect(fs.existsSync(path.join(dataDir, 'cells', 'local', 'reattach.json'))).toBe(false);
      // And it takes rows as before.
      expect((await call(`${srv.url}/v0/datasources?name=back&mode=append`, { method: 'POST', token, body: '4,d\n', headers: { 'Content-Type': 'text/csv' } })).status).toBe(200);
      expect(await q('SELECT sum(x) FROM back')).toBe('7');
    } finally {
      await srv.stop();
    }
  }, 60_000);
});

describe('a disk with too little room for definitions', () => {
  it('refuses a create (and an upload, which stages its rows in a table of its own) with 507, retryable, and makes nothing; reads and inserted events go on', async () => {
    let srv = await startServer();
    const dataDir = srv.dataDir;
    try {
      const token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token as string;
      expect((await call(`${srv.url}/v0/datasources?name=before&schema=${encodeURIComponent('x UInt32')}`, { method: 'POST', token })).status).toBe(200);
      await srv.stop();
      // Every disk is "nearly full" under a minimum of a petabyte.
      srv = await startServer({ dataDir, env: { ROOST_ENGINE_MIN_FREE_MB: String(1024 ** 3) } });
      const c = await call(`${srv.url}/v0/datasources?name=after&schema=${encodeURIComponent('x UInt32')}`, { method: 'POST', token });
      expect(c.status, c.text).toBe(507);
      expect(c.body).toMatchObject({ code: 'INSUFFICIENT_STORAGE', retryable: true });
      expect(c.body.error).toMatch(/less free disk than its definitions need \(ROOST_ENGINE_MIN_FREE_MB\)/);
      expect(c.text).not.toContain(dataDir);
      expect((await call(`${srv.url}/v0/datasources/after`, { token })).status).toBe(404);
      const a = await call(`${srv.url}/v0/datasources?name=before&mode=append`, { method: 'POST', token, body: '5\n', headers: { 'Content-Type': 'text/csv' } });
      expect(a.status, a.text).toBe(507);
      expect(a.body).toMatchObject({ code: 'INSUFFICIENT_STORAGE', retryable: true });
      expect(a.body.error).toMatch(/refused before it reached the engine, and nothing of it was done/);
      // Events go in, their rejected rows to the quarantine (its table is there: the check at
      // every use writes nothing), and the service data sources are read (their check the same).
      const ev = await call(`${srv.url}/v0/events?name=before&wait=true`, { method: 'POST', token, body: '{"x":7}\n{"x":"seven"}\n' });
      expect(ev.status, ev.text).toBe(200);
      expect(ev.body).toMatchObject({ successful_rows: 1, quarantined_rows: 1 });
      expect((await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT sum(x) FROM before FORMAT TSV')}`, { token })).text.trim()).toBe('7');
      expect((await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() FROM before_quarantine FORMAT TSV')}`, { token })).text.trim()).toBe('1');
      const ops = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() > 0 FROM tinybird.datasources_ops_log FORMAT TSV')}`, { token });
      expect(ops.status, ops.text).toBe(200);
      // A query whose own text speaks of a full disk is the query's failure (it was a 507).
      const fake = await call(`${srv.url}/v0/sql?q=${encodeURIComponent("SELECT throwIf(1, 'No space left on device') FORMAT TSV")}`, { token });
      expect(fake.status, fake.text).toBe(422);
    } finally {
      await srv.stop();
    }
  }, 60_000);

  it('engine answers of a full disk are 507 INSUFFICIENT_STORAGE without the engine\'s paths', () => {
    for (const [msg, code] of [
      ['Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)', 243],
      ['Code: 1001. DB::Exception: std::__1::__fs::filesystem::filesystem_error: filesystem error: in create_directories: No space left on device ["/srv/roost/cells/acme/db/store/dc3"]', 1001],
      ['Code: 75. DB::Exception: Cannot write to file /srv/roost/cells/acme/db/store/x/data.bin, errno: 28, strerror: No space left on device', 75],
    ] as const) {
      const e = new QueryFailed(msg, code);
      expect(e).toMatchObject({ code: 'INSUFFICIENT_STORAGE', status: 507, retryable: true });
      expect(e.message).not.toMatch(/\/srv|store/);
    }
    for (const [msg, code] of [
      ['Code: 1001. DB::Exception: std::__1::__fs::filesystem::filesystem_error: filesystem error: in create_directories: Read-only file system ["/srv/roost/cells/acme/db/store/cbe"]', 1001],
      ['Code: 458. DB::Exception: Cannot unlink file /srv/roost/cells/acme/db/metadata/ws_w3.sql.tmp, errno: 30, strerror: Read-only file system', 458],
      ['Code: 76. DB::Exception: Cannot open file /srv/x, errno: 24, strerror: Too many open files', 76],
    ] as const) {
      const e = new QueryFailed(msg, code);
      expect(e).toMatchObject({ code: 'ENGINE_UNAVAILABLE', status: 503, retryable: true });
      expect(e.message).not.toMatch(/\/srv|store/);
    }
    // Text the query or its data put there says nothing about the disk (an endpoint's caller
    // could make any call a "disk full").
    expect(new QueryFailed("Code: 395. DB::Exception: No space left on device: while executing 'FUNCTION throwIf(1, 'No space left on device')'", 395).code).toBe('QUERY_FAILED');
    expect(new QueryFailed("Code: 6. DB::Exception: Cannot parse string 'ENOSPC' as Int32", 6).code).toBe('QUERY_FAILED');
    expect(new QueryFailed("Code: 72. DB::Exception: errno: 28 is not a number", 72).code).toBe('QUERY_FAILED');
    expect(new QueryFailed('Code: 62. DB::Exception: Syntax error', 62).code).toBe('QUERY_FAILED');
  });
});

describe('directories that refuse writes, or are gone', () => {
  it('an insert whose spool cannot be made is a 503 and the cell lives on; a spool directory removed is made again; buffered events refused by the disk are a 503, not a 500', async (t) => {
    if (!needImmutable(t)) return;
    const srv: RunningServer = await startServer();
    const locked: string[] = [];
    try {
      const token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token as string;
      expect((await call(`${srv.url}/v0/datasources?name=s&schema=${encodeURIComponent('x UInt32')}`, { method: 'POST', token })).status).toBe(200);
      const [cell] = childProcesses(srv.proc.pid!, 'cell-main');
      expect(cell).toBeDefined();
      const spool = path.join(srv.dataDir, 'cells', 'local', 'spool');

      // Removed under the running cell: made again, the append stored.
      fs.rmSync(spool, { recursive: true, force: true });
      const a1 = await call(`${srv.url}/v0/datasources?name=s&mode=append`, { method: 'POST', token, body: '1\n', headers: { 'Content-Type': 'text/csv' } });
      expect(a1.status, a1.text).toBe(200);

      // Refusing writes: the append is a 503 that says nothing was stored, the cell is the same.
      execFileSync('chattr', ['+i', spool]);
      locked.push(spool);
      const a2 = await call(`${srv.url}/v0/datasources?name=s&mode=append`, { method: 'POST', token, body: '2\n', headers: { 'Content-Type': 'text/csv' } });
      expect(a2.status, a2.text).toBe(503);
      expect(a2.body).toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: true });
      expect(a2.body.error).toMatch(/nothing of it was stored/);
      const w = await call(`${srv.url}/v0/events?name=s&wait=true`, { method: 'POST', token, body: '{"x":3}\n' });
      expect(w.status, w.text).toBe(503);
      expect(childProcesses(srv.proc.pid!, 'cell-main')).toEqual([cell]);
      expect((await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT sum(x) FROM s FORMAT TSV')}`, { token })).text.trim()).toBe('1');
      execFileSync('chattr', ['-i', spool]);
      locked.pop();
      const a3 = await call(`${srv.url}/v0/datasources?name=s&mode=append`, { method: 'POST', token, body: '4\n', headers: { 'Content-Type': 'text/csv' } });
      expect(a3.status, a3.text).toBe(200);

      // The events buffer's folder refusing writes: 503 ENGINE_UNAVAILABLE (it was a 500 "report it").
      const events = path.join(srv.dataDir, 'events');
      fs.mkdirSync(events, { recursive: true });
      execFileSync('chattr', ['+i', events]);
      locked.push(events);
      const b = await call(`${srv.url}/v0/events?name=s`, { method: 'POST', token, body: '{"x":5}\n' });
      expect(b.status, b.text).toBe(503);
      expect(b.body).toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: true });
      expect(b.body.error).toMatch(/could not write to its disk \(EPERM: read-only or not permitted\)/);
      execFileSync('chattr', ['-i', events]);
      locked.pop();
      expect((await call(`${srv.url}/v0/events?name=s`, { method: 'POST', token, body: '{"x":5}\n' })).status).toBe(202);
      for (let i = 0; i < 50; i++) {
        if ((await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT sum(x) FROM s FORMAT TSV')}`, { token })).text.trim() === '10') break;
        await sleep(200);
      }
      expect((await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT sum(x) FROM s FORMAT TSV')}`, { token })).text.trim()).toBe('10');
    } finally {
      for (const d of locked) execFileSync('chattr', ['-i', d]);
      await srv.stop();
    }
  }, 60_000);
});

describe('a workspace create whose state write the disk refuses', () => {
  it('answers that the disk refused it and leaves no database behind', async (t) => {
    if (!needImmutable(t)) return;
    let srv = await startServer({ dev: false });
    const journal = path.join(srv.dataDir, 'state', 'journal.log');
    let locked = false;
    try {
      const op = srv.operatorToken;
      const json = (b: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(b) });
      expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'acme' }) })).status).toBe(201);
      expect((await call(`${srv.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: op, ...json({ name: 'first' }) })).status).toBe(201);
      execFileSync('chattr', ['+i', journal]);
      locked = true;
      const w = await call(`${srv.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: op, ...json({ name: 'second' }) });
      expect(w.status, w.text).toBe(503);
      expect(w.body).toMatchObject({ code: 'ENGINE_UNAVAILABLE', retryable: true });
      execFileSync('chattr', ['-i', journal]);
      locked = false;
      const meta = path.join(srv.dataDir, 'cells', 'acme', 'db', 'metadata');
      const dbs = fs.readdirSync(meta).filter((f) => f.startsWith('ws_') && f.endsWith('.sql'));
      expect(dbs.some((f) => f.startsWith('ws_first_'))).toBe(true);
      expect(dbs.filter((f) => f.startsWith('ws_second_'))).toEqual([]);
      // The journal could not be cut back to its last record (immutable, as a read-only disk):
      // changes wait for a restart, and say so (it was a 500 "report it"); reads go on.
      const again = await call(`${srv.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: op, ...json({ name: 'second' }) });
      expect(again.status, again.text).toBe(503);
      expect(again.body).toMatchObject({ code: 'STATE_UNAVAILABLE' });
      expect(again.body.error).toMatch(/no change is accepted until the server is restarted/);
      expect(again.text).not.toContain(srv.dataDir);
      expect((await call(`${srv.url}/v0/tenants/acme`, { token: op })).status).toBe(200);
      await srv.stop();
      srv = await startServer({ dataDir: srv.dataDir, dev: false });
      expect((await call(`${srv.url}/v0/tenants/acme/workspaces`, { method: 'POST', token: op, ...json({ name: 'second' }) })).status).toBe(201);
      expect((await call(`${srv.url}/v0/tenants/acme/workspaces`, { token: op })).body.workspaces?.map((x: { name: string }) => x.name).sort() ?? []).toEqual(expect.arrayContaining(['first', 'second']));
    } finally {
      if (locked) execFileSync('chattr', ['-i', journal]);
      await srv.stop();
    }
  }, 60_000);
});

describe('a data directory the server cannot write', () => {
  it('stops the server at start with one line naming it and what to do (exit 1, no stack trace)', async (t) => {
    if (!needImmutable(t)) return;
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-ro-'));
    execFileSync('chattr', ['+i', parent]);
    try {
      const bin = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'bin', 'roost.js');
      const r = spawnSync(process.execPath, [bin, 'serve', '--dev', '--port', '0', '--data', path.join(parent, 'data')], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^roost: cannot use the data directory ${path.join(parent, 'data').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(EPERM\\): .*give the server's user write access to it`));
      // A data directory that exists and refuses its lock file (the lock is the native addon's, whose error has no code).
      const existing = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-ro-data-'));
      execFileSync('chattr', ['+i', existing]);
      try {
        const r2 = spawnSync(process.execPath, [bin, 'serve', '--dev', '--port', '0', '--data', existing], { encoding: 'utf8', timeout: 30_000 });
        expect(r2.status).toBe(1);
        expect(r2.stderr.trim().split('\n')).toHaveLength(1);
        expect(r2.stderr).toMatch(/^roost: cannot use the data directory .* \((EPERM|EACCES)\): .*give the server's user write access to it/);
      } finally {
        execFileSync('chattr', ['-i', existing]);
        fs.rmSync(existing, { recursive: true, force: true });
      }
    } finally {
      execFileSync('chattr', ['-i', parent]);
      fs.rmSync(parent, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('a result spool the disk refuses', () => {
  it('makes the engine wait for the slow client, whose result comes whole (it was cut, and logged as a 200)', async (t) => {
    if (!needImmutable(t)) return;
    const srv = await startServer();
    const tmp = path.join(srv.dataDir, 'tmp');
    fs.mkdirSync(tmp, { recursive: true });
    execFileSync('chattr', ['+i', tmp]);
    try {
      const token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token as string;
      const rows = 2_000_000;  // ~26 MB of CSV: past the 8 MiB a result may wait in memory
      const q = `SELECT number, toString(number * 3) AS s FROM numbers(${rows}) FORMAT CSV`;
      const client = pausedSqlClient(srv.url, token, q);
      await sleep(3000);
      client.read();
      await client.done;
      const text = Buffer.concat(client.parts).toString('latin1');
      expect(text).toMatch(/^HTTP\/1\.1 200/);
      expect(text).toContain(`\n${rows - 1},"${(rows - 1) * 3}"\n`);
      expect(text.endsWith('0\r\n\r\n')).toBe(true);
      expect(srv.logs.some((l) => l.msg === 'response failed after headers were sent')).toBe(false);
    } finally {
      execFileSync('chattr', ['-i', tmp]);
      await srv.stop();
    }
  }, 60_000);
});
