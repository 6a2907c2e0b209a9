import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planResources, type PlanItem, type Resource } from '../../../iot/plan/index.js';
import type { Spec } from '../../../spec/schema.js';
import { ANALYTICS_TAG, claimOf, DEFAULT_STAGE, markerTags, notOurs, ownerOf, ownerTagList, ownerTags, stripMarker, TAG_PROJECT, tagMap, withMarker, type Owner } from '../ownership.js';
import { databaseOpsNames, datalakeNames, LIFECYCLE_RULE_PREFIX, listingPrefix, ownershipByName, qualifiedTable, splitQualifiedTable, type NameKind } from '../naming.js';
import { failFastWhenUnserved, isAwsError, type AwsClients, type ServiceName } from '../sdk.js';
import { anyOf, lambdaBusy, retryWhen, rolePropagating, waitUntil, type WaitOptions } from '../retry.js';
import { UserError } from '../../../ui/errors.js';
import { deleteServiceRole, ensureServiceRole, SERVICE_PRINCIPAL, trustPolicy, type TrustedService } from '../iam.js';
import { mapLimit } from '../../../concurrency.js';
import {
  BASE_COLUMNS,
  desiredDatalake,
  KIND_ORDER,
  LAKE,
  lakeNames,
  legacyRolePath,
  NEVER_PRUNED,
  PROJECT_PARAMETER,
  STAGE_PARAMETER,
  type BucketConfig,
  type DatalakeContext,
  type DatalakeKind,
  type DesiredResource,
  type FunctionConfig,
  type LakeNames,
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

/**
 * The stage's bucket. A new deployment gets the stage-scoped bucket. The DEFAULT stage keeps the bucket a
 * deployment made before stage-scoped names (`iotctl-<project>-<account>-<region>`) when it exists and is this
 * project's: it holds every raw and datastore object, S3 cannot rename a bucket, and copying it (while Firehose
 * still writes into it) would double the storage and leave Athena without the data in between. Its name is
 * already unique per project, account and region, and only the default stage ever used it, so keeping it
 * scopes nothing less; every other stage always gets its own scoped bucket.
 */
export async function lakeBucket(aws: AwsClients, spec: Pick<Spec, 'project'> & { stage?: string }, place: { accountId: string; region: string }): Promise<string> {
  const scoped = lakeNames(spec, place).bucket;
  if ((spec.stage ?? DEFAULT_STAGE) !== DEFAULT_STAGE) return scoped;
  const legacy = datalakeNames(spec.project, place).bucket;
  const key = `${legacy}\u0000${spec.project}`;
  return (bucketChoice.get(key) ?? bucketChoice.set(key, (async () => {
    if (!(await bucketExists(aws, legacy))) return scoped;
    const claim = claimOf(await bucketTags(aws, legacy), ownerOf(spec.project, DEFAULT_STAGE), true);
    return claim === 'foreign' ? scoped : legacy;
  })()).get(key))!;
}
const bucketChoice = new Map<string, Promise<string>>();

/** The datalake's names in the spec's stage, with the bucket lakeBucket chose: what status, datasets and reprocess read. */
export async function lakePlace(aws: AwsClients, spec: Pick<Spec, 'project'> & { stage?: string }): Promise<LakeNames & { accountId: string; region: string }> {
  const [accountId, region] = await Promise.all([aws.accountId(), aws.region()]);
  const bucket = await lakeBucket(aws, spec, { accountId, region });
  return { ...lakeNames(spec, { accountId, region, bucket }), accountId, region };
}

export async function datalakeContext(aws: AwsClients, spec: Pick<Spec, 'project'> & { stage?: string }): Promise<DatalakeContext> {
  // A plan needs the bundle's hash only (cached by its inputs): the zip is made when a function is written.
  const digest = import('../../../services/bundle.js').then((m) => m.bundleDigest('pipeline-transform'));
  const [accountId, region, { sha256 }] = await Promise.all([aws.accountId(), aws.region(), digest]);
  return { accountId, region, bucket: await lakeBucket(aws, spec, { accountId, region }), transformSha256: sha256 };
}

const stageOf = (spec: DatalakeSpec) => spec.stage ?? DEFAULT_STAGE;
const ownerOfSpec = (spec: DatalakeSpec) => ownerOf(spec.project, stageOf(spec));

/** Reads in flight at once per listing (as Terraform runs 10 operations at once). */
const READS = 10;

/** The plan: desired vs actual. `prune` adds deletes for what the spec dropped, never for the bucket or the database. */
export async function planDatalake(aws: AwsClients, spec: DatalakeSpec, opts: { prune?: boolean; context?: DatalakeContext } = {}): Promise<PlanItem[]> {
  const ctx = opts.context ?? (await datalakeContext(aws, spec));
  const desired = desiredDatalake(spec, ctx);
  const actual = ours(await readClaims(aws, spec, ctx, desired), ownerOfSpec(spec), desired);
  const items = planResources(desired, actual, { prune: opts.prune }).filter((i) => !(i.action === 'delete' && NEVER_PRUNED.has(i.kind)));
  await refuseFormatChanges(aws, items, lakeNames(spec, ctx).bucket);
  if (lakeNames(spec, ctx).legacyBucket)
    for (const i of items.filter((i) => i.kind === 'bucket'))
      i.note = `the bucket made before stage-scoped names keeps the ${DEFAULT_STAGE} stage's data in place (a bucket cannot be renamed); the ${DEFAULT_STAGE} stage goes on using it, other stages have their own`;
  return sortItems(items);
}

/**
 * A datastore's files keep the format they were written in, and Athena reads one format per table: a datastore
 * that holds files cannot change its format (as on the local target). Refused at plan time, before anything is asked.
 */
async function refuseFormatChanges(aws: AwsClients, items: PlanItem[], bucket: string): Promise<void> {
  const changed = items.filter((i) => i.kind === 'table' && i.action === 'replace' && i.changes.some((c) => c.path === 'format'));
  for (const i of changed) {
    const { client, sdk } = await aws.get('s3');
    const prefix = `datastore/${i.name}/`;
    const out = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1 }), aws.sendOptions);
    if (!out.KeyCount && !out.Contents?.length) continue;
    const [before, after] = [(i.actual as TableConfig).format, (i.desired as TableConfig).format];
    i.refused = [
      {
        reason: `datastore ${i.name} holds ${before} files (s3://${bucket}/${prefix}); its format cannot change to ${after}`,
        hint: `Keep format: ${before} for ${i.name} in iotctl.yaml, or use a new datastore name (its old files stay in S3 until you delete them).`,
      },
    ];
  }
}

