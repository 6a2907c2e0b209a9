import type { AddCertificateInput, ClaimCertificate, ConnectionEvidence, DeployedProvisioningTemplate, DeviceRegistryPort, DeviceDetails, DeviceSummary, Endpoint, ProvisioningTemplateConfig, ProvisioningTemplateInput, RegisterDeviceInput, RegisteredDevice } from '../../ports.js';
import type { CertificateView, RotationState } from '../../iot/certificates.js';
import { claimPolicy, provisioningTemplateBody } from '../../iot/provisioning.js';
import type { PolicyDocument } from '../../iot/policy/index.js';
import { UserError } from '../../ui/errors.js';
import type { LocalCa } from './ca.js';
import type { LocalPki } from './pki.js';
import { Registry, type CertificateRecord } from './registry.js';
import type { Db } from './store.js';

/** The local target's device registry: things, certificates from the local CA, and policies. */
export class LocalDevices implements DeviceRegistryPort {
  private readonly registry: Registry;
  private pki?: Promise<{ pki: LocalPki; ca: LocalCa }>;

  constructor(db: Db, private readonly stateDir: string, private readonly endpointOf: () => Endpoint) {
    this.registry = new Registry(db);
  }

  /** Registration is local CPU and SQLite work: a few workers keep the key generation busy. */
  async bulkConcurrency(): Promise<number> {
    return 8;
  }

  /** The CA and its x509 library load only for the commands that issue or hand out certificates. */
  private loadPki() {
    return (this.pki ??= Promise.all([import('./pki.js'), import('./ca.js')]).then(async ([{ ensurePki }, { LocalCa }]) => {
      const pki = await ensurePki(this.stateDir);
      return { pki, ca: await LocalCa.load(pki.ca) };
    }));
  }

  async endpoint(): Promise<Endpoint> {
    return this.endpointOf();
  }

  async caPem(): Promise<string> {
    return (await this.loadPki()).pki.ca.certPem;
  }

  async putPolicy(name: string, document: PolicyDocument): Promise<void> {
    this.registry.putPolicy(name, document);
  }

  async getPolicy(name: string): Promise<PolicyDocument | undefined> {
    return this.registry.getPolicy(name);
  }

  async exists(thingName: string): Promise<boolean> {
    return Boolean(this.registry.getThing(thingName));
  }

  /** All-or-nothing: the certificate is issued first, then thing, certificate and attachments commit together. */
  async register(input: RegisterDeviceInput): Promise<RegisteredDevice> {
    if (this.registry.getThing(input.thingName)) {
      throw new UserError(`Thing "${input.thingName}" already exists.`, `Pick another name, or remove it first with \`iotctl device delete ${input.thingName}\`.`, 'THING_EXISTS');
    }
    if (!this.registry.getPolicy(input.policyName)) {
      throw new UserError(`Policy "${input.policyName}" does not exist.`, 'Run `iotctl apply` to create the device policy from iotctl.yaml.', 'POLICY_NOT_FOUND');
    }
    const { pki, ca } = await this.loadPki();
    const issued = await ca.issue({ thingName: input.thingName, csrPem: input.csrPem, ...(input.validityMs !== undefined ? { validityMs: input.validityMs } : {}) });
    this.registry.transaction(() => {
      this.registry.createThing({ name: input.thingName, thingType: input.thingType, attributes: input.attributes });
      this.registry.addCertificate({ id: issued.certificateId, thingName: input.thingName, pem: issued.certPem, fingerprint: issued.fingerprint, status: 'ACTIVE', notAfter: issued.notAfter.getTime() });
      this.registry.attachPolicy(input.policyName, issued.certificateId);
    });
    return { thingName: input.thingName, certificateId: issued.certificateId, fingerprint: issued.fingerprint, certPem: issued.certPem, keyPem: issued.keyPem, caPem: pki.ca.certPem, endpoint: await this.endpoint() };
  }

