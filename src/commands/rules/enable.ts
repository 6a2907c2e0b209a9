import { Args } from '@oclif/core';
import { existsSync } from 'node:fs';
import { BaseCommand } from '../../base-command.js';
import { openTarget } from '../../targets/index.js';
import { UserError } from '../../ui/errors.js';
import { info } from '../../ui/output.js';

/** Shared by `rules enable` and `rules disable`. */
export async function setRuleEnabled(cmd: BaseCommand<never>, name: string, enabled: boolean) {
  const target = await openTarget(cmd['ctx']);
  try {
    const rule = await target.rules.get(name);
    if (!rule) throw new UserError(`No rule named "${name}" on the target.`, 'List them with `iotctl rules list`.', 'RULE_NOT_FOUND');
    await target.rules.put({ ...rule, enabled });
    const declared = existsSync(cmd['ctx'].paths.specFile) ? cmd['ctx'].spec.spec.rules.find((r) => r.name === name) : undefined;
    if (!cmd.jsonEnabled()) {
      info(`${enabled ? 'Enabled' : 'Disabled'} ${name}.`);
      if (declared && declared.enabled !== enabled) info(`iotctl.yaml says enabled: ${declared.enabled}; the next \`iotctl apply\` restores that.`);
    }
    return { name, enabled };
  } finally {
    await target.close();
  }
}

export default class RulesEnable extends BaseCommand<typeof RulesEnable> {
  static override summary = 'Enable a topic rule on the target.';
  static override examples = ['<%= config.bin %> rules enable telemetry_to_stream'];
  static override args = { name: Args.string({ required: true, description: 'Rule name.' }) };

  async run() {
    return setRuleEnabled(this as never, this.args.name, true);
  }
}
