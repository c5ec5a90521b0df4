/**
 * NDJSON bodies are converted in worker threads (src/ingest/ndjson-pool.ts) except small
 * ones, converted on the server's thread. Both must give the same thing: the same CSV rows,
 * the same lines quarantined before the validator, the same quarantine rows for what the
 * validator rejects (their NDJSON line numbers and raw text), whatever the cut of the body
 * into pieces. Real worker threads and the real native validator; nothing is mocked.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { call, startServer, type RunningServer } from './helpers/server.js';
import { rng } from './helpers/rng.js';
import { importNdjson, pieces } from './helpers/ndjson.js';
import { ndjsonSource } from '../src/ingest/ndjson.js';
import { INLINE_MAX_BYTES, ndjsonWorkerBodies, terminateNdjsonWorkers } from '../src/ingest/ndjson-pool.js';
import type { DataSourceColumn } from '../src/datasources/registry.js';

const columns = [
  { name: 'id', type: 'Int32', jsonPath: '$.id' },
  { name: 'name', type: 'String', jsonPath: '$.who.name' },
  { name: 'ts', type: 'DateTime64(3)', jsonPath: '$.ts' },
  { name: 'price', type: 'Decimal(18, 4)', jsonPath: '$.price' },
  { name: 'tags', type: 'Array(String)', jsonPath: '$.tags' },
  { name: 'n', type: 'Nullable(UInt8)', jsonPath: '$.n', nullable: true },
] as DataSourceColumn[];

/** Lines of every kind: events, invalid JSON, non-objects, escapes, BOMs, CRLF, blank lines, values the validator refuses. */
function body(seed: number, lines: number, cleanUntil = 0): Buffer {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    // Lines before `cleanUntil` are all valid: pieces the validator rejects nothing of.
    if (i < cleanUntil) { out.push(JSON.stringify({ id: i, who: { name: `n${i}` }, ts: 1714557600 + i, price: '1.5', tags: ['t'] })); continue; }
    const k = r();
    if (k < 0.03) out.push(pick(['{"id": 1,', 'not json', '[1,2]', '"text"', '', '  \t', '\uFEFF{"id": 7}']));
    else if (k < 0.06) out.push(JSON.stringify({ id: pick(['x', 3e10, -1.5, null]), who: { name: 'bad' } })); // refused by the validator
    else if (k < 0.08) out.push(`{"id": ${i}, "who": {"name": "lone \\ud800 surrogate"}}`);
    else {
      out.push(JSON.stringify({
        id: i, who: { name: pick(['ana', 'Zoë "z"', 'line\nbreak', 'comma, here', 'back\\slash', '日本語', 'tab\there']) },
        ts: pick(['2024-05-01 10:00:00.123', 1714557600.5, '2024-05-01T10:00:00Z']),
        price: pick([1.25, '3.1415', 12345678901234.5678, -0]), tags: pick([[], ['a'], ['b', 'c\nd'], [1, 2]]),
        ...(r() < 0.5 ? { n: pick([null, 7, 300]) } : {}),
      }));
    }
  }
  return Buffer.from(out.map((l, i) => (i % 5 === 0 ? l + '\r' : l)).join('\n') + '\n');
}

const run = (b: Buffer, seed: number) => importNdjson(columns, pieces(b, seed, 70_000));

afterEach(() => { delete process.env.ROOST_NDJSON_WORKERS; });

