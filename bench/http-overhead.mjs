// bench/http-overhead: what Roost's HTTP layer costs a request without the engine: server CPU a
// request of `GET /v0/health` (routing, request log, metrics) and of `GET /v0/pipes` (the same plus
// a bearer token's authentication and a small JSON answer), against a bare node:http server that
// answers `{"status":"ok"}`, each saturated by wrk (2 threads, 8 connections, loopback). Where an
// endpoint call costs more than these, the cost is in its own path (the pipe, the query, the
// frames to and from the cell, the result), not in the HTTP layer.
// Usage: npx tsc -p tsconfig.json && node bench/http-overhead.mjs [--rounds 3] [--seconds 5]
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuMs, freePort, median } from './proc.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : def; };
const rounds = arg('rounds', 3);
const seconds = arg('seconds', 5);
const WRK = process.env.WRK ?? '/usr/bin/wrk';
if (!fs.existsSync(WRK)) { console.error(`wrk not found at ${WRK} (apt-get install wrk, or set WRK=)`); process.exit(2); }


const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-bench-http-'));
const [roostPort, barePort] = [await freePort(), await freePort()];
const roost = spawn(process.execPath, [path.join(root, 'bin/roost.js'), 'serve', '--dev', '--port', String(roostPort), '--data', dir], {
  cwd: root, env: { ...process.env, ROOST_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'],
});
const bare = spawn(process.execPath, ['-e', `require('node:http').createServer((q, r) => {
  const b = '{"status":"ok"}';
  r.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': b.length });
  r.end(b);
}).listen(${barePort}, '127.0.0.1')`], { stdio: 'ignore' });
const stop = () => { for (const p of [roost, bare]) if (p.exitCode === null) p.kill('SIGTERM'); };
process.on('exit', stop);
const base = `http://127.0.0.1:${roostPort}`;
for (let i = 0; ; i++) {
  try { if ((await fetch(`${base}/v0/health`)).ok && (await fetch(`http://127.0.0.1:${barePort}/`)).ok) break; } catch { /* not yet */ }
  if (i > 300) throw new Error('servers did not start');
  await new Promise((r) => setTimeout(r, 100));
}
const token = (await (await fetch(`${base}/tokens`)).json()).workspace_admin_token;

const SIDES = {
  'bare node:http': { pid: bare.pid, url: `http://127.0.0.1:${barePort}/` },
  'Roost GET /v0/health': { pid: roost.pid, url: `${base}/v0/health` },
  'Roost GET /v0/pipes (token)': { pid: roost.pid, url: `${base}/v0/pipes`, header: `Authorization: Bearer ${token}` },
};
const run = ({ pid, url, header }) => {
  const c0 = cpuMs(pid);
  const out = execFileSync(WRK, ['-t', '2', '-c', '8', '-d', `${seconds}s`, ...(header ? ['-H', header] : []), url]).toString();
  const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(out)[1]);
  const bad = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  if (bad) throw new Error(`${url}: ${bad[1]} answers other than 2xx`);
  return { rps, cpu: (cpuMs(pid) - c0) / (rps * seconds) };
};
for (const s of Object.values(SIDES)) run({ ...s }); // warm
const results = {};
for (let r = 0; r < rounds; r++) {
  const names = Object.keys(SIDES);
  for (const name of r % 2 ? names.reverse() : names) (results[name] ??= []).push(run(SIDES[name]));
}
const commit = (() => { try { return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim(); } catch { return '?'; } })();
console.log(`bench/http-overhead — ${rounds} alternating rounds of ${seconds} s, wrk 2 threads / 8 connections, medians; node ${process.version}, ${os.cpus().length} cores, commit ${commit}`);
for (const [name, rs] of Object.entries(results)) {
  console.log(`${name.padEnd(30)} ${median(rs.map((x) => x.rps)).toFixed(0).padStart(7)} req/s   ${median(rs.map((x) => x.cpu)).toFixed(3)} ms server CPU a request`);
}
stop();
setTimeout(() => fs.rmSync(dir, { recursive: true, force: true }), 500);
