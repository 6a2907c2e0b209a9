import type { ActivitySpec } from '../../spec/schema.js';

/** A JSON object message as IoT Analytics activities see it. */
export type JsonObject = { [key: string]: unknown };

export type Activity = ActivitySpec;
export type ActivityType = Activity extends infer A ? (A extends unknown ? keyof A & string : never) : never;

/**
 * One message travelling through a pipeline. `id` and `receivedAt` come from the channel and stay with the
 * message through every activity, so the datastore can record where each row came from.
 */
export interface PipelineMessage {
  id: string;
  /** Channel ingress time, ms since epoch. */
  receivedAt: number;
  body: JsonObject;
}

/** What deviceRegistryEnrich adds under its attribute (the DescribeThing fields IoT Analytics copies). */
export interface ThingDescription {
  thingName: string;
  thingTypeName?: string;
  attributes: Record<string, string>;
}

export interface PipelineDeps {
  /**
   * The lambda activity: invokes a function synchronously with an array of messages and returns the array
   * it answered with (AWS IoT Analytics' contract for pipeline Lambdas).
   */
  invoke?: (functionName: string, messages: JsonObject[]) => Promise<unknown>;
  /** The device registry for deviceRegistryEnrich; undefined when the thing does not exist. */
  lookupThing?: (thingName: string) => ThingDescription | undefined | Promise<ThingDescription | undefined>;
  /** deviceShadowEnrich needs device shadows, which only the aws target has. */
  target?: 'local' | 'aws';
}

export interface FailedMessage {
  /** The message as it entered the pipeline (unchanged), so it can be inspected and reprocessed. */
  message: PipelineMessage;
  reason: string;
  /** Index of the activity in the pipeline's `activities` list. */
  activity: number;
  activityType: ActivityType;
}

export interface ProcessResult {
  out: PipelineMessage[];
  /** Messages a filter activity dropped (AWS drops them silently; we count them). */
  filtered: PipelineMessage[];
  failed: FailedMessage[];
}

export interface CompiledPipeline {
  readonly activities: readonly Activity[];
  /**
   * Runs the activities over a batch. `inPlace` lets activities change the given bodies instead of
   * copying them first (for callers that parsed the bodies for this call only).
   */
  process(messages: readonly PipelineMessage[], opts?: { inPlace?: boolean }): Promise<ProcessResult>;
}

/** A problem found while validating a pipeline, pointing at one activity. */
export interface ActivityProblem {
  /** Index in `activities`; -1 for the pipeline as a whole. */
  activity: number;
  /** Path inside the activity, e.g. `math.attribute`. */
  path: string;
  message: string;
  hint?: string;
}
