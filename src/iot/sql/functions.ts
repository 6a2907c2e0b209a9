// The IoT SQL function table. Each entry gives the arity (checked at compile time) and the
// implementation over already-evaluated arguments. Argument conversions follow the per-function
// tables in the AWS IoT SQL "Functions" reference: inconvertible arguments give Undefined.

import { createHash, randomUUID } from 'node:crypto';
import type { Run } from './context.js';
import { SqlRuntimeError } from './errors.js';
import { md2Hex } from './md2.js';
import { arithmetic } from './operators.js';
import { formatJoda, parseJavaTime } from './timefmt.js';
import {
  finite, getMember, isObject, setMember, toIntFloor, toNumber, toSqlString, truncatePlaces, type JsonObject,
} from './values.js';

/** Where a call appears in the SQL; seeds newuuid()/rand() per call site. */
export interface CallSite {
  readonly name: string;
  readonly pos: number;
}

export type FunctionImpl = (args: readonly unknown[], run: Run, site: CallSite) => unknown;

export interface FunctionSpec {
  readonly name: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  readonly impl: FunctionImpl;
}

export const SQL_VERSION = '2016-03-23';

const specs: FunctionSpec[] = [];

function fn(name: string, minArgs: number, maxArgs: number, impl: FunctionImpl): void {
  specs.push({ name, minArgs, maxArgs, impl });
}

/** A function that calls another AWS service: it compiles, but cannot run on the local target. */
function external(name: string, minArgs: number, maxArgs: number, service: string): void {
  fn(name, minArgs, maxArgs, () => {
    throw notSupportedLocally(name, service);
  });
}

export function notSupportedLocally(name: string, service: string): SqlRuntimeError {
  return new SqlRuntimeError(
    'NOT_SUPPORTED_LOCALLY',
    `${name}() needs ${service} and is not supported on the local target; run this rule on the aws target`,
    name,
  );
}

/** A one-argument numeric function: Int/Decimal/numeric String in, Undefined for anything else. */
function numeric(name: string, f: (n: number) => number): void {
  fn(name, 1, 1, ([a]) => {
    const n = toNumber(a);
    return n === undefined ? undefined : finite(f(n));
  });
}

/** A string function: arguments converted with the standard string conversion; Null/Undefined give Undefined. */
function stringFn(name: string, arity: number, f: (...s: string[]) => unknown): void {
  fn(name, arity, arity, (args) => {
    const strs: string[] = [];
    for (const a of args) {
      const s = toSqlString(a);
      if (s === undefined) return undefined;
      strs.push(s);
    }
    return f(...strs);
  });
}

// --- math ----------------------------------------------------------------------------------------

numeric('abs', Math.abs);
numeric('acos', Math.acos);
numeric('asin', Math.asin);
numeric('atan', Math.atan);
numeric('cos', Math.cos);
numeric('cosh', Math.cosh);
numeric('sin', Math.sin);
numeric('sinh', Math.sinh);
numeric('tan', Math.tan);
numeric('tanh', Math.tanh);
numeric('exp', Math.exp);
numeric('ln', Math.log);
numeric('log', Math.log10);
numeric('sqrt', Math.sqrt);
numeric('ceil', Math.ceil);
numeric('floor', Math.floor);
numeric('sign', Math.sign);
// Halves round away from zero: round(1.5) = 2, round(-1.5) = -2.
numeric('round', (n) => {
  const whole = Math.trunc(n);
  return Math.abs(n - whole) >= 0.5 ? whole + Math.sign(n) : whole;
});

fn('atan2', 2, 2, ([y, x]) => {
  const a = toNumber(y);
  const b = toNumber(x);
  return a === undefined || b === undefined ? undefined : finite(Math.atan2(a, b));
});
fn('power', 2, 2, ([x, y]) => {
  const a = toNumber(x);
  const b = toNumber(y);
  return a === undefined || b === undefined ? undefined : finite(Math.pow(a, b));
});
fn('mod', 2, 2, ([a, b]) => arithmetic('%', a, b));
fn('remainder', 2, 2, ([a, b]) => arithmetic('%', a, b));
fn('trunc', 2, 2, ([x, places]) => {
  const n = toNumber(x);
  const p = toIntFloor(places);
  if (n === undefined || p === undefined) return undefined;
  return truncatePlaces(n, Math.min(34, Math.max(0, p)));
});
fn('nanvl', 2, 2, ([a, b]) => (a === undefined || a === null || (typeof a === 'number' && Number.isNaN(a)) ? b : a));

