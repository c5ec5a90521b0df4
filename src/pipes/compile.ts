/**
 * Compiles a pipe's endpoint for one call: renders the templates of the nodes
 * the endpoint needs with the request's parameters (fixed parameters win),
 * inlines other pipes' endpoints it reads as subqueries, and runs the result
 * through the analyzer with the workspace's name map.
 */
import type { State } from '../state/state.js';
import { RoostError } from '../errors.js';
import { isNamedOnly } from '../../auth/authorize.js';
import { analyzeSql, compilePipe, createNameMap, SqlError, type NameMapEntry, type SqlNameMap } from '../native/sql.js';
import { workspaceNameMap } from '../datasources/name-map.js';
import { isTemplate, renderTemplate, type RequestParams } from './template/index.js';
import { renderShared } from './render-share.js';
import { endpointNode, findPipe, listPipes, type Pipe, type PipeNode } from './pipe.js';
import { atNode, requireEndpoint } from './check.js';

export interface CallOptions {
  /** Request parameters (query string or form body); a repeated name gives a list. */
  params: RequestParams;
  /** A JWT's `fixed_params`: override request parameters of the same name. */
  fixedParams?: Record<string, string>;
  /**
   * The credential's fixed parameters for another pipe (a JWT fixes them per pipe): applied where
   * that pipe is read inside this one too, over those passed down. Without it a JWT fixing
   * `org=acme` on `byorg` read any org through a pipe `wrap` that reads `byorg` (this session's audit).
   */
  fixedFor?: (pipe: string) => Record<string, string>;
  /** Row filters of the credential per data source (`DATASOURCES:READ:<ds>:<filter>`). */
  rowFilters?: Record<string, string>;
  /** The template work of this call so far (made by the first compileEndpoint, shared with the pipes it reads). */
  budget?: { spent: number };
}

export interface CompiledEndpoint {
  sql: string;
  /** From the template's `max_threads(n)`. */
  maxThreads?: number;
  /** Names the endpoint reads outside its own nodes (data sources, views, pipes). */
  reads: string[];
}

