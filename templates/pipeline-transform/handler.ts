/**
 * pipeline-transform: the Firehose data transformation Lambda of the datalake analytics engine.
 *
 * - The pipeline's activities come from PIPELINE_ACTIVITIES (JSON, set by `analytics apply`) and run through
 *   src/iot/pipeline, the code the local lake runs, so both targets store the same rows for the same messages.
 * - A record an activity filters out is `Dropped`; a failing one is `ProcessingFailed` (Firehose writes it to
 *   the stream's error prefix) and its reason is logged as a JSON line keyed by recordId, because Firehose
 *   keeps only the raw bytes of a failed record.
 * - Rows carry the day partition as `metadata.partitionKeys.dt` for dynamic partitioning.
 * - Each batch's counts (in, out, filtered, failed) go to CloudWatch as metrics in the embedded metric
 *   format (namespace iotctl/Pipelines), because Firehose's own metrics cannot tell Ok from Dropped;
 *   `analytics status` reads them.
 * - New attributes (or wider values) widen the datastore's Glue table (GLUE_DATABASE/GLUE_TABLE), as the
 *   local lake widens its columns; Firehose's Parquet conversion reads the table's LATEST version.
 * - deviceRegistryEnrich calls IoT DescribeThing, remembered per warm container for THING_CACHE_SECONDS;
 *   the lambda activity invokes the named function synchronously. Both SDK clients load on first use.
 */
import {
  compileFirehoseTransform,
  pipelineMetricsLine,
  widenGlueColumns,
  type FirehoseTransform,
  type FirehoseTransformationEvent,
  type FirehoseTransformationResponse,
} from '../../src/iot/pipeline/firehose.js';
import { lambdaInvoke, tableInputWithColumns, thingLookup, type DescribedThing, type InvokeAnswer } from '../../src/iot/pipeline/aws-deps.js';
import type { Activity, PipelineDeps } from '../../src/iot/pipeline/types.js';

export type { FirehoseTransformationEvent, FirehoseTransformationResponse };

/** The datastore's Glue table columns: read once per container, written only when a batch widens them. */
export interface SchemaStore {
  read(): Promise<Column[]>;
  write(columns: Column[]): Promise<void>;
}
type Column = { name: string; type: string };

/** Where the metric lines go: stdout as is (console.log in Lambda prefixes a timestamp, which EMF does not allow). */
const stdoutLine = (line: string) => void process.stdout.write(line + '\n');

/** Builds a handler over the given dependencies (tests inject a registry; Lambda uses the AWS one). */
export function createHandler(deps: Pick<PipelineDeps, 'invoke' | 'lookupThing'>, env: NodeJS.ProcessEnv = process.env, schema?: SchemaStore, emit: (line: string) => void = stdoutLine) {
  let transform: FirehoseTransform | undefined;
  let known: Promise<Column[]> | undefined;
  return async function handler(event: FirehoseTransformationEvent): Promise<FirehoseTransformationResponse> {
    transform ??= compileFirehoseTransform(readActivities(env), deps);
    const outcome = await transform.transform(event);
    if (outcome.failures.length) {
      const arrivals = new Map(event.records.map((r) => [r.recordId, r.approximateArrivalTimestamp]));
      for (const f of outcome.failures) {
        const arrived = arrivals.get(f.recordId);
        log(env, 'warn', 'record failed', {
          pipeline: env.PIPELINE_NAME,
          recordId: f.recordId,
          receivedAt: arrived === undefined ? undefined : new Date(arrived).toISOString(),
          activity: f.activity,
          activityType: f.activityType,
          reason: f.reason,
        });
      }
    }
    const metrics = pipelineMetricsLine(env.PIPELINE_NAME, env.IOTCTL_PROJECT, outcome.counts, Date.now(), env.IOTCTL_STAGE || undefined);
    if (metrics) emit(metrics);
    if (schema && outcome.columns.size) {
      const current = await (known ??= schema.read().catch((e) => {
        known = undefined;
        throw e;
      }));
      const widened = widenGlueColumns(current, outcome.columns);
      if (widened) {
        await schema.write(widened);
        known = Promise.resolve(widened);
        log(env, 'debug', 'datastore schema widened', { pipeline: env.PIPELINE_NAME, columns: widened.slice(current.length).map((c) => c.name) });
      }
    }
    if (env.LOG_LEVEL === 'debug') log(env, 'debug', 'batch transformed', { pipeline: env.PIPELINE_NAME, ...outcome.counts, columns: [...outcome.columns.values()].map((c) => c.name) });
    return outcome.response;
  };
}