  /** A further certificate for a thing (rotation): issued, then certificate and policy attachment commit together. */
  async addCertificate(input: AddCertificateInput): Promise<RegisteredDevice & { notAfter: string | null }> {
    this.requireThing(input.thingName);
    if (!this.registry.getPolicy(input.policyName)) {
      throw new UserError(`Policy "${input.policyName}" does not exist.`, 'Run `iotctl apply` to create the device policy from iotctl.yaml.', 'POLICY_NOT_FOUND');
    }
    const { pki, ca } = await this.loadPki();
    const issued = await ca.issue({ thingName: input.thingName, csrPem: input.csrPem, ...(input.validityMs !== undefined ? { validityMs: input.validityMs } : {}) });
    this.registry.transaction(() => {
      this.registry.addCertificate({ id: issued.certificateId, thingName: input.thingName, pem: issued.certPem, fingerprint: issued.fingerprint, status: 'ACTIVE', notAfter: issued.notAfter.getTime() });
      this.registry.attachPolicy(input.policyName, issued.certificateId);
    });
    return {
      thingName: input.thingName,
      certificateId: issued.certificateId,
      fingerprint: issued.fingerprint,
      certPem: issued.certPem,
      keyPem: issued.keyPem,
      caPem: pki.ca.certPem,
      endpoint: await this.endpoint(),
      notAfter: issued.notAfter.toISOString(),
    };
  }

  async thingNames(): Promise<string[]> {
    return this.registry.listThings().map((t) => t.name);
  }

  async certificates(opts: { thingName?: string; orphans?: boolean } = {}): Promise<CertificateView[]> {
    if (opts.thingName) this.requireThing(opts.thingName);
    const certs = opts.thingName ? this.registry.certificatesOf(opts.thingName) : this.registry.listCertificates();
    return certs
      .filter((c) => opts.orphans || opts.thingName || c.thingName !== null)
      .map((c) => ({
        certificateId: c.id,
        things: c.thingName ? [c.thingName] : [],
        status: c.status,
        notAfter: new Date(c.notAfter).toISOString(),
        createdAt: new Date(c.createdAt).toISOString(),
        lastConnectedAt: c.lastConnectedAt === null ? null : new Date(c.lastConnectedAt).toISOString(),
      }));
  }

  async rotations(thingName?: string): Promise<RotationState[]> {
    return this.registry
      .rotations()
      .filter((r) => !thingName || r.thingName === thingName)
      .map((r) => ({ ...r, startedAt: new Date(r.startedAt).toISOString(), graceUntil: new Date(r.graceUntil).toISOString() }));
  }

  async setRotation(thingName: string, state: RotationState | undefined): Promise<void> {
    this.registry.setRotation(thingName, state && { oldCertificateId: state.oldCertificateId, newCertificateId: state.newCertificateId, startedAt: Date.parse(state.startedAt), graceUntil: Date.parse(state.graceUntil) });
  }

  /** The broker records every accepted connection's certificate in the registry. */
  async connectedSince(certificateId: string, _thingName: string, sinceMs: number): Promise<ConnectionEvidence> {
    const at = this.registry.getCertificate(certificateId)?.lastConnectedAt ?? null;
    // The broker writes a certificate's connection at most once a minute: a reconnect within that minute is not rewritten.
    const connected = at !== null && at >= sinceMs - 60_000;
    return { known: true, connected, ...(connected ? { evidence: `the broker accepted a connection with it at ${new Date(at).toISOString()}` } : {}) };
  }

  /** Revoked in the registry's sense first (the broker drops its connections), then detached and deleted in one transaction. */
  async retireCertificate(certificateId: string): Promise<void> {
    if (!this.registry.getCertificate(certificateId)) return;
    this.registry.transaction(() => {
      this.registry.setCertificateStatus(certificateId, 'INACTIVE');
      this.registry.detachPolicies(certificateId);
      this.registry.deleteCertificate(certificateId);
    });
  }

  async list(): Promise<DeviceSummary[]> {
    return this.registry.listThings().map((t) => summary(t, this.registry.certificatesOf(t.name).at(-1)));
  }

  async show(thingName: string): Promise<DeviceDetails | undefined> {
    const thing = this.registry.getThing(thingName);
    if (!thing) return undefined;
    const cert = this.registry.certificatesOf(thingName).at(-1);
    return {
      ...summary(thing, cert),
      fingerprint: cert?.fingerprint ?? null,
      notAfter: cert ? new Date(cert.notAfter).toISOString() : null,
      policies: cert ? this.registry.policiesOf(cert.id).map((p) => p.name) : [],
    };
  }

