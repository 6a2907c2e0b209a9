// A time budget for evaluating one message. AWS IoT SQL regexes are Java regexes, which backtrack:
// a pattern such as '^(a+)+$' on a crafted string can run for minutes, and JavaScript's engine
// behaves the same. Patterns keep their Java-like semantics (backreferences, lookaround); instead
// the evaluation is bounded in time. The evaluator checks the deadline after every function call
// and between the elements of a nested query; a single native call that never returns (a
// backtracking regex) is stopped by V8's watchdog in runWithinBudget(). The clock is passed in, so
// the evaluator stays pure and tests can drive it.

import { Script, createContext, type Context } from 'node:vm';
import { SqlRuntimeError } from './errors.js';

/**
 * The budget the local target gives one rule's evaluation of one message. Real rules take
 * microseconds; AWS documents no limit, so this only has to be far above any legitimate evaluation
 * and short enough that other devices do not notice.
 */
export const DEFAULT_EVALUATION_BUDGET_MS = 100;

export interface EvaluationBudget {
  /** The budget in milliseconds, for error messages. */
  readonly ms: number;
  /** When the evaluation must have finished, on the `now` clock. */
  readonly deadline: number;
  readonly now: () => number;
  /** The function being called when the budget ran out (written by the evaluator). */
  at: string | undefined;
}

const monotonic = (): number => performance.now();

/** A budget of `ms` milliseconds from `start` (default: now; pass a reading you have to save a clock call). */
export function evaluationBudget(ms: number, now: () => number = monotonic, start = now()): EvaluationBudget {
  return { ms, deadline: start + ms, now, at: undefined };
}

export function budgetExceeded(budget: EvaluationBudget): SqlRuntimeError {
  const where = budget.at ? ` in ${budget.at}()` : '';
  const why = budget.at?.startsWith('regexp_') ? ': the regular expression backtracks catastrophically on this input' : '';
  return new SqlRuntimeError('EVALUATION_TIMEOUT', `SQL evaluation exceeded its ${budget.ms} ms time budget${where}${why}`, budget.at);
}

/** Throws EVALUATION_TIMEOUT once the deadline has passed. */
export function checkBudget(budget: EvaluationBudget): void {
  if (budget.now() > budget.deadline) throw budgetExceeded(budget);
}

let watchdog: { context: Context; script: Script; slot: { work: (() => unknown) | undefined } } | undefined;

/**
 * Runs `work`, and stops it after `ms` milliseconds even inside a native call that does not return
 * (V8's watchdog terminates the script; the process carries on). A stopped run throws
 * EVALUATION_TIMEOUT naming the function that `budget()`, the budget of the evaluation in
 * progress, was in. Starting the watchdog costs about 80 µs, so callers run many evaluations under
 * one watchdog rather than one each.
 */
export function runWithinBudget<T>(work: () => T, ms: number, budget: () => EvaluationBudget | undefined = () => undefined): T {
  if (!watchdog) {
    const slot: { work: (() => unknown) | undefined } = { work: undefined };
    watchdog = { slot, context: createContext({ slot }), script: new Script('slot.work()') };
  }
  const { slot, context, script } = watchdog;
  slot.work = work;
  try {
    return script.runInContext(context, { timeout: Math.max(1, Math.ceil(ms)) }) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') {
      throw budgetExceeded(budget() ?? evaluationBudget(ms));
    }
    throw e;
  } finally {
    slot.work = undefined;
  }
}
