// Pratt parser for AWS IoT SQL (version 2016-03-23). Operator precedence lives in one table,
// BINARY_BP; function names and arities are checked here so that mistakes surface when a rule is
// compiled rather than when the first message arrives.

import type { BinaryOp, CastType, Expr, Query, SelectItem, Statement } from './ast.js';
import { SqlError, type SqlErrorCode } from './errors.js';
import { FUNCTIONS, suggestFunction } from './functions.js';
import { Lexer, type Token } from './lexer.js';
import { topicFilterProblem } from './topics.js';

/** Left binding power of each infix operator; higher binds tighter. All are left-associative. */
const BINARY_BP: Readonly<Record<string, { readonly bp: number; readonly op: BinaryOp }>> = {
  OR: { bp: 10, op: 'OR' },
  AND: { bp: 20, op: 'AND' },
  '=': { bp: 40, op: '=' },
  '<>': { bp: 40, op: '<>' },
  '!=': { bp: 40, op: '<>' },
  '<': { bp: 40, op: '<' },
  '<=': { bp: 40, op: '<=' },
  '>': { bp: 40, op: '>' },
  '>=': { bp: 40, op: '>=' },
  '+': { bp: 50, op: '+' },
  '-': { bp: 50, op: '-' },
  '*': { bp: 60, op: '*' },
  '/': { bp: 60, op: '/' },
  '%': { bp: 60, op: '%' },
};
/** NOT binds looser than comparisons (`NOT a = b` is `NOT (a = b)`), unary minus tighter than `*`. */
const NOT_BP = 30;
const NEGATE_BP = 70;
/** `.member` and `[index]` bind tightest of all. */
const POSTFIX_BP = 80;
/**
 * How deep an expression's syntax tree may be: each parenthesis, unary operator, call, literal or
 * nested query around it and each operator chained before it (`a + b + ...`) is one level. Parsing,
 * compiling and evaluating recurse once per level, so without a cap 20,000 parentheses overflow the
 * stack; no real rule comes near it.
 */
export const MAX_NESTING = 1000;

const CAST_TYPES: Readonly<Record<string, CastType>> = {
  string: 'string', nvarchar: 'string', text: 'string', ntext: 'string', varchar: 'string',
  int: 'int', integer: 'int',
  double: 'double',
  decimal: 'decimal',
  bool: 'boolean', boolean: 'boolean',
};

export function parseStatement(sql: string): Statement {
  const p = new Parser(new Lexer(sql), true);
  const stmt = p.statement();
  p.expectEnd();
  return stmt;
}

export function parseExpression(source: string): Expr {
  const p = new Parser(new Lexer(source));
  const first = p.lexer.peek();
  if (first.kind === 'eof') throw new SqlError('UNEXPECTED_END', 'Expected an expression', source, first.start);
  const expr = p.expression(0);
  p.expectEnd();
  return expr;
}

/**
 * Parses the expression of a `${...}` substitution starting at `start` (just after `${`) and
 * returns it with the offset just past the closing `}`.
 */
export function parseTemplateExpression(template: string, start: number): { expr: Expr; end: number } {
  const p = new Parser(new Lexer(template, start), true);
  const first = p.lexer.peek();
  if (first.kind === 'punct' && first.value === '}') {
    throw new SqlError('EMPTY_TEMPLATE_EXPRESSION', 'Empty substitution ${}', template, start - 2);
  }
  if (first.kind === 'eof') {
    throw new SqlError('UNTERMINATED_TEMPLATE', 'Substitution ${ has no closing }', template, start - 2);
  }
  const expr = p.expression(0);
  const close = p.lexer.next();
  if (close.kind === 'eof') throw new SqlError('UNTERMINATED_TEMPLATE', 'Substitution ${ has no closing }', template, start - 2);
  if (close.kind !== 'punct' || close.value !== '}') p.fail('UNEXPECTED_TOKEN', `Expected } to close the substitution but found ${describe(close)}`, close);
  return { expr, end: close.end };
}

