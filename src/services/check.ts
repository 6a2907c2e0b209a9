import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import type { Endpoint, EventSourceMappingInfo, ScheduledCheckChange, Target } from '../ports.js';
import { parseSchedule } from '../iot/pipeline/schedule.js';
import type { Spec } from '../spec/schema.js';
import { evaluatePolicies, iotArn } from '../iot/policy/index.js';
import { athenaName } from '../spec/names.js';
import { UserError } from '../ui/errors.js';
import { blocked, canaryPayload, checkPassed, formatMs, planCheck, settle, type CheckPlan, type Observation, type StageKind, type StagePlan, type StageResult } from './check-stages.js';
import { deviceTopics, ensureDevicePolicy, registerDevice } from './devices.js';
import { connectDevice, disconnect, readCredentials, type DeviceCredentials } from './publish.js';

/**
 * `iotctl check`: publish one canary message as a real device would, watch every stage the spec routes it
 * through, and report each stage's outcome and time since the publish. The stage graph and the outcome rules
 * are pure (check-stages.ts); this file runs the observers over the target's ports.
 */

/** The canary's connection to the broker: MQTT over TLS with its certificate (tests replace it at this boundary). */
export interface CanaryClient {
  /** Resolves on the PUBACK; rejects when the broker refuses or closes the connection. */
  publish(topic: string, payload: string): Promise<void>;
  close(): Promise<void>;
}
export type CanaryConnector = (creds: DeviceCredentials, endpoint: Endpoint) => Promise<CanaryClient>;

/** MQTT 3.1.1, QoS 1, as a device publishes; a closed connection is how AWS IoT answers a denied publish. */
export const mqttCanary: CanaryConnector = async (creds, endpoint) => {
  const client = await connectDevice(creds, endpoint);
  const closed = new Promise<never>((_, reject) => client.once('close', () => reject(new Error('the broker closed the connection'))));
  closed.catch(() => undefined);
  return {
    publish: async (topic, payload) => void (await Promise.race([client.publishAsync(topic, payload, { qos: 1 }), closed])),
    close: () => disconnect(client),
  };
};

export interface CheckOptions {
  timeoutMs: number;
  skip: ReadonlySet<StageKind>;
  /** Also query each datastore's table for the row (Athena on aws, DuckDB locally). */
  athena?: boolean;
  /** How the canary publishes (default: mqttCanary). */
  connect?: CanaryConnector;
  /** Added to Firehose's buffer interval for the lake stage's time-out on aws (default 15 s). */
  lakeGraceMs?: number;
  /** Told what the check decided on its own (the lake's time-out on aws), before the publish. */
  onNote?: (text: string) => void;
  /** Told the stages before the publish (the live task list). */
  onPlan?: (plan: CheckPlan) => void;
  /** Told as soon as a stage settles (the live task list). */
  onStage?: (result: StageResult) => void;
}

export interface CheckReport {
  checkId: string;
  canary: string;
  topic: string;
  stages: StageResult[];
  ok: boolean;
  /** ms from the publish to the result. */
  totalMs: number;
  /** ms from the last stage's arrival to the result: the check's own overhead over the pipeline. */
  overheadMs: number;
}

/** The canary's thing name: one per project and stage. */
export const canaryName = (spec: Spec, stage: string): string => `${spec.project}-${stage}-canary`;

/** Where the canary's credentials live: the stage's state directory (private, like every credential there). */
export const canaryDir = (stateDir: string): string => join(stateDir, 'canary');

/** The canary's credentials, registering it with the device policy on first use. */
export async function ensureCanary(target: Target, spec: Spec, stage: string, stateDir: string): Promise<DeviceCredentials> {
  const name = canaryName(spec, stage);
  const dir = canaryDir(stateDir);
  if (existsSync(join(dir, name, 'cert.pem'))) return readCredentials(dir, name);
  await ensureDevicePolicy(target.devices, spec);
  // Registered before but its credentials are gone (a reset state dir): a new certificate replaces the old one.
  if (await target.devices.exists(name)) await target.devices.delete(name);
  await registerDevice(target.devices, spec, { thingName: name, attributes: { iotctl_canary: 'true' } }, dir);
  return readCredentials(dir, name);
}

