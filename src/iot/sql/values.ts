// The IoT SQL value model on top of plain JavaScript values:
//   Int/Decimal -> number (a whole number counts as Int, as SQL 2016-03-23 itself treats 10.0 as 10)
//   String -> string, Boolean -> boolean, Null -> null, Undefined -> undefined,
//   Array -> unknown[], Object -> plain object, raw (non-JSON) payload -> Uint8Array.
// Conversions follow the tables in the AWS IoT SQL "Data types" reference.

import { SqlRuntimeError } from './errors.js';

export type SqlType = 'Int' | 'Decimal' | 'Boolean' | 'String' | 'Array' | 'Object' | 'Null' | 'Undefined' | 'Binary';

export type JsonObject = { [key: string]: unknown };

export function sqlTypeOf(v: unknown): SqlType {
  switch (typeof v) {
    case 'number':
      return Number.isInteger(v) ? 'Int' : 'Decimal';
    case 'string':
      return 'String';
    case 'boolean':
      return 'Boolean';
    case 'undefined':
      return 'Undefined';
    case 'object':
      if (v === null) return 'Null';
      if (Array.isArray(v)) return 'Array';
      if (v instanceof Uint8Array) return 'Binary';
      return 'Object';
    default:
      return 'Undefined';
  }
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Strings AWS IoT converts to numbers: ^-?\d+(\.\d+)?((?i)E-?\d+)?$ */
const NUMERIC_STRING = /^-?\d+(?:\.\d+)?(?:[eE]-?\d+)?$/;

/** Converts to a number ("To Decimal"), or undefined when AWS would give Undefined. Null is not a number here. */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && NUMERIC_STRING.test(v)) {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** "To Int" as the functions apply it: numbers and numeric strings rounded down. */
export function toIntFloor(v: unknown): number | undefined {
  const n = toNumber(v);
  return n === undefined ? undefined : Math.floor(n);
}

/** "To Boolean": booleans, and the strings "true"/"false" in any case. */
export function toBoolean(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const lower = v.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  return undefined;
}

/** "To String": Null and Undefined have no string form. */
export function toSqlString(v: unknown): string | undefined {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      return numberToString(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'object':
      if (v === null || v instanceof Uint8Array) return undefined;
      return toJson(v);
    default:
      return undefined;
  }
}

/** Ints in plain notation; Decimals like Java's BigDecimal (`1E-7`, `1E+21`). */
export function numberToString(n: number): string {
  if (Number.isInteger(n)) {
    if (Math.abs(n) < 1e21) return String(n === 0 ? 0 : n);
    return BigInt(n).toString();
  }
  return String(n).replace('e', 'E');
}

/** Compact JSON, as AWS serialises arrays and objects when converting them to strings. */
export function toJson(v: unknown): string {
  try {
    return JSON.stringify(v, jsonReplacer);
  } catch (e) {
    // JSON.stringify recurses: a payload of a few thousand nested arrays overflows the stack.
    if (e instanceof RangeError) throw tooDeeplyNested('converted to a string');
    throw e;
  }
}

/** How deeply nested values `=` compares before giving up (the comparison recurses). */
export const MAX_VALUE_DEPTH = 1000;

function tooDeeplyNested(what: string): SqlRuntimeError {
  return new SqlRuntimeError('TOO_DEEPLY_NESTED', `A value in the payload is nested too deeply to be ${what}`);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value;
}

/** Rejects results that JSON cannot carry (NaN, infinities) and normalises -0. */
export function finite(n: number): number | undefined {
  if (!Number.isFinite(n)) return undefined;
  return n === 0 ? 0 : n;
}

/** The `=` operator: Undefined if either side is Undefined, false on mismatched types. */
export function sqlEquals(a: unknown, b: unknown): boolean | undefined {
  if (a === undefined || b === undefined) return undefined;
  return deepEqual(a, b, 0);
}

function deepEqual(a: unknown, b: unknown, depth: number): boolean {
  if (a === b) return true;
  if (depth > MAX_VALUE_DEPTH) throw tooDeeplyNested(`compared (more than ${MAX_VALUE_DEPTH} levels)`);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const aArr = Array.isArray(a);
  if (aArr !== Array.isArray(b)) return false;
  if (aArr) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], bb[i], depth + 1)) return false;
    return true;
  }
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.from(a).equals(b);
  }
  const ak = Object.keys(a);
  const bo = b as JsonObject;
  if (ak.length !== Object.keys(bo).length) return false;
  for (const k of ak) {
    if (!Object.hasOwn(bo, k) || !deepEqual((a as JsonObject)[k], bo[k], depth + 1)) return false;
  }
  return true;
}

// Keys that would hit Object.prototype instead of the document's own data.
const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

export function isPrototypeKey(key: string): boolean {
  return PROTOTYPE_KEYS.has(key);
}

