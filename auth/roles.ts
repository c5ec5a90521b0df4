/**
 * Roles a person gets from the mapping rules, and what each allows inside a
 * workspace: `viewer` reads data and calls endpoints, `editor` also manages
 * data sources and pipes, `admin` does everything there (tokens included).
 * `tenant:admin` administers the tenant and is `admin` of every workspace.
 */
export type Role = 'viewer' | 'editor' | 'admin';
export const ROLES: readonly Role[] = ['viewer', 'editor', 'admin'];
export const RANK: Record<Role, number> = { viewer: 1, editor: 2, admin: 3 };

/** The result of the mapping rules for one identity. */
export interface Grants {
  tenantAdmin: boolean;
  /** Role on every workspace (`workspace: "*"`). */
  all?: Role;
  /** Role per named workspace. */
  workspaces: Record<string, Role>;
}

export function noGrants(): Grants {
  return { tenantAdmin: false, workspaces: {} };
}

export function hasAnyGrant(g: Grants): boolean {
  return g.tenantAdmin || g.all !== undefined || Object.keys(g.workspaces).length > 0;
}

export function higher(a: Role | undefined, b: Role | undefined): Role | undefined {
  if (!a) return b;
  if (!b) return a;
  return RANK[a] >= RANK[b] ? a : b;
}

/** The highest role the grants give on `workspace`. */
export function roleOn(g: Grants, workspace: string): Role | undefined {
  if (g.tenantAdmin) return 'admin';
  return higher(g.all, Object.hasOwn(g.workspaces, workspace) ? g.workspaces[workspace] : undefined);
}

const VIEWER = new Set(['DATASOURCES:READ', 'PIPES:READ']);
const EDITOR = new Set([...VIEWER, 'DATASOURCES:CREATE', 'DATASOURCES:APPEND', 'DATASOURCES:DROP', 'PIPES:CREATE', 'PIPES:DROP']);

/** Does `role` allow the scope type (resource names do not matter for roles)? */
export function roleAllows(role: Role | undefined, scope: string): boolean {
  if (!role) return false;
  if (role === 'admin') return true;
  return (role === 'editor' ? EDITOR : VIEWER).has(scope);
}
