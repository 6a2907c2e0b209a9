import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { QueryExecution } from '@aws-sdk/client-athena';
import type { DatasetRunResult, DatasetTrigger, DatasetVersion } from '../../../ports.js';
import type { Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import { formatBytes } from '../../../ui/format.js';
import { AwsAthena } from '../athena.js';
import { failFastWhenUnserved, isAwsError, type AwsClients } from '../sdk.js';
import { mapLimit } from '../../../concurrency.js';
import { lakePlace, namedQuery } from './datalake.js';
import { listObjects } from './s3-objects.js';
import { schedulePeriod } from './dataset-sql.js';
import { datasetOutput, datasetPrefix, type QueryConfig } from './model.js';

/**
 * Datasets on the datalake engine: a run is an Athena query of the dataset's named query (as applied), its
 * content the result CSV Athena writes to `s3://<bucket>/datasets/<name>/{manual,scheduled}/<query id>.csv`.
 * The version id is the query execution id. Runs iotctl starts write under manual/, the EventBridge schedule
 * under scheduled/. Versions are the CSVs kept in S3 plus the dataset's runs in the workgroup's recent history
 * (failed and running ones have no CSV). After each run, content beyond versionsToKeep is deleted (the newest
 * succeeded version is always kept); between runs an S3 lifecycle rule bounds the scheduled content.
 */

type DatasetSpec = Spec['analytics']['datasets'][number];

/**
 * The workgroup's executions scanned for a dataset's failed and running runs, newest first: page after page
 * (50 ids each, detailed 50 at a time) back to HISTORY_DAYS ago, at most HISTORY_MAX executions. One page of 50
 * missed a run as soon as the workgroup ran 50 other queries since.
 */
const HISTORY_DAYS = 7;
const HISTORY_MAX = 1000;

interface ContentObject {
  id: string;
  key: string;
  size: number;
  lastModified: number;
  trigger: DatasetTrigger;
}

export class AwsDatasets {
  private history?: Promise<QueryExecution[]>;

  constructor(
    private readonly aws: AwsClients,
    private readonly spec: Spec,
    /** Where content CSVs are downloaded to (immutable per version, so kept as a cache). */
    private readonly contentDir: string,
  ) {}

  async run(name: string, opts: { previewRows?: number; progress?: (line: string) => void } = {}): Promise<DatasetRunResult> {
    const dataset = this.requireDataset(name);
    const queryName = await this.queryName(name);
    const query = await namedQuery(this.aws, this.spec.athena.workgroup, queryName);
    if (!query) throw new UserError(`Dataset "${name}" is not applied on AWS (no Athena named query ${queryName}).`, 'Run `iotctl analytics apply` first.', 'NOT_FOUND');
    const sql = (query.config as QueryConfig).sql;
    const bucket = await this.bucket();
    const athena = new AwsAthena(this.aws, { database: (await this.place()).database, workgroup: this.spec.athena.workgroup, outputLocation: datasetOutput(bucket, name, 'manual') });
    const startedAt = Date.now();
    let queryId = '';
    const base = (status: DatasetVersion['status'], error: string | null): DatasetVersion => ({
      dataset: name,
      version: queryId,
      status,
      trigger: 'manual',
      createdAt: startedAt,
      scheduledFor: null,
      ...this.window(dataset, startedAt),
      rows: null,
      bytes: null,
      elapsedMs: Date.now() - startedAt,
      error,
    });
    try {
      this.history = undefined;
      let state = '';
      const result = await athena.run(sql, {
        onStarted: (id) => (queryId = id),
        onProgress: (p) => {
          if (p.state !== state) opts.progress?.(`Athena query ${queryId}: ${(state = p.state)} (${Math.round(p.elapsedMs / 1000)} s, ${formatBytes(p.bytesScanned)} scanned)`);
        },
      });
      const preview: unknown[][] = [];
      const limit = Math.max(0, Math.trunc(opts.previewRows ?? 100));
      if (limit)
        for await (const row of result.rows) {
          preview.push(row);
          if (preview.length >= limit) break;
        }
      const content = await this.download(name, { id: queryId, key: await this.resultKey(name, bucket, queryId) });
      await this.prune(dataset);
      return { ...base('SUCCEEDED', null), rows: content.rows, bytes: content.bytes, file: content.file, columns: result.columns, preview };
    } catch (e) {
      // A query Athena refused is a failed version, as locally; anything else (no access, Ctrl-C) is the caller's error.
      if (!(e instanceof UserError && e.code === 'ATHENA_QUERY_FAILED' && queryId)) throw e;
      return { ...base('FAILED', e.message), columns: [], preview: [] };
    }
  }

  /** Where Athena wrote the run's CSV: ours, unless the workgroup enforces its own output location. */
  private async resultKey(name: string, bucket: string, queryId: string): Promise<string> {
    const { client, sdk } = await this.aws.get('athena');
    const execution = (await client.send(new sdk.GetQueryExecutionCommand({ QueryExecutionId: queryId }), this.aws.sendOptions)).QueryExecution;
    const expected = `${datasetOutput(bucket, name, 'manual')}${queryId}.csv`;
    const location = execution?.ResultConfiguration?.OutputLocation ?? expected;
    if (location !== expected)
      throw new UserError(
        `Athena wrote dataset ${name}'s result to ${location}, not ${expected}: workgroup ${this.spec.athena.workgroup} enforces its own output location.`,
        'Turn off "Override client-side settings" in the workgroup, or set athena.workgroup in iotctl.yaml to one that does not enforce it; datasets keep their content under the bucket.',
        'WORKGROUP_OVERRIDES_OUTPUT',
      );
    return expected.slice(`s3://${bucket}/`.length);
  }

  /** Newest first: the content kept in S3 and the runs in the workgroup's recent history. */
  async versions(name: string): Promise<DatasetVersion[]> {
    const dataset = this.requireDataset(name);
    const [objects, runs] = await Promise.all([this.contentObjects(name), this.recentRuns(name)]);
    return this.versionsOf(dataset, objects, runs);
  }

  private versionsOf(dataset: DatasetSpec, objects: ContentObject[], runs: Awaited<ReturnType<AwsDatasets['recentRuns']>>): DatasetVersion[] {
    const byId = new Map<string, DatasetVersion>();
    for (const o of objects) byId.set(o.id, this.version(dataset, { id: o.id, trigger: o.trigger, createdAt: o.lastModified, bytes: o.size }));
    // A succeeded run without its CSV was pruned (or expired): it is no longer a version.
    for (const r of runs) if (r.status !== 'SUCCEEDED' || byId.has(r.id)) byId.set(r.id, this.version(dataset, { ...r, bytes: byId.get(r.id)?.bytes ?? null }));
    return [...byId.values()].sort((a, b) => b.createdAt - a.createdAt || b.version.localeCompare(a.version));
  }

  /** A version's content on this machine: the given id, $LATEST_SUCCEEDED (the default) or $LATEST. */
  async content(name: string, version?: string): Promise<{ version: DatasetVersion; file: string }> {
    const dataset = this.requireDataset(name);
    const objects = await this.contentObjects(name);
    let chosen: ContentObject | undefined;
    let pruned = '';
    if (!version || version === '$LATEST_SUCCEEDED') chosen = objects[0];
    else if (version === '$LATEST') {
      const latest = this.versionsOf(dataset, objects, await this.recentRuns(name))[0];
      if (latest && latest.status !== 'SUCCEEDED') throw notSucceeded(name, latest);
      chosen = objects.find((o) => o.id === latest?.version);
    } else {
      chosen = objects.find((o) => o.id === version);
      const run = chosen ? undefined : (await this.recentRuns(name)).find((r) => r.id === version);
      if (run && run.status !== 'SUCCEEDED') throw notSucceeded(name, this.version(dataset, { ...run, bytes: null }));
      if (run) pruned = ` Its content was deleted: the dataset keeps ${dataset.versionsToKeep} version(s) (versionsToKeep).`;
    }
    if (!chosen)
      throw new UserError(
        version && !version.startsWith('$') ? `Dataset "${name}" has no version "${version}".${pruned}` : `Dataset "${name}" has no content yet.`,
        objects.length ? `Versions: ${objects.map((o) => o.id).join(', ')}` : `Create content with \`iotctl analytics dataset run ${name}\`.`,
        'NOT_FOUND',
      );
    const { file, rows, bytes } = await this.download(name, chosen);
    return { version: { ...this.version(dataset, { id: chosen.id, trigger: chosen.trigger, createdAt: chosen.lastModified, bytes }), rows }, file };
  }

  private requireDataset(name: string): DatasetSpec {
    const datasets = this.spec.analytics.datasets;
    const dataset = datasets.find((d) => d.name === name);
    if (!dataset)
      throw new UserError(
        `Dataset "${name}" is not in iotctl.yaml.`,
        datasets.length ? `Datasets: ${datasets.map((d) => d.name).join(', ')}` : 'Declare it under analytics.datasets and run `iotctl analytics apply`.',
        'NOT_FOUND',
      );
    return dataset;
  }

  /** The stage's names (its bucket, database and queries), resolved once. */
  private names?: ReturnType<typeof lakePlace>;
  private place() {
    return (this.names ??= lakePlace(this.aws, this.spec));
  }

  private async bucket(): Promise<string> {
    return (await this.place()).bucket;
  }

  private async queryName(name: string): Promise<string> {
    return (await this.place()).query(name);
  }

  private version(dataset: DatasetSpec, v: { id: string; trigger: DatasetTrigger; createdAt: number; bytes: number | null; status?: DatasetVersion['status']; elapsedMs?: number | null; error?: string | null }): DatasetVersion {
    return {
      dataset: dataset.name,
      version: v.id,
      status: v.status ?? 'SUCCEEDED',
      trigger: v.trigger,
      createdAt: v.createdAt,
      scheduledFor: null,
      ...this.window(dataset, v.createdAt),
      rows: null,
      bytes: v.bytes,
      elapsedMs: v.elapsedMs ?? null,
      error: v.error ?? null,
    };
  }

  /** The delta window a run started at `at` read (see dataset-sql.ts). */
  private window(dataset: DatasetSpec, at: number): { windowStart: number | null; windowEnd: number | null } {
    if (!dataset.deltaTime || !dataset.schedule) return { windowStart: null, windowEnd: null };
    const end = at + dataset.deltaTime.offsetSeconds * 1000;
    return { windowStart: end - schedulePeriod(dataset.schedule).seconds * 1000, windowEnd: end };
  }

  /** The dataset's result CSVs, newest first. */
  private async contentObjects(name: string): Promise<ContentObject[]> {
    const bucket = await this.bucket();
    const out: ContentObject[] = [];
    for (const trigger of ['manual', 'schedule'] as const)
      for (const o of await listObjects(this.aws, bucket, datasetPrefix(name, trigger))) {
        const id = /([^/]+)\.csv$/.exec(o.Key ?? '')?.[1];
        if (id) out.push({ id, key: o.Key!, size: o.Size ?? 0, lastModified: o.LastModified?.getTime() ?? 0, trigger });
      }
    return out.sort((a, b) => b.lastModified - a.lastModified || b.id.localeCompare(a.id));
  }

  /** This dataset's runs among the workgroup's most recent executions (failed and running runs have no CSV). */
  private async recentRuns(name: string): Promise<{ id: string; trigger: DatasetTrigger; createdAt: number; status: DatasetVersion['status']; elapsedMs: number | null; error: string | null }[]> {
    const bucket = await this.bucket();
    return (await this.recentExecutions()).flatMap((x) => {
      const location = x.ResultConfiguration?.OutputLocation ?? '';
      const trigger = (['manual', 'schedule'] as const).find((t) => location.startsWith(datasetOutput(bucket, name, t)));
      if (!trigger || !x.QueryExecutionId) return [];
      const state = x.Status?.State;
      const status: DatasetVersion['status'] = state === 'SUCCEEDED' ? 'SUCCEEDED' : state === 'FAILED' || state === 'CANCELLED' ? 'FAILED' : 'RUNNING';
      const reason = x.Status?.StateChangeReason ?? x.Status?.AthenaError?.ErrorMessage;
      return [
        {
          id: x.QueryExecutionId,
          trigger,
          createdAt: x.Status?.SubmissionDateTime?.getTime() ?? 0,
          status,
          elapsedMs: x.Statistics?.TotalExecutionTimeInMillis ?? null,
          error: status === 'FAILED' ? (reason ?? state ?? 'failed') : null,
        },
      ];
    });
  }

  /** The workgroup's latest executions, read once per command (every dataset's runs are among them). */
  private recentExecutions(): Promise<QueryExecution[]> {
    return (this.history ??= (async () => {
      const { client, sdk } = await this.aws.get('athena');
      const since = Date.now() - HISTORY_DAYS * 86_400_000;
      const executions: QueryExecution[] = [];
      let NextToken: string | undefined;
      do {
        const page = await client.send(new sdk.ListQueryExecutionsCommand({ WorkGroup: this.spec.athena.workgroup, MaxResults: 50, NextToken }), this.aws.sendOptions);
        const ids = page.QueryExecutionIds ?? [];
        // 50 per BatchGetQueryExecution (an endpoint may list more on one page: moto lists all).
        const detailed = (await mapLimit(Array.from({ length: Math.ceil(ids.length / 50) }, (_, i) => ids.slice(i * 50, i * 50 + 50)), 4, (chunk) => this.executions(chunk))).flat();
        executions.push(...detailed);
        NextToken = page.NextToken;
        // Newest first: a page that reaches past the window ends the scan.
        if (detailed.some((x) => (x.Status?.SubmissionDateTime?.getTime() ?? Infinity) < since)) break;
      } while (NextToken && executions.length < HISTORY_MAX);
      return executions;
    })());
  }

  /** The executions of these ids (at most 50), in one BatchGetQueryExecution; one GetQueryExecution each where the endpoint lacks it. */
  private async executions(ids: string[]): Promise<QueryExecution[]> {
    if (!ids.length) return [];
    const { client, sdk } = await this.aws.get('athena');
    try {
      const out = await client.send(failFastWhenUnserved(new sdk.BatchGetQueryExecutionCommand({ QueryExecutionIds: ids })), this.aws.sendOptions);
      const byId = new Map((out.QueryExecutions ?? []).map((x) => [x.QueryExecutionId, x]));
      return ids.flatMap((id) => (byId.has(id) ? [byId.get(id)!] : []));
    } catch (error) {
      if (this.aws.settings.signal?.aborted) throw error;
      // Eight at a time: GetQueryExecution is cheap, and its rate quota allows bursts of 20.
      return mapLimit(ids, 8, async (id) => (await client.send(new sdk.GetQueryExecutionCommand({ QueryExecutionId: id }), this.aws.sendOptions)).QueryExecution ?? {});
    }
  }

  /** Downloads a content CSV once (it never changes) and counts its rows. */
  private async download(name: string, object: Pick<ContentObject, 'id' | 'key'>): Promise<{ file: string; rows: number; bytes: number }> {
    const file = join(this.contentDir, name, `${object.id}.csv`);
    if (!existsSync(file)) {
      const { client, sdk } = await this.aws.get('s3');
      const Bucket = await this.bucket();
      const out = await client.send(new sdk.GetObjectCommand({ Bucket, Key: object.key }), this.aws.sendOptions).catch((e) => {
        if (!isAwsError(e, 'NoSuchKey')) throw e;
        throw new UserError(`Dataset ${name} version ${object.id} has no result file at s3://${Bucket}/${object.key}.`, 'Athena reported the query done but the CSV is not there (deleted, or expired by the lifecycle rule); run the dataset again.', 'NOT_FOUND');
      });
      await saveStream(out.Body as Readable, file);
    }
    // Athena's CSV starts with the column names.
    return { file, rows: Math.max(0, (await countCsvRecords(createReadStream(file))) - 1), bytes: statSync(file).size };
  }

  /** Deletes content beyond versionsToKeep, oldest first, keeping the newest succeeded version. */
  private async prune(dataset: DatasetSpec): Promise<void> {
    const doomed = (await this.contentObjects(dataset.name)).slice(Math.max(1, dataset.versionsToKeep));
    if (!doomed.length) return;
    const { client, sdk } = await this.aws.get('s3');
    const Objects = doomed.flatMap((o) => [{ Key: o.key }, { Key: `${o.key}.metadata` }]);
    for (let i = 0; i < Objects.length; i += 1000)
      await client.send(new sdk.DeleteObjectsCommand({ Bucket: await this.bucket(), Delete: { Objects: Objects.slice(i, i + 1000), Quiet: true } }), this.aws.sendOptions);
  }
}

function notSucceeded(name: string, v: DatasetVersion): UserError {
  if (v.status === 'RUNNING') return new UserError(`Version ${v.version} of dataset "${name}" is still running.`, 'Wait for it, or omit --version for the latest succeeded content.', 'DATASET_RUNNING');
  return new UserError(`Version ${v.version} of dataset "${name}" failed: ${v.error}`, 'Fix the dataset SQL, apply, and run it again.', 'DATASET_FAILED');
}

/** Writes a stream to `file` under a temporary name first, so a cut download never looks like content. */
export async function saveStream(stream: Readable, file: string): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  const partial = `${file}.${process.pid}.tmp`;
  try {
    await pipeline(stream, createWriteStream(partial));
    renameSync(partial, file);
  } finally {
    rmSync(partial, { force: true });
  }
}

