/**
 * Checks pipe nodes against the tenant's engine when they are saved, as Tinybird does (and as
 * its `ignore_sql_errors=true` skips). The analyzer (check.ts) only knows names: a node selecting
 * a column that does not exist passed it, and then every call failed. Here each node that a save
 * creates or changes (and each node of the pipe that reads it) is compiled as a call with no
 * parameters would compile it, and the engine is asked for its result's columns without reading
 * data: `DESCRIBE TABLE (<compiled SQL>)`, which ClickHouse 18.16 (the oldest remote server Roost
 * supports) and the embedded 26.x both take. It runs under the calls' read-only settings and a
 * short time limit: a scalar subquery is evaluated during analysis, and must not run long.
 *
 * A change to a pipe whose endpoint other pipes read also checks the nodes of those pipes that
 * read it (and, through their endpoints, the pipes that read them), when the endpoint's compiled
 * SQL changes: a save that would break them is refused (409).
 *
 * Not checked (said in the plan as `skipped`, with a `reason`): a node whose template cannot be
 * rendered without values (a parameter without a default, `error()`), or that reads such a node or
 * pipe; a node reading what the saver may not read (CheckView); nodes saved with
 * `ignore_sql_errors` that a change reaches only as readers. The saved pipe's own skipped nodes are
 * told to the saver (`uncheckedWarnings`, the answer's `warnings`): a `skipped` text names only
 * what the saved pipe's own SQL names, never what another pipe's endpoint reads or why it cannot
 * be rendered, nor which data sources behind it the saver may not read.
 *
 * The plan is computed from state (synchronously, no I/O); the engine runs it outside the state
 * transaction, and the transaction computes it again and compares, so what is saved is what was
 * checked (handlers retry when state changed in between).
 */
import type { State } from '../state/state.js';
import type { Engine } from '../cells/engine.js';
import type { Tenant } from '../../tenants/registry.js';
import { RoostError, EngineUnavailable, QueryFailed } from '../errors.js';
import { compilePipe, SqlError, type NameMapEntry } from '../native/sql.js';
import { workspaceNameMap } from '../datasources/name-map.js';
import { isTemplate, renderTemplate, templateParameters } from './template/index.js';
import { renderShared } from './render-share.js';
import { endpointNode, findPipe, pipesUsing, type Pipe, type PipeNode } from './pipe.js';
import { publicNames, withPublicNames } from '../query/public-names.js';
import { ENGINE_SETTINGS, SYNTAX_POSITION, withoutSettingsClause } from '../query/engine-message.js';
import { hideQuotedQuery } from '../query/run.js';
import { pipesNamedAndCounted } from '../../auth/authorize.js';

/** Longest time the engine may take to analyse one node (seconds; whole seconds for 18.x). */
export const CHECK_TIME_LIMIT_S = 5;

export interface EngineCheckItem {
  pipe: string;
  node: string;
  /** The query the engine analyses. */
  sql?: string;
  /** Why the node is not checked, in words the saver may see (only what the saved pipe's SQL names). */
  skipped?: string;
  /** Which kind of reason `skipped` is (`reader_unchecked`: see planEngineCheck). */
  reason?: SkipReason | 'reader_unchecked';
  /** Found before the engine: the analyzer refused the rendered SQL, or a pipe it reads has no endpoint. */
  failed?: string;
  /** The SQL inlines other pipes' nodes: the engine's errors lose the query they quote. */
  inlines?: boolean;
  /**
   * A reader (another pipe's node) that reads what the saver may not read: checked all the same
   * (a change breaking it was saved without a word), its failure told without the engine's text.
   */
  opaque?: boolean;
  /**
   * A reader in a pipe the saver may not read (PIPES:READ): counted, never named, in a 409 or a
   * warning, and its failure told without the engine's text (which quotes its SQL's values).
   */
  hidden?: boolean;
  /**
   * A node of another pipe: how it compiled before the change. A failure it already had then is
   * not this change's doing, and does not refuse it.
   */
  before?: Compiled;
}

export interface EngineCheckPlan {
  /** Nodes of the saved pipe: a failure is the request's fault (400). */
  own: EngineCheckItem[];
  /** Nodes of other pipes that read it: a failure is a conflict with them (409). */
  dependents: EngineCheckItem[];
}

