import { randomBytes } from 'node:crypto';
import { evaluateTemplate, ProvisioningError, type ProvisioningRequest } from '../../iot/provisioning.js';
import type { LocalCa } from './ca.js';
import { decodeCbor } from '../../iot/cbor.js';
import type { Registry } from './registry.js';

/** AWS: "the certificateOwnershipToken returned by CreateCertificateFromCsr expires after one hour". */
export const OWNERSHIP_TOKEN_TTL_MS = 3_600_000;
const MAX_CSR_CHARS = 16_384;
/**
 * Certificates one claim certificate may have waiting for RegisterThing: a claim is shared by a whole factory, and
 * a leaked one must not fill the registry with keys (AWS throttles these APIs per account instead).
 */
export const MAX_PENDING_PER_CLAIM = 1000;

/** A pre-provisioning hook's answer (AWS's Lambda contract). */
export interface HookAnswer {
  allowProvisioning?: boolean;
  parameterOverrides?: Record<string, string>;
}
export type HookInvoker = (functionName: string, event: unknown) => Promise<unknown>;

export interface ProvisioningCaller {
  /** The certificate the request came in with (the claim certificate). */
  certificateId: string;
  clientId: string;
}

/**
 * The local fleet provisioning service behind the broker's `$aws/certificates/...` and
 * `$aws/provisioning-templates/<name>/provision` topics: request payloads in, the accepted payload out, or a
 * ProvisioningError (the rejected payload), as AWS IoT documents the device provisioning MQTT API.
 */
export class FleetProvisioning {
  constructor(
    private readonly registry: Registry,
    private readonly ca: () => Promise<LocalCa>,
    private readonly hook?: HookInvoker,
    private readonly clock: () => number = Date.now,
  ) {}

  async handle(request: ProvisioningRequest, payload: Buffer, caller: ProvisioningCaller): Promise<Record<string, unknown>> {
    const body = parsePayload(payload, request.format);
    if (request.api !== 'RegisterThing' && this.registry.pendingOf(caller.certificateId, this.clock()) >= MAX_PENDING_PER_CLAIM) {
      throw new ProvisioningError(429, 'Throttling', `Too many certificates are waiting for RegisterThing (${MAX_PENDING_PER_CLAIM} per claim certificate); register them, or wait until their ownership tokens expire`);
    }
    if (request.api === 'CreateCertificateFromCsr') return this.createFromCsr(body, caller);
    if (request.api === 'CreateKeysAndCertificate') return this.createKeys(caller);
    return this.registerThing(request.template, body, caller);
  }

  private async createFromCsr(body: Record<string, unknown>, caller: ProvisioningCaller) {
    const csr = body.certificateSigningRequest;
    if (typeof csr !== 'string' || !csr.trim()) throw new ProvisioningError(400, 'InvalidPayload', 'certificateSigningRequest is required');
    if (csr.length > MAX_CSR_CHARS || !csr.includes('-----BEGIN CERTIFICATE REQUEST-----')) throw new ProvisioningError(400, 'InvalidCsr', 'certificateSigningRequest is not a PEM certificate signing request');
    let issued;
    try {
      issued = await (await this.ca()).issue({ thingName: 'provisioned', csrPem: csr });
    } catch (e) {
      throw new ProvisioningError(400, 'InvalidCsr', `The certificate signing request is not valid: ${(e as Error).message}`);
    }
    return { certificateId: issued.certificateId, certificatePem: issued.certPem, certificateOwnershipToken: this.pending(issued, caller) };
  }

  private async createKeys(caller: ProvisioningCaller) {
    const issued = await (await this.ca()).issue({ thingName: 'provisioned' });
    return { certificateId: issued.certificateId, certificatePem: issued.certPem, privateKey: issued.keyPem!, certificateOwnershipToken: this.pending(issued, caller) };
  }

  /** The new certificate, PENDING_ACTIVATION with no thing or policy, and its ownership token. */
  private pending(issued: { certificateId: string; certPem: string; fingerprint: string; notAfter: Date }, caller: ProvisioningCaller): string {
    const now = this.clock();
    const token = randomBytes(32).toString('base64url');
    this.registry.expireOwnershipTokens(now);
    this.registry.transaction(() => {
      this.registry.addCertificate({ id: issued.certificateId, thingName: null, pem: issued.certPem, fingerprint: issued.fingerprint, status: 'PENDING_ACTIVATION', notAfter: issued.notAfter.getTime() }, now);
      this.registry.addOwnershipToken(token, issued.certificateId, caller.certificateId, now + OWNERSHIP_TOKEN_TTL_MS);
    });
    return token;
  }

