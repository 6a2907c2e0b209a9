import { createHash } from 'node:crypto';
import { compileRule, compileTemplate, DEFAULT_EVALUATION_BUDGET_MS, evaluationBudget, runWithinBudget, SqlError, SqlRuntimeError, type EvaluationBudget } from '../../iot/sql/index.js';
import { DEFAULT_ACCOUNT } from '../../iot/policy/actions.js';
import type { RuleAction, RuleSpec } from '../../spec/schema.js';
import type { Db } from './store.js';
import type { IngressLog, IngressMessage } from './ingress.js';
import type { RuleErrorPayload, RulesStore } from './rules-store.js';

export type { RuleErrorPayload };
import { DestinationNotFoundError, type ChannelSink, type ChannelMessage, type FunctionSink, type ObjectSink, type StreamSink } from './sinks.js';
import { count, newCounter, RateMeter } from './counters.js';
import { publishTopicProblem } from '../../iot/topics.js';

export interface RulesRuntimeDeps {
  db: Db;
  ingress: IngressLog;
  store: RulesStore;
  streams?: StreamSink;
  channels?: ChannelSink;
  functions?: FunctionSink;
  objects?: ObjectSink;
  /** Deliver a republished message to subscribers (the broker). */
  deliver?: (topic: string, payload: Buffer, qos: 0 | 1) => Promise<void>;
  log?: (line: string) => void;
  batchSize?: number;
  /** Time budget for evaluating one rule on one message (SQL and action templates), in ms. */
  evaluationBudgetMs?: number;
  /** The clock budgets and slices are measured on, in ms (default performance.now). */
  clock?: () => number;
}

/** Past it, a rule's evaluation of a message ends in its errorAction; devices wait for it at most this long. */
export { DEFAULT_EVALUATION_BUDGET_MS };
/** How long evaluation runs before the event loop (the broker, other devices) gets a turn. */
const EVALUATION_SLICE_MS = 10;
/** Event-loop turns given to the broker after a slice that ran long (a job out of time). */
const TURNS_AFTER_OVERRUN = 3;

interface CompiledAction {
  type: string;
  resource: string;
  spec: RuleAction;
  templates: Record<string, ReturnType<typeof compileTemplate>>;
}

interface CompiledRule {
  spec: RuleSpec;
  rule: ReturnType<typeof compileRule>;
  actions: CompiledAction[];
  errorAction?: CompiledAction;
}

/** One rule to evaluate on one message. */
interface Job {
  rule: CompiledRule;
  message: IngressMessage;
}

/** What evaluating a job produced; applied to the batch only once the job is complete. */
interface JobResult {
  job: Job;
  /** The rule's output; undefined when FROM/WHERE rejected the message or the evaluation failed. */
  data?: Buffer;
  /** Each action with its rendered templates, or why they could not be rendered. */
  actions: { action: CompiledAction; fields?: Record<string, string>; error?: unknown }[];
  evaluationError?: string;
  /** The evaluation or a template ran out of its time budget. */
  outOfTime?: boolean;
}

/** Work collected while evaluating a batch, committed together with the checkpoint. */
interface BatchEffects {
  /** Synchronous SQLite writes (stream puts, function queue) that commit with the checkpoint: exactly once. */
  transactional: { rule: CompiledRule; action: CompiledAction; message: IngressMessage; run: () => void }[];
  channelPuts: Map<string, { message: ChannelMessage; rule: CompiledRule; action: CompiledAction; source: IngressMessage }[]>;
  asyncActions: { rule: CompiledRule; action: CompiledAction; source: IngressMessage; run: () => Promise<void> }[];
  failures: Map<string, { rule: CompiledRule; source: IngressMessage; failures: RuleErrorPayload['failures'] }>;
}

const CONSUMER = 'rules';

