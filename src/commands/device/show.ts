import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { openTarget } from '../../targets/index.js';
import { deviceTopics } from '../../services/devices.js';
import { certificateRows, lifetimeMs } from '../../services/certificates.js';
import { certificateColumns } from '../../ui/certificates.js';
import { UserError } from '../../ui/errors.js';
import { printTable } from '../../ui/output.js';

export default class DeviceShow extends BaseCommand<typeof DeviceShow> {
  static override summary = 'Show a thing: certificate id, fingerprint and status, attached policies and its topics.';
  static override description =
    'With --certificates (or in --json, always), every certificate of the thing too: status, notAfter, days left, its part in a rotation in progress (old/new) and, locally, its last connection.';
  static override examples = ['<%= config.bin %> device show sensor-1', '<%= config.bin %> device show sensor-1 --certificates', '<%= config.bin %> device show sensor-1 --json'];
  static override args = { thing: Args.string({ required: true, description: 'Thing name.' }) };
  static override flags = {
    certificates: Flags.boolean({ description: 'Show the certificates view: every certificate of the thing with its expiry and rotation state.' }),
    expiring: Flags.string({ description: 'The window that marks a certificate as expiring (default 30d, as Device Defender).', default: '30d' }),
  };

  async run(): Promise<unknown> {
    const windowMs = lifetimeMs(this.flags.expiring, '--expiring');
    const target = await openTarget(this.ctx);
    try {
      const device = await target.devices.show(this.args.thing);
      if (!device) throw new UserError(`No thing named "${this.args.thing}".`, 'List the registered devices with `iotctl device list`.', 'THING_NOT_FOUND');
      const [certificates, [rotation]] = await Promise.all([certificateRows(target.devices, windowMs, { thingName: device.thingName }), target.devices.rotations(device.thingName)]);
      const result = { ...device, topics: deviceTopics(this.ctx.spec.spec, device.thingName), endpoint: await target.devices.endpoint(), certificates, rotation: rotation ?? null };
      if (!this.jsonEnabled()) {
        if (this.flags.certificates) {
          await printTable(certificates, certificateColumns, {
            title: `Certificates of ${device.thingName}`,
            ...(rotation ? { footer: `Rotation in progress since ${rotation.startedAt}; the old certificate stays ACTIVE until ${rotation.graceUntil}.` } : {}),
          });
          return result;
        }
        const rows = Object.entries({
          thing: result.thingName, type: result.thingType, attributes: result.attributes, certificateId: result.certificateId, fingerprint: result.fingerprint,
          status: result.certificateStatus, notAfter: result.notAfter, policies: result.policies.join(', '), publishes: result.topics.telemetry, subscribes: result.topics.commands,
          endpoint: `${result.endpoint.host}:${result.endpoint.port}`,
          certificates: `${certificates.length} (${certificates.filter((c) => c.status === 'ACTIVE').length} active)`,
          rotation: rotation ? `${rotation.oldCertificateId.slice(0, 12)}… -> ${rotation.newCertificateId.slice(0, 12)}…, grace until ${rotation.graceUntil}` : 'none',
        });
        await printTable(rows, [{ header: 'Field', get: (r) => r[0] }, { header: 'Value', get: (r) => r[1] }]);
      }
      return result;
    } finally {
      await target.close();
    }
  }
}
