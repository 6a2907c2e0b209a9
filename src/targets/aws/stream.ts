import type * as Kinesis from '@aws-sdk/client-kinesis';
import { NotFoundError, type ListScope, type ShardInfo, type StreamConfig, type StreamDescription, type StreamPort, type StreamSummary, type TailOptions, type TailRecord, type TailStart } from '../../ports.js';
import { UserError } from '../../ui/errors.js';
// Target-neutral helpers; the ports refactor moves them out of targets/local.
import { decodePayload, matchesFilter } from '../local/stream/tail.js';
import { ownershipByName } from './naming.js';
import { assertClaimable, claimOf, DEFAULT_STAGE, ownerTags, type Owner } from './ownership.js';
import { isAwsError, type AwsClients } from './sdk.js';
import { waitUntil, type WaitOptions } from './retry.js';
import { pause } from '../pause.js';

/**
 * The stream port on AWS: a Kinesis data stream through SDK v3.
 *
 * `tail` reads every shard with its own GetShardIterator/GetRecords loop, at most 5 GetRecords per second
 * per shard (AWS's read limit), and follows the shard lineage: a closed shard's children start only when
 * all their parents are read to the end, so records of one partition key come out in order across a reshard.
 */

export interface AwsStreamsOptions {
  /** Shortest gap between two GetRecords on one shard; AWS allows 5 per second, so never below 200. */
  minPollMs?: number;
  /** Gap after a GetRecords that found the shard's tip (nothing more to read). */
  idlePollMs?: number;
  /** ProvisionedThroughputExceeded backoff: base and cap of the exponential delay. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** How long ensure waits for a stream to become ACTIVE (creating, resharding). */
  waitTimeoutMs?: number;
  waitPollMs?: number;
  /** Records buffered ahead of a slow consumer before the shard readers pause. */
  highWater?: number;
  /** Whose streams these are: list() sees only streams tagged with this project and stage, ensure() tags. */
  owner?: Owner;
  /**
   * The stage's physical name of a logical stream (naming.ts stageNames().stream). Without it (a bare adapter
   * in the Kinesis mechanics' tests) a stream is stored under the name it is given.
   */
  physical?: (logical: string) => string;
}

const AWS_MIN_POLL_MS = 200;
type Position = { type: Kinesis.ShardIteratorType; sequenceNumber?: string; timestamp?: Date };
type Child = { shardId: string; parents: string[] };

export class AwsStreams implements StreamPort {
  private readonly opts: Required<Omit<AwsStreamsOptions, 'owner' | 'physical'>>;
  private readonly owner: Owner;
  /** Logical name to the name on AWS: every method takes logical names, as commands give them. */
  private readonly physical: (logical: string) => string;
  private readonly scoped: boolean;

  constructor(
    private readonly aws: AwsClients,
    options: AwsStreamsOptions = {},
  ) {
    this.owner = options.owner ?? { project: 'iotctl', stage: DEFAULT_STAGE };
    this.physical = options.physical ?? ((name) => name);
    this.scoped = options.physical !== undefined;
    this.opts = {
      // A little over 200 ms by default: timers and clocks jitter, and AWS counts on its side.
      minPollMs: Math.max(AWS_MIN_POLL_MS, options.minPollMs ?? AWS_MIN_POLL_MS + 10),
      idlePollMs: Math.max(AWS_MIN_POLL_MS, options.idlePollMs ?? 1000),
      backoffBaseMs: options.backoffBaseMs ?? 500,
      backoffCapMs: options.backoffCapMs ?? 10_000,
      waitTimeoutMs: options.waitTimeoutMs ?? 15 * 60_000,
      waitPollMs: options.waitPollMs ?? 1000,
      highWater: options.highWater ?? 1000,
    };
  }

  // ------------------------------------------------------------ control plane

