// CSV parse benchmark: Roost's native parse+validate (CsvValidator -> RowBinary)
// against udsv, papaparse, csv-parse and ClickHouse's own CSV input (chdb), on
// the file from bench/gen-csv.mjs. Then: which format ClickHouse ingests fastest
// (RowBinary vs Native vs TSV vs CSV) for the same rows.
//
//   npm run build:ts && node bench/csv-parse.mjs [--runs 5] [--mb 50] [--skip-formats] [--cold]
//   taskset -c 1 node bench/csv-parse.mjs ...   (every side on one core: the per-core figure
//                                               without the VM's cross-core wake-ups, see below)
//
// Each side runs alternately, `runs` times; medians are reported. The JS parsers
// use their fastest string-array modes (they do no type validation at all).
// Besides wall time, the process CPU time of each run (process.cpuUsage(): user +
// system, all threads, so chdb's in-process parsing threads and the addon's
// worker thread count) is reported as MB per CPU-second: the per-core figure.
// A full GC (and the finalizers it schedules) runs before every timed run, and the process is
// left to go quiet (see settle()),
// outside its timing: otherwise the collection of one side's garbage (the JS
// parsers leave hundreds of MB of strings, the native sides tens of MB of
// batches) lands on the CPU time of whichever side runs next.
// Pinned to one core (taskset), every side's CPU time is steadier. On this 2-vCPU VM a thread
// that idles between pieces of work runs slower after each idle spell (the C++ harness,
// native/bench/csv_harness.cc, sleeping 20 ms between its 2 MiB pushes took 110-178 CPU ms for
// what takes 88 without), and unpinned the addon's pushes hop to a libuv worker while the main
// thread waits: the same native work measured 96-213 CPU ms a run unpinned, minutes apart, and
// 91-94 pinned (after a warm-up run). bench/RESULTS.md gives both figures.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { DEFAULT_PATH, SCHEMA, generate } from './gen-csv.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const RUNS = Number(opt('--runs', 5));
// Each timed run follows an untimed run of the same side (every side alike), so that each is
// timed in its steady state, as a server parsing upload after upload runs. Without it (--cold)
// the side timed first after another side's run paid for that (Roost's Native side, 50 MB:
// 68-72 CPU ms a run in steady state, 89-105 ms on its first run after csv-parse or chdb's CSV
// input, pinned to one core, GC'd and quiet in between; measured with bench/out scripts).
const WARM = !args.includes('--cold');
const MB = Number(opt('--mb', 50));

const wrapperPath = path.join(here, '..', 'dist', 'src', 'native', 'csv.js');
if (!existsSync(wrapperPath)) {
  console.error('dist/src/native/csv.js is missing: run "npm run build:ts" first');
  process.exit(1);
}
const { CsvValidator } = await import(wrapperPath);
const { inferSchema, initParser } = await import('udsv');
const Papa = (await import('papaparse')).default;
const { parse: csvParseSync } = await import('csv-parse/sync');
const { Session } = await import('chdb');
v8.setFlagsFromString('--expose-gc');
const fullGc = vm.runInNewContext('gc');
// A full GC, then a turn of the event loop so that the finalizers of the freed
// external buffers (they free() the native batches) run before, not during,
// the next timed run.
// Then wait for the process to go quiet: after a full GC V8 still sweeps and gives memory back
// on its helper threads, and process.cpuUsage() counts every thread. Measured after one udsv run
// and two full GCs: 33-47 CPU ms in the next 100 ms of idling, then 0.2-2 ms per 100 ms. With the
// sides in a fixed cyclic order that cost landed on the same side every run (Roost's Native side,
// right after csv-parse: 104-118 CPU ms a run against 82 for the same pushes in a process of
// their own). Quiet = a 25 ms window with under 1 CPU ms (at most 3 s of waiting).
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function settle() {
  for (let i = 0; i < 2; i++) {
    fullGc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  for (const t0 = Date.now(); Date.now() - t0 < 3000; ) {
    const c0 = process.cpuUsage();
    await sleep(25);
    const c = process.cpuUsage(c0);
    if (c.user + c.system < 1000) break;
  }
}

const file = DEFAULT_PATH;
if (!existsSync(file) || Math.abs(statSync(file).size - MB * 1e6) > MB * 1e4) {
  const { csv } = generate(MB * 1e6);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, csv);
}
const buf = readFileSync(file);
const size = buf.length;
const esc = (s) => s.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
const work = path.join(here, 'out', 'csv-parse-work');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const session = new Session(path.join(work, 'chdb'));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// The upload path hands the validator 2 MiB groups of body pieces (src/ingest/import.ts):
// the bench pushes the same size.
const CHUNK = 2 << 20;