// Bitwise functions work on whole numbers of any size (BigInt), not JavaScript's 32-bit ints.
function bitwise(name: string, op: (a: bigint, b: bigint) => bigint): void {
  fn(name, 2, 2, ([x, y]) => {
    const a = toIntFloor(x);
    const b = toIntFloor(y);
    if (a === undefined || b === undefined) return undefined;
    return Number(op(BigInt(a), BigInt(b)));
  });
}
bitwise('bitand', (a, b) => a & b);
bitwise('bitor', (a, b) => a | b);
bitwise('bitxor', (a, b) => a ^ b);
fn('bitnot', 1, 1, ([x]) => {
  const a = toIntFloor(x);
  return a === undefined ? undefined : Number(~BigInt(a));
});

// --- strings -------------------------------------------------------------------------------------

stringFn('lower', 1, (s) => s.toLowerCase());
stringFn('upper', 1, (s) => s.toUpperCase());
stringFn('trim', 1, (s) => s.replace(/^[ \t\n\r\f\v]+|[ \t\n\r\f\v]+$/g, ''));
stringFn('ltrim', 1, (s) => s.replace(/^[ \t\n\r\f\v]+/, ''));
stringFn('rtrim', 1, (s) => s.replace(/[ \t\n\r\f\v]+$/, ''));
stringFn('length', 1, (s) => s.length);
stringFn('numbytes', 1, (s) => Buffer.byteLength(s, 'utf8'));
stringFn('startswith', 2, (s, prefix) => s.startsWith(prefix));
stringFn('endswith', 2, (s, suffix) => s.endsWith(suffix));
stringFn('indexof', 2, (s, part) => s.indexOf(part));
stringFn('replace', 3, (s, find, by) => s.replaceAll(find, () => by));

function pad(name: string, left: boolean): void {
  fn(name, 2, 2, ([value, count]) => {
    const s = toSqlString(value);
    const n = toIntFloor(count);
    if (s === undefined || n === undefined) return undefined;
    const spaces = ' '.repeat(Math.min(1000, Math.max(0, n)));
    return left ? spaces + s : s + spaces;
  });
}
pad('lpad', true);
pad('rpad', false);

fn('substring', 2, 3, (args) => {
  const s = toSqlString(args[0]);
  const start = toIntFloor(args[1]);
  if (s === undefined || start === undefined) return undefined;
  const clamp = (i: number) => Math.min(s.length, Math.max(0, i));
  if (args.length < 3) return s.slice(clamp(start));
  const end = toIntFloor(args[2]);
  if (end === undefined) return undefined;
  return clamp(start) >= clamp(end) ? '' : s.slice(clamp(start), clamp(end));
});

fn('chr', 1, 1, ([code]) => {
  const n = toIntFloor(code);
  return n !== undefined && n >= 0 && n <= 127 ? String.fromCharCode(n) : undefined;
});

fn('concat', 0, Infinity, (args) => {
  if (args.length === 0) return undefined;
  if (args.some((a) => a === undefined)) return undefined;
  if (args.length === 1) return Array.isArray(args[0]) ? args[0] : toSqlString(args[0]);
  if (args.some(Array.isArray)) {
    const out: unknown[] = [];
    for (const a of args) {
      if (Array.isArray(a)) out.push(...a);
      else out.push(a);
    }
    return out;
  }
  let s = '';
  for (const a of args) {
    const part = toSqlString(a);
    if (part === undefined) return undefined;
    s += part;
  }
  return s;
});

// --- regular expressions -------------------------------------------------------------------------
// Patterns are Java regexes in AWS; JavaScript's dialect agrees on everything common. Leading
// inline flags such as (?i) are translated. Invalid patterns give Undefined. Both engines backtrack,
// so a crafted input can make a match run for minutes: callers bound it with a budget (budget.ts).

const regexCache = new Map<string, RegExp | null>();

function compileRegex(pattern: string, global: boolean): RegExp | undefined {
  const key = (global ? 'g:' : ':') + pattern;
  const cached = regexCache.get(key);
  if (cached !== undefined) return cached ?? undefined;
  let source = pattern;
  let flags = global ? 'g' : '';
  const inline = /^\(\?([imsx]+)\)/.exec(source);
  if (inline) {
    source = source.slice(inline[0].length);
    for (const f of inline[1]!) if (f !== 'x' && !flags.includes(f)) flags += f;
  }
  let re: RegExp | null;
  try {
    re = new RegExp(source, flags);
  } catch {
    re = null;
  }
  if (regexCache.size > 1000) regexCache.clear();
  regexCache.set(key, re);
  return re ?? undefined;
}

