/** A backup's state may only put back its own tenant's entries. */
import { describe, expect, it } from 'vitest';
import { checkSlice } from '../tenants/backup.js';

describe('a tenant\'s slice of the state', () => {
  it('never takes a whole kind of revocation, whatever the tenant is called', async () => {
    const { tenantSlice } = await import('../tenants/state-slice.js');
    const doc: Record<string, unknown> = {
      revocations: {
        sessions: { 'sid-1': 1, sessions: 2 },
        tenants: { sessions: 3, other: 4 },
        subjects: { sessions: { conn: { k: 5 } }, other: { conn: { k: 6 } } },
        idpSessions: { other: { conn: { k: 7 } } },
      },
      tenants: { sessions: { slug: 'sessions' }, other: { slug: 'other' } },
    };
    const state = { get: (...path: string[]) => path.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], doc) };
    const paths = (slug: string) => tenantSlice(state as never, slug).map((e) => e.path.join('/')).sort();
    expect(paths('sessions')).toEqual(['revocations/subjects/sessions', 'revocations/tenants/sessions', 'tenants/sessions']);
    expect(paths('tenants')).toEqual([]);
    expect(paths('subjects')).toEqual([]);
    expect(paths('other')).toEqual(['revocations/idpSessions/other', 'revocations/subjects/other', 'revocations/tenants/other', 'tenants/other']);
  });
});

describe('restore: the saved state slice', () => {
  it('accepts the tenant\'s own entries and its hash-keyed entries', () => {
    expect(() => checkSlice([
      { path: ['tenants', 'mine'], value: { slug: 'mine' } },
      { path: ['mappings', 'mine'], value: { rules: [] } },
      { path: ['tokenHashes', 'ab12'], value: { tenant: 'mine', workspace: 'w', name: 't' } },
      { path: ['revocations', 'tenants', 'mine'], value: 1 },
    ], 'mine')).not.toThrow();
  });

  it('refuses a whole kind of revocation, or session revocations, for a tenant named like them', () => {
    for (const [path, tenant] of [
      [['revocations', 'sessions'], 'sessions'],
      [['revocations', 'tenants'], 'tenants'],
      [['revocations', 'sessions', 'sessions'], 'sessions'],
    ] as const) {
      expect(() => checkSlice([{ path: [...path], value: {} }], tenant), path.join('/')).toThrow(/outside tenant/);
    }
  });

  it('refuses another tenant\'s slug-keyed entries even when the value claims the tenant', () => {
    for (const root of ['mappings', 'connections', 'tenants', 'workspaces', 'tokens']) {
      expect(() => checkSlice([{ path: [root, 'other'], value: { tenant: 'mine', rules: [{ claim: 'sub', match: { glob: '*' }, grant: { role: 'tenant:admin' } }] } }], 'mine'), root)
        .toThrow(/outside tenant/);
    }
  });
});
