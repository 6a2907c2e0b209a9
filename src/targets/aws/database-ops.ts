import { runGraph, type GraphStep } from '../../services/graph.js';
import { randomBytes } from 'node:crypto';
import { MIGRATIONS } from '../../db/migrations.js';
import { planResources, type PlanItem, type Resource } from '../../iot/plan/index.js';
import type { DatabaseOpsPort, FunctionsPort, InvokeResult } from '../../ports.js';
import { bundleDigest, getTemplate } from '../../services/bundle.js';
import { functionConfig, withArtifact } from '../../services/functions.js';
import type { Spec } from '../../spec/schema.js';
import { UserError } from '../../ui/errors.js';
import { warn } from '../../ui/output.js';
import type { AwsDatabase } from './database.js';
import { parseLogLine } from './lambda-logs.js';
import { arnOf, databaseOpsLogical as L, databaseOpsNames, lambdaLogGroup, type DatabaseOpsNames, type ExplicitNames, type Scope } from './naming.js';
import { ensureServiceRole, policyJson, roleTags, samePolicy, trustPolicy } from './iam.js';
import { assertClaimable, DATABASE_TAG, markerTags, ownerTagList, ownerTags, tagMap, withMarker, type Owner } from './ownership.js';
import { retryWhen, rolePropagating } from './retry.js';
import { isAwsError, type AwsClients } from './sdk.js';

/**
 * The recent-data store operated by the account itself (issue 19), converged by `apply` on aws as the
 * `database` section:
 * - one Secrets Manager secret per least-privilege role (writer, reader) in RDS's secret format, when the spec
 *   gives the admin credentials as a URL or a secret (with IAM auth the roles sign in with tokens instead). The
 *   password is generated here once and kept; the maintenance function's migrate event sets it on the role
 *   (ALTER ROLE ... LOGIN PASSWORD, read from the secret inside the VPC), so it never travels in an event,
 *   a log line or the laptop's connection, and rotating it is: change the secret, migrate again.
 * - the maintenance function (templates/maintenance-rds, as the owner) and the query function
 *   (templates/query-rds, as the reader), in the ingest function's VPC when it has one; their execution roles
 *   are the functions adapter's least-privilege ones (ENI actions only with a VPC, GetSecretValue on their secrets).
 * - an EventBridge Scheduler schedule on `database.retentionSchedule` invoking the maintenance function, its
 *   role (lambda:InvokeFunction on that function, sqs:SendMessage on the queue) and a dead-letter queue for
 *   invocations Scheduler could not deliver.
 * - the schema: migrated through the maintenance function ({"migrate": true}).
 */

export const MAINTENANCE_TEMPLATE = 'maintenance-rds';
export const QUERY_TEMPLATE = 'query-rds';
const SCHEDULE_DESCRIPTION = 'iotctl database maintenance';
const ROLE_POLICY = 'iotctl';

export interface DatabaseOpsOptions {
  owner: Owner;
  scope: Scope;
  explicit?: ExplicitNames;
  functions: FunctionsPort;
  database: AwsDatabase;
  /** Reads the schema version without the maintenance function (a direct connection), or undefined when unreachable. */
  directSchemaVersion?: () => Promise<number | undefined>;
  /**
   * Migrates over a direct connection and sets the roles' passwords from their secrets, when the database answers
   * from here; false when it does not (then the maintenance function does it in the VPC).
   */
  directMigrate?: (passwords: Partial<Record<'writer' | 'reader', string>>) => Promise<boolean>;
}

type SecretConfig = { role: 'writer' | 'reader'; username: string; host: string; port: number; dbname: string; sslmode?: string };

export class AwsDatabaseOps implements DatabaseOpsPort {
  readonly names: DatabaseOpsNames;

  constructor(
    private readonly aws: AwsClients,
    private readonly spec: Pick<Spec, 'database' | 'functions'>,
    private readonly opts: DatabaseOpsOptions,
  ) {
    this.names = databaseOpsNames(opts.scope, opts.explicit);
  }

  /** The ingest function's network: the database's VPC (the first ingest-rds function that has one). */
  vpc() {
    return this.spec.functions.find((f) => f.template === 'ingest-rds' && f.vpc)?.vpc ?? this.spec.functions.find((f) => f.vpc)?.vpc;
  }

  // ------------------------------------------------------------ plan

