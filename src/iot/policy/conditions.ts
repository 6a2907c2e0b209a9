/**
 * The IAM Condition block: `{ Operator: { key: value | [values] } }`.
 *
 * - Every operator, and every key under it, must hold (AND); the values of one key are alternatives (OR).
 * - A key missing from the request makes positive operators false and negated ones (StringNotEquals,
 *   ArnNotLike, ...) true; `...IfExists` passes when the key is missing; `Null` tests for presence.
 * - `ForAnyValue:` / `ForAllValues:` qualify an operator for multi-valued keys. Over an empty set (the
 *   key is missing, has no values, or only empty strings) ForAllValues holds and ForAnyValue does not,
 *   as IAM documents ("Set operators for multivalued context keys").
 * - Policy variables are substituted in String*, Arn* and Bool values, as IAM does.
 */
import { BlockList, isIP } from 'node:net';
import { expandTemplate, type RequestContext } from './variables.js';
import { matchArn, matchWildcard, tokensToText, type Token } from './wildcard.js';
import type { PolicyConditionValue } from './types.js';

type Family = 'string' | 'numeric' | 'date' | 'bool' | 'binary' | 'ip' | 'arn' | 'null';

interface OperatorSpec {
  family: Family;
  /** Negated operators are the complement of their positive form: no policy value may match. */
  negated: boolean;
  /** Does the request value match one policy value? */
  test: (requestValue: string, policyValue: Token[]) => boolean;
}

const text = tokensToText;
const numeric = (compare: (a: number, b: number) => boolean) => (a: string, b: Token[]) => {
  const x = Number(a);
  const y = Number(text(b));
  return a.trim() !== '' && !Number.isNaN(x) && !Number.isNaN(y) && compare(x, y);
};
const date = (compare: (a: number, b: number) => boolean) => (a: string, b: Token[]) => {
  const x = parseDate(a);
  const y = parseDate(text(b));
  return x !== undefined && y !== undefined && compare(x, y);
};

/** ISO 8601 dates or epoch seconds, both of which IAM accepts. */
function parseDate(value: string): number | undefined {
  const ms = /^\d+$/.test(value) ? Number(value) * 1000 : Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

function ipInRange(address: string, range: string): boolean {
  const [network, prefix] = range.split('/');
  const family = isIP(network ?? '');
  if (!family || isIP(address) !== family) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const bits = prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix);
  if (!Number.isInteger(bits) || bits < 0 || bits > (family === 4 ? 32 : 128)) return false;
  const list = new BlockList();
  list.addSubnet(network!, bits, type);
  return list.check(address, type);
}

const equalsText = (a: string, b: Token[]) => a === text(b);
const arnMatch = (a: string, b: Token[]) => matchArn(b, a);

export const CONDITION_OPERATORS: Readonly<Record<string, OperatorSpec>> = {
  StringEquals: { family: 'string', negated: false, test: equalsText },
  StringNotEquals: { family: 'string', negated: true, test: equalsText },
  StringEqualsIgnoreCase: { family: 'string', negated: false, test: (a, b) => a.toLowerCase() === text(b).toLowerCase() },
  StringNotEqualsIgnoreCase: { family: 'string', negated: true, test: (a, b) => a.toLowerCase() === text(b).toLowerCase() },
  StringLike: { family: 'string', negated: false, test: (a, b) => matchWildcard(b, a) },
  StringNotLike: { family: 'string', negated: true, test: (a, b) => matchWildcard(b, a) },
  NumericEquals: { family: 'numeric', negated: false, test: numeric((a, b) => a === b) },
  NumericNotEquals: { family: 'numeric', negated: true, test: numeric((a, b) => a === b) },
  NumericLessThan: { family: 'numeric', negated: false, test: numeric((a, b) => a < b) },
  NumericLessThanEquals: { family: 'numeric', negated: false, test: numeric((a, b) => a <= b) },
  NumericGreaterThan: { family: 'numeric', negated: false, test: numeric((a, b) => a > b) },
  NumericGreaterThanEquals: { family: 'numeric', negated: false, test: numeric((a, b) => a >= b) },
  DateEquals: { family: 'date', negated: false, test: date((a, b) => a === b) },
  DateNotEquals: { family: 'date', negated: true, test: date((a, b) => a === b) },
  DateLessThan: { family: 'date', negated: false, test: date((a, b) => a < b) },
  DateLessThanEquals: { family: 'date', negated: false, test: date((a, b) => a <= b) },
  DateGreaterThan: { family: 'date', negated: false, test: date((a, b) => a > b) },
  DateGreaterThanEquals: { family: 'date', negated: false, test: date((a, b) => a >= b) },
  Bool: { family: 'bool', negated: false, test: (a, b) => a.toLowerCase() === text(b).toLowerCase() },
  BinaryEquals: { family: 'binary', negated: false, test: equalsText },
  IpAddress: { family: 'ip', negated: false, test: (a, b) => ipInRange(a, text(b)) },
  NotIpAddress: { family: 'ip', negated: true, test: (a, b) => ipInRange(a, text(b)) },
  // IAM gives ArnEquals the same wildcard semantics as ArnLike.
  ArnEquals: { family: 'arn', negated: false, test: arnMatch },
  ArnLike: { family: 'arn', negated: false, test: arnMatch },
  ArnNotEquals: { family: 'arn', negated: true, test: arnMatch },
  ArnNotLike: { family: 'arn', negated: true, test: arnMatch },
  Null: { family: 'null', negated: false, test: () => false },
};

