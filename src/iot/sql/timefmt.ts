// Date/time patterns for parse_time() (Joda-Time DateTimeFormat letters) and time_to_epoch()
// (java.time DateTimeFormatter letters), over IANA time zones via Intl. Only the common pattern
// letters are implemented; an unsupported letter makes the function return Undefined rather
// than a wrong string.

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

// ------------------------------------------------------------------------------------------------
// Time zones

export interface Zone {
  readonly id: string;
  /** Offset from UTC in ms at the given instant. */
  offsetAt(utcMs: number): number;
  shortName(utcMs: number): string;
  longName(utcMs: number): string;
}

const zoneCache = new Map<string, Zone | null>();

const FIXED_OFFSET = /^(?:UTC|GMT|UT)?([+-])(\d{1,2})(?::?(\d{2}))?$/;

/** Resolves a zone id such as 'UTC', 'America/Belize', '+05:30' or 'UTC+01:00'; undefined if unknown. */
export function resolveZone(id: string): Zone | undefined {
  const cached = zoneCache.get(id);
  if (cached !== undefined) return cached ?? undefined;
  const zone = buildZone(id);
  if (zoneCache.size > 500) zoneCache.clear();
  zoneCache.set(id, zone ?? null);
  return zone;
}

function buildZone(id: string): Zone | undefined {
  const upper = id.toUpperCase();
  if (upper === 'UTC' || upper === 'GMT' || upper === 'Z' || upper === 'UT' || upper === 'UCT') {
    return fixedZone(id === 'Z' ? 'Z' : upper, 0, upper === 'GMT' ? 'GMT' : 'UTC', upper === 'GMT' ? 'Greenwich Mean Time' : 'Coordinated Universal Time');
  }
  const m = FIXED_OFFSET.exec(id);
  if (m) {
    const hours = Number(m[2]);
    const minutes = Number(m[3] ?? 0);
    if (hours > 18 || minutes > 59) return undefined;
    const ms = (m[1] === '-' ? -1 : 1) * (hours * 60 + minutes) * 60_000;
    const text = formatOffset(ms, true);
    return fixedZone(id, ms, text, text);
  }
  const abbreviation = ABBREVIATIONS[upper];
  if (abbreviation) return resolveZone(abbreviation);
  let wall: Intl.DateTimeFormat;
  try {
    wall = new Intl.DateTimeFormat('en-US', {
      timeZone: id, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
  } catch {
    return undefined;
  }
  const names = new Map<string, Intl.DateTimeFormat>();
  const name = (locale: string, style: 'short' | 'long', utcMs: number): string => {
    const key = `${locale}/${style}`;
    let f = names.get(key);
    if (!f) names.set(key, (f = new Intl.DateTimeFormat(locale, { timeZone: id, timeZoneName: style })));
    return f.formatToParts(utcMs).find((p) => p.type === 'timeZoneName')?.value ?? id;
  };
  return {
    id,
    offsetAt(utcMs) {
      const p: Record<string, number> = {};
      for (const part of wall.formatToParts(utcMs)) if (part.type !== 'literal') p[part.type] = Number(part.value);
      const asUtc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
      return asUtc - (utcMs - mod(utcMs, 1000));
    },
    shortName(utcMs) {
      // en-US knows the North American abbreviations, en-GB the European ones (CET, BST...).
      const us = name('en-US', 'short', utcMs);
      if (!us.startsWith('GMT') || us === 'GMT') return us;
      return name('en-GB', 'short', utcMs);
    },
    longName(utcMs) {
      return name('en-US', 'long', utcMs);
    },
  };
}

/** Abbreviations java.time accepts for `z`; only unambiguous, common ones. */
const ABBREVIATIONS: Readonly<Record<string, string>> = {
  EST: 'America/New_York', EDT: 'America/New_York', CST: 'America/Chicago', CDT: 'America/Chicago',
  MST: 'America/Denver', MDT: 'America/Denver', PST: 'America/Los_Angeles', PDT: 'America/Los_Angeles',
  AKST: 'America/Anchorage', AKDT: 'America/Anchorage', HST: 'Pacific/Honolulu',
  CET: 'Europe/Paris', CEST: 'Europe/Paris', BST: 'Europe/London', JST: 'Asia/Tokyo',
};

function fixedZone(id: string, ms: number, short: string, long: string): Zone {
  return { id, offsetAt: () => ms, shortName: () => short, longName: () => long };
}

function formatOffset(ms: number, colon: boolean): string {
  const sign = ms < 0 ? '-' : '+';
  const abs = Math.abs(ms) / 60_000;
  return `${sign}${pad(Math.floor(abs / 60), 2)}${colon ? ':' : ''}${pad(abs % 60, 2)}`;
}

/** Epoch ms of a wall-clock time in `zone` (earlier offset wins in overlaps, like java.time). */
function wallToUtc(wallMs: number, zone: Zone): number {
  const guess = wallMs - zone.offsetAt(wallMs);
  const corrected = wallMs - zone.offsetAt(guess);
  return zone.offsetAt(corrected) === wallMs - corrected ? corrected : guess;
}

// ------------------------------------------------------------------------------------------------
// Pattern tokens (shared by both syntaxes: runs of a letter, quoted text, other literal chars)

type PatternToken = { readonly letter: string; readonly count: number } | { readonly literal: string };

function tokenize(pattern: string): PatternToken[] {
  const out: PatternToken[] = [];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === "'") {
      if (pattern[i + 1] === "'") {
        out.push({ literal: "'" });
        i += 2;
        continue;
      }
      let text = '';
      i++;
      while (i < pattern.length) {
        if (pattern[i] === "'") {
          if (pattern[i + 1] === "'") {
            text += "'";
            i += 2;
            continue;
          }
          break;
        }
        text += pattern[i++];
      }
      i++; // closing quote (an unterminated quote runs to the end, as in Joda)
      out.push({ literal: text });
    } else if (/[A-Za-z]/.test(c)) {
      let j = i;
      while (pattern[j] === c) j++;
      out.push({ letter: c, count: j - i });
      i = j;
    } else {
      out.push({ literal: c });
      i++;
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// parse_time(): format epoch ms with a Joda-Time pattern

/** Formats `epochMs` in `zoneId` with a Joda pattern; undefined for unknown zones or pattern letters. */
export function formatJoda(pattern: string, epochMs: number, zoneId: string): string | undefined {
  const zone = resolveZone(zoneId);
  if (!zone || !Number.isFinite(epochMs)) return undefined;
  const offset = zone.offsetAt(epochMs);
  const t = new Date(epochMs + offset); // read with getUTC*: the wall clock in `zone`
  const year = t.getUTCFullYear();
  const dayOfWeek = ((t.getUTCDay() + 6) % 7) + 1; // ISO: Monday = 1
  let out = '';
  for (const tok of tokenize(pattern)) {
    if ('literal' in tok) {
      out += tok.literal;
      continue;
    }
    const n = tok.count;
    switch (tok.letter) {
      case 'G':
        out += year > 0 ? 'AD' : 'BC';
        break;
      case 'C':
        out += pad(Math.floor(Math.abs(year) / 100), n);
        break;
      case 'y':
      case 'Y': {
        const y = tok.letter === 'Y' ? Math.abs(year) : year;
        out += n === 2 ? pad(mod(y, 100), 2) : pad(y, n);
        break;
      }
      case 'x': {
        const wy = isoWeek(t).year;
        out += n === 2 ? pad(mod(wy, 100), 2) : pad(wy, n);
        break;
      }
      case 'w':
        out += pad(isoWeek(t).week, n);
        break;
      case 'e':
        out += pad(dayOfWeek, n);
        break;
      case 'E':
        out += n >= 4 ? WEEKDAYS[dayOfWeek - 1] : WEEKDAYS[dayOfWeek - 1]!.slice(0, 3);
        break;
      case 'D':
        out += pad(dayOfYear(t), n);
        break;
      case 'M':
        out += n >= 4 ? MONTHS[t.getUTCMonth()] : n === 3 ? MONTHS[t.getUTCMonth()]!.slice(0, 3) : pad(t.getUTCMonth() + 1, n);
        break;
      case 'd':
        out += pad(t.getUTCDate(), n);
        break;
      case 'a':
        out += t.getUTCHours() < 12 ? 'AM' : 'PM';
        break;
      case 'K':
        out += pad(t.getUTCHours() % 12, n);
        break;
      case 'h':
        out += pad(t.getUTCHours() % 12 || 12, n);
        break;
      case 'H':
        out += pad(t.getUTCHours(), n);
        break;
      case 'k':
        out += pad(t.getUTCHours() || 24, n);
        break;
      case 'm':
        out += pad(t.getUTCMinutes(), n);
        break;
      case 's':
        out += pad(t.getUTCSeconds(), n);
        break;
      case 'S':
        // Fraction of second: the first n digits of the milliseconds (zero-filled past 3).
        out += pad(t.getUTCMilliseconds(), 3).padEnd(n, '0').slice(0, n);
        break;
      case 'z':
        out += n >= 4 ? zone.longName(epochMs) : zone.shortName(epochMs);
        break;
      case 'Z':
        out += n >= 3 ? zone.id : formatOffset(offset, n === 2);
        break;
      default:
        return undefined;
    }
  }
  return out;
}

function isoWeek(t: Date): { year: number; week: number } {
  const date = Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate());
  const dow = ((t.getUTCDay() + 6) % 7) + 1;
  const thursday = new Date(date + (4 - dow) * 86_400_000);
  const year = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86_400_000)) + 1;
  return { year, week };
}