function readActivities(env: NodeJS.ProcessEnv): Activity[] {
  const raw = env.PIPELINE_ACTIVITIES ?? '[]';
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new Error(`PIPELINE_ACTIVITIES is not valid JSON (${(e as Error).message}); run \`iotctl analytics apply\` to set it.`);
  }
  if (!Array.isArray(parsed)) throw new Error('PIPELINE_ACTIVITIES must be a JSON array of activities; run `iotctl analytics apply` to set it.');
  return parsed as Activity[];
}

/** DescribeThing through the IoT API, cached per warm container (devices rarely change between batches). */
function awsRegistry(env: NodeJS.ProcessEnv): NonNullable<PipelineDeps['lookupThing']> {
  let client: Promise<(thingName: string) => Promise<DescribedThing | undefined>> | undefined;
  const iot = () =>
    (client ??= import('@aws-sdk/client-iot').then(({ IoTClient, DescribeThingCommand }) => {
      const c = new IoTClient({});
      return async (thingName: string) => {
        try {
          return await c.send(new DescribeThingCommand({ thingName }));
        } catch (e) {
          if ((e as { name?: string }).name === 'ResourceNotFoundException') return undefined;
          throw e;
        }
      };
    }));
  return thingLookup(async (thingName) => (await iot())(thingName), Number(env.THING_CACHE_SECONDS ?? 60) * 1000);
}

/** The Glue table of GLUE_DATABASE/GLUE_TABLE; UpdateTable keeps everything but the columns. */
function glueSchema(env: NodeJS.ProcessEnv): SchemaStore | undefined {
  const DatabaseName = env.GLUE_DATABASE;
  const Name = env.GLUE_TABLE;
  if (!DatabaseName || !Name) return undefined;
  const glue = import('@aws-sdk/client-glue').then((m) => ({ m, c: new m.GlueClient({}) }));
  const table = async () => {
    const { m, c } = await glue;
    return { m, c, t: (await c.send(new m.GetTableCommand({ DatabaseName, Name }))).Table! };
  };
  return {
    async read() {
      return ((await table()).t.StorageDescriptor?.Columns ?? []).map((col) => ({ name: col.Name!, type: col.Type! }));
    },
    async write(columns) {
      const { m, c, t } = await table();
      await c.send(new m.UpdateTableCommand({ DatabaseName, TableInput: tableInputWithColumns({ ...t, Name }, columns) }));
    },
  };
}

/** The lambda activity: a synchronous Invoke with the messages array. */
function awsInvoke(): NonNullable<PipelineDeps['invoke']> {
  let client: Promise<(functionName: string, payload: Uint8Array) => Promise<InvokeAnswer>> | undefined;
  const lambda = () =>
    (client ??= import('@aws-sdk/client-lambda').then(({ LambdaClient, InvokeCommand }) => {
      const c = new LambdaClient({});
      return (FunctionName: string, Payload: Uint8Array) => c.send(new InvokeCommand({ FunctionName, Payload }));
    }));
  return lambdaInvoke(async (functionName, payload) => (await lambda())(functionName, payload));
}

function log(env: NodeJS.ProcessEnv, level: 'debug' | 'warn', message: string, fields: Record<string, unknown>): void {
  if (env.LOG_LEVEL === 'silent') return;
  const line = JSON.stringify({ level, message, ...fields });
  if (level === 'warn') console.error(line);
  else console.log(line);
}

export const handler = createHandler({ lookupThing: awsRegistry(process.env), invoke: awsInvoke() }, process.env, glueSchema(process.env));
