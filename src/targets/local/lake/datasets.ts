import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DatasetRunResult, DatasetTrigger, DatasetVersion } from '../../../ports.js';
import { UserError } from '../../../ui/errors.js';
import type { Db } from '../store.js';
import { JSDuckDBValueConverter } from '@duckdb/node-api';
import { Catalog, plainValue } from './catalog.js';
import { readLakeConfig, type DatasetSpec } from './config.js';
import { ident, lit } from './duck.js';
import { LakePaths } from './paths.js';
import { ensureLakeTables } from './tables.js';

export type { DatasetRunResult, DatasetTrigger, DatasetVersion };

export interface DatasetRunnerOptions {
  db: Db;
  stateDir: string;
  /** The Athena database name the catalog uses. */
  database?: string;
  clock?: () => number;
  threads?: number;
}

/**
 * Dataset content: runs a dataset's SQL over the lake catalog and keeps the result as a version,
 * `lake/datasets/<name>/<version>/content.csv` (CSV, as IoT Analytics delivers content), pruned to
 * `versionsToKeep` (the newest succeeded version is always kept).
 *
 * With `deltaTime`, each datastore the SQL reads is narrowed to rows whose `timeExpression` falls in
 * [end of the previous window, this run's time + offsetSeconds): a negative offset leaves late messages
 * for the next window instead of losing them. The first run's window is open at the start.
 */
export class DatasetRunner {
  private readonly db: Db;
  private readonly paths: LakePaths;
  private readonly clock: () => number;

  constructor(private readonly opts: DatasetRunnerOptions) {
    this.db = opts.db;
    this.paths = new LakePaths(opts.stateDir);
    this.clock = opts.clock ?? Date.now;
    ensureLakeTables(this.db);
  }

  /** The applied dataset, or a NOT_FOUND user error naming the ones that exist. */
  requireDataset(name: string): DatasetSpec {
    const datasets = readLakeConfig(this.db).datasets;
    const dataset = datasets.get(name);
    if (!dataset)
      throw new UserError(
        `Dataset "${name}" does not exist on the local platform.`,
        datasets.size ? `Datasets: ${[...datasets.keys()].join(', ')}` : 'Declare it under analytics.datasets in iotctl.yaml and run `iotctl analytics apply`.',
        'NOT_FOUND',
      );
    return dataset;
  }

  async run(name: string, opts: { trigger?: DatasetTrigger; scheduledFor?: number; previewRows?: number } = {}): Promise<DatasetRunResult> {
    const dataset = this.requireDataset(name);
    const trigger = opts.trigger ?? 'manual';
    const startedAt = this.clock();
    const runTime = opts.scheduledFor ?? startedAt;
    const version = this.newVersion(name, startedAt);
    const window = dataset.deltaTime ? { start: this.lastWindowEnd(name), end: runTime + dataset.deltaTime.offsetSeconds * 1000 } : undefined;
    const base: DatasetVersion = {
      dataset: name,
      version,
      status: 'SUCCEEDED',
      trigger,
      createdAt: startedAt,
      scheduledFor: opts.scheduledFor ?? null,
      windowStart: window?.start ?? null,
      windowEnd: window?.end ?? null,
      rows: null,
      bytes: null,
      elapsedMs: null,
      error: null,
    };
    const staging = join(this.paths.dataset(name), `.${version}.tmp`);
    const file = join(staging, 'content.csv');
    let catalog: Catalog | undefined;
    try {
      // The content file is the only file the dataset's DuckDB may write; its SQL may read only the lake.
      catalog = await Catalog.open({ db: this.db, stateDir: this.opts.stateDir, database: this.opts.database, threads: this.opts.threads, outputFile: file });
      const c = catalog.connection;
      if (dataset.deltaTime && window) await this.narrowToWindow(catalog, dataset, window);
      (await catalog.prepareRead(dataset.sql)).destroySync();
      await catalog.runOne(`CREATE TEMP TABLE dataset_content AS ${stripTrailingSemicolon(dataset.sql)}`);
      mkdirSync(staging, { recursive: true });
      await c.run(`COPY dataset_content TO ${lit(file)} (FORMAT csv, HEADER)`);
      const rows = Number((await c.runAndReadAll(`SELECT count(*) FROM dataset_content`)).getRows()[0]![0]);
      const previewReader = await c.runAndReadAll(`SELECT * FROM dataset_content LIMIT ${Math.max(0, Math.trunc(opts.previewRows ?? 100))}`);
      const types = previewReader.columnTypes();
      const columns = previewReader.columnNames().map((n, i) => ({ name: n, type: types[i]!.toString() }));
      const preview = previewReader.convertRows(JSDuckDBValueConverter).map((r) => r.map((v, i) => plainValue(v, columns[i]!.type)));
      const finalDir = this.paths.datasetVersion(name, version);
      renameSync(staging, finalDir);
      const result: DatasetRunResult = {
        ...base,
        rows,
        bytes: statSync(join(finalDir, 'content.csv')).size,
        elapsedMs: Math.round(this.clock() - startedAt),
        file: join(finalDir, 'content.csv'),
        columns,
        preview,
      };
      this.record(result);
      this.prune(name, dataset.versionsToKeep);
      return result;
    } catch (e) {
      rmSync(staging, { recursive: true, force: true });
      const failed: DatasetRunResult = { ...base, status: 'FAILED', error: (e as Error).message, elapsedMs: Math.round(this.clock() - startedAt), columns: [], preview: [] };
      this.record(failed);
      this.prune(name, dataset.versionsToKeep);
      return failed;
    } finally {
      catalog?.close();
    }
  }