/**
 * Why a node is not checked: `template_needs_values` (it, a node it reads or the endpoint of a pipe
 * it reads cannot be rendered without parameter values), `reads_unreadable` (it reads, directly or
 * through the pipes it reads, data the credential saving it may not read), `pipes_nest_too_deep`.
 */
export type SkipReason = 'template_needs_values' | 'reads_unreadable' | 'pipes_nest_too_deep';

export type Compiled = { sql: string; reads?: string[]; inlines?: boolean } | { skipped: string; reason: SkipReason } | { failed: string };

/**
 * Why a node of the saved pipe is not checked, as the saver is told. A skip found in another pipe
 * (one it reads) is told by the name the node's SQL gives it and the kind of reason only: that
 * pipe's template errors, the pipes and data sources behind it are not the saver's to learn.
 */
function throughPipe(pipe: string, reason: SkipReason): string {
  switch (reason) {
    case 'template_needs_values': return `it reads pipe "${pipe}", whose endpoint cannot be rendered without parameter values`;
    case 'reads_unreadable': return 'it reads, through the pipes it reads, data that the credential saving it may not read (the engine quotes values in its errors, so it is not asked)';
    case 'pipes_nest_too_deep': return `it reads pipe "${pipe}", through which pipes nest more than ${MAX_DEPTH} levels deep (or read each other): calls that read that far fail, since a pipe may read pipes at most ${MAX_DEPTH} deep`;
  }
}

/**
 * What the credential saving the pipe may read. The engine check runs the node's SQL (a table
 * function's arguments, a scalar subquery in them, are computed during analysis, and the engine
 * quotes their values in its errors: `generateRandom((SELECT secret FROM ...))` answered "Syntax
 * error ... -secret"), so it sees the data as the saver would: data sources through the saver's
 * row filters, and a node reading anything the saver may not read (`DATASOURCES:READ` of each
 * name, as /v0/sql asks) is not checked (`skipped`). Without a view the check reads as `ADMIN`.
 */
export interface CheckView {
  rowFilters?: Record<string, string>;
  mayRead?: (name: string) => boolean;
  /** Whether the saver may read another pipe (PIPES:READ): a node reading one it may not is not checked (its SQL, inlined, is in the engine's errors). */
  mayReadPipe?: (name: string) => boolean;
}

const MAX_DEPTH = 16;

/** Data sources, quarantine tables and service views win over a pipe of the same name (as in compile.ts). */
function isDataName(state: State, pipe: Pipe, r: string): boolean {
  return r.includes('.') || state.get('datasources', pipe.tenant, pipe.workspace, r.replace(/_quarantine$/, '')) !== undefined;
}

/** The nodes `target` needs by their saved dependencies (a template's list every branch's names). */
function closure(pipe: Pipe, target: PipeNode): PipeNode[] {
  const byName = new Map(pipe.nodes.map((n) => [n.name, n] as const));
  const need = new Set([target.name]);
  const stack = [target];
  while (stack.length) {
    for (const d of stack.pop()!.dependencies) {
      const dep = byName.get(d);
      if (dep && !need.has(d)) { need.add(d); stack.push(dep); }
    }
  }
  return pipe.nodes.filter((n) => need.has(n.name));
}

/** Does a template name no parameter (nothing a call could change)? */
function noParameters(sql: string): boolean {
  try { return templateParameters(sql).length === 0; } catch { return false; }
}

/**
 * `target` of `pipe` compiled as a call without parameters compiles it: templates rendered with
 * their defaults only, other pipes' endpoints inlined (`lookup` answers the pipe a name means,
 * the one being saved included). No caches: the pipe may not be saved yet.
 */
