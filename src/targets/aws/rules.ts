import type { Action, TopicRule, TopicRulePayload } from '@aws-sdk/client-iot';
import type { ListScope, RulesPort } from '../../ports.js';
import type { RuleAction, RuleSpec } from '../../spec/schema.js';
import { UserError } from '../../ui/errors.js';
import { partitionOf, ruleRoleName, rulePermissionId } from './naming.js';
import { mapLimit } from './concurrency.js';
import { assertClaimable, claimOf, DEFAULT_STAGE, markerTags, notOurs, stripMarker, ownerOf as ownerNamed, ownerTagList, tagMap, withMarker, type Owner } from './ownership.js';
import { isAwsError, type AwsClients } from './sdk.js';

/** IoT SQL version for every rule: AWS's default (2015-10-08) lacks the functions and semantics local implements. */
export const SQL_VERSION = '2016-03-23';

/** Where ARNs are built: partition, region and account of the caller. */
export interface ArnScope {
  partition: string;
  region: string;
  account: string;
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



const roleArnOf = (s: ArnScope, roleName: string) => `arn:${s.partition}:iam::${s.account}:role/${roleName}`;
const lambdaArnOf = (s: ArnScope, fn: string) => (fn.startsWith('arn:') ? fn : `arn:${s.partition}:lambda:${s.region}:${s.account}:function:${fn}`);
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
    if ('kinesis' in action) add(['kinesis:PutRecord'], [`arn:${s.partition}:kinesis:${s.region}:${s.account}:stream/${action.kinesis.stream}`]);
    else if ('iotAnalytics' in action && s.channelStreams) {
      // As toPayload writes them: every stream of the channel for an action, its raw stream for the errorAction.
      const streams = s.channelStreams(action.iotAnalytics.channel).slice(0, action === rule.errorAction ? 1 : undefined);
      add(['firehose:PutRecord', 'firehose:PutRecordBatch'], streams.map((d) => `arn:${s.partition}:firehose:${s.region}:${s.account}:deliverystream/${d}`));
    } else if ('iotAnalytics' in action) add(['iotanalytics:BatchPutMessage'], [`arn:${s.partition}:iotanalytics:${s.region}:${s.account}:channel/${action.iotAnalytics.channel}`]);
    else if ('republish' in action) add(['iot:Publish'], [`arn:${s.partition}:iot:${s.region}:${s.account}:topic/${wildcardTemplates(action.republish.topic)}`]);
    else if ('s3' in action) add(['s3:PutObject'], [`arn:${s.partition}:s3:::${wildcardTemplates(action.s3.bucket)}/*`]);
    else if ('firehose' in action) add(['firehose:PutRecord', 'firehose:PutRecordBatch'], [`arn:${s.partition}:firehose:${s.region}:${s.account}:deliverystream/${action.firehose.deliveryStream}`]);
    else if ('cloudwatchLogs' in action) {
      add(['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'], [`arn:${s.partition}:logs:${s.region}:${s.account}:log-group:${action.cloudwatchLogs.logGroup}:*`]);
    }
  }
  if (!byKind.size) return undefined;
  return {
    Version: '2012-10-17',
    Statement: [...byKind.values()].map((e) => ({ Effect: 'Allow' as const, Action: e.actions, Resource: [...e.resources].sort() })),
  };
}

/** Only IoT, and only on behalf of this rule in this account, may assume the managed role. */
function trustPolicy(ruleName: string, s: ArnScope) {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: 'iot.amazonaws.com' },
        Action: 'sts:AssumeRole',
        Condition: { StringEquals: { 'aws:SourceAccount': s.account }, ArnLike: { 'aws:SourceArn': `arn:${s.partition}:iot:${s.region}:${s.account}:rule/${ruleName}` } },
      },
    ],
  };
}

