/**
 * Who reads /metrics (its labels name tenants) on a server that is not in development mode:
 * the metrics token (given to the scraper; it opens nothing else) or the operator token.
 * Everything else is refused, and every refusal is audited. Real server, real HTTP.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

const METRICS_TOKEN = 'metrics-scraper-0123456789abcdefghijklmnop';
let srv: RunningServer;
let wsToken: string;

beforeAll(async () => {
  srv = await startServer({ dev: false, args: ['--metrics-token', METRICS_TOKEN] });
  const op = srv.operatorToken;
  const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: 'acme-secret-customer' }) })).status).toBe(201);
  const ws = await call(`${srv.url}/v0/tenants/acme-secret-customer/workspaces`, { method: 'POST', token: op, ...json({ name: 'main' }) });
  expect(ws.status).toBe(201);
  wsToken = ws.body.token;
  // Some traffic of the tenant, so that its slug is in the metrics' labels.
  expect((await call(`${srv.url}/v0/sql?q=SELECT+1`, { token: wsToken })).status).toBe(200);
}, 60_000);

afterAll(async () => {
  await srv?.stop();
});

describe('/metrics outside development mode', () => {
  it('refuses a request without a credential (401) and one with an unknown token (401)', async () => {
    const none = await call(`${srv.url}/metrics`);
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(none.text).not.toContain('acme-secret-customer');
    const wrong = await call(`${srv.url}/metrics`, { token: METRICS_TOKEN + 'x' });
    expect(wrong.status).toBe(401);
    expect(wrong.text).not.toContain('acme-secret-customer');
  });

  it('refuses a workspace admin token (403), says what is needed, and audits the refusal', async () => {
    const r = await call(`${srv.url}/metrics`, { token: wsToken });
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'FORBIDDEN' });
    expect(r.body.error).toMatch(/metrics token.*--metrics-token.*operator token/);
    expect(r.text).not.toContain('roost_http_requests_total');
    await expect.poll(() => srv.logs.some((l) => l.msg === 'audit' && l.resource === '/metrics' && l.outcome === 'denied'), { timeout: 5000 }).toBe(true);
  });

  it('serves the metrics to the metrics token and to the operator token', async () => {
    for (const token of [METRICS_TOKEN, srv.operatorToken]) {
      const r = await call(`${srv.url}/metrics`, { token });
      expect(r.status).toBe(200);
      expect(r.text).toMatch(/roost_http_requests_total\{method="GET",route="\/v0\/sql",status="200"\} 1/);
      expect(r.text).toContain('tenant="acme-secret-customer"');
    }
  });

  it('the metrics token opens nothing else', async () => {
    for (const p of ['/v0/tenants', '/v0/sql?q=SELECT+1', '/v0/datasources']) {
      const r = await call(`${srv.url}${p}`, { token: METRICS_TOKEN });
      expect(r.status, p).toBe(401);
    }
  });
});

describe('the metrics token setting', () => {
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/roost.js');
  it('refuses a short token and one equal to the operator token, naming the option', () => {
    const short = spawnSync(process.execPath, [bin, 'serve', '--metrics-token', 'short'], { encoding: 'utf8', timeout: 20_000 });
    expect(short.status).not.toBe(0);
    expect(short.stderr).toContain('--metrics-token / ROOST_METRICS_TOKEN must be at least 32 characters');
    const same = spawnSync(process.execPath, [bin, 'serve', '--metrics-token', METRICS_TOKEN, '--operator-token', METRICS_TOKEN], { encoding: 'utf8', timeout: 20_000 });
    expect(same.status).not.toBe(0);
    expect(same.stderr).toContain('must differ from the operator token');
  });
});
