import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedPostgres, embeddedDataDir, ensurePostgresUser, serverBinaries } from '../../../src/targets/local/postgres.js';
import { isProcessAlive, resolveDatabaseUrl } from '../../../src/db/connection.js';
import { migrate } from '../../../src/db/migrations.js';
import { withPg } from './helpers.js';
import { removeExternalCluster } from '../../helpers/project.js';
import { resetState } from '../../../src/targets/local/lifecycle.js';
import { DaemonLock } from '../../../src/targets/local/daemon-info.js';

const stateDir = mkdtempSync(join(tmpdir(), 'iotctl-embedded-'));
chmodSync(stateDir, 0o755);
const server = new EmbeddedPostgres({ stateDir });
let firstPort = 0;

test.after(async () => {
  await server.stop();
  removeExternalCluster(stateDir);
  rmSync(stateDir, { recursive: true, force: true });
});

/** Runs the embedded server in another process, as the daemon does. */
function startDaemon(): Promise<{ child: ChildProcess; info: { port: number; url: string; pid: number; stoppedOrphanPid?: number } }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'embedded-daemon.ts'), stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (d) => resolve({ child, info: JSON.parse(String(d)) }));
    child.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${err}`)));
  });
}

function postmasterPid(): number {
  return Number(readFileSync(join(embeddedDataDir(stateDir), 'postmaster.pid'), 'utf8').split('\n')[0]);
}

test('first start runs initdb, creates the iotctl database, and reports its timings', async () => {
  const started = await server.start();
  firstPort = started.port;
  assert.ok(started.initdbMs !== undefined && started.initdbMs > 0, 'initdb ran');
  assert.ok(started.startMs > 0 && started.startMs < 30_000);
  const saved = JSON.parse(readFileSync(join(stateDir, 'postgres.json'), 'utf8'));
  assert.is(started.url, `postgres://iotctl_owner:${encodeURIComponent(saved.passwords.owner)}@127.0.0.1:${started.port}/iotctl`);
  assert.is(started.display, `postgres://127.0.0.1:${started.port}/iotctl`);
  assert.is(server.url, started.url);
  const info = await withPg(server.url, async (c) => (await c.query("SELECT current_database() AS db, current_setting('server_encoding') AS enc, current_setting('listen_addresses') AS listen, version() AS v, current_user AS u, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su")).rows[0]);
  assert.equal([info.db, info.enc, info.listen, info.u, info.su], ['iotctl', 'UTF8', '127.0.0.1', 'iotctl_owner', false]);
  assert.match(info.v, /^PostgreSQL 18\./);
  console.error(`embedded PostgreSQL first start: initdb ${started.initdbMs} ms, server start ${started.startMs} ms, total ${started.totalMs} ms`);
});

test('psql connects with the same URL', () => {
  const psql = spawnSync('psql', [server.url, '-Atc', 'SELECT current_database()'], { encoding: 'utf8' });
  if (psql.error) throw new Error(`psql is not installed (.ci/run installs postgresql-client): ${psql.error.message}`);
  assert.is(psql.stdout.trim(), 'iotctl', psql.stderr);
});

test('a restart keeps the data and the port, without initdb', async () => {
  await withPg(server.url, (c) => c.query('CREATE TABLE kept (v text); INSERT INTO kept VALUES ($$still here$$)'));
  await server.stop();
  assert.not.ok(server.running);
  const again = await server.start();
  assert.is(again.initdbMs, undefined);
  assert.is(again.port, firstPort);
  assert.is(await withPg(server.url, async (c) => (await c.query('SELECT v FROM kept')).rows[0].v), 'still here');
  console.error(`embedded PostgreSQL restart: server start ${again.startMs} ms, total ${again.totalMs} ms`);
});

test('when the saved port is taken, another is chosen and saved', async () => {
  await server.stop();
  const squatter = createServer();
  await new Promise<void>((r) => squatter.listen(firstPort, '127.0.0.1', () => r()));
  try {
    const moved = await server.start();
    assert.is.not(moved.port, firstPort);
    assert.is(JSON.parse(readFileSync(join(stateDir, 'postgres.json'), 'utf8')).port, moved.port);
    assert.is(await withPg(server.url, async (c) => (await c.query('SELECT count(*)::int AS n FROM kept')).rows[0].n), 1);
  } finally {
    await new Promise((r) => squatter.close(r));
  }
});

