import type { EventSourceSpec, FunctionSpec } from '../spec/schema.js';

/** What `lambda deploy` and `apply` deploy for a template and name, from iotctl.yaml; pure, for every target. */

/** A function of the spec (its runtime may be left to the default). */
export type FunctionEntry = Omit<FunctionSpec, 'runtime'> & { runtime?: string };

export interface TemplateDefaults {
  name: string;
  /** "index.handler" */
  handler: string;
  timeoutSeconds?: number;
  memoryMb?: number;
  environment: Record<string, string>;
}

/**
 * What `lambda deploy <template> [--name N]` registers: the spec's functions[] entry for that name (or the only
 * entry using the template) over the template's defaults. Throws a plain Error with a user-facing message when
 * the spec and the command disagree.
 */
export function resolveDeployment(
  spec: { functions: FunctionEntry[]; streams: Array<{ name: string }> },
  template: TemplateDefaults,
  name?: string,
): { name: string; entry?: FunctionEntry; handler: string; timeoutSeconds: number; memoryMb: number; environment: Record<string, string>; eventSource?: EventSourceSpec } {
  let entry: FunctionEntry | undefined;
  if (name) {
    entry = spec.functions.find((f) => f.name === name);
    if (entry && entry.template !== template.name)
      throw new DeploymentError(`iotctl.yaml declares function "${name}" with template "${entry.template}", not "${template.name}".`, `iotctl lambda deploy ${entry.template} --name ${name}`);
  } else {
    const using = spec.functions.filter((f) => f.template === template.name);
    if (using.length > 1)
      throw new DeploymentError(`iotctl.yaml declares ${using.length} functions with template "${template.name}": ${using.map((f) => f.name).join(', ')}.`, `Pick one: iotctl lambda deploy ${template.name} --name ${using[0]!.name}`);
    entry = using[0];
  }
  const handler = template.handler.includes('.') ? template.handler.slice(template.handler.lastIndexOf('.') + 1) : template.handler;
  if (entry?.eventSource && !spec.streams.some((s) => s.name === entry!.eventSource!.stream))
    throw new DeploymentError(`function "${entry.name}" reads stream "${entry.eventSource.stream}", which iotctl.yaml does not declare.`, 'Add it under `streams:` or fix functions[].eventSource.stream.');
  return {
    name: entry?.name ?? name ?? template.name,
    entry,
    handler,
    // The spec's values when the function is declared (zod filled its defaults); the template's otherwise.
    timeoutSeconds: entry?.timeoutSeconds ?? template.timeoutSeconds ?? 30,
    memoryMb: entry?.memoryMb ?? template.memoryMb ?? 256,
    environment: { ...template.environment, ...(entry?.environment ?? {}) },
    eventSource: entry?.eventSource,
  };
}

export class DeploymentError extends Error {
  override name = 'DeploymentError';
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

