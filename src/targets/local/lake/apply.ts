import { rmSync } from 'node:fs';
import { analyticsSpecCheck } from '../../../iot/pipeline/spec-check.js';
import { deepEqual, planResources, type PlanItem } from '../../../iot/plan/index.js';
import type { Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import type { Db } from '../store.js';
import { Catalog } from './catalog.js';
import { channelEnd } from './channel-store.js';
import { analyticsResources, readLakeConfig, readLakeResources } from './config.js';
import { LakePaths } from './paths.js';
import { initPipelineState } from './pipeline-runner.js';
import { initDatasetSchedule } from './scheduler.js';
import { ensureLakeTables } from './tables.js';

export interface AnalyticsProblem {
  /** Spec path, e.g. analytics.datasets[0].sql */
  path: string;
  message: string;
  hint?: string;
}

export interface AnalyticsPlan {
  items: PlanItem[];
  /** Things apply cannot check yet (e.g. columns of a datastore that has no data). */
  warnings: string[];
}

/** Refuses a spec whose analytics section cannot run, listing every problem with its spec path. */
export class AnalyticsValidationError extends UserError {
  constructor(readonly problems: AnalyticsProblem[]) {
    super(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in the analytics section:\n` +
        problems.map((p) => `  ${p.path}: ${p.message}${p.hint ? `\n      hint: ${p.hint}` : ''}`).join('\n'),
      'Fix iotctl.yaml, then run `iotctl analytics apply --dry-run` to check.',
      'ANALYTICS_INVALID',
    );
  }
}

/**
 * Checks that need the lake: dataset SQL binds against the desired datastores (DuckDB EXPLAIN), reads
 * only datastores and channels, and its deltaTime expression is usable; datastore formats do not change.
 */
export async function validateAnalytics(db: Db, stateDir: string, spec: Spec): Promise<{ problems: AnalyticsProblem[]; warnings: string[] }> {
  ensureLakeTables(db);
  const problems: AnalyticsProblem[] = analyticsSpecCheck(spec).map((p) => ({ path: formatPath(p.path), message: p.message, hint: p.hint }));
  const warnings: string[] = [];
  const a = spec.analytics;
  const applied = readLakeConfig(db);
  a.datastores.forEach((d, i) => {
    const before = applied.datastores.get(d.name);
    const hasFiles = db.prepare(`SELECT 1 FROM lake_datastore_files WHERE datastore = ? LIMIT 1`).get(d.name) !== undefined;
    if (before && before.format !== d.format && hasFiles)
      problems.push({
        path: `analytics.datastores[${i}].format`,
        message: `datastore "${d.name}" holds ${before.format} files; its format cannot change to ${d.format} (as on AWS)`,
        hint: 'keep the format, or use a new datastore name (delete the old one with --prune, which deletes its data)',
      });
  });
  if (!a.datasets.length) return { problems, warnings };

  const catalog = await Catalog.open({
    db,
    stateDir,
    database: spec.athena.database,
    datastores: a.datastores.map((d) => ({ name: d.name, format: d.format })),
    channels: a.channels.map((c) => c.name),
  });
  try {
    const datastores = new Set(a.datastores.map((d) => d.name.toLowerCase()));
    const channels = new Set(a.channels.map((c) => c.name.toLowerCase()));
    const hasColumns = (name: string) => db.prepare(`SELECT 1 FROM lake_datastore_columns WHERE datastore = ? LIMIT 1`).get(name) !== undefined;
    // Rows of `iotctl check`'s canary ("iotctl_check": true) carry none of the devices' fields: a datastore that
    // holds only those has no data to check a dataset's columns against yet.
    const onlyCanaries = async (name: string): Promise<boolean> => {
      if (db.prepare(`SELECT 1 FROM lake_datastore_columns WHERE datastore = ? AND name = 'iotctl_check'`).get(name) === undefined) return false;
      try {
        const result = await catalog.runRead(`SELECT count(*) FROM "${name.replace(/"/g, '""')}" WHERE iotctl_check IS DISTINCT FROM true`);
        const chunk = await result.fetchChunk();
        return Number(chunk?.getRows()[0]?.[0] ?? 1) === 0;
      } catch {
        return false;
      }
    };
    for (const [i, d] of a.datasets.entries()) {
      const path = `analytics.datasets[${i}]`;
      let tables: string[];
      try {
        tables = await catalog.referencedTables(d.sql);
      } catch (e) {
        problems.push({ path: `${path}.sql`, message: `invalid SQL: ${firstLine((e as Error).message)}` });
        continue;
      }
      const unknown = tables.filter((t) => !datastores.has(t.toLowerCase()) && !(t.toLowerCase().startsWith('channels.') && channels.has(t.toLowerCase().slice(9))));
      if (unknown.length) {
        problems.push({
          path: `${path}.sql`,
          message: `reads ${unknown.map((t) => `"${t}"`).join(', ')}, which ${unknown.length === 1 ? 'is not a datastore' : 'are not datastores'}`,
          hint: a.datastores.length ? `datastores: ${a.datastores.map((x) => x.name).join(', ')}` : 'declare the datastore under analytics.datastores',
        });
        continue;
      }
      const empty: string[] = [];
      for (const t of tables.filter((x) => datastores.has(x.toLowerCase()))) {
        const name = a.datastores.find((x) => x.name.toLowerCase() === t.toLowerCase())!.name;
        if (!hasColumns(name) || (await onlyCanaries(name))) empty.push(t);
      }
      const problem = await catalog.check(d.sql);
      if (problem) {
        // Without data, a datastore's payload columns are unknown: a missing column is not an error yet.
        if (/^Binder Error/.test(problem) && empty.length)
          warnings.push(`dataset ${d.name}: ${empty.join(', ')} has no data yet, so the columns its SQL names are checked once data arrives (the syntax and tables are fine).`);
        else problems.push({ path: `${path}.sql`, message: firstLine(problem), hint: 'dataset SQL runs on DuckDB over the lake; `iotctl athena tables` lists tables and columns' });
        continue;
      }
      if (d.deltaTime) {
        for (const t of tables.filter((x) => datastores.has(x.toLowerCase()))) {
          const bad = await catalog.check(`SELECT * FROM ${t} WHERE (${d.deltaTime.timeExpression}) >= TIMESTAMP '2000-01-01 00:00:00'`);
          if (!bad) continue;
          if (/^Binder Error/.test(bad) && empty.includes(t)) warnings.push(`dataset ${d.name}: deltaTime.timeExpression is checked once ${t} has data.`);
          else
            problems.push({
              path: `${path}.deltaTime.timeExpression`,
              message: `does not give a timestamp over ${t}: ${firstLine(bad)}`,
              hint: 'use a timestamp column (__received_at) or convert epoch seconds with from_unixtime(column)',
            });
        }
      }
    }
  } finally {
    catalog.close();
  }
  return { problems, warnings };
}

