/**
 * Role-mapping rules of a tenant (`mappings/<tenant>`): "claim X matches Y ⇒
 * role R on workspace W (or `*`), or `tenant:admin`", optionally only for logins
 * (and IdP tokens) that came through some of the tenant's connections
 * (`connections`). Evaluated at every login and at every use of a session or IdP
 * token, for the connection it came through; the highest grant wins; no match
 * means no entry.
 */
import type { State } from '../../src/state/state.js';
import { RoostError } from '../../src/errors.js';
import { onlyFields } from '../../src/http/fields.js';
import { higher, noGrants, ROLES, type Grants, type Role } from '../roles.js';

type Scalar = string | number | boolean;

export type Matcher = { equals: Scalar } | { in: Scalar[] } | { glob: string } | { email_domain: string };
export type Grant = { role: Role; workspace: string } | { role: 'tenant:admin' };
/**
 * `connections`: the ids of the tenant's connections whose logins (and IdP access tokens) the
 * rule applies to; absent, every connection's (each IdP of the tenant can then earn its grant).
 */
export interface MappingRule { claim: string; match: Matcher; grant: Grant; connections?: string[] }
export interface MappingDoc { rules: MappingRule[]; updatedAt: string }

const CLAIM_PATH = /^[A-Za-z0-9_:/.-]{1,200}$/;
const WORKSPACE = /^(?:\*|[A-Za-z][A-Za-z0-9_]{0,63})$/;
const MAX_RULES = 500;
/** A connection id (auth/oidc/connections.ts, auth/saml/connections.ts). */
const CONNECTION_ID = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;
/** Connections one rule may name. */
const MAX_RULE_CONNECTIONS = 50;
/** Longest glob, and longest claim value a glob is matched against (a longer one does not match: rules only grant). */
const MAX_GLOB = 256;
const MAX_GLOB_VALUE = 1024;

function isScalar(v: unknown): v is Scalar {
  // (Not an infinite number: JSON's 1e999 read as Infinity was stored as null.)
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean';
}

