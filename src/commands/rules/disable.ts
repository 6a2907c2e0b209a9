import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { setRuleEnabled } from './enable.js';

export default class RulesDisable extends BaseCommand<typeof RulesDisable> {
  static override summary = 'Disable a topic rule on the target (messages stop flowing through it at once).';
  static override examples = ['<%= config.bin %> rules disable telemetry_to_stream'];
  static override args = { name: Args.string({ required: true, description: 'Rule name.' }) };

  async run() {
    return setRuleEnabled(this as never, this.args.name, false);
  }
}
