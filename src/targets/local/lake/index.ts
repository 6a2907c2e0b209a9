import type { PipelineDeps } from '../../../iot/pipeline/index.js';
import { watchDataVersion, type Db } from '../store.js';
import { reconcileStorage } from './apply.js';
import { ChannelStore } from './channel-store.js';
import { readLakeConfig } from './config.js';
import { DatasetRunner } from './datasets.js';
import { DatastoreWriter } from './datastore-writer.js';
import { openDuck, type Duck } from './duck.js';
import { WriterLock } from './lock.js';
import { LakePaths } from './paths.js';
import { PipelineRunner, type PipelineRunnerOptions } from './pipeline-runner.js';
import { DatasetScheduler, systemClock, type SchedulerClock } from './scheduler.js';

export { ChannelStore, channelEnd, payloadBytes, type ChannelPosition, type StoredMessage } from './channel-store.js';
export { DatastoreWriter, DatastoreBuffer, RESERVED_COLUMNS, type DatastoreFile, type DatastoreFormat } from './datastore-writer.js';
export { PipelineRunner, initPipelineState, type ReprocessResult, type RunSummary } from './pipeline-runner.js';
export { Catalog, QueryError, bindParameters, type QueryResult, type QueryStats, type TableDescription } from './catalog.js';
export { DatasetRunner, type DatasetRunResult, type DatasetVersion } from './datasets.js';
export { DatasetScheduler, systemClock, type SchedulerClock, type TickResult } from './scheduler.js';
export { analyticsStatus, type AnalyticsStatus } from './status.js';
export { planAnalytics, applyAnalytics, validateAnalytics, reconcileStorage, AnalyticsValidationError, type AnalyticsPlan, type AnalyticsProblem } from './apply.js';
export { readLakeConfig, readLakeResources, analyticsResources, type LakeConfig } from './config.js';
export { WriterLock } from './lock.js';
export { LakePaths } from './paths.js';
export { openDuck } from './duck.js';

/** Failed messages kept per pipeline. */
const MAX_FAILURES = 10_000;

export interface LocalLakeOptions {
  stateDir: string;
  db: Db;
  /** pipeline lambda activities: invoke a function synchronously with a batch of messages. */
  invoke?: PipelineDeps['invoke'];
  /** deviceRegistryEnrich: the registry's view of a thing. */
  lookupThing?: PipelineDeps['lookupThing'];
  /** The Athena database name (spec.athena.database) datasets see datastores under. */
  database?: string;
  clock?: SchedulerClock;
  /** Pipeline runner tuning (flush sizes and intervals). */
  runner?: Pick<PipelineRunnerOptions, 'flushRows' | 'flushBytes' | 'flushIntervalMs' | 'readBatch' | 'pollIntervalMs'>;
  log?: (message: string) => void;
}

/**
 * The local data lake as the daemon runs it: channel storage (the rules runtime's ChannelSink), the
 * pipeline runner, the datastore writer and the dataset scheduler, reconfigured live when
 * `analytics apply` commits a new configuration to the state store.
 *
 *   const lake = new LocalLake({ stateDir, db, invoke, lookupThing, log });
 *   await lake.start();            // before the rules runtime delivers: recovery runs here
 *   rulesRuntime({ channels: lake.channels, ... });
 *   ...
 *   await lake.stop();             // commits buffered rows, releases the lake writer lock
 */
export class LocalLake {
  readonly channels: ChannelStore;
  readonly paths: LakePaths;
  private readonly lock: WriterLock;
  private readonly clock: SchedulerClock;
  private readonly log: (message: string) => void;
  private duck?: Duck;
  private writer?: DatastoreWriter;
  private runner?: PipelineRunner;
  private scheduler?: DatasetScheduler;
  private datasets?: DatasetRunner;
  private stopWatch?: () => void;
  private maintenance?: NodeJS.Timeout;

