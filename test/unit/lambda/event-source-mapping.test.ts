import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openStore, type Db } from '../../../src/targets/local/store.js';
import { LocalStreams } from '../../../src/targets/local/stream.js';
import { LocalFunctions } from '../../../src/targets/local/functions.js';
import { EventSourceMappingRunner, EventSourceMappings, interpretBatchResponse } from '../../../src/targets/local/event-source-mapping.js';
import type { EventSourceSpec } from '../../../src/spec/schema.js';

const fixture = resolve(import.meta.dirname, '../../fixtures/lambda/kinesis.cjs');
const sha = createHash('sha256').update(readFileSync(fixture)).digest('hex');
const cleanup: Array<() => Promise<void> | void> = [];
test.after(async () => {
  for (const c of cleanup.reverse()) await c();
});

interface Invocation {
  requestId: string;
  shardId: string;
  seqs: string[];
  ns: number[];
}

interface Env {
  db: Db;
  streams: LocalStreams;
  fns: LocalFunctions;
  dir: string;
  now: { value: number | undefined };
  put(n: number, extra?: Record<string, unknown>, key?: string): string;
  invocations(): Invocation[];
  runner(config?: Partial<EventSourceSpec>): EventSourceMappingRunner;
}

function setup(opts: { mode?: string; shards?: number; timeoutSeconds?: number; sleepMs?: number } = {}): Env {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-esm-'));
  mkdirSync(join(dir, 'markers'));
  const db = openStore(dir);
  const now = { value: undefined as number | undefined };
  const clock = () => now.value ?? Date.now();
  const streams = new LocalStreams(db, { region: 'eu-west-1', clock });
  const fns = new LocalFunctions(db, { region: 'eu-west-1', clock });
  streams.ensureStream({ name: 'telemetry', shards: opts.shards ?? 1, retentionHours: 24 });
  const invocationsFile = join(dir, 'invocations.jsonl');
  fns.register({
    name: 'consumer',
    template: 'kinesis',
    artifactPath: fixture,
    sha256: sha,
    handler: 'handler',
    timeoutSeconds: opts.timeoutSeconds ?? 10,
    memoryMb: 128,
    environment: { MODE: opts.mode ?? 'ok', INVOCATIONS_FILE: invocationsFile, MARKER_DIR: join(dir, 'markers'), SLEEP_MS: String(opts.sleepMs ?? 0) },
  });
  const runners: EventSourceMappingRunner[] = [];
  cleanup.push(async () => {
    await Promise.all(runners.map((r) => r.stop()));
    await fns.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    db,
    streams,
    fns,
    dir,
    now,
    put: (n, extra = {}, key = `device-${n % 5}`) => streams.putRecord('telemetry', Buffer.from(JSON.stringify({ n, ...extra })), key).sequenceNumber,
    invocations: () =>
      existsSync(invocationsFile)
        ? readFileSync(invocationsFile, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as Invocation)
        : [],
    runner: (config = {}) => {
      const r = new EventSourceMappingRunner({
        db,
        streams,
        functions: fns,
        functionName: 'consumer',
        clock,
        pollIntervalMs: 20,
        retryBaseDelayMs: 10,
        retryMaxDelayMs: 50,
        config: {
          stream: 'telemetry',
          batchSize: 100,
          maximumBatchingWindowSeconds: 0,
          startingPosition: 'TRIM_HORIZON',
          maximumRetryAttempts: -1,
          maximumRecordAgeInSeconds: -1,
          bisectBatchOnFunctionError: false,
          reportBatchItemFailures: true,
          ...config,
        },
      });
      runners.push(r);
      return r;
    },
  };
}

async function waitFor(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const range = (a: number, b: number) => Array.from({ length: b - a }, (_, i) => a + i);
const delivered = (e: Env) => e.invocations().flatMap((i) => i.ns);

test('batches hold at most BatchSize records, in order, with the exact Kinesis event shape', async () => {
  const e = setup();
  for (const n of range(0, 25)) e.put(n);
  const r = e.runner({ batchSize: 10 });
  r.start();
  await waitFor('25 records', () => r.stats().records === 25);
  assert.equal(
    e.invocations().map((i) => i.ns),
    [range(0, 10), range(10, 20), range(20, 25)],
  );
  const event = r.kinesisEvent('shardId-000000000000', e.streams.getRecords(e.streams.getShardIterator('telemetry', 'shardId-000000000000', 'TRIM_HORIZON'), 1).records) as {
    Records: Array<Record<string, unknown> & { kinesis: Record<string, unknown> }>;
  };
  const rec = event.Records[0]!;
  assert.equal(Object.keys(rec).sort(), ['awsRegion', 'eventID', 'eventName', 'eventSource', 'eventSourceARN', 'eventVersion', 'invokeIdentityArn', 'kinesis']);
  assert.equal(Object.keys(rec.kinesis).sort(), ['approximateArrivalTimestamp', 'data', 'kinesisSchemaVersion', 'partitionKey', 'sequenceNumber']);
  assert.is(rec.kinesis.kinesisSchemaVersion, '1.0');
  assert.is(rec.kinesis.partitionKey, 'device-0');
  assert.is(Buffer.from(rec.kinesis.data as string, 'base64').toString(), '{"n":0}');
  assert.ok(typeof rec.kinesis.approximateArrivalTimestamp === 'number' && (rec.kinesis.approximateArrivalTimestamp as number) < 1e11, 'seconds, not ms');
  assert.is(rec.eventID, `shardId-000000000000:${rec.kinesis.sequenceNumber as string}`);
  assert.is(rec.eventName, 'aws:kinesis:record');
  assert.is(rec.eventSource, 'aws:kinesis');
  assert.is(rec.eventVersion, '1.0');
  assert.is(rec.awsRegion, 'eu-west-1');
  assert.is(rec.eventSourceARN, 'arn:aws:kinesis:eu-west-1:000000000000:stream/telemetry');
  assert.is(r.stats().batches, 3);
  // The handler's console output is in the function's logs.
  assert.ok(e.fns.readLogs('consumer').some((l) => l.level === 'INFO' && l.message === 'batch of 10 from arn:aws:kinesis:eu-west-1:000000000000:stream/telemetry'));
});

test('the batching window gathers records that arrive within it into one batch', async () => {
  const e = setup();
  const r = e.runner({ batchSize: 100, maximumBatchingWindowSeconds: 1 });
  r.start();
  await new Promise((res) => setTimeout(res, 100));
  for (const n of range(0, 3)) e.put(n);
  await new Promise((res) => setTimeout(res, 400));
  assert.is(e.invocations().length, 0, 'the window is still open');
  for (const n of range(3, 5)) e.put(n);
  await waitFor('5 records', () => r.stats().records === 5);
  assert.equal(e.invocations().map((i) => i.ns), [range(0, 5)]);
});

test('StartingPosition LATEST skips earlier records and is pinned, so a restart before any batch loses nothing', async () => {
  const e = setup();
  for (const n of range(0, 5)) e.put(n);
  const first = e.runner({ startingPosition: 'LATEST' });
  first.start();
  await waitFor('the LATEST position to be pinned', () => first.stats().shards.some((s) => s.checkpoint !== null));
  await first.stop();
  for (const n of range(5, 8)) e.put(n);
  const second = e.runner({ startingPosition: 'LATEST' });
  second.start();
  await waitFor('3 records', () => second.stats().records === 3);
  assert.equal(delivered(e), [5, 6, 7]);
});

test('StartingPosition AT_TIMESTAMP starts at the first record at or after the time', async () => {
  const e = setup();
  e.now.value = Date.parse('2030-01-01T00:00:00Z');
  for (const n of range(0, 3)) e.put(n);
  e.now.value = Date.parse('2030-01-01T00:10:00Z');
  for (const n of range(3, 6)) e.put(n);
  const r = e.runner({ startingPosition: 'AT_TIMESTAMP', startingPositionTimestamp: '2030-01-01T00:05:00Z' });
  r.start();
  await waitFor('3 records', () => r.stats().records === 3);
  assert.equal(delivered(e), [3, 4, 5]);
});

test('the checkpoint survives a restart: a new runner continues where the old one stopped', async () => {
  const e = setup();
  for (const n of range(0, 10)) e.put(n);
  const first = e.runner({ batchSize: 4 });
  first.start();
  await waitFor('10 records', () => first.stats().records === 10);
  await first.stop();
  for (const n of range(10, 15)) e.put(n);
  const second = e.runner({ batchSize: 4 });
  second.start();
  await waitFor('5 more records', () => second.stats().records === 5);
  assert.equal(delivered(e), range(0, 15));
});

test('a failing batch is retried MaximumRetryAttempts times, then described in the on-failure destination, and the shard moves on', async () => {
  const e = setup({ mode: 'throw-poison' });
  const seqs = [e.put(0), e.put(1, { poison: true }), e.put(2)];
  const r = e.runner({ batchSize: 3, maximumRetryAttempts: 2, onFailure: 'poison-queue' });
  r.start();
  await waitFor('a failure record', () => e.fns.listFailures('consumer').length === 1);
  e.put(3);
  await waitFor('the next record', () => r.stats().records === 1);
  assert.equal(e.invocations().map((i) => i.ns), [[0, 1, 2], [0, 1, 2], [0, 1, 2], [3]]);
  const [failure] = e.fns.listFailures('consumer');
  assert.is(failure!.destination, 'poison-queue');
  const rec = failure!.record as { requestContext: Record<string, unknown>; responseContext: Record<string, unknown>; KinesisBatchInfo: Record<string, unknown>; version: string };
  assert.equal(rec.requestContext, {
    requestId: e.invocations()[2]!.requestId,
    functionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:consumer',
    condition: 'RetryAttemptsExhausted',
    approximateInvokeCount: 3,
  });
  assert.equal(rec.responseContext, { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' });
  assert.is(rec.version, '1.0');
  const info = rec.KinesisBatchInfo;
  assert.is(info.shardId, 'shardId-000000000000');
  assert.is(info.startSequenceNumber, seqs[0]);
  assert.is(info.endSequenceNumber, seqs[2]);
  assert.is(info.batchSize, 3);
  assert.is(info.streamArn, 'arn:aws:kinesis:eu-west-1:000000000000:stream/telemetry');
  assert.match(info.approximateArrivalOfFirstRecord as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const stats = r.stats();
  assert.equal([stats.batches, stats.errors, stats.retries, stats.discarded, stats.records], [4, 3, 2, 3, 1]);
  assert.ok(e.fns.readLogs('consumer').some((l) => l.level === 'WARN' && /discarded 3 record\(s\).*RetryAttemptsExhausted/.test(l.message)));
});

test('BisectBatchOnFunctionError isolates the poison record; the rest are processed and bisections use no retries', async () => {
  const e = setup({ mode: 'throw-poison' });
  const seqs = range(0, 8).map((n) => e.put(n, n === 5 ? { poison: true } : {}));
  const r = e.runner({ batchSize: 8, bisectBatchOnFunctionError: true, maximumRetryAttempts: 1 });
  r.start();
  await waitFor('the failure record and all other records', () => e.fns.listFailures('consumer').length === 1 && r.stats().records === 7);
  const ok = e.invocations().filter((i) => !i.ns.includes(5));
  assert.equal(ok.flatMap((i) => i.ns).sort(), [0, 1, 2, 3, 4, 6, 7]);
  // [0..7] fails -> [0..3] ok, [4..7] fails -> [4,5] fails -> [4] ok, [5] fails, retried once, then discarded; [6,7] ok.
  assert.equal(e.invocations().map((i) => i.ns), [[0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7], [4, 5], [4], [5], [5], [6, 7]]);
  const info = (e.fns.listFailures('consumer')[0]!.record as { KinesisBatchInfo: Record<string, unknown> }).KinesisBatchInfo;
  assert.equal([info.batchSize, info.startSequenceNumber, info.endSequenceNumber], [1, seqs[5], seqs[5]]);
  assert.is(r.stats().retries, 1);
});

test('ReportBatchItemFailures: the checkpoint moves to before the lowest failed record and the batch resumes there', async () => {
  const e = setup({ mode: 'report-once' });
  const seqs = range(0, 6).map((n) => e.put(n, n === 3 || n === 4 ? { fail: true } : {}));
  const r = e.runner({ batchSize: 6 });
  r.start();
  await waitFor('all records', () => r.stats().records === 6);
  assert.equal(e.invocations().map((i) => i.ns), [range(0, 6), [3, 4, 5]]);
  assert.is(e.invocations()[1]!.seqs[0], seqs[3]);
  assert.is(r.stats().shards[0]!.checkpoint, seqs[5]);
  assert.is(e.fns.listFailures('consumer').length, 0);
});

test('ReportBatchItemFailures off: a reported failure is ignored and the batch counts as a success', async () => {
  const e = setup({ mode: 'report-poison' });
  for (const n of range(0, 3)) e.put(n, n === 1 ? { poison: true } : {});
  const r = e.runner({ reportBatchItemFailures: false });
  r.start();
  await waitFor('3 records', () => r.stats().records === 3);
  assert.is(e.invocations().length, 1);
});

test('an empty itemIdentifier fails the whole batch, which is retried from its start', async () => {
  const e = setup({ mode: 'report-invalid' });
  for (const n of range(0, 4)) e.put(n);
  const r = e.runner();
  r.start();
  await waitFor('4 records', () => r.stats().records === 4);
  assert.equal(e.invocations().map((i) => i.ns), [range(0, 4), range(0, 4)]);
});

test('interpretBatchResponse follows the documented success and failure conditions', () => {
  const recs = ['a', 'b', 'c'].map((s) => ({ sequenceNumber: s, partitionKey: 'k', data: Buffer.alloc(0), approximateArrivalTimestamp: 0 }));
  assert.equal(interpretBatchResponse(null, recs), { kind: 'ok' });
  assert.equal(interpretBatchResponse({}, recs), { kind: 'ok' });
  assert.equal(interpretBatchResponse({ batchItemFailures: [] }, recs), { kind: 'ok' });
  assert.equal(interpretBatchResponse({ batchItemFailures: null }, recs), { kind: 'ok' });
  assert.equal(interpretBatchResponse({ batchItemFailures: [{ itemIdentifier: 'c' }, { itemIdentifier: 'b' }] }, recs), { kind: 'partial', index: 1 });
  assert.is(interpretBatchResponse({ batchItemFailures: [{ itemIdentifier: null }] }, recs).kind, 'error');
  assert.is(interpretBatchResponse({ batchItemFailures: [{ itemIdentifier: 'zzz' }] }, recs).kind, 'error');
  assert.is(interpretBatchResponse({ batchItemFailures: [{ ItemIdentifier: 'a' }] }, recs).kind, 'error');
  assert.is(interpretBatchResponse({ batchItemFailures: 'a' }, recs).kind, 'error');
});

test('MaximumRecordAgeInSeconds discards records that are too old without invoking the function', async () => {
  const e = setup();
  e.now.value = Date.now() - 120_000;
  const old = [e.put(0), e.put(1)];
  e.now.value = undefined;
  e.put(2);
  const r = e.runner({ maximumRecordAgeInSeconds: 60 });
  r.start();
  await waitFor('the fresh record', () => r.stats().records === 1);
  assert.equal(delivered(e), [2]);
  const [failure] = e.fns.listFailures('consumer');
  const rec = failure!.record as { requestContext: Record<string, unknown>; KinesisBatchInfo: Record<string, unknown>; responseContext?: unknown };
  assert.is(rec.requestContext.condition, 'RecordAgeExceeded');
  assert.is(rec.requestContext.approximateInvokeCount, 0);
  assert.is(rec.responseContext, undefined);
  assert.equal([rec.KinesisBatchInfo.startSequenceNumber, rec.KinesisBatchInfo.endSequenceNumber, rec.KinesisBatchInfo.batchSize], [old[0], old[1], 2]);
});

test('a handler that times out is retried and then discarded; the runner keeps going', async () => {
  const e = setup({ mode: 'sleep', timeoutSeconds: 1, sleepMs: 5000 });
  e.put(0);
  const r = e.runner({ maximumRetryAttempts: 0 });
  r.start();
  await waitFor('the discard', () => e.fns.listFailures('consumer').length === 1, 8000);
  assert.ok(e.fns.readLogs('consumer').some((l) => /Task timed out after 1\.00 seconds/.test(l.message)));
  assert.is(r.stats().errors, 1);
});

test('shards are consumed in parallel, each in order', async () => {
  const e = setup({ shards: 4 });
  for (const n of range(0, 200)) e.put(n, {}, `device-${n % 17}`);
  const r = e.runner({ batchSize: 7 });
  r.start();
  await waitFor('200 records', () => r.stats().records === 200);
  const byShard = new Map<string, string[]>();
  for (const i of e.invocations()) byShard.set(i.shardId, [...(byShard.get(i.shardId) ?? []), ...i.seqs]);
  assert.is(byShard.size, 4);
  for (const seqs of byShard.values()) assert.equal(seqs, [...seqs].sort());
  assert.equal(delivered(e).sort((a, b) => a - b), range(0, 200));
  assert.is(r.stats().shards.length, 4);
});

test('EventSourceMappings follows the registry: a deployed mapping starts, a changed one restarts, a removed one stops', async () => {
  const e = setup();
  const mappings = new EventSourceMappings({ db: e.db, streams: e.streams, functions: e.fns, pollIntervalMs: 20, retryBaseDelayMs: 10, reconcileIntervalMs: 50 });
  cleanup.push(() => mappings.stop());
  mappings.start();
  await mappings.reconcile();
  assert.equal(mappings.stats(), []);
  const fn = e.fns.get('consumer')!;
  const eventSource: EventSourceSpec = {
    stream: 'telemetry',
    batchSize: 2,
    maximumBatchingWindowSeconds: 0,
    startingPosition: 'TRIM_HORIZON',
    maximumRetryAttempts: -1,
    maximumRecordAgeInSeconds: -1,
    bisectBatchOnFunctionError: false,
    reportBatchItemFailures: true,
  };
  e.fns.register({ ...fn, eventSource });
  for (const n of range(0, 4)) e.put(n);
  await waitFor('4 records', () => mappings.stats()[0]?.records === 4);
  e.fns.register({ ...fn, eventSource: { ...eventSource, batchSize: 10 } });
  await waitFor('a restart with the new batch size', () => mappings.stats()[0]?.records === 0);
  for (const n of range(4, 9)) e.put(n);
  await waitFor('5 more', () => mappings.stats()[0]?.records === 5);
  assert.equal(e.invocations().map((i) => i.ns), [[0, 1], [2, 3], [4, 5, 6, 7, 8]]);
  e.fns.remove('consumer');
  await waitFor('the runner to stop', () => mappings.stats().length === 0);
});

test.run();
