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

/** What the global flags say about the target; each falls back to the environment, then iotctl.yaml. */
export interface TargetOptions {
  target?: 'local' | 'aws';
  aws?: { profile?: string; region?: string; endpointUrl?: string };
}

export class Context {
  private loaded?: LoadedSpec;
  constructor(
    readonly paths: Paths,
    readonly options: TargetOptions = {},
  ) {}

  /** --target, else IOTCTL_TARGET (oclif maps it onto the flag), else iotctl.yaml's target. */
  get targetName(): 'local' | 'aws' {
    return this.options.target ?? this.spec.spec.target;
  }

  /** AWS settings: flags, else the environment (read by the SDK), else a region written in iotctl.yaml. */
  get awsSettings(): { profile?: string; region?: string; endpointUrl?: string } {
    const a = this.options.aws ?? {};
    const specRegion = /^region\s*:/m.test(this.spec.text) ? this.spec.spec.region : undefined;
    return {
      profile: a.profile,
      region: a.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || specRegion,
      endpointUrl: a.endpointUrl,
    };
  }

  /** The validated spec; throws a SpecError listing every problem. */
  get spec(): LoadedSpec {
    return (this.loaded ??= loadSpec(this.paths.specFile));
  }
}
