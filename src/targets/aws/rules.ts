import type { Action, TopicRule, TopicRulePayload } from '@aws-sdk/client-iot';
import type { ListScope, PhysicalIdentity, RulesPort } from '../../ports.js';
import type { RuleAction, RuleSpec } from '../../spec/schema.js';
import { UserError } from '../../ui/errors.js';
import { arnOf, ownershipByName, partitionOf, physicalName, rulePermissionId, rulePermissionStatement, ruleRoleName, stageNames, type StageNames } from './naming.js';
import { mapLimit } from '../../concurrency.js';
import { assertClaimable, claimOf, DEFAULT_STAGE, markerTags, notOurs, ownerMarker, stripMarker, ownerOf as ownerNamed, ownerTags, withMarker, type Owner } from './ownership.js';
import { isAwsError, type AwsClients } from './sdk.js';
import { lambdaBusy, permissionExists, retryWhen, rolePropagating } from './retry.js';
import { deleteServiceRole, ensureServiceRole, policyJson, roleTags, trustPolicy } from './iam.js';
import type { Resource } from '../../iot/plan/index.js';

/** The inline policy of a rule's managed role. */
const RULE_ROLE_POLICY = 'rule-actions';

/** IoT SQL version for every rule: AWS's default (2015-10-08) lacks the functions and semantics local implements. */
export const SQL_VERSION = '2016-03-23';

/** The logical name of the stage's error log group, `/iotctl/<project>/<stage>/rule-errors` on AWS (the init spec's errorAction). */
export const RULE_ERRORS_LOG_GROUP = 'rule-errors';

/** A logical name and its physical one, both ways; a name that is not one of the stage's stays as written. */
export interface NameMapping {
  physical(name: string): string;
  logical(name: string): string;
}

function mapping(logicals: readonly string[], physical: (logical: string) => string): NameMapping {
  const to = new Map(logicals.map((l) => [l, physical(l)]));
  const from = new Map([...to].map(([l, p]) => [p, l]));
  return { physical: (n) => to.get(n) ?? n, logical: (n) => from.get(n) ?? n };
}

/**
 * One stage's names as rules use them: the rule's own (and its managed role's), and those of the iotctl
 * resources its actions name by logical name. Only streams and functions the spec declares are mapped: a
 * rule may point at a stream iotctl does not manage, written as its name on AWS.
 */
export interface RuleNames {
  rule(logical: string): string;
  role(logical: string): string;
  rolePath: string;
  stream: NameMapping;
  fn: NameMapping;
  logGroup: NameMapping;
}

export function ruleNames(names: StageNames, declared: { streams?: readonly string[]; functions?: readonly string[] } = {}): RuleNames {
  return {
    rule: names.rule,
    role: names.ruleRole,
    rolePath: names.rolePath,
    stream: mapping(declared.streams ?? [], names.stream),
    fn: mapping(declared.functions ?? [], names.function),
    logGroup: mapping([RULE_ERRORS_LOG_GROUP], (l) => physicalName('log-group', names.scope, l).name),
  };
}

/** Where ARNs are built: partition, region and account of the caller, and the stage's names. */
export interface ArnScope {
  partition: string;
  region: string;
  account: string;
  names: RuleNames;
  /**
   * Analytics engine `datalake`: the Firehose delivery streams that stand for a channel (its raw stream, then
   * one per pipeline reading it). Unset: `iotAnalytics` actions go to IoT Analytics itself (legacy engine).
   */
  channelStreams?: (channel: string) => string[];
}

/** The channel whose delivery streams include this one (the reverse of channelStreams), for reading rules back. */
function channelOfStream(s: ArnScope, stream: string, channels: readonly string[]): string | undefined {
  return s.channelStreams ? channels.find((c) => s.channelStreams!(c).includes(stream)) : undefined;
}

/** The role iotctl manages for a rule (its actions without a roleArn), under the stage's IAM path. */
const roleArnOf = (s: ArnScope, rule: string) => arnOf('iam-role', s, s.names.role(rule), { path: s.names.rolePath });
/** The role older versions made for a rule, `iotctl-rule-<rule>` at `/`: read back as managed too, so a rule they wrote compares on its fields. */
const legacyRoleArnOf = (s: ArnScope, rule: string) => arnOf('iam-role', s, ruleRoleName(rule));
const lambdaArnOf = (s: ArnScope, fn: string) => (fn.startsWith('arn:') ? fn : arnOf('lambda-function', s, fn));
/** Substitution templates (`${topic()}`) are only known per message: the resource becomes a wildcard there. */
const wildcardTemplates = (s: string) => s.replace(/\$\{[^}]*\}/g, '*');

