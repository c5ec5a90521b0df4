/**
 * "A crash (kill -9) never loses what was acknowledged" for uploads answered 200 once
 * stored: /v0/datasources append and replace, /v0/events?wait=true. Real server, real
 * engine, real SIGKILL, restart on the same data directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

/** Stage tables in the tenant's engine, read from its metadata folders (SQL cannot see them). */
function stageTablesOnDisk(s: RunningServer): string[] {
  const meta = path.join(s.dataDir, 'cells', 'local', 'db', 'metadata');
  if (!fs.existsSync(meta)) return [];
  return fs.readdirSync(meta).filter((d) => d.startsWith('ws_') && fs.statSync(path.join(meta, d)).isDirectory()).flatMap((d) => fs.readdirSync(path.join(meta, d)).filter((f) => f.includes('__stage_')));
}

const csvSchema = encodeURIComponent('id Int32, txt String');
const ndSchema = encodeURIComponent('`id` UInt32 `json:$.id`');
const csv = (from: number, n: number) => Array.from({ length: n }, (_, i) => `${from + i},row${from + i}\n`).join('');
const nd = (from: number, n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ id: from + i })).join('\n') + '\n';

async function sqlRows(s: RunningServer, tok: string, q: string): Promise<any[]> {
  const r = await call(`${s.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSONEachRow`)}`, { token: tok });
  if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
  return r.text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function kill9(s: RunningServer): Promise<void> {
  process.kill(s.proc.pid!, 'SIGKILL');
  await s.exited;
}

describe('uploads answered 200 are there after kill -9', () => {
  it('append, replace and events?wait=true: kill right after the 200, restart, data present', async () => {
    const s1 = await startServer();
    let s2: RunningServer | undefined;
    try {
      const tok = (await call(`${s1.url}/tokens`)).body.workspace_admin_token as string;
      const post = (p: string, body?: string) => call(`${s1.url}${p}`, { method: 'POST', token: tok, body });
      expect((await post(`/v0/datasources?name=up_a&schema=${csvSchema}`)).status).toBe(200);
      expect((await post(`/v0/datasources?name=up_r&schema=${csvSchema}`)).status).toBe(200);
      expect((await post(`/v0/datasources?name=up_w&format=ndjson&schema=${ndSchema}`)).status).toBe(200);
      expect((await post('/v0/datasources?name=up_a&mode=append', csv(0, 1000))).status).toBe(200);
      expect((await post('/v0/datasources?name=up_r&mode=append', csv(0, 1000))).status).toBe(200);
      expect((await post('/v0/datasources?name=up_r&mode=replace', csv(5000, 300))).status).toBe(200);
      expect((await post('/v0/events?name=up_w&wait=true', nd(0, 700))).status).toBe(200);
      const last = await post('/v0/datasources?name=up_a&mode=append', csv(1000, 500));
      expect(last.status).toBe(200);
      await kill9(s1);
      s2 = await startServer({ dataDir: s1.dataDir });
      expect(await sqlRows(s2, tok, 'SELECT count() AS c, uniqExact(id) AS u FROM up_a')).toEqual([{ c: 1500, u: 1500 }]);
      expect(await sqlRows(s2, tok, 'SELECT count() AS c, min(id) AS lo FROM up_r')).toEqual([{ c: 300, lo: 5000 }]);
      expect(await sqlRows(s2, tok, 'SELECT count() AS c FROM up_w')).toEqual([{ c: 700 }]);
    } finally {
      await s1.stop('SIGKILL');
      await s2?.stop();
    }
  });

  it('a kill in the middle of an upload: nothing of it is visible after restart, the acknowledged rows are', async () => {
    const s1 = await startServer();
    let s2: RunningServer | undefined;
    try {
      const tok = (await call(`${s1.url}/tokens`)).body.workspace_admin_token as string;
      const post = (p: string, body?: string) => call(`${s1.url}${p}`, { method: 'POST', token: tok, body });
      expect((await post(`/v0/datasources?name=mid_a&schema=${csvSchema}`)).status).toBe(200);
      expect((await post(`/v0/datasources?name=mid_r&schema=${csvSchema}`)).status).toBe(200);
      expect((await post(`/v0/datasources?name=mid_w&format=ndjson&schema=${ndSchema}`)).status).toBe(200);
      expect((await post('/v0/datasources?name=mid_a&mode=append', csv(0, 100))).status).toBe(200);
      expect((await post('/v0/datasources?name=mid_r&mode=append', csv(0, 100))).status).toBe(200);
      expect((await post('/v0/events?name=mid_w&wait=true', nd(0, 100))).status).toBe(200);
      // Three uploads that send ~12 MiB (a staged import inserts 4 MiB pieces as they
      // arrive, so pieces are already in the engine) and then stall until the kill.
      const big = (n: number, kind: 'csv' | 'nd') => {
        const parts: string[] = [];
        let size = 0;
        for (let i = 0; size < 12 << 20; i++) { const l = kind === 'csv' ? `${100000 + n * 1000000 + i},${'x'.repeat(60)}\n` : `{"id":${100000 + n * 1000000 + i}}\n`; parts.push(l); size += l.length; }
        return Buffer.from(parts.join(''));
      };
      const stalled = (p: string, payload: Buffer) => {
        const stream = new ReadableStream({ start(c) { c.enqueue(payload); /* never closed */ } });
        return call(`${s1.url}${p}`, { method: 'POST', token: tok, body: stream, duplex: 'half' } as RequestInit).catch((e: Error) => e);
      };
      const ups = [
        stalled('/v0/datasources?name=mid_a&mode=append', big(1, 'csv')),
        stalled('/v0/datasources?name=mid_r&mode=replace', big(2, 'csv')),
        stalled('/v0/events?name=mid_w&wait=true', big(3, 'nd')),
      ];
      // Let the bodies reach the cell (and the staged pieces the engine).
      await new Promise((r) => setTimeout(r, 3000));
      await kill9(s1);
      for (const u of ups) expect(await u).toBeInstanceOf(Error); // never acknowledged
      // The killed imports left their stage tables (4 MiB pieces were in).
      expect(stageTablesOnDisk(s1).length).toBeGreaterThan(0);
      s2 = await startServer({ dataDir: s1.dataDir });
      expect(await sqlRows(s2, tok, 'SELECT count() AS c FROM mid_a')).toEqual([{ c: 100 }]);
      expect(await sqlRows(s2, tok, 'SELECT count() AS c FROM mid_r')).toEqual([{ c: 100 }]);
      expect(await sqlRows(s2, tok, 'SELECT count() AS c FROM mid_w')).toEqual([{ c: 100 }]);
      // No stage table shows as a data source (SQL cannot read system.tables). The stage tables of
      // the killed imports go at the cell's start (of no import of this process), not a day later.
      await expect.poll(() => stageTablesOnDisk(s2!), { timeout: 10_000 }).toEqual([]);
      // (Logged once the sweep's last drop has returned: a moment after its files are gone.)
      await expect.poll(() => s2!.logs.some((l) => l.msg === 'dropped stage tables of unfinished imports'), { timeout: 10_000 }).toBe(true);
      const list = await call(`${s2.url}/v0/datasources`, { token: tok });
      expect(list.status).toBe(200);
      expect((list.body.datasources as Array<{ name: string }>).map((d) => d.name).sort()).toEqual(['mid_a', 'mid_r', 'mid_w']);
      // The data sources still take uploads.
      expect((await call(`${s2.url}/v0/datasources?name=mid_r&mode=replace`, { method: 'POST', token: tok, body: csv(7, 3) })).status).toBe(200);
      expect(await sqlRows(s2, tok, 'SELECT count() AS c FROM mid_r')).toEqual([{ c: 3 }]);
    } finally {
      await s1.stop('SIGKILL');
      await s2?.stop();
    }
  });
});
