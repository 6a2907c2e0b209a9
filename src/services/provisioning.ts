import { resolve } from 'node:path';
import type { ClaimCertificate, ProvisioningTemplateInput, Target } from '../ports.js';
import { stageFolder } from './files.js';
import type { Spec } from '../spec/schema.js';
import { planResources, type PlanItem } from '../iot/plan/index.js';
import { UserError } from '../ui/errors.js';
import { warn } from '../ui/output.js';

/** `devices.provisioning` as the ports take it (undefined when the spec declares none). */
export function provisioningInput(spec: Spec): ProvisioningTemplateInput | undefined {
  const p = spec.devices.provisioning;
  if (!p) return undefined;
  return {
    name: p.template,
    description: p.description,
    thingName: p.thingName,
    attributes: p.attributes,
    enabled: p.enabled,
    policyName: spec.devices.policy.name,
    thingType: spec.devices.thingType,
    ...(p.preProvisioningHook ? { preProvisioningHook: p.preProvisioningHook } : {}),
  };
}

export function requireProvisioning(spec: Spec): ProvisioningTemplateInput {
  const input = provisioningInput(spec);
  if (!input) throw new UserError('iotctl.yaml declares no provisioning template.', 'Add devices.provisioning (template, thingName) and run `iotctl apply` first (see README, "Factory provisioning").', 'NO_PROVISIONING');
  return input;
}

/**
 * The plan of the provisioning template. iotctl owns every template of the stage it lists, so one the spec no
 * longer declares is deleted without --prune: a removed template must stop provisioning devices.
 */
export async function planProvisioning(spec: Spec, target: Target): Promise<PlanItem[]> {
  const input = provisioningInput(spec);
  const desired = input ? [{ kind: 'provisioning template', name: input.name, config: (await target.devices.templateConfig(input)) as unknown as Record<string, unknown>, ...physical(target, input.name) }] : [];
  let listed;
  try {
    listed = await target.devices.listTemplates(Boolean(input));
  } catch (e) {
    // With nothing declared, an endpoint without the provisioning API (moto) or no iot:ListProvisioningTemplates
    // must not stop the other sections: said, not planned (as the database section does).
    if (input || target.name !== 'aws') throw e;
    warn(`Provisioning templates could not be read (${(e as Error).message}); a removed template is not planned for deletion.`);
    return [];
  }
  const actual = listed.map((t) => ({ kind: 'provisioning template', name: t.name, config: t.config as unknown as Record<string, unknown>, ...(t.physicalName ? { physical: t.physicalName } : {}) }));
  return planResources(desired, actual, { prune: true });
}

function physical(target: Target, name: string): { physical?: string } {
  if (target.name !== 'aws') return {};
  const p = target.physicalName?.('provisioning template', name);
  return p && p !== name ? { physical: p } : {};
}

export async function applyProvisioning(spec: Spec, target: Target, items: PlanItem[]): Promise<void> {
  const input = provisioningInput(spec);
  for (const i of items) {
    if (i.action === 'delete') await target.devices.deleteTemplate(i.name, i.physical);
    if ((i.action === 'create' || i.action === 'replace') && input) await target.devices.putTemplate(input);
  }
}

/**
 * Issues a claim certificate and writes cert.pem, private.key (0600), ca.pem and endpoint.json to `dir`.
 * Another one can be issued at any time (rotation: flash the new one, then revoke the old with
 * `device revoke --certificate`). A folder that cannot be written leaves no usable certificate behind.
 */
export async function issueClaimCertificate(spec: Spec, target: Target, dir: string): Promise<ClaimCertificate & { dir: string }> {
  const input = requireProvisioning(spec);
  const staged = stageFolder(resolve(dir), { flag: '--out' });
  let claim: ClaimCertificate;
  try {
    claim = await target.devices.issueClaimCertificate(input);
  } catch (e) {
    staged.discard();
    throw e;
  }
  try {
    staged.write({ name: 'cert.pem', data: claim.certPem });
    if (claim.keyPem) staged.write({ name: 'private.key', data: claim.keyPem, mode: 0o600 });
    staged.write({ name: 'ca.pem', data: claim.caPem });
    staged.write({ name: 'endpoint.json', data: JSON.stringify(claim.endpoint, null, 2) + '\n' });
    staged.commit();
  } catch (e) {
    staged.discard();
    await target.devices.revokeCertificate(claim.certificateId, { revoked: true }).catch(() => {});
    throw e;
  }
  return { ...claim, dir: staged.dest };
}
