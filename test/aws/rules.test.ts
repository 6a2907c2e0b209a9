// AwsRules and AwsRuleErrors against moto_server: round trip equal (a no-op plan), replace on change,
// one least-privilege role per rule kept in step and deleted with the rule, error payloads newest first;
// names scoped by project and stage (two stages and another project side by side), foreign rules never
// touched, --adopt, and the move of a rule an older iotctl wrote under the bare spec name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { rejects } from '../helpers/project.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { explicitNames, ruleRoleName as legacyRoleName, stageNames } from '../../src/targets/aws/naming.js';
import { ownerOf, ownerTagList } from '../../src/targets/aws/ownership.js';
import { AwsRules, fromAws, managedRolePolicy, ruleNames, toPayload, type ArnScope } from '../../src/targets/aws/rules.js';
import { AwsRuleErrors } from '../../src/targets/aws/rule-errors.js';
import { parseSpec } from '../../src/spec/loader.js';
import { applyRulePlan, planRules, RULE_ROLE_KIND } from '../../src/services/rules.js';
import type { RuleSpec, Spec } from '../../src/spec/schema.js';

const ROLE = 'arn:aws:iam::123456789012:role/given';
const declared = `streams:
  - { name: telemetry }
  - { name: telemetry2 }
  - { name: k }
functions:
  - { name: ingest, template: ingest-rds }
analytics:
  channels:
    - { name: ch }
`;
const yaml = (rules: string) => `project: awsrules\n${declared}rules:\n${rules}`;
const specOf = (rules: string) => parseSpec(yaml(rules)).spec;
const base = `
  - name: telemetry_to_stream
    sql: "SELECT *, topic(3) AS device_id FROM 'dt/awsrules/+/telemetry'"
    actions:
      - kinesis: { stream: telemetry }
      - republish: { topic: "alerts/\${topic(3)}", qos: 1, roleArn: ${ROLE} }
    errorAction:
      cloudwatchLogs: { logGroup: rule-errors }
`;
/** The stage's physical names of project awsrules. */
const DEV = stageNames({ project: 'awsrules', stage: 'default' });

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let rules: AwsRules;

/** The adapter of a project and stage for a spec, as index.ts builds it. */
function adapter(spec: Spec, stage = 'default', adopt = false): AwsRules {
  const names = stageNames({ project: spec.project, stage }, explicitNames(spec));
  const declared = { rules: spec.rules.map((r) => r.name), streams: spec.streams.map((x) => x.name), functions: spec.functions.map((f) => f.name) };
  return new AwsRules(aws, { owner: ownerOf(spec.project, stage, adopt), names, declared });
}
/** The plan `apply` makes: the desired rules carry their physical names (Target.physicalName). */
/** The rules' plan items (their managed roles' items are checked in their own test). */
const planOf = async (r: AwsRules, spec: Spec, opts: { prune?: boolean } = {}, stage = 'default') =>
  (await planRules(r, spec, opts, stageNames({ project: spec.project, stage }, explicitNames(spec)).rule)).filter((i) => i.kind !== RULE_ROLE_KIND);

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
});
test.after(async () => {
  aws?.destroy();
  restore();
  await moto.stop();
});
test.before.each(async () => {
  await moto.reset();
  aws?.destroy();
  aws = new AwsClients({});
  rules = adapter(specOf(base));
});

async function role(ruleName: string, RoleName = DEV.ruleRole(ruleName)) {
  const { client, sdk } = await aws.get('iam');
  try {
    const r = await client.send(new sdk.GetRoleCommand({ RoleName }));
    const p = await client.send(new sdk.GetRolePolicyCommand({ RoleName, PolicyName: 'rule-actions' }));
    const doc = (s: string | undefined) => JSON.parse(decodeURIComponent(s ?? '{}'));
    return { path: r.Role?.Path, trust: doc(r.Role?.AssumeRolePolicyDocument), policy: doc(p.PolicyDocument) };
  } catch (e) {
    if (/^NoSuchEntity/.test((e as { awsCode?: string }).awsCode ?? '')) return undefined;
    throw e;
  }
}

