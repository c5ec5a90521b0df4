// What each of the cell's engine-side choices (src/cells/cell-main.ts) costs chdb a query, in this
// process, with nothing else in the loop: the same trivial query on two sessions of one data
// directory, four in flight, each variant's sessions set up as the cell sets up its own, in
// alternating rounds. bench/endpoint.mjs --floor measures the same choices together behind HTTP
// and a process hop (floor-hop-cell-engine); this takes them apart.
//   plain          nothing set (chdb's defaults)
//   no-pf          parallel output formatting off for the session (the cell's choice for small results)
//   no-pf+mrb      ... and max_result_bytes for the session (the cell caps a buffered result)
//   no-pf+nodb     ... and an empty Memory database as the current one (the cell's second wall
//                  against unqualified table names)
//   no-pf+limits   ... and the tenant's limits in the query's SETTINGS clause (max_execution_time,
//                  max_memory_usage, max_threads, readonly), as the cell sends every query
//   one-setting:K  no-pf and only setting K in the clause (what one setting in a clause costs)
//   cell           all of the cell's choices together
// Many short rounds: with 5 rounds of 2,000 queries the machine's drift (±10% between runs) hid
// every choice but parallel formatting; 25 rounds of 600 agreed with each other.
// Usage: node bench/engine-choices.mjs [--rounds 25] [--queries 600] [--sql 'SELECT 1 AS x']
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import { median } from './proc.mjs';

const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : def; };
const rounds = Number(arg('rounds', 25));
const queries = Number(arg('queries', 600));
const sql = arg('sql', 'SELECT 1 AS x');
const IN_FLIGHT = 4;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-bench-engine-choices-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const NO_PF = ['SET output_format_parallel_formatting = 0'];
const NO_DB = ['CREATE DATABASE IF NOT EXISTS bench_no_tables ENGINE = Memory', 'USE bench_no_tables'];
const LIMITS = { max_execution_time: 30, max_memory_usage: 6_318_988_288, max_threads: 1, readonly: 1 };
const clause = (o) => ` SETTINGS ${Object.entries(o).map(([k, v]) => `${k} = ${v}`).join(', ')}`;
const variants = {
  plain: { setup: [], sql },
  'no-pf': { setup: NO_PF, sql },
  'no-pf+mrb': { setup: ['SET max_result_bytes = 2097152, output_format_parallel_formatting = 0'], sql },
  'no-pf+nodb': { setup: [...NO_PF, ...NO_DB], sql },
  'no-pf+limits': { setup: NO_PF, sql: sql + clause(LIMITS) },
  ...Object.fromEntries(Object.entries(LIMITS).map(([k, v]) => [`one-setting:${k}`, { setup: NO_PF, sql: sql + clause({ [k]: v }) }])),
  cell: { setup: ['SET max_result_bytes = 2097152, output_format_parallel_formatting = 0', ...NO_DB], sql: sql + clause(LIMITS) },
};
const sessions = {};
for (const [name, v] of Object.entries(variants)) {
  sessions[name] = [0, 1].map(() => { const s = new Session(dir); for (const q of v.setup) s.query(q); return s; });
}

async function run(name, n) {
  const [a, b] = sessions[name];
  const q = variants[name].sql;
  let started = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async (_, i) => {
    const s = i % 2 ? b : a;
    while (started < n) { started++; (await s.queryAsync(q, { format: 'JSON' })).bytes(); }
  }));
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1000 / n, qps: n / ((performance.now() - t0) / 1000) };
}

const names = Object.keys(variants);
const res = Object.fromEntries(names.map((k) => [k, []]));
for (const k of names) await run(k, Math.min(300, queries));  // warm-up
for (let r = 0; r < rounds; r++) {
  for (const k of r % 2 ? [...names].reverse() : names) res[k].push(await run(k, queries));
}
console.log(`bench/engine-choices — ${rounds} alternating rounds of ${queries} queries, ${IN_FLIGHT} in flight on 2 sessions, medians; ${JSON.stringify(sql)}; node ${process.version}, ${os.cpus().length} cores`);
const base = median(res['no-pf'].map((x) => x.cpu));
console.log('variant                          CPU ms/query   vs no-pf   queries/s');
for (const k of names) {
  const cpu = median(res[k].map((x) => x.cpu));
  console.log(`${k.padEnd(32)} ${cpu.toFixed(3).padStart(12)} ${((cpu / base - 1) * 100).toFixed(1).padStart(8)}% ${median(res[k].map((x) => x.qps)).toFixed(0).padStart(11)}`);
}
for (const ss of Object.values(sessions)) for (const s of ss) s.close?.();
