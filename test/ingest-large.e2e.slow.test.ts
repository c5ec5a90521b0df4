/**
 * Slow suite: a 1 GiB CSV generated on the fly and uploaded as one streaming
 * request. Every row must be stored, and the server must not hold the upload in
 * memory (peak RSS well under the upload size).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import { call, startServer, type RunningServer } from './helpers/server.js';

const TOTAL = 1024 * 1024 * 1024;
let srv: RunningServer;
let token: string;

beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => { await srv?.stop(); });

function rss(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
  } catch {
    return 0;
  }
}

describe('a 1 GiB CSV in one streaming request', () => {
  it('stores every row with bounded server memory', async () => {
    const schema = encodeURIComponent('id UInt64, name String, amount Float64, day Date');
    expect((await call(`${srv.url}/v0/datasources?name=big&schema=${schema}`, { method: 'POST', token })).status).toBe(200);
    let peak = 0;
    const poll = setInterval(() => { peak = Math.max(peak, rss(srv.proc.pid!)); }, 50);
    let id = 0;
    let sent = 0;
    let idSum = 0n;
    const result = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = http.request(`${srv.url}/v0/datasources?name=big&mode=append`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'text/csv' } }, (res) => {
        let t = '';
        res.on('data', (c) => (t += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(t) }));
      });
      req.on('error', reject);
      const writeMore = () => {
        while (sent < TOTAL) {
          let chunk = '';
          for (let i = 0; i < 20000; i++, id++) {
            chunk += `${id},"name ${id % 1000}, quoted",${(id % 977) * 0.5},2024-0${1 + (id % 9)}-1${id % 10}\n`;
            idSum += BigInt(id);
          }
          sent += chunk.length;
          if (!req.write(chunk)) { req.once('drain', writeMore); return; }
        }
        req.end();
      };
      writeMore();
    });
    clearInterval(poll);
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    expect(result.body.rows).toBe(id);
    expect(result.body.quarantine_rows).toBe(0);
    const q = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS c, toString(sum(id)) AS s FROM big FORMAT JSONEachRow')}`, { token });
    expect(JSON.parse(q.text)).toEqual({ c: id, s: idSum.toString() });
    // The upload never sits whole in the server's memory.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(600 * 1024 * 1024);
    console.log(`1 GiB upload: ${id} rows; server peak RSS ${(peak / 1048576).toFixed(0)} MiB`);
  }, 300_000);
});
