/**
 * Every name a template could write into its SQL, read from the template alone: the
 * identifiers of its SQL text (in every `{% if %}` / `{% else %}` / `{% for %}` body,
 * whichever a call takes) and the words of the string literals inside `{{ }}` and
 * `{% %}` (`{{ symbol('b') }}`, `{% set t = 'b' %}`). `{# #}` comments are not read.
 * Over-inclusive on purpose: callers keep the words that name something (a node, a pipe).
 */
import type { Expr, TemplateNode } from './parser.js';

const WORD = /(?<![A-Za-z0-9_.])[A-Za-z_][A-Za-z0-9_]*/g;

function words(text: string, out: Set<string>): void {
  for (const m of text.matchAll(WORD)) out.add(m[0]);
}

function fromExpr(e: Expr, out: Set<string>): void {
  switch (e.kind) {
    case 'literal':
      if (typeof e.value === 'string') words(e.value, out);
      return;
    case 'name':
      return;
    case 'list':
      for (const x of e.items) fromExpr(x, out);
      return;
    case 'dict':
      for (const [k, v] of e.entries) { fromExpr(k, out); fromExpr(v, out); }
      return;
    case 'unary':
      fromExpr(e.operand, out);
      return;
    case 'binary':
    case 'bool':
      fromExpr(e.left, out);
      fromExpr(e.right, out);
      return;
    case 'compare':
      fromExpr(e.first, out);
      for (const x of e.rest) fromExpr(x, out);
      return;
    case 'ternary':
      fromExpr(e.cond, out);
      fromExpr(e.then, out);
      fromExpr(e.otherwise, out);
      return;
    case 'index':
      fromExpr(e.target, out);
      fromExpr(e.index, out);
      return;
    case 'attr':
      fromExpr(e.target, out);
      return;
    case 'call':
      for (const x of e.args) fromExpr(x, out);
      for (const [, v] of e.kwargs) fromExpr(v, out);
      return;
  }
}

/** The candidate names of parsed template nodes, first appearance first. */
export function collectNames(nodes: TemplateNode[], out = new Set<string>()): Set<string> {
  for (const n of nodes) {
    switch (n.kind) {
      case 'text':
        words(n.text, out);
        break;
      case 'output':
        fromExpr(n.expr, out);
        break;
      case 'if':
        for (const b of n.branches) { fromExpr(b.cond, out); collectNames(b.body, out); }
        if (n.otherwise) collectNames(n.otherwise, out);
        break;
      case 'for':
        fromExpr(n.iterable, out);
        collectNames(n.body, out);
        break;
      case 'set':
        fromExpr(n.expr, out);
        break;
      case 'loopctl':
        break;
    }
  }
  return out;
}
