import { BaseCommand, Flags } from '../../base-command.js';
import type { RuleErrorRecord } from '../../ports.js';
import { withTarget } from '../../targets/index.js';
import { printTable } from '../../ui/output.js';

export default class RulesErrors extends BaseCommand<typeof RulesErrors> {
  static override summary = 'Show recent rule failures (evaluation errors and failed actions), newest first.';
  static override description = "Every failure is kept here with AWS's error payload, whether or not the rule has an errorAction.";
  static override examples = ['<%= config.bin %> rules errors', '<%= config.bin %> rules errors --rule telemetry_to_stream --limit 5 --json'];
  static override flags = {
    rule: Flags.string({ description: 'Only this rule.' }),
    limit: Flags.integer({ description: 'At most this many.', default: 20, min: 1 }),
  };

  async run(): Promise<RuleErrorRecord[]> {
    const rows = await withTarget(this.ctx, (target) => target.ruleErrors.list({ rule: this.flags.rule, limit: this.flags.limit }));
    if (!this.jsonEnabled()) {
      await printTable(rows, [
        { header: 'At', get: (r) => r.at },
        { header: 'Rule', get: (r) => r.ruleName },
        { header: 'Topic', get: (r) => payload(r).topic },
        { header: 'Client', get: (r) => payload(r).clientId },
        { header: 'Failures', get: (r) => (payload(r).failures ?? []).map((f) => `${f.failedAction}(${f.failedResource}): ${f.errorMessage}`).join('; ') },
      ]);
    }
    return rows;
  }
}

/** The fields of AWS's error action payload this table shows. */
function payload(r: RuleErrorRecord) {
  return r.error as { topic?: string; clientId?: string; failures?: { failedAction: string; failedResource: string; errorMessage: string }[] };
}
