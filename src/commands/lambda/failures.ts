import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import type { FailureRecord } from '../../ports.js';
import { withTarget } from '../../targets/index.js';
import { printTable } from '../../ui/output.js';

export default class LambdaFailures extends BaseCommand<typeof LambdaFailures> {
  static override summary = "Show what a function's on-failure destination received: discarded stream batches and failed async events.";
  static override description =
    'Each record is the JSON document AWS sends to an on-failure destination: requestContext (condition RetryAttemptsExhausted, ' +
    'RecordAgeExceeded or RetriesExhausted), responseContext, and KinesisBatchInfo with the shard and sequence number range to replay.';
  static override examples = ['<%= config.bin %> lambda failures ingest', '<%= config.bin %> lambda failures ingest --json | jq ".[].record.KinesisBatchInfo"'];
  static override args = { name: Args.string({ description: 'Function name.', required: true }) };
  static override flags = { limit: Flags.integer({ description: 'At most this many of the latest records.', default: 100, min: 1 }) };

  async run(): Promise<FailureRecord[]> {
    return withTarget(this.ctx, async (target) => {
      const failures = await target.functions.failures(this.args.name, { limit: this.flags.limit });
      if (!this.jsonEnabled()) {
        const batch = (f: FailureRecord) => f.record.KinesisBatchInfo as Record<string, unknown> | undefined;
        const ctx = (f: FailureRecord) => f.record.requestContext as { condition?: string; approximateInvokeCount?: number } | undefined;
        await printTable(failures, [
          { header: 'Time', get: (f) => new Date(f.createdAt) },
          { header: 'Destination', get: (f) => f.destination },
          { header: 'Condition', get: (f) => ctx(f)?.condition },
          { header: 'Invokes', get: (f) => ctx(f)?.approximateInvokeCount },
          { header: 'Shard', get: (f) => batch(f)?.shardId ?? '(async event)' },
          { header: 'Records', get: (f) => batch(f)?.batchSize ?? 1 },
          { header: 'First sequence number', get: (f) => batch(f)?.startSequenceNumber },
          { header: 'Last sequence number', get: (f) => batch(f)?.endSequenceNumber },
        ]);
      }
      return failures;
    });
  }
}
