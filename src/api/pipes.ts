/**
 * Pipes API (Tinybird v0): create, list, get, delete pipes; add, edit and
 * delete nodes; publish and unpublish a node as the endpoint; and call
 * endpoints as `/v0/pipes/<pipe>.json|.csv|.ndjson|.parquet`.
 */
import { ExactNumber, exactJson, stringifyExact } from '../ingest/json-exact.js';
import type { App } from '../app.js';
import type { Ctx } from '../http/context.js';
import { yesOrNo } from '../http/fields.js';
import { formOf, mergeForm, noLoneSurrogates, readBody, sendJson, sendText, textOf } from '../http/context.js';
import { RoostError } from '../errors.js';
import {
  auditRefusal, authenticate, authorize, authorizeAsAsked, credentialName, decide, pipesSeenBy, fixedParams, hasFixedParams, isNamedOnly, namedOnlyResources, scopeAllows, workspaceOf, roleOf, type Credential,
} from '../../auth/authorize.js';
import { roleAllows } from '../../auth/roles.js';
import { getTenant, getWorkspace, sameWorkspace } from '../../tenants/registry.js';
import { rowFiltersOf } from '../datasources/name-map.js';
import { analyzeSql, SqlError, toRoostError } from '../native/sql.js';
import { EXTENSION_FORMATS, runQueryToResponse } from '../query/run.js';
import { abandonGuard } from '../../auth/abandoned-queries.js';
import { publicNames, withPublicNames } from '../query/public-names.js';
import { isOutputParam, looksLikeForm, outputSettings, respellFormat } from '../query/request-options.js';
import {
  checkName, checkPipe, compileEndpoint, deletePipeOps, findPipe, getNode, getPipe, listPipes, logEndpointCall, newId, ID_SHAPED,
  pipeDatafile, pipesUsing, planEngineCheck, putPipeOps, ResultTail, runEngineCheck, samePlan, uncheckedNodes, type EngineCheckPlan, type Pipe, type PipeNode, type UncheckedNode,
} from '../pipes/index.js';
import { querySettings } from '../query/run.js';
import { acquireQuerySlot } from '../../tenants/limits.js';
import { isTemplate, type RequestParams } from '../pipes/template/index.js';
import { JsonList } from '../pipes/template/values.js';
import { nameHolder, quarantineClash, refuseTakenName, renameReferencesOps, dropReferencesOps } from '../state/resource-names.js';
import { checkDescription, nothingToChange, updateParams } from './update-params.js';
import { tokenIdOf, userAgentOf } from '../pipes/endpoint-log.js';
import type { CheckView } from '../pipes/engine-check.js';
import type { State } from '../state/state.js';
import { isServiceName } from '../service/service-log.js';
import { OPENAPI_PIPE, serveOpenApi } from './openapi.js';

/** The request's credential and workspace: by name, and by id as authorized (`workspaceId`). */
interface WsRef { cred: Credential; tenant: string; workspace: string; workspaceId: string }

/** Whether the request's credential may read the pipe (PIPES:READ of its name), as GET asks. */
function mayReadPipe(r: WsRef, name: string): boolean {
  return decide(r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'PIPES:READ', resource: name }) === undefined;
}

/**
 * A pipe named in a path by its name or, as Tinybird allows, by its id (`t_…`): the pipe's name
 * (scopes and everything else go by name). An unknown id is answered as is, as an unknown pipe.
 */
function pipeNameOf(state: App['state'], r: WsRef, raw: string): string {
  // The id first: a pipe named like another's id (refused since, made before) does not take its calls.
  if (!ID_SHAPED.test(raw)) return raw;
  return listPipes(state, r.tenant, r.workspace).find((p) => p.id === raw)?.name ?? raw;
}

/** Request parameters that belong to the API or to clients, never to a template. */
export function reservedParam(k: string): boolean {
  return k === 'token' || k === 'q' || k === 'from' || k === 'cli_version' || k === 'workspace' || k.startsWith('__tb__');
}

function nodeView(pipe: Pipe, n: PipeNode): Record<string, unknown> {
  return {
    id: n.id, name: n.name, sql: n.sql, description: n.description,
    params: n.params, dependencies: n.dependencies,
    node_type: n.id === pipe.endpoint ? 'endpoint' : 'standard',
    materialized: null, ignore_sql_errors: n.ignoreSqlErrors === true,
    created_at: n.createdAt, updated_at: n.updatedAt,
  };
}

/**
 * A save's answer with the nodes the engine did not check (engine-check.ts `uncheckedNodes`) as
 * `warnings: [{pipe, node, reason, message}]`, only when there are some: an answer without them is
 * the pipe or node as Tinybird's (clients read the fields they know).
 */
function withWarnings(view: Record<string, unknown>, warnings: UncheckedNode[]): Record<string, unknown> {
  return warnings.length ? { ...view, warnings } : view;
}

/**
 * What a change answers to a credential that may change the pipe but not read it (PIPES:DROP
 * without PIPES:READ): what it changed, never the nodes' SQL, which GET refuses it. Warnings about
 * the saved nodes are counted, not told (they quote the nodes' names and what they read).
 */
function changedView(pipe: Pipe, node: PipeNode | undefined, warnings: UncheckedNode[]): Record<string, unknown> {
  const view: Record<string, unknown> = node
    ? { id: node.id, name: node.name, description: node.description, updated_at: node.updatedAt, pipe: { id: pipe.id, name: pipe.name } }
    : { id: pipe.id, name: pipe.name, description: pipe.description, updated_at: pipe.updatedAt };
  return warnings.length ? { ...view, warnings_hidden: warnings.length } : view;
}

function pipeView(pipe: Pipe): Record<string, unknown> {
  return {
    id: pipe.id, name: pipe.name, description: pipe.description,
    type: pipe.endpoint ? 'endpoint' : 'default',
    endpoint: pipe.endpoint, parent: null,
    created_at: pipe.createdAt, updated_at: pipe.updatedAt,
    nodes: pipe.nodes.map((n) => nodeView(pipe, n)),
  };
}

/**
 * A node's `type` as given on create: `endpoint` publishes it, `standard` (or none) does not.
 * Tinybird's other node types are refused rather than saved as a standard node, which would look
 * like a materialized view or copy job that never runs.
 */
function isEndpointType(raw: unknown, node: string): boolean {
  if (raw === undefined || raw === null || raw === '') return false;
  const t = typeof raw === 'string' ? raw.toLowerCase() : '';
  if (t === 'endpoint') return true;
  if (t === 'standard' || t === 'default') return false;
  if (t === 'materialized' || t === 'copy' || t === 'sink' || t === 'stream') {
    throw new RoostError('NOT_AVAILABLE', `node "${node}": ${t} nodes are not supported yet; only standard and endpoint nodes`, { details: { node } });
  }
  throw new RoostError('INVALID_PARAMETER', `node "${node}": type must be "standard" or "endpoint", not ${JSON.stringify(raw)}`, { details: { node } });
}

/**
 * A node added or renamed to `name` would shadow what other nodes of the pipe read under that name
 * (a data source, service data source or another pipe's endpoint): they would silently read the
 * node instead. Refused (409) with the nodes that read it.
 */
function refuseShadowing(pipe: Pipe, name: string, except?: string): void {
  const readers = pipe.nodes.filter((n) => n.id !== except && n.dependencies.includes(name)).map((n) => n.name);
  if (readers.length) {
    throw new RoostError('CONFLICT', `nodes ${readers.join(', ')} of pipe "${pipe.name}" read "${name}" (a data source or another pipe); a node of that name would take its place. Pick another name`, { details: { node: name, dependents: readers } });
  }
}

