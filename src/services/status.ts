import type { Context } from '../context.js';
import type { PlanItem } from '../iot/plan/index.js';
import type { Target } from '../ports.js';
import { planAll, sections } from './apply.js';

export type ResourceState = 'in sync' | 'missing' | 'drift' | 'not in spec';

export interface ResourceStatus {
  section: string;
  kind: string;
  name: string;
  /** The target's name, where it is not `name` (aws: scoped by project and stage). */
  physicalName?: string;
  /** What the state alone does not say (a rename, an old copy kept with its data). */
  note?: string;
  state: ResourceState;
  /** For drift: the fields that differ, with the target's value and the spec's. */
  changes: { path: string; actual: unknown; declared: unknown }[];
}

const STATE: Record<PlanItem['action'], ResourceState> = { noop: 'in sync', create: 'missing', replace: 'drift', delete: 'not in spec' };

/**
 * What iotctl.yaml declares next to what the target has, per resource. It is apply's own plan (with prune, so
 * resources the spec does not declare show up too): no-op is in sync, create is missing, replace is drift.
 */
export async function resourceStatus(ctx: Context, target: Target): Promise<ResourceStatus[]> {
  const plans = await planAll(sections(ctx, target), { prune: true });
  return plans.flatMap((p) =>
    p.items.map((i) => ({
      section: p.section,
      kind: i.kind,
      name: i.name,
      ...(i.physical && i.physical !== i.name ? { physicalName: i.physical } : {}),
      ...(i.note ? { note: i.note } : {}),
      state: STATE[i.action],
      changes: i.action === 'replace' ? i.changes.map((c) => ({ path: c.path, actual: c.before, declared: c.after })) : [],
    })),
  );
}