  constructor(private readonly opts: LocalLakeOptions) {
    this.paths = new LakePaths(opts.stateDir);
    this.channels = new ChannelStore({ db: opts.db, stateDir: opts.stateDir });
    this.lock = new WriterLock(this.paths.lockFile);
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? (() => undefined);
  }

  async start(): Promise<void> {
    // A CLI command that reprocesses while the platform is down holds the lock briefly: wait for it.
    let got = this.lock.tryAcquire();
    for (let waited = 0; !got.acquired && waited < 30_000; waited += 250) {
      await new Promise((r) => setTimeout(r, 250));
      got = this.lock.tryAcquire();
    }
    if (!got.acquired) throw new Error(`the data lake is in use by process ${got.pid} (${this.paths.lockFile}); stop it and start again`);
    const { db, stateDir } = this.opts;
    this.channels.recover();
    this.duck = await openDuck({ threads: 1 });
    this.writer = new DatastoreWriter({ db, stateDir, duck: this.duck.connection, clock: () => this.clock.now() });
    const recovered = this.writer.recover();
    if (recovered.removed.length) this.log(`analytics: removed ${recovered.removed.length} uncommitted datastore file(s) left by a crash`);
    reconcileStorage(db, stateDir);
    this.runner = new PipelineRunner({
      db,
      channels: this.channels,
      writer: this.writer,
      deps: { invoke: this.opts.invoke, lookupThing: this.opts.lookupThing },
      clock: () => this.clock.now(),
      log: this.log,
      ...this.opts.runner,
    });
    this.datasets = new DatasetRunner({ db, stateDir, database: this.opts.database, clock: () => this.clock.now() });
    this.scheduler = new DatasetScheduler({
      db,
      clock: this.clock,
      log: this.log,
      run: async (name, scheduledFor) => {
        const result = await this.datasets!.run(name, { trigger: 'schedule', scheduledFor, previewRows: 0 });
        if (result.status === 'FAILED') this.log(`analytics: dataset ${name} failed: ${result.error}`);
      },
    });
    this.runner.start();
    this.scheduler.start();
    this.stopWatch = watchDataVersion(db, () => this.reload());
    await this.runMaintenance();
    this.maintenance = setInterval(() => void this.runMaintenance(), 3_600_000);
    this.maintenance.unref();
  }

  /** Picks up a new configuration (also called automatically when another process commits). */
  reload(): void {
    try {
      reconcileStorage(this.opts.db, this.opts.stateDir);
    } catch (e) {
      this.log(`analytics: removing deleted resources' data failed: ${(e as Error).message}`);
    }
    this.runner?.reload();
    this.scheduler?.reload();
  }

  async stop(): Promise<void> {
    this.stopWatch?.();
    if (this.maintenance) clearInterval(this.maintenance);
    await this.scheduler?.stop();
    await this.runner?.stop();
    await this.channels.close();
    this.duck?.close();
    this.duck = undefined;
    this.lock.release();
  }

  /** Retention: channel and datastore days older than their retentionDays; old failure records. */
  private async runMaintenance(): Promise<void> {
    try {
      const config = readLakeConfig(this.opts.db);
      const now = this.clock.now();
      for (const c of config.channels.values()) await this.channels.applyRetention(c.name, c.retentionDays, now);
      for (const d of config.datastores.values()) this.writer?.applyRetention(d.name, d.retentionDays, now);
      // Failed messages are kept for inspection, the newest MAX_FAILURES per pipeline (counters keep totals).
      for (const p of config.pipelines.keys())
        this.opts.db
          .prepare(`DELETE FROM lake_pipeline_failures WHERE pipeline = ? AND rowid NOT IN (SELECT rowid FROM lake_pipeline_failures WHERE pipeline = ? ORDER BY failed_at DESC LIMIT ${MAX_FAILURES})`)
          .run(p, p);
    } catch (e) {
      this.log(`analytics: retention failed: ${(e as Error).message}`);
    }
  }
}
