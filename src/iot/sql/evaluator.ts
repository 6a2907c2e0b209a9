// Compiles the syntax tree into closures once, so evaluating a message is a chain of direct
// calls with no tree walking or operator dispatch. `compileExpr` is the single switch over
// expression kinds; `compileRow` builds the SELECT output.

import type { BinaryOp, Expr, Query, SelectItem } from './ast.js';
import { checkBudget } from './budget.js';
import { BinaryDocument, type EvalContext, type EvalOptions, type Frame, type Run } from './context.js';
import { SqlRuntimeError } from './errors.js';
import { FUNCTIONS, type CallSite } from './functions.js';
import { and, arithmetic, castValue, compare, negate, not, notEquals, or, plus } from './operators.js';
import { getMember, isObject, isPrototypeKey, setMember, sqlEquals, toBoolean, toIntFloor, toNumber, type JsonObject } from './values.js';

export type Evaluator = (frame: Frame) => unknown;

const NO_ARGS: readonly unknown[] = Object.freeze([]);

/** Functions that only read the message context: constant time whatever the payload. */
const CONTEXT_FUNCTIONS: ReadonlySet<string> = new Set([
  'topic', 'timestamp', 'clientid', 'principal', 'traceid', 'accountid', 'sourceip', 'sql_version', 'newuuid', 'rand',
]);

/** Failures of its first argument that get_or_default() replaces with the default. */
const RECOVERABLE: ReadonlySet<SqlRuntimeError['code']> = new Set(['PAYLOAD_NOT_JSON', 'INVALID_CONTEXT']);

export function compileExpr(node: Expr): Evaluator {
  switch (node.kind) {
    case 'literal': {
      const value = node.value;
      return () => value;
    }
    case 'attribute':
      return compilePath(undefined, [node.name]);
    case 'payload':
      return payloadValue;
    case 'member': {
      // Flatten a.b.c into one closure walking a path.
      const names: string[] = [node.name];
      let base: Expr = node.object;
      while (base.kind === 'member') {
        names.unshift(base.name);
        base = base.object;
      }
      if (base.kind === 'attribute') return compilePath(undefined, [base.name, ...names]);
      return compilePath(compileExpr(base), names);
    }
    case 'index': {
      const object = compileExpr(node.object);
      const index = compileExpr(node.index);
      return (f) => {
        const o = object(f);
        if (!Array.isArray(o)) return undefined;
        const i = toIntFloor(index(f));
        return i === undefined || i < 0 || i >= o.length ? undefined : o[i];
      };
    }
    case 'unary': {
      const operand = compileExpr(node.operand);
      return node.op === 'NOT' ? (f) => not(operand(f)) : (f) => negate(operand(f));
    }
    case 'binary':
      return compileBinary(node.op, node.left, node.right);
    case 'call':
      return compileCall(node.name, node.args, node.pos);
    case 'cast': {
      const value = compileExpr(node.value);
      const type = node.type;
      return (f) => castValue(value(f), type);
    }
    case 'case': {
      const subject = compileExpr(node.subject);
      const whens = node.whens.map((w) => ({ when: compileExpr(w.when), then: compileExpr(w.then) }));
      const otherwise = node.otherwise ? compileExpr(node.otherwise) : undefined;
      return (f) => {
        const v = subject(f);
        if (v === undefined) return undefined;
        for (const w of whens) if (sqlEquals(v, w.when(f)) === true) return w.then(f);
        return otherwise ? otherwise(f) : undefined;
      };
    }
    case 'array': {
      const items = node.items.map(compileExpr);
      return (f) => {
        const out: unknown[] = [];
        for (const item of items) {
          const v = item(f);
          if (v !== undefined) out.push(v); // Undefined has no JSON form and is left out
        }
        return out;
      };
    }
    case 'object': {
      const entries = node.entries.map((e) => ({ key: e.key, value: compileExpr(e.value) }));
      return (f) => {
        const out: JsonObject = {};
        for (const e of entries) {
          const v = e.value(f);
          if (v !== undefined) setMember(out, e.key, v);
        }
        return out;
      };
    }
    case 'subquery':
      return compileSubquery(node.query);
  }
}

