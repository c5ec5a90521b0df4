/**
 * Shared by the NDJSON conversion tests: a body cut into pieces at random byte offsets, and
 * what an import does with an NDJSON source (each piece through the real native validator,
 * rejections mapped back to lines, in order).
 */
import { rng } from './rng.js';
import { ndjsonSource } from '../../src/ingest/ndjson.js';
import { CsvValidator } from '../../src/native/csv.js';
import type { DataSourceColumn } from '../../src/datasources/registry.js';
import type { QuarantineRow } from '../../src/ingest/quarantine.js';

/** `b` in pieces of 1..maxPiece bytes, cut anywhere (inside lines and characters too). */
export async function* pieces(b: Buffer, seed: number, maxPiece: number): AsyncGenerator<Buffer> {
  const r = rng(seed);
  for (let o = 0; o < b.length;) {
    const n = 1 + Math.floor(r() * maxPiece);
    yield b.subarray(o, o + n);
    o += n;
  }
}

/** The CSV, RowBinary, quarantine rows (in line order) and counts of an NDJSON body. */
export async function importNdjson(columns: DataSourceColumn[], body: AsyncIterable<Buffer>) {
  const source = ndjsonSource(body, columns);
  const validator = new CsvValidator({ columns, dialect: { delimiter: ',', quote: '"', escape: '' }, hasHeader: false, format: 'RowBinary' });
  const csv: Buffer[] = [];
  const rowBinary: Buffer[] = [];
  const quarantined: QuarantineRow[] = [];
  let stored = 0;
  const take = async (batch: Awaited<ReturnType<CsvValidator['push']>>) => {
    stored += batch.rowCount;
    quarantined.push(...await source.mapRejected!(batch.rejected, batch.rowCount + batch.rejected.length));
    quarantined.push(...source.takeEarlyRejects!());
    rowBinary.push(...batch.parts);
  };
  try {
    for await (const c of source.chunks) {
      csv.push(c);
      await take(await validator.push(c));
    }
    await take(await validator.finish());
  } finally {
    source.done?.();
  }
  // (In line order: when an early rejection joins the quarantine depends on the cut.)
  quarantined.sort((a, b) => a.line - b.line);
  return { csv: Buffer.concat(csv).toString(), rowBinary: Buffer.concat(rowBinary), quarantined, stored, lines: source.counts.lines };
}
