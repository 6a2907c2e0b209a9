// Devices per stage on the aws target, through the CLI against moto_server: two stages of one project and a
// second project in one account each have their own device policy and thing group; `device list` shows only
// the stage's things; a command on another stage's thing is refused; a policy of an iotctl before stages is
// moved without any certificate ever lacking a policy.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { cli, makeProject, NO_DB, type Project } from '../helpers/project.js';

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
const projects: Project[] = [];

const SPEC = (project: string) => `project: ${project}
target: aws
region: us-east-1
stages:
  dev:
  prod:
`;

const run = async (p: Project, ...args: string[]) => {
  const r = await cli(args, { cwd: p.dir, env: { ...moto.env, ...NO_DB }, timeoutMs: 120_000 });
  return { ...r, out: r.stdout + r.stderr };
};
const ok = async (p: Project, ...args: string[]) => {
  const r = await run(p, ...args);
  assert.is(r.code, 0, `iotctl ${args.join(' ')}: ${r.out}`);
  return r;
};
const t0 = Date.now();
test.after.each(() => console.log(`  ${((Date.now() - t0) / 1000).toFixed(1)} s`));
const listed = async (p: Project, stage: string) => JSON.parse((await ok(p, 'device', 'list', '--json', '--stage', stage)).stdout) as { thingName: string; legacy?: true }[];
const iot = () => aws.get('iot');
async function policyNames(): Promise<string[]> {
  const { client, sdk } = await iot();
  return ((await client.send(new sdk.ListPoliciesCommand({}))).policies ?? []).map((p) => p.policyName!).sort();
}
async function attached(target: string): Promise<string[]> {
  const { client, sdk } = await iot();
  return ((await client.send(new sdk.ListAttachedPoliciesCommand({ target }))).policies ?? []).map((p) => p.policyName!);
}
const project = (yaml: string) => {
  const p = makeProject(yaml);
  projects.push(p);
  return p;
};

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({});
});
test.after(async () => {
  aws.destroy();
  restore();
  await moto.stop();
  for (const p of projects) p.cleanup();
});

test("two stages and a second project: one policy and group each, and each stage's devices are its own", async () => {
  const fleet = project(SPEC('fleet'));
  const other = project(SPEC('other'));
  // Independent deployments: applied at once, as three teams would.
  await Promise.all(
    ([[fleet, 'dev'], [fleet, 'prod'], [other, 'dev']] as const).map(async ([p, stage]) => {
      const applied = await ok(p, 'apply', '--yes', '--stage', stage);
      assert.match(applied.out, new RegExp(`iotctl-${p.spec.project}-${stage}--iotctl-device`), applied.out);
    }),
  );
  assert.equal(await policyNames(), ['iotctl-fleet-dev--iotctl-device', 'iotctl-fleet-prod--iotctl-device', 'iotctl-other-dev--iotctl-device']);
  const { client, sdk } = await iot();
  const groups = ((await client.send(new sdk.ListThingGroupsCommand({}))).thingGroups ?? []).map((g) => g.groupName).sort();
  assert.equal(groups, ['iotctl-fleet-dev--devices', 'iotctl-fleet-prod--devices', 'iotctl-other-dev--devices']);
  assert.match((await ok(fleet, 'apply', '--dry-run', '--stage', 'dev')).out, /No changes/);

  await Promise.all([
    ok(fleet, 'device', 'register', 'sensor-dev', '--stage', 'dev'),
    ok(fleet, 'device', 'register', 'sensor-prod', '--stage', 'prod'),
    ok(other, 'device', 'register', 'sensor-other', '--stage', 'dev'),
    client.send(new sdk.CreateThingCommand({ thingName: 'made-by-hand' })),
  ]);
  assert.equal((await listed(fleet, 'dev')).map((d) => d.thingName), ['sensor-dev']);
  assert.equal((await listed(fleet, 'prod')).map((d) => d.thingName), ['sensor-prod']);
  assert.equal((await listed(other, 'dev')).map((d) => d.thingName), ['sensor-other']);

  // prod never touches dev's device (nor another project's, nor one made by hand).
  await Promise.all(
    [['delete', 'sensor-dev'], ['show', 'sensor-dev'], ['delete', 'sensor-other'], ['delete', 'made-by-hand']].map(async ([cmd, thing]) => {
      const refused = await run(fleet, 'device', cmd!, thing!, '--stage', 'prod');
      assert.is(refused.code, 1, refused.out);
      assert.match(refused.stderr, new RegExp(`"${thing}" is not a device of project fleet, stage prod`), refused.out);
    }),
  );
  const shown = JSON.parse((await ok(fleet, 'device', 'show', 'sensor-dev', '--json', '--stage', 'dev')).stdout);
  assert.equal(shown.policies, ['iotctl-fleet-dev--iotctl-device'], 'registration attached the stage policy');
  await ok(fleet, 'device', 'delete', 'sensor-dev', '--stage', 'dev');
  assert.equal(await listed(fleet, 'dev'), []);
  assert.equal((await listed(fleet, 'prod')).map((d) => d.thingName), ['sensor-prod']);
});

