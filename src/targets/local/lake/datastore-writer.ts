import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { DATASTORE_RESERVED_ATTRIBUTES, type PipelineMessage } from '../../../iot/pipeline/index.js';
import type { Db } from '../store.js';
import { fsyncDir } from './channel-store.js';
import { kindNames, kindOf, isMixed, resolveColumns, widen, type ColumnType, type KnownColumn, type ResolvedColumn } from './columns.js';
import { fileList, ident, lit } from './duck.js';
import { DAY_MS, DayCache, LakePaths, utcDay } from './paths.js';
import { ensureLakeTables } from './tables.js';

export type DatastoreFormat = 'parquet' | 'json';

/** Columns every datastore row has; `dt` is the day partition (from the directory name). */
export const RESERVED_COLUMNS = DATASTORE_RESERVED_ATTRIBUTES;

export interface DatastoreFile {
  datastore: string;
  /** Path relative to the lake root. */
  file: string;
  dt: string;
  pipeline: string;
  rows: number;
  bytes: number;
  minReceived: number | null;
  maxReceived: number | null;
  createdAt: number;
  /** The file's columns as "name TYPE" joined by commas (Parquet files; null when unknown). */
  schema?: string | null;
}

interface PartitionBuffer {
  dt: string;
  /** The NDJSON bytes, off the JS heap (a buffered file's rows would otherwise be old-generation garbage). */
  data: ByteBuffer;
  rows: number;
  bytes: number;
  minReceived: number;
  maxReceived: number;
  /** Kinds of values seen per attribute position, for each message shape that reached this partition. */
  masks: Map<Shape, number[]>;
}

type ColumnRef = { key: string; name: string };

/** The attribute names of a message, in order, resolved to columns once and reused by same-shaped messages. */
interface Shape {
  keys: string[];
  refs: ColumnRef[];
  /** Some attribute is spelled differently from its column, so the row is written with renamed keys. */
  rename: boolean;
  /** Why messages of this shape cannot be stored. */
  error?: string;
}

/**
 * Canonical column spellings of one datastore. DuckDB column names are case-insensitive, so `Temp` and
 * `temp` are one column: the first spelling seen wins and later spellings are renamed to it.
 */
class ColumnNames {
  private readonly byExact = new Map<string, ColumnRef | string>();
  private readonly byKey = new Map<string, string>();
  constructor(known: Iterable<KnownColumn>) {
    for (const c of known) this.byKey.set(c.key, c.name);
  }
  /** The column an attribute goes to, or why it cannot be stored. */
  lookup(attribute: string): ColumnRef | string {
    let ref = this.byExact.get(attribute);
    if (ref !== undefined) return ref;
    const key = attribute.toLowerCase();
    if (!attribute) ref = 'an attribute has an empty name, which cannot be a datastore column';
    else if ((RESERVED_COLUMNS as readonly string[]).includes(key))
      ref = `attribute "${attribute}" is reserved by the datastore (${key === 'dt' ? 'its day partition' : 'row metadata'}); rename it with addAttributes + removeAttributes activities`;
    else {
      let name = this.byKey.get(key);
      if (name === undefined) this.byKey.set(key, (name = attribute));
      ref = { key, name };
    }
    this.byExact.set(attribute, ref);
    return ref;
  }

  shape(keys: string[]): Shape {
    const refs: ColumnRef[] = [];
    const names = new Set<string>();
    let rename = false;
    for (const k of keys) {
      const ref = this.lookup(k);
      if (typeof ref === 'string') return { keys, refs, rename, error: ref };
      if (names.has(ref.name)) return { keys, refs, rename, error: `attributes that differ only in case map to one datastore column "${ref.name}" (column names are case-insensitive)` };
      names.add(ref.name);
      if (ref.name !== k) rename = true;
      refs.push(ref);
    }
    return { keys, refs, rename };
  }
}

/**
 * Rows on their way to one datastore, grouped by day partition and already serialised as NDJSON lines
 * (so buffering costs one string per row, not a tree of objects). Column kinds are tracked as rows arrive,
 * per message shape: telemetry messages mostly share one shape, so a row costs a key comparison per
 * attribute rather than a column lookup.
 */
