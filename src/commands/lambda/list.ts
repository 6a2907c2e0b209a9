import { BaseCommand } from '../../base-command.js';
import type { FunctionSummary } from '../../ports.js';
import { maskedEnvironment } from '../../services/functions.js';
import { withTarget } from '../../targets/index.js';
import { printTable } from '../../ui/output.js';

export interface FunctionListRow extends FunctionSummary {
  /** Records of the event source stream not processed yet (null without an event source or stream). */
  backlog: number | null;
  declared: boolean;
}

export default class LambdaList extends BaseCommand<typeof LambdaList> {
  static override summary = 'List deployed functions, their event source mappings and backlog.';
  static override examples = ['<%= config.bin %> lambda list', '<%= config.bin %> lambda list --json'];

  async run(): Promise<FunctionListRow[]> {
    return withTarget(this.ctx, async (target) => {
      const declared = new Set(this.ctx.spec.spec.functions.map((f) => f.name));
      const lag = new Map((await target.functions.mappings()).map((m) => [m.functionName, m.lag]));
      const rows = (await target.functions.list()).map((f): FunctionListRow => ({ ...f, environment: maskedEnvironment(f.environment), backlog: lag.get(f.name) ?? null, declared: declared.has(f.name) }));
      if (!this.jsonEnabled())
        await printTable(rows, [
          { header: 'Function', get: (r) => r.name },
          { header: 'Template', get: (r) => r.template },
          { header: 'Code', get: (r) => r.sha256.slice(0, 12) },
          { header: 'Timeout', get: (r) => `${r.timeoutSeconds}s` },
          { header: 'Memory', get: (r) => `${r.memoryMb} MB` },
          { header: 'Event source', get: (r) => (r.eventSource ? `${r.eventSource.stream} (batch ${r.eventSource.batchSize}, ${r.eventSource.startingPosition})` : '') },
          { header: 'Backlog', get: (r) => r.backlog ?? '' },
          { header: 'In spec', get: (r) => (r.declared ? 'yes' : 'no') },
          { header: 'Updated', get: (r) => new Date(r.updatedAt) },
        ]);
      return rows;
    });
  }
}
