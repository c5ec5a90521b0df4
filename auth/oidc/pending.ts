/**
 * Logins in progress: `state` → (tenant, connection, expected issuer, PKCE
 * verifier, nonce, return_to), single-use, expiring. Behind an interface so
 * it can move to Redis (`SET ... PX`, `GETDEL`) when several servers share
 * the traffic; this one lives in the control-plane state (`oidcPending/<hash>`)
 * so a restart does not break logins in flight. The verifier is sealed.
 */
import crypto from 'node:crypto';
import type { App } from '../../src/app.js';
import type { Op } from '../../src/state/store.js';

export interface PendingLogin {
  tenant: string;
  connection: string;
  issuer: string;
  codeVerifier: string;
  nonce: string;
  returnTo: string;
  expiresAt: number;
  /** SHA-256 (base64url) of the login cookie of the browser that started the login. */
  browser?: string;
}

export interface LoginStore {
  put(state: string, p: PendingLogin): Promise<void>;
  /** Returns and deletes the entry in one step; undefined when unknown, used or expired. */
  take(state: string): Promise<PendingLogin | undefined>;
}

export const PENDING_TTL_MS = 10 * 60_000;
export const MAX_PENDING = 10_000;
/** One tenant's share of logins in progress: more replace its oldest ones. */
export const MAX_PENDING_PER_TENANT = 2_000;

/**
 * The ops that make room for one more login in progress of `tenant` under `root`: deletes of
 * expired entries (bounded), and of one live entry when needed. Anyone can start logins, so a
 * full store must not lock every tenant out (it answered 429 to all logins for 10 minutes after
 * 10 000 requests, about 50 s of one client): a tenant at its share gives up its own oldest
 * login in progress, and a full store takes one from the tenant holding the most. A flood of
 * one tenant's logins stays its own. OIDC and SAML logins in progress both use it.
 */
export function makeRoom(all: Record<string, { tenant: string; expiresAt: number }>, root: string, tenant: string, now: number): Op[] {
  const ops: Op[] = [];
  const live = new Map<string, { n: number; oldest: string; oldestAt: number }>();
  let total = 0;
  for (const [k, v] of Object.entries(all)) {
    if (v.expiresAt < now) { if (ops.length < 500) ops.push({ op: 'del', path: [root, k] }); continue; }
    total++;
    const t = live.get(v.tenant);
    if (!t) live.set(v.tenant, { n: 1, oldest: k, oldestAt: v.expiresAt });
    else { t.n++; if (v.expiresAt < t.oldestAt) { t.oldest = k; t.oldestAt = v.expiresAt; } }
  }
  const mine = live.get(tenant);
  let evict: string | undefined;
  if (mine && mine.n >= MAX_PENDING_PER_TENANT) evict = mine.oldest;
  else if (total >= MAX_PENDING) {
    let top: { n: number; oldest: string } | undefined;
    for (const t of live.values()) if (!top || t.n > top.n) top = t;
    evict = top?.oldest;
  }
  if (evict) ops.push({ op: 'del', path: [root, evict] });
  return ops;
}

interface Stored extends Omit<PendingLogin, 'codeVerifier'> { verifierSealed: string }

function key(state: string): string {
  return crypto.createHash('sha256').update(state).digest('base64url');
}

export class StateLoginStore implements LoginStore {
  #app: App;
  constructor(app: App) { this.#app = app; }

  put(state: string, p: PendingLogin): Promise<void> {
    const { codeVerifier, ...rest } = p;
    const value: Stored = { ...rest, verifierSealed: this.#app.secrets.seal(codeVerifier) };
    return this.#app.state.transact((s) => {
      const ops = makeRoom(s.get<Record<string, Stored>>('oidcPending') ?? {}, 'oidcPending', p.tenant, Date.now());
      ops.push({ op: 'put', path: ['oidcPending', key(state)], value });
      return { ops, result: undefined };
    });
  }

  take(state: string): Promise<PendingLogin | undefined> {
    const k = key(state);
    return this.#app.state.transact((s) => {
      const v = s.get<Stored>('oidcPending', k);
      if (!v) return { ops: [], result: undefined };
      const ops: Op[] = [{ op: 'del', path: ['oidcPending', k] }];
      if (v.expiresAt < Date.now()) return { ops, result: undefined };
      const { verifierSealed, ...rest } = v;
      return { ops, result: { ...rest, codeVerifier: this.#app.secrets.open(verifierSealed) } };
    });
  }
}