function sortItems(items: PlanItem[]): PlanItem[] {
  const rank = (i: PlanItem) => KIND_ORDER.indexOf(i.kind as DatalakeKind) * (i.action === 'delete' ? -1 : 1) + (i.action === 'delete' ? 100 : 0);
  return [...items].sort((a, b) => rank(a) - rank(b));
}

// ---------------------------------------------------------------------------------------------- reading

/** Everything of this stage's datalake that exists, normalised like model.ts (names logical, `physical` on AWS). */
export async function readDatalake(aws: AwsClients, spec: DatalakeSpec, ctx: DatalakeContext): Promise<Resource[]> {
  const desired = desiredDatalake(spec, ctx);
  return ours(await readClaims(aws, spec, ctx, desired), ownerOfSpec(spec));
}

/**
 * A resource as read (`name` logical, `physical` its name on AWS), with who owns it: its tags (or the marker
 * in its description, where the service has no tags), whether it carries what an older iotctl left on it
 * (`legacy`: no project tag, where that means an older iotctl's), and `moved`: found under the name of a
 * deployment before stage-scoped names, to be moved to the stage's name.
 */
type Claimed = Resource & { physical: string; tags: Record<string, string>; legacy: boolean; moved?: boolean };
/** What a reader finds under one physical name. */
type Found = Omit<Claimed, 'name' | 'kind' | 'physical'>;

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
 * `adopt`: the plan tags it, or moves it when it carries a name before stage-scoped names). Anyone else's
 * resource is dropped, and refused when the spec declares its name.
 */
function ours(found: Claimed[], owner: Owner, desired?: Resource[]): Resource[] {
  const declared = new Set((desired ?? []).map((r) => `${r.kind}\u0000${r.name}`));
  const out: Resource[] = [];
  for (const { tags, legacy, moved, ...r } of found) {
    const claim = claimOf(tags, owner, legacy);
    const wanted = declared.has(`${r.kind}\u0000${r.name}`);
    if (claim === 'foreign') {
      if (wanted && !moved) throw notOurs(LABEL[r.kind as DatalakeKind], r.physical, tags, owner);
      continue;
    }
    if (claim === 'legacy' && !moved) {
      if (desired && !wanted) continue;
      out.push({ ...r, adopt: ownerTags(owner) });
    } else out.push(r);
  }
  return out;
}

/**
 * This stage's resources, found by their scoped names (a listing filtered by ownershipByName, then tags or
 * markers), then for the default stage each declared resource's name before stage-scoped names, read by that
 * exact name where no scoped one exists yet (the plan moves it). Other stages and projects never match.
 */
