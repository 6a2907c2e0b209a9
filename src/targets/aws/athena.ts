import { setTimeout as sleep } from 'node:timers/promises';
import type { GetQueryResultsCommandOutput, QueryExecution, Row } from '@aws-sdk/client-athena';
import type { Table } from '@aws-sdk/client-glue';
import { type ColumnInfo, type LakeQuery, type LakeQueryPort, type QueryProgress, type QueryStats, type TableDescription } from '../../ports.js';
import { CancelledError, UserError } from '../../ui/errors.js';
import { csvRecordBatches, type CsvRecord } from './csv-stream.js';
import { isAwsError, type AwsClients } from './sdk.js';

export { athenaCostUsd } from '../../ui/format.js';

/**
 * `athena run` and `athena tables` on AWS: Athena for queries, the Glue Data Catalog for tables.
 * A query is started, polled with backoff (reporting state and data scanned), then its results are read
 * lazily as the consumer iterates. A consumer that reads every row (`--out`, `--format csv|json`) gets them
 * from the query's result object in S3 (`<id>.csv` in the output location), streamed and parsed as it
 * arrives: one GetObject instead of one GetQueryResults call per 1,000 rows, as AWS SDK for pandas and
 * PyAthena do. Interactive results (a table, --json with --max-rows) page GetQueryResults, and so does a
 * reader the bucket refuses (AccessDenied), with a notice. Either way memory holds one page or chunk.
 */

export interface AthenaSettings {
  /** Glue database: the query's default database, and where `tables()` looks. */
  database: string;
  workgroup: string;
  /** s3://bucket/prefix/ for results; the workgroup's own location when absent. */
  outputLocation?: string;
}

export interface PollSettings {
  initialMs: number;
  factor: number;
  maxMs: number;
}

/** 100 ms, ×1.5, capped at 2 s: short queries return fast, long ones cost few GetQueryExecution calls. */
export const DEFAULT_POLL: PollSettings = { initialMs: 100, factor: 1.5, maxMs: 2_000 };

/** Athena's page size limit for GetQueryResults. */
const PAGE_SIZE = 1000;



export class AwsAthena implements LakeQueryPort {
  constructor(
    private readonly aws: AwsClients,
    private readonly settings: AthenaSettings,
    private readonly poll: PollSettings = DEFAULT_POLL,
  ) {}

  async run(
    sql: string,
    opts: {
      params?: readonly string[];
      signal?: AbortSignal;
      onProgress?: (p: QueryProgress) => void;
      onStarted?: (queryId: string) => void;
      /** The consumer reads every row: stream them from the result object in S3. */
      readAll?: boolean;
      /** Said to the user on stderr (a fallback to paging). */
      onNotice?: (message: string) => void;
    } = {},
  ): Promise<LakeQuery> {
    const { client, sdk } = await this.aws.get('athena');
    const signal = opts.signal ?? this.aws.settings.signal;
    const send = { abortSignal: signal };
    const started = Date.now();
    const params = opts.params ?? [];

    if (signal?.aborted) throw new CancelledError('Cancelled before the query started.');
    const { QueryExecutionId: queryId } = await client
      .send(
        new sdk.StartQueryExecutionCommand({
          QueryString: sql,
          WorkGroup: this.settings.workgroup,
          QueryExecutionContext: { Database: this.settings.database },
          ...(this.settings.outputLocation ? { ResultConfiguration: { OutputLocation: this.settings.outputLocation } } : {}),
          ...(params.length ? { ExecutionParameters: params.map(athenaParameter) } : {}),
        }),
        send,
      )
      .catch((error) => {
        throw signal?.aborted ? new CancelledError('Cancelled while starting the query.') : error;
      });
    if (!queryId) throw new Error('StartQueryExecution returned no QueryExecutionId');
    opts.onStarted?.(queryId);

    // Ctrl-C from here on stops the query on AWS too: it would otherwise keep running (and billing).
    const stop = async (): Promise<never> => {
      await client.send(new sdk.StopQueryExecutionCommand({ QueryExecutionId: queryId })).catch(() => undefined);
      throw new CancelledError(`Cancelled: stopped Athena query ${queryId}.`);
    };

    let execution: QueryExecution;
    let delay = this.poll.initialMs;
    for (;;) {
      if (signal?.aborted) return stop();
      try {
        const out = await client.send(new sdk.GetQueryExecutionCommand({ QueryExecutionId: queryId }), send);
        execution = out.QueryExecution ?? {};
      } catch (error) {
        if (signal?.aborted) return stop();
        throw error;
      }
      const state = execution.Status?.State ?? 'UNKNOWN';
      opts.onProgress?.({ state, bytesScanned: execution.Statistics?.DataScannedInBytes ?? 0, elapsedMs: Date.now() - started });
      if (state === 'SUCCEEDED') break;
      if (state === 'FAILED' || state === 'CANCELLED') throw queryFailed(queryId, execution);
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        return stop();
      }
      delay = Math.min(delay * this.poll.factor, this.poll.maxMs);
    }