function kindOf(action: RuleAction): string {
  return Object.keys(action)[0]!;
}

function roleOf(action: RuleAction): string | undefined {
  const body = Object.values(action)[0] as { roleArn?: string };
  return body.roleArn;
}

/** Actions IoT runs with a role (all but lambda, which uses the function's resource policy). */
const needsRole = (a: RuleAction) => kindOf(a) !== 'lambda';

function actionsOf(rule: RuleSpec): RuleAction[] {
  return rule.errorAction ? [...rule.actions, rule.errorAction] : rule.actions;
}

/**
 * The managed role's inline policy: exactly the resources of this rule's actions that have no roleArn of
 * their own, one statement per action kind. Undefined when no action needs the managed role.
 */
export function managedRolePolicy(rule: RuleSpec, s: ArnScope): { Version: string; Statement: { Effect: 'Allow'; Action: string[]; Resource: string[] }[] } | undefined {
  const byKind = new Map<string, { actions: string[]; resources: Set<string> }>();
  const add = (actions: string[], resources: string[]) => {
    const key = actions.join(',');
    const entry = byKind.get(key) ?? { actions, resources: new Set<string>() };
    resources.forEach((r) => entry.resources.add(r));
    byKind.set(key, entry);
  };
  for (const action of actionsOf(rule)) {
    if (!needsRole(action) || roleOf(action)) continue;
    if ('kinesis' in action) add(['kinesis:PutRecord'], [arnOf('kinesis-stream', s, s.names.stream.physical(action.kinesis.stream))]);
    else if ('iotAnalytics' in action && s.channelStreams) {
      // As toPayload writes them: every stream of the channel for an action, its raw stream for the errorAction.
      const streams = s.channelStreams(action.iotAnalytics.channel).slice(0, action === rule.errorAction ? 1 : undefined);
      add(['firehose:PutRecord', 'firehose:PutRecordBatch'], streams.map((d) => arnOf('firehose-delivery-stream', s, d)));
    } else if ('iotAnalytics' in action) add(['iotanalytics:BatchPutMessage'], [`arn:${s.partition}:iotanalytics:${s.region}:${s.account}:channel/${action.iotAnalytics.channel}`]);
    else if ('republish' in action) add(['iot:Publish'], [`arn:${s.partition}:iot:${s.region}:${s.account}:topic/${wildcardTemplates(action.republish.topic)}`]);
    else if ('s3' in action) add(['s3:PutObject'], [`${arnOf('s3-bucket', s, wildcardTemplates(action.s3.bucket))}/*`]);
    else if ('firehose' in action) add(['firehose:PutRecord', 'firehose:PutRecordBatch'], [arnOf('firehose-delivery-stream', s, action.firehose.deliveryStream)]);
    else if ('cloudwatchLogs' in action) {
      // DescribeLogStreams is authorized on the group (its ARN, with or without `:*`), the writes on its streams.
      const group = arnOf('log-group', s, s.names.logGroup.physical(action.cloudwatchLogs.logGroup));
      add(['logs:DescribeLogStreams'], [group, `${group}:*`]);
      add(['logs:CreateLogStream', 'logs:PutLogEvents'], [`${group}:*`]);
    }
  }
  if (!byKind.size) return undefined;
  return {
    Version: '2012-10-17',
    Statement: [...byKind.values()].map((e) => ({ Effect: 'Allow' as const, Action: e.actions, Resource: [...e.resources].sort() })),
  };
}

/** Only IoT, and only on behalf of this rule (its physical name) in this account, may assume the managed role. */
/** The spec's action as AWS's action shape, with ARNs, the physical names of the stage's resources, and the role (given, or the managed one). */
export function toAwsAction(action: RuleAction, s: ArnScope, managedRole: string): Action {
  const role = roleOf(action) ?? managedRole;
  if ('kinesis' in action) return { kinesis: { roleArn: role, streamName: s.names.stream.physical(action.kinesis.stream), partitionKey: action.kinesis.partitionKey } };
  if ('iotAnalytics' in action) return { iotAnalytics: { roleArn: role, channelName: action.iotAnalytics.channel } };
  if ('republish' in action) return { republish: { roleArn: role, topic: action.republish.topic, qos: action.republish.qos } };
  if ('s3' in action) return { s3: { roleArn: role, bucketName: action.s3.bucket, key: action.s3.key } };
  if ('firehose' in action) {
    return { firehose: { roleArn: role, deliveryStreamName: action.firehose.deliveryStream, ...(action.firehose.separator !== undefined ? { separator: action.firehose.separator } : {}) } };
  }
  if ('lambda' in action) return { lambda: { functionArn: lambdaArnOf(s, s.names.fn.physical(action.lambda.function)) } };
  return { cloudwatchLogs: { roleArn: role, logGroupName: s.names.logGroup.physical(action.cloudwatchLogs.logGroup) } };
}

