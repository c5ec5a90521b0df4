/**
 * Logins in progress are written by unauthenticated requests (`GET /auth/login`,
 * `GET /auth/saml/<tenant>/<connection>/login`), so anyone can start as many as they like. What
 * bounds them (docs/decisions.md, "Logins in progress are bounded"):
 * - each client address (an IPv4 address; an IPv6 /48, which one subscriber or site often holds whole)
 *   starts at most `ROOST_LOGIN_RATE` logins a second, in bursts of ten seconds' worth; beyond
 *   that `429 RATE_LIMITED` (audited as `auth.rate_limited`). This bounds the writes one client
 *   makes (each start is a journal write and an fsync, in the one queue every state change takes);
 * - at most `ROOST_LOGINS_PENDING` logins in progress are kept (OIDC and SAML each); one more
 *   gives up the oldest login of the client holding the most in the tenant holding the most
 *   (oidc/pending.ts, `makeRoom`), so a flood replaces its own logins, not other people's;
 * - each expires after 10 minutes: refused at the callback from then on, and deleted by a sweep
 *   every minute (besides at each new login).
 *
 * Failed returns from the IdP (SAML ACS posts, OIDC callbacks) are unauthenticated too, and each
 * one is an audit record: `limitLoginFailure` gives each client address the same rate of failures
 * (another bucket: a person's failures take nothing from their login starts), beyond which the
 * failure is answered `429 RATE_LIMITED` instead, without a record of its own. A success is never
 * refused: the limit counts failures only, after the check, per address (an attacker's failures
 * from another address are no one else's). Each address's refusals (of starts and of failures)
 * are recorded once per ten seconds as `auth.rate_limited` (counted each in /metrics), so what a
 * flood writes to the audit log stays bounded: the burst, the rate, and one record in ten seconds.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import type { App } from '../src/app.js';
import type { Ctx } from '../src/http/context.js';
import { clientIp, unmappedAddress } from '../src/http/client-ip.js';
import { RoostError } from '../src/errors.js';
import type { Op } from '../src/state/store.js';
import { rateHeaders } from './rate-limit.js';
import { auditAuth, runtimeOf } from './runtime.js';
import { markAudited } from './authorize.js';

/** The state roots of logins in progress (OIDC, SAML). */
export const PENDING_ROOTS = ['oidcPending', 'samlPending'] as const;
/** A burst is this many seconds of the rate. */
const BURST_SECONDS = 10;
const SWEEP_EVERY_MS = 60_000;

/**
 * Who started a login, for the rate limit and the eviction order: an IPv4 address (also when
 * mapped into IPv6), else the /48 of an IPv6 address. One subscriber or site holds at least a
 * /64 and often a /48 (tunnel brokers hand out /48s for free): keyed by /64, one /48 was 65,536
 * clients, each with its own bucket and each outranking a person in the eviction order.
 */
