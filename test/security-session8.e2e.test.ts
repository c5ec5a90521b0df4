/**
 * Adversarial review of session 8's new surface, end to end against the real server: published
 * pipes read by name in /v0/sql, renames and drops with tokens, the save-time engine check, the
 * service tables' new columns, the sweep of unnamed databases.
 */
import http from 'node:http';
import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, workspaceApi, type RunningServer } from './helpers/server.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
let admin: string;
const enc = encodeURIComponent;
const req = (method: string, p: string, token = admin, body?: BodyInit, headers: Record<string, string> = {}) =>
  call(`${srv.url}${p}`, { method, token, body, headers });
const get = (p: string, token = admin) => req('GET', p, token);
const sqlAs = (q: string, token: string) => get(`/v0/sql?q=${enc(q)}`, token);
const { createToken: mkToken, createDataSource: mkDataSource } = workspaceApi(() => srv, () => admin);
const pipeJson = (name: string, sql: string) => JSON.stringify({ name, nodes: [{ name: `${name}_0`, sql, type: 'endpoint' }] });
const mkPipe = async (name: string, sql: string, token = admin) =>
  req('POST', '/v0/pipes', token, pipeJson(name, sql), { 'Content-Type': 'application/json' });

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  await mkDataSource('secrets', 'org String, secret String', 'a,alpha-secret\nb,bravo-secret\n');
}, 120_000);

afterAll(async () => {
  await srv?.stop();
});

describe('the save-time engine check is no way to read data the saver may not read', () => {
  // A table function's arguments are computed while the engine analyses the node, a scalar
  // subquery in them too, and the engine quotes the value in its error ("... failed at position
  // 1 (-): -bravo-secret").
  const leak = (pipe: string, filter = '') => `SELECT * FROM generateRandom(concat('-', (SELECT any(secret) FROM ${pipe} WHERE org = 'b'${filter})))`;

  it('the check does read such arguments (ADMIN sees its own data in the error)', async () => {
    const r = await mkPipe('probe_admin', leak('secrets'));
    expect(r.status, r.text).toBe(400);
    expect(r.body.code).toBe('NODE_SQL_ERROR');
    expect(r.text).toContain('bravo-secret');
  });

  it('a token that may create pipes but not read a data source learns nothing of its rows', async () => {
    const tok = await mkToken('creator_only', ['PIPES:CREATE']);
    const r = await mkPipe('probe_creator', leak('secrets'), tok);
    expect(r.text).not.toContain('bravo');
    // Not checked (the saver may not read what it reads): saved as without the check.
    expect(r.status, r.text).toBe(200);
    // Its result is still only for those who may read the pipe.
    expect((await get('/v0/pipes/probe_creator.json', tok)).status).toBe(403);
  });

  it('the saver\'s row filter holds in the check', async () => {
    const tok = await mkToken('creator_filtered', ['PIPES:CREATE', "DATASOURCES:READ:secrets:org = 'a'"]);
    const r = await mkPipe('probe_filtered', leak('secrets'), tok);
    expect(r.text).not.toContain('bravo');
    // Checked over the rows it sees (the check refuses its own org's SQL too), but a filtered
    // saver's check errors lose the query and values they quote: the filter's view is in them.
    const own = await mkPipe('probe_filtered_own', leak('secrets').replace("org = 'b'", "org = 'a'"), tok);
    expect(own.status, own.text).toBe(400);
    expect(own.body.code).toBe('NODE_SQL_ERROR');
    expect(own.text).not.toContain("org = 'a'");
  });
});

/** POST /v0/sql whose body is sent in two parts: `between` runs after the first (the server has authenticated). */
const slowSql = (token: string, first: string, rest: string, between: () => Promise<void>) => new Promise<{ status: number; text: string }>((resolve, reject) => {
    const u = new URL(`${srv.url}/v0/sql`);
    const r = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(first + rest) } }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => { text += b.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    r.on('error', reject);
    r.write(first);
    void (async () => {
      // The head is in: the server authenticates before it reads the body.
      await new Promise((res) => setTimeout(res, 300));
      await between();
      r.end(rest);
    })().catch(reject);
  });

