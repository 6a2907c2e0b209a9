import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { startFakeInvoke, type FakeInvoke } from '../helpers/fake-lambda-invoke.js';
import { freshDatabase, type TestDatabase } from '../helpers/pg.js';
import { cli, makeProject, type Project } from '../helpers/project.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Context } from '../../src/context.js';
import { openTarget } from '../../src/targets/index.js';
import type { Target } from '../../src/ports.js';
import { databaseOpsNames } from '../../src/targets/aws/naming.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { functionPages } from '../../src/db/lambda-pages.js';
import { chooseVia } from '../../src/db/via.js';
import { ROLE_NAMES } from '../../src/db/roles.js';

/**
 * The database operated in the account, against moto_server: apply's database section creates the role secrets,
 * the maintenance and query functions (in the ingest function's VPC, least-privilege roles), the schedule with
 * its dead-letter queue and role; a second plan is all no-ops. The database is out of this machine's reach
 * (port 1), so migrate, queries and retention go through the functions: Invoke is served by fake-lambda-invoke,
 * which runs the real handlers against the real PostgreSQL (the "VPC" reaches it on 5432).
 */

let moto: Moto;
let fake: FakeInvoke;
let db: TestDatabase;
let project: Project;
let restore: () => void;
let target: Target;
let aws: AwsClients;
const NAMES = databaseOpsNames({ project: 'dbops', stage: 'default' });

test.before(async () => {
  // Through the realism proxy (no latency, no checks but for the test that sets them), to see when calls overlap.
  moto = await startMoto({ realism: { latencyMs: 0, conformance: false } });
  fake = await startFakeInvoke(moto.url, { network: { DATABASE_PORT: '5432' } });
  db = await freshDatabase();
  const unreachable = new URL(db.url);
  unreachable.port = '1';
  unreachable.searchParams.set('sslmode', 'disable');
  project = makeProject(`project: dbops
target: aws
database:
  url: ${unreachable.toString()}
  retention: 24h
  retentionSchedule: rate(30 minutes)
functions:
  - name: ingest
    template: ingest-rds
    vpc: { subnetIds: [subnet-0b2], securityGroupIds: [sg-01] }
`);
  restore = useEnv({ ...moto.env, AWS_ENDPOINT_URL: fake.url, LOG_LEVEL: '' });
  target = await openTarget(new Context({ specFile: project.specFile, projectDir: project.dir, stateDir: project.stateDir }));
  aws = new AwsClients({});
});

test.after(async () => {
  await target?.close();
  aws?.destroy();
  restore?.();
  await fake?.close();
  await moto?.stop();
  await db?.drop();
  project?.cleanup();
});

test('apply creates the secrets, functions, schedule, queue and role, migrates through the function; applying again changes nothing', async () => {
  const ops = target.databaseOps!;
  const first = await ops.plan();
  const creates = first.filter((i) => i.action === 'create').map((i) => `${i.kind}:${i.name}`).sort();
  assert.equal(creates, ['database schema:schema', 'database secret:database-reader', 'database secret:database-writer', 'function:db-maintenance', 'function:db-query', 'queue:db-maintenance-dlq', 'role:db-maintenance-scheduler', 'schedule:db-maintenance']);
  await ops.apply(first);
  assert.ok(fake.invocations.some((i) => i.fn === NAMES.maintenanceFunction && (i.event as { migrate?: boolean }).migrate === true), 'migrated through the maintenance function');
  // The schema exists and the roles got their secrets' passwords (as the function set them, in the "VPC").
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    const { rows } = await admin.query("SELECT to_regclass('iot_messages')::text AS t");
    assert.is(rows[0].t, 'iot_messages');
    const { rows: logins } = await admin.query('SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1) ORDER BY 1', [[ROLE_NAMES.reader, ROLE_NAMES.writer]]);
    assert.equal(logins.map((r) => r.rolcanlogin), [true, true]);
  } finally {
    await admin.end();
  }
  const second = await ops.plan();
  assert.equal(second.filter((i) => i.action !== 'noop').map((i) => `${i.action} ${i.kind}:${i.name}`), []);
});

test('a plan reads its parts at once: secrets, queue, functions, role and schedule overlap instead of one after another', async () => {
  const realism = moto.realism!;
  realism.set({ latencyMs: 60 });
  try {
    const before = realism.calls().length;
    const plan = await target.databaseOps!.plan();
    assert.equal(plan.filter((i) => i.action !== 'noop').map((i) => `${i.action} ${i.kind}:${i.name}`), []);
    const calls = realism.calls().slice(before).filter((c) => c.start !== undefined && c.ms !== undefined);
    // The most calls in flight at one moment (one after another: 1).
    const inFlight = Math.max(...calls.map((c) => calls.filter((o) => o.start! <= c.start! && c.start! < o.start! + o.ms!).length));
    assert.ok(inFlight >= 5, `at most ${inFlight} call(s) in flight: ${calls.map((c) => c.key).join(', ')}`);
  } finally {
    realism.set({ latencyMs: 0 });
  }
});