  private async registerThing(templateName: string, body: Record<string, unknown>, caller: ProvisioningCaller) {
    const template = this.registry.getProvisioningTemplate(templateName);
    if (!template || !template.enabled) throw new ProvisioningError(404, 'ResourceNotFound', `Template ${templateName} not found or not enabled`);
    const token = body.certificateOwnershipToken;
    if (typeof token !== 'string' || !token) throw new ProvisioningError(400, 'InvalidCertificateOwnershipToken', 'Certificate ownership token cannot be empty.');
    const certificateId = this.registry.ownershipToken(token, this.clock());
    const certificate = certificateId && this.registry.getCertificate(certificateId);
    if (!certificate || certificate.status !== 'PENDING_ACTIVATION') throw new ProvisioningError(400, 'InvalidCertificateOwnershipToken', 'Certificate ownership token is invalid or expired.');
    const given = body.parameters ?? {};
    if (typeof given !== 'object' || Array.isArray(given) || Object.values(given).some((v) => typeof v !== 'string')) {
      throw new ProvisioningError(400, 'InvalidParameters', 'parameters must be an object of string values');
    }
    let parameters = given as Record<string, string>;
    if (template.preProvisioningHook) parameters = await this.runHook(template.preProvisioningHook, templateName, certificate, parameters, caller);
    const resources = evaluateTemplate(template.body, parameters, certificate.id);
    for (const policy of resources.policies) if (!this.registry.getPolicy(policy)) throw new ProvisioningError(400, 'ResourceRegistrationFailure', `Policy ${policy} does not exist`);
    this.registry.transaction(() => {
      const existing = this.registry.getThing(resources.thingName);
      const thingType = resources.thingType ?? existing?.thingType ?? 'default';
      // AttributePayload MERGE, ThingTypeName REPLACE (the OverrideSettings iotctl's template sets).
      if (existing) this.registry.updateThingAttributes(existing.name, { ...existing.attributes, ...resources.attributes }, thingType);
      else this.registry.createThing({ name: resources.thingName, thingType, attributes: resources.attributes });
      this.registry.setCertificateThing(certificate.id, resources.thingName);
      this.registry.setCertificateStatus(certificate.id, resources.certificateStatus);
      for (const policy of resources.policies) this.registry.attachPolicy(policy, certificate.id);
      this.registry.deleteOwnershipToken(token);
    });
    return { deviceConfiguration: {}, thingName: resources.thingName };
  }

  private async runHook(fn: string, template: string, certificate: { id: string; pem: string }, parameters: Record<string, string>, caller: ProvisioningCaller): Promise<Record<string, string>> {
    if (!this.hook) throw new ProvisioningError(500, 'InternalFailure', `The pre-provisioning hook ${fn} cannot run: the local function runner is not started`);
    let answer: HookAnswer;
    try {
      answer = ((await this.hook(fn, {
        claimCertificateId: caller.certificateId,
        certificateId: certificate.id,
        certificatePem: certificate.pem,
        templateArn: `arn:aws:iot:local:000000000000:provisioningtemplate/${template}`,
        clientId: caller.clientId,
        parameters,
      })) ?? {}) as HookAnswer;
    } catch (e) {
      throw new ProvisioningError(500, 'InternalFailure', `The pre-provisioning hook failed: ${(e as Error).message}`);
    }
    if (answer.allowProvisioning !== true) throw new ProvisioningError(403, 'AccessDenied', 'The pre-provisioning hook did not allow provisioning');
    return { ...parameters, ...(answer.parameterOverrides ?? {}) };
  }
}

function parsePayload(payload: Buffer, format: 'json' | 'cbor'): Record<string, unknown> {
  if (!payload.length) return {};
  let body: unknown;
  try {
    body = format === 'cbor' ? decodeCbor(payload) : JSON.parse(payload.toString('utf8'));
  } catch {
    throw new ProvisioningError(400, 'InvalidPayload', `The request payload is not valid ${format === 'cbor' ? 'CBOR' : 'JSON'}`);
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ProvisioningError(400, 'InvalidPayload', `The request payload must be a ${format === 'cbor' ? 'CBOR map' : 'JSON object'}`);
  return body as Record<string, unknown>;
}
