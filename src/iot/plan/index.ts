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
}

export function planResources(desired: Resource[], actual: Resource[], opts: { prune?: boolean } = {}): PlanItem[] {
  const key = (r: Resource) => `${r.kind}\u0000${r.name}`;
  const actualByKey = new Map(actual.map((r) => [key(r), r]));
  const items: PlanItem[] = [];
  for (const d of desired) {
    const a = actualByKey.get(key(d));
    actualByKey.delete(key(d));
    if (!a) items.push({ action: 'create', kind: d.kind, name: d.name, changes: diffFields(undefined, d.config), desired: d.config });
    else {
      const changes = diffFields(a.config, d.config);
      if (a.adopt) changes.push({ path: 'tags', before: undefined, after: a.adopt });
      items.push({ action: changes.length ? 'replace' : 'noop', kind: d.kind, name: d.name, changes, desired: d.config, actual: a.config });
    }
  }
  if (opts.prune) for (const a of actualByKey.values()) if (!a.adopt) items.push({ action: 'delete', kind: a.kind, name: a.name, changes: diffFields(a.config, undefined), actual: a.config });
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
    lines.push(`${SYMBOL[i.action]} ${i.kind} ${i.name}`);
    if (i.action === 'replace') for (const c of i.changes) lines.push(`    ${c.path || '(value)'}: ${short(c.before)} -> ${short(c.after)}`);
  }
  const count = (a: PlanAction) => changed.filter((i) => i.action === a).length;
  lines.push(`Plan: ${count('create')} to create, ${count('replace')} to replace, ${count('delete')} to delete.`);
  return lines.join('\n');
}

function short(v: unknown): string {
  const s = v === undefined ? '(unset)' : JSON.stringify(v);
  return s.length > 240 ? s.slice(0, 237) + '...' : s;
}
