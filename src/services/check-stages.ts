import { compileRule } from '../iot/sql/index.js';
import type { Spec } from '../spec/schema.js';

/**
 * `iotctl check`, the pure part: which stages a canary message on `topic` goes through according to the spec
 * (broker, every rule whose FROM takes it, the streams and channels those rules feed, the functions reading
 * those streams), how observations become per-stage outcomes ("not reached" below a stage that failed), and
 * the per-stage percentiles of `--watch`.
 */

export type StageKind = 'broker' | 'rule' | 'stream' | 'function' | 'lake' | 'athena';
export const STAGE_KINDS: readonly StageKind[] = ['broker', 'rule', 'stream', 'function', 'lake', 'athena'];

export interface StagePlan {
  /** `broker`, `rule <name>`, `stream <name>`, `function <name>`, `lake <channel>`, `athena <datastore>`. */
  id: string;
  kind: StageKind;
  name: string;
  /** Stages that hand the message to this one; it is reached when one of them passed. */
  after: string[];
  /** rule: the streams and channels its actions put to. */
  streams?: string[];
  channels?: string[];
  /** function: the stream its event source reads. lake: the pipelines reading the channel, with their datastores. */
  stream?: string;
  pipelines?: { pipeline: string; datastore: string }[];
  /** athena: the channel whose lake stage stores the row in this datastore. */
  channel?: string;
}

export interface CheckPlan {
  topic: string;
  stages: StagePlan[];
}

/** The stage graph of a message on `topic`, in the order the stages are reported. */
export function planCheck(spec: Spec, topic: string, opts: { athena?: boolean } = {}): CheckPlan {
  const stages: StagePlan[] = [{ id: 'broker', kind: 'broker', name: 'broker', after: [] }];
  const rules = spec.rules.filter((r) => {
    try {
      return compileRule(r.sql).matches(topic, r.name);
    } catch {
      return false; // a rule that does not compile is `spec validate`'s to report
    }
  });
  const feeding = { stream: new Map<string, string[]>(), channel: new Map<string, string[]>() };
  const add = (m: Map<string, string[]>, k: string, v: string) => m.set(k, [...(m.get(k) ?? []), v]);
  for (const r of rules) {
    const streams = r.actions.flatMap((a) => ('kinesis' in a ? [a.kinesis.stream] : []));
    const channels = r.actions.flatMap((a) => ('iotAnalytics' in a ? [a.iotAnalytics.channel] : []));
    const id = `rule ${r.name}`;
    streams.forEach((s) => add(feeding.stream, s, id));
    channels.forEach((c) => add(feeding.channel, c, id));
    stages.push({ id, kind: 'rule', name: r.name, after: ['broker'], streams: unique(streams), channels: unique(channels) });
  }
  for (const [stream, after] of feeding.stream) stages.push({ id: `stream ${stream}`, kind: 'stream', name: stream, after: unique(after) });
  for (const f of spec.functions) {
    const stream = f.eventSource?.stream;
    if (stream && feeding.stream.has(stream)) stages.push({ id: `function ${f.name}`, kind: 'function', name: f.name, after: [`stream ${stream}`], stream });
  }
  for (const [channel, after] of feeding.channel) {
    const pipelines = spec.analytics.pipelines.filter((p) => p.channel === channel).map((p) => ({ pipeline: p.name, datastore: p.datastore }));
    stages.push({ id: `lake ${channel}`, kind: 'lake', name: channel, after: unique(after), pipelines });
  }
  // --athena: each datastore's table, queried once the lake stage saw the row in its files.
  if (opts.athena)
    for (const lake of stages.filter((s) => s.kind === 'lake'))
      for (const datastore of unique((lake.pipelines ?? []).map((p) => p.datastore)))
        if (!stages.some((s) => s.id === `athena ${datastore}`)) stages.push({ id: `athena ${datastore}`, kind: 'athena', name: datastore, after: [lake.id], channel: lake.name });
  return { topic, stages };
}

/** The canary message: a unique check_id and the marker datasets and `query recent` leave out. */
export function canaryPayload(checkId: string, now = Date.now()): Record<string, unknown> {
  return { check_id: checkId, iotctl_check: true, sent_at: now };
}

