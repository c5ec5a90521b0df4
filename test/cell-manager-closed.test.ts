/**
 * After the server's shutdown closed every engine, no engine starts again: a late caller (a
 * request answered 408 still running, a flush timer) started a new cell that outlived the server
 * and held its data directory's engine against the next server.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CellManager } from '../tenants/placement.js';
import { createLogger } from '../src/log/logger.js';
import { createMetrics } from '../src/log/metrics.js';
import crypto from 'node:crypto';
import { SecretBox } from '../auth/secrets.js';
import type { Tenant } from '../tenants/registry.js';

describe('CellManager after closeAll', () => {
  it('refuses to hand out an engine (SHUTTING_DOWN) instead of starting a cell', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-cells-closed-'));
    try {
      const cells = new CellManager({ dataDir, idleMs: 60_000, healthMs: 60_000, log: createLogger('silent'), metrics: createMetrics(), secrets: new SecretBox(crypto.randomBytes(32)) });
      const tenant: Tenant = { slug: 'late', name: 'late', domains: [], placement: { type: 'embedded' }, limits: {}, createdAt: new Date().toISOString() } as Tenant;
      expect(cells.engineFor(tenant).kind).toBe('embedded');
      await cells.closeAll();
      let err: unknown;
      try { cells.engineFor(tenant); } catch (e) { err = e; }
      expect(err).toMatchObject({ code: 'SHUTTING_DOWN', retryable: true });
      expect(fs.existsSync(path.join(dataDir, 'cells', 'late'))).toBe(false);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a deleted tenant\'s cell directory left by a killed delete', () => {
  it('is removed at the next start (moved aside first by the delete, so no part of it stays unmarked)', async () => {
    const { startServer } = await import('./helpers/server.js');
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-cell-trash-'));
    const trash = path.join(dataDir, 'cells', '.deleted-gone-1700000000000');
    fs.mkdirSync(path.join(trash, 'db', 'store'), { recursive: true });
    fs.writeFileSync(path.join(trash, 'db', 'store', 'part.bin'), Buffer.alloc(4096, 1));
    const srv = await startServer({ dataDir });
    try {
      expect(fs.existsSync(trash)).toBe(false);
      expect(srv.logs.some((l) => l.msg === 'removed what a tenant delete cut short left of its cell directory')).toBe(true);
    } finally {
      await srv.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
