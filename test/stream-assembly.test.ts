/**
 * StreamAssembler against the real engine: chdb's streaming call, put back together,
 * must give the bytes its buffered call gives for the same query (the elapsed time aside).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Session } from 'chdb';
import { StreamAssembler, StreamLayoutError } from '../src/cells/stream-assembly.js';

let dir: string;
let session: Session;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'roost-stream-assembly-'));
  session = new Session(dir);
});
afterAll(() => {
  session?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The streamed result as the cell sends it: every chunk through the assembler. */
async function assembled(sql: string, format: string): Promise<{ bytes: Buffer; chunks: number }> {
  const a = new StreamAssembler(format);
  const raw: Buffer[] = [];
  let rows = 0;
  for await (const c of session.queryStream(sql, { format })) {
    const b = Buffer.from(c.raw());
    if (b.length === 0) continue;
    raw.push(b);
    rows += c.numRows;
  }
  const out = raw.map((b, i) => a.piece(b, i === 0, i === raw.length - 1, rows, 1234.5));
  return { bytes: Buffer.concat(out), chunks: raw.length };
}
const buffered = async (sql: string, format: string) => Buffer.from((await session.queryAsync(sql, { format })).bytes());
// The stream reports no rows_read/bytes_read (chdb's streaming call does not know them) and its own elapsed.
const sameElapsed = (b: Buffer) => b.toString('utf8').replace(/"elapsed": [0-9.eE+-]+,\s*"rows_read": \d+,\s*"bytes_read": \d+/, 'STATISTICS');

// Several blocks (65409 rows each), multi-byte text, quotes, commas, tabs and newlines in values.
const SQL = "SELECT number AS n, concat('€ \"q\", ', toString(number), '\\t\\n') AS s FROM numbers(150000)";

