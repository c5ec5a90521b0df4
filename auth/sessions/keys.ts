/**
 * Roost's session signing keys: ES256 key pairs, the newest signs, all
 * unexpired ones verify. Private keys are sealed with the server key in the
 * control-plane state (`sessionKeys/<kid>`), public keys are served at
 * `/.well-known/jwks.json`. A key signs for `ROTATE_MS`, then a new one takes
 * over; the old one stays for verification until its last session expired.
 */
import crypto from 'node:crypto';
import * as jose from 'jose';
import type { App } from '../../src/app.js';

export const SESSION_ALG = 'ES256';
export const ROTATE_MS = 24 * 3600_000;
export const SESSION_TTL_S = 3600;

interface StoredKey { kid: string; alg: string; publicJwk: jose.JWK; privateSealed: string; createdAt: number }
interface Loaded { kid: string; publicKey: CryptoKey; privateKey?: CryptoKey }

export class SessionKeys {
  #app: App;
  #loaded = new Map<string, Loaded>();
  #ensuring: Promise<void> | undefined;

  constructor(app: App) {
    this.#app = app;
  }

  #stored(): StoredKey[] {
    return this.#app.state.list<StoredKey>('sessionKeys').sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Makes sure a current signing key exists and drops keys no session can still use. */
  ensure(now = Date.now()): Promise<void> {
    const newest = this.#stored().at(-1);
    if (newest && now - newest.createdAt < ROTATE_MS) return Promise.resolve();
    const p = this.#ensuring ?? this.rotate(now).then(() => undefined).finally(() => { this.#ensuring = undefined; });
    this.#ensuring = p;
    return p;
  }

  /** Adds a new signing key now (older keys keep verifying until they expire). */
  async rotate(now = Date.now()): Promise<string> {
    const { publicKey, privateKey } = await jose.generateKeyPair(SESSION_ALG, { extractable: true });
    const kid = crypto.randomBytes(12).toString('base64url');
    const publicJwk = { ...(await jose.exportJWK(publicKey)), kid, alg: SESSION_ALG, use: 'sig' };
    const privateSealed = this.#app.secrets.seal(JSON.stringify(await jose.exportJWK(privateKey)));
    const keep = ROTATE_MS + SESSION_TTL_S * 1000 + 3600_000;
    await this.#app.state.transact((s) => {
      const stale = s.list<StoredKey>('sessionKeys').filter((k) => now - k.createdAt > keep);
      return {
        ops: [
          ...stale.map((k) => ({ op: 'del' as const, path: ['sessionKeys', k.kid] })),
          { op: 'put' as const, path: ['sessionKeys', kid], value: { kid, alg: SESSION_ALG, publicJwk, privateSealed, createdAt: now } satisfies StoredKey },
        ],
        result: undefined,
      };
    });
    for (const k of this.#loaded.keys()) if (!this.#app.state.get('sessionKeys', k)) this.#loaded.delete(k);
    return kid;
  }

  async #load(k: StoredKey, withPrivate: boolean): Promise<Loaded> {
    let l = this.#loaded.get(k.kid);
    if (!l || (withPrivate && !l.privateKey)) {
      const publicKey = await jose.importJWK(k.publicJwk, SESSION_ALG) as CryptoKey;
      const privateKey = withPrivate ? await jose.importJWK(JSON.parse(this.#app.secrets.open(k.privateSealed)) as jose.JWK, SESSION_ALG) as CryptoKey : l?.privateKey;
      l = { kid: k.kid, publicKey, privateKey };
      this.#loaded.set(k.kid, l);
    }
    return l;
  }

  /** The key that signs new sessions. */
  async signing(): Promise<{ kid: string; key: CryptoKey }> {
    await this.ensure();
    const newest = this.#stored().at(-1)!;
    const l = await this.#load(newest, true);
    return { kid: l.kid, key: l.privateKey! };
  }

  /** A verification key by id; undefined when Roost does not know (or no longer keeps) it. */
  async verifying(kid: string | undefined): Promise<CryptoKey | undefined> {
    if (!kid) return undefined;
    const cached = this.#loaded.get(kid);
    if (cached && this.#app.state.get('sessionKeys', kid)) return cached.publicKey;
    const k = this.#app.state.get<StoredKey>('sessionKeys', kid);
    return k ? (await this.#load(k, false)).publicKey : undefined;
  }

  /** The public JWKS. */
  jwks(): { keys: jose.JWK[] } {
    return { keys: this.#stored().reverse().map((k) => k.publicJwk) };
  }
}
