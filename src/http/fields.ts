/**
 * Refusing the fields of a JSON body a route does not read: a misspelt `limits` created a tenant
 * without limits, a misspelt `accept_idp_access_tokens` a connection without IdP tokens, each
 * answered as if all was well.
 */
import { RoostError } from '../errors.js';

/**
 * 400 `INVALID_PARAMETER` naming the fields of `body` that are not in `known` (and listing those
 * that are). `shown`: fields the route's own answers carry but a write does not set (ids, URLs,
 * times): taken without effect, so that an answer edited and sent back is accepted.
 */
export function onlyFields(body: Record<string, unknown>, known: readonly string[], what: string, shown: readonly string[] = []): void {
  const unknown = Object.keys(body).filter((k) => !known.includes(k) && !shown.includes(k));
  if (unknown.length) throw new RoostError('INVALID_PARAMETER', `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in ${what}; known: ${known.join(', ')}`);
}

/**
 * A flag parameter read strictly: a clear yes or no (absent or empty is no); anything else is a
 * 400 saying `nothing` happened (`dry_run=maybe` must not run a delete or drop for real).
 */
export function yesOrNo(name: string, raw: string | null, nothing: string): boolean {
  const v = (raw ?? '').trim();
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(|0|false|no|off)$/i.test(v)) return false;
  throw new RoostError('INVALID_PARAMETER', `${name} must be true or false; got "${v.slice(0, 40)}" (${nothing})`, { details: { parameter: name } });
}
