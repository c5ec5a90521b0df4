/**
 * Compiles a pipe's endpoint for one call: renders the templates of the nodes
 * the endpoint needs with the request's parameters (fixed parameters win),
 * inlines other pipes' endpoints it reads as subqueries, and runs the result
 * through the analyzer with the workspace's name map.
 */
import type { State } from '../state/state.js';
import { RoostError } from '../errors.js';
import { compilePipe, createNameMap, SqlError, type NameMapEntry, type SqlNameMap } from '../native/sql.js';
import { workspaceNameMap } from '../datasources/name-map.js';
import { isTemplate, renderTemplate, type RequestParams } from './template/index.js';
import { findPipe, type Pipe } from './pipe.js';
import { atNode, nodeClosure, requireEndpoint } from './check.js';

export interface CallOptions {
  /** Request parameters (query string or form body); a repeated name gives a list. */
  params: RequestParams;
  /** A JWT's `fixed_params`: override request parameters of the same name. */
  fixedParams?: Record<string, string>;
  /** Row filters of the credential per data source (`DATASOURCES:READ:<ds>:<filter>`). */
  rowFilters?: Record<string, string>;
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

const MAX_PIPE_DEPTH = 16;

function filterKey(f: Record<string, string> | undefined): string {
  return f && Object.keys(f).length ? JSON.stringify(Object.entries(f).sort()) : '';
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
  const nodes = nodeClosure(pipe, target);
  const own = new Set(nodes.map((n) => n.name));
  const reads = [...new Set(nodes.flatMap((n) => n.dependencies.filter((d) => !own.has(d))))];
  let base: Record<string, NameMapEntry> | undefined;
  const dsMap = (): Record<string, NameMapEntry> => (base ??= workspaceNameMap(state, pipe.tenant, pipe.workspace, opts.rowFilters));

  // Pipes read by these nodes: data sources and views win over a pipe of the same name.
  const isDataName = (r: string) => r.includes('.') || state.get('datasources', pipe.tenant, pipe.workspace, r.replace(/_quarantine$/, '')) !== undefined;
  const pipeRefs = reads.filter((r) => !isDataName(r) && findPipe(state, pipe.tenant, pipe.workspace, r));
  const plain = pipeRefs.length === 0 && !nodes.some((n) => isTemplate(n.sql));

  let maxThreads: number | undefined;
  const rendered = nodes.map((n) => {
    try {
      const r = renderTemplate(n.sql, opts.params, { fixedParams: opts.fixedParams });
      if (r.maxThreads !== undefined) maxThreads = r.maxThreads;
      return { name: n.name, sql: r.sql };
    } catch (e) {
      throw atNode(e, n);
    }
  });

  const extra: Record<string, NameMapEntry> = {};
  for (const ref of pipeRefs) {
    if (visiting.includes(ref) || ref === pipe.name) {
      throw new RoostError('SQL_INVALID', `pipes depend on each other: ${[...visiting, pipe.name, ref].join(' -> ')}`, { details: { sql_code: 'PIPE_CYCLE' } });
    }
    if (visiting.length >= MAX_PIPE_DEPTH) throw new RoostError('SQL_INVALID', `pipes nest deeper than ${MAX_PIPE_DEPTH} levels`);
    const sub = compileEndpoint(state, findPipe(state, pipe.tenant, pipe.workspace, ref)!, opts, [...visiting, pipe.name]);
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
    throw atNode(e, node ?? target);
  }
  const out: CompiledEndpoint = { sql, maxThreads, reads };
  if (plain) plainPipes.set(plainKey, out);
  return out;
}
