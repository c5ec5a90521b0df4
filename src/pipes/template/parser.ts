/**
 * Parses template source into a tree of text, output and control nodes, and
 * each expression into a small Python-like expression tree. Nothing here
 * evaluates anything.
 */
import { TemplateSyntaxError } from './errors.js';
import { splitTemplate, tokenizeExpression, type Chunk, type Token } from './lexer.js';

export type Expr =
  | { kind: 'literal'; value: null | boolean | number | bigint | string; offset: number; /** written as a float (`3.0`, `1e3`) */ float?: true }
  | { kind: 'name'; name: string; offset: number }
  | { kind: 'list'; items: Expr[]; offset: number }
  | { kind: 'dict'; entries: Array<[Expr, Expr]>; offset: number }
  | { kind: 'unary'; op: '-' | '+' | 'not'; operand: Expr; offset: number }
  | { kind: 'binary'; op: string; left: Expr; right: Expr; offset: number }
  | { kind: 'compare'; first: Expr; ops: string[]; rest: Expr[]; offset: number }
  | { kind: 'bool'; op: 'and' | 'or'; left: Expr; right: Expr; offset: number }
  | { kind: 'ternary'; cond: Expr; then: Expr; otherwise: Expr; offset: number }
  | { kind: 'index'; target: Expr; index: Expr; offset: number }
  | { kind: 'attr'; target: Expr; name: string; offset: number }
  | { kind: 'call'; name: string; args: Expr[]; kwargs: Array<[string, Expr]>; offset: number };

export type TemplateNode =
  | { kind: 'text'; text: string; offset: number }
  | { kind: 'output'; expr: Expr; offset: number }
  | { kind: 'if'; branches: Array<{ cond: Expr; body: TemplateNode[] }>; otherwise: TemplateNode[] | null; offset: number }
  | { kind: 'for'; targets: string[]; iterable: Expr; body: TemplateNode[]; offset: number }
  | { kind: 'set'; name: string; expr: Expr; offset: number }
  | { kind: 'loopctl'; op: 'break' | 'continue'; offset: number };

const MAX_DEPTH = 64;
const MAX_BLOCK_DEPTH = 100;
/** How deep one expression's tree may be (chains of operators included). */
const MAX_TREE_DEPTH = 256;
const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'is', 'if', 'else', 'True', 'False', 'None', 'for', 'lambda']);

class ExprParser {
  #tokens: Token[];
  #pos = 0;
  #depth = 0;
  readonly #source: string;

  constructor(tokens: Token[], source: string) {
    this.#tokens = tokens;
    this.#source = source;
  }

  get peek(): Token {
    return this.#tokens[this.#pos];
  }

  next(): Token {
    return this.#tokens[this.#pos++];
  }

