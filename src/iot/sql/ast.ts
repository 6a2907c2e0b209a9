// Syntax tree of an IoT SQL statement. Every node records `pos`, the 0-based offset of its first
// character in the source, so compile errors (unknown function, wrong arity) can point at it and
// newuuid()/rand() can derive a per-call-site seed.

export type BinaryOp = 'OR' | 'AND' | '=' | '<>' | '<' | '<=' | '>' | '>=' | '+' | '-' | '*' | '/' | '%';
export type UnaryOp = 'NOT' | '-';

/** cast() target types, normalised: String/Nvarchar/Text/Ntext/Varchar -> string, Int/Integer -> int, ... */
export type CastType = 'string' | 'int' | 'decimal' | 'double' | 'boolean';

export type Expr =
  /** `decimal` marks number literals with a fractional value (`2.5`): they make `/` a Decimal division. `3.0` is an Int in SQL 2016-03-23. */
  | { readonly kind: 'literal'; readonly pos: number; readonly value: null | boolean | number | string; readonly decimal?: boolean }
  /** A top-level name, looked up in the current document (the payload, or the element in a nested query). */
  | { readonly kind: 'attribute'; readonly pos: number; readonly name: string }
  /** `*` used as a value, e.g. `encode(*, 'base64')`: the whole current document. */
  | { readonly kind: 'payload'; readonly pos: number }
  | { readonly kind: 'member'; readonly pos: number; readonly object: Expr; readonly name: string }
  | { readonly kind: 'index'; readonly pos: number; readonly object: Expr; readonly index: Expr }
  | { readonly kind: 'unary'; readonly pos: number; readonly op: UnaryOp; readonly operand: Expr }
  | { readonly kind: 'binary'; readonly pos: number; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }
  | { readonly kind: 'call'; readonly pos: number; readonly name: string; readonly args: readonly Expr[] }
  | { readonly kind: 'cast'; readonly pos: number; readonly value: Expr; readonly type: CastType }
  | {
      readonly kind: 'case';
      readonly pos: number;
      readonly subject: Expr;
      readonly whens: readonly { readonly when: Expr; readonly then: Expr }[];
      readonly otherwise: Expr | undefined;
    }
  | { readonly kind: 'array'; readonly pos: number; readonly items: readonly Expr[] }
  | { readonly kind: 'object'; readonly pos: number; readonly entries: readonly { readonly key: string; readonly value: Expr }[] }
  /** `(SELECT ... FROM <expr> [WHERE ...])`, a nested object query over an array or object. */
  | { readonly kind: 'subquery'; readonly pos: number; readonly query: Query };

export type SelectItem =
  | { readonly kind: 'star'; readonly pos: number }
  | {
      readonly kind: 'expr';
      readonly pos: number;
      readonly expr: Expr;
      /** Output key path: `AS a.b` gives ['a', 'b'] (nested output); no alias gives a derived name. */
      readonly alias: readonly string[];
    };

export interface Query {
  readonly pos: number;
  /** SELECT VALUE: the single item's value is the result, not an object. */
  readonly value: boolean;
  readonly items: readonly SelectItem[];
  /** Nested queries read FROM an expression; the top-level statement reads FROM a topic filter. */
  readonly from: Expr | undefined;
  readonly where: Expr | undefined;
}

export interface Statement {
  readonly query: Query;
  /** The topic filter in FROM, or '' when the statement has none (Basic Ingest only rules). */
  readonly topicFilter: string;
}

export type ExprKind = Expr['kind'];