function payloadNotJson(name: string): SqlRuntimeError {
  return new SqlRuntimeError(
    'PAYLOAD_NOT_JSON',
    `The payload is not JSON, so '${name}' cannot be read; with binary payloads use only * and functions such as encode(*, 'base64')`,
  );
}

/** `*` as a value: the current document, or the raw bytes of a non-JSON payload. */
function payloadValue(f: Frame): unknown {
  const d = f.doc;
  return d instanceof BinaryDocument ? d.bytes : d;
}

/** Reads names[0].names[1]... from `base(f)`, or from the current document when base is undefined. */
function compilePath(base: Evaluator | undefined, names: readonly string[]): Evaluator {
  const first = names[0]!;
  const safe = !names.some(isPrototypeKey);
  if (base === undefined && names.length === 1 && safe) {
    // The hot path: a top-level attribute such as `temperature`.
    return (f) => {
      const d = f.doc;
      if (typeof d !== 'object' || d === null) return undefined;
      if (d instanceof BinaryDocument) throw payloadNotJson(first);
      return Array.isArray(d) ? undefined : (d as JsonObject)[first];
    };
  }
  return (f) => {
    let v: unknown;
    if (base === undefined) {
      if (f.doc instanceof BinaryDocument) throw payloadNotJson(first);
      v = f.doc;
    } else {
      v = base(f);
    }
    for (let i = 0; i < names.length && v !== undefined; i++) v = getMember(v, names[i]!);
    return v;
  };
}

function compileBinary(op: BinaryOp, leftNode: Expr, rightNode: Expr): Evaluator {
  const left = compileExpr(leftNode);
  const right = compileExpr(rightNode);
  switch (op) {
    case 'AND':
      return (f) => and(left(f), right(f));
    case 'OR':
      return (f) => or(left(f), right(f));
    case '=':
      return (f) => sqlEquals(left(f), right(f));
    case '<>':
      return (f) => notEquals(left(f), right(f));
    case '<':
    case '<=':
    case '>':
    case '>=': {
      // Comparing against a numeric literal (`temperature > 20`) is the common WHERE clause.
      if (rightNode.kind === 'literal' && typeof rightNode.value === 'number') {
        const c = rightNode.value;
        const cmp = COMPARATORS[op];
        return (f) => {
          const a = left(f);
          const x = typeof a === 'number' ? a : toNumber(a);
          return x === undefined ? undefined : cmp(x, c);
        };
      }
      return (f) => compare(op, left(f), right(f));
    }
    case '+':
      return (f) => plus(left(f), right(f));
    case '/':
      if (isDecimalTyped(leftNode) || isDecimalTyped(rightNode)) return (f) => arithmetic('/', left(f), right(f), true);
      return (f) => arithmetic('/', left(f), right(f));
    case '-':
    case '*':
    case '%':
      return (f) => arithmetic(op, left(f), right(f));
  }
}

/** Functions documented to return a Decimal (double), even for whole results such as power(2, 5). */
const DECIMAL_FUNCTIONS: ReadonlySet<string> = new Set([
  'acos', 'asin', 'atan', 'atan2', 'cos', 'cosh', 'exp', 'ln', 'log', 'power', 'sin', 'sinh', 'sqrt', 'tan', 'tanh', 'rand',
]);

/**
 * Whether an expression is statically a Decimal although its value may be whole: `power(2, 5) / 3`
 * divides as Decimals, while a plain JavaScript number cannot tell. A whole literal such as `2.0` is
 * an Int in SQL 2016-03-23, so `7 / 2.0` is an Int division.
 */
function isDecimalTyped(node: Expr): boolean {
  switch (node.kind) {
    case 'literal':
      return node.decimal === true;
    case 'unary':
      return node.op === '-' && isDecimalTyped(node.operand);
    case 'binary':
      return (node.op === '+' || node.op === '-' || node.op === '*' || node.op === '/' || node.op === '%') &&
        (isDecimalTyped(node.left) || isDecimalTyped(node.right));
    case 'call':
      return DECIMAL_FUNCTIONS.has(node.name);
    default:
      return false;
  }
}