export class DatastoreBuffer {
  readonly partitions = new Map<string, PartitionBuffer>();
  rows = 0;
  bytes = 0;
  private readonly days = new DayCache();
  private readonly shapes = new Map<string, Shape>();
  private lastShape?: Shape;
  private lastPart?: PartitionBuffer;
  constructor(
    readonly datastore: string,
    private readonly names: ColumnNames,
  ) {}

  /** Adds a row; returns why it cannot be stored instead (the caller records that as a failure). */
  add(m: PipelineMessage): string | undefined {
    const body = m.body;
    let shape = this.lastShape;
    let i = 0;
    let same = shape !== undefined;
    for (const key in body) {
      if (same && shape!.keys[i] !== key) same = false;
      i++;
    }
    if (!same || i !== shape!.keys.length) shape = this.lastShape = this.shapeOf(Object.keys(body));
    if (shape!.error) return shape!.error;
    let record: object = body;
    if (shape!.rename) {
      const renamed: Record<string, unknown> = {};
      shape!.keys.forEach((k, j) => (renamed[shape!.refs[j]!.name] = body[k]));
      record = renamed;
    }
    let json: string;
    try {
      json = JSON.stringify(record);
    } catch (e) {
      return `the message cannot be serialised as JSON: ${(e as Error).message}`;
    }
    const dt = this.days.of(m.receivedAt);
    let part = this.lastPart;
    if (!part || part.dt !== dt) part = this.lastPart = this.partition(dt);
    let masks = part.masks.get(shape!);
    if (!masks) part.masks.set(shape!, (masks = new Array<number>(shape!.keys.length).fill(0)));
    let j = 0;
    for (const key in body) masks[j++]! |= kindOf(body[key]);
    const line = `{"__message_id":${JSON.stringify(m.id)},"__received_at":${m.receivedAt}${json.length > 2 ? ',' + json.slice(1) : '}'}\n`;
    const size = part.data.append(line);
    part.rows++;
    part.bytes += size;
    if (m.receivedAt < part.minReceived) part.minReceived = m.receivedAt;
    if (m.receivedAt > part.maxReceived) part.maxReceived = m.receivedAt;
    this.rows++;
    this.bytes += size;
    return undefined;
  }

  /** Lower-cased column key -> spelling and the kinds of values seen, for one partition. */
  seen(part: PartitionBuffer): Map<string, { name: string; mask: number }> {
    const seen = new Map<string, { name: string; mask: number }>();
    for (const [shape, masks] of part.masks)
      shape.refs.forEach((ref, i) => {
        const entry = seen.get(ref.key);
        if (entry) entry.mask |= masks[i]!;
        else seen.set(ref.key, { name: ref.name, mask: masks[i]! });
      });
    return seen;
  }

  private shapeOf(keys: string[]): Shape {
    const id = keys.join('\u0000');
    let shape = this.shapes.get(id);
    if (!shape) this.shapes.set(id, (shape = this.names.shape(keys)));
    return shape;
  }

  private partition(dt: string): PartitionBuffer {
    let p = this.partitions.get(dt);
    if (!p) {
      p = { dt, data: new ByteBuffer(), rows: 0, bytes: 0, minReceived: Infinity, maxReceived: -Infinity, masks: new Map() };
      this.partitions.set(dt, p);
    }
    return p;
  }
}

