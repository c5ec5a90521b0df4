/**
 * Who is calling, and may they do this. `authenticate` turns the request's
 * credential into a `Credential`; `authorize` is the single decision function:
 * default deny, every handler asks it, none decides on its own.
 */
import type { Ctx } from '../src/http/context.js';
import { RoostError } from '../src/errors.js';
import type { State } from '../src/state/state.js';
import type { OperatorToken } from './operator.js';
import { findToken, type TokenRecord } from './tokens/service-tokens.js';

export type Credential =
  | { kind: 'operator' }
  | { kind: 'token'; token: TokenRecord };

export type Action =
  | { op: 'operator' }
  | { op: 'workspace'; tenant: string; workspace: string; scope: string; resource?: string };

export function bearer(ctx: Ctx): string | undefined {
  const h = ctx.req.headers.authorization;
  if (typeof h === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (m) return m[1];
  }
  return ctx.query.get('token') ?? undefined;
}

export function authenticate(ctx: Ctx, state: State, operator: OperatorToken): Credential {
  const secret = bearer(ctx);
  if (!secret) throw new RoostError('UNAUTHENTICATED', 'no credential: send "Authorization: Bearer <token>" or ?token=<token>');
  if (operator.matches(secret)) return { kind: 'operator' };
  const token = findToken(state, secret);
  if (token) return { kind: 'token', token };
  throw new RoostError('UNAUTHENTICATED', 'the credential is not valid (unknown, deleted or refreshed token)');
}

/** Does a token scope list grant `scope` on `resource`? `ADMIN` grants everything in its workspace. */
export function scopeAllows(scopes: readonly string[], scope: string, resource?: string): boolean {
  for (const s of scopes) {
    if (s === 'ADMIN') return true;
    if (s === scope) return true;
    if (resource !== undefined) {
      const [a, b, name] = s.split(':', 3);
      if (`${a}:${b}` === scope && (name === resource || name === '*')) return true;
    }
  }
  return false;
}

export function authorize(cred: Credential, action: Action): void {
  if (cred.kind === 'operator') {
    if (action.op === 'operator') return;
    throw new RoostError('FORBIDDEN', 'the operator token administers tenants; use a workspace token for data');
  }
  if (action.op === 'operator') throw new RoostError('FORBIDDEN', 'this route needs the operator token');
  const t = cred.token;
  if (t.tenant !== action.tenant || t.workspace !== action.workspace) {
    throw new RoostError('FORBIDDEN', 'this token belongs to another workspace');
  }
  if (!scopeAllows(t.scopes, action.scope, action.resource)) {
    throw new RoostError('FORBIDDEN', `this token lacks the scope ${action.scope}${action.resource ? `:${action.resource}` : ''}`);
  }
}
