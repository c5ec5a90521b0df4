/**
 * One server per data directory: a second server started on a directory a live server uses
 * refuses to start (exit 1, one line saying which process holds it) and touches nothing of the
 * first's (its buffered events, spools, engines); once the first is gone, killed -9 included,
 * the directory is free. Real servers, real HTTP.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { call, startServer, tempDir, type RunningServer } from './helpers/server.js';

const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const servers: RunningServer[] = [];
afterAll(async () => { for (const s of servers) await s.stop('SIGKILL').catch(() => undefined); });

/** Starts a server expected to refuse to start: its failure's text (stderr included), or undefined when it started after all. */
const startRefused = (opts: Parameters<typeof startServer>[0]) => startServer(opts).then(
  (s) => { servers.push(s); return undefined; },
  (e: Error) => e.message,
);

describe('the data directory lock', () => {
  it('refuses a second server on the same directory, and is free again after a kill -9', async () => {
    const dataDir = tempDir('roost-lock-');
    // Events are held in the first server's buffer (flushed every 10 min unless asked).
    const a = await startServer({ dataDir, dev: false, args: ['--events-flush', '600000'] });
    servers.push(a);
    expect((await call(`${a.url}/v0/tenants`, { method: 'POST', token: a.operatorToken, ...json({ slug: 'lk' }) })).status).toBe(201);
    const tok = (await call(`${a.url}/v0/tenants/lk/workspaces`, { method: 'POST', token: a.operatorToken, ...json({ name: 'w' }) })).body.token;
    expect((await call(`${a.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent('id UInt32 `json:$.id`')}`, { method: 'POST', token: tok })).status).toBe(200);
    const sent = await call(`${a.url}/v0/events?name=ev`, { method: 'POST', token: tok, body: '{"id":1}\n{"id":2}\n' });
    expect(sent.status, sent.text).toBe(202);

    const second = await startRefused({ dataDir, dev: false });
    expect(second, 'a second server started on a directory in use').toBeDefined();
    expect(second).toMatch(/exited with 1 before listening/);
    expect(second).toMatch(new RegExp(`roost: the data directory .* is in use by another Roost server \\(pid ${a.proc.pid}\\)`));

    // The first one is untouched: its buffered events are stored once, where they were sent.
    const count = async (s: RunningServer) => {
      const r = await call(`${s.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS n, uniqExact(id) AS u FROM ev FORMAT JSON')}`, { token: tok });
      expect(r.status, r.text).toBe(200);
      return r.body.data[0];
    };
    await a.stop('SIGKILL');
    // Free once the holder is gone (kill -9): the next server recovers the acknowledged events.
    const b = await startServer({ dataDir, dev: false });
    servers.push(b);
    let seen: any;
    for (let i = 0; i < 100; i++) {
      seen = await count(b);
      if (Number(seen.n) >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toMatchObject({ n: 2, u: 2 });
  }, 120_000);

  it('a server whose port is taken exits 1 with one line, its cell stopped; the directory then serves another', async () => {
    const dataDir = tempDir('roost-port-');
    const first = await startServer({ dataDir });  // its tenant's cell started (the dev seed)
    const port = first.port;
    await first.stop();
    const net = await import('node:net');
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      const t0 = Date.now();
      const failed = await startRefused({ dataDir, args: ['--port', String(port)] });
      expect(failed, 'a server started on a taken port').toBeDefined();
      expect(failed).toMatch(/exited with 1 before listening/);
      expect(failed).toMatch(new RegExp(`roost: 127\\.0\\.0\\.1 port ${port} is in use by another program \\(EADDRINUSE\\)`));
      expect(failed).not.toMatch(/\n\s+at /);  // no stack trace
      expect(Date.now() - t0).toBeLessThan(30_000);
    } finally {
      blocker.close();
    }
    // Its cell went with it: the next server on the directory has the lock and the engine.
    const next = await startServer({ dataDir });
    servers.push(next);
    const tok = (await call(`${next.url}/tokens`)).body.workspace_admin_token;
    const r = await call(`${next.url}/v0/sql?q=${encodeURIComponent('SELECT 1 AS one FORMAT JSON')}`, { token: tok });
    expect(r.status, r.text).toBe(200);
    expect(r.body.data).toEqual([{ one: 1 }]);
  }, 120_000);

  it('a state journal damaged in its middle stops the start with one line (it was cut there: a deleted tenant and its token came back)', async () => {
    const dataDir = tempDir('roost-journal-');
    const first = await startServer({ dataDir, dev: false });
    for (let i = 0; i < 8; i++) {
      expect((await call(`${first.url}/v0/tenants`, { method: 'POST', token: first.operatorToken, ...json({ slug: `pad${i}` }) })).status).toBe(201);
    }
    expect((await call(`${first.url}/v0/tenants/pad2`, { method: 'DELETE', token: first.operatorToken })).status).toBe(200);
    await first.stop();
    const fs = await import('node:fs');
    const path = await import('node:path');
    const file = path.join(dataDir, 'state', 'journal.log');
    const buf = fs.readFileSync(file);
    const at = buf.indexOf(Buffer.from('pad4'));
    buf[at + 1] ^= 0x01;
    fs.writeFileSync(file, buf);
    const failed = await startRefused({ dataDir, dev: false });
    expect(failed, 'a server started on a damaged journal').toBeDefined();
    expect(failed).toMatch(/exited with 1 before listening/);
    expect(failed).toMatch(/roost: the state journal .* is damaged at byte \d+/);
    expect(failed).not.toMatch(/\n\s+at /);
    expect(fs.readFileSync(file)).toEqual(buf);
  }, 120_000);

  it("a data directory whose path holds an apostrophe takes uploads and file-format results (the engine's file statements quoted it raw: a 422 quoting the path)", async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const dataDir = path.join(tempDir('roost-quote-'), "o'brien dir");
    fs.mkdirSync(dataDir);
    const srv = await startServer({ dataDir });
    servers.push(srv);
    const tok = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
    expect((await call(`${srv.url}/v0/datasources?name=q&schema=${encodeURIComponent('id Int32, s String')}`, { method: 'POST', token: tok })).status).toBe(200);
    const up = await call(`${srv.url}/v0/datasources?name=q&mode=append`, { method: 'POST', token: tok, body: '1,a\n2,b\n', headers: { 'Content-Type': 'text/csv' } });
    expect(up.status, up.text).toBe(200);
    expect(up.text).not.toContain('brien');
    const ev = await call(`${srv.url}/v0/events?name=q&wait=true`, { method: 'POST', token: tok, body: '{"id":3,"s":"c"}\n' });
    expect(ev.status, ev.text).toBe(200);
    const pq = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT * FROM q ORDER BY id FORMAT Parquet')}`, { token: tok });
    expect(pq.status, pq.text.slice(0, 300)).toBe(200);
    const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() AS c FROM q FORMAT JSON')}`, { token: tok });
    expect(r.body.data).toEqual([{ c: 3 }]);
  }, 120_000);

  it('a data directory started without the secret key it was sealed with does not start (a new key was made, and what was sealed unreadable, silently)', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const dataDir = tempDir('roost-key-');
    const key = 'cd'.repeat(32);
    const first = await startServer({ dataDir, env: { ROOST_SECRET_KEY: key } });
    await first.stop();
    const without = await startRefused({ dataDir });
    expect(without).toMatch(/exited with 1 before listening/);
    expect(without).toMatch(/roost: the data directory .* was sealed with another secret key/);
    expect(without).not.toMatch(/\n\s+at /);
    expect(fs.existsSync(path.join(dataDir, 'secret-key'))).toBe(false);  // no stray new key left
    const wrong = await startRefused({ dataDir, env: { ROOST_SECRET_KEY: 'ef'.repeat(32) } });
    expect(wrong).toMatch(/sealed with another secret key/);
    const again = await startServer({ dataDir, env: { ROOST_SECRET_KEY: key } });
    servers.push(again);
    expect((await call(`${again.url}/tokens`)).status).toBe(200);
    await again.stop();
    // A key file that is not a key: one line too.
    const other = tempDir('roost-keyfile-');
    fs.writeFileSync(path.join(other, 'secret-key'), 'not a key\n');
    const bad = await startRefused({ dataDir: other });
    expect(bad).toMatch(/roost: .*secret-key is not a 64-hex-character key/);
    expect(bad).not.toMatch(/\n\s+at /);
    // An operator token file too short, or empty: one line (an empty one started a server no operator could reach).
    for (const content of ['short\n', '']) {
      const d = tempDir('roost-optoken-');
      fs.writeFileSync(path.join(d, 'operator-token'), content);
      const op = await startRefused({ dataDir: d, dev: false });
      expect(op).toMatch(/roost: .*operator-token holds (a token of 5 characters|no token); an operator token has at least 32/);
    }
  }, 120_000);

  it('a second server is refused even when roost.lock was removed while the first runs (it made a new lock file and ran beside the first)', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const dataDir = tempDir('roost-unlinked-');
    const a = await startServer({ dataDir, dev: false });
    servers.push(a);
    fs.rmSync(path.join(dataDir, 'roost.lock'));
    const second = await startRefused({ dataDir, dev: false });
    expect(second, 'a second server started beside the first').toBeDefined();
    expect(second).toMatch(/roost: the data directory .* is in use by another Roost server \(its roost\.lock was removed/);
    // The first goes on; once it is gone the directory is free.
    expect((await call(`${a.url}/v0/health`)).status).toBe(200);
    await a.stop();
    const b = await startServer({ dataDir, dev: false });
    servers.push(b);
    expect((await call(`${b.url}/v0/health`)).status).toBe(200);
  }, 120_000);
});
