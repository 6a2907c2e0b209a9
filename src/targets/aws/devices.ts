import { X509Certificate } from 'node:crypto';
import type { AddCertificateInput, ClaimCertificate, ConnectionEvidence, DeployedDevices, DeployedProvisioningTemplate, DeviceDetails, DeviceRegistryPort, DeviceSummary, Endpoint, ProvisioningTemplateConfig, ProvisioningTemplateInput, RegisterDeviceInput, RegisteredDevice } from '../../ports.js';
import type { CertificateView, RotationState } from '../../iot/certificates.js';
import { claimPolicy } from '../../iot/provisioning.js';
import type { PolicyDocument } from '../../iot/policy/index.js';
import { UserError } from '../../ui/errors.js';
import { AMAZON_ROOT_CA_1 } from './amazon-root-ca.js';
import { policyInPartition } from './arn.js';
import { mapLimit } from '../../concurrency.js';
import { ownershipByName, type StageNames } from './naming.js';
import { claimOf, markerTags, notOurs, ownerMarker, ownerTagList, TAG_PROJECT, type Owner } from './ownership.js';
import { ApiRateLimiter, IOT_REGISTRATION_TPS, tpsFromEnv } from './rate.js';
import { iotApiRates, type ApiRates } from './quotas.js';
import { AwsCallError, failFastWhenUnserved, isAwsError, type AwsClients, type Service } from './sdk.js';
import { retryWhen } from './retry.js';

/** The key and CSR helpers (and @peculiar/x509 under them) load only when a device is registered, not to list devices. */
const pki = () => import('../local/ca.js');

/** AWS IoT's thing name pattern and length; checked before any call so a bad name creates nothing. */
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
/**
 * The certificate lifecycle's calls (rotation, expiry, prune), paced at AWS IoT Core's documented per-account
 * rates (TPS) like the registration calls; IOTCTL_AWS_TPS overrides them.
 */
export const IOT_CERTIFICATE_TPS: Record<string, number> = {
  DescribeCertificate: 10,
  UpdateCertificate: 10,
  DeleteCertificate: 10,
  ListThingPrincipals: 10,
  ListPrincipalThings: 10,
  ListAttachedPolicies: 10,
  DetachPolicy: 15,
  DetachThingPrincipal: 100,
  UpdateThing: 100,
  DescribeThing: 350,
};

/**
 * A rotation in progress is kept in the account, as a thing attribute (things cannot be tagged):
 * `<old certificate id>:<new certificate id>:<started, epoch s>:<grace until, epoch s>`.
 */
export const ROTATION_ATTRIBUTE = 'iotctl_rotation';

/** AWS keeps at most 5 versions of a policy. */
const MAX_POLICY_VERSIONS = 5;

export interface AwsDevicesOptions {
  owner: Owner;
  names: StageNames;
  /** The spec's (logical) device policy name: an older iotctl's policy of this name marks the things registered before stage groups. */
  policyName: string;
  /** Per-API rates (TPS), fixed; default: the account's quotas for bulk registration (quotas.ts), else the documented ones, overridden by IOTCTL_AWS_TPS. */
  tps?: Record<string, number>;
}

type PolicyRead = { document: PolicyDocument; arn: string };

/**
 * The aws target's device registry: things, certificates and policies in AWS IoT Core.
 * Registration keeps the private key on this machine (local P-256 key + CreateCertificateFromCsr)
 * unless AWS-generated keys are asked for, and undoes what it created when a step fails.
 *
 * Thing names are the devices' identities (their MQTT client ids), so they are not scoped: a device belongs
 * to a project and stage through the stage's thing group (names.deviceGroup), which listing reads and every
 * command on one device checks. The device policy is the stage's (names.devicePolicy), tagged as its own.
 */
export class AwsDevices implements DeviceRegistryPort {
  readonly limiter: ApiRateLimiter;
  /** Workers for bulk registration (workersFor). */
  private workers: number;
  /** Rates given to the constructor: used as they are, Service Quotas not asked. */
  private readonly fixedTps?: Record<string, number>;
  private ratesRead?: Promise<ApiRates>;
  private endpointCache?: Promise<Endpoint>;
  private readonly thingTypes = new Map<string, Promise<void>>();

  private groupEnsured?: Promise<void>;
  private tagsUnreadable = false;
  private readonly owner: Owner;
  private readonly names: StageNames;
  private readonly policyName: string;
  /** Things thingNames() read from the stage's group: no membership check for them. */
  private readonly members = new Set<string>();
  private connectivityIndexed?: Promise<boolean>;

  constructor(
    private readonly aws: AwsClients,
    opts: AwsDevicesOptions,
  ) {
    ({ owner: this.owner, names: this.names, policyName: this.policyName } = opts);
    const tps = opts.tps ?? tpsFromEnv({ ...IOT_CERTIFICATE_TPS, ...IOT_REGISTRATION_TPS });
    this.fixedTps = opts.tps;
    this.limiter = new ApiRateLimiter(tps);
    // The registration APIs set the workers; the lifecycle's read calls are paced but do not add workers.
    this.workers = workersFor(Object.fromEntries(Object.entries(tps).filter(([op]) => !(op in IOT_CERTIFICATE_TPS) || op in IOT_REGISTRATION_TPS)));
  }

  /**
   * The rates bulk registration uses: the account's applied quotas (Service Quotas, read once per account and
   * region), else AWS's defaults, else the documented ones; IOTCTL_AWS_TPS overrides. The limiter takes them on.
   */
  apiRates(): Promise<ApiRates> {
    return (this.ratesRead ??= (this.fixedTps
      ? Promise.resolve({ rates: { ...this.fixedTps }, sources: Object.fromEntries(Object.keys(this.fixedTps).map((op) => [op, 'configured' as const])) })
      : iotApiRates(this.aws, IOT_REGISTRATION_TPS)
    ).then((r) => {
      this.limiter.setRates(r.rates);
      this.workers = workersFor(r.rates);
      return r;
    }));
  }

