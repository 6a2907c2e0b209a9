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
}

export interface FieldChange {
  path: string;
  before: unknown;
  after: unknown;
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
  // A delete always names what to delete: an older deployment's physical name may equal the logical name,
  // and an adapter told no physical name deletes the stage's current one.
  const deletion = (a: Resource, note?: string): PlanItem => ({ action: 'delete', kind: a.kind, name: a.name, changes: diffFields(a.config, undefined), actual: a.config, ...(a.physical ? { physical: a.physical } : {}), ...(note ? { note } : {}) });
  for (const d of desired) {
    const a = actualByKey.get(key(d));
    actualByKey.delete(key(d));
    if (!a) {
      items.push({ action: 'create', kind: d.kind, name: d.name, changes: diffFields(undefined, d.config), desired: d.config, ...physical(d) });
      continue;
    }
    const changes = diffFields(a.config, d.config);
    const moved = d.physical !== undefined && a.physical !== undefined && d.physical !== a.physical;
    if (moved) changes.unshift({ path: 'physicalName', before: a.physical, after: d.physical });
    if (a.adopt) changes.push({ path: 'tags', before: undefined, after: a.adopt });
    const item: PlanItem = { action: changes.length ? 'replace' : 'noop', kind: d.kind, name: d.name, changes, desired: d.config, actual: a.config, ...physical(d) };
    items.push(item);
    if (!moved) continue;
    if (d.keepsData || a.keepsData) item.note = `a new ${d.kind} ${d.physical} is created; the old ${a.physical} keeps its data and stays until \`iotctl apply --prune\` in a later apply, once its data has been read`;
    else items.push(deletion(a, `renamed to ${d.physical}`));
  }
  if (opts.prune)
    for (const a of actual)
      if (a.retired) items.push(deletion(a, `old name of ${a.kind} ${a.name}, kept with its data by an earlier apply`));
  if (opts.prune) for (const a of actualByKey.values()) if (!a.adopt) items.push(deletion(a));
  return items;
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
    if (i.action === 'replace') for (const c of i.changes) lines.push(`    ${c.path || '(value)'}: ${short(c.before)} -> ${short(c.after)}`);
    if (i.note) lines.push(`    note: ${i.note}`);
  }
  const count = (a: PlanAction) => changed.filter((i) => i.action === a).length;
  lines.push(`Plan: ${count('create')} to create, ${count('replace')} to replace, ${count('delete')} to delete.`);
  return lines.join('\n');
}

function short(v: unknown): string {
  const s = v === undefined ? '(unset)' : JSON.stringify(v);
  return s.length > 240 ? s.slice(0, 237) + '...' : s;
}