/** A growable byte buffer for UTF-8 text. */
class ByteBuffer {
  private buf = Buffer.allocUnsafe(1 << 20);
  private length = 0;
  /** Appends the UTF-8 bytes of `text`; returns how many. */
  append(text: string): number {
    // A UTF-8 character takes at most 3 bytes per UTF-16 code unit.
    const max = text.length * 3;
    if (this.length + max > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + max));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    const n = this.buf.write(text, this.length, 'utf8');
    this.length += n;
    return n;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** A written but not yet committed file: invisible to the manifest until commit(). */
export interface StagedFile extends DatastoreFile {
  format: DatastoreFormat;
  columns: (ResolvedColumn & { key: string; mask: number })[];
  /** Files this one replaces (compaction, reprocessing); removed from the manifest in the same commit. */
  replaces: string[];
}

export interface DatastoreWriterOptions {
  db: Db;
  stateDir: string;
  duck: DuckDBConnection;
  clock?: () => number;
  /** Files smaller than half this are merged by compaction. */
  targetFileBytes?: number;
  /** Compact a partition once it has this many small files from one pipeline. */
  compactMinFiles?: number;
  fsync?: boolean;
}

/**
 * Writes datastore files with DuckDB: `lake/datastore/<name>/dt=YYYY-MM-DD/part-*.parquet` (or .json).
 *
 * A file is written under a temporary dot-name, fsynced, renamed to its final name, and only then
 * recorded in `lake_datastore_files` (the manifest) in one SQLite transaction together with whatever the
 * caller commits alongside (the pipeline checkpoint). Queries read the manifest's files, so an uncommitted
 * file is never read; recover() deletes temporary files and files the manifest does not list, which is
 * exactly what a crash between rename and commit leaves behind. The checkpoint never ran ahead of the
 * manifest, so the pipeline re-reads those messages and writes them once.
 */
export class DatastoreWriter {
  readonly paths: LakePaths;
  private readonly db: Db;
  private readonly duck: DuckDBConnection;
  private readonly clock: () => number;
  private readonly targetFileBytes: number;
  private readonly compactMinFiles: number;
  private readonly fsync: boolean;
  private readonly names = new Map<string, ColumnNames>();

  constructor(opts: DatastoreWriterOptions) {
    this.db = opts.db;
    this.duck = opts.duck;
    this.paths = new LakePaths(opts.stateDir);
    this.clock = opts.clock ?? Date.now;
    this.targetFileBytes = opts.targetFileBytes ?? 64 * 1024 * 1024;
    this.compactMinFiles = opts.compactMinFiles ?? 8;
    this.fsync = opts.fsync ?? true;
    ensureLakeTables(this.db);
    mkdirSync(this.paths.tmp, { recursive: true });
  }

  newBuffer(datastore: string): DatastoreBuffer {
    let names = this.names.get(datastore);
    if (!names) this.names.set(datastore, (names = new ColumnNames(this.knownColumns(datastore).values())));
    return new DatastoreBuffer(datastore, names);
  }

  knownColumns(datastore: string): Map<string, KnownColumn> {
    const rows = this.db.prepare(`SELECT key, name, type, position FROM lake_datastore_columns WHERE datastore = ? ORDER BY position`).all(datastore) as KnownColumn[];
    return new Map(rows.map((r) => [r.key, r]));
  }

  /** Committed files of a datastore, oldest first. */
  files(datastore: string, where: { dt?: string; pipeline?: string } = {}): DatastoreFile[] {
    const rows = this.db
      .prepare(
        `SELECT datastore, file, dt, pipeline, rows, bytes, min_received AS minReceived, max_received AS maxReceived, created_at AS createdAt
         FROM lake_datastore_files WHERE datastore = ? AND (? IS NULL OR dt = ?) AND (? IS NULL OR pipeline = ?) ORDER BY dt, created_at, file`,
      )
      .all(datastore, where.dt ?? null, where.dt ?? null, where.pipeline ?? null, where.pipeline ?? null) as DatastoreFile[];
    return rows;
  }

  /** Writes one file per partition of the buffer (uncommitted; see commit()). */
  async stage(buffer: DatastoreBuffer, pipeline: string, format: DatastoreFormat): Promise<StagedFile[]> {
    const known = this.knownColumns(buffer.datastore);
    const staged: StagedFile[] = [];
    try {
      for (const part of buffer.partitions.values()) {
        if (!part.rows) continue;
        const seen = buffer.seen(part);
        const resolved = resolveColumns(known, seen);
        const columns = resolved.columns.map((c) => {
          const key = c.name.toLowerCase();
          return { ...c, key, mask: seen.get(key)?.mask ?? 0 };
        });
        const input = this.writeStaging(part.data);
        try {
          const select = `SELECT ${jsonProjection(columns, true)} FROM ${readNdjson([input], columns, true)}`;
          staged.push(await this.writeFile(buffer.datastore, part.dt, pipeline, format, select, columns, { rows: part.rows, minReceived: part.minReceived, maxReceived: part.maxReceived }, []));
        } finally {
          rmSync(input, { force: true });
        }
      }
    } catch (e) {
      this.discard(staged);
      throw e;
    }
    return staged;
  }