  /**
   * The streams this project and stage own, by their scoped names (a name in no scope of ours is never even
   * read) and tags, reported under their logical names with `physicalName`. For each name the spec declares:
   * - the scoped stream of that name held by anyone else is refused; with `--adopt`, one no iotctl owns is
   *   listed with the tags it will get;
   * - a stream an older iotctl made under the bare logical name (tagged with this project and stage, or with
   *   nothing at all) is listed with that name as `physicalName`, so the plan moves it; once the scoped one
   *   exists it is `retired` (it keeps its records until `apply --prune`). Anyone else's stream of the bare
   *   name is left alone: the scoped name no longer collides with it.
   */
  async list(scope: ListScope = {}): Promise<StreamSummary[]> {
    const { client, sdk } = await this.aws.get('kinesis');
    const names: string[] = [];
    let after: string | undefined;
    for (;;) {
      // ExclusiveStartStreamName pages on AWS and on moto alike (moto has no NextToken here).
      const page = await client.send(new sdk.ListStreamsCommand({ Limit: 100, ExclusiveStartStreamName: after }), this.aws.sendOptions);
      const got = page.StreamNames ?? [];
      names.push(...got);
      if (!page.HasMoreStreams || !got.length) break;
      after = got[got.length - 1];
    }
    const existing = new Set(names);
    const declared = new Map((scope.desired ?? []).map((l) => [this.physical(l), l]));
    // The bare names older versions used, where the scoped name differs.
    const legacy = new Map((scope.desired ?? []).filter((l) => this.physical(l) !== l).map((l) => [l, l]));
    const out: StreamSummary[] = [];
    for (const name of names.sort()) {
      const logical = declared.get(name);
      const old = logical === undefined ? legacy.get(name) : undefined;
      const byName = this.scoped && logical === undefined && old === undefined ? ownershipByName('kinesis-stream', name, this.owner) : undefined;
      if (byName?.verdict === 'not-ours') continue;
      try {
        const tags = await this.tags(name);
        if (old !== undefined) {
          const claim = claimOf(tags, this.owner, Object.keys(tags).length === 0);
          if (claim === 'foreign') continue;
          const retired = existing.has(this.physical(old));
          out.push({ ...(await this.listed(old, name)), ...(retired ? { retired: true as const } : {}), ...(claim === 'legacy' && !retired ? { adopt: ownerTags(this.owner) } : {}) });
        } else if (logical !== undefined) {
          const claim = assertClaimable('Kinesis stream', name, tags, this.owner);
          out.push({ ...(await this.listed(logical, name)), ...(claim === 'legacy' ? { adopt: ownerTags(this.owner) } : {}) });
        } else if (claimOf(tags, this.owner) === 'owned') {
          // A shortened name (the hash hides its logical name) shows under its physical name.
          out.push(await this.listed(byName?.verdict === 'ours' ? byName.logical : name, name));
        }
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e; // deleted since the listing
      }
    }
    return out;
  }

  private async listed(logical: string, physical: string): Promise<StreamSummary> {
    return { ...toSummary(await this.summary(physical)), name: logical, ...(physical !== logical || this.scoped ? { physicalName: physical } : {}) };
  }

  async describe(logical: string): Promise<StreamDescription> {
    const name = this.physical(logical);
    const summary = toSummary(await this.summary(name));
    const shards = await this.listShards(name);
    return { ...summary, name: logical, ...(this.scoped ? { physicalName: name } : {}), shardList: shards.map(toShardInfo) };
  }

