import { BaseCommand, Flags } from '../../base-command.js';
import { missingSchemaError, specIfPresent, withDatabase } from '../../db/cli.js';
import { VIA_OPTIONS, withVia } from '../../db/via.js';
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
    via: Flags.string({ description: 'How to reach the database: direct, lambda (aws: the maintenance function in its VPC, which also clusters closed days and creates the next partitions), or auto (direct when it answers within 2 s).', options: [...VIA_OPTIONS], default: 'auto', env: 'IOTCTL_VIA' }),
  };

  async run(): Promise<RetentionResult & { keep: string }> {
    const keep = this.flags.keep ?? specIfPresent(this.ctx)?.database.retention ?? '24h';
    const keepMs = parseDuration(keep, '--keep');
    let fromFunction: RetentionResult | undefined;
    if (specIfPresent(this.ctx)) {
      fromFunction = await withVia(this.ctx, this.flags.via, 'owner', async (via, target) => {
        if (via !== 'lambda') return undefined;
        // The maintenance function's run: retention, then clustering and partitions ahead (a plan with --dry-run).
        const out = await target.databaseOps!.invokeMaintenance({ dryRun: this.flags['dry-run'], keep });
        return retentionOf(out);
      });
    }
    const result =
      fromFunction ??
      (await withDatabase(this.ctx, 'owner', (client, target) =>
        runRetention(client, { keepMs, dryRun: this.flags['dry-run'] }).catch((error) => {
          throw missingSchemaError(error, target);
        }),
      ));
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

/** The maintenance function's JSON result as a RetentionResult (dates back to Dates), keeping its other fields. */
function retentionOf(out: Record<string, unknown>): RetentionResult {
  const r = out as unknown as RetentionResult & { dropped: Array<{ from?: string; to?: string }> };
  const day = (partition: string) => /p(\d{4})(\d\d)(\d\d)$/.exec(partition);
  return {
    ...r,
    cutoff: new Date(r.cutoff as unknown as string),
    dropped: r.dropped.map((d) => {
      const m = day((d as unknown as { partition: string }).partition);
      const from = d.from ? new Date(d.from) : m ? new Date(`${m[1]}-${m[2]}-${m[3]}T00:00:00Z`) : new Date(0);
      return { ...(d as object), from, to: d.to ? new Date(d.to) : new Date(from.getTime() + 86_400_000) } as RetentionResult['dropped'][number];
    }),
  };
}
