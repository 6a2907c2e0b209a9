import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { openStore } from '../../targets/local/store.js';
import { LocalStreams, StreamNotFoundError, type StreamDescription } from '../../targets/local/stream.js';
import { UserError } from '../../ui/errors.js';
import { printLine, printTable } from '../../ui/output.js';

export default class StreamDescribe extends BaseCommand<typeof StreamDescribe> {
  static override summary = 'Describe a stream: its shards, hash key ranges, sequence numbers and record counts.';
  static override examples = ['<%= config.bin %> stream describe telemetry', '<%= config.bin %> stream describe telemetry --json'];
  static override args = { name: Args.string({ description: 'Stream name.', required: true }) };

  async run(): Promise<StreamDescription> {
    const db = openStore(this.ctx.paths.stateDir);
    try {
      const streams = new LocalStreams(db, { region: this.ctx.spec.spec.region });
      let d: StreamDescription;
      try {
        d = streams.describeStream(this.args.name);
      } catch (err) {
        if (!(err instanceof StreamNotFoundError)) throw err;
        const names = streams.listStreams().map((s) => s.name);
        throw new UserError(`Stream "${this.args.name}" does not exist on the local platform.`, names.length ? `Streams: ${names.join(', ')}.` : 'Declare it under `streams:` in iotctl.yaml and run `iotctl apply`.', 'STREAM_NOT_FOUND');
      }
      if (!this.jsonEnabled()) {
        printLine(`${d.name}  ${d.arn}`);
        printLine(`status ${d.status}, ${d.shards} shard(s), retention ${d.retentionHours}h, ${d.records} record(s), ${d.bytes} bytes, created ${d.createdAt.toISOString()}`);
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
    } finally {
      db.close();
    }
  }
}
