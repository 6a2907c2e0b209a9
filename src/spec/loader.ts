import { basename, relative } from 'node:path';
import { specSchema, type Spec } from './schema.js';
import { UserError } from '../ui/errors.js';
import { specChecks } from './checks.js';
import { defaultAthenaDatabase } from './names.js';
import { readSpecText } from './cache.js';
import { parseYaml, YamlLimitError, type Locate } from './yaml-doc.js';
import { DEFAULT_STAGE, mergeStage, writtenAt } from './stages.js';

export interface SpecProblem {
  file: string;
  line: number;
  col: number;
  path: string;
  message: string;
  hint?: string;
}


export class SpecError extends UserError {
  constructor(readonly problems: SpecProblem[]) {
    super(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in ${problems[0]?.file ?? 'spec'}:\n` + problems.map(formatProblem).join('\n'),
      'Fix the lines above, then run `iotctl spec validate`. `iotctl spec schema` gives editors completion.',
      'SPEC_INVALID',
    );
  }
}

export function formatProblem(p: SpecProblem): string {
  return `  ${p.file}:${p.line}:${p.col} ${p.path || '(root)'}: ${p.message}${p.hint ? `\n      hint: ${p.hint}` : ''}`;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out;
}

export interface LoadedSpec {
  spec: Spec;
  file: string;
  text: string;
  /** file:line:col of a path in the spec, for errors found after loading. */
  locate: Locate;
  /** The stage this is the effective spec of (resolveStage). */
  stage: string;
  /** The stages the file declares: its own `stage:` and every key of `stages:`. */
  declaredStages: string[];
  /** The document as plain data, before validation (absent when the spec came from the cache). */
  raw?: Record<string, unknown>;
  /** Whether iotctl.yaml wrote the value at `path` of this stage's spec (in the base or the stage's override), rather than a default filling it. */
  written(path: readonly (string | number)[]): boolean;
  /** What the checks warn about without refusing the spec (a runtime Lambda deprecates soon). */
  warnings?: SpecProblem[];
}

export function parseSpec(text: string, file = 'iotctl.yaml'): LoadedSpec {
  const shown = shownName(file);
  const atOffset = (offset: number, message: string, hint: string): SpecProblem => {
    // Counted up to the offset only: the limit may have been hit because the text is huge.
    const before = text.slice(0, offset).split('\n');
    return { file: shown, line: before.length, col: before[before.length - 1]!.length + 1, path: '', message, hint };
  };
  // A document over YAML_LIMITS is one problem, at the offset where the limit was reached.
  const limited = <T>(step: () => T): T => {
    try {
      return step();
    } catch (e) {
      if (!(e instanceof YamlLimitError)) throw e;
      throw new SpecError([atOffset(e.offset, e.message, 'iotctl.yaml describes a platform in a few hundred lines; anchors and aliases are allowed, but not expanded into huge documents.')]);
    }
  };
  const yamlDoc = limited(() => parseYaml(text));
  const { doc, lineCounter, locate } = yamlDoc;
  const problems: SpecProblem[] = [];
  for (const e of doc.errors) {
    const pos = lineCounter.linePos(e.pos[0]);
    problems.push({ file: shown, line: pos.line, col: pos.col, path: '', message: e.message.split('\n')[0]!, hint: 'This is a YAML syntax error.' });
  }
  for (const p of yamlDoc.problems) problems.push(atOffset(p.offset, p.message, 'This is a YAML syntax error.'));
  if (problems.length) throw new SpecError(problems);

  const raw = (limited(() => yamlDoc.toJS()) ?? {}) as Record<string, unknown>;
  const { spec, warnings } = validateSpec(raw, shown, locate, (path) => [...path]);
  const declaredStages = [...new Set([...(spec.stage ? [spec.stage] : []), ...Object.keys(spec.stages ?? {})])];
  return { spec, file, text, locate, stage: DEFAULT_STAGE, declaredStages, raw, written: (path) => writtenAt(raw, path), warnings };
}

/**
 * The zod schema, then every spec check, on the plain data of a spec. `sourcePath` maps a path of `raw` to the
 * document's (a stage's merged spec points into its override where the override wrote the value).
 */
function validateSpec(raw: Record<string, unknown>, shown: string, locate: Locate, sourcePath: (path: readonly PropertyKey[]) => PropertyKey[]): { spec: Spec; warnings: SpecProblem[] } {
  const problems: SpecProblem[] = [];
  const warnings: SpecProblem[] = [];
  const at = (path: readonly PropertyKey[], offset?: number) => locate(sourcePath(path), offset);
  const parsed = specSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // An unknown key points at its map, in the part of the file (base or override) that wrote the key.
      const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
      const { line, col } = keys.length ? locate(sourcePath([...issue.path, keys[0]!]).slice(0, -1)) : at(issue.path);
      // A bad key of a record (a stage name under stages:) says why in its inner issue.
      const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
      problems.push({ file: shown, line, col, path: formatPath(issue.path), message, hint: hintFor(issue) });
    }
    throw new SpecError(problems);
  }
  const spec = parsed.data;
  // athena.database defaults to the project name made an Athena name (`fleet-eu` -> `fleet_eu`).
  const rawAthena = (raw as { athena?: { database?: unknown } }).athena;
  if (rawAthena?.database === undefined) spec.athena.database = defaultAthenaDatabase(spec.project);
  for (const check of specChecks) {
    for (const p of check(spec)) {
      const { line, col } = at(p.path, p.offset);
      (p.severity === 'warning' ? warnings : problems).push({ file: shown, line, col, path: formatPath(p.path), message: p.message, hint: p.hint });
    }
  }
  if (problems.length) throw new SpecError(problems);
  return { spec, warnings };
}

/**
 * The effective spec of a stage: the base with `stages.<stage>` merged in (stages.ts), validated whole like the
 * base; a problem in a value the override wrote points at the override's line. A stage that is not declared
 * is the base spec. `loaded` is the base, as parseSpec gives it.
 */
export function resolveStage(loaded: LoadedSpec, stage: string): LoadedSpec {
  const raw = loaded.raw!;
  const overrides = (raw.stages as Record<string, Record<string, unknown> | null> | undefined) ?? {};
  if (!(stage in overrides)) {
    const { stages: _stages, ...spec } = loaded.spec;
    return { ...loaded, stage, spec: { ...spec, stage }, written: (path) => writtenAt(raw, path) };
  }
  const { stages: _stages, ...base } = raw;
  const merged = mergeStage(base, overrides[stage], ['stages', stage]);
  const { spec, warnings } = validateSpec({ ...merged.value, stage }, shownName(loaded.file), loaded.locate, merged.sourcePath);
  return {
    spec,
    warnings,
    file: loaded.file,
    text: loaded.text,
    stage,
    declaredStages: loaded.declaredStages,
    raw,
    locate: (path, offset) => loaded.locate(merged.sourcePath(path), offset),
    written: (path) => writtenAt(merged.value, path),
  };
}

/** The spec file as problems name it: relative to the working directory. */
function shownName(file: string): string {
  return basename(file) === file ? file : relative(process.cwd(), file) || file;
}

function hintFor(issue: { code: string; message: string; path: PropertyKey[] }): string | undefined {
  if (issue.code === 'unrecognized_keys') return 'Remove the key, or check its spelling against `iotctl spec schema`.';
  if (issue.code === 'invalid_union') return 'Each action/activity is a one-key map, e.g. `- kinesis: {stream: telemetry}`.';
  if (issue.code === 'invalid_type') return 'See `iotctl spec schema` for the expected type.';
  return undefined;
}

export function loadSpec(file: string): LoadedSpec {
  return parseSpec(readSpecText(file), file);
}
