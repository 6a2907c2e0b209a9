import { join } from 'node:path';
import { UserError } from '../ui/errors.js';
import { stageNameProblem } from './names.js';

/**
 * Stages: one iotctl.yaml deployed as dev, staging and prod side by side. Pure: which stage a command acts on,
 * and the effective spec of a stage (the base spec with `stages.<stage>` merged into it).
 */

/** The stage of a spec that names none (and of every command without --stage / IOTCTL_STAGE). */
export const DEFAULT_STAGE = 'default';

export type StageSource = '--stage' | 'IOTCTL_STAGE' | 'iotctl.yaml' | 'default';

export interface SelectedStage {
  name: string;
  source: StageSource;
}

/** --stage, else IOTCTL_STAGE, else iotctl.yaml's `stage:`, else DEFAULT_STAGE; a bad name is a user error. */
export function selectStage(from: { flag?: string; env?: string; spec?: string }): SelectedStage {
  const picked: SelectedStage =
    from.flag !== undefined ? { name: from.flag, source: '--stage' }
    : from.env ? { name: from.env, source: 'IOTCTL_STAGE' }
    : from.spec !== undefined ? { name: from.spec, source: 'iotctl.yaml' }
    : { name: DEFAULT_STAGE, source: 'default' };
  const problem = stageNameProblem(picked.name);
  if (problem) {
    const where = picked.source === '--stage' ? '--stage' : picked.source === 'IOTCTL_STAGE' ? 'IOTCTL_STAGE' : "iotctl.yaml's stage:";
    throw new UserError(`The stage name '${picked.name}' (from ${where}) ${problem.message}.`, `use ${picked.source === 'iotctl.yaml' ? `stage: ${problem.suggestion}` : `--stage ${problem.suggestion}`}.`, 'STAGE_INVALID');
  }
  return picked;
}

/**
 * The local state directory of a stage: the default stage keeps the project's `.iotctl/` (existing state stays
 * where it is); any other stage has its own `.iotctl/stages/<stage>/` (so a `.iotctl/` line in .gitignore covers it,
 * and its CA, database and broker are its own).
 */
export function stageStateDir(projectStateDir: string, stage: string): string {
  return stage === DEFAULT_STAGE ? projectStateDir : join(projectStateDir, STAGES_DIR, stage);
}
export const STAGES_DIR = 'stages';

/**
 * Where `device register` writes credentials and `publish` reads them by default: `devices/` for the default
 * stage, `devices/@<stage>/` for another (each stage has its own CA, so one thing has one certificate per
 * stage; `@` is not allowed in a thing name, so the folder can never be a thing's).
 */
export function stageDevicesDir(stage: string): string {
  return stage === DEFAULT_STAGE ? 'devices' : join('devices', `@${stage}`);
}

/**
 * The merge rule (README, "Stages"): objects merge key by key, deeply; the lists of named items below merge
 * by `name` (an override item merges into the base item of that name, a new name is appended); every other
 * list and every scalar in the override replaces the base's. Nothing is removed: a rule is switched off
 * with `enabled: false`, and an item only some stages have is declared in those stages' overrides.
 */
export const NAMED_LISTS: readonly (readonly string[])[] = [
  ['streams'],
  ['rules'],
  ['functions'],
  ['analytics', 'channels'],
  ['analytics', 'pipelines'],
  ['analytics', 'datastores'],
  ['analytics', 'datasets'],
];

type Path = (string | number)[];

/** Where each part of a merged value was written: the override's own path for what it set, else the base's. */
interface Origin {
  /** Path in the document of the base's value here, when the base has one. */
  base?: Path;
  /** Path in the document of the override's value here, when the override set it. */
  override?: Path;
  /** The override replaced or added this value whole (not merged into the base's). */
  whole: boolean;
  children: Map<string | number, Origin>;
}