const VARIABLE_FAMILIES: ReadonlySet<Family> = new Set(['string', 'arn', 'bool']);

export interface ParsedOperator {
  name: string;
  set?: 'ForAnyValue' | 'ForAllValues';
  ifExists: boolean;
  spec: OperatorSpec;
}

/** `ForAllValues:StringLikeIfExists` -> its parts, or undefined for an unknown operator. */
export function parseOperator(name: string): ParsedOperator | undefined {
  const m = /^(?:(ForAnyValue|ForAllValues):)?(\w+?)(IfExists)?$/.exec(name);
  if (!m) return undefined;
  const spec = Object.hasOwn(CONDITION_OPERATORS, m[2]!) ? CONDITION_OPERATORS[m[2]!] : undefined;
  if (!spec) return undefined;
  // Null already is the existence test; IAM rejects NullIfExists and set-qualified Null.
  if (spec.family === 'null' && (m[3] || m[1])) return undefined;
  return { name, set: m[1] as ParsedOperator['set'], ifExists: Boolean(m[3]), spec };
}

export const asArray = <T>(value: T | readonly T[]): readonly T[] => (Array.isArray(value) ? value : [value as T]);

export type ConditionOutcome =
  | { ok: true }
  | { ok: false; operator: string; key: string; actual: string | readonly string[] | undefined }
  | { ok: false; unresolved: string; operator: string; key: string };

/** Evaluates a whole Condition block. Assumes operators were checked (unknown ones fail closed). */
export function evaluateConditions(
  condition: Record<string, Record<string, PolicyConditionValue>>,
  context: RequestContext,
): ConditionOutcome {
  for (const [operatorName, entries] of Object.entries(condition)) {
    const operator = parseOperator(operatorName);
    for (const [key, rawValues] of Object.entries(entries)) {
      const actual = context.get(key);
      if (!operator) return { ok: false, operator: operatorName, key, actual };
      const outcome = evaluateOne(operator, key, asArray(rawValues).map(String), actual, context);
      if (outcome !== true) return outcome === false ? { ok: false, operator: operatorName, key, actual } : outcome;
    }
  }
  return { ok: true };
}

function evaluateOne(
  operator: ParsedOperator,
  key: string,
  rawValues: readonly string[],
  actual: string | readonly string[] | undefined,
  context: RequestContext,
): boolean | { ok: false; unresolved: string; operator: string; key: string } {
  const { spec, set } = operator;
  let requestValues = actual === undefined ? [] : asArray(actual);
  // IAM: for the set operators a key whose values are all empty strings is a null data set.
  if (set && requestValues.every((v) => v === '')) requestValues = [];

  if (spec.family === 'null') {
    const wantsAbsent = rawValues.some((v) => v.toLowerCase() === 'true');
    return (requestValues.length === 0) === wantsAbsent;
  }

  const policyValues: Token[][] = [];
  for (const raw of rawValues) {
    if (VARIABLE_FAMILIES.has(spec.family)) {
      const expanded = expandTemplate(raw, context);
      if (!expanded.ok) return { ok: false, unresolved: expanded.unresolved, operator: operator.name, key };
      policyValues.push(expanded.tokens);
    } else {
      policyValues.push(Array.from(raw));
    }
  }

  if (requestValues.length === 0) {
    if (operator.ifExists || set === 'ForAllValues') return true;
    if (set === 'ForAnyValue') return false;
    return spec.negated;
  }

  const matches = (value: string) => policyValues.some((p) => spec.test(value, p));
  const holds = (value: string) => (spec.negated ? !matches(value) : matches(value));
  if (set === 'ForAllValues') return requestValues.every(holds);
  if (set === 'ForAnyValue') return requestValues.some(holds);
  // Unqualified on a multi-valued key: the operator holds if any value matches (negated: if none does).
  const anyMatch = requestValues.some(matches);
  return spec.negated ? !anyMatch : anyMatch;
}