test('every action kind maps to AWS and back to the same spec (pure); what actions name of the stage is named physically', () => {
  const names = ruleNames(stageNames({ project: 'awsrules', stage: 'dev' }), { streams: ['k'], functions: ['ingest'] });
  const s: ArnScope = { partition: 'aws', region: 'eu-west-1', account: '111122223333', names };
  const rule = specOf(`
  - name: all_kinds
    description: every action
    enabled: false
    sql: "SELECT * FROM 'a/#'"
    actions:
      - kinesis: { stream: k, partitionKey: "\${topic(2)}" }
      - iotAnalytics: { channel: ch }
      - republish: { topic: out/x }
      - s3: { bucket: lake, key: "raw/\${timestamp()}.json", roleArn: ${ROLE} }
      - firehose: { deliveryStream: fh, separator: "\\n" }
      - lambda: { function: ingest }
    errorAction:
      cloudwatchLogs: { logGroup: rule-errors }
`).rules[0]!;
  // Names iotctl does not manage (spec validation asks for declared ones; the adapter keeps any other as written).
  rule.actions.push({ kinesis: { stream: 'their-stream', partitionKey: '${newuuid()}' } }, { lambda: { function: 'their-fn' } });
  const payload = toPayload(rule, s);
  assert.is(payload.awsIotSqlVersion, '2016-03-23');
  assert.is(payload.ruleDisabled, true);
  const managed = 'arn:aws:iam::111122223333:role/iotctl/awsrules/dev/iotctl-awsrules-dev--rule-all_kinds';
  assert.equal(payload.actions![0], { kinesis: { roleArn: managed, streamName: 'iotctl-awsrules-dev--k', partitionKey: '${topic(2)}' } });
  assert.equal(payload.actions![5], { lambda: { functionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:iotctl-awsrules-dev--ingest' } });
  // Names iotctl does not manage stay as written.
  assert.is(payload.actions![6]!.kinesis!.streamName, 'their-stream');
  assert.is(payload.actions![7]!.lambda!.functionArn, 'arn:aws:lambda:eu-west-1:111122223333:function:their-fn');
  assert.is(payload.errorAction!.cloudwatchLogs!.logGroupName, '/iotctl/awsrules/dev/rule-errors');
  assert.equal(fromAws(rule.name, { ...payload, ruleName: names.rule(rule.name) }, s), rule);

  const policy = managedRolePolicy(rule, s)!;
  const resources = policy.Statement.flatMap((st) => st.Resource).sort();
  assert.equal(resources, [
    'arn:aws:firehose:eu-west-1:111122223333:deliverystream/fh',
    'arn:aws:iot:eu-west-1:111122223333:topic/out/x',
    'arn:aws:iotanalytics:eu-west-1:111122223333:channel/ch',
    'arn:aws:kinesis:eu-west-1:111122223333:stream/iotctl-awsrules-dev--k',
    'arn:aws:kinesis:eu-west-1:111122223333:stream/their-stream',
    'arn:aws:logs:eu-west-1:111122223333:log-group:/iotctl/awsrules/dev/rule-errors',
    'arn:aws:logs:eu-west-1:111122223333:log-group:/iotctl/awsrules/dev/rule-errors:*',
    'arn:aws:logs:eu-west-1:111122223333:log-group:/iotctl/awsrules/dev/rule-errors:*',
  ]);
  assert.not.ok(JSON.stringify(policy).includes('s3:'), 'the s3 action has its own role');
  assert.is(managedRolePolicy({ ...rule, actions: [{ lambda: { function: 'f' } }], errorAction: undefined }, s), undefined, 'lambda needs no role');
  // A rule an older iotctl wrote (the role `iotctl-rule-<rule>`) reads back without a roleArn: the move compares its fields.
  const old = JSON.parse(JSON.stringify(payload).replaceAll(managed, `arn:aws:iam::111122223333:role/${legacyRoleName(rule.name)}`));
  assert.equal(fromAws(rule.name, old, s), rule);
});

test('create: read back equal (plan is a no-op), SQL version 2016-03-23, a least-privilege role', async () => {
  const spec = specOf(base);
  const plan = await planOf(rules, spec);
  assert.equal(plan.map((i) => i.action), ['create']);
  await applyRulePlan(rules, plan);

  assert.equal(await rules.get('telemetry_to_stream'), spec.rules[0]);
  assert.equal((await planOf(rules, spec)).map((i) => i.action), ['noop']);

  const { client, sdk } = await aws.get('iot');
  const raw = await client.send(new sdk.GetTopicRuleCommand({ ruleName: 'iotctl_awsrules_default__telemetry_to_stream' }));
  assert.is(raw.rule?.awsIotSqlVersion, '2016-03-23');
  assert.is(raw.rule?.actions?.[0]?.kinesis?.streamName, 'iotctl-awsrules-default--telemetry', 'the stream by its physical name');
  assert.is(raw.rule?.actions?.[1]?.republish?.roleArn, ROLE, 'the given role is used as is');

  const r = await role('telemetry_to_stream');
  assert.ok(r, 'the managed role exists');
  assert.is(r!.path, '/iotctl/awsrules/default/');
  assert.is(r!.trust.Statement[0].Principal.Service, 'iot.amazonaws.com');
  assert.is(r!.trust.Statement[0].Condition.ArnLike['aws:SourceArn'], 'arn:aws:iot:us-east-1:123456789012:rule/iotctl_awsrules_default__telemetry_to_stream');
  assert.equal(r!.policy.Statement, [
    { Effect: 'Allow', Action: ['kinesis:PutRecord'], Resource: ['arn:aws:kinesis:us-east-1:123456789012:stream/iotctl-awsrules-default--telemetry'] },
    { Effect: 'Allow', Action: ['logs:DescribeLogStreams'], Resource: ['arn:aws:logs:us-east-1:123456789012:log-group:/iotctl/awsrules/default/rule-errors', 'arn:aws:logs:us-east-1:123456789012:log-group:/iotctl/awsrules/default/rule-errors:*'] },
    { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: ['arn:aws:logs:us-east-1:123456789012:log-group:/iotctl/awsrules/default/rule-errors:*'] },
  ]);
  assert.is(await rules.get('missing'), undefined);
});

test('a change replaces the rule and keeps its role in step; a rule with only given roles has no managed role', async () => {
  await applyRulePlan(rules, await planOf(rules, specOf(base)));
  const changed = specOf(base.replace('stream: telemetry', 'stream: telemetry2').replace('SELECT *,', 'SELECT temperature,'));
  const plan = await planOf(rules, changed);
  assert.equal(plan.map((i) => i.action), ['replace']);
  assert.ok(plan[0]!.changes.some((c) => c.path === 'sql'));
  await applyRulePlan(rules, plan);
  assert.equal(await rules.get('telemetry_to_stream'), changed.rules[0]);
  assert.equal((await role('telemetry_to_stream'))!.policy.Statement[0].Resource, ['arn:aws:kinesis:us-east-1:123456789012:stream/iotctl-awsrules-default--telemetry2']);

  const allGiven = specOf(base.replace('stream: telemetry', `stream: telemetry, roleArn: ${ROLE}`).replace('rule-errors', `rule-errors, roleArn: ${ROLE}`));
  await applyRulePlan(rules, await planOf(rules, allGiven));
  assert.equal(await rules.get('telemetry_to_stream'), allGiven.rules[0]);
  assert.is(await role('telemetry_to_stream'), undefined, 'the managed role went away with its last user');
});

test('delete (prune) removes the rule and its role', async () => {
  await applyRulePlan(rules, await planOf(rules, specOf(base)));
  const plan = await planOf(rules, parseSpec(`project: awsrules\n${declared}`).spec, { prune: true });
  assert.equal(plan.map((i) => `${i.action} ${i.name}`), ['delete telemetry_to_stream']);
  await applyRulePlan(rules, plan);
  assert.equal(await rules.list(), []);
  assert.is(await role('telemetry_to_stream'), undefined);
});

test('rule errors: read from the errorAction log group, newest first, by rule, with a limit', async () => {
  const spec = specOf(base + base.replace('telemetry_to_stream', 'second_rule'));
  await applyRulePlan(rules, await planOf(rules, spec));
  const group = '/iotctl/awsrules/default/rule-errors';
  const { client, sdk } = await aws.get('logs');
  await client.send(new sdk.CreateLogGroupCommand({ logGroupName: group }));
  await client.send(new sdk.CreateLogStreamCommand({ logGroupName: group, logStreamName: 's1' }));
  const now = Date.now();
  // AWS's payload names the rule by its physical name; the records by the logical one.
  const payload = (ruleName: string, i: number): RuleSpec | object => ({
    ruleName: DEV.rule(ruleName),
    topic: 'dt/awsrules/d1/telemetry',
    cloudwatchTraceId: `trace-${ruleName}-${i}`,
    clientId: 'd1',
    base64OriginalPayload: Buffer.from('{}').toString('base64'),
    failures: [{ failedAction: 'KinesisAction', failedResource: 'telemetry', errorMessage: 'Stream not found' }],
  });
  await client.send(
    new sdk.PutLogEventsCommand({
      logGroupName: group,
      logStreamName: 's1',
      logEvents: [
        { timestamp: now - 3000, message: JSON.stringify(payload('telemetry_to_stream', 1)) },
        { timestamp: now - 2000, message: 'not json: skipped' },
        { timestamp: now - 1000, message: JSON.stringify(payload('second_rule', 2)) },
        { timestamp: now - 500, message: JSON.stringify(payload('telemetry_to_stream', 3)) },
      ],
    }),
  );
  const errors = new AwsRuleErrors(aws, rules, DEV);
  const all = await errors.list({});
  assert.equal(all.map((e) => e.messageId), ['trace-telemetry_to_stream-3', 'trace-second_rule-2', 'trace-telemetry_to_stream-1']);
  assert.equal(all.map((e) => e.ruleName), ['telemetry_to_stream', 'second_rule', 'telemetry_to_stream']);
  assert.is(all[0]!.at, new Date(now - 500).toISOString());
  assert.is((all[0]!.error as { failures: unknown[] }).failures.length, 1);
  assert.equal((await errors.list({ rule: 'telemetry_to_stream' })).map((e) => e.messageId), ['trace-telemetry_to_stream-3', 'trace-telemetry_to_stream-1']);
  assert.equal((await errors.list({ limit: 1 })).map((e) => e.messageId), ['trace-telemetry_to_stream-3']);
  assert.equal(await errors.list({ rule: 'missing' }), []);
});


test("list and prune see only this project's rules; an unmanaged rule of the rule's name is refused, not overwritten, and gets no role", async () => {
  const { client, sdk } = await aws.get('iot');
  const foreign = { sql: "SELECT * FROM 'other/#'", actions: [], description: 'hand-made', awsIotSqlVersion: '2016-03-23' };
  // The bare spec name (no marker, no role of an older iotctl): someone else's, beside ours now, never touched.
  await client.send(new sdk.CreateTopicRuleCommand({ ruleName: 'telemetry_to_stream', topicRulePayload: foreign }));
  await client.send(new sdk.CreateTopicRuleCommand({ ruleName: 'someone_elses', topicRulePayload: foreign }));
  await client.send(new sdk.CreateTopicRuleCommand({ ruleName: 'other_project', topicRulePayload: { ...foreign, description: 'x [iotctl:another]' } }));
  // In this stage's shape, but without our marker: refused.
  await client.send(new sdk.CreateTopicRuleCommand({ ruleName: DEV.rule('telemetry_to_stream'), topicRulePayload: foreign }));
  const spec = specOf(base);
  assert.equal(await rules.list(), []);
  // The plan itself refuses the rule of the spec's name that another owner holds: nothing is written.
  const err = await planOf(rules, spec, { prune: true }).then(() => undefined, (e: Error) => e);
  assert.match(String(err?.message), /topic rule iotctl_awsrules_default__telemetry_to_stream already exists.*does not manage it/);
  const err2 = await rules.put(spec.rules.find((r) => r.name === 'telemetry_to_stream')!).then(() => undefined, (e: Error) => e);
  assert.match(String(err2?.message), /already exists.*does not manage it/);
  assert.is(await role('telemetry_to_stream'), undefined, 'the refused rule got no role');
  const iam = await aws.get('iam');
  const roles = (await iam.client.send(new iam.sdk.ListRolesCommand({}))).Roles ?? [];
  assert.equal(roles.map((r) => r.RoleName), [], 'no role at all was written');
  // Without the colliding rule in the spec, prune leaves every other rule alone.
  const plan = await planOf(rules, { ...spec, rules: spec.rules.filter((r) => r.name !== 'telemetry_to_stream') }, { prune: true });
  assert.equal(plan.filter((i) => i.action === 'delete'), [], 'prune never deletes rules iotctl does not manage');
  for (const name of ['telemetry_to_stream', DEV.rule('telemetry_to_stream')]) assert.is((await client.send(new sdk.GetTopicRuleCommand({ ruleName: name }))).rule?.description, 'hand-made');
  assert.is(await rules.get('someone_elses'), undefined, 'commands name rules logically: the bare name is not ours');
});

test('two stages and another project, one logical rule name: each rule once per stage, no-op re-apply, each lists and prunes only its own; a foreign rule is never seen', async () => {
  const { client, sdk } = await aws.get('iot');
  const foreign = { sql: "SELECT * FROM 'other/#'", actions: [], description: 'hand-made', awsIotSqlVersion: '2016-03-23' };
  await client.send(new sdk.CreateTopicRuleCommand({ ruleName: 'payments_rule', topicRulePayload: foreign }));
  const spec = specOf(base);
  const other = parseSpec(yaml(base).replace('project: awsrules', 'project: awsrules-other')).spec;
  const deployments = [
    { spec, stage: 'dev' },
    { spec, stage: 'prod' },
    { spec: other, stage: 'dev' },
  ].map((d) => ({ ...d, rules: adapter(d.spec, d.stage) }));
  for (const d of deployments) await applyRulePlan(d.rules, await planOf(d.rules, d.spec, {}, d.stage));
  const onAws = ((await client.send(new sdk.ListTopicRulesCommand({}))).rules ?? []).map((r) => r.ruleName).sort();
  assert.equal(onAws, ['iotctl_awsrules_dev__telemetry_to_stream', 'iotctl_awsrules_other_dev__telemetry_to_stream', 'iotctl_awsrules_prod__telemetry_to_stream', 'payments_rule']);
  for (const d of deployments) {
    assert.equal((await planOf(d.rules, d.spec, { prune: true }, d.stage)).map((i) => i.action), ['noop'], `${d.spec.project}/${d.stage}`);
    const listed = await d.rules.list();
    assert.equal(listed.map((r) => [r.name, r.physicalName]), [['telemetry_to_stream', stageNames({ project: d.spec.project, stage: d.stage }).rule('telemetry_to_stream')]]);
  }
  // Prune in dev: only dev's rule and its role go.
  const [dev, prod, otherDev] = deployments;
  const empty = parseSpec(`project: awsrules\n${declared}`).spec;
  const prune = await planOf(dev!.rules, empty, { prune: true }, 'dev');
  assert.equal(prune.map((i) => [i.action, i.name, i.physical]), [['delete', 'telemetry_to_stream', 'iotctl_awsrules_dev__telemetry_to_stream']]);
  await applyRulePlan(dev!.rules, prune);
  const left = ((await client.send(new sdk.ListTopicRulesCommand({}))).rules ?? []).map((r) => r.ruleName).sort();
  assert.equal(left, ['iotctl_awsrules_other_dev__telemetry_to_stream', 'iotctl_awsrules_prod__telemetry_to_stream', 'payments_rule']);
  assert.is(await role('x', stageNames({ project: 'awsrules', stage: 'dev' }).ruleRole('telemetry_to_stream')), undefined);
  assert.ok(await role('x', stageNames({ project: 'awsrules', stage: 'prod' }).ruleRole('telemetry_to_stream')));
  for (const d of [prod!, otherDev!]) assert.equal((await planOf(d.rules, d.spec, { prune: true }, d.stage)).map((i) => i.action), ['noop']);
});

test('physicalName: names a hand-built rule: refused as not ours, taken over by --adopt (the plan shows the marker), then a no-op', async () => {
  const { client, sdk } = await aws.get('iot');
  await client.send(new sdk.CreateTopicRuleCommand({ ruleName: 'hand_built', topicRulePayload: { sql: "SELECT * FROM 'x'", actions: [], description: 'by hand', awsIotSqlVersion: '2016-03-23' } }));
  const spec = specOf(base.replace('  - name: telemetry_to_stream\n', '  - name: telemetry_to_stream\n    physicalName: hand_built\n'));
  const err = (await rejects(planOf(adapter(spec), spec), /topic rule hand_built already exists/)) as Error & { code?: string; hint?: string };
  assert.is(err.code, 'RESOURCE_NOT_OURS');
  assert.match(String(err.hint), /--adopt/);
  const adopting = adapter(spec, 'default', true);
  const plan = await planOf(adopting, spec);
  assert.equal(plan.map((i) => [i.action, i.physical]), [['replace', 'hand_built']]);
  assert.ok(plan[0]!.changes.some((c) => c.path === 'tags' && JSON.stringify(c.after) === '{"iotctl:project":"awsrules","iotctl:stage":"default"}'), JSON.stringify(plan[0]!.changes));
  await applyRulePlan(adopting, plan);
  const raw = (await client.send(new sdk.GetTopicRuleCommand({ ruleName: 'hand_built' }))).rule!;
  assert.is(raw.description, '[iotctl:project=awsrules stage=default]');
  assert.equal((await planOf(adapter(spec), spec)).map((i) => i.action), ['noop']);
  assert.equal(((await client.send(new sdk.ListTopicRulesCommand({}))).rules ?? []).map((r) => r.ruleName), ['hand_built'], 'no second rule');
});

test('rules an older iotctl wrote under the bare name (its markers, or none and its tagged role) are moved; a hand-made one of a spec name is left alone', async () => {
  const { client, sdk } = await aws.get('iot');
  const iam = await aws.get('iam');
  const account = '123456789012';
  const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'iot.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
  // As the old code wrote them: the bare name, the role `iotctl-rule-<rule>` at `/` (tagged as that version tagged it).
  const legacy = async (name: string, description: string, tags: { Key: string; Value: string }[]) => {
    await iam.client.send(new iam.sdk.CreateRoleCommand({ RoleName: legacyRoleName(name), AssumeRolePolicyDocument: trust, Tags: [...tags, { Key: 'iotctl:rule', Value: name }] }));
    await iam.client.send(new iam.sdk.PutRolePolicyCommand({ RoleName: legacyRoleName(name), PolicyName: 'rule-actions', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iot:Publish'], Resource: ['*'] }] }) }));
    const roleArn = `arn:aws:iam::${account}:role/${legacyRoleName(name)}`;
    const payload = { sql: "SELECT * FROM 'dt/#'", description, awsIotSqlVersion: '2016-03-23', actions: [{ republish: { roleArn, topic: 'out', qos: 0 } }] };
    await client.send(new sdk.CreateTopicRuleCommand({ ruleName: name, topicRulePayload: payload }));
  };
  await legacy('marked', 'moved [iotctl:project=awsrules stage=default]', ownerTagList(ownerOf('awsrules')));
  await legacy('old_marker', 'moved [iotctl:awsrules]', []);
  await legacy('unmarked', 'moved', []);
  // Another stage's legacy rule, and a hand-made rule of a spec name: neither is moved nor deleted.
  await legacy('prods', 'moved [iotctl:project=awsrules stage=prod]', ownerTagList(ownerOf('awsrules', 'prod')));
  await client.send(new sdk.CreateTopicRuleCommand({ ruleName: 'hand_made', topicRulePayload: { sql: "SELECT * FROM 'x'", actions: [], description: 'moved', awsIotSqlVersion: '2016-03-23' } }));
  const rule = (name: string) => `  - name: ${name}\n    description: moved\n    sql: SELECT * FROM 'dt/#'\n    actions:\n      - republish: { topic: out, qos: 0 }\n`;
  const spec = specOf(['marked', 'old_marker', 'unmarked', 'prods', 'hand_made'].map(rule).join(''));
  const notMoved = (await rejects(rules.get('marked'), /still under the name an older iotctl gave it/)) as Error & { code?: string; hint?: string };
  assert.is(notMoved.code, 'RULE_NOT_MOVED');
  assert.match(String(notMoved.hint), /iotctl apply/);

  const plan = await planOf(rules, spec);
  const moved = ['marked', 'old_marker', 'unmarked'];
  assert.equal(
    plan.map((i) => [i.action, i.name, i.physical]),
    [
      ['replace', 'marked', DEV.rule('marked')],
      ['delete', 'marked', 'marked'],
      ['replace', 'old_marker', DEV.rule('old_marker')],
      ['delete', 'old_marker', 'old_marker'],
      ['create', 'prods', DEV.rule('prods')],
      ['replace', 'unmarked', DEV.rule('unmarked')],
      ['delete', 'unmarked', 'unmarked'],
      ['create', 'hand_made', DEV.rule('hand_made')],
    ].sort((a, b) => plan.findIndex((i) => i.name === a[1] && i.action === a[0]) - plan.findIndex((i) => i.name === b[1] && i.action === b[0])),
  );
  for (const i of plan.filter((x) => x.action === 'replace')) assert.equal(i.changes.map((c) => c.path), ['physicalName'], `${i.name}: only the name changes`);
  // A move cut short after its first phase: the old rules are still there beside the new ones; the next plan deletes them.
  await applyRulePlan(rules, plan.filter((i) => i.action !== 'delete'));
  const again = await planOf(rules, spec);
  assert.equal(again.filter((i) => i.action !== 'noop').map((i) => [i.action, i.physical]), moved.map((n) => ['delete', n]));
  await applyRulePlan(rules, again);
  const onAws = ((await client.send(new sdk.ListTopicRulesCommand({}))).rules ?? []).map((r) => r.ruleName).sort();
  assert.equal(onAws, ['hand_made', ...['hand_made', 'marked', 'old_marker', 'prods', 'unmarked'].map(DEV.rule), 'prods'].sort());
  const roles = ((await iam.client.send(new iam.sdk.ListRolesCommand({}))).Roles ?? []).map((r) => r.RoleName).sort();
  assert.ok(roles.includes(legacyRoleName('prods')), 'the other stage keeps its role');
  for (const n of moved) assert.not.ok(roles.includes(legacyRoleName(n)), `the old role of ${n} went with it`);
  assert.equal((await planOf(rules, spec, { prune: true })).map((i) => i.action), ['noop', 'noop', 'noop', 'noop', 'noop']);
});

test('lambda actions: the invoke permission is named after the rule on AWS, and removed with it', async () => {
  const spec = specOf(`
  - name: to_fn
    sql: "SELECT * FROM 'dt/#'"
    actions:
      - lambda: { function: ingest }
`);
  const iam = await aws.get('iam');
  const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
  const r = await iam.client.send(new iam.sdk.CreateRoleCommand({ RoleName: 'fn-role', AssumeRolePolicyDocument: trust }));
  const lambda = await aws.get('lambda');
  const zip = new Uint8Array(Buffer.from('UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==', 'base64'));
  await lambda.client.send(new lambda.sdk.CreateFunctionCommand({ FunctionName: DEV.function('ingest'), Runtime: 'nodejs20.x', Role: r.Role!.Arn!, Handler: 'index.handler', Code: { ZipFile: zip } }));
  await applyRulePlan(rules, await planOf(rules, spec));
  const policy = async () => {
    try {
      return JSON.parse((await lambda.client.send(new lambda.sdk.GetPolicyCommand({ FunctionName: DEV.function('ingest') }))).Policy ?? '{}').Statement ?? [];
    } catch {
      return [];
    }
  };
  const [statement] = await policy();
  assert.is(statement.Sid, 'iotctl_awsrules_default__to_fn');
  assert.match(JSON.stringify(statement.Condition), /rule\/iotctl_awsrules_default__to_fn/);
  assert.equal(await rules.get('to_fn'), spec.rules[0], 'the function reads back by its logical name');
  await applyRulePlan(rules, await planOf(rules, parseSpec(`project: awsrules\n${declared}`).spec, { prune: true }));
  assert.equal(await policy(), []);
});

test('datalake engine: iotAnalytics becomes one firehose action per delivery stream of the channel, and reads back as itself (pure)', () => {
  const streams = (c: string) => [`iotctl-p-ch-${c}`, `iotctl-p-pl-${c}_pipeline`];
  const s: ArnScope = { partition: 'aws', region: 'eu-west-1', account: '123456789012', names: ruleNames(DEV, { streams: ['k'] }), channelStreams: streams };
  const rule: RuleSpec = {
    name: 'to_lake',
    description: 'd',
    sql: "SELECT * FROM 'dt/#'",
    enabled: true,
    actions: [{ kinesis: { stream: 'k', partitionKey: '${topic()}' } }, { iotAnalytics: { channel: 'raw' } }],
    errorAction: { iotAnalytics: { channel: 'errors' } },
  };
  const payload = toPayload(rule, s);
  assert.equal(payload.actions!.map((a) => a.firehose?.deliveryStreamName ?? 'kinesis'), ['kinesis', 'iotctl-p-ch-raw', 'iotctl-p-pl-raw_pipeline']);
  assert.is(payload.actions![1]!.firehose!.separator, '\n');
  assert.is(payload.errorAction!.firehose!.deliveryStreamName, 'iotctl-p-ch-errors');
  assert.equal(fromAws('to_lake', { ...payload, ruleName: 'to_lake' }, s, ['raw', 'errors']), rule);
  const policy = managedRolePolicy(rule, s)!;
  const firehose = policy.Statement.find((st) => st.Action.includes('firehose:PutRecord'))!;
  assert.equal(firehose.Resource, ['arn:aws:firehose:eu-west-1:123456789012:deliverystream/iotctl-p-ch-errors', 'arn:aws:firehose:eu-west-1:123456789012:deliverystream/iotctl-p-ch-raw', 'arn:aws:firehose:eu-west-1:123456789012:deliverystream/iotctl-p-pl-raw_pipeline']);
  assert.not.ok(policy.Statement.some((st) => st.Action.some((a) => a.startsWith('iotanalytics:'))), 'no IoT Analytics permission on the datalake engine');
});

test.run();
