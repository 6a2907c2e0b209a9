import { dirname, resolve, join } from 'node:path';
import { cacheSpec, cachedSpec, readSpecCache, readSpecText, type SpecCacheEntry } from './spec/cache.js';
import type { LoadedSpec } from './spec/loader.js';
import { closestStage, DEFAULT_STAGE, selectStage, stageStateDir, type SelectedStage } from './spec/stages.js';
import { UserError } from './ui/errors.js';

/** Where a command finds the spec and the local platform's state. */
export interface Paths {
  specFile: string;
  projectDir: string;
  /** The local state of the command's stage (Context.paths); the project's `.iotctl` for the default stage. */
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
  /** --stage and IOTCTL_STAGE, kept apart so that errors say where a stage name came from. */
  stage?: { flag?: string; env?: string };
  /** `apply --adopt`: resources the spec names that no iotctl deployment owns are taken over (aws). */
  adopt?: boolean;
}

export class Context {
  private loaded?: LoadedSpec;
  private base?: LoadedSpec;
  private cache?: SpecCacheEntry;
  private selected?: SelectedStage;
  private loader?: typeof import('./spec/loader.js');
  constructor(
    /** The paths of the project; its state directory is the default stage's (see `paths`). */
    readonly projectPaths: Paths,
    readonly options: TargetOptions = {},
  ) {}

  /** The paths of this command's stage: its state directory is stageStateDir() of the project's. */
  get paths(): Paths {
    return { ...this.projectPaths, stateDir: stageStateDir(this.projectPaths.stateDir, this.stage) };
  }

  /** --stage, else IOTCTL_STAGE, else iotctl.yaml's `stage:`, else `default` (spec/stages.ts). */
  get stage(): string {
    return this.stageSelection.name;
  }

  get stageSelection(): SelectedStage {
    const { flag, env } = this.options.stage ?? {};
    return (this.selected ??= selectStage({ flag, env, spec: flag !== undefined || env ? undefined : this.specStage() }));
  }

  /** --target, else IOTCTL_TARGET (oclif maps it onto the flag), else iotctl.yaml's target. */
  get targetName(): 'local' | 'aws' {
    return this.options.target ?? this.spec.spec.target;
  }

  /**
   * Run before `spec` is read (BaseCommand.init and openTarget do; it is idempotent): takes the stage's validated
   * spec from the cache in the project's state directory when iotctl.yaml is unchanged, else loads the validator
   * (yaml, zod, the rules' SQL compiler). Never throws: a missing or invalid spec is reported by `spec`, to the
   * commands that need one.
   */
  async prepare(): Promise<void> {
    this.cache ??= readSpecCache(this.projectPaths.specFile, this.projectPaths.stateDir);
    const { flag, env } = this.options.stage ?? {};
    const stage = flag ?? (env || this.cache?.specStage || DEFAULT_STAGE);
    this.loaded ??= cachedSpec(this.cache, this.projectPaths.specFile, stage);
    if (!this.loaded) this.loader ??= await import('./spec/loader.js');
  }

  /** The validated effective spec of the stage; throws a SpecError listing every problem. */
  get spec(): LoadedSpec {
    if (!this.loaded || this.loaded.stage !== this.stage) {
      this.loaded = this.requireLoader().resolveStage(this.baseSpec(), this.stage);
      cacheSpec(this.loaded, this.baseSpec().spec.stage, this.projectPaths.stateDir);
    }
    this.assertDeclared(this.loaded);
    return this.loaded;
  }

  /** The file as written (no stage merged in), validated, even when the stage's spec came from the cache (`spec validate`). */
  async loadBaseSpec(): Promise<LoadedSpec> {
    this.loader ??= await import('./spec/loader.js');
    return this.baseSpec();
  }

  private baseSpec(): LoadedSpec {
    return (this.base ??= this.requireLoader().loadSpec(this.projectPaths.specFile));
  }

  /**
   * A stage the file does not declare is the base spec: fine for a throwaway local stage, refused on aws, where
   * a typo (`--stage prdo`) would deploy a new copy of the base, prod's region and account included.
   */
  private assertDeclared(resolved: LoadedSpec): void {
    const { name, source } = this.stageSelection;
    if (name === DEFAULT_STAGE || resolved.declaredStages.includes(name)) return;
    if ((this.options.target ?? resolved.spec.target) !== 'aws') return;
    const close = closestStage(name, resolved.declaredStages);
    throw new UserError(
      `Stage '${name}' (from ${source}) is not declared in ${resolved.file}, and the aws target deploys only declared stages (declared: ${resolved.declaredStages.join(', ') || 'none'}).`,
      close ? `did you mean --stage ${close}? To add a stage, declare it under \`stages:\` (\`${name}: {}\` for no overrides).` : `declare it under \`stages:\` in iotctl.yaml (\`${name}: {}\` for no overrides).`,
      'STAGE_UNDECLARED',
    );
  }

  /** iotctl.yaml's own `stage:`: from the cache, the validated file, or (a spec that does not validate) its text. */
  private specStage(): string | undefined {
    if (this.cache) return this.cache.specStage;
    try {
      return this.baseSpec().spec.stage;
    } catch {
      // `local down` and `local status` must work with a broken spec: read the plain top-level key.
      try {
        return /^stage\s*:\s*['"]?([^\s'"#]+)/m.exec(readSpecText(this.projectPaths.specFile))?.[1];
      } catch {
        return undefined;
      }
    }
  }

  private requireLoader(): typeof import('./spec/loader.js') {
    if (!this.loader) throw new Error('Context.prepare() must be awaited before the spec is read.');
    return this.loader;
  }
}
