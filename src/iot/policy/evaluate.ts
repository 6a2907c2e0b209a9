/**
 * Policy evaluation, IAM style: a request is allowed when some statement allows it and none denies it.
 * An explicit Deny always wins; with no matching statement the answer is the implicit (default) deny.
 */
import { normalizeRequestResource } from './actions.js';
import { evaluateConditions, type ConditionOutcome } from './conditions.js';
import { statementsOf, type NormalizedStatement } from './document.js';
import type { PolicyDecision, PolicyDocument, PolicyRequest, StatementResult } from './types.js';
import { expandTemplate, RequestContext } from './variables.js';
import { matchArn, matchWildcard } from './wildcard.js';

interface Match {
  matched: boolean;
  reason: string;
}

const no = (reason: string): Match => ({ matched: false, reason });
const unresolvedReason = (variable: string) => `policy variable ${variable} cannot be resolved`;

function describeValue(actual: string | readonly string[] | undefined): string {
  if (actual === undefined) return 'not in request';
  if (typeof actual === 'string') return `request value: ${JSON.stringify(actual)}`;
  return actual.length === 0 ? 'not in request' : `request values: ${actual.map((v) => JSON.stringify(v)).join(', ')}`;
}

function conditionReason(outcome: Exclude<ConditionOutcome, { ok: true }>): string {
  if ('unresolved' in outcome) return unresolvedReason(outcome.unresolved);
  return `condition ${outcome.operator} ${outcome.key} is not met (${describeValue(outcome.actual)})`;
}

function matchStatement(statement: NormalizedStatement, action: string, resource: string, context: RequestContext): Match {
  const reasons: string[] = [];

  // Action names are case-insensitive and never hold variables.
  const lowerAction = action.toLowerCase();
  const actionIndex = statement.actions.tokens.findIndex((tokens) => matchWildcard(tokens, lowerAction));
  const actionPattern = statement.actions.patterns[actionIndex];
  if (statement.actions.not) {
    if (actionPattern !== undefined) return no(`action ${action} is excluded by NotAction "${actionPattern}"`);
    reasons.push(`NotAction does not exclude ${action}`);
  } else {
    if (actionPattern === undefined) return no(`action ${action} is not in Action`);
    reasons.push(`Action "${actionPattern}" matches`);
  }

  // Resources are case-sensitive; a pattern whose variable has no value matches nothing.
  let unresolved: string | undefined;
  const resourceIndex = statement.resources.templates.findIndex((template) => {
    const expanded = expandTemplate(template, context);
    if (!expanded.ok) {
      unresolved ??= expanded.unresolved;
      return false;
    }
    return matchArn(expanded.tokens, resource);
  });
  const resourcePattern = statement.resources.patterns[resourceIndex];
  if (statement.resources.not) {
    // An exclusion that cannot be worked out must not widen the statement: it does not apply at all.
    if (unresolved) return no(unresolvedReason(unresolved));
    if (resourcePattern !== undefined) return no(`resource ${resource} is excluded by NotResource "${resourcePattern}"`);
    reasons.push(`NotResource does not exclude ${resource}`);
  } else {
    if (resourcePattern === undefined) return no(unresolved ? unresolvedReason(unresolved) : `resource ${resource} is not in Resource`);
    reasons.push(`Resource "${resourcePattern}" matches`);
  }

  if (statement.condition) {
    const outcome = evaluateConditions(statement.condition, context);
    if (!outcome.ok) return no(conditionReason(outcome));
    reasons.push('Condition holds');
  }
  return { matched: true, reason: reasons.join('; ') };
}

function evaluateStatements(statements: readonly NormalizedStatement[], req: PolicyRequest, policy?: number): StatementResult[] {
  const context = new RequestContext(req);
  const resource = normalizeRequestResource(req.resource);
  return statements.map((statement) => {
    const { matched, reason } = matchStatement(statement, req.action, resource, context);
    return {
      index: statement.index,
      ...(policy !== undefined && { policy }),
      ...(statement.sid !== undefined && { sid: statement.sid }),
      effect: statement.effect,
      matched,
      reason,
    } satisfies StatementResult;
  });
}

function decide(statements: StatementResult[]): PolicyDecision {
  if (statements.some((s) => s.matched && s.effect === 'Deny')) return { decision: 'deny', reason: 'explicit-deny', statements };
  if (statements.some((s) => s.matched && s.effect === 'Allow')) return { decision: 'allow', reason: 'explicit-allow', statements };
  return { decision: 'deny', reason: 'implicit-deny', statements };
}

/**
 * Evaluates one policy document. `document` may be JSON text. Throws PolicyDocumentError when the
 * document cannot be evaluated at all (see validatePolicyDocument for the full list of checks).
 */
export function evaluatePolicy(document: PolicyDocument | string, req: PolicyRequest): PolicyDecision {
  return decide(evaluateStatements(statementsOf(document), req));
}

/**
 * Evaluates the policies attached to one principal together: an explicit Deny in any of them wins,
 * otherwise an Allow in any of them allows. Each result carries the index of its policy.
 */
export function evaluatePolicies(documents: ReadonlyArray<PolicyDocument | string>, req: PolicyRequest): PolicyDecision {
  // Read every document first, so that one broken policy fails the check instead of being skipped.
  const perPolicy = documents.map((document) => statementsOf(document));
  return decide(perPolicy.flatMap((statements, policy) => evaluateStatements(statements, req, policy)));
}
