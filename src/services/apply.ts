import type { Context } from '../context.js';
import { runSteps, type Step } from '../ui/tasks.js';
import { runGraph } from './graph.js';
import { withClient } from '../db/connection.js';
import { migrate, MIGRATIONS } from '../db/migrations.js';
import { applyOrder, diffFields, planResources, type FieldRule, type PlanItem, type Resource, type SectionItems } from '../iot/plan/index.js';
import type { LogicalKind, PhysicalIdentity, StreamSummary, Target } from '../ports.js';
import type { Spec } from '../spec/schema.js';
import { isUserError } from '../ui/errors.js';
import { warn } from '../ui/output.js';
import { desiredDevicePolicy } from './devices.js';
import { deployFunction, desiredFunctionConfig, functionConfig, planDeployment } from './functions.js';
import { applyRulePlan, planRules } from './rules.js';
import { applyProvisioning, planProvisioning } from './provisioning.js';

/** One section of iotctl.yaml that `iotctl apply` converges. */
export interface ApplySection {
  name: string;
  plan(opts: { prune?: boolean }): Promise<PlanItem[]>;
  /** `hooks.exists`: the section may say when what it creates exists, before it is ready (a stream CREATING). */
  apply(items: PlanItem[], hooks?: { exists?: () => void }): Promise<void>;
}

/**
 * Every section, in dependency order (what a rule or function names must exist before it), written once
 * against the target's ports: the same plan and diff on both targets.
 */
export function sections(ctx: Context, target: Target): ApplySection[] {
  const { spec } = ctx.spec;
  return [devicesSection(spec, target), streamsSection(spec, target), databaseSection(target), functionsSection(spec, target), provisioningSection(spec, target), analyticsSection(target), rulesSection(spec, target)];
}

/**
 * The device policy and, on aws, the stage's thing group. A policy an iotctl before stages made under the
 * bare spec name is moved: the stage's policy is created, and in the delete phase each certificate of the old
 * one gets the new one (its things join the group) before the old one is detached and deleted.
 */
function devicesSection(spec: Spec, target: Target): ApplySection {
  const devices = target.devices;
  const name = spec.devices.policy.name;
  return {
    name: 'devices',
    async plan() {
      const physical = physicalOf(target, 'policy', name);
      const desired: Resource[] = [{ kind: 'policy', name, config: desiredDevicePolicy(spec), ...physical }];
      // Thing groups and moved policies are the aws registry's (`devices` may be a lazy port: every member looks defined).
      if (target.name !== 'aws' || !devices.deployed) {
        const actual = await devices.getPolicy(name);
        return planResources(desired, actual ? [{ kind: 'policy', name, config: actual, ...physical }] : []);
      }
      const { policy, legacy, group } = await devices.deployed(name);
      desired.unshift({ kind: 'thing group', name: 'devices', config: {}, physical: group.physicalName });
      const actual: Resource[] = group.exists ? [{ ...desired[0]! }] : [];
      const current = policy ?? legacy;
      if (current) actual.push({ kind: 'policy', name, config: current.document, physical: current.physicalName });
      const items = planResources(desired, actual);
      const move = legacy && `made before stages: its ${legacy.certificates} certificate(s) get ${physical.physical} first (their things join ${group.physicalName}), then it is detached and deleted`;
      // The legacy name is the logical one, so planResources leaves `physical` off: the delete must name it.
      for (const i of items) if (i.action === 'delete' && i.kind === 'policy') Object.assign(i, { physical: legacy!.physicalName, note: move });
      // Both exist (a move stopped part-way): finish it.
      if (policy && legacy) items.push({ action: 'delete', kind: 'policy', name, changes: diffFields(legacy.document, undefined), actual: legacy.document, physical: legacy.physicalName, note: move });
      return items;
    },
    async apply(items) {
      for (const i of items) {
        if (i.kind === 'thing group' && i.action !== 'noop') await devices.ensureGroup!();
        if (i.kind !== 'policy') continue;
        if (i.action === 'create' || i.action === 'replace') await devices.putPolicy(i.name, i.desired as never);
        if (i.action === 'delete') await devices.deletePolicy!(i.name, i.physical);
      }
    },
  };
}