/**
 * The name of a node appended without one: `<pipe>_<n>` from the node count up, the first no
 * node has and none reads (Tinybird's clients append unnamed nodes). It was `<pipe>_<count>`: after
 * a node was deleted, the next unnamed append was a 409 for a name the client never chose.
 */
function autoNodeName(pipe: Pipe): string {
  for (let k = pipe.nodes.length; ; k++) {
    const name = `${pipe.name}_${k}`;
    if (!pipe.nodes.some((n) => n.name === name || n.dependencies.includes(name))) return name;
  }
}

function newNode(name: string, sql: string, description: string | null, ignoreSqlErrors = false): PipeNode {
  checkDescription(description, `node "${name}"'s description`);
  const now = new Date().toISOString();
  return { id: newId('n'), name, sql, description, params: [], dependencies: [], ...(ignoreSqlErrors ? { ignoreSqlErrors } : {}), createdAt: now, updatedAt: now };
}

/**
 * Tinybird's `ignore_sql_errors` (query string or form; JSON `true` too): save without asking the
 * engine about the SQL (src/pipes/engine-check.ts). Unset or false: checked.
 */
function ignoreSqlErrors(raw: unknown): boolean {
  if (raw === undefined || raw === null || raw === false || raw === 0) return false;
  if (raw === true || raw === 1) return true;
  // Read as every flag is (a node's "yes" was taken as false and checked against the engine, "maybe" silently).
  return yesOrNo('ignore_sql_errors', typeof raw === 'string' ? raw : JSON.stringify(raw), 'nothing was saved');
}

/** A node as saved by this request: `ignore_sql_errors` recorded (true) or cleared. */
function withIgnore(n: PipeNode, ignore: boolean): PipeNode {
  if (ignore) return { ...n, ignoreSqlErrors: true };
  if (n.ignoreSqlErrors === undefined) return n;
  const { ignoreSqlErrors: _dropped, ...rest } = n;
  return rest;
}

/** May this credential read this pipe? (For filtering lists: no audit record.) */
export function canRead(cred: Credential, workspace: string, pipe: string): boolean {
  switch (cred.kind) {
    case 'token': return scopeAllows(cred.token.scopes, 'PIPES:READ', pipe);
    case 'jwt': return scopeAllows(cred.jwt.scopes.map((s) => `${s.type}:${s.resource}`), 'PIPES:READ', pipe);
    case 'session':
    case 'idp': return roleAllows(roleOf(cred, workspace), 'PIPES:READ');
    default: return false;
  }
}

export function tokenName(cred: Credential): string {
  return cred.kind === 'token' ? cred.token.name : cred.kind === 'jwt' ? cred.jwt.name : credentialName(cred);
}

/** The node routes' own parameters (besides clients' own, reservedParam). */
const NODE_FIELDS = ['sql', 'name', 'description', 'type', 'ignore_sql_errors'];

/** The request body as text when it is SQL; form fields when it reads as a form of known keys. */
async function sqlBody(ctx: Ctx): Promise<{ sql?: string; form: URLSearchParams }> {
  const form = new URLSearchParams(ctx.query);
  const text = textOf(await readBody(ctx));
  const type = String(ctx.req.headers['content-type'] ?? '');
  // curl -d sends SQL as a form too: it is a form when every field is named like a parameter and
  // one is ours (NODE_FIELDS); fields of other names (from=, cli_version=, ...)
  // are ignored, as in the query string. SQL itself never starts with `<identifier>=`.
  const fields = text.trim().split('&');
  if (ctx.multipartForm || (type.startsWith('application/x-www-form-urlencoded') && fields.every((kv) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(kv))
    && fields.some((kv) => NODE_FIELDS.includes(kv.slice(0, kv.indexOf('=')))))) {
    const merged = mergeForm(form, formOf(text));
    return { sql: merged.get('sql') ?? undefined, form: merged };
  }
  // A JSON object ({"sql": ..., "name": ..., "description": ...}), as the pipe routes take: its
  // text was stored as the node's SQL. (SQL, and a template's `{%`, is never a JSON object.)
  if (type.toLowerCase().startsWith('application/json') && text.trimStart().startsWith('{')) {
    let body: unknown;
    // Not JSON after all: said so (it was taken for the node's SQL, and refused as SQL).
    try { body = JSON.parse(text); } catch (e) { throw new RoostError('INVALID_JSON', `the body is not valid JSON (${String((e as Error).message).slice(0, 200)}); send {"sql": "...", "name": "..."}, or the SQL itself as text/plain`); }
    if (body && typeof body === 'object' && !Array.isArray(body)) {
      const o = body as Record<string, unknown>;
      for (const k of ['sql', 'name', 'description', 'type']) {
        if (o[k] === undefined || o[k] === null) continue;
        if (typeof o[k] !== 'string') throw new RoostError('INVALID_PARAMETER', `"${k}" must be a string in the JSON body`, { details: { parameter: k } });
        form.set(k, o[k] as string);
      }
      if (o.ignore_sql_errors !== undefined && o.ignore_sql_errors !== null) {
        if (typeof o.ignore_sql_errors !== 'boolean' && typeof o.ignore_sql_errors !== 'string') throw new RoostError('INVALID_PARAMETER', '"ignore_sql_errors" must be true or false in the JSON body', { details: { parameter: 'ignore_sql_errors' } });
        form.set('ignore_sql_errors', String(o.ignore_sql_errors));
      }
      return { sql: form.get('sql') ?? undefined, form };
    }
  }
  // A form of none of this route's fields (`sqll=SELECT 3`): no SQL starts with `<name>=`, so it
  // was a misspelt field, said so (it was stored as the SQL and refused as "unknown statement").
  // (A form of clients' own fields alone, `from=ui`: a form, with nothing of this route's.)
  if (type.startsWith('application/x-www-form-urlencoded') && text.trim() && fields.every((kv) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(kv))) {
    const ignored = [...new Set(fields.map((kv) => kv.slice(0, kv.indexOf('='))))].filter((k) => !reservedParam(k));
    if (ignored.length) throw new RoostError('INVALID_PARAMETER', `the form holds none of this route's fields (${NODE_FIELDS.join(', ')}); not parameters of this route: ${ignored.join(', ')}`, { details: { accepted: NODE_FIELDS, ignored } });
    const merged = mergeForm(form, formOf(text));
    return { sql: merged.get('sql') ?? undefined, form: merged };
  }
  // A `.pipe` datafile (what GET /v0/pipes/<pipe>.pipe answers) posted back: read as SQL it was
  // "unknown statement NODE" (or, with a `%` in it, "uses template syntax"). Said for what it is.
  if (/^\s*(?:NODE|DESCRIPTION|TOKEN|TAGS)\b[^\n]*\n/.test(text) && /^SQL\s*>/m.test(text)) {
    throw new RoostError('UNSUPPORTED_FORMAT', 'the body is a .pipe datafile, which this route does not take: send the pipe as JSON ({"name": "...", "nodes": [{"name": "...", "sql": "...", "type": "endpoint"}]}), or one node\'s SQL as text/plain', { details: { format: 'datafile' } });
  }
  return { sql: text.trim() ? text : form.get('sql') ?? undefined, form };
}

interface CallInput { params: RequestParams; q?: string; logged: Record<string, string>; output?: Record<string, number> }

