/**
 * Data sources API (Tinybird v0): create/append/replace from CSV or NDJSON,
 * list, get, truncate, delete rows, drop; `/v0/analyze`.
 */
import { chTime } from '../service/time.js';
import { countingBytes } from '../log/metrics.js';
import crypto from 'node:crypto';
import type { App } from '../app.js';
import type { Ctx } from '../http/context.js';
import { beginCommit, bodyStream, formOf, mergeForm, readBody, readJson, sendJson, sendText, textOf } from '../http/context.js';
import { datasourceDatafile } from '../datasources/datafile.js';
import { multipartBoundary, readMultipart, partText, type Part } from '../http/multipart.js';
import { yesOrNo } from '../http/fields.js';
import { QueryFailed, RoostError } from '../errors.js';
import { authenticate, authorize, authorizeConditionRead, credentialName, decide, pipesSeenBy, readFilter, stillAuthorized, workspaceOf, type Credential } from '../../auth/authorize.js';
import { getTenant, getWorkspace, sameWorkspace, type Workspace } from '../../tenants/registry.js';
import {
  checkDataSourceName, checkDefaultsSupported, createQuarantine, createTables, deleteDataSourceOps, deleteRowsWhere, getDataSource, listDataSources, newDataSource,
  putDataSourceOps, qualified, type DataSource, type DataSourceColumn,
} from '../datasources/registry.js';
import { csvToRoost, firstRecord, importRows, withDataSourceLock, type ImportResult, type ImportSource } from '../ingest/import.js';
import { checkJsonPath, ndjsonShaped, ndjsonSource } from '../ingest/ndjson.js';
import { charsetOf, csvLead, gunzipIfCompressed, peekBody, type Peeked } from '../ingest/peek.js';
import { inferNdjson, ndjsonSchemaText } from '../ingest/ndjson-infer.js';
import { dialectProblem, formatSchema, inferCsvSchema, parseSchema, type CsvDialect } from '../native/csv.js';
import { analyzeSql, SqlError, toRoostError, type NameMapEntry } from '../native/sql.js';
import { rowFiltersOf, workspaceNameMap } from '../datasources/name-map.js';
import { queryTimeoutMs } from '../query/run.js';
import { callsFunction, sqlTextEscapes } from '../query/sql-text.js';
import { quoteIdent, quoteString, type Engine } from '../cells/engine.js';
import { jobsOf, ownerKey } from '../../tenants/jobs.js';
import { publicErrorText } from '../query/public-names.js';
import { findPipe } from '../pipes/pipe.js';
import { nameHolder, quarantineClash, refuseTakenName, renameReferencesOps, dropReferencesOps } from '../state/resource-names.js';
import type { State } from '../state/state.js';
import type { Op } from '../state/store.js';
import type { DropHold } from '../../tenants/drop-later.js';
import { checkDescription, nothingToChange, updateParams } from './update-params.js';

const MODES = ['create', 'append', 'replace'] as const;
const FORM_KEYS = new Set(['name', 'mode', 'format', 'schema', 'engine_sorting_key', 'dialect_delimiter', 'dialect_new_line', 'dialect_escapechar', 'dialect_quotechar', 'type_guessing', 'replace_condition', 'token', 'url', 'header', 'dialect_header', 'delete_condition', 'dry_run', 'description']);
type Mode = (typeof MODES)[number];
const FORMATS = ['csv', 'ndjson'] as const;
type Format = (typeof FORMATS)[number];

interface Incoming {
  params: URLSearchParams;
  body: AsyncIterable<Buffer> | undefined;
  /** Format implied by a multipart field name. */
  fieldFormat?: Format;
  /** The text encoding the data part (or the request) declares, when one is: decoded into UTF-8. */
  charset?: string;
}

/**
 * Tinybird's engine options that change what the table keeps (another engine: deduplication,
 * sums; a TTL: deletion) are refused rather than ignored: the data source would be a plain
 * MergeTree keeping every row for ever, and nothing would say so. `engine=MergeTree` is what
 * Roost creates anyway. (`engine_partition_key` only lays parts out and stays ignored.)
 */
function refuseUnappliedEngineOptions(params: URLSearchParams): void {
  const engine = params.get('engine');
  if (engine && engine !== 'MergeTree') {
    throw new RoostError('INVALID_PARAMETER', `engine=${engine} is not supported: data sources are MergeTree tables (leave engine out, or engine=MergeTree)`, { details: { parameter: 'engine' } });
  }
  for (const k of ['engine_ttl', 'engine_ver', 'engine_sign', 'engine_version', 'engine_is_deleted', 'engine_summing_columns']) {
    if (params.get(k)) throw new RoostError('INVALID_PARAMETER', `${k} is not supported: data sources are MergeTree tables without TTL (leave it out)`, { details: { parameter: k } });
  }
}

/** `name=…` with a name as parameters have. */
const FORM_FIELD = /^[A-Za-z_][A-Za-z0-9_]*=/;
/** `name=…` naming one of the import's own parameters (not `token`, which any request may carry). */
function importField(kv: string): boolean {
  return FORM_FIELD.test(kv) && !kv.startsWith('token=') && FORM_KEYS.has(kv.slice(0, kv.indexOf('=')));
}

/** What a data source was made from: NDJSON when its columns have JSON paths. */
function formatOfDataSource(ds: DataSource): Format {
  return ds.columns.some((c) => c.jsonPath) ? 'ndjson' : 'csv';
}

