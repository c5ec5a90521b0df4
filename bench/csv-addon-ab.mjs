// A/B of two builds of the native addon on the CSV bench file: the raw CsvValidator of each,
// loaded side by side in this process, alternating, process CPU time per 50 MB (medians).
// For a change to the C++ core, where bench/csv-parse.mjs's run-to-run spread (a few percent)
// is as large as the change. Build the other side in a scratch folder, e.g.:
//   d=$(mktemp -d) && git archive <commit> native binding.gyp package.json | tar -x -C $d &&
//   ln -s $PWD/node_modules $d/node_modules && (cd $d && npx node-gyp configure build)
//   node bench/csv-addon-ab.mjs $d/build/Release/roost_native.node [--runs 15]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { DEFAULT_PATH, SCHEMA, generate } from './gen-csv.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args.splice(runsAt, 2)[1]) : 15;
const [aPath, bPath = path.join(here, '..', 'build', 'Release', 'roost_native.node')] = args;
if (!aPath || !existsSync(aPath) || !existsSync(bPath)) {
  console.error('usage: node bench/csv-addon-ab.mjs <A roost_native.node> [B roost_native.node, default this build] [--runs 15]');
  process.exit(2);
}
if (!existsSync(DEFAULT_PATH)) {
  mkdirSync(path.dirname(DEFAULT_PATH), { recursive: true });
  writeFileSync(DEFAULT_PATH, generate(50 * 1024 * 1024).csv);
}
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
const require = createRequire(import.meta.url);
const sides = { A: require(path.resolve(aPath)), B: require(path.resolve(bPath)) };
const buf = readFileSync(DEFAULT_PATH);
const CHUNK = 2 << 20; // the upload path's batch size
let expected;

async function run(addon) {
  gc();
  await new Promise((r) => setTimeout(r, 30));
  const c0 = process.cpuUsage();
  const v = new addon.CsvValidator(SCHEMA, { hasHeader: true, delimiter: ',', quote: '"' });
  let rows = 0;
  for (let o = 0; o < buf.length; o += CHUNK) rows += (await v.push(buf.subarray(o, o + CHUNK))).rowCount;
  rows += (await v.finish()).rowCount;
  const c = process.cpuUsage(c0);
  if ((expected ??= rows) !== rows) throw new Error(`the two builds stored ${expected} and ${rows} rows`);
  return (c.user + c.system) / 1000;
}

const ms = { A: [], B: [] };
for (let i = 0; i < runs; i++) for (const k of i % 2 ? ['A', 'B'] : ['B', 'A']) ms[k].push(await run(sides[k]));
const med = (x) => [...x].sort((p, q) => p - q)[x.length >> 1];
console.log(`${(buf.length / 1e6).toFixed(1)} MB, ${expected} rows, ${runs} alternating runs each; CPU ms median (min)`);
console.log(`A ${path.resolve(aPath)}: ${med(ms.A).toFixed(1)} (${Math.min(...ms.A).toFixed(1)})`);
console.log(`B ${path.resolve(bPath)}: ${med(ms.B).toFixed(1)} (${Math.min(...ms.B).toFixed(1)})`);
console.log(`B ÷ A: ${(med(ms.B) / med(ms.A)).toFixed(3)}`);
