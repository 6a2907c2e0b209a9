import { compileExpression } from '../sql/index.js';
import { parseExpression } from '../sql/parser.js';
import { toBoolean } from '../sql/values.js';
import type { Expr } from '../sql/ast.js';
import { getAttribute, removeAttribute, selectAttributes } from './attributes.js';
import { activityType, validatePipeline } from './validate.js';
import type {
  Activity,
  ActivityProblem,
  ActivityType,
  CompiledPipeline,
  FailedMessage,
  JsonObject,
  PipelineDeps,
  PipelineMessage,
  ProcessResult,
  ThingDescription,
} from './types.js';

/** A pipeline that cannot run: every problem names the activity it is about. */
export class PipelineCompileError extends Error {
  override name = 'PipelineCompileError';
  constructor(readonly problems: ActivityProblem[]) {
    super(problems.map((p) => (p.activity >= 0 ? `activities[${p.activity}].${p.path}: ${p.message}` : p.message)).join('; '));
  }
}

/** A message in flight: the working body plus the message it came from (kept unchanged for failures). */
interface Working {
  id: string;
  receivedAt: number;
  body: JsonObject;
  source: PipelineMessage;
}

interface Sinks {
  filtered: PipelineMessage[];
  failed: FailedMessage[];
}

type Step = (batch: Working[], sinks: Sinks) => Working[] | Promise<Working[]>;

/**
 * Compiles IoT Analytics pipeline activities into a batch processor. Pure apart from the injected
 * dependencies (Lambda invocation, device registry), so the same code runs in the local daemon and,
 * later, inside a Firehose transformation Lambda on AWS.
 *
 * Each message either comes out (`out`), is dropped by a filter (`filtered`), or fails with a reason
 * and the index of the activity that failed (`failed`); none disappears.
 */
export function compilePipeline(activities: readonly Activity[], deps: PipelineDeps = {}): CompiledPipeline {
  const target = deps.target ?? 'local';
  const problems = validatePipeline(activities, { target });
  activities.forEach((activity, index) => {
    const type = activityType(activity);
    if (type === 'lambda' && !deps.invoke) problems.push({ activity: index, path: 'lambda', message: 'the lambda activity needs a function runner, and none was provided' });
    if (type === 'deviceRegistryEnrich' && !deps.lookupThing)
      problems.push({ activity: index, path: 'deviceRegistryEnrich', message: 'deviceRegistryEnrich needs the device registry, and none was provided' });
  });
  if (problems.length) throw new PipelineCompileError(problems);

  const steps = activities.map((activity, index) => compileStep(activity, index, deps));
  return {
    activities,
    async process(messages: readonly PipelineMessage[], opts: { inPlace?: boolean } = {}): Promise<ProcessResult> {
      const sinks: Sinks = { filtered: [], failed: [] };
      // Steps change bodies in place (nested paths copy on write), so each message gets a shallow copy first,
      // unless the caller parsed the bodies for this call and will not look at them again.
      let batch: Working[] = messages.map((m) => ({ id: m.id, receivedAt: m.receivedAt, body: opts.inPlace ? m.body : { ...m.body }, source: m }));
      for (const step of steps) {
        if (!batch.length) break;
        batch = await step(batch, sinks);
      }
      return { out: batch.map((w) => ({ id: w.id, receivedAt: w.receivedAt, body: w.body })), filtered: sinks.filtered, failed: sinks.failed };
    },
  };
}

