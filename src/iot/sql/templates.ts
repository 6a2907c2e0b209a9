// Substitution templates: `${expression}` inside rule action fields (topics, S3 keys, ...).
// Expressions see the original payload and message context, never the SELECT aliases.

import type { EvalContext, EvalOptions, Frame } from './context.js';
import { compileExpr, makeRun, splitBasicIngest, type Evaluator } from './evaluator.js';
import { parseTemplateExpression } from './parser.js';
import { numberToString, toJson } from './values.js';

export interface CompiledTemplate {
  readonly template: string;
  render(ctx: EvalContext, options?: EvalOptions): string;
}

type Part = string | Evaluator;

export function compileTemplate(template: string): CompiledTemplate {
  const parts: Part[] = [];
  let literal = '';
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf('${', i);
    if (open < 0) {
      literal += template.slice(i);
      break;
    }
    literal += template.slice(i, open);
    const { expr, end } = parseTemplateExpression(template, open + 2);
    if (literal) parts.push(literal);
    literal = '';
    parts.push(compileExpr(expr));
    i = end;
  }
  if (literal) parts.push(literal);

  return {
    template,
    render(ctx: EvalContext, options?: EvalOptions): string {
      if (parts.length === 1 && typeof parts[0] === 'string') return parts[0];
      const { topic } = splitBasicIngest(ctx.topic);
      const run = makeRun(ctx, topic, ctx.payload, true, options);
      const frame: Frame = { doc: run.root, run };
      let out = '';
      for (const part of parts) out += typeof part === 'string' ? part : substitute(part(frame));
      return out;
    },
  };
}

/** How a value is written into the text: Undefined becomes the empty string, as AWS serialises it. */
function substitute(v: unknown): string {
  switch (typeof v) {
    case 'undefined':
      return '';
    case 'string':
      return v;
    case 'number':
      return numberToString(v);
    case 'boolean':
      return String(v);
    default:
      if (v === null) return 'null';
      if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
      return toJson(v);
  }
}

const cache = new Map<string, CompiledTemplate>();
const CACHE_LIMIT = 256;

/** Renders a template, compiling it on first use (compiled templates are cached). */
export function renderTemplate(template: string, ctx: EvalContext): string {
  let compiled = cache.get(template);
  if (!compiled) {
    compiled = compileTemplate(template);
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(template, compiled);
  }
  return compiled.render(ctx);
}