    const bytesScanned = execution.Statistics?.DataScannedInBytes ?? 0;
    const elapsedMs = Date.now() - started;
    // The first page is read now: it carries the column metadata the caller needs before any row.
    const fetchPage = async (nextToken?: string, max = PAGE_SIZE): Promise<GetQueryResultsCommandOutput> => {
      if (signal?.aborted) throw new CancelledError(`Cancelled while reading the results of Athena query ${queryId}.`);
      try {
        return await client.send(new sdk.GetQueryResultsCommand({ QueryExecutionId: queryId, MaxResults: max, ...(nextToken ? { NextToken: nextToken } : {}) }), send);
      } catch (error) {
        if (signal?.aborted) throw new CancelledError(`Cancelled while reading the results of Athena query ${queryId}.`);
        throw error;
      }
    };
    const location = execution.ResultConfiguration?.OutputLocation;
    const object = opts.readAll && execution.StatementType === 'DML' && location ? s3Location(location) : undefined;
    // Streaming: the first page only for the columns' types (one row: the header), the object read meanwhile.
    const [firstPage, body] = await Promise.all([fetchPage(undefined, object ? 1 : PAGE_SIZE), object ? this.openObject(object, signal) : undefined]);
    let first: GetQueryResultsCommandOutput | undefined = firstPage;
    const athenaColumns = first.ResultSet?.ResultSetMetadata?.ColumnInfo ?? [];
    const columns: ColumnInfo[] = athenaColumns.map((c) => ({ name: c.Name ?? c.Label ?? '', type: c.Type ?? 'varchar' }));
    const convert = athenaColumns.map((c) => converterFor(c.Type));
    // SELECT (DML) results repeat the column names as their first row; DDL and SHOW/DESCRIBE results do not.
    const hasHeader = execution.StatementType === 'DML' && isHeaderRow(first.ResultSet?.Rows?.[0], columns);
    if (body && 'refused' in body) opts.onNotice?.(`Reading the result object ${location} was refused (${body.refused}); paging GetQueryResults instead (one call per 1,000 rows). Grant s3:GetObject on it to stream large results.`);
    const stream = body && 'chunks' in body ? body.chunks : undefined;

    let rows = 0;
    async function* fromObject(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<unknown[]> {
      let header = true;
      try {
        for await (const batch of csvRecordBatches(chunks)) {
          for (const record of batch) {
            if (header) {
              header = false;
              continue;
            }
            rows++;
            yield convertRecord(record, convert);
          }
        }
      } catch (error) {
        if (signal?.aborted) throw new CancelledError(`Cancelled while reading the results of Athena query ${queryId}.`);
        throw error;
      }
    }
    async function* fromPages(): AsyncGenerator<unknown[]> {
      let page = first;
      first = undefined;
      let skip = hasHeader;
      while (page) {
        for (const row of page.ResultSet?.Rows ?? []) {
          if (skip) {
            skip = false;
            continue;
          }
          rows++;
          yield convertRow(row, convert);
        }
        // Only the current page is referenced: memory stays one page whatever the result size.
        page = page.NextToken ? await fetchPage(page.NextToken) : undefined;
      }
    }

    return {
      columns,
      rows: stream ? fromObject(stream) : fromPages(),
      stats: (): QueryStats => ({ rows, bytesScanned, bytesExact: true, elapsedMs, queryId, ...(stream ? { resultObject: location } : {}) }),
    };
  }

