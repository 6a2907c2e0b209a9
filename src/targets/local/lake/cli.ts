import type { ThingDescription } from '../../../iot/pipeline/index.js';
import { Registry } from '../registry.js';
import type { Db } from '../store.js';
import { LakePaths } from './paths.js';
import { WriterLock } from './lock.js';

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