export interface MergedStage {
  value: Record<string, unknown>;
  /** The document path to point at for a path of the merged spec (for file:line:col). */
  sourcePath(path: readonly PropertyKey[]): PropertyKey[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const samePath = (a: readonly string[], b: readonly (string | number)[]) => a.length === b.length && a.every((k, i) => k === b[i]);

/**
 * Merge `override` (written at `overridePath` in the document, e.g. ['stages', 'prod']) into `base`.
 * Neither input is modified.
 */
export function mergeStage(base: Record<string, unknown>, override: Record<string, unknown> | null | undefined, overridePath: Path): MergedStage {
  const origin = baseOrigin(base, []);
  const value = mergeObject(base, override ?? {}, [], overridePath, origin);
  return { value, sourcePath: (path) => sourcePath(origin, path) };
}

function baseOrigin(value: unknown, path: Path): Origin {
  const origin: Origin = { base: path, whole: false, children: new Map() };
  if (Array.isArray(value)) value.forEach((v, i) => origin.children.set(i, baseOrigin(v, [...path, i])));
  else if (isObject(value)) for (const [k, v] of Object.entries(value)) origin.children.set(k, baseOrigin(v, [...path, k]));
  return origin;
}

function overrideOrigin(value: unknown, path: Path): Origin {
  const origin: Origin = { override: path, whole: true, children: new Map() };
  if (Array.isArray(value)) value.forEach((v, i) => origin.children.set(i, overrideOrigin(v, [...path, i])));
  else if (isObject(value)) for (const [k, v] of Object.entries(value)) origin.children.set(k, overrideOrigin(v, [...path, k]));
  return origin;
}

function mergeObject(base: Record<string, unknown>, over: Record<string, unknown>, path: Path, overPath: Path, origin: Origin): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  origin.override = overPath;
  for (const [key, o] of Object.entries(over)) {
    const b = base[key];
    const keyPath = [...path, key];
    const existing = origin.children.get(key);
    if (isObject(b) && isObject(o) && existing) {
      out[key] = mergeObject(b, o, keyPath, [...overPath, key], existing);
    } else if (Array.isArray(b) && Array.isArray(o) && existing && NAMED_LISTS.some((l) => samePath(l, keyPath))) {
      out[key] = mergeNamed(b, o, keyPath, [...overPath, key], existing);
    } else {
      out[key] = o;
      origin.children.set(key, overrideOrigin(o, [...overPath, key]));
    }
  }
  return out;
}

function mergeNamed(base: unknown[], over: unknown[], path: Path, overPath: Path, origin: Origin): unknown[] {
  const out = [...base];
  origin.override = overPath;
  over.forEach((item, j) => {
    const name = isObject(item) ? item.name : undefined;
    const i = typeof name === 'string' ? out.findIndex((b, k) => k < base.length && isObject(b) && b.name === name) : -1;
    if (i >= 0 && isObject(item)) {
      out[i] = mergeObject(out[i] as Record<string, unknown>, item, [...path, i], [...overPath, j], origin.children.get(i)!);
    } else {
      origin.children.set(out.length, overrideOrigin(item, [...overPath, j]));
      out.push(item);
    }
  });
  return out;
}

function sourcePath(root: Origin, path: readonly PropertyKey[]): PropertyKey[] {
  let node = root;
  let i = 0;
  for (; i < path.length; i++) {
    const next = node.children.get(path[i] as string | number);
    if (!next) break;
    node = next;
  }
  const rest = path.slice(i);
  // What the override wrote whole points into the override; a value it merged into, or left alone, into the base.
  const at = node.whole ? node.override! : (node.base ?? node.override!);
  return [...at, ...rest];
}

/** Whether `value` holds something at `path` (a value written in iotctl.yaml, as opposed to a default). */
export function writtenAt(value: unknown, path: readonly (string | number)[]): boolean {
  let node = value;
  for (const k of path) {
    if (typeof node !== 'object' || node === null || !(k in node)) return false;
    node = (node as Record<string | number, unknown>)[k];
  }
  return node !== undefined && node !== null;
}

/** The closest declared stage to a mistyped one (edit distance at most 2), for a "did you mean". */
export function closestStage(name: string, declared: readonly string[]): string | undefined {
  let best: { stage: string; d: number } | undefined;
  for (const stage of declared) {
    const d = editDistance(name, stage);
    if (d <= 2 && (!best || d < best.d)) best = { stage, d };
  }
  return best?.stage;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}
