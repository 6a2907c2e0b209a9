import type { Context } from '../../context.js';
import type { DatabasePort, Endpoint, RuleErrorRecord, RuleErrorsPort, RulesPort, Target } from '../../ports.js';
import { LocalFunctionsPort } from './adapters/functions.js';
import type { LocalAnalyticsPort, LocalLakeQueryPort } from './adapters/lake.js';
import { LocalStreamPort } from './adapters/streams.js';
import { readDaemonInfo } from './daemon-info.js';
import { RulesStore } from './rules-store.js';
import { openStore, type Db } from './store.js';

/**
 * Every port over the embedded platform. The state store opens on first use, so a command that only
 * needs the database location (db, query) does not create `.iotctl/`.
 */
export function openLocalTarget(ctx: Context): Target {
  const { stateDir } = ctx.paths;
  const spec = () => ctx.spec.spec;
  let store: Db | undefined;
  const db = () => (store ??= openStore(stateDir));
  const daemon = () => readDaemonInfo(stateDir);
  const endpoint = (): Endpoint => daemon()?.mqtt ?? { host: spec().local.host, port: spec().local.mqttPort };
  const deps = { db, stateDir, spec };

  const functions = new LocalFunctionsPort({
    db,
    stateDir,
    region: spec().region,
    databaseUrl: () => process.env.DATABASE_URL ?? daemon()?.databaseUrl,
    running: () => daemon() !== undefined,
  });
  // DuckDB loads only for the lake's commands: it would add its load time to every other command.
  const lakeModule = () => import('./adapters/lake.js');
  let lakePort: Promise<LocalLakeQueryPort> | undefined;
  const lake = () => (lakePort ??= lakeModule().then((m) => new m.LocalLakeQueryPort(deps)));
  const analytics = lazyPort<LocalAnalyticsPort>(() => lakeModule().then((m) => new m.LocalAnalyticsPort(deps)), ['migrate']);
  return {
    name: 'local',
    // The PKI (x509) loads only for the device commands.
    devices: lazyPort(() => import('./devices.js').then((m) => new m.LocalDevices(db(), stateDir, endpoint)), ['bulkConcurrency']),
    rules: localRules(db),
    ruleErrors: localRuleErrors(db),
    streams: new LocalStreamPort({ db, region: spec().region }),
    functions,
    database: localDatabase(ctx),
    lake: { run: async (sql, opts) => (await lake()).run(sql, opts), tables: async () => (await lake()).tables() },
    analytics,
    running: () => daemon() !== undefined,
    async close() {
      await functions.close();
      await (await lakePort)?.close();
      store?.close();
    },
  };
}

function localRules(db: () => Db): RulesPort {
  const store = () => new RulesStore(db());
  return {
    list: async () => store().list(),
    get: async (name) => store().get(name),
    put: async (rule) => store().put(rule),
    delete: async (name) => store().delete(name),
  };
}

function localRuleErrors(db: () => Db): RuleErrorsPort {
  // Every failure is kept in the store, whether or not the rule has an errorAction.
  return { list: async (opts) => new RulesStore(db()).errors(opts) as unknown as RuleErrorRecord[] };
}

/** DATABASE_URL, the PG* variables, database.url, else the running platform's embedded server. */
function localDatabase(ctx: Context): DatabasePort {
  // db/connection loads pg, which only the database's users need.
  return { locate: async () => (await import('../../db/connection.js')).resolveDatabaseUrl({ spec: () => ctx.spec.spec, stateDir: ctx.paths.stateDir }) };
}

/** A port whose module loads on its first call; every method of such a port returns a promise. */
/**
 * A port whose module loads on its first call. Every property is a method, except those named in
 * `absent`: optional members the local adapter does not have (a proxy cannot know that before loading).
 */
function lazyPort<P extends object>(load: () => Promise<P>, absent: readonly string[] = []): P {
  let loaded: Promise<P> | undefined;
  return new Proxy({} as P, {
    get: (_t, op) =>
      op === 'then' || absent.includes(String(op))
        ? undefined
        : (...args: unknown[]) => (loaded ??= load()).then((port) => (port as Record<PropertyKey, (...a: unknown[]) => unknown>)[op]!(...args)),
  });
}
