/**
 * GET /v0/tenants/<slug>/audit: the tenant's audit records for its tenant admins, those of the
 * tenant as a whole too (logins, denied logins, mapping changes: no workspace, so no workspace's
 * `roost.audit_log` shows them). Real server over HTTP, people logging in through a SAML IdP
 * (samlify's signer, test/helpers/saml-idp.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { json, serverAudit } from './helpers/audit.js';
import { makeSamlIdp, samlLogin } from './helpers/saml-idp.js';

let srv: RunningServer;
const { op } = serverAudit(() => srv);
const idp = makeSamlIdp('https://idp.acme.test/saml');
const other = makeSamlIdp('https://idp.globex.test/saml');
let admin = '';
let viewer = '';
let globexAdmin = '';
let wsToken = '';

const login = async (tenant: string, who: string, groups: string[], signer = idp) => {
  const r = await samlLogin(srv.url, tenant, 'saml', signer, who, { email: [`${who}@${tenant}.test`], groups });
  return r;
};
const audit = (query: string, token = admin) => call(`${srv.url}/v0/tenants/acme/audit${query}`, { token });

beforeAll(async () => {
  srv = await startServer({ dev: false });
  for (const [slug, signer] of [['acme', idp], ['globex', other]] as const) {
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op(), ...json({ slug }) })).status).toBe(201);
    const w = await call(`${srv.url}/v0/tenants/${slug}/workspaces`, { method: 'POST', token: op(), ...json({ name: 'main' }) });
    expect(w.status).toBe(201);
    if (slug === 'acme') wsToken = w.body.token;
    const c = await call(`${srv.url}/v0/tenants/${slug}/connections`, { method: 'POST', token: op(), ...json({ id: 'saml', type: 'saml', entity_id: signer.entityId, sso_url: `${signer.entityId}/sso`, certificates: [signer.cert] }) });
    expect(c.status, c.text).toBe(201);
    const m = await call(`${srv.url}/v0/tenants/${slug}/mappings`, { method: 'PUT', token: op(), ...json({ rules: [
      { claim: 'groups', match: { equals: 'admins' }, grant: { role: 'tenant:admin' } },
      { claim: 'groups', match: { equals: 'staff' }, grant: { role: 'viewer', workspace: 'main' } },
    ] }) });
    expect(m.status, m.text).toBe(200);
  }
  admin = (await login('acme', 'ada', ['admins'])).session!;
  viewer = (await login('acme', 'vic', ['staff'])).session!;
  globexAdmin = (await login('globex', 'gus', ['admins'], other)).session!;
  expect(admin && viewer && globexAdmin).toBeTruthy();
  // A person the rules give no role: a denied login, a record of the tenant with no workspace.
  expect((await login('acme', 'nora', ['nobody'])).session).toBeUndefined();
}, 90_000);

afterAll(async () => { await srv?.stop(); });

describe('GET /v0/tenants/<slug>/audit', () => {
  it('shows a tenant admin the tenant\'s own records: logins, the denied login, the mapping change', async () => {
    const r = await audit('?limit=1000');
    expect(r.status, r.text).toBe(200);
    const recs = r.body.records as Array<Record<string, any>>;
    expect(r.body.rows).toBe(recs.length);
    const actors = recs.filter((x) => x.event.startsWith('login')).map((x) => `${x.actor}:${x.outcome}`);
    expect(actors).toEqual(expect.arrayContaining(['ada@acme.test:success', 'vic@acme.test:success']));
    const denied = recs.find((x) => String(x.actor).startsWith('nora@'));
    expect(denied, JSON.stringify(recs.map((x) => [x.event, x.actor, x.outcome]))).toMatchObject({ outcome: expect.stringMatching(/denied|failure/), workspace: null, workspace_id: null });
    expect(recs.some((x) => x.event === 'mapping.updated' || /mapping/.test(String(x.resource)))).toBe(true);
    // Changes name the client's address as logins do (they had none).
    const changes = recs.filter((x) => x.event === 'mappings.updated' || x.event === 'connection.created');
    expect(changes.length, JSON.stringify(recs.map((x) => x.event))).toBeGreaterThan(0);
    for (const c of changes) expect(c.ip, JSON.stringify(c)).toBe('127.0.0.1');
    // Newest first, ISO times.
    const times = recs.map((x) => x.timestamp as string);
    expect(times.every((t) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/.test(t))).toBe(true);
    expect([...times].sort().reverse()).toEqual(times);
    // Nothing of the other tenant.
    expect(JSON.stringify(recs)).not.toMatch(/globex|gus@/);
  });

  it('filters: workspace=- is the tenant\'s records alone, outcome and event narrow, since/until bound', async () => {
    const tenantOnly = (await audit('?workspace=-&limit=1000')).body.records as Array<Record<string, any>>;
    expect(tenantOnly.length).toBeGreaterThan(0);
    expect(tenantOnly.every((x) => x.workspace_id === null)).toBe(true);
    const denied = (await audit('?outcome=denied,failure&limit=1000')).body.records as Array<Record<string, any>>;
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.every((x) => x.outcome === 'denied' || x.outcome === 'failure')).toBe(true);
    const ev = denied[0]!.event as string;
    const byEvent = (await audit(`?event=${ev}&limit=1000`)).body.records as Array<Record<string, any>>;
    expect(byEvent.length).toBeGreaterThan(0);
    expect(byEvent.every((x) => x.event === ev)).toBe(true);
    expect((await audit('?since=2999-01-01T00:00:00Z')).body.records).toEqual([]);
    expect((await audit('?until=2000-01-01')).body.records).toEqual([]);
  });

  it('pages with next_cursor: every record once, none skipped, none twice (also inside one millisecond)', async () => {
    // Records sharing one millisecond: many refused requests at once.
    await Promise.all(Array.from({ length: 30 }, () => call(`${srv.url}/v0/tenants/acme/audit`, { token: viewer })));
    const all = (await audit('?limit=1000')).body.records as Array<Record<string, any>>;
    const seen: Array<Record<string, any>> = [];
    let cursor = '';
    for (let i = 0; i < 1000; i++) {
      const p = await audit(`?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(p.status, p.text).toBe(200);
      seen.push(...p.body.records);
      if (!p.body.next_cursor) break;
      cursor = p.body.next_cursor;
    }
    const key = (x: Record<string, any>) => JSON.stringify(x);
    // Records written after the first read (the viewer's refusals are audited as they happen)
    // would be on the first page: compare what both saw.
    const allKeys = all.map(key);
    expect(seen.map(key).filter((k) => allKeys.includes(k))).toEqual(allKeys);
    expect(new Set(seen.map(key)).size).toBe(seen.length);
  });

  it('is for the tenant\'s admins and the operator only (403 for a viewer, another tenant\'s admin, a workspace token)', async () => {
    expect((await audit('', viewer)).status).toBe(403);
    const foreign = await audit('', globexAdmin);
    expect(foreign.status).toBe(403);
    // The tenant tried sees the attempt too (it was in the other tenant's log only), without who.
    let seen: Record<string, any> | undefined;
    for (let i = 0; i < 50 && !seen; i++) {
      const recs = (await audit('?event=authz.denied&limit=1000')).body.records as Array<Record<string, any>>;
      seen = recs.find((x) => x.request_id === foreign.headers.get('x-request-id'));
      if (!seen) await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toMatchObject({ outcome: 'denied', credential: 'another tenant', ip: '127.0.0.1' });
    expect(JSON.stringify(seen)).not.toMatch(/globex|gus/);
    expect((await audit('', wsToken)).status).toBe(403);
    expect((await audit('', op())).status).toBe(200);
    expect((await call(`${srv.url}/v0/tenants/globex/audit`, { token: admin })).status).toBe(403);
    expect((await call(`${srv.url}/v0/tenants/acme/audit`)).status).toBe(401);
  });

  it("another tenant's credentials cannot fill the tenant's log: at most one record a second (bursts of 10) per tenant, however many credentials", async () => {
    // A second credential of the same tenant (JWTs name themselves: a budget per credential was
    // a new budget per name).
    const second = (await login('globex', 'gia', ['admins'], other)).session!;
    expect(second).toBeTruthy();
    const before = async () => ((await audit('?event=authz.denied&limit=1000')).body.records as Array<Record<string, any>>).filter((x) => x.credential === 'another tenant').length;
    const n0 = await before();
    const t0 = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await call(`${srv.url}/v0/tenants/acme/workspaces`, { token: i % 2 ? second : globexAdmin, headers: { 'X-Request-Id': `spam-${i}` } });
      expect(r.status).toBe(403);
      ids.push(`spam-${i}`);
    }
    const seconds = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 1500));
    const written = (await before()) - n0;
    expect(written).toBeGreaterThan(0);
    expect(written).toBeLessThanOrEqual(10 + Math.ceil(seconds) + 1);
    // Every one is in the actor's own tenant's log (the operator's view of the server's records).
    const own = await call(`${srv.url}/v0/tenants/globex/audit?event=authz.denied&limit=1000`, { token: op() });
    const mine = (own.body.records as Array<Record<string, any>>).filter((x) => ids.includes(x.request_id));
    expect(mine).toHaveLength(60);
  });

  it('answers bad parameters with a 400 that says what to send', async () => {
    for (const [q, msg] of [
      ['?since=yesterday', /since must be an ISO 8601 date/],
      ['?since=2026-02-30', /since must be an ISO 8601 date/],
      ['?limit=0', /limit must be a whole number from 1 to 1000/],
      ['?limit=1001', /limit must be a whole number from 1 to 1000/],
      ['?limit=abc', /limit must be a whole number/],
      ['?outcome=maybe', /outcome must be success, failure or denied/],
      ["?event=x'y", /is not an event name/],
      ['?since=2026-02-01&until=2026-01-01', /since must be before until/],
      ['?colour=red', /unknown parameter "colour"/],
      ['?cursor=yesterday', /cursor must be a next_cursor this route answered/],
    ] as const) {
      const r = await audit(q);
      expect(r.status, `${q}: ${r.text}`).toBe(400);
      expect(r.body.code).toBe('INVALID_PARAMETER');
      expect(r.body.error).toMatch(msg);
    }
    expect((await audit('?workspace=nosuch')).status).toBe(404);
  });
});
