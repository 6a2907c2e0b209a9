/**
 * The local broker against AWS IoT Core's documented behaviour:
 * - iot:ConnectAttributes (https://docs.aws.amazon.com/iot/latest/developerguide/connect-policy.html):
 *   a policy that disallows PersistentConnect refuses a CONNECT with clean=false, counted on its own.
 * - Basic Ingest (https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html): a publish
 *   to $aws/rules/<rule>/<topic> reaches that rule only, with topic() seeing <topic>; nobody can subscribe
 *   to it or receive it; the policy authorises the $aws/rules/... topic.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import type { MqttClient, IClientOptions } from 'mqtt';
import { makeProject, rejects, waitFor, type Project } from '../helpers/project.js';
import { LocalPlatform } from '../../src/targets/local/platform.js';
import { openTarget } from '../../src/targets/index.js';
import { Context } from '../../src/context.js';
import { ensureDevicePolicy, registerDevice } from '../../src/services/devices.js';
import { readCredentials, type DeviceCredentials } from '../../src/services/publish.js';

const ARN = 'arn:aws:iot:local:000000000000';
const THING = '${iot:Connection.Thing.ThingName}';
const POLICY = {
  Version: '2012-10-17',
  Statement: [
    // "The following policy disallows PersistentConnect, other features are allowed" (connect-policy.html).
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `${ARN}:client/${THING}`, Condition: { 'ForAllValues:StringNotEquals': { 'iot:ConnectAttributes': ['PersistentConnect'] } } },
    // Basic Ingest: "publish permissions on $aws/rules/rule_name/*" (iot-basic-ingest.html).
    { Effect: 'Allow', Action: 'iot:Publish', Resource: [`${ARN}:topic/dt/demo/${THING}/telemetry`, `${ARN}:topic/$aws/rules/echo/*`] },
    { Effect: 'Allow', Action: ['iot:Subscribe', 'iot:Receive'], Resource: [`${ARN}:topicfilter/*`, `${ARN}:topic/*`] },
  ],
};

const SPEC = `project: demo
target: local
local: { mqttPort: 0 }
devices:
  policy:
    name: fidelity
    document: ${JSON.stringify(POLICY)}
rules:
  - name: echo
    sql: SELECT *, topic() AS t, topic(3) AS thing, accountid() AS account FROM 'dt/+/+/telemetry'
    actions:
      - republish: { topic: 'cmd/demo/\${topic(3)}/echo', qos: 1 }
`;

let project: Project;
let platform: LocalPlatform;
let creds: DeviceCredentials;

/** Connects as sensor-1; a CONNECT throttled by AWS's 1-per-second-per-client-id quota (CONNACK 3) is retried. */
async function connect(options: Partial<IClientOptions> = {}): Promise<MqttClient> {
  for (;;) {
    try {
      return await connectOnce(options);
    } catch (e) {
      if ((e as { code?: number }).code !== 3) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function connectOnce(options: Partial<IClientOptions>): Promise<MqttClient> {
  const { default: mqtt } = await import('mqtt');
  const client = mqtt.connect({
    protocol: 'mqtts', host: '127.0.0.1', port: platform.mqttPort, key: creds.key, cert: creds.cert, ca: creds.ca,
    clientId: creds.thingName, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, rejectUnauthorized: true, ...options,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', (e) => { client.end(true); reject(e); });
    client.once('close', () => reject(new Error('closed during the handshake')));
  });
  return client;
}

test.before(async () => {
  project = makeProject(SPEC);
  platform = new LocalPlatform({ stateDir: project.stateDir, spec: project.spec, mqttPort: 0 });
  await platform.start();
  const ctx = new Context({ specFile: project.specFile, projectDir: project.dir, stateDir: project.stateDir });
  const target = await openTarget(ctx);
  try {
    await ensureDevicePolicy(target.devices, project.spec);
    await registerDevice(target.devices, project.spec, { thingName: 'sensor-1' }, join(project.dir, 'devices'));
  } finally {
    await target.close();
  }
  platform.rulesStore.put(project.spec.rules[0]!);
  platform.rules!.reload();
  creds = readCredentials(join(project.dir, 'devices'), 'sensor-1');
});

test.after(async () => {
  await platform.stop();
  project.cleanup();
});

test('a persistent session is refused by a policy that disallows PersistentConnect, under its own reason', async () => {
  await rejects(connect({ clean: false }));
  await waitFor(() => (platform.status().connectionsRefused.byReason.connectAttributesDenied ?? 0) === 1, 5000, 'refusal counted');
  assert.is(platform.status().connectionsRefused.byReason.policyDenied, undefined);
});

test('a clean session, with or without a will, is allowed by the same policy', async () => {
  const plain = await connect();
  await plain.endAsync();
  const withWill = await connect({ will: { topic: 'dt/demo/sensor-1/telemetry', payload: Buffer.from('{"gone":true}'), qos: 0, retain: false } });
  await withWill.endAsync();
  assert.is(platform.status().connectionsRefused.byReason.connectAttributesDenied, 1);
});

test('Basic Ingest reaches the named rule without the prefix, and no subscriber receives it', async () => {
  const client = await connect();
  const received: Array<{ topic: string; payload: unknown }> = [];
  client.on('message', (topic, payload) => received.push({ topic, payload: JSON.parse(payload.toString()) }));
  // Devices cannot subscribe to Basic Ingest topics: SUBACK 0x80.
  await rejects(client.subscribeAsync('$aws/rules/echo/#', { qos: 1 }), /Subscribe error/);
  assert.is(platform.status().subscriptionsDenied.byReason.reservedTopic, 1);
  await client.subscribeAsync(['#', 'dt/#', 'cmd/demo/sensor-1/#'], { qos: 1 });

  await client.publishAsync('$aws/rules/echo/dt/demo/sensor-1/telemetry', JSON.stringify({ temperature: 30 }), { qos: 1 });
  await waitFor(() => received.some((m) => m.topic === 'cmd/demo/sensor-1/echo'), 5000, 'the rule to republish');
  await new Promise((r) => setTimeout(r, 200));
  // Only the rule's republish was delivered (once per matching subscription), never the Basic Ingest message.
  assert.ok(received.every((m) => m.topic === 'cmd/demo/sensor-1/echo'), JSON.stringify(received));
  assert.equal(received[0]!.payload, { temperature: 30, t: 'dt/demo/sensor-1/telemetry', thing: 'sensor-1', account: '000000000000' });
  assert.is(platform.status().publishesAccepted.byReason.basicIngestQos1, 1);
  await client.endAsync();
});

test('Basic Ingest: a topic the FROM filter does not take, and an unknown rule, are counted, not run', async () => {
  const client = await connect();
  const matchedBefore = platform.status().rules!.rulesMatched;
  await client.publishAsync('$aws/rules/echo/other/topic/x', '{}', { qos: 1 });
  await client.publishAsync('$aws/rules/echo/dt/demo/sensor-1/telemetry', '{}', { qos: 1 });
  await waitFor(() => platform.status().rules!.rulesMatched === matchedBefore + 1, 5000, 'the matching message');
  const unrouted = (platform.status().rules as unknown as { basicIngestUnrouted: { byReason: Record<string, number> } }).basicIngestUnrouted;
  assert.equal(unrouted.byReason, { FromNotMatched: 1 });
  // The policy allows $aws/rules/echo/* only: publishing for another rule is denied and disconnects.
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  client.publish('$aws/rules/nosuchrule/dt/demo/sensor-1/telemetry', '{}', { qos: 1 });
  await closed;
  client.end(true);
  assert.ok((platform.status().publishesDenied.byReason.policyDenied ?? 0) >= 1);
});

test('other $ topics stay reserved', async () => {
  const client = await connect();
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  client.publish('$aws/things/sensor-1/shadow/update', '{}', { qos: 1 });
  await closed;
  client.end(true);
  assert.ok((platform.status().publishesDenied.byReason.reservedTopic ?? 0) >= 1);
});

test.run();
