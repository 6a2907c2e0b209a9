import type { Resource } from '../../../iot/plan/index.js';
import type { AnalyticsSpec } from '../../../spec/schema.js';
import type { Db } from '../store.js';
import { ensureLakeTables } from './tables.js';

export type ChannelSpec = AnalyticsSpec['channels'][number];
export type PipelineSpec = AnalyticsSpec['pipelines'][number];
export type DatastoreSpec = AnalyticsSpec['datastores'][number];
export type DatasetSpec = AnalyticsSpec['datasets'][number];

export type LakeKind = 'channel' | 'datastore' | 'pipeline' | 'dataset';

/** The analytics configuration the lake runs: what `analytics apply` last stored. */
export interface LakeConfig {
  channels: Map<string, ChannelSpec & { appliedAt: number }>;
  datastores: Map<string, DatastoreSpec & { appliedAt: number }>;
  pipelines: Map<string, PipelineSpec & { appliedAt: number }>;
  datasets: Map<string, DatasetSpec & { appliedAt: number }>;
}

/** The plan's view of one resource: its name plus the fields that define it. */
export function analyticsResources(spec: AnalyticsSpec): Resource[] {
  return [
    ...spec.channels.map((c) => ({ kind: 'channel', name: c.name, config: strip({ retentionDays: c.retentionDays }) })),
    ...spec.datastores.map((d) => ({ kind: 'datastore', name: d.name, config: strip({ format: d.format, retentionDays: d.retentionDays }) })),
    ...spec.pipelines.map((p) => ({ kind: 'pipeline', name: p.name, config: strip({ channel: p.channel, activities: p.activities, datastore: p.datastore }) })),
    ...spec.datasets.map((d) => ({
      kind: 'dataset',
      name: d.name,
      config: strip({ sql: d.sql, schedule: d.schedule, deltaTime: d.deltaTime, versionsToKeep: d.versionsToKeep }),
    })),
  ];
}

export function readLakeResources(db: Db): Resource[] {
  ensureLakeTables(db);
  const rows = db.prepare(`SELECT kind, name, config FROM lake_resources ORDER BY CASE kind WHEN 'channel' THEN 0 WHEN 'datastore' THEN 1 WHEN 'pipeline' THEN 2 ELSE 3 END, name`).all() as {
    kind: string;
    name: string;
    config: string;
  }[];
  return rows.map((r) => ({ kind: r.kind, name: r.name, config: JSON.parse(r.config) as unknown }));
}

export function readLakeConfig(db: Db): LakeConfig {
  ensureLakeTables(db);
  const rows = db.prepare(`SELECT kind, name, config, applied_at AS appliedAt FROM lake_resources`).all() as { kind: LakeKind; name: string; config: string; appliedAt: number }[];
  const config: LakeConfig = { channels: new Map(), datastores: new Map(), pipelines: new Map(), datasets: new Map() };
  for (const r of rows) {
    const value: Record<string, unknown> = { ...(JSON.parse(r.config) as object), name: r.name, appliedAt: r.appliedAt };
    if (r.kind === 'channel') config.channels.set(r.name, value as unknown as ChannelSpec & { appliedAt: number });
    else if (r.kind === 'datastore') config.datastores.set(r.name, { format: 'parquet', ...value } as unknown as DatastoreSpec & { appliedAt: number });
    else if (r.kind === 'pipeline') config.pipelines.set(r.name, { activities: [], ...value } as unknown as PipelineSpec & { appliedAt: number });
    else if (r.kind === 'dataset') config.datasets.set(r.name, { versionsToKeep: 1, ...value } as unknown as DatasetSpec & { appliedAt: number });
  }
  return config;
}

/** Drops undefined fields so stored and desired configs compare equal. */
function strip<T extends object>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}
