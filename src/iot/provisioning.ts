/**
 * Fleet provisioning by claim, pure: the AWS provisioning template body iotctl generates from the spec's
 * declarative `devices.provisioning`, its evaluation (what RegisterThing provisions from a device's
 * parameters, as AWS IoT evaluates it), and the claim certificate's policy. Used by both targets.
 */
import type { PolicyDocument } from './policy/index.js';

export interface ProvisioningDeclaration {
  /** Template name on the target (aws: the stage-scoped physical one). */
  template: string;
  thingName: string;
  attributes: Record<string, string>;
}

/** Names the template body refers to, as the target spells them. */
export interface TemplateNames {
  policy: string;
  thingType?: string;
  thingGroups?: string[];
}

/** The certificate id parameter AWS fills from the certificate ownership token. */
export const CERTIFICATE_ID_PARAMETER = 'AWS::IoT::Certificate::Id';
const PARAMETER = /\{\{([A-Za-z0-9_]+)\}\}/g;

export type TemplateValue = string | { Ref: string } | { 'Fn::Join': [string, TemplateValue[]] };

/** The parameters a declaration uses, in order of first use. */
export function declaredParameters(d: Pick<ProvisioningDeclaration, 'thingName' | 'attributes'>): string[] {
  const names = new Set<string>();
  for (const text of [d.thingName, ...Object.values(d.attributes)]) for (const m of text.matchAll(PARAMETER)) names.add(m[1]!);
  return [...names];
}