  async ensure(config: StreamConfig, opts: { onExists?: () => void } = {}): Promise<'created' | 'updated' | 'unchanged'> {
    const { client, sdk } = await this.aws.get('kinesis');
    const send = this.aws.sendOptions;
    const mode = config.mode ?? 'provisioned';
    const name = this.physical(config.name);
    let current = await this.summary(name).catch((e) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
    if (current?.StreamStatus === 'DELETING') current = await this.waitGone(name);

    let tags = current ? await this.tags(name) : {};
    // Ownership before any write: a stream of someone else is refused; one of an older iotctl is tagged.
    if (current) assertClaimable('Kinesis stream', name, tags, this.owner, !this.scoped && Object.keys(tags).length === 0);
    const want = ownerTags(this.owner);

    // A move from an older iotctl's bare name keeps that stream (its records) and tags it if it had no tags,
    // so that a later `apply --prune` may delete it (the plan listed it, with those tags).
    if (!current && name !== config.name) await this.tagLegacy(config.name);

    if (!current) {
      await client.send(
        new sdk.CreateStreamCommand(
          mode === 'on-demand'
            ? { StreamName: name, StreamModeDetails: { StreamMode: 'ON_DEMAND' }, Tags: want }
            : { StreamName: name, ShardCount: config.shards, Tags: want },
        ),
        send,
      );
      // It exists (CREATING): what only names it (a rule's action) may go ahead while it becomes ACTIVE.
      opts.onExists?.();
      const created = await this.waitActive(name);
      // Not every Kinesis implementation takes Tags at create (moto ignores them): check, and add them.
      tags = await this.tags(name);
      if (Object.entries(want).some(([k, v]) => tags[k] !== v)) await client.send(new sdk.AddTagsToStreamCommand({ StreamName: name, Tags: want }), send);
      // CreateStream has no retention parameter: every stream starts at 24 hours.
      if (created.RetentionPeriodHours !== config.retentionHours) await this.setRetention(name, created.RetentionPeriodHours ?? 24, config.retentionHours);
      return 'created';
    }

    let changed = false;
    current = await this.waitActive(name);
    if (Object.entries(want).some(([k, v]) => tags[k] !== v)) {
      await client.send(new sdk.AddTagsToStreamCommand({ StreamName: name, Tags: want }), send);
      changed = true;
    }
    if (modeOf(current) !== mode) {
      await client.send(new sdk.UpdateStreamModeCommand({ StreamARN: current.StreamARN, StreamModeDetails: { StreamMode: mode === 'on-demand' ? 'ON_DEMAND' : 'PROVISIONED' } }), send);
      current = await this.waitActive(name);
      changed = true;
    }
    if (mode === 'provisioned') {
      let open = current.OpenShardCount ?? 0;
      for (let calls = 0; open !== config.shards; calls++) {
        if (calls === 8) throw new UserError(`Stream "${name}" has ${open} open shards after 8 UpdateShardCount calls, not ${config.shards}.`, 'Check it with `iotctl stream describe`, then apply again.', 'STREAM_RESHARD');
        const step = nextShardCount(open, config.shards);
        await client.send(new sdk.UpdateShardCountCommand({ StreamName: name, TargetShardCount: step, ScalingType: 'UNIFORM_SCALING' }), send);
        current = await this.waitActive(name);
        open = current.OpenShardCount ?? step;
        changed = true;
      }
    }
    if (current.RetentionPeriodHours !== config.retentionHours) {
      await this.setRetention(name, current.RetentionPeriodHours ?? 24, config.retentionHours);
      changed = true;
    }
    return changed ? 'updated' : 'unchanged';
  }

  /**
   * Deletes a stream this project and stage own: `physical` when given (the old name of a moved stream), else
   * the logical name's. Any other stream is refused, never deleted.
   */
  async delete(logical: string, physical?: string): Promise<boolean> {
    const { client, sdk } = await this.aws.get('kinesis');
    const name = physical ?? this.physical(logical);
    try {
      const tags = await this.tags(name);
      assertClaimable('Kinesis stream', name, tags, this.owner);
      await client.send(new sdk.DeleteStreamCommand({ StreamName: name, EnforceConsumerDeletion: false }), this.aws.sendOptions);
      return true;
    } catch (e) {
      if (e instanceof NotFoundError || awsCode(e) === 'ResourceNotFoundException') return false;
      throw e;
    }
  }

  /** Tags the stream an older iotctl left untagged under a bare name (never anyone else's). */
  private async tagLegacy(bare: string): Promise<void> {
    const tags = await this.tags(bare).catch((e) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
    if (!tags || Object.keys(tags).length > 0) return;
    const { client, sdk } = await this.aws.get('kinesis');
    await client.send(new sdk.AddTagsToStreamCommand({ StreamName: bare, Tags: ownerTags(this.owner) }), this.aws.sendOptions);
  }

  private async summary(name: string): Promise<Kinesis.StreamDescriptionSummary> {
    const { client, sdk } = await this.aws.get('kinesis');
    try {
      const out = await client.send(new sdk.DescribeStreamSummaryCommand({ StreamName: name }), this.aws.sendOptions);
      return out.StreamDescriptionSummary!;
    } catch (e) {
      throw notFound(e, name);
    }
  }

  /** The stream's tags (ListTagsForStream pages by ExclusiveStartTagKey). */
  private async tags(name: string): Promise<Record<string, string>> {
    const { client, sdk } = await this.aws.get('kinesis');
    const tags: Record<string, string> = {};
    let after: string | undefined;
    for (;;) {
      let page;
      try {
        page = await client.send(new sdk.ListTagsForStreamCommand({ StreamName: name, ExclusiveStartTagKey: after }), this.aws.sendOptions);
      } catch (e) {
        throw notFound(e, name);
      }
      for (const t of page.Tags ?? []) tags[t.Key!] = t.Value ?? '';
      if (!page.HasMoreTags || !page.Tags?.length) return tags;
      after = page.Tags[page.Tags.length - 1]!.Key;
    }
  }

  private async setRetention(name: string, from: number, to: number): Promise<void> {
    const { client, sdk } = await this.aws.get('kinesis');
    const input = { StreamName: name, RetentionPeriodHours: to };
    await client.send(to > from ? new sdk.IncreaseStreamRetentionPeriodCommand(input) : new sdk.DecreaseStreamRetentionPeriodCommand(input), this.aws.sendOptions);
    await this.waitActive(name);
  }

  /** Polls DescribeStreamSummary with a growing delay until ACTIVE, within waitTimeoutMs. */
  private async waitActive(name: string): Promise<Kinesis.StreamDescriptionSummary> {
    return waitUntil(
      () => this.summary(name),
      (s) => {
        if (s.StreamStatus === 'DELETING') throw new NotFoundError('stream', name);
        return s.StreamStatus === 'ACTIVE';
      },
      // Polled every 2 s at most (DescribeStreamSummary allows 20 per second): what waits on it starts soon after.
      { ...this.waits(`stream ${name} to be ACTIVE`), delayMs: this.opts.waitPollMs / 4, maxDelayMs: Math.max(this.opts.waitPollMs / 4, 2_000), state: (s) => s.StreamStatus ?? 'not ACTIVE', onTimeout: (s) => stillBusy(name, s.StreamStatus, this.opts.waitTimeoutMs) },
    );
  }

  /** A stream being deleted cannot be created again until it is gone. */
  private async waitGone(name: string): Promise<undefined> {
    await waitUntil(
      () => this.summary(name).catch((e) => (e instanceof NotFoundError ? undefined : Promise.reject(e))),
      (s) => s === undefined,
      { ...this.waits(`stream ${name} to be deleted`), delayMs: this.opts.waitPollMs, state: (s) => s?.StreamStatus ?? 'gone', onTimeout: (s) => stillBusy(name, s?.StreamStatus, this.opts.waitTimeoutMs) },
    );
    return undefined;
  }

  private waits(what: string): WaitOptions {
    return { service: 'kinesis', operation: 'DescribeStreamSummary', what, signal: this.aws.settings.signal, timeoutMs: this.opts.waitTimeoutMs, maxDelayMs: this.opts.waitPollMs * 4 };
  }

  private async listShards(name: string, signal?: AbortSignal): Promise<Kinesis.Shard[]> {
    const { client, sdk } = await this.aws.get('kinesis');
    const shards: Kinesis.Shard[] = [];
    let token: string | undefined;
    do {
      // With NextToken, AWS refuses StreamName.
      const input = token ? { NextToken: token } : { StreamName: name };
      try {
        const page = await client.send(new sdk.ListShardsCommand(input), sendOptions(this.aws, signal));
        shards.push(...(page.Shards ?? []));
        token = page.NextToken;
      } catch (e) {
        throw notFound(e, name);
      }
    } while (token);
    return shards;
  }

  // ------------------------------------------------------------ tail

  tail(logical: string, opts: TailOptions): AsyncIterable<TailRecord> {
    return this.tailRecords(this.physical(logical), logical, opts);
  }

  /** `name` is the stream on AWS; records carry `label`, the name the caller gave. */
  private async *tailRecords(name: string, label: string, opts: TailOptions): AsyncGenerator<TailRecord> {
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, ...[opts.signal, this.aws.settings.signal].filter((s): s is AbortSignal => !!s)]);
    const out = new Channel<TailRecord>(this.opts.highWater, signal);
    let shards: Kinesis.Shard[];
    let startOf: (shardId: string) => Position;
    try {
      shards = await this.listShards(name, signal);
      startOf = await this.startPositions(name, shards, opts.from, signal);
    } catch (e) {
      if (signal.aborted) return; // Ctrl-C before the first record
      throw e;
    }
    const initial = initialShards(shards, opts.from);
    let listed = new Set(shards.map((s) => s.ShardId!));
    const started = new Set<string>();
    // From `latest`, shards already closed are behind the start: as good as read.
    const done = new Set(opts.from.kind === 'latest' ? shards.filter((s) => s.SequenceNumberRange?.EndingSequenceNumber).map((s) => s.ShardId!) : []);
    const readers = new Set<Promise<void>>();
    // `iotctl check` publishes once every shard open now has its LATEST iterator (taken before the publish).
    let unready = initial.length;
    const ready = () => {
      if (--unready === 0) opts.onStarted?.();
    };
    if (!unready) opts.onStarted?.();

    // A child waits until every parent is read to its end, so a key's records come out in order across a
    // reshard. A parent missing from ListShards has expired (nothing left to read); one listed but not yet
    // started is a descendant of a shard being read, and starts in its turn.
    const afterShard = async (shardId: string, children: Child[]) => {
      done.add(shardId);
      if (children.some((c) => c.parents.some((p) => !done.has(p) && !started.has(p) && !listed.has(p))))
        listed = new Set((await this.listShards(name, signal)).map((s) => s.ShardId!));
      for (const c of children) if (c.parents.every((p) => done.has(p) || (!started.has(p) && !listed.has(p)))) start(c.shardId);
    };
    const start = (shardId: string) => {
      if (started.has(shardId) || signal.aborted) return;
      started.add(shardId);
      const first = initial.includes(shardId) ? ready : undefined;
      const reader = this.readShard(name, shardId, startOf(shardId), opts, out, signal, first)
        .then((children) => afterShard(shardId, children))
        .catch((e) => (signal.aborted ? undefined : out.fail(e)));
      readers.add(reader);
      void reader.finally(() => {
        readers.delete(reader);
        if (!readers.size) out.end(); // every shard closed and read: the stream was deleted
      });
    };
    for (const s of initial) start(s);
    if (!readers.size) out.end();

    try {
      for (;;) {
        const next = await out.next();
        if (next.done) return;
        yield name === label ? next.value : { ...next.value, stream: label };
      }
    } finally {
      stop.abort();
      await Promise.allSettled([...readers]);
    }
  }

