// AwsRules and AwsRuleErrors against moto_server: round trip equal (a no-op plan), replace on change,
// one least-privilege role per rule kept in step and deleted with the rule, error payloads newest first.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { ruleRoleName as managedRoleName } from '../../src/targets/aws/naming.js';
import { AwsRules, fromAws, managedRolePolicy, toPayload, type ArnScope } from '../../src/targets/aws/rules.js';
import { AwsRuleErrors } from '../../src/targets/aws/rule-errors.js';
import { parseSpec } from '../../src/spec/loader.js';
import { applyRulePlan, planRules } from '../../src/services/rules.js';
import type { RuleSpec } from '../../src/spec/schema.js';

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
      cloudwatchLogs: { logGroup: /iotctl/awsrules/rule-errors }
`;

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let rules: AwsRules;

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
  rules = new AwsRules(aws);
});

async function role(ruleName: string) {
  const { client, sdk } = await aws.get('iam');
  try {
    const r = await client.send(new sdk.GetRoleCommand({ RoleName: managedRoleName(ruleName) }));
    const p = await client.send(new sdk.GetRolePolicyCommand({ RoleName: managedRoleName(ruleName), PolicyName: 'rule-actions' }));
    const doc = (s: string | undefined) => JSON.parse(decodeURIComponent(s ?? '{}'));
    return { trust: doc(r.Role?.AssumeRolePolicyDocument), policy: doc(p.PolicyDocument) };
  } catch (e) {
    if (/^NoSuchEntity/.test((e as { awsCode?: string }).awsCode ?? '')) return undefined;
    throw e;
  }
}

test('every action kind maps to AWS and back to the same spec (pure)', () => {
  const s: ArnScope = { partition: 'aws', region: 'eu-west-1', account: '111122223333' };
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
      cloudwatchLogs: { logGroup: errs }
`).rules[0]!;
  const payload = toPayload(rule, s);
  assert.is(payload.awsIotSqlVersion, '2016-03-23');
  assert.is(payload.ruleDisabled, true);
  assert.equal(payload.actions![0], { kinesis: { roleArn: 'arn:aws:iam::111122223333:role/iotctl-rule-all_kinds', streamName: 'k', partitionKey: '${topic(2)}' } });
  assert.equal(payload.actions![5], { lambda: { functionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:ingest' } });
  assert.equal(fromAws(rule.name, { ...payload, ruleName: rule.name }, s), rule);

  const policy = managedRolePolicy(rule, s)!;
  const resources = policy.Statement.flatMap((st) => st.Resource).sort();
  assert.equal(resources, [
    'arn:aws:firehose:eu-west-1:111122223333:deliverystream/fh',
    'arn:aws:iot:eu-west-1:111122223333:topic/out/x',
    'arn:aws:iotanalytics:eu-west-1:111122223333:channel/ch',
    'arn:aws:kinesis:eu-west-1:111122223333:stream/k',
    'arn:aws:logs:eu-west-1:111122223333:log-group:errs:*',
  ]);
  assert.not.ok(JSON.stringify(policy).includes('s3:'), 'the s3 action has its own role');
  assert.ok(managedRoleName('x'.repeat(128)).length <= 64);
  assert.is(managedRolePolicy({ ...rule, actions: [{ lambda: { function: 'f' } }], errorAction: undefined }, s), undefined, 'lambda needs no role');
});

test('create: read back equal (plan is a no-op), SQL version 2016-03-23, a least-privilege role', async () => {
  const spec = specOf(base);
  const plan = await planRules(rules, spec);
  assert.equal(plan.map((i) => i.action), ['create']);
  await applyRulePlan(rules, plan);

  assert.equal(await rules.get('telemetry_to_stream'), spec.rules[0]);
  assert.equal((await planRules(rules, spec)).map((i) => i.action), ['noop']);

  const { client, sdk } = await aws.get('iot');
  const raw = await client.send(new sdk.GetTopicRuleCommand({ ruleName: 'telemetry_to_stream' }));
  assert.is(raw.rule?.awsIotSqlVersion, '2016-03-23');
  assert.is(raw.rule?.actions?.[1]?.republish?.roleArn, ROLE, 'the given role is used as is');

  const r = await role('telemetry_to_stream');
  assert.ok(r, 'the managed role exists');
  assert.is(r!.trust.Statement[0].Principal.Service, 'iot.amazonaws.com');
  assert.equal(r!.policy.Statement, [
    { Effect: 'Allow', Action: ['kinesis:PutRecord'], Resource: ['arn:aws:kinesis:us-east-1:123456789012:stream/telemetry'] },
    { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'], Resource: ['arn:aws:logs:us-east-1:123456789012:log-group:/iotctl/awsrules/rule-errors:*'] },
  ]);
  assert.is(await rules.get('missing'), undefined);
});

test('a change replaces the rule and keeps its role in step; a rule with only given roles has no managed role', async () => {
  await applyRulePlan(rules, await planRules(rules, specOf(base)));
  const changed = specOf(base.replace('stream: telemetry', 'stream: telemetry2').replace('SELECT *,', 'SELECT temperature,'));
  const plan = await planRules(rules, changed);
  assert.equal(plan.map((i) => i.action), ['replace']);
  assert.ok(plan[0]!.changes.some((c) => c.path === 'sql'));
  await applyRulePlan(rules, plan);
  assert.equal(await rules.get('telemetry_to_stream'), changed.rules[0]);
  assert.equal((await role('telemetry_to_stream'))!.policy.Statement[0].Resource, ['arn:aws:kinesis:us-east-1:123456789012:stream/telemetry2']);

  const allGiven = specOf(base.replace('stream: telemetry', `stream: telemetry, roleArn: ${ROLE}`).replace('rule-errors', `rule-errors, roleArn: ${ROLE}`));
  await applyRulePlan(rules, await planRules(rules, allGiven));
  assert.equal(await rules.get('telemetry_to_stream'), allGiven.rules[0]);
  assert.is(await role('telemetry_to_stream'), undefined, 'the managed role went away with its last user');
});

test('delete (prune) removes the rule and its role', async () => {
  await applyRulePlan(rules, await planRules(rules, specOf(base)));
  const plan = await planRules(rules, parseSpec(`project: awsrules\n${declared}`).spec, { prune: true });
  assert.equal(plan.map((i) => `${i.action} ${i.name}`), ['delete telemetry_to_stream']);
  await applyRulePlan(rules, plan);
  assert.equal(await rules.list(), []);
  assert.is(await role('telemetry_to_stream'), undefined);
});

test('rule errors: read from the errorAction log group, newest first, by rule, with a limit', async () => {
  const spec = specOf(base + base.replace('telemetry_to_stream', 'second_rule'));
  await applyRulePlan(rules, await planRules(rules, spec));
  const group = '/iotctl/awsrules/rule-errors';
  const { client, sdk } = await aws.get('logs');
  await client.send(new sdk.CreateLogGroupCommand({ logGroupName: group }));
  await client.send(new sdk.CreateLogStreamCommand({ logGroupName: group, logStreamName: 's1' }));
  const now = Date.now();
  const payload = (ruleName: string, i: number): RuleSpec | object => ({
    ruleName,
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
  const errors = new AwsRuleErrors(aws, rules);
  const all = await errors.list({});
  assert.equal(all.map((e) => e.messageId), ['trace-telemetry_to_stream-3', 'trace-second_rule-2', 'trace-telemetry_to_stream-1']);
  assert.is(all[0]!.at, new Date(now - 500).toISOString());
  assert.is((all[0]!.error as { failures: unknown[] }).failures.length, 1);
  assert.equal((await errors.list({ rule: 'telemetry_to_stream' })).map((e) => e.messageId), ['trace-telemetry_to_stream-3', 'trace-telemetry_to_stream-1']);
  assert.equal((await errors.list({ limit: 1 })).map((e) => e.messageId), ['trace-telemetry_to_stream-3']);
  assert.equal(await errors.list({ rule: 'missing' }), []);
});


test("list and prune see only this project's rules; an unmanaged rule of the same name is refused, not overwritten", async () => {
  const { client, sdk } = await aws.get('iot');
  const foreign = { sql: "SELECT * FROM 'other/#'", actions: [], description: 'hand-made', awsIotSqlVersion: '2016-03-23' };
  await client.send(new sdk.CreateTopicRuleCommand({ ruleName: 'someone_elses', topicRulePayload: foreign }));
  await client.send(new sdk.CreateTopicRuleCommand({ ruleName: 'telemetry_to_stream', topicRulePayload: foreign }));
  await client.send(new sdk.CreateTopicRuleCommand({ ruleName: 'other_project', topicRulePayload: { ...foreign, description: 'x [iotctl:another]' } }));
  const spec = specOf(base);
  assert.equal(await rules.list(), []);
  // The plan itself refuses the rule of the spec's name that another owner holds: nothing is written.
  const err = await planRules(rules, spec, { prune: true }).then(() => undefined, (e: Error) => e);
  assert.match(String(err?.message), /topic rule telemetry_to_stream already exists.*does not manage it/);
  const err2 = await rules.put(spec.rules.find((r) => r.name === 'telemetry_to_stream')!).then(() => undefined, (e: Error) => e);
  assert.match(String(err2?.message), /already exists.*does not manage it/);
  const iam = await aws.get('iam');
  const role = await iam.client.send(new iam.sdk.GetRoleCommand({ RoleName: 'iotctl-rule-telemetry_to_stream' })).then(() => true, () => false);
  assert.not.ok(role, 'the refused rule got no role');
  // Without the colliding rule in the spec, prune leaves every other rule alone.
  const plan = await planRules(rules, { ...spec, rules: spec.rules.filter((r) => r.name !== 'telemetry_to_stream') }, { prune: true });
  assert.equal(plan.filter((i) => i.action === 'delete'), [], 'prune never deletes rules iotctl does not manage');
  const kept = await client.send(new sdk.GetTopicRuleCommand({ ruleName: 'telemetry_to_stream' }));
  assert.is(kept.rule?.description, 'hand-made');
  assert.ok(await rules.get('someone_elses'), 'show still reads any rule');
});

test('datalake engine: iotAnalytics becomes one firehose action per delivery stream of the channel, and reads back as itself (pure)', () => {
  const streams = (c: string) => [`iotctl-p-ch-${c}`, `iotctl-p-pl-${c}_pipeline`];
  const s: ArnScope = { partition: 'aws', region: 'eu-west-1', account: '123456789012', channelStreams: streams };
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
