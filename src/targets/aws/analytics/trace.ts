import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { LakeTrace } from '../../../ports.js';
import type { Spec } from '../../../spec/schema.js';
import { abortableSleep } from '../retry.js';
import { isAwsError, type AwsClients } from '../sdk.js';
import { lakePlace } from './datalake.js';
import { channelDeliveryStreams } from './model.js';
import { listObjects } from './s3-objects.js';

/**
 * `iotctl check` on the datalake engine: the canary message in S3, where Firehose delivers it. The raw
 * channel's objects (`raw/<channel>/dt=.../`, gzipped NDJSON as the rule's SQL selected it), then each
 * pipeline's datastore objects (`datastore/<ds>/dt=.../`, Parquet read with DuckDB, or gzipped NDJSON), and
 * its error objects (`errors/<pipeline>/`) for why not. Objects are read once each, only those written since
 * the publish. Firehose delivers after its buffer interval: `traceTimeout` reads it.
 */

type TraceSpec = Pick<Spec, 'project' | 'analytics'> & { stage?: string };

const POLL_MS = 1_000;
/** What Firehose takes to deliver after its buffer fills or its interval ends (S3 writes, the transform's retries). */
const DELIVERY_GRACE_MS = 15_000;

/** The lake stage's time-out: the longest buffer interval of the channel's delivery streams (a transform's own buffer added), plus delivery. */
export async function traceTimeout(aws: AwsClients, spec: TraceSpec, channel: string, graceMs = DELIVERY_GRACE_MS): Promise<{ ms: number; reason: string } | undefined> {
  const place = await lakePlace(aws, spec);
  const { client, sdk } = await aws.get('firehose');
  let longest: { stream: string; seconds: number; transform: number } | undefined;
  for (const stream of channelDeliveryStreams(spec, channel, place)) {
    let d;
    try {
      d = (await client.send(new sdk.DescribeDeliveryStreamCommand({ DeliveryStreamName: stream }), aws.sendOptions)).DeliveryStreamDescription?.Destinations?.[0]?.ExtendedS3DestinationDescription;
    } catch (e) {
      if (isAwsError(e, 'ResourceNotFoundException')) continue;
      throw e;
    }
    const seconds = d?.BufferingHints?.IntervalInSeconds ?? 300;
    const transform = Math.max(0, ...(d?.ProcessingConfiguration?.Enabled === false ? [] : (d?.ProcessingConfiguration?.Processors ?? [])).flatMap((p) => (p.Parameters ?? []).filter((x) => x.ParameterName === 'BufferIntervalInSeconds').map((x) => Number(x.ParameterValue) || 0)));
    if (!longest || seconds + transform > longest.seconds + longest.transform) longest = { stream, seconds, transform };
  }
  if (!longest) return undefined;
  const ms = (longest.seconds + longest.transform) * 1000 + graceMs;
  const transform = longest.transform ? ` + its transform's ${longest.transform} s` : '';
  return { ms, reason: `delivery stream ${longest.stream} buffers ${longest.seconds} s (DescribeDeliveryStream)${transform} + ${Math.round(graceMs / 1000)} s to deliver` };
}

