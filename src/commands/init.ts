import { existsSync } from 'node:fs';
import { writeNewFile } from '../services/files.js';
import { basename } from 'node:path';
import { BaseCommand, Flags } from '../base-command.js';
import { initSpec } from '../spec/init-template.js';
import { parseSpec } from '../spec/loader.js';
import { UserError } from '../ui/errors.js';
import { info } from '../ui/output.js';
import { projectNameProblem } from '../spec/names.js';

export default class Init extends BaseCommand<typeof Init> {
  static override summary = 'Write a commented iotctl.yaml with the seed architecture (local target, or --target aws).';
  static override examples = ['<%= config.bin %> init', '<%= config.bin %> init --project fleet --force', '<%= config.bin %> init --target aws'];
  static override flags = {
    project: Flags.string({ description: 'Project name (default: the folder name).', env: 'IOTCTL_PROJECT' }),
    force: Flags.boolean({ description: 'Overwrite an existing iotctl.yaml.' }),
  };

  async run(): Promise<{ file: string; project: string }> {
    const file = this.ctx.paths.specFile;
    if (existsSync(file) && !this.flags.force) {
      throw new UserError(`${file} already exists.`, 'Edit it, or pass --force to overwrite it.', 'SPEC_EXISTS');
    }
    const folder = basename(this.ctx.paths.projectDir);
    const project = this.flags.project ?? (projectNameProblem(folder)?.suggestion ?? folder);
    const problem = projectNameProblem(project);
    if (problem) throw new UserError(`Invalid project name "${project}": it ${problem.message}.`, `use --project ${problem.suggestion}.`, 'USAGE');
    const text = initSpec(project, this.ctx.options.target ?? 'local');
    parseSpec(text, file); // the template must always validate
    writeNewFile(file, text, { force: this.flags.force, flag: '--spec' });
    if (!this.jsonEnabled()) {
      info(`Wrote ${file}. Next steps:`);
      if (this.ctx.options.target === 'aws') {
        info('  export AWS_PROFILE=... DATABASE_URL=...   # credentials and the PostgreSQL (or database.rds)');
        info('  iotctl apply --dry-run      # see the plan against your account');
        info('  iotctl apply --yes');
      } else {
        info('  iotctl local up --detach     # start the local platform');
        info('  iotctl apply --yes           # create the stream, rules, function, database and analytics');
      }
      info('  iotctl device register sensor-1');
    }
    return { file, project };
  }
}
