// The certificate lifecycle on the aws target against moto_server: expiry from DescribeCertificate's
// validity.notAfter, make-before-break rotation (state in a thing attribute), finish with --confirm or fleet
// indexing connectivity, bulk --expiring with a rerun that resumes, prune of INACTIVE/unattached certificates,
// and `device register --validity` refused on aws (through the built CLI).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { ROTATION_ATTRIBUTE, type AwsDevices } from '../../src/targets/aws/devices.js';
import { awsDevicesOf } from '../helpers/devices.js';
import { parseSpec } from '../../src/spec/loader.js';
import { ensureDevicePolicy, registerDevice } from '../../src/services/devices.js';
import { certificateRows, expiringCertificates, pruneCertificates, rotateDevice, rotateExpiring } from '../../src/services/certificates.js';
import { UserError } from '../../src/ui/errors.js';
import { cli } from '../helpers/project.js';

const spec = parseSpec('project: awscert\n').spec;
let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let devices: AwsDevices;
let out: string;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  out = mkdtempSync(join(tmpdir(), 'iotctl-aws-certs-'));
});
test.after(async () => {
  aws?.destroy();
  restore();
  await moto.stop();
  rmSync(out, { recursive: true, force: true });
});
test.before.each(async () => {
  await moto.reset();
  rmSync(join(out, 'devices'), { recursive: true, force: true });
  aws?.destroy();
  aws = new AwsClients({});
  devices = awsDevicesOf(aws, spec);
  await ensureDevicePolicy(devices, spec);
});

const iot = async () => aws.get('iot');
const dir = () => join(out, 'devices');
async function certificate(certificateId: string) {
  const { client, sdk } = await iot();
  try {
    return (await client.send(new sdk.DescribeCertificateCommand({ certificateId }))).certificateDescription;
  } catch {
    return undefined;
  }
}
async function thingPrincipals(thingName: string) {
  const { client, sdk } = await iot();
  return (await client.send(new sdk.ListThingPrincipalsCommand({ thingName }))).principals ?? [];
}
async function rejects(p: Promise<unknown>, code: string): Promise<UserError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, UserError, String(e));
    assert.is((e as UserError).code, code, (e as Error).message);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

test('--expiring reads validity.notAfter from DescribeCertificate (moto signs for one day)', async () => {
  const reg = await registerDevice(devices, spec, { thingName: 'aws-1' }, dir());
  const rows = await certificateRows(devices, 2 * DAY, { thingName: 'aws-1' });
  assert.is(rows.length, 1);
  assert.is(rows[0]!.certificateId, reg.certificateId);
  const left = Date.parse(rows[0]!.notAfter!) - Date.now();
  assert.ok(left > 20 * HOUR && left <= DAY, `notAfter from DescribeCertificate, got ${left} ms`);
  assert.equal((await expiringCertificates(devices, 2 * DAY)).map((r) => [r.thingName, r.daysLeft, r.expiry]), [['aws-1', 0, 'expiring']]);
  assert.equal(await expiringCertificates(devices, 12 * HOUR), []);
});

