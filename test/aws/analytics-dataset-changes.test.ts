import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { PlanItem } from '../../src/iot/plan/index.js';
import { specSchema, type SpecInput } from '../../src/spec/schema.js';
import { applyDatalake, datalakeContext, planDatalake } from '../../src/targets/aws/analytics/datalake.js';
import type { DatalakeContext } from '../../src/targets/aws/analytics/model.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { FakeAthenaNamedQueries } from '../helpers/fake-athena-named-queries.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';

// A dataset's SQL changes and its prune on the datalake engine: the named query on a stateful fake (moto has
// no UpdateNamedQuery or DeleteNamedQuery), the schedule, its role and the bucket's lifecycle on moto_server.

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let fake: FakeAthenaNamedQueries;
let ctx: DatalakeContext;

const base: NonNullable<SpecInput['analytics']> = {
  datastores: [{ name: 'telemetry' }],
  datasets: [
    { name: 'hourly', sql: 'SELECT count(*) AS n FROM telemetry', schedule: 'rate(1 hour)', deltaTime: { offsetSeconds: 0, timeExpression: '__received_at' }, versionsToKeep: 48 },
    { name: 'adhoc', sql: 'SELECT 1' },
  ],
};
const specOf = (a: NonNullable<SpecInput['analytics']>) => specSchema.parse({ project: 'chg', target: 'aws', analytics: a });
const changed = (items: PlanItem[]) => items.filter((i) => i.action !== 'noop').map((i) => `${i.action} ${i.kind} ${i.name}`);
async function converge(a: NonNullable<SpecInput['analytics']>, prune = false): Promise<string[]> {
  const spec = specOf(a);
  const plan = await planDatalake(aws, spec, { prune, context: ctx });
  await applyDatalake(aws, spec, plan, { context: ctx });
  assert.equal(changed(await planDatalake(aws, spec, { prune, context: ctx })), [], 'applying again changes nothing');
  return changed(plan);
}
async function scheduleInput(name: string): Promise<{ QueryString: string } | undefined> {
  const { client, sdk } = await aws.get('scheduler');
  const s = await client.send(new sdk.GetScheduleCommand({ Name: name })).catch(() => undefined);
  return s ? JSON.parse(s.Target!.Input!) : undefined;
}

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({ endpointUrl: moto.url });
  fake = new FakeAthenaNamedQueries().install();
  ctx = await datalakeContext(aws, specOf(base));
  // Someone else's query in the same workgroup: never updated or pruned.
  const { client, sdk } = await aws.get('athena');
  await client.send(new sdk.CreateNamedQueryCommand({ Name: 'finance-report', Database: 'finance', QueryString: 'SELECT 2' }));
  await converge(base);
});
test.after(async () => {
  fake.restore();
  aws.destroy();
  restore();
  await moto.stop();
});

test("a dataset's SQL change updates its named query and its schedule in place (same id), windowed", async () => {
  const id = fake.byName('iotctl-chg-default--hourly')!.NamedQueryId;
  const sql = 'SELECT device, count(*) AS n FROM telemetry GROUP BY device';
  const a = { ...base, datasets: [{ ...base.datasets![0]!, sql }, base.datasets![1]!] };
  assert.equal(await converge(a), ['replace query hourly', 'replace schedule hourly']);
  const query = fake.byName('iotctl-chg-default--hourly')!;
  assert.is(query.NamedQueryId, id, 'UpdateNamedQuery, not a new query');
  assert.match(query.QueryString, /^WITH "telemetry" AS \(.*\)\nSELECT device, count\(\*\) AS n FROM telemetry GROUP BY device$/);
  assert.is((await scheduleInput('iotctl-chg-default--hourly'))!.QueryString, query.QueryString, 'the schedule runs the same SQL');
});

test('a new period changes the window of both; versionsToKeep the lifecycle days', async () => {
  const a = { ...base, datasets: [{ ...base.datasets![0]!, schedule: 'rate(2 hours)', versionsToKeep: 36 }, base.datasets![1]!] };
  assert.equal(await converge(a), ['replace bucket lake', 'replace query hourly', 'replace schedule hourly']);
  assert.match(fake.byName('iotctl-chg-default--hourly')!.QueryString, /date_add\('second', -7200, current_timestamp\)/);
  const { client, sdk } = await aws.get('s3');
  const rules = (await client.send(new sdk.GetBucketLifecycleConfigurationCommand({ Bucket: 'iotctl-chg-default--lake-123456789012-us-east-1' }))).Rules!;
  assert.equal(rules.map((r) => [r.ID, r.Expiration?.Days]), [['iotctl-dataset-hourly', 3]]);
});

