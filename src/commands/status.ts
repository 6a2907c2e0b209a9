import { BaseCommand } from '../base-command.js';
import { resourceStatus, type ResourceStatus } from '../services/status.js';
import { withTarget } from '../targets/index.js';
import { info, printTable } from '../ui/output.js';
import type { ScheduledCheckLast } from '../ports.js';

export default class Status extends BaseCommand<typeof Status> {
  static override summary = 'Show what iotctl.yaml declares next to what exists on the target, per resource, with drift marked.';
  static override description =
    'States: "in sync"; "missing" (declared, not on the target: `iotctl apply` creates it); "drift" (both, with the fields that differ: ' +
    '`iotctl apply` replaces it); "not in spec" (on the target only: `iotctl apply --prune` deletes it). Exits 0 whatever the state.';
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --target aws --json'];

  async run(): Promise<{ target: string; resources: ResourceStatus[]; scheduledCheck?: ScheduledCheckLast }> {
    return withTarget(this.ctx, async (target) => {
      const [resources, scheduledCheck] = await Promise.all([resourceStatus(this.ctx, target), target.scheduledCheck?.last()]);
      if (!this.jsonEnabled()) {
        const drifted = resources.filter((r) => r.state !== 'in sync').length;
        await printTable(
          resources,
          [
            { header: 'Section', get: (r) => r.section },
            { header: 'Kind', get: (r) => r.kind },
            { header: 'Name', get: (r) => r.name },
            ...(resources.some((r) => r.physicalName) ? [{ header: 'Name on AWS', get: (r: ResourceStatus) => r.physicalName ?? r.name }] : []),
            { header: 'State', get: (r) => r.state },
            { header: 'Differences', get: (r) => [...r.changes.map((c) => `${c.path || '(value)'}: ${short(c.actual)} -> ${short(c.declared)}`), ...(r.note ? [r.note] : [])].join('; ') },
          ],
          { title: `Target ${target.name}`, footer: drifted ? `${drifted} resource(s) differ from iotctl.yaml: \`iotctl apply --dry-run\` shows the plan.` : 'Every resource matches iotctl.yaml.' },
        );
      }
      if (scheduledCheck && !this.jsonEnabled()) {
        if (scheduledCheck.last)
          await printTable(
            scheduledCheck.last.stages,
            [
              { header: 'Stage', get: (r) => r.stage },
              { header: 'Status', get: (r) => r.status },
              { header: 'ms', get: (r) => r.ms ?? '' },
              { header: 'Detail', get: (r) => r.detail },
            ],
            { title: scheduledCheckLine(scheduledCheck) },
          );
        else info(scheduledCheckLine(scheduledCheck));
      }
      return { target: target.name, resources, ...(scheduledCheck ? { scheduledCheck } : {}) };
    });
  }
}

function short(v: unknown): string {
  const s = v === undefined ? '(unset)' : JSON.stringify(v);
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** `iotctl check --schedule`'s last run, on one line. */
function scheduledCheckLine(c: ScheduledCheckLast): string {
  const head = `Scheduled check (${c.schedule}, function ${c.function}, metrics ${c.namespace})`;
  if (!c.last) return `${head}: no run in the last day.`;
  return `${head}: last run ${c.last.at} ${c.last.ok ? 'passed' : 'FAILED'} (check ${c.last.checkId})`;
}
