import { LAMBDA_RUNTIME } from '../../services/bundle.js';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Db } from './store.js';
import { DestinationNotFoundError, type FunctionSink } from './sinks.js';
import { FUNCTION_WORKER_SOURCE } from './function-worker.js';
import type { EventSourceSpec, FunctionSpec, Spec } from '../../spec/schema.js';
import type { Resource } from '../../iot/plan/index.js';
import { LOCAL_ACCOUNT_ID } from './stream.js';
import { formatLogEvent } from '../../iot/logs.js';

/**
 * The local Lambda service: a registry of deployed functions, an invoker that runs each function's bundled
 * CommonJS artifact in worker threads (one invocation at a time per worker, a fresh worker per cold start,
 * reused while warm, terminated on timeout), CloudWatch-style logs in SQLite, and asynchronous invocation
 * (the IoT rule `lambda` action) through a durable queue with AWS's two retries.
 */

export interface FunctionDefinition {
  name: string;
  template: string;
  artifactPath: string;
  sha256: string;
  /** The exported handler function's name. */
  handler: string;
  timeoutSeconds: number;
  memoryMb: number;
  environment: Record<string, string>;
  eventSource?: EventSourceSpec;
}

export interface DeployedFunction extends FunctionDefinition {
  arn: string;
  /** Rises on every change, so the invoker and the event source mappings notice redeployments. */
  revision: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface InvokeResult {
  requestId: string;
  functionName: string;
  /** 200 for every invocation that reached the function, as the Invoke API returns. */
  statusCode: 200;
  /** 'Unhandled' when the function threw, timed out or crashed (X-Amz-Function-Error). */
  functionError?: 'Unhandled';
  /** The handler's return value, or { errorType, errorMessage, trace } on a function error. */
  payload: unknown;
  durationMs: number;
  billedDurationMs: number;
  /** Set on a cold start: the time spent loading the artifact. */
  initDurationMs?: number;
  maxMemoryUsedMb: number;
  /** The invocation's log lines (START to REPORT), CloudWatch-formatted. */
  logTail: string[];
}

/** A log line as the local store keeps it (the port's LogEvent has a string id). */
export interface StoredLogEvent {
  id: number;
  functionName: string;
  requestId: string | null;
  /** ms since epoch */
  timestamp: number;
  /** START, END, REPORT, INFO, WARN, ERROR, DEBUG, TRACE */
  level: string;
  message: string;
}

/** An on-failure record as the local store keeps it (the port's FailureRecord has a string id and an ISO time). */
export interface StoredFailureRecord {
  id: number;
  functionName: string;
  destination: string;
  createdAt: Date;
  record: Record<string, unknown>;
}

export interface LocalFunctionsOptions {
  region?: string;
  clock?: () => number;
  /** Variables a function gets under its own (the daemon passes DATABASE_URL for the function's database role). */
  baseEnvironment?: (fn: DeployedFunction) => Record<string, string>;
  /** Concurrent executions per function; more invocations wait (Lambda would throttle). */
  maxConcurrency?: number;
  /** Warm workers idle longer than this are shut down. */
  idleTimeoutMs?: number;
  /** Waits before the 2nd and 3rd attempt of an asynchronous invocation (AWS: about 1 and 2 minutes). */
  asyncRetryDelaysMs?: number[];
  /** Log events older than this are deleted by start(). */
  logRetentionMs?: number;
}

export function functionArn(region: string, name: string): string {
  return `arn:aws:lambda:${region}:${LOCAL_ACCOUNT_ID}:function:${name}`;
}

interface FunctionRow {
  name: string;
  template: string;
  artifact_path: string;
  sha256: string;
  handler: string;
  timeout_seconds: number;
  memory_mb: number;
  environment: string;
  event_source: string | null;
  revision: number;
  created_at: number;
  updated_at: number;
}

interface Pending {
  requestId: string;
  resolve: (r: { ok: boolean; payload?: unknown; error?: ErrorPayload; maxMemoryMb: number }) => void;
  log: (level: string, message: string, ts: number) => void;
}

interface ErrorPayload {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

/** One execution environment: a worker thread with the function's artifact loaded. */
class Environment {
  readonly worker: Worker;
  readonly ready: Promise<{ initMs: number } | { error: ErrorPayload }>;
  pending?: Pending;
  dead = false;
  idleTimer?: NodeJS.Timeout;
  private deathReason: ErrorPayload = { errorType: 'Runtime.ExitError', errorMessage: 'the runtime exited', trace: [] };

