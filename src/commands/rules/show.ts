import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import type { RuleSpec } from '../../spec/schema.js';
import { openTarget } from '../../targets/index.js';
import { UserError } from '../../ui/errors.js';
import { printJson } from '../../ui/output.js';

export default class RulesShow extends BaseCommand<typeof RulesShow> {
  static override summary = 'Show one applied topic rule.';
  static override examples = ['<%= config.bin %> rules show telemetry_to_stream'];
  static override args = { name: Args.string({ required: true, description: 'Rule name.' }) };

  async run(): Promise<RuleSpec> {
    const target = await openTarget(this.ctx);
    try {
      const rule = await target.rules.get(this.args.name);
      if (!rule) throw new UserError(`No rule named "${this.args.name}" on the target.`, 'List them with `iotctl rules list`, or apply the spec with `iotctl rules apply`.', 'RULE_NOT_FOUND');
      if (!this.jsonEnabled()) printJson(rule);
      return rule;
    } finally {
      await target.close();
    }
  }
}
