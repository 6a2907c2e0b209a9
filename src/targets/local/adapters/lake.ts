import { randomUUID } from 'node:crypto';
import { JSDuckDBValueConverter } from '@duckdb/node-api';
import type { AnalyticsPort, AnalyticsResource, LakeQuery, LakeQueryPort, QueryStats, TableDescription } from '../../../ports.js';
import type { PlanItem } from '../../../iot/plan/index.js';
import type { Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import type { Db } from '../store.js';
import { applyAnalytics, planAnalytics, reconcileStorage } from '../lake/apply.js';
import { bindParameters, Catalog, plainValue } from '../lake/catalog.js';
import { ChannelStore } from '../lake/channel-store.js';
import { lakeWriter, registryLookup } from '../lake/cli.js';
import { readLakeConfig, readLakeResources } from '../lake/config.js';
import { DatasetRunner } from '../lake/datasets.js';
import { DatastoreWriter } from '../lake/datastore-writer.js';
import { openDuck } from '../lake/duck.js';
import { WriterLock } from '../lake/lock.js';
import { LakePaths } from '../lake/paths.js';
import { PipelineRunner } from '../lake/pipeline-runner.js';
import { analyticsStatus } from '../lake/status.js';

interface LakeDeps {
  db: () => Db;
  stateDir: string;
  spec: () => Spec;
}

/** `athena run` and `athena tables` on DuckDB over the local lake, as Athena runs over S3. */
export class LocalLakeQueryPort implements LakeQueryPort {
  private catalog?: Promise<Catalog>;

  constructor(private readonly deps: LakeDeps) {}

  private open(): Promise<Catalog> {
    return (this.catalog ??= Catalog.open({ db: this.deps.db(), stateDir: this.deps.stateDir, database: this.deps.spec().athena.database }));
  }

  async tables(): Promise<TableDescription[]> {
    return (await this.open()).describe();
  }

  /** Columns first, then rows chunk by chunk (memory stays flat), then the scan statistics. */
  async run(sql: string, opts: { params?: readonly string[]; signal?: AbortSignal }): Promise<LakeQuery> {
    const catalog = await this.open();
    const text = bindParameters(sql, opts.params ?? []);
    const started = performance.now();
    // Materialized, like Athena's result set (a streamed result ran small aggregates measurably slower).
    const result = await catalog.runRead(text);
    // The result is materialized: the query has run. Read its profile before another statement overwrites it.
    const elapsedMs = performance.now() - started;
    const scanned = await catalog.lastScan();
    const types = result.columnTypes();
    const columns = result.columnNames().map((name, i) => ({ name, type: types[i]!.toString() }));
    let stats: QueryStats | undefined;
    let total = 0;
    const materialized = result;
    async function* rows(): AsyncIterable<unknown[]> {
      for (;;) {
        if (opts.signal?.aborted) break;
        const chunk = await materialized.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        total += chunk.rowCount;
        for (const row of chunk.convertRows(JSDuckDBValueConverter)) yield row.map((v, i) => plainValue(v, columns[i]!.type));
      }
      stats = { rows: total, elapsedMs, ...scanned };
    }
    return {
      columns,
      rows: rows(),
      stats: () => {
        if (!stats) throw new Error('LakeQuery.stats() is known once every row has been read');
        return stats;
      },
    };
  }

  async close(): Promise<void> {
    const c = await this.catalog?.catch(() => undefined);
    c?.close();
  }
}

/** Channels, pipelines, datastores and datasets of the local lake. */
export class LocalAnalyticsPort implements AnalyticsPort {
  constructor(private readonly deps: LakeDeps) {}

  async migrate(): Promise<never> {
    throw new UserError('`analytics migrate` moves an AWS account off IoT Analytics; the local platform has nothing to migrate.', 'Pass --target aws (or set `target: aws` in iotctl.yaml).', 'TARGET_UNAVAILABLE');
  }

  async plan(opts: { prune?: boolean }) {
    return planAnalytics(this.deps.db(), this.deps.stateDir, this.deps.spec(), opts);
  }

  async apply(items: PlanItem[]): Promise<void> {
    const db = this.deps.db();
    applyAnalytics(db, items);
    if (items.some((i) => i.action === 'delete')) removeDeletedData(db, this.deps.stateDir);
  }

  async list(): Promise<AnalyticsResource[]> {
    return readLakeResources(this.deps.db()) as AnalyticsResource[];
  }

  async status() {
    return analyticsStatus(this.deps.db(), this.deps.stateDir);
  }

  private datasets(): DatasetRunner {
    return new DatasetRunner({ db: this.deps.db(), stateDir: this.deps.stateDir, database: this.deps.spec().athena.database });
  }

  async runDataset(name: string, opts: { previewRows?: number }) {
    return this.datasets().run(name, { trigger: 'manual', previewRows: opts.previewRows });
  }

  async datasetVersions(name: string) {
    const runner = this.datasets();
    runner.requireDataset(name);
    return runner.versions(name);
  }

  async datasetContent(name: string, version?: string) {
    return this.datasets().content(name, version);
  }

  /**
   * A running platform does the work (this waits for it); otherwise it runs here under the lake writer lock.
   * Unlike AWS, which appends, the datastore replaces the rows this pipeline wrote for those messages.
   */
  async reprocess(name: string, opts: { from?: number; to?: number; timeoutSeconds: number; progress?: (line: string) => void }) {
    const { stateDir } = this.deps;
    const db = this.deps.db();
    const say = opts.progress ?? (() => undefined);
    const config = readLakeConfig(db);
    if (!config.pipelines.has(name))
      throw new UserError(`Pipeline "${name}" does not exist on the local platform.`, config.pipelines.size ? `Pipelines: ${[...config.pipelines.keys()].join(', ')}` : 'Apply it with `iotctl analytics apply`.', 'NOT_FOUND');
    const { from, to } = opts;
    const id = randomUUID();

    if (lakeWriter(stateDir) !== undefined) {
      db.prepare(`INSERT INTO lake_reprocessing (id, pipeline, from_ms, to_ms, status, requested_at) VALUES (?, ?, ?, ?, 'QUEUED', ?)`).run(id, name, from ?? null, to ?? null, Date.now());
      say(`Reprocessing ${name} on the running platform (request ${id})...`);
      const deadline = Date.now() + opts.timeoutSeconds * 1000;
      for (;;) {
        const row = db.prepare(`SELECT status, messages, rows_out AS out, failed, error FROM lake_reprocessing WHERE id = ?`).get(id) as
          | { status: string; messages: number | null; out: number | null; failed: number | null; error: string | null }
          | undefined;
        if (row?.status === 'SUCCEEDED') {
          say(`Reprocessed ${row.messages} message(s): ${row.out} row(s) written, ${row.failed} failed.`);
          return { id, pipeline: name, status: 'SUCCEEDED' };
        }
        if (row?.status === 'FAILED') throw new UserError(`Reprocessing failed: ${row.error}`, '`iotctl analytics status` shows the pipeline.', 'REPROCESS_FAILED');
        if (Date.now() > deadline) throw new UserError(`Reprocessing is still running after ${opts.timeoutSeconds}s (request ${id}).`, '`iotctl analytics status` shows when it ends.', 'TIMEOUT');
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    // No daemon: take the lake writer lock and do it here. Lambda activities need the platform's function
    // runner; failing every message instead would replace good rows with failures.
    if (config.pipelines.get(name)!.activities.some((a) => 'lambda' in a))
      throw new UserError(`Pipeline "${name}" has a lambda activity, which needs the running platform.`, 'Start it with `iotctl local up`, then run this again.', 'PLATFORM_NOT_RUNNING');
    const lock = new WriterLock(new LakePaths(stateDir).lockFile);
    const got = lock.tryAcquire();
    if (!got.acquired) throw new UserError(`The data lake is in use by process ${got.pid}.`, 'Wait for it to finish, or stop it, then run this again.', 'LAKE_BUSY');
    const duck = await openDuck({ threads: 2 });
    try {
      const channels = new ChannelStore({ db, stateDir });
      channels.recover();
      const writer = new DatastoreWriter({ db, stateDir, duck: duck.connection });
      writer.recover();
      const runner = new PipelineRunner({ db, channels, writer, deps: { lookupThing: registryLookup(db) } });
      say(`Reprocessing ${name}...`);
      const result = await runner.reprocess(name, { from, to }, id);
      say(`Reprocessed ${result.messages} message(s): ${result.out} row(s) written, ${result.filtered} filtered, ${result.failed} failed; ${result.filesReplaced} file(s) replaced.`);
      return result;
    } catch (e) {
      if (e instanceof UserError) throw e;
      throw new UserError(`Reprocessing failed: ${(e as Error).message}`, '`iotctl analytics status` shows the pipeline.', 'REPROCESS_FAILED');
    } finally {
      duck.close();
      lock.release();
    }
  }
}

/** Deletes pruned resources' data unless the daemon runs (it does so itself when it sees the change). */
export function removeDeletedData(db: Db, stateDir: string): void {
  if (lakeWriter(stateDir) !== undefined) return;
  const lock = new WriterLock(new LakePaths(stateDir).lockFile);
  if (!lock.tryAcquire().acquired) return;
  try {
    reconcileStorage(db, stateDir);
  } finally {
    lock.release();
  }
}