/** The spec's action as AWS's action shape, with ARNs and the role (given, or the managed one). */
export function toAwsAction(action: RuleAction, s: ArnScope, managedRole: string): Action {
  const role = roleOf(action) ?? managedRole;
  if ('kinesis' in action) return { kinesis: { roleArn: role, streamName: action.kinesis.stream, partitionKey: action.kinesis.partitionKey } };
  if ('iotAnalytics' in action) return { iotAnalytics: { roleArn: role, channelName: action.iotAnalytics.channel } };
  if ('republish' in action) return { republish: { roleArn: role, topic: action.republish.topic, qos: action.republish.qos } };
  if ('s3' in action) return { s3: { roleArn: role, bucketName: action.s3.bucket, key: action.s3.key } };
  if ('firehose' in action) {
    return { firehose: { roleArn: role, deliveryStreamName: action.firehose.deliveryStream, ...(action.firehose.separator !== undefined ? { separator: action.firehose.separator } : {}) } };
  }
  if ('lambda' in action) return { lambda: { functionArn: lambdaArnOf(s, action.lambda.function) } };
  return { cloudwatchLogs: { roleArn: role, logGroupName: action.cloudwatchLogs.logGroup } };
}

/** AWS's action back to the spec's shape, normalised so that an unchanged rule compares equal. */
export function fromAwsAction(action: Action, s: ArnScope, managedRole: string): RuleAction | undefined {
  const role = (arn: string | undefined) => (arn && arn !== managedRole ? { roleArn: arn } : {});
  if (action.kinesis) return { kinesis: { stream: action.kinesis.streamName!, partitionKey: action.kinesis.partitionKey ?? '${newuuid()}', ...role(action.kinesis.roleArn) } };
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
    const ours = `arn:${s.partition}:lambda:${s.region}:${s.account}:function:`;
    return { lambda: { function: arn.startsWith(ours) && !arn.slice(ours.length).includes(':') ? arn.slice(ours.length) : arn } };
  }
  if (action.cloudwatchLogs) return { cloudwatchLogs: { logGroup: action.cloudwatchLogs.logGroupName!, ...role(action.cloudwatchLogs.roleArn) } };
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
  const managed = roleArnOf(s, ruleRoleName(rule.name));
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

