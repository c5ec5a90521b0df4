/**
 * An NDJSON worker thread (see ndjson-pool.ts): converts the bodies the server's thread
 * sends it, each by its own NdjsonConverter.
 */
import { parentPort } from 'node:worker_threads';
import { NdjsonConverter } from './ndjson.js';

const port = parentPort!;
const streams = new Map<number, NdjsonConverter | Error>();
const encoder = new TextEncoder();

interface Message {
  op: 'open' | 'push' | 'end' | 'map' | 'drop' | 'close';
  id: number;
  seq?: number;
  columns?: ConstructorParameters<typeof NdjsonConverter>[0];
  maxLineBytes?: number;
  chunk?: Uint8Array;
  rejected?: Parameters<NdjsonConverter['mapRejected']>[0];
  processed?: number;
}

function converter(id: number): NdjsonConverter {
  const c = streams.get(id);
  if (c === undefined) throw new Error(`no NDJSON stream ${id} in this worker`);
  if (c instanceof Error) throw c;
  return c;
}

port.on('message', (m: Message) => {
  try {
    switch (m.op) {
      case 'open':
        try {
          streams.set(m.id, new NdjsonConverter(m.columns!, m.maxLineBytes));
        } catch (e) {
          streams.set(m.id, e as Error); // said at the first piece
        }
        return;
      case 'push':
      case 'end': {
        const c = converter(m.id);
        const rows = m.op === 'push' ? c.push(m.chunk!) : c.end();
        // Moved to the server's thread, not copied: a buffer of its own (a Buffer may be a view of a pool).
        const csv = typeof rows === 'string' ? encoder.encode(rows) : rows.byteOffset === 0 && rows.byteLength === rows.buffer.byteLength ? rows : new Uint8Array(rows);
        port.postMessage({ seq: m.seq, ok: true, csv, early: c.takeEarly(), lines: c.counts.lines }, [csv.buffer as ArrayBuffer]);
        return;
      }
      case 'map':
        port.postMessage({ seq: m.seq, ok: true, rows: converter(m.id).mapRejected(m.rejected!, m.processed!) });
        return;
      case 'drop': {
        const c = streams.get(m.id);
        if (c instanceof NdjsonConverter) c.mapRejected([], m.processed!);
        return;
      }
      case 'close':
        streams.delete(m.id);
        return;
    }
  } catch (e) {
    const err = e as Error & { code?: string; details?: Record<string, unknown> };
    // (Its class too: a TypeError or RangeError of the conversion is what the body holds; event-buffer.ts isContentError.)
    if (m.seq !== undefined) port.postMessage({ seq: m.seq, ok: false, error: { code: err.code, message: err.message, details: err.details, name: err.name } });
  }
});
