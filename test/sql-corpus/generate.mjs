// Builds queries.sql from base.sql: every base query, plus variants with odd
// whitespace and comments between tokens (also between a database and its '.'),
// and with keywords in another case. Quoted text is never touched.
// Usage: node test/sql-corpus/generate.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const base = readFileSync(path.join(here, 'base.sql'), 'utf8').split('\n').filter((l) => l.trim());

// Splits into [text, quoted] segments so that transforms leave literals alone.
function segments(q) {
  const out = [];
  const re = /'(?:\\.|''|[^'\\])*'|`(?:\\.|``|[^`\\])*`|"(?:\\.|""|[^"\\])*"|\$(\w*)\$[\s\S]*?\$\1\$|--[^\n]*|#[^\n]*|\/\*[\s\S]*?\*\//g;
  let last = 0;
  for (const m of q.matchAll(re)) {
    if (m.index > last) out.push([q.slice(last, m.index), false]);
    out.push([m[0], true]);
    last = m.index + m[0].length;
  }
  if (last < q.length) out.push([q.slice(last), false]);
  return out;
}
const map = (q, f) => segments(q).map(([s, quoted], i) => (quoted ? s : f(s, i))).join('');

const spaces = ['  ', '\n', '\t', ' /* c */ ', '\n-- note\n ', ' \r\n '];
let k = 0;
const oddSpace = (q) => map(q, (s) => s.replace(/ /g, () => spaces[k++ % spaces.length])
  .replace(/\b(tinybird|roost)\.(\w)/g, (_, db, c) => `${db} /* x */ .\n${c}`));
const KW = /\b(select|from|where|join|left|inner|on|using|with|as|union|all|in|not|global|group|order|by|limit|array|exists|final|format|settings|cross|any|distinct)\b/gi;
const flipCase = (q) => map(q, (s) => s.replace(KW, (w) => (w === w.toUpperCase() ? w.toLowerCase() : w.toUpperCase())));
const quoteDb = (q) => map(q, (s) => s.replace(/\b(tinybird|roost)\.(\w+)/g, '`$1`.`$2`'));

const out = [];
for (const q of base) {
  out.push(q);
  out.push(oddSpace(q));
  if (/(tinybird|roost)\./.test(q)) out.push(quoteDb(q));
  if (new RegExp(KW.source, "i").test(q)) out.push(flipCase(q));
}
writeFileSync(path.join(here, 'queries.sql'), out.join('\n-- ----\n') + '\n');
console.log(`${out.length} queries`);
