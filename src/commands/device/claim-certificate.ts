import { join } from 'node:path';
import { stageDevicesDir } from '../../spec/stages.js';
import { BaseCommand, Flags } from '../../base-command.js';
import { issueClaimCertificate } from '../../services/provisioning.js';
import { openTarget } from '../../targets/index.js';
import { info } from '../../ui/output.js';

export default class DeviceClaimCertificate extends BaseCommand<typeof DeviceClaimCertificate> {
  static override summary = 'Issue the shared claim certificate devices use to provision themselves (fleet provisioning by claim).';
  static override description =
    'The certificate may only call the device provisioning MQTT API of the template in devices.provisioning ($aws/certificates/create-from-csr/*, $aws/certificates/create/* and $aws/provisioning-templates/<template>/provision/*). Writes cert.pem, private.key (0600), ca.pem and endpoint.json to --out. Run it again to rotate; revoke the old one with `device revoke --certificate <id>`.';
  static override examples = ['<%= config.bin %> device claim-certificate', '<%= config.bin %> device claim-certificate --out ./factory/claim'];
  static override flags = {
    out: Flags.string({ description: 'The folder to write the credentials to (default: devices/claim-<template>-<time>).', env: 'IOTCTL_CLAIM_DIR' }),
  };

  async run(): Promise<{ template: string; certificateId: string; policyName: string; credentials: string; endpoint: { host: string; port: number } }> {
    const { spec } = this.ctx.spec;
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
    const out = this.flags.out ?? join(stageDevicesDir(this.ctx.stage), `claim-${spec.devices.provisioning?.template ?? 'template'}-${stamp}`);
    const target = await openTarget(this.ctx);
    try {
      const claim = await issueClaimCertificate(spec, target, out);
      if (!this.jsonEnabled()) info(`Claim certificate ${claim.certificateId.slice(0, 12)}… for template ${claim.template} (policy ${claim.policyName}). Credentials in ${claim.dir}`);
      return { template: claim.template, certificateId: claim.certificateId, policyName: claim.policyName, credentials: claim.dir, endpoint: claim.endpoint };
    } finally {
      await target.close();
    }
  }
}
