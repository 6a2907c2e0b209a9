// The pure parts of MQTT 5 support: `publish --user-property` parsing and AWS's 8 KB, the properties the broker
// keeps for rules, and their round trip through the ingress log (including a log written before they were kept).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publishProperties } from '../../../src/services/publish.js';
import { userPropertiesBytes, MAX_USER_PROPERTIES_BYTES } from '../../../src/iot/mqtt5.js';
import { mqttProperties } from '../../../src/targets/local/broker.js';
import { IngressLog } from '../../../src/targets/local/ingress.js';
import { UserError } from '../../../src/ui/errors.js';

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    assert.instance(e, UserError);
    return (e as UserError).code;
  }
  throw new Error('expected a UserError');
};

test('publishProperties: k=v pairs, a repeated key keeps both values, = inside a value is kept', () => {
  assert.equal(publishProperties({ userProperties: ['site=lab', 'site=north', 'q=a=b'], contentType: 'application/json', responseTopic: 'cmd/x/reply', correlationData: 'req-1' }), {
    userProperties: { site: ['lab', 'north'], q: 'a=b' }, contentType: 'application/json', responseTopic: 'cmd/x/reply', correlationData: Buffer.from('req-1'),
  });
  assert.is(publishProperties({}), undefined);
  assert.equal(publishProperties({ userProperties: ['empty='] }), { userProperties: { empty: '' } });
});

test('publishProperties: bad input is a UserError with its code', () => {
  assert.is(code(() => publishProperties({ userProperties: ['novalue'] })), 'INVALID_USER_PROPERTY');
  assert.is(code(() => publishProperties({ userProperties: ['=v'] })), 'INVALID_USER_PROPERTY');
  assert.is(code(() => publishProperties({ responseTopic: 'cmd/+/reply' })), 'INVALID_RESPONSE_TOPIC');
  assert.is(code(() => publishProperties({ userProperties: [`k=${'v'.repeat(MAX_USER_PROPERTIES_BYTES)}`] })), 'USER_PROPERTIES_TOO_LARGE');
  // Exactly at the limit is allowed.
  assert.ok(publishProperties({ userProperties: [`k=${'v'.repeat(MAX_USER_PROPERTIES_BYTES - 1)}`] }));
});

test('userPropertiesBytes counts keys and every value in UTF-8 bytes', () => {
  assert.is(userPropertiesBytes({ a: 'bc', é: ['x', 'yz'] }), 3 + (2 + 1) + (2 + 2));
});

test('mqttProperties keeps what rules read, and nothing for a publish without them', () => {
  assert.is(mqttProperties({}), undefined);
  assert.is(mqttProperties({ properties: { topicAlias: 3, messageExpiryInterval: 10 } }), undefined);
  assert.equal(mqttProperties({ properties: { contentType: 'text/plain', payloadFormatIndicator: true, correlationData: Buffer.from('c'), userProperties: { a: 'b' }, topicAlias: 1 } }), {
    contentType: 'text/plain', payloadFormatIndicator: 1, correlationData: Buffer.from('c'), userProperties: { a: 'b' },
  });
});

test('the ingress log keeps MQTT 5 properties, and adds their column to a log written before', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-mqtt5-'));
  try {
    // A log as an earlier version wrote it, with one message.
    const old = new Database(join(dir, 'ingress.db'));
    old.exec(`CREATE TABLE ingress_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, received_at INTEGER NOT NULL,
      topic TEXT NOT NULL, client_id TEXT NOT NULL, principal TEXT NOT NULL, qos INTEGER NOT NULL, payload BLOB NOT NULL);
      INSERT INTO ingress_log (message_id, received_at, topic, client_id, principal, qos, payload) VALUES ('m0', 1, 't', 'c', 'p', 1, x'7b7d');`);
    old.close();
    const log = new IngressLog(dir);
    const properties = { contentType: 'application/json', payloadFormatIndicator: 1 as const, responseTopic: 'r/t', correlationData: Buffer.from([0, 255, 1]), userProperties: { site: ['lab', 'north'] } };
    await log.append({ topic: 't', clientId: 'c', principal: 'p', qos: 1, payload: Buffer.from('{}'), properties });
    await log.append({ topic: 't', clientId: 'c', principal: 'p', qos: 0, payload: Buffer.from('{}') });
    const [before, v5, v3] = log.readAfter(0, 10);
    assert.is(before!.properties, undefined);
    assert.equal(v5!.properties, properties);
    assert.is(v3!.properties, undefined);
    log.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
