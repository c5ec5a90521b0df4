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

/** `otherTenants`: compare with other tenants' connections only (a restore replaces its own). */
export function checkAudienceFree(s: State, rec: StoredConnection, otherTenants = false): void {
  if (rec.type !== 'oidc' || !rec.accept_idp_access_tokens || !rec.audience) return;
  const all = s.get<Record<string, Record<string, StoredConnection>>>('connections') ?? {};
  for (const [t, conns] of Object.entries(all)) {
    if (otherTenants && t === rec.tenant) continue;
    for (const c of Object.values(conns)) {
      if (t === rec.tenant && c.id === rec.id) continue;
      if (c.type === 'oidc' && c.accept_idp_access_tokens && c.audience === rec.audience && sameIssuer(c.issuer, rec.issuer)) {
        throw new RoostError('ALREADY_EXISTS', 'another connection already accepts IdP access tokens of this issuer for this audience; give each connection its own audience');
      }
    }
  }
}
