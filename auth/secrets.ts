/**
 * Secrets at rest: AES-256-GCM with the server's key (`ROOST_SECRET_KEY`, else
 * `<data>/secret-key`, generated once with mode 0600). Output is
 * `v1.<iv>.<tag>.<ciphertext>` in base64url.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StartRefused } from '../src/errors.js';

/** The start cannot use the secret key it was given or found: one line, the server does not start. */
export class SecretKeyProblem extends StartRefused {}

/** What `secret-key.check` holds, sealed with the data directory's key. */
const KEY_CHECK = 'roost secret key check';

export class SecretBox {
  #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('secret key must be 32 bytes');
    this.#key = key;
  }

  /** Loads the key from config or the data directory, creating it on first start. */
  static open(dataDir: string, hexKey: string | undefined): { box: SecretBox; created: boolean } {
    const opened = SecretBox.#loadKey(dataDir, hexKey);
    // The key the directory's secrets were sealed with, checked: started without it (the
    // environment's key not given again), a new key was made and everything sealed before was
    // unreadable, with no word at start.
    const check = path.join(dataDir, 'secret-key.check');
    let sealed: string | undefined;
    try { sealed = fs.readFileSync(check, 'utf8').trim(); } catch { /* none yet */ }
    // (Not a sealed value at all — cut short somehow —: written again, as none.)
    if (sealed !== undefined && sealed.split('.').length !== 4) sealed = undefined;
    if (sealed !== undefined) {
      let ok = false;
      try { ok = opened.box.open(sealed) === KEY_CHECK; } catch { ok = false; }
      if (!ok) {
        if (opened.created) fs.rmSync(path.join(dataDir, 'secret-key'), { force: true });
        throw new SecretKeyProblem(`the data directory ${dataDir} was sealed with another secret key than ${hexKey ? 'ROOST_SECRET_KEY / --secret-key' : opened.created ? 'none (a new one would have been made)' : `${path.join(dataDir, 'secret-key')}`}: start it with the key it was started with (ROOST_SECRET_KEY, or the secret-key file)`);
      }
    } else {
      // (Not written on a disk that refuses it: the start goes on to say what it cannot write.)
      try {
        const tmp = `${check}.tmp-${process.pid}`;
        fs.writeFileSync(tmp, opened.box.seal(KEY_CHECK) + '\n', { mode: 0o600 });
        fs.renameSync(tmp, check);
      } catch { /* next start */ }
    }
    return opened;
  }

  static #loadKey(dataDir: string, hexKey: string | undefined): { box: SecretBox; created: boolean } {
    if (hexKey) return { box: new SecretBox(Buffer.from(hexKey, 'hex')), created: false };
    const file = path.join(dataDir, 'secret-key');
    if (fs.existsSync(file)) {
      const hex = fs.readFileSync(file, 'utf8').trim();
      if (!/^[0-9a-f]{64}$/i.test(hex)) throw new SecretKeyProblem(`${file} is not a 64-hex-character key; put back the key the data directory was started with (or give it as ROOST_SECRET_KEY)`);
      return { box: new SecretBox(Buffer.from(hex, 'hex')), created: false };
    }
    const hex = crypto.randomBytes(32).toString('hex');
    fs.writeFileSync(file, hex + '\n', { mode: 0o600, flag: 'wx' });
    return { box: new SecretBox(Buffer.from(hex, 'hex')), created: true };
  }

  seal(plain: string): string {
    const iv = crypto.randomBytes(12);
    const c = crypto.createCipheriv('aes-256-gcm', this.#key, iv);
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }

  open(sealed: string): string {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('not a sealed secret');
    const d = crypto.createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}
