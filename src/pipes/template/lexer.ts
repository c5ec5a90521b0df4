/**
 * Two small lexers: `splitTemplate` cuts template source into text and tags
 * (`{{ }}`, `{% %}`, `{# #}`), `tokenizeExpression` cuts the inside of a tag
 * into expression tokens. Every piece keeps its offset in the original
 * source so that errors can name a line and column.
 */
import { TemplateSyntaxError } from './errors.js';

export type Chunk =
  | { kind: 'text'; text: string; offset: number }
  | { kind: 'expr'; body: string; offset: number; bodyOffset: number }
  | { kind: 'stmt'; body: string; offset: number; bodyOffset: number };

/** Longest template accepted (characters); larger pipes are a mistake or an attack. */
export const MAX_TEMPLATE_LENGTH = 1 << 20;

/**
 * Finds the end of a `{{` or `{%` tag starting at `from` (just after the
 * opener): the closer counts only outside string literals and brackets, so
 * `{{ custom_error({'a': 1}) }}` and `{% set x = '%}' %}` work.
 */
function findCloser(source: string, from: number, closer: '}}' | '%}'): { end: number; blocked?: { quoteAt: number; bracketAt: number } } {
  /** Where the brackets still open were opened, innermost last. */
  const open: number[] = [];
  let quoteAt = -1;
  /** The scan's state at the first closer it met inside a string or brackets: why a tag without one has none. */
  let blocked: { quoteAt: number; bracketAt: number } | undefined;
  for (let i = from; i < source.length; i++) {
    const c = source[i];
    const closes = c === closer[0] && source[i + 1] === closer[1];
    if (closes && !blocked && (quoteAt >= 0 || open.length)) blocked = { quoteAt, bracketAt: open[open.length - 1] ?? -1 };
    if (quoteAt >= 0) {
      if (c === '\\') i++;
      else if (c === source[quoteAt]) quoteAt = -1;
      continue;
    }
    if (c === "'" || c === '"') quoteAt = i;
    else if (c === '(' || c === '[' || c === '{') open.push(i);
    else if ((c === ')' || c === ']' || c === '}') && open.length) open.pop();
    else if (closes && !open.length) return { end: i };
  }
  return { end: -1, blocked };
}

/**
 * Why a tag opened at `open` found no closer: a bracket or a quote inside it left open before the
 * first `}}` (`{{ Int32(a, 1 }}`, `{{ String(a, 'x) }}`) is said, where it opens; only a tag with
 * no closer at all is "never closed". (Both were "`{{` is never closed", with the `}}` there.)
 */
function unclosedTag(source: string, open: number, closer: '}}' | '%}', blocked: { quoteAt: number; bracketAt: number } | undefined): TemplateSyntaxError {
  if (blocked && blocked.quoteAt >= 0) return new TemplateSyntaxError(`string literal is never closed before \`${closer}\``, source, blocked.quoteAt);
  if (blocked && blocked.bracketAt >= 0) return new TemplateSyntaxError(`\`${source[blocked.bracketAt]}\` is never closed before \`${closer}\``, source, blocked.bracketAt);
  return new TemplateSyntaxError(`\`{${source[open + 1]}\` is never closed with \`${closer}\``, source, open);
}

/** Cuts `source` (whose template body starts at `start`) into text and tags. */
export function splitTemplate(source: string, start = 0): Chunk[] {
  if (source.length > MAX_TEMPLATE_LENGTH) {
    throw new TemplateSyntaxError(`template is longer than ${MAX_TEMPLATE_LENGTH} characters`, source, MAX_TEMPLATE_LENGTH);
  }
  const chunks: Chunk[] = [];
  let text = '';
  let textOffset = start;
  const flushText = (): void => {
    if (text) chunks.push({ kind: 'text', text, offset: textOffset });
    text = '';
  };
  let i = start;
  while (i < source.length) {
    const open = source.indexOf('{', i);
    if (open < 0 || open + 1 >= source.length) {
      if (!text) textOffset = i;
      text += source.slice(i);
      break;
    }
    const next = source[open + 1];
    if (next !== '{' && next !== '%' && next !== '#') {
      if (!text) textOffset = i;
      text += source.slice(i, open + 1);
      i = open + 1;
      continue;
    }
    if (!text) textOffset = i;
    text += source.slice(i, open);
    // `{{!`, `{%!`, `{#!` write the opener itself (as in Tornado).
    if (source[open + 2] === '!') {
      if (!text) textOffset = open;
      text += '{' + next;
      i = open + 3;
      continue;
    }
    if (next === '#') {
      const end = source.indexOf('#}', open + 2);
      if (end < 0) throw new TemplateSyntaxError('comment `{#` is never closed with `#}`', source, open);
      i = end + 2;
      continue;
    }
    const closer = next === '{' ? '}}' : '%}';
    const { end, blocked } = findCloser(source, open + 2, closer);
    if (end < 0) throw unclosedTag(source, open, closer, blocked);
    flushText();
    const body = source.slice(open + 2, end);
    chunks.push({ kind: next === '{' ? 'expr' : 'stmt', body, offset: open, bodyOffset: open + 2 });
    i = end + 2;
  }
  flushText();
  return chunks;
}

