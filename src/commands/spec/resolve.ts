import { BaseCommand } from '../../base-command.js';
import { redactSecrets } from '../../db/redact.js';
import type { Spec } from '../../spec/schema.js';
import { yaml } from '../../spec/yaml-doc.js';

export default class SpecResolve extends BaseCommand<typeof SpecResolve> {
  static override summary = "Print a stage's effective spec: iotctl.yaml with the stage's overrides merged in and every default filled.";
  static override description = 'YAML by default, JSON with --json. A password in database.url is masked.';
  static override examples = ['<%= config.bin %> spec resolve --stage prod', '<%= config.bin %> spec resolve --stage prod --json', 'diff <(<%= config.bin %> spec resolve --stage staging) <(<%= config.bin %> spec resolve --stage prod)'];

  async run(): Promise<Spec> {
    const { spec } = this.ctx.spec;
    const shown: Spec = spec.database.url ? { ...spec, database: { ...spec.database, url: redactSecrets(spec.database.url) } } : spec;
    if (!this.jsonEnabled()) process.stdout.write(yaml().stringify(shown));
    return shown;
  }
}
