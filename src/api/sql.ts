/** `GET/POST /v0/sql`: read-only SQL over the workspace's data sources. */
import { exactJson } from '../ingest/json-exact.js';
import type { App } from '../app.js';
import type { Ctx } from '../http/context.js';
import { formOf, noLoneSurrogates, readBody, textOf } from '../http/context.js';
import { RoostError } from '../errors.js';
import { auditRefusal, authenticate, authorize, authorizeAnyRead, currentCredential, decide, denySqlName, fixedParams, hasFixedParams, workspaceOf, type Credential } from '../../auth/authorize.js';
import { analyzeSql, SqlError, toRoostError } from '../native/sql.js';
import { rowFiltersOf, workspaceNameMap } from '../datasources/name-map.js';
import { getTenant, getWorkspace } from '../../tenants/registry.js';
import { runQueryToResponse } from '../query/run.js';
import { abandonGuard } from '../../auth/abandoned-queries.js';
import { publicNames, withPublicNames } from '../query/public-names.js';
import { ResultTail } from '../pipes/result-tail.js';
import { isOutputParam, looksLikeForm, outputSettings, respellFormat } from '../query/request-options.js';
import { compileEndpoint, findPipe, getPipe, type Pipe } from '../pipes/index.js';
import type { NameMapEntry } from '../native/sql.js';
import { logEndpointCall, tokenIdOf, userAgentOf } from '../pipes/endpoint-log.js';
import { callStatus, jsonParamText, loggedUrl, reservedParam, tokenName } from './pipes.js';
import { JsonList } from '../pipes/template/values.js';
import { addPipeTables } from '../query/pipe-tables.js';
import { isServiceName } from '../service/service-log.js';
import { isTemplate, renderTemplate } from '../pipes/template/index.js';

/** What one /v0/sql call leaves in pipe_stats_rt (`pipe_id`/`pipe_name` `query_api`, as in Tinybird). */
interface SqlCallLog { q?: string; readsService: boolean; tail?: ResultTail; form?: URLSearchParams; lists?: Map<string, JsonList> }

/** The query text from `q=` (query string or form body) or a raw body. */
async function sqlText(ctx: Ctx, call: SqlCallLog): Promise<string> {
  let q = ctx.query.get('q');
  if (ctx.req.method === 'POST') {
    const body = textOf(await readBody(ctx));
    const type = String(ctx.req.headers['content-type'] ?? '');
    // curl --data "SELECT ..." (Tinybird's own example) sends raw SQL as a form: a body that
    // is not shaped like a form is the SQL.
    if (ctx.multipartForm || (type.startsWith('application/x-www-form-urlencoded') && looksLikeForm(body))) {
      call.form = formOf(body);
      q = call.form.get('q') ?? q;
    } else if (type.startsWith('application/json')) {
      let obj: Record<string, unknown>;
      try { obj = exactJson(body, JSON.parse(body)) as Record<string, unknown>; } catch { throw new RoostError('INVALID_JSON', 'the JSON body must be {"q": "<sql>"}'); }
      if (typeof obj !== 'object' || obj === null) throw new RoostError('INVALID_JSON', 'the JSON body must be {"q": "<sql>"}');
      noLoneSurrogates(body, obj);
      q = typeof obj.q === 'string' ? obj.q : q;
      // Its other fields are parameters as in a form (output_format_json_quote_64bit_integers, ...);
      // a list is one as sent, as on an endpoint's JSON body (it was dropped: the pipe ran with
      // its default, and a query-string value of the name won over the body's).
      call.form = new URLSearchParams();
      call.lists = new Map();
      for (const [k, v] of Object.entries(obj)) {
        if (k === 'q' || v === null || v === undefined) continue;
        if (Array.isArray(v)) call.lists.set(k, JsonList.from(v, (item) => jsonParamText(k, item)) as JsonList);
        else call.form.set(k, jsonParamText(k, v));
      }
    } else if (body.trim()) q = body;
  }
  if (!q || !q.trim()) throw new RoostError('INVALID_PARAMETER', 'no query: pass q=<sql> in the query string or form body, or the SQL as the request body');
  return q;
}