  constructor(fn: DeployedFunction, env: Record<string, string>) {
    this.worker = new Worker(FUNCTION_WORKER_SOURCE, {
      eval: true,
      env,
      workerData: { artifactPath: fn.artifactPath, handler: fn.handler },
      // Lambda's memory setting caps the heap; exceeding it kills the environment like an OOM.
      resourceLimits: { maxOldGenerationSizeMb: fn.memoryMb },
      stdout: true,
      stderr: true,
    });
    this.ready = new Promise((resolve) => {
      const onMessage = (m: { type: string; initMs?: number; error?: ErrorPayload }) => {
        if (m.type === 'ready') resolve({ initMs: m.initMs! });
        else if (m.type === 'init-error') resolve({ error: m.error! });
        else return;
        this.worker.off('message', onMessage);
      };
      this.worker.on('message', onMessage);
      this.worker.once('exit', () => resolve({ error: this.deathReason }));
    });
    this.worker.on('message', (m: { type: string; requestId?: string; ts?: number; level?: string; message?: string; ok?: boolean; payload?: unknown; error?: ErrorPayload; maxMemoryMb?: number }) => {
      const p = this.pending;
      if (!p) return;
      if (m.type === 'log') p.log(m.level!, m.message!, m.ts!);
      else if (m.type === 'result' && m.requestId === p.requestId) {
        this.pending = undefined;
        p.resolve({ ok: m.ok!, payload: m.payload, error: m.error, maxMemoryMb: m.maxMemoryMb ?? 0 });
      }
    });
    this.worker.on('error', (err: Error & { code?: string }) => {
      this.deathReason =
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? { errorType: 'Runtime.OutOfMemory', errorMessage: `Runtime exited: the function ran out of memory (${fn.memoryMb} MB)`, trace: [] }
          : { errorType: err.name || 'Error', errorMessage: err.message, trace: String(err.stack ?? '').split('\n') };
    });
    this.worker.on('exit', (code) => {
      this.dead = true;
      const p = this.pending;
      this.pending = undefined;
      if (p) {
        const reason = this.deathReason.errorType === 'Runtime.ExitError' ? { ...this.deathReason, errorMessage: `Runtime exited with error: exit status ${code}` } : this.deathReason;
        p.log('ERROR', `${reason.errorType}: ${reason.errorMessage}`, Date.now());
        p.resolve({ ok: false, error: reason, maxMemoryMb: 0 });
      }
    });
    // Anything written to the worker's real stdout/stderr outside an invocation is dropped, as Lambda does
    // with output between invocations; inside one, the worker reroutes it to the log.
    this.worker.stdout.resume();
    this.worker.stderr.resume();
  }

  terminate(): void {
    clearTimeout(this.idleTimer);
    this.dead = true;
    void this.worker.terminate();
  }
}

interface Pool {
  revision: number;
  idle: Environment[];
  busy: number;
  waiters: Array<() => void>;
}

export class LocalFunctions implements FunctionSink {
  readonly region: string;
  private readonly clock: () => number;
  private readonly opts: Required<Omit<LocalFunctionsOptions, 'region' | 'clock' | 'baseEnvironment'>> & Pick<LocalFunctionsOptions, 'baseEnvironment'>;
  private readonly pools = new Map<string, Pool>();
  private drainTimer?: NodeJS.Timeout;
  private draining?: Promise<void>;
  private running = false;
  private readonly inflightAsync = new Set<Promise<void>>();