  async revoke(thingName: string): Promise<{ revoked: string[] }> {
    this.requireThing(thingName);
    const certs = this.registry.certificatesOf(thingName).filter((c) => c.status !== 'REVOKED');
    this.registry.transaction(() => certs.forEach((c) => this.registry.setCertificateStatus(c.id, 'REVOKED')));
    return { revoked: certs.map((c) => c.id) };
  }

  async delete(thingName: string): Promise<{ deletedCertificates: string[] }> {
    this.requireThing(thingName);
    const certs = this.registry.certificatesOf(thingName);
    this.registry.transaction(() => {
      certs.forEach((c) => this.registry.deleteCertificate(c.id));
      this.registry.deleteThing(thingName);
    });
    return { deletedCertificates: certs.map((c) => c.id) };
  }

  // ------------------------------------------------------------------ fleet provisioning

  async templateConfig(input: ProvisioningTemplateInput): Promise<ProvisioningTemplateConfig> {
    const templateBody = provisioningTemplateBody({ template: input.name, thingName: input.thingName, attributes: input.attributes }, { policy: input.policyName, thingType: input.thingType });
    return { templateBody, description: input.description, enabled: input.enabled, ...(input.preProvisioningHook ? { preProvisioningHook: input.preProvisioningHook } : {}) };
  }

  async listTemplates(): Promise<DeployedProvisioningTemplate[]> {
    return this.registry.listProvisioningTemplates().map((t) => ({
      name: t.name,
      config: { templateBody: t.body, description: t.description, enabled: t.enabled, ...(t.preProvisioningHook ? { preProvisioningHook: t.preProvisioningHook } : {}) },
    }));
  }

  /** The broker reads templates from the registry at each RegisterThing: a running platform learns it at once. */
  async putTemplate(input: ProvisioningTemplateInput): Promise<void> {
    const config = await this.templateConfig(input);
    this.registry.putProvisioningTemplate({ name: input.name, body: config.templateBody, description: config.description, enabled: config.enabled, preProvisioningHook: config.preProvisioningHook });
  }

  async deleteTemplate(name: string): Promise<void> {
    this.registry.deleteProvisioningTemplate(name);
  }

  async issueClaimCertificate(input: ProvisioningTemplateInput): Promise<ClaimCertificate> {
    const policyName = claimPolicyName(input.name);
    const { pki, ca } = await this.loadPki();
    const issued = await ca.issue({ thingName: policyName });
    this.registry.transaction(() => {
      this.registry.putPolicy(policyName, claimPolicy(input.name));
      // No thing: a claim certificate stands for the factory, not for one device.
      this.registry.addCertificate({ id: issued.certificateId, thingName: null, pem: issued.certPem, fingerprint: issued.fingerprint, status: 'ACTIVE', notAfter: issued.notAfter.getTime() });
      this.registry.attachPolicy(policyName, issued.certificateId);
    });
    return { template: input.name, certificateId: issued.certificateId, certPem: issued.certPem, keyPem: issued.keyPem, caPem: pki.ca.certPem, policyName, endpoint: await this.endpoint() };
  }

  async revokeCertificate(certificateId: string): Promise<void> {
    if (!this.registry.getCertificate(certificateId)) throw new UserError(`No certificate ${certificateId}.`, 'Give the certificate id `device claim-certificate` printed (64 hex characters).', 'CERTIFICATE_NOT_FOUND');
    this.registry.setCertificateStatus(certificateId, 'REVOKED');
  }

  private requireThing(thingName: string): void {
    if (!this.registry.getThing(thingName)) throw new UserError(`No thing named "${thingName}".`, 'List the registered devices with `iotctl device list`.', 'THING_NOT_FOUND');
  }
}

function summary(t: { name: string; thingType: string; attributes: Record<string, string>; createdAt: number }, cert?: CertificateRecord): DeviceSummary {
  return { thingName: t.name, thingType: t.thingType, attributes: t.attributes, certificateId: cert?.id ?? null, certificateStatus: cert?.status ?? null, createdAt: new Date(t.createdAt).toISOString() };
}

/** The claim certificate's policy: one per template. */
export function claimPolicyName(template: string): string {
  return `${template}-claim`;
}
