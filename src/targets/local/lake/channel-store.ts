import { isUtf8 } from 'node:buffer';
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { Db } from '../store.js';
import { DestinationNotFoundError, type ChannelMessage, type ChannelSink } from '../sinks.js';
import { DAY_MS, DayCache, LakePaths, utcDay } from './paths.js';
import { ensureLakeTables } from './tables.js';

/** A point in a channel: segment, byte offset in it, and the channel-wide index of the next message. */
export interface ChannelPosition {
  seq: number;
  offset: number;
  index: number;
}

/** A raw message as the channel keeps it. `payload` is the text, or base64 when the bytes were not UTF-8. */
export interface StoredMessage {
  messageId: string;
  receivedAt: number;
  payload: string;
  encoding: 'utf8' | 'base64';
}

export interface ChannelStats {
  channel: string;
  messages: number;
  bytes: number;
  segments: number;
  duplicatesDropped: number;
  oldestReceivedAt: number | null;
  newestReceivedAt: number | null;
}

export interface ChannelStoreOptions {
  db: Db;
  stateDir: string;
  /** Start a new segment file once the open one reaches this size. */
  segmentBytes?: number;
  /** How long message ids are remembered to drop replays (a crash replays only the last few seconds). */
  dedupeDays?: number;
  /** fsync appends before acknowledging them (on by default; tests of throughput may turn it off). */
  fsync?: boolean;
}

interface OpenSegment {
  seq: number;
  day: string;
  file: string;
  bytes: number;
  messages: number;
  firstIndex: number;
  minReceived: number | null;
  maxReceived: number | null;
  handle?: FileHandle;
}

