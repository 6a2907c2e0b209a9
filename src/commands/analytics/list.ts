import { BaseCommand } from '../../base-command.js';
import { openLakeSession } from '../../targets/local/lake/cli.js';
import { readLakeResources } from '../../targets/local/lake/config.js';
import { printTable } from '../../ui/output.js';

interface ListedResource {
  kind: string;
  name: string;
  config: Record<string, unknown>;
}

export default class AnalyticsList extends BaseCommand<typeof AnalyticsList> {
  static override summary = 'List the analytics channels, datastores, pipelines and datasets applied to the local platform.';
  static override examples = ['<%= config.bin %> analytics list', '<%= config.bin %> analytics list --json'];

  async run(): Promise<ListedResource[]> {
    const session = openLakeSession(this.ctx);
    try {
      const resources = readLakeResources(session.db) as ListedResource[];
      if (!this.jsonEnabled())
        await printTable(resources, [
          { header: 'Kind', get: (r) => r.kind },
          { header: 'Name', get: (r) => r.name },
          { header: 'Details', get: (r) => describe(r) },
        ]);
      return resources;
    } finally {
      session.close();
    }
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