/** Reads an own property of a JSON object; anything else gives Undefined. */
export function getMember(obj: unknown, key: string): unknown {
  if (!isObject(obj)) return undefined;
  if (PROTOTYPE_KEYS.has(key)) return Object.hasOwn(obj, key) ? obj[key] : undefined;
  return obj[key];
}

/** Writes a key without ever touching the prototype (`__proto__` becomes an ordinary key). */
export function setMember(obj: JsonObject, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

// ---------------------------------------------------------------------------------------------
// Decimal arithmetic. AWS computes with 34-digit decimals, so 0.1 + 0.2 is 0.3 there. We redo
// +, -, *, / and % on the shortest decimal forms of the operands with BigInt when either operand
// has a fraction; whole numbers take the plain (exact) double path.

interface Dec {
  readonly m: bigint; // mantissa
  readonly e: number; // value = m * 10^e
}

function toDec(n: number): Dec {
  const s = String(n);
  let mant = s;
  let exp = 0;
  const ePos = s.indexOf('e');
  if (ePos >= 0) {
    mant = s.slice(0, ePos);
    exp = Number(s.slice(ePos + 1));
  }
  const dot = mant.indexOf('.');
  if (dot >= 0) {
    exp -= mant.length - dot - 1;
    mant = mant.slice(0, dot) + mant.slice(dot + 1);
  }
  return { m: BigInt(mant), e: exp };
}

function decToNumber(d: Dec): number {
  return Number(`${d.m}e${d.e}`);
}

function align(a: Dec, b: Dec): [bigint, bigint, number] {
  if (a.e === b.e) return [a.m, b.m, a.e];
  if (a.e < b.e) return [a.m, b.m * 10n ** BigInt(b.e - a.e), a.e];
  return [a.m * 10n ** BigInt(a.e - b.e), b.m, b.e];
}

/** Digits kept by a quotient, as in IEEE 754 decimal128 (MathContext.DECIMAL128). */
const QUOTIENT_DIGITS = 34;

export function decimalAdd(a: number, b: number): number {
  if (Number.isInteger(a) && Number.isInteger(b)) return a + b;
  const [x, y, e] = align(toDec(a), toDec(b));
  return decToNumber({ m: x + y, e });
}

export function decimalSub(a: number, b: number): number {
  if (Number.isInteger(a) && Number.isInteger(b)) return a - b;
  const [x, y, e] = align(toDec(a), toDec(b));
  return decToNumber({ m: x - y, e });
}

export function decimalMul(a: number, b: number): number {
  if (Number.isInteger(a) && Number.isInteger(b)) return a * b;
  const x = toDec(a);
  const y = toDec(b);
  return decToNumber({ m: x.m * y.m, e: x.e + y.e });
}

/** Decimal division rounded half-even to 34 significant digits; undefined on division by zero. */
export function decimalDiv(a: number, b: number): number | undefined {
  if (b === 0) return undefined;
  const x = toDec(a);
  const y = toDec(b);
  if (x.m === 0n) return 0;
  // Scale the dividend so the integer quotient has at least QUOTIENT_DIGITS + 1 digits.
  const xd = digits(x.m);
  const yd = digits(y.m);
  const shift = Math.max(0, QUOTIENT_DIGITS + 1 - (xd - yd));
  const num = x.m * 10n ** BigInt(shift);
  let q = num / y.m;
  const rem = num % y.m;
  const e = x.e - y.e - shift;
  // Round the (possibly inexact) quotient to QUOTIENT_DIGITS digits, half-even.
  const qd = digits(q);
  const drop = qd - QUOTIENT_DIGITS;
  if (drop <= 0) return decToNumber({ m: q, e });
  const p = 10n ** BigInt(drop);
  const kept = q / p;
  const tail = q % p;
  const half = p / 2n;
  const absTail = tail < 0n ? -tail : tail;
  const sticky = rem !== 0n;
  let rounded = kept;
  if (absTail > half || (absTail === half && (sticky || kept % 2n !== 0n))) rounded += q < 0n ? -1n : 1n;
  q = rounded;
  return decToNumber({ m: q, e: e + drop });
}

/** Remainder with the sign of the dividend (Java BigDecimal.remainder); undefined on zero divisor. */
export function decimalRem(a: number, b: number): number | undefined {
  if (b === 0) return undefined;
  if (Number.isInteger(a) && Number.isInteger(b)) return finite(a % b);
  const [x, y, e] = align(toDec(a), toDec(b));
  return finite(decToNumber({ m: x % y, e }));
}

function digits(m: bigint): number {
  return (m < 0n ? -m : m).toString().length;
}

/** Truncates toward zero to `places` decimal places without binary rounding artefacts. */
export function truncatePlaces(n: number, places: number): number {
  if (Number.isInteger(n)) return n;
  const d = toDec(n);
  if (-d.e <= places) return n;
  const p = 10n ** BigInt(-d.e - places);
  return finite(decToNumber({ m: d.m / p, e: -places })) ?? 0;
}
