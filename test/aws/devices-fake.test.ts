// AwsDevices on the SDK-boundary fake, where moto cannot serve: TPS quotas (ThrottlingException) and
// AccessDenied part-way through a registration.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeIot } from '../helpers/fake-iot.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { awsDevicesOf } from '../helpers/devices.js';
import { ApiRateLimiter, tpsFromEnv } from '../../src/targets/aws/rate.js';
import { parseSpec } from '../../src/spec/loader.js';
import { ensureDevicePolicy, registerMany } from '../../src/services/devices.js';
import { UserError } from '../../src/ui/errors.js';

const spec = parseSpec('project: fake\n').spec;
const env = { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
Object.assign(process.env, env);
const out = mkdtempSync(join(tmpdir(), 'iotctl-aws-fake-'));
test.after(() => rmSync(out, { recursive: true, force: true }));

test('IOTCTL_AWS_TPS: one rate for all, or per API', () => {
  const d = { CreateThing: 15, AttachPolicy: 15 };
  assert.equal(tpsFromEnv(d, ''), d);
  assert.equal(tpsFromEnv(d, '5'), { CreateThing: 5, AttachPolicy: 5 });
  assert.equal(tpsFromEnv(d, 'CreateThing=3, AttachPolicy=20'), { CreateThing: 3, AttachPolicy: 20 });
  assert.equal(tpsFromEnv(d, 'junk'), d);
});

test('the pacer spaces calls 1/rate apart, however many wait at once', async () => {
  const limiter = new ApiRateLimiter({ Op: 50 });
  const started = performance.now();
  const at: number[] = [];
  await Promise.all(Array.from({ length: 10 }, () => limiter.call('Op', async () => at.push(performance.now() - started))));
  const gaps = at.sort((a, b) => a - b).slice(1).map((t, i) => t - at[i]!);
  // 20 ms apart; a late call is made up for by at most half an interval.
  assert.ok(Math.min(...gaps) >= 9, `gaps ${gaps.map(Math.round)}`);
  assert.ok(at.at(-1)! - at[0]! >= 9 * 20 - 12, `${at.at(-1)! - at[0]!} ms for 10 calls`);
});

test('a quota lower than configured: calls are throttled, retried, and no device fails', async () => {
  // The account allows 5 TPS per API; iotctl was told 40.
  const fake = await new FakeIot({ tps: { CreateThing: 5, CreateCertificateFromCsr: 5, AttachPolicy: 5, AttachThingPrincipal: 5 }, burst: 1, responseMs: [2, 10] }).install();
  const aws = new AwsClients({});
  try {
    const devices = awsDevicesOf(aws, spec, 'default', { CreateThing: 40, CreateCertificateFromCsr: 40, AttachPolicy: 40, AttachThingPrincipal: 40 });
    await ensureDevicePolicy(devices, spec);
    const requests = Array.from({ length: 15 }, (_, i) => ({ thingName: `t-${i}` }));
    const result = await registerMany(devices, spec, requests, join(out, 'throttled'));
    assert.equal(result.failed, []);
    assert.is(result.registered.length, 15);
    assert.ok((fake.throttled.get('CreateThing') ?? 0) > 0, 'the fake did throttle');
    assert.ok((devices.limiter.throttles.get('CreateThing') ?? 0) > 0, 'and iotctl saw it');
    assert.is(fake.things.size, 15);
    assert.is(fake.thingPrincipals.size, 15);
  } finally {
    aws.destroy();
    fake.restore();
  }
});

test("list pages through the stage group's things (moto answers one page)", async () => {
  const fake = await new FakeIot().install();
  const aws = new AwsClients({});
  try {
    const devices = awsDevicesOf(aws, spec);
    await devices.ensureGroup();
    const names = Array.from({ length: 260 }, (_, i) => `bulk-${String(i).padStart(3, '0')}`);
    for (const n of names) {
      fake.things.set(n, { attributes: {} });
      fake.groups.get('iotctl-fake-default--devices')!.things.add(n);
    }
    fake.things.set('not-in-the-group', { attributes: {} });
    assert.equal((await devices.list()).map((d) => d.thingName), names);
    assert.is(fake.calls.get('ListThingsInThingGroup'), 2);
  } finally {
    aws.destroy();
    fake.restore();
  }
});

test('AccessDenied on CreateCertificateFromCsr: names the IAM action, and the thing is removed again', async () => {
  const fake = await new FakeIot({ failOn: { CreateCertificateFromCsr: 'AccessDeniedException' } }).install();
  const aws = new AwsClients({});
  try {
    const devices = awsDevicesOf(aws, spec);
    await ensureDevicePolicy(devices, spec);
    let error: unknown;
    await devices.register({ thingName: 'denied', thingType: 'sensor', attributes: {}, policyName: spec.devices.policy.name }).catch((e) => (error = e));
    assert.instance(error, UserError);
    assert.match((error as UserError).message, /Access denied: iot:CreateCertificateFromCsr\b/);
    assert.match((error as UserError).hint ?? '', /Grant iot:CreateCertificateFromCsr/);
    assert.is(fake.calls.get('CreateThing'), 1);
    assert.is(fake.calls.get('DeleteThing'), 1);
    assert.is(fake.things.size, 0);
    assert.is(fake.certs.size, 0);
  } finally {
    aws.destroy();
    fake.restore();
  }
});

test('list: AccessDenied on a thing\'s principals is an error, not a device without a certificate', async () => {
  const fake = await new FakeIot({ failOn: { ListThingPrincipals: 'AccessDeniedException' } }).install();
  const aws = new AwsClients({});
  try {
    const devices = awsDevicesOf(aws, spec);
    await devices.ensureGroup();
    fake.things.set('d1', { attributes: {} });
    fake.groups.get('iotctl-fake-default--devices')!.things.add('d1');
    const error = await devices.list().then(() => undefined, (e: unknown) => e);
    assert.instance(error, UserError);
    assert.match((error as UserError).message, /Access denied: iot:ListThingPrincipals\b/);
  } finally {
    aws.destroy();
    fake.restore();
  }
});

test.run();
