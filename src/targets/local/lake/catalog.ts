import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { JSDuckDBValueConverter, StatementType, type DuckDBConnection, type DuckDBMaterializedResult, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { UserError } from '../../../ui/errors.js';
import { isAlive } from '../daemon-info.js';
import type { Db } from '../store.js';
import { readLakeConfig } from './config.js';
import type { KnownColumn } from './columns.js';
import { confine, fileList, ident, lit, openDuck, SANDBOX_ERROR, type Duck } from './duck.js';
import { LakePaths } from './paths.js';
import { quotedLength, sqlTokens } from './sql-text.js';
import { ensureLakeTables } from './tables.js';
import { sqlIdentifier } from '../../../spec/names.js';

export type TableKind = 'datastore' | 'channel';

export interface CatalogFile {
  path: string;
  dt: string;
  bytes: number;
}

export interface CatalogTable {
  /** Qualified name as a query can use it unchanged, e.g. iotctl.telemetry, channels.raw_in, "my-fleet".telemetry. */
  qualified: string;
  schema: string;
  name: string;
  kind: TableKind;
  format: 'parquet' | 'json';
  files: CatalogFile[];
}

export interface TableDescription {
  table: string;
  kind: TableKind;
  format: 'parquet' | 'json';
  files: number;
  bytes: number;
  partitions: number;
  columns: { name: string; type: string }[];
}

export interface QueryStats {
  /** Rows the query produced (all of them, even when fewer are returned). */
  rows: number;
  /** Sum of the sizes of the lake files the query read, after partition pruning. */
  bytesScanned: number;
  filesScanned: number;
  /** Files in the tables the query read, before pruning. */
  filesTotal: number;
  /** False when DuckDB's profile did not name every file and the figure is estimated from file counts. */
  bytesExact: boolean;
  elapsedMs: number;
}

export interface QueryResult {
  columns: { name: string; type: string }[];
  rows: unknown[][];
  truncated: boolean;
  stats: QueryStats;
}

export interface CatalogOptions {
  db: Db;
  stateDir: string;
  /** The Athena database name; datastore tables live in this schema (and resolve unqualified too). */
  database?: string;
  threads?: number;
  /** Tables to expose; by default the applied configuration's datastores and channels. */
  datastores?: { name: string; format: 'parquet' | 'json' }[];
  channels?: string[];
  /** A file iotctl itself writes through this DuckDB (a dataset's content); user SQL cannot write anywhere. */
  outputFile?: string;
}

/** Presto/Athena functions DuckDB lacks (or names differently), as macros, so dataset SQL ports unchanged. */
const PRESTO_MACROS: Record<string, string> = {
  from_unixtime: 'CREATE MACRO from_unixtime(x) AS to_timestamp(x)',
  to_unixtime: 'CREATE MACRO to_unixtime(t) AS epoch(t)',
  from_iso8601_timestamp: 'CREATE MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ)',
  from_iso8601_date: 'CREATE MACRO from_iso8601_date(s) AS CAST(s AS DATE)',
  json_extract_scalar: 'CREATE MACRO json_extract_scalar(j, p) AS json_extract_string(j, p)',
  regexp_like: 'CREATE MACRO regexp_like(s, p) AS regexp_matches(s, p)',
  approx_distinct: 'CREATE MACRO approx_distinct(x) AS approx_count_distinct(x)',
};

/**
 * MySQL-style format specifiers (Trino's date_format/date_parse) as DuckDB strftime/strptime ones.
 * `%%` and `%M` (month name) are moved aside first so later replacements cannot touch them.
 */
const MYSQL_FORMAT = [
  ['%%', '\u0002'], ['%M', '\u0001B'], ['%W', '\u0001A'], ['%i', '%M'], ['%s', '%S'], ['%h', '%I'], ['%T', '%H:%M:%S'],
  ['%r', '%I:%M:%S %p'], ['%c', '%-m'], ['%e', '%-d'], ['%k', '%-H'], ['%l', '%-I'], ['%v', '%V'], ['\u0001', '%'], ['\u0002', '%%'],
].reduce((expr, [from, to]) => `replace(${expr}, ${sqlText(from!)}, ${sqlText(to!)})`, 'f');

function sqlText(s: string): string {
  // Control characters (the placeholders) as chr(n), the rest as a quoted literal.
  return s.split(/([\u0000-\u001f])/).filter(Boolean).map((part) => (part.charCodeAt(0) < 32 ? `chr(${part.charCodeAt(0)})` : lit(part))).join(' || ');
}

/**
 * Trino/Athena date and time functions whose name DuckDB uses with another argument order or meaning;
 * these replace DuckDB's own, so a query written for Athena gives Athena's results.
 * - date_add(unit, value, t): DuckDB's is date_add(date, interval).
 * - date_diff(unit, t1, t2): whole units elapsed (Trino), not boundaries crossed (DuckDB's date_diff); DuckDB's date_sub is Trino's.
 * - date_format(t, format): MySQL specifiers (%i minutes, %s seconds, %M month name).
 * date_parse is not mapped: DuckDB's strptime needs a constant format, which a macro cannot give it.
 */
const TRINO_MACROS: string[] = [
  `CREATE OR REPLACE MACRO to_interval_unit(unit, value) AS CASE lower(unit)
     WHEN 'millisecond' THEN to_milliseconds(value) WHEN 'second' THEN to_seconds(value) WHEN 'minute' THEN to_minutes(value)
     WHEN 'hour' THEN to_hours(value) WHEN 'day' THEN to_days(CAST(value AS INTEGER)) WHEN 'week' THEN to_weeks(CAST(value AS INTEGER))
     WHEN 'month' THEN to_months(CAST(value AS INTEGER)) WHEN 'quarter' THEN to_months(CAST(value AS INTEGER) * 3)
     WHEN 'year' THEN to_years(CAST(value AS INTEGER)) ELSE error('date_add: unknown unit ' || unit) END`,
  `CREATE OR REPLACE MACRO date_add(unit, value, t) AS t + to_interval_unit(unit, value)`,
  `CREATE OR REPLACE MACRO date_diff(unit, t1, t2) AS date_sub(unit, t1, t2)`,
  `CREATE OR REPLACE MACRO mysql_to_strftime(f) AS ${MYSQL_FORMAT}`,
  `CREATE OR REPLACE MACRO date_format(t, f) AS strftime(t, mysql_to_strftime(f))`,
];

const CHANNEL_SCHEMA = 'channels';
const CHANNEL_COLUMNS = { message_id: 'VARCHAR', received_at: 'TIMESTAMP', payload: 'VARCHAR', payload_encoding: 'VARCHAR' };
/** As stored in the segments: received_at in epoch milliseconds. */
const CHANNEL_FILE_COLUMNS = { ...CHANNEL_COLUMNS, received_at: 'BIGINT' };

/**
 * The lake as SQL tables, on an in-memory DuckDB: each datastore is a view over the Parquet (or JSON)
 * files its manifest lists, with hive partitioning on `dt` so a filter on the day reads only that day's
 * files; each channel is a view `channels.<name>` over its raw NDJSON segments. Views list committed
 * files only, so a query never sees a half-written or uncommitted file.
 */
export class Catalog {
  readonly database: string;
  tables: CatalogTable[] = [];
  private readonly db: Db;
  private readonly paths: LakePaths;
  private readonly opts: CatalogOptions;
  private readonly knownColumns = new Map<string, KnownColumn[]>();
  private readonly profileFile: string;
  private readonly spillDir: string;

  private constructor(
    private readonly duck: Duck,
    opts: CatalogOptions,
    scratch: ReturnType<typeof scratchFiles>,
  ) {
    this.db = opts.db;
    this.opts = opts;
    this.paths = new LakePaths(opts.stateDir);
    this.database = opts.database ?? 'iotctl';
    this.profileFile = scratch.profileFile;
    this.spillDir = scratch.spillDir;
  }

  /**
   * The catalog's DuckDB reads only the lake's table folders (see confine()): its profile and spill files
   * live in the lake's scratch folder, and a dataset's content file is the one other file it may write.
   */
  static async open(opts: CatalogOptions): Promise<Catalog> {
    ensureLakeTables(opts.db);
    const scratch = scratchFiles(new LakePaths(opts.stateDir));
    const duck = await openDuck({ threads: opts.threads, tempDirectory: scratch.spillDir });
    const catalog = new Catalog(duck, opts, scratch);
    try {
      await catalog.init();
    } catch (e) {
      catalog.close();
      throw e;
    }
    return catalog;
  }

  get connection(): DuckDBConnection {
    return this.duck.connection;
  }

  close(): void {
    this.duck.close();
    rmSync(this.profileFile, { force: true });
    rmSync(this.spillDir, { recursive: true, force: true });
  }

  private async init(): Promise<void> {
    const c = this.connection;
    await c.run(`CREATE SCHEMA IF NOT EXISTS ${ident(this.database)}`);
    await c.run(`CREATE SCHEMA IF NOT EXISTS ${CHANNEL_SCHEMA}`);
    const existing = new Set(
      ((await (await c.runAndReadAll(`SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_name IN (${Object.keys(PRESTO_MACROS).map(lit).join(', ')})`)).getRowObjectsJson()) as {
        function_name: string;
      }[]).map((r) => r.function_name),
    );
    for (const [name, sql] of Object.entries(PRESTO_MACROS)) if (!existing.has(name)) await c.run(sql);
    for (const sql of TRINO_MACROS) await c.run(sql);
    await c.run(`SET search_path = ${lit(`${this.database},main`)}`);
    // Profiling stays on for the catalog's connection: query() reads each query's profile to tell which
    // files were scanned. Every statement overwrites the file; it is removed on close().
    await c.run(`PRAGMA enable_profiling = 'json'`);
    // Only what scannedFiles() reads: no per-operator timing, which costs time on every query.
    await c.run(`SET custom_profiling_settings = '{"EXTRA_INFO": "true", "OPERATOR_TYPE": "true"}'`);
    await c.run(`SET profiling_output = ${lit(this.profileFile)}`);
    await confine(c, { folders: this.paths.tableFolders, files: [this.profileFile, ...(this.opts.outputFile ? [this.opts.outputFile] : [])] });
    await this.refresh();
  }

  /** Re-reads the manifests and redefines every view (a long-lived catalog calls this before a query). */
  async refresh(): Promise<void> {
    const config = this.opts.datastores && this.opts.channels ? undefined : readLakeConfig(this.db);
    const datastores = this.opts.datastores ?? [...config!.datastores.values()].map((d) => ({ name: d.name, format: d.format }));
    const channels = this.opts.channels ?? [...config!.channels.keys()];
    const tables: CatalogTable[] = [];
    for (const d of datastores) {
      const rows = this.db.prepare(`SELECT file, dt, bytes, schema FROM lake_datastore_files WHERE datastore = ? ORDER BY dt, created_at, file`).all(d.name) as {
        file: string;
        dt: string;
        bytes: number;
        schema: string | null;
      }[];
      const files = rows.map((f) => ({ path: join(this.paths.root, f.file), dt: f.dt, bytes: f.bytes }));
      // Files written with one schema need no union_by_name, which costs a footer read per file at bind time.
      const oneSchema = rows.length > 0 && rows.every((f) => f.schema !== null && f.schema === rows[0]!.schema);
      const known = this.db.prepare(`SELECT key, name, type, position FROM lake_datastore_columns WHERE datastore = ? ORDER BY position`).all(d.name) as KnownColumn[];
      this.knownColumns.set(d.name, known);
      tables.push({ qualified: `${sqlIdentifier(this.database)}.${sqlIdentifier(d.name)}`, schema: this.database, name: d.name, kind: 'datastore', format: d.format, files });
      await this.connection.run(`CREATE OR REPLACE VIEW ${ident(this.database)}.${ident(d.name)} AS ${datastoreSource(d.format, files, known, !oneSchema)}`);
    }
    for (const name of channels) {
      const files = (this.db.prepare(`SELECT file, day AS dt, committed_bytes AS bytes FROM lake_channel_segments WHERE channel = ? AND committed_bytes > 0 ORDER BY seq`).all(name) as {
        file: string;
        dt: string;
        bytes: number;
      }[]).map((f) => ({ path: join(this.paths.root, f.file), dt: f.dt, bytes: f.bytes }));
      tables.push({ qualified: `${CHANNEL_SCHEMA}.${sqlIdentifier(name)}`, schema: CHANNEL_SCHEMA, name, kind: 'channel', format: 'json', files });
      await this.connection.run(`CREATE OR REPLACE VIEW ${CHANNEL_SCHEMA}.${ident(name)} AS ${channelSource(files)}`);
    }
    this.tables = tables;
  }

  /** Every table with its columns and types as DuckDB reads them from the files. */
  async describe(): Promise<TableDescription[]> {
    const out: TableDescription[] = [];
    for (const t of this.tables) {
      const rows = (await (await this.connection.runAndReadAll(`DESCRIBE ${ident(t.schema)}.${ident(t.name)}`)).getRowObjectsJson()) as { column_name: string; column_type: string }[];
      out.push({
        table: t.qualified,
        kind: t.kind,
        format: t.format,
        files: t.files.length,
        bytes: t.files.reduce((s, f) => s + f.bytes, 0),
        partitions: new Set(t.files.map((f) => f.dt)).size,
        columns: rows.map((r) => ({ name: r.column_name, type: r.column_type })),
      });
    }
    return out;
  }

  /** Why the SQL would be refused (syntax, unknown table or column, not a lake read), or undefined when it binds. */
  async check(sql: string): Promise<string | undefined> {
    try {
      (await this.prepareRead(sql)).destroySync();
      return undefined;
    } catch (e) {
      return (e as Error).message;
    }
  }

  /**
   * Runs one statement of user SQL that only reads the lake, materialized. DuckDB's sandbox refuses
   * files outside the lake; statements other than a query (COPY, ATTACH, SET, ...) are refused here.
   */
  async runRead(sql: string): Promise<DuckDBMaterializedResult> {
    const prepared = await this.prepareRead(sql);
    try {
      return await prepared.run();
    } catch (e) {
      throw this.queryError(e);
    } finally {
      prepared.destroySync();
    }
  }

  /**
   * Prepares (parses and binds) the one statement of `sql`, which must be a query: SELECT, WITH, VALUES,
   * SHOW, DESCRIBE, SUMMARIZE, or EXPLAIN [ANALYZE] of one. A file outside the lake is refused already when
   * DuckDB binds it.
   */
  async prepareRead(sql: string): Promise<DuckDBPreparedStatement> {
    const prepared = await this.prepareOne(sql);
    const explained = prepared.statementType === StatementType.EXPLAIN ? explainedStatement(sql) : undefined;
    if (explained !== undefined) {
      // EXPLAIN ANALYZE runs its statement: that one must be a query too.
      await this.prepareRead(explained)
        .then((inner) => inner.destroySync())
        .catch((e: unknown) => {
          prepared.destroySync();
          throw e;
        });
      return prepared;
    }
    if (prepared.statementType !== StatementType.SELECT) {
      const type = (StatementType[prepared.statementType] ?? 'this').replace(/_STATEMENT$/, '').replace(/_/g, ' ');
      prepared.destroySync();
      throw this.lakeOnly(` and runs only queries: ${type} statements are refused.`);
    }
    return prepared;
  }

  /** Runs SQL that iotctl built around spec text (a dataset's CREATE TABLE AS) as exactly one statement. */
  async runOne(sql: string): Promise<void> {
    const prepared = await this.prepareOne(sql);
    try {
      await prepared.run();
    } catch (e) {
      throw this.queryError(e);
    } finally {
      prepared.destroySync();
    }
  }

  /** Parses and binds `sql`, which must be one statement (DuckDB would run every statement of a string). */
  private async prepareOne(sql: string): Promise<DuckDBPreparedStatement> {
    try {
      return await this.connection.prepare(sql);
    } catch (e) {
      const message = (e as Error).message;
      if (/Cannot prepare multiple statements/.test(message)) throw new QueryError('Athena runs one statement at a time; this SQL has more than one.');
      if (/No statement to prepare/.test(message)) throw new QueryError('The SQL has no statement to run.');
      throw this.queryError(e);
    }
  }

  /** DuckDB's error as a user error: the sandbox's refusals name the lake's tables. */
  private queryError(e: unknown): UserError {
    const message = (e as Error).message;
    if (!SANDBOX_ERROR.test(message)) return new QueryError(message);
    const path = /Cannot access (file|directory) "(.*?)"/.exec(message);
    const setting = /configuration option "(.*?)"/.exec(message);
    if (path) return this.lakeOnly(`, not the ${path[1] === 'file' ? 'file' : 'folder'} "${path[2]}".`);
    if (setting) return this.lakeOnly(` and cannot change the setting "${setting[1]}".`);
    if (/extension/i.test(message)) return this.lakeOnly(' and cannot install or load extensions.');
    return this.lakeOnly(` (DuckDB: ${firstLine(message)}).`);
  }

  private lakeOnly(what: string): UserError {
    const tables = this.tables.map((t) => t.qualified);
    return new UserError(
      `Athena can read only the lake's tables${what} Tables: ${tables.length ? tables.join(', ') : 'none yet'}.`,
      'Query those tables; `iotctl athena tables` lists their columns.',
      'LAKE_ONLY',
    );
  }

  /**
   * Table names the SQL reads (without schema), from DuckDB's parse tree; names of CTEs are left out.
   * Throws with DuckDB's message when the SQL does not parse.
   */
  async referencedTables(sql: string): Promise<string[]> {
    const reader = await this.connection.runAndReadAll(`SELECT json_serialize_sql(${lit(sql)})`);
    const tree = JSON.parse(String(reader.getRows()[0]![0])) as { error: boolean; error_message?: string };
    if (tree.error) throw new Error(`Parser Error: ${tree.error_message ?? 'the SQL does not parse'}`);
    const tables = new Set<string>();
    const ctes = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (typeof node !== 'object' || node === null) return;
      const o = node as Record<string, unknown>;
      if (o.type === 'BASE_TABLE' && typeof o.table_name === 'string') tables.add(o.schema_name ? `${String(o.schema_name)}.${o.table_name}` : o.table_name);
      const map = (o.cte_map as { map?: { key: string }[] } | undefined)?.map;
      if (Array.isArray(map)) for (const entry of map) ctes.add(entry.key.toLowerCase());
      for (const value of Object.values(o)) walk(value);
    };
    walk(tree);
    return [...tables].filter((t) => t.includes('.') || !ctes.has(t.toLowerCase())).map((t) => (t.startsWith(`${this.database}.`) ? t.slice(this.database.length + 1) : t));
  }

  /**
   * Runs one statement. `?` placeholders take `params` as Athena execution parameters do: each value is
   * SQL literal text (5, 'text', DATE '2024-01-01'); a bare word is taken as a string. At most `maxRows`
   * rows are returned; every row is still produced and counted.
   */
  async query(sql: string, opts: { params?: readonly string[]; maxRows?: number } = {}): Promise<QueryResult> {
    const text = bindParameters(sql, opts.params ?? []);
    const maxRows = opts.maxRows ?? Number.POSITIVE_INFINITY;
    const started = performance.now();
    let columns: { name: string; type: string }[];
    const rows: unknown[][] = [];
    let total = 0;
    try {
      // Materialized, like Athena's result set: a streamed result runs its last pipeline on fewer threads,
      // which made small aggregates measurably slower than a bare query.
      const result = await this.runRead(text);
      const types = result.columnTypes();
      columns = result.columnNames().map((name, i) => ({ name, type: types[i]!.toString() }));
      for (;;) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        total += chunk.rowCount;
        if (rows.length < maxRows) {
          const converted = chunk.convertRows(JSDuckDBValueConverter).slice(0, maxRows - rows.length);
          for (const row of converted) rows.push(row.map((v, i) => plainValue(v, columns[i]!.type)));
        }
      }
    } catch (e) {
      throw e instanceof UserError ? e : new QueryError((e as Error).message);
    }
    const elapsedMs = performance.now() - started;
    // Read the profile before any other statement overwrites it.
    const scanned = await this.scannedFiles(this.profileFile);
    return { columns, rows, truncated: total > rows.length, stats: { rows: total, elapsedMs, ...scanned } };
  }

  /** Which lake files the last statement read (call it before running another). */
  lastScan(): Promise<Pick<QueryStats, 'bytesScanned' | 'filesScanned' | 'filesTotal' | 'bytesExact'>> {
    return this.scannedFiles(this.profileFile);
  }

  /**
   * Which lake files the last query read, from DuckDB's profile: each table scan lists its files (up to
   * five, then "...") and the partition filter it pruned with; when the list is cut short, the filter is
   * evaluated over the table's file list to name the rest.
   */
  private async scannedFiles(profileFile: string): Promise<Pick<QueryStats, 'bytesScanned' | 'filesScanned' | 'filesTotal' | 'bytesExact'>> {
    let profile: ProfileNode;
    try {
      profile = JSON.parse(readFileSync(profileFile, 'utf8')) as ProfileNode;
    } catch {
      return { bytesScanned: 0, filesScanned: 0, filesTotal: 0, bytesExact: false };
    }
    const byPath = new Map<string, { table: CatalogTable; file: CatalogFile }>();
    for (const t of this.tables) for (const f of t.files) byPath.set(f.path, { table: t, file: f });
    let bytes = 0;
    let files = 0;
    let total = 0;
    let exact = true;
    for (const scan of tableScans(profile)) {
      const info = scan.extra_info ?? {};
      const listed = String(info['Filename(s)'] ?? '')
        .split(', ')
        .filter(Boolean);
      if (!listed.length) continue;
      const truncated = listed[listed.length - 1] === '...';
      const named = listed.filter((n) => n !== '...');
      const read = Number(info['Total Files Read'] ?? named.length);
      const table = byPath.get(named[0]!)?.table;
      total += Number(/\/(\d+)$/.exec(String(info['Scanning Files'] ?? ''))?.[1] ?? table?.files.length ?? named.length);
      let chosen: string[] | undefined = truncated ? undefined : named;
      if (!chosen && table) {
        const filter = info['File Filters'];
        if (!filter && read === table.files.length) chosen = table.files.map((f) => f.path);
        else if (filter) {
          const matched = await this.filesMatching(table, String(filter));
          if (matched && matched.length === read) chosen = matched;
        }
      }
      if (chosen) {
        files += chosen.length;
        for (const path of chosen) bytes += byPath.get(path)?.file.bytes ?? sizeOf(path);
      } else {
        // Estimate: the named files exactly, the rest at the table's average file size.
        exact = false;
        files += read;
        for (const path of named) bytes += byPath.get(path)?.file.bytes ?? sizeOf(path);
        const avg = table && table.files.length ? table.files.reduce((s, f) => s + f.bytes, 0) / table.files.length : 0;
        bytes += Math.round(Math.max(0, read - named.length) * avg);
      }
    }
    return { bytesScanned: bytes, filesScanned: files, filesTotal: total, bytesExact: exact };
  }

  private async filesMatching(table: CatalogTable, filter: string): Promise<string[] | undefined> {
    if (!table.files.length) return [];
    const values = table.files.map((f) => `(${lit(f.path)}, DATE ${lit(f.dt)})`).join(', ');
    try {
      const reader = await this.connection.runAndReadAll(`SELECT path FROM (VALUES ${values}) AS files(path, dt) WHERE ${filter}`);
      return reader.getRows().map((r) => String(r[0]));
    } catch {
      return undefined;
    }
  }
}

