import type { Context } from '../../context.js';
import type { AnalyticsPort, DatabasePort, DeviceRegistryPort, FunctionsPort, LakeQueryPort, RuleErrorsPort, RulesPort, StreamPort, Target } from '../../ports.js';
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

/**
 * Every port on AWS. Each adapter plugs in here as one line (e.g. `devices: new AwsDevices(clients)`);
 * until then a port fails on use with TARGET_UNAVAILABLE.
 */
export async function openAwsTarget(ctx: Context): Promise<Target> {
  const abort = new AbortController();
  const clients = awsClients(ctx, abort.signal);
  void clients;
  return {
    name: 'aws',
    devices: notYet<DeviceRegistryPort>('The device registry'),
    rules: notYet<RulesPort>('Topic rules'),
    ruleErrors: notYet<RuleErrorsPort>('Rule errors'),
    streams: notYet<StreamPort>('The stream'),
    functions: notYet<FunctionsPort>('Functions'),
    database: notYet<DatabasePort>('The database'),
    lake: notYet<LakeQueryPort>('Athena'),
    analytics: notYet<AnalyticsPort>('Analytics'), // issue 10
    running: () => true,
    async close() {
      abort.abort();
    },
  };
}

/** A placeholder port whose every operation fails with notOnAws(what); the lead replaces each with its adapter. */
function notYet<P extends object>(what: string): P {
  return new Proxy({} as P, { get: (_t, op) => (typeof op === 'string' && op !== 'then' ? () => notOnAws(what) : undefined) });
}