let nativeRows = null;
// Timed runs drop each batch once counted, as an upload does once the batch is
// sent to the engine (and as the other sides drop their output): holding all
// 30 MB of batches would time fresh pages, not parsing. The format comparison
// below keeps them (keep = true) in a run of its own.
async function runNative(format = 'Native', keep = false) {
  const v = new CsvValidator({ columns: SCHEMA, hasHeader: true, format });
  let rows = 0;
  let rejected = 0;
  const parts = [];
  for (let o = 0; o < size; o += CHUNK) {
    const b = await v.push(buf.subarray(o, o + CHUNK));
    rows += b.rowCount;
    rejected += b.rejected.length;
    if (keep) parts.push(b.rows);
  }
  const f = await v.finish();
  rows += f.rowCount;
  rejected += f.rejected.length;
  if (keep) parts.push(f.rows);
  if (rejected) throw new Error(`native rejected ${rejected} rows of the generated file`);
  nativeRows = { parts, rows, format: v.format, structure: v.structure };
  return rows;
}
function runUdsv() {
  const str = buf.toString('utf8');
  const parser = initParser(inferSchema(str));
  return parser.stringArrs(str).length;
}
function runPapa() {
  return Papa.parse(buf.toString('utf8'), { header: false, skipEmptyLines: true }).data.length - 1;
}
function runCsvParse() {
  return csvParseSync(buf.toString('utf8'), { from_line: 2 }).length;
}
const chQuery = (settings) =>
  `SELECT sum(cityHash64(*)), count() FROM file('${esc(file)}', CSVWithNames, '${esc(SCHEMA)}')${settings}`;
async function runCh(settings) {
  const r = await session.queryAsync(chQuery(settings), { format: 'TSV' });
  return Number(r.text().trim().split('\t')[1]);
}

const sides = [
  ['roost native (parse+validate → Native block)', () => runNative('Native')],
  ['roost native (parse+validate → RowBinary)', () => runNative('RowBinary')],
  ['ClickHouse CSV via chdb (default threads)', () => runCh('')],
  ['ClickHouse CSV via chdb (1 thread)', () => runCh(' SETTINGS max_threads = 1, input_format_parallel_parsing = 0')],
  ['udsv stringArrs', runUdsv],
  ['papaparse', runPapa],
  ['csv-parse (sync)', runCsvParse],
];
const times = Object.fromEntries(sides.map(([n]) => [n, []]));
const cpu = Object.fromEntries(sides.map(([n]) => [n, []])); // CPU ms (user + system, all threads)
const counts = {};
await runNative(); // warm-up
// Each run starts at another side (the order rotates): the side timed right after the heavy JS
// parsers of the previous run paid ~40% more on a 2-core VM (measured: with the two Roost sides
// swapped, whichever came first was the slower), and with a fixed order that was always Roost's
// Native side, the one every ratio is taken against.
for (let r = 0; r < RUNS; r++) {
  for (let k = 0; k < sides.length; k++) {
    const [name, fn] = sides[(r + k) % sides.length];
    if (WARM) {
      await settle();
      await fn();
    }
    await settle();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    counts[name] = await fn();
    times[name].push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu[name].push((c.user + c.system) / 1000);
  }
}
const mbps = (name) => size / 1e6 / (median(times[name]) / 1000);
const mbPerCpuS = (name) => size / 1e6 / (median(cpu[name]) / 1000);
const nativeMBps = mbps(sides[0][0]);
const nativeMBcpu = mbPerCpuS(sides[0][0]);
console.log(`input: ${file} (${(size / 1e6).toFixed(1)} MB, ${counts[sides[0][0]]} rows, 20 columns), ${RUNS} alternating runs${WARM ? ' (each after an untimed run of its own side)' : ' (cold: no untimed run before each)'}, ${os.cpus().length} cores${os.availableParallelism() < os.cpus().length ? ` (this process pinned to ${os.availableParallelism()})` : ''}`);
console.log('wall: median elapsed time; CPU: median process CPU time (user + system, all threads) during the run');
console.log('| parser | median ms | MB/s | roost native ÷ this (wall) | median CPU ms | MB/CPU-s | roost native ÷ this (per core) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const [name] of sides) {
  console.log(
    `| ${name} | ${median(times[name]).toFixed(0)} | ${mbps(name).toFixed(0)} | ${(nativeMBps / mbps(name)).toFixed(2)}× ` +
      `| ${median(cpu[name]).toFixed(0)} | ${mbPerCpuS(name).toFixed(0)} | ${(nativeMBcpu / mbPerCpuS(name)).toFixed(2)}× |`,
  );
  if (counts[name] !== counts[sides[0][0]]) console.log(`  (row count differs: ${counts[name]})`);
}
// On a machine whose speed drifts from minute to minute, the ratio within each run (the sides
// timed seconds apart) is steadier than the ratio of medians taken over the whole bench.
console.log('per-run CPU ratios, roost native ÷ this: median (min–max) of the runs');
for (const [name] of sides.slice(1)) {
  const rs = cpu[name].map((c, i) => c / cpu[sides[0][0]][i]);
  console.log(`  ${name}: ${median(rs).toFixed(2)}× (${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`);
}

