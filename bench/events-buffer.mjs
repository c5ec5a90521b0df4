// bench/events-buffer: how fast the /v0/events buffer (202 without wait) gets acknowledged events
// into the engine while clients keep posting, and how long the backlog a killed cell leaves takes
// to drain. Each round: 16 clients in another process post 5-event bodies without pause for
// --seconds; a third of the way in the tenant's cell is killed (SIGKILL) and the server restarts
// it; when the load stops, the time until every acknowledged event is stored is the drain time.
// Context, no target. With --baseline <dir> (another checkout, built), its server runs the same
// rounds alternately with this one, side by side. --kill 0: no kill (the buffer under load alone).
//   npx tsc -p tsconfig.json && node bench/events-buffer.mjs [--rounds 3] [--seconds 15] [--baseline ../old] [--kill 0]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids, freePort, median } from './proc.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : def; };
const rounds = Number(arg('rounds', 3));
const seconds = Number(arg('seconds', 15));
const baseline = arg('baseline', undefined);
const kill = arg('kill', '1') !== '0';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startServer(from) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-bench-events-'));
  const port = await freePort();
  const proc = spawn(process.execPath, [path.join(from, 'bin/roost.js'), 'serve', '--dev', '--port', String(port), '--data', path.join(dir, 'data')], {
    cwd: from, env: { ...process.env, ROOST_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'ignore'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${url}/v0/health`)).ok) break; } catch { /* not yet */ }
    if (i > 300) throw new Error(`server of ${from} did not start`);
    await sleep(100);
  }
  const token = (await (await fetch(`${url}/tokens`)).json()).workspace_admin_token;
  const stop = async () => { proc.kill('SIGTERM'); await new Promise((r) => proc.exitCode !== null ? r() : proc.on('exit', r)); fs.rmSync(dir, { recursive: true, force: true }); };
  return { url, token, proc, stop };
}

const loader = `
  const url = process.argv[1], token = process.argv[2], seconds = Number(process.argv[3]);
  let next = 0, acked = 0, refused = 0;
  const end = Date.now() + seconds * 1000;
  const worker = async () => {
    while (Date.now() < end) {
      const from = next; next += 5;
      let body = '';
      for (let i = from; i < from + 5; i++) body += JSON.stringify({ id: i, user: 'u' + (i % 977), value: i * 1.5 }) + '\\n';
      const r = await fetch(url + '/v0/events?name=ev', { method: 'POST', body, headers: { Authorization: 'Bearer ' + token } }).catch(() => undefined);
      if (r) await r.text();
      if (r && r.status === 202) acked += 5; else refused++;
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  console.log(JSON.stringify({ acked, refused }));
`;

async function round(s) {
  const auth = { Authorization: `Bearer ${s.token}` };
  const schema = encodeURIComponent('`id` UInt32 `json:$.id`, `user` String `json:$.user`, `value` Float64 `json:$.value`');
  const name = 'ev';
  const made = await fetch(`${s.url}/v0/datasources?name=${name}&format=ndjson&schema=${schema}`, { method: 'POST', headers: auth });
  if (!made.ok) throw new Error(`create: ${made.status} ${await made.text()}`);
  const count = async () => {
    for (let i = 0; ; i++) {
      const r = await fetch(`${s.url}/v0/sql?q=${encodeURIComponent(`SELECT count() FROM ${name} FORMAT TSV`)}`, { headers: auth }).catch(() => undefined);
      if (r?.ok) return Number((await r.text()).trim());
      if (i > 100) throw new Error(`count: ${r?.status}`);
      await sleep(100);
    }
  };
  const t0 = performance.now();
  const load = new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', loader, s.url, s.token, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b) => (out += b));
    p.on('exit', (c) => (c === 0 ? resolve(JSON.parse(out)) : reject(new Error(`loader exited ${c}`))));
  });
  await sleep(seconds * 1000 / 3);
  const cells = kill ? childPids(s.proc.pid) : [];
  for (const pid of cells) process.kill(pid, 'SIGKILL');
  const { acked, refused } = await load;
  const loadEnd = performance.now();
  let stored = 0;
  while ((stored = await count()) < acked) {
    if (performance.now() - loadEnd > 120_000) break;
    await sleep(100);
  }
  const drainMs = performance.now() - loadEnd;
  return { acked, refused, stored, killed: cells.length, rate: acked / ((loadEnd - t0) / 1000), drainMs };
}

const sides = [{ label: 'this checkout', root }];
if (baseline) sides.push({ label: `baseline ${baseline}`, root: path.resolve(baseline) });
const results = new Map(sides.map((x) => [x.label, []]));
for (let r = 0; r < rounds; r++) {
  for (const side of r % 2 ? [...sides].reverse() : sides) {
    const s = await startServer(side.root);
    try {
      const res = await round(s);
      results.get(side.label).push(res);
      console.log(`round ${r + 1} ${side.label}: ${res.acked} events acknowledged (${Math.round(res.rate)}/s, ${res.refused} requests refused), cell killed (${res.killed}), drained ${(res.drainMs / 1000).toFixed(1)} s after the load, stored ${res.stored}${res.stored === res.acked ? '' : '  <-- MISMATCH'}`);
    } finally {
      await s.stop();
    }
  }
}
console.log(`\n/v0/events without wait, 16 clients × 5-event bodies for ${seconds} s, ${kill ? `the cell killed at ${(seconds / 3).toFixed(0)} s` : 'no kill'}; medians of ${rounds} rounds:`);
for (const [label, rs] of results) {
  console.log(`  ${label}: ${Math.round(median(rs.map((x) => x.rate)))} events/s acknowledged, drain after the load ${(median(rs.map((x) => x.drainMs)) / 1000).toFixed(1)} s`);
}
