import type { PipelineActivity } from '@aws-sdk/client-iotanalytics';
import type { Resource } from '../../../iot/plan/index.js';
import type { ActivitySpec, AnalyticsSpec, Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import { iotAnalyticsNames } from '../naming.js';

/**
 * The legacy iotanalytics engine's desired resources, pure: the spec's analytics section to Channel, Pipeline,
 * Datastore and Dataset resources in a normalised shape that iotanalytics.ts also builds from what
 * Describe* returns, so planResources() diffs them field by field. Also the reverse mapping (AWS → spec),
 * which `analytics migrate` uses to write the datalake section from an account's existing resources.
 *
 * Names are used as they are (no project prefix): rules' `iotAnalytics {channel}` actions and datasets'
 * SQL (`FROM <datastore>`) name them directly, as in the seed architecture. Ownership for --prune is a tag.
 */

export type IotAnalyticsKind = 'role' | 'channel' | 'datastore' | 'pipeline' | 'dataset';

/** Creation order (a pipeline names its channel and datastore, a dataset queries a datastore); deletion runs in reverse. */
export const IOTA_KIND_ORDER: readonly IotAnalyticsKind[] = ['role', 'channel', 'datastore', 'pipeline', 'dataset'];

/** The tag that marks the resources iotctl made for a project; --prune only ever deletes those. */
export const PROJECT_TAG = 'iotctl:project';

export interface ChannelConfig {
  retentionDays?: number;
}
export interface DatastoreConfig {
  format: 'parquet' | 'json';
  retentionDays?: number;
}
export interface PipelineConfig {
  activities: PipelineActivity[];
}
export interface DatasetConfig {
  sql: string;
  schedule?: string;
  deltaTime?: { offsetSeconds: number; timeExpression: string };
  versionsToKeep: number;
}
export interface EnrichRoleConfig {
  service: 'iotanalytics.amazonaws.com';
  policy: { Version: '2012-10-17'; Statement: { Effect: 'Allow'; Action: string[]; Resource: string[] }[] };
}


/** IoT Analytics allows letters, digits and '_' only; the spec also allows '-'. */
const IOTA_NAME = /^[A-Za-z0-9_]{1,128}$/;

export function checkIotAnalyticsNames(a: AnalyticsSpec): void {
  const bad = [
    ...a.channels.map((c) => ['channel', c.name]),
    ...a.pipelines.map((p) => ['pipeline', p.name]),
    ...a.datastores.map((d) => ['datastore', d.name]),
    ...a.datasets.map((d) => ['dataset', d.name]),
  ].filter(([, n]) => !IOTA_NAME.test(n!));
  if (bad.length)
    throw new UserError(
      `IoT Analytics names may use letters, digits and '_' only: ${bad.map(([k, n]) => `${k} ${n}`).join(', ')}.`,
      "Rename them in iotctl.yaml (e.g. '-' to '_'), or use `analytics.engine: datalake`.",
      'SPEC_INVALID',
    );
}

const days = (n: number | undefined) => (n === undefined ? { unlimited: true } : { unlimited: false, numberOfDays: n });
export const retentionPeriod = days;
export const retentionDaysOf = (r: { unlimited?: boolean; numberOfDays?: number } | undefined) => (r && !r.unlimited && r.numberOfDays ? r.numberOfDays : undefined);

/** A spec activity as an IoT Analytics PipelineActivity (without its `next`). */
function toActivity(act: ActivitySpec, name: string, roleArn: string): PipelineActivity {
  if ('filter' in act) return { filter: { name, filter: act.filter.filter } };
  if ('selectAttributes' in act) return { selectAttributes: { name, attributes: act.selectAttributes.attributes } };
  if ('removeAttributes' in act) return { removeAttributes: { name, attributes: act.removeAttributes.attributes } };
  if ('addAttributes' in act) return { addAttributes: { name, attributes: act.addAttributes.attributes } };
  if ('math' in act) return { math: { name, attribute: act.math.attribute, math: act.math.math } };
  if ('lambda' in act) return { lambda: { name, lambdaName: act.lambda.function, batchSize: act.lambda.batchSize } };
  if ('deviceRegistryEnrich' in act) return { deviceRegistryEnrich: { name, ...act.deviceRegistryEnrich, roleArn } };
  return { deviceShadowEnrich: { name, ...act.deviceShadowEnrich, roleArn } };
}

const activityBody = (a: PipelineActivity) => Object.values(a).find((v) => v) as { name: string; next?: string };

/**
 * The pipeline as IoT Analytics wants it: the channel activity first, each spec activity in order, the datastore
 * last, chained by `next`. Activity names are positional (`filter_1`), so reordering shows as a change.
 */
export function pipelineActivities(p: AnalyticsSpec['pipelines'][number], enrichRoleArn: string): PipelineActivity[] {
  const middle = p.activities.map((act, i) => toActivity(act, `${Object.keys(act)[0]}_${i + 1}`, enrichRoleArn));
  const chain: PipelineActivity[] = [{ channel: { name: 'channel', channelName: p.channel } }, ...middle, { datastore: { name: 'datastore', datastoreName: p.datastore } }];
  chain.forEach((a, i) => {
    const next = chain[i + 1];
    if (next) activityBody(a).next = activityBody(next).name;
  });
  return chain;
}

/** Only the fields we set, in a fixed key order, so a Describe* answer compares equal to what we sent. */
export function normaliseActivities(activities: PipelineActivity[]): PipelineActivity[] {
  return activities.map((a) => {
    const [kind, body] = Object.entries(a).find(([, v]) => v) as [string, Record<string, unknown>];
    const clean = Object.fromEntries(
      Object.keys(body)
        .sort()
        .filter((k) => body[k] !== undefined && body[k] !== null)
        .map((k) => [k, body[k]]),
    );
    return { [kind]: clean } as PipelineActivity;
  });
}

/** An existing pipeline back to the spec's shape: follows `next` from the channel activity to the datastore. */
export function pipelineFromActivities(name: string, activities: PipelineActivity[]): { pipeline: AnalyticsSpec['pipelines'][number]; warnings: string[] } {
  const warnings: string[] = [];
  const byName = new Map(activities.map((a) => [activityBody(a).name, a]));
  const start = activities.find((a) => a.channel);
  let channel = '';
  let datastore = '';
  const out: ActivitySpec[] = [];
  const seen = new Set<string>();
  for (let a = start; a && !seen.has(activityBody(a).name); a = byName.get(activityBody(a).next ?? '')) {
    seen.add(activityBody(a).name);
    if (a.channel) channel = a.channel.channelName!;
    else if (a.datastore) datastore = a.datastore.datastoreName!;
    else if (a.filter) out.push({ filter: { filter: a.filter.filter! } });
    else if (a.selectAttributes) out.push({ selectAttributes: { attributes: a.selectAttributes.attributes! } });
    else if (a.removeAttributes) out.push({ removeAttributes: { attributes: a.removeAttributes.attributes! } });
    else if (a.addAttributes) out.push({ addAttributes: { attributes: a.addAttributes.attributes! } });
    else if (a.math) out.push({ math: { attribute: a.math.attribute!, math: a.math.math! } });
    else if (a.lambda) out.push({ lambda: { function: a.lambda.lambdaName!, batchSize: a.lambda.batchSize ?? 100 } });
    else if (a.deviceRegistryEnrich) out.push({ deviceRegistryEnrich: { attribute: a.deviceRegistryEnrich.attribute!, thingName: a.deviceRegistryEnrich.thingName! } });
    else if (a.deviceShadowEnrich) out.push({ deviceShadowEnrich: { attribute: a.deviceShadowEnrich.attribute!, thingName: a.deviceShadowEnrich.thingName! } });
    else warnings.push(`pipeline ${name}: activity ${activityBody(a).name} has no datalake equivalent and was left out`);
  }
  if (seen.size < activities.length) warnings.push(`pipeline ${name}: ${activities.length - seen.size} activity(ies) not reachable from the channel were left out`);
  return { pipeline: { name, channel, datastore, activities: out }, warnings };
}

export function datasetConfig(d: AnalyticsSpec['datasets'][number]): DatasetConfig {
  return { sql: d.sql, ...(d.schedule ? { schedule: d.schedule } : {}), ...(d.deltaTime ? { deltaTime: d.deltaTime } : {}), versionsToKeep: d.versionsToKeep };
}

export function desiredIotAnalytics(spec: Pick<Spec, 'project' | 'analytics'>, enrichRoleArn: string): Resource[] {
  const a = spec.analytics;
  checkIotAnalyticsNames(a);
  const out: Resource[] = [];
  const enriches = a.pipelines.some((p) => p.activities.some((act) => 'deviceRegistryEnrich' in act || 'deviceShadowEnrich' in act));
  if (enriches) {
    // IoT Analytics enrichment activities call the registry and shadows with a role; it may only read things.
    const thing = `arn:${enrichRoleArn.split(':')[1]}:iot:*:${enrichRoleArn.split(':')[4]}:thing/*`;
    out.push({
      kind: 'role',
      name: iotAnalyticsNames(spec.project).enrichRole,
      config: {
        service: 'iotanalytics.amazonaws.com',
        policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iot:DescribeThing', 'iot:GetThingShadow'], Resource: [thing] }] },
      } satisfies EnrichRoleConfig,
    });
  }
  for (const c of a.channels) out.push({ kind: 'channel', name: c.name, config: { retentionDays: c.retentionDays } satisfies ChannelConfig });
  for (const d of a.datastores) out.push({ kind: 'datastore', name: d.name, config: { format: d.format, retentionDays: d.retentionDays } satisfies DatastoreConfig });
  for (const p of a.pipelines) out.push({ kind: 'pipeline', name: p.name, config: { activities: normaliseActivities(pipelineActivities(p, enrichRoleArn)) } satisfies PipelineConfig });
  for (const d of a.datasets) out.push({ kind: 'dataset', name: d.name, config: datasetConfig(d) });
  return out;
}
