/** Schema suggestion for NDJSON samples: one column per leaf path of the objects seen. */
import { quoteIdent } from '../cells/engine.js';
import { ExactNumber, exactJson } from './json-exact.js';
import { QUARANTINE_OWN } from '../datasources/registry.js';
import { jsonPathClause } from '../native/csv.js';

export interface NdjsonColumn { name: string; type: string; nullable: boolean; jsonPath: string; presentPct: number }

type Kind = 'int' | 'uint' | 'uint64' | 'float' | 'bool' | 'date' | 'date32' | 'datetime' | 'datetime64' | 'string' | 'array' | 'null';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** A date, or a date and time: year, month, day, the fraction of a second with its dot, the offset. */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?)?$/;

function kindOf(v: unknown): Kind {
  if (v === null) return 'null';
  if (v instanceof ExactNumber) {
    // An integer beyond 2^53 (or a long decimal): its text decides.
    if (!/^-?\d+$/.test(v.text)) return 'float';
    // Past what Int64 and UInt64 hold: a String of the text as sent, as the CSV inference says
    // (Float64 kept 17 digits of 18446744073709551616 and stored -9223372036854775809 as
    // -9223372036854775808, silently; found by a black-box round).
    const b = BigInt(v.text);
    if (b < INT64_MIN) return 'string';
    if (b < 0n) return 'int';
    return b <= INT64_MAX ? 'uint' : b <= UINT64_MAX ? 'uint64' : 'string';
  }
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? (v < 0 ? 'int' : 'uint') : 'float';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'string') {
    // A date the type holds: Date from 1970 to 2149-06-06, Date32 (and DateTime64) from 1900 to
    // 2299 (a 1960 date was suggested as Date, and its row quarantined by the schema it suggested).
    const d = DATE_TIME.exec(v);
    if (!d) return 'string';
    const day = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]));
    if (new Date(day).toISOString().slice(0, 10) !== v.slice(0, 10)) return 'string';
    const year = Number(d[1]);
    if (year < 1900 || year > 2299) return 'string';
    if (v.length === 10) return day >= Date.UTC(1970, 0, 1) && day <= Date.UTC(2149, 5, 6) ? 'date' : 'date32';
    // A time at the range's first or last day may fall outside it once its offset is applied.
    if (day < Date.UTC(1900, 0, 2) || day > Date.UTC(2299, 11, 30)) return 'string';
    // Whole seconds are a DateTime, as the CSV inference says, within its range (a day of margin
    // for an offset); fractions, and times outside it, need DateTime64(3).
    if (d[4] || day < Date.UTC(1970, 0, 2) || day > Date.UTC(2106, 1, 6)) return 'datetime64';
    return 'datetime';
  }
  return 'string';
}

function merge(a: Kind | undefined, b: Kind): Kind {
  if (!a || a === 'null') return b;
  if (b === 'null' || a === b) return a;
  const num = new Set<Kind>(['int', 'uint', 'uint64', 'float']);
  if (num.has(a) && num.has(b)) {
    if (a === 'float' || b === 'float') return 'float';
    // Negatives beside integers past Int64's maximum: no integer type ingest takes holds both
    // (Float64 rounded 18446744073709551615 to 18446744073709552000, silently; ClickHouse refuses
    // to infer the mix). String, as other kinds that do not mix: each number's text as sent.
    if (a === 'uint64' || b === 'uint64') return a === 'int' || b === 'int' ? 'string' : 'uint64';
    return 'int';
  }
  const times = new Set<Kind>(['date', 'date32', 'datetime', 'datetime64']);
  if (times.has(a) && times.has(b)) {
    if ((a === 'date' || a === 'date32') && (b === 'date' || b === 'date32')) return 'date32';
    return a === 'datetime64' || b === 'datetime64' || a === 'date32' || b === 'date32' ? 'datetime64' : 'datetime';
  }
  return 'string';
}

/** The last whole day a DateTime64(9) holds (to 2262-04-11 23:47:16). */
const LAST_DAY_NS = Date.UTC(2262, 3, 10);

/** A time's fraction digits and day, kept for its column's DateTime64 precision. */
function noteTime(s: { frac?: number; lastDay?: number }, v: string): void {
  const d = DATE_TIME.exec(v)!;  // (a time kindOf took by this pattern)
  if (d[4]) s.frac = Math.max(s.frac ?? 0, d[4].length - 1);
  s.lastDay = Math.max(s.lastDay ?? 0, Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3])));
}

const TYPE: Record<Kind, string> = { int: 'Int64', uint: 'Int64', uint64: 'UInt64', float: 'Float64', bool: 'Bool', date: 'Date', date32: 'Date32', datetime: 'DateTime', datetime64: 'DateTime64(3)', string: 'String', array: 'Array(String)', null: 'String' };