  async plan(): Promise<PlanItem[]> {
    let endpoint;
    try {
      endpoint = await this.opts.database.roleEndpoint();
    } catch (error) {
      if (!(error instanceof UserError) || error.code !== 'NO_DATABASE') throw error;
      warn(`${error.message} The database section (schema, maintenance and query functions) is not planned.`);
      return [];
    }
    const desired: Resource[] = [];
    const actual: Resource[] = [];
    const add = (kind: string, name: string, physical: string, want: unknown, have: unknown | undefined) => {
      desired.push({ kind, name, physical, config: want });
      if (have !== undefined) actual.push({ kind, name, physical, config: have });
    };
    // The parts are read independently of each other, at once (at most a few calls each); added in the order plans show.
    const readFunction = async (which: 'maintenance' | 'query') => {
      const logical = which === 'maintenance' ? L.maintenanceFunction : L.queryFunction;
      const physical = which === 'maintenance' ? this.names.maintenanceFunction : this.names.queryFunction;
      const [want, have, vpc] = await Promise.all([
        this.desiredFunction(which),
        this.opts.functions.get(logical),
        // Read alongside GetFunction; used only when the function exists.
        this.functionVpc(physical).catch((error: unknown) => {
          if (isAwsError(error, 'ResourceNotFoundException')) return null;
          throw error;
        }),
      ]);
      return { logical, physical, want, have: have && { ...functionConfig(have), vpc } };
    };
    const readQueue = async () => {
      const queue = await this.queueUrl();
      if (queue) await this.claimQueue(queue);
      return queue;
    };
    const placed = this.place();
    const [place, role, secrets, queue, fns, schedule, version] = await Promise.all([
      placed,
      placed.then((p) => this.readRole(p)),
      endpoint ? Promise.all((['writer', 'reader'] as const).map(async (role) => ({ role, found: await this.readSecret(role) }))) : Promise.resolve([]),
      readQueue(),
      Promise.all((['maintenance', 'query'] as const).map(readFunction)),
      this.readSchedule(),
      this.schemaVersion(),
    ]);
    if (endpoint) for (const { role, found } of secrets) add('database secret', L.roleSecret(role), this.names.roleSecret(role), this.secretConfig(role, endpoint), found?.config);
    add('queue', L.deadLetterQueue, this.names.deadLetterQueue, {}, queue ? {} : undefined);
    for (const f of fns) add('function', f.logical, f.physical, f.want, f.have);
    add('role', L.scheduleRole, this.names.scheduleRole, { trust: trustPolicy('scheduler', place), policy: this.schedulerPolicy(place) }, role);
    add('schedule', L.schedule, this.names.schedule, this.scheduleConfig(place), schedule);
    const latest = Math.max(...MIGRATIONS.map((m) => m.version));
    add('database schema', 'schema', 'via ' + this.names.maintenanceFunction, { version: latest }, version === undefined ? undefined : { version });
    const items = planResources(desired, actual);
    // The schema's version read neither directly nor through the query function: migrate (idempotent) and say so.
    for (const i of items) if (i.kind === 'database schema' && version === undefined) i.note = 'version not readable from here: the maintenance function migrates (a no-op when up to date)';
    return items;
  }

  // ------------------------------------------------------------ apply

  /** Converges every part the plan lists as not in sync, in dependency order, then migrates when asked or needed. */
  async apply(items: PlanItem[], progress: (step: string) => void = () => undefined): Promise<void> {
    const todo = (kind: string, name?: string) => items.some((i) => i.kind === kind && (name === undefined || i.name === name) && i.action !== 'noop' && i.action !== 'delete');
    const place = await this.place();
    let secretsChanged = false;
    const endpoint = await this.opts.database.roleEndpoint();
    if (endpoint) {
      for (const role of ['writer', 'reader'] as const) {
        if (!todo('database secret', L.roleSecret(role))) continue;
        progress(`secret ${this.names.roleSecret(role)}`);
        await this.ensureSecret(role, endpoint);
        secretsChanged = true;
      }
    }
    if (todo('queue')) await this.ensureQueue();
    // The two functions and the scheduler's role are independent (each waits for its own role to propagate and
    // its function to leave Pending): at once. The schedule targets the maintenance function, with that role.
    const steps: GraphStep[] = [
      ...(todo('function', L.maintenanceFunction) ? [{ id: 'maintenance', after: [], run: () => this.deployFunction('maintenance', progress) }] : []),
      ...(todo('function', L.queryFunction) ? [{ id: 'query', after: [], run: () => this.deployFunction('query', progress) }] : []),
      ...(todo('role') ? [{ id: 'role', after: [], run: () => this.ensureRole(place) }] : []),
    ];
    if (todo('schedule')) steps.push({ id: 'schedule', after: steps.filter((x) => x.id !== 'query').map((x) => x.id), run: () => this.ensureSchedule(place) });
    await runGraph(steps);
    // New role secrets get their passwords set by the migrate run.
    if (todo('database schema') || secretsChanged) {
      progress('migrate');
      await this.migrate();
    }
  }