class Parser {
  /** Set by the top-level FROM clause. */
  private topicFilter: string | undefined;
  /** Expressions being parsed right now, one inside the other. */
  private depth = 0;

  /**
   * `wholeDecimalsAreInts`: rule SQL (2016-03-23) and its substitution templates process a whole number
   * written as a Decimal (`10.0`) as an Int; standalone expressions (IoT Analytics filter/math
   * activities, `stream tail --where`) keep `4.0` a Decimal, so `hum / 4.0` is not an Int division.
   */
  constructor(readonly lexer: Lexer, private readonly wholeDecimalsAreInts = false) {}

  fail(code: SqlErrorCode, message: string, at: Token | number): never {
    if (typeof at !== 'number' && at.kind === 'eof' && code === 'UNEXPECTED_TOKEN') code = 'UNEXPECTED_END';
    throw new SqlError(code, message, this.lexer.source, typeof at === 'number' ? at : at.start);
  }

  expectEnd(): void {
    const t = this.lexer.peek();
    if (t.kind !== 'eof') this.fail('UNEXPECTED_TOKEN', `Unexpected ${describe(t)}`, t);
  }

  statement(): Statement {
    const select = this.lexer.peek();
    if (!isKeyword(select, 'SELECT')) this.fail('UNEXPECTED_TOKEN', `A rule must start with SELECT, found ${describe(select)}`, select);
    const query = this.query(false);
    return { query, topicFilter: this.topicFilter ?? '' };
  }

  /** Parses `SELECT [VALUE] items [FROM source] [WHERE cond]`, the current token being SELECT. */
  query(nested: boolean): Query {
    const select = this.lexer.next();
    let value = false;
    if (isKeyword(this.lexer.peek(), 'VALUE')) {
      this.lexer.next();
      value = true;
    }
    const items: SelectItem[] = [];
    do {
      items.push(this.selectItem(value, items.length + 1));
    } while (this.eatPunct(','));
    if (value && items.length > 1) this.fail('UNEXPECTED_TOKEN', 'SELECT VALUE takes exactly one expression', items[1]!.pos);

    let from: Expr | undefined;
    if (isKeyword(this.lexer.peek(), 'FROM')) {
      this.lexer.next();
      if (nested) {
        from = this.expression(0);
      } else {
        const t = this.lexer.next();
        if (t.kind !== 'string' || t.quote !== "'") {
          this.fail('UNEXPECTED_TOKEN', `FROM needs a topic filter in single quotes, e.g. FROM 'dt/+/telemetry'; found ${describe(t)}`, t);
        }
        const problem = topicFilterProblem(t.value);
        if (problem) this.fail('INVALID_TOPIC_FILTER', `Invalid topic filter '${t.value}': ${problem.message}`, t.start + 1 + problem.index);
        this.topicFilter = t.value;
      }
    } else if (nested) {
      this.fail('UNEXPECTED_TOKEN', `A nested SELECT needs FROM <attribute>, found ${describe(this.lexer.peek())}`, this.lexer.peek());
    }

    let where: Expr | undefined;
    if (isKeyword(this.lexer.peek(), 'WHERE')) {
      this.lexer.next();
      where = this.expression(0);
    }
    return { pos: select.start, value, items, from, where };
  }

