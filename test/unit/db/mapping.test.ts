import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mapRecord, parseTimestamp, partitionDays, streamName } from '../../../src/db/batch-writer.js';
import { formatDuration, parseDuration } from '../../../src/db/duration.js';
import { topicFilterCondition } from '../../../src/db/queries.js';
import { terminalColumns } from '../../../src/db/recent-view.js';
import { kinesisRecord } from './helpers.js';

const RECEIVED = new Date('2026-03-01T12:00:00.000Z');
const ARRIVAL = Date.parse('2026-03-01T11:59:59.500Z');

test('a full record maps every column from the payload and the event', () => {
  const payload = { device_id: 'sensor-7', message_id: 'm-1', ts: 1772366400123, topic: 'dt/acme/sensor-7/telemetry', temperature: 21.5 };
  const rec = kinesisRecord(payload, { partitionKey: 'ignored', sequenceNumber: '4959', arrival: ARRIVAL, shard: 'shardId-000000000003', stream: 'iot-telemetry' });
  const mapped = mapRecord(rec, RECEIVED);
  assert.equal(mapped, {
    ok: true,
    row: {
      message_id: 'm-1',
      device_id: 'sensor-7',
      ts: new Date(1772366400123),
      topic: 'dt/acme/sensor-7/telemetry',
      payload,
      stream: 'iot-telemetry',
      shard_id: 'shardId-000000000003',
      sequence_number: '4959',
      received_at: RECEIVED,
    },
  });
});

test('missing fields fall back: partition key, deterministic id, arrival time, null topic', () => {
  const rec = kinesisRecord({ temperature: 3 }, { partitionKey: 'thing-9', sequenceNumber: '77', arrival: ARRIVAL, stream: 's1' });
  const mapped = mapRecord(rec, RECEIVED);
  assert.ok(mapped.ok);
  if (!mapped.ok) return;
  assert.is(mapped.row.device_id, 'thing-9');
  assert.is(mapped.row.message_id, 'kinesis:s1:shardId-000000000000:77');
  assert.equal(mapped.row.ts, new Date(ARRIVAL));
  assert.is(mapped.row.topic, null);
  // Same record, same id: a retried batch maps to the same key.
  const again = mapRecord(rec, new Date());
  assert.ok(again.ok && again.row.message_id === mapped.row.message_id);
});

test('timestamps: epoch ms, epoch seconds, numeric strings, ISO; garbage falls back to arrival', () => {
  assert.is(parseTimestamp(1772366400123), 1772366400123);
  assert.is(parseTimestamp(1772366400), 1772366400000);
  assert.is(parseTimestamp(1772366400.5), 1772366400500);
  assert.is(parseTimestamp('1772366400123'), 1772366400123);
  assert.is(parseTimestamp('2026-03-01T12:00:00.250Z'), Date.parse('2026-03-01T12:00:00.250Z'));
  assert.is(parseTimestamp('2026-03-01T13:00:00+01:00'), Date.parse('2026-03-01T12:00:00Z'));
  for (const bad of ['yesterday', '', -5, NaN, Infinity, 1e300, null, true, {}, []]) assert.is(parseTimestamp(bad), undefined, String(bad));
  const mapped = mapRecord(kinesisRecord({ ts: 'not a time' }, { arrival: ARRIVAL }), RECEIVED);
  assert.ok(mapped.ok && mapped.row.ts.getTime() === ARRIVAL);
});

test('numeric ids become text; empty ones fall back', () => {
  const m = mapRecord(kinesisRecord({ device_id: 42, message_id: 7 }), RECEIVED);
  assert.ok(m.ok && m.row.device_id === '42' && m.row.message_id === '7');
  const e = mapRecord(kinesisRecord({ device_id: '', message_id: '' }, { partitionKey: 'pk', sequenceNumber: '5' }), RECEIVED);
  assert.ok(e.ok && e.row.device_id === 'pk' && e.row.message_id === 'kinesis:telemetry:shardId-000000000000:5');
});