function streamsSection(spec: Spec, target: Target): ApplySection {
  return {
    name: 'streams',
    async plan(opts) {
      const desired = spec.streams.map((s) => ({ ...streamResource(s, target.name), ...physicalOf(target, 'stream', s.name) }));
      const actual = (await target.streams.list({ desired: spec.streams.map((s) => s.name) })).map((s) => ({ ...streamResource(s, target.name), ...listed(s) }));
      const items = planResources(desired, actual, opts);
      if (target.name === 'local')
        for (const i of items) if (i.action === 'replace' && i.changes.some((c) => c.path === 'shards')) warn(`stream ${i.name}: changing the shard count recreates the local stream and discards its records.`);
      return items;
    },
    async apply(items, hooks = {}) {
      for (const i of items) if (i.action === 'delete') await target.streams.delete(i.name, i.physical);
      const writes = items.filter((i) => i.action === 'create' || i.action === 'replace');
      // `exists` once every new stream exists (aws: CREATING), while each still waits to be ACTIVE.
      let missing = writes.filter((i) => i.action === 'create').length;
      if (!missing) hooks.exists?.();
      const existed = () => --missing === 0 && hooks.exists?.();
      const steps = writes.map((i) => ({
        id: i.name,
        after: [],
        run: () => {
          const s = spec.streams.find((x) => x.name === i.name)!;
          let once = i.action === 'create' ? existed : undefined;
          const onExists = () => (once?.(), (once = undefined));
          return target.streams.ensure({ name: s.name, shards: s.shards, retentionHours: s.retentionHours, mode: s.mode }, { onExists });
        },
      }));
      // On aws each stream waits for its own CREATING: several at once. The local streams are one broker's.
      await runGraph(steps, { limit: target.name === 'aws' ? 4 : 1 });
    },
  };
}

/**
 * What a stream's plan compares. An on-demand stream on AWS scales its shards itself, so only its mode and
 * retention are compared; the local stream is always provisioned, with the spec's shard count.
 */
export function streamResource(s: Pick<StreamSummary, 'name' | 'shards' | 'retentionHours'> & { mode?: 'provisioned' | 'on-demand' }, target: 'local' | 'aws'): Resource {
  // A stream holds records the ingest function may not have read yet: a rename keeps the old one (plan/index.ts).
  if (target === 'aws' && s.mode === 'on-demand') return { kind: 'stream', name: s.name, config: { mode: 'on-demand', retentionHours: s.retentionHours }, keepsData: true };
  return { kind: 'stream', name: s.name, config: { shards: s.shards, retentionHours: s.retentionHours }, keepsData: true };
}

/** The target's name for a declared resource, for plans (absent on the local target). */
export function physicalOf(target: Target, kind: LogicalKind, name: string): Pick<Resource, 'physical'> {
  const physical = target.physicalName?.(kind, name);
  return physical ? { physical } : {};
}

/** What a listed resource adds to its plan resource: its physical name, an old copy, tags an older iotctl lacked. */
export function listed(r: PhysicalIdentity & { name: string; adopt?: Record<string, string> }): Partial<Resource> {
  return { ...(r.physicalName ? { physical: r.physicalName } : {}), ...(r.retired ? { retired: true } : {}), ...(r.adopt ? { adopt: r.adopt } : {}) };
}

function databaseSection(target: Target): ApplySection {
  // aws: role secrets, the maintenance and query functions, the schedule; the schema through the maintenance function.
  const ops = target.databaseOps;
  if (ops) return { name: 'database', plan: () => ops.plan(), apply: (items) => ops.apply(items) };
  return {
    name: 'database',
    async plan() {
      let location;
      try {
        location = await target.database.locate();
      } catch (e) {
        // No database configured yet is a state to report; AWS failing (AccessDenied, expired credentials,
        // throttling: an AwsCallError, code AWS_*) is not, and must not turn into "nothing to plan".
        if (!isUserError(e) || e.code.startsWith('AWS_')) throw e;
        warn(target.name === 'local' ? 'No PostgreSQL server yet: the local platform migrates its database when it starts (`iotctl local up`).' : `${(e as Error).message} The database schema is not planned.`);
        return [];
      }
      const version = await withClient(location, async (client) => {
        // Two statements: PostgreSQL resolves every table a statement names, even in a CASE branch not taken.
        const { rows: exists } = await client.query<{ t: string | null }>("SELECT to_regclass('iotctl_schema_migrations')::text AS t");
        if (!exists[0]?.t) return 0;
        const { rows } = await client.query<{ v: number | null }>('SELECT COALESCE(max(version), 0) AS v FROM iotctl_schema_migrations');
        return Number(rows[0]?.v ?? 0);
      });
      const latest = Math.max(...MIGRATIONS.map((m) => m.version));
      const desired = [{ kind: 'database schema', name: location.display, config: { version: latest } }];
      return planResources(desired, version ? [{ kind: 'database schema', name: location.display, config: { version } }] : []);
    },
    async apply() {
      await withClient(await target.database.locate(), (client) => migrate(client));
    },
  };
}

