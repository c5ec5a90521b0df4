/**
 * Per-request context: id, parsed URL, params, a signal that fires when the
 * client goes away, body readers with limits, and response writers.
 */
import { multipartBoundary, readMultipart } from './multipart.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isUtf8 } from 'node:buffer';
import zlib from 'node:zlib';
import { RoostError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { TrustedProxies } from './client-ip.js';

export interface Ctx {
  readonly id: string;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly query: URLSearchParams;
  params: Record<string, string>;
  route: string;
  readonly log: Logger;
  /** Aborted when the client disconnects before the response is complete. */
  readonly signal: AbortSignal;
  readonly startedAt: number;
  readonly maxBodyBytes: number;
  /** A body from which no byte arrives for this long (ms) is answered 408 (bodyStream); 0: no idle limit. */
  readonly bodyIdleMs?: number;
  /** Proxies whose X-Forwarded-For is believed (`--trusted-proxies`); see clientIp in client-ip.ts. */
  readonly proxies?: TrustedProxies;
  /** Set by the auth layer. */
  auth?: unknown;
  /**
   * The query string is not UTF-8 (400 INVALID_UTF8): set for routes that take it themselves
   * (RouteOptions.takesQueryErrors) and throw it where they read their parameters.
   */
  queryError?: Error;
  /**
   * The workspace the request acts on, as it was when the credential was checked (set by
   * workspaceOf in auth/authorize.ts): a failure after it was deleted is answered as such.
   */
  workspace?: { tenant: string; tenantCreatedAt: string | undefined; name: string; id: string };
  /** The body was multipart/form-data, read as the urlencoded form it holds (readBody): a form, whatever its field names. */
  multipartForm?: boolean;
  /**
   * Set when the request deadline passed after the head was sent on an HTTP/1.0 connection:
   * the response is then ended with this error written into its body (see markIncomplete in
   * query/run.ts), since a close alone would read as a complete answer there.
   */
  deadline?: Error;
  /** Set when the server's request timeout ended the request: its call logs say 408, not 499. */
  timedOut?: Error;
  /**
   * Set by beginCommit: the request has started the step that changes data (a stage attached or
   * swapped in, a truncate, a drop, a rows delete). The deadline no longer answers 408 for it:
   * the handler answers what happened.
   */
  committing?: boolean;
}

/**
 * Called right before a request changes data that a 408 would say it left alone: throws the
 * request's 408 (or its client's going away) when it came first — nothing is changed — and
 * otherwise keeps the deadline from answering until the handler does (a 408 sent while the commit
 * ran, or before an operation waiting for its data source's lock ran, was followed by the change:
 * an append retried after its 408 stored its rows twice; a truncate answered 408 emptied the
 * table seconds later).
 */
export function beginCommit(ctx: Ctx): void {
  if (ctx.timedOut) throw ctx.timedOut;
  if (ctx.signal.aborted) throw new RoostError('CLIENT_CLOSED', 'the client went away before the change was made; nothing was changed');
  ctx.committing = true;
}

/**
 * Reads the whole body (small bodies only), refusing more than `limit` bytes with 413.
 * A `multipart/form-data` body (a browser's `FormData`, `curl -F`) is answered as the same
 * fields urlencoded, and the request's Content-Type says so from then on: every route reading
 * parameters from a small body reads a form one way (its parts were read as one urlencoded
 * form of garbage, or as SQL: their fields were silently ignored). A file part is refused:
 * files are data, sent to the ingest routes.
 */
export async function readBody(ctx: Ctx, limit = ctx.maxBodyBytes): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of bodyStream(ctx, limit)) {
    size += chunk.length;
    parts.push(chunk);
  }
  const body = Buffer.concat(parts, size);
  const boundary = multipartBoundary(String(ctx.req.headers['content-type'] ?? ''));
  if (!boundary) return body;
  const fields = new URLSearchParams();
  for await (const part of readMultipart((async function* () { yield body; })(), boundary)) {
    if (part.filename !== undefined) throw new RoostError('UNSUPPORTED_MEDIA_TYPE', `multipart part "${part.name}" is a file; this route takes fields only (files are data: POST them to /v0/datasources or /v0/events)`);
    // As an urlencoded field's: bytes that are not UTF-8 are a 400, not turned into U+FFFD.
    const bytes: Buffer[] = [];
    for await (const c of part.body) bytes.push(c);
    fields.append(part.name, textOf(Buffer.concat(bytes), `multipart field ${JSON.stringify(part.name)}`));
  }
  ctx.req.headers['content-type'] = 'application/x-www-form-urlencoded';
  ctx.multipartForm = true;
  return Buffer.from(fields.toString());
}

/**
 * The request body as a stream of Buffers, gunzipped when `Content-Encoding:
 * gzip`, with a hard byte limit (413) checked as it flows.
 */
