/**
 * iam.ts, the one IAM module, against moto_server: trust policies with each service's confused-deputy
 * conditions, drift-checked writes (an unchanged role gets no write, so nothing waits on IAM propagation),
 * one deletion rule by tags; and the roles rules, functions and the datalake make carry those trusts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { deleteServiceRole, ensureServiceRole, policyJson, trustPolicy, type ServiceRole } from '../../src/targets/aws/iam.js';
import { AwsRules } from '../../src/targets/aws/rules.js';
import { applyDatalake, datalakeContext, planDatalake } from '../../src/targets/aws/analytics/datalake.js';
import { stageNames } from '../../src/targets/aws/naming.js';
import { ownerOf, ownerTags } from '../../src/targets/aws/ownership.js';
import { specSchema } from '../../src/spec/schema.js';
import { parseSpec } from '../../src/spec/loader.js';
import { applyRulePlan, planRules } from '../../src/services/rules.js';

const ACCOUNT = '123456789012';
const PLACE = { account: ACCOUNT, region: 'us-east-1' };
let moto: Moto;
let restore: () => void;
let aws: AwsClients;
/** Every IAM command sent, by name. */
const sent: string[] = [];

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({});
  const { client } = await aws.get('iam');
  const c = client as unknown as { send: (cmd: { constructor: { name: string } }, o?: unknown) => Promise<unknown> };
  const send = c.send.bind(c);
  c.send = (cmd, o) => (sent.push(cmd.constructor.name.replace(/Command$/, '')), send(cmd, o));
});
test.after(async () => {
  aws?.destroy();
  restore?.();
  await moto?.stop();
});

const conditionOf = (doc: unknown) => (doc as { Statement: { Condition?: Record<string, Record<string, string>> }[] }).Statement[0]!.Condition;

test('trust policies: each service with the confused-deputy conditions it supports', () => {
  assert.equal(conditionOf(trustPolicy('iot', PLACE, { arn: `arn:aws:iot:us-east-1:${ACCOUNT}:rule/r` })), { StringEquals: { 'aws:SourceAccount': ACCOUNT }, ArnLike: { 'aws:SourceArn': `arn:aws:iot:us-east-1:${ACCOUNT}:rule/r` } });
  assert.equal(conditionOf(trustPolicy('scheduler', PLACE)), { StringEquals: { 'aws:SourceAccount': ACCOUNT }, ArnLike: { 'aws:SourceArn': `arn:aws:scheduler:us-east-1:${ACCOUNT}:schedule-group/default` } });
  assert.equal(conditionOf(trustPolicy('iotanalytics', PLACE)), { StringEquals: { 'aws:SourceAccount': ACCOUNT }, ArnLike: { 'aws:SourceArn': `arn:aws:iotanalytics:us-east-1:${ACCOUNT}:*` } });
  assert.equal(conditionOf(trustPolicy('firehose', PLACE)), { StringEquals: { 'sts:ExternalId': ACCOUNT } });
  assert.is(conditionOf(trustPolicy('lambda', PLACE)), undefined);
  // The partition follows the region.
  assert.match(JSON.stringify(trustPolicy('iot', { account: ACCOUNT, region: 'cn-north-1' })), /arn:aws-cn:iot:cn-north-1/);
});

