/**
 * Watches an endpoint's streamed result on its way to the client: counts rows
 * and reads the engine's statistics from the JSON trailer for the call log,
 * and completes the trailer to Tinybird's shape where the engine left out
 * `rows_before_limit_at_least` (the embedded cell's streaming path does).
 */
import type { ServerResponse } from 'node:http';

const HOLD = 512;
const TRAILER = /"rows":\s*(\d+),(\s*)(?:("rows_before_limit_at_least")|"statistics":\s*\{\s*"elapsed":\s*[0-9.eE+-]+,\s*"rows_read":\s*(\d+),\s*"bytes_read":\s*(\d+))/;

export class ResultTail {
  #format: string;
  #held: Buffer = Buffer.alloc(0);
  #newlines = 0;
  #rows = 0;
  #readRows = 0;
  #readBytes = 0;

  constructor(format: string) { this.#format = format; }

  /** Only JSON and JSONEachRow tell anything worth reading. */
  get useful(): boolean { return this.#format === 'JSON' || this.#format === 'JSONEachRow'; }

  /** Patches `res.write`/`res.end` for this response only. */
  attach(res: ServerResponse): void {
    if (!this.useful) return;
    const write = res.write.bind(res) as (chunk: Buffer) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    const isChunk = (c: unknown): c is string | Buffer => typeof c === 'string' || Buffer.isBuffer(c);
    // Only a 200 result is watched; error bodies pass untouched.
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (res.statusCode !== 200 || !isChunk(chunk)) return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
      const out = this.#pass(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      return out.length ? write(out) : true;
    }) as ServerResponse['write'];
    res.end = ((...args: unknown[]) => {
      if (res.statusCode !== 200) return end(...args);
      if (isChunk(args[0])) {
        const out = this.#pass(typeof args[0] === 'string' ? Buffer.from(args[0]) : args[0]);
        if (out.length) write(out);
        args = args.slice(1);
      }
      const rest = this.#finish();
      if (rest.length) write(rest);
      return end(...args.filter((a) => typeof a === 'function'));
    }) as ServerResponse['end'];
  }

  #pass(chunk: Buffer): Buffer {
    if (this.#format === 'JSONEachRow') {
      // JSON escapes newlines inside values, so every newline ends one row.
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) this.#newlines++;
      return chunk;
    }
    // JSON: hold the last bytes back until the end, where the trailer is.
    const all = this.#held.length ? Buffer.concat([this.#held, chunk]) : chunk;
    if (all.length <= HOLD) { this.#held = all; return Buffer.alloc(0); }
    this.#held = Buffer.from(all.subarray(all.length - HOLD));
    return all.subarray(0, all.length - HOLD);
  }

  #finish(): Buffer {
    if (this.#format !== 'JSON') return Buffer.alloc(0);
    let text = this.#held.toString('utf8');
    this.#held = Buffer.alloc(0);
    // Values in `data` are JSON strings with escaped quotes, so this shape only matches the trailer.
    const m = TRAILER.exec(text);
    if (!m) return Buffer.from(text);
    this.#rows = Number(m[1]);
    if (!m[3]) {
      this.#readRows = Number(m[4]);
      this.#readBytes = Number(m[5]);
      // The rows sent are a true lower bound of the rows before LIMIT.
      const at = m.index + m[0].indexOf('"statistics"');
      text = `${text.slice(0, at)}"rows_before_limit_at_least": ${m[1]},${m[2]}${text.slice(at)}`;
    } else {
      const s = /"rows_read":\s*(\d+),\s*"bytes_read":\s*(\d+)/.exec(text);
      if (s) { this.#readRows = Number(s[1]); this.#readBytes = Number(s[2]); }
    }
    return Buffer.from(text);
  }

  /** `{rows, readRows, readBytes}` as far as known (0 when not). */
  result(): { rows: number; readRows: number; readBytes: number } {
    if (this.#format === 'JSONEachRow') return { rows: this.#newlines, readRows: 0, readBytes: 0 };
    return { rows: this.#rows, readRows: this.#readRows, readBytes: this.#readBytes };
  }
}
