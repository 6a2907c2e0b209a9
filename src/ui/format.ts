import { UserError } from './errors.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** A time flag: an ISO 8601 time, epoch milliseconds, `now`, or a duration ago (30m, 2h, 7d). */
export function parseTimeFlag(value: string, flag: string, now = Date.now()): number {
  const v = value.trim();
  if (v === 'now') return now;
  const ago = /^(\d+)(s|m|h|d)$/.exec(v);
  if (ago) return now - Number(ago[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[ago[2] as 's' | 'm' | 'h' | 'd'];
  if (/^\d{11,}$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new UserError(`--${flag} "${value}" is not a time.`, `Use an ISO time (2030-01-31T12:00:00Z), epoch milliseconds, "now", or a duration ago like 2h or 7d.`);
  return t;
}

const BYTES_PER_MB = 1024 * 1024;
const BYTES_PER_TB = 1024 ** 4;

/**
 * Athena's price for the data a query scanned: $5 per TB, rounded up to the megabyte, with a 10 MB minimum
 * per query. A query that scanned nothing (DDL, a failure before reading) costs nothing.
 */
export function athenaCostUsd(bytesScanned: number, usdPerTb = 5): number {
  if (!(bytesScanned > 0)) return 0;
  const billed = Math.max(Math.ceil(bytesScanned / BYTES_PER_MB), 10) * BYTES_PER_MB;
  return (billed / BYTES_PER_TB) * usdPerTb;
}