/**
 * The request's parameters for templates (query string, then a form body's fields), without
 * those an endpoint call keeps from templates too (`token`, `q`, `workspace`, `from`, ...,
 * the output parameters) nor `pipeline`: a template reading `token` got the caller's secret.
 */
function requestParams(ctx: Ctx, call: SqlCallLog): Record<string, string | string[]> {
  const params: Record<string, string | string[]> = Object.create(null);
  // The query string first, the body's fields after: the body's win (as on every route).
  for (const src of [ctx.query, call.form]) {
    if (!src) continue;
    for (const k of new Set(src.keys())) {
      if (reservedParam(k) || isOutputParam(k) || k === 'pipeline') continue;
      const all = src.getAll(k);
      params[k] = all.length > 1 ? all : all[0]!;
    }
  }
  for (const [k, list] of call.lists ?? []) {
    if (!reservedParam(k) && !isOutputParam(k) && k !== 'pipeline') params[k] = list;
  }
  return params;
}

/**
 * Does the query give `name` to a CTE (`name AS (`), a WITH expression or an alias (`AS name`)?
 * Bare, backquoted or double-quoted; a text match (the analyzer keeps such names in scope where
 * they are visible; this only tells which answer a reference out of their reach gets).
 */
export function namedInQuery(sql: string, name: string): boolean {
  if (name.includes('.')) return false;
  const n = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const quoted = `(?:${n}|\`${n}\`|"${n}")`;
  return new RegExp(`(?<![\\w.\`"])${quoted}\\s+[Aa][Ss]\\s*\\(`).test(sql) || new RegExp(`(?<![\\w.\`"])[Aa][Ss]\\s+${quoted}(?![\\w.\`"])`).test(sql);
}

