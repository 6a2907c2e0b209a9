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

// Moved to ui/format.ts (the athena and analytics commands share them on every target).
export { formatBytes, parseTimeFlag } from '../../../ui/format.js';
