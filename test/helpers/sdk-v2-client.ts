// Runs AWS IoT Device SDK v2's Mqtt5Client (aws-crt, native) as a device against a broker, in its own process:
// after close() its native event loop still keeps Node alive, so this process exits by itself when done.
// Input (JSON in argv[2]): { host, port, clientId, cert, key, ca }. Output: one JSON line with what it saw.
import { iot, mqtt5 } from 'aws-iot-device-sdk-v2';

const { host, port, clientId, cert, key, ca } = JSON.parse(process.argv[2]!) as Record<string, string>;
const config = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromMemory(host!, cert!, key!)
  .withCertificateAuthority(ca!).withPort(Number(port)).withConnectProperties({ clientId: clientId!, keepAliveIntervalSeconds: 60 }).build();
const client = new mqtt5.Mqtt5Client(config);
const received: { topic: string; payload: string; userProperties?: unknown }[] = [];
client.on('messageReceived', (e) => received.push({ topic: e.message.topicName, payload: Buffer.from(e.message.payload as ArrayBuffer).toString(), userProperties: e.message.userProperties }));
const result: Record<string, unknown> = {};
try {
  await new Promise<void>((resolve, reject) => {
    client.once('connectionSuccess', (e) => { result.connack = e.connack; resolve(); });
    client.once('connectionFailure', (e) => reject(e.error));
    client.start();
  });
  const topic = `dt/demo/${clientId}/sdk`;
  result.suback = (await client.subscribe({ subscriptions: [{ topicFilter: topic, qos: mqtt5.QoS.AtLeastOnce }] })).reasonCodes;
  result.puback = (await client.publish({ topicName: topic, qos: mqtt5.QoS.AtLeastOnce, payload: 'from the sdk', userProperties: [{ name: 'site', value: 'lab' }] }) as mqtt5.PubackPacket).reasonCode;
  for (let i = 0; i < 50 && !received.length; i++) await new Promise((r) => setTimeout(r, 100));
  result.received = received;
  result.denied = (await client.publish({ topicName: 'forbidden/topic', qos: mqtt5.QoS.AtLeastOnce, payload: 'x' }) as mqtt5.PubackPacket).reasonCode;
} catch (e) {
  result.error = String(e);
}
await new Promise<void>((resolve) => { client.once('stopped', () => resolve()); client.stop(); });
client.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