  versions(name: string): DatasetVersion[] {
    return this.db
      .prepare(
        `SELECT dataset, version, status, trigger, created_at AS createdAt, scheduled_for AS scheduledFor, window_start AS windowStart, window_end AS windowEnd,
                rows, bytes, elapsed_ms AS elapsedMs, error
         FROM lake_dataset_versions WHERE dataset = ? ORDER BY created_at DESC, version DESC`,
      )
      .all(name) as DatasetVersion[];
  }

  /** A version's content file: the given version, or $LATEST_SUCCEEDED (the default), or $LATEST. */
  content(name: string, version?: string): { version: DatasetVersion; file: string } {
    this.requireDataset(name);
    const versions = this.versions(name);
    let chosen: DatasetVersion | undefined;
    if (!version || version === '$LATEST_SUCCEEDED') chosen = versions.find((v) => v.status === 'SUCCEEDED');
    else if (version === '$LATEST') chosen = versions[0];
    else chosen = versions.find((v) => v.version === version);
    if (!chosen)
      throw new UserError(
        version && !version.startsWith('$') ? `Dataset "${name}" has no version "${version}".` : `Dataset "${name}" has no content yet.`,
        versions.length ? `Versions: ${versions.map((v) => `${v.version} (${v.status})`).join(', ')}` : `Create content with \`iotctl analytics dataset run ${name}\`.`,
        'NOT_FOUND',
      );
    if (chosen.status !== 'SUCCEEDED') throw new UserError(`Version ${chosen.version} of dataset "${name}" failed: ${chosen.error}`, 'Fix the dataset SQL and run it again.', 'DATASET_FAILED');
    return { version: chosen, file: join(this.paths.datasetVersion(name, chosen.version), 'content.csv') };
  }

  /** Removes a dataset's content (it was deleted from the configuration). */
  deleteDataset(name: string): void {
    this.db.transaction(() => {
      this.db.prepare(`DELETE FROM lake_dataset_versions WHERE dataset = ?`).run(name);
      this.db.prepare(`DELETE FROM lake_dataset_schedules WHERE dataset = ?`).run(name);
      this.db.prepare(`DELETE FROM lake_dataset_missed WHERE dataset = ?`).run(name);
    })();
    rmSync(this.paths.dataset(name), { recursive: true, force: true });
  }

  private async narrowToWindow(catalog: Catalog, dataset: DatasetSpec, window: { start: number | null; end: number }): Promise<void> {
    const c = catalog.connection;
    const datastores = new Set(catalog.tables.filter((t) => t.kind === 'datastore').map((t) => t.name));
    const read = (await catalog.referencedTables(dataset.sql)).filter((t) => datastores.has(t));
    await c.run(`CREATE SCHEMA IF NOT EXISTS delta_window`);
    const expr = dataset.deltaTime!.timeExpression;
    const bounds = [window.start !== null ? `(${expr}) >= epoch_ms(${Math.trunc(window.start)})` : undefined, `(${expr}) < epoch_ms(${Math.trunc(window.end)})`].filter(Boolean).join(' AND ');
    for (const t of read) await catalog.runOne(`CREATE OR REPLACE VIEW delta_window.${ident(t)} AS SELECT * FROM ${ident(catalog.database)}.${ident(t)} WHERE ${bounds}`);
    await c.run(`SET search_path = ${lit(`delta_window,${catalog.database},main`)}`);
  }

  private lastWindowEnd(name: string): number | null {
    const row = this.db.prepare(`SELECT window_end FROM lake_dataset_versions WHERE dataset = ? AND status = 'SUCCEEDED' AND window_end IS NOT NULL ORDER BY created_at DESC LIMIT 1`).pluck().get(name) as
      | number
      | undefined;
    return row ?? null;
  }

  private newVersion(name: string, at: number): string {
    const stamp = new Date(at).toISOString().replace(/[-:]/g, '').replace('.', '');
    let version = stamp;
    for (let n = 2; this.db.prepare(`SELECT 1 FROM lake_dataset_versions WHERE dataset = ? AND version = ?`).get(name, version) || existsSync(this.paths.datasetVersion(name, version)); n++)
      version = `${stamp}-${n}`;
    return version;
  }

  private record(v: DatasetVersion): void {
    this.db
      .prepare(
        `INSERT INTO lake_dataset_versions (dataset, version, status, trigger, created_at, scheduled_for, window_start, window_end, rows, bytes, elapsed_ms, error)
         VALUES (@dataset, @version, @status, @trigger, @createdAt, @scheduledFor, @windowStart, @windowEnd, @rows, @bytes, @elapsedMs, @error)`,
      )
      .run({ ...v });
  }

  /** Keeps the newest `keep` versions, and always the newest succeeded one (content users rely on). */
  private prune(name: string, keep: number): void {
    const versions = this.versions(name);
    const latestSucceeded = versions.find((v) => v.status === 'SUCCEEDED')?.version;
    const doomed = versions.slice(keep).filter((v) => v.version !== latestSucceeded);
    for (const v of doomed) {
      this.db.prepare(`DELETE FROM lake_dataset_versions WHERE dataset = ? AND version = ?`).run(name, v.version);
      rmSync(this.paths.datasetVersion(name, v.version), { recursive: true, force: true });
    }
    // Staging directories of runs that crashed (old enough that no run still writes them).
    for (const entry of safeReaddir(this.paths.dataset(name))) {
      const path = join(this.paths.dataset(name), entry);
      if (entry.startsWith('.') && entry.endsWith('.tmp') && Date.now() - statSync(path).mtimeMs > 3_600_000) rmSync(path, { recursive: true, force: true });
    }
  }
}

function stripTrailingSemicolon(sql: string): string {
  return sql.trim().replace(/;\s*$/, '');
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