export type TokenType = 'name' | 'number' | 'string' | 'op' | 'eof';

export interface Token {
  type: TokenType;
  /** Operator or name text; for strings, the decoded value. */
  value: string;
  /** Offset in the template source. */
  offset: number;
}

const OPERATORS = ['//', '==', '!=', '<=', '>=', '**', '(', ')', '[', ']', '{', '}', ',', ':', '.', '+', '-', '*', '/', '%', '<', '>', '='];

const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', b: '\b', f: '\f', v: '\v', a: '\x07' };

/** Decodes a Python-style quoted string starting at `body[i]`; answers the value and the index after it. */
function readString(body: string, i: number, source: string, base: number): [string, number] {
  const quote = body[i];
  let out = '';
  let j = i + 1;
  while (j < body.length) {
    const c = body[j];
    if (c === quote) return [out, j + 1];
    if (c === '\\') {
      const e = body[j + 1];
      if (e === undefined) break;
      if (e in SIMPLE_ESCAPES) {
        out += SIMPLE_ESCAPES[e];
        j += 2;
      } else if (e === 'x' || e === 'u' || e === 'U') {
        const len = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const hex = body.slice(j + 2, j + 2 + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex) || parseInt(hex, 16) > 0x10ffff) {
          throw new TemplateSyntaxError(`bad \\${e} escape in string`, source, base + j);
        }
        out += e === 'U' ? String.fromCodePoint(parseInt(hex, 16)) : String.fromCharCode(parseInt(hex, 16));
        j += 2 + len;
      } else if (e >= '0' && e <= '7') {
        // Octal, one to three digits (Python's \0, \101).
        const oct = /^[0-7]{1,3}/.exec(body.slice(j + 1))![0];
        out += String.fromCharCode(parseInt(oct, 8));
        j += 1 + oct.length;
      } else if (e === '\n') {
        // A backslash at a line's end continues the string on the next line (nothing of it kept).
        j += 2;
      } else if (e === 'N' && body[j + 2] === '{') {
        throw new TemplateSyntaxError('\\N{name} escapes are not supported: write the character, or \\u / \\U with its code point', source, base + j);
      } else {
        // Python keeps unknown escapes as written.
        out += c + e;
        j += 2;
      }
      continue;
    }
    out += c;
    j++;
  }
  throw new TemplateSyntaxError('string literal is never closed', source, base + i);
}

/** Tokenizes an expression `body` found at `base` in `source`. */
export function tokenizeExpression(body: string, source: string, base: number): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < body.length) {
    const c = body[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const offset = base + i;
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < body.length && /[A-Za-z0-9_]/.test(body[j])) j++;
      tokens.push({ type: 'name', value: body.slice(i, j), offset });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(body[i + 1] ?? ''))) {
      const m = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/.exec(body.slice(i));
      const text = m![0];
      if (/[A-Za-z_]/.test(body[i + text.length] ?? '')) {
        throw new TemplateSyntaxError(`bad number \`${body.slice(i, i + text.length + 1)}\``, source, offset);
      }
      tokens.push({ type: 'number', value: text, offset });
      i += text.length;
      continue;
    }
    if (c === "'" || c === '"') {
      const [value, next] = readString(body, i, source, base);
      tokens.push({ type: 'string', value, offset });
      i = next;
      continue;
    }
    const op = OPERATORS.find((o) => body.startsWith(o, i));
    if (!op) throw new TemplateSyntaxError(`unexpected character \`${c}\` in expression`, source, offset);
    tokens.push({ type: 'op', value: op, offset });
    i += op.length;
  }
  tokens.push({ type: 'eof', value: '', offset: base + body.length });
  return tokens;
}
