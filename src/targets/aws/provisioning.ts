import type { DeployedProvisioningTemplate, ProvisioningTemplateConfig, ProvisioningTemplateInput } from '../../ports.js';
import { provisioningTemplateBody } from '../../iot/provisioning.js';
import { arnOf, ownershipByName, partitionOf, type StageNames } from './naming.js';
import { deleteServiceRole, ensureServiceRole, roleTags, trustPolicy } from './iam.js';
import { claimOf, notOurs, ownerTagList, ownerTags, type Owner } from './ownership.js';
import { retryWhen, rolePropagating } from './retry.js';
import { failFastWhenUnserved, isAwsError, type AwsClients } from './sdk.js';
import { UserError } from '../../ui/errors.js';

/**
 * The provisioning role's permissions: what RegisterThing does with iotctl's template (thing in the stage's group,
 * certificate activated, device policy attached), on those resources only. AWS's managed AWSIoTThingsRegistration
 * allows these and more on every resource.
 */
export function provisioningRolePolicy(place: { region: string; account: string }, names: StageNames, policyName: string) {
  const iot = (resource: string) => `arn:${partitionOf(place.region)}:iot:${place.region}:${place.account}:${resource}`;
  return {
    Version: '2012-10-17',
    // One statement per resource type, so every Resource fits each of its actions (Service Authorization Reference).
    Statement: [
      { Effect: 'Allow', Action: ['iot:CreateThing', 'iot:DescribeThing', 'iot:UpdateThing', 'iot:ListThingPrincipals'], Resource: [iot('thing/*')] },
      { Effect: 'Allow', Action: ['iot:AddThingToThingGroup'], Resource: [iot('thing/*'), iot(`thinggroup/${names.deviceGroup}`)] },
      // AttachPolicy's resource is the certificate: which policy it attaches is the template's, not the role's, to bound.
      { Effect: 'Allow', Action: ['iot:AttachThingPrincipal', 'iot:DescribeCertificate', 'iot:UpdateCertificate', 'iot:AttachPolicy'], Resource: [iot('cert/*')] },
      { Effect: 'Allow', Action: ['iot:GetPolicy'], Resource: [iot(`policy/${names.devicePolicy(policyName)}`)] },
      // ListAttachedPolicies has no resource type: "*" is its only Resource.
      { Effect: 'Allow', Action: ['iot:ListAttachedPolicies'], Resource: ['*'] },
      { Effect: 'Allow', Action: ['iot:DescribeThingType'], Resource: [iot('thingtype/*')] },
    ],
  };
}

/** IoT assumes the role for this template only (confused deputy: source account and template ARN). */
export function provisioningTrustPolicy(place: { region: string; account: string }, physicalTemplate: string) {
  return trustPolicy('iot', place, { arn: arnOf('iot-provisioning-template', place, physicalTemplate) });
}

/** Provisioning templates on AWS IoT, with their roles: stage-scoped names, owned through tags. */
export class AwsProvisioning {
  constructor(
    private readonly aws: AwsClients,
    private readonly names: StageNames,
    private readonly owner: Owner,
  ) {}

  private async place() {
    return { region: await this.aws.region(), account: await this.aws.accountId() };
  }

  async templateConfig(input: ProvisioningTemplateInput): Promise<ProvisioningTemplateConfig> {
    const place = await this.place();
    const physical = this.names.provisioningTemplate(input.name);
    const templateBody = provisioningTemplateBody(
      { template: physical, thingName: input.thingName, attributes: input.attributes },
      { policy: this.names.devicePolicy(input.policyName), thingType: input.thingType, thingGroups: [this.names.deviceGroup] },
    );
    return {
      templateBody,
      description: input.description,
      enabled: input.enabled,
      ...(input.preProvisioningHook ? { preProvisioningHook: arnOf('lambda-function', place, this.names.function(input.preProvisioningHook)) } : {}),
      provisioningRole: arnOf('iam-role', place, this.names.provisioningRole(input.name), { path: this.names.rolePath }),
    };
  }

