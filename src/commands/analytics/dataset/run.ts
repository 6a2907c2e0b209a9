import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../base-command.js';
import type { DatasetRunResult } from '../../../ports.js';
import { withTarget } from '../../../targets/index.js';
import { UserError } from '../../../ui/errors.js';
import { info, printTable } from '../../../ui/output.js';

export default class DatasetRun extends BaseCommand<typeof DatasetRun> {
  static override summary = "Create a dataset's content now (CreateDatasetContent) and show it.";
  static override description =
    "Local: runs the dataset's SQL over the datastores with DuckDB (no `iotctl local up` needed; it reads the lake files) and keeps the result as a new content version (CSV). " +
    "AWS (datalake engine): runs the dataset's Athena named query as applied, waits for it (Ctrl-C stops it), and downloads the result CSV Athena wrote to s3://<bucket>/datasets/<name>/manual/; the version id is the query execution id. " +
    'Either way, content beyond versionsToKeep is deleted after the run.';
  static override examples = ['<%= config.bin %> analytics dataset run daily_summary', '<%= config.bin %> analytics dataset run daily_summary --max-rows 20'];
  static override args = { name: Args.string({ description: 'Dataset name.', required: true }) };
  static override flags = {
    'max-rows': Flags.integer({ description: 'Rows to show (the content keeps all of them).', default: 100, min: 0, env: 'IOTCTL_MAX_ROWS' }),
  };

  async run(): Promise<DatasetRunResult> {
    return withTarget(this.ctx, async (target) => {
      const result = await target.analytics.runDataset(this.args.name, { previewRows: this.flags['max-rows'], progress: info });
      if (result.status === 'FAILED')
        throw new UserError(`Dataset "${this.args.name}" failed: ${result.error}`, 'Fix its SQL in iotctl.yaml, run `iotctl analytics apply`, then run it again.', 'DATASET_FAILED');
      if (!this.jsonEnabled()) {
        const columns = result.columns.map((c, i) => ({ header: c.name, get: (row: unknown[]) => row[i] }));
        const shown = result.preview.length < (result.rows ?? 0) ? `, first ${result.preview.length} shown` : '';
        await printTable(result.preview, columns, { title: `${this.args.name} version ${result.version}`, footer: `${result.rows} row(s)${shown} · ${result.elapsedMs} ms · ${result.file}` });
        if (process.stdout.isTTY) info('');
      }
      return result;
    });
  }
}
