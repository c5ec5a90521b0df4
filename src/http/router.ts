/**
 * A small router: routes are `METHOD /literal/:param/...` patterns, matched
 * segment by segment. A path that matches with another method answers 405.
 */
import type { Ctx } from './context.js';
import { RoostError } from '../errors.js';

export type Handler = (ctx: Ctx) => Promise<void> | void;

interface Route {
  method: string;
  pattern: string;
  /** Per segment: the literal, or undefined where the pattern has a parameter. */
  literals: (string | undefined)[];
  /** Per segment: the parameter's name, or undefined where the pattern has a literal. */
  names: (string | undefined)[];
  handler: Handler;
  opts: RouteOptions;
}

export interface RouteOptions {
  /**
   * The handler is given a query string that is not UTF-8 (as `ctx.queryError`, the 400 to throw
   * where it reads its parameters) instead of the server answering it before routing: routes that
   * log every call (endpoints, /v0/sql) log that refusal too.
   */
  takesQueryErrors?: boolean;
  /** A DELETE that honours `dry_run` (others refuse it: a tenant, workspace, pipe or token was deleted by a request asking for a dry run). */
  takesDryRun?: boolean;
}

export interface Match {
  route: string;
  handler: Handler;
  params: Record<string, string>;
  opts: RouteOptions;
}

export class Router {
  /** Routes by segment count (only those can match a path), each list in the order added. */
  #bySize = new Map<number, Route[]>();

  add(method: string, pattern: string, handler: Handler, opts: RouteOptions = {}): this {
    const segments = split(pattern);
    const literals = segments.map((s) => (s.startsWith(':') ? undefined : s));
    const names = segments.map((s) => (s.startsWith(':') ? s.slice(1) : undefined));
    let list = this.#bySize.get(segments.length);
    if (!list) this.#bySize.set(segments.length, (list = []));
    list.push({ method, pattern, literals, names, handler, opts });
    return this;
  }
  get(p: string, h: Handler, o?: RouteOptions) { return this.add('GET', p, h, o); }
  post(p: string, h: Handler, o?: RouteOptions) { return this.add('POST', p, h, o); }
  put(p: string, h: Handler) { return this.add('PUT', p, h); }
  patch(p: string, h: Handler) { return this.add('PATCH', p, h); }
  delete(p: string, h: Handler, o: RouteOptions = {}) {
    const handler: Handler = o.takesDryRun ? h : (ctx) => {
      if (ctx.query.has('dry_run')) throw new RoostError('INVALID_PARAMETER', `dry_run is not taken by DELETE ${p}: nothing was deleted (send the request without it to delete)`, { details: { parameter: 'dry_run' } });
      return h(ctx);
    };
    return this.add('DELETE', p, handler, o);
  }

  /** Finds the route; `allowed` lists methods when only the method is wrong. */
  match(method: string, pathname: string): Match | { allowed: string[] } | undefined {
    const segs = split(pathname);
    const routes = this.#bySize.get(segs.length);
    if (!routes) return undefined;
    let allowed: string[] | undefined;
    for (const r of routes) {
      const params = matchSegments(r, segs);
      if (!params) continue;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { route: r.pattern, handler: r.handler, params, opts: r.opts };
      (allowed ??= []).push(r.method);
    }
    return allowed ? { allowed } : undefined;
  }
}

function split(p: string): string[] {
  // A trailing slash is ignored: Tinybird's clients send some paths with one.
  // (An empty first or last segment is dropped; empty segments in between are kept.)
  const parts = p.split('/');
  const start = parts[0] === '' ? 1 : 0;
  const end = parts.length > 1 && parts[parts.length - 1] === '' ? parts.length - 1 : parts.length;
  return start === 0 && end === parts.length ? parts : parts.slice(start, Math.max(start, end));
}

/**
 * The parameters when `segs` fits the route (the same segment count); literals are compared first.
 * Throws BAD_REQUEST when a parameter segment is not valid percent-encoded UTF-8.
 */
function matchSegments(r: Route, segs: string[]): Record<string, string> | undefined {
  const { literals, names } = r;
  for (let i = 0; i < literals.length; i++) {
    const l = literals[i];
    if (l !== undefined && l !== segs[i]) return undefined;
  }
  const params: Record<string, string> = {};
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (name === undefined) continue;
    let v: string;
    try {
      v = decodeURIComponent(segs[i]!);
    } catch {
      // Literals matched: this is the route, and no other can take a segment with a bad escape.
      throw new RoostError('BAD_REQUEST', `path segment ${JSON.stringify(segs[i])} is not valid percent-encoded UTF-8; write % as %25 and encode the name's UTF-8 bytes (é is %C3%A9)`);
    }
    if (v === '') return undefined;
    params[name] = v;
  }
  return params;
}
