/**
 * Apply-time checks of a policy document: everything that evaluation needs, plus the mistakes AWS
 * would reject or that silently make a statement dead (unknown actions, malformed ARNs, a Subscribe
 * statement with only topic/ resources, a misspelt policy variable, ...).
 */
import { canonicalAction, IOT_POLICY_ACTIONS, resourceKindOf } from './actions.js';
import { readPolicyDocument, type NormalizedStatement } from './document.js';
import { parseTemplate, templateVariables } from './variables.js';
import { hasWildcard, matchWildcard, policyTextTokens } from './wildcard.js';

const DOCUMENT_KEYS = new Set(['Version', 'Id', 'Statement']);
const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);
const ACTION_SERVICES = new Set(['iot', 'iotjobsdata']);
const PARTITIONS = new Set(['aws', 'aws-cn', 'aws-us-gov']);
const RESOURCE_TYPES = new Set(['client', 'topic', 'topicfilter', 'thing', 'rolealias', 'thinggroup', 'thingtype', 'cert', 'cacert', 'job']);
const KNOWN_ACTIONS = Object.keys(IOT_POLICY_ACTIONS);

/** Variables AWS IoT defines; `iot:Certificate.*` and the global `aws:*` keys are accepted as a family. */
function isKnownVariable(name: string): boolean {
  const lower = name.toLowerCase();
  if (lower.startsWith('aws:') || lower.startsWith('iot:certificate.')) return true;
  if (/^iot:connection\.thing\.attributes\[[^\]]+\]$/.test(lower)) return true;
  return [
    'iot:clientid',
    'iot:domainname',
    'iot:connection.thing.thingname',
    'iot:connection.thing.thingtypename',
    'iot:connection.thing.isattached',
  ].includes(lower);
}

function checkVariables(value: string, where: string, label: string, problems: string[]): void {
  for (const variable of templateVariables(value)) {
    if (!isKnownVariable(variable.name)) problems.push(`${label}: unknown policy variable ${variable.source} in ${where}`);
  }
  // Whatever is left after removing well-formed variables must not open another one.
  const leftover = parseTemplate(value).filter((p) => p.kind === 'text').map((p) => (p.kind === 'text' ? p.text : ''));
  if (leftover.some((text) => text.includes('${'))) {
    problems.push(`${label}: malformed policy variable in ${where}${where.includes(value) ? '' : ` ("${value}")`}`);
  }
}

function checkAction(pattern: string, label: string, problems: string[]): void {
  if (pattern.includes('${')) {
    problems.push(`${label}: policy variables are not allowed in Action ("${pattern}")`);
    return;
  }
  if (pattern === '*') return;
  const [service, name] = pattern.split(':', 2);
  if (!name || !service) {
    problems.push(`${label}: action "${pattern}" must look like "iot:Publish"`);
    return;
  }
  if (!ACTION_SERVICES.has(service.toLowerCase())) {
    problems.push(`${label}: action "${pattern}" is not an AWS IoT Core policy action (services: iot, iotjobsdata)`);
    return;
  }
  const tokens = policyTextTokens(pattern);
  const known = hasWildcard(tokens) ? KNOWN_ACTIONS.some((a) => matchWildcard(tokens, a, true)) : canonicalAction(pattern) !== undefined;
  if (!known) problems.push(`${label}: unknown action "${pattern}"`);
}

/** ARN components, splitting at the first five colons that are not inside a `${...}` variable. */
function arnComponents(pattern: string): string[] {
  const parts = [''];
  let depth = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '$' && pattern[i + 1] === '{') depth++;
    else if (c === '}' && depth > 0) depth--;
    if (c === ':' && depth === 0 && parts.length < 6) parts.push('');
    else parts[parts.length - 1] += c;
  }
  return parts;
}

