/**
 * An OpenID provider (`oidc-provider`) run in-process on loopback: the
 * development IdP of `roost serve --dev` and the IdP of the end-to-end tests.
 * Its login page lists demo accounts (no passwords); consent is implied.
 * Supports PKCE, RFC 9207 `iss`, RP-initiated and back-channel logout, and
 * JWT access tokens for a resource (`resource=<audience>`, client credentials).
 * `oidc-provider` is a development dependency: it is loaded only here.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import * as jose from 'jose';

export interface DemoAccount { id: string; claims: Record<string, unknown> }
export interface DemoClient {
  client_id: string;
  client_secret: string;
  redirect_uris?: string[];
  post_logout_redirect_uris?: string[];
  backchannel_logout_uri?: string;
  /** Extra claims put into this client's client-credentials access tokens. */
  token_claims?: Record<string, unknown>;
}
export interface DevProviderOptions {
  port?: number;
  accounts: DemoAccount[];
  clients: DemoClient[];
  /** Audience of JWT access tokens issued with `resource=<audience>`. */
  audience?: string;
  /** Private signing JWKs (generated when absent); the first signs. */
  keys?: jose.JWK[];
  /**
   * Algorithm of the generated key and of ID and access tokens (default RS256, what most
   * IdPs use). ES256 keys cost well under a millisecond to make, RSA keys ~0.2 s of CPU:
   * the development IdP of `roost serve --dev`, started with every dev server, uses ES256.
   */
  alg?: 'RS256' | 'ES256';
  accessTokenTtl?: number;
  /** Tests: awaited before the provider answers a request (by path), to hold one answer. */
  hold?: (path: string) => Promise<void> | void;
}
export interface DevProvider {
  issuer: string;
  port: number;
  keys: jose.JWK[];
  close(): Promise<void>;
}

const LOOPBACK = '127.0.0.1';

export async function signingKey(alg: 'RS256' | 'ES256' = 'RS256'): Promise<jose.JWK> {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { ...(await jose.exportJWK(privateKey)), kid: crypto.randomBytes(8).toString('hex'), alg, use: 'sig' };
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]!));
}

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req) { n += (c as Buffer).length; if (n > 65536) throw new Error('form too large'); parts.push(c as Buffer); }
  return new URLSearchParams(Buffer.concat(parts).toString('utf8'));
}

/**
 * Starts the provider on loopback (never anything else). The listening socket, the issuer
 * and the keys are ready when this returns; `oidc-provider` itself (with koa, ~0.15 s of
 * CPU to load) is loaded and configured on the first request, so a development server
 * whose IdP nobody uses never pays for it. Whether the package can be loaded is checked
 * here, so a missing one still fails the start.
 */