  private selectItem(valueMode: boolean, position: number): SelectItem {
    const t = this.lexer.peek();
    if (t.kind === 'eof' || isKeyword(t, 'FROM') || isKeyword(t, 'WHERE')) {
      this.fail('UNEXPECTED_TOKEN', `Expected an expression after SELECT, found ${describe(t)}`, t);
    }
    let expr: Expr;
    if (!valueMode && t.kind === 'punct' && t.value === '*') {
      this.lexer.next();
      // `SELECT *` merges the payload into the output; `SELECT * AS data` nests it under a key.
      if (!isKeyword(this.lexer.peek(), 'AS')) return { kind: 'star', pos: t.start };
      expr = { kind: 'payload', pos: t.start };
    } else {
      expr = this.expression(0);
    }
    let alias: string[];
    if (isKeyword(this.lexer.peek(), 'AS')) {
      this.lexer.next();
      alias = [this.name('an alias after AS')];
      while (this.eatPunct('.')) alias.push(this.name('a name after . in the alias'));
    } else {
      alias = [defaultName(expr, position)];
    }
    return { kind: 'expr', pos: t.start, expr, alias };
  }

  /** An identifier, or a keyword used as a name (e.g. `AS value`, `state.desired.end`). */
  private name(what: string): string {
    const t = this.lexer.next();
    if (t.kind === 'ident') return t.value;
    if (t.kind === 'keyword') return this.lexer.source.slice(t.start, t.end);
    return this.fail('UNEXPECTED_TOKEN', `Expected ${what}, found ${describe(t)}`, t);
  }

  expression(minBp: number): Expr {
    const outer = this.depth;
    try {
      this.deeper(this.lexer.peek());
      let left = this.prefix();
      for (;;) {
        const t = this.lexer.peek();
        if (t.kind === 'punct' && (t.value === '.' || t.value === '[')) {
          if (POSTFIX_BP <= minBp) break;
          this.deeper(t);
          left = this.postfix(left);
          continue;
        }
        const key = t.kind === 'keyword' || t.kind === 'punct' ? t.value : undefined;
        const info = key !== undefined ? BINARY_BP[key] : undefined;
        if (!info || info.bp <= minBp) break;
        this.deeper(t);
        this.lexer.next();
        const right = this.expression(info.bp);
        left = { kind: 'binary', pos: t.start, op: info.op, left, right };
      }
      return left;
    } finally {
      this.depth = outer;
    }
  }

  /** One more level of the syntax tree, refused past MAX_NESTING (see there). */
  private deeper(at: Token): void {
    if (++this.depth > MAX_NESTING) {
      this.fail('TOO_DEEPLY_NESTED', `Expression nested more than ${MAX_NESTING} levels deep (parentheses, operators, calls or nested queries); split it up`, at);
    }
  }

  private postfix(object: Expr): Expr {
    const t = this.lexer.next();
    if (t.value === '.') {
      const nameTok = this.lexer.peek();
      const name = this.name('an attribute name after .');
      return { kind: 'member', pos: nameTok.start, object, name };
    }
    const index = this.expression(0);
    this.expectPunct(']', 'to close the index');
    return { kind: 'index', pos: t.start, object, index };
  }

