#!/usr/bin/env node
// Added latency of authenticating + authorizing a request, by credential kind,
// against an unauthenticated route on the same server (loopback, keep-alive).
// Credentials: a service token, a Roost session (ES256 JWT from a real login
// through the development IdP), an IdP access token (RS256 JWT from an
// in-process oidc-provider, verified against its JWKS, then mapping rules).
// Usage: node bench/auth.mjs [--seconds 2] [--rounds 5] [--concurrency 8]
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : def; };
const SECONDS = arg('seconds', 2), ROUNDS = arg('rounds', 5), CONC = arg('concurrency', 8);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-bench-auth-'));
const port = await new Promise((resolve) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });
// Request logs at warn level are off, so the server does the same per-request work in every case.
const proc = spawn(process.execPath, [path.join(root, 'bin/roost.js'), 'serve', '--dev', '--port', String(port), '--data', dataDir], { env: { ...process.env, ROOST_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] });
const base = `http://127.0.0.1:${port}`;
process.on('exit', () => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
for (let i = 0; ; i++) {
  if (i > 600) throw new Error('server did not start');
  try { if ((await fetch(`${base}/tokens`)).ok && (await fetch(`${base}/auth/login?tenant=local`, { redirect: 'manual' })).status === 302) break; } catch { /* not yet */ }
  await new Promise((r) => setTimeout(r, 100));
}
const operator = fs.readFileSync(path.join(dataDir, 'operator-token'), 'utf8').trim();

const agent = new http.Agent({ keepAlive: true, maxSockets: CONC });
function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent, headers }, (res) => { const parts = []; res.on('data', (c) => parts.push(c)); res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString() })); });
    req.on('error', reject);
    req.end();
  });
}
async function req(method, url, { headers = {}, body } = {}) {
  const r = await fetch(url, { method, headers, body, redirect: 'manual' });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

// Credentials.
const serviceToken = JSON.parse((await get(`${base}/tokens`)).body).workspace_admin_token;
const jar = new Map();
const cookieHeader = (u) => [...(jar.get(new URL(u).origin) ?? new Map())].map(([k, v]) => `${k}=${v}`).join('; ');
async function browse(url, init = {}) {
  const r = await fetch(url, { ...init, headers: { ...(init.headers ?? {}), Cookie: cookieHeader(url) }, redirect: 'manual' });
  const m = jar.get(new URL(url).origin) ?? new Map(); jar.set(new URL(url).origin, m);
  for (const sc of r.headers.getSetCookie()) { const [p] = sc.split(';'); const i = p.indexOf('='); m.set(p.slice(0, i), p.slice(i + 1)); }
  return { status: r.status, location: r.headers.get('location'), text: await r.text() };
}
let next = `${base}/auth/login?tenant=local`;
for (let i = 0; i < 20 && !(new URL(next).origin === new URL(base).origin && next.includes('/callback')); i++) {
  const r = await browse(next);
  if (r.location) { next = new URL(r.location, next).href; continue; }
  const action = /action="([^"]+)"><input type="hidden" name="account" value="local-admin"/.exec(r.text)?.[1];
  const p = await browse(new URL(action, next).href, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'account=local-admin' });
  next = new URL(p.location, next).href;
}
const cb = await browse(next);
if (cb.status !== 303) throw new Error(`login callback answered ${cb.status}: ${cb.text}`);
const session = jar.get(new URL(base).origin).get('roost_session');

const { startDevProvider } = await import(path.join(root, 'dist/auth/oidc/dev-provider.js'));
const AUD = 'https://roost.bench/local';
const idp = await startDevProvider({ accounts: [], clients: [{ client_id: 'svc', client_secret: 'svc-secret-0123456789', token_claims: { groups: ['bench'] } }], audience: AUD });
const json = (b) => ({ headers: { Authorization: `Bearer ${operator}`, 'Content-Type': 'application/json' }, body: JSON.stringify(b) });
await req('POST', `${base}/v0/tenants/local/connections`, json({ id: 'bench', issuer: idp.issuer, client_id: 'unused', accept_idp_access_tokens: true, audience: AUD }));
const rules = JSON.parse((await req('GET', `${base}/v0/tenants/local/mappings`, { headers: { Authorization: `Bearer ${operator}` } })).text).rules;
await req('PUT', `${base}/v0/tenants/local/mappings`, json({ rules: [...rules, { claim: 'groups', match: { equals: 'bench' }, grant: { role: 'viewer', workspace: 'default' } }] }));
const tok = await fetch(`${idp.issuer}/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: `Basic ${Buffer.from('svc:svc-secret-0123456789').toString('base64')}` }, body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api', resource: AUD }) });
const idpToken = (await tok.json()).access_token;

const cases = {
  'unauthenticated (GET /v0/health)': [`${base}/v0/health`, {}],
  'service token (GET /auth/session)': [`${base}/auth/session`, { Authorization: `Bearer ${serviceToken}` }],
  'session JWT (GET /auth/session)': [`${base}/auth/session`, { Authorization: `Bearer ${session}` }],
  'IdP access token (GET /auth/session)': [`${base}/auth/session`, { Authorization: `Bearer ${idpToken}` }],
};
for (const [name, [url, h]] of Object.entries(cases)) {
  const r = await get(url, h);
  if (r.status !== 200) throw new Error(`${name}: ${r.status} ${r.body}`);
}

async function run(url, headers) {
  const until = performance.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(Array.from({ length: CONC }, async () => { while (performance.now() < until) { const r = await get(url, headers); if (r.status !== 200) throw new Error(`status ${r.status}`); n++; } }));
  return (SECONDS * 1000 * CONC) / n; // mean latency per request in ms at this concurrency
}

const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (const [url, h] of Object.values(cases)) await run(url, h).catch(() => {}); // warm-up
for (let r = 0; r < ROUNDS; r++) for (const [name, [url, h]] of Object.entries(cases)) results[name].push(await run(url, h));
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const baseMs = median(results['unauthenticated (GET /v0/health)']);
console.log(`| request | median ms/request (${CONC} in flight) | req/s | vs unauthenticated |`);
console.log('| --- | --- | --- | --- |');
for (const [name, xs] of Object.entries(results)) {
  const m = median(xs);
  console.log(`| ${name} | ${m.toFixed(3)} | ${Math.round((1000 / m) * CONC)} | ${(m / baseMs).toFixed(2)}x (+${(m - baseMs).toFixed(3)} ms) |`);
}
agent.destroy();
await idp.close();
proc.kill('SIGTERM');
await new Promise((r) => proc.on('exit', r));
fs.rmSync(dataDir, { recursive: true, force: true });