async function readClaims(aws: AwsClients, spec: DatalakeSpec, ctx: DatalakeContext, desired: DesiredResource[]): Promise<Claimed[]> {
  const n = lakeNames(spec, ctx);
  const scope = n.scope;
  const byPhysical = new Map(desired.map((d) => [`${d.kind}\u0000${d.physical}`, d.name]));
  // A scoped name read back to its logical name: the spec's (also for a shortened one), else what the name says.
  const logical = (kind: DatalakeKind, nameKind: NameKind, physical: string) => {
    const known = byPhysical.get(`${kind}\u0000${physical}`);
    if (known) return known;
    const v = ownershipByName(nameKind, physical, scope);
    return v.verdict === 'ours' ? v.logical : physical;
  };
  const claim = (kind: DatalakeKind, nameKind: NameKind | undefined, physical: string, f: Found): Claimed => ({ kind, name: nameKind ? logical(kind, nameKind, physical) : LAKE, physical, ...f });
  const mayBeOurs = (kind: NameKind) => (physical: string) => ownershipByName(kind, physical, scope).verdict !== 'not-ours';

  const [bucket, database, roles, tables, functions, streams, queries, schedules] = await Promise.all([
    readBucket(aws, n.bucket, n.legacyBucket),
    readDatabase(aws, n.database),
    listRoles(aws, n.rolePath),
    readTables(aws, n.database),
    listFunctions(aws, mayBeOurs('lambda-function')),
    listStreams(aws, mayBeOurs('firehose-delivery-stream')),
    readQueries(aws, spec.athena.workgroup, mayBeOurs('athena-named-query'), QUERY_DESCRIPTION),
    // The database section's maintenance schedule (database-ops.ts) shares the stage's names: not the datalake's.
    readSchedules(aws, listingPrefix('scheduler-schedule'), (name) => name !== databaseOpsNames(scope).schedule && mayBeOurs('scheduler-schedule')(name), SCHEDULE_DESCRIPTION),
  ]);
  const found: Claimed[] = [
    ...(bucket ? [claim('bucket', undefined, n.bucket, bucket)] : []),
    ...(database ? [claim('database', undefined, n.database, database)] : []),
    // Roles under the stage's path are also the functions' and rules' roles: the datalake's carry ANALYTICS_TAG.
    ...[...roles].filter(([, f]) => f.tags[ANALYTICS_TAG]).map(([name, f]) => claim('role', 'iam-role', name, f)),
    ...[...tables].map(([name, f]) => ({ ...claim('table', undefined, qualifiedTable(n.database, name), f), name: byPhysical.get(`table\u0000${qualifiedTable(n.database, name)}`) ?? name })),
    ...[...functions].filter(([, f]) => f.tags[ANALYTICS_TAG]).map(([name, f]) => claim('function', 'lambda-function', name, f)),
    ...[...streams].map(([name, f]) => claim('stream', 'firehose-delivery-stream', name, f)),
    ...[...queries].map(([name, f]) => claim('query', 'athena-named-query', name, f)),
    ...[...schedules].map(([name, f]) => claim('schedule', 'scheduler-schedule', name, f)),
  ];

  const have = new Set(found.map((c) => `${c.kind}\u0000${c.name}`));
  // Listed once, and only when an old query is looked for.
  let legacyQueries: Promise<Map<string, Found & { id: string }>> | undefined;
  const queriesOnce = () => (legacyQueries ??= readQueries(aws, spec.athena.workgroup, (name) => name.startsWith(datalakeNames(spec.project, ctx).prefix), QUERY_DESCRIPTION));
  const moved = await Promise.all(
    desired
      .filter((d) => d.legacy && d.legacy !== d.physical && !have.has(`${d.kind}\u0000${d.name}`))
      .map(async (d): Promise<Claimed | undefined> => {
        const old = d.legacy!;
        const f = await readLegacy(aws, d.kind as DatalakeKind, old, spec.project, queriesOnce);
        return f && { kind: d.kind, name: d.name, physical: old, ...f, moved: true };
      }),
  );
  return [...found, ...moved.filter((c): c is Claimed => !!c)];
}

/** One resource under the name a deployment before stage-scoped names gave it. */
async function readLegacy(aws: AwsClients, kind: DatalakeKind, physical: string, project: string, queries: () => Promise<Map<string, Found & { id: string }>>): Promise<Found | undefined> {
  switch (kind) {
    case 'role': {
      const role = await describeRole(aws, physical);
      return role?.path === legacyRolePath(project) ? role.found : undefined;
    }
    case 'table': {
      const [database, table] = splitQualifiedTable(physical);
      return (await describeTable(aws, database, table))?.[1];
    }
    case 'function': return describeFunction(aws, physical);
    case 'stream': return describeStream(aws, physical);
    case 'query': return (await queries()).get(physical);
    case 'schedule': return describeSchedule(aws, physical, SCHEDULE_DESCRIPTION);
    default: return undefined;
  }
}

async function bucketExists(aws: AwsClients, bucket: string): Promise<boolean> {
  const { client, sdk } = await aws.get('s3');
  try {
    await client.send(new sdk.HeadBucketCommand({ Bucket: bucket }), aws.sendOptions);
    return true;
  } catch (e) {
    if (isAwsError(e, 'NotFound', 'NoSuchBucket', '404')) return false;
    throw e;
  }
}

