// bench/server-start: what a `roost serve` start costs until it listens: wall time, and CPU time of
// the server process and of its children (the seeded tenant's cell in --dev). The test suite
// starts some 400 servers, most with --dev, on a machine where it is CPU-bound. Context, no
// target. With --baseline <dir> (another checkout, built), its server starts alternately with
// this one's, side by side. --no-dev: starts without --dev (no tenant, no cell, no dev IdP).
//   npx tsc -p tsconfig.json && node bench/server-start.mjs [--rounds 8] [--baseline ../old] [--no-dev]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids, cpuMs, median } from './proc.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : def; };
const rounds = Number(arg('rounds', 8));
const baseline = arg('baseline', undefined);
const dev = !process.argv.includes('--no-dev');

async function startOnce(from) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-bench-start-'));
  const t0 = performance.now();
  const proc = spawn(process.execPath, [path.join(from, 'bin/roost.js'), 'serve', '--port', '0', '--data', dir, ...(dev ? ['--dev'] : [])], {
    cwd: from, env: { ...process.env, ROOST_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  await new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => { out += d; if (out.includes('"msg":"listening"')) resolve(); });
    proc.once('exit', (code) => reject(new Error(`server in ${from} exited with ${code} before listening`)));
  });
  const wall = performance.now() - t0;
  const server = cpuMs(proc.pid);
  const children = childPids(proc.pid).map(cpuMs).reduce((a, b) => a + b, 0);
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  fs.rmSync(dir, { recursive: true, force: true });
  return { wall, server, children };
}

const sides = [{ name: 'this checkout', from: root, runs: [] }];
if (baseline) sides.push({ name: `baseline ${baseline}`, from: path.resolve(baseline), runs: [] });
for (const s of sides) await startOnce(s.from); // warm the page cache, not counted
for (let r = 0; r < rounds; r++) for (const s of sides) s.runs.push(await startOnce(s.from));

const fmt = (ms) => `${Math.round(ms)} ms`;
console.log(`server start to listening${dev ? ' (--dev: tenant local, its cell, the dev IdP)' : ''}, ${rounds} rounds, medians:`);
for (const s of sides) {
  const m = (k) => median(s.runs.map((x) => x[k]));
  console.log(`  ${s.name}: wall ${fmt(m('wall'))}, server CPU ${fmt(m('server'))}, children CPU ${fmt(m('children'))}, total CPU ${fmt(median(s.runs.map((x) => x.server + x.children)))}`);
}
if (sides.length === 2) {
  const tot = (s) => median(s.runs.map((x) => x.server + x.children));
  console.log(`  ratio this/baseline: server CPU ${(median(sides[0].runs.map((x) => x.server)) / median(sides[1].runs.map((x) => x.server))).toFixed(2)}, total CPU ${(tot(sides[0]) / tot(sides[1])).toFixed(2)}, wall ${(median(sides[0].runs.map((x) => x.wall)) / median(sides[1].runs.map((x) => x.wall))).toFixed(2)}`);
}