/**
 * What Lambda fixes when it creates an event source mapping (UpdateEventSourceMapping takes neither): a change
 * deletes the mapping and creates it again, which the plan shows before it is confirmed.
 */
const replacesMapping = (why: string): FieldRule => ({ replaces: `the event source mapping (${why})` });
export const LAMBDA_MAPPING_FIXED: Record<string, FieldRule> = {
  'eventSource.stream': replacesMapping('the new one reads the new stream from its starting position'),
  'eventSource.startingPosition': replacesMapping('the new one starts reading at the new position: records may be read again, or skipped'),
  'eventSource.startingPositionTimestamp': replacesMapping('the new one starts reading at the new time: records may be read again, or skipped'),
};

function functionsSection(spec: Spec, target: Target): ApplySection {
  return {
    name: 'functions',
    async plan(opts) {
      const desired = [];
      const immutable = target.name === 'aws' ? { immutable: LAMBDA_MAPPING_FIXED } : {};
      for (const fn of spec.functions) desired.push({ kind: 'function', name: fn.name, config: await desiredFunctionConfig(spec, fn), ...physicalOf(target, 'function', fn.name), ...immutable });
      const actual = (await target.functions.list({ desired: spec.functions.map((f) => f.name) })).map((f) => ({ kind: 'function', name: f.name, config: functionConfig(f), ...listed(f) }));
      return planResources(desired, actual, opts);
    },
    async apply(items) {
      for (const i of items) {
        if (i.action === 'delete') await target.functions.remove(i.name, i.physical);
        if (i.action === 'create' || i.action === 'replace') {
          const fn = spec.functions.find((f) => f.name === i.name)!;
          await deployFunction(target.functions, planDeployment(spec, fn.template, fn.name));
        }
      }
    },
  };
}

/** devices.provisioning: after functions, since its pre-provisioning hook is one. */
function provisioningSection(spec: Spec, target: Target): ApplySection {
  return { name: 'provisioning', plan: () => planProvisioning(spec, target), apply: (items) => applyProvisioning(spec, target, items) };
}

/** Channels, datastores, pipelines and datasets; planning validates pipelines and dataset SQL. */
function analyticsSection(target: Target): ApplySection {
  return {
    name: 'analytics',
    async plan(opts) {
      const plan = await target.analytics.plan(opts);
      for (const w of plan.warnings) warn(w);
      return plan.items;
    },
    apply: (items) => target.analytics.apply(items),
  };
}

function rulesSection(spec: Spec, target: Target): ApplySection {
  return {
    name: 'rules',
    plan: (opts) => planRules(target.rules, spec, opts, (name) => target.physicalName?.('rule', name)),
    // On aws each rule waits for its own role to propagate: several at once. The local rules share one state file.
    apply: (items) => applyRulePlan(target.rules, items, { concurrency: target.name === 'aws' ? 4 : 1 }),
  };
}

export type SectionPlan = SectionItems;

/**
 * Read each section's state from the target and plan it: one step per section (see ui/tasks). The sections
 * only read, so they run at once (`runSteps(..., { concurrent: true })`); `out` keeps the sections' order.
 */
export function planSteps(all: ApplySection[], opts: { prune?: boolean }, out: SectionPlan[]): Step[] {
  return all.map((s, i) => ({
    title: `Read ${s.name}`,
    run: async () => {
      out[i] = { section: s.name, items: await s.plan(opts) };
    },
  }));
}

export async function planAll(all: ApplySection[], opts: { prune?: boolean }): Promise<SectionPlan[]> {
  const out: SectionPlan[] = [];
  await runSteps(planSteps(all, opts, out), 'quiet', { concurrent: true });
  return out;
}