const COMPARATORS: Readonly<Record<'<' | '<=' | '>' | '>=', (a: number, b: number) => boolean>> = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

function compileCall(name: string, argNodes: readonly Expr[], pos: number): Evaluator {
  const spec = FUNCTIONS.get(name);
  if (!spec) throw new Error(`unknown function ${name} reached the evaluator`); // the parser rejects these
  const site: CallSite = { name, pos };
  const args = argNodes.map(compileExpr);

  if (name === 'get_or_default') {
    // The first argument may fail (for example a missing key in a lookup): fall back to the default.
    const [value, fallback] = args as [Evaluator, Evaluator | undefined];
    return (f) => {
      let v: unknown;
      try {
        v = value(f);
      } catch (e) {
        // Never hide that a function could not run locally (the default would be a guess), nor that
        // the evaluation ran out of time or stack.
        if (!(e instanceof SqlRuntimeError) || !RECOVERABLE.has(e.code)) throw e;
        v = undefined;
      }
      return v === undefined || v === null ? (fallback ? fallback(f) : undefined) : v;
    };
  }
  if (name === 'encode' && argNodes[0]?.kind === 'payload') {
    // encode(*, ...) encodes the payload exactly as received, JSON or not.
    args[0] = (f) => (f.doc === f.run.root && f.run.bytes !== undefined ? f.run.bytes : payloadValue(f));
  }

  const impl = spec.impl;
  // Under a budget, each call names itself (so a call stopped by the watchdog is known) and checks
  // the deadline when it returns; reading the message context takes no time worth a clock reading.
  const constantTime = CONTEXT_FUNCTIONS.has(name);
  const call = (argv: readonly unknown[], run: Run): unknown => {
    const budget = run.budget;
    if (budget === undefined || constantTime) return impl(argv, run, site);
    budget.at = name;
    const v = impl(argv, run, site);
    checkBudget(budget);
    budget.at = undefined;
    return v;
  };
  switch (args.length) {
    case 0:
      return (f) => call(NO_ARGS, f.run);
    case 1: {
      const a = args[0]!;
      return (f) => call([a(f)], f.run);
    }
    case 2: {
      const a = args[0]!;
      const b = args[1]!;
      return (f) => call([a(f), b(f)], f.run);
    }
    default:
      return (f) => call(args.map((a) => a(f)), f.run);
  }
}

/** `(SELECT ... FROM source [WHERE ...])`: maps an array's elements, or queries a single object. */
function compileSubquery(query: Query): Evaluator {
  const source = compileExpr(query.from!);
  const where = query.where ? compileExpr(query.where) : undefined;
  const row = compileRow(query);
  return (f) => {
    const src = source(f);
    if (Array.isArray(src)) {
      const out: unknown[] = [];
      const budget = f.run.budget;
      for (const element of src) {
        if (budget !== undefined) checkBudget(budget);
        const ef: Frame = { doc: element, run: f.run };
        if (where && toBoolean(where(ef)) !== true) continue;
        const r = row(ef);
        if (r !== undefined) out.push(r);
      }
      return out;
    }
    if (isObject(src)) {
      const ef: Frame = { doc: src, run: f.run };
      if (where && toBoolean(where(ef)) !== true) return undefined;
      return row(ef);
    }
    return undefined;
  };
}

type CompiledItem = { readonly star: true } | { readonly star: false; readonly value: Evaluator; readonly path: readonly string[] };

