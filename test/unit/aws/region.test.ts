/**
 * Which region an aws command acts in (src/targets/aws/region.ts): --region > the spec's region > AWS_REGION >
 * AWS_DEFAULT_REGION > the profile's. A shell or profile that names another region than the spec is reported,
 * not obeyed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { iniProfileRegion, profileRegion, resolveRegion, type RegionInputs, type RegionSource } from '../../../src/targets/aws/region.js';
import { wrongAccount } from '../../../src/targets/aws/sdk.js';

type Row = [what: string, inputs: RegionInputs, region: string | undefined, source: RegionSource | undefined, warns: boolean];
const ops = { name: 'ops', region: 'ap-south-1' };
const TABLE: Row[] = [
  ['nothing names a region', { env: {} }, undefined, undefined, false],
  ['the spec alone', { spec: 'us-east-1', env: {} }, 'us-east-1', 'spec', false],
  ['the spec beats a differing AWS_REGION, with a warning', { spec: 'us-east-1', env: { AWS_REGION: 'eu-west-1' } }, 'us-east-1', 'spec', true],
  ['the spec beats a differing AWS_DEFAULT_REGION, with a warning', { spec: 'us-east-1', env: { AWS_DEFAULT_REGION: 'eu-west-1' } }, 'us-east-1', 'spec', true],
  ["the spec beats a differing profile's region, with a warning", { spec: 'us-east-1', env: {}, profile: ops }, 'us-east-1', 'spec', true],
  ['an AWS_REGION equal to the spec: no warning', { spec: 'us-east-1', env: { AWS_REGION: 'us-east-1' }, profile: ops }, 'us-east-1', 'spec', false],
  ['--region beats the spec and the shell, silently', { flag: 'eu-west-1', spec: 'us-east-1', env: { AWS_REGION: 'ap-south-1' }, profile: ops }, 'eu-west-1', '--region', false],
  ['no spec region: AWS_REGION', { env: { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-north-1' }, profile: ops }, 'eu-west-1', 'AWS_REGION', false],
  ['no spec region: AWS_DEFAULT_REGION', { env: { AWS_DEFAULT_REGION: 'eu-north-1' }, profile: ops }, 'eu-north-1', 'AWS_DEFAULT_REGION', false],
  ["no spec region: the profile's", { env: {}, profile: ops }, 'ap-south-1', 'profile', false],
  ['empty values count as unset (a cleared variable)', { flag: '', spec: 'us-east-1', env: { AWS_REGION: '', AWS_DEFAULT_REGION: ' ' } }, 'us-east-1', 'spec', false],
];

for (const [what, inputs, region, source, warns] of TABLE) {
  test(`region: ${what}`, () => {
    const choice = resolveRegion(inputs);
    assert.is(choice.region, region);
    assert.is(choice.source, source);
    assert.is(Boolean(choice.warning), warns, choice.warning);
  });
}

test('the warning names both regions, which one is used, and how to override', () => {
  const { warning } = resolveRegion({ spec: 'us-east-1', specLabel: 'iotctl.yaml (stage prod)', env: { AWS_REGION: 'eu-west-1' } });
  assert.is(warning, 'iotctl.yaml (stage prod) says region us-east-1, AWS_REGION says eu-west-1: using us-east-1 (iotctl.yaml (stage prod) wins). Pass --region eu-west-1 to act in eu-west-1 instead.');
  assert.match(resolveRegion({ spec: 'us-east-1', env: {}, profile: ops }).warning!, /profile ops says ap-south-1/);
});

test("a profile's region, read as the SDK reads the config and credentials files", () => {
  const config = '[default]\nregion = us-west-2\n\n[profile ops]  # ops account\n; a comment\noutput = json\nregion=eu-central-1\n[profile other]\nregion = sa-east-1\n';
  assert.is(iniProfileRegion(config, 'default', 'config'), 'us-west-2');
  assert.is(iniProfileRegion(config, 'ops', 'config'), 'eu-central-1');
  assert.is(iniProfileRegion(config, 'missing', 'config'), undefined);
  assert.is(iniProfileRegion('[ops]\nregion = ca-central-1\n', 'ops', 'credentials'), 'ca-central-1');
  assert.is(iniProfileRegion('[ops]\nregion = ca-central-1\n', 'ops', 'config'), undefined, 'the config file names profiles [profile NAME]');

  const dir = mkdtempSync(join(tmpdir(), 'iotctl-region-'));
  try {
    writeFileSync(join(dir, 'config'), config);
    writeFileSync(join(dir, 'credentials'), '[creds-only]\nregion = me-south-1\n');
    const env = { AWS_CONFIG_FILE: join(dir, 'config'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials') };
    assert.equal(profileRegion(undefined, env), { name: 'default', region: 'us-west-2' });
    assert.equal(profileRegion(undefined, { ...env, AWS_PROFILE: 'ops' }), { name: 'ops', region: 'eu-central-1' });
    assert.equal(profileRegion('other', { ...env, AWS_PROFILE: 'ops' }), { name: 'other', region: 'sa-east-1' }, '--profile beats AWS_PROFILE');
    assert.equal(profileRegion('creds-only', env), { name: 'creds-only', region: 'me-south-1' });
    assert.equal(profileRegion(undefined, { AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none') }), { name: 'default', region: undefined });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the wrong-account error names both accounts, the profile in use, and the fix', () => {
  const e = wrongAccount('111111111111', '123456789012', { profile: 'dev' }, {});
  assert.is(e.code, 'WRONG_ACCOUNT');
  assert.is(e.exitCode, 1);
  assert.match(e.message, /profile dev\) belong to account 123456789012, but iotctl.yaml pins account 111111111111/);
  assert.match(e.hint!, /--profile <name> or AWS_PROFILE=<name>/);
  assert.match(wrongAccount('111111111111', '123456789012', {}, { AWS_PROFILE: 'ops' }).message, /profile ops/);
  assert.match(wrongAccount('111111111111', '123456789012', {}, { AWS_ACCESS_KEY_ID: 'AKIA' }).message, /the access key in AWS_ACCESS_KEY_ID/);
});

test.run();
