/**
 * Engine error messages in the user's names. ClickHouse quotes the query it was
 * sent ("... in scope SELECT nope FROM ws_default_f74334d5.events AS events"),
 * and that query is written in Roost's layout: workspace databases
 * (`ws_<name>_<id>`), the tenant's service database (`roost_svc_<tenant>`),
 * stage/merge/old tables of an import, row-filter and service views inlined as
 * subqueries. `publicNames(...).message(text)` rewrites all of that back to
 * what the workspace's SQL may name: data sources (and `<ds>_quarantine`),
 * `tinybird.*` / `roost.*` service data sources, and the workspace's own name
 * for its database. Any other workspace database is never named.
 */
import type { State } from '../state/state.js';
import { RoostError, errorCodes } from '../errors.js';
import { listDataSources } from '../datasources/registry.js';
import { getWorkspace, type Workspace } from '../../tenants/registry.js';
import { SERVICE_TABLES } from '../service/service-log.js';

export interface PublicNames {
  /** `text` with every internal database and table name replaced by the user's name. */
  message(text: string): string;
}

/** Suffixes an import gives the tables it stages (src/ingest/stage.ts, src/ingest/import.ts). */
const STAGE_SUFFIX = /(?:__merge|__old)?__stage_[0-9a-f]{12}$/;
/**
 * Workspace databases (tenants/registry.ts): `ws_<lowercased name>_<first 8 hex of the id>`, and
 * `_r<6 hex>` after that once restored (tenants/backup.ts): without it a restored workspace's
 * engine errors showed its database's name.
 */
const WS_DB = 'ws_[a-z0-9_]*?_[0-9a-f]{8}(?:_r[0-9a-f]{6})?';
const SVC_DB = 'roost_svc_[A-Za-z0-9_]+';
const IDENT = '[A-Za-z0-9_]+';
/** A database-qualified table, each part bare, in backquotes or in double quotes. */
const QUALIFIED = new RegExp(`(?<![A-Za-z0-9_])([\`"]?)(${WS_DB}|${SVC_DB})\\1\\.([\`"]?)(${IDENT})\\3`, 'g');
/** A bare internal database name left over. */
/** Whether a text names an internal database: only a query as compiled does (errors of hidden queries). */
export function namesInternalDatabase(text: string): boolean {
  BARE_DB.lastIndex = 0;
  const hit = BARE_DB.test(text);
  BARE_DB.lastIndex = 0;
  return hit;
}
const BARE_DB = new RegExp(`(?<![A-Za-z0-9_])(${WS_DB}|${SVC_DB})(?![A-Za-z0-9_])`, 'g');
/** A stage table named without its database. */
const BARE_STAGE = /(?<![A-Za-z0-9_])([A-Za-z0-9_]+?(?:__merge|__old)?__stage_[0-9a-f]{12})(?![A-Za-z0-9_])/g;
/** A service view as name-map.ts inlines it: `(SELECT <columns> FROM roost_svc_<t>.<table> WHERE workspace_id = '<ws id>')`. */
const SERVICE_VIEW = new RegExp(`\\(\\s*SELECT\\s(?:[^()]|\\([^()]*\\))*?\\sFROM\\s+([\`"]?)${SVC_DB}\\1\\.([\`"]?)(${IDENT})\\2\\s+WHERE\\s+(?:\\1${SVC_DB}\\1\\.\\2\\3\\2\\.)?workspace(?:_id)?\\s*=\\s*'(?:[^'\\\\]|\\\\.)*'(\\s+GROUP\\s+BY\\s[^()]*?)?\\s*\\)`, 'g');
/** The start of a row-filter view as name-map.ts inlines it: `(SELECT * FROM <db>.<table> WHERE (<filter>))`. */
const FILTER_VIEW = new RegExp(`\\(\\s*SELECT\\s+\\*\\s+FROM\\s+([\`"]?)(${WS_DB})\\1\\.([\`"]?)(${IDENT})\\3\\s+WHERE\\s+\\(`, 'g');

/** Index just after the `)` closing the `(` at `open` (quotes and backquotes skipped), or -1. */
function closingParen(s: string, open: number): number {
  let depth = 0;
  let quote = '';
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
      continue;
    }
    if (c === "'" || c === '`' || c === '"') quote = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i + 1;
  }
  return -1;
}