/** Builds the result of the SELECT list for one document. */
export function compileRow(query: Query): Evaluator {
  if (query.value) {
    const item = query.items[0]!;
    return item.kind === 'star' ? payloadValue : compileExpr(item.expr);
  }
  const items: CompiledItem[] = query.items.map((it: SelectItem) =>
    it.kind === 'star' ? { star: true } : { star: false, value: compileExpr(it.expr), path: it.alias },
  );
  const n = items.length;
  const hasStar = items.some((i) => i.star);
  const starOnly = n === 1 && hasStar;
  const starFirst = items[0]!.star;
  // Extending the parsed payload in place is safe only if no item can yield the payload itself
  // (`SELECT *, * AS copy` would otherwise make the output contain itself).
  const mayExtendPayload = !query.items.some((it) => it.kind === 'expr' && mentionsPayload(it.expr));
  // Values are computed before the output is assembled, because the output may be the payload
  // object itself (see below) and later items must still read the original values.
  const scratch: unknown[] = new Array(n);

  return (f) => {
    const doc = f.doc;
    if (doc instanceof BinaryDocument) {
      if (starOnly) return doc.bytes;
      if (hasStar) throw payloadNotJson('*');
    }
    if (starOnly) return isObject(doc) && !(f.run.ownsRoot && doc === f.run.root) ? { ...doc } : doc;

    for (let i = 0; i < n; i++) {
      const it = items[i]!;
      scratch[i] = it.star ? undefined : it.value(f);
    }
    let out: JsonObject;
    if (starFirst && isObject(doc)) {
      // A payload we parsed ourselves is not shared with anyone: extend it instead of copying.
      out = mayExtendPayload && f.run.ownsRoot && doc === f.run.root ? doc : { ...doc };
    } else {
      out = {};
    }
    for (let i = 0; i < n; i++) {
      const it = items[i]!;
      if (it.star) {
        if (i > 0 && isObject(doc)) for (const k of Object.keys(doc)) setMember(out, k, doc[k]);
        continue;
      }
      const v = scratch[i];
      scratch[i] = undefined;
      if (v === undefined) continue; // Undefined results are left out of the output
      const path = it.path;
      if (path.length === 1) setMember(out, path[0]!, v);
      else setPath(out, path, v);
    }
    return out;
  };
}

/** True when `*` appears anywhere in the expression, nested queries included. */
function mentionsPayload(e: Expr | undefined): boolean {
  if (!e) return false;
  switch (e.kind) {
    case 'payload':
      return true;
    case 'literal':
    case 'attribute':
      return false;
    case 'member':
      return mentionsPayload(e.object);
    case 'index':
      return mentionsPayload(e.object) || mentionsPayload(e.index);
    case 'unary':
      return mentionsPayload(e.operand);
    case 'binary':
      return mentionsPayload(e.left) || mentionsPayload(e.right);
    case 'call':
      return e.args.some(mentionsPayload);
    case 'cast':
      return mentionsPayload(e.value);
    case 'case':
      return mentionsPayload(e.subject) || e.whens.some((w) => mentionsPayload(w.when) || mentionsPayload(w.then)) || mentionsPayload(e.otherwise);
    case 'array':
      return e.items.some(mentionsPayload);
    case 'object':
      return e.entries.some((en) => mentionsPayload(en.value));
    case 'subquery':
      return (
        e.query.items.some((it) => it.kind === 'star' || mentionsPayload(it.expr)) ||
        mentionsPayload(e.query.from) ||
        mentionsPayload(e.query.where)
      );
  }
}

/** `AS a.b.c` builds nested objects; existing objects on the way are copied, never mutated. */
function setPath(out: JsonObject, path: readonly string[], value: unknown): void {
  let o = out;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    const existing = getMember(o, key);
    const next: JsonObject = isObject(existing) ? { ...existing } : {};
    setMember(o, key, next);
    o = next;
  }
  setMember(o, path[path.length - 1]!, value);
}

// ------------------------------------------------------------------------------------------------
// Payloads

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Parses payload bytes as JSON; anything that is not JSON becomes a BinaryDocument. */
export function parsePayload(bytes: Uint8Array): unknown {
  // Skip the exception path for payloads that cannot start a JSON document.
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  if (i === bytes.length || !JSON_START[bytes[i]!]) return new BinaryDocument(bytes);
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch {
    return new BinaryDocument(bytes);
  }
}