  /**
   * Makes staged files part of the datastore, atomically with `alongside` (e.g. the checkpoint): manifest
   * rows in, replaced files' rows out, column types widened and schema changes recorded. Replaced files are
   * deleted after the commit (a crash before that leaves orphans that recover() deletes).
   */
  commit(staged: StagedFile[], alongside?: () => void): void {
    const now = this.clock();
    const insert = this.db.prepare(
      `INSERT INTO lake_datastore_files (datastore, file, dt, pipeline, rows, bytes, min_received, max_received, created_at, schema)
       VALUES (@datastore, @file, @dt, @pipeline, @rows, @bytes, @minReceived, @maxReceived, @createdAt, @schema)`,
    );
    const remove = this.db.prepare(`DELETE FROM lake_datastore_files WHERE datastore = ? AND file = ?`);
    this.db.transaction(() => {
      for (const f of staged) {
        for (const old of f.replaces) remove.run(f.datastore, old);
        if (f.rows > 0)
          insert.run({ datastore: f.datastore, file: f.file, dt: f.dt, pipeline: f.pipeline, rows: f.rows, bytes: f.bytes, minReceived: f.minReceived, maxReceived: f.maxReceived, createdAt: f.createdAt, schema: f.schema ?? null });
        this.recordColumns(f, now);
      }
      alongside?.();
    })();
    for (const f of staged) for (const old of f.replaces) rmSync(join(this.paths.root, old), { force: true });
  }

  /** Deletes staged files that will not be committed. */
  discard(staged: StagedFile[]): void {
    for (const f of staged) if (f.rows > 0) rmSync(join(this.paths.root, f.file), { force: true });
  }

  /**
   * Crash recovery: deletes temporary files, files the manifest does not list, and leftover staging
   * inputs. Manifest rows whose file is missing (deleted by hand) are dropped so queries do not fail.
   */
  recover(): { removed: string[]; missing: string[] } {
    const removed: string[] = [];
    const missing: string[] = [];
    const rows = this.db.prepare(`SELECT datastore, file FROM lake_datastore_files`).all() as { datastore: string; file: string }[];
    const known = new Set(rows.map((r) => r.file));
    for (const r of rows)
      if (!existsSync(join(this.paths.root, r.file))) {
        this.db.prepare(`DELETE FROM lake_datastore_files WHERE datastore = ? AND file = ?`).run(r.datastore, r.file);
        missing.push(r.file);
      }
    const root = join(this.paths.root, 'datastore');
    for (const datastore of safeReaddir(root))
      for (const day of safeReaddir(join(root, datastore)))
        for (const name of safeReaddir(join(root, datastore, day))) {
          const rel = relative(this.paths.root, join(root, datastore, day, name));
          if (!known.has(rel)) {
            rmSync(join(this.paths.root, rel), { force: true });
            removed.push(rel);
          }
        }
    for (const name of safeReaddir(this.paths.tmp)) rmSync(join(this.paths.tmp, name), { force: true, recursive: true });
    return { removed, missing };
  }

  /**
   * Merges a partition's small files (from one pipeline) into one once there are compactMinFiles of them,
   * so slow trickles of data do not leave thousands of tiny files. Returns the staged merge, uncommitted.
   */
  async stageCompaction(datastore: string, dt: string, pipeline: string, format: DatastoreFormat): Promise<StagedFile | undefined> {
    const small = this.files(datastore, { dt, pipeline }).filter((f) => f.bytes < this.targetFileBytes / 2);
    if (small.length < this.compactMinFiles) return undefined;
    const known = this.knownColumns(datastore);
    const columns = [...known.values()].map((c) => ({ name: c.name, type: c.type, key: c.key, mask: 0 }));
    const select = await this.selectExisting(small, columns, format);
    const rows = small.reduce((s, f) => s + f.rows, 0);
    return this.writeFile(datastore, dt, pipeline, format, select, columns, {
      rows,
      minReceived: minOf(small.map((f) => f.minReceived)),
      maxReceived: maxOf(small.map((f) => f.maxReceived)),
    }, small.map((f) => f.file));
  }