  fail(message: string, token: Token = this.peek): never {
    throw new TemplateSyntaxError(message, this.#source, token.offset);
  }

  isOp(value: string): boolean {
    return this.peek.type === 'op' && this.peek.value === value;
  }

  isWord(value: string): boolean {
    return this.peek.type === 'name' && this.peek.value === value;
  }

  expectOp(value: string): Token {
    if (!this.isOp(value)) this.fail(`expected \`${value}\` but found ${describe(this.peek)}`);
    return this.next();
  }

  expectEnd(): void {
    if (this.peek.type !== 'eof') this.fail(`unexpected ${describe(this.peek)}`);
  }

  /** Python conditional expression: `a if cond else b`. */
  expression(): Expr {
    if (++this.#depth > MAX_DEPTH) this.fail('expression is nested too deeply');
    try {
      const value = this.or();
      if (this.isWord('if')) {
        const t = this.next();
        const cond = this.or();
        if (!this.isWord('else')) this.fail('expected `else` in conditional expression');
        this.next();
        const otherwise = this.expression();
        return { kind: 'ternary', cond, then: value, otherwise, offset: t.offset };
      }
      return value;
    } finally {
      this.#depth--;
    }
  }

  or(): Expr {
    let left = this.and();
    while (this.isWord('or')) {
      const t = this.next();
      left = { kind: 'bool', op: 'or', left, right: this.and(), offset: t.offset };
    }
    return left;
  }

  and(): Expr {
    let left = this.not();
    while (this.isWord('and')) {
      const t = this.next();
      left = { kind: 'bool', op: 'and', left, right: this.not(), offset: t.offset };
    }
    return left;
  }

  not(): Expr {
    if (this.isWord('not')) {
      const t = this.next();
      if (++this.#depth > MAX_DEPTH) this.fail('expression is nested too deeply');
      try {
        return { kind: 'unary', op: 'not', operand: this.not(), offset: t.offset };
      } finally {
        this.#depth--;
      }
    }
    return this.comparison();
  }

  compareOp(): string | null {
    const t = this.peek;
    if (t.type === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.value)) return this.next().value;
    if (t.type === 'name' && t.value === 'in') return this.next().value;
    if (t.type === 'name' && t.value === 'not' && this.#tokens[this.#pos + 1]?.value === 'in') {
      this.#pos += 2;
      return 'not in';
    }
    if (t.type === 'name' && t.value === 'is') {
      this.next();
      if (this.isWord('not')) {
        this.next();
        return 'is not';
      }
      return 'is';
    }
    return null;
  }

  comparison(): Expr {
    const first = this.sum();
    const ops: string[] = [];
    const rest: Expr[] = [];
    for (let op = this.compareOp(); op; op = this.compareOp()) {
      ops.push(op);
      rest.push(this.sum());
    }
    return ops.length ? { kind: 'compare', first, ops, rest, offset: first.offset } : first;
  }

  sum(): Expr {
    let left = this.term();
    while (this.isOp('+') || this.isOp('-')) {
      const t = this.next();
      left = { kind: 'binary', op: t.value, left, right: this.term(), offset: t.offset };
    }
    return left;
  }

  term(): Expr {
    let left = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('//') || this.isOp('%')) {
      const t = this.next();
      left = { kind: 'binary', op: t.value, left, right: this.unary(), offset: t.offset };
    }
    return left;
  }

  unary(): Expr {
    if (this.isOp('-') || this.isOp('+')) {
      const t = this.next();
      if (++this.#depth > MAX_DEPTH) this.fail('expression is nested too deeply');
      try {
        return { kind: 'unary', op: t.value as '-' | '+', operand: this.unary(), offset: t.offset };
      } finally {
        this.#depth--;
      }
    }
    if (this.isOp('**')) this.fail('`**` is not supported');
    return this.postfix();
  }

  postfix(): Expr {
    let e = this.atom();
    for (;;) {
      if (this.isOp('(')) {
        if (e.kind !== 'name') this.fail('only template functions can be called, by name');
        e = this.call(e.name, e.offset);
      } else if (this.isOp('[')) {
        const t = this.next();
        if (this.isOp(':')) this.fail('slices are not supported');
        const index = this.expression();
        if (this.isOp(':')) this.fail('slices are not supported');
        this.expectOp(']');
        e = { kind: 'index', target: e, index, offset: t.offset };
      } else if (this.isOp('.')) {
        const t = this.next();
        const name = this.next();
        if (name.type !== 'name') this.fail('expected an attribute name after `.`', name);
        e = { kind: 'attr', target: e, name: name.value, offset: t.offset };
      } else {
        return e;
      }
    }
  }

  call(name: string, offset: number): Expr {
    this.expectOp('(');
    const args: Expr[] = [];
    const kwargs: Array<[string, Expr]> = [];
    while (!this.isOp(')')) {
      const t = this.peek;
      if (t.type === 'name' && this.#tokens[this.#pos + 1]?.type === 'op' && this.#tokens[this.#pos + 1].value === '=') {
        if (KEYWORDS.has(t.value)) this.fail(`\`${t.value}\` cannot be an argument name`);
        if (kwargs.some(([k]) => k === t.value)) this.fail(`argument \`${t.value}\` given twice`);
        this.#pos += 2;
        kwargs.push([t.value, this.expression()]);
      } else {
        if (kwargs.length) this.fail('positional argument after a keyword argument');
        if (this.isOp('*')) this.fail('`*args` is not supported');
        args.push(this.expression());
      }
      if (!this.isOp(',')) break;
      this.next();
    }
    this.expectOp(')');
    return { kind: 'call', name, args, kwargs, offset };
  }

  atom(): Expr {
    const t = this.next();
    switch (t.type) {
      case 'number': {
        if (/^[0-9]+$/.test(t.value)) {
          // Computed integers stop at ±2^4096 (evaluate.ts); a literal may not start beyond it.
          if (t.value.replace(/^0+/, '').length > 1233) throw new TemplateSyntaxError('integer literal is too large (beyond 2^4096)', this.#source, t.offset);
          const big = BigInt(t.value);
          const value = big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
          return { kind: 'literal', value, offset: t.offset };
        }
        return { kind: 'literal', value: Number(t.value), offset: t.offset, float: true };
      }
      case 'string': {
        // Adjacent literals concatenate, as in Python.
        let value = t.value;
        while (this.peek.type === 'string') value += this.next().value;
        return { kind: 'literal', value, offset: t.offset };
      }
      case 'name':
        if (t.value === 'True') return { kind: 'literal', value: true, offset: t.offset };
        if (t.value === 'False') return { kind: 'literal', value: false, offset: t.offset };
        if (t.value === 'None') return { kind: 'literal', value: null, offset: t.offset };
        if (KEYWORDS.has(t.value)) this.fail(`unexpected \`${t.value}\``, t);
        return { kind: 'name', name: t.value, offset: t.offset };
      case 'op':
        if (t.value === '(') {
          if (this.isOp(')')) this.fail('empty tuples are not supported');
          const first = this.expression();
          if (this.isOp(',')) {
            const items = [first];
            while (this.isOp(',')) {
              this.next();
              if (this.isOp(')')) break;
              items.push(this.expression());
            }
            this.expectOp(')');
            return { kind: 'list', items, offset: t.offset };
          }
          this.expectOp(')');
          return first;
        }
        if (t.value === '[') {
          const items: Expr[] = [];
          while (!this.isOp(']')) {
            items.push(this.expression());
            if (this.isWord('for')) this.fail('comprehensions are not supported');
            if (!this.isOp(',')) break;
            this.next();
          }
          this.expectOp(']');
          return { kind: 'list', items, offset: t.offset };
        }
        if (t.value === '{') {
          const entries: Array<[Expr, Expr]> = [];
          while (!this.isOp('}')) {
            const key = this.expression();
            this.expectOp(':');
            entries.push([key, this.expression()]);
            if (!this.isOp(',')) break;
            this.next();
          }
          this.expectOp('}');
          return { kind: 'dict', entries, offset: t.offset };
        }
        return this.fail(`unexpected ${describe(t)}`, t);
      case 'eof':
        return this.fail('expression ends too early', t);
    }
  }
}

function describe(t: Token): string {
  if (t.type === 'eof') return 'end of expression';
  if (t.type === 'string') return 'a string';
  return `\`${t.value}\``;
}

/** Parses one whole expression found at `base` in `source`. */
export function parseExpression(body: string, source: string, base: number): Expr {
  const tokens = tokenizeExpression(body, source, base);
  const p = new ExprParser(tokens, source);
  if (p.peek.type === 'eof') p.fail('empty expression');
  const e = p.expression();
  p.expectEnd();
  checkTreeDepth(e, source);
  return e;
}

/** Sub-expressions of `e`, for the depth check. */
function children(e: Expr): Expr[] {
  switch (e.kind) {
    case 'list': return e.items;
    case 'dict': return e.entries.flat();
    case 'unary': return [e.operand];
    case 'binary': case 'bool': return [e.left, e.right];
    case 'compare': return [e.first, ...e.rest];
    case 'ternary': return [e.cond, e.then, e.otherwise];
    case 'index': return [e.target, e.index];
    case 'attr': return [e.target];
    case 'call': return [...e.args, ...e.kwargs.map(([, a]) => a)];
    default: return [];
  }
}

/**
 * The parser bounds nesting (brackets, unary operators), but a chain such as `1 + 1 + ... + 1`,
 * `a.b.c...` or `x[0][0]...` is parsed in a loop into a tree as deep as the chain is long, which
 * every walker of the tree (parameters, evaluation) then recursed through until the stack
 * overflowed (500). Measured without recursion.
 */
function checkTreeDepth(root: Expr, source: string): void {
  const stack: Array<[Expr, number]> = [[root, 1]];
  while (stack.length) {
    const [e, depth] = stack.pop()!;
    if (depth > MAX_TREE_DEPTH) throw new TemplateSyntaxError(`expression is nested too deeply (more than ${MAX_TREE_DEPTH} operations inside one another; split it with {% set %})`, source, e.offset);
    for (const c of children(e)) stack.push([c, depth + 1]);
  }
}

type Frame =
  | { kind: 'root'; body: TemplateNode[] }
  | { kind: 'if'; node: Extract<TemplateNode, { kind: 'if' }>; body: TemplateNode[]; sawElse: boolean }
  | { kind: 'for'; node: Extract<TemplateNode, { kind: 'for' }>; body: TemplateNode[] };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses a `{% ... %}` statement's body into the frame stack. */
function statement(chunk: Extract<Chunk, { kind: 'stmt' }>, stack: Frame[], source: string): void {
  const m = /^(\s*)([A-Za-z_]+)/.exec(chunk.body);
  if (!m) throw new TemplateSyntaxError('empty or malformed `{% %}` statement', source, chunk.offset);
  const keyword = m[2];
  const restOffset = chunk.bodyOffset + m[0].length;
  const rest = chunk.body.slice(m[0].length);
  const top = stack[stack.length - 1];
  const noArgs = (): void => {
    if (rest.trim()) throw new TemplateSyntaxError(`\`{% ${keyword} %}\` takes nothing after it`, source, restOffset);
  };
  switch (keyword) {
    case 'if': {
      const node: Extract<TemplateNode, { kind: 'if' }> = { kind: 'if', branches: [], otherwise: null, offset: chunk.offset };
      const body: TemplateNode[] = [];
      node.branches.push({ cond: parseExpression(rest, source, restOffset), body });
      top.body.push(node);
      stack.push({ kind: 'if', node, body, sawElse: false });
      return;
    }
    case 'elif':
    case 'else': {
      if (top.kind !== 'if') throw new TemplateSyntaxError(`\`{% ${keyword} %}\` outside \`{% if %}\``, source, chunk.offset);
      if (top.sawElse) throw new TemplateSyntaxError(`\`{% ${keyword} %}\` after \`{% else %}\``, source, chunk.offset);
      const body: TemplateNode[] = [];
      if (keyword === 'elif') {
        top.node.branches.push({ cond: parseExpression(rest, source, restOffset), body });
      } else {
        noArgs();
        top.node.otherwise = body;
        top.sawElse = true;
      }
      top.body = body;
      return;
    }
    case 'end': {
      noArgs();
      if (top.kind === 'root') throw new TemplateSyntaxError('`{% end %}` without an open block', source, chunk.offset);
      stack.pop();
      return;
    }
    case 'for': {
      const fm = /^\s*([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)\s+in\s/.exec(rest);
      if (!fm) throw new TemplateSyntaxError('expected `{% for name in expression %}`', source, restOffset);
      const targets = fm[1].split(',').map((s) => s.trim());
      for (const t of targets) {
        if (KEYWORDS.has(t)) throw new TemplateSyntaxError(`\`${t}\` cannot be a loop variable`, source, restOffset);
      }
      const iterable = parseExpression(rest.slice(fm[0].length), source, restOffset + fm[0].length);
      const body: TemplateNode[] = [];
      const node: Extract<TemplateNode, { kind: 'for' }> = { kind: 'for', targets, iterable, body, offset: chunk.offset };
      top.body.push(node);
      stack.push({ kind: 'for', node, body });
      return;
    }
    case 'set': {
      const sm = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)/.exec(rest);
      if (!sm || !NAME.test(sm[1]) || KEYWORDS.has(sm[1])) {
        throw new TemplateSyntaxError('expected `{% set name = expression %}`', source, restOffset);
      }
      const expr = parseExpression(rest.slice(sm[0].length), source, restOffset + sm[0].length);
      top.body.push({ kind: 'set', name: sm[1], expr, offset: chunk.offset });
      return;
    }
    case 'break':
    case 'continue': {
      noArgs();
      if (!stack.some((f) => f.kind === 'for')) {
        throw new TemplateSyntaxError(`\`{% ${keyword} %}\` outside \`{% for %}\``, source, chunk.offset);
      }
      top.body.push({ kind: 'loopctl', op: keyword, offset: chunk.offset });
      return;
    }
    default:
      throw new TemplateSyntaxError(`unsupported template statement \`{% ${keyword} %}\``, source, chunk.offset);
  }
}

/** Parses template source whose body (after the `%` line) starts at `start`. */
export function parseTemplate(source: string, start = 0): TemplateNode[] {
  const root: Frame = { kind: 'root', body: [] };
  const stack: Frame[] = [root];
  for (const chunk of splitTemplate(source, start)) {
    const top = stack[stack.length - 1];
    if (stack.length - 1 > MAX_BLOCK_DEPTH) { // the root is no block
      throw new TemplateSyntaxError(`blocks are nested more than ${MAX_BLOCK_DEPTH} deep`, source, chunk.offset);
    }
    if (chunk.kind === 'text') top.body.push({ kind: 'text', text: chunk.text, offset: chunk.offset });
    else if (chunk.kind === 'expr') top.body.push({ kind: 'output', expr: parseExpression(chunk.body, source, chunk.bodyOffset), offset: chunk.offset });
    else statement(chunk, stack, source);
  }
  if (stack.length > 1) {
    const open = stack[stack.length - 1] as Exclude<Frame, { kind: 'root' }>;
    throw new TemplateSyntaxError(`\`{% ${open.kind} %}\` is never closed with \`{% end %}\``, source, open.node.offset);
  }
  return root.body;
}
