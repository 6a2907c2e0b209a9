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

/**
 * Bounds a log fed by remote peers: at most `burst` lines per key (a reason, never a peer-chosen value) in each
 * window; the rest are counted and summed up in one line when the window ends.
 */
export class LogThrottle {
  private readonly windows = new Map<string, { start: number; logged: number; suppressed: number }>();
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly write: (line: string) => void, private readonly burst = 5, private readonly windowMs = 10_000, private readonly now = Date.now) {
    this.timer = setInterval(() => this.flush(), windowMs);
    this.timer.unref();
  }
  log(key: string, line: string): void {
    const t = this.now();
    let w = this.windows.get(key);
    if (w && t - w.start >= this.windowMs) {
      this.summarise(key, w);
      w = undefined;
    }
    if (!w) this.windows.set(key, (w = { start: t, logged: 0, suppressed: 0 }));
    if (w.logged < this.burst) {
      w.logged++;
      this.write(line);
    } else w.suppressed++;
  }
  /** Ends the windows that are over (all of them with `all`), writing their summaries. */
  flush(all = false): void {
    const t = this.now();
    for (const [key, w] of this.windows) if (all || t - w.start >= this.windowMs) this.summarise(key, w);
  }
  stop(): void {
    clearInterval(this.timer);
    this.flush(true);
  }
  private summarise(key: string, w: { start: number; suppressed: number }): void {
    this.windows.delete(key);
    if (w.suppressed) this.write(`${w.suppressed} more "${key}" line(s) suppressed in the last ${Math.round((this.now() - w.start) / 1000)} s`);
  }
}

/** At most one event per key per interval (AWS IoT: 1 CONNECT per second per client id); memory bounded by pruning. */
export class KeyedInterval {
  private readonly last = new Map<string, number>();
  constructor(private readonly intervalMs: number, private readonly maxKeys = 10_000) {}
  /** True, and the key's interval starts again, when the key's last event is at least an interval ago. */
  take(key: string, now = Date.now()): boolean {
    const prev = this.last.get(key);
    if (prev !== undefined && now - prev < this.intervalMs) return false;
    this.last.delete(key); // re-inserted last: the map stays ordered by time, so pruning stops at the first recent key
    this.last.set(key, now);
    if (this.last.size > this.maxKeys) {
      for (const [k, t] of this.last) {
        if (now - t < this.intervalMs) break;
        this.last.delete(k);
      }
    }
    return true;
  }
}
