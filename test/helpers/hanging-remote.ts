/**
 * A server with tenant `hang` (workspace `main`) placed on a remote ClickHouse that accepts
 * connections and never answers: a real TCP listener on loopback. For the tests of what the
 * service log does while a tenant's engine hangs.
 */
import net from 'node:net';
import { expect } from 'vitest';
import { call, startServer, type RunningServer } from './server.js';

export interface HangingTenant {
  srv: RunningServer;
  /** The `hang/main` workspace's admin token. */
  token: string;
  /** Stops the server, then the listener and the connections it holds. */
  stop(): Promise<void>;
}

export async function startWithHangingTenant(env: Record<string, string>): Promise<HangingTenant> {
  const sockets: net.Socket[] = [];
  const hang = net.createServer((s) => { sockets.push(s); s.on('error', () => {}); });
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  const port = (hang.address() as net.AddressInfo).port;
  const srv = await startServer({ env });
  const op = srv.operatorToken;
  const t = await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, body: JSON.stringify({ slug: 'hang' }) });
  expect(t.status, t.text).toBe(201);
  const ws = await call(`${srv.url}/v0/tenants/hang/workspaces`, { method: 'POST', token: op, body: JSON.stringify({ name: 'main' }) });
  expect(ws.status, ws.text).toBe(201);
  const p = await call(`${srv.url}/v0/tenants/hang`, { method: 'PATCH', token: op, body: JSON.stringify({ placement: { type: 'clickhouse', url: `http://127.0.0.1:${port}` } }) });
  expect(p.status, p.text).toBe(200);
  return {
    srv,
    token: ws.body.token,
    async stop() {
      await srv.stop();
      for (const s of sockets) s.destroy();
      await new Promise((r) => hang.close(r));
    },
  };
}
