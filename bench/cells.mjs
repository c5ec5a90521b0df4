// bench/cells: round trip of queries through a tenant cell (child process) against
// the same query on chdb in-process (the baseline BENCHMARKS.md names).
// Usage: npm run build && node bench/cells.mjs [--rounds 7]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import { EmbeddedCell } from '../dist/src/cells/embedded.js';
import { createLogger } from '../dist/src/log/logger.js';

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 7;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-bench-cells-'));
const session = new Session(path.join(dir, 'inproc'));
const cell = new EmbeddedCell({ tenant: 'bench', dir: path.join(dir, 'cell'), idleMs: 3_600_000, healthMs: 60_000, log: createLogger('silent') });

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function time(fn, n) {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return (performance.now() - t0) / n;
}

async function drain(stream) {
  let bytes = 0;
  for await (const b of stream) bytes += b.length;
  return bytes;
}

const TRIVIAL = 'SELECT 1';
const LARGE = 'SELECT number, toString(number) FROM numbers(1000000)';

// The cell turns chdb's parallel output formatting off for small results; the
// in-process baseline is measured with and without it, and the faster is the baseline.
const NO_PF = ' SETTINGS output_format_parallel_formatting = 0';
const cases = {
  'trivial: in-process queryAsync (default)': () => session.queryAsync(TRIVIAL, { format: 'CSV' }).then((r) => r.bytes().length),
  'trivial: in-process, parallel formatting off': () => session.queryAsync(TRIVIAL + NO_PF, { format: 'CSV' }).then((r) => r.bytes().length),
  'trivial: in-process queryStream': async () => { for await (const c of session.queryStream(TRIVIAL, { format: 'CSV' })) c.raw(); },
  'trivial: cell query (streamed)': async () => drain(await cell.query(TRIVIAL, { format: 'CSV' })),
  'trivial: cell exec (buffered)': () => cell.exec(TRIVIAL, { format: 'CSV' }),
  'large: in-process queryAsync (default)': () => session.queryAsync(LARGE, { format: 'CSV' }).then((r) => r.bytes().length),
  'large: in-process, parallel formatting off': () => session.queryAsync(LARGE + NO_PF, { format: 'CSV' }).then((r) => r.bytes().length),
  'large: cell query (streamed)': async () => drain(await cell.query(LARGE, { format: 'CSV' })),
};

// Warm both engines.
await cell.exec('SELECT 1');
for (const fn of Object.values(cases)) for (let i = 0; i < 20; i++) await fn();

const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) {
  // Alternate the order each round so drift hits both sides alike.
  const keys = Object.keys(cases);
  if (r % 2) keys.reverse();
  for (const k of keys) results[k].push(await time(cases[k], k.startsWith('trivial') ? 500 : 5));
}

const med = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
const bT = Math.min(med['trivial: in-process queryAsync (default)'], med['trivial: in-process, parallel formatting off']);
const bL = Math.min(med['large: in-process queryAsync (default)'], med['large: in-process, parallel formatting off']);
console.log(`bench/cells — ${rounds} alternating rounds, medians; node ${process.version}, ${os.cpus().length} cores`);
for (const [k, v] of Object.entries(med)) {
  const base = k.startsWith('trivial') ? bT : bL;
  console.log(`${k.padEnd(44)} ${v.toFixed(3).padStart(9)} ms   ${(v / base).toFixed(2)}×`);
}
console.log(`\ntrivial query through a cell: ${(med['trivial: cell query (streamed)'] / bT).toFixed(2)}× in-process (target ≤ 1.3×)`);
console.log(`1M-row result through a cell: ${(med['large: cell query (streamed)'] / bL).toFixed(2)}× in-process (target ≤ 1.5×)`);

await cell.close();
session.close();
fs.rmSync(dir, { recursive: true, force: true });