export { canaryPayload };

/** How often observers look: the local platform is in this process's reach; AWS calls cost a round trip and count against quotas. */
interface Cadence {
  /** Between two database lookups. */
  dbMs: number;
  /** Between two reads of the rule error store / log group. */
  ruleErrorsMs: number;
  /** Between two reads of the function's failure destination and mapping. */
  failuresMs: number;
}
const CADENCE: Record<Target['name'], Cadence> = {
  local: { dbMs: 25, ruleErrorsMs: 100, failuresMs: 25 },
  aws: { dbMs: 250, ruleErrorsMs: 1_000, failuresMs: 2_000 },
};

export async function runCheck(target: Target, ctx: { spec: Spec; stage: string; stateDir: string }, opts: CheckOptions): Promise<CheckReport> {
  const cadence = CADENCE[target.name];
  if (!target.running()) {
    throw new UserError('The local platform is not running: there is nothing to check.', 'Start it with `iotctl local up --detach` (and `iotctl apply --yes`), then run the check again.', 'PLATFORM_NOT_RUNNING');
  }
  const { spec } = ctx;
  const creds = await ensureCanary(target, spec, ctx.stage, ctx.stateDir);
  const topic = deviceTopics(spec, creds.thingName).telemetry;
  const plan = planCheck(spec, topic, { athena: opts.athena });
  opts.onPlan?.(plan);
  const checkId = randomUUID();

  // Every stage's observer gets its own signal: aborted at the deadline, or once it can no longer be reached.
  const observed = new Map<string, Observation>();
  const runs = (s: StagePlan) => !opts.skip.has(s.kind);
  const controllers = new Map(plan.stages.map((s) => [s.id, new AbortController()]));
  // What is known of a stage so far; "not reached" passes down the graph (a failed rule blocks its stream's function).
  const outcome = (id: string): StageResult['status'] | undefined => {
    const s = plan.stages.find((x) => x.id === id)!;
    if (opts.skip.has(s.kind)) return 'skipped';
    return observed.get(id)?.status ?? (blocked(s, outcome) ? 'not reached' : undefined);
  };
  const announced = new Set<string>();
  let finished = false;
  // A rule passes when a destination of its got the message (stream record, channel message).
  const passRule = (r: StagePlan, ms: number | null, detail: string) => {
    if (runs(r) && !observed.has(r.id)) record(r.id, { status: 'passed', ms, detail: `evaluated without error; ${detail}` });
  };
  const record = (id: string, o: Observation) => {
    if (observed.has(id)) return;
    observed.set(id, o);
    controllers.get(id)!.abort();
    const stage = plan.stages.find((x) => x.id === id)!;
    if (stage.kind === 'stream' && o.status === 'passed') for (const r of plan.stages) if (r.kind === 'rule' && r.streams?.includes(stage.name)) passRule(r, o.ms, `put to stream ${stage.name}`);
    // Stages below one that failed will never see the message: stop waiting for them.
    let changed = true;
    while (changed) {
      changed = false;
      for (const s of plan.stages)
        if (!observed.has(s.id) && !controllers.get(s.id)!.signal.aborted && !opts.skip.has(s.kind) && blocked(s, outcome)) {
          controllers.get(s.id)!.abort();
          changed = true;
        }
    }
    announce();
  };
  const announce = () => {
    if (!opts.onStage) return;
    // In plan order: a stage is told once everything before it is.
    const results = settle(plan, observed, opts.skip, opts.timeoutMs);
    for (const r of results) {
      const s = plan.stages.find((x) => x.id === r.stage)!;
      const done = observed.has(s.id) || opts.skip.has(s.kind) || (!finished && blocked(s, outcome)) || finished;
      if (!done) break;
      if (!announced.has(r.stage)) {
        announced.add(r.stage);
        opts.onStage(r);
      }
    }
  };

  // Facts read before the publish: what the target has applied, so a disabled rule fails at once.
  const applied = new Map((await target.rules.list()).map((r) => [r.name, r]));
  for (const s of plan.stages.filter((x) => x.kind === 'rule' && runs(x))) {
    const rule = applied.get(s.name);
    if (!rule) record(s.id, { status: 'failed', ms: null, detail: `rule ${s.name} is not applied on the ${target.name} target (iotctl apply)` });
    else if (!rule.enabled) record(s.id, { status: 'failed', ms: null, detail: `rule ${s.name} is disabled (iotctl rules enable ${s.name})` });
  }

  // Everything an observer needs is loaded and connected before the publish, so no stage's time includes it.
  // The MQTT connection is made meanwhile.
  // The platform's endpoint now, not the one at registration: a restart may have moved its port.
  const connecting = target.devices.endpoint().then((endpoint) => (opts.connect ?? mqttCanary)(creds, endpoint));
  connecting.catch(() => undefined);
  const functionWatches = new Map<string, FunctionWatch>();
  // Each stage's time-out: --timeout, but on aws the lake's is Firehose's buffer interval (said so).
  const stageTimeout = new Map<string, { ms: number; reason: string }>();
  await Promise.all([
    ...plan.stages.filter((x) => x.kind === 'function' && runs(x)).map(async (s) => functionWatches.set(s.id, await prepareFunction(target, s))),
    target.ruleErrors.list({ limit: 1, since: Date.now() }).catch(() => []),
    ...plan.stages
      .filter((x) => x.kind === 'lake' && runs(x))
      .map(async (s) => {
        const t = await Promise.resolve()
          .then(() => target.analytics.traceTimeout?.(s.name, { graceMs: opts.lakeGraceMs }))
          .catch(() => undefined);
        if (!t) return;
        stageTimeout.set(s.id, t);
        opts.onNote?.(`The ${s.id} stage waits up to ${formatMs(t.ms)}: ${t.reason}.`);
      }),
    plan.stages.some((x) => x.kind === 'lake' && runs(x)) && target.name === 'local' ? target.analytics.list().catch(() => []) : undefined,
  ]);
  const timeoutOf = (s: StagePlan) => stageTimeout.get(s.id)?.ms ?? stageTimeout.get(`lake ${s.channel}`)?.ms ?? opts.timeoutMs;

  // Observers that must exist before the publish: every stream, at LATEST on every shard.
  const t0 = { wall: 0, perf: 0 };
  const sinceStart = () => performance.now() - t0.perf;
  const tails: Promise<void>[] = [];
  const streamSeq = new Map<string, { shardId: string; sequenceNumber: string }>();
  const started: Promise<void>[] = [];
  for (const s of plan.stages.filter((x) => x.kind === 'stream' && runs(x))) {
    const signal = controllers.get(s.id)!.signal;
    let onStarted!: () => void;
    started.push(new Promise<void>((r) => (onStarted = r)));
    tails.push(
      (async () => {
        try {
          for await (const rec of target.streams.tail(s.name, { from: { kind: 'latest' }, filter: { where: (d) => isCanary(d, checkId) }, signal, onStarted })) {
            const arrived = Date.parse(rec.approximateArrivalTimestamp) - t0.wall;
            streamSeq.set(s.name, { shardId: rec.shardId, sequenceNumber: rec.sequenceNumber });
            record(s.id, { status: 'passed', ms: Math.max(0, arrived), detail: `${rec.shardId}, sequence ${rec.sequenceNumber}` });
            break;
          }
        } catch (e) {
          onStarted();
          record(s.id, { status: 'failed', ms: null, detail: `cannot read stream ${s.name}: ${(e as Error).message}` });
        }
      })(),
    );
  }
  // An adapter that does not say when its iterators are ready gets a moment.
  const tailsReady = Promise.race([Promise.all(started), new Promise((r) => setTimeout(r, 2000).unref())]);
  let client: CanaryClient | undefined;
  try {
    [client] = await Promise.all([connecting, tailsReady]);
  } catch (e) {
    for (const c of controllers.values()) c.abort();
    await Promise.all(tails);
    for (const w of functionWatches.values()) if ('client' in w) await w.client.end().catch(() => undefined);
    throw e;
  }

  const observers: Promise<void>[] = [...tails];
  const ruleWatchers: Promise<void>[] = [];
  try {
    t0.wall = Date.now();
    t0.perf = performance.now();
    // One timer per distinct time-out: most stages share --timeout, the lake on aws has its own.
    const timers = [...new Set(plan.stages.map(timeoutOf))].map((ms) => setTimeout(() => plan.stages.filter((s) => timeoutOf(s) === ms).forEach((s) => controllers.get(s.id)!.abort()), ms));
    try {
      const payload = JSON.stringify(canaryPayload(checkId, t0.wall));
      const broker = observeBroker(target, client, { thing: creds.thingName, devicePolicy: spec.devices.policy.name }, topic, payload, sinceStart);
      const brokerDone = broker.then((o) => record('broker', o));
      observers.push(brokerDone);
      const since = t0.wall - 1000;
      const lakes = new Map<string, Promise<unknown>>();
      for (const s of plan.stages) {
        if (!runs(s) || s.kind === 'broker' || s.kind === 'stream' || observed.has(s.id)) continue;
        const signal = controllers.get(s.id)!.signal;
        // Rule errors are watched until every other observer is done (see below), not until the time-out.
        if (s.kind === 'rule') ruleWatchers.push(observeRuleErrors(target, s, checkId, { since, signal, everyMs: cadence.ruleErrorsMs }).then((o) => o && record(s.id, o)));
        if (s.kind === 'function') observers.push(observeFunction(target, s, functionWatches.get(s.id)!, checkId, { since, t0: t0.wall, signal, streamSeq, cadence }).then((o) => o && record(s.id, o)));
        if (s.kind === 'lake') {
          const limit = stageTimeout.get(s.id);
          const done = observeLake(target, s, checkId, { since, t0: t0.wall, deadline: t0.wall + timeoutOf(s), signal, limit: limit ? `${formatMs(limit.ms)} (${limit.reason})` : formatMs(opts.timeoutMs) }).then(({ channel, result }) => {
            // The channel holding it is the rule's proof of delivery for its iotAnalytics action.
            if (channel !== undefined) for (const r of plan.stages) if (r.kind === 'rule' && r.channels?.includes(s.name)) passRule(r, channel, `put to channel ${s.name}`);
            if (result) record(s.id, result);
          });
          lakes.set(s.name, done);
          observers.push(done);
        }
        if (s.kind === 'athena') {
          // The table is asked once the lake stage saw the row in the datastore's objects.
          observers.push((lakes.get(s.channel!) ?? Promise.resolve()).then(() => (observed.get(`lake ${s.channel}`)?.status === 'passed' ? observeAthena(target, s, checkId, { t0: t0.wall, since, signal }) : undefined)).then((o) => o && record(s.id, o)));
        }
      }
      await Promise.all(observers);
      await brokerDone;
      // One last look at the rule errors, then a rule none of whose destinations is watched passes on no error.
      const unwatched = (r: StagePlan) => ![...(r.streams ?? []).map((x) => `stream ${x}`), ...(r.channels ?? []).map((x) => `lake ${x}`)].some((id) => plan.stages.some((p) => p.id === id && runs(p)));
      for (const c of controllers.values()) c.abort();
      await Promise.all(ruleWatchers);
      // A rule that feeds only the lake: the lake not showing it within its time-out (Firehose's buffer on aws)
      // says nothing against the rule, which recorded no error; the lake stage carries the failure.
      const lakeOnly = (r: StagePlan) => !(r.streams ?? []).length && (r.channels ?? []).length > 0;
      for (const r of plan.stages)
        if (r.kind === 'rule' && runs(r) && !observed.has(r.id) && (unwatched(r) || lakeOnly(r)) && observed.get('broker')?.status === 'passed')
          record(r.id, { status: 'passed', ms: null, detail: unwatched(r) ? 'no rule error recorded (its destinations are not watched)' : 'no rule error recorded (the lake did not show the message, see its stage)' });
    } finally {
      timers.forEach(clearTimeout);
    }
  } finally {
    for (const c of controllers.values()) c.abort();
    await client.close();
    for (const w of functionWatches.values()) if ('client' in w) await w.client.end().catch(() => undefined);
  }
  const stages = settle(plan, observed, opts.skip, opts.timeoutMs);
  finished = true;
  announce();
  const totalMs = Math.round(sinceStart());
  const last = Math.max(0, ...stages.map((r) => r.ms ?? 0));
  return { checkId, canary: creds.thingName, topic, stages, ok: checkPassed(stages), totalMs, overheadMs: Math.max(0, totalMs - last) };
}