/** A body whose first characters (`head`) open a JSON object, after blanks and a BOM: NDJSON. */
function looksLikeNdjson(head: Buffer): boolean {
  return /^\s*\{/.test(head.subarray(0, 256).toString('utf8'));
}

/** The format a media type names: JSON types are NDJSON, `text/csv` CSV, others none. */
function mediaFormat(type: string | undefined): Format | undefined {
  if (!type) return undefined;
  if (/json/i.test(type)) return 'ndjson';
  if (/^\s*text\/csv\b/i.test(type)) return 'csv';
  return undefined;
}

/**
 * The format a multipart data part names: its file name's extension first (`rows.ndjson.gz`,
 * `events.jsonl`, `rows.csv`), then its field name (`ndjson`, `csv`), then its media type.
 * Tinybird's SDK sends every file in a field named `csv` and tells the format only by the
 * file name: an NDJSON file was read as CSV and every line quarantined.
 */
function partFormat(part: Part): Format | undefined {
  const ext = /\.(ndjson|jsonl|json|csv)(?:\.gz)?$/i.exec(part.filename ?? '')?.[1]?.toLowerCase();
  if (ext) return ext === 'csv' ? 'csv' : 'ndjson';
  if (part.name === 'ndjson' || part.name === 'csv') return part.name;
  return mediaFormat(part.contentType);
}

/**
 * The format of an upload: `format=` when given, else what a multipart part or the request's
 * media type names, else the body's own look (a first non-blank character `{` is NDJSON, as
 * /v0/analyze reads it; CSV otherwise). An NDJSON body sent without `format=` was read as CSV:
 * every line quarantined, or on a create a data source of `column_00`... Strings.
 */
async function formatOf(params: URLSearchParams, implied: Format | undefined, body: AsyncIterable<Buffer> | undefined): Promise<{ format: Format; body: AsyncIterable<Buffer> | undefined }> {
  const given = params.get('format');
  if ((given !== null && given !== '') || implied || !body) return { format: oneOf<Format>('format', given, FORMATS, implied ?? 'csv'), body };
  // The first chunk decides (a streamed body's first rows are not held back for more), unless it
  // is only blank so far.
  let s = await peekBody(body, 1);
  if (!s.complete && !s.head.toString('utf8').trim()) s = await peekBody(s.body, 256);
  return { format: looksLikeNdjson(s.head) ? 'ndjson' : 'csv', body: s.body };
}

/** Splits the request into parameters and the (streamed) data body. */
async function incoming(ctx: Ctx, limit: number): Promise<Incoming> {
  const params = new URLSearchParams(ctx.query);
  const type = String(ctx.req.headers['content-type'] ?? '');
  const boundary = multipartBoundary(type);
  if (boundary) {
    const parts = readMultipart(bodyStream(ctx, limit), boundary)[Symbol.asyncIterator]();
    const formKeys = new Set<string>();
    for (let r = await parts.next(); !r.done; r = await parts.next()) {
      const part = r.value;
      if (part.filename !== undefined || part.name === 'csv' || part.name === 'ndjson' || part.name === 'file') {
        const fieldFormat = partFormat(part);
        // The data part streams into the import, so the fields after it arrive too late to
        // be used. One that would change what the request does (mode=replace after the
        // file, a replace_condition, another file) fails the import before it is applied
        // rather than being ignored; fields of other names are ignored as anywhere else.
        const body = (async function* () {
          yield* part.body;
          for (let n = await parts.next(); !n.done; n = await parts.next()) {
            const late = n.value;
            if (late.filename !== undefined || late.name === 'csv' || late.name === 'ndjson' || late.name === 'file') {
              throw new RoostError('BAD_REQUEST', `multipart body with a second data part ("${late.name}"); send one file per request (nothing was stored)`);
            }
            const value = await partText(late, 1 << 20);
            if (FORM_KEYS.has(late.name) && late.name !== 'token' && value !== (params.get(late.name) ?? '')) {
              throw new RoostError('INVALID_PARAMETER', `multipart field "${late.name}" comes after the data part "${part.name}", too late to be used; send it before the file or in the URL (nothing was stored)`);
            }
          }
        })();
        return { params, body, fieldFormat, charset: charsetOf(part.contentType) ?? charsetOf(type) };
      }
      setField(params, part.name, await partText(part, 1 << 20), formKeys);
    }
    return { params, body: undefined };
  }
  if (type.startsWith('application/x-www-form-urlencoded')) {
    // curl --data-binary sends rows with this type too: it is a form only when it
    // reads as one (known keys), else it is the data.
    // Rows appended to (or replacing those of) a data source the URL names: the body is the rows,
    // whatever it reads like (a CSV line `name=hello` was taken for a form naming another data
    // source: 404, the row not stored).
    // (A body that is only an import-from-URL form, `url=...`, as Tinybird's SDK sends it, is
    // still read as one: the URL import is then refused with its reason.)
    const urlMode = params.get('mode');
    let s = await peekBody(bodyStream(ctx, limit), 64 * 1024);
    if (params.get('name') && (urlMode === 'append' || urlMode === 'replace')) {
      const head = s.head.toString('latin1');
      const fields = head.trim().split('&');
      const urlForm = s.complete && !/[\r\n]/.test(head.trim()) && fields.every((kv) => kv.startsWith('token=') || importField(kv))
        && fields.some((kv) => kv.startsWith('url='));
      if (!urlForm) return { params, body: s.head.length ? s.body : undefined };
    }
    let text = s.head.toString('utf8');
    // A form longer than the first look (a schema of thousands of columns, moved out of a URL
    // too long for it) is read whole, up to --max-body: it was taken for the data and became a
    // data source with one column named after the form.
    if (!s.complete && importField(text) && !/[\r\n]/.test(text)) {
      s = await peekBody(s.body, ctx.maxBodyBytes + 1);
      if (!s.complete || s.head.length > ctx.maxBodyBytes) {
        if (!/[\r\n]/.test(s.head.toString('latin1'))) throw new RoostError('BODY_TOO_LARGE', `the form body (the request's parameters) is over ${ctx.maxBodyBytes} bytes (--max-body); send the rows as the body, with the parameters in the URL or a multipart form`);
      } else text = s.head.toString('utf8');
    }
    // Clients add fields of their own (from=, cli_version=, __tb__*): a form is fields named like
    // parameters, at least one of them ours; unknown ones are ignored as in the query string.
    const fields = text.split('&');
    const looksLikeForm = s.complete && text.length > 0 && fields.every((kv) => FORM_FIELD.test(kv)) && fields.some(importField);
    if (looksLikeForm || s.head.length === 0) {
      const formKeys = new Set<string>();
      for (const [k, v] of formOf(textOf(s.head))) setField(params, k, v, formKeys);
      return { params, body: undefined };
    }
    return { params, body: s.body, charset: charsetOf(type) };
  }
  const declared = ctx.req.headers['content-length'];
  const chunked = ctx.req.headers['transfer-encoding'];
  if (declared === '0' || (declared === undefined && !chunked)) return { params, body: undefined };
  return { params, body: bodyStream(ctx, limit), charset: charsetOf(type) };
}

/** incoming(), with a gzip file sent as it is (no Content-Encoding) uncompressed. */
async function incomingData(ctx: Ctx, limit: number): Promise<Incoming> {
  const r = await incoming(ctx, limit);
  return r.body ? { ...r, body: await gunzipIfCompressed(r.body, limit, dialectFrom(r.params).delimiter, r.charset) } : r;
}

function oneOf<T extends string>(name: string, v: string | null, allowed: readonly T[], def: T): T {
  if (v === null || v === '') return def;
  if (!(allowed as readonly string[]).includes(v)) {
    throw new RoostError(name === 'mode' ? 'UNSUPPORTED_MODE' : 'UNSUPPORTED_FORMAT', `${name} must be one of ${allowed.join(', ')}; got "${v}"`);
  }
  return v as T;
}

/**
 * The body with Excel's `sep=` line and lines of spaces before the first row left empty (csvLead);
 * the `sep=` line's delimiter becomes the dialect's unless dialect_delimiter gives one.
 */
async function withCsvLead(body: AsyncIterable<Buffer>, dialect: Partial<CsvDialect>): Promise<AsyncIterable<Buffer>> {
  const r = await csvLead(body, dialect.delimiter);
  if (r.delimiter !== undefined && dialect.delimiter === undefined) dialect.delimiter = r.delimiter;
  return r.body;
}

function dialectFrom(p: URLSearchParams): Partial<CsvDialect> {
  const d: Partial<CsvDialect> = {};
  const delim = p.get('dialect_delimiter');
  if (delim !== null) d.delimiter = delim === '\\t' ? '\t' : delim;
  const esc = p.get('dialect_escapechar');
  if (esc !== null) d.escape = esc;
  const quote = p.get('dialect_quotechar');
  if (quote !== null) d.quote = quote;
  const problem = dialectProblem(d);
  if (problem) throw new RoostError('INVALID_PARAMETER', problem);
  const nl = p.get('dialect_new_line');
  if (nl !== null && !['\\n', '\\r\\n', '\\r', '\n', '\r\n', '\r'].includes(nl)) {
    throw new RoostError('INVALID_PARAMETER', 'dialect_new_line must be \\n, \\r\\n or \\r (line ends are also detected by themselves)');
  }
  return d;
}

function schemaColumns(text: string): DataSourceColumn[] {
  let columns: DataSourceColumn[];
  try {
    columns = parseSchema(text).map((c) => ({ name: c.name, type: c.type, nullable: c.nullable, jsonPath: c.jsonPath, defaultExpr: c.defaultExpr }));
  } catch (e) {
    throw csvToRoost(e);
  }
  for (const c of columns) if (c.defaultExpr) checkTableExpression(c.defaultExpr, `the DEFAULT of column ${c.name}`);
  // A JSON path ingestion cannot read is refused here, not at every append (a data source made
  // with one took /v0/events with 202 and never stored them).
  for (const c of columns) {
    if (!c.jsonPath) continue;
    try {
      checkJsonPath(c.jsonPath, c.type);
    } catch (e) {
      throw new RoostError('SCHEMA_SYNTAX', `column ${c.name}: ${(e as Error).message}`, { details: { column: c.name } });
    }
  }
  return columns;
}

/**
 * A DEFAULT expression or an engine_sorting_key: SQL that goes into the data source's CREATE
 * TABLE, where the engine runs it as the server, outside every rule /v0/sql applies. It must be
 * one expression (brackets, quotes and comments closed, no ';': nothing that leaves its
 * parentheses in the statement, registry.ts) over the table's own columns: no other table, and
 * only the functions a query may call. Before this, `engine_sorting_key=x AS SELECT * FROM
 * file('/etc/passwd', LineAsString) --` made a data source of any file the server could read,
 * and `DEFAULT file('...')` filled a column with one.
 */
export function checkTableExpression(text: string, what: string): void {
  const refuse = (why: string, sqlCode?: string) =>
    new RoostError('SCHEMA_SYNTAX', `${what} must be one SQL expression over the data source's own columns: ${why}`, sqlCode ? { details: { sql_code: sqlCode } } : undefined);
  if (!text.trim()) throw refuse('it is empty');
  const escapes = conditionEscapes(text);
  if (escapes) throw refuse(escapes);
  let analysis;
  try {
    analysis = analyzeSql(`SELECT (${text}\n)`, {});
  } catch (e) {
    if (e instanceof SqlError && e.code === 'UNKNOWN_TABLE') throw refuse('it names a table or dictionary', e.code);
    if (e instanceof SqlError) throw refuse(e.message, e.code);
    throw e;
  }
  if (analysis.format) throw refuse('it holds a FORMAT clause');
  if (analysis.tables.length) throw refuse('it names a table', 'UNKNOWN_TABLE');
}

/**
 * An engine error about a condition (delete_condition, replace_condition) as a credential that
 * may not read the data source gets it: ClickHouse's messages quote the values they stumbled on
 * ("Cannot parse string 'secretkey' as UInt8"), and `DATASOURCES:DROP` or `DATASOURCES:APPEND`
 * are no read access. Its code stays; its text says what happened without the values.
 */
export function conditionFailure(e: unknown, cred: Credential, ws: Workspace, param: string, ds: string, columns?: readonly string[]): unknown {
  if (!(e instanceof QueryFailed)) return e;
  // The engine's syntax error: said of the condition, not of the statement Roost built around it
  // (its message quoted `... = 1\n) SETTINGS readonly = 1` and a position in that statement).
  if (e.clickhouseCode === 62) {
    const m = /failed at position \d+ \(([^)]*)\)(?: \(line \d+, col \d+\))?: ([\s\S]*?)(?:\. Expected (?:one of: )?([\s\S]*?))?\.? \(SYNTAX_ERROR\)/.exec(e.message);
    const rest = m ? m[2]!.split('\n)')[0]!.trim() : '';
    // Stopped at Roost's own text after the condition (its closing bracket, SETTINGS): the
    // condition ended before it was complete.
    const ended = !m || !rest || /^\)|^SETTINGS\b|^\)\)/.test(rest);
    const where = ended ? 'at its end: the condition is not complete' : `at "${rest.slice(0, 80)}"`;
    const expected = m?.[3] ? `; expected one of: ${m[3].split(', ').filter((x) => !/SETTINGS|end of query/.test(x)).slice(0, 8).join(', ')}` : '';
    return new RoostError('SQL_SYNTAX', `${param} is not one SQL expression: the engine's parser stopped ${where}${expected}`, { details: { parameter: param, clickhouse_code: 62 } });
  }
  // A name that is not a column (UNKNOWN_IDENTIFIER): the user's mistake, said in the data
  // source's terms (the engine's text quotes the statement Roost built around the condition).
  const unknown = e.clickhouseCode === 47 ? /identifier [`']([^`']+)[`']|Missing columns: '([^']+)'/.exec(e.message) : null;
  if (unknown && columns) {
    const name = unknown[1] ?? unknown[2]!;
    return new RoostError('INVALID_PARAMETER', `${param} names ${JSON.stringify(name)}, which is not a column of "${ds}"; its columns: ${columns.join(', ')}`, { details: { parameter: param, column: name } });
  }
  if (decide(cred, { op: 'workspace', tenant: ws.tenant, workspace: ws.name, scope: 'DATASOURCES:READ', resource: ds }) === undefined) return e;
  return new QueryFailed(
    `the engine refused ${param} (ClickHouse code ${e.clickhouseCode ?? 'unknown'}); its message would quote values of "${ds}", which this token may not read (DATASOURCES:READ:${ds}): check the condition's types, or ask with a token that may read it`,
    e.clickhouseCode,
  );
}

/**
 * A condition that is no condition the engine evaluates alike in every statement Roost runs it in
 * (a rows delete's count and mutation, a partial replace): a value of another type than an
 * integer, Float32/64 or Bool (`g` alone for a String column, `now()`, an Enum, a Decimal). The
 * mutation refused those with its own rewrite in the text (`isZeroOrNull`), after a dry run had
 * counted them as true (`!= 0`); a replace quoted `NOT coalesce((g), 0)`. The type is asked of the
 * engine (`LIMIT 0`: no row is read); undefined when it is one of those, or cannot be told (the
 * statement itself then says what is wrong).
 */
export async function conditionTypeProblem(engine: Engine, ws: Workspace, ds: DataSource, where: string, param: string): Promise<RoostError | undefined> {
  let type: string | undefined;
  try {
    const out = (await engine.exec(`SELECT (${where}) AS c FROM ${qualified(ws, ds.table)} LIMIT 0 FORMAT JSONCompact`, { settings: { readonly: 1 } })).toString('utf8');
    type = (JSON.parse(out) as { meta?: Array<{ type?: string }> }).meta?.[0]?.type;
  } catch {
    return undefined;
  }
  if (!type) return undefined;
  let bare = type;
  for (let m; (m = /^(?:Nullable|LowCardinality)\((.*)\)$/.exec(bare)); ) bare = m[1]!;
  if (/^(?:U?Int\d+|Float(?:32|64)|Bool|Nothing)$/.test(bare)) return undefined;
  return new RoostError('INVALID_PARAMETER', `${param} must be a condition, true or false for each row; it is a value of type ${type}: compare it with something, e.g. "country = 'ES'" or "amount != 0"`, { details: { parameter: param, type } });
}

export function dataSourceView(ds: DataSource, stats?: { rows: number; bytes: number; quarantine: number }): Record<string, unknown> {
  return {
    id: ds.id,
    name: ds.name,
    // What the data source is fed: columns with JSON paths are read from NDJSON (events).
    type: formatOfDataSource(ds),
    description: ds.description ?? '',
    created_at: ds.createdAt,
    updated_at: ds.updatedAt ?? ds.createdAt,
    engine: { engine: ds.engine, sorting_key: ds.sortingKey },
    schema: {
      sql_schema: formatSchema(ds.columns),
      // Every field present, null when unset (a CSV data source's columns have no JSON path).
      columns: ds.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable, jsonpath: c.jsonPath ?? null, default_value: c.defaultExpr ?? null })),
    },
    ...(stats ? { statistics: { row_count: stats.rows, bytes: stats.bytes }, quarantine_rows: stats.quarantine } : {}),
  };
}