/** `channels`: the spec's channels, to fold the datalake engine's firehose actions back into `iotAnalytics`. */
export function fromAws(name: string, rule: TopicRule, s: ArnScope, channels: readonly string[] = []): RuleSpec {
  const managed = roleArnOf(s, ruleRoleName(name));
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

/**
 * The aws target's topic rules: ListTopicRules/GetTopicRule read back as RuleSpec, Create/Replace/Delete
 * TopicRule write them, and one least-privilege IAM role per rule (for actions without a roleArn) is
 * created, kept in step with the rule's actions, and deleted with the rule.
 */
export class AwsRules implements RulesPort {
  private scopeCache?: Promise<ArnScope>;
  private readonly owner: Owner;

  /** `project`: the iotctl project whose rules these are (see ownerOf). */
  constructor(
    private readonly aws: AwsClients,
    private readonly project = 'iotctl',
    /** Analytics engine datalake: the delivery streams of a channel (see ArnScope.channelStreams), and the spec's channels. */
    private readonly datalake?: { channels: readonly string[]; streams: (channel: string, scope: { accountId: string; region: string }) => string[] },
    stage?: string,
  ) {
    this.owner = ownerNamed(project, stage);
  }

  scope(): Promise<ArnScope> {
    const datalake = this.datalake;
    this.scopeCache ??= Promise.all([this.aws.region(), this.aws.accountId()]).then(([region, account]) => ({
      partition: partitionOf(region),
      region,
      account,
      ...(datalake ? { channelStreams: (channel: string) => datalake.streams(channel, { accountId: account, region }) } : {}),
    }));
    this.scopeCache.catch(() => (this.scopeCache = undefined));
    return this.scopeCache;
  }

  /** This project and stage's rules; a name of `scope.desired` held by anyone else's rule is refused. */
  async list(scope: ListScope = {}): Promise<RuleSpec[]> {
    const { client, sdk } = await this.aws.get('iot');
    const names: string[] = [];
    let nextToken: string | undefined;
    do {
      const out = await client.send(new sdk.ListTopicRulesCommand({ maxResults: 100, nextToken }), this.aws.sendOptions);
      names.push(...(out.rules ?? []).map((r) => r.ruleName!));
      nextToken = out.nextToken;
    } while (nextToken);
    const rules = await mapLimit(names.sort(), 4, (name) => this.read(name));
    const desired = new Set(scope.desired ?? []);
    for (const r of rules) if (r && desired.has(r.spec.name) && claimOf(r.owner, this.owner) !== 'owned') throw notOurs('topic rule', r.spec.name, r.owner, this.owner);
    // Their roles too, at plan time: `iotctl-rule-<name>` of anyone else is refused before apply writes anything.
    await mapLimit([...desired], 4, (name) => this.roleClaim(name));
    return rules.filter((r) => r !== undefined && claimOf(r.owner, this.owner) === 'owned').map((r) => r!.spec);
  }

  async get(name: string): Promise<RuleSpec | undefined> {
    return (await this.read(name))?.spec;
  }

  private async read(name: string): Promise<{ spec: RuleSpec; owner: Record<string, string> } | undefined> {
    const { client, sdk } = await this.aws.get('iot');
    try {
      const out = await client.send(new sdk.GetTopicRuleCommand({ ruleName: name }), this.aws.sendOptions);
      return out.rule ? { spec: fromAws(name, out.rule, await this.scope(), this.datalake?.channels), owner: ruleOwnerTags(out.rule.description) } : undefined;
    } catch (error) {
      // AWS answers GetTopicRule for a rule that does not exist with UnauthorizedException.
      if (isAwsError(error, 'ResourceNotFoundException', 'UnauthorizedException')) return undefined;
      throw error;
    }
  }

  async put(rule: RuleSpec): Promise<void> {
    const s = await this.scope();
    const policy = managedRolePolicy(rule, s);
    // Ownership of the rule and of its role first: nothing is written for a rule that is refused.
    const existing = await this.read(rule.name);
    if (existing) assertClaimable('topic rule', rule.name, existing.owner, this.owner);
    const roleClaim = policy ? await this.roleClaim(rule.name) : 'missing';
    const createdRole = policy ? await this.ensureRole(rule.name, policy, s, roleClaim) : false;
    const exists = existing !== undefined;
    const { client, sdk } = await this.aws.get('iot');
    const topicRulePayload = toPayload(rule, s, this.owner);
    for (let attempt = 0; ; attempt++) {
      try {
        if (exists) await client.send(new sdk.ReplaceTopicRuleCommand({ ruleName: rule.name, topicRulePayload }), this.aws.sendOptions);
        else await client.send(new sdk.CreateTopicRuleCommand({ ruleName: rule.name, topicRulePayload }), this.aws.sendOptions);
        break;
      } catch (error) {
        // A new IAM role takes a few seconds before IoT may assume it.
        const propagating = createdRole && isAwsError(error, 'InvalidRequestException') && /role|assume/i.test(error.message);
        if (!propagating || attempt >= 8) throw error;
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    await this.allowLambdaInvoke(rule, s);
    if (!policy) await this.deleteRole(rule.name);
  }

  async delete(name: string): Promise<void> {
    const { client, sdk } = await this.aws.get('iot');
    const found = await this.read(name);
    if (found) assertClaimable('topic rule', name, found.owner, this.owner);
    const rule = found?.spec;
    try {
      await client.send(new sdk.DeleteTopicRuleCommand({ ruleName: name }), this.aws.sendOptions);
    } catch (error) {
      if (!isAwsError(error, 'ResourceNotFoundException')) throw error;
    }
    await this.deleteRole(name);
    if (rule) await this.removeLambdaPermissions(rule);
  }

  /** Creates the managed role when missing and (re)writes its inline policy. True when the role is new. */
  /**
   * Whether the rule's role may be written: missing, ours (tags), or made for this rule by an older iotctl
   * (its `iotctl:rule` tag without a project, which gets the tags). Anyone else's role is refused.
   */
  private async roleClaim(ruleName: string): Promise<'missing' | 'owned' | 'legacy'> {
    const { client, sdk } = await this.aws.get('iam');
    const RoleName = ruleRoleName(ruleName);
    try {
      const tags = tagMap((await client.send(new sdk.ListRoleTagsCommand({ RoleName }), this.aws.sendOptions)).Tags);
      if (tags['iotctl:rule'] !== ruleName) throw notOurs('IAM role', RoleName, tags, this.owner);
      return assertClaimable('IAM role', RoleName, tags, this.owner, true) as 'owned' | 'legacy';
    } catch (error) {
      if (isAwsError(error, 'NoSuchEntity', 'NoSuchEntityException')) return 'missing';
      throw error;
    }
  }

  private async ensureRole(ruleName: string, policy: object, s: ArnScope, claim: 'missing' | 'owned' | 'legacy'): Promise<boolean> {
    const { client, sdk } = await this.aws.get('iam');
    const RoleName = ruleRoleName(ruleName);
    let created = false;
    if (claim === 'legacy') await client.send(new sdk.TagRoleCommand({ RoleName, Tags: ownerTagList(this.owner) }), this.aws.sendOptions);
    if (claim === 'missing') {
      await client.send(
        new sdk.CreateRoleCommand({
          RoleName,
          AssumeRolePolicyDocument: JSON.stringify(trustPolicy(ruleName, s)),
          Description: `iotctl: the actions of topic rule ${ruleName}`,
          Tags: [...ownerTagList(this.owner), { Key: 'iotctl:rule', Value: ruleName }],
        }),
        this.aws.sendOptions,
      );
      created = true;
    }
    await client.send(new sdk.PutRolePolicyCommand({ RoleName, PolicyName: 'rule-actions', PolicyDocument: JSON.stringify(policy) }), this.aws.sendOptions);
    return created;
  }

  private async deleteRole(ruleName: string): Promise<void> {
    const { client, sdk } = await this.aws.get('iam');
    const RoleName = ruleRoleName(ruleName);
    try {
      // Only a role made for this rule by this project (or an older iotctl): never anyone else's.
      const tags = tagMap((await client.send(new sdk.ListRoleTagsCommand({ RoleName }), this.aws.sendOptions)).Tags);
      if (tags['iotctl:rule'] !== ruleName || claimOf(tags, this.owner, true) === 'foreign') return;
      const { PolicyNames = [] } = await client.send(new sdk.ListRolePoliciesCommand({ RoleName }), this.aws.sendOptions);
      for (const PolicyName of PolicyNames) await client.send(new sdk.DeleteRolePolicyCommand({ RoleName, PolicyName }), this.aws.sendOptions);
      await client.send(new sdk.DeleteRoleCommand({ RoleName }), this.aws.sendOptions);
    } catch (error) {
      if (!isAwsError(error, 'NoSuchEntity', 'NoSuchEntityException')) throw error;
    }
  }

  /** IoT invokes a function only when the function's resource policy allows this rule. */
  private async allowLambdaInvoke(rule: RuleSpec, s: ArnScope): Promise<void> {
    const fns = actionsOf(rule).flatMap((a) => ('lambda' in a ? [a.lambda.function] : []));
    if (!fns.length) return;
    const { client, sdk } = await this.aws.get('lambda');
    for (const fn of new Set(fns)) {
      try {
        await client.send(
          new sdk.AddPermissionCommand({
            FunctionName: fn,
            StatementId: rulePermissionId(rule.name),
            Action: 'lambda:InvokeFunction',
            Principal: 'iot.amazonaws.com',
            SourceAccount: s.account,
            SourceArn: `arn:${s.partition}:iot:${s.region}:${s.account}:rule/${rule.name}`,
          }),
          this.aws.sendOptions,
        );
      } catch (error) {
        if (isAwsError(error, 'ResourceConflictException')) continue; // already allowed
        if (isAwsError(error, 'ResourceNotFoundException')) {
          throw new UserError(`Rule ${rule.name} invokes function "${fn}", which does not exist.`, 'Deploy it first (`iotctl lambda deploy`), or fix the rule\'s lambda action.', 'FUNCTION_NOT_FOUND');
        }
        throw error;
      }
    }
  }

  private async removeLambdaPermissions(rule: RuleSpec): Promise<void> {
    const fns = actionsOf(rule).flatMap((a) => ('lambda' in a ? [a.lambda.function] : []));
    if (!fns.length) return;
    const { client, sdk } = await this.aws.get('lambda');
    for (const fn of new Set(fns)) {
      await client.send(new sdk.RemovePermissionCommand({ FunctionName: fn, StatementId: rulePermissionId(rule.name) }), this.aws.sendOptions).catch((error) => {
        if (!isAwsError(error, 'ResourceNotFoundException')) throw error;
      });
    }
  }
}

