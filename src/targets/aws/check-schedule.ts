import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScheduledCheckDeployment, ScheduledCheckLast, ScheduledCheckPort, ScheduledCheckChange } from '../../ports.js';
import { LAMBDA_RUNTIME } from '../../services/bundle.js';
import { UserError } from '../../ui/errors.js';
import { zipArtifact } from './functions.js';
import { arnOf, iamPath, lambdaLogGroup, partitionOf, physicalName, type Scope } from './naming.js';
import { claimOf, markerTags, ownerTagList, ownerTags, tagMap, withMarker, type Owner } from './ownership.js';
import { isAwsError, type AwsClients } from './sdk.js';
import { ensureDatabaseSecret } from './secrets.js';

/**
 * `iotctl check --schedule` on aws: the check as a function in the account (templates/check-canary), run by an
 * EventBridge Scheduler schedule, each with its own least-privilege role; the function publishes the canary
 * through the IoT data plane and per-stage latency and success to CloudWatch (namespace iotctl/check).
 * Stage-scoped names (naming.ts), owned by tags (roles, function) or the description's marker (the
 * schedule). Applying what is deployed writes nothing; `--schedule off` removes all four.
 */

/** On the check's function: set apart from the spec's functions, which `apply --prune` would otherwise remove. */
export const CHECK_TAG = 'iotctl:check';
export const METRIC_NAMESPACE = 'iotctl/check';
const ROLE_POLICY = 'iotctl-check';
const SCHEDULE_DESCRIPTION = 'iotctl check --schedule';

export function checkNames(scope: Scope) {
  return {
    function: physicalName('lambda-function', scope, 'iotctl-check').name,
    functionRole: physicalName('iam-role', scope, 'check-fn').name,
    scheduleRole: physicalName('iam-role', scope, 'check-scheduler').name,
    schedule: physicalName('scheduler-schedule', scope, 'iotctl-check').name,
    rolePath: iamPath(scope),
  };
}

type Statement = { Sid: string; Effect: 'Allow'; Action: string[]; Resource: string | string[]; Condition?: Record<string, Record<string, string>> };
const policy = (Statement: Statement[]) => ({ Version: '2012-10-17' as const, Statement });

export class AwsScheduledCheck implements ScheduledCheckPort {
  private readonly names: ReturnType<typeof checkNames>;

  constructor(
    private readonly aws: AwsClients,
    private readonly owner: Owner,
    private readonly databaseEnvironment: () => Promise<Record<string, string>>,
    private readonly opts: { pollMs?: number } = {},
  ) {
    this.names = checkNames(owner);
  }

