import { join } from 'node:path';

/**
 * Where the lake keeps its files under the state directory:
 *   lake/raw/<channel>/dt=YYYY-MM-DD/seg-<seq>.ndjson     raw channel messages, as received
 *   lake/datastore/<name>/dt=YYYY-MM-DD/part-*.parquet    datastore rows (or part-*.json)
 *   lake/datasets/<name>/<version>/content.csv            dataset content versions
 *   lake/tmp/                                             staging files, never read by queries
 *   lake/scratch/                                         per-process DuckDB files of queries (profile, spill)
 */
export class LakePaths {
  readonly root: string;
  constructor(stateDir: string) {
    this.root = join(stateDir, 'lake');
  }
  get tmp(): string {
    return join(this.root, 'tmp');
  }
  /** Per-process files of a query catalog; apart from the datastore writer's tmp/, which recovery empties. */
  get scratch(): string {
    return join(this.root, 'scratch');
  }
  /** The folders that hold the lake's tables: what a query may read. */
  get tableFolders(): string[] {
    return [join(this.root, 'raw'), join(this.root, 'datastore')];
  }
  get lockFile(): string {
    return join(this.root, 'writer.lock');
  }
  channel(name: string): string {
    return join(this.root, 'raw', name);
  }
  channelDay(name: string, day: string): string {
    return join(this.channel(name), `dt=${day}`);
  }
  datastore(name: string): string {
    return join(this.root, 'datastore', name);
  }
  datastoreDay(name: string, day: string): string {
    return join(this.datastore(name), `dt=${day}`);
  }
  dataset(name: string): string {
    return join(this.root, 'datasets', name);
  }
  datasetVersion(name: string, version: string): string {
    return join(this.dataset(name), version);
  }
}

const DAY_MS = 86_400_000;

/** The UTC day ('YYYY-MM-DD') of a time in ms. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Start of the UTC day of `ms`. */
export function dayStart(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/**
 * utcDay() for a stream of mostly increasing times: remembers the current day's bounds so the common
 * case is two comparisons instead of formatting a date per message.
 */
export class DayCache {
  private start = 0;
  private end = -1;
  private day = '';
  of(ms: number): string {
    if (ms >= this.start && ms < this.end) return this.day;
    this.start = dayStart(ms);
    this.end = this.start + DAY_MS;
    this.day = utcDay(ms);
    return this.day;
  }
}

export { DAY_MS };
