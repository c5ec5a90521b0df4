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

describe('a tenant named like a key of a root that is not keyed by tenant', () => {
  it('takes none of it: a tenant called tokens took the development tokens (dev/tokens) with it', async () => {
    const { tenantSlice } = await import('../tenants/state-slice.js');
    const doc: Record<string, unknown> = {
      dev: { tokens: { admin: 'sealed' } },
      sessionKeys: { tokens: { kid: 'tokens' } },
      tenants: { tokens: { slug: 'tokens' } },
      tokenHashes: { h1: { tenant: 'tokens', workspace: 'w', name: 'a' } },
    };
    const state = { get: (...path: string[]) => path.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], doc) };
    expect(tenantSlice(state as never, 'tokens').map((e) => e.path.join('/')).sort()).toEqual(['tenants/tokens', 'tokenHashes/h1']);
    // Nor may a backup of it put such an entry back.
    expect(() => checkSlice([{ path: ['dev', 'tokens'], value: { admin: 'sealed' } }], 'tokens')).toThrow(/outside tenant/);
    expect(() => checkSlice([{ path: ['sessionKeys', 'tokens'], value: {} }], 'tokens')).toThrow(/outside tenant/);
  });

  it('a dev server keeps GET /tokens when a tenant called tokens is deleted', async () => {
    const { startServer, call } = await import('./helpers/server.js');
    const srv = await startServer();
    try {
      const op = srv.operatorToken;
      const before = await call(`${srv.url}/tokens`);
      expect(before.status).toBe(200);
      const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'tokens' }) })).status).toBe(201);
      const del = await call(`${srv.url}/v0/tenants/tokens?confirm=tokens`, { method: 'DELETE', token: op });
      expect(del.status, del.text).toBeLessThan(300);
      const after = await call(`${srv.url}/tokens`);
      expect(after.status, after.text).toBe(200);
      expect(after.body.workspace_admin_token).toBe(before.body.workspace_admin_token);
    } finally {
      await srv.stop();
    }
  }, 120_000);
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
