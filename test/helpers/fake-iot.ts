/**
 * A stateful fake of the AWS IoT registry at the SDK boundary (aws-sdk-client-mock), for what moto
 * cannot do: enforce per-API TPS quotas, inject latency, and fail chosen calls.
 *
 * Spec:
 * - State: things (name → type, attributes), certificates (id → status, pem), policies (with tags), thing
 *   groups (description, members), and the policy→certificate and thing→certificate attachments. Certificates are signed by a real local CA
 *   from the CSR, so callers can parse them.
 * - Quotas: `tps[op]` is a token bucket per API (refill `tps` per second, capacity `burst` tokens).
 *   A call arriving without a token fails with ThrottlingException and changes nothing.
 * - Latency: each call waits `requestMs` before its quota check (travel to AWS, so arrivals jitter) and
 *   `responseMs` after it.
 * - `failOn[op] = code`: that API fails with that AWS error code (AccessDenied and the like).
 * - Errors are translated exactly as AwsClients' middleware translates them (the mock replaces
 *   `send`, so the middleware does not run).
 */
import { mockClient } from 'aws-sdk-client-mock';
import * as iot from '@aws-sdk/client-iot';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCa, LocalCa } from '../../src/targets/local/ca.js';
import { translateError } from '../../src/targets/aws/sdk.js';

export interface FakeIotOptions {
  tps?: Record<string, number>;
  /** Bucket capacity in tokens (default 1: no burst above the rate). */
  burst?: number;
  requestMs?: [number, number];
  responseMs?: [number, number];
  failOn?: Record<string, string>;
}

type Input = Record<string, any>;

export class FakeIot {
  readonly things = new Map<string, { type?: string; attributes: Record<string, string> }>();
  readonly certs = new Map<string, { status: string; pem: string; arn: string }>();
  readonly policies = new Set<string>();
  readonly tags = new Map<string, { Key: string; Value: string }[]>(); // by ARN
  readonly groups = new Map<string, { description?: string; things: Set<string> }>();
  readonly policyTargets = new Set<string>(); // `${policy}\0${certArn}`
  readonly thingPrincipals = new Set<string>(); // `${thing}\0${certArn}`
  readonly calls = new Map<string, number>();
  readonly throttled = new Map<string, number>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private ca?: LocalCa;
  private mock?: ReturnType<typeof mockClient>;

  constructor(readonly opts: FakeIotOptions = {}) {}

  async install(): Promise<this> {
    this.ca = await LocalCa.load(await createCa('fake AWS IoT CA'));
    const mock = mockClient(iot.IoTClient);
    for (const op of Object.keys(this.handlers)) {
      const Command = (iot as unknown as Record<string, new (i: unknown) => unknown>)[`${op}Command`]!;
      mock.on(Command as never).callsFake((input: Input) => this.call(op, input));
    }
    this.mock = mock;
    return this;
  }

  restore(): void {
    this.mock?.restore();
  }