export function registerSqlRoutes(app: App): void {
  const handler = async (ctx: Ctx) => {
    const startedAt = Date.now();
    const t0 = performance.now();
    const cred = await authenticate(app, ctx).catch((e: unknown) => {
      // Refused for the credential's rate (429): still a call of the workspace, logged as one.
      if (e instanceof RoostError && e.code === 'RATE_LIMITED' && ctx.auth) logRefused(ctx, ctx.auth as Credential, e, startedAt, t0);
      throw e;
    });
    const { tenant, workspace } = workspaceOf(app, ctx, cred);
    // The call's rows belong to this workspace, whatever holds its name when they are written.
    const workspaceId = getWorkspace(app.state, tenant, workspace).id;
    const call: SqlCallLog = { readsService: false };
    let failure: unknown;
    let status = 200;
    try {
      await answer(ctx, cred, tenant, workspace, call);
    } catch (e) {
      // The analyzer's refusals (and any other 403 not decided by authorize()) are denials too.
      auditRefusal(app, ctx, cred, e, `sql @ ${tenant}/${workspace}`);
      failure = ctx.timedOut ?? e;
      status = callStatus(ctx, e);
      // Any error text (engine, service tables) in the workspace's names.
      throw withPublicNames(e, publicNames(app.state, tenant, workspace));
    } finally {
      // Every Query API call is a row in pipe_stats_rt (a failed one also in endpoint_errors),
      // except those reading the service data sources themselves (as in Tinybird: a dashboard
      // polling pipe_stats_rt would otherwise fill it with its own polls).
      if (!call.readsService) logCall(ctx, cred, { tenant, workspace, workspaceId }, { startedAt, t0, status, error: failure, q: call.q, got: call.tail?.result(), form: call.form, lists: call.lists });
    }
  };
  /**
   * One Query API call's row in pipe_stats_rt (and endpoint_errors when it failed): the
   * parameters of the query string and of a form or JSON body (not the token; the body's win, as
   * the template reads them) and the query run, when it was read. Only the query string's were
   * logged: a call that failed on a body's template parameter could not be told from its row.
   */
  const logCall = (ctx: Ctx, cred: Credential, where: { tenant: string; workspace: string; workspaceId: string | undefined },
    o: { startedAt: number; t0: number; status: number; error: unknown; q?: string; got?: { rows: number; readRows: number; readBytes: number }; form?: URLSearchParams; lists?: Map<string, JsonList> }) => {
    const parameters: Record<string, string> = {};
    // A query string that is not UTF-8 is in the row's url as sent, not decoded into parameters.
    if (!ctx.queryError) for (const k of new Set(ctx.query.keys())) if (k !== 'token') parameters[k] = ctx.query.getAll(k).join(',');
    if (o.form) for (const k of new Set(o.form.keys())) if (k !== 'token') parameters[k] = o.form.getAll(k).join(',');
    for (const [k, list] of o.lists ?? []) if (k !== 'token') parameters[k] = list.join(',');
    if (o.q !== undefined) parameters.q = o.q;
    logEndpointCall(app.service, {
      tenant: where.tenant, workspace: where.workspace, workspaceId: where.workspaceId, tokenName: tokenName(cred), tokenId: tokenIdOf(cred), userAgent: userAgentOf(ctx.req.headers),
      pipeId: 'query_api', pipeName: 'query_api', startedAt: o.startedAt, durationMs: performance.now() - o.t0, status: o.status, error: o.error, parameters, requestId: ctx.id,
      url: loggedUrl(ctx), method: ctx.req.method ?? 'GET', rows: o.got?.rows ?? 0, readRows: o.got?.readRows ?? 0, readBytes: o.got?.readBytes ?? 0,
    });
  };
  /** A call refused before it was read (429), in pipe_stats_rt and endpoint_errors as any failed call. */
  const logRefused = (ctx: Ctx, cred: Credential, e: RoostError, startedAt: number, t0: number) => {
    let w: { tenant: string; workspace: string };
    try { w = workspaceOf(app, ctx, cred); } catch { return; }
    logCall(ctx, cred, { ...w, workspaceId: app.state.get<{ id: string }>('workspaces', w.tenant, w.workspace)?.id }, { startedAt, t0, status: e.status, error: e });
  };
  const answer = async (ctx: Ctx, authenticated: Credential, tenant: string, workspace: string, call: SqlCallLog) => {
    // A query string that is not UTF-8: left to this route by the server, so that the call is logged.
    if (ctx.queryError) throw ctx.queryError;
    const q = await sqlText(ctx, call);
    call.q = q;
    // Decided with the scopes the token has now, not those it had before its body arrived.
    const cred = currentCredential(app, ctx, authenticated);
    const filters = rowFiltersOf(app.state, tenant, workspace, cred);
    const may = (scope: string, name: string) => decide(cred, { op: 'workspace', tenant, workspace, scope, resource: name }) === undefined;
    // The names the query may use are those the credential may read (and the service data
    // sources, a fixed public set, authorized one by one below): a data source or quarantine it
    // may not read is left out like a name that is nothing, so the analyzer stops at the first
    // of either at the same place, and unknownTable() answers both alike.
    const map: Record<string, NameMapEntry> = {};
    for (const [name, entry] of Object.entries(workspaceNameMap(app.state, tenant, workspace, filters))) {
      if (isServiceName(name) || may('DATASOURCES:READ', name)) map[name] = entry;
    }
    // A template (`%` on its first line, as in a pipe node) is rendered with the request's
    // parameters first, as Tinybird's Query API does; what it renders is analyzed as any query.
    if (!isTemplate(q) && /^\s*%/.test(q)) throw new RoostError('SQL_SYNTAX', 'a template starts with a line holding % alone; put the query on the lines after it (%\\nSELECT ...)');
    let sql = isTemplate(q) ? renderTemplate(q, requestParams(ctx, call)).sql : q;
    /**
     * A name that resolved to nothing the credential may read. Without `DATASOURCES:READ` and
     * `PIPES:READ` on it, the audited 403 of a name it may not read, whether or not the name
     * exists; with either, the analyzer's 'unknown table' and its position (a data source or pipe
     * of that name it may not read is left unnamed the same way). A name the query gives a CTE,
     * a WITH expression or an alias, read where ClickHouse takes it for a table, is the
     * analyzer's 'unknown table' for every credential: the query meant its own name. Which answer
     * is given depends on the query text and the credential's scopes only, never on what exists
     * (a data source or pipe it may not read is not among the names either way).
     */
    const unknownTable = (e: SqlError): never => {
      const m = /^unknown (?:dictionary or )?table '(.*)'$/s.exec(e.message);
      if (m && !namedInQuery(sql, m[1]!)) {
        const name = m[1]!;
        const ds = may('DATASOURCES:READ', name);
        const pipe = may('PIPES:READ', name);
        if (!ds && !pipe) denySqlName(app, ctx, cred, { tenant, workspace }, name);
        if (!ds) throw toRoostError(new SqlError(e.code, `${e.message}: no pipe of that name, nor a data source this token may read (DATASOURCES:READ:${name})`, e.offset));
        if (!pipe) throw toRoostError(new SqlError(e.code, `${e.message}: no data source of that name, nor a pipe this token may read (PIPES:READ:${name})`, e.offset));
      }
      throw toRoostError(e);
    };
    // A JWT with fixed parameters: a WITH alias may not reach into the pipes the query reads.
    const guardAliases = hasFixedParams(cred);
    const analyze = (m: Record<string, NameMapEntry>) => {
      try {
        return analyzeSql(sql, m, { guardAliases });
      } catch (e) {
        // ClickHouse reads format names in any case (`FORMAT csv`): spelled as the analyzer knows them.
        const respelled = e instanceof SqlError && e.code === 'UNSUPPORTED_FORMAT' ? respellFormat(sql, e.offset) : undefined;
        if (respelled === undefined) {
          if (e instanceof SqlError && e.code === 'UNKNOWN_TABLE') unknownTable(e);
          if (e instanceof SqlError) throw toRoostError(e);
          throw e;
        }
        sql = respelled;
        return analyze(m);
      }
    };
    // `pipeline=<pipe>`: the pipe's nodes are names too, compiled with the request's parameters.
    // From a form body too, which wins over the query string as for every parameter (it was read
    // from the query string only: a POST form's pipeline= resolved nothing).
    const pipeName = call.form?.get('pipeline') ?? ctx.query.get('pipeline');
    // Its scope before the lookup, as on pipe routes: a credential that may not read it gets the
    // same 403 whether or not the pipe exists.
    if (pipeName) authorize(app, ctx, cred, { op: 'workspace', tenant, workspace, scope: 'PIPES:READ', resource: pipeName });
    // Published pipes are tables too (`SELECT * FROM <pipe>`, Tinybird's Query API example);
    // the nodes of `pipeline=` shadow them.
    const shadowing = pipeName ? getPipe(app.state, tenant, workspace, pipeName).nodes.map((n) => n.name) : [];
    // Service data sources read through a pipe must exist before the query, as when named directly
    // (a tenant that never wrote a service row has none yet: the query failed, UNKNOWN_DATABASE).
    let viaPipes = false;
    const pipeTables = addPipeTables(app, ctx, cred, { tenant, workspace, sql, map, shadowing, params: requestParams(ctx, call), rowFilters: filters, analyze, mayRead: (p) => may('PIPES:READ', p), onServiceRead: () => { viaPipes = true; } });
    let pipe: Pipe | undefined;
    if (pipeName) {
      pipe = getPipe(app.state, tenant, workspace, pipeName);
      // First find which nodes the query names, then compile only those.
      const probe = { ...map };
      for (const n of pipe.nodes) probe[n.name] = { kind: 'query', sql: 'SELECT 1' };
      const used = new Set(analyze(probe).tables.map((t) => t.name));
      const params = requestParams(ctx, call);
      // Parameters a JWT fixes for this pipe override the request's, as on the endpoint itself;
      // and such a token reads the pipe through its endpoint node only: another node may not
      // use the fixed parameter at all (a node before the filter holds every row).
      const fixed = fixedParams(cred, pipe.name);
      if (Object.keys(fixed).length) {
        for (const n of pipe.nodes) {
          if (used.has(n.name) && n.id !== pipe.endpoint) {
            authorize(app, ctx, cred, { op: 'workspace', tenant, workspace, scope: 'DATASOURCES:READ', resource: n.name });
          }
        }
      }
      for (const n of pipe.nodes) {
        if (!used.has(n.name)) continue;
        const c = compileEndpoint(app.state, { ...pipe, id: `${pipe.id}:${n.id}`, endpoint: n.id }, { params, fixedParams: fixed, fixedFor: (name) => fixedParams(cred, name), rowFilters: filters });
        // `PIPES:READ` on the pipe is its endpoint's result. Another node (the rows before the
        // endpoint's filter or aggregation) is read only with a read of what it reads: a pipe's
        // token read a secret table's rows through `SELECT * FROM raw` (black-box round).
        if (n.id !== pipe.endpoint) {
          for (const r of c.reads) {
            if (may('DATASOURCES:READ', r) || (findPipe(app.state, tenant, workspace, r) && may('PIPES:READ', r))) continue;
            authorize(app, ctx, cred, { op: 'workspace', tenant, workspace, scope: 'DATASOURCES:READ', resource: r });
          }
        }
        if (c.reads.some(isServiceName)) viaPipes = true;
        map[n.name] = { kind: 'query', sql: c.sql };
      }
    }
    const analysis = analyze(map);
    const nodeNames = new Set([...(pipe?.nodes.map((n) => n.name) ?? []), ...pipeTables]);
    // Nodes are authorized through the pipe; data sources one by one.
    const names = [...new Set(analysis.tables.map((t) => t.name).filter((n) => !nodeNames.has(n)))];
    if (names.length === 0 && !pipe && pipeTables.size === 0) authorizeAnyRead(app, ctx, cred, { tenant, workspace });
    for (const name of names) {
      // Only service data sources can be left here unread (the others are not among the names):
      // refused as a name read in SQL is, the same whether or not it is one of them.
      if (!may('DATASOURCES:READ', name) && !may('PIPES:READ', name)) denySqlName(app, ctx, cred, { tenant, workspace }, name);
      authorize(app, ctx, cred, { op: 'workspace', tenant, workspace, scope: 'DATASOURCES:READ', resource: name });
    }
    const t = getTenant(app.state, tenant);
    // Only a query reading nothing but the service data sources goes unlogged: one naming a service
    // table anywhere (a dead subquery, a LIMIT 0 join) hid its reads of data sources from the logs.
    call.readsService = analysis.tables.length > 0 && analysis.tables.every((t) => isServiceName(t.name));
    if (viaPipes || names.some(isServiceName)) await app.service.ensure(tenant);
    const format = analysis.format ?? 'JSON';
    // Tinybird's output parameters (`output_format_json_quote_64bit_integers=1`, ...), from the
    // query string or a form body.
    const output = outputSettings((k) => call.form?.get(k) ?? ctx.query.get(k) ?? undefined);
    call.tail = new ResultTail(format);
    call.tail.query(analysis.sql);
    await runQueryToResponse(ctx, {
      engine: app.cells.engineFor(t), tenant: t, config: app.config, metrics: app.metrics,
      sql: analysis.sql, format, names: publicNames(app.state, tenant, workspace), userSettings: output,
      // Completes the JSON trailer (rows_before_limit_at_least) the streaming path leaves out.
      tail: call.tail,
      // Pipes read by name or with pipeline= are inlined: their nodes are not the caller's to see;
      // nor are the row filters of the caller's own token (the engine's FINAL, SAMPLE or ARRAY
      // JOIN errors quoted the filter's view, condition and all).
      hideQuery: pipeTables.size > 0 || !!pipe || Object.keys(filters).length > 0,
      abandon: abandonGuard(app, ctx, tenant),
    });
  };
  app.router.get('/v0/sql', handler, { takesQueryErrors: true });
  app.router.post('/v0/sql', handler, { takesQueryErrors: true });
}