export function loginClient(remote: string | undefined): string {
  const ip = unmappedAddress((remote ?? '').replace(/%.*$/, ''));
  if (net.isIPv4(ip)) return ip;
  if (!net.isIPv6(ip)) return ip || 'unknown';
  // A trailing dotted quad is the last two groups.
  const hex = ip.toLowerCase().replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) => `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`);
  const [head = '', tail = ''] = hex.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = hex.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 3).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/48`;
}

/** What a login in progress records of its client: a hash of its address (the state keeps no address). */
export function clientTag(ctx: Ctx): string {
  return crypto.createHash('sha256').update(loginClient(clientIp(ctx))).digest('base64url').slice(0, 22);
}

/**
 * Takes one login start from the client's bucket; refuses with `429 RATE_LIMITED` (and an
 * `auth.rate_limited` audit record, one per client and ten seconds) when it is empty. Asked only
 * where a login in progress is about to be written.
 */
export function limitLoginStart(app: App, ctx: Ctx, tenant: string, connection: string): void {
  const rate = app.config.loginRate;
  if (rate <= 0) return;
  const client = loginClient(clientIp(ctx));
  const d = runtimeOf(app).limiter.take(`login:${client}`, rate, rate * BURST_SECONDS);
  if (!d.retryAfter) return;
  const err = new RoostError('RATE_LIMITED', `too many logins started from this address (at most ${rate} a second, bursts of ${rate * BURST_SECONDS}); retry after ${d.retryAfter} s`, { headers: rateHeaders(d), retryable: true });
  recordLoginRefusal(app, ctx, client, 'login_rate', err, { reason: `over ${rate} login starts per second from ${client}`, tenant, connection });
  throw err;
}

/**
 * A failed return from the IdP (SAML ACS post, OIDC callback): takes one failure from the
 * client's bucket of failures (`ROOST_LOGIN_RATE` a second, bursts of ten seconds' worth). Answers
 * undefined when the failure may be answered and recorded as it is, else the `429 RATE_LIMITED`
 * to answer instead (recorded once per client and ten seconds as `auth.rate_limited`; the failure
 * itself is not). Asked after the check, for failures only: a login that succeeds is never refused.
 */
export function limitLoginFailure(app: App, ctx: Ctx, tenant: string | undefined, connection: string | undefined): RoostError | undefined {
  const rate = app.config.loginRate;
  if (rate <= 0) return undefined;
  const client = loginClient(clientIp(ctx));
  const d = runtimeOf(app).limiter.take(`login-failure:${client}`, rate, rate * BURST_SECONDS);
  if (!d.retryAfter) return undefined;
  const err = new RoostError('RATE_LIMITED', `too many failed logins from this address (at most ${rate} a second, bursts of ${rate * BURST_SECONDS}); retry after ${d.retryAfter} s`, { headers: rateHeaders(d), retryable: true });
  recordLoginRefusal(app, ctx, client, 'login_failure_rate', err, { reason: `over ${rate} failed logins per second from ${client}`, tenant, connection });
  return err;
}

/**
 * Records a login rate refusal: the first of the client's in ten seconds is an `auth.rate_limited`
 * audit record (saying that the next ones of those ten seconds are not), the others are only
 * counted in `roost_auth_events_total`. Marks the error audited either way.
 */
function recordLoginRefusal(app: App, ctx: Ctx, client: string, limit: string, err: RoostError, e: { reason: string; tenant?: string; connection?: string }): void {
  const rt = runtimeOf(app);
  if (rt.limiter.take(`login-refusal-record:${limit}:${client}`, 1 / BURST_SECONDS, 1).retryAfter) {
    rt.events.inc({ event: 'auth.rate_limited', outcome: 'denied' });
  } else {
    auditAuth(app, {
      event: 'auth.rate_limited', outcome: 'denied', reason: e.reason, tenant: e.tenant, connection: e.connection,
      requestId: ctx.id, resource: ctx.route, ip: clientIp(ctx),
      details: { code: err.code, limit, client, not_recorded_for_s: BURST_SECONDS },
    });
  }
  markAudited(err);
}

/** At most this many characters of a connection name that does not exist go into a record. */
const UNKNOWN_NAME_CHARS = 64;

/**
 * The connection as an unauthenticated request's audit record names it: its id when the tenant
 * has it, else the name asked for (the request's own path), marked and cut to 64 characters
 * (`(unknown) <name>…[truncated, N chars]`): a post to a 12,000-character connection recorded
 * 12,000 characters.
 */
export function recordedConnection(app: App, tenant: string | undefined, connection: string | undefined): string | undefined {
  if (connection === undefined) return undefined;
  if (tenant !== undefined && app.state.get('tenants', tenant) && app.state.get('connections', tenant, connection)) return connection;
  return `(unknown) ${boundedName(connection)}`;
}

/** A name from a request, cut to 64 characters (on a code point boundary) with how long it was. */
export function boundedName(name: string): string {
  const chars = Array.from(name);
  return chars.length <= UNKNOWN_NAME_CHARS ? name : `${chars.slice(0, UNKNOWN_NAME_CHARS).join('')}…[truncated, ${chars.length} chars]`;
}

/** Deletes every expired login in progress (one state change, none when nothing expired). */
export async function sweepExpiredLogins(app: App, now = Date.now()): Promise<number> {
  return app.state.transact((s) => {
    const ops: Op[] = [];
    for (const root of PENDING_ROOTS) {
      for (const [k, v] of Object.entries(s.get<Record<string, { expiresAt: number }>>(root) ?? {})) if (v.expiresAt < now) ops.push({ op: 'del', path: [root, k] });
    }
    return { ops, result: ops.length };
  });
}

/** Sweeps expired logins in progress every minute (the timer does not keep the process alive). */
export function startLoginSweeper(app: App): void {
  const t = setInterval(() => {
    sweepExpiredLogins(app).catch((e) => app.log.warn('sweep of expired logins in progress failed; retried in a minute', { err: e }));
  }, SWEEP_EVERY_MS);
  t.unref();
}
