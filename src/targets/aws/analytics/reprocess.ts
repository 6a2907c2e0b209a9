import { createHash, randomUUID } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline as pipe } from 'node:stream/promises';
import { createGzip, gunzipSync } from 'node:zlib';
import { lambdaInvoke, tableInputWithColumns, thingLookup } from '../../../iot/pipeline/aws-deps.js';
import { compileFirehoseTransform, widenGlueColumns, type FirehoseInputRecord, type FirehoseTransform } from '../../../iot/pipeline/firehose.js';
import { compilePipeline } from '../../../iot/pipeline/index.js';
import type { PipelineDeps } from '../../../iot/pipeline/types.js';
import type { ReprocessResult } from '../../../ports.js';
import type { Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import { arn } from '../arn.js';
import { AwsCallError, isAwsError, type AwsClients } from '../sdk.js';
import { listObjects } from './s3-objects.js';
import { lakePlace } from './datalake.js';

/**
 * `analytics reprocess` on the datalake engine: re-runs a pipeline's current activities over the raw channel
 * objects (raw/<channel>/dt=D/, the messages unchanged as NDJSON) and replaces what the pipeline wrote to its
 * datastore for those days, as the local lake replaces the rows of the window.
 *
 * Firehose mixes messages of different times in one object, so the rows of a window can only be replaced
 * exactly per whole ingest day: the window is widened to whole UTC days. For each day that has raw objects:
 *
 *   1. every raw line goes through compileFirehoseTransform, the record handling the transform Lambda runs;
 *   2. the rows become ONE new object datastore/<ds>/dt=D/<pipeline stream>-reprocess-<id>.parquet (typed by
 *      the datastore's Glue table, widened first as the Lambda widens it) or .json.gz;
 *   3. failed records go to errors/<pipeline>/processing-failed/dt=D/ with their reason;
 *   4. then this pipeline's previous objects of that day are deleted (Firehose's and earlier reprocess
 *      outputs, never another pipeline's). Write first, delete after: a crash leaves duplicates, never a loss.
 *
 * Days without raw objects are left alone (there is nothing to rebuild their rows from), and so is a day
 * Firehose may still be delivering (today, and the first minutes of tomorrow): see DELIVERY_GRACE_MS.
 */

export type ReprocessSpec = Pick<Spec, 'project' | 'analytics' | 'athena'>;

export interface ReprocessOptions {
  from?: number;
  to?: number;
  progress?: (line: string) => void;
  /** Records per transform call (the Lambda sees Firehose batches of up to a few MB). */
  batchSize?: number;
}

const DAY_MS = 86_400_000;

// ------------------------------------------------------------------------------------------ pure parts

export const utcDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
export const dayStart = (day: string): number => Date.parse(`${day}T00:00:00Z`);

/**
 * How long after a day ends Firehose may still deliver its objects: the raw stream buffers up to 300 s, the
 * pipeline stream 60 s in front of the transform and 300 s after it. A day is replaced only once this has passed,
 * so no object of it can arrive after its raw objects were read (and be deleted without being reprocessed).
 */
export const DELIVERY_GRACE_MS = 15 * 60_000;

/**
 * The days to reprocess: the raw days within [from, to] widened to whole UTC days (no bound: the first or last
 * raw day), less the days still being delivered at `now` (`pending`). `from`/`to` is the window replaced: from
 * 00:00:00.000 of the first day reprocessed to 23:59:59.999 of the last (the widened request when there is none).
 */
export function reprocessDays(rawDays: readonly string[], window: { from?: number; to?: number }, now: number): { days: string[]; pending: string[]; from: number; to: number } {
  const sorted = [...rawDays].sort();
  const first = window.from !== undefined ? utcDay(window.from) : sorted[0];
  const last = window.to !== undefined ? utcDay(window.to) : sorted.at(-1);
  if (first === undefined || last === undefined) return { days: [], pending: [], from: window.from ?? 0, to: window.to ?? 0 };
  const inWindow = sorted.filter((d) => d >= first && d <= last);
  const done = (d: string) => dayStart(d) + DAY_MS + DELIVERY_GRACE_MS <= now;
  const days = inWindow.filter(done);
  const [a, b] = days.length ? [days[0]!, days.at(-1)!] : [first, last];
  return { days, pending: inWindow.filter((d) => !done(d)), from: dayStart(a), to: dayStart(b) + DAY_MS - 1 };
}

const basename = (key: string) => key.slice(key.lastIndexOf('/') + 1);

/** After `<stream>-`: Firehose's `<version>-YYYY-MM-DD-HH-MM-SS-<random>[.ext]` (UTC, no CustomTimeZone set). */
const FIREHOSE_SUFFIX = /^(\d+)-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-[0-9A-Fa-f-]+(\.[A-Za-z0-9.]+)?$/;
/** After `<stream>-`: what reprocess writes. */
const REPROCESS_SUFFIX = /^reprocess-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(parquet|json\.gz|json)$/;

/**
 * The time Firehose put in an object's name (`<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<random>`), or undefined.
 * The stream name may itself contain '-' and digits, so the suffix is matched from the end.
 */
export function firehoseObjectTime(key: string): number | undefined {
  const m = /-(\d+)-(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-[0-9A-Fa-f-]+?(\.[A-Za-z0-9.]+)?$/.exec(basename(key));
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(2, 8).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * Whether delivery stream `stream` wrote this object (Firehose's name, or a reprocess output). A prefix test
 * alone is not enough: pipeline `a` has stream `...-pl-a` and pipeline `a-1` has `...-pl-a-1`.
 */
export function writtenByStream(key: string, stream: string): boolean {
  const name = basename(key);
  if (!name.startsWith(`${stream}-`)) return false;
  const rest = name.slice(stream.length + 1);
  return FIREHOSE_SUFFIX.test(rest) || REPROCESS_SUFFIX.test(rest);
}

/** The name of a reprocess output: `<stream>-reprocess-<id>.<ext>`. */
export const reprocessObjectName = (stream: string, id: string, ext: 'parquet' | 'json.gz' | 'json') => `${stream}-reprocess-${id}.${ext}`;

/** Raw objects are GZIP (the raw stream compresses); an uncompressed one is read as it is. */
export function decompress(bytes: Uint8Array): Buffer {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b) : b;
}

/** A stable record id for line `line` (1-based) of a raw object, so reprocessing again gives the same __message_id. */
export const recordIdOf = (key: string, line: number): string => createHash('sha256').update(`${key}\n${line}`).digest('hex').slice(0, 32);

/** `ms` moved into `day` (the raw object's dt), so the transform's dt partition is the day being replaced. */
export function clampToDay(ms: number, day: string): number {
  const start = dayStart(day);
  return Math.min(Math.max(ms, start), start + DAY_MS - 1);
}

/**
 * The Firehose-like records of one raw object: one per non-blank line (the raw stream appends a newline to
 * each message, and the rule's firehose action one more), split on bytes so a non-UTF-8 payload stays as
 * it was. Every record arrives at `arrival`.
 */
export function rawRecords(key: string, body: Buffer, arrival: number): (FirehoseInputRecord & { line: number })[] {
  const out: (FirehoseInputRecord & { line: number })[] = [];
  let start = 0;
  for (let line = 1; start <= body.length; line++) {
    let end = body.indexOf(0x0a, start);
    if (end < 0) end = body.length;
    const bytes = body.subarray(start, end);
    if (bytes.some((c) => c !== 0x20 && c !== 0x09 && c !== 0x0d)) out.push({ recordId: recordIdOf(key, line), approximateArrivalTimestamp: arrival, data: bytes.toString('base64'), line });
    start = end + 1;
  }
  return out;
}

/** DuckDB's type for a Glue column type; undefined for types reprocess cannot write (array, map, struct...). */
export function duckType(glueType: string): string | undefined {
  const t = glueType.trim().toLowerCase();
  const decimal = /^decimal\s*(?:\(\s*(\d+)\s*,\s*(\d+)\s*\))?$/.exec(t);
  if (decimal) return `DECIMAL(${decimal[1] ?? 10}, ${decimal[2] ?? 0})`;
  if (/^(varchar|char)\s*\(\s*\d+\s*\)$/.test(t)) return 'VARCHAR';
  const simple: Record<string, string> = {
    string: 'VARCHAR',
    bigint: 'BIGINT',
    int: 'INTEGER',
    integer: 'INTEGER',
    smallint: 'SMALLINT',
    tinyint: 'TINYINT',
    double: 'DOUBLE',
    float: 'FLOAT',
    boolean: 'BOOLEAN',
    timestamp: 'TIMESTAMP',
    date: 'DATE',
  };
  return simple[t];
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;
const lit = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * The DuckDB query that types the staged NDJSON rows (keys in lower case) as the Glue table's columns, in the
 * table's order, as Firehose's format conversion does. Timestamps accept epoch milliseconds (how rows carry
 * __received_at; the delivery stream's deserializer is set to `millis`) or timestamp text.
 */
export function parquetSelect(columns: readonly { name: string; type: string }[], ndjsonPath: string): string {
  const unsupported = columns.filter((c) => !duckType(c.type));
  if (unsupported.length)
    throw new UserError(
      `The datastore's Glue table has column types reprocess cannot write: ${unsupported.map((c) => `${c.name} ${c.type}`).join(', ')}.`,
      'Reprocess writes string, bigint, int, smallint, tinyint, double, float, boolean, timestamp, date and decimal columns, as the transform produces them.',
      'REPROCESS_UNSUPPORTED',
    );
  const read: string[] = [];
  const projection: string[] = [];
  for (const c of columns) {
    const name = c.name.toLowerCase();
    const type = duckType(c.type)!;
    const id = ident(name);
    if (type === 'TIMESTAMP') {
      read.push(`${lit(name)}: 'VARCHAR'`);
      projection.push(`CASE WHEN regexp_full_match(${id}, '-?[0-9]+') THEN epoch_ms(CAST(${id} AS BIGINT)) ELSE CAST(${id} AS TIMESTAMP) END AS ${id}`);
    } else {
      read.push(`${lit(name)}: ${lit(type)}`);
      projection.push(id);
    }
  }
  return `SELECT ${projection.join(', ')} FROM read_json(${lit(ndjsonPath)}, format = 'newline_delimited', maximum_object_size = 67108864, columns = {${read.join(', ')}})`;
}

/** One row line with its keys in lower case (Glue column names; Firehose's JSON deserializer ignores case). */
export function lowerCaseKeys(line: string): string {
  const row = JSON.parse(line) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k in row) out[k.toLowerCase()] = row[k];
  return JSON.stringify(out);
}

// ------------------------------------------------------------------------------------------------ run

interface DayTotals {
  messages: number;
  rows: number;
  filtered: number;
  failed: number;
  objects: number;
  written: number;
  replaced: number;
}

export async function reprocessDatalake(aws: AwsClients, spec: ReprocessSpec, pipelineName: string, opts: ReprocessOptions = {}): Promise<ReprocessResult> {
  const say = opts.progress ?? (() => undefined);
  const p = spec.analytics.pipelines.find((x) => x.name === pipelineName);
  if (!p) throw pipelineNotFound(spec, pipelineName);
  const format = spec.analytics.datastores.find((d) => d.name === p.datastore)?.format ?? 'parquet';
  // Checked before anything is read: a pipeline that cannot run would replace every row with a failure.
  try {
    compilePipeline(p.activities, { lookupThing: () => undefined, invoke: async () => [], target: 'aws' });
  } catch (e) {
    throw new UserError(`Pipeline "${p.name}" cannot run: ${(e as Error).message}`, 'Fix its activities in iotctl.yaml and apply them first.', 'REPROCESS_FAILED');
  }

  const n = await lakePlace(aws, spec);
  const { accountId, region } = n;
  const deps = awsDeps(aws);
  const run: Run = {
    aws,
    bucket: n.bucket,
    stream: n.pipelineStream(p.name),
    region,
    accountId,
    pipeline: p.name,
    channel: p.channel,
    datastore: p.datastore,
    format,
    glue: { database: n.database, table: n.table(p.datastore) },
    id: randomUUID(),
    batchSize: opts.batchSize ?? 500,
    transform: compileFirehoseTransform(p.activities, deps),
    fatal: deps.fatal,
  };

  const rawDays = await listRawDays(run);
  const plan = reprocessDays(rawDays, opts, Date.now());
  if (plan.pending.length)
    say(`Skipping ${plan.pending.join(', ')}: Firehose may still deliver objects of a day until ${DELIVERY_GRACE_MS / 60_000} minutes after it ends (UTC); reprocess it after that.`);
  if (!plan.days.length) {
    if (!plan.pending.length) say(`No raw objects under s3://${run.bucket}/raw/${p.channel}/ ${opts.from !== undefined || opts.to !== undefined ? 'in the window' : 'at all'}; nothing to reprocess.`);
    return { id: run.id, pipeline: p.name, from: plan.from, to: plan.to, messages: 0, out: 0, filtered: 0, failed: 0, filesWritten: 0, filesReplaced: 0 };
  }
  say(
    `Reprocessing ${p.name} over whole UTC days ${plan.days[0]} to ${plan.days.at(-1)} (${plan.days.length} day(s) of raw/${p.channel}/): ` +
      'Firehose mixes messages of different times in one object, so on AWS the window is widened to whole ingest days, and each day replaces what this pipeline wrote that day.',
  );
  say('Reprocessed rows carry their raw object\'s time as __received_at: the raw channel keeps the messages unchanged, without each one\'s arrival time.');

  const totals: DayTotals = { messages: 0, rows: 0, filtered: 0, failed: 0, objects: 0, written: 0, replaced: 0 };
  run.tmp = mkdtempSync(join(tmpdir(), 'iotctl-reprocess-'));
  try {
    for (const day of plan.days) {
      const t = await reprocessDay(run, day);
      say(
        `${day}: ${t.messages} message(s) in ${t.objects} raw object(s): ${t.rows} row(s) written, ${t.filtered} filtered, ${t.failed} failed; ` +
          `${t.replaced} previous object(s) of ${run.stream} replaced.`,
      );
      for (const k of Object.keys(totals) as (keyof DayTotals)[]) totals[k] += t[k];
    }
  } finally {
    run.duck?.close();
    rmSync(run.tmp, { recursive: true, force: true });
  }
  say(`Reprocessed ${totals.messages} message(s): ${totals.rows} row(s) written, ${totals.filtered} filtered, ${totals.failed} failed; ${totals.replaced} object(s) replaced.`);
  return {
    id: run.id,
    pipeline: p.name,
    from: plan.from,
    to: plan.to,
    messages: totals.messages,
    out: totals.rows,
    filtered: totals.filtered,
    failed: totals.failed,
    filesWritten: totals.written,
    filesReplaced: totals.replaced,
  };
}

export function pipelineNotFound(spec: Pick<Spec, 'analytics'>, name: string): UserError {
  const all = spec.analytics.pipelines.map((x) => x.name);
  return new UserError(`Pipeline "${name}" is not in the spec's analytics section.`, all.length ? `Pipelines: ${all.join(', ')}` : 'Add it to iotctl.yaml and apply it with `iotctl analytics apply`.', 'NOT_FOUND');
}

interface Run {
  aws: AwsClients;
  bucket: string;
  stream: string;
  region: string;
  accountId: string;
  pipeline: string;
  channel: string;
  datastore: string;
  format: 'parquet' | 'json';
  glue: { database: string; table: string };
  id: string;
  batchSize: number;
  transform: FirehoseTransform;
  /** The first failed AWS call of a dependency (see awsDeps). */
  fatal: () => AwsCallError | undefined;
  /** Where a day's rows and failures are staged (made when there is a day to do). */
  tmp?: string;
  duck?: { connection: import('@duckdb/node-api').DuckDBConnection; close(): void };
}

/**
 * The Lambda's dependencies over the CLI's clients. A failed AWS call (access denied, throttled, no network)
 * is remembered and stops the run: it would otherwise fail every message, and replacing a day's rows with
 * failures because of the caller's permissions would lose them. A function that answers with an error is an
 * ordinary per-message failure, as on AWS.
 */
function awsDeps(aws: AwsClients): Pick<PipelineDeps, 'invoke' | 'lookupThing'> & { fatal: () => AwsCallError | undefined } {
  let fatal: AwsCallError | undefined;
  const remember = (e: unknown) => {
    if (e instanceof AwsCallError) fatal ??= e;
    return e;
  };
  const lookupThing = thingLookup(async (thingName) => {
    const { client, sdk } = await aws.get('iot');
    try {
      return await client.send(new sdk.DescribeThingCommand({ thingName }), aws.sendOptions);
    } catch (e) {
      if (isAwsError(e, 'ResourceNotFoundException')) return undefined;
      throw remember(e);
    }
  }, 60_000);
  const invoke = lambdaInvoke(async (FunctionName, Payload) => {
    const { client, sdk } = await aws.get('lambda');
    try {
      return await client.send(new sdk.InvokeCommand({ FunctionName, Payload }), aws.sendOptions);
    } catch (e) {
      throw remember(e);
    }
  });
  return { lookupThing, invoke, fatal: () => fatal };
}

async function reprocessDay(run: Run, day: string): Promise<DayTotals> {
  const t: DayTotals = { messages: 0, rows: 0, filtered: 0, failed: 0, objects: 0, written: 0, replaced: 0 };
  const rowsPath = join(run.tmp!, `${day}.ndjson`);
  const errorsPath = join(run.tmp!, `${day}.errors.ndjson`);
  const rowsFd = openSync(rowsPath, 'w');
  const errorsFd = openSync(errorsPath, 'w');
  const seen = new Map<string, { name: string; mask: number }>();
  try {
    const raw = await objectsUnder(run, `raw/${run.channel}/dt=${day}/`);
    t.objects = raw.length;
    for (const obj of raw) {
      const body = decompress(await getObject(run, obj.key));
      const arrival = clampToDay(firehoseObjectTime(obj.key) ?? obj.lastModified ?? dayStart(day), day);
      const records = rawRecords(obj.key, body, arrival);
      for (let i = 0; i < records.length; i += run.batchSize) {
        const batch = records.slice(i, i + run.batchSize);
        const outcome = await run.transform.transform({
          invocationId: run.id,
          deliveryStreamArn: arn(run.region, 'firehose', run.region, run.accountId, `deliverystream/${run.stream}`),
          region: run.region,
          records: batch,
        });
        const fatal = run.fatal();
        if (fatal) throw fatal;
        t.messages += outcome.counts.in;
        t.filtered += outcome.counts.dropped;
        t.failed += outcome.counts.failed;
        for (const [key, c] of outcome.columns) {
          const known = seen.get(key);
          if (known) known.mask |= c.mask;
          else seen.set(key, { ...c });
        }
        const reasons = new Map(outcome.failures.map((f) => [f.recordId, f]));
        const byId = new Map(batch.map((r) => [r.recordId, r]));
        for (const r of outcome.response.records) {
          if (r.result === 'Ok') {
            const lines = Buffer.from(r.data, 'base64').toString('utf8').split('\n').filter(Boolean);
            t.rows += lines.length;
            // Parquet: keys in lower case for typing by the Glue columns; JSON: the rows as Firehose writes them.
            writeSync(rowsFd, lines.map((l) => (run.format === 'parquet' ? lowerCaseKeys(l) : l) + '\n').join(''));
          } else if (r.result === 'ProcessingFailed') {
            const f = reasons.get(r.recordId);
            const source = byId.get(r.recordId)!;
            writeSync(
              errorsFd,
              JSON.stringify({
                recordId: r.recordId,
                arrivalTimestamp: source.approximateArrivalTimestamp,
                activity: f?.activity,
                activityType: f?.activityType,
                reason: f?.reason ?? 'the record failed',
                rawData: source.data,
                source: { bucket: run.bucket, key: obj.key, line: source.line },
              }) + '\n',
            );
          }
        }
      }
    }
  } finally {
    closeSync(rowsFd);
    closeSync(errorsFd);
  }

  // Write first...
  const dayPrefix = `datastore/${run.datastore}/dt=${day}/`;
  const errorPrefix = `errors/${run.pipeline}/processing-failed/dt=${day}/`;
  let written: string | undefined;
  if (t.rows) {
    const ext = run.format === 'parquet' ? 'parquet' : 'json.gz';
    const out = join(run.tmp!, `${day}.${ext}`);
    if (run.format === 'parquet') await writeParquet(run, seen, rowsPath, out);
    else await pipe(createReadStream(rowsPath), createGzip(), createWriteStream(out));
    written = dayPrefix + reprocessObjectName(run.stream, run.id, ext);
    await putFile(run, written, out);
    t.written++;
  }
  let writtenErrors: string | undefined;
  if (t.failed) {
    writtenErrors = errorPrefix + reprocessObjectName(run.stream, run.id, 'json');
    await putFile(run, writtenErrors, errorsPath);
  }
  // ...delete after: this pipeline's earlier objects of the day, and the failures earlier reprocess runs
  // recorded for it (Firehose's own error objects stay: they are the live record of what failed).
  const old = (await objectsUnder(run, dayPrefix)).map((o) => o.key).filter((k) => k !== written && writtenByStream(k, run.stream));
  const oldErrors = (await objectsUnder(run, errorPrefix))
    .map((o) => o.key)
    .filter((k) => k !== writtenErrors && basename(k).startsWith(`${run.stream}-reprocess-`) && writtenByStream(k, run.stream));
  await deleteObjects(run, [...old, ...oldErrors]);
  t.replaced = old.length;
  return t;
}

/** The day's rows as Parquet typed by the datastore's Glue table, widened first as the transform Lambda does. */
async function writeParquet(run: Run, seen: Map<string, { name: string; mask: number }>, rowsPath: string, out: string): Promise<void> {
  const { client, sdk } = await run.aws.get('glue');
  let table;
  try {
    table = (await client.send(new sdk.GetTableCommand({ DatabaseName: run.glue.database, Name: run.glue.table }), run.aws.sendOptions)).Table!;
  } catch (e) {
    if (isAwsError(e, 'EntityNotFoundException'))
      throw new UserError(`The Glue table ${run.glue.database}.${run.glue.table} of datastore ${run.datastore} does not exist.`, 'Create it with `iotctl analytics apply`.', 'NOT_FOUND');
    throw e;
  }
  let columns = (table.StorageDescriptor?.Columns ?? []).map((c) => ({ name: c.Name!, type: c.Type! }));
  const widened = widenGlueColumns(columns, seen);
  if (widened) {
    await client.send(new sdk.UpdateTableCommand({ DatabaseName: run.glue.database, TableInput: tableInputWithColumns(table, widened) }), run.aws.sendOptions);
    columns = widened;
  }
  if (!run.duck) {
    // DuckDB loads only here, so other aws commands never load it.
    const { openDuck } = await import('../../local/lake/duck.js');
    run.duck = await openDuck({ threads: 2 });
  }
  // Snappy, as Firehose's Parquet conversion is configured.
  await run.duck.connection.run(`COPY (${parquetSelect(columns, rowsPath)}) TO ${lit(out)} (FORMAT parquet, COMPRESSION snappy)`);
}

// ------------------------------------------------------------------------------------------------- S3

async function listRawDays(run: Run): Promise<string[]> {
  const { client, sdk } = await run.aws.get('s3');
  const prefix = `raw/${run.channel}/`;
  const days: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    let page;
    try {
      page = await client.send(new sdk.ListObjectsV2Command({ Bucket: run.bucket, Prefix: `${prefix}dt=`, Delimiter: '/', ContinuationToken }), run.aws.sendOptions);
    } catch (e) {
      if (isAwsError(e, 'NoSuchBucket')) throw new UserError(`The analytics bucket ${run.bucket} does not exist.`, 'Create the datalake with `iotctl analytics apply`.', 'NOT_FOUND');
      throw e;
    }
    for (const cp of page.CommonPrefixes ?? []) {
      const m = /dt=(\d{4}-\d{2}-\d{2})\/$/.exec(cp.Prefix ?? '');
      if (m) days.push(m[1]!);
    }
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  return days;
}

/** The objects under a prefix, in key order. */
async function objectsUnder(run: Run, prefix: string): Promise<{ key: string; lastModified?: number }[]> {
  const objects = await listObjects(run.aws, run.bucket, prefix);
  return objects.flatMap((o) => (o.Key ? [{ key: o.Key, lastModified: o.LastModified?.getTime() }] : [])).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

async function getObject(run: Run, key: string): Promise<Uint8Array> {
  const { client, sdk } = await run.aws.get('s3');
  const out = await client.send(new sdk.GetObjectCommand({ Bucket: run.bucket, Key: key }), run.aws.sendOptions);
  return out.Body!.transformToByteArray();
}

/**
 * One PutObject from a file, streamed. S3 takes up to 5 GB in one PutObject; a day's output beyond that would
 * need a multipart upload (@aws-sdk/lib-storage is not a dependency).
 */
async function putFile(run: Run, key: string, path: string): Promise<void> {
  const { client, sdk } = await run.aws.get('s3');
  await client.send(new sdk.PutObjectCommand({ Bucket: run.bucket, Key: key, Body: createReadStream(path), ContentLength: statSync(path).size }), run.aws.sendOptions);
}

async function deleteObjects(run: Run, keys: string[]): Promise<void> {
  const { client, sdk } = await run.aws.get('s3');
  for (let i = 0; i < keys.length; i += 1000) {
    const out = await client.send(
      new sdk.DeleteObjectsCommand({ Bucket: run.bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }),
      run.aws.sendOptions,
    );
    const failed = out.Errors ?? [];
    if (failed.length)
      throw new UserError(
        `Could not delete ${failed.length} replaced object(s) in s3://${run.bucket}: ${failed.slice(0, 3).map((e) => `${e.Key} (${e.Code})`).join(', ')}.`,
        'The new output is written, so those rows are duplicated until the objects are deleted: grant s3:DeleteObject and reprocess again.',
        'REPROCESS_FAILED',
      );
  }
}
