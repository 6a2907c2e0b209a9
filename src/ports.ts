import type { RuleSpec } from './spec/schema.js';
import type { PolicyDocument } from './iot/policy/index.js';

/**
 * The ports commands and services program against. `targets/local` implements them today; `targets/aws`
 * (SDK v3) implements the same interfaces later without touching the commands.
 */
export interface RegisterDeviceInput {
  thingName: string;
  thingType: string;
  attributes: Record<string, string>;
  policyName: string;
  csrPem?: string;
}

export interface RegisteredDevice {
  thingName: string;
  certificateId: string;
  fingerprint: string;
  certPem: string;
  /** Only when the key was generated here (no CSR). */
  keyPem?: string;
  caPem: string;
  endpoint: Endpoint;
}

export interface Endpoint {
  host: string;
  port: number;
}

export interface DeviceSummary {
  thingName: string;
  thingType: string;
  attributes: Record<string, string>;
  certificateId: string | null;
  certificateStatus: string | null;
  createdAt: string;
}

export interface DeviceDetails extends DeviceSummary {
  fingerprint: string | null;
  notAfter: string | null;
  policies: string[];
}

export interface DeviceRegistryPort {
  endpoint(): Endpoint;
  caPem(): Promise<string>;
  putPolicy(name: string, document: PolicyDocument): Promise<void>;
  getPolicy(name: string): Promise<PolicyDocument | undefined>;
  exists(thingName: string): Promise<boolean>;
  register(input: RegisterDeviceInput): Promise<RegisteredDevice>;
  list(): Promise<DeviceSummary[]>;
  show(thingName: string): Promise<DeviceDetails | undefined>;
  revoke(thingName: string): Promise<{ revoked: string[] }>;
  delete(thingName: string): Promise<{ deletedCertificates: string[] }>;
}

export interface RulesPort {
  list(): Promise<RuleSpec[]>;
  get(name: string): Promise<RuleSpec | undefined>;
  put(rule: RuleSpec): Promise<void>;
  delete(name: string): Promise<void>;
}
