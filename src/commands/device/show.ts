import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { openTarget } from '../../targets/index.js';
import { deviceTopics } from '../../services/devices.js';
import { UserError } from '../../ui/errors.js';
import { printTable } from '../../ui/output.js';

export default class DeviceShow extends BaseCommand<typeof DeviceShow> {
  static override summary = 'Show a thing: certificate id, fingerprint and status, attached policies and its topics.';
  static override examples = ['<%= config.bin %> device show sensor-1', '<%= config.bin %> device show sensor-1 --json'];
  static override args = { thing: Args.string({ required: true, description: 'Thing name.' }) };

  async run(): Promise<unknown> {
    const target = await openTarget(this.ctx);
    try {
      const device = await target.devices.show(this.args.thing);
      if (!device) throw new UserError(`No thing named "${this.args.thing}".`, 'List the registered devices with `iotctl device list`.', 'THING_NOT_FOUND');
      const result = { ...device, topics: deviceTopics(this.ctx.spec.spec, device.thingName), endpoint: await target.devices.endpoint() };
      if (!this.jsonEnabled()) {
        const rows = Object.entries({
          thing: result.thingName, type: result.thingType, attributes: result.attributes, certificateId: result.certificateId, fingerprint: result.fingerprint,
          status: result.certificateStatus, notAfter: result.notAfter, policies: result.policies.join(', '), publishes: result.topics.telemetry, subscribes: result.topics.commands,
          endpoint: `${result.endpoint.host}:${result.endpoint.port}`,
        });
        await printTable(rows, [{ header: 'Field', get: (r) => r[0] }, { header: 'Value', get: (r) => r[1] }]);
      }
      return result;
    } finally {
      await target.close();
    }
  }
}