  /**
   * Reprocessing: replaces the rows `pipeline` wrote for messages received in [fromMs, toMs] with the
   * rows in `buffer`. Only files whose receive-time range overlaps the window are rewritten; their rows
   * outside the window are kept. Returns staged replacements, uncommitted.
   */
  async stageReplacement(buffer: DatastoreBuffer, pipeline: string, format: DatastoreFormat, fromMs: number, toMs: number): Promise<StagedFile[]> {
    const datastore = buffer.datastore;
    const days = new Set<string>(buffer.partitions.keys());
    const affected = this.db
      .prepare(
        `SELECT datastore, file, dt, pipeline, rows, bytes, min_received AS minReceived, max_received AS maxReceived, created_at AS createdAt
         FROM lake_datastore_files WHERE datastore = ? AND pipeline = ? AND max_received >= ? AND min_received <= ? ORDER BY dt, created_at`,
      )
      .all(datastore, pipeline, fromMs, toMs) as DatastoreFile[];
    for (const f of affected) days.add(f.dt);
    const known = this.knownColumns(datastore);
    const staged: StagedFile[] = [];
    try {
      for (const dt of [...days].sort()) {
        const part = buffer.partitions.get(dt);
        const old = affected.filter((f) => f.dt === dt);
        const seen = part ? buffer.seen(part) : new Map<string, { name: string; mask: number }>();
        // Old files' columns stay, typed by the datastore (widened by the new rows where needed).
        for (const c of known.values()) if (!seen.has(c.key)) seen.set(c.key, { name: c.name, mask: 0 });
        const columns = resolveColumnsKeepingKnown(known, seen);
        const parts: string[] = [];
        let input: string | undefined;
        let keptRows = 0;
        if (old.length) {
          const range = `__received_at BETWEEN epoch_ms(${Math.trunc(fromMs)}) AND epoch_ms(${Math.trunc(toMs)})`;
          const existing = await this.selectExisting(old, columns, format);
          keptRows = Number(await this.scalar(`SELECT count(*) FROM (${existing}) WHERE NOT (${range})`));
          if (keptRows) parts.push(`SELECT * FROM (${existing}) WHERE NOT (${range})`);
        }
        if (part?.rows) {
          input = this.writeStaging(part.data);
          parts.push(`SELECT ${jsonProjection(columns, true)} FROM ${readNdjson([input], columns, true)}`);
        }
        try {
          const rows = keptRows + (part?.rows ?? 0);
          const replaces = old.map((f) => f.file);
          if (!rows) {
            staged.push({ datastore, file: '', dt, pipeline, rows: 0, bytes: 0, minReceived: null, maxReceived: null, createdAt: this.clock(), format, columns: [], replaces });
            continue;
          }
          const keptRange = old.length ? await this.receivedRange(parts.join(' UNION ALL BY NAME ')) : undefined;
          staged.push(
            await this.writeFile(datastore, dt, pipeline, format, parts.join(' UNION ALL BY NAME '), columns, {
              rows,
              minReceived: keptRange?.min ?? part!.minReceived,
              maxReceived: keptRange?.max ?? part!.maxReceived,
            }, replaces),
          );
        } finally {
          if (input) rmSync(input, { force: true });
        }
      }
    } catch (e) {
      this.discard(staged);
      throw e;
    }
    return staged;
  }

  stats(datastore: string): { files: number; rows: number; bytes: number; partitions: number; oldest: string | null; newest: string | null } {
    return this.db
      .prepare(
        `SELECT count(*) AS files, coalesce(sum(rows), 0) AS rows, coalesce(sum(bytes), 0) AS bytes, count(DISTINCT dt) AS partitions, min(dt) AS oldest, max(dt) AS newest
         FROM lake_datastore_files WHERE datastore = ?`,
      )
      .get(datastore) as { files: number; rows: number; bytes: number; partitions: number; oldest: string | null; newest: string | null };
  }