function isCanary(doc: unknown, checkId: string): boolean {
  return typeof doc === 'object' && doc !== null && (doc as Record<string, unknown>).check_id === checkId;
}

/** The PUBACK; a denial is explained with the canary's policies, naming the statement that decided it. */
async function observeBroker(target: Target, client: CanaryClient, who: { thing: string; devicePolicy: string }, topic: string, payload: string, elapsed: () => number): Promise<Observation> {
  try {
    await client.publish(topic, payload);
    return { status: 'passed', ms: Math.round(elapsed()), detail: `PUBACK on ${topic}` };
  } catch (e) {
    return { status: 'failed', ms: null, detail: `publish on ${topic} refused (${(e as Error).message})${await explainDenial(target, who, topic).catch(() => '')}` };
  }
}

async function explainDenial(target: Target, who: { thing: string; devicePolicy: string }, topic: string): Promise<string> {
  const { thing } = who;
  const device = await target.devices.show(thing);
  if (!device) return '';
  const docs = [];
  for (const name of device.policies) {
    // The device lists its policies by their names on the target; the port reads the spec's policy by its logical name.
    const logical = name === (target.physicalName?.('policy', who.devicePolicy) ?? who.devicePolicy) ? who.devicePolicy : name;
    const doc = await target.devices.getPolicy(logical);
    if (doc) docs.push({ name, doc });
  }
  // On AWS the policies name their region and account: the topic's ARN is asked in the same place.
  const place = /arn:[\w-]+:iot:([a-z0-9-]+):(\d{12}):/.exec(JSON.stringify(docs.map((d) => d.doc)));
  const resource = place ? iotArn('topic', topic, place[1], place[2]) : iotArn('topic', topic);
  const decision = evaluatePolicies(docs.map((d) => d.doc), { action: 'iot:Publish', resource, clientId: thing, thingName: thing, thingAttributes: {}, isAttached: true });
  if (decision.decision === 'allow') return '';
  if (decision.reason === 'explicit-deny') {
    const s = decision.statements.find((x) => x.matched && x.effect === 'Deny')!;
    return `: denied by policy ${docs[s.policy ?? 0]?.name} statement ${s.sid ?? `#${s.index}`} (${s.reason})`;
  }
  return `: no statement of ${docs.map((d) => d.name).join(', ') || 'its policies'} allows iot:Publish on it (implicit deny)`;
}

