import { BaseCommand } from '../../base-command.js';
import { Catalog, type TableDescription } from '../../targets/local/lake/catalog.js';
import { formatBytes, openLakeSession } from '../../targets/local/lake/cli.js';
import { info, printTable } from '../../ui/output.js';

export default class AthenaTables extends BaseCommand<typeof AthenaTables> {
  static override summary = 'List the lake tables (datastores and raw channels) with their columns and types.';
  static override description = 'Column types come from the Parquet files themselves (all files of a datastore, combined by name); `dt` is the day partition.';
  static override examples = ['<%= config.bin %> athena tables', '<%= config.bin %> athena tables --json'];

  async run(): Promise<TableDescription[]> {
    const session = openLakeSession(this.ctx);
    let catalog: Catalog | undefined;
    try {
      catalog = await Catalog.open({ db: session.db, stateDir: session.stateDir, database: session.spec.athena.database });
      const tables = await catalog.describe();
      if (!this.jsonEnabled()) {
        if (!tables.length) info('No tables: apply datastores and channels with `iotctl analytics apply`.');
        else
          await printTable(tables, [
            { header: 'Table', get: (t) => t.table },
            { header: 'Kind', get: (t) => t.kind },
            { header: 'Files', get: (t) => t.files },
            { header: 'Size', get: (t) => formatBytes(t.bytes) },
            { header: 'Days', get: (t) => t.partitions },
            { header: 'Columns', get: (t) => t.columns.map((c) => `${c.name} ${c.type}`).join(', ') },
          ]);
      }
      return tables;
    } finally {
      catalog?.close();
      session.close();
    }
  }
}
