/**
 * A streaming multipart/form-data reader: parts come one at a time, each body
 * as an async stream of Buffers, so an upload of any size passes in bounded
 * memory. A part's body must be read (or skipped) before the next part.
 */
import { RoostError } from '../errors.js';

export interface Part {
  name: string;
  filename: string | undefined;
  contentType: string | undefined;
  body: AsyncIterable<Buffer>;
}

export function multipartBoundary(contentType: string): string | undefined {
  if (!/^multipart\/form-data/i.test(contentType)) return undefined;
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const b = m?.[1] ?? m?.[2];
  if (!b || b.length > 200) throw new RoostError('BAD_REQUEST', 'multipart body without a valid boundary parameter');
  return b;
}

const MAX_HEADER_BYTES = 16 * 1024;

/** Reads parts from `source` (the request body stream). */
export async function* readMultipart(source: AsyncIterable<Buffer>, boundary: string): AsyncGenerator<Part> {
  const it = source[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  let done = false;
  const more = async (): Promise<boolean> => {
    if (done) return false;
    const r = await it.next();
    if (r.done) { done = true; return false; }
    buf = buf.length ? Buffer.concat([buf, r.value]) : r.value;
    return true;
  };
  const delim = Buffer.from(`\r\n--${boundary}`);
  // The body starts with "--boundary" (no leading CRLF); normalise by prefixing one.
  buf = Buffer.from('\r\n');
  // Find the first delimiter.
  for (;;) {
    const i = buf.indexOf(delim);
    if (i >= 0) { buf = buf.subarray(i + delim.length); break; }
    // Only text already searched is let go (a preamble of any size passes in bounded memory). Cut
    // after reading, this dropped the unsearched first chunk: a body arriving in one piece of over
    // 16 KiB (curl -F, most clients' uploads) was 'no part (boundary not found)'.
    if (buf.length > MAX_HEADER_BYTES) buf = buf.subarray(buf.length - delim.length);
    if (!(await more())) throw new RoostError('BAD_REQUEST', 'multipart body has no part (boundary not found)');
  }
  for (;;) {
    // After a delimiter: "--" ends the body, CRLF starts a part.
    while (buf.length < 2) if (!(await more())) throw new RoostError('BAD_REQUEST', 'multipart body ends inside a delimiter');
    if (buf[0] === 0x2d && buf[1] === 0x2d) return;
    let h: number;
    while ((h = buf.indexOf('\r\n\r\n')) < 0) {
      if (buf.length > MAX_HEADER_BYTES) throw new RoostError('BAD_REQUEST', 'multipart part headers are too large');
      if (!(await more())) throw new RoostError('BAD_REQUEST', 'multipart body ends inside part headers');
    }
    const headerText = buf.subarray(0, h).toString('utf8');
    buf = buf.subarray(h + 4);
    const disp = /content-disposition:\s*form-data;([^\r\n]*)/i.exec(headerText)?.[1] ?? '';
    const name = /\bname="([^"]*)"/i.exec(disp)?.[1] ?? /\bname=([^;\s]+)/i.exec(disp)?.[1];
    if (name === undefined) throw new RoostError('BAD_REQUEST', 'multipart part without a name');
    const filename = /\bfilename="([^"]*)"/i.exec(disp)?.[1];
    const contentType = /content-type:\s*([^\r\n]+)/i.exec(headerText)?.[1]?.trim();
    let finished = false;
    const body = (async function* () {
      for (;;) {
        const i = buf.indexOf(delim);
        if (i >= 0) {
          if (i > 0) yield buf.subarray(0, i);
          buf = buf.subarray(i + delim.length);
          finished = true;
          return;
        }
        // Keep a tail that could be the start of a delimiter.
        const keep = delim.length - 1;
        if (buf.length > keep) {
          const out = buf.subarray(0, buf.length - keep);
          buf = buf.subarray(buf.length - keep);
          yield out;
        }
        if (!(await more())) throw new RoostError('BAD_REQUEST', `multipart part "${name}" is not terminated by its boundary`);
      }
    })();
    yield { name, filename, contentType, body };
    if (!finished) for await (const _ of body) { /* skip the unread rest */ }
  }
}

/** Reads a small part fully as text. */
export async function partText(part: Part, limit = 1 << 20): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of part.body) {
    n += c.length;
    if (n > limit) throw new RoostError('BODY_TOO_LARGE', `multipart field "${part.name}" is larger than ${limit} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}
