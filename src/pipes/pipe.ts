/**
 * Pipes as control-plane state: `pipes/<tenant>/<workspace>/<name>`. A pipe is
 * an ordered list of SQL nodes; at most one node is published as its endpoint.
 * Each node keeps what it referenced when it was last saved (`dependencies`)
 * and the template parameters it declares (`params`).
 */
import crypto from 'node:crypto';
import type { State } from '../state/state.js';
import type { Op } from '../state/store.js';
import { RoostError } from '../errors.js';
import type { TemplateParameter } from './template/index.js';

export interface PipeNode {
  id: string;
  name: string;
  sql: string;
  description: string | null;
  /** Parameters the node's template declares (empty for plain SQL). */
  params: TemplateParameter[];
  /**
   * Names the node reads (other nodes, data sources, service views, other pipes), first use
   * first. A template's also list every other node or pipe named in any branch (check.ts).
   */
  dependencies: string[];
  /**
   * Saved with `ignore_sql_errors=true`: the engine did not check it (engine-check.ts), and
   * changes elsewhere that reach it as a reader do not check it either. Absent: false.
   */
  ignoreSqlErrors?: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface Pipe {
  id: string;
  name: string;
  tenant: string;
  workspace: string;
  description: string | null;
  nodes: PipeNode[];
  /** Id of the node published as the endpoint, or null. */
  endpoint: string | null;
  createdAt: string;
  updatedAt: string;
  /**
   * Id of the service token that created the pipe (not set for people, JWTs or the operator):
   * that token may go on changing it with `PIPES:CREATE` alone (see api/pipes.ts, mayChange).
   */
  createdByToken?: string;
  /**
   * What only admins read (`roost.audit_log`: auth/authorize.ts NAMED_ONLY) that the credential
   * which last saved the pipe may read: a template may read it with a call's values (a branch, a
   * `symbol()`), which the save-time check of its dependencies does not see. Absent: none.
   */
  publishesNamedOnly?: string[];
}

/** Pipe and node names: an identifier, so `<pipe>.json` splits without doubt. */
export const PIPE_NAME = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_]{0,127}$/;  // (not __proto__: JavaScript's own)

export function checkName(kind: 'pipe' | 'node', name: string | null | undefined): string {
  if (!name) throw new RoostError('INVALID_PARAMETER', `name is required: the ${kind} name (letters, digits and _, starting with a letter or _)`);
  if (!PIPE_NAME.test(name)) throw new RoostError('INVALID_PARAMETER', `"${name}" is not a valid ${kind} name: use letters, digits and _ (at most 128), starting with a letter or _`);
  if (kind === 'pipe') refuseIdShaped(name);
  // `_` is an endpoint's result in q=, and /v0/sql calls are logged in pipe_stats_rt under the
  // pipe name `query_api`: a pipe of either name mixed with them (found by a black-box round).
  if (kind === 'pipe' && (name === '_' || name.toLowerCase() === 'query_api')) throw new RoostError('INVALID_PARAMETER', `"${name}" is a reserved pipe name (${name === '_' ? "q= reads an endpoint's result as _" : '/v0/sql calls are logged under it in tinybird.pipe_stats_rt'}); choose another name`);
  // `GET /v0/pipes/openapi.json` is the OpenAPI document of the workspace's endpoints (api/openapi.ts):
  // a pipe named `openapi` could not be called as JSON. Only this spelling: `OpenApi.json` is no clash.
  if (kind === 'pipe' && name === 'openapi') throw new RoostError('INVALID_PARAMETER', '"openapi" is a reserved pipe name: /v0/pipes/openapi.json is the OpenAPI document of the workspace\'s endpoints, so the pipe could not be called as JSON; choose another name', { details: { name } });
  // A node named like another node's id took its place in the node routes (which take a name or
  // an id): publishing by id published the other node.
  if (kind === 'node' && NODE_ID_SHAPED.test(name)) throw new RoostError('INVALID_PARAMETER', `"${name}" is shaped like a node id (n_ and 16 hex digits), which the node routes take in place of names; choose another name`);
  return name;
}

export function findPipe(state: State, tenant: string, workspace: string, name: string): Pipe | undefined {
  return state.get<Pipe>('pipes', tenant, workspace, name);
}

export function getPipe(state: State, tenant: string, workspace: string, name: string): Pipe {
  const p = findPipe(state, tenant, workspace, name);
  if (!p) throw new RoostError('UNKNOWN_PIPE', `there is no pipe "${name}" in this workspace`);
  return p;
}

export function listPipes(state: State, tenant: string, workspace: string): Pipe[] {
  return state.list<Pipe>('pipes', tenant, workspace);
}

/** A node by name or id. */
export function getNode(pipe: Pipe, nameOrId: string): PipeNode {
  // An id first (nodes saved before id-shaped names were refused may still carry one).
  const n = pipe.nodes.find((x) => x.id === nameOrId) ?? pipe.nodes.find((x) => x.name === nameOrId);
  if (!n) throw new RoostError('NOT_FOUND', `pipe "${pipe.name}" has no node "${nameOrId}"`);
  return n;
}

export function endpointNode(pipe: Pipe): PipeNode | undefined {
  return pipe.endpoint ? pipe.nodes.find((n) => n.id === pipe.endpoint) : undefined;
}

export function newId(prefix: 't' | 'n'): string {
  return `${prefix}_${crypto.randomBytes(8).toString('hex')}`;
}

/** What a node's id looks like (newId('n')). */
export const NODE_ID_SHAPED = /^n_[0-9a-f]{16}$/;

/** What a pipe's or data source's id looks like (newId('t')): paths take one in place of a name. */
export const ID_SHAPED = /^t_[0-9a-f]{16}$/;

/**
 * Refuses a pipe or data source name shaped like an id: it would stand for another's id (a
 * PIPES:CREATE token took over calls made by id by naming a new pipe after it).
 */
export function refuseIdShaped(name: string): void {
  if (ID_SHAPED.test(name)) throw new RoostError('INVALID_PARAMETER', `"${name}" is shaped like a pipe or data source id (t_ and 16 hex digits), which paths take in place of names; choose another name`);
}

export function putPipeOps(pipe: Pipe): Op[] {
  return [{ op: 'put', path: ['pipes', pipe.tenant, pipe.workspace, pipe.name], value: pipe }];
}

export function deletePipeOps(pipe: Pipe): Op[] {
  return [{ op: 'del', path: ['pipes', pipe.tenant, pipe.workspace, pipe.name] }];
}

/** Names a pipe reads from outside itself: its nodes' dependencies that are not its own nodes. */
export function externalReferences(pipe: Pipe): Set<string> {
  const own = new Set(pipe.nodes.map((n) => n.name));
  const out = new Set<string>();
  for (const n of pipe.nodes) for (const d of n.dependencies) if (!own.has(d)) out.add(d);
  return out;
}

/** Pipes of a workspace that read `name` (a data source or another pipe's endpoint). */
export function pipesUsing(state: State, tenant: string, workspace: string, name: string): string[] {
  return listPipes(state, tenant, workspace)
    .filter((p) => p.name !== name && externalReferences(p).has(name))
    .map((p) => p.name);
}