function compileForCheck(state: State, pipe: Pipe, target: PipeNode, lookup: (name: string) => Pipe | undefined, view: CheckView = {}, visiting: string[] = []): Compiled {
  const nodes = closure(pipe, target);
  const own = new Set(nodes.map((n) => n.name));
  const rendered: Array<{ name: string; sql: string }> = [];
  for (const n of nodes) {
    if (!isTemplate(n.sql)) { rendered.push({ name: n.name, sql: n.sql }); continue; }
    try {
      rendered.push({ name: n.name, sql: renderShared(pipe.tenant, () => renderTemplate(n.sql, {}, {})).sql });
    } catch (e) {
      if (e instanceof RoostError && e.code === 'RATE_LIMITED') throw e;
      // A template with no parameter at all renders the same on every call: failing now, it
      // fails on every call (`{{ 1/0 }}` was saved with a warning, then every call was a 422).
      if (e instanceof RoostError && noParameters(n.sql)) {
        throw new RoostError(e.code, `node "${n.name}": ${e.message}; the template has no parameter, so it fails on every call (nothing was saved)`, { details: { ...e.details, node: n.name } });
      }
      const why = e instanceof Error ? e.message : String(e);
      return { reason: 'template_needs_values', skipped: `${n.name === target.name ? 'it ' : `it reads node "${n.name}", which `}cannot be rendered without parameter values (${why})` };
    }
  }
  const extra: Record<string, NameMapEntry> = {};
  const reads = new Set<string>();
  for (const n of nodes) {
    for (const d of n.dependencies) {
      if (own.has(d) || extra[d] !== undefined || isDataName(state, pipe, d)) continue;
      const p = d === pipe.name ? undefined : lookup(d);
      if (!p) continue;
      // A pipe the saver may not read (PIPES:READ): its nodes, inlined, and their values would be in the errors.
      if (view.mayReadPipe && !view.mayReadPipe(p.name)) return { reason: 'reads_unreadable', skipped: throughPipe(p.name, 'reads_unreadable') };
      if (visiting.includes(p.name) || visiting.length >= MAX_DEPTH) return { reason: 'pipes_nest_too_deep', skipped: visiting.includes(p.name) ? `pipes read each other at "${p.name}"` : `pipes nest more than ${MAX_DEPTH} levels deep at "${p.name}": calls that read that far fail (a pipe may read pipes at most ${MAX_DEPTH} deep)` };
      const ep = endpointNode(p);
      if (!ep) return { failed: `pipe "${p.name}" has no endpoint to read` };
      const sub = compileForCheck(state, p, ep, lookup, view, [...visiting, pipe.name]);
      if ('skipped' in sub) return { reason: sub.reason, skipped: throughPipe(p.name, sub.reason) };
      if ('failed' in sub) return { failed: `pipe "${p.name}" it reads: ${sub.failed}` };
      extra[d] = { kind: 'query', sql: sub.sql };
      for (const r of sub.reads ?? []) reads.add(r);
    }
  }
  try {
    const compiled = compilePipe(rendered, { ...extra, ...workspaceNameMap(state, pipe.tenant, pipe.workspace, view.rowFilters) }, target.name);
    // What the rendered SQL reads (not another node, not a pipe read through its endpoint).
    const direct = new Set<string>();
    for (const deps of Object.values(compiled.dependencies)) for (const d of deps) if (!own.has(d) && extra[d] === undefined) direct.add(d);
    for (const d of direct) reads.add(d);
    const refused = view.mayRead ? [...direct].filter((r) => !view.mayRead!(r)) : [];
    // Only names of this pipe's own SQL: a name read through another pipe's endpoint is refused
    // (and told without its name) where that pipe is compiled, above.
    if (refused.length) return { reason: 'reads_unreadable', skipped: `it reads ${refused.map((r) => `"${r}"`).join(', ')}, which the credential saving it may not read (the engine quotes values in its errors, so it is not asked)` };
    return { sql: compiled.sql, reads: [...reads].sort(), ...(Object.keys(extra).length ? { inlines: true } : {}) };
  } catch (e) {
    if (e instanceof SqlError) return { failed: `${e.node && e.node !== target.name ? `node "${e.node}": ` : ''}${e.message}` };
    throw e;
  }
}

