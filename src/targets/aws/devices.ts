import { X509Certificate } from 'node:crypto';
import type { DeviceDetails, DeviceRegistryPort, DeviceSummary, Endpoint, RegisterDeviceInput, RegisteredDevice } from '../../ports.js';
import type { PolicyDocument } from '../../iot/policy/index.js';
import { UserError } from '../../ui/errors.js';
import { AMAZON_ROOT_CA_1 } from './amazon-root-ca.js';
import { policyInPartition } from './arn.js';
import { mapLimit } from './concurrency.js';
import { ApiRateLimiter, IOT_REGISTRATION_TPS, tpsFromEnv } from './rate.js';
import { isAwsError, type AwsClients, type Service } from './sdk.js';

/** The key and CSR helpers (and @peculiar/x509 under them) load only when a device is registered, not to list devices. */
const pki = () => import('../local/ca.js');

/** AWS IoT's thing name pattern and length; checked before any call so a bad name creates nothing. */
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
/** AWS keeps at most 5 versions of a policy. */
const MAX_POLICY_VERSIONS = 5;

export interface AwsDevicesOptions {
  /** Per-API rates (TPS); default: the documented ones, overridden by IOTCTL_AWS_TPS. */
  tps?: Record<string, number>;
}

/**
 * The aws target's device registry: things, certificates and policies in AWS IoT Core.
 * Registration keeps the private key on this machine (local P-256 key + CreateCertificateFromCsr)
 * unless AWS-generated keys are asked for, and undoes what it created when a step fails.
 */
export class AwsDevices implements DeviceRegistryPort {
  readonly limiter: ApiRateLimiter;
  /** Workers for bulk registration: enough to keep every paced API busy through ~2 s of latency per device. */
  private readonly workers: number;
  private endpointCache?: Promise<Endpoint>;
  private readonly thingTypes = new Map<string, Promise<void>>();

  constructor(
    private readonly aws: AwsClients,
    opts: AwsDevicesOptions = {},
  ) {
    const tps = opts.tps ?? tpsFromEnv(IOT_REGISTRATION_TPS);
    this.limiter = new ApiRateLimiter(tps);
    this.workers = Math.max(4, Math.ceil(2 * Math.max(...Object.values(tps))));
  }

  /** Twice the fastest API's rate: enough workers to keep each paced API busy. */
  async bulkConcurrency(): Promise<number> {
    return this.workers;
  }

  private get signal() {
    return this.aws.settings.signal;
  }

  /** One IoT call, paced per API and retried while AWS throttles it. */
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

  async getPolicy(name: string): Promise<PolicyDocument | undefined> {
    try {
      // GetPolicy answers the default version's document.
      const out = await this.iot('GetPolicy', ({ client, sdk }) => client.send(new sdk.GetPolicyCommand({ policyName: name }), this.aws.sendOptions));
      return JSON.parse(policyInPartition(out.policyDocument ?? '{}', await this.aws.region(), true)) as PolicyDocument;
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  /** Creates the policy, or adds a default version when the document changed (making room under AWS's 5-version limit). */
  async putPolicy(name: string, document: PolicyDocument): Promise<void> {
    const policyDocument = policyInPartition(JSON.stringify(document), await this.aws.region());
    const current = await this.getPolicy(name);
    if (!current) {
      await this.iot('CreatePolicy', ({ client, sdk }) => client.send(new sdk.CreatePolicyCommand({ policyName: name, policyDocument }), this.aws.sendOptions));
      return;
    }
    if (canonicalJson(current) === canonicalJson(document)) return;
    const { policyVersions = [] } = await this.iot('ListPolicyVersions', ({ client, sdk }) => client.send(new sdk.ListPolicyVersionsCommand({ policyName: name }), this.aws.sendOptions));
    if (policyVersions.length >= MAX_POLICY_VERSIONS) {
      const oldest = policyVersions
        .filter((v) => !v.isDefaultVersion)
        .sort((a, b) => (a.createDate?.getTime() ?? 0) - (b.createDate?.getTime() ?? 0) || Number(a.versionId) - Number(b.versionId))[0];
      if (oldest) {
        await this.iot('DeletePolicyVersion', ({ client, sdk }) =>
          client.send(new sdk.DeletePolicyVersionCommand({ policyName: name, policyVersionId: oldest.versionId! }), this.aws.sendOptions),
        );
      }
    }
    await this.iot('CreatePolicyVersion', ({ client, sdk }) =>
      client.send(new sdk.CreatePolicyVersionCommand({ policyName: name, policyDocument, setAsDefault: true }), this.aws.sendOptions),
    );
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
        await this.iot('AttachPolicy', ({ client, sdk }) => client.send(new sdk.AttachPolicyCommand({ policyName: input.policyName, target: certificateArn }), opts));
      } catch (error) {
        if (isAwsError(error, 'ResourceNotFoundException')) {
          throw new UserError(`Policy "${input.policyName}" does not exist.`, 'Run `iotctl apply` to create the device policy from iotctl.yaml.', 'POLICY_NOT_FOUND');
        }
        throw error;
      }
      undo.push({ what: `policy attachment`, run: () => this.iot('DetachPolicy', ({ client, sdk }) => client.send(new sdk.DetachPolicyCommand({ policyName: input.policyName, target: certificateArn }), opts)) });

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
  private async deleteCertificate(certificateId: string): Promise<void> {
    const opts = this.aws.sendOptions;
    await this.iot('UpdateCertificate', ({ client, sdk }) => client.send(new sdk.UpdateCertificateCommand({ certificateId, newStatus: 'INACTIVE' }), opts));
    // Detaching a thing is eventually consistent on AWS: DeleteCertificate may still see it for a moment.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.iot('DeleteCertificate', ({ client, sdk }) => client.send(new sdk.DeleteCertificateCommand({ certificateId, forceDelete: true }), opts));
        return;
      } catch (error) {
        if (!isAwsError(error, 'DeleteConflictException') || attempt >= 5) throw error;
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      }
    }
  }

