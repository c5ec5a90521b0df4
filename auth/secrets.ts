/**
 * Secrets at rest: AES-256-GCM with the server's key (`ROOST_SECRET_KEY`, else
 * `<data>/secret-key`, generated once with mode 0600). Output is
 * `v1.<iv>.<tag>.<ciphertext>` in base64url.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export class SecretBox {
  #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== 32) throw new Error('secret key must be 32 bytes');
    this.#key = key;
  }

  /** Loads the key from config or the data directory, creating it on first start. */
  static open(dataDir: string, hexKey: string | undefined): { box: SecretBox; created: boolean } {
    if (hexKey) return { box: new SecretBox(Buffer.from(hexKey, 'hex')), created: false };
    const file = path.join(dataDir, 'secret-key');
    if (fs.existsSync(file)) {
      const hex = fs.readFileSync(file, 'utf8').trim();
      if (!/^[0-9a-f]{64}$/i.test(hex)) throw new Error(`${file} is not a 64-hex-character key`);
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
