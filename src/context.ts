import { dirname, resolve, join } from 'node:path';
import { loadSpec, type LoadedSpec } from './spec/loader.js';

/** Where a command finds the spec and the local platform's state. */
export interface Paths {
  specFile: string;
  projectDir: string;
  stateDir: string;
}

export function resolvePaths(opts: { spec?: string; stateDir?: string }): Paths {
  const specFile = resolve(opts.spec ?? 'iotctl.yaml');
  const projectDir = dirname(specFile);
  return { specFile, projectDir, stateDir: resolve(opts.stateDir ?? join(projectDir, '.iotctl')) };
}

export class Context {
  private loaded?: LoadedSpec;
  constructor(readonly paths: Paths) {}

  /** The validated spec; throws a SpecError listing every problem. */
  get spec(): LoadedSpec {
    return (this.loaded ??= loadSpec(this.paths.specFile));
  }
}
