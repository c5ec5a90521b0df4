/**
 * Checks a pipe when it is saved: every node's template parses and renders
 * with default values, every node compiles through the analyzer, node
 * references form no cycle, and no cycle runs through other pipes' endpoints.
 * Fills in each node's `params` and `dependencies` (for a template, also every node,
 * pipe or data source any branch names: see `templateDependencies`). These checks know names only; what the
 * engine thinks of the SQL (columns, functions, types) is asked next, by engine-check.ts.
 */
import type { State } from '../state/state.js';
import { RoostError } from '../errors.js';
import { compilePipe, SqlError, toRoostError, type NameMapEntry } from '../native/sql.js';
import { workspaceNameMap } from '../datasources/name-map.js';
import { listDataSources } from '../datasources/registry.js';
import { isTemplate, renderTemplate, templateNames, templateParameters } from './template/index.js';
import { renderShared } from './render-share.js';
import { endpointNode, externalReferences, listPipes, type Pipe, type PipeNode } from './pipe.js';

/** Adds the node's name to a template or analyzer error, keeping its code and position. */
export function atNode(e: unknown, node: PipeNode | { name: string; sql: string }): unknown {
  if (e instanceof SqlError) {
    const r = toRoostError(e);
    if (isTemplate(node.sql)) r.details.offset_in = 'rendered_sql';
    else if (/\{\{|\{%/.test(node.sql) || /^\s*%/.test(node.sql)) {
      // Template syntax without the `%` line (Tinybird's most common slip): the analyzer's
      // "unknown function 'Int32'" or "a query starts with SELECT" said nothing of it.
      return new RoostError('SQL_SYNTAX', `node "${node.name}" uses template syntax ({{ ... }} or {% ... %}) but is not a template: a template's first line is % alone, the SQL on the lines after it (%\nSELECT ...)`, { details: { ...r.details, node: node.name, analyzer_message: r.message } });
    }
    return r;
  }
  if (e instanceof RoostError && e.details.node === undefined) e.details.node = node.name;
  return e;
}

/**
 * The names other pipes contribute when a pipe is checked: every other pipe with
 * an endpoint, as a stand-in query (only names matter to the analyzer here).
 */
function checkNameMap(state: State, pipe: Pipe): Record<string, NameMapEntry> {
  const map = workspaceNameMap(state, pipe.tenant, pipe.workspace);
  for (const p of listPipes(state, pipe.tenant, pipe.workspace)) {
    if (p.name === pipe.name || !p.endpoint || map[p.name] !== undefined) continue;
    map[p.name] = { kind: 'query', sql: 'SELECT 1' };
  }
  // `FROM {{symbol(t)}}` without a default renders `placeholder` when saved: a table only a
  // call names, not "unknown table 'placeholder'" (a name the user never wrote).
  if (map.placeholder === undefined) map.placeholder = { kind: 'query', sql: 'SELECT 1' };
  return map;
}

/** Most nodes in one pipe. */
export const MAX_PIPE_NODES = 200;

/**
 * Names a template may read: the pipe's nodes, the workspace's other pipes, and its data sources
 * with their quarantines (a data source only a branch the defaults do not take reads was not
 * among the dependencies, so a drop or rename of it was allowed and broke the endpoint).
 */
function readableNames(state: State, pipe: Pipe): () => Set<string> {
  let names: Set<string> | undefined;
  return () => {
    if (!names) {
      names = new Set(pipe.nodes.map((n) => n.name));
      for (const p of listPipes(state, pipe.tenant, pipe.workspace)) if (p.name !== pipe.name) names.add(p.name);
      for (const ds of listDataSources(state, pipe.tenant, pipe.workspace)) names.add(ds.name).add(`${ds.name}_quarantine`);
    }
    return names;
  };
}

/**
 * A node's saved dependencies. Plain SQL: what the analyzer found. A template: what the
 * analyzer found in the render with default values, then every other node, pipe or data source named
 * anywhere in the template (SQL text of every branch, string literals inside tags), since
 * which of them a call reads depends on its parameters (`FROM {% if defined(x) %}a{% else %}b{% end %}`).
 * Deleting a node, pipe or data source listed here is refused (409), whichever branch names it.
 */
function templateDependencies(n: PipeNode, analyzed: string[], readable: () => Set<string>): string[] {
  if (!isTemplate(n.sql)) return analyzed;
  const out = [...analyzed];
  for (const w of templateNames(n.sql)) {
    if (w !== n.name && !out.includes(w) && readable().has(w)) out.push(w);
  }
  return out;
}

/** Byte offset of the first whole-word use of `name` in `sql` (0 when not found). */
function offsetOf(sql: string, name: string): number {
  const m = new RegExp(`(?<![A-Za-z0-9_.\`])${name}(?![A-Za-z0-9_])`).exec(sql);
  return m ? Buffer.byteLength(sql.slice(0, m.index)) : 0;
}

/**
 * Validates `pipe` as it would be saved and returns it with `params` and
 * `dependencies` filled in. Throws `RoostError`s carrying `node` and `offset`.
 */
export function checkPipe(state: State, pipe: Pipe, before?: Pipe): Pipe {
  if (pipe.nodes.length === 0) throw new RoostError('INVALID_PARAMETER', 'a pipe needs at least one node');
  // The checks of a save compile each node with the nodes it reads: the work grows with the square
  // of the count, on the server's thread (10,000 nodes held every tenant's requests ~20 s).
  // (A pipe saved before the limit may still change, as long as it does not grow.)
  if (pipe.nodes.length > MAX_PIPE_NODES && pipe.nodes.length > (before?.nodes.length ?? 0)) throw new RoostError('INVALID_PARAMETER', `a pipe has at most ${MAX_PIPE_NODES} nodes (this one would have ${pipe.nodes.length}): split it into pipes that read each other`);
  const seen = new Set<string>();
  const rendered = pipe.nodes.map((n) => {
    if (seen.has(n.name)) throw new RoostError('CONFLICT', `pipe "${pipe.name}" already has a node named "${n.name}"`, { details: { node: n.name } });
    seen.add(n.name);
    if (!n.sql.trim()) throw new RoostError('INVALID_PARAMETER', `node "${n.name}" has no SQL`, { details: { node: n.name } });
    try {
      const params = templateParameters(n.sql);
      return { name: n.name, sql: renderShared(pipe.tenant, () => renderTemplate(n.sql, {}, { defaults: true })).sql, params };
    } catch (e) {
      throw atNode(e, n);
    }
  });
  let deps: Record<string, string[]>;
  try {
    deps = compilePipe(rendered, checkNameMap(state, pipe)).dependencies;
  } catch (e) {
    const node = pipe.nodes.find((n) => e instanceof SqlError && n.name === e.node);
    throw node ? atNode(e, node) : e instanceof SqlError ? toRoostError(e) : e;
  }
  const readable = readableNames(state, pipe);
  const out: Pipe = {
    ...pipe,
    nodes: pipe.nodes.map((n, i) => ({ ...n, params: rendered[i]!.params, dependencies: templateDependencies(n, deps[n.name] ?? [], readable) })),
  };
  checkPipeCycle(state, out);
  return out;
}

/** Refuses a pipe whose nodes read another pipe's endpoint that (through others) reads this pipe. */
function checkPipeCycle(state: State, pipe: Pipe): void {
  const pipes = new Map(listPipes(state, pipe.tenant, pipe.workspace).map((p) => [p.name, p] as const));
  pipes.set(pipe.name, pipe);
  const path: string[] = [];
  const done = new Set<string>();
  const visit = (name: string): string[] | undefined => {
    if (path.includes(name)) return [...path.slice(path.indexOf(name)), name];
    if (done.has(name)) return undefined;
    const p = pipes.get(name);
    if (!p) return undefined;
    path.push(name);
    for (const ref of externalReferences(p)) {
      if (!pipes.has(ref)) continue;
      const cycle = visit(ref);
      if (cycle) return cycle;
    }
    path.pop();
    done.add(name);
    return undefined;
  };
  const cycle = visit(pipe.name);
  if (!cycle) return;
  const next = cycle[1]!;
  const node = pipe.nodes.find((n) => n.dependencies.includes(next)) ?? pipe.nodes[0]!;
  throw new RoostError('SQL_INVALID', `pipes depend on each other: ${cycle.join(' -> ')}`, {
    details: { sql_code: 'PIPE_CYCLE', node: node.name, offset: offsetOf(node.sql, next) },
  });
}

/** Nodes the target needs (by their saved dependencies), in pipe order. */
export function nodeClosure(pipe: Pipe, target: PipeNode): PipeNode[] {
  const byName = new Map(pipe.nodes.map((n) => [n.name, n] as const));
  const need = new Set<string>([target.name]);
  const stack = [target];
  while (stack.length) {
    const n = stack.pop()!;
    for (const d of n.dependencies) {
      const dep = byName.get(d);
      if (dep && !need.has(d)) { need.add(d); stack.push(dep); }
    }
  }
  return pipe.nodes.filter((n) => need.has(n.name));
}

/** The endpoint node, or a 404 that says how to publish one. */
export function requireEndpoint(pipe: Pipe): PipeNode {
  const n = endpointNode(pipe);
  if (!n) throw new RoostError('NOT_FOUND', `pipe "${pipe.name}" has no endpoint; publish a node with POST /v0/pipes/${pipe.name}/nodes/<node>/endpoint`);
  return n;
}