  /**
   * `declared`: the spec names a template. When it names none, an endpoint that does not serve provisioning
   * templates (moto) holds none of them: its answer ends the listing at once, as an empty one.
   */
  async list(declared = true): Promise<DeployedProvisioningTemplate[]> {
    const { client, sdk } = await this.aws.get('iot');
    const all: { templateName?: string; templateArn?: string }[] = [];
    let nextToken: string | undefined;
    do {
      const command = new sdk.ListProvisioningTemplatesCommand({ nextToken });
      let out;
      try {
        out = await client.send(declared ? command : failFastWhenUnserved(command), this.aws.sendOptions);
      } catch (error) {
        if (!declared && isAwsError(error, 'UnservedOperation')) return [];
        throw error;
      }
      all.push(...(out.templates ?? []));
      nextToken = out.nextToken;
    } while (nextToken);
    const found: DeployedProvisioningTemplate[] = [];
    for (const t of all) {
      const byName = ownershipByName('iot-provisioning-template', t.templateName!, this.names.scope);
      if (byName.verdict === 'not-ours') continue;
      const tags = await this.tags(t.templateArn!);
      if (tags ? claimOf(tags, this.owner) !== 'owned' : byName.verdict !== 'ours') continue;
      const logical = tags?.['iotctl:template'] ?? (byName.verdict === 'ours' ? byName.logical : undefined);
      if (!logical) continue;
      const d = await client.send(new sdk.DescribeProvisioningTemplateCommand({ templateName: t.templateName! }), this.aws.sendOptions);
      found.push({
        name: logical,
        physicalName: t.templateName!,
        config: {
          templateBody: JSON.parse(d.templateBody ?? '{}'),
          description: d.description ?? '',
          enabled: d.enabled ?? false,
          ...(d.preProvisioningHook?.targetArn ? { preProvisioningHook: d.preProvisioningHook.targetArn } : {}),
          ...(d.provisioningRoleArn ? { provisioningRole: d.provisioningRoleArn } : {}),
        },
      });
    }
    return found;
  }


  private async tags(arn: string): Promise<Record<string, string> | undefined> {
    const { client, sdk } = await this.aws.get('iot');
    try {
      const out = await client.send(new sdk.ListTagsForResourceCommand({ resourceArn: arn }), this.aws.sendOptions);
      return Object.fromEntries((out.tags ?? []).map((t) => [t.Key!, t.Value ?? '']));
    } catch {
      return undefined;
    }
  }

  /** The role first (IoT checks it can pass it), then the template: created, or its body as a new default version. */
  async put(input: ProvisioningTemplateInput, config: ProvisioningTemplateConfig, current?: ProvisioningTemplateConfig): Promise<void> {
    const place = await this.place();
    const physical = this.names.provisioningTemplate(input.name);
    if (!current) {
      // list() leaves out a template of this name that another project or stage owns: refused, never taken over.
      const foreign = await this.tags(arnOf('iot-provisioning-template', place, physical));
      if (foreign && Object.keys(foreign).length) throw notOurs('provisioning template', physical, foreign, this.owner);
    }
    const roleWritten = await this.ensureRole(input, place, physical);
    if (input.preProvisioningHook) await this.allowHookInvoke(input.preProvisioningHook, place, input.name);
    const { client, sdk } = await this.aws.get('iot');
    const hook = config.preProvisioningHook ? { targetArn: config.preProvisioningHook, payloadVersion: '2020-04-01' } : undefined;
    if (!current) {
      await this.whileRolePropagates(roleWritten, 'CreateProvisioningTemplate', config.provisioningRole, () => client.send(
        new sdk.CreateProvisioningTemplateCommand({
          templateName: physical,
          description: config.description,
          templateBody: JSON.stringify(config.templateBody),
          enabled: config.enabled,
          provisioningRoleArn: config.provisioningRole,
          ...(hook ? { preProvisioningHook: hook } : {}),
          type: 'FLEET_PROVISIONING',
          tags: [...ownerTagList(this.owner), { Key: 'iotctl:template', Value: input.name }],
        }),
        this.aws.sendOptions,
      )).catch((error) => {
        if (isAwsError(error, 'ResourceAlreadyExistsException')) throw notOurs('provisioning template', physical, {}, this.owner);
        throw error;
      });
      return;
    }
    if (JSON.stringify(current.templateBody) !== JSON.stringify(config.templateBody)) {
      await this.pruneVersions(physical);
      await client.send(new sdk.CreateProvisioningTemplateVersionCommand({ templateName: physical, templateBody: JSON.stringify(config.templateBody), setAsDefault: true }), this.aws.sendOptions);
    }
    await this.whileRolePropagates(roleWritten, 'UpdateProvisioningTemplate', config.provisioningRole, () => client.send(
      new sdk.UpdateProvisioningTemplateCommand({
        templateName: physical,
        description: config.description,
        enabled: config.enabled,
        provisioningRoleArn: config.provisioningRole,
        ...(hook ? { preProvisioningHook: hook } : { removePreProvisioningHook: Boolean(current.preProvisioningHook) }),
      }),
      this.aws.sendOptions,
    ));
  }

