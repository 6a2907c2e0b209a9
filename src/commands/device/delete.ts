import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { openTarget } from '../../targets/index.js';
import { info } from '../../ui/output.js';

export default class DeviceDelete extends BaseCommand<typeof DeviceDelete> {
  static override summary = 'Delete a thing and its certificates (open connections are dropped).';
  static override examples = ['<%= config.bin %> device delete sensor-1'];
  static override args = { thing: Args.string({ required: true, description: 'Thing name.' }) };

  async run(): Promise<{ thingName: string; deletedCertificates: string[] }> {
    const target = await openTarget(this.ctx);
    try {
      const { deletedCertificates } = await target.devices.delete(this.args.thing);
      if (!this.jsonEnabled()) info(`Deleted ${this.args.thing} and ${deletedCertificates.length} certificate(s).`);
      return { thingName: this.args.thing, deletedCertificates };
    } finally {
      await target.close();
    }
  }
}
