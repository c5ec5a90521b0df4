// What stands in front of a CSV body's first row (csvLead): Excel's `sep=;` line and lines of
// spaces are left empty, never taken out, so every line keeps its number; found whatever pieces
// a streamed body arrives in (byte by byte, after a byte-order mark or blank lines).
import { describe, expect, it } from 'vitest';
import { csvLead } from '../src/ingest/peek.js';

async function* pieces(text: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < text.length; i += size) yield text.subarray(i, i + size);
}

async function read(text: string | Buffer, size: number, delimiter?: string): Promise<{ delimiter?: string; rest: string }> {
  const buf = typeof text === 'string' ? Buffer.from(text) : text;
  const r = await csvLead(pieces(buf, size), delimiter);
  const parts: Buffer[] = [];
  for await (const p of r.body) parts.push(p);
  return { delimiter: r.delimiter, rest: Buffer.concat(parts).toString('utf8') };
}

const bom = Buffer.from([0xef, 0xbb, 0xbf]);
const lines = (s: string) => s.split(/\r\n|\r|\n/).length;

describe("Excel's sep= line", () => {
  const cases: Array<[string, string | Buffer, string | undefined, string]> = [
    ['plain', 'sep=;\nid;name\n1;a\n', ';', '\nid;name\n1;a\n'],
    ['CRLF', 'sep=|\r\nid|name\r\n', '|', '\r\nid|name\r\n'],
    ['a lone CR', 'sep=|\rid|name\r', '|', '\rid|name\r'],
    ['after a byte-order mark', Buffer.concat([bom, Buffer.from('sep=;\nid;name\n')]), ';', '\ufeff\nid;name\n'],
    ['after blank lines', '\r\n\nsep=;\nid;name\n', ';', '\r\n\n\nid;name\n'],
    ['with spaces and a tab after it', 'sep=; \t\nid;name\n', ';', '\nid;name\n'],
    ['a tab', 'sep=\t\nid\tname\n', '\t', '\nid\tname\n'],
    ['after a line of spaces', '  \nSEP=;\nid;name\n', ';', '\n\nid;name\n'],
    ['data that starts like it', 'sep=x,y\n1,2\n', undefined, 'sep=x,y\n1,2\n'],
    ['no such line', 'id;name\n1;a\n', undefined, 'id;name\n1;a\n'],
    ['a body that is only the start of one', 'sep', undefined, 'sep'],
  ];
  for (const [what, text, delimiter, rest] of cases) {
    it(`${what}: the same in one piece and byte by byte, every line still there`, async () => {
      for (const size of [1 << 20, 1, 2, 3]) {
        const r = await read(text, size);
        expect(r, `${what}, pieces of ${size}`).toEqual({ delimiter, rest });
        expect(lines(r.rest)).toBe(lines(text.toString()));
      }
    });
  }
});

describe('lines of spaces before the first row', () => {
  const cases: Array<[string, string, string | undefined, string]> = [
    ['spaces over a header', '   \nid,name\n1,a\n', undefined, '\nid,name\n1,a\n'],
    ['spaces and tabs, CRLF, after a blank line', '\r\n \t \r\nid;name\r\n', undefined, '\r\n\r\nid;name\r\n'],
    ['several, over a pipe-delimited row', ' \n  \n1|2\n', undefined, '\n\n1|2\n'],
    ['in a one-column file, a value: kept', '   \nhello\nworld\n', undefined, '   \nhello\nworld\n'],
    ['a line with a tab over a tab-separated row: a row of empty fields, kept', ' \t\nid\tname\n', undefined, ' \t\nid\tname\n'],
    ['spaces only over a tab-separated row', '  \nid\tname\n', undefined, '\nid\tname\n'],
    ['the given delimiter decides', '  \na;b\n', '|', '  \na;b\n'],
    ['the given delimiter decides (found)', '  \na|b\n', '|', '\na|b\n'],
    ['after the first row: data', 'id,name\n   \n1,a\n', undefined, 'id,name\n   \n1,a\n'],
    ['a body of only spaces', '   ', undefined, '   '],
  ];
  for (const [what, text, delimiter, rest] of cases) {
    it(`${what}: the same in one piece and byte by byte`, async () => {
      for (const size of [1 << 20, 1, 2, 5]) {
        const r = await read(text, size, delimiter);
        expect(r, `${what}, pieces of ${size}`).toEqual({ delimiter: undefined, rest });
        expect(lines(r.rest)).toBe(lines(text));
      }
    });
  }

  it('a first row longer than the lead window is not waited for past it, and nothing is lost', async () => {
    const long = '  \n' + 'x,'.repeat(50_000) + 'y\n2,3\n';
    for (const size of [1 << 20, 1000]) {
      const r = await read(long, size);
      expect(r.rest, `pieces of ${size}`).toBe(long.slice(2));
    }
  });
});
