import { fireTimesBetween, parseSchedule } from '../../../iot/pipeline/schedule.js';
import { UserError } from '../../../ui/errors.js';

/**
 * A dataset's SQL as Athena runs it on the datalake engine, pure.
 *
 * IoT Analytics narrows a `deltaTime` dataset to the rows whose `timeExpression` falls in the window since
 * its previous run. An EventBridge schedule starts a static query, with no memory of the previous run, so
 * here the window is the schedule's period ending at the run time (both shifted by `offsetSeconds`):
 *
 *   [now - period + offset, now + offset)
 *
 * which equals IoT Analytics' window for every run that follows an on-time run. Each datastore the SQL
 * reads is shadowed by a CTE of the same name that filters it, and prunes its `dt` partitions (the ingest
 * day, one day of margin for device clocks ahead of the cloud). Athena (Trino) resolves an unqualified table
 * name to a WITH query first and a qualified one to the catalog, so the CTE reads the real table.
 */

export interface DeltaTime {
  offsetSeconds: number;
  timeExpression: string;
}

/** A schedule's longest gap between runs in seconds, and whether every gap is that long (rate(), cron(0 2 * * ? *)). */
export function schedulePeriod(expression: string, now = Date.now()): { seconds: number; even: boolean } {
  const schedule = parseSchedule(expression);
  if (schedule.kind === 'rate') return { seconds: schedule.periodMs / 1000, even: true };
  // A year of fire times (at most 1,000): cron(0 2 * * ? *) has one gap, cron(0 2 ? * MON-FRI *) two.
  const times = fireTimesBetween(schedule, now, now + 366 * 86_400_000, 0, 1000);
  if (times.length < 2) return { seconds: 366 * 86_400, even: false };
  const gaps = new Set(times.slice(1).map((t, i) => t - times[i]!));
  return { seconds: Math.max(...gaps) / 1000, even: gaps.size === 1 };
}

/**
 * The datastore tables the SQL mentions as identifiers, outside strings and comments: `unqualified` as
 * `telemetry`, `qualified` as `<database>.telemetry` (which a CTE cannot shadow).
 */
export function referencedTables(sql: string, tables: readonly string[]): { unqualified: string[]; qualified: string[] } {
  const wanted = new Set(tables.map((t) => t.toLowerCase()));
  const unqualified = new Set<string>();
  const qualified = new Set<string>();
  const token = /'(?:[^']|'')*'|--[^\n]*|\/\*[\s\S]*?\*\/|"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_]*)|(\.)|\S/g;
  let afterDot = false;
  for (const m of sql.matchAll(token)) {
    if (m[0].startsWith('--') || m[0].startsWith('/*')) continue;
    const ident = (m[1]?.replace(/""/g, '"') ?? m[2])?.toLowerCase();
    if (ident && wanted.has(ident)) (afterDot ? qualified : unqualified).add(ident);
    afterDot = m[3] !== undefined;
  }
  const inOrder = (found: Set<string>) => tables.filter((t) => found.has(t.toLowerCase()));
  return { unqualified: inOrder(unqualified), qualified: inOrder(qualified) };
}

const quote = (ident: string) => `"${ident.replace(/"/g, '""')}"`;

/** The SQL with each datastore it reads narrowed to the delta window (unchanged without deltaTime). */
export function windowedDatasetSql(sql: string, opts: { database: string; tables: readonly string[]; deltaTime?: DeltaTime; periodSeconds?: number }): string {
  const body = sql.trim().replace(/;\s*$/, '');
  if (!opts.deltaTime || !opts.periodSeconds) return body;
  const { unqualified: read, qualified } = referencedTables(body, opts.tables);
  if (qualified.length)
    throw new UserError(
      `A deltaTime dataset names ${qualified.map((t) => `<database>.${t}`).join(', ')} with its database: the delta window cannot narrow a qualified table.`,
      `Write ${qualified.join(', ')} without the database (the dataset runs in ${opts.database}).`,
      'SPEC_INVALID',
    );
  if (!read.length) return body;
  const { offsetSeconds, timeExpression } = opts.deltaTime;
  const at = (seconds: number) => (seconds ? `date_add('second', ${seconds}, current_timestamp)` : 'current_timestamp');
  const start = at(offsetSeconds - opts.periodSeconds);
  const end = at(offsetSeconds);
  const firstDay = `date_format(${at(offsetSeconds - opts.periodSeconds - 86_400)}, '%Y-%m-%d')`;
  const ctes = read.map(
    (t) => `${quote(t)} AS (SELECT * FROM ${quote(opts.database)}.${quote(t)} WHERE dt >= ${firstDay} AND (${timeExpression}) >= ${start} AND (${timeExpression}) < ${end})`,
  );
  // The user's own WITH list follows ours: `WITH [RECURSIVE] ours, theirs SELECT ...`.
  const own = /^with(\s+recursive)?\s+/i.exec(body);
  if (own) return `WITH${own[1] ? ' RECURSIVE' : ''} ${ctes.join(', ')}, ${body.slice(own[0].length)}`;
  return `WITH ${ctes.join(', ')}\n${body}`;
}

/** Why a deltaTime dataset cannot be windowed on AWS, or undefined. */
export function datasetWindowProblem(d: { deltaTime?: DeltaTime; schedule?: string }): string | undefined {
  if (!d.deltaTime) return undefined;
  if (!d.schedule) return 'deltaTime needs a schedule on the aws target (the window is the time since the previous scheduled run)';
  if (!schedulePeriod(d.schedule).even) return `deltaTime needs a schedule with a fixed period, and ${d.schedule} fires at uneven intervals`;
  return undefined;
}

