import type { CheckProblem, SpecCheck } from '../../spec/checks.js';
import { parseSchedule, ScheduleError } from './schedule.js';
import { DATASTORE_RESERVED_ATTRIBUTES, validatePipeline } from './validate.js';

/**
 * Static checks of the `analytics` section, reported with spec paths (so `spec validate` shows file:line:col):
 * unique names, pipelines pointing at defined channels and datastores, valid activities (expressions,
 * attribute names, lambda functions defined under `functions`), and valid schedules.
 * Dataset SQL needs the lake's catalog, so `analytics apply` checks it.
 */
export const analyticsSpecCheck: SpecCheck = (spec) => {
  const problems: CheckProblem[] = [];
  const a = spec.analytics;
  const unique = (kind: 'channels' | 'pipelines' | 'datastores' | 'datasets') => {
    const seen = new Set<string>();
    a[kind].forEach((r, i) => {
      if (seen.has(r.name)) problems.push({ path: ['analytics', kind, i, 'name'], message: `"${r.name}" is defined twice in analytics.${kind}` });
      seen.add(r.name);
    });
  };
  unique('channels');
  unique('pipelines');
  unique('datastores');
  unique('datasets');
  const channels = a.channels.map((c) => c.name);
  const datastores = a.datastores.map((d) => d.name);
  const functions = spec.functions.map((f) => f.name);
  a.pipelines.forEach((p, i) => {
    if (!channels.includes(p.channel))
      problems.push({ path: ['analytics', 'pipelines', i, 'channel'], message: `channel "${p.channel}" is not defined`, hint: channels.length ? `defined channels: ${channels.join(', ')}` : 'add it under analytics.channels' });
    if (!datastores.includes(p.datastore))
      problems.push({ path: ['analytics', 'pipelines', i, 'datastore'], message: `datastore "${p.datastore}" is not defined`, hint: datastores.length ? `defined datastores: ${datastores.join(', ')}` : 'add it under analytics.datastores' });
    for (const problem of validatePipeline(p.activities, { target: spec.target, functions, reservedAttributes: DATASTORE_RESERVED_ATTRIBUTES }))
      problems.push({
        path: problem.activity >= 0 ? ['analytics', 'pipelines', i, 'activities', problem.activity, ...problem.path.split('.')] : ['analytics', 'pipelines', i, 'activities'],
        message: problem.message,
        hint: problem.hint,
      });
  });
  a.datasets.forEach((d, i) => {
    if (d.schedule) {
      try {
        parseSchedule(d.schedule);
      } catch (e) {
        if (e instanceof ScheduleError) problems.push({ path: ['analytics', 'datasets', i, 'schedule'], message: e.message });
        else throw e;
      }
    }
    if (d.deltaTime && !d.deltaTime.timeExpression.trim()) problems.push({ path: ['analytics', 'datasets', i, 'deltaTime', 'timeExpression'], message: 'is empty' });
  });
  return problems;
};
