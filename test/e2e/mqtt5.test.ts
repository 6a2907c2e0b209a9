/**
 * MQTT 5 devices on the local broker, as AWS IoT Core serves them (developerguide/mqtt.html: "MQTT 5 supported
 * features", "MQTT 5 properties", "MQTT reason codes"): the same mTLS and policy checks as 3.1.1, reason codes
 * where AWS sends them, properties forwarded to subscribers and readable in rules, shared subscriptions, message
 * and session expiry, topic aliases. Real TLS clients (mqtt.js, mosquitto_pub) against the real broker.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { MqttClient, IClientOptions, IConnackPacket, IDisconnectPacket, IPublishPacket } from 'mqtt';
import { makeProject, rejects, waitFor, type Project } from '../helpers/project.js';
import { registerTestDevice } from '../helpers/devices.js';
import { LocalPlatform } from '../../src/targets/local/platform.js';
import type { DeviceCredentials } from '../../src/services/publish.js';

const ARN = 'arn:aws:iot:local:000000000000';
const THING = '${iot:Connection.Thing.ThingName}';
const POLICY = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/${THING}` },
    { Effect: 'Allow', Action: 'iot:Publish', Resource: [`${ARN}:topic/dt/demo/*`] },
    // A shared subscription is authorised on topicfilter/$share/<group>/<filter>.
    { Effect: 'Allow', Action: 'iot:Subscribe', Resource: [`${ARN}:topicfilter/dt/*`, `${ARN}:topicfilter/cmd/*`, `${ARN}:topicfilter/$share/workers/*`] },
    { Effect: 'Allow', Action: 'iot:Receive', Resource: [`${ARN}:topic/dt/*`, `${ARN}:topic/cmd/*`] },
  ],
};

const SPEC = `project: demo
target: local
local: { mqttPort: 0 }
devices:
  policy:
    name: mqtt5
    document: ${JSON.stringify(POLICY)}
rules:
  - name: props
    sql: >-
      SELECT get_mqtt_property('content_type') AS content_type, get_mqtt_property('format_indicator') AS format,
      get_mqtt_property('response_topic') AS response_topic, get_mqtt_property('correlation_data') AS correlation,
      get_user_properties('site') AS site FROM 'dt/demo/+/props'
    actions:
      - republish: { topic: 'cmd/demo/\${topic(3)}/props', qos: 1 }
`;

let project: Project;
let platform: LocalPlatform;
const creds: Record<string, DeviceCredentials> = {};

/** A v5 session as `thing`; a CONNECT throttled by AWS's 1-per-second-per-client-id quota (0x88 in MQTT 5) is retried. */
async function connect(thing: string, options: Partial<IClientOptions> = {}): Promise<MqttClient & { connack: IConnackPacket }> {
  for (;;) {
    try {
      return await connectOnce(thing, options);
    } catch (e) {
      if ((e as { code?: number }).code !== 0x88) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function connectOnce(thing: string, options: Partial<IClientOptions>): Promise<MqttClient & { connack: IConnackPacket }> {
  const { default: mqtt } = await import('mqtt');
  const c = creds[thing]!;
  const client = mqtt.connect({
    protocol: 'mqtts', host: '127.0.0.1', port: platform.mqttPort, key: c.key, cert: c.cert, ca: c.ca,
    clientId: thing, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, rejectUnauthorized: true, ...options,
  });
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', (e) => { client.end(true); reject(e); });
    client.once('close', () => reject(new Error('closed during the handshake')));
  });
  return Object.assign(client, { connack });
}

const disconnected = (client: MqttClient) => new Promise<IDisconnectPacket>((resolve, reject) => {
  client.once('disconnect', resolve);
  setTimeout(() => reject(new Error('no DISCONNECT from the broker')), 5000).unref();
});
const messages = (client: MqttClient) => {
  const out: IPublishPacket[] = [];
  client.on('message', (_t, _p, packet) => out.push(packet));
  return out;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.before(async () => {
  project = makeProject(SPEC);
  platform = new LocalPlatform({ stateDir: project.stateDir, spec: project.spec, mqttPort: 0 });
  await platform.start();
  for (const thing of ['sensor-1', 'sensor-2', 'sensor-3']) creds[thing] = await registerTestDevice(project, thing);
  platform.rulesStore.put(project.spec.rules[0]!);
  platform.rules!.reload();
});

test.after(async () => {
  await platform.stop();
  project.cleanup();
});

test('an MQTT 5 CONNECT gets an MQTT 5 CONNACK with what AWS IoT Core supports', async () => {
  const client = await connect('sensor-1', { properties: { sessionExpiryInterval: 86_400 } });
  assert.is(client.connack.reasonCode, 0);
  const p = client.connack.properties!;
  assert.is(p.maximumQoS, 1);
  assert.is(p.topicAliasMaximum, 8);
  assert.is(p.sharedSubscriptionAvailable, undefined); // absent: available
  // A day asked for, AWS's hour granted, and said so.
  assert.is(p.sessionExpiryInterval, 3600);
  await client.endAsync();
});

test('publish QoS 0 and 1 with properties: a v5 subscriber gets them, a 3.1.1 subscriber the message, a rule reads them', async () => {
  const sub5 = await connect('sensor-2');
  const sub3 = await connect('sensor-3', { protocolVersion: 4 });
  const got5 = messages(sub5);
  const got3 = messages(sub3);
  await sub5.subscribeAsync(['dt/demo/sensor-1/#', 'cmd/demo/sensor-1/#'], { qos: 1 });
  await sub3.subscribeAsync('dt/demo/sensor-1/#', { qos: 1 });
  const pub = await connect('sensor-1');
  const properties = {
    contentType: 'application/json', payloadFormatIndicator: true, responseTopic: 'cmd/demo/sensor-1/reply',
    correlationData: Buffer.from('req-42'), userProperties: { site: ['lab', 'north'], build: '7' },
  };
  await pub.publishAsync('dt/demo/sensor-1/props', '{"t": 1}', { qos: 1, properties });
  await waitFor(() => got5.length >= 2 && got3.length >= 1, 5000, 'the delivery and the rule republish');
  // After the republish: aedes drops a message of its own that a later one overtook (its per-broker dedupe).
  await pub.publishAsync('dt/demo/sensor-1/plain', 'zero', { qos: 0 });
  await waitFor(() => got5.length >= 3 && got3.length >= 2, 5000, 'the QoS 0 message');

  const forwarded = got5.find((m) => m.topic === 'dt/demo/sensor-1/props')!;
  assert.is(forwarded.qos, 1);
  assert.is(forwarded.properties?.contentType, 'application/json');
  assert.is(forwarded.properties?.payloadFormatIndicator, true);
  assert.is(forwarded.properties?.responseTopic, 'cmd/demo/sensor-1/reply');
  assert.is(Buffer.from(forwarded.properties!.correlationData!).toString(), 'req-42');
  assert.equal({ ...forwarded.properties?.userProperties }, { site: ['lab', 'north'], build: '7' });
  assert.equal(got3.map((m) => m.topic).sort(), ['dt/demo/sensor-1/plain', 'dt/demo/sensor-1/props']);

  const republished = got5.find((m) => m.topic === 'cmd/demo/sensor-1/props')!;
  assert.equal(JSON.parse(republished.payload.toString()), {
    content_type: 'application/json', format: 'UTF8_DATA', response_topic: 'cmd/demo/sensor-1/reply',
    correlation: Buffer.from('req-42').toString('base64'), site: ['lab', 'north'],
  });
  await Promise.all([sub5.endAsync(), sub3.endAsync(), pub.endAsync()]);
});

test('policy denials carry 0x87: CONNACK, PUBACK (the connection stays) and SUBACK', async () => {
  // sensor-1's certificate with another client id.
  const refused = await rejects(connectOnce('sensor-1', { clientId: 'someone-else' }));
  assert.is((refused as { code?: number }).code, 0x87);
  const client = await connect('sensor-1');
  const denied = await rejects(client.publishAsync('forbidden/topic', 'x', { qos: 1 }));
  assert.is((denied as { code?: number }).code, 0x87);
  assert.ok(client.connected, 'an MQTT 5 client keeps its connection after a denied publish');
  await client.publishAsync('dt/demo/sensor-1/after', 'still here', { qos: 1 });
  // mqtt.js reports a SUBACK with a failure reason code as an error with its name.
  await rejects(client.subscribeAsync('secret/#', { qos: 1 }), /Not authorized/);
  assert.equal((await client.subscribeAsync('dt/demo/#', { qos: 1 })).map((g) => g.qos), [1]);
  assert.ok((platform.status().subscriptionsDenied.byReason.policyDenied ?? 0) >= 1);
  await client.endAsync();
  assert.ok((platform.status().publishesDenied.byReason.policyDenied ?? 0) >= 1);
});

test('a payload over 128 KB, and user properties over 8 KB, end the connection with DISCONNECT 0x95', async () => {
  for (const publish of [
    (c: MqttClient) => c.publish('dt/demo/sensor-1/big', Buffer.alloc(128 * 1024 + 1), { qos: 1 }),
    (c: MqttClient) => c.publish('dt/demo/sensor-1/huge', Buffer.alloc(300 * 1024), { qos: 1 }), // refused from its fixed header
    (c: MqttClient) => c.publish('dt/demo/sensor-1/props', 'x', { qos: 1, properties: { userProperties: { big: 'v'.repeat(8 * 1024) } } }),
  ]) {
    const client = await connect('sensor-1');
    const gone = disconnected(client);
    publish(client);
    assert.is((await gone).reasonCode, 0x95);
    client.end(true);
  }
});

test('QoS 2: a publish ends with DISCONNECT 0x9B, a subscription is granted QoS 1', async () => {
  const client = await connect('sensor-1');
  const granted = await client.subscribeAsync('dt/demo/sensor-1/q2', { qos: 2 });
  assert.is(granted[0]!.qos, 1);
  const gone = disconnected(client);
  client.publish('dt/demo/sensor-1/q2', 'x', { qos: 2 });
  assert.is((await gone).reasonCode, 0x9b);
  client.end(true);
});

test('a second connection with the same client id takes the session over: DISCONNECT 0x8E to the first', async () => {
  const first = await connect('sensor-1');
  const gone = disconnected(first);
  const second = await connect('sensor-1');
  assert.is((await gone).reasonCode, 0x8e);
  first.end(true);
  await second.endAsync();
});

test('a shared subscription splits the messages across its members, each message once', async () => {
  const a = await connect('sensor-2');
  const b = await connect('sensor-3');
  const gotA = messages(a);
  const gotB = messages(b);
  for (const c of [a, b]) assert.equal((await c.subscribeAsync('$share/workers/dt/demo/+/jobs', { qos: 1 })).map((g) => g.qos), [1]);
  // A group the policy does not allow.
  await rejects(a.subscribeAsync('$share/others/dt/demo/+/jobs', { qos: 1 }), /Not authorized/);
  const pub = await connect('sensor-1');
  for (let i = 0; i < 10; i++) await pub.publishAsync('dt/demo/sensor-1/jobs', String(i), { qos: 1 });
  await waitFor(() => gotA.length + gotB.length >= 10, 5000, 'ten deliveries');
  await sleep(200);
  const all = [...gotA, ...gotB].map((m) => Number(m.payload.toString())).sort((x, y) => x - y);
  assert.equal(all, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.ok(gotA.length > 0 && gotB.length > 0, `split ${gotA.length}/${gotB.length}`);
  // Unsubscribed, b gets nothing more: a takes every message.
  await b.unsubscribeAsync('$share/workers/dt/demo/+/jobs');
  for (let i = 10; i < 14; i++) await pub.publishAsync('dt/demo/sensor-1/jobs', String(i), { qos: 1 });
  await waitFor(() => gotA.some((m) => m.payload.toString() === '13'), 5000, 'the last message at a');
  assert.ok(gotB.every((m) => Number(m.payload.toString()) < 10));
  await Promise.all([a.endAsync(), b.endAsync(), pub.endAsync()]);
});

test('message expiry: a message queued for an offline session is dropped once expired', async () => {
  const session = { clean: false, properties: { sessionExpiryInterval: 300 } };
  const offline = await connect('sensor-2', session);
  await offline.subscribeAsync('dt/demo/sensor-1/expiry', { qos: 1 });
  await offline.endAsync();
  const pub = await connect('sensor-1');
  await pub.publishAsync('dt/demo/sensor-1/expiry', 'short-lived', { qos: 1, properties: { messageExpiryInterval: 1 } });
  await pub.publishAsync('dt/demo/sensor-1/expiry', 'long-lived', { qos: 1, properties: { messageExpiryInterval: 600 } });
  await pub.endAsync();
  await sleep(1500);
  const back = await connect('sensor-2', session);
  const got = messages(back);
  await waitFor(() => got.length >= 1, 5000, 'the queued message');
  await sleep(200);
  assert.equal(got.map((m) => m.payload.toString()), ['long-lived']);
  assert.ok(got[0]!.properties!.messageExpiryInterval! <= 600);
  await back.endAsync();
});

test('topic aliases: up to 8 (CONNACK says so), an alias stands for its topic', async () => {
  const sub = await connect('sensor-2');
  const got = messages(sub);
  await sub.subscribeAsync('dt/demo/sensor-1/alias', { qos: 1 });
  const pub = await connect('sensor-1');
  await pub.publishAsync('dt/demo/sensor-1/alias', 'set', { qos: 1, properties: { topicAlias: 8 } });
  await pub.publishAsync('', 'used', { qos: 1, properties: { topicAlias: 8 } });
  await waitFor(() => got.length >= 2, 5000, 'both messages');
  assert.equal(got.map((m) => [m.topic, m.payload.toString()]), [['dt/demo/sensor-1/alias', 'set'], ['dt/demo/sensor-1/alias', 'used']]);
  await Promise.all([pub.endAsync(), sub.endAsync()]);
});

test('mosquitto_pub -V mqttv5 connects with the device certificate and publishes with a user property', async () => {
  const which = await new Promise<boolean>((resolve) => execFile('sh', ['-c', 'command -v mosquitto_pub'], (e) => resolve(!e)));
  if (!which) {
    console.log('  (mosquitto_pub is not installed: skipped)');
    return;
  }
  const dir = join(project.dir, 'devices', 'sensor-1');
  const sub = await connect('sensor-2');
  const got = messages(sub);
  await sub.subscribeAsync('dt/demo/sensor-1/mosquitto', { qos: 1 });
  const run = (topic: string) => new Promise<{ code: number; stderr: string }>((resolve) => execFile('mosquitto_pub', [
    '-V', 'mqttv5', '-h', '127.0.0.1', '-p', String(platform.mqttPort), '--cafile', join(dir, 'ca.pem'), '--cert', join(dir, 'cert.pem'), '--key', join(dir, 'private.key'),
    '-i', 'sensor-1', '-q', '1', '-t', topic, '-m', 'from mosquitto', '-D', 'publish', 'user-property', 'site', 'lab',
  ], { timeout: 10_000 }, (e, _out, stderr) => resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stderr })));
  await waitFor(async () => (await run('dt/demo/sensor-1/mosquitto')).code === 0, 5000, 'mosquitto_pub to succeed (1 CONNECT per second per client id)');
  await waitFor(() => got.length >= 1, 5000, 'the message');
  assert.is(got[0]!.payload.toString(), 'from mosquitto');
  assert.equal({ ...got[0]!.properties?.userProperties }, { site: 'lab' });
  // A denied publish: PUBACK 0x87, which mosquitto_pub reports.
  await sleep(1000);
  const denied = await run('forbidden/topic');
  assert.match(denied.stderr, /not authori[sz]ed/i);
  await sub.endAsync();
});

test('the AWS IoT Device SDK v2 Mqtt5Client connects, subscribes, publishes with user properties, gets PUBACK 0x87', async () => {
  const c = creds['sensor-1']!;
  await sleep(1000); // AWS: 1 CONNECT per second per client id; the tests above connected as sensor-1 a moment ago
  const input = JSON.stringify({ host: 'localhost', port: platform.mqttPort, clientId: 'sensor-1', cert: c.cert, key: c.key, ca: c.ca });
  const out = await new Promise<string>((resolve, reject) => execFile(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../helpers/sdk-v2-client.ts'), input], { timeout: 15_000 }, (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout))));
  const result = JSON.parse(out) as { error?: string; connack?: { reasonCode: number; maximumQos?: number }; suback: number[]; puback: number; denied: number; received: { payload: string; userProperties: unknown }[] };
  assert.is(result.error, undefined);
  assert.is(result.connack!.reasonCode, 0);
  assert.equal(result.suback, [1]); // granted QoS 1
  assert.is(result.puback, 0);
  assert.equal(result.received.map((m) => [m.payload, m.userProperties]), [['from the sdk', [{ name: 'site', value: 'lab' }]]]);
  assert.is(result.denied, 0x87);
});

test.run();