test('poison: not JSON, not an object, not UTF-8, text jsonb rejects', () => {
  const reason = (raw: Buffer) => {
    const m = mapRecord(kinesisRecord(null, { raw, sequenceNumber: '9' }), RECEIVED);
    assert.not.ok(m.ok);
    if (m.ok) return '';
    assert.equal(m.poison.raw_data, raw);
    assert.is(m.poison.sequence_number, '9');
    assert.is(m.poison.shard_id, 'shardId-000000000000');
    assert.is(m.poison.stream, 'telemetry');
    return m.poison.reason;
  };
  assert.match(reason(Buffer.from('{"a":')), /^not JSON: /);
  assert.is(reason(Buffer.from('[1,2]')), 'not a JSON object (got an array)');
  assert.is(reason(Buffer.from('42')), 'not a JSON object (got number)');
  assert.is(reason(Buffer.from('null')), 'not a JSON object (got null)');
  assert.is(reason(Buffer.from('"text"')), 'not a JSON object (got string)');
  assert.is(reason(Buffer.from([0x7b, 0xff, 0x7d])), 'not UTF-8 text');
  assert.is(reason(Buffer.from('{"a":"x\\u0000y"}')), 'jsonb cannot store a NUL character (\\u0000)');
  assert.is(reason(Buffer.from('{"a":["\\ud800"]}')), 'jsonb cannot store an unpaired UTF-16 surrogate');
  // A backslash followed by "u0000" is ordinary text, and a surrogate pair is fine.
  assert.ok(mapRecord(kinesisRecord({ a: '\\u0000', b: '😀' }), RECEIVED).ok);
});

test('stream name from the ARN', () => {
  assert.is(streamName('arn:aws:kinesis:eu-west-1:123456789012:stream/my-stream'), 'my-stream');
  assert.is(streamName('local-stream'), 'local-stream');
});

test('partitionDays: distinct UTC days in the window, sorted', () => {
  const now = new Date('2026-03-10T10:00:00Z');
  const rows = ['2026-03-10T23:59:59.999Z', '2026-03-09T00:00:00Z', '2026-03-10T00:00:00Z', '2026-03-12T01:00:00Z', '2026-03-13T01:00:00Z', '1970-01-20T00:00:00Z'].map((t) => ({ ts: new Date(t) }));
  assert.equal(partitionDays(rows, { now }), ['2026-03-09', '2026-03-10', '2026-03-12']);
  assert.equal(partitionDays([], { now }), []);
});

test('MQTT topic filters become exact or anchored, escaped regexes', () => {
  assert.equal(topicFilterCondition('dt/acme/s1/telemetry'), { op: '=', value: 'dt/acme/s1/telemetry' });
  assert.equal(topicFilterCondition('#'), undefined);
  assert.equal(topicFilterCondition('dt/+/s1/#'), { op: '~', value: '^dt/[^/]*/s1(/.*)?$' });
  assert.equal(topicFilterCondition('a.b/+'), { op: '~', value: '^a\\.b/[^/]*$' });
  assert.equal(topicFilterCondition("x'(|)*/#"), { op: '~', value: "^x'\\(\\|\\)\\*(/.*)?$" });
  for (const bad of ['a/#/b', 'a#', 'a/b+', '']) assert.throws(() => topicFilterCondition(bad), /Invalid topic filter/);
});

test('durations', () => {
  assert.is(parseDuration('24h'), 86_400_000);
  assert.is(parseDuration('90s'), 90_000);
  assert.is(parseDuration('250ms'), 250);
  assert.is(parseDuration('7d'), 604_800_000);
  assert.throws(() => parseDuration('1 week'), /Invalid duration "1 week"/);
  assert.throws(() => parseDuration('0s'), /greater than zero/);
  assert.is(formatDuration(90_000), '1m30s');
  assert.is(formatDuration(86_400_000), '1d');
});

test('terminal columns: payload fields when they fit, else one payload column', () => {
  const row = (payload: Record<string, unknown>, topic: string | null = 'dt/a') => ({ message_id: 'm', device_id: 'd', ts: new Date(0), topic, payload, stream: null, shard_id: null, sequence_number: null, received_at: new Date(0) });
  const headers = (rows: ReturnType<typeof row>[], width: number) => terminalColumns(rows, width).map((c) => c.header);
  assert.equal(headers([row({ device_id: 'd', temp: 1, hum: 2 }), row({ temp: 3, battery: 0.5 })], 120), ['ts', 'topic', 'temp', 'hum', 'battery']);
  assert.equal(headers([row({ temp: 1, nested: { a: 1 } })], 120), ['ts', 'topic', 'payload']);
  assert.equal(headers([row({ long: 'x'.repeat(200) }, null)], 120), ['ts', 'payload']);
});

test.run();