async function readBucket(aws: AwsClients, bucket: string, legacyName: boolean): Promise<Found | undefined> {
  const { client, sdk } = await aws.get('s3');
  if (!(await bucketExists(aws, bucket))) return undefined;
  // Independent reads, at once.
  const [enc, pab, rules, tags] = await Promise.all([
    client.send(new sdk.GetBucketEncryptionCommand({ Bucket: bucket }), aws.sendOptions).catch((e) => {
      if (isAwsError(e, 'ServerSideEncryptionConfigurationNotFoundError')) return undefined;
      throw e;
    }),
    client.send(new sdk.GetPublicAccessBlockCommand({ Bucket: bucket }), aws.sendOptions).catch((e) => {
      if (isAwsError(e, 'NoSuchPublicAccessBlockConfiguration')) return undefined;
      throw e;
    }),
    bucketLifecycle(aws, bucket),
    bucketTags(aws, bucket),
  ]);
  const algo = enc?.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm;
  const b = pab?.PublicAccessBlockConfiguration;
  const blocked = !!(b?.BlockPublicAcls && b.BlockPublicPolicy && b.IgnorePublicAcls && b.RestrictPublicBuckets);
  const lifecycle = rules
    .filter((r) => r.ID?.startsWith(LIFECYCLE_RULE_PREFIX))
    .map((r) => ({ id: r.ID!, prefix: r.Filter?.Prefix ?? r.Prefix ?? '', days: r.Expiration?.Days ?? 0 }))
    .sort((x, y) => x.id.localeCompare(y.id));
  // The name before stage-scoped names holds the project, the account and the region: without iotctl's tags it is an older iotctl's.
  return { config: { encryption: algo, blockPublicAccess: blocked, lifecycle }, tags, legacy: legacyName };
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

async function readDatabase(aws: AwsClients, database: string): Promise<Found | undefined> {
  const { client, sdk } = await aws.get('glue');
  try {
    const out = await client.send(new sdk.GetDatabaseCommand({ Name: database }), aws.sendOptions);
    // Glue databases take tags only by ARN: the owner is a marker in the description, compared without it.
    const description = out.Database?.Description ?? '';
    return { config: { description: stripMarker(description) }, tags: markerTags(description), legacy: false };
  } catch (e) {
    if (isAwsError(e, 'EntityNotFoundException')) return undefined;
    throw e;
  }
}

/** IAM returns policy documents URL-encoded. */
const policyJson = (doc: string | undefined) => (doc ? JSON.parse(doc.startsWith('%') ? decodeURIComponent(doc) : doc) : undefined);

async function roleFound(aws: AwsClients, role: { RoleName?: string; AssumeRolePolicyDocument?: string }): Promise<Found> {
  const { client, sdk } = await aws.get('iam');
  const trust = policyJson(role.AssumeRolePolicyDocument) as { Statement?: { Principal?: { Service?: string } }[] } | undefined;
  const [policy, tagList] = await Promise.all([
    client.send(new sdk.GetRolePolicyCommand({ RoleName: role.RoleName!, PolicyName: 'iotctl' }), aws.sendOptions).catch((e) => {
      if (isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException')) return undefined;
      throw e;
    }),
    client.send(new sdk.ListRoleTagsCommand({ RoleName: role.RoleName! }), aws.sendOptions),
  ]);
  const tags = tagMap(tagList.Tags);
  // Under iotctl's role path, a role without iotctl's tags is an older iotctl's.
  return { config: { service: trust?.Statement?.[0]?.Principal?.Service, policy: policyJson(policy?.PolicyDocument) }, tags, legacy: true };
}

/** The roles under exactly `path` (a prefix listing also returns the paths below it: other stages'). */
async function listRoles(aws: AwsClients, path: string): Promise<Map<string, Found>> {
  const { client, sdk } = await aws.get('iam');
  const roles: { RoleName?: string; AssumeRolePolicyDocument?: string }[] = [];
  let Marker: string | undefined;
  do {
    const page = await client.send(new sdk.ListRolesCommand({ PathPrefix: path, Marker }), aws.sendOptions);
    roles.push(...(page.Roles ?? []).filter((role) => role.Path === path));
    Marker = page.IsTruncated ? page.Marker : undefined;
  } while (Marker);
  return new Map(await mapLimit(roles, READS, async (role) => [role.RoleName!, await roleFound(aws, role)] as const));
}

async function describeRole(aws: AwsClients, name: string): Promise<{ path: string; found: Found } | undefined> {
  const { client, sdk } = await aws.get('iam');
  try {
    const role = (await client.send(new sdk.GetRoleCommand({ RoleName: name }), aws.sendOptions)).Role!;
    return { path: role.Path ?? '/', found: await roleFound(aws, role) };
  } catch (e) {
    if (isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException')) return undefined;
    throw e;
  }
}

type GlueTable = { Name?: string; Parameters?: Record<string, string>; StorageDescriptor?: { Location?: string; SerdeInfo?: { SerializationLibrary?: string }; Columns?: { Name?: string; Type?: string }[] }; PartitionKeys?: { Name?: string; Type?: string }[] };

function tableFound(t: GlueTable): [string, Found] {
  // The table's parameters say whose it is; a stage-less one is an older iotctl's (its plan adds the stage).
  const tags = { ...(t.Parameters?.[PROJECT_PARAMETER] ? { [TAG_PROJECT]: t.Parameters[PROJECT_PARAMETER] } : {}), ...(t.Parameters?.[STAGE_PARAMETER] ? { [STAGE_PARAMETER]: t.Parameters[STAGE_PARAMETER] } : {}) };
  const sd = t.StorageDescriptor;
  const base = new Set(BASE_COLUMNS.map((c) => c.name));
  return [
    t.Name!,
    {
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
    },
  ];
}

async function readTables(aws: AwsClients, database: string): Promise<Map<string, Found>> {
  const { client, sdk } = await aws.get('glue');
  const out = new Map<string, Found>();
  let NextToken: string | undefined;
  do {
    let page;
    try {
      page = await client.send(new sdk.GetTablesCommand({ DatabaseName: database, NextToken }), aws.sendOptions);
    } catch (e) {
      if (isAwsError(e, 'EntityNotFoundException')) return out;
      throw e;
    }
    for (const t of page.TableList ?? []) out.set(...tableFound(t));
    NextToken = page.NextToken;
  } while (NextToken);
  return out;
}

async function describeTable(aws: AwsClients, database: string, name: string): Promise<[string, Found] | undefined> {
  const { client, sdk } = await aws.get('glue');
  try {
    return tableFound((await client.send(new sdk.GetTableCommand({ DatabaseName: database, Name: name }), aws.sendOptions)).Table!);
  } catch (e) {
    if (isAwsError(e, 'EntityNotFoundException')) return undefined;
    throw e;
  }
}

/** The zip's CodeSha256 when iotctl wrote the transform's code: code changed since by anyone else no longer matches. */
const TAG_CODE = 'iotctl:code-sha256';

async function functionFound(aws: AwsClients, f: { FunctionName?: string; FunctionArn?: string; Role?: string; Handler?: string; Runtime?: string; Timeout?: number; MemorySize?: number; CodeSha256?: string; Environment?: { Variables?: Record<string, string> } }): Promise<Found> {
  const { client, sdk } = await aws.get('lambda');
  const tags = (await client.send(new sdk.ListTagsCommand({ Resource: f.FunctionArn! }), aws.sendOptions)).Tags ?? {};
  const environment = { ...(f.Environment?.Variables ?? {}) };
  // The bundle's hash in the environment says which code iotctl wrote, not which code runs: other code reads back as changed.
  if (tags[TAG_CODE] && f.CodeSha256 && tags[TAG_CODE] !== f.CodeSha256) environment.IOTCTL_BUNDLE_SHA256 = `code changed outside iotctl (CodeSha256 ${f.CodeSha256})`;
  return {
    tags,
    legacy: true,
    config: { role: f.Role, handler: f.Handler, runtime: f.Runtime, timeout: f.Timeout, memory: f.MemorySize, environment } satisfies Partial<FunctionConfig>,
  };
}

/** Functions whose names may be this stage's (tags are read only for those). */
async function listFunctions(aws: AwsClients, mayBeOurs: (name: string) => boolean): Promise<Map<string, Found>> {
  const { client, sdk } = await aws.get('lambda');
  const candidates: Parameters<typeof functionFound>[1][] = [];
  let Marker: string | undefined;
  do {
    const page = await client.send(new sdk.ListFunctionsCommand({ Marker }), aws.sendOptions);
    // Tags (one call per function) only for the names that may be this stage's.
    candidates.push(...(page.Functions ?? []).filter((f) => f.FunctionName && mayBeOurs(f.FunctionName)));
    Marker = page.NextMarker;
  } while (Marker);
  return new Map(await mapLimit(candidates, READS, async (f) => [(f as { FunctionName: string }).FunctionName, await functionFound(aws, f)] as const));
}

async function describeFunction(aws: AwsClients, name: string): Promise<Found | undefined> {
  const { client, sdk } = await aws.get('lambda');
  try {
    return await functionFound(aws, await client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: name }), aws.sendOptions));
  } catch (e) {
    if (isAwsError(e, 'ResourceNotFoundException')) return undefined;
    throw e;
  }
}