/** A rule fails when the rule error store holds an error for the canary message. */
async function observeRuleErrors(target: Target, s: StagePlan, checkId: string, o: { since: number; signal: AbortSignal; everyMs: number }): Promise<Observation | undefined> {
  const { signal } = o;
  const start = performance.now();
  for (;;) {
    const errors = await target.ruleErrors.list({ rule: s.name, limit: 20, since: o.since }).catch(() => []);
    for (const e of errors) {
      const err = e.error as { base64OriginalPayload?: string; failures?: { errorMessage?: string; failedResource?: string }[] };
      if (!err.base64OriginalPayload || !Buffer.from(err.base64OriginalPayload, 'base64').toString('utf8').includes(checkId)) continue;
      const why = (err.failures ?? []).map((f) => `${f.failedResource ? `${f.failedResource}: ` : ''}${f.errorMessage ?? 'failed'}`).join('; ');
      return { status: 'failed', ms: Math.round(performance.now() - start), detail: `rule error: ${why || JSON.stringify(e.error)}` };
    }
    // Aborted: that was the last look.
    if (signal.aborted) return undefined;
    await sleep(o.everyMs, signal);
  }
}

/** A function stage made ready before the publish: its mapping looked at, the database connected. */
type FunctionWatch = { fail: Observation } | { client: pg.Client; display: string; failuresBefore: Set<string>; mapping: EventSourceMappingInfo };