/** Validates a `{rules: [...]}` body; errors name the rule index and field. */
export function validateRules(raw: unknown): MappingRule[] {
  const body = raw as { rules?: unknown };
  if (!body || typeof body !== 'object' || !Array.isArray(body.rules)) throw new RoostError('INVALID_PARAMETER', 'send {"rules": [{claim, match, grant}, ...]}');
  onlyFields(body as Record<string, unknown>, ['rules'], 'the mapping rules', ['updated_at', 'warnings']);
  if (body.rules.length > MAX_RULES) throw new RoostError('INVALID_PARAMETER', `at most ${MAX_RULES} rules`);
  return body.rules.map((r: unknown, i: number) => {
    const bad = (what: string) => new RoostError('INVALID_PARAMETER', `rules[${i}]: ${what}`, { details: { rule: i } });
    const rule = r as Record<string, unknown>;
    if (!rule || typeof rule !== 'object' || Array.isArray(rule)) throw bad('must be an object {claim, match, grant}');
    // A field Roost does not read (a "deny", a "priority", a misspelt key) would grant as if it were not there.
    const extra = (o: Record<string, unknown>, known: string[], where: string) => {
      const k = Object.keys(o).find((x) => !known.includes(x));
      if (k !== undefined) throw bad(`unknown field "${k}" in ${where}; rules only grant (known: ${known.join(', ')})`);
    };
    extra(rule, ['claim', 'match', 'grant', 'connections'], 'the rule');
    if (typeof rule.claim !== 'string' || !CLAIM_PATH.test(rule.claim)) throw bad('claim must be a dotted claim path like "groups" or "realm_access.roles"');
    const m = rule.match as Record<string, unknown>;
    if (!m || typeof m !== 'object' || Object.keys(m).length !== 1) throw bad('match must have exactly one of equals, in, glob, email_domain');
    let match: Matcher;
    if ('equals' in m) { if (!isScalar(m.equals)) throw bad('match.equals must be a string, number or boolean'); match = { equals: m.equals }; }
    else if ('in' in m) { if (!Array.isArray(m.in) || m.in.length === 0 || !m.in.every(isScalar)) throw bad('match.in must be a non-empty list of strings, numbers or booleans'); match = { in: m.in as Scalar[] }; }
    else if ('glob' in m) { if (typeof m.glob !== 'string' || !m.glob || m.glob.length > MAX_GLOB) throw bad(`match.glob must be a pattern with * and ? of at most ${MAX_GLOB} characters`); match = { glob: m.glob }; }
    else if ('email_domain' in m) { if (typeof m.email_domain !== 'string' || !/^[a-z0-9.-]+\.[a-z]{2,}$/i.test(m.email_domain)) throw bad('match.email_domain must be a domain like "acme.com"'); match = { email_domain: m.email_domain.toLowerCase() }; }
    else throw bad('match must be one of equals, in, glob, email_domain');
    const g = rule.grant as Record<string, unknown>;
    if (!g || typeof g !== 'object' || Array.isArray(g)) throw bad('grant must be {role, workspace} or {role: "tenant:admin"}');
    let grant: Grant;
    if (g.role === 'tenant:admin') { extra(g, ['role'], 'grant (tenant:admin is tenant-wide: no workspace)'); grant = { role: 'tenant:admin' }; }
    else if (ROLES.includes(g.role as Role)) {
      extra(g, ['role', 'workspace'], 'grant');
      if (typeof g.workspace !== 'string' || !WORKSPACE.test(g.workspace)) throw bad('grant.workspace must be a workspace name or "*"');
      grant = { role: g.role as Role, workspace: g.workspace };
    } else throw bad('grant.role must be admin, editor, viewer or tenant:admin');
    if (rule.connections === undefined) return { claim: rule.claim, match, grant };
    const c = rule.connections;
    // An empty list would be a rule that never applies, or (read carelessly) one that always does.
    if (!Array.isArray(c) || c.length === 0 || c.length > MAX_RULE_CONNECTIONS || !c.every((x) => typeof x === 'string' && CONNECTION_ID.test(x))) {
      throw bad(`connections must be a non-empty list of connection ids (at most ${MAX_RULE_CONNECTIONS}), like ["okta"]; leave it out for a rule that applies to every connection`);
    }
    return { claim: rule.claim, match, grant, connections: [...new Set(c as string[])] };
  });
}

/**
 * Refuses rules naming a connection the tenant does not have (`INVALID_PARAMETER`, naming the
 * rule and the connection): a misspelt id would be a rule that never applies, and one naming a
 * connection created later would start granting through it unseen.
 */
export function checkRuleConnections(rules: readonly MappingRule[], known: ReadonlySet<string>, tenant: string): void {
  rules.forEach((r, i) => {
    const missing = r.connections?.find((c) => !known.has(c));
    if (missing !== undefined) {
      throw new RoostError('INVALID_PARAMETER', `rules[${i}]: tenant "${tenant}" has no connection "${missing}" (its connections: ${[...known].join(', ') || 'none'})`, { details: { rule: i, connection: missing } });
    }
  });
}

/** Does the rule apply to a login through `connection` (null: no connection in particular, only rules for every connection)? */
export function appliesTo(rule: MappingRule, connection: string | null): boolean {
  return rule.connections === undefined || (connection !== null && rule.connections.includes(connection));
}

/** The rules that apply to logins through `connection`. */
export function rulesFor(rules: readonly MappingRule[], connection: string | null): MappingRule[] {
  return rules.filter((r) => appliesTo(r, connection));
}

/** Indexes of the rules that name `connection` (those that keep it from being deleted). */
export function rulesNaming(rules: readonly MappingRule[], connection: string): number[] {
  return rules.flatMap((r, i) => (r.connections?.includes(connection) ? [i] : []));
}

/** Indexes of the rules that apply to every connection (what a tenant with several IdPs is warned about). */
export function unscopedRules(rules: readonly MappingRule[]): number[] {
  return rules.flatMap((r, i) => (r.connections === undefined ? [i] : []));
}

/**
 * The warning a rules answer carries when the tenant has several connections and some rules
 * apply to all of them: any of those IdPs can assert the claim that earns the grant.
 */
