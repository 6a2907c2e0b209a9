import type { Context } from '../context.js';
import type { Target } from '../ports.js';

export type { Target } from '../ports.js';

/**
 * Every port of the selected target (--target, IOTCTL_TARGET, else iotctl.yaml). Commands and services
 * reach a target only through this. The aws adapters (and the SDK) are imported only for the aws target,
 * so a local command never loads them; the local ones only for local, so an aws command skips SQLite.
 */
export async function openTarget(ctx: Context): Promise<Target> {
  await ctx.prepare(); // done by every command already; here for a Context made elsewhere (tests, services)
  if (ctx.targetName === 'aws') {
    const { openAwsTarget } = await import('./aws/index.js');
    return openAwsTarget(ctx);
  }
  const { openLocalTarget } = await import('./local/target.js');
  return openLocalTarget(ctx);
}

/** Open the target, run fn, and always close it (connections, warm function workers, the state store). */
export async function withTarget<T>(ctx: Context, fn: (target: Target) => Promise<T>): Promise<T> {
  const target = await openTarget(ctx);
  try {
    return await fn(target);
  } finally {
    await target.close();
  }
}