  /**
   * The schema, the roles and their passwords: directly when the database answers from here, else
   * `{"migrate": true}` through the maintenance function.
   */
  async migrate(): Promise<Record<string, unknown>> {
    if (this.opts.directMigrate) {
      const passwords: Partial<Record<'writer' | 'reader', string>> = {};
      for (const role of ['writer', 'reader'] as const) {
        const found = await this.readSecret(role);
        if (found?.password) passwords[role] = found.password;
      }
      if (await this.opts.directMigrate(passwords)) return { action: 'migrate', via: 'direct' };
    }
    return this.invokeMaintenance({ migrate: true });
  }

  async invokeQuery(event: Record<string, unknown>): Promise<Record<string, unknown>> {
    const out = await this.opts.functions.invoke(L.queryFunction, event);
    return functionPayload(out, this.names.queryFunction) as Record<string, unknown>;
  }

  async invokeMaintenance(event: Record<string, unknown>): Promise<Record<string, unknown>> {
    const out = await this.opts.functions.invoke(L.maintenanceFunction, event);
    return functionPayload(out, this.names.maintenanceFunction) as Record<string, unknown>;
  }

  // ------------------------------------------------------------ secrets

  private secretConfig(role: 'writer' | 'reader', e: { host: string; port: number; dbname: string; sslmode?: string }): SecretConfig {
    const ROLE = { writer: 'iotctl_writer', reader: 'iotctl_reader' } as const;
    return { role, username: ROLE[role], host: e.host, port: e.port, dbname: e.dbname, ...(e.sslmode ? { sslmode: e.sslmode } : {}) };
  }

