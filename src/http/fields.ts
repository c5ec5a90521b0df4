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
