import { setMaxListeners } from 'node:events';
import { join } from 'node:path';
import type { Context } from '../../context.js';
import type { Target } from '../../ports.js';
import { UserError } from '../../ui/errors.js';
import type { AnalyticsPort, DatabaseOpsPort, LogicalKind, DatabasePort, FunctionsPort, LakeQueryPort, RuleErrorsPort, RulesPort, ScheduledCheckPort, StreamPort } from '../../ports.js';
import { lazyPort } from '../lazy-port.js';
import { channelDeliveryStreams } from './analytics/model.js';
import { AwsDevices } from './devices.js';
import { databaseOpsNames, explicitNames, lakeDatabase, stageNames } from './naming.js';
import type { DatabaseRole } from '../../db/roles.js';
import { ownerOf } from './ownership.js';
import { AwsClients } from './sdk.js';
import { profileRegion, resolveRegion } from './region.js';
import { warn } from '../../ui/output.js';

type AwsDatabasePort = DatabasePort & { functionEnvironment(role?: DatabaseRole): Promise<Record<string, string>> };

/**
 * The aws target's adapters, assembled from one AwsClients (credentials, region, endpoint) shared by every
 * port. This module is imported lazily by openTarget(), so a local-target command never loads it.
 */
export function awsClients(ctx: Context, signal?: AbortSignal): AwsClients {
  const { profile, region: flag, endpointUrl } = ctx.options.aws ?? {};
  const { spec } = ctx.spec;
  const { region, warning } = resolveRegion({
    flag,
    // Only a region iotctl.yaml wrote (in the base or the stage's override), not the schema's default.
    spec: ctx.spec.written(['region']) ? spec.region : undefined,
    env: process.env,
    profile: flag ? undefined : profileRegion(profile),
  });
  if (warning && !warned.has(warning)) {
    warned.add(warning);
    warn(warning);
  }
  return new AwsClients({ profile, region, endpointUrl, account: spec.account, signal });
}
/** Each region warning once per command, however often the target is opened. */
const warned = new Set<string>();

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
  const owner = ownerOf(spec.project, ctx.stage, ctx.options.adopt);
  const names = stageNames({ project: spec.project, stage: ctx.stage }, explicitNames(spec));
  // The physical name of each kind commands name logically (one line per kind, as its adapter adopts stageNames).
  const physicalNames: Partial<Record<LogicalKind, (logical: string) => string>> = {
    rule: names.rule,
    stream: names.stream,
    function: names.function,
    policy: names.devicePolicy,
    'provisioning template': names.provisioningTemplate,
  };
  // The analytics engines and Athena name their resources by the command's stage.
  const stageSpec = { ...spec, stage: ctx.stage };
  const datalake =
    spec.analytics.engine === 'datalake'
      ? { channels: spec.analytics.channels.map((c) => c.name), streams: (channel: string, scope: { accountId: string; region: string }) => channelDeliveryStreams(stageSpec, channel, scope) }
      : undefined;
  // Each adapter module (and its SDK clients) loads on the port's first call: `device list` pays for IoT only.
  const declared = { rules: spec.rules.map((r) => r.name), streams: spec.streams.map((s) => s.name), functions: spec.functions.map((f) => f.name) };
  const rules = lazyPort<RulesPort>(() => import('./rules.js').then((m) => new m.AwsRules(clients, { owner, names, declared, datalake }))).port;
  const database = lazyPort<AwsDatabasePort>(() => import('./database.js').then((m) => new m.AwsDatabase(clients, spec.database, { roleSecretName: databaseOpsNames(names.scope, explicitNames(spec)).roleSecret }))).port;
  const functions = lazyPort<FunctionsPort>(() => import('./functions.js').then((m) => new m.AwsFunctions(clients, { project: spec.project, owner, names, databaseEnvironment: (role) => database.functionEnvironment(role) })), ['logs']).port;
  return {
    name: 'aws',
    devices: new AwsDevices(clients, { owner, names, policyName: spec.devices.policy.name }),
    rules,
    ruleErrors: lazyPort<RuleErrorsPort>(() => import('./rule-errors.js').then((m) => new m.AwsRuleErrors(clients, rules, names))).port,
    functions,
    streams: lazyPort<StreamPort>(() => import('./stream.js').then((m) => new m.AwsStreams(clients, { owner, physical: names.stream })), ['tail']).port,

    database,
    databaseOps: lazyPort<DatabaseOpsPort>(() =>
      Promise.all([import('./database-ops.js'), import('./database.js')]).then(
        ([m, d]) =>
          new m.AwsDatabaseOps(clients, spec, {
            owner,
            scope: names.scope,
            explicit: explicitNames(spec),
            functions,
            database: new d.AwsDatabase(clients, spec.database, { roleSecretName: databaseOpsNames(names.scope, explicitNames(spec)).roleSecret }),
            directSchemaVersion: () => directSchemaVersion(database),
            directMigrate: (passwords) => directMigrate(database, passwords),
          }),
      ),
    ).port,
    lake: lazyPort<LakeQueryPort>(() => import('./athena.js').then((m) => new m.AwsAthena(clients, { ...spec.athena, database: lakeDatabase(names.scope) }))).port,
    analytics: lazyPort<AnalyticsPort>(() => import('./analytics/index.js').then((m) => new m.AwsAnalytics(clients, stageSpec, { contentDir: join(ctx.paths.stateDir, 'aws', 'datasets') }))).port,
    scheduledCheck: lazyPort<ScheduledCheckPort>(() => import('./check-schedule.js').then((m) => new m.AwsScheduledCheck(clients, owner, () => database.functionEnvironment('reader')))).port,
    running: () => true,
    physicalName: (kind, logical) => physicalNames[kind]?.(logical) ?? logical,
    async close() {
      abort.abort();
      clients.destroy();
    },
  };
}

/**
 * The schema version over a direct connection, when the database answers within 2 s (a laptop outside the VPC
 * usually cannot reach RDS); undefined otherwise, and the database section asks the query function.
 */
async function directSchemaVersion(database: DatabasePort): Promise<number | undefined> {
  const { reachable } = await import('../../db/via.js');
  const location = await database.locate();
  if (!(await reachable(location))) return undefined;
  const { withClient } = await import('../../db/connection.js');
  return withClient(location, async (client) => {
    const { rows: exists } = await client.query<{ t: string | null }>("SELECT to_regclass('iotctl_schema_migrations')::text AS t");
    if (!exists[0]?.t) return 0;
    const { rows } = await client.query<{ v: number | null }>('SELECT COALESCE(max(version), 0) AS v FROM iotctl_schema_migrations');
    return Number(rows[0]?.v ?? 0);
  });
}

/** migrate() and the role passwords over a direct connection; false when the database does not answer from here. */
async function directMigrate(database: DatabasePort, passwords: Partial<Record<'writer' | 'reader', string>>): Promise<boolean> {
  const { reachable } = await import('../../db/via.js');
  const location = await database.locate();
  if (!(await reachable(location))) return false;
  const [{ withClient }, { migrate }, { setRoleLogin }] = await Promise.all([import('../../db/connection.js'), import('../../db/migrations.js'), import('../../db/roles.js')]);
  await withClient(location, async (client) => {
    await migrate(client);
    for (const [role, password] of Object.entries(passwords)) await setRoleLogin(client, role as 'writer' | 'reader', password);
  });
  return true;
}