async function tableStats(app: App, ws: Workspace, ds: DataSource): Promise<{ rows: number; bytes: number; quarantine: number }> {
  const tenant = getTenant(app.state, ws.tenant);
  const engine = app.cells.engineFor(tenant);
  // Under the query time limit: a remote server that does not answer held a GET for the client
  // library's 300 s.
  const out = (await engine.exec(
    `SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts WHERE active AND database = ${quoteString(ws.database)} AND table IN (${quoteString(ds.table)}, ${quoteString(`${ds.table}_quarantine`)}) GROUP BY table`,
    { timeoutMs: queryTimeoutMs(tenant, app.config) },
  )).toString('utf8');
  const r = { rows: 0, bytes: 0, quarantine: 0 };
  for (const line of out.split('\n').filter(Boolean)) {
    const [table, rows, bytes] = line.split('\t');
    if (table === ds.table) { r.rows = Number(rows); r.bytes = Number(bytes); } else r.quarantine = Number(rows);
  }
  return r;
}

/**
 * `GET /v0/datasources/<ds>_quarantine`: the quarantine as a data source — its columns as the
 * engine has them (the data source's own, as Nullable(String), then c__import_id, c__error_column,
 * c__error, c__line, c__raw, insertion_date), its row count and size — and the data source it
 * belongs to. Its id is the data source's (the quarantine has none of its own).
 */
async function quarantineView(app: App, ws: Workspace, ds: DataSource, withStats: boolean): Promise<Record<string, unknown>> {
  const tenant = getTenant(app.state, ws.tenant);
  const engine = app.cells.engineFor(tenant);
  const timeoutMs = queryTimeoutMs(tenant, app.config);
  const table = `${ds.table}_quarantine`;
  // DESCRIBE, in the table's column order on every server (18.16's system.columns has no position).
  const out = (await engine.exec(`DESCRIBE TABLE ${qualified(ws, table)}`, { format: 'JSONEachRow', timeoutMs })).toString('utf8');
  const columns = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { name: string; type: string })
    .map((c) => ({ name: c.name, type: c.type, nullable: c.type.startsWith('Nullable('), jsonPath: null, defaultExpr: null }));
  // Row count and size from system.parts, as for the data source itself.
  const stats = withStats
    ? (await engine.exec(`SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE active AND database = ${quoteString(ws.database)} AND table = ${quoteString(table)}`, { format: 'TSV', timeoutMs })).toString('utf8').trim().split('\t').map((v) => Number(v) || 0)
    : undefined;
  return {
    id: ds.id,
    name: `${ds.name}_quarantine`,
    type: formatOfDataSource(ds), // the data source's: what its rejected rows came as
    description: '',
    created_at: ds.createdAt,
    updated_at: ds.updatedAt ?? ds.createdAt,
    engine: { engine: 'MergeTree', sorting_key: 'insertion_date' },
    schema: {
      sql_schema: formatSchema(columns),
      columns: columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable, jsonpath: null, default_value: null })),
    },
    datasource: { id: ds.id, name: ds.name },
    ...(stats ? { statistics: { row_count: stats[0], bytes: stats[1] } } : {}),
  };
}

