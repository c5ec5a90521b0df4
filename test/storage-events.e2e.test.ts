/**
 * `storage_bytes` counts what a tenant's events buffers hold on the server's disk: events
 * acknowledged (202) and not yet in the engine, and events the engine refused, set aside as
 * `.rejected` files. Without it, a data source whose DEFAULT throws for every row filled the disk
 * past the limit while the tenant's tables stayed empty. Real server, real engine, real HTTP.
 */
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
  it('events the engine set aside count towards the limit: past it, ingest is refused with 413 STORAGE_LIMIT', async () => {
    const schema = encodeURIComponent("`id` UInt32 `json:$.id`, `d` UInt8 DEFAULT throwIf(id >= 0, 'refused') `json:$.d`, `pad` String `json:$.pad`");
    expect((await call(`${srv.url}/v0/datasources?name=refused&format=ndjson&schema=${schema}`, { method: 'POST', token: tok })).status).toBe(200);
    const limits = await call(`${srv.url}/v0/tenants/local`, { method: 'PATCH', token: srv.operatorToken, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ limits: { storage_bytes: 20_000 } }) });
    expect(limits.status, limits.text).toBe(200);
    const events = (from: number) => Array.from({ length: 10 }, (_, i) => JSON.stringify({ id: from + i, pad: 'x'.repeat(1000) })).join('\n') + '\n';
    // ~10 KB a request: each is taken (202), and each is refused by the engine at flush time.
    for (const from of [0, 10, 20]) {
      const r = await call(`${srv.url}/v0/events?name=refused`, { method: 'POST', token: tok, body: events(from) });
      expect(r.status, r.text).toBe(202);
      await drained(srv, 'refused', 30_000);
      if (fs.readdirSync(segmentDir(srv, 'refused')).filter((f) => f.endsWith('.rejected')).length * 10_000 >= 20_000) break;
    }
    expect(fs.readdirSync(segmentDir(srv, 'refused')).filter((f) => f.endsWith('.rejected')).length).toBeGreaterThanOrEqual(2);
    // The tables are empty, yet the tenant's data on this machine is past its limit (the usage is
    // cached for 2 s).
    await new Promise((r) => setTimeout(r, 2_100));
    const refused = await call(`${srv.url}/v0/events?name=refused`, { method: 'POST', token: tok, body: events(100) });
    expect(refused.status, refused.text).toBe(413);
    expect(refused.body.code).toBe('STORAGE_LIMIT');
    expect(refused.body.used).toBeGreaterThanOrEqual(20_000);
  });
});
