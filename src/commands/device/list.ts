import { BaseCommand, Flags } from '../../base-command.js';
import { openTarget } from '../../targets/index.js';
import { printTable } from '../../ui/output.js';
import type { DeviceSummary } from '../../ports.js';
import { expiringCertificates, lifetimeMs, type CertificateRow } from '../../services/certificates.js';
import { certificateColumns } from '../../ui/certificates.js';

export default class DeviceList extends BaseCommand<typeof DeviceList> {
  static override summary = 'List registered things with their certificate status.';
  static override description = 'With --expiring, lists instead the ACTIVE certificates that expire within the window or have expired, with the days left (aws: DescribeCertificate validity.notAfter).';
  static override examples = ['<%= config.bin %> device list', '<%= config.bin %> device list --json', '<%= config.bin %> device list --expiring 30d'];
  static override flags = {
    expiring: Flags.string({ description: 'Certificates that expire within this window (e.g. 30d, 12h) or have expired.', env: 'IOTCTL_EXPIRING' }),
  };

  async run(): Promise<DeviceSummary[] | CertificateRow[]> {
    const windowMs = this.flags.expiring === undefined ? undefined : lifetimeMs(this.flags.expiring, '--expiring');
    const target = await openTarget(this.ctx);
    try {
      if (windowMs !== undefined) return await this.expiring(target.devices, windowMs);
      const devices = await target.devices.list();
      if (!this.jsonEnabled()) {
        await printTable(devices, [
          { header: 'Thing', get: (d) => d.thingName },
          { header: 'Type', get: (d) => d.thingType },
          { header: 'Certificate', get: (d) => d.certificateId?.slice(0, 12) },
          { header: 'Status', get: (d) => d.certificateStatus },
          { header: 'Attributes', get: (d) => Object.entries(d.attributes).map(([k, v]) => `${k}=${v}`).join(' ') },
          { header: 'Created', get: (d) => d.createdAt },
          // aws: things registered before stage groups, found through the old device policy (the next apply moves them).
          ...(devices.some((d) => d.legacy) ? [{ header: 'Note', get: (d: DeviceSummary) => (d.legacy ? 'legacy, not in a stage group' : '') }] : []),
        ]);
      }
      return devices;
    } finally {
      await target.close();
    }
  }

  private async expiring(devices: Parameters<typeof expiringCertificates>[0], windowMs: number): Promise<CertificateRow[]> {
    const rows = await expiringCertificates(devices, windowMs);
    if (!this.jsonEnabled()) {
      await printTable(rows, certificateColumns, {
        title: `Certificates expiring within ${this.flags.expiring}`,
        footer: rows.length ? `Rotate them with \`iotctl device rotate --expiring ${this.flags.expiring}\`.` : 'No ACTIVE certificate expires in that window.',
      });
    }
    return rows;
  }
}
