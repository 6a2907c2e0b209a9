import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { openTarget } from '../../targets/index.js';
import { info } from '../../ui/output.js';

export default class DeviceRevoke extends BaseCommand<typeof DeviceRevoke> {
  static override summary = "Revoke a thing's certificates: they stop working at once and open connections are dropped.";
  static override examples = ['<%= config.bin %> device revoke sensor-1'];
  static override args = { thing: Args.string({ required: true, description: 'Thing name.' }) };
  static override flags = {
    revoked: Flags.boolean({ description: 'aws: set REVOKED (permanent) instead of INACTIVE (reversible). Local has one status.', env: 'IOTCTL_REVOKED' }),
  };

  async run(): Promise<{ thingName: string; revoked: string[] }> {
    const target = await openTarget(this.ctx);
    try {
      const { revoked } = await target.devices.revoke(this.args.thing, { revoked: this.flags.revoked });
      if (!this.jsonEnabled()) info(revoked.length ? `Revoked ${revoked.length} certificate(s) of ${this.args.thing}.` : `${this.args.thing} has no active certificate.`);
      return { thingName: this.args.thing, revoked };
    } finally {
      await target.close();
    }
  }
}
