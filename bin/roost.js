#!/usr/bin/env node
// The `roost` command: runs the compiled CLI (npm install builds it into dist/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'src', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write('roost: not built yet; run "npm install" (or "npm run build") first\n');
  process.exit(1);
}
const { main } = await import(cli);
try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`roost: ${e && e.stack ? e.stack : e}\n`);
  process.exitCode = 1;
}
