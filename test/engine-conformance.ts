/**
 * One conformance suite for the engine contract; each engine's test file runs
 * it (embedded cell, remote ClickHouse). Features an old server lacks are
 * declared by the caller from the server version, with the reason.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import type { Engine } from '../src/cells/engine.js';

export interface EngineUnderTest {
  engine: Engine;
  /** A database the suite may create tables in. */
  database: string;
  teardown(): Promise<void>;
  /** Features not available on this engine, each with the reason. */
  missing?: Record<string, string>;
}

async function collect(s: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of s) parts.push(b);
  return Buffer.concat(parts);
}

export function runEngineConformance(name: string, setup: () => Promise<EngineUnderTest | undefined>): void {
  describe(`engine conformance: ${name}`, () => {
    let ctx: EngineUnderTest | undefined;
    beforeAll(async () => { ctx = await setup(); }, 120_000);
    afterAll(async () => { await ctx?.teardown(); });

    const test = (title: string, fn: (c: EngineUnderTest) => Promise<void>, feature?: string) =>
      it(title, async (t) => {
        if (!ctx) return t.skip();
        if (feature && ctx.missing?.[feature]) {
          console.warn(`skipped on ${name}: ${title} — ${ctx.missing[feature]}`);
          return t.skip();
        }
        await fn(ctx);
      });

    test('reports a version', async ({ engine }) => {
      expect(await engine.version()).toMatch(/^\d+\.\d+/);
    });

    test('runs DDL and returns small results', async ({ engine, database }) => {
      await engine.exec(`CREATE TABLE IF NOT EXISTS ${database}.conf_small (a UInt32, s String) ENGINE = MergeTree ORDER BY a`);
      await engine.exec(`INSERT INTO ${database}.conf_small VALUES (1, 'x'), (2, 'y')`);
      expect((await engine.exec(`SELECT sum(a), count() FROM ${database}.conf_small`)).toString()).toBe('3\t2\n');
    });

    test('streams a result in the format asked for', async ({ engine }) => {
      const csv = await collect(await engine.query('SELECT number, toString(number) AS s FROM system.numbers LIMIT 3', { format: 'CSV' }));
      expect(csv.toString()).toBe('0,"0"\n1,"1"\n2,"2"\n');
      const json = JSON.parse((await collect(await engine.query('SELECT 1 AS one', { format: 'JSON' }))).toString());
      expect(json.meta).toEqual([{ name: 'one', type: 'UInt8' }]);
      expect(json.data).toEqual([{ one: 1 }]);
      expect(json.rows).toBe(1);
    });

    test('streams a large result in many chunks without losing bytes', async ({ engine }) => {
      const s = await engine.query('SELECT number FROM system.numbers LIMIT 1000000', { format: 'TSV' });
      let bytes = 0;
      let chunks = 0;
      let lines = 0;
      for await (const b of s) {
        bytes += b.length;
        chunks++;
        for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) lines++;
      }
      expect(lines).toBe(1_000_000);
      // digits of 0..999999 plus one newline each
      expect(bytes).toBe(5_888_890 + 1_000_000);
      expect(chunks).toBeGreaterThan(1);
    });

    test('streams an insert in pieces', async ({ engine, database }) => {
      await engine.exec(`CREATE TABLE IF NOT EXISTS ${database}.conf_ins (a UInt64, s String) ENGINE = MergeTree ORDER BY a`);
      async function* body() {
        for (let i = 0; i < 50; i++) {
          let s = '';
          for (let j = 0; j < 4000; j++) s += `${i * 4000 + j},"row ${j}, with comma"\n`;
          yield Buffer.from(s);
        }
      }
      const r = await engine.insert(`${database}.conf_ins`, 'CSV', body(), { settings: { input_format_skip_unknown_fields: 0 } });
      expect(r.bytes).toBeGreaterThan(0);
      expect((await engine.exec(`SELECT count(), sum(a) FROM ${database}.conf_ins`)).toString()).toBe(`200000\t${(199999 * 200000) / 2}\n`);
    });

    test('takes pieces given as lists of parts (written in order, whatever their sizes), splittable too', async ({ engine, database }) => {
      // A piece may be a list of buffers (a Native block's column buffers): sizes from a few
      // bytes to more than one frame (1 MiB), cut through rows and through characters.
      await engine.exec(`CREATE TABLE IF NOT EXISTS ${database}.conf_parts (a UInt64, s String) ENGINE = MergeTree ORDER BY a`);
      let n = 0;
      const piece = (rows: number): Buffer[] => {
        let s = '';
        for (let j = 0; j < rows; j++, n++) s += `${n},"é ${n % 7}"\n`;
        const b = Buffer.from(s);
        const cuts = [0, 1, 3, 1000, 70_000, 1_100_000, 2_300_000].filter((c) => c < b.length);
        return cuts.map((c, i) => b.subarray(c, i + 1 < cuts.length ? cuts[i + 1] : b.length));
      };
      const pieces = [piece(10), piece(150_000), [], piece(3), piece(120_000)];
      for (const splittable of [false, true]) {
        await engine.exec(`TRUNCATE TABLE ${database}.conf_parts`);
        n = 0;
        const r = await engine.insert(`${database}.conf_parts`, 'CSV', pieces, { splittable });
        expect(r.bytes).toBe(pieces.flat().reduce((x, b) => x + b.length, 0));
        const total = 10 + 150_000 + 3 + 120_000;
        expect((await engine.exec(`SELECT count(), sum(a), countIf(s = concat('é ', toString(a % 7))) FROM ${database}.conf_parts`)).toString())
          .toBe(`${total}\t${((total - 1) * total) / 2}\t${total}\n`);
      }
    });

    test('a failed insert stores nothing and says why', async ({ engine, database }) => {
      await engine.exec(`CREATE TABLE IF NOT EXISTS ${database}.conf_bad (a UInt8) ENGINE = MergeTree ORDER BY a`);
      async function* body() { yield Buffer.from('1\nnot a number\n'); }
      await expect(engine.insert(`${database}.conf_bad`, 'CSV', body())).rejects.toMatchObject({ code: 'QUERY_FAILED' });
      expect((await engine.exec(`SELECT count() FROM ${database}.conf_bad`)).toString()).toBe('0\n');
    });

    test('a failing query is a QUERY_FAILED error with the ClickHouse code', async ({ engine }) => {
      await expect(engine.exec('SELECT throwIf(1)')).rejects.toMatchObject({ code: 'QUERY_FAILED', clickhouseCode: 395 });
      await expect(engine.query('SELECT no_such_column_xyz FROM system.one', { format: 'CSV' }).then(collect)).rejects.toMatchObject({ code: 'QUERY_FAILED', clickhouseCode: 47 });
    });

    // Regression for the engine hazard in DESIGN.md: after a query fails part-way,
    // the next query of the session must not start with the failed query's rows.
    test('leftover output of a failed query never reaches the next query', async ({ engine, database }) => {
      await engine.exec(`CREATE TABLE IF NOT EXISTS ${database}.conf_leak (x UInt64) ENGINE = MergeTree ORDER BY x`);
      await engine.exec(`INSERT INTO ${database}.conf_leak SELECT number FROM system.numbers LIMIT 300000`);
      await expect(engine.exec(`SELECT x, throwIf(x > 150000) FROM ${database}.conf_leak ORDER BY x`, { format: 'CSV' })).rejects.toMatchObject({ code: 'QUERY_FAILED' });
      expect((await engine.exec("SELECT 'hello'", { format: 'CSV' })).toString()).toBe('"hello"\n');
      await expect(engine.query(`SELECT x, throwIf(x > 150000) FROM ${database}.conf_leak ORDER BY x`, { format: 'CSV' }).then(collect)).rejects.toMatchObject({ code: 'QUERY_FAILED' });
      expect((await collect(await engine.query("SELECT 'again'", { format: 'CSV' }))).toString()).toBe('"again"\n');
    });

    test('a query over its time limit is stopped with QUERY_TIMEOUT', async ({ engine }) => {
      const t0 = Date.now();
      await expect(engine.query('SELECT count() FROM system.numbers WHERE NOT ignore(sipHash64(number))', { format: 'CSV', timeoutMs: 1000 }).then(collect))
        .rejects.toMatchObject({ code: 'QUERY_TIMEOUT' });
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect((await engine.exec('SELECT 1')).toString()).toBe('1\n');
    });

    test('an aborted query is cancelled and the engine keeps serving', async ({ engine }) => {
      const ac = new AbortController();
      const s = await engine.query('SELECT number FROM system.numbers LIMIT 50000000', { format: 'TSV', signal: ac.signal });
      let chunks = 0;
      await expect((async () => {
        for await (const _ of s) {
          if (++chunks === 2) ac.abort();
        }
      })()).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
      expect((await engine.exec('SELECT 2')).toString()).toBe('2\n');
    });

    test('breaking out of a result cancels it', async ({ engine }) => {
      const s = await engine.query('SELECT number FROM system.numbers LIMIT 50000000', { format: 'TSV' });
      for await (const _ of s) break;
      expect((await engine.exec('SELECT 3')).toString()).toBe('3\n');
    });

    test('settings apply to one query only', async ({ engine }) => {
      const a = await collect(await engine.query("SELECT getSetting('max_threads')", { format: 'TSV', settings: { max_threads: 1 } }));
      expect(a.toString().trim()).toBe('1');
      const b = await collect(await engine.query("SELECT getSetting('max_threads')", { format: 'TSV' }));
      expect(b.toString().trim()).not.toBe('1');
    }, 'getSetting');
  });
}
