/**
 * Concurrency audit: data source operations that real users run at the same time, against the
 * real server and embedded engine. The assertions are invariants (statuses, schemas, counts),
 * never timings; a held request body pins the interleaving that loses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';

let srv: RunningServer;
let admin: string;

const post = (path: string, body?: BodyInit, headers: Record<string, string> = {}) =>
  call(`${srv.url}${path}`, { method: 'POST', token: admin, body, headers, ...(body instanceof ReadableStream ? { duplex: 'half' } : {}) } as RequestInit & { token: string });
const del = (path: string) => call(`${srv.url}${path}`, { method: 'DELETE', token: admin });
const sql = async (q: string) => {
  const r = await call(`${srv.url}/v0/sql?q=${encodeURIComponent(q)}`, { token: admin });
  if (r.status !== 200) throw new Error(`${q}: ${r.status} ${r.text}`);
  return r.body;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CSV rows `from..to-1` of (id Int32, note String), about 100 bytes each. */
const rowsCsv = (from: number, to: number) => {
  let s = '';
  for (let i = from; i < to; i++) s += `${i},${'x'.repeat(90)}\n`;
  return s;
};

/** A body sent in two pieces: `head` at once, `tail` when released. */
function heldBody(head: string, tail: string): { body: ReadableStream<Uint8Array>; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const enc = new TextEncoder();
  let step = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (step === 0) { step++; c.enqueue(enc.encode(head)); return; }
      if (step === 1) { step++; await gate; c.enqueue(enc.encode(tail)); return; }
      c.close();
    },
  });
  return { body, release };
}

beforeAll(async () => {
  srv = await startServer();
  admin = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
}, 120_000);
afterAll(async () => { await srv?.stop(); });

describe('drop (and a create of the same name) while a replace runs', () => {
  it('never gives the new data source the old one\'s table (schema) or rows', async () => {
    for (let round = 0; round < 2; round++) {
      const name = `dr_${round}`;
      expect((await post(`/v0/datasources?name=${name}&schema=${encodeURIComponent('id Int32, note String')}`)).status).toBe(200);
      // The replace has its stage (a copy of the old table's structure) when the drop comes.
      const held = heldBody(rowsCsv(0, 2000), rowsCsv(2000, 3000));
      const replace = post(`/v0/datasources?name=${name}&mode=replace`, held.body, { 'Content-Type': 'text/csv' });
      await sleep(500);
      const drop = del(`/v0/datasources/${name}`);
      const recreate = drop.then(() => post(`/v0/datasources?name=${name}&schema=${encodeURIComponent('other String, n UInt8')}`));
      await sleep(500);
      held.release();
      const [r, d, c] = await Promise.all([replace, drop, recreate]);
      for (const x of [r, d, c]) expect(x.status, x.text).toBeLessThan(500);
      expect(d.status).toBe(200);
      expect(c.status, c.text).toBe(200);
      // The listed data source and its table agree: the new schema, none of the old rows.
      const meta = await sql(`SELECT * FROM ${name} LIMIT 0 FORMAT JSON`);
      expect(meta.meta.map((m: { name: string }) => m.name)).toEqual(['other', 'n']);
      expect((await sql(`SELECT count() AS c FROM ${name} FORMAT JSON`)).data[0].c).toBe(0);
    }
  }, 40_000);
});

describe('truncate and rows delete while a partial replace runs', () => {
  it('rows truncated or deleted (acknowledged) do not come back with the replace', async () => {
    for (const op of ['truncate', 'delete'] as const) {
      const name = `pr_${op}`;
      expect((await post(`/v0/datasources?name=${name}&schema=${encodeURIComponent('id Int32, note String')}`)).status).toBe(200);
      expect((await post(`/v0/datasources?name=${name}&mode=append`, rowsCsv(0, 1000), { 'Content-Type': 'text/csv' })).body.rows).toBe(1000);
      // Replaces the rows id >= 5000 (there are none): the rows outside are copied over as they are.
      const held = heldBody(rowsCsv(5000, 7000), rowsCsv(7000, 8000));
      const replace = post(`/v0/datasources?name=${name}&mode=replace&replace_condition=${encodeURIComponent('id >= 5000')}`, held.body, { 'Content-Type': 'text/csv' });
      await sleep(500);
      const clear = op === 'truncate'
        ? post(`/v0/datasources/${name}/truncate`)
        : post(`/v0/datasources/${name}/delete`, new URLSearchParams({ delete_condition: 'id < 5000' }));
      // Released once the replace is (or would be) past copying the kept rows.
      await sleep(300);
      held.release();
      const [r, t] = await Promise.all([replace, clear]);
      expect(r.status, r.text).toBe(200);
      expect(t.status, t.text).toBe(200);
      // Whatever the order, the truncate/delete was answered after the replace started: the old
      // rows are gone. The new ones stay unless a truncate went after the replace.
      const after = (await sql(`SELECT countIf(id < 5000) AS old, countIf(id >= 5000) AS new FROM ${name} FORMAT JSON`)).data[0];
      expect(after.old).toBe(0);
      expect(op === 'truncate' ? [0, 3000] : [3000]).toContain(after.new);
    }
  }, 40_000);
});

describe('a pipe saved while a drop of its data source waits for an import', () => {
  it('the drop sees the pipe and answers 409; the data source and the pipe keep working', async () => {
    const name = 'dp_src';
    expect((await post(`/v0/datasources?name=${name}&schema=${encodeURIComponent('id Int32, note String')}`)).status).toBe(200);
    // An append holds the data source's import lock; the drop waits behind it.
    const held = heldBody(rowsCsv(0, 500), rowsCsv(500, 600));
    const append = post(`/v0/datasources?name=${name}&mode=append`, held.body, { 'Content-Type': 'text/csv' });
    await sleep(500);
    const drop = del(`/v0/datasources/${name}`);
    await sleep(300);
    // The drop has checked for pipes already (none) and is waiting: a pipe is saved now.
    const pipe = await post('/v0/pipes', JSON.stringify({ name: 'dp_pipe', nodes: [{ name: 'n', sql: `SELECT count() AS c FROM ${name}`, type: 'endpoint' }] }), { 'Content-Type': 'application/json' });
    expect(pipe.status, pipe.text).toBe(200);
    held.release();
    expect((await append).status).toBe(200);
    const d = await drop;
    expect(d.status, d.text).toBe(409);
    expect(d.body).toMatchObject({ code: 'CONFLICT', dependents: ['dp_pipe'] });
    const e = await call(`${srv.url}/v0/pipes/dp_pipe.json`, { token: admin });
    expect(e.status, e.text).toBe(200);
    expect(e.body.data).toEqual([{ c: 600 }]);
  });
});
