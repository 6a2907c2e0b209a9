import { BaseCommand } from '../../base-command.js';
import { listTemplates, type TemplateInfo } from '../../services/bundle.js';
import { printTable } from '../../ui/output.js';

export default class LambdaTemplates extends BaseCommand<typeof LambdaTemplates> {
  static override summary = 'List the function templates that `lambda deploy` can bundle.';
  static override examples = ['<%= config.bin %> lambda templates', '<%= config.bin %> lambda templates --json'];

  async run(): Promise<Array<Omit<TemplateInfo, 'dir'>>> {
    const templates = listTemplates().map(({ dir: _dir, ...t }) => t);
    if (!this.jsonEnabled())
      await printTable(templates, [
        { header: 'Template', get: (t) => t.name },
        { header: 'Runtime', get: (t) => t.runtime },
        { header: 'Timeout', get: (t) => (t.timeoutSeconds ? `${t.timeoutSeconds}s` : '') },
        { header: 'Memory', get: (t) => (t.memoryMb ? `${t.memoryMb} MB` : '') },
        { header: 'Description', get: (t) => t.description },
      ]);
    return templates;
  }
}