  /** Where each shard starts; children found later start where the spec says too. */
  private async startPositions(name: string, shards: Kinesis.Shard[], from: TailStart, signal: AbortSignal): Promise<(shardId: string) => Position> {
    const open = new Set(shards.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber).map((s) => s.ShardId!));
    switch (from.kind) {
      case 'latest':
        // Shards open now start at their tip; their future children from the beginning.
        return (id) => (open.has(id) ? { type: 'LATEST' } : { type: 'TRIM_HORIZON' });
      case 'trim-horizon':
        return () => ({ type: 'TRIM_HORIZON' });
      case 'timestamp':
        return () => ({ type: 'AT_TIMESTAMP', timestamp: new Date(from.at) });
      case 'sequence': {
        // That record's shard starts at it; the other shards start at its arrival time.
        const home = await this.findSequence(name, shards, from.sequenceNumber, signal);
        return (id) => (id === home.shardId ? { type: 'AT_SEQUENCE_NUMBER', sequenceNumber: from.sequenceNumber } : { type: 'AT_TIMESTAMP', timestamp: home.at });
      }
    }
  }

  private async findSequence(name: string, shards: Kinesis.Shard[], sequenceNumber: string, signal: AbortSignal): Promise<{ shardId: string; at: Date }> {
    const { client, sdk } = await this.aws.get('kinesis');
    for (const shard of shards) {
      let it: string | undefined;
      try {
        it = await this.iterator(name, shard.ShardId!, { type: 'AT_SEQUENCE_NUMBER', sequenceNumber }, signal);
      } catch (e) {
        // AWS refuses a sequence number that another shard issued.
        if (awsCode(e) === 'InvalidArgumentException') continue;
        throw e;
      }
      const res = await client.send(new sdk.GetRecordsCommand({ ShardIterator: it, Limit: 1 }), sendOptions(this.aws, signal));
      const first = res.Records?.[0];
      if (first?.SequenceNumber === sequenceNumber) return { shardId: shard.ShardId!, at: first.ApproximateArrivalTimestamp ?? new Date() };
    }
    throw new UserError(`record ${sequenceNumber} is not in stream "${name}" (it may have expired)`, 'Check --from: `iotctl stream describe` shows the sequence numbers the stream holds.', 'STREAM_ARGUMENT');
  }

  private async iterator(name: string, shardId: string, pos: Position, signal: AbortSignal): Promise<string> {
    const { client, sdk } = await this.aws.get('kinesis');
    const input = { StreamName: name, ShardId: shardId, ShardIteratorType: pos.type, StartingSequenceNumber: pos.sequenceNumber, Timestamp: pos.timestamp };
    for (let attempt = 1; ; attempt++) {
      try {
        const out = await client.send(new sdk.GetShardIteratorCommand(input), sendOptions(this.aws, signal));
        return out.ShardIterator!;
      } catch (e) {
        // GetShardIterator shares the 5-per-second shard limit.
        if (awsCode(e) !== 'ProvisionedThroughputExceededException' || signal.aborted) throw notFound(e, name);
        await pause(this.backoff(attempt), signal);
      }
    }
  }

  /** One shard's read loop until it closes (returns its children) or the signal aborts. */
  private async readShard(name: string, shardId: string, startAt: Position, opts: TailOptions, out: Channel<TailRecord>, signal: AbortSignal, onIterator?: () => void): Promise<Child[]> {
    const { client, sdk } = await this.aws.get('kinesis');
    let iterator: string | undefined;
    let last: string | undefined;
    let throttled = 0;
    let nextCallAt = 0;
    try {
      try {
        iterator = await this.iterator(name, shardId, startAt, signal);
      } finally {
        onIterator?.();
      }
      while (!signal.aborted) {
        await pause(nextCallAt - Date.now(), signal);
        if (signal.aborted) break;
        const calledAt = Date.now();
        nextCallAt = calledAt + this.opts.minPollMs;
        let res: Kinesis.GetRecordsOutput;
        try {
          res = await client.send(new sdk.GetRecordsCommand({ ShardIterator: iterator }), sendOptions(this.aws, signal));
          throttled = 0;
        } catch (e) {
          if (signal.aborted) break;
          const code = awsCode(e);
          if (code === 'ProvisionedThroughputExceededException') {
            // The iterator is still good: retry it later.
            nextCallAt = Date.now() + this.backoff(++throttled);
            continue;
          }
          if (code === 'ExpiredIteratorException') {
            // Iterators live 5 minutes (a consumer paused that long): resume after the last record seen.
            iterator = await this.iterator(name, shardId, last ? { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: last } : startAt, signal);
            continue;
          }
          throw notFound(e, name);
        }
        const records = res.Records ?? [];
        const batch: TailRecord[] = [];
        for (const r of records) {
          last = r.SequenceNumber;
          const raw = Buffer.from(r.Data ?? new Uint8Array());
          const decoded = decodePayload(raw);
          if (opts.filter && !matchesFilter({ partitionKey: r.PartitionKey ?? '', ...decoded, raw }, opts.filter)) continue;
          batch.push({
            stream: name,
            shardId,
            sequenceNumber: r.SequenceNumber!,
            partitionKey: r.PartitionKey ?? '',
            approximateArrivalTimestamp: (r.ApproximateArrivalTimestamp ?? new Date()).toISOString(),
            ...decoded,
          });
        }
        if (batch.length) await out.push(batch);
        // No next iterator: the shard was closed by a reshard and is read to its end.
        if (!res.NextShardIterator) return res.ChildShards ? res.ChildShards.map((c) => ({ shardId: c.ShardId!, parents: c.ParentShards ?? [shardId] })) : await this.childrenOf(name, shardId, signal);
        iterator = res.NextShardIterator;
        // At the tip, poll less often; behind it, as fast as the shard limit allows.
        if (!records.length || res.MillisBehindLatest === 0) nextCallAt = calledAt + this.opts.idlePollMs;
      }
    } catch (e) {
      if (signal.aborted) return [];
      throw e;
    }
    return [];
  }

  /** Children from ListShards, for a response without ChildShards. */
  private async childrenOf(name: string, shardId: string, signal: AbortSignal): Promise<Child[]> {
    const shards = await this.listShards(name, signal);
    return shards
      .filter((s) => s.ParentShardId === shardId || s.AdjacentParentShardId === shardId)
      .map((s) => ({ shardId: s.ShardId!, parents: [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => !!p) }));
  }

  /** Exponential with jitter (half fixed, half random), capped. */
  private backoff(attempt: number): number {
    const ceiling = Math.min(this.opts.backoffCapMs, this.opts.backoffBaseMs * 2 ** (attempt - 1));
    return Math.max(this.opts.minPollMs, ceiling / 2 + (Math.random() * ceiling) / 2);
  }
}

