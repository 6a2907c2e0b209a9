import { setTimeout as sleep } from 'node:timers/promises';
import { isAwsError } from './sdk.js';

/**
 * Client-side pacing for AWS control-plane APIs whose quotas are per account and per API (AWS IoT: the
 * account's applied values come from Service Quotas, quotas.ts; the documented defaults are below).
 *
 * Each API gets a pacer with no burst (calls spaced 1/rate apart), so a bulk run stays under the
 * quota instead of bursting into it. A throttle halves that API's rate and pushes its next slot out;
 * each success earns a little of it back (AIMD), so a quota lower than configured (another client
 * sharing the account) is found and followed. Throttled calls are retried, never failed.
 */

/**
 * AWS IoT Core's default control-plane rates (TPS) for the calls on the registration path, used when Service
 * Quotas cannot be read. CreateThing, AttachThingPrincipal and AddThingToThingGroup: 100, AttachPolicy: 15
 * (AWS General Reference, "AWS IoT Core endpoints and quotas", and ListAWSDefaultServiceQuotas for iotcore);
 * CreateCertificateFromCsr and CreateKeysAndCertificate keep the older table's 15.
 */
export const IOT_REGISTRATION_TPS: Record<string, number> = {
  CreateThing: 100,
  CreateCertificateFromCsr: 15,
  CreateKeysAndCertificate: 15,
  AttachPolicy: 15,
  AttachThingPrincipal: 100,
  AddThingToThingGroup: 100,
};

/**
 * IOTCTL_AWS_TPS: "10" sets every paced API to 10 TPS; "CreateThing=5,AttachPolicy=20" sets some.
 * Returns the defaults with those overrides applied.
 */
export function tpsFromEnv(defaults: Record<string, number>, value = process.env.IOTCTL_AWS_TPS): Record<string, number> {
  const out = { ...defaults };
  if (!value?.trim()) return out;
  for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [k, v] = part.includes('=') ? part.split('=', 2) : [undefined, part];
    const n = Number(v);
    if (!(n > 0)) continue;
    if (k) out[k.trim()] = n;
    else for (const op of Object.keys(out)) out[op] = n;
  }
  return out;
}

const THROTTLE_CODES = ['Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'SlowDown'];

export function isThrottle(error: unknown): boolean {
  if (isAwsError(error, ...THROTTLE_CODES)) return true;
  const name = (error as { name?: string } | null)?.name;
  return typeof name === 'string' && THROTTLE_CODES.includes(name);
}

interface Pacer {
  max: number;
  rate: number;
  /** When the next call is due on an even schedule (GCRA's theoretical arrival time). */
  tat: number;
  /** No call before this (a backoff after a throttle). */
  hold: number;
  /** Callers wait their turn in order. */
  queue: Promise<void>;
}

export interface RateLimiterOptions {
  /** Retries of one throttled call before giving up (each waits longer). */
  maxThrottleRetries?: number;
  now?: () => number;
}

export class ApiRateLimiter {
  private readonly pacers = new Map<string, Pacer>();
  private readonly now: () => number;
  private readonly maxRetries: number;
  /** Throttles seen, per API (for summaries and benchmarks). */
  readonly throttles = new Map<string, number>();

  constructor(tps: Record<string, number>, opts: RateLimiterOptions = {}) {
    this.now = opts.now ?? (() => performance.now());
    this.maxRetries = opts.maxThrottleRetries ?? 30;
    for (const [op, rate] of Object.entries(tps)) this.pacers.set(op, { max: rate, rate, tat: -Infinity, hold: 0, queue: Promise.resolve() });
  }

  /**
   * Waits for this API's turn. Callers go one at a time on an even schedule, 1/rate apart. A call that a
   * busy event loop sent late is made up for by the next one, but never by more than half an interval,
   * so a stall never releases a burst and the sustained rate stays at the quota.
   */
  take(op: string, signal?: AbortSignal): Promise<void> {
    const p = this.pacers.get(op);
    if (!p) return Promise.resolve();
    const turn = p.queue.then(async () => {
      const wait = Math.max(p.tat, p.hold) - this.now();
      if (wait > 0) await sleep(wait, undefined, { signal });
      const interval = 1000 / p.rate;
      const sent = this.now();
      const late = sent - p.tat;
      p.tat = (late > interval ? sent : late > interval / 2 ? sent - interval / 2 : p.tat) + interval;
    });
    p.queue = turn.catch(() => {});
    return turn;
  }

  private throttled(op: string, attempt: number): number {
    this.throttles.set(op, (this.throttles.get(op) ?? 0) + 1);
    const backoff = Math.min(10_000, 100 * 2 ** Math.min(attempt, 8)) * (0.5 + Math.random() / 2);
    const p = this.pacers.get(op);
    if (p) {
      p.rate = Math.max(p.max / 16, p.rate / 2);
      p.hold = Math.max(p.hold, this.now() + backoff);
    }
    return backoff;
  }

  private succeeded(op: string): void {
    const p = this.pacers.get(op);
    if (p && p.rate < p.max) p.rate = Math.min(p.max, p.rate + p.max / 50);
  }

  /** New rates (the account's quotas, once read): each API's pace restarts at its new maximum. */
  setRates(tps: Record<string, number>): void {
    for (const [op, rate] of Object.entries(tps)) {
      const p = this.pacers.get(op);
      if (p) Object.assign(p, { max: rate, rate });
      else this.pacers.set(op, { max: rate, rate, tat: -Infinity, hold: 0, queue: Promise.resolve() });
    }
  }

  /** Runs one call in its API's pace, retrying it whenever AWS throttles it. */
  async call<T>(op: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      await this.take(op, signal);
      try {
        const out = await fn();
        this.succeeded(op);
        return out;
      } catch (error) {
        if (!isThrottle(error) || attempt >= this.maxRetries) throw error;
        const backoff = this.throttled(op, attempt);
        // Paced APIs wait in take(); others wait here.
        if (!this.pacers.has(op)) await sleep(backoff, undefined, { signal });
      }
    }
  }
}