/**
 * AWS's action back to the spec's shape, normalised so that an unchanged rule compares equal: the stage's
 * physical names read back as the logical ones, a role of `managedRoles` as no roleArn.
 */
export function fromAwsAction(action: Action, s: ArnScope, managedRoles: readonly string[]): RuleAction | undefined {
  const role = (arn: string | undefined) => (arn && !managedRoles.includes(arn) ? { roleArn: arn } : {});
  if (action.kinesis) return { kinesis: { stream: s.names.stream.logical(action.kinesis.streamName!), partitionKey: action.kinesis.partitionKey ?? '${newuuid()}', ...role(action.kinesis.roleArn) } };
  if (action.iotAnalytics) {
    const channel = action.iotAnalytics.channelName ?? action.iotAnalytics.channelArn?.split('/').pop() ?? '';
    return { iotAnalytics: { channel, ...role(action.iotAnalytics.roleArn) } };
  }
  if (action.republish) return { republish: { topic: action.republish.topic!, qos: action.republish.qos === 1 ? 1 : 0, ...role(action.republish.roleArn) } };
  if (action.s3) return { s3: { bucket: action.s3.bucketName!, key: action.s3.key!, ...role(action.s3.roleArn) } };
  if (action.firehose) {
    const sep = action.firehose.separator;
    return { firehose: { deliveryStream: action.firehose.deliveryStreamName!, ...(sep !== undefined && sep !== null ? { separator: sep } : {}), ...role(action.firehose.roleArn) } };
  }
  if (action.lambda) {
    const arn = action.lambda.functionArn!;
    // A function of this account and region reads back as its name, as the spec writes it.
    const ours = arnOf('lambda-function', s, '');
    return { lambda: { function: arn.startsWith(ours) && !arn.slice(ours.length).includes(':') ? s.names.fn.logical(arn.slice(ours.length)) : arn } };
  }
  if (action.cloudwatchLogs) return { cloudwatchLogs: { logGroup: s.names.logGroup.logical(action.cloudwatchLogs.logGroupName!), ...role(action.cloudwatchLogs.roleArn) } };
  return undefined; // an action kind iotctl does not manage (DynamoDB, SNS...): left out, so the plan replaces the rule
}

/**
 * Which iotctl project and stage own a rule, written at the end of its description
 * (`[iotctl:project=<p> stage=<s>]`): list() (and so prune) sees only the project's own rules, never the
 * other rules of the account. (Topic rule tags would do, but tags are not returned by GetTopicRule, so
 * the owner would cost one more call per rule.) Older versions wrote `[iotctl:<project>]`: all of those
 * were made before stages, so they read as the default stage, and the next write moves them to the new marker.
 */
const OWNER = / ?\[iotctl:([a-z0-9-]+)\]$/;

/** The owner of a rule as tags, from its description. */
export function ruleOwnerTags(description: string | undefined): Record<string, string> {
  const marker = markerTags(description);
  if (Object.keys(marker).length) return marker;
  const old = OWNER.exec(description ?? '')?.[1];
  return old ? { 'iotctl:project': old, 'iotctl:stage': DEFAULT_STAGE } : {};
}

const withoutMarker = (description: string) => stripMarker(description).replace(OWNER, '');

/** On the datalake engine an `iotAnalytics` action becomes one newline-separated firehose action per delivery stream of the channel. */
function toAwsActions(action: RuleAction, s: ArnScope, managedRole: string): Action[] {
  if ('iotAnalytics' in action && s.channelStreams) {
    const roleArn = action.iotAnalytics.roleArn ?? managedRole;
    return s.channelStreams(action.iotAnalytics.channel).map((deliveryStreamName) => ({ firehose: { roleArn, deliveryStreamName, separator: '\n' } }));
  }
  return [toAwsAction(action, s, managedRole)];
}