  /** The role's secret as plans compare it (never the password), or undefined when missing. Anyone else's is refused. */
  private async readSecret(role: 'writer' | 'reader'): Promise<{ arn: string; config: SecretConfig; password: string } | undefined> {
    const { client, sdk } = await this.aws.get('secrets');
    const name = this.names.roleSecret(role);
    let described;
    try {
      described = await client.send(new sdk.DescribeSecretCommand({ SecretId: name }), this.aws.sendOptions);
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
    assertClaimable('secret', name, tagMap(described.Tags), this.opts.owner);
    const value = await client.send(new sdk.GetSecretValueCommand({ SecretId: name }), this.aws.sendOptions);
    let s: Record<string, unknown> = {};
    try {
      s = JSON.parse(value.SecretString ?? '{}') as Record<string, unknown>;
    } catch {
      // Not ours in shape: rewritten by apply (the plan shows it as a change).
    }
    const config: SecretConfig = { role, username: String(s.username ?? ''), host: String(s.host ?? ''), port: Number(s.port ?? 0), dbname: String(s.dbname ?? ''), ...(s.sslmode ? { sslmode: String(s.sslmode) } : {}) };
    return { arn: described.ARN!, config, password: typeof s.password === 'string' ? s.password : '' };
  }

  /** Creates the secret with a new random password, or rewrites where it points keeping its password. */
  private async ensureSecret(role: 'writer' | 'reader', endpoint: { host: string; port: number; dbname: string; sslmode?: string }): Promise<string> {
    const { client, sdk } = await this.aws.get('secrets');
    const name = this.names.roleSecret(role);
    const current = await this.readSecret(role);
    const password = current?.password || randomBytes(24).toString('base64url');
    const { role: _r, ...config } = this.secretConfig(role, endpoint);
    const value = JSON.stringify({ ...config, password, engine: 'postgres' });
    if (!current) {
      const out = await client.send(
        new sdk.CreateSecretCommand({ Name: name, Description: `PostgreSQL credentials of the iotctl ${role} role (RDS secret format); the maintenance function sets the password`, SecretString: value, Tags: ownerTagList(this.opts.owner) }),
        this.aws.sendOptions,
      );
      return out.ARN!;
    }
    await client.send(new sdk.PutSecretValueCommand({ SecretId: name, SecretString: value }), this.aws.sendOptions);
    return current.arn;
  }

  private async secretArns(): Promise<Partial<Record<'writer' | 'reader', string>>> {
    const [writer, reader] = await Promise.all([this.opts.database.roleSecretArn('writer'), this.opts.database.roleSecretArn('reader')]);
    return { ...(writer ? { writer } : {}), ...(reader ? { reader } : {}) };
  }

  // ------------------------------------------------------------ functions

  /** What the plan compares for one function: as functionsSection does, plus its VPC. */
  private async desiredFunction(which: 'maintenance' | 'query') {
    const d = await this.deployment(which);
    // The bundle's hash without bundling when its inputs are unchanged since the last bundle (bundle.ts's cache).
    const { sha256 } = await bundleDigest(d.template);
    return {
      ...functionConfig({ template: d.template, sha256, handler: d.handler, timeoutSeconds: d.timeoutSeconds, memoryMb: d.memoryMb, environment: d.environment, eventSource: null }),
      vpc: d.vpc ? { subnetIds: [...d.vpc.subnetIds].sort(), securityGroupIds: [...d.vpc.securityGroupIds].sort() } : null,
    };
  }

  private async deployment(which: 'maintenance' | 'query') {
    const template = getTemplate(which === 'maintenance' ? MAINTENANCE_TEMPLATE : QUERY_TEMPLATE);
    const handler = template.handler.slice(template.handler.lastIndexOf('.') + 1);
    const environment: Record<string, string> = { ...template.environment };
    if (which === 'maintenance') {
      environment.RETENTION = this.spec.database.retention;
      // Where migrate reads the roles' passwords from (only names: the function reads the values in the VPC).
      const arns = await this.secretArns();
      if (arns.writer) environment.WRITER_SECRET_ARN = arns.writer;
      if (arns.reader) environment.READER_SECRET_ARN = arns.reader;
      if (this.spec.database.rds?.iamAuth) environment.ROLE_LOGIN = 'iam';
    }
    const vpc = this.vpc();
    return {
      name: which === 'maintenance' ? L.maintenanceFunction : L.queryFunction,
      template: template.name,
      handler,
      timeoutSeconds: template.timeoutSeconds ?? 60,
      memoryMb: template.memoryMb ?? 256,
      environment,
      ...(vpc ? { vpc } : {}),
      tags: { [DATABASE_TAG]: which },
    };
  }

  private async deployFunction(which: 'maintenance' | 'query', progress: (step: string) => void): Promise<void> {
    const d = await this.deployment(which);
    await withArtifact(d.template, (artifact) => this.opts.functions.deploy({ ...d, artifact }, (step) => progress(`${d.name}: ${step}`)));
  }

  private async functionVpc(physical: string) {
    const { client, sdk } = await this.aws.get('lambda');
    const c = await client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: physical }), this.aws.sendOptions);
    const v = c.VpcConfig;
    return v?.SubnetIds?.length ? { subnetIds: [...v.SubnetIds].sort(), securityGroupIds: [...(v.SecurityGroupIds ?? [])].sort() } : null;
  }

  // ------------------------------------------------------------ queue

  private async queueUrl(): Promise<string | undefined> {
    const { client, sdk } = await this.aws.get('sqs');
    try {
      return (await client.send(new sdk.GetQueueUrlCommand({ QueueName: this.names.deadLetterQueue }), this.aws.sendOptions)).QueueUrl;
    } catch (error) {
      if (isAwsError(error, 'QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue')) return undefined;
      throw error;
    }
  }

  private async claimQueue(url: string): Promise<void> {
    const { client, sdk } = await this.aws.get('sqs');
    const tags = (await client.send(new sdk.ListQueueTagsCommand({ QueueUrl: url }), this.aws.sendOptions)).Tags ?? {};
    assertClaimable('SQS queue', this.names.deadLetterQueue, tags, this.opts.owner);
  }

  private async ensureQueue(): Promise<void> {
    const { client, sdk } = await this.aws.get('sqs');
    // 14 days: a failed run stays visible in `status` long after the fact.
    await client.send(new sdk.CreateQueueCommand({ QueueName: this.names.deadLetterQueue, tags: ownerTags(this.opts.owner), Attributes: { MessageRetentionPeriod: '1209600' } }), this.aws.sendOptions);
  }

  // ------------------------------------------------------------ schedule and its role

  private async place() {
    const [region, account] = await Promise.all([this.aws.region(), this.aws.accountId()]);
    return { region, account };
  }

  private arns(place: { region: string; account: string }) {
    return {
      fn: arnOf('lambda-function', place, this.names.maintenanceFunction),
      queue: arnOf('sqs-queue', place, this.names.deadLetterQueue),
      role: arnOf('iam-role', place, this.names.scheduleRole, { path: this.names.rolePath }),
    };
  }

  private schedulerPolicy(place: { region: string; account: string }) {
    const a = this.arns(place);
    return {
      Version: '2012-10-17',
      Statement: [
        { Sid: 'InvokeMaintenance', Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: a.fn },
        { Sid: 'DeadLetters', Effect: 'Allow', Action: ['sqs:SendMessage'], Resource: a.queue },
      ],
    };
  }

  private scheduleConfig(place: { region: string; account: string }) {
    const a = this.arns(place);
    return { expression: this.spec.database.retentionSchedule, target: a.fn, role: a.role, input: {}, deadLetterQueue: a.queue, maximumRetryAttempts: 2 };
  }

  /** The role as the plan compares it: its trust and its inline policy (each as wanted when only key order differs). */
  private async readRole(place: { region: string; account: string }): Promise<{ trust: unknown; policy: unknown } | undefined> {
    const { client, sdk } = await this.aws.get('iam');
    const RoleName = this.names.scheduleRole;
    const missing = (error: unknown) => isAwsError(error, 'NoSuchEntity', 'NoSuchEntityException');
    const absent = (error: unknown) => {
      if (missing(error)) return undefined;
      throw error;
    };
    // Tags, trust and policy read at once; the role's claim (its tags) is still checked before anything is compared.
    const [tags, role, inline] = await Promise.allSettled([
      roleTags(this.aws, RoleName),
      client.send(new sdk.GetRoleCommand({ RoleName }), this.aws.sendOptions),
      client.send(new sdk.GetRolePolicyCommand({ RoleName, PolicyName: ROLE_POLICY }), this.aws.sendOptions).catch(absent),
    ]);
    if (tags.status === 'rejected') throw tags.reason;
    if (!tags.value) return undefined;
    assertClaimable('IAM role', RoleName, tags.value, this.opts.owner);
    const as = (have: unknown, want: unknown) => (samePolicy(have, want) ? want : (have ?? null));
    if (role.status === 'rejected') return absent(role.reason);
    if (inline.status === 'rejected') return absent(inline.reason);
    const trust = policyJson(role.value.Role?.AssumeRolePolicyDocument);
    const policy = inline.value ? policyJson(inline.value.PolicyDocument) : undefined;
    return { trust: as(trust, trustPolicy('scheduler', place)), policy: as(policy, this.schedulerPolicy(place)) };
  }

  /**
   * The schedule's role (iam.ts): Scheduler may assume it only for this account's default schedule group
   * (aws:SourceAccount, aws:SourceArn); trust, policy and tags rewritten only where they drifted.
   */
  private async ensureRole(place: { region: string; account: string }): Promise<void> {
    const RoleName = this.names.scheduleRole;
    await this.readRole(place); // refuses anyone else's role of the name
    await ensureServiceRole(this.aws, {
      name: RoleName,
      path: this.names.rolePath,
      description: `EventBridge Scheduler invokes the iotctl maintenance function ${this.names.maintenanceFunction}`,
      trust: trustPolicy('scheduler', place),
      policyName: ROLE_POLICY,
      policy: this.schedulerPolicy(place),
      tags: { ...ownerTags(this.opts.owner), [DATABASE_TAG]: 'schedule' },
    });
  }

  private async readSchedule(): Promise<ReturnType<AwsDatabaseOps['scheduleConfig']> | undefined> {
    const { client, sdk } = await this.aws.get('scheduler');
    let g;
    try {
      g = await client.send(new sdk.GetScheduleCommand({ Name: this.names.schedule }), this.aws.sendOptions);
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
    assertClaimable('EventBridge Scheduler schedule', this.names.schedule, markerTags(g.Description), this.opts.owner);
    return {
      expression: g.ScheduleExpression ?? '',
      target: g.Target?.Arn ?? '',
      role: g.Target?.RoleArn ?? '',
      input: g.Target?.Input ? (JSON.parse(g.Target.Input) as object) : {},
      deadLetterQueue: g.Target?.DeadLetterConfig?.Arn ?? '',
      maximumRetryAttempts: g.Target?.RetryPolicy?.MaximumRetryAttempts ?? 185,
    };
  }

  /** Create or update; Scheduler retries a failed delivery twice, then sends the event to the dead-letter queue. */
  private async ensureSchedule(place: { region: string; account: string }): Promise<void> {
    const { client, sdk } = await this.aws.get('scheduler');
    const c = this.scheduleConfig(place);
    const input = {
      Name: this.names.schedule,
      Description: withMarker(SCHEDULE_DESCRIPTION, this.opts.owner),
      ScheduleExpression: c.expression,
      FlexibleTimeWindow: { Mode: 'OFF' as const },
      State: 'ENABLED' as const,
      Target: { Arn: c.target, RoleArn: c.role, Input: JSON.stringify(c.input), DeadLetterConfig: { Arn: c.deadLetterQueue }, RetryPolicy: { MaximumRetryAttempts: c.maximumRetryAttempts, MaximumEventAgeInSeconds: 3600 } },
    };
    const exists = (await this.readSchedule()) !== undefined;
    // A role just created or changed may not be assumable by Scheduler yet (IAM propagation): retried, bounded, abortable.
    const operation = exists ? 'UpdateSchedule' : 'CreateSchedule';
    await retryWhen(
      () => client.send(exists ? new sdk.UpdateScheduleCommand(input) : new sdk.CreateScheduleCommand(input), this.aws.sendOptions),
      rolePropagating.scheduler,
      { service: 'scheduler', operation, what: `EventBridge Scheduler to be able to assume the role ${c.role}`, signal: this.aws.settings.signal, delayMs: 1_000, maxDelayMs: 5_000 },
    );
  }

  // ------------------------------------------------------------ schema

  /** Directly when the database answers, else through the query function when it exists (as the reader); undefined otherwise. */
  private async schemaVersion(): Promise<number | undefined> {
    const direct = await this.opts.directSchemaVersion?.().catch(() => undefined);
    if (direct !== undefined) return direct;
    if (!(await this.opts.functions.get(L.queryFunction))) return undefined;
    try {
      const out = await this.opts.functions.invoke(L.queryFunction, { query: 'sql', sql: "SELECT COALESCE((SELECT max(version) FROM iotctl_schema_migrations), 0) AS v" });
      const page = functionPayload(out, this.names.queryFunction) as { rows?: Array<{ v: number | string }>; error?: { code: string } };
      if (page.error || !page.rows?.[0]) return 0;
      return Number(page.rows[0].v);
    } catch {
      return undefined;
    }
  }

  // ------------------------------------------------------------ status

  /**
   * The maintenance function's last run (its structured log line), the dead-letter queue's depth and the
   * function's errors over the last 24 h: what `status` shows, so a failing run is visible.
   */
  async maintenanceStatus(now = Date.now()): Promise<MaintenanceStatus> {
    // Three independent reads: at once.
    const lastRun = async () => {
      const { client, sdk } = await this.aws.get('logs');
      let last: MaintenanceStatus['lastRun'] = null;
      try {
        let nextToken: string | undefined;
        do {
          const page = await client.send(
            new sdk.FilterLogEventsCommand({ logGroupName: lambdaLogGroup(this.names.maintenanceFunction), filterPattern: '"iotctl maintenance"', startTime: now - 7 * 86_400_000, nextToken }),
            this.aws.sendOptions,
          );
          for (const e of page.events ?? []) {
            const run = maintenanceRun(e.message ?? '', e.timestamp ?? 0);
            if (run && (!last || run.at >= last.at)) last = run;
          }
          nextToken = page.nextToken;
        } while (nextToken);
      } catch (error) {
        if (!isAwsError(error, 'ResourceNotFoundException')) throw error;
      }
      return last as MaintenanceStatus['lastRun'];
    };
    const undelivered = async () => {
      const url = await this.queueUrl();
      if (!url) return null;
      const sqs = await this.aws.get('sqs');
      const attrs = await sqs.client.send(new sqs.sdk.GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages'] }), this.aws.sendOptions);
      return Number(attrs.Attributes?.ApproximateNumberOfMessages ?? 0);
    };
    const errors = async () => {
      try {
        const cw = await this.aws.get('cloudwatch');
        const out = await cw.client.send(
          new cw.sdk.GetMetricStatisticsCommand({
            Namespace: 'AWS/Lambda',
            MetricName: 'Errors',
            Dimensions: [{ Name: 'FunctionName', Value: this.names.maintenanceFunction }],
            StartTime: new Date(now - 86_400_000),
            EndTime: new Date(now),
            Period: 86_400,
            Statistics: ['Sum'],
          }),
          this.aws.sendOptions,
        );
        return (out.Datapoints ?? []).reduce((s, d) => s + (d.Sum ?? 0), 0);
      } catch (error) {
        if (!isAwsError(error, 'AccessDenied', 'AccessDeniedException')) throw error;
        return null;
      }
    };
    const [last, deadLetters, errors24h] = await Promise.all([lastRun(), undelivered(), errors()]);
    const failing = last?.ok === false || (deadLetters ?? 0) > 0 || (errors24h ?? 0) > 0;
    return { function: this.names.maintenanceFunction, schedule: this.names.schedule, lastRun: last, deadLetters, errors24h, failing };
  }
}

export interface MaintenanceRun {
  at: string;
  ok: boolean;
  action: string;
  dryRun: boolean;
  summary: string;
  error?: string;
}

export interface MaintenanceStatus {
  function: string;
  schedule: string;
  lastRun: MaintenanceRun | null;
  /** Invocations Scheduler could not deliver (null: no queue yet). */
  deadLetters: number | null;
  /** The function's Errors metric over 24 h (null: not readable). */
  errors24h: number | null;
  failing: boolean;
}

/** One structured line of the maintenance function (templates/maintenance-rds), from its log event. */
export function maintenanceRun(raw: string, timestamp: number): MaintenanceRun | undefined {
  const { message } = parseLogLine(raw);
  const start = message.indexOf('{');
  if (start < 0) return undefined;
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(message.slice(start)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (doc.message !== 'iotctl maintenance') return undefined;
  const ok = doc.level !== 'error';
  const dropped = Array.isArray(doc.dropped) ? doc.dropped.length : 0;
  const clustered = Array.isArray(doc.clustered) ? doc.clustered.length : 0;
  const created = Array.isArray(doc.created) ? doc.created.length : 0;
  const summary = !ok
    ? `failed: ${String(doc.error)}`
    : doc.action === 'migrate'
      ? `migrated to version ${String(doc.version)}`
      : `${doc.dryRun ? 'dry run: would drop' : 'dropped'} ${dropped} partition(s), deleted ${Number(doc.rowsDeleted ?? 0)} row(s), clustered ${clustered}, created ${created} partition(s) in ${Number(doc.ms ?? 0)} ms (${Number(doc.dbMs ?? 0)} ms in PostgreSQL)`;
  return { at: new Date(timestamp).toISOString(), ok, action: String(doc.action ?? 'maintenance'), dryRun: doc.dryRun === true, summary, ...(ok ? {} : { error: String(doc.error) }) };
}

/**
 * A synchronous invocation's result: the payload, or a UserError for a function error (Lambda's
 * {errorType, errorMessage}) or a handler's {error: {message, hint, code}}.
 */
export function functionPayload(out: InvokeResult, fn: string): unknown {
  const p = out.payload as { errorMessage?: string; errorType?: string; error?: { message: string; hint?: string; code: string } } | null;
  if (out.functionError) {
    throw new UserError(`Function ${fn} failed: ${p?.errorMessage ?? JSON.stringify(p)}`, `\`iotctl lambda logs ${fn}\` shows its log; fix the cause and retry.`, p?.errorType === 'UserError' ? 'FUNCTION_USER_ERROR' : 'FUNCTION_ERROR');
  }
  if (p && typeof p === 'object' && p.error && typeof p.error === 'object') throw new UserError(p.error.message, p.error.hint, p.error.code);
  return p;
}