describe('NDJSON conversion in worker threads', () => {
  it('gives what the conversion on the server thread gives, for any cut of the body', async () => {
    for (const seed of [1, 2, 3]) {
      const b = body(seed, 3000, seed === 2 ? 2000 : 0);
      expect(b.length).toBeGreaterThan(INLINE_MAX_BYTES * 4);
      process.env.ROOST_NDJSON_WORKERS = '0';
      const here = await run(b, seed * 7);
      process.env.ROOST_NDJSON_WORKERS = '2';
      const before = ndjsonWorkerBodies();
      const there = await run(b, seed * 11);
      expect(ndjsonWorkerBodies()).toBe(before + 1);
      expect(there.csv).toBe(here.csv);
      expect(there.rowBinary.equals(here.rowBinary)).toBe(true);
      expect(there.quarantined).toEqual(here.quarantined);
      expect(there.stored).toBe(here.stored);
      expect(there.lines).toBe(here.lines);
      // Every event line is stored or quarantined; some of each kind are there.
      expect(there.stored + there.quarantined.length).toBe(there.lines);
      expect(there.quarantined.some((q) => q.reason === 'invalid JSON')).toBe(true);
      expect(there.quarantined.some((q) => q.column === 'id' && q.values?.[0] === 'x')).toBe(true);
      expect(there.quarantined.some((q) => /lone surrogate/.test(q.reason))).toBe(true);
    }
  });

  it('bodies side by side in the same workers stay apart', async () => {
    process.env.ROOST_NDJSON_WORKERS = '0';
    const bodies = [4, 5, 6, 7, 8].map((s) => body(s, 1500));
    const here = [];
    for (const [i, b] of bodies.entries()) here.push(await run(b, i));
    process.env.ROOST_NDJSON_WORKERS = '2';
    const there = await Promise.all(bodies.map((b, i) => run(b, i + 100)));
    for (let i = 0; i < bodies.length; i++) {
      expect(there[i]!.csv).toBe(here[i]!.csv);
      expect(there[i]!.quarantined).toEqual(here[i]!.quarantined);
    }
  });

  it('a small body is converted without a worker', async () => {
    process.env.ROOST_NDJSON_WORKERS = '2';
    const before = ndjsonWorkerBodies();
    const r = await run(Buffer.from('{"id": 1, "who": {"name": "a"}}\n{"id": "x"}\n'), 1);
    expect(ndjsonWorkerBodies()).toBe(before);
    expect(r.stored).toBe(1);
    expect(r.quarantined).toMatchObject([{ line: 2, column: 'id' }]);
  });

  it('errors in a worker are the same errors (invalid UTF-8, a line over the limit)', async () => {
    process.env.ROOST_NDJSON_WORKERS = '2';
    const bad = Buffer.concat([body(9, 1000), Buffer.from([0xff, 0xfe, 0x0a])]);
    await expect(run(bad, 3)).rejects.toMatchObject({ code: 'INVALID_UTF8' });
    const source = ndjsonSource(pieces(Buffer.concat([body(9, 1000), Buffer.alloc(100_000, 0x41)]), 5, 70_000), columns, 50_000);
    const drain = async () => { for await (const _ of source.chunks) { /* nothing */ } };
    await expect(drain()).rejects.toMatchObject({ code: 'ROW_TOO_LARGE' });
    source.done?.();
  });

  it('a worker that stops fails its bodies with a retryable error; the next body gets a new worker', async () => {
    process.env.ROOST_NDJSON_WORKERS = '1';
    async function* slow(b: Buffer): AsyncGenerator<Buffer> {
      for (let o = 0; o < b.length; o += 40_000) {
        yield b.subarray(o, o + 40_000);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const source = ndjsonSource(slow(body(10, 4000)), columns);
    const it = source.chunks[Symbol.asyncIterator]();
    await it.next();
    await terminateNdjsonWorkers();
    const drain = async () => { for (let r = await it.next(); !r.done; r = await it.next()) { /* nothing */ } };
    await expect(drain()).rejects.toMatchObject({ code: 'INTERNAL', retryable: true });
    source.done?.();
    const ok = await run(body(11, 1000), 1);
    expect(ok.stored).toBeGreaterThan(0);
  });
});

describe('NDJSON in worker threads, over HTTP', () => {
  let srv: RunningServer;
  let token: string;
  beforeAll(async () => {
    srv = await startServer();
    token = (await call(`${srv.url}/tokens`)).body.workspace_admin_token;
  });
  afterAll(async () => { await srv?.stop(); });
  const workerBodies = async () => Number(/^roost_ndjson_worker_bodies_total (\d+)/m.exec((await call(`${srv.url}/metrics`, { token: srv.operatorToken })).text)?.[1]);

  it('a large /v0/events body: every line stored or quarantined with its own line number and text', async () => {
    const schema = encodeURIComponent('`id` Int32 `json:$.id`, `name` String `json:$.who.name`');
    expect((await call(`${srv.url}/v0/datasources?name=wk&format=ndjson&schema=${schema}`, { method: 'POST', token })).status).toBe(200);
    const lines: string[] = [];
    for (let i = 1; i <= 6000; i++) {
      if (i === 17) lines.push('{"id": oops}');
      else if (i === 3001) lines.push('{"id": "three thousand and one"}');
      else if (i === 6000) lines.push('{"id": 99999999999}');
      else lines.push(JSON.stringify({ id: i, who: { name: `name ${i}` } }));
    }
    const before = await workerBodies();
    const r = await call(`${srv.url}/v0/events?name=wk&wait=true`, { method: 'POST', token, body: lines.join('\n') + '\n' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ successful_rows: 5997, quarantined_rows: 3 });
    expect(await workerBodies()).toBe(before + 1);
    const q = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT c__line, c__raw, c__error_column FROM wk_quarantine ORDER BY c__line FORMAT JSONEachRow')}`, { token });
    expect(q.text.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { c__line: 17, c__raw: '{"id": oops}', c__error_column: [] },
      { c__line: 3001, c__raw: '{"id": "three thousand and one"}', c__error_column: ['id'] },
      { c__line: 6000, c__raw: '{"id": 99999999999}', c__error_column: ['id'] },
    ]);
    const s = await call(`${srv.url}/v0/sql?q=${encodeURIComponent('SELECT count(), sum(id), countIf(name = concat(\'name \', toString(id))) FROM wk FORMAT TSV')}`, { token });
    expect(s.text.trim()).toBe(`5997\t${6000 * 5999 / 2 - 17 - 3001}\t5997`);
  });
});
