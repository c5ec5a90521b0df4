/**
 * IdP access tokens across tenants (a black-box round of the twenty-first session), over real
 * HTTP with real in-process IdPs:
 * - a tenant admin could add a connection with another tenant's issuer and an audience that
 *   tenant's tokens carry besides their own (Keycloak's `account`): every such token became
 *   ambiguous, so refused — one tenant's admin locked another tenant's scripts out, and the
 *   refusal was in no tenant's audit log;
 * - anyone could write records into a tenant's audit log without limit by sending unsigned
 *   tokens naming its issuer; a wrong-audience failure was recorded in whichever tenant's
 *   connection was found first, another tenant's log when two take tokens of one IdP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as jose from 'jose';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { clientCredentialsToken } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
let op: string;
const idps: Record<string, DevProvider> = {};
const AUD = 'https://roost.test/idt';
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const u = (p: string) => `${srv.url}${p}`;
const cc = (slug: string) => clientCredentialsToken(idps[slug]!.issuer, `${slug}-admin`, `${slug}-admin-secret-0123456789`, `${AUD}/${slug}`);
const audits = (pred: (a: Record<string, any>) => boolean) => srv.logs.filter((l) => l.msg === 'audit' && pred(l));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A token signed with the IdP's own key (as it would issue one), with the claims given. */
async function signed(slug: string, claims: Record<string, unknown>): Promise<string> {
  const jwk = idps[slug]!.keys[0]!;
  const key = await jose.importJWK(jwk, 'RS256');
  return new jose.SignJWT({ scope: 'api', ...claims }).setProtectedHeader({ alg: 'RS256', kid: jwk.kid!, typ: 'at+jwt' })
    .setIssuer(idps[slug]!.issuer).setSubject(`${slug}-admin`).setIssuedAt().setExpirationTime('5m').sign(key);
}

beforeAll(async () => {
  // --login-rate 2: a burst of 20 failures per client address.
  srv = await startServer({ dev: false, args: ['--login-rate', '2'] });
  op = srv.operatorToken;
  for (const slug of ['ta', 'tb']) {
    idps[slug] = await startDevProvider({
      accounts: [],
      clients: [{ client_id: `${slug}-admin`, client_secret: `${slug}-admin-secret-0123456789`, token_claims: { groups: [`${slug}-admin`] } }],
      audience: `${AUD}/${slug}`,
    });
    expect((await call(u('/v0/tenants'), { method: 'POST', token: op, ...json({ slug }) })).status).toBe(201);
    expect((await call(u(`/v0/tenants/${slug}/connections`), { method: 'POST', token: op, ...json({ id: 'idp', issuer: idps[slug]!.issuer, client_id: 'roost', accept_idp_access_tokens: true, audience: `${AUD}/${slug}` }) })).status).toBe(201);
    expect((await call(u(`/v0/tenants/${slug}/mappings`), { method: 'PUT', token: op, ...json({ rules: [{ claim: 'groups', match: { equals: `${slug}-admin` }, grant: { role: 'tenant:admin' } }] }) })).status).toBe(200);
  }
}, 120_000);

afterAll(async () => { await srv?.stop(); for (const i of Object.values(idps)) await i.close(); });

