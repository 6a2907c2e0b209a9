import { BaseCommand } from '../../base-command.js';
import { openTarget } from '../../targets/index.js';
import { printTable } from '../../ui/output.js';
import type { DeviceSummary } from '../../ports.js';

export default class DeviceList extends BaseCommand<typeof DeviceList> {
  static override summary = 'List registered things with their certificate status.';
  static override examples = ['<%= config.bin %> device list', '<%= config.bin %> device list --json'];

  async run(): Promise<DeviceSummary[]> {
    const target = await openTarget(this.ctx);
    try {
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
}