function item(state: State, pipe: Pipe, n: PipeNode, lookup: (name: string) => Pipe | undefined, view: CheckView): EngineCheckItem {
  const c = compileForCheck(state, pipe, n, lookup, view);
  // (`inlines` kept: the engine's errors on SQL that inlines other pipes quote their SQL — a
  // reader pipe the saver may not read was shown whole, literals and all, in the 409.)
  return { pipe: pipe.name, node: n.name, ...('sql' in c ? { sql: c.sql, ...(c.inlines ? { inlines: true } : {}) } : c) };
}

/** Nodes of `pipe` reading any of `names`, directly or through other nodes of it. */
function readersOf(pipe: Pipe, names: Set<string>): Set<string> {
  const out = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const n of pipe.nodes) {
      if (out.has(n.name)) continue;
      if (n.dependencies.some((d) => names.has(d) || (out.has(d) && d !== n.name))) { out.add(n.name); grew = true; }
    }
  }
  return out;
}

/**
 * What a save of `after` (over `before`, undefined for a new pipe) asks the engine. Nodes are new
 * or changed when their id is new or their SQL or name changed; publishing counts as changing the
 * published node. `ignoreAll` (the request's `ignore_sql_errors=true`) plans nothing; a node
 * carrying `ignoreSqlErrors` is not checked, and a save whose changed nodes all carry it does not
 * check the pipes that read this one.
 */
export function planEngineCheck(state: State, before: Pipe | undefined, after: Pipe, ignoreAll: boolean, view: CheckView = {}): EngineCheckPlan {
  const plan: EngineCheckPlan = { own: [], dependents: [] };
  if (ignoreAll) return plan;
  const old = new Map((before?.nodes ?? []).map((n) => [n.id, n] as const));
  const changed = after.nodes.filter((n) => {
    const o = old.get(n.id);
    return !o || o.sql !== n.sql || o.name !== n.name || (n.id === after.endpoint && before?.endpoint !== after.endpoint);
  });
  if (changed.length === 0 && before?.endpoint === after.endpoint) return plan;
  const lookup = (name: string) => (name === after.name ? after : findPipe(state, after.tenant, after.workspace, name));
  const names = new Set(changed.map((n) => n.name));
  const readers = readersOf(after, names);
  for (const n of after.nodes) {
    if (n.ignoreSqlErrors) continue;
    if (names.has(n.name) || readers.has(n.name)) plan.own.push(item(state, after, n, lookup, view));
  }
  if (changed.length && changed.every((n) => n.ignoreSqlErrors)) return plan;
  if (!before) return plan;
  // Other pipes read the endpoint: checked again when what it compiles to changes (compiled as
  // ADMIN would: under a saver who may not read what it reads, before and after compiled to the
  // same "skipped" and a breaking change was taken for none).
  const compiledEndpoint = (p: Pipe, look: (name: string) => Pipe | undefined): string => {
    const ep = endpointNode(p);
    return ep ? JSON.stringify(compileForCheck(state, p, ep, look, {})) : 'none';
  };
  const beforeLookup = (name: string) => findPipe(state, after.tenant, after.workspace, name);
  if (compiledEndpoint(before, beforeLookup) === compiledEndpoint(after, lookup)) return plan;
  // Does the saved pipe's endpoint, as the saver may read it, compile (read nothing the saver may not)?
  let readable: boolean | undefined;
  const savedReadable = (): boolean => {
    if (readable === undefined) {
      const ep = endpointNode(after);
      readable = ep !== undefined && 'sql' in compileForCheck(state, after, ep, lookup, view);
    }
    return readable;
  };
  const queue: Array<{ name: string }> = [{ name: after.name }];
  const seen = new Set([after.name]);
  const planned = new Set<string>();
  while (queue.length) {
    const { name } = queue.shift()!;
    for (const readerName of pipesUsing(state, after.tenant, after.workspace, name)) {
      const reader = lookup(readerName);
      if (!reader || reader.name === after.name) continue;
      const hit = readersOf(reader, new Set([name]));
      for (const n of reader.nodes) {
        // A pipe reading this one and a reader of it (both paths lead to it) is planned once.
        if (!hit.has(n.name) || n.ignoreSqlErrors || planned.has(`${reader.name}\u0000${n.name}`)) continue;
        planned.add(`${reader.name}\u0000${n.name}`);
        const it = item(state, reader, n, lookup, view);
        const hidden = view.mayReadPipe !== undefined && !view.mayReadPipe(reader.name);
        if (it.reason === 'reads_unreadable') {
          // Not the saver's to read, but the saver's change to break: asked as ADMIN would ask,
          // and a failure told without what the engine says (it quotes the reader's SQL and values)
          // — only when the saved pipe's own endpoint reads nothing the saver may not read. Else
          // the ADMIN compile runs the saver's SQL with rights the saver has not (a scalar
          // subquery over a secret decided 409 or 200: one bit at a time), so the reader is not
          // checked, and the answer says so (`reader_unchecked`).
          if (!savedReadable()) { plan.dependents.push({ pipe: reader.name, node: n.name, skipped: 'not checked', reason: 'reader_unchecked', ...(hidden ? { hidden } : {}) }); continue; }
          plan.dependents.push({ ...item(state, reader, n, lookup, {}), opaque: true, before: compileForCheck(state, reader, n, beforeLookup, {}), ...(hidden ? { hidden } : {}) });
          continue;
        }
        // A reader in a pipe the saver may not read: checked, its failure told without the
        // engine's text, which quotes the reader's SQL (a 409 showed a literal of a pipe GET
        // refuses the saver, and named it: a regression probe).
        plan.dependents.push({ ...it, before: compileForCheck(state, reader, n, beforeLookup, view), ...(hidden ? { opaque: true, hidden } : {}) });
      }
      const ep = endpointNode(reader);
      if (ep && hit.has(ep.name) && !seen.has(reader.name)) { seen.add(reader.name); queue.push({ name: reader.name }); }
    }
  }
  return plan;
}