/**
 * The call's parameters: the query string, and for POST the body (JSON or form) after it.
 * Without a body to read the answer is there at once (no promise).
 */
function callInput(ctx: Ctx): CallInput | Promise<CallInput> {
  // A query string that is not UTF-8 (the server left it to this route: the call is logged).
  if (ctx.queryError) throw ctx.queryError;
  const { params, q, output } = queryInput(ctx);
  if (ctx.req.method === 'POST') return readBody(ctx).then((b) => withBody(ctx, params, q, textOf(b), output));
  return inputOf(params, q, output);
}

/** The query string's part of the call's parameters. */
function queryInput(ctx: Ctx): { params: Record<string, string | string[]>; q: string | undefined; output: Record<string, string> } {
  // Without a prototype: a parameter named `toString` or `constructor` is a parameter, not the
  // function every object inherits (it read as one and was refused), and `__proto__` sets nothing.
  const params: Record<string, string | string[]> = Object.create(null);
  const q = ctx.query.get('q') ?? undefined;
  const output: Record<string, string> = Object.create(null);
  if (ctx.query.size) {
    for (const [k, v] of ctx.query) {
      if (isOutputParam(k)) output[k] = v;
      else addParam(params, k, v);
    }
  }
  return { params, q, output };
}

function addParam(params: Record<string, string | string[]>, k: string, v: string): void {
  if (reservedParam(k)) return;
  const cur = params[k];
  // In place: copying the list for each value took minutes for a body repeating one name 200k times.
  if (Array.isArray(cur)) cur.push(v);
  else params[k] = cur === undefined ? v : [cur, v];
}

/**
 * A JSON body's parameter value (or a list's item) as the text a query-string value would be: an
 * object or array as its JSON text, a number as written (`-0` keeps its sign: String(-0) is "0").
 */
export function jsonParamText(name: string, v: unknown): string {
  if (typeof v === 'object' && v !== null && !(v instanceof ExactNumber)) return jsonText(name, v);
  return Object.is(v, -0) ? '-0' : String(v);
}

/** A JSON body's object or array parameter as JSON text; nesting too deep for JSON.stringify is a 400, not a 500. */
function jsonText(name: string, v: unknown): string {
  try {
    return stringifyExact(v);
  } catch (e) {
    if (e instanceof RangeError) throw new RoostError('INVALID_JSON', `parameter ${JSON.stringify(name)} nests arrays or objects too deeply`);
    throw e;
  }
}