export async function* bodyStream(ctx: Ctx, limit: number): AsyncGenerator<Buffer> {
  const declared = Number(ctx.req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  // x-gzip is gzip (RFC 9110, 8.4.1.3).
  const enc = String(ctx.req.headers['content-encoding'] ?? '').toLowerCase().trim().replace(/^x-gzip$/, 'gzip');
  let source: AsyncIterable<Buffer> = ctx.req;
  if (enc === 'gzip') source = ctx.req.pipe(zlib.createGunzip());
  else if (enc && enc !== 'identity') throw new RoostError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding "${enc}" is not supported; send gzip or no encoding`);
  let size = 0;
  const idleMs = ctx.bodyIdleMs ?? 0;
  const it = source[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      // Only the wait for the client's next bytes is timed, not the consumer's work between
      // chunks (an ingest waiting on its engine pulls no chunk, and TCP holds the sender).
      const next = idleMs > 0 && !ctx.req.complete ? await idle(it.next(), idleMs) : await it.next();
      if (next.done) { done = true; break; }
      const chunk = next.value;
      size += chunk.length;
      if (size > limit) throw tooLarge(limit, enc === 'gzip');
      yield chunk;
    }
  } catch (e) {
    if (e instanceof RoostError) {
      // A stalled body: its read is still pending, and a return() would wait behind it. The
      // gunzip stream is ended here; the request's socket is closed after the 408 is sent
      // (Connection: close, the body being incomplete).
      if (e.code === 'REQUEST_TIMEOUT' && source !== ctx.req) (source as zlib.Gunzip).destroy();
      throw e;
    }
    if ((e as { code?: string }).code === 'Z_DATA_ERROR' || (e as { errno?: number }).errno === -3) {
      throw new RoostError('BAD_REQUEST', 'the gzip body is corrupt; send a valid gzip stream or drop Content-Encoding');
    }
    // The whole body arrived and the gzip stream in it stops short: the client's file, not the
    // client leaving (which it was answered as: 499).
    if ((e as { code?: string }).code === 'Z_BUF_ERROR' && ctx.req.complete) {
      throw new RoostError('BAD_REQUEST', 'the gzip body ends before its gzip stream does (truncated); send the whole file', { cause: e });
    }
    throw new RoostError('CLIENT_CLOSED', 'the request body could not be read to its end', { cause: e });
  } finally {
    // As a for-await loop would: a body left early (an error, a consumer that stopped) is
    // released. Not awaited: behind a pending read (a stalled body) it would wait for it.
    if (!done) it.return?.().catch(() => {});
  }
}

/**
 * `next`, or a 408 once no byte of the body arrived for `ms`: a client that stalled in the
 * middle of its body held its connection (and its upload) until the request deadline
 * (`--request-timeout`, five minutes by default).
 */
async function idle<T>(next: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new RoostError('REQUEST_TIMEOUT', `no byte of the request body arrived for ${ms} ms; send the body without pauses (the server's --body-idle-timeout)`));
    }, ms);
  });
  try {
    return await Promise.race([next, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The 413 of a body over `limit`; of a gzip body, over it once uncompressed. */
export function tooLarge(limit: number, gzip = false): RoostError {
  return new RoostError('BODY_TOO_LARGE', `${gzip ? 'the gzip body' : 'request body'} is larger than the limit of ${limit} bytes${gzip ? ' once uncompressed' : ''}; send less or split it`, { details: { limit } });
}

export async function readJson<T = unknown>(ctx: Ctx): Promise<T> {
  const body = await readBody(ctx);
  if (body.length === 0) throw new RoostError('EMPTY_BODY', 'the request body is empty; send a JSON object');
  const text = textOf(body);
  let value: T;
  try {
    value = JSON.parse(text) as T;
  } catch (e) {
    throw new RoostError('INVALID_JSON', `the request body is not valid JSON: ${(e as Error).message}`);
  }
  noLoneSurrogates(text, value);
  return value;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A JSON body whose strings (keys or values) hold a lone surrogate escape (`"\ud800"` with no
 * pair) is a 400 INVALID_UTF8, like a query parameter that is not UTF-8: it is valid JSON but no
 * Unicode text. Taken as sent, it was stored (a tenant's name) or logged (a query's parameters),
 * and the engine refused it there: one such request stopped every later write of the tenant's
 * service log. `text` is the body `value` was parsed from (only escapes can make one: the text
 * itself is UTF-8).
 */
export function noLoneSurrogates(text: string, value: unknown, what = 'the JSON body'): void {
  if (!/\\u[dD][89a-fA-F]/.test(text)) return;
  const stack: unknown[] = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) throw new RoostError('INVALID_UTF8', `${what} holds a lone surrogate escape (a \\uD800-\\uDFFF without its pair), which is no Unicode text; send the characters themselves or both halves of the pair`);
    } else if (v !== null && typeof v === 'object') {
      if (Array.isArray(v)) for (const x of v) stack.push(x);
      else for (const [k, x] of Object.entries(v)) stack.push(k, x);
    }
  }
}

/** Form fields from an urlencoded body merged over the query string (body wins). */
export async function readForm(ctx: Ctx): Promise<URLSearchParams> {
  const type = String(ctx.req.headers['content-type'] ?? '');
  // A multipart form's fields too: readBody answers them urlencoded.
  if (!type.startsWith('application/x-www-form-urlencoded') && !multipartBoundary(type)) return new URLSearchParams(ctx.query);
  return mergeForm(ctx.query, formOf(textOf(await readBody(ctx))));
}

/**
 * `fields` over `query`, one value per name, the last of `fields` winning: what calling
 * `query.set()` for each field gives, in linear time (set() scans every field, so setting
 * each of a 1 MiB body's ~100k fields held the event loop for tens of seconds).
 */
export function mergeForm(query: URLSearchParams, fields: URLSearchParams): URLSearchParams {
  const body = new Map<string, string>();
  for (const [k, v] of fields) body.set(k, v);
  const out = new URLSearchParams();
  for (const [k, v] of query) if (!body.has(k)) out.append(k, v);
  for (const [k, v] of body) out.append(k, v);
  return out;
}

/**
 * A body as text. Text that is not UTF-8 is a 400: decoding it anyway would turn the bad
 * bytes into U+FFFD and store or run something other than what was sent.
 */
export function textOf(body: Buffer, what = 'the request body'): string {
  if (!isUtf8(body)) throw new RoostError('INVALID_UTF8', `${what} is not UTF-8; send it as UTF-8 text`);
  // A UTF-8 byte-order mark (editors on Windows write one) is not part of the text: JSON.parse
  // refused such a body with a message that did not say why.
  const start = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  return body.toString('utf8', start);
}

/**
 * The name of the first field of an urlencoded text (`a=1&b=2`, or a query string with its `?`)
 * whose name or value is not UTF-8 once percent-decoded, if any (URLSearchParams would turn
 * those bytes into U+FFFD silently; Tinybird answers 400). `%ZZ` is not an escape and stays as
 * written.
 */
export function fieldNotUtf8(text: string): string | undefined {
  if (!text.includes('%')) return undefined;
  for (const pair of (text.startsWith('?') ? text.slice(1) : text).split('&')) {
    if (!pair.includes('%')) continue;
    const bytes = Buffer.from(pair.replace(/%([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    if (!isUtf8(bytes)) return [...new URLSearchParams(pair).keys()][0] ?? '';
  }
  return undefined;
}

/** The fields of an urlencoded body; a value that is not UTF-8 once percent-decoded is a 400. */
export function formOf(text: string): URLSearchParams {
  const bad = fieldNotUtf8(text);
  if (bad !== undefined) throw new RoostError('INVALID_UTF8', `form field ${JSON.stringify(bad)} is not UTF-8 once percent-decoded; percent-encode the text's UTF-8 bytes (é is %C3%A9)`);
  return new URLSearchParams(text);
}

export function sendJson(ctx: Ctx, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  ctx.res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  ctx.res.end(text);
}

export function sendText(ctx: Ctx, status: number, text: string, type = 'text/plain; charset=utf-8'): void {
  ctx.res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text) });
  ctx.res.end(text);
}

/** Writes a chunk honouring backpressure; rejects when the client has gone. */
export function writeChunk(ctx: Ctx, chunk: Buffer | string, stallMs?: number, stallApplies?: () => boolean): Promise<void> {
  if (ctx.res.destroyed) return Promise.reject(new RoostError('CLIENT_CLOSED', 'client went away'));
  // Ended by Roost (the deadline over HTTP/1.0): nothing more may be written.
  if (ctx.res.writableEnded) return Promise.reject(ctx.deadline ?? new RoostError('CLIENT_CLOSED', 'the response was already ended'));
  if (ctx.res.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onDrain = () => { clearTimeout(timer); ctx.res.off('close', onClose); resolve(); };
    const onClose = () => { clearTimeout(timer); ctx.res.off('drain', onDrain); reject(new RoostError('CLIENT_CLOSED', 'client went away')); };
    ctx.res.once('drain', onDrain);
    ctx.res.once('close', onClose);
    // A client that takes nothing for this long is let go (see CLIENT_STALL_MS in query/run.ts).
    // Progress is what the socket hands the kernel: a slow client that keeps reading moves it
    // (a drain comes only once a whole chunk, megabytes, is out: waiting for it dropped clients
    // reading steadily at 1 MB/s).
    if (stallMs !== undefined) {
      const written = () => ctx.res.socket?.bytesWritten ?? 0;
      let seen = written();
      const check = () => {
        const now = written();
        // No progress, but nothing waits on this client yet (stallApplies): it may take its time.
        if (now !== seen || (stallApplies && !stallApplies())) { seen = now; timer = setTimeout(check, stallMs); timer.unref(); return; }
        ctx.res.off('drain', onDrain);
        ctx.res.off('close', onClose);
        ctx.log.warn('client read nothing of its result for too long; dropped', { request_id: ctx.id, route: ctx.route, stall_ms: stallMs });
        ctx.res.destroy();
        reject(new RoostError('CLIENT_CLOSED', `the client read nothing of the result for ${stallMs} ms`));
      };
      timer = setTimeout(check, stallMs);
      timer.unref();
    }
  });
}
