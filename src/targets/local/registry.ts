import type { Db } from './store.js';
import type { PolicyDocument } from '../../iot/policy/index.js';

/**
 * The local device registry, modelled on AWS IoT's: things (with type and attributes), certificates
 * (principals), policies attached to certificates, and certificates attached to things.
 */
export interface Thing {
  name: string;
  thingType: string;
  attributes: Record<string, string>;
  createdAt: number;
}

/** PENDING_ACTIVATION: made by the provisioning MQTT API, until RegisterThing activates it. */
export type CertificateStatus = 'ACTIVE' | 'REVOKED' | 'INACTIVE' | 'PENDING_ACTIVATION';

export interface CertificateRecord {
  id: string;
  thingName: string | null;
  pem: string;
  fingerprint: string;
  status: CertificateStatus;
  createdAt: number;
  notAfter: number;
  /** When the broker last accepted a connection with it (ms), null if never. */
  lastConnectedAt: number | null;
}

export interface RotationRecord {
  thingName: string;
  oldCertificateId: string;
  newCertificateId: string;
  startedAt: number;
  graceUntil: number;
}

export interface Principal {
  certificate: CertificateRecord;
  thing?: Thing;
  policies: { name: string; document: PolicyDocument }[];
}

export class Registry {
  constructor(private readonly db: Db) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS registry_things (
        name TEXT PRIMARY KEY, thing_type TEXT NOT NULL, attributes TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS registry_certificates (
        id TEXT PRIMARY KEY, thing_name TEXT REFERENCES registry_things(name) ON DELETE SET NULL,
        pem TEXT NOT NULL, fingerprint TEXT NOT NULL, status TEXT NOT NULL, created_at INTEGER NOT NULL, not_after INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS registry_certificates_thing ON registry_certificates(thing_name);
      CREATE TABLE IF NOT EXISTS registry_policies (
        name TEXT PRIMARY KEY, document TEXT NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS registry_policy_attachments (
        policy_name TEXT NOT NULL REFERENCES registry_policies(name) ON DELETE CASCADE,
        certificate_id TEXT NOT NULL REFERENCES registry_certificates(id) ON DELETE CASCADE,
        PRIMARY KEY (policy_name, certificate_id));
      CREATE TABLE IF NOT EXISTS registry_rotations (
        thing_name TEXT PRIMARY KEY, old_certificate_id TEXT NOT NULL, new_certificate_id TEXT NOT NULL,
        started_at INTEGER NOT NULL, grace_until INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS registry_provisioning_templates (
        name TEXT PRIMARY KEY, body TEXT NOT NULL, description TEXT NOT NULL, enabled INTEGER NOT NULL, hook TEXT, updated_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS registry_provisioning_tokens (
        token TEXT PRIMARY KEY, certificate_id TEXT NOT NULL REFERENCES registry_certificates(id) ON DELETE CASCADE,
        claim_certificate_id TEXT NOT NULL, expires_at INTEGER NOT NULL);
    `);
    // Added with certificate rotation: a state made before has no such column.
    const columns = db.prepare('PRAGMA table_info(registry_certificates)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'last_connected_at')) db.exec('ALTER TABLE registry_certificates ADD COLUMN last_connected_at INTEGER');
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  getThing(name: string): Thing | undefined {
    const row = this.db.prepare('SELECT * FROM registry_things WHERE name = ?').get(name) as ThingRow | undefined;
    return row && toThing(row);
  }

  listThings(): Thing[] {
    return (this.db.prepare('SELECT * FROM registry_things ORDER BY name').all() as ThingRow[]).map(toThing);
  }

  createThing(thing: Omit<Thing, 'createdAt'>, now = Date.now()): Thing {
    this.db.prepare('INSERT INTO registry_things (name, thing_type, attributes, created_at) VALUES (?, ?, ?, ?)').run(thing.name, thing.thingType, JSON.stringify(thing.attributes), now);
    return { ...thing, createdAt: now };
  }

  deleteThing(name: string): void {
    this.db.prepare('DELETE FROM registry_things WHERE name = ?').run(name);
  }

  addCertificate(cert: Omit<CertificateRecord, 'createdAt' | 'lastConnectedAt'>, now = Date.now()): void {
    this.db
      .prepare('INSERT INTO registry_certificates (id, thing_name, pem, fingerprint, status, created_at, not_after) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(cert.id, cert.thingName, cert.pem, cert.fingerprint, cert.status, now, cert.notAfter);
  }

  getCertificate(id: string): CertificateRecord | undefined {
    const row = this.db.prepare('SELECT * FROM registry_certificates WHERE id = ?').get(id) as CertRow | undefined;
    return row && toCert(row);
  }

  certificatesOf(thingName: string): CertificateRecord[] {
    return (this.db.prepare('SELECT * FROM registry_certificates WHERE thing_name = ? ORDER BY created_at').all(thingName) as CertRow[]).map(toCert);
  }

  listCertificates(): CertificateRecord[] {
    return (this.db.prepare('SELECT * FROM registry_certificates ORDER BY created_at').all() as CertRow[]).map(toCert);
  }

  /** The broker records each accepted connection's certificate (rotation finishes only once the new one has connected). */
  recordConnection(id: string, at = Date.now()): void {
    this.db.prepare('UPDATE registry_certificates SET last_connected_at = ? WHERE id = ?').run(at, id);
  }

  rotations(): RotationRecord[] {
    return (this.db.prepare('SELECT * FROM registry_rotations ORDER BY thing_name').all() as RotationRow[]).map(toRotation);
  }

  setRotation(thingName: string, rotation: Omit<RotationRecord, 'thingName'> | undefined): void {
    if (!rotation) {
      this.db.prepare('DELETE FROM registry_rotations WHERE thing_name = ?').run(thingName);
      return;
    }
    this.db
      .prepare(
        'INSERT INTO registry_rotations (thing_name, old_certificate_id, new_certificate_id, started_at, grace_until) VALUES (?, ?, ?, ?, ?) ' +
          'ON CONFLICT(thing_name) DO UPDATE SET old_certificate_id = excluded.old_certificate_id, new_certificate_id = excluded.new_certificate_id, started_at = excluded.started_at, grace_until = excluded.grace_until',
      )
      .run(thingName, rotation.oldCertificateId, rotation.newCertificateId, rotation.startedAt, rotation.graceUntil);
  }

  detachPolicies(certificateId: string): void {
    this.db.prepare('DELETE FROM registry_policy_attachments WHERE certificate_id = ?').run(certificateId);
  }

  setCertificateStatus(id: string, status: CertificateStatus): void {
    this.db.prepare('UPDATE registry_certificates SET status = ? WHERE id = ?').run(status, id);
  }

  deleteCertificate(id: string): void {
    this.db.prepare('DELETE FROM registry_certificates WHERE id = ?').run(id);
  }

  putPolicy(name: string, document: PolicyDocument, now = Date.now()): void {
    this.db
      .prepare('INSERT INTO registry_policies (name, document, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at')
      .run(name, JSON.stringify(document), now);
  }

  getPolicy(name: string): PolicyDocument | undefined {
    const row = this.db.prepare('SELECT document FROM registry_policies WHERE name = ?').get(name) as { document: string } | undefined;
    return row && JSON.parse(row.document);
  }

  listPolicies(): { name: string; document: PolicyDocument }[] {
    return (this.db.prepare('SELECT name, document FROM registry_policies ORDER BY name').all() as { name: string; document: string }[]).map((r) => ({ name: r.name, document: JSON.parse(r.document) }));
  }

  attachPolicy(policyName: string, certificateId: string): void {
    this.db.prepare('INSERT OR IGNORE INTO registry_policy_attachments (policy_name, certificate_id) VALUES (?, ?)').run(policyName, certificateId);
  }

  policiesOf(certificateId: string): { name: string; document: PolicyDocument }[] {
    return (
      this.db
        .prepare('SELECT p.name, p.document FROM registry_policy_attachments a JOIN registry_policies p ON p.name = a.policy_name WHERE a.certificate_id = ? ORDER BY p.name')
        .all(certificateId) as { name: string; document: string }[]
    ).map((r) => ({ name: r.name, document: JSON.parse(r.document) }));
  }

  putProvisioningTemplate(t: ProvisioningTemplateRecord, now = Date.now()): void {
    this.db
      .prepare(
        `INSERT INTO registry_provisioning_templates (name, body, description, enabled, hook, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET body = excluded.body, description = excluded.description, enabled = excluded.enabled, hook = excluded.hook, updated_at = excluded.updated_at`,
      )
      .run(t.name, JSON.stringify(t.body), t.description, t.enabled ? 1 : 0, t.preProvisioningHook ?? null, now);
  }

  getProvisioningTemplate(name: string): ProvisioningTemplateRecord | undefined {
    return this.listProvisioningTemplates().find((t) => t.name === name);
  }

  listProvisioningTemplates(): ProvisioningTemplateRecord[] {
    const rows = this.db.prepare('SELECT * FROM registry_provisioning_templates ORDER BY name').all() as { name: string; body: string; description: string; enabled: number; hook: string | null }[];
    return rows.map((r) => ({ name: r.name, body: JSON.parse(r.body), description: r.description, enabled: r.enabled === 1, ...(r.hook ? { preProvisioningHook: r.hook } : {}) }));
  }

  deleteProvisioningTemplate(name: string): void {
    this.db.prepare('DELETE FROM registry_provisioning_templates WHERE name = ?').run(name);
  }

  addOwnershipToken(token: string, certificateId: string, claimCertificateId: string, expiresAt: number): void {
    this.db.prepare('INSERT INTO registry_provisioning_tokens (token, certificate_id, claim_certificate_id, expires_at) VALUES (?, ?, ?, ?)').run(token, certificateId, claimCertificateId, expiresAt);
  }

  /** Live ownership tokens (certificates waiting for RegisterThing) a claim certificate has asked for. */
  pendingOf(claimCertificateId: string, now = Date.now()): number {
    return (this.db.prepare('SELECT count(*) AS n FROM registry_provisioning_tokens WHERE claim_certificate_id = ? AND expires_at > ?').get(claimCertificateId, now) as { n: number }).n;
  }

  /** The certificate a live ownership token stands for. */
  ownershipToken(token: string, now = Date.now()): string | undefined {
    const row = this.db.prepare('SELECT certificate_id FROM registry_provisioning_tokens WHERE token = ? AND expires_at > ?').get(token, now) as { certificate_id: string } | undefined;
    return row?.certificate_id;
  }

  deleteOwnershipToken(token: string): void {
    this.db.prepare('DELETE FROM registry_provisioning_tokens WHERE token = ?').run(token);
  }

  /**
   * AWS deletes a certificate the provisioning API made when its token expires before RegisterThing activated it:
   * expired tokens go, with their certificates still pending.
   */
  expireOwnershipTokens(now = Date.now()): number {
    return this.transaction(() => {
      const pending = this.db.prepare("DELETE FROM registry_certificates WHERE status = 'PENDING_ACTIVATION' AND id IN (SELECT certificate_id FROM registry_provisioning_tokens WHERE expires_at <= ?)").run(now).changes;
      this.db.prepare('DELETE FROM registry_provisioning_tokens WHERE expires_at <= ?').run(now);
      return pending;
    });
  }

  setCertificateThing(id: string, thingName: string): void {
    this.db.prepare('UPDATE registry_certificates SET thing_name = ? WHERE id = ?').run(thingName, id);
  }

  updateThingAttributes(name: string, attributes: Record<string, string>, thingType: string): void {
    this.db.prepare('UPDATE registry_things SET attributes = ?, thing_type = ? WHERE name = ?').run(JSON.stringify(attributes), thingType, name);
  }

  /** Everything the broker needs to authorize a connection presenting this certificate. */
  principal(certificateId: string): Principal | undefined {
    const certificate = this.getCertificate(certificateId);
    if (!certificate) return undefined;
    return {
      certificate,
      thing: certificate.thingName ? this.getThing(certificate.thingName) : undefined,
      policies: this.policiesOf(certificateId),
    };
  }
}

/** A provisioning template the broker's RegisterThing runs: AWS's template body. */
export interface ProvisioningTemplateRecord {
  name: string;
  body: Record<string, unknown>;
  description: string;
  enabled: boolean;
  /** A local function run before each device is provisioned. */
  preProvisioningHook?: string;
}

interface ThingRow { name: string; thing_type: string; attributes: string; created_at: number }
interface CertRow { id: string; thing_name: string | null; pem: string; fingerprint: string; status: CertificateStatus; created_at: number; not_after: number; last_connected_at?: number | null }
interface RotationRow { thing_name: string; old_certificate_id: string; new_certificate_id: string; started_at: number; grace_until: number }
const toRotation = (r: RotationRow): RotationRecord => ({ thingName: r.thing_name, oldCertificateId: r.old_certificate_id, newCertificateId: r.new_certificate_id, startedAt: r.started_at, graceUntil: r.grace_until });

const toThing = (r: ThingRow): Thing => ({ name: r.name, thingType: r.thing_type, attributes: JSON.parse(r.attributes), createdAt: r.created_at });
const toCert = (r: CertRow): CertificateRecord => ({ id: r.id, thingName: r.thing_name, pem: r.pem, fingerprint: r.fingerprint, status: r.status, createdAt: r.created_at, notAfter: r.not_after, lastConnectedAt: r.last_connected_at ?? null });
