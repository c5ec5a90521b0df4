// bench/ingest: end-to-end CSV ingest through Roost (HTTP upload → rows stored)
// against ClickHouse's own CSV path in-process (INSERT ... SELECT FROM file(CSV)),
// peak RSS while ingesting a large upload, and /v0/events throughput with wait=true.
//   npm run build && node bench/ingest.mjs [--rounds 5] [--big-mb 1024] [--events-seconds 10] [--small-seconds 10]
// (0 skips a part.) The last part, one event per wait=true request from 16 clients, has no
// baseline and no target: it shows what group commit does for small requests (context).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Session } from 'chdb';
import { generate, SCHEMA, DEFAULT_PATH } from './gen-csv.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : def; };
const rounds = arg('rounds', 5);
const bigMb = arg('big-mb', 1024);
const eventSeconds = arg('events-seconds', 10);
const smallSeconds = arg('small-seconds', 10);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

if (!fs.existsSync(DEFAULT_PATH)) {
  fs.mkdirSync(path.dirname(DEFAULT_PATH), { recursive: true });
  fs.writeFileSync(DEFAULT_PATH, generate(50 * 1024 * 1024).csv);
}
const file = DEFAULT_PATH;
const size = fs.statSync(file).size;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-bench-ingest-'));

// --- the server -----------------------------------------------------------
const server = spawn(process.execPath, [path.join(root, 'bin/roost.js'), 'serve', '--dev', '--port', '0', '--data', path.join(work, 'data')], {
  env: { ...process.env, ROOST_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise((resolve, reject) => {
  let buf = '';
  server.stdout.on('data', (b) => {
    buf += b;
    for (const line of buf.split('\n')) { try { const r = JSON.parse(line); if (r.msg === 'listening') resolve(r.url); } catch { /* partial */ } }
  });
  server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
});
const token = (await (await fetch(`${url}/tokens`)).json()).workspace_admin_token;
const auth = { Authorization: `Bearer ${token}` };

function upload(pathAndQuery, bodyStream, contentType = 'text/csv') {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${pathAndQuery}`, { method: 'POST', headers: { ...auth, 'Content-Type': contentType } }, (res) => {
      let t = '';
      res.on('data', (c) => (t += c));
      res.on('end', () => (res.statusCode < 300 ? resolve(JSON.parse(t)) : reject(new Error(`${res.statusCode} ${t}`))));
    });
    req.on('error', reject);
    bodyStream.pipe(req);
  });
}

const schemaQ = encodeURIComponent(SCHEMA);
let r = await fetch(`${url}/v0/datasources?name=bench&schema=${schemaQ}&engine_sorting_key=tuple()`, { method: 'POST', headers: auth });
if (!r.ok) throw new Error(await r.text());

// --- the baseline: chdb in-process, ClickHouse's own CSV parser -------------
const session = new Session(path.join(work, 'inproc'));
await session.queryAsync(`CREATE TABLE t (${SCHEMA}) ENGINE = MergeTree ORDER BY tuple()`);

const times = { roost: [], chdb: [] };
let stored = 0;
let inprocRows = 0;
for (let i = 0; i < rounds; i++) {
  const order = i % 2 ? ['chdb', 'roost'] : ['roost', 'chdb'];
  for (const side of order) {
    if (side === 'chdb') {
      await session.queryAsync('TRUNCATE TABLE t');
      const t0 = performance.now();
      await session.queryAsync(`INSERT INTO t SELECT * FROM file('${file}', CSV, '${SCHEMA.replace(/'/g, "\\'")}')`);
      times.chdb.push(performance.now() - t0);
      if (i === rounds - 1) inprocRows = Number((await session.queryAsync('SELECT count() FROM t', { format: 'TSV' })).text());
      // Emptied at once: the parts just written must not merge in the background
      // while the other side is being timed.
      await session.queryAsync('TRUNCATE TABLE t');
    } else {
      await fetch(`${url}/v0/datasources/bench/truncate`, { method: 'POST', headers: auth });
      const t0 = performance.now();
      const res = await upload('/v0/datasources?name=bench&mode=append', fs.createReadStream(file, { highWaterMark: 1 << 20 }));
      times.roost.push(performance.now() - t0);
      stored = res.rows + res.quarantine_rows;
      await fetch(`${url}/v0/datasources/bench/truncate`, { method: 'POST', headers: auth });
    }
  }
}
const mbs = (ms) => (size / 1048576) / (ms / 1000);
console.log(`bench/ingest — ${(size / 1048576).toFixed(1)} MiB CSV, 20 columns; ${rounds} alternating rounds, medians; ${os.cpus().length} cores`);
console.log(`  chdb in-process INSERT SELECT FROM file(CSV) (baseline): ${median(times.chdb).toFixed(0)} ms  ${mbs(median(times.chdb)).toFixed(1)} MiB/s  (${inprocRows} rows)`);
console.log(`  Roost HTTP upload → stored:                             ${median(times.roost).toFixed(0)} ms  ${mbs(median(times.roost)).toFixed(1)} MiB/s  (${stored} rows stored+quarantined)`);
console.log(`  end-to-end ingest: ${(median(times.chdb) / median(times.roost)).toFixed(2)}× the engine's own CSV path (target ≥ 1.0×)`);
console.log(`  every round, ms: chdb ${times.chdb.map((t) => t.toFixed(0)).join(' ')}; Roost ${times.roost.map((t) => t.toFixed(0)).join(' ')}`);
session.close();