async function prepareFunction(target: Target, s: StagePlan): Promise<FunctionWatch> {
  const fail = (detail: string): FunctionWatch => ({ fail: { status: 'failed', ms: null, detail } });
  // Ports take logical names (the aws adapter maps them to the stage's), and report the mapping's stream by its logical name.
  const mappings = await target.functions.mappings(s.name).catch(() => []);
  const mapping = mappings.find((m) => m.stream === s.stream || m.stream === physicalOr(target, 'stream', s.stream!));
  if (!mapping) return fail(`function ${s.name} has no event source mapping on stream ${s.stream} (deploy it with its eventSource: iotctl apply)`);
  if (/^disabl/i.test(mapping.state)) return fail(`the event source mapping of ${s.name} on ${s.stream} is ${mapping.state}`);
  const failuresBefore = new Set((await target.functions.failures(s.name, { limit: 50 }).catch(() => [])).map((f) => f.id));
  const { connect } = await import('../db/connection.js');
  const location = await target.database.locate('reader');
  try {
    return { client: await connect(location, { connectionTimeoutMillis: 5000 }), display: location.display, failuresBefore, mapping };
  } catch (e) {
    return fail(`the database refuses connections: ${(e as Error).message}`);
  }
}

/**
 * The function's row in PostgreSQL (by check_id); else why not: the function's failure destination, or the
 * ingest dead-letter table.
 */
