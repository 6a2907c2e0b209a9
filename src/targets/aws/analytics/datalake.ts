import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planResources, type PlanItem, type Resource } from '../../../iot/plan/index.js';
import type { Spec } from '../../../spec/schema.js';
import { claimOf, markerTags, notOurs, ownerOf, ownerTagList, ownerTags, TAG_PROJECT, tagMap, withMarker, type Owner } from '../ownership.js';
import { ANALYTICS_TAG } from '../ownership.js';
import { datalakeNames, datalakeRolePath, LIFECYCLE_RULE_PREFIX } from '../naming.js';
import { isAwsError, type AwsClients } from '../sdk.js';
import {
  BASE_COLUMNS,
  desiredDatalake,
  KIND_ORDER,
  NEVER_PRUNED,
  PROJECT_PARAMETER,
  STAGE_PARAMETER,
  type BucketConfig,
  type DatalakeContext,
  type DatalakeKind,
  type FunctionConfig,
  type QueryConfig,
  type RoleConfig,
  type ScheduleConfig,
  type StreamConfig,
  type TableConfig,
} from './model.js';

/**
 * The datalake analytics engine on AWS: reads what exists, plans with the shared diff (planResources), and
 * converges. Every reader returns the same normalised shape as model.ts, so an unchanged spec plans no-ops.
 *
 *   const plan = await planDatalake(aws, spec, { prune });   // PlanItem[] (render with formatPlan)
 *   await applyDatalake(aws, spec, plan);
 */

export type DatalakeSpec = Pick<Spec, 'project' | 'stage' | 'analytics' | 'athena'>;

export interface TransformArtifact {
  sha256: string;
  /** The Lambda deployment package (a zip holding index.js). */
  zip: Uint8Array;
}

let artifactCache: Promise<TransformArtifact> | undefined;