export async function traceDatalake(aws: AwsClients, spec: TraceSpec, find: { field: string; value: string }, opts: { since: number; deadline: number; signal?: AbortSignal }): Promise<LakeTrace | undefined> {
  const place = await lakePlace(aws, spec);
  const bucket = place.bucket;
  const seen = new Set<string>();
  const { client, sdk } = await aws.get('s3');
  // Objects written since the publish, under `prefix` in the days it can be in (dt is the UTC day).
  const fresh = async (prefix: string) => {
    const out = [];
    for (const day of days(opts.since - 60_000, Date.now())) {
      for (const o of await listObjects(aws, bucket, `${prefix}dt=${day}/`)) if (o.Key && !seen.has(o.Key) && (o.LastModified?.getTime() ?? 0) >= opts.since - 5_000) out.push(o);
    }
    return out;
  };
  const read = async (key: string): Promise<Buffer> => {
    seen.add(key);
    const out = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }), aws.sendOptions);
    const bytes = Buffer.from(await out.Body!.transformToByteArray());
    return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
  };
  const holds = (text: string) => ndjson(text).some((r) => r[find.field] === find.value);
  // A poll until a deadline whose end is a result (not found yet), not an error: retry.ts's sleep alone, never
  // past the deadline; Ctrl-C ends the wait and the loop returns what it found.
  const wait = () => abortableSleep(Math.max(0, Math.min(POLL_MS, opts.deadline - Date.now())), opts.signal, 's3', 'ListObjectsV2').catch(() => undefined);

  let found: { channel: string; receivedAt: number } | undefined;
  while (!found) {
    for (const channel of spec.analytics.channels.map((c) => c.name)) {
      for (const o of await fresh(`raw/${channel}/`)) if (holds((await read(o.Key!)).toString('utf8'))) found = { channel, receivedAt: o.LastModified!.getTime() };
      if (found) break;
    }
    if (found || Date.now() >= opts.deadline || opts.signal?.aborted) break;
    await wait();
  }
  if (!found) return undefined;

  const pipelines = spec.analytics.pipelines.filter((p) => p.channel === found.channel);
  const result = new Map<string, LakeTrace['pipelines'][number]>();
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-trace-'));
  let duck: Awaited<ReturnType<typeof import('../../local/lake/duck.js').openDuck>> | undefined;
  try {
    for (;;) {
      for (const p of pipelines.filter((x) => !result.has(x.name))) {
        const parquet = (spec.analytics.datastores.find((d) => d.name === p.datastore)?.format ?? 'parquet') === 'parquet';
        for (const o of await fresh(`datastore/${p.datastore}/`)) {
          const bytes = await read(o.Key!);
          let stored: boolean;
          if (parquet && bytes.subarray(0, 4).toString() === 'PAR1') {
            const file = join(dir, `${seen.size}.parquet`);
            writeFileSync(file, bytes);
            const { openDuck, lit } = await import('../../local/lake/duck.js');
            duck ??= await openDuck({ threads: 1 });
            try {
              const r = await duck.connection.runAndReadAll(`SELECT count(*) FROM read_parquet(${lit(file)}) WHERE CAST(${JSON.stringify(find.field)} AS VARCHAR) = ${lit(find.value)}`);
              stored = Number(r.getRows()[0]?.[0] ?? 0) > 0;
            } catch {
              stored = false; // a file without the column: not this message
            }
          } else stored = holds(bytes.toString('utf8'));
          if (stored) {
            result.set(p.name, { pipeline: p.name, datastore: p.datastore, stored: true });
            break;
          }
        }
        if (result.has(p.name)) continue;
        // Firehose's own verdict: a record the transform failed or S3 refused lands under errors/<pipeline>/.
        for (const o of await fresh(`errors/${p.name}/`)) {
          const failed = ndjson((await read(o.Key!)).toString('utf8')).find((e) => typeof e.rawData === 'string' && holds(Buffer.from(e.rawData, 'base64').toString('utf8')));
          if (failed) result.set(p.name, { pipeline: p.name, datastore: p.datastore, stored: false, reason: `Firehose wrote it to s3://${bucket}/${o.Key} (${String(failed.errorCode ?? 'error')}: ${String(failed.errorMessage ?? '')})` });
        }
      }
      if (result.size === pipelines.length || Date.now() >= opts.deadline || opts.signal?.aborted) break;
      await wait();
    }
  } finally {
    duck?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    ...found,
    messageId: '',
    pipelines: pipelines.map((p) => result.get(p.name) ?? { pipeline: p.name, datastore: p.datastore, stored: false, reason: `no object under s3://${bucket}/datastore/${p.datastore}/ holds it by the time-out (pipeline ${p.name})` }),
  };
}

/** The UTC days (YYYY-MM-DD) from `from` to `to`. */
function days(from: number, to: number): string[] {
  const out: string[] = [];
  for (let t = Date.UTC(new Date(from).getUTCFullYear(), new Date(from).getUTCMonth(), new Date(from).getUTCDate()); t <= to; t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

function ndjson(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) out.push(v as Record<string, unknown>);
    } catch {
      // not a JSON line: not the canary
    }
  }
  return out;
}
