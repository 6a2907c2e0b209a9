/**
 * The lean path: the read-only commands people run most often answer without loading oclif, whose own
 * module graph (config, parser, help, ux: about 100 files) costs about as much as Node's whole start-up.
 * The command classes are the same; in this mode BaseCommand extends LeanCommand (oclif's Command API as
 * iotctl's commands use it) and Flags builds plain flag definitions.
 *
 * Only the common case is handled here: known flags as `--name value`, `--name=value`, `-c value` or a
 * boolean `--name`, plus their env and defaults. Anything else (--help, a positional argument, an unknown,
 * repeated or invalid flag, a missing required one, --json on a terminal) is left to oclif, so every error,
 * help text and edge case behaves exactly as before: before a command is loaded by returning false, after it
 * by running the same argv once more with oclif in a child process (IOTCTL_NO_LEAN=1).
 */
import type { Command as OclifCommand } from '@oclif/core/command';
import type * as OclifFlags from '@oclif/core/flags';

/** Commands (oclif id) run on the lean path; each takes no positional argument. */
const LEAN_COMMANDS = new Set(['device:list', 'rules:list', 'stream:list', 'query:recent']);

const LEAN = Symbol.for('iotctl.lean');
/** True while the lean path loads a command: base-command.ts picks its base class and Flags from this. */
export const leanMode = (): boolean => (globalThis as Record<symbol, unknown>)[LEAN] === true;

interface FlagDef {
  kind: 'string' | 'boolean' | 'integer' | 'unsupported';
  name?: string;
  char?: string;
  env?: string;
  default?: unknown;
  options?: readonly string[];
  required?: boolean;
  multiple?: boolean;
  min?: number;
  max?: number;
  [more: string]: unknown;
}

const define = (kind: FlagDef['kind']) => (opts: Record<string, unknown> = {}) => ({ ...opts, kind, type: kind === 'boolean' ? 'boolean' : 'option' });
/** Flags' builders, keeping the definition (the lean parser reads it); a builder not listed here makes a command ineligible. */
export const leanFlags = new Proxy(
  { string: define('string'), boolean: define('boolean'), integer: define('integer') } as Record<string, unknown>,
  { get: (t, k) => t[k as string] ?? define('unsupported') },
) as unknown as typeof OclifFlags;

// Properties of a flag definition that the lean parser does not implement: such a flag, when used, goes to oclif.
const UNSUPPORTED_WHEN_SET = ['exclusive', 'dependsOn', 'exactlyOne', 'relationships', 'allowNo', 'deprecated', 'aliases', 'charAliases', 'parse', 'multiple'];

type Parsed = { flags: Record<string, unknown>; args: Record<string, unknown> };

/** The flags from argv, env and defaults as oclif's parser would give them; undefined for anything unusual. */
function parseArgv(defs: Record<string, FlagDef>, argv: string[]): Parsed | undefined {
  const byChar = new Map(Object.entries(defs).filter(([, d]) => d.char).map(([n, d]) => [d.char!, n]));
  const given = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    let name: string | undefined;
    let value: string | undefined;
    if (token.startsWith('--') && token.length > 2) {
      const eq = token.indexOf('=');
      name = eq === -1 ? token.slice(2) : token.slice(2, eq);
      if (eq !== -1) value = token.slice(eq + 1);
    } else if (/^-[A-Za-z]$/.test(token)) name = byChar.get(token[1]!);
    else return undefined;
    const def = name === undefined ? undefined : defs[name];
    if (!def || def.kind === 'unsupported' || given.has(name!)) return undefined;
    if (def.kind === 'boolean') {
      if (value !== undefined) return undefined;
      given.set(name!, true);
    } else {
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined || value.startsWith('-')) return undefined;
      }
      given.set(name!, value);
    }
  }
  const flags: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(defs)) {
    let value: unknown = given.get(name);
    if (value !== undefined && UNSUPPORTED_WHEN_SET.some((p) => def[p] !== undefined && def[p] !== false)) return undefined;
    const fromEnv = value === undefined && def.env ? process.env[def.env] : undefined;
    if (value === undefined && fromEnv) value = def.kind === 'boolean' ? ['1', 'true', 'y', 'yes'].includes(fromEnv.toLowerCase()) : fromEnv;
    if (value === undefined) {
      if (typeof def.default === 'function') return undefined;
      value = def.default;
    } else if (def.kind !== 'boolean') {
      const text = value as string;
      if (def.options && !def.options.includes(text)) return undefined;
      if (def.kind === 'integer') {
        if (!/^-?\d+$/.test(text)) return undefined;
        const n = Number.parseInt(text, 10);
        if ((def.min !== undefined && n < def.min) || (def.max !== undefined && n > def.max)) return undefined;
        value = n;
      }
    }
    if (value === undefined && def.required) return undefined;
    if (value !== undefined) flags[name] = value;
  }
  return { flags, args: {} };
}