// ------------------------------------------------------------ helpers

/** The next UpdateShardCount target on the way to `target`: AWS allows at most doubling or halving per call. */
export function nextShardCount(open: number, target: number): number {
  if (open <= 0) return target;
  return Math.min(open * 2, Math.max(Math.ceil(open / 2), target));
}

/** Shards to read first: the open ones for `latest`; otherwise the oldest of each lineage still held. */
function initialShards(shards: Kinesis.Shard[], from: TailStart): string[] {
  if (from.kind === 'latest') return shards.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber).map((s) => s.ShardId!);
  const ids = new Set(shards.map((s) => s.ShardId!));
  return shards.filter((s) => ![s.ParentShardId, s.AdjacentParentShardId].some((p) => p && ids.has(p))).map((s) => s.ShardId!);
}

function modeOf(s: Kinesis.StreamDescriptionSummary): 'provisioned' | 'on-demand' {
  return s.StreamModeDetails?.StreamMode === 'ON_DEMAND' ? 'on-demand' : 'provisioned';
}

function toSummary(s: Kinesis.StreamDescriptionSummary): StreamSummary {
  return {
    name: s.StreamName!,
    arn: s.StreamARN!,
    status: s.StreamStatus ?? 'UNKNOWN',
    shards: s.OpenShardCount ?? 0,
    retentionHours: s.RetentionPeriodHours ?? 24,
    mode: modeOf(s),
    createdAt: (s.StreamCreationTimestamp ?? new Date(0)).toISOString(),
  };
}

