import { parseDocument, type Document } from 'yaml';
import { deepEqual, type PlanItem } from '../../../iot/plan/index.js';
import { parseSpec } from '../../../spec/loader.js';
import type { AnalyticsSpec, Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import { arn } from '../arn.js';
import { ownerOf, ownerTags } from '../ownership.js';
import { isAwsError, type AwsClients } from '../sdk.js';
import { ensureServiceRole, trustPolicy } from '../iam.js';
import { applyDatalake, datalakeContext, planDatalake } from './datalake.js';
import { pipelineFromActivities, PROJECT_TAG } from './iotanalytics-model.js';
import { iotAnalyticsNames } from '../naming.js';
import {
  datasetConfigOf,
  IOTA_ENDED_CODE,
  readIotAnalytics,
  runIotAnalyticsDataset,
  warnIotAnalyticsEnded,
  type PollOptions,
  type RawDataset,
  type ReadResource,
} from './iotanalytics.js';

/**
 * `iotctl analytics migrate --from iotanalytics --to datalake`: moves a project off AWS IoT Analytics, which
 * AWS ended on 2025-12-15.
 *
 *   1. Reads the account's IoT Analytics resources (where the API still answers; else takes the spec's section).
 *   2. Writes the equivalent section with `engine: datalake` into iotctl.yaml, editing the YAML document in
 *      place so comments and untouched entries stay as they were.
 *   3. Plans the datalake resources (planDatalake); nothing is applied but, with --export, the bucket.
 *   4. With --export, copies each datastore's data out of IoT Analytics through a dataset whose S3 content
 *      delivery rule writes the result into the new datastore prefix. This is the export path of AWS's
 *      end-of-support guide ("AWS IoT Analytics end of support", https://docs.aws.amazon.com/iotanalytics/latest/userguide/iotanalytics-end-of-support.html):
 *      a SQL dataset over the datastore, delivered to S3 by a content delivery rule
 *      (S3DestinationConfiguration, https://docs.aws.amazon.com/iotanalytics/latest/APIReference/API_S3DestinationConfiguration.html).
 *   5. Never deletes anything on IoT Analytics; it returns the AWS CLI commands that would.
 */

export interface MigrateOptions {
  aws: AwsClients;
  /** iotctl.yaml as it is on disk. */
  specText: string;
  spec: Spec;
  /** Print the plan only: nothing is written to AWS (the caller writes no file either). */
  dryRun?: boolean;
  export?: boolean;
  /** Polling of the export datasets' contents. */
  poll?: PollOptions;
  file?: string;
}

export interface ExportResult {
  datastore: string;
  dataset: string;
  versionId?: string;
  state: 'SUCCEEDED' | 'FAILED' | 'SKIPPED';
  /** Where the CSV landed. */
  s3Uri?: string;
  reason?: string;
}

export interface MigrateResult {
  /** Where the datalake section came from. */
  source: 'iotanalytics' | 'spec';
  analytics: AnalyticsSpec;
  /** iotctl.yaml with the datalake section (the caller writes it unless dry run). */
  specText: string;
  changed: boolean;
  plan: PlanItem[];
  exports: ExportResult[];
  /** What could not be carried over, and what to do about it. */
  warnings: string[];
  /** The AWS CLI commands that would delete the old IoT Analytics resources (migrate never runs them). */
  deleteCommands: string[];
}

/** The prefix of the datasets migrate makes to export datastores; they are not part of the migrated section. */
export const EXPORT_DATASET_PREFIX = 'iotctl_export_';

export async function migrateAnalytics(opts: MigrateOptions): Promise<MigrateResult> {
  const { aws, spec } = opts;
  warnIotAnalyticsEnded();
  const warnings: string[] = [];

  let existing: ReadResource[] | undefined;
  try {
    existing = await readIotAnalytics(aws, spec, 'account');
  } catch (e) {
    if (!(e instanceof UserError && e.code === IOTA_ENDED_CODE)) throw e;
    warnings.push(`${e.message} The datalake section is taken from iotctl.yaml as it is; the data left in IoT Analytics cannot be exported.`);
  }

  const analytics = existing ? merge(spec.analytics, existing, warnings) : { ...spec.analytics, engine: 'datalake' as const };
  const doc = parseDocument(opts.specText);
  writeSection(doc, spec.analytics, analytics);
  const specText = doc.toString();
  // The written text must load as a spec (and is what apply will read).
  const next = parseSpec(specText, opts.file).spec;

  const context = await datalakeContext(aws, next);
  let plan = await planDatalake(aws, next, { context });
  const exports: ExportResult[] = [];
  if (opts.export && !opts.dryRun) {
    if (!existing) warnings.push('--export skipped: IoT Analytics no longer answers, so there is nothing to read the data from.');
    else {
      // The export lands in the datalake bucket: create it (encrypted, public access blocked) ahead of `apply`.
      await applyDatalake(aws, next, plan.filter((i) => i.kind === 'bucket'), { context });
      const bucket = context.bucket!;
      const roleArn = await ensureExportRole(aws, next, bucket, context.accountId);
      for (const ds of existing.filter((r) => r.kind === 'datastore')) exports.push(await exportDatastore(aws, next, ds.name, bucket, roleArn, opts.poll));
      plan = await planDatalake(aws, next, { context });
    }
  }

  const region = await aws.region();
  const deleteCommands = existing ? deleteCommandsFor(existing, exports, region, next) : [];
  return { source: existing ? 'iotanalytics' : 'spec', analytics: next.analytics, specText, changed: specText !== opts.specText, plan, exports, warnings, deleteCommands };
}

// ------------------------------------------------------------------------------------- AWS → spec section

type Section = Exclude<keyof AnalyticsSpec, 'engine'>;

/**
 * The spec's section with what exists on IoT Analytics: an existing resource replaces the spec's entry of the same
 * name (AWS holds what actually runs), resources only on AWS are appended, and the spec's other entries stay.
 */
function merge(current: AnalyticsSpec, existing: ReadResource[], warnings: string[]): AnalyticsSpec {
  const from: { [K in Section]: AnalyticsSpec[K] } = { channels: [], datastores: [], pipelines: [], datasets: [] };
  for (const r of existing) {
    if (r.kind === 'channel') from.channels.push({ name: r.name, ...retention((r.config as { retentionDays?: number }).retentionDays) });
    if (r.kind === 'datastore') {
      const c = r.config as { format: 'parquet' | 'json'; retentionDays?: number };
      from.datastores.push({ name: r.name, format: c.format, ...retention(c.retentionDays) });
    }
    if (r.kind === 'pipeline') {
      const { pipeline, warnings: w } = pipelineFromActivities(r.name, (r.raw as { activities?: [] }).activities ?? []);
      warnings.push(...w);
      from.pipelines.push(pipeline);
    }
    if (r.kind === 'dataset') {
      if (r.name.startsWith(EXPORT_DATASET_PREFIX)) continue;
      const raw = r.raw as RawDataset;
      if (!raw.actions?.some((a) => a.queryAction)) {
        warnings.push(`dataset ${r.name}: a container dataset has no datalake equivalent and was left out (run its container on the Athena results instead).`);
        continue;
      }
      if (raw.triggers?.some((t) => t.dataset)) warnings.push(`dataset ${r.name}: its trigger on another dataset has no datalake equivalent; give it a schedule.`);
      const c = datasetConfigOf(raw);
      from.datasets.push({ name: r.name, sql: c.sql, ...(c.schedule ? { schedule: c.schedule } : {}), ...(c.deltaTime ? { deltaTime: c.deltaTime } : {}), versionsToKeep: Math.min(c.versionsToKeep, 1000) });
    }
  }
  const out = { ...current, engine: 'datalake' as const };
  for (const key of ['channels', 'datastores', 'pipelines', 'datasets'] as const) {
    const aws = new Map<string, unknown>(from[key].map((x) => [x.name, x]));
    const kept = (current[key] as { name: string }[]).map((x) => aws.get(x.name) ?? x);
    const added = from[key].filter((x) => !(current[key] as { name: string }[]).some((c) => c.name === x.name));
    (out as Record<string, unknown>)[key] = [...kept, ...added];
  }
  return out;
}

const retention = (days: number | undefined) => (days ? { retentionDays: days } : {});

/** The YAML of one entry, without the values the schema defaults anyway. */
function yamlOf(key: Section, item: Record<string, unknown>): Record<string, unknown> {
  const out = { ...item };
  if (key === 'datasets' && out.versionsToKeep === 1) delete out.versionsToKeep;
  if (key === 'pipelines')
    out.activities = (out.activities as Record<string, Record<string, unknown>>[]).map((a) =>
      a.lambda && a.lambda.batchSize === 100 ? { lambda: { function: a.lambda.function } } : a,
    );
  return out;
}

/** Edits the section in place: unchanged entries keep their nodes (and comments); changed ones are replaced, new ones appended. */
function writeSection(doc: Document, before: AnalyticsSpec, after: AnalyticsSpec): void {
  doc.setIn(['analytics', 'engine'], 'datalake');
  for (const key of ['channels', 'datastores', 'pipelines', 'datasets'] as const) {
    const old = before[key] as { name: string }[];
    const now = after[key] as unknown as Record<string, unknown>[];
    if (!doc.hasIn(['analytics', key])) {
      if (now.length) doc.setIn(['analytics', key], doc.createNode(now.map((x) => yamlOf(key, x))));
      continue;
    }
    now.forEach((item, i) => {
      if (i < old.length && deepEqual(old[i], item)) return;
      doc.setIn(['analytics', key, i], doc.createNode(yamlOf(key, item)));
    });
  }
}

// -------------------------------------------------------------------------------------------- exporting

async function ensureExportRole(aws: AwsClients, spec: Spec, bucket: string, accountId: string): Promise<string> {
  const { exportRole: name, rolePath } = iotAnalyticsNames(spec.project);
  const region = await aws.region();
  // IoT Analytics may write the exports under datastore/<name>/migrated/ only.
  const policy = {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: ['s3:PutObject'], Resource: [arn(region, 's3', '', '', `${bucket}/datastore/*/migrated/*`)] },
      { Effect: 'Allow', Action: ['s3:GetBucketLocation'], Resource: [arn(region, 's3', '', '', bucket)] },
    ],
  };
  // iam.ts: the one way roles are made (trust with IoT Analytics' confused-deputy conditions, drift-checked).
  await ensureServiceRole(aws, {
    name,
    path: rolePath,
    description: `iotctl ${spec.project}: IoT Analytics export to the datalake`,
    trust: trustPolicy('iotanalytics', { account: accountId, region }),
    policyName: 'iotctl',
    policy,
    tags: ownerTags(ownerOf(spec.project)),
  });
  return arn(region, 'iam', '', accountId, `role${rolePath}${name}`);
}

