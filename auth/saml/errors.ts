/**
 * A refused SAML login. `check` names the rule that refused it (stable, for
 * the audit log and for callers: `signature`, `algorithm`, `assertion_count`,
 * `replay`, ...); the code stays `LOGIN_FAILED` (401) or `NO_ACCESS` (403).
 */
import { LoginFailed } from '../oidc/callback.js';

export class SamlLoginFailed extends LoginFailed {
  readonly check: string;
  constructor(check: string, message: string, where: { tenant?: string; connection?: string }, opts: { code?: 'LOGIN_FAILED' | 'NO_ACCESS'; cause?: unknown } = {}) {
    super(opts.code === 'NO_ACCESS' ? 'NO_ACCESS' : 'LOGIN_FAILED', message, where, opts.cause);
    this.check = check;
    this.details.check = check;
  }
}
