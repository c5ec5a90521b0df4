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
}

export const HEADER_BYTES = 9;
/** Data frames in flight per request before the sender waits for credit. */
export const WINDOW = 4;
/** Largest data frame the parent sends for inserts. */
export const MAX_INSERT_FRAME = 1 << 20;

export function encodeFrame(type: Frame, id: number, payload?: Buffer | Uint8Array | string): Buffer {
  const body = payload === undefined ? Buffer.alloc(0) : typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = Buffer.allocUnsafe(HEADER_BYTES);
  head.writeUInt32LE(body.length + 5, 0);
  head.writeUInt32LE(id, 4);
  head.writeUInt8(type, 8);
  return body.length ? Buffer.concat([head, body]) : head;
}

export function encodeU32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n, 0);
  return b;
}

/** Incremental frame decoder. */
export class FrameReader {
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onFrame: (type: Frame, id: number, payload: Buffer) => void): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    let pos = 0;
    while (this.#buf.length - pos >= 4) {
      const len = this.#buf.readUInt32LE(pos);
      if (this.#buf.length - pos - 4 < len) break;
      const id = this.#buf.readUInt32LE(pos + 4);
      const type = this.#buf.readUInt8(pos + 8) as Frame;
      const payload = this.#buf.subarray(pos + HEADER_BYTES, pos + 4 + len);
      pos += 4 + len;
      onFrame(type, id, payload);
    }
    this.#buf = pos === this.#buf.length ? Buffer.alloc(0) : this.#buf.subarray(pos);
  }
}