/** Delivery streams whose names may be this stage's, described. */
async function listStreams(aws: AwsClients, mayBeOurs: (name: string) => boolean): Promise<Map<string, Found>> {
  const { client, sdk } = await aws.get('firehose');
  const streamNames: string[] = [];
  let ExclusiveStartDeliveryStreamName: string | undefined;
  for (;;) {
    const page = await client.send(new sdk.ListDeliveryStreamsCommand({ ExclusiveStartDeliveryStreamName, Limit: 100 }), aws.sendOptions);
    const got = page.DeliveryStreamNames ?? [];
    streamNames.push(...got.filter(mayBeOurs));
    if (!page.HasMoreDeliveryStreams || !got.length) break;
    ExclusiveStartDeliveryStreamName = got[got.length - 1];
  }
  const found = await mapLimit(streamNames, READS, async (name) => [name, await describeStream(aws, name)] as const);
  return new Map(found.filter((f): f is [string, Found] => !!f[1]));
}

async function describeStream(aws: AwsClients, name: string): Promise<Found | undefined> {
  const { client, sdk } = await aws.get('firehose');
  let out;
  // The tags at the same time (a stream that does not exist fails both alike).
  const tags = deliveryStreamTags(aws, name);
  tags.catch(() => undefined);
  try {
    out = await client.send(new sdk.DescribeDeliveryStreamCommand({ DeliveryStreamName: name }), aws.sendOptions);
  } catch (e) {
    if (isAwsError(e, 'ResourceNotFoundException')) return undefined;
    throw e;
  }
  const d = out.DeliveryStreamDescription?.Destinations?.[0]?.ExtendedS3DestinationDescription;
  const processors: Record<string, Record<string, string>> = {};
  for (const p of d?.ProcessingConfiguration?.Processors ?? []) processors[p.Type!] = Object.fromEntries((p.Parameters ?? []).map((x) => [x.ParameterName!, x.ParameterValue!]));
  const schema = d?.DataFormatConversionConfiguration?.Enabled ? d.DataFormatConversionConfiguration.SchemaConfiguration : undefined;
  return {
    tags: await tags,
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
  };
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

/** The workgroup's named queries whose names `wanted` accepts, by name, with their ids. */
async function readQueries(aws: AwsClients, workgroup: string, wanted: (name: string) => boolean, legacyDescription?: string): Promise<Map<string, Found & { id: string }>> {
  const { client, sdk } = await aws.get('athena');
  const out = new Map<string, Found & { id: string }>();
  let NextToken: string | undefined;
  const ids: string[] = [];
  do {
    const page = await client.send(new sdk.ListNamedQueriesCommand({ WorkGroup: workgroup, NextToken }), aws.sendOptions);
    ids.push(...(page.NamedQueryIds ?? []));
    NextToken = page.NextToken;
  } while (NextToken);
  // BatchGetNamedQuery reads up to 50 at once (one GetNamedQuery each would be a call per query on every read).
  const batches = Array.from({ length: Math.ceil(ids.length / 50) }, (_, i) => ids.slice(i * 50, i * 50 + 50));
  const pages = await mapLimit(batches, READS, async (NamedQueryIds) => {
    try {
      return (await client.send(failFastWhenUnserved(new sdk.BatchGetNamedQueryCommand({ NamedQueryIds })), aws.sendOptions)).NamedQueries ?? [];
    } catch (error) {
      if (aws.settings.signal?.aborted) throw error;
      // An endpoint without the batch call (moto, emulators) or a policy that allows only athena:GetNamedQuery:
      // one call per query, whose own error (if any) is the one to report.
      return mapLimit(NamedQueryIds, READS, async (NamedQueryId) => (await client.send(new sdk.GetNamedQueryCommand({ NamedQueryId }), aws.sendOptions)).NamedQuery!);
    }
  });
  for (const q of pages.flat()) {
    if (q.Name && q.NamedQueryId && wanted(q.Name))
      out.set(q.Name, {
        config: { database: q.Database, workgroup: q.WorkGroup ?? workgroup, sql: q.QueryString },
        id: q.NamedQueryId,
        tags: markerTags(q.Description),
        // Older versions wrote this exact description, without a marker.
        legacy: legacyDescription !== undefined && q.Description === legacyDescription,
      });
  }
  return out;
}

/**
 * Schedules whose names may be this stage's. ListSchedules filters only by a prefix of at most 64 characters
 * and a cut project changes everything after `iotctl-`, so it lists iotctl's and ownershipByName picks.
 */
async function readSchedules(aws: AwsClients, prefix: string, mayBeOurs: (name: string) => boolean, legacyDescription: string): Promise<Map<string, Found>> {
  const { client, sdk } = await aws.get('scheduler');
  const out = new Map<string, Found>();
  let NextToken: string | undefined;
  const listed: { Name?: string; GroupName?: string }[] = [];
  do {
    const page = await client.send(new sdk.ListSchedulesCommand({ NamePrefix: prefix, NextToken }), aws.sendOptions);
    listed.push(...(page.Schedules ?? []).filter((s) => s.Name && mayBeOurs(s.Name)));
    NextToken = page.NextToken;
  } while (NextToken);
  const found = await mapLimit(listed, READS, async (s) => [s.Name!, await describeSchedule(aws, s.Name!, legacyDescription, s.GroupName)] as const);
  for (const [name, f] of found) if (f) out.set(name, f);
  return out;
}

async function describeSchedule(aws: AwsClients, name: string, legacyDescription: string, group?: string): Promise<Found | undefined> {
  const { client, sdk } = await aws.get('scheduler');
  let g;
  try {
    g = await client.send(new sdk.GetScheduleCommand({ Name: name, GroupName: group }), aws.sendOptions);
  } catch (e) {
    if (isAwsError(e, 'ResourceNotFoundException')) return undefined;
    throw e;
  }
  return {
    config: { expression: g.ScheduleExpression, role: g.Target?.RoleArn, target: g.Target?.Arn, input: g.Target?.Input ? JSON.parse(g.Target.Input) : undefined } satisfies Partial<ScheduleConfig>,
    tags: markerTags(g.Description),
    // Older versions wrote no description.
    legacy: !g.Description || g.Description === legacyDescription,
  };
}

// --------------------------------------------------------------------------------------------- applying

/**
 * Converges: creates, updates (in place where AWS allows) and deletes, in dependency order. Noops are skipped,
 * so applying a plan of an unchanged spec makes no call at all.
 */
export async function applyDatalake(aws: AwsClients, spec: DatalakeSpec, items: PlanItem[], opts: { context?: DatalakeContext; onItem?: (item: PlanItem) => void } = {}): Promise<void> {
  const ctx = opts.context ?? (await datalakeContext(aws, spec));
  for (const item of sortItems(items)) {
    if (item.action === 'noop') continue;
    opts.onItem?.(item);
    const kind = item.kind as DatalakeKind;
    // Items name resources logically; `physical` is the name on AWS (for a move's delete: the old one).
    const physical = item.physical ?? item.name;
    if (item.action === 'delete') await DELETE[kind](aws, physical, spec);
    else {
      // A move creates the resource under its new name (the old one is deleted in the delete phase).
      const create = item.action === 'create' || item.changes.some((c) => c.path === 'physicalName');
      await UPSERT[kind](aws, physical, item.desired as never, create, spec, ctx);
    }
  }
}

type Upsert<C> = (aws: AwsClients, name: string, config: C, create: boolean, spec: DatalakeSpec, ctx: DatalakeContext) => Promise<void>;

const UPSERT: { [K in DatalakeKind]: Upsert<never> } = {
  bucket: (async (aws, name, config: BucketConfig, create, spec) => {
    const { client, sdk } = await aws.get('s3');
    if (create) await client.send(new sdk.CreateBucketCommand({ Bucket: name, ...((await aws.region()) !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: (await aws.region()) as never } } : {}) }), aws.sendOptions);
    // PutBucketTagging replaces the whole set: the bucket's other tags are kept.
    const tags = { ...(create ? {} : await bucketTags(aws, name)), ...ownerTags(ownerOfSpec(spec)) };
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

  database: (async (aws, name, config: { description: string }, create, spec) => {
    const { client, sdk } = await aws.get('glue');
    const input = { Name: name, Description: withMarker(config.description, ownerOfSpec(spec)) };
    if (create) await client.send(new sdk.CreateDatabaseCommand({ DatabaseInput: input }), aws.sendOptions);
    else await client.send(new sdk.UpdateDatabaseCommand({ Name: name, DatabaseInput: input }), aws.sendOptions);
  }) as Upsert<{ description: string }>,

  role: (async (aws, name, config: RoleConfig, _create, spec, ctx) => {
    // iam.ts: the trust with the service's confused-deputy conditions; only what drifted is rewritten.
    await ensureServiceRole(aws, {
      name,
      path: lakeNames(spec, ctx).rolePath,
      description: `iotctl ${spec.project} ${stageOf(spec)} analytics`,
      trust: trustPolicy(trustedService(config.service), { account: ctx.accountId, region: ctx.region }),
      policyName: 'iotctl',
      policy: config.policy,
      // ANALYTICS_TAG tells the datalake's roles from the functions' and rules' under the same stage path.
      tags: { ...ownerTags(ownerOfSpec(spec)), [ANALYTICS_TAG]: 'datalake' },
    });
  }) as Upsert<RoleConfig>,

  table: (async (aws, physical, config: TableConfig, create) => {
    const { client, sdk } = await aws.get('glue');
    const [database, name] = splitQualifiedTable(physical);
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
    const Tags = { ...ownerTags(ownerOfSpec(spec)), [ANALYTICS_TAG]: 'pipeline-transform', [TAG_CODE]: createHash('sha256').update(zip).digest('base64') };
    if (create) {
      // Its role was usually created a moment ago: Lambda refuses it until IAM has propagated it.
      await retryWhen(
        () => client.send(new sdk.CreateFunctionCommand({ FunctionName: name, Code: { ZipFile: zip }, Description: 'iotctl analytics pipeline transform (Firehose)', Tags, ...settings }), aws.sendOptions),
        rolePropagating.lambda,
        roleWait(aws, 'lambda', 'CreateFunction', `Lambda to be able to assume the role ${config.role}`),
      );
      return;
    }
    const { FunctionArn } = await client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: name }), aws.sendOptions);
    await client.send(new sdk.TagResourceCommand({ Resource: FunctionArn!, Tags }), aws.sendOptions);
    // Code first, then configuration: Lambda refuses a second update while the first is in progress.
    await client.send(new sdk.UpdateFunctionCodeCommand({ FunctionName: name, ZipFile: zip }), aws.sendOptions);
    await waitForUpdate(aws, name);
    await retryWhen(
      () => client.send(new sdk.UpdateFunctionConfigurationCommand({ FunctionName: name, ...settings }), aws.sendOptions),
      anyOf(rolePropagating.lambda, lambdaBusy),
      roleWait(aws, 'lambda', 'UpdateFunctionConfiguration', `Lambda to be able to assume the role ${config.role}`),
    );
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
    const Tags = ownerTagList(ownerOfSpec(spec));
    // The stream's role was usually created or changed a moment ago: Firehose refuses it until IAM has propagated it.
    const wait = roleWait(aws, 'firehose', create ? 'CreateDeliveryStream' : 'UpdateDestination', `Firehose to be able to assume the role ${config.role}`);
    if (create) {
      await retryWhen(
        () => client.send(new sdk.CreateDeliveryStreamCommand({ DeliveryStreamName: name, DeliveryStreamType: 'DirectPut', ExtendedS3DestinationConfiguration: destination, Tags }), aws.sendOptions),
        rolePropagating.firehose,
        wait,
      );
      return;
    }
    // A stream still CREATING (or UPDATING) refuses changes: wait for ACTIVE first.
    const d = await waitForDeliveryStream(aws, name);
    await client.send(new sdk.TagDeliveryStreamCommand({ DeliveryStreamName: name, Tags }), aws.sendOptions);
    await retryWhen(
      () =>
        client.send(
          new sdk.UpdateDestinationCommand({
            DeliveryStreamName: name,
            CurrentDeliveryStreamVersionId: d.VersionId!,
            DestinationId: d.Destinations![0]!.DestinationId!,
            ExtendedS3DestinationUpdate: destination,
          }),
          aws.sendOptions,
        ),
      rolePropagating.firehose,
      wait,
    );
  }) as Upsert<StreamConfig>,

  query: (async (aws, name, config: QueryConfig, create, spec) => {
    const { client, sdk } = await aws.get('athena');
    const input = { Name: name, Database: config.database, QueryString: config.sql, Description: withMarker(QUERY_DESCRIPTION, ownerOfSpec(spec)) };
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
      Description: withMarker(SCHEDULE_DESCRIPTION, ownerOfSpec(spec)),
      ScheduleExpression: config.expression,
      FlexibleTimeWindow: { Mode: 'OFF' as const },
      State: 'ENABLED' as const,
      Target: { Arn: config.target, RoleArn: config.role, Input: JSON.stringify(config.input) },
    };
    // The schedule's role was usually created or changed a moment ago: Scheduler refuses it until IAM has propagated it.
    await retryWhen(
      () => (create ? client.send(new sdk.CreateScheduleCommand(input), aws.sendOptions) : client.send(new sdk.UpdateScheduleCommand(input), aws.sendOptions)),
      rolePropagating.scheduler,
      roleWait(aws, 'scheduler', create ? 'CreateSchedule' : 'UpdateSchedule', `EventBridge Scheduler to be able to assume the role ${config.role}`),
    );
  }) as Upsert<ScheduleConfig>,
};

