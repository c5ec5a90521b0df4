/**
 * Logins in progress: `state` → (tenant, connection, expected issuer, PKCE
 * verifier, nonce, return_to), single-use, expiring. Behind an interface so
 * it can move to Redis (`SET ... PX`, `GETDEL`) when several servers share
 * the traffic; this one lives in the control-plane state (`oidcPending/<hash>`)
 * so a restart does not break logins in flight. The verifier is sealed. How many
 * there may be, and who gives one up when the store is full: auth/login-limits.ts.
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
  /** Who started it (`clientTag`): the eviction order of a full store. */
  client?: string;
}

export interface LoginStore {
  put(state: string, p: PendingLogin): Promise<void>;
  /** Returns and deletes the entry in one step; undefined when unknown, used or expired. */
  take(state: string): Promise<PendingLogin | undefined>;
}

export const PENDING_TTL_MS = 10 * 60_000;
/** Expired entries deleted by one new login at most (the sweep of auth/login-limits.ts takes the rest). */
const PRUNE_PER_WRITE = 500;
/** Entries given up by one new login at most (more only after the limit was lowered). */
const EVICT_PER_WRITE = 500;

/** What `makeRoom` reads of a login in progress (OIDC or SAML). */
export interface PendingEntry {
  tenant: string;
  expiresAt: number;
  /** `clientTag` of the address that started it (auth/login-limits.ts); absent in entries written before it was. */
  client?: string;
}

/** One client's live logins in a tenant: `list[next]` is the oldest once sorted, `list[min]` before. */
interface ClientGroup { list: Array<{ k: string; at: number }>; sorted: boolean; next: number; min: number }
interface TenantGroup { n: number; clients: Map<string, ClientGroup> }

const oldestAt = (g: ClientGroup): number => g.list[g.sorted ? g.next : g.min]!.at;
const held = (g: ClientGroup): number => g.list.length - g.next;

/**
 * What a store knows of its size without counting: at most `upper` entries (one more per login
 * written; logins taken, swept or deleted with their tenant only lower the real count; a failed
 * write sets it back to unknown). Counting the keys of the state's object of 10 000 entries
 * takes ~1.5 ms, which every login started paid.
 */
export interface PendingCount { upper: number }

/**
 * The ops that make room for one more login in progress under `root`, keeping at most `max`:
 * while the store is not full, none (the expired ones go with the sweep of
 * auth/login-limits.ts; with `count` below `max` nothing is even counted); once it is, deletes of expired
 * entries (bounded) and of live ones, down to 1 % under `max` so that the next logins find room
 * without a scan. Anyone can start logins, so a full store must neither refuse everybody (it
 * answered 429 to all logins after 10 000 requests, about 50 s of one client) nor let a flood
 * push out other people's logins (a tenant's share of 2 000 with its oldest given up did: one
 * client's 2 000 requests, ~4 s, failed every login of that tenant then at its IdP). The login
 * given up is the oldest of the client holding the most in the tenant holding the most: a flood
 * gives up its own logins, first in its own tenant; people starting one login each keep theirs
 * until about as many clients as the store holds flood the same tenant. OIDC and SAML logins in
 * progress both use it.
 */
export function makeRoom(all: Record<string, PendingEntry>, root: string, max: number, now: number, count: PendingCount = { upper: Infinity }): Op[] {
  const ops: Op[] = [];
  if (count.upper < max) { count.upper++; return ops; }
  const keys = Object.keys(all).length;
  if (keys < max) { count.upper = keys + 1; return ops; }
  const tenants = new Map<string, TenantGroup>();
  let total = 0;
  for (const [k, v] of Object.entries(all)) {
    if (v.expiresAt < now) { if (ops.length < PRUNE_PER_WRITE) ops.push({ op: 'del', path: [root, k] }); continue; }
    total++;
    let t = tenants.get(v.tenant);
    if (!t) { t = { n: 0, clients: new Map() }; tenants.set(v.tenant, t); }
    t.n++;
    const c = v.client ?? '';
    let g = t.clients.get(c);
    if (!g) { g = { list: [], sorted: false, next: 0, min: 0 }; t.clients.set(c, g); }
    if (g.list.length && v.expiresAt < g.list[g.min]!.at) g.min = g.list.length;
    g.list.push({ k, at: v.expiresAt });
  }
  const tenantOldest = (t: TenantGroup): number => {
    let at = Infinity;
    for (const g of t.clients.values()) at = Math.min(at, oldestAt(g));
    return at;
  };
  const slack = Math.ceil(max / 100);
  for (let evict = Math.min(total - max + slack, EVICT_PER_WRITE); evict > 0; evict--) {
    // The tenant holding the most, then its client holding the most (between equals, the one
    // whose oldest is oldest), then that client's oldest.
    let top: TenantGroup | undefined;
    for (const t of tenants.values()) if (t.n > 0 && (!top || t.n > top.n || (t.n === top.n && tenantOldest(t) < tenantOldest(top)))) top = t;
    if (!top) break;
    let heavy: [string, ClientGroup] | undefined;
    for (const e of top.clients) {
      const g = e[1];
      if (!heavy || held(g) > held(heavy[1]) || (held(g) === held(heavy[1]) && oldestAt(g) < oldestAt(heavy[1]))) heavy = e;
    }
    const [client, group] = heavy!;
    if (!group.sorted) { group.list.sort((x, y) => x.at - y.at); group.sorted = true; }
    ops.push({ op: 'del', path: [root, group.list[group.next++]!.k] });
    if (held(group) === 0) top.clients.delete(client);
    top.n--;
  }
  count.upper = keys - ops.length + 1;
  return ops;
}

interface Stored extends Omit<PendingLogin, 'codeVerifier'> { verifierSealed: string }

function key(state: string): string {
  return crypto.createHash('sha256').update(state).digest('base64url');
}

export class StateLoginStore implements LoginStore {
  #app: App;
  #count: PendingCount = { upper: Infinity };
  constructor(app: App) { this.#app = app; }

  put(state: string, p: PendingLogin): Promise<void> {
    const { codeVerifier, ...rest } = p;
    const value: Stored = { ...rest, verifierSealed: this.#app.secrets.seal(codeVerifier) };
    return this.#app.state.transact((s) => {
      const ops = makeRoom(s.get<Record<string, Stored>>('oidcPending') ?? {}, 'oidcPending', this.#app.config.loginsPending, Date.now(), this.#count);
      ops.push({ op: 'put', path: ['oidcPending', key(state)], value });
      return { ops, result: undefined };
    }).catch((e: unknown) => { this.#count.upper = Infinity; throw e; });
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
