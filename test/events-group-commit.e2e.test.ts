/**
 * Group commit of /v0/events with wait=true (src/ingest/import.ts, InsertGroup): requests that
 * arrive while an insert into their data source runs go in together, as one INSERT. Each must
 * still get its own answer (its own stored and quarantined counts), its rows stored once, its
 * quarantined lines under its own line numbers; a large request goes alone; and a cell killed
 * under grouped inserts loses nothing acknowledged and leaves no request without an answer.
 * Real server, real cells, over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, childProcesses, startServer, type RunningServer } from './helpers/server.js';
import { storedIds } from './helpers/events.js';

let srv: RunningServer;
let token: string;
beforeAll(async () => {
  srv = await startServer();
  token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
});
afterAll(async () => { await srv?.stop(); });

const enc = encodeURIComponent;
async function create(name: string): Promise<void> {
  const r = await call(`${srv.url}/v0/datasources?name=${name}&format=ndjson&schema=${enc('`id` Int64 `json:$.id`, `req` Int32 `json:$.req`')}`, { method: 'POST', token });
  expect(r.status).toBe(200);
}
const send = (name: string, body: string) => call(`${srv.url}/v0/events?name=${name}&wait=true`, { method: 'POST', token, body });
async function metric(name: string): Promise<number> {
  const text = (await call(`${srv.url}/metrics`, { token: srv.operatorToken })).text;
  return Number(new RegExp(`^${name}\\{tenant="local"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
}
async function sql(q: string): Promise<string> {
  const r = await call(`${srv.url}/v0/sql?q=${enc(q)}`, { token });
  expect(r.status, r.text).toBe(200);
  return r.text.trim();
}

describe('group commit of /v0/events wait=true', () => {
  it('requests side by side share INSERTs, and each keeps its own counts, rows and quarantine lines', async () => {
    await create('gc');
    const statements0 = await metric('roost_grouped_inserts_total');
    const requests0 = await metric('roost_grouped_insert_requests_total');
    const N = 60;
    // Request k: k+1 events with ids k*1000.., and for odd k a bad line at line 2 (id not a number).
    const bodies = Array.from({ length: N }, (_, k) => {
      const lines = Array.from({ length: k + 1 }, (_, i) => JSON.stringify({ id: k * 1000 + i, req: k }));
      if (k % 2) lines.splice(1, 0, JSON.stringify({ id: 'bad', req: k }));
      return lines.join('\n') + '\n';
    });
    const answers = await Promise.all(bodies.map((b) => send('gc', b)));
    for (const [k, a] of answers.entries()) {
      expect(a.status, a.text).toBe(200);
      expect(a.body).toEqual({ successful_rows: k + 1, quarantined_rows: k % 2 });
    }
    const statements = (await metric('roost_grouped_inserts_total')) - statements0;
    expect((await metric('roost_grouped_insert_requests_total')) - requests0).toBe(N);
    // Fewer statements than requests: some went in together.
    expect(statements).toBeGreaterThan(0);
    expect(statements).toBeLessThan(N);
    const ids = await storedIds(srv, token, 'gc');
    expect(ids.size).toBe((N * (N + 1)) / 2);
    for (let k = 0; k < N; k++) for (let i = 0; i <= k; i++) expect(ids.get(k * 1000 + i), `id ${k * 1000 + i}`).toBe(1);
    expect(await sql('SELECT count() FROM gc WHERE intDiv(id, 1000) != req FORMAT TSV')).toBe('0');
    // Every quarantined line is line 2 of its own request.
    const q = (await sql('SELECT c__line, c__raw FROM gc_quarantine ORDER BY c__raw FORMAT JSONEachRow')).split('\n').map((l) => JSON.parse(l));
    expect(q.length).toBe(N / 2);
    for (const r of q) expect(Number(r.c__line)).toBe(2);
  });

  it('a request above the group limit goes alone, streamed', async () => {
    await create('gc_big');
    const statements0 = await metric('roost_grouped_inserts_total');
    const requests0 = await metric('roost_grouped_insert_requests_total');
    // 400,000 rows: ~4.8 MB encoded (two Int64/Int32 columns), over GROUP_MEMBER_MAX_BYTES (4 MiB).
    const big = Array.from({ length: 400_000 }, (_, i) => `{"id":${i},"req":1}`).join('\n') + '\n';
    const small = Array.from({ length: 8 }, (_, k) => send('gc_big', JSON.stringify({ id: 1_000_000 + k, req: 2 }) + '\n'));
    const [a, ...rest] = await Promise.all([send('gc_big', big), ...small]);
    expect(a.status, a.text).toBe(200);
    expect(a.body).toEqual({ successful_rows: 400_000, quarantined_rows: 0 });
    for (const r of rest) expect(r.status).toBe(200);
    expect((await metric('roost_grouped_insert_requests_total')) - requests0).toBe(8);
    expect((await metric('roost_grouped_inserts_total')) - statements0).toBeLessThanOrEqual(8);
    expect(await sql('SELECT count(), countIf(req = 1), uniqExact(id) FROM gc_big FORMAT TSV')).toBe("400008\t400000\t400008");
  });

  it('a cell killed under grouped inserts: every request answers, and what was acknowledged is stored once', async () => {
    await create('gc_kill');
    const acked: number[] = [];
    let next = 0;
    let killed = false;
    const statuses: number[] = [];
    const client = async () => {
      for (let round = 0; round < 12; round++) {
        const from = (next += 500) - 500;
        const r = await send('gc_kill', Array.from({ length: 500 }, (_, i) => JSON.stringify({ id: from + i, req: 0 })).join('\n') + '\n');
        statuses.push(r.status);
        if (r.status === 200) for (let i = 0; i < 500; i++) acked.push(from + i);
        else expect(r.body.code, r.text).toMatch(/CELL_UNAVAILABLE|ENGINE_UNAVAILABLE/);
        if (!killed && acked.length >= 5000) {
          killed = true;
          for (const pid of childProcesses(srv.proc.pid!, 'cell')) process.kill(pid, 'SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, client));
    expect(killed).toBe(true);
    expect(statuses.length).toBe(8 * 12);
    // The server restarts the cell; reads may answer 503 until it is back.
    let ids = new Map<number, number>();
    for (let i = 0; i < 100; i++) {
      try { ids = await storedIds(srv, token, 'gc_kill'); break; } catch { await new Promise((r) => setTimeout(r, 200)); }
    }
    const lost = acked.filter((id) => !ids.has(id));
    expect(lost.length, `acknowledged ids lost: ${lost.slice(0, 5).join(',')}`).toBe(0);
    expect([...ids.values()].filter((c) => c > 1).length).toBe(0);
  });
});

describe('a request whose values the engine refuses, grouped with others', () => {
  it('fails alone: the requests grouped with it are stored and answered 200 (they got its 422)', async () => {
    const schema = enc('`id` Int64 `json:$.id`, `tag` String `json:$.tag`, `x` UInt8 `json:$.x` DEFAULT throwIf(id = 13)');
    const made = await call(`${srv.url}/v0/datasources?name=poison&format=ndjson&schema=${schema}`, { method: 'POST', token });
    expect(made.status, made.text).toBe(200);
    const results: Array<{ tag: string; bad: boolean; status: number }> = [];
    await Promise.all(Array.from({ length: 6 }, async (_, k) => {
      for (let j = 0; j < 25; j++) {
        const tag = `g${k}_${j}`;
        const bad = k === 0 && j % 4 === 0;
        let body = '';
        for (let i = 0; i < 20; i++) body += JSON.stringify({ id: 1000 + i, tag, x: 1 }) + '\n';
        if (bad) body += JSON.stringify({ id: 13, tag }) + '\n';
        const r = await send('poison', body);
        results.push({ tag, bad, status: r.status });
      }
    }));
    const stored = new Map((await sql('SELECT tag, count() AS c FROM poison GROUP BY tag FORMAT TSV')).split('\n').filter(Boolean).map((l) => { const [t, c] = l.split('\t'); return [t!, Number(c)] as const; }));
    for (const r of results) {
      if (r.bad) {
        expect(r.status, r.tag).toBe(422);
        expect(stored.has(r.tag), r.tag).toBe(false);
      } else {
        expect(r.status, r.tag).toBe(200);
        expect(stored.get(r.tag), r.tag).toBe(20);
      }
    }
    // The requests really went in groups (else this proves nothing about them).
    expect(await metric('roost_grouped_inserts_total')).toBeGreaterThan(0);
  }, 120_000);
});