test('the functions run in the ingest VPC with least-privilege roles; the schedule invokes the maintenance function with a dead-letter queue', async () => {
  const lambda = await aws.get('lambda');
  const m = await lambda.client.send(new lambda.sdk.GetFunctionCommand({ FunctionName: NAMES.maintenanceFunction }));
  assert.equal(m.Configuration!.VpcConfig!.SubnetIds, ['subnet-0b2']);
  assert.is(m.Tags!['iotctl:database'], 'maintenance');
  assert.is(m.Tags!['iotctl:project'], 'dbops');
  const env = m.Configuration!.Environment!.Variables!;
  assert.ok(env.WRITER_SECRET_ARN && env.READER_SECRET_ARN && env.DATABASE_SECRET_ARN, JSON.stringify(env));
  assert.is(env.RETENTION, '24h');
  const q = await lambda.client.send(new lambda.sdk.GetFunctionCommand({ FunctionName: NAMES.queryFunction }));
  const qenv = q.Configuration!.Environment!.Variables!;
  assert.is(qenv.DATABASE_SECRET_ARN, env.READER_SECRET_ARN, 'the query function signs in as the reader');
  // The ingest function (template role: writer) gets the writer's secret, not the admin's.
  const ingestEnv = await (target.database as unknown as { functionEnvironment(role: string): Promise<Record<string, string>> }).functionEnvironment('writer');
  assert.equal(ingestEnv, { DATABASE_SECRET_ARN: env.WRITER_SECRET_ARN });

  const iam = await aws.get('iam');
  const policyOf = async (roleArn: string) => {
    const RoleName = roleArn.slice(roleArn.lastIndexOf('/') + 1);
    const out = await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName, PolicyName: 'iotctl-function' }));
    return JSON.parse(decodeURIComponent(out.PolicyDocument!)) as { Statement: Array<{ Sid: string; Action: string[]; Resource: string | string[] }> };
  };
  const mp = await policyOf(m.Configuration!.Role!);
  assert.ok(mp.Statement.some((s) => s.Sid === 'VpcNetworkInterfaces'), 'ENI permissions with a VPC');
  const secrets = mp.Statement.find((s) => s.Sid === 'DatabaseSecret')!;
  assert.equal([secrets.Resource].flat().sort(), [env.DATABASE_SECRET_ARN, env.READER_SECRET_ARN, env.WRITER_SECRET_ARN].sort());
  const qp = await policyOf(q.Configuration!.Role!);
  assert.equal(qp.Statement.find((s) => s.Sid === 'DatabaseSecret')!.Resource, qenv.DATABASE_SECRET_ARN, 'the query role reads only the reader secret');
  // Logs, its one secret and the VPC's network interfaces: nothing else.
  assert.equal(qp.Statement.map((s) => s.Sid).sort(), ['DatabaseSecret', 'LogEvents', 'LogGroup', 'VpcCreateNetworkInterface', 'VpcDescribe', 'VpcNetworkInterfaces']);

  const scheduler = await aws.get('scheduler');
  const s = await scheduler.client.send(new scheduler.sdk.GetScheduleCommand({ Name: NAMES.schedule }));
  assert.is(s.ScheduleExpression, 'rate(30 minutes)');
  assert.is(s.Target!.Arn, m.Configuration!.FunctionArn);
  assert.match(s.Target!.DeadLetterConfig!.Arn!, new RegExp(`:${NAMES.deadLetterQueue}$`));
  assert.match(s.Description!, /\[iotctl:project=dbops stage=default\]$/);
  const role = await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName: NAMES.scheduleRole, PolicyName: 'iotctl' }));
  const doc = JSON.parse(decodeURIComponent(role.PolicyDocument!)) as { Statement: Array<{ Action: string[]; Resource: string }> };
  assert.equal(doc.Statement.map((x) => [x.Action, x.Resource]), [[['lambda:InvokeFunction'], m.Configuration!.FunctionArn], [['sqs:SendMessage'], s.Target!.DeadLetterConfig!.Arn]]);
});

test('the functions section neither lists nor prunes the database functions', async () => {
  const listed = await target.functions.list({ desired: ['ingest'] });
  assert.equal(listed.map((f) => f.name), []);
});