/** Converts a Java replacement string ($1, ${name}, \$) to JavaScript's; undefined if malformed. */
function javaReplacement(repl: string): string | undefined {
  let out = '';
  for (let i = 0; i < repl.length; i++) {
    const c = repl[i]!;
    if (c === '\\') {
      if (i + 1 >= repl.length) return undefined;
      const lit = repl[++i]!;
      out += lit === '$' ? '$$' : lit;
    } else if (c === '$') {
      const named = /^\{([A-Za-z][A-Za-z0-9]*)\}/.exec(repl.slice(i + 1));
      if (named) {
        out += `$<${named[1]}>`;
        i += named[0].length;
      } else if (repl[i + 1] === '0') {
        out += '$&'; // Java's $0 is the whole match
        i++;
      } else if (/\d/.test(repl[i + 1] ?? '')) {
        out += '$' + repl[++i];
      } else {
        return undefined;
      }
    } else {
      out += c;
    }
  }
  return out;
}

stringFn('regexp_matches', 2, (s, pattern) => {
  const re = compileRegex(pattern, false);
  return re ? re.test(s) : undefined;
});
stringFn('regexp_substr', 2, (s, pattern) => {
  const re = compileRegex(pattern, false);
  if (!re) return undefined;
  const m = re.exec(s);
  return m ? m[0] : undefined;
});
stringFn('regexp_replace', 3, (s, pattern, replacement) => {
  const re = compileRegex(pattern, true);
  const repl = javaReplacement(replacement);
  if (!re || repl === undefined) return undefined;
  re.lastIndex = 0;
  try {
    return s.replace(re, repl);
  } catch {
    return undefined;
  }
});

// --- hashes and encodings ------------------------------------------------------------------------

for (const algorithm of ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']) {
  stringFn(algorithm, 1, (s) => createHash(algorithm).update(s, 'utf8').digest('hex'));
}
stringFn('md2', 1, (s) => md2Hex(Buffer.from(s, 'utf8')));

fn('encode', 2, 2, ([value, scheme]) => {
  if (scheme !== 'base64') return undefined;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  const s = toSqlString(value);
  return s === undefined ? undefined : Buffer.from(s, 'utf8').toString('base64');
});

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const JSON_FIRST = new Set('{["-0123456789tfn');
fn('decode', 2, 6, ([value, scheme]) => {
  if (scheme === 'proto') throw notSupportedLocally('decode', 'the protobuf descriptor file in Amazon S3');
  if (scheme !== 'base64') return undefined;
  const s = toSqlString(value);
  if (s === undefined) return undefined;
  const unpadded = s.replace(/=+$/, '');
  // Java's decoder: padding optional, but a lone trailing character or stray symbols are errors.
  if (!BASE64.test(s) || unpadded.length % 4 === 1 || (s.length !== unpadded.length && s.length % 4 !== 0)) return null;
  const text = Buffer.from(s, 'base64').toString('utf8');
  // Decoded JSON is returned as its value (AWS's WHERE clause example decodes the payload `80` to the
  // number 80 and compares it with 50); other text stays a string.
  const first = text.trimStart()[0];
  if (first !== undefined && JSON_FIRST.has(first)) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
});

// --- collections and predicates ------------------------------------------------------------------

fn('get', 2, 2, ([collection, key]) => {
  if (Array.isArray(collection) || typeof collection === 'string') {
    const i = toIntFloor(key);
    if (i === undefined || i < 0 || i >= collection.length) return undefined;
    return collection[i];
  }
  if (isObject(collection)) return typeof key === 'string' ? getMember(collection, key) : undefined;
  return undefined;
});
fn('isnull', 1, 1, ([v]) => v === null);
fn('isundefined', 1, 1, ([v]) => v === undefined);

fn('transform', 3, 3, ([mode, attributes, array]) => {
  if (mode !== 'enrichArray' || !isObject(attributes) || !Array.isArray(array)) return undefined;
  const out: JsonObject[] = [];
  for (const element of array) {
    if (!isObject(element)) return undefined;
    const merged: JsonObject = { ...element };
    for (const k of Object.keys(attributes)) setMember(merged, k, attributes[k]);
    out.push(merged);
  }
  return out;
});

// get_or_default(expr, default) is evaluated lazily by the evaluator (it must catch failures of
// its first argument); this entry only declares its arity.
fn('get_or_default', 1, 2, () => {
  throw new Error('get_or_default is evaluated by the evaluator');
});

// --- time ----------------------------------------------------------------------------------------

fn('timestamp', 0, 0, (_args, run) => run.now);

fn('parse_time', 2, 3, ([pattern, millis, zone]) => {
  const p = toSqlString(pattern);
  const ms = toNumber(millis);
  const z = zone === undefined ? 'UTC' : toSqlString(zone);
  if (p === undefined || ms === undefined || z === undefined) return undefined;
  return formatJoda(p, Math.floor(ms), z);
});

