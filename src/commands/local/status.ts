import { BaseCommand } from '../../base-command.js';
import { readStatus } from '../../targets/local/lifecycle.js';
import { printTable } from '../../ui/output.js';
import { DEFAULT_STAGE } from '../../spec/stages.js';
import { redactUrl } from '../../db/connection.js';

export default class LocalStatus extends BaseCommand<typeof LocalStatus> {
  static override summary = 'Show the local platform: endpoints, uptime, clients and counters.';
  static override examples = ['<%= config.bin %> local status', '<%= config.bin %> local status --json'];

  async run(): Promise<unknown> {
    const status = readStatus(this.ctx.paths.stateDir);
    if (!this.jsonEnabled()) {
      if (!status.running) {
        process.stdout.write('not running\n');
        process.stderr.write(`Start it with \`iotctl local up --detach${this.ctx.stage === DEFAULT_STAGE ? '' : ` --stage ${this.ctx.stage}`}\`.\n`);
      } else {
        const breakdown = (c: { total: number; byReason: Record<string, number> }) => `${c.total}${Object.keys(c.byReason).length ? ` (${Object.entries(c.byReason).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`;
        const rows: [string, unknown][] = [
          ['stage', this.ctx.stage],
          ['pid', status.pid],
          ['uptime', `${status.uptimeSeconds}s`],
          ['mqtt', status.endpoints.mqtt],
          ['postgres', status.endpoints.postgres ? redactUrl(status.endpoints.postgres) : '(not running)'],
          ['connected clients', status.connectedClients],
          ['connections accepted', breakdown(status.connectionsAccepted)],
          ['connections refused', breakdown(status.connectionsRefused)],
          ['publishes accepted', breakdown(status.publishesAccepted)],
          ['publishes denied', breakdown(status.publishesDenied)],
          ['publishes/s', status.publishesPerSecond.toFixed(1)],
          ['rules lag', status.rules?.lag ?? '-'],
        ];
        for (const [name, value] of Object.entries(status.components)) if (name !== 'postgres') rows.push([name, describeComponent(name, value)]);
        await printTable(rows, [{ header: 'Field', get: (r) => r[0] }, { header: 'Value', get: (r) => r[1] }]);
      }
    }
    return status;
  }
}

/** One readable line per component for the table (--json has everything). */
function describeComponent(name: string, value: unknown): string {
  if (name === 'eventSourceMappings' && Array.isArray(value)) {
    if (!value.length) return 'none deployed';
    return value
      .map((m: { functionName: string; stream: string; state: string; records: number; batches: number; errors: number; discarded: number; iteratorAgeMs: number }) =>
        `${m.functionName} <- ${m.stream}: ${m.state}, ${m.records} records in ${m.batches} batches, ${m.errors} errors, ${m.discarded} discarded, iterator age ${m.iteratorAgeMs} ms`)
      .join('; ');
  }
  if (name === 'retention' && value && typeof value === 'object') {
    const r = value as { keep: string; schedule: string; last: { at: string | null; dropped: number; deleted: number; error: string | null } };
    return `keep ${r.keep}, ${r.schedule}; last run ${r.last.at ?? 'not yet'}${r.last.error ? ` failed: ${r.last.error}` : r.last.at ? ` (dropped ${r.last.dropped} partitions, deleted ${r.last.deleted} rows)` : ''}`;
  }
  return JSON.stringify(value);
}