/**
 * Consumes the ingress log from a persisted checkpoint, evaluates every enabled rule whose FROM filter
 * matches, and runs the actions. Stream puts, rule errors and the checkpoint commit in one SQLite
 * transaction, so a crash replays a batch without duplicating stream records; other actions are at
 * least once and carry the message id so downstream stages deduplicate.
 */
export class RulesRuntime {
  private rules: CompiledRule[] = [];
  private running = false;
  private wake?: () => void;
  private loop?: Promise<void>;
  private readonly log: (line: string) => void;
  /** `basicIngestUnrouted`: Basic Ingest messages no rule took, by reason (`RuleNotFound`, `FromNotMatched`). */
  readonly stats = { messagesIn: 0, rulesMatched: 0, actionsSucceeded: newCounter(), actionsFailed: newCounter(), evaluationErrors: 0, basicIngestUnrouted: newCounter() };
  readonly rate = new RateMeter();

  constructor(private readonly deps: RulesRuntimeDeps) {
    this.log = deps.log ?? (() => {});
    deps.db.exec(`
      CREATE TABLE IF NOT EXISTS rules_checkpoint (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);`);
    this.selectCheckpoint = deps.db.prepare('SELECT seq FROM rules_checkpoint WHERE consumer = ?');
    this.reload();
  }

  /** Recompile the applied rules; called when the store changes (rules apply/enable/disable). */
  reload(): void {
    const compiled: CompiledRule[] = [];
    for (const spec of this.deps.store.list()) {
      if (!spec.enabled) continue;
      try {
        compiled.push({ spec, rule: compileRule(spec.sql), actions: spec.actions.map(compileAction), errorAction: spec.errorAction && compileAction(spec.errorAction) });
      } catch (e) {
        this.log(`rule ${spec.name} skipped: ${e instanceof SqlError ? e.message : String(e)}`);
      }
    }
    this.rules = compiled;
  }

  private readonly selectCheckpoint;

  get checkpoint(): number {
    return (this.selectCheckpoint.get(CONSUMER) as { seq: number } | undefined)?.seq ?? 0;
  }

