// bench/chdb-sessions: what the cell's parallel engine sessions rest on, measured on chdb
// in-process (no Roost code). (1) Throughput and latency of a trivial and an aggregation query
// at 2/4/8 concurrent callers on one session and on two sessions of the same directory.
// (2) The leftover hazard: a session failing a query that had produced rows, in a loop, while
// another session and the failing session itself answer tagged queries; wrong answers counted.
// Usage: node bench/chdb-sessions.mjs [--seconds 3]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';

const i = process.argv.indexOf('--seconds');
const seconds = i > 0 ? Number(process.argv[i + 1]) : 3;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-bench-sessions-'));
const a = new Session(dir);
const b = new Session(dir);
for (const s of [a, b]) await s.queryAsync('SET output_format_parallel_formatting = 0, max_result_bytes = 2097152');
a.query('CREATE TABLE bench_events (id UInt32, country String, v Float64) ENGINE = MergeTree ORDER BY id');
a.query("INSERT INTO bench_events SELECT number, ['ES','FR','DE','IT','PT'][number % 5 + 1], (number % 1000) / 10 FROM numbers(200000)");

const QUERIES = {
  trivial: 'SELECT 1 AS x',
  aggregation: 'SELECT country, count() AS c, sum(v) AS s, avg(v) AS a FROM bench_events GROUP BY country ORDER BY country',
};
console.log(`bench/chdb-sessions — ${seconds} s per cell, node ${process.version}, ${os.availableParallelism()} cores`);
console.log('query        sessions  callers     req/s    p50 ms   mean ms    p99 ms');
for (const [name, q] of Object.entries(QUERIES)) {
  for (const sessions of [[a], [a, b]]) {
    for (const callers of [2, 4, 8]) {
      const lat = [];
      const end = performance.now() + seconds * 1000;
      const t0 = performance.now();
      await Promise.all(Array.from({ length: callers }, async (_, k) => {
        const s = sessions[k % sessions.length];
        while (performance.now() < end) {
          const t = performance.now();
          (await s.queryAsync(q, { format: 'JSON' })).bytes();
          lat.push(performance.now() - t);
        }
      }));
      const el = (performance.now() - t0) / 1000;
      lat.sort((x, y) => x - y);
      const mean = lat.reduce((x, y) => x + y, 0) / lat.length;
      console.log(`${name.padEnd(12)} ${String(sessions.length).padStart(8)} ${String(callers).padStart(8)} ${(lat.length / el).toFixed(0).padStart(9)} ${lat[lat.length >> 1].toFixed(2).padStart(9)} ${mean.toFixed(2).padStart(9)} ${lat[Math.floor(lat.length * 0.99)].toFixed(2).padStart(9)}`);
    }
  }
}

// (2) The hazard, per session or not.
a.query('CREATE TABLE leak (x UInt64) ENGINE = MergeTree ORDER BY x');
a.query('INSERT INTO leak SELECT number FROM numbers(300000)');
const FAIL = 'SELECT x, throwIf(x > 150000) FROM leak ORDER BY x';
let stop = false;
const tally = { same: [0, 0], other: [0, 0] };
const check = async (s, key) => {
  while (!stop) {
    const tag = `t${tally[key][0]++}`;
    const r = (await s.queryAsync(`SELECT '${tag}'`, { format: 'CSV' })).text();
    if (r !== `"${tag}"\n`) tally[key][1]++;
  }
};
const failing = (async () => { while (!stop) { try { await a.queryAsync(FAIL, { format: 'CSV' }); } catch { /* expected */ } } })();
const checks = [check(a, 'same'), check(b, 'other')];
await new Promise((r) => setTimeout(r, seconds * 1000));
stop = true;
await Promise.all([failing, ...checks]);
console.log(`\nleftover hazard while one session fails in a loop: wrong answers in that same session ${tally.same[1]} of ${tally.same[0]}, in the other session ${tally.other[1]} of ${tally.other[0]}`);
a.close();
b.close();
fs.rmSync(dir, { recursive: true, force: true });
