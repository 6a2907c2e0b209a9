import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { withDatabase } from '../../db/cli.js';
import { parseDuration } from '../../db/duration.js';
import { runReadOnlySql, type SqlResult } from '../../db/queries.js';
import { info, printJson, printTable, toCsv, type Column } from '../../ui/output.js';

export default class QuerySql extends BaseCommand<typeof QuerySql> {
  static override summary = 'Run one read-only SQL statement against the recent-data PostgreSQL.';
  static override description =
    'The statement runs in a READ ONLY transaction with a statement timeout and is always rolled back, so it cannot change data. Results over --max-rows are cut (and say so).';
  static override examples = [
    '<%= config.bin %> query sql "SELECT device_id, count(*) FROM iot_messages GROUP BY 1 ORDER BY 2 DESC"',
    "<%= config.bin %> query sql \"SELECT ts, payload->>'temperature' AS t FROM iot_messages WHERE device_id = 'sensor-1' ORDER BY ts DESC LIMIT 5\" --format csv",
  ];
  static override args = {
    sql: Args.string({ description: 'The SQL statement (quote it).', required: true }),
  };
  static override flags = {
    format: Flags.string({ description: 'Output format (table: ink on a terminal, TSV when piped).', options: ['table', 'json', 'csv'], default: 'table', env: 'IOTCTL_FORMAT' }),
    timeout: Flags.string({ description: 'Cancel the statement after this long.', default: '30s', env: 'IOTCTL_TIMEOUT' }),
    'max-rows': Flags.integer({ description: 'Return at most this many rows.', default: 10_000, min: 1, env: 'IOTCTL_MAX_ROWS' }),
  };

  async run(): Promise<SqlResult> {
    const timeoutMs = parseDuration(this.flags.timeout, '--timeout');
    // The server cancels the statement at --timeout; a server that cannot (frozen) is given up on a little later.
    const result = await withDatabase(this.ctx, 'reader', (client) => runReadOnlySql(client, this.args.sql, { timeoutMs, maxRows: this.flags['max-rows'] }), {
      query_timeout: timeoutMs + 5_000,
    });
    if (this.jsonEnabled()) return result;
    const columns: Column<Record<string, unknown>>[] = result.columns.map((c) => ({ header: c.name, get: (row) => row[c.name] }));
    if (this.flags.format === 'json') printJson(result.rows);
    else if (this.flags.format === 'csv') process.stdout.write(toCsv(result.rows, columns));
    else if (columns.length) await printTable(result.rows, columns, { footer: `${result.rowCount} row${result.rowCount === 1 ? '' : 's'} in ${result.ms} ms` });
    else info(`${result.command} (${result.ms} ms)`);
    if (result.truncated) info(`Showing the first ${result.rowCount} rows; raise --max-rows or add a LIMIT to see others.`);
    return result;
  }
}
