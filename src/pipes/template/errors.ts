/**
 * Template errors. Each carries a stable `RoostError` code; the HTTP
 * dispatcher turns the code (or, for `error()`/`custom_error()`, the status
 * the template asked for) into the response status.
 */
import { RoostError, type RoostErrorOptions } from '../../errors.js';

/**
 * Where `offset` (an index into the JavaScript string `source`) is: as a UTF-8 byte offset, the
 * unit the SQL analyzer's offsets are in (they were UTF-16 code units here, so the two disagreed
 * after any character beyond ASCII), and its line and column (both 1-based; the column counts
 * characters, as an editor does).
 */
export function positionOf(source: string, offset: number): { offset: number; line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, source.length);
  for (let i = 0; i < end; i++) {
    if (source.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  const column = [...source.slice(lineStart, end)].length + 1 + Math.max(0, offset - end);
  return { offset: Buffer.byteLength(source.slice(0, end)) + Math.max(0, offset - end), line, column };
}

/** The template text itself cannot be parsed (400), with the position of the problem. */
export class TemplateSyntaxError extends RoostError {
  readonly offset: number;
  readonly line: number;
  readonly column: number;
  constructor(message: string, source: string, offset: number, opts: RoostErrorOptions = {}) {
    const pos = positionOf(source, offset);
    super('TEMPLATE_SYNTAX', `${message} (line ${pos.line}, column ${pos.column})`, {
      ...opts,
      details: { ...opts.details, ...pos },
    });
    this.offset = pos.offset;
    this.line = pos.line;
    this.column = pos.column;
  }
}

/**
 * The template parses but cannot be rendered as written (422): unknown
 * function, operation on values of the wrong kind, an expression in a place
 * of the SQL where no value can be placed safely.
 */
export class TemplateInvalidError extends RoostError {
  readonly offset: number;
  constructor(message: string, source: string, offset: number, opts: RoostErrorOptions = {}) {
    const pos = positionOf(source, offset);
    super('TEMPLATE_INVALID', `${message} (line ${pos.line}, column ${pos.column})`, {
      ...opts,
      details: { ...opts.details, ...pos },
    });
    this.offset = pos.offset;
  }
}

/** A parameter value is missing or does not match its declared type (400). */
export class TemplateParameterError extends RoostError {
  readonly parameter: string;
  readonly expected: string;
  constructor(parameter: string, expected: string, message: string, opts: RoostErrorOptions = {}) {
    super('TEMPLATE_PARAMETER', message, { ...opts, details: { ...opts.details, parameter, expected } });
    this.parameter = parameter;
    this.expected = expected;
  }
}

/**
 * Raised by the template's own `error()` or `custom_error()`: the template
 * chooses the message and a 4xx status (anything else becomes 400).
 */
export class TemplateRaisedError extends RoostError {
  readonly #status: number;
  constructor(message: string, status: number, details: Record<string, unknown> = {}) {
    super('TEMPLATE_ERROR', message, { details });
    this.#status = Number.isInteger(status) && status >= 400 && status <= 499 ? status : 400;
  }
  override get status(): number {
    return this.#status;
  }
}
