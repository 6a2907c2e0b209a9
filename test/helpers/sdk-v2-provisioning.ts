// Runs AWS IoT Device SDK v2's own fleet provisioning client (iotidentity.IotIdentityClientv2 over its Mqtt5Client,
// aws-crt, native) as a factory device with the claim certificate, in its own process (its native event loop keeps
// Node alive after close, so this process exits by itself). Input (JSON in argv[2]): { host, port, clientId, cert,
// key, ca, template, csr, serial }. Output: one JSON line with each call's answer or error.
import { iot, iotidentity, mqtt5 } from 'aws-iot-device-sdk-v2';

const input = JSON.parse(process.argv[2]!) as Record<string, string>;
const config = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromMemory(input.host!, input.cert!, input.key!)
  .withCertificateAuthority(input.ca!).withPort(Number(input.port)).withConnectProperties({ clientId: input.clientId!, keepAliveIntervalSeconds: 60 }).build();
const client = new mqtt5.Mqtt5Client(config);
const result: Record<string, unknown> = {};
const failure = (e: unknown) => ({ message: String((e as Error).message ?? e), modeledError: (e as { modeledError?: unknown }).modeledError });
let identity: iotidentity.IotIdentityClientv2 | undefined;
try {
  await new Promise<void>((resolve, reject) => {
    client.once('connectionSuccess', () => resolve());
    client.once('connectionFailure', (e) => reject(e.error));
    client.start();
  });
  identity = iotidentity.IotIdentityClientv2.newFromMqtt5(client, { maxRequestResponseSubscriptions: 2, maxStreamingSubscriptions: 0, operationTimeoutInSeconds: 10 });
  const created = await identity.createCertificateFromCsr({ certificateSigningRequest: input.csr! });
  result.created = created;
  result.registered = await identity.registerThing({ templateName: input.template!, certificateOwnershipToken: created.certificateOwnershipToken!, parameters: { SerialNumber: input.serial! } });
  result.spent = await identity.registerThing({ templateName: input.template!, certificateOwnershipToken: created.certificateOwnershipToken!, parameters: { SerialNumber: input.serial! } }).catch(failure);
} catch (e) {
  result.error = failure(e);
}
identity?.close();
await new Promise<void>((resolve) => { client.once('stopped', () => resolve()); client.stop(); });
client.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
