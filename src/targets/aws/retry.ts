import { AwsCallError, isAwsError, type ServiceName } from './sdk.js';

/**
 * The one way the aws adapters wait: `retryWhen` retries a call while AWS answers with an error that says
 * "not yet" (IAM propagation, a resource still being created or updated), `waitUntil` polls a Describe call
 * until a resource is in the state wanted. Both are bounded (a total budget), back off with jitter, stop at
 * once on Ctrl-C, and end in an AwsCallError that names the service, the operation and what was awaited.
 * (The SDK's own retries already cover throttling and 5xx per call; these cover AWS's eventual consistency.)
 */

export interface WaitOptions {
  /** The call waited on, for messages: `lambda` / `CreateEventSourceMapping`. */
  service: ServiceName;
  operation: string;
  /** What is awaited, in words: `the role iotctl-x to reach Lambda`. */
  what: string;
  signal?: AbortSignal;
  /** Total budget in ms (default IOTCTL_AWS_WAIT_SECONDS, else 120 s). */
  timeoutMs?: number;
  /** First delay (default 500 ms), doubled up to maxDelayMs (default 5 s), each with ±25 % jitter. */
  delayMs?: number;
  maxDelayMs?: number;
  /** What to do when the budget is spent. */
  hint?: string;
  /** Tests: a clock and a sleep. */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** The default budget: IOTCTL_AWS_WAIT_SECONDS (tests shorten it), else two minutes. */
export function defaultWaitMs(): number {
  const s = Number(process.env.IOTCTL_AWS_WAIT_SECONDS);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 120_000;
}

/** Rejects with AWS's cancellation (AwsCallError `Cancelled`) when the signal fires. */
export function abortableSleep(ms: number, signal: AbortSignal | undefined, service: ServiceName = 'sts', operation = 'wait'): Promise<void> {
  const cancelled = () => new AwsCallError(`Cancelled during ${operation}.`, undefined, 'Cancelled', operation, service, signal?.reason);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelled());
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The delays between attempts: doubling from delayMs to maxDelayMs, jittered, never past the deadline. */
function delays(o: WaitOptions) {
  const now = o.now ?? (() => performance.now());
  const started = now();
  const budget = o.timeoutMs ?? defaultWaitMs();
  let delay = o.delayMs ?? 500;
  return {
    elapsedS: () => Math.round((now() - started) / 100) / 10,
    /** The next wait, or undefined when it would end past the budget. */
    next(): number | undefined {
      const wait = Math.round(delay * (0.75 + Math.random() / 2));
      delay = Math.min(delay * 2, o.maxDelayMs ?? 5_000);
      return now() - started + wait > budget ? undefined : wait;
    },
  };
}

const codeOf = (e: unknown) => (e instanceof AwsCallError ? e.awsCode : ((e as { name?: string })?.name ?? 'Error'));
const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Runs `call`; while it fails with an error `retryable` accepts, waits and tries again within the budget. An
 * error `retryable` refuses is thrown as it is; the last retryable one, once the budget is spent, becomes an
 * AwsCallError (same AWS code) that says how long it waited and for what.
 */
export async function retryWhen<T>(call: () => Promise<T>, retryable: (error: unknown) => boolean, o: WaitOptions): Promise<T> {
  const d = delays(o);
  const sleep = o.sleep ?? abortableSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (isAwsError(error, 'Cancelled') || !retryable(error)) throw error;
      const wait = d.next();
      if (wait === undefined) {
        throw new AwsCallError(
          `${o.service}:${o.operation} was still refused after ${d.elapsedS()} s (${attempt} attempts) of waiting for ${o.what}: ${messageOf(error)}`,
          o.hint ?? 'AWS had not caught up yet; run the command again in a minute (what was done is kept), or raise IOTCTL_AWS_WAIT_SECONDS.',
          codeOf(error),
          o.operation,
          o.service,
          error,
        );
      }
      await sleep(wait, o.signal, o.service, o.operation);
    }
  }
}

/**
 * Polls `describe` until `ready` says so. `ready` may throw (a Failed state is an error, not a wait). Once the
 * budget is spent: an AwsCallError `WaitTimeout` that names what was awaited and the state last seen.
 */
