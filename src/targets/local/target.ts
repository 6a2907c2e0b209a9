import type { Context } from '../../context.js';
import type { DatabasePort, DeviceRegistryPort, Endpoint, FunctionsPort, RuleErrorRecord, RuleErrorsPort, RulesPort, StreamPort, Target } from '../../ports.js';
import type { LocalFunctionsPort } from './adapters/functions.js';
import type { LocalAnalyticsPort, LocalLakeQueryPort } from './adapters/lake.js';
import { lazyPort } from '../lazy-port.js';
import { readDaemonInfo } from './daemon-info.js';
import { embeddedRoleUrl, readEmbeddedCredentials, type DatabaseRole } from './db-credentials.js';
import { RulesStore } from './rules-store.js';
import type { Db } from './store.js';

/**
 * Every port over the embedded platform. The state store (and better-sqlite3) loads on first use, so a
 * command that only needs the database location (db, query) neither loads it nor creates `.iotctl/`.
 * Each port's module loads on its
 * first call, so a command pays start-up time only for the ports it uses (`rules list` never loads the
 * Lambda service, `device list` never the stream).
 */
export function openLocalTarget(ctx: Context): Target {
  const { stateDir } = ctx.paths;
  const spec = () => ctx.spec.spec;
  let store: Db | undefined;
  let storeModule: Promise<typeof import('./store.js')> | undefined;
  let openStore: typeof import('./store.js').openStore | undefined;
  /** Every port that uses the store awaits this before its first db() call. */
  const storeLoaded = async () => void (openStore ??= (await (storeModule ??= import('./store.js'))).openStore);
  const db = () => (store ??= openStore!(stateDir));
  const dbLoaded = async () => (await storeLoaded(), db());
  const daemon = () => readDaemonInfo(stateDir);
  const endpoint = (): Endpoint => daemon()?.mqtt ?? { host: spec().local.host, port: spec().local.mqttPort };
  const deps = { db, stateDir, spec };

  const functions = lazyPort<FunctionsPort, LocalFunctionsPort>(
    () =>
      Promise.all([import('./adapters/functions.js'), storeLoaded()]).then(
        ([m]) =>
          new m.LocalFunctionsPort({
            db,
            stateDir,
            region: spec().region,
            // The function's role's URL, built in memory (daemon.json holds no password).
            databaseUrl: (role) => process.env.DATABASE_URL ?? (daemon()?.databaseSource === 'embedded' ? embeddedUrl(stateDir, role) : undefined),
            running: () => daemon() !== undefined,
          }),
      ),
    ['logs'],
  );
  // DuckDB loads only for the lake's commands: it would add its load time to every other command.
  const lakeModule = () => Promise.all([import('./adapters/lake.js'), storeLoaded()]).then(([m]) => m);
  let lakePort: Promise<LocalLakeQueryPort> | undefined;
  const lake = () => (lakePort ??= lakeModule().then((m) => new m.LocalLakeQueryPort(deps)));
  const analytics = lazyPort<LocalAnalyticsPort>(() => lakeModule().then((m) => new m.LocalAnalyticsPort(deps))).port;
  return {
    name: 'local',
    // The PKI (x509) loads only for the device commands.
    devices: lazyPort<DeviceRegistryPort>(() => Promise.all([import('./devices.js'), storeLoaded()]).then(([m]) => new m.LocalDevices(db(), stateDir, endpoint))).port,
    rules: localRules(dbLoaded),
    ruleErrors: localRuleErrors(dbLoaded),
    streams: lazyPort<StreamPort>(() => Promise.all([import('./adapters/streams.js'), storeLoaded()]).then(([m]) => new m.LocalStreamPort({ db, region: spec().region })), ['tail']).port,
    functions: functions.port,
    database: localDatabase(ctx),
    lake: { run: async (sql, opts) => (await lake()).run(sql, opts), tables: async () => (await lake()).tables() },
    analytics,
    running: () => daemon() !== undefined,
    async close() {
      await (await functions.loaded())?.close();
      await (await lakePort)?.close();
      store?.close();
    },
  };
}

function embeddedUrl(stateDir: string, role: DatabaseRole): string | undefined {
  const credentials = readEmbeddedCredentials(stateDir);
  return credentials?.rolesVersion ? embeddedRoleUrl(credentials, role) : undefined;
}

function localRules(db: () => Promise<Db>): RulesPort {
  const store = async () => new RulesStore(await db());
  return {
    list: async () => (await store()).list(),
    get: async (name) => (await store()).get(name),
    put: async (rule) => (await store()).put(rule),
    delete: async (name) => (await store()).delete(name),
  };
}

function localRuleErrors(db: () => Promise<Db>): RuleErrorsPort {
  // Every failure is kept in the store, whether or not the rule has an errorAction.
  return { list: async (opts) => new RulesStore(await db()).errors(opts) as unknown as RuleErrorRecord[] };
}

/** DATABASE_URL, the PG* variables, database.url, else the running platform's embedded server. */
function localDatabase(ctx: Context): DatabasePort {
  // db/connection loads pg, which only the database's users need.
  return { locate: async (role) => (await import('../../db/connection.js')).resolveDatabaseUrl({ spec: () => ctx.spec.spec, stateDir: ctx.paths.stateDir, role }) };
}

