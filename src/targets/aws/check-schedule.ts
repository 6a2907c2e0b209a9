import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScheduledCheckDeployment, ScheduledCheckLast, ScheduledCheckPort, ScheduledCheckChange } from '../../ports.js';
import { LAMBDA_RUNTIME } from '../../services/bundle.js';
import { UserError } from '../../ui/errors.js';
import { zipArtifact } from './functions.js';
import { arnOf, iamPath, lambdaLogGroup, partitionOf, physicalName, type Scope } from './naming.js';
import { deleteServiceRole, ensureServiceRole, roleTags, trustPolicy, type RolePlace, type TrustedService } from './iam.js';
import { claimOf, markerTags, ownerTags, withMarker, type Owner } from './ownership.js';
import { anyOf, lambdaBusy, retryWhen, rolePropagating, waitUntil, type WaitOptions } from './retry.js';
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
    if (d.vpc) {
      // As the functions adapter scopes them: only the Describe actions are "*"-only; ENIs in the check's own subnets and groups.
      const ec2 = (resource: string) => `arn:${partitionOf(region)}:ec2:${region}:${account}:${resource}`;
      statements.push({ Sid: 'VpcDescribe', Effect: 'Allow', Action: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'], Resource: '*' });
      statements.push({
        Sid: 'VpcCreateNetworkInterface',
        Effect: 'Allow',
        Action: ['ec2:CreateNetworkInterface'],
        Resource: [ec2('network-interface/*'), ...[...d.vpc.subnetIds].sort().map((id) => ec2(`subnet/${id}`)), ...[...d.vpc.securityGroupIds].sort().map((id) => ec2(`security-group/${id}`))],
      });
      statements.push({ Sid: 'VpcNetworkInterfaces', Effect: 'Allow', Action: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'], Resource: ec2('network-interface/*') });
    }

    const changes: ScheduledCheckChange[] = [];
    progress('function role');
    const fnRole = await this.ensureRole(place, n.functionRole, 'lambda', policy(statements), `Role of the iotctl check function ${n.function}`);
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
      await retryWhen(
        () => lambda.send(new L.CreateFunctionCommand({ FunctionName: n.function, ...want, Code: { ZipFile: zip.zip }, PackageType: 'Zip', Tags: { ...ownerTags(this.owner), [CHECK_TAG]: 'true' }, Description: 'iotctl check --schedule' }), this.aws.sendOptions),
        rolePropagating.lambda,
        this.roleWait('lambda', 'CreateFunction', `Lambda to be able to assume the role ${fnRole.arn}`),
      );
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
        await retryWhen(
          () => lambda.send(new L.UpdateFunctionConfigurationCommand({ FunctionName: n.function, ...want }), this.aws.sendOptions),
          anyOf(rolePropagating.lambda, lambdaBusy),
          this.roleWait('lambda', 'UpdateFunctionConfiguration', `Lambda to be able to assume the role ${fnRole.arn}`),
        );
      }
      if (codeChanged || configChanged) await this.waitReady();
      changes.push({ resource: 'function', name: n.function, result: codeChanged || configChanged ? 'updated' : 'unchanged' });
    }

    progress('schedule role');
    const schedRole = await this.ensureRole(place, n.scheduleRole, 'scheduler', policy([{ Sid: 'InvokeCheck', Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: [fnArn, `${fnArn}:*`] }]), `Role EventBridge Scheduler runs the iotctl check ${n.function} with`);
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
    // The schedule's role was usually created or changed a moment ago: Scheduler refuses it until IAM has propagated it.
    const write = (operation: 'CreateSchedule' | 'UpdateSchedule') =>
      retryWhen(
        () => sched.send(operation === 'CreateSchedule' ? new S.CreateScheduleCommand(input) : new S.UpdateScheduleCommand(input), this.aws.sendOptions),
        rolePropagating.scheduler,
        this.roleWait('scheduler', operation, `EventBridge Scheduler to be able to assume the role ${schedRole.arn}`),
      );
    if (!current) {
      await write('CreateSchedule');
      changes.push({ resource: 'schedule', name: n.schedule, result: 'created' });
    } else {
      const same = current.ScheduleExpression === input.ScheduleExpression && current.State === 'ENABLED' && current.Target?.Arn === fnArn && current.Target?.RoleArn === schedRole.arn && (current.Target?.Input ?? '{}') === '{}' && current.Description === input.Description;
      if (!same) await write('UpdateSchedule');
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

  /**
   * A role of the stage's path trusted by `service` (iam.ts: its confused-deputy conditions, only what drifted
   * rewritten), with one inline policy; anyone else's role of the name is refused.
   */
  private async ensureRole(place: RolePlace, RoleName: string, service: TrustedService, document: object, description: string): Promise<{ arn: string; result: ScheduledCheckChange['result'] }> {
    const tags = await roleTags(this.aws, RoleName);
    if (tags && !this.isOurs(tags)) throw this.notOurs('IAM role', RoleName, tags);
    const { arn, result } = await ensureServiceRole(this.aws, {
      name: RoleName,
      path: this.names.rolePath,
      description,
      trust: trustPolicy(service, place),
      policyName: ROLE_POLICY,
      policy: document,
      tags: { ...ownerTags(this.owner), [CHECK_TAG]: 'true' },
    });
    return { arn, result };
  }

  private isOurs(tags: Record<string, string>): boolean {
    return claimOf(tags, this.owner) === 'owned' && tags[CHECK_TAG] === 'true';
  }

  private removeRole(RoleName: string): Promise<boolean> {
    return deleteServiceRole(this.aws, RoleName, (tags) => this.isOurs(tags));
  }

  private async waitReady(): Promise<void> {
    const { client, sdk } = await this.aws.get('lambda');
    const name = this.names.function;
    await waitUntil(
      () => client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: name }), this.aws.sendOptions),
      (c) => {
        if (c.State === 'Failed' || c.LastUpdateStatus === 'Failed') throw new UserError(`Lambda could not make the check function ${name} ready: ${c.StateReason ?? c.LastUpdateStatusReason ?? ''}`, 'Fix the cause it names, then run `iotctl check --schedule` again.', 'LAMBDA_FAILED');
        return c.State !== 'Pending' && c.LastUpdateStatus !== 'InProgress';
      },
      {
        service: 'lambda',
        operation: 'GetFunctionConfiguration',
        what: `the check function ${name} to be ready`,
        signal: this.aws.settings.signal,
        // A function in a VPC may take minutes (its network interfaces).
        timeoutMs: 300_000,
        delayMs: this.opts.pollMs ?? 1_000,
        maxDelayMs: Math.max(this.opts.pollMs ?? 1_000, 5_000),
        state: (c) => `${c.State}/${c.LastUpdateStatus ?? '-'}`,
        onTimeout: (c, s) => new UserError(`The check function ${name} is still ${c.State}/${c.LastUpdateStatus ?? '-'} after ${Math.round(s)} s.`, 'Look at it in the Lambda console, then run the command again.', 'LAMBDA_TIMEOUT'),
      },
    );
  }

  /** A role just made may not be assumable for a few seconds (IAM is eventually consistent): bounded, abortable. */
  private roleWait(service: 'lambda' | 'scheduler', operation: string, what: string): WaitOptions {
    return { service, operation, what, signal: this.aws.settings.signal, delayMs: 1_000, maxDelayMs: 10_000 };
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
