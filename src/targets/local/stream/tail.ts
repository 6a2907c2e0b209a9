import type { TailOptions as PortTailOptions, TailRecord } from '../../../ports.js';
import { byArrival, decodePayload, matchesFilter, StreamArgumentError } from '../../../iot/stream/tail.js';
import { ExpiredIteratorError, parseSequenceNumber, shardIdOf, type LocalStreams, type ShardIteratorType } from '../stream.js';
import { pause } from '../../pause.js';

/**
 * Following a local stream: every shard at once, each polled with GetRecords from its own iterator, records merged
 * in arrival order per poll and filtered. Works on a store another process writes (the CLI beside the daemon).
 */

// The target-neutral parts live in iot/stream/tail.ts; re-exported for the local code and tests that use them here.
export { decodePayload, matchesFilter, parseTailStart } from '../../../iot/stream/tail.js';
export type { TailFilter, TailRecord, TailStart } from '../../../ports.js';

export interface TailOptions extends PortTailOptions {
  /** How often each shard is polled when there is nothing new. */
  pollIntervalMs?: number;
}

/** Every shard's first iterator for the start position. */
function startIterators(streams: LocalStreams, stream: string, from: PortTailOptions['from']): Map<string, string> {
  const shards = streams.listShards(stream);
  const its = new Map<string, string>();
  if (from.kind === 'sequence') {
    // That record's shard starts at it; the other shards start at its arrival time.
    const seq = parseSequenceNumber(from.sequenceNumber);
    const home = shardIdOf(seq.shardIndex);
    if (!shards.includes(home)) throw new StreamArgumentError(`sequence number ${from.sequenceNumber} is not from stream "${stream}"`);
    const first = streams.getRecords(streams.getShardIterator(stream, home, 'AT_SEQUENCE_NUMBER', { sequenceNumber: from.sequenceNumber }), 1).records[0];
    if (!first || first.sequenceNumber !== from.sequenceNumber)
      throw new StreamArgumentError(`record ${from.sequenceNumber} is not in stream "${stream}" (it may have expired)`);
    for (const shardId of shards)
      its.set(
        shardId,
        shardId === home
          ? streams.getShardIterator(stream, shardId, 'AT_SEQUENCE_NUMBER', { sequenceNumber: from.sequenceNumber })
          : streams.getShardIterator(stream, shardId, 'AT_TIMESTAMP', { timestamp: first.approximateArrivalTimestamp }),
      );
    return its;
  }
  const type: ShardIteratorType = from.kind === 'latest' ? 'LATEST' : from.kind === 'trim-horizon' ? 'TRIM_HORIZON' : 'AT_TIMESTAMP';
  for (const shardId of shards) its.set(shardId, streams.getShardIterator(stream, shardId, type, from.kind === 'timestamp' ? { timestamp: from.at } : {}));
  return its;
}

/** Yields matching records until the signal aborts. Each poll's records come out in arrival order. */
export async function* tailStream(streams: LocalStreams, stream: string, opts: TailOptions): AsyncGenerator<TailRecord> {
  const iterators = startIterators(streams, stream, opts.from);
  opts.onStarted?.();
  const lastSeen = new Map<string, string>();
  const pollMs = opts.pollIntervalMs ?? 200;
  while (!opts.signal?.aborted) {
    const batch: Array<TailRecord & { at: number }> = [];
    let fetched = 0;
    for (const [shardId, iterator] of iterators) {
      let res;
      try {
        res = streams.getRecords(iterator, 1000);
      } catch (err) {
        // A reader paused past the 5-minute iterator lifetime picks up after the last record it saw.
        if (!(err instanceof ExpiredIteratorError)) throw err;
        const last = lastSeen.get(shardId);
        iterators.set(shardId, last ? streams.getShardIterator(stream, shardId, 'AFTER_SEQUENCE_NUMBER', { sequenceNumber: last }) : streams.getShardIterator(stream, shardId, 'LATEST'));
        continue;
      }
      iterators.set(shardId, res.nextShardIterator);
      fetched += res.records.length;
      for (const r of res.records) {
        lastSeen.set(shardId, r.sequenceNumber);
        const decoded = decodePayload(r.data);
        if (opts.filter && !matchesFilter({ partitionKey: r.partitionKey, ...decoded, raw: r.data }, opts.filter)) continue;
        batch.push({
          stream,
          shardId,
          sequenceNumber: r.sequenceNumber,
          partitionKey: r.partitionKey,
          approximateArrivalTimestamp: new Date(r.approximateArrivalTimestamp).toISOString(),
          ...decoded,
          at: r.approximateArrivalTimestamp,
        });
      }
    }
    batch.sort(byArrival);
    for (const { at: _at, ...record } of batch) {
      if (opts.signal?.aborted) return;
      yield record;
    }
    // Catching up (records came back) polls again at once; at the tip it waits.
    if (!fetched) await pause(pollMs, opts.signal);
  }
}
