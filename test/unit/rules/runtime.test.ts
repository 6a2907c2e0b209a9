import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IngressLog } from '../../../src/targets/local/ingress.js';
import { RulesRuntime, type RuleErrorPayload } from '../../../src/targets/local/rules-runtime.js';
import { RulesStore } from '../../../src/targets/local/rules-store.js';
import { LocalStreams } from '../../../src/targets/local/stream.js';
import { openStore, type Db } from '../../../src/targets/local/store.js';
import type { RuleSpec } from '../../../src/spec/schema.js';
import type { ChannelMessage, ChannelSink } from '../../../src/targets/local/sinks.js';

let dir: string;
let db: Db;
let ingress: IngressLog;
let streams: LocalStreams;
let store: RulesStore;

const rule = (r: Partial<RuleSpec> & Pick<RuleSpec, 'name' | 'sql' | 'actions'>): RuleSpec => ({ description: '', enabled: true, ...r });

/** A channel that records what it receives (the lake's ChannelStore is tested with the lake). */
class RecordingChannel implements ChannelSink {
  received: { channel: string; message: ChannelMessage }[] = [];
  async putMessages(channel: string, messages: ChannelMessage[]) {
    if (channel !== 'raw') throw new Error(`channel "${channel}" does not exist`);
    for (const message of messages) this.received.push({ channel, message });
  }
}

function readStream(name: string) {
  return streams.listShards(name).flatMap((shardId) => streams.getRecords(streams.getShardIterator(name, shardId, 'TRIM_HORIZON'), 1000).records);
}

test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'iotctl-rules-'));
  db = openStore(dir);
  ingress = new IngressLog(dir, () => 1_700_000_000_000);
  streams = new LocalStreams(db);
  streams.ensureStream({ name: 'telemetry', shards: 2, retentionHours: 24 });
  store = new RulesStore(db);
});