async function observeFunction(
  target: Target,
  s: StagePlan,
  w: FunctionWatch,
  checkId: string,
  o: { since: number; t0: number; signal: AbortSignal; streamSeq: Map<string, { shardId: string; sequenceNumber: string }>; cadence: Cadence },
): Promise<Observation | undefined> {
  if ('fail' in w) return w.fail;
  const fail = (detail: string): Observation => ({ status: 'failed', ms: null, detail });
  const { client } = w;
  let nextSlowLook = 0;
  let mappingProblem: string | undefined;
  while (!o.signal.aborted) {
    let rows: { received_at: Date }[];
    try {
      ({ rows } = await client.query<{ received_at: Date }>(`SELECT received_at FROM iot_messages WHERE ts >= $2 AND payload->>'check_id' = $1 LIMIT 1`, [checkId, new Date(o.since - 3_600_000)]));
    } catch (e) {
      return fail(`the database failed the lookup: ${(e as Error).message}`);
    }
    if (rows[0]) return { status: 'passed', ms: Math.max(0, rows[0].received_at.getTime() - o.t0), detail: `row in iot_messages (${w.display})` };
    const seq = o.streamSeq.get(s.stream!);
    if (seq) {
      const dead = await client.query<{ reason: string }>(`SELECT reason FROM iot_ingest_errors WHERE shard_id = $1 AND sequence_number = $2 LIMIT 1`, [seq.shardId, seq.sequenceNumber]).catch(() => ({ rows: [] as { reason: string }[] }));
      if (dead.rows[0]) return fail(`the function rejected it: ${dead.rows[0].reason} (iot_ingest_errors)`);
    }
    // The failure destination and the mapping cost AWS calls (SQS, Lambda): looked at less often than the table.
    if (Date.now() >= nextSlowLook) {
      nextSlowLook = Date.now() + o.cadence.failuresMs;
      const failures = (await target.functions.failures(s.name, { limit: 50 }).catch(() => [])).filter((f) => !w.failuresBefore.has(f.id) && Date.parse(f.createdAt) >= o.since && coversRecord(f.record, seq));
      if (failures[0]) return fail(`the function's failure destination ${failures[0].destination} says: ${summarize(failures[0].record)}`);
      const mapping = (await target.functions.mappings(s.name).catch(() => [])).find((m) => m.uuid === w.mapping.uuid);
      if (mapping && /^disabl/i.test(mapping.state)) return fail(`the event source mapping of ${s.name} on ${s.stream} is ${mapping.state}`);
      // Lambda's own word on the mapping's last batch: reported when the row does not come.
      if (mapping?.lastResult && /^PROBLEM/i.test(mapping.lastResult)) mappingProblem = mapping.lastResult;
    }
    await sleep(o.cadence.dbMs, o.signal);
  }
  if (mappingProblem) return fail(`no row for it, and the event source mapping of ${s.name} on ${s.stream} reports: ${mappingProblem}`);
  return undefined;
}