export class QueryError extends UserError {
  constructor(message: string) {
    super(message.replace(/\s+$/, ''), 'Check the SQL (DuckDB dialect; `iotctl athena tables` lists tables and columns).', 'QUERY_FAILED');
  }
}

interface ProfileNode {
  operator_type?: string;
  operator_name?: string;
  extra_info?: Record<string, unknown>;
  children?: ProfileNode[];
}

function* tableScans(node: ProfileNode): Generator<ProfileNode> {
  if (node.operator_type === 'TABLE_SCAN' && node.extra_info && 'Filename(s)' in node.extra_info) yield node;
  for (const child of node.children ?? []) yield* tableScans(child);
}

/** The statement an EXPLAIN [ANALYZE] [(options)] explains, or undefined when the text says otherwise. */
function explainedStatement(sql: string): string | undefined {
  const tokens = sqlTokens(sql);
  if (tokens.next().value?.text.toUpperCase() !== 'EXPLAIN') return undefined;
  let depth = 0;
  for (const t of tokens) {
    if (t.text === '(') depth++;
    else if (t.text === ')') depth--;
    else if (depth === 0 && t.text.toUpperCase() !== 'ANALYZE') return sql.slice(t.offset);
  }
  return undefined;
}

/**
 * This process's profile and spill files in the lake's scratch folder (created 0700), after removing
 * those of processes that ended without closing their catalog.
 */
