/**
 * The rendered SQL, built piece by piece while tracking where in ClickHouse's
 * lexical grammar the end of the text is (code, string, quoted identifier,
 * comment, heredoc). A value is written for the context it lands in: as a
 * literal in code, as escaped content inside a string or quoted identifier
 * the template author opened, neutralised inside comments, refused where no
 * escaping exists (heredocs, right after a backslash). Adjacent pieces that
 * would fuse into another token (`-` `-5` → a `--` comment, `'a'` `'b'` →
 * one string) are separated by a space.
 */
import { escapeQuoted } from './literals.js';

/**
 * A value's last character and the next value's first are both of a word or number: written
 * together they are one token (`{{Int32(a)}}{{Int32(b)}}` gave `12`, one number). Only between
 * two values: template text glued to a value (`v_{{Int32(x)}}_b`, `events_{{...}}`) builds a
 * name, the author's.
 */
function wordChars(last: string, first: string | undefined): boolean {
  return first !== undefined && /[A-Za-z0-9_]/.test(last) && /[A-Za-z0-9_]/.test(first);
}

type State =
  | { kind: 'code' }
  | { kind: 'quoted'; quote: "'" | '"' | '`' }
  | { kind: 'escape'; quote: "'" | '"' | '`' }
  | { kind: 'afterQuote'; quote: "'" | '"' | '`' }
  | { kind: 'line' }
  | { kind: 'block'; depth: number }
  | { kind: 'dollar'; tag: string }
  | { kind: 'heredoc'; tag: string; tail: string };

/** Where a value is about to be written. */
export type SqlContext = 'code' | 'string' | 'identifier' | 'line-comment' | 'block-comment' | 'unsafe';

/** Longest rendered SQL accepted, in characters. */
export const MAX_OUTPUT = 16 << 20;

export class SqlOutput {
  #parts: string[] = [];
  #length = 0;
  #state: State = { kind: 'code' };
  /** Previous character seen in code or block-comment state, for two-character tokens. */
  #prev = '';
  #last = '';
  /** The last piece was a value written in code: the next text must not fuse with it. */
  #afterValue = false;

  get length(): number {
    return this.#length;
  }

  /** Where the next character would land. */
  context(): SqlContext {
    switch (this.#state.kind) {
      case 'code':
      case 'afterQuote':
        return 'code';
      case 'quoted':
        return this.#state.quote === "'" ? 'string' : 'identifier';
      case 'line':
        return 'line-comment';
      case 'block':
        return 'block-comment';
      default:
        return 'unsafe';
    }
  }

  /** The quote character of the string or identifier being written, if any. */
  quote(): "'" | '"' | '`' | null {
    return this.#state.kind === 'quoted' ? this.#state.quote : null;
  }

  /** Appends template text verbatim. */
  text(s: string): void {
    this.#push(s);
  }

