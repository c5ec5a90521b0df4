/**
 * Tenant isolation, proven over HTTP against the real server: two tenants (two
 * cells) with two workspaces each. Every way across must fail: credentials of
 * one tenant/workspace against the others' routes; SQL through /v0/sql, pipes,
 * template parameters and q=; a runaway query in A while B is measured; A's cell
 * killed while B is served; and each cell directory holding its tenant's data only.
 * Measured latencies are printed (`isolation:` lines) for bench/RESULTS.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { call, childProcesses, startServer, type RunningServer } from './helpers/server.js';
import { clientCredentialsToken } from './helpers/oidc-browser.js';
import { startDevProvider, type DevProvider } from '../auth/oidc/dev-provider.js';

let srv: RunningServer;
let op: string;
const idps: Record<string, DevProvider> = {};
const AUD = 'https://roost.test/isolation';
const json = (body: unknown) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const TENANTS = ['ta', 'tb'] as const;
const WS = ['w1', 'w2'] as const;
/** tokens['ta/w1'] = admin token of workspace w1 of tenant ta. */
const tokens: Record<string, string> = {};
const dbs: Record<string, string> = {};
const admins: Record<string, string> = {};
/** A value only the rows of that workspace hold. */
const marker = (t: string, w: string) => `secret-${t}-${w}-7f3a`;
const others = (t: string, w: string) => TENANTS.flatMap((x) => WS.map((y) => [x, y] as const)).filter(([x, y]) => x !== t || y !== w);

const cc = (slug: string) => clientCredentialsToken(idps[slug]!.issuer, `${slug}-admin`, `${slug}-admin-secret-0123456789`, `${AUD}/${slug}`);

beforeAll(async () => {
  srv = await startServer({ dev: false });
  op = srv.operatorToken;
  for (const t of TENANTS) {
    const limits = t === 'ta' ? { query_timeout_ms: 2500, query_memory_bytes: 256 * 1024 * 1024 } : {};
    expect((await call(`${srv.url}/v0/tenants`, { method: 'POST', token: op, ...json({ slug: t, limits }) })).status).toBe(201);
    idps[t] = await startDevProvider({ accounts: [], clients: [{ client_id: `${t}-admin`, client_secret: `${t}-admin-secret-0123456789`, token_claims: { groups: ['admins'] } }], audience: `${AUD}/${t}` });
    await call(`${srv.url}/v0/tenants/${t}/connections`, { method: 'POST', token: op, ...json({ id: 'idp', issuer: idps[t]!.issuer, client_id: 'roost', accept_idp_access_tokens: true, audience: `${AUD}/${t}` }) });
    await call(`${srv.url}/v0/tenants/${t}/mappings`, { method: 'PUT', token: op, ...json({ rules: [{ claim: 'groups', match: { equals: 'admins' }, grant: { role: 'tenant:admin' } }] }) });
    admins[t] = await cc(t);
    for (const w of WS) {
      const r = await call(`${srv.url}/v0/tenants/${t}/workspaces`, { method: 'POST', token: op, ...json({ name: w }) });
      const token = r.body.token as string;
      tokens[`${t}/${w}`] = token;
      dbs[`${t}/${w}`] = r.body.database;
      expect((await call(`${srv.url}/v0/datasources?name=ev&mode=create&schema=${encodeURIComponent('id UInt32, v String')}`, { method: 'POST', token })).status).toBe(200);
      const rows = Array.from({ length: 300_000 }, (_, i) => `${i},${i % 1000 === 0 ? marker(t, w) : `row-${i}-${'x'.repeat(24)}`}`).join('\n') + '\n';
      expect((await call(`${srv.url}/v0/datasources?name=ev&mode=append`, { method: 'POST', token, body: rows })).status).toBe(200);
      const pipe = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, ...json({ name: 'p', nodes: [{ name: 'n', type: 'endpoint', sql: "%\nSELECT v, count() AS c FROM ev WHERE v = {{String(x, 'none')}} GROUP BY v" }] }) });
      expect(pipe.status, pipe.text).toBeLessThan(300);
      const fast = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, ...json({ name: 'fast', nodes: [{ name: 'n', type: 'endpoint', sql: 'SELECT id, v FROM ev WHERE id < 10' }] }) });
      expect(fast.status, fast.text).toBeLessThan(300);
    }
  }
}, 120_000);

afterAll(async () => { await srv?.stop(); for (const i of Object.values(idps)) await i.close(); });

