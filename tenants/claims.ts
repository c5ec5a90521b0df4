/**
 * What one tenant holds alone, checked inside state transactions: an email domain (it
 * routes `/auth/login?email=` to its tenant and counts as verified) and the issuer +
 * audience pair of a connection that accepts IdP access tokens (tokens find their
 * connection by it: a second one would make every such token ambiguous, and so refused,
 * for the first tenant too). Tenant changes, connection changes and restores all check.
 */
import { RoostError } from '../src/errors.js';
import type { State } from '../src/state/state.js';
import { sameIssuer, type StoredConnection } from '../auth/oidc/connections.js';
import type { Tenant } from './registry.js';

export function checkDomainsFree(s: State, slug: string, domains: readonly string[] | undefined): void {
  if (!domains) return;
  for (const t of s.list<Tenant>('tenants')) {
    if (t.slug === slug) continue;
    const taken = domains.find((d) => t.domains.includes(d));
    if (taken) throw new RoostError('ALREADY_EXISTS', `domain ${taken} belongs to tenant "${t.slug}" already; a domain routes logins to one tenant only`);
  }
}

/**
 * `otherTenants`: compare with other tenants' connections only (a restore replaces its own).
 * `operator`: the change is the operator's. A connection that takes IdP access tokens of an
 * issuer another tenant's connection takes them of is the operator's to set up: such tokens are
 * told apart by their audience alone, and a tenant admin naming an audience the other tenant's
 * tokens carry as well (Keycloak's `account`, Auth0's userinfo URL) made every one of them
 * ambiguous, so refused — one tenant's admin locked another tenant's scripts out.
 */
export function checkAudienceFree(s: State, rec: StoredConnection, opts: { otherTenants?: boolean; operator?: boolean } = {}): void {
  if (rec.type !== 'oidc' || !rec.accept_idp_access_tokens || !rec.audience) return;
  const all = s.get<Record<string, Record<string, StoredConnection>>>('connections') ?? {};
  for (const [t, conns] of Object.entries(all)) {
    if (opts.otherTenants && t === rec.tenant) continue;
    for (const c of Object.values(conns)) {
      if (t === rec.tenant && c.id === rec.id) continue;
      if (c.type !== 'oidc' || !c.accept_idp_access_tokens || !sameIssuer(c.issuer, rec.issuer)) continue;
      if (c.audience === rec.audience) {
        throw new RoostError('ALREADY_EXISTS', 'another connection already accepts IdP access tokens of this issuer for this audience; give each connection its own audience');
      }
      if (t !== rec.tenant && !opts.operator) {
        throw new RoostError('CONFLICT', 'another tenant\'s connection already accepts IdP access tokens of this issuer: tokens of an IdP two tenants share are told apart by their audience alone, so only the operator may set this up (or leave accept_idp_access_tokens off: logins through this connection are not affected)');
      }
    }
  }
}
