import { BaseCommand } from '../../base-command.js';
import type { TableDescription } from '../../ports.js';
import { withTarget } from '../../targets/index.js';
import { formatBytes } from '../../ui/format.js';
import { info, printTable } from '../../ui/output.js';

export default class AthenaTables extends BaseCommand<typeof AthenaTables> {
  static override summary = 'List the lake tables (datastores and raw channels) with their columns and types.';
  static override description = 'Column types come from the Parquet files themselves (all files of a datastore, combined by name); `dt` is the day partition.';
  static override examples = ['<%= config.bin %> athena tables', '<%= config.bin %> athena tables --json'];

  async run(): Promise<TableDescription[]> {
    return withTarget(this.ctx, async (target) => {
      const tables = await target.lake.tables();
      if (!this.jsonEnabled()) {
        if (!tables.length) info('No tables: apply datastores and channels with `iotctl analytics apply`.');
        else
          await printTable(tables, [
            { header: 'Table', get: (t) => t.table },
            { header: 'Kind', get: (t) => t.kind },
            { header: 'Files', get: (t) => t.files },
            { header: 'Size', get: (t) => (t.bytes === undefined ? '' : formatBytes(t.bytes)) },
            { header: 'Days', get: (t) => t.partitions },
            { header: 'Columns', get: (t) => t.columns.map((c) => `${c.name} ${c.type}`).join(', ') },
          ]);
      }
      return tables;
    });
  }
}
