import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import type { ColumnInfo, LakeQuery, QueryStats } from '../../ports.js';
import { checkDestination, readUserFile } from '../../services/files.js';
import { withTarget } from '../../targets/index.js';
import { athenaCostUsd, formatBytes } from '../../ui/format.js';
import { CancelledError, UserError } from '../../ui/errors.js';
import { info, printTable, warn, type Column } from '../../ui/output.js';
import { streamRows, writeRowsToFile } from '../../ui/stream-rows.js';
import { runSteps, stepsMode } from '../../ui/tasks.js';

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
    out: Flags.string({ char: 'o', description: 'Write the result to this new file (csv, or json with --format json).', env: 'IOTCTL_OUT' }),
    force: Flags.boolean({ description: 'Replace the --out file if it exists.' }),
  };

  async run(): Promise<QueryResult> {
    const sql = this.readSql();
    // Before the query runs (and costs): an --out that would be refused at the end is refused now.
    if (this.flags.out) checkDestination(resolve(this.flags.out), { force: this.flags.force, flag: '--out' });
    // --out and --format csv|json read every row: on AWS they stream from the query's result object.
    const readAll = !this.jsonEnabled() && (Boolean(this.flags.out) || this.flags.format !== 'table');
    return withTarget(this.ctx, async (target) => {
      const abort = new AbortController();
      const onSigint = () => abort.abort();
      process.once('SIGINT', onSigint);
      try {
        let query: LakeQuery | undefined;
        // On AWS: Athena's state, data scanned and cost while the query runs; locally the query is one quick step.
        await runSteps(
          [
            {
              title: target.name === 'aws' ? 'Athena query' : 'Query the lake',
              run: async (update) => {
                query = await target.lake.run(sql, {
                  params: this.flags.param ?? [],
                  signal: abort.signal,
                  readAll,
                  onNotice: (message) => warn(message),
                  onProgress: (p) => update(`${p.state} · ${formatBytes(p.bytesScanned)} scanned · ~$${athenaCostUsd(p.bytesScanned).toFixed(4)} · ${(p.elapsedMs / 1000).toFixed(1)} s`),
                });
              },
            },
          ],
          stepsMode(this.jsonEnabled()),
        ).catch((error) => {
          throw abort.signal.aborted ? new CancelledError('Query cancelled.') : error;
        });
        return await this.output(query!);
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
  }

  /** --out and --format csv|json stream every row (memory stays flat); the table and --json keep --max-rows. */
  private async output(query: LakeQuery): Promise<QueryResult> {
    const names = query.columns.map((c) => c.name);
    const format = this.flags.format === 'json' ? 'json' : 'csv';
    if (!this.jsonEnabled() && (this.flags.out || this.flags.format !== 'table')) {
      const out = this.flags.out && resolve(this.flags.out);
      const written = out ? (await writeRowsToFile(out, format, names, query.rows, { force: this.flags.force })).rows : await streamRows(process.stdout, format, names, query.rows);
      const result: QueryResult = { columns: query.columns, rows: [], truncated: false, stats: query.stats() };
      info(formatStats(result) + (out ? `\nWrote ${written} row(s) to ${out}` : ''));
      return result;
    }
    const maxRows = this.flags['max-rows'];
    const rows: unknown[][] = [];
    for await (const row of query.rows) if (rows.length < maxRows) rows.push(row);
    const stats = query.stats();
    const result: QueryResult = { columns: query.columns, rows, truncated: stats.rows > rows.length, stats };
    if (this.jsonEnabled()) return result;
    const columns: Column<unknown[]>[] = result.columns.map((c, i) => ({ header: c.name, get: (row) => row[i] }));
    await printTable(result.rows, columns, { footer: formatStats(result) });
    return result;
  }

  private readSql(): string {
    if (this.flags.file) return readUserFile(this.flags.file, 'Check the path given to --file.', 'the SQL file ').toString('utf8');
    if (!this.args.sql?.trim()) throw new UserError('No SQL to run.', 'Give the statement as an argument, or --file query.sql.');
    return this.args.sql;
  }
}

export function formatStats(r: QueryResult): string {
  const s = r.stats;
  const shown = r.truncated ? ` (first ${r.rows.length} shown)` : '';
  const files = s.filesTotal ? ` (${s.filesScanned ?? 0} of ${s.filesTotal} files)` : '';
  const cost = s.queryId ? ` · ~$${athenaCostUsd(s.bytesScanned).toFixed(4)} · query ${s.queryId}` : '';
  return `${s.rows} row${s.rows === 1 ? '' : 's'}${shown} · ${s.bytesExact ? '' : '~'}${formatBytes(s.bytesScanned)} scanned${files} · ${Math.round(s.elapsedMs)} ms${cost}`;
}