function toShardInfo(s: Kinesis.Shard): ShardInfo {
  const ending = s.SequenceNumberRange?.EndingSequenceNumber ?? null;
  return {
    shardId: s.ShardId!,
    ...(s.ParentShardId ? { parentShardId: s.ParentShardId } : {}),
    ...(s.AdjacentParentShardId ? { adjacentParentShardId: s.AdjacentParentShardId } : {}),
    hashKeyRange: { startingHashKey: s.HashKeyRange?.StartingHashKey ?? '', endingHashKey: s.HashKeyRange?.EndingHashKey ?? '' },
    sequenceNumberRange: { startingSequenceNumber: s.SequenceNumberRange?.StartingSequenceNumber ?? null, endingSequenceNumber: ending },
    open: ending === null,
  };
}

/** AWS's error code: AwsClients translates failures; a client without that middleware (a test double) throws the SDK's own. */
function awsCode(e: unknown): string | undefined {
  if (isAwsError(e)) return e.awsCode;
  return (e as { name?: string } | undefined)?.name;
}

function notFound(e: unknown, name: string): unknown {
  return awsCode(e) === 'ResourceNotFoundException' ? new NotFoundError('stream', name) : e;
}

function stillBusy(name: string, status: string | undefined, ms: number): UserError {
  return new UserError(
    `Stream "${name}" is still ${status ?? 'not ACTIVE'} after ${Math.round(ms / 1000)} s.`,
    'AWS is still working on it; run the command again in a few minutes (`iotctl stream describe` shows its status).',
    'STREAM_NOT_ACTIVE',
  );
}