  /** Deletes partitions older than `retentionDays` (whole days, by ingress day). */
  applyRetention(datastore: string, retentionDays: number | undefined, now: number): number {
    if (retentionDays === undefined) return 0;
    const cutoff = utcDay(now - retentionDays * DAY_MS);
    const old = this.db.prepare(`SELECT file FROM lake_datastore_files WHERE datastore = ? AND dt < ?`).all(datastore, cutoff) as { file: string }[];
    this.db.prepare(`DELETE FROM lake_datastore_files WHERE datastore = ? AND dt < ?`).run(datastore, cutoff);
    for (const f of old) rmSync(join(this.paths.root, f.file), { force: true });
    for (const day of safeReaddir(this.paths.datastore(datastore)))
      if (day.startsWith('dt=') && day.slice(3) < cutoff) rmSync(join(this.paths.datastore(datastore), day), { recursive: true, force: true });
    return old.length;
  }

  deleteDatastore(datastore: string): void {
    this.db.transaction(() => {
      this.db.prepare(`DELETE FROM lake_datastore_files WHERE datastore = ?`).run(datastore);
      this.db.prepare(`DELETE FROM lake_datastore_columns WHERE datastore = ?`).run(datastore);
      this.db.prepare(`DELETE FROM lake_schema_changes WHERE datastore = ?`).run(datastore);
    })();
    this.names.delete(datastore);
    rmSync(this.paths.datastore(datastore), { recursive: true, force: true });
  }

  private recordColumns(f: StagedFile, now: number): void {
    const current = this.knownColumns(f.datastore);
    let position = Math.max(-1, ...[...current.values()].map((c) => c.position)) + 1;
    const upsert = this.db.prepare(
      `INSERT INTO lake_datastore_columns (datastore, key, name, type, position, added_at, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (datastore, key) DO UPDATE SET type = excluded.type, changed_at = excluded.changed_at`,
    );
    const change = this.db.prepare(
      `INSERT INTO lake_schema_changes (datastore, column_name, change, from_type, to_type, detail, file, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const c of f.columns) {
      const prior = current.get(c.key);
      const type = widen(prior?.type, c.type)!;
      const mixed = c.mask && isMixed(c.mask) ? `mixed ${kindNames(c.mask).join(', ')} values stored as VARCHAR` : null;
      if (!prior) {
        upsert.run(f.datastore, c.key, c.name, type, position++, now, now);
        change.run(f.datastore, c.name, 'added', null, type, mixed, f.file || null, now);
      } else if (prior.type !== type) {
        upsert.run(f.datastore, c.key, prior.name, type, prior.position, now, now);
        change.run(f.datastore, prior.name, type === 'VARCHAR' ? 'stringified' : 'widened', prior.type, type, mixed ?? (c.mask ? `${kindNames(c.mask).join(', ')} values` : null), f.file || null, now);
      }
    }
  }

  private writeStaging(data: ByteBuffer): string {
    const path = join(this.paths.tmp, `stage-${randomBytes(8).toString('hex')}.ndjson`);
    writeFileSync(path, data.bytes());
    return path;
  }

  /** SELECT over committed files, every column cast to its datastore type. */
  private async selectExisting(files: DatastoreFile[], columns: ResolvedColumn[], format: DatastoreFormat): Promise<string> {
    const paths = files.map((f) => join(this.paths.root, f.file));
    if (format === 'json') {
      const all = [{ name: '__message_id', type: 'VARCHAR' }, { name: '__received_at', type: 'TIMESTAMP' }, ...columns];
      return `SELECT ${all.map((c) => ident(c.name)).join(', ')} FROM read_json(${fileList(paths)}, format = 'newline_delimited', hive_partitioning = false, columns = {${all.map((c) => `${lit(c.name)}: ${lit(c.type)}`).join(', ')}})`;
    }
    const source = `read_parquet(${fileList(paths)}, union_by_name = true, hive_partitioning = false)`;
    const present = new Set(((await (await this.duck.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjectsJson()) as { column_name: string }[]).map((r) => r.column_name.toLowerCase()));
    const projection = ['__message_id', '__received_at', ...columns.filter((c) => present.has(c.name.toLowerCase())).map((c) => `CAST(${ident(c.name)} AS ${c.type}) AS ${ident(c.name)}`)];
    return `SELECT ${projection.map((p) => (p.startsWith('CAST') ? p : ident(p))).join(', ')} FROM ${source}`;
  }

  private async scalar(sql: string): Promise<unknown> {
    const reader = await this.duck.runAndReadAll(sql);
    return reader.getRows()[0]?.[0];
  }

  private async receivedRange(select: string): Promise<{ min: number; max: number } | undefined> {
    const reader = await this.duck.runAndReadAll(`SELECT epoch_ms(min(__received_at)), epoch_ms(max(__received_at)) FROM (${select})`);
    const [min, max] = reader.getRows()[0] ?? [];
    if (min === null || min === undefined) return undefined;
    return { min: Number(min), max: Number(max) };
  }

  private async writeFile(
    datastore: string,
    dt: string,
    pipeline: string,
    format: DatastoreFormat,
    select: string,
    columns: StagedFile['columns'],
    meta: { rows: number; minReceived: number; maxReceived: number },
    replaces: string[],
  ): Promise<StagedFile> {
    const createdAt = this.clock();
    const dir = this.paths.datastoreDay(datastore, dt);
    mkdirSync(dir, { recursive: true });
    const stamp = new Date(createdAt).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const name = `part-${stamp}-${pipeline}-${randomBytes(4).toString('hex')}.${format === 'json' ? 'json' : 'parquet'}`;
    const final = join(dir, name);
    const temp = join(dir, `.${name}.tmp`);
    // Snappy: what Athena and Glue default to, and every Parquet reader decodes (zstd needs plugins in some).
    const options = format === 'json' ? `FORMAT json` : `FORMAT parquet, COMPRESSION snappy`;
    try {
      await this.duck.run(`COPY (${select}) TO ${lit(temp)} (${options})`);
      if (this.fsync) fsyncFile(temp);
      renameSync(temp, final);
      if (this.fsync) fsyncDir(dirname(final));
    } catch (e) {
      rmSync(temp, { force: true });
      throw e;
    }
    const schema =
      format === 'parquet'
        ? ((await (await this.duck.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${lit(final)}, hive_partitioning = false)`)).getRowObjectsJson()) as { column_name: string; column_type: string }[])
            .map((c) => `${c.column_name} ${c.column_type}`)
            .join(',')
        : null;
    return {
      datastore,
      file: relative(this.paths.root, final),
      schema,
      dt,
      pipeline,
      rows: meta.rows,
      bytes: statSync(final).size,
      minReceived: meta.minReceived,
      maxReceived: meta.maxReceived,
      createdAt,
      format,
      columns,
      replaces,
    };
  }
}

