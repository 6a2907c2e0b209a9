import { BaseCommand } from '../../base-command.js';
import { openStore } from '../../targets/local/store.js';
import { LocalStreams } from '../../targets/local/stream.js';
import { printTable } from '../../ui/output.js';

export interface StreamListRow {
  name: string;
  arn: string;
  shards: number;
  retentionHours: number;
  records: number;
  bytes: number;
  /** Whether iotctl.yaml declares it. */
  declared: boolean;
  createdAt: Date;
}

export default class StreamList extends BaseCommand<typeof StreamList> {
  static override summary = 'List the local streams with their shards, retention and record counts.';
  static override examples = ['<%= config.bin %> stream list', '<%= config.bin %> stream list --json'];

  async run(): Promise<StreamListRow[]> {
    const db = openStore(this.ctx.paths.stateDir);
    try {
      const streams = new LocalStreams(db, { region: this.ctx.spec.spec.region });
      const declared = new Set(this.ctx.spec.spec.streams.map((s) => s.name));
      const rows = streams.listStreams().map((s) => {
        const d = streams.describeStream(s.name);
        return { name: s.name, arn: s.arn, shards: s.shards, retentionHours: s.retentionHours, records: d.records, bytes: d.bytes, declared: declared.has(s.name), createdAt: s.createdAt };
      });
      if (!this.jsonEnabled()) {
        const missing = [...declared].filter((n) => !rows.some((r) => r.name === n));
        await printTable(
          rows,
          [
            { header: 'Stream', get: (r) => r.name },
            { header: 'Shards', get: (r) => r.shards },
            { header: 'Retention', get: (r) => `${r.retentionHours}h` },
            { header: 'Records', get: (r) => r.records },
            { header: 'Bytes', get: (r) => r.bytes },
            { header: 'In spec', get: (r) => (r.declared ? 'yes' : 'no') },
            { header: 'Created', get: (r) => r.createdAt },
          ],
          { footer: missing.length ? `Declared in iotctl.yaml but not created yet: ${missing.join(', ')} (\`iotctl local up\` or \`iotctl apply\` creates them).` : undefined },
        );
      }
      return rows;
    } finally {
      db.close();
    }
  }
}
