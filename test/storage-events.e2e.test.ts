/**
 * `storage_bytes` counts what a tenant's events the server keeps: events acknowledged (202) and
 * not yet in the engine (the events buffers on the server's disk), and events the engine refused
 * at flush time, which go to the data source's quarantine table. Without it, a data source whose
 * DEFAULT throws for every row filled the disk past the limit (as set-aside files then) while the
 * tenant's tables stayed empty. Real server, real engine, real HTTP.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { drained, segmentDir } from './helpers/events.js';

let srv: RunningServer;
let tok: string;

beforeAll(async () => {
  srv = await startServer();
  tok = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 60_000);
afterAll(async () => { await srv?.stop(); });

describe('storage_bytes and the events buffers', () => {
  it('events the engine refused count towards the limit (in quarantine): past it, ingest is refused with 413 STORAGE_LIMIT', async () => {
    const schema = encodeURIComponent("`id` UInt32 `json:$.id`, `d` UInt8 DEFAULT throwIf(id >= 0, 'refused') `json:$.d`, `pad` String `json:$.pad`");
    expect((await call(`${srv.url}/v0/datasources?name=refused&format=ndjson&schema=${schema}`, { method: 'POST', token: tok })).status).toBe(200);
    const limits = await call(`${srv.url}/v0/tenants/local`, { method: 'PATCH', token: srv.operatorToken, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ limits: { storage_bytes: 20_000 } }) });
    expect(limits.status, limits.text).toBe(200);
    // Random (incompressible) pads: ~20 KB a request, each taken (202) and refused by the engine at flush time.
    const events = (from: number) => Array.from({ length: 10 }, (_, i) => JSON.stringify({ id: from + i, pad: crypto.randomBytes(1000).toString('hex') })).join('\n') + '\n';
    let taken = 0;
    let last;
    for (let from = 0; from < 100; from += 10) {
      last = await call(`${srv.url}/v0/events?name=refused`, { method: 'POST', token: tok, body: events(from) });
      if (last.status !== 202) break;
      taken += 10;
      await drained(srv, 'refused', 30_000);
    }
    expect(last!.status, last!.text).toBe(413);
    expect(last!.body.code).toBe('STORAGE_LIMIT');
    expect(last!.body.used).toBeGreaterThanOrEqual(20_000);
    expect(taken).toBeGreaterThan(0);
    // Every acknowledged event is in the quarantine, none in the table, none left on the server's disk.
    const count = async (q: string) => Number((await call(`${srv.url}/v0/sql?q=${encodeURIComponent(`${q} FORMAT JSON`)}`, { token: tok })).body.data[0].n);
    expect(await count('SELECT count() AS n FROM refused')).toBe(0);
    expect(await count('SELECT count() AS n FROM refused_quarantine')).toBe(taken);
    expect(fs.readdirSync(segmentDir(srv, 'refused')).filter((f) => f.includes('.ndjson'))).toEqual([]);
  });
});
