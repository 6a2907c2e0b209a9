import { LAMBDA_RUNTIME } from '../../../services/bundle.js';
import type { Resource } from '../../../iot/plan/index.js';
import type { Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import { arn as awsArn } from '../arn.js';
import { arnOf, datalakeLogical, datalakeNames, datalakeRolePath, firehoseLogGroup, lambdaLogGroup, lifecycleRuleId, qualifiedTable, stageDatalakeNames } from '../naming.js';
import { DEFAULT_STAGE, TAG_PROJECT, TAG_STAGE } from '../ownership.js';
import { datasetWindowProblem, schedulePeriod, windowedDatasetSql } from './dataset-sql.js';

/**
 * The datalake engine's desired AWS resources, pure: from the spec's analytics section (plus the account,
 * the region and the transform bundle's hash) to `Resource`s in a normalised shape that the reader in
 * datalake.ts also produces from what AWS describes, so planResources() can diff them field by field.
 *
 *   bucket      s3://<bucket>: SSE-S3 encrypted, public access blocked (never deleted: it holds the data)
 *   database    the Glue database (spec.athena.database), so `athena run` sees the tables
 *   role        one least-privilege IAM role per delivery stream, per transform function, per schedule
 *   function    the pipeline-transform Lambda of each pipeline (activities in its environment)
 *   table       per datastore: a Glue table over datastore/<name>/ with partition projection on dt
 *   stream      per channel: raw NDJSON to raw/<channel>/dt=YYYY-MM-DD/; per pipeline: transform + Parquet
 *   query       per dataset: an Athena named query
 *   schedule    per scheduled dataset: an EventBridge Scheduler schedule that starts the query
 */

export type DatalakeKind = 'bucket' | 'database' | 'role' | 'function' | 'table' | 'stream' | 'query' | 'schedule';

/** Creation order (dependencies first); deletion runs in reverse. */
export const KIND_ORDER: readonly DatalakeKind[] = ['bucket', 'database', 'role', 'table', 'function', 'stream', 'query', 'schedule'];

export interface DatalakeContext {
  accountId: string;
  region: string;
  /** The stage's bucket: the scoped one, or for the default stage an existing bucket of the names before stages (datalake.ts lakeBucket). */
  bucket?: string;
  /** sha256 (hex) of the bundled pipeline-transform artifact: a new bundle updates the functions. */
  transformSha256: string;
}

export interface BucketConfig {
  encryption: 'AES256';
  blockPublicAccess: true;
  /** iotctl's expiration rules (id `iotctl-...`): retentionDays of channels and datastores, versionsToKeep of scheduled datasets. */
  lifecycle: LifecycleRule[];
}
export interface LifecycleRule {
  id: string;
  prefix: string;
  days: number;
}
export interface RoleConfig {
  /** The service allowed to assume it. */
  service: string;
  policy: PolicyDocument;
}
export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: { Effect: 'Allow'; Action: string[]; Resource: string[] }[];
}
export interface TableConfig {
  location: string;
  format: 'parquet' | 'json';
  /** The columns every row has; columns learnt from data are kept by apply and not compared. */
  columns: { name: string; type: string }[];
  partitionKeys: { name: string; type: string }[];
  parameters: Record<string, string>;
}
export interface FunctionConfig {
  role: string;
  handler: string;
  runtime: string;
  timeout: number;
  memory: number;
  environment: Record<string, string>;
}
export interface StreamConfig {
  role: string;
  bucketArn: string;
  prefix: string;
  errorOutputPrefix: string;
  buffering: { sizeMb: number; intervalSeconds: number };
  compression: 'UNCOMPRESSED' | 'GZIP';
  dynamicPartitioning: boolean;
  /** Processor type -> its parameters (name -> value). */
  processors: Record<string, Record<string, string>>;
  /** Parquet conversion with the datastore's Glue table schema. */
  parquet?: { database: string; table: string; role: string; region: string };
}
export interface QueryConfig {
  database: string;
  workgroup: string;
  sql: string;
}
export interface ScheduleConfig {
  expression: string;
  role: string;
  target: string;
  input: unknown;
}