  start(): void {
    this.running = true;
    const unsubscribe = this.deps.ingress.onAppend(() => this.wake?.());
    this.loop = (async () => {
      await this.redeliverErrors().catch((e: unknown) => this.log(`rules: redelivering errors failed: ${(e as Error).message}`));
      while (this.running) {
        const processed = await this.processAvailable().catch((e: unknown) => {
          const err = e as Error;
          this.log(`rules runtime error (will retry): ${err.stack ?? err.message}`);
          return 0;
        });
        if (!processed && this.running) await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 250);
          this.wake = () => { clearTimeout(timer); resolve(); };
        });
      }
      unsubscribe();
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    this.rate.stop();
  }

  /** Process one batch after the checkpoint. Returns how many messages it consumed. */
  async processAvailable(): Promise<number> {
    const from = this.checkpoint;
    const batch = this.deps.ingress.readAfter(from, this.deps.batchSize ?? 500);
    if (!batch.length) return 0;
    const effects: BatchEffects = { transactional: [], channelPuts: new Map(), asyncActions: [], failures: new Map() };
    const jobs = batch.flatMap((message) => this.route(message).map((rule) => ({ rule, message })));
    await this.evaluateJobs(jobs, effects);

    await this.runAsyncActions(effects);
    const errors = this.commit(effects, batch[batch.length - 1]!.seq);
    await this.runErrorActions(errors);
    this.stats.messagesIn += batch.length;
    this.rate.mark(batch.length);
    return batch.length;
  }

  /** The enabled rules that take this message. */
  private route(message: IngressMessage): CompiledRule[] {
    const ingestRule = basicIngestRule(message.topic);
    if (ingestRule !== undefined) {
      // AWS logs RuleNotFound for a Basic Ingest message naming a missing or disabled rule; count it, and
      // the messages the rule's FROM filter does not take, so none disappears without a trace.
      const rule = this.rules.find((r) => r.spec.name === ingestRule);
      const reason = !rule ? 'RuleNotFound' : !rule.rule.matches(message.topic, ingestRule) ? 'FromNotMatched' : undefined;
      if (reason) {
        count(this.stats.basicIngestUnrouted, reason);
        this.log(`rules: Basic Ingest message ${message.messageId} on ${message.topic} not routed: ${reason}`);
        return [];
      }
    }
    return this.rules.filter((rule) => rule.rule.matches(message.topic, rule.spec.name));
  }

  /**
   * Evaluates the jobs in slices of about EVALUATION_SLICE_MS, giving the event loop a turn between
   * slices, so a batch never holds up the broker for long. Each job has its own time budget: the
   * evaluator checks it between calls, and V8's watchdog stops a call that does not return (a
   * backtracking regex), so a job takes at most its budget and ends in its rule's errorAction. The
   * budget is wall-clock time, which a loaded machine or a GC pause can eat: a job out of time is
   * tried once more, first in a fresh slice, before it counts as failed.
   */
  private async evaluateJobs(jobs: Job[], effects: BatchEffects): Promise<void> {
    const budgetMs = this.deps.evaluationBudgetMs ?? DEFAULT_EVALUATION_BUDGET_MS;
    const clock = this.deps.clock ?? (() => performance.now());
    const retried = new Set<Job>();
    let next = 0;
    let turns = 1;
    while (next < jobs.length) {
      // Every slice starts from a timer: a full turn of the event loop first (not setImmediate), so the
      // sockets (poll phase) and the ingress log's commit and acknowledgements (check phase) go first.
      // After a slice a job overran, a few turns: a device's acknowledgement takes more than one.
      for (let t = 0; t < turns; t++) await new Promise<void>((resolve) => setTimeout(resolve, 0));
      const first = next;
      const sliceStart = clock();
      // Appending to `done` is the one step that completes a job, so a stop anywhere leaves it whole or not at all.
      const done: JobResult[] = [];
      let running: { job: Job; budget: EvaluationBudget } | undefined;
      try {
        // A job starts only within the slice, so it has its whole budget before the watchdog fires.
        runWithinBudget(() => {
          for (let now = sliceStart; first + done.length < jobs.length && now - sliceStart < EVALUATION_SLICE_MS; now = clock()) {
            const job = jobs[first + done.length]!;
            running = { job, budget: evaluationBudget(budgetMs, clock, now) };
            const result = this.evaluateJob(job, running.budget);
            if (result.outOfTime && !retried.has(job)) {
              retried.add(job);
              return;
            }
            done.push(result);
          }
        }, EVALUATION_SLICE_MS + budgetMs, () => running?.budget);
      } catch (e) {
        // The watchdog stopped the job in progress: it alone is retried or fails, with the reason.
        const stopped = jobs[first + done.length];
        if (!stopped || running?.job !== stopped) throw e;
        if (retried.has(stopped)) done.push({ job: stopped, actions: [], evaluationError: (e as Error).message });
        else retried.add(stopped);
      }
      for (const result of done) this.apply(result, effects);
      next = first + done.length;
      turns = clock() - sliceStart > 2 * EVALUATION_SLICE_MS ? TURNS_AFTER_OVERRUN : 1;
    }
  }

  /** Evaluates one rule on one message and renders its actions' templates; touches nothing else. */
  private evaluateJob(job: Job, budget: EvaluationBudget): JobResult {
    const ctx = contextOf(job);
    let data: Buffer;
    try {
      const output = job.rule.rule.evaluate(ctx, { budget });
      if (output === undefined) return { job, actions: [] };
      // Encoding can fail too (a payload nested deeper than the stack allows): a failure of this message.
      data = encodeOutput(output);
    } catch (e) {
      const reason = e instanceof RangeError ? `payload too deeply nested (${e.message})` : (e as Error).message;
      return { job, actions: [], evaluationError: reason, outOfTime: isOutOfTime(e) };
    }
    const actions = job.rule.actions.map((action) => {
      try {
        const fields: Record<string, string> = {};
        for (const [field, template] of Object.entries(action.templates)) fields[field] = template.render(ctx, { budget });
        return { action, fields };
      } catch (error) {
        return { action, error };
      }
    });
    return { job, data, actions, outOfTime: actions.some((a) => isOutOfTime(a.error)) };
  }

  /** Adds a job's result to the batch: its actions' work, or its failures. */
  private apply(result: JobResult, effects: BatchEffects): void {
    const { rule, message } = result.job;
    if (result.evaluationError !== undefined) {
      this.stats.evaluationErrors++;
      addFailure(effects, rule, message, { failedAction: 'RuleEvaluation', actionType: 'sql', failedResource: rule.spec.name, errorMessage: result.evaluationError });
      return;
    }
    if (result.data === undefined) return;
    this.stats.rulesMatched++;
    for (const { action, fields, error } of result.actions) {
      try {
        if (!fields) throw error;
        this.plan(action, rule, message, fields, result.data, effects);
      } catch (e) {
        addFailure(effects, rule, message, failureOf(action, e));
      }
    }
  }

  /** Queues an action's work for the batch; `fields` are its rendered templates. */
  private plan(action: CompiledAction, rule: CompiledRule, message: IngressMessage, fields: Record<string, string>, data: Buffer, effects: BatchEffects): void {
    const spec = action.spec;
    const deps = this.deps;
    const missing = (kind: string) => { throw new Error(`no local ${kind} component is running`); };
    if ('kinesis' in spec) {
      if (!deps.streams) missing('stream');
      const partitionKey = fields.partitionKey!;
      effects.transactional.push({ rule, action, message, run: () => deps.streams!.putRecord(spec.kinesis.stream, data, partitionKey) });
    } else if ('iotAnalytics' in spec) {
      if (!deps.channels) missing('analytics');
      const list = effects.channelPuts.get(spec.iotAnalytics.channel) ?? [];
      // The channel deduplicates by id: the first action sending this message to this channel keeps its id,
      // any further one (another rule, same channel) gets a derived id, the same on every replay.
      const taken = list.some((p) => p.source.messageId === message.messageId);
      const messageId = taken ? derivedId(message.messageId, rule.spec.name, rule.actions.indexOf(action)) : message.messageId;
      list.push({ message: { messageId, receivedAt: message.receivedAt, payload: data }, rule, action, source: message });
      effects.channelPuts.set(spec.iotAnalytics.channel, list);
    } else if ('republish' in spec) {
      const topic = fields.topic!;
      const messageId = derivedId(message.messageId, rule.spec.name, rule.actions.indexOf(action));
      effects.asyncActions.push({ rule, action, source: message, run: () => this.republish(rule, { messageId, topic, clientId: message.clientId, qos: spec.republish.qos, payload: data }) });
    } else if ('s3' in spec || 'firehose' in spec) {
      if (!deps.objects) missing('object store');
      const [bucket, key] = 's3' in spec
        ? [fields.bucket!, fields.key!]
        : [`firehose-${spec.firehose.deliveryStream}`, `${new Date(message.receivedAt).toISOString().slice(0, 10)}/${message.messageId}.json`];
      const body = 'firehose' in spec && spec.firehose.separator ? Buffer.concat([data, Buffer.from(unescapeSeparator(spec.firehose.separator))]) : data;
      effects.asyncActions.push({ rule, action, source: message, run: () => deps.objects!.putObject(bucket, key, body) });
    } else if ('cloudwatchLogs' in spec) {
      if (!deps.objects) missing('object store');
      const body = data;
      effects.asyncActions.push({ rule, action, source: message, run: () => deps.objects!.putObject(logGroupBucket(spec.cloudwatchLogs.logGroup), `${new Date(message.receivedAt).toISOString().slice(0, 10)}/${message.messageId}.json`, body) });
    } else if ('lambda' in spec) {
      if (!deps.functions) missing('function runner');
      const event = decodeForEvent(data);
      effects.transactional.push({ rule, action, message, run: () => deps.functions!.enqueue(spec.lambda.function, event) });
    }
  }

  private async runAsyncActions(effects: BatchEffects): Promise<void> {
    const channelJobs = [...effects.channelPuts].map(async ([channel, puts]) => {
      try {
        await this.deps.channels!.putMessages(channel, puts.map((p) => p.message));
        count(this.stats.actionsSucceeded, 'iotAnalytics', puts.length);
      } catch (e) {
        for (const p of puts) addFailure(effects, p.rule, p.source, failureOf(p.action, e));
      }
    });
    const otherJobs = effects.asyncActions.map(async (job) => {
      try {
        await job.run();
        count(this.stats.actionsSucceeded, job.action.type);
      } catch (e) {
        addFailure(effects, job.rule, job.source, failureOf(job.action, e));
      }
    });
    await Promise.all([...channelJobs, ...otherJobs]);
  }

  /** Stream puts + error records + checkpoint, atomically. Returns the error payloads to deliver. */
  private commit(effects: BatchEffects, lastSeq: number): { rule: CompiledRule; payload: RuleErrorPayload }[] {
    const db = this.deps.db;
    const out: { rule: CompiledRule; payload: RuleErrorPayload }[] = [];
    db.transaction(() => {
      for (const put of effects.transactional) {
        try {
          put.run();
          count(this.stats.actionsSucceeded, put.action.type);
        } catch (e) {
          addFailure(effects, put.rule, put.message, failureOf(put.action, e));
        }
      }
      for (const { rule, source, failures } of effects.failures.values()) {
        const payload: RuleErrorPayload = {
          ruleName: rule.spec.name,
          topic: source.topic,
          cloudwatchTraceId: source.messageId,
          clientId: source.clientId,
          base64OriginalPayload: source.payload.toString('base64'),
          failures,
        };
        for (const f of failures) count(this.stats.actionsFailed, f.actionType);
        // Kinesis and lambda errorActions are SQLite writes: delivered in this transaction. The others are
        // delivered after the commit; until then the error is an outbox entry, redelivered after a crash.
        const delivered = !rule.errorAction || this.deliverErrorInTransaction(rule, payload);
        this.deps.store.recordError(payload, delivered);
        this.log(`rule ${rule.spec.name} failed for message ${source.messageId}: ${failures.map((f) => f.errorMessage).join('; ')}`);
        if (!delivered) out.push({ rule, payload });
      }
      db.prepare('INSERT INTO rules_checkpoint (consumer, seq) VALUES (?, ?) ON CONFLICT(consumer) DO UPDATE SET seq = excluded.seq').run(CONSUMER, lastSeq);
    })();
    return out;
  }

  /**
   * Republished messages re-enter the ingress log (and so the rules), as on AWS; their derived id keeps a
   * replay from duplicating them. Delivery to subscribers is at least once.
   */
  private async republish(rule: CompiledRule, m: { messageId: string; topic: string; clientId: string; qos: number; payload: Buffer }): Promise<void> {
    // AWS IoT's topic limits end a rule that republishes to a growing topic (a loop) in its errorAction.
    const problem = publishTopicProblem(m.topic);
    if (problem) throw new Error(`cannot republish to "${m.topic.length > 200 ? `${m.topic.slice(0, 200)}...` : m.topic}": ${problem.message}`);
    await this.deps.ingress.append({ ...m, principal: `rule:${rule.spec.name}` });
    await this.deps.deliver?.(m.topic, m.payload, m.qos as 0 | 1);
  }

  /** A kinesis or lambda errorAction, inside the commit. Returns false for the other action types. */
  private deliverErrorInTransaction(rule: CompiledRule, payload: RuleErrorPayload): boolean {
    const action = rule.errorAction!;
    const spec = action.spec;
    if (!('kinesis' in spec) && !('lambda' in spec)) return false;
    try {
      if ('kinesis' in spec) this.deps.streams!.putRecord(spec.kinesis.stream, Buffer.from(JSON.stringify(payload)), this.renderErrorField(action, 'partitionKey', errorContext(rule, payload)));
      else this.deps.functions!.enqueue(spec.lambda.function, payload);
    } catch (e) {
      this.log(`errorAction of rule ${rule.spec.name} failed: ${(e as Error).message} (the error stays in rules_errors)`);
    }
    return true;
  }

  /** An errorAction's template, under the evaluation budget too: its expressions can run regexes over the topic. */
  private renderErrorField(action: CompiledAction, field: string, ctx: ReturnType<typeof errorContext>): string {
    const template = action.templates[field]!;
    if (!template.template.includes('${')) return template.template;
    const budgetMs = this.deps.evaluationBudgetMs ?? DEFAULT_EVALUATION_BUDGET_MS;
    const budget = evaluationBudget(budgetMs);
    return runWithinBudget(() => template.render(ctx, { budget }), budgetMs, () => budget);
  }

  /** Deliver error payloads to each rule's asynchronous errorAction; each is marked delivered when done. */
  private async runErrorActions(errors: { rule: CompiledRule; payload: RuleErrorPayload }[]): Promise<void> {
    for (const { rule, payload } of errors) {
      const action = rule.errorAction!;
      const spec = action.spec;
      const data = Buffer.from(JSON.stringify(payload));
      const ctx = errorContext(rule, payload);
      const id = derivedId(payload.cloudwatchTraceId, rule.spec.name, -1);
      try {
        if ('republish' in spec) {
          await this.republish(rule, { messageId: id, topic: this.renderErrorField(action, 'topic', ctx), clientId: payload.clientId, qos: spec.republish.qos, payload: data });
        } else if ('iotAnalytics' in spec) await this.deps.channels!.putMessages(spec.iotAnalytics.channel, [{ messageId: id, receivedAt: Date.now(), payload: data }]);
        else if ('s3' in spec) await this.deps.objects!.putObject(this.renderErrorField(action, 'bucket', ctx), this.renderErrorField(action, 'key', ctx), data);
        else if ('firehose' in spec) await this.deps.objects!.putObject(`firehose-${spec.firehose.deliveryStream}`, `errors/${payload.cloudwatchTraceId}.json`, data);
        else if ('cloudwatchLogs' in spec) await this.deps.objects!.putObject(logGroupBucket(spec.cloudwatchLogs.logGroup), `errors/${payload.cloudwatchTraceId}.json`, data);
        this.deps.store.markDelivered(rule.spec.name, payload.cloudwatchTraceId);
      } catch (e) {
        this.log(`errorAction of rule ${rule.spec.name} failed: ${(e as Error).message} (kept in rules_errors; retried when the platform restarts)`);
      }
    }
  }

  /** Error deliveries a crash interrupted: retried once at start, for rules that still have an errorAction. */
  async redeliverErrors(): Promise<void> {
    const byName = new Map(this.rules.map((r) => [r.spec.name, r]));
    const pending = this.deps.store.undelivered().flatMap((payload) => {
      const rule = byName.get(payload.ruleName);
      return rule?.errorAction ? [{ rule, payload }] : [];
    });
    if (pending.length) this.log(`rules: redelivering ${pending.length} error payload(s) interrupted by a restart`);
    await this.runErrorActions(pending);
  }

  /** Recent rule errors, newest first. */
  errors(limit = 50) {
    return this.deps.store.errors({ limit });
  }

}

