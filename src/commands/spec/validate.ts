import { BaseCommand } from '../../base-command.js';
import { SpecError, type SpecProblem } from '../../spec/loader.js';
import { info } from '../../ui/output.js';

export default class SpecValidate extends BaseCommand<typeof SpecValidate> {
  static override summary = 'Validate iotctl.yaml: schema, references and rule SQL, for the base spec and every declared stage.';
  static override description = 'With --stage (or IOTCTL_STAGE) only that stage\'s effective spec is validated; without, the base spec and each stage under `stages:`, each merged and validated whole.';
  static override examples = ['<%= config.bin %> spec validate', '<%= config.bin %> spec validate --stage prod', '<%= config.bin %> spec validate --spec path/to/iotctl.yaml --json'];

  async run(): Promise<{ valid: true; file: string; project: string; target: string; stages: string[] }> {
    const { flag, env } = this.ctx.options.stage ?? {};
    const base = await this.ctx.loadBaseSpec();
    let stages: string[];
    if (flag !== undefined || env) {
      stages = [this.ctx.spec.stage];
    } else {
      const { resolveStage } = await import('../../spec/loader.js');
      const problems: SpecProblem[] = [];
      stages = [...new Set([this.ctx.stage, ...base.declaredStages])];
      for (const stage of stages) {
        try {
          resolveStage(base, stage);
        } catch (e) {
          if (!(e instanceof SpecError)) throw e;
          problems.push(...e.problems.map((p) => ({ ...p, message: `(stage ${stage}) ${p.message}` })));
        }
      }
      if (problems.length) throw new SpecError(problems);
    }
    if (!this.jsonEnabled()) info(`${base.file} is valid${stages.length > 1 || stages[0] !== 'default' ? ` (stages: ${stages.join(', ')})` : ''}.`);
    return { valid: true, file: base.file, project: base.spec.project, target: this.ctx.spec.spec.target, stages };
  }
}
