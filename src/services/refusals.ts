import { planRefusals, type PlanItem } from '../iot/plan/index.js';
import { UserError } from '../ui/errors.js';

/**
 * Refuses a plan with a change the target cannot make (an immutable field), after it was printed and before
 * anything is asked or applied (a dry run too): nothing is half-applied, and the message says how to fix it.
 */
export function assertApplicable(items: PlanItem[]): void {
  const refused = planRefusals(items);
  if (!refused.length) return;
  const lines = refused.map((r) => `${r.kind} ${r.name}: ${r.refusal.reason}`);
  const hints = [...new Set(refused.map((r) => r.refusal.hint))];
  throw new UserError(`The plan has ${refused.length === 1 ? 'a change' : `${refused.length} changes`} the target cannot make; nothing was applied.\n  ${lines.join('\n  ')}`, hints.join(' '), 'PLAN_REFUSED');
}
