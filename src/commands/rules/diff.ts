import { BaseCommand, Flags } from '../../base-command.js';
import { formatPlan, planHasChanges, type PlanItem } from '../../iot/plan/index.js';
import { planRules } from '../../services/rules.js';
import { openTarget } from '../../targets/index.js';
import { printLine } from '../../ui/output.js';

export default class RulesDiff extends BaseCommand<typeof RulesDiff> {
  static override summary = "Show how the target's rules differ from iotctl.yaml (exit 0: none; 3: differences).";
  static override examples = ['<%= config.bin %> rules diff', '<%= config.bin %> rules diff --prune --json'];
  static override flags = { prune: Flags.boolean({ description: 'Include rules the spec does not declare.' }) };

  async run(): Promise<PlanItem[]> {
    const target = await openTarget(this.ctx);
    try {
      const plan = await planRules(target.rules, this.ctx.spec.spec, { prune: this.flags.prune }, (name) => target.physicalName?.('rule', name));
      if (!this.jsonEnabled()) printLine(formatPlan(plan));
      if (planHasChanges(plan)) process.exitCode = 3;
      return plan;
    } finally {
      await target.close();
    }
  }
}