describe('a tenant admin cannot make another tenant\'s IdP tokens ambiguous', () => {
  it('a connection taking tokens of another tenant\'s issuer is the operator\'s to set up; an ambiguous token is refused in both tenants\' logs', async () => {
    const tbAdmin = await cc('tb');
    // ta's scripts: a token with ta's audience and the IdP's generic one, as Keycloak issues them.
    const taToken = await signed('ta', { aud: [`${AUD}/ta`, 'account'], groups: ['ta-admin'] });
    expect((await call(u('/v0/tenants/ta/workspaces'), { token: taToken })).status).toBe(200);
    const r = await call(u('/v0/tenants/tb/connections'), { method: 'POST', token: tbAdmin, ...json({ id: 'acct', issuer: idps.ta!.issuer, client_id: 'x', accept_idp_access_tokens: true, audience: 'account' }) });
    expect(r).toMatchObject({ status: 409, body: { code: 'CONFLICT' } });
    expect(r.body.error).toMatch(/operator/);
    expect(r.text).not.toMatch(/"ta"|\bta\b/);
    expect((await call(u('/v0/tenants/tb/connections/acct'), { token: op })).status).toBe(404);
    let denied: Record<string, any> | undefined;
    for (let i = 0; i < 40 && !denied; i++) {
      denied = audits((a) => a.event === 'connection.created' && a.resource === 'connection:acct' && a.outcome === 'denied')[0];
      if (!denied) await sleep(50);
    }
    expect(denied).toMatchObject({ tenant: 'tb', details: { issuer: idps.ta!.issuer, audience: 'account' } });
    // Nor by turning tokens on in a connection of that issuer it has without them.
    expect((await call(u('/v0/tenants/tb/connections'), { method: 'POST', token: tbAdmin, ...json({ id: 'acct', issuer: idps.ta!.issuer, client_id: 'x' }) })).status).toBe(201);
    expect((await call(u('/v0/tenants/tb/connections/acct'), { method: 'PATCH', token: tbAdmin, ...json({ accept_idp_access_tokens: true, audience: 'account' }) })).status).toBe(409);
    // ta's token still works.
    expect((await call(u('/v0/tenants/ta/workspaces'), { token: taToken })).status).toBe(200);

    // The operator may set it up (one IdP for two tenants); its own edits by the tenant admin go on.
    expect((await call(u('/v0/tenants/tb/connections/acct'), { method: 'PATCH', token: op, ...json({ accept_idp_access_tokens: true, audience: 'account' }) })).status).toBe(200);
    expect((await call(u('/v0/tenants/tb/connections/acct'), { method: 'PATCH', token: tbAdmin, ...json({ scopes: ['openid', 'email'] }) })).status).toBe(200);
    // Then a token both connections accept is refused, and both tenants see why.
    const amb = await call(u('/v0/tenants/ta/workspaces'), { token: taToken });
    expect(amb).toMatchObject({ status: 401 });
    expect(amb.body.error).toMatch(/several connections/);
    let seen: string[] = [];
    for (let i = 0; i < 40 && seen.length < 2; i++) {
      seen = audits((a) => a.event === 'auth.idp_token' && a.outcome === 'failure' && /several connections/.test(String(a.reason))).map((a) => `${a.tenant}/${a.connection}`).sort();
      if (seen.length < 2) await sleep(50);
    }
    expect(seen).toEqual(['ta/idp', 'tb/acct']);
    expect((await call(u('/v0/tenants/tb/connections/acct'), { method: 'DELETE', token: op })).status).toBe(204);
    expect((await call(u('/v0/tenants/ta/workspaces'), { token: taToken })).status).toBe(200);
    // A share the operator set up with an audience of its own: its tenant admin may not move it
    // onto an audience ta's tokens carry (PATCH was the create attack again).
    expect((await call(u('/v0/tenants/tb/connections'), { method: 'POST', token: op, ...json({ id: 'own', issuer: idps.ta!.issuer, client_id: 'z', accept_idp_access_tokens: true, audience: `${AUD}/tb-own` }) })).status).toBe(201);
    const moved = await call(u('/v0/tenants/tb/connections/own'), { method: 'PATCH', token: tbAdmin, ...json({ audience: 'account' }) });
    expect(moved).toMatchObject({ status: 409, body: { code: 'CONFLICT' } });
    expect((await call(u('/v0/tenants/ta/workspaces'), { token: taToken })).status).toBe(200);
    expect((await call(u('/v0/tenants/tb/connections/own'), { method: 'DELETE', token: op })).status).toBe(204);
  });
});

describe('failed IdP tokens', () => {
  it('are recorded in the issuer\'s tenant only when the issuer is that tenant\'s alone', async () => {
    // The operator gives tb a connection of ta's issuer (another audience): a wrong-audience token
    // of that issuer is no longer recorded as ta's (it went to the first connection found).
    expect((await call(u('/v0/tenants/tb/connections'), { method: 'POST', token: op, ...json({ id: 'both', issuer: idps.ta!.issuer, client_id: 'y', accept_idp_access_tokens: true, audience: `${AUD}/tb-too` }) })).status).toBe(201);
    const before = audits((a) => a.event === 'auth.idp_token').length;
    const wrong = await signed('ta', { aud: 'https://elsewhere.example' });
    expect((await call(u('/v0/tenants/ta/workspaces'), { token: wrong })).status).toBe(401);
    let rec: Record<string, any> | undefined;
    for (let i = 0; i < 40 && !rec; i++) {
      rec = audits((a) => a.event === 'auth.idp_token').slice(before)[0];
      if (!rec) await sleep(50);
    }
    expect(rec).toMatchObject({ outcome: 'failure', reason: expect.stringMatching(/wrong audience/) });
    expect(rec!.tenant).toBeUndefined();
    expect((await call(u('/v0/tenants/tb/connections/both'), { method: 'DELETE', token: op })).status).toBe(204);
    // With the issuer ta's alone again, its failures are ta's.
    const again = audits((a) => a.event === 'auth.idp_token').length;
    expect((await call(u('/v0/tenants/ta/workspaces'), { token: wrong })).status).toBe(401);
    let own: Record<string, any> | undefined;
    for (let i = 0; i < 40 && !own; i++) {
      own = audits((a) => a.event === 'auth.idp_token').slice(again)[0];
      if (!own) await sleep(50);
    }
    expect(own).toMatchObject({ tenant: 'ta', connection: 'idp' });
  });

  it('take from the client\'s failed-login budget: a flood of forged tokens is answered 429 past it, not one record each', async () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const forged = `${b64({ alg: 'RS256' })}.${b64({ iss: idps.ta!.issuer, aud: `${AUD}/ta`, sub: 'x', exp: Math.floor(Date.now() / 1000) + 600 })}.AAAA`;
    const before = audits((a) => a.event === 'auth.idp_token' && a.tenant === 'ta').length;
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) statuses.push((await call(u('/v0/tenants/ta/workspaces'), { token: forged })).status);
    expect(statuses.filter((s) => s === 401).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(20);
    await sleep(300);
    // The burst (20 at --login-rate 2, less what the tests above failed) plus what refills meanwhile.
    const records = audits((a) => a.event === 'auth.idp_token' && a.tenant === 'ta').length - before;
    expect(records).toBeLessThan(35);
    const limited = audits((a) => a.event === 'auth.rate_limited' && a.details?.limit === 'login_failure_rate');
    expect(limited.length).toBeGreaterThan(0);
    // A good token is not refused by the limit: only failures count.
    expect((await call(u('/v0/tenants/ta/workspaces'), { token: await cc('ta') })).status).toBe(200);
  });
});