  /** Twice the slowest API's rate (workersFor). */
  async bulkConcurrency(): Promise<number> {
    await this.apiRates();
    return this.workers;
  }

  private get signal() {
    return this.aws.settings.signal;
  }

  /** One IoT call, paced per API and retried while AWS throttles it. */
  /** Every item of a token-paged IoT list call, each page paced like any other call. */
  private async iotList<O extends { nextToken?: string }, T>(op: string, call: (s: Service<'iot'>, nextToken: string | undefined) => Promise<O>, items: (out: O) => T[] | undefined): Promise<T[]> {
    const all: T[] = [];
    let nextToken: string | undefined;
    do {
      const out: O = await this.iot(op, (s) => call(s, nextToken));
      all.push(...(items(out) ?? []));
      nextToken = out.nextToken;
    } while (nextToken);
    return all;
  }

  private async iot<T>(op: string, run: (s: Service<'iot'>) => Promise<T>): Promise<T> {
    const s = await this.aws.get('iot');
    return this.limiter.call(op, () => run(s), this.signal);
  }

  async endpoint(): Promise<Endpoint> {
    // Cached: DescribeEndpoint's answer is fixed per account and region (moto answers a new host each call).
    this.endpointCache ??= this.iot('DescribeEndpoint', ({ client, sdk }) => client.send(new sdk.DescribeEndpointCommand({ endpointType: 'iot:Data-ATS' }), this.aws.sendOptions)).then(
      (out) => ({ host: out.endpointAddress!, port: 8883 }),
    );
    this.endpointCache.catch(() => (this.endpointCache = undefined));
    return this.endpointCache;
  }

  async caPem(): Promise<string> {
    return AMAZON_ROOT_CA_1;
  }

  // ------------------------------------------------------------------ policies

  private get group(): string {
    return this.names.deviceGroup;
  }

