import type { TailFilter, TailStart } from '../../ports.js';

/**
 * What following a stream means on any target, pure: parsing --from, decoding a record's payload, and the
 * filters. The local and aws stream adapters both tail with these, so the output and filters match.
 */

/** Kinesis InvalidArgumentException: a bad sequence number, iterator type, partition key or record. */
export class StreamArgumentError extends Error {
  override name = 'InvalidArgumentException';
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

export function decodePayload(data: Uint8Array): { data: unknown; json: boolean } {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const text = buf.toString('utf8');
  if (/^\s*[[{"\d\-tfn]/.test(text)) {
    try {
      return { data: JSON.parse(text), json: true };
    } catch {
      // not JSON
    }
  }
  return { data: buf.toString('base64'), json: false };
}

export function matchesFilter(r: { partitionKey: string; data: unknown; json: boolean; raw: Uint8Array }, f: TailFilter): boolean {
  if (f.partitionKey !== undefined && r.partitionKey !== f.partitionKey) return false;
  if (f.device !== undefined) {
    const id = r.json && r.data && typeof r.data === 'object' ? (r.data as Record<string, unknown>).device_id : undefined;
    if (r.partitionKey !== f.device && id !== f.device) return false;
  }
  if (f.where && !f.where(r.json ? r.data : r.raw)) return false;
  return true;
}

/** Records polled from several shards at once, in arrival order (ties by shard, then sequence number). */
export function byArrival(a: { at: number; shardId: string; sequenceNumber: string }, b: { at: number; shardId: string; sequenceNumber: string }): number {
  return a.at - b.at || (a.shardId === b.shardId ? (a.sequenceNumber < b.sequenceNumber ? -1 : 1) : a.shardId < b.shardId ? -1 : 1);
}