  async apply(d: ScheduledCheckDeployment, progress: (step: string) => void = () => undefined): Promise<ScheduledCheckChange[]> {
    const [region, account] = await Promise.all([this.aws.region(), this.aws.accountId()]);
    const place = { region, account };
    const n = this.names;
    const fnArn = arnOf('lambda-function', place, n.function);
    const existing = await this.getFunction();
    if (existing && existing.tags[CHECK_TAG] !== 'true') throw this.notOurs('Lambda function', n.function, existing.tags);

    progress('bundle the check function');
    const dir = mkdtempSync(join(tmpdir(), 'iotctl-check-'));
    let zip: Awaited<ReturnType<typeof zipArtifact>>;
    let sha256: string;
    try {
      const { bundleTemplate } = await import('../../services/bundle.js');
      ({ sha256 } = await bundleTemplate('check-canary', dir));
      zip = await zipArtifact(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    // The database as the ingest function reaches it; a URL goes into the stage's secret, never into the environment.
    const database = await this.databaseEnvironment();
    if (database.DATABASE_URL) {
      const { arn } = await ensureDatabaseSecret(this.aws, this.owner.project, database.DATABASE_URL, this.owner.stage);
      delete database.DATABASE_URL;
      database.DATABASE_SECRET_ARN = arn;
    }
    const streams = d.stages.filter((s) => s.kind === 'stream').map((s) => arnOf('kinesis-stream', place, s.physical ?? s.name));
    const statements: Statement[] = [
      { Sid: 'LogGroup', Effect: 'Allow', Action: ['logs:CreateLogGroup'], Resource: arnOf('log-group', place, lambdaLogGroup(n.function)) },
      { Sid: 'LogEvents', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: `${arnOf('log-group', place, lambdaLogGroup(n.function))}:*` },
      // Only the canary's telemetry topic.
      { Sid: 'PublishCanary', Effect: 'Allow', Action: ['iot:Publish'], Resource: `arn:${partitionOf(region)}:iot:${region}:${account}:topic/${d.topic}` },
      // PutMetricData has no resource: the namespace condition bounds it.
      { Sid: 'Metrics', Effect: 'Allow', Action: ['cloudwatch:PutMetricData'], Resource: '*', Condition: { StringEquals: { 'cloudwatch:namespace': METRIC_NAMESPACE } } },
    ];
    if (streams.length) statements.push({ Sid: 'ReadStreams', Effect: 'Allow', Action: ['kinesis:ListShards', 'kinesis:GetShardIterator', 'kinesis:GetRecords'], Resource: streams });
    if (database.DATABASE_SECRET_ARN) statements.push({ Sid: 'DatabaseSecret', Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: database.DATABASE_SECRET_ARN });
    if (/^(1|true)$/i.test(database.DATABASE_IAM_AUTH ?? '') && database.DATABASE_USER)
      statements.push({ Sid: 'DatabaseIamAuth', Effect: 'Allow', Action: ['rds-db:connect'], Resource: `arn:${partitionOf(region)}:rds-db:${region}:${account}:dbuser:*/${database.DATABASE_USER}` });
    if (d.vpc)
      statements.push({ Sid: 'VpcNetworkInterfaces', Effect: 'Allow', Action: ['ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'], Resource: '*' });

    const changes: ScheduledCheckChange[] = [];
    progress('function role');
    const fnRole = await this.ensureRole(n.functionRole, 'lambda.amazonaws.com', policy(statements), `Role of the iotctl check function ${n.function}`);
    changes.push({ resource: 'role', name: n.functionRole, result: fnRole.result });

    const environment = {
      IOTCTL_PROJECT: this.owner.project,
      IOTCTL_STAGE: this.owner.stage,
      CANARY_TOPIC: d.topic,
      CHECK_PLAN: JSON.stringify(d.stages),
      CHECK_TIMEOUT_MS: String(d.timeoutMs),
      METRIC_NAMESPACE,
      IOTCTL_BUNDLE_SHA256: sha256,
      ...database,
    };
    const want = {
      Runtime: LAMBDA_RUNTIME as 'nodejs22.x',
      Handler: 'index.handler',
      Role: fnRole.arn,
      // The run waits up to timeoutMs for the stages, then writes its metrics.
      Timeout: Math.min(900, Math.ceil(d.timeoutMs / 1000) + 30),
      MemorySize: 256,
      Environment: { Variables: environment },
      VpcConfig: { SubnetIds: [...(d.vpc?.subnetIds ?? [])].sort(), SecurityGroupIds: [...(d.vpc?.securityGroupIds ?? [])].sort() },
    };
    const { client: lambda, sdk: L } = await this.aws.get('lambda');
    progress('check function');
    if (!existing) {
      await this.retryWhileRoleIsNew(() => lambda.send(new L.CreateFunctionCommand({ FunctionName: n.function, ...want, Code: { ZipFile: zip.zip }, PackageType: 'Zip', Tags: { ...ownerTags(this.owner), [CHECK_TAG]: 'true' }, Description: 'iotctl check --schedule' }), this.aws.sendOptions));
      await this.waitReady();
      changes.push({ resource: 'function', name: n.function, result: 'created' });
    } else {
      const c = existing.config;
      const codeChanged = c.CodeSha256 !== zip.codeSha256;
      const configChanged =
        c.Runtime !== want.Runtime || c.Handler !== want.Handler || c.Role !== want.Role || c.Timeout !== want.Timeout || c.MemorySize !== want.MemorySize ||
        JSON.stringify(sorted(c.Environment?.Variables ?? {})) !== JSON.stringify(sorted(environment)) ||
        [...(c.VpcConfig?.SubnetIds ?? [])].sort().join() !== want.VpcConfig.SubnetIds.join() ||
        [...(c.VpcConfig?.SecurityGroupIds ?? [])].sort().join() !== want.VpcConfig.SecurityGroupIds.join();
      if (codeChanged) {
        await this.waitReady();
        await lambda.send(new L.UpdateFunctionCodeCommand({ FunctionName: n.function, ZipFile: zip.zip }), this.aws.sendOptions);
      }
      if (configChanged) {
        await this.waitReady();
        await this.retryWhileRoleIsNew(() => lambda.send(new L.UpdateFunctionConfigurationCommand({ FunctionName: n.function, ...want }), this.aws.sendOptions));
      }
      if (codeChanged || configChanged) await this.waitReady();
      changes.push({ resource: 'function', name: n.function, result: codeChanged || configChanged ? 'updated' : 'unchanged' });
    }

    progress('schedule role');
    const schedRole = await this.ensureRole(n.scheduleRole, 'scheduler.amazonaws.com', policy([{ Sid: 'InvokeCheck', Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: [fnArn, `${fnArn}:*`] }]), `Role EventBridge Scheduler runs the iotctl check ${n.function} with`);
    changes.push({ resource: 'role', name: n.scheduleRole, result: schedRole.result });

    progress('schedule');
    const { client: sched, sdk: S } = await this.aws.get('scheduler');
    const input = {
      Name: n.schedule,
      Description: withMarker(SCHEDULE_DESCRIPTION, this.owner),
      ScheduleExpression: d.expression,
      FlexibleTimeWindow: { Mode: 'OFF' as const },
      State: 'ENABLED' as const,
      Target: { Arn: fnArn, RoleArn: schedRole.arn, Input: '{}' },
    };
    const current = await this.getSchedule();
    if (current && claimOf(markerTags(current.Description), this.owner) !== 'owned') throw this.notOurs('EventBridge Scheduler schedule', n.schedule, markerTags(current.Description));
    if (!current) {
      await sched.send(new S.CreateScheduleCommand(input), this.aws.sendOptions);
      changes.push({ resource: 'schedule', name: n.schedule, result: 'created' });
    } else {
      const same = current.ScheduleExpression === input.ScheduleExpression && current.State === 'ENABLED' && current.Target?.Arn === fnArn && current.Target?.RoleArn === schedRole.arn && (current.Target?.Input ?? '{}') === '{}' && current.Description === input.Description;
      if (!same) await sched.send(new S.UpdateScheduleCommand(input), this.aws.sendOptions);
      changes.push({ resource: 'schedule', name: n.schedule, result: same ? 'unchanged' : 'updated' });
    }
    return changes;
  }

  async remove(): Promise<ScheduledCheckChange[]> {
    const n = this.names;
    const out: ScheduledCheckChange[] = [];
    const current = await this.getSchedule();
    if (current && claimOf(markerTags(current.Description), this.owner) === 'owned') {
      const { client, sdk } = await this.aws.get('scheduler');
      await client.send(new sdk.DeleteScheduleCommand({ Name: n.schedule }), this.aws.sendOptions);
      out.push({ resource: 'schedule', name: n.schedule, result: 'deleted' });
    }
    const fn = await this.getFunction();
    if (fn && fn.tags[CHECK_TAG] === 'true' && claimOf(fn.tags, this.owner) === 'owned') {
      const { client, sdk } = await this.aws.get('lambda');
      await client.send(new sdk.DeleteFunctionCommand({ FunctionName: n.function }), this.aws.sendOptions);
      out.push({ resource: 'function', name: n.function, result: 'deleted' });
    }
    for (const role of [n.functionRole, n.scheduleRole]) if (await this.removeRole(role)) out.push({ resource: 'role', name: role, result: 'deleted' });
    return out;
  }

  /** The last run's result: the JSON line the function logs, from its log group (the last day). */
  async last(): Promise<ScheduledCheckLast | undefined> {
    const schedule = await this.getSchedule();
    if (!schedule || claimOf(markerTags(schedule.Description), this.owner) !== 'owned') return undefined;
    const { client, sdk } = await this.aws.get('logs');
    let found: ScheduledCheckLast['last'];
    let nextToken: string | undefined;
    try {
      do {
        const page = await client.send(new sdk.FilterLogEventsCommand({ logGroupName: lambdaLogGroup(this.names.function), startTime: Date.now() - 86_400_000, filterPattern: '"iotctl_check_result"', nextToken }), this.aws.sendOptions);
        for (const e of page.events ?? []) {
          try {
            const r = (JSON.parse((e.message ?? '').slice((e.message ?? '').indexOf('{'))) as { iotctl_check_result?: NonNullable<ScheduledCheckLast['last']> }).iotctl_check_result;
            if (r && (!found || r.at > found.at)) found = r;
          } catch {
            // another line of the function's log
          }
        }
        nextToken = page.nextToken;
      } while (nextToken);
    } catch (e) {
      if (!isAwsError(e, 'ResourceNotFoundException')) throw e; // never ran yet: no log group
    }
    return { schedule: schedule.ScheduleExpression ?? '', function: this.names.function, namespace: METRIC_NAMESPACE, last: found };
  }

  // ------------------------------------------------------------ helpers

  private async getFunction() {
    const { client, sdk } = await this.aws.get('lambda');
    try {
      const out = await client.send(new sdk.GetFunctionCommand({ FunctionName: this.names.function }), this.aws.sendOptions);
      return { config: out.Configuration!, tags: out.Tags ?? {} };
    } catch (e) {
      if (isAwsError(e, 'ResourceNotFoundException')) return undefined;
      throw e;
    }
  }

  private async getSchedule() {
    const { client, sdk } = await this.aws.get('scheduler');
    try {
      return await client.send(new sdk.GetScheduleCommand({ Name: this.names.schedule }), this.aws.sendOptions);
    } catch (e) {
      if (isAwsError(e, 'ResourceNotFoundException')) return undefined;
      throw e;
    }
  }

  /** A role of the stage's path trusted by `service`, with one inline policy; anyone else's role of the name is refused. */
  private async ensureRole(RoleName: string, service: string, document: ReturnType<typeof policy>, description: string): Promise<{ arn: string; result: ScheduledCheckChange['result'] }> {
    const { client, sdk } = await this.aws.get('iam');
    const PolicyDocument = JSON.stringify(document);
    let arn: string | undefined;
    try {
      arn = (await client.send(new sdk.GetRoleCommand({ RoleName }), this.aws.sendOptions)).Role!.Arn;
    } catch (e) {
      if (!isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException')) throw e;
    }
    if (!arn) {
      const created = await client.send(
        new sdk.CreateRoleCommand({
          RoleName,
          Path: this.names.rolePath,
          Description: description,
          AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' }] }),
          Tags: [...ownerTagList(this.owner), { Key: CHECK_TAG, Value: 'true' }],
        }),
        this.aws.sendOptions,
      );
      await client.send(new sdk.PutRolePolicyCommand({ RoleName, PolicyName: ROLE_POLICY, PolicyDocument }), this.aws.sendOptions);
      return { arn: created.Role!.Arn!, result: 'created' };
    }
    const tags = tagMap((await client.send(new sdk.ListRoleTagsCommand({ RoleName }), this.aws.sendOptions)).Tags);
    if (claimOf(tags, this.owner) !== 'owned' || tags[CHECK_TAG] !== 'true') throw this.notOurs('IAM role', RoleName, tags);
    let current: string | undefined;
    try {
      current = (await client.send(new sdk.GetRolePolicyCommand({ RoleName, PolicyName: ROLE_POLICY }), this.aws.sendOptions)).PolicyDocument;
    } catch (e) {
      if (!isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException')) throw e;
    }
    // IAM returns the document URL-encoded.
    if (current !== undefined && JSON.stringify(sortedDeep(JSON.parse(decodeURIComponent(current)))) === JSON.stringify(sortedDeep(document))) return { arn, result: 'unchanged' };
    await client.send(new sdk.PutRolePolicyCommand({ RoleName, PolicyName: ROLE_POLICY, PolicyDocument }), this.aws.sendOptions);
    return { arn, result: 'updated' };
  }

  private async removeRole(RoleName: string): Promise<boolean> {
    const { client, sdk } = await this.aws.get('iam');
    let tags: Record<string, string>;
    try {
      tags = tagMap((await client.send(new sdk.ListRoleTagsCommand({ RoleName }), this.aws.sendOptions)).Tags);
    } catch (e) {
      if (isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException')) return false;
      throw e;
    }
    if (claimOf(tags, this.owner) !== 'owned' || tags[CHECK_TAG] !== 'true') return false;
    await client.send(new sdk.DeleteRolePolicyCommand({ RoleName, PolicyName: ROLE_POLICY }), this.aws.sendOptions).catch((e) => {
      if (!isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException')) throw e;
    });
    await client.send(new sdk.DeleteRoleCommand({ RoleName }), this.aws.sendOptions);
    return true;
  }

  private async waitReady(): Promise<void> {
    const { client, sdk } = await this.aws.get('lambda');
    for (let i = 0; i < 300; i++) {
      const c = await client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: this.names.function }), this.aws.sendOptions);
      if (c.State === 'Failed' || c.LastUpdateStatus === 'Failed') throw new UserError(`Lambda could not make the check function ${this.names.function} ready: ${c.StateReason ?? c.LastUpdateStatusReason ?? ''}`, 'Fix the cause it names, then run `iotctl check --schedule` again.', 'LAMBDA_FAILED');
      if (c.State !== 'Pending' && c.LastUpdateStatus !== 'InProgress') return;
      await new Promise((r) => setTimeout(r, this.opts.pollMs ?? 1_000));
    }
    throw new UserError(`The check function ${this.names.function} is still not ready.`, 'Look at it in the Lambda console, then run the command again.', 'LAMBDA_TIMEOUT');
  }

  /** A role just made may not be assumable by Lambda for a few seconds (IAM is eventually consistent). */
  private async retryWhileRoleIsNew<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 1, delay = 1_000; ; attempt++, delay = Math.min(delay * 2, 10_000)) {
      try {
        return await call();
      } catch (e) {
        if (!(isAwsError(e, 'InvalidParameterValueException') && /cannot be assumed/i.test(e.message)) || attempt >= 8) throw e;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private notOurs(kind: string, name: string, tags: Record<string, string>): UserError {
    return new UserError(
      `The ${kind} ${name} exists but is not the scheduled check of iotctl project ${this.owner.project}, stage ${this.owner.stage} (tags ${JSON.stringify(tags)}).`,
      'iotctl never takes over a resource it did not make: rename or remove that one, then run `iotctl check --schedule` again.',
      'RESOURCE_NOT_OURS',
    );
  }
}

const sorted = (o: Record<string, string>) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
function sortedDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortedDeep);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => [k, sortedDeep(x)]));
  return v;
}
