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
  /** Lets the source go unread (its generators' cleanup runs): for a body refused after its head. */
  release(): void;
}

export async function peekBody(src: AsyncIterable<Buffer>, min: number): Promise<Peeked> {
  return peekUntil(src, (head) => head.length >= min);
}

/**
 * The first bytes of `src`, read until `enough(head)` says so (or the body ends). Pieces are
 * gathered in a growing buffer, so a body sent a byte at a time costs no more than one sent at
 * once (asking peekBody for one byte more each time joined the head again at every piece).
 */
export async function peekUntil(src: AsyncIterable<Buffer>, enough: (head: Buffer) => boolean): Promise<Peeked> {
  const it = src[Symbol.asyncIterator]();
  let buf = Buffer.alloc(0);
  let len = 0;
  let complete = false;
  while (!enough(buf.subarray(0, len))) {
    const r = await it.next();
    if (r.done) { complete = true; break; }
    const piece = r.value;
    if (len + piece.length > buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(len + piece.length, 2 * buf.length, 256));
      buf.copy(grown, 0, 0, len);
      buf = grown;
    }
    piece.copy(buf, len);
    len += piece.length;
  }
  const head = buf.subarray(0, len);
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
  return { head, rest, complete, body, release: () => { void it.return?.().catch(() => {}); } };
}

/**
 * The body, gunzipped when it is a gzip stream sent without `Content-Encoding: gzip`
 * (`curl --data-binary @rows.csv.gz`, `-F csv=@rows.csv.gz`). Gzip's first two bytes
 * (1f 8b) cannot open UTF-8 text, so no text body is mistaken for one. Without this a
 * compressed file was read as text: a header mismatch on binary noise, or worse a 200
 * with the binary in the quarantine. `limit` bounds the uncompressed size (413 beyond).
 */
