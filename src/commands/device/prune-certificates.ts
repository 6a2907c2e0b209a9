import { BaseCommand, Flags } from '../../base-command.js';
import { openTarget } from '../../targets/index.js';
import { pruneCertificates, type PruneItem, type PruneResult } from '../../services/certificates.js';
import { info, printTable } from '../../ui/output.js';

export default class DevicePruneCertificates extends BaseCommand<typeof DevicePruneCertificates> {
  static override summary = 'Delete certificates that are INACTIVE or REVOKED, or attached to no thing (detached first); never an ACTIVE attached one.';
  static override description =
    'On aws, the certificates considered are those of the stage\'s things and those carrying the stage\'s device policy: certificates cannot be tagged, so one with neither is not known to be this stage\'s and is left alone. Both sides of a rotation in progress are kept.';
  static override examples = ['<%= config.bin %> device prune-certificates --dry-run', '<%= config.bin %> device prune-certificates --json'];
  static override flags = {
    'dry-run': Flags.boolean({ description: 'List what would be deleted, delete nothing.' }),
  };

  async run(): Promise<PruneResult> {
    const target = await openTarget(this.ctx);
    try {
      const result = await pruneCertificates(target.devices, { dryRun: this.flags['dry-run'] });
      if (!this.jsonEnabled()) {
        await printTable<PruneItem>(
          result.deleted,
          [
            { header: 'Certificate', get: (c) => c.certificateId.slice(0, 12) },
            { header: 'Status', get: (c) => c.status },
            { header: 'Things', get: (c) => c.things.join(' ') || '(none)' },
            { header: 'Reason', get: (c) => c.reason },
            { header: 'Not after', get: (c) => c.notAfter ?? '' },
          ],
          { title: result.dryRun ? 'Would delete' : 'Deleted' },
        );
        info(`${result.dryRun ? 'Would delete' : 'Deleted'} ${result.deleted.length} certificate(s)${result.failed.length ? `, ${result.failed.length} failed` : ''}.`);
        for (const f of result.failed) info(`  ${f.certificateId}: ${f.error}`);
      }
      if (result.failed.length) process.exitCode = 1;
      return result;
    } finally {
      await target.close();
    }
  }
}
