/**
 * check-canary: `iotctl check` as a scheduled function in the account (`iotctl check --schedule rate(5 minutes)`).
 * Each run takes LATEST iterators on every open shard of the streams the canary goes through, publishes one
 * canary message through the IoT data plane (QoS 1, with the function's own least-privilege role), waits for
 * the record in each stream (its ApproximateArrivalTimestamp) and for the row in PostgreSQL, then publishes
 * per-stage latency and success to CloudWatch and logs the result as one JSON line (`iotctl status` reads it).
 * The lake is left out: Firehose buffers for minutes, longer than a run should last.
 *
 * Environment: CHECK_PLAN (the stages, from `iotctl check --schedule`), CANARY_TOPIC, IOTCTL_PROJECT,
 * IOTCTL_STAGE, CHECK_TIMEOUT_MS (60000), METRIC_NAMESPACE (iotctl/check); the database as ingest-rds.
 */
import { randomUUID } from 'node:crypto';
import { Client } from '../../src/db/pg.js';
import { canaryPayload, checkMetrics, checkPassed, settle, type CheckPlan, type Observation, type StageKind, type StagePlan, type StageResult } from '../../src/services/check-stages.js';
import { resolveConnection } from '../ingest-rds/database.js';

/** A stage of CHECK_PLAN: a stream stage also names its stream on AWS. */
export type ScheduledStage = StagePlan & { physical?: string };

export interface ScheduledCheckResult {
  iotctl_check_result: { at: string; checkId: string; ok: boolean; totalMs: number; stages: StageResult[] };
}

const LEFT_OUT: ReadonlySet<StageKind> = new Set(['lake', 'athena']);

