/**
 * "A crash (kill -9) never loses what was acknowledged" for control-plane state:
 * data sources, pipes, tokens, tenants and workspaces answered 200/201 exist after a
 * kill -9 and restart; a journal torn at the end does not stop the server.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { call, startServer, type RunningServer } from './helpers/server.js';

const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const csvSchema = encodeURIComponent('id Int32, txt String');

async function kill9(s: RunningServer): Promise<void> {
  process.kill(s.proc.pid!, 'SIGKILL');
  await s.exited;
}

/** Creates a data source with rows, a published pipe, a read token for it, a tenant and a workspace. */
async function createObjects(s: RunningServer, admin: string, tag: string): Promise<{ pipeToken: string }> {
  const post = (p: string, init: RequestInit = {}) => call(`${s.url}${p}`, { method: 'POST', token: admin, ...init });
  expect((await post(`/v0/datasources?name=ds_${tag}&schema=${csvSchema}`)).status).toBe(200);
  expect((await post(`/v0/datasources?name=ds_${tag}&mode=append`, { body: '1,a\n2,b\n3,c\n' })).status).toBe(200);
  const pipe = await post('/v0/pipes', json({ name: `p_${tag}`, nodes: [{ name: 'n', sql: `SELECT count() AS c FROM ds_${tag}`, type: 'endpoint' }] }));
  expect(pipe.status, pipe.text).toBe(200);
  const tok = await post(`/v0/tokens?name=t_${tag}&scope=PIPES:READ:p_${tag}`);
  expect(tok.status, tok.text).toBe(200);
  const ten = await call(`${s.url}/v0/tenants`, { method: 'POST', token: s.operatorToken, ...json({ slug: `ten${tag}`, name: `T ${tag}` }) });
  expect(ten.status, ten.text).toBe(201);
  const ws = await call(`${s.url}/v0/tenants/local/workspaces`, { method: 'POST', token: s.operatorToken, ...json({ name: `ws_${tag}` }) });
  expect(ws.status, ws.text).toBeLessThan(300);
  return { pipeToken: tok.body.token as string };
}

async function checkObjects(s: RunningServer, admin: string, tag: string, pipeToken: string): Promise<void> {
  const ds = await call(`${s.url}/v0/datasources/ds_${tag}`, { token: admin });
  expect(ds.status, ds.text).toBe(200);
  // The endpoint answers with the token made for it.
  const ep = await call(`${s.url}/v0/pipes/p_${tag}.json`, { token: pipeToken });
  expect(ep.status, ep.text).toBe(200);
  expect(ep.body.data).toEqual([{ c: 3 }]);
  expect((await call(`${s.url}/v0/tokens/t_${tag}`, { token: admin })).status).toBe(200);
  expect((await call(`${s.url}/v0/tenants/ten${tag}`, { token: s.operatorToken })).status).toBe(200);
  const wss = await call(`${s.url}/v0/tenants/local/workspaces`, { token: s.operatorToken });
  expect(wss.status, wss.text).toBe(200);
  expect((wss.body.workspaces as Array<{ name: string }>).map((w) => w.name)).toContain(`ws_${tag}`);
}

describe('control-plane state after kill -9', () => {
  it('objects answered 200 exist after a kill right after the answer; their endpoints and tokens work', async () => {
    const s1 = await startServer();
    let s2: RunningServer | undefined;
    try {
      const admin = (await call(`${s1.url}/tokens`)).body.workspace_admin_token as string;
      const { pipeToken } = await createObjects(s1, admin, 'a');
      await kill9(s1);
      s2 = await startServer({ dataDir: s1.dataDir });
      await checkObjects(s2, admin, 'a', pipeToken);
      // The development tokens are the same ones.
      expect((await call(`${s2.url}/tokens`)).body.workspace_admin_token).toBe(admin);
    } finally {
      await s1.stop('SIGKILL');
      await s2?.stop();
    }
  });

  for (const [what, tear] of [
    ['a record cut inside its body', (buf: Buffer) => buf.subarray(0, buf.length - 5)],
    ['only part of a record header', (buf: Buffer) => buf.subarray(0, 3)],
    ['a whole-length record whose checksum does not match', (buf: Buffer) => { const b = Buffer.from(buf); b[b.length - 2] ^= 0xff; return b; }],
  ] as Array<[string, (b: Buffer) => Buffer]>) {
    it(`a torn last journal record (${what}) is dropped at start, the server starts, and later writes stay`, async () => {
      const s1 = await startServer();
      let s2: RunningServer | undefined;
      let s3: RunningServer | undefined;
      try {
        const admin = (await call(`${s1.url}/tokens`)).body.workspace_admin_token as string;
        const { pipeToken } = await createObjects(s1, admin, 'b');
        await kill9(s1);
        // What a crash in the middle of the next append leaves: part of one more record.
        const body = Buffer.from(JSON.stringify({ seq: 1e9, ops: [{ op: 'put', path: ['torn'], value: 'x'.repeat(200) }] }));
        const rec = Buffer.alloc(8 + body.length);
        rec.writeUInt32LE(body.length, 0);
        rec.writeUInt32LE(zlib.crc32(body), 4);
        body.copy(rec, 8);
        const journal = path.join(s1.dataDir, 'state', 'journal.log');
        fs.appendFileSync(journal, tear(rec));
        s2 = await startServer({ dataDir: s1.dataDir });
        expect(s2.logs.some((l) => l.msg === 'state recovered' && /cut \d+ bytes of a torn journal tail/.test(String(l.note)))).toBe(true);
        await checkObjects(s2, admin, 'b', pipeToken);
        // Writes after the recovery land after the last whole record and survive the next crash.
        const more = await createObjects(s2, admin, 'c');
        await kill9(s2);
        s3 = await startServer({ dataDir: s1.dataDir });
        expect(s3.logs.some((l) => l.msg === 'state recovered')).toBe(false);
        await checkObjects(s3, admin, 'b', pipeToken);
        await checkObjects(s3, admin, 'c', more.pipeToken);
      } finally {
        await s1.stop('SIGKILL');
        await s2?.stop('SIGKILL');
        await s3?.stop();
      }
    });
  }
});