function isOutOfTime(e: unknown): boolean {
  return e instanceof SqlRuntimeError && e.code === 'EVALUATION_TIMEOUT';
}

/** What the rule's SQL and templates see of a message. */
function contextOf({ rule, message }: Job) {
  return { topic: message.topic, payload: new Uint8Array(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength), clientId: message.clientId, timestamp: message.receivedAt, principal: message.principal, messageId: message.messageId, ruleName: rule.spec.name, accountId: DEFAULT_ACCOUNT,
    ...(message.properties && { mqttProperties: message.properties, ...(message.properties.userProperties && { userProperties: message.properties.userProperties }) }) };
}

function errorContext(rule: CompiledRule, payload: RuleErrorPayload) {
  return { topic: payload.topic, payload: Buffer.from(JSON.stringify(payload)), clientId: payload.clientId, messageId: payload.cloudwatchTraceId, ruleName: rule.spec.name };
}

const ACTION_TYPES: Record<string, string> = { kinesis: 'KinesisAction', iotAnalytics: 'IotAnalyticsAction', republish: 'RepublishAction', s3: 'S3Action', firehose: 'FirehoseAction', lambda: 'LambdaAction', cloudwatchLogs: 'CloudwatchLogsAction' };

/** The local stand-in for a CloudWatch Logs group: one object-store bucket per group, one object per event. */
function logGroupBucket(logGroup: string): string {
  return `logs-${logGroup.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

/** Compile an action's substitution templates (validated at spec-load time too). */
export function compileAction(spec: RuleAction): CompiledAction {
  const type = Object.keys(spec)[0]!;
  const fields = (spec as Record<string, Record<string, unknown>>)[type]!;
  const templated: Record<string, string[]> = { kinesis: ['partitionKey'], republish: ['topic'], s3: ['bucket', 'key'] };
  const templates: CompiledAction['templates'] = {};
  for (const f of templated[type] ?? []) templates[f] = compileTemplate(String(fields[f]));
  const resource = String(fields.stream ?? fields.channel ?? fields.topic ?? fields.bucket ?? fields.deliveryStream ?? fields.function ?? fields.logGroup ?? '');
  return { type, resource, spec, templates };
}

function failureOf(action: CompiledAction, e: unknown): RuleErrorPayload['failures'][number] {
  const message = e instanceof DestinationNotFoundError ? `${e.message}; declare it in iotctl.yaml and run \`iotctl apply\`` : (e as Error)?.message ?? String(e);
  return { failedAction: ACTION_TYPES[action.type] ?? action.type, actionType: action.type, failedResource: action.resource, errorMessage: message };
}