export function toPayload(rule: RuleSpec, s: ArnScope, owner?: Owner): TopicRulePayload {
  const managed = roleArnOf(s, rule.name);
  return {
    sql: rule.sql,
    description: owner ? withMarker(rule.description, owner) : rule.description,
    ruleDisabled: !rule.enabled,
    awsIotSqlVersion: SQL_VERSION,
    actions: rule.actions.flatMap((a) => toAwsActions(a, s, managed)),
    // An error action is one action: a channel's raw delivery stream keeps the error payloads.
    ...(rule.errorAction ? { errorAction: toAwsActions(rule.errorAction, s, managed)[0] } : {}),
  };
}

/**
 * A rule as the plan compares it: in AWS's own shape (the payload's fields, each action's target by its name on
 * AWS), computed by this one function from toPayload's output and from GetTopicRule alike. The spec's shape is a
 * lossy reading of it: a channel's delivery streams read back as one `iotAnalytics` action, so a new pipeline
 * of the channel would not show as a change. The role an older iotctl made for the rule counts as the managed one.
 */
export function ruleShape(rule: TopicRule | TopicRulePayload, name: string, s: ArnScope): unknown {
  const managed = roleArnOf(s, name);
  const role = (arn: string | undefined) => (arn === legacyRoleArnOf(s, name) ? managed : arn);
  const action = (a: Action | undefined): unknown => {
    if (!a) return undefined;
    if (a.kinesis) return { kinesis: { roleArn: role(a.kinesis.roleArn), streamName: a.kinesis.streamName, partitionKey: a.kinesis.partitionKey } };
    if (a.iotAnalytics) return { iotAnalytics: { roleArn: role(a.iotAnalytics.roleArn), channelName: a.iotAnalytics.channelName ?? a.iotAnalytics.channelArn?.split('/').pop() } };
    if (a.republish) return { republish: { roleArn: role(a.republish.roleArn), topic: a.republish.topic, qos: a.republish.qos ?? 0 } };
    if (a.s3) return { s3: { roleArn: role(a.s3.roleArn), bucketName: a.s3.bucketName, key: a.s3.key } };
    if (a.firehose) return { firehose: { roleArn: role(a.firehose.roleArn), deliveryStreamName: a.firehose.deliveryStreamName, separator: a.firehose.separator ?? undefined } };
    if (a.lambda) return { lambda: { functionArn: a.lambda.functionArn } };
    if (a.cloudwatchLogs) return { cloudwatchLogs: { roleArn: role(a.cloudwatchLogs.roleArn), logGroupName: a.cloudwatchLogs.logGroupName } };
    // A kind iotctl does not write stays as AWS has it, so a rule that carries one differs from the spec.
    return JSON.parse(JSON.stringify(a));
  };
  const errorAction = rule.errorAction && Object.keys(rule.errorAction).length ? action(rule.errorAction) : undefined;
  return {
    sql: rule.sql ?? '',
    description: withoutMarker(rule.description ?? ''),
    ruleDisabled: !!rule.ruleDisabled,
    awsIotSqlVersion: rule.awsIotSqlVersion,
    actions: (rule.actions ?? []).map(action),
    ...(errorAction ? { errorAction } : {}),
  };
}

/**
 * `name`: the rule's logical name. `channels`: the spec's channels, to fold the datalake engine's firehose
 * actions back into `iotAnalytics`.
 */
export function fromAws(name: string, rule: TopicRule, s: ArnScope, channels: readonly string[] = []): RuleSpec {
  const managed = [roleArnOf(s, name), legacyRoleArnOf(s, name)];
  const fold = (action: RuleAction | undefined): RuleAction | undefined => {
    if (!action || !('firehose' in action) || action.firehose.separator !== '\n') return action;
    const channel = channelOfStream(s, action.firehose.deliveryStream, channels);
    return channel ? { iotAnalytics: { channel, ...(action.firehose.roleArn ? { roleArn: action.firehose.roleArn } : {}) } } : action;
  };
  const actions: RuleAction[] = [];
  for (const a of rule.actions ?? []) {
    const spec = fold(fromAwsAction(a, s, managed));
    if (!spec) continue;
    // The channel's several delivery streams read back as the one action that made them.
    if (JSON.stringify(spec) !== JSON.stringify(actions.at(-1))) actions.push(spec);
  }
  const errorAction = rule.errorAction && Object.keys(rule.errorAction).length ? fold(fromAwsAction(rule.errorAction, s, managed)) : undefined;
  return {
    name,
    description: withoutMarker(rule.description ?? ''),
    sql: rule.sql ?? '',
    enabled: !rule.ruleDisabled,
    actions,
    ...(errorAction ? { errorAction } : {}),
  };
}