test.after.each(() => {
  ingress.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const publish = (topic: string, payload: string | Buffer, clientId = 'sensor-1') => ingress.append({ topic, clientId, principal: 'cert', qos: 1, payload: Buffer.from(payload) });

test('WHERE filters, SELECT projects, and kinesis puts carry the rendered partition key', async () => {
  store.put(rule({ name: 'hot', sql: "SELECT temperature, topic(2) AS device_id, traceid() AS message_id FROM 'dt/+/telemetry' WHERE temperature > 20", actions: [{ kinesis: { stream: 'telemetry', partitionKey: '${topic(2)}' } }] }));
  const runtime = new RulesRuntime({ db, ingress, store, streams });
  const hot = await publish('dt/sensor-1/telemetry', '{"temperature": 25, "humidity": 40}');
  await publish('dt/sensor-1/telemetry', '{"temperature": 15}');
  await publish('other/topic', '{"temperature": 99}');
  assert.is(await runtime.processAvailable(), 3);
  const records = readStream('telemetry');
  assert.is(records.length, 1);
  assert.is(records[0]!.partitionKey, 'sensor-1');
  assert.equal(JSON.parse(Buffer.from(records[0]!.data).toString()), { temperature: 25, device_id: 'sensor-1', message_id: hot.messageId });
  assert.is(runtime.checkpoint, 3);
  assert.is(await runtime.processAvailable(), 0);
});

test('a replay after a crash evaluates exactly as the first time and does not duplicate stream records', async () => {
  store.put(rule({ name: 'all', sql: "SELECT newuuid() AS id, timestamp() AS ts, traceid() AS trace FROM '#'", actions: [{ kinesis: { stream: 'telemetry', partitionKey: '${newuuid()}' } }] }));
  await publish('a/b', '{}');
  const first = new RulesRuntime({ db, ingress, store, streams });
  await first.processAvailable();
  const once = readStream('telemetry').map((r) => Buffer.from(r.data).toString());
  // Simulate a crash before the checkpoint commit: rewind it and evaluate again in a new runtime.
  db.prepare('UPDATE rules_checkpoint SET seq = 0').run();
  streams.deleteStream('telemetry');
  streams.ensureStream({ name: 'telemetry', shards: 2, retentionHours: 24 });
  const second = new RulesRuntime({ db, ingress, store, streams });
  await second.processAvailable();
  const again = readStream('telemetry').map((r) => Buffer.from(r.data).toString());
  assert.equal(again, once);
  assert.is(JSON.parse(once[0]!).ts, 1_700_000_000_000);
});

test('a missing destination sends the message to errorAction with the AWS error payload', async () => {
  store.put(rule({
    name: 'lake',
    sql: "SELECT * FROM 'dt/#'",
    actions: [{ iotAnalytics: { channel: 'missing' } }, { kinesis: { stream: 'nope', partitionKey: 'k' } }],
    errorAction: { kinesis: { stream: 'telemetry', partitionKey: 'errors' } },
  }));
  const channels = new RecordingChannel();
  const runtime = new RulesRuntime({ db, ingress, store, streams, channels });
  const m = await publish('dt/x', '{"a":1}');
  await runtime.processAvailable();
  const records = readStream('telemetry');
  assert.is(records.length, 1);
  const payload = JSON.parse(Buffer.from(records[0]!.data).toString()) as RuleErrorPayload;
  assert.is(payload.ruleName, 'lake');
  assert.is(payload.topic, 'dt/x');
  assert.is(payload.clientId, 'sensor-1');
  assert.is(Buffer.from(payload.base64OriginalPayload, 'base64').toString(), '{"a":1}');
  assert.equal(payload.failures.map((f) => [f.actionType, f.failedResource]).sort(), [['iotAnalytics', 'missing'], ['kinesis', 'nope']]);
  assert.match(payload.failures.find((f) => f.actionType === 'kinesis')!.errorMessage, /nope/);
  assert.is(runtime.errors()[0]!.messageId, m.messageId);
});

test('runtime evaluation errors and binary payloads never crash the runtime', async () => {
  store.put(rule({ name: 'cast', sql: "SELECT get_dynamodb('t', 'k', 'v', 'arn') AS x FROM 'dt/#'", actions: [{ kinesis: { stream: 'telemetry', partitionKey: 'k' } }] }));
  store.put(rule({ name: 'bin', sql: "SELECT encode(*, 'base64') AS raw FROM 'dt/#'", actions: [{ kinesis: { stream: 'telemetry', partitionKey: 'bin' } }] }));
  const runtime = new RulesRuntime({ db, ingress, store, streams });
  await publish('dt/x', Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  await runtime.processAvailable();
  const errors = runtime.errors();
  assert.is(errors.length, 1);
  assert.match(errors[0]!.error.failures[0]!.errorMessage, /not supported/i);
  const records = readStream('telemetry');
  assert.equal(records.map((r) => JSON.parse(Buffer.from(r.data).toString())), [{ raw: '3q2+7w==' }]);
});

test('a payload nested deeper than the stack allows is a rule failure, and later messages still flow', async () => {
  store.put(rule({ name: 'all', sql: "SELECT * FROM 'dt/#'", actions: [{ kinesis: { stream: 'telemetry', partitionKey: 'k' } }] }));
  const runtime = new RulesRuntime({ db, ingress, store, streams });
  const depth = 60_000; // fits in AWS's 128 KB payload limit
  await publish('dt/x', '['.repeat(depth) + ']'.repeat(depth));
  await publish('dt/x', '{"ok":true}');
  assert.is(await runtime.processAvailable(), 2);
  assert.match(runtime.errors()[0]!.error.failures[0]!.errorMessage, /too deeply nested/);
  assert.equal(readStream('telemetry').map((r) => JSON.parse(Buffer.from(r.data).toString())), [{ ok: true }]);
});

test('a catastrophically backtracking regex ends in errorAction with the reason; other rules and messages are evaluated', async () => {
  store.put(rule({
    name: 'redos',
    sql: "SELECT s FROM 'dt/#' WHERE regexp_matches(s, '^(a+)+$')",
    actions: [{ kinesis: { stream: 'telemetry', partitionKey: 'redos' } }],
    errorAction: { kinesis: { stream: 'telemetry', partitionKey: 'errors' } },
  }));
  store.put(rule({ name: 'plain', sql: "SELECT s FROM 'dt/#'", actions: [{ kinesis: { stream: 'telemetry', partitionKey: 'plain' } }] }));
  const runtime = new RulesRuntime({ db, ingress, store, streams, evaluationBudgetMs: 50 });
  // 27 a's backtrack for seconds (each one more doubles it), so the test also ends without the budget.
  const crafted = await publish('dt/x', JSON.stringify({ s: 'a'.repeat(27) + 'b' }));
  await publish('dt/x', JSON.stringify({ s: 'aaaa' }));
  const started = performance.now();
  assert.is(await runtime.processAvailable(), 2);
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 1000, `batch took ${elapsed.toFixed(0)} ms`);
  const byKey = (k: string) => readStream('telemetry').filter((r) => r.partitionKey === k).map((r) => JSON.parse(Buffer.from(r.data).toString()));
  assert.equal(byKey('plain'), [{ s: 'a'.repeat(27) + 'b' }, { s: 'aaaa' }]);
  assert.equal(byKey('redos'), [{ s: 'aaaa' }]);
  const [error] = byKey('errors') as RuleErrorPayload[];
  assert.is(error!.ruleName, 'redos');
  assert.is(error!.cloudwatchTraceId, crafted.messageId);
  assert.equal(error!.failures.map((f) => [f.failedAction, f.actionType, f.failedResource]), [['RuleEvaluation', 'sql', 'redos']]);
  assert.match(error!.failures[0]!.errorMessage, /exceeded its 50 ms time budget in regexp_matches\(\): the regular expression backtracks catastrophically/);
  assert.is(runtime.stats.evaluationErrors, 1);
});

test('a batch of crafted messages never holds the event loop longer than the budget', async () => {
  store.put(rule({ name: 'redos', sql: "SELECT s FROM 'dt/#' WHERE regexp_matches(s, '^(a+)+$')", actions: [{ kinesis: { stream: 'telemetry', partitionKey: 'k' } }] }));
  const budgetMs = 50;
  const runtime = new RulesRuntime({ db, ingress, store, streams, evaluationBudgetMs: budgetMs });
  // 30 a's backtrack for many seconds each without a budget, so the bound below has room for a loaded machine.
  for (let i = 0; i < 4; i++) await publish('dt/x', JSON.stringify({ s: 'a'.repeat(30) + 'b' }));
  // The longest gap between two turns of the event loop while the batch is evaluated.
  let last = performance.now();
  let longest = 0;
  const tick = setInterval(() => { const now = performance.now(); longest = Math.max(longest, now - last); last = now; }, 1);
  await runtime.processAvailable();
  clearInterval(tick);
  assert.is(runtime.errors().length, 4);
  assert.ok(longest < budgetMs + 450, `event loop blocked for ${longest.toFixed(0)} ms`);
});

test('a job that runs out of time once (a stall of the machine, not of the rule) is tried again and succeeds', async () => {
  store.put(rule({ name: 'r', sql: "SELECT md5(s) AS h FROM 'dt/#'", actions: [{ kinesis: { stream: 'telemetry', partitionKey: 'k' } }] }));
  // The clock jumps by a second once, at its second reading: the deadline check after md5() in the first attempt.
  let readings = 0;
  const clock = () => performance.now() + (++readings === 2 ? 1000 : 0);
  const runtime = new RulesRuntime({ db, ingress, store, streams, evaluationBudgetMs: 50, clock });
  await publish('dt/x', '{"s":"a"}');
  await runtime.processAvailable();
  assert.equal(runtime.errors(), []);
  assert.equal(readStream('telemetry').map((r) => JSON.parse(Buffer.from(r.data).toString())), [{ h: '0cc175b9c0f1b6a831c399e269772661' }]);
});

test('an errorAction template that backtracks on a crafted topic is stopped at the budget and the error kept', async () => {
  store.put(rule({
    name: 'r',
    sql: "SELECT * FROM '#'",
    actions: [{ kinesis: { stream: 'nope', partitionKey: 'k' } }],
    errorAction: { republish: { topic: "errors/${regexp_substr(topic(), '^(a+)+$')}", qos: 1 } },
  }));
  const logged: string[] = [];
  const runtime = new RulesRuntime({ db, ingress, store, streams, evaluationBudgetMs: 50, deliver: async () => {}, log: (l) => logged.push(l) });
  await publish('a'.repeat(27) + 'b', '{}');
  const started = performance.now();
  await runtime.processAvailable();
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
  assert.is(store.undelivered().length, 1);
  assert.ok(logged.some((l) => /errorAction of rule r failed: SQL evaluation exceeded its 50 ms time budget in regexp_substr\(\)/.test(l)), logged.join('\n'));
});

test('an errorAction delivery a crash interrupted is redelivered at start, once', async () => {
  store.put(rule({ name: 'r', sql: "SELECT * FROM 'dt/#'", actions: [{ kinesis: { stream: 'nope', partitionKey: 'k' } }], errorAction: { republish: { topic: 'errors/r', qos: 1 } } }));
  const delivered: string[] = [];
  const deliver = async (topic: string) => { delivered.push(topic); };
  const first = new RulesRuntime({ db, ingress, store, streams, deliver: async () => { throw new Error('broker went away'); } });
  await publish('dt/x', '{}');
  await first.processAvailable();
  assert.is(store.undelivered().length, 1);
  const second = new RulesRuntime({ db, ingress, store, streams, deliver });
  await second.redeliverErrors();
  assert.equal(delivered, ['errors/r']);
  assert.is(store.undelivered().length, 0);
  await second.redeliverErrors();
  assert.equal(delivered, ['errors/r']);
});

test('iotAnalytics actions hand the message with its id to the channel; disabled rules do nothing', async () => {
  store.put(rule({ name: 'lake', sql: "SELECT *, traceid() AS message_id FROM 'dt/#'", actions: [{ iotAnalytics: { channel: 'raw' } }] }));
  store.put(rule({ name: 'off', enabled: false, sql: "SELECT * FROM '#'", actions: [{ kinesis: { stream: 'telemetry', partitionKey: 'k' } }] }));
  const channels = new RecordingChannel();
  const runtime = new RulesRuntime({ db, ingress, store, streams, channels });
  const m = await publish('dt/x', '{"v":1}');
  await runtime.processAvailable();
  assert.is(channels.received.length, 1);
  assert.is(channels.received[0]!.message.messageId, m.messageId);
  assert.equal(JSON.parse(Buffer.from(channels.received[0]!.message.payload).toString()), { v: 1, message_id: m.messageId });
  assert.is(readStream('telemetry').length, 0);
});

test('two rules sending one message to the same channel deliver two messages, with stable ids', async () => {
  store.put(rule({ name: 'a', sql: "SELECT 1 AS a FROM 'dt/#'", actions: [{ iotAnalytics: { channel: 'raw' } }] }));
  store.put(rule({ name: 'b', sql: "SELECT 2 AS b FROM 'dt/#'", actions: [{ iotAnalytics: { channel: 'raw' } }] }));
  const channels = new RecordingChannel();
  const runtime = new RulesRuntime({ db, ingress, store, streams, channels });
  const m = await publish('dt/x', '{}');
  await runtime.processAvailable();
  const ids = channels.received.map((r) => r.message.messageId);
  assert.is(ids.length, 2);
  assert.is(ids[0], m.messageId);
  assert.is.not(ids[1], m.messageId);
  db.prepare('UPDATE rules_checkpoint SET seq = 0').run();
  await runtime.processAvailable();
  assert.equal(channels.received.slice(2).map((r) => r.message.messageId), ids);
});

test('applied rules take effect after reload without a restart', async () => {
  const runtime = new RulesRuntime({ db, ingress, store, streams });
  await publish('dt/x', '{}');
  await runtime.processAvailable();
  assert.is(readStream('telemetry').length, 0);
  store.put(rule({ name: 'late', sql: "SELECT * FROM 'dt/#'", actions: [{ kinesis: { stream: 'telemetry', partitionKey: 'k' } }] }));
  runtime.reload();
  await publish('dt/x', '{}');
  await runtime.processAvailable();
  assert.is(readStream('telemetry').length, 1);
});

test('republish re-enters the ingress log once, even when replayed', async () => {
  store.put(rule({ name: 'echo', sql: "SELECT * FROM 'in/#'", actions: [{ republish: { topic: 'out/${topic(2)}', qos: 1 } }] }));
  const delivered: string[] = [];
  const runtime = new RulesRuntime({ db, ingress, store, streams, deliver: async (topic) => { delivered.push(topic); } });
  await publish('in/a', '{}');
  await runtime.processAvailable();
  db.prepare('UPDATE rules_checkpoint SET seq = 0').run();
  await runtime.processAvailable();
  const topics = ingress.readAfter(0, 100).map((m) => m.topic);
  assert.equal(topics, ['in/a', 'out/a']);
  assert.equal(delivered, ['out/a', 'out/a']); // delivery to subscribers is at least once
});

test('Basic Ingest: only the named rule runs, FROM sees the topic without the prefix; unrouted messages are counted', async () => {
  // https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html
  store.put(rule({ name: 'BuildingManager', sql: "SELECT topic() AS t, accountid() AS account FROM 'Buildings/#'", actions: [{ kinesis: { stream: 'telemetry', partitionKey: '${topic(2)}' } }] }));
  store.put(rule({ name: 'other', sql: "SELECT * FROM 'Buildings/#'", actions: [{ kinesis: { stream: 'telemetry', partitionKey: 'x' } }] }));
  store.put(rule({ name: 'off', enabled: false, sql: "SELECT * FROM 'Buildings/#'", actions: [{ kinesis: { stream: 'telemetry', partitionKey: 'x' } }] }));
  const runtime = new RulesRuntime({ db, ingress, store, streams });
  await publish('$aws/rules/BuildingManager/Buildings/Building5/Floor2/Room201/Lights', '{}');
  await publish('$aws/rules/BuildingManager/Elsewhere/b1', '{}');
  await publish('$aws/rules/nosuchrule/Buildings/b1', '{}');
  await publish('$aws/rules/off/Buildings/b1', '{}');
  await runtime.processAvailable();
  const records = readStream('telemetry');
  assert.equal(records.map((r) => JSON.parse(Buffer.from(r.data).toString())), [{ t: 'Buildings/Building5/Floor2/Room201/Lights', account: '000000000000' }]);
  assert.is(records[0]!.partitionKey, 'Building5');
  assert.equal(runtime.stats.basicIngestUnrouted, { total: 3, byReason: { FromNotMatched: 1, RuleNotFound: 2 } });
});

test.run();
