import { BaseCommand } from '../../base-command.js';
import { LocalFunctions, type DeployedFunction } from '../../targets/local/functions.js';
import { ensureCheckpointTable } from '../../targets/local/event-source-mapping.js';
import { openStore } from '../../targets/local/store.js';
import { LocalStreams } from '../../targets/local/stream.js';
import { printTable } from '../../ui/output.js';

export interface FunctionListRow extends Omit<DeployedFunction, 'environment'> {
  environment: Record<string, string>;
  /** Records of the event source stream not processed yet (null without an event source or stream). */
  backlog: number | null;
  declared: boolean;
}

export default class LambdaList extends BaseCommand<typeof LambdaList> {
  static override summary = 'List deployed functions, their event source mappings and backlog.';
  static override examples = ['<%= config.bin %> lambda list', '<%= config.bin %> lambda list --json'];

  async run(): Promise<FunctionListRow[]> {
    const db = openStore(this.ctx.paths.stateDir);
    try {
      const fns = new LocalFunctions(db, { region: this.ctx.spec.spec.region });
      const streams = new LocalStreams(db, { region: this.ctx.spec.spec.region });
      ensureCheckpointTable(db);
      const checkpoint = db.prepare('SELECT sequence_number FROM lambda_esm_checkpoints WHERE function_name = ? AND stream = ? AND shard_id = ?');
      const declared = new Set(this.ctx.spec.spec.functions.map((f) => f.name));
      const rows = fns.list().map((f): FunctionListRow => {
        let backlog: number | null = null;
        const es = f.eventSource;
        if (es && streams.hasStream(es.stream)) {
          backlog = 0;
          for (const shardId of streams.listShards(es.stream)) {
            const cp = checkpoint.get(f.name, es.stream, shardId) as { sequence_number: string } | undefined;
            // A shard without a checkpoint is all backlog for TRIM_HORIZON; LATEST pins one on its first poll.
            backlog += cp || es.startingPosition !== 'LATEST' ? streams.countAfter(es.stream, shardId, cp?.sequence_number) : 0;
          }
        }
        return { ...f, backlog, declared: declared.has(f.name) };
      });
      if (!this.jsonEnabled())
        await printTable(rows, [
          { header: 'Function', get: (r) => r.name },
          { header: 'Template', get: (r) => r.template },
          { header: 'Code', get: (r) => r.sha256.slice(0, 12) },
          { header: 'Timeout', get: (r) => `${r.timeoutSeconds}s` },
          { header: 'Memory', get: (r) => `${r.memoryMb} MB` },
          { header: 'Event source', get: (r) => (r.eventSource ? `${r.eventSource.stream} (batch ${r.eventSource.batchSize}, ${r.eventSource.startingPosition})` : '') },
          { header: 'Backlog', get: (r) => r.backlog ?? '' },
          { header: 'In spec', get: (r) => (r.declared ? 'yes' : 'no') },
          { header: 'Updated', get: (r) => r.updatedAt },
        ]);
      return rows;
    } finally {
      db.close();
    }
  }
}