function scratchFiles(paths: LakePaths): { profileFile: string; spillDir: string } {
  mkdirSync(paths.scratch, { recursive: true, mode: 0o700 });
  for (const entry of readdirSync(paths.scratch)) {
    const pid = Number(/^(?:profile|spill)-(\d+)-/.exec(entry)?.[1]);
    if (pid && !isAlive(pid)) rmSync(join(paths.scratch, entry), { recursive: true, force: true });
  }
  const id = `${process.pid}-${randomBytes(6).toString('hex')}`;
  return { profileFile: join(paths.scratch, `profile-${id}.json`), spillDir: join(paths.scratch, `spill-${id}`) };
}

function firstLine(s: string): string {
  return s.split('\n')[0]!;
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function datastoreSource(format: 'parquet' | 'json', files: CatalogFile[], known: KnownColumn[], unionByName: boolean): string {
  if (!files.length) {
    const cols = [`CAST(NULL AS VARCHAR) AS __message_id`, `CAST(NULL AS TIMESTAMP) AS __received_at`, ...known.map((c) => `CAST(NULL AS ${c.type}) AS ${ident(c.name)}`), `CAST(NULL AS DATE) AS dt`];
    return `SELECT ${cols.join(', ')} WHERE false`;
  }
  const paths = fileList(files.map((f) => f.path));
  if (format === 'parquet') return `SELECT * FROM read_parquet(${paths}, hive_partitioning = true, hive_types = {'dt': DATE}${unionByName ? ', union_by_name = true' : ''})`;
  const columns = { __message_id: 'VARCHAR', __received_at: 'TIMESTAMP', ...Object.fromEntries(known.map((c) => [c.name, c.type])) };
  return `SELECT * FROM read_json(${paths}, format = 'newline_delimited', hive_partitioning = true, hive_types = {'dt': DATE}, columns = ${structLiteral(columns)})`;
}

function channelSource(files: CatalogFile[]): string {
  if (!files.length) {
    const cols = Object.entries(CHANNEL_COLUMNS).map(([name, type]) => `CAST(NULL AS ${type}) AS ${ident(name)}`);
    return `SELECT ${[...cols, 'CAST(NULL AS DATE) AS dt'].join(', ')} WHERE false`;
  }
  // ignore_errors: after a crash, a segment may end in a torn line past its committed length until the
  // daemon restarts and truncates it.
  return `SELECT message_id, epoch_ms(received_at) AS received_at, payload, payload_encoding, dt FROM read_json(${fileList(files.map((f) => f.path))}, format = 'newline_delimited', hive_partitioning = true, hive_types = {'dt': DATE}, ignore_errors = true, columns = ${structLiteral(CHANNEL_FILE_COLUMNS)})`;
}

function structLiteral(columns: Record<string, string>): string {
  return `{${Object.entries(columns)
    .map(([name, type]) => `${lit(name)}: ${lit(type)}`)
    .join(', ')}}`;
}

/** JS values from DuckDB, made printable and JSON-safe. */
export function plainValue(v: unknown, type: string): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) return null;
    return type === 'DATE' ? v.toISOString().slice(0, 10) : v.toISOString();
  }
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map((x) => plainValue(x, ''));
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, plainValue(x, '')]));
  return v;
}