  private prefix(): Expr {
    const t = this.lexer.next();
    switch (t.kind) {
      case 'number':
        // SQL 2016-03-23 processes a whole number written as a Decimal (`10.0`, `1e2`) as an Int
        // (Data types page): in rules only a literal with a fraction is Decimal-typed.
        return { kind: 'literal', pos: t.start, value: Number(t.value), decimal: /[.eE]/.test(t.value) && !(this.wholeDecimalsAreInts && Number.isInteger(Number(t.value))) };
      case 'string':
        return { kind: 'literal', pos: t.start, value: t.value };
      case 'ident':
        if (this.isPunct(this.lexer.peek(), '(')) return this.call(t);
        return { kind: 'attribute', pos: t.start, name: t.value };
      case 'keyword':
        switch (t.value) {
          case 'TRUE':
            return { kind: 'literal', pos: t.start, value: true };
          case 'FALSE':
            return { kind: 'literal', pos: t.start, value: false };
          case 'NULL':
            return { kind: 'literal', pos: t.start, value: null };
          case 'NOT':
            return { kind: 'unary', pos: t.start, op: 'NOT', operand: this.expression(NOT_BP) };
          case 'CASE':
            return this.caseExpr(t);
          case 'SELECT':
            return this.fail('UNEXPECTED_TOKEN', 'A nested SELECT must be wrapped in parentheses: (SELECT ... FROM ...)', t);
          case 'VALUE':
            // Only `SELECT VALUE` makes it a keyword; as an operand it is an attribute, as in AWS's
            // CloudWatch metric action example `"metricValue": "${value}"`.
            if (this.isPunct(this.lexer.peek(), '(')) break;
            return { kind: 'attribute', pos: t.start, name: this.lexer.source.slice(t.start, t.end) };
        }
        return this.fail('UNEXPECTED_TOKEN', `Expected an expression, found ${describe(t)}`, t);
      case 'punct':
        switch (t.value) {
          case '*':
            return { kind: 'payload', pos: t.start };
          case '-': {
            const operand = this.expression(NEGATE_BP);
            // Fold negative numeric literals so `-5` is a plain literal.
            if (operand.kind === 'literal' && typeof operand.value === 'number') {
              return { kind: 'literal', pos: t.start, value: operand.value === 0 ? 0 : -operand.value, decimal: operand.decimal };
            }
            return { kind: 'unary', pos: t.start, op: '-', operand };
          }
          case '(': {
            if (isKeyword(this.lexer.peek(), 'SELECT')) {
              const query = this.query(true);
              this.expectPunct(')', 'to close the nested SELECT');
              return { kind: 'subquery', pos: t.start, query };
            }
            const inner = this.expression(0);
            this.expectPunct(')', 'to close the parenthesis');
            return inner;
          }
          case '[':
            return this.arrayLiteral(t);
          case '{':
            return this.objectLiteral(t);
        }
        return this.fail('UNEXPECTED_TOKEN', `Expected an expression, found ${describe(t)}`, t);
      case 'eof':
        return this.fail('UNEXPECTED_END', 'Expected an expression, found end of input', t);
    }
  }

  private call(nameTok: Token): Expr {
    const name = nameTok.value.toLowerCase();
    this.lexer.next(); // (
    if (name === 'cast') return this.cast(nameTok);
    const spec = FUNCTIONS.get(name);
    if (!spec) {
      const hint = suggestFunction(name);
      this.fail('UNKNOWN_FUNCTION', `Unknown function ${nameTok.value}()${hint ? `; did you mean ${hint}()?` : ''}`, nameTok);
    }
    const args: Expr[] = [];
    if (!this.eatPunct(')')) {
      do args.push(this.expression(0));
      while (this.eatPunct(','));
      this.expectPunct(')', `to close the arguments of ${name}()`);
    }
    if (args.length < spec.minArgs || args.length > spec.maxArgs) {
      this.fail('WRONG_ARITY', `${name}() takes ${arityText(spec.minArgs, spec.maxArgs)} but was given ${args.length}`, nameTok);
    }
    return { kind: 'call', pos: nameTok.start, name, args };
  }

  private cast(nameTok: Token): Expr {
    const value = this.expression(0);
    const as = this.lexer.next();
    if (!isKeyword(as, 'AS')) this.fail('UNEXPECTED_TOKEN', `Expected AS in cast(value AS type), found ${describe(as)}`, as);
    const typeTok = this.lexer.next();
    const typeName = typeTok.value.toLowerCase();
    const type = typeTok.kind === 'ident' && Object.hasOwn(CAST_TYPES, typeName) ? CAST_TYPES[typeName] : undefined;
    if (!type) {
      this.fail('INVALID_CAST_TYPE', `Unknown cast type ${describe(typeTok)}; use one of String, Int, Integer, Decimal, Double, Bool, Boolean, Varchar, Nvarchar, Text, Ntext`, typeTok);
    }
    this.expectPunct(')', 'to close cast()');
    return { kind: 'cast', pos: nameTok.start, value, type };
  }

