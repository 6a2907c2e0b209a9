import { BaseCommand } from '../../base-command.js';
import { formatProblem, SpecError, type SpecProblem } from '../../spec/loader.js';
import { info } from '../../ui/output.js';

export default class SpecValidate extends BaseCommand<typeof SpecValidate> {
  static override summary = 'Validate iotctl.yaml: schema, references and rule SQL, for the base spec and every declared stage.';
  static override description = 'With --stage (or IOTCTL_STAGE) only that stage\'s effective spec is validated; without, the base spec and each stage under `stages:`, each merged and validated whole.';
  static override examples = ['<%= config.bin %> spec validate', '<%= config.bin %> spec validate --stage prod', '<%= config.bin %> spec validate --spec path/to/iotctl.yaml --json'];

  async run(): Promise<{ valid: true; file: string; project: string; target: string; stages: string[]; warnings?: SpecProblem[] }> {
    const { flag, env } = this.ctx.options.stage ?? {};
    const base = await this.ctx.loadBaseSpec();
    const { resolveStage } = await import('../../spec/loader.js');
    const only = flag !== undefined || env;
    const stages = only ? [this.ctx.spec.stage] : [...new Set([this.ctx.stage, ...base.declaredStages])];
    const problems: SpecProblem[] = [];
    const warnings = new Map<string, SpecProblem>();
    for (const stage of stages) {
      const label = (p: SpecProblem) => (only ? p : { ...p, message: `(stage ${stage}) ${p.message}` });
      try {
        // Warnings the stages share (the base's) are shown once, without a stage.
        for (const w of resolveStage(base, stage).warnings ?? []) {
          const key = `${w.line}:${w.col}:${w.message}`;
          if (!warnings.has(key)) warnings.set(key, stages.length > 1 && !(base.warnings ?? []).some((b) => b.line === w.line && b.message === w.message) ? label(w) : w);
        }
      } catch (e) {
        if (!(e instanceof SpecError)) throw e;
        problems.push(...e.problems.map(label));
      }
    }
    if (problems.length) throw new SpecError(problems);
    if (!this.jsonEnabled()) {
      for (const w of warnings.values()) info(`warning: ${formatProblem(w).trimStart()}`);
      info(`${base.file} is valid${stages.length > 1 || stages[0] !== 'default' ? ` (stages: ${stages.join(', ')})` : ''}${warnings.size ? `, with ${warnings.size} warning${warnings.size === 1 ? '' : 's'}` : ''}.`);
    }
    return { valid: true, file: base.file, project: base.spec.project, target: this.ctx.spec.spec.target, stages, ...(warnings.size ? { warnings: [...warnings.values()] } : {}) };
  }
}
