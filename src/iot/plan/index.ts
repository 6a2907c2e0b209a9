/**
 * Desired-vs-actual planning, pure. Every section (devices policy, streams, rules, functions, analytics...)
 * turns its resources into `Resource`s; `planResources` diffs them field by field.
 */
export type PlanAction = 'create' | 'replace' | 'delete' | 'noop';

export interface Resource {
  kind: string; // e.g. 'rule', 'stream', 'channel'
  name: string;
  /** The resource's configuration as plain JSON; compared deeply. */
  config: unknown;
  /**
   * On an actual resource: made by an older iotctl without the ownership tags, these are the tags it lacks.
   * It is planned only when the spec declares it (then as a visible `tags` change), never deleted by prune.
   */
  adopt?: Record<string, string>;
  /** The name the target stores it under, where that is not `name` (aws: src/targets/aws/naming.ts). */
  physical?: string;
  /**
   * Holds data a consumer may not have read yet (a stream, a bucket): when its physical name changes, the old
   * one is kept beside the new one, and only a later `apply --prune` deletes it.
   */
  keepsData?: boolean;
  /** On an actual resource: an older incarnation under a previous physical name, whose replacement exists. */
  retired?: boolean;
  /**
   * The resource in the target's own shape (what the target stores, as the same function computes it for the
   * desired and the read resource), where `config` (the spec's shape) is a lossy reading of it: when given on
   * either side, this decides whether the resource changes. Its differences show under `target:` paths when
   * the spec's shape shows none.
   */
  compare?: unknown;
  /** On a desired resource: fields (by path; a path covers the fields below it) the target cannot update in place. */
  immutable?: Record<string, FieldRule>;
}

/** What a change to a field the target cannot update in place does. */
export interface FieldRule {
  /** Applying it replaces this (deleted, then created again), e.g. "the event source mapping": shown in the plan. */
  replaces?: string;
  /** It cannot be applied: apply refuses the whole plan before asking, with why and how to fix it. */
  refuse?: Refusal;
}

export interface Refusal {
  reason: string;
  hint: string;
}

export interface FieldChange {
  path: string;
  before: unknown;
  after: unknown;
  /** The field cannot be updated in place: applying the change replaces this. */
  replaces?: string;
}

export interface PlanItem {
  action: PlanAction;
  kind: string;
  name: string;
  changes: FieldChange[];
  desired?: unknown;
  actual?: unknown;
  /**
   * The target's name for it, where that is not `name`. On a delete it is the one to delete, which for a
   * renamed resource is its old name (adapters' delete takes it).
   */
  physical?: string;
  /** What the plan line alone does not say (a rename, an old copy kept with its data). */
  note?: string;
  /** Changes the target cannot make (an immutable field): apply refuses the plan before asking (assertApplicable). */
  refused?: Refusal[];
}

/**
 * The plan that makes `actual` what `desired` says. A resource whose physical name changes (a deployment
 * before stage-scoped names) is moved: the new one is created or updated in place of the old, and the old is
 * deleted in the delete phase (without --prune: a rename is not a prune), except one that `keepsData`, which
 * is kept until a later `apply --prune`, so its last records are not lost.
 */
export function planResources(desired: Resource[], actual: Resource[], opts: { prune?: boolean } = {}): PlanItem[] {
  const key = (r: Resource) => `${r.kind}\u0000${r.name}`;
  const actualByKey = new Map(actual.filter((r) => !r.retired).map((r) => [key(r), r]));
  const items: PlanItem[] = [];
  const physical = (r: Resource) => (r.physical && r.physical !== r.name ? { physical: r.physical } : {});
  // A delete always names what to delete, even where it is the logical name: an adapter given none deletes the current name.
  const deletion = (a: Resource, note?: string): PlanItem => ({ action: 'delete', kind: a.kind, name: a.name, changes: diffFields(a.config, undefined), actual: a.config, ...(a.physical ? { physical: a.physical } : {}), ...(note ? { note } : {}) });
  for (const d of desired) {
    const a = actualByKey.get(key(d));
    actualByKey.delete(key(d));
    if (!a) {
      items.push({ action: 'create', kind: d.kind, name: d.name, changes: diffFields(undefined, d.config), desired: d.config, ...physical(d) });
      continue;
    }
    const changes = resourceChanges(d, a);
    const moved = d.physical !== undefined && a.physical !== undefined && d.physical !== a.physical;
    if (moved) changes.unshift({ path: 'physicalName', before: a.physical, after: d.physical });
    if (a.adopt) changes.push({ path: 'tags', before: undefined, after: a.adopt });
    const item: PlanItem = { action: changes.length ? 'replace' : 'noop', kind: d.kind, name: d.name, changes, desired: d.config, actual: a.config, ...physical(d) };
    markImmutable(item, d.immutable);
    items.push(item);
    if (!moved) continue;
    if (d.keepsData || a.keepsData) item.note = `a new ${d.kind} ${d.physical} is created; the old ${a.physical} keeps its data and stays until \`iotctl apply --prune\` in a later apply, once its data has been read`;
    else items.push(deletion(a, `renamed to ${d.physical}`));
  }
  // A retired copy that keeps no data is what an interrupted move left behind: deleted as the move would have.
  for (const a of actual) {
    if (a.retired && a.keepsData && opts.prune) items.push(deletion(a, `old name of ${a.kind} ${a.name}, kept with its data by an earlier apply`));
    if (a.retired && !a.keepsData) items.push(deletion(a, `old name of ${a.kind} ${a.name}, left by an earlier move`));
  }
  if (opts.prune) for (const a of actualByKey.values()) if (!a.adopt) items.push(deletion(a));
  return items;
}

