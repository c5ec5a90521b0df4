/**
 * What a failure of the server's own says in a tenant's operations log: not the server's files
 * (the state journal's, the events buffer's, the engine's store were named there, found by the
 * disk round of the twenty-third session).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { State } from '../src/state/state.js';
import { JournalStore } from '../src/state/journal-store.js';
import { publicErrorText } from '../src/query/public-names.js';
import { RoostError } from '../src/errors.js';

describe("a server failure's text for a tenant", () => {
  it('names the errno of a disk that refused, and no server path', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-pet-'));
    const s = new State(new JournalStore(dir));
    await s.open();
    try {
      const fsErr = Object.assign(new Error("ENOSPC: no space left on device, write '/srv/roost/events/acme/main/ev/000000000001.ndjson'"), { code: 'ENOSPC', syscall: 'write' });
      expect(publicErrorText(s, 'acme', 'main', new Error('cannot write the state journal /srv/roost/state/journal.log', { cause: fsErr }))).toBe('the server could not use its disk (ENOSPC)');
      expect(publicErrorText(s, 'acme', 'main', fsErr)).toBe('the server could not use its disk (ENOSPC)');
      const other = publicErrorText(s, 'acme', 'main', new Error('unexpected end of /srv/roost/cells/acme/db/store/abc/x.bin at 7'));
      expect(other).not.toMatch(/\/srv/);
      expect(other).toBe('unexpected end of (a server path) at 7');
      expect(publicErrorText(s, 'acme', 'main', new RoostError('QUERY_FAILED', 'said as is'))).toBe('said as is');
    } finally {
      await s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a durable file write that fails', () => {
  it('leaves no temporary file behind (a full disk kept a half-written snapshot)', async () => {
    const { writeFileDurable } = await import('../src/state/journal-store.js');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-wfd-'));
    try {
      const file = path.join(dir, 'snapshot.json');
      // A content the write refuses stands for a disk that refuses it.
      await expect(writeFileDurable(file, 12345 as unknown as string)).rejects.toThrow();
      expect(fs.readdirSync(dir)).toEqual([]);
      await writeFileDurable(file, 'ok');
      expect(fs.readdirSync(dir)).toEqual(['snapshot.json']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
