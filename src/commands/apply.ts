import { BaseCommand, Flags } from '../base-command.js';
import { formatPlan, planHasChanges } from '../iot/plan/index.js';
import { applySteps, planSteps, sections, type SectionPlan } from '../services/apply.js';
import { openTarget } from '../targets/index.js';
import { assertApplicable } from '../services/refusals.js';
import { info } from '../ui/output.js';
import { confirm } from '../ui/prompt.js';
import { runSteps, stepsMode } from '../ui/tasks.js';

export default class Apply extends BaseCommand<typeof Apply> {
  static override summary = 'Apply every section of iotctl.yaml in dependency order, with one combined plan.';
  static override description = 'Order: device policy, streams, database, functions, analytics, rules (on aws, sections that do not need each other run at once, and rules wait only for what they name to exist); with --prune, deletes run after every create and update, in reverse order. Applying twice prints "No changes".';
  static override examples = ['<%= config.bin %> apply --dry-run', '<%= config.bin %> apply --yes'];
  static override flags = {
    'dry-run': Flags.boolean({ description: 'Show the plan only.' }),
    prune: Flags.boolean({ description: 'Delete resources the spec no longer declares.' }),
    adopt: Flags.boolean({ description: 'aws: take over resources the spec names that exist without iotctl tags (built by hand): the plan shows the tags they get. Never another project\'s or stage\'s.' }),
    yes: Flags.boolean({ char: 'y', description: 'Apply without asking.' }),
  };

  async run(): Promise<{ plan: SectionPlan[]; applied: boolean }> {
    if (this.flags.adopt) this.ctx.options.adopt = true;
    const target = await openTarget(this.ctx);
    try {
      const all = sections(this.ctx, target);
      const mode = stepsMode(this.jsonEnabled());
      const plan: SectionPlan[] = [];
      await runSteps(planSteps(all, { prune: this.flags.prune }, plan), mode, { concurrent: true });
      const items = plan.flatMap((p) => p.items);
      info(formatPlan(items));
      assertApplicable(items);
      if (!planHasChanges(items) || this.flags['dry-run']) return { plan, applied: false };
      await confirm('Apply this plan?', this.flags.yes);
      // Independent sections at once (a handful; each bounds its own concurrency).
      await runSteps(applySteps(all, plan, target.name), mode, { graph: {} });
      info('Applied.');
      return { plan, applied: true };
    } finally {
      await target.close();
    }
  }
}