/**
 * Whether a failure record is about this stream record: Lambda's on-failure record for a Kinesis mapping names
 * its batch (shard and sequence range); a record without one (the local runner's) cannot be told apart.
 */
function coversRecord(record: Record<string, unknown>, seq: { shardId: string; sequenceNumber: string } | undefined): boolean {
  const batch = record.KinesisBatchInfo as { shardId?: string; startSequenceNumber?: string; endSequenceNumber?: string } | undefined;
  if (!batch?.startSequenceNumber || !batch.endSequenceNumber) return true;
  if (!seq) return false;
  try {
    const n = BigInt(seq.sequenceNumber);
    return batch.shardId === seq.shardId && BigInt(batch.startSequenceNumber) <= n && n <= BigInt(batch.endSequenceNumber);
  } catch {
    return false;
  }
}

/** The channel (then, after a flush, the datastores) holding the canary message. */
async function observeLake(
  target: Target,
  s: StagePlan,
  checkId: string,
  o: { since: number; t0: number; deadline: number; signal: AbortSignal; limit: string },
): Promise<{ channel?: number; result?: Observation }> {
  let trace;
  try {
    if (!target.analytics.trace) throw new Error('not supported');
    trace = await target.analytics.trace({ field: 'check_id', value: checkId }, { since: o.since, deadline: o.deadline, signal: o.signal });
  } catch (e) {
    return { result: { status: 'failed', ms: null, detail: `the ${target.name} target cannot trace the lake (${(e as Error).message}); use --skip lake` } };
  }
  // Not found: "not reached" when a stage above failed (settle decides that first), else the time-out.
  if (!trace) return { result: { status: 'failed', ms: null, detail: `the lake has not flushed it to channel ${s.name} within its time-out of ${o.limit}` } };
  const channelMs = Math.max(0, trace.receivedAt - o.t0);
  if (trace.channel !== s.name) return { result: { status: 'failed', ms: null, detail: `found in channel ${trace.channel}, not ${s.name}` } };
  const missing = trace.pipelines.filter((p) => !p.stored);
  const ms = Date.now() - o.t0;
  if (!trace.pipelines.length) return { channel: channelMs, result: { status: 'passed', ms: channelMs, detail: `channel ${s.name} (no pipeline reads it)` } };
  if (missing.length) return { channel: channelMs, result: { status: 'failed', ms: null, detail: `in channel ${s.name} after ${formatMs(channelMs)}, but not in ${missing.map((p) => `datastore ${p.datastore}: ${p.reason}`).join('; ')}` } };
  return { channel: channelMs, result: { status: 'passed', ms, detail: `channel ${s.name} +${formatMs(channelMs)}, datastore ${trace.pipelines.map((p) => p.datastore).join(', ')} after a flush` } };
}