// --- peak RSS while ingesting a large upload --------------------------------
function rssOf(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(s)[1]) * 1024;
  } catch { return 0; }
}
function cellPids() {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === server.pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}
if (bigMb > 0) {
  const target = bigMb * 1024 * 1024;
  // One generated block of whole rows (generate() ends on a row boundary), sent again and again.
  const { csv: first, rows: blockRows } = generate(8 * 1024 * 1024, 7);
  // The block starts with a header: the first block keeps it, the repeats do not.
  const body = first.subarray(first.indexOf(10) + 1);
  let sent = 0;
  const src = new (await import('node:stream')).Readable({
    read() {
      if (sent >= target) { this.push(null); return; }
      const piece = sent === 0 ? first : body;
      sent += piece.length;
      this.push(piece);
    },
  });
  let peakServer = 0;
  let peakCell = 0;
  const poll = setInterval(() => {
    peakServer = Math.max(peakServer, rssOf(server.pid));
    for (const p of cellPids()) peakCell = Math.max(peakCell, rssOf(p));
  }, 25);
  await fetch(`${url}/v0/datasources/bench/truncate`, { method: 'POST', headers: auth });
  const t0 = performance.now();
  const res = await upload('/v0/datasources?name=bench&mode=append', src);
  const ms = performance.now() - t0;
  clearInterval(poll);
  console.log(`\n  ${(sent / 1048576).toFixed(0)} MiB upload in one request: ${(ms / 1000).toFixed(1)} s (${((sent / 1048576) / (ms / 1000)).toFixed(1)} MiB/s), ${res.rows} rows stored, ${res.quarantine_rows} quarantined (${Math.round(sent / first.length) * blockRows} rows sent)`);
  console.log(`  peak RSS: server ${(peakServer / 1048576).toFixed(0)} MiB (target ≤ 300 MiB), cell ${(peakCell / 1048576).toFixed(0)} MiB`);
  // The 4.4M rows just stored would merge in the background through the events run below.
  await fetch(`${url}/v0/datasources/bench/truncate`, { method: 'POST', headers: auth });
}

