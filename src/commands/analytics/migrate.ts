import { realpathSync, statSync } from 'node:fs';
import { writeNewFile } from '../../services/files.js';
import { BaseCommand, Flags } from '../../base-command.js';
import { formatPlan } from '../../iot/plan/index.js';
import { UserError } from '../../ui/errors.js';
import { info, warn } from '../../ui/output.js';
import type { AnalyticsMigration } from '../../ports.js';
import { withTarget } from '../../targets/index.js';

export default class AnalyticsMigrate extends BaseCommand<typeof AnalyticsMigrate> {
  static override summary = 'Move the analytics section off AWS IoT Analytics (ended 2025-12-15) to the datalake engine.';
  static override description =
    "Reads the account's IoT Analytics channels, pipelines, datastores and datasets (or, where the API no longer answers, iotctl.yaml's own section), " +
    'writes the equivalent `engine: datalake` section into iotctl.yaml (comments kept) and prints the datalake plan. ' +
    '--export copies each datastore\'s data as CSV to datastore/<name>/migrated/ in the new bucket. Nothing is ever deleted: the delete commands are printed. ' +
    'Then run `iotctl analytics apply`.';
  static override examples = [
    '<%= config.bin %> analytics migrate --from iotanalytics --to datalake --dry-run',
    '<%= config.bin %> analytics migrate --from iotanalytics --to datalake --export',
  ];
  static override flags = {
    from: Flags.string({ description: 'The engine to move from.', options: ['iotanalytics'], required: true }),
    to: Flags.string({ description: 'The engine to move to.', options: ['datalake'], required: true }),
    'dry-run': Flags.boolean({ description: 'Print the new section and the plan; write nothing.', env: 'IOTCTL_DRY_RUN' }),
    export: Flags.boolean({ description: "Copy each datastore's data to the datalake bucket (creates the bucket).", env: 'IOTCTL_EXPORT' }),
  };

  async run(): Promise<AnalyticsMigration> {
    return withTarget(this.ctx, async (target) => {
      const loaded = this.ctx.spec;
      const result = await target.analytics.migrate({ specText: loaded.text, dryRun: this.flags['dry-run'], export: this.flags.export, file: loaded.file });
      for (const w of result.warnings) warn(w);
      if (this.flags['dry-run']) {
        if (!this.jsonEnabled()) process.stdout.write(result.specText);
      } else if (result.changed) {
        // Written beside it (privately), then renamed over it, keeping its mode: a failure never leaves half a spec.
        // The real path: a spec the user keeps behind a symlink stays there.
        const real = realpathSync(loaded.file);
        writeNewFile(real, result.specText, { force: true, mode: statSync(real).mode & 0o777, flag: '--spec' });
        info(`Wrote the datalake section to ${loaded.file}.`);
      }
      info(formatPlan(result.plan));
      for (const e of result.exports) info(e.state === 'SUCCEEDED' ? `Exported ${e.datastore} to ${e.s3Uri}` : `Export of ${e.datastore} ${e.state}: ${e.reason ?? ''}`);
      if (result.deleteCommands.length) info(`\nThe IoT Analytics resources are untouched. Once the datalake has the data, delete them with:\n  ${result.deleteCommands.join('\n  ')}`);
      if (!this.flags['dry-run']) info('Next: iotctl analytics apply');
      return result;
    });
  }
}