  private caseExpr(caseTok: Token): Expr {
    if (isKeyword(this.lexer.peek(), 'WHEN')) {
      this.fail(
        'UNSUPPORTED_SYNTAX',
        'AWS IoT SQL documents only CASE <value> WHEN ...; write CASE true WHEN <condition> THEN ... instead',
        this.lexer.peek(),
      );
    }
    const subject = this.expression(0);
    const whens: { when: Expr; then: Expr }[] = [];
    while (isKeyword(this.lexer.peek(), 'WHEN')) {
      this.lexer.next();
      const when = this.expression(0);
      const thenTok = this.lexer.next();
      if (!isKeyword(thenTok, 'THEN')) this.fail('UNEXPECTED_TOKEN', `Expected THEN, found ${describe(thenTok)}`, thenTok);
      whens.push({ when, then: this.expression(0) });
    }
    if (whens.length === 0) this.fail('UNEXPECTED_TOKEN', `CASE needs at least one WHEN, found ${describe(this.lexer.peek())}`, this.lexer.peek());
    let otherwise: Expr | undefined;
    if (isKeyword(this.lexer.peek(), 'ELSE')) {
      this.lexer.next();
      otherwise = this.expression(0);
    }
    const end = this.lexer.next();
    if (!isKeyword(end, 'END')) this.fail('UNEXPECTED_TOKEN', `Expected END to close CASE, found ${describe(end)}`, end);
    return { kind: 'case', pos: caseTok.start, subject, whens, otherwise };
  }

  private arrayLiteral(open: Token): Expr {
    const items: Expr[] = [];
    if (!this.eatPunct(']')) {
      do items.push(this.expression(0));
      while (this.eatPunct(','));
      this.expectPunct(']', 'to close the array');
    }
    return { kind: 'array', pos: open.start, items };
  }

  private objectLiteral(open: Token): Expr {
    const entries: { key: string; value: Expr }[] = [];
    if (!this.eatPunct('}')) {
      do {
        const k = this.lexer.next();
        let key: string;
        if (k.kind === 'string' || k.kind === 'ident') key = k.value;
        else if (k.kind === 'keyword') key = this.lexer.source.slice(k.start, k.end);
        else return this.fail('UNEXPECTED_TOKEN', `Expected an object key, found ${describe(k)}`, k);
        this.expectPunct(':', 'after the object key');
        entries.push({ key, value: this.expression(0) });
      } while (this.eatPunct(','));
      this.expectPunct('}', 'to close the object');
    }
    return { kind: 'object', pos: open.start, entries };
  }

  private isPunct(t: Token, value: string): boolean {
    return t.kind === 'punct' && t.value === value;
  }

  private eatPunct(value: string): boolean {
    if (!this.isPunct(this.lexer.peek(), value)) return false;
    this.lexer.next();
    return true;
  }

  private expectPunct(value: string, why: string): void {
    const t = this.lexer.next();
    if (!this.isPunct(t, value)) {
      this.fail(t.kind === 'eof' ? 'UNEXPECTED_END' : 'UNEXPECTED_TOKEN', `Expected ${value} ${why}, found ${describe(t)}`, t);
    }
  }
}

/** Output key for a SELECT item without AS: the attribute's own name, else `_<position>`. */
function defaultName(expr: Expr, position: number): string {
  if (expr.kind === 'attribute' || expr.kind === 'member') return expr.name;
  return `_${position}`;
}

function isKeyword(t: Token, kw: string): boolean {
  return t.kind === 'keyword' && t.value === kw;
}

function describe(t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'end of input';
    case 'string':
      return `string ${t.quote}${t.value}${t.quote}`;
    case 'keyword':
      return `keyword ${t.value}`;
    default:
      return `'${t.value}'`;
  }
}

function arityText(min: number, max: number): string {
  const n = (k: number) => `${k} argument${k === 1 ? '' : 's'}`;
  if (min === max) return n(min);
  if (max === Infinity) return `at least ${n(min)}`;
  return `${min} to ${max} arguments`;
}
