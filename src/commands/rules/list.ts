import { BaseCommand } from '../../base-command.js';
import type { RuleSpec } from '../../spec/schema.js';
import { openTarget } from '../../targets/index.js';
import { printTable } from '../../ui/output.js';

export default class RulesList extends BaseCommand<typeof RulesList> {
  static override summary = 'List the topic rules applied to the target.';
  static override examples = ['<%= config.bin %> rules list'];

  async run(): Promise<RuleSpec[]> {
    const target = await openTarget(this.ctx);
    try {
      const rules = await target.rules.list();
      if (!this.jsonEnabled()) {
        await printTable(rules, [
          { header: 'Name', get: (r) => r.name },
          { header: 'Enabled', get: (r) => r.enabled },
          { header: 'Actions', get: (r) => r.actions.map((a) => Object.keys(a)[0]).join(',') },
          { header: 'SQL', get: (r) => r.sql.replace(/\s+/g, ' ') },
        ]);
      }
      return rules;
    } finally {
      await target.close();
    }
  }
}
