import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * Which AWS region a command acts in. The region is part of the deployment (the stage), so the spec's
 * region beats the shell's: an operator whose AWS_REGION points elsewhere must not deploy production
 * into the wrong region. Precedence: --region > the spec's region > AWS_REGION > AWS_DEFAULT_REGION >
 * the profile's region. An ambient region that differs from the spec's is reported, never obeyed.
 */
export type RegionSource = '--region' | 'spec' | 'AWS_REGION' | 'AWS_DEFAULT_REGION' | 'profile';

export interface RegionInputs {
  /** --region: explicit, wins without a warning. */
  flag?: string;
  /** The region the spec (or its stage) names; undefined when it names none. */
  spec?: string;
  /** Where the spec's region is written, for the warning (default iotctl.yaml). */
  specLabel?: string;
  env: { AWS_REGION?: string; AWS_DEFAULT_REGION?: string };
  /** The profile in use and the region its config names. */
  profile?: { name: string; region?: string };
}

export interface RegionChoice {
  /** undefined: nothing names a region (the SDK then reports the missing region). */
  region?: string;
  source?: RegionSource;
  /** Set when the shell or profile names another region than the one used. */
  warning?: string;
}

const set = (value: string | undefined) => (value && value.trim() ? value.trim() : undefined);

export function resolveRegion(inputs: RegionInputs): RegionChoice {
  const flag = set(inputs.flag);
  if (flag) return { region: flag, source: '--region' };
  // What the user's other AWS tools would use in this shell: the first that is set, in the SDK's order.
  const candidates: { source: RegionSource; name: string; region?: string }[] = [
    { source: 'AWS_REGION', name: 'AWS_REGION', region: set(inputs.env.AWS_REGION) },
    { source: 'AWS_DEFAULT_REGION', name: 'AWS_DEFAULT_REGION', region: set(inputs.env.AWS_DEFAULT_REGION) },
    { source: 'profile', name: `profile ${inputs.profile?.name ?? 'default'}`, region: set(inputs.profile?.region) },
  ];
  const ambient = candidates.find((c) => c.region !== undefined);
  const spec = set(inputs.spec);
  if (!spec) return ambient ? { region: ambient.region, source: ambient.source } : {};
  if (!ambient?.region || ambient.region === spec) return { region: spec, source: 'spec' };
  const where = inputs.specLabel ?? 'iotctl.yaml';
  return {
    region: spec,
    source: 'spec',
    warning: `${where} says region ${spec}, ${ambient.name} says ${ambient.region}: using ${spec} (${where} wins). Pass --region ${ambient.region} to act in ${ambient.region} instead.`,
  };
}


/** The `region` of one profile in an AWS config or credentials file (INI); undefined when not there. */
export function iniProfileRegion(text: string, profile: string, kind: 'config' | 'credentials'): string | undefined {
  const wanted = kind === 'credentials' ? [profile] : profile === 'default' ? ['default', 'profile default'] : [`profile ${profile}`];
  let inSection = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)[#;].*$/, '').trim();
    const section = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (section) inSection = wanted.includes(section[1]!.replace(/\s+/g, ' '));
    else if (inSection) {
      const kv = /^region\s*=\s*(\S+)/.exec(line);
      if (kv) return kv[1];
    }
  }
  return undefined;
}

/** The profile in use (--profile, else AWS_PROFILE, else default) and the region its files name, as the SDK reads them. */
export function profileRegion(profile: string | undefined, env: NodeJS.ProcessEnv = process.env): { name: string; region?: string } {
  const name = set(profile) ?? set(env.AWS_PROFILE) ?? 'default';
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  const config = read(set(env.AWS_CONFIG_FILE) ?? join(homedir(), '.aws', 'config'));
  const credentials = read(set(env.AWS_SHARED_CREDENTIALS_FILE) ?? join(homedir(), '.aws', 'credentials'));
  return { name, region: iniProfileRegion(config, name, 'config') ?? iniProfileRegion(credentials, name, 'credentials') };
}
