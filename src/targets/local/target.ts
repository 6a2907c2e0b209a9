import type { Context } from '../../context.js';
import { resolveDatabaseUrl } from '../../db/connection.js';
import type { DatabasePort, Endpoint, RuleErrorRecord, RuleErrorsPort, RulesPort, Target } from '../../ports.js';
import { LocalFunctionsPort } from './adapters/functions.js';
import { LocalAnalyticsPort, LocalLakeQueryPort } from './adapters/lake.js';
import { LocalStreamPort } from './adapters/streams.js';
import { readDaemonInfo } from './daemon-info.js';
import { LocalDevices } from './devices.js';
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
  const lake = new LocalLakeQueryPort(deps);
  let devices: LocalDevices | undefined;
  return {
    name: 'local',
    get devices() {
      return (devices ??= new LocalDevices(db(), stateDir, endpoint));
    },
    rules: localRules(db),
    ruleErrors: localRuleErrors(db),
    streams: new LocalStreamPort({ db, region: spec().region }),
    functions,
    database: localDatabase(ctx),
    lake,
    analytics: new LocalAnalyticsPort(deps),
    running: () => daemon() !== undefined,
    async close() {
      await functions.close();
      await lake.close();
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
  return { locate: async () => resolveDatabaseUrl({ spec: () => ctx.spec.spec, stateDir: ctx.paths.stateDir }) };
}