if (!args.includes('--skip-formats')) {
  // Same rows in each format: Native and RowBinary as the validator writes them,
  // TSV and CSV as ClickHouse writes them from the CSV.
  const files = {};
  for (const fmt of ['RowBinary', 'Native']) {
    await runNative(fmt, true);
    files[fmt] = path.join(work, `rows.${fmt}`);
    writeFileSync(files[fmt], Buffer.concat(nativeRows.parts));
  }
  const structure = nativeRows.structure;
  for (const fmt of ['TSV', 'CSV']) {
    const r = await session.queryAsync(`SELECT * FROM file('${esc(file)}', CSVWithNames, '${esc(SCHEMA)}')`, { format: fmt });
    files[fmt] = path.join(work, `rows.${fmt}`);
    writeFileSync(files[fmt], Buffer.from(r.bytes()));
  }
  await session.queryAsync(`CREATE TABLE default.ingest (${structure}) ENGINE = MergeTree ORDER BY id`);
  const ft = Object.fromEntries(Object.keys(files).map((f) => [f, []]));
  for (let r = 0; r < RUNS; r++) {
    for (const fmt of Object.keys(files)) {
      await session.queryAsync('TRUNCATE TABLE default.ingest');
      const t0 = performance.now();
      await session.queryAsync(`INSERT INTO default.ingest SELECT * FROM file('${esc(files[fmt])}', ${fmt}, '${esc(structure)}')`);
      ft[fmt].push(performance.now() - t0);
    }
  }
  const check = await session.queryAsync('SELECT count() FROM default.ingest', { format: 'TSV' });
  console.log(`\ningest of the same ${check.text().trim()} rows: INSERT INTO MergeTree SELECT * FROM file(path, <format>, structure)`);
  console.log('| format | file MB | median ms | RowBinary ÷ this (time) |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const fmt of Object.keys(files)) {
    console.log(`| ${fmt} | ${(statSync(files[fmt]).size / 1e6).toFixed(1)} | ${median(ft[fmt]).toFixed(0)} | ${(median(ft[fmt]) / median(ft.RowBinary)).toFixed(2)}× |`);
  }
}
let commit = '';
try {
  commit = execSync('git rev-parse --short HEAD', { cwd: here }).toString().trim();
} catch {}
console.log(`\ncommit ${commit}, node ${process.version}, ${new Date().toISOString()}`);
session.cleanup?.();
rmSync(work, { recursive: true, force: true });
