import { setMaxListeners } from 'node:events';
import type { Context } from '../../context.js';
import type { Target } from '../../ports.js';
import { UserError } from '../../ui/errors.js';
import { AwsAnalytics } from './analytics/index.js';
import { channelDeliveryStreams } from './analytics/model.js';
import { AwsAthena } from './athena.js';
import { AwsDatabase } from './database.js';
import { AwsDevices } from './devices.js';
import { AwsFunctions } from './functions.js';
import { AwsRuleErrors } from './rule-errors.js';
import { AwsRules } from './rules.js';
import { AwsClients } from './sdk.js';
import { AwsStreams } from './stream.js';

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
 * Every port on AWS, over one AwsClients: each adapter loads its SDK clients on first use, so a command
 * pays only for the services it calls. close() cancels calls in flight (Ctrl-C) and frees the clients.
 */
export async function openAwsTarget(ctx: Context): Promise<Target> {
  const { spec } = ctx.spec;
  const abort = new AbortController();
  // Every call in flight listens on this one signal (Ctrl-C), far more than the default warning limit of 10.
  setMaxListeners(0, abort.signal);
  const clients = awsClients(ctx, abort.signal);
  const datalake =
    spec.analytics.engine === 'datalake'
      ? { channels: spec.analytics.channels.map((c) => c.name), streams: (channel: string, scope: { accountId: string; region: string }) => channelDeliveryStreams(spec, channel, scope) }
      : undefined;
  const rules = new AwsRules(clients, spec.project, datalake);
  const database = new AwsDatabase(clients, spec.database);
  return {
    name: 'aws',
    devices: new AwsDevices(clients),
    rules,
    ruleErrors: new AwsRuleErrors(clients, rules),
    streams: new AwsStreams(clients),
    functions: new AwsFunctions(clients, { project: spec.project, databaseEnvironment: () => database.functionEnvironment() }),
    database,
    lake: new AwsAthena(clients, spec.athena),
    analytics: new AwsAnalytics(clients, spec),
    running: () => true,
    async close() {
      abort.abort();
      clients.destroy();
    },
  };
}