  constructor(
    private readonly db: Db,
    opts: LocalFunctionsOptions = {},
  ) {
    this.region = opts.region ?? 'us-east-1';
    this.clock = opts.clock ?? Date.now;
    this.opts = {
      baseEnvironment: opts.baseEnvironment,
      maxConcurrency: opts.maxConcurrency ?? 10,
      idleTimeoutMs: opts.idleTimeoutMs ?? 5 * 60_000,
      asyncRetryDelaysMs: opts.asyncRetryDelaysMs ?? [60_000, 120_000],
      logRetentionMs: opts.logRetentionMs ?? 7 * 24 * 3_600_000,
    };
    db.exec(`
      CREATE TABLE IF NOT EXISTS lambda_functions (
        name TEXT PRIMARY KEY,
        template TEXT NOT NULL,
        artifact_path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        handler TEXT NOT NULL,
        timeout_seconds INTEGER NOT NULL,
        memory_mb INTEGER NOT NULL,
        environment TEXT NOT NULL,
        event_source TEXT,
        revision INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS lambda_logs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        function_name TEXT NOT NULL,
        request_id TEXT,
        ts INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS lambda_logs_by_function ON lambda_logs (function_name, id);
      CREATE TABLE IF NOT EXISTS lambda_async_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        function_name TEXT NOT NULL,
        request_id TEXT NOT NULL,
        event TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS lambda_failure_destination (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        function_name TEXT NOT NULL,
        destination TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        record TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS lambda_failure_destination_by_function ON lambda_failure_destination (function_name, id);
    `);
  }

  // ---- registry ----

