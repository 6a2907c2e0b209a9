import { dirname, resolve, join } from 'node:path';
import { cacheSpec, cachedSpec } from './spec/cache.js';
import type { LoadedSpec } from './spec/loader.js';

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

/** What the global flags say about the target; each falls back to the environment, then iotctl.yaml. */
export interface TargetOptions {
  target?: 'local' | 'aws';
  aws?: { profile?: string; region?: string; endpointUrl?: string };
}

export class Context {
  private loaded?: LoadedSpec;
  private loader?: typeof import('./spec/loader.js');
  constructor(
    readonly paths: Paths,
    readonly options: TargetOptions = {},
  ) {}

  /** --target, else IOTCTL_TARGET (oclif maps it onto the flag), else iotctl.yaml's target. */
  get targetName(): 'local' | 'aws' {
    return this.options.target ?? this.spec.spec.target;
  }

  /**
   * Run before `spec` is read (BaseCommand.init and openTarget do; it is idempotent): takes the validated spec from the cache in the state directory when
   * iotctl.yaml is unchanged, else loads the validator (yaml, zod, the rules' SQL compiler). Never throws:
   * a missing or invalid spec is reported by `spec`, to the commands that need one.
   */
  async prepare(): Promise<void> {
    this.loaded ??= cachedSpec(this.paths.specFile, this.paths.stateDir);
    if (!this.loaded) this.loader ??= await import('./spec/loader.js');
  }

  /** The validated spec; throws a SpecError listing every problem. */
  get spec(): LoadedSpec {
    if (!this.loaded) {
      if (!this.loader) throw new Error('Context.prepare() must be awaited before the spec is read.');
      this.loaded = this.loader.loadSpec(this.paths.specFile);
      cacheSpec(this.loaded, this.paths.stateDir);
    }
    return this.loaded;
  }
}
