import type { Context } from '../../../context.js';
import type { PlanItem } from '../../../iot/plan/index.js';
import type { ApplySection } from '../../../services/apply.js';
import { warn } from '../../../ui/output.js';
import { withStore, type Db } from '../store.js';
import { applyAnalytics, planAnalytics, reconcileStorage } from './apply.js';
import { lakeWriter } from './cli.js';
import { WriterLock } from './lock.js';
import { LakePaths } from './paths.js';

/**
 * The analytics section of `iotctl apply`: channels, datastores, pipelines and datasets. Planning
 * validates pipelines and dataset SQL; applying stores the configuration, which a running daemon picks
 * up at once. Data of pruned resources is deleted by the daemon, or here when it is not running.
 */
export function analyticsSection(ctx: Context): ApplySection {
  return {
    name: 'analytics',
    plan: (opts) =>
      withStore(ctx.paths.stateDir, async (db) => {
        const plan = await planAnalytics(db, ctx.paths.stateDir, ctx.spec.spec, opts);
        for (const w of plan.warnings) warn(w);
        return plan.items;
      }),
    apply: (items: PlanItem[]) =>
      withStore(ctx.paths.stateDir, (db) => {
        applyAnalytics(db, items);
        if (items.some((i) => i.action === 'delete')) removeDeletedData(db, ctx.paths.stateDir);
      }),
  };
}

/** Deletes pruned resources' data unless the daemon runs (it does so itself when it sees the change). */
export function removeDeletedData(db: Db, stateDir: string): void {
  if (lakeWriter(stateDir) !== undefined) return;
  const lock = new WriterLock(new LakePaths(stateDir).lockFile);
  if (!lock.tryAcquire().acquired) return;
  try {
    reconcileStorage(db, stateDir);
  } finally {
    lock.release();
  }
}