/** The Glue table parameter that marks iotctl's tables (the database may hold others). */
export const PROJECT_PARAMETER = TAG_PROJECT;
export const STAGE_PARAMETER = TAG_STAGE;

const { channelStream, pipelineStream, transformFunction, streamRole, functionRole, scheduleRole } = datalakeLogical;
export const LAKE = datalakeLogical.lake;

/** The datalake's names in the spec's stage (the default stage when the spec names none). */
export const lakeNames = (spec: Pick<Spec, 'project'> & { stage?: string }, place: Pick<DatalakeContext, 'accountId' | 'region' | 'bucket'>) =>
  stageDatalakeNames({ project: spec.project, stage: spec.stage ?? DEFAULT_STAGE }, place);
export type LakeNames = ReturnType<typeof lakeNames>;

/** The delivery streams a rule's `iotAnalytics {channel}` action feeds on this engine: the raw stream and each pipeline reading it. */
export function channelDeliveryStreams(spec: Pick<Spec, 'project' | 'analytics'> & { stage?: string }, channel: string, ctx: Pick<DatalakeContext, 'accountId' | 'region'>): string[] {
  const n = lakeNames(spec, ctx);
  return [n.channelStream(channel), ...spec.analytics.pipelines.filter((p) => p.channel === channel).map((p) => n.pipelineStream(p.name))];
}

/**
 * A desired resource: `name` logical, `physical` its name in the stage; `legacy` the name a deployment made
 * before stage-scoped names gave it (the default stage reads it back to move it). A table's physical name is
 * `<database>.<table>`: a move changes its database.
 */
export type DesiredResource = Resource & { physical: string; legacy?: string };

/** The columns every datastore row has (the transform adds them; dt is the partition). */
export const BASE_COLUMNS = [
  { name: '__message_id', type: 'string' },
  { name: '__received_at', type: 'timestamp' },
];

const statement = (Action: string[], Resource: string[]) => ({ Effect: 'Allow' as const, Action, Resource });