const JSON_START: readonly boolean[] = (() => {
  const t = new Array<boolean>(256).fill(false);
  for (const c of '{["-0123456789tfn') t[c.charCodeAt(0)] = true;
  return t;
})();

const BASIC_INGEST_PREFIX = '$aws/rules/';

/**
 * Basic Ingest topics (`$aws/rules/<rule>/...`) address one rule directly: returns the rule name
 * and the topic that topic() sees (prefix removed). Other topics come back unchanged.
 */
export function splitBasicIngest(topic: string): { topic: string; rule: string | undefined } {
  if (!topic.startsWith(BASIC_INGEST_PREFIX)) return { topic, rule: undefined };
  const rest = topic.slice(BASIC_INGEST_PREFIX.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? { topic: '', rule: rest } : { topic: rest.slice(slash + 1), rule: rest.slice(0, slash) };
}

/** Per-message state; the payload is parsed only when the statement reads it. */
export function makeRun(ctx: Partial<EvalContext>, topic: string, payload: unknown, needsDocument: boolean, options: EvalOptions = {}): Run {
  let bytes: Uint8Array | undefined;
  let root: unknown;
  let ownsRoot = false;
  if (payload instanceof Uint8Array) {
    bytes = payload;
    if (needsDocument) {
      root = parsePayload(payload);
      ownsRoot = true;
    }
  } else {
    root = payload;
  }
  return { ctx, topic, now: ctx.timestamp ?? Date.now(), bytes, root, ownsRoot, budget: options.budget };
}

/** True when evaluating needs the payload document (any attribute, `*` or nested query). */
export function usesDocument(query: Query): boolean {
  let found = false;
  const visitExpr = (e: Expr | undefined): void => {
    if (!e || found) return;
    switch (e.kind) {
      case 'attribute':
      case 'payload':
      case 'subquery':
        found = true;
        return;
      case 'literal':
        return;
      case 'member':
        return visitExpr(e.object);
      case 'index':
        visitExpr(e.object);
        return visitExpr(e.index);
      case 'unary':
        return visitExpr(e.operand);
      case 'binary':
        visitExpr(e.left);
        return visitExpr(e.right);
      case 'call':
        return e.args.forEach(visitExpr);
      case 'cast':
        return visitExpr(e.value);
      case 'case':
        visitExpr(e.subject);
        e.whens.forEach((w) => (visitExpr(w.when), visitExpr(w.then)));
        return visitExpr(e.otherwise);
      case 'array':
        return e.items.forEach(visitExpr);
      case 'object':
        return e.entries.forEach((en) => visitExpr(en.value));
    }
  };
  for (const item of query.items) {
    if (item.kind === 'star') return true;
    visitExpr(item.expr);
  }
  visitExpr(query.where);
  return found;
}

/** Lower-case names of every function the query calls, in order of first use. */
export function functionsUsed(query: Query): string[] {
  const names = new Set<string>();
  const visit = (e: Expr | undefined): void => {
    if (!e) return;
    switch (e.kind) {
      case 'call':
        names.add(e.name);
        return e.args.forEach(visit);
      case 'member':
        return visit(e.object);
      case 'index':
        visit(e.object);
        return visit(e.index);
      case 'unary':
        return visit(e.operand);
      case 'binary':
        visit(e.left);
        return visit(e.right);
      case 'cast':
        names.add('cast');
        return visit(e.value);
      case 'case':
        visit(e.subject);
        e.whens.forEach((w) => (visit(w.when), visit(w.then)));
        return visit(e.otherwise);
      case 'array':
        return e.items.forEach(visit);
      case 'object':
        return e.entries.forEach((en) => visit(en.value));
      case 'subquery':
        return visitQuery(e.query);
      default:
        return;
    }
  };
  const visitQuery = (q: Query): void => {
    for (const item of q.items) if (item.kind === 'expr') visit(item.expr);
    visit(q.from);
    visit(q.where);
  };
  visitQuery(query);
  return [...names];
}