// --- /v0/events with wait=true from a load generator in another process ------
if (eventSeconds > 0) {
  await fetch(`${url}/v0/datasources?name=events&format=ndjson&schema=${encodeURIComponent('`ts` DateTime64(3) `json:$.ts`, `user` String `json:$.user.id`, `kind` LowCardinality(String) `json:$.kind`, `value` Float64 `json:$.value`, `tags` Array(String) `json:$.tags`')}`, { method: 'POST', headers: auth });
  const loader = `
    const url = process.argv[1], token = process.argv[2], seconds = Number(process.argv[3]), conc = Number(process.argv[4]);
    const lines = [];
    for (let i = 0; i < 5000; i++) lines.push(JSON.stringify({ ts: '2024-05-01 10:00:00.123', user: { id: 'u' + (i % 977) }, kind: ['view', 'click', 'buy'][i % 3], value: i * 1.5, tags: ['a', 'b' + (i % 7)] }));
    const body = lines.join('\\n') + '\\n';
    let reqs = 0, bytes = 0, errors = 0;
    const end = Date.now() + seconds * 1000;
    const worker = async () => {
      while (Date.now() < end) {
        const r = await fetch(url + '/v0/events?name=events&wait=true', { method: 'POST', body, headers: { Authorization: 'Bearer ' + token } });
        await r.text();
        if (r.status === 200) { reqs++; bytes += body.length; } else errors++;
      }
    };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: conc }, worker));
    const cu = process.cpuUsage();
    console.log(JSON.stringify({ reqs, bytes, errors, ms: Date.now() - t0, batch: body.length, cpuMs: (cu.user + cu.system) / 1000 }));
  `;
  const out = await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', loader, url, token, String(eventSeconds), '4'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let s = '';
    p.stdout.on('data', (b) => (s += b));
    p.on('exit', (c) => (c === 0 ? resolve(JSON.parse(s)) : reject(new Error(`loader exited ${c}`))));
  });
  const secs = out.ms / 1000;
  console.log(`\n  /v0/events wait=true, 4 concurrent clients in another process, ${(out.batch / 1024).toFixed(0)} KiB NDJSON batches (5000 events), ${secs.toFixed(1)} s:`);
  console.log(`  ${(out.bytes / 1048576 / secs).toFixed(1)} MiB/s, ${(out.reqs / secs).toFixed(1)} requests/s, ${Math.round(out.reqs * 5000 / secs)} events/s, ${out.errors} errors (target ≥ 20 MB/s)`);
  // Every acknowledged event must be in the table (the same body is sent each time: nothing
  // may be taken for a duplicate).
  const stored = Number((await (await fetch(`${url}/v0/sql?q=${encodeURIComponent('SELECT count() FROM events FORMAT TSV')}`, { headers: auth })).text()).trim());
  console.log(`  stored ${stored} events of ${out.reqs * 5000} acknowledged${stored === out.reqs * 5000 ? '' : '  <-- MISMATCH'}`);
  console.log(`  load generator CPU: ${(out.cpuMs / out.reqs).toFixed(1)} ms per request`);
}

// --- one event per wait=true request (group commit), 16 clients in another process --------
if (smallSeconds > 0) {
  await fetch(`${url}/v0/datasources?name=small&format=ndjson&schema=${encodeURIComponent('`ts` DateTime64(3) `json:$.ts`, `user` String `json:$.user`, `value` Float64 `json:$.value`')}`, { method: 'POST', headers: auth });
  const metric = async (name) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'm').exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0);
  const [s0, r0] = [await metric('roost_grouped_inserts_total'), await metric('roost_grouped_insert_requests_total')];
  const loader = `
    const url = process.argv[1], token = process.argv[2], seconds = Number(process.argv[3]), conc = Number(process.argv[4]);
    const body = JSON.stringify({ ts: '2024-05-01 10:00:00.123', user: 'u1', value: 1.5 }) + '\\n';
    let reqs = 0, errors = 0;
    const lat = [];
    const end = Date.now() + seconds * 1000;
    const worker = async () => {
      while (Date.now() < end) {
        const t0 = performance.now();
        const r = await fetch(url + '/v0/events?name=small&wait=true', { method: 'POST', body, headers: { Authorization: 'Bearer ' + token } });
        await r.text();
        lat.push(performance.now() - t0);
        if (r.status === 200) reqs++; else errors++;
      }
    };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: conc }, worker));
    lat.sort((a, b) => a - b);
    console.log(JSON.stringify({ reqs, errors, ms: Date.now() - t0, p50: lat[lat.length >> 1], p99: lat[Math.floor(lat.length * 0.99)] }));
  `;
  const out = await new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', loader, url, token, String(smallSeconds), '16'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let s = '';
    p.stdout.on('data', (b) => (s += b));
    p.on('exit', (c) => (c === 0 ? resolve(JSON.parse(s)) : reject(new Error(`loader exited ${c}`))));
  });
  const statements = (await metric('roost_grouped_inserts_total')) - s0;
  const carried = (await metric('roost_grouped_insert_requests_total')) - r0;
  const stored = Number((await (await fetch(`${url}/v0/sql?q=${encodeURIComponent('SELECT count() FROM small FORMAT TSV')}`, { headers: auth })).text()).trim());
  console.log(`\n  /v0/events wait=true, one event per request, 16 concurrent clients in another process, ${(out.ms / 1000).toFixed(1)} s (context, no target):`);
  console.log(`  ${(out.reqs / (out.ms / 1000)).toFixed(0)} requests/s, p50 ${out.p50.toFixed(1)} ms, p99 ${out.p99.toFixed(1)} ms, ${out.errors} errors; ${statements} INSERTs carried ${carried} requests (${(carried / Math.max(1, statements)).toFixed(1)} per INSERT); stored ${stored} of ${out.reqs} acknowledged${stored === out.reqs ? '' : '  <-- MISMATCH'}`);
}

server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
fs.rmSync(work, { recursive: true, force: true });