/** A node of the saved pipe that was saved without the engine's check, as the answer tells it. */
export interface UncheckedNode {
  pipe: string;
  node: string;
  reason: SkipReason | 'reader_unchecked';
  message: string;
}

/**
 * The saved pipe's own nodes the plan leaves unchecked (the answer's `warnings`). Nodes of other
 * pipes that read it are not told: they are not the saver's, and were checked when they were saved.
 */
export function uncheckedNodes(plan: EngineCheckPlan): UncheckedNode[] {
  const own = plan.own.filter((i) => i.skipped !== undefined).map((i) => ({
    pipe: i.pipe, node: i.node, reason: i.reason ?? 'template_needs_values',
    message: `node "${i.node}" was saved without the engine's check of its SQL: ${i.skipped}. Its errors, if any, show when it is called`,
  }));
  // Readers left unchecked because the saved pipe reads what the saver may not (planEngineCheck):
  // named (as a 409 names them), without why they would fail.
  const unchecked = plan.dependents.filter((i) => i.reason === 'reader_unchecked');
  const readers = unchecked.filter((i) => !i.hidden).map((i) => ({
    pipe: i.pipe, node: i.node, reason: 'reader_unchecked' as const,
    message: `pipe "${i.pipe}" (node "${i.node}") reads this pipe's endpoint and was not checked against this change (this pipe reads what the credential saving it may not read): call it to see whether it still works`,
  }));
  // (Pipes the saver may not read are counted, not named.)
  const hidden = new Set(unchecked.filter((i) => i.hidden).map((i) => i.pipe)).size;
  if (hidden) readers.push({ pipe: '', node: '', reason: 'reader_unchecked', message: `${hidden} ${hidden === 1 ? 'pipe' : 'pipes'} this credential may not read ${hidden === 1 ? 'reads' : 'read'} this pipe's endpoint and ${hidden === 1 ? 'was' : 'were'} not checked against this change` });
  return [...own, ...readers];
}

/** Same checks with the same SQL (a plan computed again in the transaction that saves). */
export function samePlan(a: EngineCheckPlan, b: EngineCheckPlan): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export interface EngineAccess {
  state: State;
  tenant: Tenant;
  workspace: string;
  engine: () => Engine;
  /** Creates the tenant's service tables (a node reading `tinybird.*` or `roost.*`). */
  ensureService: () => Promise<void>;
  /** The read-only settings calls run with (query/run.ts `querySettings`). */
  settings: Record<string, string | number>;
  /** The tenant's query time limit (ms): the check's is the shorter of it and CHECK_TIME_LIMIT_S. */
  timeoutMs: number;
  /** Holds one of the tenant's concurrent query slots for the check (tenants/limits.ts). */
  acquire: () => () => void;
  /** The checked SQL holds what the saver may not see (its row filters' views): errors lose the query they quote. */
  hideQuery?: boolean;
}