test('ensureServiceRole: created once; an unchanged role gets no write; drifted trust, policy and tags are rewritten', async () => {
  const role: ServiceRole = {
    name: 'iam-roles-one',
    path: '/iotctl/iamroles/default/',
    description: 'test',
    trust: trustPolicy('firehose', PLACE),
    policyName: 'iotctl',
    policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:PutObject'], Resource: 'arn:aws:s3:::b/*' }] },
    tags: { ...ownerTags(ownerOf('iamroles')), 'iotctl:analytics': 'datalake' },
  };
  assert.is((await ensureServiceRole(aws, role)).result, 'created');
  sent.length = 0;
  assert.is((await ensureServiceRole(aws, role)).result, 'unchanged');
  assert.equal(sent.filter((c) => !/^(Get|List)/.test(c)), [], 'no write for an unchanged role');

  // Someone removed the condition and a tag, and widened the policy.
  const { client, sdk } = await aws.get('iam');
  await client.send(new sdk.UpdateAssumeRolePolicyCommand({ RoleName: role.name, PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'firehose.amazonaws.com' }, Action: 'sts:AssumeRole' }] }) }));
  await client.send(new sdk.PutRolePolicyCommand({ RoleName: role.name, PolicyName: 'iotctl', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] }) }));
  await client.send(new sdk.UntagRoleCommand({ RoleName: role.name, TagKeys: ['iotctl:analytics'] }));
  sent.length = 0;
  assert.is((await ensureServiceRole(aws, role)).result, 'updated');
  assert.equal(sent.filter((c) => !/^(Get|List)/.test(c)).sort(), ['PutRolePolicy', 'TagRole', 'UpdateAssumeRolePolicy']);
  const got = (await client.send(new sdk.GetRoleCommand({ RoleName: role.name }))).Role!;
  assert.equal(conditionOf(policyJson(got.AssumeRolePolicyDocument)), { StringEquals: { 'sts:ExternalId': ACCOUNT } });

  // Deleted only when the caller's rule accepts its tags.
  assert.is(await deleteServiceRole(aws, role.name, (t) => t['iotctl:project'] === 'someone-else'), false);
  assert.is(await deleteServiceRole(aws, role.name, (t) => t['iotctl:project'] === 'iamroles'), true);
  assert.is(await deleteServiceRole(aws, role.name, () => true), false, 'gone');
});

test('the roles rules and the datalake make carry their service\'s conditions', async () => {
  const names = stageNames({ project: 'iamroles', stage: 'default' });
  const rules = new AwsRules(aws, { owner: ownerOf('iamroles'), names, declared: { rules: ['r'], streams: ['s'] } });
  await rules.put({ name: 'r', description: '', sql: "SELECT * FROM 'dt/#'", enabled: true, actions: [{ kinesis: { stream: 's', partitionKey: 'k' } }] });
  const { client, sdk } = await aws.get('iam');
  const trustOf = async (RoleName: string) => policyJson((await client.send(new sdk.GetRoleCommand({ RoleName }))).Role!.AssumeRolePolicyDocument);
  assert.equal(conditionOf(await trustOf(names.ruleRole('r'))), { StringEquals: { 'aws:SourceAccount': ACCOUNT }, ArnLike: { 'aws:SourceArn': `arn:aws:iot:us-east-1:${ACCOUNT}:rule/${names.rule('r')}` } });

  const spec = specSchema.parse({
    project: 'iamroles',
    target: 'aws',
    analytics: { channels: [{ name: 'raw' }], datastores: [{ name: 'store' }], pipelines: [{ name: 'main', channel: 'raw', datastore: 'store', activities: [] }], datasets: [{ name: 'daily', sql: 'SELECT 1', schedule: 'rate(1 day)' }] },
  });
  const ctx = await datalakeContext(aws, spec);
  await applyDatalake(aws, spec, await planDatalake(aws, spec, { context: ctx }), { context: ctx });
  const roles = ((await client.send(new sdk.ListRolesCommand({ PathPrefix: names.rolePath }))).Roles ?? []).filter((r) => r.Path === names.rolePath && r.RoleName !== names.ruleRole('r'));
  const byService = Object.fromEntries(await Promise.all(roles.map(async (r) => {
    const doc = policyJson(r.AssumeRolePolicyDocument) as { Statement: { Principal: { Service: string } }[] };
    return [doc.Statement[0]!.Principal.Service, conditionOf(doc)] as const;
  })));
  assert.equal(byService['firehose.amazonaws.com'], { StringEquals: { 'sts:ExternalId': ACCOUNT } });
  assert.equal(byService['scheduler.amazonaws.com'], { StringEquals: { 'aws:SourceAccount': ACCOUNT }, ArnLike: { 'aws:SourceArn': `arn:aws:scheduler:us-east-1:${ACCOUNT}:schedule-group/default` } });
  assert.ok('lambda.amazonaws.com' in byService, Object.keys(byService).join());
  // Applying again rewrites no role.
  sent.length = 0;
  await applyDatalake(aws, spec, await planDatalake(aws, spec, { context: ctx }), { context: ctx });
  assert.equal(sent.filter((c) => !/^(Get|List)/.test(c)), []);
});

test('rule roles are plan items: created with the rule, a no-op once applied, a drifted trust shown and fixed alone', async () => {
  const { spec } = parseSpec(`project: iamplan
streams:
  - name: s
rules:
  - name: r
    sql: SELECT * FROM 'dt/#'
    actions:
      - kinesis: { stream: s }
`);
  const names = stageNames({ project: 'iamplan', stage: 'default' });
  const rules = new AwsRules(aws, { owner: ownerOf('iamplan'), names, declared: { rules: ['r'], streams: ['s'] } });
  const plan = () => planRules(rules, spec, {}, names.rule);
  const summary = (items: Awaited<ReturnType<typeof plan>>) => items.map((i) => `${i.action} ${i.kind} ${i.name}`);
  const first = await plan();
  assert.equal(summary(first), ['create rule role r', 'create rule r']);
  assert.is(first[0]!.physical, names.ruleRole('r'));
  await applyRulePlan(rules, first);
  assert.equal(summary(await plan()), ['noop rule role r', 'noop rule r']);

  // Someone dropped the confused-deputy conditions: only the role changes, and only the role is written.
  const { client, sdk } = await aws.get('iam');
  await client.send(new sdk.UpdateAssumeRolePolicyCommand({ RoleName: names.ruleRole('r'), PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'iot.amazonaws.com' }, Action: 'sts:AssumeRole' }] }) }));
  const drifted = await plan();
  assert.equal(summary(drifted), ['replace rule role r', 'noop rule r']);
  assert.ok(drifted[0]!.changes.some((c) => c.path.startsWith('trust')), JSON.stringify(drifted[0]!.changes));
  sent.length = 0;
  await applyRulePlan(rules, drifted);
  assert.equal(sent.filter((c) => !/^(Get|List)/.test(c)), ['UpdateAssumeRolePolicy']);
  assert.equal(summary(await plan()), ['noop rule role r', 'noop rule r']);
});

test.run();