  /**
   * Appends a value. `sql` is its form in code (a literal, identifier or
   * trusted fragment); `text` is what it reads as inside a string, identifier
   * or comment. Answers false when the current context cannot hold a value.
   */
  value(sql: string, text: string): boolean {
    const ctx = this.context();
    let piece: string;
    switch (ctx) {
      case 'code':
        piece = sql;
        // A negative number right after an operand (a name, a number, a closing bracket or quote)
        // would be a subtraction: `LIMIT 1{{x}}` with -9 read `LIMIT 1-9`, the last 8 rows;
        // `n_{{k}}` with -1 read `n_ - 1`. In brackets it stays a value (`1(-9)`: a syntax error).
        if (piece.startsWith('-') && /[A-Za-z0-9_)\]'"`]/.test(this.#last)) piece = `(${piece})`;
        else if (piece && (this.#fuses(this.#last, piece[0]) || (this.#afterValue && wordChars(this.#last, piece[0])))) piece = ' ' + piece;
        break;
      case 'string':
      case 'identifier':
        piece = escapeQuoted(text, this.#state.kind === 'quoted' ? this.#state.quote : "'");
        break;
      case 'line-comment':
        piece = sql.replace(/[\r\n]/g, ' ');
        break;
      case 'block-comment':
        piece = sql.replace(/\*\//g, '* /').replace(/\/\*/g, '/ *');
        if (this.#prev === '/' && piece.startsWith('*')) piece = ' ' + piece;
        if (this.#prev === '*' && piece.startsWith('/')) piece = ' ' + piece;
        if (piece.endsWith('/') || piece.endsWith('*')) piece += ' ';
        break;
      default:
        return false;
    }
    this.#push(piece);
    if (ctx === 'code' && piece.length) this.#afterValue = true;
    return true;
  }

  /** True when a piece starting with `first` after `last` could lex as one token. */
  #fuses(last: string, first: string): boolean {
    if (!last) return false;
    if (last === '-' && first === '-') return true;
    if (last === '/' && first === '*') return true;
    if (last === '*' && first === '/') return true;
    if ((last === "'" || last === '"' || last === '`') && last === first) return true;
    if (last === '$' || first === '$') return true;
    return false;
  }

  #push(piece: string): void {
    if (!piece) return;
    // Text right after a value: keep the value's closing quote or last
    // character from fusing with the text's first character.
    if (this.#afterValue && this.#state.kind !== 'quoted' && this.#fuses(this.#last, piece[0])) piece = ' ' + piece;
    this.#afterValue = false;
    this.#length += piece.length;
    if (this.#length > MAX_OUTPUT) throw new RangeError('rendered SQL is too large');
    this.#parts.push(piece);
    for (const c of piece) this.#step(c);
    this.#last = piece[piece.length - 1];
  }

  #step(c: string): void {
    const st = this.#state;
    switch (st.kind) {
      case 'afterQuote':
        if (c === st.quote) {
          // A doubled quote is an escaped quote: still inside.
          this.#state = { kind: 'quoted', quote: st.quote };
          return;
        }
        this.#state = { kind: 'code' };
        this.#prev = '';
        this.#step(c);
        return;
      case 'code':
        if (c === "'" || c === '"' || c === '`') {
          this.#state = { kind: 'quoted', quote: c };
        } else if ((c === '-' && this.#prev === '-') || (c === '/' && this.#prev === '/')) {
          // `--` and `//` both comment out the rest of the line in ClickHouse (and in the
          // analyzer's lexer): a quote after them opens no string.
          this.#state = { kind: 'line' };
        } else if (c === '*' && this.#prev === '/') {
          this.#state = { kind: 'block', depth: 1 };
          this.#prev = '';
          return;
        } else if ((c === ' ' || c === '!') && this.#prev === '#') {
          this.#state = { kind: 'line' };
        } else if (c === '$' && !/[A-Za-z0-9_]/.test(this.#prev)) {
          this.#state = { kind: 'dollar', tag: '' };
        }
        this.#prev = this.#state.kind === 'code' ? c : '';
        return;
      case 'quoted':
        if (c === '\\') this.#state = { kind: 'escape', quote: st.quote };
        else if (c === st.quote) this.#state = { kind: 'afterQuote', quote: st.quote };
        return;
      case 'escape':
        this.#state = { kind: 'quoted', quote: st.quote };
        return;
      case 'line':
        if (c === '\n') {
          this.#state = { kind: 'code' };
          this.#prev = '';
        }
        return;
      case 'block':
        if (c === '*' && this.#prev === '/') {
          st.depth++;
          this.#prev = '';
        } else if (c === '/' && this.#prev === '*') {
          st.depth--;
          this.#prev = '';
          if (st.depth === 0) this.#state = { kind: 'code' };
        } else {
          this.#prev = c;
        }
        return;
      case 'dollar':
        if (c === '$') this.#state = { kind: 'heredoc', tag: st.tag, tail: '' };
        else if (/[A-Za-z0-9_]/.test(c)) st.tag += c;
        else {
          // `$name` that is not a heredoc opener: an identifier or a parameter.
          this.#state = { kind: 'code' };
          this.#prev = '';
          this.#step(c);
        }
        return;
      case 'heredoc': {
        const close = `$${st.tag}$`;
        st.tail = (st.tail + c).slice(-close.length);
        if (st.tail === close) {
          this.#state = { kind: 'code' };
          this.#prev = '';
        }
        return;
      }
    }
  }

  toString(): string {
    return this.#parts.join('');
  }
}
