// Issue 16, findings 1, 9 and 13 (database): the embedded PostgreSQL of a real daemon (`local up --detach`) is
// reached only through least-privilege roles. `query sql` runs as a read-only role that PostgreSQL itself denies
// programs and server files; the superuser cannot log in at all; the ingest role writes rows but cannot change
// the schema; the owner migrates. A frozen server ends in a clear user error, not "Error (bug)".
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { sharedTempDir } from '../helpers/other-user.js';
import { cli, removeExternalCluster } from '../helpers/project.js';
import { initSpec } from '../../src/spec/init-template.js';
import { embeddedDataDir, freePort } from '../../src/targets/local/postgres.js';
import { resolveDatabaseUrl } from '../../src/db/connection.js';

const shared = sharedTempDir();
const dir = join(shared.dir, 'project');
const stateDir = join(dir, '.iotctl');
const env = { DATABASE_URL: '', PGPASSWORD: '', PGHOST: '', PGUSER: '' };
const run = (args: string[], extraEnv: Record<string, string> = {}) => cli(args, { cwd: dir, env: { ...env, ...extraEnv }, timeoutMs: 120_000 });
const MACHINE_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** The error a statement gets as `role`, or undefined when it succeeds. */
async function asRole(role: 'owner' | 'writer' | 'reader', sql: string): Promise<{ code?: string; message: string } | undefined> {
  const client = new pg.Client({ connectionString: resolveDatabaseUrl({ stateDir, env: {}, role }).url });
  await client.connect();
  try {
    await client.query(sql);
    return undefined;
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  } finally {
    await client.end();
  }
}

test.before(async () => {
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'iotctl.yaml'), initSpec('secroles').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
  const up = await run(['local', 'up', '--detach']);
  assert.is(up.code, 0, up.stderr);
});

test.after(async () => {
  await run(['local', 'down']);
  removeExternalCluster(stateDir);
  shared.cleanup();
});

test('`query sql` cannot run a program: COPY … TO PROGRAM is refused by PostgreSQL', async () => {
  // Where the postgres OS user could write, so only PostgreSQL's refusal keeps the file from appearing.
  const marker = join(tmpdir(), `iotctl-copy-to-program-${process.pid}`);
  const r = await run(['query', 'sql', `COPY (SELECT 1) TO PROGRAM 'touch ${marker}'`, '--json']);
  const ran = existsSync(marker);
  rmSync(marker, { force: true });
  assert.not.ok(ran, 'the program ran');
  assert.is(r.code, 1, r.stdout);
  assert.match(JSON.parse(r.stdout).error.message, /permission denied|must be superuser|pg_execute_server_program/i);
  assert.is(JSON.parse(r.stdout).error.code, 'SQL_PERMISSION_DENIED');
});

test('`query sql` cannot read or list server files, nor import them as large objects', async () => {
  for (const sql of ["SELECT pg_read_file('/etc/passwd')", "SELECT pg_read_binary_file('/etc/passwd')", "SELECT * FROM pg_ls_dir('/')", "SELECT lo_import('/etc/passwd')", "SELECT pg_stat_file('/etc/passwd')"]) {
    const r = await run(['query', 'sql', sql, '--json']);
    assert.is(r.code, 1, `${sql}: ${r.stdout}`);
    assert.match(JSON.parse(r.stdout).error.message, /permission denied|read-only transaction/i, sql);
    assert.not.match(r.stdout, /root:x:0:0/, sql);
  }
});

test('`query sql` runs as a role that is neither superuser nor able to write', async () => {
  const who = await run(['query', 'sql', "SELECT current_user AS u, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su, current_setting('transaction_read_only') AS ro", '--format', 'json']);
  assert.is(who.code, 0, who.stderr);
  assert.equal(JSON.parse(who.stdout), [{ u: 'iotctl_reader', su: false, ro: 'on' }]);
  // Even outside `query sql`'s READ ONLY transaction, the reader cannot write.
  const write = await asRole('reader', "INSERT INTO iot_ingest_errors (reason) VALUES ('x')");
  assert.ok(write, 'the reader inserted a row');
  assert.match(write!.message, /read-only transaction|permission denied/);
});