function compileStep(activity: Activity, index: number, deps: PipelineDeps): Step {
  const fail = (sinks: Sinks, w: Working, type: ActivityType, reason: string) => sinks.failed.push({ message: w.source, reason, activity: index, activityType: type });

  if ('filter' in activity) {
    const expr = compileExpression(activity.filter.filter);
    return (batch, sinks) => {
      const kept: Working[] = [];
      for (const w of batch) {
        let result: unknown;
        try {
          result = expr.evaluate(w.body);
        } catch (e) {
          fail(sinks, w, 'filter', `filter "${activity.filter.filter}" failed: ${errorMessage(e)}`);
          continue;
        }
        // Like a rule's WHERE clause: only true (or "true") keeps the message; false, Null and Undefined drop it.
        if (toBoolean(result) === true) kept.push(w);
        else sinks.filtered.push(w.source);
      }
      return kept;
    };
  }

  if ('selectAttributes' in activity) {
    const names = activity.selectAttributes.attributes;
    return (batch) => {
      for (const w of batch) w.body = selectAttributes(w.body, names);
      return batch;
    };
  }

  if ('removeAttributes' in activity) {
    const names = activity.removeAttributes.attributes;
    if (names.every((n) => !n.includes('.'))) {
      // Top-level names: build the smaller object rather than `delete`, which leaves V8 objects slow.
      const drop = new Set(names);
      return (batch) => {
        for (const w of batch) if (names.some((n) => Object.prototype.hasOwnProperty.call(w.body, n))) w.body = omit(w.body, drop);
        return batch;
      };
    }
    return (batch) => {
      for (const w of batch) for (const name of names) removeAttribute(w.body, name);
      return batch;
    };
  }

  if ('addAttributes' in activity) {
    // AWS: each entry copies an existing attribute to a new name; the original stays.
    const mappings = Object.entries(activity.addAttributes.attributes);
    return (batch) => {
      for (const w of batch) {
        const values = mappings.map(([from]) => getAttribute(w.body, from));
        mappings.forEach(([, to], i) => {
          if (values[i] !== undefined) w.body[to] = values[i];
        });
      }
      return batch;
    };
  }

  if ('math' in activity) {
    const { attribute, math } = activity.math;
    const expr = compileExpression(math);
    const referenced = referencedAttributes(parseExpression(math));
    return (batch, sinks) => {
      const kept: Working[] = [];
      for (const w of batch) {
        let result: unknown;
        try {
          result = expr.evaluate(w.body);
        } catch (e) {
          fail(sinks, w, 'math', `math "${math}" for "${attribute}" failed: ${errorMessage(e)}`);
          continue;
        }
        if (typeof result === 'number' && Number.isFinite(result)) {
          w.body[attribute] = result;
          kept.push(w);
          continue;
        }
        if (result === undefined) {
          const missing = referenced.filter((name) => w.body[name] === undefined);
          fail(
            sinks,
            w,
            'math',
            missing.length
              ? `math "${math}" for "${attribute}" is Undefined: the message has no attribute ${missing.map((m) => `"${m}"`).join(', ')}`
              : `math "${math}" for "${attribute}" is Undefined (an operand has the wrong type)`,
          );
        } else fail(sinks, w, 'math', `math "${math}" for "${attribute}" gave ${describe(result)}, not a number`);
      }
      return kept;
    };
  }

  if ('lambda' in activity) {
    const { function: functionName, batchSize } = activity.lambda;
    const invoke = deps.invoke!;
    return async (batch, sinks) => {
      const out: Working[] = [];
      for (let start = 0; start < batch.length; start += batchSize) {
        const chunk = batch.slice(start, start + batchSize);
        let answer: unknown;
        try {
          answer = await invoke(functionName, chunk.map((w) => w.body));
        } catch (e) {
          for (const w of chunk) fail(sinks, w, 'lambda', `lambda function "${functionName}" failed: ${errorMessage(e)}`);
          continue;
        }
        if (!Array.isArray(answer)) {
          for (const w of chunk) fail(sinks, w, 'lambda', `lambda function "${functionName}" returned ${describe(answer)}, not an array of messages`);
          continue;
        }
        if (answer.length === chunk.length) {
          // Same count: the common enrich/transform case; the i-th answer is the i-th message.
          answer.forEach((body, i) => {
            const w = chunk[i]!;
            if (isJsonObject(body)) out.push({ ...w, body });
            else fail(sinks, w, 'lambda', `lambda function "${functionName}" returned ${describe(body)} at index ${i}, not a JSON object`);
          });
          continue;
        }
        // A different count: the function split or merged messages, so answers cannot be matched to inputs.
        // They take the last input's receive time and a derived id, so reprocessing replaces them too.
        const last = chunk[chunk.length - 1]!;
        answer.forEach((body, i) => {
          if (isJsonObject(body)) out.push({ id: `${last.id}#${i}`, receivedAt: last.receivedAt, body, source: last.source });
          else fail(sinks, last, 'lambda', `lambda function "${functionName}" returned ${describe(body)} at index ${i}, not a JSON object`);
        });
      }
      return out;
    };
  }

  if ('deviceRegistryEnrich' in activity) {
    const { attribute, thingName } = activity.deviceRegistryEnrich;
    const lookupThing = deps.lookupThing!;
    return async (batch, sinks) => {
      const kept: Working[] = [];
      // Messages of one batch mostly come from a few things: look each up once.
      const cache = new Map<string, ThingDescription | undefined>();
      for (const w of batch) {
        const name = getAttribute(w.body, thingName);
        if (typeof name !== 'string' || !name) {
          // As on AWS: without a thing name there is nothing to add; the message continues unchanged.
          kept.push(w);
          continue;
        }
        let thing: ThingDescription | undefined;
        try {
          if (cache.has(name)) thing = cache.get(name);
          else {
            thing = await lookupThing(name);
            cache.set(name, thing);
          }
        } catch (e) {
          fail(sinks, w, 'deviceRegistryEnrich', `looking up thing "${name}" failed: ${errorMessage(e)}`);
          continue;
        }
        if (thing) {
          const enrichment: JsonObject = { attributes: { ...thing.attributes }, thingName: thing.thingName };
          if (thing.thingTypeName !== undefined) enrichment.thingTypeName = thing.thingTypeName;
          w.body[attribute] = enrichment;
        }
        kept.push(w);
      }
      return kept;
    };
  }

  // Validation refuses deviceShadowEnrich on the local target; on aws the Firehose engine supplies it.
  throw new PipelineCompileError([{ activity: index, path: activityType(activity), message: `the ${activityType(activity)} activity is not supported by this engine` }]);
}

/** Top-level attribute names an expression reads (nested query bodies read their own elements). */
export function referencedAttributes(expr: Expr): string[] {
  const names = new Set<string>();
  const walk = (e: Expr | undefined): void => {
    if (!e) return;
    switch (e.kind) {
      case 'attribute':
        names.add(e.name);
        break;
      case 'member':
        walk(e.object);
        break;
      case 'index':
        walk(e.object);
        walk(e.index);
        break;
      case 'unary':
        walk(e.operand);
        break;
      case 'binary':
        walk(e.left);
        walk(e.right);
        break;
      case 'call':
        e.args.forEach(walk);
        break;
      case 'cast':
        walk(e.value);
        break;
      case 'case':
        walk(e.subject);
        for (const w of e.whens) {
          walk(w.when);
          walk(w.then);
        }
        walk(e.otherwise);
        break;
      case 'array':
        e.items.forEach(walk);
        break;
      case 'object':
        for (const entry of e.entries) walk(entry.value);
        break;
      case 'subquery':
        walk(e.query.from);
        break;
      default:
        break;
    }
  };
  walk(expr);
  return [...names];
}

function omit(body: JsonObject, drop: ReadonlySet<string>): JsonObject {
  const out: JsonObject = {};
  for (const key in body) if (!drop.has(key)) out[key] = body[key];
  return out;
}

function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 37) + '...' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