/**
 * The names of one workspace, for rewriting its engine errors. Nothing is read from the
 * state until a message needs it (endpoint calls build one of these each).
 */
export function publicNames(state: State, tenant: string, workspace: string): PublicNames {
  return { message: (text) => rewrite(state, tenant, workspace, text) };
}

function rewrite(state: State, tenant: string, workspace: string, text: string): string {
  if (!text.includes('ws_') && !text.includes('roost_svc_') && !text.includes('__stage_')) return text;
  let ws: Workspace | undefined;
  try { ws = getWorkspace(state, tenant, workspace); } catch { ws = undefined; }
  const ownDb = ws?.database;
  // Table (as stored) → data source name; quarantine tables follow their data source.
  const byTable = new Map<string, string>();
  for (const ds of listDataSources(state, tenant, workspace)) {
    byTable.set(ds.table, ds.name);
    byTable.set(`${ds.table}_quarantine`, `${ds.name}_quarantine`);
  }
  const service = new Map(Object.entries(SERVICE_TABLES).map(([t, d]) => [t, d.publicName] as const));

  /** A table of this workspace's database as the user names it. */
  const tableName = (table: string): string => {
    const base = table.replace(STAGE_SUFFIX, '');
    return byTable.get(base) ?? base;
  };
  const qualified = (db: string, table: string): string => {
    if (db.startsWith('roost_svc_')) return service.get(table) ?? table;
    // Another workspace's tables are no names of this one: only the table part is kept
    // (the analyzer never lets a query reach them; this is a last line).
    return db === ownDb ? tableName(table) : table.replace(STAGE_SUFFIX, '');
  };

  // (The aggregating view over pipe_stats_rt is Tinybird's pipe_stats.)
  let out = text.replace(SERVICE_VIEW, (_m, _q1, _q2, table: string, groupBy?: string) => (groupBy && table === 'pipe_stats_rt' ? 'tinybird.pipe_stats' : service.get(table) ?? table));
  // Row-filter views: the whole subquery becomes the data source's name, so the filter
  // (part of the credential, not of the query) is not shown either.
  for (let guard = 0; guard < 1000; guard++) {
    FILTER_VIEW.lastIndex = 0;
    const m = FILTER_VIEW.exec(out);
    if (!m) break;
    const end = closingParen(out, m.index);
    const name = qualified(m[2]!, m[4]!);
    out = out.slice(0, m.index) + name + (end < 0 ? '' : out.slice(end));
  }
  out = out.replace(QUALIFIED, (_m, _q1, db: string, _q2, table: string) => qualified(db, table));
  out = out.replace(BARE_STAGE, (_m, table: string) => tableName(table));
  out = out.replace(BARE_DB, (db: string) => (db === ownDb ? workspace : db.startsWith('roost_svc_') ? 'tinybird' : 'another workspace'));
  return out;
}

/**
 * Rewrites a `RoostError`'s message in place (so every log of it sees the same text); answers
 * `e`. Analyzer errors (`sql_code`) are left as they are: they quote only the user's own text.
 */
export function withPublicNames<E>(e: E, names: PublicNames): E {
  if (e instanceof RoostError && e.details.sql_code === undefined) {
    const m = names.message(e.message);
    if (m !== e.message) e.message = m;
  }
  return e;
}

/**
 * An error's text in the workspace's names, for what the workspace reads besides the answer
 * (`tinybird.datasources_ops_log`): a `RoostError` is rewritten in place (so the answer that
 * follows says the same, as `withPublicNames`), any other error's text as it is returned.
 */
export function publicErrorText(state: State, tenant: string, workspace: string, e: unknown): string {
  const names = publicNames(state, tenant, workspace);
  if (e instanceof RoostError) return withPublicNames(e, names).message;
  // The server's own failures (a write its disk refused, a bug) named its files: the journal's,
  // the events buffer's, the engine's store (found by the disk round in the operations log).
  const sys = errorCodes(e).find((c) => /^E[A-Z]+$/.test(c.code) && c.syscall !== undefined);
  if (sys) return `the server could not use its disk (${sys.code})`;
  return names.message((e instanceof Error ? e.message : String(e)).replace(/(?:\/[\w.@+-]+){2,}\/?/g, '(a server path)'));
}