export async function startDevProvider(opts: DevProviderOptions): Promise<DevProvider> {
  const spec = 'oidc-provider';
  createRequire(import.meta.url).resolve(spec);
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(opts.port ?? 0, LOOPBACK, () => resolve()); });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://${LOOPBACK}:${port}`;
  const keys = opts.keys ?? [await signingKey(opts.alg)];
  const alg = (keys[0]?.alg as string | undefined) ?? opts.alg ?? 'RS256';
  const accounts = new Map(opts.accounts.map((a) => [a.id, a]));
  const clientClaims = new Map(opts.clients.map((c) => [c.client_id, c.token_claims]));
  const audience = opts.audience;

  let loading: Promise<{ provider: any; callback: (req: http.IncomingMessage, res: http.ServerResponse) => void }> | undefined;
  const load = () => (loading ??= (async () => {
    const mod = await import(spec) as { default: new (issuer: string, config: unknown) => any };
    const Provider = mod.default;
    const provider = new Provider(issuer, {
      clients: opts.clients.map((c) => ({
        client_id: c.client_id, client_secret: c.client_secret,
        redirect_uris: c.redirect_uris ?? [], post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
        response_types: c.redirect_uris?.length ? ['code'] : [],
        id_token_signed_response_alg: alg,
        grant_types: c.redirect_uris?.length ? ['authorization_code', 'client_credentials'] : ['client_credentials'],
        ...(c.backchannel_logout_uri ? { backchannel_logout_uri: c.backchannel_logout_uri, backchannel_logout_session_required: true } : {}),
      })),
      jwks: { keys },
      cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
      scopes: ['openid', 'email', 'profile', 'groups', 'api'],
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
      pkce: { required: () => true },
      // This IdP and Roost both live on loopback: let its back-channel calls reach Roost
      // (oidc-provider's outgoing requests refuse special-use addresses by default).
      fetch: (url: string, options: RequestInit & { dispatcher?: unknown }) => { delete options.dispatcher; return globalThis.fetch(url, options); },
      findAccount: async (_ctx: unknown, id: string) => {
        const a = accounts.get(id);
        return a ? { accountId: id, claims: async () => ({ sub: id, ...a.claims }) } : undefined;
      },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      loadExistingGrant: async (ctx: any) => {
        const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
        if (grantId) {
          const g = await ctx.oidc.provider.Grant.find(grantId);
          if (g) return g;
        }
        const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
        grant.addOIDCScope('openid email profile groups');
        await grant.save();
        return grant;
      },
      extraTokenClaims: async (_ctx: unknown, token: any) => (token.kind === 'ClientCredentials' ? clientClaims.get(token.clientId) : undefined),
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        backchannelLogout: { enabled: true },
        rpInitiatedLogout: { enabled: true },
        resourceIndicators: {
          enabled: !!audience,
          defaultResource: async () => undefined,
          useGrantedResource: async () => false,
          getResourceServerInfo: async (_ctx: unknown, resource: string) => {
            if (resource !== audience) throw new Error('unknown resource');
            return { scope: 'api', audience, accessTokenFormat: 'jwt', accessTokenTTL: opts.accessTokenTtl ?? 600, jwt: { sign: { alg } } };
          },
        },
      },
      ttl: { AccessToken: opts.accessTokenTtl ?? 600, ClientCredentials: opts.accessTokenTtl ?? 600, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
    });
    provider.on('server_error', () => { /* surfaced to the client as server_error */ });
    return { provider, callback: provider.callback() as (req: http.IncomingMessage, res: http.ServerResponse) => void };
  })());

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    // Any failure (loading the library, or answering) is this request's 500, never an unhandled
    // rejection that would end the server the IdP runs in.
    load().then(({ provider, callback }) => answer(provider, callback, req, res)).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`development IdP unavailable: ${(e as Error).message}`);
      else res.destroy();
    });
  });

  function answer(provider: any, callback: (req: http.IncomingMessage, res: http.ServerResponse) => void, req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', issuer);
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(url.pathname);
    if (!m) {
      if (!opts.hold) return callback(req, res);
      void Promise.resolve(opts.hold(url.pathname)).then(() => callback(req, res), () => res.writeHead(503).end());
      return;
    }
    void (async () => {
      try {
        const details = await provider.interactionDetails(req, res);
        if (m[2] && req.method === 'POST') {
          const form = await readForm(req);
          const account = form.get('account') ?? '';
          if (!accounts.has(account)) { res.writeHead(400, { 'Content-Type': 'text/plain' }).end('unknown account'); return; }
          await provider.interactionFinished(req, res, { login: { accountId: account } }, { mergeWithLastSubmission: false });
          return;
        }
        if (details.prompt.name === 'consent') {
          // Consent is implied for these first-party demo clients: loadExistingGrant makes the grant.
          await provider.interactionFinished(req, res, { consent: {} }, { mergeWithLastSubmission: true });
          return;
        }
        const items = [...accounts.values()].map((a) => `<li><form method="post" action="/interaction/${esc(m[1]!)}/login"><input type="hidden" name="account" value="${esc(a.id)}"><button type="submit">${esc(String(a.claims.email ?? a.id))}</button> ${esc(JSON.stringify(a.claims.groups ?? []))}</form></li>`).join('');
        const html = `<!doctype html><html><head><meta charset="utf-8"><title>Development IdP</title></head><body style="font-family:sans-serif;max-width:36em;margin:4em auto"><h1>Development identity provider</h1><p>Pick a demo identity (no password: development only).</p><ul>${items}</ul></body></html>`;
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(html);
      } catch (e) {
        if (!res.headersSent) res.writeHead(400, { 'Content-Type': 'text/plain' }).end(`interaction failed: ${(e as Error).message}`);
      }
    })();
  }

  return {
    issuer, port, keys,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}