/** CloudWatch metrics of one check (`iotctl check --schedule`): per stage latency and success, and the check's own success. */
export function checkMetrics(results: readonly StageResult[], ok: boolean, scope: { project: string; stage: string }, at: Date): { MetricName: string; Dimensions: { Name: string; Value: string }[]; Value: number; Unit: 'Milliseconds' | 'Count'; Timestamp: Date }[] {
  const dims = (step: string) => [
    { Name: 'Project', Value: scope.project },
    { Name: 'Stage', Value: scope.stage },
    { Name: 'Step', Value: step },
  ];
  const out: ReturnType<typeof checkMetrics> = [{ MetricName: 'Success', Dimensions: dims('all'), Value: ok ? 1 : 0, Unit: 'Count', Timestamp: at }];
  for (const r of results) {
    if (r.status === 'skipped') continue;
    out.push({ MetricName: 'Success', Dimensions: dims(r.stage), Value: r.status === 'passed' ? 1 : 0, Unit: 'Count', Timestamp: at });
    if (r.status === 'passed' && r.ms !== null) out.push({ MetricName: 'Latency', Dimensions: dims(r.stage), Value: r.ms, Unit: 'Milliseconds', Timestamp: at });
  }
  return out;
}

export type StageStatus = 'passed' | 'failed' | 'skipped' | 'not reached';

export interface StageResult {
  stage: string;
  status: StageStatus;
  /** ms from the publish to the stage's arrival; null when it has none. */
  ms: number | null;
  detail: string;
}

/** What an observer saw (undefined: nothing by the time-out). */
export interface Observation {
  status: 'passed' | 'failed';
  ms: number | null;
  detail: string;
}

/**
 * True when the stage cannot be reached any more: every upstream stage that runs settled without passing.
 * A skipped upstream is not looked at, so it blocks nothing.
 */
export function blocked(stage: StagePlan, outcome: (id: string) => StageStatus | undefined): boolean {
  const upstream = stage.after.map(outcome).filter((s) => s !== 'skipped');
  return upstream.length > 0 && upstream.every((s) => s === 'failed' || s === 'not reached');
}

/**
 * Every stage's outcome, in plan order: skipped when asked, what its observer saw, "not reached" when no stage
 * upstream of it passed, else failed for not arriving within the time-out.
 */
export function settle(plan: CheckPlan, observed: ReadonlyMap<string, Observation>, skipped: ReadonlySet<StageKind>, timeoutMs: number): StageResult[] {
  const results = new Map<string, StageResult>();
  for (const s of plan.stages) {
    const seen = observed.get(s.id);
    let r: StageResult;
    if (skipped.has(s.kind)) r = { stage: s.id, status: 'skipped', ms: null, detail: `--skip ${s.kind}` };
    else if (seen?.status === 'passed') r = { stage: s.id, ...seen };
    else if (blocked(s, (id) => results.get(id)?.status)) {
      const why = s.after.filter((id) => results.get(id)?.status === 'failed' || results.get(id)?.status === 'not reached');
      r = { stage: s.id, status: 'not reached', ms: null, detail: `${why.join(', ')} did not pass` };
    } else if (seen) r = { stage: s.id, ...seen };
    else r = { stage: s.id, status: 'failed', ms: null, detail: `not seen within ${formatMs(timeoutMs)}` };
    results.set(s.id, r);
  }
  return plan.stages.map((s) => results.get(s.id)!);
}

/** Exit 0 only when every stage that ran passed. */
export function checkPassed(results: readonly StageResult[]): boolean {
  return results.every((r) => r.status === 'passed' || r.status === 'skipped');
}

/** Nearest-rank percentile (p in 0..100) of the values; undefined for none. */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (!values.length) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export interface StageSummary {
  stage: string;
  rounds: number;
  passed: number;
  p50: number | undefined;
  p95: number | undefined;
}

/** Per stage over the rounds of `--watch`: how often it passed, and p50/p95 of its time when it did. */
export function summarizeRounds(rounds: readonly (readonly StageResult[])[]): StageSummary[] {
  const by = new Map<string, { rounds: number; passed: number; ms: number[] }>();
  for (const round of rounds)
    for (const r of round) {
      const s = by.get(r.stage) ?? { rounds: 0, passed: 0, ms: [] };
      s.rounds++;
      if (r.status === 'passed') {
        s.passed++;
        if (r.ms !== null) s.ms.push(r.ms);
      }
      by.set(r.stage, s);
    }
  return [...by].map(([stage, s]) => ({ stage, rounds: s.rounds, passed: s.passed, p50: percentile(s.ms, 50), p95: percentile(s.ms, 95) }));
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  return `${Math.round(ms / 60_000)}m`;
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
