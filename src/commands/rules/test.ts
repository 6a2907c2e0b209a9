import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { inlineOrFile } from '../../services/files.js';
import { readMessagesFile, testRule, type TestOutcome } from '../../services/rules.js';
import { UserError } from '../../ui/errors.js';
import { isTTY, printLine } from '../../ui/output.js';

export default class RulesTest extends BaseCommand<typeof RulesTest> {
  static override summary = 'Evaluate a rule against sample messages, without a running platform.';
  static override description = 'Prints the output document per message, or {"matched": false} when FROM or WHERE rejects it.';
  static override examples = [
    `<%= config.bin %> rules test telemetry_to_stream --topic dt/demo/sensor-1/telemetry --payload '{"temperature": 25}'`,
    `<%= config.bin %> rules test --sql "SELECT temperature FROM 'dt/+/+/telemetry' WHERE temperature > 20" --topic dt/a/b/telemetry --payload @reading.json`,
    '<%= config.bin %> rules test telemetry_to_stream --messages samples.jsonl --json',
    `<%= config.bin %> rules test telemetry_to_stream --topic '$aws/rules/telemetry_to_stream/dt/demo/sensor-1/telemetry' --payload '{"temperature": 25}'`,
  ];
  static override args = { rule: Args.string({ description: 'Rule name in iotctl.yaml.' }) };
  static override flags = {
    sql: Flags.string({ description: 'SQL to test instead of a rule from the spec.', exclusive: ['rule'] }),
    topic: Flags.string({ description: 'Topic of the sample message (a Basic Ingest topic $aws/rules/<rule>/... addresses the rule directly).' }),
    payload: Flags.string({ description: 'Payload: JSON text or @file.', dependsOn: ['topic'] }),
    messages: Flags.string({ description: 'JSON Lines file of {"topic", "payload", "clientId"?}.', exclusive: ['topic', 'payload'] }),
    'client-id': Flags.string({ description: 'Client id seen by clientid().' }),
  };

  async run(): Promise<TestOutcome[]> {
    const sql = this.flags.sql ?? this.ruleSql();
    const messages = this.flags.messages
      ? readMessagesFile(this.flags.messages)
      : this.flags.topic
        ? [{ topic: this.flags.topic, payload: inlineOrFile(this.flags.payload ?? '{}'), clientId: this.flags['client-id'] }]
        : undefined;
    if (!messages) throw new UserError('No sample message.', 'Pass --topic T --payload JSON, or --messages FILE.jsonl.', 'USAGE');
    const outcomes = testRule(sql, messages, Date.now(), this.flags.sql ? undefined : this.args.rule);
    if (!this.jsonEnabled()) {
      for (const o of outcomes) {
        const shown = 'error' in o ? { error: o.error, code: o.code } : o.matched ? o.output : { matched: false };
        printLine(JSON.stringify(shown, null, isTTY() ? 2 : undefined));
      }
    }
    if (outcomes.some((o) => 'error' in o)) process.exitCode = 1;
    return outcomes;
  }

  private ruleSql(): string {
    const name = this.args.rule;
    if (!name) throw new UserError('Name a rule or pass --sql.', 'e.g. `iotctl rules test telemetry_to_stream --topic ... --payload ...`.', 'USAGE');
    const rule = this.ctx.spec.spec.rules.find((r) => r.name === name);
    if (!rule) throw new UserError(`No rule named "${name}" in ${this.ctx.paths.specFile}.`, `Rules: ${this.ctx.spec.spec.rules.map((r) => r.name).join(', ') || 'none'}.`, 'RULE_NOT_FOUND');
    return rule.sql;
  }
}
