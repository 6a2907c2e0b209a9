// Region and account are part of the deployment, not of the shell: against moto_server, through the CLI.
// The spec's region beats AWS_REGION (reported on stderr, not obeyed); --region overrides it explicitly;
// a pinned account refuses credentials of another account before anything is written.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, makeProject, type Project } from '../helpers/project.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { stageNames } from '../../src/targets/aws/naming.js';

/** The stream's name on AWS (project regions, default stage). */
const TELEMETRY = stageNames({ project: 'regions', stage: 'default' }).stream('telemetry');

const spec = (extra = '') => `project: regions
target: aws
region: us-east-1
${extra}streams:
  - { name: telemetry }
`;

let project: Project;
let moto: Moto;
let restore: () => void;
const WARNING = /Warning: iotctl.yaml says region us-east-1, AWS_REGION says eu-west-1: using us-east-1 .*--region eu-west-1/;

const run = (args: string[], env: Record<string, string> = {}) => cli(args, { cwd: project.dir, env: { ...moto.env, ...env }, timeoutMs: 90_000 });

/** The Kinesis streams of one region, asked of moto directly (not through iotctl's own listing). */
async function streamsIn(region: string): Promise<string[]> {
  const aws = new AwsClients({ region, endpointUrl: moto.url });
  try {
    const { client, sdk } = await aws.get('kinesis');
    return (await client.send(new sdk.ListStreamsCommand({}))).StreamNames ?? [];
  } finally {
    aws.destroy();
  }
}

test.before(async () => {
  project = makeProject(spec());
  moto = await startMoto();
  restore = useEnv(moto.env);
});
test.after(async () => {
  restore();
  project.cleanup();
  await moto.stop();
});
test.before.each(async () => {
  await moto.reset();
  writeFileSync(project.specFile, spec());
});

test("the spec's region beats a differing AWS_REGION, which is reported on stderr", async () => {
  const r = await run(['apply', '--yes'], { AWS_REGION: 'eu-west-1' });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, WARNING);
  assert.is(r.stderr.match(/says region/g)?.length, 1, 'warned once per command');
  assert.equal(await streamsIn('us-east-1'), [TELEMETRY]);
  assert.equal(await streamsIn('eu-west-1'), []);
});

test('--json stays clean: the warning goes to stderr, the listing is of the spec region', async () => {
  await run(['apply', '--yes']);
  const r = await run(['stream', 'list', '--json'], { AWS_REGION: 'eu-west-1' });
  assert.is(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).map((s: { name: string }) => s.name), ['telemetry']);
  assert.match(r.stderr, WARNING);
});

/** A profile `ops` of moto's account whose config says eu-west-1, and no AWS_REGION or key in the environment. */
function opsProfile(): Record<string, string> {
  writeFileSync(join(project.dir, 'aws-config'), '[profile ops]\nregion = eu-west-1\n');
  writeFileSync(join(project.dir, 'aws-credentials'), '[ops]\naws_access_key_id = test\naws_secret_access_key = test\n');
  return { AWS_PROFILE: 'ops', AWS_CONFIG_FILE: join(project.dir, 'aws-config'), AWS_SHARED_CREDENTIALS_FILE: join(project.dir, 'aws-credentials'), AWS_REGION: '', AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' };
}

test("a profile's differing region is reported, not obeyed", async () => {
  const r = await run(['apply', '--yes'], opsProfile());
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /Warning: iotctl.yaml says region us-east-1, profile ops says eu-west-1: using us-east-1/);
  assert.equal(await streamsIn('us-east-1'), [TELEMETRY]);
  assert.equal(await streamsIn('eu-west-1'), []);
});

test('--region overrides the spec explicitly, without a warning', async () => {
  const r = await run(['apply', '--yes', '--region', 'eu-west-1'], { AWS_REGION: 'us-east-1' });
  assert.is(r.code, 0, r.stderr);
  assert.not.match(r.stderr, /Warning: .*region/);
  assert.equal(await streamsIn('eu-west-1'), [TELEMETRY]);
  assert.equal(await streamsIn('us-east-1'), []);
});

test('a pinned account refuses the credentials of another: WRONG_ACCOUNT, exit 1, nothing created', async () => {
  writeFileSync(project.specFile, spec('account: "111111111111"\n'));
  const r = await run(['apply', '--yes', '--json']);
  assert.is(r.code, 1, r.stderr);
  const { error } = JSON.parse(r.stdout);
  assert.is(error.code, 'WRONG_ACCOUNT');
  assert.match(error.message, /belong to account 123456789012, but iotctl.yaml pins account 111111111111/);
  assert.match(error.hint, /--profile <name> or AWS_PROFILE=<name>/);
  const text = await run(['apply', '--yes'], opsProfile());
  assert.is(text.code, 1, text.stderr);
  assert.match(text.stderr, /Error: The AWS credentials in use \(profile ops\) belong to account 123456789012, but iotctl.yaml pins account 111111111111/);
  assert.match(text.stderr, /Try: Use credentials of account 111111111111: --profile <name> or AWS_PROFILE=<name>/);
  assert.equal(await streamsIn('us-east-1'), []);
  assert.equal(await streamsIn('eu-west-1'), []);
  const list = await run(['stream', 'list', '--json']);
  assert.is(JSON.parse(list.stdout).error.code, 'WRONG_ACCOUNT', 'reads are refused as well');
});

test('the matching account proceeds', async () => {
  writeFileSync(project.specFile, spec('account: "123456789012"\n'));
  const r = await run(['apply', '--yes']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(await streamsIn('us-east-1'), [TELEMETRY]);
});

test.run();