interface Pending {
  messages: ChannelMessage[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

interface ChannelWriter {
  pending: Pending[];
  running: boolean;
  open?: OpenSegment;
  nextIndex: number;
  nextSeq: number;
}

/**
 * Channel storage: raw messages exactly as received, appended to NDJSON segments under
 * `lake/raw/<channel>/dt=YYYY-MM-DD/seg-<seq>.ndjson` (one line per message: message_id, received_at in
 * epoch ms, payload text, and payload_encoding "base64" for non-UTF-8 bytes), so DuckDB reads a channel as
 * a table.
 *
 * Appends are group-committed per channel: batches arriving while a write is in flight share the next
 * write and fsync. Bytes become part of the channel only when `lake_channel_segments.committed_bytes`
 * covers them, in the same SQLite transaction that records their message ids; on open, anything past the
 * committed length (a crash between write and commit) is truncated. The id index makes replays harmless:
 * a message id already in the channel is dropped, so the channel holds each message once.
 */
export class ChannelStore implements ChannelSink {
  readonly paths: LakePaths;
  private readonly db: Db;
  private readonly segmentBytes: number;
  private readonly dedupeDays: number;
  private readonly fsync: boolean;
  private readonly writers = new Map<string, ChannelWriter>();
  private readonly listeners = new Set<(channel: string) => void>();
  private readonly stmt;

  constructor(opts: ChannelStoreOptions) {
    this.db = opts.db;
    this.paths = new LakePaths(opts.stateDir);
    this.segmentBytes = opts.segmentBytes ?? 64 * 1024 * 1024;
    this.dedupeDays = opts.dedupeDays ?? 2;
    this.fsync = opts.fsync ?? true;
    ensureLakeTables(this.db);
    this.stmt = {
      channelExists: this.db.prepare(`SELECT 1 FROM lake_resources WHERE kind = 'channel' AND name = ?`).pluck(),
      seen: this.db.prepare(`SELECT 1 FROM lake_channel_ids WHERE channel = ? AND message_id = ?`).pluck(),
      remember: this.db.prepare(`INSERT OR IGNORE INTO lake_channel_ids (channel, message_id, day) VALUES (?, ?, ?)`),
      upsertSegment: this.db.prepare(
        `INSERT INTO lake_channel_segments (channel, seq, day, file, committed_bytes, messages, first_index, min_received, max_received)
         VALUES (@channel, @seq, @day, @file, @bytes, @messages, @firstIndex, @minReceived, @maxReceived)
         ON CONFLICT (channel, seq) DO UPDATE SET committed_bytes = excluded.committed_bytes, messages = excluded.messages,
           min_received = excluded.min_received, max_received = excluded.max_received`,
      ),
      upsertStats: this.db.prepare(
        `INSERT INTO lake_channel_stats (channel, next_index, duplicates) VALUES (?, ?, ?)
         ON CONFLICT (channel) DO UPDATE SET next_index = excluded.next_index, duplicates = duplicates + excluded.duplicates`,
      ),
      segments: this.db.prepare(`SELECT seq, file, committed_bytes AS bytes, first_index AS firstIndex, messages FROM lake_channel_segments WHERE channel = ? AND seq >= ? ORDER BY seq`),
      lastSegment: this.db.prepare(`SELECT * FROM lake_channel_segments WHERE channel = ? ORDER BY seq DESC LIMIT 1`),
      stats: this.db.prepare(`SELECT next_index AS nextIndex, duplicates FROM lake_channel_stats WHERE channel = ?`),
    };
  }

  /**
   * Crash recovery: cut segments back to their committed length and delete files no row describes.
   * Segments this process is appending to are left alone (their torn tails are cut when reopened).
   */
  recover(): { truncated: number; removed: number } {
    let truncated = 0;
    let removed = 0;
    const rows = this.db.prepare(`SELECT channel, file, committed_bytes AS bytes FROM lake_channel_segments`).all() as { channel: string; file: string; bytes: number }[];
    const inUse = new Set([...this.writers.values()].map((w) => w.open?.file).filter((f): f is string => f !== undefined));
    const known = new Set([...rows.map((r) => r.file), ...inUse]);
    for (const r of rows) {
      const path = join(this.paths.root, r.file);
      if (inUse.has(r.file) || !existsSync(path)) continue;
      if (statSync(path).size > r.bytes) {
        const fd = openSync(path, 'r+');
        try {
          ftruncateSync(fd, r.bytes);
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
        truncated++;
      }
    }
    const rawRoot = join(this.paths.root, 'raw');
    if (existsSync(rawRoot)) {
      for (const channel of readdirSync(rawRoot)) {
        for (const dayDir of safeReaddir(join(rawRoot, channel))) {
          for (const name of safeReaddir(join(rawRoot, channel, dayDir))) {
            const rel = relative(this.paths.root, join(rawRoot, channel, dayDir, name));
            if (!known.has(rel)) {
              rmSync(join(this.paths.root, rel), { force: true });
              removed++;
            }
          }
        }
      }
    }
    return { truncated, removed };
  }

  /** Called after each commit with the channel name: the pipeline runner wakes up instead of polling. */
  onAppend(listener: (channel: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  channelExists(channel: string): boolean {
    return this.stmt.channelExists.get(channel) !== undefined;
  }

  async putMessages(channel: string, messages: ChannelMessage[]): Promise<void> {
    if (!this.channelExists(channel)) throw new DestinationNotFoundError('channel', channel);
    if (!messages.length) return;
    const writer = this.writer(channel);
    await new Promise<void>((resolve, reject) => {
      writer.pending.push({ messages, resolve, reject });
      if (!writer.running) void this.drain(channel, writer);
    });
  }

  /** The position after the last committed message: where a pipeline created now starts. */
  end(channel: string): ChannelPosition {
    return channelEnd(this.db, channel);
  }

  /**
   * Reads committed messages after `from`, up to `maxMessages`. Segments removed by retention are
   * skipped. Returns the messages, each one's position after it, and the position to continue from.
   */
  async read(
    channel: string,
    from: ChannelPosition,
    opts: { maxMessages?: number; maxBytes?: number; /** Do not read past this segment. */ untilSeq?: number } = {},
  ): Promise<{ messages: StoredMessage[]; next: ChannelPosition }> {
    const maxMessages = opts.maxMessages ?? 10_000;
    const maxBytes = opts.maxBytes ?? 8 * 1024 * 1024;
    const messages: StoredMessage[] = [];
    let seq = from.seq;
    let offset = from.offset;
    let index = from.index;
    const segments = this.stmt.segments.all(channel, from.seq) as { seq: number; file: string; bytes: number; firstIndex: number; messages: number }[];
    for (const seg of segments) {
      if (opts.untilSeq !== undefined && seg.seq > opts.untilSeq) break;
      if (seg.seq !== seq) [seq, offset, index] = [seg.seq, 0, seg.firstIndex];
      if (offset >= seg.bytes) continue;
      let handle: FileHandle;
      try {
        handle = await open(join(this.paths.root, seg.file), 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed by retention meanwhile
        throw e;
      }
      // Read about what the wanted messages take (from the segment's average line), not maxBytes every time.
      const lineBytes = seg.messages ? seg.bytes / seg.messages : 1024;
      try {
        while (offset < seg.bytes && messages.length < maxMessages) {
          const want = Math.ceil((maxMessages - messages.length) * lineBytes * 1.1) + 4096;
          const length = Math.min(maxBytes, seg.bytes - offset, Math.max(65_536, want));
          const buf = Buffer.allocUnsafe(length);
          const { bytesRead } = await handle.read(buf, 0, length, offset);
          const end = buf.lastIndexOf(10, bytesRead - 1);
          if (end < 0) {
            // One line longer than the read: read exactly up to its newline.
            const line = await readLine(handle, offset, seg.bytes);
            messages.push(parseLine(line.text));
            offset += line.bytes;
            index++;
            continue;
          }
          // Whole lines, up to the number still wanted, parsed as one JSON array: one JSON.parse call per
          // chunk instead of one per line is over twice as fast (lines never contain raw newlines).
          let cut = 0;
          let n = 0;
          while (cut <= end && messages.length + n < maxMessages) {
            cut = buf.indexOf(10, cut) + 1;
            n++;
          }
          for (const m of parseLines(buf, cut)) messages.push(m);
          offset += cut;
          index += n;
        }
      } finally {
        await handle.close();
      }
      if (messages.length >= maxMessages) break;
    }
    const next = { seq, offset, index };
    return { messages, next };
  }

  /** Messages committed after `from` (the lag of a pipeline whose checkpoint is `from`). */
  countAfter(channel: string, from: ChannelPosition): number {
    const end = this.end(channel);
    return Math.max(0, end.index - from.index);
  }

  stats(channel: string): ChannelStats {
    const agg = this.db
      .prepare(`SELECT count(*) AS segments, coalesce(sum(messages), 0) AS messages, coalesce(sum(committed_bytes), 0) AS bytes, min(min_received) AS oldest, max(max_received) AS newest FROM lake_channel_segments WHERE channel = ?`)
      .get(channel) as { segments: number; messages: number; bytes: number; oldest: number | null; newest: number | null };
    const stats = this.stmt.stats.get(channel) as { duplicates: number } | undefined;
    return {
      channel,
      messages: agg.messages,
      bytes: agg.bytes,
      segments: agg.segments,
      duplicatesDropped: stats?.duplicates ?? 0,
      oldestReceivedAt: agg.oldest,
      newestReceivedAt: agg.newest,
    };
  }

  /** Committed segment files of a channel (paths relative to the lake root), for the query catalog. */
  files(channel: string): { file: string; day: string; bytes: number }[] {
    return this.db.prepare(`SELECT file, day, committed_bytes AS bytes FROM lake_channel_segments WHERE channel = ? AND committed_bytes > 0 ORDER BY seq`).all(channel) as {
      file: string;
      day: string;
      bytes: number;
    }[];
  }

  /**
   * Deletes whole days older than `retentionDays` (never the segment being written) and forgets message
   * ids older than the dedupe window.
   */
  async applyRetention(channel: string, retentionDays: number | undefined, now: number): Promise<{ segmentsRemoved: number }> {
    const writer = this.writers.get(channel);
    let segmentsRemoved = 0;
    if (retentionDays !== undefined) {
      const cutoff = utcDay(now - retentionDays * DAY_MS);
      const old = this.db.prepare(`SELECT seq, file FROM lake_channel_segments WHERE channel = ? AND day < ?`).all(channel, cutoff) as { seq: number; file: string }[];
      for (const seg of old) {
        if (writer?.open?.seq === seg.seq) continue;
        // The row goes first: a crash after it leaves an orphan file that recover() deletes.
        this.db.prepare(`DELETE FROM lake_channel_segments WHERE channel = ? AND seq = ?`).run(channel, seg.seq);
        rmSync(join(this.paths.root, seg.file), { force: true });
        segmentsRemoved++;
      }
    }
    const idCutoff = utcDay(now - this.dedupeDays * DAY_MS);
    this.db.prepare(`DELETE FROM lake_channel_ids WHERE channel = ? AND day < ?`).run(channel, idCutoff);
    return { segmentsRemoved };
  }

  /** Removes a channel's data (the channel was deleted from the configuration). */
  async deleteChannel(channel: string): Promise<void> {
    const writer = this.writers.get(channel);
    await writer?.open?.handle?.close();
    this.writers.delete(channel);
    this.db.transaction(() => {
      this.db.prepare(`DELETE FROM lake_channel_segments WHERE channel = ?`).run(channel);
      this.db.prepare(`DELETE FROM lake_channel_ids WHERE channel = ?`).run(channel);
      this.db.prepare(`DELETE FROM lake_channel_stats WHERE channel = ?`).run(channel);
    })();
    rmSync(this.paths.channel(channel), { recursive: true, force: true });
  }

  /** Waits for in-flight appends and closes the open segment files. */
  async close(): Promise<void> {
    for (const writer of this.writers.values()) {
      while (writer.running || writer.pending.length) await new Promise((r) => setTimeout(r, 5));
      await writer.open?.handle?.close();
      writer.open = undefined;
    }
    this.writers.clear();
  }

  private writer(channel: string): ChannelWriter {
    let w = this.writers.get(channel);
    if (!w) {
      const last = this.stmt.lastSegment.get(channel) as
        | { seq: number; day: string; file: string; committed_bytes: number; messages: number; first_index: number; min_received: number | null; max_received: number | null }
        | undefined;
      const stats = this.stmt.stats.get(channel) as { nextIndex: number } | undefined;
      w = {
        pending: [],
        running: false,
        nextIndex: stats?.nextIndex ?? (last ? last.first_index + last.messages : 0),
        nextSeq: (last?.seq ?? 0) + 1,
        open: last
          ? {
              seq: last.seq,
              day: last.day,
              file: last.file,
              bytes: last.committed_bytes,
              messages: last.messages,
              firstIndex: last.first_index,
              minReceived: last.min_received,
              maxReceived: last.max_received,
            }
          : undefined,
      };
      this.writers.set(channel, w);
    }
    return w;
  }

  /** Group commit: writes everything pending for the channel in one append + fsync + transaction. */
  private async drain(channel: string, writer: ChannelWriter): Promise<void> {
    writer.running = true;
    try {
      while (writer.pending.length) {
        const group = writer.pending.splice(0);
        try {
          await this.append(channel, writer, group.flatMap((p) => p.messages));
          for (const p of group) p.resolve();
        } catch (e) {
          for (const p of group) p.reject(e);
        }
      }
    } finally {
      writer.running = false;
    }
    for (const listener of this.listeners) listener(channel);
  }

  private async append(channel: string, writer: ChannelWriter, messages: ChannelMessage[]): Promise<void> {
    // Drop replays: ids already committed, and repeats within this group.
    const fresh: ChannelMessage[] = [];
    const inGroup = new Set<string>();
    for (const m of messages) {
      if (inGroup.has(m.messageId) || this.stmt.seen.get(channel, m.messageId) !== undefined) continue;
      inGroup.add(m.messageId);
      fresh.push(m);
    }
    const duplicates = messages.length - fresh.length;
    if (!fresh.length) {
      this.stmt.upsertStats.run(channel, writer.nextIndex, duplicates);
      return;
    }

    // Consecutive runs of one ingress day go to that day's segment; a new day (or a full segment) rolls.
    const touched: OpenSegment[] = [];
    let i = 0;
    const previous = writer.open ? { ...writer.open } : undefined;
    const nextIndexBefore = writer.nextIndex;
    const nextSeqBefore = writer.nextSeq;
    try {
      const days = new DayCache();
      while (i < fresh.length) {
        const day = days.of(fresh[i]!.receivedAt);
        let seg = writer.open;
        if (!seg || seg.day !== day || seg.bytes >= this.segmentBytes) {
          await seg?.handle?.close();
          seg = await this.newSegment(channel, writer, day);
        }
        // Take this day's messages while they fit the segment (at least one, so huge messages still go).
        const lines: string[] = [];
        let bytes = 0;
        let j = i;
        while (j < fresh.length && days.of(fresh[j]!.receivedAt) === day) {
          const line = encodeLine(fresh[j]!);
          const size = Buffer.byteLength(line);
          if (lines.length && seg.bytes + bytes + size > this.segmentBytes) break;
          lines.push(line);
          bytes += size;
          j++;
        }
        const run = fresh.slice(i, j);
        i = j;
        const data = Buffer.from(lines.join(''), 'utf8');
        if (!seg.handle) {
          seg.handle = await open(join(this.paths.root, seg.file), 'r+');
          // Bytes past the committed length are a torn write from before a crash: they never counted.
          await seg.handle.truncate(seg.bytes);
        }
        // Positional write at the committed length: a torn write from a failed attempt is overwritten.
        await seg.handle.write(data, 0, data.length, seg.bytes);
        if (this.fsync) await seg.handle.datasync();
        seg.bytes += data.length;
        seg.messages += run.length;
        for (const m of run) {
          seg.minReceived = seg.minReceived === null ? m.receivedAt : Math.min(seg.minReceived, m.receivedAt);
          seg.maxReceived = seg.maxReceived === null ? m.receivedAt : Math.max(seg.maxReceived, m.receivedAt);
        }
        writer.nextIndex += run.length;
        if (!touched.includes(seg)) touched.push(seg);
      }
      this.db.transaction(() => {
        const idDays = new DayCache();
        for (const m of fresh) this.stmt.remember.run(channel, m.messageId, idDays.of(m.receivedAt));
        for (const seg of touched)
          this.stmt.upsertSegment.run({
            channel,
            seq: seg.seq,
            day: seg.day,
            file: seg.file,
            bytes: seg.bytes,
            messages: seg.messages,
            firstIndex: seg.firstIndex,
            minReceived: seg.minReceived,
            maxReceived: seg.maxReceived,
          });
        this.stmt.upsertStats.run(channel, writer.nextIndex, duplicates);
      })();
    } catch (e) {
      // Nothing was committed: forget the in-memory progress so the next append rewrites the same bytes.
      await writer.open?.handle?.close().catch(() => undefined);
      if (previous) previous.handle = undefined;
      writer.open = previous;
      writer.nextIndex = nextIndexBefore;
      writer.nextSeq = nextSeqBefore;
      throw e;
    }
  }

  private async newSegment(channel: string, writer: ChannelWriter, day: string): Promise<OpenSegment> {
    const seq = writer.nextSeq++;
    const dir = this.paths.channelDay(channel, day);
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `seg-${String(seq).padStart(12, '0')}.ndjson`);
    const handle = await open(path, 'w+');
    if (this.fsync) fsyncDir(dirname(path));
    const seg: OpenSegment = { seq, day, file: relative(this.paths.root, path), bytes: 0, messages: 0, firstIndex: writer.nextIndex, minReceived: null, maxReceived: null, handle };
    writer.open = seg;
    return seg;
  }
}

/** The position after a channel's last committed message (a pure SQLite read; no ChannelStore needed). */
export function channelEnd(db: Db, channel: string): ChannelPosition {
  ensureLakeTables(db);
  const last = db.prepare(`SELECT seq, committed_bytes, first_index, messages FROM lake_channel_segments WHERE channel = ? ORDER BY seq DESC LIMIT 1`).get(channel) as
    | { seq: number; committed_bytes: number; first_index: number; messages: number }
    | undefined;
  if (!last) {
    const stats = db.prepare(`SELECT next_index FROM lake_channel_stats WHERE channel = ?`).pluck().get(channel) as number | undefined;
    return { seq: 0, offset: 0, index: stats ?? 0 };
  }
  return { seq: last.seq, offset: last.committed_bytes, index: last.first_index + last.messages };
}

/** One NDJSON line. The payload stays byte-exact: UTF-8 text as a JSON string, anything else base64. */
export function encodeLine(m: ChannelMessage): string {
  const bytes = Buffer.isBuffer(m.payload) ? m.payload : Buffer.from(m.payload.buffer, m.payload.byteOffset, m.payload.byteLength);
  // received_at in epoch milliseconds: exact, and cheap to read back (the catalog shows it as a TIMESTAMP).
  const receivedAt = Math.trunc(m.receivedAt);
  if (isUtf8(bytes))
    return `{"message_id":${JSON.stringify(m.messageId)},"received_at":${receivedAt},"payload":${JSON.stringify(bytes.toString('utf8'))}}\n`;
  return `{"message_id":${JSON.stringify(m.messageId)},"received_at":${receivedAt},"payload":"${bytes.toString('base64')}","payload_encoding":"base64"}\n`;
}

function parseLine(line: string): StoredMessage {
  const o = JSON.parse(line) as { message_id: string; received_at: number; payload: string; payload_encoding?: string };
  return { messageId: o.message_id, receivedAt: o.received_at, payload: o.payload, encoding: o.payload_encoding === 'base64' ? 'base64' : 'utf8' };
}

function parseLines(buf: Buffer, end: number): StoredMessage[] {
  const text = buf.toString('utf8', 0, end - 1);
  let envelopes: { message_id: string; received_at: number; payload: string; payload_encoding?: string }[];
  try {
    envelopes = JSON.parse(`[${text.replaceAll('\n', ',')}]`);
  } catch {
    // Name the broken line.
    return text.split('\n').map((line, i) => {
      try {
        return parseLine(line);
      } catch (e) {
        throw new Error(`channel segment line ${i + 1} of this read is not valid JSON: ${(e as Error).message}`);
      }
    });
  }
  return envelopes.map((o) => ({ messageId: o.message_id, receivedAt: o.received_at, payload: o.payload, encoding: o.payload_encoding === 'base64' ? 'base64' : 'utf8' }));
}

/** The payload bytes of a stored message. */
export function payloadBytes(m: Pick<StoredMessage, 'payload' | 'encoding'>): Buffer {
  return m.encoding === 'base64' ? Buffer.from(m.payload, 'base64') : Buffer.from(m.payload, 'utf8');
}

async function readLine(handle: FileHandle, offset: number, limit: number): Promise<{ text: string; bytes: number }> {
  const chunks: Buffer[] = [];
  let pos = offset;
  while (pos < limit) {
    const length = Math.min(1024 * 1024, limit - pos);
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await handle.read(buf, 0, length, pos);
    const nl = buf.subarray(0, bytesRead).indexOf(10);
    if (nl >= 0) {
      chunks.push(buf.subarray(0, nl));
      pos += nl + 1;
      return { text: Buffer.concat(chunks).toString('utf8'), bytes: pos - offset };
    }
    chunks.push(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  throw new Error(`channel segment is missing a newline before its committed end at byte ${limit}`);
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
