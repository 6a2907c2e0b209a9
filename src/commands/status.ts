import { BaseCommand, Flags } from '../base-command.js';
import { certificateCounts, lifetimeMs, type CertificateCounts } from '../services/certificates.js';
import { resourceStatus, type ResourceStatus } from '../services/status.js';
import { withTarget } from '../targets/index.js';
import { info, printTable, warn } from '../ui/output.js';
import type { MaintenanceStatusInfo, ScheduledCheckLast } from '../ports.js';

export default class Status extends BaseCommand<typeof Status> {
  static override summary = 'Show what iotctl.yaml declares next to what exists on the target, per resource, with drift marked.';
  static override description =
    'States: "in sync"; "missing" (declared, not on the target: `iotctl apply` creates it); "drift" (both, with the fields that differ: ' +
    '`iotctl apply` replaces it); "not in spec" (on the target only: `iotctl apply --prune` deletes it). Exits 0 whatever the state.';
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --target aws --json'];
  static override flags = {
    expiring: Flags.string({ description: 'The window in which a device certificate counts as expiring (default 30d, as Device Defender).', default: '30d' }),
    certificates: Flags.boolean({ description: 'Count the device certificates (aws: one DescribeCertificate per certificate, at 10 TPS); --no-certificates skips it.', default: true, allowNo: true }),
  };

  async run(): Promise<{ target: string; resources: ResourceStatus[]; maintenance?: MaintenanceStatusInfo; certificates?: CertificateCounts; scheduledCheck?: ScheduledCheckLast }> {
    const windowMs = lifetimeMs(this.flags.expiring, '--expiring');
    return withTarget(this.ctx, async (target) => {
      // Read alongside the plan (it does not depend on it); its result, or its error, counts only once the plan
      // shows the maintenance function deployed.
      const maintenanceRead = target.databaseOps?.maintenanceStatus().then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
      const [resources, certificates, scheduledCheck] = await Promise.all([
        resourceStatus(this.ctx, target),
        this.flags.certificates ? certificateCounts(target.devices, windowMs) : undefined,
        target.scheduledCheck?.last(),
      ]);
      // aws: the maintenance function's last run (its log line), undelivered schedule events and function errors.
      const deployed = resources.some((r) => r.section === 'database' && r.kind === 'function' && r.state !== 'missing');
      let maintenance: MaintenanceStatusInfo | undefined;
      if (maintenanceRead && deployed) {
        const read = await maintenanceRead;
        if ('error' in read) throw read.error;
        maintenance = read.value;
      }
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
      if (maintenance && !this.jsonEnabled()) {
        const last = maintenance.lastRun;
        const line = `Maintenance (${maintenance.function}, schedule ${maintenance.schedule}): ${last ? `last run ${last.at} ${last.ok ? 'ok' : 'FAILED'}: ${last.summary}` : 'no run logged in the last 7 days'}` +
          `${maintenance.errors24h ? `; ${maintenance.errors24h} function error(s) in 24 h` : ''}${maintenance.deadLetters ? `; ${maintenance.deadLetters} undelivered run(s) in the dead-letter queue` : ''}.`;
        if (maintenance.failing) warn(line + ' `iotctl lambda logs db-maintenance` shows why.');
        else info(line);
      }
      if (!this.jsonEnabled() && certificates) {
        const c = certificates;
        info(
          `Certificates: ${c.active} active, ${c.expiring} expiring within ${this.flags.expiring}, ${c.expired} expired, ${c.rotating} rotation(s) in progress` +
            (c.expiring + c.expired ? ` (\`iotctl device list --expiring ${this.flags.expiring}\` lists them).` : '.'),
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
      return { target: target.name, resources, ...(maintenance ? { maintenance } : {}), ...(certificates ? { certificates } : {}), ...(scheduledCheck ? { scheduledCheck } : {}) };
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
