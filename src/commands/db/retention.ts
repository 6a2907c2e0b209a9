import { Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { missingSchemaError, specIfPresent, withDatabase } from '../../db/cli.js';
import { formatDuration, parseDuration } from '../../db/duration.js';
import { runRetention, type RetentionResult } from '../../db/retention.js';
import { printLine, printTable } from '../../ui/output.js';

export default class DbRetention extends BaseCommand<typeof DbRetention> {
  static override summary = 'Drop recent-data partitions older than the retention period, and delete expired rows at its edge.';
  static override description =
    'Whole days older than now minus --keep are dropped as partitions (fast at any size); rows older than the cutoff in the day that straddles it are deleted. The local platform runs this on database.retentionSchedule.';
  static override examples = ['<%= config.bin %> db retention --dry-run', '<%= config.bin %> db retention --keep 7d --json'];
  static override flags = {
    keep: Flags.string({ description: 'Keep this much recent data (default: database.retention in iotctl.yaml, else 24h).', env: 'IOTCTL_KEEP' }),
    'dry-run': Flags.boolean({ description: 'Report what would be dropped and deleted, and change nothing.', env: 'IOTCTL_DRY_RUN' }),
  };

  async run(): Promise<RetentionResult & { keep: string }> {
    const keep = this.flags.keep ?? specIfPresent(this.ctx)?.database.retention ?? '24h';
    const keepMs = parseDuration(keep, '--keep');
    const result = await withDatabase(this.ctx, 'owner', (client, target) =>
      runRetention(client, { keepMs, dryRun: this.flags['dry-run'] }).catch((error) => {
        throw missingSchemaError(error, target);
      }),
    );
    if (!this.jsonEnabled()) {
      const verb = result.dryRun ? 'Would drop' : 'Dropped';
      const rows = [
        ...result.dropped.map((d) => ({ action: result.dryRun ? 'drop' : 'dropped', partition: d.partition, range: `${d.from.toISOString()} .. ${d.to.toISOString()}`, rows: d.rowsExact ? d.rows : `~${d.rows}` })),
        ...result.deleted.map((d) => ({ action: result.dryRun ? 'delete' : 'deleted', partition: d.partition, range: `< ${result.cutoff.toISOString()}`, rows: d.rows })),
      ];
      if (rows.length) {
        await printTable(rows, [
          { header: 'Action', get: (r) => r.action },
          { header: 'Partition', get: (r) => r.partition },
          { header: 'Range', get: (r) => r.range },
          { header: 'Rows', get: (r) => r.rows },
        ]);
      }
      printLine(
        `${verb} ${result.dropped.length} partition${result.dropped.length === 1 ? '' : 's'} (${result.dropped.every((d) => d.rowsExact) ? '' : '~'}${result.rowsDropped} rows) and ${result.dryRun ? 'would delete' : 'deleted'} ${result.rowsDeleted} rows older than ${result.cutoff.toISOString()} (keep ${formatDuration(keepMs)}), in ${result.ms} ms.`,
      );
    }
    return { keep, ...result };
  }
}