/** CSV records in a stream: newlines outside double quotes, plus a last line without one. */
export async function countCsvRecords(source: AsyncIterable<Buffer>): Promise<number> {
  let records = 0;
  let quoted = false;
  let pending = false;
  for await (const chunk of source)
    for (const byte of chunk) {
      if (byte === 0x22) quoted = !quoted;
      if (byte === 0x0a && !quoted) {
        records++;
        pending = false;
      } else pending = true;
    }
  return records + (pending ? 1 : 0);
}

/** The first `limit` records of a CSV stream (RFC 4180: quoted fields, "" for a quote, CRLF or LF). */
export async function readCsvRecords(source: AsyncIterable<Buffer | string>, limit: number): Promise<string[][]> {
  const records: string[][] = [];
  const decoder = new TextDecoder();
  let record: string[] = [];
  let field = '';
  let quoted = false;
  let afterQuote = false;
  for await (const chunk of source) {
    for (const ch of typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true })) {
      if (quoted) {
        if (ch === '"') [quoted, afterQuote] = [false, true];
        else field += ch;
        continue;
      }
      if (ch === '"') {
        if (afterQuote) field += '"';
        [quoted, afterQuote] = [true, false];
        continue;
      }
      afterQuote = false;
      if (ch === ',') {
        record.push(field);
        field = '';
      } else if (ch === '\n') {
        record.push(field.replace(/\r$/, ''));
        records.push(record);
        [record, field] = [[], ''];
        if (records.length >= limit) return records;
      } else field += ch;
    }
  }
  if (field || record.length) records.push([...record, field]);
  return records;
}