export interface AwsRulesOptions {
  /** The project and stage whose rules these are (default: project `iotctl`, the default stage). */
  owner?: Owner;
  /** The stage's names (naming.ts stageNames); default: the owner's. */
  names?: StageNames;
  /** The spec's logical names: rules (found under their names even without a plan), the streams and functions actions name. */
  declared?: { rules?: readonly string[]; streams?: readonly string[]; functions?: readonly string[] };
  /** Analytics engine datalake: the delivery streams of a channel (see ArnScope.channelStreams), and the spec's channels. */
  datalake?: { channels: readonly string[]; streams: (channel: string, scope: { accountId: string; region: string }) => string[] };
}

/** A rule as read from AWS: its spec under its logical name, its physical name, and who its marker says owns it. */
interface Found {
  physical: string;
  spec: RuleSpec;
  owner: Record<string, string>;
  raw: TopicRule;
}

type Listed = RuleSpec & PhysicalIdentity & { adopt?: Record<string, string>; compare?: unknown };

/**
 * The aws target's topic rules, named `iotctl_<project>_<stage>__<rule>` (naming.ts): ListTopicRules and
 * GetTopicRule read back as RuleSpec under the logical name, Create/Replace/Delete TopicRule write them, and
 * one least-privilege IAM role per rule (for actions without a roleArn), under the stage's IAM path, is
 * created, kept in step with the rule's actions, and deleted with the rule. A rule an older iotctl wrote
 * under the bare spec name is moved: the plan creates the new one, then deletes the old one and its role.
 */
export class AwsRules implements RulesPort {
  private scopeCache?: Promise<ArnScope>;
  private readonly owner: Owner;
  private readonly names: StageNames;
  private readonly refs: RuleNames;

  constructor(
    private readonly aws: AwsClients,
    private readonly opts: AwsRulesOptions = {},
  ) {
    this.owner = opts.owner ?? ownerNamed('iotctl');
    this.names = opts.names ?? stageNames({ project: this.owner.project, stage: this.owner.stage });
    this.refs = ruleNames(this.names, opts.declared);
  }

  scope(): Promise<ArnScope> {
    const datalake = this.opts.datalake;
    this.scopeCache ??= Promise.all([this.aws.region(), this.aws.accountId()]).then(([region, account]) => ({
      partition: partitionOf(region),
      region,
      account,
      names: this.refs,
      ...(datalake ? { channelStreams: (channel: string) => datalake.streams(channel, { accountId: account, region }) } : {}),
    }));
    this.scopeCache.catch(() => (this.scopeCache = undefined));
    return this.scopeCache;
  }

