// Excel's `sep=;` first line is found whatever the pieces a streamed body arrives in: byte by
// byte, after a byte-order mark or blank lines, with spaces after its character.
import { describe, expect, it } from 'vitest';
import { excelSepLine } from '../src/ingest/peek.js';

async function* pieces(text: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < text.length; i += size) yield text.subarray(i, i + size);
}

async function read(text: string | Buffer, size: number): Promise<{ delimiter?: string; rest: string }> {
  const buf = typeof text === 'string' ? Buffer.from(text) : text;
  const r = await excelSepLine(pieces(buf, size));
  const parts: Buffer[] = [];
  for await (const p of r.body) parts.push(p);
  return { delimiter: r.delimiter, rest: Buffer.concat(parts).toString('utf8') };
}

describe("Excel's sep= line", () => {
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  const cases: Array<[string, string | Buffer, string | undefined, string]> = [
    ['plain', 'sep=;\nid;name\n1;a\n', ';', 'id;name\n1;a\n'],
    ['CRLF', 'sep=|\r\nid|name\r\n', '|', 'id|name\r\n'],
    ['after a byte-order mark', Buffer.concat([bom, Buffer.from('sep=;\nid;name\n')]), ';', 'id;name\n'],
    ['after blank lines', '\r\n\nsep=;\nid;name\n', ';', 'id;name\n'],
    ['with spaces and a tab after it', 'sep=; \t\nid;name\n', ';', 'id;name\n'],
    ['a tab', 'sep=\t\nid\tname\n', '\t', 'id\tname\n'],
    ['data that starts like it', 'sep=x,y\n1,2\n', undefined, 'sep=x,y\n1,2\n'],
    ['no such line', 'id;name\n1;a\n', undefined, 'id;name\n1;a\n'],
  ];
  for (const [what, text, delimiter, rest] of cases) {
    it(`${what}: the same in one piece and byte by byte`, async () => {
      for (const size of [1 << 20, 1, 2, 3]) {
        expect(await read(text, size), `${what}, pieces of ${size}`).toEqual({ delimiter, rest });
      }
    });
  }
});
