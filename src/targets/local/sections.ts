import type { Context } from '../../context.js';
import { planResources, type PlanItem } from '../../iot/plan/index.js';
import type { ApplySection } from '../../services/apply.js';
import { deployFunction, desiredFunctionConfig, functionConfig, planDeployment } from '../../services/functions.js';
import { resolveDatabaseUrl, withClient } from '../../db/connection.js';
import { migrate, MIGRATIONS } from '../../db/migrations.js';
import { isUserError } from '../../ui/errors.js';
import { warn } from '../../ui/output.js';
import { LocalFunctions } from './functions.js';
import { analyticsSection } from './lake/section.js';
import { withStore } from './store.js';
import { actualStreamResources, desiredStreamResources, LocalStreams } from './stream.js';

/** The local target's sections between the device policy and the rules, in dependency order. */
export function localSections(ctx: Context): ApplySection[] {
  const { spec } = ctx.spec;

  const streams: ApplySection = {
    name: 'streams',
    plan: (opts) =>
      withStore(ctx.paths.stateDir, (db) => {
        const items = planResources(desiredStreamResources(spec), actualStreamResources(new LocalStreams(db).listStreams()), opts);
        for (const i of items) if (i.action === 'replace' && i.changes.some((c) => c.path === 'shards')) warn(`stream ${i.name}: changing the shard count recreates the local stream and discards its records.`);
        return items;
      }),
    apply: (items) =>
      withStore(ctx.paths.stateDir, (db) => {
        const local = new LocalStreams(db, { region: spec.region });
        for (const i of items) {
          // Retention changes in place; only a new shard count (no local resharding) recreates the stream.
          const reshard = i.action === 'replace' && i.changes.some((c) => c.path === 'shards');
          if (i.action === 'delete' || reshard) local.deleteStream(i.name);
          if (i.action === 'create' || i.action === 'replace') local.ensureStream({ name: i.name, ...(i.desired as { shards: number; retentionHours: number }) });
        }
      }),
  };

  const database: ApplySection = {
    name: 'database',
    async plan() {
      let target;
      try {
        target = resolveDatabaseUrl({ spec, stateDir: ctx.paths.stateDir });
      } catch (e) {
        if (!isUserError(e)) throw e;
        warn('No PostgreSQL server yet: the local platform migrates its database when it starts (`iotctl local up`).');
        return [];
      }
      const version = await withClient(target, async (client) => {
        const { rows } = await client.query<{ v: number | null }>("SELECT CASE WHEN to_regclass('iotctl_schema_migrations') IS NULL THEN 0 ELSE (SELECT COALESCE(max(version), 0) FROM iotctl_schema_migrations) END AS v");
        return Number(rows[0]?.v ?? 0);
      });
      const latest = Math.max(...MIGRATIONS.map((m) => m.version));
      const desired = [{ kind: 'database schema', name: target.display, config: { version: latest } }];
      return planResources(desired, version ? [{ kind: 'database schema', name: target.display, config: { version } }] : []);
    },
    async apply() {
      await withClient(resolveDatabaseUrl({ spec, stateDir: ctx.paths.stateDir }), (client) => migrate(client));
    },
  };

  const functions: ApplySection = {
    name: 'functions',
    async plan(opts) {
      const desired = [];
      for (const fn of spec.functions) desired.push({ kind: 'function', name: fn.name, config: await desiredFunctionConfig(spec, fn) });
      const actual = await withStore(ctx.paths.stateDir, (db) => new LocalFunctions(db).list().map((f) => ({ kind: 'function', name: f.name, config: functionConfig(f) })));
      return planResources(desired, actual, opts);
    },
    apply: (items: PlanItem[]) =>
      withStore(ctx.paths.stateDir, async (db) => {
        for (const i of items) {
          if (i.action === 'delete') new LocalFunctions(db).remove(i.name);
          if (i.action === 'create' || i.action === 'replace') {
            const fn = spec.functions.find((f) => f.name === i.name)!;
            await deployFunction(db, ctx.paths.stateDir, spec, planDeployment(spec, fn.template, fn.name));
          }
        }
      }),
  };

  return [streams, database, functions, analyticsSection(ctx)];
}
