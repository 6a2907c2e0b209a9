// Operator semantics from the AWS IoT SQL "Operators" reference (one function per operator
// table) and the cast() tables. Every function maps SQL values to a SQL value; `undefined` is
// the SQL Undefined.

import type { BinaryOp, CastType } from './ast.js';
import {
  decimalAdd, decimalDiv, decimalMul, decimalRem, decimalSub, finite, numberToString,
  sqlEquals, toBoolean, toJson, toNumber, toSqlString,
} from './values.js';

/** AND / OR: booleans or "true"/"false" strings; anything else makes the result Undefined. */
export function and(a: unknown, b: unknown): boolean | undefined {
  const x = toBoolean(a);
  const y = toBoolean(b);
  return x === undefined || y === undefined ? undefined : x && y;
}

export function or(a: unknown, b: unknown): boolean | undefined {
  const x = toBoolean(a);
  const y = toBoolean(b);
  return x === undefined || y === undefined ? undefined : x || y;
}

export function not(a: unknown): boolean | undefined {
  const x = toBoolean(a);
  return x === undefined ? undefined : !x;
}

export function notEquals(a: unknown, b: unknown): boolean | undefined {
  const eq = sqlEquals(a, b);
  return eq === undefined ? undefined : !eq;
}

/** <, <=, >, >=: both sides converted to Decimal (numeric strings included), else Undefined. */
export function compare(op: '<' | '<=' | '>' | '>=', a: unknown, b: unknown): boolean | undefined {
  const x = typeof a === 'number' ? a : toNumber(a);
  const y = typeof b === 'number' ? b : toNumber(b);
  if (x === undefined || y === undefined) return undefined;
  switch (op) {
    case '<':
      return x < y;
    case '<=':
      return x <= y;
    case '>':
      return x > y;
    case '>=':
      return x >= y;
  }
}

/** `+` concatenates when either side is a String, adds when both are numbers. */
export function plus(a: unknown, b: unknown): unknown {
  if (typeof a === 'number' && typeof b === 'number') return finite(decimalAdd(a, b));
  if (typeof a === 'string' || typeof b === 'string') {
    const x = toSqlString(a);
    const y = toSqlString(b);
    return x === undefined || y === undefined ? undefined : x + y;
  }
  return undefined;
}

/**
 * -, *, /, %: numbers, or strings that convert to Decimal. `decimalDivision` is set when an
 * operand is known to be a Decimal even though its value is whole (the literal `3.0`), which the
 * number alone cannot tell.
 */
export function arithmetic(op: '-' | '*' | '/' | '%', a: unknown, b: unknown, decimalDivision = false): number | undefined {
  const x = toNumber(a);
  const y = toNumber(b);
  if (x === undefined || y === undefined) return undefined;
  switch (op) {
    case '-':
      return finite(decimalSub(x, y));
    case '*':
      return finite(decimalMul(x, y));
    case '/':
      // Int / Int is integer division (truncating, like Java); a string operand makes it Decimal.
      if (!decimalDivision && typeof a === 'number' && typeof b === 'number' && Number.isInteger(a) && Number.isInteger(b)) {
        return y === 0 ? undefined : finite(Math.trunc(x / y));
      }
      return finite(decimalDiv(x, y) ?? NaN);
    case '%':
      return decimalRem(x, y);
  }
}

export function negate(a: unknown): number | undefined {
  const x = toNumber(a);
  return x === undefined ? undefined : x === 0 ? 0 : -x;
}

export function binary(op: BinaryOp, a: unknown, b: unknown): unknown {
  switch (op) {
    case 'OR':
      return or(a, b);
    case 'AND':
      return and(a, b);
    case '=':
      return sqlEquals(a, b);
    case '<>':
      return notEquals(a, b);
    case '<':
    case '<=':
    case '>':
    case '>=':
      return compare(op, a, b);
    case '+':
      return plus(a, b);
    case '-':
    case '*':
    case '/':
    case '%':
      return arithmetic(op, a, b);
  }
}

/** cast(value AS type), following the cast tables (which, unlike implicit conversion, accept Booleans). */
export function castValue(v: unknown, type: CastType): unknown {
  switch (type) {
    case 'decimal':
    case 'double':
      if (typeof v === 'boolean') return v ? 1 : 0;
      return toNumber(v);
    case 'int': {
      if (typeof v === 'boolean') return v ? 1 : 0;
      const n = toNumber(v);
      return n === undefined ? undefined : finite(Math.floor(n));
    }
    case 'boolean':
      if (typeof v === 'number') return v !== 0;
      return toBoolean(v);
    case 'string':
      if (typeof v === 'number') return numberToString(v);
      if (Array.isArray(v) || (typeof v === 'object' && v !== null && !(v instanceof Uint8Array))) return toJson(v);
      return toSqlString(v);
  }
}