interface Failure { pipe: string; node: string; error: string; clickhouse_code?: number; clickhouse_error?: string }

/** How the save check wraps a node's SQL (the engine describes the columns it would answer). */
const WRAP_HEAD = 'DESCRIBE TABLE (\n';

/** The engine's reason, without its `Code: N. DB::Exception:` wrapping, version and Roost's SETTINGS clause. */
export function engineReason(message: string, settingKeys: string[], sqlLength?: number): { reason: string; name?: string } {
  let m = withoutSettingsClause(message, settingKeys).trim();
  // A syntax error's position is in the check's wrapping (`DESCRIBE TABLE (\n…\n)`) of the node
  // as compiled, not in the node as written: the position and line are left out, the text at
  // the failure kept; failing at the wrapping's own `)` is the node ending too early.
  const at = SYNTAX_POSITION.exec(m);
  if (at) {
    if (sqlLength !== undefined && Number(at[1]) >= WRAP_HEAD.length + sqlLength + 2) {
      return { reason: 'Syntax error: the query ends before it is complete; finish the expression or clause it ends with', name: 'SYNTAX_ERROR' };
    }
    m = m.slice(0, at.index) + `failed at ${at[2]}` + m.slice(at.index + at[0].length);
  }
  m = m.replace(/^Query failed:\s*/, '');
  m = m.replace(/^Code:\s*\d+[.,]\s*(?:e\.displayText\(\)\s*=\s*)?(?:DB::Exception:\s*)?/, '');
  m = m.replace(/,\s*e\.what\(\)\s*=\s*DB::Exception\s*$/, '');
  m = m.replace(/\s*\(version [^)]*\)\s*$/, '');
  // The engine quotes the check's own wrapping: the user knows the node's SQL, not it.
  m = m.replace(/\bDESCRIBE TABLE \(\s*/g, '(');
  const name = /\(([A-Z][A-Z0-9_]+)\)\s*\.?$/.exec(m)?.[1];
  return { reason: m.trim(), name };
}

function isUnavailable(e: unknown): e is RoostError {
  return e instanceof EngineUnavailable || (e instanceof RoostError && (e.code === 'CELL_UNAVAILABLE' || e.code === 'ENGINE_UNAVAILABLE' || e.code === 'SHUTTING_DOWN'));
}

/**
 * Asks the engine about every node of the plan with SQL. Throws the first refusal: a node of the
 * saved pipe 400 `NODE_SQL_ERROR`, nodes of other pipes 409 `CONFLICT` (naming them); an engine
 * that cannot answer 503 (retryable), saying `ignore_sql_errors=true` saves without the check.
 */