function dayOfYear(t: Date): number {
  return Math.floor((Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()) - Date.UTC(t.getUTCFullYear(), 0, 1)) / 86_400_000) + 1;
}

// ------------------------------------------------------------------------------------------------
// time_to_epoch(): parse text with a java.time DateTimeFormatter pattern

interface Parsed {
  year?: number;
  month?: number;
  day?: number;
  dayOfYear?: number;
  hour?: number;
  hour12?: number;
  pm?: boolean;
  minute?: number;
  second?: number;
  nanos?: number;
  zone?: Zone;
}

const NUMERIC_LETTERS = new Set(['y', 'u', 'M', 'L', 'd', 'D', 'H', 'h', 'k', 'K', 'm', 's', 'S', 'n']);

/** Parses `text` with a java.time pattern; epoch ms, or undefined when the text does not match. */
export function parseJavaTime(text: string, pattern: string): number | undefined {
  const tokens = tokenize(pattern);
  const p: Parsed = {};
  let pos = 0;
  for (let ti = 0; ti < tokens.length; ti++) {
    const tok = tokens[ti]!;
    if ('literal' in tok) {
      if (!text.startsWith(tok.literal, pos)) return undefined;
      pos += tok.literal.length;
      continue;
    }
    const next = tokens[ti + 1];
    // Adjacent numeric fields ("yyyyMMdd") need fixed widths to be separable.
    const adjacentNumeric = next !== undefined && 'letter' in next && NUMERIC_LETTERS.has(next.letter);
    const { letter, count } = tok;
    const isText = (letter === 'M' || letter === 'L') && count >= 3;
    if (NUMERIC_LETTERS.has(letter) && !isText) {
      let min: number;
      let max: number;
      if (letter === 'y' || letter === 'u') {
        min = count === 2 ? 2 : count;
        max = count === 2 ? 2 : adjacentNumeric ? Math.max(count, 4) : 10;
      } else if (letter === 'S' || letter === 'n') {
        min = max = letter === 'S' ? count : Math.max(count, 1);
        if (letter === 'n') max = 9;
      } else {
        min = count;
        max = count === 1 && !adjacentNumeric ? (letter === 'D' ? 3 : 2) : Math.max(count, letter === 'D' ? 3 : 2);
        if (count === 2) max = 2;
      }
      let end = pos;
      if (text[end] === '-' && (letter === 'y' || letter === 'u') && count !== 2) end++;
      while (end < text.length && end - pos < max && /\d/.test(text[end]!)) end++;
      const digits = text.slice(pos, end);
      if (digits.replace('-', '').length < min) return undefined;
      const value = Number(digits);
      pos = end;
      switch (letter) {
        case 'y':
        case 'u':
          p.year = count === 2 ? 2000 + value : value;
          break;
        case 'M':
        case 'L':
          p.month = value;
          break;
        case 'd':
          p.day = value;
          break;
        case 'D':
          p.dayOfYear = value;
          break;
        case 'H':
          p.hour = value;
          break;
        case 'k':
          p.hour = value % 24;
          break;
        case 'h':
          p.hour12 = value % 12;
          break;
        case 'K':
          p.hour12 = value;
          break;
        case 'm':
          p.minute = value;
          break;
        case 's':
          p.second = value;
          break;
        case 'S':
          p.nanos = Number(digits.padEnd(9, '0').slice(0, 9));
          break;
        case 'n':
          p.nanos = value;
          break;
      }
      continue;
    }
    switch (letter) {
      case 'M':
      case 'L': {
        const i = matchName(text, pos, count >= 4 ? MONTHS : MONTHS.map((m) => m.slice(0, 3)));
        if (i < 0) return undefined;
        p.month = i + 1;
        pos += count >= 4 ? MONTHS[i]!.length : 3;
        break;
      }
      case 'E': {
        const names = count >= 4 ? WEEKDAYS : WEEKDAYS.map((d) => d.slice(0, 3));
        const i = matchName(text, pos, names);
        if (i < 0) return undefined;
        pos += names[i]!.length; // the weekday is checked by nothing: java.time would cross-check it
        break;
      }
      case 'a': {
        const ampm = text.slice(pos, pos + 2).toUpperCase();
        if (ampm !== 'AM' && ampm !== 'PM') return undefined;
        p.pm = ampm === 'PM';
        pos += 2;
        break;
      }
      case 'G': {
        const era = text.slice(pos, pos + 2);
        if (era !== 'AD' && era !== 'BC') return undefined;
        pos += 2;
        break;
      }
      case 'z':
      case 'V': {
        // An offset ('+01:00', 'UTC+01:00') or a region id ('America/Los_Angeles', 'Etc/GMT+5', 'PST').
        const rest = text.slice(pos);
        const m = /^(?:UTC|GMT|UT)?[+-]\d{1,2}(?::?\d{2})?/.exec(rest) ?? /^[A-Za-z][A-Za-z0-9_~+-]*(?:\/[A-Za-z0-9_~+-]+)*/.exec(rest);
        const zone = m ? resolveZone(m[0]) : undefined;
        if (!m || !zone) return undefined;
        p.zone = zone;
        pos += m[0].length;
        break;
      }
      case 'Z':
      case 'X':
      case 'x':
      case 'O': {
        const rest = text.slice(pos);
        if ((letter === 'X' || (letter === 'Z' && count >= 4)) && rest.startsWith('Z')) {
          p.zone = resolveZone('UTC');
          pos += 1;
          break;
        }
        const m = /^(?:GMT|UTC)?[+-]\d{1,2}(?::?\d{2})?/.exec(rest);
        const zone = m ? resolveZone(m[0]) : undefined;
        if (!m || !zone) return undefined;
        p.zone = zone;
        pos += m[0].length;
        break;
      }
      default:
        return undefined;
    }
  }
  if (pos !== text.length || p.year === undefined) return undefined;
  let hour = p.hour ?? 0;
  if (p.hour12 !== undefined) hour = p.hour12 + (p.pm ? 12 : 0);
  let month = p.month ?? 1;
  let day = p.day ?? 1;
  if (p.dayOfYear !== undefined && p.month === undefined) {
    const d = new Date(Date.UTC(p.year, 0, p.dayOfYear));
    month = d.getUTCMonth() + 1;
    day = d.getUTCDate();
  }
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(p.year, month) || hour > 23 || (p.minute ?? 0) > 59 || (p.second ?? 0) > 59) {
    return undefined;
  }
  const wall = utcFromFields(p.year, month, day, hour, p.minute ?? 0, p.second ?? 0, Math.floor((p.nanos ?? 0) / 1e6));
  return p.zone ? wallToUtc(wall, p.zone) : wall;
}

function utcFromFields(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number {
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d); // setUTCFullYear keeps years 0-99 as they are
  date.setUTCHours(h, mi, s, ms);
  return date.getTime();
}

function daysInMonth(year: number, month: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, 0); // day 0 of the next month is the last day of this one
  return d.getUTCDate();
}

function matchName(text: string, pos: number, names: readonly string[]): number {
  const rest = text.slice(pos).toLowerCase();
  // Longest first, so "June" is not matched as "Jun" + "e" in full-name mode.
  let best = -1;
  for (let i = 0; i < names.length; i++) {
    if (rest.startsWith(names[i]!.toLowerCase()) && (best < 0 || names[i]!.length > names[best]!.length)) best = i;
  }
  return best;
}

function pad(n: number, width: number): string {
  const s = String(Math.abs(n)).padStart(width, '0');
  return n < 0 ? `-${s}` : s;
}

function mod(a: number, b: number): number {
  return ((a % b) + b) % b;
}
