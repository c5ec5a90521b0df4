/**
 * Files an import leaves in <data>/tmp while it runs (its quarantine spool) are removed at
 * the next start when a crash ended the import; other files there are left alone.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer, tempDir, type RunningServer } from './helpers/server.js';

let srv: RunningServer | undefined;
afterAll(async () => { await srv?.stop(); });

describe('start', () => {
  it('removes quarantine spools left by a crash, and nothing else', async () => {
    const dataDir = tempDir();
    const tmp = path.join(dataDir, 'tmp');
    fs.mkdirSync(tmp, { recursive: true });
    const left = path.join(tmp, 'quarantine-0123456789abcdef.ndjson');
    const other = path.join(tmp, 'quarantine-notes.txt');
    fs.writeFileSync(left, '{"c__line":1}\n');
    fs.writeFileSync(other, 'keep me');
    srv = await startServer({ dataDir });
    expect(fs.existsSync(left)).toBe(false);
    expect(fs.existsSync(other)).toBe(true);
    expect(srv.logs.some((l) => l.msg === 'removed quarantine spool files left by a crash' && l.files === 1)).toBe(true);
  }, 60_000);
});
