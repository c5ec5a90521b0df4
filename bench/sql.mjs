// bench/sql: analysis + rewrite time of the native SQL analyzer against node-sql-parser
// and against ClickHouse's own parser (EXPLAIN AST through chdb, in-process session).
// Usage: npx node-gyp configure build && npx tsc -p tsconfig.json && node bench/sql.mjs [--rounds 9]
//
// Baselines do less than we do, which only favours them: node-sql-parser parses (AST and
// table list in one parse()) but does not rewrite or check a policy. It has no ClickHouse
// dialect: for each case every dialect that parses all of its SQL is tried and the fastest
// is the baseline (named in the output); a case no dialect parses is reported as such.
// EXPLAIN AST parses and formats the AST (and includes chdb's per-call overhead).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Session } from 'chdb';
import { analyzeSql, compilePipe, createNameMap } from '../dist/src/native/sql.js';

const require = createRequire(import.meta.url);
const { Parser } = require('node-sql-parser');

const rounds = Number(process.argv[process.argv.indexOf('--rounds') + 1]) || 9;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-bench-sql-'));
const session = new Session(dir);
const parser = new Parser();
const DIALECTS = ['mysql', 'mariadb', 'postgresql', 'bigquery', 'sqlite', 'trino', 'snowflake', 'redshift', 'hive', 'db2', 'flinksql', 'noql', 'athena', 'transactsql'];

const names = createNameMap({
  events: '`ws_default`.`events`',
  users: '`ws_default`.`users`',
  sessions: '`ws_default`.`sessions`',
  'tinybird.pipe_stats_rt': '`ws_default`.`_tb_pipe_stats_rt`',
});

const QUERIES = {
  simple: 'SELECT count() FROM events WHERE timestamp > now() - INTERVAL 1 DAY',
  join: `SELECT e.user_id, u.name, count() AS hits, uniqExact(e.session_id) AS sessions
FROM events AS e
LEFT JOIN users AS u ON u.id = e.user_id
WHERE e.timestamp >= toStartOfDay(now()) AND e.user_id IN (SELECT id FROM users WHERE plan = 'pro')
GROUP BY e.user_id, u.name
ORDER BY hits DESC
LIMIT 100`,
  complex: `WITH daily AS (
    SELECT toDate(timestamp) AS day, user_id, count() AS n, sumIf(amount, kind = 'purchase') AS revenue
    FROM events
    WHERE timestamp >= now() - INTERVAL 30 DAY
    GROUP BY day, user_id
  ),
  active AS (
    SELECT user_id FROM daily GROUP BY user_id HAVING count() >= 5
  )
SELECT d.day, count(DISTINCT d.user_id) AS users, sum(d.revenue) AS revenue,
       avg(d.n) AS avg_events, quantile(0.9)(d.n) AS p90,
       row_number() OVER (ORDER BY d.day) AS rn
FROM daily AS d
INNER JOIN active AS a ON a.user_id = d.user_id
LEFT JOIN (SELECT user_id, min(timestamp) AS first_seen FROM sessions GROUP BY user_id) AS s ON s.user_id = d.user_id
WHERE d.user_id NOT IN (SELECT id FROM users WHERE is_test = 1)
  AND d.day > (SELECT min(toDate(timestamp)) FROM tinybird.pipe_stats_rt)
GROUP BY d.day
UNION ALL
SELECT toDate(timestamp), count(DISTINCT user_id), 0, 0, 0, 0 FROM events WHERE kind = 'backfill' GROUP BY 1
ORDER BY 1`,
};

// A realistic 5-node pipe: filter, enrich, aggregate, rank, endpoint.
const PIPE = [
  { name: 'filtered', sql: "SELECT * FROM events WHERE timestamp >= now() - INTERVAL 7 DAY AND kind IN ('view', 'click')" },
  { name: 'enriched', sql: 'SELECT f.*, u.plan, u.country FROM filtered AS f LEFT JOIN users AS u ON u.id = f.user_id' },
  { name: 'per_country', sql: 'SELECT country, plan, count() AS hits, uniq(user_id) AS users FROM enriched GROUP BY country, plan' },
  { name: 'ranked', sql: 'SELECT *, rank() OVER (PARTITION BY plan ORDER BY hits DESC) AS r FROM per_country' },
  { name: 'endpoint', sql: 'SELECT country, plan, hits, users FROM ranked WHERE r <= 10 AND country IN (SELECT country FROM enriched GROUP BY country HAVING count() > 100) ORDER BY plan, r' },
];

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

function time(fn, minMs = 40) {
  // Runs fn in batches until minMs elapsed; returns µs per call.
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  do {
    for (let i = 0; i < 16; i++) fn();
    n += 16;
    t = performance.now();
  } while (t - t0 < minMs);
  return ((t - t0) * 1000) / n;
}

// The fastest node-sql-parser dialect that parses every statement, or null.
function baseline(sqls) {
  let best = null;
  for (const database of DIALECTS) {
    const opt = { database };
    try { for (const s of sqls) parser.parse(s, opt); } catch { continue; }
    const fn = () => { for (const s of sqls) parser.parse(s, opt); };
    const us = time(fn, 30);
    if (!best || us < best.us) best = { fn, us, database };
  }
  return best;
}

const cases = [];
for (const [name, sql] of Object.entries(QUERIES)) {
  const b = baseline([sql]);
  cases.push({
    name,
    ours: () => analyzeSql(sql, names),
    nsp: b?.fn ?? null,
    dialect: b?.database,
    ch: () => session.query('EXPLAIN AST ' + sql, 'TSVRaw'),
  });
}
const pb = baseline(PIPE.map((n) => n.sql));
cases.push({
  name: 'pipe (5 nodes)',
  ours: () => compilePipe(PIPE, names, 'endpoint'),
  nsp: pb?.fn ?? null,
  dialect: pb?.database,
  ch: () => { for (const n of PIPE) session.query('EXPLAIN AST ' + n.sql, 'TSVRaw'); },
});

// Warm up every side once, then alternate.
for (const c of cases) { c.ours(); c.nsp?.(); c.ch(); }
const results = cases.map(() => ({ ours: [], nsp: [], ch: [] }));
for (let r = 0; r < rounds; r++) {
  cases.forEach((c, i) => {
    results[i].ours.push(time(c.ours));
    if (c.nsp) results[i].nsp.push(time(c.nsp));
    results[i].ch.push(time(c.ch, 60));
  });
}

const fmt = (us) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(2)} µs`).padStart(10);
console.log(`bench/sql — ${rounds} alternating rounds, medians; node ${process.version}, ${os.cpus().length} cores`);
console.log('case'.padEnd(16), 'native'.padStart(10), 'node-sql-parser'.padStart(16), 'ratio'.padStart(8), 'EXPLAIN AST'.padStart(12), 'ratio'.padStart(8));
const ratios = [];
cases.forEach((c, i) => {
  const o = median(results[i].ours);
  const n = c.nsp ? median(results[i].nsp) : null;
  const h = median(results[i].ch);
  if (n) ratios.push(n / o);
  console.log(c.name.padEnd(16), fmt(o), (n ? fmt(n) : 'cannot parse').padStart(16), (n ? `${(n / o).toFixed(0)}×` : '—').padStart(8),
    fmt(h).padStart(12), `${(h / o).toFixed(0)}×`.padStart(8), c.dialect ? `  (node-sql-parser dialect: ${c.dialect})` : '');
});
console.log(`\nslowest ratio vs node-sql-parser: ${Math.min(...ratios).toFixed(0)}× (target ≥ 30×)`);
session.close?.();
fs.rmSync(dir, { recursive: true, force: true });