/** The plan: desired analytics resources against the ones the local platform runs. */
export async function planAnalytics(db: Db, stateDir: string, spec: Spec, opts: { prune?: boolean } = {}): Promise<AnalyticsPlan> {
  const { problems, warnings } = await validateAnalytics(db, stateDir, spec);
  if (problems.length) throw new AnalyticsValidationError(problems);
  return { items: planResources(analyticsResources(spec.analytics), readLakeResources(db), opts), warnings };
}

/**
 * Stores the plan's changes in one transaction; a running daemon notices the commit and converges
 * (new pipelines start at their channel's end, as on AWS; deleted resources' data is removed).
 */
export function applyAnalytics(db: Db, items: PlanItem[], now = Date.now()): void {
  ensureLakeTables(db);
  const upsert = db.prepare(
    `INSERT INTO lake_resources (kind, name, config, applied_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (kind, name) DO UPDATE SET config = excluded.config, applied_at = excluded.applied_at`,
  );
  const remove = db.prepare(`DELETE FROM lake_resources WHERE kind = ? AND name = ?`);
  db.transaction(() => {
    for (const item of items) {
      if (item.action === 'noop') continue;
      if (item.action === 'delete') {
        remove.run(item.kind, item.name);
        if (item.kind === 'pipeline') {
          db.prepare(`DELETE FROM lake_pipelines WHERE pipeline = ?`).run(item.name);
          db.prepare(`DELETE FROM lake_pipeline_failures WHERE pipeline = ?`).run(item.name);
        }
        if (item.kind === 'dataset') {
          db.prepare(`DELETE FROM lake_dataset_schedules WHERE dataset = ?`).run(item.name);
          db.prepare(`DELETE FROM lake_dataset_missed WHERE dataset = ?`).run(item.name);
        }
        continue;
      }
      upsert.run(item.kind, item.name, JSON.stringify(item.desired), now);
      const desired = item.desired as Record<string, unknown>;
      const actual = item.actual as Record<string, unknown> | undefined;
      if (item.kind === 'pipeline' && (item.action === 'create' || actual?.channel !== desired.channel))
        initPipelineState(db, item.name, String(desired.channel), channelEnd(db, String(desired.channel)), now);
      if (item.kind === 'dataset') {
        if (typeof desired.schedule === 'string') {
          if (item.action === 'create' || !deepEqual(actual?.schedule, desired.schedule)) initDatasetSchedule(db, item.name, desired.schedule, now, now);
        } else db.prepare(`DELETE FROM lake_dataset_schedules WHERE dataset = ?`).run(item.name);
      }
    }
  })();
}

