import { ExpiredIteratorError, parseSequenceNumber, shardIdOf, StreamArgumentError, type LocalStreams, type ShardIteratorType } from '../stream.js';

/**
 * Following a stream: every shard at once, each polled with GetRecords from its own iterator, records merged in
 * arrival order per poll and filtered. Works on a store another process writes (the CLI beside the daemon).
 */

export type TailStart = { kind: 'latest' } | { kind: 'trim-horizon' } | { kind: 'timestamp'; at: number } | { kind: 'sequence'; sequenceNumber: string };

export interface TailRecord {
  stream: string;
  shardId: string;
  sequenceNumber: string;
  partitionKey: string;
  /** ISO 8601 */
  approximateArrivalTimestamp: string;
  /** The decoded JSON payload, or the payload in base64 when it is not JSON. */
  data: unknown;
  /** Whether `data` is decoded JSON (false: base64). */
  json: boolean;
}

export interface TailFilter {
  partitionKey?: string;
  /** Matches a partition key equal to the device, or a payload whose device_id is the device. */
  device?: string;
  /** True to keep the record; gets the decoded JSON payload (or the raw bytes when it is not JSON). */
  where?: (doc: unknown) => boolean;
}

export interface TailOptions {
  from: TailStart;
  filter?: TailFilter;
  /** How often each shard is polled when there is nothing new. */
  pollIntervalMs?: number;
  signal?: AbortSignal;
}

/** Parse --from: latest, trim-horizon, an ISO time, or a sequence number. */
export function parseTailStart(value: string | undefined): TailStart {
  if (!value || value === 'latest') return { kind: 'latest' };
  if (value === 'trim-horizon') return { kind: 'trim-horizon' };
  if (/^\d{56}$/.test(value)) return { kind: 'sequence', sequenceNumber: value };
  const at = Date.parse(value);
  if (/^\d{4}-\d\d-\d\d/.test(value) && Number.isFinite(at)) return { kind: 'timestamp', at };
  throw new StreamArgumentError(`--from "${value}" is not latest, trim-horizon, an ISO time (2030-01-31T12:00:00Z) or a 56-digit sequence number`);
}

export function decodePayload(data: Buffer): { data: unknown; json: boolean } {
  const text = data.toString('utf8');
  if (/^\s*[[{"\d\-tfn]/.test(text)) {
    try {
      return { data: JSON.parse(text), json: true };
    } catch {
      // not JSON
    }
  }
  return { data: data.toString('base64'), json: false };
}

export function matchesFilter(r: { partitionKey: string; data: unknown; json: boolean; raw: Buffer }, f: TailFilter): boolean {
  if (f.partitionKey !== undefined && r.partitionKey !== f.partitionKey) return false;
  if (f.device !== undefined) {
    const id = r.json && r.data && typeof r.data === 'object' ? (r.data as Record<string, unknown>).device_id : undefined;
    if (r.partitionKey !== f.device && id !== f.device) return false;
  }
  if (f.where && !f.where(r.json ? r.data : r.raw)) return false;
  return true;
}

/** Every shard's first iterator for the start position. */
function startIterators(streams: LocalStreams, stream: string, from: TailStart): Map<string, string> {
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
    batch.sort((a, b) => a.at - b.at || (a.shardId === b.shardId ? (a.sequenceNumber < b.sequenceNumber ? -1 : 1) : a.shardId < b.shardId ? -1 : 1));
    for (const { at: _at, ...record } of batch) {
      if (opts.signal?.aborted) return;
      yield record;
    }
    // Catching up (records came back) polls again at once; at the tip it waits.
    if (!fetched) await sleep(pollMs, opts.signal);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
