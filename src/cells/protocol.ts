/**
 * The wire between the server and a cell process: frames on a socket pair,
 * `[u32 length][u32 request id][u8 type][payload]`. JSON payloads for control,
 * raw bytes for data. Data flows with credits, so neither side buffers a whole
 * result or upload.
 */

export enum Frame {
  /** parent → cell, JSON {sql, format, timeoutMs}: stream a result. */
  Query = 1,
  /** parent → cell, JSON {sql}: run and return the whole small result. */
  Exec = 2,
  /** parent → cell, JSON {table, format, settings}: start an insert. */
  InsertBegin = 3,
  /** parent → cell, bytes: a piece of the insert body. */
  InsertData = 4,
  /** parent → cell, empty: the insert body is complete. */
  InsertEnd = 5,
  /** parent → cell, empty: the insert body may be split here (whole rows or blocks before it). */
  InsertMark = 9,
  /** parent → cell, empty: stop this request. */
  Cancel = 6,
  /** parent → cell, u32: the parent may take this many more data frames. */
  Credit = 7,
  /** parent → cell: liveness probe. */
  Ping = 8,
  /** cell → parent, bytes: result data. */
  Data = 20,
  /** cell → parent, JSON stats: the request finished. */
  End = 21,
  /** cell → parent, JSON {message, code, clickhouseCode}. */
  Error = 22,
  /** cell → parent, u32: the cell may take this many more insert frames. */
  InsertCredit = 23,
  /** cell → parent, JSON {version}: answer to Ping, and sent once at start. */
  Pong = 24,
  /**
   * cell → parent, empty: the query now runs in the engine (it no longer waits behind the
   * tenant's other statements); the server's time-limit backstop counts from here. Sent again
   * when the query runs again (after a fence, or as a stream).
   */
  Started = 25,
}

export const HEADER_BYTES = 9;
/** Result frames in flight per query before the cell waits for credit. */
export const WINDOW = 4;
/** Insert frames (≤ MAX_INSERT_FRAME each) in flight before the server waits for credit. */
export const INSERT_WINDOW = 16;
/** Largest data frame the parent sends for inserts. */
export const MAX_INSERT_FRAME = 1 << 20;

export function frameHeader(type: Frame, id: number, payloadBytes: number): Buffer {
  const head = Buffer.allocUnsafe(HEADER_BYTES);
  head.writeUInt32LE(payloadBytes + 5, 0);
  head.writeUInt32LE(id, 4);
  head.writeUInt8(type, 8);
  return head;
}

export function encodeFrame(type: Frame, id: number, payload?: Buffer | Uint8Array | string): Buffer {
  const body = payload === undefined ? Buffer.alloc(0) : typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = frameHeader(type, id, body.length);
  return body.length ? Buffer.concat([head, body]) : head;
}

/** Writes a frame without copying a large payload: header and body go out as one writev. */
export function writeFrame(sock: { cork(): void; uncork(): void; write(b: Buffer | Uint8Array): boolean }, type: Frame, id: number, payload: Buffer | readonly Buffer[]): boolean {
  if (!Array.isArray(payload)) {
    const one = payload as Buffer;
    if (one.length < 16 * 1024) return sock.write(encodeFrame(type, id, one));
    payload = [one];
  }
  // One frame whose payload is several buffers, written one after another (not joined).
  const parts = payload as readonly Buffer[];
  sock.cork();
  sock.write(frameHeader(type, id, parts.reduce((n, b) => n + b.length, 0)));
  let ok = true;
  for (const b of parts) ok = sock.write(b);
  sock.uncork();
  return ok;
}

export function encodeU32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n, 0);
  return b;
}

/**
 * Incremental frame decoder. Socket reads are kept as a list and joined once
 * per frame, so a large frame arriving in many reads is copied once, not once
 * per read.
 */
export class FrameReader {
  #parts: Buffer[] = [];
  #size = 0;

  push(chunk: Buffer, onFrame: (type: Frame, id: number, payload: Buffer) => void): void {
    this.#parts.push(chunk);
    this.#size += chunk.length;
    for (;;) {
      if (this.#size < HEADER_BYTES) return;
      const head = this.#peek(HEADER_BYTES);
      const len = head.readUInt32LE(0);
      if (this.#size < 4 + len) return;
      const frame = this.#take(4 + len);
      onFrame(frame.readUInt8(8) as Frame, frame.readUInt32LE(4), frame.subarray(HEADER_BYTES));
    }
  }

  #peek(n: number): Buffer {
    const first = this.#parts[0]!;
    if (first.length >= n) return first;
    return Buffer.concat(this.#parts, this.#size).subarray(0, n);
  }

  #take(n: number): Buffer {
    const first = this.#parts[0]!;
    if (first.length >= n) {
      if (first.length === n) this.#parts.shift();
      else this.#parts[0] = first.subarray(n);
      this.#size -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const p = this.#parts[0]!;
      const k = Math.min(p.length, n - off);
      p.copy(out, off, 0, k);
      off += k;
      if (k === p.length) this.#parts.shift();
      else this.#parts[0] = p.subarray(k);
    }
    this.#size -= n;
    return out;
  }
}
