import type { RuleErrorRecord, RuleErrorsPort, RulesPort } from '../../ports.js';
import type { StageNames } from './naming.js';
import { ruleNames } from './rules.js';
import { isAwsError, type AwsClients } from './sdk.js';

const HOUR = 3_600_000;
/** FilterLogEvents answers oldest first: look back over growing windows until there are enough of the newest. */
const WINDOWS = [HOUR, 24 * HOUR, 7 * 24 * HOUR, 30 * 24 * HOUR, Infinity];

/**
 * Rule failures on AWS: the error payloads that rules' `errorAction: cloudwatchLogs` wrote to their log
 * groups, newest first. A rule without such an errorAction keeps no error record on AWS. The payloads name
 * rules and log groups by their physical names (`names`, the stage's); records name rules by their logical ones.
 */
export class AwsRuleErrors implements RuleErrorsPort {
  constructor(
    private readonly aws: AwsClients,
    private readonly rules: RulesPort,
    private readonly names: StageNames,
    private readonly now = () => Date.now(),
  ) {}

  async list(opts: { rule?: string; limit?: number; since?: number }): Promise<RuleErrorRecord[]> {
    const limit = opts.limit ?? 50;
    const rules = opts.rule ? [await this.rules.get(opts.rule)].filter((r) => r !== undefined) : await this.rules.list();
    const logGroup = ruleNames(this.names).logGroup;
    const groups = [...new Set(rules.flatMap((r) => (r.errorAction && 'cloudwatchLogs' in r.errorAction ? [logGroup.physical(r.errorAction.cloudwatchLogs.logGroup)] : [])))];
    if (!groups.length) return [];
    const logical = new Map(rules.map((r) => [this.names.rule(r.name), r.name]));
    let records: RuleErrorRecord[] = [];
    // `iotctl check` asks from its publish on: one read of a short window, each poll.
    for (const window of opts.since !== undefined ? [Math.max(0, this.now() - opts.since)] : WINDOWS) {
      const since = window === Infinity ? undefined : this.now() - window;
      records = (await Promise.all(groups.map((g) => this.read(g, since))))
        .flat()
        .flatMap((r) => (logical.has(r.ruleName) ? [{ ...r, ruleName: logical.get(r.ruleName)! }] : []));
      if (records.length >= limit) break;
    }
    return records.sort((a, b) => b.at.localeCompare(a.at) || b.messageId.localeCompare(a.messageId)).slice(0, limit);
  }

  private async read(logGroupName: string, startTime: number | undefined): Promise<RuleErrorRecord[]> {
    const { client, sdk } = await this.aws.get('logs');
    const out: RuleErrorRecord[] = [];
    let nextToken: string | undefined;
    try {
      do {
        const page = await client.send(new sdk.FilterLogEventsCommand({ logGroupName, startTime, nextToken }), this.aws.sendOptions);
        for (const e of page.events ?? []) {
          const record = parse(e.message, e.timestamp, e.eventId);
          if (record) out.push(record);
        }
        nextToken = page.nextToken;
      } while (nextToken);
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return []; // no failure yet: IoT creates the group's first stream on the first error
      throw error;
    }
    return out;
  }
}

/** One log event as AWS's error action payload; anything else in the group is skipped. */
function parse(message: string | undefined, timestamp: number | undefined, eventId: string | undefined): RuleErrorRecord | undefined {
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(message ?? '');
  } catch {
    return undefined;
  }
  if (!payload || typeof payload !== 'object' || typeof payload.ruleName !== 'string') return undefined;
  return {
    ruleName: payload.ruleName,
    messageId: typeof payload.cloudwatchTraceId === 'string' ? payload.cloudwatchTraceId : (eventId ?? ''),
    at: new Date(timestamp ?? 0).toISOString(),
    error: payload,
  };
}
