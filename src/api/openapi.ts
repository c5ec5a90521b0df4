/**
 * `GET /v0/pipes/openapi.json` (Tinybird's): an OpenAPI 3.0 document of the workspace's published
 * endpoints that the calling credential may read, each template parameter a query parameter typed
 * from its template type. Built from saved state alone (no query runs): the rows of `data` are
 * described as objects, their columns unnamed (the endpoint's `meta` says them at call time).
 *
 * The path wins over a pipe named `openapi` called as JSON (such a pipe can no longer be created:
 * pipes/pipe.ts checkName); that pipe's other formats stay callable and are described.
 */
import type { App } from '../app.js';
import type { Ctx } from '../http/context.js';
import { sendText } from '../http/context.js';
import { trusted, unmappedAddress } from '../http/client-ip.js';
import { RoostError } from '../errors.js';
import { stringifyExact } from '../ingest/json-exact.js';
import { authenticate, fixedParams, workspaceOf, type Credential } from '../../auth/authorize.js';
import { listPipes, nodeClosure, endpointNode, type Pipe } from '../pipes/index.js';
import { arrayItems, checkScalar, elementInput, integerRange, isScalarType, type TemplateParameter } from '../pipes/template/index.js';
import { isOutputParam } from '../query/request-options.js';
import { canRead, reservedParam } from './pipes.js';

type Json = Record<string, unknown>;

/** The formats described for each endpoint, and what each answers. */
const FORMATS: ReadonlyArray<{ ext: string; media: string; schema: Json; what: string }> = [
  { ext: 'json', media: 'application/json', schema: { $ref: '#/components/schemas/EndpointResult' }, what: 'JSON: meta, data, rows, statistics' },
  { ext: 'csv', media: 'text/csv', schema: { type: 'string' }, what: 'CSV with a header row' },
  { ext: 'ndjson', media: 'application/x-ndjson', schema: { type: 'string' }, what: 'one JSON object per line' },
  { ext: 'parquet', media: 'application/vnd.apache.parquet', schema: { type: 'string', format: 'binary' }, what: 'Parquet' },
];

/** `/v0/pipes/<this>.json` is the document; no pipe may take the name (pipes/pipe.ts checkName). */
export const OPENAPI_PIPE = 'openapi';

/** `GET /v0/pipes/openapi.json`: the document, for the credential's workspace. */
export async function serveOpenApi(app: App, ctx: Ctx): Promise<void> {
  if (ctx.req.method !== 'GET' && ctx.req.method !== 'HEAD') {
    throw new RoostError('METHOD_NOT_ALLOWED', `/v0/pipes/${OPENAPI_PIPE}.json is the OpenAPI document of this workspace's endpoints: GET it (a pipe named "${OPENAPI_PIPE}" is not called as JSON)`, { headers: { Allow: 'GET, HEAD' } });
  }
  // Reached through `/v0/pipes/:pipe` (`openapi%2Ejson`), which takes a query string that is not UTF-8 to its handler.
  if (ctx.queryError) throw ctx.queryError;
  const cred = await authenticate(app, ctx);
  const ws = workspaceOf(app, ctx, cred);
  // Other query parameters are ignored, as everywhere (API.md: clients add their own, from= and cli_version=).
  const server = serverUrl(app, ctx);
  // Filtered as GET /v0/pipes filters: what the credential may not read is left out, without a denial each.
  const pipes = listPipes(app.state, ws.tenant, ws.workspace).filter((p) => endpointNode(p) && canRead(cred, ws.workspace, p.name));
  ctx.res.setHeader('Cache-Control', 'no-store');
  // Exact: an Int64's bounds are integers a double does not hold.
  sendText(ctx, 200, stringifyExact(openApiDocument(ws.workspace, server, pipes, cred)), 'application/json; charset=utf-8');
}

/**
 * The base URL of the API as the caller reaches it: `ROOST_PUBLIC_URL` when set, else the Host
 * the request named (a trusted proxy's X-Forwarded-Host and X-Forwarded-Proto win), and `/v0`.
 */