/**
 * Deletes stored data of channels, datastores and datasets that the configuration no longer has
 * (`apply --prune`). Run by whoever holds the lake writer lock: the daemon, or the CLI when it is down.
 */
export function reconcileStorage(db: Db, stateDir: string): { channels: string[]; datastores: string[]; datasets: string[] } {
  ensureLakeTables(db);
  const config = readLakeConfig(db);
  const paths = new LakePaths(stateDir);
  const gone = (sql: string, keep: Map<string, unknown>) => (db.prepare(sql).pluck().all() as string[]).filter((n) => !keep.has(n));
  const channels = gone(`SELECT channel FROM lake_channel_segments UNION SELECT channel FROM lake_channel_stats`, config.channels);
  const datastores = gone(`SELECT datastore FROM lake_datastore_files UNION SELECT datastore FROM lake_datastore_columns`, config.datastores);
  const datasets = gone(`SELECT dataset FROM lake_dataset_versions`, config.datasets);
  db.transaction(() => {
    for (const c of channels) for (const t of ['lake_channel_segments', 'lake_channel_ids', 'lake_channel_stats']) db.prepare(`DELETE FROM ${t} WHERE channel = ?`).run(c);
    for (const d of datastores) for (const t of ['lake_datastore_files', 'lake_datastore_columns', 'lake_schema_changes']) db.prepare(`DELETE FROM ${t} WHERE datastore = ?`).run(d);
    for (const d of datasets) for (const t of ['lake_dataset_versions', 'lake_dataset_schedules', 'lake_dataset_missed']) db.prepare(`DELETE FROM ${t} WHERE dataset = ?`).run(d);
  })();
  for (const c of channels) rmSync(paths.channel(c), { recursive: true, force: true });
  for (const d of datastores) rmSync(paths.datastore(d), { recursive: true, force: true });
  for (const d of datasets) rmSync(paths.dataset(d), { recursive: true, force: true });
  return { channels, datastores, datasets };
}

function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${k}` : k;
  return out;
}

function firstLine(message: string): string {
  return message.split('\n').find((l) => l.trim())?.trim() ?? message;
}
