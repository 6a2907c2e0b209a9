import type { JsonObject } from './types.js';

// Attribute addressing for selectAttributes/removeAttributes/addAttributes/deviceRegistryEnrich.
// A name is first looked up as a top-level key (IoT Analytics attribute names may contain dots);
// if the message has no such key and the name contains dots, it is read as a path into nested objects.

const isPlainObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

export function getAttribute(body: JsonObject, name: string): unknown {
  if (Object.prototype.hasOwnProperty.call(body, name)) return body[name];
  if (!name.includes('.')) return undefined;
  let cur: unknown = body;
  for (const part of name.split('.')) {
    if (!isPlainObject(cur) || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = cur[part];
  }
  return cur;
}

export function hasAttribute(body: JsonObject, name: string): boolean {
  return getAttribute(body, name) !== undefined;
}

/**
 * Removes an attribute in place. Nested objects on the path are copied before being changed, so a
 * caller that shallow-copied `body` never alters objects shared with the original message.
 */
export function removeAttribute(body: JsonObject, name: string): void {
  if (Object.prototype.hasOwnProperty.call(body, name)) {
    delete body[name];
    return;
  }
  if (!name.includes('.')) return;
  const parts = name.split('.');
  let cur: JsonObject = body;
  for (let i = 0; i < parts.length - 1; i++) {
    const next = cur[parts[i]!];
    if (!isPlainObject(next)) return;
    const copy = { ...next };
    cur[parts[i]!] = copy;
    cur = copy;
  }
  delete cur[parts[parts.length - 1]!];
}

/** A new object with only the named attributes (nested paths keep their nesting). */
export function selectAttributes(body: JsonObject, names: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const name of names) {
    if (Object.prototype.hasOwnProperty.call(body, name)) {
      out[name] = body[name];
      continue;
    }
    if (!name.includes('.')) continue;
    const value = getAttribute(body, name);
    if (value === undefined) continue;
    const parts = name.split('.');
    let cur = out;
    for (let i = 0; i < parts.length - 1; i++) {
      const existing = cur[parts[i]!];
      const next: JsonObject = isPlainObject(existing) ? existing : {};
      cur[parts[i]!] = next;
      cur = next;
    }
    cur[parts[parts.length - 1]!] = value;
  }
  return out;
}

/** Output attribute names (math.attribute, addAttributes targets, enrich attribute): one top-level key. */
export const OUTPUT_ATTRIBUTE = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,255}$/;

export function outputAttributeProblem(name: string): string | undefined {
  if (!name) return 'is empty';
  if (name.length > 256) return 'is longer than 256 characters';
  if (!OUTPUT_ATTRIBUTE.test(name)) return `"${name}" is not a valid attribute name: use letters, digits, '_' and '-' (not first), without dots or spaces`;
  return undefined;
}

export function inputAttributeProblem(name: string): string | undefined {
  if (!name) return 'is empty';
  if (name.length > 256) return 'is longer than 256 characters';
  if (name.startsWith('.') || name.endsWith('.') || name.includes('..')) return `"${name}" is not a valid attribute path`;
  return undefined;
}
