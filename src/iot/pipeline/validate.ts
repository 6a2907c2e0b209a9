import { compileExpression } from '../sql/index.js';
import { SqlError } from '../sql/errors.js';
import { inputAttributeProblem, outputAttributeProblem } from './attributes.js';
import type { Activity, ActivityProblem, ActivityType } from './types.js';

/** Datastore columns every row has (`dt` is the day partition); activities may not produce them. */
export const DATASTORE_RESERVED_ATTRIBUTES = ['dt', '__message_id', '__received_at'] as const;

/** AWS allows 25 activities per pipeline, counting the channel and datastore activities. */
export const MAX_ACTIVITIES = 23;

export function activityType(activity: Activity): ActivityType {
  return Object.keys(activity)[0] as ActivityType;
}

export interface ValidateOptions {
  target?: 'local' | 'aws';
  /** Known function names; lambda activities must name one. Omit to skip the check. */
  functions?: readonly string[];
  /** Attribute names the destination reserves (e.g. the datastore's `dt` partition); outputs may not use them. */
  reservedAttributes?: readonly string[];
}

/**
 * Apply-time validation of a pipeline's activities: expressions compile, attribute names are usable,
 * lambda activities name an existing function, and every activity is supported by the target.
 */
export function validatePipeline(activities: readonly Activity[], opts: ValidateOptions = {}): ActivityProblem[] {
  const problems: ActivityProblem[] = [];
  const reserved = new Set((opts.reservedAttributes ?? []).map((n) => n.toLowerCase()));
  if (activities.length > MAX_ACTIVITIES)
    problems.push({ activity: -1, path: 'activities', message: `a pipeline has at most ${MAX_ACTIVITIES} activities besides its channel and datastore (it has ${activities.length})` });

  const output = (index: number, path: string, name: string) => {
    const problem = outputAttributeProblem(name);
    if (problem) problems.push({ activity: index, path, message: `attribute name ${problem}` });
    else if (reserved.has(name.toLowerCase()))
      problems.push({ activity: index, path, message: `"${name}" is reserved by the datastore`, hint: `choose another attribute name than ${[...reserved].join(', ')}` });
  };
  const input = (index: number, path: string, name: string) => {
    const problem = inputAttributeProblem(name);
    if (problem) problems.push({ activity: index, path, message: `attribute ${problem}` });
  };
  const expression = (index: number, path: string, source: string, what: string) => {
    try {
      compileExpression(source);
    } catch (e) {
      if (e instanceof SqlError) problems.push({ activity: index, path, message: `invalid ${what}: ${e.format()}` });
      else throw e;
    }
  };

  activities.forEach((activity, i) => {
    if ('filter' in activity) expression(i, 'filter.filter', activity.filter.filter, 'filter expression');
    else if ('selectAttributes' in activity) activity.selectAttributes.attributes.forEach((a, j) => input(i, `selectAttributes.attributes[${j}]`, a));
    else if ('removeAttributes' in activity) activity.removeAttributes.attributes.forEach((a, j) => input(i, `removeAttributes.attributes[${j}]`, a));
    else if ('addAttributes' in activity) {
      const entries = Object.entries(activity.addAttributes.attributes);
      if (entries.length < 1 || entries.length > 50) problems.push({ activity: i, path: 'addAttributes.attributes', message: `maps 1 to 50 attributes (it maps ${entries.length})` });
      for (const [from, to] of entries) {
        input(i, `addAttributes.attributes.${from}`, from);
        output(i, `addAttributes.attributes.${from}`, to);
      }
    } else if ('math' in activity) {
      output(i, 'math.attribute', activity.math.attribute);
      expression(i, 'math.math', activity.math.math, 'math expression');
    } else if ('lambda' in activity) {
      if (opts.functions && !opts.functions.includes(activity.lambda.function))
        problems.push({
          activity: i,
          path: 'lambda.function',
          message: `function "${activity.lambda.function}" does not exist`,
          hint: opts.functions.length ? `define it under functions: (defined: ${opts.functions.join(', ')})` : 'define it under functions: in iotctl.yaml',
        });
    } else if ('deviceRegistryEnrich' in activity) {
      output(i, 'deviceRegistryEnrich.attribute', activity.deviceRegistryEnrich.attribute);
      input(i, 'deviceRegistryEnrich.thingName', activity.deviceRegistryEnrich.thingName);
    } else if ('deviceShadowEnrich' in activity) {
      if ((opts.target ?? 'local') === 'local')
        problems.push({
          activity: i,
          path: 'deviceShadowEnrich',
          message: 'deviceShadowEnrich is not supported on the local target: the local platform has no device shadows',
          hint: 'remove the activity, or deploy this pipeline with target: aws',
        });
      else {
        output(i, 'deviceShadowEnrich.attribute', activity.deviceShadowEnrich.attribute);
        input(i, 'deviceShadowEnrich.thingName', activity.deviceShadowEnrich.thingName);
      }
    }
  });
  return problems;
}
