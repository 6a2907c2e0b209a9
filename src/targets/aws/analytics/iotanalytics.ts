import type { DatasetContentState, PipelineActivity } from '@aws-sdk/client-iotanalytics';
import type { DatasetVersion } from '../../../ports.js';
import { planResources, type PlanItem, type Resource } from '../../../iot/plan/index.js';
import type { Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import { warn } from '../../../ui/output.js';
import { arn } from '../arn.js';
import { iotAnalyticsNames } from '../naming.js';
import { claimOf, DEFAULT_STAGE, ownerOf, ownerTags, TAG_STAGE } from '../ownership.js';
import { AwsCallError, isAwsError, type AwsClients } from '../sdk.js';
import { deleteServiceRole, ensureServiceRole, trustPolicy } from '../iam.js';
import { waitUntil } from '../retry.js';
import {
  desiredIotAnalytics,
  IOTA_KIND_ORDER,
  normaliseActivities,
  PROJECT_TAG,
  retentionDaysOf,
  retentionPeriod,
  type ChannelConfig,
  type DatasetConfig,
  type DatastoreConfig,
  type EnrichRoleConfig,
  type IotAnalyticsKind,
  type PipelineConfig,
} from './iotanalytics-model.js';

/**
 * The legacy analytics engine: AWS IoT Analytics (Channel → Pipeline → Datastore → Dataset) through
 * @aws-sdk/client-iotanalytics, with the same plan/apply semantics as datalake.ts:
 *
 *   const plan = await planIotAnalytics(aws, spec, { prune });   // PlanItem[] (render with formatPlan)
 *   await applyIotAnalytics(aws, spec, plan);
 *   await runIotAnalyticsDataset(aws, 'daily');                 // CreateDatasetContent, then poll
 *   await iotAnalyticsDatasetContent(aws, 'daily');             // the entries' dataURI
 *
 * AWS ended IoT Analytics on 2025-12-15: every entry point warns once, and an API that no longer answers
 * becomes a UserError that points to `iotctl analytics migrate`.
 */

export type IotAnalyticsSpec = Pick<Spec, 'project' | 'stage' | 'analytics'>;

export const IOTA_END_OF_LIFE = '2025-12-15';
export const MIGRATE_COMMAND = 'iotctl analytics migrate --from iotanalytics --to datalake';

let warned = false;

/** Warns (stderr) once per process that the service has ended; every command on this engine calls it. */
export function warnIotAnalyticsEnded(): void {
  if (warned) return;
  warned = true;
  warn(`AWS ended IoT Analytics on ${IOTA_END_OF_LIFE}; the iotanalytics engine is kept only to move off it: \`${MIGRATE_COMMAND}\` moves this project to the datalake engine.`);
}

/** The error code of IotAnalyticsEndedError, for callers (migrate) that fall back when the API is gone. */
export const IOTA_ENDED_CODE = 'IOTANALYTICS_ENDED';

/**
 * How an ended service can answer: its endpoint no longer resolves or connects, the operation is unknown, or
 * the account is refused with a message saying the service is no longer available. Plain permission errors
 * (AccessDenied without such a message) stay what they are: the fix is IAM, not a migration.
 */
export function isServiceGone(error: unknown): boolean {
  if (!(error instanceof AwsCallError) || error.service !== 'iotanalytics') return false;
  if (['EndpointUnreachable', 'UnknownOperationException', 'UnknownOperation', 'UnsupportedOperation'].includes(error.awsCode)) return true;
  // The API answers JSON only: a body that is not JSON (an HTML error page from whatever now serves the
  // endpoint, as moto_server's 500 page for a service it lacks) means the API is not there.
  if (error.awsCode === 'SyntaxError' || /Deserialization error/i.test(error.message)) return true;
  const text = `${error.message} ${(error.cause as Error | undefined)?.message ?? ''}`;
  return /no longer (available|supported|accessible)|end of support|reached (its )?end|has been (retired|discontinued|shut down)|not available to new customers/i.test(text);
}

function ended(error: AwsCallError, region: string | undefined): UserError {
  return new UserError(
    `AWS IoT Analytics did not answer ${error.operation}${region ? ` in ${region}` : ''} (${error.awsCode}): AWS ended the service on ${IOTA_END_OF_LIFE}.`,
    `Move this project to the datalake engine: ${MIGRATE_COMMAND} (add --dry-run to see the plan first).`,
    IOTA_ENDED_CODE,
  );
}

type IotaModule = typeof import('@aws-sdk/client-iotanalytics');

/** One call to IoT Analytics: sends with the command's abort signal and turns a gone service into the migrate hint. */
async function iota<T>(aws: AwsClients, make: (sdk: IotaModule) => { input: unknown }): Promise<T> {
  const { client, sdk } = await aws.get('iotanalytics');
  try {
    return (await client.send(make(sdk) as never, aws.sendOptions)) as T;
  } catch (e) {
    if (isServiceGone(e)) throw ended(e as AwsCallError, aws.settings.region ?? process.env.AWS_REGION);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------- reading

interface Page<S> {
  items: S[];
  nextToken?: string;
}

/** Every page of a List* call (IoT Analytics pages with nextToken). */
async function listAll<S>(aws: AwsClients, list: (sdk: IotaModule, nextToken?: string) => { input: unknown }, pick: (out: Record<string, unknown>) => Page<S>): Promise<S[]> {
  const out: S[] = [];
  let nextToken: string | undefined;
  do {
    const page = pick(await iota<Record<string, unknown>>(aws, (sdk) => list(sdk, nextToken)));
    out.push(...page.items);
    nextToken = page.nextToken;
  } while (nextToken);
  return out;
}

/** A resource as read, with its ARN (for tags) alongside the compared config. */
export type ReadResource = Resource & { arn?: string; raw?: unknown };

async function describe(aws: AwsClients, kind: Exclude<IotAnalyticsKind, 'role'>, name: string): Promise<ReadResource | undefined> {
  try {
    if (kind === 'channel') {
      const { channel: c } = await iota<{ channel?: { arn?: string; retentionPeriod?: { unlimited?: boolean; numberOfDays?: number } } }>(aws, (s) => new s.DescribeChannelCommand({ channelName: name }));
      return { kind, name, arn: c?.arn, raw: c, config: { retentionDays: retentionDaysOf(c?.retentionPeriod) } satisfies ChannelConfig };
    }
    if (kind === 'datastore') {
      const { datastore: d } = await iota<{ datastore?: { arn?: string; retentionPeriod?: { unlimited?: boolean; numberOfDays?: number }; fileFormatConfiguration?: { parquetConfiguration?: unknown } } }>(
        aws,
        (s) => new s.DescribeDatastoreCommand({ datastoreName: name }),
      );
      return { kind, name, arn: d?.arn, raw: d, config: { format: d?.fileFormatConfiguration?.parquetConfiguration ? 'parquet' : 'json', retentionDays: retentionDaysOf(d?.retentionPeriod) } satisfies DatastoreConfig };
    }
    if (kind === 'pipeline') {
      const { pipeline: p } = await iota<{ pipeline?: { arn?: string; activities?: PipelineActivity[] } }>(aws, (s) => new s.DescribePipelineCommand({ pipelineName: name }));
      return { kind, name, arn: p?.arn, raw: p, config: { activities: normaliseActivities(p?.activities ?? []) } satisfies PipelineConfig };
    }
    const { dataset: d } = await iota<{ dataset?: RawDataset }>(aws, (s) => new s.DescribeDatasetCommand({ datasetName: name }));
    return { kind, name, arn: d?.arn, raw: d, config: datasetConfigOf(d) };
  } catch (e) {
    if (isAwsError(e, 'ResourceNotFoundException')) return undefined;
    throw e;
  }
}

export interface RawDataset {
  arn?: string;
  actions?: { queryAction?: { sqlQuery?: string; filters?: { deltaTime?: { offsetSeconds?: number; timeExpression?: string } }[] }; containerAction?: unknown }[];
  triggers?: { schedule?: { expression?: string }; dataset?: { name?: string } }[];
  versioningConfiguration?: { unlimited?: boolean; maxVersions?: number };
}

/** A described dataset, normalised like datasetConfig(); "unlimited" versions read as the spec's maximum. */
export function datasetConfigOf(d: RawDataset | undefined): DatasetConfig {
  const q = d?.actions?.find((a) => a.queryAction)?.queryAction;
  const delta = q?.filters?.find((f) => f.deltaTime)?.deltaTime;
  const schedule = d?.triggers?.find((t) => t.schedule)?.schedule?.expression;
  const v = d?.versioningConfiguration;
  return {
    sql: q?.sqlQuery ?? '',
    ...(schedule ? { schedule } : {}),
    ...(delta ? { deltaTime: { offsetSeconds: delta.offsetSeconds ?? 0, timeExpression: delta.timeExpression ?? '' } } : {}),
    versionsToKeep: v?.unlimited ? 1000 : (v?.maxVersions ?? 1),
  };
}

const LISTS = {
  channel: { list: (s: IotaModule, nextToken?: string) => new s.ListChannelsCommand({ nextToken }), key: 'channelSummaries', name: 'channelName' },
  datastore: { list: (s: IotaModule, nextToken?: string) => new s.ListDatastoresCommand({ nextToken }), key: 'datastoreSummaries', name: 'datastoreName' },
  pipeline: { list: (s: IotaModule, nextToken?: string) => new s.ListPipelinesCommand({ nextToken }), key: 'pipelineSummaries', name: 'pipelineName' },
  dataset: { list: (s: IotaModule, nextToken?: string) => new s.ListDatasetsCommand({ nextToken }), key: 'datasetSummaries', name: 'datasetName' },
} as const;

async function listNames(aws: AwsClients, kind: keyof typeof LISTS): Promise<string[]> {
  const l = LISTS[kind];
  return listAll<string>(aws, l.list, (out) => ({
    items: ((out[l.key] as Record<string, string>[] | undefined) ?? []).map((s) => s[l.name]!),
    nextToken: out.nextToken as string | undefined,
  }));
}

async function tagsOf(aws: AwsClients, arn: string): Promise<Record<string, string>> {
  const out = await iota<{ tags?: { key?: string; value?: string }[] }>(aws, (s) => new s.ListTagsForResourceCommand({ resourceArn: arn }));
  return Object.fromEntries((out.tags ?? []).map((t) => [t.key!, t.value!]));
}

/**
 * What exists. `scope`: 'spec' reads the resources the spec names (plan without prune); 'project' adds those tagged
 * with this project (prune); 'account' reads every IoT Analytics resource in the region but those iotctl made for
 * another project (migrate of an account iotctl did not build).
 */
export async function readIotAnalytics(aws: AwsClients, spec: IotAnalyticsSpec, scope: 'spec' | 'project' | 'account' = 'spec'): Promise<ReadResource[]> {
  const a = spec.analytics;
  const named: Record<keyof typeof LISTS, Set<string>> = {
    channel: new Set(a.channels.map((c) => c.name)),
    datastore: new Set(a.datastores.map((d) => d.name)),
    pipeline: new Set(a.pipelines.map((p) => p.name)),
    dataset: new Set(a.datasets.map((d) => d.name)),
  };
  const out: ReadResource[] = [];
  for (const kind of ['channel', 'datastore', 'pipeline', 'dataset'] as const) {
    const existing = await listNames(aws, kind);
    for (const name of existing) {
      if (scope === 'spec' && !named[kind].has(name)) continue;
      const r = await describe(aws, kind, name);
      if (!r) continue; // deleted between List and Describe
      if (scope !== 'spec' && !named[kind].has(name)) {
        const tags = r.arn ? await tagsOf(aws, r.arn) : {};
        const owner = tags[PROJECT_TAG];
        // A resource without a stage tag was made before stages, by the default stage.
        const ownStage = (tags[TAG_STAGE] ?? DEFAULT_STAGE) === (spec.stage ?? DEFAULT_STAGE);
        // 'project': only what iotctl made for this project and stage; 'account': all but what iotctl made for another project or stage.
        if (scope === 'project' ? owner !== spec.project || !ownStage : owner !== undefined && (owner !== spec.project || !ownStage)) continue;
      }
      out.push(r);
    }
  }
  out.push(...(await readEnrichRole(aws, spec)));
  return out;
}

async function readEnrichRole(aws: AwsClients, spec: IotAnalyticsSpec): Promise<Resource[]> {
  const { client, sdk } = await aws.get('iam');
  const name = iotAnalyticsNames(spec.project).enrichRole;
  try {
    const role = await client.send(new sdk.GetRoleCommand({ RoleName: name }), aws.sendOptions);
    const policy = await client.send(new sdk.GetRolePolicyCommand({ RoleName: name, PolicyName: 'iotctl' }), aws.sendOptions).catch((e) => {
      if (isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException')) return undefined;
      throw e;
    });
    const json = (doc?: string) => (doc ? JSON.parse(doc.startsWith('%') ? decodeURIComponent(doc) : doc) : undefined);
    return [{ kind: 'role', name, config: { service: json(role.Role?.AssumeRolePolicyDocument)?.Statement?.[0]?.Principal?.Service, policy: json(policy?.PolicyDocument) } }];
  } catch (e) {
    if (isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException')) return [];
    throw e;
  }
}

// --------------------------------------------------------------------------------------------- planning

export interface IotAnalyticsPlanOptions {
  prune?: boolean;
  /**
   * Deleting a channel or a datastore deletes the messages it holds, and the service takes no new resources to
   * put them back: --prune deletes them only when this is set too. Pipelines, datasets and roles are pruned freely.
   */
  deleteData?: boolean;
}

const enrichRoleArn = async (aws: AwsClients, spec: IotAnalyticsSpec) => arn(await aws.region(), 'iam', '', await aws.accountId(), `role${iotAnalyticsNames(spec.project).rolePath}${iotAnalyticsNames(spec.project).enrichRole}`);

const needsRole = (spec: IotAnalyticsSpec) => spec.analytics.pipelines.some((p) => p.activities.some((a) => 'deviceRegistryEnrich' in a || 'deviceShadowEnrich' in a));

export async function planIotAnalytics(aws: AwsClients, spec: IotAnalyticsSpec, opts: IotAnalyticsPlanOptions = {}): Promise<PlanItem[]> {
  warnIotAnalyticsEnded();
  // The account id is only needed for the enrichment role's ARN: a spec without enrichment makes no STS call.
  const roleArn = needsRole(spec) ? await enrichRoleArn(aws, spec) : arn(await aws.region(), 'iam', '', '000000000000', 'role/unused');
  const desired = desiredIotAnalytics(spec, roleArn);
  const actual = await readIotAnalytics(aws, spec, opts.prune ? 'project' : 'spec');
  // IoT Analytics cannot change a datastore's file format in place: refused at plan time, before anything is asked.
  for (const d of desired)
    if (d.kind === 'datastore')
      d.immutable = {
        format: {
          refuse: {
            reason: `IoT Analytics cannot change datastore ${d.name}'s file format in place (to ${(d.config as DatastoreConfig).format})`,
            hint: `Keep the datastore's format in iotctl.yaml, or move to the datalake engine: ${MIGRATE_COMMAND}.`,
          },
        },
      };
  const items = planResources(desired, actual, { prune: opts.prune }).filter((i) => i.action !== 'delete' || opts.deleteData || (i.kind !== 'channel' && i.kind !== 'datastore'));
  return sortItems(items);
}

function sortItems(items: PlanItem[]): PlanItem[] {
  const rank = (i: PlanItem) => (i.action === 'delete' ? 100 - IOTA_KIND_ORDER.indexOf(i.kind as IotAnalyticsKind) : IOTA_KIND_ORDER.indexOf(i.kind as IotAnalyticsKind));
  return [...items].sort((a, b) => rank(a) - rank(b));
}

// --------------------------------------------------------------------------------------------- applying

/** Converges in dependency order; noops make no call, so applying an unchanged spec's plan is free. */
export async function applyIotAnalytics(aws: AwsClients, spec: IotAnalyticsSpec, items: PlanItem[], opts: { onItem?: (item: PlanItem) => void } = {}): Promise<void> {
  warnIotAnalyticsEnded();
  // Refuse before changing anything: IoT Analytics cannot change a datastore's file format in place.
  for (const i of items)
    if (i.kind === 'datastore' && i.action === 'replace' && i.changes.some((c) => c.path === 'format'))
      throw new UserError(
        `Datastore ${i.name} cannot change its file format on IoT Analytics (${(i.actual as DatastoreConfig).format} → ${(i.desired as DatastoreConfig).format}).`,
        `Keep format: ${(i.actual as DatastoreConfig).format} in iotctl.yaml, or move to the datalake engine: ${MIGRATE_COMMAND}.`,
        'IOTANALYTICS_IMMUTABLE',
      );
  const tags = [{ key: PROJECT_TAG, value: spec.project }, { key: TAG_STAGE, value: spec.stage ?? DEFAULT_STAGE }];
  for (const item of sortItems(items)) {
    if (item.action === 'noop') continue;
    opts.onItem?.(item);
    const create = item.action === 'create';
    const name = item.name;
    switch (`${item.action === 'delete' ? 'delete' : 'upsert'} ${item.kind}`) {
      case 'upsert role': {
        const config = item.desired as EnrichRoleConfig;
        await ensureServiceRole(aws, {
          name,
          path: iotAnalyticsNames(spec.project).rolePath,
          description: `iotctl ${spec.project} IoT Analytics enrichment`,
          trust: trustPolicy('iotanalytics', { account: await aws.accountId(), region: await aws.region() }),
          policyName: 'iotctl',
          policy: config.policy,
          tags: ownerTags(ownerOf(spec.project, spec.stage)),
        });
        break;
      }
      case 'delete role': {
        await deleteServiceRole(aws, name, (tags) => claimOf(tags, ownerOf(spec.project, spec.stage), true) !== 'foreign');
        break;
      }
      case 'upsert channel': {
        const c = item.desired as ChannelConfig;
        // Storage is fixed at creation (service-managed S3 here), so updates send the retention only.
        if (create) await iota(aws, (s) => new s.CreateChannelCommand({ channelName: name, channelStorage: { serviceManagedS3: {} }, retentionPeriod: retentionPeriod(c.retentionDays), tags }));
        else await iota(aws, (s) => new s.UpdateChannelCommand({ channelName: name, retentionPeriod: retentionPeriod(c.retentionDays) }));
        break;
      }
      case 'upsert datastore': {
        const d = item.desired as DatastoreConfig;
        if (create)
          await iota(aws, (s) =>
            new s.CreateDatastoreCommand({
              datastoreName: name,
              datastoreStorage: { serviceManagedS3: {} },
              retentionPeriod: retentionPeriod(d.retentionDays),
              fileFormatConfiguration: d.format === 'parquet' ? { parquetConfiguration: {} } : { jsonConfiguration: {} },
              tags,
            }),
          );
        else await iota(aws, (s) => new s.UpdateDatastoreCommand({ datastoreName: name, retentionPeriod: retentionPeriod(d.retentionDays) }));
        break;
      }
      case 'upsert pipeline': {
        const { activities } = item.desired as PipelineConfig;
        if (create) await iota(aws, (s) => new s.CreatePipelineCommand({ pipelineName: name, pipelineActivities: activities, tags }));
        else await iota(aws, (s) => new s.UpdatePipelineCommand({ pipelineName: name, pipelineActivities: activities }));
        break;
      }
      case 'upsert dataset': {
        const input = datasetInput(name, item.desired as DatasetConfig);
        if (create) await iota(aws, (s) => new s.CreateDatasetCommand({ ...input, tags }));
        else await iota(aws, (s) => new s.UpdateDatasetCommand(input));
        break;
      }
      case 'delete channel':
        await iota(aws, (s) => new s.DeleteChannelCommand({ channelName: name }));
        break;
      case 'delete datastore':
        await iota(aws, (s) => new s.DeleteDatastoreCommand({ datastoreName: name }));
        break;
      case 'delete pipeline':
        await iota(aws, (s) => new s.DeletePipelineCommand({ pipelineName: name }));
        break;
      case 'delete dataset':
        await iota(aws, (s) => new s.DeleteDatasetCommand({ datasetName: name }));
        break;
      default:
        throw new Error(`iotanalytics: no way to ${item.action} a ${item.kind}`);
    }
  }
}

/** The dataset as IoT Analytics takes it: one SQL query action, an optional schedule, and "keep N versions, however old". */
export function datasetInput(name: string, d: DatasetConfig) {
  return {
    datasetName: name,
    actions: [{ actionName: 'query', queryAction: { sqlQuery: d.sql, ...(d.deltaTime ? { filters: [{ deltaTime: d.deltaTime }] } : {}) } }],
    triggers: d.schedule ? [{ schedule: { expression: d.schedule } }] : [],
    retentionPeriod: { unlimited: true },
    versioningConfiguration: { maxVersions: d.versionsToKeep },
  };
}

// --------------------------------------------------------------------------------------------- datasets

export interface DatasetRunResult {
  dataset: string;
  versionId: string;
  state: DatasetContentState;
  reason?: string;
  entries: { entryName?: string; dataURI?: string }[];
  polls: number;
}

export interface PollOptions {
  /** First wait between polls (doubles up to maxDelayMs). */
  delayMs?: number;
  maxDelayMs?: number;
  /** Give up after this long (the content keeps being created on AWS). */
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** `dataset run`: CreateDatasetContent, then GetDatasetContent with backoff until SUCCEEDED or FAILED (bounded). */
export async function runIotAnalyticsDataset(aws: AwsClients, name: string, opts: PollOptions = {}): Promise<DatasetRunResult> {
  warnIotAnalyticsEnded();
  const { delayMs = 1_000, maxDelayMs = 15_000, timeoutMs = 15 * 60_000, sleep } = opts;
  const created = await iota<{ versionId?: string }>(aws, (s) => new s.CreateDatasetContentCommand({ datasetName: name })).catch((e) => {
    if (isAwsError(e, 'ResourceNotFoundException')) throw new UserError(`Dataset ${name} does not exist on IoT Analytics.`, 'Add it to iotctl.yaml and run `iotctl analytics apply`.', 'NOT_FOUND');
    throw e;
  });
  const versionId = created.versionId!;
  let polls = 0;
  const out = await waitUntil(
    () => {
      polls++;
      return iota<{ status?: { state?: DatasetContentState; reason?: string }; entries?: { entryName?: string; dataURI?: string }[] }>(aws, (s) => new s.GetDatasetContentCommand({ datasetName: name, versionId }));
    },
    (out) => out.status?.state === 'SUCCEEDED' || out.status?.state === 'FAILED',
    {
      service: 'iotanalytics',
      operation: 'GetDatasetContent',
      what: `dataset ${name} version ${versionId}`,
      signal: aws.settings.signal,
      delayMs,
      maxDelayMs,
      timeoutMs,
      ...(sleep ? { sleep: (ms: number) => sleep(ms) } : {}),
      state: (out) => out.status?.state ?? 'CREATING',
      onTimeout: (out, s) =>
        new UserError(
          `Dataset ${name} version ${versionId} is still ${out.status?.state ?? 'CREATING'} after ${Math.round(s)} s.`,
          `It keeps running on AWS; read it later with \`iotctl analytics dataset content ${name} --version ${versionId}\`.`,
          'TIMEOUT',
        ),
    },
  );
  return { dataset: name, versionId, state: out.status!.state as 'SUCCEEDED' | 'FAILED', reason: out.status?.reason, entries: out.entries ?? [], polls };
}

/** `dataset content`: the entries (dataURI: a pre-signed S3 URL of the CSV) of a version, $LATEST_SUCCEEDED by default. */
export async function iotAnalyticsDatasetContent(aws: AwsClients, name: string, version = '$LATEST_SUCCEEDED'): Promise<{ dataset: string; version: string; state?: DatasetContentState; timestamp?: Date; entries: { entryName?: string; dataURI: string }[] }> {
  warnIotAnalyticsEnded();
  try {
    const out = await iota<{ status?: { state?: DatasetContentState; reason?: string }; timestamp?: Date; entries?: { entryName?: string; dataURI?: string }[] }>(aws, (s) =>
      new s.GetDatasetContentCommand({ datasetName: name, versionId: version }),
    );
    if (out.status?.state === 'FAILED') throw new UserError(`Dataset ${name} version ${version} failed: ${out.status.reason ?? 'no reason given'}.`, 'Fix its SQL in iotctl.yaml, apply, and run it again.', 'DATASET_FAILED');
    return { dataset: name, version, state: out.status?.state, timestamp: out.timestamp, entries: (out.entries ?? []).filter((e) => e.dataURI).map((e) => ({ entryName: e.entryName, dataURI: e.dataURI! })) };
  } catch (e) {
    if (isAwsError(e, 'ResourceNotFoundException'))
      throw new UserError(`Dataset ${name} has no content${version.startsWith('$') ? '' : ` version ${version}`} on IoT Analytics.`, `Run it first: iotctl analytics dataset run ${name}`, 'NOT_FOUND');
    throw e;
  }
}

/** `dataset content --versions`: ListDatasetContents, newest first. */
export async function iotAnalyticsDatasetVersions(aws: AwsClients, name: string): Promise<DatasetVersion[]> {
  warnIotAnalyticsEnded();
  type Summary = { version?: string; status?: { state?: DatasetContentState; reason?: string }; creationTime?: Date; completionTime?: Date; scheduleTime?: Date };
  const summaries = await listAll<Summary>(
    aws,
    (s, nextToken) => new s.ListDatasetContentsCommand({ datasetName: name, nextToken }),
    (out) => ({ items: (out.datasetContentSummaries as Summary[]) ?? [], nextToken: out.nextToken as string | undefined }),
  ).catch((e) => {
    if (isAwsError(e, 'ResourceNotFoundException')) throw new UserError(`Dataset ${name} does not exist on IoT Analytics.`, 'Add it to iotctl.yaml and run `iotctl analytics apply`.', 'NOT_FOUND');
    throw e;
  });
  return summaries
    .map((s): DatasetVersion => {
      const state = s.status?.state;
      const created = s.creationTime?.getTime() ?? 0;
      return {
        dataset: name,
        version: s.version ?? '',
        status: state === 'SUCCEEDED' ? 'SUCCEEDED' : state === 'FAILED' ? 'FAILED' : 'RUNNING',
        trigger: s.scheduleTime ? 'schedule' : 'manual',
        createdAt: created,
        scheduledFor: s.scheduleTime?.getTime() ?? null,
        windowStart: null,
        windowEnd: null,
        rows: null,
        bytes: null,
        elapsedMs: s.completionTime ? s.completionTime.getTime() - created : null,
        error: s.status?.reason ?? null,
      };
    })
    .sort((a, b) => b.createdAt - a.createdAt);
}

// ------------------------------------------------------------------------------------------ reprocessing

/**
 * `analytics reprocess` on IoT Analytics: StartPipelineReprocessing over the channel's messages in [from, to].
 * It runs on AWS and appends its output to the datastore (reprocessing a window twice duplicates its rows).
 */
export async function startIotAnalyticsReprocessing(aws: AwsClients, pipeline: string, window: { from?: number; to?: number }): Promise<string> {
  warnIotAnalyticsEnded();
  const out = await iota<{ reprocessingId?: string }>(
    aws,
    (s) =>
      new s.StartPipelineReprocessingCommand({
        pipelineName: pipeline,
        ...(window.from !== undefined ? { startTime: new Date(window.from) } : {}),
        ...(window.to !== undefined ? { endTime: new Date(window.to) } : {}),
      }),
  ).catch((e) => {
    if (isAwsError(e, 'ResourceNotFoundException')) throw new UserError(`Pipeline ${pipeline} does not exist on IoT Analytics.`, 'Create it with `iotctl analytics apply`.', 'NOT_FOUND');
    throw e;
  });
  return out.reprocessingId!;
}
