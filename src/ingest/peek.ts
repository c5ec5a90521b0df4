/** Reading the first bytes of a body (to sniff or infer) without losing them. */

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