fn('time_to_epoch', 2, 2, ([text, pattern]) => {
  const t = toSqlString(text);
  const p = toSqlString(pattern);
  if (t === undefined || p === undefined) return undefined;
  return parseJavaTime(t, p);
});

// --- message context -----------------------------------------------------------------------------

fn('topic', 0, 1, ([level], run) => {
  if (level === undefined) return run.topic;
  const n = toIntFloor(level);
  if (n === undefined || n < 1) return undefined;
  // Walk to the n-th level without splitting the topic into an array.
  const t = run.topic;
  let start = 0;
  for (let i = 1; i < n; i++) {
    const slash = t.indexOf('/', start);
    if (slash < 0) return undefined;
    start = slash + 1;
  }
  const end = t.indexOf('/', start);
  return end < 0 ? t.slice(start) : t.slice(start, end);
});
fn('clientid', 0, 0, (_args, run) => run.ctx.clientId ?? 'n/a');
fn('principal', 0, 0, (_args, run) => run.ctx.principal);
fn('traceid', 0, 0, (_args, run) => run.ctx.messageId);
fn('accountid', 0, 0, (_args, run) => run.ctx.accountId);
fn('sourceip', 0, 0, (_args, run) => run.ctx.sourceIp);
fn('sql_version', 0, 0, () => SQL_VERSION);

fn('newuuid', 0, 0, (_args, run, site) => {
  if (run.ctx.messageId === undefined) return randomUUID();
  const b = seedBytes(run, site);
  b[6] = (b[6]! & 0x0f) | 0x40; // version 4
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
});

fn('rand', 0, 0, (_args, run, site) => {
  if (run.ctx.messageId === undefined) return Math.random();
  // 53 random bits -> a double in [0, 1).
  const b = seedBytes(run, site);
  const hi = b.readUInt32BE(0) >>> 11; // 21 bits
  const lo = b.readUInt32BE(4); // 32 bits
  return (hi * 2 ** 32 + lo) / 2 ** 53;
});

/** Replays of the same message through the same rule give the same bytes at the same call site. */
function seedBytes(run: Run, site: CallSite): Buffer {
  return createHash('sha256')
    .update(`${run.ctx.messageId}\u0000${run.ctx.ruleName ?? ''}\u0000${site.name}@${site.pos}`)
    .digest();
}

fn('get_mqtt_property', 1, 1, ([name], run) => {
  const props = run.ctx.mqttProperties;
  if (!props || typeof name !== 'string') return undefined;
  switch (name.toLowerCase()) {
    case 'content_type':
      return props.contentType;
    case 'response_topic':
      return props.responseTopic;
    case 'format_indicator':
      if (props.payloadFormatIndicator === undefined) return undefined;
      return props.payloadFormatIndicator === 1 || props.payloadFormatIndicator === true ? 'UTF8_DATA' : 'UNSPECIFIED_BYTES';
    case 'correlation_data': {
      const data = props.correlationData;
      if (data === undefined) return undefined;
      return typeof data === 'string' ? Buffer.from(data, 'utf8').toString('base64') : Buffer.from(data).toString('base64');
    }
    default:
      return undefined;
  }
});

fn('get_user_properties', 1, 1, ([key], run) => {
  const props = run.ctx.userProperties;
  if (!props || typeof key !== 'string' || !Object.hasOwn(props, key)) return undefined;
  const v = props[key]!;
  return typeof v === 'string' ? [v] : [...v];
});

// --- functions that call other AWS services ------------------------------------------------------

external('aws_lambda', 2, 2, 'AWS Lambda');
external('get_dynamodb', 4, 6, 'DynamoDB');
external('get_thing_shadow', 2, 3, 'the Device Shadow service');
external('get_registry_data', 3, 3, 'the AWS IoT registry');
external('get_secret', 3, 4, 'AWS Secrets Manager');
external('machinelearning_predict', 3, 3, 'Amazon Machine Learning');

/** Lower-case function name -> spec. */
export const FUNCTIONS: ReadonlyMap<string, FunctionSpec> = new Map(specs.map((s) => [s.name, s]));

/** Functions that call other AWS services and so cannot be evaluated locally. */
export const EXTERNAL_FUNCTIONS: readonly string[] = [
  'aws_lambda', 'get_dynamodb', 'get_thing_shadow', 'get_registry_data', 'get_secret', 'machinelearning_predict',
];

/** The closest known function name, for "did you mean" hints. */
export function suggestFunction(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of FUNCTIONS.keys()) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