  private take(op: string): boolean {
    const rate = this.opts.tps?.[op];
    if (!rate) return true;
    const burst = this.opts.burst ?? 1;
    const now = performance.now();
    const b = this.buckets.get(op) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    this.buckets.set(op, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private async call(op: string, input: Input): Promise<unknown> {
    const wait = async (range?: [number, number]) => range && (await sleep(range[0] + Math.random() * (range[1] - range[0])));
    await wait(this.opts.requestMs);
    this.calls.set(op, (this.calls.get(op) ?? 0) + 1);
    try {
      if (!this.take(op)) {
        this.throttled.set(op, (this.throttled.get(op) ?? 0) + 1);
        throw awsError('ThrottlingException', 'Rate exceeded', 429);
      }
      const code = this.opts.failOn?.[op];
      if (code) throw awsError(code, `User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iot:${op}`, 403);
      const out = await this.handlers[op]!(input);
      await wait(this.opts.responseMs);
      return out;
    } catch (error) {
      await wait(this.opts.responseMs);
      throw translateError(error, 'iot', op, input, {});
    }
  }

  private certFor(id: string) {
    const c = this.certs.get(id);
    if (!c) throw awsError('ResourceNotFoundException', `certificate ${id} not found`, 404);
    return c;
  }

  private issue = async (thingName: string, csrPem?: string) => {
    const issued = await this.ca!.issue({ thingName, csrPem });
    const arn = `arn:aws:iot:us-east-1:123456789012:cert/${issued.certificateId}`;
    this.certs.set(issued.certificateId, { status: 'ACTIVE', pem: issued.certPem, arn });
    return { certificateArn: arn, certificateId: issued.certificateId, certificatePem: issued.certPem, keyPem: issued.keyPem };
  };

  readonly handlers: Record<string, (input: Input) => unknown> = {
    DescribeEndpoint: () => ({ endpointAddress: 'fake-ats.iot.us-east-1.amazonaws.com' }),
    DescribeThingType: (i) => {
      if (!this.thingTypes.has(i.thingTypeName)) throw awsError('ResourceNotFoundException', 'no such thing type', 404);
      return { thingTypeName: i.thingTypeName };
    },
    CreateThingType: (i) => {
      this.thingTypes.add(i.thingTypeName);
      return { thingTypeName: i.thingTypeName };
    },
    DescribeThing: (i) => {
      const t = this.things.get(i.thingName);
      if (!t) throw awsError('ResourceNotFoundException', `Thing ${i.thingName} cannot be found.`, 404);
      return { thingName: i.thingName, thingTypeName: t.type, attributes: t.attributes };
    },
    CreateThing: (i) => {
      if (this.things.has(i.thingName)) throw awsError('ResourceAlreadyExistsException', 'exists', 409);
      this.things.set(i.thingName, { type: i.thingTypeName, attributes: i.attributePayload?.attributes ?? {} });
      return { thingName: i.thingName, thingArn: `arn:aws:iot:us-east-1:123456789012:thing/${i.thingName}` };
    },
    DeleteThing: (i) => {
      if ([...this.thingPrincipals].some((k) => k.startsWith(`${i.thingName}\0`))) throw awsError('InvalidRequestException', 'principals still attached', 400);
      this.things.delete(i.thingName);
      for (const g of this.groups.values()) g.things.delete(i.thingName);
      return {};
    },
    CreateCertificateFromCsr: async (i) => {
      const { keyPem: _none, ...cert } = await this.issue(createHash('sha256').update(i.certificateSigningRequest).digest('hex').slice(0, 8), i.certificateSigningRequest);
      return cert;
    },
    CreateKeysAndCertificate: async () => {
      const { keyPem, ...cert } = await this.issue('aws-generated');
      return { ...cert, keyPair: { PrivateKey: keyPem, PublicKey: '' } };
    },
    UpdateCertificate: (i) => {
      this.certFor(i.certificateId).status = i.newStatus;
      return {};
    },
    DeleteCertificate: (i) => {
      const c = this.certFor(i.certificateId);
      if (c.status === 'ACTIVE') throw awsError('CertificateStateException', 'deactivate first', 400);
      if ([...this.thingPrincipals].some((k) => k.endsWith(`\0${c.arn}`))) throw awsError('DeleteConflictException', 'things attached', 409);
      for (const k of [...this.policyTargets]) if (k.endsWith(`\0${c.arn}`)) this.policyTargets.delete(k);
      this.certs.delete(i.certificateId);
      return {};
    },
    GetPolicy: (i) => {
      if (!this.policies.has(i.policyName)) throw awsError('ResourceNotFoundException', 'no such policy', 404);
      return { policyName: i.policyName, policyArn: `arn:aws:iot:us-east-1:123456789012:policy/${i.policyName}`, policyDocument: '{"Version":"2012-10-17","Statement":[]}' };
    },
    CreatePolicy: (i) => {
      this.policies.add(i.policyName);
      this.tags.set(`arn:aws:iot:us-east-1:123456789012:policy/${i.policyName}`, i.tags ?? []);
      return { policyName: i.policyName };
    },
    ListTagsForResource: (i) => ({ tags: this.tags.get(i.resourceArn) ?? [] }),
    DescribeThingGroup: (i) => {
      const g = this.groups.get(i.thingGroupName);
      if (!g) throw awsError('ResourceNotFoundException', `Thing Group ${i.thingGroupName} does not exist`, 404);
      return { thingGroupName: i.thingGroupName, thingGroupArn: `arn:aws:iot:us-east-1:123456789012:thinggroup/${i.thingGroupName}`, thingGroupProperties: { thingGroupDescription: g.description } };
    },
    CreateThingGroup: (i) => {
      if (!this.groups.has(i.thingGroupName)) this.groups.set(i.thingGroupName, { description: i.thingGroupProperties?.thingGroupDescription, things: new Set() });
      return { thingGroupName: i.thingGroupName };
    },
    // Paged as AWS pages it (moto answers one page), so listing's paging is exercised.
    ListThingsInThingGroup: (i) => {
      const g = this.groups.get(i.thingGroupName);
      if (!g) throw awsError('ResourceNotFoundException', `Thing Group ${i.thingGroupName} does not exist`, 404);
      const all = [...g.things].sort();
      const from = Number(i.nextToken ?? 0);
      const to = from + (i.maxResults ?? 25);
      return { things: all.slice(from, to), ...(to < all.length ? { nextToken: String(to) } : {}) };
    },
    ListThingPrincipals: (i) => ({ principals: [...this.thingPrincipals].filter((k) => k.startsWith(`${i.thingName}\0`)).map((k) => k.split('\0')[1]) }),
    ListCertificates: () => ({ certificates: [...this.certs].map(([certificateId, c]) => ({ certificateId, certificateArn: c.arn, status: c.status, creationDate: new Date() })) }),
    AddThingToThingGroup: (i) => {
      const g = this.groups.get(i.thingGroupName);
      if (!g || !this.things.has(i.thingName)) throw awsError('ResourceNotFoundException', 'no such group or thing', 404);
      g.things.add(i.thingName);
      return {};
    },
    AttachPolicy: (i) => {
      if (!this.policies.has(i.policyName)) throw awsError('ResourceNotFoundException', 'no such policy', 404);
      this.policyTargets.add(`${i.policyName}\0${i.target}`);
      return {};
    },
    DetachPolicy: (i) => {
      this.policyTargets.delete(`${i.policyName}\0${i.target}`);
      return {};
    },
    AttachThingPrincipal: (i) => {
      if (!this.things.has(i.thingName)) throw awsError('ResourceNotFoundException', 'no such thing', 404);
      this.thingPrincipals.add(`${i.thingName}\0${i.principal}`);
      return {};
    },
    DetachThingPrincipal: (i) => {
      this.thingPrincipals.delete(`${i.thingName}\0${i.principal}`);
      return {};
    },
  };
  private readonly thingTypes = new Set<string>();
}

export function awsError(name: string, message: string, status: number): Error {
  return Object.assign(new Error(message), { name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}