test('no URL in any state file, and no password in postgres.json, logs in as the superuser', async () => {
  const port = JSON.parse(readFileSync(join(stateDir, 'postgres.json'), 'utf8')).port as number;
  const texts = readdirSync(stateDir)
    .map((name) => join(stateDir, name))
    .filter((p) => lstatSync(p).isFile())
    .map((p) => readFileSync(p).toString('latin1'));
  const urls = texts.flatMap((t) => t.match(/postgres(?:ql)?:\/\/[^\s"']+/g) ?? []);
  const saved = JSON.parse(readFileSync(join(stateDir, 'postgres.json'), 'utf8')) as { passwords?: Record<string, string>; password?: string };
  const passwords = saved.passwords ? Object.values(saved.passwords) : [saved.password!];
  const attempts = [...urls, ...passwords.map((pw) => `postgres://postgres:${encodeURIComponent(pw)}@127.0.0.1:${port}/postgres`), `postgres://postgres@127.0.0.1:${port}/iotctl`];
  for (const url of attempts) {
    const u = new URL(url);
    u.username = 'postgres';
    const client = new pg.Client({ connectionString: u.toString(), connectionTimeoutMillis: 5_000 });
    client.on('error', () => undefined);
    const error = await client.connect().then(
      () => undefined,
      (e: Error) => e,
    );
    await client.end().catch(() => undefined);
    assert.ok(error, `logged in as the superuser with ${url.replace(/:[^:@/]*@/, ':***@')}`);
  }
});

test('pg_hba.conf lets in only the iotctl roles, to the iotctl database, over loopback, with SCRAM', () => {
  const rules = readFileSync(join(embeddedDataDir(stateDir), 'pg_hba.conf'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  assert.equal(rules.map((l) => l.split(/\s+/)), [['host', '"iotctl"', 'iotctl_owner,iotctl_writer,iotctl_reader', '127.0.0.1/32', 'scram-sha-256']]);
});

test('the ingest role writes rows and gets new day partitions, but cannot drop or alter tables', async () => {
  assert.is(await asRole('writer', "INSERT INTO iot_messages (message_id, device_id, ts, payload) VALUES ('sec-1', 'd', '2031-05-01T00:00:00Z', '{}') ON CONFLICT DO NOTHING"), undefined);
  assert.is(await asRole('writer', "SELECT iotctl_ensure_day_partition('2031-05-02')"), undefined, 'a new day partition');
  for (const sql of ['DROP TABLE iot_messages', 'ALTER TABLE iot_messages ADD COLUMN evil int', 'TRUNCATE iot_messages', 'DELETE FROM iot_messages', 'CREATE TABLE evil (i int)', "COPY (SELECT 1) TO PROGRAM 'id'"]) {
    const error = await asRole('writer', sql);
    assert.ok(error, `the writer ran ${sql}`);
    assert.match(error!.message, /must be owner|permission denied/, sql);
  }
});

test('the owner migrates (and is no superuser either)', async () => {
  const r = await run(['db', 'migrate', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(r.stdout).version, JSON.parse(r.stdout).latest);
  const program = await asRole('owner', "COPY (SELECT 1) TO PROGRAM 'id'");
  assert.match(program?.message ?? 'ran', /permission denied|must be superuser/);
  assert.ok(await asRole('owner', "SELECT pg_read_file('/etc/passwd')"), 'the owner read a server file');
});

test('against an external server (DATABASE_URL), `query sql` still cannot write: a READ ONLY transaction', async () => {
  const r = await run(['query', 'sql', 'CREATE TABLE iotctl_sec_should_not_exist (i int)', '--json'], { DATABASE_URL: MACHINE_URL });
  assert.is(r.code, 1, r.stdout);
  assert.match(JSON.parse(r.stdout).error.message, /read-only transaction/);
});

test('a frozen database (SIGSTOP) ends `query sql` with a timeout user error, not Error (bug)', async () => {
  const postmaster = Number(readFileSync(join(embeddedDataDir(stateDir), 'postmaster.pid'), 'utf8').split('\n')[0]);
  process.kill(-postmaster, 'SIGSTOP');
  try {
    const started = Date.now();
    const r = await run(['query', 'sql', 'SELECT 1']);
    assert.is(r.code, 1, r.stdout);
    assert.not.match(r.stderr, /Error \(bug\)/);
    assert.match(r.stderr, /^Error: PostgreSQL at .* did not answer in time/m);
    assert.match(r.stderr, /^Try: /m);
    assert.ok(Date.now() - started < 30_000, 'it gives up within the connect timeout');
  } finally {
    process.kill(-postmaster, 'SIGCONT');
  }
});

test.run();