/** A response must not carry any other workspace's rows. */
function expectNoLeak(text: string, t: string, w: string, what: string): void {
  for (const [x, y] of others(t, w)) expect(text.includes(marker(x, y)), `${what} leaked ${x}/${y}`).toBe(false);
}

describe('credentials across tenants and workspaces', () => {
  it('a workspace token never reaches another workspace or tenant', async () => {
    for (const t of TENANTS) {
      for (const w of WS) {
        const token = tokens[`${t}/${w}`]!;
        for (const [x, y] of others(t, w)) {
          // Naming the other workspace changes nothing: a token acts on its own workspace.
          for (const p of [`/v0/sql?workspace=${y}&q=SELECT+v+FROM+ev+WHERE+v+LIKE+'secret%25'`, `/v0/pipes/p.json?workspace=${y}&x=${marker(x, y)}`]) {
            const r = await call(`${srv.url}${p}`, { token, headers: { 'X-Roost-Workspace': y } });
            expectNoLeak(r.text, t, w, p);
          }
          const routes: Array<[string, string]> = [
            ['GET', `/v0/tenants/${x}`], ['GET', `/v0/tenants/${x}/workspaces`], ['GET', `/v0/tenants/${x}/workspaces/${y}`],
            ['PATCH', `/v0/tenants/${x}/workspaces/${y}`], ['DELETE', `/v0/tenants/${x}/workspaces/${y}`], ['POST', `/v0/tenants/${x}/workspaces`],
            ['GET', `/v0/tenants/${x}/connections`], ['GET', `/v0/tenants/${x}/mappings`], ['PUT', `/v0/tenants/${x}/mappings`],
            ['DELETE', `/v0/tenants/${x}/sessions`], ['POST', `/v0/tenants/${x}/backups`], ['GET', `/v0/tenants/${x}/backups`],
            ['PATCH', `/v0/tenants/${x}`], ['DELETE', `/v0/tenants/${x}`], ['GET', '/v0/tenants'], ['POST', '/v0/tenants'],
          ];
          for (const [method, p] of routes) {
            const r = await call(`${srv.url}${p}`, { method, token, ...(method === 'GET' || method === 'DELETE' ? {} : json({ name: 'zz', rules: [] })) });
            expect(r.status, `${t}/${w} token: ${method} ${p}`).toBe(403);
          }
        }
      }
    }
  });

  it("a tenant admin of one tenant is refused everywhere in the other's", async () => {
    const token = admins.ta!;
    expect((await call(`${srv.url}/v0/tenants/ta/workspaces`, { token })).status).toBe(200);
    for (const w of WS) {
      for (const p of [`/v0/sql?q=SELECT+1`, '/v0/datasources', '/v0/pipes', '/v0/tokens', `/v0/pipes/p.json`]) {
        const r = await call(`${srv.url}${p}`, { token, headers: { 'X-Roost-Workspace': `${w}` } });
        expectNoLeak(r.text, 'ta', w, p);
      }
    }
    for (const p of ['/v0/tenants/tb', '/v0/tenants/tb/workspaces', '/v0/tenants/tb/workspaces/w1', '/v0/tenants/tb/connections', '/v0/tenants/tb/mappings', '/v0/tenants/tb/backups']) {
      expect((await call(`${srv.url}${p}`, { token })).status, p).toBe(403);
    }
    // A workspace name of the other tenant is just unknown here.
    const foreign = await call(`${srv.url}/v0/sql?q=SELECT+v+FROM+ev`, { token, headers: { 'X-Roost-Workspace': 'w3' } });
    expect(foreign.status).toBe(403);
    // Claiming the other tenant's IdP issuer + audience for its own access tokens: refused, and the
    // attempt is in the audit log (it was not recorded at all).
    const claim = await call(`${srv.url}/v0/tenants/ta/connections`, { method: 'POST', token, ...json({ id: 'squat', issuer: idps.tb!.issuer, client_id: 'roost', accept_idp_access_tokens: true, audience: `${AUD}/tb` }) });
    expect(claim.status, claim.text).toBe(409);
    let rec: Record<string, any> | undefined;
    for (let i = 0; i < 40 && !rec; i++) {
      rec = srv.logs.find((l) => l.msg === 'audit' && l.event === 'connection.created' && l.resource === 'connection:squat') as Record<string, any> | undefined;
      if (!rec) await new Promise((r) => setTimeout(r, 50));
    }
    expect(rec).toMatchObject({ tenant: 'ta', outcome: 'denied', details: { issuer: idps.tb!.issuer, audience: `${AUD}/tb` } });
  });
});

