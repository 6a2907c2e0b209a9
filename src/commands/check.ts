import { BaseCommand, Flags } from '../base-command.js';
import { parseDuration } from '../db/duration.js';
import { formatMs, STAGE_KINDS, summarizeRounds, type StageKind, type StageResult, type StageSummary } from '../services/check-stages.js';
import type { CheckReport } from '../services/check.js';
import type { ScheduledCheckChange } from '../ports.js';
import { withTarget } from '../targets/index.js';
import { info, printTable } from '../ui/output.js';
import { liveStages, stepsMode } from '../ui/tasks.js';

type CheckResult =
  | { stages: StageResult[]; ok: boolean; checkId: string; canary: string; totalMs: number; overheadMs: number }
  | { rounds: number; ok: boolean; summary: StageSummary[] }
  | { schedule: string; changes: ScheduledCheckChange[] };

export default class Check extends BaseCommand<typeof Check> {
  static override summary = 'Publish one canary message and follow it through every stage of the pipeline, with the time of each hop.';
  static override description =
    'The canary device <project>-<stage>-canary (registered with the device policy on first use, its credentials kept in the state directory) publishes one message with a unique check_id and "iotctl_check": true on its telemetry topic. ' +
    'Each stage the spec routes it through is reported as passed, failed (with the reason), skipped or not reached, with the time since the publish: the broker (PUBACK), every rule whose FROM takes it, the streams, the functions writing it to PostgreSQL, and the lake (channel, then datastore after a flush). ' +
    'On aws the canary publishes to the account\'s IoT data endpoint; rule errors are read from the rules\' errorAction log groups, the stream with LATEST iterators taken on every shard before the publish, the row from the database, the failure from the mapping\'s SQS destination, and the lake from the S3 objects, waiting as long as the delivery streams\' buffer interval (said on stderr). ' +
    'Exit 0 when every stage that ran passed, 1 otherwise. Datasets of `iotctl init` and `query recent` leave canary messages out.';
  static override examples = [
    '<%= config.bin %> check',
    '<%= config.bin %> check --skip lake --timeout 30s --json',
    '<%= config.bin %> check --watch 5m',
    '<%= config.bin %> check --target aws --athena',
    "<%= config.bin %> check --target aws --schedule 'rate(5 minutes)'",
    '<%= config.bin %> check --target aws --schedule off',
  ];
  static override flags = {
    timeout: Flags.string({ description: 'How long to wait for every stage.', default: '2m' }),
    skip: Flags.string({ description: 'Stages not to check (repeatable).', options: STAGE_KINDS.filter((k) => k !== 'broker'), multiple: true }),
    watch: Flags.string({ description: 'Repeat the check at this interval (e.g. 5m), one line per round, then p50/p95 per stage; Ctrl-C stops.' }),
    rounds: Flags.integer({ description: 'With --watch: stop after this many rounds.', min: 1 }),
    schedule: Flags.string({
      description: "aws: deploy the check as a function in the account on this EventBridge Scheduler expression (e.g. 'rate(5 minutes)'), with its per-stage latency and success as CloudWatch metrics (namespace iotctl/check); `off` removes it. `iotctl status` shows its last result.",
    }),
    athena: Flags.boolean({ description: "Also query each datastore's table for the row (Athena on aws, DuckDB locally).", default: false }),
  };

