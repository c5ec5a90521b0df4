/**
 * Service tokens: 256-bit random secrets, shown once; only their SHA-256 is
 * stored (`tokenHashes/<hash>` → owner, `tokens/<tenant>/<workspace>/<name>` → record).
 * A fast hash is right here: the secrets are random, not passwords.
 */
import crypto from 'node:crypto';
import type { Op } from '../../src/state/store.js';
import type { State } from '../../src/state/state.js';
import { RoostError } from '../../src/errors.js';

export const TOKEN_PREFIX = 'p.rst_';

export interface TokenRecord {
  id: string;
  name: string;
  tenant: string;
  workspace: string;
  scopes: string[];
  hash: string;
  createdAt: string;
  updatedAt?: string;
  description?: string;
  /** Requests per second this token may make (unset: the workspace default, if any). */
  rps?: number;
  /**
   * Who minted it, when a person did (through a session or an IdP access token): the credential
   * name (`session:<connection>:<subject>`) and the address. The token belongs to the workspace
   * and outlives that person's access; this says whom to ask about it.
   */
  createdBy?: { credential: string; email?: string };
  /**
   * The secret sealed with the server key: kept only for the workspace admin
   * token, whose secret is the HS256 key of the workspace's JWT tokens.
   */
  sealed?: string;
}

export const WORKSPACE_ADMIN_TOKEN = 'workspace admin token';

export interface CreateTokenOptions {
  /** Seals the secret for storage (only the workspace admin token gets one). */
  seal?: (secret: string) => string;
  description?: string;
  rps?: number;
  createdBy?: { credential: string; email?: string };
}

export interface TokenOwner { tenant: string; workspace: string; name: string }

/** `crypto.hash` (Node ≥ 20.12): one call, no Hash object; the same digest as createHash. */
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;

export function hashToken(secret: string): string {
  return oneShot ? oneShot('sha256', secret, 'hex') : crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function newTokenSecret(): string {
  return TOKEN_PREFIX + crypto.randomBytes(32).toString('base64url');
}

const NAME = /^[A-Za-z0-9_.:@ -]{1,128}$/;

/** The ops that create a token; returns the secret (shown once) and the record. */
export function createTokenOps(state: State, tenant: string, workspace: string, name: string, scopes: string[], opts: CreateTokenOptions = {}): { ops: Op[]; secret: string; record: TokenRecord } {
  checkTokenName(name);
  if (state.get('tokens', tenant, workspace, name)) throw new RoostError('ALREADY_EXISTS', `a token named "${name}" already exists in workspace ${workspace}`);
  const secret = newTokenSecret();
  const record: TokenRecord = { id: crypto.randomUUID(), name, tenant, workspace, scopes, hash: hashToken(secret), createdAt: new Date().toISOString() };
  if (opts.seal && name === WORKSPACE_ADMIN_TOKEN) record.sealed = opts.seal(secret);
  if (opts.description) record.description = opts.description;
  if (opts.rps !== undefined) record.rps = opts.rps;
  if (opts.createdBy) record.createdBy = opts.createdBy;
  return {
    secret,
    record,
    ops: [
      { op: 'put', path: ['tokens', tenant, workspace, name], value: record },
      { op: 'put', path: ['tokenHashes', record.hash], value: { tenant, workspace, name } satisfies TokenOwner },
    ],
  };
}

export function deleteTokenOps(record: TokenRecord): Op[] {
  return [
    { op: 'del', path: ['tokens', record.tenant, record.workspace, record.name] },
    { op: 'del', path: ['tokenHashes', record.hash] },
  ];
}

/** Looks a presented secret up; undefined when unknown. `hash`: its `hashToken`, when the caller has it already. */
export function findToken(state: State, secret: string, hash?: string): TokenRecord | undefined {
  if (!secret.startsWith(TOKEN_PREFIX)) return undefined;
  const owner = state.get<TokenOwner>('tokenHashes', hash ?? hashToken(secret));
  if (!owner) return undefined;
  return state.get<TokenRecord>('tokens', owner.tenant, owner.workspace, owner.name);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function checkTokenName(name: string): void {
  if (!NAME.test(name)) throw new RoostError('INVALID_PARAMETER', 'token name must be 1-128 characters of letters, digits, space and _ . : @ -');
  // " x" beside "x" looks the same everywhere it is shown; "." and ".." are no path segment
  // to address it by; a name shaped like a token id would shadow that token in /v0/tokens/<id>.
  if (name !== name.trim()) throw new RoostError('INVALID_PARAMETER', 'token name may not start or end with a space');
  if (/^\.+$/.test(name)) throw new RoostError('INVALID_PARAMETER', 'token name may not be only dots');
  if (UUID.test(name)) throw new RoostError('INVALID_PARAMETER', 'token name may not look like a token id');
}

export function listTokens(state: State, tenant: string, workspace: string): TokenRecord[] {
  return state.list<TokenRecord>('tokens', tenant, workspace);
}

/** A token of the workspace by name or id. */
export function getToken(state: State, tenant: string, workspace: string, nameOrId: string): TokenRecord {
  const byName = state.get<TokenRecord>('tokens', tenant, workspace, nameOrId);
  if (byName) return byName;
  const byId = listTokens(state, tenant, workspace).find((t) => t.id === nameOrId);
  if (!byId) throw new RoostError('NOT_FOUND', `workspace ${workspace} has no token "${nameOrId}"`);
  return byId;
}

/** Ops that replace a token record (rename and scope changes keep its secret). */
export function replaceTokenOps(state: State, before: TokenRecord, after: TokenRecord): Op[] {
  const ops: Op[] = [];
  if (after.name !== before.name) {
    checkTokenName(after.name);
    if (state.get('tokens', after.tenant, after.workspace, after.name)) throw new RoostError('ALREADY_EXISTS', `a token named "${after.name}" already exists in workspace ${after.workspace}`);
    ops.push({ op: 'del', path: ['tokens', before.tenant, before.workspace, before.name] });
  }
  ops.push({ op: 'put', path: ['tokens', after.tenant, after.workspace, after.name], value: after });
  if (after.hash !== before.hash) ops.push({ op: 'del', path: ['tokenHashes', before.hash] });
  ops.push({ op: 'put', path: ['tokenHashes', after.hash], value: { tenant: after.tenant, workspace: after.workspace, name: after.name } satisfies TokenOwner });
  return ops;
}

/** A new secret for a token: the old one stops working at once. */
export function refreshTokenOps(state: State, record: TokenRecord, opts: CreateTokenOptions = {}): { ops: Op[]; secret: string; record: TokenRecord } {
  const secret = newTokenSecret();
  const after: TokenRecord = { ...record, hash: hashToken(secret), updatedAt: new Date().toISOString() };
  delete after.sealed;
  if (opts.seal && (record.sealed || record.name === WORKSPACE_ADMIN_TOKEN)) after.sealed = opts.seal(secret);
  return { secret, record: after, ops: replaceTokenOps(state, record, after) };
}
