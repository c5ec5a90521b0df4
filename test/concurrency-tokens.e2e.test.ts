/**
 * Concurrency audit: a token refreshed and deleted at the same time, against the real server.
 * Invariant: once the delete is answered, no secret of that token authenticates, also after a
 * new token of the same name is created.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('refresh and delete of one token at once', () => {
  it('leaves no secret of the deleted token that authenticates (as a later token of the same name)', async () => {
    const leaked: string[] = [];
    for (let round = 0; round < 15; round++) {
      const name = `tk_${round}`;
      const created = await call(`${srv.url}/v0/tokens?name=${name}&scope=DATASOURCES:CREATE`, { method: 'POST', token: admin });
      expect(created.status, created.text).toBe(200);
      const [ref, del] = await Promise.all([
        call(`${srv.url}/v0/tokens/${name}/refresh`, { method: 'POST', token: admin }),
        call(`${srv.url}/v0/tokens/${name}`, { method: 'DELETE', token: admin }),
      ]);
      expect(ref.status, ref.text).toBeLessThan(500);
      expect([204, 404]).toContain(del.status);
      const again = await call(`${srv.url}/v0/tokens?name=${name}&scope=DATASOURCES:CREATE`, { method: 'POST', token: admin });
      expect(again.status, again.text).toBe(200);
      for (const secret of [created.body.token, ref.status === 200 ? ref.body.token : undefined]) {
        if (!secret || del.status !== 204) continue;
        const r = await call(`${srv.url}/v0/datasources`, { token: secret });
        if (r.status !== 401) leaked.push(`${name}: ${r.status}`);
      }
    }
    expect(leaked).toEqual([]);
  }, 40_000);
});
