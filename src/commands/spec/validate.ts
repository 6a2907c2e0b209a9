import { BaseCommand } from '../../base-command.js';
import { info } from '../../ui/output.js';

export default class SpecValidate extends BaseCommand<typeof SpecValidate> {
  static override summary = 'Validate iotctl.yaml: schema, references and rule SQL.';
  static override examples = ['<%= config.bin %> spec validate', '<%= config.bin %> spec validate --spec path/to/iotctl.yaml --json'];

  async run(): Promise<{ valid: true; file: string; project: string; target: string }> {
    const { spec, file } = this.ctx.spec;
    if (!this.jsonEnabled()) info(`${file} is valid.`);
    return { valid: true, file, project: spec.project, target: spec.target };
  }
}
