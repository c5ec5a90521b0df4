/**
 * Backups as tar archives, through the system's `tar` (GNU or BSD): streamed
 * out for download, and unpacked from an upload into a fresh directory that is
 * renamed into place only once complete.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import { RoostError } from '../src/errors.js';

/** A tar stream of `<parent>/<name>` (entries start with `<name>/`). */
export function tarStream(parent: string, name: string): { stream: Readable; done: Promise<void> } {
  const child = spawn('tar', ['-c', '-f', '-', '-C', parent, name], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
  const done = new Promise<void>((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar failed (${code}): ${err.trim()}`)))));
  done.catch(() => {});
  return { stream: child.stdout, done };
}

/** Writes `<parent>/<name>` as a tar file at `file`. */
export async function writeTar(parent: string, name: string, file: string): Promise<void> {
  const { stream, done } = tarStream(parent, name);
  const out = fs.createWriteStream(file, { mode: 0o600 });
  await new Promise<void>((resolve, reject) => { stream.pipe(out); out.on('finish', () => resolve()); out.on('error', reject); stream.on('error', reject); });
  await done;
}

/**
 * Unpacks a tar body whose entries all sit under `<name>/` into `<parent>/<name>`.
 * Entries elsewhere (absolute, `..`, another top directory) make it fail.
 */
export async function untarInto(body: AsyncIterable<Buffer>, parent: string, name: string): Promise<void> {
  fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
  const staging = path.join(parent, `.upload-${crypto.randomBytes(6).toString('hex')}`);
  fs.mkdirSync(staging, { mode: 0o700 });
  try {
    const child = spawn('tar', ['-x', '-f', '-', '-C', staging, '--no-same-owner', '--no-same-permissions'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.stdin.on('error', () => {});
    for await (const chunk of body) {
      if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
    }
    child.stdin.end();
    const code = await closed;
    if (code !== 0) throw new RoostError('BAD_REQUEST', `the body is not a readable tar archive: ${err.trim().split('\n')[0] ?? ''}`);
    const top = fs.readdirSync(staging);
    if (top.length !== 1 || top[0] !== name || !fs.statSync(path.join(staging, name)).isDirectory()) {
      throw new RoostError('BAD_REQUEST', `the archive must hold exactly one directory "${name}/" (found: ${top.slice(0, 5).join(', ') || 'nothing'})`);
    }
    const link = findSymlink(path.join(staging, name));
    if (link) throw new RoostError('BAD_REQUEST', `the archive holds a symbolic link (${path.relative(staging, link)}); backups never do`);
    const target = path.join(parent, name);
    if (fs.existsSync(target)) throw new RoostError('ALREADY_EXISTS', `backup ${name} already exists on this server`);
    fs.renameSync(path.join(staging, name), target);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

function findSymlink(dir: string): string | undefined {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) return p;
    if (e.isDirectory()) { const f = findSymlink(p); if (f) return f; }
  }
  return undefined;
}