describe('SQL cannot reach across', () => {
  const tricks = (other: string, own: string): string[] => [
    `SELECT v FROM ${other}.ev`,
    `SELECT v FROM \`${other}\`.\`ev\``,
    `SELECT v FROM "${other}"."ev"`,
    `SELECT v FROM ${other} . ev`,
    `SELECT v FROM /* x */ ${other}/**/./**/ev`,
    `SELECT v FROM ${other}\n-- c\n.ev`,
    `SELECT v FROM ev WHERE id IN (SELECT id FROM ${other}.ev)`,
    `WITH x AS (SELECT v FROM ${other}.ev) SELECT v FROM x`,
    `SELECT v FROM ev UNION ALL SELECT v FROM ${other}.ev`,
    `SELECT a.v FROM ev AS a JOIN ${other}.ev AS b ON a.id = b.id`,
    `SELECT v FROM ${own}.ev UNION ALL SELECT v FROM ${other}.ev`,
    'SELECT name FROM system.databases',
    'SELECT database, name FROM system.tables',
    'SELECT * FROM system.parts',
    'SELECT * FROM `system`.`tables`',
    'SELECT * FROM information_schema.tables',
    'SELECT * FROM INFORMATION_SCHEMA.SCHEMATA',
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    `SELECT * FROM file('../../cells/tb/db/metadata/${other}.sql', 'LineAsString')`,
    `SELECT * FROM url('${'http'}://127.0.0.1:${new URL(srv.url).port}/v0/tenants', 'LineAsString')`,
    `SELECT * FROM remote('127.0.0.1', '${other}', 'ev')`,
    `SELECT * FROM remoteSecure('127.0.0.1', ${other}.ev)`,
    `SELECT * FROM cluster('default', '${other}', 'ev')`,
    `SELECT * FROM clusterAllReplicas('default', ${other}.ev)`,
    "SELECT * FROM s3('http://127.0.0.1:1/x.csv', 'CSV', 'a String')",
    "SELECT * FROM input('a String')",
    "SELECT * FROM executable('cat /etc/passwd', 'LineAsString', 'x String')",
    "SELECT * FROM dictionary('d')",
    "SELECT dictGet('d', 'v', toUInt64(1))",
    `SELECT * FROM merge('${other}', '.*')`,
    "SELECT * FROM merge(REGEXP('ws_.*'), '^ev$')",
    `SELECT * FROM view(SELECT v FROM ${other}.ev)`,
    'CREATE VIEW leak AS SELECT 1',
    `CREATE VIEW ${own}.leak AS SELECT v FROM ${other}.ev`,
    `SELECT * FROM jdbc('x', 'y', 'z')`,
    "SELECT * FROM mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:5432', 'db', 't', 'u', 'p')",
    "SELECT * FROM numbers(10) SETTINGS readonly = 0",
    'SELECT v FROM ev SETTINGS readonly = 0',
    'SELECT v FROM ev SETTINGS max_memory_usage = 0',
    'SELECT v FROM ev SETTINGS max_execution_time = 0',
    `SELECT 1; SELECT v FROM ${other}.ev`,
    'SELECT 1; DROP TABLE ev',
    `SELECT v FROM ev; -- \n SELECT v FROM ${other}.ev`,
    'INSERT INTO ev VALUES (1, \'x\')',
    'ALTER TABLE ev DELETE WHERE 1',
    'DROP TABLE ev',
    'TRUNCATE TABLE ev',
    `DROP DATABASE ${other}`,
    `ATTACH TABLE x FROM '/tmp/x' (a String)`,
    'SYSTEM SHUTDOWN',
    'KILL QUERY WHERE 1',
    'SET readonly = 0',
    `USE ${other}`,
    "SELECT v FROM ev INTO OUTFILE '/tmp/roost-leak.csv'",
    `SHOW TABLES FROM ${other}`,
    'SHOW DATABASES',
    `DESCRIBE TABLE ${other}.ev`,
    `EXISTS TABLE ${other}.ev`,
    `SELECT * FROM \`${other}\\\`\`.ev`,
    `SELECT v FROM ev_quarantine UNION ALL SELECT v FROM ${other}.ev_quarantine`,
  ];

  it('every trick through /v0/sql is refused with a 4xx code, and nothing leaks', async () => {
    let refused = 0;
    for (const t of TENANTS) {
      const w = 'w1';
      const token = tokens[`${t}/${w}`]!;
      for (const [x, y] of others(t, w)) {
        for (const q of tricks(dbs[`${x}/${y}`]!, dbs[`${t}/${w}`]!)) {
          const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(q)}`, { token });
          expectNoLeak(r.text, t, w, q);
          expect(r.status, `${q} → ${r.status} ${r.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
          expect(r.status, q).toBeLessThan(500);
          expect(typeof r.body.code, q).toBe('string');
          refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(300);
    expect(fs.existsSync('/tmp/roost-leak.csv')).toBe(false);
  });

  it('pipes: node SQL, template parameters and q= cannot reach across either', async () => {
    const token = tokens['ta/w1']!;
    const other = dbs['tb/w1']!;
    const sibling = dbs['ta/w2']!;
    for (const q of tricks(other, dbs['ta/w1']!).slice(0, 40)) {
      const r = await call(`${srv.url}/v0/pipes`, { method: 'POST', token, ...json({ name: `x${Math.random().toString(36).slice(2, 8)}`, nodes: [{ name: 'n', sql: q }] }) });
      expect(r.status, `node: ${q}`).toBeGreaterThanOrEqual(400);
      expect(r.status, q).toBeLessThan(500);
    }
    const params = [
      `' UNION ALL SELECT v, 1 FROM ${other}.ev --`,
      `x') UNION ALL SELECT v, 1 FROM ${sibling}.ev WHERE ('1'='1`,
      `\\' UNION ALL SELECT v, 1 FROM ${other}.ev --`,
      `${marker('tb', 'w1')}`,
      `${marker('ta', 'w2')}`,
    ];
    for (const x of params) {
      const r = await call(`${srv.url}/v0/pipes/p.json?x=${encodeURIComponent(x)}`, { token });
      expect(r.status, x).toBe(200);
      expect(r.body.data, x).toEqual([]);
      expectNoLeak(r.text, 'ta', 'w1', x);
    }
    const own = await call(`${srv.url}/v0/pipes/p.json?x=${encodeURIComponent(marker('ta', 'w1'))}`, { token });
    expect(own.body.data).toEqual([{ v: marker('ta', 'w1'), c: 300 }]);
    for (const q of [`SELECT * FROM _ UNION ALL SELECT v, 1 FROM ${other}.ev`, `SELECT * FROM ${sibling}.ev`, 'SELECT * FROM system.tables', "SELECT * FROM file('/etc/passwd', 'LineAsString')", `SELECT * FROM _; SELECT * FROM ${other}.ev`, `SELECT * FROM _ SETTINGS readonly = 0`]) {
      const r = await call(`${srv.url}/v0/pipes/p.json?x=a&q=${encodeURIComponent(q)}`, { token });
      expect(r.status, `q=${q}`).toBeGreaterThanOrEqual(400);
      expect(r.status, q).toBeLessThan(500);
      expectNoLeak(r.text, 'ta', 'w1', q);
    }
  });
});

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function latencies(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await call(`${srv.url}/v0/pipes/fast.json`, { token: tokens['tb/w1'] });
    out.push(performance.now() - t0);
    expect(r.status).toBe(200);
  }
  return out;
}

describe('resource isolation', () => {
  it("a runaway query in A is stopped by A's limits while B's endpoint latency holds", async () => {
    await latencies(20); // warm-up
    const base = await latencies(60);
    const runaway = [
      'SELECT count() FROM ev AS a, ev AS b WHERE cityHash64(a.v, b.v) % 1000000007 = 1',
      "SELECT length(groupArray(concat(v, v, v, v, v, v, v, v))) AS n FROM ev AS a, ev AS b WHERE a.id < 3000",
    ].map((q) => call(`${srv.url}/v0/sql?q=${encodeURIComponent(q)}`, { token: tokens['ta/w1'] }));
    await new Promise((r) => setTimeout(r, 200));
    // CPU time (ms) of A's cell, B's cell and the server while B is measured.
    const cpu = (pid: number) => { const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); const f = st.slice(st.lastIndexOf(')') + 2).split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
    const pids = [childProcesses(srv.proc.pid!, '/cells/ta')[0]!, childProcesses(srv.proc.pid!, '/cells/tb')[0]!, srv.proc.pid!];
    const c0 = pids.map(cpu);
    const t0 = performance.now();
    const during = await latencies(60);
    const wall = performance.now() - t0;
    const used = pids.map((p, i) => cpu(p) - c0[i]!);
    const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    const results = await Promise.all(runaway);
    const stoppedAfter = performance.now() - t0;
    for (const r of results) {
      expect(r.status, r.text.slice(0, 200)).toBeGreaterThanOrEqual(400);
      expect(['QUERY_TIMEOUT', 'LIMIT_EXCEEDED']).toContain(r.body.code);
    }
    const b50 = median(base);
    const d50 = median(during);
    const b90 = [...base].sort((a, b) => a - b)[Math.floor(base.length * 0.9)]!;
    const d90 = [...during].sort((a, b) => a - b)[Math.floor(during.length * 0.9)]!;
    console.log(`isolation: B p50 baseline ${b50.toFixed(2)} ms, during A's runaway ${d50.toFixed(2)} ms (ratio ${(d50 / b50).toFixed(2)}); p90 ${b90.toFixed(2)} → ${d90.toFixed(2)} ms; A's runaway answered ${results.map((r) => `${r.status} ${r.body.code}`).join(', ')} within ${stoppedAfter.toFixed(0)} ms; CPU ms over ${wall.toFixed(0)} ms of measuring: A cell ${used[0]}, B cell ${used[1]}, server ${used[2]}; load average ${load}; 1.5x target ${d50 <= b50 * 1.5 ? 'met' : 'NOT met'}`);
    // The target is 1.5x; the assertion is generous (5x + 5 ms) because the 2-core machine runs other
    // suites at the same time; the exact ratios are what bench/RESULTS.md reports. Sharing a cell
    // (or a queue) with A would put B behind A's seconds-long queries, far outside this bound.
    expect(d50).toBeLessThanOrEqual(b50 * 5 + 5);
    expect(d90).toBeLessThan(200);
  });

  it("SIGKILL of A's cell leaves B's requests untouched", async () => {
    // Make sure both cells run, then kill A's while B is being called.
    expect((await call(`${srv.url}/v0/sql?q=SELECT+1`, { token: tokens['ta/w1'] })).status).toBe(200);
    const cellA = childProcesses(srv.proc.pid!, `${path.sep}cells${path.sep}ta`);
    const cellB = childProcesses(srv.proc.pid!, `${path.sep}cells${path.sep}tb`);
    expect(cellA.length).toBe(1);
    expect(cellB.length).toBe(1);
    const statuses: number[] = [];
    let stop = false;
    const loop = (async () => {
      while (!stop) statuses.push((await call(`${srv.url}/v0/pipes/fast.json`, { token: tokens['tb/w2'] })).status);
    })();
    const inflightA = call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count() FROM ev AS a, ev AS b WHERE cityHash64(a.v, b.v) = 1')}`, { token: tokens['ta/w1'] });
    await new Promise((r) => setTimeout(r, 300));
    process.kill(cellA[0]!, 'SIGKILL');
    const a = await inflightA;
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await loop;
    console.log(`isolation: during the kill of A's cell B answered ${statuses.length} requests, statuses ${[...new Set(statuses)].join(',')}; A's in-flight query answered ${a.status} ${a.body.code}`);
    expect(statuses.length).toBeGreaterThan(10);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(a.status).toBe(503);
    expect(childProcesses(srv.proc.pid!, `${path.sep}cells${path.sep}tb`)).toEqual(cellB);
    // A comes back on its next request.
    expect((await call(`${srv.url}/v0/sql?q=SELECT+count()+AS+n+FROM+ev`, { token: tokens['ta/w1'] })).body.data).toEqual([{ n: 300000 }]);
  });

  it("on disk each cell directory holds its own tenant's databases and nothing else", () => {
    for (const t of TENANTS) {
      const dir = path.join(srv.dataDir, 'cells', t);
      const meta = fs.readdirSync(path.join(dir, 'db', 'metadata')).filter((f) => f.startsWith('ws_')).map((f) => f.replace(/\.sql$/, ''));
      expect(new Set(meta)).toEqual(new Set(WS.map((w) => dbs[`${t}/${w}`])));
      const other = TENANTS.find((x) => x !== t)!;
      const names = walk(dir).join('\n');
      for (const w of WS) expect(names.includes(dbs[`${other}/${w}`]!)).toBe(false);
      // Metadata files name only this tenant's databases.
      const sqlText = walk(path.join(dir, 'db', 'metadata')).filter((f) => f.endsWith('.sql')).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
      for (const w of WS) expect(sqlText.includes(dbs[`${other}/${w}`]!)).toBe(false);
    }
  });
});

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isSymbolicLink()) out.push(fs.readlinkSync(p));
  }
  return out;
}
