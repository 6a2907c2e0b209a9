import { createWriteStream, type WriteStream } from 'node:fs';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { specIfPresent, withDatabase } from '../../db/cli.js';
import { connectionUserError, isConnectionError, withClient } from '../../db/connection.js';
import { parseDuration } from '../../db/duration.js';
import { runReadOnlySql, type SqlResult } from '../../db/queries.js';
import { VIA_OPTIONS, withVia } from '../../db/via.js';
import { info, printJson, printTable, toCsv, type Column } from '../../ui/output.js';

/** Page size when writing pages out as they come (--out, csv/json): peak memory follows it. */
const STREAM_PAGE_BYTES = 1_000_000;

export default class QuerySql extends BaseCommand<typeof QuerySql> {
  static override summary = 'Run one read-only SQL statement against the recent-data PostgreSQL.';
  static override description =
    'The statement runs in a READ ONLY transaction with a statement timeout and is always rolled back, so it cannot change data. Results over --max-rows are cut (and say so). ' +
    'On aws, --via lambda runs it in the query function inside the database\'s VPC, as the reader role, in pages under 6 MB; with --format csv --out FILE each page is written before the next is asked for.';
  static override examples = [
    '<%= config.bin %> query sql "SELECT device_id, count(*) FROM iot_messages GROUP BY 1 ORDER BY 2 DESC"',
    "<%= config.bin %> query sql \"SELECT ts, payload->>'temperature' AS t FROM iot_messages WHERE device_id = 'sensor-1' ORDER BY ts DESC LIMIT 5\" --format csv",
    '<%= config.bin %> query sql "SELECT * FROM iot_messages" --via lambda --max-rows 10000000 --format csv --out all.csv',
  ];
  static override args = {
    sql: Args.string({ description: 'The SQL statement (quote it).', required: true }),
  };
  static override flags = {
    format: Flags.string({ description: 'Output format (table: ink on a terminal, TSV when piped).', options: ['table', 'json', 'csv'], default: 'table', env: 'IOTCTL_FORMAT' }),
    timeout: Flags.string({ description: 'Cancel the statement after this long.', default: '30s', env: 'IOTCTL_TIMEOUT' }),
    'max-rows': Flags.integer({ description: 'Return at most this many rows.', default: 10_000, min: 1, env: 'IOTCTL_MAX_ROWS' }),
    via: Flags.string({ description: 'How to reach the database: direct, lambda (aws: the query function in its VPC), or auto (direct when it answers within 2 s).', options: [...VIA_OPTIONS], default: 'auto', env: 'IOTCTL_VIA' }),
    out: Flags.string({ description: 'Write the rows (csv or json) to this file instead of stdout.', env: 'IOTCTL_OUT' }),
  };

  async run(): Promise<SqlResult | Omit<SqlResult, 'rows'> & { out: string; pages: number }> {
    const timeoutMs = parseDuration(this.flags.timeout, '--timeout');
    const maxRows = this.flags['max-rows'];
    const spec = specIfPresent(this.ctx);
    let result: SqlResult;
    if (!spec) {
      // The server cancels the statement at --timeout; a server that cannot (frozen) is given up on a little later.
      result = await withDatabase(this.ctx, 'reader', (client) => runReadOnlySql(client, this.args.sql, { timeoutMs, maxRows }), { query_timeout: timeoutMs + 5_000 });
    } else {
      const viaLambda = await withVia(this.ctx, this.flags.via, 'reader', async (via, target, location) => {
        if (via === 'direct') {
          result = await withClient(location!, { query_timeout: timeoutMs + 5_000 }, (client) =>
            runReadOnlySql(client, this.args.sql, { timeoutMs, maxRows }).catch((error: unknown) => {
              throw isConnectionError(error) ? connectionUserError(error, location!) : error;
            }),
          );
          return undefined;
        }
        return this.viaLambda(target.databaseOps!, timeoutMs, maxRows);
      });
      if (viaLambda) return viaLambda;
    }
    return this.print(result!);
  }

