import { stageDevicesDir } from '../spec/stages.js';
import { BaseCommand, Flags } from '../base-command.js';
import { inlineOrFile } from '../services/files.js';
import { connectDevice, disconnect, publishMessages, publishProperties, readCredentials, type PublishResult } from '../services/publish.js';
import { deviceTopics } from '../services/devices.js';
import { info, isInteractive, warn } from '../ui/output.js';
import { UserError } from '../ui/errors.js';

export default class Publish extends BaseCommand<typeof Publish> {
  static override summary = "Publish as a device, over MQTT/TLS with the device's certificate.";
  static override description = 'Works against any MQTT endpoint: the local platform by default, or the host in the device\'s endpoint.json (AWS IoT too). The payload may use {{seq}}, {{now}} and {{random}} placeholders.';
  static override examples = [
    `<%= config.bin %> publish --device sensor-1 --payload '{"temperature": 21.5}'`,
    '<%= config.bin %> publish --device sensor-1 --payload @reading.json --qos 1',
    `<%= config.bin %> publish --device sensor-1 --payload '{"seq": {{seq}}, "temperature": {{random}}}' --count 1000 --rate 100`,
    `<%= config.bin %> publish --device sensor-1 --payload '{"temperature": 21.5}' --mqtt5 --content-type application/json --user-property site=lab --user-property batch=7`,
  ];
  static override flags = {
    device: Flags.string({ required: true, description: 'Thing name; its credentials are read from --credentials/<thing>/.' }),
    topic: Flags.string({ description: "Topic (default: the device's telemetry topic)." }),
    payload: Flags.string({ required: true, description: 'JSON payload, or @file.' }),
    qos: Flags.integer({ description: 'MQTT QoS (0 or 1; AWS IoT Core has no QoS 2).', default: 1, min: 0, max: 1 }),
    count: Flags.integer({ description: 'Messages to publish.', default: 1, min: 1 }),
    rate: Flags.integer({ description: 'Messages per second (0: as fast as acknowledged).', default: 0, min: 0 }),
    credentials: Flags.string({ description: 'Folder of device credentials (default: devices, and devices/@<stage> for a stage other than default).', env: 'IOTCTL_DEVICES_DIR' }),
    host: Flags.string({ description: 'Override the endpoint host.' }),
    port: Flags.integer({ description: 'Override the endpoint port.', min: 1, max: 65535 }),
    mqtt5: Flags.boolean({ description: 'Connect with MQTT 5 (the flags below need it).', default: false }),
    'user-property': Flags.string({ multiple: true, description: 'MQTT 5 user property key=value; repeatable (at most 8 KB in all, as on AWS IoT Core).' }),
    'content-type': Flags.string({ description: 'MQTT 5 content type (rules: get_mqtt_property(\'content_type\')).' }),
    'response-topic': Flags.string({ description: 'MQTT 5 response topic (request/response).' }),
    'correlation-data': Flags.string({ description: 'MQTT 5 correlation data, sent as UTF-8 bytes.' }),
  };

  async run(): Promise<PublishResult & { topic: string }> {
    const creds = readCredentials(this.flags.credentials ?? stageDevicesDir(this.ctx.stage), this.flags.device, this.ctx.paths.stateDir);
    const payload = inlineOrFile(this.flags.payload).toString('utf8');
    try {
      JSON.parse(payload.replaceAll(/\{\{(seq|now|random)\}\}/g, '0'));
    } catch {
      warn('the payload is not JSON; it is sent as raw bytes (rules see it as a binary payload).');
    }
    const properties = publishProperties({
      userProperties: this.flags['user-property'], contentType: this.flags['content-type'], responseTopic: this.flags['response-topic'], correlationData: this.flags['correlation-data'],
    });
    if (properties && !this.flags.mqtt5) {
      throw new UserError('MQTT 5 properties need an MQTT 5 connection.', 'Add --mqtt5 (MQTT 3.1.1 has no user properties, content type, response topic or correlation data).', 'MQTT5_REQUIRED');
    }
    const topic = this.flags.topic ?? deviceTopics(this.ctx.spec.spec, this.flags.device).telemetry;
    const endpoint = { host: this.flags.host ?? creds.endpoint.host, port: this.flags.port ?? creds.endpoint.port };
    const client = await connectDevice(creds, endpoint, creds.thingName, 3, this.flags.mqtt5 ? 5 : 4);
    try {
      const progress = isInteractive() && this.flags.count > 1 ? (n: number) => n % 100 === 0 && process.stderr.write(`\rPublished ${n}/${this.flags.count}`) : undefined;
      const result = await publishMessages(client, { topic, payload, qos: this.flags.qos as 0 | 1, count: this.flags.count, rate: this.flags.rate, properties, onProgress: progress || undefined });
      if (progress) process.stderr.write('\n');
      if (!this.jsonEnabled()) info(`Published ${result.published} message(s) to ${topic} (${result.ratePerSecond.toFixed(0)}/s)${result.failed ? `, ${result.failed} not acknowledged` : ''}.`);
      if (result.failed) {
        throw new UserError(`${result.failed} of ${this.flags.count} messages were not acknowledged; the broker closed the connection.`, 'Check `iotctl local status` for denied publishes (policy, payload over 128 KB).', 'PUBLISH_INCOMPLETE');
      }
      return { ...result, topic };
    } finally {
      await disconnect(client);
    }
  }
}
