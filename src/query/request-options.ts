/**
 * What a `/v0/sql` or endpoint request says about its output besides the SQL: Tinybird's
 * output request parameters, the spelling of a `FORMAT` clause, and whether a body sent as a
 * form is one (curl `--data "SELECT ..."` sends raw SQL with the form content type).
 */
import { RoostError } from '../errors.js';

/**
 * Request parameters Tinybird's Query API and endpoints take to shape JSON output (ClickHouse
 * output settings of the same names; `0`/`1`). They only change how values are written, never
 * what is read or what it costs, so they go to the engine as settings.
 */
export const OUTPUT_PARAMS = ['output_format_json_quote_64bit_integers', 'output_format_json_quote_denormals'] as const;

export function isOutputParam(k: string): boolean {
  return (OUTPUT_PARAMS as readonly string[]).includes(k);
}

/** The engine settings for the output parameters given (`get` answers a parameter's value, if sent). */
export function outputSettings(get: (k: string) => string | undefined): Record<string, number> | undefined {
  let out: Record<string, number> | undefined;
  for (const k of OUTPUT_PARAMS) {
    const v = get(k);
    if (v === undefined) continue;
    const t = v.trim().toLowerCase();
    const n = t === '1' || t === 'true' ? 1 : t === '0' || t === 'false' || t === '' ? 0 : undefined;
    if (n === undefined) throw new RoostError('INVALID_PARAMETER', `${k} must be 0 or 1, not ${JSON.stringify(v.slice(0, 40))}`, { details: { parameter: k } });
    (out ??= {})[k] = n;
  }
  return out;
}

/**
 * Whether a body sent as `application/x-www-form-urlencoded` is a form: every `&`-separated field
 * starts with a parameter name followed by `=` (or is a bare name). SQL never does (a keyword is
 * followed by a space), so `curl --data "SELECT * FROM t WHERE a = 1"` is raw SQL, as Tinybird's
 * own examples send it.
 */
export function looksLikeForm(text: string): boolean {
  const t = text.trim();
  if (!t) return true;
  return t.split('&').every((f) => f === '' || /^[A-Za-z0-9_.\-~%[\]+]+(?:=|$)/.test(f));
}

/** The output formats the analyzer allows, as ClickHouse spells them. */
const FORMATS = ['CSV', 'CSVWithNames', 'TSV', 'TSVWithNames', 'JSONEachRow', 'Parquet', 'JSON'];
/** ClickHouse's other names of those formats (lower case): `FORMAT TabSeparated` was refused. */
const ALIASES: Record<string, string> = { tabseparated: 'TSV', tabseparatedwithnames: 'TSVWithNames', jsonlines: 'JSONEachRow', ndjson: 'JSONEachRow' };

/**
 * ClickHouse reads format names case-insensitively (`FORMAT csv`, `FORMAT jsoneachrow`), and some
 * by other names (`TabSeparated`, `JSONLines`); the analyzer knows them as spelled in FORMATS. Given the query and the byte offset the analyzer refused a
 * format name at, answers the query with that name spelled as the analyzer knows it, or with
 * `replacement` (when the name does not matter: an endpoint's extension picks the format); or
 * undefined when the name is no allowed format in any case.
 */
export function respellFormat(sql: string, offset: number, replacement?: string): string | undefined {
  const bytes = Buffer.from(sql, 'utf8');
  if (offset < 0 || offset >= bytes.length) return undefined;
  const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(bytes.subarray(offset, offset + 64).toString('latin1'));
  if (!m) return undefined;
  const known = FORMATS.find((f) => f.toLowerCase() === m[0].toLowerCase()) ?? ALIASES[m[0].toLowerCase()];
  const name = replacement ?? known;
  if (!name || (!replacement && name === m[0])) return undefined;
  return Buffer.concat([bytes.subarray(0, offset), Buffer.from(name), bytes.subarray(offset + m[0].length)]).toString('utf8');
}