  private async principalsOf(thingName: string): Promise<string[]> {
    const principals: string[] = [];
    let nextToken: string | undefined;
    do {
      const out = await this.iot('ListThingPrincipals', ({ client, sdk }) => client.send(new sdk.ListThingPrincipalsCommand({ thingName, nextToken }), this.aws.sendOptions));
      principals.push(...(out.principals ?? []));
      nextToken = out.nextToken;
    } while (nextToken);
    return principals.filter((p) => /:cert\/[0-9a-f]+$/i.test(p));
  }

  async list(): Promise<DeviceSummary[]> {
    // Things and certificates are independent listings: one round trip instead of two.
    const [things, certs] = await Promise.all([this.allThings(), this.allCertificates()]);
    const rows = await mapLimit(things, 8, async (t) => {
      const latest = latestCertificate(await this.principalsOf(t.thingName!).catch(() => []), certs);
      return {
        thingName: t.thingName!,
        thingType: t.thingTypeName ?? '',
        attributes: t.attributes ?? {},
        certificateId: latest?.id ?? null,
        certificateStatus: latest?.status ?? null,
        // AWS keeps no creation time for a thing: its newest certificate's stands in.
        createdAt: latest?.createdAt ?? '',
      };
    });
    return rows.sort((a, b) => a.thingName.localeCompare(b.thingName));
  }

  private async allThings(): Promise<{ thingName?: string; thingTypeName?: string; attributes?: Record<string, string> }[]> {
    const things: { thingName?: string; thingTypeName?: string; attributes?: Record<string, string> }[] = [];
    let nextToken: string | undefined;
    do {
      const out = await this.iot('ListThings', ({ client, sdk }) => client.send(new sdk.ListThingsCommand({ maxResults: 250, nextToken }), this.aws.sendOptions));
      things.push(...(out.things ?? []));
      nextToken = out.nextToken;
    } while (nextToken);
    return things;
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
    let thing;
    try {
      thing = await this.iot('DescribeThing', ({ client, sdk }) => client.send(new sdk.DescribeThingCommand({ thingName }), this.aws.sendOptions));
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
    const described = await mapLimit(await this.principalsOf(thingName), 4, (arn) => this.describeCertificate(certificateIdOfArn(arn)));
    const cert = described.sort((a, b) => (a.creationDate?.getTime() ?? 0) - (b.creationDate?.getTime() ?? 0)).at(-1);
    let policies: string[] = [];
    if (cert) {
      const out = await this.iot('ListAttachedPolicies', ({ client, sdk }) => client.send(new sdk.ListAttachedPoliciesCommand({ target: cert.certificateArn!, pageSize: 250 }), this.aws.sendOptions));
      policies = (out.policies ?? []).map((p) => p.policyName!).sort();
    }
    return {
      thingName,
      thingType: thing.thingTypeName ?? '',
      attributes: thing.attributes ?? {},
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

  /** Detaches every certificate (and its policies), deactivates and deletes it, then deletes the thing. */
  async delete(thingName: string): Promise<{ deletedCertificates: string[] }> {
    const opts = this.aws.sendOptions;
    const principals = await this.requirePrincipals(thingName);
    const deleted: string[] = [];
    for (const arn of principals) {
      const certificateId = certificateIdOfArn(arn);
      const { policies = [] } = await this.iot('ListAttachedPolicies', ({ client, sdk }) => client.send(new sdk.ListAttachedPoliciesCommand({ target: arn, pageSize: 250 }), opts));
      for (const p of policies) await this.iot('DetachPolicy', ({ client, sdk }) => client.send(new sdk.DetachPolicyCommand({ policyName: p.policyName!, target: arn }), opts));
      await this.iot('DetachThingPrincipal', ({ client, sdk }) => client.send(new sdk.DetachThingPrincipalCommand({ thingName, principal: arn }), opts));
      await this.deleteCertificate(certificateId);
      deleted.push(certificateId);
    }
    await this.iot('DeleteThing', ({ client, sdk }) => client.send(new sdk.DeleteThingCommand({ thingName }), opts));
    return { deletedCertificates: deleted };
  }

  private async requirePrincipals(thingName: string): Promise<string[]> {
    try {
      return await this.principalsOf(thingName);
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) throw new UserError(`No thing named "${thingName}".`, 'List the registered devices with `iotctl device list`.', 'THING_NOT_FOUND');
      throw error;
    }
  }
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