  /** A policy by physical name, with its ARN; undefined when there is none. */
  private async readPolicy(physical: string): Promise<PolicyRead | undefined> {
    try {
      // GetPolicy answers the default version's document.
      const out = await this.iot('GetPolicy', ({ client, sdk }) => client.send(new sdk.GetPolicyCommand({ policyName: physical }), this.aws.sendOptions));
      return { document: JSON.parse(policyInPartition(out.policyDocument ?? '{}', await this.aws.region(), true)) as PolicyDocument, arn: out.policyArn! };
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  /**
   * A policy's tags, or undefined where the endpoint cannot answer them: moto has no IoT tagging (its
   * ListTagsForResource fails with a 500), and an identity may lack iot:ListTagsForResource.
   */
  private async policyTags(arn: string): Promise<Record<string, string> | undefined> {
    if (this.tagsUnreadable) return undefined;
    try {
      const tags = await this.iotList('ListTagsForResource', ({ client, sdk }, nextToken) => client.send(failFastWhenUnserved(new sdk.ListTagsForResourceCommand({ resourceArn: arn, nextToken })), this.aws.sendOptions), (out) => out.tags);
      return Object.fromEntries(tags.map((t) => [t.Key!, t.Value ?? '']));
    } catch (error) {
      if (error instanceof AwsCallError && !isAwsError(error, 'Cancelled', 'ThrottlingException')) {
        this.tagsUnreadable = true; // not asked again by this command
        return undefined;
      }
      throw error;
    }
  }

  /**
   * The stage's policy must be ours: its tags say so, or, where tags cannot be read, its name does (iotctl
   * writes exactly this unshortened name for this project and stage only). Anything else is refused.
   */
  private async assertPolicyOurs(physical: string, arn: string): Promise<void> {
    const tags = await this.policyTags(arn);
    if (tags ? claimOf(tags, this.owner) === 'owned' : ownershipByName('iot-policy', physical, this.names.scope).verdict === 'ours') return;
    throw notOursHere('IoT policy', physical, tags ?? {}, this.owner);
  }

  async getPolicy(name: string): Promise<PolicyDocument | undefined> {
    const physical = this.names.devicePolicy(name);
    const read = await this.readPolicy(physical);
    if (read) await this.assertPolicyOurs(physical, read.arn);
    return read?.document;
  }

  /**
   * An older iotctl's policy under the bare spec name (made before stages, untagged). One tagged as another
   * iotctl project's or stage's is not it.
   */
  private async legacyPolicy(name: string): Promise<(PolicyRead & { physicalName: string }) | undefined> {
    if (name === this.names.devicePolicy(name)) return undefined;
    const read = await this.readPolicy(name);
    if (!read) return undefined;
    const tags = await this.policyTags(read.arn);
    if (tags?.[TAG_PROJECT] !== undefined && claimOf(tags, this.owner) === 'foreign') return undefined;
    return { ...read, physicalName: name };
  }

  async deployed(name: string): Promise<DeployedDevices> {
    const physical = this.names.devicePolicy(name);
    const [policy, legacy, group] = await Promise.all([this.getPolicy(name), this.legacyPolicy(name), this.describeGroup()]);
    return {
      ...(policy ? { policy: { document: policy, physicalName: physical } } : {}),
      ...(legacy ? { legacy: { document: legacy.document, physicalName: legacy.physicalName, certificates: (await this.policyTargets(legacy.physicalName)).length } } : {}),
      group: { physicalName: this.group, exists: group !== undefined },
    };
  }

  /** Creates the stage's policy (tagged), or adds a default version when the document changed (making room under AWS's 5-version limit). */
  async putPolicy(name: string, document: PolicyDocument): Promise<void> {
    const physical = this.names.devicePolicy(name);
    const policyDocument = policyInPartition(JSON.stringify(document), await this.aws.region());
    const current = await this.getPolicy(name);
    if (!current) {
      await this.iot('CreatePolicy', ({ client, sdk }) => client.send(new sdk.CreatePolicyCommand({ policyName: physical, policyDocument, tags: ownerTagList(this.owner) }), this.aws.sendOptions));
      return;
    }
    if (canonicalJson(current) === canonicalJson(document)) return;
    const policyVersions = await this.policyVersions(physical);
    if (policyVersions.length >= MAX_POLICY_VERSIONS) {
      const oldest = policyVersions
        .filter((v) => !v.isDefaultVersion)
        .sort((a, b) => (a.createDate?.getTime() ?? 0) - (b.createDate?.getTime() ?? 0) || Number(a.versionId) - Number(b.versionId))[0];
      if (oldest) {
        await this.iot('DeletePolicyVersion', ({ client, sdk }) =>
          client.send(new sdk.DeletePolicyVersionCommand({ policyName: physical, policyVersionId: oldest.versionId! }), this.aws.sendOptions),
        );
      }
    }
    await this.iot('CreatePolicyVersion', ({ client, sdk }) =>
      client.send(new sdk.CreatePolicyVersionCommand({ policyName: physical, policyDocument, setAsDefault: true }), this.aws.sendOptions),
    );
  }

  private async policyVersions(physical: string) {
    const out = await this.iot('ListPolicyVersions', ({ client, sdk }) => client.send(new sdk.ListPolicyVersionsCommand({ policyName: physical }), this.aws.sendOptions));
    return out.policyVersions ?? [];
  }

  /** The certificates (ARNs) a policy is attached to. */
  private async policyTargets(physical: string): Promise<string[]> {
    const targets: string[] = [];
    let marker: string | undefined;
    do {
      const out = await this.iot('ListTargetsForPolicy', ({ client, sdk }) => client.send(new sdk.ListTargetsForPolicyCommand({ policyName: physical, marker, pageSize: 250 }), this.aws.sendOptions));
      targets.push(...(out.targets ?? []));
      marker = out.nextMarker;
    } while (marker);
    return targets;
  }

  /**
   * Deletes this stage's policy, or (`physical`: the bare name an older iotctl used) moves off the legacy one:
   * each of its certificates first gets the stage's policy and its things join the stage's group, and only
   * then is the old policy detached, so no device is without a policy at any moment.
   */
  async deletePolicy(name: string, physical = this.names.devicePolicy(name)): Promise<void> {
    const opts = this.aws.sendOptions;
    const scoped = this.names.devicePolicy(name);
    if (physical !== scoped && physical !== name) throw new Error(`${physical} is neither the stage's device policy nor its legacy name`);
    const moving = physical !== scoped;
    if (moving) {
      if (!(await this.legacyPolicy(name))) return;
      if (!(await this.getPolicy(name))) throw new UserError(`The device policy ${scoped} does not exist, so the certificates of ${physical} cannot move to it.`, 'Run `iotctl apply` again: it creates the policy before it moves the old one.', 'POLICY_NOT_FOUND');
      await this.ensureGroup();
    } else {
      const read = await this.readPolicy(scoped);
      if (!read) return;
      await this.assertPolicyOurs(scoped, read.arn);
    }
    await mapLimit(await this.policyTargets(physical), 4, async (target) => {
      if (moving) {
        await this.iot('AttachPolicy', ({ client, sdk }) => client.send(new sdk.AttachPolicyCommand({ policyName: scoped, target }), opts));
        for (const thingName of await this.principalThings(target)) await this.addToGroup(thingName);
      }
      await this.iot('DetachPolicy', ({ client, sdk }) => client.send(new sdk.DetachPolicyCommand({ policyName: physical, target }), opts));
    });
    // DeletePolicy refuses a policy that still has versions other than the default.
    for (const v of await this.policyVersions(physical)) {
      if (!v.isDefaultVersion) await this.iot('DeletePolicyVersion', ({ client, sdk }) => client.send(new sdk.DeletePolicyVersionCommand({ policyName: physical, policyVersionId: v.versionId! }), opts));
    }
    await this.iot('DeletePolicy', ({ client, sdk }) => client.send(new sdk.DeletePolicyCommand({ policyName: physical }), opts));
  }

  private principalThings(principal: string): Promise<string[]> {
    return this.iotList('ListPrincipalThings', ({ client, sdk }, nextToken) => client.send(new sdk.ListPrincipalThingsCommand({ principal, nextToken }), this.aws.sendOptions), (out) => out.things);
  }

  // ------------------------------------------------------------------ the stage's thing group

  /** The stage's group, checked to be ours by the owner marker in its description (moto keeps no IoT tags). */
  private async describeGroup(): Promise<{ arn: string } | undefined> {
    let out;
    try {
      out = await this.iot('DescribeThingGroup', ({ client, sdk }) => client.send(new sdk.DescribeThingGroupCommand({ thingGroupName: this.group }), this.aws.sendOptions));
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
    const tags = markerTags(out.thingGroupProperties?.thingGroupDescription);
    if (claimOf(tags, this.owner) !== 'owned') throw notOursHere('IoT thing group', this.group, tags, this.owner);
    return { arn: out.thingGroupArn! };
  }

  /** Creates the stage's thing group (tagged, and marked in its description) unless it exists; once per instance. */
  ensureGroup(): Promise<void> {
    this.groupEnsured ??= (async () => {
      if (await this.describeGroup()) return;
      try {
        await this.iot('CreateThingGroup', ({ client, sdk }) =>
          client.send(
            new sdk.CreateThingGroupCommand({ thingGroupName: this.group, thingGroupProperties: { thingGroupDescription: ownerMarker(this.owner) }, tags: ownerTagList(this.owner) }),
            this.aws.sendOptions,
          ),
        );
      } catch (error) {
        // Another process made it first: it must still be ours.
        if (!isAwsError(error, 'ResourceAlreadyExistsException') || !(await this.describeGroup())) throw error;
      }
    })();
    this.groupEnsured.catch(() => (this.groupEnsured = undefined));
    return this.groupEnsured;
  }

  private async addToGroup(thingName: string): Promise<void> {
    await this.iot('AddThingToThingGroup', ({ client, sdk }) => client.send(new sdk.AddThingToThingGroupCommand({ thingGroupName: this.group, thingName }), this.aws.sendOptions));
  }

  /** Whether a thing is this stage's: in its group, or (registered before stage groups) holding the legacy policy. */
  private async membership(thingName: string): Promise<'member' | 'legacy' | 'other'> {
    const groups = await this.iotList('ListThingGroupsForThing', ({ client, sdk }, nextToken) => client.send(new sdk.ListThingGroupsForThingCommand({ thingName, nextToken }), this.aws.sendOptions), (out) => out.thingGroups);
    if (groups.some((g) => g.groupName === this.group)) return 'member';
    const legacy = await this.legacyPolicy(this.policyName);
    if (!legacy) return 'other';
    for (const arn of await this.principalsOf(thingName)) if ((await this.attachedPolicies(arn)).includes(legacy.physicalName)) return 'legacy';
    return 'other';
  }

  /** Refuses a command on a thing that is not this stage's device (another stage's, another project's, or made by hand). */
  private async assertOurs(thingName: string): Promise<void> {
    if (this.members.has(thingName) || (await this.membership(thingName)) !== 'other') return;
    const { project, stage } = this.owner;
    throw new UserError(
      `Thing "${thingName}" is not a device of project ${project}, stage ${stage}: it is not in the stage's thing group ${this.group}.`,
      'It belongs to another stage or project, or was made outside iotctl: run the command with that stage (--stage), or manage it in the AWS console. `iotctl device list` shows this stage\'s devices.',
      'THING_NOT_IN_STAGE',
    );
  }

  private async attachedPolicies(target: string): Promise<string[]> {
    const { policies = [] } = await this.iot('ListAttachedPolicies', ({ client, sdk }) => client.send(new sdk.ListAttachedPoliciesCommand({ target, pageSize: 250 }), this.aws.sendOptions));
    return policies.map((p) => p.policyName!);
  }

  // ------------------------------------------------------------------ things

  async exists(thingName: string): Promise<boolean> {
    try {
      await this.iot('DescribeThing', ({ client, sdk }) => client.send(new sdk.DescribeThingCommand({ thingName }), this.aws.sendOptions));
      return true;
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return false;
      throw error;
    }
  }

  private ensureThingType(name: string): Promise<void> {
    let ensured = this.thingTypes.get(name);
    if (!ensured) {
      ensured = (async () => {
        try {
          await this.iot('DescribeThingType', ({ client, sdk }) => client.send(new sdk.DescribeThingTypeCommand({ thingTypeName: name }), this.aws.sendOptions));
        } catch (error) {
          if (!isAwsError(error, 'ResourceNotFoundException')) throw error;
          try {
            await this.iot('CreateThingType', ({ client, sdk }) => client.send(new sdk.CreateThingTypeCommand({ thingTypeName: name }), this.aws.sendOptions));
          } catch (e) {
            if (!isAwsError(e, 'ResourceAlreadyExistsException')) throw e; // another process made it first
          }
        }
      })();
      ensured.catch(() => this.thingTypes.delete(name));
      this.thingTypes.set(name, ensured);
    }
    return ensured;
  }

  /**
   * CreateThing, a certificate (from a local key's CSR, the user's CSR, or AWS-generated keys), AttachPolicy,
   * AttachThingPrincipal. A failure part-way undoes every step already done, newest first.
   */
  async register(input: RegisterDeviceInput): Promise<RegisteredDevice> {
    const { thingName } = input;
    if (!THING_NAME.test(thingName)) {
      throw new UserError(`Invalid thing name "${thingName}".`, 'Thing names use letters, digits, ":", "_" and "-" (1-128 characters), as AWS IoT requires.', 'INVALID_THING_NAME');
    }
    if (input.csrPem !== undefined && input.awsGeneratedKeys) {
      throw new UserError('--csr and --aws-generated-keys cannot be used together.', 'Pass one: your CSR, or let AWS generate the key pair.', 'USAGE');
    }
    if (input.csrPem !== undefined) await (await pki()).checkCsr(input.csrPem);
    if (await this.exists(thingName)) {
      throw new UserError(`Thing "${thingName}" already exists.`, `Pick another name, or remove it first with \`iotctl device delete ${thingName}\`.`, 'THING_EXISTS');
    }
    if (input.thingType) await this.ensureThingType(input.thingType);
    await this.ensureGroup();
    const policyName = this.names.devicePolicy(input.policyName);

    const opts = this.aws.sendOptions;
    const undo: { what: string; run: () => Promise<unknown> }[] = [];
    try {
      await this.iot('CreateThing', ({ client, sdk }) =>
        client.send(
          new sdk.CreateThingCommand({ thingName, ...(input.thingType ? { thingTypeName: input.thingType } : {}), attributePayload: { attributes: input.attributes } }),
          opts,
        ),
      );
      undo.push({ what: `thing ${thingName}`, run: () => this.iot('DeleteThing', ({ client, sdk }) => client.send(new sdk.DeleteThingCommand({ thingName }), opts)) });
      // Deleting the thing (the undo above) also takes it out of the group.
      await this.addToGroup(thingName);

      let keyPem: string | undefined;
      let cert: { certificateArn?: string; certificateId?: string; certificatePem?: string };
      if (input.awsGeneratedKeys) {
        const out = await this.iot('CreateKeysAndCertificate', ({ client, sdk }) => client.send(new sdk.CreateKeysAndCertificateCommand({ setAsActive: true }), opts));
        cert = out;
        keyPem = out.keyPair?.PrivateKey;
      } else {
        const local = input.csrPem === undefined ? (await pki()).newP256KeyAndCsr(thingName) : undefined;
        keyPem = local?.keyPem;
        cert = await this.iot('CreateCertificateFromCsr', ({ client, sdk }) =>
          client.send(new sdk.CreateCertificateFromCsrCommand({ certificateSigningRequest: local?.csrPem ?? input.csrPem!, setAsActive: true }), opts),
        );
      }
      const certificateArn = cert.certificateArn!;
      const certificateId = cert.certificateId!;
      undo.push({ what: `certificate ${certificateId}`, run: () => this.deleteCertificate(certificateId) });

      try {
        await this.iot('AttachPolicy', ({ client, sdk }) => client.send(new sdk.AttachPolicyCommand({ policyName, target: certificateArn }), opts));
      } catch (error) {
        if (isAwsError(error, 'ResourceNotFoundException')) {
          throw new UserError(`Policy "${input.policyName}" (${policyName} on AWS) does not exist.`, 'Run `iotctl apply` to create the device policy from iotctl.yaml.', 'POLICY_NOT_FOUND');
        }
        throw error;
      }
      undo.push({ what: `policy attachment`, run: () => this.iot('DetachPolicy', ({ client, sdk }) => client.send(new sdk.DetachPolicyCommand({ policyName, target: certificateArn }), opts)) });

      await this.iot('AttachThingPrincipal', ({ client, sdk }) => client.send(new sdk.AttachThingPrincipalCommand({ thingName, principal: certificateArn }), opts));
      undo.push({ what: `thing principal`, run: () => this.iot('DetachThingPrincipal', ({ client, sdk }) => client.send(new sdk.DetachThingPrincipalCommand({ thingName, principal: certificateArn }), opts)) });

      const certPem = cert.certificatePem!;
      return { thingName, certificateId, fingerprint: fingerprintOf(certPem), certPem, ...(keyPem ? { keyPem } : {}), caPem: AMAZON_ROOT_CA_1, endpoint: await this.endpoint() };
    } catch (error) {
      const left: string[] = [];
      for (const step of undo.reverse()) await step.run().catch(() => left.push(step.what));
      if (left.length && error instanceof Error) {
        throw new UserError(`${error.message} Undoing the registration failed for: ${left.join(', ')}.`, `Remove what is left with \`iotctl device delete ${thingName}\`.`, 'REGISTRATION_PARTIAL');
      }
      throw error;
    }
  }

  /** Deactivates and deletes a certificate; policies are force-detached by DeleteCertificate. */
  private async deleteCertificate(certificateId: string, alreadyInactive?: 'INACTIVE'): Promise<void> {
    const opts = this.aws.sendOptions;
    if (!alreadyInactive) await this.iot('UpdateCertificate', ({ client, sdk }) => client.send(new sdk.UpdateCertificateCommand({ certificateId, newStatus: 'INACTIVE' }), opts));
    // Detaching a thing is eventually consistent on AWS: DeleteCertificate may still see it for a moment.
    await retryWhen(
      () => this.iot('DeleteCertificate', ({ client, sdk }) => client.send(new sdk.DeleteCertificateCommand({ certificateId, forceDelete: true }), opts)),
      (e) => isAwsError(e, 'DeleteConflictException'),
      { service: 'iot', operation: 'DeleteCertificate', what: `certificate ${certificateId} to be detached from its thing`, signal: this.aws.settings.signal, delayMs: 250, maxDelayMs: 4_000, timeoutMs: 30_000 },
    );
  }

  private async principalsOf(thingName: string): Promise<string[]> {
    const principals = await this.iotList('ListThingPrincipals', ({ client, sdk }, nextToken) => client.send(new sdk.ListThingPrincipalsCommand({ thingName, nextToken }), this.aws.sendOptions), (out) => out.principals);
    return principals.filter((p) => /:cert\/[0-9a-f]+$/i.test(p));
  }

  /**
   * The stage's devices: its thing group's things, and the things registered before stage groups (their
   * certificates carry the legacy policy; the next apply moves them into the group), marked `legacy`.
   */
  async list(): Promise<DeviceSummary[]> {
    // The listings are independent: one round trip instead of three.
    const [members, legacy, certs] = await Promise.all([this.groupThings(), this.legacyThings(), this.allCertificates()]);
    const inGroup = new Set(members);
    const names = [...members, ...[...legacy].filter((t) => !inGroup.has(t))];
    const rows = await mapLimit(names, 8, async (thingName): Promise<DeviceSummary | undefined> => {
      const [thing, principals] = await Promise.all([this.describeThing(thingName), this.principalsOf(thingName).catch((e) => (isAwsError(e, 'ResourceNotFoundException') ? [] : Promise.reject(e)))]);
      if (!thing) return undefined; // deleted meanwhile
      const latest = latestCertificate(principals, certs);
      return {
        thingName,
        thingType: thing.thingTypeName ?? '',
        attributes: userAttributes(thing.attributes),
        certificateId: latest?.id ?? null,
        certificateStatus: latest?.status ?? null,
        // AWS keeps no creation time for a thing: its newest certificate's stands in.
        createdAt: latest?.createdAt ?? '',
        ...(inGroup.has(thingName) ? {} : { legacy: true as const }),
      };
    });
    return rows.filter((r) => r !== undefined).sort((a, b) => a.thingName.localeCompare(b.thingName));
  }

  private async describeThing(thingName: string) {
    try {
      return await this.iot('DescribeThing', ({ client, sdk }) => client.send(new sdk.DescribeThingCommand({ thingName }), this.aws.sendOptions));
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  /** The things in the stage's group (none when the group does not exist yet). */
  private async groupThings(): Promise<string[]> {
    try {
      return await this.iotList(
        'ListThingsInThingGroup',
        ({ client, sdk }, nextToken) => client.send(new sdk.ListThingsInThingGroupCommand({ thingGroupName: this.group, maxResults: 250, nextToken }), this.aws.sendOptions),
        (out) => out.things,
      );
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return [];
      throw error;
    }
  }

  /** The things whose certificates carry the legacy policy (none once the policy has moved). */
  private async legacyThings(): Promise<Set<string>> {
    const legacy = await this.legacyPolicy(this.policyName);
    if (!legacy) return new Set();
    const perCert = await mapLimit(await this.policyTargets(legacy.physicalName), 8, (target) => this.principalThings(target));
    return new Set(perCert.flat());
  }

  private async allCertificates(): Promise<Map<string, { id: string; status: string; createdAt: string }>> {
    const out = new Map<string, { id: string; status: string; createdAt: string }>();
    let marker: string | undefined;
    do {
      const page = await this.iot('ListCertificates', ({ client, sdk }) => client.send(new sdk.ListCertificatesCommand({ pageSize: 250, marker }), this.aws.sendOptions));
      for (const c of page.certificates ?? []) out.set(c.certificateId!, { id: c.certificateId!, status: c.status ?? 'UNKNOWN', createdAt: c.creationDate?.toISOString() ?? '' });
      marker = page.nextMarker;
    } while (marker);
    return out;
  }

  async show(thingName: string): Promise<DeviceDetails | undefined> {
    const thing = await this.describeThing(thingName);
    if (!thing) return undefined;
    await this.assertOurs(thingName);
    const described = await mapLimit(await this.principalsOf(thingName), 4, (arn) => this.describeCertificate(certificateIdOfArn(arn)));
    const cert = described.sort((a, b) => (a.creationDate?.getTime() ?? 0) - (b.creationDate?.getTime() ?? 0)).at(-1);
    let policies: string[] = [];
    if (cert) policies = (await this.attachedPolicies(cert.certificateArn!)).sort();
    return {
      thingName,
      thingType: thing.thingTypeName ?? '',
      attributes: userAttributes(thing.attributes),
      certificateId: cert?.certificateId ?? null,
      certificateStatus: cert?.status ?? null,
      createdAt: cert?.creationDate?.toISOString() ?? '',
      fingerprint: cert?.certificatePem ? fingerprintOf(cert.certificatePem) : null,
      notAfter: cert?.validity?.notAfter?.toISOString() ?? (cert?.certificatePem ? new Date(new X509Certificate(cert.certificatePem).validTo).toISOString() : null),
      policies,
    };
  }

  private async describeCertificate(certificateId: string) {
    const out = await this.iot('DescribeCertificate', ({ client, sdk }) => client.send(new sdk.DescribeCertificateCommand({ certificateId }), this.aws.sendOptions));
    return out.certificateDescription!;
  }


  // ------------------------------------------------------------------ certificate lifecycle

  async thingNames(): Promise<string[]> {
    const names = await this.groupThings();
    for (const n of names) this.members.add(n);
    return names;
  }

  private view(cert: Awaited<ReturnType<AwsDevices['describeCertificate']>>, things: string[]): CertificateView {
    const notAfter = cert.validity?.notAfter ?? (cert.certificatePem ? new Date(new X509Certificate(cert.certificatePem).validTo) : undefined);
    return { certificateId: cert.certificateId!, things, status: cert.status ?? 'UNKNOWN', notAfter: notAfter ? notAfter.toISOString() : null, createdAt: cert.creationDate?.toISOString() ?? '' };
  }

  /**
   * The stage's things' certificates, each from DescribeCertificate (validity.notAfter). With `orphans`, also the
   * certificates carrying the stage's device policy that are attached to no thing: certificates cannot be tagged,
   * so one with neither the stage's thing nor its policy is not known to be this stage's, and is left out.
   */
  async certificates(opts: { thingName?: string; orphans?: boolean } = {}): Promise<CertificateView[]> {
    const byCert = new Map<string, string[]>();
    const things = opts.thingName ? [opts.thingName] : await this.thingNames();
    await mapLimit(things, 8, async (thingName) => {
      const principals = opts.thingName ? await this.requirePrincipals(thingName) : await this.principalsOf(thingName);
      for (const arn of principals) byCert.set(arn, [...(byCert.get(arn) ?? []), thingName]);
    });
    if (opts.orphans && !opts.thingName) {
      const policy = this.names.devicePolicy(this.policyName);
      const targets = (await this.readPolicy(policy)) ? await this.policyTargets(policy) : [];
      await mapLimit(targets.filter((arn) => !byCert.has(arn) && /:cert\/[0-9a-f]+$/i.test(arn)), 8, async (arn) => {
        // Attached to a thing of another stage or project: not an orphan, and not ours to judge.
        if ((await this.principalThings(arn)).length === 0) byCert.set(arn, []);
      });
    }
    const views = await mapLimit([...byCert], 8, async ([arn, attached]) => {
      try {
        return this.view(await this.describeCertificate(certificateIdOfArn(arn)), attached);
      } catch (error) {
        if (isAwsError(error, 'ResourceNotFoundException')) return undefined; // deleted meanwhile
        throw error;
      }
    });
    return views.filter((v) => v !== undefined).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** CreateCertificateFromCsr (a local key's CSR, or the given one), AttachPolicy, AttachThingPrincipal; undone on failure. */
  async addCertificate(input: AddCertificateInput): Promise<RegisteredDevice & { notAfter: string | null }> {
    const { thingName } = input;
    if (input.csrPem !== undefined) await (await pki()).checkCsr(input.csrPem);
    try {
      await this.assertOurs(thingName);
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) throw new UserError(`No thing named "${thingName}".`, 'List the registered devices with `iotctl device list`.', 'THING_NOT_FOUND');
      throw error;
    }
    const policyName = this.names.devicePolicy(input.policyName);
    const opts = this.aws.sendOptions;
    const local = input.csrPem === undefined ? (await pki()).newP256KeyAndCsr(thingName) : undefined;
    const cert = await this.iot('CreateCertificateFromCsr', ({ client, sdk }) =>
      client.send(new sdk.CreateCertificateFromCsrCommand({ certificateSigningRequest: local?.csrPem ?? input.csrPem!, setAsActive: true }), opts),
    );
    const certificateArn = cert.certificateArn!;
    try {
      await this.iot('AttachPolicy', ({ client, sdk }) => client.send(new sdk.AttachPolicyCommand({ policyName, target: certificateArn }), opts));
      await this.iot('AttachThingPrincipal', ({ client, sdk }) => client.send(new sdk.AttachThingPrincipalCommand({ thingName, principal: certificateArn }), opts));
    } catch (error) {
      await this.retireCertificate(cert.certificateId!).catch(() => {});
      if (isAwsError(error, 'ResourceNotFoundException')) {
        throw new UserError(`Policy "${input.policyName}" (${policyName} on AWS) or thing ${thingName} does not exist.`, 'Run `iotctl apply` to create the device policy from iotctl.yaml.', 'POLICY_NOT_FOUND');
      }
      throw error;
    }
    const certPem = cert.certificatePem!;
    return {
      thingName,
      certificateId: cert.certificateId!,
      fingerprint: fingerprintOf(certPem),
      certPem,
      ...(local ? { keyPem: local.keyPem } : {}),
      caPem: AMAZON_ROOT_CA_1,
      endpoint: await this.endpoint(),
      notAfter: new Date(new X509Certificate(certPem).validTo).toISOString(),
    };
  }

  async rotations(thingName?: string): Promise<RotationState[]> {
    const names = thingName ? [thingName] : await this.thingNames();
    const found = await mapLimit(names, 8, async (name) => {
      const thing = await this.describeThing(name);
      return thing ? parseRotation(name, thing.attributes?.[ROTATION_ATTRIBUTE]) : undefined;
    });
    return found.filter((r) => r !== undefined);
  }

  /** Merged into the thing's attributes; an empty value removes the attribute (AWS's UpdateThing semantics). */
  async setRotation(thingName: string, state: RotationState | undefined): Promise<void> {
    const value = state ? [state.oldCertificateId, state.newCertificateId, Math.floor(Date.parse(state.startedAt) / 1000), Math.floor(Date.parse(state.graceUntil) / 1000)].join(':') : '';
    await this.iot('UpdateThing', ({ client, sdk }) =>
      client.send(new sdk.UpdateThingCommand({ thingName, attributePayload: { attributes: { [ROTATION_ATTRIBUTE]: value }, merge: true } }), this.aws.sendOptions),
    );
  }

  /**
   * AWS's control plane sees no connections, except through fleet indexing's thing connectivity: when it is on,
   * a thing connected since the rotation began counts (per thing, not per certificate: the device connecting
   * again with its old certificate would count too, which is why it is read only after the grace).
   */
  async connectedSince(_certificateId: string, thingName: string, sinceMs: number): Promise<ConnectionEvidence> {
    this.connectivityIndexed ??= this.iot('GetIndexingConfiguration', ({ client, sdk }) => client.send(new sdk.GetIndexingConfigurationCommand({}), this.aws.sendOptions)).then(
      (out) => out.thingIndexingConfiguration?.thingConnectivityIndexingMode === 'STATUS',
      () => false,
    );
    if (!(await this.connectivityIndexed)) return { known: false, connected: false };
    const out = await this.iot('SearchIndex', ({ client, sdk }) => client.send(new sdk.SearchIndexCommand({ indexName: 'AWS_Things', queryString: `thingName:${thingName}` }), this.aws.sendOptions));
    const connectivity = out.things?.find((t) => t.thingName === thingName)?.connectivity;
    // AWS answers epoch milliseconds; moto answers seconds.
    const raw = connectivity?.timestamp ?? 0;
    const at = raw < 1e12 ? raw * 1000 : raw;
    const connected = Boolean(connectivity?.connected) && at >= sinceMs - 1000;
    return { known: true, connected, ...(connected ? { evidence: `fleet indexing: ${thingName} connected at ${new Date(at).toISOString()}` } : {}) };
  }

  /** INACTIVE first (AWS drops its connections), then every thing and policy detached, then DeleteCertificate. */
  async retireCertificate(certificateId: string): Promise<void> {
    const opts = this.aws.sendOptions;
    let cert;
    try {
      cert = await this.describeCertificate(certificateId);
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return;
      throw error;
    }
    const arn = cert.certificateArn!;
    if (cert.status === 'ACTIVE') await this.iot('UpdateCertificate', ({ client, sdk }) => client.send(new sdk.UpdateCertificateCommand({ certificateId, newStatus: 'INACTIVE' }), opts));
    for (const thingName of await this.principalThings(arn)) {
      await this.iot('DetachThingPrincipal', ({ client, sdk }) => client.send(new sdk.DetachThingPrincipalCommand({ thingName, principal: arn }), opts));
    }
    for (const policyName of await this.attachedPolicies(arn)) {
      await this.iot('DetachPolicy', ({ client, sdk }) => client.send(new sdk.DetachPolicyCommand({ policyName, target: arn }), opts));
    }
    await this.deleteCertificate(certificateId, 'INACTIVE');
  }

  /** INACTIVE (reversible) by default; REVOKED (permanent) when asked. */
  async revoke(thingName: string, opts: { revoked?: boolean } = {}): Promise<{ revoked: string[] }> {
    const principals = await this.requirePrincipals(thingName);
    const newStatus = opts.revoked ? 'REVOKED' : 'INACTIVE';
    const changed: string[] = [];
    for (const arn of principals) {
      const cert = await this.describeCertificate(certificateIdOfArn(arn));
      if (cert.status === newStatus || cert.status === 'REVOKED') continue;
      await this.iot('UpdateCertificate', ({ client, sdk }) => client.send(new sdk.UpdateCertificateCommand({ certificateId: cert.certificateId!, newStatus }), this.aws.sendOptions));
      changed.push(cert.certificateId!);
    }
    return { revoked: changed };
  }

  // ------------------------------------------------------------------ fleet provisioning (./provisioning.ts)

  private provisioningAdapter?: Promise<import('./provisioning.js').AwsProvisioning>;
  private provisioning() {
    return (this.provisioningAdapter ??= import('./provisioning.js').then((m) => new m.AwsProvisioning(this.aws, this.names, this.owner)));
  }

  async templateConfig(input: ProvisioningTemplateInput): Promise<ProvisioningTemplateConfig> {
    return (await this.provisioning()).templateConfig(input);
  }

  async listTemplates(declared?: boolean): Promise<DeployedProvisioningTemplate[]> {
    return (await this.provisioning()).list(declared);
  }

  /** The things it provisions join the stage's group, and their thing type must exist before a device calls. */
  async putTemplate(input: ProvisioningTemplateInput): Promise<void> {
    await this.ensureGroup();
    await this.ensureThingType(input.thingType);
    const p = await this.provisioning();
    const current = (await p.list()).find((t) => t.name === input.name);
    await p.put(input, await p.templateConfig(input), current?.config);
  }

  async deleteTemplate(name: string, physical?: string): Promise<void> {
    await (await this.provisioning()).delete(name, physical);
  }

  /** CreateKeysAndCertificate (AWS keeps no key) and the template's claim policy, made or updated first. */
  async issueClaimCertificate(input: ProvisioningTemplateInput): Promise<ClaimCertificate> {
    const logicalPolicy = `${input.name}-claim`;
    await this.putPolicy(logicalPolicy, claimPolicy(this.names.provisioningTemplate(input.name)));
    const policyName = this.names.devicePolicy(logicalPolicy);
    const out = await this.iot('CreateKeysAndCertificate', ({ client, sdk }) => client.send(new sdk.CreateKeysAndCertificateCommand({ setAsActive: true }), this.aws.sendOptions));
    try {
      await this.iot('AttachPolicy', ({ client, sdk }) => client.send(new sdk.AttachPolicyCommand({ policyName, target: out.certificateArn! }), this.aws.sendOptions));
    } catch (error) {
      await this.deleteCertificate(out.certificateId!).catch(() => {});
      throw error;
    }
    return { template: input.name, certificateId: out.certificateId!, certPem: out.certificatePem!, keyPem: out.keyPair?.PrivateKey, caPem: AMAZON_ROOT_CA_1, policyName, endpoint: await this.endpoint() };
  }

  async revokeCertificate(certificateId: string, opts: { revoked?: boolean } = {}): Promise<void> {
    await this.describeCertificate(certificateId);
    await this.iot('UpdateCertificate', ({ client, sdk }) => client.send(new sdk.UpdateCertificateCommand({ certificateId, newStatus: opts.revoked ? 'REVOKED' : 'INACTIVE' }), this.aws.sendOptions));
  }

  /** Detaches every certificate (and its policies), deactivates and deletes it, then deletes the thing. */
  async delete(thingName: string): Promise<{ deletedCertificates: string[] }> {
    const opts = this.aws.sendOptions;
    const principals = await this.requirePrincipals(thingName);
    const deleted: string[] = [];
    for (const arn of principals) {
      const certificateId = certificateIdOfArn(arn);
      for (const policyName of await this.attachedPolicies(arn)) await this.iot('DetachPolicy', ({ client, sdk }) => client.send(new sdk.DetachPolicyCommand({ policyName, target: arn }), opts));
      await this.iot('DetachThingPrincipal', ({ client, sdk }) => client.send(new sdk.DetachThingPrincipalCommand({ thingName, principal: arn }), opts));
      await this.deleteCertificate(certificateId);
      deleted.push(certificateId);
    }
    await this.iot('DeleteThing', ({ client, sdk }) => client.send(new sdk.DeleteThingCommand({ thingName }), opts));
    return { deletedCertificates: deleted };
  }

  /** The thing's certificates, once it is known to be this stage's device: another stage's is never touched from here. */
  private async requirePrincipals(thingName: string): Promise<string[]> {
    try {
      await this.assertOurs(thingName);
      return await this.principalsOf(thingName);
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) throw new UserError(`No thing named "${thingName}".`, 'List the registered devices with `iotctl device list`.', 'THING_NOT_FOUND');
      throw error;
    }
  }
}

/**
 * The refusal for a stage's policy or group name held by something else. `apply --adopt` does not take these
 * over (their names are iotctl's own scheme, so a hand-made one is a collision, not a deployment to adopt).
 */
function notOursHere(kind: string, name: string, tags: Record<string, string>, owner: Owner): UserError {
  return new UserError(notOurs(kind, name, tags, owner).message, `Remove or rename that ${kind}: iotctl creates ${name} for this project and stage itself, and never takes over one it did not create.`, 'RESOURCE_NOT_OURS');
}

/** The thing's own attributes, without the rotation record iotctl keeps among them. */
function userAttributes(attributes: Record<string, string> | undefined): Record<string, string> {
  const { [ROTATION_ATTRIBUTE]: _rotation, ...rest } = attributes ?? {};
  return rest;
}

export function parseRotation(thingName: string, value: string | undefined): RotationState | undefined {
  const m = /^([0-9a-f]{64}):([0-9a-f]{64}):(\d+):(\d+)$/.exec(value ?? '');
  if (!m) return undefined;
  return { thingName, oldCertificateId: m[1]!, newCertificateId: m[2]!, startedAt: new Date(Number(m[3]) * 1000).toISOString(), graceUntil: new Date(Number(m[4]) * 1000).toISOString() };
}

function certificateIdOfArn(arn: string): string {
  return arn.slice(arn.lastIndexOf('/') + 1);
}

function latestCertificate(principals: string[], certs: Map<string, { id: string; status: string; createdAt: string }>) {
  return principals
    .map((arn) => certs.get(certificateIdOfArn(arn)))
    .filter((c) => c !== undefined)
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
    .at(-1);
}

/** `SHA256:AA:BB:...`, as the local target writes it. */
function fingerprintOf(certPem: string): string {
  return `SHA256:${new X509Certificate(certPem).fingerprint256}`;
}

/** JSON with sorted keys: an unchanged document compares equal whatever order AWS returns its keys in. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v));
}

/**
 * Workers for bulk registration: twice the slowest API's rate (at least 4). Each device goes through every paced
 * API, so the slowest one sets the throughput; twice its rate keeps it busy through ~2 s of latency per device.
 * More would only queue devices behind it, or, against a service slower than its quota, pile requests up there.
 */
function workersFor(tps: Record<string, number>): number {
  return Math.max(4, Math.ceil(2 * Math.min(...Object.values(tps))));
}