describe('a token decides with its scopes of now, not of when its request came in', () => {
  it('a data source dropped and created again while the SQL arrives is not read with the old grant', async () => {
    await mkDataSource('held', 'v String', 'granted-row\n');
    const tok = await mkToken('held_reader', ['DATASOURCES:READ:held']);
    expect((await sqlAs('SELECT v FROM held FORMAT JSON', tok)).text).toContain('granted-row');
    const r = await slowSql(tok, 'SELECT v FROM ', 'held FORMAT JSON', async () => {
      const d = await req('DELETE', '/v0/datasources/held');
      expect(d.status, d.text).toBe(200);
      await mkDataSource('held', 'v String', 'someone-elses-row\n');
    });
    expect(r.text).not.toContain('someone-elses-row');
    expect(r.status, r.text).toBe(403);
  });
});

describe('a rename does not hand a resource to scopes that named its new name before', () => {
  it('DATASOURCES:DROP of one data source and a READ scope on a free name do not make a read of it', async () => {
    await mkDataSource('staging', 'v String', 'staged-private-row\n');
    const tok = await mkToken('dropper', ['DATASOURCES:DROP:staging', 'DATASOURCES:READ:reports']);
    expect((await sqlAs('SELECT v FROM staging FORMAT JSON', tok)).status).toBe(403);
    const r = await req('PUT', '/v0/datasources/staging?name=reports', tok);
    expect(r.status, r.text).toBe(200);
    const read = await sqlAs('SELECT v FROM reports FORMAT JSON', tok);
    expect(read.text).not.toContain('staged-private-row');
    expect(read.status).toBe(403);
    // The scope on the free name is gone with the rename; the token's DROP followed the data source.
    const t = await get('/v0/tokens/dropper');
    expect(t.body.scopes.map((s: { type: string; resource?: string }) => `${s.type}:${s.resource ?? ''}`).sort()).toEqual(['DATASOURCES:DROP:reports']);
  });

  it('PIPES:DROP of one pipe and PIPES:READ on a free name do not make a read of its endpoint', async () => {
    const made = await mkPipe('private_pipe', "SELECT 'private-pipe-row' AS v");
    expect(made.status, made.text).toBe(200);
    const tok = await mkToken('pipe_dropper', ['PIPES:DROP:private_pipe', 'PIPES:READ:public_pipe']);
    expect((await get('/v0/pipes/private_pipe.json', tok)).status).toBe(403);
    const r = await req('PUT', '/v0/pipes/private_pipe?name=public_pipe', tok);
    expect(r.status, r.text).toBe(200);
    const read = await get('/v0/pipes/public_pipe.json', tok);
    expect(read.text).not.toContain('private-pipe-row');
    expect(read.status).toBe(403);
  });

  it('nor a JWT issued before the rename that names the new name', async () => {
    await mkDataSource('staging2', 'v String', 'staged2-private-row\n');
    const ws = (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces.find((w: { name: string }) => w.name === 'default').id;
    const jwt = await new jose.SignJWT({ workspace_id: ws, name: 'early', scopes: [{ type: 'DATASOURCES:READ', resource: 'reports2' }] })
      .setProtectedHeader({ alg: 'HS256' }).setIssuedAt(Math.floor(Date.now() / 1000) - 5).setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(new TextEncoder().encode(admin));
    expect((await req('PUT', '/v0/datasources/staging2?name=reports2')).status).toBe(200);
    const read = await sqlAs('SELECT v FROM reports2 FORMAT JSON', jwt);
    expect(read.text).not.toContain('staged2-private-row');
    expect(read.status).toBe(403);
  });
});

describe('IdP access tokens where the audience is the client_id', () => {
  let idp: DevProvider;
  beforeAll(async () => {
    idp = await startDevProvider({ accounts: [{ id: 'ana', claims: { email: 'ana@idt.test', email_verified: true } }], clients: [{ client_id: 'roost-idt', client_secret: 'secret-idt-0123456789abcdef', redirect_uris: [`${srv.url}/auth/oidc/idt/main/callback`] }] });
    const op = { token: srv.operatorToken, headers: { 'Content-Type': 'application/json' } };
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', ...op, body: JSON.stringify({ slug: 'idt', domains: ['idt.test'] }) })).status).toBe(201);
    const c = await call(`${srv.url}/v0/tenants/idt/connections`, { method: 'POST', ...op, body: JSON.stringify({ id: 'main', type: 'oidc', issuer: idp.issuer, client_id: 'roost-idt', client_secret: 'secret-idt-0123456789abcdef', accept_idp_access_tokens: true, audience: 'roost-idt' }) });
    expect(c.status, c.text).toBe(201);
  }, 60_000);
  afterAll(async () => { await idp?.close(); });

  it('an ID token carrying app roles (Azure puts them in ID tokens too) and no nonce is not a bearer credential', async () => {
    const key = await jose.importJWK(idp.keys[0]!, 'RS256');
    const now = Math.floor(Date.now() / 1000);
    const base = { iss: idp.issuer, sub: 'ana', aud: 'roost-idt', iat: now, exp: now + 600, email: 'ana@idt.test' };
    const sign = (p: Record<string, unknown>) => new jose.SignJWT(p).setProtectedHeader({ alg: 'RS256', kid: idp.keys[0]!.kid! }).sign(key);
    const idToken = await call(`${srv.url}/auth/session`, { token: await sign({ ...base, roles: ['Reader'], auth_time: now }) });
    expect(idToken.status, idToken.text).toBe(401);
    expect(idToken.body.error).toMatch(/looks like an ID token/);
    // An access token of a client (client credentials) names the client beside its roles.
    for (const claims of [{ roles: ['Reader'], azp: 'svc-idt' }, { roles: ['Reader'], appid: 'svc-idt' }, { scp: 'api.read' }]) {
      const at = await call(`${srv.url}/auth/session`, { token: await sign({ ...base, ...claims }) });
      expect(at.status, `${JSON.stringify(claims)} ${at.text}`).toBe(200);
    }
  });
});

describe('a quarantine follows its data source in scopes', () => {
  const quarantined = async (ds: string, bad: string) => {
    await mkDataSource(ds, 'id UInt32, tag String');
    const a = await req('POST', `/v0/datasources?name=${ds}&mode=append`, admin, `1,good\nnot-a-number,${bad}\n`, { 'Content-Type': 'text/csv' });
    expect(a.status, a.text).toBe(200);
    expect((await sqlAs(`SELECT count() AS n FROM ${ds}_quarantine FORMAT JSON`, admin)).body.data[0].n).toBe(1);
  };

  it('a scope on <ds>_quarantine does not reach the quarantine of a data source created later under the name', async () => {
    await quarantined('qsrc', 'first-owner-bad-row');
    const tok = await mkToken('quarantine_reader', ['DATASOURCES:READ:qsrc_quarantine']);
    expect((await sqlAs('SELECT * FROM qsrc_quarantine FORMAT JSON', tok)).text).toContain('first-owner-bad-row');
    expect((await req('DELETE', '/v0/datasources/qsrc')).status).toBe(200);
    await quarantined('qsrc', 'second-owner-bad-row');
    const r = await sqlAs('SELECT * FROM qsrc_quarantine FORMAT JSON', tok);
    expect(r.text).not.toContain('second-owner-bad-row');
    expect(r.status).toBe(403);
  });

  it('a rename carries it to <new>_quarantine, and the old quarantine name grants nothing later', async () => {
    await quarantined('qren', 'renamed-bad-row');
    const tok = await mkToken('quarantine_follower', ['DATASOURCES:READ:qren_quarantine']);
    expect((await req('PUT', '/v0/datasources/qren?name=qren2')).status).toBe(200);
    expect((await sqlAs('SELECT * FROM qren2_quarantine FORMAT JSON', tok)).text).toContain('renamed-bad-row');
    await quarantined('qren', 'newcomer-bad-row');
    const r = await sqlAs('SELECT * FROM qren_quarantine FORMAT JSON', tok);
    expect(r.text).not.toContain('newcomer-bad-row');
    expect(r.status).toBe(403);
  });

  it('a JWT issued before a drop does not read the quarantine of a later data source of the name', async () => {
    await quarantined('qjwt', 'jwt-first-bad-row');
    const ws = (await call(`${srv.url}/v0/tenants/local/workspaces`, { token: srv.operatorToken })).body.workspaces.find((w: { name: string }) => w.name === 'default').id;
    const jwt = await new jose.SignJWT({ workspace_id: ws, name: 'qj', scopes: [{ type: 'DATASOURCES:READ', resource: 'qjwt_quarantine' }] })
      .setProtectedHeader({ alg: 'HS256' }).setIssuedAt(Math.floor(Date.now() / 1000) - 5).setExpirationTime(Math.floor(Date.now() / 1000) + 600).sign(new TextEncoder().encode(admin));
    expect((await sqlAs('SELECT * FROM qjwt_quarantine FORMAT JSON', jwt)).text).toContain('jwt-first-bad-row');
    expect((await req('DELETE', '/v0/datasources/qjwt')).status).toBe(200);
    await quarantined('qjwt', 'jwt-second-bad-row');
    const r = await sqlAs('SELECT * FROM qjwt_quarantine FORMAT JSON', jwt);
    expect(r.text).not.toContain('jwt-second-bad-row');
    expect(r.status).toBe(403);
  });
});

describe('service rows belong to the workspace the call came in for', () => {
  it('a workspace renamed during a call keeps its row; a new workspace of its old name never sees it', async () => {
    const op = { token: srv.operatorToken, headers: { 'Content-Type': 'application/json' } };
    const made = await call(`${srv.url}/v0/tenants/local/workspaces`, { method: 'POST', ...op, body: JSON.stringify({ name: 'wsold' }) });
    expect(made.status, made.text).toBe(201);
    let newToken = '';
    await slowSql(made.body.token, "SELECT 'marker-of-the-renamed' AS m ", 'FORMAT JSON', async () => {
      const r = await call(`${srv.url}/v0/tenants/local/workspaces/wsold`, { method: 'PATCH', ...op, body: JSON.stringify({ name: 'wsrenamed' }) });
      expect(r.status, r.text).toBe(200);
      const again = await call(`${srv.url}/v0/tenants/local/workspaces`, { method: 'POST', ...op, body: JSON.stringify({ name: 'wsold' }) });
      expect(again.status, again.text).toBe(201);
      newToken = again.body.token;
    });
    // A call of the new workspace, written after the one above: once it shows, so has the other.
    expect((await sqlAs("SELECT 'marker-of-the-newcomer' AS m FORMAT JSON", newToken)).status).toBe(200);
    const q = "SELECT parameters['q'] AS q FROM tinybird.pipe_stats_rt WHERE pipe_name = 'query_api' FORMAT JSONEachRow";
    let seen = '';
    for (let i = 0; i < 100 && !seen.includes('marker-of-the-newcomer'); i++) {
      seen = (await sqlAs(q, newToken)).text;
      if (!seen.includes('marker-of-the-newcomer')) await new Promise((r) => setTimeout(r, 200));
    }
    expect(seen).toContain('marker-of-the-newcomer');
    expect(seen).not.toContain('marker-of-the-renamed');
  });
});
