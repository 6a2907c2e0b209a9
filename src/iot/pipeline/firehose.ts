import { KIND_NESTED, kindOf, typeForKinds, widen, type ColumnType } from '../../targets/local/lake/columns.js';
import { compilePipeline } from './engine.js';
import { DATASTORE_RESERVED_ATTRIBUTES } from './validate.js';
import type { Activity, CompiledPipeline, JsonObject, PipelineDeps, PipelineMessage } from './types.js';

/**
 * The record handling of the pipeline-transform Lambda (templates/pipeline-transform): a Firehose data
 * transformation event in, the documented `{records: [{recordId, result, data}]}` out. The activities run
 * through the same compilePipeline() as the local lake, and the rows it emits are the rows the local
 * datastore writer stores for the same messages:
 *
 *   {"__message_id": <recordId>, "__received_at": <arrival ms>, ...attributes}
 *
 * with objects and arrays as their JSON text (the local datastore's VARCHAR for nested values), and the
 * `dt` day partition (UTC day of arrival) returned as a dynamic-partitioning key, not as a column.
 *
 * Pure: no I/O. The device registry and Lambda invocation are injected (PipelineDeps), as locally.
 */

/** https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html */
export interface FirehoseTransformationEvent {
  invocationId: string;
  deliveryStreamArn: string;
  region: string;
  records: FirehoseInputRecord[];
}

export interface FirehoseInputRecord {
  recordId: string;
  /** ms since epoch: when Firehose received the record. */
  approximateArrivalTimestamp: number;
  /** base64 of the record's bytes. */
  data: string;
}

export type FirehoseRecordResult = 'Ok' | 'Dropped' | 'ProcessingFailed';

export interface FirehoseOutputRecord {
  recordId: string;
  result: FirehoseRecordResult;
  /** base64; for Ok the rows as NDJSON, otherwise the record's original bytes. */
  data: string;
  /** Dynamic partitioning keys (`partitionKeyFromLambda:dt`), for Ok records. */
  metadata?: { partitionKeys: Record<string, string> };
}

export interface FirehoseTransformationResponse {
  records: FirehoseOutputRecord[];
}

/** Why a record came back ProcessingFailed; the handler logs these (Firehose keeps only the raw bytes). */
export interface TransformFailure {
  recordId: string;
  /** Index in the pipeline's activities; -1 for the channel stage (decoding), activities.length for the datastore. */
  activity: number;
  activityType: string;
  reason: string;
}

export interface TransformOutcome {
  response: FirehoseTransformationResponse;
  failures: TransformFailure[];
  /** Lower-cased column name -> its spelling and the kinds of values seen (see lake/columns.ts), for the Glue schema. */
  columns: Map<string, { name: string; mask: number }>;
  counts: { in: number; out: number; dropped: number; failed: number };
}

export interface FirehoseTransform {
  transform(event: FirehoseTransformationEvent): Promise<TransformOutcome>;
}

/** The CloudWatch metrics the transform publishes per batch (see pipelineMetricsLine); `analytics status` reads them. */
export const PIPELINE_METRICS = { namespace: 'iotctl/Pipelines', names: ['In', 'Out', 'Filtered', 'Failed'] } as const;

/**
 * A batch's counts as one CloudWatch embedded metric format document: a JSON log line from which CloudWatch
 * Logs extracts the metrics In, Out, Filtered (Dropped records) and Failed, with the dimensions Project and
 * Pipeline (Pipeline alone for a function deployed without its project). Undefined without a pipeline name:
 * there is nothing to key the metrics by.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
export function pipelineMetricsLine(pipeline: string | undefined, project: string | undefined, counts: TransformOutcome['counts'], now = Date.now(), stage?: string): string | undefined {
  if (!pipeline) return undefined;
  return JSON.stringify({
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: PIPELINE_METRICS.namespace,
          // The stage keeps two stages' pipelines of one name apart (functions made before stages set none).
          Dimensions: [project ? (stage ? ['Project', 'Stage', 'Pipeline'] : ['Project', 'Pipeline']) : ['Pipeline']],
          Metrics: PIPELINE_METRICS.names.map((Name) => ({ Name, Unit: 'Count' })),
        },
      ],
    },
    ...(project ? { Project: project } : {}),
    ...(project && stage ? { Stage: stage } : {}),
    Pipeline: pipeline,
    In: counts.in,
    Out: counts.out,
    Filtered: counts.dropped,
    Failed: counts.failed,
  });
}

const RESERVED = new Set<string>(DATASTORE_RESERVED_ATTRIBUTES);
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Compiles the activities once (per Lambda container). A pipeline that does not compile fails every record
 * with the compile error instead of throwing: Firehose then keeps the records in its error prefix with a
 * reason, rather than retrying an invocation that can never succeed.
 */
