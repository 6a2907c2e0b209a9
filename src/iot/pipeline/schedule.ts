/**
 * AWS schedule expressions (IoT Analytics dataset triggers, EventBridge Scheduler), pure:
 *   rate(N minute|minutes|hour|hours|day|days)    N >= 1, singular unit exactly when N is 1
 *   cron(Minutes Hours Day-of-month Month Day-of-week Year)   in UTC
 * cron fields accept `*`, lists `,`, ranges `-` and steps `/`; month and day names (JAN-DEC, SUN-SAT,
 * Sunday is 1); one of the two day fields must be `?`; Day-of-month also accepts `L` (last day), `LW`
 * (last weekday) and `nW` (weekday nearest n); Day-of-week accepts `L` (Saturday), `nL` (last n-day of
 * the month) and `n#k` (k-th n-day of the month).
 */
export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

export type Schedule =
  | { kind: 'rate'; expression: string; periodMs: number }
  | { kind: 'cron'; expression: string; cron: CronFields };

interface CronFields {
  minutes: Set<number>;
  hours: Set<number>;
  months: Set<number>;
  years: Set<number>;
  /** Day-of-month or day-of-week test (whichever is not `?`). */
  day: (year: number, month: number, day: number) => boolean;
}

const MINUTE = 60_000;
const UNIT_MS: Record<string, number> = { minute: MINUTE, hour: 60 * MINUTE, day: 24 * 60 * MINUTE };
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
const MAX_YEAR = 2199;

export function parseSchedule(expression: string): Schedule {
  const text = expression.trim();
  const rate = /^rate\(\s*(\d+)\s+([a-z]+)\s*\)$/i.exec(text);
  if (rate) {
    const n = Number(rate[1]);
    const unit = rate[2]!.toLowerCase();
    const singular = unit.replace(/s$/, '');
    if (!UNIT_MS[singular]) throw new ScheduleError(`unknown rate unit "${rate[2]}": use minute(s), hour(s) or day(s)`);
    if (n < 1) throw new ScheduleError('a rate must be at least 1');
    if (n === 1 && unit !== singular) throw new ScheduleError(`write rate(1 ${singular}): AWS wants the singular unit for 1`);
    if (n > 1 && unit === singular) throw new ScheduleError(`write rate(${n} ${singular}s): AWS wants the plural unit above 1`);
    return { kind: 'rate', expression: text, periodMs: n * UNIT_MS[singular]! };
  }
  const cron = /^cron\((.*)\)$/i.exec(text);
  if (!cron) throw new ScheduleError(`"${expression}" is not a schedule expression: use rate(5 minutes) or cron(0 2 * * ? *)`);
  const fields = cron[1]!.trim().split(/\s+/);
  if (fields.length !== 6) throw new ScheduleError(`cron needs 6 fields (minutes hours day-of-month month day-of-week year), found ${fields.length}`);
  const [min, hour, dom, month, dow, year] = fields as [string, string, string, string, string, string];
  if ((dom === '?') === (dow === '?'))
    throw new ScheduleError('exactly one of day-of-month and day-of-week must be ?, e.g. cron(0 2 * * ? *) or cron(0 2 ? * MON-FRI *)');
  return {
    kind: 'cron',
    expression: text,
    cron: {
      minutes: parseSet(min, 0, 59, 'minutes'),
      hours: parseSet(hour, 0, 23, 'hours'),
      months: parseSet(month, 1, 12, 'month', MONTHS),
      years: parseSet(year, 1970, MAX_YEAR, 'year'),
      day: dom !== '?' ? parseDayOfMonth(dom) : parseDayOfWeek(dow),
    },
  };
}

/** The first fire time strictly after `after`. Rates count from `anchor` (when the schedule was created). */
export function nextFireTime(schedule: Schedule, after: number, anchor = 0): number | undefined {
  if (schedule.kind === 'rate') {
    if (after < anchor) return anchor;
    return anchor + (Math.floor((after - anchor) / schedule.periodMs) + 1) * schedule.periodMs;
  }
  const c = schedule.cron;
  let t = Math.floor(after / MINUTE) * MINUTE + MINUTE;
  // Each step moves to the start of the next unit that can match, so the loop is bounded by days, not minutes.
  for (let guard = 0; guard < 200_000; guard++) {
    const d = new Date(t);
    const y = d.getUTCFullYear();
    if (y > MAX_YEAR) return undefined;
    if (!c.years.has(y)) {
      const nextYear = [...c.years].filter((v) => v > y).sort((a, b) => a - b)[0];
      if (nextYear === undefined) return undefined;
      t = Date.UTC(nextYear, 0, 1);
      continue;
    }
    const m = d.getUTCMonth() + 1;
    if (!c.months.has(m)) {
      t = Date.UTC(y, m, 1); // month m (1-based) as a 0-based index is the next month
      continue;
    }
    if (!c.day(y, m, d.getUTCDate())) {
      t = Date.UTC(y, m - 1, d.getUTCDate() + 1);
      continue;
    }
    if (!c.hours.has(d.getUTCHours())) {
      t = Date.UTC(y, m - 1, d.getUTCDate(), d.getUTCHours() + 1);
      continue;
    }
    if (!c.minutes.has(d.getUTCMinutes())) {
      t += MINUTE;
      continue;
    }
    return t;
  }
  return undefined;
}

