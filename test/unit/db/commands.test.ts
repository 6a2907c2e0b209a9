import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import DbMigrate from '../../../src/commands/db/migrate.js';
import DbRetention from '../../../src/commands/db/retention.js';
import QueryRecent from '../../../src/commands/query/recent.js';
import QuerySql from '../../../src/commands/query/sql.js';
import { writeMessages } from '../../../src/db/batch-writer.js';
import { MIGRATIONS } from '../../../src/db/migrations.js';
import { freshDatabase, MACHINE_URL, withPg, type TestDatabase } from './helpers.js';

const root = resolve(import.meta.dirname, '../../..');
const projectDir = mkdtempSync(join(tmpdir(), 'iotctl-cmd-'));
let db: TestDatabase;

test.before(async () => {
  db = await freshDatabase(MACHINE_URL);
});
test.after(async () => {
  await db.drop();
  rmSync(projectDir, { recursive: true, force: true });
});

/** Runs a command in-process as the CLI would (stdout piped), capturing its output and exit code. */
async function run(command: { run(argv: string[], opts: string): Promise<unknown> }, argv: string[], env: Record<string, string | undefined> = { DATABASE_URL: db.url }) {
  const saved = { out: process.stdout.write, err: process.stderr.write, env: { ...process.env }, cwd: process.cwd() };
  let stdout = '';
  let stderr = '';
  process.stdout.write = ((chunk: string) => ((stdout += chunk), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => ((stderr += chunk), true)) as typeof process.stderr.write;
  for (const key of ['DATABASE_URL', 'PGHOST', 'PGDATABASE', 'PGUSER', 'PGPORT', 'PGPASSWORD']) delete process.env[key];
  Object.assign(process.env, env);
  process.exitCode = undefined;
  process.chdir(projectDir);
  try {
    await command.run([...argv, '--state-dir', join(projectDir, '.iotctl')], root);
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    process.env = saved.env;
    process.chdir(saved.cwd);
  }
  const exitCode = process.exitCode ?? 0;
  process.exitCode = undefined;
  return { stdout, stderr, exitCode };
}

test('db migrate: applies, then reports up to date; --json gives the result', async () => {
  const first = await run(DbMigrate, []);
  assert.is(first.exitCode, 0, first.stderr);
  assert.match(first.stdout, new RegExp(`applied ${MIGRATIONS.length} migrations, now at version ${MIGRATIONS.length}\\.`));
  const json = await run(DbMigrate, ['--json']);
  const result = JSON.parse(json.stdout);
  const n = MIGRATIONS.length;
  assert.equal([result.applied, result.version, result.latest, result.source], [[], n, n, 'DATABASE_URL']);
  // The superuser of the machine's server may create roles: both are granted, nothing is missing.
  assert.equal([result.roles.granted.sort(), result.roles.missing], [['iotctl_reader', 'iotctl_writer'], []]);
});

test('query recent: TSV when piped, CSV, JSON; bad flags are user errors', async () => {
  const base = Date.parse('2026-03-10T11:00:00Z');
  await withPg(db.url, (c) =>
    writeMessages(
      c,
      [0, 1, 2].map((i) => ({ message_id: `m-${i}`, device_id: 'cli-dev', ts: new Date(base - i * 1000), topic: 'dt/a/cli-dev/t', payload: { temp: 20 + i, note: 'a\tb' }, stream: 's', shard_id: 'sh', sequence_number: `${i}`, received_at: new Date(base) })),
      { now: new Date(base) },
    ),
  );
  // jsonb stores keys shortest first; a tab inside a JSON string is already escaped, so TSV stays one line per row.
  const tsv = await run(QueryRecent, ['--device', 'cli-dev', '--limit', '2']);
  assert.is(tsv.exitCode, 0, tsv.stderr);
  assert.is(
    tsv.stdout,
    'ts\tdevice_id\ttopic\tmessage_id\tpayload\treceived_at\n' +
      '2026-03-10T11:00:00.000Z\tcli-dev\tdt/a/cli-dev/t\tm-0\t{"note":"a\\tb","temp":20}\t2026-03-10T11:00:00.000Z\n' +
      '2026-03-10T10:59:59.000Z\tcli-dev\tdt/a/cli-dev/t\tm-1\t{"note":"a\\tb","temp":21}\t2026-03-10T11:00:00.000Z\n',
  );
  const csv = await run(QueryRecent, ['--device', 'cli-dev', '--limit', '1', '--format', 'csv']);
  assert.is(csv.stdout, 'ts,device_id,topic,message_id,payload,received_at\n2026-03-10T11:00:00.000Z,cli-dev,dt/a/cli-dev/t,m-0,"{""note"":""a\\tb"",""temp"":20}",2026-03-10T11:00:00.000Z\n');
  const json = JSON.parse((await run(QueryRecent, ['--device', 'cli-dev', '--json'])).stdout);
  assert.equal(json.map((m: { message_id: string }) => m.message_id), ['m-0', 'm-1', 'm-2']);
  const badTopic = await run(QueryRecent, ['--device', 'cli-dev', '--topic', 'a/#/b']);
  assert.is(badTopic.exitCode, 1);
  assert.match(badTopic.stderr, /^Error: Invalid topic filter "a\/#\/b"/);
  const badSince = await run(QueryRecent, ['--device', 'cli-dev', '--since', 'yesterday']);
  assert.match(badSince.stderr, /Invalid --since "yesterday"/);
  const watchPiped = await run(QueryRecent, ['--device', 'cli-dev', '--watch']);
  assert.match(watchPiped.stderr, /--watch needs a terminal/);
});

test('query sql: results, refused writes, timeouts', async () => {
  const ok = await run(QuerySql, ["SELECT device_id, count(*) AS n FROM iot_messages WHERE device_id = 'cli-dev' GROUP BY 1"]);
  assert.is(ok.stdout, 'device_id\tn\ncli-dev\t3\n');
  const write = await run(QuerySql, ['DELETE FROM iot_messages']);
  assert.is(write.exitCode, 1);
  assert.match(write.stderr, /^Error: query sql is read-only: cannot execute DELETE in a read-only transaction\.\nTry: /);
  const slow = await run(QuerySql, ['SELECT pg_sleep(5)', '--timeout', '100ms']);
  assert.match(slow.stderr, /cancelled after 100 ms/);
  assert.is(await withPg(db.url, async (c) => Number((await c.query('SELECT count(*) AS n FROM iot_messages')).rows[0].n)), 3);
});

test('db retention --dry-run --json reports without changing anything', async () => {
  const r = JSON.parse((await run(DbRetention, ['--keep', '1h', '--dry-run', '--json'])).stdout);
  assert.is(r.dryRun, true);
  assert.is(r.keep, '1h');
  assert.is(r.rowsDropped + r.rowsDeleted, 3);
  assert.is(await withPg(db.url, async (c) => Number((await c.query('SELECT count(*) AS n FROM iot_messages')).rows[0].n)), 3);
});

test('no server configured: a user error that says how to get one', async () => {
  const r = await run(QueryRecent, ['--device', 'x'], {});
  assert.is(r.exitCode, 1);
  assert.match(r.stderr, /^Error: No PostgreSQL server: .*\nTry: start the local platform with `iotctl local up`, or set DATABASE_URL/);
});

test.run();
