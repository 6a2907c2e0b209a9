/** A counter with a per-reason breakdown, as `local status --json` reports it. */
export interface ReasonCounter {
  total: number;
  byReason: Record<string, number>;
}

export const newCounter = (): ReasonCounter => ({ total: 0, byReason: {} });

export function count(counter: ReasonCounter, reason: string, n = 1): void {
  counter.total += n;
  counter.byReason[reason] = (counter.byReason[reason] ?? 0) + n;
}

/** Messages per second over a sliding window, for the live view. */
export class RateMeter {
  private buckets: number[] = [];
  private current = 0;
  private timer: NodeJS.Timeout;
  constructor(private readonly windowSeconds = 5) {
    this.timer = setInterval(() => {
      this.buckets.push(this.current);
      this.current = 0;
      if (this.buckets.length > this.windowSeconds) this.buckets.shift();
    }, 1000);
    this.timer.unref();
  }
  mark(n = 1): void {
    this.current += n;
  }
  perSecond(): number {
    return this.buckets.length ? this.buckets.reduce((a, b) => a + b, 0) / this.buckets.length : 0;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}
