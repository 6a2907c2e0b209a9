import type { StreamConfig, StreamDescription, StreamPort, StreamSummary, TailOptions, TailRecord } from '../../../ports.js';
import { NotFoundError } from '../../../ports.js';
import type { Db } from '../store.js';
import { LocalStreams, StreamNotFoundError, type StreamDescription as LocalDescription } from '../stream.js';
import { tailStream } from '../stream/tail.js';

/** The StreamPort over the local Kinesis-like stream in the state store. */
export class LocalStreamPort implements StreamPort {
  constructor(private readonly opts: { db: () => Db; region: string }) {}

  private get local(): LocalStreams {
    return new LocalStreams(this.opts.db(), { region: this.opts.region });
  }

  async list(): Promise<StreamSummary[]> {
    return this.local.listStreams().map((s) => ({ ...s, status: 'ACTIVE', mode: 'provisioned', createdAt: s.createdAt.toISOString() }));
  }

  async describe(name: string): Promise<StreamDescription> {
    return toPort(notFound(() => this.local.describeStream(name)));
  }

  /** The local stream cannot reshard: a new shard count recreates it, discarding its records. */
  async ensure(config: StreamConfig): Promise<'created' | 'updated' | 'unchanged'> {
    const local = this.local;
    const existing = local.listStreams().find((s) => s.name === config.name);
    if (existing && existing.shards !== config.shards) {
      local.deleteStream(config.name);
      local.ensureStream({ name: config.name, shards: config.shards, retentionHours: config.retentionHours });
      return 'updated';
    }
    return local.ensureStream({ name: config.name, shards: config.shards, retentionHours: config.retentionHours });
  }

  async delete(name: string): Promise<boolean> {
    return this.local.deleteStream(name);
  }

  async *tail(name: string, opts: TailOptions): AsyncIterable<TailRecord> {
    const local = this.local;
    notFound(() => local.listShards(name));
    try {
      yield* tailStream(local, name, opts);
    } catch (err) {
      if (err instanceof StreamNotFoundError) throw new NotFoundError('stream', name);
      throw err;
    }
  }
}

function notFound<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof StreamNotFoundError) throw new NotFoundError('stream', err.destination);
    throw err;
  }
}

function toPort(d: LocalDescription): StreamDescription {
  return {
    ...d,
    mode: 'provisioned',
    createdAt: d.createdAt.toISOString(),
    shardList: d.shardList.map((s) => ({ ...s, open: true })),
  };
}