/** oclif's Command as iotctl's commands use it (BaseCommand overrides init and catch). */
export abstract class LeanCommand {
  static id: string | undefined;
  static flags: Record<string, unknown> = {};
  static baseFlags: Record<string, unknown> = {};
  static args: Record<string, unknown> = {};
  static enableJsonFlag = false;
  static strict = true;
  /** Set by runLean before the command runs. */
  leanParsed?: Parsed;
  id: string | undefined;

  constructor(
    public argv: string[],
    public config: { bin: string },
  ) {
    this.id = this.ctor.id;
  }

  get ctor(): typeof LeanCommand {
    return this.constructor as typeof LeanCommand;
  }

  abstract run(): Promise<unknown>;

  async init(): Promise<void> {}

  async parse(): Promise<Parsed> {
    return this.leanParsed!;
  }

  jsonEnabled(): boolean {
    return this.ctor.enableJsonFlag && this.argv.includes('--json');
  }

  logJson(json: unknown): void {
    process.stdout.write(JSON.stringify(json, null, 2) + '\n');
  }

  async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    process.exitCode = process.exitCode ?? err.exitCode ?? 1;
    if (!this.jsonEnabled()) throw err;
    this.logJson({ error: { ...err, message: err.message, name: err.name } });
    return undefined;
  }

  async finally(_err?: Error): Promise<void> {}

  /** oclif's Command._run. */
  async _run(): Promise<unknown> {
    let err: Error | undefined;
    let result: unknown;
    try {
      await this.init();
      result = await this.run();
    } catch (error) {
      err = error as Error;
      await this.catch(err);
    } finally {
      await this.finally(err);
    }
    if (result && this.jsonEnabled()) this.logJson(result);
    return result;
  }
}

/** Runs argv on the lean path and returns true, or returns false (nothing done) for oclif to run it. */
export async function runLean(argv: string[], bin: string): Promise<boolean> {
  const id = `${argv[0]}:${argv[1]}`;
  if (!LEAN_COMMANDS.has(id) || process.env.IOTCTL_NO_LEAN || process.env.IOTCTL_CONTENT_TYPE) return false;
  const rest = argv.slice(2);
  // Help is oclif's; so is --json on a terminal (oclif may colour it with a theme).
  if (rest.some((a) => a === '--help' || a === '-h' || a === '--') || (rest.includes('--json') && process.stdout.isTTY)) return false;
  (globalThis as Record<symbol, unknown>)[LEAN] = true;
  const { default: Cmd } = (await import(`./commands/${argv[0]}/${argv[1]}.js`)) as { default: Omit<typeof LeanCommand, 'prototype'> & (new (argv: string[], config: { bin: string }) => LeanCommand) };
  const defs = { ...Cmd.baseFlags, ...Cmd.flags, ...(Cmd.enableJsonFlag ? { json: { kind: 'boolean' } } : {}) } as Record<string, FlagDef>;
  const parsed = Object.keys(Cmd.args ?? {}).length ? undefined : parseArgv(defs, rest);
  if (!parsed) {
    // The command class is now bound to the lean base: oclif runs it afresh in a child process.
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, [bin, ...argv], { stdio: 'inherit', env: { ...process.env, IOTCTL_NO_LEAN: '1' } });
    process.exitCode = r.status ?? 1;
    return true;
  }
  Cmd.id = id;
  const cmd = new Cmd(rest, { bin: 'iotctl' });
  cmd.leanParsed = parsed;
  try {
    await cmd._run();
  } catch (e) {
    // BaseCommand.catch reports every error itself; only oclif's exit (EEXIT) gets here.
    const err = e as Error & { oclif?: { exit?: number } };
    if (err.oclif?.exit === undefined) process.stderr.write(`${err.stack ?? err}\n`);
    process.exitCode = err.oclif?.exit ?? 1;
  }
  return true;
}

export type { OclifCommand };
