/**
 * Every query has a memory limit by default (a quarter of the machine's memory, `--query-memory`):
 * without one, a single query grew its cell to 6 GB in 20 s, a risk to every process on the
 * machine. A tenant's own `query_memory_bytes` wins; `0` turns the default off.
 */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { querySettings } from '../src/query/run.js';
import type { Tenant } from '../tenants/registry.js';

const tenant = (limits: Tenant['limits']): Tenant => ({ slug: 't', name: 't', domains: [], placement: { type: 'embedded' }, limits, createdAt: '' } as unknown as Tenant);

describe('default query memory limit', () => {
  it('is a quarter of the machine\'s memory, can be set or turned off, and is checked', () => {
    // The machine's memory, or its container's limit when lower.
    const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
    const memory = limit && limit > 0 && limit < os.totalmem() ? limit : os.totalmem();
    expect(loadConfig([], {}).queryMemoryBytes).toBe(Math.floor(memory / 4));
    expect(loadConfig(['--query-memory', '0'], {}).queryMemoryBytes).toBe(0);
    expect(loadConfig([], { ROOST_QUERY_MEMORY_BYTES: '1073741824' }).queryMemoryBytes).toBe(1073741824);
    expect(() => loadConfig(['--query-memory', '1000'], {})).toThrow(/query-memory.*at least 16777216/);
    expect(() => loadConfig(['--query-memory', '1GB'], {})).toThrow(/query-memory.*whole number/);
  });

  it('applies to tenants without their own limit; a tenant\'s own wins', () => {
    const config = loadConfig(['--query-memory', '536870912'], {});
    expect(querySettings(tenant({}), config, 'JSON').settings.max_memory_usage).toBe(536870912);
    expect(querySettings(tenant({ query_memory_bytes: 64 << 20 }), config, 'JSON').settings.max_memory_usage).toBe(64 << 20);
    expect(querySettings(tenant({}), loadConfig(['--query-memory', '0'], {}), 'JSON').settings.max_memory_usage).toBeUndefined();
  });
});
