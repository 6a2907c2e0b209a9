/**
 * Reading a policy document into statements the evaluator can run, with the structural problems that
 * would make evaluation meaningless (no Statement, a bad Effect, an unknown condition operator, ...).
 */
import { asArray, parseOperator } from './conditions.js';
import type { PolicyCondition, PolicyDocument } from './types.js';
import { compileTemplate, type CompiledTemplate } from './variables.js';
import { policyTextTokens, type Token } from './wildcard.js';

/** A document that cannot be evaluated. `problems` lists every structural problem found. */
export class PolicyDocumentError extends Error {
  override name = 'PolicyDocumentError';
  constructor(readonly problems: string[]) {
    super(`Invalid IoT policy document: ${problems.join('; ')}`);
  }
}

export interface StatementElement {
  /** True for NotAction / NotResource. */
  not: boolean;
  patterns: string[];
}

export interface NormalizedStatement {
  index: number;
  label: string;
  sid?: string;
  effect: 'Allow' | 'Deny';
  /** `tokens` are the lowercased patterns. */
  actions: StatementElement & { tokens: Token[][] };
  /** `templates` are the patterns compiled for variable substitution. */
  resources: StatementElement & { templates: CompiledTemplate[] };
  condition?: PolicyCondition;
  raw: Record<string, unknown>;
}

export interface ReadDocument {
  /** The parsed JSON (an object when it is one). */
  json: unknown;
  statements: NormalizedStatement[];
  problems: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

export function statementLabel(index: number, single: boolean, sid?: unknown): string {
  const where = single ? 'Statement' : `Statement[${index}]`;
  return typeof sid === 'string' && sid !== '' ? `${where} (Sid "${sid}")` : where;
}

function readElement(
  raw: Record<string, unknown>,
  name: 'Action' | 'Resource',
  label: string,
  problems: string[],
): StatementElement | undefined {
  const not = `Not${name}`;
  const has = raw[name] !== undefined;
  const hasNot = raw[not] !== undefined;
  if (has === hasNot) {
    problems.push(`${label}: needs exactly one of ${name} or ${not}`);
    return undefined;
  }
  const key = has ? name : not;
  const value = raw[key];
  const patterns = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(patterns) || patterns.length === 0 || !patterns.every((p) => typeof p === 'string' && p !== '')) {
    problems.push(`${label}: ${key} must be a non-empty string or a non-empty array of strings`);
    return undefined;
  }
  return { not: hasNot, patterns };
}

function checkCondition(value: unknown, label: string, problems: string[]): value is PolicyCondition {
  if (!isObject(value)) {
    problems.push(`${label}: Condition must be an object like { "StringEquals": { "key": "value" } }`);
    return false;
  }
  let ok = true;
  for (const [operator, entries] of Object.entries(value)) {
    if (!parseOperator(operator)) {
      problems.push(`${label}: unknown condition operator "${operator}"`);
      ok = false;
    }
    if (!isObject(entries)) {
      problems.push(`${label}: Condition "${operator}" must map condition keys to values`);
      ok = false;
      continue;
    }
    for (const [key, v] of Object.entries(entries)) {
      const values = Array.isArray(v) ? v : [v];
      if (values.length === 0 || !values.every(isScalar)) {
        problems.push(`${label}: Condition "${operator}" "${key}" must be a string, number, boolean or a non-empty array of them`);
        ok = false;
      }
    }
  }
  return ok;
}

function read(document: unknown): ReadDocument {
  const problems: string[] = [];
  let json = document;
  if (typeof document === 'string') {
    try {
      json = JSON.parse(document);
    } catch (error) {
      return { json: undefined, statements: [], problems: [`not valid JSON: ${(error as Error).message}`] };
    }
  }
  if (!isObject(json)) return { json, statements: [], problems: ['the policy document must be a JSON object'] };
  if (json.Statement === undefined) return { json, statements: [], problems: ['Statement is missing'] };
  const single = !Array.isArray(json.Statement);
  const rawStatements = asArray(json.Statement as unknown);
  if (rawStatements.length === 0) problems.push('Statement is empty');

  const statements: NormalizedStatement[] = [];
  rawStatements.forEach((raw, index) => {
    if (!isObject(raw)) {
      problems.push(`${statementLabel(index, single)} must be an object`);
      return;
    }
    const label = statementLabel(index, single, raw.Sid);
    const before = problems.length;
    if (raw.Sid !== undefined && typeof raw.Sid !== 'string') problems.push(`${label}: Sid must be a string`);
    if (raw.Effect !== 'Allow' && raw.Effect !== 'Deny') {
      problems.push(`${label}: Effect must be "Allow" or "Deny" (got ${JSON.stringify(raw.Effect) ?? 'nothing'})`);
    }
    const actions = readElement(raw, 'Action', label, problems);
    const resources = readElement(raw, 'Resource', label, problems);
    const conditionOk = raw.Condition === undefined || checkCondition(raw.Condition, label, problems);
    if (problems.length > before || !actions || !resources || !conditionOk) return;
    statements.push({
      index,
      label,
      sid: raw.Sid as string | undefined,
      effect: raw.Effect as 'Allow' | 'Deny',
      // Action names compare case-insensitively: keep the patterns lowercased once, here.
      actions: { ...actions, tokens: actions.patterns.map((p) => policyTextTokens(p.toLowerCase())) },
      resources: { ...resources, templates: resources.patterns.map(compileTemplate) },
      condition: raw.Condition as PolicyCondition | undefined,
      raw,
    });
  });
  return { json, statements, problems };
}

// Brokers evaluate the same few documents on every message: read each distinct document once.
// Objects are keyed by their JSON text, so a caller editing a document between calls is still safe.
const cache = new Map<string, ReadDocument>();
const CACHE_LIMIT = 256;

function cacheKey(document: unknown): string | undefined {
  if (typeof document === 'string') return document;
  try {
    return JSON.stringify(document);
  } catch {
    return undefined; // cycles, BigInt: not JSON, read() reports it
  }
}

export function readPolicyDocument(document: unknown): ReadDocument {
  const key = cacheKey(document);
  if (key === undefined) return read(document);
  let cached = cache.get(key);
  if (!cached) {
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(key, (cached = read(document)));
  }
  return cached;
}

/** The document's statements, or a PolicyDocumentError if it cannot be evaluated. */
export function statementsOf(document: PolicyDocument | string): NormalizedStatement[] {
  const { statements, problems } = readPolicyDocument(document);
  if (problems.length) throw new PolicyDocumentError(problems);
  return statements;
}
