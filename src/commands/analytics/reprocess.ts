import { randomUUID } from 'node:crypto';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { ChannelStore } from '../../targets/local/lake/channel-store.js';
import { lakeWriter, openLakeSession, parseTimeFlag, registryLookup } from '../../targets/local/lake/cli.js';
import { readLakeConfig } from '../../targets/local/lake/config.js';
import { DatastoreWriter } from '../../targets/local/lake/datastore-writer.js';
import { openDuck } from '../../targets/local/lake/duck.js';
import { WriterLock } from '../../targets/local/lake/lock.js';
import { LakePaths } from '../../targets/local/lake/paths.js';
import { PipelineRunner, type ReprocessResult } from '../../targets/local/lake/pipeline-runner.js';
import { UserError } from '../../ui/errors.js';
import { info } from '../../ui/output.js';

export default class AnalyticsReprocess extends BaseCommand<typeof AnalyticsReprocess> {
  static override summary = "Run a channel's stored messages through a pipeline's current activities again (StartPipelineReprocessing).";
  static override description =
    'Replays the raw messages received between --from and --to (default: all) that the pipeline has already passed. ' +
    'Unlike AWS, which appends the output, the local datastore replaces the rows this pipeline wrote for those messages, so reprocessing twice does not duplicate rows. ' +
    'With `iotctl local up` running, the platform does the work and this command waits for it; otherwise it runs here.';
  static override examples = [
    '<%= config.bin %> analytics reprocess telemetry_pipeline',
    '<%= config.bin %> analytics reprocess telemetry_pipeline --from 2030-01-31T00:00:00Z --to 2030-02-01T00:00:00Z',
    '<%= config.bin %> analytics reprocess telemetry_pipeline --from 2h',
  ];
  static override args = { pipeline: Args.string({ description: 'Pipeline name.', required: true }) };
  static override flags = {
    from: Flags.string({ description: 'Oldest receive time to replay: ISO time, epoch ms, or a duration ago (2h, 7d).', env: 'IOTCTL_REPROCESS_FROM' }),
    to: Flags.string({ description: 'Newest receive time to replay (default: no limit).', env: 'IOTCTL_REPROCESS_TO' }),
    timeout: Flags.integer({ description: 'Seconds to wait for a running platform to finish.', default: 600, env: 'IOTCTL_REPROCESS_TIMEOUT' }),
  };

  async run(): Promise<ReprocessResult | { id: string; pipeline: string; status: string }> {
    const session = openLakeSession(this.ctx);
    try {
      const { db, stateDir } = session;
      const name = this.args.pipeline;
      const config = readLakeConfig(db);
      if (!config.pipelines.has(name))
        throw new UserError(`Pipeline "${name}" does not exist on the local platform.`, config.pipelines.size ? `Pipelines: ${[...config.pipelines.keys()].join(', ')}` : 'Apply it with `iotctl analytics apply`.', 'NOT_FOUND');
      const now = Date.now();
      const from = this.flags.from ? parseTimeFlag(this.flags.from, 'from', now) : undefined;
      const to = this.flags.to ? parseTimeFlag(this.flags.to, 'to', now) : undefined;
      if (from !== undefined && to !== undefined && from > to) throw new UserError('--from is after --to.', 'Swap them.');
      const id = randomUUID();

      if (lakeWriter(stateDir) !== undefined) {
        db.prepare(`INSERT INTO lake_reprocessing (id, pipeline, from_ms, to_ms, status, requested_at) VALUES (?, ?, ?, ?, 'QUEUED', ?)`).run(id, name, from ?? null, to ?? null, now);
        info(`Reprocessing ${name} on the running platform (request ${id})...`);
        const deadline = Date.now() + this.flags.timeout * 1000;
        for (;;) {
          const row = db.prepare(`SELECT status, messages, rows_out AS out, failed, error FROM lake_reprocessing WHERE id = ?`).get(id) as
            | { status: string; messages: number | null; out: number | null; failed: number | null; error: string | null }
            | undefined;
          if (row?.status === 'SUCCEEDED') {
            info(`Reprocessed ${row.messages} message(s): ${row.out} row(s) written, ${row.failed} failed.`);
            return { id, pipeline: name, status: 'SUCCEEDED' };
          }
          if (row?.status === 'FAILED') throw new UserError(`Reprocessing failed: ${row.error}`, '`iotctl analytics status` shows the pipeline.', 'REPROCESS_FAILED');
          if (Date.now() > deadline) throw new UserError(`Reprocessing is still running after ${this.flags.timeout}s (request ${id}).`, '`iotctl analytics status` shows when it ends.', 'TIMEOUT');
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
        const runner = new PipelineRunner({
          db,
          channels,
          writer,
          deps: { lookupThing: registryLookup(db) },
        });
        info(`Reprocessing ${name}...`);
        const result = await runner.reprocess(name, { from, to }, id);
        info(`Reprocessed ${result.messages} message(s): ${result.out} row(s) written, ${result.filtered} filtered, ${result.failed} failed; ${result.filesReplaced} file(s) replaced.`);
        return result;
      } catch (e) {
        if (e instanceof UserError) throw e;
        throw new UserError(`Reprocessing failed: ${(e as Error).message}`, '`iotctl analytics status` shows the pipeline.', 'REPROCESS_FAILED');
      } finally {
        duck.close();
        lock.release();
      }
    } finally {
      session.close();
    }
  }
}
