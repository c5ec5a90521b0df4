/** Reading the first bytes of a body (to sniff or infer) without losing them. */
import stream from 'node:stream';
import zlib from 'node:zlib';
import { RoostError } from '../errors.js';
import { tooLarge } from '../http/context.js';

export interface Peeked {
  /** The first bytes: at least `min` unless the body was shorter. */
  head: Buffer;
  /** Everything after `head`. */
  rest: AsyncIterable<Buffer>;
  /** The whole body is in `head`. */
  complete: boolean;
  /** `head` followed by `rest`: the body as it was. */
  body: AsyncIterable<Buffer>;
}

export async function peekBody(src: AsyncIterable<Buffer>, min: number): Promise<Peeked> {
  const it = src[Symbol.asyncIterator]();
  const parts: Buffer[] = [];
  let n = 0;
  let complete = false;
  while (n < min) {
    const r = await it.next();
    if (r.done) { complete = true; break; }
    parts.push(r.value);
    n += r.value.length;
  }
  const head = Buffer.concat(parts);
  const rest = (async function* () {
    if (complete) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  })();
  const body = (async function* () {
    if (head.length) yield head;
    yield* rest;
  })();
  return { head, rest, complete, body };
}

/**
 * The body, gunzipped when it is a gzip stream sent without `Content-Encoding: gzip`
 * (`curl --data-binary @rows.csv.gz`, `-F csv=@rows.csv.gz`). Gzip's first two bytes
 * (1f 8b) cannot open UTF-8 text, so no text body is mistaken for one. Without this a
 * compressed file was read as text: a header mismatch on binary noise, or worse a 200
 * with the binary in the quarantine. `limit` bounds the uncompressed size (413 beyond).
 */
export async function gunzipIfCompressed(src: AsyncIterable<Buffer>, limit: number): Promise<AsyncIterable<Buffer>> {
  const s = await peekBody(src, 2);
  if (!(s.head.length >= 2 && s.head[0] === 0x1f && s.head[1] === 0x8b)) return notUtf16(s.body);
  return notUtf16((async function* () {
    const gz = zlib.createGunzip();
    stream.pipeline(stream.Readable.from(s.body), gz, () => { /* errors surface through gz */ });
    let size = 0;
    try {
      for await (const chunk of gz) {
        size += (chunk as Buffer).length;
        if (size > limit) throw tooLarge(limit, true);
        yield chunk as Buffer;
      }
    } catch (e) {
      if (e instanceof RoostError) throw e;
      if ((e as { code?: string }).code === 'Z_DATA_ERROR' || (e as { code?: string }).code === 'Z_BUF_ERROR') {
        throw new RoostError('BAD_REQUEST', 'the body starts like a gzip file but is not a valid gzip stream; send the file whole, or uncompressed');
      }
      throw e;
    } finally {
      gz.destroy();
    }
  })());
}

/**
 * The body, refused (400 INVALID_UTF8) when its first bytes are UTF-16 or UTF-32 text: a
 * byte-order mark, or a NUL in every other byte. ASCII in UTF-16 is valid UTF-8 with NULs
 * between the letters: a spreadsheet's "Unicode text" export was stored as `a\0l\0i\0c\0e\0`
 * (with its mark, a header mismatch whose message was full of NULs). Text files hold no such
 * share of NUL bytes, so no UTF-8 body is refused by this.
 */
async function notUtf16(src: AsyncIterable<Buffer>): Promise<AsyncIterable<Buffer>> {
  const s = await peekBody(src, 4096);
  const h = s.head.subarray(0, 4096);
  const bom = h.length >= 2 && ((h[0] === 0xff && h[1] === 0xfe) || (h[0] === 0xfe && h[1] === 0xff));
  let nul = 0;
  for (const b of h) if (b === 0) nul++;
  if (bom || (h.length >= 8 && nul * 4 >= h.length)) {
    throw new RoostError('INVALID_UTF8', `the body is UTF-16 or UTF-32 text (${bom ? 'it starts with a UTF-16 byte-order mark' : `${nul} of its first ${h.length} bytes are 0`}); Roost reads UTF-8: convert the file (iconv -f UTF-16 -t UTF-8, or save it as "CSV UTF-8") and send it again`);
  }
  return s.body;
}