  async run(): Promise<CheckResult> {
    const timeoutMs = parseDuration(this.flags.timeout, '--timeout');
    const skip = new Set((this.flags.skip ?? []) as StageKind[]);
    const ctx = { spec: this.ctx.spec.spec, stage: this.ctx.stage, stateDir: this.ctx.paths.stateDir };
    const { runCheck, scheduleCheck } = await import('../services/check.js');
    if (this.flags.schedule !== undefined) {
      const expression = this.flags.schedule;
      const out = await withTarget(this.ctx, (target) => scheduleCheck(target, ctx, { expression, timeoutMs: Math.min(timeoutMs, 840_000), progress: (step) => info(`${step}...`) }));
      if (!this.jsonEnabled()) {
        await printTable(out.changes, [
          { header: 'resource', get: (c) => c.resource },
          { header: 'name', get: (c) => c.name },
          { header: 'result', get: (c) => c.result },
        ]);
        info(expression === 'off' ? (out.changes.length ? 'The scheduled check is removed.' : 'No scheduled check was deployed.') : `The check runs on ${expression}; \`iotctl status\` shows its last result, CloudWatch namespace iotctl/check its metrics.`);
      }
      return out;
    }
    const common = { timeoutMs, skip, athena: this.flags.athena, onNote: (text: string) => info(text) };
    if (this.flags.watch !== undefined) return this.watch(parseDuration(this.flags.watch, '--watch'), (target) => runCheck(target, ctx, common));

    const mode = stepsMode(this.jsonEnabled());
    const live = mode === 'tty' ? await liveStages() : undefined;
    const report = await withTarget(this.ctx, (target) => runCheck(target, ctx, { ...common, onPlan: live?.plan, onStage: live?.settled })).finally(() => live?.done());
    if (!report.ok) process.exitCode = 1;
    if (!this.jsonEnabled()) {
      if (mode !== 'tty') await printTable(report.stages, [
        { header: 'stage', get: (r) => r.stage },
        { header: 'status', get: (r) => r.status },
        { header: 'ms', get: (r) => r.ms ?? '' },
        { header: 'detail', get: (r) => r.detail },
      ]);
      info(`${report.ok ? 'Passed' : 'FAILED'}: ${report.canary} check ${report.checkId} in ${formatMs(report.totalMs)} (${formatMs(report.overheadMs)} after the last stage).`);
    }
    const { stages, ok, checkId, canary, totalMs, overheadMs } = report;
    return { stages, ok, checkId, canary, totalMs, overheadMs };
  }

  /** Rounds until Ctrl-C (or --rounds): one line each, then p50/p95 per stage over the rounds. */
  private async watch(intervalMs: number, once: (target: Parameters<Parameters<typeof withTarget>[1]>[0]) => Promise<CheckReport>): Promise<CheckResult> {
    const rounds: StageResult[][] = [];
    let stop = false;
    let wake: (() => void) | undefined;
    const onSigint = () => {
      stop = true;
      wake?.();
    };
    process.once('SIGINT', onSigint);
    let ok = true;
    try {
      await withTarget(this.ctx, async (target) => {
        while (!stop) {
          const started = Date.now();
          const report = await once(target);
          rounds.push(report.stages);
          ok &&= report.ok;
          const line = report.stages.map((r) => `${r.stage} ${r.status === 'passed' ? formatMs(r.ms ?? 0) : r.status}`).join(' · ');
          if (!this.jsonEnabled()) process.stdout.write(`${new Date(started).toISOString()} ${report.ok ? 'ok' : 'FAIL'} ${line}\n`);
          if (this.flags.rounds !== undefined && rounds.length >= this.flags.rounds) break;
          await new Promise<void>((r) => {
            const t = setTimeout(r, Math.max(0, started + intervalMs - Date.now()));
            wake = () => (clearTimeout(t), r());
          });
        }
      });
    } finally {
      process.off('SIGINT', onSigint);
    }
    const summary = summarizeRounds(rounds);
    if (!this.jsonEnabled()) {
      await printTable(summary, [
        { header: 'stage', get: (s) => s.stage },
        { header: 'passed', get: (s) => `${s.passed}/${s.rounds}` },
        { header: 'p50 ms', get: (s) => s.p50 ?? '' },
        { header: 'p95 ms', get: (s) => s.p95 ?? '' },
      ]);
    }
    if (!ok) process.exitCode = 1;
    return { rounds: rounds.length, ok, summary };
  }
}