export function desiredDatalake(spec: Pick<Spec, 'project' | 'analytics' | 'athena'> & { stage?: string }, ctx: DatalakeContext): DesiredResource[] {
  const a = spec.analytics;
  if (!a.channels.length && !a.pipelines.length && !a.datastores.length && !a.datasets.length) return [];
  const stage = spec.stage ?? DEFAULT_STAGE;
  const n = lakeNames(spec, ctx);
  // Only the default stage moves a deployment made before stage-scoped names (it had no stage).
  const old = stage === DEFAULT_STAGE ? datalakeNames(spec.project, ctx) : undefined;
  const place = { region: ctx.region, account: ctx.accountId };
  const bucketArn = arnOf('s3-bucket', place, n.bucket);
  const database = n.database;
  const workgroup = spec.athena.workgroup;
  const arn = (service: string, resource: string) => awsArn(ctx.region, service, ctx.region, ctx.accountId, resource);
  const roleArn = (role: string) => arnOf('iam-role', place, n.role(role), { path: n.rolePath });
  const out: DesiredResource[] = [];
  const add = (kind: DatalakeKind, name: string, physical: string, config: unknown, legacy?: string) => out.push({ kind, name, physical, config, ...(legacy ? { legacy } : {}) });

  add('bucket', LAKE, n.bucket, { encryption: 'AES256', blockPublicAccess: true, lifecycle: lifecycleRules(a) } satisfies BucketConfig);
  add('database', LAKE, database, { description: `iotctl ${spec.project} ${stage} analytics datastores` });

  // CreateLogGroup is authorized on the group's ARN (with or without `:*`): `group:*` alone does not match the former.
  const logs = (group: string) => [
    statement(['logs:CreateLogGroup'], [arn('logs', `log-group:${group}`), arn('logs', `log-group:${group}:*`)]),
    statement(['logs:CreateLogStream', 'logs:PutLogEvents'], [arn('logs', `log-group:${group}:*`)]),
  ];
  // Bucket actions on the bucket, object actions on the prefixes: each action only on ARNs of its resource type.
  const writeBucket = (prefixes: string[]) => [
    statement(['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'], [bucketArn]),
    statement(['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'], prefixes.map((p) => `${bucketArn}/${p}*`)),
  ];

  for (const ds of a.datastores) {
    const table = n.table(ds.name);
    const location = `s3://${n.bucket}/datastore/${ds.name}/`;
    add('table', ds.name, qualifiedTable(database, table), {
      location,
      format: ds.format,
      columns: BASE_COLUMNS,
      partitionKeys: [{ name: 'dt', type: 'string' }],
      // Partition projection: Athena computes the dt partitions, so no crawler and no MSCK REPAIR; `WHERE dt = ...` prunes.
      parameters: {
        EXTERNAL: 'TRUE',
        classification: ds.format,
        [PROJECT_PARAMETER]: spec.project,
        [STAGE_PARAMETER]: stage,
        'projection.enabled': 'true',
        'projection.dt.type': 'date',
        'projection.dt.format': 'yyyy-MM-dd',
        'projection.dt.range': '2020-01-01,NOW',
        'projection.dt.interval': '1',
        'projection.dt.interval.unit': 'DAYS',
        'storage.location.template': `${location}dt=\${dt}/`,
      },
    } satisfies TableConfig, old && qualifiedTable(spec.athena.database, old.table(ds.name)));
  }

  for (const ch of a.channels) {
    const stream = channelStream(ch.name);
    const role = streamRole(stream);
    const physical = n.stream(stream);
    add('role', role, n.role(role), { service: 'firehose.amazonaws.com', policy: { Version: '2012-10-17', Statement: [...writeBucket([`raw/${ch.name}/`, `errors/${ch.name}/`]), ...logs(firehoseLogGroup(physical))] } } satisfies RoleConfig, old?.streamRole(old.channelStream(ch.name)));
    add('stream', stream, physical, {
      role: roleArn(role),
      bucketArn,
      // dt is the UTC day Firehose received the object's oldest record (the documented `timestamp` prefix
      // namespace), so no dynamic partitioning is needed; the rule's firehose action ends each message with "\n".
      prefix: `raw/${ch.name}/dt=!{timestamp:yyyy-MM-dd}/`,
      errorOutputPrefix: `errors/${ch.name}/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/`,
      buffering: { sizeMb: 64, intervalSeconds: 300 },
      compression: 'GZIP',
      dynamicPartitioning: false,
      processors: {},
    } satisfies StreamConfig, old?.channelStream(ch.name));
  }

  for (const p of a.pipelines) {
    const ds = a.datastores.find((d) => d.name === p.datastore);
    const stream = pipelineStream(p.name);
    const streamPhysical = n.stream(stream);
    const fnLogical = transformFunction(p.name);
    const fn = n.function(fnLogical);
    const fnRole = functionRole(fnLogical);
    const sRole = streamRole(stream);
    const table = n.table(p.datastore);
    const lambdaTargets = p.activities.flatMap((act) => ('lambda' in act ? [arn('lambda', `function:${act.lambda.function}`)] : []));
    const enrich = p.activities.some((act) => 'deviceRegistryEnrich' in act);
    add('role', fnRole, n.role(fnRole), {
      service: 'lambda.amazonaws.com',
      policy: {
        Version: '2012-10-17',
        Statement: [
          ...logs(lambdaLogGroup(fn)),
          // The transform widens its datastore's table as new attributes arrive.
          ...(ds?.format !== 'json' ? [statement(['glue:GetTable', 'glue:UpdateTable'], [arn('glue', 'catalog'), arn('glue', `database/${database}`), arn('glue', `table/${database}/${table}`)])] : []),
          ...(enrich ? [statement(['iot:DescribeThing'], [arn('iot', 'thing/*')])] : []),
          ...(lambdaTargets.length ? [statement(['lambda:InvokeFunction'], lambdaTargets)] : []),
        ],
      },
    } satisfies RoleConfig, old?.functionRole(old.transformFunction(p.name)));
    add('function', fnLogical, fn, {
      role: roleArn(fnRole),
      handler: 'index.handler',
      runtime: LAMBDA_RUNTIME,
      timeout: 60,
      memory: 512,
      environment: {
        PIPELINE_NAME: p.name,
        // The transform's CloudWatch metrics carry the project, so two projects' pipelines of one name stay apart.
        IOTCTL_PROJECT: spec.project,
        IOTCTL_STAGE: stage,
        PIPELINE_ACTIVITIES: JSON.stringify(p.activities),
        ...(ds?.format !== 'json' ? { GLUE_DATABASE: database, GLUE_TABLE: table } : {}),
        IOTCTL_BUNDLE_SHA256: ctx.transformSha256,
      },
    } satisfies FunctionConfig, old?.transformFunction(p.name));
    const parquet = (ds?.format ?? 'parquet') === 'parquet';
    add('role', sRole, n.role(sRole), {
      service: 'firehose.amazonaws.com',
      policy: {
        Version: '2012-10-17',
        Statement: [
          ...writeBucket([`datastore/${p.datastore}/`, `errors/${p.name}/`]),
          statement(['lambda:InvokeFunction', 'lambda:GetFunctionConfiguration'], [arn('lambda', `function:${fn}`), arn('lambda', `function:${fn}:*`)]),
          ...(parquet
            ? [statement(['glue:GetTable', 'glue:GetTableVersion', 'glue:GetTableVersions'], [arn('glue', 'catalog'), arn('glue', `database/${database}`), arn('glue', `table/${database}/${table}`)])]
            : []),
          ...logs(firehoseLogGroup(streamPhysical)),
        ],
      },
    } satisfies RoleConfig, old?.streamRole(old.pipelineStream(p.name)));
    add('stream', stream, streamPhysical, {
      role: roleArn(sRole),
      bucketArn,
      prefix: `datastore/${p.datastore}/dt=!{partitionKeyFromLambda:dt}/`,
      errorOutputPrefix: `errors/${p.name}/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/`,
      // Format conversion needs a buffer of at least 64 MB.
      buffering: { sizeMb: 128, intervalSeconds: 300 },
      // Parquet is compressed inside (Snappy); the JSON datastore is gzipped NDJSON.
      compression: parquet ? 'UNCOMPRESSED' : 'GZIP',
      dynamicPartitioning: true,
      processors: { Lambda: { LambdaArn: arn('lambda', `function:${fn}`), NumberOfRetries: '3', BufferSizeInMBs: '1', BufferIntervalInSeconds: '60' } },
      ...(parquet ? { parquet: { database, table, role: roleArn(sRole), region: ctx.region } } : {}),
    } satisfies StreamConfig, old?.pipelineStream(p.name));
  }

  const tables = a.datastores.map((ds) => n.table(ds.name));
  for (const d of a.datasets) {
    const sql = windowedDatasetSql(d.sql, { database, tables, deltaTime: d.deltaTime, periodSeconds: deltaPeriod(d) });
    add('query', d.name, n.query(d.name), { database, workgroup, sql } satisfies QueryConfig, old?.query(d.name));
    if (!d.schedule) continue;
    const role = scheduleRole(d.name);
    add('role', role, n.role(role), {
      service: 'scheduler.amazonaws.com',
      policy: {
        Version: '2012-10-17',
        Statement: [
          statement(['athena:StartQueryExecution', 'athena:GetQueryExecution'], [arn('athena', `workgroup/${workgroup}`)]),
          statement(['glue:GetDatabase'], [arn('glue', 'catalog'), arn('glue', `database/${database}`)]),
          statement(['glue:GetTable', 'glue:GetTables', 'glue:GetPartitions'], [arn('glue', 'catalog'), arn('glue', `database/${database}`), arn('glue', `table/${database}/*`)]),
          statement(['s3:ListBucket', 's3:GetBucketLocation'], [bucketArn]),
          statement(['s3:GetObject'], [`${bucketArn}/datastore/*`]),
          statement(['s3:PutObject', 's3:GetObject', 's3:AbortMultipartUpload'], [`${bucketArn}/datasets/${d.name}/*`]),
        ],
      },
    } satisfies RoleConfig, old?.scheduleRole(d.name));
    add('schedule', d.name, n.schedule(d.name), {
      expression: d.schedule,
      role: roleArn(role),
      // Scheduler's universal target calls Athena directly; the result CSV lands under datasets/<name>/scheduled/.
      target: awsArn(ctx.region, 'scheduler', '', '', 'aws-sdk:athena:startQueryExecution'),
      input: { QueryString: sql, QueryExecutionContext: { Database: database }, WorkGroup: workgroup, ResultConfiguration: { OutputLocation: datasetOutput(n.bucket, d.name, 'schedule') } },
    } satisfies ScheduleConfig, old?.schedule(d.name));
  }
  return out;
}