/** Bundles templates/pipeline-transform once per process (esbuild, deterministic) and zips it. */
export function transformArtifact(): Promise<TransformArtifact> {
  return (artifactCache ??= (async () => {
    const [{ bundleTemplate }, { zipSync }] = await Promise.all([import('../../../services/bundle.js'), import('fflate')]);
    const dir = mkdtempSync(join(tmpdir(), 'iotctl-transform-'));
    try {
      const { artifactPath, sha256 } = await bundleTemplate('pipeline-transform', dir);
      // A fixed mtime keeps the zip's bytes a function of the code alone.
      const zip = zipSync({ 'index.js': [readFileSync(artifactPath), { mtime: new Date('2020-01-01T00:00:00Z') }] });
      return { sha256, zip };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })());
}

export async function datalakeContext(aws: AwsClients): Promise<DatalakeContext> {
  const [accountId, region, artifact] = await Promise.all([aws.accountId(), aws.region(), transformArtifact()]);
  return { accountId, region, transformSha256: artifact.sha256 };
}

/** The plan: desired vs actual. `prune` adds deletes for what the spec dropped, never for the bucket or the database. */
export async function planDatalake(aws: AwsClients, spec: DatalakeSpec, opts: { prune?: boolean; context?: DatalakeContext } = {}): Promise<PlanItem[]> {
  const ctx = opts.context ?? (await datalakeContext(aws));
  const desired = desiredDatalake(spec, ctx);
  const actual = ours(await readClaims(aws, spec, ctx), ownerOf(spec.project, spec.stage), desired);
  const items = planResources(desired, actual, { prune: opts.prune }).filter((i) => !(i.action === 'delete' && NEVER_PRUNED.has(i.kind)));
  return sortItems(items);
}

function sortItems(items: PlanItem[]): PlanItem[] {
  const rank = (i: PlanItem) => KIND_ORDER.indexOf(i.kind as DatalakeKind) * (i.action === 'delete' ? -1 : 1) + (i.action === 'delete' ? 100 : 0);
  return [...items].sort((a, b) => rank(a) - rank(b));
}

// ---------------------------------------------------------------------------------------------- reading

/** Everything of this project's datalake that exists, normalised like model.ts. */
export async function readDatalake(aws: AwsClients, spec: DatalakeSpec, ctx: DatalakeContext): Promise<Resource[]> {
  return ours(await readClaims(aws, spec, ctx), ownerOf(spec.project, spec.stage));
}

/**
 * A resource as read, with who owns it: its tags (or the marker in its description, where the service has
 * no tags), and whether it carries what an older iotctl left on it (`legacy`: the name's project prefix or
 * role path, and no project tag).
 */
type Claimed = Resource & { tags: Record<string, string>; legacy: boolean };

const LABEL: Record<DatalakeKind, string> = {
  bucket: 'S3 bucket',
  database: 'Glue database',
  role: 'IAM role',
  table: 'Glue table',
  function: 'Lambda function',
  stream: 'Firehose delivery stream',
  query: 'Athena named query',
  schedule: 'EventBridge Scheduler schedule',
};

/**
 * What this project and stage own, plus what an older iotctl made that the spec still declares (with
 * `adopt`: the plan tags it). Anyone else's resource is dropped, and refused when the spec declares its name.
 */
function ours(found: Claimed[], owner: Owner, desired?: Resource[]): Resource[] {
  const declared = new Set((desired ?? []).map((r) => `${r.kind}\u0000${r.name}`));
  const out: Resource[] = [];
  for (const { tags, legacy, ...r } of found) {
    const claim = claimOf(tags, owner, legacy);
    const wanted = declared.has(`${r.kind}\u0000${r.name}`);
    if (claim === 'foreign') {
      if (wanted) throw notOurs(LABEL[r.kind as DatalakeKind], r.name, tags, owner);
      continue;
    }
    // The Glue database is shared by design (athena.database): every project's tables live in it.
    if (claim === 'legacy' && r.kind !== 'table' && r.kind !== 'database') {
      if (desired && !wanted) continue;
      out.push({ ...r, adopt: ownerTags(owner) });
    } else out.push(r);
  }
  return out;
}

async function readClaims(aws: AwsClients, spec: DatalakeSpec, ctx: DatalakeContext): Promise<Claimed[]> {
  const n = datalakeNames(spec.project, ctx);
  const groups = await Promise.all([
    readBucket(aws, n.bucket),
    readDatabase(aws, spec.athena.database),
    readRoles(aws, spec),
    readTables(aws, spec.athena.database),
    readFunctions(aws, n.transformPrefix),
    readStreams(aws, n.prefix),
    readQueries(aws, spec.athena.workgroup, n.prefix, QUERY_DESCRIPTION),
    readSchedules(aws, n.prefix, SCHEDULE_DESCRIPTION),
  ]);
  return groups.flat();
}

async function readBucket(aws: AwsClients, bucket: string): Promise<Claimed[]> {
  const { client, sdk } = await aws.get('s3');
  try {
    await client.send(new sdk.HeadBucketCommand({ Bucket: bucket }), aws.sendOptions);
  } catch (e) {
    if (isAwsError(e, 'NotFound', 'NoSuchBucket', '404')) return [];
    throw e;
  }
  const enc = await client.send(new sdk.GetBucketEncryptionCommand({ Bucket: bucket }), aws.sendOptions).catch((e) => {
    if (isAwsError(e, 'ServerSideEncryptionConfigurationNotFoundError')) return undefined;
    throw e;
  });
  const pab = await client.send(new sdk.GetPublicAccessBlockCommand({ Bucket: bucket }), aws.sendOptions).catch((e) => {
    if (isAwsError(e, 'NoSuchPublicAccessBlockConfiguration')) return undefined;
    throw e;
  });
  const algo = enc?.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm;
  const b = pab?.PublicAccessBlockConfiguration;
  const blocked = !!(b?.BlockPublicAcls && b.BlockPublicPolicy && b.IgnorePublicAcls && b.RestrictPublicBuckets);
  const lifecycle = (await bucketLifecycle(aws, bucket))
    .filter((r) => r.ID?.startsWith(LIFECYCLE_RULE_PREFIX))
    .map((r) => ({ id: r.ID!, prefix: r.Filter?.Prefix ?? r.Prefix ?? '', days: r.Expiration?.Days ?? 0 }))
    .sort((x, y) => x.id.localeCompare(y.id));
  // The name holds the project, the account and the region: one without iotctl's tags is an older iotctl's.
  const tags = await bucketTags(aws, bucket);
  return [{ kind: 'bucket', name: bucket, config: { encryption: algo, blockPublicAccess: blocked, lifecycle }, tags, legacy: true }];
}

async function bucketTags(aws: AwsClients, bucket: string): Promise<Record<string, string>> {
  const { client, sdk } = await aws.get('s3');
  try {
    return tagMap((await client.send(new sdk.GetBucketTaggingCommand({ Bucket: bucket }), aws.sendOptions)).TagSet);
  } catch (e) {
    if (isAwsError(e, 'NoSuchTagSet', 'NoSuchTagSetError')) return {};
    throw e;
  }
}

async function bucketLifecycle(aws: AwsClients, bucket: string) {
  const { client, sdk } = await aws.get('s3');
  try {
    return (await client.send(new sdk.GetBucketLifecycleConfigurationCommand({ Bucket: bucket }), aws.sendOptions)).Rules ?? [];
  } catch (e) {
    if (isAwsError(e, 'NoSuchLifecycleConfiguration')) return [];
    throw e;
  }
}

async function readDatabase(aws: AwsClients, database: string): Promise<Claimed[]> {
  const { client, sdk } = await aws.get('glue');
  try {
    const out = await client.send(new sdk.GetDatabaseCommand({ Name: database }), aws.sendOptions);
    // Shared by the projects whose athena.database names it (their tables say whose they are): never refused.
    return [{ kind: 'database', name: database, config: { description: out.Database?.Description }, tags: {}, legacy: true }];
  } catch (e) {
    if (isAwsError(e, 'EntityNotFoundException')) return [];
    throw e;
  }
}

/** IAM returns policy documents URL-encoded. */
const policyJson = (doc: string | undefined) => (doc ? JSON.parse(doc.startsWith('%') ? decodeURIComponent(doc) : doc) : undefined);

async function readRoles(aws: AwsClients, spec: DatalakeSpec): Promise<Claimed[]> {
  const { client, sdk } = await aws.get('iam');
  const out: Claimed[] = [];
  let Marker: string | undefined;
  do {
    const page = await client.send(new sdk.ListRolesCommand({ PathPrefix: datalakeRolePath(spec.project), Marker }), aws.sendOptions);
    for (const role of page.Roles ?? []) {
      const trust = policyJson(role.AssumeRolePolicyDocument) as { Statement?: { Principal?: { Service?: string } }[] } | undefined;
      const policy = await client.send(new sdk.GetRolePolicyCommand({ RoleName: role.RoleName!, PolicyName: 'iotctl' }), aws.sendOptions).catch((e) => {
        if (isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException')) return undefined;
        throw e;
      });
      const tags = tagMap((await client.send(new sdk.ListRoleTagsCommand({ RoleName: role.RoleName! }), aws.sendOptions)).Tags);
      // A function's execution role lives under the stage's path inside the project's (naming.ts iamPath): the functions section's.
      if (tags['iotctl:function']) continue;
      // Under the project's role path, a role without iotctl's tags is an older iotctl's.
      out.push({ kind: 'role', name: role.RoleName!, config: { service: trust?.Statement?.[0]?.Principal?.Service, policy: policyJson(policy?.PolicyDocument) }, tags, legacy: true });
    }
    Marker = page.IsTruncated ? page.Marker : undefined;
  } while (Marker);
  return out;
}

async function readTables(aws: AwsClients, database: string): Promise<Claimed[]> {
  const { client, sdk } = await aws.get('glue');
  const out: Claimed[] = [];
  let NextToken: string | undefined;
  do {
    let page;
    try {
      page = await client.send(new sdk.GetTablesCommand({ DatabaseName: database, NextToken }), aws.sendOptions);
    } catch (e) {
      if (isAwsError(e, 'EntityNotFoundException')) return [];
      throw e;
    }
    for (const t of page.TableList ?? []) {
      // The table's parameters say whose it is; a stage-less one is an older iotctl's (its plan adds the stage).
      const tags = { ...(t.Parameters?.[PROJECT_PARAMETER] ? { [TAG_PROJECT]: t.Parameters[PROJECT_PARAMETER] } : {}), ...(t.Parameters?.[STAGE_PARAMETER] ? { [STAGE_PARAMETER]: t.Parameters[STAGE_PARAMETER] } : {}) };
      const sd = t.StorageDescriptor;
      const base = new Set(BASE_COLUMNS.map((c) => c.name));
      out.push({
        kind: 'table',
        name: t.Name!,
        config: {
          location: sd?.Location ?? '',
          format: /parquet/i.test(sd?.SerdeInfo?.SerializationLibrary ?? '') ? 'parquet' : 'json',
          // Columns learnt from data are not the spec's business: compare the base columns only.
          columns: (sd?.Columns ?? []).filter((c) => base.has(c.Name!)).map((c) => ({ name: c.Name!, type: c.Type! })),
          partitionKeys: (t.PartitionKeys ?? []).map((c) => ({ name: c.Name!, type: c.Type! })),
          parameters: t.Parameters ?? {},
        } satisfies TableConfig,
        tags,
        legacy: false,
      });
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}

async function readFunctions(aws: AwsClients, prefix: string): Promise<Claimed[]> {
  const { client, sdk } = await aws.get('lambda');
  const out: Claimed[] = [];
  let Marker: string | undefined;
  do {
    const page = await client.send(new sdk.ListFunctionsCommand({ Marker }), aws.sendOptions);
    for (const f of page.Functions ?? [])
      if (f.FunctionName?.startsWith(prefix))
        out.push({
          tags: (await client.send(new sdk.ListTagsCommand({ Resource: f.FunctionArn! }), aws.sendOptions)).Tags ?? {},
          legacy: true,
          kind: 'function',
          name: f.FunctionName,
          config: { role: f.Role, handler: f.Handler, runtime: f.Runtime, timeout: f.Timeout, memory: f.MemorySize, environment: f.Environment?.Variables ?? {} } satisfies Partial<FunctionConfig>,
        });
    Marker = page.NextMarker;
  } while (Marker);
  return out;
}

async function readStreams(aws: AwsClients, prefix: string): Promise<Claimed[]> {
  const { client, sdk } = await aws.get('firehose');
  const streamNames: string[] = [];
  let ExclusiveStartDeliveryStreamName: string | undefined;
  for (;;) {
    const page = await client.send(new sdk.ListDeliveryStreamsCommand({ ExclusiveStartDeliveryStreamName, Limit: 100 }), aws.sendOptions);
    const got = page.DeliveryStreamNames ?? [];
    streamNames.push(...got.filter((s) => s.startsWith(`${prefix}ch-`) || s.startsWith(`${prefix}pl-`)));
    if (!page.HasMoreDeliveryStreams || !got.length) break;
    ExclusiveStartDeliveryStreamName = got[got.length - 1];
  }
  return Promise.all(
    streamNames.map(async (name) => {
      const out = await client.send(new sdk.DescribeDeliveryStreamCommand({ DeliveryStreamName: name }), aws.sendOptions);
      const d = out.DeliveryStreamDescription?.Destinations?.[0]?.ExtendedS3DestinationDescription;
      const processors: Record<string, Record<string, string>> = {};
      for (const p of d?.ProcessingConfiguration?.Processors ?? []) processors[p.Type!] = Object.fromEntries((p.Parameters ?? []).map((x) => [x.ParameterName!, x.ParameterValue!]));
      const schema = d?.DataFormatConversionConfiguration?.Enabled ? d.DataFormatConversionConfiguration.SchemaConfiguration : undefined;
      const tags = await deliveryStreamTags(aws, name);
      return {
        kind: 'stream',
        name,
        tags,
        legacy: true,
        config: {
          role: d?.RoleARN,
          bucketArn: d?.BucketARN,
          prefix: d?.Prefix,
          errorOutputPrefix: d?.ErrorOutputPrefix,
          buffering: { sizeMb: d?.BufferingHints?.SizeInMBs, intervalSeconds: d?.BufferingHints?.IntervalInSeconds },
          compression: d?.CompressionFormat,
          dynamicPartitioning: !!d?.DynamicPartitioningConfiguration?.Enabled,
          processors,
          ...(schema ? { parquet: { database: schema.DatabaseName, table: schema.TableName, role: schema.RoleARN, region: schema.Region } } : {}),
        },
      } as Claimed;
    }),
  );
}

/** Athena named queries have no tags: the owner is a marker at the end of the description (ownerMarker). */
const QUERY_DESCRIPTION = 'iotctl analytics dataset';
/** CreateSchedule takes no tags (only schedule groups have them): the same marker in the description. */
const SCHEDULE_DESCRIPTION = 'iotctl analytics dataset schedule';

async function deliveryStreamTags(aws: AwsClients, name: string): Promise<Record<string, string>> {
  const { client, sdk } = await aws.get('firehose');
  const tags: Record<string, string> = {};
  let ExclusiveStartTagKey: string | undefined;
  for (;;) {
    const page = await client.send(new sdk.ListTagsForDeliveryStreamCommand({ DeliveryStreamName: name, ExclusiveStartTagKey, Limit: 50 }), aws.sendOptions);
    Object.assign(tags, tagMap(page.Tags));
    if (!page.HasMoreTags || !page.Tags?.length) return tags;
    ExclusiveStartTagKey = page.Tags[page.Tags.length - 1]!.Key;
  }
}

async function readQueries(aws: AwsClients, workgroup: string, prefix: string, legacyDescription?: string): Promise<(Claimed & { id: string })[]> {
  const { client, sdk } = await aws.get('athena');
  const out: (Claimed & { id: string })[] = [];
  let NextToken: string | undefined;
  do {
    const page = await client.send(new sdk.ListNamedQueriesCommand({ WorkGroup: workgroup, NextToken }), aws.sendOptions);
    for (const id of page.NamedQueryIds ?? []) {
      const q = (await client.send(new sdk.GetNamedQueryCommand({ NamedQueryId: id }), aws.sendOptions)).NamedQuery;
      if (q?.Name?.startsWith(prefix))
        out.push({
          kind: 'query',
          name: q.Name,
          config: { database: q.Database, workgroup: q.WorkGroup ?? workgroup, sql: q.QueryString },
          id,
          tags: markerTags(q.Description),
          // Older versions wrote this exact description, without a marker.
          legacy: legacyDescription !== undefined && q.Description === legacyDescription,
        });
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}

async function readSchedules(aws: AwsClients, prefix: string, legacyDescription: string): Promise<Claimed[]> {
  const { client, sdk } = await aws.get('scheduler');
  const out: Claimed[] = [];
  let NextToken: string | undefined;
  do {
    const page = await client.send(new sdk.ListSchedulesCommand({ NamePrefix: prefix, NextToken }), aws.sendOptions);
    for (const s of page.Schedules ?? []) {
      const g = await client.send(new sdk.GetScheduleCommand({ Name: s.Name!, GroupName: s.GroupName }), aws.sendOptions);
      out.push({
        kind: 'schedule',
        name: s.Name!,
        config: { expression: g.ScheduleExpression, role: g.Target?.RoleArn, target: g.Target?.Arn, input: g.Target?.Input ? JSON.parse(g.Target.Input) : undefined } satisfies Partial<ScheduleConfig>,
        tags: markerTags(g.Description),
        // Older versions wrote no description.
        legacy: !g.Description || g.Description === legacyDescription,
      });
    }
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}

// --------------------------------------------------------------------------------------------- applying

/**
 * Converges: creates, updates (in place where AWS allows) and deletes, in dependency order. Noops are skipped,
 * so applying a plan of an unchanged spec makes no call at all.
 */
export async function applyDatalake(aws: AwsClients, spec: DatalakeSpec, items: PlanItem[], opts: { context?: DatalakeContext; onItem?: (item: PlanItem) => void } = {}): Promise<void> {
  const ctx = opts.context ?? (await datalakeContext(aws));
  for (const item of sortItems(items)) {
    if (item.action === 'noop') continue;
    opts.onItem?.(item);
    const kind = item.kind as DatalakeKind;
    if (item.action === 'delete') await DELETE[kind](aws, item.name, spec);
    else await UPSERT[kind](aws, item.name, item.desired as never, item.action === 'create', spec, ctx);
  }
}

type Upsert<C> = (aws: AwsClients, name: string, config: C, create: boolean, spec: DatalakeSpec, ctx: DatalakeContext) => Promise<void>;

const UPSERT: { [K in DatalakeKind]: Upsert<never> } = {
  bucket: (async (aws, name, config: BucketConfig, create, spec) => {
    const { client, sdk } = await aws.get('s3');
    if (create) await client.send(new sdk.CreateBucketCommand({ Bucket: name, ...((await aws.region()) !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: (await aws.region()) as never } } : {}) }), aws.sendOptions);
    // PutBucketTagging replaces the whole set: the bucket's other tags are kept.
    const tags = { ...(create ? {} : await bucketTags(aws, name)), ...ownerTags(ownerOf(spec.project, spec.stage)) };
    await client.send(new sdk.PutBucketTaggingCommand({ Bucket: name, Tagging: { TagSet: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) } }), aws.sendOptions);
    await client.send(
      new sdk.PutBucketEncryptionCommand({ Bucket: name, ServerSideEncryptionConfiguration: { Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] } }),
      aws.sendOptions,
    );
    await client.send(
      new sdk.PutPublicAccessBlockCommand({ Bucket: name, PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true } }),
      aws.sendOptions,
    );
    // The configuration is one document: rules iotctl did not write are kept as they are.
    const others = create ? [] : (await bucketLifecycle(aws, name)).filter((r) => !r.ID?.startsWith(LIFECYCLE_RULE_PREFIX));
    const Rules = [...others, ...config.lifecycle.map((r) => ({ ID: r.id, Status: 'Enabled' as const, Filter: { Prefix: r.prefix }, Expiration: { Days: r.days } }))];
    if (Rules.length) await client.send(new sdk.PutBucketLifecycleConfigurationCommand({ Bucket: name, LifecycleConfiguration: { Rules } }), aws.sendOptions);
    else if (!create) await client.send(new sdk.DeleteBucketLifecycleCommand({ Bucket: name }), aws.sendOptions);
  }) as Upsert<BucketConfig>,

  database: (async (aws, name, config: { description: string }, create) => {
    const { client, sdk } = await aws.get('glue');
    const input = { Name: name, Description: config.description };
    if (create) await client.send(new sdk.CreateDatabaseCommand({ DatabaseInput: input }), aws.sendOptions);
    else await client.send(new sdk.UpdateDatabaseCommand({ Name: name, DatabaseInput: input }), aws.sendOptions);
  }) as Upsert<{ description: string }>,

  role: (async (aws, name, config: RoleConfig, create, spec) => {
    const { client, sdk } = await aws.get('iam');
    const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: config.service }, Action: 'sts:AssumeRole' }] });
    const Tags = ownerTagList(ownerOf(spec.project, spec.stage));
    if (create) await client.send(new sdk.CreateRoleCommand({ RoleName: name, Path: datalakeRolePath(spec.project), AssumeRolePolicyDocument: trust, Description: `iotctl ${spec.project} analytics`, Tags }), aws.sendOptions);
    else {
      await client.send(new sdk.TagRoleCommand({ RoleName: name, Tags }), aws.sendOptions);
      await client.send(new sdk.UpdateAssumeRolePolicyCommand({ RoleName: name, PolicyDocument: trust }), aws.sendOptions);
    }
    await client.send(new sdk.PutRolePolicyCommand({ RoleName: name, PolicyName: 'iotctl', PolicyDocument: JSON.stringify(config.policy) }), aws.sendOptions);
  }) as Upsert<RoleConfig>,

  table: (async (aws, name, config: TableConfig, create, spec) => {
    const { client, sdk } = await aws.get('glue');
    const database = spec.athena.database;
    // Columns the data added since (schema widening) stay; the base columns are (re)put in front.
    let learnt: { Name?: string; Type?: string }[] = [];
    if (!create) {
      const existing = await client.send(new sdk.GetTableCommand({ DatabaseName: database, Name: name }), aws.sendOptions);
      learnt = (existing.Table?.StorageDescriptor?.Columns ?? []).filter((c) => !config.columns.some((b) => b.name === c.Name));
    }
    const parquet = config.format === 'parquet';
    const TableInput = {
      Name: name,
      TableType: 'EXTERNAL_TABLE',
      Parameters: config.parameters,
      PartitionKeys: config.partitionKeys.map((c) => ({ Name: c.name, Type: c.type })),
      StorageDescriptor: {
        Location: config.location,
        Columns: [...config.columns.map((c) => ({ Name: c.name, Type: c.type })), ...learnt.map((c) => ({ Name: c.Name, Type: c.Type }))],
        InputFormat: parquet ? 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat' : 'org.apache.hadoop.mapred.TextInputFormat',
        OutputFormat: parquet ? 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat' : 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
        SerdeInfo: { SerializationLibrary: parquet ? 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' : 'org.openx.data.jsonserde.JsonSerDe' },
      },
    };
    if (create) await client.send(new sdk.CreateTableCommand({ DatabaseName: database, TableInput }), aws.sendOptions);
    else await client.send(new sdk.UpdateTableCommand({ DatabaseName: database, TableInput }), aws.sendOptions);
  }) as Upsert<TableConfig>,

  function: (async (aws, name, config: FunctionConfig, create, spec) => {
    const { client, sdk } = await aws.get('lambda');
    const { zip } = await transformArtifact();
    const settings = { Role: config.role, Handler: config.handler, Runtime: config.runtime as never, Timeout: config.timeout, MemorySize: config.memory, Environment: { Variables: config.environment } };
    // Marked as analytics' own, so the functions section (AwsFunctions) leaves it to this engine.
    const Tags = { ...ownerTags(ownerOf(spec.project, spec.stage)), [ANALYTICS_TAG]: 'pipeline-transform' };
    if (create) {
      await client.send(new sdk.CreateFunctionCommand({ FunctionName: name, Code: { ZipFile: zip }, Description: 'iotctl analytics pipeline transform (Firehose)', Tags, ...settings }), aws.sendOptions);
      return;
    }
    const { FunctionArn } = await client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: name }), aws.sendOptions);
    await client.send(new sdk.TagResourceCommand({ Resource: FunctionArn!, Tags }), aws.sendOptions);
    // Code first, then configuration: Lambda refuses a second update while the first is in progress.
    await client.send(new sdk.UpdateFunctionCodeCommand({ FunctionName: name, ZipFile: zip }), aws.sendOptions);
    await waitForUpdate(aws, name);
    await client.send(new sdk.UpdateFunctionConfigurationCommand({ FunctionName: name, ...settings }), aws.sendOptions);
    await waitForUpdate(aws, name);
  }) as Upsert<FunctionConfig>,

  stream: (async (aws, name, config: StreamConfig, create, spec) => {
    const { client, sdk } = await aws.get('firehose');
    const destination = {
      RoleARN: config.role,
      BucketARN: config.bucketArn,
      Prefix: config.prefix,
      ErrorOutputPrefix: config.errorOutputPrefix,
      BufferingHints: { SizeInMBs: config.buffering.sizeMb, IntervalInSeconds: config.buffering.intervalSeconds },
      CompressionFormat: config.compression,
      DynamicPartitioningConfiguration: { Enabled: config.dynamicPartitioning },
      ProcessingConfiguration: {
        Enabled: Object.keys(config.processors).length > 0,
        Processors: Object.entries(config.processors).map(([Type, params]) => ({
          Type: Type as never,
          Parameters: Object.entries(params).map(([ParameterName, ParameterValue]) => ({ ParameterName: ParameterName as never, ParameterValue })),
        })),
      },
      DataFormatConversionConfiguration: config.parquet
        ? {
            Enabled: true,
            // Rows carry __received_at as epoch milliseconds.
            InputFormatConfiguration: { Deserializer: { HiveJsonSerDe: { TimestampFormats: ['millis'] } } },
            OutputFormatConfiguration: { Serializer: { ParquetSerDe: { Compression: 'SNAPPY' as const } } },
            SchemaConfiguration: { DatabaseName: config.parquet.database, TableName: config.parquet.table, RoleARN: config.parquet.role, Region: config.parquet.region, VersionId: 'LATEST' },
          }
        : { Enabled: false },
    };
    const Tags = ownerTagList(ownerOf(spec.project, spec.stage));
    if (create) {
      await client.send(new sdk.CreateDeliveryStreamCommand({ DeliveryStreamName: name, DeliveryStreamType: 'DirectPut', ExtendedS3DestinationConfiguration: destination, Tags }), aws.sendOptions);
      return;
    }
    await client.send(new sdk.TagDeliveryStreamCommand({ DeliveryStreamName: name, Tags }), aws.sendOptions);
    const described = await client.send(new sdk.DescribeDeliveryStreamCommand({ DeliveryStreamName: name }), aws.sendOptions);
    const d = described.DeliveryStreamDescription!;
    await client.send(
      new sdk.UpdateDestinationCommand({
        DeliveryStreamName: name,
        CurrentDeliveryStreamVersionId: d.VersionId!,
        DestinationId: d.Destinations![0]!.DestinationId!,
        ExtendedS3DestinationUpdate: destination,
      }),
      aws.sendOptions,
    );
  }) as Upsert<StreamConfig>,

  query: (async (aws, name, config: QueryConfig, create, spec) => {
    const { client, sdk } = await aws.get('athena');
    const input = { Name: name, Database: config.database, QueryString: config.sql, Description: withMarker(QUERY_DESCRIPTION, ownerOf(spec.project, spec.stage)) };
    if (create) {
      await client.send(new sdk.CreateNamedQueryCommand({ ...input, WorkGroup: config.workgroup }), aws.sendOptions);
      return;
    }
    const id = await namedQueryId(aws, config.workgroup, name);
    await client.send(new sdk.UpdateNamedQueryCommand({ NamedQueryId: id, Name: name, QueryString: config.sql, Description: input.Description }), aws.sendOptions);
  }) as Upsert<QueryConfig>,

  schedule: (async (aws, name, config: ScheduleConfig, create, spec) => {
    const { client, sdk } = await aws.get('scheduler');
    const input = {
      Name: name,
      Description: withMarker(SCHEDULE_DESCRIPTION, ownerOf(spec.project, spec.stage)),
      ScheduleExpression: config.expression,
      FlexibleTimeWindow: { Mode: 'OFF' as const },
      State: 'ENABLED' as const,
      Target: { Arn: config.target, RoleArn: config.role, Input: JSON.stringify(config.input) },
    };
    if (create) await client.send(new sdk.CreateScheduleCommand(input), aws.sendOptions);
    else await client.send(new sdk.UpdateScheduleCommand(input), aws.sendOptions);
  }) as Upsert<ScheduleConfig>,
};

