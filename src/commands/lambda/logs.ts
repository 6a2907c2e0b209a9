import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { formatLogEvent } from '../../iot/logs.js';
import { NotFoundError, type LogEvent } from '../../ports.js';
import { withTarget } from '../../targets/index.js';
import { UserError } from '../../ui/errors.js';
import { printLine } from '../../ui/output.js';

export default class LambdaLogs extends BaseCommand<typeof LambdaLogs> {
  static override summary = "Show a function's logs: its output with START, END and REPORT lines, as CloudWatch shows them.";
  static override examples = ['<%= config.bin %> lambda logs ingest', '<%= config.bin %> lambda logs ingest --since 15m --follow', '<%= config.bin %> lambda logs ingest --json'];
  static override args = { name: Args.string({ description: 'Function name.', required: true }) };
  static override flags = {
    follow: Flags.boolean({ char: 'f', description: 'Keep printing new log lines until Ctrl-C.' }),
    since: Flags.string({ description: 'Only lines newer than this: a duration (90s, 15m, 2h, 7d) or an ISO time.', env: 'IOTCTL_LOGS_SINCE' }),
    limit: Flags.integer({ description: 'At most this many of the latest lines (before following).', default: 200, min: 1 }),
  };

  async run(): Promise<LogEvent[] | void> {
    const since = parseSince(this.flags.since);
    return withTarget(this.ctx, async (target) => {
      const print = (e: LogEvent) => printLine(this.jsonEnabled() ? JSON.stringify(e) : formatLogEvent(e));
      const abort = new AbortController();
      const stop = () => abort.abort();
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      const events: LogEvent[] = [];
      try {
        for await (const e of target.functions.logs(this.args.name, { since, limit: this.flags.limit, follow: this.flags.follow, signal: abort.signal })) {
          // Following: JSON lines with --json, as a stream has no end to close an array.
          if (this.flags.follow) print(e);
          else events.push(e);
        }
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        const names = (await target.functions.list()).map((f) => f.name);
        throw new UserError(`Function "${this.args.name}" has no logs and is not deployed.`, names.length ? `Deployed: ${names.join(', ')}.` : 'Deploy one with `iotctl lambda deploy <template>`.', 'FUNCTION_NOT_FOUND');
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      if (this.flags.follow) return;
      if (!this.jsonEnabled()) events.forEach(print);
      return events;
    });
  }
}

export function parseSince(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const m = /^(\d+)(s|m|h|d)$/.exec(value);
  if (m) return now - Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(value);
  if (/^\d{4}-\d\d-\d\d/.test(value) && Number.isFinite(t)) return t;
  throw new UserError(`--since "${value}" is not a duration or an ISO time.`, 'Use e.g. --since 90s, --since 15m, --since 2h, --since 7d or --since 2030-01-31T12:00:00Z.', 'USAGE');
}
