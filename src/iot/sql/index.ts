// Public API of the IoT SQL engine (package subpath `iotctl/rules`): AWS IoT SQL version
// 2016-03-23 rules, expressions and substitution templates, evaluated locally with no I/O.

import type { EvalContext, EvalOptions, Frame } from './context.js';
import { SqlError, SqlRuntimeError } from './errors.js';
import {
  compileExpr, compileRow, functionsUsed, makeRun, splitBasicIngest, usesDocument,
} from './evaluator.js';
import { EXTERNAL_FUNCTIONS, SQL_VERSION } from './functions.js';
import { parseExpression, parseStatement } from './parser.js';
import { compileTopicMatcher, topicMatches, validateTopicFilter } from './topics.js';
import { toBoolean } from './values.js';

export type { EvalContext, EvalOptions } from './context.js';
export type { EvaluationBudget } from './budget.js';
export { DEFAULT_EVALUATION_BUDGET_MS, evaluationBudget, runWithinBudget } from './budget.js';
export { MAX_NESTING } from './parser.js';
export type { CompiledTemplate } from './templates.js';
export type { SqlErrorCode, SqlRuntimeErrorCode } from './errors.js';
export { SqlError, SqlRuntimeError, topicMatches, validateTopicFilter, SQL_VERSION };
export { compileTemplate, renderTemplate } from './templates.js';

export interface CompiledRule {
  readonly sql: string;
  /** The FROM topic filter; '' for a rule without FROM (reachable only through Basic Ingest). */
  readonly topicFilter: string;
  /** Lower-case names of the functions the statement calls. */
  readonly functions: readonly string[];
  /** Functions that need another AWS service, so evaluating them locally throws NOT_SUPPORTED_LOCALLY. */
  readonly unsupportedLocally: readonly string[];
  /**
   * True when the rule would receive a message on `topic`: the FROM filter matches it, or it is a Basic
   * Ingest topic `$aws/rules/<ruleName>/<t>` whose <t> the FROM filter matches (any <t> without FROM).
   */
  matches(topic: string, ruleName?: string): boolean;
  /**
   * The rule's output for one message: an object, the value itself for SELECT VALUE, or the raw
   * bytes for `SELECT *` over a non-JSON payload. `undefined` when FROM or WHERE rejects the message.
   * Throws SqlRuntimeError when the rule cannot be evaluated (see its `code`), EVALUATION_TIMEOUT
   * when it runs past `options.budget` (pair with runWithinBudget() to stop a runaway regex too).
   */
  evaluate(ctx: EvalContext, options?: EvalOptions): unknown;
}

export interface CompiledExpression {
  readonly expression: string;
  /** Evaluates over a JSON document (or raw payload bytes); SQL Undefined is returned as `undefined`. */
  evaluate(doc: unknown, ctx?: Partial<EvalContext>, options?: EvalOptions): unknown;
}

/** Compiles a rule statement. Throws SqlError (with position) on syntax errors, unknown functions or wrong arity. */
export function compileRule(sql: string): CompiledRule {
  const stmt = parseStatement(sql);
  const { query, topicFilter } = stmt;
  const where = query.where ? compileExpr(query.where) : undefined;
  const row = compileRow(query);
  const needsDocument = usesDocument(query);
  const matchesFilter = topicFilter ? compileTopicMatcher(topicFilter) : () => false;
  const functions = functionsUsed(query);

  // Basic Ingest (`$aws/rules/<rule>/<topic>`) addresses the named rule only; its FROM filter, when it
  // has one, is matched against <topic>, the topic without the prefix. A rule without FROM is reachable
  // only this way, and takes every Basic Ingest message sent to it.
  const matchesIngest = (ingest: { topic: string; rule: string | undefined }, ruleName: string | undefined): boolean =>
    ruleName !== undefined && ingest.rule === ruleName && (!topicFilter || matchesFilter(ingest.topic));

  const matches = (topic: string, ruleName?: string): boolean => {
    const ingest = splitBasicIngest(topic);
    return ingest.rule !== undefined ? matchesIngest(ingest, ruleName) : matchesFilter(topic);
  };

  return {
    sql,
    topicFilter,
    functions,
    unsupportedLocally: functions.filter((f) => EXTERNAL_FUNCTIONS.includes(f)),
    matches,
    evaluate(ctx: EvalContext, options?: EvalOptions): unknown {
      if (typeof ctx?.topic !== 'string') throw new SqlRuntimeError('INVALID_CONTEXT', 'evaluate() needs ctx.topic (the topic the message was published to)');
      if (typeof ctx.payload !== 'object' || ctx.payload === null) {
        throw new SqlRuntimeError('INVALID_CONTEXT', 'evaluate() needs ctx.payload (the payload bytes, or a parsed JSON object)');
      }
      const ingest = splitBasicIngest(ctx.topic);
      if (ingest.rule !== undefined ? !matchesIngest(ingest, ctx.ruleName) : !matchesFilter(ctx.topic)) return undefined;
      const run = makeRun(ctx, ingest.topic, ctx.payload, needsDocument, options);
      const frame: Frame = { doc: run.root, run };
      if (where !== undefined && toBoolean(where(frame)) !== true) return undefined;
      return row(frame);
    },
  };
}

/**
 * Compiles one IoT SQL expression (as used in WHERE clauses, IoT Analytics `filter`/`math`
 * activities and `stream tail --where`). Attribute names resolve against the document passed to
 * evaluate(); functions such as topic() read the optional context.
 */
export function compileExpression(expression: string): CompiledExpression {
  const evaluator = compileExpr(parseExpression(expression));
  return {
    expression,
    evaluate(doc: unknown, ctx: Partial<EvalContext> = {}, options?: EvalOptions): unknown {
      const topic = typeof ctx.topic === 'string' ? splitBasicIngest(ctx.topic).topic : '';
      const run = makeRun(ctx, topic, doc, true, options);
      return evaluator({ doc: run.root, run });
    },
  };
}
