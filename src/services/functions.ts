import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FunctionArtifact, FunctionDeployment, FunctionsPort, FunctionSummary } from '../ports.js';
import type { Spec } from '../spec/schema.js';
import { maskEnvironment } from '../spec/env-secrets.js';
import { bundleDigest, bundleTemplate, getTemplate, LAMBDA_RUNTIME } from './bundle.js';
import { DeploymentError, resolveDeployment } from './deployment.js';
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

/** Bundles the template into a temporary directory, runs fn with the artifact, then removes it. */
export async function withArtifact<T>(templateName: string, fn: (artifact: FunctionArtifact) => Promise<T>, runtime?: string): Promise<T> {
  const dir = mkdtempSync(join(process.env.TMPDIR ?? '/tmp', 'iotctl-bundle-'));
  try {
    const built = await bundleTemplate(templateName, dir, runtime);
    return await fn({ dir, entry: 'index.js', sha256: built.sha256, bytes: built.bytes });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Bundle the template and deploy it on the target; deploying the same bundle and settings again changes nothing. */
export async function deployFunction(functions: FunctionsPort, plan: Deployment & { templateName: string }, progress?: (step: string) => void) {
  return withArtifact(plan.templateName, async (artifact) => {
    const result = await functions.deploy(toDeployment(plan, artifact), progress);
    const deployed = await functions.get(plan.name);
    return { result, sha256: artifact.sha256, bytes: artifact.bytes, location: deployed?.location };
  }, plan.entry?.runtime);
}

function toDeployment(plan: Deployment & { templateName: string }, artifact: FunctionArtifact): FunctionDeployment {
  return {
    name: plan.name,
    template: plan.templateName,
    handler: plan.handler,
    timeoutSeconds: plan.timeoutSeconds,
    memoryMb: plan.memoryMb,
    environment: plan.environment,
    eventSource: plan.eventSource,
    vpc: plan.entry?.vpc,
    roleArn: plan.entry?.roleArn,
    ...(plan.entry?.runtime ? { runtime: plan.entry.runtime } : {}),
    ...(plan.entry?.allowPlaintextSecrets?.length ? { allowPlaintextSecrets: plan.entry.allowPlaintextSecrets } : {}),
    artifact,
  };
}

/** What apply compares: the settings and the bundled code's hash (bundles are deterministic). */
export async function desiredFunctionConfig(spec: Spec, fn: Spec['functions'][number]) {
  const plan = planDeployment(spec, fn.template, fn.name);
  // The runtime is compared on aws only: the local runner has one Node.js, whatever the spec says.
  const runtime = spec.target === 'aws' ? fn.runtime : undefined;
  // The bundle's hash, without bundling when its inputs are unchanged since the last bundle (bundle.ts).
  const { sha256 } = await bundleDigest(plan.templateName, fn.runtime);
  return functionConfig({ ...plan, template: plan.templateName, sha256, eventSource: plan.eventSource ?? null, runtime });
}

/** What apply compares and prints; secret-looking values are masked (a change still shows, as a different tag). */
export function functionConfig(f: Pick<FunctionSummary, 'template' | 'sha256' | 'handler' | 'timeoutSeconds' | 'memoryMb' | 'environment' | 'eventSource' | 'runtime'>) {
  // The runtime shows only when it is not the default: plans of specs that never set one stay as they were.
  const runtime = f.runtime && f.runtime !== LAMBDA_RUNTIME ? { runtime: f.runtime } : {};
  return { template: f.template, sha256: f.sha256, handler: f.handler, timeoutSeconds: f.timeoutSeconds, memoryMb: f.memoryMb, environment: maskedEnvironment(f.environment), eventSource: f.eventSource ?? null, ...runtime };
}

/** A function's variables as any output may show them (plans, `lambda list --json`). */
export function maskedEnvironment(environment: Record<string, string>): Record<string, string> {
  return maskEnvironment(environment, secretTag);
}

let tagKey: Buffer | undefined;
/** A short digest keyed with this process's random key: equal values get equal tags within one plan, and nothing can be guessed from one. */
function secretTag(value: string): string {
  return createHmac('sha256', (tagKey ??= randomBytes(32))).update(value).digest('hex').slice(0, 8);
}
