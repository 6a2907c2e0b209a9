import type { Interfaces } from '@oclif/core';
import type { Command as OclifCommand } from '@oclif/core/command';
import type * as OclifFlags from '@oclif/core/flags';
import { leanMode } from './lean.js';

// On the lean path (src/lean.ts) the common read-only commands run without oclif: the same classes over a
// minimal base. Otherwise the subpaths, not '@oclif/core' itself, whose index also loads help, ux and semver.
const lean = leanMode() ? await import('./lean.js') : undefined;
const Command = lean ? (lean.LeanCommand as unknown as typeof OclifCommand) : (await import('@oclif/core/command')).Command;
const Flags: typeof OclifFlags = lean ? lean.leanFlags : await import('@oclif/core/flags');
import { Context, resolvePaths } from './context.js';
import { errorJson, isUserError } from './ui/errors.js';
import { redactSecrets } from './db/redact.js';

/** Commands take Flags from here rather than from '@oclif/core', for the same reason. */
export { Flags };

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/**
 * Every iotctl command: `--json` (oclif prints run()'s typed result), the spec and state locations,
 * and one error contract: user errors print what went wrong and how to fix it, exit 1.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;
  static override baseFlags = {
    spec: Flags.string({ description: 'Path to iotctl.yaml.', env: 'IOTCTL_SPEC', default: 'iotctl.yaml', helpGroup: 'GLOBAL' }),
    'state-dir': Flags.string({ description: 'Local platform state (default: .iotctl beside iotctl.yaml); a stage other than default keeps its own in <state-dir>/stages/<stage>.', env: 'IOTCTL_STATE_DIR', helpGroup: 'GLOBAL' }),
    debug: Flags.boolean({ description: 'Show stack traces for unexpected errors.', env: 'IOTCTL_DEBUG', helpGroup: 'GLOBAL' }),
    // IOTCTL_STAGE is read by Context, not mapped onto the flag by oclif, so that an error can say which one named the stage.
    stage: Flags.string({ description: "Stage: one deployment of this spec (dev, staging, prod), with its own state and AWS names (default: IOTCTL_STAGE, else iotctl.yaml's `stage`, else `default`).", helpGroup: 'GLOBAL' }),
    target: Flags.string({ description: "Target platform (default: iotctl.yaml's `target`, else local).", options: ['local', 'aws'], env: 'IOTCTL_TARGET', helpGroup: 'GLOBAL' }),
    profile: Flags.string({ description: 'AWS profile (aws target; default: AWS_PROFILE, else the default chain).', helpGroup: 'AWS' }),
    region: Flags.string({ description: "AWS region (aws target; overrides iotctl.yaml's region; AWS_REGION or the profile's region apply only when iotctl.yaml names none).", helpGroup: 'AWS' }),
    'endpoint-url': Flags.string({ description: 'Send AWS calls to this endpoint (aws target; AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> also work).', helpGroup: 'AWS' }),
  };

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;
  protected ctx!: Context;

  public override async init(): Promise<void> {
    // Every file iotctl creates is private (the state directory's in particular: see targets/local/state-dir.ts).
    process.umask(0o077);
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
    const f = this.flags as BaseFlags<typeof BaseCommand>;
    this.ctx = new Context(resolvePaths({ spec: f.spec, stateDir: f['state-dir'] }), {
      target: f.target as 'local' | 'aws' | undefined,
      aws: { profile: f.profile, region: f.region, endpointUrl: f['endpoint-url'] },
      stage: { flag: f.stage, env: process.env.IOTCTL_STAGE },
    });
    await this.ctx.prepare();
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    const json = this.argv.includes('--json');
    // The last line of defence: no password leaves in an error, whatever produced it (text, --json, --debug).
    const stdout = (text: string) => void process.stdout.write(redactSecrets(text));
    const stderr = (text: string) => void process.stderr.write(redactSecrets(text));
    if (isUserError(err)) {
      if (json) stdout(JSON.stringify({ error: errorJson(err) }) + '\n');
      else stderr(`Error: ${err.message}\n${err.hint ? `Try: ${err.hint}\n` : ''}`);
      process.exitCode = err.exitCode;
      return;
    }
    if (err.oclif && err.oclif.exit !== 0 && !(err as { code?: string }).code?.startsWith('EEXIT')) {
      // Flag and argument parse errors: a user error too.
      const message = err.message.replace(/\n?See more help with --help$/, '');
      if (json) stdout(JSON.stringify({ error: { name: 'UsageError', code: 'USAGE', message, exitCode: 1 } }) + '\n');
      else stderr(`Error: ${message}\nTry: iotctl ${this.id?.replace(/:/g, ' ') ?? ''} --help\n`);
      process.exitCode = 1;
      return;
    }
    if ((err as { code?: string }).code === 'EEXIT') return super.catch(err);
    if (json) stdout(JSON.stringify({ error: errorJson(err) }) + '\n');
    stderr(`Error (bug): ${err.message}\n`);
    stderr(this.argv.includes('--debug') || process.env.IOTCTL_DEBUG ? `${err.stack}\n` : 'Run again with --debug for the stack trace, and report it.\n');
    process.exitCode = 1;
  }
}