export async function runEngineCheck(access: EngineAccess, plan: EngineCheckPlan, subject: string): Promise<void> {
  const items = [...plan.own, ...plan.dependents];
  if (!items.some((i) => i.sql !== undefined || i.failed !== undefined)) return;
  const limitS = Math.max(1, Math.min(CHECK_TIME_LIMIT_S, Math.floor(access.timeoutMs / 1000)));
  const settings = { ...access.settings, max_execution_time: limitS };
  const keys = [...Object.keys(settings), ...ENGINE_SETTINGS];
  const names = publicNames(access.state, access.tenant.slug, access.workspace);
  if (items.some((i) => i.sql?.includes('roost_svc_'))) await access.ensureService();
  const ask = async (i: EngineCheckItem): Promise<Failure | undefined> => {
    if (i.failed !== undefined) return { pipe: i.pipe, node: i.node, error: i.failed };
    if (i.sql === undefined) return undefined;
    const sql = stripTrailingSettings(i.sql);
    const release = access.acquire();
    try {
      await access.engine().exec(`${WRAP_HEAD}${sql}\n)`, { format: 'TSV', settings, timeoutMs: limitS * 1000 + 2000 });
      return undefined;
    } catch (e) {
      if (isUnavailable(e)) {
        withPublicNames(e, names);
        throw new RoostError(e.code, `pipe "${subject}" was not saved: its SQL could not be checked because the tenant's engine is not available (${e.message}); retry, or pass ignore_sql_errors=true to save it without the check`, {
          cause: e, retryable: e.retryable, headers: e.headers, details: { ...e.details, node: i.node, pipe: i.pipe },
        });
      }
      if (e instanceof RoostError && (e.code === 'RATE_LIMITED' || e.code === 'CLIENT_CLOSED')) throw e;
      if (!(e instanceof RoostError)) throw e;
      if (access.hideQuery || i.inlines) hideQuotedQuery(e);
      withPublicNames(e, names);
      const code = e instanceof QueryFailed ? e.clickhouseCode : typeof e.details.clickhouse_code === 'number' ? e.details.clickhouse_code : undefined;
      if (e.code === 'QUERY_TIMEOUT' || code === 159) {
        return { pipe: i.pipe, node: i.node, error: `the engine did not finish analysing it within ${limitS} s (a scalar subquery is computed during analysis)`, clickhouse_code: 159, clickhouse_error: 'TIMEOUT_EXCEEDED' };
      }
      const { reason, name } = engineReason(e.message, keys, Buffer.byteLength(sql));
      return { pipe: i.pipe, node: i.node, error: reason, clickhouse_code: code, clickhouse_error: name };
    } finally {
      release();
    }
  };
  for (const i of plan.own) {
    const f = await ask(i);
    if (f) {
      throw new RoostError('NODE_SQL_ERROR', `node "${f.node}" of pipe "${f.pipe}": the engine refused its SQL: ${f.error}. Fix the SQL, or pass ignore_sql_errors=true to save it unchecked`, {
        details: { node: f.node, pipe: f.pipe, ...(f.clickhouse_code !== undefined ? { clickhouse_code: f.clickhouse_code } : {}), ...(f.clickhouse_error ? { clickhouse_error: f.clickhouse_error } : {}) },
      });
    }
  }
  const failures: Failure[] = [];
  /** Failing readers in pipes the saver may not read: counted, not named or told. */
  const hiddenPipes = new Set<string>();
  for (const i of plan.dependents) {
    const f = await ask(i);
    if (!f) continue;
    // Already failing before the change (a reader left broken by an earlier forced save): not this change's.
    if (i.before && 'failed' in i.before) continue;
    if (i.before && 'sql' in i.before && await ask({ pipe: i.pipe, node: i.node, sql: i.before.sql })) continue;
    if (i.hidden) hiddenPipes.add(i.pipe);
    else failures.push(i.opaque ? { pipe: i.pipe, node: i.node, error: 'it would fail (what the engine says is not shown: the pipe reads what this credential may not read)' } : f);
  }
  if (failures.length || hiddenPipes.size) {
    const pipes = [...new Set(failures.map((f) => f.pipe))];
    const hidden = hiddenPipes.size;
    const why = failures.map((f) => `${f.pipe} (node ${f.node}): ${f.error}`).join('; ');
    throw new RoostError('CONFLICT', `pipes ${pipesNamedAndCounted(pipes, hidden)} read pipe "${subject}" and would fail with this change${why ? `: ${why}` : ''}. Change them first, or pass ignore_sql_errors=true to save anyway`, {
      details: { dependents: pipes, errors: failures, ...(hidden ? { hidden_dependents: hidden } : {}) },
    });
  }
}

const TRAILING_SETTINGS = /\s+SETTINGS\s+(?:[A-Za-z_][A-Za-z0-9_]*\s*=\s*(?:'(?:[^'\\]|\\.)*'|-?[0-9.]+|true|false)\s*,\s*)*[A-Za-z_][A-Za-z0-9_]*\s*=\s*(?:'(?:[^'\\]|\\.)*'|-?[0-9.]+|true|false)\s*$/i;

/** A node's own SETTINGS (how to compute, allowlisted by the analyzer) are left out of the check. */
function stripTrailingSettings(sql: string): string {
  return sql.replace(TRAILING_SETTINGS, '');
}
