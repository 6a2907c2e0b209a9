import type { Context } from '../../context.js';
import { UserError } from '../../ui/errors.js';
import { AwsClients } from './sdk.js';

/**
 * The aws target's adapters, assembled from one AwsClients (credentials, region, endpoint) shared by every
 * port. This module is imported lazily by openTarget(), so a local-target command never loads it.
 */
export function awsClients(ctx: Context, signal?: AbortSignal): AwsClients {
  return new AwsClients({ ...ctx.awsSettings, signal });
}

/** Fails with a clear message for a port the aws target does not implement yet. */
export function notOnAws(what: string): never {
  throw new UserError(`${what} is not available on the aws target yet.`, 'Run it on the local target (--target local).', 'TARGET_UNAVAILABLE');
}