  /**
   * This project and stage's rules, under their logical names: those under the stage's names, and, for each
   * name of `scope.desired`, the one an older iotctl wrote under the bare name (with its old name as
   * `physicalName`, so the plan moves it; `retired` when the new one exists too, so the plan deletes it).
   * A name of `scope.desired` held by anyone else's rule is refused.
   */
  async list(scope: ListScope = {}): Promise<Listed[]> {
    const desired = new Set(scope.desired ?? []);
    // Their roles too, at plan time (read meanwhile): anyone else's role of the name is refused before apply writes anything.
    const rolesChecked = mapLimit([...desired], 10, (name) => this.roleClaim(name));
    rolesChecked.catch(() => undefined);
    const existing = new Set(await this.ruleNamesOnAws());
    // The spec's names first (a `physicalName:` is not in the stage's shape), then any other of the stage's.
    const byPhysical = new Map([...(this.opts.declared?.rules ?? []), ...desired].map((l) => [this.names.rule(l), l]));
    const candidates: { physical: string; logical: string; bare?: true }[] = [];
    for (const physical of existing) {
      const logical = byPhysical.get(physical) ?? this.logicalOf(physical);
      if (logical !== undefined) candidates.push({ physical, logical });
    }
    for (const l of desired) if (existing.has(l) && this.names.rule(l) !== l && !byPhysical.has(l)) candidates.push({ physical: l, logical: l, bare: true });

    const read = await mapLimit(candidates, 10, async (c) => ({ ...c, found: await this.read(c.physical, c.logical) }));
    const byLogical = new Map<string, { current?: Listed; old: Listed[] }>();
    const entry = (l: string) => byLogical.get(l) ?? byLogical.set(l, { old: [] }).get(l)!;
    for (const { physical, logical, bare, found } of read) {
      if (!found) continue;
      const current = physical === this.names.rule(logical);
      const claim = bare ? await this.bareClaim(logical, found.owner) : claimOf(found.owner, this.owner);
      if (current && desired.has(logical) && claim === 'foreign') {
        // Refused here, at plan time, unless `--adopt` takes over a rule no iotctl deployment owns.
        assertClaimable('topic rule', physical, found.owner, this.owner);
        entry(logical).current = { ...found.spec, physicalName: physical, adopt: markerTags(ownerMarker(this.owner)), compare: ruleShape(found.raw, logical, await this.scope()) };
        continue;
      }
      if (claim === 'foreign') continue;
      const compare = ruleShape(found.raw, logical, await this.scope());
      if (current) entry(logical).current = { ...found.spec, physicalName: physical, compare };
      else entry(logical).old.push({ ...found.spec, physicalName: physical, compare });
    }
    await rolesChecked;
    const listed = [...byLogical.values()].flatMap(({ current, old }) => {
      // Without the new one, the first old one is what the plan moves; any other is deleted as retired.
      const [moved, ...rest] = current ? [current, ...old] : old;
      return [moved!, ...rest.map((r) => ({ ...r, retired: true as const }))];
    });
    return listed.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The rule as put() would write it, in the shape list() reads it back in (`compare`): what plans compare. */
  async targetShape(rule: RuleSpec): Promise<unknown> {
    return ruleShape(toPayload(rule, await this.scope(), this.owner), rule.name, await this.scope());
  }

  /** The rule under its logical name; one an older iotctl wrote under the bare name is moved by `apply` first. */
  async get(name: string): Promise<RuleSpec | undefined> {
    const physical = this.names.rule(name);
    const found = await this.read(physical, name);
    if (found) return found.spec;
    const old = physical !== name ? await this.read(name, name) : undefined;
    if (old && (await this.bareClaim(name, old.owner)) !== 'foreign') {
      throw new UserError(
        `Rule ${name} is still under the name an older iotctl gave it (${name}), not ${physical}.`,
        'Run `iotctl apply` (or `iotctl rules apply`): it moves the rule to its new name, then this command finds it.',
        'RULE_NOT_MOVED',
      );
    }
    return undefined;
  }

  async put(rule: RuleSpec): Promise<void> {
    const s = await this.scope();
    const physical = this.names.rule(rule.name);
    const policy = managedRolePolicy(rule, s);
    // Ownership of the rule and of its role first: nothing is written for a rule that is refused.
    const existing = await this.read(physical, rule.name);
    if (existing) assertClaimable('topic rule', physical, existing.owner, this.owner);
    if (policy) await this.roleClaim(rule.name);
    if (policy) await this.ensureRole(rule.name, policy, s);
    const { client, sdk } = await this.aws.get('iot');
    const topicRulePayload = toPayload(rule, s, this.owner);
    // A role just created, or whose policy was just put, takes a few seconds before IoT may assume it ("If the
    // role was just created or updated, please try again in a few seconds"); a given roleArn may be new too.
    const operation = existing ? 'ReplaceTopicRule' : 'CreateTopicRule';
    await retryWhen(
      () =>
        existing
          ? client.send(new sdk.ReplaceTopicRuleCommand({ ruleName: physical, topicRulePayload }), this.aws.sendOptions)
          : client.send(new sdk.CreateTopicRuleCommand({ ruleName: physical, topicRulePayload }), this.aws.sendOptions),
      rolePropagating.iot,
      { service: 'iot', operation, what: `AWS IoT to be able to assume the role of rule ${physical}`, signal: this.aws.settings.signal, delayMs: 1_000, maxDelayMs: 5_000 },
    );
    await this.allowLambdaInvoke(rule, physical, s);
    if (!policy) await this.deleteRole(this.names.ruleRole(rule.name), rule.name);
  }

  /**
   * Deletes `physical` (an old name the plan moves away from), else the rule's name of this stage, after
   * checking it is ours; then its role and its functions' invoke permissions, as the name says which.
   */
  async delete(name: string, physical?: string): Promise<void> {
    const target = physical ?? this.names.rule(name);
    const current = target === this.names.rule(name);
    const bare = !current && target === name && ownershipByName('iot-topic-rule', target, this.names.scope).verdict === 'not-ours';
    const found = await this.read(target, name);
    if (found && (bare ? await this.bareClaim(name, found.owner) : claimOf(found.owner, this.owner)) === 'foreign') throw notOurs('topic rule', target, found.owner, this.owner);
    const { client, sdk } = await this.aws.get('iot');
    try {
      await client.send(new sdk.DeleteTopicRuleCommand({ ruleName: target }), this.aws.sendOptions);
    } catch (error) {
      if (!isAwsError(error, 'ResourceNotFoundException')) throw error;
    }
    // An older name of a rule that still exists under another (a changed physicalName) shares its role: kept.
    if (current) await this.deleteRole(this.names.ruleRole(name), name);
    if (bare) await this.deleteRole(ruleRoleName(name), name, true);
    if (found) await this.removeLambdaPermissions(found.raw, bare ? rulePermissionId(target) : rulePermissionStatement(target));
  }

  /** Every rule name in the account and region (names only: one call per 100 rules). */
  private async ruleNamesOnAws(): Promise<string[]> {
    const { client, sdk } = await this.aws.get('iot');
    const names: string[] = [];
    let nextToken: string | undefined;
    do {
      const out = await client.send(new sdk.ListTopicRulesCommand({ maxResults: 100, nextToken }), this.aws.sendOptions);
      names.push(...(out.rules ?? []).map((r) => r.ruleName!));
      nextToken = out.nextToken;
    } while (nextToken);
    return names.sort();
  }

  /** The logical name of a rule name in this stage's shape; a shortened one (its logical name cut) goes by its physical name. */
  private logicalOf(physical: string): string | undefined {
    const verdict = ownershipByName('iot-topic-rule', physical, this.names.scope);
    return verdict.verdict === 'ours' ? verdict.logical : verdict.verdict === 'check-tags' ? physical : undefined;
  }

  private async read(physical: string, logical: string): Promise<Found | undefined> {
    const { client, sdk } = await this.aws.get('iot');
    try {
      const out = await client.send(new sdk.GetTopicRuleCommand({ ruleName: physical }), this.aws.sendOptions);
      return out.rule ? { physical, spec: fromAws(logical, out.rule, await this.scope(), this.opts.datalake?.channels), owner: ruleOwnerTags(out.rule.description), raw: out.rule } : undefined;
    } catch (error) {
      // AWS answers GetTopicRule for a rule that does not exist with UnauthorizedException.
      if (isAwsError(error, 'ResourceNotFoundException', 'UnauthorizedException')) return undefined;
      throw error;
    }
  }

  /**
   * Whose a rule under the bare spec name is: its marker says; the first iotctl versions wrote none, and
   * their rule is recognised by the role they made for it (`iotctl-rule-<rule>`, tagged `iotctl:rule`), so
   * a hand-made rule that merely shares the spec's name stays foreign.
   */
  private async bareClaim(logical: string, marker: Record<string, string>): Promise<'owned' | 'legacy' | 'foreign'> {
    if (Object.keys(marker).length) return claimOf(marker, this.owner);
    const tags = await this.roleTags(ruleRoleName(logical));
    return tags && tags['iotctl:rule'] === logical && claimOf(tags, this.owner, true) !== 'foreign' ? 'legacy' : 'foreign';
  }

  private roleTags(RoleName: string): Promise<Record<string, string> | undefined> {
    return roleTags(this.aws, RoleName);
  }

  /**
   * Whether the rule's role may be written: missing, or ours (this project and stage's tags and `iotctl:rule`).
   * Anyone else's role of the name is refused, never adopted: the name is in iotctl's own namespace.
   */
  private async roleClaim(ruleName: string): Promise<'missing' | 'owned'> {
    const RoleName = this.names.ruleRole(ruleName);
    const tags = await this.roleTags(RoleName);
    if (!tags) return 'missing';
    const strict = { project: this.owner.project, stage: this.owner.stage };
    if (tags['iotctl:rule'] !== ruleName || claimOf(tags, strict) !== 'owned') throw notOurs('IAM role', RoleName, tags, strict);
    return 'owned';
  }

  /** The rule's managed role (iam.ts): created when missing; trust, policy and tags rewritten only where they drifted. */
  private async ensureRole(ruleName: string, policy: object, s: ArnScope): Promise<void> {
    await ensureServiceRole(this.aws, {
      name: this.names.ruleRole(ruleName),
      path: this.names.rolePath,
      description: `iotctl: the actions of topic rule ${this.names.rule(ruleName)}`,
      trust: this.roleTrust(ruleName, s),
      policyName: RULE_ROLE_POLICY,
      policy,
      tags: { ...ownerTags(this.owner), 'iotctl:rule': ruleName },
    });
  }

  private roleTrust(ruleName: string, s: ArnScope) {
    return trustPolicy('iot', s, { arn: arnOf('iot-topic-rule', s, this.names.rule(ruleName)) });
  }

  /**
   * The managed roles of these rules as plan resources (kind `rule role`, under the rule's logical name):
   * wanted (the trust with its conditions, the least-privilege policy) and as IAM holds them. A rule whose
   * actions all name a roleArn wants none (its put deletes the old one).
   */
  async roles(rules: RuleSpec[]): Promise<{ desired: Resource[]; actual: Resource[] }> {
    const s = await this.scope();
    const desired: Resource[] = [];
    for (const rule of rules) {
      const policy = managedRolePolicy(rule, s);
      if (policy) desired.push({ kind: 'rule role', name: rule.name, physical: this.names.ruleRole(rule.name), config: { trust: this.roleTrust(rule.name, s), policy } });
    }
    const { client, sdk } = await this.aws.get('iam');
    const actual = await mapLimit(desired, 4, async (d): Promise<Resource | undefined> => {
      const RoleName = d.physical!;
      try {
        const [role, inline] = await Promise.all([
          client.send(new sdk.GetRoleCommand({ RoleName }), this.aws.sendOptions),
          client.send(new sdk.GetRolePolicyCommand({ RoleName, PolicyName: RULE_ROLE_POLICY }), this.aws.sendOptions).catch((e) => (isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException') ? undefined : Promise.reject(e))),
        ]);
        return { ...d, config: { trust: policyJson(role.Role?.AssumeRolePolicyDocument), policy: policyJson(inline?.PolicyDocument) } };
      } catch (e) {
        if (isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException')) return undefined;
        throw e;
      }
    });
    return { desired, actual: actual.filter((r): r is Resource => !!r) };
  }

  /** A planned `rule role` change applied on its own (its rule unchanged): the planned policy, the rule's trust. */
  async putRole(ruleName: string, config: unknown): Promise<void> {
    await this.roleClaim(ruleName);
    await this.ensureRole(ruleName, (config as { policy: object }).policy, await this.scope());
  }

  /** Only a role made for this rule by this project and stage (`legacy`: or by an iotctl before the tags): never anyone else's. */
  private async deleteRole(RoleName: string, ruleName: string, legacy = false): Promise<void> {
    await deleteServiceRole(this.aws, RoleName, (tags) => tags['iotctl:rule'] === ruleName && claimOf(tags, this.owner, legacy) !== 'foreign');
  }

  /** IoT invokes a function only when the function's resource policy allows this rule (its physical name). */
  private async allowLambdaInvoke(rule: RuleSpec, physical: string, s: ArnScope): Promise<void> {
    const fns = actionsOf(rule).flatMap((a) => ('lambda' in a ? [a.lambda.function] : []));
    if (!fns.length) return;
    const { client, sdk } = await this.aws.get('lambda');
    for (const fn of new Set(fns)) {
      const FunctionName = s.names.fn.physical(fn);
      try {
        // ResourceConflictException is also "another operation on the function is in progress": waited out.
        await retryWhen(
          () =>
            client.send(
              new sdk.AddPermissionCommand({
                FunctionName,
                StatementId: rulePermissionStatement(physical),
                Action: 'lambda:InvokeFunction',
                Principal: 'iot.amazonaws.com',
                SourceAccount: s.account,
                SourceArn: arnOf('iot-topic-rule', s, physical),
              }),
              this.aws.sendOptions,
            ),
          lambdaBusy,
          { service: 'lambda', operation: 'AddPermission', what: `function ${FunctionName} to finish its update in progress`, signal: this.aws.settings.signal },
        );
      } catch (error) {
        if (permissionExists(error)) continue; // already allowed
        if (isAwsError(error, 'ResourceNotFoundException')) {
          const named = FunctionName === fn ? `"${fn}"` : `"${fn}" (${FunctionName} on AWS)`;
          throw new UserError(`Rule ${rule.name} invokes function ${named}, which does not exist.`, 'Deploy it first (`iotctl lambda deploy`), or fix the rule\'s lambda action.', 'FUNCTION_NOT_FOUND');
        }
        throw error;
      }
    }
  }

  /** The invoke permissions a deleted rule had, by the functions its actions name on AWS. */
  private async removeLambdaPermissions(rule: TopicRule, StatementId: string): Promise<void> {
    const fns = [...(rule.actions ?? []), ...(rule.errorAction ? [rule.errorAction] : [])].flatMap((a) => (a.lambda?.functionArn ? [a.lambda.functionArn] : []));
    if (!fns.length) return;
    const { client, sdk } = await this.aws.get('lambda');
    for (const FunctionName of new Set(fns)) {
      await client.send(new sdk.RemovePermissionCommand({ FunctionName, StatementId }), this.aws.sendOptions).catch((error) => {
        if (!isAwsError(error, 'ResourceNotFoundException')) throw error;
      });
    }
  }
}
