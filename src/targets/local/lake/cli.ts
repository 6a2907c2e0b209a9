import type { Context } from '../../../context.js';
import type { ThingDescription } from '../../../iot/pipeline/index.js';
import type { Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import { Registry } from '../registry.js';
import { openStore, type Db } from '../store.js';
import { LakePaths } from './paths.js';
import { WriterLock } from './lock.js';

/** What the analytics and athena commands work on: the spec and the local state store. */
export interface LakeSession {
  spec: Spec;
  stateDir: string;
  db: Db;
  close(): void;
}

export function openLakeSession(ctx: Context): LakeSession {
  const { spec } = ctx.spec;
  if (spec.target !== 'local')
    throw new UserError(
      'The analytics and athena commands run on the local target in this version of iotctl.',
      'Set `target: local` in iotctl.yaml to use the embedded platform.',
      'TARGET_UNAVAILABLE',
    );
  const db = openStore(ctx.paths.stateDir);
  return { spec, stateDir: ctx.paths.stateDir, db, close: () => db.close() };
}

/** The pid of the daemon holding the lake, if one runs. */
export function lakeWriter(stateDir: string): number | undefined {
  return new WriterLock(new LakePaths(stateDir).lockFile).holder();
}

/** deviceRegistryEnrich's lookup over the local registry. */
export function registryLookup(db: Db): (thingName: string) => ThingDescription | undefined {
  const registry = new Registry(db);
  return (name) => {
    const thing = registry.getThing(name);
    return thing ? { thingName: thing.name, thingTypeName: thing.thingType, attributes: thing.attributes } : undefined;
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A time flag: an ISO 8601 time, epoch milliseconds, `now`, or a duration ago (30m, 2h, 7d). */
export function parseTimeFlag(value: string, flag: string, now = Date.now()): number {
  const v = value.trim();
  if (v === 'now') return now;
  const ago = /^(\d+)(s|m|h|d)$/.exec(v);
  if (ago) return now - Number(ago[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[ago[2] as 's' | 'm' | 'h' | 'd'];
  if (/^\d{11,}$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UserError(`--${flag} "${value}" is not a time.`, `Use an ISO time (2030-01-31T12:00:00Z), epoch milliseconds, "now", or a duration ago like 2h or 7d.`);
  return t;
}
