/**
 * Loads the C++ addon built by node-gyp during `npm install`. Every other module
 * reaches native code through this one seam, which also checks the build is current.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { existsSync } from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Finds the project root (the folder holding package.json) from src/ or dist/src/. */
function projectRoot(): string {
  let dir = here;
  for (let i = 0; i < 5; i++) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'binding.gyp'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find the project root above ${here}`);
}

export const EXPECTED_CORE_VERSION = '0.1.0';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeAddon = Record<string, any> & {
  coreVersion(): string;
  fnv1a64(buf: Buffer): bigint;
};

let cached: NativeAddon | undefined;

export function native(): NativeAddon {
  if (cached) return cached;
  const file = path.join(projectRoot(), 'build', 'Release', 'roost_native.node');
  if (!existsSync(file)) {
    throw new Error(`native addon missing at ${file}: run "npm install" (or "npm run build:native")`);
  }
  const req = createRequire(import.meta.url);
  const addon = req(file) as NativeAddon;
  const v = addon.coreVersion();
  if (v !== EXPECTED_CORE_VERSION) {
    throw new Error(`native addon is version ${v}, expected ${EXPECTED_CORE_VERSION}: run "npm run build:native"`);
  }
  cached = addon;
  return addon;
}