/** The datastore's table returns the row: Athena on aws, DuckDB over the lake locally (LakeQueryPort). */
async function observeAthena(target: Target, s: StagePlan, checkId: string, o: { t0: number; since: number; signal: AbortSignal }): Promise<Observation> {
  const fail = (detail: string): Observation => ({ status: 'failed', ms: null, detail });
  try {
    const tables = await target.lake.tables();
    // Locally the catalog marks datastores; Athena's Glue tables are plain tables of the stage's database.
    const bare = (t: string) => t.slice(t.lastIndexOf('.') + 1);
    const named = tables.filter((t) => t.kind !== 'channel' && [s.name, athenaName(s.name)].includes(bare(t.table)));
    const table = named.find((t) => t.kind === 'datastore') ?? named[0];
    if (!table) return fail(`no table of datastore ${s.name} in the lake's catalog (${tables.map((t) => t.table).join(', ') || 'none'})`);
    // Only the days since the publish, where the table is partitioned by day: Athena bills the bytes it scans.
    const day = new Date(o.since).toISOString().slice(0, 10);
    const byDay = table.columns.some((c) => c.name === 'dt');
    const sql = `SELECT count(*) AS n FROM ${table.table} WHERE ${byDay ? 'dt >= ? AND ' : ''}CAST(check_id AS VARCHAR) = ?`;
    const query = await target.lake.run(sql, { params: byDay ? [day, checkId] : [checkId], signal: o.signal });
    let n = 0;
    for await (const row of query.rows) n = Number(row[0] ?? 0);
    const stats = query.stats();
    const ms = Date.now() - o.t0;
    const via = `${target.name === 'aws' ? 'Athena' : 'DuckDB'}${stats.queryId ? ` ${stats.queryId}` : ''}`;
    return n > 0 ? { status: 'passed', ms, detail: `table ${table.table} returns the row (${via}, ${stats.bytesScanned} bytes scanned)` } : fail(`table ${table.table} does not return the row (${via}), though the datastore's files hold it`);
  } catch (e) {
    return fail(`the query of table ${s.name} failed: ${(e as Error).message}`);
  }
}

function physicalOr(target: Target, kind: 'stream' | 'function', name: string): string {
  return target.physicalName?.(kind, name) ?? name;
}

function summarize(record: Record<string, unknown>): string {
  const text = JSON.stringify(record);
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * `iotctl check --schedule <expression>` (aws): the check as a scheduled function in the account, following the
 * stages the spec plans for the canary's topic (the lake left out). `off` removes it.
 */
export async function scheduleCheck(
  target: Target,
  ctx: { spec: Spec; stage: string; stateDir: string },
  opts: { expression: string; timeoutMs: number; progress?: (step: string) => void },
): Promise<{ schedule: string; changes: ScheduledCheckChange[] }> {
  if (!target.scheduledCheck)
    throw new UserError(
      `--schedule deploys the check as a function in the AWS account; the ${target.name} target has no scheduler for it.`,
      'Run it on aws (--target aws), or repeat the check here with --watch 5m.',
      'TARGET_UNAVAILABLE',
    );
  if (opts.expression === 'off') return { schedule: 'off', changes: await target.scheduledCheck.remove() };
  try {
    parseSchedule(opts.expression);
  } catch (e) {
    throw new UserError(`--schedule ${opts.expression}: ${(e as Error).message}`, "Give an EventBridge Scheduler expression such as 'rate(5 minutes)' or 'cron(0/10 * * * ? *)', or off to remove the scheduled check.", 'BAD_FLAG');
  }
  const { spec } = ctx;
  // The canary thing is registered as for an interactive check: rules and enrichment see a real device.
  const creds = await ensureCanary(target, spec, ctx.stage, ctx.stateDir);
  const topic = deviceTopics(spec, creds.thingName).telemetry;
  const plan = planCheck(spec, topic);
  const stages = plan.stages.map((s) => (s.kind === 'stream' ? { ...s, physical: target.physicalName?.('stream', s.name) ?? s.name } : s));
  // The check reads the database from where the functions that write it run.
  const vpc = spec.functions.find((f) => plan.stages.some((s) => s.kind === 'function' && s.name === f.name) && f.vpc)?.vpc;
  const changes = await target.scheduledCheck.apply({ expression: opts.expression, topic, timeoutMs: opts.timeoutMs, stages, ...(vpc ? { vpc } : {}) }, opts.progress);
  return { schedule: opts.expression, changes };
}
