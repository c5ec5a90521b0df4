/**
 * A full disk under control-plane writes: a journal append that could not be written
 * whole must not be acknowledged, and must not take acknowledged writes with it.
 * The server runs under `ulimit -f` (a write past the limit is cut short, the next
 * one fails with EFBIG, as on a full disk); then it is killed and started again
 * without the limit.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { call, startServer, type RunningServer } from './helpers/server.js';

const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

describe('control-plane writes on a full disk', () => {
  it('every write answered 200 before and after the disk filled up is there after kill -9 and restart', async () => {
    const s1 = await startServer({ fileSizeLimitKiB: 256 });
    let s2: RunningServer | undefined;
    try {
      const admin = (await call(`${s1.url}/tokens`)).body.workspace_admin_token as string;
      const journal = path.join(s1.dataDir, 'state', 'journal.log');
      const acked: string[] = [];
      let refused = 0;
      // Pipes of ~20 KB each fill the journal up to the limit; then small ones may still fit.
      for (let i = 0; i < 40 && refused < 3; i++) {
        const pad = i < 20 || refused === 0 ? 20_000 : 100;
        const name = `fill_${i}`;
        const r = await call(`${s1.url}/v0/pipes`, { method: 'POST', token: admin, ...json({ name, nodes: [{ name: 'n', sql: `SELECT ${i} AS v /* ${'x'.repeat(pad)} */`, type: 'endpoint' }] }) });
        if (r.status === 200) acked.push(name);
        else { expect(r.status, r.text).toBe(507); expect(r.body.code).toBe('INSUFFICIENT_STORAGE'); refused++; }
      }
      expect(refused, `journal ${fs.statSync(journal).size} bytes`).toBeGreaterThan(0);
      expect(acked.length).toBeGreaterThan(5);
      process.kill(s1.proc.pid!, 'SIGKILL');
      await s1.exited;
      s2 = await startServer({ dataDir: s1.dataDir });
      const list = await call(`${s2.url}/v0/pipes`, { token: admin });
      expect(list.status).toBe(200);
      const have = new Set((list.body.pipes as Array<{ name: string }>).map((p) => p.name));
      expect(acked.filter((n) => !have.has(n)), 'acknowledged pipes lost').toEqual([]);
      // Nothing that was refused shows up either.
      expect([...have].filter((n) => n.startsWith('fill_') && !acked.includes(n)), 'refused pipes present').toEqual([]);
    } finally {
      await s1.stop('SIGKILL');
      await s2?.stop();
    }
  });
});

describe('events on a full disk', () => {
  it('an events body the buffer could not store whole is not answered 202', async () => {
    const s1 = await startServer({ fileSizeLimitKiB: 256 });
    let s2: RunningServer | undefined;
    try {
      const admin = (await call(`${s1.url}/tokens`)).body.workspace_admin_token as string;
      const schema = encodeURIComponent('`id` UInt32 `json:$.id`');
      expect((await call(`${s1.url}/v0/datasources?name=full_ev&format=ndjson&schema=${schema}`, { method: 'POST', token: admin })).status).toBe(200);
      // One body a few bytes over the file size limit: its segment cannot be written whole,
      // and the write that crosses the limit (the last one) is cut short without an error.
      const lines: string[] = [];
      let size = 0;
      for (let i = 0; size <= 256 * 1024; i++) { const l = JSON.stringify({ id: i }) + '\n'; lines.push(l); size += l.length; }
      const n = lines.length;
      const body = lines.join('');
      expect(body.length - 256 * 1024).toBeLessThan(20);
      const r = await call(`${s1.url}/v0/events?name=full_ev`, { method: 'POST', token: admin, body });
      process.kill(s1.proc.pid!, 'SIGKILL');
      await s1.exited;
      s2 = await startServer({ dataDir: s1.dataDir });
      if (r.status === 202) {
        // Acknowledged: every event must arrive.
        const q = `${s2.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS c, uniqExact(id) AS u FROM full_ev FORMAT JSONEachRow')}`;
        const deadline = Date.now() + 15_000;
        let got = { c: 0, u: 0 };
        while (Date.now() < deadline && got.c < n) {
          got = JSON.parse((await call(q, { token: admin })).text);
          if (got.c < n) await new Promise((res) => setTimeout(res, 200));
        }
        expect(got).toEqual({ c: n, u: n });
      } else {
        // Not stored whole, so not acknowledged: 507 says why.
        expect(r.status, r.text).toBe(507);
        expect(r.body).toMatchObject({ code: 'INSUFFICIENT_STORAGE', retryable: true });
      }
    } finally {
      await s1.stop('SIGKILL');
      await s2?.stop();
    }
  });
});

describe('a full disk at start', () => {
  it('the server stops with a message naming the state journal (no half-started server)', async () => {
    const env = { ROOST_OPERATOR_TOKEN: 'o'.repeat(40), ROOST_SECRET_KEY: 'ab'.repeat(32) };
    const err = await startServer({ fileSizeLimitKiB: 0, env }).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).toMatch(/exited with 1 before listening/);
    expect(err!.message).toMatch(/cannot write the state journal \S+journal\.log: EFBIG/);
  });
});
