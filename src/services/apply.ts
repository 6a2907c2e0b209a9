import type { Context } from '../context.js';
import { planResources, type PlanItem } from '../iot/plan/index.js';
import type { Target } from '../targets/index.js';
import { desiredDevicePolicy } from './devices.js';
import { applyRulePlan, planRules } from './rules.js';
import { localSections } from '../targets/local/sections.js';

/** One section of iotctl.yaml that `iotctl apply` converges. */
export interface ApplySection {
  name: string;
  plan(opts: { prune?: boolean }): Promise<PlanItem[]>;
  apply(items: PlanItem[]): Promise<void>;
}

/** Every section, in dependency order: what a rule or function names must exist before it. */
export function sections(ctx: Context, target: Target): ApplySection[] {
  const { spec } = ctx.spec;
  const devices: ApplySection = {
    name: 'devices',
    async plan() {
      const name = spec.devices.policy.name;
      const actual = await target.devices.getPolicy(name);
      return planResources([{ kind: 'policy', name, config: desiredDevicePolicy(spec) }], actual ? [{ kind: 'policy', name, config: actual }] : []);
    },
    async apply(items) {
      for (const i of items) if (i.action === 'create' || i.action === 'replace') await target.devices.putPolicy(i.name, i.desired as never);
    },
  };
  const rules: ApplySection = {
    name: 'rules',
    plan: (opts) => planRules(target.rules, spec, opts),
    apply: (items) => applyRulePlan(target.rules, items),
  };
  return [devices, ...localSections(ctx), rules];
}

export interface SectionPlan {
  section: string;
  items: PlanItem[];
}

export async function planAll(all: ApplySection[], opts: { prune?: boolean }): Promise<SectionPlan[]> {
  const out: SectionPlan[] = [];
  for (const s of all) out.push({ section: s.name, items: await s.plan(opts) });
  return out;
}

/** Apply section by section; a failure stops before later sections, which depend on earlier ones. */
export async function applyAll(all: ApplySection[], plans: SectionPlan[], onSection: (name: string) => void = () => {}): Promise<void> {
  for (const s of all) {
    const plan = plans.find((p) => p.section === s.name);
    if (!plan || !plan.items.some((i) => i.action !== 'noop')) continue;
    onSection(s.name);
    await s.apply(plan.items);
  }
}