export function registerDataSourceRoutes(app: App): void {
  const { router, state } = app;

  /**
   * An error's text in the workspace's names (rewritten in place, so the answer that follows
   * says the same): engine messages quote Roost's layout (ws_<name>_<id>, stage tables).
   */
  const publicMessage = (ws: Workspace, e: unknown): string => publicErrorText(state, ws.tenant, ws.name, e);

  const opsLog = (ws: Workspace, ds: { id: string; name: string }, event: string, ctx: Ctx, r: Partial<ImportResult> & { error?: string; elapsedMs: number; jobId?: string; options?: Record<string, string> }) => {
    const result = r.error ? 'error' : 'ok';
    app.metrics.ingestOps.inc({ tenant: ws.tenant, event, result });
    app.service.write(ws.tenant, 'datasources_ops_log', {
      timestamp: chTime(), workspace: ws.name, workspace_id: ws.id, event_type: event, datasource_id: ds.id, datasource_name: ds.name,
      result, elapsed_time: r.elapsedMs / 1000, error: r.error ?? '', request_id: ctx.id, import_id: r.importId ?? '', job_id: r.jobId ?? '',
      rows: r.rows ?? 0, rows_quarantine: r.quarantined ?? 0, written_rows: r.rows ?? 0, written_rows_quarantine: r.quarantined ?? 0,
      // What was read: the body's bytes and the rows parsed from it (stored, quarantined, or left
      // out by a replace_condition).
      read_bytes: r.bytes ?? 0, read_rows: (r.rows ?? 0) + (r.quarantined ?? 0) + (r.outsideCondition ?? 0),
      // What the operation was asked (Tinybird's Options): which condition deleted or replaced rows.
      options: r.options ?? {}, Options: r.options ?? {},
    });
  };

  const wsOf = async (ctx: Ctx): Promise<{ cred: Credential; ws: Workspace }> => {
    const cred = await authenticate(app, ctx);
    const { tenant, workspace } = workspaceOf(app, ctx, cred);
    return { cred, ws: getWorkspace(state, tenant, workspace) };
  };

  /**
   * Events of the data source acknowledged (202) before a truncate, rows delete or replace go
   * in first, so that the operation applies to them: they were flushed after it (truncated or
   * deleted rows came back, a GDPR delete missed them). Flushed before the data source's lock
   * is taken (the flush is an append under that lock); a failing flush is retried on its own.
   */
  const flushEvents = (ws: Workspace, ds: DataSource) => app.events?.flush({ tenant: ws.tenant, workspace: ws.name, datasource: ds.name }).catch(() => {});

  router.post('/v0/datasources', async (ctx) => {
    const t0 = performance.now();
    const { cred, ws } = await wsOf(ctx);
    // The body is gunzipped once the data source is known: an append or replace that fails
    // there (a corrupt gzip body) is logged in datasources_ops_log like any other failure.
    let got: Incoming;
    try {
      got = await incoming(ctx, app.config.maxUploadBytes);
    } catch (e) {
      // Refused while the body was first looked at (a Content-Length over --max-upload, with a
      // form's media type): an append or replace of a data source the URL names, which the
      // credential may write, is logged as the same request sent chunked is (it left no row).
      const q = ctx.query;
      const m = q.get('mode');
      const known = (m === 'append' || m === 'replace') && q.get('name') ? state.get<DataSource>('datasources', ws.tenant, ws.name, q.get('name')!) : undefined;
      if (known && decide(cred, { op: 'workspace', tenant: ws.tenant, workspace: ws.name, scope: 'DATASOURCES:APPEND', resource: known.name }) === undefined) {
        opsLog(ws, known, m!, ctx, { elapsedMs: performance.now() - t0, error: publicMessage(ws, e), options: { mode: m!, format: q.get('format') ?? 'csv' } });
      }
      throw e;
    }
    const { params, body: rawBody, fieldFormat, charset } = got;
    // One value each (`mode=append&mode=replace` appended, the other way round replaced).
    for (const k of ['mode', 'format', 'name', 'replace_condition', 'schema']) oneValue(params, k);
    if (params.get('url')) throw new RoostError('BAD_REQUEST', 'importing from a URL is not supported: this server does not reach outside networks; upload the file in the body');
    const mode = oneOf<Mode>('mode', params.get('mode'), MODES, 'create');
    // Without format=, a JSON media type (application/x-ndjson, application/json, jsonl...) is
    // NDJSON: read as CSV its lines were all quarantined ('not a date' on `{"d":...`). Without
    // either, the body tells once it is read (formatOf); until then (a refusal before the body) CSV.
    const implied = fieldFormat ?? mediaFormat(String(ctx.req.headers['content-type'] ?? ''));
    let format = oneOf<Format>('format', params.get('format'), FORMATS, implied ?? 'csv');
    // A multipart form's fields after its file arrive too late to be read: say so when the name is missing.
    if (!params.get('name') && multipartBoundary(String(ctx.req.headers['content-type'] ?? '')) && rawBody) {
      throw new RoostError('INVALID_PARAMETER', 'name is required: give it in the URL (?name=...) or as a multipart field before the file; fields after the file arrive too late to be read');
    }
    const name = checkDataSourceName(params.get('name'));
    const dialect = dialectFrom(params);
    const tenant = getTenant(state, ws.tenant);
    const engine = app.cells.engineFor(tenant);

    if (mode === 'create') {
      authorize(app, ctx, cred, { op: 'workspace', tenant: ws.tenant, workspace: ws.name, scope: 'DATASOURCES:CREATE' });
      // Every create is an operation in the log and /metrics, also one refused before its data
      // source exists (a schema syntax error, an empty body, a name a pipe has): those are logged
      // under the name asked for, with no id (they were in neither).
      let logged = false;
      const logCreate: typeof opsLog = (...a) => { logged = true; opsLog(...a); };
      try {
        refuseUnappliedEngineOptions(params);
        const existing = state.get<DataSource>('datasources', ws.tenant, ws.name, name);
        if (existing) {
          // A create refused for the name taken is an operation on that data source (the log had no row of it).
          const e = new RoostError('ALREADY_EXISTS', `data source "${name}" already exists; use mode=append or mode=replace`);
          logCreate(ws, existing, 'create', ctx, { elapsedMs: performance.now() - t0, error: e.message, options: { mode, format } });
          throw e;
        }
        // Pipes and data sources share names (a pipe's SQL reads either by it): a data source named
        // like a pipe would silently take its place for the pipes that read it.
        if (findPipe(state, ws.tenant, ws.name, name)) throw new RoostError('CONFLICT', `a pipe is named "${name}"; pipes and data sources share names`);
        refuseCaseTwin(state, ws, name);
        let columns: DataSourceColumn[];
        let headerAs: string[] | undefined;
        let data = rawBody ? await gunzipIfCompressed(rawBody, app.config.maxUploadBytes, dialectFrom(params).delimiter, charset) : undefined;
        ({ format, body: data } = await formatOf(params, implied, data));
        if (format === 'csv' && data) data = await withCsvLead(data, dialect);
        const schemaText = params.get('schema');
        if (schemaText) {
          columns = schemaColumns(schemaText);
        } else {
          if (!data) throw new RoostError('BAD_REQUEST', 'to create a data source send a schema= parameter, or a body to infer it from');
          const s = await sampleOf(data, format === 'ndjson' ? 1 : 2);
          data = s.body;
          if (s.head.length === 0) throw new RoostError('EMPTY_BODY', 'the body is empty: send rows to infer a schema from, or a schema= parameter');
          refuseJsonArray(s.head);
          // type_guessing=false (Tinybird's): every inferred column is a String (Nullable where values are missing).
          const guess = typeGuessing(params);
          if (format === 'ndjson') {
            const cols = inferNdjson(s.head.toString('utf8'));
            if (!cols.length) throw new RoostError('BAD_REQUEST', 'no JSON objects found in the body to infer a schema from');
            columns = schemaColumns(ndjsonSchemaText(guess ? cols : cols.map((c) => ({ ...c, type: asString(c.nullable) }))));
          } else {
            // header= decides for the inference too (the names, and whether the first row is data).
            const inferred = await inferCsvSchema(s.head, { dialect, hasHeader: headerParam(params), complete: s.complete }).catch((e) => { throw csvToRoost(e); });
            if (!inferred.columns.length) throw new RoostError('BAD_REQUEST', 'no columns found in the body to infer a schema from');
            columns = inferred.columns.map((c) => ({ name: c.name, type: guess ? c.type : asString(c.nullable), nullable: c.nullable, jsonPath: null, defaultExpr: null }));
            if (inferred.dialect.hasHeader) {
              const d = { delimiter: inferred.dialect.delimiter, quote: inferred.dialect.quote, escape: inferred.dialect.escape };
              // (A byte-order mark and blank lines before the header are skipped, as the reader
              // skips them; a BOM alone on the first line made that line the header.)
              let from = s.head[0] === 0xef && s.head[1] === 0xbb && s.head[2] === 0xbf ? 3 : 0;
              let line = 1;
              for (; from < s.head.length && (s.head[from] === 10 || s.head[from] === 13); from++) if (s.head[from] === 10 || s.head[from + 1] !== 10) line++;
              const body = s.head.subarray(from);
              const head = firstRecord(body, d, s.complete);
              const next = head ? firstRecord(body.subarray(head.end).subarray(body[head.end] === 13 && body[head.end + 1] === 10 ? 2 : 1), d, s.complete) : undefined;
              // A title line above the header (`Sales report 2024`): fewer fields than the rows
              // after it, which have values past it (a data row's trailing delimiter is not that).
              // Said as such (the create refused its own inferred schema, "header mismatch").
              if (head && next && next.fields.length > head.fields.length && next.fields.length === columns.length && next.fields.slice(head.fields.length).some((f) => f.trim() !== '')) {
                throw new RoostError('HEADER_MISMATCH', `line ${line} has ${head.fields.length} field${head.fields.length === 1 ? '' : 's'} and the lines after it ${next.fields.length}: is it a title above the header? Remove it from the file (or send a schema= and header=false)`, { details: { line } });
              }
              // The header as written, where it differs from the names (read by later appends).
              if (head && head.fields.length === columns.length && head.fields.some((f, i) => f.trim() !== columns[i]!.name)) headerAs = head.fields.map((f) => f.trim());
            }
          }
        }
        if (columns.length === 0) throw new RoostError('SCHEMA_SYNTAX', 'the schema has no columns');
        // Empty is Tinybird's default key, as when it is left out (it was a syntax error before).
        const sortingKey = params.get('engine_sorting_key')?.trim() || undefined;
        if (sortingKey !== undefined) checkTableExpression(sortingKey, 'engine_sorting_key');
        const ds = newDataSource(ws, name, columns, sortingKey, state);
        if (headerAs) ds.headerAs = headerAs;
        // Tinybird's create takes the description too (tb push sends a datafile's DESCRIPTION): it
        // was dropped without a word, to be set only by a later PUT.
        const description = params.get('description');
        if (description !== null && description !== '') {
          checkDescription(description, `data source "${name}"'s description`);
          ds.description = description;
        }
        // The tables are named after the data source: while this request builds them no other
        // request may create (or drop) that name, or the one that loses would drop the tables of
        // the one that won (or both would write into the same table).
        const release = claimName(ws, name);
        if (!release) throw new RoostError('ALREADY_EXISTS', `data source "${name}" is being created or dropped by another request; retry`, { retryable: true });
        let result: ImportResult | undefined;
        try {
          const existing = state.get<DataSource>('datasources', ws.tenant, ws.name, name);
        if (existing) {
          // A create refused for the name taken is an operation on that data source (the log had no row of it).
          const e = new RoostError('ALREADY_EXISTS', `data source "${name}" already exists; use mode=append or mode=replace`);
          logCreate(ws, existing, 'create', ctx, { elapsedMs: performance.now() - t0, error: e.message, options: { mode, format } });
          throw e;
        }
          await checkDefaultsSupported(engine, ds.columns);
          // Tables of this name without a data source are left over from a create that could
          // not clean up (its cell died): they must not lend their rows or columns to this one.
          await engine.exec(`DROP TABLE IF EXISTS ${qualified(ws, ds.table)}`);
          await engine.exec(`DROP TABLE IF EXISTS ${qualified(ws, `${ds.table}_quarantine`)}`);
          // Recorded before they exist: a kill before the data source is in the state leaves no
          // tables that nothing names (the next start drops them, see resumeTableDrops).
          await state.write(tablesToDropOps(ws, ds));
          await createTables(engine, ws, ds);
          await createQuarantine(engine, ws, ds);
          if (data) result = await runImport(app, ctx, ws, ds, format, data, 'append', dialect, params, false, undefined, true);
          await state.transact((s) => {
            // Not into a workspace deleted or renamed while the tables were built (the record would
            // stay under the old name, for the next workspace of that name to find).
            sameWorkspace(s, ws.tenant, ws.name, ws.id);
            // The data source becomes visible here: an upload whose credential was revoked (or lost
            // DATASOURCES:CREATE) while its rows arrived is refused, and its tables dropped below.
            if (data) stillAuthorized(app, ctx, cred, { tenant: ws.tenant, workspaceId: ws.id, workspace: ws.name, scope: 'DATASOURCES:CREATE' });
            if (s.get('datasources', ws.tenant, ws.name, name)) throw new RoostError('ALREADY_EXISTS', `data source "${name}" was created meanwhile`);
            if (s.get('pipes', ws.tenant, ws.name, name)) throw new RoostError('CONFLICT', `a pipe named "${name}" was created meanwhile; pipes and data sources share names`);
            refuseCaseTwin(s, ws, name);
            return { ops: [...putDataSourceOps(ds), ...tablesKeptOps(ws, ds)], result: undefined };
          });
        } catch (e) {
          // Nothing stays behind from a failed create (unless the tables are another's: a data
          // source created meanwhile under this name, or renamed to it, has tables of its own).
          // An engine that cannot drop them now has them dropped later, here or at the next start.
          if (!listDataSources(state, ws.tenant, ws.name).some((d) => d.table === ds.table)) {
            for (const [key, t] of tablesToDrop(ws, ds)) await app.dropLater.drop(ws.tenant, qualified(ws, t.table), tablesHold(state, ws.tenant, t), droppedDone(app, ws.tenant, key));
          } else {
            await state.write(tablesKeptOps(ws, ds)).catch(() => {});
          }
          logCreate(ws, ds, 'create', ctx, { elapsedMs: performance.now() - t0, error: publicMessage(ws, e), options: { mode, format } });
          throw e;
        } finally {
          release();
        }
        // Without a body or a format=, the format is what the schema says the data source is fed (JSON paths: NDJSON).
        logCreate(ws, ds, 'create', ctx, { ...result, elapsedMs: performance.now() - t0, options: { mode, format: data || params.get('format') !== null ? format : formatOfDataSource(ds) } });
        app.audit({ event: 'datasource.create', outcome: 'success', tenant: ws.tenant, workspace: ws.name, workspaceId: ws.id, resource: name, requestId: ctx.id, credential: credentialName(cred) });
        return sendJson(ctx, 200, importResponse(ds, result));
      } catch (e) {
        if (!logged) opsLog(ws, { id: '', name }, 'create', ctx, { elapsedMs: performance.now() - t0, error: publicMessage(ws, e), options: { mode, format } });
        throw e;
      }
    }

    // The scope first, by the name asked for: a credential that may not append to it learns
    // nothing of whether it exists (403 either way), as on pipe routes.
    authorize(app, ctx, cred, { op: 'workspace', tenant: ws.tenant, workspace: ws.name, scope: 'DATASOURCES:APPEND', resource: name });
    let ds: DataSource;
    try {
      ds = getDataSource(state, ws.tenant, ws.name, name);
    } catch (e) {
      // Tinybird's append creates a missing data source; Roost's does not (docs/decisions.md: a
      // mistyped or renamed name would silently start a new one): the answer says what to do.
      if ((e as RoostError).code !== 'UNKNOWN_DATASOURCE') throw e;
      throw new RoostError('UNKNOWN_DATASOURCE', `there is no data source "${name}" in this workspace; mode=${mode} writes into an existing one: create it first with mode=create (a schema= parameter, or this body to infer it from)`, { details: (e as RoostError).details });
    }
    const importOptions = (): Record<string, string> => {
      const o: Record<string, string> = { mode, format };
      const rc = params.get('replace_condition');
      if (rc !== null) o.replace_condition = rc;
      return o;
    };
    // A refused append or replace is an operation too: the log says why (as for rows deletes).
    try {
      if (!rawBody) throw new RoostError('EMPTY_BODY', `mode=${mode} needs rows in the body (raw, or a multipart field "csv"/"ndjson")`);
      const replaceCondition = params.get('replace_condition');
      let replaceWhere: string | undefined;
      if (replaceCondition !== null) {
        if (mode !== 'replace') throw new RoostError('INVALID_PARAMETER', 'replace_condition goes with mode=replace (it replaces the rows that match it)');
        if (!replaceCondition.trim()) throw new RoostError('INVALID_PARAMETER', 'replace_condition is empty: give a SQL condition over the data source columns, e.g. "day = \'2026-11-28\'"');
        // The condition runs over the data source's rows: whether it fails or not (throwIf) is one
        // bit of any value. It needs DATASOURCES:READ besides the right to replace, as a delete's does.
        authorizeConditionRead(app, ctx, cred, { tenant: ws.tenant, workspace: ws.name }, ds.name, 'replace_condition');
        replaceWhere = conditionWhere(ws, ds, replaceCondition, 'replace_condition');
        // Before the body is read: a large upload is not sent for nothing.
        const typed = await conditionTypeProblem(app.cells.engineFor(getTenant(state, ws.tenant)), ws, ds, replaceWhere, 'replace_condition');
        if (typed) throw typed;
      }
      let body: AsyncIterable<Buffer> | undefined = await gunzipIfCompressed(rawBody, app.config.maxUploadBytes, dialectFrom(params).delimiter, charset);
      // Without a format named, a CSV data source reads CSV (a row whose first cell opens with `{` is
      // no NDJSON: it was sniffed as such and quarantined); an NDJSON one goes by the body's look.
      ({ format, body } = await formatOf(params, implied ?? (formatOfDataSource(ds) === 'ndjson' ? undefined : 'csv'), body));
      if (format === 'csv' && body) body = await withCsvLead(body, dialect);
      if (!body) throw new RoostError('EMPTY_BODY', `mode=${mode} needs rows in the body (raw, or a multipart field "csv"/"ndjson")`);
      if (mode === 'replace') await flushEvents(ws, ds);
      // Asked again when the stage is swapped in or attached: a credential revoked (or that lost
      // DATASOURCES:APPEND on it) while the rows arrived stores nothing.
      const beforeCommit = () => stillAuthorized(app, ctx, cred, { tenant: ws.tenant, workspaceId: ws.id, workspace: ws.name, scope: 'DATASOURCES:APPEND', resource: ds.name, datasourceId: ds.id });
      const result = await runImport(app, ctx, ws, ds, format, body, mode, dialect, params, true, replaceWhere, false, beforeCommit);
      opsLog(ws, ds, mode, ctx, { ...result, elapsedMs: performance.now() - t0, options: importOptions() });
      sendJson(ctx, 200, importResponse(ds, result));
    } catch (caught) {
      const e = params.get('replace_condition') !== null ? conditionFailure(caught, cred, ws, 'replace_condition', ds.name, ds.columns.map((c) => c.name)) : caught;
      opsLog(ws, ds, mode, ctx, { elapsedMs: performance.now() - t0, error: publicMessage(ws, e), options: importOptions() });
      throw e;
    }
  });

  router.get('/v0/datasources', async (ctx) => {
    const { cred, ws } = await wsOf(ctx);
    const visible = listDataSources(state, ws.tenant, ws.name).filter((ds) => {
      // Listing hides what the credential may not read; it is not a denial to audit.
      return decide(cred, { op: 'workspace', tenant: ws.tenant, workspace: ws.name, scope: 'DATASOURCES:READ', resource: ds.name }) === undefined;
    });
    sendJson(ctx, 200, { datasources: visible.map((ds) => dataSourceView(ds)) });
  });

  router.get('/v0/datasources/:name', async (ctx) => {
    const { cred, ws } = await wsOf(ctx);
    // `<name>.datasource` (or `?format=datasource`): the datafile text, as Tinybird answers it.
    const raw = ctx.params.name!;
    const datafile = raw.endsWith('.datasource') || ctx.query.get('format') === 'datasource';
    const name = raw.endsWith('.datasource') ? raw.slice(0, -'.datasource'.length) : raw;
    // The scope before the lookup (here and on every route of one data source): without it the
    // answer is the same 403 whether or not the name exists; with it, a missing one is a 404.
    authorize(app, ctx, cred, { op: 'workspace', tenant: ws.tenant, workspace: ws.name, scope: 'DATASOURCES:READ', resource: name });
    // `<ds>_quarantine` (the suffix is reserved: no data source has it) is <ds>'s quarantine, read
    // with its own scope as /v0/sql reads it; truncated by that name too.
    if (name.endsWith('_quarantine') && !state.get('datasources', ws.tenant, ws.name, name)) {
      const base = state.get<DataSource>('datasources', ws.tenant, ws.name, name.slice(0, -'_quarantine'.length));
      if (!base) throw new RoostError('UNKNOWN_DATASOURCE', `there is no data source "${name}" in this workspace (nor one whose quarantine it would be)`);
      if (datafile) throw new RoostError('INVALID_PARAMETER', `"${name}" is a quarantine: it has no datafile of its own (it is made with its data source; ask for ${base.name}.datasource)`);
      // (A filter of its data source applies to it too: name-map.ts.)
      const filtered = rowFiltersOf(state, ws.tenant, ws.name, cred)[name] !== undefined;
      return sendJson(ctx, 200, await quarantineView(app, ws, base, !filtered));
    }
    const ds = getDataSource(state, ws.tenant, ws.name, name);
    // Exactly `text/plain`: the tb CLI reads a body as text only then (with a charset it parsed the
    // datafile as JSON and failed). The text is UTF-8 all the same.
    if (datafile) return sendText(ctx, 200, datasourceDatafile(ds), 'text/plain');
    // The table's row count and size are the whole table's: not for a credential that sees it
    // through a row filter (they counted the rows it may not see).
    const filtered = rowFiltersOf(state, ws.tenant, ws.name, cred)[ds.name] !== undefined;
    sendJson(ctx, 200, dataSourceView(ds, filtered ? undefined : await tableStats(app, ws, ds)));
  });

  /**
   * `PUT /v0/datasources/<name>` (Tinybird's): `name=` renames, `description=` describes; the answer
   * is the data source as GET shows it. A rename changes the name only (the engine table keeps its
   * name), in one state change with the scopes of the tokens that name it. Refused (409) while
   * pipes read the data source (their SQL names it) or when the name is any other pipe's or data
   * source's, ignoring case. Same permission as a drop.
   */
  router.put('/v0/datasources/:name', async (ctx) => {
    const t0 = performance.now();
    const { cred, ws } = await wsOf(ctx);
    authorize(app, ctx, cred, { op: 'workspace', tenant: ws.tenant, workspace: ws.name, scope: 'DATASOURCES:DROP', resource: ctx.params.name! });
    const ds = getDataSource(state, ws.tenant, ws.name, ctx.params.name!);
    const p = await updateParams(ctx);
    // Tinybird's other attributes of this route change what the table keeps; ignored, the answer
    // would say the change was made.
    const unapplied = p.ignored.filter((k) => k === 'ttl' || k === 'schema' || k === 'indexes' || k.startsWith('engine') || k.startsWith('kafka_'));
    if (unapplied.length) {
      throw new RoostError('INVALID_PARAMETER', `${unapplied.join(', ')}: not supported by PUT /v0/datasources/<name>, which renames (name=) and describes (description=); nothing was changed`, { details: { parameters: unapplied } });
    }
    if (p.name === undefined && p.description === undefined) throw nothingToChange('data source', p);
    const to = p.name === undefined ? ds.name : checkDataSourceName(p.name);
    const renaming = to !== ds.name;
    /** What refuses the change: checked at once, and again in the transaction that makes it. */
    const check = (s: State): DataSource => {
      const cur = s.get<DataSource>('datasources', ws.tenant, ws.name, ds.name);
      if (cur?.id !== ds.id) throw new RoostError('UNKNOWN_DATASOURCE', `data source "${ds.name}" was dropped or renamed meanwhile (nothing was changed)`);
      if (!renaming) return cur;
      refuseTakenName(s, ws.tenant, ws.name, to, 'datasource', ds.id);
      // (Its quarantine is renamed with it: `<name>_quarantine` in a pipe's SQL names it too.)
      const readersOf = (n: string) => [...new Set([...(app.dependents?.(ws, n, s) ?? []), ...(app.dependents?.(ws, `${n}_quarantine`, s) ?? [])])];
      const users = readersOf(ds.name);
      if (users.length) {
        const u = pipesSeenBy(cred, { tenant: ws.tenant, workspace: ws.name }, users);
        throw new RoostError('CONFLICT', `data source "${ds.name}" (or its quarantine) is read by pipes ${u.text}, whose SQL names it; change those pipes to read another data source (or delete them), then rename it`, { details: u.details });
      }
      // A pipe that names the new name (in a template branch not taken at save) would start reading this data source.
      const readers = readersOf(to);
      if (readers.length) {
        const u = pipesSeenBy(cred, { tenant: ws.tenant, workspace: ws.name }, readers);
        throw new RoostError('CONFLICT', `pipes ${u.text} name "${to}" in their SQL; a data source of that name would become what they read: pick another name`, { details: u.details });
      }
      return cur;
    };
    try {
      check(state);
    } catch (e) {
      // A rename refused at once is in the operations log as one refused later is (failed or not).
      if (renaming) opsLog(ws, ds, 'rename', ctx, { elapsedMs: performance.now() - t0, error: publicMessage(ws, e), options: { old_name: ds.name, new_name: to } });
      throw e;
    }
    const commit = () => state.transact((s) => {
      const cur = check(s);
      const at = Date.now();
      const next: DataSource = { ...cur, name: to, updatedAt: new Date(at).toISOString() };
      if (p.description !== undefined) next.description = p.description;
      const ops = renaming
        ? [...deleteDataSourceOps(cur), ...putDataSourceOps(next), ...renameReferencesOps(s, ws.tenant, ws.name, 'datasource', cur.id, cur.name, to, at)]
        : putDataSourceOps(next);
      return { ops, result: next };
    });
    let next: DataSource;
    if (!renaming) {
      next = await commit();
    } else {
      // Neither name may be created or dropped meanwhile (a create would build tables for a name
      // this request takes; a drop of the old name would drop the renamed data source's tables).
      const releaseFrom = claimName(ws, ds.name);
      const releaseTo = claimName(ws, to);
      // In tinybird.datasources_ops_log as Tinybird logs it (event_type rename), failed or not.
      const options = { old_name: ds.name, new_name: to };
      try {
        if (!releaseFrom || !releaseTo) throw new RoostError('CONFLICT', `data source "${releaseFrom ? to : ds.name}" is being created or dropped by another request; retry`, { retryable: true });
        // Buffered events go in first (best effort: segments left behind follow the data source by
        // id). Segments without that id (written by an older version) would be found by name only:
        // the rename waits until they are flushed.
        await flushEvents(ws, ds);
        const left = app.events?.pendingOf({ tenant: ws.tenant, workspace: ws.name, datasource: ds.name });
        if (left && left.segments > 0 && left.datasourceId === undefined) {
          throw new RoostError('ENGINE_UNAVAILABLE', `data source "${ds.name}" has buffered events that could not be written yet; nothing was renamed: retry in a few seconds`, { retryable: true, headers: { 'Retry-After': '5' } });
        }
        // After the imports in flight under the old name; those that wait behind this answer 404.
        next = await withDataSourceLock(app, ws, ds, true, () => { beginCommit(ctx); return commit(); });
      } catch (e) {
        opsLog(ws, ds, 'rename', ctx, { elapsedMs: performance.now() - t0, error: publicMessage(ws, e), options });
        throw e;
      } finally {
        releaseFrom?.();
        releaseTo?.();
      }
      opsLog(ws, { id: ds.id, name: to }, 'rename', ctx, { elapsedMs: performance.now() - t0, options });
      app.audit({ event: 'datasource.rename', outcome: 'success', tenant: ws.tenant, workspace: ws.name, workspaceId: ws.id, resource: to, requestId: ctx.id, credential: credentialName(cred), details: { from: ds.name, to, id: ds.id } });
    }
    if (p.description !== undefined) {
      app.audit({ event: 'datasource.update', outcome: 'success', tenant: ws.tenant, workspace: ws.name, workspaceId: ws.id, resource: to, requestId: ctx.id, credential: credentialName(cred), details: { description: p.description } });
    }
    // The data source as GET shows it to a credential that may read it (without its statistics
    // through a row filter); to one that may only change it (DATASOURCES:DROP), what it changed:
    // the schema and the whole table's statistics were shown to a token GET refuses (a black-box round).
    // (By the name it had: the credential's scopes are as they were when the request came. A
    // scope naming the new name is stripped by the rename, and must not open the answer.)
    if (decide(cred, { op: 'workspace', tenant: ws.tenant, workspace: ws.name, scope: 'DATASOURCES:READ', resource: ds.name }) !== undefined) {
      return sendJson(ctx, 200, { id: next.id, name: next.name, description: next.description ?? '', updated_at: next.updatedAt ?? next.createdAt });
    }
    if (readFilter(cred, ds.name) !== undefined) return sendJson(ctx, 200, dataSourceView(next, undefined));
    // The change is made: statistics the engine cannot give now (a remote server away) are left
    // out, not a 503 that said "retry" for a rename or description already applied.
    sendJson(ctx, 200, dataSourceView(next, await tableStats(app, ws, next).catch((e) => {
      app.log.warn('data source statistics not read after its change', { tenant: ws.tenant, datasource: next.name, err: e });
      return undefined;
    })));
  });

  router.post('/v0/datasources/:name/truncate', async (ctx) => {
    const t0 = performance.now();
    const { cred, ws } = await wsOf(ctx);
    // `<name>_quarantine` is the quarantine of <name> (as in Tinybird, which truncates it by that
    // name): no data source has that name (the suffix is reserved), and nothing else empties it.
    const requested = ctx.params.name!;
    const quarantine = requested.endsWith('_quarantine') && !state.get('datasources', ws.tenant, ws.name, requested);
    const base = quarantine ? requested.slice(0, -'_quarantine'.length) : requested;
    authorize(app, ctx, cred, { op: 'workspace', tenant: ws.tenant, workspace: ws.name, scope: 'DATASOURCES:DROP', resource: base });
    const ds = quarantine ? state.get<DataSource>('datasources', ws.tenant, ws.name, base) : getDataSource(state, ws.tenant, ws.name, requested);
    if (!ds) throw new RoostError('UNKNOWN_DATASOURCE', `there is no data source "${requested}" in this workspace (nor one whose quarantine it would be)`);
    const engine = app.cells.engineFor(getTenant(state, ws.tenant));
    const table = quarantine ? `${ds.table}_quarantine` : ds.table;
    await flushEvents(ws, ds);
    try {
      // Not in the middle of an import: a partial replace copies the rows it keeps from the
      // table and swaps the copy in, which would bring truncated rows back.
      await withDataSourceLock(app, ws, ds, true, () => { beginCommit(ctx); return engine.exec(`TRUNCATE TABLE IF EXISTS ${qualified(ws, table)}`); });
    } catch (e) {
      opsLog(ws, { id: ds.id, name: requested }, 'truncate', ctx, { elapsedMs: performance.now() - t0, error: publicMessage(ws, e) });
      throw e;
    }
    opsLog(ws, { id: ds.id, name: requested }, 'truncate', ctx, { elapsedMs: performance.now() - t0 });
    sendJson(ctx, 200, quarantine ? { id: ds.id, name: requested, datasource: { id: ds.id, name: ds.name }, truncated: true } : { id: ds.id, name: ds.name, truncated: true });
  });

  /**
   * A condition over one data source's columns (delete_condition, replace_condition): it passes
   * the analyzer as the WHERE of a query over that data source only; the rewritten WHERE is
   * returned, to run against the data source's table (or a stage table of the same columns).
   */
  const conditionWhere = (ws: Workspace, ds: DataSource, cond: string, param: string): string => {
    // The name quoted: a data source may be called WHERE, FROM or AS.
    const probe = (c: string) => `SELECT count() FROM \`${ds.name}\` WHERE (${c}\n)`;
    // Only the data source itself: any other name is refused alike, whether it is another data
    // source, a pipe or nothing (a name that is nothing was a 422 'unknown table' against this
    // 403 for an existing one, which told a credential with only this data source's scope which
    // names exist).
    const names: Record<string, NameMapEntry> = { [ds.name]: workspaceNameMap(state, ws.tenant, ws.name)[ds.name]! };
    const onlyOwn = () => new RoostError('SQL_FORBIDDEN', `${param} may only refer to the data source's own columns`);
    let analysis;
    try {
      analysis = analyzeSql(probe(cond), names);
    } catch (e) {
      if (e instanceof SqlError && e.code === 'UNKNOWN_TABLE') throw onlyOwn();
      // Said of the condition: its offset was one into the probe ("unclosed bracket" at 31 of a
      // 9-character condition).
      if (e instanceof SqlError) {
        const start = probe('').length - 2;
        // Before the condition: a bracket of its own left open, which the probe's closing one met (at its end).
        const offset = e.offset < start ? cond.length : Math.min(cond.length, e.offset - start);
        // A `;` (pasted SQL ends with one): said as such, not as "inside brackets" (the probe's).
        if (/^';' inside brackets/.test(e.message)) {
          const rest = cond.slice(offset + 1).trim();
          throw new RoostError('SQL_SYNTAX', `${param} must be one SQL condition, without ';' (at offset ${offset} of the condition): remove the ';'${rest ? ' and what follows it' : ''}`, { details: { parameter: param, offset } });
        }
        throw toRoostError(new SqlError(e.code, `${param}: ${e.message} (at offset ${offset} of the condition)`, offset));
      }
      throw e;
    }
    if (analysis.format || analysis.tables.some((t) => t.name !== ds.name)) throw onlyOwn();
    // One condition, not a way out of its parentheses: `1) GROUP BY x HAVING (1` or
    // `1) UNION ALL SELECT ... WHERE (1` passed the analyzer (which checks names, not clause
    // structure) as clauses after the WHERE above, and then ran in the count, the
    // ALTER ... DELETE or the partial replace's INSERT ... SELECT.
    const unbalanced = conditionEscapes(cond);
    if (unbalanced) throw new RoostError('INVALID_PARAMETER', `${param} must be one SQL condition over the data source's columns: ${unbalanced}; e.g. "country = 'ES'"`);
    // arrayJoin in a WHERE makes several rows of one: a partial replace stored its rows twice
    // and kept rows the condition matched, and a delete's dry run counted rows that are not there.
    if (callsFunction(cond, 'arrayJoin')) throw new RoostError('INVALID_PARAMETER', `${param} may not call arrayJoin (it makes several rows of one); test an array's elements with has(), hasAny() or arrayExists() instead`);
    // The condition as rewritten is what follows the rewritten head of the probe, which a
    // trivial condition shows (looking for ' WHERE ' found the alias of a data source called
    // WHERE, and ran 'WHERE WHERE(a = 1)').
    const trivial = analyzeSql(probe('1'), names).sql;
    const head = trivial.slice(0, trivial.length - '(1\n)'.length);
    if (!trivial.endsWith('(1\n)') || !analysis.sql.startsWith(head)) throw new Error(`${param}: the analyzer rewrote the head of its probe differently (${JSON.stringify(head)})`);
    return analysis.sql.slice(head.length);
  };

  router.post('/v0/datasources/:name/delete', async (ctx) => {
    const t0 = performance.now();
    const { cred, ws } = await wsOf(ctx);
    authorize(app, ctx, cred, { op: 'workspace', tenant: ws.tenant, workspace: ws.name, scope: 'DATASOURCES:DROP', resource: ctx.params.name! });
    const ds = getDataSource(state, ws.tenant, ws.name, ctx.params.name!);
    let cond: string | null = null;
    let count = 0;
    let dry = false;
    // A refused or failed delete is an operation too: the log says why.
    try {
      const form = await deleteParams(ctx);
      cond = oneValue(form, 'delete_condition');
      oneValue(form, 'dry_run');
      // Anything but a clear yes or no is refused: dry_run=yes (or on) ran the delete for real.
      dry = yesOrNo('dry_run', form.get('dry_run'), 'nothing was deleted');
      if (!cond || !cond.trim()) throw new RoostError('INVALID_PARAMETER', 'delete_condition is required: a SQL condition over the data source columns, e.g. "country = \'ES\'"');
      // A condition reads the data source: a dry run's count (bisecting with startsWith() spelled
      // out hidden values), and whether the delete fails or not (throwIf(k > 'm') = 1 failing or
      // not is one bit of any value, with nothing deleted). So it needs DATASOURCES:READ besides
      // DATASOURCES:DROP (a black-box test read a secret through throwIf with DROP alone).
      authorizeConditionRead(app, ctx, cred, { tenant: ws.tenant, workspace: ws.name }, ds.name, 'delete_condition');
      const rewritten = conditionWhere(ws, ds, cond, 'delete_condition');
      const engine = app.cells.engineFor(getTenant(state, ws.tenant));
      // The same rule for a dry run's count and the mutation (the count took `now()` as true).
      const typed = await conditionTypeProblem(engine, ws, ds, rewritten, 'delete_condition');
      if (typed) throw typed;
      await flushEvents(ws, ds);
      // Not in the middle of an import (a partial replace would swap deleted rows back in).
      await withDataSourceLock(app, ws, ds, !dry, async () => {
        // countIf, not WHERE: the condition is evaluated on every row, as the mutation does (a WHERE
        // read only the granules the index left, and a condition failing on another row failed
        // the mutation after this count had passed). `!= 0`: a WHERE takes any number (`a % 2`),
        // countIf only UInt8; NULL stays not counted.
        count = Number((await engine.exec(`SELECT countIf((${rewritten}) != 0) FROM ${qualified(ws, ds.table)}`, { settings: { readonly: 1 } })).toString().trim());
        if (!dry && count > 0) {
          beginCommit(ctx);
          await deleteRowsWhere(engine, ws, ds.table, rewritten);
        }
      });
    } catch (caught) {
      const e = conditionFailure(caught, cred, ws, 'delete_condition', ds.name, ds.columns.map((c) => c.name));
      opsLog(ws, ds, 'delete_data', ctx, { elapsedMs: performance.now() - t0, error: publicMessage(ws, e), options: cond === null ? {} : { delete_condition: cond, dry_run: String(dry) } });
      throw e;
    }
    // Done before answering; also recorded as a finished job for clients that poll one (Tinybird's do).
    const job = jobsOf(app).done({ kind: 'delete_data', tenant: ws.tenant, startedBy: ownerKey(cred), tenantCreatedAt: state.get<{ createdAt: string }>('tenants', ws.tenant)?.createdAt }, { datasource: ds.name, delete_condition: cond, rows_affected: count, dry_run: dry });
    opsLog(ws, ds, 'delete_data', ctx, { elapsedMs: performance.now() - t0, rows: dry ? 0 : count, jobId: job.id, options: { delete_condition: cond ?? '', dry_run: String(dry) } });
    // delete_id and (dry runs) rows_to_be_deleted are Tinybird's names, which its SDK reads.
    sendJson(ctx, 200, {
      id: job.id, job_id: job.id, delete_id: job.id, job_url: `/v0/jobs/${job.id}`, datasource: { id: ds.id, name: ds.name }, delete_condition: cond,
      rows_affected: count, ...(dry ? { rows_to_be_deleted: count } : {}), dry_run: dry, status: 'done',
    });
  });

  router.delete('/v0/datasources/:name', async (ctx) => {
    const t0 = performance.now();
    const { cred, ws } = await wsOf(ctx);
    authorize(app, ctx, cred, { op: 'workspace', tenant: ws.tenant, workspace: ws.name, scope: 'DATASOURCES:DROP', resource: ctx.params.name! });
    const ds = getDataSource(state, ws.tenant, ws.name, ctx.params.name!);
    // Tinybird's flags, read strictly: `dry_run=true` (what the tb CLI sends before asking the
    // user) dropped the data source for real while the flag was not read.
    let dryRun: boolean;
    let force: boolean;
    try {
      dryRun = yesOrNo('dry_run', ctx.query.get('dry_run'), 'nothing was dropped');
      force = yesOrNo('force', ctx.query.get('force'), 'nothing was dropped');
    } catch (e) {
      // Refused once the data source is known: an operation too (docs/api.md).
      opsLog(ws, ds, 'delete', ctx, { elapsedMs: performance.now() - t0, error: publicMessage(ws, e) });
      throw e;
    }
    // Refused at once when pipes read it, and checked again where it is deleted (below).
    // Pipes that read its quarantine (`<name>_quarantine`, dropped with it) count too: they passed.
    const readers = (s?: State) => [...new Set([...(app.dependents?.(ws, ds.name, s) ?? []), ...(app.dependents?.(ws, `${ds.name}_quarantine`, s) ?? [])])];
    if (dryRun) {
      // Nothing is dropped: what a drop would meet (pipes that read it are a 409 then, with force or not).
      const u = pipesSeenBy(cred, { tenant: ws.tenant, workspace: ws.name }, readers());
      sendJson(ctx, 200, { id: ds.id, name: ds.name, deleted: false, dry_run: true, dependent_pipes: u.details.dependents, ...(u.details.hidden_dependents ? { hidden_dependent_pipes: u.details.hidden_dependents } : {}), dependent_views: [] });
      return;
    }
    const refuseIfRead = (users: string[]) => {
      if (users.length) {
        const u = pipesSeenBy(cred, { tenant: ws.tenant, workspace: ws.name }, users);
        throw new RoostError('CONFLICT', `data source "${ds.name}" (or its quarantine) is used by pipes: ${u.text}; remove them first${force ? ' (force=true does not drop a data source pipes read: they would fail on every call)' : ''}`, { details: u.details });
      }
    };
    // Refused or failed, the drop is in the operations log too (docs/api.md: every operation, once
    // the data source is known).
    let release: (() => void) | undefined;
    try {
      refuseIfRead(readers());
      // A create of the same name may start once the state forgets this one: it waits until
      // these tables are gone rather than have its new tables dropped here.
      release = claimName(ws, ds.name);
      if (!release) throw new RoostError('CONFLICT', `data source "${ds.name}" is being created or dropped by another request; retry`, { retryable: true });
      // After the imports in flight (each checks, once it has the lock, that its data source is
      // still there): one that swapped its stage in after the tables were dropped would give a
      // data source created meanwhile under this name the old schema, or fail with a 422. The
      // lock also checks the name is still this data source: another drop (and a create) may
      // have come between reading it and claiming the name.
      await withDataSourceLock(app, ws, ds, true, async () => {
        beginCommit(ctx);
        // Checked again in the same transaction as the delete: a pipe saved since the check
        // above (pipe saves check their data sources in their own transaction) is seen here.
        await state.transact((s) => {
          // The lock checked the data source before this change was queued: a workspace rename
          // (or delete) queued ahead of it moved the data source away, and the drop deleted
          // nothing in the state but dropped the tables the renamed workspace's data source kept.
          sameWorkspace(s, ws.tenant, ws.name, ws.id);
          if (s.get<DataSource>('datasources', ws.tenant, ws.name, ds.name)?.id !== ds.id) throw new RoostError('UNKNOWN_DATASOURCE', `data source "${ds.name}" was dropped or renamed meanwhile (nothing was dropped)`);
          refuseIfRead(readers(s));
          return { ops: [...deleteDataSourceOps(ds), ...dropReferencesOps(s, ws.tenant, ws.name, 'datasource', ds.id, ds.name, Date.now()), ...tablesToDropOps(ws, ds)], result: undefined };
        });
        await app.events?.discard({ tenant: ws.tenant, workspace: ws.name, datasource: ds.name });
        // The data source is gone (the state says so): an engine that cannot drop its tables now (a
        // remote server down) has them dropped later — the answer was a 503 "retry" for a drop that
        // had happened, its tables left on the server with their rows. A later try runs only while
        // no data source has taken the tables' name (a create of it drops leftovers itself).
        // The workspace as it is at that try (found by its id: a rename keeps its database, where a
        // data source created since under the new name would have the same table). Recorded in
        // the state with the delete, the drop is resumed at the next start when a kill cuts it.
        for (const [key, t] of tablesToDrop(ws, ds)) await app.dropLater.drop(ws.tenant, qualified(ws, t.table), tablesHold(state, ws.tenant, t), droppedDone(app, ws.tenant, key));
      });
    } catch (e) {
      opsLog(ws, ds, 'delete', ctx, { elapsedMs: performance.now() - t0, error: publicMessage(ws, e) });
      throw e;
    } finally {
      release?.();
    }
    opsLog(ws, ds, 'delete', ctx, { elapsedMs: performance.now() - t0 });
    app.audit({ event: 'datasource.drop', outcome: 'success', tenant: ws.tenant, workspace: ws.name, workspaceId: ws.id, resource: ds.name, requestId: ctx.id, credential: credentialName(cred) });
    sendJson(ctx, 200, { id: ds.id, name: ds.name, deleted: true });
  }, { takesDryRun: true });

  router.post('/v0/analyze', async (ctx) => {
    const { ws } = await wsOf(ctx);
    void ws;
    const { params, body, fieldFormat } = await incomingData(ctx, app.config.maxUploadBytes);
    if (params.get('url')) throw new RoostError('BAD_REQUEST', 'analyzing a file at a URL is not supported: this server does not reach outside networks; send a sample in the body');
    if (!body) throw new RoostError('EMPTY_BODY', 'send a CSV or NDJSON sample in the body');
    const analyzeDialect = dialectFrom(params);
    const s = await sampleOf(params.get('format') === 'ndjson' || fieldFormat === 'ndjson' ? body : await withCsvLead(body, analyzeDialect), 2);
    for await (const _ of s.body) { /* the rest is not needed */ }
    if (!s.head.length) throw new RoostError('EMPTY_BODY', 'send a CSV or NDJSON sample in the body');
    refuseJsonArray(s.head);
    const format = oneOf<Format>('format', params.get('format'), FORMATS, fieldFormat ?? (looksLikeNdjson(s.head) ? 'ndjson' : 'csv'));
    // type_guessing=false, as a create takes it: every column a String (Nullable where values are missing).
    const guess = typeGuessing(params);
    if (format === 'ndjson') {
      const inferred = inferNdjson(s.head.toString('utf8'));
      const cols = guess ? inferred : inferred.map((c) => ({ ...c, type: asString(c.nullable) }));
      // Not a 200 with no columns: the client would create a data source of nothing.
      if (!cols.length) throw new RoostError('BAD_REQUEST', 'no JSON objects found in the sample to infer a schema from (one JSON object a line)');
      return sendJson(ctx, 200, { analysis: { columns: cols.map((c) => ({ name: c.name, path: c.jsonPath, recommended_type: c.type, present_pct: c.presentPct })), schema: ndjsonSchemaText(cols) }, format });
    }
    const r = await inferCsvSchema(s.head, { dialect: analyzeDialect, hasHeader: headerParam(params), complete: s.complete }).catch((e) => { throw csvToRoost(e); });
    if (!guess) r.columns = r.columns.map((c) => ({ ...c, type: asString(c.nullable) }));
    sendJson(ctx, 200, {
      // present_pct as for NDJSON: the share of the sampled rows reaching the column that hold a value
      // in it (the tb CLI reads a column as nullable when it is under 1; it was always 1, so a column
      // the schema makes Nullable was shown as not nullable). A row too short for the column is
      // refused at import, not NULL there: not counted.
      analysis: { columns: r.columns.map((c) => ({ name: c.name, recommended_type: c.type, nullable: c.nullable, present_pct: c.seen ? c.present / c.seen : 0 })), schema: formatSchema(r.columns) },
      dialect: { delimiter: r.dialect.delimiter, has_header: r.dialect.hasHeader, new_line: r.dialect.newline, escapechar: r.dialect.escape || null, quotechar: r.dialect.quote },
      format, rows_sampled: r.rowsSampled,
    });
  });
}

