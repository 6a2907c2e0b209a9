import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { openTarget } from '../../targets/index.js';
import { info } from '../../ui/output.js';
import { UserError } from '../../ui/errors.js';

export default class DeviceRevoke extends BaseCommand<typeof DeviceRevoke> {
  static override summary = "Revoke a thing's certificates: they stop working at once and open connections are dropped.";
  static override examples = ['<%= config.bin %> device revoke sensor-1', '<%= config.bin %> device revoke --certificate 5f2c…  # a claim certificate'];
  static override args = { thing: Args.string({ description: 'Thing name.' }) };
  static override flags = {
    certificate: Flags.string({ description: 'Revoke this one certificate (by id) instead of a thing\'s: a claim certificate has no thing.' }),
    revoked: Flags.boolean({ description: 'aws: set REVOKED (permanent) instead of INACTIVE (reversible). Local has one status.', env: 'IOTCTL_REVOKED' }),
  };

  async run(): Promise<{ thingName?: string; revoked: string[] }> {
    if (!this.args.thing && !this.flags.certificate) throw new UserError('Missing the thing name.', 'Run `iotctl device revoke <thing>`, or `--certificate <id>` for one certificate.', 'USAGE');
    const target = await openTarget(this.ctx);
    try {
      if (this.flags.certificate) {
        await target.devices.revokeCertificate(this.flags.certificate, { revoked: this.flags.revoked });
        if (!this.jsonEnabled()) info(`Revoked certificate ${this.flags.certificate.slice(0, 12)}…; connections with it are dropped.`);
        return { revoked: [this.flags.certificate] };
      }
      const { revoked } = await target.devices.revoke(this.args.thing!, { revoked: this.flags.revoked });
      if (!this.jsonEnabled()) info(revoked.length ? `Revoked ${revoked.length} certificate(s) of ${this.args.thing}.` : `${this.args.thing} has no active certificate.`);
      return { thingName: this.args.thing, revoked };
    } finally {
      await target.close();
    }
  }
}
