/** A backup's state may only put back its own tenant's entries. */
import { describe, expect, it } from 'vitest';
import { checkSlice } from '../tenants/backup.js';

describe('restore: the saved state slice', () => {
  it('accepts the tenant\'s own entries and its hash-keyed entries', () => {
    expect(() => checkSlice([
      { path: ['tenants', 'mine'], value: { slug: 'mine' } },
      { path: ['mappings', 'mine'], value: { rules: [] } },
      { path: ['tokenHashes', 'ab12'], value: { tenant: 'mine', workspace: 'w', name: 't' } },
      { path: ['revocations', 'tenants', 'mine'], value: 1 },
    ], 'mine')).not.toThrow();
  });

  it('refuses another tenant\'s slug-keyed entries even when the value claims the tenant', () => {
    for (const root of ['mappings', 'connections', 'tenants', 'workspaces', 'tokens']) {
      expect(() => checkSlice([{ path: [root, 'other'], value: { tenant: 'mine', rules: [{ claim: 'sub', match: { glob: '*' }, grant: { role: 'tenant:admin' } }] } }], 'mine'), root)
        .toThrow(/outside tenant/);
    }
  });
});
