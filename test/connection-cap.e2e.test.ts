/**
 * One client address may hold at most --max-connections-per-client connections: stalled requests
 * from one address (a partial request line, then nothing) filled the server's open-files limit
 * and every tenant's requests failed to connect. Past the cap a connection is answered 429 at
 * once and closed; closing some lets the client in again. Real server, real sockets.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { call, startServer } from './helpers/server.js';

const open = (port: number): Promise<net.Socket> => new Promise((resolve, reject) => {
  const s = net.connect(port, '127.0.0.1', () => resolve(s));
  s.on('error', reject);
});

/** Everything the server sends on `s` until it closes it (or `ms` pass). */
const readAll = (s: net.Socket, ms: number): Promise<string> => new Promise((resolve) => {
  let out = '';
  s.on('data', (b) => { out += b.toString(); });
  s.on('close', () => resolve(out));
  setTimeout(() => resolve(out), ms);
});

describe('connections per client address', () => {
  it('past the cap a connection is answered 429 and closed; the held ones keep working; closing some lets the client in again', async () => {
    const srv = await startServer({ args: ['--max-connections-per-client', '20'] });
    const held: net.Socket[] = [];
    try {
      const port = Number(new URL(srv.url).port);
      // Twenty stalled requests: a request line, no end of headers.
      for (let i = 0; i < 20; i++) {
        const s = await open(port);
        s.write('GET /v0/health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
        held.push(s);
      }
      const extra = await open(port);
      extra.write('GET /v0/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      const answer = await readAll(extra, 5_000);
      expect(answer).toMatch(/^HTTP\/1\.1 429 Too Many Requests\r\n/);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'RATE_LIMITED' });
      expect(extra.destroyed || extra.readableEnded).toBe(true);
      // A held connection still gets its answer when its request completes.
      const first = held[0]!;
      const got = readAll(first, 3_000);
      first.write('\r\n');
      expect(await got).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*"status":"ok"/);
      // Closing connections frees their places.
      for (const s of held.splice(0, 5)) s.destroy();
      await new Promise((r) => setTimeout(r, 200));
      expect((await call(`${srv.url}/v0/health`)).status).toBe(200);
      expect(srv.logs.some((l) => l.msg === 'connections refused: a client address holds too many')).toBe(true);
    } finally {
      for (const s of held) s.destroy();
      await srv.stop();
    }
  });

  it('all connections stay below the open-files limit, one address at most half of them', async () => {
    const { connectionLimits } = await import('../src/http/server.js');
    expect(connectionLimits(20_000, 1024)).toEqual({ total: 18_976, perClient: 1024 });
    // A limit of 1024 (many systems' default): three quarters, half of those for one address.
    expect(connectionLimits(1024, 1024)).toEqual({ total: 768, perClient: 384 });
    expect(connectionLimits(1024, 20)).toEqual({ total: 768, perClient: 20 });
    expect(connectionLimits(undefined, 1024)).toEqual({ perClient: 1024 });
  });

  it('the setting is checked at start', async () => {
    const { loadConfig } = await import('../src/config.js');
    expect(loadConfig([], {}).maxConnectionsPerClient).toBe(1024);
    expect(() => loadConfig(['--max-connections-per-client', '0'], {})).toThrow(/max-connections-per-client/);
  });
});
