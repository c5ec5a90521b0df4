/**
 * The operator credential: `ROOST_OPERATOR_TOKEN`, or a token generated at
 * first start into `<data>/operator-token` (mode 0600). Only its hash is kept
 * in memory after start.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StartRefused } from '../src/errors.js';

export interface OperatorToken {
  file: string | undefined;
  created: boolean;
  /** Whether a presented secret is the operator token, from its SHA-256 in hex (`hashToken`). */
  matchesHash(sha256Hex: string): boolean;
}

/** The operator token file cannot be used: one line, the server does not start. */
export class OperatorTokenProblem extends StartRefused {}

export function loadOperatorToken(dataDir: string, fromEnv: string | undefined): OperatorToken {
  let secret = fromEnv;
  let file: string | undefined;
  let created = false;
  if (!secret) {
    file = path.join(dataDir, 'operator-token');
    if (fs.existsSync(file)) {
      secret = fs.readFileSync(file, 'utf8').trim();
      // Held to the rule a flag or environment value is (32 characters at least): a file of
      // 'short' was accepted, and an empty one started a server no operator could reach.
      if (secret.length < 32) throw new OperatorTokenProblem(`${file} holds ${secret.length ? `a token of ${secret.length} characters` : 'no token'}; an operator token has at least 32: put one there (or remove the file to have a new one made at start, or give ROOST_OPERATOR_TOKEN)`);
      const mode = fs.statSync(file).mode & 0o777;
      if (mode & 0o077) fs.chmodSync(file, 0o600);
    } else {
      secret = 'op.' + crypto.randomBytes(32).toString('base64url');
      fs.writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' });
      created = true;
    }
  }
  const digest = crypto.createHash('sha256').update(secret).digest();
  return {
    file,
    created,
    matchesHash(sha256Hex: string) {
      const d = Buffer.from(sha256Hex, 'hex');
      return d.length === digest.length && crypto.timingSafeEqual(d, digest);
    },
  };
}