export function inferNdjson(sample: string, maxRows = 10_000): NdjsonColumn[] {
  // frac: the longest fraction of a second among the path's times; lastDay: its latest day (ms).
  const stats = new Map<string, { kind?: Kind; seen: number; nulls: number; elem?: Kind; elemNull?: boolean; path: string; frac?: number; lastDay?: number }>();
  // Paths holding an object in some line, and in how many lines.
  const objects = new Map<string, number>();
  let rows = 0;
  const walk = (obj: Record<string, unknown>, path: string, name: string) => {
    for (const [k, v] of Object.entries(obj)) {
      const p = /^[\p{L}_][\p{L}\p{N}_]*$/u.test(k) ? `${path}.${k}` : `${path}['${k.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}']`;
      const n = name ? `${name}_${k}` : k;
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof ExactNumber)) {
        objects.set(p, (objects.get(p) ?? 0) + 1);
        walk(v as Record<string, unknown>, p, n);
        continue;
      }
      let s = stats.get(p);
      if (!s) stats.set(p, (s = { seen: 0, nulls: 0, path: p }));
      s.seen++;
      const kind = kindOf(v);
      if (kind === 'null') s.nulls++;
      s.kind = merge(s.kind, kind);
      if (kind === 'datetime64' || kind === 'datetime') noteTime(s, v as string);
      if (kind === 'array') {
        for (const e of v as unknown[]) {
          const k = kindOf(e);
          // A null element needs a Nullable element type (`["x", null]` was suggested as Array(String)).
          if (k === 'null') s.elemNull = true;
          s.elem = merge(s.elem, k === 'array' ? 'string' : k);
        }
      }
      (s as { name?: string }).name ??= n.replace(/[^\p{L}\p{N}_]/gu, '_').replace(/^(\p{N})/u, '_$1');
    }
  };
  for (const line of sample.split('\n')) {
    if (rows >= maxRows) break;
    const t = line.trim();
    if (!t) continue;
    try {
      // Every number's text (`everyNumber`): `10.0` and `1e2` are Float64 as ClickHouse infers
      // them (the double 10 said Int64, and a later 10.5 was quarantined by the schema).
      const o = exactJson(t, JSON.parse(t), true) as Record<string, unknown> | null;
      if (o && typeof o === 'object' && !Array.isArray(o) && !(o instanceof ExactNumber)) { rows++; walk(o, '$', ''); }
    } catch { /* a partial last line of a sample */ }
  }
  // A path that is an object in some lines and a value (a number, a string, an array) in others:
  // one String column holding each line's value as text, objects as their JSON text. Its keys'
  // columns as well suggested a schema that quarantined lines of the very sample (the value at
  // `$.k.x` of a line where `k` is 0.5 is missing, and `$.k` an object in a Float64 column).
  for (const [p, times] of objects) {
    const s = stats.get(p);
    if (!s) continue;
    // An object or null: its keys' columns (Nullable, as the lines without the object lack them), no column of its own.
    if (s.kind === undefined || s.kind === 'null') { stats.delete(p); continue; }
    s.kind = 'string';
    s.seen += times;
    delete s.elem;
    for (const q of [...stats.keys()]) if (q.startsWith(`${p}.`) || q.startsWith(`${p}[`)) stats.delete(q);
  }
  // Names are unique: keys differing only in characters a name cannot hold (`a.b` and `a_b`, or
  // `ñ` and `é` before letters were kept) became one name twice, and the schema was refused. The
  // quarantine's own columns (`insertion_date`, `c__error`, ...) are taken too: a create refuses
  // them, so a key of that name is suggested as `insertion_date_2`.
  const used = new Set<string>(QUARANTINE_OWN);
  return [...stats.values()].map((s, index) => {
    let base = (s as { name?: string }).name!;
    if (/^_*$/.test(base)) base = `column_${String(index).padStart(2, '0')}`;
    let name = base;
    for (let k = 2; used.has(name); k++) name = `${base}_${k}`;
    used.add(name);
    let type = TYPE[s.kind ?? 'string'];
    // The sample's own precision, as the CSV inference says it (3, 6 or 9 digits): DateTime64(3)
    // for every fraction cut the sample's micro- and nanoseconds silently. Nine digits hold
    // times up to 2262-04-11 only: later ones leave the column a String, as in CSV.
    if (s.kind === 'datetime64') {
      const digits = s.frac ?? 0;
      const p = digits <= 3 ? 3 : digits <= 6 ? 6 : 9;
      type = p === 9 && (s.lastDay ?? 0) > LAST_DAY_NS ? 'String' : `DateTime64(${p})`;
    }
    if (s.kind === 'array') {
      const elem = TYPE[s.elem ?? 'string'];
      type = `Array(${s.elemNull ? `Nullable(${elem})` : elem})`;
    }
    const nullable = (s.nulls > 0 || s.seen < rows) && s.kind !== 'array';
    return { name, type: nullable ? `Nullable(${type})` : type, nullable, jsonPath: s.path, presentPct: rows ? s.seen / rows : 0 };
  });
}

export function ndjsonSchemaText(cols: NdjsonColumn[]): string {
  return cols.map((c) => `${quoteIdent(c.name)} ${c.type} ${jsonPathClause(c.jsonPath)}`).join(', ');
}