  /**
   * A role just created or changed takes a few seconds before IoT may pass it: the call is retried meanwhile
   * (bounded, abortable, as for topic rules). An unchanged role refused is a real error, not a wait.
   */
  private async whileRolePropagates(roleWritten: boolean, operation: string, role: string | undefined, call: () => Promise<unknown>): Promise<void> {
    await retryWhen(call, (e) => roleWritten && rolePropagating.iotProvisioning(e), {
      service: 'iot',
      operation,
      what: `AWS IoT to be able to assume the provisioning role ${role ?? ''}`.trim(),
      signal: this.aws.settings.signal,
      delayMs: 1_000,
      maxDelayMs: 5_000,
    });
  }

  /** IoT invokes the hook only when the function's resource policy allows this template (its ARN, this account). */
  private async allowHookInvoke(fn: string, place: { region: string; account: string }, template: string): Promise<void> {
    const { client, sdk } = await this.aws.get('lambda');
    try {
      await client.send(
        new sdk.AddPermissionCommand({
          FunctionName: this.names.function(fn),
          StatementId: this.names.hookPermission(template),
          Action: 'lambda:InvokeFunction',
          Principal: 'iot.amazonaws.com',
          SourceAccount: place.account,
          SourceArn: arnOf('iot-provisioning-template', place, this.names.provisioningTemplate(template)),
        }),
        this.aws.sendOptions,
      );
    } catch (error) {
      if (isAwsError(error, 'ResourceConflictException')) return; // already allowed
      if (isAwsError(error, 'ResourceNotFoundException')) {
        throw new UserError(`The pre-provisioning hook "${fn}" (${this.names.function(fn)} on AWS) does not exist.`, 'Deploy it first (`iotctl apply` deploys functions before the template), or fix devices.provisioning.preProvisioningHook.', 'FUNCTION_NOT_FOUND');
      }
      throw error;
    }
  }

  /** AWS keeps at most 5 versions of a template: the oldest non-default one goes first. */
  private async pruneVersions(physical: string): Promise<void> {
    const { client, sdk } = await this.aws.get('iot');
    const out = await client.send(new sdk.ListProvisioningTemplateVersionsCommand({ templateName: physical }), this.aws.sendOptions);
    const versions = out.versions ?? [];
    if (versions.length < 5) return;
    const oldest = versions.filter((v) => !v.isDefaultVersion).sort((a, b) => (a.versionId ?? 0) - (b.versionId ?? 0))[0];
    if (oldest) await client.send(new sdk.DeleteProvisioningTemplateVersionCommand({ templateName: physical, versionId: oldest.versionId! }), this.aws.sendOptions);
  }

  /** The template's role (iam.ts); true when it was created or rewritten (then IoT may not see it yet). */
  private async ensureRole(input: ProvisioningTemplateInput, place: { region: string; account: string }, physical: string): Promise<boolean> {
    const RoleName = this.names.provisioningRole(input.name);
    const tags = await roleTags(this.aws, RoleName);
    if (tags && !this.isRoleOf(tags, input.name)) throw notOurs('IAM role', RoleName, tags, this.owner);
    const { result } = await ensureServiceRole(this.aws, {
      name: RoleName,
      path: this.names.rolePath,
      description: `iotctl: fleet provisioning template ${physical}`,
      trust: provisioningTrustPolicy(place, physical),
      policyName: 'fleet-provisioning',
      policy: provisioningRolePolicy(place, this.names, input.policyName),
      tags: { ...ownerTags(this.owner), 'iotctl:template': input.name },
    });
    return result !== 'unchanged';
  }

  /** This stage's role for the template `name`. */
  private isRoleOf(tags: Record<string, string>, name: string): boolean {
    return claimOf(tags, this.owner) === 'owned' && tags['iotctl:template'] === name;
  }

  async delete(name: string, physical = this.names.provisioningTemplate(name)): Promise<void> {
    const iot = await this.aws.get('iot');
    try {
      await iot.client.send(new iot.sdk.DeleteProvisioningTemplateCommand({ templateName: physical }), this.aws.sendOptions);
    } catch (error) {
      if (!isAwsError(error, 'ResourceNotFoundException')) throw error;
    }
    // Only this stage's role for the template: anyone else's of the name stays.
    await deleteServiceRole(this.aws, this.names.provisioningRole(name), (tags) => this.isRoleOf(tags, name));
  }
}
