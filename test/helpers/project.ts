import { existsSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { parseSpec, SpecError } from '../../src/spec/loader.js';
import type { Spec } from '../../src/spec/schema.js';
import { embeddedDataDir, isExternalDataDirOf } from '../../src/targets/local/postgres.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const BIN = join(ROOT, 'bin/run.js');

export interface Project {
  dir: string;
  specFile: string;
  stateDir: string;
  spec: Spec;
  cleanup(): void;
}

/** A temp project folder with an iotctl.yaml (validated) and its .iotctl state dir. */
export function makeProject(yaml: string): Project {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-'));
  const specFile = join(dir, 'iotctl.yaml');
  writeFileSync(specFile, yaml);
  const stateDir = join(dir, '.iotctl');
  return {
    dir,
    specFile,
    stateDir,
    spec: parseSpec(yaml, specFile).spec,
    cleanup: () => {
      removeExternalCluster(stateDir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** As root the embedded cluster lives outside the (private) state dir: remove it with the project. */
export function removeExternalCluster(stateDir: string): void {
  if (!existsSync(stateDir)) return;
  const dataDir = embeddedDataDir(stateDir);
  if (isExternalDataDirOf(dataDir, stateDir)) rmSync(dirname(dataDir), { recursive: true, force: true });
}

/** The problems `spec validate` reports for this iotctl.yaml text (none: an empty list). */
export function specProblems(yaml: string) {
  try {
    parseSpec(yaml, 'iotctl.yaml');
  } catch (e) {
    if (e instanceof SpecError) return e.problems;
    throw e;
  }
  return [];
}

export const MINIMAL_SPEC = `project: demo
target: local
local: { mqttPort: 0 }
`;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the built CLI (dist/) as a user would. */
export function cli(args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: { ...process.env, NO_COLOR: '1', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`iotctl ${args.join(' ')} timed out\n${stderr}`)); }, opts.timeoutMs ?? 60_000);
    child.on('close', (code) => { clearTimeout(timer); resolvePromise({ code: code ?? 1, stdout, stderr }); });
  });
}

/** No PostgreSQL server from the environment: commands that need one skip it with a warning. */
export const NO_DB = { DATABASE_URL: '', PGHOST: '', PGDATABASE: '', PGUSER: '', PGPORT: '', PGSERVICE: '' };

/** A resolve hook (test/fixtures/imports/record.mjs) that logs every module a process loads to IOTCTL_IMPORT_LOG. */
export const IMPORT_RECORDER = join(ROOT, 'test/fixtures/imports/record.mjs');

/** Runs the built CLI under the import recorder: its result and every module URL it loaded. */
export async function cliImports(args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<CliResult & { imports: string[] }> {
  const log = join(opts.cwd, `imports-${process.pid}-${args.join('-').replace(/[^\w-]/g, '_')}.log`);
  rmSync(log, { force: true });
  const r = await cli(args, { cwd: opts.cwd, env: { ...opts.env, NODE_OPTIONS: `--import ${IMPORT_RECORDER}`, IOTCTL_IMPORT_LOG: log } });
  // No log means the hook never ran: the caller's checks would pass for nothing.
  if (!existsSync(log)) throw new Error(`iotctl ${args.join(' ')} ran without the import recorder: ${r.stderr}`);
  const imports = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  rmSync(log, { force: true });
  return { ...r, imports };
}

export async function waitFor<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** uvu/assert has no async `rejects`: resolve to the error, fail when the promise fulfils. */
export async function rejects(promise: Promise<unknown>, pattern?: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    if (pattern && !pattern.test((e as Error).message)) throw new Error(`rejected with "${(e as Error).message}", expected ${pattern}`);
    return e as Error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}
