import { BaseCommand, Flags } from '../../base-command.js';
import { databaseTarget, missingSchemaError, specIfPresent } from '../../db/cli.js';
import { VIA_OPTIONS, withVia } from '../../db/via.js';
import { connect } from '../../db/connection.js';
import { parseDuration } from '../../db/duration.js';
import { recentMessages, validateTopicFilter, type MessageRecord } from '../../db/queries.js';
import { MESSAGE_COLUMNS, terminalColumns } from '../../db/recent-view.js';
import { UserError } from '../../ui/errors.js';
import { isTTY, printJson, printTable, toCsv } from '../../ui/output.js';

export default class QueryRecent extends BaseCommand<typeof QueryRecent> {
  static override summary = "Show a device's most recent messages from PostgreSQL, newest first.";
  static override description =
    'On a terminal the payload fields become columns when they fit; piped, the output is TSV (ts, device_id, topic, message_id, payload, received_at). --watch refreshes the table every second.';
  static override examples = [
    '<%= config.bin %> query recent --device sensor-1',
    "<%= config.bin %> query recent --device sensor-1 --since 15m --topic 'dt/+/sensor-1/#' --limit 10",
    '<%= config.bin %> query recent --device sensor-1 --format csv > last.csv',
    '<%= config.bin %> query recent --device sensor-1 --watch',
  ];
  static override flags = {
    device: Flags.string({ char: 'd', description: 'Device id (the thing name).', required: true, env: 'IOTCTL_DEVICE' }),
    since: Flags.string({ description: 'Only messages newer than this: 30s, 15m, 1h, 7d.', env: 'IOTCTL_SINCE' }),
    limit: Flags.integer({ char: 'n', description: 'At most this many messages.', default: 50, min: 1, max: 100_000, env: 'IOTCTL_LIMIT' }),
    topic: Flags.string({ description: "Only messages whose topic matches this MQTT filter ('+' one level, '#' the rest).", env: 'IOTCTL_TOPIC' }),
    format: Flags.string({ description: 'Output format (table: ink on a terminal, TSV when piped).', options: ['table', 'json', 'csv'], default: 'table', env: 'IOTCTL_FORMAT' }),
    'include-canary': Flags.boolean({ description: "Also show `iotctl check`'s canary messages (\"iotctl_check\": true), left out by default." }),
    watch: Flags.boolean({ char: 'w', description: 'Refresh every second on a terminal until Ctrl-C.', env: 'IOTCTL_WATCH' }),
    via: Flags.string({ description: 'How to reach the database: direct, lambda (aws: the query function in its VPC), or auto (direct when it answers within 2 s).', options: [...VIA_OPTIONS], default: 'auto', env: 'IOTCTL_VIA' }),
  };

  async run(): Promise<MessageRecord[]> {
    const { device, limit, topic, format, watch } = this.flags;
    const sinceMs = this.flags.since === undefined ? undefined : parseDuration(this.flags.since, '--since');
    if (topic !== undefined) validateTopicFilter(topic);
    if (watch && (this.jsonEnabled() || format !== 'table' || !isTTY())) {
      throw new UserError('--watch needs a terminal and the table format.', 'run it in a terminal without --json/--format, or drop --watch to print once.');
    }

    const since = () => (sinceMs === undefined ? undefined : new Date(Date.now() - sinceMs));
    if (specIfPresent(this.ctx)) {
      // Via the query function (aws, a database this machine cannot reach): the same query, in pages.
      const viaLambda = await withVia(this.ctx, this.flags.via, 'reader', async (via, target) => {
        if (via !== 'lambda') return undefined;
        const { functionPages } = await import('../../db/lambda-pages.js');
        const fetch = async () => {
          const rows: MessageRecord[] = [];
          const s = since();
          for await (const page of functionPages(target.databaseOps!, { query: 'recent', deviceId: device, limit, ...(s ? { since: s.toISOString() } : {}), ...(topic ? { topic } : {}), includeCanary: this.flags['include-canary'] }))
            for (const r of page.rows) rows.push(r as unknown as MessageRecord);
          return rows;
        };
        return this.show(fetch, watch, format);
      });
      if (viaLambda) return viaLambda;
    }
    const target = await databaseTarget(this.ctx, 'reader');
    const client = await connect(target);
    const fetch = () =>
      recentMessages(client, { deviceId: device, limit, topicFilter: topic, includeCanary: this.flags['include-canary'], since: since() }).catch((error) => {
        throw missingSchemaError(error, target);
      });
    try {
      return await this.show(fetch, watch, format);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async show(fetch: () => Promise<MessageRecord[]>, watch: boolean, format: string): Promise<MessageRecord[]> {
    const { device, topic } = this.flags;
    {
      if (watch) {
        const { watchRecent } = await import('../../db/recent-watch.js');
        await watchRecent({ fetch, intervalMs: 1000, title: `${device}${topic ? ` ${topic}` : ''}${this.flags.since ? ` · last ${this.flags.since}` : ''}` });
        return [];
      }
      const rows = await fetch();
      if (this.jsonEnabled()) return rows;
      if (format === 'json') printJson(rows);
      else if (format === 'csv') process.stdout.write(toCsv(rows, MESSAGE_COLUMNS));
      else if (isTTY()) await printTable(rows, terminalColumns(rows, process.stdout.columns || 120), { footer: `${rows.length} message${rows.length === 1 ? '' : 's'}, newest first` });
      else await printTable(rows, MESSAGE_COLUMNS);
      return rows;
    }
  }
}
