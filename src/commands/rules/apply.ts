import { BaseCommand, Flags } from '../../base-command.js';
import { formatPlan, planHasChanges, type PlanItem } from '../../iot/plan/index.js';
import { applyRulePlan, planRules } from '../../services/rules.js';
import { openTarget } from '../../targets/index.js';
import { assertApplicable } from '../../services/refusals.js';
import { info } from '../../ui/output.js';
import { confirm } from '../../ui/prompt.js';

export default class RulesApply extends BaseCommand<typeof RulesApply> {
  static override summary = "Plan and apply iotctl.yaml's topic rules to the target.";
  static override description = 'Prints a plan (+ create, ~ replace with a field-level diff, - delete with --prune), then applies it. Applying twice prints "No changes".';
  static override examples = ['<%= config.bin %> rules apply --dry-run', '<%= config.bin %> rules apply --yes', '<%= config.bin %> rules apply --prune --yes'];
  static override flags = {
    'dry-run': Flags.boolean({ description: 'Show the plan only.' }),
    prune: Flags.boolean({ description: 'Delete rules on the target that iotctl.yaml does not declare.' }),
    yes: Flags.boolean({ char: 'y', description: 'Apply without asking.' }),
  };

  async run(): Promise<{ plan: PlanItem[]; applied: boolean }> {
    const target = await openTarget(this.ctx);
    try {
      const plan = await planRules(target.rules, this.ctx.spec.spec, { prune: this.flags.prune }, (name) => target.physicalName?.('rule', name));
      info(formatPlan(plan));
      assertApplicable(plan);
      if (!planHasChanges(plan) || this.flags['dry-run']) return { plan, applied: false };
      await confirm('Apply these rule changes?', this.flags.yes);
      await applyRulePlan(target.rules, plan);
      info('Applied. A running local platform picks the rules up at once.');
      return { plan, applied: true };
    } finally {
      await target.close();
    }
  }
}