test('a policy of an iotctl before stages moves to the stage policy: its devices keep a policy throughout and join the group', async () => {
  const old = project('project: legacy\ntarget: aws\nregion: us-east-1\n');
  // What the old iotctl made: the policy under its bare spec name (no tags), a thing with a certificate.
  const { client, sdk } = await iot();
  await client.send(new sdk.CreatePolicyCommand({ policyName: 'iotctl-device', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }));
  const certs: string[] = [];
  for (const thingName of ['old-1', 'old-2']) {
    await client.send(new sdk.CreateThingCommand({ thingName }));
    const cert = await client.send(new sdk.CreateKeysAndCertificateCommand({ setAsActive: true }));
    await client.send(new sdk.AttachPolicyCommand({ policyName: 'iotctl-device', target: cert.certificateArn! }));
    await client.send(new sdk.AttachThingPrincipalCommand({ thingName, principal: cert.certificateArn! }));
    certs.push(cert.certificateArn!);
  }
  // Not in any stage group yet, but not lost: listed as legacy through the old policy.
  assert.equal((await listed(old, 'default')).map((d) => [d.thingName, d.legacy]), [['old-1', true], ['old-2', true]]);

  const plan = await ok(old, 'apply', '--dry-run');
  assert.match(plan.out, /^- policy iotctl-device$/m, plan.out);
  assert.match(plan.out, /made before stages: its 2 certificate\(s\) get iotctl-legacy-default--iotctl-device first/, plan.out);

  // Sample the certificates' policies while apply runs: never none.
  let applying = true;
  const samples: string[][] = [];
  const watcher = (async () => {
    while (applying) for (const c of certs) samples.push(await attached(c));
  })();
  const applied = await run(old, 'apply', '--yes');
  applying = false;
  await watcher;
  assert.is(applied.code, 0, applied.out);
  assert.ok(samples.length > 2, `${samples.length} samples`);
  assert.not.ok(samples.some((s) => s.length === 0), 'a certificate was without a policy');

  for (const c of certs) assert.equal(await attached(c), ['iotctl-legacy-default--iotctl-device']);
  assert.not.ok((await policyNames()).includes('iotctl-device'), 'the old policy is gone');
  const members = (await client.send(new sdk.ListThingsInThingGroupCommand({ thingGroupName: 'iotctl-legacy-default--devices' }))).things ?? [];
  assert.equal(members.sort(), ['old-1', 'old-2']);
  assert.equal((await listed(old, 'default')).map((d) => [d.thingName, d.legacy]), [['old-1', undefined], ['old-2', undefined]]);
  assert.match((await ok(old, 'apply', '--dry-run')).out, /No changes/);
});

test.run();