/** The roles of a deployment before stage-scoped names lived under the project's path alone. */
export const legacyRolePath = datalakeRolePath;

/** Where a dataset's runs write their content: `<OutputLocation><query execution id>.csv`. */
export const datasetPrefix = (dataset: string, trigger: 'manual' | 'schedule') => `datasets/${dataset}/${trigger === 'schedule' ? 'scheduled' : 'manual'}/`;
export const datasetOutput = (bucket: string, dataset: string, trigger: 'manual' | 'schedule') => `s3://${bucket}/${datasetPrefix(dataset, trigger)}`;

/** The delta window of a dataset: its schedule's period. A deltaTime dataset needs a schedule with one fixed period. */
export function deltaPeriod(d: Spec['analytics']['datasets'][number]): number | undefined {
  if (!d.deltaTime) return undefined;
  const problem = datasetWindowProblem(d);
  if (problem) throw new UserError(`Dataset ${d.name}: ${problem}.`, 'On AWS a deltaTime window is the schedule\'s period: use rate(...) or a cron that fires at even intervals, e.g. cron(0 2 * * ? *).', 'SPEC_INVALID');
  return schedulePeriod(d.schedule!).seconds;
}

/** S3 expiration rules: IoT Analytics' retention periods and, for scheduled content, about versionsToKeep runs' worth of days. */
export function lifecycleRules(a: Spec['analytics']): LifecycleRule[] {
  const rules: LifecycleRule[] = [];
  for (const c of a.channels) if (c.retentionDays) rules.push({ id: lifecycleRuleId('channel', c.name), prefix: `raw/${c.name}/`, days: c.retentionDays });
  for (const d of a.datastores) if (d.retentionDays) rules.push({ id: lifecycleRuleId('datastore', d.name), prefix: `datastore/${d.name}/`, days: d.retentionDays });
  // S3 expires by age in whole days, not by count: keep versionsToKeep periods, rounded up (iotctl prunes by count when it runs a dataset).
  for (const d of a.datasets)
    if (d.schedule) rules.push({ id: lifecycleRuleId('dataset', d.name), prefix: datasetPrefix(d.name, 'schedule'), days: Math.max(1, Math.ceil((d.versionsToKeep * schedulePeriod(d.schedule).seconds) / 86_400)) });
  return rules.sort((x, y) => x.id.localeCompare(y.id));
}

/** Resources apply never deletes, even with --prune: the bucket holds the data, the database may hold other tables. */
export const NEVER_PRUNED: ReadonlySet<string> = new Set<DatalakeKind>(['bucket', 'database']);
