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
import { mergeStage, writtenAt } from './stages.js';

/**
 * The validated spec of each stage, cached in `.iotctl/spec-cache.json` (the project's, for every stage) with iotctl.yaml's text and this build's stamp:
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

/**
 * What the cache holds for one text of iotctl.yaml: what decides the stage (`stage:`, the declared stages) and
 * the validated effective spec of each stage resolved so far (a stage is validated once, on first use).
 */
export interface SpecCacheEntry {
  text: string;
  specStage?: string;
  declaredStages: string[];
  specs: Record<string, Spec>;
}

/** The cache's entry when iotctl.yaml is unchanged since it was validated; undefined otherwise (no error). */
export function readSpecCache(specFile: string, stateDir: string): SpecCacheEntry | undefined {
  if (!build) return undefined;
  try {
    const text = readSpecText(specFile);
    const entry = JSON.parse(readFileSync(join(stateDir, CACHE_FILE), 'utf8')) as Partial<SpecCacheEntry> & { build?: string };
    if (entry.build !== build || entry.text !== text || !entry.specs || !entry.declaredStages) return undefined;
    return { text, specStage: entry.specStage, declaredStages: entry.declaredStages, specs: entry.specs };
  } catch {
    return undefined;
  }
}

/** A stage's effective spec from a cache entry, as the loader would give it; undefined when not cached. */
export function cachedSpec(entry: SpecCacheEntry | undefined, specFile: string, stage: string): LoadedSpec | undefined {
  const spec = entry?.specs[stage];
  if (!entry || !spec) return undefined;
  let view: { locate: Locate; merged: Record<string, unknown> } | undefined;
  const parsed = () => (view ??= stageView(entry.text, stage));
  // A key the text does not even hold was not written: no YAML parse for the common case.
  const written = (path: readonly (string | number)[]) => {
    const key = path[path.length - 1];
    return (typeof key !== 'string' || entry.text.includes(key)) && writtenAt(parsed().merged, path);
  };
  return { spec, file: specFile, text: entry.text, stage, declaredStages: entry.declaredStages, locate: (path, offset) => parsed().locate(path, offset), written };
}

/** A stage's merged document, and file:line:col for its paths (in its override where the override wrote the value). */
function stageView(text: string, stage: string): { locate: Locate; merged: Record<string, unknown> } {
  const parsed = parseYaml(text);
  const raw = (parsed.toJS() ?? {}) as Record<string, unknown>;
  const overrides = raw.stages as Record<string, Record<string, unknown> | null> | undefined;
  if (!overrides || !(stage in overrides)) return { locate: parsed.locate, merged: raw };
  const { stages: _stages, ...base } = raw;
  const merged = mergeStage(base, overrides[stage], ['stages', stage]);
  return { locate: (path, offset) => parsed.locate(merged.sourcePath(path), offset), merged: merged.value };
}

/**
 * Remember a stage's validated spec beside the others of the same text, when `.iotctl/` exists (a command
 * never creates it for this) and is writable. A spec holding a password (database.url with one) is not cached:
 * the cache would be a second copy of it.
 */
export function cacheSpec(loaded: LoadedSpec, specStage: string | undefined, stateDir: string): void {
  if (!build || !existsSync(stateDir)) return;
  try {
    if (holdsSecret(loaded.text)) {
      rmSync(join(stateDir, CACHE_FILE), { force: true }); // one an older iotctl wrote
      return;
    }
    // Only what survives JSON unchanged (a spec is plain data; this guards the rule).
    if (!isDeepStrictEqual(JSON.parse(JSON.stringify(loaded.spec)), loaded.spec)) return;
    const previous = readSpecCacheText(stateDir, loaded.text);
    const entry = { build, text: loaded.text, specStage, declaredStages: loaded.declaredStages, specs: { ...previous?.specs, [loaded.stage]: loaded.spec } };
    const tmp = join(stateDir, `${CACHE_FILE}.${process.pid}.tmp`);
    rmSync(tmp, { force: true });
    writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600, flag: 'wx' });
    renameSync(tmp, join(stateDir, CACHE_FILE));
  } catch {
    // A read-only state directory only costs the next command a validation.
  }
}

/** The entry already cached for this very text under this build (other stages' specs are kept). */
function readSpecCacheText(stateDir: string, text: string): { specs?: Record<string, Spec> } | undefined {
  try {
    const entry = JSON.parse(readFileSync(join(stateDir, CACHE_FILE), 'utf8')) as { build?: string; text?: string; specs?: Record<string, Spec> };
    return entry.build === build && entry.text === text ? entry : undefined;
  } catch {
    return undefined;
  }
}