function serverUrl(app: App, ctx: Ctx): string {
  if (app.config.publicUrl) return `${app.config.publicUrl}/v0`;
  const viaProxy = ctx.proxies !== undefined && trusted(ctx.proxies, unmappedAddress(ctx.req.socket.remoteAddress ?? ''));
  const first = (h: string | string[] | undefined) => (Array.isArray(h) ? h[0] : h)?.split(',')[0]?.trim() || undefined;
  const proto = viaProxy ? first(ctx.req.headers['x-forwarded-proto'])?.toLowerCase() : undefined;
  const host = (viaProxy ? first(ctx.req.headers['x-forwarded-host']) : undefined) ?? ctx.req.headers.host;
  if (!host) {
    const h = app.address.host;
    return `http://${h.includes(':') ? `[${h}]` : h}:${app.address.port}/v0`;
  }
  if (host.length > 255 || !/^(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/.test(host)) {
    throw new RoostError('BAD_REQUEST', 'the Host header is not a host name or address with an optional port; the document names the server by it');
  }
  return `${proto === 'https' ? 'https' : 'http'}://${host}/v0`;
}

/** The OpenAPI 3.0 document of `pipes` (published, readable by `cred`) served at `server`. */
export function openApiDocument(workspace: string, server: string, pipes: Pipe[], cred: Credential): Json {
  const paths: Json = {};
  for (const pipe of pipes) {
    const parameters = endpointParameters(pipe, cred).map(parameterObject);
    const node = endpointNode(pipe);
    const description = pipe.description ?? node?.description ?? undefined;
    for (const f of FORMATS) {
      // Served as this document: not the pipe's.
      if (pipe.name === OPENAPI_PIPE && f.ext === 'json') continue;
      paths[`/pipes/${pipe.name}.${f.ext}`] = {
        get: {
          operationId: `${pipe.name}_${f.ext}`,
          summary: `${pipe.name} (${f.what})`,
          ...(description ? { description } : {}),
          tags: [pipe.name],
          parameters,
          responses: {
            200: { description: `The endpoint's result, ${f.what}`, content: { [f.media]: { schema: f.schema } } },
            400: { $ref: '#/components/responses/BadRequest' },
            401: { $ref: '#/components/responses/Unauthorized' },
            403: { $ref: '#/components/responses/Forbidden' },
            404: { $ref: '#/components/responses/NotFound' },
            429: { $ref: '#/components/responses/TooManyRequests' },
          },
        },
      };
    }
  }
  return {
    openapi: '3.0.3',
    info: {
      title: `${workspace} endpoints`,
      version: 'v0',
      description: `The published endpoints (API pipes) of workspace "${workspace}" that the token used to fetch this document may read. `
        + 'Each template parameter of an endpoint is a query parameter. Rows of `data` are described as objects: '
        + 'their columns are named and typed by the answer\'s `meta`, not here (that would take running each endpoint).',
    },
    servers: [{ url: server }],
    security: [{ BearerAuth: [] }, { TokenQuery: [] }],
    paths,
    components: {
      securitySchemes: {
        BearerAuth: { type: 'http', scheme: 'bearer', description: 'A token with PIPES:READ on the endpoint (or ADMIN), or a JWT signed for it' },
        TokenQuery: { type: 'apiKey', in: 'query', name: 'token', description: 'The same token as ?token=' },
      },
      schemas: {
        EndpointResult: {
          type: 'object',
          required: ['meta', 'data', 'rows', 'statistics'],
          properties: {
            meta: { type: 'array', description: 'The result\'s columns, in order', items: { type: 'object', required: ['name', 'type'], properties: { name: { type: 'string' }, type: { type: 'string', description: 'ClickHouse type' } } } },
            data: { type: 'array', description: 'The rows, one object each, keyed by the column names of `meta`', items: { type: 'object', additionalProperties: true } },
            rows: { type: 'integer', minimum: 0 },
            rows_before_limit_at_least: { type: 'integer', minimum: 0 },
            statistics: { type: 'object', properties: { elapsed: { type: 'number', description: 'seconds' }, rows_read: { type: 'integer' }, bytes_read: { type: 'integer' } } },
          },
        },
        Error: {
          type: 'object',
          required: ['error', 'code'],
          properties: { error: { type: 'string', description: 'What went wrong, in words' }, code: { type: 'string', description: 'A stable error code' } },
        },
      },
      responses: {
        BadRequest: errorResponse('A parameter\'s value does not fit its type, or a required one is missing'),
        Unauthorized: errorResponse('No token, or one not valid'),
        Forbidden: errorResponse('The token may not read this endpoint'),
        NotFound: errorResponse('No such pipe, or it has no endpoint'),
        TooManyRequests: errorResponse('Over the token\'s or the workspace\'s rate limit'),
      },
    },
  };
}

function errorResponse(description: string): Json {
  return { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
}

/**
 * The parameters a call of the endpoint takes: those of the endpoint node and of the nodes it
 * reads (as GET /v0/pipes/<pipe> lists them per node), first use first. Left out: names the API
 * keeps for itself (token, q, ...), which never reach a template, and those the credential fixes
 * (a JWT's fixed_params), which a caller cannot set.
 */
function endpointParameters(pipe: Pipe, cred: Credential): TemplateParameter[] {
  const node = endpointNode(pipe);
  if (!node) return [];
  const fixed = fixedParams(cred, pipe.name);
  const found = new Map<string, TemplateParameter>();
  // Names some node reads without a default: a call without them does not get another node's
  // (`{{Int32(x, 5)}}` in one node, `{{String(x)}}` in another: the document promised 5, the call
  // was a 400 saying x is required).
  const bare = new Set<string>();
  for (const n of nodeClosure(pipe, node)) {
    for (const p of n.params) {
      if (reservedParam(p.name) || isOutputParam(p.name) || Object.hasOwn(fixed, p.name)) continue;
      if (p.default === undefined) bare.add(p.name);
      const prev = found.get(p.name);
      if (!prev) { found.set(p.name, { ...p }); continue; }
      // One name in several nodes: one parameter; what one node says of it and another does not is kept.
      if (prev.type === 'String' && p.type !== 'String' && prev.default === undefined) prev.type = p.type;
      prev.required ||= p.required;
      prev.default ??= p.default;
      prev.description ??= p.description;
      prev.example ??= p.example;
    }
  }
  for (const name of bare) delete found.get(name)!.default;
  return [...found.values()];
}

function parameterObject(p: TemplateParameter): Json {
  const array = /^Array\((.*)\)$/.exec(p.type);
  const schema = array ? arraySchema(array[1]!) : scalarSchema(p.type);
  const def = valueAs(p.type, p.default);
  const example = valueAs(p.type, p.example);
  if (def !== undefined) schema.default = def;
  return {
    name: p.name,
    in: 'query',
    required: p.required,
    ...(p.description !== undefined ? { description: p.description } : {}),
    // Arrays as Tinybird takes them: one comma-separated value (repeating the name works too).
    ...(array ? { style: 'form', explode: false } : {}),
    schema,
    ...(example !== undefined ? { example } : {}),
    'x-template-type': p.type,
  };
}

function arraySchema(element: string): Json {
  return { type: 'array', items: isScalarType(element) ? scalarSchema(element) : {} };
}

/** The JSON Schema of a template type's values. */
function scalarSchema(type: string): Json {
  const range = integerRange(type);
  if (range) {
    // int32 and int64 as OpenAPI defines them (signed); a UInt64 or wider only by its bounds.
    const format = range.max <= 2147483647n && range.min >= -2147483648n ? 'int32'
      : range.max <= 9223372036854775807n && range.min >= -9223372036854775808n ? 'int64' : undefined;
    return { type: 'integer', ...(format ? { format } : {}), minimum: range.min, maximum: range.max };
  }
  switch (type) {
    case 'Float32': return { type: 'number', format: 'float' };
    case 'Float64': return { type: 'number', format: 'double' };
    case 'Boolean': return { type: 'boolean' };
    case 'Date': return { type: 'string', format: 'date' };
    case 'DateTime':
    case 'DateTime64': return { type: 'string', format: 'date-time' };
    case 'JSON': return { type: 'string', description: 'JSON text' };
    default: return { type: 'string' };
  }
}

/**
 * A default or example as a value of the parameter's schema: checked as a call's value is
 * (checkScalar), so what is shown is what the template takes; one that does not fit is left out.
 */
function valueAs(type: string, raw: unknown): unknown {
  if (raw === undefined || raw === null) return undefined;
  const array = /^Array\((.*)\)$/.exec(type);
  if (array) {
    const element = array[1]!;
    // Split and trimmed as a call takes the default (the template's own rules).
    const out = arrayItems(raw).map((x) => valueAs(element, elementInput(element, x)));
    return out.some((x) => x === undefined) ? undefined : out;
  }
  if (!isScalarType(type)) return typeof raw === 'string' ? raw : undefined;
  let value: unknown;
  try { value = checkScalar(type, raw).value; } catch { return undefined; }
  // checkScalar writes times as ClickHouse reads them; the schema says RFC 3339 (UTC, as Roost's times are).
  if ((type === 'DateTime' || type === 'DateTime64') && typeof value === 'string') return `${value.replace(' ', 'T')}Z`;
  if (type === 'JSON') return typeof raw === 'string' ? raw : stringifyExact(raw);
  return value;
}
