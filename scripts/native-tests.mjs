// Runs the C++ unit tests (doctest). Without the doctest headers they are skipped
// loudly on a developer machine and fail under CI=true.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';

const header = ['/usr/include/doctest/doctest.h', '/usr/local/include/doctest/doctest.h'].find(existsSync);
if (!header) {
  const msg = 'native tests: doctest headers missing (apt-get install doctest-dev)';
  if (process.env.CI === 'true') { console.error(`FAIL ${msg}`); process.exit(1); }
  console.error(`\n!!! SKIPPED ${msg}\n`);
  process.exit(0);
}
// One compiler per core: the objects are independent (native/Makefile).
const jobs = String(Math.max(1, os.availableParallelism?.() ?? os.cpus().length));
const r = spawnSync('make', ['-s', '-j', jobs, '-C', 'native', 'test'], { stdio: 'inherit' });
process.exit(r.status ?? 1);
