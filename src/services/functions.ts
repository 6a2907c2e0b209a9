import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Spec } from '../spec/schema.js';
import { bundleTemplate, getTemplate } from './bundle.js';
import { DeploymentError, installArtifact, LocalFunctions, resolveDeployment, type DeployedFunction } from '../targets/local/functions.js';
import type { Db } from '../targets/local/store.js';
import { UserError } from '../ui/errors.js';

export type Deployment = ReturnType<typeof resolveDeployment>;

/** The spec's function (or the template's defaults) for `lambda deploy <template> [--name]`. */
export function planDeployment(spec: Spec, templateName: string, name?: string): Deployment & { templateName: string } {
  const template = getTemplate(templateName);
  try {
    return { ...resolveDeployment(spec, template, name), templateName: template.name };
  } catch (err) {
    if (err instanceof DeploymentError) throw new UserError(err.message, err.hint, 'DEPLOY_MISMATCH');
    throw err;
  }
}

/** Bundle the template and register (or update) the function; a running daemon picks it up at once. */
export async function deployFunction(db: Db, stateDir: string, spec: Spec, plan: Deployment & { templateName: string }) {
  const functionsDir = join(stateDir, 'functions');
  const buildDir = join(functionsDir, plan.name, `.build-${process.pid}`);
  try {
    const built = await bundleTemplate(plan.templateName, buildDir);
    const fns = new LocalFunctions(db, { region: spec.region });
    const previous = fns.get(plan.name);
    const artifactPath = installArtifact(functionsDir, plan.name, built, previous ? [previous.artifactPath] : []);
    const result = fns.register({
      name: plan.name,
      template: plan.templateName,
      artifactPath,
      sha256: built.sha256,
      handler: plan.handler,
      timeoutSeconds: plan.timeoutSeconds,
      memoryMb: plan.memoryMb,
      environment: plan.environment,
      eventSource: plan.eventSource,
    });
    return { result, artifactPath, sha256: built.sha256, bytes: built.bytes };
  } finally {
    rmSync(buildDir, { recursive: true, force: true });
  }
}

/** What apply compares: the settings and the bundled code's hash (bundles are deterministic). */
export async function desiredFunctionConfig(spec: Spec, fn: Spec['functions'][number]) {
  const plan = planDeployment(spec, fn.template, fn.name);
  const dir = mkdtempSync(join(process.env.TMPDIR ?? '/tmp', 'iotctl-bundle-'));
  try {
    const { sha256 } = await bundleTemplate(plan.templateName, dir);
    return functionConfig({ ...plan, template: plan.templateName, sha256 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function functionConfig(f: Pick<DeployedFunction, 'template' | 'sha256' | 'handler' | 'timeoutSeconds' | 'memoryMb' | 'environment' | 'eventSource'>) {
  return { template: f.template, sha256: f.sha256, handler: f.handler, timeoutSeconds: f.timeoutSeconds, memoryMb: f.memoryMb, environment: f.environment, eventSource: f.eventSource ?? null };
}