function sendOptions(aws: AwsClients, signal?: AbortSignal): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : aws.sendOptions;
}

/**
 * Shard readers push, the tail pulls. Past `highWater` buffered records the readers wait, so a slow consumer
 * slows the polling instead of filling memory. An abort ends it; a reader's failure reaches the consumer.
 */
class Channel<T> {
  private readonly items: T[] = [];
  private ended = false;
  private error: unknown;
  private wakeConsumer?: () => void;
  private readonly wakeProducers: Array<() => void> = [];

  constructor(
    private readonly highWater: number,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', () => this.end(), { once: true });
  }

  async push(batch: T[]): Promise<void> {
    if (this.ended) return;
    this.items.push(...batch);
    this.wake();
    while (this.items.length > this.highWater && !this.ended) await new Promise<void>((r) => this.wakeProducers.push(r));
  }

  end(): void {
    this.ended = true;
    this.wake();
    for (const w of this.wakeProducers.splice(0)) w();
  }

  fail(error: unknown): void {
    this.error ??= error;
    this.end();
  }

  async next(): Promise<IteratorResult<T, undefined>> {
    for (;;) {
      if (this.error !== undefined) throw this.error;
      if (this.signal.aborted) return { done: true, value: undefined };
      if (this.items.length) {
        const value = this.items.shift()!;
        if (this.items.length <= this.highWater) for (const w of this.wakeProducers.splice(0)) w();
        return { done: false, value };
      }
      if (this.ended) return { done: true, value: undefined };
      await new Promise<void>((r) => (this.wakeConsumer = r));
    }
  }

  private wake(): void {
    const w = this.wakeConsumer;
    this.wakeConsumer = undefined;
    w?.();
  }
}
