import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { NotFoundError, type StreamDescription } from '../../ports.js';
import { withTarget } from '../../targets/index.js';
import { UserError } from '../../ui/errors.js';
import { printLine, printTable } from '../../ui/output.js';

export default class StreamDescribe extends BaseCommand<typeof StreamDescribe> {
  static override summary = 'Describe a stream: its shards, hash key ranges, sequence numbers and record counts.';
  static override examples = ['<%= config.bin %> stream describe telemetry', '<%= config.bin %> stream describe telemetry --json'];
  static override args = { name: Args.string({ description: 'Stream name.', required: true }) };

  async run(): Promise<StreamDescription> {
    return withTarget(this.ctx, async (target) => {
      let d: StreamDescription;
      try {
        d = await target.streams.describe(this.args.name);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        const names = (await target.streams.list()).map((s) => s.name);
        throw new UserError(`Stream "${this.args.name}" does not exist on the ${target.name === 'local' ? 'local platform' : 'aws target'}.`, names.length ? `Streams: ${names.join(', ')}.` : 'Declare it under `streams:` in iotctl.yaml and run `iotctl apply`.', 'STREAM_NOT_FOUND');
      }
      if (!this.jsonEnabled()) {
        const counts = d.records === undefined ? '' : `, ${d.records} record(s), ${d.bytes} bytes`;
        printLine(`${d.name}  ${d.arn}`);
        printLine(`status ${d.status}, ${d.shards} shard(s), retention ${d.retentionHours}h${counts}, created ${d.createdAt}`);
        await printTable(d.shardList, [
          { header: 'Shard', get: (s) => s.shardId },
          { header: 'Starting hash key', get: (s) => s.hashKeyRange.startingHashKey },
          { header: 'Ending hash key', get: (s) => s.hashKeyRange.endingHashKey },
          { header: 'Records', get: (s) => s.records },
          { header: 'Bytes', get: (s) => s.bytes },
          { header: 'Oldest sequence number', get: (s) => s.sequenceNumberRange.startingSequenceNumber },
        ]);
      }
      return d;
    });
  }
}