  /** Page by page from the query function: to --out (or stdout for csv/json) as each page arrives; a table collects them. */
  private async viaLambda(ops: NonNullable<import('../../ports.js').Target['databaseOps']>, timeoutMs: number, maxRows: number) {
    const { functionPages } = await import('../../db/lambda-pages.js');
    const started = performance.now();
    const streaming = this.flags.out !== undefined || (!this.jsonEnabled() && this.flags.format !== 'table');
    const out: WriteStream | NodeJS.WriteStream = this.flags.out ? createWriteStream(this.flags.out) : process.stdout;
    const write = (text: string) => (out.write(text) ? undefined : new Promise<void>((r) => out.once('drain', () => r())));
    const collected: Record<string, unknown>[] = [];
    let columns: SqlResult['columns'] = [];
    let rowCount = 0;
    let pages = 0;
    let truncated = false;
    let command = 'SELECT';
    let resumed = false;
    // Streaming, smaller pages keep the process small (each page is parsed whole): 1 MB instead of 5.5.
    for await (const page of functionPages(ops, { query: 'sql', sql: this.args.sql, timeoutMs, maxRows, ...(streaming ? { pageBytes: STREAM_PAGE_BYTES } : {}) })) {
      if (pages === 0) {
        columns = page.columns ?? [];
        command = page.command ?? command;
      }
      resumed ||= Boolean(page.resumed);
      truncated ||= Boolean(page.truncated);
      rowCount += page.rows.length;
      if (streaming) {
        const cols: Column<Record<string, unknown>>[] = columns.map((c) => ({ header: c.name, get: (row) => row[c.name] }));
        if (this.flags.format === 'json') {
          const text = page.rows.map((r) => JSON.stringify(r)).join('\n');
          if (text) await write(text + '\n');
        } else {
          const csv = toCsv(page.rows, cols);
          await write(pages === 0 ? csv : csv.slice(csv.indexOf('\n') + 1));
        }
      } else {
        for (const r of page.rows) collected.push(r);
      }
      pages++;
    }
    if (this.flags.out) await new Promise<void>((resolve, reject) => (out as WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve())));
    const ms = Math.round(performance.now() - started);
    if (resumed) info('The query function continued the result in a new transaction (another container served a page): order is exact only with an ORDER BY on a unique key.');
    if (truncated) info(`Showing the first ${rowCount} rows; raise --max-rows or add a LIMIT to see others.`);
    if (streaming) {
      info(`${rowCount} row${rowCount === 1 ? '' : 's'} in ${pages} page${pages === 1 ? '' : 's'} through the query function, ${ms} ms${this.flags.out ? ` -> ${this.flags.out}` : ''}.`);
      return { columns, rowCount, truncated, command, ms, out: this.flags.out ?? '-', pages };
    }
    return this.print({ columns, rows: collected, rowCount, truncated, command, ms });
  }

  private async print(result: SqlResult): Promise<SqlResult> {
    if (this.jsonEnabled()) return result;
    const columns: Column<Record<string, unknown>>[] = result.columns.map((c) => ({ header: c.name, get: (row) => row[c.name] }));
    if (this.flags.out) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(this.flags.out, this.flags.format === 'json' ? result.rows.map((r) => JSON.stringify(r)).join('\n') + (result.rows.length ? '\n' : '') : toCsv(result.rows, columns));
    } else if (this.flags.format === 'json') printJson(result.rows);
    else if (this.flags.format === 'csv') process.stdout.write(toCsv(result.rows, columns));
    else if (columns.length) await printTable(result.rows, columns, { footer: `${result.rowCount} row${result.rowCount === 1 ? '' : 's'} in ${result.ms} ms` });
    else info(`${result.command} (${result.ms} ms)`);
    if (result.truncated) info(`Showing the first ${result.rowCount} rows; raise --max-rows or add a LIMIT to see others.`);
    return result;
  }
}
