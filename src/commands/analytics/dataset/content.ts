import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../base-command.js';
import type { DatasetVersion } from '../../../ports.js';
import { checkDestination, copyToNewFile } from '../../../services/files.js';
import { withTarget } from '../../../targets/index.js';
import { info, printTable } from '../../../ui/output.js';

export default class DatasetContent extends BaseCommand<typeof DatasetContent> {
  static override summary = "Print or save a dataset's content (GetDatasetContent).";
  static override description =
    'Without --version, the latest succeeded version ($LATEST_SUCCEEDED); $LATEST or a version id pick another. --out copies the CSV to a file. ' +
    'On AWS (datalake engine) the versions are the result CSVs kept under s3://<bucket>/datasets/<name>/ (manual/ for `dataset run`, scheduled/ for the schedule) plus failed or running runs from the workgroup\'s recent query history; the CSV is downloaded once into .iotctl/aws/datasets/.';
  static override examples = [
    '<%= config.bin %> analytics dataset content daily_summary',
    '<%= config.bin %> analytics dataset content daily_summary --out summary.csv',
    '<%= config.bin %> analytics dataset content daily_summary --version 20300131T020000000Z',
  ];
  static override args = { name: Args.string({ description: 'Dataset name.', required: true }) };
  static override flags = {
    version: Flags.string({ description: 'A version id, $LATEST or $LATEST_SUCCEEDED (default).', env: 'IOTCTL_DATASET_VERSION' }),
    out: Flags.string({ description: 'Write the content (CSV) to this new file instead of printing it.', env: 'IOTCTL_OUT' }),
    force: Flags.boolean({ description: 'Replace the --out file if it exists.' }),
    versions: Flags.boolean({ description: 'List the kept versions instead.' }),
  };

  async run(): Promise<{ version: DatasetVersion; file: string; out?: string } | DatasetVersion[]> {
    const out = this.flags.out && resolve(this.flags.out);
    if (out) checkDestination(out, { force: this.flags.force, flag: '--out' });
    return withTarget(this.ctx, async (target) => {
      if (this.flags.versions) {
        const versions = await target.analytics.datasetVersions(this.args.name);
        if (!this.jsonEnabled())
          await printTable(versions, [
            { header: 'Version', get: (v) => v.version },
            { header: 'Status', get: (v) => v.status },
            { header: 'Trigger', get: (v) => v.trigger },
            { header: 'Created', get: (v) => new Date(v.createdAt) },
            { header: 'Rows', get: (v) => v.rows },
            { header: 'Error', get: (v) => v.error ?? '' },
          ]);
        return versions;
      }
      const { version, file } = await target.analytics.datasetContent(this.args.name, this.flags.version);
      if (out) {
        await copyToNewFile(file, out, { force: this.flags.force, flag: '--out' });
        info(`Wrote ${version.rows} row(s) of ${this.args.name} version ${version.version} to ${out}`);
        return { version, file, out };
      }
      if (!this.jsonEnabled()) process.stdout.write(readFileSync(file, 'utf8'));
      return { version, file };
    });
  }
}
