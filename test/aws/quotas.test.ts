import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSpec } from '../../src/spec/loader.js';
import { clearQuotaCache, iotApiRates } from '../../src/targets/aws/quotas.js';
import { IOT_REGISTRATION_TPS } from '../../src/targets/aws/rate.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { awsDevicesOf } from '../helpers/devices.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { cli } from '../helpers/project.js';

// Bulk registration paces each IoT API at the account's applied quota (Service Quotas, service code iotcore).
// moto serves Service Quotas for `vpc` only, so the realism proxy answers for iotcore as an account would
// (applied values and AWS defaults), refuses it when told to (AccessDenied), and counts the calls.

let moto: Moto;
let restoreEnv: () => void;

const quota = (QuotaCode: string, QuotaName: string, Value: number) => ({ QuotaCode, QuotaName, Value });
const ACCOUNT = {
  iotcore: {
    // Raised for this account: CreateThing and AttachPolicy.
    applied: [quota('L-64CBACAC', 'CreateThing API TPS', 120), quota('L-CA7D4E3E', 'AttachPolicy API TPS', 40), quota('L-0EF0F5EE', 'DescribeThing API TPS', 350)],
    defaults: [quota('L-64CBACAC', 'CreateThing API TPS', 100), quota('L-F64D1AA6', 'AttachThingPrincipal API TPS', 100), quota('L-2904683A', 'AddThingToThingGroup API TPS', 100), quota('L-CA7D4E3E', 'AttachPolicy API TPS', 15)],
  },
};

test.before(async () => {
  moto = await startMoto({ realism: { latencyMs: 0, serviceQuotas: ACCOUNT } });
  restoreEnv = useEnv(moto.env);
});
test.after(async () => {
  restoreEnv();
  await moto.stop();
});
test.before.each(() => {
  clearQuotaCache();
  moto.realism!.set({ deny: [], serviceQuotas: ACCOUNT });
});

const quotaCalls = (since: number) => moto.realism!.calls().slice(since).filter((c) => c.key.endsWith('ServiceQuotas')).map((c) => `${c.key}${c.injected === 'denied' ? ' denied' : ''}`);

test('applied quotas first, then AWS defaults, then the documented rates; each with its source; read once per account and region', async () => {
  const aws = new AwsClients({});
  const since = moto.realism!.calls().length;
  const r = await iotApiRates(aws, IOT_REGISTRATION_TPS, undefined);
  assert.equal(r.rates, { CreateThing: 120, CreateCertificateFromCsr: 15, CreateKeysAndCertificate: 15, AttachPolicy: 40, AttachThingPrincipal: 100, AddThingToThingGroup: 100 });
  assert.is(r.sources.CreateThing, 'applied quota');
  assert.is(r.sources.AttachPolicy, 'applied quota');
  assert.is(r.sources.AttachThingPrincipal, 'AWS default quota');
  assert.is(r.sources.CreateCertificateFromCsr, 'documented default');
  assert.is(r.note, undefined);
  assert.equal(quotaCalls(since), ['service-quotas:ListServiceQuotas', 'service-quotas:ListAWSDefaultServiceQuotas']);
  // The same account and region again: no call.
  const again = await iotApiRates(new AwsClients({}), IOT_REGISTRATION_TPS, undefined);
  assert.equal(again.rates, r.rates);
  assert.is(quotaCalls(since).length, 2);
  assert.equal(moto.realism!.violations(), []);
  aws.destroy();
});

test('IOTCTL_AWS_TPS overrides what it names; a single number for all asks nothing', async () => {
  const aws = new AwsClients({});
  const r = await iotApiRates(aws, IOT_REGISTRATION_TPS, 'AttachPolicy=5');
  assert.is(r.rates.AttachPolicy, 5);
  assert.is(r.sources.AttachPolicy, 'IOTCTL_AWS_TPS');
  assert.is(r.rates.CreateThing, 120);
  const since = moto.realism!.calls().length;
  clearQuotaCache();
  const all = await iotApiRates(aws, IOT_REGISTRATION_TPS, '7');
  assert.ok(Object.values(all.rates).every((v) => v === 7));
  assert.equal(quotaCalls(since), []);
  aws.destroy();
});

test('AccessDenied on Service Quotas: the documented rates, with a one-line note, not a failure', async () => {
  moto.realism!.set({ deny: ['service-quotas:*'] });
  const aws = new AwsClients({});
  const r = await iotApiRates(aws, IOT_REGISTRATION_TPS, undefined);
  assert.equal(r.rates, IOT_REGISTRATION_TPS);
  assert.ok(Object.values(r.sources).every((s) => s === 'documented default'));
  assert.match(r.note!, /^Service Quotas could not be read \(AccessDeniedException on servicequotas:ListServiceQuotas; AccessDeniedException on servicequotas:ListAWSDefaultServiceQuotas\): CreateThing, .*, AddThingToThingGroup paced at AWS's documented rates\.$/);
  assert.not.match(r.note!, /\n/);
  aws.destroy();
});

test("a region without iotcore quotas (moto's own answer: NoSuchResourceException) falls back the same way", async () => {
  moto.realism!.set({ serviceQuotas: {} });
  const aws = new AwsClients({});
  const r = await iotApiRates(aws, IOT_REGISTRATION_TPS, undefined);
  assert.equal(r.rates, IOT_REGISTRATION_TPS);
  assert.match(r.note!, /NoSuchResourceException on servicequotas:ListServiceQuotas/);
  aws.destroy();
});

test('the registry paces at the quotas once read: the limiter and the worker count follow them', async () => {
  const aws = new AwsClients({});
  const devices = awsDevicesOf(aws, parseSpec('project: quotas\n').spec);
  assert.is(await devices.bulkConcurrency(), 30, 'twice the slowest rate (CreateCertificateFromCsr 15)');
  assert.is((await devices.apiRates()).rates.AttachPolicy, 40);
  aws.destroy();
});

test('cli: device register --from-file shows the rates it uses on stderr and in --json', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-quotas-'));
  try {
    writeFileSync(join(dir, 'iotctl.yaml'), 'project: quotas\ntarget: aws\n');
    writeFileSync(join(dir, 'devices.csv'), 'thingName\nq-1\nq-2\n');
    const env = { ...moto.env, IOTCTL_AWS_TPS: '' };
    const r = await cli(['device', 'register', '--from-file', 'devices.csv'], { cwd: dir, env });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /IoT API rates: CreateThing 120\/s \(applied quota\), CreateCertificateFromCsr 15\/s \(documented default\), .*AttachPolicy 40\/s \(applied quota\), AttachThingPrincipal 100\/s \(AWS default quota\)/);
    writeFileSync(join(dir, 'more.csv'), 'thingName\nq-3\n');
    moto.realism!.set({ deny: ['service-quotas:*'] });
    const j = await cli(['device', 'register', '--from-file', 'more.csv', '--json'], { cwd: dir, env });
    assert.is(j.code, 0, j.stderr);
    const out = JSON.parse(j.stdout) as { registered: string[]; rates: { api: string; tps: number; source: string }[] };
    assert.equal(out.registered, ['q-3']);
    assert.equal(out.rates.find((x) => x.api === 'CreateThing'), { api: 'CreateThing', tps: 100, source: 'documented default' });
    assert.match(j.stderr, /Warning: Service Quotas could not be read \(AccessDeniedException/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
