import { BaseCommand, Flags } from '../../base-command.js';
import { formatPlan, planHasChanges, type PlanItem } from '../../iot/plan/index.js';
import { withTarget } from '../../targets/index.js';
import { assertApplicable } from '../../services/refusals.js';
import { info, warn } from '../../ui/output.js';
import { confirm } from '../../ui/prompt.js';

export default class AnalyticsApply extends BaseCommand<typeof AnalyticsApply> {
  static override summary = "Plan and apply iotctl.yaml's analytics section: channels, pipelines, datastores and datasets.";
  static override description =
    'Validates pipeline activities (filter and math expressions, attribute names, lambda functions) and dataset SQL (against the datastores, with DuckDB), ' +
    'prints a plan (+ create, ~ replace with a field-level diff, - delete with --prune), then applies it. A running local platform picks the change up at once; ' +
    'a new pipeline processes messages that arrive from now on (use `analytics reprocess` for older ones). Deleting a channel, datastore or dataset deletes its data. ' +
    'Applying twice prints "No changes".';
  static override examples = ['<%= config.bin %> analytics apply --dry-run', '<%= config.bin %> analytics apply --yes', '<%= config.bin %> analytics apply --prune --yes'];
  static override flags = {
    'dry-run': Flags.boolean({ description: 'Show the plan only.', env: 'IOTCTL_DRY_RUN' }),
    prune: Flags.boolean({ description: 'Delete analytics resources (and their data) that iotctl.yaml no longer declares.', env: 'IOTCTL_PRUNE' }),
    yes: Flags.boolean({ char: 'y', description: 'Apply without asking.', env: 'IOTCTL_YES' }),
  };

  async run(): Promise<{ plan: PlanItem[]; applied: boolean; warnings: string[] }> {
    return withTarget(this.ctx, async (target) => {
      const { items, warnings } = await target.analytics.plan({ prune: this.flags.prune });
      for (const w of warnings) warn(w);
      info(formatPlan(items));
      assertApplicable(items);
      if (!planHasChanges(items) || this.flags['dry-run']) return { plan: items, applied: false, warnings };
      const deletes = items.filter((i) => i.action === 'delete');
      await confirm(deletes.length ? `Apply these changes? ${deletes.length} resource(s) and their data will be deleted.` : 'Apply these analytics changes?', this.flags.yes);
      await target.analytics.apply(items);
      if (target.name === 'local') info(target.running() ? 'Applied. The running local platform picks the changes up at once.' : 'Applied. `iotctl local up` runs the pipelines and datasets.');
      else info('Applied.');
      return { plan: items, applied: true, warnings };
    });
  }
}