export async function handler(): Promise<ScheduledCheckResult> {
  const env = process.env;
  const stages = JSON.parse(env.CHECK_PLAN ?? '[]') as ScheduledStage[];
  const topic = env.CANARY_TOPIC ?? '';
  const timeoutMs = Number(env.CHECK_TIMEOUT_MS ?? 60_000);
  const plan: CheckPlan = { topic, stages };
  const checkId = randomUUID();
  const observed = new Map<string, Observation>();
  const deadline = () => Date.now() >= t0 + timeoutMs;
  let t0 = Date.now();

  const [{ KinesisClient, ListShardsCommand, GetShardIteratorCommand, GetRecordsCommand }, { IoTDataPlaneClient, PublishCommand }, { NodeHttpHandler }] = await Promise.all([
    import('@aws-sdk/client-kinesis'),
    import('@aws-sdk/client-iot-data-plane'),
    import('@smithy/node-http-handler'),
  ]);
  // HTTP/1.1: the Kinesis client's HTTP/2 is for SubscribeToShard only, and breaks on endpoints without it.
  const kinesis = new KinesisClient({ requestHandler: new NodeHttpHandler() });
  // Every open shard's iterator, taken before the publish: the record cannot slip past.
  const streams = stages.filter((s) => s.kind === 'stream');
  const iterators = new Map<string, { shardId: string; iterator: string }[]>();
  for (const s of streams) {
    try {
      const shards = (await kinesis.send(new ListShardsCommand({ StreamName: s.physical ?? s.name }))).Shards ?? [];
      const open = shards.filter((x) => !x.SequenceNumberRange?.EndingSequenceNumber);
      iterators.set(s.id, await Promise.all(open.map(async (x) => ({ shardId: x.ShardId!, iterator: (await kinesis.send(new GetShardIteratorCommand({ StreamName: s.physical ?? s.name, ShardId: x.ShardId!, ShardIteratorType: 'LATEST' }))).ShardIterator! }))));
    } catch (e) {
      observed.set(s.id, { status: 'failed', ms: null, detail: `cannot read stream ${s.physical ?? s.name}: ${(e as Error).message}` });
    }
  }
  const db = stages.some((s) => s.kind === 'function') ? await connect().catch((e: Error) => e) : undefined;

  t0 = Date.now();
  try {
    await new IoTDataPlaneClient({}).send(new PublishCommand({ topic, qos: 1, payload: Buffer.from(JSON.stringify(canaryPayload(checkId, t0))) }));
    observed.set('broker', { status: 'passed', ms: Date.now() - t0, detail: `IoT data plane accepted it on ${topic}` });
  } catch (e) {
    observed.set('broker', { status: 'failed', ms: null, detail: `IoT data plane Publish on ${topic} failed: ${(e as Error).name}: ${(e as Error).message}` });
  }

  if (observed.get('broker')?.status === 'passed') {
    await Promise.all([
      ...streams.filter((s) => !observed.has(s.id)).map(async (s) => {
        const shards = iterators.get(s.id) ?? [];
        while (!deadline()) {
          for (const sh of shards) {
            const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: sh.iterator }));
            sh.iterator = out.NextShardIterator ?? sh.iterator;
            for (const r of out.Records ?? []) {
              if (!isCanary(r.Data, checkId)) continue;
              observed.set(s.id, { status: 'passed', ms: Math.max(0, (r.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) - t0), detail: `${sh.shardId}, sequence ${r.SequenceNumber}` });
              // The rules that put to this stream evaluated without error.
              for (const rule of stages) if (rule.kind === 'rule' && rule.streams?.includes(s.name) && !observed.has(rule.id)) observed.set(rule.id, { status: 'passed', ms: observed.get(s.id)!.ms, detail: `evaluated without error; put to stream ${s.name}` });
              return;
            }
          }
          await pause(250); // 5 GetRecords per second per shard at most
        }
      }),
      ...stages.filter((s) => s.kind === 'function').map(async (s) => {
        if (db instanceof Error || !db) return void observed.set(s.id, { status: 'failed', ms: null, detail: `the database refuses connections: ${db?.message ?? 'no database'}` });
        while (!deadline()) {
          const { rows } = await db.query<{ received_at: Date }>(`SELECT received_at FROM iot_messages WHERE ts >= $2 AND payload->>'check_id' = $1 LIMIT 1`, [checkId, new Date(t0 - 3_600_000)]);
          if (rows[0]) return void observed.set(s.id, { status: 'passed', ms: Math.max(0, rows[0].received_at.getTime() - t0), detail: 'row in iot_messages' });
          await pause(500);
        }
      }),
    ]);
  }
  if (db && !(db instanceof Error)) await db.end().catch(() => undefined);

  const skipped = new Set(LEFT_OUT);
  const results = settle(plan, observed, skipped, timeoutMs).map((r): StageResult => {
    const s = stages.find((x) => x.id === r.stage)!;
    if (LEFT_OUT.has(s.kind)) return { ...r, detail: 'left out of the scheduled check: Firehose buffers for minutes' };
    // A rule that feeds only the lake has nothing this run watches.
    if (s.kind === 'rule' && !(s.streams ?? []).length && observed.get('broker')?.status === 'passed') return { stage: r.stage, status: 'skipped', ms: null, detail: 'feeds only the lake, which the scheduled check leaves out' };
    return r;
  });
  const ok = checkPassed(results);
  const at = new Date(t0);
  const scope = { project: env.IOTCTL_PROJECT ?? '', stage: env.IOTCTL_STAGE ?? 'default' };
  const result: ScheduledCheckResult = { iotctl_check_result: { at: at.toISOString(), checkId, ok, totalMs: Date.now() - t0, stages: results } };
  try {
    const { CloudWatchClient, PutMetricDataCommand } = await import('@aws-sdk/client-cloudwatch');
    const metrics = checkMetrics(results, ok, scope, at);
    const cw = new CloudWatchClient({});
    // PutMetricData takes at most 1000 values per call; a check has a few dozen.
    for (let i = 0; i < metrics.length; i += 500) await cw.send(new PutMetricDataCommand({ Namespace: env.METRIC_NAMESPACE ?? 'iotctl/check', MetricData: metrics.slice(i, i + 500) }));
  } finally {
    // One JSON line: what `iotctl status` shows as the last result.
    console.log(JSON.stringify(result));
  }
  return result;
}

async function connect(): Promise<InstanceType<typeof Client>> {
  const { config } = await resolveConnection();
  const client = new Client({ ...config, application_name: 'iotctl-check-canary', connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

function isCanary(data: Uint8Array | undefined, checkId: string): boolean {
  try {
    return (JSON.parse(Buffer.from(data ?? []).toString('utf8')) as { check_id?: unknown }).check_id === checkId;
  } catch {
    return false;
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
