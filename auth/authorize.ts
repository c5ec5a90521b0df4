/**
 * Who is calling, and may they do this. `authenticate` turns the request's
 * credential into a `Credential`; `authorize` is the single decision function:
 * default deny, every handler asks it, none decides on its own. Denials are
 * audited here.
 */
import type { App } from '../src/app.js';
import type { Ctx } from '../src/http/context.js';
import { RoostError } from '../src/errors.js';
import { findToken, type TokenRecord } from './tokens/service-tokens.js';

export type Credential =
  | { kind: 'operator' }
  | { kind: 'token'; token: TokenRecord };

export type Action =
  /** Operator-only administration. */
  | { op: 'operator' }
  /** Something inside one workspace, needing `scope` (optionally on a named resource). */
  | { op: 'workspace'; tenant: string; workspace: string; scope: string; resource?: string };

/** The workspace a request acts on. */
export interface WorkspaceRef { tenant: string; workspace: string }

export function bearer(ctx: Ctx): string | undefined {
  const h = ctx.req.headers.authorization;
  if (typeof h === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    if (m) return m[1];
  }
  return ctx.query.get('token') ?? undefined;
}

export async function authenticate(app: App, ctx: Ctx): Promise<Credential> {
  const secret = bearer(ctx);
  if (!secret) {
    app.audit({ event: 'auth.credential', outcome: 'failure', reason: 'missing', requestId: ctx.id, resource: ctx.route });
    throw new RoostError('UNAUTHENTICATED', 'no credential: send "Authorization: Bearer <token>" or ?token=<token>');
  }
  if (app.operator.matches(secret)) return { kind: 'operator' };
  const token = findToken(app.state, secret);
  if (token) return { kind: 'token', token };
  app.audit({ event: 'auth.credential', outcome: 'failure', reason: 'unknown credential', requestId: ctx.id, resource: ctx.route });
  throw new RoostError('UNAUTHENTICATED', 'the credential is not valid (unknown, deleted or refreshed token)');
}

/** Which workspace a credential acts on for this request. */
export function workspaceOf(_app: App, _ctx: Ctx, cred: Credential): WorkspaceRef {
  if (cred.kind === 'token') return { tenant: cred.token.tenant, workspace: cred.token.workspace };
  throw new RoostError('FORBIDDEN', 'the operator token administers tenants; use a workspace token for data');
}

/** Does a token scope list grant `scope` on `resource`? `ADMIN` grants everything in its workspace. */
export function scopeAllows(scopes: readonly string[], scope: string, resource?: string): boolean {
  for (const s of scopes) {
    if (s === 'ADMIN') return true;
    if (s === scope) return true;
    if (resource !== undefined) {
      const parts = s.split(':');
      if (parts.length >= 3 && `${parts[0]}:${parts[1]}` === scope && (parts[2] === resource || parts[2] === '*')) return true;
    }
  }
  return false;
}

function deny(app: App, ctx: Ctx, cred: Credential, action: Action, message: string): never {
  app.audit({
    event: 'authz.denied', outcome: 'denied', reason: message, requestId: ctx.id,
    tenant: cred.kind === 'token' ? cred.token.tenant : action.op === 'workspace' ? action.tenant : undefined,
    workspace: cred.kind === 'token' ? cred.token.workspace : undefined,
    credential: cred.kind === 'token' ? `token:${cred.token.name}` : cred.kind,
    resource: action.op === 'workspace' ? `${action.scope}${action.resource ? `:${action.resource}` : ''} @ ${action.tenant}/${action.workspace}` : ctx.route,
  });
  throw new RoostError('FORBIDDEN', message);
}

export function authorize(app: App, ctx: Ctx, cred: Credential, action: Action): void {
  if (cred.kind === 'operator') {
    if (action.op === 'operator') return;
    deny(app, ctx, cred, action, 'the operator token administers tenants; use a workspace token for data');
  }
  if (action.op === 'operator') deny(app, ctx, cred, action, 'this route needs the operator token');
  const t = cred.token;
  if (t.tenant !== action.tenant || t.workspace !== action.workspace) deny(app, ctx, cred, action, 'this token belongs to another workspace');
  if (!scopeAllows(t.scopes, action.scope, action.resource)) {
    deny(app, ctx, cred, action, `this token lacks the scope ${action.scope}${action.resource ? `:${action.resource}` : ''}`);
  }
}