export function compileFirehoseTransform(activities: readonly Activity[], deps: Pick<PipelineDeps, 'invoke' | 'lookupThing'> = {}): FirehoseTransform {
  let compiled: CompiledPipeline | undefined;
  let compileError: string | undefined;
  try {
    compiled = compilePipeline(activities, { ...deps, target: 'aws' });
  } catch (e) {
    compileError = `the pipeline cannot run: ${(e as Error).message}`;
  }
  const datastoreIndex = activities.length;

  return {
    async transform(event) {
      const records = event.records ?? [];
      const failures: TransformFailure[] = [];
      const results = new Map<string, FirehoseOutputRecord>();
      const fail = (r: FirehoseInputRecord, activity: number, activityType: string, reason: string) => {
        failures.push({ recordId: r.recordId, activity, activityType, reason });
        results.set(r.recordId, { recordId: r.recordId, result: 'ProcessingFailed', data: r.data });
      };
      const byId = new Map<string, FirehoseInputRecord>();
      const inputs: PipelineMessage[] = [];
      for (const r of records) {
        byId.set(r.recordId, r);
        if (compileError) {
          fail(r, -1, 'pipeline', compileError);
          continue;
        }
        const parsed = decode(r.data);
        if (typeof parsed === 'string') fail(r, -1, 'channel', parsed);
        else inputs.push({ id: r.recordId, receivedAt: r.approximateArrivalTimestamp, body: parsed });
      }

      const columns = new Map<string, { name: string; mask: number }>();
      if (compiled && inputs.length) {
        const result = await compiled.process(inputs, { inPlace: true });
        for (const f of result.failed) fail(byId.get(f.message.id)!, f.activity, f.activityType, f.reason);
        // NDJSON lines per source record: a lambda activity that splits messages gives one record several rows.
        const lines = new Map<string, { lines: string[]; dt: string }>();
        const rejected = new Set<string>();
        for (const row of result.out) {
          const sourceId = byId.has(row.id) ? row.id : row.id.replace(/#\d+$/, '');
          if (rejected.has(sourceId)) continue;
          const serialised = serialiseRow(row, columns);
          if (!serialised.ok) {
            rejected.add(sourceId);
            lines.delete(sourceId);
            fail(byId.get(sourceId)!, datastoreIndex, 'datastore', serialised.reason);
            continue;
          }
          let entry = lines.get(sourceId);
          if (!entry) lines.set(sourceId, (entry = { lines: [], dt: utcDay(row.receivedAt) }));
          entry.lines.push(serialised.line);
        }
        for (const [recordId, entry] of lines)
          results.set(recordId, {
            recordId,
            result: 'Ok',
            data: Buffer.from(entry.lines.join('')).toString('base64'),
            metadata: { partitionKeys: { dt: entry.dt } },
          });
      }

      // Every input record gets exactly one answer, in input order (Firehose's contract). Records without
      // a row or a failure were filtered out (or merged into another record by a lambda activity).
      const counts = { in: records.length, out: 0, dropped: 0, failed: 0 };
      const out: FirehoseOutputRecord[] = records.map((r) => {
        const answer = results.get(r.recordId) ?? { recordId: r.recordId, result: 'Dropped' as const, data: '' };
        if (answer.result === 'Ok') counts.out++;
        else if (answer.result === 'Dropped') counts.dropped++;
        else counts.failed++;
        return answer;
      });
      return { response: { records: out }, failures, columns, counts };
    },
  };
}

/** The message body, or why it cannot go through a pipeline (the local channel stage's reasons, word for word). */
function decode(data: string): JsonObject | string {
  let text: string;
  try {
    text = utf8.decode(Buffer.from(data, 'base64'));
  } catch {
    return 'the payload is binary, not a JSON object; pipelines process JSON messages';
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return 'the payload is not valid JSON; pipelines process JSON messages';
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return `the payload is ${Array.isArray(body) ? 'a JSON array' : `the JSON ${body === null ? 'null' : typeof body}`}, not a JSON object`;
  return body as JsonObject;
}

/**
 * One datastore row as an NDJSON line, with the local datastore's rules: reserved names and attributes that
 * differ only in case cannot be columns (Glue and Athena column names are case-insensitive, as DuckDB's are).
 */
function serialiseRow(row: PipelineMessage, columns: Map<string, { name: string; mask: number }>): { ok: true; line: string } | { ok: false; reason: string } {
  const seen = new Set<string>();
  let nested = false;
  for (const key in row.body) {
    const lower = key.toLowerCase();
    if (!key) return { ok: false, reason: 'an attribute has an empty name, which cannot be a datastore column' };
    if (RESERVED.has(lower))
      return {
        ok: false,
        reason: `attribute "${key}" is reserved by the datastore (${lower === 'dt' ? 'its day partition' : 'row metadata'}); rename it with addAttributes + removeAttributes activities`,
      };
    if (seen.has(lower)) return { ok: false, reason: `attributes that differ only in case map to one datastore column "${columns.get(lower)?.name ?? key}" (column names are case-insensitive)` };
    seen.add(lower);
    const kind = kindOf(row.body[key]);
    if (kind === KIND_NESTED) nested = true;
    const column = columns.get(lower);
    if (column) column.mask |= kind;
    else columns.set(lower, { name: key, mask: kind });
  }
  let body: JsonObject = row.body;
  if (nested) {
    // Nested values are stored as their JSON text, as the local datastore's VARCHAR columns hold them.
    body = {};
    for (const key in row.body) {
      const value = row.body[key];
      body[key] = value !== null && typeof value === 'object' ? JSON.stringify(value) : value;
    }
  }
  let json: string;
  try {
    json = JSON.stringify(body);
  } catch (e) {
    return { ok: false, reason: `the message cannot be serialised as JSON: ${(e as Error).message}` };
  }
  // The metadata columns first, spliced in front of the body's own JSON (one stringify per row).
  return { ok: true, line: `{"__message_id":${JSON.stringify(row.id)},"__received_at":${row.receivedAt}${json.length > 2 ? ',' + json.slice(1) : '}'}\n` };
}

let dayStart = 0;
let dayEnd = -1;
let dayText = '';
/** UTC 'YYYY-MM-DD', remembering the current day (records of a batch mostly share it). */
function utcDay(ms: number): string {
  if (ms >= dayStart && ms < dayEnd) return dayText;
  dayStart = Math.floor(ms / 86_400_000) * 86_400_000;
  dayEnd = dayStart + 86_400_000;
  dayText = new Date(ms).toISOString().slice(0, 10);
  return dayText;
}

/** Glue/Athena types for the local datastore's column types (lake/columns.ts). */
const GLUE_TYPE: Record<ColumnType, string> = { BIGINT: 'bigint', DOUBLE: 'double', BOOLEAN: 'boolean', VARCHAR: 'string' };
const LAKE_TYPE: Record<string, ColumnType> = { bigint: 'BIGINT', int: 'BIGINT', double: 'DOUBLE', float: 'DOUBLE', boolean: 'BOOLEAN', string: 'VARCHAR' };

/**
 * The Glue table columns after a batch, widened as the local lake widens its columns: a new attribute adds a
 * column; bigint may become double; any other change becomes string, and stays string. Returns undefined when
 * nothing changes (the common case: the handler then makes no Glue call). Columns it does not know (the base
 * columns, a timestamp) are left as they are.
 */
export function widenGlueColumns(existing: readonly { name: string; type: string }[], seen: ReadonlyMap<string, { name: string; mask: number }>): { name: string; type: string }[] | undefined {
  const out = existing.map((c) => ({ ...c }));
  const byKey = new Map(out.map((c) => [c.name.toLowerCase(), c]));
  let changed = false;
  for (const [key, { name, mask }] of seen) {
    const fileType = typeForKinds(mask);
    if (fileType === undefined) continue;
    const column = byKey.get(key);
    if (!column) {
      // Glue and Athena spell column names in lower case.
      const added = { name: name.toLowerCase(), type: GLUE_TYPE[fileType] };
      out.push(added);
      byKey.set(key, added);
      changed = true;
      continue;
    }
    const known = LAKE_TYPE[column.type.toLowerCase()];
    if (!known) continue;
    const wider = GLUE_TYPE[widen(known, fileType)!];
    if (wider !== column.type) {
      column.type = wider;
      changed = true;
    }
  }
  return changed ? out : undefined;
}
