/**
 * Two stores in the control-plane state, so they survive restarts and can
 * move to Redis with the rest of the state:
 * - SAML logins in progress (`samlPending/<hash of RelayState>`): the
 *   AuthnRequest id Roost issued, for which tenant and connection, the
 *   `return_to` and the hash of the starting browser's login cookie; single-use, expiring;
 * - accepted assertion ids (`samlReplay/<hash of tenant, connection, id>`, with the
 *   tenant named so they go with its state slice),
 *   each kept until the assertion could no longer be accepted anyway.
 */
import crypto from 'node:crypto';
import type { App } from '../../src/app.js';
import type { Op } from '../../src/state/store.js';
import { RoostError } from '../../src/errors.js';
import { makeRoom, type PendingCount } from '../oidc/pending.js';

export interface PendingSamlLogin {
  tenant: string;
  connection: string;
  /** The AuthnRequest `ID`: the only `InResponseTo` accepted for this login. */
  requestId: string;
  returnTo: string;
  createdAt: number;
  expiresAt: number;
  /**
   * SHA-256 (base64url) of the SAML login cookie of the browser that started the login: the
   * ACS accepts the response only from that browser (no login CSRF). Entries without it
   * (written before it was) are refused.
   */
  browser?: string;
  /** Who started it (`clientTag`): the eviction order of a full store. */
  client?: string;
}

export const SAML_PENDING_TTL_MS = 10 * 60_000;
const MAX_REPLAY = 200_000;
const PRUNE_PER_WRITE = 500;

function hash(...parts: string[]): string {
  return crypto.createHash('sha256').update(parts.join('\n')).digest('base64url');
}

/** Deletes of expired entries under `root` (bounded), and how many are still live. */
function prune(all: Record<string, { expiresAt: number }>, root: string, now: number): { ops: Op[]; live: number } {
  const ops: Op[] = [];
  let live = 0;
  for (const [k, v] of Object.entries(all)) {
    if (v.expiresAt < now) { if (ops.length < PRUNE_PER_WRITE) ops.push({ op: 'del', path: [root, k] }); }
    else live++;
  }
  return { ops, live };
}

export class SamlStateStore {
  #app: App;
  #loginCount: PendingCount = { upper: Infinity };
  constructor(app: App) { this.#app = app; }

  putLogin(relayState: string, p: PendingSamlLogin): Promise<void> {
    return this.#app.state.transact((s) => {
      // Bounded as OIDC logins in progress are (a full store gives up the oldest of the heaviest client).
      const ops = makeRoom(s.get('samlPending') ?? {}, 'samlPending', this.#app.config.loginsPending, Date.now(), this.#loginCount);
      ops.push({ op: 'put', path: ['samlPending', hash(relayState)], value: p });
      return { ops, result: undefined };
    }).catch((e: unknown) => { this.#loginCount.upper = Infinity; throw e; });
  }

  /** Returns and deletes the entry in one step; undefined when unknown, used or expired. */
  takeLogin(relayState: string): Promise<PendingSamlLogin | undefined> {
    const k = hash(relayState);
    return this.#app.state.transact((s) => {
      const v = s.get<PendingSamlLogin>('samlPending', k);
      if (!v) return { ops: [], result: undefined };
      return { ops: [{ op: 'del', path: ['samlPending', k] }], result: v.expiresAt < Date.now() ? undefined : { ...v } };
    });
  }

  /**
   * Records an assertion id as used until `expiresAt`; false when it was
   * already used (a replay). Check and record are one transaction.
   */
  useAssertion(tenant: string, connection: string, assertionId: string, expiresAt: number): Promise<boolean> {
    const k = hash(tenant, connection, assertionId);
    return this.#app.state.transact((s) => {
      const now = Date.now();
      const seen = s.get<{ expiresAt: number }>('samlReplay', k);
      if (seen && seen.expiresAt >= now) return { ops: [], result: false };
      const { ops, live } = prune(s.get('samlReplay') ?? {}, 'samlReplay', now);
      if (live >= MAX_REPLAY) throw new RoostError('RATE_LIMITED', 'too many SAML logins in the replay window; retry in a minute', { headers: { 'Retry-After': '60' }, retryable: true });
      ops.push({ op: 'put', path: ['samlReplay', k], value: { tenant, expiresAt } });
      return { ops, result: true };
    });
  }
}
