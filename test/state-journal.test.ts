import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { JournalStore } from '../src/state/journal-store.js';
import { State } from '../src/state/state.js';
import { tempDir } from './helpers/server.js';

async function open(dir: string) {
  const s = new State(new JournalStore(dir));
  const recovered = await s.open();
  return { s, recovered };
}

describe('state keys named like JavaScript\'s own members', () => {
  it('__proto__ and constructor are ordinary keys: no prototype is reached or replaced, also after a reopen', async () => {
    const dir = tempDir();
    const { s } = await open(dir);
    expect(s.get('tenants', 'constructor')).toBeUndefined();
    expect(s.get('toString')).toBeUndefined();
    await s.write([{ op: 'put', path: ['datasources', 't', 'w', '__proto__'], value: { name: '__proto__' } }]);
    await s.write([{ op: 'put', path: ['revocations', 'subjects', 't', '__proto__', 'polluted'], value: 1 }]);
    await s.write([{ op: 'put', path: ['pipes', 't', 'w', 'constructor'], value: { name: 'constructor' } }]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(s.get('datasources', 't', 'w', '__proto__')).toEqual({ name: '__proto__' });
    expect(s.list('datasources', 't', 'w')).toEqual([{ name: '__proto__' }]);
    expect(s.get('pipes', 't', 'w', 'constructor')).toEqual({ name: 'constructor' });
    expect(s.get('pipes', 't', 'w', 'toString')).toBeUndefined();
    await s.write([{ op: 'del', path: ['datasources', 't', 'w', '__proto__'] }, { op: 'del', path: ['pipes', 't', 'w', 'hasOwnProperty'] }]);
    expect(s.list('datasources', 't', 'w')).toEqual([]);
    await s.close();
    const { s: again } = await open(dir);
    expect(again.get('revocations', 'subjects', 't', '__proto__', 'polluted')).toBe(1);
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(again.get('pipes', 't', 'w', 'constructor')).toEqual({ name: 'constructor' });
    await again.close();
  });
});

describe('journal state store', () => {
  it('replays acknowledged writes after reopening', async () => {
    const dir = tempDir();
    const { s } = await open(dir);
    await s.write([{ op: 'put', path: ['tenants', 'a'], value: { slug: 'a' } }]);
    await s.write([{ op: 'put', path: ['tenants', 'b'], value: { slug: 'b' } }]);
    await s.write([{ op: 'del', path: ['tenants', 'a'] }]);
    await s.close();
    const { s: again } = await open(dir);
    expect(again.get('tenants')).toEqual({ b: { slug: 'b' } });
    expect(again.seq).toBe(3);
    await again.close();
  });

  it('a journal torn in the middle of its last record recovers to the last whole record', async () => {
    const dir = tempDir();
    const { s } = await open(dir);
    for (let i = 0; i < 5; i++) await s.write([{ op: 'put', path: ['n', String(i)], value: i }]);
    await s.close();
    const file = path.join(dir, 'journal.log');
    const full = fs.statSync(file).size;
    // Cut inside the last record (past its header).
    fs.truncateSync(file, full - 7);
    const { s: again, recovered } = await open(dir);
    expect(Object.keys(again.get<Record<string, number>>('n')!)).toEqual(['0', '1', '2', '3']);
    expect(recovered.join()).toMatch(/cut \d+ bytes of a torn journal tail/);
    // The cut bytes are kept beside the journal.
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('journal.log.torn-'))).toHaveLength(1);
    // The torn tail was cut off: new writes land after the last whole record.
    await again.write([{ op: 'put', path: ['n', 'x'], value: 'x' }]);
    await again.close();
    const { s: third, recovered: r3 } = await open(dir);
    expect(third.get('n', 'x')).toBe('x');
    expect(third.get('n', '4')).toBeUndefined();
    expect(r3).toEqual([]);
    await third.close();
  });

  it('a torn header (fewer than 8 bytes) is dropped too', async () => {
    const dir = tempDir();
    const { s } = await open(dir);
    await s.write([{ op: 'put', path: ['k'], value: 1 }]);
    await s.close();
    fs.appendFileSync(path.join(dir, 'journal.log'), Buffer.from([9, 0, 0]));
    const { s: again, recovered } = await open(dir);
    expect(again.get('k')).toBe(1);
    expect(recovered).toHaveLength(1);
    await again.close();
  });

  it('a record whose checksum does not match is never applied', async () => {
    const dir = tempDir();
    const { s } = await open(dir);
    await s.write([{ op: 'put', path: ['k'], value: 'good' }]);
    await s.write([{ op: 'put', path: ['k'], value: 'bad!' }]);
    await s.close();
    const file = path.join(dir, 'journal.log');
    const buf = fs.readFileSync(file);
    const i = buf.lastIndexOf(Buffer.from('bad!'));
    buf[i] = 'B'.charCodeAt(0);
    fs.writeFileSync(file, buf);
    const { s: again } = await open(dir);
    expect(again.get('k')).toBe('good');
    await again.close();
  });

  it('damage with whole records after it is not cut: the store does not open, and the journal is left as it was', async () => {
    const dir = tempDir();
    const { s } = await open(dir);
    for (let i = 0; i < 20; i++) await s.write([{ op: 'put', path: ['n', String(i)], value: `value-${i}` }]);
    await s.write([{ op: 'del', path: ['n', '3'] }]);
    await s.close();
    const file = path.join(dir, 'journal.log');
    const buf = fs.readFileSync(file);
    // One byte flipped in the middle record (a disk's damage, not a crash's torn tail).
    const i = buf.indexOf(Buffer.from('value-10'));
    buf[i + 2] ^= 0x20;
    fs.writeFileSync(file, buf);
    await expect(open(dir)).rejects.toThrow(/journal .* is damaged at byte \d+, with \d+ bytes of records after it.*restore the state directory from a backup/);
    expect(fs.readFileSync(file)).toEqual(buf);  // not truncated
    // A damaged length field too (the record then seems to run past the end).
    const buf2 = Buffer.from(buf);
    buf2[i + 2] ^= 0x20;  // (mended)
    const j = buf2.indexOf(Buffer.from('{"seq":5,'));
    buf2.writeUInt32LE(1 << 30, j - 8);
    fs.writeFileSync(file, buf2);
    await expect(open(dir)).rejects.toThrow(/is damaged at byte/);
  });

  it('concurrent writers are serialised and all acknowledged', async () => {
    const dir = tempDir();
    const { s } = await open(dir);
    await Promise.all(Array.from({ length: 200 }, (_, i) => s.write([{ op: 'put', path: ['c', String(i)], value: i }])));
    await s.close();
    const { s: again } = await open(dir);
    expect(Object.keys(again.get<object>('c')!)).toHaveLength(200);
    expect(again.seq).toBe(200);
    await again.close();
  });

  it('compacts into a snapshot and keeps every change', async () => {
    const dir = tempDir();
    const { s } = await open(dir);
    const big = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 80; i++) await s.write([{ op: 'put', path: ['big', String(i % 10)], value: `${i}:${big}` }]);
    await s.close();
    expect(fs.existsSync(path.join(dir, 'snapshot.json'))).toBe(true);
    expect(fs.statSync(path.join(dir, 'journal.log')).size).toBeLessThan(4 * 1024 * 1024);
    const { s: again } = await open(dir);
    expect(String(again.get('big', '9')).startsWith('79:')).toBe(true);
    expect(again.seq).toBe(80);
    await again.close();
  });

  it('a transaction that throws writes nothing', async () => {
    const dir = tempDir();
    const { s } = await open(dir);
    await expect(s.transact(() => { throw new Error('no'); })).rejects.toThrow('no');
    await s.write([{ op: 'put', path: ['ok'], value: true }]);
    expect(s.seq).toBe(1);
    await s.close();
  });
});
