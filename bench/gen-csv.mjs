// Writes a reproducible CSV for bench/csv-parse.mjs: fixed seed, ~50 MB, 20
// columns of mixed types, ~10% of cells quoted (some with delimiters, quotes and
// newlines inside). Output goes to bench/out/ (gitignored).
//   node bench/gen-csv.mjs [--mb 50] [--out bench/out/csv-bench.csv]
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SCHEMA = [
  '`id` UInt64', '`user_id` Int32', '`amount` Float64', '`price` Decimal(12, 2)', '`qty` Int16',
  '`ts` DateTime', '`day` Date', '`ts_ms` DateTime64(3)', '`active` Bool', '`name` String',
  '`city` LowCardinality(String)', '`note` String', '`uid` UUID', '`score` Float32',
  '`maybe` Nullable(Int32)', '`email` String', '`country` LowCardinality(String)', '`version` UInt8',
  '`lat` Float64', '`label` Nullable(String)',
].join(', ');

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generate(targetBytes, seed = 20240102) {
  const r = rng(seed);
  const int = (lo, hi) => Math.floor(lo + r() * (hi - lo + 1));
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const pad = (x, w = 2) => String(x).padStart(w, '0');
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
  const cities = ['Madrid', 'Berlin', 'Paris', 'Lisboa', 'Roma', 'Wien', 'Praha', 'Oslo', 'Zürich', 'København'];
  const countries = ['ES', 'DE', 'FR', 'PT', 'IT', 'AT', 'CZ', 'NO', 'CH', 'DK'];
  const hex = '0123456789abcdef';
  const header = SCHEMA.split(/, (?=`)/).map((c) => c.slice(1, c.indexOf('`', 1)));
  const parts = [header.join(',') + '\n'];
  let bytes = parts[0].length;
  let rows = 0;
  // Quote a cell ~10% of the time even when it does not need it, as exporters do
  // (not Bool cells: ClickHouse's CSV input refuses a quoted "true").
  const q = (s, i) => ((i !== 8 && r() < 0.1) || /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  for (let id = 1; bytes < targetBytes; id++) {
    const day = `${int(2000, 2030)}-${pad(int(1, 12))}-${pad(int(1, 28))}`;
    const time = `${pad(int(0, 23))}:${pad(int(0, 59))}:${pad(int(0, 59))}`;
    let uid = '';
    for (let i = 0; i < 32; i++) uid += hex[int(0, 15)];
    uid = `${uid.slice(0, 8)}-${uid.slice(8, 12)}-${uid.slice(12, 16)}-${uid.slice(16, 20)}-${uid.slice(20)}`;
    const note = r() < 0.3
      ? `${pick(words)}, ${pick(words)} "${pick(words)}"${r() < 0.2 ? '\n' + pick(words) : ''}`
      : `${pick(words)} ${pick(words)} ${pick(words)}`;
    const cells = [
      String(id), String(int(-2e9, 2e9)), (r() * 1e6 - 5e5).toFixed(int(0, 6)), `${int(0, 999999)}.${pad(int(0, 99))}`,
      String(int(-32768, 32767)), `${day} ${time}`, day, `${day} ${time}.${pad(int(0, 999), 3)}`, pick(['true', 'false']),
      `${pick(words)} ${pick(words)}`, pick(cities), note, uid, (r() * 100).toFixed(3),
      r() < 0.2 ? '' : String(int(-1e6, 1e6)), `${pick(words)}.${int(1, 9999)}@example.com`, pick(countries),
      String(int(0, 255)), (r() * 180 - 90).toFixed(6), r() < 0.3 ? '' : pick(words),
    ];
    const line = cells.map(q).join(',') + '\n';
    parts.push(line);
    bytes += Buffer.byteLength(line);
    rows++;
  }
  return { csv: Buffer.from(parts.join('')), rows, header };
}

export const DEFAULT_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), 'out', 'csv-bench.csv');

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const mb = Number(args[args.indexOf('--mb') + 1] ?? 50) || 50;
  const out = args.includes('--out') ? args[args.indexOf('--out') + 1] : DEFAULT_PATH;
  const { csv, rows } = generate(mb * 1e6);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, csv);
  console.log(`wrote ${out}: ${(csv.length / 1e6).toFixed(1)} MB, ${rows} rows, 20 columns`);
}
