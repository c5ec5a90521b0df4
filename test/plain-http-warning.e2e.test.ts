/**
 * Placements made before plain http across the network needed the operator's choice keep
 * working, and the server says at each start which tenant sends its password and data in clear
 * to which host. Such a placement cannot be made through the API any more, so the test writes
 * one into the state journal as an older server would have left it (a record with its length and
 * CRC-32), then starts a real server on that data directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { call, startServer } from './helpers/server.js';

/** The highest record number in the state directory (snapshot and journal). */
function lastSeq(stateDir: string): number {
  let seq = 0;
  try { seq = (JSON.parse(fs.readFileSync(path.join(stateDir, 'snapshot.json'), 'utf8')) as { seq: number }).seq; } catch { /* none */ }
  const data = fs.existsSync(path.join(stateDir, 'journal.log')) ? fs.readFileSync(path.join(stateDir, 'journal.log')) : Buffer.alloc(0);
  for (let pos = 0; pos + 8 <= data.length;) {
    const len = data.readUInt32LE(pos);
    seq = Math.max(seq, (JSON.parse(data.subarray(pos + 8, pos + 8 + len).toString('utf8')) as { seq: number }).seq);
    pos += 8 + len;
  }
  return seq;
}

describe('a placement on plain http made before the rule', () => {
  it('keeps working and is warned about at start; https, loopback and the explicit choice are not', async () => {
    const s1 = await startServer({ dev: false });
    const op = s1.operatorToken;
    const create = (slug: string, placement: unknown) => call(`${s1.url}/v0/tenants`, { method: 'POST', token: op, body: JSON.stringify({ slug, placement }) });
    expect((await create('legacy', { type: 'clickhouse', url: 'http://ch.legacy.internal:8123', user: 'roost', password: 'pw', allow_plain_http: true })).status).toBe(201);
    expect((await create('chosen', { type: 'clickhouse', url: 'http://ch.chosen.internal:8123', allow_plain_http: true })).status).toBe(201);
    expect((await create('tls', { type: 'clickhouse', url: 'https://ch.tls.internal:8443' })).status).toBe(201);
    expect((await create('local', { type: 'clickhouse', url: 'http://127.0.0.1:8123' })).status).toBe(201);
    // No warning for these at this start.
    expect(s1.logs.filter((l) => String(l.msg).includes('plain http across the network'))).toEqual([]);
    const legacy = (await call(`${s1.url}/v0/tenants/legacy`, { token: op })).body;
    expect(legacy.placement.allow_plain_http).toBe(true);
    await s1.stop();

    // What an older server stored: the same placement without the choice.
    const stateDir = path.join(s1.dataDir, 'state');
    const snapshot = fs.existsSync(path.join(stateDir, 'snapshot.json')) ? JSON.parse(fs.readFileSync(path.join(stateDir, 'snapshot.json'), 'utf8')) as { doc: Record<string, any> } : { doc: {} };
    let tenant = snapshot.doc.tenants?.legacy as Record<string, any> | undefined;
    const journal = path.join(stateDir, 'journal.log');
    const data = fs.existsSync(journal) ? fs.readFileSync(journal) : Buffer.alloc(0);
    for (let pos = 0; pos + 8 <= data.length;) {
      const len = data.readUInt32LE(pos);
      const rec = JSON.parse(data.subarray(pos + 8, pos + 8 + len).toString('utf8')) as { ops: Array<{ op: string; path: string[]; value?: any }> };
      for (const o of rec.ops) if (o.op === 'put' && o.path.join('/') === 'tenants/legacy') tenant = o.value;
      pos += 8 + len;
    }
    expect(tenant?.placement?.allow_plain_http).toBe(true);
    const { allow_plain_http: _, ...older } = tenant!.placement;
    const body = Buffer.from(JSON.stringify({ seq: lastSeq(stateDir) + 1, ops: [{ op: 'put', path: ['tenants', 'legacy'], value: { ...tenant, placement: older } }] }));
    const head = Buffer.alloc(8);
    head.writeUInt32LE(body.length, 0);
    head.writeUInt32LE(zlib.crc32(body), 4);
    fs.appendFileSync(journal, Buffer.concat([head, body]));

    const s2 = await startServer({ dev: false, dataDir: s1.dataDir });
    try {
      const warned = s2.logs.filter((l) => String(l.msg).includes('plain http across the network'));
      expect(warned.map((l) => [l.level, l.tenant, l.host])).toEqual([['warn', 'legacy', 'ch.legacy.internal']]);
      expect(String(warned[0]!.fix)).toContain('allow_plain_http');
      // It keeps its placement (and password) as it was: nothing was refused or rewritten.
      expect((await call(`${s2.url}/v0/tenants/legacy`, { token: s2.operatorToken })).body.placement).toEqual({ type: 'clickhouse', url: 'http://ch.legacy.internal:8123', user: 'roost', password_set: true });
    } finally {
      await s2.stop();
    }
  }, 90_000);
});