/**
 * What each section's creates and updates wait for on aws: what its resources name must exist first. `after`:
 * the sections applied; `exists`: sections whose new resources need only exist (a topic rule names a Kinesis
 * stream, which may still be CREATING: IoT needs it only when the rule runs). A rule waits for the functions
 * section only when it invokes a function (the invoke permission is added to the function); provisioning's hook
 * is a function and its template names the device policy. Functions do not wait for the streams section: the
 * event source mapping itself waits for its stream to be ACTIVE (targets/aws/functions.ts), so the function's
 * role and Pending state overlap the stream's CREATING. Database and analytics make their own resources.
 */
export const AWS_NEEDS: Record<string, { after: string[]; exists?: string[] }> = {
  devices: { after: [] },
  streams: { after: [] },
  database: { after: [] },
  functions: { after: [] },
  analytics: { after: [] },
  provisioning: { after: ['devices', 'functions'] },
  rules: { after: ['analytics', 'functions'], exists: ['streams'] },
};

const invokesFunction = (items: PlanItem[]) =>
  items.some((i) => {
    const r = i.desired as { actions?: object[]; errorAction?: object } | undefined;
    return [...(r?.actions ?? []), ...(r?.errorAction ? [r.errorAction] : [])].some((a) => 'lambda' in a);
  });

/**
 * Two phases (applyOrder): creates and updates, then deletes in reverse order, so a stream outlives the rule that
 * writes to it. On aws the creates run as a graph (AWS_NEEDS): a section starts once what it needs is applied
 * (or exists), independent ones at once; elsewhere one after another in dependency order. Deletes run one by one
 * after every create. A failure starts nothing more (runSteps with `graph`).
 */
export function applySteps(all: ApplySection[], plans: SectionPlan[], target: 'local' | 'aws' = 'local'): Step[] {
  const ordered = all.map((s) => ({ section: s.name, items: plans.find((p) => p.section === s.name)?.items ?? [] }));
  const phases = applyOrder(ordered);
  const creates = phases.filter((p) => p.items[0]!.action !== 'delete').map((p) => p.section);
  // Per create step: settles when its section says its resources exist, or when it ends (rejects if it fails).
  const exists = new Map<string, { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void }>();
  for (const c of creates) {
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined); // awaited only by the steps that need it
    exists.set(c, { promise, resolve, reject });
  }
  const steps: Step[] = [];
  let previous: string | undefined;
  for (const { section, items } of phases) {
    const s = all.find((x) => x.name === section)!;
    const deletes = items[0]!.action === 'delete';
    const n = `${items.length} ${deletes ? 'deletion' : 'change'}${items.length === 1 ? '' : 's'}`;
    const id = `${deletes ? 'delete' : 'apply'}:${section}`;
    const title = `${deletes ? 'Prune' : 'Apply'} ${s.name} (${n})`;
    if (deletes) {
      steps.push({ id, title, after: previous?.startsWith('delete:') ? [previous] : creates.map((c) => `apply:${c}`), run: () => s.apply(items) });
      previous = id;
      continue;
    }
    const needs = AWS_NEEDS[section] ?? { after: creates.slice(0, creates.indexOf(section)) };
    let after: string[];
    let waitsFor: string[] = [];
    if (target === 'aws') {
      after = needs.after.filter((x) => creates.includes(x) && (section !== 'rules' || x !== 'functions' || invokesFunction(items)));
      waitsFor = (needs.exists ?? []).filter((x) => creates.includes(x) && !after.includes(x));
    } else after = previous ? [previous.slice('apply:'.length)] : []; // creates come first: previous is one
    const mine = exists.get(section)!;
    steps.push({
      id,
      title,
      after: after.map((x) => `apply:${x}`),
      // A step waiting for this one to exist must not wait forever.
      onSkip: () => mine.reject(new Error(`${section} was not applied: an earlier step failed`)),
      run: async (update) => {
        if (waitsFor.length) update(`waiting for ${waitsFor.join(', ')} to exist`);
        for (const w of waitsFor) await exists.get(w)!.promise;
        if (waitsFor.length) update('');
        try {
          await s.apply(items, { exists: mine.resolve });
          mine.resolve();
        } catch (e) {
          mine.reject(e);
          throw e;
        }
      },
    });
    previous = id;
  }
  return steps;
}
