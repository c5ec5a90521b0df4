/**
 * A small router: routes are `METHOD /literal/:param/...` patterns, matched
 * segment by segment. A path that matches with another method answers 405.
 */
import type { Ctx } from './context.js';

export type Handler = (ctx: Ctx) => Promise<void> | void;

interface Route {
  method: string;
  pattern: string;
  segments: string[];
  handler: Handler;
}

export interface Match {
  route: string;
  handler: Handler;
  params: Record<string, string>;
}

export class Router {
  #routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): this {
    this.#routes.push({ method, pattern, segments: split(pattern), handler });
    return this;
  }
  get(p: string, h: Handler) { return this.add('GET', p, h); }
  post(p: string, h: Handler) { return this.add('POST', p, h); }
  put(p: string, h: Handler) { return this.add('PUT', p, h); }
  patch(p: string, h: Handler) { return this.add('PATCH', p, h); }
  delete(p: string, h: Handler) { return this.add('DELETE', p, h); }

  /** Finds the route; `allowed` lists methods when only the method is wrong. */
  match(method: string, pathname: string): Match | { allowed: string[] } | undefined {
    const segs = split(pathname);
    const allowed: string[] = [];
    for (const r of this.#routes) {
      const params = matchSegments(r.segments, segs);
      if (!params) continue;
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { route: r.pattern, handler: r.handler, params };
      allowed.push(r.method);
    }
    return allowed.length ? { allowed } : undefined;
  }
}

function split(p: string): string[] {
  // A trailing slash is ignored: Tinybird's clients send some paths with one.
  return p.split('/').filter((s, i, a) => s !== '' || (i > 0 && i < a.length - 1));
}

function matchSegments(pattern: string[], segs: string[]): Record<string, string> | undefined {
  if (pattern.length !== segs.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const s = segs[i]!;
    if (p.startsWith(':')) {
      let v: string;
      try { v = decodeURIComponent(s); } catch { return undefined; }
      if (v === '') return undefined;
      params[p.slice(1)] = v;
    } else if (p !== s) {
      return undefined;
    }
  }
  return params;
}
