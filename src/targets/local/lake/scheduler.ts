import { fireTimesBetween, nextFireTime, parseSchedule, type Schedule } from '../../../iot/pipeline/schedule.js';
import type { Db } from '../store.js';
import { readLakeConfig } from './config.js';
import { ensureLakeTables } from './tables.js';

/** Time and timers, injected so tests can drive the scheduler. */
export interface SchedulerClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface SchedulerOptions {
  db: Db;
  /** Creates the dataset's content for a scheduled time. */
  run: (dataset: string, scheduledFor: number) => Promise<unknown>;
  clock?: SchedulerClock;
  /** A fire time this late is recorded as missed instead of run (the daemon was down, or asleep). */
  graceMs?: number;
  /** Re-check at least this often, to pick up configuration changes. */
  maxSleepMs?: number;
  log?: (message: string) => void;
}

export interface TickResult {
  ran: { dataset: string; scheduledFor: number }[];
  missed: { dataset: string; scheduledFor: number }[];
}

/** How many missed fire times are kept per dataset (the total is counted regardless). */
const MISSED_KEPT = 100;

/**
 * Runs scheduled datasets while the daemon is up. Each dataset remembers (in SQLite) up to when its
 * schedule was checked; a tick looks at the fire times since then: one within `graceMs` of now runs
 * (several at once run once, for the latest), older ones are recorded as missed, as happens when the
 * daemon was not running at the scheduled time. Missed runs are not replayed; a deltaTime dataset's
 * next window starts where its last successful one ended, so its data is still covered.
 */
export class DatasetScheduler {
  private readonly db: Db;
  private readonly clock: SchedulerClock;
  private readonly graceMs: number;
  private readonly maxSleepMs: number;
  private readonly log: (message: string) => void;
  private timer: unknown;
  private running = false;
  private ticking: Promise<TickResult> | undefined;

  constructor(private readonly opts: SchedulerOptions) {
    this.db = opts.db;
    this.clock = opts.clock ?? systemClock;
    this.graceMs = opts.graceMs ?? 60_000;
    this.maxSleepMs = opts.maxSleepMs ?? 60_000;
    this.log = opts.log ?? (() => undefined);
    ensureLakeTables(this.db);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.ticking;
  }

  /** Wake up now (the configuration changed). */
  reload(): void {
    if (!this.running) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    void this.loop();
  }

  /** Runs what is due at clock.now() and records what was missed. */
  async tick(): Promise<TickResult> {
    while (this.ticking) await this.ticking;
    this.ticking = this.tickNow();
    try {
      return await this.ticking;
    } finally {
      this.ticking = undefined;
    }
  }

  /** The next time each scheduled dataset fires. */
  nextRuns(): Map<string, number | undefined> {
    const out = new Map<string, number | undefined>();
    for (const [name, d] of readLakeConfig(this.db).datasets) {
      if (!d.schedule) continue;
      const state = this.state(name, d.schedule, d.appliedAt, this.clock.now());
      out.set(name, nextFireTime(parseSchedule(d.schedule), state.lastChecked, state.anchor));
    }
    return out;
  }

  private async loop(): Promise<void> {
    if (!this.running) return;
    try {
      await this.tick();
    } catch (e) {
      this.log(`analytics: dataset scheduler: ${(e as Error).message}`);
    }
    if (!this.running) return;
    const now = this.clock.now();
    let wait = this.maxSleepMs;
    for (const next of this.nextRuns().values()) if (next !== undefined) wait = Math.min(wait, Math.max(0, next - now));
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.loop();
    }, wait);
  }

  private async tickNow(): Promise<TickResult> {
    const result: TickResult = { ran: [], missed: [] };
    const now = this.clock.now();
    for (const [name, d] of readLakeConfig(this.db).datasets) {
      if (!d.schedule) continue;
      let schedule: Schedule;
      try {
        schedule = parseSchedule(d.schedule);
      } catch (e) {
        this.log(`analytics: dataset ${name} has an invalid schedule: ${(e as Error).message}`);
        continue;
      }
      const state = this.state(name, d.schedule, d.appliedAt, now);
      const due = fireTimesBetween(schedule, state.lastChecked, now, state.anchor, 100_000);
      const late = due.filter((t) => now - t > this.graceMs);
      const onTime = due.filter((t) => now - t <= this.graceMs);
      this.db.transaction(() => {
        const insert = this.db.prepare(`INSERT OR IGNORE INTO lake_dataset_missed (dataset, scheduled_for, detected_at) VALUES (?, ?, ?)`);
        for (const t of late.slice(-MISSED_KEPT)) insert.run(name, t, now);
        this.db
          .prepare(
            `DELETE FROM lake_dataset_missed WHERE dataset = ? AND scheduled_for NOT IN (SELECT scheduled_for FROM lake_dataset_missed WHERE dataset = ? ORDER BY scheduled_for DESC LIMIT ${MISSED_KEPT})`,
          )
          .run(name, name);
        this.db
          .prepare(`UPDATE lake_dataset_schedules SET last_checked = ?, missed_total = missed_total + ?, last_fire = coalesce(?, last_fire) WHERE dataset = ?`)
          .run(now, late.length, onTime.length ? onTime[onTime.length - 1]! : null, name);
      })();
      for (const t of late) result.missed.push({ dataset: name, scheduledFor: t });
      if (late.length) this.log(`analytics: dataset ${name} missed ${late.length} scheduled run(s) (the platform was not running)`);
      if (onTime.length) {
        const scheduledFor = onTime[onTime.length - 1]!;
        try {
          await this.opts.run(name, scheduledFor);
        } catch (e) {
          this.log(`analytics: dataset ${name} failed: ${(e as Error).message}`);
        }
        result.ran.push({ dataset: name, scheduledFor });
      }
    }
    return result;
  }

  /** The dataset's schedule state; a new or changed schedule starts counting from now. */
  private state(name: string, schedule: string, appliedAt: number, now: number): { anchor: number; lastChecked: number } {
    const row = this.db.prepare(`SELECT schedule, anchor, last_checked AS lastChecked FROM lake_dataset_schedules WHERE dataset = ?`).get(name) as
      | { schedule: string; anchor: number; lastChecked: number }
      | undefined;
    if (row && row.schedule === schedule) return row;
    const anchor = row ? now : Math.min(appliedAt, now);
    initDatasetSchedule(this.db, name, schedule, anchor, anchor);
    return { anchor, lastChecked: anchor };
  }
}

/** Starts a dataset's schedule at `anchor` (rate schedules count their periods from it). */
export function initDatasetSchedule(db: Db, dataset: string, schedule: string, anchor: number, lastChecked: number): void {
  ensureLakeTables(db);
  db.prepare(
    `INSERT INTO lake_dataset_schedules (dataset, schedule, anchor, last_checked) VALUES (?, ?, ?, ?)
     ON CONFLICT (dataset) DO UPDATE SET schedule = excluded.schedule, anchor = excluded.anchor, last_checked = excluded.last_checked`,
  ).run(dataset, schedule, anchor, lastChecked);
}
