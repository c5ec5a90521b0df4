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
}

export interface TokenOwner { tenant: string; workspace: string; name: string }

export function hashToken(secret: string): string {
  return crypto.createHash('sha256').update(secret, 'utf8').digest('hex');
}

export function newTokenSecret(): string {
  return TOKEN_PREFIX + crypto.randomBytes(32).toString('base64url');
}

const NAME = /^[A-Za-z0-9_.:@ -]{1,128}$/;

/** The ops that create a token; returns the secret (shown once) and the record. */
export function createTokenOps(state: State, tenant: string, workspace: string, name: string, scopes: string[]): { ops: Op[]; secret: string; record: TokenRecord } {
  if (!NAME.test(name)) throw new RoostError('INVALID_PARAMETER', 'token name must be 1-128 characters of letters, digits, space and _ . : @ -');
  if (state.get('tokens', tenant, workspace, name)) throw new RoostError('ALREADY_EXISTS', `a token named "${name}" already exists in workspace ${workspace}`);
  const secret = newTokenSecret();
  const record: TokenRecord = { id: crypto.randomUUID(), name, tenant, workspace, scopes, hash: hashToken(secret), createdAt: new Date().toISOString() };
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

/** Looks a presented secret up; undefined when unknown. */
export function findToken(state: State, secret: string): TokenRecord | undefined {
  if (!secret.startsWith(TOKEN_PREFIX)) return undefined;
  const owner = state.get<TokenOwner>('tokenHashes', hashToken(secret));
  if (!owner) return undefined;
  return state.get<TokenRecord>('tokens', owner.tenant, owner.workspace, owner.name);
}
