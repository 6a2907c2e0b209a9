import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configuredDatabase, connect, isConnectionError, redactUrl, resolveDatabaseUrl } from '../../../src/db/connection.js';
import { freePort } from '../../../src/targets/local/postgres.js';
import { UserError } from '../../../src/ui/errors.js';
import { DaemonLock } from '../../../src/targets/local/daemon-info.js';
import { writeEmbeddedCredentials } from '../../../src/targets/local/db-credentials.js';
import { MACHINE_URL } from './helpers.js';

const stateDir = mkdtempSync(join(tmpdir(), 'iotctl-conn-'));
test.after(() => rmSync(stateDir, { recursive: true, force: true }));
const spec = { database: { url: 'postgres://spec:secret@db.internal:5432/iot' } };
let lock: DaemonLock | undefined;
const daemonJson = (pid: number) => {
  // Liveness is the daemon lock, not the pid: this process holds it to stand in for a live daemon; a dead one holds nothing.
  if (pid === process.pid) lock ??= DaemonLock.acquire(stateDir);
  else {
    lock?.release();
    lock = undefined;
  }
  // What a daemon publishes now: no password in daemon.json; the roles' passwords only in postgres.json.
  writeFileSync(join(stateDir, 'daemon.json'), JSON.stringify({ pid, startedAt: '2026-01-01T00:00:00Z', databaseUrl: 'postgres://127.0.0.1:5999/iotctl', databaseSource: 'embedded', statusFile: join(stateDir, 'status.json') }));
  writeEmbeddedCredentials(stateDir, { port: 5999, database: 'iotctl', passwords: { owner: 'own-pw', writer: 'wri-pw', reader: 'rea-pw' }, rolesVersion: 1 });
};

test('DATABASE_URL wins over everything', () => {
  daemonJson(process.pid);
  const t = resolveDatabaseUrl({ spec, stateDir, env: { DATABASE_URL: 'postgres://u:p@h:1/d', PGHOST: 'other' } });
  assert.equal(t, { url: 'postgres://u:p@h:1/d', display: 'postgres://u:***@h:1/d', source: 'DATABASE_URL' });
});

test('PG* variables come next: pg reads them itself, the display URL shows their effect', () => {
  const t = resolveDatabaseUrl({ spec, stateDir, env: { PGHOST: 'pg.local', PGUSER: 'ingest', PGPASSWORD: 'x', PGDATABASE: 'tele' } });
  assert.equal(t, { url: undefined, display: 'postgres://ingest:***@pg.local:5432/tele', source: 'PG environment' });
});

test('then database.url from iotctl.yaml (read only when needed), then the running daemon', () => {
  let loaded = 0;
  const lazy = () => {
    loaded++;
    return spec;
  };
  assert.equal(resolveDatabaseUrl({ spec: lazy, stateDir, env: {} }), { url: spec.database.url, display: 'postgres://spec:***@db.internal:5432/iot', source: 'iotctl.yaml' });
  resolveDatabaseUrl({ spec: lazy, stateDir, env: { DATABASE_URL: 'postgres://x@y/z' } });
  assert.is(loaded, 1, 'the spec is not read when DATABASE_URL decides');
  daemonJson(process.pid);
  assert.equal(resolveDatabaseUrl({ stateDir, env: {} }), { url: 'postgres://iotctl_owner:own-pw@127.0.0.1:5999/iotctl', display: 'postgres://iotctl_owner:***@127.0.0.1:5999/iotctl', source: 'embedded' });
  assert.is(resolveDatabaseUrl({ stateDir, env: {}, role: 'reader' }).url, 'postgres://iotctl_reader:rea-pw@127.0.0.1:5999/iotctl');
});

test('a daemon started with its own DATABASE_URL: commands without it are told to set it (the password is not stored)', () => {
  daemonJson(process.pid);
  writeFileSync(join(stateDir, 'daemon.json'), JSON.stringify({ pid: process.pid, startedAt: '2026-01-01T00:00:00Z', databaseUrl: 'postgres://app:***@db:5432/iot', databaseSource: 'DATABASE_URL', statusFile: join(stateDir, 'status.json') }));
  assert.throws(() => resolveDatabaseUrl({ stateDir, env: {} }), (e: Error) => e instanceof UserError && e.code === 'DB_CREDENTIALS_ELSEWHERE' && /DATABASE_URL/.test(e.hint ?? ''));
});

