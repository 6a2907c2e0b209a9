/**
 * Lambda's Node.js runtimes and when Lambda deprecates each (then blocks creating, then updating, functions on
 * it). Source: the Lambda developer guide, "Lambda runtimes" (docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html),
 * tables "Supported runtimes" and "Deprecated runtimes", as of 2026-12; endoflife.date/aws-lambda mirrors it.
 * A date AWS had not published is absent. Update this table when AWS publishes new dates.
 */

export interface NodeRuntime {
  id: string;
  /** Node.js major version: the esbuild target (`node22`). */
  node: number;
  /** Deprecation: no more patches; then create and update are blocked. YYYY-MM-DD (UTC). */
  deprecation: string;
  blockCreate?: string;
  blockUpdate?: string;
}

export const NODE_RUNTIMES: readonly NodeRuntime[] = [
  { id: 'nodejs24.x', node: 24, deprecation: '2028-04-30', blockUpdate: '2028-07-01' },
  { id: 'nodejs22.x', node: 22, deprecation: '2027-04-30', blockUpdate: '2027-07-01' },
  { id: 'nodejs20.x', node: 20, deprecation: '2026-04-30', blockCreate: '2026-08-31', blockUpdate: '2026-09-30' },
  { id: 'nodejs18.x', node: 18, deprecation: '2025-09-01' },
  { id: 'nodejs16.x', node: 16, deprecation: '2024-06-12' },
  { id: 'nodejs14.x', node: 14, deprecation: '2023-12-04', blockCreate: '2024-01-09', blockUpdate: '2024-02-08' },
];

/** What every function gets unless the spec says otherwise. */
export const DEFAULT_RUNTIME = 'nodejs22.x';

/** A runtime that deprecates within this many days is warned about. */
export const DEPRECATION_WARNING_DAYS = 90;

export function nodeRuntime(id: string): NodeRuntime | undefined {
  return NODE_RUNTIMES.find((r) => r.id === id);
}

/** esbuild's target for a runtime: `nodejs24.x` -> `node24`. */
export function esbuildTarget(runtime: string): string {
  const r = nodeRuntime(runtime);
  return `node${r?.node ?? /\d+/.exec(runtime)?.[0] ?? 22}`;
}

const DAY = 86_400_000;

/** A runtime's standing on `now`: refused (deprecated, or unknown), warned (deprecates soon), or fine. */
export function runtimeProblem(id: string, now: Date = new Date()): { severity: 'error' | 'warning'; message: string; hint: string } | undefined {
  const supported = NODE_RUNTIMES.filter((r) => Date.parse(r.deprecation) > now.getTime()).map((r) => r.id);
  const r = nodeRuntime(id);
  if (!r) return { severity: 'error', message: `"${id}" is not a Lambda Node.js runtime iotctl knows`, hint: `Use one of: ${supported.join(', ')}.` };
  const deprecated = Date.parse(r.deprecation);
  const blocks = [r.blockCreate && `creating functions blocked from ${r.blockCreate}`, r.blockUpdate && `updating them from ${r.blockUpdate}`].filter(Boolean).join(', ');
  if (deprecated <= now.getTime()) {
    return { severity: 'error', message: `${id} is deprecated by Lambda since ${r.deprecation}${blocks ? ` (${blocks})` : ''}`, hint: `Use ${supported.join(' or ')}: set \`runtime:\` on the function, or remove it for the default ${DEFAULT_RUNTIME}.` };
  }
  const days = Math.ceil((deprecated - now.getTime()) / DAY);
  if (days <= DEPRECATION_WARNING_DAYS) {
    const newer = supported.filter((s) => nodeRuntime(s)!.node > r.node);
    return { severity: 'warning', message: `${id} is deprecated by Lambda on ${r.deprecation}, in ${days} day${days === 1 ? '' : 's'}${blocks ? ` (${blocks})` : ''}`, hint: newer.length ? `Move to ${newer.join(' or ')} before then.` : 'Plan the move to a newer runtime.' };
  }
  return undefined;
}
