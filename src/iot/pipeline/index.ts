/** IoT Analytics pipeline activities: a pure, batch-oriented engine shared by the local and aws targets. */
export { compilePipeline, PipelineCompileError, referencedAttributes } from './engine.js';
export { validatePipeline, activityType, MAX_ACTIVITIES, DATASTORE_RESERVED_ATTRIBUTES, type ValidateOptions } from './validate.js';
export { parseSchedule, nextFireTime, fireTimesBetween, ScheduleError, type Schedule } from './schedule.js';
export { analyticsSpecCheck } from './spec-check.js';
export { getAttribute, selectAttributes, removeAttribute } from './attributes.js';
export type {
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