export async function gunzipIfCompressed(src: AsyncIterable<Buffer>, limit: number, delimiter?: string, charset?: string): Promise<AsyncIterable<Buffer>> {
  const s = await peekBody(src, 2);
  // A text encoding the request declares other than UTF-8: decoded into UTF-8 (after the gunzip).
  const text = (body: AsyncIterable<Buffer>) => (charset && !isUtf8Label(charset) ? fromCharset(body, charset) : notUtf16(body, delimiter));
  if (!(s.head.length >= 2 && s.head[0] === 0x1f && s.head[1] === 0x8b)) return text(s.body);
  return text((async function* () {
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

/** The `charset` a media type declares (`text/csv; charset=iso-8859-1`), lower case; undefined when none. */
export function charsetOf(type: string | undefined): string | undefined {
  const m = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(type ?? '');
  return m ? m[1]!.toLowerCase() : undefined;
}

/**
 * UTF-8, or ASCII (a subset of it): read as they are. (The WHATWG encoding rules that TextDecoder
 * follows make `us-ascii` windows-1252, which would turn a UTF-8 body mislabelled ASCII into mojibake.)
 */
function isUtf8Label(label: string): boolean {
  return ['utf-8', 'utf8', 'unicode-1-1-utf-8', 'us-ascii', 'ascii'].includes(label);
}

/**
 * A body in the text encoding its request declares (`Content-Type: text/csv; charset=iso-8859-1`,
 * as Tinybird's guide tells exporters of Latin-1 files to send them), as UTF-8: it was refused as
 * invalid UTF-8 whatever the header said. Labels as the WHATWG Encoding standard knows them
 * (`iso-8859-1` and `latin1` are windows-1252, `utf-16le`, `shift_jis`, ...); an unknown one is a
 * 400, and bytes that are not valid in the encoding too (nothing is replaced silently).
 */
async function* fromCharset(src: AsyncIterable<Buffer>, label: string): AsyncIterable<Buffer> {
  // A byte-order mark wins over the declared label, as in the WHATWG decode algorithm browsers
  // use: a UTF-8 file with its BOM sent as windows-1252 had its header read as `ï»¿name`.
  const s = await peekBody(src, 3);
  const h = s.head;
  if (h.length >= 3 && h[0] === 0xef && h[1] === 0xbb && h[2] === 0xbf) { yield* s.body; return; }
  if (h.length >= 2 && h[0] === 0xff && h[1] === 0xfe) label = 'utf-16le';
  else if (h.length >= 2 && h[0] === 0xfe && h[1] === 0xff) label = 'utf-16be';
  src = s.body;
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label, { fatal: true });
  } catch {
    throw new RoostError('INVALID_PARAMETER', `the request declares charset=${label}, which this server does not know; send the body as UTF-8 (or declare its encoding by a standard name, e.g. iso-8859-1, windows-1252, utf-16le)`);
  }
  try {
    for await (const chunk of src) {
      const t = decoder.decode(chunk, { stream: true });
      if (t) yield Buffer.from(t, 'utf8');
    }
    const t = decoder.decode();
    if (t) yield Buffer.from(t, 'utf8');
  } catch (e) {
    if (e instanceof TypeError) throw new RoostError('INVALID_UTF8', `the body is not valid ${label} text, the charset its request declares: send it in that encoding, or as UTF-8 without the charset (nothing was stored)`);
    throw e;
  }
}

/**
 * The body, refused (400 INVALID_UTF8) when its first bytes are UTF-16 or UTF-32 text: a
 * byte-order mark, or the shape of such text — in UTF-16, the high byte of each character on one
 * parity is below 0x20 for the Latin, Greek, Cyrillic, Hebrew and Arabic blocks (0x00 for ASCII,
 * 0x04 for Cyrillic) while the other parity holds the letters; in UTF-32, three of every four
 * bytes are control bytes. Such text without its mark is valid UTF-8 (`a\0l\0i\0c\0e\0`) and was stored as garbage.
 * UTF-8 text has bytes below 0x20 only as line ends and tabs, and NUL padding (a FixedString
 * export) falls on both parities, so neither is refused.
 */
async function notUtf16(src: AsyncIterable<Buffer>, delimiter?: string): Promise<AsyncIterable<Buffer>> {
  // What the first chunk holds: waiting for more held a streamed body's first rows back (an
  // upload written in small pieces reached its import, and its data source, only at its end).
  const s = await peekBody(src, 1);
  const why = wideText(s.head.subarray(0, 4096), delimiter?.length === 1 ? delimiter.charCodeAt(0) : undefined);
  if (why) {
    // (The rest of the body is not read: the gunzip behind it, if any, is let go.)
    s.release();
    const from = why.startsWith('UTF-32') ? 'UTF-32' : 'UTF-16';
    throw new RoostError('INVALID_UTF8', `the body is ${why}; Roost reads UTF-8: convert the file (iconv -f ${from} -t UTF-8, or save it as "CSV UTF-8") and send it again`);
  }
  return s.body;
}

/** What wide encoding `h` (a body's first bytes) is in, said for a person; undefined for UTF-8 text. */
export function wideText(h: Buffer, delimiter?: number): string | undefined {
  if (h.length >= 4 && h[0] === 0xff && h[1] === 0xfe && h[2] === 0 && h[3] === 0) return 'UTF-32 text (it starts with a UTF-32 byte-order mark)';
  if (h.length >= 4 && h[0] === 0 && h[1] === 0 && h[2] === 0xfe && h[3] === 0xff) return 'UTF-32 text (it starts with a UTF-32 byte-order mark)';
  if (h.length >= 2 && ((h[0] === 0xff && h[1] === 0xfe) || (h[0] === 0xfe && h[1] === 0xff))) return 'UTF-16 text (it starts with a UTF-16 byte-order mark)';
  const n = h.length - (h.length % 4);
  if (n < 16) return undefined;
  // Control bytes (below 0x20, not a tab or a line end) at each position mod 4.
  const low = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) {
    const b = h[i]!;
    // (A control byte the request names as its delimiter, Hive's \x01, is the file's own.)
    if (b < 0x20 && b !== 9 && b !== 10 && b !== 13 && b !== delimiter) low[i & 3]!++;
  }
  const quarter = n / 4;
  const share = (k: number) => low[k]! / quarter;
  if ((share(2) >= 0.9 && share(3) >= 0.9 && share(1) >= 0.9) || (share(0) >= 0.9 && share(1) >= 0.9 && share(2) >= 0.9)) return 'UTF-32 text (three of every four bytes are control bytes)';
  const odd = (low[1]! + low[3]!) / (2 * quarter);
  const even = (low[0]! + low[2]!) / (2 * quarter);
  const one = Math.max(odd, even), other = Math.min(odd, even);
  if (one >= 0.6 && other <= 0.35 && one >= 2 * other) return 'UTF-16 text (every other byte is a control byte, as in UTF-16 without its byte-order mark)';
  return undefined;
}

/** The longest run of lines in front of a CSV body's first row that is looked at (csvLead). */
const LEAD_BYTES = 64 * 1024;

/**
 * What stands in front of a CSV body's first row, made harmless without moving any line (a
 * quarantined row's line number is still its line in the file sent):
 * - Excel's `sep=;` first line (what it writes, and reads, to say a CSV file's delimiter; European
 *   exports carry it): its delimiter answered, and the line left empty. Read as data it made the
 *   real header a row. (It was taken out of the body, and every line number after it was one
 *   short.)
 * - Lines of only spaces or tabs before the first row, as some exporters and hand edits leave:
 *   left empty (so skipped, as blank lines are) when the first row has more than one field. Read
 *   as a row, such a line hid the header: a create named its columns `column_00`… and stored the
 *   header as data. In a one-column file a line of spaces is a value, and stays.
 * A byte-order mark and blank lines may come first, as the reader allows before the header.
 */
export async function csvLead(src: AsyncIterable<Buffer>, delimiter?: string): Promise<{ body: AsyncIterable<Buffer>; delimiter?: string }> {
  const isSpace = (b: number | undefined) => b === 32 || b === 9;
  const isEnd = (b: number | undefined) => b === 10 || b === 13;
  /** The byte after the line end at `i` (which is a line end). */
  const afterEnd = (h: Buffer, i: number) => (h[i] === 13 && h[i + 1] === 10 ? i + 2 : i + 1);
  type Lead = { lines: Array<{ start: number; end: number }>; first: number; done: boolean };
  // The leading lines of spaces (start to the line end), the first row's start, and whether
  // enough is in `h` to decide.
  const scan = (h: Buffer, complete: boolean): Lead => {
    let i = h.length >= 3 && h[0] === 0xef && h[1] === 0xbb && h[2] === 0xbf ? 3 : 0;
    if (!complete && i === 0 && h[0] === 0xef && h.length < 3 && (h.length < 2 || h[1] === 0xbb)) return { lines: [], first: 0, done: false };
    const lines: Lead['lines'] = [];
    for (;;) {
      let j = i;
      while (j < h.length && isSpace(h[j])) j++;
      if (j === h.length) return { lines, first: i, done: complete };
      if (!isEnd(h[j])) return { lines, first: i, done: true };
      // A CR at the end of what came so far may be the first half of CRLF.
      if (h[j] === 13 && j + 1 === h.length && !complete) return { lines, first: i, done: false };
      if (j > i) lines.push({ start: i, end: j });
      i = afterEnd(h, j);
    }
  };
  /** The first row's line end in `h` from `at`, or -1. */
  const lineEnd = (h: Buffer, at: number) => {
    for (let k = at; k < h.length; k++) if (isEnd(h[k])) return h[k] === 13 && k + 1 === h.length ? -1 : k;
    return -1;
  };
  /** Excel's `sep=X` line at `at`: its character and where its line end is. */
  const sepAt = (h: Buffer, at: number): { c: number; end: number } | undefined => {
    if (h.length < at + 6 || h.subarray(at, at + 4).toString('latin1').toLowerCase() !== 'sep=') return undefined;
    const c = h[at + 4]!;
    // Spaces or tabs after the character (a hand-edited file) are not part of it.
    let e = at + 5;
    while (e < h.length && (h[e] === 32 || (h[e] === 9 && c !== 9))) e++;
    return isEnd(h[e]) && (c === 9 || (c > 32 && c < 127 && c !== 34 && c !== 39)) ? { c, end: e } : undefined;
  };
  /** The first row could be a `sep=` line, as far as `h` goes. */
  const couldBeSep = (h: Buffer, at: number) => {
    const t = h.subarray(at, at + 4).toString('latin1').toLowerCase();
    return t.length === 4 ? t === 'sep=' : 'sep='.startsWith(t);
  };
  // The first chunk decides unless more is needed to: a streamed body's first rows are not held
  // back for more than their first line.
  const s = await peekUntil(src, (h) => {
    if (h.length === 0) return false;
    if (h.length >= LEAD_BYTES) return true;
    const l = scan(h, false);
    if (!l.done) return false;
    if (!l.lines.length && !couldBeSep(h, l.first)) return true;
    const e = lineEnd(h, l.first);
    if (e < 0) return false;
    // After lines of spaces, the row after a sep= line says whether they are blank.
    return !l.lines.length || !sepAt(h, l.first) || lineEnd(h, afterEnd(h, e)) >= 0;
  });
  const { rest, body } = s;
  const h = s.head;
  const { lines, first } = scan(h, true);
  const sep = sepAt(h, first);
  const d = sep?.c;
  const sepLine = sep && { start: first, end: sep.end };
  // Lines of spaces are blanked only in front of a row of more than one field: the first row
  // after them (or after the sep= line) holds the delimiter (the one the request gives, which
  // wins over the sep= line's). A line with a tab is one when tab may be the delimiter.
  const delim = delimiter !== undefined && delimiter.length === 1 ? delimiter.charCodeAt(0) : d;
  let blank = lines;
  if (lines.length) {
    let at = first;
    if (sepLine) at = afterEnd(h, sepLine.end);
    const end = lineEnd(h, at);
    const row = h.subarray(at, end < 0 ? h.length : end);
    const many = delim !== undefined ? row.includes(delim) : [44, 59, 124, 9].some((c) => row.includes(c));
    const tabs = delim === 9 || (delim === undefined && row.includes(9));
    blank = !many ? [] : lines.filter((x) => !(tabs && h.subarray(x.start, x.end).includes(9)));
  }
  if (!sepLine && !blank.length) return { body };
  const cut = [...blank, ...(sepLine ? [sepLine] : [])].sort((a, b) => a.start - b.start);
  const kept: Buffer[] = [];
  let from = 0;
  for (const x of cut) { kept.push(h.subarray(from, x.start)); from = x.end; }
  kept.push(h.subarray(from));
  const head = Buffer.concat(kept);
  return { delimiter: d === undefined ? undefined : String.fromCharCode(d), body: (async function* () { if (head.length) yield head; yield* rest; })() };
}