const DELETE: { [K in DatalakeKind]: (aws: AwsClients, name: string, spec: DatalakeSpec) => Promise<void> } = {
  // Never pruned (planDatalake filters them out): the bucket holds the data.
  bucket: async () => undefined,
  database: async () => undefined,
  async role(aws, name, spec) {
    // The plan deletes only roles of this stage (or an older iotctl's under its path): the same rule, checked again.
    await deleteServiceRole(aws, name, (tags) => claimOf(tags, ownerOfSpec(spec), true) !== 'foreign');
  },
  // Dropping the table leaves its objects in S3: prune never deletes data.
  async table(aws, physical) {
    const { client, sdk } = await aws.get('glue');
    const [DatabaseName, Name] = splitQualifiedTable(physical);
    await client.send(new sdk.DeleteTableCommand({ DatabaseName, Name }), aws.sendOptions);
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
  const found = (await readQueries(aws, workgroup, (q) => q === name)).get(name);
  return found && { kind: 'query', name, config: found.config, id: found.id };
}

async function namedQueryId(aws: AwsClients, workgroup: string, name: string): Promise<string> {
  const found = await namedQuery(aws, workgroup, name);
  if (!found)
    throw new UserError(
      `The Athena named query ${name} (workgroup ${workgroup}) was in the plan but no longer exists: something else deleted it meanwhile.`,
      'Run `iotctl analytics apply` again: the new plan creates it.',
      'RESOURCE_GONE',
    );
  return found.id;
}

/** Bounds of the datalake's waits on IAM propagation: the command's Ctrl-C and the default budget. */
function roleWait(aws: AwsClients, service: ServiceName, operation: string, what: string): WaitOptions {
  return { service, operation, what, signal: aws.settings.signal, delayMs: 1_000, maxDelayMs: 5_000 };
}

/** Lambda accepts one update at a time, and none while Pending: wait until the last one finished. */
async function waitForUpdate(aws: AwsClients, name: string): Promise<void> {
  const { client, sdk } = await aws.get('lambda');
  await waitUntil(
    () => client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: name }), aws.sendOptions),
    (c) => {
      if (c.State === 'Failed' || c.LastUpdateStatus === 'Failed')
        throw new UserError(
          `Lambda could not make the transform function ${name} ready: ${c.LastUpdateStatusReasonCode ?? c.StateReasonCode ?? ''} ${c.LastUpdateStatusReason ?? c.StateReason ?? ''}`.trim(),
          'Fix the cause it names, then run `iotctl analytics apply` again.',
          'LAMBDA_FAILED',
        );
      return c.LastUpdateStatus !== 'InProgress' && c.State !== 'Pending';
    },
    { service: 'lambda', operation: 'GetFunctionConfiguration', what: `the transform function ${name} to be ready`, signal: aws.settings.signal, delayMs: 250, maxDelayMs: 2_000, state: (c) => `${c.State}/${c.LastUpdateStatus ?? '-'}` },
  );
}

