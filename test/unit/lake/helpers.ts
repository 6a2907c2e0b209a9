import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { specSchema, type SpecInput } from '../../../src/spec/schema.js';
import { applyAnalytics, planAnalytics } from '../../../src/targets/local/lake/apply.js';
import { ChannelStore } from '../../../src/targets/local/lake/channel-store.js';
import { DatastoreWriter } from '../../../src/targets/local/lake/datastore-writer.js';
import { openDuck, type Duck } from '../../../src/targets/local/lake/duck.js';
import { PipelineRunner, type PipelineRunnerOptions } from '../../../src/targets/local/lake/pipeline-runner.js';
import { openStore, type Db } from '../../../src/targets/local/store.js';
import type { ChannelMessage } from '../../../src/targets/local/sinks.js';

export type AnalyticsInput = NonNullable<SpecInput['analytics']>;

export function specWith(analytics: AnalyticsInput, extra: Partial<SpecInput> = {}) {
  return specSchema.parse({ project: 'test', ...extra, analytics });
}

/** A state directory with the analytics configuration applied, as `analytics apply` would. */
export async function setupLake(analytics: AnalyticsInput, extra: Partial<SpecInput> = {}): Promise<{ dir: string; db: Db; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-lake-'));
  const db = openStore(dir);
  const spec = specWith(analytics, extra);
  const plan = await planAnalytics(db, dir, spec);
  applyAnalytics(db, plan.items);
  return { dir, db, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Components {
  channels: ChannelStore;
  writer: DatastoreWriter;
  runner: PipelineRunner;
  duck: Duck;
  close(): Promise<void>;
}

/** The daemon-side components over a state directory (what LocalLake builds), with test-friendly tuning. */
export async function components(dir: string, db: Db, opts: Partial<PipelineRunnerOptions> & { compactMinFiles?: number; clock?: () => number } = {}): Promise<Components> {
  const channels = new ChannelStore({ db, stateDir: dir, fsync: false });
  const duck = await openDuck({ threads: 1 });
  const writer = new DatastoreWriter({ db, stateDir: dir, duck: duck.connection, fsync: false, compactMinFiles: opts.compactMinFiles, clock: opts.clock });
  const runner = new PipelineRunner({ db, channels, writer, ...opts });
  return {
    channels,
    writer,
    runner,
    duck,
    async close() {
      await channels.close();
      duck.close();
    },
  };
}

const encoder = new TextEncoder();
export const json = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value));

export function message(id: string, receivedAt: number, body: unknown): ChannelMessage {
  return { messageId: id, receivedAt, payload: typeof body === 'string' ? encoder.encode(body) : body instanceof Uint8Array ? body : json(body) };
}

/** Every file under a directory, relative to it, sorted. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) (e.isDirectory() ? walk(join(d, e.name)) : out.push(relative(dir, join(d, e.name))));
  };
  walk(dir);
  return out.sort();
}

export const day = (iso: string) => Date.parse(`${iso}T00:00:00Z`);