test('after the daemon is SIGKILLed, its orphaned server is shut down and a new one starts on the same data', async () => {
  await server.stop();
  const { child, info } = await startDaemon();
  const orphan = postmasterPid();
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.ok(isProcessAlive(orphan), 'the server outlived its daemon');

  const started = await server.start();
  assert.is(started.stoppedOrphanPid, orphan);
  assert.is(started.port, info.port);
  assert.is.not(postmasterPid(), orphan);
  assert.is(await withPg(server.url, async (c) => (await c.query('SELECT count(*)::int AS n FROM kept')).rows[0].n), 1);
});

test('a stale postmaster.pid (dead pid, or a pid reused by another process) does not block the start', async () => {
  await server.stop();
  const pidFile = join(embeddedDataDir(stateDir), 'postmaster.pid');
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  for (const stalePid of [Number(dead.stdout), process.pid]) {
    writeFileSync(pidFile, `${stalePid}\n${embeddedDataDir(stateDir)}\n1700000000\n${firstPort}\n\n127.0.0.1\n  1234567  1\nready   \n`);
    const started = await server.start();
    assert.is(started.stoppedOrphanPid, undefined);
    assert.is(await withPg(server.url, async (c) => (await c.query('SELECT 1 AS one')).rows[0].one), 1);
    await server.stop();
    assert.not.ok(existsSync(pidFile), 'a clean stop removes the pid file');
  }
});

test('a server that belongs to another live daemon is left alone, with a user error', async () => {
  const { child } = await startDaemon();
  try {
    const other = new EmbeddedPostgres({ stateDir });
    try {
      await other.start();
      assert.unreachable('start should refuse');
    } catch (error) {
      assert.match((error as Error).message, /in use by another process \(pid \d+\)/);
    }
    assert.ok(isProcessAlive(postmasterPid()));
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});

test('resolveDatabaseUrl finds the running platform through daemon.json', async () => {
  const started = await server.start();
  const env = {};
  const lock = DaemonLock.acquire(stateDir)!; // what a live daemon holds
  writeFileSync(join(stateDir, 'daemon.json'), JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString(), databaseUrl: started.display, databaseSource: 'embedded', statusFile: join(stateDir, 'status.json') }));
  const target = resolveDatabaseUrl({ stateDir, env });
  assert.equal([target.url, target.source], [started.url, 'embedded']);
  assert.is(resolveDatabaseUrl({ stateDir, env, role: 'reader' }).url, server.urlFor('reader'));
  assert.not.ok(target.display.includes(JSON.parse(readFileSync(join(stateDir, 'postgres.json'), 'utf8')).passwords.owner));
  lock.release();
  assert.throws(() => resolveDatabaseUrl({ stateDir, env }), /not running/, 'a daemon.json without the daemon lock is ignored');
  rmSync(join(stateDir, 'daemon.json'));
});

test('as root, a state dir the postgres user cannot enter (0700 parent) keeps its cluster where that user can reach it', async () => {
  if (process.getuid?.() !== 0) return; // only root runs the server as another user
  const privateDir = mkdtempSync(join(tmpdir(), 'iotctl-private-')); // mode 0700, as /root or mktemp -d
  const privateState = join(privateDir, '.iotctl');
  const other = new EmbeddedPostgres({ stateDir: privateState });
  try {
    const started = await other.start();
    assert.ok(started.initdbMs !== undefined);
    assert.not.ok(other.dataDir.startsWith(privateDir), `data dir ${other.dataDir} is outside the private folder`);
    assert.is(JSON.parse(readFileSync(join(privateState, 'postgres.json'), 'utf8')).dataDir, other.dataDir);
    assert.is(statSync(other.dataDir).uid, Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout));
    assert.is(await withPg(other.url, async (c) => (await c.query('SELECT 1 AS one')).rows[0].one), 1);
    await other.stop();
    // A second start finds the same cluster; reset removes it with the state dir.
    const again = new EmbeddedPostgres({ stateDir: privateState });
    assert.is((await again.start()).initdbMs, undefined);
    await again.stop();
    const { removed } = await resetState(privateState);
    assert.ok(removed.includes(other.dataDir));
    assert.not.ok(existsSync(other.dataDir));
  } finally {
    await other.stop();
    rmSync(privateDir, { recursive: true, force: true });
  }
});