  /** The result object's body as a stream, or why it cannot be read (the caller pages instead). */
  private async openObject(object: { Bucket: string; Key: string }, signal: AbortSignal | undefined): Promise<{ chunks: AsyncIterable<Uint8Array> } | { refused: string }> {
    const { client, sdk } = await this.aws.get('s3');
    try {
      const out = await client.send(new sdk.GetObjectCommand(object), { abortSignal: signal });
      return { chunks: out.Body as unknown as AsyncIterable<Uint8Array> };
    } catch (error) {
      // Named refusals only: a bucket policy or KMS key the caller lacks, a result already expired by a lifecycle
      // rule, or an output bucket in another region than the client's.
      if (isAwsError(error, 'AccessDenied', 'AccessDeniedException', 'Forbidden', 'KMS.AccessDeniedException', 'NoSuchKey', 'NoSuchBucket', 'PermanentRedirect', 'AuthorizationHeaderMalformed'))
        return { refused: (error as { awsCode: string }).awsCode };
      throw error;
    }
  }

  async tables(): Promise<TableDescription[]> {
    const { client, sdk } = await this.aws.get('glue');
    const tables: Table[] = [];
    let token: string | undefined;
    do {
      try {
        const page = await client.send(new sdk.GetTablesCommand({ DatabaseName: this.settings.database, ...(token ? { NextToken: token } : {}) }), this.aws.sendOptions);
        tables.push(...(page.TableList ?? []));
        token = page.NextToken;
      } catch (error) {
        // A state the user can fix, not a bug: the datalake's database is made by `analytics apply`.
        if (isAwsError(error, 'EntityNotFoundException'))
          throw new UserError(
            `The Glue database "${this.settings.database}" does not exist in this account and region, so there are no tables to list.`,
            'Create it with `iotctl analytics apply` (it makes the database and the datastores\' tables), or check athena.database, --region and --profile.',
            'DATABASE_NOT_FOUND',
          );
        throw error;
      }
    } while (token);
    const out: TableDescription[] = [];
    // A few tables at a time: Glue's GetPartitions rate is shared with everything else in the account.
    for (let i = 0; i < tables.length; i += 4) {
      out.push(...(await Promise.all(tables.slice(i, i + 4).map(async (t) => ({ ...describeTable(t), ...(t.PartitionKeys?.length ? { partitions: await this.countPartitions(t.Name!) } : {}) })))));
    }
    return out.sort((a, b) => a.table.localeCompare(b.table));
  }

  /** Partitions registered in Glue (the local target's "days"), without their column schemas. */
  private async countPartitions(table: string): Promise<number> {
    const { client, sdk } = await this.aws.get('glue');
    let count = 0;
    let token: string | undefined;
    do {
      const page = await client.send(
        new sdk.GetPartitionsCommand({ DatabaseName: this.settings.database, TableName: table, ExcludeColumnSchema: true, MaxResults: 1000, ...(token ? { NextToken: token } : {}) }),
        this.aws.sendOptions,
      );
      count += page.Partitions?.length ?? 0;
      token = page.NextToken;
    } while (token);
    return count;
  }
}

function queryFailed(queryId: string, execution: QueryExecution): UserError {
  const status = execution.Status ?? {};
  const reason = (status.StateChangeReason ?? status.AthenaError?.ErrorMessage ?? 'no reason given').replace(/\s+/g, ' ').trim();
  if (status.State === 'CANCELLED') {
    return new UserError(`Athena query ${queryId} was cancelled: ${reason}`, 'Someone or something stopped it (StopQueryExecution, or a workgroup limit); run it again.', 'ATHENA_QUERY_CANCELLED');
  }
  // ErrorCategory 2 is a user error (bad SQL, missing table); 1 is Athena's own, and worth a retry.
  const userFault = status.AthenaError?.ErrorCategory === 2 || /SYNTAX_ERROR|TABLE_NOT_FOUND|COLUMN_NOT_FOUND|does not exist|cannot be resolved/i.test(reason);
  return new UserError(
    `Athena query ${queryId} failed: ${reason}`,
    userFault ? 'Fix the SQL; `iotctl athena tables` lists the tables and their columns.' : 'Athena could not run it; retry, and check the workgroup, the output location and the query id in the Athena console.',
    'ATHENA_QUERY_FAILED',
  );
}