export function unscopedWarnings(rules: readonly MappingRule[], connections: readonly string[]): Array<{ reason: string; message: string; rules: number[]; connections: string[] }> {
  const loose = unscopedRules(rules);
  if (connections.length < 2 || loose.length === 0) return [];
  const list = loose.length === 1 ? `rule ${loose[0]} applies` : `rules ${loose.join(', ')} apply`;
  return [{
    reason: 'rules_for_every_connection', rules: loose, connections: [...connections],
    message: `${list} to logins through every connection of the tenant (${connections.join(', ')}): any of these identity providers can assert the claim that earns the grant. Name the connections each rule is meant for with "connections": ["<connection id>"]`,
  }];
}

export function getRules(state: State, tenant: string): MappingRule[] {
  return state.get<MappingDoc>('mappings', tenant)?.rules ?? [];
}

/** The value at a dotted path; a key that itself contains dots is tried whole first. */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let node: unknown = claims;
  for (const k of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, k)) return undefined;
    node = (node as Record<string, unknown>)[k];
  }
  return node;
}

/** Comparisons one `?` segment may spend on one value before it counts as no match. */
const QMARK_BUDGET = 4096;

/** Does `seg` (literal, `?` any one character) match `v` at `at`? */
function segAt(seg: string, v: string, at: number): boolean {
  if (at < 0 || at + seg.length > v.length) return false;
  for (let i = 0; i < seg.length; i++) if (seg[i] !== '?' && seg[i] !== v[at + i]) return false;
  return true;
}

/**
 * Does `value` match `glob` (`*` any run of characters, `?` one character, the rest literal)?
 * Matched without a regular expression: `^.*a.*a.*...b$` backtracks exponentially (a rule
 * "*a*a*a*a*a*a*a*a*b" against a 50-character group held the event loop for 30 s, every
 * tenant's requests with it). The glob is cut at its stars: the first piece must start the
 * value, the last must end it, and each piece between is taken at its leftmost place after
 * the one before (which is right for globs), found with indexOf. A piece holding `?` is
 * searched by hand within a budget; past it the rule does not match (rules only grant).
 */
export function globMatches(glob: string, value: string): boolean {
  const parts = glob.split('*');
  if (parts.length === 1) return value.length === glob.length && segAt(glob, value, 0);
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (value.length < first.length + last.length || !segAt(first, value, 0) || !segAt(last, value, value.length - last.length)) return false;
  let pos = first.length;
  const end = value.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const seg = parts[i]!;
    if (!seg) continue;
    let at = -1;
    if (!seg.includes('?')) at = value.indexOf(seg, pos);
    else {
      let spent = 0;
      for (let k = pos; k + seg.length <= end; k++) {
        if (segAt(seg, value, k)) { at = k; break; }
        spent += seg.length;
        if (spent > QMARK_BUDGET) return false;
      }
    }
    if (at < 0 || at + seg.length > end) return false;
    pos = at + seg.length;
  }
  return true;
}

/** The IdP does not say the address is verified: it sent `email_verified` as anything but `true`, `"true"`, `1` or `"1"` (or a list holding such a value). */
function unverified(v: unknown): boolean {
  // A SAML attribute with several values is a list: any "false" in it counts.
  if (Array.isArray(v)) return v.length === 0 || v.some(unverified);
  // Absent: the IdP says nothing (SAML IdPs and many OIDC ones never send it). Present, only a plain
  // yes counts: "no", null, "" or anything else the IdP sends is not one ("no" counted as verified).
  if (v === undefined) return false;
  return !(v === true || v === 1 || (typeof v === 'string' && /^\s*(?:true|1)\s*$/i.test(v)));
}

function matchesOne(m: Matcher, v: unknown, claims: Record<string, unknown>): boolean {
  if (!isScalar(v)) return false;
  if ('equals' in m) return v === m.equals;
  if ('in' in m) return m.in.includes(v);
  if ('glob' in m) return typeof v === 'string' && v.length <= MAX_GLOB_VALUE && globMatches(m.glob, v);
  // An address the IdP says it has not verified proves nothing about the domain.
  if (unverified(claims.email_verified)) return false;
  if (typeof v !== 'string') return false;
  const at = v.lastIndexOf('@');
  // ASCII case folding only: toLowerCase() turns KELVIN SIGN (U+212A) into "k", so
  // "x@\u212Ailo.com" would have been read as an address of kilo.com.
  return at > 0 && v.slice(at + 1).replace(/[A-Z]/g, (c) => c.toLowerCase()) === m.email_domain;
}