  /** Create or update a function. Returns what changed; the revision rises only on a real change. */
  register(def: FunctionDefinition): 'created' | 'updated' | 'unchanged' {
    validateDefinition(def);
    const now = this.clock();
    const existing = this.db.prepare('SELECT * FROM lambda_functions WHERE name = ?').get(def.name) as FunctionRow | undefined;
    const values = [def.template, def.artifactPath, def.sha256, def.handler, def.timeoutSeconds, def.memoryMb, JSON.stringify(def.environment), def.eventSource ? JSON.stringify(def.eventSource) : null] as const;
    if (!existing) {
      this.db
        .prepare(
          `INSERT INTO lambda_functions (name, template, artifact_path, sha256, handler, timeout_seconds, memory_mb, environment, event_source, revision, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
        )
        .run(def.name, ...values, now, now);
      return 'created';
    }
    const before = [existing.template, existing.artifact_path, existing.sha256, existing.handler, existing.timeout_seconds, existing.memory_mb, existing.environment, existing.event_source];
    if (before.every((v, i) => v === values[i])) return 'unchanged';
    this.db
      .prepare(
        `UPDATE lambda_functions SET template = ?, artifact_path = ?, sha256 = ?, handler = ?, timeout_seconds = ?, memory_mb = ?, environment = ?, event_source = ?,
         revision = revision + 1, updated_at = ? WHERE name = ?`,
      )
      .run(...values, now, def.name);
    return 'updated';
  }

  /** Delete a function (its logs and failure records stay, as CloudWatch log groups outlive functions). */
  remove(name: string): boolean {
    this.retire(name);
    return this.db.prepare('DELETE FROM lambda_functions WHERE name = ?').run(name).changes > 0;
  }

  get(name: string): DeployedFunction | undefined {
    const row = this.db.prepare('SELECT * FROM lambda_functions WHERE name = ?').get(name) as FunctionRow | undefined;
    return row && this.fromRow(row);
  }

  list(): DeployedFunction[] {
    return (this.db.prepare('SELECT * FROM lambda_functions ORDER BY name').all() as FunctionRow[]).map((r) => this.fromRow(r));
  }

  // ---- invocation ----

  /** Synchronous invocation (RequestResponse). A function error is a result, not an exception. */
  async invoke(name: string, event: unknown): Promise<InvokeResult> {
    const fn = this.get(name);
    if (!fn) throw new DestinationNotFoundError('function', name);
    if (!existsSync(fn.artifactPath)) throw new Error(`function "${name}": its artifact ${fn.artifactPath} is missing; deploy it again`);
    const requestId = randomUUID();
    const pool = await this.acquire(fn);
    const logs: Array<{ ts: number; level: string; message: string }> = [];
    const log = (level: string, message: string, ts = this.clock()) => logs.push({ ts, level, message });
    let env: Environment | undefined;
    try {
      env = pool.idle.pop();
      let initDurationMs: number | undefined;
      log('START', `START RequestId: ${requestId} Version: $LATEST`);
      if (env) {
        clearTimeout(env.idleTimer);
        env.worker.ref();
      } else {
        env = new Environment(fn, this.environmentFor(fn));
        const ready = await env.ready;
        if ('error' in ready) {
          env.terminate();
          log('ERROR', `INIT_REPORT Init Duration: 0 ms Phase: init Status: error Error Type: ${ready.error.errorType}`);
          log('ERROR', `${ready.error.errorType}: ${ready.error.errorMessage}`);
          return this.finish(fn, requestId, logs, { ok: false, error: ready.error, maxMemoryMb: 0 }, 0);
        }
        initDurationMs = ready.initMs;
      }
      const current = env;
      const started = performance.now();
      const deadline = Date.now() + fn.timeoutSeconds * 1000;
      const outcome = await new Promise<{ ok: boolean; payload?: unknown; error?: ErrorPayload; maxMemoryMb: number }>((resolve) => {
        const timer = setTimeout(() => {
          current.pending = undefined;
          current.terminate();
          const message = `Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`;
          log('ERROR', `${new Date(this.clock()).toISOString()} ${requestId} ${message}`);
          resolve({ ok: false, error: { errorType: 'Sandbox.Timedout', errorMessage: `RequestId: ${requestId} Error: ${message}`, trace: [] }, maxMemoryMb: 0 });
        }, fn.timeoutSeconds * 1000);
        current.pending = {
          requestId,
          log: (level, message, ts) => log(level, message, ts),
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        };
        current.worker.postMessage({
          type: 'invoke',
          requestId,
          event,
          deadline,
          context: {
            functionName: fn.name,
            functionVersion: '$LATEST',
            invokedFunctionArn: fn.arn,
            memoryLimitInMB: String(fn.memoryMb),
            logGroupName: `/aws/lambda/${fn.name}`,
            logStreamName: logStreamName(this.clock()),
          },
        });
      });
      const durationMs = performance.now() - started;
      if (!outcome.ok && outcome.error?.errorType !== 'Sandbox.Timedout' && !current.dead)
        log('ERROR', `Invoke Error \t${JSON.stringify({ errorType: outcome.error!.errorType, errorMessage: outcome.error!.errorMessage, stack: outcome.error!.trace })}`);
      return this.finish(fn, requestId, logs, outcome, durationMs, initDurationMs);
    } finally {
      if (env && !env.dead && !env.pending) this.release(fn.name, pool, env);
      else this.release(fn.name, pool);
    }
  }

  /** Asynchronous invocation (InvocationType=Event): queued durably, run by start(), retried twice on error. */
  /** Queue an asynchronous invocation; joins the caller's transaction when one is open. */
  enqueue(functionName: string, event: unknown): void {
    if (!this.get(functionName)) throw new DestinationNotFoundError('function', functionName);
    const now = this.clock();
    this.db.prepare('INSERT INTO lambda_async_events (function_name, request_id, event, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?)').run(functionName, randomUUID(), JSON.stringify(event ?? null), now, now);
  }

  async invokeAsync(functionName: string, event: unknown): Promise<void> {
    this.enqueue(functionName, event);
    if (this.running) this.kick();
  }

  /** Run queued asynchronous invocations and trim old logs until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.trimLogs();
    this.drainTimer = setInterval(() => this.kick(), 200);
    this.drainTimer.unref();
  }

  /** Stop taking asynchronous invocations, wait for the running ones, and shut every environment down. */
  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.drainTimer);
    await this.draining;
    await Promise.all(this.inflightAsync);
    for (const name of [...this.pools.keys()]) this.retire(name);
  }

  // ---- logs and failures ----

  readLogs(name: string, opts: { afterId?: number; since?: number; limit?: number } = {}): StoredLogEvent[] {
    const rows = this.db
      .prepare(
        `SELECT id, function_name, request_id, ts, level, message FROM lambda_logs
         WHERE function_name = ? AND id > ? AND ts >= ? ORDER BY id DESC LIMIT ?`,
      )
      .all(name, opts.afterId ?? 0, opts.since ?? 0, opts.limit ?? 1000) as Array<{ id: number; function_name: string; request_id: string | null; ts: number; level: string; message: string }>;
    return rows.reverse().map((r) => ({ id: r.id, functionName: r.function_name, requestId: r.request_id, timestamp: r.ts, level: r.level, message: r.message }));
  }

  /** Record what an on-failure destination receives (local: the lambda_failure_destination table). */
  recordFailure(functionName: string, destination: string, record: Record<string, unknown>): void {
    this.db.prepare('INSERT INTO lambda_failure_destination (function_name, destination, created_at, record) VALUES (?, ?, ?, ?)').run(functionName, destination, this.clock(), JSON.stringify(record));
  }

  listFailures(functionName: string, opts: { limit?: number; afterId?: number } = {}): StoredFailureRecord[] {
    const rows = this.db
      .prepare('SELECT id, function_name, destination, created_at, record FROM lambda_failure_destination WHERE function_name = ? AND id > ? ORDER BY id DESC LIMIT ?')
      .all(functionName, opts.afterId ?? 0, opts.limit ?? 100) as Array<{ id: number; function_name: string; destination: string; created_at: number; record: string }>;
    return rows.reverse().map((r) => ({ id: r.id, functionName: r.function_name, destination: r.destination, createdAt: new Date(r.created_at), record: JSON.parse(r.record) }));
  }

  trimLogs(now = this.clock()): number {
    return this.db.prepare('DELETE FROM lambda_logs WHERE ts < ?').run(now - this.opts.logRetentionMs).changes;
  }

  // ---- internals ----

  private fromRow(r: FunctionRow): DeployedFunction {
    return {
      name: r.name,
      arn: functionArn(this.region, r.name),
      template: r.template,
      artifactPath: r.artifact_path,
      sha256: r.sha256,
      handler: r.handler,
      timeoutSeconds: r.timeout_seconds,
      memoryMb: r.memory_mb,
      environment: JSON.parse(r.environment),
      eventSource: r.event_source ? JSON.parse(r.event_source) : undefined,
      revision: r.revision,
      createdAt: new Date(r.created_at),
      updatedAt: new Date(r.updated_at),
    };
  }

  private environmentFor(fn: DeployedFunction): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      ...withInjected(fn.environment, this.opts.baseEnvironment?.(fn) ?? {}),
      AWS_REGION: this.region,
      AWS_DEFAULT_REGION: this.region,
      AWS_EXECUTION_ENV: `AWS_Lambda_${LAMBDA_RUNTIME}`,
      AWS_LAMBDA_FUNCTION_NAME: fn.name,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: logStreamName(this.clock()),
      _HANDLER: `index.${fn.handler}`,
      IOTCTL_LOCAL: '1',
    };
  }

  /** A pool slot for the function's current revision; a redeploy retires the old revision's warm workers. */
  private async acquire(fn: DeployedFunction): Promise<Pool> {
    let pool = this.pools.get(fn.name);
    if (pool && pool.revision !== fn.revision) {
      for (const env of pool.idle) env.terminate();
      pool.idle = [];
      if (pool.busy === 0) pool = undefined;
      else pool.revision = -1; // busy workers of the old revision finish, then get dropped on release
    }
    if (!pool || pool.revision === -1) {
      const old = pool;
      pool = { revision: fn.revision, idle: [], busy: 0, waiters: [] };
      this.pools.set(fn.name, pool);
      // Waiters of the old pool move over so none is stranded.
      if (old) pool.waiters.push(...old.waiters.splice(0));
    }
    while (pool.busy >= this.opts.maxConcurrency) await new Promise<void>((resolve) => pool!.waiters.push(resolve));
    pool.busy++;
    return pool;
  }

  private release(name: string, pool: Pool, env?: Environment): void {
    pool.busy--;
    const current = this.pools.get(name);
    if (env) {
      if (current === pool) {
        env.idleTimer = setTimeout(() => {
          pool.idle = pool.idle.filter((e) => e !== env);
          env.terminate();
        }, this.opts.idleTimeoutMs);
        env.idleTimer.unref();
        // An idle environment does not keep the process alive (a CLI that invoked once can exit).
        env.worker.unref();
        pool.idle.push(env);
      } else env.terminate();
    }
    const target = current ?? pool;
    target.waiters.shift()?.();
  }

  private retire(name: string): void {
    const pool = this.pools.get(name);
    if (!pool) return;
    for (const env of pool.idle) env.terminate();
    pool.idle = [];
    this.pools.delete(name);
  }

  private finish(
    fn: DeployedFunction,
    requestId: string,
    logs: Array<{ ts: number; level: string; message: string }>,
    outcome: { ok: boolean; payload?: unknown; error?: ErrorPayload; maxMemoryMb: number },
    durationMs: number,
    initDurationMs?: number,
  ): InvokeResult {
    const billedDurationMs = Math.max(1, Math.ceil(durationMs));
    logs.push({ ts: this.clock(), level: 'END', message: `END RequestId: ${requestId}` });
    logs.push({
      ts: this.clock(),
      level: 'REPORT',
      message:
        `REPORT RequestId: ${requestId}\tDuration: ${durationMs.toFixed(2)} ms\tBilled Duration: ${billedDurationMs} ms\t` +
        `Memory Size: ${fn.memoryMb} MB\tMax Memory Used: ${outcome.maxMemoryMb} MB` +
        (initDurationMs !== undefined ? `\tInit Duration: ${initDurationMs.toFixed(2)} ms` : '') +
        (outcome.error?.errorType === 'Sandbox.Timedout' ? '\tStatus: timeout' : ''),
    });
    const insert = this.db.prepare('INSERT INTO lambda_logs (function_name, request_id, ts, level, message) VALUES (?, ?, ?, ?, ?)');
    const write = () => {
      for (const l of logs) insert.run(fn.name, requestId, l.ts, l.level, l.message);
    };
    if (this.db.inTransaction) write();
    else this.db.transaction(write)();
    return {
      requestId,
      functionName: fn.name,
      statusCode: 200,
      functionError: outcome.ok ? undefined : 'Unhandled',
      payload: outcome.ok ? outcome.payload : outcome.error,
      durationMs,
      billedDurationMs,
      initDurationMs,
      maxMemoryUsedMb: outcome.maxMemoryMb,
      logTail: logs.map((l) => formatLogEvent({ timestamp: l.ts, level: l.level, message: l.message, requestId })),
    };
  }

  private kick(): void {
    if (this.draining || !this.running) return;
    this.draining = this.drainAsync().finally(() => (this.draining = undefined));
  }

  private async drainAsync(): Promise<void> {
    const due = this.db
      .prepare('SELECT id, function_name, request_id, event, attempts FROM lambda_async_events WHERE next_attempt_at <= ? ORDER BY id LIMIT 100')
      .all(this.clock()) as Array<{ id: number; function_name: string; request_id: string; event: string; attempts: number }>;
    for (const job of due) {
      if (!this.running) return;
      // Claim it: push its next attempt past the timeout so the next drain does not pick it up again meanwhile.
      const fn = this.get(job.function_name);
      this.db.prepare('UPDATE lambda_async_events SET next_attempt_at = ? WHERE id = ?').run(this.clock() + ((fn?.timeoutSeconds ?? 900) + 60) * 1000, job.id);
      const run = this.runAsync(job, fn).finally(() => this.inflightAsync.delete(run));
      this.inflightAsync.add(run);
      while (this.inflightAsync.size >= this.opts.maxConcurrency) await Promise.race(this.inflightAsync);
    }
  }

  private async runAsync(job: { id: number; function_name: string; request_id: string; event: string; attempts: number }, fn: DeployedFunction | undefined): Promise<void> {
    const event = JSON.parse(job.event) as unknown;
    const attempts = job.attempts + 1;
    let result: InvokeResult | undefined;
    let error: ErrorPayload | undefined;
    if (!fn) error = { errorType: 'ResourceNotFoundException', errorMessage: `Function not found: ${functionArn(this.region, job.function_name)}`, trace: [] };
    else {
      try {
        result = await this.invoke(job.function_name, event);
        if (result.functionError) error = result.payload as ErrorPayload;
      } catch (err) {
        error = { errorType: (err as Error).name, errorMessage: (err as Error).message, trace: [] };
      }
    }
    if (!error) {
      this.db.prepare('DELETE FROM lambda_async_events WHERE id = ?').run(job.id);
      return;
    }
    const delay = this.opts.asyncRetryDelaysMs[attempts - 1];
    if (fn && delay !== undefined) {
      this.db.prepare('UPDATE lambda_async_events SET attempts = ?, next_attempt_at = ? WHERE id = ?').run(attempts, this.clock() + delay, job.id);
      return;
    }
    // Out of retries: keep what an async on-failure destination would receive, then drop the event.
    this.db.transaction(() => {
      this.recordFailure(job.function_name, 'async-on-failure', {
        version: '1.0',
        timestamp: new Date(this.clock()).toISOString(),
        requestContext: { requestId: job.request_id, functionArn: functionArn(this.region, job.function_name), condition: fn ? 'RetriesExhausted' : 'ResourceNotFound', approximateInvokeCount: attempts },
        requestPayload: event,
        responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
        responsePayload: error,
      });
      this.db.prepare('DELETE FROM lambda_async_events WHERE id = ?').run(job.id);
    })();
  }
}

export { formatLogEvent };

/**
 * The function's variables over the platform's: an empty value in the function's environment means "the target
 * provides it" (templates declare DATABASE_URL: ""), so the platform's value stays.
 */
function withInjected(own: Record<string, string>, base: Record<string, string>): Record<string, string> {
  const out = { ...base };
  for (const [k, v] of Object.entries(own)) if (v !== '' || out[k] === undefined) out[k] = v;
  return out;
}

function logStreamName(now: number): string {
  const d = new Date(now).toISOString().slice(0, 10).replace(/-/g, '/');
  return `${d}/[$LATEST]${randomUUID().replace(/-/g, '')}`;
}

function validateDefinition(def: FunctionDefinition): void {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(def.name)) throw new Error(`"${def.name}" is not a valid function name (letters, digits, _ and -; 1-64 characters)`);
  if (!Number.isInteger(def.timeoutSeconds) || def.timeoutSeconds < 1 || def.timeoutSeconds > 900) throw new Error(`function "${def.name}": timeoutSeconds must be 1 to 900`);
  if (!Number.isInteger(def.memoryMb) || def.memoryMb < 128 || def.memoryMb > 10240) throw new Error(`function "${def.name}": memoryMb must be 128 to 10240`);
  if (!/^[A-Za-z_$][\w$]*$/.test(def.handler)) throw new Error(`function "${def.name}": handler "${def.handler}" is not an export name`);
}

// ---- desired vs actual, for `iotctl apply` (pure) ----

/** The function settings that deploy manages, as plan Resources (code changes are tracked by sha256 separately). */
export function functionResourceConfig(f: Pick<FunctionSpec, 'template' | 'timeoutSeconds' | 'memoryMb' | 'environment' | 'eventSource'>): Record<string, unknown> {
  return { template: f.template, timeoutSeconds: f.timeoutSeconds, memoryMb: f.memoryMb, environment: f.environment, eventSource: f.eventSource ?? null };
}

export function desiredFunctionResources(spec: { functions: (Omit<Spec['functions'][number], 'runtime'> & { runtime?: string })[] }): Resource[] {
  return spec.functions.map((f) => ({ kind: 'function', name: f.name, config: functionResourceConfig(f) }));
}

export function actualFunctionResources(deployed: DeployedFunction[]): Resource[] {
  return deployed.map((f) => ({ kind: 'function', name: f.name, config: functionResourceConfig(f) }));
}

// The deployment's resolution is target-neutral (services/deployment.ts); re-exported for the local code and tests.
export { DeploymentError, resolveDeployment, type TemplateDefaults } from '../../services/deployment.js';

/**
 * Copies a freshly bundled artifact to a content-addressed place, <functionsDir>/<name>/<sha256[0:16]>/index.js,
 * so a redeploy never rewrites a file a running environment may still load; keeps the previous version too.
 */
export function installArtifact(functionsDir: string, name: string, built: { artifactPath: string; sha256: string }, keep: string[] = []): string {
  const root = join(functionsDir, name);
  const dir = join(root, built.sha256.slice(0, 16));
  const target = join(dir, 'index.js');
  mkdirSync(dir, { recursive: true });
  if (built.artifactPath !== target) {
    // The bundle may sit on another filesystem (a temp dir): copy beside the target, then rename atomically.
    const partial = `${target}.${process.pid}.partial`;
    copyFileSync(built.artifactPath, partial);
    renameSync(partial, target);
  }
  const keepDirs = new Set([dir, ...keep.map((p) => join(p, '..'))]);
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    if (e.isDirectory() && !keepDirs.has(p) && /^[0-9a-f]{16}$/.test(e.name)) rmSync(p, { recursive: true, force: true });
  }
  return target;
}