function withBody(ctx: Ctx, params: Record<string, string | string[]>, q: string | undefined, body: string, output: Record<string, string>): CallInput {
  const type = String(ctx.req.headers['content-type'] ?? '');
  if (!type.startsWith('application/json') && !ctx.multipartForm && body.trim() && !looksLikeForm(body)) {
    // A body that is not a form is the SQL over the result (Tinybird's
    // `curl --data "select count() from _" .../v0/pipes/<pipe>.json`).
    q = body;
  } else if (type.startsWith('application/json')) {
    let obj: unknown;
    // Numbers as sent: an integer past 2^53 (a UInt64 id) read as a double became another id.
    try { obj = body.trim() ? exactJson(body, JSON.parse(body)) : {}; } catch (e) {
      // What the parser says (where the text stops being JSON), not only what the body should be.
      throw new RoostError('INVALID_JSON', `the body is not valid JSON (${String((e as Error).message).slice(0, 200)}); send an object of parameters, e.g. {"limit": 10}`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new RoostError('INVALID_JSON', 'the JSON body must be an object of parameters, e.g. {"limit": 10}');
    noLoneSurrogates(body, obj);
    // The body's parameters win over the query string's of the same name (docs/api.md).
    for (const k of Object.keys(obj)) delete params[k];
    for (const [k, v] of Object.entries(obj)) {
      if (k === 'q' && typeof v === 'string') { q = v; continue; }
      if (v === null || v === undefined) continue;
      if (isOutputParam(k)) { output[k] = String(v); continue; }
      const text = (item: unknown) => jsonParamText(k, item);
      if (Array.isArray(v)) {
        // A list as sent: `["a,b"]` is one value (it was split on its comma as `?x=a,b` is).
        if (reservedParam(k)) continue;
        const list = new JsonList();
        for (const item of v) list.push(text(item));
        params[k] = list;
      } else addParam(params, k, text(v));
    }
  } else if (body.length) {
    const form = formOf(body);
    // The body's parameters win over the query string's of the same name (docs/api.md): the
    // query's value was used.
    for (const k of new Set(form.keys())) delete params[k];
    for (const [k, v] of form) {
      if (k === 'q') q = v;
      else if (isOutputParam(k)) output[k] = v;
      else addParam(params, k, v);
    }
  }
  return inputOf(params, q, output);
}

function inputOf(params: Record<string, string | string[]>, q: string | undefined, output: Record<string, string>): CallInput {
  const logged: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(params)) logged[k] = Array.isArray(v) ? v.join(',') : v;
  for (const [k, v] of Object.entries(output)) logged[k] = v;
  // The SQL over the result is a parameter of the call as sent (pipe_stats_rt.parameters had it not).
  if (q?.trim()) logged.q = q;
  return { params, q: q?.trim() ? q : undefined, logged, output: outputSettings((k) => output[k]) };
}

/**
 * `q=` over an endpoint's result (`_`, or the pipe's own name: Tinybird's older CLI sends
 * `q=SELECT * FROM <pipe> LIMIT 50`). The extension picks the format, so a FORMAT clause in `q`
 * is ignored whatever it names (the analyzer knows a few names, spelled as ClickHouse spells them).
 */
function overResult(q: string, sql: string, guardAliases: boolean, pipeName: string): string {
  // A template (`%` first line, or `{{ }}`/`{% %}` outside strings): q= is plain SQL ("a query
  // starts with SELECT", or the engine's syntax error, said nothing of it).
  if (isTemplate(q) || /\{\{|\{%/.test(q.replace(/'(?:[^'\\]|\\.)*'/gs, "''"))) {
    throw new RoostError('SQL_SYNTAX', `q= is plain SQL over this endpoint's result, not a template: the endpoint's own parameters are passed beside it (?q=SELECT ... FROM _&param=value); templates go in the pipe's nodes, or in /v0/sql's q`);
  }
  let text = q;
  for (let i = 0; ; i++) {
    try {
      return analyzeSql(text, { _: { kind: 'query', sql }, [pipeName]: { kind: 'query', sql } }, { guardAliases }).sql;
    } catch (e) {
      const respelled = i === 0 && e instanceof SqlError && e.code === 'UNSUPPORTED_FORMAT' ? respellFormat(text, e.offset, 'JSON') : undefined;
      if (respelled === undefined) {
        // `q=SELECT ... FROM events` reads only the result: say so rather than "unknown table".
        if (e instanceof SqlError && e.code === 'UNKNOWN_TABLE') throw toRoostError(new SqlError(e.code, `${e.message}: q= runs over this endpoint's result only, as table _ (SELECT ... FROM _, or the pipe's own name); other tables are read with /v0/sql`, e.offset));
        if (e instanceof SqlError) throw toRoostError(e);
        throw e;
      }
      text = respelled;
    }
  }
}

export function loggedUrl(ctx: Ctx): string {
  if (!ctx.query.has('token')) return `${ctx.url.pathname}${ctx.url.search}`;
  const u = new URL(ctx.url.href);
  if (u.searchParams.has('token')) u.searchParams.set('token', '***');
  return `${u.pathname}${u.search}`;
}

/**
 * The status a failed call is logged with in pipe_stats_rt / endpoint_errors: a client that
 * went away is 499 (nginx's "client closed request") even when the 200 head had been sent
 * (it did not get the result); another failure after the head keeps the status sent.
 */
export function callStatus(ctx: Ctx, e: unknown): number {
  // The server's request timeout (not the client) ended it: what the client was answered, 408.
  if (ctx.timedOut) return 408;
  if (e instanceof RoostError && e.code === 'CLIENT_CLOSED') return 499;
  return ctx.res.headersSent ? ctx.res.statusCode : e instanceof RoostError ? e.status : 500;
}

export function registerPipeRoutes(app: App): void {
  const { router, state } = app;
  app.dependents = (ws, datasource, s) => pipesUsing(s ?? state, ws.tenant, ws.name, datasource);

  const wsOf = async (ctx: Ctx): Promise<WsRef> => {
    const cred = await authenticate(app, ctx);
    const ws = workspaceOf(app, ctx, cred);
    return { cred, ...ws, workspaceId: getWorkspace(state, ws.tenant, ws.workspace).id };
  };
  const mayEdit = (ctx: Ctx, r: WsRef) => authorize(app, ctx, r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'PIPES:CREATE' });
  /**
   * Changing a pipe that exists (its nodes, its endpoint, or replacing it with force=true) takes
   * what deleting it takes, `PIPES:DROP:<pipe>` (or ADMIN), as PUT /v0/pipes/<pipe> does:
   * `PIPES:CREATE` alone rewrote or emptied every endpoint of the workspace, also ones its holder
   * may neither read nor drop. Checked on the name asked for, before it is looked up.
   * Except for the service token that created the pipe: it may go on changing it with
   * `PIPES:CREATE` (API.md's node routes, and Tinybird's publish flow: create a pipe, add nodes,
   * publish, with one `PIPES:CREATE` token). Its 403 for anyone else's pipe, or a missing one, is
   * the same.
   */
  const createdBy = (r: WsRef, pipe: Pipe | undefined): boolean =>
    r.cred.kind === 'token' && pipe?.createdByToken !== undefined && pipe.createdByToken === r.cred.token.id;
  /**
   * Whether a change's answer shows the pipe whole: to a credential that may read it, or to the
   * token that created it and holds it still (every node is its own: a change by anyone else ends
   * the hold), as its create's answer did. `name`: the name the request's scopes are checked on.
   */
  const seesPipe = (r: WsRef, pipe: Pipe, name = pipe.name): boolean => createdBy(r, pipe) || mayReadPipe(r, name);
  /**
   * Checked on the name before the pipe is looked up, and again (`cur`: the pipe in the state
   * being changed) inside the change: the pipe holding the name may have been replaced meanwhile.
   */
  const mayChange = (ctx: Ctx, r: WsRef, name: string, cur: Pipe | undefined = findPipe(state, r.tenant, r.workspace, name), asked = name) => (createdBy(r, cur)
    ? authorize(app, ctx, r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'PIPES:CREATE' })
    : authorizeAsAsked(app, ctx, r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'PIPES:DROP', resource: name }, asked));
  /** The node routes' first check, on the name in the path before the body is read or the pipe looked up. */
  const mayEditPipe = (ctx: Ctx, r: WsRef) => {
    // The node routes take the pipe's id as the others do (Tinybird's CLI sends
    // `pipe_name_or_uid`): a 404 for an id the other routes took.
    const asked = ctx.params.pipe!;
    ctx.params.pipe = pipeNameOf(state, r, asked);
    mayEdit(ctx, r);
    mayChange(ctx, r, ctx.params.pipe!, undefined, asked);
  };
  /** save() of the pipe in the path, which must exist; who may change it is checked again on the pipe the change lands on. */
  const saveExisting = (ctx: Ctx, r: WsRef, change: (cur: Pipe) => Pipe | null, engine?: { ignore: boolean }) => save(r, ctx.params.pipe!, (cur) => {
    if (!cur) throw new RoostError('UNKNOWN_PIPE', `there is no pipe "${ctx.params.pipe}" in this workspace`);
    mayChange(ctx, r, ctx.params.pipe!, cur);
    return change(cur);
  }, engine);
  /** The pipe `next` as `r` leaves it: a change by anyone but the creating token ends that token's hold on it. */
  const ownedAfter = (r: WsRef, next: Pipe): Pipe => {
    if (next.createdByToken === undefined || createdBy(r, next)) return next;
    const { createdByToken: _, ...rest } = next;
    return rest;
  };

  /**
   * Changes one pipe inside a state transaction: `change` gets the current
   * pipe and answers the new one (checked here) or null to delete it. A pipe
   * whose endpoint other pipes read keeps an endpoint and is not deleted.
   *
   * With `engine` (creating, adding, changing or publishing nodes), the new and changed nodes,
   * the nodes reading them and other pipes' nodes reading this pipe's endpoint are first checked
   * by the tenant's engine (src/pipes/engine-check.ts), outside the transaction (`change` runs
   * once more for it); the transaction plans the check again and saves only when it would ask
   * the same (else the whole is retried). `engine.ignore` (`ignore_sql_errors=true`) skips it.
   * Answers the saved pipe and the nodes of it the check left out (`warnings`, see withWarnings).
   */
  const save = async (r: WsRef, name: string, change: (cur: Pipe | undefined) => Pipe | null, engine?: { ignore: boolean }): Promise<{ pipe: Pipe | null; warnings: UncheckedNode[] }> => {
    for (let attempt = 0; ; attempt++) {
      let plan: EngineCheckPlan | undefined;
      if (engine && !engine.ignore) {
        const cur = findPipe(state, r.tenant, r.workspace, name);
        const next = change(cur);
        if (next !== null) {
          const checked = checkPipe(state, next, cur);
          const view = checkView(state, r);
          plan = planEngineCheck(state, cur, checked, false, view);
          await runEngineCheck(engineAccess(r, view), plan, name);
        }
      }
      const out = await state.transact<Pipe | null | 'retry'>((s) => {
        // Still the workspace as authorized: renamed meanwhile (the SQL check, a body arriving), and
        // a new one given its name, the pipe went into the new one (and its record named it).
        sameWorkspace(s, r.tenant, r.workspace, r.workspaceId);
        const cur = findPipe(s, r.tenant, r.workspace, name);
        const next = change(cur);
        const users = pipesUsing(s, r.tenant, r.workspace, name);
        if (next === null) {
          if (!cur) throw new RoostError('UNKNOWN_PIPE', `there is no pipe "${name}" in this workspace`);
          if (users.length) { const u = pipesSeenBy(r.cred, r, users); throw new RoostError('CONFLICT', `pipe "${name}" is read by pipes ${u.text}; change or delete them first`, { details: u.details }); }
          return { ops: [...deletePipeOps(cur), ...dropReferencesOps(s, r.tenant, r.workspace, 'pipe', cur.id, cur.name, Date.now())], result: null };
        }
        const checked = checkPipe(s, { ...ownedAfter(r, next), ...publishedBy(r), updatedAt: new Date().toISOString() }, cur);
        refusePublishingUnreadable(r, checked);
        if (!checked.endpoint && users.length && !engine?.ignore) {
          const u = pipesSeenBy(r.cred, r, users);
          throw new RoostError('CONFLICT', `pipe "${name}" is read by pipes ${u.text} through its endpoint; keep a node published${engine ? ', or pass ignore_sql_errors=true to leave them without it' : ''}`, { details: u.details });
        }
        if (plan && !samePlan(plan, planEngineCheck(s, cur, checked, false, checkView(s, r)))) return { ops: [], result: 'retry' };
        return { ops: putPipeOps(checked), result: checked };
      });
      if (out !== 'retry') return { pipe: out, warnings: plan ? uncheckedNodes(plan) : [] };
      if (attempt >= 2) throw new RoostError('CONFLICT', `pipe "${name}" or what it reads kept changing while its SQL was checked; retry`, { retryable: true, headers: { 'Retry-After': '1' } });
    }
  };

  /**
   * A pipe publishes what it reads to whoever may read the pipe. What only admins read (the audit
   * log: NAMED_ONLY in auth/authorize.ts) goes into a pipe only from a credential that may read it
   * itself: `PIPES:CREATE` with `PIPES:READ:<its new pipe>` read `roost.audit_log` (found by this
   * session's audit). Data sources stay as in Tinybird: a pipe's creator publishes them.
   */
  const refusePublishingUnreadable = (r: WsRef, pipe: Pipe) => {
    for (const n of pipe.nodes) {
      for (const d of n.dependencies ?? []) {
        if (!isNamedOnly(d)) continue;
        const why = decide(r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'DATASOURCES:READ', resource: d });
        if (why) throw new RoostError('FORBIDDEN', `node "${n.name}" reads ${d}, which a pipe may publish only when its author may read it: ${why}`, { details: { node: n.name } });
      }
    }
  };

  /**
   * What only admins read that this saver may read, recorded with the pipe: a call that reads
   * such a name through a template's values (not among the saved dependencies, which
   * refusePublishingUnreadable checked) is allowed only when it is listed (pipes/compile.ts).
   */
  const publishedBy = (r: WsRef): Pick<Pipe, 'publishesNamedOnly'> => {
    const may = namedOnlyResources().filter((d) => decide(r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'DATASOURCES:READ', resource: d }) === undefined);
    return { publishesNamedOnly: may.length ? may : undefined };
  };

  /**
   * What the save-time check may read: what the saver may read (engine-check.ts CheckView), its
   * row filters applied. A credential whose row filter cannot be used reads nothing there.
   */
  const checkView = (s: State, r: WsRef): CheckView => {
    let rowFilters: Record<string, string> | undefined;
    try { rowFilters = rowFiltersOf(s, r.tenant, r.workspace, r.cred); } catch { return { mayRead: () => false, mayReadPipe: () => false }; }
    return {
      rowFilters,
      mayRead: (name) => decide(r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'DATASOURCES:READ', resource: name }) === undefined,
      mayReadPipe: (name) => decide(r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'PIPES:READ', resource: name }) === undefined,
    };
  };

  /** The tenant's engine, under the read-only settings calls run with, for the save-time check. */
  const engineAccess = (r: WsRef, view: CheckView) => {
    const tenant = getTenant(state, r.tenant);
    const { settings, timeoutMs } = querySettings(tenant, app.config, 'TSV');
    // A saver with row filters (or whose filters could not be read): the check reads through
    // their views, which the engine's errors quote (FINAL, ARRAY JOIN, ...): not the saver's to
    // see. (Nodes that inline other pipes lose the quoted query too: EngineCheckItem.inlines.)
    const filtered = view.rowFilters === undefined || Object.keys(view.rowFilters).length > 0;
    return {
      state, tenant, workspace: r.workspace, settings, timeoutMs, hideQuery: filtered,
      engine: () => app.cells.engineFor(tenant),
      ensureService: () => app.service.ensure(r.tenant),
      acquire: () => acquireQuerySlot(tenant),
    };
  };

  router.post('/v0/pipes', async (ctx) => {
    const r = await wsOf(ctx);
    mayEdit(ctx, r);
    const type = String(ctx.req.headers['content-type'] ?? '');
    let name: string;
    let description: string | null;
    let nodes: PipeNode[];
    let endpoint: string | null = null;
    const force = /^(1|true)$/i.test(ctx.query.get('force') ?? '');
    let ignore = ignoreSqlErrors(ctx.query.get('ignore_sql_errors'));
    if (type.startsWith('application/json')) {
      let body: { name?: unknown; description?: unknown; nodes?: unknown; ignore_sql_errors?: unknown };
      const text = textOf(await readBody(ctx));
      try { body = JSON.parse(text) as typeof body; } catch { throw new RoostError('INVALID_JSON', 'the body must be JSON {name, description?, nodes: [{name, sql, description?, type?}]}'); }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new RoostError('INVALID_JSON', 'the body must be a JSON object {name, description?, nodes: [...]}');
      noLoneSurrogates(text, body);
      name = checkName('pipe', typeof body.name === 'string' ? body.name : ctx.query.get('name'));
      if (body.description !== undefined && body.description !== null && typeof body.description !== 'string') throw new RoostError('INVALID_PARAMETER', 'description must be a string');
      // A query-string description counts when the body has none (the name did already).
      description = typeof body.description === 'string' ? body.description : ctx.query.get('description');
      ignore ||= ignoreSqlErrors(body.ignore_sql_errors);
      if (!Array.isArray(body.nodes) || body.nodes.length === 0) throw new RoostError('INVALID_PARAMETER', 'nodes must be a non-empty list of {name, sql, description?}');
      let endpointName: string | undefined;
      nodes = body.nodes.map((raw: unknown, i: number) => {
        const n = raw as { name?: unknown; sql?: unknown; description?: unknown; type?: unknown; node_type?: unknown; ignore_sql_errors?: unknown };
        if (typeof n !== 'object' || n === null || typeof n.sql !== 'string') throw new RoostError('INVALID_PARAMETER', `nodes[${i}] needs sql (a string)`);
        // A name or description of another type was dropped in silence (the node became <pipe>_<i>).
        if (n.name !== undefined && n.name !== null && typeof n.name !== 'string') throw new RoostError('INVALID_PARAMETER', `nodes[${i}].name must be a string`);
        if (n.description !== undefined && n.description !== null && typeof n.description !== 'string') throw new RoostError('INVALID_PARAMETER', `nodes[${i}].description must be a string`);
        // A node of its own may say ignore_sql_errors too (Tinybird's node keys include it).
        const node = newNode(checkName('node', typeof n.name === 'string' ? n.name : `${name}_${i}`), n.sql, typeof n.description === 'string' ? n.description : null, ignoreSqlErrors(n.ignore_sql_errors));
        // `node_type` as GET /v0/pipes/<pipe> answers it: a pipe's JSON sent back keeps its endpoint.
        if (isEndpointType(n.type ?? n.node_type, node.name)) {
          // One endpoint per pipe: a second was taken silently, the first one's publication lost.
          if (endpointName !== undefined) throw new RoostError('INVALID_PARAMETER', `nodes "${endpointName}" and "${node.name}" are both of type endpoint; a pipe publishes one node (give the others no type)`);
          endpoint = node.id;
          endpointName = node.name;
        }
        return node;
      });
    } else {
      const { sql, form } = await sqlBody(ctx);
      name = checkName('pipe', form.get('name'));
      description = form.get('description');
      ignore ||= ignoreSqlErrors(form.get('ignore_sql_errors'));
      if (!sql) throw new RoostError('INVALID_PARAMETER', 'sql is required: send form fields name and sql, or JSON {name, nodes: [...]}');
      nodes = [newNode(`${name}_0`, sql, null)];
      if (isEndpointType(form.get('type'), nodes[0]!.name)) endpoint = nodes[0]!.id;
    }
    checkDescription(description, `pipe "${name}"'s description`);
    // Checked in the state change itself (save runs `change` inside its transaction, where the
    // state is the one written): a data source created or renamed to this name meanwhile is seen.
    const namesFree = () => {
      if (state.get('datasources', r.tenant, r.workspace, name)) throw new RoostError('CONFLICT', `a data source is named "${name}"; pipes and data sources share names`);
      // Nor named like another pipe or a data source but for case (told apart by case alone in SQL, scopes and logs).
      const clash = quarantineClash(state, r.tenant, r.workspace, name, 'pipe');
      if (clash) throw new RoostError('CONFLICT', clash);
      const twin = nameHolder(state, r.tenant, r.workspace, name);
      if (twin && twin.name !== name) throw new RoostError('CONFLICT', `${twin.kind === 'pipe' ? 'a pipe' : 'a data source'} is named "${twin.name}"; names of pipes and data sources must differ other than in case`, { details: { name: twin.name, kind: twin.kind } });
    };
    namesFree();
    // A pipe of this name is replaced only by who may delete it. Refused before anything else
    // about it is looked at (the engine check, its readers): the 403 tells a caller that may not
    // read it no more than the 409 without force=true does (that the name is taken).
    if (force && findPipe(state, r.tenant, r.workspace, name)) mayChange(ctx, r, name);
    const now = new Date().toISOString();
    let replaced = false;
    const { pipe, warnings } = await save(r, name, (cur) => {
      namesFree();
      if (cur && !force) throw new RoostError('ALREADY_EXISTS', `pipe "${name}" already exists; pass force=true to replace it, or edit its nodes`);
      // Again where the state is the one written: a pipe of this name created meanwhile.
      if (cur) mayChange(ctx, r, name, cur);
      replaced = cur !== undefined;
      // A replace keeps the creating token's hold only when that token replaces it (save() drops it otherwise).
      const createdByToken = cur ? cur.createdByToken : r.cred.kind === 'token' ? r.cred.token.id : undefined;
      return { id: cur?.id ?? newId('t'), name, tenant: r.tenant, workspace: r.workspace, description, nodes: ignore ? nodes.map((n) => withIgnore(n, true)) : nodes, endpoint, createdAt: cur?.createdAt ?? now, updatedAt: now, ...(createdByToken ? { createdByToken } : {}) };
    }, { ignore });
    app.audit({ event: 'pipe.create', outcome: 'success', tenant: r.tenant, workspace: r.workspace, workspaceId: r.workspaceId, resource: name, requestId: ctx.id, credential: credentialName(r.cred), ...(replaced ? { details: { replaced: true, id: pipe!.id } } : {}) });
    sendJson(ctx, 200, withWarnings(pipeView(pipe!), warnings));
  });

  router.get('/v0/pipes', async (ctx) => {
    const r = await wsOf(ctx);
    const pipes = listPipes(state, r.tenant, r.workspace).filter((p) => canRead(r.cred, r.workspace, p.name));
    sendJson(ctx, 200, { pipes: pipes.map(pipeView) });
  });

  const pipeRoute = async (ctx: Ctx) => {
    const raw = ctx.params.pipe!;
    const dot = raw.lastIndexOf('.');
    let name = dot > 0 ? raw.slice(0, dot) : raw;
    const ext = dot > 0 ? raw.slice(dot + 1).toLowerCase() : undefined;
    // `openapi.json` however spelt (`openapi%2Ejson`, `.JSON`, a POST) is the document, never a
    // call of a pipe named `openapi` (api/openapi.ts).
    if (name === OPENAPI_PIPE && ext === 'json') return serveOpenApi(app, ctx);
    if (ext && ext !== 'pipe') return callEndpoint(ctx, name, ext);
    if (ctx.queryError) throw ctx.queryError;
    if (ctx.req.method === 'POST') throw new RoostError('METHOD_NOT_ALLOWED', `call the endpoint as POST /v0/pipes/${name}.json (or .csv, .ndjson, .parquet)`, { headers: { Allow: 'GET, PUT, DELETE' } });
    const r = await wsOf(ctx);
    const asked = name;
    name = pipeNameOf(state, r, name);
    authorizeAsAsked(app, ctx, r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'PIPES:READ', resource: name }, asked);
    const pipe = getPipe(state, r.tenant, r.workspace, name);
    // Exactly `text/plain`, as for `.datasource` (the tb CLI's test for text).
    if (ext === 'pipe' || ctx.query.get('format') === 'pipe') return sendText(ctx, 200, pipeDatafile(pipe), 'text/plain');
    sendJson(ctx, 200, pipeView(pipe));
  };
  // Before `/v0/pipes/:pipe`, which would take it for a call of a pipe named `openapi`.
  router.get(`/v0/pipes/${OPENAPI_PIPE}.json`, (ctx) => serveOpenApi(app, ctx));
  // Endpoint calls log a query string that is not UTF-8 as a failed call (callInput throws it).
  router.get('/v0/pipes/:pipe', pipeRoute, { takesQueryErrors: true });
  router.post('/v0/pipes/:pipe', pipeRoute, { takesQueryErrors: true });

  router.delete('/v0/pipes/:pipe', async (ctx) => {
    const r = await wsOf(ctx);
    const name = pipeNameOf(state, r, ctx.params.pipe!);
    authorizeAsAsked(app, ctx, r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'PIPES:DROP', resource: name }, ctx.params.pipe!);
    await save(r, name, () => null);
    app.audit({ event: 'pipe.drop', outcome: 'success', tenant: r.tenant, workspace: r.workspace, workspaceId: r.workspaceId, resource: name, requestId: ctx.id, credential: credentialName(r.cred) });
    ctx.res.writeHead(204).end();
  });

  /**
   * `PUT /v0/pipes/<pipe>` (Tinybird's): `name=` renames, `description=` describes; the answer is
   * the pipe as GET shows it. A rename is one state change with the scopes of the tokens that name
   * the pipe; its endpoint answers under the new name only. Refused (409) while other pipes read
   * it (their SQL names it) or when the name is any other pipe's or data source's, ignoring case.
   * Same permission as a delete.
   */
  router.put('/v0/pipes/:pipe', async (ctx) => {
    const r = await wsOf(ctx);
    const name = pipeNameOf(state, r, ctx.params.pipe!);
    authorizeAsAsked(app, ctx, r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'PIPES:DROP', resource: name }, ctx.params.pipe!);
    const found = getPipe(state, r.tenant, r.workspace, name);
    const p = await updateParams(ctx);
    if (p.name === undefined && p.description === undefined) throw nothingToChange('pipe', p);
    const to = p.name === undefined ? name : checkName('pipe', p.name);
    const renaming = to !== name;
    /** What refuses the change: checked at once, and again in the transaction that makes it. */
    const check = (s: App['state']): Pipe => {
      const cur = findPipe(s, r.tenant, r.workspace, name);
      if (cur?.id !== found.id) throw new RoostError('UNKNOWN_PIPE', `pipe "${name}" was deleted or renamed meanwhile (nothing was changed)`);
      if (!renaming) return cur;
      refuseTakenName(s, r.tenant, r.workspace, to, 'pipe', cur.id);
      const users = pipesUsing(s, r.tenant, r.workspace, name);
      if (users.length) {
        const u = pipesSeenBy(r.cred, r, users);
        throw new RoostError('CONFLICT', `pipe "${name}" is read by pipes ${u.text}, whose SQL names it; change those pipes to read another name (or delete them), then rename it`, { details: u.details });
      }
      // A pipe that names the new name (in a template branch not taken at save) would start reading this pipe.
      const readers = pipesUsing(s, r.tenant, r.workspace, to).filter((x) => x !== name);
      if (readers.length) {
        const u = pipesSeenBy(r.cred, r, readers);
        throw new RoostError('CONFLICT', `pipes ${u.text} name "${to}" in their SQL; a pipe of that name would become what they read: pick another name`, { details: u.details });
      }
      return cur;
    };
    check(state);
    const pipe = await state.transact((s) => {
      sameWorkspace(s, r.tenant, r.workspace, r.workspaceId);
      const cur = check(s);
      const at = Date.now();
      const next: Pipe = ownedAfter(r, { ...cur, name: to, description: p.description !== undefined ? p.description : cur.description, updatedAt: new Date(at).toISOString() });
      const ops = renaming
        ? [...deletePipeOps(cur), ...putPipeOps(next), ...renameReferencesOps(s, r.tenant, r.workspace, 'pipe', cur.id, cur.name, to, at)]
        : putPipeOps(next);
      return { ops, result: next };
    });
    if (renaming) app.audit({ event: 'pipe.rename', outcome: 'success', tenant: r.tenant, workspace: r.workspace, workspaceId: r.workspaceId, resource: to, requestId: ctx.id, credential: credentialName(r.cred), details: { from: name, to, id: pipe.id } });
    if (p.description !== undefined) app.audit({ event: 'pipe.update', outcome: 'success', tenant: r.tenant, workspace: r.workspace, workspaceId: r.workspaceId, resource: to, requestId: ctx.id, credential: credentialName(r.cred), details: { description: p.description } });
    // The pipe as GET shows it to a credential that may read it; to one that may only change it
    // (PIPES:DROP), what it changed: the nodes' SQL was shown to a token GET refuses (a black-box round).
    // (By the name it had: the credential's scopes are as they were when the request came; one
    // naming the new name is stripped by the rename and must not open the answer.)
    sendJson(ctx, 200, seesPipe(r, pipe, name) ? pipeView(pipe) : changedView(pipe, undefined, []));
  });

  router.post('/v0/pipes/:pipe/nodes', async (ctx) => {
    const r = await wsOf(ctx);
    mayEditPipe(ctx, r);
    const { sql, form } = await sqlBody(ctx);
    if (!sql) throw new RoostError('INVALID_PARAMETER', 'send the node\'s SQL as the request body');
    const ignore = ignoreSqlErrors(form.get('ignore_sql_errors'));
    // `type` as on create: `endpoint` publishes the node, materialized and copy are refused (it was
    // ignored: a "materialized" node was saved as a standard one that never runs).
    const publish = isEndpointType(form.get('type'), form.get('name') ?? 'the new node');
    let added!: PipeNode;
    const { pipe, warnings } = await saveExisting(ctx, r, (cur) => {
      const name = checkName('node', form.get('name') ?? autoNodeName(cur));
      if (cur.nodes.some((n) => n.name === name)) throw new RoostError('CONFLICT', `pipe "${cur.name}" already has a node named "${name}"`, { details: { node: name } });
      refuseShadowing(cur, name);
      added = newNode(name, sql, form.get('description'), ignore);
      return { ...cur, nodes: [...cur.nodes, added], ...(publish ? { endpoint: added.id } : {}) };
    }, { ignore });
    const node = pipe!.nodes.find((n) => n.id === added.id)!;
    sendJson(ctx, 200, seesPipe(r, pipe!) ? withWarnings(nodeView(pipe!, node), warnings) : changedView(pipe!, node, warnings));
  });

  router.put('/v0/pipes/:pipe/nodes/:node', async (ctx) => {
    const r = await wsOf(ctx);
    mayEditPipe(ctx, r);
    const { sql, form } = await sqlBody(ctx);
    const ignore = ignoreSqlErrors(form.get('ignore_sql_errors'));
    // Nothing to change (a misspelt `descripton=`): said, as PUT /v0/pipes/<pipe> says it, rather
    // than a 200 that changed only updated_at.
    if (sql === undefined && !form.get('name') && !form.has('description') && !ignore) {
      const ignored = [...new Set(form.keys())].filter((k) => !reservedParam(k) && !NODE_FIELDS.includes(k));
      throw new RoostError('INVALID_PARAMETER', `nothing to change: give the node's SQL (the body, or sql=), name and/or description${ignored.length ? `; not parameters of this route: ${ignored.join(', ')}` : ''}`, { details: { accepted: ['sql', 'name', 'description', 'ignore_sql_errors'], ignored } });
    }
    let id!: string;
    const { pipe, warnings } = await saveExisting(ctx, r, (cur) => {
      const node = getNode(cur, ctx.params.node!);
      id = node.id;
      const name = form.get('name') ? checkName('node', form.get('name')) : node.name;
      if (name !== node.name && cur.nodes.some((n) => n.name === name)) throw new RoostError('CONFLICT', `pipe "${cur.name}" already has a node named "${name}"`, { details: { node: name } });
      // A rename takes the old name away from the nodes that read it, as a delete does: refused
      // the same way (409), also when they read it only in a template branch the save-time render
      // does not take (the check below would pass, and calls taking that branch would fail).
      const readers = name === node.name ? [] : cur.nodes.filter((n) => n.id !== node.id && n.dependencies.includes(node.name)).map((n) => n.name);
      if (readers.length) throw new RoostError('CONFLICT', `node "${node.name}" is read by nodes ${readers.join(', ')}; change them first`, { details: { dependents: readers } });
      if (name !== node.name) refuseShadowing(cur, name, node.id);
      if (form.has('description')) checkDescription(form.get('description'), `node "${name}"'s description`);
      let changed: PipeNode = { ...node, name, sql: sql ?? node.sql, description: form.has('description') ? form.get('description') : node.description, updatedAt: new Date().toISOString() };
      // A change of SQL or name is checked again: the node records whether it was.
      if (changed.sql !== node.sql || name !== node.name || ignore) changed = withIgnore(changed, ignore);
      return { ...cur, nodes: cur.nodes.map((n) => (n.id === node.id ? changed : n)) };
    }, { ignore });
    // (The node's SQL, and the others' it reads, to a credential that may read the pipe only:
    // a token with PIPES:DROP alone read a node's SQL by changing its description.)
    const node = pipe!.nodes.find((n) => n.id === id)!;
    sendJson(ctx, 200, seesPipe(r, pipe!) ? withWarnings(nodeView(pipe!, node), warnings) : changedView(pipe!, node, warnings));
  });

  router.delete('/v0/pipes/:pipe/nodes/:node', async (ctx) => {
    const r = await wsOf(ctx);
    mayEditPipe(ctx, r);
    await saveExisting(ctx, r, (cur) => {
      const node = getNode(cur, ctx.params.node!);
      const users = cur.nodes.filter((n) => n.id !== node.id && n.dependencies.includes(node.name)).map((n) => n.name);
      if (users.length) throw new RoostError('CONFLICT', `node "${node.name}" is read by nodes ${users.join(', ')}; change them first`, { details: { dependents: users } });
      if (cur.nodes.length === 1) throw new RoostError('CONFLICT', `node "${node.name}" is the pipe's only node; delete the pipe instead`);
      return { ...cur, nodes: cur.nodes.filter((n) => n.id !== node.id), endpoint: cur.endpoint === node.id ? null : cur.endpoint };
    });
    ctx.res.writeHead(204).end();
  });

  const publish = (on: boolean) => async (ctx: Ctx) => {
    const r = await wsOf(ctx);
    mayEditPipe(ctx, r);
    // In the query string, a form or a JSON body, as docs/api.md says (a body's was ignored, and
    // the 409 kept telling to pass it).
    const { form } = await sqlBody(ctx);
    const ignore = ignoreSqlErrors(form.get('ignore_sql_errors'));
    const { pipe, warnings } = await saveExisting(ctx, r, (cur) => {
      const node = getNode(cur, ctx.params.node!);
      if (!on && cur.endpoint !== node.id) throw new RoostError('NOT_FOUND', `node "${node.name}" is not the endpoint of pipe "${cur.name}"`);
      // Publishing checks the node (as Tinybird does) and records whether it was.
      const nodes = on && cur.endpoint !== node.id ? cur.nodes.map((n) => (n.id === node.id ? withIgnore(n, ignore) : n)) : cur.nodes;
      return { ...cur, nodes, endpoint: on ? node.id : null };
    }, { ignore });
    app.audit({ event: on ? 'pipe.publish' : 'pipe.unpublish', outcome: 'success', tenant: r.tenant, workspace: r.workspace, workspaceId: r.workspaceId, resource: `${ctx.params.pipe}/${ctx.params.node}`, requestId: ctx.id, credential: credentialName(r.cred) });
    sendJson(ctx, 200, seesPipe(r, pipe!) ? withWarnings(pipeView(pipe!), warnings) : changedView(pipe!, undefined, warnings));
  };
  router.post('/v0/pipes/:pipe/nodes/:node/endpoint', publish(true));
  router.delete('/v0/pipes/:pipe/nodes/:node/endpoint', publish(false));

  /** `GET/POST /v0/pipes/<name>.<ext>`: one endpoint call, logged into pipe_stats_rt. */
  const callEndpoint = async (ctx: Ctx, named: string, ext: string): Promise<void> => {
    let name = named;
    const startedAt = Date.now();
    const t0 = performance.now();
    let where: { tenant: string; workspace: string; workspaceId?: string; tokenName: string } | undefined;
    let pipe: Pipe | undefined;
    let input: CallInput | undefined;
    let status = 200;
    let failure: unknown;
    const format = EXTENSION_FORMATS[ext];
    const tail = new ResultTail(format ?? '');
    let cred: Credential | undefined;
    try {
      const r = await wsOf(ctx);
      cred = r.cred;
      where = { tenant: r.tenant, workspace: r.workspace, workspaceId: state.get<{ id: string }>('workspaces', r.tenant, r.workspace)?.id, tokenName: tokenName(r.cred) };
      const asked = name;
      name = pipeNameOf(state, r, name);
      authorizeAsAsked(app, ctx, r.cred, { op: 'workspace', tenant: r.tenant, workspace: r.workspace, scope: 'PIPES:READ', resource: name }, asked);
      if (!format) throw new RoostError('UNSUPPORTED_FORMAT', `.${ext} is not an endpoint format; use ${Object.keys(EXTENSION_FORMATS).map((e) => `.${e}`).join(', ')}`);
      // A query string that is not UTF-8 is said before the lookup, as on every route (logged
      // under the pipe's id when there is one).
      if (ctx.queryError) { pipe = findPipe(state, r.tenant, r.workspace, name); throw ctx.queryError; }
      pipe = getPipe(state, r.tenant, r.workspace, name);
      const got = callInput(ctx);
      input = got instanceof Promise ? await got : got;
      const rowFilters = rowFiltersOf(state, r.tenant, r.workspace, r.cred);
      const compiled = compileEndpoint(state, pipe, { params: input.params, fixedParams: fixedParams(r.cred, pipe.name), fixedFor: (name) => fixedParams(r.cred, name), rowFilters });
      let sql = compiled.sql;
      if (input.q) {
        sql = overResult(input.q, sql, hasFixedParams(r.cred), pipe.name);
      }
      tail.query(sql);
      if (compiled.reads.some(isServiceName)) await app.service.ensure(r.tenant);
      const tenant = getTenant(state, r.tenant);
      await runQueryToResponse(ctx, {
        engine: app.cells.engineFor(tenant), tenant, config: app.config, metrics: app.metrics, sql, format,
        names: publicNames(state, r.tenant, r.workspace),
        // The endpoint's nodes and the pipes they read are inlined: not the caller's to see.
        hideQuery: true,
        userSettings: compiled.maxThreads || input.output ? { ...input.output, ...(compiled.maxThreads ? { max_threads: compiled.maxThreads } : {}) } : undefined, tail,
        abandon: abandonGuard(app, ctx, r.tenant),
      });
    } catch (e) {
      // Refused for the credential's rate (429): a call of the workspace all the same, logged as one
      // (it was in no service data source: a workspace could not see it was throttled).
      if (!where && e instanceof RoostError && e.code === 'RATE_LIMITED' && ctx.auth) {
        try {
          cred = ctx.auth as Credential;
          const w = workspaceOf(app, ctx, cred);
          where = { tenant: w.tenant, workspace: w.workspace, workspaceId: state.get<{ id: string }>('workspaces', w.tenant, w.workspace)?.id, tokenName: tokenName(cred) };
          // Logged as other failed calls are: under the pipe's name and id (when the credential
          // may read it, as a call past authorize() is), with the query string's parameters (a
          // body is not read for a refused call), as /v0/sql's 429 rows.
          name = pipeNameOf(state, { cred, tenant: w.tenant, workspace: w.workspace, workspaceId: where.workspaceId ?? '' }, name);
          if (decide(cred, { op: 'workspace', tenant: w.tenant, workspace: w.workspace, scope: 'PIPES:READ', resource: name }) === undefined) pipe = findPipe(state, w.tenant, w.workspace, name);
          if (!ctx.queryError) { const qi = queryInput(ctx); input = inputOf(qi.params, qi.q, qi.output); }
        } catch { /* no workspace to log it in */ }
      }
      // Any error text (engine, service tables) in the workspace's names, in the answer and in the logs.
      if (where) withPublicNames(e, publicNames(state, where.tenant, where.workspace));
      if (cred && where) auditRefusal(app, ctx, cred, e, `PIPES:READ:${name} @ ${where.tenant}/${where.workspace}`);
      failure = ctx.timedOut ?? e;
      status = callStatus(ctx, e);
      throw e;
    } finally {
      if (where) {
        const got = tail.result();
        // Fields spelled out: a spread followed by this many properties built a dictionary-mode
        // object (measured ~6 KB allocated per call with the sampling heap profiler).
        logEndpointCall(app.service, {
          tenant: where.tenant, workspace: where.workspace, workspaceId: where.workspaceId, tokenName: where.tokenName, tokenId: tokenIdOf(cred), userAgent: userAgentOf(ctx.req.headers),
          pipeId: pipe?.id ?? '', pipeName: name, startedAt, durationMs: performance.now() - t0,
          status, error: failure, parameters: input?.logged ?? {}, requestId: ctx.id, url: loggedUrl(ctx),
          method: ctx.req.method ?? 'GET', rows: got.rows, readRows: got.readRows, readBytes: got.readBytes,
        });
      }
    }
  };
}
