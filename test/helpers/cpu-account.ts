/**
 * A setup file for measuring, not testing: with ROOST_TEST_CPU=<file> set, each test file appends
 * one line to <file>: its CPU seconds (the worker's own plus its waited-for children's: the
 * servers it started and their cells), the worker's own, the children's, its wall seconds, and
 * its path. A server killed with SIGKILL leaves its cell's time uncounted. Sort with `sort -rn`.
 * Used to find where the suite's time goes (docs/decisions.md, fortieth session).
 */
import fs from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';

const out = process.env.ROOST_TEST_CPU;

function cpu(): { self: number; kids: number } {
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  const ticks = (i: number) => Number(f[i]) / 100;
  return { self: ticks(11) + ticks(12), kids: ticks(13) + ticks(14) };
}

if (out) {
  let base = cpu();
  let t0 = performance.now();
  beforeAll(() => { base = cpu(); t0 = performance.now(); });
  afterAll(async () => {
    await new Promise((r) => setTimeout(r, 300)); // (children stopped in the file's own afterAll are reaped)
    const now = cpu();
    const self = now.self - base.self;
    const kids = now.kids - base.kids;
    const file = String(expect.getState().testPath ?? '?').replace(`${process.cwd()}/`, '');
    fs.appendFileSync(out, `${(self + kids).toFixed(2)} ${self.toFixed(2)} ${kids.toFixed(2)} ${((performance.now() - t0) / 1000).toFixed(1)} ${file}\n`);
  });
}