const LITERAL = [
  /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/,
  /^(true|false|null)$/i,
  /^'(?:[^']|'')*'$/,
  /^(DATE|TIMESTAMP|TIME|INTERVAL)\s+'(?:[^']|'')*'$/i,
];

/**
 * Substitutes `?` placeholders (outside strings, quoted identifiers and comments) with parameter values,
 * as Athena's execution parameters do. Literal substitution keeps partition pruning: DuckDB sees a
 * constant filter on `dt` exactly as if it had been typed in.
 */
export function bindParameters(sql: string, params: readonly string[]): string {
  let out = '';
  let used = 0;
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    const skip = quotedLength(sql, i);
    if (skip) {
      out += sql.slice(i, i + skip);
      i += skip;
      continue;
    }
    if (ch === '?') {
      if (used >= params.length) {
        used++;
        i++;
        continue;
      }
      out += literal(params[used++]!);
      i++;
      continue;
    }
    out += ch;
    i++;
  }
  if (used !== params.length)
    throw new UserError(
      `The query has ${used} ? placeholder${used === 1 ? '' : 's'} but ${params.length} --param value${params.length === 1 ? ' was' : 's were'} given.`,
      'Give one --param per ?, in order.',
      'PARAMETER_MISMATCH',
    );
  return out;
}

function literal(value: string): string {
  const v = value.trim();
  return LITERAL.some((re) => re.test(v)) ? v : lit(value);
}