test('prune deletes a dropped dataset: schedule, its role, named query and lifecycle rule; never another query', async () => {
  const a = { ...base, datasets: [base.datasets![1]!] };
  assert.equal(await converge(a, true), [
    'replace bucket lake',
    'delete schedule hourly',
    'delete query hourly',
    'delete role hourly-scheduler',
  ]);
  assert.is(fake.byName('iotctl-chg-default--hourly'), undefined);
  assert.ok(fake.byName('iotctl-chg-default--adhoc'));
  assert.ok(fake.byName('finance-report'), "another team's query stays");
  assert.is(await scheduleInput('iotctl-chg-default--hourly'), undefined);
  const { client, sdk } = await aws.get('s3');
  const lifecycle = await client.send(new sdk.GetBucketLifecycleConfigurationCommand({ Bucket: 'iotctl-chg-default--lake-123456789012-us-east-1' })).catch((e) => e);
  assert.is(lifecycle.awsCode, 'NoSuchLifecycleConfiguration', `the last iotctl rule gone, the configuration is deleted: ${JSON.stringify(lifecycle.Rules ?? lifecycle.message)}`);
});

test("an older iotctl's named query and schedule (no owner marker, project-scoped names) are moved to the stage's names when the spec declares them, never touched when it does not", async () => {
  const athena = await aws.get('athena');
  const scheduler = await aws.get('scheduler');
  for (const name of ['iotctl-chg-old', 'iotctl-chg-gone']) {
    await athena.client.send(new athena.sdk.CreateNamedQueryCommand({ Name: name, Database: 'chg', QueryString: 'SELECT 1', Description: 'iotctl analytics dataset' }));
    await scheduler.client.send(
      new scheduler.sdk.CreateScheduleCommand({
        Name: name,
        ScheduleExpression: 'rate(1 day)',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: { Arn: 'arn:aws:scheduler:::aws-sdk:athena:startQueryExecution', RoleArn: `arn:aws:iam::123456789012:role/iotctl/chg/${name}-scheduler`, Input: '{}' },
      }),
    );
  }
  const a = { ...base, datasets: [base.datasets![1]!, { name: 'old', sql: 'SELECT 1', schedule: 'rate(1 day)' }] };
  const spec = specOf(a);
  const plan = await planDatalake(aws, spec, { prune: true, context: ctx });
  const query = plan.find((i) => i.kind === 'query' && i.name === 'old' && i.action !== 'delete')!;
  assert.is(query.action, 'replace');
  assert.equal(query.changes[0], { path: 'physicalName', before: 'iotctl-chg-old', after: 'iotctl-chg-default--old' });
  assert.ok(plan.some((i) => i.action === 'delete' && i.kind === 'query' && i.physical === 'iotctl-chg-old'), 'the old query is deleted');
  assert.ok(plan.some((i) => i.action === 'delete' && i.kind === 'schedule' && i.physical === 'iotctl-chg-old'), 'the old schedule is deleted');
  assert.not.ok(plan.some((i) => i.physical === 'iotctl-chg-gone' || i.name === 'gone'), 'not declared: neither moved nor pruned');
  await converge(a, true);
  assert.match(fake.byName('iotctl-chg-default--old')!.Description!, / \[iotctl:project=chg stage=default\]$/);
  assert.is(fake.byName('iotctl-chg-old'), undefined);
  const schedule = await scheduler.client.send(new scheduler.sdk.GetScheduleCommand({ Name: 'iotctl-chg-default--old' }));
  assert.match(schedule.Description!, /\[iotctl:project=chg stage=default\]$/);
  assert.is(await scheduleInput('iotctl-chg-old'), undefined);
  assert.ok(fake.byName('iotctl-chg-gone'));
  assert.ok(await scheduler.client.send(new scheduler.sdk.GetScheduleCommand({ Name: 'iotctl-chg-gone' })));
});

test.run();