test('rotate: new certificate attached beside the old one, state in the thing, finish needs --confirm, then the old one is gone', async () => {
  const reg = await registerDevice(devices, spec, { thingName: 'aws-2', attributes: { site: 'lab' } }, dir());
  const oldCert = readFileSync(join(dir(), 'aws-2', 'cert.pem'), 'utf8');
  const r = await rotateDevice(devices, spec, 'aws-2', { graceMs: 7 * DAY, outDir: dir() });
  assert.is(r.action, 'started');
  assert.is(r.oldCertificateId, reg.certificateId);
  // Both ACTIVE and attached to the thing, the new one with the stage's policy.
  assert.is((await thingPrincipals('aws-2')).length, 2);
  assert.is((await certificate(r.oldCertificateId))?.status, 'ACTIVE');
  assert.is((await certificate(r.newCertificateId))?.status, 'ACTIVE');
  const { client, sdk } = await iot();
  const policies = await client.send(new sdk.ListAttachedPoliciesCommand({ target: (await certificate(r.newCertificateId))!.certificateArn! }));
  assert.equal(policies.policies?.map((p) => p.policyName), ['iotctl-awscert-default--iotctl-device']);
  // New credentials beside the old ones; the old ones untouched.
  assert.is(readFileSync(join(dir(), 'aws-2', 'cert.pem'), 'utf8'), oldCert);
  assert.ok(existsSync(join(dir(), 'aws-2', 'next', 'private.key')));
  // The state is kept in the account (a thing attribute), not shown among the thing's attributes.
  const thing = await client.send(new sdk.DescribeThingCommand({ thingName: 'aws-2' }));
  assert.match(thing.attributes?.[ROTATION_ATTRIBUTE] ?? '', new RegExp(`^${r.oldCertificateId}:${r.newCertificateId}:\\d+:\\d+$`));
  assert.equal((await devices.show('aws-2'))?.attributes, { site: 'lab' });
  const fresh = awsDevicesOf(aws, spec);
  assert.equal((await fresh.rotations('aws-2')).map((s) => s.newCertificateId), [r.newCertificateId]);

  // Without fleet indexing AWS cannot tell whether the new certificate connected: --confirm is required.
  const refused = await rejects(rotateDevice(devices, spec, 'aws-2', { graceMs: 7 * DAY, outDir: dir(), finish: true }), 'CONNECTION_UNKNOWN');
  assert.match(refused.hint ?? '', /--confirm/);
  assert.is((await certificate(r.oldCertificateId))?.status, 'ACTIVE');

  const done = await rotateDevice(devices, spec, 'aws-2', { graceMs: 7 * DAY, outDir: dir(), finish: true, confirm: true });
  assert.is(done.action, 'finished');
  assert.is(await certificate(r.oldCertificateId), undefined);
  assert.equal(await thingPrincipals('aws-2'), [(await certificate(r.newCertificateId))!.certificateArn]);
  assert.equal(await devices.rotations('aws-2'), []);
  assert.not.ok(existsSync(join(dir(), 'aws-2', 'next')));
  assert.is.not(readFileSync(join(dir(), 'aws-2', 'cert.pem'), 'utf8'), oldCert);
});

test('a run that stopped after writing next/ but before recording the rotation is resumed, not rotated again', async () => {
  await registerDevice(devices, spec, { thingName: 'aws-4' }, dir());
  const first = await rotateDevice(devices, spec, 'aws-4', { graceMs: 7 * DAY, outDir: dir() });
  await devices.setRotation('aws-4', undefined); // as if the process died before its last step
  const again = await rotateDevice(devices, spec, 'aws-4', { graceMs: 7 * DAY, outDir: dir() });
  assert.equal([again.action, again.oldCertificateId, again.newCertificateId], ['started', first.oldCertificateId, first.newCertificateId]);
  assert.is((await thingPrincipals('aws-4')).length, 2, 'no third certificate');
});

test('with fleet indexing connectivity on, the thing connected since the rotation began lets finish through', async () => {
  await registerDevice(devices, spec, { thingName: 'aws-3' }, dir());
  const { client, sdk } = await iot();
  await client.send(new sdk.UpdateIndexingConfigurationCommand({ thingIndexingConfiguration: { thingIndexingMode: 'REGISTRY', thingConnectivityIndexingMode: 'STATUS' } }));
  const r = await rotateDevice(devices, spec, 'aws-3', { graceMs: 1, outDir: dir(), now: () => Date.now() - 5000 });
  // The grace is over: the next plain rotate finishes it, with moto's connectivity as the evidence.
  const next = await rotateDevice(devices, spec, 'aws-3', { graceMs: 7 * DAY, outDir: dir() });
  assert.is(next.action, 'finished');
  assert.match(next.detail ?? '', /fleet indexing/);
  assert.is(await certificate(r.oldCertificateId), undefined);
});