const DELETE: { [K in DatalakeKind]: (aws: AwsClients, name: string, spec: DatalakeSpec) => Promise<void> } = {
  // Never pruned (planDatalake filters them out): the bucket holds the data.
  bucket: async () => undefined,
  database: async () => undefined,
  async role(aws, name) {
    const { client, sdk } = await aws.get('iam');
    await client.send(new sdk.DeleteRolePolicyCommand({ RoleName: name, PolicyName: 'iotctl' }), aws.sendOptions).catch((e) => {
      if (!isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException')) throw e;
    });
    await client.send(new sdk.DeleteRoleCommand({ RoleName: name }), aws.sendOptions);
  },
  // Dropping the table leaves its objects in S3: prune never deletes data.
  async table(aws, name, spec) {
    const { client, sdk } = await aws.get('glue');
    await client.send(new sdk.DeleteTableCommand({ DatabaseName: spec.athena.database, Name: name }), aws.sendOptions);
  },
  async function(aws, name) {
    const { client, sdk } = await aws.get('lambda');
    await client.send(new sdk.DeleteFunctionCommand({ FunctionName: name }), aws.sendOptions);
  },
  async stream(aws, name) {
    const { client, sdk } = await aws.get('firehose');
    await client.send(new sdk.DeleteDeliveryStreamCommand({ DeliveryStreamName: name }), aws.sendOptions);
  },
  async query(aws, name, spec) {
    const { client, sdk } = await aws.get('athena');
    await client.send(new sdk.DeleteNamedQueryCommand({ NamedQueryId: await namedQueryId(aws, spec.athena.workgroup, name) }), aws.sendOptions);
  },
  async schedule(aws, name) {
    const { client, sdk } = await aws.get('scheduler');
    await client.send(new sdk.DeleteScheduleCommand({ Name: name }), aws.sendOptions);
  },
};

/** The named query called `name` in the workgroup, with its id. */
export async function namedQuery(aws: AwsClients, workgroup: string, name: string): Promise<(Resource & { id: string }) | undefined> {
  return (await readQueries(aws, workgroup, name)).find((q) => q.name === name) as (Resource & { id: string }) | undefined;
}

async function namedQueryId(aws: AwsClients, workgroup: string, name: string): Promise<string> {
  const found = await namedQuery(aws, workgroup, name);
  if (!found) throw new Error(`Athena named query ${name} disappeared while applying`);
  return found.id;
}

/** Lambda accepts one update at a time: wait until the last one finished (LastUpdateStatus Successful). */
async function waitForUpdate(aws: AwsClients, name: string): Promise<void> {
  const { client, sdk } = await aws.get('lambda');
  for (let i = 0; i < 120; i++) {
    const c = await client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: name }), aws.sendOptions);
    if (c.LastUpdateStatus === 'Failed') throw new Error(`updating Lambda function ${name} failed: ${c.LastUpdateStatusReason}`);
    if (c.LastUpdateStatus !== 'InProgress' && c.State !== 'Pending') return;
    await new Promise((r) => setTimeout(r, Math.min(250 * (i + 1), 2_000)));
  }
  throw new Error(`Lambda function ${name} is still updating after 2 minutes`);
}