/**
 * One datastore's data as CSV under its new prefix. The key sits outside the dt= partitions (S3 keys of content
 * delivery may not contain '='), so the datastore's table does not read the CSV as Parquet by mistake.
 */
async function exportDatastore(aws: AwsClients, spec: Spec, datastore: string, bucket: string, roleArn: string, poll?: PollOptions): Promise<ExportResult> {
  const { client, sdk } = await aws.get('iotanalytics');
  const dataset = `${EXPORT_DATASET_PREFIX}${datastore}`.slice(0, 128);
  const keyPrefix = `datastore/${datastore}/migrated/`;
  const input = {
    datasetName: dataset,
    actions: [{ actionName: 'export', queryAction: { sqlQuery: `SELECT * FROM ${datastore}` } }],
    contentDeliveryRules: [{ entryName: 'export', destination: { s3DestinationConfiguration: { bucket, key: `${keyPrefix}!{iotanalytics:versionId}.csv`, roleArn } } }],
    retentionPeriod: { unlimited: false, numberOfDays: 7 },
  };
  try {
    await client.send(new sdk.CreateDatasetCommand({ ...input, tags: [{ key: PROJECT_TAG, value: spec.project }] }), aws.sendOptions);
  } catch (e) {
    // A second migrate --export reuses the dataset of the first.
    if (!isAwsError(e, 'ResourceAlreadyExistsException')) throw e;
    await client.send(new sdk.UpdateDatasetCommand(input), aws.sendOptions);
  }
  const run = await runIotAnalyticsDataset(aws, dataset, poll);
  if (run.state === 'FAILED') return { datastore, dataset, versionId: run.versionId, state: 'FAILED', reason: run.reason };
  return { datastore, dataset, versionId: run.versionId, state: 'SUCCEEDED', s3Uri: `s3://${bucket}/${keyPrefix}${run.versionId}.csv` };
}

/** Dependents first: datasets, pipelines, then the datastores and channels (which hold the data). */
function deleteCommandsFor(existing: ReadResource[], exports: ExportResult[], region: string, spec: Spec): string[] {
  const of = (kind: string) => existing.filter((r) => r.kind === kind).map((r) => r.name);
  const datasets = [...new Set([...of('dataset'), ...exports.map((e) => e.dataset)])];
  const cmd = (what: string, flag: string, name: string) => `aws iotanalytics delete-${what} --${flag} ${name} --region ${region}`;
  const out = [
    ...datasets.map((n) => cmd('dataset', 'dataset-name', n)),
    ...of('pipeline').map((n) => cmd('pipeline', 'pipeline-name', n)),
    ...of('datastore').map((n) => cmd('datastore', 'datastore-name', n)),
    ...of('channel').map((n) => cmd('channel', 'channel-name', n)),
  ];
  if (exports.length) out.push(`aws iam delete-role-policy --role-name ${iotAnalyticsNames(spec.project).exportRole} --policy-name iotctl`, `aws iam delete-role --role-name ${iotAnalyticsNames(spec.project).exportRole}`);
  return out;
}