/**
 * What differs: in the target's shape when either side has one (the spec's fields shown when they differ
 * too, else the target's under `target:`), else in the spec's.
 */
function resourceChanges(d: Resource, a: Resource): FieldChange[] {
  const spec = diffFields(a.config, d.config);
  if (d.compare === undefined && a.compare === undefined) return spec;
  const target = diffFields(a.compare, d.compare);
  if (!target.length) return [];
  return spec.length ? spec : target.map((c) => ({ ...c, path: c.path ? `target:${c.path}` : 'target' }));
}

/** Marks changes of immutable fields with what they replace, and collects the ones that cannot be applied. */
function markImmutable(item: PlanItem, rules: Record<string, FieldRule> | undefined): void {
  if (!rules) return;
  const covers = (rule: string, path: string) => path === rule || path.startsWith(`${rule}.`) || path.startsWith(`${rule}[`);
  for (const c of item.changes) {
    const path = c.path.replace(/^target:/, '');
    const key = Object.keys(rules).filter((r) => covers(r, path)).sort((x, y) => y.length - x.length)[0];
    if (key === undefined) continue;
    const rule = rules[key]!;
    if (rule.replaces) c.replaces = rule.replaces;
    if (rule.refuse && !item.refused?.some((r) => r.reason === rule.refuse!.reason)) (item.refused ??= []).push(rule.refuse);
  }
}

/** Every change of the plan that cannot be applied, by resource. */
export function planRefusals(items: PlanItem[]): { kind: string; name: string; refusal: Refusal }[] {
  return items.flatMap((i) => (i.refused ?? []).map((refusal) => ({ kind: i.kind, name: i.name, refusal })));
}

/** Field-level differences between two JSON values, with dotted/indexed paths. */
export function diffFields(before: unknown, after: unknown, path = ''): FieldChange[] {
  if (deepEqual(before, after)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(before) && isObj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => diffFields(before[k], after[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    return before.flatMap((b, i) => diffFields(b, after[i], `${path}[${i}]`));
  }
  // Items added or removed at the end (a pipeline's delivery stream) show one by one.
  if (Array.isArray(before) && Array.isArray(after) && before.length && after.length) {
    const common = Math.min(before.length, after.length);
    if (before.slice(0, common).every((b, i) => deepEqual(b, after[i])))
      return Array.from({ length: Math.max(before.length, after.length) - common }, (_, k) => ({ path: `${path}[${common + k}]`, before: before[common + k], after: after[common + k] }));
  }
  return [{ path, before, after }];
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((v, i) => deepEqual(v, (b as unknown[])[i]));
  const ka = Object.keys(a as object).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

export interface SectionItems {
  section: string;
  items: PlanItem[];
}

/**
 * The order apply runs a plan in, given sections in dependency order: first every create and update, section
 * by section forward; then every delete, section by section in reverse, so nothing is deleted while a
 * resource that is still kept (a rule writing to a stream) depends on it.
 */
export function applyOrder(plans: SectionItems[]): SectionItems[] {
  const phase = (p: SectionItems, deletes: boolean) => ({ section: p.section, items: p.items.filter((i) => i.action !== 'noop' && (i.action === 'delete') === deletes) });
  return [...plans.map((p) => phase(p, false)), ...[...plans].reverse().map((p) => phase(p, true))].filter((p) => p.items.length > 0);
}

export function planHasChanges(items: PlanItem[]): boolean {
  return items.some((i) => i.action !== 'noop');
}

const SYMBOL: Record<PlanAction, string> = { create: '+', replace: '~', delete: '-', noop: ' ' };

/** Text rendering of a plan (rendering is separate from diffing). */
export function formatPlan(items: PlanItem[]): string {
  const changed = items.filter((i) => i.action !== 'noop');
  if (!changed.length) return 'No changes. The target matches iotctl.yaml.';
  const lines: string[] = [];
  for (const i of changed) {
    lines.push(`${SYMBOL[i.action]} ${i.kind} ${i.name}${i.physical && i.physical !== i.name ? ` (${i.physical})` : ''}`);
    if (i.action === 'replace') for (const c of i.changes) lines.push(`    ${c.path || '(value)'}: ${short(c.before)} -> ${short(c.after)}${c.replaces ? `  (cannot change in place: replaces ${c.replaces})` : ''}`);
    if (i.note) lines.push(`    note: ${i.note}`);
    for (const r of i.refused ?? []) lines.push(`    ! cannot apply: ${r.reason}`, `      fix: ${r.hint}`);
  }
  const count = (a: PlanAction) => changed.filter((i) => i.action === a).length;
  const refused = changed.filter((i) => i.refused?.length).length;
  lines.push(`Plan: ${count('create')} to create, ${count('replace')} to replace, ${count('delete')} to delete.${refused ? ` ${refused} cannot be applied (see "cannot apply").` : ''}`);
  return lines.join('\n');
}

function short(v: unknown): string {
  const s = v === undefined ? '(unset)' : JSON.stringify(v);
  return s.length > 240 ? s.slice(0, 237) + '...' : s;
}
