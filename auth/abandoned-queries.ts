/**
 * A budget of abandoned queries per credential. The embedded engine stops a query only between
 * result chunks, so a query its client leaves while it is still computing is stopped by
 * restarting the tenant's cell (src/cells/embedded.ts; ROOST_CELL_CANCEL_GRACE_MS), and the
 * tenant's other requests in flight at that moment fail with 503. A client doing that again and
 * again kept its whole tenant unavailable. Each such restart is charged to the credential whose
 * query it stopped; past `ROOST_ABANDONED_RESTARTS` of them within
 * `ROOST_ABANDONED_RESTARTS_WINDOW_S` seconds, that credential's queries are refused (429
 * `RATE_LIMITED`, with Retry-After) until the oldest of them leaves the window. Other credentials
 * of the tenant are not touched. Kept in this process's memory, as the rate limits are.
 */
import crypto from 'node:crypto';
import type { App } from '../src/app.js';
import type { Ctx } from '../src/http/context.js';
import { clientIp } from '../src/http/client-ip.js';
import { RoostError } from '../src/errors.js';
import { credentialName, ownerKey, type Credential } from './authorize.js';
import { auditAuth } from './runtime.js';

export const DEFAULT_ABANDONED_RESTARTS = 3;
export const DEFAULT_ABANDONED_WINDOW_S = 600;

export class AbandonBudget {
  #restarts = new Map<string, number[]>();
  readonly limit: number;
  readonly windowMs: number;
  #now: () => number;

  /** `limit` restarts per `windowMs`; 0 turns the budget off. */
  constructor(limit: number, windowMs: number, now: () => number = () => Date.now()) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.#now = now;
  }

  /** Whether any restart is on record (else nobody is refused: checked before a key is made). */
  get empty(): boolean {
    return this.#restarts.size === 0;
  }

  /** Seconds until `key` may run queries again; 0 when it may now. */
  blockedFor(key: string): number {
    if (!this.limit) return 0;
    const list = this.#live(key);
    if (list.length < this.limit) return 0;
    // Free again once the oldest of its last `limit` restarts is out of the window.
    return Math.max(1, Math.ceil((list[list.length - this.limit]! + this.windowMs - this.#now()) / 1000));
  }

  /** Charges one restart to `key`; the restarts within the window, this one included. */
  record(key: string): number {
    const list = this.#live(key);
    list.push(this.#now());
    this.#restarts.set(key, list);
    if (this.#restarts.size > 10_000) for (const k of [...this.#restarts.keys()]) if (this.#live(k).length === 0) this.#restarts.delete(k);
    return list.length;
  }

  #live(key: string): number[] {
    const list = this.#restarts.get(key);
    if (!list) return [];
    const since = this.#now() - this.windowMs;
    while (list.length && list[0]! <= since) list.shift();
    if (list.length === 0) this.#restarts.delete(key);
    return list;
  }
}

function envInt(name: string, def: number): number {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? def : Number(raw);
}

const budgets = new WeakMap<App, AbandonBudget>();

export function abandonBudgetOf(app: App): AbandonBudget {
  let b = budgets.get(app);
  if (!b) {
    // Validated at start (src/config.ts).
    b = new AbandonBudget(envInt('ROOST_ABANDONED_RESTARTS', DEFAULT_ABANDONED_RESTARTS), envInt('ROOST_ABANDONED_RESTARTS_WINDOW_S', DEFAULT_ABANDONED_WINDOW_S) * 1000);
    budgets.set(app, b);
  }
  return b;
}

/** The credential a restart is charged to, within its tenant (the operator: once per tenant). */
function budgetKey(cred: Credential, tenant: string): string {
  const who = `${tenant}\0${ownerKey(cred)}`;
  // A JWT is the JWT itself (its scopes with their fixed_params, and its expiry), not its name:
  // JWTs are minted one per end user under one name, and one user's abandoned calls got them all refused.
  if (cred.kind !== 'jwt') return who;
  return `${who}:${cred.jwt.exp}:${crypto.createHash('sha256').update(JSON.stringify(cred.jwt.signed?.scopes ?? cred.jwt.scopes)).digest('base64url').slice(0, 22)}`;
}

export interface AbandonGuard {
  /** Throws 429 (audited) when the credential has used up its restarts. */
  check(): void;
  /** The query was abandoned by its client and its cell restarted to stop it. */
  restarted(): void;
}

/** The guard of one query request of `tenant`, by the request's credential (none: no guard). */
export function abandonGuard(app: App, ctx: Ctx, tenant: string): AbandonGuard | undefined {
  const cred = ctx.auth as Credential | undefined;
  const budget = abandonBudgetOf(app);
  if (!cred || !budget.limit) return undefined;
  // (Made when needed: every endpoint call makes a guard, nearly none uses it.)
  const key = () => budgetKey(cred, tenant);
  const who = () => credentialName(cred);
  const windowS = Math.round(budget.windowMs / 1000);
  return {
    check() {
      if (budget.empty) return;
      const wait = budget.blockedFor(key());
      if (!wait) return;
      const reason = `${budget.limit} queries of this credential were left by their client while still running within ${windowS} s, each stopped by restarting the tenant's engine`;
      auditAuth(app, { event: 'query.abandoned_limit', outcome: 'denied', reason, requestId: ctx.id, resource: ctx.route, tenant, workspace: ctx.workspace?.name, workspaceId: ctx.workspace?.id, credential: who(), ip: clientIp(ctx) });
      throw new RoostError('RATE_LIMITED', `${reason}; its queries are refused for ${wait} s. Keep the connection open until a heavy query answers (or give it a lower time limit) instead of leaving it`, {
        retryable: true, headers: { 'Retry-After': String(wait) },
      });
    },
    restarted() {
      // The server's own deadline cut the request: not the client's doing.
      if (ctx.timedOut) return;
      const n = budget.record(key());
      auditAuth(app, {
        event: 'query.abandoned', outcome: 'failure',
        reason: `the client left a query still running; the tenant's engine was restarted to stop it (${n} of ${budget.limit} within ${windowS} s)`,
        requestId: ctx.id, resource: ctx.route, tenant, workspace: ctx.workspace?.name, workspaceId: ctx.workspace?.id, credential: who(), ip: clientIp(ctx),
      });
    },
  };
}
