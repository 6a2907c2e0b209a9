import { randomUUID } from 'node:crypto';
import { JSDuckDBValueConverter } from '@duckdb/node-api';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AnalyticsPort, AnalyticsResource, LakeQuery, LakeQueryPort, LakeTrace, QueryStats, TableDescription } from '../../../ports.js';
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
import { ensureLakeTables } from '../lake/tables.js';
import { fileList, lit } from '../lake/duck.js';
import { pause } from '../../pause.js';
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
   * Finds the message in a channel's committed segments (received since `since`), asks the running platform
   * to flush every pipeline (lake_flush_requests), then looks for its id in the datastore files that cover it.
   */
  async trace(find: { field: string; value: string }, opts: { since: number; deadline: number; signal?: AbortSignal }): Promise<LakeTrace | undefined> {
    const db = this.deps.db();
    ensureLakeTables(db);
    const root = new LakePaths(this.deps.stateDir).root;
    const config = readLakeConfig(db);
    // DuckDB loads while the message travels, not after the flush.
    const duckLoading = config.pipelines.size ? import('@duckdb/node-api').catch(() => undefined) : undefined;
    let found: { channel: string; messageId: string; receivedAt: number } | undefined;
    for (;;) {
      for (const channel of config.channels.keys()) if ((found = findInChannel(db, root, channel, find, opts.since))) break;
      if (found || Date.now() >= opts.deadline || opts.signal?.aborted) break;
      await pause(25, opts.signal);
    }
    if (!found) return undefined;
    const pipelines = [...config.pipelines.values()].filter((p) => p.channel === found.channel);
    const id = randomUUID();
    db.prepare(`INSERT INTO lake_flush_requests (id, requested_at) VALUES (?, ?)`).run(id, Date.now());
    const flushed = db.prepare(`SELECT done_at FROM lake_flush_requests WHERE id = ?`).pluck();
    while (flushed.get(id) == null && Date.now() < opts.deadline && !opts.signal?.aborted) await pause(20, opts.signal);
    if (flushed.get(id) == null) {
      const reason = lakeWriter(this.deps.stateDir) === undefined ? 'the platform is not running, so no pipeline flushed' : 'the pipelines did not flush before the time-out';
      return { ...found, pipelines: pipelines.map((p) => ({ pipeline: p.name, datastore: p.datastore, stored: false, reason })) };
    }
    await duckLoading;
    const out: LakeTrace['pipelines'] = [];
    let duck: Awaited<ReturnType<typeof openDuck>> | undefined;
    try {
      for (const p of pipelines) {
        const files = (db
          .prepare(`SELECT file FROM lake_datastore_files WHERE datastore = ? AND pipeline = ? AND min_received <= ? AND max_received >= ?`)
          .pluck()
          .all(p.datastore, p.name, found.receivedAt, found.receivedAt) as string[]).map((f) => join(root, f));
        let stored = false;
        if (files.length) {
          duck ??= await openDuck({ threads: 1 });
          const format = config.datastores.get(p.datastore)?.format === 'json' ? `read_json(${fileList(files)}, format = 'newline_delimited')` : `read_parquet(${fileList(files)}, union_by_name = true)`;
          const reader = await duck.connection.runAndReadAll(`SELECT count(*) FROM ${format} WHERE __message_id = ${lit(found.messageId)}`);
          stored = Number(reader.getRows()[0]?.[0] ?? 0) > 0;
        }
        if (stored) {
          out.push({ pipeline: p.name, datastore: p.datastore, stored });
          continue;
        }
        const failure = db.prepare(`SELECT activity, activity_type AS type, reason FROM lake_pipeline_failures WHERE pipeline = ? AND message_id = ?`).get(p.name, found.messageId) as
          | { activity: number; type: string; reason: string }
          | undefined;
        const lastError = db.prepare(`SELECT last_error FROM lake_pipelines WHERE pipeline = ?`).pluck().get(p.name) as string | null | undefined;
        const reason = failure ? `activity ${failure.activity} (${failure.type}) failed: ${failure.reason}` : lastError ? `pipeline ${p.name}: ${lastError}` : `pipeline ${p.name} dropped it (a filter activity)`;
        out.push({ pipeline: p.name, datastore: p.datastore, stored, reason });
      }
    } finally {
      duck?.close();
    }
    return { ...found, pipelines: out };
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

/** The first committed message of `channel` received since `since` whose JSON payload has field = value. */
function findInChannel(db: Db, root: string, channel: string, find: { field: string; value: string }, since: number): { channel: string; messageId: string; receivedAt: number } | undefined {
  const segments = db.prepare(`SELECT file, committed_bytes AS bytes FROM lake_channel_segments WHERE channel = ? AND committed_bytes > 0 AND max_received >= ? ORDER BY seq`).all(channel, since) as { file: string; bytes: number }[];
  for (const s of segments) {
    let text: string;
    try {
      text = readFileSync(join(root, s.file)).subarray(0, s.bytes).toString('utf8');
    } catch {
      continue; // removed by retention meanwhile
    }
    // Cheap test first: only lines that mention the value are parsed.
    for (const line of text.split('\n')) {
      if (!line.includes(find.value)) continue;
      try {
        const m = JSON.parse(line) as { message_id: string; received_at: number; payload: string; payload_encoding?: string };
        if (m.payload_encoding === 'base64' || m.received_at < since) continue;
        const doc = JSON.parse(m.payload) as Record<string, unknown>;
        if (doc && doc[find.field] === find.value) return { channel, messageId: m.message_id, receivedAt: m.received_at };
      } catch {
        // a line that is not a JSON object: not ours
      }
    }
  }
  return undefined;
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
