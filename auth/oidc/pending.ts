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
import { RoostError } from '../../src/errors.js';

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
const MAX_PENDING = 10_000;

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
      const all = s.get<Record<string, Stored>>('oidcPending') ?? {};
      const now = Date.now();
      const ops: Op[] = [];
      let live = 0;
      for (const [k, v] of Object.entries(all)) {
        if (v.expiresAt < now) { if (ops.length < 500) ops.push({ op: 'del', path: ['oidcPending', k] }); }
        else live++;
      }
      if (live >= MAX_PENDING) throw new RoostError('RATE_LIMITED', 'too many logins in progress; retry in a minute', { headers: { 'Retry-After': '60' }, retryable: true });
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
