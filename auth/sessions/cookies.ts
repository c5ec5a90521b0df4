/**
 * Session and CSRF cookies. The session cookie is `HttpOnly; SameSite=Lax;
 * Path=/`, `Secure` unless Roost serves plain HTTP on loopback. The CSRF token
 * (a random value inside the signed session) is also set in a readable
 * cookie; cookie-authenticated changes must echo it in `X-CSRF-Token`.
 */
import crypto from 'node:crypto';
import type { Ctx } from '../../src/http/context.js';

export const SESSION_COOKIE = 'roost_session';
export const CSRF_COOKIE = 'roost_csrf';
export const CSRF_HEADER = 'x-csrf-token';
/**
 * Ties a login to the browser that started it: a random key set when the login
 * starts (kept for more logins from the same browser), its hash stored with the
 * pending login and checked on the callback, so nobody can finish their own login
 * in someone else's browser (login CSRF).
 */
export const LOGIN_COOKIE = 'roost_login';

/**
 * A cookie's name as set and read: `__Host-<name>` when it is `Secure` (Roost served over HTTPS).
 * Browsers take such a cookie only with `Secure`, `Path=/` and no `Domain`, so a sibling subdomain
 * (`evil.example.com` beside `roost.example.com`) can neither set nor shadow it: a planted
 * `roost_session` or `roost_login` swapped a person's session or fixed their login key (the
 * first cookie of a name was read). Plain HTTP on loopback keeps the bare names.
 */
export function cookieName(base: string, secure: boolean): string {
  return secure ? `__Host-${base}` : base;
}

/** The browser's login key, a fresh one when it has none (or a malformed one). */
export function loginKey(ctx: Ctx, secure: boolean): { key: string; fresh: boolean } {
  const k = readCookie(ctx, cookieName(LOGIN_COOKIE, secure));
  if (k && /^[A-Za-z0-9_-]{43}$/.test(k)) return { key: k, fresh: false };
  return { key: crypto.randomBytes(32).toString('base64url'), fresh: true };
}

export function loginKeyHash(key: string): string {
  return crypto.createHash('sha256').update(key).digest('base64url');
}

export function loginCookie(key: string, maxAgeS: number, secure: boolean): string {
  return cookie(LOGIN_COOKIE, key, { maxAge: maxAgeS, httpOnly: true, secure, path: '/auth' });
}

export function readCookie(ctx: Ctx, name: string): string | undefined {
  const raw = ctx.req.headers.cookie;
  if (!raw) return undefined;
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    // Only spaces and tabs around a name (RFC 6265): trim() also took U+00A0, so `\xA0__Host-x`,
    // which is no __Host- cookie to a browser (anyone may set it), read as `__Host-x`.
    if (part.slice(0, eq).replace(/^[ \t]+|[ \t]+$/g, '') === name) {
      const v = part.slice(eq + 1).replace(/^[ \t]+|[ \t]+$/g, '');
      try { return decodeURIComponent(v) || undefined; } catch { return undefined; }
    }
  }
  return undefined;
}

function cookie(name: string, value: string, opts: { maxAge: number; httpOnly: boolean; secure: boolean; path?: string }): string {
  // (`__Host-` needs Path=/: the login cookie's /auth is given up for it.)
  const path = opts.secure ? '/' : opts.path ?? '/';
  return [`${cookieName(name, opts.secure)}=${encodeURIComponent(value)}`, `Path=${path}`, `Max-Age=${opts.maxAge}`, 'SameSite=Lax', opts.httpOnly ? 'HttpOnly' : '', opts.secure ? 'Secure' : ''].filter(Boolean).join('; ');
}

export function sessionCookies(jwt: string, csrf: string, maxAge: number, secure: boolean): string[] {
  return [
    cookie(SESSION_COOKIE, jwt, { maxAge, httpOnly: true, secure }),
    cookie(CSRF_COOKIE, csrf, { maxAge, httpOnly: false, secure }),
  ];
}

export function clearedCookies(secure: boolean): string[] {
  return [cookie(SESSION_COOKIE, '', { maxAge: 0, httpOnly: true, secure }), cookie(CSRF_COOKIE, '', { maxAge: 0, httpOnly: false, secure })];
}

/** Is the `X-CSRF-Token` header (or `given`, e.g. a form field) the session's CSRF token? */
export function csrfMatches(ctx: Ctx, expected: string, given?: string): boolean {
  const h = ctx.req.headers[CSRF_HEADER];
  const got = given ?? (typeof h === 'string' ? h : undefined);
  if (!got || !expected) return false;
  const a = crypto.createHash('sha256').update(got).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}