/** A delivery stream accepts changes only when ACTIVE. */
async function waitForDeliveryStream(aws: AwsClients, name: string) {
  const { client, sdk } = await aws.get('firehose');
  const d = await waitUntil(
    async () => (await client.send(new sdk.DescribeDeliveryStreamCommand({ DeliveryStreamName: name }), aws.sendOptions)).DeliveryStreamDescription!,
    (d) => {
      if (/FAILED/.test(d.DeliveryStreamStatus ?? ''))
        throw new UserError(`Firehose delivery stream ${name} is ${d.DeliveryStreamStatus}: ${d.FailureDescription?.Details ?? 'no reason given'}.`, 'Fix the cause it names (often the role or the bucket), delete the stream, then apply again.', 'FIREHOSE_FAILED');
      return d.DeliveryStreamStatus === 'ACTIVE';
    },
    { service: 'firehose', operation: 'DescribeDeliveryStream', what: `Firehose delivery stream ${name} to be ACTIVE`, signal: aws.settings.signal, delayMs: 500, maxDelayMs: 5_000, state: (d) => d.DeliveryStreamStatus ?? 'unknown' },
  );
  return d;
}

/** The service of a role's configuration (its principal) as iam.ts names it. */
function trustedService(principal: string): TrustedService {
  const found = (Object.keys(SERVICE_PRINCIPAL) as TrustedService[]).find((k) => SERVICE_PRINCIPAL[k] === principal);
  if (!found) throw new Error(`no trust policy for service principal ${principal}`);
  return found;
}