/** Columns for a rewrite: every known column plus new ones, typed by widening. */
function resolveColumnsKeepingKnown(known: Map<string, KnownColumn>, seen: Map<string, { name: string; mask: number }>): StagedFile['columns'] {
  const { columns } = resolveColumns(known, new Map([...seen].filter(([, s]) => s.mask !== 0)));
  const byKey = new Map(columns.map((c) => [c.name.toLowerCase(), c]));
  const out: StagedFile['columns'] = [];
  for (const c of known.values()) {
    const resolved = byKey.get(c.key);
    out.push({ name: c.name, type: resolved?.type ?? c.type, key: c.key, mask: seen.get(c.key)?.mask ?? 0 });
    byKey.delete(c.key);
  }
  for (const [key, c] of byKey) out.push({ ...c, key, mask: seen.get(key)?.mask ?? 0 });
  return out;
}

/** The read_json call for staging NDJSON with explicit types (values of other kinds are cast, see columns.ts). */
function readNdjson(paths: string[], columns: ResolvedColumn[], staging: boolean): string {
  const all = [{ name: '__message_id', type: 'VARCHAR' }, { name: '__received_at', type: staging ? 'BIGINT' : 'TIMESTAMP' }, ...columns];
  return `read_json(${fileList(paths)}, format = 'newline_delimited', hive_partitioning = false, maximum_object_size = 67108864, columns = {${all.map((c) => `${lit(c.name)}: ${lit(c.type)}`).join(', ')}})`;
}

function jsonProjection(columns: ResolvedColumn[], staging: boolean): string {
  const receivedAt = staging ? `epoch_ms(__received_at) AS __received_at` : `__received_at`;
  return ['__message_id', receivedAt, ...columns.map((c) => ident(c.name))].join(', ');
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

const minOf = (xs: (number | null)[]) => Math.min(...xs.filter((x): x is number => x !== null));
const maxOf = (xs: (number | null)[]) => Math.max(...xs.filter((x): x is number => x !== null));

export type { ColumnType };