export async function waitUntil<T>(
  describe: () => Promise<T>,
  ready: (value: T) => boolean,
  o: WaitOptions & { state: (value: T) => string; onTimeout?: (last: T, elapsedS: number) => Error },
): Promise<T> {
  const d = delays(o);
  const sleep = o.sleep ?? abortableSleep;
  for (;;) {
    const value = await describe();
    if (ready(value)) return value;
    const wait = d.next();
    if (wait === undefined) {
      if (o.onTimeout) throw o.onTimeout(value, d.elapsedS());
      throw new AwsCallError(
        `Waited ${d.elapsedS()} s for ${o.what}; it is still ${o.state(value)} (${o.service}:${o.operation}).`,
        o.hint ?? 'AWS is still working on it; run the command again in a minute (what was done is kept), or raise IOTCTL_AWS_WAIT_SECONDS.',
        'WaitTimeout',
        o.operation,
        o.service,
      );
    }
    await sleep(wait, o.signal, o.service, o.operation);
  }
}

// ------------------------------------------------------------------------------------------------ predicates

/** The message of an AWS error with one of these codes, else undefined. */
function refused(error: unknown, ...codes: string[]): string | undefined {
  return isAwsError(error, ...codes) ? error.message : undefined;
}

/**
 * A service refusing a role it cannot assume yet, or a role whose new permissions it cannot see yet: IAM is
 * eventually consistent for seconds after CreateRole / PutRolePolicy / UpdateAssumeRolePolicy. Each consuming
 * service words it its own way (the messages below are AWS's).
 */
export const rolePropagating = {
  /** CreateFunction / UpdateFunctionConfiguration (in a VPC: the role's EC2 network-interface permissions). */
  lambda: (e: unknown) =>
    /cannot be assumed by Lambda|role.*(not|isn't) (authorized|valid)|does not have permissions to call (CreateNetworkInterface|DescribeNetworkInterfaces)/i.test(refused(e, 'InvalidParameterValueException') ?? ''),
  /**
   * Create/UpdateEventSourceMapping right after the function role's policy was put: Kinesis ("Cannot access
   * stream ... ensure the role can perform"), SQS ("execution role does not have permissions to call
   * ReceiveMessage"), and a function in a VPC ("does not have permissions to call CreateNetworkInterface on EC2").
   */
  eventSourceMapping: (e: unknown) =>
    /Cannot access stream|ensure the role can perform|execution role does not have permissions to call|does not have permissions to call (CreateNetworkInterface|DescribeNetworkInterfaces)/i.test(refused(e, 'InvalidParameterValueException') ?? ''),
  /** CreateDeliveryStream / UpdateDestination. */
  firehose: (e: unknown) => /unable to assume role|is not authorized to perform|role.*(not|cannot).*(assume|access)/i.test(refused(e, 'InvalidArgumentException') ?? ''),
  /** CreateSchedule / UpdateSchedule. */
  scheduler: (e: unknown) => /execution role .*must allow .*to assume|assume the role/i.test(refused(e, 'ValidationException') ?? ''),
  /** CreateTopicRule / ReplaceTopicRule: "unable to assume role ... If the role was just created or updated". */
  iot: (e: unknown) => /unable to assume role|just created or updated/i.test(refused(e, 'InvalidRequestException') ?? ''),
  /** Create/UpdateProvisioningTemplate: "The provisioning role cannot be assumed by AWS IoT", or the rules' wording. */
  iotProvisioning: (e: unknown) => /cannot be assumed|unable to assume role|just created or updated/i.test(refused(e, 'InvalidRequestException') ?? ''),
};

/**
 * Lambda's ResourceConflictException means two things: the statement (or mapping) already exists, or another
 * operation on the function is in progress ("The operation cannot be performed at this time", "pending",
 * "update is in progress"). Only the second is worth waiting out.
 */
export function lambdaBusy(error: unknown): boolean {
  const m = refused(error, 'ResourceConflictException', 'ResourceInUseException');
  if (m === undefined) return false;
  if (isAwsError(error, 'ResourceInUseException')) return true;
  return /in progress|at this time|pending|currently in the following state|being (created|updated)/i.test(m) && !/already exists/i.test(m);
}

/** AddPermission's ResourceConflictException when the statement id is taken: the permission is there. */
export function permissionExists(error: unknown): boolean {
  return /already exists/i.test(refused(error, 'ResourceConflictException') ?? '');
}

/** Several predicates as one. */
export const anyOf =
  (...ps: ((e: unknown) => boolean)[]) =>
  (e: unknown) =>
    ps.some((p) => p(e));
