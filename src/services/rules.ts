import { runGraph } from './graph.js';
import { randomUUID } from 'node:crypto';
import type { PhysicalIdentity, RulesPort } from '../ports.js';
import type { RuleSpec, Spec } from '../spec/schema.js';
import { planResources, type PlanItem, type Resource } from '../iot/plan/index.js';
import { compileRule, DEFAULT_EVALUATION_BUDGET_MS, evaluationBudget, runWithinBudget, SqlError } from '../iot/sql/index.js';
import { DEFAULT_ACCOUNT } from '../iot/policy/actions.js';
import { UserError } from '../ui/errors.js';
import { readUserFile } from './files.js';

type ListedRule = RuleSpec & PhysicalIdentity & { adopt?: Record<string, string>; compare?: unknown };

/** A rule as the plan compares it: the spec's fields; where the target says so, its physical name, older copies, the owner it gets. */
export const ruleResource = ({ physicalName, retired, adopt, compare, ...r }: ListedRule): Resource => ({
  kind: 'rule',
  name: r.name,
  config: r,
  ...(compare !== undefined ? { compare } : {}),
  ...(physicalName ? { physical: physicalName } : {}),
  ...(retired ? { retired } : {}),
  ...(adopt ? { adopt } : {}),
});
export const ruleResources = (rules: ListedRule[]) => rules.map(ruleResource);

/** `physical`: the target's name of a declared rule (Target.physicalName), so plans show it and see renames. */
export async function planRules(rules: RulesPort, spec: Spec, opts: { prune?: boolean } = {}, physical: (name: string) => string | undefined = () => undefined): Promise<PlanItem[]> {
  // On aws the rules compare in AWS's shape (targetShape), which the spec's shape reads back lossily.
  const desired = await Promise.all(
    spec.rules.map(async (r) => {
      const p = physical(r.name);
      const compare = rules.targetShape ? await rules.targetShape(r) : undefined;
      return { ...ruleResource({ ...r, ...(compare !== undefined ? { compare } : {}) }), ...(p ? { physical: p } : {}) };
    }),
  );
  const [listed, roles] = await Promise.all([rules.list({ desired: spec.rules.map((r) => r.name) }), rules.roles?.(spec.rules)]);
  // The managed roles (aws) are planned beside their rules: a drifted trust or policy shows, and is fixed.
  return [...(roles ? planResources(roles.desired, roles.actual, opts) : []), ...planResources(desired, ruleResources(listed), opts)];
}

/** The plan kind of a rule's managed IAM role (aws). */
export const RULE_ROLE_KIND = 'rule role';

/** Converge: create and replace, delete only what the plan (with --prune, or a rename) says. */
export async function applyRulePlan(rules: RulesPort, items: PlanItem[], opts: { concurrency?: number } = {}): Promise<void> {
  // A rule's put and delete write and delete its role too: a role item acts alone only when its rule does not change.
  const ruleChanges = new Set(items.filter((i) => i.kind !== RULE_ROLE_KIND && i.action !== 'noop').map((i) => i.name));
  const writes: (() => Promise<unknown>)[] = [];
  const deletes: PlanItem[] = [];
  for (const item of items) {
    if (item.kind === RULE_ROLE_KIND) {
      if ((item.action === 'create' || item.action === 'replace') && !ruleChanges.has(item.name)) writes.push(async () => rules.putRole?.(item.name, item.desired));
      continue;
    }
    if (item.action === 'create' || item.action === 'replace') writes.push(() => rules.put(item.desired as RuleSpec));
    else if (item.action === 'delete') deletes.push(item);
  }
  // Each rule and its role are independent of the others (on aws each waits for its own role to propagate):
  // `concurrency` at once; after a failure none more starts (runGraph). Deletes follow, one by one.
  await runGraph(writes.map((run, i) => ({ id: String(i), after: [], run })), { limit: opts.concurrency ?? 1 });
  for (const item of deletes) await rules.delete(item.name, item.physical);
}

export interface TestMessage {
  topic: string;
  payload: Uint8Array | object;
  clientId?: string;
}

export type TestOutcome = { topic: string; matched: true; output: unknown } | { topic: string; matched: false } | { topic: string; error: string; code?: string };

/**
 * Evaluate a rule against sample messages, exactly as the local runtime would. No platform needed.
 * `ruleName` is the rule's name, which Basic Ingest topics (`$aws/rules/<ruleName>/...`) must name; for
 * SQL without a name, a Basic Ingest topic is taken as addressed to it.
 */
export function testRule(sql: string, messages: TestMessage[], now = Date.now(), ruleName?: string): TestOutcome[] {
  let rule: ReturnType<typeof compileRule>;
  try {
    rule = compileRule(sql);
  } catch (e) {
    if (e instanceof SqlError) throw new UserError(`Invalid rule SQL (${e.code}):\n${e.format()}`, 'Fix the SQL; see the AWS IoT SQL reference.', 'SQL_INVALID');
    throw e;
  }
  return messages.map((m) => {
    try {
      const ctx = { topic: m.topic, payload: m.payload, clientId: m.clientId ?? 'iotctl-test', timestamp: now, messageId: randomUUID(), ruleName: ruleName ?? /^\$aws\/rules\/([^/]+)/.exec(m.topic)?.[1] ?? 'test', principal: 'iotctl-test', accountId: DEFAULT_ACCOUNT };
      // Under the local runtime's time budget, so a backtracking regex shows the error the runtime would give.
      const budget = evaluationBudget(DEFAULT_EVALUATION_BUDGET_MS);
      const output = runWithinBudget(() => rule.evaluate(ctx, { budget }), DEFAULT_EVALUATION_BUDGET_MS, () => budget);
      return output === undefined ? { topic: m.topic, matched: false as const } : { topic: m.topic, matched: true as const, output: output instanceof Uint8Array ? { base64: Buffer.from(output).toString('base64') } : output };
    } catch (e) {
      return { topic: m.topic, error: (e as Error).message, code: (e as { code?: string }).code };
    }
  });
}

/** --messages FILE.jsonl: one {"topic", "payload", "clientId"?} per line. */
export function readMessagesFile(file: string): TestMessage[] {
  const text = readUserFile(file, 'Check the path given to --messages.').toString('utf8');
  return text.split('\n').flatMap((line, i) => {
    if (!line.trim()) return [];
    let m: { topic?: unknown; payload?: unknown; clientId?: unknown };
    try {
      m = JSON.parse(line);
    } catch (e) {
      throw new UserError(`${file}:${i + 1}: not JSON (${(e as Error).message}).`, 'Each line is {"topic": "...", "payload": {...}}.', 'MESSAGES_INVALID');
    }
    if (typeof m.topic !== 'string') throw new UserError(`${file}:${i + 1}: missing "topic".`, 'Each line is {"topic": "...", "payload": {...}}.', 'MESSAGES_INVALID');
    const payload = typeof m.payload === 'string' ? Buffer.from(m.payload) : Buffer.from(JSON.stringify(m.payload ?? {}));
    return [{ topic: m.topic, payload, clientId: typeof m.clientId === 'string' ? m.clientId : undefined }];
  });
}