test('bulk --expiring rotates every expiring thing once; the rerun resumes (in grace), nothing rotated twice', async () => {
  for (const t of ['b-1', 'b-2', 'b-3']) await registerDevice(devices, spec, { thingName: t }, dir());
  const first = await rotateExpiring(devices, spec, 2 * DAY, { graceMs: 7 * DAY, outDir: dir() });
  assert.equal(first.started.map((s) => s.thingName).sort(), ['b-1', 'b-2', 'b-3']);
  assert.equal(first.failed, []);
  const rerun = await rotateExpiring(devices, spec, 2 * DAY, { graceMs: 7 * DAY, outDir: dir() });
  assert.equal(rerun.started, []);
  assert.equal(rerun.inGrace.map((s) => s.thingName).sort(), ['b-1', 'b-2', 'b-3']);
  for (const t of ['b-1', 'b-2', 'b-3']) assert.is((await thingPrincipals(t)).length, 2);
  // A window nothing falls in: nothing to do.
  const none = await rotateExpiring(devices, spec, HOUR, { graceMs: 7 * DAY, outDir: dir() });
  assert.equal(none.started, []);
});

test('prune deletes INACTIVE and unattached certificates (detached first), never an ACTIVE attached one', async () => {
  const keep = await registerDevice(devices, spec, { thingName: 'p-1' }, dir());
  const revoked = await registerDevice(devices, spec, { thingName: 'p-2' }, dir());
  await devices.revoke('p-2');
  // An orphan: ACTIVE, the stage's policy, no thing.
  const { client, sdk } = await iot();
  const orphan = await client.send(new sdk.CreateKeysAndCertificateCommand({ setAsActive: true }));
  await client.send(new sdk.AttachPolicyCommand({ policyName: 'iotctl-awscert-default--iotctl-device', target: orphan.certificateArn! }));
  // A certificate that is neither a stage thing's nor carries its policy: not this stage's to judge.
  const foreign = await client.send(new sdk.CreateKeysAndCertificateCommand({ setAsActive: false }));

  const dry = await pruneCertificates(devices, { dryRun: true });
  assert.equal(dry.deleted.map((d) => [d.certificateId, d.reason]).sort(), [[orphan.certificateId, 'unattached'], [revoked.certificateId, 'inactive']].sort());
  assert.ok(await certificate(revoked.certificateId), 'dry run deletes nothing');
  const done = await pruneCertificates(devices, { dryRun: false });
  assert.equal(done.failed, []);
  assert.is(done.deleted.length, 2);
  assert.is(await certificate(revoked.certificateId), undefined);
  assert.is(await certificate(orphan.certificateId!), undefined);
  assert.is((await certificate(keep.certificateId))?.status, 'ACTIVE');
  assert.ok(await certificate(foreign.certificateId!), 'a certificate not known to be the stage\'s is left alone');
  assert.equal(await thingPrincipals('p-2'), []);
});

test('CLI: device register --validity is refused on aws with the reason; device list --expiring works there', async () => {
  const project = mkdtempSync(join(tmpdir(), 'iotctl-aws-cli-'));
  try {
    writeFileSync(join(project, 'iotctl.yaml'), 'project: awscert\ntarget: aws\nregion: us-east-1\n');
    const env = { ...moto.env, IOTCTL_AWS_TPS: '1000' };
    const refused = await cli(['device', 'register', 'c-1', '--validity', '30d'], { cwd: project, env });
    assert.is(refused.code, 1);
    assert.match(refused.stderr, /AWS IoT signs the certificate from the CSR with its own validity/);
    assert.is(await devices.exists('c-1'), false, 'nothing registered');
    const ok = await cli(['device', 'register', 'c-1', '--json'], { cwd: project, env });
    assert.is(ok.code, 0, ok.stderr);
    const listed = await cli(['device', 'list', '--expiring', '30d', '--json'], { cwd: project, env });
    assert.is(listed.code, 0, listed.stderr);
    assert.equal((JSON.parse(listed.stdout) as { thingName: string }[]).map((r) => r.thingName), ['c-1']);
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
});

test.run();
