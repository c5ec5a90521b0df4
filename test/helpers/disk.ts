/**
 * Helpers of the tests of the engine's directory and the server's disk: an engine session run on
 * a directory, a client that stops reading its result, directories made to refuse writes.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';

/** Runs `statements` in an engine session on `dir`, returns the last one's TSV answer, closes it. */
export function engineRun(dir: string, ...statements: string[]): string {
  const s = new Session(dir);
  try {
    let out = '';
    for (const q of statements) out = s.query(q, 'TSV').toString();
    return out.trim();
  } finally {
    s.cleanup();
  }
}

/** A raw `POST /v0/sql` whose client stops reading after the first 64 KiB until `read()`. */
export function pausedSqlClient(url: string, token: string, q: string): { parts: Buffer[]; done: Promise<void>; got: () => number; read: () => void } {
  const sock = net.connect(Number(new URL(url).port), '127.0.0.1');
  const parts: Buffer[] = [];
  let got = 0;
  let reading = false;
  const done = new Promise<void>((resolve) => sock.on('end', () => resolve()));
  sock.on('data', (d) => { parts.push(d); got += d.length; if (!reading && got > 64 * 1024) sock.pause(); });
  sock.on('error', () => {});
  sock.write(`POST /v0/sql HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(q)}\r\n\r\n${q}`);
  return { parts, done, got: () => got, read: () => { reading = true; sock.resume(); } };
}

/** Whether this machine lets a directory be made immutable (root, a filesystem with the attribute). */
function immutableWorks(): boolean {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-chattr-'));
  try {
    execFileSync('chattr', ['+i', d], { stdio: 'ignore' });
    try { fs.writeFileSync(path.join(d, 'x'), 'x'); return false; } catch { return true; } finally { execFileSync('chattr', ['-i', d], { stdio: 'ignore' }); }
  } catch {
    return false;
  } finally {
    fs.rmSync(d, { recursive: true, force: true });
  }
}

/**
 * Skips the test (loudly) where directories cannot be made immutable, and fails it under CI=true
 * (CI runs as root on ext4, where they can). True when the test may go on.
 */
export function needImmutable(t: { skip: () => void }): boolean {
  if (immutableWorks()) return true;
  const why = 'chattr +i is not available here (needs root and a filesystem with the immutable attribute)';
  if (process.env.CI === 'true') throw new Error(why);
  console.warn(`SKIPPED: ${why}`);
  t.skip();
  return false;
}

/** `chattr +i` / `-i` on a path. */
export const immutable = (p: string, on: boolean): void => { execFileSync('chattr', [on ? '+i' : '-i', p]); };
