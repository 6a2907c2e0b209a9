import { BaseCommand } from '../../base-command.js';
import type { AnalyticsResource } from '../../ports.js';
import { withTarget } from '../../targets/index.js';
import { printTable } from '../../ui/output.js';

type ListedResource = AnalyticsResource;

export default class AnalyticsList extends BaseCommand<typeof AnalyticsList> {
  static override summary = 'List the analytics channels, datastores, pipelines and datasets applied to the local platform.';
  static override examples = ['<%= config.bin %> analytics list', '<%= config.bin %> analytics list --json'];

  async run(): Promise<ListedResource[]> {
    return withTarget(this.ctx, async (target) => {
      const resources = await target.analytics.list();
      if (!this.jsonEnabled())
        await printTable(resources, [
          { header: 'Kind', get: (r) => r.kind },
          { header: 'Name', get: (r) => r.name },
          { header: 'Details', get: (r) => describe(r) },
        ]);
      return resources;
    });
  }
}

function describe(r: ListedResource): string {
  const c = r.config;
  switch (r.kind) {
    case 'channel':
      return c.retentionDays ? `retention ${c.retentionDays} days` : 'unlimited retention';
    case 'datastore':
      return `${c.format}${c.retentionDays ? `, retention ${c.retentionDays} days` : ''}`;
    case 'pipeline': {
      const activities = (c.activities as Record<string, unknown>[]).map((a) => Object.keys(a)[0]);
      return `${c.channel} -> ${activities.length ? activities.join(' -> ') + ' -> ' : ''}${c.datastore}`;
    }
    case 'dataset':
      return `${c.schedule ?? 'on demand'}${c.deltaTime ? ', delta window' : ''}, keeps ${c.versionsToKeep} version(s)`;
    default:
      return JSON.stringify(c);
  }
}
