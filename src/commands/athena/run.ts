import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import type { ColumnInfo, QueryStats } from '../../ports.js';
import { withTarget } from '../../targets/index.js';
import { formatBytes } from '../../ui/format.js';
import { UserError } from '../../ui/errors.js';
import { info, isTTY, printTable, toCsv, type Column } from '../../ui/output.js';

export interface QueryResult {
  columns: ColumnInfo[];
  /** The first --max-rows rows; every row is still counted in stats.rows. */
  rows: unknown[][];
  truncated: boolean;
  stats: QueryStats;
}

export default class AthenaRun extends BaseCommand<typeof AthenaRun> {
  static override summary = 'Run SQL over the data lake: datastores as tables, partition-pruned by day.';
  static override description =
    'Runs on DuckDB over the lake files, as Athena runs over S3: each datastore is a table (also as <database>.<name>, database from athena.database in iotctl.yaml) ' +
    'with a `dt` DATE partition column, and each channel is channels.<name> (raw messages). A filter on dt reads only those days\' files. ' +
    "? placeholders take --param values in order, as Athena's execution parameters: 42, 'text', DATE '2030-01-31' (a bare word is taken as a string). " +
    'Shows rows, bytes scanned (the files actually read) and elapsed time. Works without `iotctl local up`.';
  static override examples = [
    `<%= config.bin %> athena run "SELECT device_id, avg(temperature) FROM telemetry WHERE dt = DATE '2030-01-31' GROUP BY 1"`,
    '<%= config.bin %> athena run --file report.sql --param "DATE \'2030-01-31\'" --format csv --out report.csv',
    '<%= config.bin %> athena run "SELECT count(*) FROM channels.telemetry_raw" --json',
  ];
  static override args = { sql: Args.string({ description: 'The SQL statement (or use --file).' }) };
  static override flags = {
    file: Flags.string({ char: 'f', description: 'Read the SQL from this file.', env: 'IOTCTL_SQL_FILE' }),
    param: Flags.string({ char: 'p', description: 'A value for the next ? placeholder (repeatable).', multiple: true }),
    'max-rows': Flags.integer({ description: 'Rows to show or write (all rows are still counted).', default: 1000, min: 0, env: 'IOTCTL_MAX_ROWS' }),
    format: Flags.string({ description: 'Output format.', options: ['table', 'json', 'csv'], default: 'table', env: 'IOTCTL_FORMAT' }),
    out: Flags.string({ char: 'o', description: 'Write the result to this file (csv, or json with --format json).', env: 'IOTCTL_OUT' }),
  };

  async run(): Promise<QueryResult> {
    const sql = this.readSql();
    return withTarget(this.ctx, async (target) => {
      const query = await target.lake.run(sql, { params: this.flags.param ?? [] });
      const maxRows = this.flags['max-rows'];
      const rows: unknown[][] = [];
      for await (const row of query.rows) if (rows.length < maxRows) rows.push(row);
      const stats = query.stats();
      const result: QueryResult = { columns: query.columns, rows, truncated: stats.rows > rows.length, stats };
      if (this.jsonEnabled()) return result;
      const columns: Column<unknown[]>[] = result.columns.map((c, i) => ({ header: c.name, get: (row) => row[i] }));
      const summary = formatStats(result);
      if (this.flags.out) {
        const out = resolve(this.flags.out);
        writeFileSync(out, this.flags.format === 'json' ? JSON.stringify(asObjects(result), null, 2) + '\n' : toCsv(result.rows, columns));
        info(`${summary}\nWrote ${result.rows.length} row(s) to ${out}`);
      } else if (this.flags.format === 'json') {
        process.stdout.write(JSON.stringify(asObjects(result), null, isTTY() ? 2 : undefined) + '\n');
        info(summary);
      } else if (this.flags.format === 'csv') {
        process.stdout.write(toCsv(result.rows, columns));
        info(summary);
      } else await printTable(result.rows, columns, { footer: summary });
      return result;
    });
  }

  private readSql(): string {
    if (this.flags.file) {
      try {
        return readFileSync(this.flags.file, 'utf8');
      } catch (e) {
        throw new UserError(`Cannot read ${this.flags.file}: ${(e as Error).message}`, 'Check the path given to --file.');
      }
    }
    if (!this.args.sql?.trim()) throw new UserError('No SQL to run.', 'Give the statement as an argument, or --file query.sql.');
    return this.args.sql;
  }
}

export function formatStats(r: QueryResult): string {
  const s = r.stats;
  const shown = r.truncated ? ` (first ${r.rows.length} shown)` : '';
  const files = s.filesTotal ? ` (${s.filesScanned ?? 0} of ${s.filesTotal} files)` : '';
  return `${s.rows} row${s.rows === 1 ? '' : 's'}${shown} · ${s.bytesExact ? '' : '~'}${formatBytes(s.bytesScanned)} scanned${files} · ${Math.round(s.elapsedMs)} ms`;
}

function asObjects(r: QueryResult): Record<string, unknown>[] {
  return r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c.name, row[i]])));
}