/** Fire times in (after, until], at most `limit` of them, oldest first. */
export function fireTimesBetween(schedule: Schedule, after: number, until: number, anchor = 0, limit = 1000): number[] {
  const out: number[] = [];
  let t = nextFireTime(schedule, after, anchor);
  while (t !== undefined && t <= until && out.length < limit) {
    out.push(t);
    t = nextFireTime(schedule, t, anchor);
  }
  return out;
}

function parseSet(field: string, min: number, max: number, what: string, names?: string[]): Set<number> {
  const out = new Set<number>();
  for (const part of field.split(',')) {
    const [rangeText, stepText] = part.split('/') as [string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new ScheduleError(`bad step "${stepText}" in the ${what} field`);
    let lo: number;
    let hi: number;
    if (rangeText === '*') {
      lo = min;
      hi = max;
    } else if (rangeText.includes('-')) {
      const [a, b] = rangeText.split('-') as [string, string];
      lo = value(a, min, max, what, names);
      hi = value(b, min, max, what, names);
      if (hi < lo) throw new ScheduleError(`range ${rangeText} in the ${what} field goes backwards`);
    } else {
      lo = value(rangeText, min, max, what, names);
      hi = stepText === undefined ? lo : max;
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

function value(text: string, min: number, max: number, what: string, names?: string[]): number {
  const named = names?.indexOf(text.toUpperCase()) ?? -1;
  const v = named >= 0 ? named + min : /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(v) || v < min || v > max) throw new ScheduleError(`"${text}" is not valid in the ${what} field (${min}-${max}${names ? ` or ${names[0]}-${names[names.length - 1]}` : ''})`);
  return v;
}

const daysInMonth = (y: number, m: number) => new Date(Date.UTC(y, m, 0)).getUTCDate();
const weekday = (y: number, m: number, d: number) => new Date(Date.UTC(y, m - 1, d)).getUTCDay(); // 0 = Sunday

/** The weekday (Mon-Fri) nearest day `d` within the same month. */
function nearestWeekday(y: number, m: number, d: number): number {
  const last = daysInMonth(y, m);
  const target = Math.min(d, last);
  const wd = weekday(y, m, target);
  if (wd === 6) return target === 1 ? 3 : target - 1; // Saturday -> Friday, or Monday the 3rd
  if (wd === 0) return target === last ? target - 2 : target + 1; // Sunday -> Monday, or Friday
  return target;
}

function parseDayOfMonth(field: string): CronFields['day'] {
  if (field === 'L') return (y, m, d) => d === daysInMonth(y, m);
  if (field === 'LW') return (y, m, d) => d === nearestWeekday(y, m, daysInMonth(y, m));
  const w = /^(\d+)W$/.exec(field);
  if (w) {
    const n = value(w[1]!, 1, 31, 'day-of-month');
    return (y, m, d) => d === nearestWeekday(y, m, n);
  }
  const days = parseSet(field, 1, 31, 'day-of-month');
  return (_y, _m, d) => days.has(d);
}

function parseDayOfWeek(field: string): CronFields['day'] {
  if (field === 'L') return (y, m, d) => weekday(y, m, d) === 6;
  const last = /^(\w+)L$/.exec(field);
  if (last) {
    const n = value(last[1]!, 1, 7, 'day-of-week', DAYS) - 1;
    return (y, m, d) => weekday(y, m, d) === n && d + 7 > daysInMonth(y, m);
  }
  const nth = /^(\w+)#(\d)$/.exec(field);
  if (nth) {
    const n = value(nth[1]!, 1, 7, 'day-of-week', DAYS) - 1;
    const k = Number(nth[2]);
    if (k < 1 || k > 5) throw new ScheduleError(`"${field}": the week number after # must be 1-5`);
    return (y, m, d) => weekday(y, m, d) === n && Math.ceil(d / 7) === k;
  }
  const days = parseSet(field, 1, 7, 'day-of-week', DAYS);
  return (y, m, d) => days.has(weekday(y, m, d) + 1);
}