/**
 * Why a condition could leave the parentheses it is put in (undefined when it cannot): read
 * as ClickHouse's lexer reads it (strings and quoted names with backslash escapes and doubled
 * quotes, `--` and `//` line comments, block comments), its brackets never close one it did not
 * open and all are closed at its end. What this reader might take differently from ClickHouse (`#` and `$`
 * outside quotes, a block comment inside a block comment, an unterminated quote) is refused.
 */
export function conditionEscapes(cond: string): string | undefined {
  // Placed as `(<cond>\n)`: a line comment at its end ends at that line end.
  return sqlTextEscapes(cond, { lineComments: true });
}

/**
 * A JSON array of objects (`[{"a":1}, ...]`, a common export) is neither format: read as CSV
 * it gave columns named after its values (`a_1`, `b_x`), read as NDJSON no object at all.
 */
function refuseJsonArray(head: Buffer): void {
  if (/^\uFEFF?\s*\[\s*(\{|$)/.test(head.subarray(0, 4096).toString('utf8'))) {
    throw new RoostError('UNSUPPORTED_FORMAT', 'the body is a JSON array; send NDJSON (one JSON object a line, no enclosing [ ]) or CSV');
  }
}

/** The type of an inferred column under type_guessing=false: a String (Nullable where values are missing). */
function asString(nullable: boolean): string {
  return nullable ? 'Nullable(String)' : 'String';
}

/** Parameters that change what an import does: one value each, whether from the URL, the form or both. */
const SINGLE_VALUED = new Set(['mode', 'format', 'name', 'schema', 'replace_condition', 'delete_condition', 'dry_run']);

/**
 * A form field over the URL's parameters (the body's wins), except that one of SINGLE_VALUED
 * given twice with different values — in the form, or in the form and the URL — is a 400 naming
 * it: `-F mode=replace` over `?mode=append` replaced, and `-F mode=replace -F mode=append` appended.
 */
function setField(params: URLSearchParams, k: string, v: string, seen: Set<string>): void {
  if (SINGLE_VALUED.has(k)) {
    const before = params.getAll(k);
    if (before.some((b) => b !== v)) throw new RoostError('INVALID_PARAMETER', `${k} is given twice with different values (in the URL and the form, or twice in the form); give it once (nothing was stored)`, { details: { parameter: k } });
  }
  if (seen.has(k)) params.append(k, v);
  else params.set(k, v);
  seen.add(k);
}

/** A parameter given at most once (or repeated with the same value): two values are a 400 naming it, not the first or last taken. */
function oneValue(params: URLSearchParams, name: string): string | null {
  const all = params.getAll(name);
  if (new Set(all).size > 1) throw new RoostError('INVALID_PARAMETER', `${name} is given ${all.length} times with different values; give it once`, { details: { parameter: name } });
  return all.length ? all[0]! : null;
}

/** type_guessing (Tinybird's; true unless false): a value that is neither is a 400, not a guess. */
function typeGuessing(params: URLSearchParams): boolean {
  return booleanParam(params, 'type_guessing') ?? true;
}

/** header= / dialect_header= (whether the CSV's first row is its header); undefined: detected. */
function headerParam(params: URLSearchParams): boolean | undefined {
  return booleanParam(params, params.get('dialect_header') !== null ? 'dialect_header' : 'header');
}

/** A true/false parameter (1/0, yes/no too); undefined when absent; a 400 naming it otherwise. */
function booleanParam(params: URLSearchParams, name: string): boolean | undefined {
  const v = params.get(name);
  if (v === null || v === '') return undefined;
  if (/^(1|true|yes)$/i.test(v)) return true;
  if (/^(0|false|no)$/i.test(v)) return false;
  throw new RoostError('INVALID_PARAMETER', `${name}=${JSON.stringify(v.slice(0, 40))} is neither true nor false; send ${name}=true or ${name}=false`);
}

/** The largest row an import takes (the validator's default maxRowBytes). */
const MAX_ROW_BYTES = 8 << 20;

/**
 * The sample a schema is inferred from: the first MiB, or more when that does not hold
 * `lines` whole lines (a header and one row; one NDJSON object), up to the largest row an
 * import takes. A row of 2 MiB inferred nothing (NDJSON: a 200 with no columns) or String
 * for every column (CSV, no row seen), though the same rows are then imported.
 */
async function sampleOf(body: AsyncIterable<Buffer>, lines: number): Promise<Peeked> {
  const s = await peekBody(body, 1 << 20);
  const ends = (b: Buffer, from: number) => { let n = 0; for (let i = b.indexOf(10, from); i >= 0 && n < lines; i = b.indexOf(10, i + 1)) n++; return n; };
  let seen = ends(s.head, 0);
  if (s.complete || seen >= lines) return s;
  // Read on, a piece at a time, until the lines are whole (or the largest row is passed).
  const it = s.rest[Symbol.asyncIterator]();
  const parts: Buffer[] = [s.head];
  let n = s.head.length;
  let complete = false;
  while (seen < lines && n < lines * MAX_ROW_BYTES + (1 << 20)) {
    const r = await it.next();
    if (r.done) { complete = true; break; }
    parts.push(r.value);
    n += r.value.length;
    seen += ends(r.value, 0);
  }
  const head = Buffer.concat(parts, n);
  const rest = (async function* () { if (!complete) for (let r = await it.next(); !r.done; r = await it.next()) yield r.value; })();
  return { head, rest, complete, body: (async function* () { if (head.length) yield head; yield* rest; })(), release: () => { void it.return?.().catch(() => {}); } };
}

/**
 * The parameters of a rows delete: the query string with a form body over it, urlencoded (what
 * Tinybird's clients send), multipart or a JSON object. A JSON or multipart body was ignored:
 * the answer said delete_condition was missing, and a dry_run sent that way was not seen.
 */
async function deleteParams(ctx: Ctx): Promise<URLSearchParams> {
  const type = String(ctx.req.headers['content-type'] ?? '').toLowerCase();
  if (/^application\/(.+\+)?json/.test(type)) {
    const body = await readJson<unknown>(ctx);
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new RoostError('BAD_REQUEST', 'send a JSON object, e.g. {"delete_condition": "country = \'ES\'", "dry_run": true}');
    const fields = new URLSearchParams();
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
      // A number or boolean is no condition: `{"delete_condition": true}` (or 1) deleted every row.
      if (k === 'delete_condition' && typeof v !== 'string') throw new RoostError('INVALID_PARAMETER', `delete_condition must be a string, a SQL condition over the data source's columns (e.g. "country = 'ES'"); got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') fields.append(k, String(v));
      else if (k === 'dry_run') throw new RoostError('INVALID_PARAMETER', 'dry_run must be a boolean');
    }
    return mergeForm(new URLSearchParams(ctx.query), fields);
  }
  // Each of the query string and the form one value a name (a form's second delete_condition
  // was the one run, silently); the form's over the query's.
  for (const k of ['delete_condition', 'dry_run']) oneValue(ctx.query, k);
  if (!type.startsWith('application/x-www-form-urlencoded') && !multipartBoundary(type)) return new URLSearchParams(ctx.query);
  const fields = formOf(textOf(await readBody(ctx)));
  for (const k of ['delete_condition', 'dry_run']) {
    oneValue(fields, k);
    // The URL's and the form's differing: said (the form's won — `?dry_run=true` with a form's
    // dry_run=false deleted for real).
    const q = ctx.query.get(k);
    const f = fields.get(k);
    if (q !== null && f !== null && q !== f) throw new RoostError('INVALID_PARAMETER', `${k} is given in the URL and in the form with different values; give it once (nothing was deleted)`, { details: { parameter: k } });
  }
  return mergeForm(ctx.query, fields);
}

/**
 * A new data source may not be named like a pipe or data source of the workspace that differs only
 * in case (`Events` beside `events`): told apart by case alone in SQL, scopes and logs, and one
 * folder of the events buffer on a case-insensitive file system.
 */
function refuseCaseTwin(s: State, ws: Workspace, name: string): void {
  const clash = quarantineClash(s, ws.tenant, ws.name, name, 'datasource');
  if (clash) throw new RoostError('CONFLICT', clash);
  const twin = nameHolder(s, ws.tenant, ws.name, name);
  if (twin && twin.name !== name) {
    throw new RoostError('CONFLICT', `${twin.kind === 'pipe' ? 'a pipe' : 'a data source'} is named "${twin.name}"; names of pipes and data sources must differ other than in case`, { details: { name: twin.name, kind: twin.kind } });
  }
}

/** Data source names being created or dropped (tenant/workspace/name) in this process. */
const claimedNames = new Set<string>();

/**
 * A table of a data source being dropped — recorded in the state in the same change as the drop —
 * or being created — recorded before its CREATE TABLE, removed in the change that puts the data
 * source in the state (`tablesToDrop/<tenant>/<data source id>:<table>`). The record goes once
 * the table is dropped. A kill -9 between the state change and the DROP, or between the CREATE
 * and the state change, left tables that nothing named (their rows in `storage_bytes`) until a
 * create of the name; the next start drops them now, unless a data source has them by then.
 */
interface TableToDrop { workspaceId: string; database: string; table: string; dataSource: string; dataSourceTable: string; at: number }
const TABLES_TO_DROP = 'tablesToDrop';

function tablesToDrop(ws: Workspace, ds: DataSource): Array<[string, TableToDrop]> {
  return [ds.table, `${ds.table}_quarantine`].map((table) => [`${ds.id}:${table}`, { workspaceId: ws.id, database: ws.database, table, dataSource: ds.name, dataSourceTable: ds.table, at: Date.now() }]);
}
function tablesToDropOps(ws: Workspace, ds: DataSource): Op[] {
  return tablesToDrop(ws, ds).map(([key, value]) => ({ op: 'put', path: [TABLES_TO_DROP, ws.tenant, key], value }));
}
/** The records of a data source's tables, removed as the tables are its (its create made it into the state). */
function tablesKeptOps(ws: Workspace, ds: DataSource): Op[] {
  return tablesToDrop(ws, ds).map(([key]) => ({ op: 'del', path: [TABLES_TO_DROP, ws.tenant, key] }));
}
/**
 * Whether a later try may drop the table now: not once its workspace is gone or has another
 * database, nor once a data source has the table (a create of the name drops leftovers itself);
 * and only while no create or drop of the name runs (its claim, released by the caller after).
 */
function tablesHold(state: State, tenant: string, t: TableToDrop): DropHold {
  return () => {
    const now = state.list<Workspace>('workspaces', tenant).find((w) => w.id === t.workspaceId);
    if (!now || now.database !== t.database) return 'keep';
    if (listDataSources(state, now.tenant, now.name).some((d) => d.table === t.dataSourceTable)) return 'keep';
    // The name the table is called by too (a data source renamed keeps its table's name): a
    // create of that name, in flight and not yet in the state, makes tables of that name (a
    // review saw a resumed drop take them from under it).
    const names = [...new Set([t.dataSource, t.dataSourceTable])];
    const held: Array<() => void> = [];
    for (const n of names) {
      const r = claimName(now, n);
      if (!r) { for (const h of held) h(); return 'wait'; }
      held.push(r);
    }
    return () => { for (const h of held) h(); };
  };
}
function droppedDone(app: App, tenant: string, key: string): () => void {
  return () => { app.state.write([{ op: 'del', path: [TABLES_TO_DROP, tenant, key] }]).catch((err) => app.log.warn('a dropped table stays recorded; dropped again at the next start', { tenant, key, err })); };
}

/** At start: the drops of data sources' tables a stop or a kill cut short are tried again. */
export function resumeTableDrops(app: App): void {
  for (const tenant of Object.keys(app.state.get<Record<string, unknown>>(TABLES_TO_DROP) ?? {})) {
    for (const [key, t] of Object.entries(app.state.get<Record<string, TableToDrop>>(TABLES_TO_DROP, tenant) ?? {})) {
      app.dropLater.resume(tenant, `${quoteIdent(t.database)}.${quoteIdent(t.table)}`, tablesHold(app.state, tenant, t), droppedDone(app, tenant, key));
    }
  }
}

/** Claims a data source name for a create or a drop; undefined when another request holds it. */
function claimName(ws: Workspace, name: string): (() => void) | undefined {
  const key = `${ws.tenant}/${ws.name}/${name}`;
  if (claimedNames.has(key)) return undefined;
  claimedNames.add(key);
  let done = false;
  return () => { if (!done) { done = true; claimedNames.delete(key); } };
}

function importResponse(ds: DataSource, r: ImportResult | undefined): Record<string, unknown> {
  return {
    id: r?.importId ?? ds.id,
    import_id: r?.importId,
    datasource: dataSourceView(ds),
    rows: r?.rows ?? 0,
    quarantine_rows: r?.quarantined ?? 0,
    invalid_lines: r?.quarantined ?? 0,
    // The counts under the names Tinybird's SDK reads from an append (its AppendResult).
    successful_rows: r?.rows ?? 0,
    quarantined_rows: r?.quarantined ?? 0,
    // replace_condition: valid rows of the body outside the condition (not stored, by definition).
    ...(r?.outsideCondition !== undefined ? { rows_outside_condition: r.outsideCondition } : {}),
    error: false,
  };
}

export async function runImport(app: App, ctx: Ctx, ws: Workspace, ds: DataSource, format: Format, body: AsyncIterable<Buffer>, mode: 'append' | 'replace', dialect: Partial<CsvDialect>, params: URLSearchParams, staged: boolean, replaceWhere?: string, creating = false, beforeCommit?: () => void): Promise<ImportResult> {
  let source: ImportSource;
  let hasHeader: boolean | undefined;
  let csvDialect = dialect;
  // Bytes as the client sent them (after gunzip): for NDJSON the import counts its converted rows.
  const read = { bytes: 0 };
  if (format === 'ndjson') {
    source = ndjsonSource(countingBytes(ndjsonShaped(body), read), ds.columns);
    hasHeader = false;
    csvDialect = { delimiter: ',', quote: '"', escape: '' };
  } else {
    source = { chunks: body };
    hasHeader = headerParam(params);
  }
  const t0 = performance.now();
  const r = await importRows(app, { ws, ds, mode, source, dialect: csvDialect, hasHeader, requestId: ctx.id, signal: ctx.signal, staged, replaceWhere, creating, beforeCommit: () => { beforeCommit?.(); beginCommit(ctx); } });
  app.metrics.nativeParseSeconds.observe((performance.now() - t0) / 1000);
  app.metrics.ingestRows.inc({ tenant: ws.tenant, format }, r.rows);
  if (format === 'ndjson') r.bytes = read.bytes;
  app.metrics.ingestBytes.inc({ tenant: ws.tenant, format }, r.bytes);
  app.metrics.quarantinedRows.inc({ tenant: ws.tenant, format }, r.quarantined);
  return r;
}