/** Checks a Resource ARN with its variables still in place. */
function checkResource(pattern: string, label: string, problems: string[]): void {
  const where = `resource "${pattern}"`;
  checkVariables(pattern, where, label, problems);
  if (pattern === '*') return;
  const parts = arnComponents(pattern);
  const bad = (why: string) => problems.push(`${label}: malformed resource ARN "${pattern}": ${why}`);
  if (parts[0] !== 'arn') return void bad('an ARN starts with "arn:" (or use "*")');
  if (parts.length < 6) return void bad('an ARN has six colon-separated parts: arn:aws:iot:<region>:<account>:<type>/<name>');
  const [, partition, service, region, account, resource] = parts as [string, string, string, string, string, string];
  const literal = (s: string) => !/[*?]|\$\{/.test(s);
  if (literal(partition) && !PARTITIONS.has(partition)) return void bad(`unknown partition "${partition}"`);
  if (literal(service) && service !== 'iot') return void bad(`service must be "iot", not "${service}"`);
  if (literal(region) && !/^[a-z]{2}(-[a-z]+)+-\d+$|^local$/.test(region)) return void bad(`"${region}" is not a region`);
  if (literal(account) && !/^\d{12}$/.test(account)) return void bad(`the account "${account}" must be 12 digits`);
  if (resource === '') return void bad('the resource part is empty');
  if (resource === '*') return;
  const slash = resource.indexOf('/');
  const type = slash < 0 ? resource : resource.slice(0, slash);
  if (literal(type) && !RESOURCE_TYPES.has(type)) {
    return void bad(`unknown resource type "${type}" (expected ${[...RESOURCE_TYPES].join(', ')})`);
  }
  if (literal(type) && (slash < 0 || slash === resource.length - 1)) return void bad(`"${type}/" needs a name after the slash`);
}

/** The resource types a Resource pattern could denote: undefined when it could be any (`*`, `topic*`). */
function resourceTypeOf(pattern: string): string | undefined {
  if (pattern === '*') return undefined;
  const resource = arnComponents(pattern)[5] ?? '';
  const slash = resource.indexOf('/');
  const type = slash < 0 ? resource : resource.slice(0, slash);
  return /[*?]|\$\{/.test(type) || type === '' ? undefined : type;
}

/** iot:Subscribe with only topic/ resources (and the like) is a statement that can never match. */
function checkActionResourceFit(statement: NormalizedStatement, problems: string[]): void {
  if (statement.actions.not || statement.resources.not) return;
  const types = statement.resources.patterns.map(resourceTypeOf);
  if (types.includes(undefined)) return;
  for (const action of statement.actions.patterns) {
    const kind = resourceKindOf(action);
    if (!kind || kind === '*' || types.includes(kind)) continue;
    const hint = kind === 'topicfilter' ? ' (Subscribe is checked against the topic filter, not the topic)' : '';
    problems.push(`${statement.label}: ${canonicalAction(action)} is checked against ${kind}/ resources, but this statement has none${hint}`);
  }
}

/**
 * Every problem found in a policy document, as readable sentences; empty when the document is fine.
 * `doc` may be a parsed object or JSON text.
 */
export function validatePolicyDocument(doc: unknown): string[] {
  const { json, statements, problems } = readPolicyDocument(doc);
  const found = [...problems];
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return found;
  const document = json as Record<string, unknown>;

  if (document.Version === undefined) found.push('Version is missing: AWS IoT requires "2012-10-17"');
  else if (document.Version !== '2012-10-17') found.push(`Version must be "2012-10-17" (got ${JSON.stringify(document.Version)})`);
  for (const key of Object.keys(document)) if (!DOCUMENT_KEYS.has(key)) found.push(`unknown top-level element "${key}"`);

  const sids = new Set<string>();
  for (const statement of statements) {
    const { label, raw } = statement;
    for (const key of Object.keys(raw)) {
      if (!STATEMENT_KEYS.has(key)) {
        const hint = key === 'Principal' ? ' (AWS IoT policies have no Principal: attach the policy to a certificate instead)' : '';
        found.push(`${label}: unknown element "${key}"${hint}`);
      }
    }
    if (statement.sid !== undefined) {
      if (sids.has(statement.sid)) found.push(`${label}: duplicate Sid "${statement.sid}"`);
      sids.add(statement.sid);
    }
    for (const action of statement.actions.patterns) checkAction(action, label, found);
    for (const resource of statement.resources.patterns) checkResource(resource, label, found);
    for (const [operator, entries] of Object.entries(statement.condition ?? {})) {
      for (const [key, values] of Object.entries(entries)) {
        for (const value of Array.isArray(values) ? values : [values]) {
          if (typeof value === 'string') checkVariables(value, `condition ${operator} ${key}`, label, found);
        }
      }
    }
    checkActionResourceFit(statement, found);
  }
  return found;
}
