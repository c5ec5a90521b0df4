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
import { checkBackupFiles, readManifest } from './backup.js';

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
  try {
    await new Promise<void>((resolve, reject) => { stream.pipe(out); out.on('finish', () => resolve()); out.on('error', reject); stream.on('error', reject); });
    await done;
  } catch (e) {
    // A tar cut short (disk full) is not left behind looking like an archive.
    stream.destroy();
    out.destroy();
    fs.rmSync(file, { force: true });
    throw diskError(e) ?? e;
  }
}

/** The 507 of a write the disk refused (full, quota, file size limit), else undefined. */
function diskError(e: unknown, text = ''): RoostError | undefined {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG' || /No space left|Disk quota exceeded|File too large/i.test(`${text} ${(e as Error | undefined)?.message ?? ''}`)) {
    return new RoostError('INSUFFICIENT_STORAGE', 'the server could not write the backup to its disk (full, or a file size limit): nothing was kept; free space and retry', { retryable: true });
  }
  return undefined;
}

/** Staging folders of uploads running in this process; any other one is a leftover of a killed server. */
const staging = new Set<string>();

/** Removes staging folders (`.upload-*`) that no running upload owns: a server killed mid-upload left them. */
function sweepStaging(parent: string): void {
  let names: string[];
  try { names = fs.readdirSync(parent); } catch { return; }
  for (const n of names) {
    const p = path.join(parent, n);
    if (n.startsWith('.upload-') && !staging.has(p)) fs.rmSync(p, { recursive: true, force: true });
  }
}

/**
 * Unpacks a tar body whose entries all sit under `<name>/` into `<parent>/<name>`.
 * Entries elsewhere (absolute, `..`, another top directory) make it fail.
 */
export async function untarInto(body: AsyncIterable<Buffer>, parent: string, name: string): Promise<void> {
  fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
  sweepStaging(parent);
  const stage = path.join(parent, `.upload-${crypto.randomBytes(6).toString('hex')}`);
  staging.add(stage);
  fs.mkdirSync(stage, { mode: 0o700 });
  try {
    const child = spawn('tar', ['-x', '-f', '-', '-C', stage, '--no-same-owner', '--no-same-permissions'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    let exited = false;
    const closed = new Promise<number | null>((resolve) => child.on('close', (code, signal) => {
      exited = true;
      if (signal === 'SIGXFSZ') err += '\nFile too large';
      resolve(code ?? (signal ? 128 : null));
    }));
    child.stdin.on('error', () => {});
    // tar takes an archive cut at a 512-byte boundary without a word (exit 0, the files
    // after the cut missing): the body must end with tar's end-of-archive (two zero blocks).
    let total = 0;
    let tail: Buffer = Buffer.alloc(0);
    try {
      for await (const chunk of body) {
        total += chunk.length;
        tail = chunk.length >= 1024 ? chunk.subarray(-1024) : Buffer.concat([tail, chunk]).subarray(-1024);
        // tar may die mid-body (killed, or its disk refusing a write): a drain that never comes must not hold the upload for ever.
        if (exited) break;
        if (!child.stdin.write(chunk)) await Promise.race([new Promise((r) => child.stdin.once('drain', r)), closed]);
      }
    } catch (e) {
      child.kill('SIGKILL');
      await closed;
      throw e;
    }
    child.stdin.end();
    const code = await closed;
    if (code !== 0) throw diskError(undefined, err) ?? new RoostError('BAD_REQUEST', `the body is not a readable tar archive: ${err.trim().split('\n')[0] ?? ''}`);
    if (total % 512 !== 0 || tail.length < 1024 || tail.some((b) => b !== 0)) throw new RoostError('BAD_REQUEST', 'the archive is cut short (it does not end with tar\'s end-of-archive blocks): upload the whole file');
    const top = fs.readdirSync(stage);
    if (top.length !== 1 || top[0] !== name || !fs.statSync(path.join(stage, name)).isDirectory()) {
      throw new RoostError('BAD_REQUEST', `the archive must hold exactly one directory "${name}/" (found: ${top.slice(0, 5).join(', ') || 'nothing'})`);
    }
    const link = findSymlink(path.join(stage, name));
    if (link) throw new RoostError('BAD_REQUEST', `the archive holds a symbolic link (${path.relative(stage, link)}); backups never do`);
    checkComplete(path.join(stage, name), name);
    const target = path.join(parent, name);
    if (fs.existsSync(target)) throw new RoostError('ALREADY_EXISTS', `backup ${name} already exists on this server`);
    fs.renameSync(path.join(stage, name), target);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
    staging.delete(stage);
  }
}

/**
 * Refuses (400) an unpacked backup that is not whole: no manifest (a truncated archive
 * answered 404 "no complete backup" to its upload), a manifest of another id, no
 * state.json, or workspaces without the engine's backup metadata; and anything but
 * directories and regular files. Checked before it is put in place.
 */
function checkComplete(dir: string, id: string): void {
  checkBackupFiles(dir);
  let m;
  try { m = readManifest(dir, { placed: false }); } catch (e) {
    if ((e as RoostError).code === 'NOT_FOUND') throw new RoostError('BAD_REQUEST', 'the archive holds no readable manifest.json: it is cut short or not a Roost backup');
    throw e;
  }
  if (m.id !== id) throw new RoostError('BAD_REQUEST', `the archive is backup ${m.id}, not ${id}`);
  if (!fs.statSync(path.join(dir, 'state.json'), { throwIfNoEntry: false })?.isFile()) throw new RoostError('BAD_REQUEST', 'the archive holds no state.json: it is cut short or damaged');
  if (m.workspaces.length && !fs.statSync(path.join(dir, 'data', '.backup'), { throwIfNoEntry: false })?.isFile()) throw new RoostError('BAD_REQUEST', 'the archive holds no data/.backup (the engine\'s list of the backup\'s files): it is cut short or damaged');
}

function findSymlink(dir: string): string | undefined {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) return p;
    if (e.isDirectory()) { const f = findSymlink(p); if (f) return f; }
  }
  return undefined;
}