describe('StreamAssembler', () => {
  for (const format of ['JSON', 'JSONCompact', 'JSONStrings', 'JSONCompactStrings']) {
    it(`${format}: one document with the whole result's rows`, async () => {
      const got = await assembled(SQL, format);
      expect(got.chunks).toBeGreaterThan(1);
      const want = await buffered(SQL, format);
      expect(sameElapsed(got.bytes)).toBe(sameElapsed(want));
      const j = JSON.parse(got.bytes.toString('utf8'));
      expect(j.rows).toBe(150000);
      expect(j.data).toHaveLength(150000);
      expect(j.statistics.elapsed).toBe(1.2345);
    });
  }

  for (const format of ['CSVWithNames', 'TSVWithNames', 'TSVWithNamesAndTypes', 'CSV', 'JSONEachRow']) {
    it(`${format}: the header once, every row`, async () => {
      const got = await assembled(SQL, format);
      expect(got.chunks).toBeGreaterThan(1);
      expect(got.bytes.equals(await buffered(SQL, format))).toBe(true);
    });
  }

  for (const format of ['CSVWithNames', 'TSVWithNames', 'CSV', 'TSV']) {
    it(`${format} WITH TOTALS over several blocks: the header once, every row, the totals`, async () => {
      const sql = 'SELECT number AS s, count() AS c FROM numbers(150000) GROUP BY s WITH TOTALS ORDER BY s';
      const got = await assembled(sql, format);
      expect(got.chunks).toBeGreaterThan(2);
      expect(got.bytes.equals(await buffered(sql, format))).toBe(true);
      expect(got.bytes.toString().endsWith(format.startsWith('CSV') ? '\n0,150000\n' : '\n0\t150000\n')).toBe(true);
    });
  }

  for (const format of ['JSON', 'JSONCompact', 'JSONStrings', 'JSONCompactStrings']) {
    it(`${format} WITH TOTALS over several blocks: one document, the totals as the buffered output has them`, async () => {
      // With a LIMIT too: rows_before_limit_at_least comes from the totals chunk's trailer.
      for (const sql of [
        'SELECT number AS s, count() AS c FROM numbers(150000) GROUP BY s WITH TOTALS ORDER BY s',
        'SELECT number % 140000 AS s, count() AS c FROM numbers(150000) GROUP BY s WITH TOTALS ORDER BY s LIMIT 139000',
        // The extremes come in the same chunk, after the totals.
        'SELECT number AS s, count() AS c FROM numbers(150000) GROUP BY s WITH TOTALS ORDER BY s SETTINGS extremes = 1',
      ]) {
        const got = await assembled(sql, format);
        expect(got.chunks).toBeGreaterThan(2);
        expect(sameElapsed(got.bytes)).toBe(sameElapsed(await buffered(sql, format)));
        const j = JSON.parse(got.bytes.toString('utf8'));
        expect(j.totals).toEqual(format.startsWith('JSONCompact') ? (format.endsWith('Strings') ? ['0', '150000'] : [0, 150000]) : (format.endsWith('Strings') ? { s: '0', c: '150000' } : { s: 0, c: 150000 }));
      }
    });
  }

  it('JSON with extremes and no totals over several blocks: the extremes as the buffered output has them', async () => {
    const sql = 'SELECT number AS s FROM numbers(150000) SETTINGS extremes = 1';
    const got = await assembled(sql, 'JSON');
    expect(got.chunks).toBeGreaterThan(2);
    expect(sameElapsed(got.bytes)).toBe(sameElapsed(await buffered(sql, 'JSON')));
    expect(JSON.parse(got.bytes.toString('utf8')).extremes).toEqual({ min: { s: 0 }, max: { s: 149999 } });
  });

  it('Prometheus over several blocks: one HELP and TYPE per metric, every sample', async () => {
    const sql = "SELECT if(number < 140000, 'http_requests', 'errors') AS name, toFloat64(number) AS value, 'help text' AS help, 'counter' AS type, map('k', toString(number)) AS labels FROM numbers(150000)";
    const got = await assembled(sql, 'Prometheus');
    expect(got.chunks).toBeGreaterThan(2);
    const text = got.bytes.toString();
    expect(text.match(/^# HELP /gm)).toHaveLength(2);
    expect(text.match(/^# TYPE /gm)).toHaveLength(2);
    expect(text.match(/^(http_requests|errors)\{/gm)).toHaveLength(150000);
    // As the engine writes it in one piece, but for blank lines between blocks (ignored by the format).
    expect(text.replace(/\n\n+/g, '\n')).toBe((await buffered(sql, 'Prometheus')).toString().replace(/\n\n+/g, '\n'));
  });

  it('a LIMIT over several blocks: the rows of all of them (the server adds rows_before_limit_at_least)', async () => {
    const sql = 'SELECT number FROM numbers(300000) WHERE number % 3 = 0 LIMIT 70000';
    const r = await assembled(sql, 'JSON');
    expect(r.chunks).toBeGreaterThan(1);
    const got = JSON.parse(r.bytes.toString('utf8'));
    expect(got.rows).toBe(70000);
    expect(got.data).toHaveLength(70000);
    expect(got.data[69999]).toEqual({ number: 209997 });
  });

  it('an empty result and a one-chunk result are sent as they are', async () => {
    for (const sql of ['SELECT number FROM numbers(10) WHERE number > 100', 'SELECT number FROM numbers(10)']) {
      const got = await assembled(sql, 'JSON');
      expect(got.chunks).toBe(1);
      expect(sameElapsed(got.bytes)).toBe(sameElapsed(await buffered(sql, 'JSON')));
    }
  });

  it('a chunk of another shape fails loudly instead of being sent wrong', () => {
    const a = new StreamAssembler('JSON');
    expect(() => a.piece(Buffer.from('{"meta": []}'), true, false, 0, 0)).toThrow(StreamLayoutError);
    const c = new StreamAssembler('CSVWithNames');
    c.piece(Buffer.from('"a","b"\n1,2\n'), true, false, 0, 0);
    expect(() => c.piece(Buffer.from('"x","b"\n3,4\n'), false, true, 0, 0)).toThrow(StreamLayoutError);
  });
});
