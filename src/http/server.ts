/**
 * The HTTP front: node:http, one dispatcher. It assigns request ids, enforces
 * the request deadline, logs one JSON line per request, records metrics, and is
 * the only place that turns errors into HTTP statuses and `{error, code}` bodies.
 */
import { clientIp } from './client-ip.js';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { RoostError, errorCodes, isRoostError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../log/metrics.js';
import type { Ctx } from './context.js';
import { trusted, unmappedAddress, type TrustedProxies } from './client-ip.js';
import { fieldNotUtf8, sendJson } from './context.js';
import type { Router } from './router.js';

export interface HttpServerOptions {
  router: Router;
  log: Logger;
  metrics: Metrics;
  requestTimeoutMs: number;
  /** A body from which no byte arrives for this long is answered 408 (bodyStream in context.ts); 0 or unset: no idle limit. */
  bodyIdleMs?: number;
  maxBodyBytes: number;
  /**
   * When set, a request whose Host header it refuses is answered 403 HOST_NOT_ALLOWED before
   * routing (development mode: see loopbackHost).
   */
  hostAllowed?: (host: string) => boolean;
  /** Proxies whose X-Forwarded-For names the client (see client-ip.ts). */
  trustedProxies?: TrustedProxies;
  /**
   * Open connections one client address may hold (trusted proxies: no limit); beyond, 429 and
   * closed (`--max-connections-per-client`; its default is the config's).
   */
  maxConnectionsPerClient: number;
  /**
   * Idle keep-alive connections are closed after this (ms; `--keep-alive-timeout`). Node's 5 s default
   * closed connections a client was about to reuse: a load balancer with a 60 s idle timeout, or
   * a client whose event loop was busy for 5 s, sent its next request on a socket being closed
   * and got a reset (EPIPE) for a request the server never saw.
   */
  keepAliveMs: number;
}

/** Connections refused by the per-client cap (answered 429 at once, closed). */
const REFUSED = new WeakSet<object>();

/**
 * The process's open-files limit (Linux `/proc/self/limits`), or undefined. Connections are
 * capped below it: one client holding every descriptor (stalled requests) took every tenant down,
 * and the server could not open its own files.
 */
export function openFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * All connections and those of one client address, from the open-files limit (undefined: not
 * known) and the configured per-client cap: 1024 descriptors are kept for the server's own files
 * and cells (under a limit of 4096, a quarter), and one address holds at most half of the rest.
 */
export function connectionLimits(files: number | undefined, perClient: number): { total?: number; perClient: number } {
  if (files === undefined) return { perClient };
  const total = files >= 4096 ? files - 1024 : Math.max(64, Math.floor(files * 0.75));
  return { total, perClient: Math.min(perClient, Math.max(1, Math.floor(total / 2))) };
}

/** The key a connection counts under: the address (IPv6: its /64, what one client holds). */
function connectionKey(addr: string): string {
  const a = unmappedAddress(addr);
  if (!net.isIPv6(a)) return a;
  const [head, tail] = a.toLowerCase().split('::');
  const hs = head ? head.split(':') : [];
  const ts = tail ? tail.split(':') : [];
  const groups = tail === undefined ? hs : [...hs, ...Array<string>(Math.max(0, 8 - hs.length - ts.length)).fill('0'), ...ts];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * A Host header naming this machine without DNS: `localhost` (or a name under `.localhost`, which
 * resolves to loopback by RFC 6761) or an IP literal. Development mode answers its unauthenticated
 * `/tokens` (admin tokens) and `/metrics` only for those: a web page from a name that an attacker's
 * DNS points at 127.0.0.1 (DNS rebinding) is same-origin with the server and could read them.
 */
export function loopbackHost(host: string): boolean {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (/^\[[0-9a-f:.]+\]$/.test(name)) return true;  // IPv6 literal
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name);  // IPv4 literal
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export class HttpServer {
  readonly server: http.Server;
  /**
   * Called with every 401/403 answered (set by the app: it audits those that no
   * decision function audited already, so every denial leaves one record).
   */
  onRefusal: ((ctx: Ctx, e: RoostError) => void) | undefined;
  /** May answer a failure as another error (set by the app: failures of a workspace deleted meanwhile). */
  explainFailure: ((ctx: Ctx, e: unknown) => unknown) | undefined;
  #opts: HttpServerOptions;
  #inflight = new Set<Ctx>();
  /**
   * The requests in flight by id (audit records of a request carry its client's address). The id
   * may be the client's own X-Request-Id: one in flight twice names no address, so no record
   * takes another request's.
   */
  #byId = new Map<string, Ctx | Set<Ctx>>();
  #draining = false;
  /** Open connections per client address (see the connection cap). */
  #perClient = new Map<string, number>();
  /** Client addresses whose refused connections were logged in the last minute. */
  #capLogged = new Set<string>();

  constructor(opts: HttpServerOptions) {
    this.#opts = opts;
    this.server = http.createServer({ keepAliveTimeout: opts.keepAliveMs, requestTimeout: 0, headersTimeout: 30_000 }, (req, res) => {
      if (REFUSED.has(req.socket)) { req.socket.destroy(); return; }
      void this.#dispatch(req, res);
    });
    // Requests node's parser refuses never reach #dispatch: they get the same JSON errors.
    this.server.on('clientError', (err: Error, socket: Duplex) => this.#parseError(err, socket));
    // Connections: a cap per client address, and all of them below the open-files limit.
    const limits = connectionLimits(openFilesLimit(), opts.maxConnectionsPerClient);
    if (limits.total !== undefined) this.server.maxConnections = limits.total;
    const perClient = limits.perClient;
    this.server.prependListener('connection', (socket: net.Socket) => {
      const addr = socket.remoteAddress;
      if (!addr || (opts.trustedProxies && trusted(opts.trustedProxies, unmappedAddress(addr)))) return;
      const key = connectionKey(addr);
      const n = (this.#perClient.get(key) ?? 0) + 1;
      this.#perClient.set(key, n);
      socket.once('close', () => {
        const left = (this.#perClient.get(key) ?? 1) - 1;
        if (left > 0) this.#perClient.set(key, left); else this.#perClient.delete(key);
      });
      if (n > perClient) {
        const body = JSON.stringify({ error: `this client address has ${perClient} connections open to the server, its limit: close some (or reuse them with keep-alive) and retry`, code: 'RATE_LIMITED' });
        // Answered here, before any request is read; a request it still sends is not served.
        REFUSED.add(socket);
        socket.end(`HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        setTimeout(() => socket.destroy(), 1000).unref();
        this.#count('unrouted', 'UNKNOWN', 429);
        if (!this.#capLogged.has(key)) {
          this.#capLogged.add(key);
          this.#opts.log.warn('connections refused: a client address holds too many', { client: key, limit: perClient });
          setTimeout(() => this.#capLogged.delete(key), 60_000).unref();
        }
      }
    });
    this.server.on('checkExpectation', (req: http.IncomingMessage, res: http.ServerResponse) => {
      // The body was not sent (the client waits for 100 Continue): nothing to read, but
      // the client may send it anyway, so the connection is not reused.
      const e = new RoostError('EXPECTATION_FAILED', `Expect: ${String(req.headers.expect).slice(0, 100)} is not supported; send Expect: 100-continue or no Expect header`);
      const body = JSON.stringify({ error: e.message, code: e.code });
      res.writeHead(e.status, { Connection: 'close', 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) }).end(body);
      this.#count('unrouted', req.method ?? 'UNKNOWN', e.status);
    });
  }

  get inflight(): number { return this.#inflight.size; }

  /** The client address of a request still in flight (its audit records are written while it runs). */
  clientIpOf(requestId: string): string | undefined {
    const entry = this.#byId.get(requestId);
    // In flight more than once (a client's id used twice): no address rather than another's.
    if (!entry || (entry instanceof Set && entry.size !== 1)) return undefined;
    return clientIp(entry instanceof Set ? [...entry][0]! : entry);
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  async #dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const given = req.headers['x-request-id'];
    const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    res.setHeader('X-Request-Id', id);
    const ac = new AbortController();
    // Set when Roost itself cuts a response whose head is gone (an error or the deadline
    // mid-stream); a response that closes unfinished otherwise was cut by the client.
    let cutHere = false;
    let clientGone = false;
    res.on('close', () => {
      if (res.writableFinished) return;
      if (!cutHere) clientGone = true;
      ac.abort();
    });
    const target = parseTarget(req.url ?? '/');
    const url = target instanceof URL ? target : new URL('http://localhost/');
    const ctx: Ctx = {
      id, req, res, url, query: url.searchParams, params: {}, route: 'unmatched',
      log: this.#opts.log, signal: ac.signal, startedAt: performance.now(), maxBodyBytes: this.#opts.maxBodyBytes, bodyIdleMs: this.#opts.bodyIdleMs ?? 0,
      proxies: this.#opts.trustedProxies,
    };
    this.#inflight.add(ctx);
    const same = this.#byId.get(id);
    if (!same) this.#byId.set(id, ctx);
    else if (same instanceof Set) same.add(ctx);
    else this.#byId.set(id, new Set([same, ctx]));
    const timer = setTimeout(() => {
      // Past the point of changing data (beginCommit): the handler answers what happened.
      if (ctx.committing) return;
      const late = new RoostError('REQUEST_TIMEOUT', `the request did not finish within ${this.#opts.requestTimeoutMs} ms`);
      ctx.timedOut = late;
      if (!res.headersSent) this.#sendError(ctx, late);
      else if (req.httpVersion === '1.0' && !res.writableEnded) {
        // No chunks on HTTP/1.0: a close would read as the end of a complete answer. The
        // handler, woken by the abort, ends the body with this error written into it
        // (markIncomplete). The marker leaves after what is queued before it: the connection is
        // cut only once the client has taken nothing of it for 5 s (a client reading slowly got
        // the body cut a second after the deadline, mid-row, without the marker, which read as a
        // complete answer), or after 30 s. Progress: the bytes still queued in the process go down.
        cutHere = true;
        ctx.deadline = late;
        let queued = Infinity;
        let still = 0;
        let waited = 0;
        const check = setInterval(() => {
          waited += 1000;
          if (res.writableFinished || res.destroyed) { clearInterval(check); return; }
          const now = res.socket?.writableLength ?? 0;
          still = now < queued ? 0 : still + 1000;
          queued = now;
          if (still >= 5_000 || waited >= 30_000) { clearInterval(check); res.destroy(); }
        }, 1000);
        check.unref();
      } else {
        cutHere = true;
        res.destroy();
      }
      ac.abort();
    }, this.#opts.requestTimeoutMs);
    try {
      if (this.#draining) {
        res.setHeader('Connection', 'close');
        throw new RoostError('SHUTTING_DOWN', 'the server is shutting down; retry on another instance or shortly', { retryable: true, headers: { 'Retry-After': '1' } });
      }
      if (!(target instanceof URL)) throw target;
      if (this.#opts.hostAllowed && !this.#opts.hostAllowed(String(req.headers.host ?? ''))) {
        throw new RoostError('HOST_NOT_ALLOWED', `Host ${JSON.stringify(String(req.headers.host ?? '').slice(0, 100))} is refused in development mode: call the server as localhost or by IP address`);
      }
      // Media types are case-insensitive (RFC 9110 8.3.1); routes compare them in lower case.
      // Parameters keep their case (a multipart boundary is case-sensitive).
      const type = req.headers['content-type'];
      if (type) req.headers['content-type'] = type.replace(/^[^;]*/, (t) => t.trim().toLowerCase());
      const notUtf8 = fieldNotUtf8(url.search);
      const queryError = notUtf8 === undefined ? undefined : new RoostError('INVALID_UTF8', `query parameter ${JSON.stringify(notUtf8)} is not UTF-8 once percent-decoded; percent-encode the text's UTF-8 bytes (é is %C3%A9)`);
      // Routes that log their calls take it themselves (RouteOptions.takesQueryErrors); for the
      // others it is the answer, before anything else about the route. So it is too when it is in
      // what names the caller (`token`, `workspace`): decoded, that read as another credential or
      // workspace (a 401 or an audited 403 instead of saying what to fix).
      if (queryError) {
        const namesCaller = fieldNotUtf8(url.search.slice(1).split('&').filter((p) => {
          const k = [...new URLSearchParams(p).keys()][0];
          return k === 'token' || k === 'workspace';
        }).join('&')) !== undefined;
        if (namesCaller) throw queryError;
        let takes = false;
        try {
          const m = this.#opts.router.match(req.method ?? 'GET', url.pathname);
          takes = m !== undefined && 'handler' in m && m.opts.takesQueryErrors === true;
        } catch { /* a bad path too: the query string's 400 */ }
        if (!takes) throw queryError;
        ctx.queryError = queryError;
      }
      // The API is called from web pages too (Tinybird's JWTs with fixed parameters are made for
      // that): any origin may read /v0/ answers. Safe without credentials mode: a cookie is never
      // sent with `*`, and a token is the caller's own.
      const api = url.pathname.startsWith('/v0/');
      if (api) res.setHeader('Access-Control-Allow-Origin', '*');
      const m = this.#opts.router.match(req.method ?? 'GET', url.pathname);
      if (!m) throw new RoostError('ROUTE_NOT_FOUND', `no route ${req.method} ${url.pathname}; see the API reference`);
      if ('allowed' in m) {
        const allow = allowedMethods(m.allowed);
        if (req.method === 'OPTIONS') {
          // A CORS preflight (or a plain question about the route): what it takes.
          ctx.route = 'OPTIONS';
          res.setHeader('Allow', allow.join(', '));
          if (api && req.headers['access-control-request-method']) {
            res.setHeader('Access-Control-Allow-Methods', allow.join(', '));
            res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, Content-Encoding, X-Roost-Workspace, X-Request-Id');
            res.setHeader('Access-Control-Max-Age', '600');
          }
          res.writeHead(204).end();
          return;
        }
        throw new RoostError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}; use ${m.allowed.join(' or ')}`, { headers: { Allow: allow.join(', ') } });
      }
      if (api) res.setHeader('Access-Control-Expose-Headers', 'X-Request-Id, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset');
      ctx.route = m.route;
      ctx.params = m.params;
      await m.handler(ctx);
      if (!res.headersSent && !res.writableEnded) throw new Error(`handler for ${m.route} sent no response`);
    } catch (e) {
      if (!res.headersSent) this.#sendError(ctx, e);
      else if (!res.writableEnded) {
        // Headers are gone: the only honest signal left is to cut the stream.
        if (!clientGone) ctx.log.warn('response failed after headers were sent', { request_id: id, err: e });
        cutHere = true;
        res.destroy();
      }
    } finally {
      clearTimeout(timer);
      // Drain an unread body so keep-alive stays usable (bounded by the limit checks).
      if (!req.complete && !req.destroyed) req.resume();
      const finish = () => {
        this.#inflight.delete(ctx);
        const entry = this.#byId.get(id);
        if (entry === ctx) this.#byId.delete(id);
        else if (entry instanceof Set && entry.delete(ctx) && entry.size === 0) this.#byId.delete(id);
        // A client that went away before the answer was complete did not get it: counted as 499
        // (nginx's "client closed request"), not as the 200 that `statusCode` holds by default or
        // that the head of a result it stopped reading carried.
        const status = res.headersSent && !clientGone ? res.statusCode : 499;
        const secs = (performance.now() - ctx.startedAt) / 1000;
        const labels = { method: req.method ?? 'GET', route: ctx.route, status: String(status) };
        this.#opts.metrics.httpRequests.inc(labels);
        this.#opts.metrics.httpDuration.observe(labels, secs);
        this.#opts.log.info('request', { request_id: id, method: req.method, path: url.pathname, route: ctx.route, status, ms: Math.round(secs * 1e4) / 10, aborted: ac.signal.aborted || undefined });
        this.#maybeDrained();
      };
      if (res.writableFinished || res.destroyed) finish();
      else res.once('close', finish);
    }
  }

  #sendError(ctx: Ctx, e: unknown): void {
    // A request refused before its body was read to the end leaves that body unread
    // (a large one is not drained just to say 4xx), and the connection then cannot carry
    // another request: say so, or a keep-alive client sends its next request on a socket
    // that is being closed and sees a reset.
    // (A request without a body is not complete yet when refused before any await, but has
    // nothing unread: its connection stays usable, and requests pipelined behind it are served.)
    if (!ctx.req.complete && hasBody(ctx.req)) {
      ctx.res.setHeader('Connection', 'close');
      const socket = ctx.res.socket ?? ctx.req.socket;
      if (socket) lingerAfterAnswer(socket);
    }
    try { e = this.explainFailure?.(ctx, e) ?? e; } catch (err) { ctx.log.error('failure not explained', { request_id: ctx.id, err }); }
    if (isRoostError(e)) {
      if (e.code === 'CLIENT_CLOSED' && ctx.signal.aborted) return;
      if (e.status === 401 || e.status === 403) {
        try { this.onRefusal?.(ctx, e); } catch (err) { ctx.log.error('refusal not audited', { request_id: ctx.id, err }); }
      }
      const body: Record<string, unknown> = { error: e.message, code: e.code, ...e.details };
      if (e.retryable) body.retryable = true;
      // An engine that failed for a reason its answer does not show (the network, TLS, a proxy):
      // the operator reads the reason here, by the request id the client was given.
      if (e.code === 'CELL_UNAVAILABLE' && (e as { cause?: unknown }).cause instanceof Error) {
        ctx.log.warn('engine unavailable', { request_id: ctx.id, route: ctx.route, err: e });
        body.request_id = ctx.id;
      }
      sendJson(ctx, e.status, body, e.headers);
      return;
    }
    const errno = diskFull(e);
    if (errno) {
      ctx.log.error('disk full', { request_id: ctx.id, route: ctx.route, err: e });
      sendJson(ctx, 507, { error: `the server could not write to its disk (${errno}: full, or a file size limit): the request was not completed; free space and retry`, code: 'INSUFFICIENT_STORAGE', retryable: true, request_id: ctx.id });
      return;
    }
    const refused = diskRefused(e);
    if (refused) {
      // A data directory made read-only, or its permissions changed: not a bug to report (500),
      // a state of the server's disk to fix; the request did not complete.
      ctx.log.error('disk refused a write', { request_id: ctx.id, route: ctx.route, err: e });
      sendJson(ctx, 503, { error: `the server could not write to its disk (${refused}: read-only or not permitted): the request was not completed; retry later, and tell the operator (request id ${ctx.id})`, code: 'ENGINE_UNAVAILABLE', retryable: true, request_id: ctx.id }, { 'Retry-After': '10' });
      return;
    }
    ctx.log.error('unhandled error', { request_id: ctx.id, route: ctx.route, err: e });
    sendJson(ctx, 500, { error: `internal error; report request id ${ctx.id}`, code: 'INTERNAL', request_id: ctx.id });
  }

  /**
   * Answers a request node's HTTP parser refused (bad request line, header, chunk size or
   * Content-Length; headers over the limit; headers not in within `headersTimeout`) with a JSON
   * error, then closes the connection. As node does, nothing is written when a response on this
   * connection has begun already: bytes in its middle would corrupt it.
   */
  #parseError(err: Error & { code?: string; reason?: string }, socket: Duplex): void {
    const current = (socket as { _httpMessage?: http.ServerResponse })._httpMessage;
    if (err.code !== 'ECONNRESET' && socket.writable && !current?.headersSent) {
      const e = err.code === 'HPE_HEADER_OVERFLOW'
        ? new RoostError('HEADERS_TOO_LARGE', `the request line and headers are larger than ${http.maxHeaderSize} bytes; send a shorter URL (long parameter lists can go in a POST form body) or fewer headers`)
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new RoostError('REQUEST_TIMEOUT', 'the request headers did not arrive in time')
          : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
            ? new RoostError('BODY_TOO_LARGE', 'the chunk extensions of the body are too large; send chunks without extensions')
            : new RoostError('BAD_REQUEST', `the request is not valid HTTP/1.1: ${err.reason ?? err.message}${err.code ? ` (${err.code})` : ''}; check the method, the URL (percent-encode spaces and bytes above 0x7F), the headers, Content-Length and chunk sizes`);
      const body = JSON.stringify({ error: e.message, code: e.code });
      socket.write(`HTTP/1.1 ${e.status} ${http.STATUS_CODES[e.status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      this.#opts.log.info('request', { status: e.status, code: e.code, parser: err.code, route: 'unparsed' });
      this.#count('unparsed', 'UNKNOWN', e.status);
      // Closed once the answer is written (destroy() could drop it).
      (socket as Duplex & { destroySoon(): void }).destroySoon();
      return;
    }
    socket.destroy();
  }

  #count(route: string, method: string, status: number): void {
    this.#opts.metrics.httpRequests.inc({ method, route, status: String(status) });
  }

  #drainWaiters: Array<() => void> = [];
  #maybeDrained(): void {
    if (this.#draining && this.#inflight.size === 0) for (const w of this.#drainWaiters.splice(0)) w();
  }

  /** Stops accepting, waits for in-flight requests (at most `graceMs`), then closes all connections. */
  async drain(graceMs: number): Promise<{ drained: boolean }> {
    this.#draining = true;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeIdleConnections();
    let drained = true;
    if (this.#inflight.size > 0) {
      drained = await Promise.race([
        new Promise<boolean>((r) => this.#drainWaiters.push(() => r(true))),
        new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref()),
      ]);
    }
    this.server.closeAllConnections();
    await closed;
    return { drained };
  }
}

/**
 * The request target as a URL. An origin-form path is taken as sent: `//x/v0/...` stays a
 * path (a base URL would read `x` as a host), and `.`/`..` segments (also as `%2e`) are refused
 * rather than resolved, so the route answered is the path a proxy in front of Roost saw
 * (`/v0/pipes/%2e%2e/tokens` must not become `/v0/tokens`).
 */
function parseTarget(raw: string): URL | RoostError {
  const path = raw.split('?', 1)[0]!;
  if (path.split(/[/\\]/).some((seg) => /^(?:\.|%2e){1,2}$/i.test(seg))) {
    return new RoostError('BAD_REQUEST', `the path ${JSON.stringify(path)} has "." or ".." segments; send the path without them`);
  }
  try {
    return raw.startsWith('/') ? new URL(`http://localhost${raw}`) : new URL(raw, 'http://localhost');
  } catch {
    return new RoostError('BAD_REQUEST', `the request target ${JSON.stringify(raw.slice(0, 200))} is not a valid path`);
  }
}

/** How long a connection refused mid-body is read on after its answer: since its last byte, in all. */
export const LINGER_IDLE_MS = 2_000;
export const LINGER_MAX_MS = 10_000;

/**
 * A lingering close, as web servers do it. A request refused before its body was read to the
 * end (413, a storage limit, 408) is answered and its connection closed; but a client still
 * sending that body, closed on with unread bytes, gets a reset, and a reset makes its system
 * drop the answer it had not read yet: an upload refused part way failed with EPIPE and no
 * word of why (CI met it with fetch under load). So once the answer is written the connection
 * is half-closed (FIN after the answer) and what the client still sends is read and dropped,
 * until it stops sending (its FIN, or nothing for LINGER_IDLE_MS) or LINGER_MAX_MS pass; then
 * the socket is closed. Node closes at once (`destroySoon` once the answer is flushed): this
 * takes its place for this socket only. Listening for 'data' makes node's parser let go of the
 * socket, so the bytes that follow are dropped here and never parsed as a request.
 */
function lingerAfterAnswer(socket: net.Socket): void {
  const s = socket as net.Socket & { destroySoon(): void };
  if (Object.prototype.hasOwnProperty.call(s, 'destroySoon')) return;
  s.destroySoon = function lingeringClose(this: net.Socket) {
    if (this.destroyed) return;
    const close = () => this.destroy();
    let idle = setTimeout(close, LINGER_IDLE_MS);
    const max = setTimeout(close, LINGER_MAX_MS);
    idle.unref();
    max.unref();
    this.removeAllListeners('data');
    this.on('data', () => { clearTimeout(idle); idle = setTimeout(close, LINGER_IDLE_MS); idle.unref(); });
    this.once('end', close);
    this.once('close', () => { clearTimeout(idle); clearTimeout(max); });
    this.end();
    // Node's parser read this socket's handle itself and stopped it for backpressure (the
    // stream above never knew): start it again as node's own resume does.
    this.resume();
    const handle = (this as unknown as { _handle?: { reading?: boolean; readStart?(): number } })._handle;
    if (handle?.readStart && !handle.reading) {
      handle.reading = true;
      handle.readStart();
    }
  };
}

/** Whether the request carries a body (RFC 9112 6.3: Transfer-Encoding, or a Content-Length above 0). */
function hasBody(req: http.IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) !== 0;
}

/** The errno of a write refused for space (the error or one of its causes), if it is one. */
function diskFull(e: unknown): string | undefined {
  return errorCodes(e).find((c) => c.code === 'ENOSPC' || c.code === 'EDQUOT' || c.code === 'EFBIG')?.code;
}

/** The errno of a file operation the disk refused for another reason than space (read-only, permissions). */
function diskRefused(e: unknown): string | undefined {
  for (const { code, syscall } of errorCodes(e)) {
    if ((code === 'EROFS' || code === 'EACCES' || code === 'EPERM') && syscall !== undefined) return code;
    // Node 20's recursive mkdir says ENOENT where the disk is read-only.
    if (code === 'ENOENT' && syscall === 'mkdir') return 'EROFS or ENOENT';
  }
  return undefined;
}

/** A route's methods as `Allow` lists them: HEAD wherever GET is, and OPTIONS. */
function allowedMethods(methods: string[]): string[] {
  // Each once: a path two routes match (`/v0/pipes/openapi.json`, `/v0/pipes/:pipe`) listed GET twice.
  const out = [...new Set(methods)];
  if (out.includes('GET') && !out.includes('HEAD')) out.push('HEAD');
  out.push('OPTIONS');
  return out;
}
