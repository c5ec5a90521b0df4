/**
 * A server started under a low open-files limit says so at start: a tenant cell that ran out of
 * descriptors could not start again until the limit was raised, and nothing said why (found by
 * the disk round of the twenty-third session). Real server under `ulimit -n 1000`.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

describe('a low open-files limit', () => {
  it('is named in a warning at start, with the fix', async () => {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-nofile-'));
    const bin = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'bin', 'roost.js');
    const child = spawn('bash', ['-c', `ulimit -n 1000 && exec "${process.execPath}" "${bin}" serve --dev --port 0 --data "${data}"`], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no "listening" in 60 s: ${out}`)), 60_000);
        child.stdout.on('data', (b: Buffer) => { out += b.toString(); if (out.includes('"msg":"listening"')) { clearTimeout(t); resolve(); } });
        child.once('exit', (c) => { clearTimeout(t); reject(new Error(`exited ${c}: ${out}`)); });
      });
      await new Promise((r) => setTimeout(r, 200));
      const warn = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'the open-files limit is low');
      expect(warn).toMatchObject({ limit: 1000 });
      expect(String(warn!.note)).toMatch(/raise it to 65536 or more/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      fs.rmSync(data, { recursive: true, force: true });
    }
  }, 90_000);
});
