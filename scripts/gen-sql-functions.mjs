#!/usr/bin/env node
// Generates native/core/sql/functions_allowlist.inc from ClickHouse's own function
// list (system.functions of the embedded chdb), minus a denylist of functions that
// reach outside the workspace or the machine, or reveal the server.
//
// Usage: node scripts/gen-sql-functions.mjs
//
// The allowlist is committed: a function that a later ClickHouse release adds is
// refused until this script is re-run and the diff reviewed.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const chdb = require('chdb');
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// Each entry: exact name (compared case-insensitively) and why it is refused.
const DENY_EXACT = {
  // Reading files, URLs, models or configuration on the server.
  file: 'reads a file on the server',
  catboostEvaluate: 'loads a model file from the server',
  naiveBayesClassifier: 'loads models from server config', naiveBayesClassifierWithProb: 'same', naiveBayesClassifierWithAllProbs: 'same',
  lemmatize: 'reads server-side NLP dictionaries', stem: 'same', synonyms: 'same', detectLanguageUnknown: 'same',
  // Table access by name, bypassing the table-reference analysis.
  hasColumnInTable: 'probes any table by name', getMaxTableNameLengthForDatabase: 'probes databases',
  in: 'function form of IN takes a table identifier; use the operator', notIn: 'same', globalIn: 'same', globalNotIn: 'same',
  nullIn: 'same', notNullIn: 'same', globalNullIn: 'same', globalNotNullIn: 'same',
  inIgnoreSet: 'same', notInIgnoreSet: 'same', globalInIgnoreSet: 'same', globalNotInIgnoreSet: 'same',
  nullInIgnoreSet: 'same', notNullInIgnoreSet: 'same', globalNullInIgnoreSet: 'same', globalNotNullInIgnoreSet: 'same',
  indexHint: 'internal', globalVariable: 'server variables',
  // Reveal the server, its configuration, its users or other sessions.
  hostName: 'server identity', displayName: 'same (the display_name setting, else the host name)', FQDN: 'same', fullHostName: 'same', serverUUID: 'same', uptime: 'same', buildId: 'same',
  getOSKernelVersion: 'same', tcpPort: 'same', getServerPort: 'same', showCertificate: 'server TLS certificate',
  getMacro: 'server config', getSetting: 'session settings (limits) are the operator\'s', getSettingOrDefault: 'same',
  getServerSetting: 'server config', getMergeTreeSetting: 'server config',
  shardNum: 'cluster topology', shardCount: 'same', zookeeperSessionUptime: 'same', generateSerialID: 'writes to Keeper',
  filesystemAvailable: 'server disks', filesystemCapacity: 'same', filesystemUnreserved: 'same',
  currentDatabase: 'internal database name', database: 'same', schema: 'same', current_database: 'same',
  currentSchemas: 'same', current_schemas: 'same',
  currentUser: 'internal user', user: 'same', current_user: 'same', session_user: 'same', authenticatedUser: 'same', authUser: 'same',
  currentRoles: 'same', enabledRoles: 'same', defaultRoles: 'same', currentProfiles: 'same', enabledProfiles: 'same', defaultProfiles: 'same',
  connectionId: 'session identity', connection_id: 'same', currentQueryID: 'same', queryID: 'same', query_id: 'same', current_query_id: 'same',
  initialQueryID: 'same', initial_query_id: 'same', initialQueryStartTime: 'same', initial_query_start_time: 'same',
  getClientHTTPHeader: 'other request headers',
  transactionID: 'server transactions', transactionLatestSnapshot: 'same', transactionOldestSnapshot: 'same',
  // Introspection of the server binary.
  addressToLine: 'introspection', addressToLineWithInlines: 'same', addressToSymbol: 'same', demangle: 'same',
  hasThreadFuzzer: 'test-only', logTrace: 'writes to the server log',
  // Holding a thread on purpose.
  sleep: 'holds a query thread', sleepEachRow: 'same',
  // Fuzzers (test-only, unbounded output).
  fuzzQuery: 'test-only',
};
// Patterns (tested against the name as ClickHouse spells it).
const DENY_PATTERNS = [
  [/^_/, 'internal function'],
  [/^ai[A-Z]|^AI[A-Z]/, 'calls an external AI service'],
  [/^executable/i, 'runs programs'],
  [/^s3/i, 'object storage'],
  [/^(hdfs|azure|url|remote|cluster|mysql|postgresql|jdbc|odbc|input|mongodb|redis|sqlite)$/i, 'external data'],
];
// Functions whose first argument is a dictionary or table name as a string literal:
// allowed only when that literal names an entry of the caller's name map.
const TABLE_LITERAL = /^(dictGet|dictHas|dictIsIn|joinGet)/;

const rows = chdb.query('SELECT name, is_aggregate, case_insensitive, alias_to FROM system.functions ORDER BY name', 'JSONEachRow')
  .trim().split('\n').map((l) => JSON.parse(l));
const denyLower = new Map(Object.entries(DENY_EXACT).map(([k, v]) => [k.toLowerCase(), v]));
const kept = [];
const denied = [];
for (const r of rows) {
  const target = r.alias_to || r.name;
  const why = denyLower.get(r.name.toLowerCase()) ?? denyLower.get(target.toLowerCase())
    ?? DENY_PATTERNS.find(([re]) => re.test(r.name) || re.test(target))?.[1];
  if (why) { denied.push([r.name, why]); continue; }
  let flags = 0;
  if (r.is_aggregate) flags |= 1;
  if (r.case_insensitive) flags |= 2;
  if (TABLE_LITERAL.test(r.name) || TABLE_LITERAL.test(target)) flags |= 4;
  kept.push([r.name, flags]);
}
// Names ClickHouse's parser turns into other functions before system.functions is asked, so
// absent from it: `dateAdd(unit, n, d)` / `DATE_ADD(d, INTERVAL n unit)` and the rest become
// plus/minus of an interval (Tinybird's starter kits use timestampAdd). Case-insensitive.
for (const n of ['dateAdd', 'date_add', 'timestampAdd', 'timestamp_add', 'dateSub', 'date_sub', 'timestampSub', 'timestamp_sub']) {
  if (!kept.some(([k]) => k.toLowerCase() === n.toLowerCase())) kept.push([n, 2]);
}
// The C++ side binary-searches this list with byte-wise comparison.
kept.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
const version = chdb.query('SELECT version()', 'TSV').trim();
const out = [
  `// Generated by scripts/gen-sql-functions.mjs from system.functions of ClickHouse ${version}. Do not edit.`,
  `// ${kept.length} allowed, ${denied.length} denied. Flags: 1 aggregate, 2 case-insensitive, 4 first argument names a table.`,
  `// Denied (D: named as "not allowed", apart from names ClickHouse does not have, which are "unknown"):`,
  ...kept.map(([n, f]) => `F("${n}", ${f})`),
  ...denied.map(([n]) => n).sort().map((n) => `D("${n}")`),
  '',
].join('\n');
writeFileSync(path.join(root, 'native/core/sql/functions_allowlist.inc'), out);
console.log(`allowed ${kept.length}, denied ${denied.length} (ClickHouse ${version})`);