test('--via auto picks lambda when the database does not answer; query recent pages through the function, every row exactly once', async () => {
  const chosen = await chooseVia(target, 'auto', 'reader');
  assert.is(chosen.via, 'lambda');
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  try {
    await admin.query(
      `INSERT INTO iot_messages (message_id, device_id, ts, topic, payload, received_at)
       SELECT 'm' || i, 'dev-1', now() - (i || ' seconds')::interval, 'dt/dev-1', jsonb_build_object('i', i, 'pad', repeat('x', 200)), now()
       FROM generate_series(1, 700) AS i`,
    );
  } finally {
    await admin.end();
  }
  const ids: string[] = [];
  let pages = 0;
  for await (const page of functionPages(target.databaseOps!, { query: 'recent', deviceId: 'dev-1', limit: 1000, pageBytes: 40_000 })) {
    pages++;
    assert.ok(page.bytes <= 40_000);
    for (const r of page.rows) ids.push(String(r.message_id));
  }
  assert.ok(pages > 3, `${pages} pages`);
  assert.is(ids.length, 700);
  assert.is(new Set(ids).size, 700);
});

test('query sql through the function is read-only as the reader role: a DELETE fails with a permission error', async () => {
  try {
    await target.databaseOps!.invokeQuery({ query: 'sql', sql: 'DELETE FROM iot_messages' });
    assert.unreachable('the DELETE ran');
  } catch (error) {
    assert.match((error as Error).message, /permission denied/i);
  }
  const page = await target.databaseOps!.invokeQuery({ query: 'sql', sql: 'SELECT count(*)::int AS n FROM iot_messages' });
  assert.equal(page.rows, [{ n: 700 }]);
});

test('retention --dry-run through the maintenance function returns the plan; status shows the last run, and a failing run', async () => {
  const plan = await target.databaseOps!.invokeMaintenance({ dryRun: true });
  assert.is(plan.dryRun, true);
  assert.ok(Array.isArray(plan.created));
  let status = await target.databaseOps!.maintenanceStatus();
  assert.ok(status.lastRun, 'a last run from the function log');
  assert.is(status.lastRun!.ok, true);
  assert.match(status.lastRun!.summary, /dry run/);
  assert.is(status.deadLetters, 0);
  assert.is(status.failing, false);

  await target.databaseOps!.invokeMaintenance({ dryRun: 'yes' }).then(
    () => assert.unreachable('a bad event succeeded'),
    (e: Error) => assert.match(e.message, /dryRun/),
  );
  // Log events of one millisecond sort by arrival; the failing run is logged after the dry run.
  await new Promise((r) => setTimeout(r, 5));
  status = await target.databaseOps!.maintenanceStatus();
  assert.is(status.lastRun!.ok, false);
  assert.match(status.lastRun!.summary, /failed: "dryRun" must be true or false/);
  assert.is(status.failing, true);
});

// ---- the commands (dist/: npm run build first), with Invoke served by the fake in this process ----

const run = (args: string[]) => cli([...args, '--target', 'aws'], { cwd: project.dir, env: { ...moto.env, AWS_ENDPOINT_URL: fake.url, LOG_LEVEL: 'silent' }, timeoutMs: 60_000 });

test('query sql --via auto: says it goes through the function; --format csv --out writes every page', async () => {
  const out = join(project.dir, 'rows.csv');
  const r = await run(['query', 'sql', "SELECT message_id, payload->>'i' AS i FROM iot_messages ORDER BY ts, message_id", '--format', 'csv', '--out', out]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /does not answer from here within 2 s: going through the function in its VPC \(--via lambda\)/);
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  assert.is(lines[0], 'message_id,i');
  assert.is(lines.length, 701);
  assert.is(new Set(lines.slice(1)).size, 700);
});

test('query recent --via lambda --json: the newest messages of the device, newest first', async () => {
  const r = await run(['query', 'recent', '--device', 'dev-1', '--limit', '5', '--via', 'lambda', '--json']);
  assert.is(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{ message_id: string }>;
  assert.equal(rows.map((m) => m.message_id), ['m1', 'm2', 'm3', 'm4', 'm5']);
});

test('db retention --via lambda --dry-run prints the plan; db migrate --via lambda; status shows the maintenance run', async () => {
  const r = await run(['db', 'retention', '--via', 'lambda', '--dry-run', '--json']);
  assert.is(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout) as { dryRun: boolean; keep: string; created: string[] };
  assert.is(plan.dryRun, true);
  assert.is(plan.keep, '24h');
  const m = await run(['db', 'migrate', '--via', 'lambda', '--json']);
  assert.is(m.code, 0, m.stderr);
  assert.equal((JSON.parse(m.stdout) as { applied: unknown[] }).applied, []);
  const s = await run(['status', '--json']);
  const status = JSON.parse(s.stdout) as { maintenance?: { lastRun: { ok: boolean; action: string } } };
  assert.is(status.maintenance?.lastRun.ok, true, s.stdout.slice(0, 2000) + s.stderr);
  assert.is(status.maintenance?.lastRun.action, 'migrate');
});

test('--via lambda on the local target is refused with a way out', async () => {
  const r = await cli(['query', 'sql', 'SELECT 1', '--via', 'lambda', '--target', 'local'], { cwd: project.dir, env: { DATABASE_URL: db.url } });
  assert.is(r.code, 1);
  assert.match(r.stderr, /--via lambda needs the aws target/);
});

test.run();