test('configuredDatabase (what the daemon asks): undefined means start the embedded server', () => {
  daemonJson(process.pid);
  assert.is(configuredDatabase({ env: {} }), undefined);
  assert.is(configuredDatabase({ spec: { database: {} }, env: {} }), undefined);
  assert.is(configuredDatabase({ spec, env: {} })?.source, 'iotctl.yaml');
  assert.is(configuredDatabase({ env: { PGHOST: 'h' } })?.source, 'PG environment');
});

test('a daemon.json whose pid is dead (or a half-written one) means no server', () => {
  const dead = exitedPid();
  daemonJson(dead);
  assert.throws(() => resolveDatabaseUrl({ stateDir, env: {} }), (e: Error) => e instanceof UserError && /No PostgreSQL server/.test(e.message) && /iotctl local up/.test((e as UserError).hint ?? ''));
  writeFileSync(join(stateDir, 'daemon.json'), '{"pid": 12');
  assert.throws(() => resolveDatabaseUrl({ stateDir, env: {} }), /No PostgreSQL server/);
  rmSync(join(stateDir, 'daemon.json'));
  assert.throws(() => resolveDatabaseUrl({ stateDir, env: {} }), /No PostgreSQL server/);
});

test('a refused connection and a missing database are user errors that name the server', async () => {
  const port = await freePort();
  try {
    await connect({ url: `postgres://postgres:pw@127.0.0.1:${port}/x`, display: `postgres://postgres:***@127.0.0.1:${port}/x`, source: 'DATABASE_URL' });
    assert.unreachable();
  } catch (error) {
    assert.instance(error, UserError);
    assert.is((error as UserError).code, 'DB_UNREACHABLE');
    assert.is((error as Error).message, `PostgreSQL refused the connection at postgres://postgres:***@127.0.0.1:${port}/x (from DATABASE_URL).`);
  }
  const missing = new URL(MACHINE_URL);
  missing.pathname = '/iotctl_no_such_database';
  try {
    await connect({ url: missing.toString(), display: missing.toString(), source: 'DATABASE_URL' });
    assert.unreachable();
  } catch (error) {
    assert.instance(error, UserError);
    assert.is((error as UserError).code, 'DB_MISSING');
    assert.match((error as Error).message, /database "iotctl_no_such_database" does not exist/);
  }
});

test('connection errors are told apart from SQL errors', () => {
  assert.ok(isConnectionError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })));
  assert.ok(isConnectionError(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })));
  assert.ok(isConnectionError(new Error('Connection terminated unexpectedly')));
  assert.not.ok(isConnectionError(Object.assign(new Error('duplicate key'), { code: '23505' })));
  assert.not.ok(isConnectionError(Object.assign(new Error('relation does not exist'), { code: '42P01' })));
  assert.is(redactUrl('postgres://a:b@c:5/d?sslmode=require'), 'postgres://a:***@c:5/d?sslmode=require');
});

/** A pid that is surely not running: that of a child that has already exited. */
function exitedPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout);
}

test('connecting loads no undici (pg asks for a fetch Response on Node 20 without a navigator), and leaves no navigator behind', () => {
  const script = `
    const { connect, resolveDatabaseUrl } = await import('./src/db/connection.ts');
    const client = await connect(resolveDatabaseUrl({ stateDir: ".", env: { DATABASE_URL: ${JSON.stringify(MACHINE_URL)} } }));
    await client.query('SELECT 1');
    await client.end();
    console.log(JSON.stringify({ undici: process.moduleLoadList.some((m) => m.includes('undici')), navigator: typeof navigator }));`;
  const out = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: join(import.meta.dirname, '../../..'), encoding: 'utf8' });
  assert.is(out.status, 0, out.stderr);
  const seen = JSON.parse(out.stdout.trim().split('\n').at(-1)!);
  assert.is(seen.undici, false);
  assert.is(seen.navigator, Number(process.versions.node.split('.')[0]) >= 21 ? 'object' : 'undefined');
});

test.run();
