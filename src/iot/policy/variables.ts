/**
 * Policy variables (`${iot:ClientId}`, `${iot:Connection.Thing.ThingName}`, ...) and the request context
 * they, and condition keys, are read from.
 */
import type { PolicyRequest } from './types.js';
import { literalTokens, policyTextTokens, type Token } from './wildcard.js';

/** A piece of a policy string: text as written, or a `${...}` variable. */
export type TemplatePart =
  | { kind: 'text'; text: string }
  | { kind: 'variable'; name: string; fallback?: string; source: string };

/** `${*}`, `${?}` and `${$}` stand for the literal characters (IAM's escapes). */
const ESCAPES = new Map([['*', '*'], ['?', '?'], ['$', '$']]);

// `${name}` or `${name, 'default'}`; the name may hold `[attr]` for thing attributes.
const VARIABLE = /\$\{\s*([^,}'\s]+)\s*(?:,\s*'([^']*)'\s*)?\}/g;

export function parseTemplate(value: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const m of value.matchAll(VARIABLE)) {
    if (m.index > last) parts.push({ kind: 'text', text: value.slice(last, m.index) });
    parts.push({ kind: 'variable', name: m[1]!, fallback: m[2], source: m[0] });
    last = m.index + m[0].length;
  }
  if (last < value.length) parts.push({ kind: 'text', text: value.slice(last) });
  return parts;
}

export function templateVariables(value: string): Extract<TemplatePart, { kind: 'variable' }>[] {
  return parseTemplate(value).filter((p): p is Extract<TemplatePart, { kind: 'variable' }> => p.kind === 'variable' && !ESCAPES.has(p.name));
}

/** Looks up condition keys / variable names in one request. */
export class RequestContext {
  private readonly extra = new Map<string, string | readonly string[]>();
  private readonly attached: boolean;

  constructor(private readonly req: PolicyRequest) {
    this.attached = req.isAttached ?? req.thingName !== undefined;
    for (const [key, value] of Object.entries(req.context ?? {})) this.extra.set(key.toLowerCase(), value);
  }

  /** The key's value(s), or undefined when the request has no such key. Key names are case-insensitive. */
  get(key: string): string | readonly string[] | undefined {
    const lower = key.toLowerCase();
    if (lower === 'iot:clientid') return this.req.clientId;
    if (lower === 'iot:connection.thing.isattached') return String(this.attached);
    if (lower === 'iot:connectattributes' && this.req.connectAttributes !== undefined) return this.req.connectAttributes;
    if (lower.startsWith('iot:connection.thing.')) {
      // AWS resolves thing variables only for a thing attached to the connecting principal.
      if (!this.attached) return undefined;
      if (lower === 'iot:connection.thing.thingname') return this.req.thingName;
      if (lower === 'iot:connection.thing.thingtypename') return this.req.thingTypeName;
      const attribute = /^iot:connection\.thing\.attributes\[(.+)\]$/i.exec(key);
      // Attribute names are case-sensitive, unlike the key prefix.
      if (attribute) return this.req.thingAttributes?.[attribute[1]!];
    }
    return this.extra.get(lower);
  }

  /** A single-valued key: a variable cannot stand for a list. */
  variable(name: string): string | undefined {
    const escaped = ESCAPES.get(name);
    if (escaped !== undefined) return escaped;
    const value = this.get(name);
    return typeof value === 'string' ? value : undefined;
  }
}

export type Expansion = { ok: true; tokens: Token[] } | { ok: false; unresolved: string };

/** A policy string split once into wildcard-aware text tokens and variables, for repeated expansion. */
export type CompiledTemplate = ReadonlyArray<{ tokens: Token[] } | Extract<TemplatePart, { kind: 'variable' }>>;

export function compileTemplate(value: string): CompiledTemplate {
  if (!value.includes('${')) return [{ tokens: policyTextTokens(value) }];
  return parseTemplate(value).map((part) => (part.kind === 'text' ? { tokens: policyTextTokens(part.text) } : part));
}

/**
 * Substitutes variables into a policy string. Text written in the policy keeps its wildcards;
 * substituted values are literal. A variable without a value (and without a default) leaves the
 * string unresolved, and the caller treats it as matching nothing.
 */
export function expandTemplate(template: string | CompiledTemplate, context: RequestContext): Expansion {
  const parts = typeof template === 'string' ? compileTemplate(template) : template;
  if (parts.length === 1 && 'tokens' in parts[0]!) return { ok: true, tokens: parts[0].tokens };
  const tokens: Token[] = [];
  for (const part of parts) {
    if ('tokens' in part) {
      tokens.push(...part.tokens);
      continue;
    }
    const resolved = context.variable(part.name) ?? part.fallback;
    if (resolved === undefined) return { ok: false, unresolved: part.source };
    tokens.push(...literalTokens(resolved));
  }
  return { ok: true, tokens };
}