/** `sensor-{{SerialNumber}}` as a template value: a literal, a `Ref`, or an `Fn::Join` of both. */
export function templateValue(text: string): TemplateValue {
  const parts: TemplateValue[] = [];
  let last = 0;
  for (const m of text.matchAll(PARAMETER)) {
    if (m.index! > last) parts.push(text.slice(last, m.index));
    parts.push({ Ref: m[1]! });
    last = m.index! + m[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  if (parts.length === 1) return parts[0]!;
  return { 'Fn::Join': ['', parts] };
}

/** The AWS provisioning template body (JSON) for a declaration: thing, certificate (made ACTIVE) and policy. */
export function provisioningTemplateBody(d: ProvisioningDeclaration, names: TemplateNames): Record<string, unknown> {
  const parameters: Record<string, { Type: 'String' }> = {};
  for (const p of declaredParameters(d)) parameters[p] = { Type: 'String' };
  parameters[CERTIFICATE_ID_PARAMETER] = { Type: 'String' };
  const attributes = Object.fromEntries(Object.entries(d.attributes).map(([k, v]) => [k, templateValue(v)]));
  return {
    Parameters: parameters,
    Resources: {
      thing: {
        Type: 'AWS::IoT::Thing',
        Properties: {
          ThingName: templateValue(d.thingName),
          ...(names.thingType ? { ThingTypeName: names.thingType } : {}),
          ...(Object.keys(attributes).length ? { AttributePayload: attributes } : {}),
          ...(names.thingGroups?.length ? { ThingGroups: names.thingGroups } : {}),
        },
        // A device provisioned again (a factory reset) keeps its thing and gets the new certificate.
        OverrideSettings: { AttributePayload: 'MERGE', ThingTypeName: 'REPLACE', ThingGroups: 'DO_NOTHING' },
      },
      certificate: { Type: 'AWS::IoT::Certificate', Properties: { CertificateId: { Ref: CERTIFICATE_ID_PARAMETER }, Status: 'ACTIVE' } },
      policy: { Type: 'AWS::IoT::Policy', Properties: { PolicyName: names.policy } },
    },
  };
}

/** A rejection as the provisioning MQTT API sends it on `.../rejected`. */
export class ProvisioningError extends Error {
  constructor(
    readonly statusCode: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
  payload(): { statusCode: number; errorCode: string; errorMessage: string } {
    return { statusCode: this.statusCode, errorCode: this.errorCode, errorMessage: this.message };
  }
}

/** What RegisterThing provisions for one device. */
export interface ProvisionedResources {
  thingName: string;
  thingType?: string;
  attributes: Record<string, string>;
  thingGroups: string[];
  policies: string[];
  certificateStatus: 'ACTIVE' | 'INACTIVE';
}

const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;

/**
 * Evaluates a template body with a device's parameters, as RegisterThing does: every declared parameter
 * without a Default must be given, `Ref` and `Fn::Join` are resolved, and the thing name must be valid.
 */
export function evaluateTemplate(body: Record<string, unknown>, given: Record<string, string>, certificateId: string): ProvisionedResources {
  const declared = (body.Parameters ?? {}) as Record<string, { Type?: string; Default?: string }>;
  const values: Record<string, string> = { [CERTIFICATE_ID_PARAMETER]: certificateId };
  for (const [name, def] of Object.entries(declared)) {
    if (name === CERTIFICATE_ID_PARAMETER) continue;
    const v = given[name] ?? def.Default;
    if (v === undefined) throw new ProvisioningError(400, 'InvalidParameters', `Missing parameter: ${name}`);
    if (typeof v !== 'string') throw new ProvisioningError(400, 'InvalidParameters', `Parameter ${name} must be a string`);
    values[name] = v;
  }
  const resolve = (v: unknown): string => {
    if (typeof v === 'string') return v;
    if (v && typeof v === 'object' && 'Ref' in v) {
      const ref = (v as { Ref: string }).Ref;
      if (!(ref in values)) throw new ProvisioningError(400, 'InvalidParameters', `Parameter not declared: ${ref}`);
      return values[ref]!;
    }
    if (v && typeof v === 'object' && 'Fn::Join' in v) {
      const [sep, parts] = (v as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
      return parts.map(resolve).join(sep);
    }
    throw new ProvisioningError(500, 'InternalFailure', `Unsupported template value ${JSON.stringify(v)}`);
  };
  const resources = Object.values((body.Resources ?? {}) as Record<string, { Type: string; Properties: Record<string, unknown> }>);
  const thing = resources.find((r) => r.Type === 'AWS::IoT::Thing');
  if (!thing) throw new ProvisioningError(400, 'InvalidTemplate', 'The template provisions no thing');
  const thingName = resolve(thing.Properties.ThingName);
  if (!THING_NAME.test(thingName)) throw new ProvisioningError(400, 'InvalidParameters', `Invalid thing name: ${thingName}`);
  const attributes = Object.fromEntries(Object.entries((thing.Properties.AttributePayload ?? {}) as Record<string, unknown>).map(([k, v]) => [k, resolve(v)]));
  const certificate = resources.find((r) => r.Type === 'AWS::IoT::Certificate');
  const status = certificate ? resolve(certificate.Properties.Status ?? 'ACTIVE').toUpperCase() : 'ACTIVE';
  return {
    thingName,
    ...(thing.Properties.ThingTypeName ? { thingType: resolve(thing.Properties.ThingTypeName) } : {}),
    attributes,
    thingGroups: ((thing.Properties.ThingGroups ?? []) as unknown[]).map(resolve),
    policies: resources.filter((r) => r.Type === 'AWS::IoT::Policy').map((r) => resolve(r.Properties.PolicyName)),
    certificateStatus: status === 'INACTIVE' ? 'INACTIVE' : 'ACTIVE',
  };
}

/** The MQTT API topics a claim certificate may use for one template (AWS's claim policy example). */
export function claimTopics(template: string): string[] {
  return ['$aws/certificates/create-from-csr/*', '$aws/certificates/create/*', `$aws/provisioning-templates/${template}/provision/*`];
}

/**
 * The claim certificate's policy: connect, and publish/subscribe/receive only on the provisioning MQTT API's
 * topics of this template. Region and account wildcards, as the default device policy has them.
 */
export function claimPolicy(template: string): PolicyDocument {
  const topics = claimTopics(template);
  return {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: 'iot:Connect', Resource: 'arn:aws:iot:*:*:client/*' },
      { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: topics.map((t) => `arn:aws:iot:*:*:topic/${t}`) },
      { Effect: 'Allow', Action: 'iot:Subscribe', Resource: topics.map((t) => `arn:aws:iot:*:*:topicfilter/${t}`) },
    ],
  };
}

/** The provisioning MQTT API request a topic is, if any, with its payload format (`json` or `cbor`). */
export type ProvisioningRequest = ({ api: 'CreateCertificateFromCsr' } | { api: 'CreateKeysAndCertificate' } | { api: 'RegisterThing'; template: string }) & { format: 'json' | 'cbor' };

export function provisioningRequest(topic: string): ProvisioningRequest | undefined {
  let m = /^\$aws\/certificates\/(create-from-csr|create)\/(json|cbor)$/.exec(topic);
  if (m) return { api: m[1] === 'create' ? 'CreateKeysAndCertificate' : 'CreateCertificateFromCsr', format: m[2] as 'json' | 'cbor' };
  m = /^\$aws\/provisioning-templates\/([0-9A-Za-z_-]{1,36})\/provision\/(json|cbor)$/.exec(topic);
  return m ? { api: 'RegisterThing', template: m[1]!, format: m[2] as 'json' | 'cbor' } : undefined;
}