/** Bounded caches; a state change (any `seq`) makes old keys unreachable. */
class Lru<V> {
  #max: number;
  #m = new Map<string, V>();
  constructor(max: number) { this.#max = max; }
  get(k: string): V | undefined { return this.#m.get(k); }
  set(k: string, v: V): void {
    if (this.#m.size >= this.#max) this.#m.delete(this.#m.keys().next().value!);
    this.#m.set(k, v);
  }
}
const nameMaps = new Lru<SqlNameMap>(64);
const plainPipes = new Lru<CompiledEndpoint>(256);
const probes = new Lru<Probe>(64);

/**
 * What a rendered template may name besides data sources: the pipe's own nodes and other
 * pipes' endpoints. `words` are the names worth looking for before asking the analyzer.
 */
interface Probe { map: SqlNameMap; words: string[] }

function probeFor(state: State, pipe: Pipe, fk: string, dsMap: () => Record<string, NameMapEntry>): Probe {
  const key = `${state.seq}|${pipe.tenant}|${pipe.workspace}|${pipe.id}|${fk}`;
  let probe = probes.get(key);
  if (probe) return probe;
  const stand = { kind: 'query', sql: 'SELECT 1' } as const;
  const entries: Record<string, NameMapEntry> = {};
  const words = new Set<string>(['tinybird.', 'roost.']);
  for (const p of listPipes(state, pipe.tenant, pipe.workspace)) {
    if (p.name !== pipe.name && p.endpoint) { entries[p.name] = stand; words.add(p.name); }
  }
  // Data sources and views win over a pipe of the same name; node names shadow both.
  Object.assign(entries, dsMap());
  for (const n of pipe.nodes) { entries[n.name] = stand; words.add(n.name); }
  probe = { map: createNameMap(entries), words: [...words] };
  probes.set(key, probe);
  return probe;
}

/**
 * The names a template node reads with this call's values. Which nodes or pipes a template
 * reads can depend on its parameters (`FROM {% if defined(x) %}a{% else %}b{% end %}`),
 * while the saved dependencies list every name any branch could read.
 */
function renderedReferences(n: PipeNode, sql: string, probe: () => Probe, isNodeOrPipe: (d: string) => boolean): string[] {
  const p = probe();
  // No node, pipe or service name in the text: only data sources are read.
  // (The saved dependencies name every branch's data sources: those this render does not name are not read.)
  if (!p.words.some((w) => w !== n.name && sql.includes(w))) return n.dependencies.filter((d) => !isNodeOrPipe(d) && sql.includes(d));
  try {
    return [...new Set(analyzeSql(sql, p.map).tables.map((t) => t.name))];
  } catch (e) {
    // The node's SQL is at fault; compiling the pipe reports it with the node's name (the saved
    // dependencies of a template list every branch's names: only those in this SQL are kept).
    if (e instanceof SqlError) return n.dependencies.filter((d) => sql.includes(d));
    throw e;
  }
}

const MAX_PIPE_DEPTH = 16;

function filterKey(f: Record<string, string> | undefined): string {
  return f && Object.keys(f).length ? JSON.stringify(Object.entries(f).sort()) : '';
}

/**
 * An error in a pipe the called endpoint reads (`visiting` is the chain above it): it names the
 * pipe the called endpoint reads (`"node": "n"` alone was a node the called pipe does not have).
 * Only that one, which the endpoint's own SQL names: the pipes and nodes further in may be ones
 * the caller may not read (a black-box probe read `inner_secret_pipe` and its node that way), so
 * their names are left out.
 */
function ofReadPipe(e: unknown, pipe: Pipe, visiting: readonly string[]): unknown {
  if (!visiting.length || !(e instanceof RoostError) || e.details.pipe !== undefined) return e;
  const named = visiting[1] ?? pipe.name;
  e.details.pipe = named;
  delete e.details.node;
  // The template's own error() and custom_error() texts are the pipe author's, for callers: kept.
  if (e.code === 'TEMPLATE_ERROR') return e;
  e.message = `${e.message} (in pipe "${named}", which the endpoint "${visiting[0]}" reads${visiting.length > 1 ? ', or in a pipe that one reads' : ''})`;
  return e;
}

/**
 * Compiles `pipe`'s endpoint node for a call.
 * @throws RoostError: `NOT_FOUND` (no endpoint), template errors (400/422) and
 * analyzer errors with the node's name.
 */
export function compileEndpoint(state: State, pipe: Pipe, opts: CallOptions, visiting: readonly string[] = []): CompiledEndpoint {
  const fk = filterKey(opts.rowFilters);
  // Only plain pipes (no templates, no other pipes' endpoints) are cached, so a hit for this
  // state, pipe and row filters is the answer whatever the parameters: looked up first.
  const plainKey = `${state.seq}|${pipe.tenant}|${pipe.workspace}|${pipe.id}|${fk}`;
  const hit = plainPipes.get(plainKey);
  if (hit) return hit;
  const target = requireEndpoint(pipe);
  // One render budget for the whole call: six nodes each near the budget held the event loop ~4 s.
  if (!opts.budget) opts = { ...opts, budget: { spent: 0 } };
  let base: Record<string, NameMapEntry> | undefined;
  const dsMap = (): Record<string, NameMapEntry> => (base ??= workspaceNameMap(state, pipe.tenant, pipe.workspace, opts.rowFilters));
  const isDataName = (r: string) => r.includes('.') || state.get('datasources', pipe.tenant, pipe.workspace, r.replace(/_quarantine$/, '')) !== undefined;
  const byName = new Map(pipe.nodes.map((n) => [n.name, n] as const));
  const isNodeOrPipe = (d: string) => byName.has(d) || (!isDataName(d) && findPipe(state, pipe.tenant, pipe.workspace, d) !== undefined);
  let probe: Probe | undefined;
  const getProbe = () => (probe ??= probeFor(state, pipe, fk, dsMap));

  // The nodes the target needs, found from the target outwards: a plain node by its saved
  // dependencies, a template by what it reads once rendered with this call's values.
  const sqlOf = new Map<string, { sql: string; maxThreads?: number }>();
  const readSet = new Set<string>();
  const queue: PipeNode[] = [target];
  const need = new Set([target.name]);
  while (queue.length) {
    const n = queue.shift()!;
    let deps = n.dependencies;
    if (isTemplate(n.sql)) {
      try {
        const r = renderShared(pipe.tenant, () => renderTemplate(n.sql, opts.params, { fixedParams: opts.fixedParams, budget: opts.budget }));
        sqlOf.set(n.name, r);
        deps = renderedReferences(n, r.sql, getProbe, isNodeOrPipe);
      } catch (e) {
        throw ofReadPipe(atNode(e, n), pipe, visiting);
      }
    } else {
      sqlOf.set(n.name, { sql: n.sql });
    }
    for (const d of deps) {
      const dep = byName.get(d);
      if (!dep) readSet.add(d);
      else if (!need.has(d)) { need.add(d); queue.push(dep); }
    }
  }
  const nodes = pipe.nodes.filter((n) => need.has(n.name));
  const reads = [...readSet];
  // What only admins read, named through this call's values (a template branch, a symbol()):
  // published only when the credential that saved the pipe may read it. Names among the saved
  // dependencies were checked when the pipe was saved (api/pipes.ts refusePublishingUnreadable).
  for (const r of reads) {
    if (!isNamedOnly(r) || pipe.publishesNamedOnly?.includes(r) || pipe.nodes.some((n) => n.dependencies.includes(r))) continue;
    throw new RoostError('FORBIDDEN', `pipe "${pipe.name}" reads ${r} with this call's parameters, which a pipe may publish only when the credential that saved it may read it; a workspace admin can save the pipe again to allow it`, { details: { pipe: pipe.name } });
  }

  // Pipes read by these nodes: data sources and views win over a pipe of the same name.
  const pipeRefs = reads.filter((r) => !isDataName(r) && findPipe(state, pipe.tenant, pipe.workspace, r));
  const plain = pipeRefs.length === 0 && !nodes.some((n) => isTemplate(n.sql));

  let maxThreads: number | undefined;
  const rendered = nodes.map((n) => {
    const r = sqlOf.get(n.name)!;
    if (r.maxThreads !== undefined) maxThreads = r.maxThreads;
    return { name: n.name, sql: r.sql };
  });

  const extra: Record<string, NameMapEntry> = {};
  for (const ref of pipeRefs) {
    if (visiting.includes(ref) || ref === pipe.name) {
      throw new RoostError('SQL_INVALID', `pipes depend on each other: ${[...visiting, pipe.name, ref].join(' -> ')}`, { details: { sql_code: 'PIPE_CYCLE' } });
    }
    if (visiting.length >= MAX_PIPE_DEPTH) {
      throw new RoostError('SQL_INVALID', `pipes nest deeper than ${MAX_PIPE_DEPTH} levels: ${[...visiting, pipe.name, ref].join(' -> ')}; a pipe may read pipes at most ${MAX_PIPE_DEPTH} deep (read an earlier pipe of the chain, or move nodes into one pipe)`, { details: { sql_code: 'PIPES_TOO_DEEP', pipe: pipe.name } });
    }
    const read = findPipe(state, pipe.tenant, pipe.workspace, ref)!;
    // Unpublished since this pipe was saved (with ignore_sql_errors): the pipe called exists, so
    // not its 404; what it reads is missing.
    if (!endpointNode(read)) {
      throw new RoostError('SQL_INVALID', `pipe "${pipe.name}" reads pipe "${ref}", which has no endpoint now; publish a node of "${ref}" (POST /v0/pipes/${ref}/nodes/<node>/endpoint) or change "${pipe.name}"`, { details: { pipe: ref, sql_code: 'PIPE_WITHOUT_ENDPOINT' } });
    }
    const own = opts.fixedFor?.(read.name) ?? {};
    const sub = compileEndpoint(state, read, Object.keys(own).length ? { ...opts, fixedParams: { ...opts.fixedParams, ...own } } : opts, [...visiting, pipe.name]);
    extra[ref] = { kind: 'query', sql: sub.sql };
  }
  const mapKey = `${state.seq}|${pipe.tenant}|${pipe.workspace}|${fk}|${JSON.stringify(extra)}`;
  let map = nameMaps.get(mapKey);
  if (!map) {
    map = createNameMap({ ...extra, ...dsMap() });
    nameMaps.set(mapKey, map);
  }
  let sql: string;
  try {
    sql = compilePipe(rendered, map, target.name).sql;
  } catch (e) {
    const node = e instanceof SqlError ? nodes.find((n) => n.name === e.node) : undefined;
    throw ofReadPipe(atNode(e, node ?? target), pipe, visiting);
  }
  const out: CompiledEndpoint = { sql, maxThreads, reads };
  if (plain) plainPipes.set(plainKey, out);
  return out;
}
