import { BaseCommand } from '../../base-command.js';
import { withTarget } from '../../targets/index.js';
import { printTable } from '../../ui/output.js';

export interface StreamListRow {
  name: string;
  /** aws: the stream's name on AWS (scoped by project and stage). */
  physicalName?: string;
  arn: string;
  shards: number;
  retentionHours: number;
  /** Known on the local target; AWS does not count a stream's records. */
  records?: number;
  bytes?: number;
  /** Whether iotctl.yaml declares it. */
  declared: boolean;
  createdAt: Date;
}

export default class StreamList extends BaseCommand<typeof StreamList> {
  static override summary = 'List the streams with their shards, retention and record counts.';
  static override examples = ['<%= config.bin %> stream list', '<%= config.bin %> stream list --json'];

  async run(): Promise<StreamListRow[]> {
    return withTarget(this.ctx, async (target) => {
      const declared = new Set(this.ctx.spec.spec.streams.map((s) => s.name));
      const rows: StreamListRow[] = [];
      for (const s of await target.streams.list()) {
        const d = await target.streams.describe(s.name);
        rows.push({ name: s.name, ...(s.physicalName ? { physicalName: s.physicalName } : {}), arn: s.arn, shards: s.shards, retentionHours: s.retentionHours, records: d.records, bytes: d.bytes, declared: declared.has(s.name), createdAt: new Date(s.createdAt) });
      }
      if (!this.jsonEnabled()) {
        const missing = [...declared].filter((n) => !rows.some((r) => r.name === n));
        await printTable(
          rows,
          [
            { header: 'Stream', get: (r) => r.name },
            ...(rows.some((r) => r.physicalName) ? [{ header: 'Name on AWS', get: (r: StreamListRow) => r.physicalName }] : []),
            { header: 'Shards', get: (r) => r.shards },
            { header: 'Retention', get: (r) => `${r.retentionHours}h` },
            { header: 'Records', get: (r) => r.records },
            { header: 'Bytes', get: (r) => r.bytes },
            { header: 'In spec', get: (r) => (r.declared ? 'yes' : 'no') },
            { header: 'Created', get: (r) => r.createdAt },
          ],
          { footer: missing.length ? `Declared in iotctl.yaml but not created yet: ${missing.join(', ')} (${target.name === 'local' ? '`iotctl local up` or ' : ''}\`iotctl apply\` creates them).` : undefined },
        );
      }
      return rows;
    });
  }
}
