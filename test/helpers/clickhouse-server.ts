/**
 * Starts Debian's clickhouse-server (18.16) on free loopback ports with a
 * throwaway config and data directory. Missing binary: the suite is skipped
 * loudly on a developer machine and fails under CI=true.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './server.js';

export const CLICKHOUSE_BIN = ['/usr/bin/clickhouse-server', '/usr/sbin/clickhouse-server'].find((p) => fs.existsSync(p));

export function requireClickHouse(): boolean {
  if (CLICKHOUSE_BIN) return true;
  const msg = 'clickhouse-server is not installed (apt-get install clickhouse-server): remote-engine tests skipped';
  if (process.env.CI === 'true') throw new Error(`FAIL under CI: ${msg}`);
  console.warn(`\n!!! SKIPPED ${msg}\n`);
  return false;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RunningClickHouse {
  url: string;
  user: string;
  password: string;
  dir: string;
  /** Runs `sql` straight on the server as Roost's user (HTTP POST); its text, or an error naming the statement. */
  query(sql: string, settings?: Record<string, string | number>): Promise<string>;
  stop(): Promise<void>;
}

/**
 * `timezone`: the server's own time zone (config `<timezone>`; UTC unless said, whatever the machine's).
 * `logQueries`: every query's text goes to `system.query_log` (read it after `SYSTEM FLUSH LOGS`).
 */
export async function startClickHouse(opts: { timezone?: string; logQueries?: boolean } = {}): Promise<RunningClickHouse> {
  const dir = tempDir('roost-ch-');
  const http = await freePort();
  const tcp = await freePort();
  const user = 'roost';
  const password = 'test-password';
  const config = `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>${http}</http_port>
  <tcp_port>${tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <timezone>${opts.timezone ?? 'UTC'}</timezone>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <mark_cache_size>5368709</mark_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <users>
    <${user}><password>${password}</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></${user}>
  </users>
  <profiles><default>${opts.logQueries ? '<log_queries>1</log_queries>' : ''}</default></profiles>${opts.logQueries ? `
  <query_log><database>system</database><table>query_log</table><flush_interval_milliseconds>500</flush_interval_milliseconds></query_log>` : ''}
  <quotas><default></default></quotas>
</yandex>
`;
  fs.writeFileSync(path.join(dir, 'config.xml'), config);
  const proc: ChildProcess = spawn(CLICKHOUSE_BIN!, [`--config-file=${path.join(dir, 'config.xml')}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  const url = `http://127.0.0.1:${http}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/ping`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (proc.exitCode !== null) throw new Error(`clickhouse-server exited: ${stderr.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`clickhouse-server did not start: ${stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url, user, password, dir,
    async query(sql: string, settings: Record<string, string | number> = {}) {
      const params = new URLSearchParams({ user, password, ...Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, String(v)])) });
      const r = await fetch(`${url}/?${params}`, { method: 'POST', body: sql });
      const text = await r.text();
      if (!r.ok) throw new Error(`${sql}: ${text}`);
      return text;
    },
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