test('a cluster an older iotctl made (superuser only, inside a 0755 state dir) is upgraded: private state dir, cluster moved out, roles, no superuser login', async () => {
  if (process.getuid?.() !== 0) return; // the move happens only where the server runs as another user
  const project = mkdtempSync(join(tmpdir(), 'iotctl-legacy-'));
  chmodSync(project, 0o755);
  const legacyState = join(project, '.iotctl');
  const legacyData = join(legacyState, 'postgres');
  // The binaries the platform itself runs as postgres (a root-owned copy when node_modules is in a 0700 folder).
  const bin = serverBinaries(ensurePostgresUser());
  const asPostgres = (file: 'initdb' | 'postgres', args: string[], input?: string) => {
    const r = spawnSync('runuser', ['-u', 'postgres', '--', bin[file], ...args], { input, encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.not.match(r.stderr ?? '', /ERROR/);
  };
  const upgraded = new EmbeddedPostgres({ stateDir: legacyState });
  try {
    // What iotctl did before: the state dir 0755, the cluster in it, one superuser password in postgres.json.
    spawnSync('mkdir', ['-p', '-m', '755', legacyState]);
    spawnSync('install', ['-d', '-m', '700', '-o', 'postgres', '-g', 'postgres', legacyData]);
    writeFileSync(join(legacyState, 'pw'), 'legacy-superuser-pw\n');
    spawnSync('chown', ['postgres', join(legacyState, 'pw')]);
    asPostgres('initdb', [`--pgdata=${legacyData}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${join(legacyState, 'pw')}`, '--no-locale', '--encoding=UTF8']);
    rmSync(join(legacyState, 'pw'));
    asPostgres('postgres', ['--single', '-D', legacyData, 'postgres'], 'CREATE DATABASE iotctl;\n');
    asPostgres('postgres', ['--single', '-D', legacyData, 'iotctl'], "CREATE TABLE kept (v text);\nINSERT INTO kept VALUES ('old row');\n");
    writeFileSync(join(legacyState, 'postgres.json'), JSON.stringify({ port: 0, password: 'legacy-superuser-pw', user: 'postgres' }), { mode: 0o644 });
    chmodSync(join(legacyState, 'postgres.json'), 0o644);

    const started = await upgraded.start();
    assert.is(started.initdbMs, undefined, 'the old cluster is kept');
    assert.is(statSync(legacyState).mode & 0o777, 0o700);
    assert.is(statSync(join(legacyState, 'postgres.json')).mode & 0o777, 0o600);
    assert.not.ok(existsSync(legacyData), 'the cluster left the private state dir');
    assert.not.ok(readFileSync(join(legacyState, 'postgres.json'), 'utf8').includes('legacy-superuser-pw'), 'the superuser password is forgotten');
    assert.is(await withPg(upgraded.url, async (c) => (await c.query('SELECT v FROM kept')).rows[0].v), 'old row');
    assert.is(await withPg(upgraded.url, async (c) => (await c.query("SELECT tableowner FROM pg_tables WHERE tablename = 'kept'")).rows[0].tableowner), 'iotctl_owner');
    // The grants come from the migrations, which the platform runs as the owner right after start().
    await withPg(upgraded.url, (c) => migrate(c));
    assert.is(await withPg(upgraded.urlFor('reader'), async (c) => (await c.query('SELECT count(*)::int AS n FROM kept')).rows[0].n), 1);
    const superuser = `postgres://postgres:legacy-superuser-pw@127.0.0.1:${started.port}/iotctl`;
    await withPg(superuser, () => Promise.resolve()).then(
      () => assert.unreachable('the superuser logged in'),
      (e: Error) => assert.match(e.message, /no pg_hba\.conf entry|password authentication failed/),
    );
  } finally {
    await upgraded.stop();
    removeExternalCluster(legacyState);
    rmSync(project, { recursive: true, force: true });
  }
});

test.run();