export function ruleMatches(rule: MappingRule, claims: Record<string, unknown>): boolean {
  // The `email` claim is the person's address only when the IdP does not say it is unverified,
  // whatever the matcher: `{"equals": "ceo@acme.com"}` granted tenant:admin to an account that
  // had typed that address in at the IdP without proving it (only email_domain asked).
  if (rule.claim === 'email' && unverified(claims.email_verified)) return false;
  const v = claimAt(claims, rule.claim);
  return Array.isArray(v) ? v.some((x) => matchesOne(rule.match, x, claims)) : matchesOne(rule.match, v, claims);
}

/**
 * The grants of a login (or a session, or an IdP token) that came through `connection`, from the
 * rules that apply to that connection (null: only the rules for every connection).
 */
export function evaluateRules(rules: readonly MappingRule[], claims: Record<string, unknown>, connection: string | null): Grants {
  const g = noGrants();
  for (const rule of rules) {
    if (!appliesTo(rule, connection) || !ruleMatches(rule, claims)) continue;
    if (rule.grant.role === 'tenant:admin') g.tenantAdmin = true;
    else if (rule.grant.workspace === '*') g.all = higher(g.all, rule.grant.role);
    else {
      const w = rule.grant.workspace;
      g.workspaces[w] = higher(Object.hasOwn(g.workspaces, w) ? g.workspaces[w] : undefined, rule.grant.role)!;
    }
  }
  return g;
}

/** Which rules matched and apply to `connection` (for `mappings/test`). */
export function matchedRules(rules: readonly MappingRule[], claims: Record<string, unknown>, connection: string | null): number[] {
  return rules.flatMap((r, i) => (appliesTo(r, connection) && ruleMatches(r, claims) ? [i] : []));
}

/** Which rules match the claims but are limited to other connections than `connection`. */
export function rulesElsewhere(rules: readonly MappingRule[], claims: Record<string, unknown>, connection: string | null): number[] {
  return rules.flatMap((r, i) => (!appliesTo(r, connection) && ruleMatches(r, claims) ? [i] : []));
}

/**
 * What the person refused at a login through `connection` is told (403 `NO_ACCESS`, page or
 * JSON): no role, ask the tenant's administrator. Nothing about the tenant's rules.
 */
export function noAccessMessage(tenant: string, connection: string, who: string): string {
  return `no mapping rule of tenant "${tenant}" grants ${who} a role through connection "${connection}"; ask the tenant's administrator`;
}

/**
 * Why a login through `connection` was given no role, for its audit record only: it names the
 * rules that match but are limited to other connections, when there are some (the tenant's
 * rules are not the person's to read: a partner IdP's user would learn them).
 */
export function noAccessReason(rules: readonly MappingRule[], claims: Record<string, unknown>, tenant: string, connection: string, who: string): string {
  const elsewhere = rulesElsewhere(rules, claims, connection);
  const why = elsewhere.length === 0 ? ''
    : `; ${elsewhere.length === 1 ? `rule ${elsewhere[0]} matches` : `rules ${elsewhere.join(', ')} match`} but ${elsewhere.length === 1 ? 'is' : 'are'} limited to other connections than "${connection}"`;
  return `no mapping rule of tenant "${tenant}" grants ${who} a role through connection "${connection}"${why}; ask the tenant's administrator`;
}

/** The top-level claim names the rules read (what a session must carry). */
export function referencedClaims(rules: readonly MappingRule[]): Set<string> {
  const out = new Set<string>(['sub', 'email', 'email_verified', 'name']);
  for (const r of rules) {
    out.add(r.claim);
    out.add(r.claim.split('.')[0]!);
  }
  return out;
}

/** The public view of grants. */
export function grantsView(g: Grants): { tenant_admin: boolean; workspaces: Record<string, Role> } {
  const workspaces: Record<string, Role> = { ...g.workspaces };
  if (g.all) workspaces['*'] = g.all;
  return { tenant_admin: g.tenantAdmin, workspaces };
}
