import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { UserError } from '../ui/errors.js';
import { READ_LIMITS, readUserFile } from '../services/files.js';
import { holdsSecret } from '../db/redact.js';
import type { LoadedSpec } from './loader.js';
import type { Spec } from './schema.js';
import { parseYaml, type Locate } from './yaml-doc.js';

/**
 * The validated spec, cached in `.iotctl/spec-cache.json` with iotctl.yaml's text and this build's stamp:
 * validating (yaml, the zod schema, compiling every rule's SQL) costs more than most commands
 * themselves, and a project's spec rarely changes between two commands. The cache answers only when the
 * file's content equals the cached text (compared whole: exact, and cheaper than loading node:crypto to hash
 * it) under the same build; any edit, or a new build of iotctl, validates again. Only a valid spec is cached.
 */
const CACHE_FILE = 'spec-cache.json';

/** The compiled build's own file time, so a rebuilt iotctl never trusts a spec validated by an older one. */
const thisFile = fileURLToPath(import.meta.url);
// Under tsx (tests, bin/dev.js) the schema can change without this file changing: no cache there.
const build = thisFile.endsWith('.js') ? `${statSync(thisFile).mtimeMs}` : undefined;

export function readSpecText(file: string): string {
  if (!existsSync(file)) {
    throw new UserError(`No spec at ${file}.`, 'Run `iotctl init` to write one, or pass --spec PATH.', 'SPEC_NOT_FOUND');
  }
  // Capped while read: --spec /dev/zero or a huge file ends in a clear error, not in memory exhaustion.
  return readUserFile(file, 'Pass --spec the path of iotctl.yaml (at most 1 MB).', 'the spec ', { maxBytes: READ_LIMITS.spec, tooLargeCode: 'SPEC_TOO_LARGE' }).toString('utf8');
}

/** The cached spec when iotctl.yaml is unchanged since it was validated; undefined otherwise (no error). */
export function cachedSpec(specFile: string, stateDir: string): LoadedSpec | undefined {
  if (!build) return undefined;
  try {
    const text = readSpecText(specFile);
    const entry = JSON.parse(readFileSync(join(stateDir, CACHE_FILE), 'utf8')) as { build?: string; text?: string; spec?: Spec };
    if (entry.build !== build || entry.text !== text || !entry.spec) return undefined;
    let locate: Locate | undefined;
    return { spec: entry.spec, file: specFile, text, locate: (path, offset) => (locate ??= parseYaml(text).locate)(path, offset) };
  } catch {
    return undefined;
  }
}

/**
 * Remember a validated spec, when `.iotctl/` exists (a command never creates it for this) and is writable. A
 * spec holding a password (database.url with one) is not cached: the cache would be a second copy of it.
 */
export function cacheSpec(loaded: LoadedSpec, stateDir: string): void {
  if (!build || !existsSync(stateDir)) return;
  try {
    if (holdsSecret(loaded.text)) {
      rmSync(join(stateDir, CACHE_FILE), { force: true }); // one an older iotctl wrote
      return;
    }
    const json = JSON.stringify({ build, text: loaded.text, spec: loaded.spec });
    // Only what survives JSON unchanged (a spec is plain data; this guards the rule).
    if (!isDeepStrictEqual((JSON.parse(json) as { spec: Spec }).spec, loaded.spec)) return;
    const tmp = join(stateDir, `${CACHE_FILE}.${process.pid}.tmp`);
    rmSync(tmp, { force: true });
    writeFileSync(tmp, json, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, join(stateDir, CACHE_FILE));
  } catch {
    // A read-only state directory only costs the next command a validation.
  }
}