function addFailure(effects: BatchEffects, rule: CompiledRule, source: IngressMessage, failure: RuleErrorPayload['failures'][number]): void {
  const key = `${rule.spec.name}\u0000${source.messageId}`;
  const entry = effects.failures.get(key) ?? { rule, source, failures: [] };
  entry.failures.push(failure);
  effects.failures.set(key, entry);
}

/** The rule's output as bytes: JSON for documents and values, raw bytes for binary SELECT *. */
export function encodeOutput(output: unknown): Buffer {
  if (output instanceof Uint8Array) return Buffer.from(output.buffer, output.byteOffset, output.byteLength);
  return Buffer.from(JSON.stringify(output));
}

function decodeForEvent(data: Buffer): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    return { base64Payload: data.toString('base64') };
  }
}

function unescapeSeparator(s: string): string {
  return s.replace(/\\n/g, '\n').replace(/\\r/g, '\r').replace(/\\t/g, '\t');
}

/** A stable UUID for a message produced by a rule action, so replays produce the same id. */
export function derivedId(messageId: string, ruleName: string, position: number): string {
  const h = createHash('sha256').update(`${messageId}\u0000${ruleName}\u0000${position}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** The rule a Basic Ingest topic (`$aws/rules/<ruleName>/...`) names, or undefined for other topics. */
function basicIngestRule(topic: string): string | undefined {
  if (!topic.startsWith('$aws/rules/')) return undefined;
  const rest = topic.slice('$aws/rules/'.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? rest : rest.slice(0, slash);
}