// The literal forms Athena's ExecutionParameters accept as they are; anything else is sent as a string,
// so `--param sensor-1` means 'sensor-1' on both targets (the local engine binds the same way).
const LITERAL = [/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/, /^(true|false|null)$/i, /^'(?:[^']|'')*'$/, /^(DATE|TIMESTAMP|TIME|INTERVAL)\s+'(?:[^']|'')*'$/i];

export function athenaParameter(value: string): string {
  const v = value.trim();
  return LITERAL.some((re) => re.test(v)) ? v : `'${value.replace(/'/g, "''")}'`;
}

type Converter = (text: string) => unknown;

const asString: Converter = (s) => s;

/** How a cell's text becomes a value, by the column's Athena type. */
export function converterFor(type: string | undefined): Converter {
  const t = (type ?? 'varchar').toLowerCase().replace(/\(.*$/, '').trim();
  switch (t) {
    case 'tinyint':
    case 'smallint':
    case 'integer':
    case 'int':
      return (s) => Number(s);
    case 'bigint':
      // Past 2^53 a number would silently change the value; keep the exact digits instead.
      return (s) => {
        const n = Number(s);
        return Number.isSafeInteger(n) ? n : s;
      };
    case 'double':
    case 'float':
    case 'real':
    case 'decimal':
      return (s) => Number(s);
    case 'boolean':
      return (s) => s === 'true';
    default:
      // varchar, char, date, timestamp, json, arrays and maps: Athena's text, as it printed it.
      return asString;
  }
}

function convertRow(row: Row, convert: Converter[]): unknown[] {
  const data = row.Data ?? [];
  const out = new Array<unknown>(convert.length);
  for (let i = 0; i < convert.length; i++) {
    const text = data[i]?.VarCharValue;
    out[i] = text === undefined ? null : convert[i]!(text);
  }
  return out;
}

function convertRecord(record: CsvRecord, convert: Converter[]): unknown[] {
  const out = new Array<unknown>(convert.length);
  for (let i = 0; i < convert.length; i++) {
    const text = record[i];
    out[i] = text === null || text === undefined ? null : convert[i]!(text);
  }
  return out;
}

/** s3://bucket/key of a result file (`<id>.csv`: SELECT results; DDL's are `.txt`). */
export function s3Location(uri: string): { Bucket: string; Key: string } | undefined {
  const m = /^s3:\/\/([^/]+)\/(.+\.csv)$/.exec(uri);
  return m ? { Bucket: m[1]!, Key: m[2]! } : undefined;
}

function isHeaderRow(row: Row | undefined, columns: ColumnInfo[]): boolean {
  if (!row?.Data || row.Data.length !== columns.length) return false;
  return row.Data.every((d, i) => d.VarCharValue === columns[i]!.name);
}

function describeTable(t: Table): TableDescription {
  const sd = t.StorageDescriptor ?? {};
  const col = (c: { Name?: string; Type?: string }): ColumnInfo => ({ name: c.Name ?? '', type: c.Type ?? 'unknown' });
  return {
    table: t.Name ?? '',
    kind: 'table',
    format: tableFormat(t),
    ...(sd.Location ? { location: sd.Location } : {}),
    columns: [...(sd.Columns ?? []).map(col), ...(t.PartitionKeys ?? []).map(col)],
  };
}

/** parquet, json, orc, avro, csv... from the SerDe and input format, as Athena decides how to read. */
export function tableFormat(t: Pick<Table, 'StorageDescriptor' | 'Parameters'>): string {
  const sd = t.StorageDescriptor ?? {};
  const hints = `${sd.SerdeInfo?.SerializationLibrary ?? ''} ${sd.InputFormat ?? ''}`.toLowerCase();
  if (hints.includes('parquet')) return 'parquet';
  if (hints.includes('orc')) return 'orc';
  if (hints.includes('avro')) return 'avro';
  if (hints.includes('json')) return 'json';
  if (hints.includes('csv') || hints.includes('lazysimpleserde') || hints.includes('textinputformat')) return 'csv';
  if (hints.includes('iceberg')) return 'iceberg';
  const classification = t.Parameters?.classification ?? t.Parameters?.table_type;
  return classification ? classification.toLowerCase() : 'unknown';
}
